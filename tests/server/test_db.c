/* SPDX-License-Identifier: Apache-2.0 */
/* test_db.c - the SQLite backend: migrations, rows, tokens. */
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "cleanup.h"
#include "db.h"
#include "kctest.h"
#include "srvtest.h"

static char dir[] = "/tmp/kcsrv-test-db-XXXXXX";

static char *db_path(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

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

static void add_host(struct kc_db *db, const char *name)
{
	json_t *facts = json_pack("{s:i}", "cpus", 2);
	struct kc_db_host h = {
		.name = name, .uuid = "u", .facts = facts, .accel = "tcg", .accel_reason = "test"};
	struct kc_error err = {0};
	KC_CHECK(db->ops->host_upsert(db, &h, &err) == 0);
	json_decref(facts);
}

KC_TEST(fresh_database_gets_latest_schema)
{
	_cleanup_free_ char *p = db_path("fresh.db");
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	int v = 0;

	if (!KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	KC_CHECK(db->ops->schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, kc_db_latest_version());
	KC_CHECK(kc_db_latest_version() >= 2);
	kc_db_close(db);
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM sqlite_master WHERE name IN "
				"('hosts','vms','tokens','vms_host')"),
		     4);
	KC_CHECK_INT(raw_int(p, "PRAGMA journal_mode = WAL") >= 0, 1);
	/* Reopening an up-to-date database changes nothing. */
	KC_CHECK(kc_db_open(p, &db, &err) == 0);
	KC_CHECK(db && db->ops->schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, kc_db_latest_version());
	kc_db_close(db);
}

KC_TEST(existing_v1_database_is_migrated_keeping_rows)
{
	_cleanup_free_ char *p = db_path("old.db");
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	json_t *req = json_pack("{s:s}", "name", "kcsrv-old");
	int v = 0;

	if (!KC_CHECK(kc_db_sqlite_open(p, 1, &db, &err) == 0))
		return;
	KC_CHECK(db->ops->schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, 1);
	add_host(db, "h1");
	KC_CHECK(db->ops->vm_insert(db, "kcsrv-old", "h1", "running", req, &err) == 0);
	kc_db_close(db);
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'vms_host'"), 0);

	if (!KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	KC_CHECK(db->ops->schema_version(db, &v, &err) == 0);
	KC_CHECK_INT(v, kc_db_latest_version());
	json_t *row = NULL;
	KC_CHECK(db->ops->vm_get(db, "kcsrv-old", &row, &err) == 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "running");
	KC_CHECK_STREQ(json_string_value(json_object_get(json_object_get(row, "request"), "name")),
		       "kcsrv-old");
	json_decref(row);
	kc_db_close(db);
	KC_CHECK_INT(raw_int(p, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'vms_host'"), 1);
	json_decref(req);
}

KC_TEST(newer_schema_is_refused)
{
	_cleanup_free_ char *p = db_path("newer.db");
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	KC_CHECK(kc_db_open(p, &db, &err) == 0);
	kc_db_close(db);
	db = NULL;
	KC_CHECK_INT(raw_int(p, "UPDATE schema_version SET version = 999 RETURNING version"), 999);
	KC_CHECK(kc_db_open(p, &db, &err) < 0);
	KC_CHECK(db == NULL);
	KC_CHECK(strstr(err.message, "newer") != NULL);
}

KC_TEST(postgresql_is_refused_clearly)
{
	struct kc_error err = {0};
	struct kc_db *db = NULL;

	KC_CHECK(kc_db_open("postgresql://localhost/kc", &db, &err) < 0);
	KC_CHECK(strstr(err.message, "PostgreSQL") != NULL);
}

KC_TEST(vm_rows)
{
	_cleanup_free_ char *p = db_path("vms.db");
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	json_t *req = json_pack("{s:s,s:i}", "name", "kcsrv-1", "memory_mib", 64);
	json_t *rows = NULL, *row = NULL;

	if (!KC_CHECK(kc_db_open(p, &db, &err) == 0))
		return;
	add_host(db, "h1");
	KC_CHECK(db->ops->vm_insert(db, "kcsrv-1", "h1", "creating", req, &err) == 0);
	kc_error_clear(&err);
	KC_CHECK(db->ops->vm_insert(db, "kcsrv-1", "h1", "creating", req, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	kc_error_clear(&err);
	/* A VM on an unknown host violates the foreign key. */
	KC_CHECK(db->ops->vm_insert(db, "kcsrv-2", "nohost", "creating", req, &err) < 0);
	kc_error_clear(&err);
	/* Events do not touch a record a create still owns. */
	KC_CHECK(db->ops->vm_note_state(db, "kcsrv-1", "running", &err) == 0);
	KC_CHECK(db->ops->vm_get(db, "kcsrv-1", &row, &err) == 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "creating");
	json_decref(row);
	KC_CHECK(db->ops->vm_update(db, "kcsrv-1", "uuid-1", "running", &err) == 0);
	KC_CHECK(db->ops->vm_note_state(db, "kcsrv-1", "shutoff", &err) == 0);
	KC_CHECK(db->ops->vm_get(db, "kcsrv-1", &row, &err) == 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "shutoff");
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "uuid")), "uuid-1");
	json_decref(row);
	/* Names are data, never SQL. */
	KC_CHECK(db->ops->vm_get(db, "x' OR '1'='1", &row, &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	kc_error_clear(&err);
	KC_CHECK(db->ops->vm_list(db, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 1);
	json_decref(rows);
	KC_CHECK(db->ops->vm_delete(db, "kcsrv-1", &err) == 0);
	KC_CHECK(db->ops->vm_list(db, &rows, &err) == 0);
	KC_CHECK_INT(json_array_size(rows), 0);
	json_decref(rows);
	KC_CHECK(db->ops->vm_update(db, "kcsrv-1", NULL, "running", &err) < 0);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	json_decref(req);
	kc_db_close(db);
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

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	kc_test_run_registered();
	int rc = kc_test_finish();
	srvtest_rm_rf(dir);
	return rc;
}
