/* SPDX-License-Identifier: Apache-2.0 */
/* The host network verbs (cmd_hostnet.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "cmd_hostnet.h"
#include "json_util.h"
#include "request.h"

/* The server may wait out the agent's whole rollback timer. */
#define NET_APPLY_TIMEOUT_S 3700

static void print_net(FILE *out, const json_t *n)
{
	const char *err = json_string_value(json_object_get(n, "error"));
	fprintf(out, "host:       %s\n", json_string_value(json_object_get(n, "host")));
	fprintf(out, "state:      %s\n", json_string_value(json_object_get(n, "state")));
	if (json_object_get(n, "applied_at"))
		fprintf(out, "applied at: %s\n",
			json_string_value(json_object_get(n, "applied_at")));
	if (json_string_value(json_object_get(n, "pending_id")))
		fprintf(out, "change:     %s\n",
			json_string_value(json_object_get(n, "pending_id")));
	if (err)
		fprintf(out, "error:      %s\n", err);
	const json_t *agent = json_object_get(n, "agent");
	if (!json_is_object(agent)) {
		fprintf(out, "agent:      %s\n",
			json_object_get(n, "agent") ? "not reachable" : "-");
		return;
	}
	const json_t *pending = json_object_get(agent, "pending");
	if (json_is_object(pending))
		fprintf(out, "pending:    rolled back in %lld s unless confirmed\n",
			(long long)json_integer_value(json_object_get(pending, "remaining_s")));
	const json_t *diff = json_object_get(agent, "differences");
	if (!json_is_array(diff)) {
		fprintf(out, "check:      no confirmed declaration on the host\n");
		return;
	}
	if (json_array_size(diff) == 0)
		fprintf(out, "check:      the host matches its declaration\n");
	size_t i;
	json_t *d;
	json_array_foreach(diff, i, d)
	{
		fprintf(out, "DIFFERENT   %s: %s\n", json_string_value(json_object_get(d, "name")),
			json_string_value(json_object_get(d, "problem")));
	}
}

/* FILE is the declaration, or {"declaration": {...}, ...} as the API takes. */
int kc_cmd_host_net_apply(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	struct stat st;
	json_error_t jerr;
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], "/network", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	errno = 0;
	if (stat(a->pos[1], &st) < 0 || !S_ISREG(st.st_mode)) {
		kc_error_set(&err, KC_ERR_INVALID, "cannot read %s: %s", a->pos[1],
			     errno ? strerror(errno) : "not a file");
		return kc_cli_fail(cli, &err, false);
	}
	if (st.st_size > KC_HOSTNET_FILE_MAX) {
		kc_error_set(&err, KC_ERR_TOO_LARGE, "%s is larger than %d KiB", a->pos[1],
			     KC_HOSTNET_FILE_MAX / 1024);
		return kc_cli_fail(cli, &err, false);
	}
	_cleanup_json_ json_t *doc = json_load_file(a->pos[1], JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		kc_error_set(&err, KC_ERR_INVALID, "%s: not a JSON object (%s, line %d)", a->pos[1],
			     doc ? "wrong type" : jerr.text, jerr.line);
		return kc_cli_fail(cli, &err, false);
	}
	_cleanup_json_ json_t *body = json_object_get(doc, "declaration")
					      ? json_incref(doc)
					      : json_pack("{s:O}", "declaration", doc);
	const char *confirm = kc_args_value(a, "confirm-timeout");
	if (confirm) {
		char *end = NULL;
		long v = strtol(confirm, &end, 10);
		if (!*confirm || *end || v < 5 || v > 3600) {
			kc_error_set(&err, KC_ERR_INVALID,
				     "--confirm-timeout wants 5..3600 seconds");
			return kc_cli_fail(cli, &err, true);
		}
		json_object_set_new(body, "confirm_timeout_s", json_integer(v));
	}
	if (kc_args_has(a, "no-auto-confirm"))
		json_object_set_new(body, "auto_confirm", json_false());
	return kc_cli_request(cli, "PUT", path, body, NET_APPLY_TIMEOUT_S, print_net);
}

int kc_cmd_host_net_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], "/network", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_net);
}

int kc_cmd_host_net_confirm(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path =
		kc_req_path("hosts", a->pos[0], "/network/confirm", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "POST", path, NULL, 0, print_net);
}
