/* SPDX-License-Identifier: Apache-2.0 */
/* db_volumes.c - the volumes table. */
#include "db_volumes.h"

#include <inttypes.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"

#define VOL_COLS                                                                                   \
	"name, pool, host, format, capacity_bytes, attached_to, target, owner, state, "            \
	"upload_bytes, received_bytes, created_at"
#define GIB_ROUND_UP(col) "((" col " + 1073741823) / 1073741824)"

int kc_db_volume_gib_used(struct kc_db *db, const char *owner, int64_t *ret, struct kc_error *err)
{
	return kc_db_query_int(db,
			       "SELECT CAST(COALESCE(SUM(" GIB_ROUND_UP(
				       "capacity_bytes") "), 0) AS BIGINT) FROM volumes "
							 "WHERE owner = $1",
			       KC_DB_PARAMS(KC_DB_TEXT(owner)), ret, err);
}

/* Refuses `add_bytes` more of volume for `owner` beyond max_disk_gib. */
static int check_quota(struct kc_db *tx, const char *owner, int64_t add_gib, struct kc_error *err)
{
	_cleanup_json_ json_t *q = NULL;
	int64_t vms = 0, vols = 0;

	if (kc_db_query_row(tx, "SELECT max_disk_gib FROM users WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(owner)), &q, err) < 0)
		return -1;
	if (!q)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "user \"%s\" not found", owner);
	json_t *max = json_object_get(q, "max_disk_gib");
	if (!json_is_integer(max))
		return 0;
	if (kc_db_query_int(tx,
			    "SELECT CAST(COALESCE(SUM(disk_gib), 0) AS BIGINT) FROM vms "
			    "WHERE owner = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(owner)), &vms, err) < 0 ||
	    kc_db_volume_gib_used(tx, owner, &vols, err) < 0)
		return -1;
	if (vms + vols + add_gib > json_integer_value(max))
		return kc_error_set(err, KC_ERR_FORBIDDEN,
				    "quota exceeded: user \"%s\" may use %" PRId64
				    " GiB of disk and uses %" PRId64 "; this volume needs %" PRId64
				    " more",
				    owner, (int64_t)json_integer_value(max), vms + vols, add_gib);
	return 0;
}

static int64_t gib_up(int64_t bytes)
{
	return (bytes + (1LL << 30) - 1) >> 30;
}

struct insert {
	const struct kc_db_volume *v;
	bool check_quota;
};

static int insert_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const struct insert *in = opaque;
	const struct kc_db_volume *v = in->v;
	char now[21];

	if (in->check_quota && check_quota(tx, v->owner, gib_up(v->capacity_bytes), err) < 0)
		return -1;
	kc_db_now(now);
	return kc_db_exec(tx,
			  "INSERT INTO volumes (name, pool, host, format, capacity_bytes, owner, "
			  "state, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7)",
			  KC_DB_PARAMS(KC_DB_TEXT(v->name), KC_DB_TEXT(v->pool),
				       KC_DB_TEXT(v->host), KC_DB_TEXT(v->format),
				       KC_DB_INT(v->capacity_bytes), KC_DB_TEXT(v->owner),
				       KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_db_volume_insert(struct kc_db *db, const struct kc_db_volume *v, bool check_quota,
			struct kc_error *err)
{
	struct insert in = {.v = v, .check_quota = check_quota};
	struct kc_error e = {0};
	int rc = check_quota ? kc_db_tx(db, insert_tx, &in, &e) : insert_tx(db, &in, &e);

	if (rc < 0 && e.code == KC_ERR_CONFLICT)
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" already exists", v->name);
	if (rc < 0 && err)
		*err = e;
	return rc;
}

int kc_db_volume_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	json_t *row = NULL;

	if (kc_db_query_row(db, "SELECT " VOL_COLS " FROM volumes WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "volume \"%s\" not found", name);
	*ret = row;
	return 0;
}

int kc_db_volume_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT " VOL_COLS " FROM volumes WHERE $1 IS NULL OR owner = $1 "
			   "ORDER BY name",
			   KC_DB_PARAMS(KC_DB_TEXT(owner)), ret, err);
}

int kc_db_volume_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_exec(db, "DELETE FROM volumes WHERE name = $1", KC_DB_PARAMS(KC_DB_TEXT(name)),
			  NULL, err);
}

int kc_db_volume_set_state(struct kc_db *db, const char *name, const char *from, const char *to,
			   bool detached_only, struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db,
		       "UPDATE volumes SET state = $3 WHERE name = $1 "
		       "AND ($2 IS NULL OR state = $2) AND ($4 = 0 OR attached_to IS NULL)",
		       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(from), KC_DB_TEXT(to),
				    KC_DB_INT(detached_only)),
		       &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" is %s", name,
				    detached_only ? "attached or busy" : "busy");
	return 0;
}

struct resize {
	const char *name;
	int64_t capacity;
	bool check_quota;
};

static int resize_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const struct resize *r = opaque;
	_cleanup_json_ json_t *row = NULL;

	if (kc_db_volume_get(tx, r->name, &row, err) < 0)
		return -1;
	int64_t old = json_integer_value(json_object_get(row, "capacity_bytes"));
	const char *owner = json_string_value(json_object_get(row, "owner"));
	if (r->capacity < old)
		return kc_error_set(err, KC_ERR_INVALID, "volumes only grow");
	if (r->check_quota && owner &&
	    check_quota(tx, owner, gib_up(r->capacity) - gib_up(old), err) < 0)
		return -1;
	return kc_db_exec(tx, "UPDATE volumes SET capacity_bytes = $2 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(r->name), KC_DB_INT(r->capacity)), NULL, err);
}

int kc_db_volume_resize(struct kc_db *db, const char *name, int64_t capacity, bool check_quota,
			struct kc_error *err)
{
	struct resize r = {.name = name, .capacity = capacity, .check_quota = check_quota};
	return kc_db_tx(db, resize_tx, &r, err);
}

int kc_db_volume_attach(struct kc_db *db, const char *name, const char *vm, const char *target,
			struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db,
		       "UPDATE volumes SET attached_to = $2, target = $3, state = 'ready' "
		       "WHERE name = $1 AND state = 'attaching' AND attached_to IS NULL",
		       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(vm), KC_DB_TEXT(target)), &changes,
		       err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" is attached or busy",
				    name);
	return 0;
}

int kc_db_volume_detach(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_exec(db,
			  "UPDATE volumes SET attached_to = NULL, target = NULL, state = 'ready' "
			  "WHERE name = $1 AND state IN ('ready', 'detaching')",
			  KC_DB_PARAMS(KC_DB_TEXT(name)), NULL, err);
}

int kc_db_volume_set_capacity(struct kc_db *db, const char *name, int64_t capacity,
			      struct kc_error *err)
{
	return kc_db_exec(db, "UPDATE volumes SET capacity_bytes = $2 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_INT(capacity)), NULL, err);
}

int kc_db_volume_upload_claim(struct kc_db *db, const char *name, uint64_t offset, uint64_t len,
			      uint64_t total, struct kc_error *err)
{
	int64_t changes = 0;

	if (offset == 0) {
		if (kc_db_exec(db,
			       "UPDATE volumes SET state = 'uploading', upload_bytes = $2, "
			       "received_bytes = $3 WHERE name = $1 AND attached_to IS NULL "
			       "AND state IN ('ready', 'uploading')",
			       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_INT((int64_t)total),
					    KC_DB_INT((int64_t)len)),
			       &changes, err) < 0)
			return -1;
		if (changes == 0)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "volume \"%s\" is attached or busy: detach it first",
					    name);
		return 0;
	}
	if (kc_db_exec(db,
		       "UPDATE volumes SET received_bytes = $3 + $4 WHERE name = $1 "
		       "AND state = 'uploading' AND upload_bytes = $2 AND received_bytes = $3",
		       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_INT((int64_t)total),
				    KC_DB_INT((int64_t)offset), KC_DB_INT((int64_t)len)),
		       &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "no upload of %" PRIu64 " bytes to volume \"%s\" expects "
				    "offset %" PRIu64 " (start again at offset 0)",
				    total, name, offset);
	return 0;
}

int kc_db_volume_upload_end(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_exec(db,
			  "UPDATE volumes SET state = 'ready', upload_bytes = NULL, "
			  "received_bytes = NULL WHERE name = $1 AND state = 'uploading'",
			  KC_DB_PARAMS(KC_DB_TEXT(name)), NULL, err);
}

int kc_db_volume_attached(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *r;

	if (kc_db_query(db, "SELECT name FROM volumes WHERE attached_to = $1 ORDER BY name",
			KC_DB_PARAMS(KC_DB_TEXT(vm)), &rows, err) < 0)
		return -1;
	json_t *out = json_array();
	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_array_foreach(rows, i, r) json_array_append(out, json_object_get(r, "name"));
	*ret = out;
	return 0;
}

int kc_db_volume_settle(struct kc_db *db, const char *name, const char *from,
			enum kc_vol_settle how, const char *vm, const char *target,
			bool *ret_changed, struct kc_error *err)
{
	static const char *const sql[] = {
		[KC_VOL_SETTLE_DROP] = "DELETE FROM volumes WHERE name = $1 AND state = $2",
		[KC_VOL_SETTLE_READY] = "UPDATE volumes SET state = 'ready' "
					"WHERE name = $1 AND state = $2",
		[KC_VOL_SETTLE_ATTACHED] = "UPDATE volumes SET state = 'ready', attached_to = $3, "
					   "target = $4 WHERE name = $1 AND state = $2",
		[KC_VOL_SETTLE_DETACHED] =
			"UPDATE volumes SET state = 'ready', attached_to = NULL, "
			"target = NULL WHERE name = $1 AND state = $2",
	};
	int64_t changes = 0;

	if ((unsigned)how >= KC_ARRAY_SIZE(sql) ||
	    (how == KC_VOL_SETTLE_ATTACHED && (!vm || !target)))
		return kc_error_set(err, KC_ERR_INTERNAL, "bad volume settlement");
	int rc =
		how == KC_VOL_SETTLE_ATTACHED
			? kc_db_exec(db, sql[how],
				     KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(from),
						  KC_DB_TEXT(vm), KC_DB_TEXT(target)),
				     &changes, err)
			: kc_db_exec(db, sql[how], KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(from)),
				     &changes, err);
	if (rc < 0)
		return -1;
	if (ret_changed)
		*ret_changed = changes > 0;
	return 0;
}
