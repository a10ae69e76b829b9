/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for config.h: key=value files, typed getters. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "kctest.h"

/* Writes `text` to a new temporary file; returns its malloc'd path. */
static char *tmp_file(const char *text)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = NULL;
	if (asprintf(&path, "%s/kctest-config-XXXXXX", dir) < 0)
		return NULL;
	int fd = mkstemp(path);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	if (!ok) {
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/* Loads text as a config file; returns the load's result. */
static int load_text(struct kc_config *cfg, const char *text, struct kc_error *err, char **ret_path)
{
	char *path = tmp_file(text);
	if (!KC_CHECK(path != NULL))
		return -2;
	int rc = kc_config_load(cfg, path, true, err);
	unlink(path);
	if (ret_path)
		*ret_path = path;
	else
		free(path);
	return rc;
}

KC_TEST(parse_comments_blanks_trimming)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	KC_CHECK_INT(load_text(cfg,
			       "# agent.properties\n"
			       "\n"
			       "   \n"
			       "guest.cpu.mode=host-model\n"
			       "  libvirt.uri  =  qemu:///system  \n"
			       "\t# indented comment\n"
			       "empty=\n"
			       "with.equals = a=b=c\n"
			       "tabs\t=\tx y\t\n"
			       "no.newline.at.end=last",
			       &err, NULL),
		     0);
	KC_CHECK_STREQ(err.message, "");
	KC_CHECK_STREQ(kc_config_get(cfg, "guest.cpu.mode", NULL), "host-model");
	KC_CHECK_STREQ(kc_config_get(cfg, "libvirt.uri", NULL), "qemu:///system");
	KC_CHECK_STREQ(kc_config_get(cfg, "empty", "default"), "");
	KC_CHECK_STREQ(kc_config_get(cfg, "with.equals", NULL), "a=b=c");
	KC_CHECK_STREQ(kc_config_get(cfg, "tabs", NULL), "x y");
	KC_CHECK_STREQ(kc_config_get(cfg, "no.newline.at.end", NULL), "last");
	KC_CHECK_STREQ(kc_config_get(cfg, "# agent.properties", NULL), NULL);
	KC_CHECK_STREQ(kc_config_get(cfg, "missing", "dflt"), "dflt");
	KC_CHECK(kc_config_get(cfg, "missing", NULL) == NULL);
}

KC_TEST(later_keys_override)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	KC_CHECK_INT(load_text(cfg, "a=1\nb=2\na=3\n", &err, NULL), 0);
	KC_CHECK_STREQ(kc_config_get(cfg, "a", NULL), "3");
	KC_CHECK_INT(load_text(cfg, "b=20\n", &err, NULL), 0);
	KC_CHECK_STREQ(kc_config_get(cfg, "b", NULL), "20");
	KC_CHECK_STREQ(kc_config_get(cfg, "a", NULL), "3");
	KC_CHECK_INT(kc_config_set(cfg, "a", "cli", &err), 0);
	KC_CHECK_STREQ(kc_config_get(cfg, "a", NULL), "cli");
	KC_CHECK_INT(kc_config_set_pair(cfg, " c = from -o ", &err), 0);
	KC_CHECK_STREQ(kc_config_get(cfg, "c", NULL), "from -o");
}

/* A bad line fails the load with the file name and line number. */
static void check_bad_line(const char *text, unsigned line)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	char *path = NULL;
	char want[4200];
	KC_CHECK_INT(load_text(cfg, text, &err, &path), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	if (path) {
		snprintf(want, sizeof(want), "%s:%u", path, line);
		if (!KC_CHECK(strstr(err.message, want) != NULL))
			kc_test_diag("message \"%s\" lacks \"%s\"", err.message, want);
	}
	free(path);
}

KC_TEST(bad_lines_name_file_and_line)
{
	check_bad_line("a=1\nno equals sign\n", 2);
	check_bad_line("# c\n\n\n = value\n", 4);
	check_bad_line("a=1\nb=2\nc=3\n=\n", 4);
}

KC_TEST(overlong_line_is_an_error)
{
	size_t n = 5000;
	char *text = malloc(n + 16);
	if (!KC_CHECK(text != NULL))
		return;
	strcpy(text, "ok=1\nk=");
	size_t off = strlen(text);
	memset(text + off, 'v', n);
	strcpy(text + off + n, "\n");
	check_bad_line(text, 2);
	free(text);
}

KC_TEST(missing_file)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	KC_CHECK_INT(kc_config_load(cfg, "/nonexistent/kvmcloud.conf", false, &err), 0);
	KC_CHECK(!kc_error_is_set(&err));
	KC_CHECK_INT(kc_config_load(cfg, "/nonexistent/kvmcloud.conf", true, &err), -1);
	KC_CHECK(kc_error_is_set(&err));
	KC_CHECK(strstr(err.message, "/nonexistent/kvmcloud.conf") != NULL);
}

KC_TEST(set_pair_errors)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	KC_CHECK_INT(kc_config_set_pair(cfg, "novalue", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_config_set_pair(cfg, " =x", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_config_set(cfg, "", "x", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(get_uint_ranges)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	unsigned long long v = 0;
	static const struct {
		const char *value;
		bool ok;
		unsigned long long want;
	} cases[] = {
		{"20", true, 20},  {"1", true, 1},	{"3600", true, 3600},
		{"0", false, 0},   {"3601", false, 0},	{"-1", false, 0},
		{"", false, 0},	   {"12abc", false, 0}, {"abc", false, 0},
		{"1.5", false, 0}, {"0x10", false, 0},	{"99999999999999999999999", false, 0},
	};
	KC_CHECK_INT(kc_config_get_uint(cfg, "probe.timeout", 20, 1, 3600, &v, &err), 0);
	KC_CHECK_INT(v, 20);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kc_error_clear(&err);
		v = 777;
		kc_config_set(cfg, "probe.timeout", cases[i].value, NULL);
		int rc = kc_config_get_uint(cfg, "probe.timeout", 20, 1, 3600, &v, &err);
		if (!KC_CHECK_INT(rc, cases[i].ok ? 0 : -1))
			kc_test_diag("value \"%s\"", cases[i].value);
		if (cases[i].ok) {
			KC_CHECK_INT(v, cases[i].want);
		} else {
			KC_CHECK_INT(err.code, KC_ERR_INVALID);
			KC_CHECK(strstr(err.message, "probe.timeout") != NULL);
		}
	}
	kc_error_clear(&err);
	kc_config_set(cfg, "big", "18446744073709551615", NULL);
	KC_CHECK_INT(kc_config_get_uint(cfg, "big", 0, 0, UINT64_MAX, &v, &err), 0);
	KC_CHECK(v == 18446744073709551615ULL);
}

KC_TEST(get_bool)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	struct kc_error err = {0};
	bool b = false;
	static const char *const yes[] = {"true", "yes", "1", "on"};
	static const char *const no[] = {"false", "no", "0", "off"};
	static const char *const bad[] = {"", "maybe", "2", "tru", "TRUEISH"};

	KC_CHECK_INT(kc_config_get_bool(cfg, "x", true, &b, &err), 0);
	KC_CHECK(b == true);
	KC_CHECK_INT(kc_config_get_bool(cfg, "x", false, &b, &err), 0);
	KC_CHECK(b == false);
	for (size_t i = 0; i < 4; i++) {
		kc_config_set(cfg, "x", yes[i], NULL);
		b = false;
		KC_CHECK_INT(kc_config_get_bool(cfg, "x", false, &b, &err), 0);
		KC_CHECK(b == true);
		kc_config_set(cfg, "x", no[i], NULL);
		b = true;
		KC_CHECK_INT(kc_config_get_bool(cfg, "x", true, &b, &err), 0);
		KC_CHECK(b == false);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kc_error_clear(&err);
		kc_config_set(cfg, "x", bad[i], NULL);
		if (!KC_CHECK_INT(kc_config_get_bool(cfg, "x", false, &b, &err), -1))
			kc_test_diag("accepted \"%s\"", bad[i]);
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
	}
}

KC_TEST(free_accepts_null)
{
	kc_config_free(NULL);
	KC_CHECK(true);
}

KC_TEST_MAIN()
