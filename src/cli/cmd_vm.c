/* SPDX-License-Identifier: Apache-2.0 */
/* The "vm" verbs that are one request and one answer. */
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "format.h"
#include "json_util.h"
#include "request.h"

int kc_cmd_vm_list(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "GET", "/api/v1/vms", NULL, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (cli->json)
		kc_fmt_json(cli->out, j);
	else
		kc_fmt_vm_table(cli->out, j);
	return KC_EXIT_OK;
}

static int print_vm(struct kc_cli *cli, const json_t *vm)
{
	if (cli->json)
		kc_fmt_json(cli->out, vm);
	else
		kc_fmt_vm_show(cli->out, vm);
	return KC_EXIT_OK;
}

int kc_cmd_vm_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], NULL, "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "GET", path, NULL, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	return print_vm(cli, j);
}

int kc_cmd_vm_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *req = kc_req_vm_create(a, &err);
	if (!req)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	/* Copying an image and starting a guest under TCG can take minutes. */
	kc_client_set_timeout(c, 900);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "POST", "/api/v1/vms", req, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	return print_vm(cli, j);
}

/* start, reboot, destroy: POST .../{verb} without a body. */
int kc_cmd_vm_action(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	char suffix[32];
	snprintf(suffix, sizeof(suffix), "/%s", cli->verb->verb);
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], suffix, "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "POST", path, NULL, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	return print_vm(cli, j);
}

int kc_cmd_vm_shutdown(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *req = kc_req_vm_shutdown(a, &err);
	if (!req)
		return kc_cli_fail(cli, &err, true);
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], "/shutdown", "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	/* The server waits up to timeout_s (60 s by default) for the guest. */
	json_int_t t = json_integer_value(json_object_get(req, "timeout_s"));
	kc_client_set_timeout(c, (long)(t > 60 ? t : 60) + 120);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "POST", path, req, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	return print_vm(cli, j);
}

int kc_cmd_vm_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	bool keep = kc_args_has(a, "keep-disks");
	_cleanup_free_ char *path = kc_req_path(
		"vms", a->pos[0], keep ? "?keep_disks=true" : "?keep_disks=false", "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "DELETE", path, NULL, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (cli->json) {
		kc_fmt_json(cli->out, j);
	} else {
		fputs("deleted ", cli->out);
		kc_fmt_safe(cli->out, json_string_value(json_object_get(j, "deleted")));
		fputs(json_is_true(json_object_get(j, "disks_deleted")) ? " and its disks\n"
									: " (disks kept)\n",
		      cli->out);
	}
	return KC_EXIT_OK;
}
