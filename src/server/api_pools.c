/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_pools.c - /api/v1/pools (admin only, authz.c's default): storage
 * pools of one host or of every host of a cluster.  The record is the
 * definition; each host's agent makes the pool real (pool.ensure) and
 * answers for its figures (pool.info), asked live at every show.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "db_pools.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"
#include "pool.h"
#include "validate.h"

static const char *const source_keys[] = {"path",   "server",	 "export", "portal",
					  "target", "initiator", "vg"};

/* The API's Pool object from a row. */
static json_t *pool_json(const json_t *row)
{
	json_t *j = json_pack("{s:O,s:O,s:O,s:O,s:O}", "name", json_object_get(row, "name"), "type",
			      json_object_get(row, "type"), "scope", json_object_get(row, "scope"),
			      "host", json_object_get(row, "host"), "cluster",
			      json_object_get(row, "cluster"));
	if (!j)
		return NULL;
	for (size_t i = 0; i < KC_ARRAY_SIZE(source_keys); i++) {
		json_t *v = json_object_get(row, source_keys[i]);
		if (json_is_string(v))
			json_object_set(j, source_keys[i], v);
	}
	json_object_set_new(
		j, "overcommit",
		json_real(json_integer_value(json_object_get(row, "overcommit_pct")) / 100.0));
	json_object_set(j, "created_at", json_object_get(row, "created_at"));
	return j;
}

static json_t *default_pool_json(void)
{
	return json_pack("{s:s,s:s,s:s,s:n,s:n,s:f,s:b}", "name", KC_POOL_DEFAULT_NAME, "type",
			 "dir", "scope", "host", "host", "cluster", "overcommit", 1.0, "implicit",
			 true);
}

/* The definition the agents get, from a row (checked again: a row is
 * only as good as the code that wrote it). */
static int row_def(const json_t *row, struct kc_pool_def *def, struct kc_error *err)
{
	_cleanup_json_ json_t *j =
		json_pack("{s:O,s:O,s:f}", "name", json_object_get(row, "name"), "type",
			  json_object_get(row, "type"), "overcommit",
			  json_integer_value(json_object_get(row, "overcommit_pct")) / 100.0);
	if (!j)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < KC_ARRAY_SIZE(source_keys); i++) {
		json_t *v = json_object_get(row, source_keys[i]);
		if (json_is_string(v))
			json_object_set(j, source_keys[i], v);
	}
	return kc_pool_def_from_json(j, NULL, false, def, err);
}

int kc_pool_load(struct kc_server *srv, const char *name, json_t **ret_row, struct kc_pool_def *def,
		 json_t **ret_hosts, struct kc_error *err)
{
	*ret_row = NULL;
	if (strcmp(name, KC_POOL_DEFAULT_NAME) == 0) {
		_cleanup_json_ json_t *hosts = NULL;
		size_t i;
		json_t *h;
		*def = (struct kc_pool_def){.type = KC_POOL_DIR, .overcommit_pct = 100};
		snprintf(def->name, sizeof(def->name), "%s", KC_POOL_DEFAULT_NAME);
		if (kc_db_host_list(srv->db, &hosts, err) < 0)
			return -1;
		json_t *names = json_array();
		json_array_foreach(hosts, i, h)
			json_array_append(names, json_object_get(h, "name"));
		*ret_hosts = names;
		return 0;
	}
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_pool_get(srv->db, name, &row, err) < 0 || row_def(row, def, err) < 0)
		return -1;
	if (kc_db_pool_hosts(srv->db, row, ret_hosts, err) < 0) {
		kc_pool_def_clear(def);
		return -1;
	}
	*ret_row = steal_ptr(&row);
	return 0;
}

static int load(struct kc_call *c, json_t **ret_row, struct kc_pool_def *def, json_t **ret_hosts,
		struct kc_error *err)
{
	return kc_pool_load(c->srv, c->name, ret_row, def, ret_hosts, err);
}

static json_t *error_json(const char *host, const struct kc_error *e)
{
	return json_pack("{s:s,s:{s:s,s:s}}", "host", host, "error", "code",
			 kc_errcode_name(e->code), "message", e->message);
}

/* Runs `op` for `def` on `host`; *ret the result. */
static int pool_call(struct kc_server *srv, const char *host, const char *op,
		     const struct kc_pool_def *def, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *args = json_pack("{s:o}", "pool", kc_pool_def_to_json(def));
	if (!args)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_host_call(srv, host, op, args, ret, err);
}

/* Undoes pool.ensure on the hosts in `done` (best effort). */
static void remove_on(struct kc_server *srv, const json_t *done, const struct kc_pool_def *def)
{
	size_t i;
	json_t *h;
	json_array_foreach(done, i, h)
	{
		json_t *r = NULL;
		if (pool_call(srv, json_string_value(h), "pool.remove", def, &r, NULL) == 0)
			json_decref(r);
	}
}

int kc_api_pools_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (kc_db_pool_list(c->srv->db, &rows, err) < 0)
		return -1;
	json_t *out = json_array();
	json_array_append_new(out, default_pool_json());
	json_array_foreach(rows, i, row) json_array_append_new(out, pool_json(row));
	kc_http_json(c->resp, 200, json_pack("{s:o}", "pools", out));
	return 0;
}

int kc_api_pool_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL, *hosts = NULL;
	struct kc_pool_def def = {0};
	size_t i;
	json_t *h;

	if (load(c, &row, &def, &hosts, err) < 0)
		return -1;
	json_t *out = row ? pool_json(row) : default_pool_json();
	json_t *figures = json_array();
	json_array_foreach(hosts, i, h)
	{
		const char *host = json_string_value(h);
		struct kc_error e = {0};
		json_t *r = NULL;
		if (!kc_host_reachable(c->srv, host)) {
			kc_error_set(&e, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected", host);
			json_array_append_new(figures, error_json(host, &e));
		} else if (pool_call(c->srv, host, "pool.info", &def, &r, &e) < 0) {
			json_array_append_new(figures, error_json(host, &e));
		} else {
			json_object_set_new(r, "host", json_string(host));
			json_array_append_new(figures, r);
		}
	}
	kc_pool_def_clear(&def);
	json_object_set_new(out, "hosts", figures);
	kc_http_json(c->resp, 200, out);
	return 0;
}

static const char *const create_extra[] = {"scope", "host", "cluster", NULL};

int kc_api_pool_create(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL, *check = NULL, *row = NULL, *hosts = NULL, *done = NULL;
	struct kc_pool_def def = {0};
	const char *scope = NULL, *host = NULL, *cluster = NULL;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_get_string(body, "scope", false, 16, &scope, err) < 0 ||
	    kc_json_get_string(body, "host", false, KC_NAME_MAX, &host, err) < 0 ||
	    kc_json_get_string(body, "cluster", false, KC_NAME_MAX, &cluster, err) < 0 ||
	    (host && kc_name_validate(host, "host name", err) < 0) ||
	    (cluster && kc_name_validate(cluster, "cluster name", err) < 0))
		return -1;
	if (!host == !cluster)
		return kc_error_set(err, KC_ERR_INVALID,
				    "a pool needs either \"host\" (scope host) or \"cluster\" "
				    "(scope cluster)");
	if (scope && strcmp(scope, host ? "host" : "cluster") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "scope \"%s\" does not match \"%s\" given",
				    scope, host ? "host" : "cluster");
	if (kc_pool_def_from_json(body, create_extra, false, &def, err) < 0)
		return -1;
	int rc = -1;
	if (cluster && (def.type == KC_POOL_DIR || def.type == KC_POOL_LOGICAL)) {
		kc_error_set(err, KC_ERR_INVALID,
			     "a %s pool is one host's own storage: give \"host\", or use a "
			     "mountpoint, nfs or iscsi pool for a cluster",
			     kc_pool_type_name(def.type));
		goto out;
	}
	if (host ? kc_db_host_get(srv->db, host, &check, err) < 0
		 : kc_db_cluster_get(srv->db, cluster, &check, err) < 0) {
		if (err && err->code == KC_ERR_NOT_FOUND)
			err->code = KC_ERR_INVALID;
		goto out;
	}
	/* The record first: it claims the name against a concurrent create. */
	if (kc_db_pool_create(srv->db, &def, host, cluster, err) < 0 ||
	    kc_db_pool_get(srv->db, def.name, &row, err) < 0 ||
	    kc_db_pool_hosts(srv->db, row, &hosts, err) < 0)
		goto out;
	/* Every reachable host makes it now, or none keeps it: a definition
	 * that fails (a path libvirt refuses, an unreachable NFS server) is
	 * an error now rather than at the first volume.  Hosts not connected
	 * make it at their first use (every pool.* op ensures). */
	done = json_array();
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		const char *hn = json_string_value(h);
		json_t *r = NULL;
		if (!kc_host_reachable(srv, hn)) {
			if (host) {
				kc_error_set(err, KC_ERR_UNAVAILABLE,
					     "host \"%s\" is not connected", hn);
				break;
			}
			continue;
		}
		if (pool_call(srv, hn, "pool.ensure", &def, &r, err) < 0) {
			if (err && err->code != KC_ERR_NO_CAPACITY &&
			    err->code != KC_ERR_NOT_FOUND && err->code != KC_ERR_CONFLICT &&
			    err->code != KC_ERR_UNAVAILABLE)
				err->code = KC_ERR_INVALID;
			break;
		}
		json_decref(r);
		json_array_append(done, h);
	}
	if (i < json_array_size(hosts)) {
		remove_on(srv, done, &def);
		kc_db_pool_delete(srv->db, def.name, NULL);
		goto out;
	}
	kc_http_json(c->resp, 201, pool_json(row));
	rc = 0;
out:
	kc_pool_def_clear(&def);
	return rc;
}

int kc_api_pool_delete(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *row = NULL, *hosts = NULL;
	struct kc_pool_def def = {0};
	size_t i;
	json_t *h;
	int rc = -1;

	if (strcmp(c->name, KC_POOL_DEFAULT_NAME) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "the default pool is each host's own and cannot be deleted");
	if (load(c, &row, &def, &hosts, err) < 0)
		return -1;
	/* Volumes are data: while any host reports one, the pool stays.  A
	 * host that cannot be asked blocks the delete too. */
	json_array_foreach(hosts, i, h)
	{
		const char *hn = json_string_value(h);
		_cleanup_json_ json_t *r = NULL;
		if (def.type == KC_POOL_ISCSI)
			break; /* its volumes are the target's LUNs, never ours to lose */
		if (!kc_host_reachable(srv, hn)) {
			kc_error_set(err, KC_ERR_UNAVAILABLE,
				     "host \"%s\" is not connected: cannot check pool \"%s\" for "
				     "volumes",
				     hn, def.name);
			goto out;
		}
		if (pool_call(srv, hn, "pool.volumes", &def, &r, err) < 0)
			goto out;
		size_t n = json_array_size(json_object_get(r, "volumes"));
		if (n > 0) {
			kc_error_set(
				err, KC_ERR_CONFLICT,
				"pool \"%s\" has %zu volume(s) on host \"%s\": delete them first",
				def.name, n, hn);
			goto out;
		}
	}
	json_array_foreach(hosts, i, h)
	{
		_cleanup_json_ json_t *r = NULL;
		if (pool_call(srv, json_string_value(h), "pool.remove", &def, &r, err) < 0)
			goto out;
	}
	if (kc_db_pool_delete(srv->db, def.name, err) < 0)
		goto out;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", def.name));
	rc = 0;
out:
	kc_pool_def_clear(&def);
	return rc;
}

int kc_pool_row_def(const json_t *row, struct kc_pool_def *def, struct kc_error *err)
{
	return row_def(row, def, err);
}
