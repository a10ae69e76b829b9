/* SPDX-License-Identifier: Apache-2.0 */
/* api_jobs.c - GET /api/v1/jobs and /api/v1/jobs/{id}. */
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "http_util.h"
#include "jobs.h"
#include "json_util.h"
#include "authz.h"

/* The caller; an admin sees every job, a user only their own. */
static const char *caller(const struct kc_call *c)
{
	return c->who.user[0] ? c->who.user : KC_DB_ADMIN_USER;
}

static bool caller_is_admin(const struct kc_call *c)
{
	return kc_authz_is_admin(c);
}

int kc_api_job_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (kc_db_job_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	const char *owner = json_string_value(json_object_get(row, "owner"));
	/* Someone else's job does not exist, as far as a user can tell. */
	if (!caller_is_admin(c) && (!owner || strcmp(owner, caller(c)) != 0))
		return kc_error_set(err, KC_ERR_NOT_FOUND, "job \"%s\" not found", c->name);
	kc_http_json(c->resp, 200, kc_job_view(row));
	return 0;
}

int kc_api_jobs_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	uint64_t limit = 100;
	size_t i;
	json_t *v;

	if (kc_http_query_uint(c->req, "limit", 1, 1000, &limit, err) < 0)
		return -1;
	if (kc_db_job_list(c->srv->db, caller_is_admin(c) ? NULL : caller(c), (int)limit, &rows,
			   err) < 0)
		return -1;
	json_t *out = json_array();
	json_array_foreach(rows, i, v)
	{
		json_array_append_new(out, kc_job_view(v));
	}
	kc_http_json(c->resp, 200, json_pack("{s:o}", "jobs", out));
	return 0;
}
