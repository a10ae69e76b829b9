/* SPDX-License-Identifier: Apache-2.0 */
/* db_volumes.h - the volumes table (schema version 10; docs/storage.md
 * "Volumes").  States: "creating" (the record claims the name while the
 * host makes the volume), "ready", "uploading" (received_bytes of
 * upload_bytes so far), "attaching", "detaching", "deleting" (a host call
 * under way: other changes wait). */
#pragma once

#include "db.h"

/* A record to insert; strings borrowed.  host may be NULL (no host yet). */
struct kc_db_volume {
	const char *name, *pool, *host, *format, *owner;
	int64_t capacity_bytes;
};

/* Inserts in state "creating".  With check_quota, in one transaction
 * with the owner's max_disk_gib check (VM disks and volumes together,
 * volumes counted in whole GiB rounded up): over it is KC_ERR_FORBIDDEN.
 * A taken name is KC_ERR_CONFLICT. */
int kc_db_volume_insert(struct kc_db *db, const struct kc_db_volume *v, bool check_quota,
			struct kc_error *err);
/* The row; a missing one is KC_ERR_NOT_FOUND "volume "x" not found". */
int kc_db_volume_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* By name: every volume (owner NULL) or the owner's. */
int kc_db_volume_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err);
/* A missing row is not an error. */
int kc_db_volume_delete(struct kc_db *db, const char *name, struct kc_error *err);
/* Moves from state `from` (NULL: any) to `to`; KC_ERR_CONFLICT when the
 * volume is not in `from` (or is attached, with detached_only). */
int kc_db_volume_set_state(struct kc_db *db, const char *name, const char *from, const char *to,
			   bool detached_only, struct kc_error *err);
/* A new capacity (grow only), with the quota check as at insert. */
int kc_db_volume_resize(struct kc_db *db, const char *name, int64_t capacity, bool check_quota,
			struct kc_error *err);
/* The capacity as it is, no checks (undoing a resize the host refused). */
int kc_db_volume_set_capacity(struct kc_db *db, const char *name, int64_t capacity,
			      struct kc_error *err);
/* Records the attachment of a volume in state "attaching" (set with
 * kc_db_volume_set_state before the host call), back to "ready";
 * KC_ERR_CONFLICT otherwise.  detach clears it (state "ready" or
 * "detaching"), back to "ready". */
int kc_db_volume_attach(struct kc_db *db, const char *name, const char *vm, const char *target,
			struct kc_error *err);
int kc_db_volume_detach(struct kc_db *db, const char *name, struct kc_error *err);
/* Upload bookkeeping: claims bytes [offset, offset+len) of a `total`-byte
 * upload before they are sent (offset 0 starts a new upload of a ready or
 * uploading, detached volume; any other offset must be the bytes received
 * so far), so that two uploads cannot interleave.  KC_ERR_CONFLICT names
 * what is expected. */
int kc_db_volume_upload_claim(struct kc_db *db, const char *name, uint64_t offset, uint64_t len,
			      uint64_t total, struct kc_error *err);
/* Back to "ready" (an upload finished or was given up). */
int kc_db_volume_upload_end(struct kc_db *db, const char *name, struct kc_error *err);
/* The owner's volumes in whole GiB (each rounded up), for disk quotas;
 * db may be a transaction. */
int kc_db_volume_gib_used(struct kc_db *db, const char *owner, int64_t *ret, struct kc_error *err);
/* The volumes attached to `vm` (names, a JSON array). */
int kc_db_volume_attached(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err);

/* Crash settlement (volume_reconcile.c): only while the row is still in
 * state `from`.  KC_VOL_SETTLE_DROP deletes it (its quota goes with it);
 * _READY moves it to "ready" (an interrupted upload keeps upload_bytes
 * and received_bytes: they mark its content as partial); _ATTACHED to
 * "ready" attached to vm at target; _DETACHED to "ready" with the
 * attachment cleared.  *ret_changed: whether the row was in `from`. */
enum kc_vol_settle {
	KC_VOL_SETTLE_DROP,
	KC_VOL_SETTLE_READY,
	KC_VOL_SETTLE_ATTACHED,
	KC_VOL_SETTLE_DETACHED,
};
int kc_db_volume_settle(struct kc_db *db, const char *name, const char *from,
			enum kc_vol_settle how, const char *vm, const char *target,
			bool *ret_changed, struct kc_error *err);
