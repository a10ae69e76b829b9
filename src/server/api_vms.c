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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "clones.h"
#include "cluster.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"
#include "reconcile.h"
#include "validate.h"
#include "agentlink.h"
#include "vmspec.h"
#include "jobs.h"
#include "images.h"
#include "vm_ops.h"
#include "volumes.h"
#include "db_vm_list.h"
#include "gnet_host.h"
#include "db_secgroups.h"
#include "ipam.h"
#include "vm_sg.h"

#define LOG_DEFAULT_MAX		 (64 * 1024)
#define LOG_MAX			 (1024 * 1024)
#define SHUTDOWN_DEFAULT_TIMEOUT 60
#define SHUTDOWN_MAX_TIMEOUT	 3600
/* What one vm.log call asks for: its base64 must fit in a protocol frame. */
#define LOG_CALL_MAX (512 * 1024)

static void request_clearp(struct kc_vm_request *r)
{
	kc_vm_request_clear(r);
}

/* Runs `op` on `host` for the VM `name`; `args` (stolen, may be NULL)
 * gets "name" added.  ret may be NULL. */
static int vm_call(struct kc_server *srv, const char *host, const char *op, const char *name,
		   json_t *args, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *a = args ? args : json_object();
	_cleanup_json_ json_t *res = NULL;

	if (!a || json_object_set_new(a, "name", json_string(name)) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_host_call(srv, host, op, a, &res, err) < 0)
		return -1;
	if (ret)
		*ret = steal_ptr(&res);
	return 0;
}

/* The host a VM's operations go to: its record's, else (a domain without a
 * record) the embedded agent's host, if any. */
static const char *vm_host(struct kc_server *srv, const json_t *row)
{
	const char *h = json_string_value(json_object_get(row, "host"));

	return h ? h : srv->agent ? srv->host_name : NULL;
}

static bool link_down(const struct kc_error *e)
{
	return e->code == KC_ERR_UNAVAILABLE || e->code == KC_ERR_TIMEOUT;
}

/* The API's VM object from a live domain and/or a record (either may be
 * NULL, not both).  `host` names the host a live domain came from;
 * `unreachable`: the record's host did not answer, so its state column
 * is the last known state rather than "missing". */
static json_t *vm_view(const char *host, const json_t *live, const json_t *row, bool unreachable)
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
			/* Where its disks are and how they were made (vm_clone.c). */
			const json_t *rq = json_object_get(row, "request");
			json_t *pool = json_object_get(rq, "pool"),
			       *clone = json_object_get(rq, "clone");
			if (json_is_string(pool))
				json_object_set(o, "pool", pool);
			if (json_is_string(clone))
				json_object_set(o, "clone", clone);
		} else if (!json_object_get(o, "host") && host) {
			json_object_set_new(o, "host", json_string(host));
		}
		return o;
	}

	const char *state = json_string_value(json_object_get(row, "state"));
	const json_t *req = json_object_get(row, "request");
	if (!state || (strcmp(state, "creating") != 0 && !unreachable))
		state = "missing";
	o = json_pack("{s:O,s:O,s:O,s:s,s:b,s:O}", "name", json_object_get(row, "name"), "uuid",
		      json_object_get(row, "uuid"), "host", json_object_get(row, "host"), "state",
		      state, "managed", 1, "created_at", json_object_get(row, "created_at"));
	if (o && unreachable)
		json_object_set_new(o, "host_reachable", json_false());
	/* What was asked for, so that a missing VM still says what it was. */
	static const char *const copied[] = {"vcpus",	 "memory_mib", "image", "autostart",
					     "graphics", "pool",       "clone"};
	for (size_t i = 0; o && json_is_object(req) && i < KC_ARRAY_SIZE(copied); i++) {
		json_t *v = json_object_get(req, copied[i]);
		if (v)
			json_object_set(o, copied[i], v);
	}
	return o;
}

/* Fetches a VM's record and live view; either may come back NULL, both
 * NULL is KC_ERR_NOT_FOUND.  A record whose host cannot be reached comes
 * back with *ret_unreachable set (may be NULL) and no live view. */
static int vm_lookup(struct kc_server *srv, const char *name, json_t **ret_row, json_t **ret_live,
		     bool *ret_unreachable, struct kc_error *err)
{
	struct kc_error e = {0};
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *live = NULL;

	if (kc_db_vm_get(srv->db, name, &row, &e) < 0) {
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
		kc_error_clear(&e);
	}
	const char *host = vm_host(srv, row);
	bool unreachable = false;
	if (host && vm_call(srv, host, "vm.show", name, NULL, &live, &e) < 0) {
		if (row && link_down(&e)) {
			unreachable = true;
		} else if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
	}
	if (ret_unreachable)
		*ret_unreachable = unreachable;
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

	if (vm_lookup(srv, name, &row, &live, NULL, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(
			err, KC_ERR_FORBIDDEN,
			"VM \"%s\" was not created by kvmcloud; it is shown but not managed", name);
	if (ret_row)
		*ret_row = steal_ptr(&row);
	return 0;
}

/* The VM object actions answer with; `extra` (stolen, may be NULL) merged in. */
static int vm_result(struct kc_server *srv, const char *name, json_t *extra, json_t **ret,
		     struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *ex = extra;
	bool unreachable = false;

	if (vm_lookup(srv, name, &row, &live, &unreachable, err) < 0)
		return -1;
	/* Keep the record's state column near libvirt's truth. */
	const char *st = json_string_value(json_object_get(live, "state"));
	if (row && st)
		kc_db_vm_note_state(srv->db, name, st, NULL);
	json_t *o = vm_view(vm_host(srv, row), live, row, unreachable);
	if (!o)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (ex)
		json_object_update(o, ex);
	*ret = o;
	return 0;
}

static int respond_vm(struct kc_call *c, unsigned status, json_t *extra, struct kc_error *err)
{
	json_t *o = NULL;

	if (vm_result(c->srv, c->name, extra, &o, err) < 0)
		return -1;
	kc_http_json(c->resp, status, o);
	return 0;
}

/* The hosts a VM list asks: the embedded agent's and every connected one. */
static json_t *hosts_to_ask(struct kc_server *srv)
{
	json_t *hosts = srv->alink ? kc_agentlink_hosts(srv->alink) : json_array();

	if (hosts && srv->agent && srv->host_name)
		json_array_insert_new(hosts, 0, json_string(srv->host_name));
	return hosts;
}

/* GET /vms?live=true: the records merged with every connected host's
 * vm.list, asked one after the other (slow with many hosts), and, for an
 * admin, the domains kvmcloud has no record of ("managed": false). */
static int vms_list_live(struct kc_call *c, struct kc_error *err)
{
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *by_name = NULL;
	_cleanup_json_ json_t *hosts = NULL;
	_cleanup_json_ json_t *answered = json_object();
	size_t i, j;
	json_t *v, *h;

	/* A user sees only their own records, never others' domains. */
	const char *owner = kc_authz_vm_owner(c);
	if (kc_db_vm_list(srv->db, owner, &rows, err) < 0)
		return -1;
	by_name = kc_index_by_name(rows);
	hosts = hosts_to_ask(srv);
	if (!by_name || !hosts || !answered)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	json_t *out = json_array();
	json_array_foreach(hosts, j, h)
	{
		const char *host = json_string_value(h);
		_cleanup_json_ json_t *live = NULL;
		struct kc_error e = {0};

		if (kc_host_call(srv, host, "vm.list", NULL, &live, &e) < 0) {
			/* The embedded agent failing is the request failing, as
			 * before; a remote host's records show their last state. */
			if (kc_host_is_local(srv, host)) {
				json_decref(out);
				*err = e;
				return -1;
			}
			continue;
		}
		json_object_set_new(answered, host, json_true());
		json_array_foreach(live, i, v)
		{
			const char *name = json_string_value(json_object_get(v, "name"));
			json_t *row = name ? json_object_get(by_name, name) : NULL;
			const char *rhost = json_string_value(json_object_get(row, "host"));
			/* Same name on another host: someone else's domain. */
			if (row && (!rhost || strcmp(rhost, host) != 0))
				row = NULL;
			if (!row && owner)
				continue;
			json_array_append_new(out, vm_view(host, v, row, false));
			if (row)
				json_object_del(by_name, name);
		}
	}
	/* Records no host reported: missing, being created, or on a host
	 * that is not connected (last known state). */
	json_array_foreach(rows, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *rhost = json_string_value(json_object_get(v, "host"));
		if (name && json_object_get(by_name, name))
			json_array_append_new(out,
					      vm_view(NULL, NULL, v,
						      !rhost || !json_object_get(answered, rhost)));
	}
	kc_http_json(c->resp, 200, json_pack("{s:o}", "vms", out));
	return 0;
}

/* The state a VM list shows for `host` (its hosts row says `row_state`):
 * the embedded agent's host is as up as its libvirt connection, as in
 * GET /hosts. */
static const char *list_host_state(struct kc_server *srv, const char *host, const char *row_state)
{
	if (host && kc_host_is_local(srv, host) &&
	    !(row_state && strcmp(row_state, "Maintenance") == 0))
		return kc_agent_is_connected(srv->agent) ? "Up" : "Down";
	return row_state;
}

/* One VM of the list from a kc_db_vm_list_view row. */
static json_t *list_item(struct kc_server *srv, const json_t *row)
{
	const char *host = json_string_value(json_object_get(row, "host"));
	const char *hstate =
		list_host_state(srv, host, json_string_value(json_object_get(row, "host_state")));
	const json_t *req = json_object_get(row, "request");
	static const char *const copied[] = {"name",	   "uuid",	 "host",
					     "state",	   "owner",	 "vcpus",
					     "memory_mib", "created_at", "updated_at"};
	json_t *o = json_object();

	for (size_t i = 0; o && i < KC_ARRAY_SIZE(copied); i++)
		json_object_set(o, copied[i], json_object_get(row, copied[i]));
	if (!o || json_object_set_new(o, "managed", json_true()) < 0 ||
	    json_object_set_new(o, "host_state", hstate ? json_string(hstate) : json_null()) < 0) {
		json_decref(o);
		return NULL;
	}
	/* Up or Maintenance: its agent reports, so the state is current. */
	if (!hstate || (strcmp(hstate, "Up") != 0 && strcmp(hstate, "Maintenance") != 0))
		json_object_set_new(o, "host_reachable", json_false());
	/* What was asked for; an imported VM's request has none of these. */
	json_t *v = json_object_get(req, "image");
	json_object_set(o, "image", json_is_string(v) ? v : json_null());
	v = json_object_get(req, "autostart");
	json_object_set_new(o, "autostart", json_boolean(json_is_true(v)));
	v = json_object_get(req, "graphics");
	json_object_set(o, "graphics", json_is_string(v) ? v : json_null());
	return o;
}

int kc_api_vms_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	bool live = false;
	size_t i;
	json_t *row;

	if (kc_http_query_bool(c->req, "live", &live, err) < 0)
		return -1;
	if (live)
		return vms_list_live(c, err);
	/* The database's view, one query: states are kept current by the
	 * hosts' lifecycle events, their hello (reconciliation) and every
	 * action's answer, so no host is asked.  A user sees their own. */
	if (kc_db_vm_list_view(c->srv->db, kc_authz_vm_owner(c), &rows, err) < 0)
		return -1;
	json_t *out = json_array();
	json_array_foreach(rows, i, row)
	{
		json_t *o = list_item(c->srv, row);
		if (!out || !o || json_array_append_new(out, o) < 0) {
			json_decref(out);
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
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
static void rollback_create(struct kc_server *srv, const char *host, const char *name)
{
	struct kc_error e = {0};

	/* Delete refuses a running VM; destroy fails harmlessly on a stopped one. */
	vm_call(srv, host, "vm.destroy", name, NULL, NULL, &e);
	kc_error_clear(&e);
	if (vm_call(srv, host, "vm.delete", name, json_pack("{s:b}", "with_disks", 1), NULL, &e) <
	    0) {
		fprintf(stderr, "warning: VM \"%s\": could not roll back its create: %s\n", name,
			e.message);
		kc_error_clear(&e);
	}
	/* Gone already, or a record a failing database still holds: either
	 * way it must not outlive the domain ('creating' blocks every action). */
	if (kc_db_vm_delete(srv->db, name, &e) < 0) {
		fprintf(stderr, "warning: VM \"%s\": could not remove its record: %s\n", name,
			e.message);
		kc_error_clear(&e);
	}
}

/* Splits a create body (a copy is made) into the VM request and the
 * optional "host" (*ret_host, malloc'd or NULL). */
static int create_parse(const json_t *request, struct kc_vm_request *ret_req, char **ret_host,
			struct kc_error *err)
{
	_cleanup_json_ json_t *body = json_deep_copy(request);
	_cleanup_free_ char *requested = NULL;

	if (!json_is_object(body))
		return kc_error_set(err, KC_ERR_INVALID, "the VM request must be a JSON object");
	/* "host" is the server's business, not part of the VM request. */
	json_t *hv = json_object_get(body, "host");
	if (hv) {
		if (!json_is_string(hv))
			return kc_error_set(err, KC_ERR_INVALID, "\"host\" must be a string");
		if (kc_name_validate(json_string_value(hv), "host name", err) < 0)
			return -1;
		requested = strdup(json_string_value(hv));
		if (!requested)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		json_object_del(body, "host");
	}
	/* So are "zone", "cluster" and "group" (placement.c). */
	if (kc_placement_check(body, err) < 0)
		return -1;
	kc_placement_strip(body);
	/* And its security groups (vm_sg.h), checked by kc_api_vm_create. */
	json_object_del(body, "security_groups");
	if (kc_vm_request_from_json(body, ret_req, err) < 0)
		return -1;
	*ret_host = steal_ptr(&requested);
	return 0;
}

int kc_api_vm_create(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *body = NULL;
	_cleanup_(request_clearp) struct kc_vm_request req = {0};
	_cleanup_free_ char *requested = NULL;

	if (kc_http_read_json(c->req, true, &body, err) < 0)
		return -1;
	if (json_object_get(body, "host") && !kc_authz_is_admin(c))
		return kc_error_set(err, KC_ERR_FORBIDDEN, "only an admin may name the host");
	/* Bad requests are refused now, not queued as jobs bound to fail. */
	if (create_parse(body, &req, &requested, err) < 0 ||
	    kc_vm_pool_check(c->srv, body, err) < 0)
		return -1;
	json_t *sgs = json_object_get(body, "security_groups");
	const char *sg_names[KC_SG_GROUPS_PER_VM];
	size_t n_sg = 0;
	if (sgs && kc_vm_sg_names(c->srv->db, sgs, c->who.user, kc_authz_is_admin(c), sg_names,
				  &n_sg, err) < 0)
		return -1;
	return kc_jobs_serve(c, "vm.create", req.name, body, 201, err);
}

static void ipam_clearp(struct kc_ipam *ip)
{
	kc_ipam_clear(ip);
}

int kc_vm_op_create(struct kc_server *srv, const char *owner, const json_t *request,
		    kc_progress_fn progress, void *opaque, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *created = NULL;
	_cleanup_json_ json_t *stored = NULL;
	_cleanup_free_ char *host = NULL;
	_cleanup_(request_clearp) struct kc_vm_request req = {0};
	_cleanup_free_ char *requested = NULL;
	struct kc_error e = {0};

	if (create_parse(request, &req, &requested, err) < 0)
		return -1;
	/* Guest-network NICs get their MAC and address in the insert's
	 * transaction (ipam.h); ipam_clearp releases the JSON only. */
	_cleanup_(ipam_clearp) struct kc_ipam ipam = {.req = &req};
	stored = kc_vm_request_to_json(&req);
	if (!stored)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* A pool other than "default" decides where the VM may go (vm_clone.c). */
	_cleanup_json_ json_t *placed = NULL;
	_cleanup_free_ char *pool_host = NULL;
	if (kc_vm_pool_place(srv, request, requested, &placed, &pool_host, err) < 0)
		return -1;
	/* The record first: its primary key makes two creates of one name
	 * race safely, and a server killed mid-create leaves a 'creating'
	 * record for reconcile.c to settle.  The scheduler chooses the host
	 * in the same transaction, so the record reserves its room there. */
	if (kc_place_and_record(
		    srv, placed ? placed : request, requested ? requested : pool_host,
		    &(struct kc_db_vm){.name = req.name,
				       .state = "creating",
				       .owner = owner,
				       .request = stored,
				       .in_tx = kc_ipam_needed(&req) ? kc_ipam_allocate_tx : NULL,
				       .in_tx_opaque = &ipam},
		    true, &host, err) < 0)
		return -1;

	/* A domain of that name that kvmcloud does not know is a conflict too:
	 * we never adopt or overwrite someone else's VM. */
	if (vm_call(srv, host, "vm.show", req.name, NULL, &live, &e) == 0 ||
	    e.code != KC_ERR_NOT_FOUND) {
		kc_db_vm_delete(srv->db, req.name, NULL);
		if (e.code != KC_ERR_NOT_FOUND && kc_error_is_set(&e)) {
			*err = e;
			return -1;
		}
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "VM \"%s\" already exists in libvirt on host \"%s\"", req.name,
				    host);
	}
	if (progress)
		progress(opaque, 30);

	/* The agent gets each guest network's definition and the NIC's
	 * allocation with the request ("nic_defs", gnet.h). */
	_cleanup_json_ json_t *call_args = json_deep_copy(stored);
	if (!call_args ||
	    (ipam.nic_defs && json_object_set(call_args, "nic_defs", ipam.nic_defs) < 0)) {
		kc_db_vm_delete(srv->db, req.name, NULL);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	/* A VM with security groups is made stopped, gets its groups, then
	 * starts: behind its rules, an OVS NIC on the hybrid plug (vm_sg.h). */
	const json_t *sgs = json_object_get(request, "security_groups");
	bool sg_start = json_array_size(sgs) > 0 && req.start;
	if (sg_start)
		json_object_set_new(call_args, "start", json_false());
	/* Library images reach the host first (image_dist.c), and guest
	 * networks are made there (gnet_host.h). */
	if (kc_images_ensure_for_vm(srv, host, stored, err) < 0 ||
	    (ipam.networks && kc_gnet_ensure_on_host(srv, host, ipam.networks, err) < 0) ||
	    kc_vm_create_call(srv, host, call_args, progress, opaque, &created, err) < 0) {
		struct kc_error ignored = {0};
		if (!kc_host_is_local(srv, host) && link_down(err)) {
			/* The agent may still finish it: its next hello settles
			 * the record (docs/protocol.md, reconciliation). */
			kc_error_set(&ignored, err->code,
				     "%s; the VM record stays \"creating\" until host \"%s\" "
				     "reports back",
				     err->message, host);
			*err = ignored;
			return -1;
		}
		if (ipam.networks)
			kc_gnet_release_vm(srv, host, req.name);
		if (kc_db_vm_delete(srv->db, req.name, &ignored) < 0)
			fprintf(stderr,
				"warning: VM \"%s\": create failed and its record could "
				"not be removed: %s\n",
				req.name, ignored.message);
		return -1;
	}
	if (progress)
		progress(opaque, 90);
	const char *uuid = json_string_value(json_object_get(created, "uuid"));
	const char *state = json_string_value(json_object_get(created, "state"));
	if (kc_db_vm_update(srv->db, req.name, uuid, state ? state : "unknown", err) < 0) {
		rollback_create(srv, host, req.name);
		if (err->code == KC_ERR_NOT_FOUND) {
			kc_error_clear(err);
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "VM \"%s\": its record was removed while it was being "
					    "created; the new VM has been deleted",
					    req.name);
		}
		return -1;
	}

	if (json_array_size(sgs) > 0) {
		_cleanup_json_ json_t *started = NULL;
		/* The VM stays (stopped) if this fails: the error says so. */
		if (kc_vm_sg_attach_new(srv, req.name, host, sgs, err) < 0 ||
		    (sg_start &&
		     kc_vm_op_action(srv, "vm.start", req.name, NULL, &started, err) < 0))
			return -1;
		if (started) {
			*ret = steal_ptr(&started);
			return 0;
		}
	}

	_cleanup_json_ json_t *row = NULL;
	kc_db_vm_get(srv->db, req.name, &row, NULL);
	*ret = vm_view(host, created, row, false);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* require_settled(), then `op` on the VM's host; *ret (may be NULL) the result. */
static int settled_call(struct kc_server *srv, const char *name, const char *op, json_t *args,
			json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *a = args;

	if (kc_api_require_managed(srv, name, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (state && strcmp(state, "creating") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" is being created", name);
	return vm_call(srv, vm_host(srv, row), op, name, steal_ptr(&a), ret, err);
}

int kc_vm_op_action(struct kc_server *srv, const char *op, const char *name, const json_t *args,
		    json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *res = NULL;
	json_t *extra = NULL;

	/* Its guest networks first (gnet_host.h): after a host reboot the
	 * vxlan devices are gone, and the domain would not start. */
	if (strcmp(op, "vm.start") == 0) {
		_cleanup_json_ json_t *row = NULL;
		if (kc_db_vm_get(srv->db, name, &row, NULL) == 0 && vm_host(srv, row) &&
		    kc_gnet_ensure_for_vm(srv, vm_host(srv, row), name, err) < 0)
			return -1;
	}
	if (settled_call(srv, name, op, args ? json_deep_copy(args) : NULL, &res, err) < 0)
		return -1;
	if (strcmp(op, "vm.shutdown") == 0)
		extra = json_pack("{s:b}", "forced", json_is_true(json_object_get(res, "forced")));
	return vm_result(srv, name, extra, ret, err);
}

static int simple_action(struct kc_call *c, const char *op, struct kc_error *err)
{
	return kc_jobs_serve(c, op, c->name, NULL, 200, err);
}

int kc_api_vm_start(struct kc_call *c, struct kc_error *err)
{
	return simple_action(c, "vm.start", err);
}

int kc_api_vm_reboot(struct kc_call *c, struct kc_error *err)
{
	return simple_action(c, "vm.reboot", err);
}

int kc_api_vm_destroy(struct kc_call *c, struct kc_error *err)
{
	return simple_action(c, "vm.destroy", err);
}

int kc_api_vm_shutdown(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"timeout_s", "force", NULL};
	_cleanup_json_ json_t *body = NULL;
	uint64_t timeout = SHUTDOWN_DEFAULT_TIMEOUT;
	bool force = false;

	if (kc_http_read_json(c->req, false, &body, err) < 0)
		return -1;
	if (body && (kc_json_check_keys(body, keys, "shutdown request", err) < 0 ||
		     kc_json_get_uint(body, "timeout_s", false, 0, SHUTDOWN_MAX_TIMEOUT, &timeout,
				      err) < 0 ||
		     kc_json_get_bool(body, "force", false, &force, err) < 0))
		return -1;
	_cleanup_json_ json_t *args =
		json_pack("{s:I,s:b}", "timeout_s", (json_int_t)timeout, "force", force);
	return kc_jobs_serve(c, "vm.shutdown", c->name, args, 200, err);
}

int kc_api_vm_delete(struct kc_call *c, struct kc_error *err)
{
	bool keep = false, snapshots = false;

	if (kc_http_query_bool(c->req, "keep_disks", &keep, err) < 0 ||
	    kc_http_query_bool(c->req, "snapshots", &snapshots, err) < 0)
		return -1;
	/* Volumes are data, not the VM's disks: detached first (api_volumes.c). */
	if (kc_volumes_vm_check_free(c->srv, c->name, err) < 0)
		return -1;
	_cleanup_json_ json_t *args = json_pack("{s:b}", "keep_disks", keep);
	if (snapshots) /* only when given: the same body as before otherwise */
		json_object_set_new(args, "snapshots", json_true());
	return kc_jobs_serve(c, "vm.delete", c->name, args, 200, err);
}

int kc_vm_op_delete(struct kc_server *srv, const char *name, bool keep, bool snapshots,
		    json_t **ret, struct kc_error *err)
{
	struct kc_error e = {0};

	bool disks_deleted = !keep;
	json_t *args = json_pack("{s:b}", "with_disks", !keep);
	if (args && snapshots)
		json_object_set_new(args, "snapshots", json_true());
	if (settled_call(srv, name, "vm.delete", args, NULL, &e) < 0) {
		/* Already gone from libvirt ("missing"): only the record is left. */
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
		/* ...unless the VM itself was not found at all. */
		_cleanup_json_ json_t *row = NULL;
		if (kc_db_vm_get(srv->db, name, &row, NULL) < 0) {
			*err = e;
			return -1;
		}
		disks_deleted = false;
	}
	/* Its addresses go with the record (ON DELETE CASCADE); its static
	 * DHCP entries on the host go first. */
	_cleanup_json_ json_t *vrow = NULL, *groups = NULL;
	if (kc_db_vm_get(srv->db, name, &vrow, NULL) == 0)
		kc_gnet_release_vm(srv, vm_host(srv, vrow), name);
	/* Its groups go with the record too: read them for the push below. */
	if (kc_db_vm_sg_list(srv->db, name, &groups, NULL) < 0)
		groups = NULL;
	if (kc_db_vm_delete(srv->db, name, err) < 0)
		return -1;
	kc_vm_sg_after_delete(srv, vrow ? vm_host(srv, vrow) : NULL, groups);
	*ret = json_pack("{s:s,s:b}", "deleted", name, "disks_deleted", disks_deleted);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* One vm.log call: the bytes (malloc'd), next offset, size. */
static int log_read(struct kc_server *srv, const char *host, const char *name, uint64_t offset,
		    uint64_t max, char **ret_buf, size_t *ret_len, uint64_t *ret_next,
		    uint64_t *ret_size, struct kc_error *err)
{
	_cleanup_json_ json_t *res = NULL;
	const char *b64 = NULL;
	uint64_t next = 0, size = 0;

	if (max > LOG_CALL_MAX)
		max = LOG_CALL_MAX;
	if (vm_call(srv, host, "vm.log", name,
		    json_pack("{s:I,s:I}", "offset", (json_int_t)offset, "max", (json_int_t)max),
		    &res, err) < 0)
		return -1;
	if (kc_json_get_string(res, "data_base64", true, 2 * LOG_CALL_MAX, &b64, err) < 0 ||
	    kc_json_get_uint(res, "next", true, 0, UINT64_MAX, &next, err) < 0 ||
	    kc_json_get_uint(res, "size", true, 0, UINT64_MAX, &size, err) < 0)
		return -1;
	size_t cap = strlen(b64) / 4 * 3 + 3, len = 0;
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (sodium_base642bin((unsigned char *)buf, cap, b64, strlen(b64), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return kc_error_set(err, KC_ERR_HYPERVISOR, "host \"%s\": bad log data", host);
	*ret_buf = steal_ptr(&buf);
	*ret_len = len;
	*ret_next = next;
	*ret_size = size;
	return 0;
}

int kc_api_vm_log(struct kc_call *c, struct kc_error *err)
{
	uint64_t offset = 0, max = LOG_DEFAULT_MAX, tail = 0, next = 0, size = 0;
	_cleanup_free_ char *buf = NULL;
	_cleanup_json_ json_t *row = NULL;
	size_t len = 0;
	char hdr[32];

	if (kc_http_query_uint(c->req, "offset", 0, UINT64_MAX, &offset, err) < 0 ||
	    kc_http_query_uint(c->req, "max", 1, LOG_MAX, &max, err) < 0 ||
	    kc_http_query_uint(c->req, "tail", 1, LOG_MAX, &tail, err) < 0)
		return -1;
	if (tail && (kc_http_query(c->req, "offset") || kc_http_query(c->req, "max")))
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"tail\" cannot be combined with \"offset\" or \"max\"");
	if (kc_api_require_managed(c->srv, c->name, &row, err) < 0)
		return -1;
	const char *host = vm_host(c->srv, row);
	if (tail) {
		/* Learn the size first, then read the last `tail` bytes. */
		_cleanup_free_ char *probe = NULL;
		size_t plen;
		if (log_read(c->srv, host, c->name, 0, 1, &probe, &plen, &next, &size, err) < 0)
			return -1;
		if (tail > LOG_CALL_MAX)
			tail = LOG_CALL_MAX;
		offset = size > tail ? size - tail : 0;
		max = tail;
	}
	if (log_read(c->srv, host, c->name, offset, max, &buf, &len, &next, &size, err) < 0)
		return -1;
	ulfius_set_binary_body_response(c->resp, 200, buf ? buf : "", len);
	u_map_put(c->resp->map_header, "Content-Type", "text/plain; charset=utf-8");
	snprintf(hdr, sizeof(hdr), "%" PRIu64, next);
	u_map_put(c->resp->map_header, "X-Log-Next-Offset", hdr);
	snprintf(hdr, sizeof(hdr), "%" PRIu64, size);
	u_map_put(c->resp->map_header, "X-Log-Size", hdr);
	return 0;
}
