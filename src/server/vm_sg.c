/* SPDX-License-Identifier: Apache-2.0 */
#include "vm_sg.h"

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "db_secgroups.h"
#include "json_util.h"
#include "server.h"
#include "sg_push.h"
#include "validate.h"

int kc_vm_sg_names(struct kc_db *db, const json_t *list, const char *user, bool admin,
		   const char *names[KC_SG_GROUPS_PER_VM], size_t *ret_n, struct kc_error *err)
{
	size_t i, n = 0;
	json_t *g;

	if (!json_is_array(list))
		return kc_error_set(err, KC_ERR_INVALID,
				    "security_groups must be an array of names");
	if (json_array_size(list) > KC_SG_GROUPS_PER_VM)
		return kc_error_set(err, KC_ERR_INVALID, "a VM has at most %d security groups",
				    KC_SG_GROUPS_PER_VM);
	json_array_foreach(list, i, g)
	{
		_cleanup_json_ json_t *row = NULL;
		const char *name = json_string_value(g);
		if (!name)
			return kc_error_set(err, KC_ERR_INVALID, "security_groups must be names");
		if (kc_name_validate(name, "security group name", err) < 0 ||
		    kc_db_sg_get(db, name, &row, err) < 0)
			return -1;
		const char *owner = json_string_value(json_object_get(row, "owner"));
		if (!admin && (!owner || !user || strcmp(owner, user) != 0))
			return kc_error_set(err, KC_ERR_NOT_FOUND,
					    "security group \"%s\" not found", name);
		for (size_t k = 0; k < n; k++)
			if (strcmp(names[k], name) == 0)
				return kc_error_set(err, KC_ERR_INVALID,
						    "security group \"%s\" is listed twice", name);
		names[n++] = name;
	}
	*ret_n = n;
	return 0;
}

json_t *kc_vm_sg_hosts(struct kc_db *db, const json_t *groups, const char *also,
		       struct kc_error *err)
{
	json_t *out = json_array(), *g, *h, *x;
	size_t i, k, m;

	if (!out) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (also)
		json_array_append_new(out, json_string(also));
	json_array_foreach(groups, i, g)
	{
		_cleanup_json_ json_t *hs = NULL;
		if (kc_db_sg_hosts(db, json_string_value(g), &hs, err) < 0) {
			json_decref(out);
			return NULL;
		}
		json_array_foreach(hs, k, h)
		{
			bool seen = false;
			json_array_foreach(out, m, x) seen = seen || json_equal(x, h);
			if (!seen)
				json_array_append(out, h);
		}
	}
	return out;
}

int kc_vm_sg_attach_new(struct kc_server *srv, const char *vm, const char *host,
			const json_t *groups, struct kc_error *err)
{
	const char *names[KC_SG_GROUPS_PER_VM];
	size_t n = 0, i;
	json_t *g;
	_cleanup_json_ json_t *old = NULL, *hosts = NULL, *pushed = NULL;

	json_array_foreach(groups, i, g)
	{
		if (n == KC_SG_GROUPS_PER_VM || !json_is_string(g))
			return kc_error_set(err, KC_ERR_INVALID, "bad security_groups");
		names[n++] = json_string_value(g);
	}
	if (kc_db_vm_sg_set(srv->db, vm, names, n, &old, err) < 0 ||
	    !(hosts = kc_vm_sg_hosts(srv->db, groups, host, err)))
		return -1;
	pushed = kc_sg_push_hosts(srv, hosts);
	/* The VM's own host must have its rules before it starts; the others
	 * (remote-group members) converge at their next push. */
	json_array_foreach(pushed, i, g)
	{
		const char *h = json_string_value(json_object_get(g, "host"));
		if (h && strcmp(h, host) == 0 && !json_is_true(json_object_get(g, "applied")))
			return kc_error_set(
				err, KC_ERR_UNAVAILABLE,
				"VM \"%s\": its security groups could not be applied on host "
				"\"%s\" (%s); it was created but not started",
				vm, host, json_string_value(json_object_get(g, "error")));
	}
	return 0;
}

void kc_vm_sg_after_delete(struct kc_server *srv, const char *host, const json_t *groups)
{
	struct kc_error e = {0};
	if (json_array_size(groups) == 0)
		return;
	_cleanup_json_ json_t *hosts = kc_vm_sg_hosts(srv->db, groups, host, &e);
	_cleanup_json_ json_t *pushed = hosts ? kc_sg_push_hosts(srv, hosts) : NULL;
	if (!hosts)
		fprintf(stderr, "security groups: after a VM delete: %s\n", e.message);
}
