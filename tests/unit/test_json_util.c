/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for json_util.h: strict key checks and field readers. */
#include <string.h>

#include "json_util.h"
#include "kctest.h"

KC_TEST(check_keys)
{
	static const char *const allowed[] = {"name", "vcpus", NULL};
	struct kc_error err = {0};
	_cleanup_json_ json_t *ok = json_pack("{s:s,s:i}", "name", "a", "vcpus", 1);
	_cleanup_json_ json_t *typo = json_pack("{s:s,s:i}", "name", "a", "vcpsu", 1);
	_cleanup_json_ json_t *arr = json_array();
	KC_CHECK_INT(kc_json_check_keys(ok, allowed, "request", &err), 0);
	KC_CHECK_INT(kc_json_check_keys(typo, allowed, "request", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK(strstr(err.message, "vcpsu") != NULL);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_json_check_keys(arr, allowed, "request", &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(get_string)
{
	struct kc_error err = {0};
	const char *s = "untouched";
	_cleanup_json_ json_t *o = json_pack("{s:s,s:i,s:n}", "a", "hello", "n", 5, "z");
	KC_CHECK_INT(kc_json_get_string(o, "a", true, 5, &s, &err), 0);
	KC_CHECK_STREQ(s, "hello");
	s = "untouched";
	KC_CHECK_INT(kc_json_get_string(o, "missing", false, 5, &s, &err), 0);
	KC_CHECK_STREQ(s, "untouched");
	KC_CHECK_INT(kc_json_get_string(o, "z", false, 5, &s, &err), 0);
	KC_CHECK_STREQ(s, "untouched");
	KC_CHECK_INT(kc_json_get_string(o, "missing", true, 5, &s, &err), -1);
	KC_CHECK(strstr(err.message, "missing") != NULL);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_json_get_string(o, "a", true, 4, &s, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_json_get_string(o, "n", true, 4, &s, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK_STREQ(s, "untouched");
}

KC_TEST(get_string_rejects_embedded_nul)
{
	struct kc_error err = {0};
	const char *s = NULL;
	_cleanup_json_ json_t *o = json_object();
	json_object_set_new(o, "a", json_stringn("a\0b", 3));
	KC_CHECK_INT(kc_json_get_string(o, "a", true, 16, &s, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(get_uint)
{
	struct kc_error err = {0};
	uint64_t v = 77;
	_cleanup_json_ json_t *o =
		json_pack("{s:i,s:i,s:f,s:s,s:b}", "n", 10, "neg", -1, "f", 1.5, "s", "10", "b", 1);
	KC_CHECK_INT(kc_json_get_uint(o, "n", true, 1, 10, &v, &err), 0);
	KC_CHECK_INT(v, 10);
	v = 77;
	KC_CHECK_INT(kc_json_get_uint(o, "missing", false, 1, 10, &v, &err), 0);
	KC_CHECK_INT(v, 77);
	static const char *const bad[] = {"neg", "f", "s", "b"};
	for (size_t i = 0; i < 4; i++) {
		kc_error_clear(&err);
		KC_CHECK_INT(kc_json_get_uint(o, bad[i], true, 0, 100, &v, &err), -1);
		KC_CHECK_INT(err.code, KC_ERR_INVALID);
		KC_CHECK(strstr(err.message, bad[i]) != NULL);
	}
	kc_error_clear(&err);
	KC_CHECK_INT(kc_json_get_uint(o, "n", true, 11, 20, &v, &err), -1);
	kc_error_clear(&err);
	KC_CHECK_INT(kc_json_get_uint(o, "n", true, 1, 9, &v, &err), -1);
	KC_CHECK_INT(v, 77);
}

KC_TEST(get_bool)
{
	struct kc_error err = {0};
	bool b = false;
	_cleanup_json_ json_t *o = json_pack("{s:b,s:i}", "t", 1, "i", 1);
	KC_CHECK_INT(kc_json_get_bool(o, "t", true, &b, &err), 0);
	KC_CHECK(b);
	KC_CHECK_INT(kc_json_get_bool(o, "i", true, &b, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
}

KC_TEST(error_body)
{
	struct kc_error err = {0};
	kc_error_set(&err, KC_ERR_NOT_FOUND, "VM web1 not found");
	_cleanup_json_ json_t *b = kc_json_error_body(&err);
	json_t *e = json_object_get(b, "error");
	KC_CHECK_STREQ(json_string_value(json_object_get(e, "code")), "not_found");
	KC_CHECK_STREQ(json_string_value(json_object_get(e, "message")), "VM web1 not found");
	_cleanup_json_ json_t *n = kc_json_error_body(NULL);
	KC_CHECK_STREQ(json_string_value(json_object_get(json_object_get(n, "error"), "code")),
		       "internal_error");
}

KC_TEST_MAIN()
