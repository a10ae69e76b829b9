/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link_fixture.h - the in-process fake server of the agent link tests
 * (test_link.c, test_link_stream.c), made of src/core/tlslink.h and pki.h:
 * a fresh CA, server and agent certificates in /tmp/<prefix>-pki-XXXXXX,
 * a listener on 127.0.0.1 at a random port, the agent's log kept for
 * lookups, and sending and waiting for messages.  One fake server a test
 * program: its state is file-scope.
 */
#pragma once

#include <arpa/inet.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "error.h"
#include "json_util.h"
#include "pki.h"
#include "tlslink.h"

static char pki[256];
static struct kc_tls_creds *server_creds;
static int listen_fd = -1;

/* What the agent logged. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[512][512];
static size_t n_log;

/* Sees every message wait_for() receives, before it is matched (NULL:
 * none). */
static void (*wait_for_seen)(json_t *m);

/* The agent's log callback (kc_link_config.log). */
__attribute__((unused)) static void on_log(const char *line, void *opaque)
{
	pthread_mutex_lock(&log_lock);
	if (n_log < KC_ARRAY_SIZE(log_lines))
		snprintf(log_lines[n_log++], sizeof(log_lines[0]), "%s", line);
	pthread_mutex_unlock(&log_lock);
	printf("# agent: %s\n", line);
	fflush(stdout);
}

/* How many logged lines contain `needle`. */
__attribute__((unused)) static size_t log_count(const char *needle)
{
	size_t n = 0;
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < n_log; i++)
		n += strstr(log_lines[i], needle) != NULL;
	pthread_mutex_unlock(&log_lock);
	return n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* <pki>/<name>, in one of eight rotating buffers. */
static char *path(const char *name)
{
	static char bufs[8][400];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", pki, name);
	return b;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

/* A CA ("<family> CA"), the server's certificate for localhost and
 * 127.0.0.1, and agent.key / agent.crt for `prefix`, in a new folder
 * `pki`; loads the server's credentials. */
__attribute__((unused)) static bool make_pki(const char *prefix, const char *family,
					     struct kc_error *err)
{
	snprintf(pki, sizeof(pki), "/tmp/%s-pki-XXXXXX", prefix);
	if (!mkdtemp(pki))
		return false;
	const char *dns[] = {"localhost", NULL};
	const char *ips[] = {"127.0.0.1", NULL};
	char ca[64], server[64];
	snprintf(ca, sizeof(ca), "%s CA", family);
	snprintf(server, sizeof(server), "%s-server", family);
	_cleanup_free_ char *csr = NULL, *pem = NULL, *serial = NULL;
	if (kc_pki_ca_create(pki, ca, err) < 0 ||
	    kc_pki_server_cert_create(pki, server, dns, ips, err) < 0 ||
	    kc_pki_key_and_csr(path("agent.key"), "ignored", &csr, err) < 0 ||
	    kc_pki_sign_csr(pki, csr, prefix, 30, &pem, &serial, err) < 0)
		return false;
	FILE *f = fopen(path("agent.crt"), "we");
	if (!f)
		return false;
	fputs(pem, f);
	fclose(f);
	return kc_tls_creds_load(path("ca.crt"), path("server.crt"), path("server.key"),
				 &server_creds, err) == 0;
}

/* Listens on 127.0.0.1 at a random port; the port, or -1. */
__attribute__((unused)) static int make_listener(void)
{
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listen_fd, 8) < 0 || getsockname(listen_fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

/* Accepts the agent's next connection; NULL on timeout or refusal (err
 * says which). */
__attribute__((unused)) static struct kc_tls_link *
accept_agent(kc_tls_revoked_fn revoked, int timeout_ms, struct kc_error *err)
{
	struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
	if (poll(&pfd, 1, timeout_ms) != 1) {
		kc_error_set(err, KC_ERR_TIMEOUT, "the agent did not connect");
		return NULL;
	}
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "accept failed");
		return NULL;
	}
	struct kc_tls_link *l = NULL;
	if (kc_tls_accept(server_creds, fd, 5000, revoked, NULL, &l, err) < 0) {
		close(fd);
		return NULL;
	}
	return l;
}

/* Sends the JSON text made from fmt; a text that is not JSON is a bug of
 * the test, said so and not sent. */
__attribute__((format(printf, 2, 3))) static int send_msg(struct kc_tls_link *l, const char *fmt,
							  ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	_cleanup_json_ json_t *m = json_loads(buf, 0, NULL);
	struct kc_error err = {0};
	if (!m) {
		printf("# bad test message %s\n", buf);
		return -1;
	}
	return kc_tls_send_json(l, m, &err);
}

/* Receives until a message of `type` (and `id`, if >= 0) arrives, showing
 * each to wait_for_seen on the way and sending our own heartbeat each
 * second.  NULL on timeout or a broken link (err). */
__attribute__((unused)) static json_t *wait_for(struct kc_tls_link *l, const char *type,
						json_int_t id, int timeout_ms, struct kc_error *err)
{
	double end = now_s() + timeout_ms / 1000.0;
	while (now_s() < end) {
		json_t *m = NULL;
		struct kc_error e = {0};
		if (kc_tls_recv_json(l, 1000, &m, &e) < 0) {
			if (e.code != KC_ERR_TIMEOUT) {
				*err = e;
				return NULL;
			}
			send_msg(l, "{\"v\":1,\"type\":\"heartbeat\",\"time\":%lld}",
				 (long long)time(NULL));
			continue;
		}
		if (wait_for_seen)
			wait_for_seen(m);
		const char *t = json_string_value(json_object_get(m, "type"));
		if (t && strcmp(t, type) == 0 &&
		    (id < 0 || json_integer_value(json_object_get(m, "id")) == id))
			return m;
		json_decref(m);
	}
	kc_error_set(err, KC_ERR_TIMEOUT, "no %s within %d ms", type, timeout_ms);
	return NULL;
}

/* A response's error code, or NULL. */
__attribute__((unused)) static const char *error_code(const json_t *resp)
{
	return json_string_value(json_object_get(json_object_get(resp, "error"), "code"));
}

/* Frees the server's credentials, closes the listener, removes the pki
 * folder. */
__attribute__((unused)) static void link_fixture_cleanup(void)
{
	kc_tls_creds_free(server_creds);
	if (listen_fd >= 0)
		close(listen_fd);
	if (pki[0])
		nftw(pki, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
