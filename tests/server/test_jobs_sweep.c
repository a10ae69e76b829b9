/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_jobs_sweep.c - jobs_sweep.c against SQLite and, when KC_TEST_PG_URL
 * names a PostgreSQL database (run_db_pg.sh), PostgreSQL: retention of
 * finished jobs in batches, and the settling of a dead server's running
 * jobs by live servers, once, even when two sweep at the same time.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "jobs_sweep.h"
#include "json_util.h"
#include "kctest.h"
#include "srvtest.h"

static char dir[] = "/tmp/kcsrv-test-sweep-XXXXXX";
static const char *pg_url;
static bool on_pg;
static unsigned n_fresh;
static char *schemas[64];
static size_t n_schemas;
static char *spec_now; /* the current case's database, for a second handle */

static void quiet(void *arg, const char *message)
{
}

static bool pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url);
	bool ok = PQstatus(c) == CONNECTION_OK;
	if (ok) {
		PQsetNoticeProcessor(c, quiet, NULL);
		PGresult *r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			kc_test_diag("%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return ok;
}

static struct kc_db *open_spec(const char *spec)
{
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	int rc = on_pg ? kc_db_pg_open(spec, -1, 0, &db, &err)
		       : kc_db_sqlite_open(spec, -1, &db, &err);
	if (!KC_CHECK(rc == 0))
		kc_test_diag("open: %s", err.message);
	return db;
}

/* A fresh database of the current backend with a user, a host and the
 * servers of the dead-server cases. */
static struct kc_db *fresh_db(void)
{
	unsigned n = ++n_fresh;

	free(spec_now);
	spec_now = NULL;
	if (!on_pg) {
		if (asprintf(&spec_now, "%s/sweep-%u.db", dir, n) < 0)
			abort();
	} else {
		char name[64], sql[128];
		snprintf(name, sizeof(name), "kcsw_%d_%u", (int)getpid(), n);
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
		if (!pg_admin(sql))
			return NULL;
		if (n_schemas < KC_ARRAY_SIZE(schemas))
			schemas[n_schemas++] = strdup(name);
		if (asprintf(&spec_now, "%s%coptions=-csearch_path%%3D%s", pg_url,
			     strchr(pg_url, '?') ? '&' : '?', name) < 0)
			abort();
	}
	struct kc_db *db = open_spec(spec_now);
	json_t *facts = json_pack("{s:i}", "cpus", 2);
	struct kc_db_host h = {.name = "h1", .uuid = "u", .facts = facts, .accel = "tcg"};
	struct kc_error err = {0};
	if (db && !KC_CHECK(kc_db_host_upsert(db, &h, &err) == 0))
		kc_test_diag("%s", err.message);
	json_decref(facts);
	return db;
}

static void exec(struct kc_db *db, const char *sql, const char *a, const char *b)
{
	struct kc_error err = {0};
	int rc;

	if (b)
		rc = kc_db_exec(db, sql, KC_DB_PARAMS(KC_DB_TEXT(a), KC_DB_TEXT(b)), NULL, &err);
	else if (a)
		rc = kc_db_exec(db, sql, KC_DB_PARAMS(KC_DB_TEXT(a)), NULL, &err);
	else
		rc = kc_db_exec(db, sql, NULL, 0, NULL, &err);
	if (!KC_CHECK(rc == 0))
		kc_test_diag("%s: %s", sql, err.message);
}

static int64_t count(struct kc_db *db, const char *sql, const char *a)
{
	struct kc_error err = {0};
	int64_t n = -1;
	int rc = a ? kc_db_query_int(db, sql, KC_DB_PARAMS(KC_DB_TEXT(a)), &n, &err)
		   : kc_db_query_int(db, sql, NULL, 0, &n, &err);
	if (rc < 0)
		kc_test_diag("%s: %s", sql, err.message);
	return n;
}

/* A job of `kind` on `target`, queued; its id (malloc'd). */
static char *job(struct kc_db *db, const char *kind, const char *target, const char *key)
{
	_cleanup_json_ json_t *j = NULL;
	struct kc_error err = {0};
	bool existing = false;

	if (kc_db_job_create(db,
			     &(struct kc_db_job_new){.kind = kind,
						     .owner = KC_DB_ADMIN_USER,
						     .idempotency_key = key,
						     .target = target},
			     &j, &existing, &err) < 0) {
		kc_test_diag("job: %s", err.message);
		return NULL;
	}
	return strdup(json_string_value(json_object_get(j, "id")));
}

/* A job that `worker` is running. */
static char *running(struct kc_db *db, const char *kind, const char *target, const char *worker)
{
	char *id = job(db, kind, target, NULL);
	struct kc_error err = {0};

	if (id && kc_db_job_claim(db, id, worker, &err) < 0)
		kc_test_diag("claim: %s", err.message);
	return id;
}

static const char *job_field(struct kc_db *db, const char *id, const char *field, char *buf,
			     size_t size)
{
	_cleanup_json_ json_t *j = NULL;
	struct kc_error err = {0};

	buf[0] = '\0';
	if (id && kc_db_job_get(db, id, &j, &err) == 0) {
		json_t *v = json_object_get(j, field);
		if (json_is_object(v))
			v = json_object_get(v, "code");
		snprintf(buf, size, "%s", json_is_string(v) ? json_string_value(v) : "(null)");
	}
	return buf;
}

/* A server row; `age_s` seconds since it was last seen. */
static void server_row(struct kc_db *db, const char *endpoint, const char *worker, long age_s)
{
	char seen[21];
	struct kc_error err = {0};

	kc_db_time_from_now(-age_s, seen);
	if (!KC_CHECK(kc_db_exec(db,
				 "INSERT INTO servers (agent_endpoint, api_url, started_at, "
				 "last_seen_at, worker) VALUES ($1, 'https://x', $2, $2, $3)",
				 KC_DB_PARAMS(KC_DB_TEXT(endpoint), KC_DB_TEXT(seen),
					      KC_DB_TEXT(worker)),
				 NULL, &err) == 0))
		kc_test_diag("server row: %s", err.message);
}

/* ---- cases ---- */

static void retention_deletes_old_finished_jobs_only(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	char buf[64];
	int64_t deleted = -1;

	if (!db)
		return;
	/* More old finished jobs than one batch holds. */
	int n_old = KC_JOBS_PURGE_BATCH * 2 + 7;
	for (int i = 0; i < n_old; i++)
		free(job(db, "vm.start", "v", NULL));
	exec(db,
	     "UPDATE jobs SET state = CASE WHEN id < '8' THEN 'succeeded' ELSE 'failed' END, "
	     "updated_at = $1",
	     "2000-01-01T00:00:00Z", NULL);
	/* Kept: an old queued and an old running job, a recent finished one,
	 * and an old finished one whose idempotency key is in use. */
	_cleanup_free_ char *queued = job(db, "vm.delete", "q", NULL);
	_cleanup_free_ char *run = running(db, "vm.start", "r", "srv-a");
	_cleanup_free_ char *recent = running(db, "vm.start", "n", "srv-a");
	_cleanup_free_ char *keyed = running(db, "vm.reboot", "k", "srv-a");
	exec(db, "UPDATE jobs SET idempotency_key = 'key1' WHERE id = $1", keyed, NULL);
	KC_CHECK(kc_db_job_finish(db, recent, true, NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_job_finish(db, keyed, false, NULL, NULL, &err) == 0);
	exec(db, "UPDATE jobs SET updated_at = $1 WHERE id IN ($2)", "2000-01-01T00:00:00Z",
	     queued);
	exec(db, "UPDATE jobs SET updated_at = $1 WHERE id IN ($2)", "2000-01-01T00:00:00Z", run);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM jobs", NULL), n_old + 4);

	/* While the keyed job exists, its key returns it. */
	_cleanup_json_ json_t *again = NULL;
	bool existing = false;
	struct kc_db_job_new with_key = {.kind = "vm.reboot",
					 .owner = KC_DB_ADMIN_USER,
					 .idempotency_key = "key1",
					 .target = "k"};
	KC_CHECK(kc_db_job_create(db, &with_key, &again, &existing, &err) == 0 && existing);
	exec(db, "UPDATE jobs SET updated_at = $1 WHERE id = $2", "2000-01-01T00:00:00Z", keyed);

	KC_CHECK(kc_jobs_purge(db, KC_JOBS_RETENTION_DEFAULT_S, &deleted, &err) == 0);
	KC_CHECK_INT(deleted, n_old + 1);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM jobs", NULL), 3);
	KC_CHECK_STREQ(job_field(db, queued, "state", buf, sizeof(buf)), "queued");
	KC_CHECK_STREQ(job_field(db, run, "state", buf, sizeof(buf)), "running");
	KC_CHECK_STREQ(job_field(db, recent, "state", buf, sizeof(buf)), "succeeded");
	/* The key went with its job: it names a new request now. */
	json_decref(again);
	again = NULL;
	KC_CHECK(kc_db_job_create(db, &with_key, &again, &existing, &err) == 0 && !existing);
	/* Nothing more to do; bad retention refused. */
	KC_CHECK(kc_jobs_purge(db, KC_JOBS_RETENTION_DEFAULT_S, &deleted, &err) == 0);
	KC_CHECK_INT(deleted, 0);
	KC_CHECK(kc_jobs_purge(db, 0, &deleted, &err) < 0);
	kc_error_clear(&err);
	kc_db_close(db);
}

static void dead_server_jobs_settled_by_the_rule(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	char buf[64];
	int64_t servers = -1, jobs = -1;

	if (!db)
		return;
	server_row(db, "dead:8471", "dead:8470", 3600);
	server_row(db, "alive:8471", "alive:8470", 5);
	server_row(db, "me:8471", "me:8470", 3600); /* ourselves: never swept */
	/* A VM whose create finished on the dead server, one still
	 * "creating" (its host has not reported back). */
	json_t *req = json_pack("{s:s,s:i}", "name", "made", "memory_mib", 64);
	_cleanup_free_ char *create_done = running(db, "vm.create", "made", "dead:8470");
	_cleanup_free_ char *create_none = running(db, "vm.create", "none", "dead:8470");
	_cleanup_free_ char *create_wait = running(db, "vm.create", "wait", "dead:8470");
	/* The records are made after their jobs (same second counts). */
	KC_CHECK(kc_db_vm_insert(db,
				 &(struct kc_db_vm){.name = "made",
						    .host = "h1",
						    .state = "running",
						    .owner = KC_DB_ADMIN_USER,
						    .request = req},
				 false, &err) == 0);
	KC_CHECK(kc_db_vm_insert(db,
				 &(struct kc_db_vm){.name = "wait",
						    .host = "h1",
						    .state = "creating",
						    .owner = KC_DB_ADMIN_USER,
						    .request = req},
				 false, &err) == 0);
	json_decref(req);
	_cleanup_free_ char *del = running(db, "vm.delete", "x", "dead:8470");
	_cleanup_free_ char *start = running(db, "vm.start", "x", "dead:8470");
	_cleanup_free_ char *theirs = running(db, "vm.start", "y", "alive:8470");
	_cleanup_free_ char *mine = running(db, "vm.start", "z", "me:8470");
	_cleanup_free_ char *waiting = job(db, "vm.start", "w", NULL);

	KC_CHECK(kc_jobs_sweep_dead(db, "me:8470", "me:8471", 300, &servers, &jobs, &err) == 0);
	KC_CHECK_INT(servers, 1);
	KC_CHECK_INT(jobs, 5);
	KC_CHECK_STREQ(job_field(db, create_done, "state", buf, sizeof(buf)), "succeeded");
	KC_CHECK_STREQ(job_field(db, create_none, "state", buf, sizeof(buf)), "queued");
	KC_CHECK_STREQ(job_field(db, create_none, "worker", buf, sizeof(buf)), "(null)");
	KC_CHECK_STREQ(job_field(db, create_wait, "state", buf, sizeof(buf)), "failed");
	KC_CHECK_STREQ(job_field(db, create_wait, "error", buf, sizeof(buf)), "unavailable");
	KC_CHECK_STREQ(job_field(db, del, "state", buf, sizeof(buf)), "queued");
	KC_CHECK_STREQ(job_field(db, start, "state", buf, sizeof(buf)), "failed");
	KC_CHECK_STREQ(job_field(db, start, "error", buf, sizeof(buf)), "unavailable");
	KC_CHECK_STREQ(job_field(db, theirs, "state", buf, sizeof(buf)), "running");
	KC_CHECK_STREQ(job_field(db, theirs, "worker", buf, sizeof(buf)), "alive:8470");
	KC_CHECK_STREQ(job_field(db, mine, "state", buf, sizeof(buf)), "running");
	KC_CHECK_STREQ(job_field(db, waiting, "state", buf, sizeof(buf)), "queued");
	KC_CHECK_INT(
		count(db, "SELECT COUNT(*) FROM servers WHERE agent_endpoint = $1", "dead:8471"),
		0);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM servers", NULL), 2);
	/* Once: a second sweep finds nothing. */
	KC_CHECK(kc_jobs_sweep_dead(db, "me:8470", "me:8471", 300, &servers, &jobs, &err) == 0);
	KC_CHECK_INT(servers, 0);
	KC_CHECK_INT(jobs, 0);

	/* A server seen again since the caller looked keeps row and jobs. */
	_cleanup_json_ json_t *taken = NULL;
	char before[21];
	kc_db_time_from_now(-300, before);
	KC_CHECK(kc_db_job_adopt_dead(db, "alive:8471", before, "me:8470", &taken, &err) == 0);
	KC_CHECK(taken == NULL);
	KC_CHECK_STREQ(job_field(db, theirs, "worker", buf, sizeof(buf)), "alive:8470");
	/* Settling is conditional on holding the job. */
	KC_CHECK(kc_db_job_settle(db, theirs, "me:8470", "failed", NULL, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_job_settle(db, theirs, "alive:8470", "done", NULL, NULL, &err) < 0);
	kc_error_clear(&err);
	KC_CHECK(kc_db_job_settle(db, theirs, "alive:8470", "queued", NULL, NULL, &err) == 0);
	KC_CHECK_STREQ(job_field(db, theirs, "state", buf, sizeof(buf)), "queued");
	kc_db_close(db);
}

struct sweeper {
	struct kc_db *db;
	const char *worker;
	int64_t servers, jobs;
	int rc;
	pthread_barrier_t *go;
	struct kc_error err;
};

static void *sweeper_main(void *arg)
{
	struct sweeper *s = arg;

	pthread_barrier_wait(s->go);
	s->rc = kc_jobs_sweep_dead(s->db, s->worker, NULL, 300, &s->servers, &s->jobs, &s->err);
	return NULL;
}

static void two_live_servers_settle_each_job_once(void)
{
	enum { DEAD = 6, PER = 15 };
	struct kc_db *db = fresh_db();
	struct kc_db *db2 = NULL;
	pthread_barrier_t go;
	pthread_t th[2];

	if (!db || !(db2 = open_spec(spec_now))) {
		kc_db_close(db);
		return;
	}
	for (int d = 0; d < DEAD; d++) {
		char ep[32], w[32];
		snprintf(ep, sizeof(ep), "dead%d:8471", d);
		snprintf(w, sizeof(w), "dead%d:8470", d);
		server_row(db, ep, w, 3600);
		for (int i = 0; i < PER; i++)
			free(running(db, i % 2 ? "vm.delete" : "vm.destroy", "x", w));
	}
	pthread_barrier_init(&go, NULL, 2);
	struct sweeper s[2] = {{.db = db, .worker = "a:8470", .go = &go},
			       {.db = db2, .worker = "b:8470", .go = &go}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, sweeper_main, &s[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 2; i++)
		if (!KC_CHECK_INT(s[i].rc, 0))
			kc_test_diag("sweeper %d: %s", i, s[i].err.message);
	/* Every dead server and job went to exactly one of them. */
	KC_CHECK_INT(s[0].servers + s[1].servers, DEAD);
	KC_CHECK_INT(s[0].jobs + s[1].jobs, DEAD * PER);
	kc_test_diag("sweeper a took %lld servers, b %lld", (long long)s[0].servers,
		     (long long)s[1].servers);
	KC_CHECK_INT(count(db,
			   "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND worker IS NULL",
			   NULL),
		     DEAD * PER);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM servers", NULL), 0);
	kc_db_close(db2);
	kc_db_close(db);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{"retention_deletes_old_finished_jobs_only", retention_deletes_old_finished_jobs_only},
	{"dead_server_jobs_settled_by_the_rule", dead_server_jobs_settled_by_the_rule},
	{"two_live_servers_settle_each_job_once", two_live_servers_settle_each_job_once},
};

int main(void)
{
	char name[128];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	pg_url = getenv("KC_TEST_PG_URL");
	if (pg_url && !*pg_url)
		pg_url = NULL;
	if (!pg_url)
		kc_test_diag("KC_TEST_PG_URL not set: SQLite only");
	for (int pass = 0; pass < (pg_url ? 2 : 1); pass++) {
		on_pg = pass == 1;
		for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
			snprintf(name, sizeof(name), "%s: %s", on_pg ? "postgresql" : "sqlite",
				 cases[i].name);
			kc_test_begin(name);
			cases[i].fn();
			kc_test_end();
		}
	}
	for (size_t i = 0; i < n_schemas; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schemas[i]);
		pg_admin(sql);
		free(schemas[i]);
	}
	free(spec_now);
	int rc = kc_test_finish();
	srvtest_rm_rf(dir);
	return rc;
}
