/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_priv.h - the agent's private state and the helpers its files share.
 * Not installed, not used outside src/agent/ (tests may include it).
 */
#pragma once

#include <dirent.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"

#define KC_POOL_DEFAULT "kvmcloud"
#define KC_OWNER	"kvmcloud"
#define KC_GIB		(1024ULL * 1024 * 1024)

#define KC_MAX_INFLIGHT 64

struct kc_agent {
	/* Guards conn: it is replaced on reconnect. */
	pthread_mutex_t conn_lock;
	virConnectPtr conn;
	bool connected;
	bool lost;	     /* set by the close callback, without conn_lock */
	int lifecycle_cb;    /* virConnectDomainEventRegisterAny id, -1 if none */
	unsigned retry_ms;   /* current reconnect backoff */
	uint64_t next_retry; /* monotonic ms of the next reconnect attempt */

	/* Guards `inflight`: the names (and the pool space) that creates under
	 * way have claimed.  Held only to claim and release, never across
	 * libvirt's slow work, so creates of different VMs run in parallel
	 * while two creates of one name, or a delete of a VM being created,
	 * cannot interleave. */
	pthread_mutex_t create_lock;
	struct kc_inflight {
		char name[KC_NAME_MAX + 1];
		uint64_t bytes;
	} inflight[KC_MAX_INFLIGHT];
	size_t n_inflight;

	pthread_mutex_t event_lock;
	kc_agent_event_fn event_fn;
	void *event_opaque;

	char *uri;
	char *data_dir;
	char *storage_dir;
	char *images_dir;
	char *console_dir;
	char *pool_name;
	char *probe_image;
	unsigned probe_timeout;
	char *host_name;
	char *accel_cfg; /* "auto", "kvm" or "tcg" */

	enum kc_cpu_mode cpu_mode;
	char *cpu_model;
	char cpu_warning[256];

	/* Written by kc_agent_new and host_check(probe): guarded by conn_lock. */
	enum kc_accel accel;
	char accel_reason[512];

	/* One KVM probe at a time: each boots a guest.  probe_gen counts the
	 * decisions made under probe_lock, so that a caller who waited for
	 * another's probe takes its result instead of probing again. */
	pthread_mutex_t probe_lock;
	uint64_t probe_gen;

	struct kc_sg *sg; /* security groups (sg_nft.c) */
	struct kc_hostnet *hostnet; /* host networks (hostnet.c): made on first use */
};

/* ---- conn.c ---- */
/* Opens the connection at start (fails with KC_ERR_UNAVAILABLE) and hooks the
 * agent into the process-wide libvirt event thread. */
int kc_conn_open(struct kc_agent *a, struct kc_error *err);
void kc_conn_close(struct kc_agent *a);
/* A new reference to a live connection; reconnects once if it was lost.
 * Release with virConnectClose (or _cleanup_conn_). */
virConnectPtr kc_conn_get(struct kc_agent *a, struct kc_error *err);
void kc_agent_emit(struct kc_agent *a, const char *vm, const char *event);
/* Counts callback registrations libvirt still holds (see kc_conn_close). */
void kc_cb_hold(void);
void kc_cb_release(void *opaque);

static inline void kc_conn_unrefp(virConnectPtr *c)
{
	if (*c)
		virConnectClose(*c);
}
#define _cleanup_conn_ __attribute__((cleanup(kc_conn_unrefp)))
static inline void kc_dom_freep(virDomainPtr *d)
{
	if (*d)
		virDomainFree(*d);
}
#define _cleanup_dom_ __attribute__((cleanup(kc_dom_freep)))
static inline void kc_pool_freep(virStoragePoolPtr *p)
{
	if (*p)
		virStoragePoolFree(*p);
}
#define _cleanup_pool_ __attribute__((cleanup(kc_pool_freep)))
static inline void kc_vol_freep(virStorageVolPtr *v)
{
	if (*v)
		virStorageVolFree(*v);
}
#define _cleanup_vol_ __attribute__((cleanup(kc_vol_freep)))

/* ---- lverr.c ---- */
/* Records libvirt's last error as KC_ERR_HYPERVISOR (KC_ERR_NOT_FOUND for
 * missing domains, volumes, pools, networks), prefixed by `what`.  -1. */
int kc_lverr(struct kc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Looks a domain up by name: KC_ERR_NOT_FOUND "VM 'x' not found". */
virDomainPtr kc_dom_lookup(virConnectPtr conn, const char *name, struct kc_error *err);
/* kc_conn_get + kc_dom_lookup: the domain, and in *ret_conn the connection
 * reference it came from (release both, the domain first). */
virDomainPtr kc_dom_get(struct kc_agent *a, const char *name, virConnectPtr *ret_conn,
			struct kc_error *err);

/* ---- util.c ---- */
uint64_t kc_now_ms(void);
int kc_random_bytes(void *buf, size_t len, struct kc_error *err);
int kc_mkdir_p(const char *path, mode_t mode, struct kc_error *err);
/* Runs argv[0] (absolute path) with posix_spawn, stdout to /dev/null, stderr
 * captured; a non-zero exit is KC_ERR_INTERNAL with the last stderr line. */
int kc_run(char *const argv[], struct kc_error *err);
/* opendir() through open(O_DIRECTORY | O_CLOEXEC | `flags`), so that the
 * caller may add O_NOFOLLOW; dirfd() gives the fd.  NULL if it cannot. */
DIR *kc_opendir(const char *path, int flags);
/* Removes a folder and the plain files directly inside it. */
void kc_rmdir_files(const char *dir);
/* Virtual size from the qcow2 header of template `path`.  KC_ERR_INVALID,
 * naming the image as `what` (not its path), if it is not a qcow2 file we
 * can hand to QEMU as a backing file: version other than 2 or 3, a backing
 * file of its own, an external data file, or unknown incompatible features. */
int kc_qcow2_virtual_size(const char *path, const char *what, uint64_t *ret, struct kc_error *err);
/* "9.0.0" from libvirt's major*1000000+minor*1000+micro. */
void kc_version_str(unsigned long v, char *buf, size_t len);
/* libxml2 XPath helpers over a parsed document. */
struct _xmlDoc;
struct _xmlXPathContext;
char *kc_xpath_string(struct _xmlXPathContext *ctx, const char *expr); /* NULL if empty */
int kc_xpath_long(struct _xmlXPathContext *ctx, const char *expr, long def);

/* ---- hostfacts.c ---- */
int kc_host_facts_collect(struct kc_agent *a, virConnectPtr conn, json_t **ret,
			  struct kc_error *err);
/* Host CPU count and memory (KiB) for request limits. */
int kc_host_limits(virConnectPtr conn, unsigned *ret_cpus, uint64_t *ret_mem_kib,
		   struct kc_error *err);
int kc_host_versions(virConnectPtr conn, unsigned long *ret_libvirt, unsigned long *ret_qemu,
		     struct kc_error *err);
int kc_host_arch(virConnectPtr conn, char *buf, size_t len, struct kc_error *err);

/* ---- accel.c ---- */
/* Decides the accelerator (config, cache, probe); never fails: a failed
 * probe is TCG with a reason.  `force_probe` ignores the cache. */
void kc_accel_decide(struct kc_agent *a, virConnectPtr conn, bool force_probe);
/* Whether /dev/kvm exists and opens; reason filled either way. */
bool kc_kvm_device_usable(char *reason, size_t len);

/* ---- cpumode.c ---- */
int kc_cpumode_validate(struct kc_agent *a, virConnectPtr conn, struct kc_error *err);

/* ---- storage.c ---- */
/* The agent's dir pool, defined/built/started/autostarted if missing. */
virStoragePoolPtr kc_pool_get(struct kc_agent *a, virConnectPtr conn, struct kc_error *err);
/* Creates a qcow2 volume; with backing (a qcow2 path) it is an overlay. */
int kc_vol_create_qcow2(virStoragePoolPtr pool, const char *name, uint64_t capacity,
			const char *backing, struct kc_error *err);
int kc_vol_delete_name(virStoragePoolPtr pool, const char *name, struct kc_error *err);
/* KC_ERR_NO_CAPACITY when bytes do not fit in the pool's available space. */
int kc_pool_check_space(virStoragePoolPtr pool, uint64_t bytes, struct kc_error *err);

/* vm_create.c: is a create of `name` under way?  Caller holds create_lock. */
bool kc_agent_is_creating(struct kc_agent *a, const char *name);

/* ---- intent.c ---- */
struct kc_intent {
	int fd; /* the record, locked; -1 when none */
	char *path;
};
/* Writes and locks <storage.dir>/.creating/<vm> (KC_ERR_CONFLICT if another
 * process holds it or domain vm exists).  A record a dead create left is
 * reaped first.  Call before making the first file of the VM. */
int kc_intent_begin(struct kc_agent *a, virConnectPtr conn, virStoragePoolPtr pool, const char *vm,
		    struct kc_intent *in, struct kc_error *err);
/* Names a file (in storage.dir) the create is about to make. */
int kc_intent_note(struct kc_intent *in, const char *file, struct kc_error *err);
/* Removes and unlocks the record: the domain is defined or all rolled back. */
void kc_intent_end(struct kc_intent *in);
/* Unlocks the record but keeps it: a rollback that could not reach libvirt
 * leaves it for kc_intents_reap() at the agent's next start. */
void kc_intent_abandon(struct kc_intent *in);
/* At start-up: for each record whose creator died, removes the files it
 * named and the VM's console log if no domain exists, then the record.
 * Returns how many files were removed. */
int kc_intents_reap(struct kc_agent *a, virConnectPtr conn, virStoragePoolPtr pool);
/* vol.create under a record of its own, <storage.dir>/.creating/<pool>@<vol>
 * (the pool's definition inside): kc_intents_reap removes the volume of a
 * create that died half-way, whatever the pool (kc-* libvirt, NFS...). */
struct kc_pool;
int kc_intent_vol_create(struct kc_agent *a, struct kc_pool *p, const char *vol, int fmt,
			 uint64_t capacity, struct kc_error *err);

/* ---- tmpdir.c ---- */
/* mkdtemp(<parent>/<prefix>XXXXXX) into buf, 0700, locked by *ret_lock
 * until kc_tmpdir_remove. */
int kc_tmpdir_make(const char *parent, const char *prefix, char *buf, size_t len, int *ret_lock,
		   struct kc_error *err);
void kc_tmpdir_remove(const char *dir, int lock);
/* Removes temporary folders (and accel.json temp files) in data_dir that
 * are older than this process and whose maker is gone. */
int kc_tmpdirs_reap(const char *data_dir);

/* ---- seed.c ---- */
/* Writes <storage.dir>/<vm>-seed.iso (NoCloud, label cidata). */
int kc_seed_create(struct kc_agent *a, const char *vm, const char *uuid, const char *hostname,
		   const char *user_data, char **ret_path, struct kc_error *err);

/* ---- hostcheck.c ---- */
int kc_host_check_run(struct kc_agent *a, virConnectPtr conn, json_t **ret, struct kc_error *err);

/* ---- vm_info.c ---- */
json_t *kc_vm_json(struct kc_agent *a, virConnectPtr conn, virDomainPtr dom, struct kc_error *err);
/* libvirt's domain state as docs/api.md names it ("unknown" if none). */
const char *kc_vm_state_name(int state);
/* Paths of a domain's file-backed disks (NULL-terminated, malloc'd). */
char **kc_vm_disk_paths(virDomainPtr dom, struct kc_error *err);
/* The domain's NFS disks as "<host>\t<path on the server>" strings,
 * NULL-terminated (kc_strv_free); NULL with err set on failure. */
char **kc_vm_nfs_disks(virDomainPtr dom, struct kc_error *err);
/* Deletes the NFS disks of VM `vm` that kc_vm_nfs_disks listed, through
 * an NFS pool of that server and folder (pool.h): only the VM's own
 * volume names (<vm>-root.qcow2, <vm>-dataN.qcow2), never a base. */
void kc_vm_nfs_disks_delete(struct kc_agent *a, const char *vm, char **disks);
struct kc_pool_def;
struct kc_clone_target;
struct kc_intent;
/* NFS pools (clone.c): whether vol exists (1, 0, -1 with err); the base
 * of `image` on the export (*ret_base its path on the server); a qcow2
 * overlay on base_path (a path on the same server). */
int kc_clone_nfs_vol_exists(const struct kc_clone_target *t, const char *vol, struct kc_error *err);
int kc_clone_base_ensure_nfs(struct kc_agent *a, struct kc_clone_target *t, const char *image,
			     const char *template_path, struct kc_intent *in, char **ret_base,
			     struct kc_error *err);
int kc_clone_overlay_nfs(struct kc_clone_target *t, const char *vol, uint64_t capacity,
			 const char *base_path, struct kc_error *err);
/* Whether `vol` is a name a create of `vm` makes (intent.c). */
bool kc_intent_owned_name(const char *vol, const char *vm);
/* The intent line of a volume in a pool other than a folder: one line of
 * JSON {"pool": definition, "vol": name}; the reaper deletes it through
 * the pool's table (intent.c). */
int kc_intent_note_pool_vol(struct kc_intent *in, const struct kc_pool_def *def, const char *vol,
			    struct kc_error *err);
void kc_strv_free(char **v);

/* ---- snapshot.c ---- */
int kc_snapshots_count(virDomainPtr d, int *ret, struct kc_error *err);
/* Deletes every snapshot of the domain, data included. */
int kc_snapshots_delete_all(virDomainPtr d, struct kc_error *err);

/* ---- events.c ---- */
int kc_events_register(struct kc_agent *a, virConnectPtr conn);
void kc_events_unregister(struct kc_agent *a, virConnectPtr conn);

/* ---- clone.c (docs/storage.md "Clones") ---- */
struct kc_pool;
/* Where a create's volumes go: a folder pool (default, dir, mountpoint). */
struct kc_clone_target {
	char name[KC_NAME_MAX + 1]; /* the API's pool name */
	char *dir;		    /* its folder */
	virStoragePoolPtr pool;	    /* its libvirt pool */
	struct kc_pool *kp;	    /* pool.h handle; NULL for the default pool */
	/* An NFS pool: no folder, no libvirt pool (dir and pool NULL); the
	 * volumes are <nfs_export>/<vol> on server nfs_host, made and deleted
	 * through kp (libnfs) and qemu-img on nfs:// URLs. */
	const char *nfs_host, *nfs_export; /* kp's definition's */
};
/* def NULL or "default": the agent's own pool.  Types other than dir,
 * mountpoint and nfs are KC_ERR_INVALID (iSCSI LUNs are not made per VM). */
int kc_clone_target_open(struct kc_agent *a, virConnectPtr conn, const struct kc_pool_def *def,
			 struct kc_clone_target *ret, struct kc_error *err);
void kc_clone_target_close(struct kc_clone_target *t); /* accepts zeroed */
/* The template file's SHA-256: from its verified record, or hashed once
 * (and recorded). */
int kc_clone_template_sha256(const char *path, char hex[static 65], struct kc_error *err);
/* "base-<image, at most 36 chars>-<first 16 hex of sha256>.qcow2". */
void kc_clone_base_name(const char *image, const char *sha256, char *buf, size_t len);
bool kc_clone_is_base_name(const char *vol);
/* Makes sure the read-only base volume of template `image` is in t (a copy
 * made once, under a per-(pool, base) flock shared by every process and
 * host that sees the folder); *ret_base its path.  The temporary file of a
 * copy is named in `in` first. */
int kc_clone_base_ensure(struct kc_agent *a, struct kc_clone_target *t, const char *image,
			 const char *template_path, struct kc_intent *in, char **ret_base,
			 struct kc_error *err);
/* Copies the template into new volume `vol` of t (qemu-img convert -p,
 * progress under `vm`), grown to capacity if that is larger than
 * template_size.  The caller named vol in its intent record. */
int kc_clone_full(struct kc_agent *a, struct kc_clone_target *t, const char *vm,
		  const char *template_path, const char *vol, uint64_t capacity,
		  uint64_t template_size, struct kc_error *err);
/* Percent of the full copy running for vm, -1 if none. */
int kc_clone_progress(struct kc_agent *a, const char *vm);
#define KC_QEMU_IMG "/usr/bin/qemu-img"
/* Runs qemu-img (argv[0] KC_QEMU_IMG, absolute paths only) with its stdout
 * read for "-p" progress, each percentage handed to on_pct (may be NULL);
 * a failure is KC_ERR_INTERNAL "<what>: qemu-img failed: <last stderr line>". */
int kc_qemu_img_run(char *const argv[], void (*on_pct)(void *, int), void *opaque,
		    const char *what, struct kc_error *err);
