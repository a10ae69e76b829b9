/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_def.c - a pool definition from JSON and back, with every check a
 * user's value needs before it reaches libvirt XML, a libnfs URL or a
 * QEMU disk source: paths, host names, IQNs are of small fixed alphabets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "pool_backend.h"

static const char *const type_names[] = {
	[KC_POOL_DIR] = "dir",	   [KC_POOL_MOUNTPOINT] = "mountpoint", [KC_POOL_NFS] = "nfs",
	[KC_POOL_ISCSI] = "iscsi", [KC_POOL_LOGICAL] = "logical",
};

const char *kc_pool_type_name(enum kc_pool_type t)
{
	return (size_t)t < KC_ARRAY_SIZE(type_names) ? type_names[t] : "unknown";
}

int kc_pool_type_parse(const char *s, enum kc_pool_type *ret, struct kc_error *err)
{
	for (size_t i = 0; s && i < KC_ARRAY_SIZE(type_names); i++)
		if (strcmp(s, type_names[i]) == 0) {
			*ret = (enum kc_pool_type)i;
			return 0;
		}
	return kc_error_set(err, KC_ERR_INVALID,
			    "pool type must be dir, mountpoint, nfs, iscsi or logical");
}

const char *kc_vol_format_name(enum kc_vol_format f)
{
	return f == KC_VOL_RAW ? "raw" : "qcow2";
}

int kc_vol_format_parse(const char *s, enum kc_vol_format *ret, struct kc_error *err)
{
	if (s && strcmp(s, "qcow2") == 0)
		*ret = KC_VOL_QCOW2;
	else if (s && strcmp(s, "raw") == 0)
		*ret = KC_VOL_RAW;
	else
		return kc_error_set(err, KC_ERR_INVALID, "volume format must be qcow2 or raw");
	return 0;
}

int kc_pool_vol_name_check(const char *vol, struct kc_error *err)
{
	return kc_name_validate(vol, "volume name", err);
}

/* Folders a pool may never be, nor be inside: the system's own. */
static const char *const forbidden_trees[] = {"/bin",	"/boot", "/dev", "/etc",  "/lib", "/lib32",
					      "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr"};
/* Folders a pool may be inside but never be itself. */
static const char *const forbidden_exact[] = {"/",	  "/home", "/root", "/tmp", "/var",
					      "/var/lib", "/srv",  "/mnt",  "/opt", "/var/tmp"};

/* An absolute path of [A-Za-z0-9._/-], no "..", "//", "/./" or trailing
 * '/', and (if `system_check`) none of the system's folders. */
static int check_path(const char *p, const char *what, bool system_check, struct kc_error *err)
{
	size_t n = strlen(p);
	if (n == 0 || n > KC_POOL_PATH_MAX || p[0] != '/')
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s must be an absolute path of at most %d "
				    "characters",
				    what, KC_POOL_PATH_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '/'))
			return kc_error_set(
				err, KC_ERR_INVALID,
				"%s may hold only letters, digits, '.', '_', '-' and '/'", what);
	}
	if (strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") ||
	    (n >= 3 && strcmp(p + n - 3, "/..") == 0) || (n >= 2 && strcmp(p + n - 2, "/.") == 0) ||
	    (n > 1 && p[n - 1] == '/'))
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s must be a plain path (no '..', '.', '//' or trailing '/')",
				    what);
	if (!system_check)
		return 0;
	for (size_t i = 0; i < KC_ARRAY_SIZE(forbidden_trees); i++) {
		size_t l = strlen(forbidden_trees[i]);
		if (strncmp(p, forbidden_trees[i], l) == 0 && (p[l] == '\0' || p[l] == '/'))
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s may not be in %s (a system folder)", what,
					    forbidden_trees[i]);
	}
	for (size_t i = 0; i < KC_ARRAY_SIZE(forbidden_exact); i++)
		if (strcmp(p, forbidden_exact[i]) == 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s may not be %s itself: give a folder of its own",
					    what, p);
	return 0;
}

/* A DNS name or an IPv4 address: [A-Za-z0-9.-], not starting with '-'. */
static int check_host(const char *h, const char *what, struct kc_error *err)
{
	size_t n = strlen(h);
	if (n == 0 || n > KC_POOL_HOST_MAX || h[0] == '-' || h[0] == '.')
		return kc_error_set(err, KC_ERR_INVALID, "%s must be a host name or IPv4 address",
				    what);
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s must be a host name or IPv4 address", what);
	}
	return 0;
}

/* "host" or "host:port". */
static int check_portal(const char *p, struct kc_error *err)
{
	char host[KC_POOL_HOST_MAX + 1];
	const char *colon = strchr(p, ':');
	size_t hl = colon ? (size_t)(colon - p) : strlen(p);
	if (hl == 0 || hl > KC_POOL_HOST_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "portal must be HOST or HOST:PORT");
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (check_host(host, "portal host", err) < 0)
		return -1;
	if (colon) {
		char *end = NULL;
		unsigned long port = strtoul(colon + 1, &end, 10);
		if (!colon[1] || *end || port == 0 || port > 65535 || colon[1] == '0')
			return kc_error_set(err, KC_ERR_INVALID, "portal port must be 1..65535");
	}
	return 0;
}

static int check_iqn(const char *s, const char *what, struct kc_error *err)
{
	size_t n = strlen(s);
	if (n < 5 || n > KC_POOL_IQN_MAX ||
	    (strncmp(s, "iqn.", 4) != 0 && strncmp(s, "eui.", 4) != 0))
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s must be an iSCSI name (iqn.... or eui....)", what);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == ':' ||
		      c == '-'))
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s may hold only a-z, 0-9, '.', ':' and '-'", what);
	}
	return 0;
}

static int dup_field(const json_t *j, const char *key, size_t max, char **ret, struct kc_error *err)
{
	const char *s = NULL;
	if (kc_json_get_string(j, key, true, max, &s, err) < 0)
		return -1;
	*ret = strdup(s);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

static bool key_in(const char *key, const char *const *list)
{
	for (size_t i = 0; list && list[i]; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

/* The keys each type takes, beside name, type and overcommit. */
static const char *const type_keys[][4] = {
	[KC_POOL_DIR] = {"path", NULL},
	[KC_POOL_MOUNTPOINT] = {"path", NULL},
	[KC_POOL_NFS] = {"server", "export", NULL},
	[KC_POOL_ISCSI] = {"portal", "target", "initiator", NULL},
	[KC_POOL_LOGICAL] = {"vg", NULL},
};

static int parse(const json_t *j, const char *const *also, bool allow_default,
		 struct kc_pool_def *d, struct kc_error *err)
{
	const char *name = NULL, *type = NULL, *key;
	json_t *v;

	if (!json_is_object(j))
		return kc_error_set(err, KC_ERR_INVALID, "a pool must be a JSON object");
	if (kc_json_get_string(j, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "pool name", err) < 0)
		return -1;
	snprintf(d->name, sizeof(d->name), "%s", name);
	bool is_default = strcmp(name, KC_POOL_DEFAULT_NAME) == 0;
	if (is_default && !allow_default)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "pool name \"default\" is reserved for each host's own pool");
	if (is_default && !json_object_get(j, "type")) {
		/* The agent's own pool: it knows where it is. */
		d->type = KC_POOL_DIR;
		d->overcommit_pct = KC_POOL_OVERCOMMIT_MIN;
		json_object_foreach((json_t *)j, key, v) if (
			strcmp(key, "name") != 0 &&
			!key_in(key, also)) return kc_error_set(err, KC_ERR_INVALID,
								"the default pool takes no \"%s\"",
								key);
		return 0;
	}
	if (kc_json_get_string(j, "type", true, 16, &type, err) < 0 ||
	    kc_pool_type_parse(type, &d->type, err) < 0)
		return -1;
	json_object_foreach((json_t *)j, key, v)
	{
		if (strcmp(key, "name") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "overcommit") == 0 || key_in(key, type_keys[d->type]) ||
		    key_in(key, also))
			continue;
		return kc_error_set(err, KC_ERR_INVALID, "a %s pool takes no \"%.64s\"",
				    kc_pool_type_name(d->type), key);
	}
	d->overcommit_pct = KC_POOL_OVERCOMMIT_MIN;
	json_t *oc = json_object_get(j, "overcommit");
	if (oc) {
		double r = json_number_value(oc);
		if (!json_is_number(oc) || !(r >= KC_POOL_OVERCOMMIT_MIN / 100.0) ||
		    r > KC_POOL_OVERCOMMIT_MAX / 100.0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "overcommit must be a number from %.1f to %.1f",
					    KC_POOL_OVERCOMMIT_MIN / 100.0,
					    KC_POOL_OVERCOMMIT_MAX / 100.0);
		d->overcommit_pct = (unsigned)lround(r * 100);
	}
	switch (d->type) {
	case KC_POOL_DIR:
	case KC_POOL_MOUNTPOINT:
		return dup_field(j, "path", KC_POOL_PATH_MAX, &d->path, err) < 0
			       ? -1
			       : check_path(d->path, "pool path", true, err);
	case KC_POOL_NFS:
		if (dup_field(j, "server", KC_POOL_HOST_MAX, &d->server, err) < 0 ||
		    check_host(d->server, "NFS server", err) < 0 ||
		    dup_field(j, "export", KC_POOL_PATH_MAX, &d->export_path, err) < 0)
			return -1;
		return check_path(d->export_path, "NFS export", false, err);
	case KC_POOL_ISCSI:
		if (dup_field(j, "portal", KC_POOL_HOST_MAX + 6, &d->portal, err) < 0 ||
		    check_portal(d->portal, err) < 0 ||
		    dup_field(j, "target", KC_POOL_IQN_MAX, &d->target, err) < 0 ||
		    check_iqn(d->target, "target", err) < 0 ||
		    dup_field(j, "initiator", KC_POOL_IQN_MAX, &d->initiator, err) < 0)
			return -1;
		return check_iqn(d->initiator, "initiator", err);
	case KC_POOL_LOGICAL:
		if (dup_field(j, "vg", KC_NAME_MAX, &d->vg, err) < 0)
			return -1;
		return kc_name_validate(d->vg, "volume group", err);
	}
	return kc_error_set(err, KC_ERR_INVALID, "unknown pool type");
}

int kc_pool_def_from_json(const json_t *j, const char *const *also_allowed, bool allow_default,
			  struct kc_pool_def *ret, struct kc_error *err)
{
	struct kc_pool_def d = {0};
	if (parse(j, also_allowed, allow_default, &d, err) < 0) {
		kc_pool_def_clear(&d);
		return -1;
	}
	*ret = d;
	return 0;
}

json_t *kc_pool_def_to_json(const struct kc_pool_def *d)
{
	if (strcmp(d->name, KC_POOL_DEFAULT_NAME) == 0)
		return json_pack("{s:s}", "name", d->name);
	json_t *j = json_pack("{s:s,s:s,s:f}", "name", d->name, "type", kc_pool_type_name(d->type),
			      "overcommit", d->overcommit_pct / 100.0);
	if (!j)
		return NULL;
	struct {
		const char *key, *val;
	} f[] = {{"path", d->path},	{"server", d->server}, {"export", d->export_path},
		 {"portal", d->portal}, {"target", d->target}, {"initiator", d->initiator},
		 {"vg", d->vg}};
	for (size_t i = 0; i < KC_ARRAY_SIZE(f); i++)
		if (f[i].val && json_object_set_new(j, f[i].key, json_string(f[i].val)) < 0) {
			json_decref(j);
			return NULL;
		}
	return j;
}

void kc_pool_def_clear(struct kc_pool_def *d)
{
	if (!d)
		return;
	free(d->path);
	free(d->server);
	free(d->export_path);
	free(d->portal);
	free(d->target);
	free(d->initiator);
	free(d->vg);
	d->path = d->server = d->export_path = d->portal = d->target = d->initiator = d->vg = NULL;
}

static int sdup(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
}

int kc_pool_def_copy(struct kc_pool_def *dst, const struct kc_pool_def *src, struct kc_error *err)
{
	struct kc_pool_def d = *src;
	d.path = d.server = d.export_path = d.portal = d.target = d.initiator = d.vg = NULL;
	if (sdup(&d.path, src->path) < 0 || sdup(&d.server, src->server) < 0 ||
	    sdup(&d.export_path, src->export_path) < 0 || sdup(&d.portal, src->portal) < 0 ||
	    sdup(&d.target, src->target) < 0 || sdup(&d.initiator, src->initiator) < 0 ||
	    sdup(&d.vg, src->vg) < 0) {
		kc_pool_def_clear(&d);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	*dst = d;
	return 0;
}

void kc_pool_vols_free(struct kc_pool_vol *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].name);
	free(v);
}

void kc_pool_disk_clear(struct kc_pool_disk *d)
{
	if (!d)
		return;
	free(d->path);
	free(d->protocol);
	free(d->host);
	free(d->name);
	free(d->initiator);
	*d = (struct kc_pool_disk){0};
}
