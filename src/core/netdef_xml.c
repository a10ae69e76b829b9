/* SPDX-License-Identifier: Apache-2.0 */
#include "netdef_xml.h"
#include "secgroup.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "cleanup.h"
#include "json_util.h"
#include "xmlwriter.h"

int kc_dhcp_hosts_from_json(const json_t *a, struct kc_dhcp_host **ret, size_t *ret_n,
			    struct kc_error *err)
{
	static const char *const keys[] = {"mac", "ip", NULL};
	size_t n = a ? json_array_size(a) : 0;

	if (a && !json_is_array(a))
		return kc_error_set(err, KC_ERR_INVALID, "\"dhcp_hosts\" must be an array");
	if (n > KC_MAX_DHCP_HOSTS)
		return kc_error_set(err, KC_ERR_INVALID, "more than %d DHCP hosts",
				    KC_MAX_DHCP_HOSTS);
	_cleanup_free_ struct kc_dhcp_host *h = n ? calloc(n, sizeof(*h)) : NULL;
	if (n && !h)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(a, i);
		const char *mac = NULL, *ip = NULL;
		if (!json_is_object(o) || kc_json_check_keys(o, keys, "a DHCP host", err) < 0 ||
		    kc_json_get_string(o, "mac", true, 17, &mac, err) < 0 ||
		    kc_mac_validate(mac, true, "DHCP host MAC", err) < 0 ||
		    kc_json_get_string(o, "ip", true, 15, &ip, err) < 0 ||
		    kc_ipv4_parse(ip, "DHCP host address", &h[i].ip, err) < 0)
			return kc_error_set(err, KC_ERR_INVALID, "dhcp_hosts[%zu] is invalid", i);
		snprintf(h[i].mac, sizeof(h[i].mac), "%s", mac);
	}
	*ret = steal_ptr(&h);
	*ret_n = n;
	return 0;
}

static int check_host(const struct kc_gnet *g, const struct kc_dhcp_host *h, struct kc_error *err)
{
	char a[16];
	if (kc_mac_validate(h->mac, true, "DHCP host MAC", err) < 0)
		return -1;
	if (!kc_gnet_ip_assignable(g, h->ip)) {
		kc_ipv4_format(h->ip, a);
		return kc_error_set(err, KC_ERR_INVALID,
				    "address %s is not in network \"%s\"'s pool", a, g->name);
	}
	return 0;
}

static void write_host(struct kc_xmlw *x, const struct kc_dhcp_host *h)
{
	char a[16];
	kc_ipv4_format(h->ip, a);
	kc_xmlw_start(x, "host");
	kc_xmlw_attr(x, "mac", h->mac);
	kc_xmlw_attr(x, "ip", a);
	kc_xmlw_end(x);
}

int kc_netdef_xml_build(const struct kc_gnet *g, const struct kc_dhcp_host *hosts, size_t n,
			char **ret_xml, struct kc_error *err)
{
	char a[16], b[16];
	struct kc_xmlw x;

	if (g->kind != KC_GNET_NAT && g->kind != KC_GNET_ISOLATED)
		return kc_error_set(err, KC_ERR_INVALID,
				    "network \"%s\" (%s) is no libvirt network", g->name,
				    kc_gnet_kind_name(g->kind));
	if (!g->has_cidr || !g->gateway ||
	    kc_ifname_validate(g->bridge, "the network's bridge", err) < 0)
		return kc_error_set(err, KC_ERR_INVALID, "network \"%s\" is incomplete", g->name);
	if (n > KC_MAX_DHCP_HOSTS)
		return kc_error_set(err, KC_ERR_INVALID, "more than %d DHCP hosts",
				    KC_MAX_DHCP_HOSTS);
	for (size_t i = 0; i < n; i++) {
		if (check_host(g, &hosts[i], err) < 0)
			return -1;
		for (size_t k = 0; k < i; k++)
			if (hosts[k].ip == hosts[i].ip || !strcasecmp(hosts[k].mac, hosts[i].mac))
				return kc_error_set(err, KC_ERR_INVALID,
						    "DHCP hosts %zu and %zu share a MAC or address",
						    k, i);
	}
	if (kc_xmlw_init(&x, err) < 0)
		return -1;
	kc_xmlw_start(&x, "network");
	kc_xmlw_elem(&x, "name", g->bridge);
	if (g->kind == KC_GNET_NAT)
		kc_xmlw_elem_attr(&x, "forward", "mode", "nat");
	kc_xmlw_start(&x, "bridge");
	kc_xmlw_attr(&x, "name", g->bridge);
	kc_xmlw_attr(&x, "stp", "off");
	kc_xmlw_attr(&x, "delay", "0");
	kc_xmlw_end(&x);
	if (g->mtu) {
		char mtu[12];
		snprintf(mtu, sizeof(mtu), "%u", g->mtu);
		kc_xmlw_elem_attr(&x, "mtu", "size", mtu);
	}
	kc_ipv4_format(g->gateway, a);
	kc_ipv4_format(g->prefix ? ~UINT32_C(0) << (32 - g->prefix) : 0, b);
	kc_xmlw_start(&x, "ip");
	kc_xmlw_attr(&x, "address", a);
	kc_xmlw_attr(&x, "netmask", b);
	kc_xmlw_start(&x, "dhcp");
	kc_ipv4_format(g->dhcp_start, a);
	kc_ipv4_format(g->dhcp_end, b);
	kc_xmlw_start(&x, "range");
	kc_xmlw_attr(&x, "start", a);
	kc_xmlw_attr(&x, "end", b);
	kc_xmlw_end(&x);
	for (size_t i = 0; i < n; i++)
		write_host(&x, &hosts[i]);
	kc_xmlw_end(&x);
	kc_xmlw_end(&x);
	kc_xmlw_end(&x);
	char *xml = kc_xmlw_finish(&x, "the network XML", err);
	if (!xml)
		return -1;
	*ret_xml = xml;
	return 0;
}

int kc_dhcp_host_xml_build(const struct kc_gnet *g, const struct kc_dhcp_host *h, char **ret_xml,
			   struct kc_error *err)
{
	struct kc_xmlw x;
	if (check_host(g, h, err) < 0 || kc_xmlw_init(&x, err) < 0)
		return -1;
	write_host(&x, h);
	char *xml = kc_xmlw_finish(&x, "the DHCP host XML", err);
	if (!xml)
		return -1;
	*ret_xml = xml;
	return 0;
}
