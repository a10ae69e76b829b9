/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_users.c - users, their quotas and tokens, and password sessions.
 * Who may call what is decided in authz.c; the handlers here only scope
 * token routes to the caller (or, for an admin, to ?user=).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "authz.h"
#include "cleanup.h"
#include "db_tokens.h"
#include "db_users.h"
#include "http_util.h"
#include "json_util.h"
#include "validate.h"

#define SESSION_TTL_S	   (12 * 3600)
#define TOKEN_TTL_MAX_S	   (366L * 24 * 3600)
#define MAX_TOKENS_PER_USER 100
#define MAX_SESSIONS	   20

static void wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

static void wipe_freep(char **p)
{
	wipe_free(*p);
}

/* The user object with its current usage. */
static int user_with_usage(struct kc_server *srv, const char *name, json_t **ret,
			   struct kc_error *err)
{
	_cleanup_json_ json_t *u = NULL;
	json_t *use = NULL;

	if (kc_db_user_get(srv->db, name, &u, err) < 0 || kc_db_user_usage(srv->db, name, &use, err) < 0)
		return -1;
	json_object_set_new(u, "usage", use);
	*ret = steal_ptr(&u);
	return 0;
}

int kc_api_users_list(struct kc_call *c, struct kc_error *err)
{
	json_t *rows = NULL;

	if (kc_db_user_list(c->srv->db, &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:o}", "users", rows));
	return 0;
}

int kc_api_user_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "role", "password", NULL};
	_cleanup_json_ json_t *body = NULL;
	_cleanup_(wipe_freep) char *hash = NULL;
	const char *name = NULL, *role = "user", *password = NULL;
	json_t *user = NULL;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "user", err) < 0 ||
	    kc_json_get_string(body, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_json_get_string(body, "role", false, 16, &role, err) < 0 ||
	    kc_json_get_string(body, "password", false, KC_PASSWORD_MAX, &password, err) < 0)
		return -1;
	if (kc_name_validate(name, "user name", err) < 0)
		return -1;
	if (password && kc_auth_password_hash(password, &hash, err) < 0)
		return -1;
	if (kc_db_user_create(c->srv->db, name, role, hash, &user, err) < 0)
		return -1;
	kc_http_json(c->resp, 201, user);
	return 0;
}

int kc_api_user_show(struct kc_call *c, struct kc_error *err)
{
	json_t *u = NULL;

	if (user_with_usage(c->srv, c->name, &u, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, u);
	return 0;
}

int kc_api_user_delete(struct kc_call *c, struct kc_error *err)
{
	if (kc_db_user_delete(c->srv->db, c->name, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s}", "deleted", c->name));
	return 0;
}

/* One quota field: absent keeps *v, null is unlimited, else 0..max. */
static int quota_field(const json_t *body, const char *key, int64_t max, int64_t *v,
		       struct kc_error *err)
{
	json_t *j = json_object_get(body, key);
	uint64_t u = 0;

	if (!j)
		return 0;
	if (json_is_null(j)) {
		*v = -1;
		return 0;
	}
	if (kc_json_get_uint(body, key, true, 0, (uint64_t)max, &u, err) < 0)
		return -1;
	*v = (int64_t)u;
	return 0;
}

static int64_t quota_of(const json_t *u, const char *key)
{
	const json_t *v = json_object_get(u, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

int kc_api_user_quota(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"max_vms", "max_vcpus", "max_memory_mib",
					   "max_disk_gib", NULL};
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *cur = NULL;
	json_t *u = NULL;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "quota", err) < 0 ||
	    kc_db_user_get(c->srv->db, c->name, &cur, err) < 0)
		return -1;
	struct kc_db_quota q = {quota_of(cur, "max_vms"), quota_of(cur, "max_vcpus"),
				quota_of(cur, "max_memory_mib"), quota_of(cur, "max_disk_gib")};
	if (quota_field(body, "max_vms", 1000000, &q.max_vms, err) < 0 ||
	    quota_field(body, "max_vcpus", 100000000, &q.max_vcpus, err) < 0 ||
	    quota_field(body, "max_memory_mib", INT64_C(1) << 40, &q.max_memory_mib, err) < 0 ||
	    quota_field(body, "max_disk_gib", INT64_C(1) << 40, &q.max_disk_gib, err) < 0)
		return -1;
	if (kc_db_user_set_quota(c->srv->db, c->name, &q, err) < 0 ||
	    user_with_usage(c->srv, c->name, &u, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, u);
	return 0;
}

/* {"id","name","user","token","expires_at"}: the only time the token is shown. */
static json_t *token_answer(int64_t id, const char *name, const char *user, const char *token,
			    const char *expires)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s?}", "id", (json_int_t)id, "name", name, "user",
			 user, "token", token, "expires_at", expires[0] ? expires : NULL);
}

int kc_api_user_token_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "expires_in_s", NULL};
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *have = NULL;
	const char *name = "api";
	uint64_t ttl = 0;
	char token[KC_TOKEN_HEX_LEN + 1], expires[21] = "";
	int64_t id = 0;

	if (kc_http_read_json(c->req, false, &body, err) < 0)
		return -1;
	if (body && (kc_json_check_keys(body, keys, "token request", err) < 0 ||
		     kc_json_get_string(body, "name", false, KC_NAME_MAX, &name, err) < 0 ||
		     kc_json_get_uint(body, "expires_in_s", false, 60, TOKEN_TTL_MAX_S, &ttl,
				      err) < 0))
		return -1;
	if (kc_name_validate(name, "token name", err) < 0)
		return -1;
	if (strcmp(name, "session") == 0 || strcmp(name, "admin") == 0)
		return kc_error_set(err, KC_ERR_INVALID, "token name \"%s\" is reserved", name);
	/* A bound on what one user can make us store. */
	if (kc_db_token_list(c->srv->db, c->name, &have, err) < 0)
		return -1;
	if (json_array_size(have) >= MAX_TOKENS_PER_USER)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "user \"%s\" has %d tokens, the most allowed; revoke some",
				    c->name, MAX_TOKENS_PER_USER);
	if (kc_auth_token_issue(c->srv->db, c->name, name, (long)ttl, token, &id, expires, err) < 0)
		return -1;
	kc_http_json(c->resp, 201, token_answer(id, name, c->name, token, expires));
	sodium_memzero(token, sizeof(token));
	return 0;
}

/* Whose tokens a token route is about: the caller's, or ?user= for an admin. */
static int token_owner(struct kc_call *c, const char **ret, struct kc_error *err)
{
	const char *u = kc_http_query(c->req, "user");

	if (!u) {
		*ret = c->who.user;
		return 0;
	}
	if (kc_name_validate(u, "user name", err) < 0 || kc_authz_self_or_admin(c, u, err) < 0)
		return -1;
	*ret = u;
	return 0;
}

int kc_api_tokens_list(struct kc_call *c, struct kc_error *err)
{
	const char *user = NULL;
	json_t *rows = NULL;

	if (token_owner(c, &user, err) < 0 || kc_db_token_list(c->srv->db, user, &rows, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:s,s:o}", "user", user, "tokens", rows));
	return 0;
}

int kc_api_token_delete(struct kc_call *c, struct kc_error *err)
{
	const char *user = NULL;
	char *end = NULL;

	errno = 0;
	long long id = strtoll(c->name, &end, 10);
	if (errno || *end || id <= 0)
		return kc_error_set(err, KC_ERR_INVALID, "a token id is a positive number");
	if (token_owner(c, &user, err) < 0 || kc_db_token_delete(c->srv->db, user, id, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:I,s:s}", "deleted", (json_int_t)id, "user", user));
	return 0;
}

/* Keeps a user's sessions to MAX_SESSIONS - 1 before a new one: the
 * oldest go (expired ones included, which nothing else removes). */
static int trim_sessions(struct kc_server *srv, const char *user, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i, n = 0;
	json_t *t;

	if (kc_db_token_list(srv->db, user, &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, t)
	{ /* newest first */
		const char *name = json_string_value(json_object_get(t, "name"));
		if (!name || strcmp(name, "session") != 0)
			continue;
		if (++n >= MAX_SESSIONS &&
		    kc_db_token_delete(srv->db, user, json_integer_value(json_object_get(t, "id")),
				       err) < 0)
			return -1;
	}
	return 0;
}

int kc_api_session_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"user", "password", NULL};
	_cleanup_json_ json_t *body = NULL;
	const char *user = NULL, *password = NULL;
	char token[KC_TOKEN_HEX_LEN + 1], expires[21] = "";
	int64_t id = 0;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "session request", err) < 0 ||
	    kc_json_get_string(body, "user", true, KC_NAME_MAX, &user, err) < 0 ||
	    kc_json_get_string(body, "password", true, KC_PASSWORD_MAX, &password, err) < 0)
		return -1;
	if (kc_name_validate(user, "user name", NULL) < 0)
		return kc_error_set(err, KC_ERR_UNAUTHORIZED, "wrong user name or password");
	if (kc_auth_password_check(c->srv->db, user, password, err) < 0)
		return -1;
	if (trim_sessions(c->srv, user, err) < 0 ||
	    kc_auth_token_issue(c->srv->db, user, "session", SESSION_TTL_S, token, &id, expires,
				err) < 0)
		return -1;
	kc_http_json(c->resp, 201, token_answer(id, "session", user, token, expires));
	sodium_memzero(token, sizeof(token));
	return 0;
}
