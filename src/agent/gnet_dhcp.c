/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gnet_dhcp.c - kvmcloud's DHCP server for a vlan or vxlan guest network
 * on this host (gnet_dhcp.h).  Programs run with an argv of validated
 * values (kc_net_run), never through a shell.  dnsmasq is started with
 * nsenter rather than `ip netns exec`, which would also give it a mount
 * namespace of its own: in the host's mount namespace it is found (and
 * stopped) with everything else of a simulated host.
 */
#include "gnet_dhcp.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "dhcp_conf.h"
#include "io.h"
#include "json_util.h"
#include "net_backend.h"

#define NSENTER_BIN  "/usr/bin/nsenter"
#define DNSMASQ_BIN  "/usr/sbin/dnsmasq"
#define ETHTOOL_BIN  "/usr/sbin/ethtool"
#define NETNS_DIR    "/run/netns"
#define PATH_LEN     4096
#define STOP_WAIT_MS 2000

struct dhcp_names {
	char id[9];
	char ns[sizeof("kcdhcp-") + 8];
	char nspath[sizeof(NETNS_DIR "/kcdhcp-") + 8];
	char hveth[KC_IFNAME_LEN + 1]; /* kcd<ID>h, on the network */
	char nveth[KC_IFNAME_LEN + 1]; /* kcd<ID>n, in the namespace */
	char dir[PATH_LEN], state[PATH_LEN], hosts[PATH_LEN], pid[PATH_LEN];
};

static int names_of(struct kc_agent *a, const struct kc_gnet *g, struct dhcp_names *n,
		    struct kc_error *err)
{
	/* FNV-1a: stable across agents and versions, which the names must be. */
	uint32_t h = 2166136261u;
	for (const char *c = g->name; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	snprintf(n->id, sizeof(n->id), "%08x", h);
	snprintf(n->ns, sizeof(n->ns), "kcdhcp-%s", n->id);
	snprintf(n->nspath, sizeof(n->nspath), NETNS_DIR "/%s", n->ns);
	snprintf(n->hveth, sizeof(n->hveth), "kcd%sh", n->id);
	snprintf(n->nveth, sizeof(n->nveth), "kcd%sn", n->id);
	int l1 = snprintf(n->dir, PATH_LEN, "%s/dhcp/%s", a->data_dir, n->id);
	int l2 = snprintf(n->state, PATH_LEN, "%s/state.json", n->dir);
	int l3 = snprintf(n->hosts, PATH_LEN, "%s/hosts", n->dir);
	int l4 = snprintf(n->pid, PATH_LEN, "%s/dnsmasq.pid", n->dir);
	if (l1 >= PATH_LEN || l2 >= PATH_LEN || l3 >= PATH_LEN || l4 >= PATH_LEN)
		return kc_error_set(err, KC_ERR_TOO_LARGE,
				    "the agent's data folder path is too long");
	return 0;
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

/* The pid in the pid file if that process is our dnsmasq (its command
 * line names this pid file); 0 otherwise. */
static pid_t running_pid(const struct dhcp_names *n)
{
	char buf[32] = "", path[64], want[PATH_LEN + 16];
	_cleanup_close_ int fd = open(n->pid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		return 0;
	long pid = strtol(buf, NULL, 10);
	if (pid <= 1)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	_cleanup_close_ int cfd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *cmd = malloc(65536);
	if (cfd < 0 || !cmd)
		return 0;
	ssize_t len = read(cfd, cmd, 65535);
	if (len <= 0)
		return 0;
	cmd[len] = '\0';
	snprintf(want, sizeof(want), "--pid-file=%s", n->pid);
	for (char *p = cmd; p < cmd + len; p += strlen(p) + 1)
		if (strcmp(p, want) == 0)
			return (pid_t)pid;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void stop_dnsmasq(const struct dhcp_names *n)
{
	pid_t pid = running_pid(n);
	if (pid > 0) {
		kill(pid, SIGTERM);
		for (unsigned t = 0; t < STOP_WAIT_MS && running_pid(n) == pid; t += 20)
			sleep_ms(20);
		if (running_pid(n) == pid)
			kill(pid, SIGKILL);
	}
	unlink(n->pid);
}

static json_t *state_read(const struct dhcp_names *n)
{
	return json_load_file(n->state, JSON_REJECT_DUPLICATES, NULL);
}

/* The namespace, the veth pair with the server's address inside, the
 * outer end on the network. */
static int links_make(const struct kc_gnet *g, const struct dhcp_names *n, uint32_t server_ip,
		      struct kc_error *err)
{
	char addr[24], ip[16], mtu[12], tag[24];
	kc_ipv4_format(server_ip, ip);
	snprintf(addr, sizeof(addr), "%s/%u", ip, g->prefix);
	snprintf(mtu, sizeof(mtu), "%u", g->mtu);

	if (access(n->nspath, F_OK) != 0 &&
	    kc_net_runl(err, KC_IP_BIN, "netns", "add", n->ns, NULL) < 0)
		return -1;
	if (!link_exists(n->hveth)) {
		/* A half-made pair of an earlier try would block the add. */
		kc_net_runl(NULL, KC_IP_BIN, "-n", n->ns, "link", "del", n->nveth, NULL);
		if (kc_net_runl(err, KC_IP_BIN, "link", "add", n->hveth, "type", "veth", "peer",
				"name", n->nveth, "netns", n->ns, NULL) < 0)
			return -1;
	}
	if (g->mtu && (kc_net_runl(err, KC_IP_BIN, "link", "set", n->hveth, "mtu", mtu, NULL) < 0 ||
		       kc_net_runl(err, KC_IP_BIN, "-n", n->ns, "link", "set", n->nveth, "mtu", mtu,
				   NULL) < 0))
		return -1;
	if (kc_net_runl(err, KC_IP_BIN, "-n", n->ns, "addr", "flush", "dev", n->nveth, NULL) < 0 ||
	    kc_net_runl(err, KC_IP_BIN, "-n", n->ns, "addr", "add", addr, "dev", n->nveth, NULL) <
		    0 ||
	    kc_net_runl(err, KC_IP_BIN, "-n", n->ns, "link", "set", "lo", "up", NULL) < 0 ||
	    kc_net_runl(err, KC_IP_BIN, "-n", n->ns, "link", "set", n->nveth, "up", NULL) < 0)
		return -1;
	/* Checksums filled in by the sender: OVS's userspace datapath and a
	 * guest would otherwise see partial ones (docs/networking.md, OVS). */
	char netarg[sizeof(n->nspath) + 8];
	snprintf(netarg, sizeof(netarg), "--net=%s", n->nspath);
	if (kc_net_runl(err, NSENTER_BIN, netarg, "--", ETHTOOL_BIN, "-K", n->nveth, "tx", "off",
			NULL) < 0 ||
	    kc_net_runl(err, ETHTOOL_BIN, "-K", n->hveth, "tx", "off", NULL) < 0)
		return -1;
	if (g->kind == KC_GNET_VXLAN) {
		if (kc_net_runl(err, KC_IP_BIN, "link", "set", n->hveth, "master", g->bridge,
				NULL) < 0)
			return -1;
	} else if (g->backend == KC_GNET_OVS) {
		snprintf(tag, sizeof(tag), "tag=%u", g->vlan);
		if (kc_net_runl(err, KC_OVS_VSCTL_BIN, "--timeout=10", "--may-exist", "add-port",
				g->bridge, n->hveth, "--", "set", "Port", n->hveth, tag, NULL) < 0)
			return -1;
	} else {
		return kc_error_set(err, KC_ERR_INVALID,
				    "network \"%s\": kvmcloud serves DHCP on vxlan and Open "
				    "vSwitch vlan networks only",
				    g->name);
	}
	return kc_net_runl(err, KC_IP_BIN, "link", "set", n->hveth, "up", NULL);
}

static int start_dnsmasq(const struct kc_gnet *g, const struct dhcp_names *n, uint32_t server_ip,
			 struct kc_error *err)
{
	struct kc_dhcp_argv *d = calloc(1, sizeof(*d));
	char netarg[sizeof(n->nspath) + 8];
	char *argv[KC_DHCP_ARGV_MAX + 4];
	if (!d)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int rc = kc_dhcp_argv_build(g, server_ip, DNSMASQ_BIN, n->nveth, n->hosts, n->pid, d, err);
	if (rc == 0) {
		snprintf(netarg, sizeof(netarg), "--net=%s", n->nspath);
		argv[0] = NSENTER_BIN;
		argv[1] = netarg;
		argv[2] = "--";
		for (size_t i = 0; i <= d->n; i++)
			argv[3 + i] = d->argv[i];
		/* dnsmasq's parent returns once the daemon has started (or
		 * with its error), the pid file written. */
		rc = kc_net_run(argv, NULL, err);
	}
	free(d);
	return rc;
}

/* Makes the server serve `want` ({"network", "server_ip", "hosts"}). */
static int apply(const struct kc_gnet *g, const struct dhcp_names *n, const json_t *want,
		 uint32_t server_ip, const struct kc_dhcp_host *hosts, size_t nh,
		 struct kc_error *err)
{
	_cleanup_free_ char *text = NULL, *state = NULL;
	if (kc_dhcp_hosts_text(g, hosts, nh, &text, err) < 0)
		return -1;
	if (kc_mkdir_p(n->dir, 0700, err) < 0)
		return -1;
	stop_dnsmasq(n);
	state = json_dumps(want, JSON_SORT_KEYS);
	if (!state)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* The state is written before the links, so that a failure half
	 * way is retried in full by the next ensure (it differs then:
	 * dnsmasq is not running). */
	if (kc_file_replace(n->state, state, 0600, err) < 0 ||
	    kc_file_replace(n->hosts, text, 0600, err) < 0 ||
	    links_make(g, n, server_ip, err) < 0 || start_dnsmasq(g, n, server_ip, err) < 0)
		return -1;
	return 0;
}

/* Refuses a folder another network owns (hash collision). */
static int owner_check(const struct kc_gnet *g, const struct dhcp_names *n, const json_t *have,
		       struct kc_error *err)
{
	const char *owner = json_string_value(json_object_get(have, "network"));
	if (owner && strcmp(owner, g->name) != 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "networks \"%s\" and \"%s\" share DHCP id %s on this host: "
				    "rename one",
				    g->name, owner, n->id);
	return 0;
}

static json_t *hosts_json(const struct kc_dhcp_host *h, size_t nh)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < nh; i++) {
		char ip[16];
		kc_ipv4_format(h[i].ip, ip);
		json_array_append_new(arr, json_pack("{s:s,s:s}", "mac", h[i].mac, "ip", ip));
	}
	return arr;
}

static int ensure_with(struct kc_agent *a, const struct kc_gnet *g, uint32_t server_ip,
		       const struct kc_dhcp_host *hosts, size_t nh, struct kc_error *err)
{
	struct dhcp_names n;
	char ip[16];
	if (names_of(a, g, &n, err) < 0)
		return -1;
	kc_ipv4_format(server_ip, ip);
	_cleanup_json_ json_t *have = state_read(&n);
	_cleanup_json_ json_t *want = json_pack("{s:s,s:s,s:o}", "network", g->name, "server_ip",
						ip, "hosts", hosts_json(hosts, nh));
	if (!want)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (owner_check(g, &n, have, err) < 0)
		return -1;
	if (have && json_equal(have, want) && running_pid(&n) > 0 && link_exists(n.hveth))
		return 0;
	return apply(g, &n, want, server_ip, hosts, nh, err);
}

int kc_gnet_dhcp_ensure(struct kc_agent *a, const struct kc_gnet *g, const json_t *dhcp,
			struct kc_error *err)
{
	static const char *const keys[] = {"server_ip", "hosts", NULL};
	const char *sip = NULL;
	uint32_t server_ip;
	_cleanup_free_ struct kc_dhcp_host *hosts = NULL;
	size_t nh = 0;

	if (g->kind != KC_GNET_VLAN && g->kind != KC_GNET_VXLAN)
		return kc_error_set(err, KC_ERR_INVALID,
				    "network \"%s\" is %s: kvmcloud's own DHCP server is for vlan "
				    "and vxlan networks",
				    g->name, kc_gnet_kind_name(g->kind));
	if (!json_is_object(dhcp))
		return kc_error_set(err, KC_ERR_INVALID, "\"dhcp\" must be an object");
	if (kc_json_check_keys(dhcp, keys, "\"dhcp\"", err) < 0 ||
	    kc_json_get_string(dhcp, "server_ip", true, 15, &sip, err) < 0 ||
	    kc_ipv4_parse(sip, "\"server_ip\"", &server_ip, err) < 0 ||
	    kc_dhcp_hosts_from_json(json_object_get(dhcp, "hosts"), &hosts, &nh, err) < 0)
		return -1;
	return ensure_with(a, g, server_ip, hosts, nh, err);
}

int kc_gnet_dhcp_host(struct kc_agent *a, const struct kc_gnet *g, const struct kc_dhcp_host *h,
		      bool add, struct kc_error *err)
{
	struct dhcp_names n;
	uint32_t server_ip;
	_cleanup_free_ struct kc_dhcp_host *hosts = NULL;
	size_t nh = 0;

	if (names_of(a, g, &n, err) < 0)
		return -1;
	_cleanup_json_ json_t *have = state_read(&n);
	if (!have) {
		if (!add)
			return 0;
		return kc_error_set(err, KC_ERR_NOT_FOUND,
				    "network \"%s\" has no DHCP server on this host", g->name);
	}
	if (owner_check(g, &n, have, err) < 0 ||
	    kc_ipv4_parse(json_string_value(json_object_get(have, "server_ip")), "server_ip",
			  &server_ip, err) < 0 ||
	    kc_dhcp_hosts_from_json(json_object_get(have, "hosts"), &hosts, &nh, err) < 0)
		return -1;
	/* The list without this MAC, then with it if adding. */
	size_t k = 0;
	for (size_t i = 0; i < nh; i++)
		if (strcasecmp(hosts[i].mac, h->mac) != 0)
			hosts[k++] = hosts[i];
	if (add) {
		struct kc_dhcp_host *more = realloc(hosts, (k + 1) * sizeof(*hosts));
		if (!more)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		hosts = more;
		hosts[k++] = *h;
	}
	return ensure_with(a, g, server_ip, hosts, k, err);
}

int kc_gnet_dhcp_remove(struct kc_agent *a, const struct kc_gnet *g, struct kc_error *err)
{
	struct dhcp_names n;
	if (names_of(a, g, &n, err) < 0)
		return -1;
	_cleanup_json_ json_t *have = state_read(&n);
	const char *owner = json_string_value(json_object_get(have, "network"));
	/* Another network's (a hash collision refused this one's): not ours
	 * to remove.  Nothing at all: nothing to do (no OVS call either). */
	if (owner && strcmp(owner, g->name) != 0)
		return 0;
	if (!have && !link_exists(n.hveth) && access(n.nspath, F_OK) != 0)
		return 0;
	stop_dnsmasq(&n);
	if (g->kind == KC_GNET_VLAN && g->backend == KC_GNET_OVS &&
	    kc_net_runl(err, KC_OVS_VSCTL_BIN, "--timeout=10", "--if-exists", "del-port", g->bridge,
			n.hveth, NULL) < 0)
		return -1;
	if ((link_exists(n.hveth) &&
	     kc_net_runl(err, KC_IP_BIN, "link", "del", n.hveth, NULL) < 0) ||
	    (access(n.nspath, F_OK) == 0 &&
	     kc_net_runl(err, KC_IP_BIN, "netns", "del", n.ns, NULL) < 0))
		return -1;
	unlink(n.hosts);
	unlink(n.state);
	rmdir(n.dir);
	return 0;
}
