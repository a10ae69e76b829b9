/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hostnet.c - host network routes over real HTTP against an
 * in-process server (test:///default): admin only, declarations checked
 * before any agent is asked (400 naming the field), unknown hosts 404, a
 * host without a declaration reads as state "none"; the host_networks
 * table (schema version 11) keeps a declaration and its state.
 */
#include <string.h>

#include "cleanup.h"
#include "db_hostnet.h"
#include "json_util.h"
#include "kctest.h"
#include "server.h"
#include "srvtest.h"

static struct srvtest S;
static char tok_u[128];
static char host[128];

static const char *decl =
	"{\"declaration\": {\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": ["
	"{\"name\": \"mgmt0\", \"vlan\": 100, \"addresses\": [\"192.168.42.11/24\"]}]}}";

KC_TEST(find_the_host)
{
	struct srvtest_reply r = srvtest_call(&S, "GET", "/api/v1/hosts", S.token, NULL);
	json_t *h = json_array_get(json_object_get(r.json, "hosts"), 0);
	if (KC_CHECK(h))
		snprintf(host, sizeof(host), "%s", json_string_value(json_object_get(h, "name")));
	srvtest_reply_clear(&r);
	KC_CHECK(srvtest_make_user(&S, "hnuser", NULL, tok_u));
}

KC_TEST(users_are_refused)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/network", host);
	struct srvtest_reply r = srvtest_call(&S, "PUT", path, tok_u, decl);
	KC_CHECK_INT(r.status, 403);
	srvtest_reply_clear(&r);
	r = srvtest_call(&S, "GET", path, tok_u, NULL);
	KC_CHECK_INT(r.status, 403);
	srvtest_reply_clear(&r);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/network/confirm", host);
	r = srvtest_call(&S, "POST", path, tok_u, NULL);
	KC_CHECK_INT(r.status, 403);
	srvtest_reply_clear(&r);
	r = srvtest_call(&S, "GET", "/api/v1/hosts/x/network", NULL, NULL);
	KC_CHECK_INT(r.status, 401);
	srvtest_reply_clear(&r);
}

KC_TEST(bad_declarations_are_400)
{
	static const char *const bad[][2] = {
		{"{}", "\"declaration\" is required"},
		{"{\"declaration\": {\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 4095}]}}",
		 "\"vlan\""},
		{"{\"declaration\": {\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": "
		 "[{\"name\": \"a b\", \"vlan\": 5}]}}",
		 "interface name"},
		{"{\"declaration\": {\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 5, \"addresses\": [\"1.2.3.4/24; rm\"]}]}}",
		 "must be ADDR/PREFIX"},
		{"{\"declaration\": {\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 5}]}, \"confirm_timeout_s\": 2}",
		 "confirm_timeout_s"},
		{"{\"declaration\": {\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 5}]}, \"extra\": 1}",
		 "extra"},
	};
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/network", host);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct srvtest_reply r = srvtest_call(&S, "PUT", path, S.token, bad[i][0]);
		const char *msg = srvtest_err_msg(&r);
		if (!KC_CHECK_INT(r.status, 400) || !KC_CHECK(msg && strstr(msg, bad[i][1])))
			kc_test_diag("case %zu: %ld %s", i, r.status, r.body ? r.body : "");
		srvtest_reply_clear(&r);
	}
}

KC_TEST(unknown_host_and_no_declaration)
{
	struct srvtest_reply r =
		srvtest_call(&S, "PUT", "/api/v1/hosts/kc-nohost/network", S.token, decl);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
	r = srvtest_call(&S, "GET", "/api/v1/hosts/kc-nohost/network", S.token, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/network", host);
	r = srvtest_call(&S, "GET", path, S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "state")), "none");
	srvtest_reply_clear(&r);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/network/confirm", host);
	r = srvtest_call(&S, "POST", path, S.token, NULL);
	KC_CHECK_INT(r.status, 409);
	srvtest_reply_clear(&r);
}

KC_TEST(table_keeps_declaration_and_state)
{
	struct kc_error err = {0};
	json_t *d = json_pack("{s:s}", "backend", "ovs");
	_cleanup_json_ json_t *row = NULL;
	KC_CHECK(kc_db_hostnet_put(S.srv->db, host, d, "pending", "id-1", NULL, &err) == 0);
	KC_CHECK(kc_db_hostnet_get(S.srv->db, host, &row, &err) == 0 && row);
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "pending");
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "pending_id")), "id-1");
	KC_CHECK(json_equal(json_object_get(row, "declaration"), d));
	KC_CHECK(kc_db_hostnet_set_state(S.srv->db, host, "rolled_back", "late", &err) == 0);
	json_decref(row);
	row = NULL;
	KC_CHECK(kc_db_hostnet_get(S.srv->db, host, &row, &err) == 0 && row);
	KC_CHECK_STREQ(json_string_value(json_object_get(row, "state")), "rolled_back");
	struct kc_error e2 = {0};
	KC_CHECK(kc_db_hostnet_put(S.srv->db, "kc-nohost", d, "pending", NULL, NULL, &e2) < 0);
	KC_CHECK_INT(e2.code, KC_ERR_NOT_FOUND);
	struct kc_error e3 = {0};
	KC_CHECK(kc_db_hostnet_set_state(S.srv->db, host, "bogus", NULL, &e3) < 0);
	json_decref(d);
}

SRVTEST_MAIN(S, "hostnet", SRVTEST_EMBEDDED)
