/* SPDX-License-Identifier: Apache-2.0 */
/* db_inventory.c - zones, clusters, fleet hosts, join tokens, revocations. */
#include "db.h"

#include <string.h>

#include "cleanup.h"
#include "json_util.h"

/* Runs a statement that must change one row; none is KC_ERR_NOT_FOUND. */
static int change_one(struct kc_db *db, const char *what, const char *name, const char *sql,
		      const struct kc_db_param *params, size_t n, struct kc_error *err)
{
	int64_t changes = 0;

	if (kc_db_exec(db, sql, params, n, &changes, err) < 0)
		return -1;
	if (changes == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "%s \"%s\" not found", what, name);
	return 0;
}

/* An insert whose unique-key violation reads "<what> "<name>" already exists". */
static int insert_named(struct kc_db *db, const char *what, const char *name, const char *sql,
			const struct kc_db_param *params, size_t n, struct kc_error *err)
{
	struct kc_error e = {0};

	if (kc_db_exec(db, sql, params, n, NULL, &e) == 0)
		return 0;
	if (e.code == KC_ERR_CONFLICT)
		return kc_error_set(err, KC_ERR_CONFLICT, "%s \"%s\" already exists", what, name);
	if (err)
		*err = e;
	return -1;
}

/* ---- zones ---- */

int kc_db_zone_create(struct kc_db *db, const char *name, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return insert_named(db, "zone", name,
			    "INSERT INTO zones (name, created_at) VALUES ($1, $2)",
			    KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(now)), err);
}

int kc_db_zone_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db, "SELECT name, created_at FROM zones ORDER BY name", NULL, 0, ret,
			   err);
}

int kc_db_zone_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return change_one(db, "zone", name, "DELETE FROM zones WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name)), err);
}

/* ---- clusters ---- */

#define CLUSTER_COLS "name, zone, cpu_model, cpu_signature, created_at"

int kc_db_cluster_create(struct kc_db *db, const char *name, const char *zone,
			 const char *cpu_model, const json_t *cpu_signature, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return insert_named(
		db, "cluster", name,
		"INSERT INTO clusters (name, zone, cpu_model, cpu_signature, created_at) "
		"VALUES ($1, $2, $3, $4, $5)",
		KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(zone), KC_DB_TEXT(cpu_model),
			     KC_DB_JSON(cpu_signature), KC_DB_TEXT(now)),
		err);
}

int kc_db_cluster_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;

	if (kc_db_query(db, "SELECT " CLUSTER_COLS " FROM clusters WHERE name = $1",
			KC_DB_PARAMS(KC_DB_TEXT(name)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "cluster \"%s\" not found", name);
	kc_db_rows_parse_json(rows, (const char *const[]){"cpu_signature", NULL});
	*ret = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_cluster_list(struct kc_db *db, const char *zone, json_t **ret, struct kc_error *err)
{
	if (kc_db_query(db,
			"SELECT " CLUSTER_COLS " FROM clusters WHERE $1 IS NULL OR zone = $1 "
			"ORDER BY name",
			KC_DB_PARAMS(KC_DB_TEXT(zone)), ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, (const char *const[]){"cpu_signature", NULL});
	return 0;
}

int kc_db_cluster_set_cpu(struct kc_db *db, const char *name, const char *cpu_model,
			  const json_t *cpu_signature, struct kc_error *err)
{
	return change_one(
		db, "cluster", name,
		"UPDATE clusters SET cpu_model = $2, cpu_signature = $3 WHERE name = $1",
		KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(cpu_model), KC_DB_JSON(cpu_signature)),
		err);
}

int kc_db_cluster_delete(struct kc_db *db, const char *name, struct kc_error *err)
{
	return change_one(db, "cluster", name, "DELETE FROM clusters WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name)), err);
}

/* ---- hosts of the fleet ---- */

int kc_db_host_add(struct kc_db *db, const char *name, const char *zone, const char *cluster,
		   struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return insert_named(db, "host", name,
			    "INSERT INTO hosts (name, zone, cluster, state, updated_at) "
			    "VALUES ($1, $2, $3, 'Pending', $4)",
			    KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(zone), KC_DB_TEXT(cluster),
					 KC_DB_TEXT(now)),
			    err);
}

int kc_db_host_set_state(struct kc_db *db, const char *name, const char *state,
			 struct kc_error *err)
{
	static const char *const states[] = {"Pending", "Up", "Disconnected", "Down",
					     "Maintenance"};
	bool known = false;
	char now[21];

	for (size_t i = 0; i < KC_ARRAY_SIZE(states); i++)
		known = known || (state && strcmp(state, states[i]) == 0);
	if (!known)
		return kc_error_set(err, KC_ERR_INVALID, "unknown host state \"%s\"",
				    state ? state : "");
	kc_db_now(now);
	return change_one(db, "host", name,
			  "UPDATE hosts SET state = $2, updated_at = $3 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(state), KC_DB_TEXT(now)), err);
}

int kc_db_host_seen(struct kc_db *db, const char *name, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return change_one(db, "host", name,
			  "UPDATE hosts SET last_seen_at = $2, state = CASE WHEN state = "
			  "'Maintenance' THEN state ELSE 'Up' END WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(now)), err);
}

int kc_db_host_set_address(struct kc_db *db, const char *name, const char *address,
			   struct kc_error *err)
{
	return change_one(db, "host", name, "UPDATE hosts SET address = $2 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(address)), err);
}

int kc_db_host_addresses(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	return kc_db_query(
		db, "SELECT name, address FROM hosts WHERE address IS NOT NULL ORDER BY name", NULL,
		0, ret, err);
}

int kc_db_host_mark_stale(struct kc_db *db, const char *before, bool to_down, json_t **ret,
			  struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	char now[21];
	size_t i;
	json_t *row;

	kc_db_now(now);
	if (kc_db_query(db,
			"UPDATE hosts SET state = $2, updated_at = $4 WHERE state = $1 AND "
			"(last_seen_at IS NULL OR last_seen_at < $3) RETURNING name",
			KC_DB_PARAMS(KC_DB_TEXT(to_down ? "Disconnected" : "Up"),
				     KC_DB_TEXT(to_down ? "Down" : "Disconnected"),
				     KC_DB_TEXT(before), KC_DB_TEXT(now)),
			&rows, err) < 0)
		return -1;
	json_t *names = json_array();
	json_array_foreach(rows, i, row) json_array_append(names, json_object_get(row, "name"));
	*ret = names;
	return 0;
}

int kc_db_host_set_cert(struct kc_db *db, const char *name, const char *serial,
			struct kc_error *err)
{
	return change_one(db, "host", name, "UPDATE hosts SET cert_serial = $2 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(serial)), err);
}

static int remove_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	const char *name = opaque;
	_cleanup_json_ json_t *host = NULL;
	int64_t vms = 0;
	char now[21];

	if (kc_db_query_row(tx, "SELECT cert_serial FROM hosts WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &host, err) < 0)
		return -1;
	if (!host)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", name);
	if (kc_db_query_int(tx, "SELECT COUNT(*) FROM vms WHERE host = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(name)), &vms, err) < 0)
		return -1;
	if (vms > 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "host \"%s\" still has %lld VM records",
				    name, (long long)vms);
	const char *serial = json_string_value(json_object_get(host, "cert_serial"));
	kc_db_now(now);
	if (serial &&
	    kc_db_exec(tx,
		       "INSERT INTO revoked_certs (serial, host, revoked_at) "
		       "VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING",
		       KC_DB_PARAMS(KC_DB_TEXT(serial), KC_DB_TEXT(name), KC_DB_TEXT(now)), NULL,
		       err) < 0)
		return -1;
	return kc_db_exec(tx, "DELETE FROM hosts WHERE name = $1", KC_DB_PARAMS(KC_DB_TEXT(name)),
			  NULL, err);
}

int kc_db_host_remove(struct kc_db *db, const char *name, struct kc_error *err)
{
	return kc_db_tx(db, remove_tx, (void *)name, err);
}

/* ---- join tokens ---- */

int kc_db_join_token_create(struct kc_db *db, const char *hash_hex, const char *host,
			    const char *expires_at, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(db,
			  "INSERT INTO join_tokens (hash, host, created_at, expires_at) "
			  "VALUES ($1, $2, $3, $4)",
			  KC_DB_PARAMS(KC_DB_TEXT(hash_hex), KC_DB_TEXT(host), KC_DB_TEXT(now),
				       KC_DB_TEXT(expires_at)),
			  NULL, err);
}

struct reissue {
	const char *host, *hash, *expires_at;
	char *revoked; /* the serial revoked, malloc'd */
};

static int reissue_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct reissue *r = opaque;
	_cleanup_json_ json_t *host = NULL;
	char now[21];

	free(steal_ptr(&r->revoked)); /* a retried transaction starts again */
	if (kc_db_query_row(tx, "SELECT state, cert_serial FROM hosts WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(r->host)), &host, err) < 0)
		return -1;
	if (!host)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", r->host);
	const char *state = json_string_value(json_object_get(host, "state"));
	if (!state || strcmp(state, "Pending") != 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "host \"%s\" is %s, not Pending: it has connected with its "
				    "certificate; to join it anew, remove it (which revokes the "
				    "certificate) and add it again",
				    r->host, state ? state : "in no state");
	const char *serial = json_string_value(json_object_get(host, "cert_serial"));
	kc_db_now(now);
	if (serial) {
		if (kc_db_exec(
			    tx,
			    "INSERT INTO revoked_certs (serial, host, revoked_at) "
			    "VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING",
			    KC_DB_PARAMS(KC_DB_TEXT(serial), KC_DB_TEXT(r->host), KC_DB_TEXT(now)),
			    NULL, err) < 0 ||
		    kc_db_exec(tx, "UPDATE hosts SET cert_serial = NULL WHERE name = $1",
			       KC_DB_PARAMS(KC_DB_TEXT(r->host)), NULL, err) < 0)
			return -1;
		if (!(r->revoked = strdup(serial)))
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	if (kc_db_exec(tx, "DELETE FROM join_tokens WHERE host = $1 AND used_at IS NULL",
		       KC_DB_PARAMS(KC_DB_TEXT(r->host)), NULL, err) < 0)
		return -1;
	return kc_db_join_token_create(tx, r->hash, r->host, r->expires_at, err);
}

int kc_db_join_token_reissue(struct kc_db *db, const char *host, const char *hash_hex,
			     const char *expires_at, char **ret_revoked_serial,
			     struct kc_error *err)
{
	struct reissue r = {.host = host, .hash = hash_hex, .expires_at = expires_at};

	if (kc_db_tx(db, reissue_tx, &r, err) < 0) {
		free(r.revoked);
		return -1;
	}
	*ret_revoked_serial = r.revoked;
	return 0;
}

int kc_db_join_token_use(struct kc_db *db, const char *hash_hex, char **ret_host,
			 struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	char now[21];

	kc_db_now(now);
	/* One statement: of two racing uses, the second finds used_at set. */
	if (kc_db_query_row(
		    db,
		    "UPDATE join_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL "
		    "AND expires_at > $2 RETURNING host",
		    KC_DB_PARAMS(KC_DB_TEXT(hash_hex), KC_DB_TEXT(now)), &row, err) < 0)
		return -1;
	if (!row)
		return kc_error_set(err, KC_ERR_UNAUTHORIZED,
				    "invalid, used or expired join token");
	*ret_host = strdup(json_string_value(json_object_get(row, "host")));
	if (!*ret_host)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

/* ---- revoked certificates ---- */

int kc_db_cert_revoke(struct kc_db *db, const char *serial, const char *host, struct kc_error *err)
{
	char now[21];

	kc_db_now(now);
	return kc_db_exec(
		db,
		"INSERT INTO revoked_certs (serial, host, revoked_at) VALUES ($1, $2, $3) "
		"ON CONFLICT (serial) DO NOTHING",
		KC_DB_PARAMS(KC_DB_TEXT(serial), KC_DB_TEXT(host), KC_DB_TEXT(now)), NULL, err);
}

int kc_db_cert_is_revoked(struct kc_db *db, const char *serial, bool *ret, struct kc_error *err)
{
	int64_t n = 0;

	if (kc_db_query_int(db, "SELECT COUNT(*) FROM revoked_certs WHERE serial = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(serial)), &n, err) < 0)
		return -1;
	*ret = n > 0;
	return 0;
}

int kc_db_cert_revoked_list(struct kc_db *db, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db, "SELECT serial, host, revoked_at FROM revoked_certs ORDER BY serial",
			   NULL, 0, ret, err);
}
