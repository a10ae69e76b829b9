/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_prune.c - removing what the image library left on a host
 * (docs/storage.md, "Image library", "Clean-up"; docs/protocol.md):
 *   image.forget  a deleted image's cached copy in <images.dir> and its
 *                 linked-clone bases base-<image>-<sha16>.qcow2 in the
 *                 default pool and the pools named;
 *   pool.prune    every base of one pool, and for the default pool the
 *                 cached library copies the server no longer lists.
 * A file goes only if nothing depends on it: "in use" comes from libvirt,
 * never from probing a file: the disks (and their backingStore chains) of
 * every domain's live and inactive XML, and the backingStore of every
 * volume of every active libvirt pool, as libvirt read it from each
 * qcow2 header after a refresh.  What is kept is reported with its users.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"
#include "pool.h"
#include "validate.h"

/* Bounds on what a server may ask for in one op. */
#define FORGET_MAX_POOLS 256
#define LIBRARY_MAX	 100000
/* The users named per kept file. */
#define USERS_MAX 10

/* A library copy the server sent (image.commit) is marked with
 * <images.dir>/.<file>.cached: pool.prune removes only those, never a
 * file placed by hand. */
static int marker_path(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return -1;
	int n = snprintf(buf, len, "%.*s/.%s.cached", (int)(slash - path), path, slash + 1);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int kc_image_mark_cached(const char *path, struct kc_error *err)
{
	char m[PATH_MAX + 16];
	if (marker_path(path, m, sizeof(m)) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "image path too long");
	int fd = open(m, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					  "cannot mark the image cached");
	close(fd);
	return 0;
}

static bool is_cached(const char *path)
{
	char m[PATH_MAX + 16];
	struct stat st;
	return marker_path(path, m, sizeof(m)) == 0 && lstat(m, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- who uses what ---- */

/* users: {canonical path: [user, ...]}.  A path that cannot be resolved
 * (its file is gone) is kept as written: it protects nothing then. */
static void add_user(json_t *users, const char *path, const char *rel_dir, const char *who)
{
	char buf[PATH_MAX], joined[PATH_MAX];
	if (!path || !path[0])
		return;
	if (path[0] != '/' && rel_dir) {
		if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", rel_dir, path) >=
		    sizeof(joined))
			return;
		path = joined;
	}
	const char *key = realpath(path, buf) ? buf : path;
	json_t *list = json_object_get(users, key);
	if (!list) {
		list = json_array();
		json_object_set_new(users, key, list);
	}
	if (list && json_array_size(list) < USERS_MAX)
		json_array_append_new(list, json_string(who));
}

/* Every string an XPath expression selects in xml, handed to add_user. */
static int xml_users(const char *xml, const char *expr, json_t *users, const char *rel_dir,
		     const char *who, struct kc_error *err)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "x.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return kc_error_set(err, KC_ERR_HYPERVISOR, "libvirt gave XML we cannot read (%s)",
				    who);
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr o = ctx ? xmlXPathEvalExpression((const xmlChar *)expr, ctx) : NULL;
	if (o && o->nodesetval)
		for (int i = 0; i < o->nodesetval->nodeNr; i++) {
			xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
			add_user(users, (const char *)v, rel_dir, who);
			xmlFree(v);
		}
	int r = o ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "XPath failed");
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}

/* Disks of every domain, active or not, with their backing chains as
 * libvirt states them (live XML for running domains, config XML always). */
static int domain_users(virConnectPtr conn, json_t *users, struct kc_error *err)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(conn, &doms, 0);
	if (n < 0)
		return kc_lverr(err, "listing domains");
	int r = 0;
	for (int i = 0; i < n; i++) {
		char who[KC_NAME_MAX + 16];
		snprintf(who, sizeof(who), "vm %s", virDomainGetName(doms[i]));
		for (int live = 0; live < 2 && r == 0; live++) {
			if (live && virDomainIsActive(doms[i]) != 1)
				continue;
			char *xml =
				virDomainGetXMLDesc(doms[i], live ? 0 : VIR_DOMAIN_XML_INACTIVE);
			if (!xml) {
				/* Undefined meanwhile: it uses nothing now. */
				virResetLastError();
				continue;
			}
			r = xml_users(xml, "/domain/devices/disk//source/@file", users, NULL, who,
				      err);
			free(xml);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	return r;
}

/* The backing file of every volume of every active libvirt pool, after a
 * refresh (a volume made a moment ago must count). */
static int volume_users(virConnectPtr conn, json_t *users, struct kc_error *err)
{
	virStoragePoolPtr *pools = NULL;
	int n = virConnectListAllStoragePools(conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
	if (n < 0)
		return kc_lverr(err, "listing storage pools");
	int r = 0;
	for (int i = 0; i < n && r == 0; i++) {
		if (virStoragePoolRefresh(pools[i], 0) < 0)
			virResetLastError();
		virStorageVolPtr *vols = NULL;
		int m = virStoragePoolListAllVolumes(pools[i], &vols, 0);
		if (m < 0) {
			r = kc_lverr(err, "listing the volumes of pool %s",
				     virStoragePoolGetName(pools[i]));
			break;
		}
		for (int j = 0; j < m; j++) {
			const char *vpath = NULL;
			char *path = r == 0 ? virStorageVolGetPath(vols[j]) : NULL;
			char *xml = path ? virStorageVolGetXMLDesc(vols[j], 0) : NULL;
			if (xml) {
				char who[PATH_MAX + 16], dir[PATH_MAX];
				vpath = path;
				snprintf(who, sizeof(who), "volume %s", vpath);
				snprintf(dir, sizeof(dir), "%s", vpath);
				char *slash = strrchr(dir, '/');
				if (slash)
					*slash = '\0';
				r = xml_users(xml, "/volume/backingStore/path", users, dir, who,
					      err);
			} else if (r == 0) {
				virResetLastError(); /* gone meanwhile */
			}
			free(xml);
			free(path);
			virStorageVolFree(vols[j]);
		}
		free(vols);
	}
	for (int i = 0; i < n; i++)
		virStoragePoolFree(pools[i]);
	free(pools);
	return r;
}

static int users_collect(struct kc_agent *a, virConnectPtr conn, json_t **ret, struct kc_error *err)
{
	/* A create under way may be between its base and its overlay: the
	 * base looks unused for that moment. */
	pthread_mutex_lock(&a->create_lock);
	size_t busy = a->n_inflight;
	pthread_mutex_unlock(&a->create_lock);
	if (busy)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "host %s has %zu VM create(s) under way: try again when they "
				    "are done",
				    a->host_name, busy);
	_cleanup_json_ json_t *users = json_object();
	if (!users)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (domain_users(conn, users, err) < 0 || volume_users(conn, users, err) < 0)
		return -1;
	*ret = steal_ptr(&users);
	return 0;
}

/* ---- removing ---- */

struct prune {
	json_t *users;
	json_t *removed, *kept, *skipped;
	uint64_t freed;
	bool dry_run;
};

static json_t *users_of(const struct prune *p, const char *path)
{
	char buf[PATH_MAX];
	return json_object_get(p->users, realpath(path, buf) ? buf : path);
}

/* Removes `path` (of pool `pool`) unless something uses it.  A base is
 * removed under its copy lock (clone.c), so that a copy of the same base
 * running meanwhile is never cut short; a base being copied is kept. */
static int consider(struct prune *p, const char *pool, const char *path, bool base,
		    struct kc_error *err)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	/* Ours are read-only files: a user's volume of a base's name is not. */
	if (base && (st.st_mode & 0777) != 0444)
		return 0;
	json_t *u = users_of(p, path);
	if (u) {
		json_array_append_new(p->kept, json_pack("{s:s,s:s,s:O}", "pool", pool, "path",
							 path, "users", u));
		return 0;
	}
	uint64_t bytes = (uint64_t)st.st_blocks * 512;
	if (!p->dry_run) {
		_cleanup_free_ char *lock = NULL;
		int lfd = -1;
		if (base) {
			const char *slash = strrchr(path, '/');
			if (asprintf(&lock, "%.*s/.%s.lock", (int)(slash - path), path, slash + 1) <
			    0)
				return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
			lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
				if (lfd >= 0)
					close(lfd);
				json_array_append_new(
					p->kept, json_pack("{s:s,s:s,s:[s]}", "pool", pool, "path",
							   path, "users", "a copy under way"));
				return 0;
			}
		}
		int r = unlink(path);
		int e = errno;
		if (base) {
			unlink(lock);
			close(lfd);
		}
		if (r < 0 && e != ENOENT)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "cannot remove %s",
						  path);
		if (!base) {
			char m[PATH_MAX + 16];
			kc_image_forget(path);
			if (marker_path(path, m, sizeof(m)) == 0)
				unlink(m);
		}
	}
	p->freed += bytes;
	json_array_append_new(p->removed, json_pack("{s:s,s:s,s:I}", "pool", pool, "path", path,
						    "bytes", (json_int_t)bytes));
	return 0;
}

static void skip(struct prune *p, const char *pool, const char *why)
{
	json_array_append_new(p->skipped, json_pack("{s:s,s:s}", "pool", pool, "reason", why));
}

/* The bases of pool `def` (NULL: the default pool): the one of `image` at
 * `sha256`, or every one when image is NULL. */
static int prune_bases(struct kc_agent *a, virConnectPtr conn, const struct kc_pool_def *def,
		       const char *image, const char *sha256, struct prune *p, struct kc_error *err)
{
	struct kc_clone_target t = {0};
	struct kc_error e = {0};
	const char *pname = def ? def->name : KC_POOL_DEFAULT_NAME;

	if (def && def->type != KC_POOL_DIR && def->type != KC_POOL_MOUNTPOINT) {
		/* NFS bases are not checked yet: no libvirt pool lists their chains. */
		if (def->type == KC_POOL_NFS)
			skip(p, pname, "nfs pools are not pruned yet");
		return 0;
	}
	if (kc_clone_target_open(a, conn, def, &t, &e) < 0) {
		skip(p, pname, e.message);
		return 0;
	}
	int r = 0;
	if (image) {
		char base[KC_NAME_MAX + 1];
		_cleanup_free_ char *path = NULL;
		kc_clone_base_name(image, sha256, base, sizeof(base));
		if (asprintf(&path, "%s/%s", t.dir, base) < 0)
			r = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		else
			r = consider(p, pname, path, true, err);
	} else {
		DIR *d = kc_opendir(t.dir, O_NOFOLLOW);
		if (!d) {
			r = kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					       "cannot read pool \"%s\"", pname);
		} else {
			struct dirent *de;
			while (r == 0 && (de = readdir(d))) {
				if (!kc_clone_is_base_name(de->d_name))
					continue;
				_cleanup_free_ char *path = NULL;
				if (asprintf(&path, "%s/%s", t.dir, de->d_name) < 0)
					r = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
				else
					r = consider(p, pname, path, true, err);
			}
			closedir(d);
		}
	}
	if (!p->dry_run && t.pool && virStoragePoolRefresh(t.pool, 0) < 0)
		virResetLastError();
	kc_clone_target_close(&t);
	return r;
}

static bool in_list(const json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) if (json_is_string(v) &&
					   strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

/* Cached library copies in <images.dir> whose file name the server's
 * library no longer lists (and never the KVM probe's image). */
static int prune_cache(struct kc_agent *a, const json_t *library, struct prune *p,
		       struct kc_error *err)
{
	DIR *d = kc_opendir(a->images_dir, O_NOFOLLOW);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s",
					  a->images_dir);
	}
	char probe[PATH_MAX];
	bool have_probe = a->probe_image && realpath(a->probe_image, probe);
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		char buf[PATH_MAX];
		_cleanup_free_ char *path = NULL;
		if (de->d_name[0] == '.' || in_list(library, de->d_name))
			continue;
		if (asprintf(&path, "%s/%s", a->images_dir, de->d_name) < 0) {
			r = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
			break;
		}
		if (!is_cached(path) || (have_probe && realpath(path, buf) && !strcmp(buf, probe)))
			continue;
		r = consider(p, "images", path, false, err);
	}
	closedir(d);
	return r;
}

static int prune_begin(struct prune *p, bool dry_run, struct kc_error *err)
{
	*p = (struct prune){.removed = json_array(),
			    .kept = json_array(),
			    .skipped = json_array(),
			    .dry_run = dry_run};
	if (!p->removed || !p->kept || !p->skipped)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

static void prune_end(struct prune *p)
{
	json_decref(p->users);
	json_decref(p->removed);
	json_decref(p->kept);
	json_decref(p->skipped);
}

static int prune_result(struct prune *p, json_t **ret, struct kc_error *err)
{
	*ret = json_pack("{s:b,s:O,s:O,s:O,s:I}", "dry_run", p->dry_run, "removed", p->removed,
			 "kept", p->kept, "skipped", p->skipped, "bytes_freed",
			 (json_int_t)p->freed);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

int kc_agent_image_forget(struct kc_agent *a, const json_t *args, json_t **ret,
			  struct kc_error *err)
{
	static const char *const keys[] = {"name", "format", "sha256", "pools", NULL};
	const char *name = NULL, *fmt = NULL, *sha256 = NULL;
	enum kc_img_format f;

	if (kc_json_check_keys(args, keys, "image.forget args", err) < 0 ||
	    kc_json_get_string(args, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "image name", err) < 0 ||
	    kc_json_get_string(args, "format", true, 8, &fmt, err) < 0 ||
	    kc_img_format_parse(fmt, &f, err) < 0 ||
	    kc_json_get_string(args, "sha256", true, 64, &sha256, err) < 0)
		return -1;
	if (!kc_img_sha256_valid(sha256))
		return kc_error_set(err, KC_ERR_INVALID, "sha256 must be 64 lowercase hex digits");
	const json_t *pools = json_object_get(args, "pools");
	if (pools && (!json_is_array(pools) || json_array_size(pools) > FORGET_MAX_POOLS))
		return kc_error_set(err, KC_ERR_INVALID,
				    "image.forget: \"pools\" must be an array of at most %d pool "
				    "definitions",
				    FORGET_MAX_POOLS);
	/* Every definition is checked before anything is touched. */
	size_t np = json_array_size(pools);
	_cleanup_free_ struct kc_pool_def *defs = calloc(np ? np : 1, sizeof(*defs));
	if (!defs)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int r = 0;
	size_t got = 0;
	for (; got < np && r == 0; got++)
		r = kc_pool_def_from_json(json_array_get(pools, got), NULL, true, &defs[got], err);
	if (r < 0)
		got--;
	_cleanup_free_ char *cache = NULL;
	_cleanup_conn_ virConnectPtr conn = NULL;
	struct prune p = {0};
	if (r == 0)
		cache = kc_path_join_name(a->images_dir, name, kc_img_format_ext(f), "image name",
					  err);
	if (r < 0 || !cache || !(conn = kc_conn_get(a, err)) || prune_begin(&p, false, err) < 0 ||
	    users_collect(a, conn, &p.users, err) < 0) {
		r = -1;
		goto out;
	}
	/* The host's copy only if it is this image (its verified record):
	 * another file of that name was placed by hand. */
	if (kc_image_is_verified(cache, sha256) && consider(&p, "images", cache, false, err) < 0)
		r = -1;
	if (r == 0 && f == KC_IMG_QCOW2) {
		r = prune_bases(a, conn, NULL, name, sha256, &p, err);
		for (size_t i = 0; i < got && r == 0; i++)
			if (strcmp(defs[i].name, KC_POOL_DEFAULT_NAME) != 0)
				r = prune_bases(a, conn, &defs[i], name, sha256, &p, err);
	}
	if (r == 0)
		r = prune_result(&p, ret, err);
out:
	prune_end(&p);
	for (size_t i = 0; i < got; i++)
		kc_pool_def_clear(&defs[i]);
	return r;
}

int kc_agent_pool_prune(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool", "dry_run", "library", NULL};
	struct kc_pool_def def = {0};
	bool dry_run = false;

	if (kc_json_check_keys(args, keys, "pool.prune args", err) < 0 ||
	    kc_json_get_bool(args, "dry_run", false, &dry_run, err) < 0)
		return -1;
	const json_t *library = json_object_get(args, "library");
	if (library && (!json_is_array(library) || json_array_size(library) > LIBRARY_MAX))
		return kc_error_set(err, KC_ERR_INVALID,
				    "pool.prune: \"library\" must be an array of file names");
	if (!json_object_get(args, "pool"))
		return kc_error_set(err, KC_ERR_INVALID, "pool.prune args need \"pool\"");
	if (kc_pool_def_from_json(json_object_get(args, "pool"), NULL, true, &def, err) < 0)
		return -1;
	bool is_default = strcmp(def.name, KC_POOL_DEFAULT_NAME) == 0;
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	struct prune p = {0};
	int r = -1;
	if (conn && prune_begin(&p, dry_run, err) == 0 &&
	    users_collect(a, conn, &p.users, err) == 0 &&
	    prune_bases(a, conn, is_default ? NULL : &def, NULL, NULL, &p, err) == 0 &&
	    (!is_default || !library || prune_cache(a, library, &p, err) == 0))
		r = prune_result(&p, ret, err);
	prune_end(&p);
	kc_pool_def_clear(&def);
	return r;
}
