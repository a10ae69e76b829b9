/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netdef_xml.h - libvirt <network> XML for a nat or isolated guest network
 * (gnet.h), and the <host> element of one static DHCP assignment, written
 * with libxml2's writer.  Deterministic: tests compare them with
 * tests/golden/network/.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gnet.h"

#define KC_MAX_DHCP_HOSTS 4096

/* One static assignment: this MAC always gets this address. */
struct kc_dhcp_host {
	char mac[18];
	uint32_t ip; /* host order */
};

/* Parses [{"mac": M, "ip": A}, ...] (at most KC_MAX_DHCP_HOSTS); *ret is
 * malloc'd (NULL when empty). */
int kc_dhcp_hosts_from_json(const json_t *a, struct kc_dhcp_host **ret, size_t *ret_n,
			    struct kc_error *err);

/* The network named as its bridge (kcnat<N>/kciso<N>): forward mode nat
 * (nat only), bridge with STP off, the gateway's address with the
 * network's mask, DHCP handing out dhcp_start..dhcp_end and the static
 * hosts.  Only nat and isolated networks have one. */
int kc_netdef_xml_build(const struct kc_gnet *g, const struct kc_dhcp_host *hosts, size_t n,
			char **ret_xml, struct kc_error *err);

/* <host mac='..' ip='..'/>, for virNetworkUpdate (section ip-dhcp-host);
 * the address must be assignable in g. */
int kc_dhcp_host_xml_build(const struct kc_gnet *g, const struct kc_dhcp_host *h, char **ret_xml,
			   struct kc_error *err);
