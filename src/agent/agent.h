/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.h - the per-host agent as a library: everything kvmcloud does to
 * one host's libvirtd.  kvmcloud-agent (standalone) and kvmcloud-server
 * --all-in-one (embedded) both link it.
 *
 * Results are jansson objects whose shapes are documented in docs/api.md
 * (they are passed through to the REST API unchanged, and will travel over
 * the agent protocol once agents are remote).  Every function returns 0 or
 * -1 with err filled; ret_* is untouched on failure.  All functions are
 * safe to call from several threads at once.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "vmspec.h"

struct kc_agent;

/*
 * Configuration keys (agent.conf, key=value; see docs/agent.md):
 *   libvirt.uri        default qemu:///system
 *   data.dir           default /var/lib/kvmcloud
 *   storage.dir        default <data.dir>/pool      VM disks and seed ISOs (a libvirt dir pool "kvmcloud")
 *   images.dir         default <data.dir>/images    templates <name>.qcow2 and ISOs <name>.iso
 *   console.dir        default <data.dir>/console   serial logs <vm>.log
 *   guest.cpu.mode     custom|host-model|host-passthrough (default: none, hypervisor default)
 *   guest.cpu.model    a libvirt CPU model name (only with custom)
 *   accel              auto|kvm|tcg  (default auto: probe KVM, fall back to TCG)
 *   probe.image        image booted by the KVM probe (default <images.dir>/kctest.qcow2)
 *   probe.timeout      seconds (default 20)
 *   host.name          default: the FQDN / hostname
 *   firewall.file      default /etc/kvmcloud/firewall.nft (hostfw.h)
 */
int kc_agent_new(const struct kc_config *cfg, struct kc_agent **ret, struct kc_error *err);
void kc_agent_free(struct kc_agent *agent); /* accepts NULL */

/* ---- host ---- */
const char *kc_agent_host_name(const struct kc_agent *agent);
enum kc_accel kc_agent_accel(const struct kc_agent *agent);
bool kc_agent_is_connected(struct kc_agent *agent);
/* {"name","uuid","arch","cpu_model","cpus","sockets","cores","threads","mhz",
 *  "numa_cells","memory_kib","libvirt_version","qemu_version","accel","accel_reason"} */
int kc_agent_host_facts(struct kc_agent *agent, json_t **ret, struct kc_error *err);
/* {"summary":"pass|warn|fail","items":[{"name","status","reason"}]};
 * probe_kvm runs the (slow, up to probe.timeout) KVM boot probe again. */
int kc_agent_host_check(struct kc_agent *agent, bool probe_kvm, json_t **ret, struct kc_error *err);

/* Statistics of the host and of every libvirt domain on it (managed or
 * not), the VMs' in one bulk-stats round trip to libvirtd:
 *   {"host": {"name","accel","cpus","memory_kib","memory_free_kib",
 *             "memory_buffers_kib","memory_cached_kib",
 *             "cpu_time_ns": {"kernel","user","idle","iowait"}},
 *    "vms": [{"name","uuid","state","cpu_time_ns","vcpus","memory_kib",
 *             "memory_max_kib","memory_rss_kib",
 *             "disks": [{"target","rd_bytes","wr_bytes","rd_reqs","wr_reqs",
 *                        "capacity_bytes","allocation_bytes"}],
 *             "nics": [{"name","rx_bytes","tx_bytes","rx_packets","tx_packets"}]}]}
 * "name" (and "target") and "state" are always there; the other keys only
 * when libvirt reports them (see docs/api.md, Metrics). */
int kc_agent_vm_stats(struct kc_agent *agent, json_t **ret, struct kc_error *err);

/* ---- VMs ---- */
/* Resolves the request (image, ISO, networks), checks host limits, creates
 * disks, seed ISO and domain, starts it if req->start.  Either the whole VM
 * exists afterwards or nothing of it does.  *ret is the VM object. */
int kc_agent_vm_create(struct kc_agent *agent, const struct kc_vm_request *req, json_t **ret,
		       struct kc_error *err);
/* The names of the creates this agent process is running now (a JSON
 * array; NULL if out of memory).  For the hello: the server may drop a
 * "creating" record without a domain only if no create of it runs here. */
json_t *kc_agent_creates_in_flight(struct kc_agent *agent);
int kc_agent_vm_start(struct kc_agent *agent, const char *name, struct kc_error *err);
/* ACPI shutdown, wait up to timeout_s, then force off if `force`; *ret_forced
 * tells whether it had to. */
int kc_agent_vm_shutdown(struct kc_agent *agent, const char *name, unsigned timeout_s, bool force,
			 bool *ret_forced, struct kc_error *err);
int kc_agent_vm_reboot(struct kc_agent *agent, const char *name, struct kc_error *err);
int kc_agent_vm_destroy(struct kc_agent *agent, const char *name, struct kc_error *err);
/* Undefines; with_disks also deletes the VM's own volumes in storage.dir
 * (never images or files elsewhere).  A running VM is an error (conflict). */
int kc_agent_vm_delete(struct kc_agent *agent, const char *name, bool with_disks,
		       struct kc_error *err);
/* Array of VM objects, every libvirt domain on the host ("managed": false
 * for those kvmcloud did not create). */
int kc_agent_vm_list(struct kc_agent *agent, json_t **ret, struct kc_error *err);
int kc_agent_vm_show(struct kc_agent *agent, const char *name, json_t **ret, struct kc_error *err);
/* Reads the serial log from `offset` (at most max bytes).  *ret_next is the
 * offset to ask for next; *ret_size the log's current size. */
int kc_agent_vm_log_read(struct kc_agent *agent, const char *name, uint64_t offset, size_t max,
			 char **ret_buf, size_t *ret_len, uint64_t *ret_next, uint64_t *ret_size,
			 struct kc_error *err);
/* Opens the interactive serial console: returns one end of a socketpair
 * whose other end a thread bridges to libvirt's console stream.  Closing
 * the fd ends the session. */
int kc_agent_vm_console_open(struct kc_agent *agent, const char *name, int *ret_fd,
			     struct kc_error *err);

/* Undefines as kc_agent_vm_delete, which is this with with_snapshots false.
 * A VM with snapshots is a conflict ("VM x has N snapshots") unless
 * with_snapshots: then they go first (their data too when the disks stay). */
int kc_agent_vm_delete_full(struct kc_agent *agent, const char *name, bool with_disks,
			    bool with_snapshots, struct kc_error *err);

/* ---- snapshots (snapshot.c; docs/storage.md "Snapshots") ---- */
/* Internal qcow2 snapshots.  Names pass kc_name_validate; an unknown VM or
 * snapshot is KC_ERR_NOT_FOUND, a VM being created KC_ERR_CONFLICT. */
#define KC_SNAPSHOT_MAX	     100  /* per VM */
#define KC_SNAPSHOT_DESC_MAX 1024 /* bytes, no control characters */
/* A stopped VM: disk-only; a running or paused one: with its memory.
 * Read-only disks are left out; a writable disk that is not qcow2, a name
 * taken or KC_SNAPSHOT_MAX reached is KC_ERR_CONFLICT.  description may be
 * NULL.  *ret is the Snapshot object. */
int kc_agent_snapshot_create(struct kc_agent *agent, const char *vm, const char *name,
			     const char *description, json_t **ret, struct kc_error *err);
/* {"vm","current": name|null,"snapshots":[Snapshot...]}, oldest first;
 * each Snapshot names its "parent" and "children" (the tree). */
int kc_agent_snapshot_list(struct kc_agent *agent, const char *vm, json_t **ret,
			   struct kc_error *err);
/* The Snapshot object, with the sizes QEMU recorded when it can read them. */
int kc_agent_snapshot_show(struct kc_agent *agent, const char *vm, const char *name, json_t **ret,
			   struct kc_error *err);
/* Disks (and memory, if saved) back to the snapshot; the VM ends in the
 * state the snapshot recorded (running for one with memory, shut off for
 * a disk-only one), or running if `start`.  *ret {"snapshot","state"}. */
int kc_agent_snapshot_revert(struct kc_agent *agent, const char *vm, const char *name, bool start,
			     json_t **ret, struct kc_error *err);
/* Deletes one snapshot (libvirt re-parents its children) or, with_children,
 * it and all its descendants; *ret_deleted (may be NULL) how many. */
int kc_agent_snapshot_delete(struct kc_agent *agent, const char *vm, const char *name,
			     bool with_children, unsigned *ret_deleted, struct kc_error *err);

/* ---- events ---- */
/* Called from the agent's event thread when a domain changes state
 * (libvirt lifecycle events) or when the libvirt connection is lost or
 * restored (vm_name NULL, event "disconnected" / "connected"). */
typedef void (*kc_agent_event_fn)(const char *vm_name, const char *event, void *opaque);
void kc_agent_set_event_cb(struct kc_agent *agent, kc_agent_event_fn fn, void *opaque);

/* ---- image library (issue 4, part I: image_check.c, image_cache.c) ---- */
#include "imgcheck.h"

/* The largest chunk of image.put (raw bytes, before base64). */
#define KC_IMAGE_CHUNK_MAX (512 * 1024)

struct kc_image_facts {
	uint64_t size_bytes;
	uint64_t virtual_size_bytes;
	char sha256[65];
};
/* Validates the image file `path` (never a symlink) declared as format
 * `f`: header checks (imgcheck.h), `qemu-img info -f FMT --output=json`
 * (argv, format forced, killed after 60 s), virtual size <= max_virtual,
 * then its SHA-256 and size into *ret.  KC_ERR_INVALID naming `what`. */
int kc_image_validate(const char *path, enum kc_img_format f, uint64_t max_virtual,
		      const char *what, struct kc_image_facts *ret, struct kc_error *err);
/* qemu-img info -f FMT --output=json TARGET (an absolute path or an nfs://
 * URL), killed after 60 s; its stdout (at most 256 KiB) in *ret (malloc'd).
 * A failure is KC_ERR_INVALID naming `what`, without the target. */
int kc_qemu_img_info_json(const char *target, const char *fmt, const char *what, char **ret,
			  size_t *ret_len, struct kc_error *err);
/* SHA-256 (lowercase hex) of everything readable from fd, from offset 0. */
int kc_image_sha256_fd(int fd, char hex[static 65], uint64_t *ret_size, struct kc_error *err);
/* The record beside a verified file (<dir>/.<file>.verified: SHA-256,
 * size, inode, mtime), so that it is not hashed at every use; any change
 * to the file invalidates it.  forget removes it. */
int kc_image_mark_verified(const char *path, const char *sha256, struct kc_error *err);
bool kc_image_is_verified(const char *path, const char *sha256);
void kc_image_forget(const char *path);
/* The ops image.ensure, image.put, image.commit (docs/protocol.md): args
 * as received, checked strictly here. */
int kc_agent_image_ensure(struct kc_agent *agent, const json_t *args, json_t **ret,
			  struct kc_error *err);
int kc_agent_image_put(struct kc_agent *agent, const json_t *args, json_t **ret,
		       struct kc_error *err);
int kc_agent_image_commit(struct kc_agent *agent, const json_t *args, json_t **ret,
			  struct kc_error *err);
/* Clean-up (image_prune.c): image.forget, pool.prune (docs/protocol.md);
 * args as received, checked strictly here.  kc_image_mark_cached marks a
 * file of <images.dir> as a copy the server sent (pool.prune may remove it
 * once the library no longer lists it). */
int kc_agent_image_forget(struct kc_agent *agent, const json_t *args, json_t **ret,
			  struct kc_error *err);
int kc_agent_pool_prune(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_image_mark_cached(const char *path, struct kc_error *err);

/* ---- volumes (issue 4, part V: volume.c; docs/storage.md "Volumes") ----
 * The ops vol.create, vol.delete, vol.resize, vol.attach, vol.detach,
 * vol.upload, vol.download (docs/protocol.md): args as received ({"pool":
 * the pool's definition, "name", "format", ...}), checked strictly here;
 * the storage work goes through pool.h's table. */
/* The largest chunk of vol.upload / vol.download (raw bytes, before base64). */
#define KC_VOL_CHUNK_MAX (512 * 1024)
int kc_agent_vol_create(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_agent_vol_delete(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_agent_vol_resize(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_agent_vol_attach(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_agent_vol_detach(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_agent_vol_upload(struct kc_agent *agent, const json_t *args, json_t **ret,
			struct kc_error *err);
int kc_agent_vol_download(struct kc_agent *agent, const json_t *args, json_t **ret,
			  struct kc_error *err);
/* The first virtio target (vdb..vdz) that none of the `n` domain XMLs
 * (config and live; NULL entries skipped) uses; KC_ERR_CONFLICT if none. */
int kc_vol_free_target(const char *const *xmls, size_t n, char ret[static 8], struct kc_error *err);

/* ---- clones and templates (issue 4, part C: clone.c, template.c;
 * docs/storage.md "Clones") ---- */
struct kc_pool_def;
/* kc_agent_vm_create with the disks in pool `pool_def` (NULL: the default
 * pool; req->pool must name the same pool).  The root disk is a linked
 * clone of req->image (an overlay on the pool's cached base volume) or a
 * full copy, as req->clone says. */
int kc_agent_vm_create_in(struct kc_agent *agent, const struct kc_vm_request *req,
			  const struct kc_pool_def *pool_def, json_t **ret, struct kc_error *err);
/* {"name","copying": bool,"percent"}: how far the full copy of VM name's
 * root disk is (vm.create.progress). */
int kc_agent_vm_create_progress(struct kc_agent *agent, const char *name, json_t **ret,
				struct kc_error *err);
/* The ops vm.template.prepare, vm.template.read, vm.template.done
 * (docs/protocol.md): a stopped VM's root disk flattened into a standalone
 * qcow2 (no backing file), read back in chunks, then removed.  Args as
 * received, checked strictly here. */
#define KC_TEMPLATE_CHUNK_MAX (512 * 1024)
int kc_agent_template_prepare(struct kc_agent *agent, const json_t *args, json_t **ret,
			      struct kc_error *err);
int kc_agent_template_read(struct kc_agent *agent, const json_t *args, json_t **ret,
			   struct kc_error *err);
int kc_agent_template_done(struct kc_agent *agent, const json_t *args, json_t **ret,
			   struct kc_error *err);
