/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_jobs.h - asynchronous jobs: queued -> running -> succeeded | failed.
 *
 * A job object: {"id","kind","state","progress","target","request","result","error",
 * "owner","idempotency_key","worker","created_at","updated_at"} (JSON columns parsed).
 */
#pragma once

#include "db.h"

struct kc_db_job_new {
	const char *kind;	     /* e.g. "vm.create" */
	const char *owner;	     /* user name */
	const char *idempotency_key; /* may be NULL */
	const char *target;	     /* what it acts on, e.g. the VM name; may be NULL */
	const json_t *request;	     /* may be NULL */
};

/* Queues a job.  With an idempotency key the owner already used, nothing
 * is queued: *ret is that earlier job and *ret_existing true (the caller
 * decides whether its kind and request match).  Two racing creates with
 * one key make one job. */
int kc_db_job_create(struct kc_db *db, const struct kc_db_job_new *j, json_t **ret,
		     bool *ret_existing, struct kc_error *err);
/* A missing job is KC_ERR_NOT_FOUND. */
int kc_db_job_get(struct kc_db *db, const char *id, json_t **ret, struct kc_error *err);
/* Newest first; owner NULL: everyone's; limit 1..1000 (0: 100). */
int kc_db_job_list(struct kc_db *db, const char *owner, int limit, json_t **ret,
		   struct kc_error *err);
/* Takes the oldest queued job for `worker` (a server's name) and marks it
 * running; *ret = NULL when none is queued.  Two servers never take the
 * same job. */
int kc_db_job_claim_next(struct kc_db *db, const char *worker, json_t **ret, struct kc_error *err);
/* Takes one queued job by id; not queued (any more) is KC_ERR_CONFLICT. */
int kc_db_job_claim(struct kc_db *db, const char *id, const char *worker, struct kc_error *err);
/* progress 0..100 of a running job; otherwise KC_ERR_CONFLICT. */
int kc_db_job_progress(struct kc_db *db, const char *id, int progress, struct kc_error *err);
/* Ends a running job: succeeded with `result` or failed with `error`
 * ({"code","message"}); a job not running is KC_ERR_CONFLICT. */
int kc_db_job_finish(struct kc_db *db, const char *id, bool succeeded, const json_t *result,
		     const json_t *error, struct kc_error *err);
/* Puts the running jobs of a worker that died back in the queue;
 * *ret_count (may be NULL) says how many. */
int kc_db_job_requeue_worker(struct kc_db *db, const char *worker, int64_t *ret_count,
			     struct kc_error *err);
/* The jobs `worker` has in state running, oldest first (start-up recovery). */
int kc_db_job_list_running(struct kc_db *db, const char *worker, json_t **ret,
			   struct kc_error *err);
/* Settles a job `worker` holds running: `state` "succeeded" / "failed"
 * (with result / error, as kc_db_job_finish) or "queued" (again, for any
 * worker).  A job no longer running for `worker` (another server settled or
 * took it) is KC_ERR_CONFLICT: so a job is settled once. */
int kc_db_job_settle(struct kc_db *db, const char *id, const char *worker, const char *state,
		     const json_t *result, const json_t *error, struct kc_error *err);
/* Deletes up to `batch` (1..10000) finished jobs (succeeded or failed) last
 * changed before `before` (a timestamp), oldest first; queued and running
 * jobs never.  *ret_deleted (may be NULL): how many. */
int kc_db_job_purge(struct kc_db *db, const char *before, int batch, int64_t *ret_deleted,
		    struct kc_error *err);
/* In one transaction: if the server `endpoint` is still not seen since
 * `stale_before`, moves the jobs its worker left running to `worker` (still
 * running; *ret gets them) and deletes its servers row.  Of several servers
 * doing this at once, one gets the jobs.  A server seen meanwhile (or
 * gone already): *ret = NULL. */
int kc_db_job_adopt_dead(struct kc_db *db, const char *endpoint, const char *stale_before,
			 const char *worker, json_t **ret, struct kc_error *err);
