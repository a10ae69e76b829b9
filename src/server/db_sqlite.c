/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_sqlite.c - the SQLite backend of db.h.
 *
 * One connection guarded by a mutex: requests run on libmicrohttpd's
 * threads and the agent's event thread, and every operation is a statement
 * or a short transaction, so serialising them costs less than a connection
 * per thread and makes every transaction trivially serialisable.  A
 * transaction holds the mutex from BEGIN IMMEDIATE to COMMIT.  WAL mode lets
 * a read-only reader (CLI, backup) in while we write.
 *
 * "$1", "$2", ... are SQLite named parameters ("$" followed by a name);
 * their index is their order of first appearance, not their number, so we
 * bind each by its name.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "json_util.h"

struct sq_db {
	struct kc_db base;
	sqlite3 *conn;
	pthread_mutex_t lock; /* error-checking: a nested lock is reported, not a hang */
};

struct sq_tx {
	struct kc_db base;
	struct sq_db *parent;
};

static const struct kc_db_ops sqlite_ops;

/* The backend and whether this call must take the lock. */
static struct sq_db *owner_of(struct kc_db *db)
{
	if (db->in_tx)
		return ((struct sq_tx *)db)->parent;
	return (struct sq_db *)db;
}

static int lock(struct sq_db *s, struct kc_error *err)
{
	int rc = pthread_mutex_lock(&s->lock);

	if (rc == EDEADLK)
		return kc_error_set(err, KC_ERR_INTERNAL,
				    "database used outside its transaction handle while in a "
				    "transaction (a bug)");
	if (rc)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, rc, "database lock");
	return 0;
}

static int sq_error(sqlite3 *conn, struct kc_error *err, const char *what)
{
	int code = sqlite3_extended_errcode(conn);
	enum kc_errcode kc = KC_ERR_INTERNAL;

	switch (code) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		kc = KC_ERR_CONFLICT;
		break;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
	case SQLITE_CONSTRAINT_NOTNULL:
	case SQLITE_CONSTRAINT_CHECK:
		kc = KC_ERR_INVALID;
		break;
	default:
		if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
			kc = KC_ERR_UNAVAILABLE;
	}
	return kc_error_set(err, kc, "database: %s: %s", what, sqlite3_errmsg(conn));
}

static void stmt_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

static int bind_one(sqlite3_stmt *st, int idx, const struct kc_db_param *p)
{
	switch (p->type) {
	case KC_DB_T_NULL:
		return sqlite3_bind_null(st, idx);
	case KC_DB_T_TEXT:
		if (!p->text)
			return sqlite3_bind_null(st, idx);
		return sqlite3_bind_text(st, idx, p->text, -1, SQLITE_TRANSIENT);
	case KC_DB_T_INT:
		return sqlite3_bind_int64(st, idx, p->i);
	case KC_DB_T_JSON: {
		if (!p->json)
			return sqlite3_bind_null(st, idx);
		char *text = kc_db_param_json_text(p);
		if (!text)
			return SQLITE_NOMEM;
		return sqlite3_bind_text(st, idx, text, -1, free);
	}
	}
	return SQLITE_MISUSE;
}

/* Binds every "$k" of the statement to params[k - 1]; each of the n
 * params must appear (PostgreSQL refuses unused ones: catch it here). */
static int bind_all(sqlite3 *conn, sqlite3_stmt *st, const struct kc_db_param *params, size_t n,
		    struct kc_error *err)
{
	int count = sqlite3_bind_parameter_count(st);
	uint64_t seen = 0;

	if (n > 64)
		return kc_error_set(err, KC_ERR_INTERNAL, "database: more than 64 parameters");
	for (int i = 1; i <= count; i++) {
		const char *name = sqlite3_bind_parameter_name(st, i);
		char *end = NULL;
		long k = name && name[0] == '$' ? strtol(name + 1, &end, 10) : 0;
		if (k < 1 || (size_t)k > n || !end || *end)
			return kc_error_set(err, KC_ERR_INTERNAL,
					    "database: parameter %s is not one of $1..$%zu",
					    name ? name : "?", n);
		if (bind_one(st, i, &params[k - 1]) != SQLITE_OK)
			return sq_error(conn, err, "bind");
		seen |= 1ULL << (k - 1);
	}
	if (seen != (n == 64 ? ~0ULL : (1ULL << n) - 1))
		return kc_error_set(err, KC_ERR_INTERNAL, "database: a parameter is not used");
	return 0;
}

static json_t *column_value(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return json_null();
	case SQLITE_INTEGER:
		return json_integer((json_int_t)sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	default: {
		const char *text = (const char *)sqlite3_column_text(st, i);
		return json_stringn(text ? text : "", (size_t)sqlite3_column_bytes(st, i));
	}
	}
}

static json_t *row_object(sqlite3_stmt *st)
{
	json_t *obj = json_object();
	int n = sqlite3_column_count(st);

	for (int i = 0; obj && i < n; i++) {
		json_t *v = column_value(st, i);
		if (!v || json_object_set_new(obj, sqlite3_column_name(st, i), v) < 0) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

/* Runs sql (several statements when n == 0), collecting the rows of the
 * last one into *ret_rows if not NULL.  The caller holds the lock. */
static int run(sqlite3 *conn, const char *sql, const struct kc_db_param *params, size_t n,
	       int64_t *ret_changes, json_t **ret_rows, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = ret_rows ? json_array() : NULL;
	const char *tail = sql;

	if (ret_rows && !rows)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	while (tail && *tail) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		const char *next = NULL;
		int rc;

		if (sqlite3_prepare_v2(conn, tail, -1, &st, &next) != SQLITE_OK)
			return sq_error(conn, err, "prepare");
		if (!st) /* only white space or comments left */
			break;
		if (n > 0 && next && next[strspn(next, " \t\r\n;")])
			return kc_error_set(err, KC_ERR_INTERNAL,
					    "database: several statements with parameters");
		if (n > 0 && bind_all(conn, st, params, n, err) < 0)
			return -1;
		if (rows)
			json_array_clear(rows);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			json_t *row = rows ? row_object(st) : NULL;
			if (rows && (!row || json_array_append_new(rows, row) < 0))
				return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
		if (rc != SQLITE_DONE)
			return sq_error(conn, err, "statement");
		tail = next;
	}
	if (ret_changes)
		*ret_changes = sqlite3_changes64(conn);
	if (ret_rows)
		*ret_rows = steal_ptr(&rows);
	return 0;
}

static int sq_run(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		  int64_t *ret_changes, json_t **ret_rows, struct kc_error *err)
{
	struct sq_db *s = owner_of(db);

	if (db->in_tx)
		return run(s->conn, sql, params, n, ret_changes, ret_rows, err);
	if (lock(s, err) < 0)
		return -1;
	int rc = run(s->conn, sql, params, n, ret_changes, ret_rows, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_exec(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		   int64_t *ret_changes, struct kc_error *err)
{
	return sq_run(db, sql, params, n, ret_changes, NULL, err);
}

static int sq_query(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    json_t **ret_rows, struct kc_error *err)
{
	return sq_run(db, sql, params, n, NULL, ret_rows, err);
}

static int sq_tx_begin(struct kc_db *db, unsigned flags, struct kc_db **ret_tx,
		       struct kc_error *err)
{
	struct sq_db *s = (struct sq_db *)db;
	struct sq_tx *tx = calloc(1, sizeof(*tx));

	if (!tx)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (lock(s, err) < 0) {
		free(tx);
		return -1;
	}
	/* IMMEDIATE takes the write lock now: another process writing makes
	 * this BUSY (retried by kc_db_tx), never a deadlock half-way. */
	if (run(s->conn, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, err) < 0) {
		pthread_mutex_unlock(&s->lock);
		free(tx);
		return -1;
	}
	tx->base.ops = &sqlite_ops;
	tx->base.in_tx = true;
	tx->parent = s;
	*ret_tx = &tx->base;
	return 0;
}

static void sq_tx_rollback(struct kc_db *db)
{
	struct sq_tx *tx = (struct sq_tx *)db;

	if (!sqlite3_get_autocommit(tx->parent->conn))
		run(tx->parent->conn, "ROLLBACK", NULL, 0, NULL, NULL, NULL);
	pthread_mutex_unlock(&tx->parent->lock);
	free(tx);
}

static int sq_tx_commit(struct kc_db *db, struct kc_error *err)
{
	struct sq_tx *tx = (struct sq_tx *)db;

	if (run(tx->parent->conn, "COMMIT", NULL, 0, NULL, NULL, err) < 0) {
		sq_tx_rollback(db);
		return -1;
	}
	pthread_mutex_unlock(&tx->parent->lock);
	free(tx);
	return 0;
}

static void sq_close(struct kc_db *db)
{
	struct sq_db *s = (struct sq_db *)db;

	sqlite3_close_v2(s->conn);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct kc_db_ops sqlite_ops = {
	.name = "sqlite",
	.dialect = KC_DB_SQLITE,
	.close = sq_close,
	.exec = sq_exec,
	.query = sq_query,
	.tx_begin = sq_tx_begin,
	.tx_commit = sq_tx_commit,
	.tx_rollback = sq_tx_rollback,
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

/* Switching to WAL needs a moment alone with the file; SQLite answers
 * BUSY without waiting when another connection is opening it too. */
static int set_pragmas(sqlite3 *conn, struct kc_error *err)
{
	for (int attempt = 0;; attempt++) {
		struct kc_error e = {0};
		if (run(conn,
			"PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; "
			"PRAGMA synchronous = NORMAL",
			NULL, 0, NULL, NULL, &e) == 0)
			return 0;
		if (e.code != KC_ERR_UNAVAILABLE || attempt == 100) {
			if (err && !kc_error_is_set(err))
				*err = e;
			return -1;
		}
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int kc_db_sqlite_open(const char *path, int target_version, struct kc_db **ret,
		      struct kc_error *err)
{
	struct sq_db *s = calloc(1, sizeof(*s));
	pthread_mutexattr_t attr;

	if (!s)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	s->base.ops = &sqlite_ops;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&s->lock, &attr);
	pthread_mutexattr_destroy(&attr);

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
	if (set_pragmas(s->conn, err) < 0 || kc_db_migrate(&s->base, target_version, err) < 0)
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
