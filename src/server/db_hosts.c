/* SPDX-License-Identifier: Apache-2.0 */
/* db_hosts.c - host rows: facts and checks. */
#include "db.h"

#include "cleanup.h"
#include "json_util.h"

#define HOST_COLS                                                                                  \
	"name, uuid, facts, accel, accel_reason, check_result, checked_at, updated_at, zone, "     \
	"cluster, state, cert_serial, last_seen_at, flags, address"

static const char *const host_json_cols[] = {"facts", "check_result", "flags", NULL};

int kc_db_host_upsert(struct kc_db *db, const struct kc_db_host *h, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(db,
			  "INSERT INTO hosts (name, uuid, facts, accel, accel_reason, updated_at) "
			  "VALUES ($1, $2, $3, $4, $5, $6) "
			  "ON CONFLICT (name) DO UPDATE SET uuid = excluded.uuid, "
			  "facts = excluded.facts, accel = excluded.accel, "
			  "accel_reason = excluded.accel_reason, updated_at = excluded.updated_at",
			  KC_DB_PARAMS(KC_DB_TEXT(h->name), KC_DB_TEXT(h->uuid),
				       KC_DB_JSON(h->facts), KC_DB_TEXT(h->accel),
				       KC_DB_TEXT(h->accel_reason), KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_db_host_set_check(struct kc_db *db, const char *name, const json_t *check,
			 const char *checked_at, struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db, "UPDATE hosts SET check_result = $2, checked_at = $3 WHERE name = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_JSON(check), KC_DB_TEXT(checked_at)),
		       &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", name);
	return 0;
}

int kc_db_host_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;

	if (kc_db_query(db, "SELECT " HOST_COLS " FROM hosts WHERE name = $1",
			KC_DB_PARAMS(KC_DB_TEXT(name)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", name);
	kc_db_rows_parse_json(rows, host_json_cols);
	*ret = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_host_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	if (kc_db_query(db, "SELECT " HOST_COLS " FROM hosts ORDER BY name", NULL, 0, ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, host_json_cols);
	return 0;
}
