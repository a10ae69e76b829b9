/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tmpdir.c - the agent's temporary folders <data.dir>/seed-XXXXXX,
 * probe-XXXXXX and template-XXXXXX (template.c), and what a killed
 * process leaves of them.
 *
 * The process that makes a folder holds flock(LOCK_EX) on it until it has
 * removed it; flock dies with the process, so a folder whose lock can be
 * taken, and that is older than this process, is a leftover.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"

static const char *const prefixes[] = {"seed-", "probe-", "template-"};
#define ACCEL_TMP ".accel.json."

static struct timespec process_start;

__attribute__((constructor)) static void note_process_start(void)
{
	clock_gettime(CLOCK_REALTIME, &process_start);
}

int kc_tmpdir_make(const char *parent, const char *prefix, char *buf, size_t len, int *ret_lock,
		   struct kc_error *err)
{
	for (int tries = 0; tries < 10; tries++) {
		if ((size_t)snprintf(buf, len, "%s/%sXXXXXX", parent, prefix) >= len)
			return kc_error_set(err, KC_ERR_INTERNAL, "path too long: %s", parent);
		/* mkdtemp makes it 0700. */
		if (!mkdtemp(buf))
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "mkdtemp in %s",
						  parent);
		int fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			rmdir(buf);
			return kc_error_set_errno(err, KC_ERR_INTERNAL, e, "open %s", buf);
		}
		struct stat st;
		/* A reaper of another process may have removed it before our lock. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 && st.st_nlink > 0) {
			*ret_lock = fd;
			return 0;
		}
		close(fd);
	}
	return kc_error_set(err, KC_ERR_INTERNAL, "cannot make a temporary folder in %s", parent);
}

void kc_tmpdir_remove(const char *dir, int lock)
{
	kc_rmdir_files(dir);
	if (lock >= 0)
		close(lock);
}

/* A name mkdtemp/mkstemp could have made from `prefix`. */
static bool temp_name(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (strncmp(name, prefix, pl) != 0 || strlen(name) != pl + 6)
		return false;
	for (const char *p = name + pl; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static bool before_start(const struct stat *st)
{
	return st->st_mtim.tv_sec < process_start.tv_sec ||
	       (st->st_mtim.tv_sec == process_start.tv_sec &&
		st->st_mtim.tv_nsec < process_start.tv_nsec);
}

int kc_tmpdirs_reap(const char *data_dir)
{
	DIR *d = kc_opendir(data_dir, 0);
	if (!d)
		return 0;
	int dfd = dirfd(d);
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !before_start(&st))
			continue;
		/* accel.json's writer renames its temp file within milliseconds. */
		if (S_ISREG(st.st_mode) && temp_name(e->d_name, ACCEL_TMP)) {
			if (unlinkat(dfd, e->d_name, 0) == 0)
				removed++;
			continue;
		}
		bool ours = false;
		for (size_t i = 0; i < KC_ARRAY_SIZE(prefixes); i++)
			ours = ours || temp_name(e->d_name, prefixes[i]);
		if (!ours || !S_ISDIR(st.st_mode))
			continue;
		_cleanup_close_ int fd =
			openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue;
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", data_dir, e->d_name) < 0)
			break;
		kc_rmdir_files(path);
		removed++;
	}
	closedir(d);
	return removed;
}
