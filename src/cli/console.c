/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "vm console": the serial console over the API's WebSocket (ulfius client).
 * On a terminal: raw mode, Ctrl-] leaves (as virsh console), and the
 * terminal is restored on every way out.  Otherwise stdin and stdout are
 * piped: after end of input the command keeps printing until the console
 * has been quiet for QUIET_MS, so that "echo cmd | kvmcloud vm console x"
 * shows the answer.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <ulfius.h>

#include "cli.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "request.h"

#define ESCAPE_CHAR 0x1d /* Ctrl-] */
#define QUIET_MS    1500
#define CHUNK	    4096

struct console {
	bool tty;
	atomic_llong last_rx_ms; /* when output last arrived */
	atomic_bool remote_closed;
	atomic_bool write_failed;
	bool user_quit;
};

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void restore_terminal(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		tio_saved = 0;
	}
}

/* SIGTERM / SIGHUP / SIGQUIT while raw: put the terminal back, then die of
 * the same signal.  tcsetattr is async-signal-safe. */
static void on_fatal_signal(int sig)
{
	restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int raw_terminal(struct kc_error *err)
{
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read terminal mode");
	struct termios raw = saved_tio;
	cfmakeraw(&raw);
	tio_saved = 1;
	struct sigaction sa = {.sa_handler = on_fatal_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0) {
		tio_saved = 0;
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					  "cannot set raw terminal mode");
	}
	return 0;
}

static void on_message(const struct _u_request *req, struct _websocket_manager *mgr,
		       const struct _websocket_message *msg, void *data)
{
	struct console *con = data;
	if (msg->opcode != U_WEBSOCKET_OPCODE_BINARY && msg->opcode != U_WEBSOCKET_OPCODE_TEXT)
		return;
	atomic_store(&con->last_rx_ms, now_ms());
	if (kc_write_all(STDOUT_FILENO, msg->data, msg->data_len) < 0)
		atomic_store(&con->write_failed, true);
}

static void on_close(const struct _u_request *req, struct _websocket_manager *mgr, void *data)
{
	struct console *con = data;
	atomic_store(&con->remote_closed, true);
}

/* Runs in ulfius's thread after the handshake; the connection is closed
 * when it returns. */
static void pump_stdin(const struct _u_request *req, struct _websocket_manager *mgr, void *data)
{
	struct console *con = data;
	/* Console sessions are long: do not keep every message in memory. */
	mgr->keep_messages = U_WEBSOCKET_KEEP_NONE;
	bool eof = false;
	char buf[CHUNK];
	while (ulfius_websocket_status(mgr) == U_WEBSOCKET_STATUS_OPEN &&
	       !atomic_load(&con->write_failed)) {
		if (eof) {
			if (now_ms() - atomic_load(&con->last_rx_ms) >= QUIET_MS)
				return;
			usleep(50 * 1000);
			continue;
		}
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int r = poll(&p, 1, 200);
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			if (con->tty)
				return;
			eof = true;
			/* Give the guest time to answer the last input. */
			atomic_store(&con->last_rx_ms, now_ms());
			continue;
		}
		size_t len = (size_t)n;
		char *esc = con->tty ? memchr(buf, ESCAPE_CHAR, len) : NULL;
		if (esc)
			len = (size_t)(esc - buf);
		if (len > 0 &&
		    ulfius_websocket_send_message(mgr, U_WEBSOCKET_OPCODE_BINARY, len, buf) != U_OK)
			return;
		if (esc) {
			con->user_quit = true;
			return;
		}
	}
}

int kc_cmd_vm_console(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], "/console", "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	/* A failed WebSocket handshake carries no error body through ulfius:
	 * ask for the VM first, so that "not found" or "wrong token" reads as
	 * the server's own message. */
	_cleanup_free_ char *vm_path = kc_req_path("vms", a->pos[0], NULL, "VM name", &err);
	_cleanup_json_ json_t *vm = NULL;
	if (!vm_path || kc_api_call(c, "GET", vm_path, NULL, &vm, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	_cleanup_free_ char *url = NULL;
	_cleanup_free_ char *auth = NULL;
	if (asprintf(&url, "%s%s", kc_client_url(c), path) < 0 ||
	    asprintf(&auth, "Bearer %s", kc_client_token(c)) < 0) {
		kc_error_set(&err, KC_ERR_INTERNAL, "out of memory");
		return kc_cli_fail(cli, &err, false);
	}

	struct console con = {.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)};
	atomic_store(&con.last_rx_ms, now_ms());
	struct _u_request req;
	struct _u_response resp;
	struct _websocket_client_handler handler = {0};
	ulfius_init_request(&req);
	ulfius_init_response(&resp);
	int rc = KC_EXIT_OK;
	if (ulfius_set_websocket_request(&req, url, NULL, NULL) != U_OK ||
	    u_map_put(req.map_header, "Authorization", auth) != U_OK) {
		kc_error_set(&err, KC_ERR_INTERNAL, "cannot prepare the console request");
		rc = kc_cli_fail(cli, &err, false);
		goto out;
	}
	explicit_bzero(auth, strlen(auth));
	/* A dead peer would otherwise wait forever on connect. */
	req.timeout = 30;

	if (con.tty && raw_terminal(&err) < 0) {
		rc = kc_cli_fail(cli, &err, false);
		goto out;
	}
	if (con.tty) {
		/* Raw mode: lines need "\r\n". */
		fprintf(stderr, "Connected to %s\r\nEscape character is ^] (Ctrl + ])\r\n",
			a->pos[0]);
	}
	if (ulfius_open_websocket_client_connection(&req, pump_stdin, &con, on_message, &con,
						    on_close, &con, &handler, &resp) != U_OK) {
		restore_terminal();
		if (resp.status >= 400) {
			struct kc_http_response hr = {.status = resp.status,
						      .body = resp.binary_body,
						      .len = resp.binary_body_length};
			_cleanup_free_ char *body = NULL;
			if (hr.body) {
				body = strndup(hr.body, hr.len);
				hr.body = body;
			}
			if (!hr.body)
				hr.body = "", hr.len = 0;
			kc_http_check_status(&hr, &err);
		}
		kc_error_set(&err, KC_ERR_UNAVAILABLE,
			     "cannot open the console of %s at %s (is the VM running?)", a->pos[0],
			     kc_client_url(c));
		rc = kc_cli_fail(cli, &err, false);
		goto out;
	}
	ulfius_websocket_client_connection_wait_close(&handler, 0);
	restore_terminal();
	if (con.tty)
		fputs("\n", stderr);
	if (atomic_load(&con.write_failed)) {
		kc_error_set(&err, KC_ERR_INTERNAL, "cannot write the console output");
		rc = kc_cli_fail(cli, &err, false);
	}
out:
	restore_terminal();
	ulfius_clean_request(&req);
	ulfius_clean_response(&resp);
	return rc;
}
