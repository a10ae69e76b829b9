/* SPDX-License-Identifier: Apache-2.0 */
/* db_audit.c - audit log entries. */
#include "db.h"

int kc_db_audit_add(struct kc_db *db, const char *user, const char *action, const char *target,
		    bool ok, const json_t *detail, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(db,
			  "INSERT INTO audit_log (at, \"user\", action, target, result, detail) "
			  "VALUES ($1, $2, $3, $4, $5, $6)",
			  KC_DB_PARAMS(KC_DB_TEXT(now), KC_DB_TEXT(user), KC_DB_TEXT(action),
				       KC_DB_TEXT(target), KC_DB_TEXT(ok ? "ok" : "error"),
				       KC_DB_JSON(detail)),
			  NULL, err);
}

int kc_db_audit_list(struct kc_db *db, const char *user, const char *since, int64_t before_id,
		     int limit, json_t **ret, struct kc_error *err)
{
	if (limit == 0)
		limit = 100;
	if (limit < 0 || limit > KC_DB_AUDIT_MAX_LIMIT)
		return kc_error_set(err, KC_ERR_INVALID, "limit must be 1..%d",
				    KC_DB_AUDIT_MAX_LIMIT);
	if (kc_db_query(db,
			"SELECT id, at, \"user\", action, target, result, detail FROM audit_log "
			"WHERE ($1 IS NULL OR \"user\" = $1) AND ($2 IS NULL OR at >= $2) "
			"AND ($3 <= 0 OR id < $3) ORDER BY id DESC LIMIT $4",
			KC_DB_PARAMS(KC_DB_TEXT(user), KC_DB_TEXT(since), KC_DB_INT(before_id),
				     KC_DB_INT(limit)),
			ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, (const char *const[]){"detail", NULL});
	return 0;
}
