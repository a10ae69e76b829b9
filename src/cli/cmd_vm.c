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
	/* --live: ask every host now (slow with many), with the domains
	 * kvmcloud has no record of. */
	return kc_cli_request(cli, "GET",
			      kc_args_has(a, "live") ? "/api/v1/vms?live=true" : "/api/v1/vms",
			      NULL, 0, kc_fmt_vm_table);
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
	/* The pool of the disks, and a full copy instead of a linked clone. */
	const char *pool = kc_args_value(a, "pool");
	if (pool) {
		if (kc_name_validate(pool, "pool name", &err) < 0)
			return kc_cli_fail(cli, &err, true);
		json_object_set_new(req, "pool", json_string(pool));
	}
	if (kc_args_has(a, "full-clone"))
		json_object_set_new(req, "clone", json_string("full"));
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
	const char *q = keep ? "?keep_disks=true" : "?keep_disks=false";
	const char *qs =
		keep ? "?keep_disks=true&snapshots=true" : "?keep_disks=false&snapshots=true";
	return vm_job(cli, a, "DELETE", kc_args_has(a, "snapshots") ? qs : q, NULL, print_deleted);
}

static void print_template(FILE *out, const json_t *answer)
{
	fputs("template ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(answer, "name")));
	fprintf(out, " registered: %lld bytes, sha256 ",
		(long long)json_integer_value(json_object_get(answer, "size_bytes")));
	kc_fmt_safe(out, json_string_value(json_object_get(answer, "sha256")));
	fputc('\n', out);
}

int kc_cmd_vm_template(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *os = kc_args_value(a, "os-type");
	if (kc_name_validate(a->pos[1], "image name", &err) < 0 ||
	    (os && kc_name_validate(os, "os type", &err) < 0))
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = json_pack("{s:s}", "image", a->pos[1]);
	if (!body) {
		kc_error_set(&err, KC_ERR_INTERNAL, "out of memory");
		return kc_cli_fail(cli, &err, false);
	}
	if (os)
		json_object_set_new(body, "os_type", json_string(os));
	/* Flattening and copying a disk can take minutes: a job. */
	return vm_job(cli, a, "POST", "/template", body, print_template);
}
