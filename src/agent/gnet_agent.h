/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gnet_agent.h - guest networks on this host (docs/networking.md, "Guest
 * networks"; docs/protocol.md, net.*).  The server owns the definitions
 * and addresses; the agent makes what a definition needs here, idempotently.
 */
#pragma once

#include <jansson.h>

#include "agent.h"
#include "error.h"

/* net.ensure {"network": NetDef, "dhcp_hosts": [{mac, ip}], "peers": [ip],
 *             "dhcp": {"server_ip", "hosts": [{mac, ip}]}}:
 *   nat/isolated: defines, autostarts and starts the libvirt network
 *     (named as its bridge) if missing, then makes its static DHCP hosts
 *     exactly dhcp_hosts (virNetworkUpdate, live and config);
 *   bridged/vlan: checks that the bridge exists (OVS: ovs-vsctl br-exists);
 *   vxlan: bridge kcbr<VNI> + device kcvx<VNI> on the underlay's IPv4,
 *     one flood FDB entry per peer (bridge fdb append: idempotent);
 *   vlan/vxlan with "dhcp": kvmcloud's DHCP server for this host's VMs
 *     (gnet_dhcp.h).
 * *ret: {"network": name, "local_ip": A (vxlan)}. */
int kc_agent_net_ensure(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err);
/* net.remove {"network": NetDef}: the libvirt network, or the DHCP server
 * and the vxlan devices, go; a bridged network has nothing of ours on the
 * host. */
int kc_agent_net_remove(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err);
/* net.dhcp_host {"network": NetDef, "op": "add"|"remove", "mac", "ip"}:
 * one static assignment of a nat/isolated network (live and config) or of
 * a vlan/vxlan network's DHCP server here;
 * adding an entry already there and removing one not there succeed. */
int kc_agent_net_dhcp_host(struct kc_agent *a, const json_t *args, json_t **ret,
			   struct kc_error *err);
