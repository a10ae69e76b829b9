/* SPDX-License-Identifier: Apache-2.0 */
/* The "host" verbs. */
#include "cli.h"
#include "cleanup.h"
#include "format.h"
#include "json_util.h"
#include "request.h"

static void print_check(FILE *out, const json_t *check)
{
	kc_fmt_check_items(out, check, 0);
}

int kc_cmd_host_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/hosts", NULL, 0, kc_fmt_host_table);
}

int kc_cmd_host_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], NULL, "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, kc_fmt_host_show);
}

int kc_cmd_host_check(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], "/check", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = kc_req_host_check(a);
	return kc_cli_request(cli, "POST", path, body, 0, print_check);
}
