/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler.h - where a new VM goes (issue 3, section 2), and the host
 * flags that keep the scheduler away from a host: placement by zone,
 * cluster, free memory and vCPUs under overcommit ratios, affinity and
 * anti-affinity groups, maintenance; docs/architecture.md, "Scheduler".
 *
 * Everything here works on the database alone (plus a callback that says
 * whether a host can be called now), so tests/server/test_scheduler.c
 * drives it with fake hosts.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"

#define KC_SCHED_CPU_OVERCOMMIT_DEFAULT 4.0
#define KC_SCHED_MEM_OVERCOMMIT_DEFAULT 1.0
#define KC_SCHED_OVERCOMMIT_MAX		64.0

/* Capacity of a host = facts.cpus x cpu_ratio vCPUs and
 * facts.memory_kib / 1024 x mem_ratio MiB (rounded down). */
struct kc_sched_opts {
	double cpu_ratio;
	double mem_ratio;
};

/* Where a VM may go.  Every string may be NULL and is borrowed. */
struct kc_placement {
	const char *host;    /* named by an admin: only that host is tried */
	const char *zone;    /* only hosts of this zone */
	const char *cluster; /* only hosts of this cluster */
	const char *group;   /* affinity / anti-affinity group name */
	const char *policy;  /* "affinity" or "anti-affinity"; NULL: the group's */
	int64_t vcpus, memory_mib;
};

/* Can the host be called now?  NULL callback: every host can. */
typedef bool (*kc_sched_reachable_fn)(void *opaque, const char *host);

/* Chooses a host for `p` in `db` (a transaction handle or not): one that
 * is Up, reachable, not flagged, in the zone / cluster asked for, with
 * room for p->vcpus and p->memory_mib beside the VM records already on it
 * (creating ones included), and that the group's policy allows; of
 * those, the one with most free memory, ties to the first name.  None is
 * KC_ERR_NO_CAPACITY naming why each candidate was rejected (a few
 * lines).  A named host skips the flag check (an admin's override) but
 * not state or capacity.  *ret_host is malloc'd. */
int kc_sched_pick(struct kc_db *db, const struct kc_sched_opts *o, const struct kc_placement *p,
		  kc_sched_reachable_fn reachable, void *opaque, char **ret_host,
		  struct kc_error *err);

/* kc_sched_pick() and the insert of the `creating` record on the chosen
 * host (vm->host is ignored) in one transaction, so that two creates at
 * once cannot both take the last room on a host; the group is created if
 * new (policy required then, owner vm->owner) and the record joins it.
 * A group with another policy is KC_ERR_CONFLICT, another user's group
 * KC_ERR_FORBIDDEN.  check_quota as kc_db_vm_insert(). */
int kc_sched_place_insert(struct kc_db *db, const struct kc_sched_opts *o,
			  const struct kc_placement *p, kc_sched_reachable_fn reachable,
			  void *opaque, const struct kc_db_vm *vm, bool check_quota,
			  char **ret_host, struct kc_error *err);

/* ---- host flags (hosts.flags: a JSON array of "kind: detail" strings) ---- */

/* Replaces the host's flag of `kind` ("cpu_mismatch", "unmanaged_vms")
 * with "kind: detail", or removes it when detail is NULL.  A missing host
 * is not an error. */
int kc_db_host_set_flag(struct kc_db *db, const char *host, const char *kind, const char *detail,
			struct kc_error *err);

/* ---- the cluster CPU rule (cpucheck.c) ---- */

/* The CPU signature of host facts: {"model","vendor","features":[sorted]}
 * (features only if the facts have them). */
json_t *kc_cpu_signature(const json_t *facts);
/* At an agent's hello: a host in a cluster whose CPU differs from the
 * cluster's (set by the first host that reports) gets the cpu_mismatch
 * flag naming the difference; a matching host loses it. */
int kc_cluster_cpu_check(struct kc_db *db, const char *host, const json_t *facts,
			 struct kc_error *err);
/* At an agent's hello: counts the reported domains without a VM record
 * and sets (or clears) the host's unmanaged_vms flag. */
int kc_note_unmanaged(struct kc_db *db, const char *host, const json_t *domains,
		      struct kc_error *err);
