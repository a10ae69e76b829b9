/* SPDX-License-Identifier: Apache-2.0 */
/*
 * volumes.h - data volumes (docs/storage.md "Volumes"): the routes of
 * /api/v1/volumes (api_volumes.c) over the table of db_volumes.h and the
 * agents' vol.* operations.
 */
#pragma once

#include "error.h"

struct kc_server;
struct kc_call;

int kc_api_volumes_list(struct kc_call *c, struct kc_error *err);
int kc_api_volume_create(struct kc_call *c, struct kc_error *err);
int kc_api_volume_show(struct kc_call *c, struct kc_error *err);
int kc_api_volume_delete(struct kc_call *c, struct kc_error *err);
int kc_api_volume_resize(struct kc_call *c, struct kc_error *err);
int kc_api_volume_attach(struct kc_call *c, struct kc_error *err);
int kc_api_volume_detach(struct kc_call *c, struct kc_error *err);
int kc_api_volume_upload(struct kc_call *c, struct kc_error *err);
int kc_api_volume_download(struct kc_call *c, struct kc_error *err);

/* Before a VM is deleted: KC_ERR_CONFLICT naming the volumes still
 * attached to it (a VM's disks go with it; a volume is data that must
 * not). */
int kc_volumes_vm_check_free(struct kc_server *srv, const char *vm, struct kc_error *err);

/* ---- crash settlement (volume_reconcile.c, docs/storage.md "Crash
 * safety") ---- */

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

struct kc_db;

/* A volume request of this server in flight: from before it changes the
 * row until it has answered, settlements leave the volume alone.  enter
 * returns NULL only when out of memory; leave accepts a NULL guard and is
 * a cleanup function: _cleanup_(kc_volume_busy_leave). */
struct kc_volume_busy;
struct kc_volume_busy *kc_volume_busy_enter(struct kc_server *srv, const char *name);
void kc_volume_busy_leave(struct kc_volume_busy **b);
bool kc_volume_busy(struct kc_server *srv, const char *name);

/* What the hosts say about a volume row (opaque: the caller's). */
struct kc_volume_truth_ops {
	/* Is the row settled at `host`'s hello? */
	bool (*concerns)(void *opaque, const json_t *row, const char *host);
	/* Does the row's pool hold the volume: 1, 0, or -1 (cannot tell). */
	int (*present)(void *opaque, const json_t *row);
	/* Is the volume a disk of a domain: 1 (*ret_vm, *ret_target set,
	 * malloc'd, for a row in "attaching"), 0, or -1 (cannot tell). */
	int (*attachment)(void *opaque, const json_t *row, char **ret_vm, char **ret_target);
	/* Makes the volume again, empty (0, or -1). */
	int (*remake)(void *opaque, const json_t *row);
};

/* The rules, for every row (host NULL) or the rows `host` concerns, in a
 * transitional state and not busy in `srv` (a key: not dereferenced):
 *   creating, deleting  -> "ready" if the pool has the volume, else the
 *                          row is removed (its quota with it);
 *   uploading           -> "ready", the upload's counters kept to show
 *                          the content is partial (made again empty if
 *                          the pool lost it);
 *   attaching           -> attached to the domain that has the disk, or
 *                          "ready" detached;
 *   detaching           -> still attached if the VM's domain has it at
 *                          the target, else detached.
 * A row the hosts cannot tell about stays as it is.  Each change is made
 * only if the row is still in the state judged.  Notes each on `log`
 * (may be NULL); *ret_settled (may be NULL) counts them. */
int kc_volume_settle(struct kc_server *srv, struct kc_db *db, const char *host,
		     const struct kc_volume_truth_ops *ops, void *opaque, FILE *log,
		     unsigned *ret_settled, struct kc_error *err);
/* kc_volume_settle for `host` against its agent (pool.volumes, vm.list,
 * vm.show, vol.create), asking only hosts this server holds. */
int kc_volume_reconcile_host(struct kc_server *srv, const char *host, FILE *log,
			     struct kc_error *err);
/* The same on a thread of its own (the hello's thread must go on reading
 * the link), followed by kc_net_after_hello (hostfw_push.h) with the
 * link's `address` (may be NULL); errors go to stderr. */
void kc_volume_reconcile_spawn(struct kc_server *srv, const char *host, const char *address);
/* Waits for the threads of kc_volume_reconcile_spawn; none start after. */
void kc_volume_reconcile_stop(struct kc_server *srv);
