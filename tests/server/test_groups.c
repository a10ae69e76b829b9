/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_groups.c - affinity / anti-affinity groups over real HTTP against an
 * in-process server on libvirt's test:///default driver: creates that name
 * a group make it, GET /groups and /groups/{name} show it with its
 * members, a user sees and deletes only their own (another's is 404), a
 * group with members cannot be deleted (409) and one without can.
 */
#include <string.h>

#include "cleanup.h"
#include "db_vms.h"
#include "kctest.h"
#include "srvtest.h"

static struct srvtest S; /* S.token: the admin's */
static char tok_a[128];

static struct srvtest_reply call(const char *method, const char *path, const char *tok,
				 const char *body)
{
	return srvtest_call(&S, method, path, tok, body);
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Creates a stopped VM in `group` (created with `policy` if new). */
static long create_in_group(const char *tok, const char *vm, const char *group, const char *policy)
{
	char body[256];

	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false,"
		 "\"group\":{\"name\":\"%s\",\"policy\":\"%s\"}}",
		 vm, group, policy);
	struct srvtest_reply r = call("POST", "/api/v1/vms", tok, body);
	long status = r.status;
	if (status != 201)
		kc_test_diag("create %s: %ld %s", vm, status, r.body ? r.body : "");
	srvtest_reply_clear(&r);
	return status;
}

KC_TEST(creates_make_groups)
{
	if (!KC_CHECK(srvtest_write_fake_image(S.dir)) ||
	    !KC_CHECK(srvtest_make_user(&S, "alice", NULL, tok_a)))
		return;
	KC_CHECK_INT(create_in_group(tok_a, "kcgrp-a1", "kcgrp-web", "anti-affinity"), 201);
	KC_CHECK_INT(create_in_group(S.token, "kcgrp-b1", "kcgrp-adm", "affinity"), 201);
}

KC_TEST(a_user_lists_and_shows_only_their_own_groups)
{
	struct srvtest_reply r = call("GET", "/api/v1/groups", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	json_t *groups = json_object_get(r.json, "groups");
	KC_CHECK_INT(json_array_size(groups), 1);
	json_t *g = json_array_get(groups, 0);
	KC_CHECK_STREQ(str(g, "name"), "kcgrp-web");
	KC_CHECK_STREQ(str(g, "policy"), "anti-affinity");
	KC_CHECK_STREQ(str(g, "owner"), "alice");
	KC_CHECK_INT(json_integer_value(json_object_get(g, "member_count")), 1);
	srvtest_reply_clear(&r);

	r = call("GET", "/api/v1/groups", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "groups")), 2);
	srvtest_reply_clear(&r);

	r = call("GET", "/api/v1/groups/kcgrp-web", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	json_t *m = json_array_get(json_object_get(r.json, "members"), 0);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "members")), 1);
	KC_CHECK_STREQ(str(m, "name"), "kcgrp-a1");
	KC_CHECK(str(m, "host") != NULL);
	srvtest_reply_clear(&r);

	/* The admin's group does not exist for alice, whatever she tries. */
	static const char *const methods[] = {"GET", "DELETE"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(methods); i++) {
		r = call(methods[i], "/api/v1/groups/kcgrp-adm", tok_a, NULL);
		KC_CHECK_INT(r.status, 404);
		KC_CHECK_STREQ(srvtest_err_msg(&r), "group \"kcgrp-adm\" not found");
		srvtest_reply_clear(&r);
	}
	r = call("GET", "/api/v1/groups/kcgrp-adm", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(str(r.json, "owner"), "admin");
	srvtest_reply_clear(&r);
}

KC_TEST(a_group_with_members_is_not_deleted)
{
	struct srvtest_reply r = call("DELETE", "/api/v1/groups/kcgrp-web", tok_a, NULL);
	KC_CHECK_INT(r.status, 409);
	KC_CHECK_STREQ(srvtest_err_code(&r), "conflict");
	KC_CHECK_STREQ(srvtest_err_msg(&r),
		       "group \"kcgrp-web\" still has 1 VM: delete them first");
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/groups/kcgrp-web", S.token, NULL);
	KC_CHECK_INT(r.status, 200);
	srvtest_reply_clear(&r);
}

KC_TEST(an_empty_group_is_deleted_by_its_owner)
{
	struct kc_error err = {0};

	/* The record goes as a DELETE of the VM would take it (the test
	 * driver refuses the agent's undefine flags, test_api.c). */
	KC_CHECK(kc_db_vm_delete(S.srv->db, "kcgrp-a1", &err) == 0);
	struct srvtest_reply r = call("GET", "/api/v1/groups/kcgrp-web", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_integer_value(json_object_get(r.json, "member_count")), 0);
	srvtest_reply_clear(&r);

	r = call("DELETE", "/api/v1/groups/kcgrp-web", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(str(r.json, "deleted"), "kcgrp-web");
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/groups/kcgrp-web", S.token, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
	r = call("DELETE", "/api/v1/groups/kcgrp-web", S.token, NULL);
	KC_CHECK_INT(r.status, 404);
	srvtest_reply_clear(&r);
	/* The name is free again, and a create makes the group anew. */
	KC_CHECK_INT(create_in_group(tok_a, "kcgrp-a2", "kcgrp-web", "affinity"), 201);
	r = call("GET", "/api/v1/groups/kcgrp-web", tok_a, NULL);
	KC_CHECK_STREQ(str(r.json, "policy"), "affinity");
	srvtest_reply_clear(&r);
}

KC_TEST(bad_names_and_methods)
{
	struct srvtest_reply r = call("GET", "/api/v1/groups/a..b", S.token, NULL);
	KC_CHECK_INT(r.status, 400);
	KC_CHECK(strstr(srvtest_err_msg(&r) ? srvtest_err_msg(&r) : "", "group name") != NULL);
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/groups", S.token, "{\"name\":\"x\"}");
	KC_CHECK_INT(r.status, 405);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/groups", NULL, NULL);
	KC_CHECK_INT(r.status, 401);
	srvtest_reply_clear(&r);
}

SRVTEST_MAIN(S, "groups", SRVTEST_EMBEDDED)
