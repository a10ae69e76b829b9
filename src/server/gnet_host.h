/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gnet_host.h - the server's side of guest networks on hosts: ensure a
 * network on the host a VM was placed on before vm.create is sent, keep
 * the VXLAN peer lists of its other hosts current, and drop a VM's static
 * DHCP entries when it goes (docs/architecture.md, VM create data flow).
 */
#pragma once

#include <jansson.h>

#include "error.h"
#include "server.h"

/* net.ensure of each network named in `networks` (a JSON array of names)
 * on `host`, with its static DHCP hosts there (nat/isolated) or its peers
 * (vxlan); records the host in network_hosts and, for vxlan, sends the
 * updated peer list to the network's other hosts (their failures are
 * logged, not returned: the new host works, and the next ensure there
 * brings them up to date). */
int kc_gnet_ensure_on_host(struct kc_server *srv, const char *host, const json_t *networks,
			   struct kc_error *err);
/* kc_gnet_ensure_on_host for the networks of VM vm's NICs (before a
 * start: a host rebooted since has lost its vxlan devices). */
int kc_gnet_ensure_for_vm(struct kc_server *srv, const char *host, const char *vm,
			  struct kc_error *err);
/* Best effort: removes the static DHCP entries of the VM's nat/isolated
 * NICs on `host` (before its record, and with it its addresses, goes). */
void kc_gnet_release_vm(struct kc_server *srv, const char *host, const char *vm);
/* The definition JSON of a network as the agent takes it. */
int kc_gnet_def_json(struct kc_server *srv, const char *name, json_t **ret, struct kc_error *err);
