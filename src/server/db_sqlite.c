/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_sqlite.c - the SQLite backend of db.h.
 *
 * One connection guarded by a mutex: requests run on libmicrohttpd's
 * threads and the agent's event thread, and every operation here is a
 * statement or two, so serialising them costs less than a connection per
 * thread.  WAL mode lets a future read-only reader (CLI, backup) in while
 * we write.  Every statement that carries a value binds it as a parameter.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "http_util.h"
#include "json_util.h"

struct kc_db_sqlite {
	struct kc_db base;
	sqlite3 *conn;
	pthread_mutex_t lock;
};

/*
 * Versioned migrations: entry i brings the schema from version i to i+1.
 * Append only; never edit a released entry.  Static SQL, so exec is fine.
 */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE hosts ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  uuid TEXT,"
	"  facts TEXT CHECK (facts IS NULL OR json_valid(facts)),"
	"  accel TEXT,"
	"  accel_reason TEXT,"
	"  check_result TEXT CHECK (check_result IS NULL OR json_valid(check_result)),"
	"  checked_at TEXT,"
	"  updated_at TEXT NOT NULL"
	");"
	"CREATE TABLE vms ("
	"  name TEXT PRIMARY KEY NOT NULL,"
	"  uuid TEXT,"
	"  host TEXT NOT NULL REFERENCES hosts(name) ON UPDATE CASCADE,"
	"  state TEXT NOT NULL,"
	"  request TEXT NOT NULL CHECK (json_valid(request)),"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL"
	");"
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  created_at TEXT NOT NULL"
	");",
	/* 2: list a host's VMs without a scan */
	"CREATE INDEX vms_host ON vms(host);",
};

int kc_db_latest_version(void)
{
	return (int)KC_ARRAY_SIZE(migrations);
}

static struct kc_db_sqlite *to_sq(struct kc_db *db)
{
	return (struct kc_db_sqlite *)db;
}

static int sq_error(struct kc_db_sqlite *s, struct kc_error *err, const char *what)
{
	int code = sqlite3_extended_errcode(s->conn);
	enum kc_errcode kc = KC_ERR_INTERNAL;

	if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE)
		kc = KC_ERR_CONFLICT;
	else if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
		kc = KC_ERR_UNAVAILABLE;
	return kc_error_set(err, kc, "database: %s: %s", what, sqlite3_errmsg(s->conn));
}

static void stmt_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

static void unlockp(pthread_mutex_t **m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}
#define LOCKED(s)                                                                                  \
	pthread_mutex_t *_kc_lock_ _cleanup_(unlockp) = &(s)->lock;                                \
	pthread_mutex_lock(_kc_lock_)

static int prepare(struct kc_db_sqlite *s, const char *sql, sqlite3_stmt **st, struct kc_error *err)
{
	if (sqlite3_prepare_v2(s->conn, sql, -1, st, NULL) != SQLITE_OK)
		return sq_error(s, err, "prepare");
	return 0;
}

/* Binds NULL for a NULL string. */
static int bind_text(sqlite3_stmt *st, int idx, const char *v)
{
	if (!v)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT);
}

static int bind_json(sqlite3_stmt *st, int idx, const json_t *v)
{
	if (!v)
		return sqlite3_bind_null(st, idx);
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return SQLITE_NOMEM;
	return sqlite3_bind_text(st, idx, text, -1, free);
}

/* Runs a statement that returns no rows. */
static int step_done(struct kc_db_sqlite *s, sqlite3_stmt *st, const char *what,
		     struct kc_error *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return sq_error(s, err, what);
	return 0;
}

/* Column i as a JSON value: JSON columns parsed, NULL as null. */
static json_t *column_json(sqlite3_stmt *st, int i, bool is_json)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return json_null();
	const char *text = (const char *)sqlite3_column_text(st, i);
	if (!is_json)
		return json_string(text);
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	return j ? j : json_null();
}

/* The current row as an object; `json_cols` names the JSON columns. */
static json_t *row_object(sqlite3_stmt *st, const char *const *json_cols)
{
	json_t *obj = json_object();
	int n = sqlite3_column_count(st);

	for (int i = 0; obj && i < n; i++) {
		const char *col = sqlite3_column_name(st, i);
		bool is_json = false;
		for (size_t k = 0; json_cols && json_cols[k]; k++)
			if (strcmp(col, json_cols[k]) == 0)
				is_json = true;
		json_object_set_new(obj, col, column_json(st, i, is_json));
	}
	return obj;
}

static int query_rows(struct kc_db_sqlite *s, sqlite3_stmt *st, const char *const *json_cols,
		      json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *arr = json_array();
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, row_object(st, json_cols));
	if (rc != SQLITE_DONE)
		return sq_error(s, err, "query");
	*ret = steal_ptr(&arr);
	return 0;
}

/* Runs `sql`, whose one parameter ?1 is `name`, and returns its one row;
 * no row is KC_ERR_NOT_FOUND "<what> "<name>" not found". */
static int query_one(struct kc_db_sqlite *s, const char *sql, const char *name,
		     const char *const *json_cols, const char *what, json_t **ret,
		     struct kc_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *rows = NULL;

	{
		LOCKED(s);
		if (prepare(s, sql, &st, err) < 0)
			return -1;
		if (bind_text(st, 1, name))
			return sq_error(s, err, "bind");
		if (query_rows(s, st, json_cols, &rows, err) < 0)
			return -1;
	}
	if (json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "%s \"%s\" not found", what, name);
	*ret = json_incref(json_array_get(rows, 0));
	return 0;
}

/* ---- schema ---- */

static int exec(struct kc_db_sqlite *s, const char *sql, struct kc_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(s->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
		kc_error_set(err, KC_ERR_INTERNAL, "database: %s", msg ? msg : "exec failed");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int get_version(struct kc_db_sqlite *s, int *ret, struct kc_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (prepare(s, "SELECT version FROM schema_version", &st, err) < 0)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	else if (rc == SQLITE_DONE)
		*ret = 0;
	else
		return sq_error(s, err, "read schema_version");
	return 0;
}

static int migrate(struct kc_db_sqlite *s, int target, struct kc_error *err)
{
	int version = 0;

	if (exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", err) <
	    0)
		return -1;
	if (get_version(s, &version, err) < 0)
		return -1;
	if (version > kc_db_latest_version())
		return kc_error_set(err, KC_ERR_INTERNAL,
				    "database schema version %d is newer than this kvmcloud-server "
				    "knows (%d); refusing to touch it",
				    version, kc_db_latest_version());
	for (int v = version; v < target; v++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;

		/* One transaction per step: a failed step leaves the previous
		 * version intact rather than half a schema. */
		if (exec(s, "BEGIN IMMEDIATE", err) < 0)
			return -1;
		if (exec(s, migrations[v], err) < 0 ||
		    prepare(s,
			    v == 0 ? "INSERT INTO schema_version (version) VALUES (?1)"
				   : "UPDATE schema_version SET version = ?1",
			    &st, err) < 0 ||
		    sqlite3_bind_int(st, 1, v + 1) != SQLITE_OK ||
		    step_done(s, st, "update schema_version", err) < 0) {
			exec(s, "ROLLBACK", NULL);
			return kc_error_set(err, KC_ERR_INTERNAL, "migration %d failed", v + 1);
		}
		if (exec(s, "COMMIT", err) < 0)
			return -1;
	}
	return 0;
}

static int sq_schema_version(struct kc_db *db, int *ret, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	LOCKED(s);
	return get_version(s, ret, err);
}

/* ---- hosts ---- */

static int sq_host_upsert(struct kc_db *db, const struct kc_db_host *h, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char now[21];

	kc_http_now_iso8601(now);
	LOCKED(s);
	if (prepare(s,
		    "INSERT INTO hosts (name, uuid, facts, accel, accel_reason, updated_at) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
		    "ON CONFLICT(name) DO UPDATE SET uuid = excluded.uuid, facts = excluded.facts, "
		    "accel = excluded.accel, accel_reason = excluded.accel_reason, "
		    "updated_at = excluded.updated_at",
		    &st, err) < 0)
		return -1;
	if (bind_text(st, 1, h->name) || bind_text(st, 2, h->uuid) || bind_json(st, 3, h->facts) ||
	    bind_text(st, 4, h->accel) || bind_text(st, 5, h->accel_reason) ||
	    bind_text(st, 6, now))
		return sq_error(s, err, "bind");
	return step_done(s, st, "upsert host", err);
}

static int sq_host_set_check(struct kc_db *db, const char *name, const json_t *check,
			     const char *checked_at, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	LOCKED(s);
	if (prepare(s, "UPDATE hosts SET check_result = ?2, checked_at = ?3 WHERE name = ?1", &st,
		    err) < 0)
		return -1;
	if (bind_text(st, 1, name) || bind_json(st, 2, check) || bind_text(st, 3, checked_at))
		return sq_error(s, err, "bind");
	if (step_done(s, st, "store host check", err) < 0)
		return -1;
	if (sqlite3_changes(s->conn) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", name);
	return 0;
}

static const char *const host_json_cols[] = {"facts", "check_result", NULL};
#define HOST_COLS "name, uuid, facts, accel, accel_reason, check_result, checked_at, updated_at"

static int sq_host_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	LOCKED(s);
	if (prepare(s, "SELECT " HOST_COLS " FROM hosts ORDER BY name", &st, err) < 0)
		return -1;
	return query_rows(s, st, host_json_cols, ret, err);
}

static int sq_host_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	return query_one(to_sq(db), "SELECT " HOST_COLS " FROM hosts WHERE name = ?1", name,
			 host_json_cols, "host", ret, err);
}

/* ---- VMs ---- */

static int sq_vm_insert(struct kc_db *db, const char *name, const char *host, const char *state,
			const json_t *request, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char now[21];

	kc_http_now_iso8601(now);
	LOCKED(s);
	if (prepare(s,
		    "INSERT INTO vms (name, host, state, request, created_at, updated_at) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
		    &st, err) < 0)
		return -1;
	if (bind_text(st, 1, name) || bind_text(st, 2, host) || bind_text(st, 3, state) ||
	    bind_json(st, 4, request) || bind_text(st, 5, now))
		return sq_error(s, err, "bind");
	if (sqlite3_step(st) != SQLITE_DONE) {
		int code = sqlite3_extended_errcode(s->conn);
		if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE)
			return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" already exists", name);
		return sq_error(s, err, "insert VM");
	}
	return 0;
}

static int sq_vm_update(struct kc_db *db, const char *name, const char *uuid, const char *state,
			struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char now[21];

	kc_http_now_iso8601(now);
	LOCKED(s);
	if (prepare(s,
		    "UPDATE vms SET uuid = COALESCE(?2, uuid), state = ?3, updated_at = ?4 "
		    "WHERE name = ?1",
		    &st, err) < 0)
		return -1;
	if (bind_text(st, 1, name) || bind_text(st, 2, uuid) || bind_text(st, 3, state) ||
	    bind_text(st, 4, now))
		return sq_error(s, err, "bind");
	if (step_done(s, st, "update VM", err) < 0)
		return -1;
	if (sqlite3_changes(s->conn) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "VM \"%s\" not found", name);
	return 0;
}

static int sq_vm_note_state(struct kc_db *db, const char *name, const char *state,
			    struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char now[21];

	kc_http_now_iso8601(now);
	LOCKED(s);
	if (prepare(s,
		    "UPDATE vms SET state = ?2, updated_at = ?3 "
		    "WHERE name = ?1 AND state <> 'creating' AND state <> ?2",
		    &st, err) < 0)
		return -1;
	if (bind_text(st, 1, name) || bind_text(st, 2, state) || bind_text(st, 3, now))
		return sq_error(s, err, "bind");
	return step_done(s, st, "note VM state", err);
}

static int sq_vm_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	LOCKED(s);
	if (prepare(s, "DELETE FROM vms WHERE name = ?1", &st, err) < 0)
		return -1;
	if (bind_text(st, 1, name))
		return sq_error(s, err, "bind");
	return step_done(s, st, "delete VM", err);
}

static const char *const vm_json_cols[] = {"request", NULL};
#define VM_COLS "name, uuid, host, state, request, created_at, updated_at"

static int sq_vm_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	LOCKED(s);
	if (prepare(s, "SELECT " VM_COLS " FROM vms ORDER BY name", &st, err) < 0)
		return -1;
	return query_rows(s, st, vm_json_cols, ret, err);
}

static int sq_vm_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	return query_one(to_sq(db), "SELECT " VM_COLS " FROM vms WHERE name = ?1", name,
			 vm_json_cols, "VM", ret, err);
}

/* ---- tokens ---- */

static int sq_token_count(struct kc_db *db, long *ret, struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	LOCKED(s);
	if (prepare(s, "SELECT COUNT(*) FROM tokens", &st, err) < 0)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW)
		return sq_error(s, err, "count tokens");
	*ret = (long)sqlite3_column_int64(st, 0);
	return 0;
}

static int sq_token_insert(struct kc_db *db, const char *name, const char *hash_hex,
			   struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char now[21];

	kc_http_now_iso8601(now);
	LOCKED(s);
	if (prepare(s, "INSERT INTO tokens (name, hash, created_at) VALUES (?1, ?2, ?3)", &st,
		    err) < 0)
		return -1;
	if (bind_text(st, 1, name) || bind_text(st, 2, hash_hex) || bind_text(st, 3, now))
		return sq_error(s, err, "bind");
	return step_done(s, st, "insert token", err);
}

static int sq_token_replace(struct kc_db *db, const char *name, const char *hash_hex,
			    struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *del = NULL;
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;
	char now[21];

	kc_http_now_iso8601(now);
	LOCKED(s);
	/* One transaction: a failure keeps the old token valid. */
	if (exec(s, "BEGIN IMMEDIATE", err) < 0)
		return -1;
	if (prepare(s, "DELETE FROM tokens WHERE name = ?1", &del, err) < 0 ||
	    prepare(s, "INSERT INTO tokens (name, hash, created_at) VALUES (?1, ?2, ?3)", &ins,
		    err) < 0)
		goto rollback;
	if (bind_text(del, 1, name) || bind_text(ins, 1, name) || bind_text(ins, 2, hash_hex) ||
	    bind_text(ins, 3, now)) {
		sq_error(s, err, "bind");
		goto rollback;
	}
	if (step_done(s, del, "delete tokens", err) < 0 ||
	    step_done(s, ins, "insert token", err) < 0 || exec(s, "COMMIT", err) < 0)
		goto rollback;
	return 0;
rollback:
	exec(s, "ROLLBACK", NULL);
	return -1;
}

static int sq_token_lookup(struct kc_db *db, const char *hash_hex, bool *ret_found,
			   struct kc_error *err)
{
	struct kc_db_sqlite *s = to_sq(db);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	LOCKED(s);
	if (prepare(s, "SELECT 1 FROM tokens WHERE hash = ?1", &st, err) < 0)
		return -1;
	if (bind_text(st, 1, hash_hex))
		return sq_error(s, err, "bind");
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_error(s, err, "look up token");
	*ret_found = rc == SQLITE_ROW;
	return 0;
}

static void sq_close(struct kc_db *db)
{
	struct kc_db_sqlite *s = to_sq(db);

	sqlite3_close_v2(s->conn);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct kc_db_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.host_upsert = sq_host_upsert,
	.host_set_check = sq_host_set_check,
	.host_get = sq_host_get,
	.host_list = sq_host_list,
	.vm_insert = sq_vm_insert,
	.vm_update = sq_vm_update,
	.vm_note_state = sq_vm_note_state,
	.vm_delete = sq_vm_delete,
	.vm_get = sq_vm_get,
	.vm_list = sq_vm_list,
	.token_count = sq_token_count,
	.token_insert = sq_token_insert,
	.token_replace = sq_token_replace,
	.token_lookup = sq_token_lookup,
};

/* Opens `path` (no symlink) and takes group and other permissions away. */
static int narrow_mode(const char *path, int flags, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct stat st;

	if (fd < 0) {
		if (errno == ENOENT && !(flags & O_CREAT))
			return 0;
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot open %s", path);
	}
	if (fstat(fd, &st) < 0 || ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0))
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					  "cannot make %s private (mode 0600)", path);
	return 0;
}

/*
 * The database holds token hashes: keep it and its -wal and -shm private.
 * SQLite creates a new database with 0644 & ~umask but its -wal and -shm
 * with the database file's mode, so creating the database 0600 first (and
 * narrowing files an older binary left wider) covers all three.  Not
 * umask(): it is process-wide and other threads may be creating files.
 */
static int make_private(const char *path, struct kc_error *err)
{
	static const char *const side[] = {"-wal", "-shm", "-journal"};

	if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
		return 0;
	if (narrow_mode(path, O_RDWR | O_CREAT, err) < 0)
		return -1;
	for (size_t i = 0; i < KC_ARRAY_SIZE(side); i++) {
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s%s", path, side[i]) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		if (narrow_mode(p, O_RDONLY, err) < 0)
			return -1;
	}
	return 0;
}

int kc_db_sqlite_open(const char *path, int target_version, struct kc_db **ret,
		      struct kc_error *err)
{
	struct kc_db_sqlite *s = calloc(1, sizeof(*s));

	if (!s)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	s->base.ops = &sqlite_ops;
	pthread_mutex_init(&s->lock, NULL);

	if (make_private(path, err) < 0)
		goto fail;
	int rc = sqlite3_open_v2(path, &s->conn,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					 SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
				 NULL);
	if (rc != SQLITE_OK) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot open database %s: %s", path,
			     s->conn ? sqlite3_errmsg(s->conn) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->conn, 5000);
	sqlite3_extended_result_codes(s->conn, 1);
	rc = exec(s, "PRAGMA journal_mode = WAL", err) ||
	     exec(s, "PRAGMA foreign_keys = ON", err) ||
	     exec(s, "PRAGMA synchronous = NORMAL", err) ||
	     migrate(s, target_version < 0 ? kc_db_latest_version() : target_version, err);
	if (rc)
		goto fail;
	*ret = &s->base;
	return 0;
fail:
	if (s->conn)
		sqlite3_close_v2(s->conn);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return -1;
}
