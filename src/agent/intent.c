/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intent.c - intent records of VM creates: <storage.dir>/.creating/<vm>.
 *
 * A create writes its record before it makes the first file, names there
 * each volume before making it, and holds flock(LOCK_EX) on the record until
 * the domain is defined or everything is rolled back.  flock dies with its
 * process, so a record whose lock can be taken belongs to a create that
 * died: only those files are removed at start-up.  Volumes with no record
 * (kept disks, volumes of domains undefined by hand, creates running in
 * another process) are never touched.
 *
 * Volume creates (vol.create) keep the same kind of record under the name
 * <pool>@<vol> ('@' is in no valid name): the pid, then the pool's whole
 * definition and the volume.  Records stay in this host's storage.dir
 * whatever the pool (flock is only good locally; an NFS pool is shared),
 * and the reaper reaches every pool they name through the pool's table.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "pool.h"

#define INTENT_DIR	 ".creating"
#define INTENT_MAX_BYTES 32768 /* pid line + at most 7 names, some whole paths */
#define INTENT_LINE_MAX	 4200
#define LOCK_TRIES	 50    /* x 20 ms: a reaper holds a dead create's lock briefly */

/* Is `file` one of the names a create of `vm` makes: <vm>-root.qcow2,
 * <vm>-seed.iso, <vm>-dataN.qcow2?  A record is only trusted for these. */
static bool owned_by(const char *file, const char *vm)
{
	size_t vl = strlen(vm);
	if (strncmp(file, vm, vl) != 0)
		return false;
	const char *s = file + vl;
	if (strcmp(s, "-root.qcow2") == 0 || strcmp(s, "-seed.iso") == 0)
		return true;
	if (strncmp(s, "-data", 5) != 0)
		return false;
	s += 5;
	const char *d = s;
	while (*d >= '0' && *d <= '9')
		d++;
	return d > s && d - s <= 3 && strcmp(d, ".qcow2") == 0;
}

bool kc_intent_owned_name(const char *vol, const char *vm)
{
	return owned_by(vol, vm);
}

/* A network pool's volume, named by a line of JSON: deleted through the
 * pool's table, and only under a name of the VM's own or a base copy's
 * temporary name ("kcpart-<random>.part", clone.c). */
static int reap_pool_vol(struct kc_agent *a, const char *line, const char *vm)
{
	_cleanup_json_ json_t *j = json_loads(line, 0, NULL);
	const char *vol = json_string_value(json_object_get(j, "vol"));
	if (!vol || strchr(vol, '/') || strstr(vol, ".."))
		return 0;
	size_t vl = strlen(vol);
	bool part = strncmp(vol, "kcpart-", 7) == 0 && vl > 12 && strcmp(vol + vl - 5, ".part") == 0;
	if (!owned_by(vol, vm) && !part)
		return 0;
	struct kc_pool_def def = {0};
	struct kc_pool *p = NULL;
	int n = 0;
	if (kc_pool_def_from_json(json_object_get(j, "pool"), NULL, false, &def, NULL) == 0 &&
	    kc_pool_open(a, &def, &p, NULL) == 0 && kc_pool_vol_delete(p, vol, NULL) == 0)
		n = 1;
	kc_pool_close(p);
	kc_pool_def_clear(&def);
	return n;
}

int kc_intent_note_pool_vol(struct kc_intent *in, const struct kc_pool_def *def, const char *vol,
			    struct kc_error *err)
{
	_cleanup_json_ json_t *j = json_pack("{s:o,s:s}", "pool", kc_pool_def_to_json(def), "vol",
					     vol);
	_cleanup_free_ char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!line)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return kc_intent_note(in, line, err);
}

/* A whole path a create named (clone.c, a pool other than storage.dir):
 * trusted only for a VM's own volume name, or for the temporary copy of a
 * base volume (".base-....part", unique to the process that made it), in
 * an absolute folder without "." or ".." parts. */
static bool owned_path(const char *path, const char *vm)
{
	const char *slash = strrchr(path, '/');
	if (path[0] != '/' || !slash || strstr(path, "/../") || strstr(path, "/./") ||
	    strstr(path, "//"))
		return false;
	const char *file = slash + 1;
	size_t n = strlen(file);
	if (strncmp(file, ".base-", 6) == 0 && n > 11 && strcmp(file + n - 5, ".part") == 0)
		return true;
	return owned_by(file, vm);
}

static int lock_nb(int fd)
{
	int r;
	while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	return r;
}

/* Does `path` still name the file open as fd?  A reaper may have removed
 * the record between our open and our lock. */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* Removes the files a dead create of `vm` listed in its record (fd, locked
 * by us), and the VM's console log.  The caller checked that no domain
 * `vm` exists. */
static int reap_files(struct kc_agent *a, virStoragePoolPtr pool, const char *vm, int fd)
{
	char buf[INTENT_MAX_BYTES + 1];
	ssize_t n = pread(fd, buf, INTENT_MAX_BYTES, 0);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	int removed = 0;
	char *save = NULL;
	/* The first line is the creator's pid. */
	strtok_r(buf, "\n", &save);
	for (char *f; (f = strtok_r(NULL, "\n", &save));) {
		if (f[0] == '{') {
			removed += reap_pool_vol(a, f, vm);
			continue;
		}
		if (f[0] == '/') {
			/* Another pool's file (or a base copy): no libvirt handle
			 * here; the pool's next refresh forgets it. */
			if (!owned_path(f, vm))
				continue;
			if (access(f, F_OK) == 0)
				removed++;
			unlink(f);
			continue;
		}
		if (!owned_by(f, vm))
			continue;
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s/%s", a->storage_dir, f) < 0)
			break;
		if (access(p, F_OK) == 0)
			removed++;
		if (pool && kc_vol_delete_name(pool, f, NULL) < 0)
			virResetLastError();
		/* libvirt may not know a file made after its last refresh. */
		unlink(p);
	}
	_cleanup_free_ char *log = kc_path_join_name(a->console_dir, vm, ".log", "VM name", NULL);
	if (log)
		unlink(log);
	return removed;
}

/* Whether domain `vm` exists: 1, 0, or -1 if libvirt cannot tell. */
static int domain_exists(virConnectPtr conn, const char *vm)
{
	virDomainPtr d = virDomainLookupByName(conn, vm);
	if (d) {
		virDomainFree(d);
		return 1;
	}
	virErrorPtr e = virGetLastError();
	int r = e && e->code == VIR_ERR_NO_DOMAIN ? 0 : -1;
	virResetLastError();
	return r;
}

/* Refreshes every active libvirt pool of ours (kc-<name>). */
static void refresh_kc_pools(virConnectPtr conn)
{
	virStoragePoolPtr *pools = NULL;
	int n = virConnectListAllStoragePools(conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
	if (n < 0) {
		virResetLastError();
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *name = virStoragePoolGetName(pools[i]);
		if (name &&
		    strncmp(name, KC_POOL_LIBVIRT_PREFIX, strlen(KC_POOL_LIBVIRT_PREFIX)) == 0 &&
		    virStoragePoolRefresh(pools[i], 0) < 0)
			virResetLastError();
		virStoragePoolFree(pools[i]);
	}
	free(pools);
}

/* A dead vol.create's record <pool>@<vol> in dfd: its volume removed
 * through the pool it names, then the record.  1 if a volume went. */
static int reap_vol_record(struct kc_agent *a, int dfd, const char *dir, const char *rec)
{
	_cleanup_free_ char *path = NULL;
	char buf[INTENT_MAX_BYTES + 1];
	const char *at = strchr(rec, '@');

	if (asprintf(&path, "%s/%s", dir, rec) < 0)
		return 0;
	_cleanup_close_ int fd = openat(dfd, rec, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	/* Locked: its create is alive. */
	if (fd < 0 || lock_nb(fd) < 0 || !still_linked(fd, path))
		return 0;
	ssize_t n = pread(fd, buf, INTENT_MAX_BYTES, 0);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	char *nl = strchr(buf, '\n');
	_cleanup_json_ json_t *j = nl ? json_loads(nl + 1, 0, NULL) : NULL;
	const char *vol = json_string_value(json_object_get(j, "vol"));
	struct kc_pool_def def = {0};
	struct kc_pool *p = NULL;
	struct kc_error e = {0};
	int removed = 0;
	/* Only the volume the record's own name promises; a record cut short
	 * (the create had not begun) or not ours is just removed. */
	bool settled = true;
	if (vol && strcmp(vol, at + 1) == 0 && kc_name_validate(vol, "volume name", NULL) == 0 &&
	    kc_pool_def_from_json(json_object_get(j, "pool"), NULL, true, &def, NULL) == 0 &&
	    strlen(def.name) == (size_t)(at - rec) && strncmp(def.name, rec, at - rec) == 0) {
		/* Listed first: that refreshes a libvirt pool, which may not
		 * know a file made just before its libvirtd restarted. */
		struct kc_pool_vol *vols = NULL;
		size_t nv = 0;
		bool listed = false;
		if (kc_pool_open(a, &def, &p, &e) == 0 && kc_pool_volumes(p, &vols, &nv, &e) == 0) {
			for (size_t i = 0; i < nv; i++)
				listed = listed || strcmp(vols[i].name, vol) == 0;
			kc_pool_vols_free(vols, nv);
			if (!listed)
				kc_error_set(&e, KC_ERR_NOT_FOUND, "no volume");
			else if (kc_pool_vol_delete(p, vol, &e) == 0)
				removed = 1;
		}
		/* A pool out of reach keeps its record for the next start. */
		settled = removed || e.code == KC_ERR_NOT_FOUND;
	}
	kc_pool_close(p);
	kc_pool_def_clear(&def);
	if (settled)
		unlinkat(dfd, rec, 0);
	return removed;
}

int kc_intent_begin(struct kc_agent *a, virConnectPtr conn, virStoragePoolPtr pool, const char *vm,
		    struct kc_intent *in, struct kc_error *err)
{
	in->fd = -1;
	in->path = NULL;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	if (asprintf(&dir, "%s/" INTENT_DIR, a->storage_dir) < 0 ||
	    asprintf(&path, "%s/%s", dir, vm) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "mkdir %s", dir);

	_cleanup_close_ int fd = -1;
	for (int tries = 0;; tries++) {
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "create %s", path);
		if (lock_nb(fd) == 0) {
			if (still_linked(fd, path))
				break;
		} else if (errno != EWOULDBLOCK) {
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "flock %s", path);
		}
		close(fd);
		fd = -1;
		if (tries == LOCK_TRIES)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "VM '%s' is being created by another process", vm);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}

	/* The name is ours now, against other processes too. */
	int exists = domain_exists(conn, vm);
	if (exists != 0) {
		if (exists > 0)
			unlink(path); /* a create that got as far as define */
		return exists > 0 ? kc_error_set(err, KC_ERR_CONFLICT, "VM '%s' exists already", vm)
				  : kc_lverr(err, "looking up VM '%s'", vm);
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > 0)
		reap_files(a, pool, vm, fd); /* left by a create that died */
	char line[32];
	int len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	int r = ftruncate(fd, 0) < 0 ? -errno : kc_write_all(fd, line, len);
	if (r < 0) {
		unlink(path);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "write %s", path);
	}
	in->fd = fd;
	fd = -1;
	in->path = steal_ptr(&path);
	return 0;
}

int kc_intent_note(struct kc_intent *in, const char *file, struct kc_error *err)
{
	char line[INTENT_LINE_MAX];
	int len = snprintf(line, sizeof(line), "%s\n", file);
	if (len < 0 || (size_t)len >= sizeof(line))
		return kc_error_set(err, KC_ERR_INTERNAL, "file name too long: %s", file);
	int r = kc_write_all(in->fd, line, len);
	if (r < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "write %s", in->path);
	return 0;
}

void kc_intent_end(struct kc_intent *in)
{
	/* Unlink before unlocking: a reaper never sees a finished create's
	 * record unlocked. */
	if (in->path) {
		unlink(in->path);
		close(in->fd);
	}
	in->fd = -1;
	free(in->path);
	in->path = NULL;
}

void kc_intent_abandon(struct kc_intent *in)
{
	if (in->path)
		close(in->fd);
	in->fd = -1;
	free(in->path);
	in->path = NULL;
}

int kc_intents_reap(struct kc_agent *a, virConnectPtr conn, virStoragePoolPtr pool)
{
	_cleanup_free_ char *dir = NULL;
	if (asprintf(&dir, "%s/" INTENT_DIR, a->storage_dir) < 0)
		return 0;
	DIR *d = kc_opendir(dir, O_NOFOLLOW);
	if (!d)
		return 0;
	int dfd = dirfd(d);
	int removed = 0;
	bool refreshed = false;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *vm = e->d_name;
		if (vm[0] != '.' && strchr(vm, '@')) {
			removed += reap_vol_record(a, dfd, dir, vm);
			continue;
		}
		if (vm[0] == '.' || kc_name_validate(vm, "VM name", NULL) < 0)
			continue;
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", dir, vm) < 0)
			break;
		_cleanup_close_ int fd = openat(dfd, vm, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		/* Locked: its create is alive (maybe in another process). */
		if (fd < 0 || lock_nb(fd) < 0 || !still_linked(fd, path))
			continue;
		int exists = domain_exists(conn, vm);
		if (exists < 0)
			continue;
		if (exists == 0) {
			if (!refreshed && virStoragePoolRefresh(pool, 0) < 0)
				virResetLastError();
			refreshed = true;
			int n = reap_files(a, pool, vm, fd);
			if (n > 0)
				removed += n;
		}
		unlinkat(dfd, vm, 0);
	}
	closedir(d);
	if (refreshed && virStoragePoolRefresh(pool, 0) < 0)
		virResetLastError();
	/* Files of other dir pools went by path: their libvirt pools forget
	 * them at a refresh. */
	if (removed > 0)
		refresh_kc_pools(conn);
	return removed;
}

int kc_intent_vol_create(struct kc_agent *a, struct kc_pool *p, const char *vol, int fmt,
			 uint64_t capacity, struct kc_error *err)
{
	const struct kc_pool_def *def = kc_pool_get_def(p);
	_cleanup_free_ char *dir = NULL, *path = NULL, *line = NULL;
	_cleanup_json_ json_t *j = NULL;

	if (kc_name_validate(def->name, "pool name", err) < 0 ||
	    kc_name_validate(vol, "volume name", err) < 0)
		return -1;
	j = json_pack("{s:o,s:s}", "pool", kc_pool_def_to_json(def), "vol", vol);
	line = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!line || asprintf(&dir, "%s/" INTENT_DIR, a->storage_dir) < 0 ||
	    asprintf(&path, "%s/%s@%s", dir, def->name, vol) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "mkdir %s", dir);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "create %s", path);
	if (lock_nb(fd) < 0 || !still_linked(fd, path))
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "volume \"%s\" of pool \"%s\" is being created", vol,
				    def->name);
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	int r = ftruncate(fd, 0) < 0 ? -errno : kc_write_all(fd, pid, len);
	if (r == 0)
		r = kc_write_all(fd, line, strlen(line));
	if (r < 0) {
		unlink(path);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "write %s", path);
	}
	int rc = kc_pool_vol_create(p, vol, (enum kc_vol_format)fmt, capacity, err);
	/* Made or rolled back by the backend: nothing left to reap.  Unlink
	 * before the unlock (fd's close), as kc_intent_end. */
	unlink(path);
	return rc;
}
