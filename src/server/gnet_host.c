/* SPDX-License-Identifier: Apache-2.0 */
#include "gnet_host.h"

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "db_networks.h"
#include "gnet.h"
#include "hostlink.h"
#include "json_util.h"

int kc_gnet_def_json(struct kc_server *srv, const char *name, json_t **ret, struct kc_error *err)
{
	struct kc_gnet g;
	if (kc_db_network_def(srv->db, name, &g, err) < 0)
		return -1;
	*ret = kc_gnet_to_json(&g);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* The VXLAN endpoints of the network's hosts. */
static json_t *peer_list(const json_t *hosts)
{
	json_t *peers = json_array();
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		const char *ip = json_string_value(json_object_get(h, "local_ip"));
		if (ip)
			json_array_append_new(peers, json_string(ip));
	}
	return peers;
}

/* kvmcloud's DHCP server of a vlan/vxlan network on `host`, once ipam.c
 * gave it an address there: "dhcp": {server_ip, hosts: this host's VMs}. */
static int add_dhcp(struct kc_server *srv, const struct kc_gnet *g, const char *host, json_t *args,
		    struct kc_error *err)
{
	char sip[16];
	json_t *dh = NULL;
	if (!g->has_cidr || (g->kind != KC_GNET_VLAN && g->kind != KC_GNET_VXLAN))
		return 0;
	if (kc_db_network_dhcp_ip(srv->db, g->name, host, sip, err) < 0)
		return -1;
	if (!sip[0])
		return 0;
	if (kc_db_network_dhcp_hosts(srv->db, g->name, host, &dh, err) < 0)
		return -1;
	json_t *d = json_pack("{s:s,s:o}", "server_ip", sip, "hosts", dh);
	if (!d || json_object_set_new(args, "dhcp", d) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

static int ensure_one(struct kc_server *srv, const char *host, const char *name,
		      struct kc_error *err)
{
	_cleanup_json_ json_t *def = NULL, *args = NULL, *res = NULL, *hosts = NULL;
	struct kc_gnet g;

	if (kc_db_network_def(srv->db, name, &g, err) < 0 || !(def = kc_gnet_to_json(&g)))
		return -1;
	args = json_pack("{s:O}", "network", def);
	if (!args)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (g.kind == KC_GNET_NAT || g.kind == KC_GNET_ISOLATED) {
		json_t *dh = NULL;
		if (kc_db_network_dhcp_hosts(srv->db, name, host, &dh, err) < 0)
			return -1;
		json_object_set_new(args, "dhcp_hosts", dh);
	} else if (g.kind == KC_GNET_VXLAN) {
		if (kc_db_network_hosts(srv->db, name, &hosts, err) < 0)
			return -1;
		json_object_set_new(args, "peers", peer_list(hosts));
	}
	if (add_dhcp(srv, &g, host, args, err) < 0)
		return -1;
	if (kc_host_call(srv, host, "net.ensure", args, &res, err) < 0)
		return -1;
	const char *local = json_string_value(json_object_get(res, "local_ip"));
	if (kc_db_network_host_set(srv->db, name, host, local, err) < 0)
		return -1;
	if (g.kind != KC_GNET_VXLAN)
		return 0;

	/* The others learn of this host (and this one's list includes
	 * everyone known before it). */
	json_decref(hosts);
	hosts = NULL;
	if (kc_db_network_hosts(srv->db, name, &hosts, err) < 0)
		return -1;
	json_object_set_new(args, "peers", peer_list(hosts));
	/* This host's DHCP server and hosts are not the others' business:
	 * without "dhcp" their agents leave their own servers as they are. */
	json_object_del(args, "dhcp");
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		const char *other = json_string_value(json_object_get(h, "host"));
		_cleanup_json_ json_t *r = NULL;
		struct kc_error e = {0};
		if (!other || !strcmp(other, host))
			continue;
		if (kc_host_call(srv, other, "net.ensure", args, &r, &e) < 0)
			fprintf(stderr, "warning: network \"%s\": peer update on host \"%s\": %s\n",
				name, other, e.message);
	}
	return 0;
}

int kc_gnet_ensure_on_host(struct kc_server *srv, const char *host, const json_t *networks,
			   struct kc_error *err)
{
	size_t i;
	json_t *n;
	json_array_foreach(networks, i, n)
	{
		if (ensure_one(srv, host, json_string_value(n), err) < 0) {
			char msg[sizeof(err->message)];
			enum kc_errcode code = err->code ? err->code : KC_ERR_HYPERVISOR;
			snprintf(msg, sizeof(msg), "%s", err->message);
			kc_error_clear(err);
			return kc_error_set(err, code, "network \"%s\" on host \"%s\": %s",
					    json_string_value(n), host, msg);
		}
	}
	return 0;
}

int kc_gnet_ensure_for_vm(struct kc_server *srv, const char *host, const char *vm,
			  struct kc_error *err)
{
	_cleanup_json_ json_t *nics = NULL, *names = json_array();
	size_t i;
	json_t *nic;

	if (!names)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_db_vm_nics(srv->db, vm, &nics, err) < 0)
		return -1;
	json_array_foreach(nics, i, nic)
	{
		json_t *n = json_object_get(nic, "network");
		size_t k;
		json_t *v;
		bool seen = false;
		json_array_foreach(names, k, v) seen |= json_equal(v, n);
		if (!seen)
			json_array_append(names, n);
	}
	return kc_gnet_ensure_on_host(srv, host, names, err);
}

void kc_gnet_release_vm(struct kc_server *srv, const char *host, const char *vm)
{
	_cleanup_json_ json_t *nics = NULL;
	size_t i;
	json_t *nic;

	if (!host || kc_db_vm_nics(srv->db, vm, &nics, NULL) < 0)
		return;
	json_array_foreach(nics, i, nic)
	{
		const char *net = json_string_value(json_object_get(nic, "network"));
		const char *ip = json_string_value(json_object_get(nic, "ip"));
		_cleanup_json_ json_t *def = NULL, *r = NULL;
		struct kc_gnet g;
		struct kc_error e = {0};
		if (!net || !ip || kc_db_network_def(srv->db, net, &g, NULL) < 0 ||
		    g.kind == KC_GNET_BRIDGED || !(def = kc_gnet_to_json(&g)))
			continue;
		_cleanup_json_ json_t *args =
			json_pack("{s:O,s:s,s:O,s:s}", "network", def, "op", "remove", "mac",
				  json_object_get(nic, "mac"), "ip", ip);
		if (args && kc_host_call(srv, host, "net.dhcp_host", args, &r, &e) < 0)
			fprintf(stderr, "warning: VM \"%s\": DHCP entry on network \"%s\": %s\n",
				vm, net, e.message);
	}
}
