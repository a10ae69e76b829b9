/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agent - the agent library against the real libvirtd.  Everything it
 * makes is named kcagt-<pid>-*, lives under /tmp/kcagt-<pid>, and is removed
 * at the end, pass or fail.
 *
 * Environment: KC_TEST_IMAGE (default
 * /var/cache/kvmcloud/test-image/kctest.qcow2), KC_TEST_URI (default
 * qemu:///system).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"
#include "json_util.h"
#include "vmspec.h"

static int n_test, n_fail;
static char dir[256], pool_name[96], prefix[32], net_name[96];
static const char *uri;

static void ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", cond ? "" : "not ", ++n_test);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (!cond)
		n_fail++;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int copy_file(const char *from, const char *to)
{
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0)
		return -1;
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			return -1;
	return n < 0 ? -1 : 0;
}

static struct kc_agent *agent_new(struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	char data[300];
	snprintf(data, sizeof(data), "%s/data", dir);
	kc_config_set(cfg, "libvirt.uri", uri, NULL);
	kc_config_set(cfg, "data.dir", data, NULL);
	kc_config_set(cfg, "storage.pool", pool_name, NULL);
	/* No probe image: auto mode must fall back to TCG without booting. */
	kc_config_set(cfg, "probe.image", "/nonexistent/kctest.qcow2", NULL);
	struct kc_agent *a = NULL;
	kc_agent_new(cfg, &a, err);
	return a;
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

static size_t pool_volumes(virConnectPtr c)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool_name);
	if (!p)
		return 999;
	virStoragePoolRefresh(p, 0);
	int n = virStoragePoolNumOfVolumes(p);
	virStoragePoolFree(p);
	return n < 0 ? 999 : (size_t)n;
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
		if (request(&req, cases[i].json, prefix) < 0) {
			ok(false, "bad input: %s (request parses)", cases[i].desc);
			continue;
		}
		struct kc_error err = {0};
		json_t *vm = NULL;
		int r = kc_agent_vm_create(a, &req, &vm, &err);
		ok(r < 0 && err.code == cases[i].code, "bad input: %s -> %s (%s)", cases[i].desc,
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
		prefix, net_name);
	struct kc_error err = {0};
	json_t *vm = NULL;
	int r = kc_agent_vm_create(a, &req, &vm, &err);
	ok(r < 0 && err.code == KC_ERR_HYPERVISOR, "rollback: start failure is reported (%s)",
	   err.message);
	ok(!domain_exists(c, req.name), "rollback: domain undefined");
	ok(pool_volumes(c) == 0, "rollback: root, data and seed volumes removed");
	char log[400];
	snprintf(log, sizeof(log), "%s/data/console/%s.log", dir, req.name);
	ok(access(log, F_OK) != 0, "rollback: console log removed");
	json_decref(vm);
	kc_vm_request_clear(&req);
	virNetworkUndefine(net);
	virNetworkFree(net);
}

static void test_lifecycle(struct kc_agent *a, virConnectPtr c)
{
	struct kc_vm_request req = {0};
	snprintf(event_vm, sizeof(event_vm), "%s-vm1", prefix);
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
	snprintf(path, sizeof(path), "%s/data/console/%s.log", dir, name);
	ok(access(path, F_OK) != 0, "console log gone");
	snprintf(path, sizeof(path), "%s/data/images/kctest.qcow2", dir);
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

static void test_orphans(virConnectPtr c)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool_name);
	char xml[512];
	snprintf(xml, sizeof(xml),
		 "<volume><name>%s-orphan-root.qcow2</name><capacity>1048576</capacity>"
		 "<target><format type='qcow2'/></target></volume>",
		 prefix);
	virStorageVolPtr v = p ? virStorageVolCreateXML(p, xml, 0) : NULL;
	snprintf(xml, sizeof(xml),
		 "<volume><name>%s-notours.img</name><capacity>1048576</capacity></volume>",
		 prefix);
	virStorageVolPtr keep = p ? virStorageVolCreateXML(p, xml, 0) : NULL;
	ok(v && keep, "orphans: test volumes made");
	struct kc_error err = {0};
	struct kc_agent *a = agent_new(&err);
	ok(a != NULL, "orphans: agent restarts %s", err.message);
	ok(pool_volumes(c) == 1, "orphans: <vm>-root.qcow2 without a domain removed, others kept");
	kc_agent_free(a);
	if (keep) {
		virStorageVolDelete(keep, 0);
		virStorageVolFree(keep);
	}
	if (v)
		virStorageVolFree(v);
	if (p)
		virStoragePoolFree(p);
}

static void cleanup(virConnectPtr c)
{
	/* Whatever a failed test left behind. */
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(c, &doms, 0);
	for (int i = 0; i < n; i++) {
		if (strncmp(virDomainGetName(doms[i]), prefix, strlen(prefix)) == 0) {
			virDomainDestroy(doms[i]);
			virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_NVRAM);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool_name);
	if (p) {
		virStorageVolPtr *vols = NULL;
		int nv = virStoragePoolListAllVolumes(p, &vols, 0);
		for (int i = 0; i < nv; i++) {
			virStorageVolDelete(vols[i], 0);
			virStorageVolFree(vols[i]);
		}
		free(vols);
		virStoragePoolDestroy(p);
		virStoragePoolDelete(p, 0);
		virStoragePoolUndefine(p);
		virStoragePoolFree(p);
	}
	virNetworkPtr net = virNetworkLookupByName(c, net_name);
	if (net) {
		virNetworkUndefine(net);
		virNetworkFree(net);
	}
	/* dir is ours, made from our pid: a fixed, safe path. */
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

static void quiet(void *opaque, virErrorPtr e)
{
}

int main(void)
{
	const char *img = getenv("KC_TEST_IMAGE");
	if (!img)
		img = "/var/cache/kvmcloud/test-image/kctest.qcow2";
	uri = getenv("KC_TEST_URI");
	if (!uri)
		uri = "qemu:///system";
	virSetErrorFunc(NULL, quiet);
	virConnectPtr c = virConnectOpen(uri);
	if (!c) {
		printf("1..0 # SKIP libvirtd not reachable at %s\n", uri);
		return 0;
	}
	if (access(img, R_OK) != 0) {
		printf("1..0 # SKIP no test image %s (scripts/build-test-image.sh)\n", img);
		return 0;
	}
	snprintf(prefix, sizeof(prefix), "kcagt-%d", (int)getpid());
	snprintf(pool_name, sizeof(pool_name), "%s-pool", prefix);
	snprintf(net_name, sizeof(net_name), "%s-net", prefix);
	snprintf(dir, sizeof(dir), "/tmp/%s", prefix);

	char images[300], target[400];
	snprintf(images, sizeof(images), "%s/data/images", dir);
	mkdir(dir, 0755);
	chmod(dir, 0755);
	mkdir((snprintf(target, sizeof(target), "%s/data", dir), target), 0755);
	mkdir(images, 0755);
	snprintf(target, sizeof(target), "%s/kctest.qcow2", images);
	if (copy_file(img, target) < 0) {
		printf("1..0 # SKIP cannot copy %s\n", img);
		cleanup(c);
		return 0;
	}

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
		ok(r == 0 && json_array_size(json_object_get(check, "items")) == 11,
		   "host check has 11 items, summary %s",
		   json_string_value(json_object_get(check, "summary")));
		test_bad_inputs(a, c);
		test_rollback(a, c);
		test_lifecycle(a, c);
		kc_agent_free(a);
		test_orphans(c);
	}
	cleanup(c);
	virConnectClose(c);
	printf("1..%d\n", n_test);
	return n_fail ? 1 : 0;
}
