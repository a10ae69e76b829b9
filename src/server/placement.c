/* SPDX-License-Identifier: Apache-2.0 */
/*
 * placement.c - the server's side of the scheduler (scheduler.c): the
 * placement keys of a create body, the server's overcommit ratios and
 * which hosts can be called now (through this server or, forwarded, through
 * the server holding the host's link).
 */
#include "cluster.h"

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ha.h"
#include "hostlink.h"
#include "json_util.h"
#include "scheduler.h"
#include "server.h"
#include "validate.h"

/* Hosts this server holds, and those other live servers hold (read once,
 * before the scheduler's transaction: no query inside it). */
struct reach {
	struct kc_server *srv;
	json_t *elsewhere;
};

static bool reachable(void *opaque, const char *host)
{
	struct reach *r = opaque;

	return kc_host_held_here(r->srv, host) ||
	       (host && json_object_get(r->elsewhere, host) != NULL);
}

static void reach_init(struct reach *r, struct kc_server *srv)
{
	r->srv = srv;
	r->elsewhere = srv->plink ? kc_ha_held_elsewhere(srv) : NULL;
}

static void sched_opts(const struct kc_server *srv, struct kc_sched_opts *o)
{
	o->cpu_ratio = srv->cpu_overcommit > 0 ? srv->cpu_overcommit
					       : KC_SCHED_CPU_OVERCOMMIT_DEFAULT;
	o->mem_ratio = srv->mem_overcommit > 0 ? srv->mem_overcommit
					       : KC_SCHED_MEM_OVERCOMMIT_DEFAULT;
}

void kc_placement_strip(json_t *body)
{
	json_object_del(body, "zone");
	json_object_del(body, "cluster");
	json_object_del(body, "group");
}

/* Reads "zone", "cluster" and "group" of a create body into *p (borrowed
 * from body); "host" is read by the caller. */
static int placement_read(const json_t *body, struct kc_placement *p, struct kc_error *err)
{
	static const char *const group_keys[] = {"name", "policy", NULL};

	if (kc_json_get_string(body, "zone", false, KC_NAME_MAX, &p->zone, err) < 0 ||
	    kc_json_get_string(body, "cluster", false, KC_NAME_MAX, &p->cluster, err) < 0)
		return -1;
	if (p->zone && kc_name_validate(p->zone, "zone name", err) < 0)
		return -1;
	if (p->cluster && kc_name_validate(p->cluster, "cluster name", err) < 0)
		return -1;
	json_t *g = json_object_get(body, "group");
	if (!g || json_is_null(g))
		return 0;
	if (!json_is_object(g))
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"group\" must be an object {\"name\", \"policy\"}");
	if (kc_json_check_keys(g, group_keys, "group", err) < 0 ||
	    kc_json_get_string(g, "name", true, KC_NAME_MAX, &p->group, err) < 0 ||
	    kc_json_get_string(g, "policy", false, 32, &p->policy, err) < 0 ||
	    kc_name_validate(p->group, "group name", err) < 0)
		return -1;
	if (p->policy && strcmp(p->policy, "affinity") != 0 &&
	    strcmp(p->policy, "anti-affinity") != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "group policy must be \"affinity\" or \"anti-affinity\"");
	return 0;
}

int kc_placement_check(const json_t *body, struct kc_error *err)
{
	struct kc_placement p = {0};

	return placement_read(body, &p, err);
}

int kc_place_and_record(struct kc_server *srv, const json_t *body, const char *requested,
			const struct kc_db_vm *vm, bool check_quota, char **ret_host,
			struct kc_error *err)
{
	struct kc_placement p = {.host = requested};
	struct kc_sched_opts o;
	struct reach r;

	if (placement_read(body, &p, err) < 0)
		return -1;
	sched_opts(srv, &o);
	kc_db_vm_sizes(vm->request, &p.vcpus, &p.memory_mib, &(int64_t){0});
	reach_init(&r, srv);
	int rc = kc_sched_place_insert(srv->db, &o, &p, reachable, &r, vm, check_quota, ret_host,
				       err);
	json_decref(r.elsewhere);
	return rc;
}

int kc_place_vm(struct kc_server *srv, const char *requested, char **ret_host, struct kc_error *err)
{
	struct kc_placement p = {.host = requested, .vcpus = 1};
	struct kc_sched_opts o;
	struct reach r;

	sched_opts(srv, &o);
	reach_init(&r, srv);
	int rc = kc_sched_pick(srv->db, &o, &p, reachable, &r, ret_host, err);
	json_decref(r.elsewhere);
	return rc;
}
