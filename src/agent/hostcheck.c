/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostcheck.c - can this host run kvmcloud guests, and how well?  Each item
 * is pass / warn / fail with a reason a person can act on.  Missing KVM is a
 * warning, not a failure: guests still run under TCG, only slower.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timex.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "hostfw.h"
#include "hostnet.h"
#include "json_util.h"

#define MIN_LIBVIRT    8000000UL
#define MIN_QEMU       6002000UL
#define MIN_MEMORY_KIB (4ULL * 1024 * 1024)

enum status { PASS = 0, WARN, FAIL };
static const char *const status_name[] = {"pass", "warn", "fail"};

struct check {
	json_t *items;
	enum status worst;
};

static void add(struct check *c, const char *name, enum status s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add(struct check *c, const char *name, enum status s, const char *fmt, ...)
{
	char reason[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	json_array_append_new(c->items, json_pack("{s:s,s:s,s:s}", "name", name, "status",
						  status_name[s], "reason", reason));
	if (s > c->worst)
		c->worst = s;
}

static void check_cpu_flags(struct check *c)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f) {
		add(c, "cpu_virt_flags", WARN, "cannot read /proc/cpuinfo: %s", strerror(errno));
		return;
	}
	char line[8192];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		const char *found = strstr(line, " vmx")   ? "vmx"
				    : strstr(line, " svm") ? "svm"
							   : NULL;
		if (found)
			add(c, "cpu_virt_flags", PASS, "%s present", found);
		else
			add(c, "cpu_virt_flags", WARN,
			    "no vmx or svm flag in /proc/cpuinfo: no hardware virtualisation, "
			    "guests "
			    "run under TCG");
		return;
	}
	add(c, "cpu_virt_flags", WARN, "no flags line in /proc/cpuinfo");
}

static void check_kvm(struct kc_agent *a, struct check *c)
{
	char reason[256];
	bool dev = kc_kvm_device_usable(reason, sizeof(reason));
	add(c, "kvm_device", dev ? PASS : WARN, "%s", reason);

	pthread_mutex_lock(&a->conn_lock);
	enum kc_accel accel = a->accel;
	char why[512];
	snprintf(why, sizeof(why), "%s", a->accel_reason);
	pthread_mutex_unlock(&a->conn_lock);
	if (accel == KC_ACCEL_KVM)
		add(c, "kvm_usable", PASS, "KVM is used: %s", why);
	else
		add(c, "kvm_usable", WARN, "KVM is not usable, guests run under TCG: %s", why);
}

static void check_versions(virConnectPtr conn, struct check *c)
{
	unsigned long lv, qv;
	if (kc_host_versions(conn, &lv, &qv, NULL) < 0) {
		virResetLastError();
		add(c, "libvirt_version", FAIL, "cannot read versions from libvirtd");
		add(c, "qemu_version", FAIL, "cannot read versions from libvirtd");
		return;
	}
	char have[32], need[32];
	kc_version_str(lv, have, sizeof(have));
	kc_version_str(MIN_LIBVIRT, need, sizeof(need));
	add(c, "libvirt_version", lv >= MIN_LIBVIRT ? PASS : FAIL, "libvirt %s (minimum %s)", have,
	    need);
	kc_version_str(qv, have, sizeof(have));
	kc_version_str(MIN_QEMU, need, sizeof(need));
	add(c, "qemu_version", qv >= MIN_QEMU ? PASS : FAIL, "QEMU %s (minimum %s)", have, need);
}

static void check_fqdn(struct check *c)
{
	char host[256];
	if (gethostname(host, sizeof(host)) < 0) {
		add(c, "fqdn", FAIL, "gethostname: %s", strerror(errno));
		return;
	}
	host[sizeof(host) - 1] = '\0';
	struct addrinfo hints = {.ai_flags = AI_CANONNAME, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int r = getaddrinfo(host, NULL, &hints, &res);
	if (r != 0) {
		add(c, "fqdn", FAIL,
		    "host name '%s' does not resolve: %s (add it to /etc/hosts "
		    "or DNS)",
		    host, gai_strerror(r));
		return;
	}
	char canon[256];
	snprintf(canon, sizeof(canon), "%s", res->ai_canonname ? res->ai_canonname : host);
	freeaddrinfo(res);
	if (strchr(canon, '.'))
		add(c, "fqdn", PASS, "%s", canon);
	else
		add(c, "fqdn", WARN, "'%s' resolves but is not fully qualified (no domain)", canon);
}

static void check_time(struct check *c)
{
	struct timex tx = {0};
	int r = adjtimex(&tx);
	if (r < 0)
		add(c, "time_sync", WARN, "adjtimex: %s", strerror(errno));
	else if ((tx.status & STA_UNSYNC) || r == TIME_ERROR)
		add(c, "time_sync", WARN, "clock not synchronised (is chrony/ntpd running?)");
	else
		add(c, "time_sync", PASS, "clock synchronised (estimated error %ld us)",
		    tx.esterror);
}

static void check_memory(virConnectPtr conn, struct check *c)
{
	unsigned cpus;
	uint64_t kib;
	if (kc_host_limits(conn, &cpus, &kib, NULL) < 0) {
		virResetLastError();
		add(c, "memory", FAIL, "cannot read host memory from libvirtd");
		return;
	}
	add(c, "memory", kib >= MIN_MEMORY_KIB ? PASS : FAIL, "%llu MiB (minimum 4096 MiB)",
	    (unsigned long long)kib / 1024);
}

static void check_nic(struct check *c)
{
	struct ifaddrs *ifs;
	if (getifaddrs(&ifs) < 0) {
		add(c, "nic", FAIL, "getifaddrs: %s", strerror(errno));
		return;
	}
	char names[256] = "";
	size_t n = 0;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if ((i->ifa_flags & IFF_LOOPBACK) || !i->ifa_addr ||
		    i->ifa_addr->sa_family != AF_PACKET)
			continue;
		if (n++ < 8) {
			size_t l = strlen(names);
			snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", i->ifa_name);
		}
	}
	freeifaddrs(ifs);
	if (n)
		add(c, "nic", PASS, "%zu interface(s): %s", n, names);
	else
		add(c, "nic", FAIL, "no network interface besides loopback");
}

static bool read_line(const char *path, char *buf, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f || !fgets(buf, len, f))
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

static void check_security(virConnectPtr conn, struct check *c)
{
	char v[32], lvmodel[64] = "unknown";
	virSecurityModel sm;
	if (virNodeGetSecurityModel(conn, &sm) == 0)
		snprintf(lvmodel, sizeof(lvmodel), "%.60s", sm.model[0] ? sm.model : "none");
	else
		virResetLastError();
	if (read_line("/sys/fs/selinux/enforce", v, sizeof(v))) {
		bool on = strcmp(v, "1") == 0;
		add(c, "security_module", on ? PASS : WARN,
		    "SELinux %s; libvirt security model: %s", on ? "enforcing" : "permissive",
		    lvmodel);
	} else if (read_line("/sys/module/apparmor/parameters/enabled", v, sizeof(v))) {
		bool on = v[0] == 'Y';
		add(c, "security_module", on ? PASS : WARN,
		    "AppArmor %s; libvirt security model: %s", on ? "enabled" : "disabled",
		    lvmodel);
	} else {
		add(c, "security_module", WARN,
		    "neither SELinux nor AppArmor is active: guests are confined only by their "
		    "user (DAC); libvirt security model: %s",
		    lvmodel);
	}
}

static void check_cpu_mode(struct kc_agent *a, struct check *c)
{
	char what[128];
	if (a->cpu_mode == KC_CPU_CUSTOM)
		snprintf(what, sizeof(what), "guest CPU mode custom, model %s", a->cpu_model);
	else
		snprintf(what, sizeof(what), "guest CPU mode %s", kc_cpu_mode_name(a->cpu_mode));
	if (a->cpu_warning[0])
		add(c, "cpu_mode", WARN, "%s: %s", what, a->cpu_warning);
	else
		add(c, "cpu_mode", PASS, "%s", what);
}

/* The declared host network (hostnet.h), when there is one: a difference
 * (missing bridge, wrong VLAN, missing address) fails the check. */
static void check_host_network(struct kc_agent *a, struct check *c)
{
	char why[700];
	bool ok = true;
	json_t *diff = NULL;
	struct kc_error e = {0};
	if (kc_hostnet_check(a->data_dir, &ok, why, sizeof(why), &diff, &e) < 0)
		add(c, "host_network", WARN, "cannot compare with the declaration: %s", e.message);
	else if (diff)
		add(c, "host_network", ok ? PASS : FAIL, "%s", why);
	json_decref(diff);
}

int kc_host_check_run(struct kc_agent *a, virConnectPtr conn, json_t **ret, struct kc_error *err)
{
	struct check c = {.items = json_array(), .worst = PASS};
	if (!c.items)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	check_cpu_flags(&c);
	check_kvm(a, &c);
	check_versions(conn, &c);
	check_fqdn(&c);
	check_time(&c);
	check_memory(conn, &c);
	check_nic(&c);
	check_security(conn, &c);
	check_cpu_mode(a, &c);
	char fw_why[1200];
	int fw = kc_hostfw_check(fw_why, sizeof(fw_why));
	add(&c, "host_firewall", fw ? WARN : PASS, "%s", fw_why);
	check_host_network(a, &c);
	*ret = json_pack("{s:s,s:o}", "summary", status_name[c.worst], "items", c.items);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}
