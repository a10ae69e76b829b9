/* SPDX-License-Identifier: Apache-2.0 */
/* nlmsg.c - the rtnetlink message builder (nlmsg.h). */
#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "nlmsg.h"

#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)

static void *put(struct kc_nlmsg *m, size_t len)
{
	if (m->overflow || ALIGN4(m->len) + ALIGN4(len) > sizeof(m->buf)) {
		m->overflow = true;
		return NULL;
	}
	m->len = ALIGN4(m->len);
	void *p = m->buf + m->len;
	memset(p, 0, ALIGN4(len));
	m->len += ALIGN4(len);
	return p;
}

static void start(struct kc_nlmsg *m, uint16_t type, uint16_t flags, uint32_t seq)
{
	memset(m, 0, sizeof(*m));
	struct nlmsghdr *h = put(m, sizeof(*h));
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	h->nlmsg_seq = seq;
}

static void ifinfo(struct kc_nlmsg *m, uint8_t family, int ifindex, unsigned flags, unsigned change)
{
	struct ifinfomsg *i = put(m, sizeof(*i));
	if (!i)
		return;
	i->ifi_family = family;
	i->ifi_index = ifindex;
	i->ifi_flags = flags;
	i->ifi_change = change;
}

static void attr(struct kc_nlmsg *m, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = put(m, RTA_LENGTH(len));
	if (!a)
		return;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
}

static void attr_u8(struct kc_nlmsg *m, uint16_t type, uint8_t v)
{
	attr(m, type, &v, 1);
}
static void attr_u16(struct kc_nlmsg *m, uint16_t type, uint16_t v)
{
	attr(m, type, &v, 2);
}
static void attr_u32(struct kc_nlmsg *m, uint16_t type, uint32_t v)
{
	attr(m, type, &v, 4);
}
static void attr_str(struct kc_nlmsg *m, uint16_t type, const char *s)
{
	attr(m, type, s, strlen(s) + 1);
}

static void nest_begin(struct kc_nlmsg *m, uint16_t type)
{
	if (m->depth == KC_NLMSG_MAX_DEPTH) {
		m->overflow = true;
		return;
	}
	m->len = ALIGN4(m->len);
	m->nest[m->depth++] = m->len;
	attr(m, type, NULL, 0);
}

static void nest_end(struct kc_nlmsg *m)
{
	if (m->overflow || m->depth == 0)
		return;
	struct rtattr *a = (struct rtattr *)(m->buf + m->nest[--m->depth]);
	a->rta_len = (unsigned short)(m->len - m->nest[m->depth]);
}

/* Fixes the header's length; a nest left open or an overflow is a bug. */
static int finish(struct kc_nlmsg *m, struct kc_error *err)
{
	if (m->overflow || m->depth)
		return kc_error_set(err, KC_ERR_INTERNAL, "netlink message too long");
	m->len = ALIGN4(m->len);
	((struct nlmsghdr *)m->buf)->nlmsg_len = (uint32_t)m->len;
	return 0;
}

static int name_ok(const char *name, struct kc_error *err)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return kc_error_set(err, KC_ERR_INVALID, "interface name \"%.32s\" is not valid",
				    name ? name : "");
	return 0;
}

static int index_ok(int ifindex, struct kc_error *err)
{
	if (ifindex <= 0)
		return kc_error_set(err, KC_ERR_INVALID, "interface index %d is not valid",
				    ifindex);
	return 0;
}

static void new_link(struct kc_nlmsg *m, uint32_t seq, const char *name)
{
	start(m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq);
	ifinfo(m, AF_UNSPEC, 0, 0, 0);
	attr_str(m, IFLA_IFNAME, name);
}

int kc_nl_link_bridge(struct kc_nlmsg *m, uint32_t seq, const char *name, bool vlan_filtering,
		      unsigned mtu, struct kc_error *err)
{
	if (name_ok(name, err) < 0)
		return -1;
	new_link(m, seq, name);
	if (mtu)
		attr_u32(m, IFLA_MTU, mtu);
	nest_begin(m, IFLA_LINKINFO);
	attr_str(m, IFLA_INFO_KIND, "bridge");
	if (vlan_filtering) {
		nest_begin(m, IFLA_INFO_DATA);
		attr_u8(m, IFLA_BR_VLAN_FILTERING, 1);
		nest_end(m);
	}
	nest_end(m);
	return finish(m, err);
}

int kc_nl_link_vlan(struct kc_nlmsg *m, uint32_t seq, const char *name, int parent_ifindex,
		    unsigned vid, struct kc_error *err)
{
	if (name_ok(name, err) < 0 || index_ok(parent_ifindex, err) < 0)
		return -1;
	if (vid < 1 || vid > 4094)
		return kc_error_set(err, KC_ERR_INVALID, "VLAN %u is not in 1..4094", vid);
	new_link(m, seq, name);
	attr_u32(m, IFLA_LINK, (uint32_t)parent_ifindex);
	nest_begin(m, IFLA_LINKINFO);
	attr_str(m, IFLA_INFO_KIND, "vlan");
	nest_begin(m, IFLA_INFO_DATA);
	attr_u16(m, IFLA_VLAN_ID, (uint16_t)vid);
	attr_u16(m, IFLA_VLAN_PROTOCOL, htons(ETH_P_8021Q));
	nest_end(m);
	nest_end(m);
	return finish(m, err);
}

int kc_nl_link_bond(struct kc_nlmsg *m, uint32_t seq, const char *name, enum kc_bond_mode mode,
		    unsigned miimon_ms, struct kc_error *err)
{
	if (name_ok(name, err) < 0)
		return -1;
	if (mode != KC_BOND_ACTIVE_BACKUP && mode != KC_BOND_8023AD)
		return kc_error_set(err, KC_ERR_INVALID,
				    "bond mode must be active-backup or 802.3ad");
	new_link(m, seq, name);
	nest_begin(m, IFLA_LINKINFO);
	attr_str(m, IFLA_INFO_KIND, "bond");
	nest_begin(m, IFLA_INFO_DATA);
	/* The kernel's numbers: BOND_MODE_ACTIVEBACKUP 1, BOND_MODE_8023AD 4. */
	attr_u8(m, IFLA_BOND_MODE, mode == KC_BOND_ACTIVE_BACKUP ? 1 : 4);
	attr_u32(m, IFLA_BOND_MIIMON, miimon_ms);
	if (mode == KC_BOND_8023AD) {
		attr_u8(m, IFLA_BOND_AD_LACP_RATE, 1);	   /* fast */
		attr_u8(m, IFLA_BOND_XMIT_HASH_POLICY, 1); /* layer3+4 */
	}
	nest_end(m);
	nest_end(m);
	return finish(m, err);
}

int kc_nl_link_master(struct kc_nlmsg *m, uint32_t seq, int ifindex, int master_ifindex,
		      struct kc_error *err)
{
	if (index_ok(ifindex, err) < 0)
		return -1;
	if (master_ifindex < 0)
		return index_ok(master_ifindex, err);
	start(m, RTM_NEWLINK, 0, seq);
	ifinfo(m, AF_UNSPEC, ifindex, 0, 0);
	attr_u32(m, IFLA_MASTER, (uint32_t)master_ifindex);
	return finish(m, err);
}

int kc_nl_link_updown(struct kc_nlmsg *m, uint32_t seq, int ifindex, bool up, struct kc_error *err)
{
	if (index_ok(ifindex, err) < 0)
		return -1;
	start(m, RTM_NEWLINK, 0, seq);
	ifinfo(m, AF_UNSPEC, ifindex, up ? IFF_UP : 0, IFF_UP);
	return finish(m, err);
}

int kc_nl_link_del(struct kc_nlmsg *m, uint32_t seq, int ifindex, struct kc_error *err)
{
	if (index_ok(ifindex, err) < 0)
		return -1;
	start(m, RTM_DELLINK, 0, seq);
	ifinfo(m, AF_UNSPEC, ifindex, 0, 0);
	return finish(m, err);
}

int kc_nl_addr(struct kc_nlmsg *m, uint32_t seq, bool add, int ifindex, const struct kc_net_addr *a,
	       struct kc_error *err)
{
	if (index_ok(ifindex, err) < 0)
		return -1;
	if (a->family != AF_INET && a->family != AF_INET6)
		return kc_error_set(err, KC_ERR_INVALID, "address family %d", a->family);
	size_t alen = a->family == AF_INET ? 4 : 16;
	start(m, add ? RTM_NEWADDR : RTM_DELADDR, add ? NLM_F_CREATE | NLM_F_REPLACE : 0, seq);
	struct ifaddrmsg *ifa = put(m, sizeof(*ifa));
	if (ifa) {
		ifa->ifa_family = (uint8_t)a->family;
		ifa->ifa_prefixlen = (uint8_t)a->prefix;
		ifa->ifa_scope = RT_SCOPE_UNIVERSE;
		ifa->ifa_index = (uint32_t)ifindex;
	}
	attr(m, IFA_LOCAL, a->bytes, alen);
	attr(m, IFA_ADDRESS, a->bytes, alen);
	return finish(m, err);
}

int kc_nl_bridge_vlan(struct kc_nlmsg *m, uint32_t seq, bool add, int port_ifindex, unsigned vid,
		      bool pvid_untagged, bool self, struct kc_error *err)
{
	if (index_ok(port_ifindex, err) < 0)
		return -1;
	if (vid < 1 || vid > 4094)
		return kc_error_set(err, KC_ERR_INVALID, "VLAN %u is not in 1..4094", vid);
	start(m, add ? RTM_SETLINK : RTM_DELLINK, 0, seq);
	ifinfo(m, AF_BRIDGE, port_ifindex, 0, 0);
	nest_begin(m, IFLA_AF_SPEC);
	if (self)
		attr_u16(m, IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
	struct bridge_vlan_info vi = {
		.flags = pvid_untagged ? BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED : 0,
		.vid = (uint16_t)vid,
	};
	attr(m, IFLA_BRIDGE_VLAN_INFO, &vi, sizeof(vi));
	nest_end(m);
	return finish(m, err);
}

void kc_nlmsg_hex(const struct kc_nlmsg *m, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < m->len && o + 4 < size; i++) {
		o += (size_t)snprintf(buf + o, size - o, "%02x%s", m->buf[i],
				      (i % 16 == 15 || i + 1 == m->len) ? "\n" : " ");
	}
}
