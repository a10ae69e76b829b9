/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peerlink.c - host calls forwarded between servers (peerlink.h).
 *
 * Calling side: struct peer is one connection to one server.  It is
 * reference counted: the list of live peers holds one reference, its
 * reader thread one, each hostlink handed out one; the last closes the TLS
 * link.  The reader thread receives responses and heartbeats and sends
 * this side's heartbeats; callers send their requests (tlslink serialises
 * sends) and wait on pl->cond.  Everything shared is under pl->lock.
 *
 * Receiving side: kc_peerlink_serve() runs in the agent listener's
 * connection thread; each request gets a detached worker thread, counted
 * so that the connection outlives its workers.
 */
#include "peerlink.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agentlink.h"
#include "cleanup.h"
#include "ha.h"
#include "hostlink.h"
#include "json_util.h"
#include "tcpconnect.h"
#include "pending.h"
#include "server.h"
#include "tlslink.h"
#include "validate.h"

#define CONNECT_MS   5000
#define HELLO_MS     10000
#define THREAD_STACK (512 * 1024)
#define OP_MAX	     64
#define ENDPOINT_MAX 300
/* The holder waits kc_hostlink_timeout_s() for its agent; the caller waits
 * a little longer, so that the holder's own timeout error comes back. */
#define FORWARD_SLACK_S 15

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int check_v1(const json_t *msg, const char *const *keys, const char *what,
		    struct kc_error *err)
{
	json_t *v = json_object_get(msg, "v");

	if (!json_is_integer(v) || json_integer_value(v) != 1)
		return kc_error_set(err, KC_ERR_INVALID, "%s: \"v\" must be 1", what);
	return kc_json_check_keys(msg, keys, what, err);
}

static int send_heartbeat(struct kc_tls_link *tls, struct kc_error *err)
{
	_cleanup_json_ json_t *hb = json_pack("{s:i,s:s,s:I}", "v", 1, "type", "heartbeat", "time",
					      (json_int_t)time(NULL));

	if (!hb)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_tls_send_json(tls, hb, err);
}

static int check_heartbeat(const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "time", NULL};
	json_t *t = json_object_get(msg, "time");

	if (check_v1(msg, keys, "heartbeat", err) < 0)
		return -1;
	if (!json_is_number(t) && !json_is_string(t))
		return kc_error_set(err, KC_ERR_INVALID, "heartbeat: \"time\" missing");
	return 0;
}

/* ================= calling side ================= */

enum peer_state { PEER_CONNECTING, PEER_LIVE, PEER_CLOSED };

struct peer {
	struct kc_peerlink *pl;
	char *endpoint;
	int refs;
	enum peer_state state;
	struct kc_error conn_err; /* why connecting failed */
	struct kc_tls_link *tls;
	unsigned hb; /* the receiver's heartbeat interval (peer-welcome) */
	struct kc_pending_list pending;
	struct peer *next;
};

struct kc_peerlink {
	struct kc_server *srv;
	struct kc_tls_creds *creds;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* responses, state changes, reader exits */
	bool stopping;
	unsigned n_readers;
	struct peer *peers; /* connecting or live */
};

/* One hostlink: a host reached through a peer. */
struct peer_link {
	struct kc_hostlink base; /* first: a hostlink pointer is a peer_link pointer */
	struct peer *p;
	char *host;
};

static void peer_free(struct peer *p)
{
	kc_tls_close(p->tls);
	free(p->endpoint);
	free(p);
}

/* Under pl->lock: drops n references, true if that was the last. */
static bool peer_drop_locked(struct peer *p, int n)
{
	p->refs -= n;
	return p->refs == 0;
}

static void peer_unlink_locked(struct kc_peerlink *pl, struct peer *p)
{
	for (struct peer **pp = &pl->peers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static int split_endpoint(const char *ep, char **ret_host, char **ret_port, struct kc_error *err)
{
	const char *host = ep, *colon;
	size_t hlen;

	if (!ep || strlen(ep) > ENDPOINT_MAX)
		goto bad;
	if (ep[0] == '[') {
		const char *close = strchr(ep, ']');
		if (!close || close[1] != ':')
			goto bad;
		host = ep + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(ep, ':');
		if (!colon || strchr(ep, ':') != colon)
			goto bad;
		hlen = (size_t)(colon - ep);
	}
	if (hlen == 0 || !colon[1])
		goto bad;
	*ret_host = strndup(host, hlen);
	*ret_port = strdup(colon + 1);
	if (!*ret_host || !*ret_port)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
bad:
	return kc_error_set(err, KC_ERR_INTERNAL, "bad server endpoint \"%.80s\" in the database",
			    ep ? ep : "");
}

/* TCP, TLS, peer-hello and the peer's peer-welcome. */
static int peer_connect(struct kc_peerlink *pl, const char *endpoint, struct kc_tls_link **ret_tls,
			unsigned *ret_hb, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "heartbeat_s", NULL};
	_cleanup_free_ char *host = NULL, *port = NULL;
	_cleanup_json_ json_t *hello = json_pack("{s:i,s:s}", "v", 1, "type", "peer-hello");
	_cleanup_json_ json_t *welcome = NULL;
	struct kc_tls_link *tls = NULL;
	const char *type = NULL;
	uint64_t hb = 0;
	int fd = -1;

	if (!hello)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (split_endpoint(endpoint, &host, &port, err) < 0 ||
	    kc_tcp_connect(host, port, CONNECT_MS, NULL, NULL, &fd, err) < 0)
		return -1;
	if (kc_tls_connect(pl->creds, fd, host, CONNECT_MS, &tls, err) < 0) {
		close(fd);
		return -1;
	}
	/* TLS 1.3: a refused client certificate shows in the first read. */
	if (kc_tls_send_json(tls, hello, err) < 0 ||
	    kc_tls_recv_json(tls, HELLO_MS, &welcome, err) < 0 ||
	    kc_json_get_string(welcome, "type", true, 32, &type, err) < 0)
		goto fail;
	if (strcmp(type, "peer-welcome") != 0) {
		kc_error_set(err, KC_ERR_INVALID, "expected peer-welcome, got \"%.32s\"", type);
		goto fail;
	}
	if (check_v1(welcome, keys, "peer-welcome", err) < 0 ||
	    kc_json_get_uint(welcome, "heartbeat_s", true, 1, 3600, &hb, err) < 0)
		goto fail;
	*ret_tls = tls;
	*ret_hb = (unsigned)hb;
	return 0;
fail:
	kc_tls_close(tls);
	return -1;
}

static int handle_response(struct peer *p, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "id", "result", "error", NULL};
	struct kc_peerlink *pl = p->pl;
	json_t *result = NULL;
	struct kc_error e = {0};
	uint64_t id = 0;

	if (check_v1(msg, keys, "response", err) < 0 ||
	    kc_pending_parse_response(msg, &id, &result, &e, err) < 0)
		return -1;
	pthread_mutex_lock(&pl->lock);
	if (kc_pending_complete(kc_pending_find(&p->pending, id), result, &e))
		pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	return 0;
}

/* Reads responses and heartbeats until the link fails or the peer falls
 * silent for three intervals; sends ours.  The receiver's interval rules
 * both directions, as the server's does for agents. */
static void *reader_main(void *arg)
{
	struct peer *p = arg;
	struct kc_peerlink *pl = p->pl;
	double last_rx = mono_s(), last_tx = mono_s();
	struct kc_error err = {0};

	for (;;) {
		_cleanup_json_ json_t *msg = NULL;
		struct kc_error e = {0};
		if (kc_tls_recv_json(p->tls, (int)p->hb * 1000, &msg, &e) < 0) {
			if (e.code != KC_ERR_TIMEOUT) {
				err = e;
				break;
			}
		} else {
			last_rx = mono_s();
			const char *type = json_string_value(json_object_get(msg, "type"));
			int rc;
			if (!type)
				rc = kc_error_set(&err, KC_ERR_INVALID, "message without a type");
			else if (strcmp(type, "response") == 0)
				rc = handle_response(p, msg, &err);
			else if (strcmp(type, "heartbeat") == 0)
				rc = check_heartbeat(msg, &err);
			else
				rc = kc_error_set(&err, KC_ERR_INVALID,
						  "unexpected message type \"%.32s\"", type);
			if (rc < 0)
				break;
		}
		double now = mono_s();
		if (now - last_rx > 3.0 * p->hb) {
			kc_error_set(&err, KC_ERR_TIMEOUT, "no message for %u s", 3 * p->hb);
			break;
		}
		if (now - last_tx >= p->hb) {
			if (send_heartbeat(p->tls, &err) < 0)
				break;
			last_tx = now;
		}
	}
	kc_tls_shutdown(p->tls);

	pthread_mutex_lock(&pl->lock);
	if (!pl->stopping)
		fprintf(stderr, "peer link: server %s: closed: %s\n", p->endpoint, err.message);
	p->state = PEER_CLOSED;
	peer_unlink_locked(pl, p);
	/* The list's reference and ours. */
	bool last = peer_drop_locked(p, 2);
	pl->n_readers--;
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	if (last)
		peer_free(p);
	return NULL;
}

static int peer_call(struct kc_hostlink *link, const char *op, const json_t *args,
		     json_t **ret_result, struct kc_error *err)
{
	struct peer_link *l = (struct peer_link *)link;
	struct peer *p = l->p;
	struct kc_peerlink *pl = p->pl;
	struct kc_pending q = {0};
	struct kc_error e = {0};
	unsigned timeout_s = kc_hostlink_timeout_s(op, args) + FORWARD_SLACK_S;

	pthread_mutex_lock(&pl->lock);
	if (p->state != PEER_LIVE) {
		pthread_mutex_unlock(&pl->lock);
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "host \"%s\": the link to server %s is closed", l->host,
				    p->endpoint);
	}
	kc_pending_add(&p->pending, &q);
	pthread_mutex_unlock(&pl->lock);

	_cleanup_json_ json_t *empty = json_object();
	_cleanup_json_ json_t *msg =
		json_pack("{s:i,s:s,s:I,s:s,s:s,s:O}", "v", 1, "type", "request", "id",
			  (json_int_t)q.id, "host", l->host, "op", op, "args", args ? args : empty);
	int rc = msg ? kc_tls_send_json(p->tls, msg, &e)
		     : kc_error_set(&e, KC_ERR_INTERNAL, "out of memory");

	pthread_mutex_lock(&pl->lock);
	if (rc == 0) {
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += timeout_s;
		while (!q.done && p->state == PEER_LIVE)
			if (pthread_cond_timedwait(&pl->cond, &pl->lock, &dl) == ETIMEDOUT)
				break;
	}
	kc_pending_remove(&p->pending, &q);
	bool closed = p->state != PEER_LIVE;
	pthread_mutex_unlock(&pl->lock);

	if (rc < 0) {
		if (e.code == KC_ERR_TOO_LARGE || e.code == KC_ERR_INTERNAL) {
			*err = e;
			return -1;
		}
		/* A send that failed leaves the stream broken: drop it. */
		kc_tls_shutdown(p->tls);
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "host \"%s\": link to server %s lost: %s", l->host, p->endpoint,
				    e.message);
	}
	if (q.done)
		return kc_pending_outcome(&q, ret_result, err);
	if (closed)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "host \"%s\": link to server %s lost during %s", l->host,
				    p->endpoint, op);
	return kc_error_set(err, KC_ERR_TIMEOUT,
			    "host \"%s\" (through server %s) did not answer %s within %u s",
			    l->host, p->endpoint, op, timeout_s);
}

static void peer_release(struct kc_hostlink *link)
{
	struct peer_link *l = (struct peer_link *)link;
	struct kc_peerlink *pl = l->p->pl;

	pthread_mutex_lock(&pl->lock);
	bool last = peer_drop_locked(l->p, 1);
	pthread_mutex_unlock(&pl->lock);
	if (last)
		peer_free(l->p);
	free(l->host);
	free(l);
}

static const struct kc_hostlink_ops peer_ops = {
	.call = peer_call,
	.release = peer_release,
};

/* Under pl->lock: the live or connecting peer at endpoint, made (state
 * PEER_CONNECTING, *ret_new true) if there is none. */
static struct peer *peer_find_or_add(struct kc_peerlink *pl, const char *endpoint, bool *ret_new)
{
	*ret_new = false;
	for (struct peer *p = pl->peers; p; p = p->next)
		if (p->state != PEER_CLOSED && strcmp(p->endpoint, endpoint) == 0)
			return p;
	struct peer *p = calloc(1, sizeof(*p));
	if (!p || !(p->endpoint = strdup(endpoint))) {
		free(p);
		return NULL;
	}
	p->pl = pl;
	p->refs = 1; /* the list's */
	p->state = PEER_CONNECTING;
	p->next = pl->peers;
	pl->peers = p;
	*ret_new = true;
	return p;
}

/* Connects p (PEER_CONNECTING, made by this thread) and starts its reader. */
static void peer_establish(struct kc_peerlink *pl, struct peer *p)
{
	struct kc_tls_link *tls = NULL;
	struct kc_error e = {0};
	pthread_attr_t attr;
	unsigned hb = 0;
	pthread_t t;

	int rc = peer_connect(pl, p->endpoint, &tls, &hb, &e);
	pthread_mutex_lock(&pl->lock);
	if (rc == 0 && pl->stopping)
		rc = kc_error_set(&e, KC_ERR_UNAVAILABLE, "the server is stopping");
	if (rc == 0) {
		p->tls = tls;
		tls = NULL;
		p->hb = hb;
		p->state = PEER_LIVE;
		p->refs++; /* the reader's */
		pl->n_readers++;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		if (pthread_create(&t, &attr, reader_main, p) != 0) {
			p->refs--;
			pl->n_readers--;
			rc = kc_error_set(&e, KC_ERR_INTERNAL, "cannot start a peer link thread");
		}
		pthread_attr_destroy(&attr);
	}
	if (rc < 0) {
		p->state = PEER_CLOSED;
		p->conn_err = e;
		peer_unlink_locked(pl, p);
		/* The list's reference; the caller still holds its own. */
		p->refs--;
	} else {
		fprintf(stderr, "peer link: connected to server %s\n", p->endpoint);
	}
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	kc_tls_close(tls);
}

int kc_peerlink_get(struct kc_peerlink *pl, const char *endpoint, const char *host,
		    struct kc_hostlink **ret, struct kc_error *err)
{
	struct peer_link *l = calloc(1, sizeof(*l));
	bool is_new = false;

	if (!l || !(l->host = strdup(host))) {
		free(l);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	l->base.ops = &peer_ops;
	pthread_mutex_lock(&pl->lock);
	struct peer *p = pl->stopping ? NULL : peer_find_or_add(pl, endpoint, &is_new);
	if (!p) {
		bool stopping = pl->stopping;
		pthread_mutex_unlock(&pl->lock);
		free(l->host);
		free(l);
		return stopping ? kc_error_set(err, KC_ERR_UNAVAILABLE, "the server is stopping")
				: kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	p->refs++; /* ours, kept by the link or dropped below */
	pthread_mutex_unlock(&pl->lock);

	if (is_new)
		peer_establish(pl, p);

	pthread_mutex_lock(&pl->lock);
	/* Another caller is connecting: one connection per peer, not one each. */
	while (p->state == PEER_CONNECTING)
		pthread_cond_wait(&pl->cond, &pl->lock);
	bool live = p->state == PEER_LIVE;
	struct kc_error ce = p->conn_err;
	bool last = live ? false : peer_drop_locked(p, 1);
	pthread_mutex_unlock(&pl->lock);
	if (!live) {
		if (last)
			peer_free(p);
		free(l->host);
		free(l);
		return kc_error_set(
			err, KC_ERR_UNAVAILABLE,
			"host \"%s\" is connected to server %s, which cannot be reached: "
			"%s",
			host, endpoint, ce.message[0] ? ce.message : "link closed");
	}
	l->p = p;
	*ret = &l->base;
	return 0;
}

int kc_peerlink_start(struct kc_server *srv, struct kc_peerlink **ret, struct kc_error *err)
{
	_cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL;
	struct kc_peerlink *pl = calloc(1, sizeof(*pl));
	pthread_condattr_t ca_attr;

	if (!pl || !srv->pki_dir || asprintf(&ca, "%s/ca.crt", srv->pki_dir) < 0 ||
	    asprintf(&cert, "%s/peer.crt", srv->pki_dir) < 0 ||
	    asprintf(&key, "%s/peer.key", srv->pki_dir) < 0) {
		free(pl);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	if (kc_tls_creds_load(ca, cert, key, &pl->creds, err) < 0) {
		free(pl);
		return -1;
	}
	pl->srv = srv;
	pthread_mutex_init(&pl->lock, NULL);
	pthread_condattr_init(&ca_attr);
	pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pl->cond, &ca_attr);
	pthread_condattr_destroy(&ca_attr);
	*ret = pl;
	return 0;
}

void kc_peerlink_stop(struct kc_peerlink *pl)
{
	if (!pl)
		return;
	pthread_mutex_lock(&pl->lock);
	pl->stopping = true;
	for (struct peer *p = pl->peers; p; p = p->next)
		if (p->tls)
			kc_tls_shutdown(p->tls);
	while (pl->n_readers > 0 || pl->peers)
		pthread_cond_wait(&pl->cond, &pl->lock);
	pthread_mutex_unlock(&pl->lock);
	kc_tls_creds_free(pl->creds);
	pthread_cond_destroy(&pl->cond);
	pthread_mutex_destroy(&pl->lock);
	free(pl);
}

/* ================= receiving side ================= */

struct serving {
	struct kc_server *srv;
	struct kc_tls_link *tls;
	char *from; /* the peer's endpoint, for logs */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight;
};

struct work {
	struct serving *s;
	uint64_t id;
	char *host, *op;
	json_t *args;
};

static int send_response(struct kc_tls_link *tls, uint64_t id, json_t *result,
			 const struct kc_error *e, struct kc_error *err)
{
	_cleanup_json_ json_t *msg =
		result ? json_pack("{s:i,s:s,s:I,s:O}", "v", 1, "type", "response", "id",
				   (json_int_t)id, "result", result)
		       : json_pack("{s:i,s:s,s:I,s:{s:s,s:s}}", "v", 1, "type", "response", "id",
				   (json_int_t)id, "error", "code", kc_errcode_name(e->code),
				   "message", e->message);
	if (!msg)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_tls_send_json(tls, msg, err);
}

static void work_free(struct work *w)
{
	free(w->host);
	free(w->op);
	json_decref(w->args);
	free(w);
}

static void *work_main(void *arg)
{
	struct work *w = arg;
	struct serving *s = w->s;
	struct kc_hostlink *link = NULL;
	_cleanup_json_ json_t *result = NULL;
	struct kc_error e = {0}, se = {0};

	/* Only this server's own links: a forwarded call is never forwarded. */
	if (kc_hostlink_get_own(s->srv, w->host, &link, &e) == 0) {
		link->ops->call(link, w->op, w->args, &result, &e);
		kc_hostlink_release(link);
	}
	if (!result && !kc_error_is_set(&e))
		kc_error_set(&e, KC_ERR_INTERNAL, "host \"%s\": %s failed without a reason",
			     w->host, w->op);
	if (send_response(s->tls, w->id, result, &e, &se) < 0 && se.code == KC_ERR_TOO_LARGE) {
		struct kc_error big = {0};
		kc_error_set(&big, KC_ERR_TOO_LARGE,
			     "host \"%s\": the result of %s is too large "
			     "to forward",
			     w->host, w->op);
		send_response(s->tls, w->id, NULL, &big, &se);
	}
	pthread_mutex_lock(&s->lock);
	s->inflight--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	work_free(w);
	return NULL;
}

/* Validates one request and starts its worker (or answers 503 at once). */
static int handle_request(struct serving *s, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "id", "host", "op", "args", NULL};
	const char *host = NULL, *op = NULL;
	json_t *args = json_object_get(msg, "args");
	uint64_t id = 0;

	if (check_v1(msg, keys, "request", err) < 0 ||
	    kc_json_get_uint(msg, "id", true, 1, UINT64_MAX, &id, err) < 0 ||
	    kc_json_get_string(msg, "host", true, KC_NAME_MAX, &host, err) < 0 ||
	    kc_json_get_string(msg, "op", true, OP_MAX, &op, err) < 0 ||
	    kc_name_validate(host, "host name", err) < 0)
		return -1;
	if (!json_is_object(args))
		return kc_error_set(err, KC_ERR_INVALID, "request: \"args\" must be an object");

	pthread_mutex_lock(&s->lock);
	bool full = s->inflight >= KC_PEERLINK_MAX_INFLIGHT;
	if (!full)
		s->inflight++;
	pthread_mutex_unlock(&s->lock);
	if (full) {
		struct kc_error busy = {0};
		kc_error_set(&busy, KC_ERR_UNAVAILABLE,
			     "server busy: %d forwarded calls in flight; retry in a few seconds",
			     KC_PEERLINK_MAX_INFLIGHT);
		return send_response(s->tls, id, NULL, &busy, err);
	}

	struct work *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	pthread_t t;
	if (w) {
		w->s = s;
		w->id = id;
		w->host = strdup(host);
		w->op = strdup(op);
		w->args = json_deep_copy(args);
	}
	bool started = false;
	if (w && w->host && w->op && w->args) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		started = pthread_create(&t, &attr, work_main, w) == 0;
		pthread_attr_destroy(&attr);
	}
	if (started)
		return 0;
	if (w)
		work_free(w);
	pthread_mutex_lock(&s->lock);
	s->inflight--;
	pthread_mutex_unlock(&s->lock);
	struct kc_error oom = {0};
	kc_error_set(&oom, KC_ERR_INTERNAL, "cannot start a thread for the call");
	return send_response(s->tls, id, NULL, &oom, err);
}

static int peer_hello(struct serving *s, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", NULL};
	_cleanup_json_ json_t *msg = NULL;
	const char *type = NULL;

	if (kc_tls_recv_json(s->tls, HELLO_MS, &msg, err) < 0 ||
	    kc_json_get_string(msg, "type", true, 32, &type, err) < 0)
		return -1;
	if (strcmp(type, "peer-hello") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "the first message must be a peer-hello");
	if (check_v1(msg, keys, "peer-hello", err) < 0)
		return -1;
	unsigned hb = s->srv->heartbeat_s ? s->srv->heartbeat_s : KC_DEFAULT_HEARTBEAT_S;
	_cleanup_json_ json_t *w =
		json_pack("{s:i,s:s,s:i}", "v", 1, "type", "peer-welcome", "heartbeat_s", (int)hb);
	if (!w)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_tls_send_json(s->tls, w, err);
}

bool kc_peerlink_is_peer(struct kc_server *srv, const struct kc_tls_link *tls)
{
	const char *cn = NULL, *serial = NULL;

	kc_tls_peer(tls, &cn, &serial);
	return kc_ha_is_peer(srv, cn, serial, NULL);
}

void kc_peerlink_serve(struct kc_server *srv, struct kc_tls_link *tls, const char *addr)
{
	struct serving s = {.srv = srv, .tls = tls};
	const char *cn = NULL, *serial = NULL;
	struct kc_error err = {0};
	unsigned hb = srv->heartbeat_s ? srv->heartbeat_s : KC_DEFAULT_HEARTBEAT_S;

	kc_tls_peer(tls, &cn, &serial);
	if (!kc_ha_is_peer(srv, cn, serial, &s.from))
		return;
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	if (peer_hello(&s, &err) < 0) {
		fprintf(stderr, "peer link: server %s (%s): closed before peer-hello: %s\n", s.from,
			addr, err.message);
		goto out;
	}
	fprintf(stderr, "peer link: server %s connected from %s\n", s.from, addr);

	double last_rx = mono_s(), last_tx = mono_s();
	for (;;) {
		_cleanup_json_ json_t *msg = NULL;
		struct kc_error e = {0};
		if (kc_tls_recv_json(tls, (int)hb * 1000, &msg, &e) < 0) {
			if (e.code != KC_ERR_TIMEOUT) {
				err = e;
				break;
			}
		} else {
			last_rx = mono_s();
			const char *type = json_string_value(json_object_get(msg, "type"));
			int rc;
			if (!type)
				rc = kc_error_set(&err, KC_ERR_INVALID, "message without a type");
			else if (strcmp(type, "request") == 0)
				rc = handle_request(&s, msg, &err);
			else if (strcmp(type, "heartbeat") == 0)
				rc = check_heartbeat(msg, &err);
			else
				rc = kc_error_set(&err, KC_ERR_INVALID,
						  "unexpected message type \"%.32s\"", type);
			if (rc < 0)
				break;
		}
		double now = mono_s();
		if (now - last_rx > 3.0 * hb) {
			kc_error_set(&err, KC_ERR_TIMEOUT, "no message for %u s", 3 * hb);
			break;
		}
		if (now - last_tx >= hb) {
			if (send_heartbeat(tls, &err) < 0)
				break;
			last_tx = now;
		}
	}
	fprintf(stderr, "peer link: server %s: closed: %s\n", s.from, err.message);

out:
	/* Workers still answering find the link shut and give up quickly. */
	kc_tls_shutdown(tls);
	pthread_mutex_lock(&s.lock);
	while (s.inflight > 0)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	free(s.from);
}
