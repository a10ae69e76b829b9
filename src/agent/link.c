/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link.c - the agent's connection loop.
 *
 * Threads: kc_link_run()'s thread connects and then receives; one sender
 * thread per session sends heartbeats and queued events; a fixed pool of
 * workers runs requests.  A session (one TLS connection) is reference
 * counted: the receiver, the sender and every queued or running request
 * hold it, so a worker finishing a slow vm.shutdown after the connection
 * died answers into a dead session (its send fails at once) instead of a
 * freed one.  The last reference closes the TLS link.
 *
 * The server list (the endpoints to rotate through) changes only in
 * kc_link_run()'s thread: a list the server sends (welcome, endpoints) is
 * written to server.conf at once and kept aside, and becomes the rotation
 * when the session ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "console_stream_agent.h"
#include "dispatch.h"
#include "hostfw.h"
#include "io.h"
#include "json_util.h"
#include "kc-config.h"
#include "link.h"
#include "tcpconnect.h"
#include "tlslink.h"

#define HEARTBEAT_MAX_S 3600
#define SERVER_NAME_MAX 253
#define ENDPOINT_MAX	300
/* What an endpoint from the server may hold: it goes into server.conf. */
#define ENDPOINT_CHARS	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]%"
#define SERVER_CONF_MAX (64 * 1024)
/* How many heartbeat intervals of silence from the server end a session. */
#define SILENT_INTERVALS 3

struct session {
	struct kc_link *link;
	struct kc_tls_link *tls;
	atomic_int refs;
	atomic_bool dead;
	unsigned heartbeat_s;
	pthread_t sender;
	char *host, *port, *server_name; /* the server's, for console streams */
};

struct job {
	struct job *next;
	struct session *s;
	json_int_t id;
	char *op;
	json_t *args;
};

struct event {
	char *vm; /* NULL for libvirt connection events */
	char *name;
};

struct endpoint {
	char *str; /* as written in server.conf: "host:port" */
	char *host, *port, *server_name;
};

struct kc_link {
	struct kc_agent *agent;
	struct kc_tls_creds *creds;
	/* The endpoint being tried: one of eps[], which owns the strings. */
	const char *host, *port, *server_name;
	struct endpoint eps[KC_LINK_ENDPOINTS_MAX];
	size_t n_eps, cur_ep;
	/* The server's newer list, the rotation from the next connect on. */
	struct endpoint pend[KC_LINK_ENDPOINTS_MAX];
	size_t n_pend;
	char *server_conf; /* where the list is kept; NULL: nowhere */
	struct kc_console_streams *streams;
	unsigned backoff_min_ms, backoff_max_ms, timeout_ms;
	kc_link_log_fn log;
	void *log_opaque;
	uint64_t rand_state;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* stop, new job, new event */
	bool stop;
	struct session *current;
	struct job *jobs_head, *jobs_tail;
	size_t n_jobs;
	struct event events[KC_LINK_EVENTS_MAX];
	size_t ev_head, n_events;
	bool events_lost;
	pthread_t workers[KC_LINK_WORKERS];
};

__attribute__((format(printf, 2, 3))) static void link_log(struct kc_link *l, const char *fmt, ...)
{
	if (!l->log)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->log(line, l->log_opaque);
}

static void monotonic_after(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- sessions ---- */

static struct session *session_ref(struct session *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

static void session_unref(struct session *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	kc_tls_close(s->tls);
	free(s->host);
	free(s->port);
	free(s->server_name);
	free(s);
}

/* Marks the session dead and wakes every thread blocked on its socket. */
static void session_kill(struct session *s)
{
	atomic_store(&s->dead, true);
	kc_tls_shutdown(s->tls);
	pthread_mutex_lock(&s->link->lock);
	pthread_cond_broadcast(&s->link->cond);
	pthread_mutex_unlock(&s->link->lock);
}

static int session_send(struct session *s, const json_t *msg, struct kc_error *err)
{
	if (atomic_load(&s->dead))
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "the connection is closed");
	return kc_tls_send_json(s->tls, msg, err);
}

static void send_response(struct session *s, json_int_t id, json_t *result,
			  const struct kc_error *e)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *msg = NULL;
	if (result)
		msg = json_pack("{s:i,s:s,s:I,s:O}", "v", 1, "type", "response", "id", id, "result",
				result);
	else
		msg = json_pack("{s:i,s:s,s:I,s:{s:s,s:s}}", "v", 1, "type", "response", "id", id,
				"error", "code", kc_errcode_name(e->code), "message", e->message);
	if (!msg) {
		link_log(s->link, "cannot build the response to request %lld", (long long)id);
		return;
	}
	if (session_send(s, msg, &err) == 0)
		return;
	if (err.code == KC_ERR_TOO_LARGE && result) {
		struct kc_error big = {0};
		kc_error_set(&big, KC_ERR_TOO_LARGE,
			     "the result is larger than the %d-byte frame limit", KC_TLS_FRAME_MAX);
		send_response(s, id, NULL, &big);
		return;
	}
	if (!atomic_load(&s->dead)) {
		link_log(s->link, "cannot send the response to request %lld: %s", (long long)id,
			 err.message);
		session_kill(s);
	}
}

/* ---- workers ---- */

static int dial_session(void *opaque, struct kc_tls_link **ret, struct kc_error *err);

static void job_free(struct job *j)
{
	session_unref(j->s);
	free(j->op);
	json_decref(j->args);
	free(j);
}

static void *worker_main(void *arg)
{
	struct kc_link *l = arg;
	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->stop && !l->jobs_head)
			pthread_cond_wait(&l->cond, &l->lock);
		if (l->stop)
			break;
		struct job *j = l->jobs_head;
		l->jobs_head = j->next;
		if (!l->jobs_head)
			l->jobs_tail = NULL;
		l->n_jobs--;
		pthread_mutex_unlock(&l->lock);

		/* A request of a session that died while it waited is dropped:
		 * nobody can receive its answer. */
		if (!atomic_load(&j->s->dead)) {
			struct kc_error err = {0};
			_cleanup_json_ json_t *result = NULL;
			int rc;
			if (strcmp(j->op, KC_CONSOLE_OP) == 0) {
				rc = kc_console_streams_open(l->streams, l->agent, j->args,
							     dial_session, j->s, &err);
				result = rc == 0 ? json_object() : NULL;
			} else {
				rc = kc_agent_dispatch(l->agent, j->op, j->args, &result, &err);
			}
			if (rc < 0)
				send_response(j->s, j->id, NULL, &err);
			else
				send_response(j->s, j->id, result ? result : json_null(), NULL);
		}
		job_free(j);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Takes ownership of op and args.  Called by the receiver. */
static void job_queue(struct session *s, json_int_t id, char *op, json_t *args)
{
	struct kc_link *l = s->link;
	struct job *j = calloc(1, sizeof(*j));
	pthread_mutex_lock(&l->lock);
	if (!j || l->n_jobs >= KC_LINK_QUEUE_MAX) {
		pthread_mutex_unlock(&l->lock);
		free(j);
		free(op);
		json_decref(args);
		struct kc_error e = {0};
		kc_error_set(&e, KC_ERR_UNAVAILABLE, "the agent is busy (%d requests waiting)",
			     KC_LINK_QUEUE_MAX);
		send_response(s, id, NULL, &e);
		return;
	}
	j->s = session_ref(s);
	j->id = id;
	j->op = op;
	j->args = args;
	if (l->jobs_tail)
		l->jobs_tail->next = j;
	else
		l->jobs_head = j;
	l->jobs_tail = j;
	l->n_jobs++;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static void jobs_drop_all(struct kc_link *l)
{
	pthread_mutex_lock(&l->lock);
	struct job *j = l->jobs_head;
	l->jobs_head = l->jobs_tail = NULL;
	l->n_jobs = 0;
	pthread_mutex_unlock(&l->lock);
	while (j) {
		struct job *next = j->next;
		job_free(j);
		j = next;
	}
}

/* ---- events ---- */

static void event_clear(struct event *e)
{
	free(e->vm);
	free(e->name);
	e->vm = e->name = NULL;
}

/* The agent's event callback: only queues, it runs on libvirt's event
 * thread, which must not wait on the network. */
static void on_agent_event(const char *vm, const char *event, void *opaque)
{
	struct kc_link *l = opaque;
	pthread_mutex_lock(&l->lock);
	/* Without a session the events have nowhere to go; the next hello
	 * carries the whole domain list instead. */
	if (l->current && !l->events_lost) {
		if (l->n_events == KC_LINK_EVENTS_MAX) {
			l->events_lost = true;
		} else {
			struct event *e =
				&l->events[(l->ev_head + l->n_events) % KC_LINK_EVENTS_MAX];
			e->vm = vm ? strdup(vm) : NULL;
			e->name = strdup(event ? event : "unknown");
			if (!e->name || (vm && !e->vm)) {
				event_clear(e);
				l->events_lost = true;
			} else {
				l->n_events++;
			}
		}
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
}

static void events_drop_all(struct kc_link *l)
{
	pthread_mutex_lock(&l->lock);
	for (; l->n_events; l->n_events--) {
		event_clear(&l->events[l->ev_head]);
		l->ev_head = (l->ev_head + 1) % KC_LINK_EVENTS_MAX;
	}
	l->events_lost = false;
	pthread_mutex_unlock(&l->lock);
}

static json_t *event_message(const struct event *e)
{
	if (!e->vm) {
		const char *what = strcmp(e->name, "connected") == 0 ? "libvirt.connected"
								     : "libvirt.disconnected";
		return json_pack("{s:i,s:s,s:s}", "v", 1, "type", "event", "event", what);
	}
	return json_pack("{s:i,s:s,s:s,s:s,s:s}", "v", 1, "type", "event", "event", "vm.state",
			 "vm", e->vm, "state", e->name);
}

/* Heartbeats every heartbeat_s and events as they come, until the session
 * dies or the link stops. */
static void *sender_main(void *arg)
{
	struct session *s = arg;
	struct kc_link *l = s->link;
	uint64_t next_beat = now_ms() + (uint64_t)s->heartbeat_s * 1000;
	pthread_mutex_lock(&l->lock);
	while (!l->stop && !atomic_load(&s->dead)) {
		struct kc_error err = {0};
		_cleanup_json_ json_t *msg = NULL;
		if (l->events_lost) {
			pthread_mutex_unlock(&l->lock);
			link_log(l,
				 "too many libvirt events queued; reconnecting so that the server "
				 "reconciles");
			session_kill(s);
			pthread_mutex_lock(&l->lock);
			break;
		}
		if (l->n_events) {
			struct event e = l->events[l->ev_head];
			l->events[l->ev_head] = (struct event){0};
			l->ev_head = (l->ev_head + 1) % KC_LINK_EVENTS_MAX;
			l->n_events--;
			pthread_mutex_unlock(&l->lock);
			msg = event_message(&e);
			event_clear(&e);
		} else if (now_ms() >= next_beat) {
			pthread_mutex_unlock(&l->lock);
			next_beat = now_ms() + (uint64_t)s->heartbeat_s * 1000;
			msg = json_pack("{s:i,s:s,s:I}", "v", 1, "type", "heartbeat", "time",
					(json_int_t)time(NULL));
		} else {
			struct timespec until;
			monotonic_after(&until, next_beat - now_ms());
			pthread_cond_timedwait(&l->cond, &l->lock, &until);
			continue;
		}
		if (msg && session_send(s, msg, &err) < 0 && !atomic_load(&s->dead)) {
			link_log(l, "link lost while sending: %s", err.message);
			session_kill(s);
		}
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* ---- messages from the server ---- */

static int endpoints_update(struct kc_link *l, const json_t *list, struct kc_error *err);

static bool is_v1(const json_t *msg)
{
	const json_t *v = json_object_get(msg, "v");
	return json_is_integer(v) && json_integer_value(v) == 1;
}

static int request_check(const json_t *msg, const char **ret_op, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "id", "op", "args", NULL};
	if (!is_v1(msg))
		return kc_error_set(err, KC_ERR_INVALID,
				    "unsupported protocol version (need \"v\": 1)");
	if (kc_json_check_keys(msg, keys, "request", err) < 0 ||
	    kc_json_get_string(msg, "op", true, KC_OP_NAME_MAX, ret_op, err) < 0)
		return -1;
	if (!json_is_object(json_object_get(msg, "args")))
		return kc_error_set(err, KC_ERR_INVALID, "\"args\" must be an object");
	if (!kc_agent_op_exists(*ret_op) && strcmp(*ret_op, KC_CONSOLE_OP) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "unknown operation \"%s\"", *ret_op);
	return 0;
}

/* A request: anything wrong with it is answered as an error when its id
 * is usable, and closes the link otherwise.  Returns -1 to close. */
static int handle_request(struct session *s, json_t *msg)
{
	struct kc_link *l = s->link;
	const json_t *jid = json_object_get(msg, "id");
	if (!json_is_integer(jid) || json_integer_value(jid) < 0) {
		link_log(l, "protocol error: request without a valid \"id\"; closing the link");
		return -1;
	}
	json_int_t id = json_integer_value(jid);
	struct kc_error err = {0};
	const char *op = NULL;
	request_check(msg, &op, &err);
	if (kc_error_is_set(&err)) {
		link_log(l, "bad request %lld: %s", (long long)id, err.message);
		send_response(s, id, NULL, &err);
		return atomic_load(&s->dead) ? -1 : 0;
	}
	char *op_copy = strdup(op);
	if (!op_copy) {
		kc_error_set(&err, KC_ERR_INTERNAL, "out of memory");
		send_response(s, id, NULL, &err);
		return 0;
	}
	job_queue(s, id, op_copy, json_incref(json_object_get(msg, "args")));
	return 0;
}

/* The host firewall's @servers set follows the server list (hostfw.h). */
static void hostfw_servers(struct kc_link *l)
{
	const char *strs[KC_LINK_ENDPOINTS_MAX];
	const struct endpoint *e = l->n_pend ? l->pend : l->eps;
	size_t n = l->n_pend ? l->n_pend : l->n_eps;
	for (size_t i = 0; i < n && i < KC_LINK_ENDPOINTS_MAX; i++)
		strs[i] = e[i].str;
	kc_hostfw_link_endpoints(strs, n < KC_LINK_ENDPOINTS_MAX ? n : KC_LINK_ENDPOINTS_MAX);
}

/* {"type": "endpoints"}: the live-server list changed. */
static int handle_endpoints(struct kc_link *l, const json_t *msg, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "endpoints", NULL};
	if (!is_v1(msg))
		return kc_error_set(err, KC_ERR_INVALID,
				    "unsupported protocol version (need \"v\": 1)");
	if (kc_json_check_keys(msg, keys, "endpoints", err) < 0 ||
	    endpoints_update(l, json_object_get(msg, "endpoints"), err) < 0)
		return -1;
	hostfw_servers(l);
	return 0;
}

/* Returns -1 when the message is a protocol error that closes the link. */
static int handle_message(struct session *s, json_t *msg)
{
	static const char *const hb_keys[] = {"v", "type", "time", NULL};
	struct kc_link *l = s->link;
	const char *type = json_string_value(json_object_get(msg, "type"));
	if (type && strcmp(type, "request") == 0)
		return handle_request(s, msg);
	struct kc_error err = {0};
	if (!type)
		kc_error_set(&err, KC_ERR_INVALID, "message without a \"type\"");
	else if (strcmp(type, "endpoints") == 0)
		handle_endpoints(l, msg, &err);
	else if (strcmp(type, "heartbeat") != 0)
		kc_error_set(&err, KC_ERR_INVALID, "unexpected message type \"%.32s\"", type);
	else if (!is_v1(msg))
		kc_error_set(&err, KC_ERR_INVALID, "unsupported protocol version (need \"v\": 1)");
	else if (kc_json_check_keys(msg, hb_keys, "heartbeat", &err) == 0 &&
		 !json_is_number(json_object_get(msg, "time")))
		kc_error_set(&err, KC_ERR_INVALID, "heartbeat without a numeric \"time\"");
	if (!kc_error_is_set(&err))
		return 0;
	link_log(l, "protocol error: %s; closing the link", err.message);
	return -1;
}

/* ---- connecting ---- */

static int split_endpoint(const char *ep, char **ret_host, char **ret_port, struct kc_error *err)
{
	if (!ep || !*ep || strlen(ep) > ENDPOINT_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "the server endpoint must be host:port");
	const char *host = ep, *colon;
	size_t hlen;
	if (ep[0] == '[') {
		const char *close = strchr(ep, ']');
		if (!close || close[1] != ':')
			return kc_error_set(err, KC_ERR_INVALID,
					    "bad endpoint \"%s\" (want [v6addr]:port)", ep);
		host = ep + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(ep, ':');
		if (!colon || strchr(ep, ':') != colon)
			return kc_error_set(err, KC_ERR_INVALID,
					    "bad endpoint \"%s\" (want host:port)", ep);
		hlen = (size_t)(colon - ep);
	}
	const char *port = colon + 1;
	char *end = NULL;
	errno = 0;
	unsigned long p = strtoul(port, &end, 10);
	if (hlen == 0 || !*port || *end || errno || p == 0 || p > 65535 || port[0] == '-' ||
	    port[0] == '+')
		return kc_error_set(err, KC_ERR_INVALID, "bad endpoint \"%s\" (want host:port)",
				    ep);
	*ret_host = strndup(host, hlen);
	*ret_port = strdup(port);
	if (!*ret_host || !*ret_port)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

/* ---- the server list ---- */

static void endpoint_clear(struct endpoint *e)
{
	free(e->str);
	free(e->host);
	free(e->port);
	free(e->server_name);
	*e = (struct endpoint){0};
}

static void endpoints_clear(struct endpoint *eps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		endpoint_clear(&eps[i]);
}

/* An endpoint of the list: verified against its own host part. */
static int endpoint_parse(const char *str, struct endpoint *e, struct kc_error *err)
{
	if (split_endpoint(str, &e->host, &e->port, err) < 0 || !(e->str = strdup(str)) ||
	    !(e->server_name = strdup(e->host))) {
		endpoint_clear(e);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

static bool endpoints_have(const struct endpoint *eps, size_t n, const char *str)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(eps[i].str, str) == 0)
			return true;
	return false;
}

/* The order differs from server to server (each names itself first): only
 * the set counts. */
static bool endpoints_same(const struct endpoint *a, size_t na, const struct endpoint *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!endpoints_have(b, nb, a[i].str))
			return false;
	return true;
}

static bool is_key(const char *line, size_t len, const char *key)
{
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	size_t klen = strlen(key);
	if (len < klen || strncmp(line, key, klen) != 0)
		return false;
	line += klen;
	len -= klen;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	return len && *line == '=';
}

/* Replaces (or adds) the endpoints= line of `path`, keeping every other
 * line as it is: written to a new file, then renamed over the old one. */
static int conf_set_endpoints(const char *path, const char *list, struct kc_error *err)
{
	_cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s", path);
	if (!S_ISREG(st.st_mode) || st.st_size > SERVER_CONF_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "%s is not a file of at most %d bytes",
				    path, SERVER_CONF_MAX);
	_cleanup_free_ char *old = malloc((size_t)st.st_size + 1);
	_cleanup_free_ char *tmp = NULL;
	if (!old || asprintf(&tmp, "%s.new-%d", path, (int)getpid()) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	size_t len = 0;
	for (ssize_t n; len < (size_t)st.st_size; len += (size_t)n) {
		n = read(in, old + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s",
						  path);
		if (n == 0)
			break;
	}
	_cleanup_close_ int out =
		open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 0777);
	if (out < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", tmp);
	bool done = false;
	int rc = 0;
	for (size_t at = 0; at < len && rc == 0;) {
		const char *nl = memchr(old + at, '\n', len - at);
		size_t llen = nl ? (size_t)(nl - (old + at)) : len - at;
		if (is_key(old + at, llen, "endpoints")) {
			if (!done)
				rc = kc_write_all(out, "endpoints=", 10) < 0 ||
						     kc_write_all(out, list, strlen(list)) < 0 ||
						     kc_write_all(out, "\n", 1) < 0
					     ? -1
					     : 0;
			done = true;
		} else {
			rc = kc_write_all(out, old + at, llen) < 0 || kc_write_all(out, "\n", 1) < 0
				     ? -1
				     : 0;
		}
		at += llen + 1;
	}
	if (rc == 0 && !done)
		rc = kc_write_all(out, "endpoints=", 10) < 0 ||
				     kc_write_all(out, list, strlen(list)) < 0 ||
				     kc_write_all(out, "\n", 1) < 0
			     ? -1
			     : 0;
	if (rc < 0 || fsync(out) < 0 || rename(tmp, path) < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write %s", path);
		unlink(tmp);
		return -1;
	}
	kc_fsync_parent(path);
	return 0;
}

static void endpoints_persist(struct kc_link *l, const struct endpoint *eps, size_t n)
{
	char list[KC_LINK_ENDPOINTS_MAX * (ENDPOINT_MAX + 1) + 1] = "";
	size_t at = 0;
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", i ? "," : "",
				       eps[i].str);
	struct kc_error err = {0};
	if (l->server_conf && conf_set_endpoints(l->server_conf, list, &err) < 0)
		link_log(l, "the servers are now %s; cannot keep that: %s", list, err.message);
	else
		link_log(l, "the servers are now %s%s%s", list, l->server_conf ? "; kept in " : "",
			 l->server_conf ? l->server_conf : "");
}

/* A list from the server (docs/protocol.md): endpoint= stays first (the
 * admin's choice, with its server_name), the others follow in the
 * server's order, at most KC_LINK_ENDPOINTS_MAX in all.  Kept aside and
 * written to server.conf if it differs from what we have. */
static int endpoints_update(struct kc_link *l, const json_t *list, struct kc_error *err)
{
	struct endpoint next[KC_LINK_ENDPOINTS_MAX] = {0};
	size_t n = 0, i;
	const json_t *v;
	int rc = 0;

	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > KC_LINK_ENDPOINTS_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "\"endpoints\" must be 1 to %d strings",
				    KC_LINK_ENDPOINTS_MAX);
	json_array_foreach(list, i, v)
	{
		const char *str = json_string_value(v);
		if (!str || !*str || strlen(str) > ENDPOINT_MAX ||
		    strspn(str, ENDPOINT_CHARS) != strlen(str))
			return kc_error_set(err, KC_ERR_INVALID,
					    "bad entry in \"endpoints\" (want host:port)");
	}
	if (endpoint_parse(l->eps[0].str, &next[n], err) < 0)
		return -1;
	/* endpoint= keeps the name join was told to verify. */
	free(next[n].server_name);
	if (!(next[n++].server_name = strdup(l->eps[0].server_name)))
		rc = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_array_foreach(list, i, v)
	{
		const char *str = json_string_value(v);
		if (rc < 0)
			break;
		if (n == KC_LINK_ENDPOINTS_MAX || endpoints_have(next, n, str))
			continue;
		rc = endpoint_parse(str, &next[n], err);
		n += rc == 0;
	}
	const struct endpoint *have = l->n_pend ? l->pend : l->eps;
	size_t n_have = l->n_pend ? l->n_pend : l->n_eps;
	if (rc == 0 && !endpoints_same(next, n, have, n_have)) {
		endpoints_persist(l, next, n);
		endpoints_clear(l->pend, l->n_pend);
		memcpy(l->pend, next, sizeof(next));
		l->n_pend = n;
		n = 0;
	}
	endpoints_clear(next, n);
	return rc;
}

/* Between sessions: the server's newer list becomes the rotation, which
 * goes on after the server just left. */
static void endpoints_apply(struct kc_link *l)
{
	if (!l->n_pend)
		return;
	const char *cur = l->eps[l->cur_ep].str;
	size_t at = l->n_pend - 1; /* not in the list: endpoint= comes next */
	for (size_t i = 0; i < l->n_pend; i++)
		if (strcmp(l->pend[i].str, cur) == 0)
			at = i;
	endpoints_clear(l->eps, l->n_eps);
	memcpy(l->eps, l->pend, sizeof(l->eps));
	l->n_eps = l->n_pend;
	memset(l->pend, 0, sizeof(l->pend));
	l->n_pend = 0;
	l->cur_ep = at;
}

static bool stopping(struct kc_link *l)
{
	pthread_mutex_lock(&l->lock);
	bool stop = l->stop;
	pthread_mutex_unlock(&l->lock);
	return stop;
}

/* The link's stop flag in the shape kc_tcp_connect wants. */
static bool link_stopped(void *opaque)
{
	return stopping(opaque);
}

/* A connect that a stop does not wait for. */
static int tcp_connect(struct kc_link *l, const char *host, const char *port, int *ret_fd,
		       struct kc_error *err)
{
	return kc_tcp_connect(host, port, (unsigned)l->timeout_ms, link_stopped, l, ret_fd, err);
}

/* A console stream's connection: to the server of session opaque, with
 * our certificate, verified as the session's was. */
static int dial_session(void *opaque, struct kc_tls_link **ret, struct kc_error *err)
{
	struct session *s = opaque;
	struct kc_link *l = s->link;
	int fd = -1;
	if (tcp_connect(l, s->host, s->port, &fd, err) < 0)
		return -1;
	if (kc_tls_connect(l->creds, fd, s->server_name, (int)l->timeout_ms, ret, err) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

static int send_hello(struct kc_link *l, struct kc_tls_link *tls, struct kc_error *err)
{
	_cleanup_json_ json_t *facts = NULL, *domains = NULL, *hello = NULL;
	/* Creates before domains: a create that ends in between shows in
	 * one of the two, never in neither. */
	_cleanup_json_ json_t *creating = kc_agent_creates_in_flight(l->agent);
	if (!creating)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_agent_host_facts(l->agent, &facts, err) < 0 ||
	    kc_agent_vm_list(l->agent, &domains, err) < 0)
		return -1;
	hello = json_pack("{s:i,s:s,s:s,s:O,s:O,s:O}", "v", 1, "type", "hello", "agent_version",
			  KC_VERSION, "facts", facts, "domains", domains, "creating", creating);
	if (!hello)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_tls_send_json(tls, hello, err);
}

static int read_welcome(struct kc_link *l, struct kc_tls_link *tls, unsigned *ret_heartbeat,
			char *host, size_t host_size, struct kc_error *err)
{
	static const char *const keys[] = {"v", "type", "host", "heartbeat_s", "endpoints", NULL};
	_cleanup_json_ json_t *msg = NULL;
	const char *type = NULL, *name = NULL;
	uint64_t hb = 0;
	if (kc_tls_recv_json(tls, (int)l->timeout_ms, &msg, err) < 0)
		return -1;
	if (kc_json_get_string(msg, "type", true, 32, &type, err) < 0)
		return -1;
	if (strcmp(type, "welcome") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "expected welcome, got \"%s\"", type);
	if (!is_v1(msg))
		return kc_error_set(err, KC_ERR_INVALID, "unsupported protocol version in welcome");
	if (kc_json_check_keys(msg, keys, "welcome", err) < 0 ||
	    kc_json_get_string(msg, "host", true, SERVER_NAME_MAX, &name, err) < 0 ||
	    kc_json_get_uint(msg, "heartbeat_s", true, 1, HEARTBEAT_MAX_S, &hb, err) < 0)
		return -1;
	/* Optional: servers before it sent none. */
	const json_t *eps = json_object_get(msg, "endpoints");
	if (eps && endpoints_update(l, eps, err) < 0)
		return -1;
	snprintf(host, host_size, "%s", name);
	*ret_heartbeat = (unsigned)hb;
	return 0;
}

/* One connection, from TCP connect to its end.  Returns true if it got as
 * far as the welcome (the backoff starts over then). */
static bool session_run(struct kc_link *l, unsigned attempt, struct kc_error *err)
{
	int fd = -1;
	struct kc_tls_link *tls = NULL;
	if (tcp_connect(l, l->host, l->port, &fd, err) < 0)
		return false;
	if (kc_tls_connect(l->creds, fd, l->server_name, (int)l->timeout_ms, &tls, err) < 0) {
		close(fd);
		return false;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		kc_tls_close(tls);
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return false;
	}
	s->link = l;
	s->tls = tls;
	atomic_init(&s->refs, 1);
	atomic_init(&s->dead, false);
	if (!(s->host = strdup(l->host)) || !(s->port = strdup(l->port)) ||
	    !(s->server_name = strdup(l->server_name))) {
		session_unref(s);
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return false;
	}

	/* Registered before hello: a stop during the handshake shuts the
	 * socket down, and events from now on are kept for the sender. */
	pthread_mutex_lock(&l->lock);
	bool stop = l->stop;
	if (!stop)
		l->current = s;
	pthread_mutex_unlock(&l->lock);
	bool welcomed = false;
	char host[SERVER_NAME_MAX + 1] = "";
	if (stop)
		goto out;
	if (send_hello(l, tls, err) < 0 ||
	    read_welcome(l, tls, &s->heartbeat_s, host, sizeof(host), err) < 0) {
		/* Under TLS 1.3 the server judges our certificate after our
		 * handshake is done: its refusal arrives as an alert on our
		 * first read, or as a connection closed under our first write.
		 * A server that closes before welcome refuses us either way. */
		if (err->code == KC_ERR_UNAUTHORIZED || err->code == KC_ERR_UNAVAILABLE) {
			char why[KC_ERROR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", err->message);
			kc_error_clear(err);
			kc_error_set(err, KC_ERR_UNAUTHORIZED,
				     "server refused our certificate (revoked?): %s", why);
		}
		goto out;
	}
	welcomed = true;
	hostfw_servers(l);
	link_log(l, "connected to %s:%s (server host \"%s\", heartbeat %u s) after %u attempt%s",
		 l->host, l->port, host, s->heartbeat_s, attempt, attempt == 1 ? "" : "s");
	if (pthread_create(&s->sender, NULL, sender_main, session_ref(s)) != 0) {
		session_unref(s);
		kc_error_set(err, KC_ERR_INTERNAL, "cannot start the sender thread");
		goto out;
	}

	int silence_ms = (int)(s->heartbeat_s * SILENT_INTERVALS * 1000 + 5000);
	while (!atomic_load(&s->dead)) {
		_cleanup_json_ json_t *msg = NULL;
		struct kc_error e = {0};
		if (kc_tls_recv_json(tls, silence_ms, &msg, &e) < 0) {
			if (stopping(l))
				break;
			if (e.code == KC_ERR_TIMEOUT)
				kc_error_set(err, KC_ERR_TIMEOUT,
					     "nothing from the server for %d s", silence_ms / 1000);
			else if (!atomic_load(&s->dead))
				kc_error_set(err, e.code, "link lost: %s", e.message);
			else
				kc_error_set(err, KC_ERR_UNAVAILABLE, "link closed");
			break;
		}
		if (handle_message(s, msg) < 0) {
			kc_error_set(err, KC_ERR_INVALID, "protocol error from the server");
			break;
		}
	}
	session_kill(s);
	pthread_join(s->sender, NULL);
	session_unref(s);
out:
	session_kill(s);
	pthread_mutex_lock(&l->lock);
	l->current = NULL;
	pthread_mutex_unlock(&l->lock);
	events_drop_all(l);
	session_unref(s);
	return welcomed;
}

/* Waits delay_ms or until stopped; true if stopped. */
static bool backoff_wait(struct kc_link *l, uint64_t delay_ms)
{
	struct timespec until;
	monotonic_after(&until, delay_ms);
	pthread_mutex_lock(&l->lock);
	while (!l->stop && pthread_cond_timedwait(&l->cond, &l->lock, &until) != ETIMEDOUT)
		;
	bool stop = l->stop;
	pthread_mutex_unlock(&l->lock);
	return stop;
}

static uint64_t next_random(struct kc_link *l)
{
	/* xorshift64*: jitter needs spread between hosts, not secrecy. */
	uint64_t x = l->rand_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	l->rand_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t backoff_delay(struct kc_link *l, unsigned failures)
{
	uint64_t d = l->backoff_min_ms;
	for (unsigned i = 1; i < failures && d < l->backoff_max_ms; i++)
		d *= 2;
	if (d > l->backoff_max_ms)
		d = l->backoff_max_ms;
	/* +-20 %, so that hosts cut off together do not return together. */
	uint64_t span = d * 2 / 5;
	return d - d / 5 + (span ? next_random(l) % (span + 1) : 0);
}

void kc_link_run(struct kc_link *l)
{
	size_t started = 0;
	for (; started < KC_LINK_WORKERS; started++)
		if (pthread_create(&l->workers[started], NULL, worker_main, l) != 0)
			break;
	if (started == 0) {
		link_log(l, "cannot start worker threads");
		return;
	}
	kc_agent_set_event_cb(l->agent, on_agent_event, l);
	/* attempt counts connections since the last welcome: the backoff
	 * starts over once a session got that far. */
	unsigned attempt = 0;
	while (!stopping(l)) {
		struct kc_error err = {0};
		l->host = l->eps[l->cur_ep].host;
		l->port = l->eps[l->cur_ep].port;
		l->server_name = l->eps[l->cur_ep].server_name;
		bool welcomed = session_run(l, ++attempt, &err);
		if (stopping(l))
			break;
		if (welcomed)
			attempt = 1;
		endpoints_apply(l);
		/* A lost or refused server: the next one, at once on the
		 * first round; the delay grows once per round of them all. */
		l->cur_ep = (l->cur_ep + 1) % l->n_eps;
		uint64_t delay = backoff_delay(l, (unsigned)((attempt + l->n_eps - 1) / l->n_eps));
		const char *why = kc_error_is_set(&err) ? err.message : "link closed";
		if (welcomed)
			link_log(l, "%s; reconnecting in %.1f s", why, (double)delay / 1000);
		else
			link_log(l, "attempt %u failed: %s; retrying in %.1f s", attempt, why,
				 (double)delay / 1000);
		if (backoff_wait(l, delay))
			break;
		if (welcomed)
			attempt = 0;
	}
	kc_agent_set_event_cb(l->agent, NULL, NULL);
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < started; i++)
		pthread_join(l->workers[i], NULL);
	/* After the workers: none can open a stream any more. */
	kc_console_streams_stop(l->streams);
	jobs_drop_all(l);
	events_drop_all(l);
}

void kc_link_stop(struct kc_link *l)
{
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	if (l->current)
		kc_tls_shutdown(l->current->tls);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* eps[0] is cfg->endpoint; appends each other entry of the comma list
 * `list`, verified against its own host part (the servers of one cluster
 * each carry the name they are dialled by). */
static int add_endpoints(struct kc_link *l, const char *list, struct kc_error *err)
{
	l->n_eps = 1;
	if (!list)
		return 0;
	if (strlen(list) > (size_t)KC_LINK_ENDPOINTS_MAX * (ENDPOINT_MAX + 1))
		return kc_error_set(err, KC_ERR_INVALID, "endpoints= is too long");
	_cleanup_free_ char *copy = strdup(list);
	if (!copy)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " \t");
		tok[strcspn(tok, " \t")] = '\0';
		if (!*tok || endpoints_have(l->eps, l->n_eps, tok))
			continue;
		if (l->n_eps == KC_LINK_ENDPOINTS_MAX)
			return kc_error_set(err, KC_ERR_INVALID, "more than %d server endpoints",
					    KC_LINK_ENDPOINTS_MAX);
		if (endpoint_parse(tok, &l->eps[l->n_eps], err) < 0)
			return -1;
		l->n_eps++;
	}
	return 0;
}

int kc_link_new(struct kc_agent *agent, const struct kc_link_config *cfg, struct kc_link **ret,
		struct kc_error *err)
{
	if (!agent || !cfg || !cfg->ca_file || !cfg->cert_file || !cfg->key_file ||
	    !cfg->server_name || !*cfg->server_name || strlen(cfg->server_name) > SERVER_NAME_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the link needs CA, certificate, key and a server name");
	struct kc_link *l = calloc(1, sizeof(*l));
	if (!l)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	l->agent = agent;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 1000;
	l->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 60000;
	if (l->backoff_max_ms < l->backoff_min_ms)
		l->backoff_max_ms = l->backoff_min_ms;
	l->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
	l->log = cfg->log;
	l->log_opaque = cfg->log_opaque;
	if (getrandom(&l->rand_state, sizeof(l->rand_state), 0) != sizeof(l->rand_state))
		l->rand_state = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	l->rand_state |= 1;
	if (split_endpoint(cfg->endpoint, &l->eps[0].host, &l->eps[0].port, err) < 0 ||
	    !(l->eps[0].server_name = strdup(cfg->server_name)) ||
	    !(l->eps[0].str = strdup(cfg->endpoint)) || !(l->streams = kc_console_streams_new()) ||
	    (cfg->server_conf && !(l->server_conf = strdup(cfg->server_conf))) ||
	    add_endpoints(l, cfg->endpoints, err) < 0 ||
	    kc_tls_creds_load(cfg->ca_file, cfg->cert_file, cfg->key_file, &l->creds, err) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		kc_link_free(l);
		return -1;
	}
	*ret = l;
	return 0;
}

void kc_link_free(struct kc_link *l)
{
	if (!l)
		return;
	kc_tls_creds_free(l->creds);
	endpoints_clear(l->eps, KC_LINK_ENDPOINTS_MAX);
	endpoints_clear(l->pend, KC_LINK_ENDPOINTS_MAX);
	free(l->server_conf);
	kc_console_streams_free(l->streams);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
