/* SPDX-License-Identifier: Apache-2.0 */
/* db_vms.h - VM records: what kvmcloud was asked to create, and by whom. */
#pragma once

#include "db.h"

/* One VM record to insert; strings borrowed. */
struct kc_db_vm {
	const char *name;
	const char *host;  /* the host it was placed on */
	const char *state; /* "creating" while the create runs */
	const char *owner; /* user name */
	const json_t *request;
	/* Runs in the scheduler's insert transaction, after the row is in
	 * (guest network addresses, ipam.h); may run more than once, as the
	 * transaction may be retried.  NULL: nothing. */
	int (*in_tx)(struct kc_db *tx, const char *host, void *opaque, struct kc_error *err);
	void *in_tx_opaque;
};

/* Inserts the record; its sizes (for quotas) come from the request.  A
 * duplicate name is KC_ERR_CONFLICT "VM "x" already exists".  With
 * check_quota, the owner's quotas are checked in the same transaction:
 * an overrun is KC_ERR_FORBIDDEN naming the quota. */
int kc_db_vm_insert(struct kc_db *db, const struct kc_db_vm *vm, bool check_quota,
		    struct kc_error *err);
/* uuid may be NULL (left unchanged).  Missing row: KC_ERR_NOT_FOUND. */
int kc_db_vm_update(struct kc_db *db, const char *name, const char *uuid, const char *state,
		    struct kc_error *err);
/* Updates the state unless the row is 'creating' (owned by a running
 * create); a missing row is not an error. */
int kc_db_vm_note_state(struct kc_db *db, const char *name, const char *state,
			struct kc_error *err);
/* A missing row is not an error. */
int kc_db_vm_delete(struct kc_db *db, const char *name, struct kc_error *err);
/* {"name","uuid","host","state","request","created_at","updated_at","owner","vcpus",
 *  "memory_mib","disk_gib"}, request parsed; a missing row is KC_ERR_NOT_FOUND. */
int kc_db_vm_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* Every record by name, or only `owner`'s (NULL: all). */
int kc_db_vm_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err);
/* The sizes a request asks for: vCPUs, memory, disk (root + data disks). */
void kc_db_vm_sizes(const json_t *request, int64_t *ret_vcpus, int64_t *ret_memory_mib,
		    int64_t *ret_disk_gib);
