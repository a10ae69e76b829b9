/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netdecl.h - a host network declaration (docs/networking.md "Host
 * networks"): the NICs, an optional bond, the backend (Linux bridge or
 * Open vSwitch), the switch that carries the VLAN trunk, and the bridges,
 * one per VLAN, with optional addresses.  Parsed strictly from JSON: every
 * name fits IFNAMSIZ and matches ^[a-z][a-z0-9-]{0,14}$ (a dot is allowed
 * only in the sub-interface names we make ourselves), every VLAN is
 * 1..4094, every address went through inet_pton.
 *
 *   {"backend": "ovs", "nics": ["eth1"], "switch": "cloudbr",
 *    "bridges": [{"name": "mgmt0", "vlan": 100, "addresses": ["192.168.42.11/24"]},
 *                {"name": "cloudbr0", "vlan": 200}, {"name": "cloudbr1", "vlan": 300}]}
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define KC_NETDECL_IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define KC_NETDECL_MAX_NICS   8
#define KC_NETDECL_MAX_BR     32
#define KC_NETDECL_MAX_ADDRS  4
#define KC_NETDECL_MTU_MIN    576
#define KC_NETDECL_MTU_MAX    9000

enum kc_net_backend_kind { KC_NETB_LINUX = 0, KC_NETB_OVS };
enum kc_bond_mode { KC_BOND_NONE = 0, KC_BOND_ACTIVE_BACKUP, KC_BOND_8023AD };

struct kc_net_addr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char bytes[16];
	unsigned prefix;
	char text[64]; /* canonical "ADDR/PREFIX", rebuilt with inet_ntop */
};

struct kc_net_bridge {
	char name[KC_NETDECL_IFNAME_MAX + 1];
	unsigned vlan; /* 1..4094 */
	struct kc_net_addr addrs[KC_NETDECL_MAX_ADDRS];
	size_t n_addrs;
};

struct kc_netdecl {
	enum kc_net_backend_kind backend;
	char nics[KC_NETDECL_MAX_NICS][KC_NETDECL_IFNAME_MAX + 1];
	size_t n_nics;
	enum kc_bond_mode bond_mode;
	char bond[KC_NETDECL_IFNAME_MAX + 1]; /* "" without a bond */
	/* The bridge that carries the trunk: OVS's parent bridge of the fake
	 * bridges; for linux with vlan_filtering, the one filtering bridge. */
	char switch_name[KC_NETDECL_IFNAME_MAX + 1];
	bool vlan_filtering; /* linux only */
	bool ovs_netdev;     /* ovs only: "datapath": "netdev" (userspace), else "system" */
	unsigned mtu;	     /* 0: leave as is */
	struct kc_net_bridge bridges[KC_NETDECL_MAX_BR];
	size_t n_bridges;
};

/* An interface name as declarations take it: ^[a-z][a-z0-9-]{0,14}$; the
 * agent also checks the names of a snapshot it reads back from disk. */
int kc_netdecl_ifname_check(const char *name, const char *what, struct kc_error *err);
/* "ADDR/PREFIX" (IPv4 or IPv6) through inet_pton into *ret. */
int kc_net_addr_parse(const char *s, struct kc_net_addr *ret, struct kc_error *err);

/* Parses and checks a declaration; unknown keys, duplicate names or VLANs,
 * a name used twice (NIC, bond, switch, bridge), a bond member that is not
 * a declared NIC, several NICs without a bond, vlan_filtering with ovs:
 * all KC_ERR_INVALID naming the field.  *ret is fully written on success. */
int kc_netdecl_from_json(const json_t *j, struct kc_netdecl *ret, struct kc_error *err);
/* The canonical JSON of a declaration (what the agent stores). */
json_t *kc_netdecl_to_json(const struct kc_netdecl *d);
/* The uplink port of the switch: the bond if there is one, else the NIC. */
const char *kc_netdecl_uplink(const struct kc_netdecl *d);
/* The sub-interface name "<uplink>.<vlan>" of the Linux recipe, or -1
 * with err if it does not fit IFNAMSIZ. */
int kc_netdecl_subif_name(const struct kc_netdecl *d, unsigned vlan,
			  char buf[KC_NETDECL_IFNAME_MAX + 1], struct kc_error *err);
const char *kc_net_backend_name(enum kc_net_backend_kind b);
const char *kc_bond_mode_name(enum kc_bond_mode m);
