/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.h - the server's database: a small SQL table of operations per
 * backend (SQLite, PostgreSQL), as libvirt's drivers plug in, and entity
 * functions written once above it (db_hosts.h, db_vms.h, ...).
 *
 * SQL is written once, in the subset both engines share: placeholders
 * $1, $2, ... (SQLite reads them as named parameters, which we bind by
 * name, so order of appearance does not matter); TEXT, BIGINT, INTEGER;
 * ON CONFLICT ... DO UPDATE; RETURNING; CAST(... AS BIGINT); no casts
 * with "::", no backend functions.  Timestamps are TEXT in UTC,
 * "YYYY-MM-DDTHH:MM:SSZ", so that they compare as strings.  JSON values
 * are stored as TEXT.  The DDL is the one place that differs per backend
 * (db_schema.c): auto-increment ids and JSON checks.  Ids handed to
 * clients (users, jobs) are UUIDs we generate.
 *
 * Rows come back as a JSON array of objects, column name -> value:
 * integers as integers, NULL as null, everything else as strings (JSON
 * columns are parsed by the entity functions that know them).
 *
 * Every backend is safe to call from several threads at once.  Errors:
 * unique-key violations are KC_ERR_CONFLICT, foreign-key, NOT NULL and
 * CHECK violations KC_ERR_INVALID, a busy database, a serialisation
 * failure or a lost connection KC_ERR_UNAVAILABLE (kc_db_tx retries those).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct kc_db;

enum kc_db_dialect {
	KC_DB_SQLITE,
	KC_DB_POSTGRESQL,
};

enum kc_db_type {
	KC_DB_T_NULL, /* SQL NULL of no particular type (the column decides) */
	KC_DB_T_TEXT,
	KC_DB_T_INT,
	KC_DB_T_JSON, /* bound as its compact JSON text */
};

/* One bound value.  A NULL text or json binds SQL NULL. */
struct kc_db_param {
	enum kc_db_type type;
	const char *text;
	int64_t i;
	const json_t *json;
};

#define KC_DB_TEXT(s) ((struct kc_db_param){.type = KC_DB_T_TEXT, .text = (s)})
#define KC_DB_INT(v)  ((struct kc_db_param){.type = KC_DB_T_INT, .i = (v)})
#define KC_DB_JSON(j) ((struct kc_db_param){.type = KC_DB_T_JSON, .json = (j)})
#define KC_DB_NULL    ((struct kc_db_param){.type = KC_DB_T_NULL})
/* An int64 where a negative value means NULL (quotas: unlimited). */
#define KC_DB_INT_OR_NULL(v) ((v) < 0 ? KC_DB_NULL : KC_DB_INT(v))

/* Expands to the `params, n` pair of the functions below. */
#define KC_DB_PARAMS(...)                                                                          \
	((const struct kc_db_param[]){__VA_ARGS__}),                                               \
		(sizeof((const struct kc_db_param[]){__VA_ARGS__}) / sizeof(struct kc_db_param))

/* Transaction flags. */
enum {
	/* Serialised against every other exclusive transaction on the same
	 * database, even from another process or server, and reads see what
	 * those committed (migrations).  SQLite: BEGIN IMMEDIATE; PostgreSQL:
	 * READ COMMITTED and an advisory transaction lock. */
	KC_DB_TX_EXCLUSIVE = 1 << 0,
};

struct kc_db_ops {
	const char *name; /* "sqlite", "postgresql" */
	enum kc_db_dialect dialect;
	void (*close)(struct kc_db *db);
	/* Runs one statement (several, separated by ';', when n == 0).
	 * *ret_changes (may be NULL): rows inserted, updated or deleted. */
	int (*exec)(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    int64_t *ret_changes, struct kc_error *err);
	/* Runs one statement and returns its rows (see the top of this file). */
	int (*query)(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		     json_t **ret_rows, struct kc_error *err);
	/* Starts a transaction; *ret_tx is a handle for exec/query inside it
	 * (the connection stays pinned to it) until tx_commit or
	 * tx_rollback, which free it.  A failed commit has rolled back. */
	int (*tx_begin)(struct kc_db *db, unsigned flags, struct kc_db **ret_tx,
			struct kc_error *err);
	int (*tx_commit)(struct kc_db *tx, struct kc_error *err);
	void (*tx_rollback)(struct kc_db *tx);
};

/* Every backend's handle, and every transaction handle, starts with this. */
struct kc_db {
	const struct kc_db_ops *ops;
	bool in_tx; /* a transaction handle */
};

/* Opens (creating and migrating as needed) the database named by `spec`:
 * "postgresql://..." or "postgres://..." (a libpq URI) for PostgreSQL;
 * "sqlite:PATH" or a plain path for SQLite. */
int kc_db_open(const char *spec, struct kc_db **ret, struct kc_error *err);
void kc_db_close(struct kc_db *db); /* accepts NULL */

/* The backends; target_version < 0 means the latest (tests use an older
 * version to build a database as an old binary would). */
int kc_db_sqlite_open(const char *path, int target_version, struct kc_db **ret,
		      struct kc_error *err);
/* pool_size: connections kept (0: the default, 8). */
int kc_db_pg_open(const char *uri, int target_version, unsigned pool_size, struct kc_db **ret,
		  struct kc_error *err);
/* PostgreSQL cancels a statement that runs longer than this (server-side
 * statement_timeout on every pooled connection); it then fails with
 * KC_ERR_TIMEOUT.  Exclusive transactions (migrations) are exempt. */
#define KC_DB_PG_STATEMENT_TIMEOUT_MS 30000
/* Changes that limit for connections used from now on (0: the server's
 * own setting); KC_ERR_INVALID for a handle that is not PostgreSQL's. */
int kc_db_pg_set_statement_timeout(struct kc_db *db, unsigned ms, struct kc_error *err);

/* ---- statements (thin wrappers over the ops) ---- */

int kc_db_exec(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
	       int64_t *ret_changes, struct kc_error *err);
int kc_db_query(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		json_t **ret_rows, struct kc_error *err);
/* The first row, or *ret_row = NULL when there is none (not an error). */
int kc_db_query_row(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    json_t **ret_row, struct kc_error *err);
/* The first column of the first row as an integer (NULL or no row: 0). */
int kc_db_query_int(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    int64_t *ret, struct kc_error *err);

/* ---- transactions ---- */

/* Runs fn(tx, opaque, err) in a transaction and commits it; fn returning
 * -1 rolls back.  Serialisable on both backends.  A busy database, a
 * serialisation failure or a lost connection (KC_ERR_UNAVAILABLE) rolls
 * back and runs fn again, a few times with a growing pause: fn must only
 * do database work through `tx` (never through `db`, which would wait
 * for a second connection or, with SQLite, fail) and may run more than
 * once.  Called with a transaction handle, it runs fn inside that
 * transaction. */
int kc_db_tx(struct kc_db *db, int (*fn)(struct kc_db *tx, void *opaque, struct kc_error *err),
	     void *opaque, struct kc_error *err);
int kc_db_tx_flags(struct kc_db *db, unsigned flags,
		   int (*fn)(struct kc_db *tx, void *opaque, struct kc_error *err), void *opaque,
		   struct kc_error *err);

/* ---- schema (db_schema.c) ---- */

/* The latest schema version this binary knows. */
int kc_db_latest_version(void);
/* The database's version (0: empty). */
int kc_db_schema_version(struct kc_db *db, int *ret, struct kc_error *err);
/* Brings the schema to `target` (< 0: the latest), one transaction per
 * version; refuses a database newer than this binary.  Two servers
 * starting at once migrate one after the other. */
int kc_db_migrate(struct kc_db *db, int target, struct kc_error *err);

/* ---- helpers for the entity files ---- */

/* "YYYY-MM-DDTHH:MM:SSZ" now (UTC), or `offset_s` seconds from now. */
void kc_db_now(char buf[static 21]);
void kc_db_time_from_now(long long offset_s, char buf[static 21]);
/* A random (version 4) UUID. */
void kc_db_uuid(char buf[static 37]);
/* Replaces the string value of each named column of each row by the JSON
 * it holds (unparsable text becomes null). */
void kc_db_rows_parse_json(json_t *rows, const char *const *cols);
/* The text of a JSON param, malloc'd (NULL json: NULL); backends use it. */
char *kc_db_param_json_text(const struct kc_db_param *p);

/* The built-in admin user: the admin token maps to it. */
#define KC_DB_ADMIN_USER "admin"

#include "db_audit.h"
#include "db_hosts.h"
#include "db_inventory.h"
#include "db_jobs.h"
#include "db_tokens.h"
#include "db_users.h"
#include "db_vms.h"
