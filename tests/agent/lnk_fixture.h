/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lnk_fixture.h - a private agent for the link and dispatch tests: data
 * under /tmp/kclnk-<pid>-<tag>, its own storage pool, everything named
 * kclnk-<pid>-*, removed again at the end, pass or fail.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"

struct lnk_fixture {
	char dir[256], pool[96], prefix[48];
	const char *uri;
	virConnectPtr conn;
};

static void lnk_quiet(void *opaque, virErrorPtr e)
{
}

static int lnk_copy(const char *from, const char *to)
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

/* Returns a reason to skip, or NULL when ready. */
static const char *lnk_fixture_init(struct lnk_fixture *fx, const char *tag)
{
	const char *img = getenv("KC_TEST_IMAGE");
	if (!img)
		img = "/var/cache/kvmcloud/test-image/kctest.qcow2";
	fx->uri = getenv("KC_TEST_URI") ? getenv("KC_TEST_URI") : "qemu:///system";
	virSetErrorFunc(NULL, lnk_quiet);
	fx->conn = virConnectOpen(fx->uri);
	if (!fx->conn)
		return "libvirtd not reachable";
	if (access(img, R_OK) != 0)
		return "no test image (scripts/build-test-image.sh)";
	snprintf(fx->prefix, sizeof(fx->prefix), "kclnk-%d-%s", (int)getpid(), tag);
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
	if (lnk_copy(img, path) < 0)
		return "cannot copy the test image";
	return NULL;
}

static struct kc_agent *lnk_agent(struct lnk_fixture *fx, struct kc_error *err)
{
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	char data[300];
	snprintf(data, sizeof(data), "%s/data", fx->dir);
	kc_config_set(cfg, "libvirt.uri", fx->uri, NULL);
	kc_config_set(cfg, "data.dir", data, NULL);
	kc_config_set(cfg, "storage.pool", fx->pool, NULL);
	kc_config_set(cfg, "probe.image", "/nonexistent/kctest.qcow2", NULL);
	kc_config_set(cfg, "host.name", fx->prefix, NULL);
	struct kc_agent *a = NULL;
	kc_agent_new(cfg, &a, err);
	return a;
}

static void lnk_fixture_cleanup(struct lnk_fixture *fx)
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
