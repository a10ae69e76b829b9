/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sg_plug.h - the hybrid plug of a NIC with a security group on an Open
 * vSwitch network (sg_plug.c; names and domain XML in src/core/gnet.h):
 * tap -> Linux bridge kcq<MAC> -> veth kcv<MAC>/kco<MAC> -> OVS port
 * kco<MAC> with the network's VLAN tag.  Every step is idempotent.
 */
#pragma once

#include <libvirt/libvirt.h>
#include <stddef.h>

#include "error.h"

/* Before a domain starts (vm.start; also a fresh host, whose links are
 * gone): makes the plumbing of every hybrid plug its definition records. */
int kc_sg_plug_prepare(virDomainPtr d, struct kc_error *err);

/* The domain's recorded plugs, read before it is undefined, then removed
 * (links and OVS port) once it is; best effort, as a delete must not fail
 * on a link already gone. */
struct kc_sg_plugs;
struct kc_sg_plugs *kc_sg_plug_read(virDomainPtr d);
void kc_sg_plug_remove(struct kc_sg_plugs *p);

/* sg.apply: the NICs of VM `vm` (macs, n of them) have security groups.
 * Those still plugged straight into Open vSwitch move to the hybrid plug
 * when the VM is stopped (persistent definition rewritten, plumbing
 * made).  A running VM cannot change its plug: its NICs are named in
 * `warn` (appended, never overflowed) and stay unprotected until it is
 * stopped and the groups are applied again (the server refuses to set the
 * first group of a running VM on OVS, so this only follows a race).  0
 * when the VM does not exist here. */
int kc_sg_plug_vm(virConnectPtr conn, const char *vm, const char *const *macs, size_t n, char *warn,
		  size_t warn_len, struct kc_error *err);
