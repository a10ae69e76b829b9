/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gnet_dhcp.h - kvmcloud's DHCP server for a vlan or vxlan guest network
 * on this host (docs/networking.md, "DHCP on vlan and vxlan networks").
 *
 * Per network and host: a network namespace kcdhcp-<ID> holding veth end
 * kcd<ID>n with the address the server allocated for this host, the other
 * end kcd<ID>h plugged into the network (the vxlan bridge, or the OVS
 * bridge with the network's tag), and dnsmasq in that namespace answering
 * only the MACs of this host's VMs (dhcp_conf.h).  ID is 8 hex digits of
 * a hash of the network's name; the state folder
 * <data.dir>/dhcp/<ID>/ records which network owns it, so a collision is
 * refused instead of shared.  The namespace keeps the tenant subnet off
 * the host's own routing table.  Callers hold gnet.c's lock.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "agent.h"
#include "error.h"
#include "gnet.h"
#include "netdef_xml.h"

/* net.ensure's "dhcp" {"server_ip": A, "hosts": [{mac, ip}]}: makes the
 * namespace, links and dnsmasq as above if anything differs from the last
 * ensure (or dnsmasq is not running), else changes nothing. */
int kc_gnet_dhcp_ensure(struct kc_agent *a, const struct kc_gnet *g, const json_t *dhcp,
			struct kc_error *err);
/* One static assignment added or removed (dnsmasq restarted if the list
 * changed).  Removing from a network without a server here succeeds;
 * adding to one is KC_ERR_NOT_FOUND. */
int kc_gnet_dhcp_host(struct kc_agent *a, const struct kc_gnet *g, const struct kc_dhcp_host *h,
		      bool add, struct kc_error *err);
/* Stops dnsmasq and removes the namespace, links and state (nothing there
 * is not an error). */
int kc_gnet_dhcp_remove(struct kc_agent *a, const struct kc_gnet *g, struct kc_error *err);
