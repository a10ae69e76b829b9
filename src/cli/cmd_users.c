/* SPDX-License-Identifier: Apache-2.0 */
/* The user verbs: users, quotas, tokens, the audit log (docs/api.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

#define PASSWORD_MAX 1024

static int usage_fail(struct kc_cli *cli, struct kc_error *err)
{
	return kc_cli_fail(cli, err, true);
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

/* A quota column: the number, or "-" for unlimited. */
static void print_limit(FILE *out, const json_t *u, const char *k)
{
	const json_t *v = json_object_get(u, k);
	if (json_is_integer(v))
		fprintf(out, " %-10lld", (long long)json_integer_value(v));
	else
		fprintf(out, " %-10s", "-");
}

static void print_user_row(FILE *out, const json_t *u)
{
	fprintf(out, "%-24s %-6s", str(u, "name"), str(u, "role"));
	print_limit(out, u, "max_vms");
	print_limit(out, u, "max_vcpus");
	print_limit(out, u, "max_memory_mib");
	print_limit(out, u, "max_disk_gib");
	fputc('\n', out);
}

static void print_user_head(FILE *out)
{
	fprintf(out, "%-24s %-6s %-10s %-10s %-10s %-10s\n", "NAME", "ROLE", "MAX_VMS",
		"MAX_VCPUS", "MAX_MIB", "MAX_GIB");
}

static void print_users(FILE *out, const json_t *a)
{
	size_t i;
	json_t *u;

	print_user_head(out);
	json_array_foreach(json_object_get(a, "users"), i, u) print_user_row(out, u);
}

static void print_user(FILE *out, const json_t *a)
{
	print_user_head(out);
	print_user_row(out, a);
	const json_t *use = json_object_get(a, "usage");
	if (use)
		fprintf(out, "in use: %lld VMs, %lld vCPUs, %lld MiB, %lld GiB\n",
			(long long)json_integer_value(json_object_get(use, "vms")),
			(long long)json_integer_value(json_object_get(use, "vcpus")),
			(long long)json_integer_value(json_object_get(use, "memory_mib")),
			(long long)json_integer_value(json_object_get(use, "disk_gib")));
}

static void print_deleted(FILE *out, const json_t *a)
{
	const json_t *d = json_object_get(a, "deleted");
	if (json_is_integer(d))
		fprintf(out, "revoked token %lld\n", (long long)json_integer_value(d));
	else
		fprintf(out, "deleted %s\n", str(a, "deleted"));
}

/* Reads one line (the password) from stdin, without its newline. */
static char *read_password(struct kc_error *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0) {
		free(line);
		kc_error_set(err, KC_ERR_INVALID, "--password-stdin: no password on stdin");
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0 || n > PASSWORD_MAX) {
		free(line);
		kc_error_set(err, KC_ERR_INVALID, "--password-stdin: empty or too long password");
		return NULL;
	}
	return line;
}

int kc_cmd_user_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *role = kc_args_value(a, "role");

	if (kc_name_validate(a->pos[0], "user name", &err) < 0)
		return usage_fail(cli, &err);
	_cleanup_json_ json_t *body =
		json_pack("{s:s,s:s}", "name", a->pos[0], "role", role ? role : "user");
	if (kc_args_has(a, "password-stdin")) {
		char *pw = read_password(&err);
		if (!pw)
			return usage_fail(cli, &err);
		json_object_set_new(body, "password", json_string(pw));
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	return kc_cli_request(cli, "POST", "/api/v1/users", body, 0, print_user);
}

int kc_cmd_user_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/users", NULL, 0, print_users);
}

int kc_cmd_user_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("users", a->pos[0], NULL, "user name", &err);
	if (!path)
		return usage_fail(cli, &err);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_deleted);
}

int kc_cmd_user_quota(struct kc_cli *cli, const struct kc_args *a)
{
	static const struct {
		const char *opt, *key;
	} fields[] = {{"vms", "max_vms"},
		      {"vcpus", "max_vcpus"},
		      {"memory", "max_memory_mib"},
		      {"disk", "max_disk_gib"}};
	struct kc_error err = {0};
	_cleanup_free_ char *path = kc_req_path("users", a->pos[0], "/quota", "user name", &err);
	_cleanup_json_ json_t *body = json_object();

	if (!path)
		return usage_fail(cli, &err);
	for (size_t i = 0; i < KC_ARRAY_SIZE(fields); i++) {
		const char *v = kc_args_value(a, fields[i].opt);
		unsigned long long n;
		char what[32];
		if (!v)
			continue;
		/* "unlimited" clears a quota. */
		if (strcmp(v, "unlimited") == 0) {
			json_object_set_new(body, fields[i].key, json_null());
			continue;
		}
		snprintf(what, sizeof(what), "--%s", fields[i].opt);
		if (kc_parse_uint(v, 0, 1ULL << 40, what, &n, &err) < 0)
			return usage_fail(cli, &err);
		json_object_set_new(body, fields[i].key, json_integer((json_int_t)n));
	}
	return kc_cli_request(cli, "PUT", path, body, 0, print_user);
}

static void print_token(FILE *out, const json_t *a)
{
	fprintf(out, "token %lld (%s) for user %s", (long long)json_integer_value(json_object_get(a, "id")),
		str(a, "name"), str(a, "user"));
	if (json_object_get(a, "expires_at"))
		fprintf(out, ", expires %s", str(a, "expires_at"));
	fprintf(out, "; shown only now:\n%s\n", str(a, "token"));
}

int kc_cmd_token_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *user = kc_args_value(a, "user"), *name = kc_args_value(a, "name");
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *body = json_object();

	if (name && kc_name_validate(name, "token name", &err) < 0)
		return usage_fail(cli, &err);
	if (name)
		json_object_set_new(body, "name", json_string(name));
	if (!user) {
		/* Our own: ask the server who we are through the token list. */
		_cleanup_json_ json_t *me = NULL;
		struct kc_client *cl = kc_cli_client(cli, &err);
		if (!cl || kc_api_call(cl, "GET", "/api/v1/tokens", NULL, &me, &err) < 0)
			return kc_cli_fail(cli, &err, false);
		user = json_string_value(json_object_get(me, "user"));
		path = user ? kc_req_path("users", user, "/tokens", "user name", &err) : NULL;
	} else {
		path = kc_req_path("users", user, "/tokens", "user name", &err);
	}
	if (!path)
		return usage_fail(cli, &err);
	return kc_cli_request(cli, "POST", path, body, 0, print_token);
}

static void print_tokens(FILE *out, const json_t *a)
{
	size_t i;
	json_t *t;

	fprintf(out, "%-6s %-20s %-21s %-21s %s\n", "ID", "NAME", "CREATED", "EXPIRES",
		"LAST_USED");
	json_array_foreach(json_object_get(a, "tokens"), i, t)
	{
		fprintf(out, "%-6lld %-20s %-21s %-21s %s\n",
			(long long)json_integer_value(json_object_get(t, "id")), str(t, "name"),
			str(t, "created_at"), str(t, "expires_at"), str(t, "last_used_at"));
	}
}

int kc_cmd_token_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/tokens", NULL, 0, print_tokens);
}

int kc_cmd_token_revoke(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	unsigned long long id;
	char path[64];

	if (kc_parse_uint(a->pos[0], 1, INT64_MAX, "token ID", &id, &err) < 0)
		return usage_fail(cli, &err);
	snprintf(path, sizeof(path), "/api/v1/tokens/%llu", id);
	return kc_cli_request(cli, "DELETE", path, NULL, 0, print_deleted);
}

static void print_audit(FILE *out, const json_t *a)
{
	size_t i;
	json_t *e;

	fprintf(out, "%-20s %-16s %-6s %-40s %s\n", "AT", "USER", "RESULT", "ACTION", "TARGET");
	json_array_foreach(json_object_get(a, "entries"), i, e)
	{
		const char *code = json_string_value(
			json_object_get(json_object_get(e, "detail"), "code"));
		fprintf(out, "%-20s %-16s %-6s %-40s %s", str(e, "at"), str(e, "user"),
			str(e, "result"), str(e, "action"), str(e, "target"));
		if (code)
			fprintf(out, " (%s)", code);
		fputc('\n', out);
	}
}

int kc_cmd_audit_list(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	const char *user = kc_args_value(a, "user"), *limit = kc_args_value(a, "limit");
	unsigned long long n = 100;
	char path[160];

	if (user && kc_name_validate(user, "user name", &err) < 0)
		return usage_fail(cli, &err);
	if (limit && kc_parse_uint(limit, 1, 1000, "--limit", &n, &err) < 0)
		return usage_fail(cli, &err);
	snprintf(path, sizeof(path), "/api/v1/audit?limit=%llu%s%s", n, user ? "&user=" : "",
		 user ? user : "");
	return kc_cli_request(cli, "GET", path, NULL, 0, print_audit);
}
