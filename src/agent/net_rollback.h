/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_rollback.h - confirm-or-roll-back for changes that can cut a host off
 * its management network (host networks, the host firewall).
 *
 *   begin:   snapshot() what exists, write the marker file (snapshot and
 *            deadline, 0600, renamed into place), apply() the change, arm
 *            the timer.  An apply that fails is restored at once.
 *   confirm: the server proved it still reaches the agent: the timer is
 *            cancelled and the marker removed.
 *   expiry:  restore(snapshot), marker removed.
 *   resume:  at agent start, a marker left by a process that died is
 *            armed again for the time it had left, or restored at once if
 *            its deadline passed: a restarted agent rolls back too.
 *
 * One change may be pending per handle (another begin is KC_ERR_CONFLICT).
 * The callbacks run with the handle's lock held, from the caller's thread
 * or from the handle's timer thread; they must not call back into it.
 * Users: hostnet.c (host.net.*); the host firewall may take one handle of
 * its own with its own marker path.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

#define KC_ROLLBACK_MIN_S     5
#define KC_ROLLBACK_MAX_S     3600
#define KC_ROLLBACK_DEFAULT_S 60

struct kc_rollback_ops {
	const char *what; /* "host network": names the change in messages */
	/* What exists now, as JSON that restore() takes back (it is stored in
	 * the marker file, so it must not point at memory). */
	int (*snapshot)(void *opaque, const json_t *change, json_t **ret, struct kc_error *err);
	int (*apply)(void *opaque, const json_t *change, struct kc_error *err);
	int (*restore)(void *opaque, const json_t *snapshot, struct kc_error *err);
};

struct kc_rollback;

/* A handle whose marker file is `marker_path` (its folder must exist).
 * Starts the timer thread; nothing is restored until resume or begin. */
int kc_rollback_new(const struct kc_rollback_ops *ops, void *opaque, const char *marker_path,
		    struct kc_rollback **ret, struct kc_error *err);
/* Stops the timer thread.  A pending change stays in its marker file, so
 * the next process that resumes rolls it back (accepts NULL). */
void kc_rollback_free(struct kc_rollback *rb);
/* snapshot, marker, apply, timer (timeout_s in KC_ROLLBACK_MIN_S..MAX_S).
 * *ret_id (37 bytes) names the pending change for confirm. */
int kc_rollback_begin(struct kc_rollback *rb, const json_t *change, unsigned timeout_s,
		      char ret_id[static 37], struct kc_error *err);
/* Confirms the pending change `id` (NULL: whichever is pending).
 * *ret_change (may be NULL) gets the change.  KC_ERR_NOT_FOUND if nothing
 * is pending (it was rolled back, say), KC_ERR_CONFLICT if another is. */
int kc_rollback_confirm(struct kc_rollback *rb, const char *id, json_t **ret_change,
			struct kc_error *err);
/* Picks up a marker file a previous process left (see above). */
int kc_rollback_resume(struct kc_rollback *rb, struct kc_error *err);
/* {"pending": {"id", "remaining_s", "change"} | null,
 *  "last": {"id", "result": "confirmed"|"rolled_back"|"restore_failed", "error"?} | null} */
json_t *kc_rollback_status(struct kc_rollback *rb);
