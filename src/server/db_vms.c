/* SPDX-License-Identifier: Apache-2.0 */
/* db_vms.c - VM records and the quota check at insert. */
#include "db.h"
#include "db_volumes.h"

#include <inttypes.h>

#include "cleanup.h"
#include "json_util.h"

#define VM_COLS                                                                                    \
	"name, uuid, host, state, request, created_at, updated_at, owner, vcpus, memory_mib, "     \
	"disk_gib"

static const char *const vm_json_cols[] = {"request", NULL};

void kc_db_vm_sizes(const json_t *request, int64_t *ret_vcpus, int64_t *ret_memory_mib,
		    int64_t *ret_disk_gib)
{
	const json_t *v = json_object_get(request, "vcpus");
	size_t i;
	json_t *d;

	*ret_vcpus = json_is_integer(v) ? json_integer_value(v) : 1;
	*ret_memory_mib = json_integer_value(json_object_get(request, "memory_mib"));
	*ret_disk_gib = json_integer_value(json_object_get(request, "disk_gib"));
	json_array_foreach(json_object_get(request, "data_disks_gib"), i, d) *ret_disk_gib +=
		json_integer_value(d);
}

struct insert {
	const struct kc_db_vm *vm;
	bool check_quota;
	int64_t vcpus, memory_mib, disk_gib;
};

/* Refuses the insert if it would take the owner over one of its quotas
 * (NULL columns are unlimited). */
static int check_quota(struct kc_db *tx, const struct insert *in, struct kc_error *err)
{
	_cleanup_json_ json_t *q = NULL;
	_cleanup_json_ json_t *use = NULL;
	static const struct {
		const char *quota, *used, *what;
	} limits[] = {
		{"max_vms", "vms", "VMs"},
		{"max_vcpus", "vcpus", "vCPUs"},
		{"max_memory_mib", "memory_mib", "MiB of memory"},
		{"max_disk_gib", "disk_gib", "GiB of disk"},
	};

	if (kc_db_query_row(tx,
			    "SELECT max_vms, max_vcpus, max_memory_mib, max_disk_gib FROM users "
			    "WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(in->vm->owner)), &q, err) < 0)
		return -1;
	if (!q)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "user \"%s\" not found", in->vm->owner);
	if (kc_db_query_row(
		    tx,
		    "SELECT COUNT(*) AS vms, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS vcpus, "
		    "CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT) AS memory_mib, "
		    "CAST(COALESCE(SUM(disk_gib), 0) AS BIGINT) AS disk_gib "
		    "FROM vms WHERE owner = $1",
		    KC_DB_PARAMS(KC_DB_TEXT(in->vm->owner)), &use, err) < 0)
		return -1;
	/* Volumes count against the disk quota too (db_volumes.h). */
	int64_t vol_gib = 0;
	if (kc_db_volume_gib_used(tx, in->vm->owner, &vol_gib, err) < 0)
		return -1;
	json_object_set_new(
		use, "disk_gib",
		json_integer(json_integer_value(json_object_get(use, "disk_gib")) + vol_gib));
	const int64_t adds[] = {1, in->vcpus, in->memory_mib, in->disk_gib};
	for (size_t i = 0; i < KC_ARRAY_SIZE(limits); i++) {
		json_t *max = json_object_get(q, limits[i].quota);
		if (!json_is_integer(max))
			continue;
		int64_t used = json_integer_value(json_object_get(use, limits[i].used));
		if (used + adds[i] > json_integer_value(max))
			return kc_error_set(err, KC_ERR_FORBIDDEN,
					    "quota exceeded: user \"%s\" may use %" PRId64
					    " %s and uses %" PRId64 "; this VM needs %" PRId64,
					    in->vm->owner, (int64_t)json_integer_value(max),
					    limits[i].what, used, adds[i]);
	}
	return 0;
}

static int insert_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const struct insert *in = opaque;
	const struct kc_db_vm *vm = in->vm;
	char now[21];

	if (in->check_quota && check_quota(tx, in, err) < 0)
		return -1;
	kc_db_now(now);
	return kc_db_exec(
		tx,
		"INSERT INTO vms (name, host, state, request, created_at, updated_at, owner, "
		"vcpus, memory_mib, disk_gib) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)",
		KC_DB_PARAMS(KC_DB_TEXT(vm->name), KC_DB_TEXT(vm->host), KC_DB_TEXT(vm->state),
			     KC_DB_JSON(vm->request), KC_DB_TEXT(now), KC_DB_TEXT(vm->owner),
			     KC_DB_INT(in->vcpus), KC_DB_INT(in->memory_mib),
			     KC_DB_INT(in->disk_gib)),
		NULL, err);
}

int kc_db_vm_insert(struct kc_db *db, const struct kc_db_vm *vm, bool check_quota,
		    struct kc_error *err)
{
	struct insert in = {.vm = vm, .check_quota = check_quota};
	struct kc_error e = {0};
	int rc;

	kc_db_vm_sizes(vm->request, &in.vcpus, &in.memory_mib, &in.disk_gib);
	/* Without quotas it is one statement: no transaction needed. */
	if (check_quota)
		rc = kc_db_tx(db, insert_tx, &in, &e);
	else
		rc = insert_tx(db, &in, &e);
	if (rc < 0 && e.code == KC_ERR_CONFLICT)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" already exists", vm->name);
	if (rc < 0 && err)
		*err = e;
	return rc;
}

int kc_db_vm_update(struct kc_db *db, const char *name, const char *uuid, const char *state,
		    struct kc_error *err)
{
	int64_t changes = 0;
	char now[21];

	kc_db_now(now);
	if (kc_db_exec(db,
		       "UPDATE vms SET uuid = COALESCE($2, uuid), state = $3, updated_at = $4 "
		       "WHERE name = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(uuid), KC_DB_TEXT(state),
				    KC_DB_TEXT(now)),
		       &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "VM \"%s\" not found", name);
	return 0;
}

int kc_db_vm_note_state(struct kc_db *db, const char *name, const char *state, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(db,
			  "UPDATE vms SET state = $2, updated_at = $3 "
			  "WHERE name = $1 AND state <> 'creating' AND state <> $2",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(state), KC_DB_TEXT(now)), NULL,
			  err);
}

int kc_db_vm_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_exec(db, "DELETE FROM vms WHERE name = $1", KC_DB_PARAMS(KC_DB_TEXT(name)),
			  NULL, err);
}

int kc_db_vm_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;

	if (kc_db_query(db, "SELECT " VM_COLS " FROM vms WHERE name = $1",
			KC_DB_PARAMS(KC_DB_TEXT(name)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "VM \"%s\" not found", name);
	kc_db_rows_parse_json(rows, vm_json_cols);
	*ret = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_vm_list(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err)
{
	if (kc_db_query(db,
			"SELECT " VM_COLS " FROM vms WHERE $1 IS NULL OR owner = $1 ORDER BY name",
			KC_DB_PARAMS(KC_DB_TEXT(owner)), ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, vm_json_cols);
	return 0;
}
