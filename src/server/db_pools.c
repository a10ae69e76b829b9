/* SPDX-License-Identifier: Apache-2.0 */
/* db_pools.c - the pools table. */
#include "db_pools.h"

#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "pool.h"

#define POOL_COLS                                                                                  \
	"name, type, scope, host, cluster, path, server, export, portal, target, initiator, vg, "  \
	"overcommit_pct, created_at"

int kc_db_pool_create(struct kc_db *db, const struct kc_pool_def *d, const char *host,
		      const char *cluster, struct kc_error *err)
{
	struct kc_error e = {0};
	char now[21];

	kc_db_now(now);
	if (kc_db_exec(db,
		       "INSERT INTO pools (" POOL_COLS ") "
		       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
		       KC_DB_PARAMS(KC_DB_TEXT(d->name), KC_DB_TEXT(kc_pool_type_name(d->type)),
				    KC_DB_TEXT(host ? "host" : "cluster"), KC_DB_TEXT(host),
				    KC_DB_TEXT(cluster), KC_DB_TEXT(d->path), KC_DB_TEXT(d->server),
				    KC_DB_TEXT(d->export_path), KC_DB_TEXT(d->portal),
				    KC_DB_TEXT(d->target), KC_DB_TEXT(d->initiator),
				    KC_DB_TEXT(d->vg), KC_DB_INT(d->overcommit_pct),
				    KC_DB_TEXT(now)),
		       NULL, &e) == 0)
		return 0;
	if (e.code == KC_ERR_CONFLICT)
		return kc_error_set(err, KC_ERR_CONFLICT, "pool \"%s\" already exists", d->name);
	if (e.code == KC_ERR_INVALID)
		return kc_error_set(err, KC_ERR_INVALID, "%s \"%s\" not found",
				    host ? "host" : "cluster", host ? host : cluster);
	if (err)
		*err = e;
	return -1;
}

int kc_db_pool_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	json_t *row = NULL;

	if (kc_db_query_row(db, "SELECT " POOL_COLS " FROM pools WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "pool \"%s\" not found", name);
	*ret = row;
	return 0;
}

int kc_db_pool_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db, "SELECT " POOL_COLS " FROM pools ORDER BY name", NULL, 0, ret, err);
}

int kc_db_pool_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db, "DELETE FROM pools WHERE name = $1", KC_DB_PARAMS(KC_DB_TEXT(name)),
		       &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "pool \"%s\" not found", name);
	return 0;
}

int kc_db_pool_hosts(struct kc_db *db, const json_t *row, json_t **ret, struct kc_error *err)
{
	const char *host = json_string_value(json_object_get(row, "host"));
	const char *cluster = json_string_value(json_object_get(row, "cluster"));
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *r;

	json_t *out = json_array();
	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (host) {
		json_array_append_new(out, json_string(host));
		*ret = out;
		return 0;
	}
	if (kc_db_query(db, "SELECT name FROM hosts WHERE cluster = $1 ORDER BY name",
			KC_DB_PARAMS(KC_DB_TEXT(cluster)), &rows, err) < 0) {
		json_decref(out);
		return -1;
	}
	json_array_foreach(rows, i, r) json_array_append(out, json_object_get(r, "name"));
	*ret = out;
	return 0;
}
