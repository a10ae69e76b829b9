/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_link_stream - what the agent's link learns and opens besides
 * requests (src/agent/link.c, console_stream.c), against an in-process
 * fake server (tlslink.h, pki.h) and the real libvirtd:
 *  - the server list: a welcome without "endpoints" (older servers) works
 *    and changes nothing; an "endpoints" message rewrites endpoints= in
 *    server.conf, keeping every other line; the same set in another order
 *    does not; the next reconnect follows the new rotation (a dead server
 *    in it is tried); a welcome's list replaces it again; bad lists close
 *    the link and leave the file alone.
 *  - console streams: console.open with bad args, for a stopped VM, then
 *    for a running one: the agent dials a second connection with its own
 *    certificate, sends the stream frame with the token, and the guest's
 *    console answers a command typed into it; closing the server's end
 *    ends the stream, and a second one opens; a stop ends an open stream.
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
#include "link.h"
#include "pki.h"
#include "tap.h"
#include "tlslink.h"
#include "vm_fixture.h"
#include "link_fixture.h"

#define WAIT_MS 15000
#define TOKEN	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct vm_fixture fx;
static char conf[300], vm[128];

/* A port nobody listens on. */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int port = 1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Accepts the agent's link, waits for hello, sends `welcome` (JSON). */
static struct kc_tls_link *session(const char *what, const char *welcome)
{
	struct kc_error err = {0};
	struct kc_tls_link *l = accept_agent(NULL, WAIT_MS, &err);
	_cleanup_json_ json_t *hello = l ? wait_for(l, "hello", -1, WAIT_MS, &err) : NULL;
	ok(hello != NULL, "%s: the agent connects and says hello %s", what, err.message);
	if (!hello) {
		kc_tls_close(l);
		return NULL;
	}
	send_msg(l, "%s", welcome);
	return l;
}

/* Sends a request and waits for its response. */
static json_t *call(struct kc_tls_link *l, json_int_t id, const char *op, const char *args,
		    int timeout_ms)
{
	struct kc_error err = {0};
	send_msg(l, "{\"v\":1,\"type\":\"request\",\"id\":%lld,\"op\":\"%s\",\"args\":%s}",
		 (long long)id, op, args);
	json_t *r = wait_for(l, "response", id, timeout_ms, &err);
	if (!r)
		printf("# %s: %s\n", op, err.message);
	return r;
}

static char *read_conf(void)
{
	static char buf[4096];
	FILE *f = fopen(conf, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	return buf;
}

/* Keeps the link alive until the log holds `needle` `count` times. */
static bool wait_log(struct kc_tls_link *l, const char *needle, size_t count)
{
	struct kc_error err = {0};
	for (int i = 0; i < 20 && log_count(needle) < count; i++)
		json_decref(wait_for(l, "nothing", -1, 250, &err));
	return log_count(needle) >= count;
}

/* True if the link is closed by the agent within a few seconds. */
static bool closed_by_agent(struct kc_tls_link *l)
{
	struct kc_error err = {0};
	json_t *m = wait_for(l, "nothing", -1, 5000, &err);
	json_decref(m);
	return err.code != KC_ERR_TIMEOUT && err.code != 0;
}

static void test_endpoints(const char *ep, const char *dead)
{
	char welcome[512], expect[512];
	snprintf(welcome, sizeof(welcome),
		 "{\"v\":1,\"type\":\"welcome\",\"host\":\"%s\",\"heartbeat_s\":1}", fx.prefix);
	struct kc_tls_link *l = session("old-style welcome", welcome);
	if (!l)
		return;
	snprintf(expect, sizeof(expect), "# joined\nendpoint=%s\nserver_name=127.0.0.1\nfoo = bar",
		 ep);
	_cleanup_json_ json_t *r = call(l, 1, "vm.list", "{}", WAIT_MS);
	ok(r && json_is_array(json_object_get(r, "result")),
	   "a welcome without \"endpoints\" still works");
	ok(strcmp(read_conf(), expect) == 0, "and server.conf is left alone");

	send_msg(l, "{\"v\":1,\"type\":\"endpoints\",\"endpoints\":[\"%s\",\"%s\"]}", ep, dead);
	ok(wait_log(l, "the servers are now", 1), "an endpoints message is taken");
	snprintf(expect, sizeof(expect),
		 "# joined\nendpoint=%s\nserver_name=127.0.0.1\nfoo = bar\nendpoints=%s,%s\n", ep,
		 ep, dead);
	ok(strcmp(read_conf(), expect) == 0,
	   "server.conf gets endpoints=, every other line kept: %s", read_conf());
	send_msg(l, "{\"v\":1,\"type\":\"endpoints\",\"endpoints\":[\"%s\",\"%s\"]}", dead, ep);
	json_decref(call(l, 2, "vm.list", "{}", WAIT_MS));
	ok(log_count("the servers are now") == 1, "the same set in another order changes nothing");

	/* The next connect follows the new rotation: the dead one first. */
	kc_tls_close(l);
	snprintf(welcome, sizeof(welcome),
		 "{\"v\":1,\"type\":\"welcome\",\"host\":\"%s\",\"heartbeat_s\":1,"
		 "\"endpoints\":[\"%s\"]}",
		 fx.prefix, ep);
	l = session("after the server closed", welcome);
	char dead_msg[128];
	snprintf(dead_msg, sizeof(dead_msg), "cannot connect to %s", dead);
	ok(log_count(dead_msg) >= 1, "the new rotation is used: %s was tried", dead);
	if (!l)
		return;
	ok(wait_log(l, "the servers are now", 2), "a welcome's list is taken too");
	snprintf(expect, sizeof(expect),
		 "# joined\nendpoint=%s\nserver_name=127.0.0.1\nfoo = bar\nendpoints=%s\n", ep, ep);
	ok(strcmp(read_conf(), expect) == 0, "server.conf follows it: %s", read_conf());

	static const char *const bad[] = {
		"[]",
		"[5]",
		"[\"nohost\"]",
		"[\"a\\nendpoint=evil:1\"]",
		"\"x:1\"",
		"[\"h:1\",\"h:2\",\"h:3\",\"h:4\",\"h:5\",\"h:6\",\"h:7\",\"h:8\",\"h:9\",\"h:10\","
		"\"h:11\",\"h:12\",\"h:13\",\"h:14\",\"h:15\",\"h:16\",\"h:17\"]",
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		if (i == 0) {
			send_msg(l, "{\"v\":1,\"type\":\"endpoints\",\"endpoints\":%s}", bad[i]);
		} else {
			kc_tls_close(l);
			snprintf(welcome, sizeof(welcome),
				 "{\"v\":1,\"type\":\"welcome\",\"host\":\"%s\",\"heartbeat_s\":1,"
				 "\"endpoints\":%s}",
				 fx.prefix, bad[i]);
			l = session("bad list", welcome);
		}
		ok(l && closed_by_agent(l), "a bad list (%s) closes the link", bad[i]);
	}
	ok(strcmp(read_conf(), expect) == 0, "and leaves server.conf alone");
	kc_tls_close(l);
}

/* The stream of console.open id `id`: accepted, its frame checked. */
static struct kc_tls_link *stream_accept(void)
{
	struct kc_error err = {0};
	struct kc_tls_link *st = accept_agent(NULL, WAIT_MS, &err);
	_cleanup_json_ json_t *frame = NULL;
	if (st && kc_tls_recv_json(st, 5000, &frame, &err) < 0)
		printf("# stream frame: %s\n", err.message);
	const char *cn = NULL;
	if (st)
		kc_tls_peer(st, &cn, NULL);
	static const char *const keys[] = {"v", "type", "token", NULL};
	bool good = frame && json_integer_value(json_object_get(frame, "v")) == 1 &&
		    strcmp(json_string_value(json_object_get(frame, "type")), "stream") == 0 &&
		    kc_json_check_keys(frame, keys, "stream", &err) == 0 &&
		    strcmp(json_string_value(json_object_get(frame, "token")), TOKEN) == 0;
	ok(st && cn && strcmp(cn, fx.prefix) == 0 && good,
	   "the agent dials a second connection with its certificate (CN %s) and names the "
	   "token %s",
	   cn ? cn : "-", err.message);
	if (!good) {
		kc_tls_close(st);
		return NULL;
	}
	return st;
}

/* The link's heartbeat, so that the agent keeps it while a test works on
 * a stream. */
static void beat(struct kc_tls_link *l)
{
	static double last;
	if (l && now_s() - last >= 1) {
		send_msg(l, "{\"v\":1,\"type\":\"heartbeat\",\"time\":%lld}",
			 (long long)time(NULL));
		last = now_s();
	}
}

/* Types `cmd` now and then until `expect` comes back. */
static bool console_echo(struct kc_tls_link *l, struct kc_tls_link *st, const char *cmd,
			 const char *expect)
{
	char got[65536];
	size_t len = 0;
	double end = now_s() + 60, next = 0;
	while (now_s() < end) {
		struct kc_error err = {0};
		beat(l);
		if (now_s() >= next) {
			if (kc_tls_send_bytes(st, cmd, strlen(cmd), &err) < 0)
				return false;
			next = now_s() + 3;
		}
		size_t n = 0;
		if (kc_tls_recv_bytes(st, got + len, sizeof(got) - 1 - len, 500, &n, &err) < 0) {
			if (err.code != KC_ERR_TIMEOUT)
				return false;
			continue;
		}
		if (n == 0)
			return false;
		len += n;
		got[len] = '\0';
		if (strstr(got, expect))
			return true;
		if (len > sizeof(got) / 2) {
			memmove(got, got + len / 2, len - len / 2 + 1);
			len -= len / 2;
		}
	}
	return false;
}

/* True once the agent has closed its end (EOF or error within 10 s). */
static bool stream_ends(struct kc_tls_link *l, struct kc_tls_link *st)
{
	char buf[4096];
	double end = now_s() + 10;
	while (now_s() < end) {
		struct kc_error err = {0};
		beat(l);
		size_t n = 0;
		if (kc_tls_recv_bytes(st, buf, sizeof(buf), 500, &n, &err) < 0) {
			if (err.code != KC_ERR_TIMEOUT)
				return true;
			continue;
		}
		if (n == 0)
			return true;
	}
	return false;
}

/* Returns a stream left open, for the stop to end. */
static struct kc_tls_link *test_console(struct kc_tls_link *l)
{
	char args[512];
	struct kc_tls_link *st = NULL;
	json_t *r = call(l, 10, "console.open", "{\"name\":\"x\"}", WAIT_MS);
	ok(r && error_code(r) && strcmp(error_code(r), "invalid_argument") == 0,
	   "console.open without a token: invalid_argument");
	json_decref(r);
	r = call(l, 11, "console.open", "{\"name\":\"x\",\"token\":\"abc\"}", WAIT_MS);
	ok(r && error_code(r) && strcmp(error_code(r), "invalid_argument") == 0,
	   "console.open with a short token: invalid_argument");
	json_decref(r);
	snprintf(args, sizeof(args), "{\"name\":\"x\",\"token\":\"%s\",\"more\":1}", TOKEN);
	r = call(l, 12, "console.open", args, WAIT_MS);
	ok(r && error_code(r) && strcmp(error_code(r), "invalid_argument") == 0,
	   "console.open with an unknown key: invalid_argument");
	json_decref(r);

	snprintf(args, sizeof(args),
		 "{\"name\":\"%s\",\"memory_mib\":128,\"image\":\"kctest\",\"start\":false}", vm);
	r = call(l, 13, "vm.create", args, 120000);
	ok(r && json_is_object(json_object_get(r, "result")), "vm.create %s", vm);
	json_decref(r);
	snprintf(args, sizeof(args), "{\"name\":\"%s\",\"token\":\"%s\"}", vm, TOKEN);
	r = call(l, 14, "console.open", args, WAIT_MS);
	ok(r && error_code(r) && strcmp(error_code(r), "conflict") == 0,
	   "console.open of a stopped VM: conflict (%s)", r ? error_code(r) : "no answer");
	json_decref(r);
	snprintf(args, sizeof(args), "{\"name\":\"%s\"}", vm);
	r = call(l, 15, "vm.start", args, 60000);
	ok(r && json_object_get(r, "result"), "vm.start");
	json_decref(r);

	snprintf(args, sizeof(args), "{\"name\":\"%s\",\"token\":\"%s\"}", vm, TOKEN);
	send_msg(l, "{\"v\":1,\"type\":\"request\",\"id\":16,\"op\":\"console.open\",\"args\":%s}",
		 args);
	st = stream_accept();
	struct kc_error err = {0};
	r = wait_for(l, "response", 16, WAIT_MS, &err);
	ok(r && json_is_object(json_object_get(r, "result")), "console.open answered {} %s",
	   err.message);
	json_decref(r);
	if (st) {
		ok(console_echo(l, st, "echo kcstream-$((6*7))\r", "kcstream-42"),
		   "raw bytes both ways: a command typed on the stream is answered by the guest");
		kc_tls_close(st);
	}

	/* The server's end closed: the agent ends the stream; another opens. */
	send_msg(l, "{\"v\":1,\"type\":\"request\",\"id\":17,\"op\":\"console.open\",\"args\":%s}",
		 args);
	st = stream_accept();
	json_decref(wait_for(l, "response", 17, WAIT_MS, &err));
	ok(st && console_echo(l, st, "echo kcagain-$((6*9))\r", "kcagain-54"),
	   "a second stream after the first was closed works");
	/* The console taken by a third (libvirt's FORCE): the second ends. */
	send_msg(l, "{\"v\":1,\"type\":\"request\",\"id\":18,\"op\":\"console.open\",\"args\":%s}",
		 args);
	struct kc_tls_link *st3 = stream_accept();
	json_decref(wait_for(l, "response", 18, WAIT_MS, &err));
	ok(st && stream_ends(l, st),
	   "a stream whose console is taken over ends (EOF on the server)");
	kc_tls_close(st);
	return st3;
}

static void *run_main(void *arg)
{
	kc_link_run(arg);
	return NULL;
}

int main(void)
{
	const char *skip = vm_fixture_init(&fx, "kclns", NULL);
	if (skip) {
		printf("1..0 # SKIP %s\n", skip);
		vm_fixture_cleanup(&fx);
		return 0;
	}
	snprintf(vm, sizeof(vm), "%s-vm1", fx.prefix);
	struct kc_error err = {0};
	bool pki_ok = make_pki(fx.prefix, "kclns", &err);
	ok(pki_ok, "CA, server and agent certificates %s", err.message);
	int port = make_listener();
	struct kc_agent *a = pki_ok && port > 0 ? vm_fixture_agent(&fx, NULL, &err) : NULL;
	ok(a != NULL, "agent starts %s", err.message);
	if (!a)
		goto out;

	char ep[64], dead[64];
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
	snprintf(dead, sizeof(dead), "127.0.0.1:%d", dead_port());
	snprintf(conf, sizeof(conf), "%s/server.conf", pki);
	FILE *f = fopen(conf, "we");
	if (f) {
		fprintf(f, "# joined\nendpoint=%s\nserver_name=127.0.0.1\nfoo = bar", ep);
		fclose(f);
	}
	struct kc_link_config cfg = {
		.ca_file = path("ca.crt"),
		.cert_file = path("agent.crt"),
		.key_file = path("agent.key"),
		.endpoint = ep,
		.server_name = "127.0.0.1",
		.server_conf = conf,
		.backoff_min_ms = 100,
		.backoff_max_ms = 400,
		.timeout_ms = 3000,
		.log = on_log,
	};
	struct kc_link *link = NULL;
	if (kc_link_new(a, &cfg, &link, &err) < 0) {
		ok(false, "link: %s", err.message);
		kc_agent_free(a);
		goto out;
	}
	pthread_t t;
	pthread_create(&t, NULL, run_main, link);
	test_endpoints(ep, dead);

	char welcome[256];
	snprintf(welcome, sizeof(welcome),
		 "{\"v\":1,\"type\":\"welcome\",\"host\":\"%s\",\"heartbeat_s\":1}", fx.prefix);
	struct kc_tls_link *l = session("for consoles", welcome);
	struct kc_tls_link *open_st = l ? test_console(l) : NULL;

	double t0 = now_s();
	kc_link_stop(link);
	pthread_join(t, NULL);
	ok(now_s() - t0 < 5, "stop returns in %.2f s with a console stream open", now_s() - t0);
	ok(open_st && stream_ends(NULL, open_st), "and that stream has ended");
	kc_tls_close(open_st);
	kc_tls_close(l);
	kc_agent_free(a);
	kc_link_free(link);
out:
	link_fixture_cleanup();
	vm_fixture_cleanup(&fx);
	return tap_done();
}
