/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostlink.h - how the server asks a host to do something: one call
 * (operation name + JSON args -> JSON result, docs/protocol.md
 * "Operations") whatever the host is.  Three implementations: the embedded
 * agent of an all-in-one server (kc_agent_dispatch, in-process), a remote
 * agent over its mutual-TLS link (agentlink.c), and another server on the
 * same database that holds the host's link (peerlink.c).  The API
 * handlers only ever see this.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

struct kc_server;
struct kc_agent;
struct kc_hostlink;

struct kc_hostlink_ops {
	/* Runs `op` with `args` (an object) on the host; *ret_result gets the
	 * result (a new reference) or err the host's error, KC_ERR_UNAVAILABLE
	 * if the link dropped, KC_ERR_TIMEOUT if the host did not answer in
	 * time. */
	int (*call)(struct kc_hostlink *link, const char *op, const json_t *args,
		    json_t **ret_result, struct kc_error *err);
	/* Drops the caller's hold on the link. */
	void (*release)(struct kc_hostlink *link);
};

struct kc_hostlink {
	const struct kc_hostlink_ops *ops;
};

/* The link to `host`: the embedded agent if it is the server's own host,
 * else its live agent connection to this server, else the live server
 * that holds it (hosts.connected_to, peerlink.h).  A host that is not
 * connected is KC_ERR_UNAVAILABLE "host "x" is not connected".  Release
 * with kc_hostlink_release(). */
int kc_hostlink_get(struct kc_server *srv, const char *host, struct kc_hostlink **ret,
		    struct kc_error *err);
/* The same without the last step: this server's own links only (what a
 * forwarded call may use, so that it is never forwarded again). */
int kc_hostlink_get_own(struct kc_server *srv, const char *host, struct kc_hostlink **ret,
			struct kc_error *err);
void kc_hostlink_release(struct kc_hostlink *link); /* accepts NULL */

/* kc_hostlink_get(), one call, release.  args NULL sends {}. */
int kc_host_call(struct kc_server *srv, const char *host, const char *op, const json_t *args,
		 json_t **ret_result, struct kc_error *err);

/* Is `host` the server's own (embedded agent) host? */
bool kc_host_is_local(const struct kc_server *srv, const char *host);
/* Can `host` be called now: local, connected here, or connected to
 * another live server (asks the database for the last)? */
bool kc_host_reachable(struct kc_server *srv, const char *host);
/* Local or connected to this server (no database query). */
bool kc_host_held_here(struct kc_server *srv, const char *host);

/* How long the server waits for `op` (docs/protocol.md): 300 s for
 * vm.create, vm.snapshot.create and vm.snapshot.revert, timeout_s + 60 for
 * vm.shutdown, 10 s for host.firewall.* and host.net.confirm, 60 s
 * otherwise. */
unsigned kc_hostlink_timeout_s(const char *op, const json_t *args);
