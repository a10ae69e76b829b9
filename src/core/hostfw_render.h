/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostfw_render.h - the host firewall (docs/networking.md, "Host
 * firewall"): a policy (JSON, validated here) plus the addresses of the
 * cluster's servers and peer hosts, rendered as the nft text of one table,
 * `table inet kvmcloud_host`.  The text replaces the whole table in one
 * transaction ("table ...; delete table ...; table ... { }") and touches
 * no other table: never `flush ruleset`.
 *
 * Pure: no I/O.  Every value in the text is re-printed from a parsed
 * form (addresses through inet_pton/inet_ntop, ports as integers,
 * interface names checked), never copied from the input.
 *
 * Policy (every key optional; unknown keys are refused):
 *   {"ssh_port": 22,                      open to everyone
 *    "libvirt_tls": true,                 tcp 16514 from @servers
 *    "vnc": true,                         tcp 5900-5999 from @servers
 *    "migration": true,                   tcp 49152-49215 from @peers
 *    "vxlan": true,                       udp 4789 from @peers
 *    "nat_bridges": ["virbr*"],           DHCP/DNS (udp 67, 53; tcp 53) in on these
 *    "allow": [{"proto": "tcp"|"udp", "port": N, "to_port": M, "from": [CIDR...]}],
 *    "deny": [CIDR...],                   dropped before anything else, even
 *                                         established traffic
 *    "servers": [IP...], "peers": [IP...]} added to the sets
 */
#pragma once

#include <jansson.h>

#include "error.h"

#define KC_HOSTFW_TABLE "kvmcloud_host"
/* Bounds on what a policy (and the address lists) may hold. */
#define KC_HOSTFW_ADDRS_MAX   256 /* servers, peers (each, after merging) */
#define KC_HOSTFW_DENY_MAX    64
#define KC_HOSTFW_ALLOW_MAX   64
#define KC_HOSTFW_FROM_MAX    32 /* CIDRs of one allow rule */
#define KC_HOSTFW_BRIDGES_MAX 16

/* The fixed port ranges of the seeds (docs/networking.md). */
#define KC_HOSTFW_LIBVIRT_TLS_PORT 16514
#define KC_HOSTFW_VNC_MIN	   5900
#define KC_HOSTFW_VNC_MAX	   5999
#define KC_HOSTFW_MIGRATION_MIN	   49152
#define KC_HOSTFW_MIGRATION_MAX	   49215
#define KC_HOSTFW_VXLAN_PORT	   4789

/* Checks `policy` (an object, see above) without rendering anything
 * useful.  KC_ERR_INVALID naming the first bad value. */
int kc_hostfw_policy_check(const json_t *policy, struct kc_error *err);

/* The nft text for `policy` with `servers` and `peers` (arrays of IP
 * address strings, may be NULL) merged into the policy's own lists,
 * duplicates removed.  *ret is a new string (free()).  KC_ERR_INVALID for
 * a bad policy or address. */
int kc_hostfw_render(const json_t *policy, const json_t *servers, const json_t *peers, char **ret,
		     struct kc_error *err);

/* The nft text that removes our table (create-then-delete, so it also
 * works when the table does not exist).  A static string. */
const char *kc_hostfw_render_remove(void);
