/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console_stream_agent.h - the agent's end of console streams
 * (docs/protocol.md, "Console streams"): for the op console.open the agent
 * opens the VM's console, dials a second TLS connection to the server it is
 * linked to (through the link's dial function), names the server's token in
 * one "stream" frame and then pumps raw bytes both ways between the console
 * and that connection, on its own threads, until either side ends.
 *
 * Library code: it never prints.
 */
#pragma once

#include <jansson.h>

#include "agent.h"
#include "error.h"

struct kc_tls_link;

#define KC_CONSOLE_OP "console.open"
/* Streams of one link at once; more are answered "unavailable". */
#define KC_CONSOLE_AGENT_STREAMS_MAX 8
/* A stream with no byte either way for this long is closed. */
#define KC_CONSOLE_AGENT_IDLE_S 3600

/* Connects a new TLS link to the server (the link's own endpoint and
 * credentials). */
typedef int (*kc_console_dial_fn)(void *opaque, struct kc_tls_link **ret, struct kc_error *err);

struct kc_console_streams;

/* NULL when out of memory. */
struct kc_console_streams *kc_console_streams_new(void);

/* console.open with args {"name", "token"}: KC_ERR_INVALID for bad args
 * (before anything is done), KC_ERR_UNAVAILABLE beyond
 * KC_CONSOLE_AGENT_STREAMS_MAX, the console's error (e.g. KC_ERR_CONFLICT:
 * not running), or the dial's.  On success the stream frame has been sent
 * and the stream runs on until either side ends it. */
int kc_console_streams_open(struct kc_console_streams *cs, struct kc_agent *a, const json_t *args,
			    kc_console_dial_fn dial, void *opaque, struct kc_error *err);

/* Ends every stream and waits for their threads.  No open may run
 * meanwhile. */
void kc_console_streams_stop(struct kc_console_streams *cs);

/* Stops and frees; NULL is accepted. */
void kc_console_streams_free(struct kc_console_streams *cs);
