/* SPDX-License-Identifier: Apache-2.0 */
/* netdecl.c - parse and check host network declarations (netdecl.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "json_util.h"
#include "netdecl.h"

/* Interface names reach ovs-vsctl argv and netlink attributes: only
 * [a-z0-9-], a letter first, at most IFNAMSIZ - 1 bytes. */
static int ifname_check(const char *s, const char *what, struct kc_error *err)
{
	size_t len = s ? strlen(s) : 0;
	bool ok = len >= 1 && len <= KC_NETDECL_IFNAME_MAX && s[0] >= 'a' && s[0] <= 'z';
	for (size_t i = 1; ok && i < len; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
	if (!ok)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s must be an interface name of 1..%d characters from "
				    "[a-z0-9-], starting with a letter",
				    what, KC_NETDECL_IFNAME_MAX);
	return 0;
}

int kc_netdecl_ifname_check(const char *name, const char *what, struct kc_error *err)
{
	return ifname_check(name, what, err);
}

int kc_net_addr_parse(const char *s, struct kc_net_addr *ret, struct kc_error *err)
{
	char buf[64];
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || (size_t)(slash - s) >= sizeof(buf) || !slash[1] || strlen(slash + 1) > 3)
		return kc_error_set(err, KC_ERR_INVALID, "address \"%.64s\" must be ADDR/PREFIX",
				    s ? s : "");
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	struct kc_net_addr a = {0};
	if (inet_pton(AF_INET, buf, a.bytes) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, a.bytes) == 1)
		a.family = AF_INET6;
	else
		return kc_error_set(err, KC_ERR_INVALID, "address \"%.64s\" is not an IP address",
				    s);
	char *end = NULL;
	unsigned long p = strtoul(slash + 1, &end, 10);
	unsigned max = a.family == AF_INET ? 32 : 128;
	if (*end || slash[1] < '0' || slash[1] > '9' || p < 1 || p > max)
		return kc_error_set(err, KC_ERR_INVALID, "address \"%.64s\": prefix must be 1..%u",
				    s, max);
	a.prefix = (unsigned)p;
	char txt[INET6_ADDRSTRLEN];
	inet_ntop(a.family, a.bytes, txt, sizeof(txt));
	snprintf(a.text, sizeof(a.text), "%s/%u", txt, a.prefix);
	*ret = a;
	return 0;
}

const char *kc_net_backend_name(enum kc_net_backend_kind b)
{
	return b == KC_NETB_OVS ? "ovs" : "linux";
}

const char *kc_bond_mode_name(enum kc_bond_mode m)
{
	return m == KC_BOND_ACTIVE_BACKUP ? "active-backup"
	       : m == KC_BOND_8023AD	  ? "802.3ad"
					  : "none";
}

const char *kc_netdecl_uplink(const struct kc_netdecl *d)
{
	return d->bond[0] ? d->bond : d->nics[0];
}

int kc_netdecl_subif_name(const struct kc_netdecl *d, unsigned vlan,
			  char buf[KC_NETDECL_IFNAME_MAX + 1], struct kc_error *err)
{
	int n = snprintf(buf, KC_NETDECL_IFNAME_MAX + 1, "%s.%u", kc_netdecl_uplink(d), vlan);
	if (n < 0 || n > KC_NETDECL_IFNAME_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "sub-interface name \"%s.%u\" is longer than %d characters",
				    kc_netdecl_uplink(d), vlan, KC_NETDECL_IFNAME_MAX);
	return 0;
}

/* Each interface name of the declaration is unique across its roles. */
static int name_unique(const struct kc_netdecl *d, const char *name, struct kc_error *err)
{
	size_t uses = 0;
	for (size_t i = 0; i < d->n_nics; i++)
		uses += strcmp(d->nics[i], name) == 0;
	for (size_t i = 0; i < d->n_bridges; i++)
		uses += strcmp(d->bridges[i].name, name) == 0;
	uses += strcmp(d->bond, name) == 0;
	uses += strcmp(d->switch_name, name) == 0;
	if (uses > 1)
		return kc_error_set(err, KC_ERR_INVALID, "interface name \"%s\" is used twice",
				    name);
	return 0;
}

static int string_array(const json_t *arr, const char *what, size_t max, struct kc_error *err)
{
	if (!json_is_array(arr))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must be an array", what);
	if (json_array_size(arr) > max)
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" has more than %zu entries", what,
				    max);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (!json_is_string(v)) return kc_error_set(
		err, KC_ERR_INVALID, "\"%s\" must hold strings", what);
	return 0;
}

static int parse_bond(const json_t *b, struct kc_netdecl *d, struct kc_error *err)
{
	static const char *const keys[] = {"name", "mode", "members", NULL};
	const char *name = NULL, *mode = NULL;
	if (!json_is_object(b))
		return kc_error_set(err, KC_ERR_INVALID, "\"bond\" must be an object");
	if (kc_json_check_keys(b, keys, "bond", err) < 0 ||
	    kc_json_get_string(b, "name", true, 64, &name, err) < 0 ||
	    kc_json_get_string(b, "mode", true, 32, &mode, err) < 0 ||
	    ifname_check(name, "bond \"name\"", err) < 0)
		return -1;
	if (strcmp(mode, "active-backup") == 0)
		d->bond_mode = KC_BOND_ACTIVE_BACKUP;
	else if (strcmp(mode, "802.3ad") == 0)
		d->bond_mode = KC_BOND_8023AD;
	else
		return kc_error_set(err, KC_ERR_INVALID,
				    "bond \"mode\" must be active-backup or 802.3ad");
	snprintf(d->bond, sizeof(d->bond), "%s", name);
	/* The members are the NICs: a NIC outside the bond would be a second
	 * uplink, which the declaration does not model. */
	const json_t *m = json_object_get(b, "members");
	if (string_array(m, "bond members", KC_NETDECL_MAX_NICS, err) < 0)
		return -1;
	if (json_array_size(m) != d->n_nics)
		return kc_error_set(err, KC_ERR_INVALID,
				    "bond \"members\" must list every NIC of \"nics\"");
	size_t i;
	json_t *v;
	json_array_foreach(m, i, v)
	{
		bool found = false;
		for (size_t k = 0; k < d->n_nics; k++)
			found |= strcmp(d->nics[k], json_string_value(v)) == 0;
		if (!found)
			return kc_error_set(err, KC_ERR_INVALID,
					    "bond member \"%.16s\" is not one of \"nics\"",
					    json_string_value(v));
	}
	if (d->n_nics < 2)
		return kc_error_set(err, KC_ERR_INVALID, "a bond needs at least 2 NICs");
	return 0;
}

static int parse_bridge(const json_t *b, size_t idx, struct kc_netdecl *d, struct kc_error *err)
{
	static const char *const keys[] = {"name", "vlan", "addresses", NULL};
	struct kc_net_bridge *br = &d->bridges[idx];
	const char *name = NULL;
	uint64_t vlan = 0;
	char what[48];
	snprintf(what, sizeof(what), "bridges[%zu]", idx);
	if (!json_is_object(b))
		return kc_error_set(err, KC_ERR_INVALID, "%s must be an object", what);
	if (kc_json_check_keys(b, keys, what, err) < 0 ||
	    kc_json_get_string(b, "name", true, 64, &name, err) < 0 ||
	    ifname_check(name, "bridge \"name\"", err) < 0 ||
	    kc_json_get_uint(b, "vlan", true, 1, 4094, &vlan, err) < 0)
		return -1;
	snprintf(br->name, sizeof(br->name), "%s", name);
	br->vlan = (unsigned)vlan;
	const json_t *addrs = json_object_get(b, "addresses");
	if (!addrs)
		return 0;
	if (string_array(addrs, "addresses", KC_NETDECL_MAX_ADDRS, err) < 0)
		return -1;
	size_t i;
	json_t *v;
	json_array_foreach(addrs, i, v)
	{
		if (kc_net_addr_parse(json_string_value(v), &br->addrs[i], err) < 0)
			return -1;
		for (size_t k = 0; k < i; k++)
			if (strcmp(br->addrs[k].text, br->addrs[i].text) == 0)
				return kc_error_set(err, KC_ERR_INVALID,
						    "bridge \"%s\" lists address %s twice", name,
						    br->addrs[i].text);
	}
	br->n_addrs = json_array_size(addrs);
	return 0;
}

int kc_netdecl_from_json(const json_t *j, struct kc_netdecl *ret, struct kc_error *err)
{
	static const char *const keys[] = {"backend",	     "nics",	"bond",	    "switch", "mtu",
					   "vlan_filtering", "bridges", "datapath", NULL};
	const char *backend = NULL, *sw = "cloudbr", *dp = NULL;
	uint64_t mtu = 0;
	struct kc_netdecl *d = calloc(1, sizeof(*d));
	if (!d)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int rc = -1;
	if (!json_is_object(j)) {
		kc_error_set(err, KC_ERR_INVALID, "a host network declaration must be an object");
		goto out;
	}
	if (kc_json_check_keys(j, keys, "host network declaration", err) < 0 ||
	    kc_json_get_string(j, "backend", true, 16, &backend, err) < 0 ||
	    kc_json_get_string(j, "switch", false, 64, &sw, err) < 0 ||
	    ifname_check(sw, "\"switch\"", err) < 0 ||
	    kc_json_get_uint(j, "mtu", false, KC_NETDECL_MTU_MIN, KC_NETDECL_MTU_MAX, &mtu, err) <
		    0 ||
	    kc_json_get_bool(j, "vlan_filtering", false, &d->vlan_filtering, err) < 0 ||
	    kc_json_get_string(j, "datapath", false, 16, &dp, err) < 0)
		goto out;
	if (strcmp(backend, "linux") == 0) {
		d->backend = KC_NETB_LINUX;
	} else if (strcmp(backend, "ovs") == 0) {
		d->backend = KC_NETB_OVS;
	} else {
		kc_error_set(err, KC_ERR_INVALID, "\"backend\" must be linux or ovs");
		goto out;
	}
	if (d->vlan_filtering && d->backend != KC_NETB_LINUX) {
		kc_error_set(err, KC_ERR_INVALID, "\"vlan_filtering\" is for the linux backend");
		goto out;
	}
	if (dp && (d->backend != KC_NETB_OVS ||
		   (strcmp(dp, "netdev") != 0 && strcmp(dp, "system") != 0))) {
		kc_error_set(err, KC_ERR_INVALID,
			     "\"datapath\" is netdev or system, for the ovs backend only");
		goto out;
	}
	d->ovs_netdev = dp && strcmp(dp, "netdev") == 0;
	snprintf(d->switch_name, sizeof(d->switch_name), "%s", sw);
	d->mtu = (unsigned)mtu;

	const json_t *nics = json_object_get(j, "nics");
	if (!nics) {
		kc_error_set(err, KC_ERR_INVALID, "\"nics\" is required");
		goto out;
	}
	if (string_array(nics, "nics", KC_NETDECL_MAX_NICS, err) < 0)
		goto out;
	if (json_array_size(nics) == 0) {
		kc_error_set(err, KC_ERR_INVALID, "\"nics\" must name at least one NIC");
		goto out;
	}
	size_t i;
	json_t *v;
	json_array_foreach(nics, i, v)
	{
		if (ifname_check(json_string_value(v), "a NIC name", err) < 0)
			goto out;
		snprintf(d->nics[i], sizeof(d->nics[i]), "%s", json_string_value(v));
	}
	d->n_nics = json_array_size(nics);
	const json_t *bond = json_object_get(j, "bond");
	if (bond && parse_bond(bond, d, err) < 0)
		goto out;
	if (!bond && d->n_nics > 1) {
		kc_error_set(err, KC_ERR_INVALID, "several NICs need a \"bond\"");
		goto out;
	}

	const json_t *brs = json_object_get(j, "bridges");
	if (!json_is_array(brs) || json_array_size(brs) == 0) {
		kc_error_set(err, KC_ERR_INVALID, "\"bridges\" must be a non-empty array");
		goto out;
	}
	if (json_array_size(brs) > KC_NETDECL_MAX_BR) {
		kc_error_set(err, KC_ERR_INVALID, "\"bridges\" has more than %d entries",
			     KC_NETDECL_MAX_BR);
		goto out;
	}
	json_array_foreach(brs, i, v)
	{
		if (parse_bridge(v, i, d, err) < 0)
			goto out;
		for (size_t k = 0; k < i; k++)
			if (d->bridges[k].vlan == d->bridges[i].vlan) {
				kc_error_set(err, KC_ERR_INVALID, "VLAN %u is declared twice",
					     d->bridges[i].vlan);
				goto out;
			}
		d->n_bridges = i + 1;
	}
	/* Every name once, whatever its role. */
	for (i = 0; i < d->n_nics; i++)
		if (name_unique(d, d->nics[i], err) < 0)
			goto out;
	for (i = 0; i < d->n_bridges; i++)
		if (name_unique(d, d->bridges[i].name, err) < 0)
			goto out;
	if ((d->bond[0] && name_unique(d, d->bond, err) < 0) ||
	    name_unique(d, d->switch_name, err) < 0)
		goto out;
	if (d->backend == KC_NETB_LINUX && !d->vlan_filtering) {
		char sub[KC_NETDECL_IFNAME_MAX + 1];
		for (i = 0; i < d->n_bridges; i++)
			if (kc_netdecl_subif_name(d, d->bridges[i].vlan, sub, err) < 0)
				goto out;
	}
	*ret = *d;
	rc = 0;
out:
	free(d);
	return rc;
}

json_t *kc_netdecl_to_json(const struct kc_netdecl *d)
{
	json_t *j = json_pack("{s:s,s:[],s:s,s:[]}", "backend", kc_net_backend_name(d->backend),
			      "nics", "switch", d->switch_name, "bridges");
	if (!j)
		return NULL;
	json_t *nics = json_object_get(j, "nics");
	for (size_t i = 0; i < d->n_nics; i++)
		json_array_append_new(nics, json_string(d->nics[i]));
	if (d->bond[0])
		json_object_set_new(j, "bond",
				    json_pack("{s:s,s:s,s:O}", "name", d->bond, "mode",
					      kc_bond_mode_name(d->bond_mode), "members", nics));
	if (d->mtu)
		json_object_set_new(j, "mtu", json_integer(d->mtu));
	if (d->vlan_filtering)
		json_object_set_new(j, "vlan_filtering", json_true());
	if (d->backend == KC_NETB_OVS)
		json_object_set_new(j, "datapath",
				    json_string(d->ovs_netdev ? "netdev" : "system"));
	json_t *brs = json_object_get(j, "bridges");
	for (size_t i = 0; i < d->n_bridges; i++) {
		const struct kc_net_bridge *b = &d->bridges[i];
		json_t *o = json_pack("{s:s,s:i}", "name", b->name, "vlan", (int)b->vlan);
		if (b->n_addrs) {
			json_t *a = json_array();
			for (size_t k = 0; k < b->n_addrs; k++)
				json_array_append_new(a, json_string(b->addrs[k].text));
			json_object_set_new(o, "addresses", a);
		}
		json_array_append_new(brs, o);
	}
	return j;
}
