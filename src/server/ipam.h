/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipam.h - MAC and IPv4 addresses for the guest-network NICs of a VM
 * create, allocated inside the create's own insert transaction (the
 * scheduler's kc_db_tx, serialised), so that concurrent creates can never
 * hand out one address twice; the UNIQUE keys of `addresses` (mac;
 * network + ip) back that up.  Released with the VM record (ON DELETE
 * CASCADE).
 */
#pragma once

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "vmspec.h"

struct kc_ipam {
	const struct kc_vm_request *req;
	/* Out: vm.create's "nic_defs" (gnet.h: null or {network, mac, ip}
	 * per NIC), and the names of the networks used, each once. */
	json_t *nic_defs;
	json_t *networks;
};

/* True if the request has a NIC on a guest network. */
bool kc_ipam_needed(const struct kc_vm_request *req);

/* The struct kc_db_vm in_tx hook (db_vms.h), opaque a struct kc_ipam:
 * for each guest-network NIC, the network must exist; the MAC is the
 * requested one (refused if taken: KC_ERR_CONFLICT) or a new
 * 52:54:00:xx:xx:xx; the address is the requested one (in the pool and
 * free, else KC_ERR_CONFLICT / KC_ERR_INVALID) or the lowest free one of
 * the pool (none left: KC_ERR_NO_CAPACITY).  Networks without a range get
 * a MAC only. */
int kc_ipam_allocate_tx(struct kc_db *tx, const char *host, void *opaque, struct kc_error *err);
void kc_ipam_clear(struct kc_ipam *ip);
