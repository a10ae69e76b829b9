/* SPDX-License-Identifier: Apache-2.0 */
/* test_netdecl.c - host network declarations: the seeds' example parses,
 * every bad field is refused naming it, JSON round-trips. */
#include <jansson.h>

#include "kctest.h"
#include "netdecl.h"

static const char *seeds =
	"{\"backend\": \"ovs\", \"datapath\": \"netdev\", \"nics\": [\"eth1\"],"
	" \"switch\": \"cloudbr\", \"bridges\": ["
	" {\"name\": \"mgmt0\", \"vlan\": 100, \"addresses\": [\"192.168.42.11/24\"]},"
	" {\"name\": \"cloudbr0\", \"vlan\": 200}, {\"name\": \"cloudbr1\", \"vlan\": 300}]}";

static int parse(const char *text, struct kc_netdecl *d, struct kc_error *err)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j) {
		kc_test_diag("bad test JSON: %s", je.text);
		return -2;
	}
	int r = kc_netdecl_from_json(j, d, err);
	json_decref(j);
	return r;
}

KC_TEST(seeds_example)
{
	struct kc_netdecl d;
	struct kc_error err = {0};
	if (!KC_CHECK(parse(seeds, &d, &err) == 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	KC_CHECK_INT(d.backend, KC_NETB_OVS);
	KC_CHECK(d.ovs_netdev);
	KC_CHECK_INT(d.n_nics, 1);
	KC_CHECK_STREQ(kc_netdecl_uplink(&d), "eth1");
	KC_CHECK_INT(d.n_bridges, 3);
	KC_CHECK_STREQ(d.bridges[0].name, "mgmt0");
	KC_CHECK_INT(d.bridges[0].vlan, 100);
	KC_CHECK_INT(d.bridges[0].n_addrs, 1);
	KC_CHECK_STREQ(d.bridges[0].addrs[0].text, "192.168.42.11/24");
	KC_CHECK_INT(d.bridges[2].vlan, 300);
	/* The canonical JSON parses to the same declaration. */
	json_t *j = kc_netdecl_to_json(&d);
	struct kc_netdecl d2;
	KC_CHECK(j && kc_netdecl_from_json(j, &d2, &err) == 0);
	KC_CHECK(memcmp(&d, &d2, sizeof(d)) == 0);
	json_decref(j);
}

KC_TEST(linux_bond_and_subif_names)
{
	struct kc_netdecl d;
	struct kc_error err = {0};
	const char *t = "{\"backend\": \"linux\", \"nics\": [\"eth0\", \"eth1\"],"
			" \"bond\": {\"name\": \"bond0\", \"mode\": \"802.3ad\", \"members\": "
			"[\"eth1\", \"eth0\"]},"
			" \"bridges\": [{\"name\": \"cloudbr0\", \"vlan\": 200,"
			" \"addresses\": [\"2001:DB8:0:0::1/64\"]}]}";
	if (!KC_CHECK(parse(t, &d, &err) == 0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	KC_CHECK_INT(d.bond_mode, KC_BOND_8023AD);
	KC_CHECK_STREQ(kc_netdecl_uplink(&d), "bond0");
	KC_CHECK_STREQ(d.bridges[0].addrs[0].text, "2001:db8::1/64");
	char sub[KC_NETDECL_IFNAME_MAX + 1];
	KC_CHECK(kc_netdecl_subif_name(&d, 200, sub, &err) == 0);
	KC_CHECK_STREQ(sub, "bond0.200");
}

struct bad {
	const char *json;
	const char *message; /* a part of the error */
};

KC_TEST(refuses_bad_declarations)
{
	static const struct bad cases[] = {
		{"[]", "must be an object"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [], \"x\": 1}",
		 "\"x\""},
		{"{\"backend\": \"vpp\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 1}]}",
		 "linux or ovs"},
		{"{\"backend\": \"ovs\", \"bridges\": [{\"name\": \"a\", \"vlan\": 1}]}",
		 "\"nics\""},
		{"{\"backend\": \"ovs\", \"nics\": [], \"bridges\": [{\"name\": \"a\", \"vlan\": "
		 "1}]}",
		 "at least one NIC"},
		{"{\"backend\": \"ovs\", \"nics\": [\"Eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 1}]}",
		 "NIC name"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a;rm\", "
		 "\"vlan\": 1}]}",
		 "bridge \"name\""},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": "
		 "\"abcdefghijklmnop\", \"vlan\": 1}]}",
		 "1..15 characters"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 4095}]}",
		 "\"vlan\""},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 0}]}",
		 "\"vlan\""},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\"}]}",
		 "\"vlan\" is required"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 5}, {\"name\": \"b\", \"vlan\": 5}]}",
		 "VLAN 5 is declared twice"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"eth1\", "
		 "\"vlan\": 5}]}",
		 "used twice"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"switch\": \"a\", \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 5}]}",
		 "used twice"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\", \"eth2\"], \"bridges\": [{\"name\": "
		 "\"a\", \"vlan\": 5}]}",
		 "need a \"bond\""},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\", \"eth2\"], \"bond\": {\"name\": "
		 "\"bond0\", \"mode\": \"rr\", \"members\": [\"eth1\", \"eth2\"]}, \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 5}]}",
		 "active-backup or 802.3ad"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\", \"eth2\"], \"bond\": {\"name\": "
		 "\"bond0\", \"mode\": \"802.3ad\", \"members\": [\"eth1\", \"eth3\"]}, "
		 "\"bridges\": [{\"name\": \"a\", \"vlan\": 5}]}",
		 "not one of \"nics\""},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 5, \"addresses\": [\"10.0.0.1\"]}]}",
		 "ADDR/PREFIX"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 5, \"addresses\": [\"10.0.0.256/24\"]}]}",
		 "not an IP address"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 5, \"addresses\": [\"10.0.0.1/33\"]}]}",
		 "prefix must be 1..32"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [{\"name\": \"a\", "
		 "\"vlan\": 5, \"addresses\": [\"10.0.0.1/24\", \"10.0.0.1/24\"]}]}",
		 "twice"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"vlan_filtering\": true, "
		 "\"bridges\": [{\"name\": \"a\", \"vlan\": 5}]}",
		 "linux backend"},
		{"{\"backend\": \"linux\", \"nics\": [\"eth1\"], \"datapath\": \"netdev\", "
		 "\"bridges\": [{\"name\": \"a\", \"vlan\": 5}]}",
		 "ovs backend only"},
		{"{\"backend\": \"linux\", \"nics\": [\"abcdefghijklm\"], \"bridges\": [{\"name\": "
		 "\"a\", \"vlan\": 300}]}",
		 "longer than 15"},
		{"{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"mtu\": 100, \"bridges\": "
		 "[{\"name\": \"a\", \"vlan\": 5}]}",
		 "\"mtu\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kc_netdecl d;
		struct kc_error err = {0};
		int r = parse(cases[i].json, &d, &err);
		if (!KC_CHECK(r == -1) || !KC_CHECK(strstr(err.message, cases[i].message) != NULL))
			kc_test_diag("case %zu: r=%d message \"%s\", wanted \"%s\"", i, r,
				     err.message, cases[i].message);
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
	}
}

KC_TEST(bridge_count_is_bounded)
{
	char buf[8192];
	size_t o = (size_t)snprintf(buf, sizeof(buf),
				    "{\"backend\": \"ovs\", \"nics\": [\"eth1\"], \"bridges\": [");
	for (int i = 0; i < KC_NETDECL_MAX_BR + 1; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "%s{\"name\": \"b%d\", \"vlan\": %d}", i ? "," : "", i,
				      i + 1);
	snprintf(buf + o, sizeof(buf) - o, "]}");
	struct kc_netdecl d;
	struct kc_error err = {0};
	KC_CHECK(parse(buf, &d, &err) == -1);
	KC_CHECK(strstr(err.message, "more than") != NULL);
}

KC_TEST_MAIN()
