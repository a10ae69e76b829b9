/* SPDX-License-Identifier: Apache-2.0 */
/* db_tokens.c - token hashes and their users. */
#include "db.h"

#include "cleanup.h"
#include "json_util.h"

#define USER_ID "(SELECT id FROM users WHERE name = $1)"

int kc_db_token_count(struct kc_db *db, const char *user, const char *name, int64_t *ret,
		      struct kc_error *err)
{
	return kc_db_query_int(
		db, "SELECT COUNT(*) FROM tokens WHERE user_id = " USER_ID " AND name = $2",
		KC_DB_PARAMS(KC_DB_TEXT(user), KC_DB_TEXT(name)), ret, err);
}

int kc_db_token_insert(struct kc_db *db, const char *user, const char *name, const char *hash_hex,
		       const char *expires_at, int64_t *ret_id, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	char now[21];

	kc_db_now(now);
	/* INSERT ... SELECT: no row when the user does not exist. */
	if (kc_db_query_row(db,
			    "INSERT INTO tokens (name, hash, created_at, user_id, expires_at) "
			    "SELECT $2, $3, $4, id, $5 FROM users WHERE name = $1 RETURNING id",
			    KC_DB_PARAMS(KC_DB_TEXT(user), KC_DB_TEXT(name), KC_DB_TEXT(hash_hex),
					 KC_DB_TEXT(now), KC_DB_TEXT(expires_at)),
			    &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "user \"%s\" not found", user);
	if (ret_id)
		*ret_id = json_integer_value(json_object_get(row, "id"));
	return 0;
}

struct replace {
	const char *user, *name, *hash;
};

static int replace_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const struct replace *r = opaque;

	if (kc_db_exec(tx, "DELETE FROM tokens WHERE user_id = " USER_ID " AND name = $2",
		       KC_DB_PARAMS(KC_DB_TEXT(r->user), KC_DB_TEXT(r->name)), NULL, err) < 0)
		return -1;
	return kc_db_token_insert(tx, r->user, r->name, r->hash, NULL, NULL, err);
}

int kc_db_token_replace(struct kc_db *db, const char *user, const char *name, const char *hash_hex,
			struct kc_error *err)
{
	struct replace r = {user, name, hash_hex};

	return kc_db_tx(db, replace_tx, &r, err);
}

int kc_db_token_lookup(struct kc_db *db, const char *hash_hex, json_t **ret, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_query_row(db,
			       "SELECT t.id, t.name, t.user_id, u.name AS \"user\", u.role, "
			       "t.expires_at, t.last_used_at, t.created_at "
			       "FROM tokens t JOIN users u ON u.id = t.user_id "
			       "WHERE t.hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2)",
			       KC_DB_PARAMS(KC_DB_TEXT(hash_hex), KC_DB_TEXT(now)), ret, err);
}

int kc_db_token_touch(struct kc_db *db, int64_t id, struct kc_error *err)
{
	char now[21], minute_ago[21];

	kc_db_now(now);
	kc_db_time_from_now(-60, minute_ago);
	return kc_db_exec(db,
			  "UPDATE tokens SET last_used_at = $2 "
			  "WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
			  KC_DB_PARAMS(KC_DB_INT(id), KC_DB_TEXT(now), KC_DB_TEXT(minute_ago)),
			  NULL, err);
}

int kc_db_token_list(struct kc_db *db, const char *user, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT id, name, created_at, expires_at, last_used_at FROM tokens "
			   "WHERE user_id = " USER_ID " ORDER BY id DESC",
			   KC_DB_PARAMS(KC_DB_TEXT(user)), ret, err);
}

int kc_db_token_delete(struct kc_db *db, const char *user, int64_t id, struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db, "DELETE FROM tokens WHERE user_id = " USER_ID " AND id = $2",
		       KC_DB_PARAMS(KC_DB_TEXT(user), KC_DB_INT(id)), &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "token %lld not found", (long long)id);
	return 0;
}
