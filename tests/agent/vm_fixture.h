/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm_fixture.h - a private agent against the real libvirtd for the agent
 * tests: data under /tmp/<prefix>, a copy of the kctest image in its
 * images folder, its own storage pool, every domain and pool named
 * <prefix>-*, all removed again at the end, pass or fail.  <prefix> is
 * "<family>-<pid>" or "<family>-<pid>-<tag>".
 *
 * Environment: KC_TEST_IMAGE (default
 * /var/cache/kvmcloud/test-image/kctest.qcow2), KC_TEST_URI (default
 * qemu:///system).
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"

struct vm_fixture {
	char dir[256], pool[96], prefix[48];
	const char *uri;
	const char *image; /* the original test image */
	virConnectPtr conn;
};

static void vm_fixture_quiet(void *opaque, virErrorPtr e)
{
}

static int vm_fixture_copy(const char *from, const char *to)
{
	_cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0)
		return -1;
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return -1;
	return n < 0 ? -1 : 0;
}

/* Connects, makes <dir>/data/images with the test image in it.  Returns a
 * reason to skip (static text), or NULL when ready; either way
 * vm_fixture_cleanup() is to be called. */
__attribute__((unused)) static const char *vm_fixture_init(struct vm_fixture *fx,
							   const char *family, const char *tag)
{
	static char why[512];

	fx->image = getenv("KC_TEST_IMAGE");
	if (!fx->image)
		fx->image = "/var/cache/kvmcloud/test-image/kctest.qcow2";
	fx->uri = getenv("KC_TEST_URI") ? getenv("KC_TEST_URI") : "qemu:///system";
	virSetErrorFunc(NULL, vm_fixture_quiet);
	fx->conn = virConnectOpen(fx->uri);
	if (!fx->conn) {
		snprintf(why, sizeof(why), "libvirtd not reachable at %s", fx->uri);
		return why;
	}
	if (access(fx->image, R_OK) != 0) {
		snprintf(why, sizeof(why), "no test image %s (scripts/build-test-image.sh)",
			 fx->image);
		return why;
	}
	if (tag)
		snprintf(fx->prefix, sizeof(fx->prefix), "%s-%d-%s", family, (int)getpid(), tag);
	else
		snprintf(fx->prefix, sizeof(fx->prefix), "%s-%d", family, (int)getpid());
	snprintf(fx->pool, sizeof(fx->pool), "%s-pool", fx->prefix);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/%s", fx->prefix);
	char path[400];
	mkdir(fx->dir, 0755);
	chmod(fx->dir, 0755);
	snprintf(path, sizeof(path), "%s/data", fx->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/data/images", fx->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/data/images/kctest.qcow2", fx->dir);
	if (vm_fixture_copy(fx->image, path) < 0) {
		snprintf(why, sizeof(why), "cannot copy %s", fx->image);
		return why;
	}
	return NULL;
}

/* An agent on the fixture's libvirt, data folder and pool, named after the
 * prefix, with no probe image (so "auto" falls back to TCG without a
 * boot); `extra` holds more or other settings as key, value pairs,
 * NULL-terminated (may be NULL). */
__attribute__((unused)) static struct kc_agent *
vm_fixture_agent(const struct vm_fixture *fx, const char *const *extra, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	char data[300];
	snprintf(data, sizeof(data), "%s/data", fx->dir);
	kc_config_set(cfg, "libvirt.uri", fx->uri, NULL);
	kc_config_set(cfg, "data.dir", data, NULL);
	kc_config_set(cfg, "storage.pool", fx->pool, NULL);
	kc_config_set(cfg, "probe.image", "/nonexistent/kctest.qcow2", NULL);
	kc_config_set(cfg, "host.name", fx->prefix, NULL);
	for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
		kc_config_set(cfg, extra[i], extra[i + 1], NULL);
	struct kc_agent *a = NULL;
	kc_agent_new(cfg, &a, err);
	return a;
}

/* Removes the fixture's domains, pool (with its volumes) and folder, and
 * closes the connection.  Safe after a failed or skipped init. */
__attribute__((unused)) static void vm_fixture_cleanup(struct vm_fixture *fx)
{
	if (!fx->conn)
		return;
	virDomainPtr *doms = NULL;
	int n = fx->prefix[0] ? virConnectListAllDomains(fx->conn, &doms, 0) : 0;
	for (int i = 0; i < n; i++) {
		if (strncmp(virDomainGetName(doms[i]), fx->prefix, strlen(fx->prefix)) == 0) {
			virDomainDestroy(doms[i]);
			virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_NVRAM);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	virStoragePoolPtr p = fx->pool[0] ? virStoragePoolLookupByName(fx->conn, fx->pool) : NULL;
	if (p) {
		virStorageVolPtr *vols = NULL;
		int nv = virStoragePoolListAllVolumes(p, &vols, 0);
		for (int i = 0; i < nv; i++) {
			virStorageVolDelete(vols[i], 0);
			virStorageVolFree(vols[i]);
		}
		free(vols);
		virStoragePoolDestroy(p);
		virStoragePoolDelete(p, 0);
		virStoragePoolUndefine(p);
		virStoragePoolFree(p);
	}
	if (fx->dir[0]) {
		/* dir is ours, made from our pid: a fixed, safe path. */
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/rm", "rm", "-rf", "--", fx->dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
	}
	virConnectClose(fx->conn);
	fx->conn = NULL;
}
