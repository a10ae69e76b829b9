/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentlink.c - the server's end of docs/protocol.md.
 *
 * Threads: one accepts, one per connection runs the handshake and then
 * reads every frame of that agent (responses, events, heartbeats) and sends
 * the server's heartbeats; API threads send requests on the link (tlslink
 * serialises sends) and wait on one condition variable for their response.
 * One more thread marks silent hosts Disconnected, then Down.
 *
 * A connection is reference counted: its thread holds one reference, each
 * caller of kc_agentlink_get() another, and the last one closes the TLS
 * link, so that a call in flight never touches a freed link.  Everything
 * shared is under al->lock.
 */
#include "agentlink.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "console_stream.h"
#include "db.h"
#include "ha.h"
#include "hostlink.h"
#include "json_util.h"
#include "hostfw_push.h"
#include "peerlink.h"
#include "pending.h"
#include "reconcile.h"
#include "scheduler.h"
#include "server.h"
#include "tlslink.h"
#include "validate.h"
#include "volumes.h"

#define HANDSHAKE_MS	  10000
#define HELLO_MS	  30000
#define THREAD_STACK	  (512 * 1024)
#define AGENT_VERSION_MAX 64
/* A create may still be running on the agent if its record is younger. */
#define CREATE_GRACE_S 300
/* Names in a hello's "creating" (an agent runs at most 64 creates). */
#define CREATING_MAX 1024
/* At most this many server endpoints go to an agent (its own limit). */
#define AGENT_ENDPOINTS_MAX 16

struct conn {
	struct kc_hostlink base; /* first: a hostlink pointer is a conn pointer */
	struct kc_agentlink *al;
	int refs;
	int fd; /* until the TLS link owns it */
	struct kc_tls_link *tls;
	char *host;
	bool registered; /* the host's current connection */
	bool welcomed;	 /* welcome sent: other messages may follow */
	bool closed;
	struct kc_pending_list pending;
	char peer[64]; /* client address, for logs */
	struct conn *next;
};

struct kc_agentlink {
	struct kc_server *srv;
	struct kc_tls_creds *creds;
	int fd;
	int port;
	unsigned hb, down_after;
	pthread_t accept_thr, stale_thr;
	bool accept_started, stale_started;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* responses, closed links, thread exits, stop */
	bool stopping;
	unsigned n_conns;
	struct conn *conns; /* every connection with a thread */
	json_t *last_eps;   /* the endpoints last pushed (staleness thread only) */
};

static const struct kc_hostlink_ops conn_ops;

static void mono_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static double mono_s(void)
{
	struct timespec ts;

	mono_now(&ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void conn_unref(struct conn *c)
{
	struct kc_agentlink *al = c->al;

	pthread_mutex_lock(&al->lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&al->lock);
	if (!last)
		return;
	if (c->tls)
		kc_tls_close(c->tls);
	else if (c->fd >= 0)
		close(c->fd);
	free(c->host);
	free(c);
}

/* ---- calls (API threads) ---- */

static int conn_call(struct kc_hostlink *link, const char *op, const json_t *args,
		     json_t **ret_result, struct kc_error *err)
{
	struct conn *c = (struct conn *)link;
	struct kc_agentlink *al = c->al;
	struct kc_pending p = {0};
	struct kc_error e = {0};
	unsigned timeout_s = kc_hostlink_timeout_s(op, args);

	pthread_mutex_lock(&al->lock);
	if (c->closed) {
		pthread_mutex_unlock(&al->lock);
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected",
				    c->host);
	}
	kc_pending_add(&c->pending, &p);
	pthread_mutex_unlock(&al->lock);

	_cleanup_json_ json_t *empty = json_object();
	_cleanup_json_ json_t *msg =
		json_pack("{s:i,s:s,s:I,s:s,s:O}", "v", 1, "type", "request", "id",
			  (json_int_t)p.id, "op", op, "args", args ? args : empty);
	int rc = msg ? kc_tls_send_json(c->tls, msg, &e)
		     : kc_error_set(&e, KC_ERR_INTERNAL, "out of memory");

	pthread_mutex_lock(&al->lock);
	if (rc == 0) {
		struct timespec dl;
		mono_now(&dl);
		dl.tv_sec += timeout_s;
		while (!p.done && !c->closed)
			if (pthread_cond_timedwait(&al->cond, &al->lock, &dl) == ETIMEDOUT)
				break;
	}
	kc_pending_remove(&c->pending, &p);
	bool closed = c->closed;
	pthread_mutex_unlock(&al->lock);

	if (rc < 0) {
		if (e.code == KC_ERR_TOO_LARGE || e.code == KC_ERR_INTERNAL) {
			*err = e;
			return -1;
		}
		kc_tls_shutdown(c->tls);
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\": link lost: %s", c->host,
				    e.message);
	}
	if (p.done)
		return kc_pending_outcome(&p, ret_result, err);
	if (closed)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "host \"%s\": connection lost during %s", c->host, op);
	return kc_error_set(err, KC_ERR_TIMEOUT, "host \"%s\" did not answer %s within %u s",
			    c->host, op, timeout_s);
}

static void conn_release(struct kc_hostlink *link)
{
	conn_unref((struct conn *)link);
}

static const struct kc_hostlink_ops conn_ops = {
	.call = conn_call,
	.release = conn_release,
};

/* Under al->lock. */
static struct conn *find_live(struct kc_agentlink *al, const char *host)
{
	for (struct conn *c = al->conns; c; c = c->next)
		if (c->registered && !c->closed && c->host && strcmp(c->host, host) == 0)
			return c;
	return NULL;
}

int kc_agentlink_get(struct kc_agentlink *al, const char *host, struct kc_hostlink **ret,
		     struct kc_error *err)
{
	pthread_mutex_lock(&al->lock);
	struct conn *c = find_live(al, host);
	if (c)
		c->refs++;
	pthread_mutex_unlock(&al->lock);
	if (!c)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected", host);
	*ret = &c->base;
	return 0;
}

bool kc_agentlink_connected(struct kc_agentlink *al, const char *host)
{
	pthread_mutex_lock(&al->lock);
	bool up = find_live(al, host) != NULL;
	pthread_mutex_unlock(&al->lock);
	return up;
}

json_t *kc_agentlink_hosts(struct kc_agentlink *al)
{
	json_t *a = json_array();

	pthread_mutex_lock(&al->lock);
	for (struct conn *c = al->conns; a && c; c = c->next)
		if (c->registered && !c->closed && c->host)
			json_array_append_new(a, json_string(c->host));
	pthread_mutex_unlock(&al->lock);
	return a;
}

void kc_agentlink_disconnect(struct kc_agentlink *al, const char *host)
{
	pthread_mutex_lock(&al->lock);
	for (struct conn *c = al->conns; c; c = c->next) {
		if (c->host && strcmp(c->host, host) == 0 && c->tls) {
			c->registered = false;
			kc_tls_shutdown(c->tls);
		}
	}
	pthread_mutex_unlock(&al->lock);
}

int kc_agentlink_port(const struct kc_agentlink *al)
{
	return al->port;
}

/* ---- one connection (its own thread) ---- */

static bool is_revoked(const char *serial, void *opaque)
{
	struct kc_agentlink *al = opaque;
	struct kc_error e = {0};
	bool revoked = true;

	/* A database that cannot answer refuses: fail closed. */
	if (kc_db_cert_is_revoked(al->srv->db, serial, &revoked, &e) < 0) {
		fprintf(stderr, "agent link: revocation check failed: %s\n", e.message);
		return true;
	}
	return revoked;
}

/* The certificate's CN must name a host whose current certificate it is. */
static int identify(struct conn *c, struct kc_error *err)
{
	const char *cn = NULL, *serial = NULL;
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	kc_tls_peer(c->tls, &cn, &serial);
	if (!cn || !serial || kc_name_validate(cn, "host name", &e) < 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN, "certificate without a valid host name");
	if (kc_db_host_get(c->al->srv->db, cn, &row, &e) < 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN, "certificate CN \"%s\": %s", cn,
				    e.message);
	const char *want = json_string_value(json_object_get(row, "cert_serial"));
	if (!want || strcmp(want, serial) != 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN,
				    "certificate %s is not host \"%s\"'s current certificate",
				    serial, cn);
	c->host = strdup(cn);
	if (!c->host)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

static int check_v1(const json_t *msg, const char *const *keys, const char *what,
		    struct kc_error *err)
{
	json_t *v = json_object_get(msg, "v");

	if (!json_is_integer(v) || json_integer_value(v) != 1)
		return kc_error_set(err, KC_ERR_INVALID, "%s: \"v\" must be 1", what);
	return kc_json_check_keys(msg, keys, what, err);
}

/* Does the hello's "creating" list (NULL: an agent too old to send one)
 * leave out `name`?  Only then is a young "creating" record known dead. */
static bool not_in_flight(const json_t *creating, const char *name)
{
	if (!creating)
		return false;
	for (size_t i = 0; i < json_array_size(creating); i++) {
		const char *n = json_string_value(json_array_get(creating, i));
		if (n && strcmp(n, name) == 0)
			return false;
	}
	return true;
}

/* The record-keeping of a hello: the reported domains and creates in
 * flight against the records of this host, by the rules of reconcile.c
 * (see docs/protocol.md). */
static void reconcile_host(struct kc_server *srv, const char *host, const json_t *domains,
			   const json_t *creating)
{
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *by_name = kc_index_by_name(domains);
	struct kc_error e = {0};
	char grace[21];
	size_t i;
	json_t *v;

	if (!by_name || kc_db_vm_list(srv->db, NULL, &rows, &e) < 0) {
		fprintf(stderr, "reconcile: host %s: %s\n", host,
			e.message[0] ? e.message : "out of memory");
		return;
	}
	kc_db_time_from_now(-CREATE_GRACE_S, grace);
	json_array_foreach(rows, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *state = json_string_value(json_object_get(v, "state"));
		const char *rhost = json_string_value(json_object_get(v, "host"));
		const char *created = json_string_value(json_object_get(v, "created_at"));
		const json_t *dom = name ? json_object_get(by_name, name) : NULL;

		kc_error_clear(&e);
		if (!name || !state || !rhost || strcmp(rhost, host) != 0)
			continue;
		if (strcmp(state, "creating") == 0) {
			if (dom) {
				const char *uuid = json_string_value(json_object_get(dom, "uuid"));
				const char *st = json_string_value(json_object_get(dom, "state"));
				if (kc_db_vm_update(srv->db, name, uuid, st ? st : "unknown", &e) ==
				    0)
					fprintf(stderr,
						"reconcile: host %s: VM %s: create was interrupted "
						"but the domain exists; kept\n",
						host, name);
			} else if ((created && strcmp(created, grace) < 0) ||
				   not_in_flight(creating, name)) {
				if (kc_db_vm_delete(srv->db, name, &e) == 0)
					fprintf(stderr,
						"reconcile: host %s: VM %s: create was "
						"interrupted; "
						"record removed\n",
						host, name);
			}
		} else {
			const char *st =
				dom ? json_string_value(json_object_get(dom, "state")) : "missing";
			if (st && st[0])
				kc_db_vm_note_state(srv->db, name, st, &e);
		}
		if (kc_error_is_set(&e))
			fprintf(stderr, "reconcile: host %s: VM %s: %s\n", host, name, e.message);
	}
}

/* Every live server's agent endpoint, this one first, as agents take them
 * (docs/protocol.md): at most AGENT_ENDPOINTS_MAX.  NULL if there is none
 * to tell (an empty list would make agents forget every other server). */
static json_t *agent_endpoints(struct kc_server *srv)
{
	json_t *eps = kc_ha_agent_endpoints(srv);

	while (eps && json_array_size(eps) > AGENT_ENDPOINTS_MAX)
		json_array_remove(eps, AGENT_ENDPOINTS_MAX);
	if (eps && json_array_size(eps) == 0) {
		json_decref(eps);
		eps = NULL;
	}
	return eps;
}

static int handle_hello(struct conn *c, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v",	       "type", "agent_version", "facts", "domains",
					   "creating", NULL};
	struct kc_agentlink *al = c->al;
	struct kc_server *srv = al->srv;
	const char *type = json_string_value(json_object_get(msg, "type"));
	const char *version = NULL;

	if (!type || strcmp(type, "hello") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "the first message must be a hello");
	if (check_v1(msg, keys, "hello", err) < 0 ||
	    kc_json_get_string(msg, "agent_version", true, AGENT_VERSION_MAX, &version, err) < 0)
		return -1;
	json_t *facts = json_object_get(msg, "facts");
	json_t *domains = json_object_get(msg, "domains");
	if (!json_is_object(facts) || !json_is_array(domains))
		return kc_error_set(err, KC_ERR_INVALID,
				    "hello: \"facts\" must be an object and \"domains\" an array");
	json_t *creating = json_object_get(msg, "creating");
	if (creating && (!json_is_array(creating) || json_array_size(creating) > CREATING_MAX))
		return kc_error_set(err, KC_ERR_INVALID,
				    "hello: \"creating\" must be an array of at most %d names",
				    CREATING_MAX);

	_cleanup_json_ json_t *f = json_deep_copy(facts);
	static const char *const own[] = {"name", "uuid", "accel", "accel_reason"};
	for (size_t i = 0; f && i < KC_ARRAY_SIZE(own); i++)
		json_object_del(f, own[i]);
	struct kc_db_host h = {
		.name = c->host,
		.uuid = json_string_value(json_object_get(facts, "uuid")),
		.facts = f,
		.accel = json_string_value(json_object_get(facts, "accel")),
		.accel_reason = json_string_value(json_object_get(facts, "accel_reason")),
	};
	if (kc_db_host_upsert(srv->db, &h, err) < 0 || kc_db_host_seen(srv->db, c->host, err) < 0 ||
	    kc_ha_host_connected(srv, c->host, err) < 0)
		return -1;

	/* The newest connection of a host wins: an agent that reconnects
	 * before the server noticed the old link die must not wait for it. */
	pthread_mutex_lock(&al->lock);
	for (struct conn *o = al->conns; o; o = o->next) {
		if (o != c && o->registered && o->host && strcmp(o->host, c->host) == 0) {
			o->registered = false;
			if (o->tls)
				kc_tls_shutdown(o->tls);
		}
	}
	c->registered = true;
	pthread_mutex_unlock(&al->lock);

	_cleanup_json_ json_t *welcome = json_pack("{s:i,s:s,s:s,s:i}", "v", 1, "type", "welcome",
						   "host", c->host, "heartbeat_s", (int)al->hb);
	json_t *eps = agent_endpoints(srv);
	if (!welcome || (eps && json_object_set_new(welcome, "endpoints", eps) < 0))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_tls_send_json(c->tls, welcome, err) < 0)
		return -1;
	pthread_mutex_lock(&al->lock);
	c->welcomed = true;
	pthread_mutex_unlock(&al->lock);
	fprintf(stderr, "agent link: host %s connected from %s (agent %s)\n", c->host, c->peer,
		version);
	reconcile_host(srv, c->host, domains, creating);
	/* Both ask the host: not on this thread. */
	char addr[46];
	kc_volume_reconcile_spawn(srv, c->host,
				  kc_hostfw_link_address(c->peer, addr) ? addr : NULL);
	/* Flags, not refusals (cpucheck.c): the scheduler avoids the host. */
	struct kc_error fe = {0};
	if (kc_cluster_cpu_check(srv->db, c->host, facts, &fe) < 0 ||
	    kc_note_unmanaged(srv->db, c->host, domains, &fe) < 0)
		fprintf(stderr, "agent link: host %s: flags: %s\n", c->host, fe.message);
	return 0;
}

static int handle_response(struct conn *c, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "id", "result", "error", NULL};
	struct kc_agentlink *al = c->al;
	uint64_t id = 0;
	json_t *result = NULL;
	struct kc_error e = {0};

	if (check_v1(msg, keys, "response", err) < 0 ||
	    kc_pending_parse_response(msg, &id, &result, &e, err) < 0)
		return -1;

	pthread_mutex_lock(&al->lock);
	struct kc_pending *p = kc_pending_find(&c->pending, id);
	if (kc_pending_complete(p, result, &e))
		pthread_cond_broadcast(&al->cond);
	pthread_mutex_unlock(&al->lock);
	if (!p)
		fprintf(stderr,
			"agent link: host %s: response to unknown or timed-out request %llu\n",
			c->host, (unsigned long long)id);
	return 0;
}

static int handle_event(struct conn *c, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "event", "vm", "state", NULL};
	const char *event = NULL, *vm = NULL, *state = NULL;
	struct kc_error e = {0};

	if (check_v1(msg, keys, "event", err) < 0 ||
	    kc_json_get_string(msg, "event", true, 64, &event, err) < 0 ||
	    kc_json_get_string(msg, "vm", false, 256, &vm, err) < 0 ||
	    kc_json_get_string(msg, "state", false, 64, &state, err) < 0)
		return -1;
	if (strcmp(event, "libvirt.connected") == 0 || strcmp(event, "libvirt.disconnected") == 0) {
		fprintf(stderr, "agent link: host %s: %s\n", c->host, event);
		return 0;
	}
	if (strcmp(event, "vm.state") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "event: unknown event \"%s\"", event);
	if (!vm || !state || kc_name_validate(vm, "VM name", err) < 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "event vm.state: needs \"vm\" and \"state\"");

	/* An agent speaks only for its own host's records. */
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_vm_get(c->al->srv->db, vm, &row, &e) < 0)
		return 0;
	const char *host = json_string_value(json_object_get(row, "host"));
	if (host && strcmp(host, c->host) == 0)
		kc_reconcile_event(vm, state, c->al->srv);
	return 0;
}

static int handle_heartbeat(struct conn *c, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "time", NULL};
	json_t *t = json_object_get(msg, "time");
	struct kc_error e = {0};

	if (check_v1(msg, keys, "heartbeat", err) < 0)
		return -1;
	if (!json_is_number(t) && !json_is_string(t))
		return kc_error_set(err, KC_ERR_INVALID, "heartbeat: \"time\" missing");
	if (kc_db_host_seen(c->al->srv->db, c->host, &e) < 0)
		fprintf(stderr, "agent link: host %s: %s\n", c->host, e.message);
	return 0;
}

static int send_heartbeat(struct conn *c, struct kc_error *err)
{
	_cleanup_json_ json_t *hb = json_pack("{s:i,s:s,s:I}", "v", 1, "type", "heartbeat", "time",
					      (json_int_t)time(NULL));

	if (!hb)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_tls_send_json(c->tls, hb, err);
}

/* Reads frames until the link fails, the agent falls silent for three
 * intervals, or a message breaks the protocol. */
static void serve(struct conn *c, struct kc_error *err)
{
	struct kc_agentlink *al = c->al;
	double last_rx = mono_s(), last_tx = mono_s();

	for (;;) {
		_cleanup_json_ json_t *msg = NULL;
		struct kc_error e = {0};

		if (kc_tls_recv_json(c->tls, (int)al->hb * 1000, &msg, &e) < 0) {
			if (e.code != KC_ERR_TIMEOUT) {
				*err = e;
				return;
			}
		} else {
			last_rx = mono_s();
			const char *type = json_string_value(json_object_get(msg, "type"));
			int rc;
			if (!type)
				rc = kc_error_set(err, KC_ERR_INVALID, "message without a type");
			else if (strcmp(type, "response") == 0)
				rc = handle_response(c, msg, err);
			else if (strcmp(type, "heartbeat") == 0)
				rc = handle_heartbeat(c, msg, err);
			else if (strcmp(type, "event") == 0)
				rc = handle_event(c, msg, err);
			else
				rc = kc_error_set(err, KC_ERR_INVALID,
						  "unexpected message type \"%.32s\"", type);
			if (rc < 0)
				return;
		}
		double now = mono_s();
		if (now - last_rx > 3.0 * al->hb) {
			kc_error_set(err, KC_ERR_TIMEOUT, "no message for %u s", 3 * al->hb);
			return;
		}
		if (now - last_tx >= al->hb) {
			if (send_heartbeat(c, err) < 0)
				return;
			last_tx = now;
		}
	}
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct kc_agentlink *al = c->al;
	struct kc_server *srv = al->srv;
	struct kc_tls_link *tls = NULL;
	struct kc_error e = {0};
	_cleanup_json_ json_t *hello = NULL;

	if (kc_tls_accept(al->creds, c->fd, HANDSHAKE_MS, is_revoked, al, &tls, &e) < 0) {
		fprintf(stderr, "agent link: %s: handshake refused: %s\n", c->peer, e.message);
		goto out;
	}
	pthread_mutex_lock(&al->lock);
	c->tls = tls;
	c->fd = -1;
	bool stopping = al->stopping;
	pthread_mutex_unlock(&al->lock);
	if (stopping)
		goto out;
	if (identify(c, &e) < 0) {
		/* Not a host: another server forwarding host calls (peerlink.c)? */
		if (kc_peerlink_is_peer(srv, tls)) {
			kc_peerlink_serve(srv, tls, c->peer);
			goto out;
		}
		fprintf(stderr, "agent link: %s: refused: %s\n", c->peer, e.message);
		goto out;
	}
	if (kc_tls_recv_json(tls, HELLO_MS, &hello, &e) == 0 &&
	    kc_console_stream_is_stream(hello)) {
		/* A console stream of this host (console_stream.c): the link
		 * is no longer ours once claimed. */
		pthread_mutex_lock(&al->lock);
		c->tls = NULL;
		pthread_mutex_unlock(&al->lock);
		if (kc_console_stream_accept(srv, c->host, tls, hello, &e) < 0) {
			fprintf(stderr, "agent link: host %s (%s): console stream refused: %s\n",
				c->host, c->peer, e.message);
			kc_tls_close(tls);
		}
		goto out;
	}
	if (kc_error_is_set(&e) || handle_hello(c, hello, &e) < 0) {
		fprintf(stderr, "agent link: host %s (%s): closed before hello: %s\n", c->host,
			c->peer, e.message);
		goto out;
	}
	serve(c, &e);
	fprintf(stderr, "agent link: host %s: closed: %s\n", c->host, e.message);

out:
	pthread_mutex_lock(&al->lock);
	bool was_current = c->registered;
	c->registered = false;
	c->closed = true;
	pthread_cond_broadcast(&al->cond);
	pthread_mutex_unlock(&al->lock);

	if (was_current) {
		/* Told at once rather than after three silent intervals; an
		 * admin's Maintenance stays, and so does a host that another
		 * server has taken over meanwhile (ha.c). */
		kc_ha_host_disconnected(srv, c->host);
	}

	pthread_mutex_lock(&al->lock);
	for (struct conn **pp = &al->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	al->n_conns--;
	pthread_cond_broadcast(&al->cond);
	pthread_mutex_unlock(&al->lock);
	conn_unref(c);
	return NULL;
}

/* ---- listener and staleness ---- */

static void *accept_main(void *arg)
{
	struct kc_agentlink *al = arg;
	pthread_attr_t attr;
	bool warned = false;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (;;) {
		struct pollfd pfd = {.fd = al->fd, .events = POLLIN};
		pthread_mutex_lock(&al->lock);
		bool stop = al->stopping;
		pthread_mutex_unlock(&al->lock);
		if (stop)
			break;
		if (poll(&pfd, 1, 250) <= 0)
			continue;
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(al->fd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));

		struct conn *c = calloc(1, sizeof(*c));
		pthread_mutex_lock(&al->lock);
		if (!c || al->n_conns >= KC_AGENTLINK_MAX_CONNS) {
			pthread_mutex_unlock(&al->lock);
			if (!warned)
				fprintf(stderr, "agent link: %d connections, refusing more\n",
					KC_AGENTLINK_MAX_CONNS);
			warned = true;
			free(c);
			close(fd);
			continue;
		}
		warned = false;
		c->base.ops = &conn_ops;
		c->al = al;
		c->refs = 1;
		c->fd = fd;
		if (sa.ss_family == AF_INET6) {
			char a[INET6_ADDRSTRLEN] = "?";
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, a, sizeof(a));
			snprintf(c->peer, sizeof(c->peer), "[%s]", a);
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, c->peer,
				  sizeof(c->peer));
		}
		c->next = al->conns;
		al->conns = c;
		al->n_conns++;
		pthread_mutex_unlock(&al->lock);

		pthread_t t;
		if (pthread_create(&t, &attr, conn_main, c) != 0) {
			pthread_mutex_lock(&al->lock);
			for (struct conn **pp = &al->conns; *pp; pp = &(*pp)->next)
				if (*pp == c) {
					*pp = c->next;
					break;
				}
			al->n_conns--;
			pthread_mutex_unlock(&al->lock);
			conn_unref(c);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

static void log_names(const json_t *names, const char *what)
{
	size_t i;
	json_t *n;

	json_array_foreach(names, i, n)
		fprintf(stderr, "agent link: host %s: %s\n", json_string_value(n), what);
}

/* Tells every welcomed agent the endpoint list when it differs from the
 * one last told (docs/protocol.md, "endpoints"). */
static void push_endpoints(struct kc_agentlink *al)
{
	json_t *eps = agent_endpoints(al->srv);

	if (!eps || (al->last_eps && json_equal(eps, al->last_eps))) {
		json_decref(eps);
		return;
	}
	json_decref(al->last_eps);
	al->last_eps = eps;
	_cleanup_json_ json_t *msg =
		json_pack("{s:i,s:s,s:O}", "v", 1, "type", "endpoints", "endpoints", eps);
	pthread_mutex_lock(&al->lock);
	struct conn **to = msg ? calloc(al->n_conns + 1, sizeof(*to)) : NULL;
	size_t n = 0;
	for (struct conn *c = al->conns; to && c; c = c->next) {
		if (c->welcomed && !c->closed && c->tls) {
			c->refs++;
			to[n++] = c;
		}
	}
	pthread_mutex_unlock(&al->lock);
	for (size_t i = 0; i < n; i++) {
		struct kc_error e = {0};
		/* A failed send breaks the link: its own thread notices. */
		kc_tls_send_json(to[i]->tls, msg, &e);
		conn_unref(to[i]);
	}
	free(to);
}

static void *stale_main(void *arg)
{
	struct kc_agentlink *al = arg;
	struct kc_server *srv = al->srv;

	pthread_mutex_lock(&al->lock);
	while (!al->stopping) {
		struct timespec dl;
		mono_now(&dl);
		dl.tv_sec += al->hb;
		pthread_cond_timedwait(&al->cond, &al->lock, &dl);
		if (al->stopping)
			break;
		pthread_mutex_unlock(&al->lock);

		struct kc_error e = {0};
		_cleanup_json_ json_t *disc = NULL;
		_cleanup_json_ json_t *down = NULL;
		char before[21];
		/* The embedded agent is this process: alive while libvirt is. */
		if (srv->agent && srv->host_name && kc_agent_is_connected(srv->agent))
			kc_db_host_seen(srv->db, srv->host_name, NULL);
		kc_ha_tick(srv);
		push_endpoints(al);
		kc_db_time_from_now(-3 * (long long)al->hb, before);
		if (kc_db_host_mark_stale(srv->db, before, false, &disc, &e) == 0)
			log_names(disc, "no heartbeat, Disconnected");
		kc_db_time_from_now(-3 * (long long)al->hb - al->down_after, before);
		if (kc_db_host_mark_stale(srv->db, before, true, &down, &e) == 0)
			log_names(down, "disconnected too long, Down");
		if (kc_error_is_set(&e))
			fprintf(stderr, "agent link: staleness check: %s\n", e.message);

		pthread_mutex_lock(&al->lock);
	}
	pthread_mutex_unlock(&al->lock);
	return NULL;
}

int kc_agentlink_start(struct kc_server *srv, const struct kc_agentlink_opts *o,
		       struct kc_agentlink **ret, struct kc_error *err)
{
	struct kc_agentlink *al = calloc(1, sizeof(*al));
	pthread_condattr_t ca;

	if (!al)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	al->srv = srv;
	al->fd = -1;
	al->hb = o->heartbeat_s ? o->heartbeat_s : KC_DEFAULT_HEARTBEAT_S;
	al->down_after = o->down_after_s ? o->down_after_s : KC_DEFAULT_DOWN_AFTER_S;
	pthread_mutex_init(&al->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&al->cond, &ca);
	pthread_condattr_destroy(&ca);

	if (kc_tls_creds_load(o->ca_file, o->cert_file, o->key_file, &al->creds, err) < 0)
		goto fail;
	al->fd = socket(o->addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	socklen_t len = o->addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						       : sizeof(struct sockaddr_in);
	if (al->fd < 0 || setsockopt(al->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(al->fd, (const struct sockaddr *)o->addr, len) < 0 || listen(al->fd, 128) < 0) {
		kc_error_set_errno(err, KC_ERR_UNAVAILABLE, errno,
				   "cannot listen for agents (--agent-listen)");
		goto fail;
	}
	struct sockaddr_storage bound;
	len = sizeof(bound);
	if (getsockname(al->fd, (struct sockaddr *)&bound, &len) == 0)
		al->port = ntohs(bound.ss_family == AF_INET6
					 ? ((struct sockaddr_in6 *)&bound)->sin6_port
					 : ((struct sockaddr_in *)&bound)->sin_port);
	if (pthread_create(&al->accept_thr, NULL, accept_main, al) != 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot start the agent listener thread");
		goto fail;
	}
	al->accept_started = true;
	if (pthread_create(&al->stale_thr, NULL, stale_main, al) != 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot start the heartbeat thread");
		goto fail;
	}
	al->stale_started = true;
	*ret = al;
	return 0;
fail:
	kc_agentlink_stop(al);
	return -1;
}

void kc_agentlink_stop(struct kc_agentlink *al)
{
	if (!al)
		return;
	pthread_mutex_lock(&al->lock);
	al->stopping = true;
	pthread_cond_broadcast(&al->cond);
	pthread_mutex_unlock(&al->lock);
	if (al->accept_started)
		pthread_join(al->accept_thr, NULL);
	if (al->stale_started)
		pthread_join(al->stale_thr, NULL);

	pthread_mutex_lock(&al->lock);
	for (struct conn *c = al->conns; c; c = c->next) {
		if (c->tls)
			kc_tls_shutdown(c->tls);
		else if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	}
	while (al->n_conns > 0) {
		/* A thread in a handshake notices within HANDSHAKE_MS at worst. */
		struct timespec dl;
		mono_now(&dl);
		dl.tv_sec += 1;
		pthread_cond_timedwait(&al->cond, &al->lock, &dl);
		for (struct conn *c = al->conns; c; c = c->next)
			if (c->tls)
				kc_tls_shutdown(c->tls);
	}
	pthread_mutex_unlock(&al->lock);
	if (al->fd >= 0)
		close(al->fd);
	kc_tls_creds_free(al->creds);
	json_decref(al->last_eps);
	pthread_cond_destroy(&al->cond);
	pthread_mutex_destroy(&al->lock);
	free(al);
}
