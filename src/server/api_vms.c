/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_vms.c - the VM routes.
 *
 * The database holds what kvmcloud was asked to create; libvirt (through
 * the agent) is the truth about what exists and its state.  Views merge the
 * two: a record without a domain is "missing" (or "creating" while a create
 * runs), a domain without a record is shown with "managed": false and is
 * not ours to act on.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "http_util.h"
#include "json_util.h"
#include "reconcile.h"
#include "vmspec.h"

#define LOG_DEFAULT_MAX		 (64 * 1024)
#define LOG_MAX			 (1024 * 1024)
#define SHUTDOWN_DEFAULT_TIMEOUT 60
#define SHUTDOWN_MAX_TIMEOUT	 3600

static void request_clearp(struct kc_vm_request *r)
{
	kc_vm_request_clear(r);
}

/* The API's VM object from a live domain and/or a record (either may be
 * NULL, not both). */
static json_t *vm_view(struct kc_server *srv, const json_t *live, const json_t *row)
{
	json_t *o;

	if (live) {
		o = json_deep_copy(live);
		json_object_set_new(o, "managed", json_boolean(row != NULL));
		if (row) {
			json_object_set(o, "host", json_object_get(row, "host"));
			if (!json_object_get(o, "created_at"))
				json_object_set(o, "created_at",
						json_object_get(row, "created_at"));
		} else if (!json_object_get(o, "host")) {
			json_object_set_new(o, "host", json_string(srv->host_name));
		}
		return o;
	}

	const char *state = json_string_value(json_object_get(row, "state"));
	const json_t *req = json_object_get(row, "request");
	o = json_pack("{s:O,s:O,s:O,s:s,s:b,s:O}", "name", json_object_get(row, "name"), "uuid",
		      json_object_get(row, "uuid"), "host", json_object_get(row, "host"), "state",
		      state && strcmp(state, "creating") == 0 ? "creating" : "missing", "managed",
		      1, "created_at", json_object_get(row, "created_at"));
	/* What was asked for, so that a missing VM still says what it was. */
	static const char *const copied[] = {"vcpus", "memory_mib", "image", "autostart",
					     "graphics"};
	for (size_t i = 0; o && json_is_object(req) && i < KC_ARRAY_SIZE(copied); i++) {
		json_t *v = json_object_get(req, copied[i]);
		if (v)
			json_object_set(o, copied[i], v);
	}
	return o;
}

/* Fetches a VM's record and live view; either may come back NULL, both
 * NULL is KC_ERR_NOT_FOUND. */
static int vm_lookup(struct kc_server *srv, const char *name, json_t **ret_row, json_t **ret_live,
		     struct kc_error *err)
{
	struct kc_error e = {0};
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *live = NULL;

	if (srv->db->ops->vm_get(srv->db, name, &row, &e) < 0) {
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
		kc_error_clear(&e);
	}
	if (kc_agent_vm_show(srv->agent, name, &live, &e) < 0) {
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
	}
	if (!row && !live)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "VM \"%s\" not found", name);
	*ret_row = steal_ptr(&row);
	*ret_live = steal_ptr(&live);
	return 0;
}

int kc_api_require_managed(struct kc_server *srv, const char *name, json_t **ret_row,
			   struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *live = NULL;

	if (vm_lookup(srv, name, &row, &live, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(
			err, KC_ERR_FORBIDDEN,
			"VM \"%s\" was not created by kvmcloud; it is shown but not managed", name);
	if (ret_row)
		*ret_row = steal_ptr(&row);
	return 0;
}

/* kc_api_require_managed(), and the record is not 'creating': until the
 * create has stored its result, acting on the name would race with it
 * (e.g. a delete finding no domain yet and removing the record). */
static int require_settled(struct kc_server *srv, const char *name, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (kc_api_require_managed(srv, name, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (state && strcmp(state, "creating") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" is being created", name);
	return 0;
}

static int respond_vm(struct kc_call *c, unsigned status, json_t *extra, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *ex = extra;

	if (vm_lookup(c->srv, c->name, &row, &live, err) < 0)
		return -1;
	/* Keep the record's state column near libvirt's truth. */
	const char *st = json_string_value(json_object_get(live, "state"));
	if (row && st)
		c->srv->db->ops->vm_note_state(c->srv->db, c->name, st, NULL);
	json_t *o = vm_view(c->srv, live, row);
	if (ex)
		json_object_update(o, ex);
	kc_http_json(c->resp, status, o);
	return 0;
}

int kc_api_vms_list(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *by_name = NULL;
	size_t i;
	json_t *v;

	if (srv->db->ops->vm_list(srv->db, &rows, err) < 0 ||
	    kc_agent_vm_list(srv->agent, &live, err) < 0)
		return -1;
	by_name = kc_index_by_name(rows);
	if (!by_name)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	json_t *out = json_array();
	json_array_foreach(live, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		json_t *row = name ? json_object_get(by_name, name) : NULL;
		json_array_append_new(out, vm_view(srv, v, row));
		if (row)
			json_object_del(by_name, name);
	}
	/* Records libvirt does not know: missing, or still being created. */
	json_array_foreach(rows, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		if (name && json_object_get(by_name, name))
			json_array_append_new(out, vm_view(srv, NULL, v));
	}
	kc_http_json(c->resp, 200, json_pack("{s:o}", "vms", out));
	return 0;
}

int kc_api_vm_show(struct kc_call *c, struct kc_error *err)
{
	return respond_vm(c, 200, NULL, err);
}

/* Undoes a create whose result could not be recorded: a domain without a
 * record would be unmanaged, every action on it 403, its disks stranded. */
static void rollback_create(struct kc_server *srv, const char *name)
{
	struct kc_error e = {0};

	/* Delete refuses a running VM; destroy fails harmlessly on a stopped one. */
	kc_agent_vm_destroy(srv->agent, name, &e);
	kc_error_clear(&e);
	if (kc_agent_vm_delete(srv->agent, name, true, &e) < 0) {
		fprintf(stderr, "warning: VM \"%s\": could not roll back its create: %s\n", name,
			e.message);
		kc_error_clear(&e);
	}
	/* Gone already, or a record a failing database still holds: either
	 * way it must not outlive the domain ('creating' blocks every action). */
	if (srv->db->ops->vm_delete(srv->db, name, &e) < 0) {
		fprintf(stderr, "warning: VM \"%s\": could not remove its record: %s\n", name,
			e.message);
		kc_error_clear(&e);
	}
}

int kc_api_vm_create(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *created = NULL;
	_cleanup_json_ json_t *stored = NULL;
	_cleanup_(request_clearp) struct kc_vm_request req = {0};
	struct kc_error e = {0};

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_vm_request_from_json(body, &req, err) < 0)
		return -1;

	/* A domain of that name that kvmcloud does not know is a conflict too:
	 * we never adopt or overwrite someone else's VM. */
	if (kc_agent_vm_show(srv->agent, req.name, &live, &e) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" already exists in libvirt",
				    req.name);
	if (e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}

	stored = kc_vm_request_to_json(&req);
	if (!stored)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* The record first: its primary key makes two creates of one name
	 * race safely, and a server killed mid-create leaves a 'creating'
	 * record for reconcile.c to settle. */
	if (srv->db->ops->vm_insert(srv->db, req.name, srv->host_name, "creating", stored, err) < 0)
		return -1;

	if (kc_agent_vm_create(srv->agent, &req, &created, err) < 0) {
		struct kc_error ignored = {0};
		if (srv->db->ops->vm_delete(srv->db, req.name, &ignored) < 0)
			fprintf(stderr,
				"warning: VM \"%s\": create failed and its record could "
				"not be removed: %s\n",
				req.name, ignored.message);
		return -1;
	}
	const char *uuid = json_string_value(json_object_get(created, "uuid"));
	const char *state = json_string_value(json_object_get(created, "state"));
	if (srv->db->ops->vm_update(srv->db, req.name, uuid, state ? state : "unknown", err) < 0) {
		rollback_create(srv, req.name);
		if (err->code == KC_ERR_NOT_FOUND) {
			kc_error_clear(err);
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "VM \"%s\": its record was removed while it was being "
					    "created; the new VM has been deleted",
					    req.name);
		}
		return -1;
	}

	_cleanup_json_ json_t *row = NULL;
	srv->db->ops->vm_get(srv->db, req.name, &row, NULL);
	kc_http_json(c->resp, 201, vm_view(srv, created, row));
	return 0;
}

/* The actions that are one agent call on a settled VM. */
static const struct {
	const char *verb;
	int (*run)(struct kc_agent *agent, const char *name, struct kc_error *err);
} simple_actions[] = {
	{"start", kc_agent_vm_start},
	{"reboot", kc_agent_vm_reboot},
	{"destroy", kc_agent_vm_destroy},
};

static int simple_action(struct kc_call *c, const char *verb, struct kc_error *err)
{
	for (size_t i = 0; i < KC_ARRAY_SIZE(simple_actions); i++) {
		if (strcmp(simple_actions[i].verb, verb) != 0)
			continue;
		if (require_settled(c->srv, c->name, err) < 0 ||
		    simple_actions[i].run(c->srv->agent, c->name, err) < 0)
			return -1;
		return respond_vm(c, 200, NULL, err);
	}
	return kc_error_set(err, KC_ERR_INTERNAL, "no action \"%s\"", verb);
}

int kc_api_vm_start(struct kc_call *c, struct kc_error *err)
{
	return simple_action(c, "start", err);
}

int kc_api_vm_reboot(struct kc_call *c, struct kc_error *err)
{
	return simple_action(c, "reboot", err);
}

int kc_api_vm_destroy(struct kc_call *c, struct kc_error *err)
{
	return simple_action(c, "destroy", err);
}

int kc_api_vm_shutdown(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"timeout_s", "force", NULL};
	_cleanup_json_ json_t *body = NULL;
	uint64_t timeout = SHUTDOWN_DEFAULT_TIMEOUT;
	bool force = false, forced = false;

	if (kc_http_read_json(c->req, false, &body, err) < 0)
		return -1;
	if (body && (kc_json_check_keys(body, keys, "shutdown request", err) < 0 ||
		     kc_json_get_uint(body, "timeout_s", false, 0, SHUTDOWN_MAX_TIMEOUT, &timeout,
				      err) < 0 ||
		     kc_json_get_bool(body, "force", false, &force, err) < 0))
		return -1;
	if (require_settled(c->srv, c->name, err) < 0 ||
	    kc_agent_vm_shutdown(c->srv->agent, c->name, (unsigned)timeout, force, &forced, err) <
		    0)
		return -1;
	return respond_vm(c, 200, json_pack("{s:b}", "forced", forced), err);
}

int kc_api_vm_delete(struct kc_call *c, struct kc_error *err)
{
	struct kc_error e = {0};
	bool keep = false;

	if (kc_http_query_bool(c->req, "keep_disks", &keep, err) < 0 ||
	    require_settled(c->srv, c->name, err) < 0)
		return -1;
	bool disks_deleted = !keep;
	if (kc_agent_vm_delete(c->srv->agent, c->name, !keep, &e) < 0) {
		/* Already gone from libvirt ("missing"): only the record is left. */
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
		disks_deleted = false;
	}
	if (c->srv->db->ops->vm_delete(c->srv->db, c->name, err) < 0)
		return -1;
	kc_http_json(c->resp, 200,
		     json_pack("{s:s,s:b}", "deleted", c->name, "disks_deleted", disks_deleted));
	return 0;
}

int kc_api_vm_log(struct kc_call *c, struct kc_error *err)
{
	uint64_t offset = 0, max = LOG_DEFAULT_MAX, tail = 0, next = 0, size = 0;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	char hdr[32];

	if (kc_http_query_uint(c->req, "offset", 0, UINT64_MAX, &offset, err) < 0 ||
	    kc_http_query_uint(c->req, "max", 1, LOG_MAX, &max, err) < 0 ||
	    kc_http_query_uint(c->req, "tail", 1, LOG_MAX, &tail, err) < 0)
		return -1;
	if (tail && (kc_http_query(c->req, "offset") || kc_http_query(c->req, "max")))
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"tail\" cannot be combined with \"offset\" or \"max\"");
	if (kc_api_require_managed(c->srv, c->name, NULL, err) < 0)
		return -1;
	if (tail) {
		/* Learn the size first, then read the last `tail` bytes. */
		_cleanup_free_ char *probe = NULL;
		size_t plen;
		if (kc_agent_vm_log_read(c->srv->agent, c->name, 0, 1, &probe, &plen, &next, &size,
					 err) < 0)
			return -1;
		offset = size > tail ? size - tail : 0;
		max = tail;
	}
	if (kc_agent_vm_log_read(c->srv->agent, c->name, offset, (size_t)max, &buf, &len, &next,
				 &size, err) < 0)
		return -1;
	ulfius_set_binary_body_response(c->resp, 200, buf ? buf : "", len);
	u_map_put(c->resp->map_header, "Content-Type", "text/plain; charset=utf-8");
	snprintf(hdr, sizeof(hdr), "%" PRIu64, next);
	u_map_put(c->resp->map_header, "X-Log-Next-Offset", hdr);
	snprintf(hdr, sizeof(hdr), "%" PRIu64, size);
	u_map_put(c->resp->map_header, "X-Log-Size", hdr);
	return 0;
}
