/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nlmsg.h - a pure rtnetlink message builder: no socket, no allocation, so
 * that unit tests can compare the exact bytes with golden hex files
 * (tests/golden/nlmsg/).  That is how the parts this project's test kernel
 * refuses (802.1Q sub-interfaces, bonds, bridge VLAN filtering) are tested:
 * by what they would send.  src/agent/netlink.c sends them.
 *
 * Every builder writes the whole message into *m (header included) with
 * NLM_F_REQUEST | NLM_F_ACK and the given sequence number; link creation
 * adds NLM_F_CREATE | NLM_F_EXCL.  Interface names must be validated
 * before (netdecl.h); a name longer than IFNAMSIZ - 1 is refused here too.
 * Each returns 0, or -1 with err set (KC_ERR_INVALID, or KC_ERR_INTERNAL
 * if the message would not fit KC_NLMSG_MAX, a bug).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "netdecl.h"

#define KC_NLMSG_MAX	   512
#define KC_NLMSG_MAX_DEPTH 4

struct kc_nlmsg {
	unsigned char buf[KC_NLMSG_MAX] __attribute__((aligned(4)));
	size_t len;
	size_t nest[KC_NLMSG_MAX_DEPTH];
	unsigned depth;
	bool overflow;
};

/* RTM_NEWLINK kind "bridge"; with vlan_filtering, IFLA_BR_VLAN_FILTERING=1
 * in its IFLA_INFO_DATA; mtu 0 leaves IFLA_MTU out. */
int kc_nl_link_bridge(struct kc_nlmsg *m, uint32_t seq, const char *name, bool vlan_filtering,
		      unsigned mtu, struct kc_error *err);
/* RTM_NEWLINK kind "vlan": IFLA_LINK parent, IFLA_VLAN_ID vid, protocol
 * 802.1Q (the sub-interface "eth0.200" of the Linux recipe). */
int kc_nl_link_vlan(struct kc_nlmsg *m, uint32_t seq, const char *name, int parent_ifindex,
		    unsigned vid, struct kc_error *err);
/* RTM_NEWLINK kind "bond": IFLA_BOND_MODE (1 active-backup, 4 802.3ad),
 * IFLA_BOND_MIIMON; 802.3ad adds LACP rate fast and layer3+4 hashing. */
int kc_nl_link_bond(struct kc_nlmsg *m, uint32_t seq, const char *name, enum kc_bond_mode mode,
		    unsigned miimon_ms, struct kc_error *err);
/* RTM_NEWLINK on ifindex with IFLA_MASTER (0: leave the master). */
int kc_nl_link_master(struct kc_nlmsg *m, uint32_t seq, int ifindex, int master_ifindex,
		      struct kc_error *err);
/* RTM_NEWLINK on ifindex: IFF_UP set or cleared (change mask IFF_UP). */
int kc_nl_link_updown(struct kc_nlmsg *m, uint32_t seq, int ifindex, bool up, struct kc_error *err);
/* RTM_DELLINK of ifindex. */
int kc_nl_link_del(struct kc_nlmsg *m, uint32_t seq, int ifindex, struct kc_error *err);
/* RTM_NEWADDR (NLM_F_CREATE | NLM_F_REPLACE) or RTM_DELADDR of a on ifindex:
 * IFA_LOCAL and IFA_ADDRESS, scope universe. */
int kc_nl_addr(struct kc_nlmsg *m, uint32_t seq, bool add, int ifindex, const struct kc_net_addr *a,
	       struct kc_error *err);
/* Port VLAN of a VLAN-filtering bridge: RTM_SETLINK (add) or RTM_DELLINK
 * with ifi_family AF_BRIDGE, IFLA_AF_SPEC { IFLA_BRIDGE_VLAN_INFO {flags,
 * vid} }; pvid_untagged sets BRIDGE_VLAN_INFO_PVID | _UNTAGGED (an access
 * port), without it the port is a tagged trunk member.  `self` adds
 * IFLA_BRIDGE_FLAGS = BRIDGE_FLAGS_SELF: the VLAN on the bridge device
 * itself (so that its own address can live on that VLAN). */
int kc_nl_bridge_vlan(struct kc_nlmsg *m, uint32_t seq, bool add, int port_ifindex, unsigned vid,
		      bool pvid_untagged, bool self, struct kc_error *err);

/* The message as lowercase hex, 16 bytes a line ("0a 1b ...\n"); buf
 * needs 3 * len + len / 16 + 2 bytes. */
void kc_nlmsg_hex(const struct kc_nlmsg *m, char *buf, size_t size);
