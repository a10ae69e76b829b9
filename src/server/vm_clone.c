/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm_clone.c - the pool of a VM create (clones.h; docs/storage.md,
 * "Clones").  A VM's disks go into its request's "pool": the server keeps
 * the pool's definition and sends it with vm.create, since agents keep no
 * pool state; the VM is placed on a host the pool is on.  A full clone's
 * copy can take minutes: its progress is asked of the host while
 * vm.create runs (vm.create.progress) and becomes the job's.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cleanup.h"
#include "clones.h"
#include "db_pools.h"
#include "hostlink.h"
#include "json_util.h"
#include "pool.h"

#define PROGRESS_POLL_MS 250

static const char *pool_of(const json_t *body)
{
	const char *p = json_string_value(json_object_get(body, "pool"));
	return p && strcmp(p, KC_POOL_DEFAULT_NAME) != 0 ? p : NULL;
}

/* The pool's row and its hosts; NULL rows for "default". */
static int pool_load(struct kc_server *srv, const char *name, json_t **ret_row, json_t **ret_hosts,
		     struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	if (kc_name_validate(name, "pool name", err) < 0)
		return -1;
	if (kc_db_pool_get(srv->db, name, &row, err) < 0) {
		if (err->code == KC_ERR_NOT_FOUND) {
			kc_error_clear(err);
			return kc_error_set(err, KC_ERR_NOT_FOUND, "pool \"%s\" not found", name);
		}
		return -1;
	}
	if (ret_hosts && kc_db_pool_hosts(srv->db, row, ret_hosts, err) < 0)
		return -1;
	*ret_row = steal_ptr(&row);
	return 0;
}

static bool in_array(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

int kc_vm_pool_check(struct kc_server *srv, const json_t *body, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL, *hosts = NULL;
	const char *pool = pool_of(body);
	if (!pool)
		return 0;
	if (pool_load(srv, pool, &row, &hosts, err) < 0)
		return -1;
	const char *host = json_string_value(json_object_get(body, "host"));
	const char *cluster = json_string_value(json_object_get(body, "cluster"));
	const char *pcluster = json_string_value(json_object_get(row, "cluster"));
	const char *phost = json_string_value(json_object_get(row, "host"));
	if (host && !in_array(hosts, host))
		return kc_error_set(err, KC_ERR_INVALID, "pool \"%s\" is not on host \"%s\"", pool,
				    host);
	if (cluster && !(pcluster && strcmp(cluster, pcluster) == 0))
		return kc_error_set(err, KC_ERR_INVALID,
				    "pool \"%s\" belongs to %s \"%s\", not to cluster \"%s\"", pool,
				    pcluster ? "cluster" : "host", pcluster ? pcluster : phost,
				    cluster);
	return 0;
}

int kc_vm_pool_place(struct kc_server *srv, const json_t *body, const char *requested,
		     json_t **ret_body, char **ret_host, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	*ret_body = NULL;
	*ret_host = NULL;
	const char *pool = pool_of(body);
	if (!pool)
		return 0;
	/* Checked again: the pool may have gone since the request was queued. */
	if (kc_vm_pool_check(srv, body, err) < 0 || pool_load(srv, pool, &row, NULL, err) < 0)
		return -1;
	const char *phost = json_string_value(json_object_get(row, "host"));
	const char *pcluster = json_string_value(json_object_get(row, "cluster"));
	if (phost && !requested && !(*ret_host = strdup(phost)))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (pcluster && !json_object_get(body, "cluster")) {
		json_t *b = json_deep_copy(body);
		if (!b || json_object_set_new(b, "cluster", json_string(pcluster)) < 0) {
			json_decref(b);
			free(steal_ptr(ret_host));
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
		*ret_body = b;
	}
	return 0;
}

/* ---- progress of a full clone ---- */

struct poller {
	struct kc_server *srv;
	const char *host, *vm;
	kc_progress_fn progress;
	void *opaque;
	pthread_mutex_t lock;
	pthread_cond_t done_cv;
	bool done;
};

static void *poll_main(void *opaque)
{
	struct poller *p = opaque;
	int last = -1;
	pthread_mutex_lock(&p->lock);
	while (!p->done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += PROGRESS_POLL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&p->done_cv, &p->lock, &ts);
		if (p->done)
			break;
		pthread_mutex_unlock(&p->lock);
		_cleanup_json_ json_t *args = json_pack("{s:s}", "name", p->vm);
		_cleanup_json_ json_t *res = NULL;
		struct kc_error e = {0};
		if (args &&
		    kc_host_call(p->srv, p->host, "vm.create.progress", args, &res, &e) == 0 &&
		    json_is_true(json_object_get(res, "copying"))) {
			int pct = (int)json_integer_value(json_object_get(res, "percent"));
			int job = 30 + pct * 60 / 100;
			if (job != last && pct >= 0 && pct <= 100)
				p->progress(p->opaque, job);
			last = job;
		}
		kc_error_clear(&e);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int kc_vm_create_call(struct kc_server *srv, const char *host, const json_t *stored,
		      kc_progress_fn progress, void *opaque, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *args = json_deep_copy(stored);
	if (!args)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	const char *pool = pool_of(stored);
	if (pool) {
		_cleanup_json_ json_t *row = NULL, *hosts = NULL;
		struct kc_pool_def def = {0};
		if (pool_load(srv, pool, &row, &hosts, err) < 0)
			return -1;
		if (!in_array(hosts, host))
			return kc_error_set(err, KC_ERR_INVALID,
					    "pool \"%s\" is not on host \"%s\"", pool, host);
		if (kc_pool_row_def(row, &def, err) < 0)
			return -1;
		json_t *dj = kc_pool_def_to_json(&def);
		kc_pool_def_clear(&def);
		if (!dj || json_object_set_new(args, "pool_def", dj) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	const char *clone = json_string_value(json_object_get(stored, "clone"));
	struct poller p = {.srv = srv,
			   .host = host,
			   .vm = json_string_value(json_object_get(stored, "name")),
			   .progress = progress,
			   .opaque = opaque};
	pthread_t th;
	bool polling = false;
	if (progress && p.vm && clone && strcmp(clone, "full") == 0) {
		pthread_mutex_init(&p.lock, NULL);
		pthread_cond_init(&p.done_cv, NULL);
		polling = pthread_create(&th, NULL, poll_main, &p) == 0;
		if (!polling) {
			pthread_cond_destroy(&p.done_cv);
			pthread_mutex_destroy(&p.lock);
		}
	}
	int r = kc_host_call(srv, host, "vm.create", args, ret, err);
	if (polling) {
		pthread_mutex_lock(&p.lock);
		p.done = true;
		pthread_cond_signal(&p.done_cv);
		pthread_mutex_unlock(&p.lock);
		pthread_join(th, NULL);
		pthread_cond_destroy(&p.done_cv);
		pthread_mutex_destroy(&p.lock);
	}
	return r;
}
