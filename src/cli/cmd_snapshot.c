/* SPDX-License-Identifier: Apache-2.0 */
/* The "snapshot" verbs: VM snapshots (docs/api.md "Snapshots"). */
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

#define DESC_MAX 1024
#define TREE_MAX 128 /* deepest level printed; the server allows 100 snapshots */

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

/* "/api/v1/vms/VM/snapshots" + "/SNAP" (if snap) + suffix, names checked. */
static char *snap_path(const struct kc_args *a, bool with_snap, const char *suffix,
		       struct kc_error *err)
{
	char tail[160];
	if (with_snap && kc_name_validate(a->pos[1], "snapshot name", err) < 0)
		return NULL;
	snprintf(tail, sizeof(tail), "/snapshots%s%s%s", with_snap ? "/" : "",
		 with_snap ? a->pos[1] : "", suffix ? suffix : "");
	return kc_req_path("vms", a->pos[0], tail, "VM name", err);
}

static void print_row(FILE *out, const json_t *s, int depth)
{
	char name[TREE_MAX * 2 + 80];
	int n = snprintf(name, sizeof(name), "%*s%s%s", depth * 2, "", depth ? "+- " : "",
			 str(s, "name"));
	fputs(name, out);
	fprintf(out, "%*s %-20s %-8s %-6s %-7s ", n < 32 ? 32 - n : 0, "", str(s, "created_at"),
		str(s, "state"), json_is_true(json_object_get(s, "memory")) ? "yes" : "no",
		json_is_true(json_object_get(s, "current")) ? "*" : "");
	kc_fmt_safe(out, json_string_value(json_object_get(s, "description")));
	fputc('\n', out);
}

/* The subtree under `parent` (NULL: the roots), in the server's order. */
static void print_tree(FILE *out, const json_t *snaps, const char *parent, int depth)
{
	size_t i;
	json_t *s;

	if (depth >= TREE_MAX)
		return;
	json_array_foreach(snaps, i, s)
	{
		const char *p = json_string_value(json_object_get(s, "parent"));
		bool mine = parent ? p && strcmp(p, parent) == 0 : !p;
		if (!mine)
			continue;
		print_row(out, s, depth);
		print_tree(out, snaps, str(s, "name"), depth + 1);
	}
}

static void print_list(FILE *out, const json_t *answer)
{
	const json_t *snaps = json_object_get(answer, "snapshots");
	if (json_array_size(snaps) == 0) {
		fputs("no snapshots\n", out);
		return;
	}
	fprintf(out, "%-32s %-20s %-8s %-6s %-7s %s\n", "NAME", "CREATED", "STATE", "MEMORY",
		"CURRENT", "DESCRIPTION");
	print_tree(out, snaps, NULL, 0);
}

static void print_snapshot(FILE *out, const json_t *s)
{
	size_t i;
	json_t *v;

	fputs("Name:        ", out);
	kc_fmt_safe(out, str(s, "name"));
	fputs("\nVM:          ", out);
	kc_fmt_safe(out, str(s, "vm"));
	fprintf(out, "\nCreated:     %s\nState:       %s\nMemory:      %s", str(s, "created_at"),
		str(s, "state"), json_is_true(json_object_get(s, "memory")) ? "yes" : "no");
	const json_t *mb = json_object_get(s, "memory_bytes");
	if (json_is_integer(mb)) {
		char buf[32];
		kc_fmt_kib(buf, sizeof(buf), (long long)json_integer_value(mb) / 1024);
		fprintf(out, " (%s saved)", buf);
	}
	fprintf(out, "\nCurrent:     %s\nParent:      ",
		json_is_true(json_object_get(s, "current")) ? "yes" : "no");
	kc_fmt_safe(out, str(s, "parent"));
	fputs("\nChildren:    ", out);
	json_array_foreach(json_object_get(s, "children"), i, v)
	{
		if (i)
			fputs(", ", out);
		kc_fmt_safe(out, json_string_value(v));
	}
	if (json_array_size(json_object_get(s, "children")) == 0)
		fputc('-', out);
	fputs("\nDescription: ", out);
	kc_fmt_safe(out, str(s, "description"));
	fputs("\nDisks:", out);
	json_array_foreach(json_object_get(s, "disks"), i, v)
	{
		fputs("\n  ", out);
		kc_fmt_safe(out, str(v, "target"));
		fputs(": ", out);
		kc_fmt_safe(out, str(v, "snapshot"));
		const json_t *sz = json_object_get(v, "size_bytes");
		if (json_is_integer(sz)) {
			char buf[32];
			kc_fmt_kib(buf, sizeof(buf), (long long)json_integer_value(sz) / 1024);
			fprintf(out, " (disk size %s)", buf);
		}
	}
	fputc('\n', out);
}

static void print_deleted(FILE *out, const json_t *answer)
{
	long long n = json_integer_value(json_object_get(answer, "count"));
	fputs("deleted snapshot ", out);
	kc_fmt_safe(out, str(answer, "deleted"));
	if (n > 1)
		fprintf(out, " and %lld below it", n - 1);
	fputc('\n', out);
}

int kc_cmd_snapshot_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *desc = kc_args_value(a, "description");
	_cleanup_free_ char *path = snap_path(a, false, NULL, &err);
	if (!path || kc_name_validate(a->pos[1], "snapshot name", &err) < 0)
		return kc_cli_fail(cli, &err, true);
	if (desc && strlen(desc) > DESC_MAX) {
		kc_error_set(&err, KC_ERR_INVALID, "--description: at most %d bytes", DESC_MAX);
		return kc_cli_fail(cli, &err, true);
	}
	_cleanup_json_ json_t *body =
		json_pack("{s:s,s:s?}", "name", a->pos[1], "description", desc);
	/* Saving a running guest's memory takes a while under TCG. */
	return kc_cli_job_request(cli, a, "POST", path, body, print_snapshot);
}

int kc_cmd_snapshot_list(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = snap_path(a, false, NULL, &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_list);
}

int kc_cmd_snapshot_show(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = snap_path(a, true, NULL, &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, "GET", path, NULL, 0, print_snapshot);
}

int kc_cmd_snapshot_revert(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = snap_path(a, true, "/revert", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = json_pack("{s:b}", "start", kc_args_has(a, "start"));
	return kc_cli_job_request(cli, a, "POST", path, body, kc_fmt_vm_show);
}

int kc_cmd_snapshot_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path =
		snap_path(a, true, kc_args_has(a, "children") ? "?children=true" : NULL, &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	/* Deleting internal snapshots of a large disk can take a while. */
	return kc_cli_request(cli, "DELETE", path, NULL, 300, print_deleted);
}
