/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sg_push.h - a host's whole security group ruleset, built from the
 * database and sent to its agent (sg.apply, docs/protocol.md).  Every
 * change to a group, its rules or a VM's groups pushes to every host
 * that runs an affected VM.
 */
#pragma once

#include <jansson.h>

#include "db.h"
#include "error.h"

struct kc_server;

/* A VM's NICs on kvmcloud guest networks: [{"mac", "ips": [..], "ovs": bool,
 * "network"}], from kc_db_vm_nics (db_networks.h) and each network's
 * definition.  A NIC outside them (user networking, a plain libvirt
 * network) is not listed and so cannot be protected. */
int kc_sg_vm_nics(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err);
/* KC_ERR_CONFLICT if the VM has a NIC on an Open vSwitch network, runs
 * (`state`, the row's, is not "shutoff") and has no
 * group yet: such a NIC is plugged straight into OVS, where nft does not
 * see it, and moves to the hybrid plug (docs/networking.md) only while the
 * VM is stopped. */
int kc_sg_vm_check_nics(struct kc_db *db, const char *vm, const char *state, struct kc_error *err);
/* sg.apply's args for `host`: every VM there with a group, its NICs and
 * its groups' rules flattened (remote groups expanded to their members'
 * addresses). */
int kc_sg_build_host(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err);
/* Builds and sends each host's ruleset.  Never fails: the answer is
 * [{"host", "applied": bool, "error"?}] (a host that is down gets its
 * ruleset at its next change or from its own state file). */
json_t *kc_sg_push_hosts(struct kc_server *srv, const json_t *hosts);
