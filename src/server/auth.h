/* SPDX-License-Identifier: Apache-2.0 */
/* auth.h - bearer tokens: creation of the admin token, request checks. */
#pragma once

#include <stdbool.h>

#include "db.h"
#include "error.h"

#define KC_TOKEN_BYTES	 32
#define KC_TOKEN_HEX_LEN (KC_TOKEN_BYTES * 2)

/* On the first start (no token in the database) creates the admin token
 * and writes it to <data_dir>/admin.token (0600).  *ret_line is the line
 * to show the user (malloc'd): "admin token: T" the first time, "admin
 * token: in <path>" later.  Wipe it with kc_auth_line_free(). */
int kc_auth_init(struct kc_db *db, const char *data_dir, char **ret_line, struct kc_error *err);
void kc_auth_line_free(char *line); /* accepts NULL */

/* Checks an "Authorization" header value ("Bearer <token>").  NULL, a
 * malformed value or an unknown token is KC_ERR_UNAUTHORIZED with the same
 * message whatever the reason, so that it is no oracle. */
int kc_auth_check(struct kc_db *db, const char *authorization, struct kc_error *err);
