/* SPDX-License-Identifier: Apache-2.0 */
#include "vmspec.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"

static const char *const accel_names[] = {"tcg", "kvm"};
static const char *const cpu_mode_names[] = {"default", "custom", "host-model", "host-passthrough"};
static const char *const nic_type_names[] = {"user", "network", "bridge"};
static const char *const boot_names[] = {"hd", "cdrom", "network"};
static const char *const format_names[] = {"qcow2", "raw"};
static const char *const clone_names[] = {"linked", "full"};

#define NAME_OF(tab, v) ((size_t)(v) < KC_ARRAY_SIZE(tab) ? tab[v] : "unknown")

const char *kc_accel_name(enum kc_accel a)
{
	return NAME_OF(accel_names, a);
}
const char *kc_cpu_mode_name(enum kc_cpu_mode m)
{
	return NAME_OF(cpu_mode_names, m);
}
const char *kc_nic_type_name(enum kc_nic_type t)
{
	return NAME_OF(nic_type_names, t);
}
const char *kc_boot_dev_name(enum kc_boot_dev d)
{
	return NAME_OF(boot_names, d);
}
const char *kc_disk_format_name(enum kc_disk_format f)
{
	return NAME_OF(format_names, f);
}
const char *kc_clone_mode_name(enum kc_clone_mode m)
{
	return NAME_OF(clone_names, m);
}

/* Index of s in tab, or -1. */
static int lookup(const char *const *tab, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(tab[i], s) == 0)
			return (int)i;
	return -1;
}

int kc_cpu_mode_parse(const char *s, enum kc_cpu_mode *ret, struct kc_error *err)
{
	int i = lookup(cpu_mode_names, KC_ARRAY_SIZE(cpu_mode_names), s);
	if (i < 0)
		return kc_error_set(
			err, KC_ERR_INVALID,
			"guest.cpu.mode must be custom, host-model or host-passthrough");
	*ret = (enum kc_cpu_mode)i;
	return 0;
}

/* {"network": N, "ip": A, "mac": M}: a kvmcloud guest network (gnet.h). */
static int parse_gnet_nic(const json_t *j, const char *what, struct kc_nic_request *nic,
			  struct kc_error *err)
{
	const char *network = NULL, *ip = NULL;
	char nwhat[48];
	struct in_addr a;

	snprintf(nwhat, sizeof(nwhat), "%s.network", what);
	if (json_object_get(j, "type") || json_object_get(j, "source"))
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s: \"network\" takes no \"type\" or \"source\"", what);
	if (kc_json_get_string(j, "network", true, KC_NAME_MAX, &network, err) < 0 ||
	    kc_name_validate(network, nwhat, err) < 0 ||
	    kc_json_get_string(j, "ip", false, 15, &ip, err) < 0)
		return -1;
	if (ip && inet_pton(AF_INET, ip, &a) != 1)
		return kc_error_set(err, KC_ERR_INVALID, "%s.ip must be an IPv4 address A.B.C.D",
				    what);
	snprintf(nic->network, sizeof(nic->network), "%s", network);
	if (ip)
		snprintf(nic->ip, sizeof(nic->ip), "%s", ip);
	nic->type = KC_NIC_NETWORK;
	return 0;
}

static int parse_nic(const json_t *j, size_t idx, struct kc_nic_request *nic, struct kc_error *err)
{
	static const char *const keys[] = {"type", "source", "mac", "network", "ip", NULL};
	char what[32];
	snprintf(what, sizeof(what), "nics[%zu]", idx);
	if (kc_json_check_keys(j, keys, what, err) < 0)
		return -1;
	const char *type = NULL, *source = NULL, *mac = NULL;
	if (json_object_get(j, "network")) {
		if (parse_gnet_nic(j, what, nic, err) < 0)
			return -1;
	} else {
		if (json_object_get(j, "ip"))
			return kc_error_set(err, KC_ERR_INVALID, "%s.ip needs a \"network\"", what);
		if (kc_json_get_string(j, "type", true, 16, &type, err) < 0 ||
		    kc_json_get_string(j, "source", false, KC_NAME_MAX, &source, err) < 0)
			return -1;
		int t = lookup(nic_type_names, KC_ARRAY_SIZE(nic_type_names), type);
		if (t < 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s.type must be user, network or bridge", what);
		nic->type = (enum kc_nic_type)t;
		if (nic->type == KC_NIC_USER) {
			if (source)
				return kc_error_set(err, KC_ERR_INVALID,
						    "%s: a user NIC takes no source", what);
		} else {
			char swhat[48];
			snprintf(swhat, sizeof(swhat), "%s.source", what);
			if (!source)
				return kc_error_set(err, KC_ERR_INVALID,
						    "%s is required for a %s NIC", swhat, type);
			if (kc_name_validate(source, swhat, err) < 0)
				return -1;
			snprintf(nic->source, sizeof(nic->source), "%s", source);
		}
	}
	if (kc_json_get_string(j, "mac", false, 17, &mac, err) < 0)
		return -1;
	if (mac) {
		if (kc_mac_validate(mac, true, NULL, NULL) < 0)
			return kc_error_set(
				err, KC_ERR_INVALID,
				"%s.mac must be a unicast MAC such as 52:54:00:12:34:56", what);
		snprintf(nic->mac, sizeof(nic->mac), "%s", mac);
	}
	return 0;
}

static int parse_array(const json_t *obj, const char *key, size_t max, json_t **ret,
		       struct kc_error *err)
{
	json_t *a = json_object_get(obj, key);
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must be an array", key);
	if (json_array_size(a) > max)
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" has more than %zu entries", key,
				    max);
	*ret = a;
	return 0;
}

static int parse_request(const json_t *obj, struct kc_vm_request *r, struct kc_error *err)
{
	static const char *const keys[] = {"name",     "vcpus",		 "memory_mib", "image",
					   "disk_gib", "data_disks_gib", "iso",	       "nics",
					   "boot",     "graphics",	 "autostart",  "start",
					   "hostname", "user_data",	 "pool",       "clone",
					   NULL};
	if (kc_json_check_keys(obj, keys, "the VM request", err) < 0)
		return -1;

	const char *name = NULL, *image = NULL, *iso = NULL, *graphics = NULL, *hostname = NULL,
		   *user_data = NULL;
	uint64_t vcpus = 1;
	if (kc_json_get_string(obj, "name", true, 1024, &name, err) < 0 ||
	    kc_name_validate(name, "VM name", err) < 0)
		return -1;
	snprintf(r->name, sizeof(r->name), "%s", name);

	if (kc_json_get_uint(obj, "vcpus", false, 1, KC_MAX_VCPUS, &vcpus, err) < 0 ||
	    kc_json_get_uint(obj, "memory_mib", true, KC_MIN_MEMORY_MIB, UINT64_C(1) << 32,
			     &r->memory_mib, err) < 0 ||
	    kc_json_get_uint(obj, "disk_gib", false, 0, KC_MAX_DISK_GIB, &r->disk_gib, err) < 0)
		return -1;
	r->vcpus = (unsigned)vcpus;

	if (kc_json_get_string(obj, "image", false, 1024, &image, err) < 0 ||
	    (image && kc_name_validate(image, "image name", err) < 0))
		return -1;
	if (image)
		snprintf(r->image, sizeof(r->image), "%s", image);
	if (kc_json_get_string(obj, "iso", false, 1024, &iso, err) < 0 ||
	    (iso && kc_name_validate(iso, "ISO name", err) < 0))
		return -1;
	if (iso)
		snprintf(r->iso, sizeof(r->iso), "%s", iso);
	if (!image && !iso)
		return kc_error_set(err, KC_ERR_INVALID, "\"image\" or \"iso\" is required");
	if (!image && r->disk_gib == 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"disk_gib\" is required when installing from an ISO");

	json_t *a = NULL;
	if (parse_array(obj, "data_disks_gib", KC_MAX_DATA_DISKS, &a, err) < 0)
		return -1;
	for (size_t i = 0; a && i < json_array_size(a); i++) {
		json_t *v = json_array_get(a, i);
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > KC_MAX_DISK_GIB)
			return kc_error_set(err, KC_ERR_INVALID,
					    "data_disks_gib[%zu] must be an integer from 1 to %d",
					    i, KC_MAX_DISK_GIB);
		r->data_disks_gib[r->n_data_disks++] = (uint64_t)json_integer_value(v);
	}

	a = NULL;
	if (parse_array(obj, "nics", KC_MAX_NICS, &a, err) < 0)
		return -1;
	if (a) {
		for (size_t i = 0; i < json_array_size(a); i++)
			if (parse_nic(json_array_get(a, i), i, &r->nics[r->n_nics++], err) < 0)
				return -1;
	} else {
		r->nics[0].type = KC_NIC_USER;
		r->n_nics = 1;
	}

	a = NULL;
	if (parse_array(obj, "boot", KC_MAX_BOOT, &a, err) < 0)
		return -1;
	if (a) {
		for (size_t i = 0; i < json_array_size(a); i++) {
			const char *d = json_string_value(json_array_get(a, i));
			int b = lookup(boot_names, KC_ARRAY_SIZE(boot_names), d);
			if (b < 0)
				return kc_error_set(err, KC_ERR_INVALID,
						    "boot[%zu] must be hd, cdrom or network", i);
			for (size_t k = 0; k < r->n_boot; k++)
				if (r->boot[k] == (enum kc_boot_dev)b)
					return kc_error_set(err, KC_ERR_INVALID,
							    "boot lists \"%s\" twice", d);
			r->boot[r->n_boot++] = (enum kc_boot_dev)b;
		}
		if (r->n_boot == 0)
			return kc_error_set(err, KC_ERR_INVALID, "\"boot\" must not be empty");
	} else if (r->iso[0] && !r->image[0]) {
		r->boot[0] = KC_BOOT_CDROM;
		r->boot[1] = KC_BOOT_HD;
		r->n_boot = 2;
	} else {
		r->boot[0] = KC_BOOT_HD;
		r->n_boot = 1;
	}

	if (kc_json_get_string(obj, "graphics", false, 16, &graphics, err) < 0)
		return -1;
	if (!graphics || !strcmp(graphics, "none"))
		r->graphics = KC_GRAPHICS_NONE;
	else if (!strcmp(graphics, "vnc"))
		r->graphics = KC_GRAPHICS_VNC;
	else
		return kc_error_set(err, KC_ERR_INVALID, "\"graphics\" must be none or vnc");

	r->start = true;
	if (kc_json_get_bool(obj, "autostart", false, &r->autostart, err) < 0 ||
	    kc_json_get_bool(obj, "start", false, &r->start, err) < 0)
		return -1;

	if (kc_json_get_string(obj, "hostname", false, 63, &hostname, err) < 0)
		return -1;
	if (hostname && kc_hostname_validate(hostname, err) < 0)
		return -1;
	if (hostname) {
		snprintf(r->hostname, sizeof(r->hostname), "%s", hostname);
	} else {
		/* From the VM name, which may hold '_' (never valid in a host
		 * name) and runs of '.' or '-' at odd places: map '_' to '-'
		 * and fall back to "kcvm" if that still is no host name. */
		/* A 64-character name is cut to the 63 a host name may have. */
		snprintf(r->hostname, sizeof(r->hostname), "%.63s", r->name);
		for (char *p = r->hostname; *p; p++)
			if (*p == '_')
				*p = '-';
		if (kc_hostname_validate(r->hostname, NULL) < 0)
			snprintf(r->hostname, sizeof(r->hostname), "kcvm");
	}

	const char *pool = NULL, *clone = NULL;
	if (kc_json_get_string(obj, "pool", false, 1024, &pool, err) < 0 ||
	    (pool && kc_name_validate(pool, "pool name", err) < 0) ||
	    kc_json_get_string(obj, "clone", false, 16, &clone, err) < 0)
		return -1;
	snprintf(r->pool, sizeof(r->pool), "%s", pool ? pool : "default");
	if (clone) {
		int m = lookup(clone_names, KC_ARRAY_SIZE(clone_names), clone);
		if (m < 0)
			return kc_error_set(err, KC_ERR_INVALID, "\"clone\" must be linked or full");
		if (!image)
			return kc_error_set(err, KC_ERR_INVALID,
					    "\"clone\" needs an \"image\" (a template to clone)");
		r->clone = (enum kc_clone_mode)m;
	}

	if (kc_json_get_string(obj, "user_data", false, KC_MAX_USER_DATA, &user_data, err) < 0)
		return -1;
	if (user_data) {
		r->user_data = strdup(user_data);
		if (!r->user_data)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

int kc_vm_request_from_json(const json_t *obj, struct kc_vm_request *ret, struct kc_error *err)
{
	struct kc_vm_request r = {0};
	if (parse_request(obj, &r, err) < 0) {
		kc_vm_request_clear(&r);
		return -1;
	}
	*ret = r;
	return 0;
}

void kc_vm_request_clear(struct kc_vm_request *req)
{
	if (!req)
		return;
	free(req->user_data);
	req->user_data = NULL;
}

json_t *kc_vm_request_to_json(const struct kc_vm_request *r)
{
	json_t *o = json_object();
	json_t *disks = json_array();
	json_t *nics = json_array();
	json_t *boot = json_array();
	for (size_t i = 0; i < r->n_data_disks; i++)
		json_array_append_new(disks, json_integer((json_int_t)r->data_disks_gib[i]));
	for (size_t i = 0; i < r->n_nics; i++) {
		json_t *n = r->nics[i].network[0]
				    ? json_pack("{s:s}", "network", r->nics[i].network)
				    : json_pack("{s:s}", "type", kc_nic_type_name(r->nics[i].type));
		if (r->nics[i].ip[0])
			json_object_set_new(n, "ip", json_string(r->nics[i].ip));
		if (r->nics[i].source[0])
			json_object_set_new(n, "source", json_string(r->nics[i].source));
		if (r->nics[i].mac[0])
			json_object_set_new(n, "mac", json_string(r->nics[i].mac));
		json_array_append_new(nics, n);
	}
	for (size_t i = 0; i < r->n_boot; i++)
		json_array_append_new(boot, json_string(kc_boot_dev_name(r->boot[i])));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "vcpus", json_integer(r->vcpus));
	json_object_set_new(o, "memory_mib", json_integer((json_int_t)r->memory_mib));
	if (r->image[0])
		json_object_set_new(o, "image", json_string(r->image));
	json_object_set_new(o, "disk_gib", json_integer((json_int_t)r->disk_gib));
	json_object_set_new(o, "data_disks_gib", disks);
	if (r->iso[0])
		json_object_set_new(o, "iso", json_string(r->iso));
	json_object_set_new(o, "nics", nics);
	json_object_set_new(o, "boot", boot);
	json_object_set_new(o, "graphics",
			    json_string(r->graphics == KC_GRAPHICS_VNC ? "vnc" : "none"));
	json_object_set_new(o, "autostart", json_boolean(r->autostart));
	json_object_set_new(o, "start", json_boolean(r->start));
	json_object_set_new(o, "hostname", json_string(r->hostname));
	if (r->user_data)
		json_object_set_new(o, "user_data", json_string(r->user_data));
	json_object_set_new(o, "pool", json_string(r->pool[0] ? r->pool : "default"));
	if (r->image[0])
		json_object_set_new(o, "clone", json_string(kc_clone_mode_name(r->clone)));
	return o;
}

void kc_domain_def_clear(struct kc_domain_def *def)
{
	if (!def)
		return;
	free(def->name);
	free(def->cpu_model);
	free(def->machine);
	for (size_t i = 0; i < def->n_disks && i < KC_MAX_DISKS; i++) {
		free(def->disks[i].path);
		free(def->disks[i].nfs_host);
		free(def->disks[i].nfs_backing);
	}
	for (size_t i = 0; i < def->n_nics && i < KC_MAX_NICS; i++)
		free(def->nics[i].source);
	free(def->serial_log);
	free(def->vnc_password);
	free(def->owner);
	memset(def, 0, sizeof(*def));
}
