/* SPDX-License-Identifier: Apache-2.0 */
/* auth.h - bearer tokens: creation of the admin token, request checks. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "db.h"
#include "error.h"

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

/* Checks an "Authorization" header value ("Bearer <token>").  NULL, a
 * malformed value or an unknown token is KC_ERR_UNAUTHORIZED with the same
 * message whatever the reason, so that it is no oracle. */
int kc_auth_check(struct kc_db *db, const char *authorization, struct kc_error *err);
