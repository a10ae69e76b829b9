/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_images.c - the image library's routes (docs/api.md, "Images").
 * Every authenticated user sees the ready images and their own; admins
 * see all.  Uploads travel as chunks of at most 1 MiB (PUT .../data),
 * each an ordinary authenticated request (docs/decisions.md).
 */
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "db_images.h"
#include "http_util.h"
#include "images.h"
#include "jobs.h"
#include "json_util.h"
#include "validate.h"

#define URL_MAX 2048

static bool mine(const struct kc_call *c, const json_t *row)
{
	const char *owner = json_string_value(json_object_get(row, "owner"));
	return kc_authz_is_admin(c) || (owner && strcmp(owner, c->who.user) == 0);
}

/* The record as the caller may see it: another user's image that is not
 * ready is the same 404 as none. */
static int visible(struct kc_call *c, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (kc_db_image_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (!mine(c, row) && !(state && strcmp(state, "ready") == 0))
		return kc_error_set(err, KC_ERR_NOT_FOUND, "image \"%s\" not found", c->name);
	*ret = steal_ptr(&row);
	return 0;
}

/* Only an admin or the image's owner changes it. */
static int owned(struct kc_call *c, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (visible(c, &row, err) < 0)
		return -1;
	if (!mine(c, row))
		return kc_error_set(err, KC_ERR_FORBIDDEN,
				    "only an admin or its owner may change image \"%s\"", c->name);
	*ret = steal_ptr(&row);
	return 0;
}

int kc_api_images_list(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (kc_db_image_list(c->srv->db, kc_authz_is_admin(c) ? NULL : c->who.user, &rows, err) < 0)
		return -1;
	json_t *out = json_array();
	json_array_foreach(rows, i, row)
	{
		json_array_append_new(out, kc_image_view(row));
	}
	kc_http_json(c->resp, 200, json_pack("{s:o}", "images", out));
	return 0;
}

int kc_api_image_show(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (visible(c, &row, err) < 0)
		return -1;
	json_t *o = kc_image_view(row);
	const char *state = json_string_value(json_object_get(row, "state"));
	if (o && state && strcmp(state, "pending") == 0)
		json_object_set_new(
			o, "received_bytes",
			json_integer((json_int_t)kc_image_upload_received(c->srv, row)));
	kc_http_json(c->resp, 200, o);
	return 0;
}

/* http:// or https://, printable ASCII without spaces (libcurl refuses
 * every other scheme anyway). */
static int check_url(const char *url, struct kc_error *err)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "url must be http:// or https://");
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return kc_error_set(err, KC_ERR_INVALID,
					    "url must be printable ASCII without spaces");
	return 0;
}

int kc_api_image_create(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"name", "kind",   "format",	   "os_type",
					   "url",  "sha256", "size_bytes", NULL};
	_cleanup_json_ json_t *body = NULL;
	const char *name = NULL, *kind = NULL, *format = NULL, *os_type = NULL, *url = NULL,
		   *sha256 = NULL;
	uint64_t size = 0;
	enum kc_img_kind k;
	enum kc_img_format f;

	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    kc_json_check_keys(body, keys, "image request", err) < 0 ||
	    kc_json_get_string(body, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "image name", err) < 0 ||
	    kc_json_get_string(body, "kind", true, 16, &kind, err) < 0 ||
	    kc_img_kind_parse(kind, &k, err) < 0 ||
	    kc_json_get_string(body, "format", true, 16, &format, err) < 0 ||
	    kc_img_format_parse(format, &f, err) < 0 || kc_img_kind_format_check(k, f, err) < 0 ||
	    kc_json_get_string(body, "os_type", false, KC_NAME_MAX, &os_type, err) < 0 ||
	    (os_type && kc_name_validate(os_type, "os_type", err) < 0) ||
	    kc_json_get_string(body, "url", false, URL_MAX, &url, err) < 0 ||
	    (url && check_url(url, err) < 0) ||
	    kc_json_get_string(body, "sha256", false, 64, &sha256, err) < 0 ||
	    kc_json_get_uint(body, "size_bytes", false, 1, KC_IMAGE_MAX_BYTES, &size, err) < 0)
		return -1;
	if (sha256 && !kc_img_sha256_valid(sha256))
		return kc_error_set(err, KC_ERR_INVALID, "sha256 must be 64 lowercase hex digits");

	_cleanup_json_ json_t *existing = NULL;
	struct kc_error e = {0};
	if (kc_db_image_get(c->srv->db, name, &existing, &e) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "image \"%s\" already exists", name);
	if (e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}

	if (url) {
		if (!sha256)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a URL registration needs the image's sha256");
		if (json_object_get(body, "size_bytes"))
			return kc_error_set(err, KC_ERR_INVALID,
					    "size_bytes is for uploads; a download is sized by "
					    "what arrives");
		return kc_jobs_serve(c, "image.register", name, body, 201, err);
	}
	/* An upload: the record waits (pending) for its chunks and commit. */
	if (!size)
		return kc_error_set(err, KC_ERR_INVALID,
				    "an upload needs size_bytes (or give a url to download)");
	if (kc_db_image_insert(
		    c->srv->db,
		    &(struct kc_db_image){.name = name,
					  .kind = kind,
					  .format = format,
					  .os_type = os_type,
					  .sha256 = sha256,
					  .source = "upload",
					  .state = "pending",
					  .owner = c->who.user[0] ? c->who.user : KC_DB_ADMIN_USER,
					  .size_bytes = (int64_t)size,
					  .virtual_size_bytes = -1},
		    err) < 0)
		return -1;
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_image_get(c->srv->db, name, &row, err) < 0)
		return -1;
	json_t *o = kc_image_view(row);
	json_object_set_new(
		o, "upload",
		json_pack("{s:i,s:i}", "chunk_max", KC_IMAGE_UPLOAD_CHUNK, "received_bytes", 0));
	kc_http_json(c->resp, 201, o);
	return 0;
}

static int need_pending(const json_t *row, const char *name, struct kc_error *err)
{
	const char *state = json_string_value(json_object_get(row, "state"));
	if (!state || strcmp(state, "pending") != 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "image \"%s\" is not awaiting an upload (%s)", name,
				    state ? state : "?");
	return 0;
}

int kc_api_image_data(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	uint64_t offset = UINT64_MAX, received = 0;

	if (!kc_http_query(c->req, "offset"))
		return kc_error_set(err, KC_ERR_INVALID, "query parameter \"offset\" is required");
	if (kc_http_query_uint(c->req, "offset", 0, KC_IMAGE_MAX_BYTES, &offset, err) < 0 ||
	    owned(c, &row, err) < 0 || need_pending(row, c->name, err) < 0)
		return -1;
	if (c->req->binary_body_length == 0)
		return kc_error_set(err, KC_ERR_INVALID, "an empty chunk");
	if (kc_image_upload_chunk(c->srv, row, offset, c->req->binary_body,
				  c->req->binary_body_length, &received, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, json_pack("{s:I}", "received_bytes", (json_int_t)received));
	return 0;
}

int kc_api_image_commit(struct kc_call *c, struct kc_error *err)
{
	static const char *const keys[] = {"sha256", NULL};
	_cleanup_json_ json_t *body = NULL;
	_cleanup_json_ json_t *row = NULL;
	const char *sha256 = NULL;

	if (kc_http_read_json(c->req, false, &body, err) < 0 ||
	    (body && (kc_json_check_keys(body, keys, "commit request", err) < 0 ||
		      kc_json_get_string(body, "sha256", false, 64, &sha256, err) < 0)) ||
	    owned(c, &row, err) < 0 || need_pending(row, c->name, err) < 0)
		return -1;
	if (sha256 && !kc_img_sha256_valid(sha256))
		return kc_error_set(err, KC_ERR_INVALID, "sha256 must be 64 lowercase hex digits");
	const char *declared = json_string_value(json_object_get(row, "sha256"));
	if (sha256 && declared && strcmp(sha256, declared) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "sha256 differs from the one given at registration");
	if (kc_image_finish(c->srv, row, sha256 ? sha256 : declared, err) < 0) {
		/* Refused: nothing of it stays, record included. */
		kc_db_image_delete(c->srv->db, c->name, NULL);
		return -1;
	}
	json_decref(row);
	row = NULL;
	if (kc_db_image_get(c->srv->db, c->name, &row, err) < 0)
		return -1;
	kc_http_json(c->resp, 200, kc_image_view(row));
	return 0;
}

int kc_api_image_delete(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *users = NULL;

	if (owned(c, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (state && strcmp(state, "downloading") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "image \"%s\" is being downloaded",
				    c->name);
	/* Hosts keep VMs' disks on top of the image (backing file): the
	 * library copy goes only once no VM record names it. */
	if (kc_db_image_users(c->srv->db, c->name, &users, err) < 0)
		return -1;
	if (json_array_size(users) > 0) {
		_cleanup_free_ char *list = json_dumps(users, JSON_COMPACT);
		return kc_error_set(err, KC_ERR_CONFLICT, "image \"%s\" is used by VMs %s", c->name,
				    list ? list : "");
	}
	kc_image_store_remove(c->srv, c->name, json_string_value(json_object_get(row, "format")));
	if (kc_db_image_delete(c->srv->db, c->name, err) < 0)
		return -1;
	/* The record is gone first: no create sends the image again meanwhile. */
	json_t *hosts = kc_images_forget_on_hosts(c->srv, row);
	kc_http_json(c->resp, 200, json_pack("{s:s,s:o*}", "deleted", c->name, "cleanup", hosts));
	return 0;
}
