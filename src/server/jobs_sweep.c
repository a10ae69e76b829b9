/* SPDX-License-Identifier: Apache-2.0 */
/* jobs_sweep.c - orphaned jobs settled, old jobs deleted (jobs_sweep.h). */
#include "jobs_sweep.h"

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "db.h"
#include "ha.h"
#include "jobs.h"
#include "json_util.h"
#include "server.h"

/* The end a job left running gets (rule in jobs.h): *ret_state is
 * "queued", "succeeded" or "failed", with *ret_result / *ret_error. */
static void orphan_end(struct kc_db *db, const json_t *job, const char **ret_state,
		       json_t **ret_result, json_t **ret_error)
{
	const char *kind = json_string_value(json_object_get(job, "kind"));
	const char *target = json_string_value(json_object_get(job, "target"));
	const char *created = json_string_value(json_object_get(job, "created_at"));
	struct kc_error e = {0};

	*ret_result = *ret_error = NULL;
	*ret_state = "failed";
	if (!kind || strcmp(kind, "vm.delete") == 0 || strcmp(kind, "vm.destroy") == 0) {
		*ret_state = "queued";
		return;
	}
	if (strcmp(kind, "vm.create") != 0) {
		*ret_error = json_pack("{s:s,s:s}", "code", "unavailable", "message",
				       "interrupted by a server restart; check the VM's state and "
				       "retry");
		return;
	}
	_cleanup_json_ json_t *row = NULL;
	if (!target || kc_db_vm_get(db, target, &row, &e) < 0) {
		/* No record: reconciliation found nothing, so nothing was made. */
		kc_error_clear(&e);
		*ret_state = "queued";
		return;
	}
	const char *state = json_string_value(json_object_get(row, "state"));
	const char *made = json_string_value(json_object_get(row, "created_at"));
	if (state && strcmp(state, "creating") == 0) {
		*ret_error = json_pack("{s:s,s:s}", "code", "unavailable", "message",
				       "the server restarted during the create; the VM stays "
				       "\"creating\" until its host reports back");
	} else if (made && created && strcmp(made, created) >= 0) {
		*ret_state = "succeeded";
		*ret_result = json_pack(
			"{s:O,s:O,s:O,s:O,s:O}", "name", json_object_get(row, "name"), "uuid",
			json_object_get(row, "uuid"), "host", json_object_get(row, "host"), "state",
			json_object_get(row, "state"), "created_at",
			json_object_get(row, "created_at"));
	} else {
		*ret_error = json_pack("{s:s,s:s}", "code", "conflict", "message",
				       "the server restarted during the create and a VM of that "
				       "name already exists");
	}
}

void kc_jobs_settle_orphans(struct kc_db *db, const char *worker, const json_t *jobs,
			    int64_t *ret_requeued)
{
	int64_t requeued = 0;
	size_t i;
	json_t *job;

	json_array_foreach(jobs, i, job)
	{
		const char *id = json_string_value(json_object_get(job, "id"));
		_cleanup_json_ json_t *result = NULL;
		_cleanup_json_ json_t *error = NULL;
		const char *state = NULL;
		struct kc_error e = {0};

		if (!id)
			continue;
		orphan_end(db, job, &state, &result, &error);
		if (kc_db_job_settle(db, id, worker, state, result, error, &e) < 0) {
			/* Conflict: settled or taken by another server meanwhile. */
			if (e.code != KC_ERR_CONFLICT)
				fprintf(stderr, "warning: job %s: %s\n", id, e.message);
			kc_error_clear(&e);
			continue;
		}
		if (strcmp(state, "queued") == 0)
			requeued++;
	}
	if (ret_requeued)
		*ret_requeued = requeued;
}

int kc_jobs_purge(struct kc_db *db, long retention_s, int64_t *ret_deleted, struct kc_error *err)
{
	int64_t total = 0;
	char before[21];

	if (retention_s < 1)
		return kc_error_set(err, KC_ERR_INVALID, "the job retention must be positive");
	kc_db_time_from_now(-(long long)retention_s, before);
	/* Batches keep each statement (and, on SQLite, the time the
	 * database is held) short. */
	for (int i = 0; i < KC_JOBS_PURGE_MAX_BATCHES; i++) {
		int64_t n = 0;
		if (kc_db_job_purge(db, before, KC_JOBS_PURGE_BATCH, &n, err) < 0)
			return -1;
		total += n;
		if (n < KC_JOBS_PURGE_BATCH)
			break;
	}
	if (ret_deleted)
		*ret_deleted = total;
	return 0;
}

int kc_jobs_sweep_dead(struct kc_db *db, const char *worker, const char *own_endpoint,
		       long dead_after_s, int64_t *ret_servers, int64_t *ret_jobs,
		       struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	int64_t servers = 0, jobs = 0;
	char before[21];
	size_t i;
	json_t *row;

	if (dead_after_s < 1)
		return kc_error_set(err, KC_ERR_INVALID, "the dead-after time must be positive");
	kc_db_time_from_now(-(long long)dead_after_s, before);
	if (kc_db_query(db,
			"SELECT agent_endpoint FROM servers WHERE last_seen_at < $1 "
			"ORDER BY agent_endpoint",
			KC_DB_PARAMS(KC_DB_TEXT(before)), &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, row)
	{
		const char *ep = json_string_value(json_object_get(row, "agent_endpoint"));
		_cleanup_json_ json_t *taken = NULL;

		if (!ep || (own_endpoint && strcmp(ep, own_endpoint) == 0))
			continue;
		if (kc_db_job_adopt_dead(db, ep, before, worker, &taken, err) < 0)
			return -1;
		if (!taken)
			continue; /* came back, or another server was quicker */
		servers++;
		jobs += (int64_t)json_array_size(taken);
		int64_t requeued = 0;
		kc_jobs_settle_orphans(db, worker, taken, &requeued);
		fprintf(stderr,
			"jobs: server %s not seen for %ld s: removed; %zu running job(s) settled, "
			"%lld queued again\n",
			ep, dead_after_s, json_array_size(taken), (long long)requeued);
	}
	if (ret_servers)
		*ret_servers = servers;
	if (ret_jobs)
		*ret_jobs = jobs;
	return 0;
}

int kc_jobs_sweep_register(struct kc_server *srv, struct kc_error *err)
{
	int64_t changed = 0;

	if (!srv->agent_endpoint)
		return 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (kc_db_exec(srv->db, "UPDATE servers SET worker = $2 WHERE agent_endpoint = $1",
			       KC_DB_PARAMS(KC_DB_TEXT(srv->agent_endpoint),
					    KC_DB_TEXT(kc_jobs_worker(srv))),
			       &changed, err) < 0)
			return -1;
		if (changed > 0 || attempt > 0)
			break;
		/* Our row is gone: another server judged us dead (a long pause,
		 * the database out of reach).  Our running jobs may have been
		 * settled by it; be visible again rather than stay a ghost. */
		fprintf(stderr, "warning: this server's row in \"servers\" was removed (taken for "
				"dead by another server); registering again\n");
		if (kc_ha_register(srv, err) < 0)
			return -1;
	}
	return 0;
}

void kc_jobs_sweep_tick(struct kc_server *srv, bool purge)
{
	struct kc_error e = {0};
	long dead_after = srv->server_dead_after_s > 0 ? srv->server_dead_after_s
						       : KC_JOBS_DEAD_AFTER_DEFAULT_S;
	long retention =
		srv->job_retention_s > 0 ? srv->job_retention_s : KC_JOBS_RETENTION_DEFAULT_S;

	/* Never judge faster than this server's own heartbeat could show
	 * life (others are expected to use the same --heartbeat). */
	if (dead_after < 3L * (long)srv->heartbeat_s)
		dead_after = 3L * (long)srv->heartbeat_s;

	if (srv->agent_endpoint) {
		if (kc_jobs_sweep_register(srv, &e) < 0 ||
		    kc_jobs_sweep_dead(srv->db, kc_jobs_worker(srv), srv->agent_endpoint,
				       dead_after, NULL, NULL, &e) < 0) {
			fprintf(stderr, "warning: jobs: dead-server sweep: %s\n", e.message);
			kc_error_clear(&e);
		}
	}
	if (purge) {
		int64_t n = 0;
		if (kc_jobs_purge(srv->db, retention, &n, &e) < 0) {
			fprintf(stderr, "warning: jobs: retention: %s\n", e.message);
			kc_error_clear(&e);
		} else if (n > 0) {
			fprintf(stderr, "jobs: %lld finished job(s) older than %ld s deleted\n",
				(long long)n, retention);
		}
	}
}
