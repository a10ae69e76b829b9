/* SPDX-License-Identifier: Apache-2.0 */
/*
 * volume_reconcile.c - volume records a dead process left half-way
 * (docs/storage.md "Crash safety"): a row in "creating", "attaching",
 * "detaching", "uploading" or "deleting" is settled against what the host
 * says, at start-up for the embedded agent's host and when a host's agent
 * says hello (on a thread of its own: the hello's thread must go on to
 * read the answers).
 *
 * Safe beside live requests: every volume request of this server marks
 * its volume busy (kc_volume_busy_enter) before it changes the row and
 * until it has answered; a row is settled only if it is not busy, under
 * the same lock, and only while it is still in the state that was judged
 * (a conditional UPDATE/DELETE).  Only hosts whose link this server holds
 * are asked; a row whose host cannot be asked stays for a later hello.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hostfw_push.h"
#include "db_pools.h"
#include "db_vms.h"
#include "db_volumes.h"
#include "hostlink.h"
#include "json_util.h"
#include "pool.h"
#include "server.h"
#include "volumes.h"

#define THREAD_STACK (512 * 1024)

/* ---- requests in flight ---- */

struct kc_volume_busy {
	const struct kc_server *srv; /* a key only, never dereferenced */
	char *name;
	struct kc_volume_busy *next;
};

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_volume_busy *busy_list;

struct kc_volume_busy *kc_volume_busy_enter(struct kc_server *srv, const char *name)
{
	struct kc_volume_busy *b = calloc(1, sizeof(*b));
	if (!b || !(b->name = strdup(name))) {
		free(b);
		return NULL;
	}
	b->srv = srv;
	pthread_mutex_lock(&busy_lock);
	b->next = busy_list;
	busy_list = b;
	pthread_mutex_unlock(&busy_lock);
	return b;
}

void kc_volume_busy_leave(struct kc_volume_busy **bp)
{
	struct kc_volume_busy *b = bp ? *bp : NULL;
	if (!b)
		return;
	pthread_mutex_lock(&busy_lock);
	for (struct kc_volume_busy **pp = &busy_list; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&busy_lock);
	free(b->name);
	free(b);
	*bp = NULL;
}

/* Called with busy_lock held. */
static bool busy_locked(const struct kc_server *srv, const char *name)
{
	for (const struct kc_volume_busy *b = busy_list; b; b = b->next)
		if (b->srv == srv && strcmp(b->name, name) == 0)
			return true;
	return false;
}

bool kc_volume_busy(struct kc_server *srv, const char *name)
{
	pthread_mutex_lock(&busy_lock);
	bool r = busy_locked(srv, name);
	pthread_mutex_unlock(&busy_lock);
	return r;
}

/* ---- the rules ---- */

static const char *str(const json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}

static bool is_transitional(const char *state)
{
	static const char *const states[] = {"creating", "attaching", "detaching", "uploading",
					     "deleting"};
	for (size_t i = 0; state && i < KC_ARRAY_SIZE(states); i++)
		if (strcmp(state, states[i]) == 0)
			return true;
	return false;
}

/* The settlement of one row judged in state `from`, unless a request of
 * this server took the volume meanwhile. */
static int apply(struct kc_server *srv, struct kc_db *db, const char *name, const char *from,
		 enum kc_vol_settle how, const char *vm, const char *target, bool *ret_done,
		 struct kc_error *err)
{
	*ret_done = false;
	pthread_mutex_lock(&busy_lock);
	int rc = busy_locked(srv, name)
			 ? 0
			 : kc_db_volume_settle(db, name, from, how, vm, target, ret_done, err);
	pthread_mutex_unlock(&busy_lock);
	return rc;
}

/* One row by the rules of volumes.h; *ret_what what was done (NULL:
 * nothing, the host could not tell or a request holds it). */
static int settle_row(struct kc_server *srv, struct kc_db *db, const json_t *row,
		      const struct kc_volume_truth_ops *ops, void *opaque, const char **ret_what,
		      struct kc_error *err)
{
	const char *name = str(row, "name"), *state = str(row, "state");
	_cleanup_free_ char *vm = NULL, *target = NULL;
	enum kc_vol_settle how;
	const char *what;
	bool done = false;
	int r;

	*ret_what = NULL;
	if (strcmp(state, "creating") == 0 || strcmp(state, "deleting") == 0) {
		if ((r = ops->present(opaque, row)) < 0)
			return 0;
		how = r ? KC_VOL_SETTLE_READY : KC_VOL_SETTLE_DROP;
		what = r ? "the volume exists: ready"
			 : "no such volume on the host: record removed";
	} else if (strcmp(state, "uploading") == 0) {
		/* The upload's client starts again at offset 0; a volume the
		 * agent emptied (deleted, not yet made again) is made again. */
		if ((r = ops->present(opaque, row)) < 0 || (r == 0 && ops->remake(opaque, row) < 0))
			return 0;
		how = KC_VOL_SETTLE_READY;
		what = r ? "upload interrupted: ready, content partial"
			 : "upload interrupted: made again empty, ready";
	} else if (strcmp(state, "attaching") == 0) {
		if ((r = ops->attachment(opaque, row, &vm, &target)) < 0)
			return 0;
		how = r ? KC_VOL_SETTLE_ATTACHED : KC_VOL_SETTLE_READY;
		what = r ? "attach interrupted: the domain has the disk, attached"
			 : "attach interrupted: the domain has no such disk, detached";
	} else if (strcmp(state, "detaching") == 0) {
		if ((r = ops->attachment(opaque, row, &vm, &target)) < 0)
			return 0;
		how = r ? KC_VOL_SETTLE_READY : KC_VOL_SETTLE_DETACHED;
		what = r ? "detach interrupted: the domain still has the disk, attached"
			 : "detach interrupted: the domain has no such disk, detached";
	} else {
		return 0;
	}
	if (apply(srv, db, name, state, how, vm, target, &done, err) < 0)
		return -1;
	if (done)
		*ret_what = what;
	return 0;
}

int kc_volume_settle(struct kc_server *srv, struct kc_db *db, const char *host,
		     const struct kc_volume_truth_ops *ops, void *opaque, FILE *log,
		     unsigned *ret_settled, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	unsigned n = 0;
	size_t i;
	json_t *row;

	if (kc_db_volume_list(db, NULL, &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, row)
	{
		const char *name = str(row, "name"), *state = str(row, "state");
		const char *what = NULL;
		struct kc_error e = {0};

		if (!name || !is_transitional(state))
			continue;
		if (host && !ops->concerns(opaque, row, host))
			continue;
		if (kc_volume_busy(srv, name))
			continue; /* a request of ours is working on it */
		if (settle_row(srv, db, row, ops, opaque, &what, &e) < 0) {
			if (log)
				fprintf(log, "volume reconcile: volume %s: %s\n", name, e.message);
			continue;
		}
		if (what) {
			n++;
			if (log)
				fprintf(log, "volume reconcile: volume %s was %s: %s\n", name,
					state, what);
		}
	}
	if (ret_settled)
		*ret_settled = n;
	return 0;
}

/* ---- what the hosts say, over their links ---- */

struct live {
	struct kc_server *srv;
	json_t *vols; /* "pool\thost" -> {name: true} */
	json_t *doms; /* host -> vm.list's array */
};

static bool pool_is_cluster(const json_t *pool_row)
{
	const char *scope = str(pool_row, "scope");
	return scope && strcmp(scope, "cluster") == 0;
}

/* The held host to ask about the pool of `row`: its own host, or for a
 * cluster's shared pool any host of it held here.  NULL: none. */
static const char *ask_host(struct kc_server *srv, const json_t *row, const json_t *pool_row,
			    const json_t *hosts)
{
	const char *own = str(row, "host");
	if (own && kc_host_held_here(srv, own))
		return own;
	if (!pool_is_cluster(pool_row))
		return NULL;
	size_t i;
	json_t *h;
	json_array_foreach(hosts, i, h)
	{
		if (kc_host_held_here(srv, json_string_value(h)))
			return json_string_value(h);
	}
	return NULL;
}

static int live_present(void *opaque, const json_t *row)
{
	struct live *l = opaque;
	_cleanup_json_ json_t *pool_row = NULL, *hosts = NULL, *res = NULL, *args = NULL;
	struct kc_pool_def def = {0};
	_cleanup_free_ char *key = NULL;
	int rc = -1;

	if (kc_pool_load(l->srv, str(row, "pool"), &pool_row, &def, &hosts, NULL) < 0)
		return -1;
	const char *host = ask_host(l->srv, row, pool_row, hosts);
	if (!host || asprintf(&key, "%s\t%s", def.name, host) < 0)
		goto out;
	json_t *names = json_object_get(l->vols, key);
	if (!names) {
		size_t i;
		json_t *v;
		args = json_pack("{s:o}", "pool", kc_pool_def_to_json(&def));
		if (!args || kc_host_call(l->srv, host, "pool.volumes", args, &res, NULL) < 0)
			goto out;
		names = json_object();
		json_array_foreach(json_object_get(res, "volumes"), i, v)
		{
			const char *n = str(v, "name");
			if (n)
				json_object_set_new(names, n, json_true());
		}
		json_object_set_new(l->vols, key, names);
	}
	rc = json_object_get(names, str(row, "name")) != NULL;
out:
	kc_pool_def_clear(&def);
	return rc;
}

static int live_remake(void *opaque, const json_t *row)
{
	struct live *l = opaque;
	_cleanup_json_ json_t *pool_row = NULL, *hosts = NULL, *res = NULL, *args = NULL;
	struct kc_pool_def def = {0};
	struct kc_error e = {0};

	if (kc_pool_load(l->srv, str(row, "pool"), &pool_row, &def, &hosts, NULL) < 0)
		return -1;
	const char *host = ask_host(l->srv, row, pool_row, hosts);
	args = json_pack("{s:o,s:O,s:O,s:O}", "pool", kc_pool_def_to_json(&def), "name",
			 json_object_get(row, "name"), "format", json_object_get(row, "format"),
			 "capacity", json_object_get(row, "capacity_bytes"));
	kc_pool_def_clear(&def);
	if (!host || !args)
		return -1;
	if (kc_host_call(l->srv, host, "vol.create", args, &res, &e) < 0 &&
	    e.code != KC_ERR_CONFLICT)
		return -1;
	return 0;
}

/* vm.list of a held host, asked once per settlement.  NULL: cannot tell. */
static const json_t *host_domains(struct live *l, const char *host)
{
	json_t *d = json_object_get(l->doms, host);
	if (d)
		return d;
	if (!kc_host_held_here(l->srv, host) ||
	    kc_host_call(l->srv, host, "vm.list", NULL, &d, NULL) < 0)
		return NULL;
	if (!json_is_array(d)) {
		json_decref(d);
		return NULL;
	}
	json_object_set_new(l->doms, host, d);
	return d;
}

/* Is `disk` (a vm.list disk) volume `row` of pool `def`?  By its file or
 * device: named like the volume, in the pool's folder when the pool has
 * one (volume names never take a VM disk's name in the default pool). */
static bool disk_is(const json_t *disk, const json_t *row, const struct kc_pool_def *def)
{
	const char *path = str(disk, "path"), *dev = str(disk, "device");
	const char *slash = path ? strrchr(path, '/') : NULL;
	if (!slash || (dev && strcmp(dev, "disk") != 0) || strcmp(slash + 1, str(row, "name")) != 0)
		return false;
	if (def->path && (def->type == KC_POOL_DIR || def->type == KC_POOL_MOUNTPOINT))
		return strlen(def->path) == (size_t)(slash - path) &&
		       strncmp(def->path, path, slash - path) == 0;
	return true;
}

static int live_attachment(void *opaque, const json_t *row, char **ret_vm, char **ret_target)
{
	struct live *l = opaque;
	_cleanup_json_ json_t *pool_row = NULL, *hosts = NULL, *vm = NULL, *info = NULL,
			      *own = NULL, *args = NULL;
	struct kc_pool_def def = {0};
	struct kc_error e = {0};
	size_t i, j;
	json_t *h, *dom, *disk;
	int rc = -1;

	if (kc_pool_load(l->srv, str(row, "pool"), &pool_row, &def, &hosts, NULL) < 0)
		return -1;
	const char *att = str(row, "attached_to"), *target = str(row, "target");
	if (att && target) {
		/* Detaching: the disk at its target on the VM's host. */
		if (kc_db_vm_get(l->srv->db, att, &vm, &e) < 0) {
			rc = e.code == KC_ERR_NOT_FOUND ? 0 : -1;
			goto out;
		}
		const char *vmhost = str(vm, "host");
		args = json_pack("{s:s}", "name", att);
		if (!vmhost || !kc_host_held_here(l->srv, vmhost) || !args)
			goto out;
		if (kc_host_call(l->srv, vmhost, "vm.show", args, &info, &e) < 0) {
			rc = e.code == KC_ERR_NOT_FOUND ? 0 : -1;
			goto out;
		}
		rc = 0;
		json_array_foreach(json_object_get(info, "disks"), j, disk)
		{
			const char *t = str(disk, "target");
			/* A network disk shows no path: the target is ours. */
			if (t && strcmp(t, target) == 0)
				rc = !str(disk, "path") || disk_is(disk, row, &def);
		}
		goto out;
	}
	/* Attaching: the VM is not recorded; every domain of the hosts
	 * that reach the pool. */
	own = json_pack("[s]", str(row, "host") ? str(row, "host") : "");
	json_array_foreach(pool_is_cluster(pool_row) ? hosts : own, i, h)
	{
		const json_t *doms = host_domains(l, json_string_value(h));
		if (!doms)
			goto out;
		json_array_foreach(doms, j, dom)
		{
			size_t k;
			json_array_foreach(json_object_get(dom, "disks"), k, disk)
			{
				if (!disk_is(disk, row, &def) || !str(dom, "name") ||
				    !str(disk, "target"))
					continue;
				*ret_vm = strdup(str(dom, "name"));
				*ret_target = strdup(str(disk, "target"));
				rc = *ret_vm && *ret_target ? 1 : -1;
				goto out;
			}
		}
	}
	/* Network disks (NFS, iSCSI) show no path in vm.list: an attach of
	 * theirs that did reach the domain is not seen (docs/storage.md). */
	rc = 0;
out:
	kc_pool_def_clear(&def);
	return rc;
}

/* A row is the business of the host its pool is on, or, while it
 * detaches, of its VM's host. */
static bool live_concerns(void *opaque, const json_t *row, const char *host)
{
	struct live *l = opaque;
	const char *own = str(row, "host"), *att = str(row, "attached_to");
	if (own && strcmp(own, host) == 0)
		return true;
	_cleanup_json_ json_t *vm = NULL;
	if (!att || kc_db_vm_get(l->srv->db, att, &vm, NULL) < 0)
		return false;
	const char *vmhost = str(vm, "host");
	return vmhost && strcmp(vmhost, host) == 0;
}

static const struct kc_volume_truth_ops live_ops = {
	.concerns = live_concerns,
	.present = live_present,
	.attachment = live_attachment,
	.remake = live_remake,
};

int kc_volume_reconcile_host(struct kc_server *srv, const char *host, FILE *log,
			     struct kc_error *err)
{
	struct live l = {.srv = srv, .vols = json_object(), .doms = json_object()};
	int rc = -1;

	if (!l.vols || !l.doms)
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	else
		rc = kc_volume_settle(srv, srv->db, host, &live_ops, &l, log, NULL, err);
	json_decref(l.vols);
	json_decref(l.doms);
	return rc;
}

/* ---- at hello: a thread per settlement (then the network pushes of
 * hostfw_push.h), waited for at shutdown ---- */

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t run_cond = PTHREAD_COND_INITIALIZER;

struct kc_volume_reconciler {
	unsigned running;
	bool stopped;
};

/* A server whose reconciler stopped: nothing more starts. */
static struct kc_volume_reconciler stopped_rec = {.stopped = true};

struct run {
	struct kc_server *srv;
	char *host;
	char address[46]; /* "" if unknown */
};

static void *run_main(void *arg)
{
	struct run *r = arg;
	struct kc_error e = {0};

	if (kc_volume_reconcile_host(r->srv, r->host, stderr, &e) < 0)
		fprintf(stderr, "volume reconcile: host %s: %s\n", r->host, e.message);
	kc_net_after_hello(r->srv, r->host, r->address[0] ? r->address : NULL);
	pthread_mutex_lock(&run_lock);
	r->srv->volrec->running--;
	pthread_cond_broadcast(&run_cond);
	pthread_mutex_unlock(&run_lock);
	free(r->host);
	free(r);
	return NULL;
}

void kc_volume_reconcile_spawn(struct kc_server *srv, const char *host, const char *address)
{
	struct run *r = calloc(1, sizeof(*r));
	pthread_attr_t attr;
	pthread_t thr;

	if (!r || !(r->host = strdup(host))) {
		free(r);
		return;
	}
	r->srv = srv;
	if (address)
		snprintf(r->address, sizeof(r->address), "%s", address);
	pthread_mutex_lock(&run_lock);
	if (!srv->volrec)
		srv->volrec = calloc(1, sizeof(*srv->volrec));
	bool ok = srv->volrec && !srv->volrec->stopped;
	if (ok) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		ok = pthread_create(&thr, &attr, run_main, r) == 0;
		pthread_attr_destroy(&attr);
		if (ok)
			srv->volrec->running++;
	}
	pthread_mutex_unlock(&run_lock);
	if (!ok) {
		fprintf(stderr, "volume reconcile: host %s: not started\n", host);
		free(r->host);
		free(r);
	}
}

void kc_volume_reconcile_stop(struct kc_server *srv)
{
	pthread_mutex_lock(&run_lock);
	struct kc_volume_reconciler *rec = srv->volrec;
	while (rec && rec != &stopped_rec && rec->running > 0)
		pthread_cond_wait(&run_cond, &run_lock);
	srv->volrec = &stopped_rec;
	pthread_mutex_unlock(&run_lock);
	if (rec != &stopped_rec)
		free(rec);
}
