/* SPDX-License-Identifier: Apache-2.0 */
/* auth.h - bearer tokens: creation of the admin token, request checks. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "db.h"
#include "error.h"
#include "validate.h"

#define KC_TOKEN_BYTES	 32
#define KC_TOKEN_HEX_LEN (KC_TOKEN_BYTES * 2)

enum {
	KC_AUTH_SHOW_TOKEN = 1 << 0, /* put a new token itself in *ret_line */
	KC_AUTH_RESET = 1 << 1,	     /* replace the admin token (--reset-admin-token) */
};

/* On the first start (no token in the database), or with KC_AUTH_RESET,
 * creates the admin token: writes <data_dir>/admin.token (0600, atomically,
 * synced) and stores its hash, replacing the old hashes on a reset.
 * *ret_line is the line to show the user (malloc'd): "admin token: T" with
 * KC_AUTH_SHOW_TOKEN, else "admin token: created, in <path> (mode 0600)"
 * ("replaced" on a reset); "admin token: in <path>" when nothing was made.
 * Warns on `log` (may be NULL) when tokens exist but the file is missing.
 * Wipe *ret_line with kc_auth_line_free(). */
int kc_auth_init(struct kc_db *db, const char *data_dir, unsigned flags, FILE *log, char **ret_line,
		 struct kc_error *err);
void kc_auth_line_free(char *line); /* accepts NULL */

/* Who a request acts as: the user its token belongs to and their role. */
struct kc_principal {
	char user[KC_NAME_MAX + 1]; /* "" when nobody is authenticated */
	char role[8];		    /* "admin" or "user" */
	int64_t token_id;
};

/* Resolves an "Authorization" header value into the token's user and
 * role; failures as kc_auth_check. */
int kc_auth_identify(struct kc_db *db, const char *authorization, struct kc_principal *ret,
		     struct kc_error *err);

/* Makes a new token for `user` called `name`, valid ttl_s seconds (0:
 * forever), and stores its hash.  The token itself goes to ret_token,
 * once; *ret_id (may be NULL) gets its id and ret_expires (may be NULL,
 * 21 bytes) its expiry or "". */
int kc_auth_token_issue(struct kc_db *db, const char *user, const char *name, long ttl_s,
			char ret_token[KC_TOKEN_HEX_LEN + 1], int64_t *ret_id, char *ret_expires,
			struct kc_error *err);

/* An argon2id hash (crypto_pwhash_str, interactive limits) of a password
 * of 8..KC_PASSWORD_MAX bytes, malloc'd in *ret; a bad length is
 * KC_ERR_INVALID. */
#define KC_PASSWORD_MIN 8
#define KC_PASSWORD_MAX 1024
int kc_auth_password_hash(const char *password, char **ret, struct kc_error *err);
/* Checks user + password; any mismatch (unknown user, no password, wrong
 * password) is the same KC_ERR_UNAUTHORIZED and costs the same time. */
int kc_auth_password_check(struct kc_db *db, const char *user, const char *password,
			   struct kc_error *err);

/* Checks an "Authorization" header value ("Bearer <token>").  NULL, a
 * malformed value or an unknown token is KC_ERR_UNAUTHORIZED with the same
 * message whatever the reason, so that it is no oracle. */
int kc_auth_check(struct kc_db *db, const char *authorization, struct kc_error *err);
