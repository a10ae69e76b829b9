/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - GET /metrics in Prometheus' text format 0.0.4.
 *
 * One scrape costs one bulk-stats call to the agent (kc_agent_vm_stats),
 * one read of the VM table and two small /proc reads.  The request
 * counters are process-wide atomics, so counting a request takes no lock.
 * Families are written whole, HELP and TYPE first, because the format
 * wants all samples of one metric together.
 */
#include "metrics.h"
#include "hostlink.h"
#include "db_hosts.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "http_util.h"
#include "json_util.h"
#include "kc-config.h"

/* ---- request counters ---- */

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
#define N_METHODS (KC_ARRAY_SIZE(methods) + 1) /* the last one is "other" */
#define MAX_CODE  600			       /* statuses 100..599; 0 = other */

/* Upper bounds (seconds) of the duration histogram: an API call is
 * milliseconds, a create under TCG seconds, a shutdown up to its timeout. */
static const double buckets[] = {0.005, 0.025, 0.1, 0.5, 2.5, 10, 60};
#define N_BUCKETS (KC_ARRAY_SIZE(buckets) + 1) /* the last one is +Inf */

static uint64_t req_count[N_METHODS][MAX_CODE];
static uint64_t dur_count[N_BUCKETS]; /* not cumulative: summed when written */
static uint64_t dur_sum_ns;

void kc_metrics_observe_request(const char *method, long status, const struct timespec *t0)
{
	struct timespec t1;
	size_t m = N_METHODS - 1;
	size_t b = 0;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t ns = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000000 + (t1.tv_nsec - t0->tv_nsec);
	if (ns < 0)
		ns = 0;
	for (size_t i = 0; method && i < KC_ARRAY_SIZE(methods); i++)
		if (strcmp(method, methods[i]) == 0)
			m = i;
	long code = status >= 100 && status < MAX_CODE ? status : 0;
	while (b < KC_ARRAY_SIZE(buckets) && ns > buckets[b] * 1e9)
		b++;
	__atomic_fetch_add(&req_count[m][code], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&dur_count[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&dur_sum_ns, (uint64_t)ns, __ATOMIC_RELAXED);
}

/* ---- writing ---- */

/* Length of the valid UTF-8 sequence at s, or 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n;
	uint32_t cp, min;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void kc_metrics_put_label_value(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (p && *p) {
		size_t n = utf8_len(p);
		if (n == 0) {
			fputs("\xef\xbf\xbd", out);
			p++;
		} else if (*p == '\\') {
			fputs("\\\\", out);
			p++;
		} else if (*p == '"') {
			fputs("\\\"", out);
			p++;
		} else if (*p == '\n') {
			fputs("\\n", out);
			p++;
		} else {
			fwrite(p, 1, n, out);
			p += n;
		}
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: labels are name/value pairs ending with NULL; value is the
 * number already formatted. */
static void sample(FILE *f, const char *name, const char *const *labels, const char *value)
{
	fputs(name, f);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		fprintf(f, "%s%s=\"", i ? "," : "{", labels[i]);
		kc_metrics_put_label_value(f, labels[i + 1]);
		fputc('"', f);
		if (!labels[i + 2])
			fputc('}', f);
	}
	fprintf(f, " %s\n", value);
}

static void sample_int(FILE *f, const char *name, const char *const *labels, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	sample(f, name, labels, buf);
}

enum unit {
	AS_IS,
	KIB, /* KiB -> bytes */
	NS,  /* ns -> seconds */
};

/* A JSON integer in the unit a metric wants; false if absent. */
static bool format_value(const json_t *v, enum unit unit, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return false;
	long long x = json_integer_value(v);
	if (x < 0)
		return false;
	if (unit == NS)
		snprintf(buf, len, "%lld.%09lld", x / 1000000000, x % 1000000000);
	else if (unit == KIB)
		snprintf(buf, len, "%lld", x > LLONG_MAX / 1024 ? LLONG_MAX : x * 1024);
	else
		snprintf(buf, len, "%lld", x);
	return true;
}

/* ---- host and VMs ---- */

struct vm_family {
	const char *name, *type, *help;
	const char *list;  /* NULL: a key of the VM; else its "disks" or "nics" */
	const char *label; /* the device's label and the key that fills it */
	const char *label_key;
	const char *key;
	enum unit unit;
};

static const struct vm_family vm_families[] = {
	{"kvmcloud_vm_cpu_seconds_total", "counter", "CPU time the VM used, all vCPUs.", NULL, NULL,
	 NULL, "cpu_time_ns", NS},
	{"kvmcloud_vm_vcpus", "gauge", "vCPUs the VM has now.", NULL, NULL, NULL, "vcpus", AS_IS},
	{"kvmcloud_vm_memory_bytes", "gauge", "Memory the VM has now (balloon current).", NULL,
	 NULL, NULL, "memory_kib", KIB},
	{"kvmcloud_vm_memory_max_bytes", "gauge", "Memory the VM may balloon up to.", NULL, NULL,
	 NULL, "memory_max_kib", KIB},
	{"kvmcloud_vm_memory_rss_bytes", "gauge", "Resident memory of the VM's QEMU process.", NULL,
	 NULL, NULL, "memory_rss_kib", KIB},
	{"kvmcloud_vm_disk_read_bytes_total", "counter", "Bytes the VM read from a disk.", "disks",
	 "disk", "target", "rd_bytes", AS_IS},
	{"kvmcloud_vm_disk_write_bytes_total", "counter", "Bytes the VM wrote to a disk.", "disks",
	 "disk", "target", "wr_bytes", AS_IS},
	{"kvmcloud_vm_disk_read_requests_total", "counter", "Read requests to a disk.", "disks",
	 "disk", "target", "rd_reqs", AS_IS},
	{"kvmcloud_vm_disk_write_requests_total", "counter", "Write requests to a disk.", "disks",
	 "disk", "target", "wr_reqs", AS_IS},
	{"kvmcloud_vm_disk_capacity_bytes", "gauge", "Size of a disk as the guest sees it.",
	 "disks", "disk", "target", "capacity_bytes", AS_IS},
	{"kvmcloud_vm_disk_allocation_bytes", "gauge",
	 "Allocation of a disk as libvirt reports it (for a running qcow2: the highest written "
	 "offset).",
	 "disks", "disk", "target", "allocation_bytes", AS_IS},
	{"kvmcloud_vm_network_receive_bytes_total", "counter", "Bytes a NIC received.", "nics",
	 "nic", "name", "rx_bytes", AS_IS},
	{"kvmcloud_vm_network_transmit_bytes_total", "counter", "Bytes a NIC sent.", "nics", "nic",
	 "name", "tx_bytes", AS_IS},
	{"kvmcloud_vm_network_receive_packets_total", "counter", "Packets a NIC received.", "nics",
	 "nic", "name", "rx_packets", AS_IS},
	{"kvmcloud_vm_network_transmit_packets_total", "counter", "Packets a NIC sent.", "nics",
	 "nic", "name", "tx_packets", AS_IS},
};

/* The samples of one VM family, for the VMs of one host. */
static void write_vm_samples(FILE *f, const struct vm_family *fam, const char *host,
			     const json_t *vms)
{
	size_t i, j;
	json_t *vm, *dev;
	char val[48];

	json_array_foreach(vms, i, vm)
	{
		const char *name = json_string_value(json_object_get(vm, "name"));
		if (!name)
			continue;
		if (!fam->list) {
			if (format_value(json_object_get(vm, fam->key), fam->unit, val,
					 sizeof(val)))
				sample(f, fam->name,
				       (const char *const[]){"host", host, "vm", name, NULL}, val);
			continue;
		}
		json_array_foreach(json_object_get(vm, fam->list), j, dev)
		{
			const char *dname = json_string_value(json_object_get(dev, fam->label_key));
			if (dname && format_value(json_object_get(dev, fam->key), fam->unit, val,
						  sizeof(val)))
				sample(f, fam->name,
				       (const char *const[]){"host", host, "vm", name, fam->label,
							     dname, NULL},
				       val);
		}
	}
}

/*
 * The fleet as one scrape sees it: [{"host", "accel", "stats" (or absent
 * when the host did not answer)}].  The exposition format wants all
 * samples of a family together, so every writer below loops over families
 * first and hosts second.
 */
#define FLEET_FOREACH(fleet, i, e, host, stats)                                          \
	json_array_foreach((json_t *)(fleet), i, e)                                        \
		if (((host) = json_string_value(json_object_get(e, "host"))) &&             \
		    (((stats) = json_object_get(e, "stats")) || true))

static void write_hosts(FILE *f, const json_t *fleet)
{
	size_t i;
	json_t *e;
	const char *host;
	const json_t *stats;
	char val[48];

	family(f, "kvmcloud_host_up", "gauge",
	       "1 if the host's agent answered this scrape with its statistics, else 0.");
	FLEET_FOREACH(fleet, i, e, host, stats)
	sample_int(f, "kvmcloud_host_up", (const char *const[]){"host", host, NULL},
		   stats ? 1 : 0);
	family(f, "kvmcloud_host_accel", "gauge",
	       "1 for the accelerator the host's VMs use (kvm, or tcg: software emulation).");
	FLEET_FOREACH(fleet, i, e, host, stats)
	{
		const char *accel = json_string_value(json_object_get(e, "accel"));
		if (accel)
			sample_int(f, "kvmcloud_host_accel",
				   (const char *const[]){"host", host, "accel", accel, NULL}, 1);
	}
	static const struct {
		const char *name, *help, *key;
		int unit;
	} gauges[] = {
		{"kvmcloud_host_cpus", "Logical CPUs of the host.", "cpus", AS_IS},
		{"kvmcloud_host_memory_bytes", "Memory of the host.", "memory_kib", KIB},
		{"kvmcloud_host_memory_free_bytes",
		 "Free memory of the host (the kernel's MemFree: page cache not counted).",
		 "memory_free_kib", KIB},
	};
	for (size_t k = 0; k < KC_ARRAY_SIZE(gauges); k++) {
		family(f, gauges[k].name, "gauge", gauges[k].help);
		FLEET_FOREACH(fleet, i, e, host, stats)
		{
			const json_t *h = json_object_get(stats, "host");
			if (format_value(json_object_get(h, gauges[k].key), gauges[k].unit, val,
					 sizeof(val)))
				sample(f, gauges[k].name, (const char *const[]){"host", host, NULL},
				       val);
		}
	}
	family(f, "kvmcloud_host_cpu_seconds_total", "counter",
	       "CPU time of all the host's CPUs, by mode.");
	FLEET_FOREACH(fleet, i, e, host, stats)
	{
		const char *mode;
		json_t *v;
		const json_t *h = json_object_get(stats, "host");
		json_object_foreach((json_t *)json_object_get(h, "cpu_time_ns"), mode, v)
		{
			if (format_value(v, NS, val, sizeof(val)))
				sample(f, "kvmcloud_host_cpu_seconds_total",
				       (const char *const[]){"host", host, "mode", mode, NULL},
				       val);
		}
	}
}

static void write_vms(FILE *f, const json_t *fleet)
{
	size_t i, j;
	json_t *e, *vm;
	const char *host;
	const json_t *stats;

	family(f, "kvmcloud_vm_state", "gauge",
	       "1 for the VM's libvirt state; every libvirt domain on the host, managed or not.");
	FLEET_FOREACH(fleet, i, e, host, stats)
	json_array_foreach(json_object_get(stats, "vms"), j, vm)
	{
		const char *name = json_string_value(json_object_get(vm, "name"));
		const char *state = json_string_value(json_object_get(vm, "state"));
		if (name && state)
			sample_int(f, "kvmcloud_vm_state",
				   (const char *const[]){"host", host, "vm", name, "state", state,
							 NULL},
				   1);
	}
	for (size_t k = 0; k < KC_ARRAY_SIZE(vm_families); k++) {
		family(f, vm_families[k].name, vm_families[k].type, vm_families[k].help);
		FLEET_FOREACH(fleet, i, e, host, stats)
		write_vm_samples(f, &vm_families[k], host, json_object_get(stats, "vms"));
	}
}

/* Asks every host for its statistics, one bulk-stats call each; a host that
 * cannot answer is reported as down, not a failed scrape. */
static json_t *collect_fleet(struct kc_server *srv, struct kc_error *err)
{
	_cleanup_json_ json_t *hosts = NULL;
	if (kc_db_host_list(srv->db, &hosts, err) < 0)
		return NULL;
	json_t *fleet = json_array();
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		const char *name = json_string_value(json_object_get(h, "name"));
		if (!name)
			continue;
		json_t *e = json_pack("{s:s}", "host", name);
		json_t *accel = json_object_get(h, "accel");
		if (json_is_string(accel))
			json_object_set(e, "accel", accel);
		json_t *stats = NULL;
		struct kc_error herr = {0};
		if (kc_host_reachable(srv, name) &&
		    kc_host_call(srv, name, "host.stats", NULL, &stats, &herr) == 0)
			json_object_set_new(e, "stats", stats);
		json_array_append_new(fleet, e);
	}
	return fleet;
}


/* ---- the server itself ---- */

/* Seconds since this process started: /proc/self/stat's starttime (clock
 * ticks since boot) against CLOCK_BOOTTIME, so no start hook is needed. */
static bool process_uptime(double *ret)
{
	char buf[1024];
	_cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses. */
	char *p = strrchr(buf, ')');
	if (!p)
		return false;
	unsigned long long start = 0;
	/* After ')': field 3 (state) is the first; starttime is field 22. */
	p++;
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (field == 22)
			start = strtoull(p, NULL, 10);
		while (*p && *p != ' ')
			p++;
	}
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec now;
	if (!start || hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) < 0)
		return false;
	double up = now.tv_sec + now.tv_nsec / 1e9 - (double)start / hz;
	*ret = up < 0 ? 0 : up;
	return true;
}

static bool resident_bytes(long long *ret)
{
	char buf[128];
	_cleanup_close_ int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	unsigned long long size, rss;
	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &rss) != 2)
		return false;
	*ret = (long long)rss * sysconf(_SC_PAGESIZE);
	return true;
}

static void write_requests(FILE *f)
{
	char name[16], code[8];

	family(f, "kvmcloud_server_requests_total", "counter",
	       "HTTP requests answered, by method and status code.");
	for (size_t m = 0; m < N_METHODS; m++) {
		for (size_t c = 0; c < MAX_CODE; c++) {
			uint64_t n = __atomic_load_n(&req_count[m][c], __ATOMIC_RELAXED);
			if (!n)
				continue;
			snprintf(name, sizeof(name), "%s",
				 m < KC_ARRAY_SIZE(methods) ? methods[m] : "other");
			if (c)
				snprintf(code, sizeof(code), "%zu", c);
			else
				snprintf(code, sizeof(code), "other");
			sample_int(f, "kvmcloud_server_requests_total",
				   (const char *const[]){"method", name, "code", code, NULL},
				   (long long)n);
		}
	}

	const char *h = "kvmcloud_server_request_duration_seconds";
	family(f, h, "histogram", "Time from a request's arrival at the router to its answer.");
	uint64_t counts[N_BUCKETS], total = 0;
	for (size_t b = 0; b < N_BUCKETS; b++)
		counts[b] = __atomic_load_n(&dur_count[b], __ATOMIC_RELAXED);
	for (size_t b = 0; b < N_BUCKETS; b++) {
		char le[24];
		total += counts[b];
		if (b < KC_ARRAY_SIZE(buckets))
			snprintf(le, sizeof(le), "%g", buckets[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		sample_int(f, "kvmcloud_server_request_duration_seconds_bucket",
			   (const char *const[]){"le", le, NULL}, (long long)total);
	}
	char sum[48];
	uint64_t ns = __atomic_load_n(&dur_sum_ns, __ATOMIC_RELAXED);
	snprintf(sum, sizeof(sum), "%llu.%09llu", (unsigned long long)(ns / 1000000000),
		 (unsigned long long)(ns % 1000000000));
	sample(f, "kvmcloud_server_request_duration_seconds_sum", NULL, sum);
	sample_int(f, "kvmcloud_server_request_duration_seconds_count", NULL, (long long)total);
}

/* VM records by state; the states docs/api.md names are always written
 * (as 0 when none), so that a series does not vanish when it empties. */
static int write_server_vms(FILE *f, struct kc_server *srv, struct kc_error *err)
{
	static const char *const known[] = {"creating", "running", "paused",	  "shutoff",
					    "shutdown", "crashed", "pmsuspended", "blocked",
					    "unknown",	"missing"};
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *by_state = json_object();
	size_t i;
	json_t *row;

	if (!by_state)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_vm_list(srv->db, NULL, &rows, err) < 0)
		return -1;
	for (i = 0; i < KC_ARRAY_SIZE(known); i++)
		json_object_set_new(by_state, known[i], json_integer(0));
	json_array_foreach(rows, i, row)
	{
		const char *s = json_string_value(json_object_get(row, "state"));
		if (!s)
			s = "unknown";
		json_int_t n = json_integer_value(json_object_get(by_state, s));
		json_object_set_new(by_state, s, json_integer(n + 1));
	}
	family(f, "kvmcloud_server_vms", "gauge", "VM records in the server's database, by state.");
	const char *state;
	json_t *n;
	json_object_foreach(by_state, state, n)
	{
		sample_int(f, "kvmcloud_server_vms", (const char *const[]){"state", state, NULL},
			   json_integer_value(n));
	}
	return 0;
}

static int write_server(FILE *f, struct kc_server *srv, struct kc_error *err)
{
	double up;
	long long rss;
	char val[48];

	family(f, "kvmcloud_server_info", "gauge", "Always 1; the server's version as a label.");
	sample_int(f, "kvmcloud_server_info", (const char *const[]){"version", KC_VERSION, NULL},
		   1);
	family(f, "kvmcloud_server_uptime_seconds", "gauge", "Seconds since the server started.");
	if (process_uptime(&up)) {
		snprintf(val, sizeof(val), "%.3f", up);
		sample(f, "kvmcloud_server_uptime_seconds", NULL, val);
	}
	family(f, "kvmcloud_server_resident_memory_bytes", "gauge",
	       "Resident memory of the server process (/proc/self/statm).");
	if (resident_bytes(&rss))
		sample_int(f, "kvmcloud_server_resident_memory_bytes", NULL, rss);
	write_requests(f);
	return write_server_vms(f, srv, err);
}

int kc_api_metrics(struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;

	_cleanup_json_ json_t *fleet = collect_fleet(c->srv, err);
	if (!fleet)
		return -1;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	write_hosts(f, fleet);
	write_vms(f, fleet);
	int r = write_server(f, c->srv, err);
	if (fclose(f) != 0 && r == 0)
		r = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (r < 0)
		return -1;
	ulfius_set_binary_body_response(c->resp, 200, buf, len);
	u_map_put(c->resp->map_header, "Content-Type", KC_METRICS_CONTENT_TYPE);
	return 0;
}
