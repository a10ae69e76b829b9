/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_nlmsg.c - the rtnetlink messages the Linux host network backend
 * sends, byte for byte against tests/golden/nlmsg/<name>.hex.  Sub-
 * interfaces, bonds and bridge VLAN filtering cannot run on the project's
 * test kernel: these files are how they are tested.  The vlan, bond and
 * bridge-with-filtering files were checked against what iproute2 6.1 sends
 * for the same request (strace -e sendmsg -xx ip link add ...; see
 * tests/golden/nlmsg/README).  Besides the bytes, a small attribute walker
 * checks the fields that matter, so a wrong golden file cannot hide them.
 * KC_UPDATE_GOLDEN=1 rewrites the files.
 */
#include <arpa/inet.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "kctest.h"
#include "nlmsg.h"

static void golden(const char *name, const struct kc_nlmsg *m)
{
	char path[512], hex[4096], want[4096] = "";
	kc_nlmsg_hex(m, hex, sizeof(hex));
	snprintf(path, sizeof(path), "%s/tests/golden/nlmsg/%s.hex", KC_SOURCE_DIR, name);
	if (getenv("KC_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		if (f) {
			fputs(hex, f);
			fclose(f);
		}
	}
	FILE *f = fopen(path, "r");
	if (!KC_CHECK(f != NULL))
		return;
	size_t n = fread(want, 1, sizeof(want) - 1, f);
	want[n] = '\0';
	fclose(f);
	if (!KC_CHECK_STREQ(hex, want))
		kc_test_diag("%s: built\n%s", name, hex);
}

/* The attribute `type` directly inside the payload at [off, end). */
static const struct rtattr *find_attr(const struct kc_nlmsg *m, size_t off, size_t end,
				      unsigned short type)
{
	while (off + sizeof(struct rtattr) <= end) {
		const struct rtattr *a = (const struct rtattr *)(m->buf + off);
		if (a->rta_len < sizeof(*a) || off + a->rta_len > end)
			return NULL;
		if ((a->rta_type & NLA_TYPE_MASK) == type)
			return a;
		off += RTA_ALIGN(a->rta_len);
	}
	return NULL;
}

static size_t inner(const struct kc_nlmsg *m, const struct rtattr *a)
{
	return (size_t)((const unsigned char *)RTA_DATA(a) - m->buf);
}

static const size_t LINK_ATTRS = NLMSG_LENGTH(sizeof(struct ifinfomsg));

KC_TEST(vlan_subinterface)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	if (!KC_CHECK(kc_nl_link_vlan(&m, 7, "eth0.200", 2, 200, &err) == 0))
		return;
	golden("vlan", &m);
	const struct nlmsghdr *h = (const void *)m.buf;
	KC_CHECK_INT(h->nlmsg_type, RTM_NEWLINK);
	KC_CHECK_INT(h->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	KC_CHECK_INT(h->nlmsg_len, m.len);
	const struct rtattr *name = find_attr(&m, LINK_ATTRS, m.len, IFLA_IFNAME);
	const struct rtattr *link = find_attr(&m, LINK_ATTRS, m.len, IFLA_LINK);
	const struct rtattr *li = find_attr(&m, LINK_ATTRS, m.len, IFLA_LINKINFO);
	if (!KC_CHECK(name && link && li))
		return;
	KC_CHECK_STREQ((const char *)RTA_DATA(name), "eth0.200");
	KC_CHECK_INT(*(const uint32_t *)RTA_DATA(link), 2);
	const struct rtattr *kind =
		find_attr(&m, inner(&m, li), inner(&m, li) + RTA_PAYLOAD(li), IFLA_INFO_KIND);
	const struct rtattr *data =
		find_attr(&m, inner(&m, li), inner(&m, li) + RTA_PAYLOAD(li), IFLA_INFO_DATA);
	if (!KC_CHECK(kind && data))
		return;
	KC_CHECK_STREQ((const char *)RTA_DATA(kind), "vlan");
	const struct rtattr *id =
		find_attr(&m, inner(&m, data), inner(&m, data) + RTA_PAYLOAD(data), IFLA_VLAN_ID);
	const struct rtattr *proto = find_attr(
		&m, inner(&m, data), inner(&m, data) + RTA_PAYLOAD(data), IFLA_VLAN_PROTOCOL);
	if (KC_CHECK(id && proto)) {
		KC_CHECK_INT(*(const uint16_t *)RTA_DATA(id), 200);
		KC_CHECK_INT(ntohs(*(const uint16_t *)RTA_DATA(proto)), 0x8100);
	}
}

KC_TEST(bond_active_backup_and_lacp)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	if (!KC_CHECK(kc_nl_link_bond(&m, 8, "bond0", KC_BOND_ACTIVE_BACKUP, 100, &err) == 0))
		return;
	golden("bond-active-backup", &m);
	const struct rtattr *li = find_attr(&m, LINK_ATTRS, m.len, IFLA_LINKINFO);
	if (!KC_CHECK(li))
		return;
	const struct rtattr *data =
		find_attr(&m, inner(&m, li), inner(&m, li) + RTA_PAYLOAD(li), IFLA_INFO_DATA);
	const struct rtattr *mode =
		data ? find_attr(&m, inner(&m, data), inner(&m, data) + RTA_PAYLOAD(data),
				 IFLA_BOND_MODE)
		     : NULL;
	if (KC_CHECK(mode))
		KC_CHECK_INT(*(const uint8_t *)RTA_DATA(mode), 1);
	if (!KC_CHECK(kc_nl_link_bond(&m, 9, "bond0", KC_BOND_8023AD, 100, &err) == 0))
		return;
	golden("bond-8023ad", &m);
	KC_CHECK(kc_nl_link_bond(&m, 9, "bond0", KC_BOND_NONE, 100, &err) < 0);
}

KC_TEST(bridge_plain_and_vlan_filtering)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	if (!KC_CHECK(kc_nl_link_bridge(&m, 10, "cloudbr0", false, 0, &err) == 0))
		return;
	golden("bridge", &m);
	KC_CHECK(find_attr(&m, LINK_ATTRS, m.len, IFLA_MTU) == NULL);
	if (!KC_CHECK(kc_nl_link_bridge(&m, 11, "cloudbr", true, 9000, &err) == 0))
		return;
	golden("bridge-vlan-filtering", &m);
	const struct rtattr *mtu = find_attr(&m, LINK_ATTRS, m.len, IFLA_MTU);
	const struct rtattr *li = find_attr(&m, LINK_ATTRS, m.len, IFLA_LINKINFO);
	if (!KC_CHECK(mtu && li))
		return;
	KC_CHECK_INT(*(const uint32_t *)RTA_DATA(mtu), 9000);
	const struct rtattr *data =
		find_attr(&m, inner(&m, li), inner(&m, li) + RTA_PAYLOAD(li), IFLA_INFO_DATA);
	const struct rtattr *vf =
		data ? find_attr(&m, inner(&m, data), inner(&m, data) + RTA_PAYLOAD(data),
				 IFLA_BR_VLAN_FILTERING)
		     : NULL;
	if (KC_CHECK(vf))
		KC_CHECK_INT(*(const uint8_t *)RTA_DATA(vf), 1);
}

KC_TEST(bridge_port_vlans)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	if (!KC_CHECK(kc_nl_bridge_vlan(&m, 12, true, 5, 200, true, false, &err) == 0))
		return;
	golden("bridge-vlan-access", &m);
	const struct ifinfomsg *ifi = NLMSG_DATA((const struct nlmsghdr *)m.buf);
	KC_CHECK_INT(ifi->ifi_family, AF_BRIDGE);
	KC_CHECK_INT(ifi->ifi_index, 5);
	const struct rtattr *spec = find_attr(&m, LINK_ATTRS, m.len, IFLA_AF_SPEC);
	const struct rtattr *vi =
		spec ? find_attr(&m, inner(&m, spec), inner(&m, spec) + RTA_PAYLOAD(spec),
				 IFLA_BRIDGE_VLAN_INFO)
		     : NULL;
	if (KC_CHECK(vi)) {
		const struct bridge_vlan_info *v = RTA_DATA(vi);
		KC_CHECK_INT(v->vid, 200);
		KC_CHECK_INT(v->flags, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED);
	}
	if (!KC_CHECK(kc_nl_bridge_vlan(&m, 13, true, 3, 300, false, true, &err) == 0))
		return;
	golden("bridge-vlan-self-tagged", &m);
	KC_CHECK(kc_nl_bridge_vlan(&m, 13, true, 3, 4095, false, true, &err) < 0);
	KC_CHECK(kc_nl_bridge_vlan(&m, 13, true, 3, 0, false, true, &err) < 0);
}

KC_TEST(master_up_down_del)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	if (KC_CHECK(kc_nl_link_master(&m, 14, 6, 9, &err) == 0))
		golden("master", &m);
	if (KC_CHECK(kc_nl_link_updown(&m, 15, 6, true, &err) == 0)) {
		golden("up", &m);
		const struct ifinfomsg *ifi = NLMSG_DATA((const struct nlmsghdr *)m.buf);
		KC_CHECK_INT(ifi->ifi_flags, 1 /* IFF_UP */);
		KC_CHECK_INT(ifi->ifi_change, 1);
	}
	if (KC_CHECK(kc_nl_link_updown(&m, 16, 6, false, &err) == 0))
		golden("down", &m);
	if (KC_CHECK(kc_nl_link_del(&m, 17, 6, &err) == 0))
		golden("del", &m);
	KC_CHECK(kc_nl_link_master(&m, 14, 0, 9, &err) < 0);
}

KC_TEST(addresses)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	struct kc_net_addr a4, a6;
	if (!KC_CHECK(kc_net_addr_parse("192.168.42.11/24", &a4, &err) == 0) ||
	    !KC_CHECK(kc_net_addr_parse("2001:db8::11/64", &a6, &err) == 0))
		return;
	if (KC_CHECK(kc_nl_addr(&m, 18, true, 7, &a4, &err) == 0)) {
		golden("addr-add-v4", &m);
		const struct nlmsghdr *h = (const void *)m.buf;
		KC_CHECK_INT(h->nlmsg_type, RTM_NEWADDR);
		KC_CHECK_INT(h->nlmsg_flags,
			     NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
	}
	if (KC_CHECK(kc_nl_addr(&m, 19, false, 7, &a4, &err) == 0))
		golden("addr-del-v4", &m);
	if (KC_CHECK(kc_nl_addr(&m, 20, true, 7, &a6, &err) == 0))
		golden("addr-add-v6", &m);
}

KC_TEST(refuses_bad_names)
{
	struct kc_nlmsg m;
	struct kc_error err = {0};
	KC_CHECK(kc_nl_link_bridge(&m, 1, "abcdefghijklmnop", false, 0, &err) < 0);
	KC_CHECK(kc_nl_link_vlan(&m, 1, "", 2, 100, &err) < 0);
	KC_CHECK(kc_nl_link_vlan(&m, 1, "x", 2, 4095, &err) < 0);
}

KC_TEST_MAIN()
