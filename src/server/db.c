/* SPDX-License-Identifier: Apache-2.0 */
/* db.c - backend selection, statement wrappers, the transaction runner. */
#include "db.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "json_util.h"

int kc_db_open(const char *spec, struct kc_db **ret, struct kc_error *err)
{
	if (strncmp(spec, "postgresql://", 13) == 0 || strncmp(spec, "postgres://", 11) == 0)
		return kc_db_pg_open(spec, -1, 0, ret, err);
	if (strncmp(spec, "sqlite:", 7) == 0)
		spec += 7;
	if (!*spec)
		return kc_error_set(err, KC_ERR_INVALID, "empty database path");
	return kc_db_sqlite_open(spec, -1, ret, err);
}

void kc_db_close(struct kc_db *db)
{
	if (db)
		db->ops->close(db);
}

int kc_db_exec(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
	       int64_t *ret_changes, struct kc_error *err)
{
	return db->ops->exec(db, sql, params, n, ret_changes, err);
}

int kc_db_query(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		json_t **ret_rows, struct kc_error *err)
{
	return db->ops->query(db, sql, params, n, ret_rows, err);
}

int kc_db_query_row(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    json_t **ret_row, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;

	if (db->ops->query(db, sql, params, n, &rows, err) < 0)
		return -1;
	*ret_row = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_query_int(struct kc_db *db, const char *sql, const struct kc_db_param *params, size_t n,
		    int64_t *ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;

	if (kc_db_query_row(db, sql, params, n, &row, err) < 0)
		return -1;
	*ret = 0;
	if (row) {
		const char *key;
		json_t *v;
		json_object_foreach(row, key, v)
		{
			*ret = json_integer_value(v);
			break;
		}
	}
	return 0;
}

/* Attempts of a transaction that keeps meeting busy or serialisation
 * failures; the pauses between them grow from 5 ms to about a second. */
#define TX_ATTEMPTS 8

int kc_db_tx_flags(struct kc_db *db, unsigned flags,
		   int (*fn)(struct kc_db *tx, void *opaque, struct kc_error *err), void *opaque,
		   struct kc_error *err)
{
	if (db->in_tx)
		return fn(db, opaque, err);
	for (int attempt = 0;; attempt++) {
		struct kc_error e = {0};
		struct kc_db *tx = NULL;

		if (db->ops->tx_begin(db, flags, &tx, &e) == 0) {
			if (fn(tx, opaque, &e) < 0) {
				db->ops->tx_rollback(tx);
				if (!kc_error_is_set(&e))
					kc_error_set(&e, KC_ERR_INTERNAL,
						     "database transaction failed");
			} else if (db->ops->tx_commit(tx, &e) == 0) {
				return 0;
			}
		}
		if (e.code != KC_ERR_UNAVAILABLE || attempt + 1 == TX_ATTEMPTS) {
			if (err && !kc_error_is_set(err))
				*err = e;
			return -1;
		}
		/* Two writers that collided must not collide again in step. */
		long ms = (5L << attempt) + (long)randombytes_uniform(5U << attempt);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int kc_db_tx(struct kc_db *db, int (*fn)(struct kc_db *tx, void *opaque, struct kc_error *err),
	     void *opaque, struct kc_error *err)
{
	return kc_db_tx_flags(db, 0, fn, opaque, err);
}

void kc_db_time_from_now(long long offset_s, char buf[static 21])
{
	time_t t = time(NULL) + (time_t)offset_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kc_db_now(char buf[static 21])
{
	kc_db_time_from_now(0, buf);
}

void kc_db_uuid(char buf[static 37])
{
	unsigned char b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

void kc_db_rows_parse_json(json_t *rows, const char *const *cols)
{
	size_t i;
	json_t *row;

	json_array_foreach(rows, i, row)
	{
		for (size_t k = 0; cols[k]; k++) {
			const char *text = json_string_value(json_object_get(row, cols[k]));
			if (!text)
				continue;
			json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
			json_object_set_new(row, cols[k], v ? v : json_null());
		}
	}
}

char *kc_db_param_json_text(const struct kc_db_param *p)
{
	if (!p->json)
		return NULL;
	return json_dumps(p->json, JSON_COMPACT | JSON_ENCODE_ANY);
}
