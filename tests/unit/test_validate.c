/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for validate.h: names, hostnames and joined paths. */
#include <stdlib.h>
#include <string.h>

#include "kctest.h"
#include "validate.h"

static bool name_ok(const char *s)
{
	struct kc_error err = {0};
	int rc = kc_name_validate(s, "VM name", &err);
	if (rc == 0 && kc_error_is_set(&err))
		kc_test_diag("success but error set: %s", err.message);
	if (rc < 0 && err.code != KC_ERR_INVALID)
		kc_test_diag("wrong code %d for %s", err.code, s ? s : "(null)");
	return rc == 0;
}

KC_TEST(name_good)
{
	static const char *const good[] = {"a", "web1",	  "Web-1", "db_2", "x.y", "a.b.c",
					   "0", "9lives", "a-",	   "a_",   "a."};
	char max[KC_NAME_MAX + 1];
	memset(max, 'n', KC_NAME_MAX);
	max[KC_NAME_MAX] = '\0';
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!KC_CHECK(name_ok(good[i])))
			kc_test_diag("rejected \"%s\"", good[i]);
	KC_CHECK(name_ok(max));
}

KC_TEST(name_bad)
{
	static const char *const bad[] = {
		"",
		"a/b",
		"/a",
		"..",
		".",
		"a..b",
		"x..",
		" a",
		"a ",
		"a b",
		"<x>",
		"x&y",
		"-a",
		".a",
		"_a",
		"a'b",
		"a\"b",
		"a;b",
		"a$b",
		"a\\b",
		"a\nb",
		"a\tb",
		"caf\xc3\xa9",
		"\xe2\x80\x8b"
		"a",
		"a%2e",
		"a:b",
		"a*",
	};
	char long_name[KC_NAME_MAX + 2];
	memset(long_name, 'n', KC_NAME_MAX + 1);
	long_name[KC_NAME_MAX + 1] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!KC_CHECK(!name_ok(bad[i])))
			kc_test_diag("accepted bad name #%zu", i);
	KC_CHECK(!name_ok(long_name));
	KC_CHECK(!name_ok(NULL));
}

KC_TEST(name_error_names_the_field)
{
	struct kc_error err = {0};
	KC_CHECK_INT(kc_name_validate("a/b", "image name", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK(strstr(err.message, "image name") != NULL);
	KC_CHECK_INT(kc_name_validate("a/b", NULL, NULL), -1);
}

static bool host_ok(const char *s)
{
	struct kc_error err = {0};
	int rc = kc_hostname_validate(s, &err);
	if (rc < 0 && err.code != KC_ERR_INVALID)
		kc_test_diag("wrong code %d", err.code);
	return rc == 0;
}

KC_TEST(hostname_good)
{
	static const char *const good[] = {"a",	 "web1",  "web-1",   "a.b", "node1.example.org",
					   "1a", "A-B-C", "x1-y2.z3"};
	char max[64];
	memset(max, 'h', 63);
	max[63] = '\0';
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!KC_CHECK(host_ok(good[i])))
			kc_test_diag("rejected \"%s\"", good[i]);
	KC_CHECK(host_ok(max));
}

KC_TEST(hostname_bad)
{
	static const char *const bad[] = {"",	 "-a",	 "a-",	 "a..b", ".a",		"a.", "a_b",
					  "a b", "a.-b", "a-.b", "a/b",	 "caf\xc3\xa9", "<x>"};
	char long_host[65];
	memset(long_host, 'h', 64);
	long_host[64] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!KC_CHECK(!host_ok(bad[i])))
			kc_test_diag("accepted bad hostname \"%s\"", bad[i]);
	KC_CHECK(!host_ok(long_host));
	KC_CHECK(!host_ok(NULL));
}

KC_TEST(path_join_name)
{
	struct kc_error err = {0};
	char *p = kc_path_join_name("/var/lib/kvmcloud/pool", "web1", ".qcow2", "VM name", &err);
	KC_CHECK_STREQ(p, "/var/lib/kvmcloud/pool/web1.qcow2");
	free(p);
	p = kc_path_join_name("/d", "x", NULL, "VM name", &err);
	KC_CHECK_STREQ(p, "/d/x");
	free(p);
	KC_CHECK(!kc_error_is_set(&err));
}

KC_TEST(path_join_rejects_traversal)
{
	static const char *const bad[] = {"..", "../etc", "a/b", "", ".hidden", "x\ny"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kc_error err = {0};
		char *p = kc_path_join_name("/var/lib/kvmcloud", bad[i], ".qcow2", "VM name", &err);
		KC_CHECK(p == NULL);
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
		free(p);
	}
	struct kc_error err = {0};
	char *p = kc_path_join_name(NULL, "a", "", "VM name", &err);
	KC_CHECK(p == NULL);
	KC_CHECK(kc_error_is_set(&err));
	kc_error_clear(&err);
	p = kc_path_join_name("relative/dir", "a", "", "VM name", &err);
	KC_CHECK(p == NULL);
	KC_CHECK(kc_error_is_set(&err));
}

KC_TEST(mac_validate)
{
	static const char *const good[] = {"52:54:00:12:34:56", "02:AB:cd:EF:00:ff"};
	static const char *const bad[] = {"",
					  "52:54:00:12:34",
					  "52:54:00:12:34:567",
					  "52-54-00-12-34-56",
					  "52:54:00:12:34:5g",
					  " 52:54:00:12:34:5"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		KC_CHECK_INT(kc_mac_validate(good[i], true, NULL, NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kc_error err = {0};
		KC_CHECK_INT(kc_mac_validate(bad[i], false, "nics[0].mac", &err), -1);
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
	}
	/* The group bit: refused only when a unicast address is asked for. */
	struct kc_error err = {0};
	KC_CHECK_INT(kc_mac_validate("01:00:5e:00:00:01", false, NULL, &err), 0);
	KC_CHECK_INT(kc_mac_validate("01:00:5e:00:00:01", true, "NIC 1: MAC address", &err), -1);
	KC_CHECK_STREQ(err.message, "NIC 1: MAC address '01:00:5e:00:00:01' is multicast");
}

KC_TEST_MAIN()
