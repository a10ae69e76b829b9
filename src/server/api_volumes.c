/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_volumes.c - /api/v1/volumes (docs/api.md, docs/storage.md "Volumes"):
 * data volumes in pools, owned by users (authz.c: a user's own only) and
 * counted against their disk quota, hot-plugged into VMs.  The record
 * comes first and claims the name (or the volume, for a change); then the
 * host's agent does the work (vol.*); a host that fails undoes the claim,
 * so nothing is left half-made.  Uploads and downloads travel in chunks
 * over the host's normal link, never whole in memory.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "db_pools.h"
#include "db_vms.h"
#include "db_volumes.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"
#include "pool.h"
#include "validate.h"
#include "volumes.h"

#define GIB (1ULL << 30)

static char *b64_encode(const void *data, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(n);
	if (out)
		sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

static int b64_decode(const char *s, unsigned char **ret, size_t *ret_len)
{
	size_t len = strlen(s), n = 0;
	unsigned char *out = malloc(len / 4 * 3 + 3);
	if (!out || sodium_base642bin(out, len / 4 * 3 + 3, s, len, NULL, &n, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(out);
		return -1;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

/* The API's Volume object. */
static json_t *vol_view(const json_t *row)
{
	static const char *const keys[] = {"name",	     "pool",	    "host",   "format",
					   "capacity_bytes", "attached_to", "target", "owner",
					   "state",	     "created_at"};
	json_t *j = json_object();
	for (size_t i = 0; j && i < KC_ARRAY_SIZE(keys); i++)
		json_object_set(j, keys[i], json_object_get(row, keys[i]));
	json_t *up = json_object_get(row, "upload_bytes");
	if (j && json_is_integer(up))
		json_object_set_new(j, "upload",
				    json_pack("{s:O,s:O}", "size_bytes", up, "received_bytes",
					      json_object_get(row, "received_bytes")));
	return j;
}

static const char *str(const json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}

/* The volume's row if the caller may see it (others' are "not found"),
 * with an attachment to a VM whose record is gone cleared first. */
static int load_row(struct kc_call *c, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL, *vm = NULL;
	struct kc_error e = {0};

	if (kc_db_volume_get(c->srv->db, name, &row, err) < 0)
		return -1;
	const char *owner = str(row, "owner");
	if (!kc_authz_is_admin(c) && (!owner || strcmp(owner, c->who.user) != 0))
		return kc_error_set(err, KC_ERR_NOT_FOUND, "volume \"%s\" not found", name);
	const char *att = str(row, "attached_to");
	if (att && kc_db_vm_get(c->srv->db, att, &vm, &e) < 0 && e.code == KC_ERR_NOT_FOUND) {
		json_decref(row);
		row = NULL;
		if (kc_db_volume_detach(c->srv->db, name, err) < 0 ||
		    kc_db_volume_get(c->srv->db, name, &row, err) < 0)
			return -1;
	}
	*ret = steal_ptr(&row);
	return 0;
}

static bool json_has_str(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (s && json_is_string(v) &&
					  strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* Where a volume's pool is, for a call: its definition, and the host to
 * ask (the volume's own host, or for a cluster's shared pool any
 * connected host of the cluster). */
struct where {
	struct kc_pool_def def;
	json_t *pool_row;
	json_t *hosts;
	const char *host;
};

static void where_clear(struct where *w)
{
	kc_pool_def_clear(&w->def);
	json_decref(w->pool_row);
	json_decref(w->hosts);
}

static bool cluster_pool(const struct where *w)
{
	const char *scope = str(w->pool_row, "scope");
	return scope && strcmp(scope, "cluster") == 0;
}

static int locate(struct kc_server *srv, const json_t *row, struct where *w, struct kc_error *err)
{
	if (kc_pool_load(srv, str(row, "pool"), &w->pool_row, &w->def, &w->hosts, err) < 0)
		return -1;
	const char *own = str(row, "host");
	if (!cluster_pool(w) || (own && kc_host_reachable(srv, own))) {
		w->host = own;
	} else {
		size_t i;
		json_t *h;
		json_array_foreach(w->hosts, i,
				   h) if (!w->host && kc_host_reachable(srv, json_string_value(h)))
			w->host = json_string_value(h);
	}
	if (!w->host || !kc_host_reachable(srv, w->host))
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "host \"%s\" of volume \"%s\" is not "
				    "connected",
				    w->host ? w->host
				    : own   ? own
					    : "?",
				    str(row, "name"));
	return 0;
}

/* Answers 200 with the volume as the database now has it and "live"
 * (a new reference, or NULL to leave the key out). */
static int reply_volume(struct kc_call *c, json_t *live, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_volume_get(c->srv->db, c->name, &row, err) < 0) {
		json_decref(live);
		return -1;
	}
	json_t *out = vol_view(row);
	json_object_set_new(out, "live", live);
	kc_http_json(c->resp, 200, out);
	return 0;
}

/* Runs vol.<op> on host with {"pool", "name", "format"} and `extra`'s keys. */
static int vol_call(struct kc_server *srv, const char *host, const char *op,
		    const struct kc_pool_def *def, const json_t *row, json_t *extra, json_t **ret,
		    struct kc_error *err)
{
	_cleanup_json_ json_t *args =
		json_pack("{s:o,s:O,s:O}", "pool", kc_pool_def_to_json(def), "name",
			  json_object_get(row, "name"), "format", json_object_get(row, "format"));
	_cleanup_json_ json_t *x = extra;
	if (!args || (x && json_object_update(args, x) < 0))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_host_call(srv, host, op, args, ret, err);
}

/* {"size_gib": N} or {"size_bytes": N}: one of them, 1 byte .. 64 TiB. */
static int parse_size(const json_t *body, uint64_t *ret, struct kc_error *err)
{
	uint64_t gib = 0, bytes = 0;
	const json_t *g = json_object_get(body, "size_gib"),
		     *b = json_object_get(body, "size_bytes");

	if (!g == !b)
		return kc_error_set(err, KC_ERR_INVALID, "give one of size_gib or size_bytes");
	if (g && kc_json_get_uint(body, "size_gib", true, 0, UINT64_MAX >> 1, &gib, err) < 0)
		return -1;
	if (b && kc_json_get_uint(body, "size_bytes", true, 0, UINT64_MAX >> 1, &bytes, err) < 0)
		return -1;
	uint64_t size = g ? (gib > KC_POOL_VOL_MAX / GIB ? KC_POOL_VOL_MAX + 1 : gib * GIB) : bytes;
	if (size == 0 || size > KC_POOL_VOL_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "volume size must be from 1 byte to 64 TiB (65536 GiB)");
	*ret = size;
	return 0;
}

int kc_api_volumes_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (kc_db_volume_list(c->srv->db, kc_authz_is_admin(c) ? NULL : c->who.user, &rows, err) <
	    0)
		return -1;
	json_t *out = json_array();
	json_array_foreach(rows, i, row) json_array_append_new(out, vol_view(row));
	kc_http_json(c->resp, 200, json_pack("{s:o}", "volumes", out));
	return 0;
}

int kc_api_volume_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	if (load_row(c, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, vol_view(row));
	return 0;
}

static const char *const create_keys[] = {"name",   "pool", "size_gib", "size_bytes",
					  "format", "host", NULL};

int kc_api_volume_create(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL, *pool_row = NULL, *hosts = NULL, *row = NULL,
			      *res = NULL;
	struct kc_pool_def def = {0};
	const char *name = NULL, *pool = KC_POOL_DEFAULT_NAME, *format = "qcow2", *host = NULL;
	_cleanup_(kc_volume_busy_leave) struct kc_volume_busy *busy = NULL;
	enum kc_vol_format fmt;
	uint64_t size = 0;
	int rc = -1;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, create_keys, "volume", err) < 0 ||
	    kc_json_get_string(body, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "volume name", err) < 0 ||
	    kc_json_get_string(body, "pool", false, KC_NAME_MAX, &pool, err) < 0 ||
	    kc_name_validate(pool, "pool name", err) < 0 ||
	    kc_json_get_string(body, "format", false, 16, &format, err) < 0 ||
	    kc_vol_format_parse(format, &fmt, err) < 0 ||
	    kc_json_get_string(body, "host", false, KC_NAME_MAX, &host, err) < 0 ||
	    (host && kc_name_validate(host, "host name", err) < 0) ||
	    parse_size(body, &size, err) < 0)
		return -1;
	if (kc_pool_load(srv, pool, &pool_row, &def, &hosts, err) < 0) {
		if (err && err->code == KC_ERR_NOT_FOUND)
			err->code = KC_ERR_INVALID;
		return -1;
	}
	const char *scope = json_string_value(json_object_get(pool_row, "scope"));
	if (host && !json_has_str(hosts, host)) {
		kc_error_set(err, KC_ERR_INVALID, "pool \"%s\" is not on host \"%s\"", pool, host);
		goto out;
	}
	if (!host && json_array_size(hosts) == 1)
		host = json_string_value(json_array_get(hosts, 0));
	if (!host && scope && strcmp(scope, "cluster") == 0) {
		size_t i;
		json_t *h;
		json_array_foreach(hosts, i,
				   h) if (!host && kc_host_reachable(srv, json_string_value(h)))
			host = json_string_value(h);
	}
	if (!host) {
		kc_error_set(err, KC_ERR_INVALID,
			     "pool \"%s\" is on several hosts: give \"host\" (the VM's host, to "
			     "attach it there)",
			     pool);
		goto out;
	}
	if (!kc_host_reachable(srv, host)) {
		kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected", host);
		goto out;
	}
	/* The record first: it claims the name and the quota.  Busy from
	 * before it exists: a hello's settlement leaves it alone. */
	busy = kc_volume_busy_enter(srv, name);
	if (kc_db_volume_insert(
		    srv->db,
		    &(struct kc_db_volume){.name = name,
					   .pool = pool,
					   .host = host,
					   .format = kc_vol_format_name(fmt),
					   .owner = c->who.user[0] ? c->who.user : KC_DB_ADMIN_USER,
					   .capacity_bytes = (int64_t)size},
		    true, err) < 0)
		goto out;
	if (kc_db_volume_get(srv->db, name, &row, err) < 0)
		goto out;
	if (vol_call(srv, host, "vol.create", &def, row,
		     json_pack("{s:I}", "capacity", (json_int_t)size), &res, err) < 0 ||
	    kc_db_volume_set_state(srv->db, name, "creating", "ready", false, err) < 0) {
		kc_db_volume_delete(srv->db, name, NULL);
		goto out;
	}
	json_decref(row);
	row = NULL;
	if (kc_db_volume_get(srv->db, name, &row, err) < 0)
		goto out;
	kc_http_json(c->resp, 201, vol_view(row));
	rc = 0;
out:
	kc_pool_def_clear(&def);
	return rc;
}

static int need_state(const json_t *row, const char *want, struct kc_error *err)
{
	const char *state = str(row, "state");
	if (!state || strcmp(state, want) != 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" is %s", str(row, "name"),
				    state ? state : "?");
	return 0;
}

int kc_api_volume_resize(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"size_gib", "size_bytes", NULL};
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL, *row = NULL, *vm = NULL, *res = NULL;
	struct where w = {0};
	uint64_t size = 0;
	int rc = -1;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "resize", err) < 0 || parse_size(body, &size, err) < 0 ||
	    load_row(c, c->name, &row, err) < 0 || need_state(row, "ready", err) < 0)
		return -1;
	int64_t old = json_integer_value(json_object_get(row, "capacity_bytes"));
	if ((int64_t)size <= old)
		return kc_error_set(err, KC_ERR_INVALID,
				    "volume \"%s\" has %" PRId64 " bytes: volumes only grow (asked "
				    "for %" PRIu64 ")",
				    c->name, old, size);
	const char *att = str(row, "attached_to");
	if (locate(srv, row, &w, err) < 0)
		goto out;
	json_t *extra = json_pack("{s:I}", "capacity", (json_int_t)size);
	const char *host = w.host;
	if (att) {
		/* The VM's host holds the disk open if it runs: it resizes live. */
		if (kc_db_vm_get(srv->db, att, &vm, err) < 0)
			goto out;
		host = str(vm, "host");
		json_object_set_new(extra, "vm", json_string(att));
		json_object_set(extra, "target", json_object_get(row, "target"));
	}
	/* The record (and the quota) first; undone if the host refuses. */
	if (kc_db_volume_resize(srv->db, c->name, (int64_t)size, true, err) < 0) {
		json_decref(extra);
		goto out;
	}
	if (vol_call(srv, host, "vol.resize", &w.def, row, extra, &res, err) < 0) {
		kc_db_volume_set_capacity(srv->db, c->name, old, NULL);
		goto out;
	}
	rc = reply_volume(c, json_incref(json_object_get(res, "live")), err);
out:
	where_clear(&w);
	return rc;
}

int kc_api_volume_delete(struct kc_call *c, struct kc_error *err)
{
	_cleanup_(kc_volume_busy_leave) struct kc_volume_busy *busy =
		kc_volume_busy_enter(c->srv, c->name);
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *row = NULL, *res = NULL;
	struct where w = {0};
	struct kc_error e = {0};
	int rc = -1;

	if (load_row(c, c->name, &row, err) < 0)
		return -1;
	if (str(row, "attached_to"))
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "volume \"%s\" is attached to VM \"%s\": detach it first",
				    c->name, str(row, "attached_to"));
	const char *state = str(row, "state");
	if (kc_db_volume_set_state(srv->db, c->name, state, "deleting", true, err) < 0)
		return -1;
	if (locate(srv, row, &w, err) < 0 ||
	    (vol_call(srv, w.host, "vol.delete", &w.def, row, NULL, &res, &e) < 0 &&
	     e.code != KC_ERR_NOT_FOUND)) {
		if (kc_error_is_set(&e) && err)
			*err = e;
		kc_db_volume_set_state(srv->db, c->name, "deleting",
				       strcmp(state, "creating") == 0 ? "creating" : "ready", false,
				       NULL);
		goto out;
	}
	if (kc_db_volume_delete(srv->db, c->name, err) < 0)
		goto out;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", c->name));
	rc = 0;
out:
	where_clear(&w);
	return rc;
}

/* The VM `vm` as the caller may use it: a user's own only, never one
 * being created. */
static int usable_vm(struct kc_call *c, const char *vm, const json_t *vol, json_t **ret,
		     struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	if (kc_db_vm_get(c->srv->db, vm, &row, &e) < 0) {
		if (e.code == KC_ERR_NOT_FOUND)
			return kc_error_set(err, KC_ERR_INVALID, "VM \"%s\" not found", vm);
		*err = e;
		return -1;
	}
	const char *owner = str(row, "owner");
	if (!kc_authz_is_admin(c) && (!owner || strcmp(owner, c->who.user) != 0))
		return kc_error_set(err, KC_ERR_INVALID, "VM \"%s\" not found", vm);
	const char *vowner = str(vol, "owner");
	if (owner && vowner && strcmp(owner, vowner) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "volume \"%s\" belongs to \"%s\" and VM \"%s\" to \"%s\"",
				    str(vol, "name"), vowner, vm, owner);
	const char *state = str(row, "state");
	if (state && strcmp(state, "creating") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" is being created", vm);
	*ret = steal_ptr(&row);
	return 0;
}

int kc_api_volume_attach(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"vm", NULL};
	_cleanup_(kc_volume_busy_leave) struct kc_volume_busy *busy =
		kc_volume_busy_enter(c->srv, c->name);
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL, *row = NULL, *vm = NULL, *res = NULL;
	struct where w = {0};
	const char *vmname = NULL;
	int rc = -1;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "attach", err) < 0 ||
	    kc_json_get_string(body, "vm", true, KC_NAME_MAX, &vmname, err) < 0 ||
	    kc_name_validate(vmname, "VM name", err) < 0 || load_row(c, c->name, &row, err) < 0)
		return -1;
	if (str(row, "attached_to"))
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" is attached to VM \"%s\"",
				    c->name, str(row, "attached_to"));
	if (need_state(row, "ready", err) < 0 || usable_vm(c, vmname, row, &vm, err) < 0 ||
	    kc_pool_load(srv, str(row, "pool"), &w.pool_row, &w.def, &w.hosts, err) < 0)
		goto out;
	/* Reachable from the VM's host: the same host, or a host of the
	 * cluster whose shared pool holds it. */
	const char *vmhost = str(vm, "host");
	if (!vmhost || (cluster_pool(&w) ? !json_has_str(w.hosts, vmhost)
					 : strcmp(vmhost, str(row, "host")) != 0)) {
		kc_error_set(err, KC_ERR_INVALID,
			     "volume \"%s\" is in pool \"%s\" on host \"%s\", which VM \"%s\" on "
			     "host \"%s\" cannot reach",
			     c->name, str(row, "pool"), str(row, "host"), vmname,
			     vmhost ? vmhost : "?");
		goto out;
	}
	if (kc_db_volume_set_state(srv->db, c->name, "ready", "attaching", true, err) < 0)
		goto out;
	if (vol_call(srv, vmhost, "vol.attach", &w.def, row, json_pack("{s:s}", "vm", vmname), &res,
		     err) < 0) {
		kc_db_volume_set_state(srv->db, c->name, "attaching", "ready", false, NULL);
		goto out;
	}
	const char *target = json_string_value(json_object_get(res, "target"));
	if (kc_db_volume_attach(srv->db, c->name, vmname, target ? target : "?", err) < 0)
		goto out;
	rc = reply_volume(c, json_incref(json_object_get(res, "live")), err);
out:
	where_clear(&w);
	return rc;
}

int kc_api_volume_detach(struct kc_call *c, struct kc_error *err)
{
	_cleanup_(kc_volume_busy_leave) struct kc_volume_busy *busy =
		kc_volume_busy_enter(c->srv, c->name);
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *row = NULL, *vm = NULL, *res = NULL;
	struct where w = {0};
	struct kc_error e = {0};
	int rc = -1;

	if (load_row(c, c->name, &row, err) < 0)
		return -1;
	const char *att = str(row, "attached_to");
	if (!att)
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" is not attached", c->name);
	if (kc_db_vm_get(srv->db, att, &vm, &e) < 0 && e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	if (kc_db_volume_set_state(srv->db, c->name, "ready", "detaching", false, err) < 0)
		return -1;
	if (vm) {
		const char *vmhost = str(vm, "host");
		if (kc_pool_load(srv, str(row, "pool"), &w.pool_row, &w.def, &w.hosts, err) < 0 ||
		    vol_call(srv, vmhost, "vol.detach", &w.def, row,
			     json_pack("{s:s,s:O}", "vm", att, "target",
				       json_object_get(row, "target")),
			     &res, err) < 0) {
			kc_db_volume_set_state(srv->db, c->name, "detaching", "ready", false, NULL);
			goto out;
		}
	}
	if (kc_db_volume_detach(srv->db, c->name, err) < 0)
		goto out;
	rc = reply_volume(c, json_boolean(json_is_true(json_object_get(res, "live"))), err);
out:
	where_clear(&w);
	return rc;
}

int kc_volumes_vm_check_free(struct kc_server *srv, const char *vm, struct kc_error *err)
{
	_cleanup_json_ json_t *names = NULL;
	if (kc_db_volume_attached(srv->db, vm, &names, err) < 0)
		return -1;
	if (json_array_size(names) == 0)
		return 0;
	_cleanup_free_ char *list = json_dumps(names, JSON_COMPACT);
	return kc_error_set(err, KC_ERR_CONFLICT,
			    "VM \"%s\" has volumes attached (%s): detach them first", vm,
			    list ? list : "");
}

/* ---- upload: PUT /api/v1/volumes/{name}/data?offset=N&size=TOTAL ---- */

int kc_api_volume_upload(struct kc_call *c, struct kc_error *err)
{
	_cleanup_(kc_volume_busy_leave) struct kc_volume_busy *busy =
		kc_volume_busy_enter(c->srv, c->name);
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *row = NULL;
	struct where w = {0};
	uint64_t offset = 0, total = 0;
	size_t len = c->req->binary_body_length;
	int rc = -1;

	if (!kc_http_query(c->req, "offset") || !kc_http_query(c->req, "size"))
		return kc_error_set(err, KC_ERR_INVALID,
				    "query parameters \"offset\" and \"size\" are required");
	if (kc_http_query_uint(c->req, "size", 1, KC_POOL_VOL_MAX * 2, &total, err) < 0 ||
	    kc_http_query_uint(c->req, "offset", 0, total - 1, &offset, err) < 0)
		return -1;
	if (len == 0)
		return kc_error_set(err, KC_ERR_INVALID, "an empty chunk");
	if (len > total - offset)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the chunk goes beyond the %" PRIu64 " bytes announced", total);
	if (load_row(c, c->name, &row, err) < 0)
		return -1;
	if (str(row, "attached_to"))
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "volume \"%s\" is attached to VM \"%s\": detach it first",
				    c->name, str(row, "attached_to"));
	if (locate(srv, row, &w, err) < 0)
		goto out;
	/* Claimed before it is sent: two uploads cannot interleave. */
	if (kc_db_volume_upload_claim(srv->db, c->name, offset, len, total, err) < 0)
		goto out;
	const char *data = c->req->binary_body;
	for (size_t done = 0; done < len;) {
		size_t n = len - done > KC_VOL_CHUNK_MAX ? KC_VOL_CHUNK_MAX : len - done;
		_cleanup_free_ char *b64 = b64_encode(data + done, n);
		_cleanup_json_ json_t *res = NULL;
		json_t *extra = b64 ? json_pack("{s:O,s:I,s:I,s:s}", "capacity",
						json_object_get(row, "capacity_bytes"), "offset",
						(json_int_t)(offset + done), "size",
						(json_int_t)total, "data", b64)
				    : NULL;
		if (!extra) {
			kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		} else if (vol_call(srv, w.host, "vol.upload", &w.def, row, extra, &res, err) ==
			   0) {
			done += n;
			continue;
		}
		/* Given up: the client starts again at offset 0. */
		kc_db_volume_upload_end(srv->db, c->name, NULL);
		goto out;
	}
	bool finished = offset + len == total;
	if (finished && kc_db_volume_upload_end(srv->db, c->name, err) < 0)
		goto out;
	kc_http_json(c->resp, 200,
		     json_pack("{s:I,s:I,s:b}", "received_bytes", (json_int_t)(offset + len),
			       "size_bytes", (json_int_t)total, "done", finished));
	rc = 0;
out:
	where_clear(&w);
	return rc;
}

/* ---- download: GET /api/v1/volumes/{name}/data, streamed ---- */

struct dl {
	struct kc_server *srv;
	char *host;
	json_t *args; /* vol.download's, "offset" updated */
	uint64_t size;
	unsigned char *buf; /* the chunk at buf_off */
	size_t buf_len;
	uint64_t buf_off;
};

static void dl_free(void *opaque)
{
	struct dl *d = opaque;
	if (!d)
		return;
	free(d->host);
	json_decref(d->args);
	free(d->buf);
	free(d);
}

/* One vol.download call: the chunk at `off` into d->buf. */
static int dl_fetch(struct dl *d, uint64_t off, struct kc_error *err)
{
	_cleanup_json_ json_t *res = NULL;
	json_object_set_new(d->args, "offset", json_integer((json_int_t)off));
	if (kc_host_call(d->srv, d->host, "vol.download", d->args, &res, err) < 0)
		return -1;
	const char *data = json_string_value(json_object_get(res, "data"));
	free(d->buf);
	d->buf = NULL;
	d->buf_len = 0;
	if (data && b64_decode(data, &d->buf, &d->buf_len) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "vol.download: bad data");
	d->buf_off = off;
	if (off == 0)
		d->size = (uint64_t)json_integer_value(json_object_get(res, "size"));
	return 0;
}

static ssize_t dl_read(void *opaque, uint64_t pos, char *out, size_t max)
{
	struct dl *d = opaque;
	struct kc_error e = {0};

	if (pos >= d->size)
		return U_STREAM_END;
	if (pos < d->buf_off || pos >= d->buf_off + d->buf_len) {
		if (dl_fetch(d, pos, &e) < 0 || d->buf_len == 0) {
			/* Headers are gone: a short body is how the client learns. */
			fprintf(stderr, "volume download stopped at %" PRIu64 ": %s\n", pos,
				kc_error_is_set(&e) ? e.message : "no data");
			return U_STREAM_ERROR;
		}
	}
	size_t at = (size_t)(pos - d->buf_off), n = d->buf_len - at;
	if (n > max)
		n = max;
	memcpy(out, d->buf + at, n);
	return (ssize_t)n;
}

int kc_api_volume_download(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *row = NULL;
	struct where w = {0};
	int rc = -1;

	if (load_row(c, c->name, &row, err) < 0)
		return -1;
	if (str(row, "attached_to"))
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "volume \"%s\" is attached to VM \"%s\": detach it first",
				    c->name, str(row, "attached_to"));
	if (need_state(row, "ready", err) < 0 || locate(srv, row, &w, err) < 0)
		goto out;
	struct dl *d = calloc(1, sizeof(*d));
	if (d) {
		d->srv = srv;
		d->host = strdup(w.host);
		d->args = json_pack("{s:o,s:O,s:O,s:i}", "pool", kc_pool_def_to_json(&w.def),
				    "name", json_object_get(row, "name"), "format",
				    json_object_get(row, "format"), "length", KC_VOL_CHUNK_MAX);
	}
	if (!d || !d->host || !d->args) {
		dl_free(d);
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	/* The first chunk before the headers: errors still get a status,
	 * and the size gives Content-Length. */
	if (dl_fetch(d, 0, err) < 0) {
		dl_free(d);
		goto out;
	}
	u_map_put(c->resp->map_header, "Content-Type", "application/octet-stream");
	if (ulfius_set_stream_response(c->resp, 200, dl_read, dl_free, d->size, KC_VOL_CHUNK_MAX,
				       d) != U_OK) {
		dl_free(d);
		kc_error_set(err, KC_ERR_INTERNAL, "cannot start the download");
		goto out;
	}
	rc = 0;
out:
	where_clear(&w);
	return rc;
}
