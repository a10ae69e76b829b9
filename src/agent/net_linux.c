/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_linux.c - the Linux bridge backend (net_backend.h), through
 * rtnetlink messages from nlmsg.c.  Two recipes:
 *   - sub-interfaces (CloudStack's): per declared bridge B on VLAN V, a
 *     bridge B and an 802.1Q sub-interface <uplink>.V enslaved to it;
 *   - vlan_filtering: one VLAN-filtering bridge (the "switch") with the
 *     uplink a tagged member of every VLAN, the VLAN on the bridge itself
 *     ("self"), and each declared B an 802.1Q interface of the switch.
 * A bond is made first (mode active-backup or 802.3ad), its members set
 * down, enslaved, set up.
 *
 * NOT RUN on the project's test kernel: it has no CONFIG_VLAN_8021Q,
 * CONFIG_BONDING or bridge VLAN filtering, and refuses those messages with
 * EOPNOTSUPP, which the apply reports as unsupported_on_this_kernel (the
 * rollback then removes what was made before the refusal).  The bytes are
 * unit-tested against golden files (tests/unit/test_nlmsg.c).
 */
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "net_backend.h"
#include "nlmsg.h"

static const json_t *find_link(const json_t *links, const char *name)
{
	size_t i;
	json_t *l;
	json_array_foreach(links, i, l)
	{
		const char *n = json_string_value(json_object_get(l, "ifname"));
		if (n && strcmp(n, name) == 0)
			return l;
	}
	return NULL;
}

static int read_links(json_t **ret, struct kc_error *err)
{
	char *argv[] = {KC_IP_BIN, "-j", "-d", "link", "show", NULL};
	_cleanup_free_ char *out = NULL;
	if (kc_net_run(argv, &out, err) < 0)
		return -1;
	json_error_t je;
	*ret = json_loads(out, 0, &je);
	if (!json_is_array(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return kc_error_set(err, KC_ERR_INTERNAL, "ip -j -d link: unexpected output");
	}
	return 0;
}

static int vlan_of(const json_t *link)
{
	const json_t *li = json_object_get(link, "linkinfo");
	const char *kind = json_string_value(json_object_get(li, "info_kind"));
	if (!kind || strcmp(kind, "vlan") != 0)
		return 0;
	return (int)json_integer_value(json_object_get(json_object_get(li, "info_data"), "id"));
}

static int linux_read(const struct kc_netdecl *d, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *links = NULL;
	if (read_links(&links, err) < 0)
		return -1;
	const char *up_name = kc_netdecl_uplink(d);
	const json_t *sw = d->vlan_filtering ? find_link(links, d->switch_name) : NULL;
	const json_t *ul = find_link(links, up_name);
	const char *ul_master = json_string_value(json_object_get(ul, "master"));
	_cleanup_json_ json_t *st = json_pack(
		"{s:s,s:b,s:{s:s,s:b},s:{s:s,s:b,s:b,s:[]},s:[],s:[]}", "backend", "linux",
		"vlan_filtering", d->vlan_filtering, "switch", "name", d->switch_name, "exists",
		sw != NULL, "uplink", "name", up_name, "exists", ul != NULL, "on_switch",
		d->vlan_filtering && ul_master && strcmp(ul_master, d->switch_name) == 0, "trunks",
		"bridges", "subifs");
	if (!st)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (d->bond[0])
		json_object_set_new(st, "bond",
				    json_pack("{s:s,s:b}", "name", d->bond, "exists", ul != NULL));
	json_t *brs = json_object_get(st, "bridges"), *subs = json_object_get(st, "subifs");
	for (size_t i = 0; i < d->n_bridges; i++) {
		const struct kc_net_bridge *b = &d->bridges[i];
		const json_t *l = find_link(links, b->name);
		bool exists, up;
		json_t *addrs = NULL;
		if (kc_net_iface_read(b->name, &exists, &up, &addrs, err) < 0)
			return -1;
		json_t *o = json_pack("{s:s,s:b,s:b,s:o}", "name", b->name, "exists", l != NULL,
				      "up", up, "addresses", addrs);
		json_array_append_new(brs, o);
		if (!l)
			continue;
		if (d->vlan_filtering) {
			if (vlan_of(l))
				json_object_set_new(o, "vlan", json_integer(vlan_of(l)));
			continue;
		}
		/* The VLAN of a bridge is the one of its 802.1Q member. */
		size_t k;
		json_t *m;
		json_array_foreach(links, k, m)
		{
			const char *master = json_string_value(json_object_get(m, "master"));
			if (master && strcmp(master, b->name) == 0 && vlan_of(m))
				json_object_set_new(o, "vlan", json_integer(vlan_of(m)));
		}
		json_object_set_new(o, "parent", json_string(b->name));
	}
	if (!d->vlan_filtering)
		for (size_t i = 0; i < d->n_bridges; i++) {
			char sub[KC_NETDECL_IFNAME_MAX + 1];
			if (kc_netdecl_subif_name(d, d->bridges[i].vlan, sub, err) < 0)
				return -1;
			json_array_append_new(subs, json_pack("{s:s,s:b}", "name", sub, "exists",
							      find_link(links, sub) != NULL));
		}
	*ret = steal_ptr(&st);
	return 0;
}

/* Sends m; errors read "<verb> <name>: ...". */
static int nl_send(struct kc_nlmsg *m, const char *verb, const char *name, struct kc_error *err)
{
	char what[96];
	snprintf(what, sizeof(what), "%s %s", verb, name);
	return kc_netlink_send(m, what, err);
}

static int index_of(const char *name, struct kc_error *err)
{
	int idx = (int)if_nametoindex(name);
	if (idx == 0)
		kc_error_set(err, KC_ERR_INTERNAL, "interface %s does not exist", name);
	return idx;
}

static int up(const char *name, bool on, struct kc_error *err)
{
	struct kc_nlmsg m;
	int idx = index_of(name, err);
	if (idx == 0 || kc_nl_link_updown(&m, 1, idx, on, err) < 0)
		return -1;
	return nl_send(&m, on ? "set up" : "set down", name, err);
}

static int master(const char *name, const char *to, struct kc_error *err)
{
	struct kc_nlmsg m;
	int idx = index_of(name, err), midx = index_of(to, err);
	if (idx == 0 || midx == 0 || kc_nl_link_master(&m, 1, idx, midx, err) < 0)
		return -1;
	return nl_send(&m, "enslave", name, err);
}

static int make_bond(const struct kc_netdecl *d, struct kc_error *err)
{
	struct kc_nlmsg m;
	if (!if_nametoindex(d->bond) &&
	    (kc_nl_link_bond(&m, 1, d->bond, d->bond_mode, 100, err) < 0 ||
	     nl_send(&m, "create bond", d->bond, err) < 0))
		return -1;
	for (size_t i = 0; i < d->n_nics; i++)
		if (up(d->nics[i], false, err) < 0 || master(d->nics[i], d->bond, err) < 0 ||
		    up(d->nics[i], true, err) < 0)
			return -1;
	return 0;
}

static int addresses(const struct kc_net_bridge *b, struct kc_error *err)
{
	_cleanup_json_ json_t *want = json_array();
	for (size_t k = 0; k < b->n_addrs; k++)
		json_array_append_new(want, json_string(b->addrs[k].text));
	return kc_net_iface_set(b->name, want, err);
}

static int linux_apply(const struct kc_netdecl *d, struct kc_error *err)
{
	struct kc_nlmsg m;
	const char *ul = kc_netdecl_uplink(d);
	for (size_t i = 0; i < d->n_nics; i++)
		if (!if_nametoindex(d->nics[i]))
			return kc_error_set(err, KC_ERR_INVALID,
					    "NIC %s does not exist on this host", d->nics[i]);
	if (d->bond[0] && make_bond(d, err) < 0)
		return -1;
	if (up(ul, true, err) < 0)
		return -1;
	if (d->vlan_filtering) {
		if (!if_nametoindex(d->switch_name) &&
		    (kc_nl_link_bridge(&m, 1, d->switch_name, true, d->mtu, err) < 0 ||
		     nl_send(&m, "create VLAN-filtering bridge", d->switch_name, err) < 0))
			return -1;
		int sw = index_of(d->switch_name, err), port = index_of(ul, err);
		if (!sw || !port || master(ul, d->switch_name, err) < 0 ||
		    up(d->switch_name, true, err) < 0)
			return -1;
		for (size_t i = 0; i < d->n_bridges; i++) {
			const struct kc_net_bridge *b = &d->bridges[i];
			if (kc_nl_bridge_vlan(&m, 1, true, port, b->vlan, false, false, err) < 0 ||
			    nl_send(&m, "VLAN on trunk", ul, err) < 0 ||
			    kc_nl_bridge_vlan(&m, 2, true, sw, b->vlan, false, true, err) < 0 ||
			    nl_send(&m, "VLAN on bridge", d->switch_name, err) < 0)
				return -1;
			if (!if_nametoindex(b->name) &&
			    (kc_nl_link_vlan(&m, 3, b->name, sw, b->vlan, err) < 0 ||
			     nl_send(&m, "create VLAN interface", b->name, err) < 0))
				return -1;
			if (addresses(b, err) < 0)
				return -1;
		}
		return 0;
	}
	int port = index_of(ul, err);
	if (!port)
		return -1;
	for (size_t i = 0; i < d->n_bridges; i++) {
		const struct kc_net_bridge *b = &d->bridges[i];
		char sub[KC_NETDECL_IFNAME_MAX + 1];
		if (kc_netdecl_subif_name(d, b->vlan, sub, err) < 0)
			return -1;
		if (!if_nametoindex(b->name) &&
		    (kc_nl_link_bridge(&m, 1, b->name, false, d->mtu, err) < 0 ||
		     nl_send(&m, "create bridge", b->name, err) < 0))
			return -1;
		if (!if_nametoindex(sub) &&
		    (kc_nl_link_vlan(&m, 2, sub, port, b->vlan, err) < 0 ||
		     nl_send(&m, "create 802.1Q sub-interface", sub, err) < 0))
			return -1;
		if (master(sub, b->name, err) < 0 || up(sub, true, err) < 0 ||
		    addresses(b, err) < 0)
			return -1;
	}
	return 0;
}

/* A name from the marker file: a declared name, or a sub-interface
 * "<name>.<vlan>" of one, fitting IFNAMSIZ. */
static int name_from_state(const char *name, struct kc_error *err)
{
	char base[KC_NETDECL_IFNAME_MAX + 1];
	const char *dot = name ? strrchr(name, '.') : NULL;
	if (!dot)
		return kc_netdecl_ifname_check(name, "snapshot interface", err);
	size_t n = (size_t)(dot - name), digits = strspn(dot + 1, "0123456789");
	if (n >= sizeof(base) || strlen(name) > KC_NETDECL_IFNAME_MAX || digits == 0 ||
	    digits > 4 || dot[1 + digits] != '\0')
		return kc_error_set(err, KC_ERR_INVALID,
				    "snapshot interface \"%.20s\" is not valid", name);
	memcpy(base, name, n);
	base[n] = '\0';
	return kc_netdecl_ifname_check(base, "snapshot interface", err);
}

static int del_link(const char *name, struct kc_error *err)
{
	struct kc_nlmsg m;
	if (name_from_state(name, err) < 0)
		return -1;
	int idx = (int)if_nametoindex(name);
	if (idx == 0)
		return 0;
	if (kc_nl_link_del(&m, 1, idx, err) < 0)
		return -1;
	return nl_send(&m, "delete", name, err);
}

static int linux_restore(const json_t *st, struct kc_error *err)
{
	size_t i;
	json_t *o;
	int rc = 0;
	/* What did not exist goes (sub-interfaces before their bridges);
	 * what existed gets its addresses back.  Every step is tried. */
	json_array_foreach(json_object_get(st, "subifs"), i, o)
	{
		const char *n = json_string_value(json_object_get(o, "name"));
		if (n && !json_is_true(json_object_get(o, "exists")) && del_link(n, err) < 0)
			rc = -1;
	}
	json_array_foreach(json_object_get(st, "bridges"), i, o)
	{
		const char *n = json_string_value(json_object_get(o, "name"));
		if (name_from_state(n, err) < 0) {
			rc = -1;
			continue;
		}
		if (!json_is_true(json_object_get(o, "exists"))) {
			if (del_link(n, err) < 0)
				rc = -1;
		} else if (if_nametoindex(n) &&
			   kc_net_iface_set(n, json_object_get(o, "addresses"), err) < 0) {
			rc = -1;
		}
	}
	const json_t *sw = json_object_get(st, "switch");
	if (json_is_true(json_object_get(st, "vlan_filtering")) &&
	    !json_is_true(json_object_get(sw, "exists")) &&
	    del_link(json_string_value(json_object_get(sw, "name")), err) < 0)
		rc = -1;
	const json_t *bond = json_object_get(st, "bond");
	if (bond && !json_is_true(json_object_get(bond, "exists")) &&
	    del_link(json_string_value(json_object_get(bond, "name")), err) < 0)
		rc = -1;
	return rc;
}

const struct kc_net_backend kc_net_backend_linux = {
	.name = "linux",
	.read = linux_read,
	.apply = linux_apply,
	.restore = linux_restore,
};

const struct kc_net_backend *kc_net_backend_of(enum kc_net_backend_kind kind)
{
	return kind == KC_NETB_OVS ? &kc_net_backend_ovs : &kc_net_backend_linux;
}

const struct kc_net_backend *kc_net_backend_by_name(const char *name)
{
	if (name && strcmp(name, "ovs") == 0)
		return &kc_net_backend_ovs;
	if (name && strcmp(name, "linux") == 0)
		return &kc_net_backend_linux;
	return NULL;
}
