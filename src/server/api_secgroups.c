/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_secgroups.c - security groups (docs/api.md, "Security groups"):
 * groups and rules under /api/v1/security-groups, a VM's groups under
 * /api/v1/vms/{vm}/security-groups.  Users manage their own groups
 * (authz.c: another's is "not found") and may give their VMs only their
 * own; admins any.  Every change is stored first, then pushed to each
 * host running an affected VM (sg_push.h); the answer lists how each push
 * went.
 */
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "db_secgroups.h"
#include "db_vms.h"
#include "http_util.h"
#include "json_util.h"
#include "secgroup.h"
#include "sg_push.h"
#include "vm_sg.h"
#include "validate.h"

#define RULE_SEGMENT 5 /* api v1 security-groups {sg} rules {id} */

/* May the caller use group `name` (own it, or be an admin)?  Another's
 * group is "not found", as authz.c answers on the group's own routes. */
static int can_use(struct kc_call *c, const char *name, struct kc_error *err)
{
	_cleanup_json_ json_t *g = NULL;
	if (kc_db_sg_get(c->srv->db, name, &g, err) < 0)
		return -1;
	if (kc_authz_is_admin(c))
		return 0;
	const char *owner = json_string_value(json_object_get(g, "owner"));
	if (!owner || strcmp(owner, c->who.user) != 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "security group \"%s\" not found", name);
	return 0;
}

/* Pushes to the hosts affected by `group` and answers `body` + "hosts". */
static int answer_pushed(struct kc_call *c, unsigned status, json_t *body, const char *group,
			 struct kc_error *err)
{
	_cleanup_json_ json_t *b = body, *groups = json_pack("[s]", group);
	_cleanup_json_ json_t *hosts =
		groups ? kc_vm_sg_hosts(c->srv->db, groups, NULL, err) : NULL;
	if (!hosts || !b)
		return kc_error_is_set(err) ? -1
					    : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_object_set_new(b, "hosts", kc_sg_push_hosts(c->srv, hosts));
	kc_http_json(c->resp, status, steal_ptr(&b));
	return 0;
}

int kc_api_sgs_list(struct kc_call *c, struct kc_error *err)
{
	json_t *rows = NULL;
	if (kc_db_sg_list(c->srv->db, kc_authz_vm_owner(c), &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:o}", "security_groups", rows));
	return 0;
}

/* Body {"name", "description"?, "owner"? (admins), "rules"? [...]}. */
int kc_api_sg_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "description", "owner", "rules", NULL};
	_cleanup_json_ json_t *body = NULL, *row = NULL;
	const char *name = NULL, *desc = NULL, *owner = NULL;
	json_t *rules, *r;
	size_t i;

	if (kc_http_read_json(c->req, true, &body, err) < 0)
		return -1;
	if (!json_is_object(body))
		return kc_error_set(err, KC_ERR_INVALID, "the request must be an object");
	if (kc_json_check_keys(body, keys, "security group", err) < 0 ||
	    kc_json_get_string(body, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "security group name", err) < 0 ||
	    kc_json_get_string(body, "description", false, KC_SG_DESC_MAX, &desc, err) < 0 ||
	    kc_json_get_string(body, "owner", false, KC_NAME_MAX, &owner, err) < 0)
		return -1;
	if (owner && !kc_authz_is_admin(c) && strcmp(owner, c->who.user) != 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN,
				    "only an admin may create a group for "
				    "another user");
	if (!owner)
		owner = c->who.user[0] ? c->who.user : KC_DB_ADMIN_USER;
	rules = json_object_get(body, "rules");
	if (rules && (!json_is_array(rules) || json_array_size(rules) > KC_SG_RULES_MAX))
		return kc_error_set(err, KC_ERR_INVALID, "rules must be an array of at most %d",
				    KC_SG_RULES_MAX);
	/* Every rule is checked before anything is stored. */
	struct kc_sg_rule parsed[KC_SG_RULES_MAX];
	json_array_foreach(rules, i, r)
	{
		if (kc_sg_rule_from_json(r, true, &parsed[i], err) < 0)
			return -1;
		if (parsed[i].remote_group[0] && strcmp(parsed[i].remote_group, name) != 0 &&
		    can_use(c, parsed[i].remote_group, err) < 0)
			return -1;
	}
	if (kc_db_sg_create(c->srv->db, name, desc, owner, err) < 0)
		return -1;
	for (i = 0; i < json_array_size(rules); i++) {
		char id[37];
		if (kc_db_sg_rule_add(c->srv->db, name, &parsed[i], id, err) < 0) {
			struct kc_error e = {0};
			kc_db_sg_delete(c->srv->db, name, &e); /* all or nothing */
			return -1;
		}
	}
	if (kc_db_sg_get(c->srv->db, name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 201, steal_ptr(&row));
	return 0;
}

int kc_api_sg_show(struct kc_call *c, struct kc_error *err)
{
	json_t *row = NULL;
	if (kc_db_sg_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, row);
	return 0;
}

int kc_api_sg_delete(struct kc_call *c, struct kc_error *err)
{
	if (kc_db_sg_delete(c->srv->db, c->name, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", c->name));
	return 0;
}

int kc_api_sg_rule_add(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *body = NULL;
	struct kc_sg_rule r;
	char id[37];

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_sg_rule_from_json(body, true, &r, err) < 0)
		return -1;
	if (r.remote_group[0] && strcmp(r.remote_group, c->name) != 0 &&
	    can_use(c, r.remote_group, err) < 0)
		return -1;
	if (kc_db_sg_rule_add(c->srv->db, c->name, &r, id, err) < 0)
		return -1;
	json_t *out = kc_sg_rule_to_json(&r);
	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_object_set_new(out, "id", json_string(id));
	json_object_set_new(out, "security_group", json_string(c->name));
	return answer_pushed(c, 201, out, c->name, err);
}

/* The {id} segment of the path, decoded and validated. */
static char *rule_param(const struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *path = c->req->url_path ? strdup(c->req->url_path) : NULL;
	char *save = NULL, *seg = NULL;
	int i = 0;

	if (!path) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save), i++)
		if (i == RULE_SEGMENT)
			seg = t;
	char *decoded = seg ? ulfius_url_decode(seg) : NULL;
	char *id = decoded ? strdup(decoded) : NULL;
	u_free(decoded);
	if (!id) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (kc_name_validate(id, "rule id", err) < 0) {
		free(id);
		return NULL;
	}
	return id;
}

int kc_api_sg_rule_delete(struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *id = rule_param(c, err);
	if (!id || kc_db_sg_rule_delete(c->srv->db, c->name, id, err) < 0)
		return -1;
	return answer_pushed(c, 200,
			     json_pack("{s:s,s:s}", "deleted", id, "security_group", c->name),
			     c->name, err);
}

int kc_api_vm_sg_show(struct kc_call *c, struct kc_error *err)
{
	json_t *groups = NULL;
	if (kc_api_require_managed(c->srv, c->name, NULL, err) < 0 ||
	    kc_db_vm_sg_list(c->srv->db, c->name, &groups, err) < 0)
		return -1;
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:o}", "vm", c->name, "security_groups", groups));
	return 0;
}

/* Body {"security_groups": [names]} (an empty list removes them all). */
int kc_api_vm_sg_set(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"security_groups", NULL};
	_cleanup_json_ json_t *body = NULL, *row = NULL, *old = NULL, *hosts = NULL;
	const char *names[KC_SG_GROUPS_PER_VM];
	json_t *list;
	size_t n = 0;

	if (kc_http_read_json(c->req, true, &body, err) < 0)
		return -1;
	if (!json_is_object(body) ||
	    kc_json_check_keys(body, keys, "security groups request", err) < 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the request must be {\"security_groups\": [names]}");
	list = json_object_get(body, "security_groups");
	if (kc_vm_sg_names(c->srv->db, list, c->who.user, kc_authz_is_admin(c), names, &n, err) < 0)
		return -1;
	if (kc_api_require_managed(c->srv, c->name, &row, err) < 0)
		return -1;
	if (n && kc_sg_vm_check_nics(c->srv->db, c->name,
				     json_string_value(json_object_get(row, "state")), err) < 0)
		return -1;
	if (kc_db_vm_sg_set(c->srv->db, c->name, names, n, &old, err) < 0)
		return -1;
	/* The VM's host, and the hosts whose remote-group rules name a group
	 * the VM left or joined (its addresses enter or leave them). */
	json_array_extend(old, list);
	hosts = kc_vm_sg_hosts(c->srv->db, old, json_string_value(json_object_get(row, "host")),
			       err);
	if (!hosts)
		return -1;
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:O,s:o}", "vm", c->name, "security_groups", list, "hosts",
			       kc_sg_push_hosts(c->srv, hosts)));
	return 0;
}
