/* SPDX-License-Identifier: Apache-2.0 */
/* reconcile.h - bringing VM records in line with libvirt. */
#pragma once

#include <stdio.h>

#include "server.h"

/* VM records and libvirt's VMs are matched by name: an object mapping each
 * element's "name" to the element (new references; elements without a
 * string "name" are skipped).  NULL if out of memory. */
json_t *kc_index_by_name(const json_t *array);

/* At start-up: settles records a killed server left in state 'creating'
 * (kept with libvirt's state if the domain exists, deleted otherwise; the
 * agent removes orphan volumes on its side) and refreshes every other
 * record's state.  Notes what it did on `log`. */
int kc_reconcile_startup(struct kc_server *srv, FILE *log, struct kc_error *err);

/* The agent's event callback (kc_agent_event_fn); opaque is the server.
 * Runs on the agent's event thread: one short UPDATE, nothing else. */
void kc_reconcile_event(const char *vm_name, const char *event, void *opaque);
