/* SPDX-License-Identifier: Apache-2.0 */
/* The group verbs: list, show, delete affinity groups (docs/cli.md). */
#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "request.h"

static const char *s_or_dash(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

static void print_groups(FILE *out, const json_t *a)
{
	size_t i;
	json_t *g;

	fprintf(out, "%-24s %-14s %-16s %7s  %s\n", "NAME", "POLICY", "OWNER", "MEMBERS",
		"CREATED");
	json_array_foreach(json_object_get(a, "groups"), i, g)
	{
		fprintf(out, "%-24s %-14s %-16s %7lld  %s\n", s_or_dash(g, "name"),
			s_or_dash(g, "policy"), s_or_dash(g, "owner"),
			(long long)json_integer_value(json_object_get(g, "member_count")),
			s_or_dash(g, "created_at"));
	}
}

static void print_group(FILE *out, const json_t *g)
{
	static const char *const rows[][2] = {
		{"Name:    ", "name"},
		{"Policy:  ", "policy"},
		{"Owner:   ", "owner"},
		{"Created: ", "created_at"},
	};
	size_t i;
	json_t *m;

	for (i = 0; i < KC_ARRAY_SIZE(rows); i++) {
		fputs(rows[i][0], out);
		kc_fmt_safe(out, s_or_dash(g, rows[i][1]));
		fputc('\n', out);
	}
	fprintf(out, "Members: %lld\n",
		(long long)json_integer_value(json_object_get(g, "member_count")));
	json_array_foreach(json_object_get(g, "members"), i, m)
	{
		fputs("  ", out);
		kc_fmt_safe(out, s_or_dash(m, "name"));
		fputs(" on ", out);
		kc_fmt_safe(out, s_or_dash(m, "host"));
		fputs(" (", out);
		kc_fmt_safe(out, s_or_dash(m, "state"));
		fputs(")\n", out);
	}
}

static void print_deleted(FILE *out, const json_t *a)
{
	fputs("deleted group ", out);
	kc_fmt_safe(out, s_or_dash(a, "deleted"));
	fputc('\n', out);
}

int kc_cmd_group_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/groups", NULL, 0, print_groups);
}

/* show and delete: one request on /api/v1/groups/NAME. */
static int on_group(struct kc_cli *cli, const struct kc_args *a, const char *method,
		    void (*print)(FILE *out, const json_t *answer))
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("groups", a->pos[0], NULL, "group name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, method, path, NULL, 0, print);
}

int kc_cmd_group_show(struct kc_cli *cli, const struct kc_args *a)
{
	return on_group(cli, a, "GET", print_group);
}

int kc_cmd_group_delete(struct kc_cli *cli, const struct kc_args *a)
{
	return on_group(cli, a, "DELETE", print_deleted);
}
