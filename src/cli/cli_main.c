/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "format.h"
#include "json_util.h"
#include "kc-config.h"
#include "settings.h"

static void print_usage(FILE *f, const char *noun)
{
	if (!noun)
		fputs("usage: kvmcloud [--server URL] [--token TOKEN | --token-file FILE] "
		      "[--config FILE] [--json] NOUN VERB [ARGS]\n"
		      "       kvmcloud --help | --version\n\ncommands:\n",
		      f);
	for (const struct kc_verb *v = kc_verbs; v->noun; v++)
		if (!noun || strcmp(noun, v->noun) == 0)
			fprintf(f, "  kvmcloud %s\n", v->usage);
	if (!noun)
		fputs("\nenvironment: KVMCLOUD_URL, KVMCLOUD_TOKEN, KVMCLOUD_TOKEN_FILE, "
		      "KVMCLOUD_CONFIG\n",
		      f);
}

static bool noun_known(const char *noun)
{
	for (const struct kc_verb *v = kc_verbs; v->noun; v++)
		if (strcmp(noun, v->noun) == 0)
			return true;
	return false;
}

int kc_cli_fail(const struct kc_cli *cli, const struct kc_error *err, bool usage)
{
	fputs("kvmcloud: ", stderr);
	kc_fmt_safe(stderr, err->message[0] ? err->message : "unknown error");
	fputc('\n', stderr);
	if (usage && err->code == KC_ERR_INVALID) {
		if (cli && cli->verb)
			fprintf(stderr, "usage: kvmcloud %s\n", cli->verb->usage);
		return KC_EXIT_USAGE;
	}
	return KC_EXIT_FAIL;
}

struct kc_client *kc_cli_client(struct kc_cli *cli, struct kc_error *err)
{
	if (cli->client)
		return cli->client;
	struct kc_settings s;
	if (kc_settings_resolve(cli->flags, &s, err) < 0)
		return NULL;
	if (kc_settings_need_token(&s, err) == 0) {
		cli->client = kc_client_new(s.url, s.token);
		if (!cli->client)
			kc_error_set(err, KC_ERR_INTERNAL, "cannot set up the HTTP client");
	}
	kc_settings_clear(&s);
	return cli->client;
}

int kc_cli_request(struct kc_cli *cli, const char *method, const char *path, const json_t *body,
		   long timeout_s, void (*print)(FILE *out, const json_t *answer))
{
	struct kc_error err = {0};
	struct kc_client *c = kc_cli_client(cli, &err);
	if (!c)
		return kc_cli_fail(cli, &err, false);
	if (timeout_s > 0)
		kc_client_set_timeout(c, timeout_s);
	_cleanup_json_ json_t *j = NULL;
	if (kc_api_call(c, method, path, body, &j, &err) < 0)
		return kc_cli_fail(cli, &err, false);
	if (cli->json)
		kc_fmt_json(cli->out, j);
	else
		print(cli->out, j);
	return KC_EXIT_OK;
}

int kc_cli_main(int argc, char **argv)
{
	struct kc_error err = {0};
	struct kc_global_flags g;
	int next;
	if (kc_global_parse(argc, argv, &g, &next, &err) < 0) {
		kc_cli_fail(NULL, &err, false);
		print_usage(stderr, NULL);
		return KC_EXIT_USAGE;
	}
	if (g.version) {
		printf("kvmcloud %s\n", KC_VERSION);
		return KC_EXIT_OK;
	}
	if (next >= argc) {
		print_usage(g.help ? stdout : stderr, NULL);
		return g.help ? KC_EXIT_OK : KC_EXIT_USAGE;
	}
	const char *noun = argv[next];
	/* virsh-style "net-create" is "net create": split at the first '-'
	 * when what precedes it is a noun we have. */
	const char *dash = strchr(noun, '-');
	if (dash && dash[1] && !noun_known(noun) && dash - noun < 32) {
		char head[32];
		snprintf(head, sizeof(head), "%.*s", (int)(dash - noun), noun);
		if (noun_known(head)) {
			_cleanup_free_ char **nargv = calloc((size_t)argc + 2, sizeof(char *));
			if (!nargv)
				return KC_EXIT_FAIL;
			memcpy(nargv, argv, (size_t)next * sizeof(char *));
			nargv[next] = head;
			nargv[next + 1] = (char *)dash + 1;
			memcpy(nargv + next + 2, argv + next + 1,
			       (size_t)(argc - next - 1) * sizeof(char *));
			return kc_cli_main(argc + 1, nargv);
		}
	}
	if (!noun_known(noun)) {
		fprintf(stderr, "kvmcloud: unknown command '");
		kc_fmt_safe(stderr, noun);
		fputs("'\n", stderr);
		print_usage(stderr, NULL);
		return KC_EXIT_USAGE;
	}
	const char *verb = next + 1 < argc ? argv[next + 1] : NULL;
	bool verb_help = verb && (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0);
	if (!verb || verb_help || g.help) {
		const struct kc_verb *v = verb ? kc_verb_find(noun, verb) : NULL;
		if (v && g.help) {
			printf("usage: kvmcloud %s\n", v->usage);
			return KC_EXIT_OK;
		}
		bool ok = verb_help || g.help;
		if (!ok)
			fprintf(stderr, "kvmcloud: missing verb after '%s'\n", noun);
		fputs("usage:\n", ok ? stdout : stderr);
		print_usage(ok ? stdout : stderr, noun);
		return ok ? KC_EXIT_OK : KC_EXIT_USAGE;
	}
	const struct kc_verb *v = kc_verb_find(noun, verb);
	if (!v) {
		fprintf(stderr, "kvmcloud: unknown command '%s ", noun);
		kc_fmt_safe(stderr, verb);
		fputs("'\nusage:\n", stderr);
		print_usage(stderr, noun);
		return KC_EXIT_USAGE;
	}

	struct kc_cli cli = {.flags = &g, .out = stdout, .verb = v};
	struct kc_args a;
	if (kc_args_parse(&a, v->opts, argc - next - 2, argv + next + 2, v->min_args, v->max_args,
			  &err) < 0)
		return kc_cli_fail(&cli, &err, true);
	if (a.help) {
		printf("usage: kvmcloud %s\n", v->usage);
		return KC_EXIT_OK;
	}
	cli.json = g.json || a.json;

	int rc = v->fn(&cli, &a);
	kc_client_free(cli.client);
	if (fflush(stdout) != 0 && rc == KC_EXIT_OK) {
		fputs("kvmcloud: cannot write the output\n", stderr);
		rc = KC_EXIT_FAIL;
	}
	return rc;
}
