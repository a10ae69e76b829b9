/* SPDX-License-Identifier: Apache-2.0 */
/* vm_ops.c - power operations, delete, list and show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"
#include "pool.h"
#include "sg_plug.h"

#define MAX_SHUTDOWN_S 3600

/* Looks the VM up and checks it is (or is not) running; the connection
 * reference in *ret_conn (see kc_dom_get). */
static virDomainPtr lookup_state(struct kc_agent *a, const char *name, int want_active,
				 virConnectPtr *ret_conn, struct kc_error *err)
{
	virDomainPtr d = kc_dom_get(a, name, ret_conn, err);
	if (!d)
		return NULL;
	int active = virDomainIsActive(d);
	if (active < 0) {
		kc_lverr(err, "reading the state of VM '%s'", name);
	} else if (want_active == 1 && !active) {
		kc_error_set(err, KC_ERR_CONFLICT, "VM %s is not running", name);
	} else if (want_active == 0 && active) {
		kc_error_set(err, KC_ERR_CONFLICT, "VM %s is running already", name);
	} else {
		return d;
	}
	virDomainFree(d);
	virConnectClose(*ret_conn);
	*ret_conn = NULL;
	return NULL;
}

/* One libvirt call on a VM that must be (want_active 1) or must not be
 * (0) running; `doing` names it in the error. */
static int power_op(struct kc_agent *a, const char *name, int want_active,
		    int (*op)(virDomainPtr d), const char *doing, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = lookup_state(a, name, want_active, &conn, err);
	if (!d)
		return -1;
	if (op(d) < 0)
		return kc_lverr(err, "%s VM '%s'", doing, name);
	return 0;
}

static int reboot_dom(virDomainPtr d)
{
	return virDomainReboot(d, 0);
}

int kc_agent_vm_start(struct kc_agent *a, const char *name, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = lookup_state(a, name, 0, &conn, err);
	if (!d)
		return -1;
	/* A NIC on the hybrid plug needs its bridge before QEMU opens the tap. */
	if (kc_sg_plug_prepare(d, err) < 0)
		return -1;
	if (virDomainCreate(d) < 0)
		return kc_lverr(err, "starting VM '%s'", name);
	return 0;
}

int kc_agent_vm_shutdown(struct kc_agent *a, const char *name, unsigned timeout_s, bool force,
			 bool *ret_forced, struct kc_error *err)
{
	if (timeout_s > MAX_SHUTDOWN_S)
		return kc_error_set(err, KC_ERR_INVALID, "timeout_s must be at most %d",
				    MAX_SHUTDOWN_S);
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = lookup_state(a, name, 1, &conn, err);
	if (!d)
		return -1;
	if (virDomainShutdownFlags(d, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0) {
		/* Gone off in between: that is what was asked for. */
		if (virDomainIsActive(d) == 0) {
			virResetLastError();
			if (ret_forced)
				*ret_forced = false;
			return 0;
		}
		if (!force)
			return kc_lverr(err, "shutting down VM '%s'", name);
		virResetLastError();
	}
	uint64_t deadline = kc_now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		int active = virDomainIsActive(d);
		if (active == 0) {
			if (ret_forced)
				*ret_forced = false;
			return 0;
		}
		if (active < 0)
			return kc_lverr(err, "reading the state of VM '%s'", name);
		if (kc_now_ms() >= deadline)
			break;
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!force)
		return kc_error_set(err, KC_ERR_TIMEOUT,
				    "VM %s did not shut down within %u s (ACPI); use force", name,
				    timeout_s);
	if (virDomainDestroy(d) < 0) {
		if (virDomainIsActive(d) != 0)
			return kc_lverr(err, "forcing off VM '%s'", name);
		virResetLastError();
	}
	if (ret_forced)
		*ret_forced = true;
	return 0;
}

int kc_agent_vm_reboot(struct kc_agent *a, const char *name, struct kc_error *err)
{
	return power_op(a, name, 1, reboot_dom, "rebooting", err);
}

int kc_agent_vm_destroy(struct kc_agent *a, const char *name, struct kc_error *err)
{
	return power_op(a, name, 1, virDomainDestroy, "forcing off", err);
}

/* Deletes the volume at path only if it lives in the agent's pool, or in
 * one of our other pools (kc-*) under a name of VM `vm`'s own disks:
 * never a base volume its root disk is an overlay of (clone.c). */
static void delete_own_volume(struct kc_agent *a, virConnectPtr conn, const char *vm,
			      const char *path)
{
	virStorageVolPtr v = virStorageVolLookupByPath(conn, path);
	if (!v) {
		virResetLastError();
		return;
	}
	virStoragePoolPtr p = virStoragePoolLookupByVolume(v);
	const char *pn = p ? virStoragePoolGetName(p) : NULL;
	const char *vn = virStorageVolGetName(v);
	size_t vl = strlen(vm);
	bool own = pn && strcmp(pn, a->pool_name) == 0;
	if (pn && vn && strncmp(pn, "kc-", 3) == 0 && strncmp(vn, vm, vl) == 0 &&
	    (strcmp(vn + vl, "-root.qcow2") == 0 || strncmp(vn + vl, "-data", 5) == 0))
		own = true;
	if (own && virStorageVolDelete(v, 0) < 0)
		virResetLastError();
	if (p)
		virStoragePoolFree(p);
	virStorageVolFree(v);
	virResetLastError();
}

void kc_vm_nfs_disks_delete(struct kc_agent *a, const char *vm, char **disks)
{
	for (size_t i = 0; disks && disks[i]; i++) {
		char *tab = strchr(disks[i], '\t');
		char *slash = tab ? strrchr(tab + 1, '/') : NULL;
		if (!slash || slash == tab + 1 || !kc_intent_owned_name(slash + 1, vm) ||
		    strstr(slash + 1, "-seed.iso"))
			continue;
		/* The pool of that server and folder, as the create's was. */
		struct kc_pool_def def = {.type = KC_POOL_NFS,
					  .overcommit_pct = KC_POOL_OVERCOMMIT_MIN};
		snprintf(def.name, sizeof(def.name), "vm-delete");
		def.server = strndup(disks[i], (size_t)(tab - disks[i]));
		def.export_path = strndup(tab + 1, (size_t)(slash - tab - 1));
		struct kc_pool *p = NULL;
		if (def.server && def.export_path && kc_pool_open(a, &def, &p, NULL) == 0)
			kc_pool_vol_delete(p, slash + 1, NULL);
		kc_pool_close(p);
		kc_pool_def_clear(&def);
	}
}

int kc_agent_vm_delete(struct kc_agent *a, const char *name, bool with_disks, struct kc_error *err)
{
	return kc_agent_vm_delete_full(a, name, with_disks, false, err);
}

int kc_agent_vm_delete_full(struct kc_agent *a, const char *name, bool with_disks,
			    bool with_snapshots, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	pthread_mutex_lock(&a->create_lock);
	int ret = -1;
	char **paths = NULL, **nfs = NULL;
	struct kc_sg_plugs *plugs = NULL;
	virDomainPtr d = NULL;
	if (kc_agent_is_creating(a, name)) {
		kc_error_set(err, KC_ERR_CONFLICT,
			     "VM %s is being created; try again when it is done", name);
		goto out;
	}
	d = kc_dom_lookup(conn, name, err);
	if (!d)
		goto out;
	int active = virDomainIsActive(d);
	if (active != 0) {
		if (active > 0)
			kc_error_set(err, KC_ERR_CONFLICT, "VM %s is running; stop it first", name);
		else
			kc_lverr(err, "reading the state of VM '%s'", name);
		goto out;
	}
	int snaps = 0;
	if (kc_snapshots_count(d, &snaps, err) < 0)
		goto out;
	if (snaps > 0 && !with_snapshots) {
		kc_error_set(err, KC_ERR_CONFLICT,
			     "VM %s has %d snapshot%s; delete them, or delete the VM with its "
			     "snapshots (API: ?snapshots=true, CLI: vm delete --snapshots)",
			     name, snaps, snaps == 1 ? "" : "s");
		goto out;
	}
	/* Kept disks must not keep snapshot data nothing refers to any more;
	 * disks about to be deleted take theirs with them. */
	if (snaps > 0 && !with_disks && kc_snapshots_delete_all(d, err) < 0)
		goto out;
	if (with_disks && (!(paths = kc_vm_disk_paths(d, err)) || !(nfs = kc_vm_nfs_disks(d, err))))
		goto out;
	plugs = kc_sg_plug_read(d); /* read while the definition exists */
	if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
					      VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
					      VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
					      VIR_DOMAIN_UNDEFINE_NVRAM) < 0) {
		kc_lverr(err, "undefining VM '%s'", name);
		goto out;
	}
	kc_sg_plug_remove(steal_ptr(&plugs));
	if (with_disks) {
		for (size_t i = 0; paths[i]; i++)
			delete_own_volume(a, conn, name, paths[i]);
		kc_vm_nfs_disks_delete(a, name, nfs);
		_cleanup_free_ char *log =
			kc_path_join_name(a->console_dir, name, ".log", "VM name", NULL);
		if (log)
			unlink(log);
	}
	ret = 0;
out:
	free(plugs);
	kc_strv_free(paths);
	kc_strv_free(nfs);
	if (d)
		virDomainFree(d);
	pthread_mutex_unlock(&a->create_lock);
	return ret;
}

/* Whether dom went away while it was being read (a transient domain that
 * stopped, or one undefined meanwhile): libvirt does not always say so
 * with VIR_ERR_NO_DOMAIN, so ask again by UUID. */
static bool vanished(virConnectPtr conn, virDomainPtr dom)
{
	unsigned char uuid[VIR_UUID_BUFLEN];
	if (virDomainGetUUID(dom, uuid) < 0)
		return false;
	virDomainPtr again = virDomainLookupByUUID(conn, uuid);
	if (again) {
		virDomainFree(again);
		return false;
	}
	virErrorPtr e = virGetLastError();
	bool gone = e && e->code == VIR_ERR_NO_DOMAIN;
	virResetLastError();
	return gone;
}

int kc_agent_vm_list(struct kc_agent *a, json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(conn, &doms, 0);
	if (n < 0)
		return kc_lverr(err, "listing VMs");
	_cleanup_json_ json_t *arr = json_array();
	int r = 0;
	for (int i = 0; i < n; i++) {
		struct kc_error e = {0};
		json_t *vm = r == 0 ? kc_vm_json(a, conn, doms[i], &e) : NULL;
		if (vm)
			json_array_append_new(arr, vm);
		else if (r == 0 && e.code != KC_ERR_NOT_FOUND && !vanished(conn, doms[i]))
			r = kc_error_set(err, e.code, "%s", e.message);
		virDomainFree(doms[i]);
	}
	free(doms);
	if (r < 0)
		return -1;
	*ret = steal_ptr(&arr);
	return 0;
}

int kc_agent_vm_show(struct kc_agent *a, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = kc_dom_get(a, name, &conn, err);
	if (!d)
		return -1;
	json_t *vm = kc_vm_json(a, conn, d, err);
	if (!vm)
		return -1;
	*ret = vm;
	return 0;
}
