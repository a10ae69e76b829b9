/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.h - storage pools behind one small table of operations, one backend
 * per kind of storage (docs/storage.md, "Pools"):
 *
 *   dir, mountpoint, iscsi, logical   pool_libvirt.c  libvirt pool "kc-<name>"
 *                                     (iscsi through libvirt's iscsi-direct:
 *                                     libiscsi, no kernel initiator)
 *   nfs                               pool_nfs.c      libnfs, no kernel mount,
 *                                     no libvirt pool; QEMU opens nfs:// itself
 *   "default"                         pool_libvirt.c  the agent's own dir pool
 *                                     (storage.pool at storage.dir, storage.c)
 *
 * The agent keeps no pool state: the server sends a pool's whole definition
 * with every operation (struct kc_pool_def, parsed from JSON by
 * kc_pool_def_from_json), and kc_pool_open() makes sure the pool exists
 * on this host before handing back a handle.  Volumes are named with
 * kc_name_validate() and always carry an explicit format.
 *
 * Every function returns 0 or -1 with err set; ret_* untouched on failure.
 * A handle is used by one thread at a time; several handles of one pool
 * may be open at once.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "validate.h"

struct kc_agent;

enum kc_pool_type {
	KC_POOL_DIR = 0,
	KC_POOL_MOUNTPOINT, /* a folder every host of a cluster sees (shared mount) */
	KC_POOL_NFS,
	KC_POOL_ISCSI,
	KC_POOL_LOGICAL, /* LVM volume group: written, untested here (no device-mapper) */
};

enum kc_vol_format { KC_VOL_QCOW2 = 0, KC_VOL_RAW };

/* The name of the implicit pool: each host's own storage.pool dir pool. */
#define KC_POOL_DEFAULT_NAME "default"
/* Prefix of the libvirt pools we define (the default pool keeps its name). */
#define KC_POOL_LIBVIRT_PREFIX "kc-"
#define KC_POOL_PATH_MAX       1024
#define KC_POOL_IQN_MAX	       223 /* RFC 3720 */
#define KC_POOL_HOST_MAX       253
/* Overcommit as a percentage (100 = 1.0: no more virtual size than capacity). */
#define KC_POOL_OVERCOMMIT_MIN 100
#define KC_POOL_OVERCOMMIT_MAX 1000

/* A pool as the server defines it.  Only the fields of its type are set. */
struct kc_pool_def {
	char name[KC_NAME_MAX + 1];
	enum kc_pool_type type;
	char *path;		 /* dir, mountpoint: absolute folder */
	char *server;		 /* nfs: server host name or address */
	char *export_path;	 /* nfs: the export, absolute */
	char *portal;		 /* iscsi: "host" or "host:port" (port 3260 if none) */
	char *target;		 /* iscsi: the target's IQN */
	char *initiator;	 /* iscsi: the IQN we log in as (iscsi-direct needs one) */
	char *vg;		 /* logical: the volume group */
	unsigned overcommit_pct; /* KC_POOL_OVERCOMMIT_MIN..MAX */
};

/* Parses and checks a definition: {"name","type", the keys of the type,
 * "overcommit" (number 1.0..10.0, default 1.0)}.  Other keys are
 * KC_ERR_INVALID unless listed in `also_allowed` (NULL-terminated or NULL;
 * the server's "scope", "host", "cluster"...).  The name "default" is
 * accepted only when `allow_default`.  Paths must be absolute, without
 * "..", "//" or characters other than [A-Za-z0-9._/-]; hosts are names or
 * addresses; IQNs are "iqn." or "eui." names of [a-z0-9.:-]. */
int kc_pool_def_from_json(const json_t *j, const char *const *also_allowed, bool allow_default,
			  struct kc_pool_def *ret, struct kc_error *err);
/* The definition as JSON (the keys above), as the server sends it. */
json_t *kc_pool_def_to_json(const struct kc_pool_def *def);
void kc_pool_def_clear(struct kc_pool_def *def); /* frees the strings; accepts zeroed */

const char *kc_pool_type_name(enum kc_pool_type t); /* "dir", "mountpoint", ... */
int kc_pool_type_parse(const char *s, enum kc_pool_type *ret, struct kc_error *err);
const char *kc_vol_format_name(enum kc_vol_format f); /* "qcow2", "raw" */
int kc_vol_format_parse(const char *s, enum kc_vol_format *ret, struct kc_error *err);

/* The libvirt pool XML for a libvirt-backed definition (dir, mountpoint,
 * iscsi, logical), pool named "kc-<name>", written with libxml2's writer.
 * Deterministic: tests compare it with tests/golden/pool/.  NFS has no
 * libvirt pool: KC_ERR_INVALID. */
int kc_pool_xml(const struct kc_pool_def *def, char **ret_xml, struct kc_error *err);

struct kc_pool_info {
	uint64_t capacity;   /* bytes */
	uint64_t allocation; /* bytes used on the storage */
	uint64_t available;  /* bytes free on the storage */
	uint64_t virtual;    /* sum of the volumes' capacities (virtual sizes) */
	size_t volumes;	     /* how many */
};

struct kc_pool_vol {
	char *name;
	enum kc_vol_format format;
	uint64_t capacity;   /* virtual size */
	uint64_t allocation; /* bytes used */
};
void kc_pool_vols_free(struct kc_pool_vol *v, size_t n);

/* Where a volume is for a domain's <disk>: a file (type='file', path), a
 * block device (type='block', path), or a network disk (type='network',
 * protocol "nfs" / "iscsi", host, port, name: "<export>/<vol>" or
 * "<target-iqn>/<lun>", and for iSCSI the initiator IQN). */
struct kc_pool_disk {
	enum { KC_POOL_DISK_FILE, KC_POOL_DISK_BLOCK, KC_POOL_DISK_NETWORK } kind;
	enum kc_vol_format format;
	char *path;	 /* file, block */
	char *protocol;	 /* network */
	char *host;	 /* network */
	unsigned port;	 /* network; 0 for the protocol's default */
	char *name;	 /* network */
	char *initiator; /* iscsi */
};
void kc_pool_disk_clear(struct kc_pool_disk *d);

struct kc_pool;

/* The backend table.  Each backend fills the functions it can do; NULL is
 * "this kind of pool cannot" (KC_ERR_INVALID, naming the type). */
struct kc_pool_ops {
	/* Defines, builds and starts the pool if it is not (idempotent). */
	int (*ensure)(struct kc_pool *p, struct kc_error *err);
	/* capacity, allocation, available (refreshed); virtual/volumes are
	 * filled by kc_pool_info from volumes(). */
	int (*info)(struct kc_pool *p, struct kc_pool_info *ret, struct kc_error *err);
	int (*volumes)(struct kc_pool *p, struct kc_pool_vol **ret, size_t *ret_n,
		       struct kc_error *err);
	/* An empty (sparse) volume; an existing name is KC_ERR_CONFLICT. */
	int (*vol_create)(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
			  uint64_t capacity, struct kc_error *err);
	/* A missing volume is KC_ERR_NOT_FOUND. */
	int (*vol_delete)(struct kc_pool *p, const char *vol, struct kc_error *err);
	int (*disk)(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
		    struct kc_pool_disk *ret, struct kc_error *err);
	/* Stops and undefines the pool on this host; its data stays. */
	int (*remove)(struct kc_pool *p, struct kc_error *err);
	/* (volume part) Grows a volume to `capacity` bytes (callers refuse
	 * shrinking).  KC_ERR_NOT_FOUND for a missing volume. */
	int (*vol_resize)(struct kc_pool *p, const char *vol, uint64_t capacity,
			  struct kc_error *err);
	/* (volume part) Writes `len` bytes at `offset` of the volume's data
	 * (a libvirt stream upload: the bytes as stored, whatever the format). */
	int (*vol_write)(struct kc_pool *p, const char *vol, uint64_t offset, const void *buf,
			 size_t len, struct kc_error *err);
	/* (volume part) Reads up to `len` bytes at `offset` (a libvirt stream
	 * download); *ret_n the bytes read (0 at the end), *ret_size the
	 * volume's stored size (the file's for a file, the capacity for raw
	 * block storage). */
	int (*vol_read)(struct kc_pool *p, const char *vol, uint64_t offset, void *buf, size_t len,
			size_t *ret_n, uint64_t *ret_size, struct kc_error *err);
	void (*close)(struct kc_pool *p);
};

/* Opens the pool `def` on the agent's host, ensuring it (ops->ensure) so
 * that it is usable on return.  *ret is freed with kc_pool_close. */
int kc_pool_open(struct kc_agent *a, const struct kc_pool_def *def, struct kc_pool **ret,
		 struct kc_error *err);
void kc_pool_close(struct kc_pool *p); /* accepts NULL */
const struct kc_pool_def *kc_pool_get_def(const struct kc_pool *p);

/* The operations, through the backend's table. */
int kc_pool_info(struct kc_pool *p, struct kc_pool_info *ret, struct kc_error *err);
int kc_pool_volumes(struct kc_pool *p, struct kc_pool_vol **ret, size_t *ret_n,
		    struct kc_error *err);
/* Refuses (KC_ERR_NO_CAPACITY, naming the figures) a volume whose capacity
 * would take the sum of the pool's volume capacities beyond capacity x
 * overcommit; the default pool keeps its stricter rule (the new volume's
 * full size must fit in the free space, kc_pool_check_space).  The size
 * is 1 byte .. 64 TiB.  The name is kc_name_validate'd. */
int kc_pool_vol_create(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
		       uint64_t capacity, struct kc_error *err);
int kc_pool_vol_delete(struct kc_pool *p, const char *vol, struct kc_error *err);
int kc_pool_vol_disk(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
		     struct kc_pool_disk *ret, struct kc_error *err);
int kc_pool_remove(struct kc_pool *p, struct kc_error *err);
/* (volume part) Through the table, names checked; NULL entries are
 * KC_ERR_INVALID "a <type> pool cannot ...". */
int kc_pool_vol_resize(struct kc_pool *p, const char *vol, uint64_t capacity, struct kc_error *err);
int kc_pool_vol_write(struct kc_pool *p, const char *vol, uint64_t offset, const void *buf,
		      size_t len, struct kc_error *err);
int kc_pool_vol_read(struct kc_pool *p, const char *vol, uint64_t offset, void *buf, size_t len,
		     size_t *ret_n, uint64_t *ret_size, struct kc_error *err);
/* Whether the backend can write volumes (vol_write): asked before an
 * upload empties a volume it then could not fill.  KC_ERR_INVALID if not. */
int kc_pool_check_writable(const struct kc_pool *p, struct kc_error *err);

/* An NFS pool's volume renamed (replacing `to`); KC_ERR_INVALID for
 * other pools (pool_nfs.c). */
int kc_pool_nfs_rename(struct kc_pool *p, const char *from, const char *to, struct kc_error *err);
/* NFS pools only (pool_nfs.c; KC_ERR_INVALID for others), names checked:
 *  _vol_resize  grows a volume not in use with qemu-img resize -f FMT on its
 *               nfs:// URL (the table's vol_resize has no format to state);
 *  _vol_check   an uploaded volume checked like a library image: its first
 *               64 KiB (kc_img_check_magic), then qemu-img info -f FMT
 *               (kc_img_check_info, virtual size at most max_virtual);
 *  _vol_new     an empty sparse file of `size` bytes, mode 0600, never an
 *               existing one (KC_ERR_CONFLICT), outside the capacity rule:
 *               the agent's own temporary files (clone.c);
 *  _vol_stat    a volume's size and st_mode;
 *  _vol_chmod   a volume's mode;
 *  _link        a second name `to` for `from`, atomic on the server and
 *               never replacing (KC_ERR_CONFLICT if `to` exists). */
int kc_pool_nfs_vol_resize(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
			   uint64_t capacity, struct kc_error *err);
int kc_pool_nfs_vol_check(struct kc_pool *p, const char *vol, enum kc_vol_format fmt,
			  uint64_t max_virtual, const char *what, uint64_t *ret_virtual,
			  struct kc_error *err);
int kc_pool_nfs_vol_new(struct kc_pool *p, const char *vol, uint64_t size, struct kc_error *err);
int kc_pool_nfs_vol_stat(struct kc_pool *p, const char *vol, uint64_t *ret_size, unsigned *ret_mode,
			 struct kc_error *err);
int kc_pool_nfs_vol_chmod(struct kc_pool *p, const char *vol, unsigned mode, struct kc_error *err);
int kc_pool_nfs_link(struct kc_pool *p, const char *from, const char *to, struct kc_error *err);

/* The capacity rule alone (pure, for tests): may `add` more bytes of
 * virtual size go into a pool of info->capacity with info->virtual used? */
int kc_pool_check_overcommit(const char *pool, const struct kc_pool_info *info,
			     unsigned overcommit_pct, uint64_t add, struct kc_error *err);

/* The largest volume we create: 64 TiB. */
#define KC_POOL_VOL_MAX (64ULL << 40)

/* ---- the ops of dispatch.c (docs/protocol.md) ----
 * pool.ensure  {"pool": def}                 -> {"name","type","libvirt_pool"?}
 * pool.info    {"pool": def}                 -> {"capacity","allocation","available",
 *                                                "virtual","volumes","overcommit"}
 * pool.volumes {"pool": def}                 ->
 * {"volumes":[{"name","format","capacity","allocation"}]} pool.remove  {"pool": def} -> {} (and for
 * the volume parts: kc_pool_vol_create / _delete / _disk above) */
int kc_agent_pool_ensure(struct kc_agent *a, const struct kc_pool_def *def, json_t **ret,
			 struct kc_error *err);
int kc_agent_pool_info(struct kc_agent *a, const struct kc_pool_def *def, json_t **ret,
		       struct kc_error *err);
int kc_agent_pool_volumes(struct kc_agent *a, const struct kc_pool_def *def, json_t **ret,
			  struct kc_error *err);
int kc_agent_pool_remove(struct kc_agent *a, const struct kc_pool_def *def, struct kc_error *err);
