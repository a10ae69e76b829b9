/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_backend.h - what pool.c and the pool backends share (not for
 * callers: they use pool.h).  A backend's handle starts with struct
 * kc_pool; kc_pool_open() picks the backend by type.
 */
#pragma once

#include "pool.h"

struct kc_pool {
	const struct kc_pool_ops *ops;
	struct kc_agent *agent;
	struct kc_pool_def def; /* a copy, owned */
};

/* Each returns a new handle (def copied into it), not yet ensured. */
struct kc_pool *kc_pool_libvirt_new(struct kc_agent *a, const struct kc_pool_def *def,
				    struct kc_error *err);
struct kc_pool *kc_pool_nfs_new(struct kc_agent *a, const struct kc_pool_def *def,
				struct kc_error *err);

/* Deep copy (strings strdup'd). */
int kc_pool_def_copy(struct kc_pool_def *dst, const struct kc_pool_def *src, struct kc_error *err);
/* "<vol>" checked with kc_name_validate as "volume name". */
int kc_pool_vol_name_check(const char *vol, struct kc_error *err);
/* The libvirt volume XML of an empty (sparse) volume (pool_libvirt.c). */
int kc_pool_vol_xml(const char *vol, enum kc_pool_type type, enum kc_vol_format fmt,
		    uint64_t capacity, char **ret_xml, struct kc_error *err);
