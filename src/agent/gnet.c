/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gnet.c - guest networks on this host (gnet_agent.h).  Links are changed
 * by running ip(8)/bridge(8)/ovs-vsctl with an argv built only from
 * validated values (interface names checked, addresses parsed and printed
 * back), never through a shell.
 */
#include "gnet_agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "gnet.h"
#include "gnet_dhcp.h"
#include "json_util.h"
#include "netdef_xml.h"

#define IP_BIN	   "/usr/sbin/ip"
#define BRIDGE_BIN "/usr/sbin/bridge"
#define OVS_VSCTL  "/usr/bin/ovs-vsctl"
#define VXLAN_PORT "4789"
#define NO_MAC	   "00:00:00:00:00:00"

/* Two creates on this host may ensure one network at once: the define
 * and the device creation must not race. */
static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void net_freep(virNetworkPtr *n)
{
	if (*n)
		virNetworkFree(*n);
}
#define _cleanup_net_ __attribute__((cleanup(net_freep)))

static int read_def(const json_t *args, struct kc_gnet *g, struct kc_error *err)
{
	const json_t *n = json_object_get(args, "network");
	if (!n)
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"network\" (its definition) is required");
	return kc_gnet_from_json(n, g, err);
}

/* By ioctl in this network namespace: /sys/class/net may be the sysfs of
 * another one (a simulated host's private mounts keep the root's). */
static bool link_exists(const char *ifname)
{
	return if_nametoindex(ifname) != 0;
}

/* The first IPv4 address of `ifname`. */
static int if_ipv4(const char *ifname, uint32_t *ret, struct kc_error *err)
{
	struct ifaddrs *ifs = NULL, *i;
	if (getifaddrs(&ifs) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot list interfaces");
	int rc = -1;
	for (i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    strcmp(i->ifa_name, ifname) == 0) {
			*ret = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
			rc = 0;
			break;
		}
	freeifaddrs(ifs);
	if (rc < 0)
		kc_error_set(err, KC_ERR_INVALID,
			     "underlay interface \"%s\" has no IPv4 address on this host", ifname);
	return rc;
}

/* ---- libvirt networks (nat, isolated) ---- */

/* The static hosts the network has now: *ret is [{mac, ip}]. */
static int current_hosts(virNetworkPtr net, json_t **ret, struct kc_error *err)
{
	_cleanup_free_ char *xml = virNetworkGetXMLDesc(net, 0);
	if (!xml)
		return kc_lverr(err, "reading network %s", virNetworkGetName(net));
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "network.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot parse the network's XML");
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr o =
		ctx ? xmlXPathEvalExpression((const xmlChar *)"/network/ip/dhcp/host", ctx) : NULL;
	json_t *hosts = json_array();
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlNodePtr n = o->nodesetval->nodeTab[i];
		xmlChar *mac = xmlGetProp(n, (const xmlChar *)"mac");
		xmlChar *ip = xmlGetProp(n, (const xmlChar *)"ip");
		if (mac && ip)
			json_array_append_new(hosts, json_pack("{s:s,s:s}", "mac", (char *)mac,
							       "ip", (char *)ip));
		xmlFree(mac);
		xmlFree(ip);
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	*ret = hosts;
	return 0;
}

static bool has_host(const json_t *hosts, const char *mac, const char *ip)
{
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		const char *m = json_string_value(json_object_get(h, "mac"));
		const char *a = json_string_value(json_object_get(h, "ip"));
		if (m && a && !strcasecmp(m, mac) && (!ip || !strcmp(a, ip)))
			return true;
	}
	return false;
}

static int update_host(virNetworkPtr net, const struct kc_gnet *g, const struct kc_dhcp_host *h,
		       bool add, struct kc_error *err)
{
	_cleanup_free_ char *xml = NULL;
	if (kc_dhcp_host_xml_build(g, h, &xml, err) < 0)
		return -1;
	unsigned flags = VIR_NETWORK_UPDATE_AFFECT_CONFIG;
	if (virNetworkIsActive(net) == 1)
		flags |= VIR_NETWORK_UPDATE_AFFECT_LIVE;
	if (virNetworkUpdate(net,
			     add ? VIR_NETWORK_UPDATE_COMMAND_ADD_LAST
				 : VIR_NETWORK_UPDATE_COMMAND_DELETE,
			     VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, flags) < 0)
		return kc_lverr(err, "%s DHCP host %s on network %s", add ? "adding" : "removing",
				h->mac, g->bridge);
	return 0;
}

/* Makes the network's static hosts exactly `want`. */
static int sync_hosts(virNetworkPtr net, const struct kc_gnet *g, const struct kc_dhcp_host *want,
		      size_t n, struct kc_error *err)
{
	_cleanup_json_ json_t *have = NULL;
	if (current_hosts(net, &have, err) < 0)
		return -1;
	size_t i;
	json_t *h;
	json_array_foreach(have, i, h)
	{
		struct kc_dhcp_host d = {0};
		const char *mac = json_string_value(json_object_get(h, "mac"));
		bool keep = false;
		for (size_t k = 0; k < n && !keep; k++) {
			char a[16];
			kc_ipv4_format(want[k].ip, a);
			keep = !strcasecmp(want[k].mac, mac) &&
			       !strcmp(a, json_string_value(json_object_get(h, "ip")));
		}
		if (keep || kc_ipv4_parse(json_string_value(json_object_get(h, "ip")), "address",
					  &d.ip, NULL) < 0)
			continue;
		snprintf(d.mac, sizeof(d.mac), "%s", mac);
		if (update_host(net, g, &d, false, err) < 0)
			return -1;
	}
	for (size_t k = 0; k < n; k++) {
		char a[16];
		kc_ipv4_format(want[k].ip, a);
		if (!has_host(have, want[k].mac, a) && update_host(net, g, &want[k], true, err) < 0)
			return -1;
	}
	return 0;
}

static int ensure_libvirt(virConnectPtr conn, const struct kc_gnet *g,
			  const struct kc_dhcp_host *hosts, size_t n, struct kc_error *err)
{
	_cleanup_net_ virNetworkPtr net = virNetworkLookupByName(conn, g->bridge);
	if (!net) {
		virResetLastError();
		_cleanup_free_ char *xml = NULL;
		if (kc_netdef_xml_build(g, hosts, n, &xml, err) < 0)
			return -1;
		net = virNetworkDefineXML(conn, xml);
		if (!net)
			return kc_lverr(err, "defining network %s", g->bridge);
		if (virNetworkSetAutostart(net, 1) < 0 || virNetworkCreate(net) < 0) {
			kc_lverr(err, "starting network %s", g->bridge);
			virNetworkUndefine(net);
			return -1;
		}
		return 0;
	}
	if (virNetworkIsActive(net) != 1 && virNetworkCreate(net) < 0)
		return kc_lverr(err, "starting network %s", g->bridge);
	return sync_hosts(net, g, hosts, n, err);
}

/* ---- bridges ---- */

static int ensure_bridge(const struct kc_gnet *g, struct kc_error *err)
{
	if (g->backend == KC_GNET_OVS) {
		char *argv[] = {OVS_VSCTL, "--timeout=10", "br-exists", (char *)g->bridge, NULL};
		if (kc_run(argv, NULL) < 0)
			return kc_error_set(err, KC_ERR_NOT_FOUND,
					    "Open vSwitch bridge \"%s\" not found on this host",
					    g->bridge);
		return 0;
	}
	/* A Linux bridge: the interface must exist here (its kind is
	 * libvirt's to check when it plugs the tap in). */
	if (!link_exists(g->bridge))
		return kc_error_set(err, KC_ERR_NOT_FOUND, "bridge \"%s\" not found on this host",
				    g->bridge);
	return 0;
}

static int ensure_vxlan(const struct kc_gnet *g, const json_t *peers, json_t *ret,
			struct kc_error *err)
{
	char dev[KC_IFNAME_LEN + 1], vni[12], local[16], peer[16];
	uint32_t lip = 0;

	if (peers && (!json_is_array(peers) || json_array_size(peers) > KC_MAX_PEERS))
		return kc_error_set(err, KC_ERR_INVALID, "\"peers\" must be at most %d addresses",
				    KC_MAX_PEERS);
	if (if_ipv4(g->underlay, &lip, err) < 0)
		return -1;
	kc_ipv4_format(lip, local);
	kc_gnet_vxlan_dev(g, dev);
	snprintf(vni, sizeof(vni), "%u", g->vni);
	if (!link_exists(g->bridge)) {
		char *argv[] = {IP_BIN, "link", "add", (char *)g->bridge, "type", "bridge", NULL};
		if (kc_run(argv, err) < 0)
			return -1;
	}
	/* Recreating the device would lose its bridge port and FDB: only
	 * when it is missing, and both are (re)applied below regardless. */
	if (!link_exists(dev)) {
		/* Learning on: flood-and-learn (RFC 7348).  Unknown and broadcast
		 * frames go to every peer by the flood entries below; a reply
		 * teaches the device which host a MAC is behind, so unicast
		 * then goes to that host only.  With the host firewall only
		 * peers' UDP 4789 reaches it, so only they can teach it. */
		char *argv[] = {IP_BIN,	   "link",
				"add",	   dev,
				"type",	   "vxlan",
				"id",	   vni,
				"dstport", VXLAN_PORT,
				"local",   local,
				"dev",	   (char *)g->underlay,
				NULL};
		if (kc_run(argv, err) < 0)
			return -1;
	}
	char *master[] = {IP_BIN, "link", "set", dev, "master", (char *)g->bridge, "up", NULL};
	char *up[] = {IP_BIN, "link", "set", (char *)g->bridge, "up", NULL};
	if (kc_run(master, err) < 0 || kc_run(up, err) < 0)
		return -1;
	size_t i;
	json_t *p;
	json_array_foreach(peers, i, p)
	{
		uint32_t pip;
		if (kc_ipv4_parse(json_string_value(p), "peer address", &pip, err) < 0)
			return -1;
		if (pip == lip)
			continue;
		kc_ipv4_format(pip, peer);
		char *argv[] = {BRIDGE_BIN, "fdb", "append", NO_MAC, "dev", dev, "dst", peer, NULL};
		if (kc_run(argv, err) < 0)
			return -1;
	}
	json_object_set_new(ret, "local_ip", json_string(local));
	return 0;
}

int kc_agent_net_ensure(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"network", "dhcp_hosts", "peers", "dhcp", NULL};
	struct kc_gnet g;
	_cleanup_free_ struct kc_dhcp_host *hosts = NULL;
	size_t n = 0;

	if (kc_json_check_keys(args, keys, "net.ensure args", err) < 0 ||
	    read_def(args, &g, err) < 0 ||
	    kc_dhcp_hosts_from_json(json_object_get(args, "dhcp_hosts"), &hosts, &n, err) < 0)
		return -1;
	_cleanup_json_ json_t *res = json_pack("{s:s}", "network", g.name);
	if (!res)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int rc;
	pthread_mutex_lock(&net_lock);
	switch (g.kind) {
	case KC_GNET_NAT:
	case KC_GNET_ISOLATED: {
		_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
		rc = conn ? ensure_libvirt(conn, &g, hosts, n, err) : -1;
		break;
	}
	case KC_GNET_VXLAN:
		rc = ensure_vxlan(&g, json_object_get(args, "peers"), res, err);
		break;
	default:
		rc = ensure_bridge(&g, err);
		break;
	}
	json_t *dhcp = json_object_get(args, "dhcp");
	if (rc == 0 && dhcp)
		rc = kc_gnet_dhcp_ensure(a, &g, dhcp, err);
	pthread_mutex_unlock(&net_lock);
	if (rc < 0)
		return -1;
	*ret = steal_ptr(&res);
	return 0;
}

int kc_agent_net_remove(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"network", NULL};
	struct kc_gnet g;
	int rc = 0;

	if (kc_json_check_keys(args, keys, "net.remove args", err) < 0 ||
	    read_def(args, &g, err) < 0)
		return -1;
	pthread_mutex_lock(&net_lock);
	if (g.kind == KC_GNET_NAT || g.kind == KC_GNET_ISOLATED) {
		_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
		_cleanup_net_ virNetworkPtr net =
			conn ? virNetworkLookupByName(conn, g.bridge) : NULL;
		if (!conn) {
			rc = -1;
		} else if (!net) {
			virResetLastError();
		} else if ((virNetworkIsActive(net) == 1 && virNetworkDestroy(net) < 0) ||
			   virNetworkUndefine(net) < 0) {
			rc = kc_lverr(err, "removing network %s", g.bridge);
		}
	} else if (g.kind == KC_GNET_VLAN && kc_gnet_dhcp_remove(a, &g, err) < 0) {
		rc = -1;
	} else if (g.kind == KC_GNET_VXLAN) {
		char dev[KC_IFNAME_LEN + 1];
		kc_gnet_vxlan_dev(&g, dev);
		char *del_dev[] = {IP_BIN, "link", "del", dev, NULL};
		char *del_br[] = {IP_BIN, "link", "del", g.bridge, NULL};
		if (kc_gnet_dhcp_remove(a, &g, err) < 0 ||
		    (link_exists(dev) && kc_run(del_dev, err) < 0) ||
		    (link_exists(g.bridge) && kc_run(del_br, err) < 0))
			rc = -1;
	}
	pthread_mutex_unlock(&net_lock);
	if (rc < 0)
		return -1;
	*ret = json_pack("{s:s}", "removed", g.name);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

int kc_agent_net_dhcp_host(struct kc_agent *a, const json_t *args, json_t **ret,
			   struct kc_error *err)
{
	static const char *const keys[] = {"network", "op", "mac", "ip", NULL};
	struct kc_gnet g;
	struct kc_dhcp_host h = {0};
	const char *op = NULL, *mac = NULL, *ip = NULL;

	if (kc_json_check_keys(args, keys, "net.dhcp_host args", err) < 0 ||
	    read_def(args, &g, err) < 0 || kc_json_get_string(args, "op", true, 8, &op, err) < 0 ||
	    kc_json_get_string(args, "mac", true, 17, &mac, err) < 0 ||
	    kc_mac_validate(mac, true, "\"mac\"", err) < 0 ||
	    kc_json_get_string(args, "ip", true, 15, &ip, err) < 0 ||
	    kc_ipv4_parse(ip, "\"ip\"", &h.ip, err) < 0)
		return -1;
	bool add = strcmp(op, "add") == 0;
	if (!add && strcmp(op, "remove") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "\"op\" must be add or remove");
	if (g.kind == KC_GNET_BRIDGED)
		return kc_error_set(err, KC_ERR_INVALID,
				    "network \"%s\" is %s: its DHCP is not kvmcloud's", g.name,
				    kc_gnet_kind_name(g.kind));
	snprintf(h.mac, sizeof(h.mac), "%s", mac);
	if (g.kind == KC_GNET_VLAN || g.kind == KC_GNET_VXLAN) {
		pthread_mutex_lock(&net_lock);
		int r = kc_gnet_dhcp_host(a, &g, &h, add, err);
		pthread_mutex_unlock(&net_lock);
		if (r < 0)
			return -1;
		*ret = json_object();
		return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	pthread_mutex_lock(&net_lock);
	int rc = 0;
	_cleanup_net_ virNetworkPtr net = virNetworkLookupByName(conn, g.bridge);
	_cleanup_json_ json_t *have = NULL;
	if (!net) {
		virResetLastError();
		/* Nothing to remove from a network that is not here. */
		if (add)
			rc = kc_error_set(err, KC_ERR_NOT_FOUND, "network %s is not on this host",
					  g.bridge);
	} else if ((rc = current_hosts(net, &have, err)) == 0 &&
		   has_host(have, h.mac, add ? ip : NULL) != add) {
		rc = update_host(net, &g, &h, add, err);
	}
	pthread_mutex_unlock(&net_lock);
	if (rc < 0)
		return -1;
	*ret = json_object();
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}
