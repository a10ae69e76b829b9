/* SPDX-License-Identifier: Apache-2.0 */
/* sg_push.c - security group rulesets from the database to the hosts (sg_push.h). */
#include "sg_push.h"

#include <string.h>

#include "cleanup.h"
#include "db_networks.h"
#include "db_secgroups.h"
#include "hostlink.h"
#include "json_util.h"
#include "secgroup.h"
#include "server.h"

int kc_sg_vm_nics(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL, *out = json_array();
	size_t i;
	json_t *row;

	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_vm_nics(db, vm, &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, row)
	{
		const char *mac = json_string_value(json_object_get(row, "mac"));
		const char *ip = json_string_value(json_object_get(row, "ip"));
		const char *net = json_string_value(json_object_get(row, "network"));
		struct kc_gnet g;
		if (!mac || !net)
			continue;
		if (kc_db_network_def(db, net, &g, err) < 0)
			return -1;
		bool ovs = g.backend == KC_GNET_OVS || g.kind == KC_GNET_VLAN;
		json_t *nic = json_pack("{s:s,s:[],s:b,s:s}", "mac", mac, "ips", "ovs", ovs,
					"network", net);
		if (!nic || json_array_append_new(out, nic) < 0 ||
		    (ip && json_array_append_new(json_object_get(nic, "ips"), json_string(ip)) < 0))
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	*ret = steal_ptr(&out);
	return 0;
}

int kc_sg_vm_check_nics(struct kc_db *db, const char *vm, const char *state, struct kc_error *err)
{
	_cleanup_json_ json_t *nics = NULL, *groups = NULL;
	size_t i;
	json_t *nic;

	if (state && strcmp(state, "shutoff") == 0)
		return 0;
	if (kc_sg_vm_nics(db, vm, &nics, err) < 0 || kc_db_vm_sg_list(db, vm, &groups, err) < 0)
		return -1;
	if (json_array_size(groups) > 0)
		return 0; /* set while it was stopped: on the hybrid plug already */
	json_array_foreach(nics, i, nic)
	{
		if (json_is_true(json_object_get(nic, "ovs")))
			return kc_error_set(
				err, KC_ERR_CONFLICT,
				"VM %s: NIC %s is on Open vSwitch network %s and the VM is %s; "
				"its first security group changes how the NIC is plugged, "
				"which needs the VM stopped: stop it, set the groups, start it",
				vm, json_string_value(json_object_get(nic, "mac")),
				json_string_value(json_object_get(nic, "network")),
				state ? state : "not stopped");
	}
	return 0;
}

/* The addresses of every VM in group `sg`, as host CIDRs. */
static int member_addresses(struct kc_db *db, const char *sg, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *vms = NULL, *out = json_array();
	size_t i, k;
	json_t *vm, *nic, *ip;

	if (!out || kc_db_sg_members(db, sg, &vms, err) < 0)
		return -1;
	json_array_foreach(vms, i, vm)
	{
		_cleanup_json_ json_t *nics = NULL;
		if (kc_sg_vm_nics(db, json_string_value(vm), &nics, err) < 0)
			return -1;
		json_array_foreach(nics, k, nic)
		{
			size_t m;
			json_array_foreach(json_object_get(nic, "ips"), m, ip)
				json_array_append(out, ip);
		}
	}
	*ret = steal_ptr(&out);
	return 0;
}

/* A VM's rules for the agent: remote groups become one rule per member
 * address (none when the group is empty: such a rule matches nothing). */
static int vm_rules(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL, *out = json_array();
	size_t i, k;
	json_t *row, *ip;

	if (!out || kc_db_vm_sg_rules(db, vm, &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, row)
	{
		struct kc_sg_rule r;
		if (kc_db_sg_rule_from_row(row, &r, err) < 0)
			return -1;
		if (!r.remote_group[0]) {
			if (json_array_append_new(out, kc_sg_rule_to_json(&r)) < 0)
				return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
			continue;
		}
		_cleanup_json_ json_t *ips = NULL;
		if (member_addresses(db, r.remote_group, &ips, err) < 0)
			return -1;
		json_array_foreach(ips, k, ip)
		{
			struct kc_sg_rule e = r;
			e.remote_group[0] = '\0';
			if (kc_sg_cidr_parse(json_string_value(ip), "member address", &e.cidr,
					     err) < 0)
				return -1;
			e.has_cidr = true;
			if (json_array_size(out) >= KC_SG_VM_RULES_MAX)
				return kc_error_set(
					err, KC_ERR_INVALID,
					"VM %s: more than %d rules once remote groups are "
					"expanded",
					vm, KC_SG_VM_RULES_MAX);
			if (json_array_append_new(out, kc_sg_rule_to_json(&e)) < 0)
				return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
	}
	*ret = steal_ptr(&out);
	return 0;
}

int kc_sg_build_host(struct kc_db *db, const char *host, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *names = NULL, *vms = json_array();
	size_t i, k;
	json_t *name, *nic;

	if (!vms || kc_db_sg_host_vms(db, host, &names, err) < 0)
		return -1;
	json_array_foreach(names, i, name)
	{
		const char *vm = json_string_value(name);
		_cleanup_json_ json_t *nics = NULL, *rules = NULL, *out_nics = json_array();
		if (!out_nics || kc_sg_vm_nics(db, vm, &nics, err) < 0 ||
		    vm_rules(db, vm, &rules, err) < 0)
			return -1;
		json_array_foreach(nics, k, nic)
		{
			/* OVS NICs too: the agent moves them to the hybrid plug. */
			json_array_append_new(
				out_nics, json_pack("{s:O,s:O}", "mac", json_object_get(nic, "mac"),
						    "ips", json_object_get(nic, "ips")));
		}
		json_t *o =
			json_pack("{s:s,s:O,s:O}", "name", vm, "nics", out_nics, "rules", rules);
		if (!o || json_array_append_new(vms, o) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	*ret = json_pack("{s:O}", "vms", vms);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

json_t *kc_sg_push_hosts(struct kc_server *srv, const json_t *hosts)
{
	json_t *out = json_array();
	size_t i;
	json_t *h;

	json_array_foreach(hosts, i, h)
	{
		const char *host = json_string_value(h);
		_cleanup_json_ json_t *args = NULL, *res = NULL;
		struct kc_error err = {0};
		if (!host)
			continue;
		int rc = kc_sg_build_host(srv->db, host, &args, &err);
		if (rc == 0)
			rc = kc_host_call(srv, host, "sg.apply", args, &res, &err);
		json_t *o = rc == 0 ? json_pack("{s:s,s:b}", "host", host, "applied", 1)
				    : json_pack("{s:s,s:b,s:s}", "host", host, "applied", 0,
						"error", err.message);
		if (o)
			json_array_append_new(out, o);
	}
	return out;
}
