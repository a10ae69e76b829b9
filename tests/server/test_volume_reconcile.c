/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_volume_reconcile.c - the settlement rules of volume_reconcile.c
 * (kc_volume_settle) against SQLite and, when KC_TEST_PG_URL names a
 * PostgreSQL database (run_db_pg.sh), PostgreSQL: each transitional state
 * against what a fake host says, rows a request holds (busy), rows of
 * other hosts, hosts that cannot tell, and a row that changes while it
 * is judged.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "db_hosts.h"
#include "db_volumes.h"
#include "json_util.h"
#include "kctest.h"
#include "srvtest.h"
#include "volumes.h"

static char dir[] = "/tmp/kcsrv-test-volrec-XXXXXX";
static const char *pg_url;
static bool on_pg;
static unsigned n_fresh;
static char *schemas[64];
static size_t n_schemas;
/* Only a key for the busy set: never dereferenced. */
static struct kc_server *const me = (struct kc_server *)&n_fresh;

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

/* A fresh database of the current backend with hosts h1 and h2. */
static struct kc_db *fresh_db(void)
{
	unsigned n = ++n_fresh;
	_cleanup_free_ char *spec = NULL;
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	if (!on_pg) {
		if (asprintf(&spec, "%s/volrec-%u.db", dir, n) < 0)
			abort();
	} else {
		char name[64], sql[128];
		snprintf(name, sizeof(name), "kcvr_%d_%u", (int)getpid(), n);
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
		if (!pg_admin(sql))
			return NULL;
		if (n_schemas < KC_ARRAY_SIZE(schemas))
			schemas[n_schemas++] = strdup(name);
		if (asprintf(&spec, "%s%coptions=-csearch_path%%3D%s", pg_url,
			     strchr(pg_url, '?') ? '&' : '?', name) < 0)
			abort();
	}
	int rc = on_pg ? kc_db_pg_open(spec, -1, 0, &db, &err)
		       : kc_db_sqlite_open(spec, -1, &db, &err);
	if (!KC_CHECK(rc == 0)) {
		kc_test_diag("open: %s", err.message);
		return NULL;
	}
	json_t *facts = json_pack("{s:i}", "cpus", 2);
	const char *hosts[] = {"h1", "h2"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(hosts); i++) {
		struct kc_db_host h = {
			.name = hosts[i], .uuid = hosts[i], .facts = facts, .accel = "tcg"};
		if (!KC_CHECK(kc_db_host_upsert(db, &h, &err) == 0))
			kc_test_diag("%s", err.message);
	}
	json_decref(facts);
	return db;
}

/* Volume `name` of 1.5 GiB on `host`, then put in `state` (with an
 * attachment or upload counters as given). */
static void vol(struct kc_db *db, const char *name, const char *host, const char *state,
		const char *vm, const char *target, bool upload)
{
	struct kc_error err = {0};
	int rc = kc_db_volume_insert(db,
				     &(struct kc_db_volume){.name = name,
							    .pool = "default",
							    .host = host,
							    .format = "qcow2",
							    .owner = KC_DB_ADMIN_USER,
							    .capacity_bytes = 3LL << 29},
				     false, &err);
	if (rc == 0)
		rc = kc_db_exec(db,
				"UPDATE volumes SET state = $2, attached_to = $3, target = $4, "
				"upload_bytes = $5, received_bytes = $6 WHERE name = $1",
				KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(state), KC_DB_TEXT(vm),
					     KC_DB_TEXT(target),
					     upload ? KC_DB_INT(4096) : KC_DB_NULL,
					     upload ? KC_DB_INT(1024) : KC_DB_NULL),
				NULL, &err);
	if (!KC_CHECK(rc == 0))
		kc_test_diag("volume %s: %s", name, err.message);
}

/* The row's `key` as text ("" for NULL, "GONE" without the row). */
static char *col(struct kc_db *db, const char *name, const char *key)
{
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_volume_get(db, name, &row, NULL) < 0)
		return strdup("GONE");
	json_t *v = json_object_get(row, key);
	char *s = NULL;
	if (json_is_string(v))
		s = strdup(json_string_value(v));
	else if (json_is_integer(v) && asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
		s = NULL;
	return s ? s : strdup("");
}

static bool col_is(struct kc_db *db, const char *name, const char *key, const char *want)
{
	_cleanup_free_ char *got = col(db, name, key);
	if (strcmp(got, want) == 0)
		return true;
	kc_test_diag("volume %s: %s is \"%s\", not \"%s\"", name, key, got, want);
	return false;
}

/* ---- a fake host ---- */

struct fake {
	struct kc_db *db;
	json_t *present;  /* name -> true/false; missing: cannot tell */
	json_t *attached; /* name -> ["vm", "target"] or false; missing: cannot tell */
	bool remake_ok;
	unsigned remakes, asked;
	const char *race; /* a volume moved to "ready" while it is judged */
};

static const char *str(const json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}

static bool f_concerns(void *opaque, const json_t *row, const char *host)
{
	return str(row, "host") && strcmp(str(row, "host"), host) == 0;
}

static void maybe_race(struct fake *f, const json_t *row)
{
	if (f->race && strcmp(f->race, str(row, "name")) == 0)
		kc_db_exec(f->db, "UPDATE volumes SET state = 'ready' WHERE name = $1",
			   KC_DB_PARAMS(KC_DB_TEXT(f->race)), NULL, NULL);
}

static int f_present(void *opaque, const json_t *row)
{
	struct fake *f = opaque;
	f->asked++;
	maybe_race(f, row);
	json_t *v = json_object_get(f->present, str(row, "name"));
	return v ? json_is_true(v) : -1;
}

static int f_attachment(void *opaque, const json_t *row, char **ret_vm, char **ret_target)
{
	struct fake *f = opaque;
	f->asked++;
	maybe_race(f, row);
	json_t *v = json_object_get(f->attached, str(row, "name"));
	if (!v)
		return -1;
	if (!json_is_array(v))
		return 0;
	*ret_vm = strdup(json_string_value(json_array_get(v, 0)));
	*ret_target = strdup(json_string_value(json_array_get(v, 1)));
	return 1;
}

static int f_remake(void *opaque, const json_t *row)
{
	struct fake *f = opaque;
	f->remakes++;
	if (f->remake_ok)
		json_object_set_new(f->present, str(row, "name"), json_true());
	return f->remake_ok ? 0 : -1;
}

static const struct kc_volume_truth_ops fake_ops = {
	.concerns = f_concerns,
	.present = f_present,
	.attachment = f_attachment,
	.remake = f_remake,
};

static unsigned settle(struct kc_db *db, struct fake *f, const char *host)
{
	struct kc_error err = {0};
	unsigned n = 0;
	f->db = db;
	if (!KC_CHECK(kc_volume_settle(me, db, host, &fake_ops, f, NULL, &n, &err) == 0))
		kc_test_diag("settle: %s", err.message);
	return n;
}

static void fake_clear(struct fake *f)
{
	json_decref(f->present);
	json_decref(f->attached);
}

/* ---- cases ---- */

static void t_creating(void)
{
	struct kc_db *db = fresh_db();
	struct fake f = {.present = json_pack("{s:b,s:b}", "made", 1, "lost", 0),
			 .attached = json_object()};
	int64_t gib = -1;
	if (!db)
		return;
	vol(db, "made", "h1", "creating", NULL, NULL, false);
	vol(db, "lost", "h1", "creating", NULL, NULL, false);
	vol(db, "unknown", "h1", "creating", NULL, NULL, false);
	KC_CHECK(kc_db_volume_gib_used(db, KC_DB_ADMIN_USER, &gib, NULL) == 0 && gib == 6);
	KC_CHECK(settle(db, &f, "h1") == 2);
	KC_CHECK(col_is(db, "made", "state", "ready"));
	KC_CHECK(col_is(db, "lost", "state", "GONE"));
	/* A host that cannot tell: the row waits for a later hello. */
	KC_CHECK(col_is(db, "unknown", "state", "creating"));
	/* The quota follows the rows: 2 GiB each (rounded up), one gone. */
	KC_CHECK(kc_db_volume_gib_used(db, KC_DB_ADMIN_USER, &gib, NULL) == 0 && gib == 4);
	fake_clear(&f);
	kc_db_close(db);
}

static void t_deleting(void)
{
	struct kc_db *db = fresh_db();
	struct fake f = {.present = json_pack("{s:b,s:b}", "kept", 1, "gone", 0)};
	if (!db)
		return;
	vol(db, "kept", "h1", "deleting", NULL, NULL, false);
	vol(db, "gone", "h1", "deleting", NULL, NULL, false);
	KC_CHECK(settle(db, &f, "h1") == 2);
	KC_CHECK(col_is(db, "kept", "state", "ready"));
	KC_CHECK(col_is(db, "gone", "state", "GONE"));
	fake_clear(&f);
	kc_db_close(db);
}

static void t_uploading(void)
{
	struct kc_db *db = fresh_db();
	struct fake f = {.present = json_pack("{s:b,s:b}", "half", 1, "emptied", 0),
			 .remake_ok = true};
	if (!db)
		return;
	vol(db, "half", "h1", "uploading", NULL, NULL, true);
	vol(db, "emptied", "h1", "uploading", NULL, NULL, true);
	KC_CHECK(settle(db, &f, "h1") == 2);
	/* Ready, with the counters that show the content is partial. */
	KC_CHECK(col_is(db, "half", "state", "ready"));
	KC_CHECK(col_is(db, "half", "upload_bytes", "4096"));
	KC_CHECK(col_is(db, "half", "received_bytes", "1024"));
	/* Lost between emptying and making again: made again. */
	KC_CHECK(f.remakes == 1);
	KC_CHECK(col_is(db, "emptied", "state", "ready"));
	/* A remake that fails leaves the row for later. */
	vol(db, "stuck", "h1", "uploading", NULL, NULL, true);
	json_object_set_new(f.present, "stuck", json_false());
	f.remake_ok = false;
	KC_CHECK(settle(db, &f, "h1") == 0);
	KC_CHECK(col_is(db, "stuck", "state", "uploading"));
	/* A new upload from offset 0 starts over the marker. */
	KC_CHECK(kc_db_volume_upload_claim(db, "half", 0, 10, 100, NULL) == 0);
	KC_CHECK(col_is(db, "half", "upload_bytes", "100"));
	fake_clear(&f);
	kc_db_close(db);
}

static void t_attach_detach(void)
{
	struct kc_db *db = fresh_db();
	struct fake f = {.present = json_object(),
			 .attached =
				 json_pack("{s:[s,s],s:b,s:[s,s],s:b}", "att-yes", "vm1", "vdb",
					   "att-no", 0, "det-still", "vm2", "vdc", "det-gone", 0)};
	if (!db)
		return;
	vol(db, "att-yes", "h1", "attaching", NULL, NULL, false);
	vol(db, "att-no", "h1", "attaching", NULL, NULL, false);
	vol(db, "att-unknown", "h1", "attaching", NULL, NULL, false);
	vol(db, "det-still", "h1", "detaching", "vm2", "vdc", false);
	vol(db, "det-gone", "h1", "detaching", "vm3", "vdd", false);
	KC_CHECK(settle(db, &f, "h1") == 4);
	KC_CHECK(col_is(db, "att-yes", "state", "ready"));
	KC_CHECK(col_is(db, "att-yes", "attached_to", "vm1"));
	KC_CHECK(col_is(db, "att-yes", "target", "vdb"));
	KC_CHECK(col_is(db, "att-no", "state", "ready"));
	KC_CHECK(col_is(db, "att-no", "attached_to", ""));
	KC_CHECK(col_is(db, "att-unknown", "state", "attaching"));
	KC_CHECK(col_is(db, "det-still", "state", "ready"));
	KC_CHECK(col_is(db, "det-still", "attached_to", "vm2"));
	KC_CHECK(col_is(db, "det-gone", "state", "ready"));
	KC_CHECK(col_is(db, "det-gone", "attached_to", ""));
	KC_CHECK(col_is(db, "det-gone", "target", ""));
	fake_clear(&f);
	kc_db_close(db);
}

static void t_busy_other_host_ready(void)
{
	struct kc_db *db = fresh_db();
	struct fake f = {.present = json_pack("{s:b,s:b,s:b}", "held", 0, "theirs", 0, "fine", 0)};
	if (!db)
		return;
	vol(db, "held", "h1", "creating", NULL, NULL, false);
	vol(db, "theirs", "h2", "creating", NULL, NULL, false);
	vol(db, "fine", "h1", "ready", NULL, NULL, false);
	struct kc_volume_busy *b = kc_volume_busy_enter(me, "held");
	KC_CHECK(b != NULL && kc_volume_busy(me, "held"));
	/* Another server's request is not this one's. */
	KC_CHECK(!kc_volume_busy((struct kc_server *)&n_schemas, "held"));
	KC_CHECK(settle(db, &f, "h1") == 0);
	KC_CHECK(col_is(db, "held", "state", "creating"));
	KC_CHECK(col_is(db, "theirs", "state", "creating"));
	KC_CHECK(col_is(db, "fine", "state", "ready"));
	/* Nothing was asked of the host for a busy or a ready row. */
	KC_CHECK(f.asked == 0);
	kc_volume_busy_leave(&b);
	KC_CHECK(b == NULL && !kc_volume_busy(me, "held"));
	KC_CHECK(settle(db, &f, "h1") == 1);
	KC_CHECK(col_is(db, "held", "state", "GONE"));
	KC_CHECK(col_is(db, "theirs", "state", "creating"));
	/* Every host (start-up of a whole database): h2's too. */
	KC_CHECK(settle(db, &f, NULL) == 1);
	KC_CHECK(col_is(db, "theirs", "state", "GONE"));
	kc_volume_busy_leave(&b); /* NULL: nothing */
	fake_clear(&f);
	kc_db_close(db);
}

static void t_changed_while_judged(void)
{
	struct kc_db *db = fresh_db();
	struct fake f = {.present = json_pack("{s:b}", "moved", 0),
			 .attached = json_pack("{s:b}", "moved2", 0),
			 .race = "moved"};
	if (!db)
		return;
	/* The host says "no such volume", but meanwhile the row became
	 * ready: it must not be removed. */
	vol(db, "moved", "h1", "creating", NULL, NULL, false);
	KC_CHECK(settle(db, &f, "h1") == 0);
	KC_CHECK(col_is(db, "moved", "state", "ready"));
	f.race = "moved2";
	vol(db, "moved2", "h1", "detaching", "vm9", "vdb", false);
	KC_CHECK(settle(db, &f, "h1") == 0);
	KC_CHECK(col_is(db, "moved2", "attached_to", "vm9"));
	fake_clear(&f);
	kc_db_close(db);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{"creating: ready if the pool has it, else removed with its quota", t_creating},
	{"deleting: ready if the pool has it, else removed", t_deleting},
	{"uploading: ready with the partial-content marker, made again if lost", t_uploading},
	{"attaching/detaching: by the domain's disks", t_attach_detach},
	{"busy rows, other hosts' rows and ready rows are left alone", t_busy_other_host_ready},
	{"a row that changes while judged is not settled", t_changed_while_judged},
};

int main(void)
{
	char name[160];

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
	int rc = kc_test_finish();
	srvtest_rm_rf(dir);
	return rc;
}
