/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for tlslink.h over socketpairs: mutual TLS with the cluster
 * CA, peer identity, revocation, host name checks, and the framing rules
 * (a hostile peer is played by a raw GnuTLS client writing bytes directly).
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "cleanup.h"
#include "json_util.h"
#include "kctest.h"
#include "pki.h"
#include "tlslink.h"

#define TIMEOUT_MS 10000

/* Made once: the cluster CA with a server and two agents (host-a, host-r),
 * and an impostor CA of the same name with its own "host-a" (the same name,
 * so that the client offers its certificate and the server must check the
 * signature, not just the issuer's name). */
static struct fixture {
	bool ready;
	char *dir;   /* cluster CA, server.*, a.*, r.* */
	char *other; /* impostor CA, a.* */
	char *serial_a;
	char *serial_r;
	char *serial_other;
} fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

__attribute__((destructor)) static void fixture_free(void)
{
	if (fx.dir)
		nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (fx.other)
		nftw(fx.other, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx.dir);
	free(fx.other);
	free(fx.serial_a);
	free(fx.serial_r);
	free(fx.serial_other);
}

static char *p(const char *dir, const char *name)
{
	static char bufs[8][4096];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

static char *make_dir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = NULL;
	if (asprintf(&path, "%s/kctest-tls-XXXXXX", base) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static char *make_agent(const char *ca_dir, const char *name, const char *cn, struct kc_error *err)
{
	char keyname[64], crtname[64];
	snprintf(keyname, sizeof(keyname), "%s.key", name);
	snprintf(crtname, sizeof(crtname), "%s.crt", name);
	_cleanup_free_ char *csr = NULL, *pem = NULL;
	char *serial = NULL;
	if (kc_pki_key_and_csr(p(ca_dir, keyname), cn, &csr, err) < 0 ||
	    kc_pki_sign_csr(ca_dir, csr, cn, 365, &pem, &serial, err) < 0)
		return NULL;
	FILE *f = fopen(p(ca_dir, crtname), "we");
	if (!f || fputs(pem, f) < 0) {
		if (f)
			fclose(f);
		free(serial);
		return NULL;
	}
	fclose(f);
	return serial;
}

static bool fixture(void)
{
	if (fx.ready)
		return true;
	struct kc_error err = {0};
	const char *dns[] = {"localhost", "server.test", NULL};
	const char *ips[] = {"127.0.0.1", "::1", NULL};
	fx.dir = make_dir();
	fx.other = make_dir();
	if (!fx.dir || !fx.other || kc_pki_ca_create(fx.dir, "cluster CA", &err) < 0 ||
	    kc_pki_server_cert_create(fx.dir, "kvmcloud-server", dns, ips, &err) < 0 ||
	    !(fx.serial_a = make_agent(fx.dir, "a", "host-a", &err)) ||
	    !(fx.serial_r = make_agent(fx.dir, "r", "host-r", &err)) ||
	    kc_pki_ca_create(fx.other, "cluster CA", &err) < 0 ||
	    !(fx.serial_other = make_agent(fx.other, "a", "host-a", &err))) {
		kc_test_diag("fixture failed: %s", err.message);
		return false;
	}
	fx.ready = true;
	return true;
}

static struct kc_tls_creds *creds(const char *ca_dir, const char *dir, const char *name)
{
	char crt[64], key[64];
	snprintf(crt, sizeof(crt), "%s.crt", name);
	snprintf(key, sizeof(key), "%s.key", name);
	struct kc_tls_creds *c = NULL;
	struct kc_error err = {0};
	if (kc_tls_creds_load(p(ca_dir, "ca.crt"), p(dir, crt), p(dir, key), &c, &err) < 0)
		kc_test_diag("creds: %s", err.message);
	return c;
}

static void creds_freep(struct kc_tls_creds **c)
{
	kc_tls_creds_free(*c);
}
#define _cleanup_creds_ _cleanup_(creds_freep)

/* The server side runs in a thread: both handshakes must progress at once. */
struct accept_job {
	struct kc_tls_creds *creds;
	int fd;
	kc_tls_revoked_fn is_revoked;
	void *opaque;
	struct kc_tls_link *link;
	struct kc_error err;
	int rc;
	pthread_t thread;
};

static void *accept_main(void *arg)
{
	struct accept_job *j = arg;
	j->rc = kc_tls_accept(j->creds, j->fd, TIMEOUT_MS, j->is_revoked, j->opaque, &j->link,
			      &j->err);
	return NULL;
}

struct pair {
	struct accept_job server;
	struct kc_tls_link *client;
	struct kc_error client_err;
	int client_rc;
	int client_fd;
};

/* Connects a client with client_creds to a server with server_creds over a
 * socketpair.  A side that fails has its socket closed. */
static void pair_open(struct pair *pr, struct kc_tls_creds *server_creds,
		      struct kc_tls_creds *client_creds, const char *name,
		      kc_tls_revoked_fn is_revoked, void *opaque)
{
	int sv[2];
	memset(pr, 0, sizeof(*pr));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		pr->server.rc = pr->client_rc = -1;
		return;
	}
	pr->server = (struct accept_job){
		.creds = server_creds, .fd = sv[0], .is_revoked = is_revoked, .opaque = opaque};
	pr->client_fd = sv[1];
	pthread_create(&pr->server.thread, NULL, accept_main, &pr->server);
	pr->client_rc =
		kc_tls_connect(client_creds, sv[1], name, TIMEOUT_MS, &pr->client, &pr->client_err);
	if (pr->client_rc < 0)
		shutdown(sv[1], SHUT_RDWR); /* so the server does not wait for us */
	pthread_join(pr->server.thread, NULL);
	if (pr->server.rc < 0)
		close(sv[0]);
	if (pr->client_rc < 0) {
		close(sv[1]);
		pr->client_fd = -1;
	}
}

static void pair_close(struct pair *pr)
{
	kc_tls_close(pr->client);
	kc_tls_close(pr->server.link);
	pr->client = pr->server.link = NULL;
}

static json_t *msg(const char *type, int n)
{
	return json_pack("{s:i, s:s, s:i}", "v", 1, "type", type, "n", n);
}

struct receiver {
	struct kc_tls_link *link;
	json_t *msg;
	int rc;
	struct kc_error err;
};

static void *receiver_main(void *arg)
{
	struct receiver *r = arg;
	r->rc = kc_tls_recv_json(r->link, TIMEOUT_MS, &r->msg, &r->err);
	return NULL;
}

KC_TEST(good_pair_exchanges_messages)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	if (!KC_CHECK_INT(pr.client_rc, 0))
		kc_test_diag("client: %s", pr.client_err.message);
	if (!KC_CHECK_INT(pr.server.rc, 0))
		kc_test_diag("server: %s", pr.server.err.message);
	if (pr.client_rc < 0 || pr.server.rc < 0) {
		pair_close(&pr);
		return;
	}

	const char *cn = NULL, *serial = NULL;
	kc_tls_peer(pr.server.link, &cn, &serial);
	KC_CHECK_STREQ(cn, "host-a");
	KC_CHECK_STREQ(serial, fx.serial_a);
	kc_tls_peer(pr.client, &cn, NULL);
	KC_CHECK_STREQ(cn, "kvmcloud-server");

	struct kc_error err = {0};
	for (int i = 0; i < 3; i++) {
		_cleanup_json_ json_t *hello = msg("hello", i);
		KC_CHECK_INT(kc_tls_send_json(pr.client, hello, &err), 0);
		_cleanup_json_ json_t *got = NULL;
		if (!KC_CHECK_INT(kc_tls_recv_json(pr.server.link, TIMEOUT_MS, &got, &err), 0)) {
			kc_test_diag("%s", err.message);
			break;
		}
		KC_CHECK(json_equal(got, hello));
		_cleanup_json_ json_t *welcome = msg("welcome", i);
		KC_CHECK_INT(kc_tls_send_json(pr.server.link, welcome, &err), 0);
		_cleanup_json_ json_t *back = NULL;
		KC_CHECK_INT(kc_tls_recv_json(pr.client, TIMEOUT_MS, &back, &err), 0);
		KC_CHECK(back && json_equal(back, welcome));
	}

	/* A large message crosses many TLS records and more than a socket
	 * buffer, so it is received in another thread while being sent. */
	_cleanup_free_ char *big = malloc(900 * 1024);
	memset(big, 'x', 900 * 1024 - 1);
	big[900 * 1024 - 1] = '\0';
	_cleanup_json_ json_t *large = json_pack("{s:s}", "blob", big);
	struct receiver rcv = {.link = pr.server.link};
	pthread_t t;
	pthread_create(&t, NULL, receiver_main, &rcv);
	KC_CHECK_INT(kc_tls_send_json(pr.client, large, &err), 0);
	pthread_join(t, NULL);
	if (!KC_CHECK_INT(rcv.rc, 0))
		kc_test_diag("%s", rcv.err.message);
	KC_CHECK(rcv.msg && json_equal(rcv.msg, large));
	json_decref(rcv.msg);
	pair_close(&pr);
}

struct sender {
	struct kc_tls_link *link;
	const char *type;
	int failures;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	for (int i = 0; i < 200; i++) {
		json_t *m = msg(s->type, i);
		struct kc_error err = {0};
		if (kc_tls_send_json(s->link, m, &err) < 0)
			s->failures++;
		json_decref(m);
	}
	return NULL;
}

KC_TEST(two_threads_send_on_one_link)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "server.test", NULL, NULL);
	if (!KC_CHECK(pr.client_rc == 0 && pr.server.rc == 0)) {
		pair_close(&pr);
		return;
	}
	struct sender s1 = {pr.client, "heartbeat", 0}, s2 = {pr.client, "event", 0};
	pthread_t t1, t2;
	pthread_create(&t1, NULL, sender_main, &s1);
	pthread_create(&t2, NULL, sender_main, &s2);
	int next_hb = 0, next_ev = 0, bad = 0;
	for (int i = 0; i < 400; i++) {
		json_t *m = NULL;
		struct kc_error err = {0};
		if (kc_tls_recv_json(pr.server.link, TIMEOUT_MS, &m, &err) < 0) {
			kc_test_diag("recv %d: %s", i, err.message);
			bad++;
			break;
		}
		const char *type = json_string_value(json_object_get(m, "type"));
		int n = (int)json_integer_value(json_object_get(m, "n"));
		/* Each sender's frames arrive whole and in its order. */
		if (type && strcmp(type, "heartbeat") == 0 && n == next_hb)
			next_hb++;
		else if (type && strcmp(type, "event") == 0 && n == next_ev)
			next_ev++;
		else
			bad++;
		json_decref(m);
	}
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	KC_CHECK_INT(bad, 0);
	KC_CHECK_INT(next_hb, 200);
	KC_CHECK_INT(next_ev, 200);
	KC_CHECK_INT(s1.failures + s2.failures, 0);
	pair_close(&pr);
}

/* In TLS 1.3 the client may finish before the server refuses it: then its
 * first receive must fail. */
static void check_client_refused(struct pair *pr)
{
	if (pr->client_rc == 0) {
		json_t *m = NULL;
		struct kc_error err = {0};
		KC_CHECK_INT(kc_tls_recv_json(pr->client, TIMEOUT_MS, &m, &err), -1);
		KC_CHECK(err.code == KC_ERR_UNAUTHORIZED || err.code == KC_ERR_UNAVAILABLE);
		kc_test_diag("client saw: %s", err.message);
	}
}

KC_TEST(client_of_another_ca_is_refused)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	/* Trusts the real CA, presents the impostor CA's "host-a". */
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.other, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	KC_CHECK_INT(pr.server.rc, -1);
	KC_CHECK_INT(pr.server.err.code, KC_ERR_UNAUTHORIZED);
	kc_test_diag("server said: %s", pr.server.err.message);
	check_client_refused(&pr);
	pair_close(&pr);
}

KC_TEST(server_certificate_cannot_act_as_a_client)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "server");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	KC_CHECK_INT(pr.server.rc, -1);
	KC_CHECK_INT(pr.server.err.code, KC_ERR_UNAUTHORIZED);
	kc_test_diag("server said: %s", pr.server.err.message);
	check_client_refused(&pr);
	pair_close(&pr);
}

struct revoked {
	const char *serial;
	int calls;
	char seen[KC_PKI_SERIAL_HEX_MAX];
};

static bool is_revoked(const char *serial_hex, void *opaque)
{
	struct revoked *r = opaque;
	r->calls++;
	snprintf(r->seen, sizeof(r->seen), "%s", serial_hex);
	return strcmp(serial_hex, r->serial) == 0;
}

KC_TEST(revoked_serial_is_refused)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cr = creds(fx.dir, fx.dir, "r");
	_cleanup_creds_ struct kc_tls_creds *ca = creds(fx.dir, fx.dir, "a");
	struct revoked rv = {.serial = fx.serial_r};
	struct pair pr;
	pair_open(&pr, sc, cr, "localhost", is_revoked, &rv);
	KC_CHECK_INT(pr.server.rc, -1);
	KC_CHECK_INT(pr.server.err.code, KC_ERR_FORBIDDEN);
	KC_CHECK_INT(rv.calls, 1);
	KC_CHECK_STREQ(rv.seen, fx.serial_r);
	kc_test_diag("server said: %s", pr.server.err.message);
	check_client_refused(&pr);
	pair_close(&pr);

	/* Someone else is still welcome. */
	rv.calls = 0;
	pair_open(&pr, sc, ca, "localhost", is_revoked, &rv);
	KC_CHECK_INT(pr.server.rc, 0);
	KC_CHECK_INT(pr.client_rc, 0);
	KC_CHECK_INT(rv.calls, 1);
	KC_CHECK_STREQ(rv.seen, fx.serial_a);
	pair_close(&pr);
}

KC_TEST(server_name_must_match_the_certificate)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "a");
	const char *good[] = {"localhost", "server.test", "127.0.0.1", "::1"};
	const char *bad[] = {"wrong.test", "127.0.0.2", "kvmcloud-server", "::2"};
	struct pair pr;
	for (size_t i = 0; i < KC_ARRAY_SIZE(good); i++) {
		pair_open(&pr, sc, cc, good[i], NULL, NULL);
		if (!KC_CHECK_INT(pr.client_rc, 0))
			kc_test_diag("%s: %s", good[i], pr.client_err.message);
		KC_CHECK_INT(pr.server.rc, 0);
		pair_close(&pr);
	}
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		pair_open(&pr, sc, cc, bad[i], NULL, NULL);
		KC_CHECK_INT(pr.client_rc, -1);
		KC_CHECK_INT(pr.client_err.code, KC_ERR_UNAUTHORIZED);
		KC_CHECK_INT(pr.server.rc, -1);
		kc_test_diag("%s: %s", bad[i], pr.client_err.message);
		pair_close(&pr);
	}
}

KC_TEST(client_trusting_another_ca_refuses_the_server)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.other, fx.other, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	KC_CHECK_INT(pr.client_rc, -1);
	KC_CHECK_INT(pr.client_err.code, KC_ERR_UNAUTHORIZED);
	KC_CHECK_INT(pr.server.rc, -1);
	pair_close(&pr);
}

/* A hostile or old client: raw GnuTLS, writing whatever it likes. */
struct raw {
	gnutls_certificate_credentials_t cred;
	gnutls_session_t session;
	int fd;
};

static int raw_connect(struct raw *r, int fd, const char *priority)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	if (gnutls_certificate_allocate_credentials(&r->cred) < 0 ||
	    gnutls_certificate_set_x509_trust_file(r->cred, p(fx.dir, "ca.crt"),
						   GNUTLS_X509_FMT_PEM) <= 0 ||
	    gnutls_certificate_set_x509_key_file(r->cred, p(fx.dir, "a.crt"), p(fx.dir, "a.key"),
						 GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_init(&r->session, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL) < 0 ||
	    gnutls_priority_set_direct(r->session, priority, NULL) < 0 ||
	    gnutls_credentials_set(r->session, GNUTLS_CRD_CERTIFICATE, r->cred) < 0)
		return -1;
	gnutls_transport_set_int(r->session, fd);
	gnutls_handshake_set_timeout(r->session, TIMEOUT_MS);
	int rc;
	do {
		rc = gnutls_handshake(r->session);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	return rc;
}

static void raw_free(struct raw *r)
{
	if (r->session)
		gnutls_deinit(r->session);
	if (r->cred)
		gnutls_certificate_free_credentials(r->cred);
	if (r->fd >= 0)
		close(r->fd);
}

/* A server link with a raw client on the other end. */
static bool raw_pair(struct kc_tls_creds *sc, const char *priority, struct raw *r,
		     struct accept_job *job)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	*job = (struct accept_job){.creds = sc, .fd = sv[0]};
	pthread_create(&job->thread, NULL, accept_main, job);
	int rc = raw_connect(r, sv[1], priority);
	if (rc < 0)
		shutdown(sv[1], SHUT_RDWR);
	pthread_join(job->thread, NULL);
	if (job->rc < 0)
		close(sv[0]);
	return rc == 0 && job->rc == 0;
}

#define TLS_PRIO "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends `len` raw bytes as the client (closing afterwards if asked) and
 * returns what the server's next receive says. */
static enum kc_errcode server_reads(const void *bytes, size_t len, bool close_after,
				    int64_t *elapsed_ms)
{
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	struct raw r;
	struct accept_job job;
	enum kc_errcode code = KC_ERR_INTERNAL;
	if (!raw_pair(sc, TLS_PRIO, &r, &job)) {
		kc_test_diag("raw pair failed: %s", job.err.message);
		raw_free(&r);
		return code;
	}
	if (len && gnutls_record_send(r.session, bytes, len) != (ssize_t)len)
		kc_test_diag("raw send failed");
	if (close_after)
		gnutls_bye(r.session, GNUTLS_SHUT_WR);
	json_t *m = NULL;
	struct kc_error err = {0};
	int64_t start = mono_ms();
	int rc = kc_tls_recv_json(job.link, TIMEOUT_MS, &m, &err);
	if (elapsed_ms)
		*elapsed_ms = mono_ms() - start;
	code = rc == 0 ? KC_OK : err.code;
	if (rc == 0)
		json_decref(m);
	else
		kc_test_diag("server: %s", err.message);
	/* The link is now unusable. */
	if (rc < 0) {
		json_t *m2 = NULL;
		struct kc_error err2 = {0};
		KC_CHECK_INT(kc_tls_recv_json(job.link, 0, &m2, &err2), -1);
		KC_CHECK_INT(err2.code, KC_ERR_UNAVAILABLE);
	}
	kc_tls_close(job.link);
	raw_free(&r);
	return code;
}

/* A 4-byte big-endian length followed by body. */
static size_t frame(unsigned char *out, uint32_t len, const char *body, size_t body_len)
{
	uint32_t be = htonl(len);
	memcpy(out, &be, 4);
	memcpy(out + 4, body, body_len);
	return 4 + body_len;
}

KC_TEST(oversized_length_is_rejected_before_allocating)
{
	if (!KC_CHECK(fixture()))
		return;
	unsigned char buf[64];
	int64_t elapsed = 0;
	/* Only the prefix is sent and the client stays connected: a receiver
	 * that believed the length would sit waiting (or allocate 2 GiB). */
	size_t n = frame(buf, 0x7fffffff, "", 0);
	KC_CHECK_INT(server_reads(buf, n, false, &elapsed), KC_ERR_TOO_LARGE);
	KC_CHECK(elapsed < TIMEOUT_MS / 2);
	n = frame(buf, KC_TLS_FRAME_MAX + 1, "{}", 2);
	KC_CHECK_INT(server_reads(buf, n, false, &elapsed), KC_ERR_TOO_LARGE);
	n = frame(buf, 0xffffffff, "", 0);
	KC_CHECK_INT(server_reads(buf, n, false, &elapsed), KC_ERR_TOO_LARGE);
}

KC_TEST(bad_frames_are_rejected)
{
	if (!KC_CHECK(fixture()))
		return;
	static const struct {
		const char *what;
		const char *body;
	} cases[] = {
		{"garbage", "{not json"},
		{"array", "[1,2,3]"},
		{"string", "\"hello\""},
		{"invalid UTF-8", "{\"a\":\"\xff\xfe\"}"},
		{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}"},
		{"trailing data", "{\"a\":1} {\"b\":2}"},
		{"duplicate keys", "{\"type\":\"a\",\"type\":\"b\"}"},
		{"NUL byte", "{\"a\":\"\\u0000\"}"},
	};
	unsigned char buf[256];
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		size_t len = strlen(cases[i].body);
		size_t n = frame(buf, (uint32_t)len, cases[i].body, len);
		enum kc_errcode code = server_reads(buf, n, false, NULL);
		if (!KC_CHECK_INT(code, KC_ERR_INVALID))
			kc_test_diag("case: %s", cases[i].what);
	}
	/* Zero length. */
	size_t n = frame(buf, 0, "", 0);
	KC_CHECK_INT(server_reads(buf, n, false, NULL), KC_ERR_INVALID);
	/* Short read: 100 bytes announced, 10 sent, then close_notify. */
	n = frame(buf, 100, "{\"a\":\"bcd", 10);
	KC_CHECK_INT(server_reads(buf, n, true, NULL), KC_ERR_INVALID);
	/* Half a length prefix, then close. */
	KC_CHECK_INT(server_reads(buf, 2, true, NULL), KC_ERR_INVALID);
	/* A clean close between frames is not a protocol error. */
	KC_CHECK_INT(server_reads(buf, 0, true, NULL), KC_ERR_UNAVAILABLE);
	/* A good frame from a raw client works. */
	n = frame(buf, 7, "{\"v\":1}", 7);
	KC_CHECK_INT(server_reads(buf, n, false, NULL), KC_OK);
}

KC_TEST(tls12_works_and_tls11_is_refused)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	struct raw r;
	struct accept_job job;
	bool ok = raw_pair(sc, "NORMAL:-VERS-ALL:+VERS-TLS1.2", &r, &job);
	KC_CHECK(ok);
	if (ok) {
		KC_CHECK_INT(gnutls_protocol_get_version(r.session), GNUTLS_TLS1_2);
		const char *cn = NULL;
		kc_tls_peer(job.link, &cn, NULL);
		KC_CHECK_STREQ(cn, "host-a");
		kc_tls_close(job.link);
	}
	raw_free(&r);

	ok = raw_pair(sc, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0", &r, &job);
	KC_CHECK(!ok);
	KC_CHECK_INT(job.rc, -1);
	kc_test_diag("TLS 1.1: %s", job.err.message);
	if (job.rc == 0)
		kc_tls_close(job.link);
	raw_free(&r);
}

KC_TEST(timeout_leaves_the_link_usable)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	if (!KC_CHECK(pr.client_rc == 0 && pr.server.rc == 0)) {
		pair_close(&pr);
		return;
	}
	json_t *m = NULL;
	struct kc_error err = {0};
	int64_t start = mono_ms();
	KC_CHECK_INT(kc_tls_recv_json(pr.server.link, 200, &m, &err), -1);
	int64_t elapsed = mono_ms() - start;
	KC_CHECK_INT(err.code, KC_ERR_TIMEOUT);
	KC_CHECK(elapsed >= 150 && elapsed < 5000);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_tls_recv_json(pr.server.link, 0, &m, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_TIMEOUT);

	_cleanup_json_ json_t *hb = msg("heartbeat", 1);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_tls_send_json(pr.client, hb, &err), 0);
	KC_CHECK_INT(kc_tls_recv_json(pr.server.link, TIMEOUT_MS, &m, &err), 0);
	KC_CHECK(m && json_equal(m, hb));
	json_decref(m);
	pair_close(&pr);
}

KC_TEST(send_refuses_non_objects_and_oversize)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	if (!KC_CHECK(pr.client_rc == 0 && pr.server.rc == 0)) {
		pair_close(&pr);
		return;
	}
	struct kc_error err = {0};
	_cleanup_json_ json_t *arr = json_array();
	KC_CHECK_INT(kc_tls_send_json(pr.client, arr, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	size_t big_len = KC_TLS_FRAME_MAX + 10;
	_cleanup_free_ char *big = malloc(big_len + 1);
	memset(big, 'y', big_len);
	big[big_len] = '\0';
	_cleanup_json_ json_t *huge = json_pack("{s:s}", "blob", big);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_tls_send_json(pr.client, huge, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_TOO_LARGE);

	_cleanup_json_ json_t *ok = msg("hello", 0);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_tls_send_json(pr.client, ok, &err), 0);
	json_t *m = NULL;
	KC_CHECK_INT(kc_tls_recv_json(pr.server.link, TIMEOUT_MS, &m, &err), 0);
	KC_CHECK(m && json_equal(m, ok));
	json_decref(m);
	pair_close(&pr);
}

struct blocked_recv {
	struct kc_tls_link *link;
	int rc;
	struct kc_error err;
};

static void *blocked_recv_main(void *arg)
{
	struct blocked_recv *b = arg;
	json_t *m = NULL;
	b->rc = kc_tls_recv_json(b->link, -1, &m, &b->err);
	json_decref(m);
	return NULL;
}

KC_TEST(shutdown_wakes_a_blocked_receiver_and_peer_sees_close)
{
	if (!KC_CHECK(fixture()))
		return;
	_cleanup_creds_ struct kc_tls_creds *sc = creds(fx.dir, fx.dir, "server");
	_cleanup_creds_ struct kc_tls_creds *cc = creds(fx.dir, fx.dir, "a");
	struct pair pr;
	pair_open(&pr, sc, cc, "localhost", NULL, NULL);
	if (!KC_CHECK(pr.client_rc == 0 && pr.server.rc == 0)) {
		pair_close(&pr);
		return;
	}
	struct blocked_recv b = {.link = pr.server.link};
	pthread_t t;
	pthread_create(&t, NULL, blocked_recv_main, &b);
	usleep(100 * 1000);
	kc_tls_shutdown(pr.server.link);
	pthread_join(t, NULL);
	KC_CHECK_INT(b.rc, -1);
	KC_CHECK(b.err.code == KC_ERR_UNAVAILABLE || b.err.code == KC_ERR_INVALID);

	/* The agent notices the server hung up. */
	json_t *m = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_tls_recv_json(pr.client, TIMEOUT_MS, &m, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_UNAVAILABLE);
	/* Sending on a shut-down link fails, without SIGPIPE. */
	_cleanup_json_ json_t *hb = msg("heartbeat", 0);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_tls_send_json(pr.server.link, hb, &err), -1);
	pair_close(&pr);
}

KC_TEST(creds_refuse_bad_files)
{
	if (!KC_CHECK(fixture()))
		return;
	struct kc_tls_creds *c = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_tls_creds_load(p(fx.dir, "missing.crt"), p(fx.dir, "a.crt"),
				       p(fx.dir, "a.key"), &c, &err),
		     -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	/* A key that is not the certificate's. */
	kc_error_clear(&err);
	KC_CHECK_INT(kc_tls_creds_load(p(fx.dir, "ca.crt"), p(fx.dir, "a.crt"), p(fx.dir, "r.key"),
				       &c, &err),
		     -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK(c == NULL);
}

KC_TEST_MAIN()
