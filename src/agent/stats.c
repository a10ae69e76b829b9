/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.c - per-VM and host statistics for /metrics: every domain's counters
 * in one virConnectGetAllDomainStats round trip, plus the host's CPU and
 * memory counters.  Keys appear only when libvirt reported them (a shut-off
 * VM has no CPU time; libvirt's test driver has no node memory statistics).
 */
#include <stdio.h>
#include <string.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"

/* Bounds on what we walk per domain, far above what vmspec allows. */
#define MAX_DEVICES 256

static json_t *json_u64(unsigned long long v)
{
	return json_integer(v > (unsigned long long)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static void put_ull(json_t *o, const char *key, virTypedParameterPtr p, int n, const char *field)
{
	unsigned long long v;
	if (virTypedParamsGetULLong(p, n, field, &v) == 1)
		json_object_set_new(o, key, json_u64(v));
}

/* Device `kind` ("block"/"net") number i: its field, as "<kind>.<i>.<f>". */
static void put_dev_ull(json_t *o, const char *key, virTypedParameterPtr p, int n, const char *kind,
			unsigned i, const char *f)
{
	char field[VIR_TYPED_PARAM_FIELD_LENGTH];
	snprintf(field, sizeof(field), "%s.%u.%s", kind, i, f);
	put_ull(o, key, p, n, field);
}

static const char *dev_name(virTypedParameterPtr p, int n, const char *kind, unsigned i)
{
	char field[VIR_TYPED_PARAM_FIELD_LENGTH];
	const char *name = NULL;
	snprintf(field, sizeof(field), "%s.%u.name", kind, i);
	if (virTypedParamsGetString(p, n, field, &name) != 1 || !name || !*name)
		return NULL;
	return name;
}

static unsigned dev_count(virTypedParameterPtr p, int n, const char *kind)
{
	char field[VIR_TYPED_PARAM_FIELD_LENGTH];
	unsigned count = 0;
	snprintf(field, sizeof(field), "%s.count", kind);
	if (virTypedParamsGetUInt(p, n, field, &count) != 1)
		return 0;
	return count > MAX_DEVICES ? MAX_DEVICES : count;
}

static json_t *vm_stats_json(virDomainStatsRecordPtr r)
{
	virTypedParameterPtr p = r->params;
	int n = r->nparams;
	json_t *o = json_object();
	char uuid[VIR_UUID_STRING_BUFLEN];
	int state = -1;

	json_object_set_new(o, "name", json_string(virDomainGetName(r->dom)));
	if (virDomainGetUUIDString(r->dom, uuid) == 0)
		json_object_set_new(o, "uuid", json_string(uuid));
	else
		virResetLastError();
	if (virTypedParamsGetInt(p, n, "state.state", &state) != 1)
		state = -1;
	json_object_set_new(o, "state", json_string(kc_vm_state_name(state)));
	/* libvirt 9.0 reports a "cpu.time" for shut-off domains too: read
	 * from /proc for a pid of 0, so it is libvirtd's own.  A stopped VM
	 * used no CPU. */
	if (state != VIR_DOMAIN_SHUTOFF)
		put_ull(o, "cpu_time_ns", p, n, "cpu.time");
	unsigned vcpus;
	if (virTypedParamsGetUInt(p, n, "vcpu.current", &vcpus) == 1)
		json_object_set_new(o, "vcpus", json_integer(vcpus));
	put_ull(o, "memory_kib", p, n, "balloon.current");
	put_ull(o, "memory_max_kib", p, n, "balloon.maximum");
	put_ull(o, "memory_rss_kib", p, n, "balloon.rss");

	json_t *disks = json_array();
	unsigned nblock = dev_count(p, n, "block");
	for (unsigned i = 0; i < nblock; i++) {
		const char *target = dev_name(p, n, "block", i);
		if (!target)
			continue;
		json_t *d = json_pack("{s:s}", "target", target);
		put_dev_ull(d, "rd_bytes", p, n, "block", i, "rd.bytes");
		put_dev_ull(d, "wr_bytes", p, n, "block", i, "wr.bytes");
		put_dev_ull(d, "rd_reqs", p, n, "block", i, "rd.reqs");
		put_dev_ull(d, "wr_reqs", p, n, "block", i, "wr.reqs");
		put_dev_ull(d, "capacity_bytes", p, n, "block", i, "capacity");
		put_dev_ull(d, "allocation_bytes", p, n, "block", i, "allocation");
		json_array_append_new(disks, d);
	}
	json_object_set_new(o, "disks", disks);

	/* libvirt lists only NICs with a host-side device (tap, macvtap):
	 * user-mode (slirp) NICs are counted in net.count but have no entry. */
	json_t *nics = json_array();
	unsigned nnet = dev_count(p, n, "net");
	for (unsigned i = 0; i < nnet; i++) {
		const char *name = dev_name(p, n, "net", i);
		if (!name)
			continue;
		json_t *d = json_pack("{s:s}", "name", name);
		put_dev_ull(d, "rx_bytes", p, n, "net", i, "rx.bytes");
		put_dev_ull(d, "tx_bytes", p, n, "net", i, "tx.bytes");
		put_dev_ull(d, "rx_packets", p, n, "net", i, "rx.pkts");
		put_dev_ull(d, "tx_packets", p, n, "net", i, "tx.pkts");
		json_array_append_new(nics, d);
	}
	json_object_set_new(o, "nics", nics);
	return o;
}

/* Is the last libvirt error "this driver cannot do that"?  Then the host
 * object simply lacks those keys. */
static bool unsupported(void)
{
	virErrorPtr e = virGetLastError();
	bool r = e && (e->code == VIR_ERR_NO_SUPPORT || e->code == VIR_ERR_ARGUMENT_UNSUPPORTED);
	if (r)
		virResetLastError();
	return r;
}

static int host_cpu_stats(virConnectPtr conn, json_t *host, struct kc_error *err)
{
	int n = 0;
	if (virNodeGetCPUStats(conn, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &n, 0) < 0)
		return unsupported() ? 0 : kc_lverr(err, "reading the host's CPU statistics");
	if (n <= 0 || n > 64)
		return 0;
	virNodeCPUStats st[64];
	if (virNodeGetCPUStats(conn, VIR_NODE_CPU_STATS_ALL_CPUS, st, &n, 0) < 0)
		return unsupported() ? 0 : kc_lverr(err, "reading the host's CPU statistics");
	json_t *cpu = json_object();
	for (int i = 0; i < n; i++)
		json_object_set_new(cpu, st[i].field, json_u64(st[i].value));
	json_object_set_new(host, "cpu_time_ns", cpu);
	return 0;
}

static int host_memory_stats(virConnectPtr conn, json_t *host, struct kc_error *err)
{
	int n = 0;
	if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &n, 0) < 0)
		return unsupported() ? 0 : kc_lverr(err, "reading the host's memory statistics");
	if (n <= 0 || n > 64)
		return 0;
	virNodeMemoryStats st[64];
	if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, st, &n, 0) < 0)
		return unsupported() ? 0 : kc_lverr(err, "reading the host's memory statistics");
	static const struct {
		const char *field, *key;
	} map[] = {
		{VIR_NODE_MEMORY_STATS_TOTAL, "memory_kib"},
		{VIR_NODE_MEMORY_STATS_FREE, "memory_free_kib"},
		{VIR_NODE_MEMORY_STATS_BUFFERS, "memory_buffers_kib"},
		{VIR_NODE_MEMORY_STATS_CACHED, "memory_cached_kib"},
	};
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < KC_ARRAY_SIZE(map); k++)
			if (strcmp(st[i].field, map[k].field) == 0)
				json_object_set_new(host, map[k].key, json_u64(st[i].value));
	return 0;
}

static int host_stats(struct kc_agent *a, virConnectPtr conn, json_t **ret, struct kc_error *err)
{
	virNodeInfo info;
	if (virNodeGetInfo(conn, &info) < 0)
		return kc_lverr(err, "reading the host's CPU and memory size");
	_cleanup_json_ json_t *host = json_object();
	pthread_mutex_lock(&a->conn_lock);
	enum kc_accel accel = a->accel;
	pthread_mutex_unlock(&a->conn_lock);
	json_object_set_new(host, "name", json_string(a->host_name));
	json_object_set_new(host, "accel", json_string(kc_accel_name(accel)));
	json_object_set_new(host, "cpus", json_integer(info.cpus));
	/* Total and free from one source when the driver has memory stats:
	 * virNodeGetInfo sums the NUMA nodes' sysfs files, which on some hosts
	 * disagree with /proc/meminfo. */
	json_object_set_new(host, "memory_kib", json_u64(info.memory));
	if (host_memory_stats(conn, host, err) < 0 || host_cpu_stats(conn, host, err) < 0)
		return -1;
	*ret = steal_ptr(&host);
	return 0;
}

static void records_freep(virDomainStatsRecordPtr **r)
{
	if (*r)
		virDomainStatsRecordListFree(*r);
}

int kc_agent_vm_stats(struct kc_agent *a, json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	_cleanup_json_ json_t *host = NULL;
	if (host_stats(a, conn, &host, err) < 0)
		return -1;

	const unsigned groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
				VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
				VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
	/* NOWAIT: a domain busy with a job (a migration, a slow shutdown)
	 * reports what it can instead of holding the whole scrape up. */
	__attribute__((cleanup(records_freep))) virDomainStatsRecordPtr *recs = NULL;
	int n = virConnectGetAllDomainStats(conn, groups, &recs,
					    VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
	if (n < 0) {
		/* Drivers without NOWAIT (libvirt's test driver) refuse the flag. */
		virErrorPtr e = virGetLastError();
		if (!e || e->code != VIR_ERR_INVALID_ARG)
			return kc_lverr(err, "reading VM statistics");
		virResetLastError();
		n = virConnectGetAllDomainStats(conn, groups, &recs, 0);
		if (n < 0)
			return kc_lverr(err, "reading VM statistics");
	}
	_cleanup_json_ json_t *vms = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(vms, vm_stats_json(recs[i]));
	*ret = json_pack("{s:O,s:O}", "host", host, "vms", vms);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}
