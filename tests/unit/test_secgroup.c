/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_secgroup.c - the security group model (secgroup.c) and its nft text
 * (nft_render.c).  Every tests/golden/sg/<case>.json is a ruleset (sg.apply
 * args) whose rendering must equal <case>.nft byte for byte;
 * KC_UPDATE_GOLDEN=1 rewrites the .nft files.  tests/unit/sg-nft-check.sh
 * has the kernel check the golden files in a throwaway network namespace.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <string.h>

#include "kctest.h"
#include "cleanup.h"
#include "json_util.h"
#include "nft_render.h"
#include "secgroup.h"

#define GOLDEN_DIR KC_SOURCE_DIR "/tests/golden/sg"

static char *read_file(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	if (!f || getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void cidr_is(const char *in, const char *want)
{
	struct kc_sg_cidr c;
	struct kc_error err = {0};
	char buf[KC_SG_CIDR_STR_MAX];
	if (!KC_CHECK(kc_sg_cidr_parse(in, "cidr", &c, &err) == 0)) {
		kc_test_diag("%s: %s", in, err.message);
		return;
	}
	kc_sg_cidr_format(&c, buf, sizeof(buf));
	KC_CHECK_STREQ(buf, want);
}

static void cidr_bad(const char *in)
{
	struct kc_sg_cidr c;
	struct kc_error err = {0};
	if (!KC_CHECK(kc_sg_cidr_parse(in, "cidr", &c, &err) < 0))
		kc_test_diag("accepted: %s", in);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(cidr_parse_and_canonical)
{
	cidr_is("10.0.0.0/8", "10.0.0.0/8");
	cidr_is("10.1.2.3/8", "10.0.0.0/8"); /* host bits cleared */
	cidr_is("0.0.0.0/0", "0.0.0.0/0");
	cidr_is("192.168.1.7", "192.168.1.7");
	cidr_is("192.168.1.7/32", "192.168.1.7");
	cidr_is("10.255.255.255/12", "10.240.0.0/12");
	cidr_is("2001:DB8::1/32", "2001:db8::/32");
	cidr_is("::/0", "::/0");
	cidr_is("fe80::1", "fe80::1");
	cidr_bad("10.0.0.0/33");
	cidr_bad("10.0.0.0/");
	cidr_bad("10.0.0.0/-1");
	cidr_bad("10.0.0.0/+8");
	cidr_bad("10.0.0.0/08");
	cidr_bad("10.0.0/8");
	cidr_bad("2001:db8::/129");
	cidr_bad("10.0.0.0/8; flush ruleset");
	cidr_bad("10.0.0.1 }");
	cidr_bad("");
	cidr_bad("any");
	cidr_bad(" 10.0.0.1");
}

static int rule_parse(const char *json, bool allow_rg, struct kc_sg_rule *r, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_loads(json, 0, NULL);
	if (!j)
		return kc_error_set(err, KC_ERR_INTERNAL, "test JSON broken: %s", json);
	return kc_sg_rule_from_json(j, allow_rg, r, err);
}

static void rule_bad(const char *json, bool allow_rg, const char *msg_part)
{
	struct kc_sg_rule r;
	struct kc_error err = {0};
	if (!KC_CHECK(rule_parse(json, allow_rg, &r, &err) < 0)) {
		kc_test_diag("accepted: %s", json);
		return;
	}
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	if (!KC_CHECK(strstr(err.message, msg_part)))
		kc_test_diag("%s -> %s", json, err.message);
}

KC_TEST(rule_good)
{
	struct kc_sg_rule r;
	struct kc_error err = {0};
	KC_CHECK(rule_parse("{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":22}", true, &r,
			    &err) == 0);
	KC_CHECK_INT(r.port_min, 22);
	KC_CHECK_INT(r.port_max, 22);
	KC_CHECK(!r.has_cidr);
	KC_CHECK(rule_parse("{\"direction\":\"out\",\"protocol\":\"udp\",\"port_min\":53,"
			    "\"port_max\":54,\"cidr\":\"10.9.8.7/16\"}",
			    false, &r, &err) == 0);
	KC_CHECK_INT(r.dir, KC_SG_OUT);
	KC_CHECK_INT(r.cidr.prefix, 16);
	_cleanup_json_ json_t *back = kc_sg_rule_to_json(&r);
	_cleanup_free_ char *s = json_dumps(back, JSON_SORT_KEYS | JSON_COMPACT);
	KC_CHECK_STREQ(s, "{\"cidr\":\"10.9.0.0/16\",\"direction\":\"out\",\"port_max\":54,"
			  "\"port_min\":53,\"protocol\":\"udp\"}");
	struct kc_sg_rule r2;
	KC_CHECK(rule_parse(s, false, &r2, &err) == 0);
	KC_CHECK(kc_sg_rule_equal(&r, &r2));
	r2.port_max = 55;
	KC_CHECK(!kc_sg_rule_equal(&r, &r2));
	KC_CHECK(rule_parse("{\"direction\":\"in\",\"remote_group\":\"web\"}", true, &r, &err) ==
		 0);
	KC_CHECK_STREQ(r.remote_group, "web");
	KC_CHECK_INT(r.proto, KC_SG_ANY);
}

KC_TEST(rule_hostile_refused)
{
	rule_bad("{\"direction\":\"sideways\"}", true, "rule direction");
	rule_bad("{\"protocol\":\"tcp\"}", true, "direction");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"sctp\"}", true, "rule protocol");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"tcp\\\"; flush ruleset\"}", true,
		 "protocol");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":0}", true, "port_min");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":70000}", true,
		 "port_min");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":\"22\"}", true,
		 "port_min");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_min\":30,\"port_max\":20}",
		 true, "empty");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"tcp\",\"port_max\":20}", true,
		 "needs port_min");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"icmp\",\"port_min\":1}", true, "tcp or udp");
	rule_bad("{\"direction\":\"in\",\"protocol\":\"any\",\"port_min\":1}", true, "tcp or udp");
	rule_bad("{\"direction\":\"in\",\"cidr\":\"10.0.0.0/8 accept\"}", true, "cidr");
	rule_bad("{\"direction\":\"in\",\"cidr\":\"10.0.0.0/8\",\"remote_group\":\"a\"}", true,
		 "not both");
	rule_bad("{\"direction\":\"in\",\"remote_group\":\"a b\"}", true, "remote group name");
	rule_bad("{\"direction\":\"in\",\"remote_group\":\"web\"}", false, "expanded");
	rule_bad("{\"direction\":\"in\",\"action\":\"accept\"}", true, "action");
	rule_bad("[]", true, "object");
}

KC_TEST(ifname)
{
	struct kc_error err = {0};
	KC_CHECK(kc_ifname_validate("vnet0", "tap", &err) == 0);
	KC_CHECK(kc_ifname_validate("a23456789012345", "tap", &err) == 0);
	KC_CHECK(kc_ifname_validate("a234567890123456", "tap", &err) < 0);
	KC_CHECK(kc_ifname_validate("Vnet0", "tap", &err) < 0);
	KC_CHECK(kc_ifname_validate("0vnet", "tap", &err) < 0);
	KC_CHECK(kc_ifname_validate("vnet\"0", "tap", &err) < 0);
	KC_CHECK(kc_ifname_validate("vnet 0", "tap", &err) < 0);
	KC_CHECK(kc_ifname_validate("", "tap", &err) < 0);
}

static void ruleset_bad(const char *json, const char *msg_part)
{
	_cleanup_json_ json_t *j = json_loads(json, 0, NULL);
	struct kc_sg_ruleset rs = {0};
	struct kc_error err = {0};
	if (!KC_CHECK(j))
		return;
	if (!KC_CHECK(kc_sg_ruleset_from_json(j, &rs, &err) < 0)) {
		kc_test_diag("accepted: %s", json);
		kc_sg_ruleset_clear(&rs);
		return;
	}
	if (!KC_CHECK(strstr(err.message, msg_part)))
		kc_test_diag("%s -> %s", json, err.message);
}

/* Hostile input never reaches the renderer: every refusal happens in the
 * parser, so no text exists to apply. */
KC_TEST(ruleset_hostile_refused)
{
	ruleset_bad("{\"vms\":[{\"name\":\"a\\\"b\",\"nics\":[]}]}", "VM name");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[{\"tap\":\"vnet0\\\" accept\","
		    "\"mac\":\"52:54:00:00:00:01\",\"ips\":[]}]}]}",
		    "tap");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[{\"mac\":\"52:54:00:00:00:01 drop\","
		    "\"ips\":[]}]}]}",
		    "mac");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[{\"mac\":\"53:54:00:00:00:01\","
		    "\"ips\":[]}]}]}",
		    "multicast");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[{\"mac\":\"52:54:00:00:00:01\","
		    "\"ips\":[\"10.0.0.0/24\"]}]}]}",
		    "one address");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[{\"mac\":\"52:54:00:00:00:01\","
		    "\"ips\":[\"10.0.0.1 }\"]}]}]}",
		    "NIC address");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[]},{\"name\":\"a\",\"nics\":[]}]}",
		    "twice");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[{\"tap\":\"vnet0\",\"mac\":"
		    "\"52:54:00:00:00:01\"}]},{\"name\":\"b\",\"nics\":[{\"tap\":\"vnet0\","
		    "\"mac\":\"52:54:00:00:00:02\"}]}]}",
		    "tap vnet0 is listed twice");
	ruleset_bad("{\"vms\":[],\"flush\":true}", "flush");
	ruleset_bad("{\"vms\":[{\"name\":\"a\",\"nics\":[],\"rules\":[{\"direction\":\"in\","
		    "\"remote_group\":\"g\"}]}]}",
		    "expanded");
	/* Bounds: 9 NICs, 17 addresses, 4001 rules. */
	_cleanup_json_ json_t *nics = json_array(), *ips = json_array(), *rules = json_array();
	for (int i = 0; i < 9; i++)
		json_array_append_new(nics, json_pack("{s:s}", "mac", "52:54:00:00:00:01"));
	for (int i = 0; i < 17; i++)
		json_array_append_new(ips, json_sprintf("10.0.0.%d", i + 1));
	for (int i = 0; i <= KC_SG_VM_RULES_MAX; i++)
		json_array_append_new(rules, json_pack("{s:s}", "direction", "in"));
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
	json_t *t1 = json_pack("{s:[{s:s,s:O}]}", "vms", "name", "a", "nics", nics);
	json_t *t2 = json_pack("{s:[{s:s,s:[{s:s,s:O}]}]}", "vms", "name", "a", "nics", "mac",
			       "52:54:00:00:00:01", "ips", ips);
	json_t *t3 = json_pack("{s:[{s:s,s:[],s:O}]}", "vms", "name", "a", "nics", "rules", rules);
	a = json_dumps(t1, 0);
	b = json_dumps(t2, 0);
	c = json_dumps(t3, 0);
	json_decref(t1);
	json_decref(t2);
	json_decref(t3);
	ruleset_bad(a, "at most 8");
	ruleset_bad(b, "at most 16");
	ruleset_bad(c, "at most 4000");
}

KC_TEST(empty_ruleset_removes_tables)
{
	struct kc_sg_ruleset rs = {0};
	struct kc_error err = {0};
	_cleanup_free_ char *text = NULL;
	KC_CHECK(kc_nft_render_sg(&rs, &text, &err) == 0);
	KC_CHECK_STREQ(text, "table bridge kvmcloud_sg\ndelete table bridge kvmcloud_sg\n"
			     "table inet kvmcloud_sg\ndelete table inet kvmcloud_sg\n");
}

/* ---- golden files ---- */

static void golden_case(const char *base)
{
	char jpath[1024], npath[1024];
	snprintf(jpath, sizeof(jpath), "%s/%s.json", GOLDEN_DIR, base);
	snprintf(npath, sizeof(npath), "%s/%s.nft", GOLDEN_DIR, base);
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_load_file(jpath, JSON_REJECT_DUPLICATES, &jerr);
	struct kc_sg_ruleset rs = {0};
	struct kc_error err = {0};
	_cleanup_free_ char *text = NULL, *golden = NULL;

	if (!j) {
		kc_test_fail(jpath, jerr.line, "%s", jerr.text);
		return;
	}
	if (kc_sg_ruleset_from_json(j, &rs, &err) < 0) {
		kc_test_fail(jpath, 0, "refused: %s", err.message);
		return;
	}
	int rc = kc_nft_render_sg(&rs, &text, &err);
	/* The state file round trip: to_json then from_json renders the same. */
	_cleanup_json_ json_t *back = kc_sg_ruleset_to_json(&rs);
	kc_sg_ruleset_clear(&rs);
	if (!KC_CHECK(rc == 0) || !KC_CHECK(back))
		return;
	struct kc_sg_ruleset rs2 = {0};
	_cleanup_free_ char *text2 = NULL;
	if (KC_CHECK(kc_sg_ruleset_from_json(back, &rs2, &err) == 0) &&
	    KC_CHECK(kc_nft_render_sg(&rs2, &text2, &err) == 0))
		KC_CHECK_STREQ(text2, text);
	kc_sg_ruleset_clear(&rs2);
	if (getenv("KC_UPDATE_GOLDEN") && strcmp(getenv("KC_UPDATE_GOLDEN"), "1") == 0) {
		FILE *f = fopen(npath, "we");
		if (KC_CHECK(f)) {
			fputs(text, f);
			fclose(f);
		}
		return;
	}
	golden = read_file(npath);
	if (!golden) {
		kc_test_fail(npath, 0,
			     "cannot read golden file; generate it with KC_UPDATE_GOLDEN=1");
		return;
	}
	if (strcmp(golden, text) != 0) {
		kc_test_fail(npath, 0, "rendered nft text differs from the golden file");
		kc_test_diag("--- generated:\n%s", text);
	}
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(void)
{
	struct dirent **ents = NULL;
	int n = scandir(GOLDEN_DIR, &ents, is_json, cmp_names);

	kc_test_run_registered();
	kc_test_begin("golden cases exist in " GOLDEN_DIR);
	KC_CHECK(n >= 3);
	kc_test_end();
	for (int i = 0; i < n; i++) {
		char name[300], base[256];
		snprintf(base, sizeof(base), "%.*s", (int)strlen(ents[i]->d_name) - 5,
			 ents[i]->d_name);
		snprintf(name, sizeof(name), "golden %s", base);
		kc_test_begin(name);
		golden_case(base);
		kc_test_end();
		free(ents[i]);
	}
	free(ents);
	return kc_test_finish();
}
