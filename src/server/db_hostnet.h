/* SPDX-License-Identifier: Apache-2.0 */
/* db_hostnet.h - table host_networks (schema version 11): the host
 * network declaration applied to each host and where it stands. */
#pragma once

#include <jansson.h>

#include "db.h"

/* Inserts or replaces the host's row, applied_at now; KC_ERR_NOT_FOUND if
 * the host is not in the inventory.  pending_id and error may be NULL. */
int kc_db_hostnet_put(struct kc_db *db, const char *host, const json_t *decl, const char *state,
		      const char *pending_id, const char *error, struct kc_error *err);
/* state: pending, confirmed, rolled_back or failed. */
int kc_db_hostnet_set_state(struct kc_db *db, const char *host, const char *state,
			    const char *error, struct kc_error *err);
/* The row {host, declaration, state, pending_id, error, applied_at}, or
 * *ret NULL when the host has none. */
int kc_db_hostnet_get(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err);
