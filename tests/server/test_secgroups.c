/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_secgroups.c - security groups over real HTTP against an in-process
 * server (embedded agent on libvirt's test:///default driver): groups and
 * rules created, listed, shown and deleted; hostile rules refused before
 * anything is stored; duplicates and the per-group limit; a user sees and
 * uses only their own groups; a VM's groups set (at most 10; a first group on OVS only when
 * stopped), also at create (made stopped, grouped, started); groups in use or named as remote
 * groups not deleted; and the ruleset a host gets (kc_sg_build_host): NICs from the guest-network
 * addresses, rules flattened, remote groups expanded to their members' addresses.
 */
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "db_networks.h"
#include "db_secgroups.h"
#include "db_vms.h"
#include "gnet.h"
#include "json_util.h"
#include "kctest.h"
#include "sg_push.h"
#include "srvtest.h"

static struct srvtest S; /* S.token: the admin's */
static char tok_a[128], tok_b[128];

static struct srvtest_reply call(const char *method, const char *path, const char *tok,
				 const char *body)
{
	return srvtest_call(&S, method, path, tok, body);
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long status_of(const char *method, const char *path, const char *tok, const char *body)
{
	struct srvtest_reply r = call(method, path, tok, body);
	long st = r.status;
	if (st >= 400)
		kc_test_diag("%s %s: %ld %s", method, path, st, r.body ? r.body : "");
	srvtest_reply_clear(&r);
	return st;
}

static long create_vm(const char *tok, const char *vm)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false}", vm);
	return status_of("POST", "/api/v1/vms", tok, body);
}

KC_TEST(setup)
{
	KC_CHECK(srvtest_write_fake_image(S.dir));
	KC_CHECK(srvtest_make_user(&S, "alice", NULL, tok_a));
	KC_CHECK(srvtest_make_user(&S, "bob", NULL, tok_b));
	KC_CHECK_INT(create_vm(tok_a, "kcsg-a1"), 201);
	KC_CHECK_INT(create_vm(tok_a, "kcsg-a2"), 201);
	KC_CHECK_INT(create_vm(tok_b, "kcsg-b1"), 201);
}

KC_TEST(create_list_show)
{
	struct srvtest_reply r =
		call("POST", "/api/v1/security-groups", tok_a,
		     "{\"name\":\"web\",\"description\":\"web servers\",\"rules\":["
		     "{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":22,"
		     "\"cidr\":\"10.1.2.3/8\"},{\"direction\":\"in\",\"protocol\":\"icmp\"}]}");
	KC_CHECK_INT(r.status, 201);
	KC_CHECK_STREQ(str(r.json, "owner"), "alice");
	json_t *rules = json_object_get(r.json, "rules");
	KC_CHECK_INT(json_array_size(rules), 2);
	json_t *ssh = NULL, *x;
	size_t i;
	json_array_foreach(rules, i, x)
	{
		if (str(x, "cidr"))
			ssh = x;
	}
	/* Stored canonical: host bits cleared, the range filled in. */
	KC_CHECK(ssh && strcmp(str(ssh, "cidr"), "10.0.0.0/8") == 0);
	KC_CHECK(ssh && json_integer_value(json_object_get(ssh, "port_max")) == 22);
	srvtest_reply_clear(&r);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", tok_b, "{\"name\":\"bobs\"}"),
		     201);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", S.token, "{\"name\":\"adm\"}"),
		     201);

	r = call("GET", "/api/v1/security-groups", tok_a, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "security_groups")), 1);
	x = json_array_get(json_object_get(r.json, "security_groups"), 0);
	KC_CHECK_STREQ(str(x, "name"), "web");
	KC_CHECK_INT(json_integer_value(json_object_get(x, "rule_count")), 2);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/security-groups", S.token, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "security_groups")), 3);
	srvtest_reply_clear(&r);

	/* Another's group does not exist for a user, whatever the method. */
	KC_CHECK_INT(status_of("GET", "/api/v1/security-groups/bobs", tok_a, NULL), 404);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/security-groups/bobs", tok_a, NULL), 404);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups/bobs/rules", tok_a,
			       "{\"direction\":\"in\"}"),
		     404);
	KC_CHECK_INT(status_of("GET", "/api/v1/security-groups/web", S.token, NULL), 200);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", tok_a, "{\"name\":\"web\"}"),
		     409);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", tok_a,
			       "{\"name\":\"x\",\"owner\":\"bob\"}"),
		     403);
}

KC_TEST(hostile_rules_refused_and_nothing_stored)
{
	static const char *const bad[] = {
		"{\"direction\":\"in\",\"cidr\":\"10.0.0.0/8; flush ruleset\"}",
		"{\"direction\":\"in\",\"cidr\":\"10.0.0.0/33\"}",
		"{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":0}",
		"{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":65536}",
		"{\"direction\":\"in\",\"protocol\":\"icmp\",\"port_min\":22}",
		"{\"direction\":\"in\",\"protocol\":\"tcp accept\"}",
		"{\"direction\":\"both\"}",
		"{\"direction\":\"in\",\"action\":\"accept\"}",
		"{\"direction\":\"in\",\"remote_group\":\"a\\\"b\"}",
		"[1]",
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		struct srvtest_reply r =
			call("POST", "/api/v1/security-groups/web/rules", tok_a, bad[i]);
		if (!KC_CHECK_INT(r.status, 400))
			kc_test_diag("accepted: %s", bad[i]);
		srvtest_reply_clear(&r);
	}
	/* A bad rule in a create refuses the whole group. */
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", tok_a,
			       "{\"name\":\"half\",\"rules\":[{\"direction\":\"in\"},"
			       "{\"direction\":\"in\",\"cidr\":\"x\"}]}"),
		     400);
	KC_CHECK_INT(status_of("GET", "/api/v1/security-groups/half", tok_a, NULL), 404);
	/* A remote group of someone else is "not found". */
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups/web/rules", tok_a,
			       "{\"direction\":\"in\",\"remote_group\":\"bobs\"}"),
		     404);
	struct srvtest_reply r = call("GET", "/api/v1/security-groups/web", tok_a, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "rules")), 2);
	srvtest_reply_clear(&r);
}

KC_TEST(rule_add_duplicate_delete_limit)
{
	struct srvtest_reply r = call("POST", "/api/v1/security-groups/web/rules", tok_a,
				      "{\"direction\":\"out\",\"protocol\":\"udp\",\"port_min\":53,"
				      "\"port_max\":54,\"cidr\":\"10.0.0.0/8\"}");
	KC_CHECK_INT(r.status, 201);
	char id[64];
	snprintf(id, sizeof(id), "%s", str(r.json, "id") ? str(r.json, "id") : "");
	KC_CHECK(json_is_array(json_object_get(r.json, "hosts")));
	srvtest_reply_clear(&r);
	r = call("POST", "/api/v1/security-groups/web/rules", tok_a,
		 "{\"direction\":\"out\",\"protocol\":\"udp\",\"port_min\":53,\"port_max\":54,"
		 "\"cidr\":\"10.9.9.9/8\"}");
	KC_CHECK_INT(r.status, 409);
	srvtest_reply_clear(&r);
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/security-groups/web/rules/%s", id);
	KC_CHECK_INT(status_of("DELETE", path, tok_a, NULL), 200);
	KC_CHECK_INT(status_of("DELETE", path, tok_a, NULL), 404);
	KC_CHECK_INT(status_of("DELETE", "/api/v1/security-groups/web/rules/a..b", tok_a, NULL),
		     400);

	/* 200 rules in one group, the 201st refused. */
	json_t *rules = json_array();
	for (int p = 1; p <= 200; p++)
		json_array_append_new(rules, json_pack("{s:s,s:s,s:i}", "direction", "in",
						       "protocol", "tcp", "port_min", 1000 + p));
	json_t *body = json_pack("{s:s,s:o}", "name", "big", "rules", rules);
	_cleanup_free_ char *text = json_dumps(body, 0);
	json_decref(body);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", tok_a, text), 201);
	r = call("POST", "/api/v1/security-groups/big/rules", tok_a,
		 "{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":5}");
	KC_CHECK_INT(r.status, 400);
	KC_CHECK(strstr(srvtest_err_msg(&r) ? srvtest_err_msg(&r) : "", "200 rules") != NULL);
	srvtest_reply_clear(&r);
}

KC_TEST(vm_groups)
{
	struct srvtest_reply r = call("PUT", "/api/v1/vms/kcsg-a1/security-groups", tok_a,
				      "{\"security_groups\":[\"web\",\"big\"]}");
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "security_groups")), 2);
	/* Pushed to the VM's host (applied or not: this test's host may not
	 * allow nft; the e2e test checks the packets). */
	json_t *h = json_array_get(json_object_get(r.json, "hosts"), 0);
	KC_CHECK(h && str(h, "host") != NULL);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/vms/kcsg-a1/security-groups", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_STREQ(str(r.json, "vm"), "kcsg-a1");
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "security_groups")), 2);
	srvtest_reply_clear(&r);
	/* Not another's group, not another's VM, not twice, not 11. */
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[\"bobs\"]}"),
		     404);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-b1/security-groups", tok_a,
			       "{\"security_groups\":[\"web\"]}"),
		     404);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[\"web\",\"web\"]}"),
		     400);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
			       "\"h\",\"i\",\"j\",\"k\"]}"),
		     400);
	KC_CHECK_INT(
		status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a, "{\"groups\":[]}"),
		400);
	/* The admin may give any VM any group. */
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-b1/security-groups", S.token,
			       "{\"security_groups\":[\"bobs\"]}"),
		     200);
	/* In use: not deleted. */
	r = call("DELETE", "/api/v1/security-groups/web", tok_a, NULL);
	KC_CHECK_INT(r.status, 409);
	KC_CHECK(strstr(srvtest_err_msg(&r) ? srvtest_err_msg(&r) : "", "used by 1 VM") != NULL);
	srvtest_reply_clear(&r);
}

/* The ruleset a host gets, with NICs from a NAT network's addresses. */
KC_TEST(host_ruleset_and_remote_groups)
{
	struct kc_db *db = S.srv->db;
	struct kc_error err = {0};
	struct kc_gnet g = {.kind = KC_GNET_NAT, .has_cidr = true, .prefix = 24};
	snprintf(g.name, sizeof(g.name), "kcsgnet");
	kc_ipv4_parse("10.60.0.0", "net", &g.net, &err);
	kc_ipv4_parse("10.60.0.1", "gw", &g.gateway, &err);
	kc_ipv4_parse("10.60.0.10", "s", &g.dhcp_start, &err);
	kc_ipv4_parse("10.60.0.200", "e", &g.dhcp_end, &err);
	if (!KC_CHECK(kc_db_network_create(db, &g, "alice", NULL, &err) == 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	char now[21];
	kc_db_now(now);
	static const char *const addrs[][3] = {{"kcsg-a1", "52:54:00:5a:00:01", "10.60.0.11"},
					       {"kcsg-a2", "52:54:00:5a:00:02", "10.60.0.12"}};
	for (size_t i = 0; i < KC_ARRAY_SIZE(addrs); i++)
		KC_CHECK(kc_db_exec(db,
				    "INSERT INTO addresses (network, ip, mac, vm, nic, created_at) "
				    "VALUES ('kcsgnet', $1, $2, $3, 0, $4)",
				    KC_DB_PARAMS(KC_DB_TEXT(addrs[i][2]), KC_DB_TEXT(addrs[i][1]),
						 KC_DB_TEXT(addrs[i][0]), KC_DB_TEXT(now)),
				    NULL, &err) == 0);
	/* a2 is in "db", whose members web's rule lets in on 5432. */
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups", tok_a, "{\"name\":\"db\"}"), 201);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[\"db\"]}"),
		     200);
	KC_CHECK_INT(status_of("POST", "/api/v1/security-groups/web/rules", tok_a,
			       "{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":5432,"
			       "\"remote_group\":\"db\"}"),
		     201);
	_cleanup_json_ json_t *row = NULL, *rs = NULL;
	KC_CHECK(kc_db_vm_get(db, "kcsg-a1", &row, &err) == 0);
	const char *host = str(row, "host");
	if (!KC_CHECK(host) || !KC_CHECK(kc_sg_build_host(db, host, &rs, &err) == 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	json_t *vms = json_object_get(rs, "vms"), *a1 = NULL, *v;
	size_t i;
	json_array_foreach(vms, i, v)
	{
		if (strcmp(str(v, "name"), "kcsg-a1") == 0)
			a1 = v;
	}
	if (!KC_CHECK(a1))
		return;
	json_t *nic = json_array_get(json_object_get(a1, "nics"), 0);
	KC_CHECK_STREQ(str(nic, "mac"), "52:54:00:5a:00:01");
	KC_CHECK_STREQ(json_string_value(json_array_get(json_object_get(nic, "ips"), 0)),
		       "10.60.0.11");
	/* web (2 + remote) + big (200): the remote group became a2's address. */
	json_t *rules = json_object_get(a1, "rules"), *rr, *expanded = NULL;
	KC_CHECK_INT(json_array_size(rules), 203);
	json_array_foreach(rules, i, rr)
	{
		KC_CHECK(!json_object_get(rr, "remote_group"));
		if (json_integer_value(json_object_get(rr, "port_min")) == 5432)
			expanded = rr;
	}
	KC_CHECK(expanded && strcmp(str(expanded, "cidr"), "10.60.0.12/32") == 0);
	/* The agent takes what the server builds. */
	struct kc_sg_ruleset parsed = {0};
	KC_CHECK(kc_sg_ruleset_from_json(rs, &parsed, &err) == 0);
	kc_sg_ruleset_clear(&parsed);
	/* A remote group is not deleted while named. */
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[]}"),
		     200);
	struct srvtest_reply r = call("DELETE", "/api/v1/security-groups/db", tok_a, NULL);
	KC_CHECK_INT(r.status, 409);
	KC_CHECK(strstr(srvtest_err_msg(&r) ? srvtest_err_msg(&r) : "", "remote group") != NULL);
	srvtest_reply_clear(&r);
}

KC_TEST(ovs_nic_needs_stopped_vm)
{
	struct kc_db *db = S.srv->db;
	struct kc_error err = {0};
	_cleanup_json_ json_t *def = json_pack("{s:s,s:s,s:s,s:s}", "name", "kcsgovs", "kind",
					       "bridged", "backend", "ovs", "bridge", "cloudbr0");
	struct kc_gnet g;
	if (!KC_CHECK(kc_gnet_from_json(def, &g, &err) == 0) ||
	    !KC_CHECK(kc_db_network_create(db, &g, "alice", NULL, &err) == 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	char now[21];
	kc_db_now(now);
	KC_CHECK(kc_db_exec(db,
			    "INSERT INTO addresses (network, ip, mac, vm, nic, created_at) "
			    "VALUES ('kcsgovs', NULL, '52:54:00:5a:00:09', 'kcsg-a2', 1, $1)",
			    KC_DB_PARAMS(KC_DB_TEXT(now)), NULL, &err) == 0);
	/* Running, no group yet: the NIC is plugged straight into OVS. */
	KC_CHECK(kc_db_exec(db, "UPDATE vms SET state = 'running' WHERE name = 'kcsg-a2'", NULL, 0,
			    NULL, &err) == 0);
	struct srvtest_reply r = call("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
				      "{\"security_groups\":[\"web\"]}");
	KC_CHECK_INT(r.status, 409);
	KC_CHECK(strstr(srvtest_err_msg(&r) ? srvtest_err_msg(&r) : "", "stop it") != NULL);
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/vms/kcsg-a2/security-groups", tok_a, NULL);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "security_groups")), 0);
	srvtest_reply_clear(&r);
	/* Stopped: accepted (the agent moves the NIC to the hybrid plug). */
	KC_CHECK(kc_db_exec(db, "UPDATE vms SET state = 'shutoff' WHERE name = 'kcsg-a2'", NULL, 0,
			    NULL, &err) == 0);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[\"web\"]}"),
		     200);
	/* Running with a group already: on the hybrid plug, groups change live. */
	KC_CHECK(kc_db_exec(db, "UPDATE vms SET state = 'running' WHERE name = 'kcsg-a2'", NULL, 0,
			    NULL, &err) == 0);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[\"web\",\"db\"]}"),
		     200);
	KC_CHECK_INT(status_of("PUT", "/api/v1/vms/kcsg-a2/security-groups", tok_a,
			       "{\"security_groups\":[]}"),
		     200);
}

/* A VM created with its groups: made stopped, grouped, then started. */
KC_TEST(create_with_groups)
{
	struct srvtest_reply r =
		call("POST", "/api/v1/vms", tok_a,
		     "{\"name\":\"kcsg-a3\",\"memory_mib\":64,\"image\":\"kctest\","
		     "\"security_groups\":[\"web\"]}");
	KC_CHECK_INT(r.status, 201);
	KC_CHECK_STREQ(str(r.json, "state"), "running");
	srvtest_reply_clear(&r);
	r = call("GET", "/api/v1/vms/kcsg-a3/security-groups", tok_a, NULL);
	KC_CHECK_INT(r.status, 200);
	KC_CHECK_INT(json_array_size(json_object_get(r.json, "security_groups")), 1);
	KC_CHECK_STREQ(
		json_string_value(json_array_get(json_object_get(r.json, "security_groups"), 0)),
		"web");
	srvtest_reply_clear(&r);
	/* With --no-start it stays stopped, grouped. */
	r = call("POST", "/api/v1/vms", tok_a,
		 "{\"name\":\"kcsg-a4\",\"memory_mib\":64,\"image\":\"kctest\",\"start\":false,"
		 "\"security_groups\":[\"web\"]}");
	KC_CHECK_INT(r.status, 201);
	KC_CHECK_STREQ(str(r.json, "state"), "shutoff");
	srvtest_reply_clear(&r);
	/* Refused before anything is made: another's group, twice, not a list. */
	static const char *const bad[][2] = {{"[\"bobs\"]", "404"},
					     {"[\"web\",\"web\"]", "400"},
					     {"\"web\"", "400"},
					     {"[\"../x\"]", "400"},
					     {"[\"nope\"]", "404"}};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"name\":\"kcsg-a5\",\"memory_mib\":64,\"image\":\"kctest\","
			 "\"security_groups\":%s}",
			 bad[i][0]);
		KC_CHECK_INT(status_of("POST", "/api/v1/vms", tok_a, body), atol(bad[i][1]));
		KC_CHECK_INT(status_of("GET", "/api/v1/vms/kcsg-a5", tok_a, NULL), 404);
	}
}

KC_TEST(routes_need_a_token)
{
	KC_CHECK_INT(status_of("GET", "/api/v1/security-groups", NULL, NULL), 401);
	KC_CHECK_INT(status_of("GET", "/api/v1/security-groups/a..b", S.token, NULL), 400);
	KC_CHECK_INT(status_of("PATCH", "/api/v1/security-groups/web", S.token, NULL), 405);
}

SRVTEST_MAIN(S, "secgroups", SRVTEST_EMBEDDED)
