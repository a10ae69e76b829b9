/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs.h - long operations as jobs (docs/api.md, "Jobs").
 *
 * Every create, start, shutdown, reboot, destroy and delete is a row in the
 * jobs table (db_jobs.h).  A synchronous request queues its job, claims it
 * at once and runs it on its own thread, then answers with the job's
 * result; an asynchronous one (?async=true or "Prefer: respond-async")
 * answers 202 and a small pool of worker threads claims it from the
 * database, so with two servers on one PostgreSQL either may run it.
 * An Idempotency-Key makes a retry return the first request's job.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

struct kc_server;
struct kc_call;

#define KC_JOB_WORKERS	     2
#define KC_IDEMPOTENCY_KEY_MAX 128

/* Sets up srv->jobs (workers not started) and settles the jobs this server
 * (same worker name) left running when it died.  The rule:
 *  - vm.create: if the VM's record exists, was made after the job and is
 *    not "creating" (reconciliation kept it), the job succeeded; if the
 *    record is still "creating" (its remote host has not reported back),
 *    the job failed (unavailable); if there is no record (reconciliation
 *    found nothing and removed it), the job is queued again;
 *  - vm.delete, vm.destroy: queued again (repeating them reaches the same
 *    end);
 *  - vm.start, vm.shutdown, vm.reboot: failed (unavailable,
 *    "interrupted"), since repeating them later could act on a VM that has
 *    changed since.
 * jobs_sweep.h applies the same rule to the jobs of a server that died for
 * good, from any live server. */
int kc_jobs_open(struct kc_server *srv, struct kc_error *err);
/* Starts the worker threads and the housekeeping thread (jobs_sweep.h:
 * dead servers' jobs, retention), after naming our worker on our servers
 * row. */
int kc_jobs_start(struct kc_server *srv, struct kc_error *err);
/* Stops the workers (a running job is finished first) and frees.  NULL ok. */
void kc_jobs_free(struct kc_server *srv);
/* This server's name in the jobs' "worker" column: "<hostname>:<api port>". */
const char *kc_jobs_worker(const struct kc_server *srv);

/* Serves a long operation: `kind` ("vm.create", "vm.start", ...), the VM
 * `target`, `args` (borrowed, may be NULL).  Reads Idempotency-Key, async
 * and Prefer from the request; answers ok_status and the result (sync) or
 * 202 {"job"} with Location (async).  A failed job is returned as err. */
int kc_jobs_serve(struct kc_call *c, const char *kind, const char *target, const json_t *args,
		  unsigned ok_status, struct kc_error *err);
/* Waits up to timeout_s for job `id` to end; *ret the job row.  Still
 * running then is KC_ERR_TIMEOUT. */
int kc_jobs_wait(struct kc_server *srv, const char *id, unsigned timeout_s, json_t **ret,
		 struct kc_error *err);
/* The API's Job object from a row (the stored request is left out). */
json_t *kc_job_view(const json_t *row);

/* GET /api/v1/jobs, GET /api/v1/jobs/{id} (api_jobs.c). */
int kc_api_jobs_list(struct kc_call *c, struct kc_error *err);
int kc_api_job_show(struct kc_call *c, struct kc_error *err);
