/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_check.c - validating an image file of the library (agent.h, "image
 * library"): the bytes against the declared format (imgcheck.h), then
 * qemu-img's own reading of it with that format forced, its SHA-256, and
 * the record beside a verified file that spares hashing it again.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "io.h"
#include "json_util.h"

#define QEMU_IMG	 "/usr/bin/qemu-img"
#define QEMU_IMG_WAIT_MS 60000
#define INFO_MAX	 (256 * 1024)

extern char **environ;

int kc_image_sha256_fd(int fd, char hex[static 65], uint64_t *ret_size, struct kc_error *err)
{
	gnutls_hash_hd_t h;
	unsigned char md[32];
	uint64_t total = 0;
	_cleanup_free_ unsigned char *buf = malloc(1 << 20);

	if (!buf || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start a SHA-256");
	for (;;) {
		ssize_t n = pread(fd, buf, 1 << 20, (off_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			gnutls_hash_deinit(h, NULL);
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read image");
		}
		if (n == 0)
			break;
		gnutls_hash(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	gnutls_hash_deinit(h, md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (ret_size)
		*ret_size = total;
	return 0;
}

int kc_qemu_img_info_json(const char *path, const char *fmt, const char *what, char **ret,
			  size_t *ret_len, struct kc_error *err)
{
	_cleanup_close_ int outfd = memfd_create("kc-qemu-img-out", MFD_CLOEXEC);
	_cleanup_close_ int errfd = memfd_create("kc-qemu-img-err", MFD_CLOEXEC);
	char *const argv[] = {QEMU_IMG,	       "info",	     "-f", (char *)fmt,
			      "--output=json", (char *)path, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = 0;

	if (outfd < 0 || errfd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "memfd_create");
	/* A target qemu-img would read as options ("json:", "-x") never gets
	 * here: ours are absolute paths or nfs:// URLs we built. */
	if (path[0] != '/' && strncmp(path, "nfs://", 6) != 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "image path is not absolute");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, r, "cannot run %s", argv[0]);
	/* A crafted image must not hold a worker for ever. */
	for (uint64_t t0 = kc_now_ms();;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "waitpid qemu-img");
		if (kc_now_ms() - t0 > QEMU_IMG_WAIT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return kc_error_set(err, KC_ERR_INVALID, "%s: qemu-img info took too long",
					    what);
		}
		usleep(10000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[512];
		ssize_t n = pread(errfd, msg, sizeof(msg) - 1, 0);
		msg[n > 0 ? n : 0] = '\0';
		msg[strcspn(msg, "\n")] = '\0';
		/* qemu-img names the path; the user knows the image by name. */
		char *p = strstr(msg, path);
		if (p)
			memmove(p, p + strlen(path), strlen(p + strlen(path)) + 1);
		return kc_error_set(err, KC_ERR_INVALID, "%s cannot be read as %s: %s", what, fmt,
				    msg);
	}
	struct stat st;
	if (fstat(outfd, &st) < 0 || st.st_size > INFO_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "%s: qemu-img info answer too large",
				    what);
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	ssize_t n = pread(outfd, buf, (size_t)st.st_size, 0);
	buf[n > 0 ? n : 0] = '\0';
	*ret = buf;
	*ret_len = n > 0 ? (size_t)n : 0;
	return 0;
}

int kc_image_validate(const char *path, enum kc_img_format f, uint64_t max_virtual,
		      const char *what, struct kc_image_facts *ret, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ unsigned char *head = malloc(KC_IMG_HEAD_BYTES);
	_cleanup_free_ char *info = NULL;
	struct kc_image_facts facts = {0};
	size_t info_len = 0, got = 0;
	struct stat st;

	if (!head)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (fd < 0 && errno == ELOOP)
		return kc_error_set(err, KC_ERR_INVALID, "%s is a symbolic link", what);
	if (fd < 0)
		return kc_error_set_errno(err, errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_INTERNAL,
					  errno, "cannot open %s", what);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return kc_error_set(err, KC_ERR_INVALID, "%s is not a regular file", what);
	if (st.st_size == 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s is empty", what);
	while (got < KC_IMG_HEAD_BYTES) {
		ssize_t n = pread(fd, head + got, KC_IMG_HEAD_BYTES - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s",
						  what);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	/* Our own reading of the header comes first: qemu-img itself would
	 * open a backing or data file a crafted header names. */
	if (kc_img_check_magic(head, got, f, what, err) < 0 ||
	    kc_qemu_img_info_json(path, kc_img_format_qemu(f), what, &info, &info_len, err) < 0 ||
	    kc_img_check_info(info, info_len, f, max_virtual, what, &facts.virtual_size_bytes,
			      err) < 0 ||
	    kc_image_sha256_fd(fd, facts.sha256, &facts.size_bytes, err) < 0)
		return -1;
	*ret = facts;
	return 0;
}

/* <dir>/.<file>.verified for <dir>/<file>. */
static int sidecar_path(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return -1;
	int n = snprintf(buf, len, "%.*s/.%s.verified", (int)(slash - path), path, slash + 1);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int kc_image_mark_verified(const char *path, const char *sha256, struct kc_error *err)
{
	char side[4200], tmp[4220];
	struct stat st;

	if (sidecar_path(path, side, sizeof(side)) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "image path too long");
	if (stat(path, &st) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot stat image");
	_cleanup_json_ json_t *rec =
		json_pack("{s:s,s:I,s:I,s:I,s:I}", "sha256", sha256, "size", (json_int_t)st.st_size,
			  "ino", (json_int_t)st.st_ino, "dev", (json_int_t)st.st_dev, "mtime_ns",
			  (json_int_t)(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec));
	_cleanup_free_ char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	if (!text)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	snprintf(tmp, sizeof(tmp), "%s.tmp", side);
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || kc_write_all(fd, text, strlen(text)) < 0 || rename(tmp, side) < 0) {
		int e = errno;
		unlink(tmp);
		return kc_error_set_errno(err, KC_ERR_INTERNAL, e,
					  "cannot record the image's hash");
	}
	return 0;
}

bool kc_image_is_verified(const char *path, const char *sha256)
{
	char side[4200], buf[512];
	struct stat st;

	if (sidecar_path(path, side, sizeof(side)) < 0 || stat(path, &st) < 0)
		return false;
	_cleanup_close_ int fd = open(side, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	_cleanup_json_ json_t *rec = json_loadb(buf, (size_t)n, 0, NULL);
	const char *sha = json_string_value(json_object_get(rec, "sha256"));
	/* Any change to the file since (size, inode, time) means hashing it again. */
	return sha && strcmp(sha, sha256) == 0 &&
	       json_integer_value(json_object_get(rec, "size")) == (json_int_t)st.st_size &&
	       json_integer_value(json_object_get(rec, "ino")) == (json_int_t)st.st_ino &&
	       json_integer_value(json_object_get(rec, "dev")) == (json_int_t)st.st_dev &&
	       json_integer_value(json_object_get(rec, "mtime_ns")) ==
		       (json_int_t)(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
}

void kc_image_forget(const char *path)
{
	char side[4200];

	if (sidecar_path(path, side, sizeof(side)) == 0)
		unlink(side);
}
