/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_db.c - the database layer: every case runs against SQLite and, when
 * KC_TEST_PG_URL names a PostgreSQL database, against PostgreSQL too (each
 * case in a fresh schema there, a fresh file here).  Then the SQLite-only
 * cases: file modes, the admin token files.
 */
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cleanup.h"
#include "db.h"
#include "db_groups.h"
#include "json_util.h"
#include "kctest.h"
#include "srvtest.h"

static char dir[] = "/tmp/kcsrv-test-db-XXXXXX";
static const char *pg_url; /* KC_TEST_PG_URL */
static bool on_pg;	   /* the backend of the current pass */
static unsigned n_fresh;   /* fresh databases made so far */
static char *schemas[256]; /* PostgreSQL schemas to drop at the end */
static size_t n_schemas;

static char *db_path(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

static void quiet(void *arg, const char *message)
{
}

/* Runs one statement on the test's own PostgreSQL connection. */
static bool pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url);
	bool ok = PQstatus(c) == CONNECTION_OK;
	if (ok) {
		PQsetNoticeProcessor(c, quiet, NULL);
		PGresult *r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			kc_test_diag("%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
	} else {
		kc_test_diag("cannot connect to KC_TEST_PG_URL: %s", PQerrorMessage(c));
	}
	PQfinish(c);
	return ok;
}

/* The spec of a new, empty database of the current backend (malloc'd). */
static char *fresh_spec(void)
{
	char *spec = NULL;
	unsigned n = ++n_fresh;

	if (!on_pg) {
		if (asprintf(&spec, "%s/fresh-%u.db", dir, n) < 0)
			abort();
		return spec;
	}
	char name[64], sql[128];
	snprintf(name, sizeof(name), "kct_%d_%u", (int)getpid(), n);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
	if (!pg_admin(sql))
		return NULL;
	if (n_schemas < KC_ARRAY_SIZE(schemas))
		schemas[n_schemas++] = strdup(name);
	if (asprintf(&spec, "%s%coptions=-csearch_path%%3D%s", pg_url,
		     strchr(pg_url, '?') ? '&' : '?', name) < 0)
		abort();
	return spec;
}

/* Opens spec at `version` (< 0: the latest) with the current backend. */
static int open_at(const char *spec, int version, struct kc_db **ret, struct kc_error *err)
{
	if (on_pg)
		return kc_db_pg_open(spec, version, 0, ret, err);
	return kc_db_sqlite_open(spec, version, ret, err);
}

/* A fresh database at the latest version, or NULL (check failed). */
static struct kc_db *fresh_db(void)
{
	_cleanup_free_ char *spec = fresh_spec();
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	if (!KC_CHECK(spec) || !KC_CHECK(open_at(spec, -1, &db, &err) == 0)) {
		kc_test_diag("open: %s", err.message);
		return NULL;
	}
	return db;
}

static void add_host(struct kc_db *db, const char *name)
{
	json_t *facts = json_pack("{s:i}", "cpus", 2);
	struct kc_db_host h = {
		.name = name, .uuid = "u", .facts = facts, .accel = "tcg", .accel_reason = "test"};
	struct kc_error err = {0};
	if (!KC_CHECK(kc_db_host_upsert(db, &h, &err) == 0))
		kc_test_diag("%s", err.message);
	json_decref(facts);
}

static int add_vm(struct kc_db *db, const char *name, const char *owner, int vcpus, int memory_mib,
		  bool quota, struct kc_error *err)
{
	json_t *req = json_pack("{s:s,s:i,s:i,s:i,s:[i]}", "name", name, "vcpus", vcpus,
				"memory_mib", memory_mib, "disk_gib", 10, "data_disks_gib", 5);
	struct kc_db_vm vm = {
		.name = name, .host = "h1", .state = "creating", .owner = owner, .request = req};
	int rc = kc_db_vm_insert(db, &vm, quota, err);
	json_decref(req);
	return rc;
}

static int64_t count(struct kc_db *db, const char *sql)
{
	struct kc_error err = {0};
	int64_t n = -1;

	if (kc_db_query_int(db, sql, NULL, 0, &n, &err) < 0)
		kc_test_diag("%s: %s", sql, err.message);
	return n;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* ---- cases run on every backend ---- */

static void fresh_database_gets_latest_schema(void)
{
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	_cleanup_free_ char *spec = fresh_spec();
	int v = 0;

	if (!KC_CHECK(spec) || !KC_CHECK(open_at(spec, -1, &db, &err) == 0))
		return;
	KC_CHECK(kc_db_schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, kc_db_latest_version());
	KC_CHECK(kc_db_latest_version() >= 3);
	/* Every table is there; the built-in admin exists once. */
	static const char *const tables[] = {"hosts",	    "vms",	    "tokens", "users",
					     "zones",	    "clusters",	    "jobs",   "audit_log",
					     "join_tokens", "revoked_certs"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(tables); i++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i]);
		KC_CHECK(count(db, sql) >= 0);
	}
	KC_CHECK_INT(
		count(db, "SELECT COUNT(*) FROM users WHERE name = 'admin' AND role = 'admin'"), 1);
	kc_db_close(db);
	/* Reopening an up-to-date database changes nothing. */
	db = NULL;
	KC_CHECK(open_at(spec, -1, &db, &err) == 0);
	KC_CHECK(db && kc_db_schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, kc_db_latest_version());
	if (db)
		KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM users"), 1);
	kc_db_close(db);
}

/* A database as the binaries before issue 3 left it (version 1, or 2 as
 * every existing installation is) is upgraded in place, rows kept and
 * given to the built-in admin. */
static void old_database_is_migrated_keeping_rows(void)
{
	for (int old = 1; old <= 2; old++) {
		_cleanup_free_ char *spec = fresh_spec();
		_cleanup_json_ json_t *row = NULL;
		_cleanup_json_ json_t *tok = NULL;
		struct kc_error err = {0};
		struct kc_db *db = NULL;
		int v = 0;

		if (!KC_CHECK(spec) || !KC_CHECK(open_at(spec, old, &db, &err) == 0))
			return;
		KC_CHECK(kc_db_schema_version(db, &v, &err) == 0);
		KC_CHECK_INT(v, old);
		/* The old binary's statements. */
		KC_CHECK(kc_db_exec(db,
				    "INSERT INTO hosts (name, updated_at) VALUES ('h1', 'x');"
				    "INSERT INTO vms (name, host, state, request, created_at, "
				    "updated_at) VALUES ('kcsrv-old', 'h1', 'running', "
				    "'{\"name\":\"kcsrv-old\",\"vcpus\":2,\"memory_mib\":256,"
				    "\"disk_gib\":10,\"data_disks_gib\":[1,2]}', 'x', 'x');"
				    "INSERT INTO tokens (name, hash, created_at) VALUES "
				    "('admin', 'oldhash', 'x')",
				    NULL, 0, NULL, &err) == 0);
		kc_db_close(db);
		db = NULL;

		if (!KC_CHECK(open_at(spec, -1, &db, &err) == 0)) {
			kc_test_diag("%s", err.message);
			return;
		}
		KC_CHECK(kc_db_schema_version(db, &v, &err) == 0);
		KC_CHECK_INT(v, kc_db_latest_version());
		KC_CHECK(kc_db_vm_get(db, "kcsrv-old", &row, &err) == 0);
		KC_CHECK_STREQ(str(row, "state"), "running");
		KC_CHECK_STREQ(str(json_object_get(row, "request"), "name"), "kcsrv-old");
		KC_CHECK_STREQ(str(row, "owner"), KC_DB_ADMIN_USER);
		KC_CHECK_INT(num(row, "vcpus"), 2);
		KC_CHECK_INT(num(row, "memory_mib"), 256);
		KC_CHECK_INT(num(row, "disk_gib"), 13);
		/* The old admin token belongs to the admin user now. */
		KC_CHECK(kc_db_token_lookup(db, "oldhash", &tok, &err) == 0);
		KC_CHECK_STREQ(str(tok, "user"), KC_DB_ADMIN_USER);
		KC_CHECK_STREQ(str(tok, "role"), "admin");
		int64_t n = 0;
		KC_CHECK(kc_db_token_count(db, KC_DB_ADMIN_USER, "admin", &n, &err) == 0);
		KC_CHECK_INT(n, 1);
		json_t *h = NULL;
		KC_CHECK(kc_db_host_get(db, "h1", &h, &err) == 0);
		KC_CHECK_STREQ(str(h, "state"), "Up");
		json_decref(h);
		kc_db_close(db);
	}
}

static void newer_schema_is_refused(void)
{
	_cleanup_free_ char *spec = fresh_spec();
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	if (!KC_CHECK(spec) || !KC_CHECK(open_at(spec, -1, &db, &err) == 0))
		return;
	KC_CHECK(kc_db_exec(db, "UPDATE schema_version SET version = 999", NULL, 0, NULL, &err) ==
		 0);
	kc_db_close(db);
	db = NULL;
	KC_CHECK(open_at(spec, -1, &db, &err) < 0);
	KC_CHECK(db == NULL);
	KC_CHECK(strstr(err.message, "newer") != NULL);
}

/* $n placeholders in any order, typed values, rows as JSON. */
static void parameters_and_values(void)
{
	struct kc_db *db = fresh_db();
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *rows = NULL;
	struct kc_error err = {0};
	json_t *detail = json_pack("{s:[i,s],s:b}", "a", 1, "x", "ok", true);

	if (!db)
		return;
	/* $2 first: SQLite numbers named parameters by first appearance. */
	KC_CHECK(kc_db_query_row(db, "SELECT $2 AS b, $1 AS a",
				 KC_DB_PARAMS(KC_DB_TEXT("one"), KC_DB_TEXT("two")), &row,
				 &err) == 0);
	KC_CHECK_STREQ(str(row, "a"), "one");
	KC_CHECK_STREQ(str(row, "b"), "two");
	json_decref(row);
	row = NULL;
	/* A parameter used twice, integers, NULLs. */
	KC_CHECK(kc_db_exec(db,
			    "INSERT INTO audit_log (at, \"user\", action, target, result, detail) "
			    "VALUES ($1, $2, $2, $3, 'ok', $4)",
			    KC_DB_PARAMS(KC_DB_TEXT("2024-01-01T00:00:00Z"), KC_DB_TEXT("u'; --"),
					 KC_DB_TEXT(NULL), KC_DB_JSON(detail)),
			    NULL, &err) == 0);
	KC_CHECK(kc_db_query(db,
			     "SELECT id, \"user\", action, target, detail, $1 AS big, "
			     "CAST(COUNT(*) OVER () AS BIGINT) AS n FROM audit_log",
			     KC_DB_PARAMS(KC_DB_INT(INT64_C(1) << 40)), &rows, &err) == 0);
	row = json_incref(json_array_get(rows, 0));
	KC_CHECK(json_is_integer(json_object_get(row, "id")));
	KC_CHECK_STREQ(str(row, "user"), "u'; --");
	KC_CHECK_STREQ(str(row, "action"), "u'; --");
	KC_CHECK(json_is_null(json_object_get(row, "target")));
	KC_CHECK_INT(num(row, "big"), INT64_C(1) << 40);
	KC_CHECK_INT(num(row, "n"), 1);
	json_t *d = json_loads(str(row, "detail"), 0, NULL);
	KC_CHECK(d && json_equal(d, detail));
	json_decref(d);
	/* An unused parameter is a bug that PostgreSQL lets pass when its type
	 * is given (we always give it) but refuses when it is not: SQLite
	 * catches it. */
	if (!on_pg) {
		KC_CHECK(kc_db_exec(db, "SELECT $1", KC_DB_PARAMS(KC_DB_TEXT("a"), KC_DB_TEXT("b")),
				    NULL, &err) < 0);
		kc_error_clear(&err);
	}
	/* Several statements with parameters: refused on both. */
	KC_CHECK(kc_db_exec(db, "SELECT $1; SELECT $1", KC_DB_PARAMS(KC_DB_TEXT("a")), NULL, &err) <
		 0);
	kc_error_clear(&err);
	json_decref(detail);
	kc_db_close(db);
}

static void vm_rows(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *rows = NULL, *row = NULL;

	if (!db)
		return;
	add_host(db, "h1");
	KC_CHECK(add_vm(db, "kcsrv-1", KC_DB_ADMIN_USER, 1, 64, false, &err) == 0);
	KC_CHECK(add_vm(db, "kcsrv-1", KC_DB_ADMIN_USER, 1, 64, false, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	KC_CHECK(strstr(err.message, "already exists") != NULL);
	kc_error_clear(&err);
	/* A VM on an unknown host or of an unknown user violates a foreign key. */
	json_t *req = json_pack("{s:s}", "name", "kcsrv-2");
	struct kc_db_vm vm = {.name = "kcsrv-2",
			      .host = "nohost",
			      .state = "creating",
			      .owner = KC_DB_ADMIN_USER,
			      .request = req};
	KC_CHECK(kc_db_vm_insert(db, &vm, false, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	vm.host = "h1";
	vm.owner = "nobody";
	KC_CHECK(kc_db_vm_insert(db, &vm, false, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	json_decref(req);
	/* Events do not touch a record a create still owns. */
	KC_CHECK(kc_db_vm_note_state(db, "kcsrv-1", "running", &err) == 0);
	KC_CHECK(kc_db_vm_get(db, "kcsrv-1", &row, &err) == 0);
	KC_CHECK_STREQ(str(row, "state"), "creating");
	KC_CHECK_INT(num(row, "disk_gib"), 15);
	json_decref(row);
	KC_CHECK(kc_db_vm_update(db, "kcsrv-1", "uuid-1", "running", &err) == 0);
	KC_CHECK(kc_db_vm_note_state(db, "kcsrv-1", "shutoff", &err) == 0);
	KC_CHECK(kc_db_vm_get(db, "kcsrv-1", &row, &err) == 0);
	KC_CHECK_STREQ(str(row, "state"), "shutoff");
	KC_CHECK_STREQ(str(row, "uuid"), "uuid-1");
	json_decref(row);
	/* Names are data, never SQL. */
	KC_CHECK(kc_db_vm_get(db, "x' OR '1'='1", &row, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	KC_CHECK(kc_db_vm_list(db, NULL, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 1);
	json_decref(rows);
	KC_CHECK(kc_db_vm_list(db, "someone", &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 0);
	json_decref(rows);
	KC_CHECK(kc_db_vm_delete(db, "kcsrv-1", &err) == 0);
	KC_CHECK(kc_db_vm_list(db, NULL, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 0);
	json_decref(rows);
	KC_CHECK(kc_db_vm_update(db, "kcsrv-1", NULL, "running", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_db_close(db);
}

static void hosts_and_checks(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *row = NULL, *rows = NULL;

	if (!db)
		return;
	add_host(db, "h1");
	add_host(db, "h1"); /* an upsert */
	json_t *check = json_pack("{s:b}", "ok", true);
	KC_CHECK(kc_db_host_set_check(db, "h1", check, "2024-01-01T00:00:00Z", &err) == 0);
	KC_CHECK(kc_db_host_set_check(db, "h9", check, "2024-01-01T00:00:00Z", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	KC_CHECK(kc_db_host_get(db, "h1", &row, &err) == 0);
	KC_CHECK(json_equal(json_object_get(row, "check_result"), check));
	KC_CHECK_INT(num(json_object_get(row, "facts"), "cpus"), 2);
	json_decref(row);
	KC_CHECK(kc_db_host_list(db, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 1);
	json_decref(rows);
	json_decref(check);
	kc_db_close(db);
}

static void unique_violations_are_conflicts(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};

	if (!db)
		return;
	KC_CHECK(kc_db_user_create(db, "alice", "user", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_user_create(db, "alice", "admin", NULL, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_zone_create(db, "z1", &err) == 0);
	KC_CHECK(kc_db_zone_create(db, "z1", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_token_insert(db, "alice", "t", "h", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_token_insert(db, KC_DB_ADMIN_USER, "t", "h", NULL, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	/* Raw statements map the same way. */
	KC_CHECK(kc_db_exec(db, "INSERT INTO zones (name, created_at) VALUES ($1, 'x')",
			    KC_DB_PARAMS(KC_DB_TEXT("z1")), NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_db_close(db);
}

static void users_roles_and_quotas(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *u = NULL, *use = NULL, *rows = NULL;
	char *hash = NULL;

	if (!db)
		return;
	add_host(db, "h1");
	KC_CHECK(kc_db_user_create(db, "alice", "user", "$argon2id$v=19$m=65536,t=2,p=1$x$y", &u,
				   &err) == 0);
	KC_CHECK_STREQ(str(u, "role"), "user");
	KC_CHECK_INT(strlen(str(u, "id") ? str(u, "id") : ""), 36);
	KC_CHECK(json_object_get(u, "password_hash") == NULL);
	KC_CHECK(json_is_null(json_object_get(u, "max_vms")));
	json_decref(u);
	KC_CHECK(kc_db_user_create(db, "bob", "root", NULL, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK(kc_db_user_password_hash(db, "alice", &hash, &err) == 0);
	KC_CHECK(hash && strncmp(hash, "$argon2id$", 10) == 0);
	free(hash);
	KC_CHECK(kc_db_user_set_password(db, "nobody", "x", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	KC_CHECK(kc_db_user_set_role(db, KC_DB_ADMIN_USER, "user", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_FORBIDDEN);
	kc_error_clear(&err);

	struct kc_db_quota q = KC_DB_QUOTA_UNLIMITED;
	q.max_vms = 2;
	q.max_vcpus = 3;
	KC_CHECK(kc_db_user_set_quota(db, "alice", &q, &err) == 0);
	KC_CHECK(add_vm(db, "a1", "alice", 2, 64, true, &err) == 0);
	/* 2 + 2 vCPUs > 3 */
	KC_CHECK(add_vm(db, "a2", "alice", 2, 64, true, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_FORBIDDEN);
	KC_CHECK(strstr(err.message, "vCPUs") != NULL);
	kc_error_clear(&err);
	KC_CHECK(add_vm(db, "a2", "alice", 1, 64, true, &err) == 0);
	KC_CHECK(add_vm(db, "a3", "alice", 0, 64, true, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_FORBIDDEN);
	KC_CHECK(strstr(err.message, "VMs") != NULL);
	kc_error_clear(&err);
	/* The admin has no quota. */
	KC_CHECK(add_vm(db, "b1", KC_DB_ADMIN_USER, 64, 1 << 20, true, &err) == 0);
	KC_CHECK(kc_db_user_usage(db, "alice", &use, &err) == 0);
	KC_CHECK_INT(num(use, "vms"), 2);
	KC_CHECK_INT(num(use, "vcpus"), 3);
	KC_CHECK_INT(num(use, "memory_mib"), 128);
	KC_CHECK_INT(num(use, "disk_gib"), 30);
	json_decref(use);
	KC_CHECK(kc_db_vm_list(db, "alice", &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 2);
	json_decref(rows);

	KC_CHECK(kc_db_user_delete(db, "alice", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_user_delete(db, KC_DB_ADMIN_USER, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_FORBIDDEN);
	kc_error_clear(&err);
	KC_CHECK(kc_db_vm_delete(db, "a1", &err) == 0 && kc_db_vm_delete(db, "a2", &err) == 0);
	KC_CHECK(kc_db_user_delete(db, "alice", &err) == 0);
	KC_CHECK(kc_db_user_list(db, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 1);
	json_decref(rows);
	kc_db_close(db);
}

static void tokens_of_users(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *t = NULL, *rows = NULL;
	char past[21], future[21];
	int64_t id = 0;

	if (!db)
		return;
	kc_db_time_from_now(-10, past);
	kc_db_time_from_now(3600, future);
	KC_CHECK(kc_db_user_create(db, "alice", "user", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_token_insert(db, "alice", "old", "h-old", past, NULL, &err) == 0);
	KC_CHECK(kc_db_token_insert(db, "alice", "cli", "h-cli", future, &id, &err) == 0);
	KC_CHECK(kc_db_token_insert(db, "nobody", "cli", "h-x", NULL, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	/* Expired tokens are not found. */
	KC_CHECK(kc_db_token_lookup(db, "h-old", &t, &err) == 0);
	KC_CHECK(t == NULL);
	KC_CHECK(kc_db_token_lookup(db, "h-cli", &t, &err) == 0);
	KC_CHECK_STREQ(str(t, "user"), "alice");
	KC_CHECK_STREQ(str(t, "role"), "user");
	KC_CHECK_INT(num(t, "id"), id);
	KC_CHECK(json_is_null(json_object_get(t, "last_used_at")));
	json_decref(t);
	KC_CHECK(kc_db_token_touch(db, id, &err) == 0);
	KC_CHECK(kc_db_token_lookup(db, "h-cli", &t, &err) == 0);
	KC_CHECK(str(t, "last_used_at") != NULL);
	json_decref(t);
	KC_CHECK(kc_db_token_list(db, "alice", &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 2);
	KC_CHECK(json_object_get(json_array_get(rows, 0), "hash") == NULL);
	json_decref(rows);
	/* Only one's own tokens can be deleted. */
	KC_CHECK(kc_db_token_delete(db, KC_DB_ADMIN_USER, id, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	KC_CHECK(kc_db_token_delete(db, "alice", id, &err) == 0);
	/* Replace: the admin's "admin" tokens only. */
	KC_CHECK(kc_db_token_insert(db, KC_DB_ADMIN_USER, "admin", "h-a1", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_token_insert(db, "alice", "admin", "h-a2", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_token_replace(db, KC_DB_ADMIN_USER, "admin", "h-a3", &err) == 0);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM tokens WHERE hash IN ('h-a2', 'h-a3')"), 2);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM tokens WHERE hash = 'h-a1'"), 0);
	kc_db_close(db);
}

static void audit_log(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *rows = NULL;

	if (!db)
		return;
	json_t *detail = json_pack("{s:s}", "why", "test");
	for (int i = 0; i < 5; i++) {
		char target[16];
		snprintf(target, sizeof(target), "vm%d", i);
		KC_CHECK(kc_db_audit_add(db, i % 2 ? "alice" : "bob", "vm.create", target, i != 4,
					 i == 0 ? detail : NULL, &err) == 0);
	}
	KC_CHECK(kc_db_audit_list(db, NULL, NULL, 0, 0, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 5);
	json_t *newest = json_array_get(rows, 0), *oldest = json_array_get(rows, 4);
	KC_CHECK_STREQ(str(newest, "target"), "vm4");
	KC_CHECK_STREQ(str(newest, "result"), "error");
	KC_CHECK_STREQ(str(oldest, "result"), "ok");
	KC_CHECK(json_equal(json_object_get(oldest, "detail"), detail));
	KC_CHECK(json_is_null(json_object_get(newest, "detail")));
	KC_CHECK_STREQ(str(newest, "user"), "bob");
	long long id3 = num(json_array_get(rows, 1), "id");
	json_decref(rows);
	KC_CHECK(kc_db_audit_list(db, "alice", NULL, 0, 0, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 2);
	json_decref(rows);
	KC_CHECK(kc_db_audit_list(db, NULL, NULL, id3, 2, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 2);
	KC_CHECK_STREQ(str(json_array_get(rows, 0), "target"), "vm2");
	json_decref(rows);
	KC_CHECK(kc_db_audit_list(db, NULL, "2999-01-01T00:00:00Z", 0, 10, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 0);
	json_decref(rows);
	KC_CHECK(kc_db_audit_list(db, NULL, NULL, 0, 1001, &rows, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	json_decref(detail);
	kc_db_close(db);
}

static void jobs_and_idempotency(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *j1 = NULL, *j2 = NULL, *j3 = NULL, *j4 = NULL, *j5 = NULL, *got = NULL;
	bool existing = true;

	if (!db)
		return;
	KC_CHECK(kc_db_user_create(db, "alice", "user", NULL, NULL, &err) == 0);
	json_t *req = json_pack("{s:s}", "name", "web1");
	struct kc_db_job_new n = {.kind = "vm.create",
				  .owner = "alice",
				  .idempotency_key = "k1",
				  .target = "web1",
				  .request = req};
	KC_CHECK(kc_db_job_create(db, &n, &j1, &existing, &err) == 0);
	KC_CHECK(!existing);
	KC_CHECK_STREQ(str(j1, "state"), "queued");
	KC_CHECK_INT(num(j1, "progress"), 0);
	KC_CHECK(json_equal(json_object_get(j1, "request"), req));
	KC_CHECK_INT(strlen(str(j1, "id") ? str(j1, "id") : ""), 36);
	/* A retry with the key: the same job. */
	KC_CHECK(kc_db_job_create(db, &n, &j2, &existing, &err) == 0);
	KC_CHECK(existing);
	KC_CHECK_STREQ(str(j2, "id"), str(j1, "id"));
	/* Keys are per user; no key is never a duplicate. */
	n.owner = KC_DB_ADMIN_USER;
	KC_CHECK(kc_db_job_create(db, &n, &j3, &existing, &err) == 0);
	KC_CHECK(!existing);
	KC_CHECK(strcmp(str(j3, "id"), str(j1, "id")) != 0);
	n.idempotency_key = NULL;
	KC_CHECK(kc_db_job_create(db, &n, &j4, &existing, &err) == 0);
	KC_CHECK(kc_db_job_create(db, &n, &j5, &existing, &err) == 0);
	KC_CHECK(!existing && strcmp(str(j4, "id"), str(j5, "id")) != 0);

	/* Claims go oldest first and never twice. */
	KC_CHECK(kc_db_job_claim(db, str(j3, "id"), "srv-b", &err) == 0);
	KC_CHECK(kc_db_job_claim(db, str(j3, "id"), "srv-b", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	int claimed = 0;
	for (;;) {
		KC_CHECK(kc_db_job_claim_next(db, "srv-a", &got, &err) == 0);
		if (!got)
			break;
		KC_CHECK_STREQ(str(got, "state"), "running");
		KC_CHECK_STREQ(str(got, "worker"), "srv-a");
		json_decref(got);
		claimed++;
	}
	KC_CHECK_INT(claimed, 3);
	KC_CHECK(kc_db_job_progress(db, str(j1, "id"), 50, &err) == 0);
	KC_CHECK(kc_db_job_progress(db, str(j1, "id"), 101, &err) < 0);
	kc_error_clear(&err);
	json_t *result = json_pack("{s:s}", "vm", "web1");
	KC_CHECK(kc_db_job_finish(db, str(j1, "id"), true, result, NULL, &err) == 0);
	KC_CHECK(kc_db_job_finish(db, str(j1, "id"), true, result, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_job_get(db, str(j1, "id"), &got, &err) == 0);
	KC_CHECK_STREQ(str(got, "state"), "succeeded");
	KC_CHECK_INT(num(got, "progress"), 100);
	KC_CHECK(json_equal(json_object_get(got, "result"), result));
	json_decref(got);
	/* A dead server's running jobs go back to the queue. */
	int64_t requeued = 0;
	KC_CHECK(kc_db_job_requeue_worker(db, "srv-a", &requeued, &err) == 0);
	KC_CHECK_INT(requeued, 2);
	KC_CHECK(kc_db_job_list(db, NULL, 0, &got, &err) == 0);
	KC_CHECK_INT(json_array_size(got), 4);
	json_decref(got);
	KC_CHECK(kc_db_job_list(db, "alice", 10, &got, &err) == 0);
	KC_CHECK_INT(json_array_size(got), 1);
	json_decref(got);
	KC_CHECK(kc_db_job_get(db, "nope", &got, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	json_decref(result);
	json_decref(req);
	json_decref(j1);
	json_decref(j2);
	json_decref(j3);
	json_decref(j4);
	json_decref(j5);
	kc_db_close(db);
}

static void inventory(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	json_t *row = NULL, *names = NULL;
	char *host = NULL;
	char past[21], future[21];
	bool revoked = false;

	if (!db)
		return;
	kc_db_time_from_now(-10, past);
	kc_db_time_from_now(3600, future);
	KC_CHECK(kc_db_zone_create(db, "z1", &err) == 0);
	json_t *sig = json_pack("{s:s,s:[s,s]}", "model", "Skylake", "features", "avx", "aes");
	KC_CHECK(kc_db_cluster_create(db, "c1", "z1", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_cluster_create(db, "c2", "nozone", NULL, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK(kc_db_cluster_set_cpu(db, "c1", "Skylake", sig, &err) == 0);
	KC_CHECK(kc_db_cluster_get(db, "c1", &row, &err) == 0);
	KC_CHECK(json_equal(json_object_get(row, "cpu_signature"), sig));
	json_decref(row);
	KC_CHECK(kc_db_cluster_list(db, "z1", &row, &err) == 0);
	KC_CHECK_INT(json_array_size(row), 1);
	json_decref(row);

	KC_CHECK(kc_db_host_add(db, "n1", "z1", "c1", &err) == 0);
	KC_CHECK(kc_db_host_add(db, "n1", "z1", "c1", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_host_get(db, "n1", &row, &err) == 0);
	KC_CHECK_STREQ(str(row, "state"), "Pending");
	KC_CHECK_STREQ(str(row, "cluster"), "c1");
	json_decref(row);
	/* The zone still has a cluster and a host. */
	KC_CHECK(kc_db_zone_delete(db, "z1", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);

	KC_CHECK(kc_db_join_token_create(db, "jt-old", "n1", past, &err) == 0);
	KC_CHECK(kc_db_join_token_create(db, "jt", "n1", future, &err) == 0);
	KC_CHECK(kc_db_join_token_use(db, "jt-old", &host, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_UNAUTHORIZED);
	kc_error_clear(&err);
	KC_CHECK(kc_db_join_token_use(db, "jt", &host, &err) == 0);
	KC_CHECK_STREQ(host, "n1");
	free(host);
	host = NULL;
	KC_CHECK(kc_db_join_token_use(db, "jt", &host, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_UNAUTHORIZED);
	kc_error_clear(&err);

	KC_CHECK(kc_db_host_set_cert(db, "n1", "0a1b2c", &err) == 0);
	KC_CHECK(kc_db_host_seen(db, "n1", &err) == 0);
	KC_CHECK(kc_db_host_set_state(db, "n1", "Sleeping", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK(kc_db_host_mark_stale(db, "2999-01-01T00:00:00Z", false, &names, &err) == 0);
	KC_CHECK_INT(json_array_size(names), 1);
	KC_CHECK_STREQ(json_string_value(json_array_get(names, 0)), "n1");
	json_decref(names);
	KC_CHECK(kc_db_host_mark_stale(db, "2999-01-01T00:00:00Z", true, &names, &err) == 0);
	KC_CHECK_INT(json_array_size(names), 1);
	json_decref(names);
	KC_CHECK(kc_db_host_seen(db, "n1", &err) == 0);
	KC_CHECK(kc_db_host_set_state(db, "n1", "Maintenance", &err) == 0);
	KC_CHECK(kc_db_host_seen(db, "n1", &err) == 0);
	KC_CHECK(kc_db_host_get(db, "n1", &row, &err) == 0);
	KC_CHECK_STREQ(str(row, "state"), "Maintenance");
	KC_CHECK(str(row, "last_seen_at") != NULL);
	json_decref(row);

	/* A host with VM records stays; removing one revokes its certificate. */
	KC_CHECK(kc_db_exec(db,
			    "INSERT INTO vms (name, host, state, request, created_at, updated_at, "
			    "owner) VALUES ('v', 'n1', 'running', '{}', 'x', 'x', 'admin')",
			    NULL, 0, NULL, &err) == 0);
	KC_CHECK(kc_db_host_remove(db, "n1", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	KC_CHECK(kc_db_vm_delete(db, "v", &err) == 0);
	KC_CHECK(kc_db_host_remove(db, "n1", &err) == 0);
	KC_CHECK(kc_db_cert_is_revoked(db, "0a1b2c", &revoked, &err) == 0);
	KC_CHECK(revoked);
	KC_CHECK(kc_db_cert_is_revoked(db, "ffff", &revoked, &err) == 0);
	KC_CHECK(!revoked);
	KC_CHECK(kc_db_cert_revoke(db, "0a1b2c", "n1", &err) == 0); /* again: fine */
	KC_CHECK(kc_db_cert_revoked_list(db, &row, &err) == 0);
	KC_CHECK_INT(json_array_size(row), 1);
	json_decref(row);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM join_tokens"), 0);
	KC_CHECK(kc_db_host_remove(db, "n1", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	json_decref(sig);
	kc_db_close(db);
}

/* ---- transactions ---- */

static int insert_then_fail(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	if (kc_db_zone_create(tx, "ztx", err) < 0)
		return -1;
	return kc_error_set(err, KC_ERR_INVALID, "changed my mind");
}

static int nested_outer(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	/* Functions that run their own transaction join this one. */
	if (kc_db_zone_create(tx, "zouter", err) < 0 ||
	    kc_db_host_add(tx, "hn", NULL, NULL, err) < 0)
		return -1;
	return kc_db_host_remove(tx, "hn", err);
}

static int use_parent_inside(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	return kc_db_zone_create(opaque, "zbad", err);
}

static void transactions(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};

	if (!db)
		return;
	KC_CHECK(kc_db_tx(db, insert_then_fail, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK_STREQ(err.message, "changed my mind");
	kc_error_clear(&err);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM zones"), 0);
	KC_CHECK(kc_db_tx(db, nested_outer, NULL, &err) == 0);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM zones"), 1);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM hosts"), 0);
	if (!on_pg) {
		/* The parent handle inside a transaction: an error, not a hang. */
		KC_CHECK(kc_db_tx(db, use_parent_inside, db, &err) < 0);
		KC_CHECK(strstr(err.message, "transaction handle") != NULL);
	}
	kc_db_close(db);
}

/* ---- threads ---- */

#define N_THREADS 8
#define N_EACH	  25

struct worker {
	struct kc_db *db;
	int id;
	int ok, quota_refused, failed;
	bool job_existing;
	char job_id[40];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < N_EACH; i++) {
		struct kc_error err = {0};
		char name[32];
		snprintf(name, sizeof(name), "t%d-%d", w->id, i);
		if (kc_db_audit_add(w->db, "alice", "vm.create", name, true, NULL, &err) < 0 ||
		    add_vm(w->db, name, KC_DB_ADMIN_USER, 1, 64, false, &err) < 0) {
			w->failed++;
			fprintf(stderr, "worker %d: %s\n", w->id, err.message);
		}
	}
	/* Everyone races for alice's 5 VMs. */
	for (int i = 0; i < 2; i++) {
		struct kc_error err = {0};
		char name[32];
		snprintf(name, sizeof(name), "q%d-%d", w->id, i);
		if (add_vm(w->db, name, "alice", 1, 64, true, &err) == 0)
			w->ok++;
		else if (err.code == KC_ERR_FORBIDDEN)
			w->quota_refused++;
		else {
			w->failed++;
			fprintf(stderr, "worker %d: %s\n", w->id, err.message);
		}
	}
	/* And for one idempotency key. */
	struct kc_db_job_new n = {.kind = "vm.create", .owner = "alice", .idempotency_key = "same"};
	struct kc_error err = {0};
	json_t *job = NULL;
	if (kc_db_job_create(w->db, &n, &job, &w->job_existing, &err) == 0)
		snprintf(w->job_id, sizeof(w->job_id), "%s", str(job, "id"));
	else
		w->failed++;
	json_decref(job);
	return NULL;
}

static void concurrent_writers(void)
{
	struct kc_db *db = fresh_db();
	struct worker w[N_THREADS];
	pthread_t th[N_THREADS];
	struct kc_error err = {0};
	struct kc_db_quota q = KC_DB_QUOTA_UNLIMITED;

	if (!db)
		return;
	add_host(db, "h1");
	q.max_vms = 5;
	KC_CHECK(kc_db_user_create(db, "alice", "user", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_user_set_quota(db, "alice", &q, &err) == 0);
	for (int i = 0; i < N_THREADS; i++) {
		w[i] = (struct worker){.db = db, .id = i};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	int ok = 0, refused = 0, failed = 0, created = 0;
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		refused += w[i].quota_refused;
		failed += w[i].failed;
		created += !w[i].job_existing;
		KC_CHECK_STREQ(w[i].job_id, w[0].job_id);
	}
	KC_CHECK_INT(failed, 0);
	KC_CHECK_INT(ok, 5);
	KC_CHECK_INT(refused, N_THREADS * 2 - 5);
	KC_CHECK_INT(created, 1);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM audit_log"), N_THREADS * N_EACH);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM vms WHERE owner = 'admin'"),
		     N_THREADS * N_EACH);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM vms WHERE owner = 'alice'"), 5);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM jobs"), 1);
	kc_db_close(db);
}

struct opener {
	const char *spec;
	int rc;
	struct kc_error err;
};

static void *open_main(void *arg)
{
	struct opener *o = arg;
	struct kc_db *db = NULL;

	o->rc = open_at(o->spec, -1, &db, &o->err);
	kc_db_close(db);
	return NULL;
}

/* Servers starting at once on one new database: one migrates, the
 * others wait and find it done. */
static void simultaneous_starts_migrate_once(void)
{
	_cleanup_free_ char *spec = fresh_spec();
	struct opener o[4];
	pthread_t th[4];

	if (!KC_CHECK(spec))
		return;
	for (int i = 0; i < 4; i++) {
		o[i] = (struct opener){.spec = spec};
		pthread_create(&th[i], NULL, open_main, &o[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (!KC_CHECK_INT(o[i].rc, 0))
			kc_test_diag("%s", o[i].err.message);
	}
	struct kc_db *db = NULL;
	struct kc_error err = {0};
	int v = 0;
	if (!KC_CHECK(open_at(spec, -1, &db, &err) == 0))
		return;
	KC_CHECK(kc_db_schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, kc_db_latest_version());
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM schema_version"), 1);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM users"), 1);
	kc_db_close(db);
}

/* ---- PostgreSQL only ---- */

static int pg_backend_pid(struct kc_db *db)
{
	struct kc_error err = {0};
	int64_t pid = 0;

	if (kc_db_query_int(db, "SELECT pg_backend_pid()", NULL, 0, &pid, &err) < 0)
		kc_test_diag("%s", err.message);
	return (int)pid;
}

/* Terminates a backend and waits until it is gone. */
static bool terminate(int pid)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	if (!pg_admin(sql))
		return false;
	PGconn *c = PQconnectdb(pg_url);
	bool gone = false;
	snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_stat_activity WHERE pid = %d", pid);
	for (int i = 0; i < 500 && !gone && PQstatus(c) == CONNECTION_OK; i++) {
		/* One transaction per look: pg_stat_activity is a snapshot. */
		PGresult *r = PQexec(c, sql);
		gone = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0;
		PQclear(r);
		if (!gone)
			usleep(10000);
	}
	PQfinish(c);
	return gone;
}

static int attempts;

static int killed_once(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	if (kc_db_zone_create(tx, "zk", err) < 0)
		return -1;
	/* The first attempt loses its connection half-way. */
	if (attempts++ == 0) {
		int64_t ignored;
		return kc_db_query_int(tx, "SELECT pg_terminate_backend(pg_backend_pid())", NULL, 0,
				       &ignored, err);
	}
	return 0;
}

static void pg_broken_connection_is_replaced(void)
{
	_cleanup_free_ char *spec = fresh_spec();
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	if (!KC_CHECK(spec) || !KC_CHECK(kc_db_pg_open(spec, -1, 1, &db, &err) == 0))
		return;
	int pid = pg_backend_pid(db);
	KC_CHECK(pid > 0);
	KC_CHECK(terminate(pid));
	/* The next statement runs on a new connection, and only once. */
	KC_CHECK(kc_db_zone_create(db, "z1", &err) == 0);
	if (err.message[0])
		kc_test_diag("%s", err.message);
	int pid2 = pg_backend_pid(db);
	KC_CHECK(pid2 > 0 && pid2 != pid);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM zones"), 1);
	/* A connection lost inside a transaction: it runs again. */
	attempts = 0;
	kc_error_clear(&err);
	KC_CHECK(kc_db_tx(db, killed_once, NULL, &err) == 0);
	if (err.message[0])
		kc_test_diag("%s", err.message);
	KC_CHECK_INT(attempts, 2);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM zones WHERE name = 'zk'"), 1);
	kc_db_close(db);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sleep_3s(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	attempts++;
	return kc_db_query_int(tx, "SELECT COUNT(*) FROM (SELECT pg_sleep(3)) AS s", NULL, 0,
			       &(int64_t){0}, err);
}

static void pg_statement_timeout_cancels_a_stuck_query(void)
{
	_cleanup_free_ char *spec = fresh_spec();
	_cleanup_json_ json_t *rows = NULL;
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	if (!KC_CHECK(spec) || !KC_CHECK(kc_db_pg_open(spec, -1, 1, &db, &err) == 0))
		return;
	/* Every pooled connection has the default limit. */
	KC_CHECK(kc_db_query(db, "SHOW statement_timeout", NULL, 0, &rows, &err) == 0);
	KC_CHECK_STREQ(str(json_array_get(rows, 0), "statement_timeout"), "30s");
	int pid = pg_backend_pid(db);

	KC_CHECK(kc_db_pg_set_statement_timeout(db, 500, &err) == 0);
	double t0 = mono_s();
	KC_CHECK(kc_db_query_int(db, "SELECT COUNT(*) FROM (SELECT pg_sleep(3)) AS s", NULL, 0,
				 &(int64_t){0}, &err) < 0);
	double took = mono_s() - t0;
	KC_CHECK_INT(err.code, KC_ERR_TIMEOUT);
	if (!KC_CHECK(strstr(err.message, "statement timeout of 500 ms") &&
		      strstr(err.message, "SQLSTATE 57014")))
		kc_test_diag("%s", err.message);
	if (!KC_CHECK(took >= 0.4 && took < 2.5))
		kc_test_diag("the cancelled statement took %.2f s", took);
	/* The connection outlives the cancellation. */
	KC_CHECK_INT(count(db, "SELECT 7"), 7);
	KC_CHECK_INT(pg_backend_pid(db), pid);

	/* In a transaction: a timeout is not "busy", so it is not run again. */
	attempts = 0;
	kc_error_clear(&err);
	KC_CHECK(kc_db_tx(db, sleep_3s, NULL, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_TIMEOUT);
	KC_CHECK_INT(attempts, 1);
	KC_CHECK(kc_db_zone_create(db, "zt", &err) == 0);

	/* Not a PostgreSQL handle. */
	struct kc_db other = {0};
	kc_error_clear(&err);
	KC_CHECK(kc_db_pg_set_statement_timeout(&other, 1, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_db_close(db);
}

static void pg_unreachable_server_fails_clearly(void)
{
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	KC_CHECK(kc_db_open("postgresql://kc:secretpw@127.0.0.1:1/kc", &db, &err) < 0);
	KC_CHECK(db == NULL);
	KC_CHECK_INT(err.code, KC_ERR_UNAVAILABLE);
	KC_CHECK(strstr(err.message, "PostgreSQL") != NULL);
	KC_CHECK(strstr(err.message, "secretpw") == NULL);
}

static void vm_groups(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	_cleanup_json_ json_t *all = NULL, *mine = NULL, *g = NULL;

	if (!db)
		return;
	add_host(db, "h1");
	KC_CHECK(kc_db_user_create(db, "gu", "user", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_exec(db,
			    "INSERT INTO vm_groups (name, policy, owner, created_at) VALUES "
			    "('g-web', 'anti-affinity', 'gu', 'x'), ('g-db', 'affinity', $1, 'x')",
			    KC_DB_PARAMS(KC_DB_TEXT(KC_DB_ADMIN_USER)), NULL, &err) == 0);
	KC_CHECK(add_vm(db, "gvm-1", "gu", 1, 64, false, &err) == 0);
	KC_CHECK(add_vm(db, "gvm-2", "gu", 1, 64, false, &err) == 0);
	KC_CHECK(kc_db_exec(db, "UPDATE vms SET vm_group = 'g-web'", NULL, 0, NULL, &err) == 0);

	KC_CHECK(kc_db_group_list(db, NULL, &all, &err) == 0);
	KC_CHECK_INT(json_array_size(all), 2);
	KC_CHECK_STREQ(str(json_array_get(all, 0), "name"), "g-db");
	KC_CHECK_INT(json_integer_value(json_object_get(json_array_get(all, 0), "member_count")),
		     0);
	KC_CHECK_INT(json_integer_value(json_object_get(json_array_get(all, 1), "member_count")),
		     2);
	KC_CHECK(kc_db_group_list(db, "gu", &mine, &err) == 0);
	KC_CHECK_INT(json_array_size(mine), 1);
	KC_CHECK_STREQ(str(json_array_get(mine, 0), "owner"), "gu");

	KC_CHECK(kc_db_group_get(db, "g-web", &g, &err) == 0);
	KC_CHECK_STREQ(str(g, "policy"), "anti-affinity");
	json_t *members = json_object_get(g, "members");
	KC_CHECK_INT(json_array_size(members), 2);
	KC_CHECK_STREQ(str(json_array_get(members, 1), "name"), "gvm-2");
	KC_CHECK_STREQ(str(json_array_get(members, 1), "host"), "h1");

	/* Not while it has members; then gone. */
	KC_CHECK(kc_db_group_delete(db, "g-web", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	KC_CHECK(strstr(err.message, "still has 2 VMs") != NULL);
	kc_error_clear(&err);
	KC_CHECK(kc_db_vm_delete(db, "gvm-1", &err) == 0 &&
		 kc_db_vm_delete(db, "gvm-2", &err) == 0);
	KC_CHECK(kc_db_group_delete(db, "g-web", &err) == 0);
	KC_CHECK(kc_db_group_delete(db, "g-web", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	KC_CHECK(kc_db_group_get(db, "g-web", &(json_t *){NULL}, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM vm_groups"), 1);
	kc_db_close(db);
}

static void join_token_reissue(void)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	char old[65], new1[65], new2[65], future[21];
	_cleanup_free_ char *host = NULL, *revoked = NULL;
	bool is_revoked = false;

	if (!db)
		return;
	memset(old, 'a', 64), memset(new1, 'b', 64), memset(new2, 'c', 64);
	old[64] = new1[64] = new2[64] = '\0';
	kc_db_time_from_now(3600, future);
	KC_CHECK(kc_db_host_add(db, "hj", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_join_token_create(db, old, "hj", future, &err) == 0);
	KC_CHECK(kc_db_join_token_reissue(db, "hj", new1, future, &revoked, &err) == 0);
	KC_CHECK(revoked == NULL);
	/* The old token is gone, the new one works once. */
	KC_CHECK(kc_db_join_token_use(db, old, &host, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_UNAUTHORIZED);
	kc_error_clear(&err);
	KC_CHECK(kc_db_join_token_use(db, new1, &host, &err) == 0);
	KC_CHECK_STREQ(host, "hj");
	/* Joined (a certificate) but never connected: still Pending; a new
	 * token revokes that certificate. */
	KC_CHECK(kc_db_host_set_cert(db, "hj", "5E41A1", &err) == 0);
	KC_CHECK(kc_db_join_token_reissue(db, "hj", new2, future, &revoked, &err) == 0);
	KC_CHECK_STREQ(revoked, "5E41A1");
	KC_CHECK(kc_db_cert_is_revoked(db, "5E41A1", &is_revoked, &err) == 0 && is_revoked);
	KC_CHECK_INT(count(db, "SELECT COUNT(*) FROM hosts WHERE name = 'hj' AND "
			       "cert_serial IS NULL"),
		     1);
	/* A host that has connected keeps its certificate. */
	free(steal_ptr(&revoked));
	KC_CHECK(kc_db_host_set_state(db, "hj", "Up", &err) == 0);
	KC_CHECK(kc_db_join_token_reissue(db, "hj", old, future, &revoked, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	KC_CHECK(strstr(err.message, "is Up, not Pending") != NULL);
	kc_error_clear(&err);
	KC_CHECK(kc_db_join_token_reissue(db, "nohost", old, future, &revoked, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	/* The refused calls changed nothing: the last token still works. */
	free(steal_ptr(&host));
	kc_error_clear(&err);
	KC_CHECK(kc_db_join_token_use(db, new2, &host, &err) == 0);
	kc_db_close(db);
}

static const struct db_case {
	const char *name;
	void (*fn)(void);
	bool pg_only;
} db_cases[] = {
	{"fresh_database_gets_latest_schema", fresh_database_gets_latest_schema, false},
	{"old_database_is_migrated_keeping_rows", old_database_is_migrated_keeping_rows, false},
	{"newer_schema_is_refused", newer_schema_is_refused, false},
	{"parameters_and_values", parameters_and_values, false},
	{"vm_rows", vm_rows, false},
	{"hosts_and_checks", hosts_and_checks, false},
	{"unique_violations_are_conflicts", unique_violations_are_conflicts, false},
	{"users_roles_and_quotas", users_roles_and_quotas, false},
	{"tokens_of_users", tokens_of_users, false},
	{"audit_log", audit_log, false},
	{"jobs_and_idempotency", jobs_and_idempotency, false},
	{"inventory", inventory, false},
	{"vm_groups", vm_groups, false},
	{"join_token_reissue", join_token_reissue, false},
	{"transactions", transactions, false},
	{"concurrent_writers", concurrent_writers, false},
	{"simultaneous_starts_migrate_once", simultaneous_starts_migrate_once, false},
	{"broken_connection_is_replaced", pg_broken_connection_is_replaced, true},
	{"statement_timeout_cancels_a_stuck_query", pg_statement_timeout_cancels_a_stuck_query,
	 true},
};

/* ---- SQLite only ---- */

static int raw_int(const char *path, const char *sql)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_open(path, &c) == SQLITE_OK && sqlite3_prepare_v2(c, sql, -1, &st, NULL) == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(c);
	return v;
}

KC_TEST(sqlite_file_has_wal_and_every_index)
{
	_cleanup_free_ char *p = db_path("fresh.db");
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	if (!KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	kc_db_close(db);
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM sqlite_master WHERE name IN "
				"('hosts','vms','tokens','vms_host','users','jobs_idempotency')"),
		     6);
	KC_CHECK_INT(raw_int(p, "PRAGMA journal_mode = WAL") >= 0, 1);
}

KC_TEST(postgresql_url_selects_postgresql)
{
	pg_unreachable_server_fails_clearly();
}

KC_TEST(admin_token_created_once_and_checked)
{
	_cleanup_free_ char *p = db_path("tok.db");
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	char *line = NULL, token[KC_TOKEN_HEX_LEN + 1] = "", hdr[128];

	if (!KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	KC_CHECK(kc_auth_init(db, dir, KC_AUTH_SHOW_TOKEN, NULL, &line, &err) == 0);
	KC_CHECK(line && strncmp(line, "admin token: ", 13) == 0 && strlen(line) == 13 + 64);
	if (line)
		snprintf(token, sizeof(token), "%s", line + 13);
	kc_auth_line_free(line);
	line = NULL;

	_cleanup_free_ char *tf = db_path("admin.token");
	struct stat st;
	KC_CHECK(stat(tf, &st) == 0 && (st.st_mode & 0777) == 0600);
	FILE *f = fopen(tf, "r");
	char filetok[100] = "";
	KC_CHECK(f && fgets(filetok, sizeof(filetok), f));
	if (f)
		fclose(f);
	filetok[strcspn(filetok, "\n")] = '\0';
	KC_CHECK_STREQ(filetok, token);
	/* The database holds the hash, never the token. */
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM tokens"), 1);

	KC_CHECK(kc_auth_init(db, dir, KC_AUTH_SHOW_TOKEN, NULL, &line, &err) == 0);
	KC_CHECK(line && strstr(line, "admin token: in ") == line);
	kc_auth_line_free(line);
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM tokens"), 1);

	snprintf(hdr, sizeof(hdr), "Bearer %s", token);
	KC_CHECK(kc_auth_check(db, hdr, &err) == 0);
	hdr[strlen(hdr) - 1] ^= 1;
	KC_CHECK(kc_auth_check(db, hdr, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_UNAUTHORIZED);
	kc_error_clear(&err);
	KC_CHECK(kc_auth_check(db, NULL, &err) < 0);
	kc_error_clear(&err);
	KC_CHECK(kc_auth_check(db, token, &err) < 0); /* no "Bearer " */
	kc_db_close(db);
}

static void read_token_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (f && fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = '\0';
	if (f)
		fclose(f);
}

KC_TEST(token_hidden_off_terminal_and_reset_replaces_it)
{
	char sub[256], tf[300], hdr[128], old[KC_TOKEN_HEX_LEN + 8], now[KC_TOKEN_HEX_LEN + 8];
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	char *line = NULL;
	char *warn = NULL;
	size_t warn_len = 0;

	snprintf(sub, sizeof(sub), "%s/reset", dir);
	snprintf(tf, sizeof(tf), "%s/admin.token", sub);
	_cleanup_free_ char *p = db_path("reset/k.db");
	if (!KC_CHECK(mkdir(sub, 0755) == 0) || !KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	/* Without KC_AUTH_SHOW_TOKEN (stdout is not a terminal) the line
	 * says where the token is, never the token. */
	KC_CHECK(kc_auth_init(db, sub, 0, NULL, &line, &err) == 0);
	read_token_file(tf, old, sizeof(old));
	KC_CHECK_INT(strlen(old), KC_TOKEN_HEX_LEN);
	KC_CHECK(line && strstr(line, "admin token: created, in ") == line && strstr(line, tf) &&
		 strstr(line, "(mode 0600)") && !strstr(line, old));
	kc_auth_line_free(line);
	line = NULL;

	/* A missing file with tokens in the database is warned about. */
	KC_CHECK(unlink(tf) == 0);
	FILE *log = open_memstream(&warn, &warn_len);
	KC_CHECK(kc_auth_init(db, sub, 0, log, &line, &err) == 0);
	fclose(log);
	KC_CHECK(warn && strstr(warn, tf) && strstr(warn, "--reset-admin-token"));
	free(warn);
	kc_auth_line_free(line);
	line = NULL;

	/* The reset makes a new file and removes the old hash. */
	KC_CHECK(kc_auth_init(db, sub, KC_AUTH_RESET, NULL, &line, &err) == 0);
	KC_CHECK(line && strstr(line, "admin token: replaced, in ") == line);
	kc_auth_line_free(line);
	read_token_file(tf, now, sizeof(now));
	KC_CHECK_INT(strlen(now), KC_TOKEN_HEX_LEN);
	KC_CHECK(strcmp(now, old) != 0);
	struct stat st;
	KC_CHECK(stat(tf, &st) == 0 && (st.st_mode & 0777) == 0600);
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM tokens"), 1);
	snprintf(hdr, sizeof(hdr), "Bearer %s", old);
	KC_CHECK(kc_auth_check(db, hdr, &err) < 0);
	kc_error_clear(&err);
	snprintf(hdr, sizeof(hdr), "Bearer %s", now);
	KC_CHECK(kc_auth_check(db, hdr, &err) == 0);
	kc_db_close(db);
}

KC_TEST(database_files_are_private)
{
	_cleanup_free_ char *p = db_path("mode.db");
	_cleanup_free_ char *wal = db_path("mode.db-wal");
	_cleanup_free_ char *shm = db_path("mode.db-shm");
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	struct stat st;

	/* As an older binary may have left it: world-readable. */
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	KC_CHECK(fd >= 0 && fchmod(fd, 0644) == 0);
	if (fd >= 0)
		close(fd);
	if (!KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	add_host(db, "modehost");
	KC_CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	KC_CHECK(stat(wal, &st) == 0 && (st.st_mode & 0777) == 0600);
	KC_CHECK(stat(shm, &st) == 0 && (st.st_mode & 0777) == 0600);
	kc_db_close(db);
}

/* Runs every backend-neutral case on `backend`. */
static void run_cases(bool pg)
{
	char name[128];

	on_pg = pg;
	for (size_t i = 0; i < KC_ARRAY_SIZE(db_cases); i++) {
		if (db_cases[i].pg_only && !pg)
			continue;
		snprintf(name, sizeof(name), "%s: %s", pg ? "postgresql" : "sqlite",
			 db_cases[i].name);
		kc_test_begin(name);
		db_cases[i].fn();
		kc_test_end();
	}
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	pg_url = getenv("KC_TEST_PG_URL");
	if (pg_url && !*pg_url)
		pg_url = NULL;
	if (!pg_url)
		kc_test_diag("KC_TEST_PG_URL not set: SQLite only");
	run_cases(false);
	if (pg_url)
		run_cases(true);
	on_pg = false;
	kc_test_run_registered();
	for (size_t i = 0; i < n_schemas; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schemas[i]);
		pg_admin(sql);
		free(schemas[i]);
	}
	int rc = kc_test_finish();
	srvtest_rm_rf(dir);
	return rc;
}
