/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_util.h - JSON responses, error bodies and bounded request reading on
 * top of ulfius.  Every handler answers through these, so that every failure
 * has the same {"error": {"code", "message"}} body and a status that follows
 * from its kc_errcode.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <ulfius.h>

#include "error.h"

/* Request bodies above this are refused with 413 (docs/api.md). */
#define KC_HTTP_MAX_BODY (1024 * 1024)

/* Sets a JSON body and status; takes ownership of `body` (may be NULL for an
 * empty object).  Cannot fail visibly: on allocation failure the status is
 * 500 with an empty body. */
void kc_http_json(struct _u_response *resp, unsigned status, json_t *body);

/* The error body for `err` with the status from kc_errcode_http_status(). */
void kc_http_error(struct _u_response *resp, const struct kc_error *err);

/* Same, formatting the message on the spot. */
void kc_http_errorf(struct _u_response *resp, enum kc_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fails with KC_ERR_TOO_LARGE if the body is over KC_HTTP_MAX_BODY, from
 * either Content-Length or the bytes actually received. */
int kc_http_check_body_size(const struct _u_request *req, struct kc_error *err);

/* Parses the body as one JSON object.  An empty body gives *ret = NULL when
 * !required and an error otherwise.  Malformed JSON is KC_ERR_INVALID
 * "malformed JSON: <jansson's message>". */
int kc_http_read_json(const struct _u_request *req, bool required, json_t **ret,
		      struct kc_error *err);

/* Query parameters.  Missing keys leave *ret untouched; bad values are
 * KC_ERR_INVALID naming the parameter. */
const char *kc_http_query(const struct _u_request *req, const char *key);
int kc_http_query_uint(const struct _u_request *req, const char *key, uint64_t min, uint64_t max,
		       uint64_t *ret, struct kc_error *err);
int kc_http_query_bool(const struct _u_request *req, const char *key, bool *ret,
		       struct kc_error *err);

/* "2026-11-21T23:59:00Z" for now, in a caller buffer of at least 21 bytes. */
void kc_http_now_iso8601(char buf[static 21]);
