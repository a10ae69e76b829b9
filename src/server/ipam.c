/* SPDX-License-Identifier: Apache-2.0 */
#include "ipam.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "db_networks.h"
#include "gnet.h"
#include "json_util.h"

#define MAC_TRIES 16

bool kc_ipam_needed(const struct kc_vm_request *req)
{
	for (size_t i = 0; i < req->n_nics; i++)
		if (req->nics[i].network[0])
			return true;
	return false;
}

void kc_ipam_clear(struct kc_ipam *ip)
{
	json_decref(ip->nic_defs);
	json_decref(ip->networks);
	ip->nic_defs = NULL;
	ip->networks = NULL;
}

static int mac_taken(struct kc_db *tx, const char *mac, bool *ret, struct kc_error *err)
{
	int64_t n = 0;
	if (kc_db_query_int(tx, "SELECT COUNT(*) FROM addresses WHERE LOWER(mac) = LOWER($1)",
			    KC_DB_PARAMS(KC_DB_TEXT(mac)), &n, err) < 0)
		return -1;
	*ret = n > 0;
	return 0;
}

static int pick_mac(struct kc_db *tx, const struct kc_nic_request *n, char mac[18],
		    struct kc_error *err)
{
	bool taken;
	if (n->mac[0]) {
		if (mac_taken(tx, n->mac, &taken, err) < 0)
			return -1;
		if (taken)
			return kc_error_set(err, KC_ERR_CONFLICT, "MAC address %s is in use",
					    n->mac);
		snprintf(mac, 18, "%s", n->mac);
		return 0;
	}
	for (int i = 0; i < MAC_TRIES; i++) {
		unsigned char b[3];
		randombytes_buf(b, sizeof(b));
		snprintf(mac, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
		if (mac_taken(tx, mac, &taken, err) < 0)
			return -1;
		if (!taken)
			return 0;
	}
	return kc_error_set(err, KC_ERR_NO_CAPACITY, "no free MAC address found");
}

/* The lowest free address of the pool (the highest with from_top); used
 * addresses (NICs' and DHCP servers') come from the database, marked in
 * a bitmap of the pool (at most 2^16 bits). */
static int pick_ip(struct kc_db *tx, const struct kc_gnet *g, const struct kc_nic_request *n,
		   bool from_top, char ip[16], struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	uint32_t want = 0;

	if (n->ip[0]) {
		if (kc_ipv4_parse(n->ip, "the NIC's \"ip\"", &want, err) < 0)
			return -1;
		if (!kc_gnet_ip_assignable(g, want))
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s is not in network \"%s\"'s pool", n->ip, g->name);
	}
	if (kc_db_query(tx,
			"SELECT ip FROM addresses WHERE network = $1 AND ip IS NOT NULL "
			"UNION ALL SELECT dhcp_ip FROM network_hosts WHERE network = $1 AND "
			"dhcp_ip IS NOT NULL",
			KC_DB_PARAMS(KC_DB_TEXT(g->name)), &rows, err) < 0)
		return -1;
	size_t size = (size_t)(g->dhcp_end - g->dhcp_start) + 1;
	_cleanup_free_ unsigned char *used = calloc(size / 8 + 1, 1);
	if (!used)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		uint32_t a;
		if (kc_ipv4_parse(json_string_value(json_object_get(r, "ip")), "address", &a,
				  NULL) == 0 &&
		    a >= g->dhcp_start && a <= g->dhcp_end)
			used[(a - g->dhcp_start) / 8] |= 1u << ((a - g->dhcp_start) % 8);
	}
	if (want) {
		size_t k = want - g->dhcp_start;
		if (used[k / 8] & (1u << (k % 8)))
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "address %s of network \"%s\" is in use", n->ip,
					    g->name);
		kc_ipv4_format(want, ip);
		return 0;
	}
	for (size_t j = 0; j < size; j++) {
		size_t k = from_top ? size - 1 - j : j;
		uint32_t a = g->dhcp_start + (uint32_t)k;
		if (!(used[k / 8] & (1u << (k % 8))) && kc_gnet_ip_assignable(g, a)) {
			kc_ipv4_format(a, ip);
			return 0;
		}
	}
	return kc_error_set(err, KC_ERR_NO_CAPACITY, "network \"%s\" has no free address", g->name);
}

/* kvmcloud's DHCP server of a vlan or vxlan network on `host` gets an
 * address of the pool once, with the first VM there that needs it: the
 * highest free one, so that it stays clear of the NICs' (lowest first). */
static int dhcp_server_tx(struct kc_db *tx, const struct kc_gnet *g, const char *host,
			  const char *now, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	const struct kc_nic_request none = {0};
	char addr[16];

	if (!host || !g->has_cidr || (g->kind != KC_GNET_VLAN && g->kind != KC_GNET_VXLAN))
		return 0;
	if (kc_db_query(tx,
			"SELECT dhcp_ip FROM network_hosts WHERE network = $1 AND host = $2 AND "
			"dhcp_ip IS NOT NULL",
			KC_DB_PARAMS(KC_DB_TEXT(g->name), KC_DB_TEXT(host)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) > 0)
		return 0;
	if (pick_ip(tx, g, &none, true, addr, err) < 0) {
		if (err->code == KC_ERR_NO_CAPACITY)
			snprintf(err->message, sizeof(err->message),
				 "network \"%s\" has no free address for its DHCP server on host "
				 "\"%s\" (one per host)",
				 g->name, host);
		return -1;
	}
	return kc_db_exec(tx,
			  "INSERT INTO network_hosts (network, host, dhcp_ip, updated_at) "
			  "VALUES ($1, $2, $3, $4) ON CONFLICT (network, host) DO UPDATE SET "
			  "dhcp_ip = $3, updated_at = $4",
			  KC_DB_PARAMS(KC_DB_TEXT(g->name), KC_DB_TEXT(host), KC_DB_TEXT(addr),
				       KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_ipam_allocate_tx(struct kc_db *tx, const char *host, void *opaque, struct kc_error *err)
{
	struct kc_ipam *ip = opaque;
	const struct kc_vm_request *req = ip->req;
	char now[21];

	kc_ipam_clear(ip); /* a retried transaction allocates again */
	ip->nic_defs = json_array();
	ip->networks = json_array();
	if (!ip->nic_defs || !ip->networks)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	kc_db_now(now);
	for (size_t i = 0; i < req->n_nics; i++) {
		const struct kc_nic_request *n = &req->nics[i];
		struct kc_gnet g;
		char mac[18], addr[16] = "";
		struct kc_error e = {0};

		if (!n->network[0]) {
			json_array_append_new(ip->nic_defs, json_null());
			continue;
		}
		if (kc_db_network_def(tx, n->network, &g, &e) < 0) {
			if (e.code == KC_ERR_NOT_FOUND)
				e.code = KC_ERR_INVALID;
			*err = e;
			return -1;
		}
		if (n->ip[0] && !g.has_cidr)
			return kc_error_set(err, KC_ERR_INVALID,
					    "network \"%s\" has no address range: give no \"ip\"",
					    g.name);
		if (pick_mac(tx, n, mac, err) < 0 ||
		    (g.has_cidr && pick_ip(tx, &g, n, false, addr, err) < 0))
			return -1;
		if (kc_db_exec(tx,
			       "INSERT INTO addresses (network, ip, mac, vm, nic, created_at) "
			       "VALUES ($1, $2, $3, $4, $5, $6)",
			       KC_DB_PARAMS(KC_DB_TEXT(g.name), KC_DB_TEXT(addr[0] ? addr : NULL),
					    KC_DB_TEXT(mac), KC_DB_TEXT(req->name),
					    KC_DB_INT((int64_t)i), KC_DB_TEXT(now)),
			       NULL, err) < 0)
			return -1;
		json_t *d = json_pack("{s:o,s:s}", "network", kc_gnet_to_json(&g), "mac", mac);
		if (d && addr[0])
			json_object_set_new(d, "ip", json_string(addr));
		if (!d || json_array_append_new(ip->nic_defs, d) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		bool seen = false;
		size_t k;
		json_t *v;
		json_array_foreach(ip->networks, k, v) seen |=
			!strcmp(json_string_value(v), g.name);
		if (!seen) {
			json_array_append_new(ip->networks, json_string(g.name));
			if (dhcp_server_tx(tx, &g, host, now, err) < 0)
				return -1;
		}
	}
	return 0;
}
