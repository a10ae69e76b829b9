/* SPDX-License-Identifier: Apache-2.0 */
/* db_users.c - users, roles, quotas. */
#include "db.h"

#include <string.h>

#include "cleanup.h"
#include "json_util.h"

#define USER_COLS                                                                                  \
	"id, name, role, max_vms, max_vcpus, max_memory_mib, max_disk_gib, created_at, updated_at"

static int check_role(const char *role, struct kc_error *err)
{
	if (!role || (strcmp(role, "admin") != 0 && strcmp(role, "user") != 0))
		return kc_error_set(err, KC_ERR_INVALID, "role must be \"admin\" or \"user\"");
	return 0;
}

/* Runs an UPDATE of one user; no row is KC_ERR_NOT_FOUND. */
static int update_user(struct kc_db *db, const char *name, const char *sql,
		       const struct kc_db_param *params, size_t n, struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db, sql, params, n, &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "user \"%s\" not found", name);
	return 0;
}

int kc_db_user_create(struct kc_db *db, const char *name, const char *role,
		      const char *password_hash, json_t **ret, struct kc_error *err)
{
	struct kc_error e = {0};
	char id[37], now[21];

	if (check_role(role, err) < 0)
		return -1;
	kc_db_uuid(id);
	kc_db_now(now);
	if (kc_db_exec(db,
		       "INSERT INTO users (id, name, role, password_hash, created_at, updated_at) "
		       "VALUES ($1, $2, $3, $4, $5, $5)",
		       KC_DB_PARAMS(KC_DB_TEXT(id), KC_DB_TEXT(name), KC_DB_TEXT(role),
				    KC_DB_TEXT(password_hash), KC_DB_TEXT(now)),
		       NULL, &e) < 0) {
		if (e.code == KC_ERR_CONFLICT)
			return kc_error_set(err, KC_ERR_CONFLICT, "user \"%s\" already exists",
					    name);
		if (err)
			*err = e;
		return -1;
	}
	return ret ? kc_db_user_get(db, name, ret, err) : 0;
}

int kc_db_user_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	json_t *row = NULL;

	if (kc_db_query_row(db, "SELECT " USER_COLS " FROM users WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "user \"%s\" not found", name);
	*ret = row;
	return 0;
}

int kc_db_user_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db, "SELECT " USER_COLS " FROM users ORDER BY name", NULL, 0, ret, err);
}

int kc_db_user_password_hash(struct kc_db *db, const char *name, char **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (kc_db_query_row(db, "SELECT password_hash FROM users WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "user \"%s\" not found", name);
	const char *h = json_string_value(json_object_get(row, "password_hash"));
	*ret = h ? strdup(h) : NULL;
	if (h && !*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

int kc_db_user_set_password(struct kc_db *db, const char *name, const char *password_hash,
			    struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return update_user(
		db, name, "UPDATE users SET password_hash = $2, updated_at = $3 WHERE name = $1",
		KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(password_hash), KC_DB_TEXT(now)), err);
}

int kc_db_user_set_role(struct kc_db *db, const char *name, const char *role, struct kc_error *err)
{
	char now[21];

	if (check_role(role, err) < 0)
		return -1;
	if (strcmp(name, KC_DB_ADMIN_USER) == 0 && strcmp(role, "admin") != 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN, "the built-in admin stays an admin");
	kc_db_now(now);
	return update_user(db, name, "UPDATE users SET role = $2, updated_at = $3 WHERE name = $1",
			   KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(role), KC_DB_TEXT(now)), err);
}

int kc_db_user_set_quota(struct kc_db *db, const char *name, const struct kc_db_quota *q,
			 struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return update_user(db, name,
			   "UPDATE users SET max_vms = $2, max_vcpus = $3, max_memory_mib = $4, "
			   "max_disk_gib = $5, updated_at = $6 WHERE name = $1",
			   KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_INT_OR_NULL(q->max_vms),
					KC_DB_INT_OR_NULL(q->max_vcpus),
					KC_DB_INT_OR_NULL(q->max_memory_mib),
					KC_DB_INT_OR_NULL(q->max_disk_gib), KC_DB_TEXT(now)),
			   err);
}

int kc_db_user_usage(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	return kc_db_query_row(
		db,
		"SELECT COUNT(*) AS vms, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS vcpus, "
		"CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT) AS memory_mib, "
		"CAST(COALESCE(SUM(disk_gib), 0) AS BIGINT) AS disk_gib "
		"FROM vms WHERE owner = $1",
		KC_DB_PARAMS(KC_DB_TEXT(name)), ret, err);
}

static int delete_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const char *name = opaque;
	int64_t vms = 0;

	if (kc_db_query_int(tx, "SELECT COUNT(*) FROM vms WHERE owner = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &vms, err) < 0)
		return -1;
	if (vms > 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "user \"%s\" still owns %lld VMs", name,
				    (long long)vms);
	return update_user(tx, name, "DELETE FROM users WHERE name = $1",
			   KC_DB_PARAMS(KC_DB_TEXT(name)), err);
}

int kc_db_user_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	if (strcmp(name, KC_DB_ADMIN_USER) == 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN, "the built-in admin cannot be deleted");
	return kc_db_tx(db, delete_tx, (void *)name, err);
}
