/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_networks.c - guest networks (docs/api.md, "Networks"): admins create
 * and delete them, every user lists them and puts NICs on them; a
 * network's addresses show a user only their own VMs' (authz.c).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "db_networks.h"
#include "gnet.h"
#include "gnet_host.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"

/* {name, kind, ...the definition..., owner, created_at}. */
static json_t *network_view(const json_t *row)
{
	json_t *v = json_deep_copy(json_object_get(row, "def"));
	if (!json_is_object(v)) {
		json_decref(v);
		v = json_object();
	}
	json_object_set(v, "owner", json_object_get(row, "owner"));
	json_object_set(v, "created_at", json_object_get(row, "created_at"));
	return v;
}

int kc_api_networks_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	if (kc_db_network_list(c->srv->db, &rows, err) < 0)
		return -1;
	json_t *out = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) json_array_append_new(out, network_view(r));
	kc_http_json(c->resp, 200, json_pack("{s:o}", "networks", out));
	return 0;
}

int kc_api_network_create(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *body = NULL, *row = NULL;
	struct kc_gnet g;

	if (kc_http_read_json(c->req, true, &body, err) < 0)
		return -1;
	if (!json_is_object(body))
		return kc_error_set(err, KC_ERR_INVALID, "the network must be a JSON object");
	const char *kind = json_string_value(json_object_get(body, "kind"));
	bool numbered = kind && (!strcmp(kind, "nat") || !strcmp(kind, "isolated"));
	if (numbered) {
		/* Their bridge is numbered by the database; a stand-in lets the
		 * definition be checked whole first. */
		if (json_object_get(body, "bridge"))
			return kc_error_set(err, KC_ERR_INVALID,
					    "a %s network's bridge is named by kvmcloud: give "
					    "no \"bridge\"",
					    kind);
		json_object_set_new(body, "bridge",
				    json_string(!strcmp(kind, "nat") ? "kcnat1" : "kciso1"));
	}
	if (kc_gnet_from_json(body, &g, err) < 0)
		return -1;
	if (numbered)
		g.bridge[0] = '\0';
	if (kc_db_network_create(c->srv->db, &g, c->who.user, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 201, network_view(row));
	return 0;
}

int kc_api_network_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	json_t *hosts = NULL;
	if (kc_db_network_get(c->srv->db, c->name, &row, err) < 0 ||
	    kc_db_network_hosts(c->srv->db, c->name, &hosts, err) < 0)
		return -1;
	json_t *v = network_view(row);
	json_object_set_new(v, "hosts", hosts);
	kc_http_json(c->resp, 200, v);
	return 0;
}

int kc_api_network_delete(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *def = NULL, *hosts = NULL;

	if (kc_gnet_def_json(c->srv, c->name, &def, err) < 0 ||
	    kc_db_network_delete(c->srv->db, c->name, &hosts, err) < 0)
		return -1;
	/* The row is gone; what it made on hosts goes now, best effort: a
	 * host not connected keeps an unused bridge, which `net.remove` by
	 * hand (or a re-created network of the same number) settles. */
	_cleanup_json_ json_t *args = json_pack("{s:O}", "network", def);
	json_t *left = json_array();
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		const char *host = json_string_value(json_object_get(h, "host"));
		_cleanup_json_ json_t *r = NULL;
		struct kc_error e = {0};
		if (host && kc_host_call(c->srv, host, "net.remove", args, &r, &e) < 0) {
			fprintf(stderr, "warning: network \"%s\" on host \"%s\": %s\n", c->name,
				host, e.message);
			json_array_append_new(left, json_string(host));
		}
	}
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:o}", "deleted", c->name, "not_removed_on", left));
	return 0;
}

int kc_api_network_addresses(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	json_t *rows = NULL;
	if (kc_db_network_get(c->srv->db, c->name, &row, err) < 0 ||
	    kc_db_network_addresses(c->srv->db, c->name, kc_authz_vm_owner(c), &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s,s:o}", "network", c->name, "addresses", rows));
	return 0;
}
