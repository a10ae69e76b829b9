/* SPDX-License-Identifier: Apache-2.0 */
/* The "vm" verbs that are one request and one answer. */
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

/* kc_cli_request on the VM named by the first argument, plus `suffix`: a
 * bad name is a usage error. */
static int vm_request(struct kc_cli *cli, const struct kc_args *a, const char *method,
		      const char *suffix, const json_t *body, long timeout_s,
		      void (*print)(FILE *out, const json_t *answer))
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], suffix, "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, method, path, body, timeout_s, print);
}

/* kc_cli_job_request on the VM named by the first argument. */
static int vm_job(struct kc_cli *cli, const struct kc_args *a, const char *method,
		  const char *suffix, const json_t *body, void (*print)(FILE *out, const json_t *answer))
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("vms", a->pos[0], suffix, "VM name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_job_request(cli, a, method, path, body, print);
}

int kc_cmd_vm_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/vms", NULL, 0, kc_fmt_vm_table);
}

int kc_cmd_vm_show(struct kc_cli *cli, const struct kc_args *a)
{
	return vm_request(cli, a, "GET", NULL, NULL, 0, kc_fmt_vm_show);
}

int kc_cmd_vm_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *req = kc_req_vm_create(a, &err);
	if (!req)
		return kc_cli_fail(cli, &err, true);
	const char *host = kc_args_value(a, "host");
	if (host) {
		if (kc_name_validate(host, "host name", &err) < 0)
			return kc_cli_fail(cli, &err, true);
		json_object_set_new(req, "host", json_string(host));
	}
	if (kc_cli_placement_opts(a, req, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	/* Copying an image and starting a guest under TCG can take minutes. */
	return kc_cli_job_request(cli, a, "POST", "/api/v1/vms", req, kc_fmt_vm_show);
}

/* start, reboot, destroy: POST .../{verb} without a body. */
int kc_cmd_vm_action(struct kc_cli *cli, const struct kc_args *a)
{
	char suffix[32];
	snprintf(suffix, sizeof(suffix), "/%s", cli->verb->verb);
	return vm_job(cli, a, "POST", suffix, NULL, kc_fmt_vm_show);
}

int kc_cmd_vm_shutdown(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *req = kc_req_vm_shutdown(a, &err);
	if (!req)
		return kc_cli_fail(cli, &err, true);
	/* The server waits up to timeout_s (60 s by default) for the guest. */
	return vm_job(cli, a, "POST", "/shutdown", req, kc_fmt_vm_show);
}

static void print_deleted(FILE *out, const json_t *answer)
{
	fputs("deleted ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(answer, "deleted")));
	fputs(json_is_true(json_object_get(answer, "disks_deleted")) ? " and its disks\n"
								     : " (disks kept)\n",
	      out);
}

int kc_cmd_vm_delete(struct kc_cli *cli, const struct kc_args *a)
{
	bool keep = kc_args_has(a, "keep-disks");
	return vm_job(cli, a, "DELETE", keep ? "?keep_disks=true" : "?keep_disks=false", NULL,
		      print_deleted);
}
