/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostlink.h - how the server asks a host to do something: one call
 * (operation name + JSON args -> JSON result, docs/protocol.md
 * "Operations") whatever the host is.  Two implementations: the embedded
 * agent of an all-in-one server (kc_agent_dispatch, in-process) and a
 * remote agent over its mutual-TLS link (agentlink.c).  The API handlers
 * only ever see this.
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
 * else its live agent connection.  A host that is not connected is
 * KC_ERR_UNAVAILABLE "host "x" is not connected".  Release with
 * kc_hostlink_release(). */
int kc_hostlink_get(struct kc_server *srv, const char *host, struct kc_hostlink **ret,
		    struct kc_error *err);
void kc_hostlink_release(struct kc_hostlink *link); /* accepts NULL */

/* kc_hostlink_get(), one call, release.  args NULL sends {}. */
int kc_host_call(struct kc_server *srv, const char *host, const char *op, const json_t *args,
		 json_t **ret_result, struct kc_error *err);

/* Is `host` the server's own (embedded agent) host? */
bool kc_host_is_local(const struct kc_server *srv, const char *host);
/* Can `host` be called now (local, or connected)? */
bool kc_host_reachable(struct kc_server *srv, const char *host);

/* How long the server waits for `op` (docs/protocol.md): 300 s for
 * vm.create, timeout_s + 60 for vm.shutdown, 60 s otherwise. */
unsigned kc_hostlink_timeout_s(const char *op, const json_t *args);
