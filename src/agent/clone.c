/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clone.c - root disks made from templates (docs/storage.md, "Clones"):
 *
 *   linked  the template is copied once (byte for byte, holes kept) into the
 *           VM's pool as a read-only base volume base-<image>-<sha16>.qcow2
 *           (content-addressed: a
 *           changed image gets a new base, existing VMs keep theirs), then
 *           each VM gets a qcow2 overlay on it, format stated: constant time;
 *   full    qemu-img convert -p of the template into a standalone volume,
 *           its progress readable by kc_clone_progress while it runs.
 *
 * The copy-once runs under flock on <pool>/.<base>.lock, so concurrent
 * creates on this host and on other hosts sharing the pool's folder copy a
 * template once; the copy goes to a temporary name unique to this process
 * (named in the create's intent record) and is renamed into place whole.
 * NFS pools have no locks: a unique temporary copy there is linked into
 * place (never replacing), see kc_clone_base_ensure_nfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "pool.h"

/* The image name's share of a base volume name: "base-" 36 "-" 16 ".qcow2". */
#define BASE_IMAGE_CHARS 36

extern char **environ;

/* ---- where the volumes go ---- */

int kc_clone_target_open(struct kc_agent *a, virConnectPtr conn, const struct kc_pool_def *def,
			 struct kc_clone_target *ret, struct kc_error *err)
{
	struct kc_clone_target t = {0};

	if (!def || strcmp(def->name, KC_POOL_DEFAULT_NAME) == 0) {
		snprintf(t.name, sizeof(t.name), "%s", KC_POOL_DEFAULT_NAME);
		t.pool = kc_pool_get(a, conn, err);
		if (!t.pool)
			return -1;
		if (!(t.dir = strdup(a->storage_dir))) {
			virStoragePoolFree(t.pool);
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
		*ret = t;
		return 0;
	}
	/* Guests open file disks and NFS disks (QEMU's nfs driver); iSCSI
	 * LUNs are the target's, not made per VM. */
	if (def->type != KC_POOL_DIR && def->type != KC_POOL_MOUNTPOINT && def->type != KC_POOL_NFS)
		return kc_error_set(err, KC_ERR_INVALID,
				    "pool \"%s\" is a %s pool: VM disks can be made in dir, "
				    "mountpoint and nfs pools (and the default pool)",
				    def->name, kc_pool_type_name(def->type));
	snprintf(t.name, sizeof(t.name), "%s", def->name);
	if (def->type == KC_POOL_NFS) {
		if (kc_pool_open(a, def, &t.kp, err) < 0)
			return -1;
		t.nfs_host = kc_pool_get_def(t.kp)->server;
		t.nfs_export = kc_pool_get_def(t.kp)->export_path;
		*ret = t;
		return 0;
	}
	if (kc_pool_open(a, def, &t.kp, err) < 0)
		return -1;
	char lv[KC_NAME_MAX + sizeof(KC_POOL_LIBVIRT_PREFIX)];
	snprintf(lv, sizeof(lv), KC_POOL_LIBVIRT_PREFIX "%s", def->name);
	t.pool = virStoragePoolLookupByName(conn, lv);
	t.dir = strdup(def->path);
	if (!t.pool || !t.dir) {
		if (!t.pool)
			kc_lverr(err, "looking up libvirt pool %s", lv);
		else
			kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		kc_clone_target_close(&t);
		return -1;
	}
	*ret = t;
	return 0;
}

void kc_clone_target_close(struct kc_clone_target *t)
{
	if (t->pool)
		virStoragePoolFree(t->pool);
	kc_pool_close(t->kp);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}

/* ---- the template's identity ---- */

/* The SHA-256 its verified record names, if the record still holds. */
static bool sha_from_record(const char *path, char hex[65])
{
	const char *slash = strrchr(path, '/');
	char side[4200], buf[512];
	if (!slash || (size_t)snprintf(side, sizeof(side), "%.*s/.%s.verified", (int)(slash - path),
				       path, slash + 1) >= sizeof(side))
		return false;
	_cleanup_close_ int fd = open(side, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	_cleanup_json_ json_t *rec = json_loadb(buf, (size_t)n, 0, NULL);
	const char *sha = json_string_value(json_object_get(rec, "sha256"));
	if (!sha || !kc_img_sha256_valid(sha) || !kc_image_is_verified(path, sha))
		return false;
	snprintf(hex, 65, "%s", sha);
	return true;
}

int kc_clone_template_sha256(const char *path, char hex[static 65], struct kc_error *err)
{
	if (sha_from_record(path, hex))
		return 0;
	/* A file placed by hand: hashed once, then known by its record. */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_NOT_FOUND, errno, "cannot open the template");
	if (kc_image_sha256_fd(fd, hex, NULL, err) < 0)
		return -1;
	struct kc_error ignored = {0};
	kc_image_mark_verified(path, hex, &ignored); /* a read-only images.dir is fine */
	return 0;
}

void kc_clone_base_name(const char *image, const char *sha256, char *buf, size_t len)
{
	snprintf(buf, len, "base-%.*s-%.16s.qcow2", BASE_IMAGE_CHARS, image, sha256);
}

bool kc_clone_is_base_name(const char *vol)
{
	size_t n = strlen(vol);
	return strncmp(vol, "base-", 5) == 0 && n > 5 + 1 + 16 + 6 &&
	       strcmp(vol + n - 6, ".qcow2") == 0;
}

/* ---- qemu-img with its progress ---- */

/* Parses the last "(x.xx/100%)" in buf; -1 if none. */
static int last_percent(const char *buf, size_t len)
{
	int pct = -1;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '(')
			continue;
		char *end = NULL;
		double v = strtod(buf + i + 1, &end);
		if (end && strncmp(end, "/100%)", 6) == 0 && v >= 0 && v <= 100)
			pct = (int)v;
	}
	return pct;
}

int kc_qemu_img_run(char *const argv[], void (*on_pct)(void *, int), void *opaque, const char *what,
		    struct kc_error *err)
{
	_cleanup_close_ int errfd = memfd_create("kc-qemu-img-err", MFD_CLOEXEC);
	int pipefd[2];
	if (errfd < 0 || pipe2(pipefd, O_CLOEXEC) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot run qemu-img");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (r != 0) {
		close(pipefd[0]);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, r, "cannot run %s", argv[0]);
	}
	char buf[512];
	ssize_t n;
	while ((n = read(pipefd[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		int pct = last_percent(buf, (size_t)n);
		if (pct >= 0 && on_pct)
			on_pct(opaque, pct);
	}
	close(pipefd[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char msg[1024];
	ssize_t m = pread(errfd, msg, sizeof(msg) - 1, 0);
	msg[m > 0 ? m : 0] = '\0';
	char *end = msg + strlen(msg);
	while (end > msg && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	char *last = strrchr(msg, '\n');
	return kc_error_set(err, KC_ERR_INTERNAL, "%s: qemu-img failed: %s", what,
			    last ? last + 1 : msg);
}

/* ---- progress of full copies, by VM ---- */

#define MAX_COPIES KC_MAX_INFLIGHT

static pthread_mutex_t copies_lock = PTHREAD_MUTEX_INITIALIZER;
static struct copy {
	const struct kc_agent *agent;
	char vm[KC_NAME_MAX + 1];
	int percent;
} copies[MAX_COPIES];

static struct copy *copy_find(const struct kc_agent *a, const char *vm)
{
	for (size_t i = 0; i < MAX_COPIES; i++)
		if (copies[i].agent == a && strcmp(copies[i].vm, vm) == 0)
			return &copies[i];
	return NULL;
}

static void copy_begin(const struct kc_agent *a, const char *vm)
{
	pthread_mutex_lock(&copies_lock);
	struct copy *c = copy_find(a, vm);
	for (size_t i = 0; !c && i < MAX_COPIES; i++)
		if (!copies[i].agent)
			c = &copies[i];
	if (c) {
		c->agent = a;
		snprintf(c->vm, sizeof(c->vm), "%s", vm);
		c->percent = 0;
	}
	pthread_mutex_unlock(&copies_lock);
}

struct copy_ref {
	const struct kc_agent *agent;
	const char *vm;
};

static void copy_note(void *opaque, int pct)
{
	struct copy_ref *ref = opaque;
	pthread_mutex_lock(&copies_lock);
	struct copy *c = copy_find(ref->agent, ref->vm);
	if (c)
		c->percent = pct;
	pthread_mutex_unlock(&copies_lock);
}

static void copy_end(const struct kc_agent *a, const char *vm)
{
	pthread_mutex_lock(&copies_lock);
	struct copy *c = copy_find(a, vm);
	if (c)
		memset(c, 0, sizeof(*c));
	pthread_mutex_unlock(&copies_lock);
}

int kc_clone_progress(struct kc_agent *a, const char *vm)
{
	pthread_mutex_lock(&copies_lock);
	struct copy *c = copy_find(a, vm);
	int pct = c ? c->percent : -1;
	pthread_mutex_unlock(&copies_lock);
	return pct;
}

/* ---- linked: the base volume ---- */

/* Where copy_sparse writes: `len` bytes at `off`, all of them or -1. */
typedef int (*copy_put_fn)(void *opaque, const void *buf, size_t len, uint64_t off,
			   struct kc_error *err);

static int put_fd(void *opaque, const void *buf, size_t len, uint64_t off, struct kc_error *err)
{
	int out = *(int *)opaque;
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(out, (const char *)buf + done, len - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, w < 0 ? errno : EIO,
						  "cannot write the base volume");
		done += (size_t)w;
	}
	return 0;
}

/* The template's data into `put`, holes skipped (SEEK_DATA): the caller
 * gives the copy the template's size (*ret_size), so the base is the
 * template byte for byte (its SHA-256 is the one its name begins with), at
 * the cost of the template's allocated size, not its virtual. */
static int copy_sparse(const char *src, copy_put_fn put, void *opaque, uint64_t *ret_size,
		       struct kc_error *err)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot open the template");
	_cleanup_free_ char *buf = malloc(1 << 20);
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	off_t off = 0;
	while (off < st.st_size) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (data < 0 || hole < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
						  "cannot read the template");
		for (off = data; off < hole;) {
			size_t want =
				(size_t)(hole - off) < (1u << 20) ? (size_t)(hole - off) : 1u << 20;
			ssize_t n = pread(in, buf, want, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return kc_error_set_errno(err, KC_ERR_INTERNAL, n < 0 ? errno : EIO,
							  "cannot read the template");
			if (put(opaque, buf, (size_t)n, (uint64_t)off, err) < 0)
				return -1;
			off += n;
		}
	}
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

/* Opens and locks <dir>/.<base>.lock, retrying if a holder unlinked it
 * meanwhile (each holder removes it when done: no lock files stay). */
static int base_lock(const char *lock_path, struct kc_error *err)
{
	for (;;) {
		int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s",
						  lock_path);
		/* No time-out: the holder is copying the same template we need,
		 * and the create waits for it either way. */
		int r;
		while ((r = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
			;
		struct stat a, b;
		if (r == 0 && fstat(fd, &a) == 0 && stat(lock_path, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			return fd;
		int e = errno;
		close(fd);
		if (r < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "flock %s", lock_path);
	}
}

static void base_unlock(const char *lock_path, int fd)
{
	/* Unlinked before the unlock: a waiter then finds its file gone and
	 * opens a new one, and nobody holds a lock on a file nobody sees. */
	unlink(lock_path);
	close(fd);
}

int kc_clone_base_ensure(struct kc_agent *a, struct kc_clone_target *t, const char *image,
			 const char *template_path, struct kc_intent *in, char **ret_base,
			 struct kc_error *err)
{
	char sha[65], base[KC_NAME_MAX + 1];
	if (kc_clone_template_sha256(template_path, sha, err) < 0)
		return -1;
	kc_clone_base_name(image, sha, base, sizeof(base));
	_cleanup_free_ char *path = NULL, *lock = NULL, *tmp = NULL;
	unsigned char rnd[4];
	if (kc_random_bytes(rnd, sizeof(rnd), err) < 0)
		return -1;
	if (asprintf(&path, "%s/%s", t->dir, base) < 0 ||
	    asprintf(&lock, "%s/.%s.lock", t->dir, base) < 0 ||
	    asprintf(&tmp, "%s/.%s.%.32s.%ld.%02x%02x%02x%02x.part", t->dir, base,
		     kc_agent_host_name(a), (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	_cleanup_close_ int tfd = -1;
	int fd = base_lock(lock, err);
	if (fd < 0)
		return -1;
	int r = -1;
	struct stat st;
	if (lstat(path, &st) == 0) {
		/* Ours are read-only files; anything else of that name (a user's
		 * volume) must never become the backing file of other VMs. */
		if (!S_ISREG(st.st_mode) || (st.st_mode & 0777) != 0444) {
			kc_error_set(err, KC_ERR_CONFLICT,
				     "%s in pool \"%s\" is not a base volume kvmcloud made "
				     "(not a read-only file)",
				     base, t->name);
			goto out;
		}
		r = 0; /* only ever renamed into place whole */
		goto out;
	}
	/* The temporary name first goes into the intent record: a create killed
	 * during the copy leaves nothing the reaper does not know. */
	if (kc_intent_note(in, tmp, err) < 0)
		goto out;
	tfd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
				   "cannot create a copy in pool \"%s\"", t->name);
		goto out;
	}
	uint64_t tsize = 0;
	if (copy_sparse(template_path, put_fd, &tfd, &tsize, err) < 0 ||
	    (ftruncate(tfd, (off_t)tsize) < 0 &&
	     kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write the base volume"))) {
		unlink(tmp);
		goto out;
	}
	/* Read-only: an overlay's backing file must never change. */
	if (fchmod(tfd, 0444) < 0 || fsync(tfd) < 0 ||
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot put %s into pool \"%s\"",
				   base, t->name);
		unlink(tmp);
		goto out;
	}
	kc_fsync_parent(path);
	if (t->pool && virStoragePoolRefresh(t->pool, 0) < 0)
		virResetLastError();
	r = 0;
out:
	base_unlock(lock, fd);
	if (r == 0)
		*ret_base = steal_ptr(&path);
	return r;
}

/* ---- NFS pools: volumes made by qemu-img on nfs:// URLs ---- */

static char *nfs_url(const struct kc_clone_target *t, const char *vol)
{
	char *u = NULL;
	return asprintf(&u, "nfs://%s%s/%s", t->nfs_host, t->nfs_export, vol) < 0 ? NULL : u;
}

/* Whether vol exists in t; -1 with err on another failure than "none". */
static int nfs_vol_exists(const struct kc_clone_target *t, const char *vol, struct kc_error *err)
{
	struct kc_pool_disk d = {0};
	struct kc_error e = {0};
	if (kc_pool_vol_disk(t->kp, vol, KC_VOL_QCOW2, &d, &e) == 0) {
		kc_pool_disk_clear(&d);
		return 1;
	}
	if (e.code == KC_ERR_NOT_FOUND)
		return 0;
	return kc_error_set(err, e.code, "%s", e.message);
}

int kc_clone_nfs_vol_exists(const struct kc_clone_target *t, const char *vol, struct kc_error *err)
{
	return nfs_vol_exists(t, vol, err);
}

struct nfs_put {
	struct kc_pool *kp;
	const char *vol;
};

static int put_nfs(void *opaque, const void *buf, size_t len, uint64_t off, struct kc_error *err)
{
	struct nfs_put *np = opaque;
	return kc_pool_vol_write(np->kp, np->vol, off, buf, len, err);
}

/* "kcpart-<host>-<16 hex>.part": the host's name (its [A-Za-z0-9-], at
 * most 24) and 64 random bits, unique across the hosts sharing an export;
 * the reaper (intent.c) deletes only names of this shape. */
static int nfs_part_name(struct kc_agent *a, char *buf, size_t len, struct kc_error *err)
{
	unsigned char r[8];
	char host[25];
	size_t n = 0;

	if (kc_random_bytes(r, sizeof(r), err) < 0)
		return -1;
	for (const char *h = kc_agent_host_name(a); *h && n < sizeof(host) - 1; h++)
		if ((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		    (*h >= '0' && *h <= '9') || *h == '-')
			host[n++] = *h;
	host[n] = '\0';
	snprintf(buf, len, "kcpart-%s-%02x%02x%02x%02x%02x%02x%02x%02x.part", n ? host : "host",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	return 0;
}

/* Is `base` on the export the copy of the template (tsize bytes, first
 * bytes `head`, hlen of them)?  Only a whole copy ever gets the name (a
 * link of a finished, read-only temporary file), so its size, mode and
 * first 64 KiB tell it from anything else of that name. */
static int nfs_base_check(const struct kc_clone_target *t, const char *base, uint64_t tsize,
			  const unsigned char *head, size_t hlen, struct kc_error *err)
{
	_cleanup_free_ unsigned char *got = malloc(KC_IMG_HEAD_BYTES);
	uint64_t size = 0;
	unsigned mode = 0;
	size_t n = 0;

	if (!got)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_pool_nfs_vol_stat(t->kp, base, &size, &mode, err) < 0 ||
	    (S_ISREG(mode) && (mode & 0777) == 0444 && size == tsize &&
	     kc_pool_vol_read(t->kp, base, 0, got, hlen, &n, &size, err) < 0))
		return -1;
	if (!S_ISREG(mode) || (mode & 0777) != 0444 || size != tsize || n != hlen ||
	    memcmp(got, head, hlen) != 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "%s in pool \"%s\" is not a base volume kvmcloud made of this "
				    "template (not a read-only file of its size and content)",
				    base, t->name);
	return 0;
}

/* The base on NFS, where flock does not reach (libnfs has no locks): the
 * template's bytes go to a temporary name unique to this host and call
 * (named in the intent record first), made read-only, then get the base's
 * name with an NFS LINK, atomic on the server and never replacing.  Of two
 * hosts copying at once, one links first; the other finds the name taken,
 * checks the winner's copy and drops its own.  Readers only ever open the
 * base's name, which never holds a partial copy, and an overlay's open
 * base is never replaced (an NFSv3 file handle dies with its last name). */
int kc_clone_base_ensure_nfs(struct kc_agent *a, struct kc_clone_target *t, const char *image,
			     const char *template_path, struct kc_intent *in, char **ret_base,
			     struct kc_error *err)
{
	char sha[65], base[KC_NAME_MAX + 1], tmp[KC_NAME_MAX + 1];
	_cleanup_free_ unsigned char *head = malloc(KC_IMG_HEAD_BYTES);
	struct stat st;

	if (!head)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_clone_template_sha256(template_path, sha, err) < 0)
		return -1;
	kc_clone_base_name(image, sha, base, sizeof(base));
	_cleanup_close_ int fd = open(template_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t hlen = fd < 0 || fstat(fd, &st) < 0 ? -1 : pread(fd, head, KC_IMG_HEAD_BYTES, 0);
	if (hlen < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read the template");
	uint64_t tsize = (uint64_t)st.st_size;

	int ex = nfs_vol_exists(t, base, err);
	if (ex < 0)
		return -1;
	if (ex == 1 && nfs_base_check(t, base, tsize, head, (size_t)hlen, err) < 0)
		return -1;
	if (ex == 0) {
		if (nfs_part_name(a, tmp, sizeof(tmp), err) < 0 ||
		    kc_intent_note_pool_vol(in, kc_pool_get_def(t->kp), tmp, err) < 0 ||
		    kc_pool_nfs_vol_new(t->kp, tmp, tsize, err) < 0)
			return -1;
		struct nfs_put np = {t->kp, tmp};
		uint64_t copied = 0;
		struct kc_error e = {0};
		int r = copy_sparse(template_path, put_nfs, &np, &copied, err);
		/* Read-only: an overlay's backing file must never change. */
		if (r == 0)
			r = kc_pool_nfs_vol_chmod(t->kp, tmp, 0444, err);
		if (r == 0 && copied != tsize)
			r = kc_error_set(err, KC_ERR_CONFLICT,
					 "the template changed during the copy");
		if (r == 0 && kc_pool_nfs_link(t->kp, tmp, base, &e) < 0) {
			/* Another host linked its copy first: use it if it is one. */
			r = e.code == KC_ERR_CONFLICT
				    ? nfs_base_check(t, base, tsize, head, (size_t)hlen, err)
				    : kc_error_set(err, e.code, "%s", e.message);
		}
		/* The base keeps its own name; the temporary one always goes. */
		kc_pool_vol_delete(t->kp, tmp, NULL);
		if (r < 0)
			return -1;
	}
	if (asprintf(ret_base, "%s/%s", t->nfs_export, base) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

int kc_clone_overlay_nfs(struct kc_clone_target *t, const char *vol, uint64_t capacity,
			 const char *base_path, struct kc_error *err)
{
	_cleanup_free_ char *url = nfs_url(t, vol), *burl = NULL;
	if (!url || asprintf(&burl, "nfs://%s%s", t->nfs_host, base_path) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	char size[32];
	snprintf(size, sizeof(size), "%llu", (unsigned long long)capacity);
	char *const argv[] = {KC_QEMU_IMG, "create", "-q",    "-f", "qcow2", "-b",
			      burl,	   "-F",     "qcow2", url,  size,    NULL};
	return kc_qemu_img_run(argv, NULL, NULL, "the overlay", err);
}

/* ---- full: a standalone copy ---- */

int kc_clone_full(struct kc_agent *a, struct kc_clone_target *t, const char *vm,
		  const char *template_path, const char *vol, uint64_t capacity,
		  uint64_t template_size, struct kc_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (t->nfs_host ? !(path = nfs_url(t, vol)) : asprintf(&path, "%s/%s", t->dir, vol) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	char what[KC_NAME_MAX + 32];
	snprintf(what, sizeof(what), "full copy for VM '%s'", vm);
	/* -W: out-of-order writes, the copy's order does not matter until it
	 * is whole; no -n: qemu-img makes the file, nothing of it exists. */
	char *const argv[] = {
		KC_QEMU_IMG,	       "convert", "-p", "-W", "-f", "qcow2", "-O", "qcow2",
		(char *)template_path, path,	  NULL};
	struct copy_ref ref = {a, vm};
	copy_begin(a, vm);
	int r = kc_qemu_img_run(argv, copy_note, &ref, what, err);
	copy_end(a, vm);
	if (r == 0 && capacity > template_size) {
		char size[32];
		snprintf(size, sizeof(size), "%llu", (unsigned long long)capacity);
		char *const rs[] = {KC_QEMU_IMG, "resize", "-f", "qcow2", path, size, NULL};
		r = kc_qemu_img_run(rs, NULL, NULL, what, err);
	}
	if (r == 0 && !t->nfs_host && chmod(path, 0600) < 0)
		r = kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "chmod %s", vol);
	if (t->pool && virStoragePoolRefresh(t->pool, 0) < 0)
		virResetLastError();
	return r;
}

int kc_agent_vm_create_progress(struct kc_agent *a, const char *name, json_t **ret,
				struct kc_error *err)
{
	if (kc_name_validate(name, "VM name", err) < 0)
		return -1;
	int pct = kc_clone_progress(a, name);
	json_t *r = json_pack("{s:s,s:b,s:i}", "name", name, "copying", pct >= 0, "percent",
			      pct < 0 ? 0 : pct);
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}
