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

static struct srvtest S;

/* One request as admin; key (may be NULL) is sent as Idempotency-Key. */
static struct srvtest_reply call(const char *method, const char *path, const char *body,
				 const char *key)
{
	return srvtest_send(&S, &(struct srvtest_req){.method = method,
						      .path = path,
						      .token = S.token,
						      .body = body,
						      .idempotency_key = key});
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
		struct srvtest_reply r = call("GET", path, NULL, NULL);
		const char *st = str(r.json, "state");
		if (r.status == 200 && st &&
		    (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0)) {
			json_t *j = json_incref(r.json);
			srvtest_reply_clear(&r);
			return j;
		}
		srvtest_reply_clear(&r);
		nanosleep(&(struct timespec){0, 100000000L}, NULL);
	}
	return NULL;
}

static size_t vms_named(const char *name)
{
	json_t *row = NULL;
	struct kc_error err = {0};
	size_t n = kc_db_vm_get(S.srv->db, name, &row, &err) == 0;

	json_decref(row);
	return n;
}

KC_TEST(async_create_is_202_and_the_job_succeeds)
{
	static const char body[] =
		"{\"name\":\"kcjob-async\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}";

	_cleanup_json_ json_t *done = NULL;

	if (!KC_CHECK(S.srv && srvtest_write_fake_image(S.dir)))
		return;
	struct srvtest_reply r = call("POST", "/api/v1/vms?async=true", body, NULL);
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
	struct srvtest_reply l = call("GET", "/api/v1/jobs?limit=5", NULL, NULL);
	KC_CHECK_INT(l.status, 200);
	KC_CHECK(json_array_size(json_object_get(l.json, "jobs")) >= 1);
	srvtest_reply_clear(&l);
out:
	srvtest_reply_clear(&r);
}

KC_TEST(sync_action_runs_as_a_job_and_answers_as_before)
{
	struct srvtest_reply r = call("POST", "/api/v1/vms/kcjob-async/start", NULL, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(str(r.json, "name"), "kcjob-async");
	KC_CHECK_STREQ(str(r.json, "state"), "running");
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/vms/kcjob-nosuch/start", NULL, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
}

KC_TEST(idempotent_retry_is_the_same_job_and_one_vm)
{
	static const char body[] =
		"{\"name\":\"kcjob-idem\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}";
	/* Same request, other spacing and key order. */
	static const char body2[] =
		"{ \"start\": false, \"image\": \"kctest\", \"memory_mib\": 64, "
		"\"name\": \"kcjob-idem\" }";

	struct srvtest_reply a = call("POST", "/api/v1/vms", body, "kcjob-key-1");
	KC_CHECK_INT(a.status, 201);
	KC_CHECK_STREQ(str(a.json, "name"), "kcjob-idem");
	struct srvtest_reply b = call("POST", "/api/v1/vms", body2, "kcjob-key-1");
	KC_CHECK_INT(b.status, 201);
	KC_CHECK(json_equal(a.json, b.json));
	struct srvtest_reply c = call("POST", "/api/v1/vms?async=true", body, "kcjob-key-1");
	KC_CHECK_INT(c.status, 202);
	KC_CHECK_STREQ(str(json_object_get(c.json, "job"), "state"), "succeeded");
	KC_CHECK_INT(vms_named("kcjob-idem"), 1);
	/* Without a key the same body is a second create: 409, name taken. */
	struct srvtest_reply d = call("POST", "/api/v1/vms", body, NULL);
	KC_CHECK_INT(d.status, 409);
	srvtest_reply_clear(&a);
	srvtest_reply_clear(&b);
	srvtest_reply_clear(&c);
	srvtest_reply_clear(&d);
}

KC_TEST(same_key_other_body_is_409)
{
	static const char body[] =
		"{\"name\":\"kcjob-idem\",\"memory_mib\":128,\"image\":\"kctest\",\"start\":false}";

	struct srvtest_reply r = call("POST", "/api/v1/vms", body, "kcjob-key-1");
	KC_CHECK_INT(r.status, 409);
	const char *msg = str(json_object_get(r.json, "error"), "message");
	KC_CHECK(msg && strstr(msg, "Idempotency-Key"));
	srvtest_reply_clear(&r);
	/* Same key on another route is another request too. */
	r = call("POST", "/api/v1/vms/kcjob-idem/start", NULL, "kcjob-key-1");
	KC_CHECK_INT(r.status, 409);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/vms", body, "bad key!");
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);
	char longkey[200];
	memset(longkey, 'k', 129);
	longkey[129] = '\0';
	r = call("POST", "/api/v1/vms", body, longkey);
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);
}

KC_TEST(failing_create_records_the_error)
{
	static const char body[] =
		"{\"name\":\"kcjob-fail\",\"memory_mib\":64,\"image\":\"nosuchimage\"}";

	struct srvtest_reply r = call("POST", "/api/v1/vms", body, "Prefer-less.async_1");
	KC_CHECK(r.status >= 400);
	long sync_status = r.status;
	srvtest_reply_clear(&r);
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
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000", NULL, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
}

/* Jobs a dead run left "running" under this server's worker name. */
static char *orphan(const char *kind, const char *target, const char *args_json)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *job = NULL;
	bool existing = false;
	json_t *args = args_json ? json_loads(args_json, 0, NULL) : NULL;
	_cleanup_json_ json_t *req = json_pack("{s:o?,s:s}", "args", args, "sha256", "x");

	if (kc_db_job_create(S.srv->db,
			     &(struct kc_db_job_new){.kind = kind,
						     .owner = KC_DB_ADMIN_USER,
						     .target = target,
						     .request = req},
			     &job, &existing, &err) < 0)
		return NULL;
	char *id = strdup(str(job, "id"));
	/* The claim must win over this run's own workers: stop them first. */
	if (kc_db_job_claim(S.srv->db, id, kc_jobs_worker(S.srv), &err) < 0) {
		kc_test_diag("claim: %s", err.message);
		free(id);
		return NULL;
	}
	return id;
}

KC_TEST(startup_requeues_or_fails_jobs_left_running)
{
	/* Workers would take a queued job first: stop them, keep the DB. */
	kc_jobs_free(S.srv);
	struct kc_error err = {0};
	if (!KC_CHECK(kc_jobs_open(S.srv, &err) == 0))
		return;
	_cleanup_free_ char *create = orphan("vm.create", "kcjob-orphan",
					     "{\"name\":\"kcjob-orphan\",\"memory_mib\":64,"
					     "\"image\":\"kctest\",\"start\":false}");
	_cleanup_free_ char *reboot = orphan("vm.reboot", "kcjob-idem", NULL);
	if (!KC_CHECK(create && reboot))
		return;

	srvtest_stop(&S);
	if (!KC_CHECK(srvtest_start(&S)))
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

SRVTEST_MAIN(S, "jobs", SRVTEST_EMBEDDED)
