/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_pg.c - the PostgreSQL backend of db.h (libpq).
 *
 * A small pool of connections, each used by one thread at a time (libpq's
 * rule), opened on demand.  A connection the server dropped (restart,
 * pg_terminate_backend, network) is noticed before use: an idle connection
 * has nothing to read, so a readable socket means the server said goodbye,
 * and the connection is replaced before our statement is sent, which makes
 * the reconnect safe for writes too.  A connection that breaks during a
 * statement is closed and the statement fails with KC_ERR_UNAVAILABLE
 * (kc_db_tx runs the transaction again); we never resend a statement
 * whose fate is unknown.
 *
 * Values are sent as text with explicit types (text, int8), so the
 * server never has to guess a parameter's type.
 *
 * Every connection has a statement_timeout (KC_DB_PG_STATEMENT_TIMEOUT_MS
 * unless changed): a query stuck on a lock or a runaway plan is cancelled
 * by the server and fails with KC_ERR_TIMEOUT instead of holding an API
 * thread and a pooled connection for ever.  Exclusive transactions
 * (migrations at start-up, which may wait for another server's) are
 * exempt.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "json_util.h"
#include "db.h"

#define DEFAULT_POOL 8
#define MAX_POOL     64
/* How long a caller waits for a free connection. */
#define ACQUIRE_TIMEOUT_S 30
/* pg_advisory_xact_lock key of KC_DB_TX_EXCLUSIVE ("kvmc"). */
#define EXCLUSIVE_LOCK_KEY "1803969379"

/* Type OIDs (server/catalog/pg_type_d.h, stable across versions). */
#define BOOLOID	   16
#define INT8OID	   20
#define INT2OID	   21
#define INT4OID	   23
#define TEXTOID	   25
#define OIDOID	   26
#define FLOAT4OID  700
#define FLOAT8OID  701
#define NUMERICOID 1700

struct pg_slot {
	PGconn *conn;
	bool busy;
	unsigned timeout_ms; /* statement_timeout set on conn; 0: not yet */
};

struct pg_db {
	struct kc_db base;
	char *uri;
	unsigned timeout_ms; /* what every connection should have (under lock) */
	pthread_mutex_t lock;
	pthread_cond_t freed;
	unsigned n_slots;
	struct pg_slot slots[];
};

struct pg_tx {
	struct kc_db base;
	struct pg_db *parent;
	struct pg_slot *slot;
};

static const struct kc_db_ops pg_ops;

static void ignore_notice(void *arg, const char *message)
{
	/* "relation already exists, skipping" and friends: not for stderr. */
}

/* Strips libpq's trailing newline from a message, in place. */
static const char *one_line(const char *msg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", msg ? msg : "");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* True when an idle connection is still usable. */
static bool conn_alive(PGconn *c)
{
	if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)
		return false;
	struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
	int rc = poll(&p, 1, 0);
	/* Readable while idle: a termination notice or EOF. */
	return rc == 0;
}

static int connect_slot(struct pg_db *pg, struct pg_slot *slot, struct kc_error *err)
{
	char buf[KC_ERROR_MSG_MAX];

	if (slot->conn && conn_alive(slot->conn))
		return 0;
	if (slot->conn)
		PQfinish(slot->conn);
	slot->conn = PQconnectdb(pg->uri);
	if (!slot->conn)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "PostgreSQL: out of memory");
	if (PQstatus(slot->conn) != CONNECTION_OK) {
		/* The message names host and port, never the password. */
		kc_error_set(err, KC_ERR_UNAVAILABLE, "cannot connect to PostgreSQL: %s",
			     one_line(PQerrorMessage(slot->conn), buf, sizeof(buf)));
		PQfinish(slot->conn);
		slot->conn = NULL;
		return -1;
	}
	PQsetNoticeProcessor(slot->conn, ignore_notice, NULL);
	PGresult *r = PQexec(slot->conn, "SET TIME ZONE 'UTC'");
	PQclear(r);
	slot->timeout_ms = 0; /* the server's default until set_timeout() */
	return 0;
}

/* Gives the connection the pool's statement_timeout if it has another. */
static int set_timeout(struct pg_slot *slot, unsigned ms, struct kc_error *err)
{
	char buf[KC_ERROR_MSG_MAX], value[16];

	if (slot->timeout_ms == ms)
		return 0;
	snprintf(value, sizeof(value), "%u", ms);
	const char *values[] = {value};
	const Oid types[] = {TEXTOID};
	PGresult *r = PQexecParams(slot->conn, "SELECT set_config('statement_timeout', $1, false)",
				   1, types, values, NULL, NULL, 0);
	bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	if (!ok) {
		kc_error_set(err, KC_ERR_UNAVAILABLE,
			     "PostgreSQL: cannot set statement_timeout: %s",
			     one_line(PQerrorMessage(slot->conn), buf, sizeof(buf)));
		PQfinish(slot->conn);
		slot->conn = NULL;
		return -1;
	}
	slot->timeout_ms = ms;
	return 0;
}

static int acquire(struct pg_db *pg, struct pg_slot **ret, struct kc_error *err)
{
	struct timespec deadline;
	struct pg_slot *slot = NULL;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ACQUIRE_TIMEOUT_S;
	pthread_mutex_lock(&pg->lock);
	while (!slot) {
		/* An open connection first: opening one costs a round trip
		 * or three and a server process. */
		for (unsigned i = 0; i < pg->n_slots; i++) {
			struct pg_slot *s = &pg->slots[i];
			if (!s->busy && (!slot || (s->conn && !slot->conn)))
				slot = s;
		}
		if (slot)
			break;
		if (pthread_cond_timedwait(&pg->freed, &pg->lock, &deadline) != 0) {
			pthread_mutex_unlock(&pg->lock);
			return kc_error_set(err, KC_ERR_UNAVAILABLE,
					    "all %u PostgreSQL connections stayed busy for %d s",
					    pg->n_slots, ACQUIRE_TIMEOUT_S);
		}
	}
	slot->busy = true;
	unsigned timeout_ms = pg->timeout_ms;
	pthread_mutex_unlock(&pg->lock);
	/* Connecting outside the lock: others keep using their connections. */
	if (connect_slot(pg, slot, err) < 0 || set_timeout(slot, timeout_ms, err) < 0) {
		pthread_mutex_lock(&pg->lock);
		slot->busy = false;
		pthread_cond_signal(&pg->freed);
		pthread_mutex_unlock(&pg->lock);
		return -1;
	}
	*ret = slot;
	return 0;
}

static void release(struct pg_db *pg, struct pg_slot *slot)
{
	/* Broken, or left inside a transaction by a failure: start afresh. */
	if (slot->conn && (PQstatus(slot->conn) != CONNECTION_OK ||
			   PQtransactionStatus(slot->conn) != PQTRANS_IDLE)) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	pthread_mutex_lock(&pg->lock);
	slot->busy = false;
	pthread_cond_signal(&pg->freed);
	pthread_mutex_unlock(&pg->lock);
}

static enum kc_errcode map_sqlstate(const char *state)
{
	if (!state)
		return KC_ERR_UNAVAILABLE; /* no result: the connection failed */
	if (strcmp(state, "23505") == 0)
		return KC_ERR_CONFLICT;
	if (strncmp(state, "23", 2) == 0) /* foreign key, not null, check */
		return KC_ERR_INVALID;
	if (strcmp(state, "57014") == 0) /* cancelled: statement_timeout */
		return KC_ERR_TIMEOUT;
	if (strncmp(state, "40", 2) == 0 ||  /* serialisation failure, deadlock */
	    strncmp(state, "08", 2) == 0 ||  /* connection exception */
	    strncmp(state, "57P", 3) == 0 || /* admin / crash shutdown */
	    strcmp(state, "55P03") == 0 ||   /* lock not available */
	    strcmp(state, "53300") == 0)     /* too many connections */
		return KC_ERR_UNAVAILABLE;
	return KC_ERR_INTERNAL;
}

static int pg_error(const struct pg_slot *slot, PGresult *res, struct kc_error *err)
{
	PGconn *c = slot->conn;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char buf[KC_ERROR_MSG_MAX];

	if (!msg)
		msg = one_line(PQerrorMessage(c), buf, sizeof(buf));
	if (PQstatus(c) != CONNECTION_OK)
		state = NULL;
	if (state && strcmp(state, "57014") == 0)
		return kc_error_set(err, KC_ERR_TIMEOUT,
				    "database: statement cancelled after the statement timeout of "
				    "%u ms (%s) / SQLSTATE 57014",
				    slot->timeout_ms, msg);
	return kc_error_set(err, map_sqlstate(state), "database: %s%s%s", msg,
			    state ? " / SQLSTATE " : "", state ? state : "");
}

static json_t *value_json(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	const char *v = PQgetvalue(res, row, col);
	char *end = NULL;

	switch (PQftype(res, col)) {
	case INT2OID:
	case INT4OID:
	case INT8OID:
	case OIDOID:
		return json_integer((json_int_t)strtoll(v, NULL, 10));
	case BOOLOID:
		return json_boolean(v[0] == 't');
	case NUMERICOID: {
		/* SUM(bigint) is numeric: keep whole numbers integers. */
		long long i = strtoll(v, &end, 10);
		if (end && !*end)
			return json_integer((json_int_t)i);
	}
		/* fall through */
	case FLOAT4OID:
	case FLOAT8OID:
		return json_real(strtod(v, NULL));
	default:
		return json_stringn(v, (size_t)PQgetlength(res, row, col));
	}
}

static json_t *result_rows(PGresult *res)
{
	json_t *rows = json_array();
	int nr = PQntuples(res), nf = PQnfields(res);

	for (int r = 0; rows && r < nr; r++) {
		json_t *o = json_object();
		for (int f = 0; o && f < nf; f++)
			if (json_object_set_new(o, PQfname(res, f), value_json(res, r, f)) < 0)
				json_decref(steal_ptr(&o));
		if (!o || json_array_append_new(rows, o) < 0)
			json_decref(steal_ptr(&rows));
	}
	return rows;
}

static void free_values(char **values, size_t n)
{
	for (size_t i = 0; values && i < n; i++)
		free(values[i]);
}

static int run(struct pg_slot *slot, const char *sql, const struct kc_db_param *params, size_t n,
	       int64_t *ret_changes, json_t **ret_rows, struct kc_error *err)
{
	PGconn *c = slot->conn;
	PGresult *res;

	if (n == 0) {
		/* Simple protocol: allows several statements (migrations). */
		res = PQexec(c, sql);
	} else {
		if (n > 64)
			return kc_error_set(err, KC_ERR_INTERNAL,
					    "database: more than 64 parameters");
		Oid types[64];
		char *values[64] = {0};
		for (size_t i = 0; i < n; i++) {
			const struct kc_db_param *p = &params[i];
			types[i] = TEXTOID;
			switch (p->type) {
			case KC_DB_T_NULL:
				types[i] = 0;
				break;
			case KC_DB_T_TEXT:
				values[i] = p->text ? strdup(p->text) : NULL;
				if (p->text && !values[i])
					goto oom;
				break;
			case KC_DB_T_INT:
				types[i] = INT8OID;
				if (asprintf(&values[i], "%lld", (long long)p->i) < 0) {
					values[i] = NULL;
					goto oom;
				}
				break;
			case KC_DB_T_JSON:
				values[i] = kc_db_param_json_text(p);
				if (p->json && !values[i])
					goto oom;
				break;
			}
		}
		res = PQexecParams(c, sql, (int)n, types, (const char *const *)values, NULL, NULL,
				   0);
		free_values(values, n);
		goto done;
	oom:
		free_values(values, n);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
done:;
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_error(slot, res, err);
		PQclear(res);
		return -1;
	}
	/* COMMIT of a transaction that failed earlier answers ROLLBACK. */
	if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0 && strncmp(sql, "COMMIT", 6) == 0) {
		PQclear(res);
		return kc_error_set(err, KC_ERR_INTERNAL,
				    "database: the transaction had failed and was rolled back");
	}
	if (ret_changes) {
		const char *t = PQcmdTuples(res);
		*ret_changes = *t ? strtoll(t, NULL, 10) : 0;
	}
	if (ret_rows) {
		*ret_rows = result_rows(res);
		if (!*ret_rows) {
			PQclear(res);
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
	}
	PQclear(res);
	return 0;
}

static int pg_run(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		  int64_t *ret_changes, json_t **ret_rows, struct kc_error *err)
{
	if (db->in_tx)
		return run(((struct pg_tx *)db)->slot, sql, params, n, ret_changes, ret_rows, err);
	struct pg_db *pg = (struct pg_db *)db;
	struct pg_slot *slot;
	if (acquire(pg, &slot, err) < 0)
		return -1;
	int rc = run(slot, sql, params, n, ret_changes, ret_rows, err);
	release(pg, slot);
	return rc;
}

static int pg_exec(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		   int64_t *ret_changes, struct kc_error *err)
{
	return pg_run(db, sql, params, n, ret_changes, NULL, err);
}

static int pg_query(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    json_t **ret_rows, struct kc_error *err)
{
	return pg_run(db, sql, params, n, NULL, ret_rows, err);
}

static int pg_tx_begin(struct kc_db *db, unsigned flags, struct kc_db **ret_tx,
		       struct kc_error *err)
{
	struct pg_db *pg = (struct pg_db *)db;
	struct pg_tx *tx = calloc(1, sizeof(*tx));

	if (!tx)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (acquire(pg, &tx->slot, err) < 0) {
		free(tx);
		return -1;
	}
	/* Exclusive: READ COMMITTED so that, once the lock is ours, reads
	 * see what the previous holder committed (a serialisable snapshot
	 * would be taken before the wait). */
	const char *begin = (flags & KC_DB_TX_EXCLUSIVE)
				    ? "BEGIN ISOLATION LEVEL READ COMMITTED; "
				      "SET LOCAL statement_timeout = 0; "
				      "SELECT pg_advisory_xact_lock(" EXCLUSIVE_LOCK_KEY ")"
				    : "BEGIN ISOLATION LEVEL SERIALIZABLE";
	if (run(tx->slot, begin, NULL, 0, NULL, NULL, err) < 0) {
		release(pg, tx->slot);
		free(tx);
		return -1;
	}
	tx->base.ops = &pg_ops;
	tx->base.in_tx = true;
	tx->parent = pg;
	*ret_tx = &tx->base;
	return 0;
}

static void pg_tx_rollback(struct kc_db *db)
{
	struct pg_tx *tx = (struct pg_tx *)db;

	if (PQstatus(tx->slot->conn) == CONNECTION_OK)
		PQclear(PQexec(tx->slot->conn, "ROLLBACK"));
	release(tx->parent, tx->slot);
	free(tx);
}

static int pg_tx_commit(struct kc_db *db, struct kc_error *err)
{
	struct pg_tx *tx = (struct pg_tx *)db;

	if (run(tx->slot, "COMMIT", NULL, 0, NULL, NULL, err) < 0) {
		pg_tx_rollback(db);
		return -1;
	}
	release(tx->parent, tx->slot);
	free(tx);
	return 0;
}

static void pg_close(struct kc_db *db)
{
	struct pg_db *pg = (struct pg_db *)db;

	for (unsigned i = 0; i < pg->n_slots; i++)
		if (pg->slots[i].conn)
			PQfinish(pg->slots[i].conn);
	pthread_cond_destroy(&pg->freed);
	pthread_mutex_destroy(&pg->lock);
	free(pg->uri);
	free(pg);
}

static const struct kc_db_ops pg_ops = {
	.name = "postgresql",
	.dialect = KC_DB_POSTGRESQL,
	.close = pg_close,
	.exec = pg_exec,
	.query = pg_query,
	.tx_begin = pg_tx_begin,
	.tx_commit = pg_tx_commit,
	.tx_rollback = pg_tx_rollback,
};

int kc_db_pg_open(const char *uri, int target_version, unsigned pool_size, struct kc_db **ret,
		  struct kc_error *err)
{
	unsigned n = pool_size ? pool_size : DEFAULT_POOL;

	if (n > MAX_POOL)
		return kc_error_set(err, KC_ERR_INVALID, "at most %d PostgreSQL connections",
				    MAX_POOL);
	if (!PQisthreadsafe())
		return kc_error_set(err, KC_ERR_INTERNAL, "libpq was built without thread safety");
	struct pg_db *pg = calloc(1, sizeof(*pg) + n * sizeof(pg->slots[0]));
	if (!pg)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	pg->base.ops = &pg_ops;
	pg->n_slots = n;
	pg->timeout_ms = KC_DB_PG_STATEMENT_TIMEOUT_MS;
	pthread_mutex_init(&pg->lock, NULL);
	pthread_cond_init(&pg->freed, NULL);
	pg->uri = strdup(uri);
	if (!pg->uri) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	if (kc_db_migrate(&pg->base, target_version, err) < 0)
		goto fail;
	*ret = &pg->base;
	return 0;
fail:
	pg_close(&pg->base);
	return -1;
}

int kc_db_pg_set_statement_timeout(struct kc_db *db, unsigned ms, struct kc_error *err)
{
	if (db->ops != &pg_ops || db->in_tx)
		return kc_error_set(err, KC_ERR_INVALID, "not a PostgreSQL database handle");
	struct pg_db *pg = (struct pg_db *)db;
	pthread_mutex_lock(&pg->lock);
	pg->timeout_ms = ms;
	pthread_mutex_unlock(&pg->lock);
	return 0;
}
