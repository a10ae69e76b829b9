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

#define XORRISO "/usr/bin/xorriso"

static int write_file(const char *dir, const char *name, const char *data, struct kc_error *err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "create %s", path);
	size_t len = strlen(data), off = 0;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "write %s", path);
		off += n;
	}
	return 0;
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
		return kc_error_set(err, KC_ERR_CONFLICT, "%s exists already", out);

	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/seed-XXXXXX", a->data_dir);
	if (!mkdtemp(dir))
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "mkdtemp in %s",
					  a->data_dir);
	int ret = -1;
	_cleanup_free_ char *meta = NULL;
	if (asprintf(&meta, "instance-id: %s\nlocal-hostname: %s\n", uuid, hostname) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (write_file(dir, "meta-data", meta, err) < 0 ||
	    write_file(dir, "user-data", user_data ? user_data : "#cloud-config\n", err) < 0)
		goto out;
	char ud[4200], md[4200];
	snprintf(ud, sizeof(ud), "%s/user-data", dir);
	snprintf(md, sizeof(md), "%s/meta-data", dir);
	char *argv[] = {XORRISO,  "-as",     "mkisofs", "-output", out, "-volid",
			"cidata", "-joliet", "-rock",	ud,	   md,	NULL};
	if (kc_run(argv, err) < 0) {
		unlink(out);
		goto out;
	}
	chmod(out, 0644);
	*ret_path = steal_ptr(&out);
	ret = 0;
out:
	kc_rmdir_files(dir);
	return ret;
}
