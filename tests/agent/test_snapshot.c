/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_snapshot - VM snapshots (snapshot.c) against the real libvirtd: a VM
 * from the kctest image whose user-data counts its boots in a file on its
 * own disk and prints the count on the serial console, so that a revert
 * can be seen to bring the disk back.  Disk-only snapshot of the stopped
 * VM, one with memory of the running VM, the tree, revert both ways,
 * delete with re-parenting and with children, VM delete with snapshots,
 * bad input.  Everything is named kcsnap-<pid>-* (vm_fixture.h) and
 * removed at the end, pass or fail.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "agent.h"
#include "cleanup.h"
#include "json_util.h"
#include "tap.h"
#include "vm_fixture.h"
#include "vmspec.h"

#define BOOT_TIMEOUT_S 180

static struct vm_fixture fx;

static const char user_data[] = "#!/bin/sh\n"
				"mkdir -p /mnt/kcd\n"
				"if mount -t ext4 /dev/vda1 /mnt/kcd; then\n"
				"  n=$(cat /mnt/kcd/kcsnap-boots 2>/dev/null || echo 0)\n"
				"  n=$((n + 1))\n"
				"  echo $n > /mnt/kcd/kcsnap-boots\n"
				"  sync; umount /mnt/kcd\n"
				"  echo \"KCSNAP-BOOT=$n\"\n"
				"else\n"
				"  echo KCSNAP-BOOT=mount-failed\n"
				"fi\n";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The boot lines in the VM's serial log: how many, and the last count. */
static int boots(struct kc_agent *a, const char *vm, int *ret_last)
{
	char *buf = NULL;
	size_t len;
	uint64_t next, size;
	struct kc_error err = {0};
	int seen = 0;
	*ret_last = -1;
	if (kc_agent_vm_log_read(a, vm, 0, 4 * 1024 * 1024, &buf, &len, &next, &size, &err) < 0)
		return -1;
	for (char *p = buf; p && (p = strstr(p, "KCSNAP-BOOT=")); p++) {
		seen++;
		*ret_last = atoi(p + strlen("KCSNAP-BOOT="));
	}
	free(buf);
	return seen;
}

/* Waits for boot line number `count`; its counter, or -1. */
static int wait_boot(struct kc_agent *a, const char *vm, int count)
{
	double t0 = now_s();
	while (now_s() - t0 < BOOT_TIMEOUT_S) {
		int last;
		if (boots(a, vm, &last) >= count)
			return last;
		usleep(250 * 1000);
	}
	return -1;
}

static const char *sget(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "(null)";
}

static const json_t *find_snap(const json_t *list, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(list, "snapshots"), i, s)
	{
		if (strcmp(sget(s, "name"), name) == 0)
			return s;
	}
	return NULL;
}

static bool has_child(const json_t *snap, const char *child)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(snap, "children"), i, c)
	{
		if (strcmp(json_string_value(c), child) == 0)
			return true;
	}
	return false;
}

static const char *vm_state(struct kc_agent *a, const char *vm, char *buf, size_t len)
{
	_cleanup_json_ json_t *o = NULL;
	struct kc_error err = {0};
	snprintf(buf, len, "%s", kc_agent_vm_show(a, vm, &o, &err) == 0 ? sget(o, "state") : "?");
	return buf;
}

static void test_bad_input(struct kc_agent *a, const char *vm)
{
	struct kc_error err = {0};
	json_t *o = NULL;
	static const char *const bad[] = {"../x", "a/b", "", "-x", "a b", "x..y", "<s>"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		kc_error_clear(&err);
		ok(kc_agent_snapshot_create(a, vm, bad[i], NULL, &o, &err) < 0 &&
			   err.code == KC_ERR_INVALID,
		   "bad snapshot name '%s' is refused: %s", bad[i], err.message);
	}
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	kc_error_clear(&err);
	ok(kc_agent_snapshot_create(a, vm, longname, NULL, &o, &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "a 79-character name is refused");
	kc_error_clear(&err);
	ok(kc_agent_snapshot_create(a, vm, "s1", "tab\there", &o, &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "a description with a control character is refused: %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_snapshot_show(a, vm, "nosuch", &o, &err) < 0 && err.code == KC_ERR_NOT_FOUND,
	   "unknown snapshot is not found: %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_snapshot_revert(a, vm, "nosuch", false, &o, &err) < 0 &&
		   err.code == KC_ERR_NOT_FOUND,
	   "revert to an unknown snapshot is not found");
	kc_error_clear(&err);
	ok(kc_agent_snapshot_delete(a, vm, "nosuch", false, NULL, &err) < 0 &&
		   err.code == KC_ERR_NOT_FOUND,
	   "delete of an unknown snapshot is not found");
	char novm[96];
	snprintf(novm, sizeof(novm), "%s-novm", fx.prefix);
	kc_error_clear(&err);
	ok(kc_agent_snapshot_list(a, novm, &o, &err) < 0 && err.code == KC_ERR_NOT_FOUND,
	   "snapshots of an unknown VM: not found: %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_snapshot_create(a, novm, "s1", NULL, &o, &err) < 0 &&
		   err.code == KC_ERR_NOT_FOUND,
	   "snapshot of an unknown VM: not found");
}

static void test_snapshots(struct kc_agent *a)
{
	char vm[96], st[32];
	struct kc_error err = {0};
	snprintf(vm, sizeof(vm), "%s-vm", fx.prefix);

	_cleanup_json_ json_t *rq =
		json_pack("{s:s,s:i,s:s,s:b,s:s}", "name", vm, "memory_mib", 128, "image", "kctest",
			  "start", 0, "user_data", user_data);
	struct kc_vm_request req = {0};
	_cleanup_json_ json_t *created = NULL;
	int r = kc_vm_request_from_json(rq, &req, &err);
	if (r == 0)
		r = kc_agent_vm_create(a, &req, &created, &err);
	kc_vm_request_clear(&req);
	ok(r == 0, "create stopped VM %s %s", vm, err.message);
	if (r < 0)
		return;

	test_bad_input(a, vm);

	_cleanup_json_ json_t *off = NULL, *run = NULL, *list = NULL, *dup = NULL;
	kc_error_clear(&err);
	ok(kc_agent_snapshot_create(a, vm, "s-off", "before first boot", &off, &err) == 0,
	   "disk-only snapshot of the stopped VM %s", err.message);
	ok(off && !json_is_true(json_object_get(off, "memory")) &&
		   strcmp(sget(off, "state"), "shutoff") == 0,
	   "it has no memory and state shutoff (%s)", sget(off, "state"));
	ok(off && strcmp(sget(off, "description"), "before first boot") == 0 &&
		   json_is_string(json_object_get(off, "created_at")) &&
		   json_is_null(json_object_get(off, "parent")),
	   "description, creation time, no parent");
	const json_t *disks = json_object_get(off, "disks");
	bool vda_in = false, cd_out = false;
	size_t i;
	json_t *d;
	json_array_foreach(disks, i, d)
	{
		if (strcmp(sget(d, "target"), "vda") == 0 &&
		    strcmp(sget(d, "snapshot"), "internal") == 0)
			vda_in = true;
		else if (strcmp(sget(d, "snapshot"), "no") == 0)
			cd_out = true;
	}
	ok(vda_in && cd_out, "root disk snapshotted inside its qcow2, seed CD-ROM left out");
	kc_error_clear(&err);
	ok(kc_agent_snapshot_create(a, vm, "s-off", NULL, &dup, &err) < 0 &&
		   err.code == KC_ERR_CONFLICT,
	   "a second snapshot of the same name is a conflict: %s", err.message);

	kc_error_clear(&err);
	ok(kc_agent_vm_start(a, vm, &err) == 0, "start %s", err.message);
	int c1 = wait_boot(a, vm, 1);
	ok(c1 == 1, "first boot counts 1 on its disk (%d)", c1);

	kc_error_clear(&err);
	double t0 = now_s();
	r = kc_agent_snapshot_create(a, vm, "s-run", NULL, &run, &err);
	double took = now_s() - t0;
	ok(r == 0, "snapshot of the running VM (%.1f s) %s", took, err.message);
	ok(run && json_is_true(json_object_get(run, "memory")) &&
		   strcmp(sget(run, "state"), "running") == 0,
	   "it holds the memory, state running (%s)", sget(run, "state"));
	ok(json_integer_value(json_object_get(run, "memory_bytes")) > 0,
	   "the saved memory's size is read from the qcow2 snapshot table (%lld bytes)",
	   (long long)json_integer_value(json_object_get(run, "memory_bytes")));
	ok(run && strcmp(sget(run, "parent"), "s-off") == 0, "its parent is s-off");
	ok(strcmp(vm_state(a, vm, st, sizeof(st)), "running") == 0,
	   "the VM runs on after the snapshot (%s)", st);

	kc_error_clear(&err);
	ok(kc_agent_snapshot_list(a, vm, &list, &err) == 0, "list %s", err.message);
	ok(json_array_size(json_object_get(list, "snapshots")) == 2 &&
		   strcmp(sget(list, "current"), "s-run") == 0,
	   "two snapshots, current s-run");
	const json_t *l_off = find_snap(list, "s-off");
	ok(l_off && has_child(l_off, "s-run") &&
		   strcmp(sget(json_array_get(json_object_get(list, "snapshots"), 0), "name"),
			  "s-off") == 0,
	   "tree: s-off (oldest, first) has child s-run");

	/* A second boot writes 2 to the disk; reverting to s-off must undo it. */
	kc_error_clear(&err);
	ok(kc_agent_vm_destroy(a, vm, &err) == 0 && kc_agent_vm_start(a, vm, &err) == 0,
	   "force off and start again %s", err.message);
	int c2 = wait_boot(a, vm, 2);
	ok(c2 == 2, "second boot counts 2 (%d)", c2);

	_cleanup_json_ json_t *rv1 = NULL, *rv2 = NULL, *rv3 = NULL;
	kc_error_clear(&err);
	ok(kc_agent_snapshot_revert(a, vm, "s-off", false, &rv1, &err) == 0,
	   "revert the running VM to disk-only s-off %s", err.message);
	ok(strcmp(sget(rv1, "state"), "shutoff") == 0 &&
		   strcmp(vm_state(a, vm, st, sizeof(st)), "shutoff") == 0,
	   "it is shut off afterwards, as s-off recorded (%s)", st);
	kc_error_clear(&err);
	ok(kc_agent_vm_start(a, vm, &err) == 0, "start %s", err.message);
	int c3 = wait_boot(a, vm, 3);
	ok(c3 == 1, "the disk was brought back: this boot counts 1 again (%d)", c3);

	kc_error_clear(&err);
	ok(kc_agent_snapshot_revert(a, vm, "s-run", false, &rv2, &err) == 0,
	   "revert to s-run (with memory) %s", err.message);
	ok(strcmp(sget(rv2, "state"), "running") == 0 &&
		   strcmp(vm_state(a, vm, st, sizeof(st)), "running") == 0,
	   "it is running afterwards (%s)", st);
	sleep(2);
	int last, n = boots(a, vm, &last);
	ok(n == 3, "resumed from memory, not booted: still 3 boot lines (%d)", n);

	kc_error_clear(&err);
	ok(kc_agent_vm_delete(a, vm, true, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "delete of the running VM is refused (%s)", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_destroy(a, vm, &err) == 0, "force off %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_delete(a, vm, true, &err) < 0 && err.code == KC_ERR_CONFLICT &&
		   strstr(err.message, "2 snapshots"),
	   "delete of a VM with snapshots needs the flag: %s", err.message);

	kc_error_clear(&err);
	r = kc_agent_snapshot_revert(a, vm, "s-off", true, &rv3, &err);
	ok(r == 0 && strcmp(sget(rv3, "state"), "running") == 0,
	   "revert to disk-only s-off with start: running (%s) %s", sget(rv3, "state"),
	   err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_destroy(a, vm, &err) == 0, "force off %s", err.message);

	unsigned deleted = 0;
	kc_error_clear(&err);
	ok(kc_agent_snapshot_delete(a, vm, "s-off", false, &deleted, &err) == 0 && deleted == 1,
	   "delete s-off alone %s", err.message);
	_cleanup_json_ json_t *list2 = NULL, *c3snap = NULL, *rv4 = NULL;
	kc_error_clear(&err);
	kc_agent_snapshot_list(a, vm, &list2, &err);
	const json_t *l_run = find_snap(list2, "s-run");
	ok(json_array_size(json_object_get(list2, "snapshots")) == 1 && l_run &&
		   json_is_null(json_object_get(l_run, "parent")),
	   "its child s-run is re-parented to the root");
	kc_error_clear(&err);
	ok(kc_agent_snapshot_revert(a, vm, "s-run", false, &rv4, &err) == 0,
	   "revert to s-run again %s", err.message);
	kc_error_clear(&err);
	r = kc_agent_snapshot_create(a, vm, "s-child", NULL, &c3snap, &err);
	ok(r == 0 && strcmp(sget(c3snap, "parent"), "s-run") == 0,
	   "the next snapshot is a child of s-run (%s) %s", sget(c3snap, "parent"), err.message);
	kc_error_clear(&err);
	ok(kc_agent_snapshot_delete(a, vm, "s-run", true, &deleted, &err) == 0 && deleted == 2,
	   "delete s-run with its children: %u deleted %s", deleted, err.message);
	_cleanup_json_ json_t *list3 = NULL, *last_snap = NULL;
	kc_agent_snapshot_list(a, vm, &list3, &err);
	ok(json_array_size(json_object_get(list3, "snapshots")) == 0 &&
		   json_is_null(json_object_get(list3, "current")),
	   "no snapshot left, none current");

	kc_error_clear(&err);
	ok(kc_agent_vm_destroy(a, vm, &err) == 0, "force off %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_snapshot_create(a, vm, "s-last", NULL, &last_snap, &err) == 0,
	   "one more snapshot %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_delete_full(a, vm, true, true, &err) == 0,
	   "delete the VM with its snapshots and disks %s", err.message);
	virDomainPtr dom = virDomainLookupByName(fx.conn, vm);
	ok(!dom, "the domain is gone");
	if (dom)
		virDomainFree(dom);
	else
		virResetLastError();
}

/* vm_fixture_cleanup cannot undefine a domain that still has snapshot
 * metadata: drop it first. */
static void cleanup(void)
{
	virDomainPtr *doms = NULL;
	int n = fx.conn && fx.prefix[0] ? virConnectListAllDomains(fx.conn, &doms, 0) : 0;
	for (int i = 0; i < n; i++) {
		if (strncmp(virDomainGetName(doms[i]), fx.prefix, strlen(fx.prefix)) == 0) {
			virDomainDestroy(doms[i]);
			virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
								VIR_DOMAIN_UNDEFINE_NVRAM);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	vm_fixture_cleanup(&fx);
}

int main(void)
{
	const char *skip = vm_fixture_init(&fx, "kcsnap", NULL);
	if (skip) {
		printf("1..0 # SKIP %s\n", skip);
		cleanup();
		return 0;
	}
	static const char *const tcg[] = {"accel", "tcg", NULL};
	struct kc_error err = {0};
	struct kc_agent *a = vm_fixture_agent(&fx, tcg, &err);
	ok(a != NULL, "agent starts %s", err.message);
	if (a) {
		test_snapshots(a);
		kc_agent_free(a);
	}
	cleanup();
	return tap_done();
}
