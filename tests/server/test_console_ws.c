/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_console_ws.c - attaches to a VM's serial console over the API's
 * WebSocket, sends a line and expects bytes back.  Needs a running server
 * and VM, so it skips unless told where they are:
 *   KC_SERVER_URL=http://127.0.0.1:PORT KC_TOKEN_FILE=.../admin.token KC_VM=name
 *   optional KC_CONSOLE_SEND (default "\r"), KC_CONSOLE_EXPECT (a substring),
 *   KC_CONSOLE_WAIT seconds (default 20).
 * Also checks that a console request without a token is refused.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ulfius.h>

#include "kctest.h"

#define MAX_COLLECT (256 * 1024)

static const char *url, *vm, *send_text, *expect;
static char token[128];
static int wait_s = 20;

static struct {
	pthread_mutex_t lock;
	char buf[MAX_COLLECT + 1];
	size_t len;
	bool found;
} got = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_message(const struct _u_request *req, struct _websocket_manager *wm,
		       const struct _websocket_message *msg, void *data)
{
	wm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	pthread_mutex_lock(&got.lock);
	size_t n = msg->data_len;
	if (n > MAX_COLLECT - got.len)
		n = MAX_COLLECT - got.len;
	memcpy(got.buf + got.len, msg->data, n);
	got.len += n;
	got.buf[got.len] = '\0';
	if (expect && memmem(got.buf, got.len, expect, strlen(expect)))
		got.found = true;
	pthread_mutex_unlock(&got.lock);
}

static void manager(const struct _u_request *req, struct _websocket_manager *wm, void *data)
{
	wm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	time_t end = time(NULL) + wait_s;
	time_t next_send = 0;

	while (time(NULL) < end && ulfius_websocket_status(wm) == U_WEBSOCKET_STATUS_OPEN) {
		/* Resend now and then: a guest still booting may miss the first. */
		if (time(NULL) >= next_send) {
			ulfius_websocket_send_message(wm, U_WEBSOCKET_OPCODE_BINARY,
						      strlen(send_text), send_text);
			next_send = time(NULL) + 3;
		}
		pthread_mutex_lock(&got.lock);
		bool done = expect ? got.found : got.len > 0;
		pthread_mutex_unlock(&got.lock);
		if (done)
			break;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Opens the console; returns the HTTP status of the handshake (101 when
 * the WebSocket was opened and has now been closed again). */
static long open_console(const char *tok)
{
	struct _u_request req;
	struct _u_response resp;
	struct _websocket_client_handler h = {0};
	char ws_url[512], auth[256];
	long status = -1;

	ulfius_init_request(&req);
	ulfius_init_response(&resp);
	snprintf(ws_url, sizeof(ws_url), "%s/api/v1/vms/%s/console", url, vm);
	if (ulfius_set_websocket_request(&req, ws_url, NULL, NULL) != U_OK)
		goto out;
	if (tok) {
		snprintf(auth, sizeof(auth), "Bearer %s", tok);
		u_map_put(req.map_header, "Authorization", auth);
	}
	if (ulfius_open_websocket_client_connection(&req, manager, NULL, on_message, NULL, NULL,
						    NULL, &h, &resp) == U_OK) {
		ulfius_websocket_client_connection_wait_close(&h, 0);
		status = 101;
	} else {
		status = resp.status;
	}
out:
	ulfius_clean_request(&req);
	ulfius_clean_response(&resp);
	return status;
}

KC_TEST(console_needs_a_token)
{
	long st = open_console(NULL);
	KC_CHECK(st != 101);
	if (st == 101)
		kc_test_diag("the console opened without a token");
}

KC_TEST(console_echoes_bytes)
{
	got.len = 0;
	got.found = false;
	long st = open_console(token);
	KC_CHECK_INT(st, 101);
	KC_CHECK(got.len > 0);
	if (expect)
		KC_CHECK(got.found);
	kc_test_diag("received %zu bytes; last ones: %.200s", got.len,
		     got.len > 200 ? got.buf + got.len - 200 : got.buf);
}

int main(void)
{
	url = getenv("KC_SERVER_URL");
	vm = getenv("KC_VM");
	const char *tf = getenv("KC_TOKEN_FILE");
	send_text = getenv("KC_CONSOLE_SEND") ? getenv("KC_CONSOLE_SEND") : "\r";
	expect = getenv("KC_CONSOLE_EXPECT");
	if (getenv("KC_CONSOLE_WAIT"))
		wait_s = atoi(getenv("KC_CONSOLE_WAIT"));
	if (!url || !vm || !tf) {
		printf("1..0 # SKIP set KC_SERVER_URL, KC_TOKEN_FILE and KC_VM to run\n");
		return 0;
	}
	FILE *f = fopen(tf, "r");
	if (!f || !fgets(token, sizeof(token), f)) {
		perror(tf);
		return 1;
	}
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	kc_test_run_registered();
	return kc_test_finish();
}
