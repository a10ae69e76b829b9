/* SPDX-License-Identifier: Apache-2.0 */
/* seed.c - the NoCloud seed ISO (volume label "cidata") that gives a guest
 * its instance id, hostname and user-data. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "io.h"

#define XORRISO "/usr/bin/xorriso"

static int write_file(const char *dir, const char *name, const char *data, struct kc_error *err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "create %s", path);
	int r = kc_write_all(fd, data, strlen(data));
	if (r < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "write %s", path);
	return 0;
}

/* Copies from to a new file `to` (mode 0600): the fallback when data.dir
 * and storage.dir are on different file systems. */
static int copy_new(const char *from, const char *to, struct kc_error *err)
{
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "open %s", from);
	_cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return kc_error_set_errno(err, errno == EEXIST ? KC_ERR_CONFLICT : KC_ERR_INTERNAL,
					  errno, "create %s", to);
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		int r = n < 0 ? -errno : n == 0 ? 0 : kc_write_all(out, buf, n);
		if (r < 0) {
			unlink(to);
			return kc_error_set_errno(err, KC_ERR_INTERNAL, -r, "copy to %s", to);
		}
		if (n == 0)
			return 0;
	}
}

int kc_seed_create(struct kc_agent *a, const char *vm, const char *uuid, const char *hostname,
		   const char *user_data, char **ret_path, struct kc_error *err)
{
	if (kc_hostname_validate(hostname, err) < 0)
		return -1;
	if (user_data && strlen(user_data) > KC_MAX_USER_DATA)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "user_data is over %d bytes",
				    KC_MAX_USER_DATA);
	_cleanup_free_ char *out =
		kc_path_join_name(a->storage_dir, vm, "-seed.iso", "VM name", err);
	if (!out)
		return -1;
	if (access(out, F_OK) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "seed ISO of VM '%s' exists already", vm);

	/* Everything, the ISO included, is made inside a 0700 folder: user_data
	 * often holds secrets, and xorriso creates its output with the umask. */
	char dir[4096];
	int lock = -1;
	if (kc_tmpdir_make(a->data_dir, "seed-", dir, sizeof(dir), &lock, err) < 0)
		return -1;
	int ret = -1;
	_cleanup_free_ char *meta = NULL;
	if (asprintf(&meta, "instance-id: %s\nlocal-hostname: %s\n", uuid, hostname) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (write_file(dir, "meta-data", meta, err) < 0 ||
	    write_file(dir, "user-data", user_data ? user_data : "#cloud-config\n", err) < 0)
		goto out;
	char ud[4200], md[4200], iso[4200];
	snprintf(ud, sizeof(ud), "%s/user-data", dir);
	snprintf(md, sizeof(md), "%s/meta-data", dir);
	snprintf(iso, sizeof(iso), "%s/seed.iso", dir);
	char *argv[] = {XORRISO,  "-as",     "mkisofs", "-output", iso, "-volid",
			"cidata", "-joliet", "-rock",	ud,	   md,	NULL};
	if (kc_run(argv, err) < 0)
		goto out;
	/* 0600: libvirt's DAC driver hands it to the qemu user at start. */
	if (chmod(iso, 0600) < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "chmod %s", iso);
		goto out;
	}
	if (renameat2(AT_FDCWD, iso, AT_FDCWD, out, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST) {
			kc_error_set(err, KC_ERR_CONFLICT, "seed ISO of VM '%s' exists already",
				     vm);
			goto out;
		}
		if (errno != EXDEV && errno != EINVAL) {
			kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "rename to %s", out);
			goto out;
		}
		if (copy_new(iso, out, err) < 0)
			goto out;
	}
	*ret_path = steal_ptr(&out);
	ret = 0;
out:
	kc_tmpdir_remove(dir, lock);
	return ret;
}
