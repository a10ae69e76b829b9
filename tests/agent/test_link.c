/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_link - the agent's connection loop (src/agent/link.c) against an
 * in-process fake server made of src/core/tlslink.h and pki.h: a fresh CA,
 * server and agent certificates in a temporary folder, a listener on
 * 127.0.0.1 at a random port.  The agent is real (private pool, the real
 * libvirtd), so hello, requests and events are too.  Checks: hello's
 * contents, requests answered with their ids (also several at once), bad
 * requests answered as errors, a bad message closing the link, heartbeats,
 * libvirt events, reconnecting after the server closes or goes silent,
 * refusal by revocation and retrying, and a prompt stop.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "json_util.h"
#include "kc-config.h"
#include "link.h"
#include "vm_fixture.h"
#include "link_fixture.h"
#include "pki.h"
#include "tap.h"
#include "tlslink.h"

#define WAIT_MS 15000

static struct vm_fixture fx;
static char vm[128];

/* What the fake server saw besides the messages a step waited for. */
static int heartbeats, bad_heartbeats;
static json_t *events;

/* wait_for_seen: counts heartbeats and keeps events. */
static void count_message(json_t *m)
{
	const char *t = json_string_value(json_object_get(m, "type"));
	if (t && strcmp(t, "heartbeat") == 0) {
		if (json_integer_value(json_object_get(m, "v")) == 1 &&
		    json_is_integer(json_object_get(m, "time")) && json_object_size(m) == 3)
			heartbeats++;
		else
			bad_heartbeats++;
	} else if (t && strcmp(t, "event") == 0) {
		json_array_append(events, m);
	}
}

static bool revoke_all(const char *serial, void *opaque)
{
	return true;
}

static bool has_event(const char *event, const char *vm_name, const char *state)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		const char *ev = json_string_value(json_object_get(e, "event"));
		const char *v = json_string_value(json_object_get(e, "vm"));
		const char *s = json_string_value(json_object_get(e, "state"));
		if (ev && strcmp(ev, event) == 0 && (!vm_name || (v && strcmp(v, vm_name) == 0)) &&
		    (!state || (s && strcmp(s, state) == 0)))
			return true;
	}
	return false;
}

/* Waits for an event, keeping the link alive meanwhile. */
static bool wait_event(struct kc_tls_link *l, const char *event, const char *vm_name,
		       const char *state)
{
	struct kc_error err = {0};
	for (int i = 0; i < 20 && !has_event(event, vm_name, state); i++)
		json_decref(wait_for(l, "nothing", -1, 500, &err));
	return has_event(event, vm_name, state);
}

/* Accepts, checks the hello, sends the welcome. */
static struct kc_tls_link *session(const char *what, bool check_hello)
{
	struct kc_error err = {0};
	struct kc_tls_link *l = accept_agent(NULL, WAIT_MS, &err);
	_cleanup_json_ json_t *hello = l ? wait_for(l, "hello", -1, WAIT_MS, &err) : NULL;
	ok(hello != NULL, "%s: the agent connects and says hello %s", what, err.message);
	if (!hello) {
		kc_tls_close(l);
		return NULL;
	}
	if (check_hello) {
		static const char *const keys[] = {
			"v", "type", "agent_version", "facts", "domains", "creating", NULL};
		json_t *facts = json_object_get(hello, "facts");
		const char *name = json_string_value(json_object_get(facts, "name"));
		ok(json_integer_value(json_object_get(hello, "v")) == 1 &&
			   kc_json_check_keys(hello, keys, "hello", &err) == 0 &&
			   strcmp(json_string_value(json_object_get(hello, "agent_version")),
				  KC_VERSION) == 0,
		   "hello: v 1, agent_version %s, no other keys %s", KC_VERSION, err.message);
		ok(json_is_object(facts) && name && strcmp(name, fx.prefix) == 0 &&
			   json_integer_value(json_object_get(facts, "cpus")) > 0,
		   "hello: host facts (name %s)", name);
		ok(json_is_array(json_object_get(hello, "domains")), "hello: domains array (%zu)",
		   json_array_size(json_object_get(hello, "domains")));
		/* No create runs while the link connects. */
		ok(json_is_array(json_object_get(hello, "creating")) &&
			   json_array_size(json_object_get(hello, "creating")) == 0,
		   "hello: creating, an empty array");
		const char *cn = NULL;
		kc_tls_peer(l, &cn, NULL);
		ok(cn && strcmp(cn, fx.prefix) == 0, "the server sees the certificate's CN %s", cn);
	}
	send_msg(l, "{\"v\":1,\"type\":\"welcome\",\"host\":\"%s\",\"heartbeat_s\":1}", fx.prefix);
	return l;
}

static void test_requests(struct kc_tls_link *l)
{
	struct kc_error err = {0};
	send_msg(l, "{\"v\":1,\"type\":\"request\",\"id\":7,\"op\":\"vm.list\",\"args\":{}}");
	json_t *r = wait_for(l, "response", 7, WAIT_MS, &err);
	ok(r && json_is_array(json_object_get(r, "result")) && !json_object_get(r, "error") &&
		   json_integer_value(json_object_get(r, "v")) == 1,
	   "vm.list request 7 answered with id 7 and an array %s", err.message);
	json_decref(r);

	static const struct {
		json_int_t id;
		const char *msg;
		const char *desc;
	} bad[] = {
		{8, "{\"v\":1,\"type\":\"request\",\"id\":8,\"op\":\"vm.nope\",\"args\":{}}",
		 "unknown op"},
		{9,
		 "{\"v\":1,\"type\":\"request\",\"id\":9,\"op\":\"vm.show\",\"args\":{\"name\":5}}",
		 "ill-typed arg"},
		{10,
		 "{\"v\":1,\"type\":\"request\",\"id\":10,\"op\":\"vm.list\",\"args\":{},\"x\":1}",
		 "unknown key"},
		{11, "{\"v\":2,\"type\":\"request\",\"id\":11,\"op\":\"vm.list\",\"args\":{}}",
		 "version 2"},
		{12, "{\"v\":1,\"type\":\"request\",\"id\":12,\"op\":7,\"args\":{}}",
		 "op not a string"},
		{13, "{\"v\":1,\"type\":\"request\",\"id\":13,\"op\":\"vm.list\",\"args\":[]}",
		 "args not an object"},
		{14, "{\"v\":1,\"type\":\"request\",\"id\":14,\"op\":\"vm.list\"}", "args missing"},
		{15, "{\"v\":1,\"type\":\"request\",\"id\":15,\"op\":\"vm.show\",\"args\":{}}",
		 "name missing"},
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		send_msg(l, "%s", bad[i].msg);
		r = wait_for(l, "response", bad[i].id, WAIT_MS, &err);
		const char *code = error_code(r);
		ok(code && strcmp(code, "invalid_argument") == 0 &&
			   json_is_string(
				   json_object_get(json_object_get(r, "error"), "message")) &&
			   !json_object_get(r, "result"),
		   "bad request (%s) answered invalid_argument, link stays %s", bad[i].desc,
		   err.message);
		json_decref(r);
	}

	/* Several at once: four workers, answers in any order. */
	for (int id = 100; id < 108; id++)
		send_msg(l, "{\"v\":1,\"type\":\"request\",\"id\":%d,\"op\":\"%s\",\"args\":{}}",
			 id, id % 2 ? "host.facts" : "vm.list");
	int answered = 0;
	for (int i = 0; i < 8; i++) {
		r = wait_for(l, "response", -1, WAIT_MS, &err);
		json_int_t id = json_integer_value(json_object_get(r, "id"));
		answered += r && id >= 100 && id < 108 && json_object_get(r, "result");
		json_decref(r);
	}
	ok(answered == 8, "8 requests at once: 8 answers (%d)", answered);
}

static void test_events(struct kc_tls_link *l)
{
	struct kc_error err = {0};
	send_msg(l,
		 "{\"v\":1,\"type\":\"request\",\"id\":20,\"op\":\"vm.create\",\"args\":"
		 "{\"name\":\"%s\",\"memory_mib\":128,\"image\":\"kctest\",\"start\":false}}",
		 vm);
	json_t *r = wait_for(l, "response", 20, 120000, &err);
	ok(r && json_is_object(json_object_get(r, "result")), "vm.create over the link %s %s",
	   err.message, r && error_code(r) ? "error" : "");
	json_decref(r);
	ok(wait_event(l, "vm.state", vm, "defined"), "event vm.state %s defined", vm);
	send_msg(l,
		 "{\"v\":1,\"type\":\"request\",\"id\":21,\"op\":\"vm.delete\",\"args\":"
		 "{\"name\":\"%s\",\"with_disks\":true}}",
		 vm);
	r = wait_for(l, "response", 21, WAIT_MS, &err);
	ok(r && json_is_object(json_object_get(r, "result")), "vm.delete over the link %s",
	   err.message);
	json_decref(r);
	ok(wait_event(l, "vm.state", vm, "undefined"), "event vm.state %s undefined", vm);
	size_t i;
	json_t *e;
	bool shaped = true;
	json_array_foreach(events, i, e) shaped &=
		json_integer_value(json_object_get(e, "v")) == 1 && json_object_size(e) == 5;
	ok(shaped, "events: {v, type, event, vm, state} only");
}

static void *run_main(void *arg)
{
	kc_link_run(arg);
	return NULL;
}

static void test_link(struct kc_agent *a, int port)
{
	char endpoint[64], dead[64], endpoints[160];
	snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", port);
	/* Several servers (docs/protocol.md): the first is dead (a port
	 * nobody listens on any more), so every connection below comes
	 * through the rotation to the second. */
	int dfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t dlen = sizeof(da);
	if (dfd < 0 || bind(dfd, (struct sockaddr *)&da, sizeof(da)) < 0 ||
	    getsockname(dfd, (struct sockaddr *)&da, &dlen) < 0)
		da.sin_port = htons(1);
	if (dfd >= 0)
		close(dfd);
	snprintf(dead, sizeof(dead), "127.0.0.1:%d", ntohs(da.sin_port));
	snprintf(endpoints, sizeof(endpoints), "%s, %s", dead, endpoint);
	struct kc_link_config cfg = {
		.ca_file = path("ca.crt"),
		.cert_file = path("agent.crt"),
		.key_file = path("agent.key"),
		.endpoint = dead,
		.endpoints = endpoints,
		.server_name = "127.0.0.1",
		.backoff_min_ms = 100,
		.backoff_max_ms = 400,
		.timeout_ms = 3000,
		.log = on_log,
	};
	struct kc_error err = {0};
	struct kc_link *link = NULL;
	struct kc_link_config bad = cfg;
	bad.endpoint = "127.0.0.1";
	ok(kc_link_new(a, &bad, &link, &err) == -1 && err.code == KC_ERR_INVALID,
	   "endpoint without a port refused: %s", err.message);
	kc_error_clear(&err);
	bad = cfg;
	bad.cert_file = path("nonexistent.crt");
	ok(kc_link_new(a, &bad, &link, &err) == -1, "missing certificate refused: %s", err.message);
	kc_error_clear(&err);
	if (kc_link_new(a, &cfg, &link, &err) < 0) {
		ok(false, "link: %s", err.message);
		return;
	}
	pthread_t t;
	pthread_create(&t, NULL, run_main, link);

	struct kc_tls_link *l = session("first", true);
	if (l) {
		test_requests(l);
		test_events(l);
		ok(log_count("attempt 1 failed") >= 1 && log_count("connected to 127.0.0.1") >= 1,
		   "the dead first endpoint is skipped for the next one");
		for (int i = 0; i < 10 && heartbeats < 2; i++)
			json_decref(wait_for(l, "nothing", -1, 500, &err));
		kc_error_clear(&err);
		ok(heartbeats >= 2 && bad_heartbeats == 0,
		   "heartbeats arrive, well formed (%d, %d bad)", heartbeats, bad_heartbeats);

		/* No id: the agent closes the link. */
		send_msg(l, "{\"v\":1,\"type\":\"bogus\"}");
		json_t *r = wait_for(l, "response", -1, WAIT_MS, &err);
		ok(!r && err.code != KC_ERR_TIMEOUT,
		   "a message of unknown type closes the link (%s)", err.message);
		json_decref(r);
		kc_tls_close(l);
	}
	ok(log_count("protocol error") >= 1, "the agent logged the protocol error");

	/* It comes back; then the server closes, and it comes back again. */
	l = session("after the protocol error", false);
	kc_tls_close(l);
	double t0 = now_s();
	l = session("after the server closed", false);
	ok(l && now_s() - t0 < 3, "reconnected within %.1f s", now_s() - t0);

	/* Silence: nothing from the server for 3 intervals + 5 s. */
	if (l) {
		t0 = now_s();
		struct kc_error e = {0};
		json_t *m = NULL;
		int rc = 0;
		while (now_s() - t0 < 20 && (rc = kc_tls_recv_json(l, 20000, &m, &e)) == 0) {
			json_decref(m);
			m = NULL;
		}
		double gap = now_s() - t0;
		ok(rc < 0 && gap > 7 && gap < 12, "a silent server is left after %.1f s (%s)", gap,
		   e.message);
		for (int i = 0; i < 20 && !log_count("nothing from the server"); i++)
			usleep(100 * 1000);
		ok(log_count("nothing from the server") >= 1, "and that is logged");
		kc_tls_close(l);
	}

	/* Revoked: refused twice, retried each time. */
	for (int i = 0; i < 2; i++) {
		kc_error_clear(&err);
		struct kc_tls_link *r = accept_agent(revoke_all, WAIT_MS, &err);
		ok(!r && err.code == KC_ERR_FORBIDDEN, "revoked certificate refused (%s)",
		   err.message);
		kc_tls_close(r);
	}
	l = session("once no longer revoked", false);
	ok(log_count("server refused our certificate (revoked?)") >= 2,
	   "the agent logged \"server refused our certificate (revoked?)\" (%zu times)",
	   log_count("server refused our certificate (revoked?)"));
	ok(log_count("retrying in") >= 2 && log_count("reconnecting in") >= 3,
	   "each failed attempt logged with its delay (%zu, %zu)", log_count("reconnecting in"),
	   log_count("retrying in"));

	t0 = now_s();
	kc_link_stop(link);
	pthread_join(t, NULL);
	ok(now_s() - t0 < 3, "stop returns in %.2f s", now_s() - t0);
	kc_tls_close(l);
	t0 = now_s();
	kc_agent_free(a);
	printf("# kc_agent_free took %.2f s\n", now_s() - t0);
	kc_link_free(link);
}

int main(void)
{
	const char *skip = vm_fixture_init(&fx, "kclnk", "l");
	if (skip) {
		printf("1..0 # SKIP %s\n", skip);
		vm_fixture_cleanup(&fx);
		return 0;
	}
	snprintf(vm, sizeof(vm), "%s-vm1", fx.prefix);
	events = json_array();
	wait_for_seen = count_message;
	struct kc_error err = {0};
	bool pki_ok = make_pki(fx.prefix, "kclnk", &err);
	ok(pki_ok, "CA, server and agent certificates %s", err.message);
	int port = make_listener();
	ok(port > 0, "fake server listens on 127.0.0.1:%d", port);
	struct kc_agent *a = pki_ok && port > 0 ? vm_fixture_agent(&fx, NULL, &err) : NULL;
	ok(a != NULL, "agent starts %s", err.message);
	if (a)
		test_link(a, port);
	link_fixture_cleanup();
	json_decref(events);
	vm_fixture_cleanup(&fx);
	return tap_done();
}
