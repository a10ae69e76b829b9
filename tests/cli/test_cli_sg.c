/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cli_sg.c - `kvmcloud sg rule-add` flags to the exact rule JSON the
 * API takes, and its usage errors (cmd_sg.c), without a server.
 */
#include <string.h>

#include "args.h"
#include "cleanup.h"
#include "cli.h"
#include "cmd_sg.h"
#include "json_util.h"
#include "kctest.h"

/* The rule body of `sg rule-add G ARGS` (space separated), or NULL. */
static json_t *rule_of(const char *args, struct kc_error *err)
{
	static char buf[512];
	char *argv[32];
	int argc = 0;
	struct kc_args a;
	const struct kc_verb *v = kc_verb_find("sg", "rule-add");
	snprintf(buf, sizeof(buf), "web %s", args);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 31;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	if (!v || kc_args_parse(&a, v->opts, argc, argv, v->min_args, v->max_args, err) < 0)
		return NULL;
	return kc_req_sg_rule(&a, err);
}

static void rule_is(const char *args, const char *expected)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *j = rule_of(args, &err);
	if (!KC_CHECK(j)) {
		kc_test_diag("%s: %s", args, err.message);
		return;
	}
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	KC_CHECK_STREQ(s, expected);
}

static void rule_bad(const char *args, const char *part)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *j = rule_of(args, &err);
	if (!KC_CHECK(!j))
		return;
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	if (!KC_CHECK(strstr(err.message, part)))
		kc_test_diag("%s -> %s", args, err.message);
}

KC_TEST(rule_add_flags_to_json)
{
	rule_is("--in --proto tcp --port 22 --cidr 0.0.0.0/0",
		"{\"cidr\":\"0.0.0.0/0\",\"direction\":\"in\",\"port_max\":22,\"port_min\":22,"
		"\"protocol\":\"tcp\"}");
	rule_is("--out --proto udp --port 53-54",
		"{\"direction\":\"out\",\"port_max\":54,\"port_min\":53,\"protocol\":\"udp\"}");
	rule_is("--in", "{\"direction\":\"in\",\"protocol\":\"any\"}");
	rule_is("--in --proto icmp --remote-group db",
		"{\"direction\":\"in\",\"protocol\":\"icmp\",\"remote_group\":\"db\"}");
}

KC_TEST(rule_add_usage_errors)
{
	rule_bad("--proto tcp", "--in and --out");
	rule_bad("--in --out", "--in and --out");
	rule_bad("--in --proto tcp --port 0", "--port");
	rule_bad("--in --proto tcp --port 70000", "--port");
	rule_bad("--in --proto tcp --port 22-", "--port");
	rule_bad("--in --proto tcp --port x", "--port");
	rule_bad("--in --sideways", "sideways");
}

KC_TEST_MAIN()
