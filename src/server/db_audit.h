/* SPDX-License-Identifier: Apache-2.0 */
/* db_audit.h - the audit log: who changed what, when, with what result. */
#pragma once

#include "db.h"

#define KC_DB_AUDIT_MAX_LIMIT 1000

/* Appends an entry; target and detail (any JSON) may be NULL. */
int kc_db_audit_add(struct kc_db *db, const char *user, const char *action, const char *target,
		    bool ok, const json_t *detail, struct kc_error *err);
/* Entries newest first: {"id","at","user","action","target","result","detail"}.
 * user / since ("YYYY-MM-DDTHH:MM:SSZ", inclusive) NULL: any; before_id
 * <= 0: from the newest (else only ids below it, for paging); limit
 * 1..KC_DB_AUDIT_MAX_LIMIT (0: 100), anything else KC_ERR_INVALID. */
int kc_db_audit_list(struct kc_db *db, const char *user, const char *since, int64_t before_id,
		     int limit, json_t **ret, struct kc_error *err);
