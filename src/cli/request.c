/* SPDX-License-Identifier: Apache-2.0 */
#include "request.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "json_util.h"
#include "validate.h"

/* Generous local bounds: they only stop absurd input early; the server
 * applies the real rules of docs/api.md. */
#define VCPUS_MAX      1024ULL
#define MEMORY_MIB_MAX (16ULL << 20) /* 16 TiB */
#define DISK_GIB_MAX   (1ULL << 20)  /* 1 PiB */
#define SHUTDOWN_MAX_S 3600ULL	     /* the API's bound */

static int set_new(json_t *obj, const char *key, json_t *val, struct kc_error *err)
{
	if (!val || json_object_set_new(obj, key, val) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

static int set_uint(json_t *obj, const char *key, const struct kc_args *a, const char *opt,
		    unsigned long long min, unsigned long long max, struct kc_error *err)
{
	const char *v = kc_args_value(a, opt);
	if (!v)
		return 0;
	char what[64];
	snprintf(what, sizeof(what), "--%s", opt);
	unsigned long long n;
	if (kc_parse_uint(v, min, max, what, &n, err) < 0)
		return -1;
	return set_new(obj, key, json_integer((json_int_t)n), err);
}

static int set_str(json_t *obj, const char *key, const struct kc_args *a, const char *opt,
		   struct kc_error *err)
{
	const char *v = kc_args_value(a, opt);
	if (!v)
		return 0;
	if (!*v)
		return kc_error_set(err, KC_ERR_INVALID, "--%s must not be empty", opt);
	json_t *s = json_string(v);
	if (!s)
		return kc_error_set(err, KC_ERR_INVALID, "--%s is not valid UTF-8", opt);
	return set_new(obj, key, s, err);
}

/* NETWORK[,ip=A][,mac=M]: a NIC on a kvmcloud guest network. */
static json_t *gnet_nic(const char *spec, struct kc_error *err)
{
	_cleanup_free_ char *copy = strdup(spec);
	_cleanup_json_ json_t *nic = json_object();
	char *save = NULL;
	if (!copy || !nic) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	char *name = strtok_r(copy, ",", &save);
	if (!name || kc_name_validate(name, "--nic network", err) < 0 ||
	    set_new(nic, "network", json_string(name), err) < 0)
		return NULL;
	for (char *t = strtok_r(NULL, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool ip = strncmp(t, "ip=", 3) == 0, mac = strncmp(t, "mac=", 4) == 0;
		if ((!ip && !mac) || json_object_get(nic, ip ? "ip" : "mac") ||
		    (mac && kc_mac_validate(t + 4, false, NULL, NULL) < 0) ||
		    (ip && strlen(t + 3) > 15)) {
			kc_error_set(err, KC_ERR_INVALID,
				     "--nic %s: expected NETWORK[,ip=A.B.C.D][,mac=MAC]", spec);
			return NULL;
		}
		if (set_new(nic, ip ? "ip" : "mac", json_string(t + (ip ? 3 : 4)), err) < 0)
			return NULL;
	}
	return steal_ptr(&nic);
}

json_t *kc_req_nic(const char *spec, struct kc_error *err)
{
	/* Not user, network=NAME or bridge=NAME: a guest network's name. */
	size_t head = strcspn(spec, ",=");
	if (spec[head] != '=' && !(head == 4 && strncmp(spec, "user", 4) == 0))
		return gnet_nic(spec, err);

	_cleanup_free_ char *copy = strdup(spec);
	_cleanup_json_ json_t *nic = json_object();
	if (!copy || !nic) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	char *mac = NULL;
	char *comma = strchr(copy, ',');
	if (comma) {
		*comma = '\0';
		if (strncmp(comma + 1, "mac=", 4) != 0 ||
		    kc_mac_validate(comma + 5, false, NULL, NULL) < 0) {
			kc_error_set(err, KC_ERR_INVALID,
				     "--nic %s: after ',' expected mac=XX:XX:XX:XX:XX:XX", spec);
			return NULL;
		}
		mac = comma + 5;
	}
	char *eq = strchr(copy, '=');
	const char *type = copy;
	const char *source = NULL;
	if (eq) {
		*eq = '\0';
		source = eq + 1;
	}
	bool user = strcmp(type, "user") == 0;
	if (!(user && !source) &&
	    !((strcmp(type, "network") == 0 || strcmp(type, "bridge") == 0) && source)) {
		kc_error_set(err, KC_ERR_INVALID,
			     "--nic %s: expected user, network=NAME or bridge=NAME, then "
			     "optionally ,mac=MAC",
			     spec);
		return NULL;
	}
	if (source && kc_name_validate(source, "--nic source", err) < 0) {
		/* kc_name_validate reports KC_ERR_INVALID: a usage error, as wanted. */
		return NULL;
	}
	if (set_new(nic, "type", json_string(type), err) < 0 ||
	    (source && set_new(nic, "source", json_string(source), err) < 0) ||
	    (mac && set_new(nic, "mac", json_string(mac), err) < 0))
		return NULL;
	return steal_ptr(&nic);
}

static json_t *boot_list(const char *spec, struct kc_error *err)
{
	_cleanup_json_ json_t *arr = json_array();
	_cleanup_free_ char *copy = strdup(spec);
	if (!arr || !copy) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "hd") != 0 && strcmp(t, "cdrom") != 0 && strcmp(t, "network") != 0) {
			kc_error_set(err, KC_ERR_INVALID,
				     "--boot: '%s' is not one of hd, cdrom, network", t);
			return NULL;
		}
		if (json_array_size(arr) >= 3) {
			kc_error_set(err, KC_ERR_INVALID, "--boot: at most 3 devices");
			return NULL;
		}
		json_array_append_new(arr, json_string(t));
	}
	if (json_array_size(arr) == 0) {
		kc_error_set(err, KC_ERR_INVALID, "--boot must name at least one device");
		return NULL;
	}
	return steal_ptr(&arr);
}

static json_t *read_user_data(const char *path, struct kc_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		kc_error_set_errno(err, errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_INTERNAL, errno,
				   "cannot read --user-data %s", path);
		return NULL;
	}
	_cleanup_free_ char *buf = malloc(KC_USER_DATA_MAX + 1);
	if (!buf) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, KC_USER_DATA_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					   "cannot read --user-data %s", path);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > KC_USER_DATA_MAX) {
			kc_error_set(err, KC_ERR_TOO_LARGE, "--user-data %s is larger than %d KiB",
				     path, KC_USER_DATA_MAX / 1024);
			return NULL;
		}
	}
	json_t *s = json_stringn(buf, len);
	if (!s)
		kc_error_set(err, KC_ERR_INVALID, "--user-data %s is not UTF-8 text", path);
	return s;
}

json_t *kc_req_vm_create(const struct kc_args *a, struct kc_error *err)
{
	_cleanup_json_ json_t *req = json_object();
	if (!req) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	const char *name = a->npos > 0 ? a->pos[0] : NULL;
	if (!name) {
		kc_error_set(err, KC_ERR_INVALID, "missing VM name");
		return NULL;
	}
	if (kc_name_validate(name, "VM name", err) < 0)
		return NULL;
	if (!kc_args_value(a, "memory")) {
		kc_error_set(err, KC_ERR_INVALID, "--memory MIB is required");
		return NULL;
	}
	if (!kc_args_value(a, "image") && !kc_args_value(a, "iso")) {
		kc_error_set(err, KC_ERR_INVALID, "--image IMG is required (or --iso NAME)");
		return NULL;
	}
	if (set_new(req, "name", json_string(name), err) < 0 ||
	    set_uint(req, "vcpus", a, "vcpus", 1, VCPUS_MAX, err) < 0 ||
	    set_uint(req, "memory_mib", a, "memory", 1, MEMORY_MIB_MAX, err) < 0 ||
	    set_str(req, "image", a, "image", err) < 0 ||
	    set_uint(req, "disk_gib", a, "disk-size", 0, DISK_GIB_MAX, err) < 0)
		return NULL;

	const struct kc_optval *dd = kc_args_list(a, "data-disk");
	if (dd->n > 0) {
		json_t *arr = json_array();
		if (set_new(req, "data_disks_gib", arr, err) < 0)
			return NULL;
		for (unsigned i = 0; i < dd->n; i++) {
			unsigned long long g;
			if (kc_parse_uint(dd->vals[i], 1, DISK_GIB_MAX, "--data-disk", &g, err) < 0)
				return NULL;
			json_array_append_new(arr, json_integer((json_int_t)g));
		}
	}
	if (set_str(req, "iso", a, "iso", err) < 0)
		return NULL;

	const struct kc_optval *nics = kc_args_list(a, "nic");
	if (nics->n > 0) {
		json_t *arr = json_array();
		if (set_new(req, "nics", arr, err) < 0)
			return NULL;
		for (unsigned i = 0; i < nics->n; i++) {
			json_t *nic = kc_req_nic(nics->vals[i], err);
			if (!nic)
				return NULL;
			json_array_append_new(arr, nic);
		}
	}
	const struct kc_optval *sgs = kc_args_list(a, "sg");
	if (sgs->n > 0) {
		json_t *arr = json_array();
		if (set_new(req, "security_groups", arr, err) < 0)
			return NULL;
		for (unsigned i = 0; i < sgs->n; i++) {
			if (kc_name_validate(sgs->vals[i], "--sg", err) < 0)
				return NULL;
			json_array_append_new(arr, json_string(sgs->vals[i]));
		}
	}
	const char *boot = kc_args_value(a, "boot");
	if (boot) {
		json_t *b = boot_list(boot, err);
		if (!b || set_new(req, "boot", b, err) < 0)
			return NULL;
	}
	const char *gfx = kc_args_value(a, "graphics");
	if (gfx && strcmp(gfx, "none") != 0 && strcmp(gfx, "vnc") != 0) {
		kc_error_set(err, KC_ERR_INVALID, "--graphics: '%s' is not none or vnc", gfx);
		return NULL;
	}
	if (set_str(req, "graphics", a, "graphics", err) < 0)
		return NULL;
	if (kc_args_has(a, "autostart") && set_new(req, "autostart", json_true(), err) < 0)
		return NULL;
	if (kc_args_has(a, "no-start") && set_new(req, "start", json_false(), err) < 0)
		return NULL;
	if (set_str(req, "hostname", a, "hostname", err) < 0)
		return NULL;
	const char *ud = kc_args_value(a, "user-data");
	if (ud) {
		json_t *s = read_user_data(ud, err);
		if (!s || set_new(req, "user_data", s, err) < 0)
			return NULL;
	}
	return steal_ptr(&req);
}

json_t *kc_req_vm_shutdown(const struct kc_args *a, struct kc_error *err)
{
	_cleanup_json_ json_t *req = json_object();
	if (!req) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (set_uint(req, "timeout_s", a, "timeout", 0, SHUTDOWN_MAX_S, err) < 0)
		return NULL;
	/* The CLI forces off a guest that ignores the ACPI request unless told
	 * not to, whatever the server's default: say so explicitly. */
	if (set_new(req, "force", json_boolean(!kc_args_has(a, "no-force")), err) < 0)
		return NULL;
	return steal_ptr(&req);
}

json_t *kc_req_host_check(const struct kc_args *a)
{
	if (!kc_args_has(a, "probe"))
		return NULL;
	return json_pack("{s:b}", "probe_kvm", 1);
}

char *kc_req_path(const char *collection, const char *name, const char *suffix, const char *what,
		  struct kc_error *err)
{
	if (kc_name_validate(name, what, err) < 0)
		return NULL;
	char *p;
	if (asprintf(&p, "/api/v1/%s/%s%s", collection, name, suffix ? suffix : "") < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	return p;
}
