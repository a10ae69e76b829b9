/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_authz.c - users, roles, quotas, tokens, sessions and the audit log
 * over real HTTP against an in-process server on libvirt's test:///default
 * driver: a user sees and touches only their own VMs, another's is 404, a
 * quota overrun is a clear 403 that creates nothing, users cannot manage
 * hosts or users, every change leaves one audit row.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ulfius.h>

#include "cleanup.h"
#include "db_vms.h"
#include "json_util.h"
#include "kctest.h"
#include "server.h"
#include "srvtest.h"

static struct srvtest S; /* S.token: the admin's */
static char tok_a[128], tok_b[128];

static struct srvtest_reply call(const char *method, const char *path, const char *tok,
				 const char *body)
{
	return srvtest_call(&S, method, path, tok, body);
}

static size_t list_count_at(const char *path, const char *tok, const char *name)
{
	struct srvtest_reply r = call("GET", path, tok, NULL);
	size_t i, n = 0;
	json_t *v;

	json_array_foreach(json_object_get(r.json, "vms"), i, v)
	{
		if (!name || strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			n++;
	}
	if (r.status != 200)
		n = (size_t)-1;
	srvtest_reply_clear(&r);
	return n;
}

static size_t list_count(const char *tok, const char *name)
{
	return list_count_at("/api/v1/vms", tok, name);
}

KC_TEST(admin_makes_two_users_with_tokens)
{
	KC_CHECK(srvtest_make_user(&S, "alice", "alice-secret-1", tok_a));
	KC_CHECK(srvtest_make_user(&S, "bob", NULL, tok_b));
	struct srvtest_reply r = call("GET", "/api/v1/users", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "users")), 3);
	/* The password hash never leaves the server. */
	json_t *u = json_array_get(json_object_get(r.json, "users"), 1);
	KC_CHECK(u && !json_object_get(u, "password_hash"));
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/users", S.token, "{\"name\":\"alice\"}");
	KC_CHECK_INT(r.status, 409);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/users", S.token, "{\"name\":\"carol\",\"password\":\"short\"}");
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);
}

KC_TEST(users_cannot_manage_users_hosts_or_audit)
{
	static const char *const denied[][2] = {
		{"GET", "/api/v1/users"},	   {"POST", "/api/v1/users"},
		{"DELETE", "/api/v1/users/alice"}, {"PUT", "/api/v1/users/bob/quota"},
		{"GET", "/api/v1/hosts"},	   {"POST", "/api/v1/zones"},
		{"GET", "/api/v1/audit"},	   {"GET", "/metrics"},
		{"POST", "/api/v1/users/alice/tokens"}, {"POST", "/api/v1/hosts/h1/join-token"},
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(denied); i++) {
		struct srvtest_reply r =
			call(denied[i][0], denied[i][1], tok_b, "{\"name\":\"x\"}");
		KC_CHECK_INT(r.status, 403);
		if (r.status != 403)
			kc_test_diag("%s %s", denied[i][0], denied[i][1]);
		KC_CHECK_STREQ(srvtest_err_code(&r), "forbidden");
		srvtest_reply_clear(&r);
	}
	/* ...but may see themselves. */
	struct srvtest_reply r = call("GET", "/api/v1/users/bob", tok_b, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK(json_is_object(json_object_get(r.json, "usage")));
	srvtest_reply_clear(&r);
}

KC_TEST(a_users_vm_is_invisible_to_another_user)
{
	static const char body[] = "{\"name\":\"kcauthz-a1\",\"memory_mib\":64,\"image\":"
				   "\"kctest\",\"start\":false}";
	if (!KC_CHECK(srvtest_write_fake_image(S.dir)))
		return;
	struct srvtest_reply r = call("POST", "/api/v1/vms", tok_a, body);
	KC_CHECK_INT(r.status, 201);
	if (r.status != 201)
		kc_test_diag("create: %s", srvtest_err_msg(&r));
	srvtest_reply_clear(&r);
	json_t *row = NULL;
	struct kc_error err = {0};
	if (KC_CHECK(kc_db_vm_get(S.srv->db, "kcauthz-a1", &row, &err) == 0))
		KC_CHECK_STREQ(json_string_value(json_object_get(row, "owner")), "alice");
	json_decref(row);

	KC_CHECK_INT(list_count(tok_a, "kcauthz-a1"), 1);
	/* Only their own: not the test driver's own "test" domain either. */
	KC_CHECK_INT(list_count(tok_a, NULL), 1);
	KC_CHECK_INT(list_count(tok_b, NULL), 0);
	/* The admin's list is the records; the live one adds the domains
	 * without a record ("test"), for admins only. */
	KC_CHECK_INT(list_count(S.token, "test"), 0);
	KC_CHECK_INT(list_count(S.token, "kcauthz-a1"), 1);
	KC_CHECK(list_count_at("/api/v1/vms?live=true", S.token, NULL) >= 2);
	KC_CHECK_INT(list_count_at("/api/v1/vms?live=true", tok_a, NULL), 1);
	KC_CHECK_INT(list_count_at("/api/v1/vms?live=true", tok_b, NULL), 0);

	static const char *const acts[][2] = {
		{"GET", "/api/v1/vms/kcauthz-a1"},
		{"POST", "/api/v1/vms/kcauthz-a1/start"},
		{"DELETE", "/api/v1/vms/kcauthz-a1"},
		{"GET", "/api/v1/vms/kcauthz-a1/log"},
		{"POST", "/api/v1/vms/kcauthz-a1/destroy"},
		{"GET", "/api/v1/vms/test"},
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(acts); i++) {
		r = call(acts[i][0], acts[i][1], tok_b, NULL);
		KC_CHECK_INT(r.status, 404);
		KC_CHECK_STREQ(srvtest_err_code(&r), "not_found");
		srvtest_reply_clear(&r);
	}
	r = call("GET", "/api/v1/vms/kcauthz-a1", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	/* Still there after bob's attempts. */
	KC_CHECK_INT(list_count(S.token, "kcauthz-a1"), 1);
	/* Only admins name the host. */
	r = call("POST", "/api/v1/vms", tok_b,
		 "{\"name\":\"kcauthz-h\",\"memory_mib\":64,\"image\":\"kctest\",\"host\":\"x\"}");
	KC_CHECK_INT(r.status, 403);
	srvtest_reply_clear(&r);
}

KC_TEST(quota_overrun_is_a_clear_403_and_creates_nothing)
{
	struct srvtest_reply r = call("PUT", "/api/v1/users/bob/quota", S.token, "{\"max_vms\":1}");
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_integer_value(json_object_get(r.json, "max_vms")), 1);
	srvtest_reply_clear(&r);
	r = call(
		"POST", "/api/v1/vms", tok_b,
		"{\"name\":\"kcauthz-b1\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}");
	KC_CHECK_INT(r.status, 201);
	srvtest_reply_clear(&r);
	r = call(
		"POST", "/api/v1/vms", tok_b,
		"{\"name\":\"kcauthz-b2\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}");
	KC_CHECK_INT(r.status, 403);
	const char *m = srvtest_err_msg(&r);
	KC_CHECK(m && strstr(m, "quota exceeded") && strstr(m, "1 VMs"));
	if (m)
		kc_test_diag("%s", m);
	srvtest_reply_clear(&r);
	KC_CHECK_INT(list_count(S.token, "kcauthz-b2"), 0);
	r = call("GET", "/api/v1/vms/kcauthz-b2", S.token, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
	/* Memory too, named. */
	r = call("PUT", "/api/v1/users/alice/quota", S.token, "{\"max_memory_mib\":100}");
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	r = call(
		"POST", "/api/v1/vms", tok_a,
		"{\"name\":\"kcauthz-a2\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}");
	KC_CHECK_INT(r.status, 403);
	KC_CHECK(srvtest_err_msg(&r) && strstr(srvtest_err_msg(&r), "MiB of memory"));
	srvtest_reply_clear(&r);
}

KC_TEST(audit_records_changes_with_their_users)
{
	struct srvtest_reply r = call("GET", "/api/v1/audit?user=bob&limit=1000", S.token, NULL);
	size_t i;
	json_t *e;
	bool saw_ok = false, saw_quota = false, saw_denied = false;

	KC_CHECK_INT(r.status, 200);
	json_array_foreach(json_object_get(r.json, "entries"), i, e)
	{
		const char *action = json_string_value(json_object_get(e, "action"));
		const char *target = json_string_value(json_object_get(e, "target"));
		const char *result = json_string_value(json_object_get(e, "result"));
		const char *code =
			json_string_value(json_object_get(json_object_get(e, "detail"), "code"));
		KC_CHECK_STREQ(json_string_value(json_object_get(e, "user")), "bob");
		if (strcmp(action, "POST /api/v1/vms") == 0 && target &&
		    strcmp(target, "kcauthz-b1") == 0 && strcmp(result, "ok") == 0)
			saw_ok = true;
		if (target && strcmp(target, "kcauthz-b2") == 0 && strcmp(result, "error") == 0 &&
		    code && strcmp(code, "forbidden") == 0)
			saw_quota = true;
		if (strcmp(action, "DELETE /api/v1/vms/:vm") == 0 && target &&
		    strcmp(target, "kcauthz-a1") == 0 && code && strcmp(code, "not_found") == 0)
			saw_denied = true;
		/* Reads are not audited. */
		KC_CHECK(strncmp(action, "GET ", 4) != 0);
	}
	KC_CHECK(saw_ok);
	KC_CHECK(saw_quota);
	KC_CHECK(saw_denied);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/audit?limit=1001", S.token, NULL);
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/audit?since=yesterday", S.token, NULL);
	KC_CHECK_INT(r.status, 400);
	srvtest_reply_clear(&r);
}

KC_TEST(a_revoked_token_stops_working)
{
	struct srvtest_reply r = call("GET", "/api/v1/tokens", tok_b, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(json_string_value(json_object_get(r.json, "user")), "bob");
	json_t *t = json_array_get(json_object_get(r.json, "tokens"), 0);
	KC_CHECK(t && !json_object_get(t, "hash"));
	long long id = json_integer_value(json_object_get(t, "id"));
	srvtest_reply_clear(&r);
	char path[64];
	snprintf(path, sizeof(path), "/api/v1/tokens/%lld", id);
	/* Alice cannot revoke bob's token: it is not hers. */
	r = call("DELETE", path, tok_a, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
	r = call("DELETE", path, tok_b, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/vms", tok_b, NULL);
	KC_CHECK_INT(r.status, 401);
	srvtest_reply_clear(&r);
}

KC_TEST(password_sessions)
{
	struct srvtest_reply r = call("POST", "/api/v1/sessions", NULL,
				      "{\"user\":\"alice\",\"password\":\"alice-secret-1\"}");
	KC_CHECK_INT(r.status, 201);
	const char *t = json_string_value(json_object_get(r.json, "token"));
	KC_CHECK(t && strlen(t) == 64);
	KC_CHECK(json_is_string(json_object_get(r.json, "expires_at")));
	char session[128] = "";
	if (t)
		snprintf(session, sizeof(session), "%s", t);
	srvtest_reply_clear(&r);
	KC_CHECK_INT(list_count(session, "kcauthz-a1"), 1);

	static const char *const bad[] = {
		"{\"user\":\"alice\",\"password\":\"wrong-password\"}",
		"{\"user\":\"bob\",\"password\":\"no-password-set\"}",
		"{\"user\":\"nobody\",\"password\":\"whatever-1\"}",
		"{\"user\":\"../x\",\"password\":\"whatever-1\"}",
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		r = call("POST", "/api/v1/sessions", NULL, bad[i]);
		KC_CHECK_INT(r.status, 401);
		KC_CHECK_STREQ(srvtest_err_msg(&r), "wrong user name or password");
		srvtest_reply_clear(&r);
	}
	/* The failed login is in the log under the claimed name. */
	r = call("GET", "/api/v1/audit?user=alice", S.token, NULL);
	json_t *first = json_array_get(json_object_get(r.json, "entries"), 0);
	KC_CHECK_STREQ(json_string_value(json_object_get(first, "action")),
		       "POST /api/v1/sessions");
	KC_CHECK_STREQ(json_string_value(json_object_get(first, "result")), "error");
	srvtest_reply_clear(&r);
}

KC_TEST(deleting_users)
{
	/* Bob still owns a VM. */
	struct srvtest_reply r = call("DELETE", "/api/v1/users/bob", S.token, NULL);
	KC_CHECK_INT(r.status, 409);
	srvtest_reply_clear(&r);
	r = call("DELETE", "/api/v1/users/admin", S.token, NULL);
	KC_CHECK_INT(r.status, 403);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/users", S.token, "{\"name\":\"dave\"}");
	srvtest_reply_clear(&r);
	r = call("DELETE", "/api/v1/users/dave", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
}

SRVTEST_MAIN(S, "authz", SRVTEST_EMBEDDED)
