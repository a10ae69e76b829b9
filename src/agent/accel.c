/* SPDX-License-Identifier: Apache-2.0 */
/*
 * accel.c - KVM or TCG.  /dev/kvm existing does not mean KVM can run a guest
 * (see docs/agent.md), so in "auto" mode the agent boots a small probe image
 * under KVM and only trusts KVM when the guest prints its ready line.  The
 * outcome is cached per kernel, QEMU and libvirt version.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "domain_xml.h"
#include "io.h"
#include "json_util.h"

#define QEMU_IMG   "/usr/bin/qemu-img"
#define READY_LINE "KVMCLOUD-READY"
#define FALLBACK   "falling back to TCG (software emulation, much slower)"

bool kc_kvm_device_usable(char *reason, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(reason, len,
				 "/dev/kvm does not exist (KVM module not loaded or "
				 "no hardware virtualisation)");
		else
			snprintf(reason, len, "cannot open /dev/kvm: %s", strerror(errno));
		return false;
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (v != KVM_API_VERSION) {
		snprintf(reason, len, "/dev/kvm answers KVM API %d, expected %d", v,
			 KVM_API_VERSION);
		return false;
	}
	snprintf(reason, len, "/dev/kvm opens (KVM API %d)", v);
	return true;
}

struct cache_key {
	char kernel[65];
	char qemu[32];
	char libvirt[32];
};

static int cache_key_get(virConnectPtr conn, struct cache_key *k)
{
	struct utsname u;
	unsigned long lv, qv;
	if (uname(&u) < 0 || kc_host_versions(conn, &lv, &qv, NULL) < 0) {
		virResetLastError();
		return -1;
	}
	snprintf(k->kernel, sizeof(k->kernel), "%s", u.release);
	kc_version_str(qv, k->qemu, sizeof(k->qemu));
	kc_version_str(lv, k->libvirt, sizeof(k->libvirt));
	return 0;
}

static bool cache_read(struct kc_agent *a, const struct cache_key *k)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/accel.json", a->data_dir) < 0)
		return false;
	json_error_t jerr;
	_cleanup_json_ json_t *o = json_load_file(path, 0, &jerr);
	if (!o)
		return false;
	const char *kernel = json_string_value(json_object_get(o, "kernel"));
	const char *qemu = json_string_value(json_object_get(o, "qemu_version"));
	const char *lv = json_string_value(json_object_get(o, "libvirt_version"));
	const char *accel = json_string_value(json_object_get(o, "accel"));
	const char *reason = json_string_value(json_object_get(o, "reason"));
	if (!kernel || !qemu || !lv || !accel || !reason || strcmp(kernel, k->kernel) != 0 ||
	    strcmp(qemu, k->qemu) != 0 || strcmp(lv, k->libvirt) != 0)
		return false;
	if (strcmp(accel, "kvm") == 0)
		a->accel = KC_ACCEL_KVM;
	else if (strcmp(accel, "tcg") == 0)
		a->accel = KC_ACCEL_TCG;
	else
		return false;
	snprintf(a->accel_reason, sizeof(a->accel_reason), "%s (cached in %s)", reason, path);
	return true;
}

/* Best effort: without the cache the next start probes again.  A temp
 * file of our own (several processes may share data.dir), synced before
 * the rename so that a crash leaves the old cache or the new, never half. */
static void cache_write(struct kc_agent *a, const struct cache_key *k, enum kc_accel accel,
			const char *reason)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL, *text = NULL;
	if (asprintf(&path, "%s/accel.json", a->data_dir) < 0 ||
	    asprintf(&tmp, "%s/.accel.json.XXXXXX", a->data_dir) < 0)
		return;
	_cleanup_json_ json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kernel", k->kernel,
					     "qemu_version", k->qemu, "libvirt_version", k->libvirt,
					     "accel", kc_accel_name(accel), "reason", reason);
	if (!o || !(text = json_dumps(o, JSON_INDENT(2))))
		return;
	_cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return;
	if (kc_write_all(fd, text, strlen(text)) < 0 || kc_write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return;
	}
	kc_fsync_parent(path);
}

/* Does the log hold a line starting with the ready marker? */
static bool log_has_ready(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[1024];
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, READY_LINE, strlen(READY_LINE)) == 0)
			return true;
	return false;
}

/* Boots the probe image under KVM; 0 if it reached user space, otherwise -1
 * with why in reason. */
static int kvm_probe(struct kc_agent *a, virConnectPtr conn, char *reason, size_t len)
{
	struct kc_error err = {0};
	char tmpl[4096];
	int lock = -1;
	if (kc_tmpdir_make(a->data_dir, "probe-", tmpl, sizeof(tmpl), &lock, &err) < 0) {
		snprintf(reason, len, "KVM probe: %.380s; " FALLBACK, err.message);
		return -1;
	}
	chmod(tmpl, 0711); /* qemu (libvirt-qemu) must reach the overlay */
	char disk[4200], log[4200];
	snprintf(disk, sizeof(disk), "%s/disk.qcow2", tmpl);
	snprintf(log, sizeof(log), "%s/serial.log", tmpl);

	unsigned char rnd[4] = {0};
	kc_random_bytes(rnd, sizeof(rnd), NULL);
	char name[64];
	snprintf(name, sizeof(name), "kc-kvm-probe-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3]);

	int ret = -1;
	virDomainPtr dom = NULL;
	char *xml = NULL;
	struct kc_domain_def def = {0};
	char *argv[] = {QEMU_IMG, "create", "-q",	    "-f", "qcow2", "-F",
			"qcow2",  "-b",	    a->probe_image, disk, NULL};
	if (kc_run(argv, &err) < 0) {
		snprintf(reason, len, "KVM probe: cannot create the overlay: %.380s; " FALLBACK,
			 err.message);
		goto out;
	}
	def.name = strdup(name);
	def.accel = KC_ACCEL_KVM;
	def.vcpus = 1;
	def.memory_kib = 256 * 1024;
	def.cpu_mode = KC_CPU_DEFAULT;
	def.disks[0].device = KC_DEVICE_DISK;
	def.disks[0].bus = KC_BUS_VIRTIO;
	def.disks[0].format = KC_FORMAT_QCOW2;
	def.disks[0].path = strdup(disk);
	snprintf(def.disks[0].target, sizeof(def.disks[0].target), "vda");
	def.n_disks = 1;
	def.n_nics = 0;
	def.boot[0] = KC_BOOT_HD;
	def.n_boot = 1;
	def.serial_log = strdup(log);
	def.graphics = KC_GRAPHICS_NONE;
	if (!def.name || !def.disks[0].path || !def.serial_log) {
		snprintf(reason, len, "KVM probe: out of memory; " FALLBACK);
		goto out;
	}
	if (kc_domain_xml_build(&def, &xml, &err) < 0) {
		snprintf(reason, len, "KVM probe: %.380s; " FALLBACK, err.message);
		goto out;
	}
	/* AUTODESTROY: if we die mid-probe, libvirt kills the guest with our
	 * connection. */
	dom = virDomainCreateXML(conn, xml, VIR_DOMAIN_START_AUTODESTROY);
	if (!dom) {
		virErrorPtr e = virGetLastError();
		snprintf(reason, len,
			 "KVM probe: QEMU could not start a KVM guest: %.380s; " FALLBACK,
			 e && e->message ? e->message : "unknown error");
		virResetLastError();
		goto out;
	}
	uint64_t deadline = kc_now_ms() + (uint64_t)a->probe_timeout * 1000;
	for (;;) {
		if (log_has_ready(log)) {
			snprintf(reason, len, "KVM probe: guest reached user space under KVM");
			ret = 0;
			break;
		}
		if (virDomainIsActive(dom) != 1) {
			snprintf(reason, len,
				 "KVM probe: guest stopped before reaching user space; " FALLBACK);
			break;
		}
		if (kc_now_ms() >= deadline) {
			snprintf(reason, len,
				 "KVM probe: guest did not reach user space in %u s; " FALLBACK,
				 a->probe_timeout);
			break;
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
out:
	if (dom) {
		if (virDomainDestroy(dom) < 0)
			virResetLastError();
		virDomainFree(dom);
	}
	free(xml);
	kc_domain_def_clear(&def);
	kc_tmpdir_remove(tmpl, lock);
	return ret;
}

static void set_accel(struct kc_agent *a, enum kc_accel accel, const char *reason)
{
	pthread_mutex_lock(&a->conn_lock);
	a->accel = accel;
	snprintf(a->accel_reason, sizeof(a->accel_reason), "%s", reason);
	pthread_mutex_unlock(&a->conn_lock);
}

void kc_accel_decide(struct kc_agent *a, virConnectPtr conn, bool force_probe)
{
	char reason[512];
	enum kc_accel accel = KC_ACCEL_TCG;
	struct cache_key k;
	bool have_key = false;

	if (strcmp(a->accel_cfg, "tcg") == 0) {
		snprintf(reason, sizeof(reason), "accel=tcg in the configuration");
	} else if (strcmp(a->accel_cfg, "kvm") == 0) {
		accel = KC_ACCEL_KVM;
		snprintf(reason, sizeof(reason), "accel=kvm in the configuration (not probed)");
	} else if (!kc_kvm_device_usable(reason, sizeof(reason))) {
		char dev[256];
		snprintf(dev, sizeof(dev), "%.200s", reason);
		snprintf(reason, sizeof(reason), "%s; " FALLBACK, dev);
	} else if (access(a->probe_image, R_OK) != 0) {
		snprintf(reason, sizeof(reason),
			 "no probe image (%s), KVM not verified; using TCG (software emulation)",
			 a->probe_image);
	} else {
		/* One probe at a time: a caller that waited here while another
		 * probed takes that fresh result. */
		uint64_t gen = __atomic_load_n(&a->probe_gen, __ATOMIC_ACQUIRE);
		pthread_mutex_lock(&a->probe_lock);
		if (a->probe_gen != gen) {
			pthread_mutex_unlock(&a->probe_lock);
			return;
		}
		have_key = cache_key_get(conn, &k) == 0;
		pthread_mutex_lock(&a->conn_lock);
		bool cached = !force_probe && have_key && cache_read(a, &k);
		pthread_mutex_unlock(&a->conn_lock);
		if (!cached) {
			if (kvm_probe(a, conn, reason, sizeof(reason)) == 0)
				accel = KC_ACCEL_KVM;
			if (have_key)
				cache_write(a, &k, accel, reason);
			set_accel(a, accel, reason);
		}
		__atomic_add_fetch(&a->probe_gen, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&a->probe_lock);
		return;
	}
	set_accel(a, accel, reason);
}
