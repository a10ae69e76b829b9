/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agent - the agent library against the real libvirtd.  Everything it
 * makes is named kcagt-<pid>-*, lives under /tmp/kcagt-<pid>, and is removed
 * at the end, pass or fail (vm_fixture.h, which also reads KC_TEST_IMAGE
 * and KC_TEST_URI).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent.h"
#include "cleanup.h"
#include "tap.h"
#include "config.h"
#include "json_util.h"
#include "vm_fixture.h"
#include "vmspec.h"

static struct vm_fixture fx;
static char net_name[96];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* probe_image NULL: auto mode must fall back to TCG without booting. */
static struct kc_agent *agent_new_probe(const char *probe_image, const char *probe_timeout,
					struct kc_error *err)
{
	const char *extra[] = {"probe.image",
			       probe_image ? probe_image : "/nonexistent/kctest.qcow2",
			       probe_timeout ? "probe.timeout" : NULL, probe_timeout, NULL};
	return vm_fixture_agent(&fx, extra, err);
}

static struct kc_agent *agent_new(struct kc_error *err)
{
	return agent_new_probe(NULL, NULL, err);
}

/* Parses a request the way the server does. */
static int request(struct kc_vm_request *req, const char *json_fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, json_fmt);
	vsnprintf(buf, sizeof(buf), json_fmt, ap);
	va_end(ap);
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_loads(buf, 0, &jerr);
	struct kc_error err = {0};
	if (!j || kc_vm_request_from_json(j, req, &err) < 0) {
		printf("# bad test request %s: %s\n", buf, err.message);
		return -1;
	}
	return 0;
}

/* Volumes in the test pool, without the hidden .creating folder (libvirt
 * lists a dir pool's sub-folders as volumes). */
static size_t pool_volumes(virConnectPtr c)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, fx.pool);
	if (!p)
		return 999;
	virStoragePoolRefresh(p, 0);
	virStorageVolPtr *vols = NULL;
	int n = virStoragePoolListAllVolumes(p, &vols, 0);
	virStoragePoolFree(p);
	if (n < 0)
		return 999;
	size_t count = 0;
	for (int i = 0; i < n; i++) {
		/* Base volumes (clone.c) are the template's, shared by every
		 * VM of the pool and kept when VMs go: not a VM's volumes. */
		const char *vn = virStorageVolGetName(vols[i]);
		if (vn[0] != '.' && strncmp(vn, "base-", 5) != 0)
			count++;
		virStorageVolFree(vols[i]);
	}
	free(vols);
	return count;
}

static bool pool_file(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/data/pool/%s", fx.dir, name);
	return access(path, F_OK) == 0;
}

static bool domain_exists(virConnectPtr c, const char *name)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	if (d)
		virDomainFree(d);
	return d != NULL;
}

/* Waits until the serial log holds `count` lines starting with the ready
 * marker; returns seconds waited or -1. */
static double wait_ready(struct kc_agent *a, const char *vm, int count, int timeout_s)
{
	double t0 = now_s();
	while (now_s() - t0 < timeout_s) {
		char *buf = NULL;
		size_t len;
		uint64_t next, size;
		struct kc_error err = {0};
		if (kc_agent_vm_log_read(a, vm, 0, 1024 * 1024, &buf, &len, &next, &size, &err) ==
		    0) {
			int seen = 0;
			for (char *p = buf; (p = strstr(p, "KVMCLOUD-READY")); p++)
				seen++;
			free(buf);
			if (seen >= count)
				return now_s() - t0;
		}
		usleep(200 * 1000);
	}
	return -1;
}

static int events_started, events_stopped;
static char event_vm[128];
static void on_event(const char *vm, const char *event, void *opaque)
{
	if (!vm || strcmp(vm, event_vm) != 0)
		return;
	if (strcmp(event, "started") == 0)
		__atomic_add_fetch(&events_started, 1, __ATOMIC_SEQ_CST);
	if (strcmp(event, "stopped") == 0)
		__atomic_add_fetch(&events_stopped, 1, __ATOMIC_SEQ_CST);
}

static void test_bad_inputs(struct kc_agent *a, virConnectPtr c)
{
	static const struct {
		const char *json;
		enum kc_errcode code;
		const char *desc;
	} cases[] = {
		{"{\"name\":\"%s-bad\",\"memory_mib\":128,\"vcpus\":64,\"image\":\"kctest\"}",
		 KC_ERR_INVALID, "vcpus above the host's CPUs"},
		{"{\"name\":\"%s-bad\",\"memory_mib\":99999999,\"image\":\"kctest\"}",
		 KC_ERR_INVALID, "memory above the host's"},
		{"{\"name\":\"%s-bad\",\"memory_mib\":128,\"image\":\"nosuchimage\"}",
		 KC_ERR_NOT_FOUND, "missing image"},
		{"{\"name\":\"%s-bad\",\"memory_mib\":128,\"image\":\"kctest\",\"iso\":\"nosuch\"}",
		 KC_ERR_NOT_FOUND, "missing ISO"},
		{"{\"name\":\"%s-bad\",\"memory_mib\":128,\"image\":\"kctest\","
		 "\"nics\":[{\"type\":\"network\",\"source\":\"kcagt-nonet\"}]}",
		 KC_ERR_NOT_FOUND, "missing libvirt network"},
		{"{\"name\":\"%s-bad\",\"memory_mib\":128,\"image\":\"kctest\","
		 "\"nics\":[{\"type\":\"bridge\",\"source\":\"kcagtbr9\"}]}",
		 KC_ERR_NOT_FOUND, "missing bridge"},
		{"{\"name\":\"%s-bad\",\"memory_mib\":128,\"image\":\"kctest\","
		 "\"data_disks_gib\":[16000,16000,16000,16000]}",
		 KC_ERR_NO_CAPACITY, "disks larger than the pool"},
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		struct kc_vm_request req = {0};
		if (request(&req, cases[i].json, fx.prefix) < 0) {
			ok(false, "bad input: %s (request parses)", cases[i].desc);
			continue;
		}
		struct kc_error err = {0};
		json_t *vm = NULL;
		int r = kc_agent_vm_create(a, &req, &vm, &err);
		ok(r < 0 && err.code == cases[i].code && !strstr(err.message, fx.dir),
		   "bad input: %s -> %s, no server path in the message (%s)", cases[i].desc,
		   kc_errcode_name(cases[i].code), err.message);
		ok(!domain_exists(c, req.name) && pool_volumes(c) == 0,
		   "bad input: %s created nothing", cases[i].desc);
		json_decref(vm);
		kc_vm_request_clear(&req);
	}
}

/* A network that exists but is not active: the domain defines, its start
 * fails, and the create must roll everything back. */
static void test_rollback(struct kc_agent *a, virConnectPtr c)
{
	char xml[256];
	snprintf(xml, sizeof(xml), "<network><name>%s</name><bridge name='kcagtbr%d'/></network>",
		 net_name, getpid() % 1000);
	virNetworkPtr net = virNetworkDefineXML(c, xml);
	if (!net) {
		ok(false, "rollback: define inactive test network");
		return;
	}
	struct kc_vm_request req = {0};
	request(&req,
		"{\"name\":\"%s-rb\",\"memory_mib\":128,\"image\":\"kctest\",\"data_disks_gib\":[1]"
		","
		"\"nics\":[{\"type\":\"network\",\"source\":\"%s\"}]}",
		fx.prefix, net_name);
	struct kc_error err = {0};
	json_t *vm = NULL;
	int r = kc_agent_vm_create(a, &req, &vm, &err);
	ok(r < 0 && err.code == KC_ERR_HYPERVISOR, "rollback: start failure is reported (%s)",
	   err.message);
	ok(!domain_exists(c, req.name), "rollback: domain undefined");
	ok(pool_volumes(c) == 0, "rollback: root, data and seed volumes removed");
	char log[400];
	snprintf(log, sizeof(log), "%s/data/console/%s.log", fx.dir, req.name);
	ok(access(log, F_OK) != 0, "rollback: console log removed");
	json_decref(vm);
	kc_vm_request_clear(&req);
	virNetworkUndefine(net);
	virNetworkFree(net);
}

static void test_lifecycle(struct kc_agent *a, virConnectPtr c)
{
	struct kc_vm_request req = {0};
	snprintf(event_vm, sizeof(event_vm), "%s-vm1", fx.prefix);
	kc_agent_set_event_cb(a, on_event, NULL);
	if (request(&req,
		    "{\"name\":\"%s\",\"memory_mib\":128,\"image\":\"kctest\",\"disk_gib\":1,"
		    "\"data_disks_gib\":[1],\"hostname\":\"kcagt-host\",\"graphics\":\"vnc\","
		    "\"user_data\":\"#!/bin/sh\\necho KCAGT-USERDATA-RAN\\n\"}",
		    event_vm) < 0) {
		ok(false, "lifecycle: request parses");
		return;
	}
	struct kc_error err = {0};
	_cleanup_json_ json_t *vm = NULL;
	double t0 = now_s();
	int r = kc_agent_vm_create(a, &req, &vm, &err);
	double t_create = now_s() - t0;
	ok(r == 0, "create %s (%.2f s, define+start) %s", req.name, t_create, err.message);
	if (r < 0) {
		kc_vm_request_clear(&req);
		return;
	}
	const char *name = req.name;
	ok(strcmp(json_string_value(json_object_get(vm, "state")), "running") == 0,
	   "created VM is running");
	ok(json_is_true(json_object_get(vm, "managed")), "created VM is managed");
	ok(strcmp(json_string_value(json_object_get(vm, "accel")), "tcg") == 0, "accel is tcg");
	const char *image = json_string_value(json_object_get(vm, "image"));
	ok(image && strcmp(image, "kctest") == 0, "image from metadata");
	ok(json_is_string(json_object_get(vm, "created_at")), "created_at from metadata");
	json_t *disks = json_object_get(vm, "disks");
	ok(json_array_size(disks) == 3, "root, data and seed disks (%zu)", json_array_size(disks));
	json_t *root = json_array_get(disks, 0);
	ok(json_integer_value(json_object_get(root, "capacity_bytes")) == 1LL << 30,
	   "root disk grown to disk_gib");
	json_t *vnc = json_object_get(vm, "vnc");
	ok(vnc && strcmp(json_string_value(json_object_get(vnc, "listen")), "127.0.0.1") == 0 &&
		   json_integer_value(json_object_get(vnc, "port")) >= 5900,
	   "VNC on 127.0.0.1 with a port");
	char seed[400];
	struct stat st;
	snprintf(seed, sizeof(seed), "%s/data/pool/%s-seed.iso", fx.dir, req.name);
	unsigned mode = stat(seed, &st) == 0 ? st.st_mode & 07777 : 0;
	ok(mode == 0600, "seed ISO is mode 0600 (%o)", mode);
	const char *mac = json_string_value(
		json_object_get(json_array_get(json_object_get(vm, "nics"), 0), "mac"));
	ok(mac && strncmp(mac, "52:54:00:", 9) == 0, "MAC generated in 52:54:00 (%s)", mac);

	double t_ready = wait_ready(a, name, 1, 120);
	ok(t_ready >= 0, "ready line in the serial log (%.1f s after create returned)", t_ready);
	char *buf = NULL;
	size_t len;
	uint64_t next, size;
	kc_error_clear(&err);
	if (kc_agent_vm_log_read(a, name, 0, 1 << 20, &buf, &len, &next, &size, &err) == 0) {
		ok(strstr(buf, "hostname=kcagt-host") != NULL, "seed ISO gave the hostname");
		ok(strstr(buf, "KCAGT-USERDATA-RAN") != NULL, "seed ISO user-data ran");
		ok(next == len && size >= len, "log offsets (next %llu, size %llu)",
		   (unsigned long long)next, (unsigned long long)size);
		free(buf);
		buf = NULL;
		kc_agent_vm_log_read(a, name, next, 10, &buf, &len, &next, &size, &err);
		ok(buf && len <= 10, "log read from an offset, bounded by max");
		free(buf);
	} else {
		ok(false, "log read: %s", err.message);
	}

	/* Interactive console: a root shell is on ttyS0. */
	int fd = -1;
	kc_error_clear(&err);
	ok(kc_agent_vm_console_open(a, name, &fd, &err) == 0, "console opens %s", err.message);
	if (fd >= 0) {
		const char *cmd = "\necho kc-console-$((6*7))\n";
		ssize_t w = write(fd, cmd, strlen(cmd));
		char acc[8192] = "";
		size_t alen = 0;
		double tc = now_s();
		while (w > 0 && !strstr(acc, "kc-console-42") && now_s() - tc < 20) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, 500) > 0) {
				ssize_t n = read(fd, acc + alen, sizeof(acc) - 1 - alen);
				if (n <= 0)
					break;
				alen += n;
				acc[alen] = '\0';
				if (alen > sizeof(acc) - 100)
					alen = 0;
			}
		}
		ok(strstr(acc, "kc-console-42") != NULL, "console round trip through the shell");
		close(fd);
	}

	kc_error_clear(&err);
	ok(kc_agent_vm_start(a, name, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "start while running is a conflict (%s)", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_delete(a, name, true, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "delete while running is a conflict (%s)", err.message);

	kc_error_clear(&err);
	ok(kc_agent_vm_reboot(a, name, &err) == 0, "reboot %s", err.message);
	t_ready = wait_ready(a, name, 2, 120);
	ok(t_ready >= 0, "ready again after reboot (%.1f s)", t_ready);

	bool forced = true;
	kc_error_clear(&err);
	t0 = now_s();
	r = kc_agent_vm_shutdown(a, name, 60, true, &forced, &err);
	ok(r == 0 && !forced, "ACPI shutdown, not forced (%.1f s) %s", now_s() - t0, err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_shutdown(a, name, 5, true, &forced, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "shutdown of a stopped VM is a conflict (%s)", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_start(a, name, &err) == 0, "start again %s", err.message);
	/* Power button before the guest's acpid runs is lost: force path. */
	kc_error_clear(&err);
	r = kc_agent_vm_shutdown(a, name, 0, true, &forced, &err);
	ok(r == 0 && forced, "shutdown with timeout 0 is forced");
	kc_error_clear(&err);
	ok(kc_agent_vm_start(a, name, &err) == 0, "start once more %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_destroy(a, name, &err) == 0, "destroy %s", err.message);
	kc_error_clear(&err);
	ok(kc_agent_vm_destroy(a, name, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "destroy of a stopped VM is a conflict");

	_cleanup_json_ json_t *list = NULL;
	kc_error_clear(&err);
	bool found = false;
	if (kc_agent_vm_list(a, &list, &err) == 0) {
		size_t i;
		json_t *v;
		json_array_foreach(list, i,
				   v) if (strcmp(json_string_value(json_object_get(v, "name")),
						 name) == 0) found =
			strcmp(json_string_value(json_object_get(v, "state")), "shutoff") == 0;
	}
	ok(found, "list has the VM, shut off");

	kc_error_clear(&err);
	_cleanup_json_ json_t *dup = NULL;
	ok(kc_agent_vm_create(a, &req, &dup, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "create of an existing name is a conflict (%s)", err.message);

	kc_error_clear(&err);
	ok(kc_agent_vm_delete(a, name, true, &err) == 0, "delete with disks %s", err.message);
	ok(!domain_exists(c, name), "domain gone");
	ok(pool_volumes(c) == 0, "volumes gone");
	char path[400];
	snprintf(path, sizeof(path), "%s/data/console/%s.log", fx.dir, name);
	ok(access(path, F_OK) != 0, "console log gone");
	snprintf(path, sizeof(path), "%s/data/images/kctest.qcow2", fx.dir);
	ok(access(path, F_OK) == 0, "template image kept");
	kc_error_clear(&err);
	ok(kc_agent_vm_show(a, name, &dup, &err) < 0 && err.code == KC_ERR_NOT_FOUND,
	   "show after delete: not found");
	usleep(300 * 1000);
	ok(__atomic_load_n(&events_started, __ATOMIC_SEQ_CST) >= 3 &&
		   __atomic_load_n(&events_stopped, __ATOMIC_SEQ_CST) >= 3,
	   "lifecycle events (started %d, stopped %d)", events_started, events_stopped);
	kc_agent_set_event_cb(a, NULL, NULL);
	kc_vm_request_clear(&req);
}

static bool make_volume(virConnectPtr c, const char *name)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, fx.pool);
	char xml[512];
	snprintf(xml, sizeof(xml),
		 "<volume><name>%s</name><capacity>1048576</capacity>"
		 "<target><format type='qcow2'/></target></volume>",
		 name);
	virStorageVolPtr v = p ? virStorageVolCreateXML(p, xml, 0) : NULL;
	if (v)
		virStorageVolFree(v);
	if (p)
		virStoragePoolFree(p);
	return v != NULL;
}

static void delete_volumes(virConnectPtr c)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, fx.pool);
	if (!p)
		return;
	virStoragePoolRefresh(p, 0);
	virStorageVolPtr *vols = NULL;
	int n = virStoragePoolListAllVolumes(p, &vols, 0);
	for (int i = 0; i < n; i++) {
		if (virStorageVolGetName(vols[i])[0] != '.')
			virStorageVolDelete(vols[i], 0);
		virStorageVolFree(vols[i]);
	}
	free(vols);
	virStoragePoolFree(p);
}

/* An intent record as a create writes it; returns its fd (unlocked). */
static int write_record(const char *vm, const char *files)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/data/pool/.creating", fx.dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/data/pool/.creating/%s", fx.dir, vm);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	char buf[512];
	int len = snprintf(buf, sizeof(buf), "999999\n%s", files);
	if (write(fd, buf, len) != len) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool record_exists(const char *vm)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/data/pool/.creating/%s", fx.dir, vm);
	return access(path, F_OK) == 0;
}

/* Start-up clean-up removes only what intent records of dead creates name. */
static void test_orphans(virConnectPtr c)
{
	struct kc_error err = {0};
	struct kc_agent *a = agent_new(&err);
	ok(a != NULL, "orphans: agent starts %s", err.message);
	if (!a)
		return;

	/* 1. Disks kept by delete with_disks=false survive a restart. */
	struct kc_vm_request req = {0};
	request(&req,
		"{\"name\":\"%s-kept\",\"memory_mib\":128,\"image\":\"kctest\","
		"\"data_disks_gib\":[1],\"start\":false}",
		fx.prefix);
	_cleanup_json_ json_t *vm = NULL;
	ok(kc_agent_vm_create(a, &req, &vm, &err) == 0, "orphans: create %s (not started) %s",
	   req.name, err.message);
	ok(!record_exists(req.name), "orphans: the record is gone after the create");
	kc_error_clear(&err);
	ok(kc_agent_vm_delete(a, req.name, false, &err) == 0, "orphans: delete keeping disks %s",
	   err.message);
	ok(pool_volumes(c) == 3, "orphans: root, data and seed kept (%zu)", pool_volumes(c));
	kc_agent_free(a);

	/* 2. A create that died: record naming a volume and a seed, no lock. */
	char dead[64], files[256], name[512];
	snprintf(dead, sizeof(dead), "%s-dead", fx.prefix);
	snprintf(name, sizeof(name), "%s-root.qcow2", dead);
	bool made = make_volume(c, name);
	snprintf(name, sizeof(name), "%s/data/pool/%s-seed.iso", fx.dir, dead);
	close(open(name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	snprintf(files, sizeof(files), "%s-root.qcow2\n%s-seed.iso\n%s-kept-root.qcow2\n", dead,
		 dead, fx.prefix);
	int fd = write_record(dead, files);
	ok(made && fd >= 0, "orphans: dead create simulated");
	if (fd >= 0)
		close(fd);

	/* 3. A create running in another process: its record is locked. */
	char live[64];
	snprintf(live, sizeof(live), "%s-live", fx.prefix);
	snprintf(name, sizeof(name), "%s-root.qcow2", live);
	made = make_volume(c, name);
	snprintf(files, sizeof(files), "%s-root.qcow2\n", live);
	int lfd = write_record(live, files);
	ok(made && lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0,
	   "orphans: live create simulated (record locked)");

	/* 4. Stale temp folders: an old one is removed; a locked one, one that
	 * is not ours and one newer than the process are kept. */
	char old_tmp[400], locked_tmp[400], other[400], fresh[400];
	snprintf(old_tmp, sizeof(old_tmp), "%s/data/seed-Ab12Cd", fx.dir);
	snprintf(locked_tmp, sizeof(locked_tmp), "%s/data/probe-Xy34Zw", fx.dir);
	snprintf(other, sizeof(other), "%s/data/seed-not-ours", fx.dir);
	snprintf(fresh, sizeof(fresh), "%s/data/seed-Fr35h1", fx.dir);
	mkdir(old_tmp, 0700);
	mkdir(locked_tmp, 0700);
	mkdir(other, 0700);
	snprintf(name, sizeof(name), "%s/user-data", old_tmp);
	close(open(name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	utimensat(AT_FDCWD, old_tmp, old, 0);
	utimensat(AT_FDCWD, locked_tmp, old, 0);
	utimensat(AT_FDCWD, other, old, 0);
	int dfd = open(locked_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	flock(dfd, LOCK_EX | LOCK_NB);
	mkdir(fresh, 0700);

	kc_error_clear(&err);
	a = agent_new(&err);
	ok(a != NULL, "orphans: agent restarts %s", err.message);
	snprintf(name, sizeof(name), "%s-kept-root.qcow2", fx.prefix);
	ok(pool_file(name) && pool_volumes(c) == 4,
	   "orphans: kept disks survive the restart, even when a dead record names them (%zu)",
	   pool_volumes(c));
	snprintf(name, sizeof(name), "%s-root.qcow2", dead);
	ok(!pool_file(name), "orphans: dead create's volume removed");
	snprintf(name, sizeof(name), "%s-seed.iso", dead);
	ok(!pool_file(name), "orphans: dead create's seed removed");
	ok(!record_exists(dead), "orphans: dead create's record removed");
	snprintf(name, sizeof(name), "%s-root.qcow2", live);
	ok(pool_file(name) && record_exists(live), "orphans: live create left alone");
	ok(access(old_tmp, F_OK) != 0, "orphans: stale seed-XXXXXX folder removed");
	ok(access(locked_tmp, F_OK) == 0 && access(other, F_OK) == 0 && access(fresh, F_OK) == 0,
	   "orphans: locked, foreign and fresh temp folders kept");
	close(dfd);

	/* A new create of the kept name refuses to take the kept disks. */
	kc_error_clear(&err);
	_cleanup_json_ json_t *again = NULL;
	ok(a && kc_agent_vm_create(a, &req, &again, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "orphans: create over kept disks is a conflict (%s)", err.message);
	ok(pool_volumes(c) == 4, "orphans: and leaves them (%zu)", pool_volumes(c));
	/* A create over a live record of another process waits, then gives up. */
	struct kc_vm_request lreq = {0};
	request(&lreq, "{\"name\":\"%s\",\"memory_mib\":128,\"image\":\"kctest\"}", live);
	kc_error_clear(&err);
	ok(a && kc_agent_vm_create(a, &lreq, &again, &err) < 0 && err.code == KC_ERR_CONFLICT &&
		   strstr(err.message, "another process"),
	   "orphans: create of a name another process creates is a conflict (%s)", err.message);
	kc_vm_request_clear(&lreq);
	close(lfd);

	kc_agent_free(a);
	kc_error_clear(&err);
	a = agent_new(&err);
	snprintf(name, sizeof(name), "%s-root.qcow2", live);
	ok(a && !record_exists(live) && !pool_file(name),
	   "orphans: once its creator is gone, a record is reaped at the next start");
	kc_agent_free(a);
	delete_volumes(c);
	kc_vm_request_clear(&req);
}

struct probe_run {
	struct kc_agent *a;
	int r;
};

static void *probe_thread(void *opaque)
{
	struct probe_run *p = opaque;
	struct kc_error err = {0};
	json_t *check = NULL;
	p->r = kc_agent_host_check(p->a, true, &check, &err);
	json_decref(check);
	return NULL;
}

/* Two host checks with probe_kvm at once: one probe, the other waits and
 * takes its result. */
static void test_probe_once(void)
{
	char img[400], data[300];
	snprintf(img, sizeof(img), "%s/data/images/kctest.qcow2", fx.dir);
	snprintf(data, sizeof(data), "%s/data", fx.dir);
	struct kc_error err = {0};
	double t_one = now_s();
	/* No accel.json yet: the start probes once. */
	struct kc_agent *a = agent_new_probe(img, "3", &err);
	t_one = now_s() - t_one;
	ok(a != NULL, "probe: agent with a probe image starts (%.1f s) %s", t_one, err.message);
	if (!a)
		return;
	struct probe_run runs[2] = {{a, -1}, {a, -1}};
	pthread_t t[2];
	double t0 = now_s();
	int max_dirs = 0;
	pthread_create(&t[0], NULL, probe_thread, &runs[0]);
	usleep(100 * 1000);
	pthread_create(&t[1], NULL, probe_thread, &runs[1]);
	/* Watch the probe folders while both run. */
	while (now_s() - t0 < 30) {
		int dirs = 0;
		DIR *d = opendir(data);
		struct dirent *e;
		while (d && (e = readdir(d)))
			dirs += strncmp(e->d_name, "probe-", 6) == 0;
		if (d)
			closedir(d);
		if (dirs > max_dirs)
			max_dirs = dirs;
		if (__atomic_load_n(&runs[1].r, __ATOMIC_SEQ_CST) != -1 &&
		    __atomic_load_n(&runs[0].r, __ATOMIC_SEQ_CST) != -1)
			break;
		usleep(50 * 1000);
	}
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	double took = now_s() - t0;
	ok(runs[0].r == 0 && runs[1].r == 0, "probe: both checks answer");
	ok(max_dirs <= 1, "probe: never two probes at once (%d)", max_dirs);
	/* Two probes in a row would take twice as long as the start's one. */
	ok(took < 1.5 * t_one,
	   "probe: the waiting check reused the result (%.1f s, one probe %.1f s)", took, t_one);
	char tmp[400];
	DIR *d = opendir(data);
	struct dirent *e;
	int tmps = 0;
	while (d && (e = readdir(d)))
		tmps += strncmp(e->d_name, ".accel.json.", 12) == 0 ||
			strncmp(e->d_name, "probe-", 6) == 0;
	if (d)
		closedir(d);
	snprintf(tmp, sizeof(tmp), "%s/accel.json", data);
	ok(tmps == 0 && access(tmp, F_OK) == 0, "probe: accel.json written, no temp left");
	kc_agent_free(a);
}

int main(void)
{
	const char *skip = vm_fixture_init(&fx, "kcagt", NULL);
	if (skip) {
		printf("1..0 # SKIP %s\n", skip);
		vm_fixture_cleanup(&fx);
		return 0;
	}
	snprintf(net_name, sizeof(net_name), "%s-net", fx.prefix);
	virConnectPtr c = fx.conn;

	struct kc_error err = {0};
	double t0 = now_s();
	struct kc_agent *a = agent_new(&err);
	ok(a != NULL, "agent starts (%.2f s) %s", now_s() - t0, err.message);
	if (a) {
		ok(kc_agent_accel(a) == KC_ACCEL_TCG,
		   "accel falls back to TCG without probe image");
		ok(kc_agent_is_connected(a), "connected");
		_cleanup_json_ json_t *facts = NULL, *check = NULL;
		ok(kc_agent_host_facts(a, &facts, &err) == 0 &&
			   json_integer_value(json_object_get(facts, "cpus")) > 0 &&
			   json_is_string(json_object_get(facts, "libvirt_version")) &&
			   strstr(json_string_value(json_object_get(facts, "accel_reason")),
				  "probe"),
		   "host facts");
		int r = kc_agent_host_check(a, false, &check, &err);
		/* 11 host requirements and the firewall; the host network only
		 * once one is declared (none here). */
		ok(r == 0 && json_array_size(json_object_get(check, "items")) == 12,
		   "host check has 12 items, summary %s",
		   json_string_value(json_object_get(check, "summary")));
		test_bad_inputs(a, c);
		test_rollback(a, c);
		test_lifecycle(a, c);
		kc_agent_free(a);
		test_orphans(c);
		test_probe_once();
	}
	/* The network test_rollback defines (never started): not the fixture's. */
	virNetworkPtr net = virNetworkLookupByName(c, net_name);
	if (net) {
		virNetworkUndefine(net);
		virNetworkFree(net);
	}
	vm_fixture_cleanup(&fx);
	return tap_done();
}
