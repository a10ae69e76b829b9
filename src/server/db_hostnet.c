/* SPDX-License-Identifier: Apache-2.0 */
/* db_hostnet.c - table host_networks (db_hostnet.h). */
#include "cleanup.h"
#include "db_hostnet.h"
#include "json_util.h"

static const char *const json_cols[] = {"declaration", NULL};

#define OPT_TEXT(s) ((s) ? KC_DB_TEXT(s) : KC_DB_NULL)

int kc_db_hostnet_put(struct kc_db *db, const char *host, const json_t *decl, const char *state,
		      const char *pending_id, const char *error, struct kc_error *err)
{
	char now[21];
	int64_t n = 0;

	kc_db_now(now);
	if (kc_db_query_int(db, "SELECT COUNT(*) FROM hosts WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(host)), &n, err) < 0)
		return -1;
	if (n == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", host);
	return kc_db_exec(db,
			  "INSERT INTO host_networks (host, declaration, state, pending_id, error, "
			  "applied_at) VALUES ($1, $2, $3, $4, $5, $6) "
			  "ON CONFLICT (host) DO UPDATE SET declaration = excluded.declaration, "
			  "state = excluded.state, pending_id = excluded.pending_id, "
			  "error = excluded.error, applied_at = excluded.applied_at",
			  KC_DB_PARAMS(KC_DB_TEXT(host), KC_DB_JSON(decl), KC_DB_TEXT(state),
				       OPT_TEXT(pending_id), OPT_TEXT(error), KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_db_hostnet_set_state(struct kc_db *db, const char *host, const char *state,
			    const char *error, struct kc_error *err)
{
	int64_t changes = 0;
	if (kc_db_exec(db, "UPDATE host_networks SET state = $2, error = $3 WHERE host = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(host), KC_DB_TEXT(state), OPT_TEXT(error)), &changes,
		       err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" has no network declaration",
				    host);
	return 0;
}

int kc_db_hostnet_get(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	if (kc_db_query(db,
			"SELECT host, declaration, state, pending_id, error, applied_at "
			"FROM host_networks WHERE host = $1",
			KC_DB_PARAMS(KC_DB_TEXT(host)), &rows, err) < 0)
		return -1;
	kc_db_rows_parse_json(rows, json_cols);
	json_t *row = json_array_get(rows, 0);
	*ret = row ? json_incref(row) : NULL;
	return 0;
}
