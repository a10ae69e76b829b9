/* SPDX-License-Identifier: Apache-2.0 */
/* db_networks.c - guest network rows (db_networks.h). */
#include "db_networks.h"

#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"

struct create {
	const struct kc_gnet *g;
	const char *owner;
};

static int create_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct create *c = opaque;
	struct kc_gnet g = *c->g;
	int64_t num = 0;
	char now[21];

	if (kc_db_query_int(tx, "SELECT CAST(COALESCE(MAX(num), 0) AS BIGINT) FROM networks", NULL,
			    0, &num, err) < 0)
		return -1;
	num++;
	/* kcnat<N> must stay an interface name (15 characters). */
	if (num > 999999)
		return kc_error_set(err, KC_ERR_NO_CAPACITY, "no network numbers left");
	if (g.kind == KC_GNET_NAT || g.kind == KC_GNET_ISOLATED)
		snprintf(g.bridge, sizeof(g.bridge), "%s%u",
			 g.kind == KC_GNET_NAT ? "kcnat" : "kciso", (unsigned)num);
	_cleanup_json_ json_t *def = kc_gnet_to_json(&g);
	if (!def)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	kc_db_now(now);
	return kc_db_exec(tx,
			  "INSERT INTO networks (name, num, kind, def, vni, owner, created_at) "
			  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
			  KC_DB_PARAMS(KC_DB_TEXT(g.name), KC_DB_INT(num),
				       KC_DB_TEXT(kc_gnet_kind_name(g.kind)), KC_DB_JSON(def),
				       g.vni ? KC_DB_INT(g.vni) : KC_DB_NULL, KC_DB_TEXT(c->owner),
				       KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_db_network_create(struct kc_db *db, const struct kc_gnet *g, const char *owner,
			 json_t **ret_row, struct kc_error *err)
{
	struct create c = {.g = g, .owner = owner};
	struct kc_error e = {0};

	if (kc_db_tx(db, create_tx, &c, &e) < 0) {
		if (e.code == KC_ERR_CONFLICT) {
			_cleanup_json_ json_t *row = NULL;
			kc_db_query_row(db, "SELECT name FROM networks WHERE name = $1",
					KC_DB_PARAMS(KC_DB_TEXT(g->name)), &row, NULL);
			if (row)
				return kc_error_set(err, KC_ERR_CONFLICT,
						    "network \"%s\" already exists", g->name);
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "VNI %u is taken by another network", g->vni);
		}
		*err = e;
		return -1;
	}
	return ret_row ? kc_db_network_get(db, g->name, ret_row, err) : 0;
}

static const char *const net_json_cols[] = {"def", NULL};

int kc_db_network_get(struct kc_db *db, const char *name, json_t **ret_row, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	if (kc_db_query(db,
			"SELECT name, kind, def, owner, created_at FROM networks WHERE name = $1",
			KC_DB_PARAMS(KC_DB_TEXT(name)), &rows, err) < 0)
		return -1;
	if (json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "network \"%s\" not found", name);
	kc_db_rows_parse_json(rows, net_json_cols);
	*ret_row = json_incref(json_array_get(rows, 0));
	return 0;
}

int kc_db_network_def(struct kc_db *db, const char *name, struct kc_gnet *ret, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_network_get(db, name, &row, err) < 0)
		return -1;
	return kc_gnet_from_json(json_object_get(row, "def"), ret, err);
}

int kc_db_network_list(struct kc_db *db, json_t **ret_rows, struct kc_error *err)
{
	json_t *rows = NULL;
	if (kc_db_query(db, "SELECT name, kind, def, owner, created_at FROM networks ORDER BY name",
			NULL, 0, &rows, err) < 0)
		return -1;
	kc_db_rows_parse_json(rows, net_json_cols);
	*ret_rows = rows;
	return 0;
}

struct del {
	const char *name;
	json_t *hosts;
};

static int delete_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct del *d = opaque;
	_cleanup_json_ json_t *use = NULL;
	int64_t n = 0;

	json_decref(d->hosts);
	d->hosts = NULL;
	if (kc_db_query_row(tx, "SELECT vm FROM addresses WHERE network = $1 ORDER BY vm",
			    KC_DB_PARAMS(KC_DB_TEXT(d->name)), &use, err) < 0)
		return -1;
	if (use)
		return kc_error_set(err, KC_ERR_CONFLICT, "network \"%s\" is in use by VM \"%s\"",
				    d->name, json_string_value(json_object_get(use, "vm")));
	if (kc_db_query(tx, "SELECT host, local_ip FROM network_hosts WHERE network = $1",
			KC_DB_PARAMS(KC_DB_TEXT(d->name)), &d->hosts, err) < 0 ||
	    kc_db_exec(tx, "DELETE FROM network_hosts WHERE network = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(d->name)), NULL, err) < 0 ||
	    kc_db_exec(tx, "DELETE FROM networks WHERE name = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(d->name)), &n, err) < 0)
		return -1;
	if (n == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "network \"%s\" not found", d->name);
	return 0;
}

int kc_db_network_delete(struct kc_db *db, const char *name, json_t **ret_hosts,
			 struct kc_error *err)
{
	struct del d = {.name = name};
	if (kc_db_tx(db, delete_tx, &d, err) < 0) {
		json_decref(d.hosts);
		return -1;
	}
	*ret_hosts = d.hosts;
	return 0;
}

int kc_db_network_addresses(struct kc_db *db, const char *name, const char *owner,
			    json_t **ret_rows, struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT a.ip, a.mac, a.vm, a.nic, v.host FROM addresses a "
			   "JOIN vms v ON v.name = a.vm WHERE a.network = $1 "
			   "AND ($2 IS NULL OR v.owner = $2) ORDER BY a.vm, a.nic",
			   KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(owner)), ret_rows, err);
}

int kc_db_network_dhcp_hosts(struct kc_db *db, const char *name, const char *host, json_t **ret,
			     struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT a.mac, a.ip FROM addresses a JOIN vms v ON v.name = a.vm "
			   "WHERE a.network = $1 AND v.host = $2 AND a.ip IS NOT NULL "
			   "ORDER BY a.ip",
			   KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(host)), ret, err);
}

int kc_db_network_dhcp_ip(struct kc_db *db, const char *name, const char *host, char ret[16],
			  struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	ret[0] = '\0';
	if (kc_db_query(db,
			"SELECT dhcp_ip FROM network_hosts WHERE network = $1 AND host = $2 AND "
			"dhcp_ip IS NOT NULL",
			KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(host)), &rows, err) < 0)
		return -1;
	const char *ip = json_string_value(json_object_get(json_array_get(rows, 0), "dhcp_ip"));
	if (ip)
		snprintf(ret, 16, "%s", ip);
	return 0;
}

int kc_db_network_host_set(struct kc_db *db, const char *name, const char *host,
			   const char *local_ip, struct kc_error *err)
{
	char now[21];
	kc_db_now(now);
	return kc_db_exec(db,
			  "INSERT INTO network_hosts (network, host, local_ip, updated_at) "
			  "VALUES ($1, $2, $3, $4) ON CONFLICT (network, host) DO UPDATE SET "
			  "local_ip = $3, updated_at = $4",
			  KC_DB_PARAMS(KC_DB_TEXT(name), KC_DB_TEXT(host), KC_DB_TEXT(local_ip),
				       KC_DB_TEXT(now)),
			  NULL, err);
}

int kc_db_network_hosts(struct kc_db *db, const char *name, json_t **ret_rows, struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT host, local_ip, dhcp_ip FROM network_hosts WHERE network = $1 "
			   "ORDER BY host",
			   KC_DB_PARAMS(KC_DB_TEXT(name)), ret_rows, err);
}

int kc_db_vm_nics(struct kc_db *db, const char *vm, json_t **ret, struct kc_error *err)
{
	return kc_db_query(db,
			   "SELECT network, mac, ip, nic FROM addresses WHERE vm = $1 ORDER BY nic",
			   KC_DB_PARAMS(KC_DB_TEXT(vm)), ret, err);
}
