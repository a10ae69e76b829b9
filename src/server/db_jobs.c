/* SPDX-License-Identifier: Apache-2.0 */
/* db_jobs.c - the job queue. */
#include "db.h"

#include <string.h>

#include "cleanup.h"
#include "json_util.h"

#define JOB_COLS                                                                                   \
	"id, kind, state, progress, target, request, result, error, owner, idempotency_key, "      \
	"worker, created_at, updated_at"

static const char *const job_json_cols[] = {"request", "result", "error", NULL};

static int job_by_key(struct kc_db *db, const char *owner, const char *key, json_t **ret,
		      struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;

	if (kc_db_query(db,
			"SELECT " JOB_COLS " FROM jobs WHERE owner = $1 AND idempotency_key = $2",
			KC_DB_PARAMS(KC_DB_TEXT(owner), KC_DB_TEXT(key)), &rows, err) < 0)
		return -1;
	kc_db_rows_parse_json(rows, job_json_cols);
	*ret = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_job_create(struct kc_db *db, const struct kc_db_job_new *j, json_t **ret,
		     bool *ret_existing, struct kc_error *err)
{
	struct kc_error e = {0};
	char id[37], now[21];

	*ret_existing = false;
	kc_db_uuid(id);
	kc_db_now(now);
	if (kc_db_exec(db,
		       "INSERT INTO jobs (id, kind, state, progress, target, request, owner, "
		       "idempotency_key, created_at, updated_at) "
		       "VALUES ($1, $2, 'queued', 0, $3, $4, $5, $6, $7, $7)",
		       KC_DB_PARAMS(KC_DB_TEXT(id), KC_DB_TEXT(j->kind), KC_DB_TEXT(j->target),
				    KC_DB_JSON(j->request), KC_DB_TEXT(j->owner),
				    KC_DB_TEXT(j->idempotency_key), KC_DB_TEXT(now)),
		       NULL, &e) < 0) {
		/* The key was used: the unique index made the race safe, and
		 * the winner's row is there to return. */
		if (e.code == KC_ERR_CONFLICT && j->idempotency_key) {
			if (job_by_key(db, j->owner, j->idempotency_key, ret, err) < 0)
				return -1;
			if (*ret) {
				*ret_existing = true;
				return 0;
			}
		}
		if (err)
			*err = e;
		return -1;
	}
	return kc_db_job_get(db, id, ret, err);
}

int kc_db_job_get(struct kc_db *db, const char *id, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;

	if (kc_db_query(db, "SELECT " JOB_COLS " FROM jobs WHERE id = $1",
			KC_DB_PARAMS(KC_DB_TEXT(id)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "job \"%s\" not found", id);
	kc_db_rows_parse_json(rows, job_json_cols);
	*ret = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_job_list(struct kc_db *db, const char *owner, int limit, json_t **ret,
		   struct kc_error *err)
{
	if (limit == 0)
		limit = 100;
	if (limit < 0 || limit > 1000)
		return kc_error_set(err, KC_ERR_INVALID, "limit must be 1..1000");
	if (kc_db_query(db,
			"SELECT " JOB_COLS " FROM jobs WHERE $1 IS NULL OR owner = $1 "
			"ORDER BY created_at DESC, id LIMIT $2",
			KC_DB_PARAMS(KC_DB_TEXT(owner), KC_DB_INT(limit)), ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, job_json_cols);
	return 0;
}

struct claim {
	const char *worker;
	json_t *job;
};

static int claim_next_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct claim *c = opaque;
	_cleanup_json_ json_t *rows = NULL;
	char now[21];

	kc_db_now(now);
	/* Serialisable: of two servers picking the same job, one commits
	 * and the other fails and retries, then sees it taken. */
	if (kc_db_query(tx,
			"UPDATE jobs SET state = 'running', worker = $1, updated_at = $2 "
			"WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
			"ORDER BY created_at, id LIMIT 1) AND state = 'queued' RETURNING " JOB_COLS,
			KC_DB_PARAMS(KC_DB_TEXT(c->worker), KC_DB_TEXT(now)), &rows, err) < 0)
		return -1;
	kc_db_rows_parse_json(rows, job_json_cols);
	json_decref(c->job);
	c->job = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_job_claim_next(struct kc_db *db, const char *worker, json_t **ret, struct kc_error *err)
{
	struct claim c = {.worker = worker};

	if (kc_db_tx(db, claim_next_tx, &c, err) < 0) {
		json_decref(c.job);
		return -1;
	}
	*ret = c.job;
	return 0;
}

/* Runs a state change that must touch exactly one job. */
static int change_job(struct kc_db *db, const char *id, const char *what, const char *sql,
		      const struct kc_db_param *params, size_t n, struct kc_error *err)
{
	int64_t changes = 0;
	_cleanup_json_ json_t *job = NULL;

	if (kc_db_exec(db, sql, params, n, &changes, err) < 0)
		return -1;
	if (changes > 0)
		return 0;
	if (kc_db_job_get(db, id, &job, err) < 0)
		return -1;
	return kc_error_set(err, KC_ERR_CONFLICT, "job \"%s\" is %s: cannot %s", id,
			    json_string_value(json_object_get(job, "state")), what);
}

int kc_db_job_claim(struct kc_db *db, const char *id, const char *worker, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return change_job(db, id, "claim it",
			  "UPDATE jobs SET state = 'running', worker = $2, updated_at = $3 "
			  "WHERE id = $1 AND state = 'queued'",
			  KC_DB_PARAMS(KC_DB_TEXT(id), KC_DB_TEXT(worker), KC_DB_TEXT(now)), err);
}

int kc_db_job_progress(struct kc_db *db, const char *id, int progress, struct kc_error *err)
{
	char now[21];

	if (progress < 0 || progress > 100)
		return kc_error_set(err, KC_ERR_INVALID, "progress must be 0..100");
	kc_db_now(now);
	return change_job(db, id, "record progress",
			  "UPDATE jobs SET progress = $2, updated_at = $3 "
			  "WHERE id = $1 AND state = 'running'",
			  KC_DB_PARAMS(KC_DB_TEXT(id), KC_DB_INT(progress), KC_DB_TEXT(now)), err);
}

int kc_db_job_finish(struct kc_db *db, const char *id, bool succeeded, const json_t *result,
		     const json_t *error, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return change_job(db, id, "finish it",
			  "UPDATE jobs SET state = $2, progress = CASE WHEN $2 = 'succeeded' "
			  "THEN 100 ELSE progress END, result = $3, error = $4, updated_at = $5 "
			  "WHERE id = $1 AND state = 'running'",
			  KC_DB_PARAMS(KC_DB_TEXT(id),
				       KC_DB_TEXT(succeeded ? "succeeded" : "failed"),
				       KC_DB_JSON(result), KC_DB_JSON(error), KC_DB_TEXT(now)),
			  err);
}

int kc_db_job_requeue_worker(struct kc_db *db, const char *worker, int64_t *ret_count,
			     struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(db,
			  "UPDATE jobs SET state = 'queued', worker = NULL, updated_at = $2 "
			  "WHERE worker = $1 AND state = 'running'",
			  KC_DB_PARAMS(KC_DB_TEXT(worker), KC_DB_TEXT(now)), ret_count, err);
}

int kc_db_job_list_running(struct kc_db *db, const char *worker, json_t **ret,
			   struct kc_error *err)
{
	if (kc_db_query(db,
			"SELECT " JOB_COLS " FROM jobs WHERE worker = $1 AND state = 'running' "
			"ORDER BY created_at, id",
			KC_DB_PARAMS(KC_DB_TEXT(worker)), ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, job_json_cols);
	return 0;
}

int kc_db_job_settle(struct kc_db *db, const char *id, const char *worker, const char *state,
		     const json_t *result, const json_t *error, struct kc_error *err)
{
	char now[21];

	if (strcmp(state, "succeeded") != 0 && strcmp(state, "failed") != 0 &&
	    strcmp(state, "queued") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "cannot settle a job as \"%s\"", state);
	kc_db_now(now);
	/* Queued again: no worker, no result; ended: as kc_db_job_finish. */
	return change_job(db, id, "settle it",
			  "UPDATE jobs SET state = $3, worker = CASE WHEN $3 = 'queued' THEN NULL "
			  "ELSE worker END, progress = CASE WHEN $3 = 'succeeded' THEN 100 WHEN "
			  "$3 = 'queued' THEN 0 ELSE progress END, result = $4, error = $5, "
			  "updated_at = $6 WHERE id = $1 AND state = 'running' AND worker = $2",
			  KC_DB_PARAMS(KC_DB_TEXT(id), KC_DB_TEXT(worker), KC_DB_TEXT(state),
				       KC_DB_JSON(result), KC_DB_JSON(error), KC_DB_TEXT(now)),
			  err);
}

int kc_db_job_purge(struct kc_db *db, const char *before, int batch, int64_t *ret_deleted,
		    struct kc_error *err)
{
	if (batch < 1 || batch > 10000)
		return kc_error_set(err, KC_ERR_INVALID, "batch must be 1..10000");
	/* A subquery with LIMIT: neither engine has DELETE ... LIMIT in the
	 * subset both share.  Queued and running jobs are never touched. */
	return kc_db_exec(db,
			  "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN "
			  "('succeeded', 'failed') AND updated_at < $1 ORDER BY updated_at, id "
			  "LIMIT $2)",
			  KC_DB_PARAMS(KC_DB_TEXT(before), KC_DB_INT(batch)), ret_deleted, err);
}

struct adopt {
	const char *endpoint, *stale_before, *worker;
	json_t *jobs;
	bool dead;
};

static int adopt_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct adopt *a = opaque;
	_cleanup_json_ json_t *row = NULL;
	char now[21];

	json_decref(steal_ptr(&a->jobs));
	a->dead = false;
	/* Judged again inside the transaction: a server that came back since
	 * the caller looked keeps its row and its jobs. */
	if (kc_db_query_row(tx,
			    "SELECT worker FROM servers WHERE agent_endpoint = $1 AND "
			    "last_seen_at < $2",
			    KC_DB_PARAMS(KC_DB_TEXT(a->endpoint), KC_DB_TEXT(a->stale_before)),
			    &row, err) < 0)
		return -1;
	if (!row)
		return 0;
	a->dead = true;
	const char *dead = json_string_value(json_object_get(row, "worker"));
	kc_db_now(now);
	/* Another server with the same worker name would be this one: its
	 * jobs are not orphans. */
	if (dead && strcmp(dead, a->worker) != 0) {
		if (kc_db_query(
			    tx,
			    "UPDATE jobs SET worker = $2, updated_at = $3 WHERE worker = $1 AND "
			    "state = 'running' RETURNING " JOB_COLS,
			    KC_DB_PARAMS(KC_DB_TEXT(dead), KC_DB_TEXT(a->worker), KC_DB_TEXT(now)),
			    &a->jobs, err) < 0)
			return -1;
		kc_db_rows_parse_json(a->jobs, job_json_cols);
	}
	return kc_db_exec(tx, "DELETE FROM servers WHERE agent_endpoint = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(a->endpoint)), NULL, err);
}

int kc_db_job_adopt_dead(struct kc_db *db, const char *endpoint, const char *stale_before,
			 const char *worker, json_t **ret, struct kc_error *err)
{
	struct adopt a = {.endpoint = endpoint, .stale_before = stale_before, .worker = worker};

	if (kc_db_tx(db, adopt_tx, &a, err) < 0) {
		json_decref(a.jobs);
		return -1;
	}
	if (!a.dead) {
		*ret = NULL;
		return 0;
	}
	*ret = a.jobs ? a.jobs : json_array();
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}
