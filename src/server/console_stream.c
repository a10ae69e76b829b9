/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console_stream.c - the server's end of console streams (console_stream.h).
 *
 * Every stream, from its token to its close, is one entry of a list under
 * one lock: an entry is "waiting" (its token may be claimed) until the
 * agent's connection claims it or its opener gives up, then "open" (owned
 * by its opener alone) until closed.  The list bounds how many there are
 * per host and per server.  The list is the process's, entries name their
 * server: tests run several servers in one process.
 */
#include "console_stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "agentlink.h"
#include "cleanup.h"
#include "ha.h"
#include "hostlink.h"
#include "json_util.h"
#include "server.h"
#include "tlslink.h"

#define TOKEN_BYTES 32 /* 256 bits */
#define TOKEN_HEX   (2 * TOKEN_BYTES)
/* After the agent answered console.open, its stream connection has this
 * long to arrive (it was sent before the answer: normally at once). */
#define ARRIVAL_MS 10000

struct kc_console_stream {
	struct kc_console_stream *next;
	const struct kc_server *srv;
	char *host;
	char token[TOKEN_HEX + 1];
	bool waiting;		 /* the token may still be claimed */
	long long expires_ms;	 /* the token's end */
	struct kc_tls_link *tls; /* once claimed */
	atomic_llong last_ms;	 /* last byte either way */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond; /* a token claimed */
static pthread_once_t cond_once = PTHREAD_ONCE_INIT;
static struct kc_console_stream *streams;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cond_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	pthread_condattr_destroy(&ca);
}

/* Under lock. */
static void unlink_stream(struct kc_console_stream *st)
{
	for (struct kc_console_stream **pp = &streams; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			return;
		}
	}
}

static void stream_free(struct kc_console_stream *st)
{
	pthread_mutex_lock(&lock);
	unlink_stream(st);
	pthread_mutex_unlock(&lock);
	kc_tls_close(st->tls);
	free(st->host);
	free(st);
}

/* Adds a waiting entry with a fresh token, within the limits. */
static int stream_new(struct kc_server *srv, const char *host, struct kc_console_stream **ret,
		      struct kc_error *err)
{
	unsigned char raw[TOKEN_BYTES];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return kc_error_set(err, KC_ERR_INTERNAL, "no random bytes for a console token");
	struct kc_console_stream *st = calloc(1, sizeof(*st));
	if (!st || !(st->host = strdup(host))) {
		free(st);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < TOKEN_BYTES; i++)
		snprintf(st->token + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	st->srv = srv;
	st->waiting = true;
	st->expires_ms = mono_ms() + KC_CONSOLE_TOKEN_S * 1000LL;
	atomic_init(&st->last_ms, mono_ms());

	pthread_mutex_lock(&lock);
	unsigned on_host = 0, on_server = 0;
	for (struct kc_console_stream *o = streams; o; o = o->next) {
		if (o->srv != srv)
			continue;
		on_server++;
		on_host += strcmp(o->host, host) == 0;
	}
	if (on_host >= KC_CONSOLE_STREAMS_PER_HOST || on_server >= KC_CONSOLE_STREAMS_MAX) {
		pthread_mutex_unlock(&lock);
		free(st->host);
		free(st);
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "too many remote console sessions (at most %d per host, %d in "
				    "all)",
				    KC_CONSOLE_STREAMS_PER_HOST, KC_CONSOLE_STREAMS_MAX);
	}
	st->next = streams;
	streams = st;
	pthread_mutex_unlock(&lock);
	*ret = st;
	return 0;
}

/* Waits until the agent's connection claimed st, or until deadline_ms;
 * either way the token is spent afterwards. */
static bool wait_claimed(struct kc_console_stream *st, long long deadline_ms)
{
	struct timespec dl = {.tv_sec = deadline_ms / 1000,
			      .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
	pthread_mutex_lock(&lock);
	while (!st->tls && mono_ms() < deadline_ms)
		if (pthread_cond_timedwait(&cond, &lock, &dl) != 0)
			break;
	st->waiting = false;
	bool claimed = st->tls != NULL;
	pthread_mutex_unlock(&lock);
	return claimed;
}

/* The host's link held by this server, never a forwarded one: the agent
 * dials the server it is connected to, which must be the token's. */
static int host_link(struct kc_server *srv, const char *host, struct kc_hostlink **ret,
		     struct kc_error *err)
{
	if (srv->alink && kc_agentlink_get(srv->alink, host, ret, err) == 0)
		return 0;
	kc_error_clear(err);
	if (kc_ha_elsewhere(srv, host, err) < 0)
		return -1;
	return kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected", host);
}

int kc_console_stream_open(struct kc_server *srv, const char *host, const char *vm,
			   struct kc_console_stream **ret, struct kc_error *err)
{
	pthread_once(&cond_once, cond_init);
	struct kc_hostlink *hl = NULL;
	if (host_link(srv, host, &hl, err) < 0)
		return -1;
	struct kc_console_stream *st = NULL;
	if (stream_new(srv, host, &st, err) < 0) {
		kc_hostlink_release(hl);
		return -1;
	}
	_cleanup_json_ json_t *args = json_pack("{s:s,s:s}", "name", vm, "token", st->token);
	_cleanup_json_ json_t *result = NULL;
	int rc = args ? hl->ops->call(hl, "console.open", args, &result, err)
		      : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	kc_hostlink_release(hl);
	long long deadline = mono_ms() + ARRIVAL_MS;
	if (deadline > st->expires_ms)
		deadline = st->expires_ms;
	/* Even after a failed call: a connection that claimed the token
	 * meanwhile is closed with the entry. */
	bool claimed = wait_claimed(st, rc == 0 ? deadline : 0);
	if (rc == 0 && !claimed)
		rc = kc_error_set(err, KC_ERR_TIMEOUT,
				  "host \"%s\" did not open the console stream of %s in time", host,
				  vm);
	if (rc < 0) {
		stream_free(st);
		return -1;
	}
	atomic_store(&st->last_ms, mono_ms());
	*ret = st;
	return 0;
}

ssize_t kc_console_stream_read(struct kc_console_stream *st, void *buf, size_t cap, int timeout_ms)
{
	struct kc_error e = {0};
	size_t n = 0;
	if (mono_ms() - atomic_load(&st->last_ms) > KC_CONSOLE_IDLE_S * 1000LL)
		return -1;
	if (kc_tls_recv_bytes(st->tls, buf, cap, timeout_ms, &n, &e) < 0)
		return e.code == KC_ERR_TIMEOUT ? 0 : -1;
	if (n == 0)
		return -1;
	atomic_store(&st->last_ms, mono_ms());
	return (ssize_t)n;
}

int kc_console_stream_write(struct kc_console_stream *st, const void *buf, size_t len)
{
	struct kc_error e = {0};
	if (kc_tls_send_bytes(st->tls, buf, len, &e) < 0)
		return -1;
	atomic_store(&st->last_ms, mono_ms());
	return 0;
}

void kc_console_stream_close(struct kc_console_stream *st)
{
	if (st)
		stream_free(st);
}

bool kc_console_stream_is_stream(const json_t *msg)
{
	const char *type = json_string_value(json_object_get(msg, "type"));
	return type && strcmp(type, "stream") == 0;
}

/* Both are TOKEN_HEX characters: no early exit on the first difference. */
static bool token_equal(const char *a, const char *b)
{
	unsigned char d = 0;
	for (size_t i = 0; i < TOKEN_HEX; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int kc_console_stream_accept(struct kc_server *srv, const char *host, struct kc_tls_link *tls,
			     const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "token", NULL};
	const json_t *v = json_object_get(msg, "v");
	const char *token = NULL;

	pthread_once(&cond_once, cond_init);
	if (!json_is_integer(v) || json_integer_value(v) != 1)
		return kc_error_set(err, KC_ERR_INVALID, "stream: \"v\" must be 1");
	if (kc_json_check_keys(msg, keys, "stream", err) < 0 ||
	    kc_json_get_string(msg, "token", true, TOKEN_HEX, &token, err) < 0)
		return -1;
	if (strlen(token) != TOKEN_HEX)
		return kc_error_set(err, KC_ERR_FORBIDDEN, "stream: unknown or expired token");

	long long now = mono_ms();
	pthread_mutex_lock(&lock);
	struct kc_console_stream *st = streams;
	while (st && !(st->srv == srv && token_equal(st->token, token)))
		st = st->next;
	int rc = 0;
	if (!st || !st->waiting || st->tls || now > st->expires_ms)
		rc = kc_error_set(err, KC_ERR_FORBIDDEN, "stream: unknown or expired token");
	else if (strcmp(st->host, host) != 0)
		/* A token is good only from the host it was made for. */
		rc = kc_error_set(err, KC_ERR_FORBIDDEN, "stream: the token is not host \"%s\"'s",
				  host);
	if (rc == 0) {
		st->tls = tls;
		st->waiting = false;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}
