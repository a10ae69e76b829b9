/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_ovs.c - the Open vSwitch backend (net_backend.h): the switch is an
 * OVS bridge, the uplink (NIC or OVS bond) a trunk port on it with
 * trunks=<every declared VLAN>, and each declared bridge a fake bridge
 * `add-br NAME SWITCH VLAN` whose internal port carries its addresses.
 * ovs-vsctl runs with --timeout=10 and one transaction per change, argv
 * only (names were validated by netdecl.c).
 */
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "net_backend.h"
#include "nlmsg.h"

#define MAX_ARGS 512

struct argv_buf {
	char *v[MAX_ARGS];
	char *owned[MAX_ARGS];
	size_t n, n_owned;
	bool overflow;
};

static void arg(struct argv_buf *a, const char *s)
{
	if (a->n + 1 >= MAX_ARGS) {
		a->overflow = true;
		return;
	}
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

/* An argument built here (key=value), freed with the buffer. */
static void argf(struct argv_buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argf(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0 || a->n_owned == MAX_ARGS) {
		free(s);
		a->overflow = true;
		return;
	}
	a->owned[a->n_owned++] = s;
	arg(a, s);
}

static void argv_free(struct argv_buf *a)
{
	for (size_t i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
}

static void vsctl_start(struct argv_buf *a)
{
	memset(a, 0, sizeof(*a));
	arg(a, KC_OVS_VSCTL_BIN);
	arg(a, "--timeout=10");
}

static int vsctl_run(struct argv_buf *a, char **ret_out, struct kc_error *err)
{
	if (a->overflow)
		return kc_error_set(err, KC_ERR_INTERNAL, "ovs-vsctl command too long");
	return kc_net_run(a->v, ret_out, err);
}

/* One read-only ovs-vsctl command: its output without the newline. */
static int vsctl1(const char *c1, const char *c2, const char *c3, char **ret, struct kc_error *err)
{
	struct argv_buf a;
	vsctl_start(&a);
	arg(&a, c1);
	if (c2)
		arg(&a, c2);
	if (c3)
		arg(&a, c3);
	int r = vsctl_run(&a, ret, err);
	argv_free(&a);
	if (r == 0 && *ret)
		(*ret)[strcspn(*ret, "\n")] = '\0';
	return r;
}

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = nl ? nl + 1 : p + len;
	}
	return false;
}

static json_t *iface_state(const char *name, struct kc_error *err)
{
	bool exists, up;
	json_t *addrs = NULL;
	if (kc_net_iface_read(name, &exists, &up, &addrs, err) < 0)
		return NULL;
	return json_pack("{s:b,s:o}", "up", up, "addresses", addrs);
}

static int ovs_read(const struct kc_netdecl *d, json_t **ret, struct kc_error *err)
{
	_cleanup_free_ char *brs = NULL;
	struct argv_buf a;
	vsctl_start(&a);
	arg(&a, "list-br");
	int r = vsctl_run(&a, &brs, err);
	argv_free(&a);
	if (r < 0)
		return -1;
	bool sw = in_list(brs, d->switch_name);
	const char *up_name = kc_netdecl_uplink(d);
	_cleanup_json_ json_t *st =
		json_pack("{s:s,s:{s:s,s:b},s:{s:s,s:b,s:b,s:[]},s:[]}", "backend", "ovs", "switch",
			  "name", d->switch_name, "exists", sw, "uplink", "name", up_name, "exists",
			  if_nametoindex(up_name) != 0 || d->bond[0], "on_switch", false, "trunks",
			  "bridges");
	if (!st)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_t *uplink = json_object_get(st, "uplink");
	if (sw) {
		_cleanup_free_ char *ports = NULL;
		vsctl_start(&a);
		arg(&a, "list-ports");
		arg(&a, d->switch_name);
		r = vsctl_run(&a, &ports, err);
		argv_free(&a);
		if (r < 0)
			return -1;
		if (in_list(ports, up_name)) {
			_cleanup_free_ char *tr = NULL;
			json_error_t je;
			json_object_set_new(uplink, "on_switch", json_true());
			vsctl_start(&a);
			arg(&a, "get");
			arg(&a, "Port");
			arg(&a, up_name);
			arg(&a, "trunks");
			r = vsctl_run(&a, &tr, err);
			argv_free(&a);
			if (r < 0)
				return -1;
			json_t *t = json_loads(tr, JSON_DECODE_ANY, &je);
			if (json_is_array(t))
				json_object_set_new(uplink, "trunks", t);
			else
				json_decref(t);
		}
	}
	json_t *bridges = json_object_get(st, "bridges");
	for (size_t i = 0; i < d->n_bridges; i++) {
		const char *name = d->bridges[i].name;
		json_t *b = iface_state(name, err);
		if (!b)
			return -1;
		json_object_set_new(b, "name", json_string(name));
		json_array_append_new(bridges, b);
		bool exists = in_list(brs, name);
		json_object_set_new(b, "exists", json_boolean(exists));
		if (!exists)
			continue;
		_cleanup_free_ char *parent = NULL, *vlan = NULL;
		if (vsctl1("br-to-parent", name, NULL, &parent, err) < 0 ||
		    vsctl1("br-to-vlan", name, NULL, &vlan, err) < 0)
			return -1;
		json_object_set_new(b, "parent", json_string(parent));
		json_object_set_new(b, "vlan", json_integer(atoi(vlan)));
	}
	*ret = steal_ptr(&st);
	return 0;
}

static void trunks_arg(struct argv_buf *a, const char *port, const json_t *vlans)
{
	char buf[8 * KC_NETDECL_MAX_BR * 2 + 16] = "";
	size_t o = 0, i;
	json_t *v;
	json_array_foreach(vlans, i, v) o += (size_t)snprintf(
		buf + o, sizeof(buf) - o, "%s%d", o ? "," : "", (int)json_integer_value(v));
	arg(a, "--");
	if (o == 0) {
		arg(a, "clear");
		arg(a, "Port");
		arg(a, port);
		arg(a, "trunks");
		return;
	}
	arg(a, "set");
	arg(a, "Port");
	arg(a, port);
	argf(a, "trunks=%s", buf);
}

static int set_up(const char *name, struct kc_error *err)
{
	int idx = (int)if_nametoindex(name);
	struct kc_nlmsg m;
	char what[64];
	snprintf(what, sizeof(what), "set %s up", name);
	if (idx == 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "interface %s does not exist", name);
	if (kc_nl_link_updown(&m, 1, idx, true, err) < 0)
		return -1;
	return kc_netlink_send(&m, what, err);
}

static int ovs_apply(const struct kc_netdecl *d, struct kc_error *err)
{
	_cleanup_json_ json_t *now = NULL;
	if (ovs_read(d, &now, err) < 0)
		return -1;
	const char *up_name = kc_netdecl_uplink(d);
	for (size_t i = 0; i < d->n_nics; i++)
		if (if_nametoindex(d->nics[i]) == 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "NIC %s does not exist on this host", d->nics[i]);
	struct argv_buf a;
	vsctl_start(&a);
	arg(&a, "--");
	arg(&a, "--may-exist");
	arg(&a, "add-br");
	arg(&a, d->switch_name);
	arg(&a, "--");
	arg(&a, "set");
	arg(&a, "Bridge");
	arg(&a, d->switch_name);
	arg(&a, d->ovs_netdev ? "datapath_type=netdev" : "datapath_type=system");
	arg(&a, "--");
	arg(&a, "--may-exist");
	if (d->bond[0]) {
		arg(&a, "add-bond");
		arg(&a, d->switch_name);
		arg(&a, d->bond);
		for (size_t i = 0; i < d->n_nics; i++)
			arg(&a, d->nics[i]);
		arg(&a, d->bond_mode == KC_BOND_8023AD ? "bond_mode=balance-tcp"
						       : "bond_mode=active-backup");
		if (d->bond_mode == KC_BOND_8023AD)
			arg(&a, "lacp=active");
	} else {
		arg(&a, "add-port");
		arg(&a, d->switch_name);
		arg(&a, up_name);
	}
	_cleanup_json_ json_t *vlans = json_array();
	for (size_t i = 0; i < d->n_bridges; i++)
		json_array_append_new(vlans, json_integer(d->bridges[i].vlan));
	trunks_arg(&a, up_name, vlans);
	json_t *cur = json_object_get(now, "bridges");
	for (size_t i = 0; i < d->n_bridges; i++) {
		const struct kc_net_bridge *b = &d->bridges[i];
		json_t *c = json_array_get(cur, i);
		const char *parent = json_string_value(json_object_get(c, "parent"));
		/* --may-exist refuses a bridge that exists with another parent
		 * or VLAN: such a one is made again. */
		if (json_is_true(json_object_get(c, "exists")) &&
		    (!parent || strcmp(parent, d->switch_name) != 0 ||
		     json_integer_value(json_object_get(c, "vlan")) != b->vlan)) {
			arg(&a, "--");
			arg(&a, "--if-exists");
			arg(&a, "del-br");
			arg(&a, b->name);
		}
		arg(&a, "--");
		arg(&a, "--may-exist");
		arg(&a, "add-br");
		arg(&a, b->name);
		arg(&a, d->switch_name);
		argf(&a, "%u", b->vlan);
	}
	if (d->mtu)
		for (size_t i = 0; i < d->n_nics; i++) {
			arg(&a, "--");
			arg(&a, "set");
			arg(&a, "Interface");
			arg(&a, d->nics[i]);
			argf(&a, "mtu_request=%u", d->mtu);
		}
	int r = vsctl_run(&a, NULL, err);
	argv_free(&a);
	if (r < 0)
		return -1;
	for (size_t i = 0; i < d->n_nics; i++)
		if (set_up(d->nics[i], err) < 0)
			return -1;
	for (size_t i = 0; i < d->n_bridges; i++) {
		const struct kc_net_bridge *b = &d->bridges[i];
		_cleanup_json_ json_t *want = json_array();
		for (size_t k = 0; k < b->n_addrs; k++)
			json_array_append_new(want, json_string(b->addrs[k].text));
		if (kc_net_iface_set(b->name, want, err) < 0)
			return -1;
	}
	return 0;
}

/* A declaration that names exactly what `state` describes, so that the
 * state can be read again now (to see what changed since). */
static int state_names(const json_t *st, struct kc_netdecl *d, struct kc_error *err)
{
	memset(d, 0, sizeof(*d));
	d->backend = KC_NETB_OVS;
	const char *sw = json_string_value(json_object_get(json_object_get(st, "switch"), "name"));
	const char *up = json_string_value(json_object_get(json_object_get(st, "uplink"), "name"));
	json_t *brs = json_object_get(st, "bridges");
	if (!sw || !up || !json_is_array(brs) || json_array_size(brs) > KC_NETDECL_MAX_BR)
		return kc_error_set(err, KC_ERR_INVALID, "not an ovs network state");
	/* The state came back from a file: its names reach ovs-vsctl argv. */
	if (kc_netdecl_ifname_check(sw, "snapshot switch", err) < 0 ||
	    kc_netdecl_ifname_check(up, "snapshot uplink", err) < 0)
		return -1;
	snprintf(d->switch_name, sizeof(d->switch_name), "%s", sw);
	snprintf(d->nics[0], sizeof(d->nics[0]), "%s", up);
	d->n_nics = 1;
	size_t i;
	json_t *b;
	json_array_foreach(brs, i, b)
	{
		const char *n = json_string_value(json_object_get(b, "name"));
		if (kc_netdecl_ifname_check(n, "snapshot bridge", err) < 0)
			return -1;
		snprintf(d->bridges[i].name, sizeof(d->bridges[i].name), "%s", n);
		d->bridges[i].vlan = 1;
	}
	d->n_bridges = json_array_size(brs);
	return 0;
}

static int ovs_restore(const json_t *st, struct kc_error *err)
{
	struct kc_netdecl *d = calloc(1, sizeof(*d));
	if (!d)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_free_ struct kc_netdecl *dp = d;
	_cleanup_json_ json_t *now = NULL;
	if (state_names(st, d, err) < 0 || ovs_read(d, &now, err) < 0)
		return -1;
	json_t *sw = json_object_get(st, "switch"), *up = json_object_get(st, "uplink");
	struct argv_buf a;
	vsctl_start(&a);
	size_t base = a.n;
	json_t *was = json_object_get(st, "bridges");
	json_t *cur = json_object_get(now, "bridges");
	for (size_t i = 0; i < d->n_bridges; i++) {
		json_t *w = json_array_get(was, i), *c = json_array_get(cur, i);
		const char *name = d->bridges[i].name;
		bool we = json_is_true(json_object_get(w, "exists"));
		bool ce = json_is_true(json_object_get(c, "exists"));
		const char *wp = json_string_value(json_object_get(w, "parent"));
		const char *cp = json_string_value(json_object_get(c, "parent"));
		json_int_t wv = json_integer_value(json_object_get(w, "vlan"));
		json_int_t cv = json_integer_value(json_object_get(c, "vlan"));
		bool same = we == ce && (!we || (wp && cp && strcmp(wp, cp) == 0 && wv == cv));
		if (same)
			continue;
		if (ce) {
			arg(&a, "--");
			arg(&a, "--if-exists");
			arg(&a, "del-br");
			arg(&a, name);
		}
		/* Only fake bridges are made again; a real bridge of that name
		 * that went away is not ours to rebuild. */
		if (we && wp && strcmp(wp, name) != 0 && wv > 0 && wv < 4095 &&
		    kc_netdecl_ifname_check(wp, "snapshot parent", err) == 0) {
			arg(&a, "--");
			arg(&a, "--may-exist");
			arg(&a, "add-br");
			arg(&a, name);
			arg(&a, wp);
			argf(&a, "%d", (int)wv);
		}
	}
	const char *up_name = d->nics[0];
	if (json_is_true(json_object_get(sw, "exists"))) {
		if (!json_is_true(json_object_get(up, "on_switch"))) {
			arg(&a, "--");
			arg(&a, "--if-exists");
			arg(&a, "del-port");
			arg(&a, d->switch_name);
			arg(&a, up_name);
		} else {
			trunks_arg(&a, up_name, json_object_get(up, "trunks"));
		}
	} else {
		/* It did not exist: everything on it goes with it. */
		arg(&a, "--");
		arg(&a, "--if-exists");
		arg(&a, "del-br");
		arg(&a, d->switch_name);
	}
	int r = a.n > base ? vsctl_run(&a, NULL, err) : 0;
	argv_free(&a);
	if (r < 0)
		return -1;
	json_t *w;
	size_t i;
	json_array_foreach(was, i, w)
	{
		const char *name = json_string_value(json_object_get(w, "name"));
		if (!json_is_true(json_object_get(w, "exists")) || if_nametoindex(name) == 0)
			continue;
		if (kc_net_iface_set(name, json_object_get(w, "addresses"), err) < 0)
			return -1;
	}
	return 0;
}

const struct kc_net_backend kc_net_backend_ovs = {
	.name = "ovs",
	.read = ovs_read,
	.apply = ovs_apply,
	.restore = ovs_restore,
};
