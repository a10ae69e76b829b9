/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_audit.c - writing the audit log from the request path, and reading
 * it (GET /api/v1/audit).  Handlers never write audit rows themselves, so
 * that no route can forget to.
 */
#include "api_audit.h"

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "db_audit.h"
#include "http_util.h"
#include "json_util.h"
#include "validate.h"

bool kc_api_audit_wanted(const char *method)
{
	return method && (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
			  strcmp(method, "DELETE") == 0 || strcmp(method, "PATCH") == 0);
}

/* Copies a string field of the request body to out if it is a valid name; else
 * false (the log must not carry whatever a client typed). */
static bool body_name(const struct kc_call *c, const char *key, char *out, size_t size)
{
	const struct _u_request *req = c->req;

	if (!req->binary_body || req->binary_body_length == 0 ||
	    req->binary_body_length > KC_HTTP_MAX_BODY)
		return false;
	json_t *body = json_loadb(req->binary_body, req->binary_body_length, 0, NULL);
	const char *v = json_string_value(json_object_get(body, key));
	if (v && kc_name_validate(v, "name", NULL) == 0) {
		snprintf(out, size, "%s", v);
		json_decref(body);
		return true;
	}
	json_decref(body);
	return false;
}

void kc_api_audit_request(struct kc_call *c, const char *method, const char *pattern)
{
	struct kc_error err = {0};
	char action[160], target[KC_NAME_MAX + 1] = "", claimed[KC_NAME_MAX + 1] = "";
	long status = c->resp->status;
	const char *code = NULL;
	_cleanup_json_ json_t *answer = NULL;

	snprintf(action, sizeof(action), "%s %s", method, pattern);
	if (c->name)
		snprintf(target, sizeof(target), "%s", c->name);
	else if (strcmp(method, "POST") == 0)
		body_name(c, "name", target, sizeof(target));
	const char *user = c->who.user[0] ? c->who.user : NULL;
	if (!user && strcmp(pattern, "/api/v1/sessions") == 0 &&
	    body_name(c, "user", claimed, sizeof(claimed)))
		user = claimed;
	if (status >= 400 && c->resp->binary_body) {
		answer = json_loadb(c->resp->binary_body, c->resp->binary_body_length, 0, NULL);
		code = json_string_value(json_object_get(json_object_get(answer, "error"), "code"));
	}
	_cleanup_json_ json_t *detail =
		json_pack("{s:i,s:s?}", "status", (int)status, "code", code);
	if (kc_db_audit_add(c->srv->db, user ? user : "-", action, target[0] ? target : NULL,
			    status < 400, detail, &err) < 0)
		fprintf(stderr, "warning: audit log write failed for %s: %s\n", action,
			err.message);
}

/* "YYYY-MM-DDTHH:MM:SSZ", the form the log's times have. */
static bool is_timestamp(const char *s)
{
	static const char form[] = "dddd-dd-ddTdd:dd:ddZ";

	if (strlen(s) != sizeof(form) - 1)
		return false;
	for (size_t i = 0; form[i]; i++)
		if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != form[i])
			return false;
	return true;
}

int kc_api_audit_list(struct kc_call *c, struct kc_error *err)
{
	const char *user = kc_http_query(c->req, "user");
	const char *since = kc_http_query(c->req, "since");
	uint64_t limit = 100, before = 0;
	json_t *rows = NULL;

	if (user && kc_name_validate(user, "user name", err) < 0)
		return -1;
	if (since && !is_timestamp(since))
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"since\" must be of the form YYYY-MM-DDTHH:MM:SSZ");
	if (kc_http_query_uint(c->req, "limit", 1, KC_DB_AUDIT_MAX_LIMIT, &limit, err) < 0 ||
	    kc_http_query_uint(c->req, "before_id", 1, INT64_MAX, &before, err) < 0)
		return -1;
	if (kc_db_audit_list(c->srv->db, user, since, (int64_t)before, (int)limit, &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:o}", "entries", rows));
	return 0;
}
