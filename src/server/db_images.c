/* SPDX-License-Identifier: Apache-2.0 */
/* db_images.c - the image library's records (db_images.h). */
#include <string.h>

#include "cleanup.h"
#include "db_images.h"
#include "json_util.h"

#define IMAGE_COLS                                                                                 \
	"name, kind, format, os_type, size_bytes, virtual_size_bytes, sha256, source, state, "     \
	"error, owner, created_at, updated_at"

int kc_db_image_insert(struct kc_db *db, const struct kc_db_image *img, struct kc_error *err)
{
	char now[21];
	struct kc_error e = {0};

	kc_db_now(now);
	if (kc_db_exec(db,
		       "INSERT INTO images (" IMAGE_COLS ") "
		       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $11)",
		       KC_DB_PARAMS(KC_DB_TEXT(img->name), KC_DB_TEXT(img->kind),
				    KC_DB_TEXT(img->format), KC_DB_TEXT(img->os_type),
				    KC_DB_INT_OR_NULL(img->size_bytes),
				    KC_DB_INT_OR_NULL(img->virtual_size_bytes),
				    KC_DB_TEXT(img->sha256), KC_DB_TEXT(img->source),
				    KC_DB_TEXT(img->state), KC_DB_TEXT(img->owner),
				    KC_DB_TEXT(now)),
		       NULL, &e) < 0) {
		if (e.code == KC_ERR_CONFLICT)
			return kc_error_set(err, KC_ERR_CONFLICT, "image \"%s\" already exists",
					    img->name);
		*err = e;
		return -1;
	}
	return 0;
}

int kc_db_image_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	json_t *row = NULL;

	if (kc_db_query_row(db, "SELECT " IMAGE_COLS " FROM images WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "image \"%s\" not found", name);
	*ret = row;
	return 0;
}

int kc_db_image_list(struct kc_db *db, const char *viewer, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT " IMAGE_COLS " FROM images WHERE $1 IS NULL OR state = 'ready' "
			   "OR owner = $1 ORDER BY name",
			   KC_DB_PARAMS(KC_DB_TEXT(viewer)), ret, err);
}

int kc_db_image_set_ready(struct kc_db *db, const char *name, int64_t size, int64_t vsize,
			  const char *sha256, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(db,
			  "UPDATE images SET state = 'ready', error = NULL, size_bytes = $2, "
			  "virtual_size_bytes = $3, sha256 = $4, updated_at = $5 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_INT(size), KC_DB_INT(vsize),
				       KC_DB_TEXT(sha256), KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_db_image_set_state(struct kc_db *db, const char *name, const char *state, const char *error,
			  struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(
		db, "UPDATE images SET state = $2, error = $3, updated_at = $4 WHERE name = $1",
		KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(state), KC_DB_TEXT(error),
			     KC_DB_TEXT(now)),
		NULL, err);
}

int kc_db_image_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_exec(db, "DELETE FROM images WHERE name = $1", KC_DB_PARAMS(KC_DB_TEXT(name)),
			  NULL, err);
}

int kc_db_image_users(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	/* The request is JSON text and the two engines' JSON functions differ:
	 * the parsed request decides (one scan, at image deletion only). */
	if (kc_db_query(db, "SELECT name, request FROM vms", NULL, 0, &rows, err) < 0)
		return -1;
	json_t *out = json_array();
	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	kc_db_rows_parse_json(rows, (const char *const[]){"request", NULL});
	json_array_foreach(rows, i, row)
	{
		const json_t *req = json_object_get(row, "request");
		const char *img = json_string_value(json_object_get(req, "image"));
		const char *iso = json_string_value(json_object_get(req, "iso"));
		if (((img && strcmp(img, name) == 0) || (iso && strcmp(iso, name) == 0)) &&
		    json_array_size(out) < 10)
			json_array_append(out, json_object_get(row, "name"));
	}
	*ret = out;
	return 0;
}
