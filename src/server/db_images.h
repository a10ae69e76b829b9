/* SPDX-License-Identifier: Apache-2.0 */
/* db_images.h - the image library's records (table images, docs/storage.md
 * "Image library"). */
#pragma once

#include "db.h"

/* A record to insert; strings borrowed.  state: "pending" (an upload
 * under way), "downloading" (a URL job), "ready", "error". */
struct kc_db_image {
	const char *name, *kind, *format, *os_type, *sha256, *source, *state, *owner;
	int64_t size_bytes;	    /* < 0: NULL */
	int64_t virtual_size_bytes; /* < 0: NULL */
};

/* A duplicate name is KC_ERR_CONFLICT "image "x" already exists". */
int kc_db_image_insert(struct kc_db *db, const struct kc_db_image *img, struct kc_error *err);
/* The row (every column); a missing one is KC_ERR_NOT_FOUND. */
int kc_db_image_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* By name: every image (viewer NULL), or the ready ones plus viewer's own. */
int kc_db_image_list(struct kc_db *db, const char *viewer, json_t **ret, struct kc_error *err);
/* The image passed its checks: state ready with its facts. */
int kc_db_image_set_ready(struct kc_db *db, const char *name, int64_t size, int64_t vsize,
			  const char *sha256, struct kc_error *err);
/* state (and error text, may be NULL); a missing row is not an error. */
int kc_db_image_set_state(struct kc_db *db, const char *name, const char *state, const char *error,
			  struct kc_error *err);
/* A missing row is not an error. */
int kc_db_image_delete(struct kc_db *db, const char *name, struct kc_error *err);
/* The names of VM records whose request names the image as "image" or
 * "iso" (a JSON array, at most 10). */
int kc_db_image_users(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
