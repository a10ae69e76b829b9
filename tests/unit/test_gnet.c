/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for gnet.h (guest network definitions, NIC attachment) and
 * netdef_xml.h.  Every tests/golden/network/<case>.json is
 * {"network": {...}, "dhcp_hosts": [...]} plus, for a case that must be
 * refused, "expect_error" and "expect_message"; the others are compared
 * with <case>.xml (KC_UPDATE_GOLDEN=1 rewrites them), which
 * schema-golden.sh also validates against libvirt's network schema.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "gnet.h"
#include "json_util.h"
#include "kctest.h"
#include "netdef_xml.h"
#include "vmspec.h"

#ifndef KC_SOURCE_DIR
#error "KC_SOURCE_DIR must be defined by the build"
#endif
#define GOLDEN_DIR KC_SOURCE_DIR "/tests/golden/network"

static int parse(const char *text, struct kc_gnet *g, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_loads(text, 0, NULL);
	if (!j) {
		kc_test_diag("bad JSON in the test: %s", text);
		return -2;
	}
	return kc_gnet_from_json(j, g, err);
}

KC_TEST(nat_defaults)
{
	struct kc_gnet g;
	struct kc_error err = {0};
	char a[16];
	if (!KC_CHECK_INT(parse("{\"name\":\"n1\",\"kind\":\"nat\",\"bridge\":\"kcnat1\","
				"\"cidr\":\"10.60.0.0/24\"}",
				&g, &err),
			  0))
		return;
	kc_ipv4_format(g.gateway, a);
	KC_CHECK_STREQ(a, "10.60.0.1");
	kc_ipv4_format(g.dhcp_start, a);
	KC_CHECK_STREQ(a, "10.60.0.2");
	kc_ipv4_format(g.dhcp_end, a);
	KC_CHECK_STREQ(a, "10.60.0.254");
	uint32_t ip;
	kc_ipv4_parse("10.60.0.1", "x", &ip, NULL);
	KC_CHECK(!kc_gnet_ip_assignable(&g, ip)); /* the gateway */
	kc_ipv4_parse("10.60.0.255", "x", &ip, NULL);
	KC_CHECK(!kc_gnet_ip_assignable(&g, ip)); /* broadcast */
	kc_ipv4_parse("10.60.1.5", "x", &ip, NULL);
	KC_CHECK(!kc_gnet_ip_assignable(&g, ip));
	kc_ipv4_parse("10.60.0.55", "x", &ip, NULL);
	KC_CHECK(kc_gnet_ip_assignable(&g, ip));
}

KC_TEST(round_trip)
{
	static const char *const cases[] = {
		"{\"name\":\"n1\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.60.0.0/24\","
		"\"dhcp_start\":\"10.60.0.10\",\"dhcp_end\":\"10.60.0.20\"}",
		"{\"name\":\"v200\",\"kind\":\"vlan\",\"bridge\":\"cloudbr\",\"vlan\":200,"
		"\"cidr\":\"10.20.0.0/24\",\"gateway\":\"10.20.0.254\"}",
		"{\"name\":\"vx\",\"kind\":\"vxlan\",\"vni\":5001,\"underlay\":\"eth0\"}",
		"{\"name\":\"b0\",\"kind\":\"bridged\",\"backend\":\"ovs\",\"bridge\":"
		"\"cloudbr0\"}",
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		struct kc_gnet g, g2;
		struct kc_error err = {0};
		if (!KC_CHECK_INT(parse(cases[i], &g, &err), 0)) {
			kc_test_diag("%s: %s", cases[i], err.message);
			continue;
		}
		_cleanup_json_ json_t *j = kc_gnet_to_json(&g);
		if (KC_CHECK_INT(kc_gnet_from_json(j, &g2, &err), 0))
			KC_CHECK(memcmp(&g, &g2, sizeof(g)) == 0);
	}
}

KC_TEST(refused)
{
	static const struct {
		const char *json, *msg;
	} cases[] = {
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\"}", "needs a \"cidr\""},
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"cloudbr0\",\"cidr\":\"10.0.0.0/"
		 "24\"}",
		 "kcnat<N>"},
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.0.0.1/24\"}",
		 "host bits"},
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.0.0.0/8\"}",
		 "16 to 30"},
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.0.0.0/24 "
		 "\"}",
		 "cidr"},
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.0.0.0/24\","
		 "\"vlan\":3}",
		 "takes no \"vlan\""},
		{"{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.0.0.0/24\","
		 "\"gateway\":\"10.0.1.1\"}",
		 "not a host address"},
		{"{\"name\":\"n\",\"kind\":\"vlan\",\"bridge\":\"cloudbr\",\"vlan\":4095}", "vlan"},
		{"{\"name\":\"n\",\"kind\":\"vlan\",\"bridge\":\"cloudbr\"}", "needs \"vlan\""},
		{"{\"name\":\"n\",\"kind\":\"vlan\",\"backend\":\"linux\",\"bridge\":\"br0\","
		 "\"vlan\":5}",
		 "backend ovs"},
		{"{\"name\":\"n\",\"kind\":\"bridged\",\"bridge\":\"Br0\"}", "must match"},
		{"{\"name\":\"n\",\"kind\":\"bridged\",\"bridge\":\"br0;reboot\"}", "must match"},
		{"{\"name\":\"n\",\"kind\":\"bridged\",\"bridge\":\"abcdefghijklmnop\"}",
		 "must match"},
		{"{\"name\":\"n\",\"kind\":\"vxlan\",\"vni\":16777216,\"underlay\":\"eth0\"}",
		 "vni"},
		{"{\"name\":\"n\",\"kind\":\"vxlan\",\"vni\":5,\"underlay\":\"eth0\",\"mtu\":1500}",
		 "at most 1450"},
		{"{\"name\":\"n\",\"kind\":\"vxlan\",\"vni\":5}", "underlay"},
		{"{\"name\":\"../x\",\"kind\":\"nat\"}", "network name"},
		{"{\"name\":\"n\",\"kind\":\"ipsec\"}", "kind"},
		{"{\"name\":\"n\",\"kind\":\"bridged\",\"bridge\":\"br0\",\"extra\":1}", "extra"},
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		struct kc_gnet g;
		struct kc_error err = {0};
		if (!KC_CHECK_INT(parse(cases[i].json, &g, &err), -1)) {
			kc_test_diag("accepted: %s", cases[i].json);
			continue;
		}
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
		if (!strstr(err.message, cases[i].msg))
			kc_test_fail(__FILE__, __LINE__, "%s: \"%s\" lacks \"%s\"", cases[i].json,
				     err.message, cases[i].msg);
	}
}

KC_TEST(nic_attach)
{
	struct kc_gnet g;
	struct kc_error err = {0};
	struct kc_nic_def nic = {0};

	if (!KC_CHECK_INT(parse("{\"name\":\"v\",\"kind\":\"vlan\",\"bridge\":\"cloudbr\","
				"\"vlan\":200}",
				&g, &err),
			  0) ||
	    !KC_CHECK_INT(kc_gnet_nic_attach(&g, &nic, &err), 0))
		return;
	KC_CHECK_INT(nic.type, KC_NIC_BRIDGE);
	KC_CHECK_STREQ(nic.source, "cloudbr");
	KC_CHECK(nic.ovs);
	KC_CHECK_INT(nic.vlan, 200);
	if (!KC_CHECK_INT(
		    parse("{\"name\":\"x\",\"kind\":\"vxlan\",\"vni\":77,\"underlay\":\"e0\"}", &g,
			  &err),
		    0) ||
	    !KC_CHECK_INT(kc_gnet_nic_attach(&g, &nic, &err), 0))
		return;
	KC_CHECK_STREQ(nic.source, "kcbr77");
	KC_CHECK(!nic.ovs);
	KC_CHECK_INT(nic.vlan, 0);
	KC_CHECK_INT(nic.mtu, 1450);
	char dev[16];
	kc_gnet_vxlan_dev(&g, dev);
	KC_CHECK_STREQ(dev, "kcvx77");
	if (!KC_CHECK_INT(parse("{\"name\":\"i\",\"kind\":\"isolated\",\"bridge\":\"kciso4\","
				"\"cidr\":\"10.9.0.0/29\"}",
				&g, &err),
			  0) ||
	    !KC_CHECK_INT(kc_gnet_nic_attach(&g, &nic, &err), 0))
		return;
	KC_CHECK_INT(nic.type, KC_NIC_NETWORK);
	KC_CHECK_STREQ(nic.source, "kciso4");
	free(nic.source);
}

KC_TEST(resolve_nics)
{
	struct kc_error err = {0};
	struct kc_vm_request r = {0};
	_cleanup_json_ json_t *req = json_loads(
		"{\"name\":\"a\",\"memory_mib\":64,\"image\":\"i\",\"nics\":[{\"type\":\"user\"},"
		"{\"network\":\"n\"}]}",
		0, NULL);
	_cleanup_json_ json_t *good = json_loads(
		"[null,{\"network\":{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat2\","
		"\"cidr\":\"10.1.0.0/24\"},\"mac\":\"52:54:00:00:00:09\",\"ip\":\"10.1.0.9\"}]",
		0, NULL);
	_cleanup_json_ json_t *other = json_loads(
		"[null,{\"network\":{\"name\":\"m\",\"kind\":\"nat\",\"bridge\":\"kcnat2\","
		"\"cidr\":\"10.1.0.0/24\"},\"mac\":\"52:54:00:00:00:09\"}]",
		0, NULL);
	_cleanup_json_ json_t *outside = json_loads(
		"[null,{\"network\":{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat2\","
		"\"cidr\":\"10.1.0.0/24\"},\"mac\":\"52:54:00:00:00:09\",\"ip\":\"10.1.0.1\"}]",
		0, NULL);
	if (!KC_CHECK_INT(kc_vm_request_from_json(req, &r, &err), 0))
		return;
	KC_CHECK_INT(kc_gnet_resolve_nics(&r, NULL, &err), -1);	   /* no definition */
	KC_CHECK_INT(kc_gnet_resolve_nics(&r, other, &err), -1);   /* another network */
	KC_CHECK_INT(kc_gnet_resolve_nics(&r, outside, &err), -1); /* the gateway */
	if (KC_CHECK_INT(kc_gnet_resolve_nics(&r, good, &err), 0)) {
		KC_CHECK(r.nics[1].resolved && !r.nics[0].resolved);
		KC_CHECK_STREQ(r.nics[1].mac, "52:54:00:00:00:09");
		KC_CHECK_STREQ(r.nics[1].gnet.bridge, "kcnat2");
	}
	kc_vm_request_clear(&r);
}

KC_TEST(dhcp_host_xml)
{
	struct kc_gnet g;
	struct kc_error err = {0};
	struct kc_dhcp_host h = {.mac = "52:54:00:aa:00:09"};
	_cleanup_free_ char *xml = NULL;
	if (!KC_CHECK_INT(parse("{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\","
				"\"cidr\":\"10.60.0.0/24\"}",
				&g, &err),
			  0))
		return;
	kc_ipv4_parse("10.60.0.55", "x", &h.ip, NULL);
	if (KC_CHECK_INT(kc_dhcp_host_xml_build(&g, &h, &xml, &err), 0))
		KC_CHECK(strstr(xml, "<host mac=\"52:54:00:aa:00:09\" ip=\"10.60.0.55\"/>") !=
			 NULL);
	kc_ipv4_parse("10.60.0.1", "x", &h.ip, NULL);
	char *bad = NULL;
	KC_CHECK_INT(kc_dhcp_host_xml_build(&g, &h, &bad, &err), -1);
	KC_CHECK(bad == NULL);
}

static char *read_file(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	return buf;
}

static int build(const json_t *j, char **ret, struct kc_error *err)
{
	struct kc_gnet g;
	_cleanup_free_ struct kc_dhcp_host *hosts = NULL;
	size_t n = 0;
	if (kc_gnet_from_json(json_object_get(j, "network"), &g, err) < 0 ||
	    kc_dhcp_hosts_from_json(json_object_get(j, "dhcp_hosts"), &hosts, &n, err) < 0)
		return -1;
	return kc_netdef_xml_build(&g, hosts, n, ret, err);
}

static void run_case(const char *file)
{
	char path[4096], xml_path[4096];
	struct kc_error err = {0};
	json_error_t jerr;
	_cleanup_free_ char *xml = NULL, *golden = NULL;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, file);
	snprintf(xml_path, sizeof(xml_path), "%.*s.xml", (int)(strlen(path) - 5), path);
	_cleanup_json_ json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		kc_test_fail(path, jerr.line, "cannot parse case: %s", jerr.text);
		return;
	}
	const char *expect = json_string_value(json_object_get(j, "expect_error"));
	const char *expect_msg = json_string_value(json_object_get(j, "expect_message"));
	int rc = build(j, &xml, &err);
	if (expect) {
		if (KC_CHECK_INT(rc, -1) && KC_CHECK(xml == NULL)) {
			KC_CHECK_STREQ(kc_errcode_name(err.code), expect);
			if (expect_msg && !strstr(err.message, expect_msg))
				kc_test_fail(path, 0, "message \"%s\" lacks \"%s\"", err.message,
					     expect_msg);
		}
		return;
	}
	if (!KC_CHECK_INT(rc, 0)) {
		kc_test_diag("%s: %s", path, err.message);
		return;
	}
	if (getenv("KC_UPDATE_GOLDEN") && strcmp(getenv("KC_UPDATE_GOLDEN"), "1") == 0) {
		_cleanup_fclose_ FILE *f = fopen(xml_path, "we");
		if (!f || fputs(xml, f) < 0)
			kc_test_fail(xml_path, 0, "cannot write: %s", strerror(errno));
		else
			kc_test_diag("updated %s", xml_path);
		return;
	}
	golden = read_file(xml_path);
	if (!golden) {
		kc_test_fail(xml_path, 0, "cannot read (%s); generate it with KC_UPDATE_GOLDEN=1",
			     strerror(errno));
		return;
	}
	if (strcmp(golden, xml) != 0) {
		kc_test_fail(xml_path, 0, "generated XML differs from the golden file");
		kc_test_diag("generated:\n%s", xml);
	}
}

static int is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(void)
{
	struct dirent **names = NULL;
	kc_test_run_registered();
	int n = scandir(GOLDEN_DIR, &names, is_json, alphasort);
	if (n <= 0) {
		kc_test_begin("golden_cases_exist");
		kc_test_fail(GOLDEN_DIR, 0, "no cases found");
		kc_test_end();
	}
	for (int i = 0; i < n; i++) {
		kc_test_begin(names[i]->d_name);
		run_case(names[i]->d_name);
		kc_test_end();
		free(names[i]);
	}
	free(names);
	return kc_test_finish();
}
