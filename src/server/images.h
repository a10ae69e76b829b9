/* SPDX-License-Identifier: Apache-2.0 */
/*
 * images.h - the image library (CloudStack's secondary storage; docs/storage.md,
 * "Image library"): templates and ISOs in <data-dir>/images/<name><ext>,
 * one record each (db_images.h).
 *   image_store.c  the store: validating and moving files into place, URL
 *                  downloads (libcurl), upload chunks, adoption at start-up;
 *   image_dist.c   making sure a host has an image before vm.create;
 *   api_images.c   the routes.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "error.h"
#include "vm_ops.h"

struct kc_server;
struct kc_call;

/* The largest image the store takes (download or upload). */
#define KC_IMAGE_MAX_BYTES (64ULL << 30)
/* The largest chunk of PUT /api/v1/images/{name}/data. */
#define KC_IMAGE_UPLOAD_CHUNK (1024 * 1024)

/* At start-up: creates <data-dir>/images, registers (owner admin, source
 * "adopted") each valid <name>.qcow2|.raw|.iso there without a record,
 * marks downloads a dead run left as failed.  Never fails the start for
 * one bad file (it is named on `log`). */
int kc_image_store_open(struct kc_server *srv, FILE *log, struct kc_error *err);
/* <data-dir>/images/<name><ext> (malloc'd), name validated. */
char *kc_image_store_path(struct kc_server *srv, const char *name, const char *format, bool part,
			  struct kc_error *err);

/* --image-ca FILE (trusted for https image URLs besides the system's CAs,
 * docs/storage.md): checks that FILE is a readable regular file holding at
 * least one PEM certificate; *ret its absolute path (malloc'd). */
int kc_image_ca_check(const char *file, char **ret, struct kc_error *err);

/* The job kinds "image.register" (a URL download): run by jobs.c. */
int kc_image_op_run(struct kc_server *srv, const char *kind, const char *target, const char *owner,
		    const json_t *args, kc_progress_fn progress, void *opaque, json_t **ret,
		    struct kc_error *err);

/* Upload: appends `len` bytes at `offset` (which must be the bytes received
 * so far) to the pending image's part file; *ret_received the new total. */
int kc_image_upload_chunk(struct kc_server *srv, const json_t *row, uint64_t offset,
			  const void *data, size_t len, uint64_t *ret_received,
			  struct kc_error *err);
/* Bytes received so far of a pending upload. */
uint64_t kc_image_upload_received(struct kc_server *srv, const json_t *row);
/* Checks the part file (size, sha256, content) and makes the image ready;
 * on refusal removes the part file (the caller removes the record). */
int kc_image_finish(struct kc_server *srv, const json_t *row, const char *sha256,
		    struct kc_error *err);
/* Removes the stored file, its verified record and any part file. */
void kc_image_store_remove(struct kc_server *srv, const char *name, const char *format);

/* Before vm.create on `host`: for the request's "image" and "iso" that are
 * library records, makes sure the host holds them with their SHA-256
 * (image.ensure, then image.put chunks and image.commit when missing).
 * Names without a record are left to the host (files placed by hand). */
int kc_images_ensure_for_vm(struct kc_server *srv, const char *host, const json_t *request,
			    struct kc_error *err);

/* After a delete (image_cleanup.c): asks every reachable host to remove
 * the ready image's cached copy and its linked-clone bases in the pools the
 * host has (image.forget); what a disk still uses stays.  The report:
 * {"hosts": [each host's answer or {"host","error"}], "not_reached": [..]}. */
json_t *kc_images_forget_on_hosts(struct kc_server *srv, const json_t *row);
/* POST /api/v1/pools/{name}/prune (image_cleanup.c, admin only). */
int kc_api_pool_prune(struct kc_call *c, struct kc_error *err);

/* The API object of a record. */
json_t *kc_image_view(const json_t *row);

/* Routes (api_images.c). */
int kc_api_images_list(struct kc_call *c, struct kc_error *err);
int kc_api_image_create(struct kc_call *c, struct kc_error *err);
int kc_api_image_show(struct kc_call *c, struct kc_error *err);
int kc_api_image_delete(struct kc_call *c, struct kc_error *err);
int kc_api_image_data(struct kc_call *c, struct kc_error *err);
int kc_api_image_commit(struct kc_call *c, struct kc_error *err);
