/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for error.h: first error wins, errno text, code names, HTTP statuses. */
#include <errno.h>
#include <string.h>

#include "error.h"
#include "kctest.h"

KC_TEST(set_returns_minus_one_and_records)
{
	struct kc_error err = {0};
	KC_CHECK(!kc_error_is_set(&err));
	KC_CHECK_INT(kc_error_set(&err, KC_ERR_NOT_FOUND, "VM %s not found", "web1"), -1);
	KC_CHECK(kc_error_is_set(&err));
	KC_CHECK_INT(err.code, KC_ERR_NOT_FOUND);
	KC_CHECK_STREQ(err.message, "VM web1 not found");
}

KC_TEST(first_error_wins)
{
	struct kc_error err = {0};
	kc_error_set(&err, KC_ERR_INVALID, "the precise one");
	KC_CHECK_INT(kc_error_set(&err, KC_ERR_INTERNAL, "a vaguer one"), -1);
	KC_CHECK_INT(kc_error_set_errno(&err, KC_ERR_INTERNAL, EIO, "and another"), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK_STREQ(err.message, "the precise one");
}

KC_TEST(clear_allows_a_new_error)
{
	struct kc_error err = {0};
	kc_error_set(&err, KC_ERR_INVALID, "one");
	kc_error_clear(&err);
	KC_CHECK(!kc_error_is_set(&err));
	KC_CHECK_STREQ(err.message, "");
	kc_error_set(&err, KC_ERR_CONFLICT, "two");
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	KC_CHECK_STREQ(err.message, "two");
	kc_error_clear(NULL);
}

KC_TEST(errno_variant_appends_strerror)
{
	struct kc_error err = {0};
	char want[256];
	kc_error_set_errno(&err, KC_ERR_INTERNAL, ENOENT, "cannot open %s", "/x");
	snprintf(want, sizeof(want), "cannot open /x: %s", strerror(ENOENT));
	KC_CHECK_STREQ(err.message, want);
	KC_CHECK_INT(err.code, KC_ERR_INTERNAL);
}

KC_TEST(null_err_is_accepted)
{
	KC_CHECK_INT(kc_error_set(NULL, KC_ERR_INVALID, "x"), -1);
	KC_CHECK_INT(kc_error_set_errno(NULL, KC_ERR_INVALID, EPERM, "x"), -1);
	KC_CHECK(!kc_error_is_set(NULL));
}

KC_TEST(kc_ok_is_never_recorded_as_success)
{
	/* Setting "KC_OK" by mistake must still read as an error. */
	struct kc_error err = {0};
	kc_error_set(&err, KC_OK, "oops");
	KC_CHECK(kc_error_is_set(&err));
}

KC_TEST(long_messages_are_truncated_safely)
{
	struct kc_error err = {0};
	char big[2 * KC_ERROR_MSG_MAX];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kc_error_set_errno(&err, KC_ERR_INVALID, EIO, "%s", big);
	KC_CHECK_INT(strlen(err.message), KC_ERROR_MSG_MAX - 1);
}

KC_TEST(http_status_mapping)
{
	KC_CHECK_INT(kc_errcode_http_status(KC_OK), 200);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_INVALID), 400);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_UNAUTHORIZED), 401);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_FORBIDDEN), 403);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_NOT_FOUND), 404);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_CONFLICT), 409);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_TOO_LARGE), 413);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_NO_CAPACITY), 507);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_HYPERVISOR), 502);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_UNAVAILABLE), 503);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_TIMEOUT), 504);
	KC_CHECK_INT(kc_errcode_http_status(KC_ERR_INTERNAL), 500);
	KC_CHECK_INT(kc_errcode_http_status((enum kc_errcode)999), 500);
}

KC_TEST(names_round_trip)
{
	for (int c = KC_OK; c <= KC_ERR_INTERNAL; c++) {
		const char *name = kc_errcode_name((enum kc_errcode)c);
		KC_CHECK(name && *name);
		KC_CHECK_INT(kc_errcode_from_name(name), c);
	}
	KC_CHECK_STREQ(kc_errcode_name(KC_ERR_INVALID), "invalid_argument");
	KC_CHECK_STREQ(kc_errcode_name(KC_ERR_NOT_FOUND), "not_found");
	KC_CHECK_INT(kc_errcode_from_name("no_such_code"), KC_ERR_INTERNAL);
	KC_CHECK_INT(kc_errcode_from_name(NULL), KC_ERR_INTERNAL);
}

KC_TEST_MAIN()
