/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm_ops.h - the long VM operations, one function each (api_vms.c), run by
 * jobs.c whether the request is synchronous or asynchronous.  Each returns
 * 0 with *ret the JSON the API answers with (a new reference), or -1 with
 * err set; none touches an HTTP request.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

struct kc_server;

/* Progress of a running operation, 0..100 (may be called from any thread). */
typedef void (*kc_progress_fn)(void *opaque, int percent);

/* POST /api/v1/vms: `request` is the body (VMRequest plus optional "host");
 * the record is owned by `owner`.  *ret is the VM object.  progress (may be
 * NULL) hears 30 once the record is in, 90 once the host has made the VM. */
int kc_vm_op_create(struct kc_server *srv, const char *owner, const json_t *request,
		    kc_progress_fn progress, void *opaque, json_t **ret, struct kc_error *err);
/* vm.start, vm.shutdown ({"timeout_s","force"}), vm.reboot, vm.destroy on a
 * managed, settled VM; *ret is the VM object (plus "forced" for shutdown). */
int kc_vm_op_action(struct kc_server *srv, const char *op, const char *name, const json_t *args,
		    json_t **ret, struct kc_error *err);
/* DELETE /api/v1/vms/{name}; *ret is {"deleted", "disks_deleted"}. */
int kc_vm_op_delete(struct kc_server *srv, const char *name, bool keep_disks, bool snapshots,
		    json_t **ret, struct kc_error *err);
/* vm.snapshot.create (*ret the Snapshot) and vm.snapshot.revert (*ret the
 * VM) of VM `vm` with the job's args (api_snapshots.c). */
int kc_snapshot_op(struct kc_server *srv, const char *kind, const char *vm, const json_t *args,
		   json_t **ret, struct kc_error *err);
