/* SPDX-License-Identifier: Apache-2.0 */
#include "http_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "json_util.h"

void kc_http_json(struct _u_response *resp, unsigned status, json_t *body)
{
	_cleanup_json_ json_t *owned = body ? body : json_object();
	_cleanup_free_ char *text = owned ? json_dumps(owned, JSON_COMPACT) : NULL;

	if (!text) {
		ulfius_set_empty_body_response(resp, 500);
		return;
	}
	ulfius_set_string_body_response(resp, status, text);
	u_map_put(resp->map_header, "Content-Type", "application/json");
}

void kc_http_error(struct _u_response *resp, const struct kc_error *err)
{
	struct kc_error fallback = {KC_ERR_INTERNAL, "internal error (no message recorded)"};

	/* A handler that fails without recording why is our bug; still answer
	 * with a well-formed 500 rather than an empty success. */
	if (!kc_error_is_set(err))
		err = &fallback;
	kc_http_json(resp, kc_errcode_http_status(err->code), kc_json_error_body(err));
}

void kc_http_errorf(struct _u_response *resp, enum kc_errcode code, const char *fmt, ...)
{
	struct kc_error err = {0};
	char msg[KC_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kc_error_set(&err, code, "%s", msg);
	kc_http_error(resp, &err);
}

int kc_http_check_body_size(const struct _u_request *req, struct kc_error *err)
{
	const char *cl = u_map_get_case(req->map_header, "Content-Length");

	if (cl) {
		char *end = NULL;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno || end == cl || *end != '\0')
			return kc_error_set(err, KC_ERR_INVALID, "bad Content-Length header");
		if (n > KC_HTTP_MAX_BODY)
			return kc_error_set(err, KC_ERR_TOO_LARGE, "request body is over %d bytes",
					    KC_HTTP_MAX_BODY);
	}
	/* ulfius stops storing at max_post_body_size (set one byte above our
	 * limit), so a chunked body over the limit shows up here. */
	if (req->binary_body_length > KC_HTTP_MAX_BODY)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "request body is over %d bytes",
				    KC_HTTP_MAX_BODY);
	return 0;
}

int kc_http_read_json(const struct _u_request *req, bool required, json_t **ret,
		      struct kc_error *err)
{
	json_error_t jerr;

	if (kc_http_check_body_size(req, err) < 0)
		return -1;
	if (req->binary_body_length == 0) {
		if (required)
			return kc_error_set(err, KC_ERR_INVALID, "a JSON request body is required");
		*ret = NULL;
		return 0;
	}
	json_t *j = json_loadb(req->binary_body, req->binary_body_length, JSON_REJECT_DUPLICATES,
			       &jerr);
	if (!j)
		return kc_error_set(err, KC_ERR_INVALID, "malformed JSON: %s", jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return kc_error_set(err, KC_ERR_INVALID, "the request body must be a JSON object");
	}
	*ret = j;
	return 0;
}

const char *kc_http_query(const struct _u_request *req, const char *key)
{
	return u_map_get(req->map_url, key);
}

int kc_http_query_uint(const struct _u_request *req, const char *key, uint64_t min, uint64_t max,
		       uint64_t *ret, struct kc_error *err)
{
	const char *s = kc_http_query(req, key);

	if (!s)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-' || n < min || n > max)
		return kc_error_set(
			err, KC_ERR_INVALID,
			"query parameter \"%s\" must be an integer between %llu and %llu", key,
			(unsigned long long)min, (unsigned long long)max);
	*ret = n;
	return 0;
}

int kc_http_query_bool(const struct _u_request *req, const char *key, bool *ret,
		       struct kc_error *err)
{
	const char *s = kc_http_query(req, key);

	if (!s)
		return 0;
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*ret = true;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*ret = false;
	else
		return kc_error_set(err, KC_ERR_INVALID,
				    "query parameter \"%s\" must be true or false", key);
	return 0;
}

void kc_http_now_iso8601(char buf[static 21])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
