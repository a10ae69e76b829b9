/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_join.c - GET /api/v1/ca and POST /api/v1/join (docs/protocol.md):
 * the two routes a host that is not a member yet may call.  Neither takes
 * a bearer token: the join token in the body is the credential, burned on
 * first use.  Failed joins are counted per client address so that guessing
 * a 256-bit token is not even worth starting.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cleanup.h"
#include "cluster.h"
#include "ha.h"
#include "http_util.h"
#include "json_util.h"
#include "pki.h"

#define JOIN_BODY_MAX	 (32 * 1024)
#define JOIN_FAILS_MAX	 10
#define JOIN_WINDOW_S	 60
#define JOIN_TABLE_SIZE	 1024
#define AGENT_CERT_DAYS	 365
#define JOIN_FAILURE_MSG "invalid, used or expired join token"

void kc_join_token_hash(const char *token_hex, char out[65])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token_hex, strlen(token_hex), NULL,
			   0);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

/* ---- failed joins per client address (fixed window of one minute) ---- */

static struct {
	char addr[INET6_ADDRSTRLEN];
	time_t window;
	unsigned fails;
} fails[JOIN_TABLE_SIZE];
static pthread_mutex_t fails_lock = PTHREAD_MUTEX_INITIALIZER;

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void client_addr(const struct _u_request *req, char out[INET6_ADDRSTRLEN])
{
	const struct sockaddr *sa = req->client_address;

	strcpy(out, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
			  INET6_ADDRSTRLEN);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  INET6_ADDRSTRLEN);
}

/* Under fails_lock: the entry for addr, (re)started if its minute is over;
 * with `create`, the oldest entry is reused when the table is full. */
static int slot(const char *addr, bool create)
{
	time_t now = mono_s();
	int free_i = -1, oldest = 0;

	for (int i = 0; i < JOIN_TABLE_SIZE; i++) {
		if (!fails[i].addr[0]) {
			if (free_i < 0)
				free_i = i;
			continue;
		}
		if (strcmp(fails[i].addr, addr) == 0) {
			if (now - fails[i].window >= JOIN_WINDOW_S) {
				fails[i].window = now;
				fails[i].fails = 0;
			}
			return i;
		}
		if (fails[i].window < fails[oldest].window)
			oldest = i;
	}
	if (!create)
		return -1;
	int j = free_i >= 0 ? free_i : oldest;
	snprintf(fails[j].addr, sizeof(fails[j].addr), "%s", addr);
	fails[j].window = now;
	fails[j].fails = 0;
	return j;
}

static bool limited(const char *addr)
{
	pthread_mutex_lock(&fails_lock);
	int i = slot(addr, false);
	bool over = i >= 0 && fails[i].fails >= JOIN_FAILS_MAX;
	pthread_mutex_unlock(&fails_lock);
	return over;
}

static void count_failure(const char *addr)
{
	pthread_mutex_lock(&fails_lock);
	int i = slot(addr, true);
	fails[i].fails++;
	pthread_mutex_unlock(&fails_lock);
}

/* ---- handlers ---- */

int kc_api_ca(struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *pem = kc_cluster_ca_pem(c->srv, err);

	if (!pem)
		return -1;
	ulfius_set_binary_body_response(c->resp, 200, pem, strlen(pem));
	u_map_put(c->resp->map_header, "Content-Type", "application/x-pem-file");
	return 0;
}

static bool token_well_formed(const char *t)
{
	if (strlen(t) != KC_JOIN_TOKEN_HEX_LEN)
		return false;
	for (const char *p = t; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int join(struct kc_call *c, const char *addr, struct kc_error *err)
{
	static const char *const keys[] = {"token", "csr", NULL};
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL;
	_cleanup_free_ char *host = NULL;
	_cleanup_free_ char *cert = NULL, *serial = NULL, *ca = NULL;
	const char *token = NULL, *csr = NULL;
	char hash[65];

	if (!srv->alink || !srv->agent_endpoint)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "this server does not accept agents (start it with --cluster)");
	if (c->req->binary_body_length > JOIN_BODY_MAX)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "join request over %d bytes",
				    JOIN_BODY_MAX);
	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "join request", err) < 0 ||
	    kc_json_get_string(body, "token", true, 256, &token, err) < 0 ||
	    kc_json_get_string(body, "csr", true, KC_PKI_CSR_MAX, &csr, err) < 0)
		return -1;
	if (!token_well_formed(token)) {
		count_failure(addr);
		return kc_error_set(err, KC_ERR_UNAUTHORIZED, JOIN_FAILURE_MSG);
	}
	/* A CSR that cannot be signed must not burn the token: try it first
	 * with a throw-away name. */
	if (kc_pki_sign_csr(srv->pki_dir, csr, "csr-check", 1, &cert, &serial, err) < 0)
		return -1;
	free(steal_ptr(&cert));
	free(steal_ptr(&serial));

	kc_join_token_hash(token, hash);
	if (kc_db_join_token_use(srv->db, hash, &host, err) < 0) {
		if (err->code == KC_ERR_UNAUTHORIZED)
			count_failure(addr);
		return -1;
	}
	if (kc_pki_sign_csr(srv->pki_dir, csr, host, AGENT_CERT_DAYS, &cert, &serial, err) < 0 ||
	    kc_db_host_set_cert(srv->db, host, serial, err) < 0)
		return -1;
	ca = kc_cluster_ca_pem(srv, err);
	if (!ca)
		return -1;
	fprintf(stderr, "join: host %s joined from %s (certificate %s)\n", host, addr, serial);
	/* agent_endpoints: every live server's (ha.c), this one first. */
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:s,s:s,s:s,s:s,s:o*}", "certificate", cert, "ca", ca,
			       "agent_endpoint", srv->agent_endpoint, "server_name",
			       srv->server_name, "host", host, "agent_endpoints",
			       kc_ha_agent_endpoints(srv)));
	return 0;
}

int kc_api_join(struct kc_call *c, struct kc_error *err)
{
	char addr[INET6_ADDRSTRLEN];

	client_addr(c->req, addr);
	if (limited(addr)) {
		u_map_put(c->resp->map_header, "Retry-After", "60");
		kc_http_json(c->resp, 429,
			     json_pack("{s:{s:s,s:s}}", "error", "code", "rate_limited", "message",
				       "too many failed joins from this address; try again in a "
				       "minute"));
		return 0;
	}
	return join(c, addr, err);
}
