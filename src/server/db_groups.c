/* SPDX-License-Identifier: Apache-2.0 */
/* db_groups.c - affinity / anti-affinity groups (db_groups.h). */
#include "db_groups.h"

#include "cleanup.h"
#include "json_util.h"

#define GROUP_SELECT                                                                               \
	"SELECT g.name, g.policy, g.owner, g.created_at, COUNT(v.name) AS member_count "           \
	"FROM vm_groups g LEFT JOIN vms v ON v.vm_group = g.name "
#define GROUP_BY " GROUP BY g.name, g.policy, g.owner, g.created_at ORDER BY g.name"

int kc_db_group_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err)
{
	if (!owner)
		return kc_db_query(db, GROUP_SELECT GROUP_BY, NULL, 0, ret, err);
	return kc_db_query(db, GROUP_SELECT "WHERE g.owner = $1" GROUP_BY,
			   KC_DB_PARAMS(KC_DB_TEXT(owner)), ret, err);
}

int kc_db_group_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *g = NULL;
	json_t *members = NULL;

	if (kc_db_query_row(db, GROUP_SELECT "WHERE g.name = $1" GROUP_BY,
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &g, err) < 0)
		return -1;
	if (!g)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "group \"%s\" not found", name);
	if (kc_db_query(db, "SELECT name, host, state FROM vms WHERE vm_group = $1 ORDER BY name",
			KC_DB_PARAMS(KC_DB_TEXT(name)), &members, err) < 0)
		return -1;
	if (json_object_set_new(g, "members", members) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = steal_ptr(&g);
	return 0;
}

static int delete_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const char *name = opaque;
	int64_t exists = 0, members = 0;

	if (kc_db_query_int(tx, "SELECT COUNT(*) FROM vm_groups WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &exists, err) < 0 ||
	    kc_db_query_int(tx, "SELECT COUNT(*) FROM vms WHERE vm_group = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &members, err) < 0)
		return -1;
	if (!exists)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "group \"%s\" not found", name);
	if (members > 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "group \"%s\" still has %lld VM%s: delete them first", name,
				    (long long)members, members == 1 ? "" : "s");
	return kc_db_exec(tx, "DELETE FROM vm_groups WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name)), NULL, err);
}

int kc_db_group_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_tx(db, delete_tx, (void *)name, err);
}
