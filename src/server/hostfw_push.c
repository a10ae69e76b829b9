/* SPDX-License-Identifier: Apache-2.0 */
#include "hostfw_push.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "db_hosts.h"
#include "db_inventory.h"
#include "hostlink.h"
#include "json_util.h"
#include "server.h"
#include "sg_push.h"

bool kc_hostfw_link_address(const char *peer, char out[46])
{
	char buf[64];
	unsigned char bin[16];
	size_t len = peer ? strlen(peer) : 0;

	if (len == 0 || len >= sizeof(buf))
		return false;
	if (peer[0] == '[' && peer[len - 1] == ']') {
		memcpy(buf, peer + 1, len - 2);
		buf[len - 2] = '\0';
	} else {
		memcpy(buf, peer, len + 1);
	}
	if (inet_pton(AF_INET, buf, bin) == 1)
		return inet_ntop(AF_INET, bin, out, 46) != NULL;
	if (inet_pton(AF_INET6, buf, bin) != 1)
		return false;
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(bin, mapped, sizeof(mapped)) == 0)
		return inet_ntop(AF_INET, bin + 12, out, 46) != NULL;
	return inet_ntop(AF_INET6, bin, out, 46) != NULL;
}

/* Sends `host` the addresses of every other host in `rows`. */
static void push_one(struct kc_server *srv, const json_t *rows, const char *host)
{
	_cleanup_json_ json_t *peers = json_array(), *res = NULL, *args = NULL;
	size_t i;
	json_t *o;
	struct kc_error e = {0};

	json_array_foreach(rows, i, o)
	{
		const char *name = json_string_value(json_object_get(o, "name"));
		if (peers && name && strcmp(name, host) != 0)
			json_array_append(peers, json_object_get(o, "address"));
	}
	args = peers ? json_pack("{s:O}", "peers", peers) : NULL;
	if (!args || kc_host_call(srv, host, "host.firewall.peers", args, &res, &e) < 0)
		fprintf(stderr, "host firewall peers: host %s: %s\n", host,
			e.message[0] ? e.message : "out of memory");
}

void kc_hostfw_push_peers(struct kc_server *srv, const char *only)
{
	_cleanup_json_ json_t *rows = NULL;
	struct kc_error e = {0};
	size_t i;
	json_t *r;

	if (kc_db_host_addresses(srv->db, &rows, &e) < 0) {
		fprintf(stderr, "host firewall peers: %s\n", e.message);
		return;
	}
	if (only) {
		if (kc_host_reachable(srv, only))
			push_one(srv, rows, only);
		return;
	}
	json_array_foreach(rows, i, r)
	{
		const char *host = json_string_value(json_object_get(r, "name"));
		if (host && kc_host_reachable(srv, host))
			push_one(srv, rows, host);
	}
}

void kc_net_after_hello(struct kc_server *srv, const char *host, const char *address)
{
	_cleanup_json_ json_t *row = NULL, *hosts = NULL, *res = NULL;
	struct kc_error e = {0};
	bool moved = false;

	/* A host at a new address changes every other host's list; one that
	 * is back where it was only needs its own (a fleet reconnecting after
	 * a server restart must not cost every host a call per host). */
	if (address && kc_db_host_get(srv->db, host, &row, &e) == 0) {
		const char *old = json_string_value(json_object_get(row, "address"));
		moved = !old || strcmp(old, address) != 0;
		if (moved && kc_db_host_set_address(srv->db, host, address, &e) < 0) {
			fprintf(stderr, "host %s: address %s not recorded: %s\n", host, address,
				e.message);
			moved = false;
		}
	}
	kc_hostfw_push_peers(srv, moved ? NULL : host);
	hosts = json_pack("[s]", host);
	res = hosts ? kc_sg_push_hosts(srv, hosts) : NULL;
	json_t *h = json_array_get(res, 0);
	if (h && !json_is_true(json_object_get(h, "applied")))
		fprintf(stderr, "security groups: host %s: after its hello: %s\n", host,
			json_string_value(json_object_get(h, "error")));
}
