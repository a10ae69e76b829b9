/* SPDX-License-Identifier: Apache-2.0 */
/* net_rollback.c - confirm-or-roll-back with a timer and a marker file
 * (net_rollback.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"
#include "net_rollback.h"

struct kc_rollback {
	const struct kc_rollback_ops *ops;
	void *opaque;
	char *marker;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool stop;
	/* The pending change; id[0] == 0 when none. */
	char id[37];
	uint64_t deadline_ms; /* monotonic */
	json_t *snapshot, *change;
	json_t *last; /* {"id", "result", "error"?} */
};

static void set_last(struct kc_rollback *rb, const char *result, const struct kc_error *e)
{
	json_decref(rb->last);
	rb->last = json_pack("{s:s,s:s}", "id", rb->id, "result", result);
	if (rb->last && e && kc_error_is_set(e))
		json_object_set_new(rb->last, "error", json_string(e->message));
}

static void clear_pending(struct kc_rollback *rb)
{
	rb->id[0] = '\0';
	json_decref(rb->snapshot);
	json_decref(rb->change);
	rb->snapshot = rb->change = NULL;
	unlink(rb->marker);
}

/* Restores the pending change's snapshot.  A restore that fails keeps the
 * marker file: the next start tries again. */
static void roll_back(struct kc_rollback *rb)
{
	struct kc_error e = {0};
	if (rb->ops->restore(rb->opaque, rb->snapshot, &e) < 0) {
		set_last(rb, "restore_failed", &e);
		rb->id[0] = '\0';
		json_decref(rb->snapshot);
		json_decref(rb->change);
		rb->snapshot = rb->change = NULL;
		return;
	}
	set_last(rb, "rolled_back", NULL);
	clear_pending(rb);
}

static void *timer_main(void *arg)
{
	struct kc_rollback *rb = arg;
	pthread_mutex_lock(&rb->lock);
	while (!rb->stop) {
		if (!rb->id[0]) {
			pthread_cond_wait(&rb->cond, &rb->lock);
			continue;
		}
		uint64_t now = kc_now_ms();
		if (now >= rb->deadline_ms) {
			roll_back(rb);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t wait = rb->deadline_ms - now;
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&rb->cond, &rb->lock, &ts);
	}
	pthread_mutex_unlock(&rb->lock);
	return NULL;
}

int kc_rollback_new(const struct kc_rollback_ops *ops, void *opaque, const char *marker_path,
		    struct kc_rollback **ret, struct kc_error *err)
{
	struct kc_rollback *rb = calloc(1, sizeof(*rb));
	if (!rb || !(rb->marker = strdup(marker_path))) {
		free(rb);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	rb->ops = ops;
	rb->opaque = opaque;
	pthread_mutex_init(&rb->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rb->cond, &ca);
	pthread_condattr_destroy(&ca);
	int r = pthread_create(&rb->thread, NULL, timer_main, rb);
	if (r != 0) {
		pthread_mutex_destroy(&rb->lock);
		pthread_cond_destroy(&rb->cond);
		free(rb->marker);
		free(rb);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, r, "cannot start the %s timer",
					  ops->what);
	}
	*ret = rb;
	return 0;
}

void kc_rollback_free(struct kc_rollback *rb)
{
	if (!rb)
		return;
	pthread_mutex_lock(&rb->lock);
	rb->stop = true;
	pthread_cond_broadcast(&rb->cond);
	pthread_mutex_unlock(&rb->lock);
	pthread_join(rb->thread, NULL);
	json_decref(rb->snapshot);
	json_decref(rb->change);
	json_decref(rb->last);
	pthread_mutex_destroy(&rb->lock);
	pthread_cond_destroy(&rb->cond);
	free(rb->marker);
	free(rb);
}

/* The marker: written to a temporary name, synced, renamed over. */
static int marker_write(struct kc_rollback *rb, long long deadline_unix, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_pack("{s:s,s:I,s:O,s:O,s:s}", "id", rb->id, "deadline",
					     (json_int_t)deadline_unix, "snapshot", rb->snapshot,
					     "change", rb->change, "what", rb->ops->what);
	_cleanup_free_ char *tmp = NULL;
	if (!j || asprintf(&tmp, "%s.tmp", rb->marker) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write %s", tmp);
	if (json_dumpfd(j, fd, JSON_COMPACT) < 0 || fsync(fd) < 0 || rename(tmp, rb->marker) < 0) {
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write %s",
					  rb->marker);
	}
	return 0;
}

int kc_rollback_begin(struct kc_rollback *rb, const json_t *change, unsigned timeout_s,
		      char ret_id[static 37], struct kc_error *err)
{
	if (timeout_s < KC_ROLLBACK_MIN_S || timeout_s > KC_ROLLBACK_MAX_S)
		return kc_error_set(err, KC_ERR_INVALID, "the confirm timeout must be %d..%d s",
				    KC_ROLLBACK_MIN_S, KC_ROLLBACK_MAX_S);
	unsigned char rnd[16];
	if (kc_random_bytes(rnd, sizeof(rnd), err) < 0)
		return -1;
	pthread_mutex_lock(&rb->lock);
	int rc = -1;
	if (rb->id[0]) {
		kc_error_set(err, KC_ERR_CONFLICT,
			     "a %s change is waiting for its confirmation (%s)", rb->ops->what,
			     rb->id);
		goto out;
	}
	json_t *snap = NULL;
	if (rb->ops->snapshot(rb->opaque, change, &snap, err) < 0)
		goto out;
	rnd[6] = (rnd[6] & 0x0f) | 0x40;
	rnd[8] = (rnd[8] & 0x3f) | 0x80;
	snprintf(rb->id, sizeof(rb->id),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
		 rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);
	rb->snapshot = snap;
	rb->change = json_deep_copy(change);
	/* The marker before the change: a crash in the middle of apply()
	 * still rolls back at the next start. */
	if (!rb->change || marker_write(rb, (long long)time(NULL) + timeout_s, err) < 0) {
		if (!kc_error_is_set(err))
			kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		clear_pending(rb);
		goto out;
	}
	if (rb->ops->apply(rb->opaque, change, err) < 0) {
		roll_back(rb);
		goto out;
	}
	rb->deadline_ms = kc_now_ms() + (uint64_t)timeout_s * 1000;
	memcpy(ret_id, rb->id, 37);
	pthread_cond_broadcast(&rb->cond);
	rc = 0;
out:
	pthread_mutex_unlock(&rb->lock);
	return rc;
}

int kc_rollback_confirm(struct kc_rollback *rb, const char *id, json_t **ret_change,
			struct kc_error *err)
{
	pthread_mutex_lock(&rb->lock);
	int rc = -1;
	if (!rb->id[0]) {
		kc_error_set(
			err, KC_ERR_NOT_FOUND, "no %s change is waiting for confirmation%s",
			rb->ops->what,
			rb->last && id &&
					strcmp(json_string_value(json_object_get(rb->last, "id")),
					       id) == 0
				? " (it was rolled back)"
				: "");
		goto out;
	}
	if (id && strcmp(id, rb->id) != 0) {
		kc_error_set(err, KC_ERR_CONFLICT, "the pending %s change is %s, not %.40s",
			     rb->ops->what, rb->id, id);
		goto out;
	}
	if (ret_change)
		*ret_change = json_incref(rb->change);
	set_last(rb, "confirmed", NULL);
	clear_pending(rb);
	pthread_cond_broadcast(&rb->cond);
	rc = 0;
out:
	pthread_mutex_unlock(&rb->lock);
	return rc;
}

int kc_rollback_resume(struct kc_rollback *rb, struct kc_error *err)
{
	json_error_t je;
	_cleanup_close_ int fd = open(rb->marker, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
							    "cannot read %s", rb->marker);
	_cleanup_json_ json_t *j = json_loadfd(fd, 0, &je);
	const char *id = json_string_value(json_object_get(j, "id"));
	json_t *snap = json_object_get(j, "snapshot");
	json_int_t deadline = json_integer_value(json_object_get(j, "deadline"));
	if (!id || strlen(id) != 36 || !snap)
		return kc_error_set(err, KC_ERR_INTERNAL, "%s is not a rollback marker",
				    rb->marker);
	pthread_mutex_lock(&rb->lock);
	if (rb->id[0]) {
		pthread_mutex_unlock(&rb->lock);
		return 0; /* this process armed it already */
	}
	snprintf(rb->id, sizeof(rb->id), "%s", id);
	rb->snapshot = json_incref(snap);
	rb->change = json_incref(json_object_get(j, "change"));
	long long left = (long long)deadline - (long long)time(NULL);
	rb->deadline_ms = kc_now_ms() + (left > 0 ? (uint64_t)left * 1000 : 0);
	pthread_cond_broadcast(&rb->cond);
	pthread_mutex_unlock(&rb->lock);
	return 0;
}

json_t *kc_rollback_status(struct kc_rollback *rb)
{
	pthread_mutex_lock(&rb->lock);
	json_t *pending = json_null();
	if (rb->id[0]) {
		uint64_t now = kc_now_ms();
		json_int_t left =
			rb->deadline_ms > now ? (json_int_t)((rb->deadline_ms - now) / 1000) : 0;
		pending = json_pack("{s:s,s:I,s:O}", "id", rb->id, "remaining_s", left, "change",
				    rb->change ? rb->change : json_null());
	}
	json_t *r = json_pack("{s:o,s:O}", "pending", pending, "last",
			      rb->last ? rb->last : json_null());
	pthread_mutex_unlock(&rb->lock);
	return r;
}
