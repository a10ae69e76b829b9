/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvmcloud-agent - the per-host agent as a command: check the host, show its
 * facts, join a cluster, run the daemon.  A thin layer over the agent
 * library; verbs are rows of a table.
 */
#include <stdio.h>
#include <string.h>

#include <libvirt/libvirt.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"
#include "json_util.h"
#include "kc-config.h"
#include "verbs.h"

#define DEFAULT_CONFIG "/etc/kvmcloud/agent.conf"

void kc_cli_print_error(const struct kc_error *err)
{
	fprintf(stderr, "kvmcloud-agent: %s: %s\n", kc_errcode_name(err->code), err->message);
}

static void print_error(const struct kc_error *err)
{
	kc_cli_print_error(err);
}

int kc_cli_config(const struct kc_cli_opts *o, struct kc_config **ret, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	if (!cfg)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_config_load(cfg, o->config, o->config_given, err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_overrides; i++)
		if (kc_config_set_pair(cfg, o->overrides[i], err) < 0)
			return -1;
	*ret = steal_ptr(&cfg);
	return 0;
}

static struct kc_agent *agent_open(const struct kc_cli_opts *o, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = NULL;
	if (kc_cli_config(o, &cfg, err) < 0)
		return NULL;
	struct kc_agent *a = NULL;
	if (kc_agent_new(cfg, &a, err) < 0)
		return NULL;
	return a;
}

static void print_accel(FILE *f, struct kc_agent *a, json_t *facts)
{
	const char *reason = json_string_value(json_object_get(facts, "accel_reason"));
	if (kc_agent_accel(a) == KC_ACCEL_KVM)
		fprintf(f, "accelerator: KVM (hardware virtualisation) — %s\n",
			reason ? reason : "");
	else
		fprintf(f, "accelerator: TCG (software emulation) — %s\n", reason ? reason : "");
}

static int cmd_check(const struct kc_cli_opts *o)
{
	struct kc_error err = {0};
	struct kc_agent *a = agent_open(o, &err);
	if (!a) {
		print_error(&err);
		return 2;
	}
	int rc = 2;
	_cleanup_json_ json_t *facts = NULL, *check = NULL;
	if (kc_agent_host_facts(a, &facts, &err) < 0)
		goto out;
	/* A verdict the agent just probed (not read from its cache) need not be
	 * probed twice. */
	const char *why = json_string_value(json_object_get(facts, "accel_reason"));
	bool fresh = why && !strstr(why, "(cached in");
	bool probe = !o->no_probe && !fresh;
	if (kc_agent_host_check(a, probe, &check, &err) < 0)
		goto out;
	if (probe) {
		json_decref(facts);
		facts = NULL;
		if (kc_agent_host_facts(a, &facts, &err) < 0)
			goto out;
	}
	print_accel(o->json ? stderr : stdout, a, facts);
	const char *summary = json_string_value(json_object_get(check, "summary"));
	if (o->json) {
		json_dumpf(check, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(check, "items"), i, it)
		{
			char st[8];
			snprintf(st, sizeof(st), "%s",
				 json_string_value(json_object_get(it, "status")));
			for (char *p = st; *p; p++)
				*p = (char)(*p - 32 * (*p >= 'a' && *p <= 'z'));
			printf("%s %s: %s\n", st, json_string_value(json_object_get(it, "name")),
			       json_string_value(json_object_get(it, "reason")));
		}
		printf("summary: %s\n", summary);
	}
	rc = summary && strcmp(summary, "fail") == 0 ? 1 : 0;
out:
	if (rc == 2)
		print_error(&err);
	kc_agent_free(a);
	return rc;
}

static int cmd_facts(const struct kc_cli_opts *o)
{
	struct kc_error err = {0};
	struct kc_agent *a = agent_open(o, &err);
	if (!a) {
		print_error(&err);
		return 2;
	}
	_cleanup_json_ json_t *facts = NULL;
	int rc = 0;
	if (kc_agent_host_facts(a, &facts, &err) < 0) {
		print_error(&err);
		rc = 2;
	} else if (o->json) {
		json_dumpf(facts, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		const char *k;
		json_t *v;
		json_object_foreach(facts, k, v)
		{
			char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
			printf("%-16s %s\n", k, s ? s : json_string_value(v));
			free(s);
		}
	}
	kc_agent_free(a);
	return rc;
}

static int cmd_version(const struct kc_cli_opts *o)
{
	unsigned long lv = 0;
	virGetVersion(&lv, NULL, NULL);
	printf("kvmcloud-agent %s (libvirt library %lu.%lu.%lu)\n", KC_VERSION, lv / 1000000,
	       lv / 1000 % 1000, lv % 1000);
	return 0;
}

static int cmd_join(const struct kc_cli_opts *o)
{
	return kc_cmd_join(o);
}

static int cmd_run(const struct kc_cli_opts *o)
{
	return kc_cmd_run(o);
}

/* Options a verb accepts beyond -c and -o. */
enum { OPT_JSON = 1, OPT_NO_PROBE = 2, OPT_CA_SHA256 = 4 };

static const struct verb {
	const char *name;
	int (*fn)(const struct kc_cli_opts *o);
	const char *usage;
	unsigned options;
	size_t n_args; /* positional arguments, exactly */
} verbs[] = {
	{"check", cmd_check, "check [--no-probe] [--json]    is this host fit to run guests?",
	 OPT_JSON | OPT_NO_PROBE, 0},
	{"facts", cmd_facts, "facts [--json]                 CPUs, memory, versions, accelerator",
	 OPT_JSON, 0},
	{"join", cmd_join,
	 "join SERVER_URL TOKEN --ca-sha256 HEX\n"
	 "                                 get this host's certificate from the server",
	 OPT_CA_SHA256, 2},
	{"run", cmd_run, "run                            the daemon: serve the cluster link", 0, 0},
	{"version", cmd_version, "version                        this program's version", 0, 0},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmcloud-agent [-c FILE] [-o key=value]... VERB\n\nverbs:\n");
	for (size_t i = 0; i < KC_ARRAY_SIZE(verbs); i++)
		fprintf(f, "  %s\n", verbs[i].usage);
	fprintf(f,
		"\n  -c FILE       configuration (default %s; a missing default is fine)\n"
		"  -o key=value  override one configuration key (see docs/agent.md)\n",
		DEFAULT_CONFIG);
}

static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "kvmcloud-agent: %s '%s'\n", what, arg);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct kc_cli_opts o = {.config = DEFAULT_CONFIG};
	const struct verb *verb = NULL;
	unsigned seen = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if ((strcmp(arg, "-c") == 0 || strcmp(arg, "-o") == 0 ||
		     strcmp(arg, "--ca-sha256") == 0) &&
		    i + 1 >= argc) {
			fprintf(stderr, "kvmcloud-agent: %s needs an argument\n", arg);
			return 2;
		}
		if (strcmp(arg, "-c") == 0) {
			o.config = argv[++i];
			o.config_given = true;
		} else if (strcmp(arg, "-o") == 0) {
			if (o.n_overrides == KC_CLI_MAX_OVERRIDES) {
				fprintf(stderr, "kvmcloud-agent: at most %d -o options\n",
					KC_CLI_MAX_OVERRIDES);
				return 2;
			}
			o.overrides[o.n_overrides++] = argv[++i];
		} else if (strcmp(arg, "--json") == 0) {
			o.json = true;
			seen |= OPT_JSON;
		} else if (strcmp(arg, "--no-probe") == 0) {
			o.no_probe = true;
			seen |= OPT_NO_PROBE;
		} else if (strcmp(arg, "--ca-sha256") == 0) {
			o.ca_sha256 = argv[++i];
			seen |= OPT_CA_SHA256;
		} else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (!verb && arg[0] != '-') {
			for (size_t k = 0; k < KC_ARRAY_SIZE(verbs); k++)
				if (strcmp(verbs[k].name, arg) == 0)
					verb = &verbs[k];
			if (!verb)
				return bad_usage("unknown verb", arg);
		} else if (verb && arg[0] != '-' && o.n_args < verb->n_args) {
			o.args[o.n_args++] = arg;
		} else {
			return bad_usage("unexpected argument", arg);
		}
	}
	if (!verb) {
		usage(stderr);
		return 2;
	}
	if (seen & ~verb->options) {
		fprintf(stderr, "kvmcloud-agent: %s does not take %s\n", verb->name,
			seen & OPT_NO_PROBE ? "--no-probe"
			: seen & OPT_JSON   ? "--json"
					    : "--ca-sha256");
		return 2;
	}
	if (o.n_args != verb->n_args)
		return bad_usage("wrong number of arguments for", verb->name);
	return verb->fn(&o);
}
