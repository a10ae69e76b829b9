/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "vm console": the serial console over the API's WebSocket, with
 * libwebsockets as the client (docs/decisions.md says why not ulfius or
 * libcurl).  An https:// server is verified as every other CLI request
 * (http.c): the CA file from KVMCLOUD_CA on top of the system's CAs, the
 * peer and its host name always checked.
 *
 * One lws service loop on the main thread does the network and writes the
 * console to stdout; a second thread reads stdin (lws has no safe way to
 * watch a terminal it must not make non-blocking) and hands each piece over
 * under a mutex, waking the loop with lws_cancel_service().
 *
 * On a terminal: raw mode, Ctrl-] leaves (as virsh console), and the
 * terminal is restored on every way out.  Otherwise stdin and stdout are
 * piped: after end of input the command keeps printing until the console
 * has been quiet for QUIET_MS, so that "echo cmd | kvmcloud vm console x"
 * shows the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cli.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "request.h"

#define ESCAPE_CHAR 0x1d /* Ctrl-] */
#define QUIET_MS    1500
#define CHUNK	    4096
#define TICK_US	    (100 * LWS_US_PER_MS)

#define OPEN_TIMEOUT_S 30 /* connect, TLS and the upgrade's answer */

struct console {
	bool tty;
	const char *auth; /* "Bearer TOKEN", sent in the upgrade request */
	struct lws_context *ctx;
	struct lws *wsi; /* set and cleared by lws (connect info .pwsi) */

	/* Main thread only. */
	bool established, finished, closing, eof_seen;
	bool write_failed;
	long long last_rx_ms;	     /* when output last arrived */
	unsigned int refused_status; /* HTTP status of a refused upgrade */
	char reason[256];	     /* lws's words for a failed connection */
	lws_sorted_usec_list_t tick;
	unsigned char tx[LWS_PRE + CHUNK];

	/* Shared with the stdin thread, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char in[CHUNK];
	size_t in_len; /* bytes waiting in `in` */
	bool in_eof;   /* end of input */
	bool in_quit;  /* Ctrl-] typed */
	bool stop;     /* the reader must return */
	int wake[2];   /* a byte here ends the reader's poll */
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

/* lws's own messages (errors only): one line each on stderr. */
static void lws_log_line(int level, const char *line)
{
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	fprintf(stderr, "kvmcloud: libwebsockets: %.*s%s", (int)n, line, tio_saved ? "\r\n" : "\n");
}

/* The stdin thread: each piece read waits in con->in until the loop has
 * sent it, so that a slow server slows the reader instead of filling
 * memory. */
static void *read_stdin(void *arg)
{
	struct console *con = arg;
	unsigned char buf[CHUNK];

	for (;;) {
		struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				      {.fd = con->wake[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			p[0].revents = POLLERR; /* read() below says what */
		}
		if (p[1].revents)
			return NULL;
		if (!p[0].revents)
			continue;
		ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		size_t len = k > 0 ? (size_t)k : 0;
		unsigned char *esc = con->tty ? memchr(buf, ESCAPE_CHAR, len) : NULL;
		if (esc)
			len = (size_t)(esc - buf);

		pthread_mutex_lock(&con->mu);
		while (con->in_len && !con->stop)
			pthread_cond_wait(&con->cv, &con->mu);
		bool stop = con->stop;
		if (!stop) {
			memcpy(con->in, buf, len);
			con->in_len = len;
			con->in_eof = k <= 0;
			con->in_quit = esc != NULL;
		}
		pthread_mutex_unlock(&con->mu);
		if (stop)
			return NULL;
		lws_cancel_service(con->ctx);
		if (k <= 0 || esc)
			return NULL;
	}
}

static void begin_close(struct console *con)
{
	con->closing = true;
	if (con->wsi)
		lws_callback_on_writable(con->wsi);
}

/* Every TICK_US once connected: piped input that has ended leaves once the
 * console has been quiet for QUIET_MS. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct console *con = lws_container_of(sul, struct console, tick);
	if (con->finished)
		return;
	if (con->eof_seen && !con->closing && now_ms() - con->last_rx_ms >= QUIET_MS)
		begin_close(con);
	lws_sul_schedule(con->ctx, 0, &con->tick, on_tick, TICK_US);
}

/* What the stdin thread has handed over, seen from the loop. */
static void on_input(struct console *con)
{
	pthread_mutex_lock(&con->mu);
	bool data = con->in_len > 0, eof = con->in_eof, quit = con->in_quit;
	pthread_mutex_unlock(&con->mu);
	if (!con->established || con->finished)
		return;
	if (eof && !con->eof_seen) {
		con->eof_seen = true;
		/* Give the guest time to answer the last input. */
		con->last_rx_ms = now_ms();
	}
	if (data || quit || (eof && con->tty))
		lws_callback_on_writable(con->wsi);
}

/* Sends what waits from stdin, then, once it is all out, the close. */
static int on_writable(struct console *con, struct lws *wsi)
{
	pthread_mutex_lock(&con->mu);
	size_t len = con->in_len;
	memcpy(con->tx + LWS_PRE, con->in, len);
	con->in_len = 0;
	bool leave = con->in_quit || (con->in_eof && con->tty);
	pthread_cond_signal(&con->cv);
	pthread_mutex_unlock(&con->mu);

	if (len > 0) {
		/* lws keeps what the socket does not take and sends it before
		 * the next writable callback. */
		if (lws_write(wsi, con->tx + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len)
			return -1;
		if (leave || con->closing)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (leave || con->closing) {
		con->closing = true;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1; /* lws sends the close frame and waits for the answer */
	}
	return 0;
}

/* lws's own words for a refused certificate are an OpenSSL error queue
 * entry ("error:00000001:lib(0)::reason(1)"); the verification result says
 * why.  Debian's lws is built on OpenSSL. */
static bool cert_problem(struct lws *wsi, char *buf, size_t cap)
{
#if defined(LWS_WITH_TLS) && !defined(LWS_WITH_MBEDTLS)
	SSL *ssl = lws_get_ssl(wsi);
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v != X509_V_OK) {
		snprintf(buf, cap, "the server's certificate is not trusted: %s",
			 X509_verify_cert_error_string(v));
		return true;
	}
#endif
	return false;
}

static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct console *con = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = in, *end = *p + len;
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
						 (const unsigned char *)con->auth,
						 (int)strlen(con->auth), p, end))
			return -1;
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		con->established = true;
		con->last_rx_ms = now_ms();
		lws_sul_schedule(con->ctx, 0, &con->tick, on_tick, TICK_US);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		/* Read now: the answer's headers go with the connection. */
		con->refused_status = lws_http_client_http_response(wsi);
		if (!cert_problem(wsi, con->reason, sizeof(con->reason)))
			snprintf(con->reason, sizeof(con->reason), "%.*s", in ? (int)len : 0,
				 in ? (const char *)in : "");
		if (!con->reason[0])
			snprintf(con->reason, sizeof(con->reason), "connection failed");
		con->finished = true;
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		con->last_rx_ms = now_ms();
		if (len > 0 && kc_write_all(STDOUT_FILENO, in, len) < 0) {
			con->write_failed = true;
			return -1;
		}
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writable(con, wsi);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		on_input(con);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		con->finished = true;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{.name = "kvmcloud-console", .callback = on_event},
	{0},
};

/* A refused upgrade's body (the server's JSON error) is dropped by lws,
 * which keeps only the status: ask for the VM with a plain request, whose
 * refusal ("not found", a bad token) is the server's own message, and
 * otherwise say what the status and the VM's state tell. */
static void explain_refusal(struct kc_client *c, const char *name, unsigned int status,
			    struct kc_error *err)
{
	_cleanup_free_ char *vm_path = kc_req_path("vms", name, NULL, "VM name", err);
	_cleanup_json_ json_t *vm = NULL;
	if (!vm_path || kc_api_call(c, "GET", vm_path, NULL, &vm, err) < 0)
		return;
	const char *state = json_string_value(json_object_get(vm, "state"));
	if (status == 409 && state && strcmp(state, "running") != 0) {
		kc_error_set(err, KC_ERR_CONFLICT, "VM %s is not running (it is %s)", name, state);
		return;
	}
	kc_error_set(err, status == 409 ? KC_ERR_CONFLICT : KC_ERR_UNAVAILABLE,
		     "the server refused the console of %s (HTTP %u)", name, status);
}

/* Connects to base + path and runs the console until it ends.  err is set
 * on failure; a refused upgrade leaves con->refused_status. */
static int run(struct console *con, const char *base, const char *path, const char *name,
	       struct kc_error *err)
{
	_cleanup_free_ char *url = NULL;
	if (asprintf(&url, "%s%s", base, path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	const char *scheme, *host, *rest;
	int port;
	if (lws_parse_uri(url, &scheme, &host, &port, &rest) ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		return kc_error_set(err, KC_ERR_INVALID, "the server URL %s is not http(s)://",
				    base);
	bool tls = strcmp(scheme, "https") == 0;
	_cleanup_free_ char *upath = NULL;
	if (asprintf(&upath, "/%s", rest) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	/* As http.c: KVMCLOUD_CA is trusted on top of the system's CAs. */
	const char *ca = getenv("KVMCLOUD_CA");
	if (ca && !*ca)
		ca = NULL;
	if (tls && ca && access(ca, R_OK) < 0)
		return kc_error_set_errno(err, KC_ERR_INVALID, errno, "cannot read KVMCLOUD_CA %s",
					  ca);

	struct lws_context_creation_info info = {
		.port = CONTEXT_PORT_NO_LISTEN,
		.protocols = protocols,
		.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT,
		.client_ssl_ca_filepath = ca,
		.timeout_secs = OPEN_TIMEOUT_S,
		.connect_timeout_secs = OPEN_TIMEOUT_S,
		.user = con,
	};
	con->ctx = lws_create_context(&info);
	if (!con->ctx)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot set up libwebsockets");

	struct lws_client_connect_info ci = {
		.context = con->ctx,
		.address = host,
		.port = port,
		.path = upath,
		.host = host,
		/* Peer and host name verified: no LCCSCF_ALLOW_* relaxations. */
		.ssl_connection = tls ? LCCSCF_USE_SSL : 0,
		.local_protocol_name = protocols[0].name,
		.pwsi = &con->wsi,
	};
	if (!lws_client_connect_via_info(&ci) && !con->finished) {
		con->finished = true;
		/* lws says nothing more when, say, the name does not resolve. */
		snprintf(con->reason, sizeof(con->reason), "cannot connect to %s port %d", host,
			 port);
	}
	while (!con->finished && !con->established)
		if (lws_service(con->ctx, 0) < 0)
			break;
	if (!con->established) {
		if (con->refused_status >= 400)
			return -1; /* the caller explains */
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "cannot open the console of %s at %s: %s", name, base,
				    con->reason[0] ? con->reason : "connection failed");
	}

	if (con->tty) {
		if (raw_terminal(err) < 0)
			return -1;
		/* Raw mode: lines need "\r\n". */
		fprintf(stderr, "Connected to %s\r\nEscape character is ^] (Ctrl + ])\r\n", name);
	}
	pthread_t reader;
	if (pthread_create(&reader, NULL, read_stdin, con) != 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start the input thread");
	while (!con->finished)
		if (lws_service(con->ctx, 0) < 0)
			break;

	pthread_mutex_lock(&con->mu);
	con->stop = true;
	pthread_cond_signal(&con->cv);
	pthread_mutex_unlock(&con->mu);
	if (kc_write_all(con->wake[1], "x", 1) < 0) {
		/* Cannot happen with an empty pipe; the reader would hang. */
		abort();
	}
	pthread_join(reader, NULL);
	if (con->write_failed)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot write the console output");
	return 0;
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
	_cleanup_free_ char *auth = NULL;
	if (asprintf(&auth, "Bearer %s", kc_client_token(c) ? kc_client_token(c) : "") < 0) {
		kc_error_set(&err, KC_ERR_INTERNAL, "out of memory");
		return kc_cli_fail(cli, &err, false);
	}

	lws_set_log_level(LLL_ERR, lws_log_line);
	struct console con = {.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO),
			      .auth = auth,
			      .mu = PTHREAD_MUTEX_INITIALIZER,
			      .cv = PTHREAD_COND_INITIALIZER,
			      .wake = {-1, -1}};
	int r = -1;
	if (pipe2(con.wake, O_CLOEXEC) < 0)
		kc_error_set_errno(&err, KC_ERR_INTERNAL, errno, "pipe");
	else
		r = run(&con, kc_client_url(c), path, a->pos[0], &err);
	explicit_bzero(auth, strlen(auth));
	if (con.ctx)
		lws_context_destroy(con.ctx);
	for (int i = 0; i < 2; i++)
		if (con.wake[i] >= 0)
			close(con.wake[i]);
	restore_terminal();
	if (con.tty && con.established)
		fputs("\n", stderr);
	if (r < 0 && con.refused_status >= 400)
		explain_refusal(c, a->pos[0], con.refused_status, &err);
	return r < 0 ? kc_cli_fail(cli, &err, false) : KC_EXIT_OK;
}
