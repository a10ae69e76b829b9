/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_console.c - GET /vms/{name}/console: the serial console over a
 * WebSocket.  On the server's own host the embedded agent hands us one end
 * of a socketpair bridged to libvirt's console stream; on a remote host the
 * console arrives as a console stream from its agent (console_stream.h).
 * We pump its bytes to the client as binary messages (manager thread) and
 * write the client's messages into it (ulfius' reading thread).
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "console_stream.h"
#include "hostlink.h"
#include "cleanup.h"
#include "http_util.h"
#include "io.h"
#include "json_util.h"

/* Each session holds two threads and a libvirt stream, and ulfius 2.7.13
 * allocates whatever frame length a client announces (docs/server.md): keep
 * the number of sessions that can do that at once small. */
#define MAX_CONSOLE_SESSIONS 8
#define POLL_MS		     200

static atomic_int n_sessions;

struct console_session {
	int fd;				  /* local: the socketpair's end, else -1 */
	struct kc_console_stream *stream; /* remote */
};

/* > 0 bytes, 0 nothing within POLL_MS, -1 the console ended. */
static ssize_t console_read(struct console_session *cs, char *buf, size_t cap)
{
	if (cs->stream)
		return kc_console_stream_read(cs->stream, buf, cap, POLL_MS);
	struct pollfd p = {.fd = cs->fd, .events = POLLIN};
	int r = poll(&p, 1, POLL_MS);
	if (r < 0 && errno == EINTR)
		return 0;
	if (r <= 0)
		return r;
	ssize_t n = read(cs->fd, buf, cap);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	return n > 0 ? n : -1;
}

static void console_manager(const struct _u_request *req, struct _websocket_manager *wm, void *data)
{
	struct console_session *cs = data;
	char buf[4096];

	/* ulfius keeps every message in lists unless told not to; a console
	 * session can run for days. */
	wm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	while (ulfius_websocket_status(wm) == U_WEBSOCKET_STATUS_OPEN) {
		ssize_t n = console_read(cs, buf, sizeof(buf));
		if (n == 0)
			continue;
		if (n < 0)
			break; /* console closed: the VM stopped or the agent ended it */
		if (ulfius_websocket_send_message(wm, U_WEBSOCKET_OPCODE_BINARY, (uint64_t)n,
						  buf) != U_OK)
			break;
	}
	/* Returning makes ulfius close the WebSocket. */
}

static void console_incoming(const struct _u_request *req, struct _websocket_manager *wm,
			     const struct _websocket_message *msg, void *data)
{
	struct console_session *cs = data;

	wm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	if (msg->opcode != U_WEBSOCKET_OPCODE_BINARY && msg->opcode != U_WEBSOCKET_OPCODE_TEXT)
		return;
	int rc = cs->stream ? kc_console_stream_write(cs->stream, msg->data, msg->data_len)
			    : kc_write_all(cs->fd, msg->data, msg->data_len);
	if (rc < 0)
		wm->close_flag = 1;
}

/* Called exactly once per session, also when the handshake fails. */
static void console_close(const struct _u_request *req, struct _websocket_manager *wm, void *data)
{
	struct console_session *cs = data;

	if (cs->stream)
		kc_console_stream_close(cs->stream);
	else
		close(cs->fd);
	free(cs);
	atomic_fetch_sub(&n_sessions, 1);
}

static bool header_has(const struct _u_request *req, const char *key, const char *token)
{
	const char *v = u_map_get_case(req->map_header, key);
	return v && strcasestr(v, token);
}

int kc_api_vm_console(struct kc_call *c, struct kc_error *err)
{
	/* Checked here so that a plain GET gets a JSON error, not ulfius' text. */
	if (!header_has(c->req, "Upgrade", "websocket") ||
	    !header_has(c->req, "Connection", "upgrade"))
		return kc_error_set(err, KC_ERR_INVALID,
				    "this route needs a WebSocket upgrade request");
	_cleanup_json_ json_t *row = NULL;
	if (kc_api_require_managed(c->srv, c->name, &row, err) < 0)
		return -1;
	const char *host = json_string_value(json_object_get(row, "host"));
	if (!host)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "VM %s has no host", c->name);

	if (atomic_fetch_add(&n_sessions, 1) >= MAX_CONSOLE_SESSIONS) {
		atomic_fetch_sub(&n_sessions, 1);
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "too many console sessions (at most %d)", MAX_CONSOLE_SESSIONS);
	}
	struct console_session *cs = calloc(1, sizeof(*cs));
	if (!cs) {
		atomic_fetch_sub(&n_sessions, 1);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	cs->fd = -1;
	int rc = kc_host_is_local(c->srv, host)
			 ? kc_agent_vm_console_open(c->srv->agent, c->name, &cs->fd, err)
			 : kc_console_stream_open(c->srv, host, c->name, &cs->stream, err);
	if (rc < 0) {
		free(cs);
		atomic_fetch_sub(&n_sessions, 1);
		return -1;
	}
	if (ulfius_set_websocket_response(c->resp, NULL, NULL, console_manager, cs,
					  console_incoming, cs, console_close, cs) != U_OK) {
		if (cs->stream)
			kc_console_stream_close(cs->stream);
		else
			close(cs->fd);
		free(cs);
		atomic_fetch_sub(&n_sessions, 1);
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot set up the WebSocket");
	}
	c->resp->status = 101;
	return 0;
}
