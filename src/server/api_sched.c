/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_sched.c - the routes around placement: a host's maintenance mode
 * and the import of a libvirt domain kvmcloud has no record of.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"
#include "scheduler.h"
#include "server.h"
#include "validate.h"

int kc_api_host_maintenance(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"enabled", NULL};
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *row = NULL;
	bool enabled = false;

	if (!kc_authz_is_admin(c))
		return kc_error_set(err, KC_ERR_FORBIDDEN, "only an admin may set maintenance");
	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "maintenance request", err) < 0 ||
	    kc_json_get_bool(body, "enabled", true, &enabled, err) < 0 ||
	    kc_db_host_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (state && strcmp(state, "Pending") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "host \"%s\" has not joined yet",
				    c->name);
	const char *to = NULL;
	if (enabled)
		to = "Maintenance";
	else if (state && strcmp(state, "Maintenance") == 0)
		/* Heartbeats keep a connected host Up; a silent one is made
		 * Disconnected by the staleness thread, as for any Up host. */
		to = kc_host_reachable(c->srv, c->name) ? "Up" : "Disconnected";
	if (to && kc_db_host_set_state(c->srv->db, c->name, to, err) < 0)
		return -1;
	fprintf(stderr, "host %s: maintenance %s\n", c->name, enabled ? "on" : "off");
	return kc_api_host_show(c, err);
}

/* The host whose libvirt has domain `name`: `requested` if given, else
 * the first reachable host (by name) that has it.  *ret_live its view. */
static int find_domain(struct kc_server *srv, const char *name, const char *requested,
		       char **ret_host, json_t **ret_live, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *args = json_pack("{s:s}", "name", name);
	size_t i;
	json_t *row;

	if (!args || kc_db_host_list(srv->db, &rows, err) < 0)
		return args ? -1 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_array_foreach(rows, i, row)
	{
		const char *h = json_string_value(json_object_get(row, "name"));
		struct kc_error e = {0};
		if (!h || (requested && strcmp(h, requested) != 0) || !kc_host_reachable(srv, h))
			continue;
		if (kc_host_call(srv, h, "vm.show", args, ret_live, &e) == 0) {
			*ret_host = strdup(h);
			return *ret_host ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
	}
	return kc_error_set(err, KC_ERR_NOT_FOUND, "no connected host%s%s has a domain \"%s\"",
			    requested ? " named " : "", requested ? requested : "", name);
}

int kc_api_vm_import(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"owner", "host", NULL};
	struct kc_server *srv = c->srv;
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *domains = NULL;
	_cleanup_free_ char *host = NULL;
	const char *owner = KC_DB_ADMIN_USER;
	const char *requested = NULL;
	struct kc_error e = {0};

	if (!kc_authz_is_admin(c))
		return kc_error_set(err, KC_ERR_FORBIDDEN, "only an admin may import VMs");
	if (kc_http_read_json(c->req, false, &body, err) < 0)
		return -1;
	if (body && (kc_json_check_keys(body, keys, "import request", err) < 0 ||
		     kc_json_get_string(body, "owner", false, KC_NAME_MAX, &owner, err) < 0 ||
		     kc_json_get_string(body, "host", false, KC_NAME_MAX, &requested, err) < 0))
		return -1;
	if (kc_name_validate(owner, "user name", err) < 0 ||
	    (requested && kc_name_validate(requested, "host name", err) < 0))
		return -1;
	if (kc_db_vm_get(srv->db, c->name, &row, &e) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" is already managed", c->name);
	if (e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	if (find_domain(srv, c->name, requested, &host, &live, err) < 0)
		return -1;

	/* What the record says was asked for is what the domain has; its
	 * sizes then count against the host's room and the owner's quota. */
	_cleanup_json_ json_t *request = json_pack(
		"{s:s,s:O,s:O,s:b}", "name", c->name, "vcpus", json_object_get(live, "vcpus"),
		"memory_mib", json_object_get(live, "memory_mib"), "imported", 1);
	if (!request)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	const char *state = json_string_value(json_object_get(live, "state"));
	if (kc_db_vm_insert(srv->db,
			    &(struct kc_db_vm){.name = c->name,
					       .host = host,
					       .state = state ? state : "unknown",
					       .owner = owner,
					       .request = request},
			    false, err) < 0)
		return -1;
	const char *uuid = json_string_value(json_object_get(live, "uuid"));
	if (uuid)
		kc_db_vm_update(srv->db, c->name, uuid, state ? state : "unknown", NULL);
	fprintf(stderr, "host %s: VM %s imported (owner %s)\n", host, c->name, owner);

	/* One fewer unmanaged domain there. */
	if (kc_host_call(srv, host, "vm.list", NULL, &domains, &e) == 0) {
		json_t *list = json_is_array(domains) ? domains
						      : json_object_get(domains, "vms");
		kc_note_unmanaged(srv->db, host, list, NULL);
	}
	json_object_set_new(live, "managed", json_true());
	json_object_set_new(live, "host", json_string(host));
	json_object_set_new(live, "owner", json_string(owner));
	kc_http_json(c->resp, 201, steal_ptr(&live));
	return 0;
}
