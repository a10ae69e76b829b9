/* SPDX-License-Identifier: Apache-2.0 */
/* pool prune, and the host clean-up report that image delete prints too
 * (docs/cli.md, "Pools"; docs/storage.md, "Clean-up"). */
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

static void bytes(FILE *out, json_int_t b)
{
	if (b >= 1024LL * 1024 * 1024)
		fprintf(out, "%.1f GiB", (double)b / (1024.0 * 1024 * 1024));
	else if (b >= 1024 * 1024)
		fprintf(out, "%.1f MiB", (double)b / (1024.0 * 1024));
	else
		fprintf(out, "%lld KiB", (long long)(b + 1023) / 1024);
}

static void prefix(FILE *out, const json_t *h)
{
	fputs("host ", out);
	kc_fmt_safe(out, str(h, "host"));
	fputs(": ", out);
}

void kc_cli_print_cleanup(FILE *out, const json_t *hosts, bool dry_run)
{
	size_t i, j;
	json_t *h, *v;

	json_array_foreach(hosts, i, h)
	{
		json_t *e = json_object_get(h, "error");
		if (e) {
			prefix(out, h);
			fputs("error: ", out);
			kc_fmt_safe(out, str(e, "message"));
			fputc('\n', out);
			continue;
		}
		json_array_foreach(json_object_get(h, "removed"), j, v)
		{
			prefix(out, h);
			fputs(dry_run ? "would remove " : "removed ", out);
			kc_fmt_safe(out, str(v, "path"));
			fputs(" (", out);
			bytes(out, json_integer_value(json_object_get(v, "bytes")));
			fputs(")\n", out);
		}
		json_array_foreach(json_object_get(h, "kept"), j, v)
		{
			size_t k;
			json_t *u;
			prefix(out, h);
			fputs("kept ", out);
			kc_fmt_safe(out, str(v, "path"));
			fputs(", in use by:", out);
			json_array_foreach(json_object_get(v, "users"), k, u)
			{
				fputs(k ? ", " : " ", out);
				kc_fmt_safe(out, json_string_value(u));
			}
			fputc('\n', out);
		}
		json_array_foreach(json_object_get(h, "skipped"), j, v)
		{
			prefix(out, h);
			fputs("skipped pool ", out);
			kc_fmt_safe(out, str(v, "pool"));
			fputs(": ", out);
			kc_fmt_safe(out, str(v, "reason"));
			fputc('\n', out);
		}
	}
}

static void print_prune(FILE *out, const json_t *a)
{
	bool dry = json_is_true(json_object_get(a, "dry_run"));
	kc_cli_print_cleanup(out, json_object_get(a, "hosts"), dry);
	fputs(dry ? "would free " : "freed ", out);
	bytes(out, json_integer_value(json_object_get(a, "bytes_freed")));
	fputs(" in pool ", out);
	kc_fmt_safe(out, str(a, "pool"));
	fputc('\n', out);
}

int kc_cmd_pool_prune(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *host = kc_args_value(a, "host");
	_cleanup_free_ char *path = kc_req_path("pools", a->pos[0], "/prune", "pool name", &err);
	if (!path || (host && kc_name_validate(host, "host name", &err) < 0))
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body =
		json_pack("{s:b}", "dry_run", kc_args_has(a, "dry-run") ? 1 : 0);
	if (host)
		json_object_set_new(body, "host", json_string(host));
	return kc_cli_request(cli, "POST", path, body, 0, print_prune);
}
