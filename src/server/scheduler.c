/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler.c - the choice of a host for a new VM, and its reservation.
 *
 * The room a host has left is computed from the VM records (one query
 * over hosts LEFT JOIN vms), not from what the host reports, so that a
 * `creating` record reserves its share before the agent has made
 * anything; doing the choice and the insert in one transaction (SQLite:
 * BEGIN IMMEDIATE, PostgreSQL: SERIALIZABLE with retries) is what keeps
 * two concurrent creates from taking the same last gigabyte.
 */
#include "scheduler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"

/* Rejection lines kept in the error (it holds 512 bytes). */
#define MAX_REASONS 4

struct reasons {
	char text[KC_ERROR_MSG_MAX];
	size_t len;
	unsigned n, dropped;
};

static void reject(struct reasons *r, const char *host, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reject(struct reasons *r, const char *host, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (r->n >= MAX_REASONS) {
		r->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	int w = snprintf(r->text + r->len, sizeof(r->text) - r->len, "\n  host \"%s\": %s", host,
			 why);
	if (w > 0)
		r->len = r->len + (size_t)w < sizeof(r->text) ? r->len + (size_t)w
							      : sizeof(r->text) - 1;
	r->n++;
}

static int64_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The group's policy and where its VMs are: *ret_hosts {host: count}. */
static int group_lookup(struct kc_db *db, const char *group, char **ret_policy, char **ret_owner,
			json_t **ret_hosts, struct kc_error *err)
{
	_cleanup_json_ json_t *g = NULL;
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	*ret_policy = *ret_owner = NULL;
	if (kc_db_query_row(db, "SELECT policy, owner FROM vm_groups WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(group)), &g, err) < 0 ||
	    kc_db_query(db,
			"SELECT host, COUNT(*) AS n FROM vms WHERE vm_group = $1 GROUP BY host",
			KC_DB_PARAMS(KC_DB_TEXT(group)), &rows, err) < 0)
		return -1;
	*ret_hosts = json_object();
	json_array_foreach(rows, i, row) json_object_set(*ret_hosts, str(row, "host"),
							 json_object_get(row, "n"));
	if (g && str(g, "policy"))
		*ret_policy = strdup(str(g, "policy"));
	if (g && str(g, "owner"))
		*ret_owner = strdup(str(g, "owner"));
	return 0;
}

int kc_sched_pick(struct kc_db *db, const struct kc_sched_opts *o, const struct kc_placement *p,
		  kc_sched_reachable_fn reachable, void *opaque, char **ret_host,
		  struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *members = NULL;
	_cleanup_free_ char *policy = NULL;
	_cleanup_free_ char *owner = NULL;
	struct reasons r = {.len = 0};
	const char *best = NULL;
	int64_t best_free = 0;
	unsigned considered = 0;
	size_t i;
	json_t *row;

	if (p->group) {
		if (group_lookup(db, p->group, &policy, &owner, &members, err) < 0)
			return -1;
		if (!policy && p->policy)
			policy = strdup(p->policy);
	}
	/* Usage per host in one statement: every record counts, `creating`
	 * ones too, since they are reservations. */
	if (kc_db_query(db,
			"SELECT h.name AS name, h.state AS state, h.zone AS zone, "
			"h.cluster AS cluster, h.facts AS facts, h.flags AS flags, "
			"CAST(COALESCE(SUM(v.vcpus), 0) AS BIGINT) AS used_vcpus, "
			"CAST(COALESCE(SUM(v.memory_mib), 0) AS BIGINT) AS used_mib "
			"FROM hosts h LEFT JOIN vms v ON v.host = h.name "
			"WHERE ($1 IS NULL OR h.name = $1) "
			"GROUP BY h.name ORDER BY h.name",
			KC_DB_PARAMS(KC_DB_TEXT(p->host)), &rows, err) < 0)
		return -1;
	kc_db_rows_parse_json(rows, (const char *const[]){"facts", "flags", NULL});
	if (p->host && json_array_size(rows) == 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "host \"%s\" not found", p->host);

	json_array_foreach(rows, i, row)
	{
		const char *name = str(row, "name");
		const char *state = str(row, "state");
		const json_t *facts = json_object_get(row, "facts");
		const json_t *flags = json_object_get(row, "flags");

		if (!name)
			continue;
		if ((p->zone && !eq(str(row, "zone"), p->zone)) ||
		    (p->cluster && !eq(str(row, "cluster"), p->cluster)))
			continue;
		considered++;
		if (!eq(state, "Up")) {
			reject(&r, name, "%s", eq(state, "Maintenance") ? "in maintenance"
					       : eq(state, "Pending")   ? "has not joined yet"
									: state ? state
										: "no state");
			continue;
		}
		if (reachable && !reachable(opaque, name)) {
			reject(&r, name, "not connected");
			continue;
		}
		if (!p->host && json_array_size(flags) > 0) {
			reject(&r, name, "flagged: %s", json_string_value(json_array_get(flags, 0)));
			continue;
		}
		if (policy && eq(policy, "anti-affinity") && json_object_get(members, name)) {
			reject(&r, name, "already holds a VM of anti-affinity group \"%s\"",
			       p->group);
			continue;
		}
		if (policy && eq(policy, "affinity") && json_object_size(members) > 0 &&
		    !json_object_get(members, name)) {
			reject(&r, name, "affinity group \"%s\" lives on another host", p->group);
			continue;
		}
		if (!json_is_integer(json_object_get(facts, "cpus")) ||
		    !json_is_integer(json_object_get(facts, "memory_kib"))) {
			reject(&r, name, "no CPU and memory facts yet");
			continue;
		}
		int64_t cap_cpu = (int64_t)((double)num(facts, "cpus") * o->cpu_ratio);
		int64_t cap_mib = (int64_t)((double)(num(facts, "memory_kib") / 1024) * o->mem_ratio);
		int64_t free_cpu = cap_cpu - num(row, "used_vcpus");
		int64_t free_mib = cap_mib - num(row, "used_mib");
		if (free_mib < p->memory_mib) {
			reject(&r, name,
			       "not enough memory: needs %" PRId64 " MiB, %" PRId64
			       " free of %" PRId64 " (overcommit %.2g)",
			       p->memory_mib, free_mib < 0 ? 0 : free_mib, cap_mib, o->mem_ratio);
			continue;
		}
		if (free_cpu < p->vcpus) {
			reject(&r, name,
			       "not enough vCPUs: needs %" PRId64 ", %" PRId64 " free of %" PRId64
			       " (overcommit %.2g)",
			       p->vcpus, free_cpu < 0 ? 0 : free_cpu, cap_cpu, o->cpu_ratio);
			continue;
		}
		if (!best || free_mib > best_free) {
			best = name;
			best_free = free_mib;
		}
	}
	if (best) {
		*ret_host = strdup(best);
		if (!*ret_host)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return 0;
	}
	if (considered == 0)
		return kc_error_set(err, KC_ERR_NO_CAPACITY, "no host%s%s%s%s%s to place the VM on",
				    p->zone ? " in zone \"" : "", p->zone ? p->zone : "",
				    p->zone ? "\"" : "", p->cluster ? " in cluster " : "",
				    p->cluster ? p->cluster : "");
	if (r.dropped)
		snprintf(r.text + r.len, sizeof(r.text) - r.len, "\n  and %u more", r.dropped);
	return kc_error_set(err, KC_ERR_NO_CAPACITY,
			    "no host can take the VM (%" PRId64 " vCPUs, %" PRId64 " MiB):%s",
			    p->vcpus, p->memory_mib, r.text);
}

struct place_insert {
	const struct kc_sched_opts *o;
	const struct kc_placement *p;
	kc_sched_reachable_fn reachable;
	void *opaque;
	const struct kc_db_vm *vm;
	bool check_quota;
	char *host;
};

/* The group: created if new, else checked against the request. */
static int group_join(struct kc_db *tx, const struct place_insert *pi, struct kc_error *err)
{
	_cleanup_json_ json_t *g = NULL;
	const struct kc_placement *p = pi->p;
	char now[21];

	if (kc_db_query_row(tx, "SELECT policy, owner FROM vm_groups WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(p->group)), &g, err) < 0)
		return -1;
	if (!g) {
		if (!p->policy)
			return kc_error_set(err, KC_ERR_INVALID,
					    "group \"%s\" does not exist: give its \"policy\" "
					    "(affinity or anti-affinity) to create it",
					    p->group);
		kc_db_now(now);
		if (kc_db_exec(tx,
			       "INSERT INTO vm_groups (name, policy, owner, created_at) "
			       "VALUES ($1, $2, $3, $4)",
			       KC_DB_PARAMS(KC_DB_TEXT(p->group), KC_DB_TEXT(p->policy),
					    KC_DB_TEXT(pi->vm->owner), KC_DB_TEXT(now)),
			       NULL, err) < 0)
			return -1;
	} else {
		if (p->policy && !eq(str(g, "policy"), p->policy))
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "group \"%s\" has policy %s, not %s", p->group,
					    str(g, "policy"), p->policy);
		if (str(g, "owner") && pi->vm->owner && !eq(str(g, "owner"), pi->vm->owner))
			return kc_error_set(err, KC_ERR_FORBIDDEN,
					    "group \"%s\" belongs to another user", p->group);
	}
	return 0;
}

static int place_insert_tx(struct kc_db *tx, void *opaque, struct kc_error *err)
{
	struct place_insert *pi = opaque;
	struct kc_db_vm vm = *pi->vm;

	free(pi->host); /* a retried transaction chooses again */
	pi->host = NULL;
	if (pi->p->group && group_join(tx, pi, err) < 0)
		return -1;
	if (kc_sched_pick(tx, pi->o, pi->p, pi->reachable, pi->opaque, &pi->host, err) < 0)
		return -1;
	vm.host = pi->host;
	if (kc_db_vm_insert(tx, &vm, pi->check_quota, err) < 0)
		return -1;
	if (pi->p->group &&
	    kc_db_exec(tx, "UPDATE vms SET vm_group = $2 WHERE name = $1",
		       KC_DB_PARAMS(KC_DB_TEXT(vm.name), KC_DB_TEXT(pi->p->group)), NULL, err) < 0)
		return -1;
	if (vm.in_tx && vm.in_tx(tx, vm.host, vm.in_tx_opaque, err) < 0)
		return -1;
	return 0;
}

int kc_sched_place_insert(struct kc_db *db, const struct kc_sched_opts *o,
			  const struct kc_placement *p, kc_sched_reachable_fn reachable,
			  void *opaque, const struct kc_db_vm *vm, bool check_quota,
			  char **ret_host, struct kc_error *err)
{
	struct place_insert pi = {.o = o,
				  .p = p,
				  .reachable = reachable,
				  .opaque = opaque,
				  .vm = vm,
				  .check_quota = check_quota};

	if (kc_db_tx(db, place_insert_tx, &pi, err) < 0) {
		free(pi.host);
		return -1;
	}
	*ret_host = pi.host;
	return 0;
}

int kc_db_host_set_flag(struct kc_db *db, const char *host, const char *kind, const char *detail,
			struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	_cleanup_json_ json_t *flags = NULL;
	size_t klen = strlen(kind);
	size_t i;
	json_t *f;

	if (kc_db_query_row(db, "SELECT flags FROM hosts WHERE name = $1",
			    KC_DB_PARAMS(KC_DB_TEXT(host)), &row, err) < 0)
		return -1;
	if (!row)
		return 0;
	const char *text = str(row, "flags");
	flags = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_array(flags)) {
		json_decref(flags);
		flags = json_array();
	}
	_cleanup_json_ json_t *out = json_array();
	json_array_foreach(flags, i, f)
	{
		const char *s = json_string_value(f);
		if (s && !(strncmp(s, kind, klen) == 0 && s[klen] == ':'))
			json_array_append(out, f);
	}
	if (detail) {
		_cleanup_free_ char *entry = NULL;
		if (asprintf(&entry, "%s: %s", kind, detail) < 0)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		json_array_append_new(out, json_string(entry));
	}
	if (json_equal(out, flags))
		return 0;
	return kc_db_exec(db, "UPDATE hosts SET flags = $2 WHERE name = $1",
			  KC_DB_PARAMS(KC_DB_TEXT(host),
				       json_array_size(out) ? KC_DB_JSON(out) : KC_DB_NULL),
			  NULL, err);
}
