/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_hostfw.c - the host firewall through the API (api_hostfw.h).
 *
 * A PUT sends host.firewall.apply with a rollback timer (confirm_s), waits
 * a moment, and confirms over the same link: if the link carried the
 * confirmation, the server can still reach the host under the new rules.
 * If not, the agent's timer restores the previous ruleset by itself; the
 * server then waits out the timer and asks the agent which state it ended
 * in (a late confirmation may still have arrived in time), so that the row
 * says what the host really runs.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_hostfw.h"
#include "cleanup.h"
#include "db_hostfw.h"
#include "db_hosts.h"
#include "hostfw_render.h"
#include "hostlink.h"
#include "http_util.h"
#include "json_util.h"

/* How long the new rules act on the link before the confirmation. */
#define SETTLE_MS 1000

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0)
		;
}

/* The row with the agent's live view ("agent": null if unreachable). */
static json_t *fw_object(struct kc_server *srv, const char *host, json_t *row)
{
	_cleanup_json_ json_t *live = NULL;
	struct kc_error e = {0};
	if (kc_host_call(srv, host, "host.firewall.show", NULL, &live, &e) < 0)
		live = NULL;
	json_t *o = row ? json_deep_copy(row)
			: json_pack("{s:s,s:n,s:s}", "host", host, "policy", "state", "none");
	if (o)
		json_object_set(o, "agent", live ? live : json_null());
	return o;
}

static time_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The agent's own account after a failed confirmation, once its timer
 * has run out (started at `armed`): confirmed, or rolled_back (also when
 * the host stays unreachable). */
static const char *settled_state(struct kc_server *srv, const char *host, time_t armed,
				 unsigned confirm_s)
{
	while (mono_s() < armed + (time_t)confirm_s + 20) {
		_cleanup_json_ json_t *live = NULL;
		struct kc_error e = {0};
		if (mono_s() >= armed + (time_t)confirm_s &&
		    kc_host_call(srv, host, "host.firewall.show", NULL, &live, &e) == 0) {
			const char *s = json_string_value(json_object_get(live, "state"));
			if (s && strcmp(s, "pending") != 0)
				return strcmp(s, "confirmed") == 0 ? "confirmed" : "rolled_back";
		}
		sleep(1);
	}
	return "rolled_back";
}

int kc_api_host_fw_apply(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"policy", "confirm_s", NULL};
	_cleanup_json_ json_t *body = NULL, *host = NULL, *res = NULL, *args = NULL, *row = NULL;
	uint64_t confirm_s = KC_HOSTFW_API_CONFIRM_DEFAULT;
	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "firewall request", err) < 0 ||
	    kc_json_get_uint(body, "confirm_s", false, KC_HOSTFW_API_CONFIRM_MIN,
			     KC_HOSTFW_API_CONFIRM_MAX, &confirm_s, err) < 0)
		return -1;
	json_t *policy = json_object_get(body, "policy");
	if (!policy)
		return kc_error_set(err, KC_ERR_INVALID, "\"policy\" is required");
	if (kc_hostfw_policy_check(policy, err) < 0 ||
	    kc_db_host_get(c->srv->db, c->name, &host, err) < 0)
		return -1;
	if (!kc_host_reachable(c->srv, c->name))
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "host \"%s\" is not connected",
				    c->name);
	if (kc_db_hostfw_put(c->srv->db, c->name, policy, "pending", NULL, err) < 0)
		return -1;

	args = json_pack("{s:O,s:I}", "policy", policy, "confirm_s", (json_int_t)confirm_s);
	if (!args)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	time_t armed = mono_s();
	if (kc_host_call(c->srv, c->name, "host.firewall.apply", args, &res, err) < 0) {
		kc_db_hostfw_set_state(c->srv->db, c->name, "failed", err->message, NULL);
		return -1;
	}
	json_int_t id = json_integer_value(json_object_get(res, "pending_id"));
	json_decref(args);
	args = json_pack("{s:I}", "pending_id", id);
	json_decref(res);
	res = NULL;

	sleep_ms(SETTLE_MS);
	struct kc_error ce = {0};
	const char *state = "confirmed";
	if (!args || kc_host_call(c->srv, c->name, "host.firewall.confirm", args, &res, &ce) < 0)
		state = settled_state(c->srv, c->name, armed, (unsigned)confirm_s);
	if (strcmp(state, "confirmed") != 0) {
		kc_db_hostfw_set_state(c->srv->db, c->name, state, ce.message, NULL);
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "host \"%s\" did not confirm the firewall change (%s): its "
				    "agent rolled it back after %llu s",
				    c->name, ce.message, (unsigned long long)confirm_s);
	}
	if (kc_db_hostfw_set_state(c->srv->db, c->name, "confirmed", NULL, err) < 0 ||
	    kc_db_hostfw_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, fw_object(c->srv, c->name, row));
	return 0;
}

int kc_api_host_fw_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *host = NULL, *row = NULL;
	if (kc_db_host_get(c->srv->db, c->name, &host, err) < 0 ||
	    kc_db_hostfw_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, fw_object(c->srv, c->name, row));
	return 0;
}
