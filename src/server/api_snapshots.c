/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_snapshots.c - the snapshot routes under /api/v1/vms/{name}/snapshots
 * (docs/api.md "Snapshots").  The VM must be managed and settled; who may
 * act on it is authz.c's VM rule.  Create and revert can take as long as
 * QEMU needs to save or load the guest's memory, so they are jobs; list,
 * show and delete answer at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "hostlink.h"
#include "http_util.h"
#include "jobs.h"
#include "json_util.h"
#include "validate.h"
#include "vm_ops.h"

#define SNAP_DESC_MAX 1024 /* the agent's KC_SNAPSHOT_DESC_MAX */
#define SNAP_SEGMENT  5	   /* api v1 vms {vm} snapshots {snap} */

/* `op` on the host of VM `vm`, with "name" added to `args` (stolen, may
 * be NULL); *ret (may be NULL) the result. */
static int snap_call(struct kc_server *srv, const char *vm, const char *op, json_t *args,
		     json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *a = args ? args : json_object();
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *res = NULL;

	if (kc_api_require_managed(srv, vm, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (state && strcmp(state, "creating") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" is being created", vm);
	const char *host = json_string_value(json_object_get(row, "host"));
	if (!host)
		host = srv->agent ? srv->host_name : NULL;
	if (!host)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "VM \"%s\" has no host", vm);
	if (!a || json_object_set_new(a, "name", json_string(vm)) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_host_call(srv, host, op, a, &res, err) < 0)
		return -1;
	if (ret)
		*ret = steal_ptr(&res);
	return 0;
}

/* The {snap} segment of the path, decoded and validated (the dispatcher
 * checks only the first parameter, the VM's). */
static char *snap_param(const struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *path = c->req->url_path ? strdup(c->req->url_path) : NULL;
	char *save = NULL, *seg = NULL;
	int i = 0;

	if (!path) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save), i++)
		if (i == SNAP_SEGMENT)
			seg = t;
	char *decoded = seg ? ulfius_url_decode(seg) : NULL;
	char *name = decoded ? strdup(decoded) : NULL;
	u_free(decoded);
	if (!name) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (kc_name_validate(name, "snapshot name", err) < 0) {
		free(name);
		return NULL;
	}
	return name;
}

int kc_api_snapshots_list(struct kc_call *c, struct kc_error *err)
{
	json_t *res = NULL;

	if (snap_call(c->srv, c->name, "vm.snapshot.list", NULL, &res, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, res);
	return 0;
}

int kc_api_snapshot_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "description", NULL};
	_cleanup_json_ json_t *body = NULL;
	const char *name = NULL, *desc = NULL;

	if (kc_http_read_json(c->req, true, &body, err) < 0)
		return -1;
	if (!json_is_object(body))
		return kc_error_set(err, KC_ERR_INVALID, "the snapshot request must be an object");
	if (kc_json_check_keys(body, keys, "snapshot request", err) < 0 ||
	    kc_json_get_string(body, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "snapshot name", err) < 0 ||
	    kc_json_get_string(body, "description", false, SNAP_DESC_MAX, &desc, err) < 0)
		return -1;
	for (const char *p = desc; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return kc_error_set(err, KC_ERR_INVALID,
					    "description may not hold control characters");
	_cleanup_json_ json_t *args =
		json_pack("{s:s,s:s?}", "snapshot", name, "description", desc);
	return kc_jobs_serve(c, "vm.snapshot.create", c->name, args, 201, err);
}

int kc_api_snapshot_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *snap = snap_param(c, err);
	json_t *res = NULL;

	if (!snap || snap_call(c->srv, c->name, "vm.snapshot.show",
			       json_pack("{s:s}", "snapshot", snap), &res, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, res);
	return 0;
}

int kc_api_snapshot_delete(struct kc_call *c, struct kc_error *err)
{
	_cleanup_free_ char *snap = snap_param(c, err);
	bool children = false;
	json_t *res = NULL;

	if (!snap || kc_http_query_bool(c->req, "children", &children, err) < 0)
		return -1;
	if (snap_call(c->srv, c->name, "vm.snapshot.delete",
		      json_pack("{s:s,s:b}", "snapshot", snap, "children", children), &res,
		      err) < 0)
		return -1;
	kc_http_json(c->resp, 200, res);
	return 0;
}

int kc_api_snapshot_revert(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"start", NULL};
	_cleanup_free_ char *snap = snap_param(c, err);
	_cleanup_json_ json_t *body = NULL;
	bool start = false;

	if (!snap || kc_http_read_json(c->req, false, &body, err) < 0)
		return -1;
	if (body && (kc_json_check_keys(body, keys, "revert request", err) < 0 ||
		     kc_json_get_bool(body, "start", false, &start, err) < 0))
		return -1;
	_cleanup_json_ json_t *args = json_pack("{s:s,s:b}", "snapshot", snap, "start", start);
	return kc_jobs_serve(c, "vm.snapshot.revert", c->name, args, 200, err);
}

int kc_snapshot_op(struct kc_server *srv, const char *kind, const char *vm, const json_t *args,
		   json_t **ret, struct kc_error *err)
{
	if (!json_is_object(args))
		return kc_error_set(err, KC_ERR_INTERNAL, "job %s without arguments", kind);
	if (strcmp(kind, "vm.snapshot.revert") == 0)
		return kc_vm_op_action(srv, kind, vm, args, ret, err);
	if (strcmp(kind, "vm.snapshot.create") == 0)
		return snap_call(srv, vm, kind, json_deep_copy(args), ret, err);
	return kc_error_set(err, KC_ERR_INTERNAL, "unknown job kind \"%s\"", kind);
}
