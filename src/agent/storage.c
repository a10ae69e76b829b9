/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.c - the agent's libvirt dir pool (default name "kvmcloud", at
 * storage.dir) and its volumes.  Disks are made through libvirt's storage API
 * so that libvirt knows every file it will be asked to label and delete.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "xmlwriter.h"

static int pool_define(struct kc_agent *a, virConnectPtr conn, struct kc_error *err)
{
	struct kc_xmlw x;
	if (kc_xmlw_init(&x, err) < 0)
		return -1;
	kc_xmlw_start(&x, "pool");
	kc_xmlw_attr(&x, "type", "dir");
	kc_xmlw_elem(&x, "name", a->pool_name);
	kc_xmlw_start(&x, "target");
	kc_xmlw_elem(&x, "path", a->storage_dir);
	kc_xmlw_start(&x, "permissions");
	kc_xmlw_elem(&x, "mode", "0755");
	kc_xmlw_end(&x);
	kc_xmlw_end(&x);
	kc_xmlw_end(&x);
	_cleanup_free_ char *xml = kc_xmlw_finish(&x, "XML", err);
	if (!xml)
		return -1;
	virStoragePoolPtr p = virStoragePoolDefineXML(conn, xml, 0);
	if (!p)
		return kc_lverr(err, "defining storage pool '%s' at %s", a->pool_name,
				a->storage_dir);
	if (virStoragePoolBuild(p, 0) < 0 || virStoragePoolSetAutostart(p, 1) < 0) {
		kc_lverr(err, "building storage pool '%s'", a->pool_name);
		virStoragePoolUndefine(p);
		virStoragePoolFree(p);
		return -1;
	}
	virStoragePoolFree(p);
	return 0;
}

static char *pool_path(virStoragePoolPtr p)
{
	_cleanup_free_ char *xml = virStoragePoolGetXMLDesc(p, 0);
	if (!xml)
		return NULL;
	xmlDocPtr doc = xmlReadMemory(xml, strlen(xml), "pool.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return NULL;
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	char *path = ctx ? kc_xpath_string(ctx, "string(/pool/target/path)") : NULL;
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return path;
}

virStoragePoolPtr kc_pool_get(struct kc_agent *a, virConnectPtr conn, struct kc_error *err)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(conn, a->pool_name);
	if (!p) {
		virResetLastError();
		if (pool_define(a, conn, err) < 0)
			return NULL;
		p = virStoragePoolLookupByName(conn, a->pool_name);
		if (!p) {
			kc_lverr(err, "looking up storage pool '%s'", a->pool_name);
			return NULL;
		}
	}
	_cleanup_free_ char *path = pool_path(p);
	if (!path || strcmp(path, a->storage_dir) != 0) {
		kc_error_set(err, KC_ERR_CONFLICT,
			     "libvirt storage pool '%s' is at %s, not at storage.dir %s "
			     "(set storage.pool to use another pool name)",
			     a->pool_name, path ? path : "(unknown)", a->storage_dir);
		virResetLastError();
		virStoragePoolFree(p);
		return NULL;
	}
	if (virStoragePoolIsActive(p) != 1) {
		/* The folder may have been removed while the pool was down. */
		if (virStoragePoolBuild(p, 0) < 0)
			virResetLastError();
		if (virStoragePoolCreate(p, 0) < 0) {
			kc_lverr(err, "starting storage pool '%s'", a->pool_name);
			virStoragePoolFree(p);
			return NULL;
		}
	}
	return p;
}

int kc_vol_create_qcow2(virStoragePoolPtr pool, const char *name, uint64_t capacity,
			const char *backing, struct kc_error *err)
{
	char cap[32];
	snprintf(cap, sizeof(cap), "%" PRIu64, capacity);
	struct kc_xmlw x;
	if (kc_xmlw_init(&x, err) < 0)
		return -1;
	kc_xmlw_start(&x, "volume");
	kc_xmlw_elem(&x, "name", name);
	kc_xmlw_start(&x, "capacity");
	kc_xmlw_attr(&x, "unit", "bytes");
	kc_xmlw_text(&x, cap);
	kc_xmlw_end(&x);
	kc_xmlw_start(&x, "allocation");
	kc_xmlw_attr(&x, "unit", "bytes");
	kc_xmlw_text(&x, "0");
	kc_xmlw_end(&x);
	kc_xmlw_start(&x, "target");
	kc_xmlw_elem_attr(&x, "format", "type", "qcow2");
	kc_xmlw_start(&x, "permissions");
	kc_xmlw_elem(&x, "mode", "0600");
	kc_xmlw_end(&x);
	kc_xmlw_end(&x);
	if (backing) {
		/* An explicit backing format: QEMU refuses to guess it. */
		kc_xmlw_start(&x, "backingStore");
		kc_xmlw_elem(&x, "path", backing);
		kc_xmlw_elem_attr(&x, "format", "type", "qcow2");
		kc_xmlw_end(&x);
	}
	kc_xmlw_end(&x);
	_cleanup_free_ char *xml = kc_xmlw_finish(&x, "XML", err);
	if (!xml)
		return -1;
	virStorageVolPtr v = virStorageVolCreateXML(pool, xml, 0);
	if (!v)
		return kc_lverr(err, "creating volume %s", name);
	virStorageVolFree(v);
	return 0;
}

int kc_vol_delete_name(virStoragePoolPtr pool, const char *name, struct kc_error *err)
{
	virStorageVolPtr v = virStorageVolLookupByName(pool, name);
	if (!v) {
		virResetLastError();
		return 0;
	}
	int r = virStorageVolDelete(v, 0);
	virStorageVolFree(v);
	if (r < 0)
		return kc_lverr(err, "deleting volume %s", name);
	return 0;
}

int kc_pool_check_space(virStoragePoolPtr pool, uint64_t bytes, struct kc_error *err)
{
	if (virStoragePoolRefresh(pool, 0) < 0)
		virResetLastError();
	virStoragePoolInfo info;
	if (virStoragePoolGetInfo(pool, &info) < 0)
		return kc_lverr(err, "reading storage pool info");
	/* Volumes are thin, but we reserve their full size: overcommit would
	 * let guests fail with ENOSPC much later (see docs/agent.md). */
	if (bytes > info.available)
		return kc_error_set(err, KC_ERR_NO_CAPACITY,
				    "storage pool '%s' has %.1f GiB available, the VM's disks need "
				    "%.1f GiB",
				    virStoragePoolGetName(pool), info.available / (double)KC_GIB,
				    bytes / (double)KC_GIB);
	return 0;
}
