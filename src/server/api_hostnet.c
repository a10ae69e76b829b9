/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_hostnet.c - declared host networks through the API (api_hostnet.h).
 *
 * A PUT checks the declaration (netdecl.h), sends host.net.apply with the
 * agent's rollback timer (confirm_timeout_s) and, unless auto_confirm is
 * false, waits a moment and sends host.net.confirm over the same link: a
 * link that still carries calls after the change is the proof the server
 * still reaches the host.  If that call fails, the agent's timer restores
 * the previous network by itself; the server waits the timer out and asks
 * the agent how it ended.  With auto_confirm false the row stays pending
 * until POST .../network/confirm, or until the agent rolls back (GET then
 * reads the agent's account and records it).
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_hostnet.h"
#include "cleanup.h"
#include "db_hostnet.h"
#include "db_hosts.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"
#include "netdecl.h"

#define SETTLE_MS	  1000
#define CONFIRM_DEFAULT_S 60
#define CONFIRM_MIN_S	  5
#define CONFIRM_MAX_S	  3600

static time_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The agent's last settled result for change `id` ("confirmed",
 * "rolled_back", "restore_failed") or NULL while pending or unknown. */
static const char *agent_result(const json_t *show, const char *id)
{
	const json_t *last = json_object_get(show, "last");
	const char *lid = json_string_value(json_object_get(last, "id"));
	if (!id || !lid || strcmp(lid, id) != 0 || !json_is_null(json_object_get(show, "pending")))
		return NULL;
	return json_string_value(json_object_get(last, "result"));
}

/* After a confirmation that did not get through: waits out the timer
 * (armed at `armed`), then asks the agent how the change ended. */
static const char *settled_state(struct kc_server *srv, const char *host, const char *id,
				 time_t armed, unsigned confirm_s)
{
	while (mono_s() < armed + (time_t)confirm_s + 20) {
		_cleanup_json_ json_t *show = NULL;
		struct kc_error e = {0};
		if (mono_s() >= armed + (time_t)confirm_s &&
		    kc_host_call(srv, host, "host.net.show", NULL, &show, &e) == 0) {
			const char *r = agent_result(show, id);
			if (r)
				return strcmp(r, "confirmed") == 0 ? "confirmed" : "rolled_back";
		}
		sleep(1);
	}
	return "rolled_back";
}

/* The row, brought up to date with the agent's account, plus the agent's
 * view ("agent": null when the host cannot be reached). */
static json_t *net_object(struct kc_server *srv, const char *host, json_t *row)
{
	_cleanup_json_ json_t *show = NULL;
	struct kc_error e = {0};
	if (kc_host_call(srv, host, "host.net.show", NULL, &show, &e) < 0)
		show = NULL;
	json_t *o = row ? json_deep_copy(row)
			: json_pack("{s:s,s:n,s:s}", "host", host, "declaration", "state", "none");
	if (!o)
		return NULL;
	const char *state = json_string_value(json_object_get(o, "state"));
	const char *id = json_string_value(json_object_get(o, "pending_id"));
	const char *r =
		show && state && strcmp(state, "pending") == 0 ? agent_result(show, id) : NULL;
	if (r) {
		const char *ns = strcmp(r, "confirmed") == 0 ? "confirmed" : "rolled_back";
		if (kc_db_hostnet_set_state(srv->db, host, ns, NULL, &e) == 0)
			json_object_set_new(o, "state", json_string(ns));
	}
	json_object_set(o, "agent", show ? show : json_null());
	return o;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}

int kc_api_host_net_apply(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"declaration", "confirm_timeout_s", "auto_confirm",
					   NULL};
	_cleanup_json_ json_t *body = NULL, *host = NULL, *res = NULL, *args = NULL, *row = NULL;
	_cleanup_json_ json_t *canon = NULL;
	uint64_t confirm_s = CONFIRM_DEFAULT_S;
	bool auto_confirm = true;
	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "host network request", err) < 0 ||
	    kc_json_get_uint(body, "confirm_timeout_s", false, CONFIRM_MIN_S, CONFIRM_MAX_S,
			     &confirm_s, err) < 0 ||
	    kc_json_get_bool(body, "auto_confirm", false, &auto_confirm, err) < 0)
		return -1;
	json_t *decl = json_object_get(body, "declaration");
	if (!decl)
		return kc_error_set(err, KC_ERR_INVALID, "\"declaration\" is required");
	_cleanup_free_ struct kc_netdecl *d = calloc(1, sizeof(*d));
	if (!d)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_netdecl_from_json(decl, d, err) < 0 ||
	    kc_db_host_get(c->srv->db, c->name, &host, err) < 0)
		return -1;
	if (!(canon = kc_netdecl_to_json(d)))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (!kc_host_reachable(c->srv, c->name))
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected",
				    c->name);
	args = json_pack("{s:O,s:I}", "decl", canon, "confirm_s", (json_int_t)confirm_s);
	if (!args)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	time_t armed = mono_s();
	if (kc_host_call(c->srv, c->name, "host.net.apply", args, &res, err) < 0) {
		/* The agent restored what was there before answering. */
		kc_db_hostnet_put(c->srv->db, c->name, canon, "failed", NULL, err->message, NULL);
		return -1;
	}
	const char *id = json_string_value(json_object_get(res, "pending"));
	if (!id)
		return kc_error_set(err, KC_ERR_INTERNAL, "host.net.apply gave no pending id");
	if (kc_db_hostnet_put(c->srv->db, c->name, canon, "pending", id, NULL, err) < 0)
		return -1;
	if (!auto_confirm) {
		if (kc_db_hostnet_get(c->srv->db, c->name, &row, err) < 0)
			return -1;
		json_object_set_new(row, "confirm_timeout_s", json_integer((json_int_t)confirm_s));
		kc_http_json(c->resp, 202, steal_ptr(&row));
		return 0;
	}
	sleep_ms(SETTLE_MS);
	json_decref(args);
	args = json_pack("{s:s}", "pending", id);
	json_t *cres = NULL;
	struct kc_error ce = {0};
	const char *state = "confirmed";
	if (!args || kc_host_call(c->srv, c->name, "host.net.confirm", args, &cres, &ce) < 0)
		state = settled_state(c->srv, c->name, id, armed, (unsigned)confirm_s);
	json_decref(cres);
	if (strcmp(state, "confirmed") != 0) {
		kc_db_hostnet_set_state(c->srv->db, c->name, state, ce.message, NULL);
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "host \"%s\" did not confirm the network change (%s): its "
				    "agent rolled it back after %llu s",
				    c->name, ce.message, (unsigned long long)confirm_s);
	}
	if (kc_db_hostnet_set_state(c->srv->db, c->name, "confirmed", NULL, err) < 0 ||
	    kc_db_hostnet_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, net_object(c->srv, c->name, row));
	return 0;
}

int kc_api_host_net_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *host = NULL, *row = NULL;
	if (kc_db_host_get(c->srv->db, c->name, &host, err) < 0 ||
	    kc_db_hostnet_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	json_t *o = net_object(c->srv, c->name, row);
	if (!o)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	kc_http_json(c->resp, 200, o);
	return 0;
}

int kc_api_host_net_confirm(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *host = NULL, *row = NULL, *args = NULL, *res = NULL;
	if (kc_db_host_get(c->srv->db, c->name, &host, err) < 0 ||
	    kc_db_hostnet_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	const char *id = json_string_value(json_object_get(row, "pending_id"));
	if (!row || !state || strcmp(state, "pending") != 0 || !id)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "host \"%s\" has no network change waiting for confirmation "
				    "(state %s)",
				    c->name, state ? state : "none");
	args = json_pack("{s:s}", "pending", id);
	struct kc_error ce = {0};
	if (!args || kc_host_call(c->srv, c->name, "host.net.confirm", args, &res, &ce) < 0) {
		if (ce.code == KC_ERR_NOT_FOUND) {
			/* Too late: the agent's timer ran out and it restored. */
			kc_db_hostnet_set_state(c->srv->db, c->name, "rolled_back", ce.message,
						NULL);
			return kc_error_set(err, KC_ERR_CONFLICT, "%s", ce.message);
		}
		*err = ce;
		return -1;
	}
	json_decref(row);
	row = NULL;
	if (kc_db_hostnet_set_state(c->srv->db, c->name, "confirmed", NULL, err) < 0 ||
	    kc_db_hostnet_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, net_object(c->srv, c->name, row));
	return 0;
}
