/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_nfs.c - NFS pools without a kernel mount: the agent manages volumes
 * through libnfs (NFSv3, the server found through its portmapper, as QEMU
 * finds it), and guests reach them through QEMU's own nfs:// block driver
 * (libvirt <disk type='network'><source protocol='nfs'>).  There is no
 * libvirt pool: libvirt's netfs pool would need the kernel NFS client.
 * Volumes are the regular files at the top of the export.  qcow2 volumes
 * are made with qemu-img on the nfs:// URL (format stated, argv only).
 * Volume data moves through libnfs (vol_write, vol_read); resize and the
 * upload check run qemu-img on the URL with the recorded format.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "imgcheck.h"
#include "pool_backend.h"

#define NFS_TIMEOUT_MS 15000
#define QEMU_IMG       "/usr/bin/qemu-img"
#define NFS_IO_MAX     (1U << 20) /* bytes per pread/pwrite call */

struct nfs_pool {
	struct kc_pool base;
	struct nfs_context *nfs;
};

static int nfs_fail(struct nfs_pool *p, int rc, const char *what, const char *vol,
		    struct kc_error *err)
{
	const char *msg = p->nfs ? nfs_get_error(p->nfs) : NULL;
	enum kc_errcode code = rc == -ENOENT   ? KC_ERR_NOT_FOUND
			       : rc == -EEXIST ? KC_ERR_CONFLICT
			       : rc == -ENOSPC ? KC_ERR_NO_CAPACITY
					       : KC_ERR_UNAVAILABLE;
	return kc_error_set(err, code, "NFS pool \"%s\" (%s:%s): %s%s%s: %s", p->base.def.name,
			    p->base.def.server, p->base.def.export_path, what, vol ? " " : "",
			    vol ? vol : "", msg && *msg ? msg : strerror(-rc));
}

static int nfs_ensure(struct kc_pool *base, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;

	if (p->nfs)
		return 0;
	p->nfs = nfs_init_context();
	if (!p->nfs)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot make an NFS context");
	nfs_set_timeout(p->nfs, NFS_TIMEOUT_MS);
	int rc = nfs_mount(p->nfs, base->def.server, base->def.export_path);
	if (rc < 0)
		return nfs_fail(p, rc, "mounting", NULL, err);
	return 0;
}

static int nfs_info(struct kc_pool *base, struct kc_pool_info *ret, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfs_statvfs_64 st;

	int rc = nfs_statvfs64(p->nfs, "/", &st);
	if (rc < 0)
		return nfs_fail(p, rc, "statvfs", NULL, err);
	uint64_t bs = st.f_frsize ? st.f_frsize : st.f_bsize;
	ret->capacity = st.f_blocks * bs;
	ret->available = st.f_bavail * bs;
	ret->allocation = (st.f_blocks - st.f_bfree) * bs;
	return 0;
}

/* The virtual size of a volume: from the qcow2 header if it has one, else
 * the file's size.  Only for listing: a volume is always opened with the
 * format its owner recorded, never with what its header says. */
static void vol_probe(struct nfs_pool *p, const char *path, uint64_t size, struct kc_pool_vol *v)
{
	struct nfsfh *fh = NULL;
	unsigned char h[32];

	v->format = KC_VOL_RAW;
	v->capacity = size;
	if (nfs_open(p->nfs, path, O_RDONLY, &fh) < 0)
		return;
	if (nfs_pread(p->nfs, fh, 0, sizeof(h), h) == (int)sizeof(h) && h[0] == 'Q' &&
	    h[1] == 'F' && h[2] == 'I' && h[3] == 0xfb) {
		uint64_t vs = 0;
		for (int i = 24; i < 32; i++)
			vs = vs << 8 | h[i];
		v->format = KC_VOL_QCOW2;
		v->capacity = vs;
	}
	nfs_close(p->nfs, fh);
}

static int nfs_volumes(struct kc_pool *base, struct kc_pool_vol **ret, size_t *ret_n,
		       struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfsdir *dir = NULL;
	struct nfsdirent *ent;
	struct kc_pool_vol *out = NULL;
	size_t n = 0, cap = 0;

	int rc = nfs_opendir(p->nfs, "/", &dir);
	if (rc < 0)
		return nfs_fail(p, rc, "listing", NULL, err);
	while ((ent = nfs_readdir(p->nfs, dir))) {
		/* NF3REG is 1 (libnfs-raw-nfs.h). */
		if (!(ent->type == 1 || S_ISREG(ent->mode)) || ent->name[0] == '.')
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct kc_pool_vol *o = realloc(out, nc * sizeof(*o));
			if (!o)
				goto oom;
			out = o;
			cap = nc;
		}
		char path[KC_NAME_MAX + 512];
		snprintf(path, sizeof(path), "/%s", ent->name);
		out[n] = (struct kc_pool_vol){.name = strdup(ent->name), .allocation = ent->used};
		if (!out[n].name)
			goto oom;
		vol_probe(p, path, ent->size, &out[n]);
		n++;
	}
	nfs_closedir(p->nfs, dir);
	*ret = out;
	*ret_n = n;
	return 0;
oom:
	nfs_closedir(p->nfs, dir);
	kc_pool_vols_free(out, n);
	return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* nfs://server/export/vol: every part checked by pool_def.c and
 * kc_name_validate, so nothing in it needs escaping. */
static char *vol_url(const struct kc_pool_def *d, const char *vol)
{
	char *url = NULL;
	if (asprintf(&url, "nfs://%s%s/%s", d->server, d->export_path, vol) < 0)
		return NULL;
	return url;
}

/* Sizes a file just created (fh open) and closes it; on failure the file
 * is removed, so a half-made volume never stays. */
static int size_new(struct nfs_pool *p, struct nfsfh *fh, const char *path, uint64_t size,
		    const char *vol, struct kc_error *err)
{
	int rc = nfs_ftruncate(p->nfs, fh, size);
	nfs_close(p->nfs, fh);
	if (rc < 0) {
		nfs_unlink(p->nfs, path);
		return nfs_fail(p, rc, "sizing", vol, err);
	}
	return 0;
}

static int nfs_vol_create(struct kc_pool *base, const char *vol, enum kc_vol_format fmt,
			  uint64_t capacity, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfsfh *fh = NULL;
	char path[KC_NAME_MAX + 2];

	snprintf(path, sizeof(path), "/%s", vol);
	/* O_EXCL: an existing file is never truncated. */
	int rc = nfs_create(p->nfs, path, O_CREAT | O_EXCL | O_WRONLY, 0600, &fh);
	if (rc < 0)
		return rc == -EEXIST ? kc_error_set(err, KC_ERR_CONFLICT,
						    "volume \"%s\" exists in pool \"%s\"", vol,
						    base->def.name)
				     : nfs_fail(p, rc, "creating", vol, err);
	if (fmt == KC_VOL_RAW)
		return size_new(p, fh, path, capacity, vol, err);
	nfs_close(p->nfs, fh);
	/* qcow2: qemu-img writes the header into the file we made. */
	_cleanup_free_ char *url = vol_url(&base->def, vol);
	char size[32];
	snprintf(size, sizeof(size), "%" PRIu64, capacity);
	char *argv[] = {QEMU_IMG, "create", "-q", "-f", "qcow2", url, size, NULL};
	if (!url || kc_run(argv, err) < 0) {
		nfs_unlink(p->nfs, path);
		return url ? -1 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

static int nfs_vol_delete(struct kc_pool *base, const char *vol, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfs_stat_64 st;
	char path[KC_NAME_MAX + 2];

	snprintf(path, sizeof(path), "/%s", vol);
	int rc = nfs_stat64(p->nfs, path, &st);
	if (rc == -ENOENT)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "volume \"%s\" not found in pool \"%s\"",
				    vol, base->def.name);
	if (rc < 0)
		return nfs_fail(p, rc, "looking up", vol, err);
	if (!S_ISREG(st.nfs_mode))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" in pool \"%s\" is not a volume",
				    vol, base->def.name);
	rc = nfs_unlink(p->nfs, path);
	return rc < 0 ? nfs_fail(p, rc, "deleting", vol, err) : 0;
}

static int nfs_disk(struct kc_pool *base, const char *vol, enum kc_vol_format fmt,
		    struct kc_pool_disk *ret, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfs_stat_64 st;
	char path[KC_NAME_MAX + 2];

	snprintf(path, sizeof(path), "/%s", vol);
	int rc = nfs_stat64(p->nfs, path, &st);
	if (rc < 0)
		return nfs_fail(p, rc, "looking up", vol, err);
	struct kc_pool_disk d = {.kind = KC_POOL_DISK_NETWORK, .format = fmt};
	d.protocol = strdup("nfs");
	d.host = strdup(base->def.server);
	if (asprintf(&d.name, "%s/%s", base->def.export_path, vol) < 0)
		d.name = NULL;
	if (!d.protocol || !d.host || !d.name) {
		kc_pool_disk_clear(&d);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	*ret = d;
	return 0;
}

int kc_pool_nfs_rename(struct kc_pool *base, const char *from, const char *to, struct kc_error *err)
{
	if (base->def.type != KC_POOL_NFS)
		return kc_error_set(err, KC_ERR_INVALID, "pool \"%s\" is not an NFS pool",
				    base->def.name);
	if (kc_pool_vol_name_check(from, err) < 0 || kc_pool_vol_name_check(to, err) < 0)
		return -1;
	struct nfs_pool *p = (struct nfs_pool *)base;
	char f[KC_NAME_MAX + 2], t[KC_NAME_MAX + 2];
	snprintf(f, sizeof(f), "/%s", from);
	snprintf(t, sizeof(t), "/%s", to);
	int rc = nfs_rename(p->nfs, f, t);
	return rc < 0 ? nfs_fail(p, rc, "renaming", from, err) : 0;
}

/* ---- volume data: upload, download, resize (the volume part) ---- */

static void vol_path(char path[static KC_NAME_MAX + 2], const char *vol)
{
	snprintf(path, KC_NAME_MAX + 2, "/%s", vol);
}

/* Each call is committed (COMMIT) before it returns: the server answers
 * vol.upload "written" only for bytes on the NFS server's storage. */
static int nfs_vol_write(struct kc_pool *base, const char *vol, uint64_t offset, const void *buf,
			 size_t len, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfsfh *fh = NULL;
	char path[KC_NAME_MAX + 2];

	vol_path(path, vol);
	int rc = nfs_open(p->nfs, path, O_WRONLY, &fh);
	if (rc < 0)
		return nfs_fail(p, rc, "opening", vol, err);
	for (size_t done = 0; done < len && rc >= 0;) {
		size_t n = len - done > NFS_IO_MAX ? NFS_IO_MAX : len - done;
		rc = nfs_pwrite(p->nfs, fh, offset + done, n, (const char *)buf + done);
		if (rc == 0)
			rc = -EIO;
		if (rc > 0)
			done += (size_t)rc;
	}
	if (rc >= 0)
		rc = nfs_fsync(p->nfs, fh);
	nfs_close(p->nfs, fh);
	return rc < 0 ? nfs_fail(p, rc, "writing", vol, err) : 0;
}

/* The stored bytes (a qcow2 file as a file, not its guest view); the
 * size is the file's. */
static int nfs_vol_read(struct kc_pool *base, const char *vol, uint64_t offset, void *buf,
			size_t len, size_t *ret_n, uint64_t *ret_size, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfsfh *fh = NULL;
	struct nfs_stat_64 st;
	char path[KC_NAME_MAX + 2];
	size_t got = 0;

	vol_path(path, vol);
	int rc = nfs_stat64(p->nfs, path, &st);
	if (rc < 0)
		return nfs_fail(p, rc, "looking up", vol, err);
	if (!S_ISREG(st.nfs_mode))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" in pool \"%s\" is not a volume",
				    vol, base->def.name);
	if (offset < st.nfs_size && len > 0) {
		if (len > st.nfs_size - offset)
			len = (size_t)(st.nfs_size - offset);
		rc = nfs_open(p->nfs, path, O_RDONLY, &fh);
		if (rc < 0)
			return nfs_fail(p, rc, "opening", vol, err);
		while (got < len) {
			size_t n = len - got > NFS_IO_MAX ? NFS_IO_MAX : len - got;
			rc = nfs_pread(p->nfs, fh, offset + got, n, (char *)buf + got);
			if (rc <= 0)
				break; /* 0: the file shrank meanwhile */
			got += (size_t)rc;
		}
		nfs_close(p->nfs, fh);
		if (rc < 0)
			return nfs_fail(p, rc, "reading", vol, err);
	}
	*ret_n = got;
	*ret_size = st.nfs_size;
	return 0;
}

static int nfs_check(struct kc_pool *base, const char *vol, struct kc_error *err)
{
	if (base->def.type != KC_POOL_NFS)
		return kc_error_set(err, KC_ERR_INVALID, "pool \"%s\" is not an NFS pool",
				    base->def.name);
	return kc_pool_vol_name_check(vol, err);
}

int kc_pool_nfs_vol_resize(struct kc_pool *base, const char *vol, enum kc_vol_format fmt,
			   uint64_t capacity, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfs_stat_64 st;
	char path[KC_NAME_MAX + 2], size[32];

	if (nfs_check(base, vol, err) < 0)
		return -1;
	vol_path(path, vol);
	int rc = nfs_stat64(p->nfs, path, &st);
	if (rc < 0)
		return nfs_fail(p, rc, "looking up", vol, err);
	_cleanup_free_ char *url = vol_url(&base->def, vol);
	if (!url)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	snprintf(size, sizeof(size), "%" PRIu64, capacity);
	/* The recorded format, stated: a raw volume whose guest wrote a qcow2
	 * header must stay raw (qemu-img would rewrite the guest's bytes). */
	char *argv[] = {QEMU_IMG, "resize", "-q", "-f", (char *)kc_vol_format_name(fmt),
			url,	  size,	    NULL};
	return kc_run(argv, err);
}

int kc_pool_nfs_vol_check(struct kc_pool *base, const char *vol, enum kc_vol_format fmt,
			  uint64_t max_virtual, const char *what, uint64_t *ret_virtual,
			  struct kc_error *err)
{
	enum kc_img_format f = fmt == KC_VOL_QCOW2 ? KC_IMG_QCOW2 : KC_IMG_RAW;
	_cleanup_free_ unsigned char *head = malloc(KC_IMG_HEAD_BYTES);
	_cleanup_free_ char *info = NULL, *url = vol_url(&base->def, vol);
	size_t got = 0, info_len = 0;
	uint64_t size = 0;

	if (nfs_check(base, vol, err) < 0)
		return -1;
	if (!head || !url)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (nfs_vol_read(base, vol, 0, head, KC_IMG_HEAD_BYTES, &got, &size, err) < 0)
		return -1;
	if (size == 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s is empty", what);
	/* Our own reading of the header first, as for files: qemu-img would
	 * open a backing or data file that a crafted header names. */
	if (kc_img_check_magic(head, got, f, what, err) < 0 ||
	    kc_qemu_img_info_json(url, kc_vol_format_name(fmt), what, &info, &info_len, err) < 0)
		return -1;
	return kc_img_check_info(info, info_len, f, max_virtual, what, ret_virtual, err);
}

int kc_pool_nfs_vol_new(struct kc_pool *base, const char *vol, uint64_t size, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfsfh *fh = NULL;
	char path[KC_NAME_MAX + 2];

	if (nfs_check(base, vol, err) < 0)
		return -1;
	vol_path(path, vol);
	int rc = nfs_create(p->nfs, path, O_CREAT | O_EXCL | O_WRONLY, 0600, &fh);
	if (rc < 0)
		return nfs_fail(p, rc, "creating", vol, err);
	return size_new(p, fh, path, size, vol, err);
}

int kc_pool_nfs_vol_stat(struct kc_pool *base, const char *vol, uint64_t *ret_size,
			 unsigned *ret_mode, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	struct nfs_stat_64 st;
	char path[KC_NAME_MAX + 2];

	if (nfs_check(base, vol, err) < 0)
		return -1;
	vol_path(path, vol);
	int rc = nfs_stat64(p->nfs, path, &st);
	if (rc < 0)
		return nfs_fail(p, rc, "looking up", vol, err);
	*ret_size = st.nfs_size;
	*ret_mode = (unsigned)st.nfs_mode;
	return 0;
}

int kc_pool_nfs_vol_chmod(struct kc_pool *base, const char *vol, unsigned mode,
			  struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	char path[KC_NAME_MAX + 2];

	if (nfs_check(base, vol, err) < 0)
		return -1;
	vol_path(path, vol);
	int rc = nfs_chmod(p->nfs, path, (int)mode);
	return rc < 0 ? nfs_fail(p, rc, "chmod", vol, err) : 0;
}

int kc_pool_nfs_link(struct kc_pool *base, const char *from, const char *to, struct kc_error *err)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	char f[KC_NAME_MAX + 2], t[KC_NAME_MAX + 2];

	if (nfs_check(base, from, err) < 0 || kc_pool_vol_name_check(to, err) < 0)
		return -1;
	vol_path(f, from);
	vol_path(t, to);
	/* NFSv3 LINK is atomic on the server and never replaces (EEXIST). */
	int rc = nfs_link(p->nfs, f, t);
	return rc < 0 ? nfs_fail(p, rc, "linking", to, err) : 0;
}

static void nfs_pool_close(struct kc_pool *base)
{
	struct nfs_pool *p = (struct nfs_pool *)base;
	if (p->nfs)
		nfs_destroy_context(p->nfs);
	free(p);
}

static const struct kc_pool_ops nfs_ops = {
	.ensure = nfs_ensure,
	.info = nfs_info,
	.volumes = nfs_volumes,
	.vol_create = nfs_vol_create,
	.vol_delete = nfs_vol_delete,
	.disk = nfs_disk,
	.remove = NULL, /* nothing is defined on the host */
	/* A resize needs the volume's recorded format, which this table does
	 * not carry: kc_pool_nfs_vol_resize. */
	.vol_resize = NULL,
	.vol_write = nfs_vol_write,
	.vol_read = nfs_vol_read,
	.close = nfs_pool_close,
};

struct kc_pool *kc_pool_nfs_new(struct kc_agent *a, const struct kc_pool_def *def,
				struct kc_error *err)
{
	struct nfs_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	p->base.ops = &nfs_ops;
	p->base.agent = a;
	if (kc_pool_def_copy(&p->base.def, def, err) < 0) {
		free(p);
		return NULL;
	}
	return &p->base;
}
