/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_cleanup.c - what the image library leaves on hosts (images.h;
 * docs/storage.md, "Image library", "Clean-up"): a deleted image's cached
 * copy and linked-clone bases go from every reachable host (image.forget),
 * and POST /api/v1/pools/{name}/prune removes the bases and cached copies
 * no disk uses (pool.prune).  The agents decide what is in use; this side
 * only says which pools each host has and which images the library holds.
 */
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "db_hosts.h"
#include "db_images.h"
#include "db_pools.h"
#include "hostlink.h"
#include "http_util.h"
#include "images.h"
#include "json_util.h"
#include "pool.h"
#include "validate.h"

static json_t *host_error(const char *host, const struct kc_error *e)
{
	return json_pack("{s:s,s:{s:s,s:s}}", "host", host, "error", "code",
			 kc_errcode_name(e->code), "message", e->message);
}

static bool has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (json_is_string(v) &&
					  strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* The definitions (as agents get them) of the pools `host` is on where
 * VM disks, hence bases, can live. */
static int pools_of(struct kc_server *srv, const char *host, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (kc_db_pool_list(srv->db, &rows, err) < 0)
		return -1;
	_cleanup_json_ json_t *out = json_array();
	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_array_foreach(rows, i, row)
	{
		_cleanup_json_ json_t *hosts = NULL;
		struct kc_pool_def def = {0};
		if (kc_db_pool_hosts(srv->db, row, &hosts, err) < 0)
			return -1;
		if (!has_string(hosts, host) || kc_pool_row_def(row, &def, NULL) < 0)
			continue;
		if (def.type == KC_POOL_DIR || def.type == KC_POOL_MOUNTPOINT ||
		    def.type == KC_POOL_NFS)
			json_array_append_new(out, kc_pool_def_to_json(&def));
		kc_pool_def_clear(&def);
	}
	*ret = steal_ptr(&out);
	return 0;
}

json_t *kc_images_forget_on_hosts(struct kc_server *srv, const json_t *row)
{
	const char *name = json_string_value(json_object_get(row, "name"));
	const char *format = json_string_value(json_object_get(row, "format"));
	const char *sha256 = json_string_value(json_object_get(row, "sha256"));
	const char *state = json_string_value(json_object_get(row, "state"));
	_cleanup_json_ json_t *hosts = NULL;
	struct kc_error e = {0};
	size_t i;
	json_t *h;

	json_t *out = json_pack("{s:[],s:[]}", "hosts", "not_reached");
	/* Only a ready image was ever sent to hosts. */
	if (!out || !state || strcmp(state, "ready") != 0 || !sha256 || !format)
		return out;
	if (kc_db_host_list(srv->db, &hosts, &e) < 0) {
		json_array_append_new(json_object_get(out, "hosts"), host_error("*", &e));
		return out;
	}
	json_array_foreach(hosts, i, h)
	{
		const char *host = json_string_value(json_object_get(h, "name"));
		_cleanup_json_ json_t *pools = NULL, *args = NULL, *res = NULL;
		kc_error_clear(&e);
		if (!host)
			continue;
		/* A host that cannot be asked keeps its copies until pool prune. */
		if (!kc_host_reachable(srv, host)) {
			json_array_append_new(json_object_get(out, "not_reached"),
					      json_string(host));
			continue;
		}
		if (pools_of(srv, host, &pools, &e) < 0 ||
		    !(args = json_pack("{s:s,s:s,s:s,s:O}", "name", name, "format", format,
				       "sha256", sha256, "pools", pools)) ||
		    kc_host_call(srv, host, "image.forget", args, &res, &e) < 0) {
			if (!kc_error_is_set(&e))
				kc_error_set(&e, KC_ERR_INTERNAL, "out of memory");
			json_array_append_new(json_object_get(out, "hosts"), host_error(host, &e));
			continue;
		}
		json_object_set_new(res, "host", json_string(host));
		json_object_del(res, "dry_run");
		json_array_append(json_object_get(out, "hosts"), res);
	}
	kc_error_clear(&e);
	return out;
}

/* The file names (<name><ext>) of every library record, whatever its
 * state: a record exists before its file takes its name. */
static int library_files(struct kc_server *srv, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (kc_db_image_list(srv->db, NULL, &rows, err) < 0)
		return -1;
	_cleanup_json_ json_t *out = json_array();
	json_array_foreach(rows, i, row)
	{
		enum kc_img_format f;
		char file[KC_NAME_MAX + 8];
		if (kc_img_format_parse(json_string_value(json_object_get(row, "format")), &f,
					NULL) < 0)
			continue;
		snprintf(file, sizeof(file), "%s%s",
			 json_string_value(json_object_get(row, "name")), kc_img_format_ext(f));
		json_array_append_new(out, json_string(file));
	}
	*ret = steal_ptr(&out);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

int kc_api_pool_prune(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"host", "dry_run", NULL};
	_cleanup_json_ json_t *body = NULL, *row = NULL, *hosts = NULL, *library = NULL;
	const char *only = NULL;
	bool dry_run = false;
	struct kc_pool_def def = {0};
	size_t i;
	json_t *h;

	if (kc_http_read_json(c->req, false, &body, err) < 0 ||
	    (body && (kc_json_check_keys(body, keys, "prune request", err) < 0 ||
		      kc_json_get_string(body, "host", false, KC_NAME_MAX, &only, err) < 0 ||
		      kc_json_get_bool(body, "dry_run", false, &dry_run, err) < 0)) ||
	    (only && kc_name_validate(only, "host name", err) < 0))
		return -1;
	if (kc_pool_load(c->srv, c->name, &row, &def, &hosts, err) < 0)
		return -1;
	int rc = -1;
	if (only && !has_string(hosts, only)) {
		kc_error_set(err, KC_ERR_NOT_FOUND, "pool \"%s\" is not on host \"%s\"", def.name,
			     only);
		goto out;
	}
	bool is_default = strcmp(def.name, KC_POOL_DEFAULT_NAME) == 0;
	if (is_default && library_files(c->srv, &library, err) < 0)
		goto out;
	json_t *results = json_array();
	json_int_t freed = 0;
	json_array_foreach(hosts, i, h)
	{
		const char *host = json_string_value(h);
		_cleanup_json_ json_t *args = NULL, *res = NULL;
		struct kc_error e = {0};
		if (only && strcmp(host, only) != 0)
			continue;
		if (!kc_host_reachable(c->srv, host)) {
			kc_error_set(&e, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected", host);
		} else if (!(args = json_pack("{s:o,s:b}", "pool", kc_pool_def_to_json(&def),
					      "dry_run", dry_run)) ||
			   (library && json_object_set(args, "library", library) < 0)) {
			kc_error_set(&e, KC_ERR_INTERNAL, "out of memory");
		} else if (kc_host_call(c->srv, host, "pool.prune", args, &res, &e) == 0) {
			freed += json_integer_value(json_object_get(res, "bytes_freed"));
			json_object_set_new(res, "host", json_string(host));
			json_object_del(res, "dry_run");
			json_array_append(results, res);
			continue;
		}
		json_array_append_new(results, host_error(host, &e));
	}
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:b,s:o,s:I}", "pool", def.name, "dry_run", dry_run, "hosts",
			       results, "bytes_freed", freed));
	rc = 0;
out:
	kc_pool_def_clear(&def);
	return rc;
}
