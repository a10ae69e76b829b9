/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_cluster.c - the inventory routes: adding a host (record + join
 * token), removing one (revocation, live link closed), zones, clusters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "api.h"
#include "cleanup.h"
#include "cluster.h"
#include "hostfw_push.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"
#include "validate.h"

/* An optional name field: absent is NULL, present must be a valid name. */
static int get_name(const json_t *body, const char *key, const char *what, bool required,
		    const char **ret, struct kc_error *err)
{
	*ret = NULL;
	if (kc_json_get_string(body, key, required, 256, ret, err) < 0)
		return -1;
	return *ret ? kc_name_validate(*ret, what, err) : 0;
}

static int zone_exists(struct kc_server *srv, const char *zone, struct kc_error *err)
{
	_cleanup_json_ json_t *zones = NULL;
	size_t i;
	json_t *z;

	if (kc_db_zone_list(srv->db, &zones, err) < 0)
		return -1;
	json_array_foreach(zones, i, z)
	{
		const char *n = json_string_value(json_object_get(z, "name"));
		if (n && strcmp(n, zone) == 0)
			return 0;
	}
	return kc_error_set(err, KC_ERR_INVALID, "zone \"%s\" not found", zone);
}

int kc_api_host_add(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "zone", "cluster", NULL};
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *cl = NULL;
	_cleanup_json_ json_t *answer = NULL;
	const char *name, *zone, *cluster;
	struct kc_join_token t;
	struct kc_error e = {0};

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "host", err) < 0 ||
	    get_name(body, "name", "host name", true, &name, err) < 0 ||
	    get_name(body, "zone", "zone name", false, &zone, err) < 0 ||
	    get_name(body, "cluster", "cluster name", false, &cluster, err) < 0)
		return -1;
	if (!srv->alink)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "this server does not accept agents (start it with --cluster)");
	if (cluster) {
		if (kc_db_cluster_get(srv->db, cluster, &cl, &e) < 0)
			return kc_error_set(err, KC_ERR_INVALID, "%s", e.message);
		const char *cz = json_string_value(json_object_get(cl, "zone"));
		if (zone && cz && strcmp(zone, cz) != 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "cluster \"%s\" is in zone \"%s\", not \"%s\"", cluster,
					    cz, zone);
		zone = cz;
	} else if (zone && zone_exists(srv, zone, err) < 0) {
		return -1;
	}
	/* The answer first: a CA that cannot be read leaves no host behind. */
	kc_join_token_new(&t);
	answer = kc_join_token_answer(srv, name, &t, err);
	kc_join_token_wipe(&t);
	if (!answer || kc_db_host_add(srv->db, name, zone, cluster, err) < 0)
		return -1;
	if (kc_db_join_token_create(srv->db, t.hash, name, t.expires_at, err) < 0) {
		kc_db_host_remove(srv->db, name, NULL);
		return -1;
	}
	kc_http_json(c->resp, 201, steal_ptr(&answer));
	return 0;
}

int kc_api_host_remove(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *row = NULL;

	if (kc_host_is_local(srv, c->name))
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "host \"%s\" is this server's own host (all-in-one)", c->name);
	if (kc_db_host_get(srv->db, c->name, &row, err) < 0 ||
	    kc_db_host_remove(srv->db, c->name, err) < 0)
		return -1;
	/* Revoked first, then the live link closed: a reconnect in between
	 * is refused at its handshake. */
	if (srv->alink)
		kc_agentlink_disconnect(srv->alink, c->name);
	const char *serial = json_string_value(json_object_get(row, "cert_serial"));
	fprintf(stderr, "host %s removed%s%s\n", c->name, serial ? ", certificate revoked: " : "",
		serial ? serial : "");
	/* Its address leaves the other hosts' firewall peers. */
	if (json_is_string(json_object_get(row, "address")))
		kc_hostfw_push_peers(srv, NULL);
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:s?}", "removed", c->name, "revoked_serial", serial));
	return 0;
}

/* ---- zones ---- */

int kc_api_zones_list(struct kc_call *c, struct kc_error *err)
{
	json_t *rows = NULL;

	if (kc_db_zone_list(c->srv->db, &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:o}", "zones", rows));
	return 0;
}

int kc_api_zone_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", NULL};
	_cleanup_json_ json_t *body = NULL;
	const char *name;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "zone", err) < 0 ||
	    get_name(body, "name", "zone name", true, &name, err) < 0 ||
	    kc_db_zone_create(c->srv->db, name, err) < 0)
		return -1;
	kc_http_json(c->resp, 201, json_pack("{s:s}", "name", name));
	return 0;
}

int kc_api_zone_delete(struct kc_call *c, struct kc_error *err)
{
	if (kc_db_zone_delete(c->srv->db, c->name, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", c->name));
	return 0;
}

/* ---- clusters ---- */

int kc_api_clusters_list(struct kc_call *c, struct kc_error *err)
{
	const char *zone = kc_http_query(c->req, "zone");
	json_t *rows = NULL;

	if (zone && kc_name_validate(zone, "zone name", err) < 0)
		return -1;
	if (kc_db_cluster_list(c->srv->db, zone, &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:o}", "clusters", rows));
	return 0;
}

int kc_api_cluster_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "zone", NULL};
	_cleanup_json_ json_t *body = NULL;
	json_t *row = NULL;
	const char *name, *zone;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "cluster", err) < 0 ||
	    get_name(body, "name", "cluster name", true, &name, err) < 0 ||
	    get_name(body, "zone", "zone name", true, &zone, err) < 0 ||
	    zone_exists(c->srv, zone, err) < 0 ||
	    kc_db_cluster_create(c->srv->db, name, zone, NULL, NULL, err) < 0 ||
	    kc_db_cluster_get(c->srv->db, name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 201, row);
	return 0;
}

int kc_api_cluster_delete(struct kc_call *c, struct kc_error *err)
{
	if (kc_db_cluster_delete(c->srv->db, c->name, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", c->name));
	return 0;
}
