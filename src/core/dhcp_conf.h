/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dhcp_conf.h - the command line and hosts file of kvmcloud's own DHCP
 * server (dnsmasq) for a vlan or vxlan guest network on one host
 * (docs/networking.md, "DHCP on vlan and vxlan networks").  Pure: built
 * only from parsed values, tested in tests/unit/test_gnet.c.
 *
 * The server answers only the MACs in its hosts file (static range,
 * unknown clients ignored, not authoritative): on a vxlan network every
 * host runs one, and each serves only the VMs on that host, so they never
 * answer for each other.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gnet.h"
#include "netdef_xml.h"

#define KC_DHCP_ARGV_MAX 24
#define KC_DHCP_ARG_LEN	 (sizeof("--conf-file=") + 4096)

struct kc_dhcp_argv {
	char buf[KC_DHCP_ARGV_MAX][KC_DHCP_ARG_LEN];
	char *argv[KC_DHCP_ARGV_MAX + 1]; /* into buf, NULL-terminated */
	size_t n;
};

/* The dnsmasq argv (argv[0] `dnsmasq`, an absolute path) serving g's
 * subnet from `iface`, whose address is server_ip: static assignments
 * only from hosts_path (kc_dhcp_hosts_text), no DNS, no lease file, the gateway as router if g
 * has one, g's MTU as option 26 if set.  KC_ERR_INVALID if g has no range
 * or server_ip is not in it; a path too long is KC_ERR_TOO_LARGE. */
int kc_dhcp_argv_build(const struct kc_gnet *g, uint32_t server_ip, const char *dnsmasq,
		       const char *iface, const char *hosts_path, const char *pid_path,
		       struct kc_dhcp_argv *ret, struct kc_error *err);

/* "dhcp-host=mac,ip\n" per host (malloc'd), dnsmasq configuration; every
 * address must be assignable in g, every MAC valid. */
int kc_dhcp_hosts_text(const struct kc_gnet *g, const struct kc_dhcp_host *hosts, size_t n,
		       char **ret, struct kc_error *err);
