/* SPDX-License-Identifier: Apache-2.0 */
/* openapi.c - GET /api/v1/openapi.json, the one unauthenticated route. */
#include "api.h"
#include "http_util.h"

/* openapi.json, embedded at build time (embed_file.py). */
extern const char kc_openapi_json[];
extern const size_t kc_openapi_json_len;

int kc_api_openapi(struct kc_call *c, struct kc_error *err)
{
	ulfius_set_binary_body_response(c->resp, 200, kc_openapi_json, kc_openapi_json_len);
	u_map_put(c->resp->map_header, "Content-Type", "application/json");
	return 0;
}
