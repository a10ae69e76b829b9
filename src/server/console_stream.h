/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console_stream.h - the serial console of a VM on a remote host
 * (docs/protocol.md, "Console streams"): the server asks the host's agent
 * over its link to open the console (op console.open with a one-time
 * token); the agent dials a second TLS connection with its own certificate,
 * names the token in one "stream" frame, and from then on that connection
 * carries the console's raw bytes both ways.  The API's WebSocket bridge
 * (api_console.c) reads and writes it through this module.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct kc_server;
struct kc_tls_link;

/* How long a token waits for its stream connection. */
#define KC_CONSOLE_TOKEN_S 30
/* Console streams (waiting or open) at once, per host and per server. */
#define KC_CONSOLE_STREAMS_PER_HOST 4
#define KC_CONSOLE_STREAMS_MAX	    8
/* A stream with no byte either way for this long is closed. */
#define KC_CONSOLE_IDLE_S 3600

struct kc_console_stream;

/* Opens the console of `vm` on the remote `host`, whose link this server
 * holds: sends console.open and waits for the agent's stream connection.
 * KC_ERR_UNAVAILABLE if the host is not connected here or too many streams
 * are open; the agent's error (e.g. KC_ERR_CONFLICT: not running)
 * otherwise; KC_ERR_TIMEOUT if the stream does not arrive in time. */
int kc_console_stream_open(struct kc_server *srv, const char *host, const char *vm,
			   struct kc_console_stream **ret, struct kc_error *err);

/* Up to cap bytes of console output, waiting at most timeout_ms: > 0 bytes,
 * 0 if none came in time, -1 once the stream has ended (closed by either
 * side, broken, or idle for KC_CONSOLE_IDLE_S).  One reader at a time. */
ssize_t kc_console_stream_read(struct kc_console_stream *st, void *buf, size_t cap, int timeout_ms);
/* Sends all of buf to the console; -1 once the stream has ended.  May run
 * while another thread reads. */
int kc_console_stream_write(struct kc_console_stream *st, const void *buf, size_t len);
/* Closes the connection (the agent then closes the console) and frees.
 * NULL is accepted.  No other thread may be using st. */
void kc_console_stream_close(struct kc_console_stream *st);

/* Is msg (the first frame of an agent connection) a stream frame? */
bool kc_console_stream_is_stream(const json_t *msg);
/* The accept path (agentlink.c): a connection whose certificate is `host`'s
 * current one sent the stream frame msg.  If its token is one that this
 * server handed out for a console on that host and is still waiting, the
 * stream takes tls over (returns 0); otherwise -1 and tls stays the
 * caller's. */
int kc_console_stream_accept(struct kc_server *srv, const char *host, struct kc_tls_link *tls,
			     const json_t *msg, struct kc_error *err);
