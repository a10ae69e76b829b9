/* SPDX-License-Identifier: Apache-2.0 */
/* util.c - small OS helpers the agent files share. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/xpath.h>

#include "agent_priv.h"
#include "cleanup.h"

extern char **environ;

uint64_t kc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kc_random_bytes(void *buf, size_t len, struct kc_error *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom((char *)buf + done, len - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "getrandom");
		}
		done += n;
	}
	return 0;
}

int kc_mkdir_p(const char *path, mode_t mode, struct kc_error *err)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "mkdir %s", p);
		*s = '/';
	}
	/* The mode applies to folders we create (mkdir honours the umask,
	 * hence chmod); an existing folder is the admin's and keeps its mode. */
	if (mkdir(p, mode) == 0) {
		if (chmod(p, mode) < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "chmod %s", p);
		return 0;
	}
	if (errno != EEXIST)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "mkdir %s", p);
	struct stat st;
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
		return kc_error_set(err, KC_ERR_INTERNAL, "%s is not a folder", p);
	return 0;
}

int kc_run(char *const argv[], struct kc_error *err)
{
	_cleanup_close_ int errfd = memfd_create("kc-stderr", MFD_CLOEXEC);
	if (errfd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "memfd_create");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, r, "cannot run %s", argv[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "waitpid %s",
						  argv[0]);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char buf[4096];
	ssize_t n = pread(errfd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	/* The last non-empty line says why. */
	char *end = buf + strlen(buf);
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	char *last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	if (WIFEXITED(status))
		return kc_error_set(err, KC_ERR_INTERNAL, "%s exited with %d: %s", argv[0],
				    WEXITSTATUS(status), last);
	return kc_error_set(err, KC_ERR_INTERNAL, "%s killed by signal %d", argv[0],
			    WTERMSIG(status));
}

DIR *kc_opendir(const char *path, int flags)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	if (dfd < 0)
		return NULL;
	DIR *d = fdopendir(dfd);
	if (!d)
		close(dfd);
	return d;
}

void kc_rmdir_files(const char *dir)
{
	DIR *d = kc_opendir(dir, 0);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* qcow2 incompatible feature bits QEMU 7.2 knows: dirty, corrupt, external
 * data file, compression type, extended L2 entries. */
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_KNOWN	 0x1fULL

int kc_qcow2_virtual_size(const char *path, const char *what, uint64_t *ret, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kc_error_set_errno(err, errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_INTERNAL,
					  errno, "cannot open %s", what);
	/* Version 2 headers are 72 bytes, version 3 at least 104. */
	unsigned char h[104];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 72 || memcmp(h, "QFI\xfb", 4) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s is not a qcow2 image", what);
	uint32_t version = (uint32_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
	if (version != 2 && version != 3)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s has qcow2 version %u (2 or 3 expected)", what, version);
	/* QEMU would open these other files itself, in formats it guesses. */
	if (be64(h + 8) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s has a backing file of its own; flatten it first "
				    "(qemu-img convert -O qcow2)",
				    what);
	if (version == 3) {
		if (n < 104)
			return kc_error_set(err, KC_ERR_INVALID, "%s has a truncated qcow2 header",
					    what);
		uint64_t incompat = be64(h + 72);
		if (incompat & QCOW2_INCOMPAT_DATA_FILE)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s uses an external data file; flatten it first "
					    "(qemu-img convert -O qcow2)",
					    what);
		if (incompat & ~QCOW2_INCOMPAT_KNOWN)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s has unknown qcow2 incompatible features 0x%llx",
					    what,
					    (unsigned long long)(incompat & ~QCOW2_INCOMPAT_KNOWN));
	}
	*ret = be64(h + 24);
	return 0;
}

void kc_version_str(unsigned long v, char *buf, size_t len)
{
	snprintf(buf, len, "%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
}

char *kc_xpath_string(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (!o)
		return NULL;
	char *s = NULL;
	xmlChar *v = xmlXPathCastToString(o);
	if (v && *v)
		s = strdup((const char *)v);
	xmlFree(v);
	xmlXPathFreeObject(o);
	return s;
}

int kc_xpath_long(xmlXPathContextPtr ctx, const char *expr, long def)
{
	_cleanup_free_ char *s = kc_xpath_string(ctx, expr);
	if (!s)
		return def;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end)
		return def;
	return (int)v;
}
