/* SPDX-License-Identifier: Apache-2.0 */
/* The "host" verbs. */
#include "cli.h"
#include "cleanup.h"
#include "format.h"
#include "json_util.h"
#include "request.h"

int kc_cmd_host_list(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "GET", "/api/v1/hosts", NULL, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (cli->json)
		kc_fmt_json(cli->out, j);
	else
		kc_fmt_host_table(cli->out, j);
	return KC_EXIT_OK;
}

int kc_cmd_host_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], NULL, "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "GET", path, NULL, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (cli->json)
		kc_fmt_json(cli->out, j);
	else
		kc_fmt_host_show(cli->out, j);
	return KC_EXIT_OK;
}

int kc_cmd_host_check(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], "/check", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = kc_req_host_check(a);
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, "POST", path, body, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (cli->json)
		kc_fmt_json(cli->out, j);
	else
		kc_fmt_check_items(cli->out, j, 0);
	return KC_EXIT_OK;
}
