/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_clone - clone.c without libvirtd: base volume names, the template's
 * hash and its record, 20 threads making one base at once (one copy, the
 * template byte for byte, intact, read-only, nothing left behind), a writable file of the base's
 * name refused, and a full copy (no backing file, grown, progress seen). Needs /usr/bin/qemu-img.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "tap.h"

#define THREADS 20

static char dir[64], pooldir[128], tpl[160];
static struct kc_agent agent;

static int run(const char *const argv[])
{
	struct kc_error err = {0};
	int r = kc_run((char *const *)argv, &err);
	if (r < 0)
		printf("# %s\n", err.message);
	return r;
}

struct worker {
	struct kc_clone_target *t;
	struct kc_intent in;
	char *base;
	struct kc_error err;
	int rc;
};

static void *work(void *opaque)
{
	struct worker *w = opaque;
	w->rc = kc_clone_base_ensure(&agent, w->t, "kctpl", tpl, &w->in, &w->base, &w->err);
	return NULL;
}

static int count(const char *d, const char *prefix, const char *suffix)
{
	int n = 0;
	DIR *dp = opendir(d);
	struct dirent *e;
	while (dp && (e = readdir(dp))) {
		size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
		if ((!prefix || strncmp(e->d_name, prefix, strlen(prefix)) == 0) &&
		    (!suffix || (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)))
			n++;
	}
	if (dp)
		closedir(dp);
	return n;
}

static bool has_line(int fd, const char *needle)
{
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, needle) != NULL;
}

int main(void)
{
	struct kc_error err = {0};
	char name[KC_NAME_MAX + 1], sha[65], sha2[65];

	if (access(KC_QEMU_IMG, X_OK) != 0) {
		printf("1..0 # SKIP no qemu-img\n");
		return 0;
	}
	snprintf(dir, sizeof(dir), "/tmp/kc-test-clone-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(pooldir, sizeof(pooldir), "%s/pool", dir);
	snprintf(tpl, sizeof(tpl), "%s/kctpl.qcow2", dir);
	mkdir(pooldir, 0755);
	agent.host_name = "testhost";

	/* Names. */
	kc_clone_base_name("kctest",
			   "683d85b302b86577aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", name,
			   sizeof(name));
	ok(strcmp(name, "base-kctest-683d85b302b86577.qcow2") == 0, "base name %s", name);
	kc_clone_base_name("a-very-long-image-name-that-goes-on-and-on-and-on-64-chars-max-x",
			   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", name,
			   sizeof(name));
	ok(strlen(name) <= KC_NAME_MAX && kc_name_validate(name, "volume name", NULL) == 0,
	   "a long image name gives a valid volume name: %s", name);
	ok(kc_clone_is_base_name("base-kctest-683d85b302b86577.qcow2") &&
		   !kc_clone_is_base_name("vm1-root.qcow2") &&
		   !kc_clone_is_base_name("base-.qcow2"),
	   "kc_clone_is_base_name tells base volumes from others");

	/* A template with data: 8 MiB of a pattern in a 64 MiB image. */
	const char *mk[] = {KC_QEMU_IMG, "create", "-q", "-f", "qcow2", tpl, "64M", NULL};
	const char *wr[] = {"/usr/bin/qemu-io",	   "-f", "qcow2", "-c",
			    "write -P 0x5a 1M 8M", tpl,	 NULL};
	ok(run(mk) == 0 && run(wr) == 0, "template made");

	ok(kc_clone_template_sha256(tpl, sha, &err) == 0, "template hashed");
	_cleanup_close_ int tfd = open(tpl, O_RDONLY | O_CLOEXEC);
	ok(tfd >= 0 && kc_image_sha256_fd(tfd, sha2, NULL, &err) == 0 && strcmp(sha, sha2) == 0,
	   "the hash is the file's SHA-256");
	ok(kc_image_is_verified(tpl, sha), "and is recorded beside it");

	/* 20 creates of one template at once. */
	struct kc_clone_target t = {.dir = pooldir};
	snprintf(t.name, sizeof(t.name), "test");
	struct worker w[THREADS] = {0};
	pthread_t th[THREADS];
	char ipath[THREADS][160];
	for (int i = 0; i < THREADS; i++) {
		snprintf(ipath[i], sizeof(ipath[i]), "%s/intent-%d", dir, i);
		w[i].t = &t;
		w[i].in.fd = open(ipath[i], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		w[i].in.path = ipath[i];
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	int good = 0, copies = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].rc == 0 && w[i].base && strcmp(w[i].base, w[0].base ? w[0].base : "") == 0)
			good++;
		else
			printf("# thread %d: %s\n", i, w[i].err.message);
		/* Only the copier names a temporary file in its record. */
		copies += has_line(w[i].in.fd, ".part");
	}
	ok(good == THREADS, "%d of %d threads got the base", good, THREADS);
	ok(copies == 1, "exactly one thread copied the template (%d did)", copies);
	ok(count(pooldir, "base-", ".qcow2") == 1, "one base volume in the pool");
	ok(count(pooldir, NULL, ".part") == 0 && count(pooldir, NULL, ".lock") == 0,
	   "no temporary copy or lock file is left");
	struct stat st;
	ok(w[0].base && stat(w[0].base, &st) == 0 && (st.st_mode & 0777) == 0444,
	   "the base is read-only");
	const char *chk[] = {KC_QEMU_IMG, "check", "-q", "-f", "qcow2", w[0].base, NULL};
	const char *cmp[] = {KC_QEMU_IMG, "compare", "-q", "-f",      "qcow2",
			     "-F",	  "qcow2",   tpl,  w[0].base, NULL};
	ok(w[0].base && run(chk) == 0, "qemu-img check: the base is intact");
	ok(w[0].base && run(cmp) == 0, "qemu-img compare: the base holds the template's data");
	char bsha[65] = "";
	_cleanup_close_ int bfd = w[0].base ? open(w[0].base, O_RDONLY | O_CLOEXEC) : -1;
	ok(bfd >= 0 && kc_image_sha256_fd(bfd, bsha, NULL, &err) == 0 && strcmp(bsha, sha) == 0,
	   "the base is the template byte for byte (same SHA-256)");
	uint64_t vsize = 0;
	ok(w[0].base && kc_qcow2_virtual_size(w[0].base, "base", &vsize, &err) == 0 &&
		   vsize == 64 << 20,
	   "the base has no backing file and the template's size");
	for (int i = 0; i < THREADS; i++) {
		close(w[i].in.fd);
		free(w[i].base);
	}

	/* A writable file of the base's name (a user's volume) is never used. */
	char other[200];
	snprintf(other, sizeof(other), "%s/other", dir);
	mkdir(other, 0755);
	struct kc_clone_target t2 = {.dir = other};
	snprintf(t2.name, sizeof(t2.name), "other");
	kc_clone_base_name("kctpl", sha, name, sizeof(name));
	char fake[300];
	snprintf(fake, sizeof(fake), "%s/%s", other, name);
	close(open(fake, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	struct kc_intent in = {.fd = open(ipath[0], O_RDWR | O_CLOEXEC), .path = ipath[0]};
	char *base = NULL;
	kc_error_clear(&err);
	ok(kc_clone_base_ensure(&agent, &t2, "kctpl", tpl, &in, &base, &err) < 0 &&
		   err.code == KC_ERR_CONFLICT,
	   "a writable file of the base's name is refused (%s)", err.message);

	/* A full copy, grown to 128 MiB. */
	kc_error_clear(&err);
	ok(kc_clone_progress(&agent, "vmf") == -1, "no copy under way: progress -1");
	ok(kc_clone_full(&agent, &t, "vmf", tpl, "vmf-root.qcow2", 128 << 20, 64 << 20, &err) == 0,
	   "full copy made");
	char full[300];
	snprintf(full, sizeof(full), "%s/vmf-root.qcow2", pooldir);
	ok(kc_qcow2_virtual_size(full, "copy", &vsize, &err) == 0 && vsize == 128 << 20,
	   "the copy has no backing file and was grown to 128 MiB");
	const char *cmp2[] = {KC_QEMU_IMG, "compare", "-q", "-f", "qcow2",
			      "-F",	   "qcow2",   tpl,  full, NULL};
	ok(run(cmp2) == 0, "qemu-img compare: the copy holds the template's data (the rest zero)");
	ok(stat(full, &st) == 0 && (st.st_mode & 0777) == 0600, "the copy is 0600");
	ok(kc_clone_progress(&agent, "vmf") == -1, "progress is gone when the copy is done");
	kc_error_clear(&err);
	ok(kc_clone_full(&agent, &t, "vmf2", "/nonexistent/t.qcow2", "vmf2-root.qcow2", 1 << 20, 0,
			 &err) < 0 &&
		   strstr(err.message, "qemu-img failed"),
	   "a failed copy says why (%s)", err.message);
	close(in.fd);

	const char *rm[] = {"/bin/rm", "-rf", dir, NULL};
	run(rm);
	return tap_done();
}
