/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.h - the server's database behind a small table of operations, as
 * libvirt's drivers plug in, so that PostgreSQL can be added next to SQLite
 * without touching callers.
 *
 * Rows cross this interface as jansson objects with the column names as
 * keys (JSON columns are parsed into JSON values).  Every backend must
 * be safe to call from several threads at once.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

struct kc_db;

/* One host row; strings are borrowed.  facts / check may be NULL. */
struct kc_db_host {
	const char *name;
	const char *uuid;
	const json_t *facts;
	const char *accel;
	const char *accel_reason;
};

struct kc_db_ops {
	const char *name;
	void (*close)(struct kc_db *db);
	int (*schema_version)(struct kc_db *db, int *ret, struct kc_error *err);

	int (*host_upsert)(struct kc_db *db, const struct kc_db_host *h, struct kc_error *err);
	int (*host_set_check)(struct kc_db *db, const char *name, const json_t *check,
			      const char *checked_at, struct kc_error *err);
	/* {"name","uuid","facts","accel","accel_reason","check","checked_at","updated_at"} */
	int (*host_get)(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
	int (*host_list)(struct kc_db *db, json_t **ret, struct kc_error *err);

	/* A duplicate name is KC_ERR_CONFLICT. */
	int (*vm_insert)(struct kc_db *db, const char *name, const char *host, const char *state,
			 const json_t *request, struct kc_error *err);
	/* uuid may be NULL (left unchanged).  Missing row: KC_ERR_NOT_FOUND. */
	int (*vm_update)(struct kc_db *db, const char *name, const char *uuid, const char *state,
			 struct kc_error *err);
	/* Updates the state unless the row is 'creating' (owned by a running
	 * create); a missing row is not an error. */
	int (*vm_note_state)(struct kc_db *db, const char *name, const char *state,
			     struct kc_error *err);
	int (*vm_delete)(struct kc_db *db, const char *name, struct kc_error *err);
	/* {"name","uuid","host","state","request","created_at","updated_at"};
	 * a missing row is KC_ERR_NOT_FOUND. */
	int (*vm_get)(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
	int (*vm_list)(struct kc_db *db, json_t **ret, struct kc_error *err);

	int (*token_count)(struct kc_db *db, long *ret, struct kc_error *err);
	int (*token_insert)(struct kc_db *db, const char *name, const char *hash_hex,
			    struct kc_error *err);
	/* Removes every token called `name` and adds one with hash_hex, in
	 * one transaction (the old tokens stay valid if it fails). */
	int (*token_replace)(struct kc_db *db, const char *name, const char *hash_hex,
			     struct kc_error *err);
	int (*token_lookup)(struct kc_db *db, const char *hash_hex, bool *ret_found,
			    struct kc_error *err);
};

/* Every backend's handle starts with this. */
struct kc_db {
	const struct kc_db_ops *ops;
};

/* Opens (creating and migrating as needed) the database named by `spec`:
 * "sqlite:PATH" or a plain path for SQLite; "postgresql://..." is
 * recognised and refused until that backend exists. */
int kc_db_open(const char *spec, struct kc_db **ret, struct kc_error *err);
void kc_db_close(struct kc_db *db); /* accepts NULL */

/* The latest schema version this binary knows. */
int kc_db_latest_version(void);

/* SQLite backend entry point; target_version < 0 means the latest (tests
 * use an older version to build a database as an old binary would). */
int kc_db_sqlite_open(const char *path, int target_version, struct kc_db **ret,
		      struct kc_error *err);
