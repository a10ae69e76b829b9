/* SPDX-License-Identifier: Apache-2.0 */
/* db_secgroups.c - security groups in the database (db_secgroups.h). */
#include "db_secgroups.h"

#include <string.h>

#include "cleanup.h"
#include "json_util.h"

#define SG_SELECT                                                                                  \
	"SELECT g.name, g.description, g.owner, g.created_at, "                                    \
	"(SELECT COUNT(*) FROM sg_rules r WHERE r.sg = g.name) AS rule_count, "                    \
	"(SELECT COUNT(*) FROM vm_security_groups m WHERE m.sg = g.name) AS vm_count "             \
	"FROM security_groups g "
#define RULE_COLS "id, direction, protocol, port_min, port_max, cidr, remote_group"

/* Drops SQL NULL columns, so a rule reads as the API writes it. */
static void drop_nulls(json_t *rows)
{
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(row, tmp, k, v)
		{
			if (json_is_null(v))
				json_object_del(row, k);
		}
	}
}

int kc_db_sg_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err)
{
	if (!owner)
		return kc_db_query(db, SG_SELECT "ORDER BY g.name", NULL, 0, ret, err);
	return kc_db_query(db, SG_SELECT "WHERE g.owner = $1 ORDER BY g.name",
			   KC_DB_PARAMS(KC_DB_TEXT(owner)), ret, err);
}

int kc_db_sg_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *g = NULL;
	json_t *rules = NULL, *vms = NULL;

	if (kc_db_query_row(db, SG_SELECT "WHERE g.name = $1", KC_DB_PARAMS(KC_DB_TEXT(name)), &g,
			    err) < 0)
		return -1;
	if (!g)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "security group \"%s\" not found", name);
	if (kc_db_query(db,
			"SELECT " RULE_COLS " FROM sg_rules WHERE sg = $1 ORDER BY created_at, id",
			KC_DB_PARAMS(KC_DB_TEXT(name)), &rules, err) < 0)
		return -1;
	drop_nulls(rules);
	json_object_set_new(g, "rules", rules);
	if (kc_db_sg_members(db, name, &vms, err) < 0)
		return -1;
	json_object_set_new(g, "vms", vms);
	*ret = steal_ptr(&g);
	return 0;
}

int kc_db_sg_create(struct kc_db *db, const char *name, const char *description, const char *owner,
		    struct kc_error *err)
{
	char now[21];
	struct kc_error e = {0};

	kc_db_now(now);
	if (kc_db_exec(db,
		       "INSERT INTO security_groups (name, description, owner, created_at) "
		       "VALUES ($1, $2, $3, $4)",
		       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(description), KC_DB_TEXT(owner),
				    KC_DB_TEXT(now)),
		       NULL, &e) == 0)
		return 0;
	if (e.code == KC_ERR_CONFLICT)
		return kc_error_set(err, KC_ERR_CONFLICT, "security group \"%s\" exists", name);
	*err = e;
	return -1;
}

static int delete_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const char *name = opaque;
	int64_t exists = 0, vms = 0, refs = 0;

	if (kc_db_query_int(tx, "SELECT COUNT(*) FROM security_groups WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &exists, err) < 0 ||
	    kc_db_query_int(tx, "SELECT COUNT(*) FROM vm_security_groups WHERE sg = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &vms, err) < 0 ||
	    kc_db_query_int(tx,
			    "SELECT COUNT(*) FROM sg_rules WHERE remote_group = $1 AND sg <> $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &refs, err) < 0)
		return -1;
	if (!exists)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "security group \"%s\" not found", name);
	if (vms)
		return kc_error_set(
			err, KC_ERR_CONFLICT,
			"security group \"%s\" is used by %lld VM%s: remove it from them "
			"first",
			name, (long long)vms, vms == 1 ? "" : "s");
	if (refs)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "security group \"%s\" is the remote group of %lld rule%s of "
				    "other groups",
				    name, (long long)refs, refs == 1 ? "" : "s");
	return kc_db_exec(tx, "DELETE FROM sg_rules WHERE sg = $1", KC_DB_PARAMS(KC_DB_TEXT(name)),
			  NULL, err) < 0 ||
			       kc_db_exec(tx, "DELETE FROM security_groups WHERE name = $1",
					  KC_DB_PARAMS(KC_DB_TEXT(name)), NULL, err) < 0
		       ? -1
		       : 0;
}

int kc_db_sg_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_tx(db, delete_tx, (void *)name, err);
}

int kc_db_sg_rule_from_row(const json_t *row, struct kc_sg_rule *ret, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_deep_copy(row);
	if (!j)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_object_del(j, "id");
	json_object_del(j, "sg");
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(j, tmp, k, v)
	{
		if (json_is_null(v))
			json_object_del(j, k);
	}
	return kc_sg_rule_from_json(j, true, ret, err);
}

struct rule_add {
	const char *sg;
	const struct kc_sg_rule *rule;
	char *id;
};

static int rule_add_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct rule_add *ra = opaque;
	const struct kc_sg_rule *r = ra->rule;
	_cleanup_json_ json_t *rows = NULL, *rj = kc_sg_rule_to_json(r);
	int64_t exists = 0;
	size_t i;
	json_t *row;
	char now[21];

	if (!rj)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_query_int(tx, "SELECT COUNT(*) FROM security_groups WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(ra->sg)), &exists, err) < 0)
		return -1;
	if (!exists)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "security group \"%s\" not found",
				    ra->sg);
	if (r->remote_group[0]) {
		if (kc_db_query_int(tx, "SELECT COUNT(*) FROM security_groups WHERE name = $1",
				    KC_DB_PARAMS(KC_DB_TEXT(r->remote_group)), &exists, err) < 0)
			return -1;
		if (!exists)
			return kc_error_set(err, KC_ERR_NOT_FOUND,
					    "remote security group \"%s\" not found",
					    r->remote_group);
	}
	if (kc_db_query(tx, "SELECT " RULE_COLS " FROM sg_rules WHERE sg = $1",
			KC_DB_PARAMS(KC_DB_TEXT(ra->sg)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) >= KC_SG_RULES_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "security group \"%s\" has %d rules already "
				    "(the most a group may have)",
				    ra->sg, KC_SG_RULES_MAX);
	json_array_foreach(rows, i, row)
	{
		struct kc_sg_rule old;
		struct kc_error e = {0};
		if (kc_db_sg_rule_from_row(row, &old, &e) == 0 && kc_sg_rule_equal(&old, r))
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "security group \"%s\" has this rule already (id %s)",
					    ra->sg, json_string_value(json_object_get(row, "id")));
	}
	kc_db_uuid(ra->id);
	kc_db_now(now);
	json_t *pmin = json_object_get(rj, "port_min"), *pmax = json_object_get(rj, "port_max");
	return kc_db_exec(
		tx,
		"INSERT INTO sg_rules (id, sg, direction, protocol, port_min, port_max, cidr, "
		"remote_group, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		KC_DB_PARAMS(KC_DB_TEXT(ra->id), KC_DB_TEXT(ra->sg),
			     KC_DB_TEXT(json_string_value(json_object_get(rj, "direction"))),
			     KC_DB_TEXT(json_string_value(json_object_get(rj, "protocol"))),
			     pmin ? KC_DB_INT(json_integer_value(pmin)) : KC_DB_NULL,
			     pmax ? KC_DB_INT(json_integer_value(pmax)) : KC_DB_NULL,
			     KC_DB_TEXT(json_string_value(json_object_get(rj, "cidr"))),
			     KC_DB_TEXT(r->remote_group[0] ? r->remote_group : NULL),
			     KC_DB_TEXT(now)),
		NULL, err);
}

int kc_db_sg_rule_add(struct kc_db *db, const char *sg, const struct kc_sg_rule *rule, char *ret_id,
		      struct kc_error *err)
{
	struct rule_add ra = {.sg = sg, .rule = rule, .id = ret_id};
	return kc_db_tx(db, rule_add_tx, &ra, err);
}

int kc_db_sg_rule_delete(struct kc_db *db, const char *sg, const char *id, struct kc_error *err)
{
	int64_t n = 0;
	if (kc_db_exec(db, "DELETE FROM sg_rules WHERE sg = $1 AND id = $2",
		       KC_DB_PARAMS(KC_DB_TEXT(sg), KC_DB_TEXT(id)), &n, err) < 0)
		return -1;
	if (!n)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "security group \"%s\" has no rule %s",
				    sg, id);
	return 0;
}

struct vm_set {
	const char *vm;
	const char *const *groups;
	size_t n;
	json_t *old;
};

static int vm_set_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct vm_set *vs = opaque;
	json_decref(vs->old);
	vs->old = NULL;
	if (kc_db_vm_sg_list(tx, vs->vm, &vs->old, err) < 0 ||
	    kc_db_exec(tx, "DELETE FROM vm_security_groups WHERE vm = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(vs->vm)), NULL, err) < 0)
		return -1;
	for (size_t i = 0; i < vs->n; i++) {
		int64_t exists = 0;
		if (kc_db_query_int(tx, "SELECT COUNT(*) FROM security_groups WHERE name = $1",
				    KC_DB_PARAMS(KC_DB_TEXT(vs->groups[i])), &exists, err) < 0)
			return -1;
		if (!exists)
			return kc_error_set(err, KC_ERR_NOT_FOUND,
					    "security group \"%s\" not found", vs->groups[i]);
		if (kc_db_exec(tx, "INSERT INTO vm_security_groups (vm, sg) VALUES ($1, $2)",
			       KC_DB_PARAMS(KC_DB_TEXT(vs->vm), KC_DB_TEXT(vs->groups[i])), NULL,
			       err) < 0)
			return -1;
	}
	return 0;
}

int kc_db_vm_sg_set(struct kc_db *db, const char *vm, const char *const *groups, size_t n,
		    json_t **ret_old, struct kc_error *err)
{
	struct vm_set vs = {.vm = vm, .groups = groups, .n = n};
	if (n > KC_SG_GROUPS_PER_VM)
		return kc_error_set(err, KC_ERR_INVALID, "a VM has at most %d security groups",
				    KC_SG_GROUPS_PER_VM);
	if (kc_db_tx(db, vm_set_tx, &vs, err) < 0) {
		json_decref(vs.old);
		return -1;
	}
	*ret_old = vs.old;
	return 0;
}

/* [{"name": x}] -> ["x"] */
static int names_of(struct kc_db *db, const char *sql, const char *arg, json_t **ret,
		    struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	json_t *out = json_array(), *row;
	size_t i;

	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_query(db, sql, KC_DB_PARAMS(KC_DB_TEXT(arg)), &rows, err) < 0) {
		json_decref(out);
		return -1;
	}
	json_array_foreach(rows, i, row) json_array_append(out, json_object_get(row, "name"));
	*ret = out;
	return 0;
}

int kc_db_vm_sg_list(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err)
{
	return names_of(db, "SELECT sg AS name FROM vm_security_groups WHERE vm = $1 ORDER BY sg",
			vm, ret, err);
}

int kc_db_sg_members(struct kc_db *db, const char *sg, json_t **ret, struct kc_error *err)
{
	return names_of(db, "SELECT vm AS name FROM vm_security_groups WHERE sg = $1 ORDER BY vm",
			sg, ret, err);
}

int kc_db_sg_hosts(struct kc_db *db, const char *sg, json_t **ret, struct kc_error *err)
{
	return names_of(
		db,
		"SELECT DISTINCT v.host AS name FROM vms v "
		"JOIN vm_security_groups m ON m.vm = v.name "
		"WHERE m.sg = $1 OR m.sg IN (SELECT sg FROM sg_rules WHERE remote_group = $1) "
		"ORDER BY v.host",
		sg, ret, err);
}

int kc_db_sg_host_vms(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err)
{
	return names_of(
		db,
		"SELECT DISTINCT v.name AS name FROM vms v "
		"JOIN vm_security_groups m ON m.vm = v.name WHERE v.host = $1 ORDER BY v.name",
		host, ret, err);
}

int kc_db_vm_sg_rules(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err)
{
	if (kc_db_query(db,
			"SELECT r.sg, r.direction, r.protocol, r.port_min, r.port_max, r.cidr, "
			"r.remote_group FROM sg_rules r JOIN vm_security_groups m ON m.sg = r.sg "
			"WHERE m.vm = $1 ORDER BY r.sg, r.created_at, r.id",
			KC_DB_PARAMS(KC_DB_TEXT(vm)), ret, err) < 0)
		return -1;
	drop_nulls(*ret);
	return 0;
}
