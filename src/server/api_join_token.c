/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_join_token.c - minting join tokens (for POST /api/v1/hosts) and
 * issuing a new one for a host that has not connected yet
 * (POST /api/v1/hosts/{name}/join-token).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "api.h"
#include "cleanup.h"
#include "cluster.h"
#include "http_util.h"
#include "pki.h"

#define JOIN_TOKEN_TTL_S 3600

void kc_join_token_new(struct kc_join_token *t)
{
	unsigned char raw[KC_JOIN_TOKEN_HEX_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(t->token, sizeof(t->token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	kc_join_token_hash(t->token, t->hash);
	kc_db_time_from_now(JOIN_TOKEN_TTL_S, t->expires_at);
}

void kc_join_token_wipe(struct kc_join_token *t)
{
	sodium_memzero(t->token, sizeof(t->token));
}

json_t *kc_join_token_answer(struct kc_server *srv, const char *host, const struct kc_join_token *t,
			     struct kc_error *err)
{
	_cleanup_free_ char *ca = kc_cluster_ca_pem(srv, err);
	_cleanup_free_ char *command = NULL;
	char fp[65];

	if (!ca || kc_pki_fingerprint_sha256(ca, fp, err) < 0)
		return NULL;
	if (asprintf(&command, "kvmcloud-agent join %s %s --ca-sha256 %s", srv->join_url, t->token,
		     fp) < 0) {
		command = NULL;
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	json_t *a = json_pack("{s:s,s:s,s:s,s:s,s:s}", "host", host, "join_token", t->token,
			      "expires_at", t->expires_at, "ca_sha256", fp, "command", command);
	sodium_memzero(command, strlen(command));
	if (!a)
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return a;
}

int kc_api_host_join_token(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	struct kc_join_token t;
	_cleanup_free_ char *revoked = NULL;

	if (!srv->alink)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "this server does not accept agents (start it with --cluster)");
	kc_join_token_new(&t);
	json_t *answer = kc_join_token_answer(srv, c->name, &t, err);
	kc_join_token_wipe(&t);
	if (!answer)
		return -1;
	if (kc_db_join_token_reissue(srv->db, c->name, t.hash, t.expires_at, &revoked, err) < 0) {
		json_decref(answer);
		return -1;
	}
	/* A certificate from an earlier join that never said hello: revoked
	 * above, and any link it has open closed, as on removal. */
	if (revoked)
		kc_agentlink_disconnect(srv->alink, c->name);
	fprintf(stderr, "host %s: new join token, earlier ones invalidated%s%s\n", c->name,
		revoked ? ", certificate revoked: " : "", revoked ? revoked : "");
	json_object_set_new(answer, "revoked_serial", revoked ? json_string(revoked) : json_null());
	kc_http_json(c->resp, 201, answer);
	return 0;
}
