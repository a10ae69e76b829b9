/* SPDX-License-Identifier: Apache-2.0 */
/* hostnet.c - host.net.* on top of the backends and the rollback helper
 * (hostnet.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "hostnet.h"
#include "json_util.h"
#include "net_backend.h"
#include "net_rollback.h"

struct kc_hostnet {
	struct kc_rollback *rb;
	char *declared_path;
};

/* Guards every agent's `hostnet` pointer (made on first use). */
static pthread_mutex_t hostnet_lock = PTHREAD_MUTEX_INITIALIZER;

static int parse(const json_t *change, struct kc_netdecl **ret, struct kc_error *err)
{
	struct kc_netdecl *d = calloc(1, sizeof(*d));
	if (!d)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_netdecl_from_json(change, d, err) < 0) {
		free(d);
		return -1;
	}
	*ret = d;
	return 0;
}

static int rb_snapshot(void *opaque, const json_t *change, json_t **ret, struct kc_error *err)
{
	_cleanup_free_ struct kc_netdecl *d = NULL;
	if (parse(change, &d, err) < 0)
		return -1;
	return kc_net_backend_of(d->backend)->read(d, ret, err);
}

static int rb_apply(void *opaque, const json_t *change, struct kc_error *err)
{
	_cleanup_free_ struct kc_netdecl *d = NULL;
	if (parse(change, &d, err) < 0)
		return -1;
	return kc_net_backend_of(d->backend)->apply(d, err);
}

static int rb_restore(void *opaque, const json_t *snap, struct kc_error *err)
{
	const struct kc_net_backend *b =
		kc_net_backend_by_name(json_string_value(json_object_get(snap, "backend")));
	if (!b)
		return kc_error_set(err, KC_ERR_INTERNAL, "host network snapshot of no backend");
	return b->restore(snap, err);
}

static const struct kc_rollback_ops hostnet_ops = {
	.what = "host network",
	.snapshot = rb_snapshot,
	.apply = rb_apply,
	.restore = rb_restore,
};

static struct kc_hostnet *hostnet_get(struct kc_agent *a, struct kc_error *err)
{
	_cleanup_free_ char *marker = NULL; /* before any goto */
	pthread_mutex_lock(&hostnet_lock);
	struct kc_hostnet *h = a->hostnet;
	if (h)
		goto out;
	h = calloc(1, sizeof(*h));
	if (!h || asprintf(&marker, "%s/net-pending.json", a->data_dir) < 0 ||
	    asprintf(&h->declared_path, "%s/net-declared.json", a->data_dir) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto fail;
	}
	if (kc_rollback_new(&hostnet_ops, a, marker, &h->rb, err) < 0)
		goto fail;
	/* Whatever a dead agent left pending is settled before anything new. */
	if (kc_rollback_resume(h->rb, err) < 0)
		goto fail;
	a->hostnet = h;
	goto out;
fail:
	kc_hostnet_free(h);
	h = NULL;
out:
	pthread_mutex_unlock(&hostnet_lock);
	return h;
}

void kc_hostnet_free(struct kc_hostnet *h)
{
	if (!h)
		return;
	kc_rollback_free(h->rb);
	free(h->declared_path);
	free(h);
}

int kc_agent_hostnet_resume(struct kc_agent *a, struct kc_error *err)
{
	return hostnet_get(a, err) ? 0 : -1;
}

int kc_agent_hostnet_apply(struct kc_agent *a, const json_t *args, json_t **ret,
			   struct kc_error *err)
{
	static const char *const keys[] = {"decl", "confirm_s", NULL};
	uint64_t confirm_s = KC_ROLLBACK_DEFAULT_S;
	_cleanup_free_ struct kc_netdecl *d = NULL;
	if (kc_json_check_keys(args, keys, "host.net.apply args", err) < 0 ||
	    kc_json_get_uint(args, "confirm_s", false, KC_ROLLBACK_MIN_S, KC_ROLLBACK_MAX_S,
			     &confirm_s, err) < 0)
		return -1;
	const json_t *decl = json_object_get(args, "decl");
	if (!decl)
		return kc_error_set(err, KC_ERR_INVALID, "host.net.apply needs \"decl\"");
	if (parse(decl, &d, err) < 0)
		return -1;
	_cleanup_json_ json_t *canon = kc_netdecl_to_json(d);
	struct kc_hostnet *h = hostnet_get(a, err);
	char id[37];
	if (!canon || !h)
		return kc_error_is_set(err) ? -1
					    : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_rollback_begin(h->rb, canon, (unsigned)confirm_s, id, err) < 0)
		return -1;
	*ret = json_pack("{s:s,s:I}", "pending", id, "confirm_s", (json_int_t)confirm_s);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

static int write_declared(const char *path, const json_t *decl, struct kc_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || json_dumpfd(decl, fd, JSON_INDENT(2)) < 0 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write %s", path);
	}
	return 0;
}

int kc_agent_hostnet_confirm(struct kc_agent *a, const json_t *args, json_t **ret,
			     struct kc_error *err)
{
	static const char *const keys[] = {"pending", NULL};
	const char *id = NULL;
	if (kc_json_check_keys(args, keys, "host.net.confirm args", err) < 0 ||
	    kc_json_get_string(args, "pending", false, 36, &id, err) < 0)
		return -1;
	struct kc_hostnet *h = hostnet_get(a, err);
	_cleanup_json_ json_t *change = NULL, *st = NULL;
	if (!h)
		return -1;
	/* Without an id: the one pending now, for the answer. */
	char pending[37] = "";
	if (!id && (st = kc_rollback_status(h->rb)))
		snprintf(pending, sizeof(pending), "%s",
			 json_string_value(json_object_get(json_object_get(st, "pending"), "id"))
				 ?: "");
	if (kc_rollback_confirm(h->rb, id, &change, err) < 0)
		return -1;
	/* Confirmed is what the host now runs: even if storing it fails, the
	 * change stays (reported, so that the server can send it again). */
	if (write_declared(h->declared_path, change, err) < 0)
		return -1;
	*ret = json_pack("{s:s}", "confirmed", id ? id : pending);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* The stored declaration (NULL, no error, when there is none). */
static int read_declared(const char *path, json_t **ret, struct kc_error *err)
{
	*ret = NULL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
							    "cannot read %s", path);
	json_error_t je;
	*ret = json_loadfd(fd, 0, &je);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "%s: %s", path, je.text);
	return 0;
}

/* declared -> actual, differences. */
static int compare(const json_t *declared, json_t **ret_actual, json_t **ret_diff,
		   struct kc_error *err)
{
	_cleanup_free_ struct kc_netdecl *d = NULL;
	if (parse(declared, &d, err) < 0 ||
	    kc_net_backend_of(d->backend)->read(d, ret_actual, err) < 0)
		return -1;
	*ret_diff = kc_net_diff(d, *ret_actual);
	return *ret_diff ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

int kc_agent_hostnet_show(struct kc_agent *a, json_t **ret, struct kc_error *err)
{
	struct kc_hostnet *h = hostnet_get(a, err);
	_cleanup_json_ json_t *declared = NULL, *actual = NULL, *diff = NULL;
	if (!h || read_declared(h->declared_path, &declared, err) < 0)
		return -1;
	if (declared && compare(declared, &actual, &diff, err) < 0)
		return -1;
	json_t *r = kc_rollback_status(h->rb);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	json_object_set(r, "declared", declared ? declared : json_null());
	json_object_set(r, "actual", actual ? actual : json_null());
	json_object_set(r, "differences", diff ? diff : json_null());
	*ret = r;
	return 0;
}

int kc_hostnet_check(const char *data_dir, bool *ret_ok, char *reason, size_t len,
		     json_t **ret_diff, struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *declared = NULL, *actual = NULL;
	*ret_diff = NULL;
	if (asprintf(&path, "%s/net-declared.json", data_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (read_declared(path, &declared, err) < 0)
		return -1;
	if (!declared)
		return 0;
	if (compare(declared, &actual, ret_diff, err) < 0)
		return -1;
	size_t n = json_array_size(*ret_diff), o = 0, i;
	json_t *v;
	*ret_ok = n == 0;
	o = (size_t)snprintf(reason, len,
			     n ? "%zu difference(s) from the declaration: "
			       : "matches the declaration (%zu bridges)",
			     n ? n : json_array_size(json_object_get(declared, "bridges")));
	json_array_foreach(*ret_diff, i, v)
	{
		if (o >= len)
			break;
		o += (size_t)snprintf(reason + o, len - o, "%s%s: %s", i ? "; " : "",
				      json_string_value(json_object_get(v, "name")),
				      json_string_value(json_object_get(v, "problem")));
	}
	return 0;
}
