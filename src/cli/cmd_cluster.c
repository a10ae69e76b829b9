/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster verbs: host add/remove/token, zones, clusters (docs/cli.md). */
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

/* A name argument or option value; a bad one is a usage error. */
static int check_name(struct kc_cli *cli, const char *name, const char *what)
{
	struct kc_error err = {0};

	if (name && kc_name_validate(name, what, &err) < 0)
		return kc_cli_fail(cli, &err, true);
	return 0;
}

/* "host NAME <what>. On it, before EXPIRY, run:" and the join command. */
static void print_join_command(FILE *out, const json_t *a, const char *what)
{
	fputs("host ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(a, "host")));
	fputs(what, out);
	fputs(". On it, before ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(a, "expires_at")));
	fputs(", run:\n  ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(a, "command")));
	fputc('\n', out);
}

static void print_host_added(FILE *out, const json_t *a)
{
	print_join_command(out, a, " added (Pending)");
}

static void print_host_token(FILE *out, const json_t *a)
{
	const char *serial = json_string_value(json_object_get(a, "revoked_serial"));

	print_join_command(out, a, ": new join token, earlier ones no longer work");
	if (serial) {
		fputs("certificate ", out);
		kc_fmt_safe(out, serial);
		fputs(" from its earlier join revoked\n", out);
	}
}

int kc_cmd_host_token(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path =
		kc_req_path("hosts", a->pos[0], "/join-token", "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "POST", path, NULL, 0, print_host_token);
}

int kc_cmd_host_add(struct kc_cli *cli, const struct kc_args *a)
{
	const char *zone = kc_args_value(a, "zone"), *cluster = kc_args_value(a, "cluster");
	int rc;

	if ((rc = check_name(cli, a->pos[0], "host name")) ||
	    (rc = check_name(cli, zone, "zone name")) ||
	    (rc = check_name(cli, cluster, "cluster name")))
		return rc;
	_cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	if (zone)
		json_object_set_new(body, "zone", json_string(zone));
	if (cluster)
		json_object_set_new(body, "cluster", json_string(cluster));
	return kc_cli_request(cli, "POST", "/api/v1/hosts", body, 0, print_host_added);
}

static void print_host_removed(FILE *out, const json_t *a)
{
	const char *serial = json_string_value(json_object_get(a, "revoked_serial"));

	fputs("removed host ", out);
	kc_fmt_safe(out, json_string_value(json_object_get(a, "removed")));
	if (serial) {
		fputs("; certificate ", out);
		kc_fmt_safe(out, serial);
		fputs(" revoked", out);
	}
	fputc('\n', out);
}

int kc_cmd_host_remove(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("hosts", a->pos[0], NULL, "host name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_host_removed);
}

static void print_name(FILE *out, const json_t *a)
{
	const char *n = json_string_value(json_object_get(a, "name"));
	const char *d = json_string_value(json_object_get(a, "deleted"));

	fputs(d ? "deleted " : "created ", out);
	kc_fmt_safe(out, d ? d : n);
	fputc('\n', out);
}

static void print_zones(FILE *out, const json_t *a)
{
	size_t i;
	json_t *z;

	fprintf(out, "%-24s %s\n", "NAME", "CREATED");
	json_array_foreach(json_object_get(a, "zones"), i, z)
	{
		fprintf(out, "%-24s %s\n", json_string_value(json_object_get(z, "name")),
			json_string_value(json_object_get(z, "created_at")));
	}
}

static void print_clusters(FILE *out, const json_t *a)
{
	size_t i;
	json_t *c;

	fprintf(out, "%-24s %-24s %s\n", "NAME", "ZONE", "CPU");
	json_array_foreach(json_object_get(a, "clusters"), i, c)
	{
		const char *cpu = json_string_value(json_object_get(c, "cpu_model"));
		fprintf(out, "%-24s %-24s %s\n", json_string_value(json_object_get(c, "name")),
			json_string_value(json_object_get(c, "zone")), cpu ? cpu : "-");
	}
}

int kc_cmd_zone_create(struct kc_cli *cli, const struct kc_args *a)
{
	int rc = check_name(cli, a->pos[0], "zone name");
	if (rc)
		return rc;
	_cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	return kc_cli_request(cli, "POST", "/api/v1/zones", body, 0, print_name);
}

int kc_cmd_zone_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/zones", NULL, 0, print_zones);
}

int kc_cmd_zone_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("zones", a->pos[0], NULL, "zone name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_name);
}

int kc_cmd_cluster_create(struct kc_cli *cli, const struct kc_args *a)
{
	const char *zone = kc_args_value(a, "zone");
	struct kc_error err = {0};
	int rc;

	if (!zone) {
		kc_error_set(&err, KC_ERR_INVALID, "cluster create needs --zone");
		return kc_cli_fail(cli, &err, true);
	}
	if ((rc = check_name(cli, a->pos[0], "cluster name")) ||
	    (rc = check_name(cli, zone, "zone name")))
		return rc;
	_cleanup_json_ json_t *body = json_pack("{s:s,s:s}", "name", a->pos[0], "zone", zone);
	return kc_cli_request(cli, "POST", "/api/v1/clusters", body, 0, print_name);
}

int kc_cmd_cluster_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/clusters", NULL, 0, print_clusters);
}

int kc_cmd_cluster_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("clusters", a->pos[0], NULL, "cluster name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_name);
}
