/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c - the pool operations over the backend table (pool.h), the
 * capacity rule, and the agent's pool.* operations as JSON.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"
#include "pool_backend.h"

int kc_pool_open(struct kc_agent *a, const struct kc_pool_def *def, struct kc_pool **ret,
		 struct kc_error *err)
{
	struct kc_pool *p = def->type == KC_POOL_NFS ? kc_pool_nfs_new(a, def, err)
						     : kc_pool_libvirt_new(a, def, err);
	if (!p)
		return -1;
	if (p->ops->ensure && p->ops->ensure(p, err) < 0) {
		kc_pool_close(p);
		return -1;
	}
	*ret = p;
	return 0;
}

void kc_pool_close(struct kc_pool *p)
{
	if (!p)
		return;
	kc_pool_def_clear(&p->def);
	p->ops->close(p);
}

const struct kc_pool_def *kc_pool_get_def(const struct kc_pool *p)
{
	return &p->def;
}

static int cannot(const struct kc_pool *p, const char *what, struct kc_error *err)
{
	return kc_error_set(err, KC_ERR_INVALID, "a %s pool cannot %s",
			    kc_pool_type_name(p->def.type), what);
}

int kc_pool_volumes(struct kc_pool *p, struct kc_pool_vol **ret, size_t *ret_n,
		    struct kc_error *err)
{
	if (!p->ops->volumes)
		return cannot(p, "list volumes", err);
	return p->ops->volumes(p, ret, ret_n, err);
}

int kc_pool_info(struct kc_pool *p, struct kc_pool_info *ret, struct kc_error *err)
{
	struct kc_pool_info info = {0};
	struct kc_pool_vol *vols = NULL;
	size_t n = 0;

	if (p->ops->info(p, &info, err) < 0 || kc_pool_volumes(p, &vols, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		info.virtual += vols[i].capacity;
	info.volumes = n;
	kc_pool_vols_free(vols, n);
	*ret = info;
	return 0;
}

#define GIB(x) ((x) / (double)(1024ULL * 1024 * 1024))

int kc_pool_check_overcommit(const char *pool, const struct kc_pool_info *info,
			     unsigned overcommit_pct, uint64_t add, struct kc_error *err)
{
	/* In 128-bit so that 64 TiB x 10 cannot wrap. */
	unsigned __int128 limit = (unsigned __int128)info->capacity * overcommit_pct / 100;
	unsigned __int128 want = (unsigned __int128)info->virtual + add;
	if (want <= limit)
		return 0;
	return kc_error_set(err, KC_ERR_NO_CAPACITY,
			    "pool \"%s\" is full: its volumes hold %.2f GiB of %.2f GiB capacity "
			    "x %.2f overcommit = %.2f GiB; %.2f GiB more does not fit",
			    pool, GIB(info->virtual), GIB(info->capacity), overcommit_pct / 100.0,
			    GIB((double)limit), GIB(add));
}

int kc_pool_vol_create(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
		       uint64_t capacity, struct kc_error *err)
{
	struct kc_pool_info info;

	if (kc_pool_vol_name_check(vol, err) < 0)
		return -1;
	if (capacity == 0 || capacity > KC_POOL_VOL_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "volume size must be from 1 byte to 64 TiB, not %" PRIu64,
				    capacity);
	if (!p->ops->vol_create)
		return cannot(p, "create volumes (make them on the storage itself)", err);
	if (kc_pool_info(p, &info, err) < 0)
		return -1;
	if (strcmp(p->def.name, KC_POOL_DEFAULT_NAME) == 0) {
		/* The default pool keeps its rule: every byte reserved. */
		if (capacity > info.available)
			return kc_error_set(err, KC_ERR_NO_CAPACITY,
					    "pool \"default\" has %.2f GiB available, the volume "
					    "needs %.2f GiB",
					    GIB(info.available), GIB(capacity));
	} else if (kc_pool_check_overcommit(p->def.name, &info, p->def.overcommit_pct, capacity,
					    err) < 0) {
		return -1;
	}
	return p->ops->vol_create(p, vol, fmt, capacity, err);
}

int kc_pool_vol_delete(struct kc_pool *p, const char *vol, struct kc_error *err)
{
	if (kc_pool_vol_name_check(vol, err) < 0)
		return -1;
	if (!p->ops->vol_delete)
		return cannot(p, "delete volumes", err);
	return p->ops->vol_delete(p, vol, err);
}

int kc_pool_vol_disk(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
		     struct kc_pool_disk *ret, struct kc_error *err)
{
	if (kc_pool_vol_name_check(vol, err) < 0)
		return -1;
	return p->ops->disk(p, vol, fmt, ret, err);
}

int kc_pool_vol_resize(struct kc_pool *p, const char *vol, uint64_t capacity, struct kc_error *err)
{
	if (kc_pool_vol_name_check(vol, err) < 0)
		return -1;
	if (!p->ops->vol_resize)
		return cannot(p, "resize volumes", err);
	return p->ops->vol_resize(p, vol, capacity, err);
}

int kc_pool_vol_write(struct kc_pool *p, const char *vol, uint64_t offset, const void *buf,
		      size_t len, struct kc_error *err)
{
	if (kc_pool_vol_name_check(vol, err) < 0)
		return -1;
	if (!p->ops->vol_write)
		return cannot(p, "take uploads", err);
	return p->ops->vol_write(p, vol, offset, buf, len, err);
}

int kc_pool_check_writable(const struct kc_pool *p, struct kc_error *err)
{
	return p->ops->vol_write ? 0 : cannot(p, "take uploads", err);
}

int kc_pool_vol_read(struct kc_pool *p, const char *vol, uint64_t offset, void *buf, size_t len,
		     size_t *ret_n, uint64_t *ret_size, struct kc_error *err)
{
	if (kc_pool_vol_name_check(vol, err) < 0)
		return -1;
	if (!p->ops->vol_read)
		return cannot(p, "give downloads", err);
	return p->ops->vol_read(p, vol, offset, buf, len, ret_n, ret_size, err);
}

int kc_pool_remove(struct kc_pool *p, struct kc_error *err)
{
	if (strcmp(p->def.name, KC_POOL_DEFAULT_NAME) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "the default pool cannot be removed");
	return p->ops->remove ? p->ops->remove(p, err) : 0;
}

/* ---- the agent's operations ---- */

int kc_agent_pool_ensure(struct kc_agent *a, const struct kc_pool_def *def, json_t **ret,
			 struct kc_error *err)
{
	struct kc_pool *p = NULL;
	if (kc_pool_open(a, def, &p, err) < 0)
		return -1;
	char lv[KC_NAME_MAX + 8];
	if (strcmp(def->name, KC_POOL_DEFAULT_NAME) == 0)
		snprintf(lv, sizeof(lv), "%s", a->pool_name);
	else
		snprintf(lv, sizeof(lv), KC_POOL_LIBVIRT_PREFIX "%s", def->name);
	json_t *r =
		json_pack("{s:s,s:s,s:s?}", "name", def->name, "type", kc_pool_type_name(def->type),
			  "libvirt_pool", def->type == KC_POOL_NFS ? NULL : lv);
	kc_pool_close(p);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

int kc_agent_pool_info(struct kc_agent *a, const struct kc_pool_def *def, json_t **ret,
		       struct kc_error *err)
{
	struct kc_pool *p = NULL;
	struct kc_pool_info info;
	if (kc_pool_open(a, def, &p, err) < 0)
		return -1;
	int r = kc_pool_info(p, &info, err);
	kc_pool_close(p);
	if (r < 0)
		return -1;
	json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "capacity", (json_int_t)info.capacity,
			      "allocation", (json_int_t)info.allocation, "available",
			      (json_int_t)info.available, "virtual", (json_int_t)info.virtual,
			      "volumes", (json_int_t)info.volumes, "overcommit",
			      def->overcommit_pct / 100.0);
	if (!j)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = j;
	return 0;
}

int kc_agent_pool_volumes(struct kc_agent *a, const struct kc_pool_def *def, json_t **ret,
			  struct kc_error *err)
{
	struct kc_pool *p = NULL;
	struct kc_pool_vol *vols = NULL;
	size_t n = 0;
	if (kc_pool_open(a, def, &p, err) < 0)
		return -1;
	int r = kc_pool_volumes(p, &vols, &n, err);
	kc_pool_close(p);
	if (r < 0)
		return -1;
	_cleanup_json_ json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(
			    arr, json_pack("{s:s,s:s,s:I,s:I}", "name", vols[i].name, "format",
					   kc_vol_format_name(vols[i].format), "capacity",
					   (json_int_t)vols[i].capacity, "allocation",
					   (json_int_t)vols[i].allocation)) < 0) {
			kc_pool_vols_free(vols, n);
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
	kc_pool_vols_free(vols, n);
	json_t *j = arr ? json_pack("{s:O}", "volumes", arr) : NULL;
	if (!j)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = j;
	return 0;
}

int kc_agent_pool_remove(struct kc_agent *a, const struct kc_pool_def *def, struct kc_error *err)
{
	if (strcmp(def->name, KC_POOL_DEFAULT_NAME) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "the default pool cannot be removed");
	struct kc_pool *p = def->type == KC_POOL_NFS ? kc_pool_nfs_new(a, def, err)
						     : kc_pool_libvirt_new(a, def, err);
	if (!p)
		return -1;
	int r = kc_pool_remove(p, err);
	kc_pool_close(p);
	return r;
}
