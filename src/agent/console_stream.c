/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console_stream.c - the agent's end of console streams
 * (console_stream_agent.h).
 *
 * Each stream has two threads: "down" (detached) moves bytes from the TLS
 * connection into the console and owns the clean-up; "up" (joined by down)
 * moves console output to the connection.  Both use one fixed buffer and
 * blocking writes, so a slow side holds the other back instead of growing
 * anything.  Either side's end shuts both down.
 */
#include "console_stream_agent.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "tlslink.h"
#include "validate.h"

#define BUF_SIZE      16384
#define TOKEN_MIN     32 /* hex digits: 128 bits */
#define TOKEN_MAX     128
#define RECV_SLICE_MS 1000

struct stream {
	struct stream *next;
	struct kc_console_streams *owner;
	struct kc_tls_link *tls;
	int fd; /* the console */
	atomic_llong last_ms;
	pthread_t up;
};

struct kc_console_streams {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a stream ended */
	struct stream *list;
	unsigned n;
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct kc_console_streams *kc_console_streams_new(void)
{
	struct kc_console_streams *cs = calloc(1, sizeof(*cs));
	if (!cs)
		return NULL;
	pthread_mutex_init(&cs->lock, NULL);
	pthread_cond_init(&cs->cond, NULL);
	return cs;
}

static void *up_main(void *arg)
{
	struct stream *s = arg;
	struct kc_error e = {0};
	char buf[BUF_SIZE];

	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* the console ended: the VM stopped, or down shut it */
		atomic_store(&s->last_ms, mono_ms());
		if (kc_tls_send_bytes(s->tls, buf, (size_t)n, &e) < 0)
			break;
	}
	/* Wakes down's receive: the server sees the connection end. */
	kc_tls_shutdown(s->tls);
	return NULL;
}

static void *down_main(void *arg)
{
	struct stream *s = arg;
	struct kc_console_streams *cs = s->owner;
	char buf[BUF_SIZE];

	for (;;) {
		struct kc_error e = {0};
		size_t n = 0;
		if (kc_tls_recv_bytes(s->tls, buf, sizeof(buf), RECV_SLICE_MS, &n, &e) < 0) {
			if (e.code != KC_ERR_TIMEOUT)
				break;
			if (mono_ms() - atomic_load(&s->last_ms) > KC_CONSOLE_AGENT_IDLE_S * 1000LL)
				break;
			continue;
		}
		if (n == 0)
			break; /* the server closed it: the user left */
		atomic_store(&s->last_ms, mono_ms());
		if (kc_write_all(s->fd, buf, n) < 0)
			break;
	}
	shutdown(s->fd, SHUT_RDWR);
	kc_tls_shutdown(s->tls);
	pthread_join(s->up, NULL);

	/* Unlinked and closed under the lock: stop() walks the list and
	 * shuts each stream's connection down, so it must never see one that
	 * is being freed.  Both connections are shut down already, so the
	 * close does not block. */
	pthread_mutex_lock(&cs->lock);
	for (struct stream **pp = &cs->list; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	kc_tls_close(s->tls);
	close(s->fd);
	cs->n--;
	pthread_cond_broadcast(&cs->cond);
	pthread_mutex_unlock(&cs->lock);
	free(s);
	return NULL;
}

static int check_args(const json_t *args, const char **ret_name, const char **ret_token,
		      struct kc_error *err)
{
	static const char *const keys[] = {"name", "token", NULL};
	if (!json_is_object(args))
		return kc_error_set(err, KC_ERR_INVALID, "%s: args must be an object",
				    KC_CONSOLE_OP);
	if (kc_json_check_keys(args, keys, KC_CONSOLE_OP " args", err) < 0 ||
	    kc_json_get_string(args, "name", true, KC_NAME_MAX, ret_name, err) < 0 ||
	    kc_name_validate(*ret_name, "VM name", err) < 0 ||
	    kc_json_get_string(args, "token", true, TOKEN_MAX, ret_token, err) < 0)
		return -1;
	size_t len = strlen(*ret_token);
	for (const char *p = *ret_token; *p; p++)
		if (!isxdigit((unsigned char)*p))
			len = 0;
	if (len < TOKEN_MIN)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s: \"token\" must be %d to %d hex digits", KC_CONSOLE_OP,
				    TOKEN_MIN, TOKEN_MAX);
	return 0;
}

/* Takes a slot, or refuses beyond the limit. */
static int reserve(struct kc_console_streams *cs, struct kc_error *err)
{
	pthread_mutex_lock(&cs->lock);
	bool full = cs->n >= KC_CONSOLE_AGENT_STREAMS_MAX;
	if (!full)
		cs->n++;
	pthread_mutex_unlock(&cs->lock);
	if (full)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "too many console streams on this host (at most %d)",
				    KC_CONSOLE_AGENT_STREAMS_MAX);
	return 0;
}

static void unreserve(struct kc_console_streams *cs)
{
	pthread_mutex_lock(&cs->lock);
	cs->n--;
	pthread_cond_broadcast(&cs->cond);
	pthread_mutex_unlock(&cs->lock);
}

int kc_console_streams_open(struct kc_console_streams *cs, struct kc_agent *a, const json_t *args,
			    kc_console_dial_fn dial, void *opaque, struct kc_error *err)
{
	const char *name = NULL, *token = NULL;
	if (check_args(args, &name, &token, err) < 0 || reserve(cs, err) < 0)
		return -1;
	struct stream *s = calloc(1, sizeof(*s));
	_cleanup_json_ json_t *frame =
		json_pack("{s:i,s:s,s:s}", "v", 1, "type", "stream", "token", token);
	if (!s || !frame) {
		free(s);
		unreserve(cs);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	s->owner = cs;
	s->fd = -1;
	atomic_init(&s->last_ms, mono_ms());
	/* The console first: a VM that is not running costs no connection. */
	if (kc_agent_vm_console_open(a, name, &s->fd, err) < 0 || dial(opaque, &s->tls, err) < 0 ||
	    kc_tls_send_json(s->tls, frame, err) < 0)
		goto fail;
	if (pthread_create(&s->up, NULL, up_main, s) != 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot start a console thread");
		goto fail;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&cs->lock);
	s->next = cs->list;
	cs->list = s;
	pthread_t down;
	bool started = pthread_create(&down, &attr, down_main, s) == 0;
	if (!started)
		cs->list = s->next;
	pthread_mutex_unlock(&cs->lock);
	pthread_attr_destroy(&attr);
	if (!started) {
		shutdown(s->fd, SHUT_RDWR);
		kc_tls_shutdown(s->tls);
		pthread_join(s->up, NULL);
		kc_error_set(err, KC_ERR_INTERNAL, "cannot start a console thread");
		goto fail;
	}
	return 0;
fail:
	kc_tls_close(s->tls);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	unreserve(cs);
	return -1;
}

void kc_console_streams_stop(struct kc_console_streams *cs)
{
	if (!cs)
		return;
	pthread_mutex_lock(&cs->lock);
	for (struct stream *s = cs->list; s; s = s->next) {
		shutdown(s->fd, SHUT_RDWR);
		kc_tls_shutdown(s->tls);
	}
	/* The caller has ended the threads that call open (link.c joins its
	 * workers first): the list can only shrink now. */
	while (cs->list)
		pthread_cond_wait(&cs->cond, &cs->lock);
	pthread_mutex_unlock(&cs->lock);
}

void kc_console_streams_free(struct kc_console_streams *cs)
{
	if (!cs)
		return;
	kc_console_streams_stop(cs);
	pthread_mutex_destroy(&cs->lock);
	pthread_cond_destroy(&cs->cond);
	free(cs);
}
