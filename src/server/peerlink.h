/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peerlink.h - forwarding host calls between servers on one database
 * (docs/protocol.md "Peer connections", docs/server.md "High
 * availability").  A host's agent holds its link to one server
 * (hosts.connected_to); another server that has to call that host sends
 * the call (host, op, args) to the holder over the holder's agent
 * listener and gets its result or error back, code and message unchanged.
 *
 * Calling side: one persistent connection per peer server, made on first
 * use, shared by every call to that server (requests carry ids, so a slow
 * vm.create does not hold up the others), dropped when it fails and made
 * again by the next call.  The TLS client certificate is the server's
 * peer certificate (ha.h), the server's certificate is verified against
 * the endpoint's host part, as agents do.
 *
 * Receiving side: agentlink.c accepts the TLS connection and, when its
 * certificate is not a host's but a live server's peer certificate
 * (kc_ha_is_peer), hands it to kc_peerlink_serve().  Each request runs on
 * its own thread (at most KC_PEERLINK_MAX_INFLIGHT per connection) against
 * this server's own links only (kc_hostlink_get_own): a call is forwarded
 * at most once, never in a loop.
 */
#pragma once

#include <stdbool.h>

#include "error.h"

struct kc_server;
struct kc_hostlink;
struct kc_tls_link;
struct kc_peerlink;

/* Requests one peer connection runs at once; more are answered 503. */
#define KC_PEERLINK_MAX_INFLIGHT 64

/* The calling side: loads the peer certificate (<pki_dir>/peer.crt, made
 * by kc_ha_register) and the cluster CA.  No connection is made yet. */
int kc_peerlink_start(struct kc_server *srv, struct kc_peerlink **ret, struct kc_error *err);
/* Closes every peer connection; calls in flight fail KC_ERR_UNAVAILABLE.
 * Every link from kc_peerlink_get() must have been released.  NULL ok. */
void kc_peerlink_stop(struct kc_peerlink *pl);

/* A hostlink for `host` through the server at `endpoint` (its agent
 * endpoint, "ADDR:PORT"), connecting to it if this server has no live
 * connection there yet.  KC_ERR_UNAVAILABLE if the server cannot be
 * reached.  Release with kc_hostlink_release(). */
int kc_peerlink_get(struct kc_peerlink *pl, const char *endpoint, const char *host,
		    struct kc_hostlink **ret, struct kc_error *err);

/* The receiving side: is the verified peer of `tls` another live server
 * (its certificate, never a message, says so)? */
bool kc_peerlink_is_peer(struct kc_server *srv, const struct kc_tls_link *tls);
/* Serves one peer connection until it fails or is shut down (the agent
 * listener's stop shuts it down); returns once every request it started
 * has finished.  `addr` names the client in logs.  Does not close tls. */
void kc_peerlink_serve(struct kc_server *srv, struct kc_tls_link *tls, const char *addr);
