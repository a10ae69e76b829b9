/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_networks.c - guest networks in the database (db_networks.c) and
 * address allocation (ipam.c) against SQLite with a fake host: numbered
 * bridges, unique VNIs, requested and next-free addresses, MACs unique in
 * the cluster, release with the VM record, and 20 concurrent creates that
 * must never hand one address out twice.  With KC_TEST_PG_URL (run by
 * run_db_pg.sh as server_networks_pg) every case runs again on
 * PostgreSQL, each in a schema of its own.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "db_networks.h"
#include "db_vms.h"
#include "ipam.h"
#include "json_util.h"
#include "kctest.h"
#include "scheduler.h"
#include "srvtest.h"

static char dir[] = "/tmp/kcnets-XXXXXX";
static int n_db;
static const struct kc_sched_opts ratios = {.cpu_ratio = 100.0, .mem_ratio = 100.0};

static const char *pg_url; /* KC_TEST_PG_URL */
static bool on_pg;
static char *schemas[16];
static size_t n_schemas;

static void quiet(void *arg, const char *message)
{
}

static bool pg_admin(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url);
	bool ok = PQstatus(c) == CONNECTION_OK;
	if (ok) {
		PQsetNoticeProcessor(c, quiet, NULL);
		PGresult *r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			kc_test_diag("%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return ok;
}

/* A new database (SQLite file, or PostgreSQL schema) with one Up host. */
static struct kc_db *fresh_db(void)
{
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	char path[512], sql[128], name[64];
	int rc;

	if (on_pg) {
		snprintf(name, sizeof(name), "kcnet_%d_%d", (int)getpid(), n_db++);
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", name);
		if (!pg_admin(sql))
			return NULL;
		if (n_schemas < KC_ARRAY_SIZE(schemas))
			schemas[n_schemas++] = strdup(name);
		snprintf(path, sizeof(path), "%s%coptions=-csearch_path%%3D%s", pg_url,
			 strchr(pg_url, '?') ? '&' : '?', name);
		rc = kc_db_pg_open(path, -1, 0, &db, &err);
	} else {
		snprintf(path, sizeof(path), "%s/n%d.db", dir, n_db++);
		rc = kc_db_sqlite_open(path, -1, &db, &err);
	}
	if (rc < 0) {
		kc_test_diag("open: %s", err.message);
		return NULL;
	}
	_cleanup_json_ json_t *facts =
		json_pack("{s:i,s:I}", "cpus", 64, "memory_kib", (json_int_t)64 * 1024 * 1024);
	if (kc_db_host_add(db, "h1", NULL, NULL, &err) < 0 ||
	    kc_db_host_upsert(db, &(struct kc_db_host){.name = "h1", .facts = facts}, &err) < 0 ||
	    kc_db_host_set_state(db, "h1", "Up", &err) < 0)
		kc_test_diag("host: %s", err.message);
	return db;
}

static int net(struct kc_db *db, const char *json, struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_loads(json, 0, NULL);
	struct kc_gnet g;
	if (kc_gnet_from_json(j, &g, err) < 0)
		return -1;
	if (g.kind == KC_GNET_NAT || g.kind == KC_GNET_ISOLATED)
		g.bridge[0] = '\0';
	return kc_db_network_create(db, &g, KC_DB_ADMIN_USER, NULL, err);
}

/* Creates VM `name` with the NICs of `nics_json`; *ret_defs its nic_defs. */
static int create(struct kc_db *db, const char *name, const char *nics_json, json_t **ret_defs,
		  struct kc_error *err)
{
	_cleanup_json_ json_t *body =
		json_pack("{s:s,s:i,s:s,s:o}", "name", name, "memory_mib", 64, "image", "kctest",
			  "nics", json_loads(nics_json, 0, NULL));
	struct kc_vm_request req = {0};
	if (kc_vm_request_from_json(body, &req, err) < 0)
		return -1;
	_cleanup_json_ json_t *stored = kc_vm_request_to_json(&req);
	struct kc_ipam ip = {.req = &req};
	struct kc_placement p = {.vcpus = 1, .memory_mib = 64};
	_cleanup_free_ char *h = NULL;
	int rc = kc_sched_place_insert(db, &ratios, &p, NULL, NULL,
				       &(struct kc_db_vm){.name = name,
							  .state = "creating",
							  .owner = KC_DB_ADMIN_USER,
							  .request = stored,
							  .in_tx = kc_ipam_allocate_tx,
							  .in_tx_opaque = &ip},
				       false, &h, err);
	if (rc == 0 && ret_defs)
		*ret_defs = json_incref(ip.nic_defs);
	kc_ipam_clear(&ip);
	kc_vm_request_clear(&req);
	return rc;
}

static const char *def_ip(const json_t *defs, size_t i)
{
	return json_string_value(json_object_get(json_array_get(defs, i), "ip"));
}

KC_TEST(numbered_bridges_and_unique_vni)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	struct kc_gnet g;
	KC_CHECK_INT(net(db,
			 "{\"name\":\"a\",\"kind\":\"nat\",\"bridge\":\"kcnat1\","
			 "\"cidr\":\"10.60.0.0/24\"}",
			 &err),
		     0);
	KC_CHECK_INT(net(db,
			 "{\"name\":\"b\",\"kind\":\"isolated\",\"bridge\":\"kciso1\","
			 "\"cidr\":\"10.61.0.0/24\"}",
			 &err),
		     0);
	if (KC_CHECK_INT(kc_db_network_def(db, "b", &g, &err), 0))
		KC_CHECK_STREQ(g.bridge, "kciso2");
	KC_CHECK_INT(net(db, "{\"name\":\"x1\",\"kind\":\"vxlan\",\"vni\":77,\"underlay\":\"e0\"}",
			 &err),
		     0);
	struct kc_error e2 = {0};
	KC_CHECK_INT(
		net(db, "{\"name\":\"x2\",\"kind\":\"vxlan\",\"vni\":77,\"underlay\":\"e0\"}", &e2),
		-1);
	KC_CHECK_INT(e2.code, KC_ERR_CONFLICT);
	KC_CHECK(strstr(e2.message, "VNI 77") != NULL);
	struct kc_error e3 = {0};
	KC_CHECK_INT(net(db, "{\"name\":\"a\",\"kind\":\"bridged\",\"bridge\":\"br0\"}", &e3), -1);
	KC_CHECK_INT(e3.code, KC_ERR_CONFLICT);
	kc_db_close(db);
}

KC_TEST(requested_and_next_free_addresses)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	_cleanup_json_ json_t *d1 = NULL, *d2 = NULL, *d3 = NULL, *nics = NULL;
	net(db, "{\"name\":\"n\",\"kind\":\"nat\",\"bridge\":\"kcnat1\",\"cidr\":\"10.60.0.0/24\"}",
	    &err);
	net(db, "{\"name\":\"v\",\"kind\":\"vlan\",\"bridge\":\"cloudbr\",\"vlan\":200}", &err);
	if (!KC_CHECK_INT(
		    create(db, "vm1", "[{\"network\":\"n\",\"ip\":\"10.60.0.2\"}]", &d1, &err),
		    0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	KC_CHECK_STREQ(def_ip(d1, 0), "10.60.0.2");
	/* Next free skips the requested one; the VLAN network has no range. */
	if (KC_CHECK_INT(create(db, "vm2", "[{\"network\":\"n\"},{\"network\":\"v\"}]", &d2, &err),
			 0)) {
		KC_CHECK_STREQ(def_ip(d2, 0), "10.60.0.3");
		KC_CHECK(def_ip(d2, 1) == NULL);
		const char *mac = json_string_value(json_object_get(json_array_get(d2, 1), "mac"));
		KC_CHECK(mac && strncmp(mac, "52:54:00:", 9) == 0);
	}
	struct kc_error e = {0};
	KC_CHECK_INT(create(db, "vm3", "[{\"network\":\"n\",\"ip\":\"10.60.0.3\"}]", NULL, &e), -1);
	KC_CHECK_INT(e.code, KC_ERR_CONFLICT);
	kc_error_clear(&e);
	KC_CHECK_INT(create(db, "vm3", "[{\"network\":\"n\",\"ip\":\"10.60.0.1\"}]", NULL, &e), -1);
	KC_CHECK_INT(e.code, KC_ERR_INVALID); /* the gateway */
	kc_error_clear(&e);
	KC_CHECK_INT(create(db, "vm3", "[{\"network\":\"v\",\"ip\":\"10.0.0.5\"}]", NULL, &e), -1);
	KC_CHECK_INT(e.code, KC_ERR_INVALID);
	kc_error_clear(&e);
	KC_CHECK_INT(create(db, "vm3", "[{\"network\":\"nope\"}]", NULL, &e), -1);
	KC_CHECK_INT(e.code, KC_ERR_INVALID);
	kc_error_clear(&e);
	/* A MAC is unique in the whole cluster, across networks. */
	const char *mac1 = json_string_value(json_object_get(json_array_get(d1, 0), "mac"));
	char spec[128];
	snprintf(spec, sizeof(spec), "[{\"network\":\"v\",\"mac\":\"%s\"}]", mac1);
	KC_CHECK_INT(create(db, "vm3", spec, NULL, &e), -1);
	KC_CHECK_INT(e.code, KC_ERR_CONFLICT);
	/* A failed create left nothing: its record and addresses rolled back. */
	_cleanup_json_ json_t *rows = NULL;
	if (KC_CHECK_INT(kc_db_network_addresses(db, "n", NULL, &rows, &err), 0))
		KC_CHECK_INT(json_array_size(rows), 2);
	/* What security groups read (db_networks.h). */
	if (KC_CHECK_INT(kc_db_vm_nics(db, "vm2", &nics, &err), 0) &&
	    KC_CHECK_INT(json_array_size(nics), 2)) {
		KC_CHECK_STREQ(json_string_value(json_object_get(json_array_get(nics, 0), "ip")),
			       "10.60.0.3");
		KC_CHECK_STREQ(
			json_string_value(json_object_get(json_array_get(nics, 1), "network")),
			"v");
	}
	/* In use: the network stays. */
	_cleanup_json_ json_t *hosts = NULL;
	struct kc_error e4 = {0};
	KC_CHECK_INT(kc_db_network_delete(db, "n", &hosts, &e4), -1);
	KC_CHECK_INT(e4.code, KC_ERR_CONFLICT);
	/* Released with the record; then the address is handed out again. */
	KC_CHECK_INT(kc_db_vm_delete(db, "vm1", &err), 0);
	if (KC_CHECK_INT(create(db, "vm4", "[{\"network\":\"n\"}]", &d3, &err), 0))
		KC_CHECK_STREQ(def_ip(d3, 0), "10.60.0.2");
	KC_CHECK_INT(kc_db_vm_delete(db, "vm2", &err), 0);
	KC_CHECK_INT(kc_db_vm_delete(db, "vm4", &err), 0);
	KC_CHECK_INT(kc_db_network_delete(db, "n", &hosts, &err), 0);
	kc_db_close(db);
}

/* vxlan/vlan networks with a range: one address per host for kvmcloud's
 * DHCP server there, the highest free one, never a NIC's; a full pool
 * refuses the VM that would need another. */
KC_TEST(dhcp_server_address_per_host)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	_cleanup_json_ json_t *d1 = NULL, *d2 = NULL, *facts = NULL;
	char ip[16];
	/* 10.9.0.1 .. 10.9.0.6 (no gateway on vxlan) */
	if (!KC_CHECK_INT(net(db,
			      "{\"name\":\"x\",\"kind\":\"vxlan\",\"vni\":9,\"underlay\":\"e0\","
			      "\"cidr\":\"10.9.0.0/29\"}",
			      &err),
			  0)) {
		kc_test_diag("%s", err.message);
		return;
	}
	if (KC_CHECK_INT(create(db, "d1", "[{\"network\":\"x\"}]", &d1, &err), 0))
		KC_CHECK_STREQ(def_ip(d1, 0), "10.9.0.1");
	if (KC_CHECK_INT(kc_db_network_dhcp_ip(db, "x", "h1", ip, &err), 0))
		KC_CHECK_STREQ(ip, "10.9.0.6");
	/* Another VM on h1 shares the server; the server's address is taken. */
	struct kc_error e = {0};
	KC_CHECK_INT(create(db, "d2", "[{\"network\":\"x\",\"ip\":\"10.9.0.6\"}]", NULL, &e), -1);
	KC_CHECK_INT(e.code, KC_ERR_CONFLICT);
	/* Another host gets its own. */
	facts = json_pack("{s:i,s:I}", "cpus", 64, "memory_kib", (json_int_t)64 * 1024 * 1024);
	if (kc_db_host_add(db, "h2", NULL, NULL, &err) < 0 ||
	    kc_db_host_upsert(db, &(struct kc_db_host){.name = "h2", .facts = facts}, &err) < 0 ||
	    kc_db_host_set_state(db, "h2", "Up", &err) < 0 ||
	    kc_db_host_set_state(db, "h1", "Maintenance", &err) < 0)
		kc_test_diag("host: %s", err.message);
	if (KC_CHECK_INT(create(db, "d2", "[{\"network\":\"x\"}]", &d2, &err), 0))
		KC_CHECK_STREQ(def_ip(d2, 0), "10.9.0.2");
	if (KC_CHECK_INT(kc_db_network_dhcp_ip(db, "x", "h2", ip, &err), 0))
		KC_CHECK_STREQ(ip, "10.9.0.5");
	if (KC_CHECK_INT(kc_db_network_dhcp_ip(db, "x", "h1", ip, &err), 0))
		KC_CHECK_STREQ(ip, "10.9.0.6");
	KC_CHECK_INT(create(db, "d3", "[{\"network\":\"x\"}]", NULL, &err), 0);
	KC_CHECK_INT(create(db, "d4", "[{\"network\":\"x\"}]", NULL, &err), 0);
	struct kc_error e2 = {0};
	KC_CHECK_INT(create(db, "d5", "[{\"network\":\"x\"}]", NULL, &e2), -1);
	KC_CHECK_INT(e2.code, KC_ERR_NO_CAPACITY);
	/* A network without a range, or a nat one, has no such server. */
	net(db, "{\"name\":\"v\",\"kind\":\"vlan\",\"bridge\":\"cloudbr\",\"vlan\":200}", &err);
	KC_CHECK_INT(create(db, "d6", "[{\"network\":\"v\"}]", NULL, &err), 0);
	if (KC_CHECK_INT(kc_db_network_dhcp_ip(db, "v", "h2", ip, &err), 0))
		KC_CHECK_STREQ(ip, "");
	kc_db_close(db);
}

struct race {
	struct kc_db *db;
	int i;
	int rc;
	enum kc_errcode code;
	char ip[16];
	char mac[18];
};

static void *race(void *opaque)
{
	struct race *r = opaque;
	struct kc_error err = {0};
	char name[16];
	_cleanup_json_ json_t *defs = NULL;
	snprintf(name, sizeof(name), "race%d", r->i);
	r->rc = create(r->db, name, "[{\"network\":\"small\"}]", &defs, &err);
	r->code = err.code;
	if (r->rc == 0) {
		snprintf(r->ip, sizeof(r->ip), "%s", def_ip(defs, 0));
		snprintf(r->mac, sizeof(r->mac), "%s",
			 json_string_value(json_object_get(json_array_get(defs, 0), "mac")));
	}
	return NULL;
}

/* A /28 has 13 addresses for guests (.2-.14): 20 creates at once get 13
 * distinct ones and 7 "no capacity", never a duplicate. */
KC_TEST(twenty_concurrent_creates_never_share_an_address)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	struct race r[20];
	pthread_t t[20];
	net(db,
	    "{\"name\":\"small\",\"kind\":\"nat\",\"bridge\":\"kcnat1\","
	    "\"cidr\":\"10.70.0.0/28\"}",
	    &err);
	for (int i = 0; i < 20; i++) {
		r[i] = (struct race){.db = db, .i = i};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 20; i++)
		pthread_join(t[i], NULL);
	int ok = 0, full = 0;
	for (int i = 0; i < 20; i++) {
		if (r[i].rc == 0) {
			ok++;
			for (int k = 0; k < i; k++)
				if (r[k].rc == 0 &&
				    (!strcmp(r[k].ip, r[i].ip) || !strcmp(r[k].mac, r[i].mac)))
					kc_test_fail(__FILE__, __LINE__, "%s handed out twice",
						     r[i].ip);
		} else if (r[i].code == KC_ERR_NO_CAPACITY) {
			full++;
		} else {
			kc_test_diag("create %d: error %d", i, (int)r[i].code);
		}
	}
	KC_CHECK_INT(ok, 13);
	KC_CHECK_INT(full, 7);
	_cleanup_json_ json_t *rows = NULL;
	if (KC_CHECK_INT(kc_db_network_addresses(db, "small", NULL, &rows, &err), 0))
		KC_CHECK_INT(json_array_size(rows), 13);
	kc_db_close(db);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	kc_test_run_registered();
	pg_url = getenv("KC_TEST_PG_URL");
	if (pg_url && *pg_url) {
		on_pg = true;
		kc_test_diag("again on PostgreSQL");
		kc_test_run_registered();
	}
	for (size_t i = 0; i < n_schemas; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schemas[i]);
		pg_admin(sql);
		free(schemas[i]);
	}
	int rc = kc_test_finish();
	srvtest_rm_rf(dir);
	return rc;
}
