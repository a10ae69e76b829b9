/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_jobs.c - long operations as jobs, against an in-process server
 * whose embedded agent drives libvirt's test:///default driver: async
 * creates (202, Location, the job reaching succeeded with the VM),
 * idempotency keys (a retry is the same job and one VM; another body is
 * 409), a failing create's error, and start-up recovery of jobs a dead
 * run left running.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <ulfius.h>

#include "cleanup.h"
#include "jobs.h"
#include "json_util.h"
#include "kctest.h"
#include "server.h"
#include "srvtest.h"

static char dir[] = "/tmp/kcsrv-test-jobs-XXXXXX";
static char base[64];
static char token[128];
static struct kc_server *srv;
static struct kc_server_opts opts;
static char uri_override[256];
static const char *overrides[3];

struct reply {
	long status;
	json_t *json;
	char *location;
};

static void reply_clear(struct reply *r)
{
	json_decref(r->json);
	free(r->location);
	memset(r, 0, sizeof(*r));
}

/* One request; key (may be NULL) is sent as Idempotency-Key. */
static struct reply call(const char *method, const char *path, const char *body, const char *key)
{
	struct _u_request req;
	struct _u_response resp;
	struct reply r = {0};
	char url[1024], auth[256];

	ulfius_init_request(&req);
	ulfius_init_response(&resp);
	snprintf(url, sizeof(url), "%s%s", base, path);
	req.http_verb = strdup(method);
	req.http_url = strdup(url);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	u_map_put(req.map_header, "Authorization", auth);
	if (key)
		u_map_put(req.map_header, "Idempotency-Key", key);
	if (body) {
		u_map_put(req.map_header, "Content-Type", "application/json");
		ulfius_set_binary_body_request(&req, body, strlen(body));
	}
	if (ulfius_send_http_request(&req, &resp) == U_OK) {
		r.status = resp.status;
		r.json = json_loadb(resp.binary_body ? resp.binary_body : "",
				    resp.binary_body_length, 0, NULL);
		const char *loc = u_map_get_case(resp.map_header, "Location");
		r.location = loc ? strdup(loc) : NULL;
	}
	ulfius_clean_request(&req);
	ulfius_clean_response(&resp);
	return r;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Polls GET /api/v1/jobs/ID until it ends (30 s at most); the job or NULL. */
static json_t *wait_job(const char *id)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
	for (int i = 0; i < 300; i++) {
		struct reply r = call("GET", path, NULL, NULL);
		const char *st = str(r.json, "state");
		if (r.status == 200 && st &&
		    (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0)) {
			json_t *j = json_incref(r.json);
			reply_clear(&r);
			return j;
		}
		reply_clear(&r);
		nanosleep(&(struct timespec){0, 100000000L}, NULL);
	}
	return NULL;
}

static size_t vms_named(const char *name)
{
	json_t *row = NULL;
	struct kc_error err = {0};
	size_t n = kc_db_vm_get(srv->db, name, &row, &err) == 0;

	json_decref(row);
	return n;
}

static bool start_server(void)
{
	struct kc_error err = {0};

	if (kc_server_open(&opts, &srv, &err) < 0 || kc_server_start(srv, &opts, &err) < 0) {
		kc_test_diag("server start failed: %s", err.message);
		kc_server_free(srv);
		srv = NULL;
		return false;
	}
	return true;
}

KC_TEST(async_create_is_202_and_the_job_succeeds)
{
	static const char body[] =
		"{\"name\":\"kcjob-async\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}";

	_cleanup_json_ json_t *done = NULL;

	if (!KC_CHECK(srv && srvtest_write_fake_image(dir)))
		return;
	struct reply r = call("POST", "/api/v1/vms?async=true", body, NULL);
	KC_CHECK_INT(r.status, 202);
	json_t *job = json_object_get(r.json, "job");
	const char *id = str(job, "id");
	if (!KC_CHECK(id))
		goto out;
	KC_CHECK_STREQ(str(job, "kind"), "vm.create");
	KC_CHECK_STREQ(str(job, "target"), "kcjob-async");
	KC_CHECK(json_object_get(job, "request") == NULL);
	char want[128];
	snprintf(want, sizeof(want), "/api/v1/jobs/%s", id);
	KC_CHECK_STREQ(r.location, want);
	done = wait_job(id);
	if (!KC_CHECK(done))
		goto out;
	KC_CHECK_STREQ(str(done, "state"), "succeeded");
	KC_CHECK_INT(json_integer_value(json_object_get(done, "progress")), 100);
	KC_CHECK_STREQ(str(json_object_get(done, "result"), "name"), "kcjob-async");
	KC_CHECK(json_is_null(json_object_get(done, "error")));
	KC_CHECK_INT(vms_named("kcjob-async"), 1);

	/* Prefer: respond-async is the same; the list shows our jobs. */
	struct reply l = call("GET", "/api/v1/jobs?limit=5", NULL, NULL);
	KC_CHECK_INT(l.status, 200);
	KC_CHECK(json_array_size(json_object_get(l.json, "jobs")) >= 1);
	reply_clear(&l);
out:
	reply_clear(&r);
}

KC_TEST(sync_action_runs_as_a_job_and_answers_as_before)
{
	struct reply r = call("POST", "/api/v1/vms/kcjob-async/start", NULL, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(str(r.json, "name"), "kcjob-async");
	KC_CHECK_STREQ(str(r.json, "state"), "running");
	reply_clear(&r);
	r = call("POST", "/api/v1/vms/kcjob-nosuch/start", NULL, NULL);
	KC_CHECK_INT(r.status, 404);
	reply_clear(&r);
}

KC_TEST(idempotent_retry_is_the_same_job_and_one_vm)
{
	static const char body[] =
		"{\"name\":\"kcjob-idem\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}";
	/* Same request, other spacing and key order. */
	static const char body2[] = "{ \"start\": false, \"image\": \"kctest\", \"memory_mib\": 64, "
				    "\"name\": \"kcjob-idem\" }";

	struct reply a = call("POST", "/api/v1/vms", body, "kcjob-key-1");
	KC_CHECK_INT(a.status, 201);
	KC_CHECK_STREQ(str(a.json, "name"), "kcjob-idem");
	struct reply b = call("POST", "/api/v1/vms", body2, "kcjob-key-1");
	KC_CHECK_INT(b.status, 201);
	KC_CHECK(json_equal(a.json, b.json));
	struct reply c = call("POST", "/api/v1/vms?async=true", body, "kcjob-key-1");
	KC_CHECK_INT(c.status, 202);
	KC_CHECK_STREQ(str(json_object_get(c.json, "job"), "state"), "succeeded");
	KC_CHECK_INT(vms_named("kcjob-idem"), 1);
	/* Without a key the same body is a second create: 409, name taken. */
	struct reply d = call("POST", "/api/v1/vms", body, NULL);
	KC_CHECK_INT(d.status, 409);
	reply_clear(&a);
	reply_clear(&b);
	reply_clear(&c);
	reply_clear(&d);
}

KC_TEST(same_key_other_body_is_409)
{
	static const char body[] =
		"{\"name\":\"kcjob-idem\",\"memory_mib\":128,\"image\":\"kctest\",\"start\":false}";

	struct reply r = call("POST", "/api/v1/vms", body, "kcjob-key-1");
	KC_CHECK_INT(r.status, 409);
	const char *msg = str(json_object_get(r.json, "error"), "message");
	KC_CHECK(msg && strstr(msg, "Idempotency-Key"));
	reply_clear(&r);
	/* Same key on another route is another request too. */
	r = call("POST", "/api/v1/vms/kcjob-idem/start", NULL, "kcjob-key-1");
	KC_CHECK_INT(r.status, 409);
	reply_clear(&r);
	r = call("POST", "/api/v1/vms", body, "bad key!");
	KC_CHECK_INT(r.status, 400);
	reply_clear(&r);
	char longkey[200];
	memset(longkey, 'k', 129);
	longkey[129] = '\0';
	r = call("POST", "/api/v1/vms", body, longkey);
	KC_CHECK_INT(r.status, 400);
	reply_clear(&r);
}

KC_TEST(failing_create_records_the_error)
{
	static const char body[] =
		"{\"name\":\"kcjob-fail\",\"memory_mib\":64,\"image\":\"nosuchimage\"}";

	struct reply r = call("POST", "/api/v1/vms", body, "Prefer-less.async_1");
	KC_CHECK(r.status >= 400);
	long sync_status = r.status;
	reply_clear(&r);
	r = call("POST", "/api/v1/vms?async=1", body, NULL);
	KC_CHECK_INT(r.status, 202);
	const char *id = str(json_object_get(r.json, "job"), "id");
	_cleanup_json_ json_t *done = id ? wait_job(id) : NULL;
	if (KC_CHECK(done)) {
		KC_CHECK_STREQ(str(done, "state"), "failed");
		const json_t *e = json_object_get(done, "error");
		KC_CHECK(str(e, "code") && str(e, "message"));
		KC_CHECK_INT(kc_errcode_http_status(kc_errcode_from_name(str(e, "code"))),
			     sync_status);
		KC_CHECK(json_is_null(json_object_get(done, "result")));
	}
	KC_CHECK_INT(vms_named("kcjob-fail"), 0);
	reply_clear(&r);
	r = call("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000", NULL, NULL);
	KC_CHECK_INT(r.status, 404);
	reply_clear(&r);
}

/* Jobs a dead run left "running" under this server's worker name. */
static char *orphan(const char *kind, const char *target, const char *args_json)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *job = NULL;
	bool existing = false;
	json_t *args = args_json ? json_loads(args_json, 0, NULL) : NULL;
	_cleanup_json_ json_t *req = json_pack("{s:o?,s:s}", "args", args, "sha256", "x");

	if (kc_db_job_create(srv->db,
			     &(struct kc_db_job_new){.kind = kind,
						     .owner = KC_DB_ADMIN_USER,
						     .target = target,
						     .request = req},
			     &job, &existing, &err) < 0)
		return NULL;
	char *id = strdup(str(job, "id"));
	/* The claim must win over this run's own workers: stop them first. */
	if (kc_db_job_claim(srv->db, id, kc_jobs_worker(srv), &err) < 0) {
		kc_test_diag("claim: %s", err.message);
		free(id);
		return NULL;
	}
	return id;
}

KC_TEST(startup_requeues_or_fails_jobs_left_running)
{
	/* Workers would take a queued job first: stop them, keep the DB. */
	kc_jobs_free(srv);
	struct kc_error err = {0};
	if (!KC_CHECK(kc_jobs_open(srv, &err) == 0))
		return;
	_cleanup_free_ char *create = orphan(
		"vm.create", "kcjob-orphan",
		"{\"name\":\"kcjob-orphan\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}");
	_cleanup_free_ char *reboot = orphan("vm.reboot", "kcjob-idem", NULL);
	if (!KC_CHECK(create && reboot))
		return;

	kc_server_free(srv);
	srv = NULL;
	if (!KC_CHECK(start_server()))
		return;
	_cleanup_json_ json_t *c = wait_job(create);
	_cleanup_json_ json_t *r = wait_job(reboot);
	if (KC_CHECK(c && r)) {
		KC_CHECK_STREQ(str(c, "state"), "succeeded");
		KC_CHECK_STREQ(str(json_object_get(c, "result"), "name"), "kcjob-orphan");
		KC_CHECK_STREQ(str(r, "state"), "failed");
		KC_CHECK_STREQ(str(json_object_get(r, "error"), "code"), "unavailable");
	}
	KC_CHECK_INT(vms_named("kcjob-orphan"), 1);
}

int main(void)
{
	const char *uri = getenv("KC_TEST_LIBVIRT_URI");
	int port = srvtest_free_port();
	static char listen[64];

	if (!mkdtemp(dir) || port < 0) {
		perror("setup");
		return 1;
	}
	ulfius_global_init();
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(uri_override, sizeof(uri_override), "libvirt.uri=%s",
		 uri ? uri : "test:///default");
	overrides[0] = uri_override;
	overrides[1] = "accel=tcg";
	FILE *out = fopen("/dev/null", "we");
	opts = (struct kc_server_opts){.data_dir = dir,
				       .listen = listen,
				       .overrides = overrides,
				       .n_overrides = 2,
				       .out = out};
	if (start_server()) {
		char path[256];
		snprintf(path, sizeof(path), "%s/admin.token", dir);
		FILE *f = fopen(path, "re");
		if (f && fscanf(f, "%127s", token) != 1)
			token[0] = '\0';
		if (f)
			fclose(f);
	}
	kc_test_run_registered();
	kc_server_free(srv);
	if (out)
		fclose(out);
	ulfius_global_close();
	srvtest_rm_rf(dir);
	return kc_test_finish();
}
