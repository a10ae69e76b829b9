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
#include "dhcp_conf.h"
#include "gnet.h"
#include "json_util.h"
#include "kctest.h"
#include "netdef_xml.h"
#include "secgroup.h" /* kc_ifname_validate */
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

/* dnsmasq for a vxlan network: the exact argv, and what is refused. */
KC_TEST(dhcp_conf_vxlan)
{
	static const char *const want[] = {
		"/usr/sbin/dnsmasq",
		"--conf-file=/d/hosts",
		"--port=0",
		"--interface=kcd0000abcdn",
		"--bind-interfaces",
		"--except-interface=lo",
		"--dhcp-range=10.31.65.0,static,255.255.255.0,1h",
		"--dhcp-ignore=tag:!known",
		"--leasefile-ro",
		"--pid-file=/d/pid",
		"--dhcp-option=6",
		"--dhcp-option=3",
		"--dhcp-option=26,1450",
	};
	struct kc_gnet g;
	struct kc_error err = {0};
	_cleanup_free_ struct kc_dhcp_argv *a = calloc(1, sizeof(*a));
	uint32_t sip = 0, out = 0;
	if (!KC_CHECK_INT(parse("{\"name\":\"v\",\"kind\":\"vxlan\",\"vni\":7165,"
				"\"underlay\":\"eth0\",\"cidr\":\"10.31.65.0/24\"}",
				&g, &err),
			  0))
		return;
	kc_ipv4_parse("10.31.65.254", "x", &sip, NULL);
	if (!KC_CHECK_INT(kc_dhcp_argv_build(&g, sip, "/usr/sbin/dnsmasq", "kcd0000abcdn",
					     "/d/hosts", "/d/pid", a, &err),
			  0))
		return;
	KC_CHECK_INT((int)a->n, (int)KC_ARRAY_SIZE(want));
	for (size_t i = 0; i < a->n && i < KC_ARRAY_SIZE(want); i++)
		KC_CHECK_STREQ(a->argv[i], want[i]);
	KC_CHECK(a->argv[a->n] == NULL);

	/* The server's address must be in the pool. */
	kc_ipv4_parse("10.31.66.9", "x", &out, NULL);
	struct kc_error e2 = {0};
	KC_CHECK_INT(kc_dhcp_argv_build(&g, out, "/usr/sbin/dnsmasq", "x", "/h", "/p", a, &e2), -1);
	KC_CHECK_INT(e2.code, KC_ERR_INVALID);
	/* A path past the argument buffer is refused, not cut. */
	char longpath[KC_DHCP_ARG_LEN + 8];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	struct kc_error e3 = {0};
	KC_CHECK_INT(kc_dhcp_argv_build(&g, sip, "/usr/sbin/dnsmasq", "x", longpath, "/p", a, &e3),
		     -1);
	KC_CHECK_INT(e3.code, KC_ERR_TOO_LARGE);
}

/* The hosts file: one dhcp-host line per host; a foreign address refused. */
KC_TEST(dhcp_conf_hosts)
{
	struct kc_gnet g;
	struct kc_error err = {0};
	struct kc_dhcp_host h[2] = {{.mac = "52:54:00:aa:00:01"}, {.mac = "52:54:00:aa:00:02"}};
	_cleanup_free_ char *text = NULL, *none = NULL;
	if (!KC_CHECK_INT(parse("{\"name\":\"v\",\"kind\":\"vlan\",\"backend\":\"ovs\","
				"\"bridge\":\"cloudbr\",\"vlan\":200,\"cidr\":\"10.60.0.0/24\"}",
				&g, &err),
			  0))
		return;
	kc_ipv4_parse("10.60.0.2", "x", &h[0].ip, NULL);
	kc_ipv4_parse("10.60.0.3", "x", &h[1].ip, NULL);
	if (KC_CHECK_INT(kc_dhcp_hosts_text(&g, h, 2, &text, &err), 0))
		KC_CHECK_STREQ(text, "dhcp-host=52:54:00:aa:00:01,10.60.0.2\n"
				     "dhcp-host=52:54:00:aa:00:02,10.60.0.3\n");
	if (KC_CHECK_INT(kc_dhcp_hosts_text(&g, h, 0, &none, &err), 0))
		KC_CHECK_STREQ(none, "");
	kc_ipv4_parse("10.61.0.3", "x", &h[1].ip, NULL);
	char *bad = NULL;
	struct kc_error e2 = {0};
	KC_CHECK_INT(kc_dhcp_hosts_text(&g, h, 2, &bad, &e2), -1);
	KC_CHECK(bad == NULL);
	snprintf(h[1].mac, sizeof(h[1].mac), "01:00:5e:00:00:01"); /* multicast */
	kc_ipv4_parse("10.60.0.3", "x", &h[1].ip, NULL);
	struct kc_error e3 = {0};
	KC_CHECK_INT(kc_dhcp_hosts_text(&g, h, 2, &bad, &e3), -1);
	KC_CHECK_INT(e3.code, KC_ERR_INVALID);
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

/* ---- the hybrid plug (security groups on Open vSwitch) ---- */
#define DOMAIN_GOLDEN KC_SOURCE_DIR "/tests/golden/domain"

KC_TEST(hybrid_plug_names)
{
	struct kc_error err = {0};
	struct kc_gnet_plug p;
	if (KC_CHECK_INT(kc_gnet_plug_names("52:54:00:AA:bb:0C", &p, &err), 0)) {
		KC_CHECK_STREQ(p.mac, "52:54:00:aa:bb:0c");
		KC_CHECK_STREQ(p.qbr, "kcq525400aabb0c");
		KC_CHECK_STREQ(p.vin, "kcv525400aabb0c");
		KC_CHECK_STREQ(p.vout, "kco525400aabb0c");
		KC_CHECK_INT(strlen(p.qbr), KC_IFNAME_LEN); /* IFNAMSIZ - 1, exactly */
		KC_CHECK(kc_ifname_validate(p.qbr, "t", NULL) == 0 &&
			 kc_ifname_validate(p.vout, "t", NULL) == 0);
	}
	KC_CHECK_INT(kc_gnet_plug_names("52:54:00:aa:bb", &p, &err), -1);
	KC_CHECK_INT(kc_gnet_plug_names("01:00:5e:00:00:01", &p, &err), -1); /* multicast */
	KC_CHECK_INT(kc_gnet_plug_names("52:54:00:aa:bb:0c;x", &p, &err), -1);
	KC_CHECK_INT(kc_gnet_plug_names(NULL, &p, &err), -1);
}

/* guestnets.xml (domain_xml's golden, two OVS NICs) with its OVS NIC on
 * VLAN 200 and its untagged one moved to the hybrid plug must equal
 * guestnets-hybrid.xml, which schema-golden.sh checks against libvirt's
 * schema.  The vxlan NIC is listed too and must stay as it is. */
KC_TEST(hybrid_domain_golden)
{
	static const char *const macs[] = {"52:54:00:00:02:02", "52:54:00:00:02:03",
					   "52:54:00:00:02:04"};
	const char *golden_path = DOMAIN_GOLDEN "/guestnets-hybrid.xml";
	struct kc_error err = {0};
	_cleanup_free_ char *in = read_file(DOMAIN_GOLDEN "/guestnets.xml");
	_cleanup_free_ char *out = NULL, *again = NULL, *golden = NULL;
	size_t changed = 0;
	if (!KC_CHECK(in != NULL) ||
	    !KC_CHECK_INT(kc_gnet_domain_hybrid(in, macs, 3, &out, &changed, &err), 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	KC_CHECK_INT(changed, 2);
	if (!KC_CHECK(out != NULL))
		return;
	if (getenv("KC_UPDATE_GOLDEN") && strcmp(getenv("KC_UPDATE_GOLDEN"), "1") == 0) {
		_cleanup_fclose_ FILE *f = fopen(golden_path, "we");
		if (!f || fputs(out, f) < 0)
			kc_test_fail(golden_path, 0, "cannot write: %s", strerror(errno));
	} else if (!(golden = read_file(golden_path)) || strcmp(golden, out) != 0) {
		kc_test_fail(golden_path, 0, "differs from the golden file (or is missing)");
		kc_test_diag("generated:\n%s", out);
	}
	/* Idempotent: nothing left to move. */
	KC_CHECK_INT(kc_gnet_domain_hybrid(out, macs, 3, &again, &changed, &err), 0);
	KC_CHECK(again == NULL && changed == 0);
	/* What the agent reads back at the next start. */
	struct kc_gnet_plug p[KC_PLUGS_MAX];
	size_t n = 0;
	if (KC_CHECK_INT(kc_gnet_domain_plugs(out, p, KC_PLUGS_MAX, &n, &err), 0) &&
	    KC_CHECK_INT(n, 2)) {
		KC_CHECK_STREQ(p[0].qbr, "kcq525400000202");
		KC_CHECK_STREQ(p[0].ovs_bridge, "cloudbr");
		KC_CHECK_INT(p[0].vlan, 200);
		KC_CHECK_STREQ(p[1].vout, "kco525400000204");
		KC_CHECK_STREQ(p[1].ovs_bridge, "cloudbr1");
		KC_CHECK_INT(p[1].vlan, 0);
	}
	KC_CHECK_INT(kc_gnet_domain_plugs(out, p, 1, &n, &err), -1); /* over max */
	/* A domain without plugs has none; a NIC not listed is not moved. */
	KC_CHECK_INT(kc_gnet_domain_plugs(in, p, KC_PLUGS_MAX, &n, &err), 0);
	KC_CHECK_INT(n, 0);
	free(again);
	again = NULL;
	KC_CHECK_INT(kc_gnet_domain_hybrid(in, macs + 1, 1, &again, &changed, &err), 0);
	KC_CHECK(again == NULL && changed == 0);
}

/* Recorded plugs reach ip and ovs-vsctl: each is checked again. */
KC_TEST(hybrid_plugs_refused)
{
	static const char *const bad[] = {
		"bridge=\"a;b\" vlan=\"1\" mac=\"52:54:00:00:00:01\"",
		"bridge=\"cloudbr\" vlan=\"4095\" mac=\"52:54:00:00:00:01\"",
		"bridge=\"cloudbr\" vlan=\"1.5\" mac=\"52:54:00:00:00:01\"",
		"bridge=\"cloudbr\" vlan=\"1\" mac=\"52:54:00:00:00\"",
		"vlan=\"1\" mac=\"52:54:00:00:00:01\"",
	};
	struct kc_gnet_plug p[KC_PLUGS_MAX];
	size_t n;
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++) {
		char xml[512];
		struct kc_error err = {0};
		snprintf(xml, sizeof(xml),
			 "<domain><metadata><kcplug:plugs xmlns:kcplug=\"" KC_PLUG_NS "\">"
			 "<kcplug:nic %s/></kcplug:plugs></metadata></domain>",
			 bad[i]);
		if (!KC_CHECK_INT(kc_gnet_domain_plugs(xml, p, KC_PLUGS_MAX, &n, &err), -1))
			kc_test_diag("accepted: %s", bad[i]);
	}
	/* A VLAN trunk cannot become one tagged port. */
	const char *trunk =
		"<domain><devices><interface type='bridge'><mac address='52:54:00:00:00:01'/>"
		"<source bridge='cloudbr'/><virtualport type='openvswitch'/><vlan trunk='yes'>"
		"<tag id='2'/><tag id='3'/></vlan></interface></devices></domain>";
	static const char *const mac[] = {"52:54:00:00:00:01"};
	char *out = NULL;
	size_t changed;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_gnet_domain_hybrid(trunk, mac, 1, &out, &changed, &err), -1);
	KC_CHECK(out == NULL);
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
