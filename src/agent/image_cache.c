/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_cache.c - the host's copy of library images in <images.dir>
 * (docs/storage.md, "Image library"; docs/protocol.md, image.*):
 *   image.ensure  is <name><ext> here with this SHA-256?  If not, the caller
 *                 gets an upload lease (a token), or "busy" while another
 *                 caller's upload of the same file runs;
 *   image.put     one chunk (base64, at most KC_IMAGE_CHUNK_MAX bytes) at
 *                 the next offset of .<name><ext>.part;
 *   image.commit  size, SHA-256 and the content checks on the whole file,
 *                 then the rename into place and the verified record.
 * One lease per file: concurrent ensures of one image copy it once.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"
#include "validate.h"

#define MAX_LEASES 16
/* A lease nobody used for this long may be taken over (its server died). */
#define LEASE_IDLE_MS 120000

struct lease {
	char path[4200];
	char token[33];
	char sha256[65];
	enum kc_img_format format;
	uint64_t size, next_off, touched_ms;
	bool committing; /* checks under way: never taken over */
};

static pthread_mutex_t leases_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lease leases[MAX_LEASES];

static struct lease *lease_find(const char *path)
{
	for (size_t i = 0; i < MAX_LEASES; i++)
		if (leases[i].path[0] && strcmp(leases[i].path, path) == 0)
			return &leases[i];
	return NULL;
}

struct image_args {
	const char *name, *sha256, *token;
	enum kc_img_kind kind;
	enum kc_img_format format;
	uint64_t size, offset;
	const char *data;
};

static int parse_common(const json_t *args, struct image_args *ia, struct kc_error *err)
{
	const char *fmt = NULL, *kind = NULL;

	if (kc_json_get_string(args, "name", true, KC_NAME_MAX, &ia->name, err) < 0 ||
	    kc_name_validate(ia->name, "image name", err) < 0 ||
	    kc_json_get_string(args, "format", true, 8, &fmt, err) < 0 ||
	    kc_img_format_parse(fmt, &ia->format, err) < 0 ||
	    kc_json_get_string(args, "kind", false, 16, &kind, err) < 0)
		return -1;
	if (kind && (kc_img_kind_parse(kind, &ia->kind, err) < 0 ||
		     kc_img_kind_format_check(ia->kind, ia->format, err) < 0))
		return -1;
	return 0;
}

static char *image_path(struct kc_agent *a, const struct image_args *ia, struct kc_error *err)
{
	return kc_path_join_name(a->images_dir, ia->name, kc_img_format_ext(ia->format),
				 "image name", err);
}

static void part_path(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	snprintf(buf, len, "%.*s/.%s.part", (int)(slash - path), path, slash + 1);
}

int kc_agent_image_ensure(struct kc_agent *a, const json_t *args, json_t **ret,
			  struct kc_error *err)
{
	static const char *const keys[] = {"name", "kind", "format", "sha256", "size", NULL};
	struct image_args ia = {0};

	if (kc_json_check_keys(args, keys, "image.ensure args", err) < 0 ||
	    parse_common(args, &ia, err) < 0 ||
	    kc_json_get_string(args, "sha256", true, 64, &ia.sha256, err) < 0 ||
	    kc_json_get_uint(args, "size", true, 1, INT64_MAX, &ia.size, err) < 0)
		return -1;
	if (!kc_img_sha256_valid(ia.sha256))
		return kc_error_set(err, KC_ERR_INVALID, "sha256 must be 64 lowercase hex digits");
	_cleanup_free_ char *path = image_path(a, &ia, err);
	if (!path)
		return -1;

	pthread_mutex_lock(&leases_lock);
	struct lease *l = lease_find(path);
	if (l && (l->committing || kc_now_ms() - l->touched_ms < LEASE_IDLE_MS)) {
		pthread_mutex_unlock(&leases_lock);
		*ret = json_pack("{s:b,s:b}", "present", 0, "busy", 1);
		return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	/* Checked under the lock: a commit renames into place under it too. */
	struct stat st;
	bool exists = stat(path, &st) == 0;
	if (exists && kc_image_is_verified(path, ia.sha256)) {
		pthread_mutex_unlock(&leases_lock);
		*ret = json_pack("{s:b}", "present", 1);
		return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	if (exists) {
		/* A file placed by hand (or an older kvmcloud): hash it once. */
		pthread_mutex_unlock(&leases_lock);
		char hex[65];
		_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || kc_image_sha256_fd(fd, hex, NULL, err) < 0)
			return kc_error_is_set(err)
				       ? -1
				       : kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
							    "cannot open image '%s'", ia.name);
		/* Never replaced: VMs here may use it as their backing file. */
		if (strcmp(hex, ia.sha256) != 0)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "host %s has a different image file named %s%s "
					    "(sha256 %.12s...); remove it from the host's images "
					    "folder if no VM uses it",
					    a->host_name, ia.name, kc_img_format_ext(ia.format),
					    hex);
		if (kc_image_mark_verified(path, hex, err) < 0)
			return -1;
		*ret = json_pack("{s:b}", "present", 1);
		return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	if (!l)
		for (size_t i = 0; i < MAX_LEASES && !l; i++)
			if (!leases[i].path[0] ||
			    (!leases[i].committing &&
			     kc_now_ms() - leases[i].touched_ms >= LEASE_IDLE_MS))
				l = &leases[i];
	if (!l) {
		pthread_mutex_unlock(&leases_lock);
		*ret = json_pack("{s:b,s:b}", "present", 0, "busy", 1);
		return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	unsigned char rnd[16];
	if (kc_random_bytes(rnd, sizeof(rnd), err) < 0) {
		pthread_mutex_unlock(&leases_lock);
		return -1;
	}
	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "%s", path);
	for (int i = 0; i < 16; i++)
		snprintf(l->token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(l->sha256, sizeof(l->sha256), "%s", ia.sha256);
	l->format = ia.format;
	l->size = ia.size;
	l->touched_ms = kc_now_ms();
	*ret = json_pack("{s:b,s:s,s:I}", "present", 0, "token", l->token, "chunk_max",
			 (json_int_t)KC_IMAGE_CHUNK_MAX);
	pthread_mutex_unlock(&leases_lock);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* The caller's lease (leases_lock held on success). */
static struct lease *lease_take(const char *path, const char *token, struct kc_error *err)
{
	pthread_mutex_lock(&leases_lock);
	struct lease *l = lease_find(path);
	if (!l || strcmp(l->token, token) != 0) {
		pthread_mutex_unlock(&leases_lock);
		kc_error_set(err, KC_ERR_CONFLICT,
			     "no upload of this image under way with that token (expired?)");
		return NULL;
	}
	return l;
}

int kc_agent_image_put(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"name", "format", "token", "offset", "data", NULL};
	struct image_args ia = {0};
	char part[4300];

	if (kc_json_check_keys(args, keys, "image.put args", err) < 0 ||
	    parse_common(args, &ia, err) < 0 ||
	    kc_json_get_string(args, "token", true, 32, &ia.token, err) < 0 ||
	    kc_json_get_uint(args, "offset", true, 0, INT64_MAX, &ia.offset, err) < 0 ||
	    kc_json_get_string(args, "data", true, (KC_IMAGE_CHUNK_MAX + 2) / 3 * 4, &ia.data,
			       err) < 0)
		return -1;
	_cleanup_free_ char *path = image_path(a, &ia, err);
	if (!path)
		return -1;
	gnutls_datum_t in = {(unsigned char *)ia.data, (unsigned)strlen(ia.data)}, out = {0};
	if (gnutls_base64_decode2(&in, &out) < 0)
		return kc_error_set(err, KC_ERR_INVALID, "image.put: data is not base64");
	part_path(path, part, sizeof(part));

	struct lease *l = lease_take(path, ia.token, err);
	int r = -1;
	if (!l)
		goto out;
	if (l->committing) {
		kc_error_set(err, KC_ERR_CONFLICT, "image.put: the upload is being committed");
	} else if (ia.offset != l->next_off) {
		kc_error_set(err, KC_ERR_CONFLICT, "image.put: offset %llu, expected %llu",
			     (unsigned long long)ia.offset, (unsigned long long)l->next_off);
	} else if (ia.offset + out.size > l->size) {
		kc_error_set(err, KC_ERR_INVALID,
			     "image.put: more data than the %llu bytes announced",
			     (unsigned long long)l->size);
	} else {
		int fd = open(part,
			      O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
				      (ia.offset ? 0 : O_TRUNC),
			      0644);
		int w = fd < 0 ? -errno : 0;
		if (fd >= 0 && lseek(fd, (off_t)ia.offset, SEEK_SET) < 0)
			w = -errno;
		if (fd >= 0 && w == 0)
			w = kc_write_all(fd, out.data, out.size);
		if (fd >= 0)
			close(fd);
		if (w < 0) {
			kc_error_set_errno(err, KC_ERR_INTERNAL, -w, "cannot write image '%s'",
					   ia.name);
		} else {
			l->next_off += out.size;
			l->touched_ms = kc_now_ms();
			r = 0;
		}
	}
	pthread_mutex_unlock(&leases_lock);
out:
	gnutls_free(out.data);
	if (r == 0 && !(*ret = json_pack("{s:I}", "next", (json_int_t)(ia.offset + out.size))))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return r;
}

int kc_agent_image_commit(struct kc_agent *a, const json_t *args, json_t **ret,
			  struct kc_error *err)
{
	static const char *const keys[] = {"name", "format", "token", NULL};
	struct image_args ia = {0};
	struct kc_image_facts facts;
	char part[4300], what[KC_NAME_MAX + 16];

	if (kc_json_check_keys(args, keys, "image.commit args", err) < 0 ||
	    parse_common(args, &ia, err) < 0 ||
	    kc_json_get_string(args, "token", true, 32, &ia.token, err) < 0)
		return -1;
	_cleanup_free_ char *path = image_path(a, &ia, err);
	if (!path)
		return -1;
	part_path(path, part, sizeof(part));
	snprintf(what, sizeof(what), "image '%s'", ia.name);

	struct lease *l = lease_take(path, ia.token, err);
	if (!l)
		return -1;
	bool whole = l->next_off == l->size && !l->committing;
	enum kc_img_format format = l->format;
	char sha256[65];
	snprintf(sha256, sizeof(sha256), "%s", l->sha256);
	uint64_t size = l->size, got = l->next_off;
	/* The checks run unlocked; the lease stays (ensure answers "busy").
	 * A commit of an incomplete upload is how a sender gives up: the
	 * lease and the part file go. */
	if (whole) {
		l->committing = true;
	} else if (!l->committing) {
		unlink(part);
		memset(l, 0, sizeof(*l));
	}
	pthread_mutex_unlock(&leases_lock);
	if (!whole)
		return kc_error_set(err, KC_ERR_INVALID, "%s: %llu of %llu bytes received", what,
				    (unsigned long long)got, (unsigned long long)size);

	int r = -1;
	if (kc_image_validate(part, format, KC_IMG_MAX_VIRTUAL, what, &facts, err) < 0)
		;
	else if (facts.size_bytes != size || strcmp(facts.sha256, sha256) != 0)
		kc_error_set(err, KC_ERR_INVALID, "%s: the copy's SHA-256 %s is not %s", what,
			     facts.sha256, sha256);
	else if (renameat2(AT_FDCWD, part, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
		kc_error_set_errno(err, errno == EEXIST ? KC_ERR_CONFLICT : KC_ERR_INTERNAL, errno,
				   "cannot move %s into place", what);
	else if (kc_fsync_parent(path), kc_image_mark_verified(path, facts.sha256, err) == 0 &&
						kc_image_mark_cached(path, err) == 0)
		r = 0;
	if (r < 0)
		unlink(part);
	pthread_mutex_lock(&leases_lock);
	if ((l = lease_find(path)) && strcmp(l->token, ia.token) == 0)
		memset(l, 0, sizeof(*l));
	pthread_mutex_unlock(&leases_lock);
	if (r < 0)
		return -1;
	*ret = json_pack("{s:b,s:I}", "present", 1, "virtual_size_bytes",
			 (json_int_t)facts.virtual_size_bytes);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}
