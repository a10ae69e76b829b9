/* SPDX-License-Identifier: Apache-2.0 */
/* The host firewall verbs (cmd_hostfw.h). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "cmd_hostfw.h"
#include "json_util.h"
#include "request.h"

/* The server waits for the agent's confirmation (or its rollback). */
#define FW_APPLY_TIMEOUT_S 300

static void print_fw(FILE *out, const json_t *fw)
{
	const char *err = json_string_value(json_object_get(fw, "error"));
	fprintf(out, "host:       %s\n", json_string_value(json_object_get(fw, "host")));
	fprintf(out, "state:      %s\n", json_string_value(json_object_get(fw, "state")));
	fprintf(out, "applied at: %s\n", json_string_value(json_object_get(fw, "applied_at")));
	if (err)
		fprintf(out, "error:      %s\n", err);
	_cleanup_free_ char *policy =
		json_dumps(json_object_get(fw, "policy"), JSON_COMPACT | JSON_SORT_KEYS);
	fprintf(out, "policy:     %s\n", policy ? policy : "null");
	const json_t *agent = json_object_get(fw, "agent");
	const char *table = json_string_value(json_object_get(agent, "table"));
	if (table)
		fprintf(out, "live table (from the agent):\n%s", table);
	else
		fprintf(out, "live table: %s\n", agent ? "not loaded" : "host not reachable");
}

/* FILE is a policy object, or {"policy": {...}, "confirm_s": N}. */
int kc_cmd_host_fw_apply(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	struct stat st;
	json_error_t jerr;
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], "/firewall", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	if (stat(a->pos[1], &st) < 0 || !S_ISREG(st.st_mode)) {
		kc_error_set(&err, KC_ERR_INVALID, "cannot read %s: %s", a->pos[1],
			     errno ? strerror(errno) : "not a file");
		return kc_cli_fail(cli, &err, false);
	}
	if (st.st_size > KC_HOSTFW_POLICY_FILE_MAX) {
		kc_error_set(&err, KC_ERR_TOO_LARGE, "%s is larger than %d KiB", a->pos[1],
			     KC_HOSTFW_POLICY_FILE_MAX / 1024);
		return kc_cli_fail(cli, &err, false);
	}
	_cleanup_json_ json_t *doc = json_load_file(a->pos[1], JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		kc_error_set(&err, KC_ERR_INVALID, "%s: not a JSON object (%s, line %d)", a->pos[1],
			     doc ? "wrong type" : jerr.text, jerr.line);
		return kc_cli_fail(cli, &err, false);
	}
	_cleanup_json_ json_t *body = json_object_get(doc, "policy")
					      ? json_incref(doc)
					      : json_pack("{s:O}", "policy", doc);
	const char *confirm = kc_args_value(a, "confirm");
	if (confirm) {
		char *end = NULL;
		long v = strtol(confirm, &end, 10);
		if (!*confirm || *end || v < 1 || v > 3600) {
			kc_error_set(&err, KC_ERR_INVALID, "--confirm wants seconds");
			return kc_cli_fail(cli, &err, true);
		}
		json_object_set_new(body, "confirm_s", json_integer(v));
	}
	return kc_cli_request(cli, "PUT", path, body, FW_APPLY_TIMEOUT_S, print_fw);
}

int kc_cmd_host_fw_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], "/firewall", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_fw);
}
