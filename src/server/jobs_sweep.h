/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jobs_sweep.h - jobs nobody will finish and jobs nobody needs any more
 * (docs/api.md "Jobs", docs/server.md "Jobs"):
 *  - the rule that settles jobs a dead server left running (jobs.h), used
 *    at start-up for this server's own and, for a server that died for
 *    good, by any live server once its heartbeat (servers.last_seen_at) is
 *    older than the dead-after threshold;
 *  - retention: finished jobs older than the retention period are deleted
 *    in batches; queued and running jobs never.
 * jobs.c's housekeeping thread calls kc_jobs_sweep_tick periodically.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct kc_db;
struct kc_server;

/* Finished jobs are kept this long (--job-retention, in days). */
#define KC_JOBS_RETENTION_DEFAULT_S (7L * 24 * 3600)
/* A server whose heartbeat is this old is dead for good (--server-dead-after).
 * Well above KC_HA_SERVER_FRESH_S: a server only slow to reach the database
 * must not lose jobs it is still running. */
#define KC_JOBS_DEAD_AFTER_DEFAULT_S 300L
/* Rows deleted per statement, and statements per sweep (bounded work). */
#define KC_JOBS_PURGE_BATCH	  500
#define KC_JOBS_PURGE_MAX_BATCHES 40

/* Settles each job of `jobs` (rows running under `worker`) by the rule in
 * jobs.h: finished, failed or queued again.  A job another server settled
 * or took meanwhile is skipped, so each is settled once.  *ret_requeued
 * (may be NULL) counts those queued again.  Problems are logged on
 * stderr; it cannot fail as a whole. */
void kc_jobs_settle_orphans(struct kc_db *db, const char *worker, const json_t *jobs,
			    int64_t *ret_requeued);

/* Deletes finished jobs last changed more than retention_s ago, at most
 * KC_JOBS_PURGE_MAX_BATCHES batches of KC_JOBS_PURGE_BATCH (the next sweep
 * goes on).  *ret_deleted (may be NULL): how many. */
int kc_jobs_purge(struct kc_db *db, long retention_s, int64_t *ret_deleted, struct kc_error *err);

/* Looks for servers (other than `own_endpoint`, may be NULL) not seen for
 * dead_after_s; for each, takes the running jobs of its worker for
 * `worker` and settles them (kc_jobs_settle_orphans), and deletes its row.
 * With several live servers doing this at once, each dead server's jobs
 * are settled by exactly one.  *ret_servers, *ret_jobs (may be NULL):
 * servers removed, jobs settled. */
int kc_jobs_sweep_dead(struct kc_db *db, const char *worker, const char *own_endpoint,
		       long dead_after_s, int64_t *ret_servers, int64_t *ret_jobs,
		       struct kc_error *err);

/* Records this server's worker name on its servers row (agent listener
 * only; nothing otherwise).  A row that is gone (another server took this
 * one for dead) is registered again, with a warning. */
int kc_jobs_sweep_register(struct kc_server *srv, struct kc_error *err);

/* One housekeeping round: register (above), sweep dead servers and, with
 * `purge`, apply the retention.  Logs what it did or could not do. */
void kc_jobs_sweep_tick(struct kc_server *srv, bool purge);
