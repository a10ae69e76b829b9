/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the CLI's REST client over libcurl's easy interface.  One
 * connection handle per process, reused between requests (log following).
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define KC_HTTP_BODY_MAX (64u << 20) /* a response larger than this is refused */

struct kc_client;

struct kc_http_response {
	long status;
	char *body; /* NUL-terminated, `len` bytes before the NUL */
	size_t len;
	long long log_next_offset; /* X-Log-Next-Offset, -1 when absent */
	long long log_size;	   /* X-Log-Size, -1 when absent */
};

/* `base_url` and `token` are copied.  Returns NULL only when out of memory. */
struct kc_client *kc_client_new(const char *base_url, const char *token);
void kc_client_free(struct kc_client *c); /* accepts NULL */
static inline void kc_client_freep(struct kc_client **c)
{
	kc_client_free(*c);
}
#define _cleanup_client_ __attribute__((cleanup(kc_client_freep)))

/* Overall time limit of each request, in seconds (default 300). */
void kc_client_set_timeout(struct kc_client *c, long seconds);
const char *kc_client_url(const struct kc_client *c);
/* One more "Name: value" header for every request (NULL: none); -1 if out
 * of memory.  The job verbs send their Idempotency-Key with it. */
int kc_client_set_header(struct kc_client *c, const char *header);
const char *kc_client_token(const struct kc_client *c);

/* Sends `method` to base_url + `path` (which starts with "/api/v1/"), with
 * `body` as JSON when not NULL.  Fails only when no HTTP response came back
 * ("cannot reach the server at URL: ..."); any status is a success here. */
int kc_http_request(struct kc_client *c, const char *method, const char *path, const json_t *body,
		    struct kc_http_response *resp, struct kc_error *err);
/* The same with a raw body (application/octet-stream): image uploads. */
int kc_http_request_bytes(struct kc_client *c, const char *method, const char *path,
			  const void *data, size_t len, struct kc_http_response *resp,
			  struct kc_error *err);
void kc_http_response_clear(struct kc_http_response *resp);

/* GET `path` with a successful answer's body written to `fd` as it
 * arrives (never held in memory: volume downloads), `progress` called
 * after each piece with the bytes so far and Content-Length (0 if
 * unknown).  An error status is read as usual; a body shorter than its
 * Content-Length is KC_ERR_UNAVAILABLE.  *ret_bytes the bytes written. */
int kc_http_download(struct kc_client *c, const char *path, int fd,
		     void (*progress)(unsigned long long done, unsigned long long total,
				      void *opaque),
		     void *opaque, unsigned long long *ret_bytes, struct kc_error *err);

/* Turns a status >= 400 into an error with the server's message (or "server
 * returned HTTP N" when the body is not an API error body).  0 otherwise. */
int kc_http_check_status(const struct kc_http_response *resp, struct kc_error *err);

/* kc_http_request + kc_http_check_status + parsing the JSON answer. */
int kc_api_call(struct kc_client *c, const char *method, const char *path, const json_t *body,
		json_t **ret, struct kc_error *err);
