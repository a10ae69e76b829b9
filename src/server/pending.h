/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pending.h - the requests a link has sent and still waits for
 * (agentlink.c to agents, peerlink.c to other servers): each caller's
 * entry lives on its stack and is found again by id when the response
 * comes.  A list is guarded by its owner's lock; every function here but
 * kc_pending_parse_response() is called with that lock held, and the
 * owner does the waiting and the waking on its own condition.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct kc_pending {
	uint64_t id;
	bool done;
	json_t *result; /* a reference, the caller's once done */
	struct kc_error err;
	struct kc_pending *next;
};

struct kc_pending_list {
	uint64_t next_id;
	struct kc_pending *head;
};

/* Gives q the list's next id and puts it in the list. */
void kc_pending_add(struct kc_pending_list *l, struct kc_pending *q);

/* Takes q out of the list if it is there. */
void kc_pending_remove(struct kc_pending_list *l, struct kc_pending *q);

/* The entry waiting for `id`, or NULL (unknown, or timed out and gone). */
struct kc_pending *kc_pending_find(struct kc_pending_list *l, uint64_t id);

/* Completes q (may be NULL) with a reference to result, or e when result
 * is NULL; true if it did, false if q is NULL or done already.  The owner
 * then wakes its waiters. */
bool kc_pending_complete(struct kc_pending *q, json_t *result, const struct kc_error *e);

/* A done entry's outcome: 0 with *ret_result (the caller's reference), or
 * -1 with the peer's error in err. */
int kc_pending_outcome(struct kc_pending *q, json_t **ret_result, struct kc_error *err);

/* Reads a "response" message whose v, type and keys the caller has
 * checked: *ret_id, and either *ret_result (borrowed from msg) or, for an
 * error response, NULL there and the peer's error in *ret_e.  -1 (err) if
 * it is malformed. */
int kc_pending_parse_response(const json_t *msg, uint64_t *ret_id, json_t **ret_result,
			      struct kc_error *ret_e, struct kc_error *err);
