/* SPDX-License-Identifier: Apache-2.0 */
/* agent.c - the agent's life: configuration, start-up checks, teardown. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "sg_nft.h"
#include "hostfw.h"
#include "hostnet.h"

/* An absolute folder from the config, created if missing, made canonical so
 * that it compares equal to the path libvirt reports for the pool. */
static char *config_dir(const struct kc_config *cfg, const char *key, const char *def, mode_t mode,
			struct kc_error *err)
{
	const char *v = kc_config_get(cfg, key, def);
	if (!v || v[0] != '/' || strlen(v) >= PATH_MAX) {
		kc_error_set(err, KC_ERR_INVALID, "%s must be an absolute path, not '%s'", key,
			     v ? v : "");
		return NULL;
	}
	if (kc_mkdir_p(v, mode, err) < 0)
		return NULL;
	char *real = realpath(v, NULL);
	if (!real)
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "%s %s", key, v);
	return real;
}

static char *default_host_name(void)
{
	char host[256];
	if (gethostname(host, sizeof(host)) < 0)
		return strdup("localhost");
	host[sizeof(host) - 1] = '\0';
	struct addrinfo hints = {.ai_flags = AI_CANONNAME, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) == 0) {
		char *canon = res->ai_canonname ? strdup(res->ai_canonname) : NULL;
		freeaddrinfo(res);
		if (canon)
			return canon;
	}
	return strdup(host);
}

static int read_config(struct kc_agent *a, const struct kc_config *cfg, struct kc_error *err)
{
	a->uri = strdup(kc_config_get(cfg, "libvirt.uri", "qemu:///system"));
	if (!(a->data_dir = config_dir(cfg, "data.dir", "/var/lib/kvmcloud", 0755, err)))
		return -1;
	_cleanup_free_ char *pool = NULL, *images = NULL, *console = NULL;
	if (asprintf(&pool, "%s/pool", a->data_dir) < 0 ||
	    asprintf(&images, "%s/images", a->data_dir) < 0 ||
	    asprintf(&console, "%s/console", a->data_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* qemu (user libvirt-qemu) opens disks and images: 0755; the serial
	 * logs are written by virtlogd as root and may hold secrets: 0750. */
	if (!(a->storage_dir = config_dir(cfg, "storage.dir", pool, 0755, err)) ||
	    !(a->images_dir = config_dir(cfg, "images.dir", images, 0755, err)) ||
	    !(a->console_dir = config_dir(cfg, "console.dir", console, 0750, err)))
		return -1;
	a->pool_name = strdup(kc_config_get(cfg, "storage.pool", KC_POOL_DEFAULT));
	if (!a->uri || !a->pool_name)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_name_validate(a->pool_name, "storage.pool", err) < 0)
		return -1;

	_cleanup_free_ char *probe = NULL;
	if (asprintf(&probe, "%s/kctest.qcow2", a->images_dir) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	a->probe_image = strdup(kc_config_get(cfg, "probe.image", probe));
	unsigned long long t;
	if (kc_config_get_uint(cfg, "probe.timeout", 20, 1, 600, &t, err) < 0)
		return -1;
	a->probe_timeout = t;

	const char *accel = kc_config_get(cfg, "accel", "auto");
	if (strcmp(accel, "auto") != 0 && strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "accel must be auto, kvm or tcg, not '%s'",
				    accel);
	a->accel_cfg = strdup(accel);

	const char *mode = kc_config_get(cfg, "guest.cpu.mode", NULL);
	const char *model = kc_config_get(cfg, "guest.cpu.model", NULL);
	if (mode && *mode && kc_cpu_mode_parse(mode, &a->cpu_mode, err) < 0)
		return -1;
	if (model && *model) {
		/* A model alone means custom, as in CloudStack's agent.properties. */
		if (!mode || !*mode)
			a->cpu_mode = KC_CPU_CUSTOM;
		else if (a->cpu_mode != KC_CPU_CUSTOM)
			return kc_error_set(
				err, KC_ERR_INVALID,
				"guest.cpu.model is only used with guest.cpu.mode=custom, "
				"not %s",
				mode);
		if (kc_name_validate(model, "guest.cpu.model", err) < 0 ||
		    !(a->cpu_model = strdup(model)))
			return -1;
	}
	const char *hn = kc_config_get(cfg, "host.name", NULL);
	a->host_name = hn && *hn ? strdup(hn) : default_host_name();
	if (!a->probe_image || !a->accel_cfg || !a->host_name)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	/* Where the host firewall lives (hostfw.h): `check` reports it too. */
	return kc_hostfw_configure(cfg, err);
}

/* Connects and settles what depends on the host: accelerator, CPU mode,
 * the storage pool. */
static int agent_start(struct kc_agent *a, struct kc_error *err)
{
	if (kc_conn_open(a, err) < 0)
		return -1;
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	kc_accel_decide(a, conn, false);
	if (kc_cpumode_validate(a, conn, err) < 0)
		return -1;
	_cleanup_pool_ virStoragePoolPtr pool = kc_pool_get(a, conn, err);
	if (!pool)
		return -1;
	/* Left by processes that died in the middle of a create, a seed or a
	 * probe; only what their records and locks prove dead is removed. */
	kc_intents_reap(a, conn, pool);
	kc_tmpdirs_reap(a->data_dir);
	return 0;
}

int kc_agent_new(const struct kc_config *cfg, struct kc_agent **ret, struct kc_error *err)
{
	struct kc_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	pthread_mutex_init(&a->conn_lock, NULL);
	pthread_mutex_init(&a->create_lock, NULL);
	pthread_mutex_init(&a->event_lock, NULL);
	pthread_mutex_init(&a->probe_lock, NULL);
	a->lifecycle_cb = -1;
	if (read_config(a, cfg, err) < 0 || agent_start(a, err) < 0 || kc_sg_init(a, err) < 0) {
		kc_agent_free(a);
		return -1;
	}
	*ret = a;
	return 0;
}

void kc_agent_free(struct kc_agent *a)
{
	if (!a)
		return;
	kc_sg_free(a); /* its worker uses the connection */
	kc_hostnet_free(a->hostnet);
	kc_conn_close(a);
	free(a->uri);
	free(a->data_dir);
	free(a->storage_dir);
	free(a->images_dir);
	free(a->console_dir);
	free(a->pool_name);
	free(a->probe_image);
	free(a->host_name);
	free(a->accel_cfg);
	free(a->cpu_model);
	pthread_mutex_destroy(&a->conn_lock);
	pthread_mutex_destroy(&a->create_lock);
	pthread_mutex_destroy(&a->event_lock);
	pthread_mutex_destroy(&a->probe_lock);
	free(a);
}

const char *kc_agent_host_name(const struct kc_agent *a)
{
	return a->host_name;
}

enum kc_accel kc_agent_accel(const struct kc_agent *a)
{
	struct kc_agent *m = (struct kc_agent *)a;
	pthread_mutex_lock(&m->conn_lock);
	enum kc_accel v = a->accel;
	pthread_mutex_unlock(&m->conn_lock);
	return v;
}

int kc_agent_host_facts(struct kc_agent *a, json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	return kc_host_facts_collect(a, conn, ret, err);
}

int kc_agent_host_check(struct kc_agent *a, bool probe_kvm, json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	if (probe_kvm)
		kc_accel_decide(a, conn, true);
	return kc_host_check_run(a, conn, ret, err);
}
