/* SPDX-License-Identifier: Apache-2.0 */
/* json_util.h - jansson ownership helpers and strict field readers. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

static inline void kc_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(kc_json_decrefp)))

/* Fails with KC_ERR_INVALID if `obj` has a key not in the NULL-terminated
 * list `allowed` (so that a typo such as "memroy" is an error, not ignored). */
int kc_json_check_keys(const json_t *obj, const char *const *allowed, const char *what,
		       struct kc_error *err);

/* Strict readers.  Missing key: if `required`, KC_ERR_INVALID; otherwise
 * *ret is left untouched and 0 is returned.  Wrong type or out of range:
 * KC_ERR_INVALID naming the key.  Strings are returned borrowed from obj. */
int kc_json_get_string(const json_t *obj, const char *key, bool required, size_t max_len,
		       const char **ret, struct kc_error *err);
int kc_json_get_uint(const json_t *obj, const char *key, bool required, uint64_t min,
		     uint64_t max, uint64_t *ret, struct kc_error *err);
int kc_json_get_bool(const json_t *obj, const char *key, bool required, bool *ret,
		     struct kc_error *err);

/* {"error": {"code": "not_found", "message": "..."}} */
json_t *kc_json_error_body(const struct kc_error *err);
