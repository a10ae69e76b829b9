/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clones.h - VMs from templates in any pool, and VMs made into templates
 * (docs/storage.md, "Clones"):
 *   vm_clone.c     the pool of a create: where it may be placed, its
 *                  definition sent with vm.create, a full copy's progress;
 *   api_template.c POST /api/v1/vms/{name}/template and its job.
 */
#pragma once

#include <jansson.h>

#include "error.h"
#include "vm_ops.h"

struct kc_server;
struct kc_call;

/* Checks the "pool" of a create body (absent or "default": nothing to
 * check): the pool must exist (KC_ERR_NOT_FOUND), and a host or cluster
 * the body names must be one the pool is on (KC_ERR_INVALID). */
int kc_vm_pool_check(struct kc_server *srv, const json_t *body, struct kc_error *err);
/* Placement for a create in a pool: *ret_body (new, or NULL when the body
 * is fine as it is) is the body with the pool's cluster as "cluster";
 * *ret_host (malloc'd, or NULL) the pool's host when it belongs to one. */
int kc_vm_pool_place(struct kc_server *srv, const json_t *body, const char *requested,
		     json_t **ret_body, char **ret_host, struct kc_error *err);
/* vm.create of `stored` (the VM request) on `host`, with the pool's
 * definition added for a pool other than "default"; while a full clone
 * copies, its percentage reaches progress (may be NULL) as 30..90. */
int kc_vm_create_call(struct kc_server *srv, const char *host, const json_t *stored,
		      kc_progress_fn progress, void *opaque, json_t **ret, struct kc_error *err);

/* The job kind "vm.template" ({"image","os_type"?} for VM `vm`): the host
 * flattens the stopped VM's root disk, the server reads it back in chunks
 * into its image store, checks it as an upload and registers it, owned by
 * `owner`.  *ret is the Image object. */
int kc_template_op(struct kc_server *srv, const char *vm, const char *owner, const json_t *args,
		   kc_progress_fn progress, void *opaque, json_t **ret, struct kc_error *err);
/* POST /api/v1/vms/{name}/template. */
int kc_api_vm_template(struct kc_call *c, struct kc_error *err);
