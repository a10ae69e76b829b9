/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nft_render.h - a host's security group ruleset (secgroup.h) as nft text.
 * Pure: it only prints values secgroup.c parsed (addresses from inet_pton,
 * ports as integers, names and taps validated), so no user text reaches
 * the ruleset unchecked.
 *
 * Two tables, each replaced whole in one transaction (the text starts with
 * "table X" / "delete table X", so the replacement is atomic and works
 * whether the table existed or not; nft 1.0.6 has no "destroy"):
 *  - table bridge kvmcloud_sg: stateless anti-spoofing per tap in the
 *    prerouting hook (every frame a guest sends, bridged or to the host):
 *    source MAC, ARP sender MAC and IP, IPv4 source (DHCP discovery from
 *    0.0.0.0 allowed), IPv6 dropped unless the NIC has an IPv6 address.
 *    The bridge family has no conntrack on this kernel, hence:
 *  - table inet kvmcloud_sg: one pair of chains per VM in the forward
 *    hook, entered by the guest's addresses (trustworthy thanks to the
 *    first table; iifname there would be the bridge, not the port).
 *    Inbound: established/related pass, invalid drop, the group rules,
 *    then drop.  Outbound: allowed unless the VM has at least one egress
 *    rule; then the same shape.  Per-VM chains "return" instead of
 *    "accept": an accept would end the base chain and skip the other
 *    VM's chain for traffic between two VMs of this host.
 * NICs without a tap (VM not running here) are left out.  An empty
 * ruleset gives text that removes both tables.
 */
#pragma once

#include "secgroup.h"

#define KC_NFT_TABLE "kvmcloud_sg"

/* *ret_text: malloc'd nft text for nft_run_cmd_from_buffer / nft -f.
 * Fails only on allocation failure (KC_ERR_INTERNAL): the ruleset was
 * validated when it was parsed. */
int kc_nft_render_sg(const struct kc_sg_ruleset *rs, char **ret_text, struct kc_error *err);
