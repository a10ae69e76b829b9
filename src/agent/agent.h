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

/* ---- events ---- */
/* Called from the agent's event thread when a domain changes state
 * (libvirt lifecycle events) or when the libvirt connection is lost or
 * restored (vm_name NULL, event "disconnected" / "connected"). */
typedef void (*kc_agent_event_fn)(const char *vm_name, const char *event, void *opaque);
void kc_agent_set_event_cb(struct kc_agent *agent, kc_agent_event_fn fn, void *opaque);
