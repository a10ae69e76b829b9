/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentlink.h - the server's side of the agent protocol (docs/protocol.md):
 * a TCP listener, one thread per agent connection (mutual TLS through
 * tlslink.h, identity from the certificate), hello/welcome, heartbeats,
 * request/response with ids and per-call timeouts, VM events, host
 * staleness, reconciliation of a host's VM records when it says hello.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "error.h"

struct kc_server;
struct kc_agentlink;
struct kc_hostlink;

#define KC_DEFAULT_AGENT_LISTEN "127.0.0.1:8471"
#define KC_DEFAULT_HEARTBEAT_S	10
/* A host silent this long after being marked Disconnected is Down. */
#define KC_DEFAULT_DOWN_AFTER_S 300
/* At most this many agent connections (handshaking or live) at once. */
#define KC_AGENTLINK_MAX_CONNS 4096

struct kc_agentlink_opts {
	const struct sockaddr_storage *addr; /* where to listen */
	const char *ca_file, *cert_file, *key_file;
	unsigned heartbeat_s;  /* 0: KC_DEFAULT_HEARTBEAT_S */
	unsigned down_after_s; /* 0: KC_DEFAULT_DOWN_AFTER_S */
};

/* Binds, listens and starts the accept and staleness threads.  The server's
 * database must outlive the link. */
int kc_agentlink_start(struct kc_server *srv, const struct kc_agentlink_opts *opts,
		       struct kc_agentlink **ret, struct kc_error *err);
/* Stops accepting, closes every connection (pending calls fail with
 * KC_ERR_UNAVAILABLE), waits for the threads.  NULL ok. */
void kc_agentlink_stop(struct kc_agentlink *al);

/* The port actually bound (useful with port 0 in tests). */
int kc_agentlink_port(const struct kc_agentlink *al);

/* A hold on host's live connection, as a hostlink; KC_ERR_UNAVAILABLE if
 * none. */
int kc_agentlink_get(struct kc_agentlink *al, const char *host, struct kc_hostlink **ret,
		     struct kc_error *err);
bool kc_agentlink_connected(struct kc_agentlink *al, const char *host);
/* Names of the hosts with a live connection (new array). */
json_t *kc_agentlink_hosts(struct kc_agentlink *al);
/* Closes host's live connection, if any (revocation). */
void kc_agentlink_disconnect(struct kc_agentlink *al, const char *host);
