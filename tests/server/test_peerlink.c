/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_peerlink.c - two in-process servers A and B on one PostgreSQL
 * (KC_TEST_PG_URL; run_db_pg.sh starts one, without it the test skips),
 * no embedded agents, fake agents made of tlslink.h: host h1 holds its
 * link to B, h2 to A.  Calls through A to h1 are forwarded to B and come
 * back with their result, or their error code and message unchanged; a
 * slow call does not hold up a fast one; the scheduler counts h1 as a
 * candidate on A; B answers a forwarded call for a host it does not hold
 * with 503 rather than forwarding it again; a peer connection is accepted
 * only with a live server's peer certificate; a 503 carries Retry-After;
 * a holder that cannot be reached is a 503 naming it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <ulfius.h>
#include <unistd.h>

#include "cleanup.h"
#include "cluster.h"
#include "db_hosts.h"
#include "db_inventory.h"
#include "ha.h"
#include "hostlink.h"
#include "json_util.h"
#include "kctest.h"
#include "pki.h"
#include "server.h"
#include "srvtest.h"
#include "tlslink.h"

static char root[] = "/tmp/kcsrv-test-peer-XXXXXX";
static const char *pg_url;

struct server {
	char dir[128];
	char listen[64], alisten[64];
	int port, aport;
	struct kc_server *srv;
};
static struct server A, B;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

static bool server_start(struct server *s, const char *name)
{
	struct kc_error err = {0};
	char *buf = NULL;
	size_t len = 0;

	snprintf(s->dir, sizeof(s->dir), "%s/%s", root, name);
	if (mkdir(s->dir, 0700) < 0 && errno != EEXIST)
		return false;
	s->port = srvtest_free_port();
	s->aport = srvtest_free_port();
	snprintf(s->listen, sizeof(s->listen), "127.0.0.1:%d", s->port);
	snprintf(s->alisten, sizeof(s->alisten), "127.0.0.1:%d", s->aport);
	struct kc_server_opts o = {.data_dir = s->dir,
				   .db = pg_url,
				   .listen = s->listen,
				   .agent_listen = s->alisten,
				   .no_local_agent = true,
				   .heartbeat_s = 1,
				   .down_after_s = 60};
	FILE *out = open_memstream(&buf, &len);
	o.out = out;
	if (kc_server_open(&o, &s->srv, &err) < 0 || kc_server_start(s->srv, &o, &err) < 0) {
		kc_test_diag("server %s: %s", name, err.message);
		kc_server_free(s->srv);
		s->srv = NULL;
	}
	fclose(out);
	free(buf);
	return s->srv != NULL;
}

/* ---- fake agents ---- */

struct deferred {
	uint64_t id;
	double due;
	json_t *reply; /* the whole response message */
};

struct fake {
	char name[32];
	char key[256], cert[256];
	struct kc_tls_creds *creds;
	struct kc_tls_link *link;
	pthread_t thr;
	bool running;
};
static struct fake h1, h2;

static bool fake_make(struct fake *f, const char *name)
{
	_cleanup_free_ char *csr = NULL, *pem = NULL, *serial = NULL;
	struct kc_error err = {0};
	char ca[256];

	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->key, sizeof(f->key), "%s/%s.key", root, name);
	snprintf(f->cert, sizeof(f->cert), "%s/%s.crt", root, name);
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", A.dir);
	struct kc_db_host h = {.name = name};
	if (kc_pki_key_and_csr(f->key, "x", &csr, &err) < 0 ||
	    kc_pki_sign_csr(A.srv->pki_dir, csr, name, 30, &pem, &serial, &err) < 0 ||
	    !write_file(f->cert, pem) || kc_db_host_upsert(A.srv->db, &h, &err) < 0 ||
	    kc_db_host_set_cert(A.srv->db, name, serial, &err) < 0 ||
	    kc_tls_creds_load(ca, f->cert, f->key, &f->creds, &err) < 0) {
		kc_test_diag("fake %s: %s", name, err.message);
		return false;
	}
	return true;
}

static int tcp_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Next message other than a heartbeat, NULL on failure or timeout. */
static json_t *recv_msg(struct kc_tls_link *l, int timeout_ms)
{
	for (;;) {
		struct kc_error err = {0};
		json_t *m = NULL;
		if (kc_tls_recv_json(l, timeout_ms, &m, &err) < 0)
			return NULL;
		const char *t = json_string_value(json_object_get(m, "type"));
		if (t && strcmp(t, "heartbeat") == 0) {
			json_decref(m);
			continue;
		}
		return m;
	}
}

static bool send_msg(struct kc_tls_link *l, json_t *m)
{
	struct kc_error err = {0};
	bool ok = m && kc_tls_send_json(l, m, &err) == 0;
	json_decref(m);
	return ok;
}

/* The fake's answer to one request: echo, a not_found for vm.show, and
 * vm.create answered after args.delay_ms. */
static json_t *fake_answer(const struct fake *f, const json_t *req, double *ret_delay)
{
	json_t *id = json_object_get(req, "id");
	const char *op = json_string_value(json_object_get(req, "op"));
	json_t *args = json_object_get(req, "args");

	*ret_delay = 0;
	if (op && strcmp(op, "vm.show") == 0)
		return json_pack("{s:i,s:s,s:O,s:{s:s,s:s}}", "v", 1, "type", "response", "id", id,
				 "error", "code", "not_found", "message",
				 "domain \"nope\" not found (fake agent)");
	if (op && strcmp(op, "vm.create") == 0)
		*ret_delay = json_integer_value(json_object_get(args, "delay_ms")) / 1000.0;
	return json_pack("{s:i,s:s,s:O,s:{s:s,s:s,s:O}}", "v", 1, "type", "response", "id", id,
			 "result", "host", f->name, "op", op ? op : "?", "args", args);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct deferred later[16];
	size_t n_later = 0;
	double last_hb = now_s();

	for (;;) {
		struct kc_error err = {0};
		json_t *m = NULL;
		if (kc_tls_recv_json(f->link, 50, &m, &err) < 0 && err.code != KC_ERR_TIMEOUT)
			break;
		const char *t = json_string_value(json_object_get(m, "type"));
		if (t && strcmp(t, "request") == 0) {
			double delay;
			json_t *r = fake_answer(f, m, &delay);
			if (delay > 0 && n_later < 16)
				later[n_later++] = (struct deferred){0, now_s() + delay, r};
			else
				send_msg(f->link, r);
		}
		json_decref(m);
		for (size_t i = 0; i < n_later;) {
			if (now_s() >= later[i].due) {
				send_msg(f->link, later[i].reply);
				later[i] = later[--n_later];
			} else {
				i++;
			}
		}
		if (now_s() - last_hb > 0.5) {
			send_msg(f->link, json_pack("{s:i,s:s,s:I}", "v", 1, "type", "heartbeat",
						    "time", (json_int_t)time(NULL)));
			last_hb = now_s();
		}
	}
	for (size_t i = 0; i < n_later; i++)
		json_decref(later[i].reply);
	return NULL;
}

/* Connects f to server s, says hello and starts answering. */
static bool fake_connect(struct fake *f, const struct server *s)
{
	struct kc_error err = {0};
	int fd = tcp_to(s->aport);

	if (fd < 0 || kc_tls_connect(f->creds, fd, "127.0.0.1", 5000, &f->link, &err) < 0) {
		kc_test_diag("fake %s: connect: %s", f->name, err.message);
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (!send_msg(f->link, json_pack("{s:i,s:s,s:s,s:{s:s,s:s,s:i,s:i},s:[]}", "v", 1, "type",
					 "hello", "agent_version", "test", "facts", "uuid",
					 "00000000-0000-4000-8000-000000000002", "accel", "tcg",
					 "cpus", 4, "memory_kib", 4194304, "domains")))
		return false;
	_cleanup_json_ json_t *w = recv_msg(f->link, 5000);
	const char *t = json_string_value(json_object_get(w, "type"));
	if (!t || strcmp(t, "welcome") != 0)
		return false;
	f->running = pthread_create(&f->thr, NULL, fake_main, f) == 0;
	return f->running;
}

static void fake_free(struct fake *f)
{
	if (f->link)
		kc_tls_shutdown(f->link);
	if (f->running)
		pthread_join(f->thr, NULL);
	kc_tls_close(f->link);
	kc_tls_creds_free(f->creds);
	memset(f, 0, sizeof(*f));
}

/* ---- a raw peer connection, for the receiving side ---- */

/* A TLS connection to port with these files, peer-hello sent: the link
 * if peer-welcome came back, else NULL.  *ret_creds must outlive the
 * link (free both with peer_close). */
static struct kc_tls_link *peer_open(const char *ca, const char *cert, const char *key, int port,
				     struct kc_tls_creds **ret_creds)
{
	struct kc_tls_link *l = NULL;
	struct kc_error err = {0};
	int fd = tcp_to(port);

	*ret_creds = NULL;
	if (fd < 0 || kc_tls_creds_load(ca, cert, key, ret_creds, &err) < 0 ||
	    kc_tls_connect(*ret_creds, fd, "127.0.0.1", 5000, &l, &err) < 0) {
		kc_test_diag("peer connect: %s", err.message);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	bool welcomed = false;
	if (send_msg(l, json_pack("{s:i,s:s}", "v", 1, "type", "peer-hello"))) {
		_cleanup_json_ json_t *w = recv_msg(l, 5000);
		const char *t = json_string_value(json_object_get(w, "type"));
		welcomed = t && strcmp(t, "peer-welcome") == 0;
	}
	if (!welcomed) {
		kc_tls_close(l);
		l = NULL;
	}
	return l;
}

static void peer_close(struct kc_tls_link *l, struct kc_tls_creds *creds)
{
	kc_tls_close(l);
	kc_tls_creds_free(creds);
}

/* One request on a raw peer link; the response (or NULL). */
static json_t *peer_request(struct kc_tls_link *l, uint64_t id, const char *host, const char *op)
{
	if (!send_msg(l, json_pack("{s:i,s:s,s:I,s:s,s:s,s:{}}", "v", 1, "type", "request", "id",
				   (json_int_t)id, "host", host, "op", op, "args")))
		return NULL;
	return recv_msg(l, 10000);
}

/* ---- tests ---- */

static bool ready;

KC_TEST(forwarded_call_returns_the_holders_result)
{
	if (!KC_CHECK(ready))
		return;
	KC_CHECK(!kc_host_held_here(A.srv, "h1"));
	KC_CHECK(kc_host_reachable(A.srv, "h1"));
	_cleanup_json_ json_t *args = json_pack("{s:i}", "x", 7);
	_cleanup_json_ json_t *res = NULL;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_host_call(A.srv, "h1", "host.facts", args, &res, &err), 0))
		kc_test_diag("%s", err.message);
	KC_CHECK_STREQ(json_string_value(json_object_get(res, "host")), "h1");
	KC_CHECK_STREQ(json_string_value(json_object_get(res, "op")), "host.facts");
	KC_CHECK(json_equal(json_object_get(res, "args"), args));
}

KC_TEST(forwarded_error_keeps_code_and_message)
{
	if (!KC_CHECK(ready))
		return;
	_cleanup_json_ json_t *res = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_host_call(A.srv, "h1", "vm.show", NULL, &res, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	KC_CHECK_STREQ(err.message, "domain \"nope\" not found (fake agent)");
}

struct slow_call {
	int rc;
	double took;
	json_t *res;
};

static void *slow_main(void *arg)
{
	struct slow_call *s = arg;
	_cleanup_json_ json_t *args = json_pack("{s:i}", "delay_ms", 2000);
	struct kc_error err = {0};
	double t0 = now_s();
	s->rc = kc_host_call(A.srv, "h1", "vm.create", args, &s->res, &err);
	s->took = now_s() - t0;
	return NULL;
}

KC_TEST(a_slow_forwarded_call_does_not_block_others)
{
	if (!KC_CHECK(ready))
		return;
	struct slow_call s = {.rc = -2};
	pthread_t t;
	if (!KC_CHECK(pthread_create(&t, NULL, slow_main, &s) == 0))
		return;
	usleep(300 * 1000);
	_cleanup_json_ json_t *res = NULL;
	struct kc_error err = {0};
	double t0 = now_s();
	KC_CHECK_INT(kc_host_call(A.srv, "h1", "host.facts", NULL, &res, &err), 0);
	double fast = now_s() - t0;
	KC_CHECK(fast < 1.0);
	pthread_join(t, NULL);
	KC_CHECK_INT(s.rc, 0);
	KC_CHECK(s.took >= 1.9);
	KC_CHECK_STREQ(json_string_value(json_object_get(s.res, "op")), "vm.create");
	kc_test_diag("fast call %.3f s while the slow one took %.3f s", fast, s.took);
	json_decref(s.res);
}

KC_TEST(the_scheduler_counts_a_host_held_by_another_server)
{
	if (!KC_CHECK(ready))
		return;
	_cleanup_free_ char *host = NULL;
	struct kc_error err = {0};
	if (!KC_CHECK_INT(kc_place_vm(A.srv, "h1", &host, &err), 0))
		kc_test_diag("%s", err.message);
	KC_CHECK_STREQ(host, "h1");
}

KC_TEST(the_receiver_never_forwards_again)
{
	if (!KC_CHECK(ready))
		return;
	struct kc_tls_creds *creds = NULL;
	char ca[256], cert[256], key[256];
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", A.dir);
	snprintf(cert, sizeof(cert), "%s/pki/peer.crt", A.dir);
	snprintf(key, sizeof(key), "%s/pki/peer.key", A.dir);
	/* A's peer certificate, to B: h1 (B's) works, h2 (A's) is a 503. */
	struct kc_tls_link *l = peer_open(ca, cert, key, B.aport, &creds);
	if (!KC_CHECK(l)) {
		kc_tls_creds_free(creds);
		return;
	}
	_cleanup_json_ json_t *r1 = peer_request(l, 1, "h1", "host.facts");
	KC_CHECK_STREQ(json_string_value(json_object_get(json_object_get(r1, "result"), "host")),
		       "h1");
	_cleanup_json_ json_t *r2 = peer_request(l, 2, "h2", "host.facts");
	json_t *e2 = json_object_get(r2, "error");
	KC_CHECK_INT(json_integer_value(json_object_get(r2, "id")), 2);
	KC_CHECK_STREQ(json_string_value(json_object_get(e2, "code")), "unavailable");
	/* Bad requests close the connection. */
	send_msg(l, json_pack("{s:i,s:s,s:I,s:s,s:s,s:{}}", "v", 1, "type", "request", "id",
			      (json_int_t)3, "host", "../x", "op", "host.facts", "args"));
	KC_CHECK(recv_msg(l, 5000) == NULL);
	peer_close(l, creds);
}

KC_TEST(only_a_live_servers_peer_certificate_is_a_peer)
{
	if (!KC_CHECK(ready))
		return;
	_cleanup_free_ char *csr = NULL, *pem = NULL, *serial = NULL;
	_cleanup_json_ json_t *row = NULL;
	struct kc_tls_creds *creds = NULL;
	struct kc_error err = {0};
	char ca[256], cert[256], key[256];
	snprintf(ca, sizeof(ca), "%s/pki/ca.crt", A.dir);
	snprintf(cert, sizeof(cert), "%s/rogue.crt", root);
	snprintf(key, sizeof(key), "%s/rogue.key", root);
	/* Signed by the CA with the peer CN, but no server row has its serial. */
	KC_CHECK(kc_pki_key_and_csr(key, "x", &csr, &err) == 0 &&
		 kc_pki_sign_csr(A.srv->pki_dir, csr, KC_HA_PEER_CN, 30, &pem, &serial, &err) ==
			 0 &&
		 write_file(cert, pem));
	struct kc_tls_link *l = peer_open(ca, cert, key, B.aport, &creds);
	KC_CHECK(l == NULL);
	peer_close(l, creds);
	/* A host's certificate is a host, whatever its first message says. */
	l = peer_open(ca, h2.cert, h2.key, B.aport, &creds);
	KC_CHECK(l == NULL);
	peer_close(l, creds);
	/* A's own serial is a peer, but only with the peer CN. */
	KC_CHECK_INT(kc_db_query_row(B.srv->db,
				     "SELECT cert_serial FROM servers WHERE agent_endpoint = $1",
				     KC_DB_PARAMS(KC_DB_TEXT(A.srv->agent_endpoint)), &row, &err),
		     0);
	const char *a_serial = json_string_value(json_object_get(row, "cert_serial"));
	KC_CHECK(a_serial && kc_ha_is_peer(B.srv, KC_HA_PEER_CN, a_serial, NULL));
	KC_CHECK(a_serial && !kc_ha_is_peer(B.srv, "h2", a_serial, NULL));
	KC_CHECK(!kc_ha_is_peer(B.srv, KC_HA_PEER_CN, serial, NULL));
}

static bool header_retry_after(const struct server *s, const char *method, const char *path,
			       long *ret_status, char *ret_value, size_t size)
{
	struct _u_request req;
	struct _u_response resp;
	char url[256], auth[256], tokpath[256], token[128] = "";

	snprintf(tokpath, sizeof(tokpath), "%s/admin.token", A.dir);
	FILE *f = fopen(tokpath, "re");
	if (f && fscanf(f, "%127s", token) != 1)
		token[0] = '\0';
	if (f)
		fclose(f);
	ulfius_init_request(&req);
	ulfius_init_response(&resp);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", s->port, path);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	req.http_verb = strdup(method);
	req.http_url = strdup(url);
	req.check_server_certificate = 0;
	u_map_put(req.map_header, "Authorization", auth);
	bool ok = ulfius_send_http_request(&req, &resp) == U_OK;
	*ret_status = resp.status;
	const char *v = ok ? u_map_get_case(resp.map_header, "Retry-After") : NULL;
	snprintf(ret_value, size, "%s", v ? v : "");
	ulfius_clean_request(&req);
	ulfius_clean_response(&resp);
	return ok;
}

KC_TEST(a_503_says_when_to_retry)
{
	if (!KC_CHECK(ready))
		return;
	struct kc_db_host h = {.name = "hdown"};
	struct kc_error err = {0};
	long status = 0;
	char v[32];
	KC_CHECK_INT(kc_db_host_upsert(A.srv->db, &h, &err), 0);
	KC_CHECK(
		header_retry_after(&A, "POST", "/api/v1/hosts/hdown/check", &status, v, sizeof(v)));
	KC_CHECK_INT(status, 503);
	KC_CHECK_STREQ(v, "2");
	/* Forwarded through A to B and back: a 200 without the header. */
	KC_CHECK(header_retry_after(&A, "POST", "/api/v1/hosts/h1/check", &status, v, sizeof(v)));
	KC_CHECK_INT(status, 200);
	KC_CHECK_STREQ(v, "");
}

KC_TEST(a_holder_that_cannot_be_reached_is_a_503_naming_it)
{
	if (!KC_CHECK(ready))
		return;
	struct kc_error err = {0};
	_cleanup_json_ json_t *res = NULL;
	char ep[64], now[21];

	/* B dies without a word (as kill -9): its row stays fresh, h1 stays
	 * connected_to B, and A finds nobody at B's endpoint. */
	snprintf(ep, sizeof(ep), "%s", B.srv->agent_endpoint);
	fake_free(&h1);
	kc_server_free(B.srv);
	B.srv = NULL;
	kc_db_now(now);
	KC_CHECK_INT(kc_db_exec(A.srv->db,
				"INSERT INTO servers (agent_endpoint, started_at, last_seen_at) "
				"VALUES ($1, $2, $2)",
				KC_DB_PARAMS(KC_DB_TEXT(ep), KC_DB_TEXT(now)), NULL, &err),
		     0);
	KC_CHECK_INT(
		kc_db_exec(A.srv->db,
			   "UPDATE hosts SET connected_to = $1, state = 'Up' WHERE name = 'h1'",
			   KC_DB_PARAMS(KC_DB_TEXT(ep)), NULL, &err),
		0);
	KC_CHECK_INT(kc_host_call(A.srv, "h1", "host.facts", NULL, &res, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_UNAVAILABLE);
	KC_CHECK(strstr(err.message, ep) != NULL);
	kc_test_diag("%s", err.message);
}

int main(void)
{
	pg_url = getenv("KC_TEST_PG_URL");
	if (!pg_url || !*pg_url) {
		printf("1..0 # SKIP KC_TEST_PG_URL is not set (run_db_pg.sh sets it)\n");
		return 0;
	}
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	ulfius_global_init();
	/* A first: it stores the cluster CA that B then loads. */
	if (server_start(&A, "a") && server_start(&B, "b") && fake_make(&h1, "h1") &&
	    fake_make(&h2, "h2") && fake_connect(&h1, &B) && fake_connect(&h2, &A))
		ready = true;
	kc_test_run_registered();
	fake_free(&h1);
	fake_free(&h2);
	kc_server_free(B.srv);
	kc_server_free(A.srv);
	ulfius_global_close();
	srvtest_rm_rf(root);
	return kc_test_finish();
}
