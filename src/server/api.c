/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the route table and the dispatcher.
 *
 * We route ourselves instead of registering one ulfius endpoint per route:
 * ulfius answers unknown routes and wrong methods with plain-text bodies,
 * while docs/api.md wants JSON errors, 405 for a wrong method, and the same
 * authentication step in front of every route but one.
 */
#include "api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_audit.h"
#include "api_hostfw.h"
#include "api_hostnet.h"
#include "auth.h"
#include "authz.h"
#include "cleanup.h"
#include "clones.h"
#include "cluster.h"
#include "http_util.h"
#include "images.h"
#include "jobs.h"
#include "metrics.h"
#include "validate.h"
#include "volumes.h"

typedef int (*kc_handler_fn)(struct kc_call *c, struct kc_error *err);

struct kc_route {
	const char *method;
	const char *pattern; /* segments; ":vm" / ":host" is the name parameter */
	kc_handler_fn fn;
	bool public; /* no token needed: openapi.json, the CA, joining */
};

static const struct kc_route routes[] = {
	{"GET", "/api/v1/openapi.json", kc_api_openapi, true},
	{"GET", "/api/v1/ca", kc_api_ca, true},
	{"POST", "/api/v1/join", kc_api_join, true},
	{"GET", "/api/v1/hosts", kc_api_hosts_list, false},
	{"POST", "/api/v1/hosts", kc_api_host_add, false},
	{"GET", "/api/v1/hosts/:host", kc_api_host_show, false},
	{"DELETE", "/api/v1/hosts/:host", kc_api_host_remove, false},
	{"GET", "/api/v1/zones", kc_api_zones_list, false},
	{"POST", "/api/v1/zones", kc_api_zone_create, false},
	{"DELETE", "/api/v1/zones/:zone", kc_api_zone_delete, false},
	{"GET", "/api/v1/clusters", kc_api_clusters_list, false},
	{"POST", "/api/v1/clusters", kc_api_cluster_create, false},
	{"DELETE", "/api/v1/clusters/:cluster", kc_api_cluster_delete, false},
	{"POST", "/api/v1/hosts/:host/check", kc_api_host_check, false},
	{"POST", "/api/v1/hosts/:host/maintenance", kc_api_host_maintenance, false},
	{"POST", "/api/v1/hosts/:host/join-token", kc_api_host_join_token, false},
	{"PUT", "/api/v1/hosts/:host/firewall", kc_api_host_fw_apply, false},
	{"GET", "/api/v1/hosts/:host/firewall", kc_api_host_fw_show, false},
	/* Host networks (api_hostnet.c; admin only: authz.c's default). */
	{"PUT", "/api/v1/hosts/:host/network", kc_api_host_net_apply, false},
	{"GET", "/api/v1/hosts/:host/network", kc_api_host_net_show, false},
	{"POST", "/api/v1/hosts/:host/network/confirm", kc_api_host_net_confirm, false},
	{"GET", "/api/v1/groups", kc_api_groups_list, false},
	{"GET", "/api/v1/groups/:group", kc_api_group_show, false},
	{"DELETE", "/api/v1/groups/:group", kc_api_group_delete, false},
	{"GET", "/api/v1/vms", kc_api_vms_list, false},
	{"POST", "/api/v1/vms", kc_api_vm_create, false},
	{"GET", "/api/v1/vms/:vm", kc_api_vm_show, false},
	{"DELETE", "/api/v1/vms/:vm", kc_api_vm_delete, false},
	{"POST", "/api/v1/vms/:vm/start", kc_api_vm_start, false},
	{"POST", "/api/v1/vms/:vm/shutdown", kc_api_vm_shutdown, false},
	{"POST", "/api/v1/vms/:vm/reboot", kc_api_vm_reboot, false},
	{"POST", "/api/v1/vms/:vm/destroy", kc_api_vm_destroy, false},
	{"GET", "/api/v1/vms/:vm/log", kc_api_vm_log, false},
	{"GET", "/api/v1/vms/:vm/console", kc_api_vm_console, false},
	{"POST", "/api/v1/vms/:vm/import", kc_api_vm_import, false},
	{"POST", "/api/v1/vms/:vm/template", kc_api_vm_template, false}, /* api_template.c */
	/* Snapshots (api_snapshots.c); ":snap" is read by the handlers. */
	{"GET", "/api/v1/vms/:vm/snapshots", kc_api_snapshots_list, false},
	{"POST", "/api/v1/vms/:vm/snapshots", kc_api_snapshot_create, false},
	{"GET", "/api/v1/vms/:vm/snapshots/:snap", kc_api_snapshot_show, false},
	{"DELETE", "/api/v1/vms/:vm/snapshots/:snap", kc_api_snapshot_delete, false},
	{"POST", "/api/v1/vms/:vm/snapshots/:snap/revert", kc_api_snapshot_revert, false},
	{"GET", "/metrics", kc_api_metrics, false},
	/* Guest networks (api_networks.c; users list and read, authz.c). */
	{"GET", "/api/v1/networks", kc_api_networks_list, false},
	{"POST", "/api/v1/networks", kc_api_network_create, false},
	{"GET", "/api/v1/networks/:network", kc_api_network_show, false},
	{"DELETE", "/api/v1/networks/:network", kc_api_network_delete, false},
	{"GET", "/api/v1/networks/:network/addresses", kc_api_network_addresses, false},
	/* Storage pools (api_pools.c; admin only: authz.c's default). */
	{"GET", "/api/v1/pools", kc_api_pools_list, false},
	{"POST", "/api/v1/pools", kc_api_pool_create, false},
	{"GET", "/api/v1/pools/:pool", kc_api_pool_show, false},
	{"DELETE", "/api/v1/pools/:pool", kc_api_pool_delete, false},
	{"POST", "/api/v1/pools/:pool/prune", kc_api_pool_prune, false}, /* image_cleanup.c */
	/* Volumes (api_volumes.c; a user's own, authz.c). */
	{"GET", "/api/v1/volumes", kc_api_volumes_list, false},
	{"POST", "/api/v1/volumes", kc_api_volume_create, false},
	{"GET", "/api/v1/volumes/:volume", kc_api_volume_show, false},
	{"DELETE", "/api/v1/volumes/:volume", kc_api_volume_delete, false},
	{"POST", "/api/v1/volumes/:volume/resize", kc_api_volume_resize, false},
	{"POST", "/api/v1/volumes/:volume/attach", kc_api_volume_attach, false},
	{"POST", "/api/v1/volumes/:volume/detach", kc_api_volume_detach, false},
	{"PUT", "/api/v1/volumes/:volume/data", kc_api_volume_upload, false},
	{"GET", "/api/v1/volumes/:volume/data", kc_api_volume_download, false},
	/* The image library (api_images.c). */
	{"GET", "/api/v1/images", kc_api_images_list, false},
	{"POST", "/api/v1/images", kc_api_image_create, false},
	{"GET", "/api/v1/images/:image", kc_api_image_show, false},
	{"DELETE", "/api/v1/images/:image", kc_api_image_delete, false},
	{"PUT", "/api/v1/images/:image/data", kc_api_image_data, false},
	{"POST", "/api/v1/images/:image/commit", kc_api_image_commit, false},
	/* Jobs (jobs.c, api_jobs.c). */
	{"GET", "/api/v1/jobs", kc_api_jobs_list, false},
	{"GET", "/api/v1/jobs/:job", kc_api_job_show, false},
	/* Users, tokens, sessions, audit (api_users.c, api_audit.c; authz.c decides who). */
	{"GET", "/api/v1/users", kc_api_users_list, false},
	{"POST", "/api/v1/users", kc_api_user_create, false},
	{"GET", "/api/v1/users/:user", kc_api_user_show, false},
	{"DELETE", "/api/v1/users/:user", kc_api_user_delete, false},
	{"PUT", "/api/v1/users/:user/quota", kc_api_user_quota, false},
	{"POST", "/api/v1/users/:user/tokens", kc_api_user_token_create, false},
	{"GET", "/api/v1/tokens", kc_api_tokens_list, false},
	{"DELETE", "/api/v1/tokens/:token", kc_api_token_delete, false},
	{"POST", "/api/v1/sessions", kc_api_session_create, true},
	{"GET", "/api/v1/audit", kc_api_audit_list, false},
	/* Security groups (api_secgroups.c; a user's own, authz.c). */
	{"GET", "/api/v1/security-groups", kc_api_sgs_list, false},
	{"POST", "/api/v1/security-groups", kc_api_sg_create, false},
	{"GET", "/api/v1/security-groups/:sg", kc_api_sg_show, false},
	{"DELETE", "/api/v1/security-groups/:sg", kc_api_sg_delete, false},
	{"POST", "/api/v1/security-groups/:sg/rules", kc_api_sg_rule_add, false},
	{"DELETE", "/api/v1/security-groups/:sg/rules/:rule", kc_api_sg_rule_delete, false},
	{"GET", "/api/v1/vms/:vm/security-groups", kc_api_vm_sg_show, false},
	{"PUT", "/api/v1/vms/:vm/security-groups", kc_api_vm_sg_set, false},
};

#define MAX_PATH_LEN 1024
#define MAX_SEGMENTS 8

/* Splits a path on '/' into at most MAX_SEGMENTS non-empty segments, in
 * place.  Returns the count, or -1 if there are too many. */
static int split_path(char *path, char **segs)
{
	int n = 0;

	for (char *save = NULL, *tok = strtok_r(path, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGMENTS)
			return -1;
		segs[n++] = tok;
	}
	return n;
}

/* Does `pattern` match the segments?  *param gets the parameter segment
 * (still URL-encoded) and *what the parameter's kind. */
static bool pattern_match(const char *pattern, char **segs, int nsegs, const char **param,
			  const char **what)
{
	char buf[128];
	char *psegs[MAX_SEGMENTS];

	snprintf(buf, sizeof(buf), "%s", pattern);
	int np = split_path(buf, psegs);
	if (np != nsegs)
		return false;
	*param = NULL;
	for (int i = 0; i < np; i++) {
		if (psegs[i][0] == ':') {
			if (*param)
				continue; /* a second one (":snap"): the handler reads it */
			*param = segs[i];
			*what = strcmp(psegs[i], ":vm") == 0	    ? "VM name"
				: strcmp(psegs[i], ":zone") == 0    ? "zone name"
				: strcmp(psegs[i], ":cluster") == 0 ? "cluster name"
				: strcmp(psegs[i], ":user") == 0    ? "user name"
				: strcmp(psegs[i], ":token") == 0   ? "token id"
				: strcmp(psegs[i], ":image") == 0   ? "image name"
				: strcmp(psegs[i], ":job") == 0	    ? "job id"
				: strcmp(psegs[i], ":group") == 0   ? "group name"
				: strcmp(psegs[i], ":pool") == 0    ? "pool name"
				: strcmp(psegs[i], ":volume") == 0  ? "volume name"
				: strcmp(psegs[i], ":sg") == 0	    ? "security group name"
								    : "host name";
		} else if (strcmp(psegs[i], segs[i]) != 0) {
			return false;
		}
	}
	return true;
}

/* Copies at most `max` bytes of `s` with control characters escaped, so a
 * crafted path cannot forge log lines. */
static void log_safe(char *out, size_t size, const char *s, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; s && s[i] && i < max && o + 5 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
			o += snprintf(out + o, size - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static void log_request(const struct _u_request *req, long status, const struct timespec *t0)
{
	struct timespec t1;
	char method[16], path[256];

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
	log_safe(method, sizeof(method), req->http_verb, 10);
	/* url_path has no query string; tokens only ever travel in headers. */
	log_safe(path, sizeof(path), req->url_path, 200);
	fprintf(stderr, "%s %s %ld %.1fms\n", method, path, status, ms);
}

/* *ret_audit gets the route once the request is one to audit (known route,
 * caller authenticated or the route public); *ret_name the decoded name
 * parameter that c->name points to (the caller frees it). */
static void dispatch(struct kc_call *c, const struct kc_route **ret_audit, char **ret_name)
{
	const struct _u_request *req = c->req;
	struct kc_error err = {0};
	char *segs[MAX_SEGMENTS];
	char path[MAX_PATH_LEN + 1];
	const struct kc_route *route = NULL;
	const char *param = NULL, *what = NULL;
	char allow[64] = "";
	int nsegs = -1;

	if (req->url_path && strlen(req->url_path) <= MAX_PATH_LEN) {
		snprintf(path, sizeof(path), "%s", req->url_path);
		nsegs = split_path(path, segs);
	}
	bool path_known = false;
	for (size_t i = 0; nsegs >= 0 && i < KC_ARRAY_SIZE(routes); i++) {
		const char *p = NULL, *w = NULL;
		if (!pattern_match(routes[i].pattern, segs, nsegs, &p, &w))
			continue;
		path_known = true;
		size_t al = strlen(allow);
		snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "", routes[i].method);
		if (strcmp(routes[i].method, req->http_verb) == 0) {
			route = &routes[i];
			param = p;
			what = w;
		}
	}

	if (!(route && route->public)) {
		if (kc_auth_identify(c->srv->db, u_map_get_case(req->map_header, "Authorization"),
				     &c->who, &err) < 0) {
			/* RFC 6750: tell the client which scheme we expect. */
			u_map_put(c->resp->map_header, "WWW-Authenticate",
				  "Bearer realm=\"kvmcloud\"");
			kc_http_error(c->resp, &err);
			return;
		}
	}
	if (!path_known) {
		kc_http_errorf(c->resp, KC_ERR_NOT_FOUND, "no such route");
		return;
	}
	if (!route) {
		u_map_put(c->resp->map_header, "Allow", allow);
		kc_http_json(c->resp, 405,
			     json_pack("{s:{s:s,s:s}}", "error", "code", "method_not_allowed",
				       "message", "method not allowed on this route"));
		return;
	}
	if (kc_api_audit_wanted(route->method))
		*ret_audit = route;
	if (kc_http_check_body_size(req, &err) < 0) {
		kc_http_error(c->resp, &err);
		return;
	}

	_cleanup_free_ char *name = NULL;
	if (param) {
		char *decoded = ulfius_url_decode(param);
		name = decoded ? strdup(decoded) : NULL;
		u_free(decoded);
		if (!name) {
			kc_http_errorf(c->resp, KC_ERR_INTERNAL, "out of memory");
			return;
		}
		if (kc_name_validate(name, what, &err) < 0) {
			kc_http_error(c->resp, &err);
			return;
		}
	}
	c->name = name;
	*ret_name = steal_ptr(&name);
	if (!route->public && kc_authz_route(c, route->method, route->pattern, c->name, &err) < 0) {
		kc_http_error(c->resp, &err);
		return;
	}
	if (route->fn(c, &err) < 0)
		kc_http_error(c->resp, &err);
}

static int callback(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
	struct kc_call c = {.req = req, .resp = resp, .srv = user_data};
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	u_map_put(resp->map_header, "Cache-Control", "no-store");
	const struct kc_route *audited = NULL;
	_cleanup_free_ char *name = NULL;
	dispatch(&c, &audited, &name);
	/* 503 is passing (a host between servers, libvirtd restarting). */
	if (resp->status == 503)
		u_map_put(resp->map_header, "Retry-After", "2");
	if (audited)
		kc_api_audit_request(&c, audited->method, audited->pattern);
	kc_metrics_observe_request(req->http_verb, resp->status, &t0);
	if (c.srv->log_requests)
		log_request(req, resp->status, &t0);
	return U_CALLBACK_COMPLETE;
}

int kc_api_register(struct _u_instance *inst, struct kc_server *srv, struct kc_error *err)
{
	/* One catch-all endpoint ("*" method, "*" path) plus the same function as
	 * the default endpoint: every request reaches dispatch(). */
	if (ulfius_add_endpoint_by_val(inst, "*", NULL, "*", 0, callback, srv) != U_OK ||
	    ulfius_set_default_endpoint(inst, callback, srv) != U_OK)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot register the HTTP endpoints");
	return 0;
}
