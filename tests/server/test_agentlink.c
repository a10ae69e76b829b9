/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agentlink.c - the server side of the cluster link against a fake
 * agent made of tlslink.h (and raw GnuTLS for frames tlslink refuses to
 * send).  The server runs in-process without an embedded agent (no
 * libvirt needed), with a 1 s heartbeat so that staleness shows in
 * seconds: joining (tokens once only, expired, wrong: one 401), hello and
 * welcome, a request routed from the REST API to the agent and back,
 * heartbeats -> Up, silence -> Disconnected -> Down, revocation (live link
 * closed, handshake refused), unknown CN and superseded certificates
 * refused, oversized frames and garbage closing only their own link, and
 * the rate limit on failed joins.
 */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ulfius.h>
#include <unistd.h>

#include "cleanup.h"
#include "cluster.h"
#include "json_util.h"
#include "kctest.h"
#include "pki.h"
#include "server.h"
#include "srvtest.h"
#include "tlslink.h"

static struct srvtest S;

static struct srvtest_reply call(const char *method, const char *path, const char *tok,
				 const char *body)
{
	return srvtest_call(&S, method, path, tok, body);
}

/* ---- the fake agent ---- */

struct fake {
	char name[64];
	char key[256], cert[256], ca[256];
	struct kc_tls_creds *creds;
	struct kc_tls_link *link;
};

static void fake_paths(struct fake *f, const char *name)
{
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->key, sizeof(f->key), "%s/%s.key", S.dir, name);
	snprintf(f->cert, sizeof(f->cert), "%s/%s.crt", S.dir, name);
	snprintf(f->ca, sizeof(f->ca), "%s/%s-ca.crt", S.dir, name);
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

/* POST /api/v1/hosts: the join token of a new host. */
static bool host_add(const char *name, char *ret_token, size_t size)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
	struct srvtest_reply r = call("POST", "/api/v1/hosts", S.token, body);
	const char *t = json_string_value(json_object_get(r.json, "join_token"));
	const char *cmd = json_string_value(json_object_get(r.json, "command"));
	bool ok = r.status == 201 && t && cmd && strstr(cmd, t) && strstr(cmd, "--ca-sha256 ");
	if (ok)
		snprintf(ret_token, size, "%s", t);
	else
		kc_test_diag("host add %s: %ld", name, r.status);
	srvtest_reply_clear(&r);
	return ok;
}

/* POST /api/v1/join with a fresh key; *ret_status the HTTP status. */
static struct srvtest_reply join(struct fake *f, const char *join_token)
{
	_cleanup_free_ char *csr = NULL;
	struct kc_error err = {0};
	struct srvtest_reply r = {0};

	if (kc_pki_key_and_csr(f->key, "anything", &csr, &err) < 0) {
		kc_test_diag("csr: %s", err.message);
		return r;
	}
	_cleanup_json_ json_t *body = json_pack("{s:s,s:s}", "token", join_token, "csr", csr);
	_cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
	r = call("POST", "/api/v1/join", NULL, text);
	if (r.status == 200) {
		write_file(f->cert, json_string_value(json_object_get(r.json, "certificate")));
		write_file(f->ca, json_string_value(json_object_get(r.json, "ca")));
	}
	return r;
}

static int tcp_connect(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(S.agent_port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* TLS only (no hello). */
static bool fake_tls(struct fake *f)
{
	struct kc_error err = {0};

	if (!f->creds && kc_tls_creds_load(f->ca, f->cert, f->key, &f->creds, &err) < 0) {
		kc_test_diag("creds: %s", err.message);
		return false;
	}
	int fd = tcp_connect();
	if (fd < 0 || kc_tls_connect(f->creds, fd, "127.0.0.1", 5000, &f->link, &err) < 0) {
		kc_test_diag("connect: %s", err.message);
		if (fd >= 0)
			close(fd);
		return false;
	}
	return true;
}

static bool fake_send(struct fake *f, json_t *msg)
{
	struct kc_error err = {0};
	bool ok = msg && kc_tls_send_json(f->link, msg, &err) == 0;
	json_decref(msg);
	return ok;
}

/* Next message other than a server heartbeat; NULL when the link fails. */
static json_t *fake_recv(struct fake *f, int timeout_ms)
{
	struct kc_error err = {0};

	for (;;) {
		json_t *m = NULL;
		if (kc_tls_recv_json(f->link, timeout_ms, &m, &err) < 0)
			return NULL;
		const char *t = json_string_value(json_object_get(m, "type"));
		if (t && strcmp(t, "heartbeat") == 0) {
			json_decref(m);
			continue;
		}
		return m;
	}
}

/* Has the server closed the link (within timeout_ms)? */
static bool fake_closed(struct fake *f, int timeout_ms)
{
	struct kc_error err = {0};

	for (int waited = 0; waited < timeout_ms; waited += 200) {
		json_t *m = NULL;
		kc_error_clear(&err);
		if (kc_tls_recv_json(f->link, 200, &m, &err) < 0 && err.code != KC_ERR_TIMEOUT)
			return true;
		json_decref(m);
	}
	return false;
}

static bool fake_hello(struct fake *f, json_t *domains)
{
	if (!fake_tls(f))
		return false;
	/* cpus and memory_kib: the scheduler places only on hosts it can size. */
	if (!fake_send(f, json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:i,s:i},s:o}", "v", 1, "type",
				    "hello", "agent_version", "test", "facts", "uuid",
				    "00000000-0000-4000-8000-000000000001", "accel", "tcg", "cpus",
				    4, "memory_kib", 4194304, "domains",
				    domains ? domains : json_array())))
		return false;
	_cleanup_json_ json_t *w = fake_recv(f, 5000);
	const char *t = json_string_value(json_object_get(w, "type"));
	const char *h = json_string_value(json_object_get(w, "host"));
	return t && strcmp(t, "welcome") == 0 && h && strcmp(h, f->name) == 0 &&
	       json_integer_value(json_object_get(w, "heartbeat_s")) == 1;
}

static bool fake_heartbeat(struct fake *f)
{
	return fake_send(f, json_pack("{s:i,s:s,s:I}", "v", 1, "type", "heartbeat", "time",
				      (json_int_t)time(NULL)));
}

static void fake_close(struct fake *f)
{
	kc_tls_close(f->link);
	f->link = NULL;
}

static void fake_free(struct fake *f)
{
	fake_close(f);
	kc_tls_creds_free(f->creds);
	f->creds = NULL;
}

static const char *host_state(const char *name)
{
	static char state[32];
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/hosts/%s", name);
	struct srvtest_reply r = call("GET", path, S.token, NULL);
	const char *s = json_string_value(json_object_get(r.json, "state"));
	snprintf(state, sizeof(state), "%s", s ? s : r.status == 404 ? "(gone)" : "(none)");
	srvtest_reply_clear(&r);
	return state;
}

/* Waits up to `seconds` for a host state, sending heartbeats on f if given. */
static bool wait_state(const char *name, const char *want, int seconds, struct fake *hb)
{
	for (int i = 0; i < seconds * 4; i++) {
		if (strcmp(host_state(name), want) == 0)
			return true;
		if (hb)
			fake_heartbeat(hb);
		usleep(250 * 1000);
	}
	kc_test_diag("host %s: state %s, wanted %s", name, host_state(name), want);
	return false;
}

/* ---- raw TLS, for frames tlslink.h will not send ---- */

struct raw {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
	int fd;
};

static bool raw_open(struct raw *r, const struct fake *f)
{
	memset(r, 0, sizeof(*r));
	r->fd = tcp_connect();
	if (r->fd < 0 || gnutls_certificate_allocate_credentials(&r->cred) < 0 ||
	    gnutls_certificate_set_x509_trust_file(r->cred, f->ca, GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_certificate_set_x509_key_file(r->cred, f->cert, f->key, GNUTLS_X509_FMT_PEM) <
		    0 ||
	    gnutls_init(&r->s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(r->s, KC_TLS_PRIORITIES, NULL) < 0 ||
	    gnutls_credentials_set(r->s, GNUTLS_CRD_CERTIFICATE, r->cred) < 0)
		return false;
	gnutls_transport_set_int(r->s, r->fd);
	gnutls_handshake_set_timeout(r->s, 5000);
	int rc;
	do
		rc = gnutls_handshake(r->s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	return rc == 0;
}

static bool raw_send(struct raw *r, const void *buf, size_t len)
{
	return gnutls_record_send(r->s, buf, len) == (ssize_t)len;
}

/* The server closed the connection within ~5 s? */
static bool raw_closed(struct raw *r)
{
	char buf[4096];

	gnutls_record_set_timeout(r->s, 5000);
	for (int i = 0; i < 50; i++) {
		ssize_t n = gnutls_record_recv(r->s, buf, sizeof(buf));
		if (n == 0 || (n < 0 && n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED))
			return n != GNUTLS_E_TIMEDOUT;
	}
	return false;
}

static void raw_close(struct raw *r)
{
	if (r->s)
		gnutls_deinit(r->s);
	if (r->cred)
		gnutls_certificate_free_credentials(r->cred);
	if (r->fd >= 0)
		close(r->fd);
}

/* ---- tests ---- */

static struct fake h1;
static char h1_token[128];

KC_TEST(ca_is_public_and_join_tokens_work_once)
{
	if (!KC_CHECK(S.srv))
		return;
	struct srvtest_reply r = call("GET", "/api/v1/ca", NULL, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);

	fake_paths(&h1, "kclink-h1");
	if (!KC_CHECK(host_add("kclink-h1", h1_token, sizeof(h1_token))))
		return;
	KC_CHECK_STREQ(host_state("kclink-h1"), "Pending");
	r = call("POST", "/api/v1/hosts", S.token, "{\"name\":\"kclink-h1\"}");
	KC_CHECK_INT(r.status, 409);
	srvtest_reply_clear(&r);

	/* Wrong, malformed, then right, then used again. */
	char wrong[128];
	snprintf(wrong, sizeof(wrong), "%s", h1_token);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	r = join(&h1, wrong);
	KC_CHECK_INT(r.status, 401);
	char first_msg[256];
	snprintf(first_msg, sizeof(first_msg), "%s",
		 srvtest_err_msg(&r) ? srvtest_err_msg(&r) : "");
	srvtest_reply_clear(&r);
	r = join(&h1, "not-hex");
	KC_CHECK_INT(r.status, 401);
	KC_CHECK_STREQ(srvtest_err_msg(&r), first_msg);
	srvtest_reply_clear(&r);

	r = join(&h1, h1_token);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "host")), "kclink-h1");
	const char *ep = json_string_value(json_object_get(r.json, "agent_endpoint"));
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%d", S.agent_port);
	KC_CHECK_STREQ(ep, want);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "server_name")), "127.0.0.1");
	srvtest_reply_clear(&r);

	struct fake again = {0};
	fake_paths(&again, "kclink-again");
	r = join(&again, h1_token);
	KC_CHECK_INT(r.status, 401);
	KC_CHECK_STREQ(srvtest_err_msg(&r), first_msg);
	srvtest_reply_clear(&r);

	/* Expired: a token whose hour is over. */
	struct kc_error err = {0};
	char tok[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	char hash[65], past[21];
	kc_join_token_hash(tok, hash);
	kc_db_time_from_now(-10, past);
	KC_CHECK(kc_db_host_add(S.srv->db, "kclink-old", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_join_token_create(S.srv->db, hash, "kclink-old", past, &err) == 0);
	r = join(&again, tok);
	KC_CHECK_INT(r.status, 401);
	KC_CHECK_STREQ(srvtest_err_msg(&r), first_msg);
	srvtest_reply_clear(&r);

	/* Bodies over 32 KiB are refused before anything is looked at. */
	_cleanup_free_ char *big = malloc(40 * 1024);
	memset(big, 'a', 40 * 1024 - 1);
	big[40 * 1024 - 1] = '\0';
	memcpy(big, "{\"token\":\"", 10);
	memcpy(big + 40 * 1024 - 3, "\"}", 2);
	r = call("POST", "/api/v1/join", NULL, big);
	KC_CHECK_INT(r.status, 413);
	srvtest_reply_clear(&r);
}

KC_TEST(hello_welcome_and_heartbeats_make_the_host_up)
{
	if (!KC_CHECK(fake_hello(&h1, NULL)))
		return;
	KC_CHECK(wait_state("kclink-h1", "Up", 5, &h1));
	/* Several intervals of heartbeats: still Up. */
	for (int i = 0; i < 5; i++) {
		KC_CHECK(fake_heartbeat(&h1));
		usleep(800 * 1000);
	}
	KC_CHECK_STREQ(host_state("kclink-h1"), "Up");
	struct srvtest_reply r = call("GET", "/api/v1/hosts/kclink-h1", S.token, NULL);
	KC_CHECK(json_is_true(json_object_get(r.json, "connected")));
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "accel")), "tcg");
	/* The address its link came from: the other hosts' firewall peer. */
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "address")), "127.0.0.1");
	srvtest_reply_clear(&r);
}

struct api_call {
	const char *method, *path, *body;
	struct srvtest_reply r;
};

static void *api_thread(void *arg)
{
	struct api_call *a = arg;
	a->r = call(a->method, a->path, S.token, a->body);
	return NULL;
}

/* Network pushes the fake agents answered (host.firewall.peers, sg.apply). */
static int pushes_seen;

/* Answers one request from the server with `result` (or error code). */
static bool answer(struct fake *f, const char *want_op, json_t *result, const char *error_code)
{
	for (int i = 0; i < 20; i++) {
		_cleanup_json_ json_t *m = fake_recv(f, 500);
		if (!m) {
			fake_heartbeat(f);
			continue;
		}
		const char *t = json_string_value(json_object_get(m, "type"));
		const char *op = json_string_value(json_object_get(m, "op"));
		if (t && strcmp(t, "endpoints") == 0)
			continue; /* the server's list of endpoints, any time */
		/* After a hello the server sends the host its firewall peers and
		 * its security group ruleset (hostfw_push.h), by itself. */
		if (t && strcmp(t, "request") == 0 && op && strcmp(op, want_op) != 0 &&
		    (strcmp(op, "host.firewall.peers") == 0 || strcmp(op, "sg.apply") == 0)) {
			pushes_seen++;
			fake_send(f, json_pack("{s:i,s:s,s:O,s:{}}", "v", 1, "type", "response",
					       "id", json_object_get(m, "id"), "result"));
			continue;
		}
		if (!t || strcmp(t, "request") != 0 || !op || strcmp(op, want_op) != 0) {
			kc_test_diag("unexpected message %s %s", t ? t : "?", op ? op : "?");
			json_decref(result);
			return false;
		}
		json_t *id = json_object_get(m, "id");
		json_t *resp = error_code ? json_pack("{s:i,s:s,s:O,s:{s:s,s:s}}", "v", 1, "type",
						      "response", "id", id, "error", "code",
						      error_code, "message", "fake agent says no")
					  : json_pack("{s:i,s:s,s:O,s:o}", "v", 1, "type",
						      "response", "id", id, "result", result);
		return fake_send(f, resp);
	}
	json_decref(result);
	return false;
}

KC_TEST(api_requests_reach_the_agent_and_come_back)
{
	/* ?live=true asks the host, and shows its domains without a record. */
	struct api_call a = {"GET", "/api/v1/vms?live=true", NULL, {0}};
	pthread_t t;

	if (!KC_CHECK(h1.link) || !KC_CHECK(pthread_create(&t, NULL, api_thread, &a) == 0))
		return;
	KC_CHECK(answer(&h1, "vm.list",
			json_pack("[{s:s,s:s,s:s}]", "name", "kclink-dom", "state", "running",
				  "uuid", "u1"),
			NULL));
	pthread_join(t, NULL);
	KC_CHECK_INT(a.r.status, 200);
	json_t *vm = json_array_get(json_object_get(a.r.json, "vms"), 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "name")), "kclink-dom");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "host")), "kclink-h1");
	KC_CHECK(json_is_false(json_object_get(vm, "managed")));
	srvtest_reply_clear(&a.r);

	/* A create placed by name: vm.show (not found), then vm.create. */
	a = (struct api_call){"POST",
			      "/api/v1/vms",
			      "{\"name\":\"kclink-vm\",\"memory_mib\":64,\"image\":\"kctest\","
			      "\"host\":\"kclink-h1\"}",
			      {0}};
	if (!KC_CHECK(pthread_create(&t, NULL, api_thread, &a) == 0))
		return;
	KC_CHECK(answer(&h1, "vm.show", NULL, "not_found"));
	KC_CHECK(answer(
		&h1, "vm.create",
		json_pack("{s:s,s:s,s:s}", "name", "kclink-vm", "uuid", "u2", "state", "running"),
		NULL));
	pthread_join(t, NULL);
	KC_CHECK_INT(a.r.status, 201);
	KC_CHECK_STREQ(json_string_value(json_object_get(a.r.json, "host")), "kclink-h1");
	KC_CHECK(json_is_true(json_object_get(a.r.json, "managed")));
	srvtest_reply_clear(&a.r);

	/* The agent's error comes back as the API's. */
	a = (struct api_call){"POST", "/api/v1/vms/kclink-vm/start", NULL, {0}};
	if (!KC_CHECK(pthread_create(&t, NULL, api_thread, &a) == 0))
		return;
	KC_CHECK(answer(&h1, "vm.show",
			json_pack("{s:s,s:s}", "name", "kclink-vm", "state", "running"), NULL));
	KC_CHECK(answer(&h1, "vm.start", NULL, "conflict"));
	pthread_join(t, NULL);
	KC_CHECK_INT(a.r.status, 409);
	KC_CHECK_STREQ(srvtest_err_msg(&a.r), "fake agent says no");
	srvtest_reply_clear(&a.r);

	/* An event updates the record's state, for this host's VMs only. */
	KC_CHECK(fake_send(&h1, json_pack("{s:i,s:s,s:s,s:s,s:s}", "v", 1, "type", "event", "event",
					  "vm.state", "vm", "kclink-vm", "state", "stopped")));
	json_t *row = NULL;
	struct kc_error err = {0};
	for (int i = 0; i < 20; i++) {
		json_decref(row);
		row = NULL;
		kc_db_vm_get(S.srv->db, "kclink-vm", &row, &err);
		if (strcmp(json_string_value(json_object_get(row, "state")), "shutoff") == 0)
			break;
		usleep(100 * 1000);
	}
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "shutoff");
	json_decref(row);

	/* The plain list is the database's: no call reaches the fake agent
	 * (which would not answer), the event's state is there, and so is
	 * the host's state; the unmanaged domain is not. */
	struct srvtest_reply r = call("GET", "/api/v1/vms", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	json_t *vms = json_object_get(r.json, "vms");
	KC_CHECK_INT(json_array_size(vms), 1);
	vm = json_array_get(vms, 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "name")), "kclink-vm");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "state")), "shutoff");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "host")), "kclink-h1");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "host_state")), "Up");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "image")), "kctest");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "owner")), "admin");
	KC_CHECK(json_is_true(json_object_get(vm, "managed")));
	KC_CHECK(!json_object_get(vm, "host_reachable"));
	srvtest_reply_clear(&r);
	/* The hello was followed by the server's own pushes (peers first). */
	KC_CHECK(pushes_seen >= 1);
}

KC_TEST(silence_makes_the_host_disconnected_then_down)
{
	if (!KC_CHECK(h1.link))
		return;
	/* No heartbeats: after 3 intervals the link is closed... */
	KC_CHECK(fake_closed(&h1, 6000));
	fake_close(&h1);
	KC_CHECK(wait_state("kclink-h1", "Disconnected", 5, NULL));
	/* ...its VM shows its last known state, and calls fail fast. */
	struct srvtest_reply r = call("GET", "/api/v1/vms/kclink-vm", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "state")), "shutoff");
	srvtest_reply_clear(&r);
	/* So does the list, saying why it is only the last known. */
	r = call("GET", "/api/v1/vms", S.token, NULL);
	json_t *vm = json_array_get(json_object_get(r.json, "vms"), 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "state")), "shutoff");
	KC_CHECK_STREQ(json_string_value(json_object_get(vm, "host_state")), "Disconnected");
	KC_CHECK(json_is_false(json_object_get(vm, "host_reachable")));
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/vms/kclink-vm/start", S.token, NULL);
	KC_CHECK_INT(r.status, 503);
	srvtest_reply_clear(&r);
	/* --down-after 3 */
	KC_CHECK(wait_state("kclink-h1", "Down", 10, NULL));
	/* It comes back: Up again, and its hello reconciles the record. */
	if (!KC_CHECK(fake_hello(&h1, json_pack("[]"))))
		return;
	KC_CHECK(wait_state("kclink-h1", "Up", 5, &h1));
	json_t *row = NULL;
	struct kc_error err = {0};
	kc_db_vm_get(S.srv->db, "kclink-vm", &row, &err);
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "missing");
	json_decref(row);
}

KC_TEST(garbage_and_oversized_frames_close_only_that_link)
{
	static const unsigned char big[4] = {0x00, 0x20, 0x00, 0x00}; /* 2 MiB */
	static const unsigned char junk[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
	struct raw r;

	KC_CHECK(raw_open(&r, &h1) && raw_send(&r, big, sizeof(big)) && raw_closed(&r));
	raw_close(&r);
	KC_CHECK(raw_open(&r, &h1) && raw_send(&r, junk, sizeof(junk)) && raw_closed(&r));
	raw_close(&r);
	/* The newest connection of a host replaces the older one: reconnect. */
	fake_close(&h1);
	if (!KC_CHECK(fake_hello(&h1, NULL)))
		return;
	/* An unknown message type after hello closes the link too. */
	KC_CHECK(fake_send(&h1, json_pack("{s:i,s:s}", "v", 1, "type", "bogus")));
	KC_CHECK(fake_closed(&h1, 3000));
	fake_close(&h1);
	/* And the server still serves. */
	KC_CHECK(fake_hello(&h1, NULL));
	KC_CHECK(wait_state("kclink-h1", "Up", 5, &h1));
}

KC_TEST(unknown_cn_and_old_certificates_are_refused)
{
	struct kc_error err = {0};
	_cleanup_free_ char *csr = NULL, *pem = NULL, *serial = NULL;
	struct fake s = {0};

	/* Signed by the cluster CA, but for a name that is no host. */
	fake_paths(&s, "kclink-stranger");
	if (!KC_CHECK(kc_pki_key_and_csr(s.key, "x", &csr, &err) == 0) ||
	    !KC_CHECK(kc_pki_sign_csr(S.srv->pki_dir, csr, "kclink-stranger", 1, &pem, &serial,
				      &err) == 0))
		return;
	write_file(s.cert, pem);
	snprintf(s.ca, sizeof(s.ca), "%s/ca.crt", S.srv->pki_dir);
	KC_CHECK(fake_tls(&s) && fake_closed(&s, 3000));
	fake_free(&s);

	/* A second certificate for h1 that is not its recorded one. */
	free(pem);
	free(serial);
	pem = serial = NULL;
	if (!KC_CHECK(kc_pki_sign_csr(S.srv->pki_dir, csr, "kclink-h1", 1, &pem, &serial, &err) ==
		      0))
		return;
	write_file(s.cert, pem);
	KC_CHECK(fake_tls(&s) && fake_closed(&s, 3000));
	fake_free(&s);
	KC_CHECK_STREQ(host_state("kclink-h1"), "Up");
}

KC_TEST(removing_a_host_revokes_and_closes_its_link)
{
	if (!KC_CHECK(h1.link))
		return;
	/* Its VM records first (the fake agent answers the delete). */
	struct api_call a = {"DELETE", "/api/v1/vms/kclink-vm", NULL, {0}};
	pthread_t t;
	if (!KC_CHECK(pthread_create(&t, NULL, api_thread, &a) == 0))
		return;
	KC_CHECK(answer(&h1, "vm.show", NULL, "not_found"));
	KC_CHECK(answer(&h1, "vm.delete", NULL, "not_found"));
	pthread_join(t, NULL);
	KC_CHECK_INT(a.r.status, 200);
	srvtest_reply_clear(&a.r);

	struct srvtest_reply r = call("DELETE", "/api/v1/hosts/kclink-h1", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK(json_is_string(json_object_get(r.json, "revoked_serial")));
	srvtest_reply_clear(&r);
	KC_CHECK(fake_closed(&h1, 3000));
	fake_close(&h1);
	/* Refused at the handshake (TLS 1.3: the client sees it on its first read). */
	KC_CHECK(fake_tls(&h1) && fake_closed(&h1, 3000));
	fake_free(&h1);
	KC_CHECK_STREQ(host_state("kclink-h1"), "(gone)");
	/* Even if someone re-adds the name: the old certificate stays revoked. */
	char tok[128];
	KC_CHECK(host_add("kclink-h1", tok, sizeof(tok)));
	KC_CHECK(fake_tls(&h1) && fake_closed(&h1, 3000));
	fake_free(&h1);
}

KC_TEST(inventory_routes)
{
	struct srvtest_reply r = call("POST", "/api/v1/zones", S.token, "{\"name\":\"kclink-z\"}");
	KC_CHECK_INT(r.status, 201);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/clusters", S.token,
		 "{\"name\":\"kclink-c\",\"zone\":\"kclink-z\"}");
	KC_CHECK_INT(r.status, 201);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/clusters", S.token, "{\"name\":\"kclink-c2\",\"zone\":\"nope\"}");
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/hosts", S.token,
		 "{\"name\":\"kclink-h9\",\"cluster\":\"kclink-c\"}");
	KC_CHECK_INT(r.status, 201);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/hosts/kclink-h9", S.token, NULL);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "zone")), "kclink-z");
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/clusters?zone=kclink-z", S.token, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "clusters")), 1);
	srvtest_reply_clear(&r);
	r = call("DELETE", "/api/v1/hosts/kclink-h9", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	r = call("DELETE", "/api/v1/clusters/kclink-c", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	r = call("DELETE", "/api/v1/zones/kclink-z", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/zones", S.token, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "zones")), 0);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/hosts", NULL, "{\"name\":\"kclink-h8\"}");
	KC_CHECK_INT(r.status, 401);
	srvtest_reply_clear(&r);
}

/* Last: it locks 127.0.0.1 out of joining for a minute. */
/* POST /api/v1/hosts/NAME/join-token; the new token, or "" (status in *ret). */
static const char *join_token_again(const char *host, long *ret_status, char *serial, size_t n)
{
	static char tok[128];
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/hosts/%s/join-token", host);
	struct srvtest_reply r = call("POST", path, S.token, NULL);
	const char *t = json_string_value(json_object_get(r.json, "join_token"));
	const char *cmd = json_string_value(json_object_get(r.json, "command"));
	const char *rs = json_string_value(json_object_get(r.json, "revoked_serial"));
	*ret_status = r.status;
	snprintf(tok, sizeof(tok), "%s", r.status == 201 && t && cmd && strstr(cmd, t) ? t : "");
	snprintf(serial, n, "%s", rs ? rs : "");
	if (r.status != 201)
		kc_test_diag("join-token %s: %ld %s", host, r.status, r.body ? r.body : "");
	srvtest_reply_clear(&r);
	return tok;
}

KC_TEST(a_pending_host_gets_a_new_join_token)
{
	struct fake h2 = {0};
	char tok1[128], tok2[128], serial[64];
	long status = 0;

	fake_paths(&h2, "kclink-h2");
	if (!KC_CHECK(host_add("kclink-h2", tok1, sizeof(tok1))))
		return;
	snprintf(tok2, sizeof(tok2), "%s", join_token_again("kclink-h2", &status, serial, 64));
	KC_CHECK_INT(status, 201);
	KC_CHECK_INT(strlen(tok2), 64);
	KC_CHECK(strcmp(tok1, tok2) != 0);
	KC_CHECK_STREQ(serial, ""); /* no certificate to revoke yet */
	/* The token it replaces no longer works; the new one does. */
	struct srvtest_reply r = join(&h2, tok1);
	KC_CHECK_INT(r.status, 401);
	srvtest_reply_clear(&r);
	r = join(&h2, tok2);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	KC_CHECK_STREQ(host_state("kclink-h2"), "Pending");

	/* Joined but never connected: a new token revokes that certificate. */
	const char *tok3 = join_token_again("kclink-h2", &status, serial, sizeof(serial));
	KC_CHECK_INT(status, 201);
	KC_CHECK(serial[0] != '\0');
	KC_CHECK(fake_tls(&h2) && fake_closed(&h2, 3000));
	fake_free(&h2);
	r = join(&h2, tok3);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	KC_CHECK(fake_hello(&h2, NULL));
	KC_CHECK(wait_state("kclink-h2", "Up", 5, &h2));

	/* A host that has connected keeps its certificate: 409. */
	join_token_again("kclink-h2", &status, serial, sizeof(serial));
	KC_CHECK_INT(status, 409);
	join_token_again("kclink-nohost", &status, serial, sizeof(serial));
	KC_CHECK_INT(status, 404);
	r = call("POST", "/api/v1/hosts/bad..name/join-token", S.token, NULL);
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);

	r = call("DELETE", "/api/v1/hosts/kclink-h2", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	fake_free(&h2);
}

KC_TEST(failed_joins_are_rate_limited)
{
	struct fake f = {0};
	long last = 0;

	fake_paths(&f, "kclink-guess");
	for (int i = 0; i < 12; i++) {
		struct srvtest_reply r =
			join(&f, "00000000000000000000000000000000000000000000000000000000"
				 "00000000");
		last = r.status;
		srvtest_reply_clear(&r);
	}
	KC_CHECK_INT(last, 429);
}

int main(void)
{
	if (!srvtest_init(&S, "link", SRVTEST_CLUSTER))
		return 1;
	S.opts.heartbeat_s = 1;
	S.opts.down_after_s = 3;
	if (srvtest_start(&S) && !strstr(S.start_output, "agents: listening on"))
		kc_test_diag("start-up lines: %s", S.start_output);

	kc_test_run_registered();
	fake_free(&h1);
	srvtest_cleanup(&S);
	return kc_test_finish();
}
