/* SPDX-License-Identifier: Apache-2.0 */
/* db_hostfw.h - the host firewall policy of each host (table host_firewall,
 * schema version 14; docs/networking.md "Host firewall"). */
#pragma once

#include "db.h"

/* Records `policy` for `host` (replacing the previous one) with `state`
 * (pending, confirmed, rolled_back, failed) and `error` (may be NULL),
 * applied now.  An unknown host is KC_ERR_NOT_FOUND. */
int kc_db_hostfw_put(struct kc_db *db, const char *host, const json_t *policy, const char *state,
		     const char *error, struct kc_error *err);
/* Changes the state (and error, may be NULL) of host's row. */
int kc_db_hostfw_set_state(struct kc_db *db, const char *host, const char *state, const char *error,
			   struct kc_error *err);
/* {"host","policy","state","error","applied_at"}, or *ret = NULL if the
 * host has no policy. */
int kc_db_hostfw_get(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err);
