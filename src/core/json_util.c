/* SPDX-License-Identifier: Apache-2.0 */
#include "json_util.h"

#include <string.h>

int kc_json_check_keys(const json_t *obj, const char *const *allowed, const char *what,
		       struct kc_error *err)
{
	if (!json_is_object(obj))
		return kc_error_set(err, KC_ERR_INVALID, "%s must be a JSON object", what);
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)obj, key, val) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0) {
				ok = true;
				break;
			}
		if (!ok) {
			/* Bound what we echo back: the key came from the client. */
			return kc_error_set(err, KC_ERR_INVALID, "unknown field \"%.64s\" in %s",
					    key, what);
		}
	}
	return 0;
}

int kc_json_get_string(const json_t *obj, const char *key, bool required, size_t max_len,
		       const char **ret, struct kc_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return kc_error_set(err, KC_ERR_INVALID, "\"%s\" is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must be a string", key);
	size_t len = json_string_length(v);
	if (len > max_len)
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" is longer than %zu bytes", key,
				    max_len);
	const char *s = json_string_value(v);
	if (strlen(s) != len)
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must not contain NUL bytes", key);
	*ret = s;
	return 0;
}

int kc_json_get_uint(const json_t *obj, const char *key, bool required, uint64_t min,
		     uint64_t max, uint64_t *ret, struct kc_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return kc_error_set(err, KC_ERR_INVALID, "\"%s\" is required", key);
		return 0;
	}
	if (!json_is_integer(v))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must be an integer", key);
	json_int_t n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"%s\" must be between %llu and %llu (got %lld)", key,
				    (unsigned long long)min, (unsigned long long)max,
				    (long long)n);
	*ret = (uint64_t)n;
	return 0;
}

int kc_json_get_bool(const json_t *obj, const char *key, bool required, bool *ret,
		     struct kc_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return kc_error_set(err, KC_ERR_INVALID, "\"%s\" is required", key);
		return 0;
	}
	if (!json_is_boolean(v))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must be true or false", key);
	*ret = json_is_true(v);
	return 0;
}

json_t *kc_json_error_body(const struct kc_error *err)
{
	enum kc_errcode code = err && err->code != KC_OK ? err->code : KC_ERR_INTERNAL;
	const char *msg = err && err->message[0] ? err->message : "internal error";
	return json_pack("{s:{s:s,s:s}}", "error", "code", kc_errcode_name(code), "message", msg);
}
