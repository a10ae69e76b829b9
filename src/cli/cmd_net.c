/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest network verbs: net create, list, show, delete, addresses
 * (also spelt net-create, net-list, ... as virsh does).
 */
#include "cmd_net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "format.h"
#include "json_util.h"
#include "request.h"
#include "validate.h"

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "-";
}

/* The column that tells networks of one kind apart: VLAN, VNI or bridge. */
static void print_where(FILE *out, const json_t *n, char *buf, size_t len)
{
	json_t *vlan = json_object_get(n, "vlan"), *vni = json_object_get(n, "vni");
	if (vlan)
		snprintf(buf, len, "%s vlan %lld", str(n, "bridge"),
			 (long long)json_integer_value(vlan));
	else if (vni)
		snprintf(buf, len, "vni %lld via %s", (long long)json_integer_value(vni),
			 str(n, "underlay"));
	else
		snprintf(buf, len, "%s", str(n, "bridge"));
	(void)out;
}

static void print_list(FILE *out, const json_t *a)
{
	size_t i;
	json_t *n;
	fprintf(out, "%-24s %-9s %-24s %s\n", "NAME", "KIND", "BRIDGE/VLAN/VNI", "CIDR");
	json_array_foreach(json_object_get(a, "networks"), i, n)
	{
		char name[25], where[25];
		snprintf(name, sizeof(name), "%s", str(n, "name"));
		print_where(out, n, where, sizeof(where));
		kc_fmt_safe(out, name);
		fprintf(out, "%*s %-9s ", (int)(24 - strlen(name)), "", str(n, "kind"));
		kc_fmt_safe(out, where);
		fprintf(out, "%*s ", (int)(24 - strlen(where)), "");
		kc_fmt_safe(out, str(n, "cidr"));
		fputc('\n', out);
	}
}

static void print_show(FILE *out, const json_t *n)
{
	static const char *const keys[] = {"name",     "kind",	  "backend",	"bridge",
					   "cidr",     "gateway", "dhcp_start", "dhcp_end",
					   "underlay", "owner",	  "created_at"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(keys); i++) {
		if (!json_object_get(n, keys[i]))
			continue;
		fprintf(out, "%-11s ", keys[i]);
		kc_fmt_safe(out, str(n, keys[i]));
		fputc('\n', out);
	}
	static const char *const nums[] = {"vlan", "vni", "mtu"};
	for (size_t i = 0; i < KC_ARRAY_SIZE(nums); i++)
		if (json_is_integer(json_object_get(n, nums[i])))
			fprintf(out, "%-11s %lld\n", nums[i],
				(long long)json_integer_value(json_object_get(n, nums[i])));
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(n, "hosts"), i, h)
	{
		fputs("host        ", out);
		kc_fmt_safe(out, str(h, "host"));
		if (json_is_string(json_object_get(h, "local_ip"))) {
			fputs(" (vtep ", out);
			kc_fmt_safe(out, str(h, "local_ip"));
			fputc(')', out);
		}
		if (json_is_string(json_object_get(h, "dhcp_ip"))) {
			fputs(" (dhcp ", out);
			kc_fmt_safe(out, str(h, "dhcp_ip"));
			fputc(')', out);
		}
		fputc('\n', out);
	}
}

static void print_addresses(FILE *out, const json_t *a)
{
	size_t i;
	json_t *r;
	fprintf(out, "%-16s %-18s %-24s %s\n", "IP", "MAC", "VM", "HOST");
	json_array_foreach(json_object_get(a, "addresses"), i, r)
	{
		char vm[25];
		snprintf(vm, sizeof(vm), "%s", str(r, "vm"));
		fprintf(out, "%-16s %-18s ", str(r, "ip"), str(r, "mac"));
		kc_fmt_safe(out, vm);
		fprintf(out, "%*s ", (int)(24 - strlen(vm)), "");
		kc_fmt_safe(out, str(r, "host"));
		fputc('\n', out);
	}
}

static void print_done(FILE *out, const json_t *a)
{
	const char *d = json_string_value(json_object_get(a, "deleted"));
	fputs(d ? "deleted network " : "created network ", out);
	kc_fmt_safe(out, d ? d : str(a, "name"));
	fputc('\n', out);
}

int kc_cmd_net_list(struct kc_cli *cli, const struct kc_args *a)
{
	return kc_cli_request(cli, "GET", "/api/v1/networks", NULL, 0, print_list);
}

static int by_name(struct kc_cli *cli, const struct kc_args *a, const char *method,
		   const char *suffix, void (*print)(FILE *, const json_t *))
{
	struct kc_error err = {0};
	_cleanup_free_ char *path =
		kc_req_path("networks", a->pos[0], suffix, "network name", &err);
	if (!path)
		return kc_cli_fail(cli, &err, true);
	return kc_cli_request(cli, method, path, NULL, 0, print);
}

int kc_cmd_net_show(struct kc_cli *cli, const struct kc_args *a)
{
	return by_name(cli, a, "GET", NULL, print_show);
}

int kc_cmd_net_delete(struct kc_cli *cli, const struct kc_args *a)
{
	return by_name(cli, a, "DELETE", NULL, print_done);
}

int kc_cmd_net_addresses(struct kc_cli *cli, const struct kc_args *a)
{
	return by_name(cli, a, "GET", "/addresses", print_addresses);
}

int kc_cmd_net_create(struct kc_cli *cli, const struct kc_args *a)
{
	static const char *const texts[] = {"kind", "backend", "bridge",     "underlay",
					    "cidr", "gateway", "dhcp-start", "dhcp-end"};
	static const char *const nums[] = {"vlan", "vni", "mtu"};
	struct kc_error err = {0};

	if (kc_name_validate(a->pos[0], "network name", &err) < 0)
		return kc_cli_fail(cli, &err, true);
	if (!kc_args_value(a, "kind")) {
		kc_error_set(&err, KC_ERR_INVALID, "net create needs --kind");
		return kc_cli_fail(cli, &err, true);
	}
	_cleanup_json_ json_t *body = json_pack("{s:s}", "name", a->pos[0]);
	for (size_t i = 0; i < KC_ARRAY_SIZE(texts); i++) {
		const char *v = kc_args_value(a, texts[i]);
		char key[16];
		snprintf(key, sizeof(key), "%s", texts[i]);
		for (char *p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		if (v)
			json_object_set_new(body, key, json_string(v));
	}
	for (size_t i = 0; i < KC_ARRAY_SIZE(nums); i++) {
		const char *v = kc_args_value(a, nums[i]);
		if (!v)
			continue;
		char *end = NULL;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < 1 || n > 16777215) {
			kc_error_set(&err, KC_ERR_INVALID, "--%s must be a number", nums[i]);
			return kc_cli_fail(cli, &err, true);
		}
		json_object_set_new(body, nums[i], json_integer(n));
	}
	/* The server checks the rest (what a kind takes, names, ranges). */
	return kc_cli_request(cli, "POST", "/api/v1/networks", body, 0, print_done);
}
