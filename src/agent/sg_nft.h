/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sg_nft.h - security groups applied on this host with libnftables
 * (sg_nft.c; the text comes from src/core/nft_render.h).
 */
#pragma once

#include <jansson.h>

#include "error.h"

struct kc_agent;

/* Starts the worker that re-applies the last ruleset (read from
 * <data.dir>/sg-ruleset.json now, if there is one).  Called once the
 * agent is connected. */
int kc_sg_init(struct kc_agent *a, struct kc_error *err);
/* Stops the worker and frees; accepts an agent without groups. */
void kc_sg_free(struct kc_agent *a);
/* A domain started or stopped: apply the ruleset again soon (taps
 * change).  Cheap, never blocks on libvirt: safe in libvirt callbacks. */
void kc_sg_kick(struct kc_agent *a);

/* sg.apply: args {"vms": [...]} (secgroup.h's ruleset).  Taps not given
 * are looked up in the live domain XML by MAC.  NICs on Open vSwitch move
 * to the hybrid plug first (sg_plug.h; a running VM's cannot, and are
 * left out, named in last_error).  Replaces both kvmcloud_sg tables in one
 * transaction, sets bridge-nf-call-iptables/ip6tables=1 when a NIC is
 * protected, then keeps args for restarts.  Result {"vms", "nics",
 * "apply_ms"}. */
int kc_agent_sg_apply(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err);
/* sg.show: {"ruleset" (null if none), "applied_at", "last_error", "apply_ms"}. */
int kc_agent_sg_show(struct kc_agent *a, json_t **ret, struct kc_error *err);

/* Runs nft text in one libnftables transaction; nft's message on failure. */
int kc_sg_nft_run(const char *text, struct kc_error *err);
