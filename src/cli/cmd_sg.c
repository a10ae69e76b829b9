/* SPDX-License-Identifier: Apache-2.0 */
/* The security group verbs (cmd_sg.h). */
#include <string.h>

#include "cleanup.h"
#include "cmd_sg.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

#define SG_GROUPS_MAX 10 /* the server's KC_SG_GROUPS_PER_VM */

static const char *s_or_dash(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

static void print_list(FILE *out, const json_t *a)
{
	size_t i;
	json_t *g;

	fprintf(out, "%-24s %-16s %5s %4s  %s\n", "NAME", "OWNER", "RULES", "VMS", "DESCRIPTION");
	json_array_foreach(json_object_get(a, "security_groups"), i, g)
	{
		fprintf(out, "%-24s %-16s %5lld %4lld  ", s_or_dash(g, "name"),
			s_or_dash(g, "owner"),
			(long long)json_integer_value(json_object_get(g, "rule_count")),
			(long long)json_integer_value(json_object_get(g, "vm_count")));
		kc_fmt_safe(out, s_or_dash(g, "description"));
		fputc('\n', out);
	}
}

static void print_rule(FILE *out, const json_t *r)
{
	char ports[16] = "";
	json_int_t lo = json_integer_value(json_object_get(r, "port_min"));
	json_int_t hi = json_integer_value(json_object_get(r, "port_max"));
	if (lo && lo != hi)
		snprintf(ports, sizeof(ports), "%lld-%lld", (long long)lo, (long long)hi);
	else if (lo)
		snprintf(ports, sizeof(ports), "%lld", (long long)lo);
	const char *rg = json_string_value(json_object_get(r, "remote_group"));
	fprintf(out, "  %-36s %-3s %-4s %-11s ", s_or_dash(r, "id"), s_or_dash(r, "direction"),
		s_or_dash(r, "protocol"), ports[0] ? ports : "all");
	if (rg) {
		fputs("group ", out);
		kc_fmt_safe(out, rg);
	} else {
		fputs(s_or_dash(r, "cidr"), out);
	}
	fputc('\n', out);
}

static void print_group(FILE *out, const json_t *g)
{
	size_t i;
	json_t *x;

	fputs("Name:        ", out);
	kc_fmt_safe(out, s_or_dash(g, "name"));
	fputs("\nOwner:       ", out);
	kc_fmt_safe(out, s_or_dash(g, "owner"));
	fputs("\nDescription: ", out);
	kc_fmt_safe(out, s_or_dash(g, "description"));
	fprintf(out, "\nCreated:     %s\nRules:       %zu\n", s_or_dash(g, "created_at"),
		json_array_size(json_object_get(g, "rules")));
	json_array_foreach(json_object_get(g, "rules"), i, x) print_rule(out, x);
	fputs("VMs:        ", out);
	json_array_foreach(json_object_get(g, "vms"), i, x)
	{
		fputc(' ', out);
		kc_fmt_safe(out, json_string_value(x));
	}
	fputc('\n', out);
}

/* What each host said when the change was pushed to it. */
static void print_hosts(FILE *out, const json_t *a)
{
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(a, "hosts"), i, h)
	{
		fputs("  host ", out);
		kc_fmt_safe(out, s_or_dash(h, "host"));
		if (json_is_true(json_object_get(h, "applied"))) {
			fputs(": applied\n", out);
		} else {
			fputs(": NOT applied: ", out);
			kc_fmt_safe(out, s_or_dash(h, "error"));
			fputc('\n', out);
		}
	}
}

static void print_rule_added(FILE *out, const json_t *a)
{
	fputs("added rule", out);
	print_rule(out, a);
	print_hosts(out, a);
}

static void print_deleted(FILE *out, const json_t *a)
{
	fputs("deleted ", out);
	kc_fmt_safe(out, s_or_dash(a, "deleted"));
	fputc('\n', out);
	print_hosts(out, a);
}

static void print_vm_set(FILE *out, const json_t *a)
{
	size_t i;
	json_t *g;
	fputs("VM ", out);
	kc_fmt_safe(out, s_or_dash(a, "vm"));
	fputs(" security groups:", out);
	json_array_foreach(json_object_get(a, "security_groups"), i, g)
	{
		fputc(' ', out);
		kc_fmt_safe(out, json_string_value(g));
	}
	fputc('\n', out);
	print_hosts(out, a);
}

int kc_cmd_sg_create(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	if (kc_name_validate(a->pos[0], "security group name", &err) < 0)
		return kc_cli_fail(cli, &err, true);
	_cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	const char *desc = kc_args_value(a, "description");
	if (!body || (desc && json_object_set_new(body, "description", json_string(desc)) < 0))
		return kc_cli_fail(cli, &(struct kc_error){KC_ERR_INTERNAL, "out of memory"},
				   false);
	return kc_cli_request(cli, "POST", "/api/v1/security-groups", body, 0, print_group);
}

int kc_cmd_sg_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/security-groups", NULL, 0, print_list);
}

static int on_group(struct kc_cli *cli, const struct kc_args *a, const char *method,
		    const char *suffix, const json_t *body,
		    void (*print)(FILE *out, const json_t *answer))
{
	struct kc_error err = {0};
	_cleanup_free_ char *path =
		kc_req_path("security-groups", a->pos[0], suffix, "security group name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, method, path, body, 0, print);
}

int kc_cmd_sg_show(struct kc_cli *cli, const struct kc_args *a)
{
	return on_group(cli, a, "GET", NULL, NULL, print_group);
}

int kc_cmd_sg_delete(struct kc_cli *cli, const struct kc_args *a)
{
	return on_group(cli, a, "DELETE", NULL, NULL, print_deleted);
}

json_t *kc_req_sg_rule(const struct kc_args *a, struct kc_error *err)
{
	bool in = kc_args_has(a, "in"), out = kc_args_has(a, "out");
	const char *proto = kc_args_value(a, "proto"), *port = kc_args_value(a, "port");
	const char *cidr = kc_args_value(a, "cidr"), *rg = kc_args_value(a, "remote-group");

	if (in == out) {
		kc_error_set(err, KC_ERR_INVALID, "give exactly one of --in and --out");
		return NULL;
	}
	_cleanup_json_ json_t *r = json_pack("{s:s,s:s}", "direction", in ? "in" : "out",
					     "protocol", proto ? proto : "any");
	if (!r) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (port) {
		char lo[8] = "", *dash = strchr(port, '-');
		unsigned long long pmin, pmax;
		snprintf(lo, sizeof(lo), "%.*s", dash ? (int)(dash - port) : (int)strlen(port),
			 port);
		if (kc_parse_uint(lo, 1, 65535, "--port", &pmin, err) < 0 ||
		    kc_parse_uint(dash ? dash + 1 : lo, 1, 65535, "--port", &pmax, err) < 0)
			return NULL;
		json_object_set_new(r, "port_min", json_integer((json_int_t)pmin));
		json_object_set_new(r, "port_max", json_integer((json_int_t)pmax));
	}
	/* The server checks the rest (CIDR syntax, protocol, ranges). */
	if (cidr)
		json_object_set_new(r, "cidr", json_string(cidr));
	if (rg)
		json_object_set_new(r, "remote_group", json_string(rg));
	return steal_ptr(&r);
}

int kc_cmd_sg_rule_add(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *body = kc_req_sg_rule(a, &err);
	if (!body)
		return kc_cli_fail(cli, &err, true);
	return on_group(cli, a, "POST", "/rules", body, print_rule_added);
}

int kc_cmd_sg_rule_delete(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	char suffix[KC_NAME_MAX + 8];
	if (kc_name_validate(a->pos[1], "rule id", &err) < 0)
		return kc_cli_fail(cli, &err, true);
	snprintf(suffix, sizeof(suffix), "/rules/%s", a->pos[1]);
	return on_group(cli, a, "DELETE", suffix, NULL, print_deleted);
}

/* `vm set-sg VM G1,G2` ("" or "none" clears them). */
int kc_cmd_vm_set_sg(struct kc_cli *cli, const struct kc_args *a)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *list = json_array();
	char buf[(KC_NAME_MAX + 1) * SG_GROUPS_MAX + 1];
	_cleanup_free_ char *path =
		kc_req_path("vms", a->pos[0], "/security-groups", "VM name", &err);

	if (!path || !list)
		return kc_cli_fail(cli, &err, true);
	if (strlen(a->pos[1]) >= sizeof(buf)) {
		kc_error_set(&err, KC_ERR_INVALID, "at most %d security groups", SG_GROUPS_MAX);
		return kc_cli_fail(cli, &err, true);
	}
	snprintf(buf, sizeof(buf), "%s", a->pos[1]);
	if (strcmp(buf, "none") != 0) {
		char *save = NULL;
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (kc_name_validate(t, "security group name", &err) < 0)
				return kc_cli_fail(cli, &err, true);
			json_array_append_new(list, json_string(t));
		}
	}
	_cleanup_json_ json_t *body = json_pack("{s:O}", "security_groups", list);
	return kc_cli_request(cli, "PUT", path, body, 0, print_vm_set);
}
