/* SPDX-License-Identifier: Apache-2.0 */
/* The pool verbs: list, create, show, delete (docs/cli.md, "Pools"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

/* Where the pool's data is, in one column. */
static void print_source(FILE *out, const json_t *p)
{
	const char *t = str(p, "type");
	if (strcmp(t, "nfs") == 0) {
		kc_fmt_safe(out, str(p, "server"));
		fputc(':', out);
		kc_fmt_safe(out, str(p, "export"));
	} else if (strcmp(t, "iscsi") == 0) {
		kc_fmt_safe(out, str(p, "portal"));
		fputc('/', out);
		kc_fmt_safe(out, str(p, "target"));
	} else if (strcmp(t, "logical") == 0) {
		kc_fmt_safe(out, str(p, "vg"));
	} else {
		kc_fmt_safe(out, json_is_true(json_object_get(p, "implicit")) ? "(storage.dir)"
									      : str(p, "path"));
	}
}

static void print_pools(FILE *out, const json_t *a)
{
	size_t i;
	json_t *p;

	fprintf(out, "%-24s %-10s %-8s %-20s %-10s %s\n", "NAME", "TYPE", "SCOPE", "HOST/CLUSTER",
		"OVERCOMMIT", "SOURCE");
	json_array_foreach(json_object_get(a, "pools"), i, p)
	{
		const char *where = json_is_true(json_object_get(p, "implicit")) ? "(every host)"
				    : strcmp(str(p, "scope"), "cluster") == 0	 ? str(p, "cluster")
										 : str(p, "host");
		char where_s[21], name_s[25];
		snprintf(name_s, sizeof(name_s), "%s", str(p, "name"));
		snprintf(where_s, sizeof(where_s), "%s", where);
		kc_fmt_safe(out, name_s);
		fprintf(out, "%*s %-10s %-8s ", (int)(24 - strlen(name_s)), "", str(p, "type"),
			str(p, "scope"));
		kc_fmt_safe(out, where_s);
		fprintf(out, "%*s %-10.2f ", (int)(20 - strlen(where_s)), "",
			json_number_value(json_object_get(p, "overcommit")));
		print_source(out, p);
		fputc('\n', out);
	}
}

static void gib(char *buf, size_t n, const json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, n, "%.2fGiB", json_integer_value(v) / (1024.0 * 1024 * 1024));
	else
		snprintf(buf, n, "-");
}

static void print_pool(FILE *out, const json_t *p)
{
	size_t i;
	json_t *h;

	fputs("Name:       ", out);
	kc_fmt_safe(out, str(p, "name"));
	fprintf(out, "\nType:       %s\nScope:      %s", str(p, "type"), str(p, "scope"));
	if (strcmp(str(p, "scope"), "cluster") == 0) {
		fputs(" (cluster ", out);
		kc_fmt_safe(out, str(p, "cluster"));
		fputc(')', out);
	} else if (json_is_string(json_object_get(p, "host"))) {
		fputs(" (host ", out);
		kc_fmt_safe(out, str(p, "host"));
		fputc(')', out);
	}
	fputs("\nSource:     ", out);
	print_source(out, p);
	fprintf(out, "\nOvercommit: %.2f\n", json_number_value(json_object_get(p, "overcommit")));
	fprintf(out, "%-20s %12s %12s %12s %12s %8s\n", "HOST", "CAPACITY", "ALLOCATION",
		"AVAILABLE", "VOLUMES-SUM", "VOLUMES");
	json_array_foreach(json_object_get(p, "hosts"), i, h)
	{
		char name_s[21];
		snprintf(name_s, sizeof(name_s), "%s", str(h, "host"));
		kc_fmt_safe(out, name_s);
		fprintf(out, "%*s ", (int)(20 - strlen(name_s)), "");
		json_t *e = json_object_get(h, "error");
		if (e) {
			fputs("error: ", out);
			kc_fmt_safe(out, str(e, "message"));
			fputc('\n', out);
			continue;
		}
		char c[32], al[32], av[32], v[32];
		gib(c, sizeof(c), json_object_get(h, "capacity"));
		gib(al, sizeof(al), json_object_get(h, "allocation"));
		gib(av, sizeof(av), json_object_get(h, "available"));
		gib(v, sizeof(v), json_object_get(h, "virtual"));
		fprintf(out, "%12s %12s %12s %12s %8lld\n", c, al, av, v,
			(long long)json_integer_value(json_object_get(h, "volumes")));
	}
}

static void print_done(FILE *out, const json_t *a)
{
	const char *d = json_string_value(json_object_get(a, "deleted"));
	fputs(d ? "deleted pool " : "created pool ", out);
	kc_fmt_safe(out, d ? d : str(a, "name"));
	fputc('\n', out);
}

int kc_cmd_pool_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/pools", NULL, 0, print_pools);
}

int kc_cmd_pool_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("pools", a->pos[0], NULL, "pool name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_pool);
}

int kc_cmd_pool_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("pools", a->pos[0], NULL, "pool name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_done);
}

int kc_cmd_pool_create(struct kc_cli *cli, const struct kc_args *a)
{
	static const char *const fields[] = {"type",   "host",	 "cluster", "path",	 "server",
					     "export", "portal", "target",  "initiator", "vg"};
	struct kc_error err = {0};

	if (kc_name_validate(a->pos[0], "pool name", &err) < 0)
		return kc_cli_fail(cli, &err, true);
	if (!kc_args_value(a, "type")) {
		kc_error_set(&err, KC_ERR_INVALID, "pool create needs --type");
		return kc_cli_fail(cli, &err, true);
	}
	_cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	for (size_t i = 0; i < KC_ARRAY_SIZE(fields); i++) {
		const char *v = kc_args_value(a, fields[i]);
		if (v)
			json_object_set_new(body, fields[i], json_string(v));
	}
	const char *oc = kc_args_value(a, "overcommit");
	if (oc) {
		char *end = NULL;
		errno = 0;
		double r = strtod(oc, &end);
		if (errno || end == oc || *end || !(r >= 1.0 && r <= 10.0)) {
			kc_error_set(&err, KC_ERR_INVALID,
				     "--overcommit must be a number from 1 to 10");
			return kc_cli_fail(cli, &err, true);
		}
		json_object_set_new(body, "overcommit", json_real(r));
	}
	/* The server checks the rest (which fields a type takes, paths, IQNs). */
	return kc_cli_request(cli, "POST", "/api/v1/pools", body, 0, print_done);
}
