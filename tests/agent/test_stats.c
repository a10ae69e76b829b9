/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_stats - kc_agent_vm_stats against the real libvirtd: a running VM
 * (booted under TCG from the kctest image, one NIC on a bridge this test
 * makes, so that the NIC has a host-side tap libvirt can count) and a
 * stopped one.  Everything is named kcmet-<pid>-*, lives under
 * /tmp/kcmet-<pid>, and is removed at the end, pass or fail (vm_fixture.h,
 * which also reads KC_TEST_IMAGE and KC_TEST_URI).
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
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
#include "tap.h"
#include "vm_fixture.h"
#include "vmspec.h"

extern char **environ;

static struct vm_fixture fx;
static char bridge[16];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs argv (absolute path) and waits; its exit status, or -1. */
static int run(char *const argv[])
{
	pid_t pid;
	int st;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct kc_agent *agent_new(struct kc_error *err)
{
	static const char *const tcg[] = {"accel", "tcg", NULL};
	return vm_fixture_agent(&fx, tcg, err);
}

static int create(struct kc_agent *a, const char *json, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_loads(json, 0, NULL);
	struct kc_vm_request req = {0};
	_cleanup_json_ json_t *vm = NULL;
	if (!j)
		return kc_error_set(err, KC_ERR_INVALID, "bad test JSON");
	int r = kc_vm_request_from_json(j, &req, err);
	if (r == 0)
		r = kc_agent_vm_create(a, &req, &vm, err);
	kc_vm_request_clear(&req);
	return r;
}

static const json_t *find(const json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o)
	{
		const char *v = json_string_value(json_object_get(o, key));
		if (v && strcmp(v, value) == 0)
			return o;
	}
	return NULL;
}

static long long num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static void test_stats(struct kc_agent *a)
{
	char run_vm[64], off_vm[64], json[512];
	struct kc_error err = {0};

	snprintf(run_vm, sizeof(run_vm), "%s-run", fx.prefix);
	snprintf(off_vm, sizeof(off_vm), "%s-off", fx.prefix);
	snprintf(json, sizeof(json),
		 "{\"name\":\"%s\",\"memory_mib\":128,\"image\":\"kctest\","
		 "\"nics\":[{\"type\":\"bridge\",\"source\":\"%s\"}]}",
		 run_vm, bridge);
	ok(create(a, json, &err) == 0, "create running VM %s %s", run_vm, err.message);
	snprintf(json, sizeof(json),
		 "{\"name\":\"%s\",\"memory_mib\":64,\"vcpus\":2,\"image\":\"kctest\","
		 "\"start\":false}",
		 off_vm);
	kc_error_clear(&err);
	ok(create(a, json, &err) == 0, "create stopped VM %s %s", off_vm, err.message);

	/* Let the guest boot a little so that it reads its disk. */
	sleep(3);
	_cleanup_json_ json_t *s1 = NULL, *s2 = NULL;
	kc_error_clear(&err);
	double t0 = now_s();
	int r = kc_agent_vm_stats(a, &s1, &err);
	double took = now_s() - t0;
	ok(r == 0, "stats (%.1f ms) %s", took * 1e3, err.message);
	if (r < 0)
		return;

	const json_t *host = json_object_get(s1, "host");
	ok(num(host, "cpus") > 0 && num(host, "memory_kib") > 0, "host: cpus %lld, memory_kib %lld",
	   num(host, "cpus"), num(host, "memory_kib"));
	ok(num(host, "memory_free_kib") > 0 &&
		   num(host, "memory_free_kib") <= num(host, "memory_kib"),
	   "host: free memory within total (%lld of %lld KiB)", num(host, "memory_free_kib"),
	   num(host, "memory_kib"));
	ok(num(json_object_get(host, "cpu_time_ns"), "idle") > 0, "host: idle CPU time");
	ok(json_is_string(json_object_get(host, "accel")) &&
		   json_is_string(json_object_get(host, "name")),
	   "host: name and accel");

	const json_t *vms = json_object_get(s1, "vms");
	const json_t *v1 = find(vms, "name", run_vm);
	const json_t *off = find(vms, "name", off_vm);
	ok(v1 && strcmp(json_string_value(json_object_get(v1, "state")), "running") == 0,
	   "running VM listed as running");
	ok(num(v1, "vcpus") == 1 && num(v1, "memory_kib") == 128 * 1024,
	   "running VM: 1 vCPU, 128 MiB balloon (%lld, %lld)", num(v1, "vcpus"),
	   num(v1, "memory_kib"));
	ok(num(v1, "memory_rss_kib") > 0, "running VM: QEMU resident memory (%lld KiB)",
	   num(v1, "memory_rss_kib"));
	ok(json_is_string(json_object_get(v1, "uuid")), "running VM: uuid");
	const json_t *vda = find(json_object_get(v1, "disks"), "target", "vda");
	ok(vda && num(vda, "rd_bytes") > 0 && num(vda, "rd_reqs") > 0 &&
		   num(vda, "wr_bytes") >= 0 && num(vda, "wr_reqs") >= 0,
	   "running VM: root disk vda with reads (%lld bytes)", num(vda, "rd_bytes"));
	ok(vda && num(vda, "capacity_bytes") > 0 && num(vda, "allocation_bytes") >= 0,
	   "running VM: vda capacity %lld", num(vda, "capacity_bytes"));
	const json_t *nics = json_object_get(v1, "nics");
	const json_t *nic = json_array_get(nics, 0);
	ok(json_array_size(nics) == 1 && json_is_string(json_object_get(nic, "name")) &&
		   num(nic, "rx_bytes") >= 0 && num(nic, "tx_bytes") >= 0 &&
		   num(nic, "rx_packets") >= 0 && num(nic, "tx_packets") >= 0,
	   "running VM: its NIC (%s) with byte and packet counters",
	   json_string_value(json_object_get(nic, "name")));

	ok(off && strcmp(json_string_value(json_object_get(off, "state")), "shutoff") == 0,
	   "stopped VM listed as shutoff");
	ok(off && !json_object_get(off, "cpu_time_ns") &&
		   json_array_size(json_object_get(off, "nics")) == 0,
	   "stopped VM: no CPU time, no NIC counters");

	long long cpu1 = num(v1, "cpu_time_ns");
	usleep(1500 * 1000);
	kc_error_clear(&err);
	ok(kc_agent_vm_stats(a, &s2, &err) == 0, "stats again %s", err.message);
	const json_t *v2 = find(json_object_get(s2, "vms"), "name", run_vm);
	long long cpu2 = num(v2, "cpu_time_ns");
	ok(cpu1 > 0 && cpu2 > cpu1, "cpu_time_ns grows while the guest runs (%lld -> %lld)", cpu1,
	   cpu2);
	const json_t *vda2 = find(json_object_get(v2, "disks"), "target", "vda");
	ok(num(vda2, "rd_bytes") >= num(vda, "rd_bytes"), "disk counters do not go back");
}

static void cleanup(void)
{
	vm_fixture_cleanup(&fx);
	char *const del[] = {"/usr/sbin/ip", "link", "del", bridge, NULL};
	run(del);
}

int main(void)
{
	const char *skip = vm_fixture_init(&fx, "kcmet", NULL);
	if (skip) {
		printf("1..0 # SKIP %s\n", skip);
		vm_fixture_cleanup(&fx);
		return 0;
	}
	snprintf(bridge, sizeof(bridge), "kcmetbr%d", (int)getpid() % 100000);
	/* A bridge with no ports but the VM's tap: no traffic leaves the host. */
	char *const add[] = {"/usr/sbin/ip", "link", "add", bridge, "type", "bridge", NULL};
	char *const up[] = {"/usr/sbin/ip", "link", "set", bridge, "up", NULL};
	if (run(add) != 0 || run(up) != 0) {
		printf("1..0 # SKIP cannot make bridge %s\n", bridge);
		cleanup();
		return 0;
	}

	struct kc_error err = {0};
	struct kc_agent *a = agent_new(&err);
	ok(a != NULL, "agent starts %s", err.message);
	if (a) {
		test_stats(a);
		kc_agent_free(a);
	}
	cleanup();
	return tap_done();
}
