/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c - the libvirt connection: one process-wide event loop thread (libvirt
 * allows one default event implementation per process), one watchdog thread
 * that reconnects lost connections with backoff, and per-agent connections
 * whose loss is noticed by keepalive and the close callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000

static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_ok;
static pthread_mutex_t agents_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_agent *agents[64];
static atomic_int pending_frees; /* callback registrations not yet released */

static void *event_loop(void *arg)
{
	for (;;)
		virEventRunDefaultImpl();
	return NULL;
}

static int reconnect_locked(struct kc_agent *a);
static bool check_lost_locked(struct kc_agent *a);

static void *watchdog(void *arg)
{
	for (;;) {
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&agents_lock);
		for (size_t i = 0; i < KC_ARRAY_SIZE(agents); i++) {
			struct kc_agent *a = agents[i];
			if (!a)
				continue;
			bool restored = false, lost = false;
			pthread_mutex_lock(&a->conn_lock);
			lost = check_lost_locked(a);
			if (!a->connected && kc_now_ms() >= a->next_retry)
				restored = reconnect_locked(a) == 0;
			pthread_mutex_unlock(&a->conn_lock);
			if (lost)
				kc_agent_emit(a, NULL, "disconnected");
			if (restored)
				kc_agent_emit(a, NULL, "connected");
		}
		pthread_mutex_unlock(&agents_lock);
	}
	return NULL;
}

/* Library code does not print: errors travel in kc_error.  libvirt's
 * default handler would write every error to stderr. */
static void quiet_error(void *opaque, virErrorPtr e)
{
}

static void loop_init(void)
{
	pthread_t t;
	virSetErrorFunc(NULL, quiet_error);
	if (virEventRegisterDefaultImpl() < 0)
		return;
	if (pthread_create(&t, NULL, event_loop, NULL) != 0)
		return;
	pthread_detach(t);
	if (pthread_create(&t, NULL, watchdog, NULL) != 0)
		return;
	pthread_detach(t);
	loop_ok = 1;
}

void kc_agent_emit(struct kc_agent *a, const char *vm, const char *event)
{
	pthread_mutex_lock(&a->event_lock);
	kc_agent_event_fn fn = a->event_fn;
	void *opaque = a->event_opaque;
	pthread_mutex_unlock(&a->event_lock);
	if (fn)
		fn(vm, event, opaque);
}

void kc_cb_hold(void)
{
	atomic_fetch_add(&pending_frees, 1);
}

void kc_cb_release(void *opaque)
{
	atomic_fetch_sub(&pending_frees, 1);
}

/* Runs in the event loop thread when the socket to libvirtd goes away.
 * libvirt calls it holding its own lock, which virConnectUnregister-
 * CloseCallback (called under conn_lock) also takes: so it must not take
 * conn_lock.  It only raises a flag; the watchdog or the next kc_conn_get
 * does the rest. */
static void close_cb(virConnectPtr conn, int reason, void *opaque)
{
	struct kc_agent *a = opaque;
	if (reason == VIR_CONNECT_CLOSE_REASON_CLIENT)
		return;
	if (__atomic_load_n(&a->conn, __ATOMIC_ACQUIRE) == conn)
		__atomic_store_n(&a->lost, true, __ATOMIC_RELEASE);
}

/* With conn_lock held: is the connection gone?  Marks it so and returns
 * true the first time (the caller emits "disconnected"). */
static bool check_lost_locked(struct kc_agent *a)
{
	if (!a->connected)
		return false;
	if (a->conn && !__atomic_load_n(&a->lost, __ATOMIC_ACQUIRE) &&
	    virConnectIsAlive(a->conn) == 1)
		return false;
	a->connected = false;
	a->next_retry = 0; /* try again at once, then back off */
	return true;
}

static void drop_locked(struct kc_agent *a)
{
	if (!a->conn)
		return;
	kc_events_unregister(a, a->conn);
	virConnectUnregisterCloseCallback(a->conn, close_cb);
	virConnectClose(a->conn);
	__atomic_store_n(&a->conn, NULL, __ATOMIC_RELEASE);
	a->connected = false;
}

static int reconnect_locked(struct kc_agent *a)
{
	drop_locked(a);
	virConnectPtr c = virConnectOpen(a->uri);
	if (!c) {
		virResetLastError();
		a->next_retry = kc_now_ms() + a->retry_ms;
		a->retry_ms = a->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : a->retry_ms * 2;
		return -1;
	}
	/* Keepalive notices a hung daemon, not only a closed socket. */
	if (virConnectSetKeepAlive(c, 5, 3) < 0)
		virResetLastError();
	__atomic_store_n(&a->lost, false, __ATOMIC_RELEASE);
	__atomic_store_n(&a->conn, c, __ATOMIC_RELEASE);
	a->connected = true;
	kc_cb_hold();
	if (virConnectRegisterCloseCallback(c, close_cb, a, kc_cb_release) < 0) {
		kc_cb_release(NULL);
		virResetLastError();
	}
	a->retry_ms = RETRY_MIN_MS;
	kc_events_register(a, c);
	return 0;
}

int kc_conn_open(struct kc_agent *a, struct kc_error *err)
{
	pthread_once(&loop_once, loop_init);
	if (!loop_ok)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start the libvirt event loop");
	a->lifecycle_cb = -1;
	a->retry_ms = RETRY_MIN_MS;
	pthread_mutex_lock(&a->conn_lock);
	int r = reconnect_locked(a);
	pthread_mutex_unlock(&a->conn_lock);
	if (r < 0)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "libvirtd at %s is not reachable",
				    a->uri);
	pthread_mutex_lock(&agents_lock);
	size_t i;
	for (i = 0; i < KC_ARRAY_SIZE(agents) && agents[i]; i++)
		;
	if (i == KC_ARRAY_SIZE(agents)) {
		pthread_mutex_unlock(&agents_lock);
		kc_conn_close(a);
		return kc_error_set(err, KC_ERR_INTERNAL, "too many agents in one process");
	}
	agents[i] = a;
	pthread_mutex_unlock(&agents_lock);
	return 0;
}

void kc_conn_close(struct kc_agent *a)
{
	pthread_mutex_lock(&agents_lock);
	for (size_t i = 0; i < KC_ARRAY_SIZE(agents); i++)
		if (agents[i] == a)
			agents[i] = NULL;
	pthread_mutex_unlock(&agents_lock);
	pthread_mutex_lock(&a->conn_lock);
	drop_locked(a);
	pthread_mutex_unlock(&a->conn_lock);
	/* Callbacks being dispatched right now still hold `a`: wait (bounded)
	 * until libvirt has released every registration before a is freed. */
	for (int i = 0; i < 200 && atomic_load(&pending_frees) > 0; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

virConnectPtr kc_conn_get(struct kc_agent *a, struct kc_error *err)
{
	bool restored = false, lost = false;
	virConnectPtr c = NULL;
	pthread_mutex_lock(&a->conn_lock);
	lost = check_lost_locked(a);
	if (!a->connected)
		restored = reconnect_locked(a) == 0;
	if (a->connected && a->conn) {
		c = a->conn;
		virConnectRef(c);
	}
	pthread_mutex_unlock(&a->conn_lock);
	if (lost)
		kc_agent_emit(a, NULL, "disconnected");
	if (restored)
		kc_agent_emit(a, NULL, "connected");
	if (!c)
		kc_error_set(err, KC_ERR_UNAVAILABLE, "libvirtd at %s is not reachable", a->uri);
	return c;
}

bool kc_agent_is_connected(struct kc_agent *a)
{
	pthread_mutex_lock(&a->conn_lock);
	bool lost = check_lost_locked(a);
	bool ok = a->connected;
	pthread_mutex_unlock(&a->conn_lock);
	if (lost)
		kc_agent_emit(a, NULL, "disconnected");
	return ok;
}
