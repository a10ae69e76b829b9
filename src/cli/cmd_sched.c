/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler's verbs: host maintenance, vm import, and the placement
 * options of vm create (docs/cli.md). */
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

int kc_cmd_host_maintenance(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *mode = a->pos[1];

	if (strcmp(mode, "on") != 0 && strcmp(mode, "off") != 0) {
		kc_error_set(&err, KC_ERR_INVALID, "host maintenance: expected on or off, not \"%s\"",
			     mode);
		return kc_cli_fail(cli, &err, true);
	}
	_cleanup_free_ char *path =
		kc_req_path("hosts", a->pos[0], "/maintenance", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = json_pack("{s:b}", "enabled", strcmp(mode, "on") == 0);
	return kc_cli_request(cli, "POST", path, body, 0, kc_fmt_host_show);
}

int kc_cmd_vm_import(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *owner = kc_args_value(a, "owner"), *host = kc_args_value(a, "host");

	if ((owner && kc_name_validate(owner, "user name", &err) < 0) ||
	    (host && kc_name_validate(host, "host name", &err) < 0))
		return kc_cli_fail(cli, &err, true);
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], "/import", "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = json_object();
	if (owner)
		json_object_set_new(body, "owner", json_string(owner));
	if (host)
		json_object_set_new(body, "host", json_string(host));
	return kc_cli_request(cli, "POST", path, body, 0, kc_fmt_vm_show);
}

int kc_cli_placement_opts(const struct kc_args *a, json_t *req, struct kc_error *err)
{
	static const char *const names[] = {"zone", "cluster"};
	const char *group = kc_args_value(a, "group");
	const char *policy = kc_args_value(a, "group-policy");

	for (size_t i = 0; i < KC_ARRAY_SIZE(names); i++) {
		const char *v = kc_args_value(a, names[i]);
		if (!v)
			continue;
		if (kc_name_validate(v, names[i], err) < 0)
			return -1;
		json_object_set_new(req, names[i], json_string(v));
	}
	if (policy && !group)
		return kc_error_set(err, KC_ERR_INVALID, "--group-policy needs --group");
	if (group) {
		if (kc_name_validate(group, "group name", err) < 0)
			return -1;
		json_t *g = json_pack("{s:s}", "name", group);
		if (policy)
			json_object_set_new(g, "policy", json_string(policy));
		json_object_set_new(req, "group", g);
	}
	return 0;
}
