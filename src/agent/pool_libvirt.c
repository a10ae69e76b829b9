/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_libvirt.c - the pools libvirt manages: dir and mountpoint (libvirt
 * "dir" pools; a mountpoint's folder must exist, it is never made), iscsi
 * (libvirt "iscsi-direct": libiscsi in libvirtd, no kernel initiator; its
 * volumes are the target's LUNs, named lun-N here), logical (LVM, untested
 * here: this kernel has no device-mapper), and the agent's own default
 * pool (storage.c).  Pools are named kc-<name> in libvirt.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "pool_backend.h"
#include "xmlwriter.h"

struct lv_pool {
	struct kc_pool base;
	virConnectPtr conn;
	virStoragePoolPtr pool;
	bool is_default;
	char lvname[KC_NAME_MAX + sizeof(KC_POOL_LIBVIRT_PREFIX)];
};

static int portal_split(const char *portal, char *host, size_t hlen, unsigned *port)
{
	const char *colon = strchr(portal, ':');
	size_t n = colon ? (size_t)(colon - portal) : strlen(portal);
	if (n >= hlen)
		return -1;
	memcpy(host, portal, n);
	host[n] = '\0';
	*port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 3260;
	return 0;
}

int kc_pool_xml(const struct kc_pool_def *d, char **ret_xml, struct kc_error *err)
{
	static const char *const lvtype[] = {[KC_POOL_DIR] = "dir",
					     [KC_POOL_MOUNTPOINT] = "dir",
					     [KC_POOL_ISCSI] = "iscsi-direct",
					     [KC_POOL_LOGICAL] = "logical"};
	char name[KC_NAME_MAX + sizeof(KC_POOL_LIBVIRT_PREFIX)];
	struct kc_xmlw x;

	if (d->type == KC_POOL_NFS || (size_t)d->type >= KC_ARRAY_SIZE(lvtype))
		return kc_error_set(err, KC_ERR_INVALID, "a %s pool has no libvirt pool",
				    kc_pool_type_name(d->type));
	snprintf(name, sizeof(name), KC_POOL_LIBVIRT_PREFIX "%s", d->name);
	if (kc_xmlw_init(&x, err) < 0)
		return -1;
	kc_xmlw_start(&x, "pool");
	kc_xmlw_attr(&x, "type", lvtype[d->type]);
	kc_xmlw_elem(&x, "name", name);
	switch (d->type) {
	case KC_POOL_DIR:
	case KC_POOL_MOUNTPOINT:
		kc_xmlw_start(&x, "target");
		kc_xmlw_elem(&x, "path", d->path);
		kc_xmlw_start(&x, "permissions");
		kc_xmlw_elem(&x, "mode", "0755");
		kc_xmlw_end(&x);
		kc_xmlw_end(&x);
		break;
	case KC_POOL_ISCSI: {
		char host[KC_POOL_HOST_MAX + 1], port[8];
		unsigned p = 0;
		if (portal_split(d->portal, host, sizeof(host), &p) < 0) {
			kc_xmlw_finish(&x, "pool XML", NULL);
			return kc_error_set(err, KC_ERR_INVALID, "bad portal");
		}
		snprintf(port, sizeof(port), "%u", p);
		kc_xmlw_start(&x, "source");
		kc_xmlw_start(&x, "host");
		kc_xmlw_attr(&x, "name", host);
		kc_xmlw_attr(&x, "port", port);
		kc_xmlw_end(&x);
		kc_xmlw_elem_attr(&x, "device", "path", d->target);
		kc_xmlw_start(&x, "initiator");
		kc_xmlw_elem_attr(&x, "iqn", "name", d->initiator);
		kc_xmlw_end(&x);
		kc_xmlw_end(&x);
		break;
	}
	case KC_POOL_LOGICAL: {
		char dev[KC_NAME_MAX + 8];
		snprintf(dev, sizeof(dev), "/dev/%s", d->vg);
		kc_xmlw_start(&x, "source");
		kc_xmlw_elem(&x, "name", d->vg);
		kc_xmlw_elem_attr(&x, "format", "type", "lvm2");
		kc_xmlw_end(&x);
		kc_xmlw_start(&x, "target");
		kc_xmlw_elem(&x, "path", dev);
		kc_xmlw_end(&x);
		break;
	}
	case KC_POOL_NFS:
		break;
	}
	kc_xmlw_end(&x);
	char *xml = kc_xmlw_finish(&x, "pool XML", err);
	if (!xml)
		return -1;
	*ret_xml = xml;
	return 0;
}

/* A volume of `capacity` bytes, format explicit, nothing allocated up
 * front (sparse / thin).  LVM volumes have no format element. */
int kc_pool_vol_xml(const char *vol, enum kc_pool_type type, enum kc_vol_format fmt,
		    uint64_t capacity, char **ret_xml, struct kc_error *err)
{
	char cap[32];
	struct kc_xmlw x;

	snprintf(cap, sizeof(cap), "%" PRIu64, capacity);
	if (kc_xmlw_init(&x, err) < 0)
		return -1;
	kc_xmlw_start(&x, "volume");
	kc_xmlw_elem(&x, "name", vol);
	kc_xmlw_start(&x, "capacity");
	kc_xmlw_attr(&x, "unit", "bytes");
	kc_xmlw_text(&x, cap);
	kc_xmlw_end(&x);
	kc_xmlw_start(&x, "allocation");
	kc_xmlw_attr(&x, "unit", "bytes");
	kc_xmlw_text(&x, type == KC_POOL_LOGICAL ? cap : "0");
	kc_xmlw_end(&x);
	if (type != KC_POOL_LOGICAL) {
		kc_xmlw_start(&x, "target");
		kc_xmlw_elem_attr(&x, "format", "type", kc_vol_format_name(fmt));
		kc_xmlw_start(&x, "permissions");
		kc_xmlw_elem(&x, "mode", "0600");
		kc_xmlw_end(&x);
		kc_xmlw_end(&x);
	}
	kc_xmlw_end(&x);
	char *xml = kc_xmlw_finish(&x, "volume XML", err);
	if (!xml)
		return -1;
	*ret_xml = xml;
	return 0;
}

/* One string from a libvirt object's XML (NULL if missing). */
static char *xml_get(const char *xml, const char *xpath)
{
	if (!xml)
		return NULL;
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "x.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return NULL;
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	char *s = ctx ? kc_xpath_string(ctx, xpath) : NULL;
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}

/* An existing kc-<name> must be the pool the server means, not another
 * admin's pool of that name or an older definition. */
static int check_same(struct lv_pool *p, struct kc_error *err)
{
	const struct kc_pool_def *d = &p->base.def;
	_cleanup_free_ char *xml = virStoragePoolGetXMLDesc(p->pool, 0);
	const char *expr = NULL, *want = NULL;
	switch (d->type) {
	case KC_POOL_DIR:
	case KC_POOL_MOUNTPOINT:
		expr = "string(/pool/target/path)", want = d->path;
		break;
	case KC_POOL_ISCSI:
		expr = "string(/pool/source/device/@path)", want = d->target;
		break;
	case KC_POOL_LOGICAL:
		expr = "string(/pool/source/name)", want = d->vg;
		break;
	case KC_POOL_NFS:
		return 0;
	}
	_cleanup_free_ char *have = xml_get(xml, expr);
	if (!have || strcmp(have, want) != 0) {
		virResetLastError();
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "libvirt pool %s exists with another source (%s, not %s): "
				    "remove it or choose another pool name",
				    p->lvname, have ? have : "unknown", want);
	}
	return 0;
}

static int check_path_free(struct lv_pool *p, struct kc_error *err)
{
	const struct kc_agent *a = p->base.agent;
	const char *path = p->base.def.path;
	const char *own[] = {a->storage_dir, a->images_dir, a->data_dir};
	for (size_t i = 0; path && i < KC_ARRAY_SIZE(own); i++) {
		size_t n = own[i] ? strlen(own[i]) : 0;
		if (n && strncmp(path, own[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return kc_error_set(err, KC_ERR_INVALID,
					    "pool path %s is inside the agent's own folder %s",
					    path, own[i]);
		if (n && strncmp(own[i], path, strlen(path)) == 0 && own[i][strlen(path)] == '/')
			return kc_error_set(err, KC_ERR_INVALID,
					    "pool path %s holds the agent's own folder %s", path,
					    own[i]);
	}
	return 0;
}

static int lv_ensure(struct kc_pool *base, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	const struct kc_pool_def *d = &base->def;

	if (p->is_default) {
		p->pool = kc_pool_get(base->agent, p->conn, err);
		return p->pool ? 0 : -1;
	}
	if (check_path_free(p, err) < 0)
		return -1;
	if (d->type == KC_POOL_MOUNTPOINT) {
		/* A shared mount: never made by us, or we would fill the local disk
		 * of a host where the mount is missing. */
		struct stat st;
		if (stat(d->path, &st) < 0 || !S_ISDIR(st.st_mode))
			return kc_error_set(err, KC_ERR_UNAVAILABLE,
					    "mount point %s of pool \"%s\" is not a folder on host "
					    "%s (is the shared storage mounted?)",
					    d->path, d->name, kc_agent_host_name(base->agent));
	}
	p->pool = virStoragePoolLookupByName(p->conn, p->lvname);
	if (!p->pool) {
		virResetLastError();
		_cleanup_free_ char *xml = NULL;
		if (kc_pool_xml(d, &xml, err) < 0)
			return -1;
		p->pool = virStoragePoolDefineXML(p->conn, xml, 0);
		if (!p->pool)
			return kc_lverr(err, "defining libvirt pool %s", p->lvname);
		if (virStoragePoolSetAutostart(p->pool, 1) < 0)
			virResetLastError();
	} else if (check_same(p, err) < 0) {
		return -1;
	}
	if (virStoragePoolIsActive(p->pool) == 1)
		return 0;
	if (d->type == KC_POOL_DIR && virStoragePoolBuild(p->pool, 0) < 0)
		return kc_lverr(err, "building pool %s at %s", p->lvname, d->path);
	if (virStoragePoolCreate(p->pool, 0) < 0)
		return kc_lverr(err, "starting libvirt pool %s", p->lvname);
	return 0;
}

static int lv_info(struct kc_pool *base, struct kc_pool_info *ret, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	virStoragePoolInfo info;

	if (virStoragePoolRefresh(p->pool, 0) < 0)
		virResetLastError();
	if (virStoragePoolGetInfo(p->pool, &info) < 0)
		return kc_lverr(err, "reading pool %s", p->lvname);
	ret->capacity = info.capacity;
	ret->allocation = info.allocation;
	ret->available = info.available;
	return 0;
}

/* iscsi-direct names LUNs "unit:0:0:N"; we show them as "lun-N", a name
 * kc_name_validate takes. */
static bool lun_from_unit(const char *unit, char *buf, size_t len)
{
	unsigned a, b, c, lun;
	char tail;
	if (sscanf(unit, "unit:%u:%u:%u%c", &a, &b, &c, &tail) != 3)
		return false;
	lun = c;
	snprintf(buf, len, "lun-%u", lun);
	return true;
}

static virStorageVolPtr vol_lookup(struct lv_pool *p, const char *vol, struct kc_error *err)
{
	virStorageVolPtr v = NULL;
	if (p->base.def.type == KC_POOL_ISCSI) {
		unsigned lun;
		char tail, unit[48];
		if (sscanf(vol, "lun-%u%c", &lun, &tail) == 1) {
			snprintf(unit, sizeof(unit), "unit:0:0:%u", lun);
			v = virStorageVolLookupByName(p->pool, unit);
		}
	} else {
		v = virStorageVolLookupByName(p->pool, vol);
	}
	if (!v) {
		virResetLastError();
		kc_error_set(err, KC_ERR_NOT_FOUND, "volume \"%s\" not found in pool \"%s\"", vol,
			     p->base.def.name);
	}
	return v;
}

static int lv_volumes(struct kc_pool *base, struct kc_pool_vol **ret, size_t *ret_n,
		      struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	virStorageVolPtr *vols = NULL;

	if (virStoragePoolRefresh(p->pool, 0) < 0)
		virResetLastError();
	int n = virStoragePoolListAllVolumes(p->pool, &vols, 0);
	if (n < 0)
		return kc_lverr(err, "listing the volumes of pool %s", p->lvname);
	struct kc_pool_vol *out = calloc((size_t)n + 1, sizeof(*out));
	size_t k = 0;
	int rc = out ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++) {
		virStorageVolInfo vi;
		const char *name = virStorageVolGetName(vols[i]);
		char lun[32];
		if (rc == 0 && name && virStorageVolGetInfo(vols[i], &vi) == 0 &&
		    !(base->def.type == KC_POOL_ISCSI && vi.capacity == 0)) {
			/* (An iSCSI LUN of no size is the target's controller.) */
			if (base->def.type == KC_POOL_ISCSI &&
			    lun_from_unit(name, lun, sizeof(lun)))
				name = lun;
			_cleanup_free_ char *xml = virStorageVolGetXMLDesc(vols[i], 0);
			_cleanup_free_ char *fmt =
				xml_get(xml, "string(/volume/target/format/@type)");
			out[k].name = strdup(name);
			out[k].format =
				fmt && strcmp(fmt, "qcow2") == 0 ? KC_VOL_QCOW2 : KC_VOL_RAW;
			out[k].capacity = vi.capacity;
			out[k].allocation = vi.allocation;
			if (!out[k++].name)
				rc = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
		virResetLastError();
		virStorageVolFree(vols[i]);
	}
	free(vols);
	if (rc < 0) {
		kc_pool_vols_free(out, k);
		return -1;
	}
	*ret = out;
	*ret_n = k;
	return 0;
}

static int lv_vol_create(struct kc_pool *base, const char *vol, enum kc_vol_format fmt,
			 uint64_t capacity, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	_cleanup_free_ char *xml = NULL;

	virStorageVolPtr v = virStorageVolLookupByName(p->pool, vol);
	if (v) {
		virStorageVolFree(v);
		return kc_error_set(err, KC_ERR_CONFLICT, "volume \"%s\" exists in pool \"%s\"",
				    vol, base->def.name);
	}
	virResetLastError();
	if (base->def.type == KC_POOL_LOGICAL && fmt != KC_VOL_RAW)
		return kc_error_set(err, KC_ERR_INVALID, "LVM volumes are raw");
	if (kc_pool_vol_xml(vol, base->def.type, fmt, capacity, &xml, err) < 0)
		return -1;
	v = virStorageVolCreateXML(p->pool, xml, 0);
	if (!v)
		return kc_lverr(err, "creating volume %s in pool %s", vol, p->lvname);
	virStorageVolFree(v);
	return 0;
}

static int lv_vol_delete(struct kc_pool *base, const char *vol, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	virStorageVolPtr v = vol_lookup(p, vol, err);
	if (!v)
		return -1;
	int r = virStorageVolDelete(v, 0);
	virStorageVolFree(v);
	return r < 0 ? kc_lverr(err, "deleting volume %s of pool %s", vol, p->lvname) : 0;
}

static int lv_disk(struct kc_pool *base, const char *vol, enum kc_vol_format fmt,
		   struct kc_pool_disk *ret, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	const struct kc_pool_def *d = &base->def;
	struct kc_pool_disk out = {.format = fmt};

	virStorageVolPtr v = vol_lookup(p, vol, err);
	if (!v)
		return -1;
	if (d->type == KC_POOL_ISCSI) {
		char host[KC_POOL_HOST_MAX + 1];
		unsigned lun = 0;
		sscanf(vol, "lun-%u", &lun);
		portal_split(d->portal, host, sizeof(host), &out.port);
		out.kind = KC_POOL_DISK_NETWORK;
		out.protocol = strdup("iscsi");
		out.host = strdup(host);
		out.initiator = strdup(d->initiator);
		if (asprintf(&out.name, "%s/%u", d->target, lun) < 0)
			out.name = NULL;
		if (!out.protocol || !out.host || !out.initiator || !out.name) {
			virStorageVolFree(v);
			kc_pool_disk_clear(&out);
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
	} else {
		out.kind = d->type == KC_POOL_LOGICAL ? KC_POOL_DISK_BLOCK : KC_POOL_DISK_FILE;
		out.path = virStorageVolGetPath(v);
		if (!out.path) {
			virStorageVolFree(v);
			return kc_lverr(err, "reading the path of volume %s", vol);
		}
	}
	virStorageVolFree(v);
	*ret = out;
	return 0;
}

static int lv_remove(struct kc_pool *base, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	virStoragePoolPtr pool = virStoragePoolLookupByName(p->conn, p->lvname);
	if (!pool) {
		virResetLastError();
		return 0; /* never ensured on this host */
	}
	p->pool = pool;
	if (check_same(p, err) < 0)
		return -1;
	if (virStoragePoolIsActive(pool) == 1 && virStoragePoolDestroy(pool) < 0)
		return kc_lverr(err, "stopping libvirt pool %s", p->lvname);
	if (virStoragePoolUndefine(pool) < 0)
		return kc_lverr(err, "undefining libvirt pool %s", p->lvname);
	return 0;
}

static int lv_vol_resize(struct kc_pool *base, const char *vol, uint64_t capacity,
			 struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	_cleanup_vol_ virStorageVolPtr v = vol_lookup(p, vol, err);
	if (!v)
		return -1;
	/* Thin: no allocation of the new space (a qcow2 grows its header's
	 * size only, a raw file is extended sparse). */
	if (virStorageVolResize(v, capacity, 0) < 0)
		return kc_lverr(err, "resizing volume %s of pool %s", vol, p->lvname);
	return 0;
}

/* Sends everything in buf through the stream, then finishes it. */
static int stream_send_all(virStreamPtr st, const char *buf, size_t len)
{
	while (len > 0) {
		int n = virStreamSend(st, buf, len > (1 << 20) ? (1 << 20) : len);
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return virStreamFinish(st);
}

static int lv_vol_write(struct kc_pool *base, const char *vol, uint64_t offset, const void *buf,
			size_t len, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	_cleanup_vol_ virStorageVolPtr v = vol_lookup(p, vol, err);
	if (!v)
		return -1;
	virStreamPtr st = virStreamNew(p->conn, 0);
	if (!st)
		return kc_lverr(err, "opening a stream to volume %s", vol);
	int r = virStorageVolUpload(v, st, offset, len, 0);
	if (r == 0)
		r = stream_send_all(st, buf, len);
	if (r < 0) {
		kc_lverr(err, "writing volume %s of pool %s", vol, p->lvname);
		virStreamAbort(st);
	}
	virStreamFree(st);
	return r < 0 ? -1 : 0;
}

static int lv_vol_read(struct kc_pool *base, const char *vol, uint64_t offset, void *buf,
		       size_t len, size_t *ret_n, uint64_t *ret_size, struct kc_error *err)
{
	struct lv_pool *p = (struct lv_pool *)base;
	virStorageVolInfo vi;
	_cleanup_vol_ virStorageVolPtr v = vol_lookup(p, vol, err);
	if (!v)
		return -1;
	if (virStorageVolGetInfoFlags(v, &vi, VIR_STORAGE_VOL_GET_PHYSICAL) < 0)
		return kc_lverr(err, "reading volume %s of pool %s", vol, p->lvname);
	/* A file's bytes as stored (a qcow2 file, not its guest view). */
	uint64_t size = vi.allocation;
	if (base->def.type == KC_POOL_LOGICAL)
		size = vi.capacity;
	if (offset >= size || len == 0) {
		*ret_n = 0;
		*ret_size = size;
		return 0;
	}
	if (len > size - offset)
		len = (size_t)(size - offset);
	virStreamPtr st = virStreamNew(p->conn, 0);
	if (!st)
		return kc_lverr(err, "opening a stream from volume %s", vol);
	size_t got = 0;
	int r = virStorageVolDownload(v, st, offset, len, 0);
	while (r == 0 && got < len) {
		int n = virStreamRecv(st, (char *)buf + got, len - got);
		if (n < 0)
			r = -1;
		else if (n == 0)
			break;
		else
			got += (size_t)n;
	}
	if (r == 0)
		r = virStreamFinish(st);
	if (r < 0) {
		kc_lverr(err, "reading volume %s of pool %s", vol, p->lvname);
		virStreamAbort(st);
	}
	virStreamFree(st);
	if (r < 0)
		return -1;
	*ret_n = got;
	*ret_size = size;
	return 0;
}

static void lv_close(struct kc_pool *base)
{
	struct lv_pool *p = (struct lv_pool *)base;
	if (p->pool)
		virStoragePoolFree(p->pool);
	if (p->conn)
		virConnectClose(p->conn);
	free(p);
}

static const struct kc_pool_ops lv_ops = {
	.ensure = lv_ensure,
	.info = lv_info,
	.volumes = lv_volumes,
	.vol_create = lv_vol_create,
	.vol_delete = lv_vol_delete,
	.disk = lv_disk,
	.remove = lv_remove,
	.vol_resize = lv_vol_resize,
	.vol_write = lv_vol_write,
	.vol_read = lv_vol_read,
	.close = lv_close,
};

/* iscsi-direct cannot create or delete LUNs: the target owns them. */
static const struct kc_pool_ops lv_iscsi_ops = {
	.ensure = lv_ensure,
	.info = lv_info,
	.volumes = lv_volumes,
	.disk = lv_disk,
	.remove = lv_remove,
	.close = lv_close,
};

struct kc_pool *kc_pool_libvirt_new(struct kc_agent *a, const struct kc_pool_def *def,
				    struct kc_error *err)
{
	struct lv_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	p->base.ops = def->type == KC_POOL_ISCSI ? &lv_iscsi_ops : &lv_ops;
	p->base.agent = a;
	p->is_default = strcmp(def->name, KC_POOL_DEFAULT_NAME) == 0;
	snprintf(p->lvname, sizeof(p->lvname), "%s%s", p->is_default ? "" : KC_POOL_LIBVIRT_PREFIX,
		 p->is_default ? a->pool_name : def->name);
	if (kc_pool_def_copy(&p->base.def, def, err) < 0) {
		free(p);
		return NULL;
	}
	p->conn = kc_conn_get(a, err);
	if (!p->conn) {
		kc_pool_def_clear(&p->base.def);
		free(p);
		return NULL;
	}
	return &p->base;
}
