/* SPDX-License-Identifier: Apache-2.0 */
/* api_hosts.c - GET /hosts, GET /hosts/{name}, POST /hosts/{name}/check. */
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"

/* The API's Host object from a hosts row. */
static json_t *host_object(struct kc_server *srv, const json_t *row)
{
	const char *name = json_string_value(json_object_get(row, "name"));
	const char *state = json_string_value(json_object_get(row, "state"));
	json_t *check = json_object_get(row, "check_result");
	json_t *out_check = json_null();

	if (json_is_object(check)) {
		out_check = json_deep_copy(check);
		json_object_set(out_check, "checked_at", json_object_get(row, "checked_at"));
	}
	/* The embedded agent's host is as up as its libvirt connection; a
	 * remote host's state is what its heartbeats made it
	 * (docs/protocol.md, "Host states"). */
	bool local = kc_host_is_local(srv, name);
	if (local && !(state && strcmp(state, "Maintenance") == 0))
		state = kc_agent_is_connected(srv->agent) ? "Up" : "Down";
	json_t *flags = json_object_get(row, "flags");
	json_t *o = json_pack("{s:O,s:O,s:s,s:O,s:O,s:O,s:o,s:O,s:O,s:O,s:O,s:b,s:b}", "name",
			 json_object_get(row, "name"), "uuid", json_object_get(row, "uuid"),
			 "state", state ? state : "unknown", "accel", json_object_get(row, "accel"),
			 "accel_reason", json_object_get(row, "accel_reason"), "facts",
			 json_object_get(row, "facts"), "check", out_check, "updated_at",
			 json_object_get(row, "updated_at"), "zone", json_object_get(row, "zone"),
			 "cluster", json_object_get(row, "cluster"), "last_seen_at",
			 json_object_get(row, "last_seen_at"), "local", local, "connected",
			 kc_host_reachable(srv, name));
	/* Why the scheduler avoids the host (scheduler.h), [] if nothing. */
	if (o) {
		json_object_set_new(o, "flags",
				    json_is_array(flags) ? json_copy(flags) : json_array());
		json_t *addr = json_object_get(row, "address");
		json_object_set(o, "address", addr ? addr : json_null());
	}
	return o;
}

int kc_api_hosts_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (kc_db_host_list(c->srv->db, &rows, err) < 0)
		return -1;
	json_t *hosts = json_array();
	json_array_foreach(rows, i, row) json_array_append_new(hosts, host_object(c->srv, row));
	kc_http_json(c->resp, 200, json_pack("{s:o}", "hosts", hosts));
	return 0;
}

int kc_api_host_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (kc_db_host_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, host_object(c->srv, row));
	return 0;
}

int kc_api_host_check(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"probe_kvm", NULL};
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *check = NULL;
	bool probe = false;

	if (kc_http_read_json(c->req, false, &body, err) < 0)
		return -1;
	if (body && (kc_json_check_keys(body, keys, "check request", err) < 0 ||
		     kc_json_get_bool(body, "probe_kvm", false, &probe, err) < 0))
		return -1;
	if (kc_host_is_local(c->srv, c->name)) {
		if (kc_server_check_host(c->srv, probe, &check, err) < 0)
			return -1;
	} else {
		_cleanup_json_ json_t *row = NULL;
		_cleanup_json_ json_t *args = json_pack("{s:b}", "probe_kvm", probe);
		char now[21];
		if (kc_db_host_get(c->srv->db, c->name, &row, err) < 0 ||
		    kc_host_call(c->srv, c->name, "host.check", args, &check, err) < 0)
			return -1;
		kc_http_now_iso8601(now);
		if (kc_db_host_set_check(c->srv->db, c->name, check, now, err) < 0)
			return -1;
		json_object_set_new(check, "checked_at", json_string(now));
	}
	kc_http_json(c->resp, 200, steal_ptr(&check));
	return 0;
}
