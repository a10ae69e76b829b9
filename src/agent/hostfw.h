/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostfw.h - the agent's host firewall (docs/networking.md, "Host
 * firewall"): one nft table, `inet kvmcloud_host`, rendered by
 * hostfw_render.h from a policy the server sends, kept in a file
 * (firewall.file, default /etc/kvmcloud/firewall.nft, 0600, replaced by
 * rename) that the agent loads with libnftables when it starts and again
 * on every change.  The policy itself is kept beside it (<file>.json) so
 * that the address sets can be re-rendered.
 *
 * Confirm or roll back: a change with confirm_s > 0 is loaded from
 * <file>.pending and becomes <file> only when confirmed
 * (host.firewall.confirm).  If no confirmation comes within confirm_s, a
 * timer loads <file> again (or removes the table if there is none).  A
 * crash or restart in between needs no marker: the start loads <file>,
 * which is the old ruleset, and removes the stale pending file.
 *
 * One host firewall per process: the state is module-wide.  Thread-safe.
 * Library code: it never prints; the log function of kc_hostfw_start()
 * gets the lines worth logging.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

#define KC_HOSTFW_DEFAULT_FILE "/etc/kvmcloud/firewall.nft"
#define KC_HOSTFW_CONFIRM_MAX  3600

typedef void (*kc_hostfw_log_fn)(const char *line, void *opaque);

/* Takes firewall.file from cfg (an absolute path); nothing is loaded.
 * Called by kc_agent_new(), so that `check` knows the file too. */
int kc_hostfw_configure(const struct kc_config *cfg, struct kc_error *err);

/* The daemon's start: removes a stale pending file (an unconfirmed change
 * is rolled back by not loading it) and loads the file if there is one.
 * No file: nothing is done (no policy yet).  KC_ERR_HYPERVISOR with nft's
 * message if the file does not load. */
int kc_hostfw_start(kc_hostfw_log_fn log, void *opaque, struct kc_error *err);

/* Ends the timer; a change still waiting for its confirmation is rolled
 * back first. */
void kc_hostfw_stop(void);

/* The server addresses the link knows (an array of "host:port" endpoint
 * strings, as in welcome/endpoints; hosts that are not IP literals are
 * skipped).  Re-renders and reloads when they differ from the last. */
void kc_hostfw_link_endpoints(const char *const *endpoints, size_t n);

/* Ops (docs/protocol.md).  apply {policy, confirm_s} -> {state,
 * pending_id?}; confirm {pending_id?} -> {state}; peers {peers: [IP]} ->
 * {state}; show {} -> the state, the policy, the addresses and the table
 * as the kernel has it (with counters). */
int kc_hostfw_apply(const json_t *args, json_t **ret, struct kc_error *err);
int kc_hostfw_confirm(const json_t *args, json_t **ret, struct kc_error *err);
int kc_hostfw_peers(const json_t *args, json_t **ret, struct kc_error *err);
int kc_hostfw_show(const json_t *args, json_t **ret, struct kc_error *err);

/* For `kvmcloud-agent check`: 0 (pass) or 1 (warn, the file exists but
 * the table is not loaded), with a sentence in why. */
int kc_hostfw_check(char *why, size_t size);
