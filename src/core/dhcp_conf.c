/* SPDX-License-Identifier: Apache-2.0 */
#include "dhcp_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

static int add(struct kc_dhcp_argv *a, struct kc_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int add(struct kc_dhcp_argv *a, struct kc_error *err, const char *fmt, ...)
{
	if (a->n >= KC_DHCP_ARGV_MAX)
		return kc_error_set(err, KC_ERR_INTERNAL, "too many dnsmasq arguments");
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(a->buf[a->n], KC_DHCP_ARG_LEN, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= KC_DHCP_ARG_LEN)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "a dnsmasq argument is too long");
	a->argv[a->n] = a->buf[a->n];
	a->argv[++a->n] = NULL;
	return 0;
}

int kc_dhcp_argv_build(const struct kc_gnet *g, uint32_t server_ip, const char *dnsmasq,
		       const char *iface, const char *hosts_path, const char *pid_path,
		       struct kc_dhcp_argv *ret, struct kc_error *err)
{
	char net[16], mask[16], gw[16];

	if (!g->has_cidr)
		return kc_error_set(err, KC_ERR_INVALID,
				    "network \"%s\" has no address range to serve", g->name);
	if (!kc_gnet_ip_assignable(g, server_ip))
		return kc_error_set(err, KC_ERR_INVALID,
				    "the DHCP server's address is not in network \"%s\"'s pool",
				    g->name);
	kc_ipv4_format(g->net, net);
	kc_ipv4_format(g->prefix ? ~0u << (32 - g->prefix) : 0, mask);
	memset(ret, 0, sizeof(*ret));
	/* The hosts are a configuration file, read at start-up as root: a
	 * --dhcp-hostsfile is read after dnsmasq dropped its privileges, and
	 * the agent's data folder is not for others to read. */
	if (add(ret, err, "%s", dnsmasq) < 0 || add(ret, err, "--conf-file=%s", hosts_path) < 0 ||
	    add(ret, err, "--port=0") < 0 || add(ret, err, "--interface=%s", iface) < 0 ||
	    add(ret, err, "--bind-interfaces") < 0 || add(ret, err, "--except-interface=lo") < 0 ||
	    add(ret, err, "--dhcp-range=%s,static,%s,1h", net, mask) < 0 ||
	    add(ret, err, "--dhcp-ignore=tag:!known") < 0 || add(ret, err, "--leasefile-ro") < 0 ||
	    add(ret, err, "--pid-file=%s", pid_path) < 0 || add(ret, err, "--dhcp-option=6") < 0)
		return -1;
	if (g->gateway) {
		kc_ipv4_format(g->gateway, gw);
		if (add(ret, err, "--dhcp-option=3,%s", gw) < 0)
			return -1;
	} else if (add(ret, err, "--dhcp-option=3") < 0) {
		return -1;
	}
	if (g->mtu && add(ret, err, "--dhcp-option=26,%u", g->mtu) < 0)
		return -1;
	return 0;
}

int kc_dhcp_hosts_text(const struct kc_gnet *g, const struct kc_dhcp_host *hosts, size_t n,
		       char **ret, struct kc_error *err)
{
	/* "dhcp-host=xx:xx:xx:xx:xx:xx,255.255.255.255\n" */
	char *text = malloc(n * 44 + 1), *p = text;
	if (!text)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*p = '\0';
	for (size_t i = 0; i < n; i++) {
		char ip[16];
		if (kc_mac_validate(hosts[i].mac, true, "a DHCP host's MAC", err) < 0 ||
		    !kc_gnet_ip_assignable(g, hosts[i].ip)) {
			free(text);
			return err->code ? -1
					 : kc_error_set(err, KC_ERR_INVALID,
							"a DHCP host's address is not in network "
							"\"%s\"'s pool",
							g->name);
		}
		kc_ipv4_format(hosts[i].ip, ip);
		p += sprintf(p, "dhcp-host=%s,%s\n", hosts[i].mac, ip);
	}
	*ret = text;
	return 0;
}
