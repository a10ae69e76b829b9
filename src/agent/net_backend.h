/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_backend.h - host network backends behind one small table (the
 * libvirt driver idea): Open vSwitch (net_ovs.c, ovs-vsctl) and the Linux
 * bridge (net_linux.c, rtnetlink through nlmsg.h).  Both read and restore
 * one neutral "state" JSON, so that the rollback (net_rollback.h) and the
 * difference report (net_check.c) need not know which backend ran:
 *
 *   {"backend": "ovs"|"linux",
 *    "switch": {"name", "exists"},                  (ovs; linux with vlan_filtering)
 *    "uplink": {"name", "exists", "on_switch", "trunks": [vid...]},
 *    "bridges": [{"name", "exists", "vlan"?, "parent"?, "up", "addresses": ["a/p"...]}]}
 *
 * Only the names a declaration mentions are read, applied or restored: a
 * host's other interfaces are never touched.
 */
#pragma once

#include <jansson.h>

#include "error.h"
#include "netdecl.h"

struct kc_net_backend {
	const char *name;
	/* The state of everything `d` names, as it is now. */
	int (*read)(const struct kc_netdecl *d, json_t **ret, struct kc_error *err);
	/* Makes the host match `d` (idempotent).  The linux backend fails with
	 * KC_ERR_UNAVAILABLE "... unsupported_on_this_kernel ..." where the
	 * kernel lacks 802.1Q, bonding or bridge VLAN filtering. */
	int (*apply)(const struct kc_netdecl *d, struct kc_error *err);
	/* Puts back a state `read` returned: what did not exist is removed,
	 * what existed gets its VLAN, trunks and addresses back. */
	int (*restore)(const json_t *state, struct kc_error *err);
};

extern const struct kc_net_backend kc_net_backend_ovs;
extern const struct kc_net_backend kc_net_backend_linux;
const struct kc_net_backend *kc_net_backend_of(enum kc_net_backend_kind kind);
/* By the state's "backend" (for a restore from a marker file); NULL if unknown. */
const struct kc_net_backend *kc_net_backend_by_name(const char *name);

/* ---- net_exec.c: programs and interfaces ---- */
#define KC_IP_BIN	 "/usr/sbin/ip"
#define KC_OVS_VSCTL_BIN "/usr/bin/ovs-vsctl"
/* Runs argv (argv[0] absolute) without a shell; *ret_out (may be NULL)
 * gets its stdout (at most 4 MiB, malloc'd).  A non-zero exit is
 * KC_ERR_INTERNAL with the program's last stderr line. */
int kc_net_run(char *const argv[], char **ret_out, struct kc_error *err);
/* kc_net_run of a NULL-terminated argument list (at most 15), no output. */
int kc_net_runl(struct kc_error *err, ...);
/* The interface's current addresses (global scope, "a/p" canonical), and
 * whether it exists and is up.  A missing interface is not an error. */
int kc_net_iface_read(const char *name, bool *ret_exists, bool *ret_up, json_t **ret_addrs,
		      struct kc_error *err);
/* Makes the interface up and its addresses exactly `want` (an array of
 * "a/p" strings, already validated) through rtnetlink. */
int kc_net_iface_set(const char *name, const json_t *want, struct kc_error *err);

/* ---- netlink.c: the sender ---- */
struct kc_nlmsg;
/* Sends m on a fresh NETLINK_ROUTE socket of the caller's network
 * namespace and waits for its ACK.  EOPNOTSUPP (and the "unknown device
 * type" of a missing link kind) becomes KC_ERR_UNAVAILABLE
 * "<what>: unsupported_on_this_kernel (...)"; other refusals
 * KC_ERR_INTERNAL "<what>: <strerror>". */
int kc_netlink_send(struct kc_nlmsg *m, const char *what, struct kc_error *err);
/* True if err is the "not supported by this kernel" answer. */
bool kc_netlink_unsupported(const struct kc_error *err);

/* ---- net_check.c: declared against actual ---- */
/* The differences between declaration `d` and state `actual`: an array of
 * {"name", "problem"} ("missing bridge", "VLAN 101, declared 100", "address
 * 10.0.0.1/24 missing"...); empty when the host matches. */
json_t *kc_net_diff(const struct kc_netdecl *d, const json_t *actual);
