/* SPDX-License-Identifier: Apache-2.0 */
/* net_check.c - what differs between a host network declaration and the
 * state a backend read (net_backend.h). */
#include <stdio.h>
#include <string.h>

#include "json_util.h"
#include "net_backend.h"

static void add(json_t *out, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(json_t *out, const char *name, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(out, json_pack("{s:s,s:s}", "name", name, "problem", buf));
}

static bool has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (json_is_string(v) &&
					  strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

static bool has_int(const json_t *arr, json_int_t x)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (json_integer_value(v) == x) return true;
	return false;
}

static void diff_bridge(const struct kc_netdecl *d, const struct kc_net_bridge *b, const json_t *a,
			json_t *out)
{
	if (!json_is_true(json_object_get(a, "exists"))) {
		add(out, b->name, "missing bridge (declared on VLAN %u)", b->vlan);
		return;
	}
	json_t *vl = json_object_get(a, "vlan");
	if (!json_is_integer(vl) || json_integer_value(vl) == 0)
		add(out, b->name, "on no VLAN, declared VLAN %u", b->vlan);
	else if (json_integer_value(vl) != b->vlan)
		add(out, b->name, "wrong VLAN %d, declared %u", (int)json_integer_value(vl),
		    b->vlan);
	const char *parent = json_string_value(json_object_get(a, "parent"));
	if (d->backend == KC_NETB_OVS && (!parent || strcmp(parent, d->switch_name) != 0))
		add(out, b->name, "on switch %s, declared %s", parent ? parent : "(none)",
		    d->switch_name);
	if (!json_is_true(json_object_get(a, "up")))
		add(out, b->name, "down");
	json_t *addrs = json_object_get(a, "addresses");
	for (size_t k = 0; k < b->n_addrs; k++)
		if (!has_string(addrs, b->addrs[k].text))
			add(out, b->name, "missing address %s", b->addrs[k].text);
	size_t i;
	json_t *v;
	json_array_foreach(addrs, i, v)
	{
		bool declared = false;
		for (size_t k = 0; k < b->n_addrs; k++)
			declared |= strcmp(b->addrs[k].text, json_string_value(v)) == 0;
		if (!declared)
			add(out, b->name, "address %s is not declared", json_string_value(v));
	}
}

json_t *kc_net_diff(const struct kc_netdecl *d, const json_t *actual)
{
	json_t *out = json_array();
	if (!out)
		return NULL;
	const json_t *sw = json_object_get(actual, "switch");
	const json_t *ul = json_object_get(actual, "uplink");
	const char *ul_name = kc_netdecl_uplink(d);
	bool uses_switch = d->backend == KC_NETB_OVS || d->vlan_filtering;
	if (uses_switch && !json_is_true(json_object_get(sw, "exists")))
		add(out, d->switch_name, "missing switch");
	if (!json_is_true(json_object_get(ul, "exists")))
		add(out, ul_name, "missing uplink");
	else if (uses_switch && !json_is_true(json_object_get(ul, "on_switch")))
		add(out, ul_name, "uplink is not a port of %s", d->switch_name);
	else if (d->backend == KC_NETB_OVS) {
		const json_t *tr = json_object_get(ul, "trunks");
		for (size_t i = 0; i < d->n_bridges; i++)
			if (!has_int(tr, d->bridges[i].vlan))
				add(out, ul_name, "trunk does not carry VLAN %u",
				    d->bridges[i].vlan);
		size_t i;
		json_t *v;
		json_array_foreach(tr, i, v)
		{
			bool declared = false;
			for (size_t k = 0; k < d->n_bridges; k++)
				declared |= d->bridges[k].vlan == json_integer_value(v);
			if (!declared)
				add(out, ul_name, "trunk carries undeclared VLAN %d",
				    (int)json_integer_value(v));
		}
	}
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(actual, "subifs"), i, s)
	{
		if (!json_is_true(json_object_get(s, "exists")))
			add(out, json_string_value(json_object_get(s, "name")),
			    "missing 802.1Q sub-interface");
	}
	const json_t *brs = json_object_get(actual, "bridges");
	for (size_t k = 0; k < d->n_bridges; k++)
		diff_bridge(d, &d->bridges[k], json_array_get(brs, k), out);
	return out;
}
