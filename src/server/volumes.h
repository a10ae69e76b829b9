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
