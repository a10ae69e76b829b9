/* SPDX-License-Identifier: Apache-2.0 */
/* db_hosts.h - the hosts table as the all-in-one server records itself. */
#pragma once

#include "db.h"

/* One host row; strings are borrowed.  facts may be NULL. */
struct kc_db_host {
	const char *name;
	const char *uuid;
	const json_t *facts;
	const char *accel;
	const char *accel_reason;
};

/* Inserts or updates the host's facts (a new row is in state Up). */
int kc_db_host_upsert(struct kc_db *db, const struct kc_db_host *h, struct kc_error *err);
/* Stores the latest host check; a missing host is KC_ERR_NOT_FOUND. */
int kc_db_host_set_check(struct kc_db *db, const char *name, const json_t *check,
			 const char *checked_at, struct kc_error *err);
/* {"name","uuid","facts","accel","accel_reason","check_result","checked_at","updated_at",
 *  "zone","cluster","state","cert_serial","last_seen_at"}; facts and check_result parsed.
 * A missing host is KC_ERR_NOT_FOUND. */
int kc_db_host_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* Every host, by name. */
int kc_db_host_list(struct kc_db *db, json_t **ret, struct kc_error *err);
