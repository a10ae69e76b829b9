/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link.h - the agent's side of the cluster link (docs/protocol.md): connect
 * out to the server over mutual TLS, say hello, answer requests with
 * kc_agent_dispatch() on a small pool of worker threads, send heartbeats
 * and libvirt events, and reconnect with backoff whenever the link breaks.
 *
 * Library code: it never prints; every line worth logging goes to the
 * caller's log function.
 */
#pragma once

#include "agent.h"
#include "error.h"

/* Worker threads running requests; more requests wait in a queue. */
#define KC_LINK_WORKERS 4
/* Requests waiting beyond this are answered "unavailable" at once. */
#define KC_LINK_QUEUE_MAX 64
/* At most this many server endpoints (endpoint plus endpoints). */
#define KC_LINK_ENDPOINTS_MAX 16

/* Events waiting to be sent; an overflow restarts the link so that the
 * server reconciles from hello's domain list instead of missing events. */
#define KC_LINK_EVENTS_MAX 256

typedef void (*kc_link_log_fn)(const char *line, void *opaque);

struct kc_link_config {
	const char *ca_file;	 /* the cluster CA */
	const char *cert_file;	 /* our certificate (from join) */
	const char *key_file;	 /* its key */
	const char *endpoint;	 /* "host:port" or "[v6addr]:port" */
	const char *server_name; /* a name the server's certificate carries */
	/* More servers of the same cluster (docs/server.md "High
	 * availability"): "host:port,host:port" (may be NULL; may repeat
	 * endpoint).  Each is verified against its own host part.  The link
	 * tries endpoint first, then the next after every failure or lost
	 * session, in rotation; the backoff grows once per full round. */
	const char *endpoints;
	/* The file holding endpoint=, server_name= and endpoints= (may be
	 * NULL).  A server list from the server (docs/protocol.md) that
	 * differs from ours replaces its endpoints= line; the new rotation
	 * starts at the next connect. */
	const char *server_conf;
	unsigned backoff_min_ms; /* first retry delay; 0 = 1000 */
	unsigned backoff_max_ms; /* delay cap; 0 = 60000 */
	unsigned timeout_ms;	 /* TCP connect, TLS handshake, welcome; 0 = 10000 */
	kc_link_log_fn log;	 /* may be NULL */
	void *log_opaque;
};

struct kc_link;

/* Loads the credentials and checks the endpoint's form; connects nothing
 * yet.  The strings of cfg are copied.  KC_ERR_INVALID for bad files or a
 * bad endpoint. */
int kc_link_new(struct kc_agent *agent, const struct kc_link_config *cfg, struct kc_link **ret,
		struct kc_error *err);

/* Runs the link until kc_link_stop(): connects, serves, reconnects with
 * exponential backoff (min doubling to max, +-20 % jitter).  Installs the
 * agent's event callback while it runs and removes it before returning.
 * Returns once every thread it started has ended. */
void kc_link_run(struct kc_link *link);

/* Asks kc_link_run() to return: the live connection is shut down and any
 * backoff wait ends.  Safe from any thread (not from a signal handler). */
void kc_link_stop(struct kc_link *link);

/* Frees a link whose kc_link_run() has returned (or never ran).  The
 * agent's event thread may still hold the callback for a moment after
 * kc_link_run() returns: free the link after kc_agent_free(), or after the
 * agent is otherwise quiet.  NULL is accepted. */
void kc_link_free(struct kc_link *link);
