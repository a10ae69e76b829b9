/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_scheduler.c - the scheduler (scheduler.c) against an SQLite database
 * with fake hosts: capacity, overcommit, zone and cluster filters,
 * maintenance, flags, anti-affinity spreading, affinity packing, the
 * no-capacity message, the cluster CPU rule, and concurrent reservations
 * that must never overbook a host.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "json_util.h"
#include "kctest.h"
#include "scheduler.h"
#include "srvtest.h"

static char dir[] = "/tmp/kcsched-XXXXXX";
static int n_db;
static const struct kc_sched_opts ratios = {.cpu_ratio = 4.0, .mem_ratio = 1.0};

static struct kc_db *fresh_db(void)
{
	struct kc_error err = {0};
	struct kc_db *db = NULL;
	char path[128];

	snprintf(path, sizeof(path), "%s/s%d.db", dir, n_db++);
	if (kc_db_sqlite_open(path, -1, &db, &err) < 0)
		kc_test_diag("open: %s", err.message);
	return db;
}

/* A joined host with `cpus` CPUs and `mib` MiB of memory. */
static void host(struct kc_db *db, const char *name, const char *zone, const char *cluster,
		 int cpus, int mib)
{
	struct kc_error err = {0};
	_cleanup_json_ json_t *facts =
		json_pack("{s:i,s:I,s:s}", "cpus", cpus, "memory_kib", (json_int_t)mib * 1024,
			  "cpu_model", "Skylake-Client-IBRS");

	if (!KC_CHECK(kc_db_host_add(db, name, zone, cluster, &err) == 0) ||
	    !KC_CHECK(kc_db_host_upsert(db, &(struct kc_db_host){.name = name, .facts = facts},
					&err) == 0) ||
	    !KC_CHECK(kc_db_host_set_state(db, name, "Up", &err) == 0))
		kc_test_diag("host %s: %s", name, err.message);
}

/* Places and records VM `name`; returns its host (static buffer) or NULL
 * with *err set. */
static const char *place(struct kc_db *db, const struct kc_sched_opts *o,
			 struct kc_placement p, const char *name, struct kc_error *err)
{
	static char buf[80];
	_cleanup_json_ json_t *req = json_pack("{s:s,s:I,s:I,s:s}", "name", name, "vcpus",
					       (json_int_t)p.vcpus, "memory_mib",
					       (json_int_t)p.memory_mib, "image", "kctest");
	_cleanup_free_ char *h = NULL;

	if (kc_sched_place_insert(db, o, &p, NULL, NULL,
				  &(struct kc_db_vm){.name = name,
						     .state = "creating",
						     .owner = KC_DB_ADMIN_USER,
						     .request = req},
				  false, &h, err) < 0)
		return NULL;
	snprintf(buf, sizeof(buf), "%s", h);
	return buf;
}

#define VM(v, m) ((struct kc_placement){.vcpus = (v), .memory_mib = (m)})

KC_TEST(most_free_memory_wins_and_capacity_holds)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	const char *h;

	if (!KC_CHECK(db))
		return;
	host(db, "a", NULL, NULL, 2, 4096);
	host(db, "b", NULL, NULL, 2, 2048);
	h = place(db, &ratios, VM(1, 1024), "v1", &err);
	KC_CHECK_STREQ(h, "a");
	h = place(db, &ratios, VM(1, 1024), "v2", &err);
	KC_CHECK_STREQ(h, "a"); /* a: 3072 free, b: 2048 */
	h = place(db, &ratios, VM(1, 1536), "v3", &err);
	KC_CHECK_STREQ(h, "a"); /* a 2048 vs b 2048: tie to the first name */
	h = place(db, &ratios, VM(1, 2048), "v4", &err);
	KC_CHECK_STREQ(h, "b");
	kc_error_clear(&err);
	h = place(db, &ratios, VM(1, 1024), "v5", &err);
	KC_CHECK(h == NULL);
	KC_CHECK_INT(err.code, KC_ERR_NO_CAPACITY);
	kc_test_diag("%s", err.message);
	KC_CHECK(strstr(err.message, "host \"a\": not enough memory") != NULL);
	KC_CHECK(strstr(err.message, "host \"b\": not enough memory") != NULL);
	/* A failed placement leaves no record. */
	_cleanup_json_ json_t *r = NULL;
	kc_error_clear(&err);
	KC_CHECK(kc_db_vm_get(db, "v5", &r, &err) < 0 && err.code == KC_ERR_NOT_FOUND);
	kc_db_close(db);
}

KC_TEST(cpu_overcommit_ratio)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	struct kc_sched_opts one = {.cpu_ratio = 1.0, .mem_ratio = 1.0};
	struct kc_sched_opts two = {.cpu_ratio = 2.0, .mem_ratio = 1.0};

	if (!KC_CHECK(db))
		return;
	host(db, "a", NULL, NULL, 2, 8192);
	KC_CHECK(place(db, &one, VM(2, 128), "v1", &err) != NULL);
	KC_CHECK(place(db, &one, VM(1, 128), "v2", &err) == NULL);
	KC_CHECK(strstr(err.message, "not enough vCPUs: needs 1, 0 free of 2") != NULL);
	kc_error_clear(&err);
	KC_CHECK(place(db, &two, VM(2, 128), "v2", &err) != NULL);
	KC_CHECK(place(db, &two, VM(1, 128), "v3", &err) == NULL);
	/* Memory overcommit: 8192 x 1.5 = 12288 MiB. */
	kc_error_clear(&err);
	struct kc_sched_opts mem = {.cpu_ratio = 8.0, .mem_ratio = 1.5};
	KC_CHECK(place(db, &mem, VM(1, 12288 - 256), "v4", &err) != NULL);
	KC_CHECK(place(db, &mem, VM(1, 1), "v5", &err) == NULL);
	kc_db_close(db);
}

KC_TEST(zone_and_cluster_filter)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	struct kc_placement p = VM(1, 128);

	if (!KC_CHECK(db))
		return;
	KC_CHECK(kc_db_zone_create(db, "z1", &err) == 0);
	KC_CHECK(kc_db_zone_create(db, "z2", &err) == 0);
	KC_CHECK(kc_db_cluster_create(db, "c1", "z1", NULL, NULL, &err) == 0);
	KC_CHECK(kc_db_cluster_create(db, "c2", "z2", NULL, NULL, &err) == 0);
	host(db, "big", "z1", "c1", 8, 65536);
	host(db, "small", "z2", "c2", 2, 1024);
	p.zone = "z2";
	KC_CHECK_STREQ(place(db, &ratios, p, "v1", &err), "small");
	p.zone = NULL;
	p.cluster = "c2";
	KC_CHECK_STREQ(place(db, &ratios, p, "v2", &err), "small");
	p.cluster = NULL;
	KC_CHECK_STREQ(place(db, &ratios, p, "v3", &err), "big");
	p.zone = "nowhere";
	KC_CHECK(place(db, &ratios, p, "v4", &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_NO_CAPACITY);
	KC_CHECK(strstr(err.message, "no host in zone \"nowhere\"") != NULL);
	kc_db_close(db);
}

KC_TEST(maintenance_down_pending_and_flags_take_nothing)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};

	if (!KC_CHECK(db))
		return;
	host(db, "a", NULL, NULL, 4, 8192);
	host(db, "b", NULL, NULL, 4, 4096);
	host(db, "c", NULL, NULL, 4, 4096);
	host(db, "d", NULL, NULL, 4, 4096);
	KC_CHECK(kc_db_host_add(db, "e", NULL, NULL, &err) == 0); /* Pending */
	KC_CHECK(kc_db_host_set_state(db, "a", "Maintenance", &err) == 0);
	KC_CHECK(kc_db_host_set_state(db, "b", "Down", &err) == 0);
	KC_CHECK(kc_db_host_set_flag(db, "c", "cpu_mismatch", "model X vs cluster's Y", &err) ==
		 0);
	KC_CHECK_STREQ(place(db, &ratios, VM(1, 128), "v1", &err), "d");
	KC_CHECK(kc_db_host_set_state(db, "d", "Disconnected", &err) == 0);
	KC_CHECK(place(db, &ratios, VM(1, 128), "v2", &err) == NULL);
	kc_test_diag("%s", err.message);
	KC_CHECK(strstr(err.message, "host \"a\": in maintenance") != NULL);
	KC_CHECK(strstr(err.message, "host \"b\": Down") != NULL);
	KC_CHECK(strstr(err.message, "host \"c\": flagged: cpu_mismatch: model X") != NULL);
	KC_CHECK(strstr(err.message, "host \"d\": Disconnected") != NULL);
	KC_CHECK(strstr(err.message, "and 1 more") != NULL); /* bounded: e is not listed */
	/* An admin may name a flagged host, not one in maintenance. */
	struct kc_placement p = VM(1, 128);
	p.host = "c";
	kc_error_clear(&err);
	KC_CHECK_STREQ(place(db, &ratios, p, "v3", &err), "c");
	p.host = "a";
	KC_CHECK(place(db, &ratios, p, "v4", &err) == NULL);
	KC_CHECK(strstr(err.message, "in maintenance") != NULL);
	/* Flags: replace by kind, clear. */
	_cleanup_json_ json_t *h = NULL;
	KC_CHECK(kc_db_host_set_flag(db, "c", "unmanaged_vms", "2", &err) == 0);
	KC_CHECK(kc_db_host_set_flag(db, "c", "cpu_mismatch", NULL, &err) == 0);
	KC_CHECK(kc_db_host_get(db, "c", &h, &err) == 0);
	json_t *flags = json_object_get(h, "flags");
	KC_CHECK_INT(json_array_size(flags), 1);
	KC_CHECK_STREQ(json_string_value(json_array_get(flags, 0)), "unmanaged_vms: 2");
	kc_db_close(db);
}

KC_TEST(anti_affinity_spreads_affinity_packs)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	struct kc_placement p = VM(1, 256);
	const char *h1, *h2;
	char first[80];

	if (!KC_CHECK(db))
		return;
	host(db, "a", NULL, NULL, 4, 8192);
	host(db, "b", NULL, NULL, 4, 8192);
	p.group = "web";
	p.policy = "anti-affinity";
	h1 = place(db, &ratios, p, "w1", &err);
	snprintf(first, sizeof(first), "%s", h1 ? h1 : "");
	h2 = place(db, &ratios, p, "w2", &err);
	KC_CHECK(h1 && h2 && strcmp(first, h2) != 0);
	KC_CHECK(place(db, &ratios, p, "w3", &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_NO_CAPACITY);
	KC_CHECK(strstr(err.message, "anti-affinity group \"web\"") != NULL);
	/* Another policy for an existing group is a conflict. */
	kc_error_clear(&err);
	p.policy = "affinity";
	KC_CHECK(place(db, &ratios, p, "w4", &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_CONFLICT);
	/* A new group without a policy is refused. */
	kc_error_clear(&err);
	p.group = "nopolicy";
	p.policy = NULL;
	KC_CHECK(place(db, &ratios, p, "w5", &err) == NULL);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);

	/* Affinity: all on the first member's host, even when the other
	 * has more room. */
	p.group = "db";
	p.policy = "affinity";
	kc_error_clear(&err);
	h1 = place(db, &ratios, p, "d1", &err);
	snprintf(first, sizeof(first), "%s", h1 ? h1 : "");
	for (int i = 2; i <= 4; i++) {
		char n[8];
		snprintf(n, sizeof(n), "d%d", i);
		KC_CHECK_STREQ(place(db, &ratios, p, n, &err), first);
	}
	/* ...and no room there is no placement, not a split. */
	p.memory_mib = 7000;
	KC_CHECK(place(db, &ratios, p, "d5", &err) == NULL);
	KC_CHECK(strstr(err.message, "affinity group \"db\" lives on another host") != NULL);
	kc_db_close(db);
}

struct racer {
	struct kc_db *db;
	int idx;
	int ok;
};

static void *race(void *opaque)
{
	struct racer *r = opaque;
	for (int i = 0; i < 6; i++) {
		struct kc_error err = {0};
		char n[32];
		snprintf(n, sizeof(n), "r%d-%d", r->idx, i);
		if (place(r->db, &ratios, VM(1, 512), n, &err))
			r->ok++;
		else if (err.code != KC_ERR_NO_CAPACITY)
			kc_test_diag("racer %d: %s", r->idx, err.message);
	}
	return NULL;
}

KC_TEST(concurrent_reservations_never_overbook)
{
	struct kc_db *db = fresh_db();
	struct racer r[8];
	pthread_t t[8];
	int total = 0;
	int64_t used = 0;
	struct kc_error err = {0};

	if (!KC_CHECK(db))
		return;
	/* Room for 4 + 2 VMs of 512 MiB; 48 attempts from 8 threads. */
	host(db, "a", NULL, NULL, 64, 2048);
	host(db, "b", NULL, NULL, 64, 1024);
	for (int i = 0; i < 8; i++) {
		r[i] = (struct racer){.db = db, .idx = i};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		total += r[i].ok;
	}
	KC_CHECK_INT(total, 6);
	KC_CHECK(kc_db_query_int(db,
				 "SELECT CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT) FROM vms "
				 "WHERE host = 'a'",
				 NULL, 0, &used, &err) == 0);
	KC_CHECK_INT(used, 2048);
	KC_CHECK(kc_db_query_int(db,
				 "SELECT CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT) FROM vms "
				 "WHERE host = 'b'",
				 NULL, 0, &used, &err) == 0);
	KC_CHECK_INT(used, 1024);
	kc_db_close(db);
}

KC_TEST(cluster_cpu_rule_flags_the_odd_host)
{
	struct kc_db *db = fresh_db();
	struct kc_error err = {0};
	_cleanup_json_ json_t *f1 = json_pack("{s:s,s:s,s:[s,s,s]}", "cpu_model", "Skylake",
					      "cpu_vendor", "Intel", "cpu_features", "vmx",
					      "avx2", "aes");
	_cleanup_json_ json_t *f2 = json_pack("{s:s,s:s,s:[s,s]}", "cpu_model", "Skylake",
					      "cpu_vendor", "Intel", "cpu_features", "aes", "vmx");
	_cleanup_json_ json_t *f3 = json_pack("{s:s,s:s,s:[s,s,s]}", "cpu_model", "Haswell",
					      "cpu_vendor", "Intel", "cpu_features", "aes",
					      "avx2", "vmx");
	_cleanup_json_ json_t *h = NULL;

	if (!KC_CHECK(db))
		return;
	KC_CHECK(kc_db_zone_create(db, "z", &err) == 0);
	KC_CHECK(kc_db_cluster_create(db, "c", "z", NULL, NULL, &err) == 0);
	host(db, "h1", "z", "c", 4, 4096);
	host(db, "h2", "z", "c", 4, 4096);
	host(db, "h3", "z", "c", 4, 4096);
	KC_CHECK(kc_cluster_cpu_check(db, "h1", f1, &err) == 0); /* sets the cluster's */
	KC_CHECK(kc_cluster_cpu_check(db, "h2", f2, &err) == 0);
	KC_CHECK(kc_cluster_cpu_check(db, "h3", f3, &err) == 0);
	KC_CHECK(kc_db_host_get(db, "h1", &h, &err) == 0);
	KC_CHECK(json_array_size(json_object_get(h, "flags")) == 0);
	json_decref(h);
	h = NULL;
	KC_CHECK(kc_db_host_get(db, "h2", &h, &err) == 0);
	KC_CHECK_STREQ(json_string_value(json_array_get(json_object_get(h, "flags"), 0)),
		       "cpu_mismatch: missing features avx2");
	json_decref(h);
	h = NULL;
	KC_CHECK(kc_db_host_get(db, "h3", &h, &err) == 0);
	KC_CHECK_STREQ(json_string_value(json_array_get(json_object_get(h, "flags"), 0)),
		       "cpu_mismatch: model Haswell vs cluster's Skylake");
	/* h2 upgraded: the flag goes. */
	KC_CHECK(kc_cluster_cpu_check(db, "h2", f1, &err) == 0);
	json_decref(h);
	h = NULL;
	KC_CHECK(kc_db_host_get(db, "h2", &h, &err) == 0);
	KC_CHECK(json_array_size(json_object_get(h, "flags")) == 0);
	/* Unmanaged domains: those without a record. */
	_cleanup_json_ json_t *doms = json_pack("[{s:s},{s:s}]", "name", "x1", "name", "x2");
	KC_CHECK(kc_note_unmanaged(db, "h1", doms, &err) == 0);
	json_decref(h);
	h = NULL;
	KC_CHECK(kc_db_host_get(db, "h1", &h, &err) == 0);
	KC_CHECK_STREQ(json_string_value(json_array_get(json_object_get(h, "flags"), 0)),
		       "unmanaged_vms: 2");
	kc_db_close(db);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	kc_test_run_registered();
	int rc = kc_test_finish();
	srvtest_rm_rf(dir);
	return rc;
}
