/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for hostfw_render.h.  Every tests/golden/hostfw/<case>.json
 * is {"policy": {...}, "servers": [...], "peers": [...]} plus, for a case
 * that must be refused, "expect_error" (an error code name) and
 * "expect_message" (a part of the message).  The others are compared with
 * <case>.nft; KC_UPDATE_GOLDEN=1 rewrites those from the current output.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hostfw_render.h"
#include "json_util.h"
#include "kctest.h"

#ifndef KC_SOURCE_DIR
#error "KC_SOURCE_DIR must be defined by the build"
#endif
#define GOLDEN_DIR KC_SOURCE_DIR "/tests/golden/hostfw"

static char *read_file(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	return buf;
}

static char *render(const char *policy_json, struct kc_error *err)
{
	_cleanup_json_ json_t *p = json_loads(policy_json, 0, NULL);
	char *text = NULL;
	if (!p) {
		kc_test_diag("bad JSON in the test: %s", policy_json);
		return NULL;
	}
	if (kc_hostfw_render(p, NULL, NULL, &text, err) < 0)
		return NULL;
	return text;
}

KC_TEST(empty_policy_has_the_defaults)
{
	struct kc_error err = {0};
	_cleanup_free_ char *t = render("{}", &err);
	if (!KC_CHECK(t != NULL))
		return;
	KC_CHECK(strstr(t, "delete table inet kvmcloud_host\n") != NULL);
	KC_CHECK(strstr(t, "policy drop;") != NULL);
	KC_CHECK(strstr(t, "tcp dport 22 accept") != NULL);
	KC_CHECK(strstr(t, "tcp dport 5900-5999 ip saddr @servers accept") != NULL);
	KC_CHECK(strstr(t, "tcp dport 49152-49215 ip saddr @peers accept") != NULL);
	KC_CHECK(strstr(t, "udp dport 4789 ip saddr @peers accept") != NULL);
	KC_CHECK(strstr(t, "iifname \"virbr*\"") != NULL);
	/* Only our table, and never the whole ruleset. */
	KC_CHECK(strstr(t, "flush") == NULL);
	KC_CHECK(strstr(t, "elements") == NULL);
}

KC_TEST(switches_remove_their_rules)
{
	struct kc_error err = {0};
	_cleanup_free_ char *t = render("{\"vnc\": false, \"migration\": false, \"vxlan\": false, "
					"\"libvirt_tls\": false, \"nat_bridges\": []}",
					&err);
	if (!KC_CHECK(t != NULL))
		return;
	KC_CHECK(strstr(t, "5900") == NULL);
	KC_CHECK(strstr(t, "49152") == NULL);
	KC_CHECK(strstr(t, "4789") == NULL);
	KC_CHECK(strstr(t, "16514") == NULL);
	KC_CHECK(strstr(t, "iifname") == NULL);
}

KC_TEST(merges_and_dedups_addresses)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *p = json_pack("{s:[s,s]}", "servers", "10.0.0.1", "10.0.0.1");
	_cleanup_json_ json_t *s = json_pack("[s,s]", "10.0.0.1", "fd00::1");
	_cleanup_json_ json_t *peers = json_pack("[s]", "10.0.0.2");
	_cleanup_free_ char *t = NULL;
	if (!KC_CHECK_INT(kc_hostfw_render(p, s, peers, &t, &err), 0))
		return;
	KC_CHECK(strstr(t, "elements = { 10.0.0.1 }") != NULL);
	KC_CHECK(strstr(t, "elements = { fd00::1 }") != NULL);
	KC_CHECK(strstr(t, "elements = { 10.0.0.2 }") != NULL);
}

KC_TEST(too_many_addresses)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *s = json_array();
	char a[32];
	for (int i = 0; i <= KC_HOSTFW_ADDRS_MAX; i++) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 250, i % 250 + 1);
		json_array_append_new(s, json_string(a));
	}
	_cleanup_json_ json_t *p = json_object();
	_cleanup_free_ char *t = NULL;
	KC_CHECK_INT(kc_hostfw_render(p, s, NULL, &t, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK(t == NULL);
}

KC_TEST(remove_text_is_our_table_only)
{
	KC_CHECK_STREQ(kc_hostfw_render_remove(),
		       "table inet kvmcloud_host\ndelete table inet kvmcloud_host\n");
}

static void run_case(const char *file)
{
	char path[4096], nft_path[4096];
	struct kc_error err = {0};
	json_error_t jerr;
	_cleanup_free_ char *text = NULL, *golden = NULL;

	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, file);
	snprintf(nft_path, sizeof(nft_path), "%.*s.nft", (int)(strlen(path) - 5), path);
	_cleanup_json_ json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		kc_test_fail(path, jerr.line, "cannot parse case: %s", jerr.text);
		return;
	}
	const char *expect = json_string_value(json_object_get(j, "expect_error"));
	const char *expect_msg = json_string_value(json_object_get(j, "expect_message"));
	int rc = kc_hostfw_render(json_object_get(j, "policy"), json_object_get(j, "servers"),
				  json_object_get(j, "peers"), &text, &err);
	if (expect) {
		if (KC_CHECK_INT(rc, -1) && KC_CHECK(text == NULL)) {
			KC_CHECK_STREQ(kc_errcode_name(err.code), expect);
			KC_CHECK_INT(kc_hostfw_policy_check(json_object_get(j, "policy"), NULL) <
						     0 ||
					     json_object_get(j, "servers") ||
					     json_object_get(j, "peers"),
				     1);
			if (expect_msg && !strstr(err.message, expect_msg))
				kc_test_fail(path, 0, "message \"%s\" lacks \"%s\"", err.message,
					     expect_msg);
		}
		return;
	}
	if (!KC_CHECK_INT(rc, 0)) {
		kc_test_diag("%s: %s", path, err.message);
		return;
	}
	KC_CHECK_INT(kc_hostfw_policy_check(json_object_get(j, "policy"), &err), 0);
	if (getenv("KC_UPDATE_GOLDEN") && strcmp(getenv("KC_UPDATE_GOLDEN"), "1") == 0) {
		_cleanup_fclose_ FILE *f = fopen(nft_path, "we");
		if (!f || fputs(text, f) < 0)
			kc_test_fail(nft_path, 0, "cannot write: %s", strerror(errno));
		else
			kc_test_diag("updated %s", nft_path);
		return;
	}
	golden = read_file(nft_path);
	if (!golden) {
		kc_test_fail(nft_path, 0, "cannot read (%s); generate it with KC_UPDATE_GOLDEN=1",
			     strerror(errno));
		return;
	}
	if (strcmp(golden, text) != 0) {
		kc_test_fail(nft_path, 0, "generated nft text differs from the golden file");
		kc_test_diag("generated:\n%s", text);
	}
}

static int is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

int main(void)
{
	struct dirent **names = NULL;
	kc_test_run_registered();
	int n = scandir(GOLDEN_DIR, &names, is_json, alphasort);
	if (n <= 0) {
		kc_test_begin("golden_cases_exist");
		kc_test_fail(GOLDEN_DIR, 0, "no cases found");
		kc_test_end();
	}
	for (int i = 0; i < n; i++) {
		kc_test_begin(names[i]->d_name);
		run_case(names[i]->d_name);
		kc_test_end();
		free(names[i]);
	}
	free(names);
	return kc_test_finish();
}
