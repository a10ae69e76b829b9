/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_networks.h - guest networks, their addresses and the hosts they are
 * on (tables networks, addresses, network_hosts; docs/networking.md,
 * "Guest networks").  Allocation is ipam.h's.
 */
#pragma once

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "gnet.h"

/* Inserts the network.  nat/isolated get their bridge here, kcnat<N> /
 * kciso<N> with N the network's number (unique, never reused while the
 * row lives), so g->bridge must be empty for them.  A taken name or VNI is
 * KC_ERR_CONFLICT.  *ret_row (may be NULL): the new row as kc_db_network_get. */
int kc_db_network_create(struct kc_db *db, const struct kc_gnet *g, const char *owner,
			 json_t **ret_row, struct kc_error *err);
/* {name, kind, def: {...}, owner, created_at}; KC_ERR_NOT_FOUND. */
int kc_db_network_get(struct kc_db *db, const char *name, json_t **ret_row, struct kc_error *err);
/* The parsed definition. */
int kc_db_network_def(struct kc_db *db, const char *name, struct kc_gnet *ret,
		      struct kc_error *err);
int kc_db_network_list(struct kc_db *db, json_t **ret_rows, struct kc_error *err);
/* Refuses (KC_ERR_CONFLICT) while a VM holds an address in it.
 * *ret_hosts: the hosts it was ensured on (to remove it there). */
int kc_db_network_delete(struct kc_db *db, const char *name, json_t **ret_hosts,
			 struct kc_error *err);
/* [{ip, mac, vm, nic, host}] of the network; owner non-NULL: only that
 * user's VMs. */
int kc_db_network_addresses(struct kc_db *db, const char *name, const char *owner,
			    json_t **ret_rows, struct kc_error *err);
/* [{mac, ip}] of the network's VMs on `host` that have an address: the
 * static DHCP hosts of its libvirt network there. */
int kc_db_network_dhcp_hosts(struct kc_db *db, const char *name, const char *host, json_t **ret,
			     struct kc_error *err);
/* The address of kvmcloud's DHCP server of a vlan/vxlan network on host
 * (ipam.c); *ret is "" when it has none there (yet). */
int kc_db_network_dhcp_ip(struct kc_db *db, const char *name, const char *host, char ret[16],
			  struct kc_error *err);
/* Records that the network is on host (local_ip: its VXLAN endpoint, or
 * NULL); [{host, local_ip}] of all its hosts. */
int kc_db_network_host_set(struct kc_db *db, const char *name, const char *host,
			   const char *local_ip, struct kc_error *err);
int kc_db_network_hosts(struct kc_db *db, const char *name, json_t **ret_rows,
			struct kc_error *err);

/* A VM's guest-network NICs, for security groups and the VM view:
 * [{"network", "mac", "ip" (null without a range), "nic" (its index)}],
 * in NIC order; [] for a VM without any (or unknown). */
int kc_db_vm_nics(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err);
