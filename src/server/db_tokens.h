/* SPDX-License-Identifier: Apache-2.0 */
/* db_tokens.h - API tokens: only their hashes, each belonging to a user. */
#pragma once

#include "db.h"

/* How many tokens called `name` the user has. */
int kc_db_token_count(struct kc_db *db, const char *user, const char *name, int64_t *ret,
		      struct kc_error *err);
/* Adds a token of `user` (hash_hex: its hash); expires_at NULL: never.
 * *ret_id (may be NULL) gets its id.  A duplicate hash is
 * KC_ERR_CONFLICT, an unknown user KC_ERR_NOT_FOUND. */
int kc_db_token_insert(struct kc_db *db, const char *user, const char *name, const char *hash_hex,
		       const char *expires_at, int64_t *ret_id, struct kc_error *err);
/* Removes the user's tokens called `name` and adds one with hash_hex, in
 * one transaction (the old tokens stay valid if it fails). */
int kc_db_token_replace(struct kc_db *db, const char *user, const char *name, const char *hash_hex,
			struct kc_error *err);
/* The unexpired token with this hash: {"id","name","user_id","user","role","expires_at",
 * "last_used_at","created_at"}, or *ret = NULL when there is none. */
int kc_db_token_lookup(struct kc_db *db, const char *hash_hex, json_t **ret, struct kc_error *err);
/* Records a use, at most once a minute per token (a write per request
 * would serialise every request on the database). */
int kc_db_token_touch(struct kc_db *db, int64_t id, struct kc_error *err);
/* The user's tokens (never their hashes), newest first. */
int kc_db_token_list(struct kc_db *db, const char *user, json_t **ret, struct kc_error *err);
/* Removes one of the user's tokens; not the user's: KC_ERR_NOT_FOUND. */
int kc_db_token_delete(struct kc_db *db, const char *user, int64_t id, struct kc_error *err);
