/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs.c - the job runner: serving long operations as jobs, the worker
 * pool, waiting, and recovery at start-up (rules in jobs.h).
 */
#include "jobs.h"
#include "db_audit.h"
#include "jobs_sweep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cleanup.h"
#include "clones.h"
#include "http_util.h"
#include "images.h"
#include "json_util.h"
#include "vm_ops.h"

/* Workers look for jobs other servers queued this often. */
#define POLL_MS 1000
/* A synchronous request waits this long for its job (shutdown may take
 * timeout_s up to 3600 plus the host's margin). */
#define SYNC_WAIT_S 3900

struct kc_jobs {
	struct kc_server *srv;
	char worker[300];
	pthread_mutex_t lock;
	pthread_cond_t wake; /* queued work, or stop */
	pthread_cond_t done; /* some job ended */
	bool stopping;
	pthread_t threads[KC_JOB_WORKERS];
	size_t n_threads;
	pthread_cond_t hk_wake; /* stop, for the housekeeper */
	pthread_t housekeeper;	/* jobs_sweep.h, every heartbeat interval */
	bool hk_started;
};

const char *kc_jobs_worker(const struct kc_server *srv)
{
	return srv->jobs ? srv->jobs->worker : "";
}

json_t *kc_job_view(const json_t *row)
{
	json_t *o = json_deep_copy(row);

	if (o)
		json_object_del(o, "request");
	return o;
}

static void timespec_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void kick(struct kc_jobs *j)
{
	pthread_mutex_lock(&j->lock);
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

struct progress_ctx {
	struct kc_db *db;
	const char *id;
};

static void note_progress(void *opaque, int percent)
{
	struct progress_ctx *p = opaque;

	kc_db_job_progress(p->db, p->id, percent, NULL);
}

/* Runs a claimed job's operation. */
static int execute(struct kc_server *srv, const json_t *job, json_t **ret, struct kc_error *err)
{
	const char *kind = json_string_value(json_object_get(job, "kind"));
	const char *target = json_string_value(json_object_get(job, "target"));
	const char *owner = json_string_value(json_object_get(job, "owner"));
	const json_t *args = json_object_get(json_object_get(job, "request"), "args");
	struct progress_ctx p = {srv->db, json_string_value(json_object_get(job, "id"))};

	if (!kind || !target)
		return kc_error_set(err, KC_ERR_INTERNAL, "job without kind or target");
	if (strcmp(kind, "vm.create") == 0)
		return kc_vm_op_create(srv, owner ? owner : KC_DB_ADMIN_USER, args, note_progress,
				       &p, ret, err);
	if (strcmp(kind, "vm.delete") == 0)
		return kc_vm_op_delete(srv, target,
				       json_is_true(json_object_get(args, "keep_disks")),
				       json_is_true(json_object_get(args, "snapshots")), ret, err);
	if (strncmp(kind, "vm.snapshot.", 12) == 0)
		return kc_snapshot_op(srv, kind, target, args, ret, err);
	if (strcmp(kind, "vm.template") == 0) /* clones.h */
		return kc_template_op(srv, target, owner ? owner : KC_DB_ADMIN_USER, args,
				      note_progress, &p, ret, err);
	if (strncmp(kind, "image.", 6) == 0) /* images.h */
		return kc_image_op_run(srv, kind, target, owner, args, note_progress, &p, ret, err);
	if (strcmp(kind, "vm.start") == 0 || strcmp(kind, "vm.shutdown") == 0 ||
	    strcmp(kind, "vm.reboot") == 0 || strcmp(kind, "vm.destroy") == 0)
		return kc_vm_op_action(srv, kind, target, json_is_object(args) ? args : NULL, ret,
				       err);
	return kc_error_set(err, KC_ERR_INTERNAL, "unknown job kind \"%s\"", kind);
}

static json_t *error_json(const struct kc_error *e)
{
	return json_pack("{s:s,s:s}", "code", kc_errcode_name(e->code), "message", e->message);
}

/* The request that queued a job was audited when it was accepted (202);
 * its outcome is known only now, so it gets a row of its own, under the
 * job's owner: "job vm.create", the target, ok or error with the code. */
static void audit_outcome(struct kc_server *srv, const json_t *job, const json_t *error)
{
	const char *kind = json_string_value(json_object_get(job, "kind"));
	const char *owner = json_string_value(json_object_get(job, "owner"));
	char action[96];
	struct kc_error ae = {0};

	snprintf(action, sizeof(action), "job %s", kind ? kind : "?");
	_cleanup_json_ json_t *detail =
		json_pack("{s:s?,s:s?}", "job", json_string_value(json_object_get(job, "id")),
			  "code", json_string_value(json_object_get(error, "code")));
	if (kc_db_audit_add(srv->db, owner ? owner : "-", action,
			    json_string_value(json_object_get(job, "target")), !error, detail,
			    &ae) < 0)
		fprintf(stderr, "warning: audit log write failed for %s: %s\n", action,
			ae.message);
}

/* Runs a job this server has claimed and records how it ended. */
static void run_claimed(struct kc_jobs *j, const json_t *job)
{
	struct kc_server *srv = j->srv;
	const char *id = json_string_value(json_object_get(job, "id"));
	_cleanup_json_ json_t *result = NULL;
	_cleanup_json_ json_t *error = NULL;
	struct kc_error e = {0}, fe = {0};

	kc_db_job_progress(srv->db, id, 10, NULL);
	if (execute(srv, job, &result, &e) < 0)
		error = error_json(&e);
	/* On condition that the job is still ours: a server taken for dead
	 * (jobs_sweep.c) must not end a job another has settled since. */
	if (kc_db_job_settle(srv->db, id, j->worker, error ? "failed" : "succeeded", result, error,
			     &fe) < 0) {
		fprintf(stderr, "warning: job %s: cannot record its end: %s\n", id, fe.message);
		kc_error_clear(&fe);
	}
	audit_outcome(srv, job, error);
	kc_error_clear(&e);
	pthread_mutex_lock(&j->lock);
	pthread_cond_broadcast(&j->done);
	pthread_mutex_unlock(&j->lock);
}

static void *worker_main(void *opaque)
{
	struct kc_jobs *j = opaque;

	for (;;) {
		_cleanup_json_ json_t *job = NULL;
		struct kc_error e = {0};
		struct timespec ts;

		pthread_mutex_lock(&j->lock);
		bool stop = j->stopping;
		pthread_mutex_unlock(&j->lock);
		if (stop)
			break;
		if (kc_db_job_claim_next(j->srv->db, j->worker, &job, &e) < 0) {
			fprintf(stderr, "warning: jobs: cannot claim: %s\n", e.message);
			kc_error_clear(&e);
		} else if (job) {
			run_claimed(j, job);
			continue;
		}
		timespec_in(&ts, POLL_MS);
		pthread_mutex_lock(&j->lock);
		if (!j->stopping)
			pthread_cond_timedwait(&j->wake, &j->lock, &ts);
		pthread_mutex_unlock(&j->lock);
	}
	return NULL;
}

/* Retention runs at most this often (and at the first round). */
#define PURGE_INTERVAL_S 3600

/* The periodic round of jobs_sweep.h: dead servers every heartbeat
 * interval, old jobs every PURGE_INTERVAL_S.  Its own thread: workers may
 * be busy with one job for an hour. */
static void *housekeeper_main(void *opaque)
{
	struct kc_jobs *j = opaque;
	unsigned tick_s = j->srv->heartbeat_s ? j->srv->heartbeat_s : 10;
	struct timespec now, last_purge = {0};
	bool purged = false;

	for (;;) {
		struct timespec ts;
		timespec_in(&ts, (long)tick_s * 1000);
		pthread_mutex_lock(&j->lock);
		if (!j->stopping)
			pthread_cond_timedwait(&j->hk_wake, &j->lock, &ts);
		bool stop = j->stopping;
		pthread_mutex_unlock(&j->lock);
		if (stop)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		bool purge = !purged || now.tv_sec - last_purge.tv_sec >= PURGE_INTERVAL_S;
		kc_jobs_sweep_tick(j->srv, purge);
		if (purge) {
			purged = true;
			last_purge = now;
		}
	}
	return NULL;
}

int kc_jobs_wait(struct kc_server *srv, const char *id, unsigned timeout_s, json_t **ret,
		 struct kc_error *err)
{
	struct kc_jobs *j = srv->jobs;
	struct timespec deadline, now, ts;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	for (;;) {
		_cleanup_json_ json_t *job = NULL;
		if (kc_db_job_get(srv->db, id, &job, err) < 0)
			return -1;
		const char *state = json_string_value(json_object_get(job, "state"));
		if (state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0)) {
			*ret = steal_ptr(&job);
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec >= deadline.tv_sec)
			return kc_error_set(err, KC_ERR_TIMEOUT,
					    "job %s is still %s; see GET /api/v1/jobs/%s", id,
					    state ? state : "running", id);
		/* Woken when one of our jobs ends; polling finds another
		 * server's. */
		timespec_in(&ts, POLL_MS);
		pthread_mutex_lock(&j->lock);
		pthread_cond_timedwait(&j->done, &j->lock, &ts);
		pthread_mutex_unlock(&j->lock);
	}
}

/* 1-128 of A-Z a-z 0-9 . _ - */
static int check_key(const char *key, struct kc_error *err)
{
	size_t n = strlen(key);

	if (n < 1 || n > KC_IDEMPOTENCY_KEY_MAX ||
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return kc_error_set(err, KC_ERR_INVALID,
				    "Idempotency-Key must be 1-%d of A-Z a-z 0-9 . _ -",
				    KC_IDEMPOTENCY_KEY_MAX);
	return 0;
}

/* What identifies a request for its idempotency key: SHA-256 over kind,
 * target and the arguments as canonical JSON (sorted keys, compact), so
 * that spacing and key order do not count as a different body. */
static int request_hash(const char *kind, const char *target, const json_t *args,
			char hex[static 65], struct kc_error *err)
{
	_cleanup_free_ char *canon =
		args ? json_dumps(args, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)
		     : strdup("null");
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;

	if (!canon)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)kind, strlen(kind) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)target, strlen(target) + 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)canon, strlen(canon));
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, 65, h, sizeof(h));
	return 0;
}

static bool wants_async(const struct _u_request *req, struct kc_error *err, int *rc)
{
	bool async = false;
	const char *prefer = u_map_get_case(req->map_header, "Prefer");

	*rc = kc_http_query_bool(req, "async", &async, err);
	return async || (prefer && strstr(prefer, "respond-async"));
}

/* The user a request acts for (the admin on routes without a caller). */
static const char *caller(const struct kc_call *c)
{
	return c->who.user[0] ? c->who.user : KC_DB_ADMIN_USER;
}

int kc_jobs_serve(struct kc_call *c, const char *kind, const char *target, const json_t *args,
		  unsigned ok_status, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	const char *key = u_map_get_case(c->req->map_header, "Idempotency-Key");
	_cleanup_json_ json_t *job = NULL;
	_cleanup_json_ json_t *request = NULL;
	char hash[65];
	bool existing = false;
	int rc = 0;

	bool async = wants_async(c->req, err, &rc);
	if (rc < 0)
		return -1;
	if (key && check_key(key, err) < 0)
		return -1;
	if (request_hash(kind, target, args, hash, err) < 0)
		return -1;
	request = json_pack("{s:O?,s:s}", "args", args, "sha256", hash);
	if (!request)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_job_create(srv->db,
			     &(struct kc_db_job_new){.kind = kind,
						     .owner = caller(c),
						     .idempotency_key = key,
						     .target = target,
						     .request = request},
			     &job, &existing, err) < 0)
		return -1;
	const char *id = json_string_value(json_object_get(job, "id"));
	if (existing) {
		const json_t *old = json_object_get(job, "request");
		const char *old_kind = json_string_value(json_object_get(job, "kind"));
		const char *old_hash = json_string_value(json_object_get(old, "sha256"));
		if (!old_kind || strcmp(old_kind, kind) != 0 || !old_hash ||
		    strcmp(old_hash, hash) != 0)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "Idempotency-Key \"%s\" was already used for a "
					    "different request (job %s)",
					    key, id);
	}

	if (async) {
		char location[96];
		if (!existing)
			kick(srv->jobs);
		snprintf(location, sizeof(location), "/api/v1/jobs/%s", id);
		u_map_put(c->resp->map_header, "Location", location);
		kc_http_json(c->resp, 202, json_pack("{s:o}", "job", kc_job_view(job)));
		return 0;
	}

	/* Synchronous: run it here rather than wait for a free worker; a
	 * worker that claimed it first (or the first request of a retry)
	 * runs it and we wait. */
	_cleanup_json_ json_t *end = NULL;
	struct kc_error ce = {0};
	if (!existing && kc_db_job_claim(srv->db, id, srv->jobs->worker, &ce) == 0) {
		json_object_set_new(job, "state", json_string("running"));
		run_claimed(srv->jobs, job);
	}
	kc_error_clear(&ce);
	if (kc_jobs_wait(srv, id, SYNC_WAIT_S, &end, err) < 0)
		return -1;
	if (strcmp(json_string_value(json_object_get(end, "state")), "succeeded") == 0) {
		kc_http_json(c->resp, ok_status, json_incref(json_object_get(end, "result")));
		return 0;
	}
	const json_t *e = json_object_get(end, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	return kc_error_set(err, code ? kc_errcode_from_name(code) : KC_ERR_INTERNAL, "%s",
			    msg ? msg : "the job failed");
}

int kc_jobs_open(struct kc_server *srv, struct kc_error *err)
{
	_cleanup_json_ json_t *orphans = NULL;
	char host[256] = "";
	unsigned port = 0;
	int64_t requeued = 0;

	struct kc_jobs *j = calloc(1, sizeof(*j));
	if (!j)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	j->srv = srv;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->wake, NULL);
	pthread_cond_init(&j->hk_wake, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&j->done, &ca);
	pthread_condattr_destroy(&ca);
	srv->jobs = j;

	if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	if (srv->addr.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&srv->addr)->sin6_port);
	else
		port = ntohs(((struct sockaddr_in *)&srv->addr)->sin_port);
	snprintf(j->worker, sizeof(j->worker), "%s:%u", host, port);

	/* This worker name's running jobs belong to a run of this server that
	 * died: nothing runs them any more.  Settled job by job on condition
	 * that they are still ours: another server may be sweeping them
	 * (jobs_sweep.c) if this one was down for long. */
	if (kc_db_job_list_running(srv->db, j->worker, &orphans, err) < 0)
		return -1;
	kc_jobs_settle_orphans(srv->db, j->worker, orphans, &requeued);
	if (json_array_size(orphans) > 0)
		fprintf(stderr, "jobs: %zu left running by an earlier run, %lld queued again\n",
			json_array_size(orphans), (long long)requeued);
	return 0;
}

int kc_jobs_start(struct kc_server *srv, struct kc_error *err)
{
	struct kc_jobs *j = srv->jobs;

	for (; j && j->n_threads < KC_JOB_WORKERS; j->n_threads++) {
		int rc = pthread_create(&j->threads[j->n_threads], NULL, worker_main, j);
		if (rc != 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, rc,
						  "cannot start a job worker");
	}
	if (!j || j->hk_started)
		return 0;
	/* The servers row exists by now (kc_cluster_start): name our worker
	 * on it before anything could judge us. */
	if (kc_jobs_sweep_register(srv, err) < 0)
		return -1;
	int rc = pthread_create(&j->housekeeper, NULL, housekeeper_main, j);
	if (rc != 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, rc,
					  "cannot start the job housekeeper");
	j->hk_started = true;
	return 0;
}

void kc_jobs_free(struct kc_server *srv)
{
	struct kc_jobs *j = srv ? srv->jobs : NULL;

	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = true;
	pthread_cond_broadcast(&j->wake);
	pthread_cond_broadcast(&j->hk_wake);
	pthread_mutex_unlock(&j->lock);
	for (size_t i = 0; i < j->n_threads; i++)
		pthread_join(j->threads[i], NULL);
	if (j->hk_started)
		pthread_join(j->housekeeper, NULL);
	pthread_cond_destroy(&j->wake);
	pthread_cond_destroy(&j->hk_wake);
	pthread_cond_destroy(&j->done);
	pthread_mutex_destroy(&j->lock);
	free(j);
	srv->jobs = NULL;
}
