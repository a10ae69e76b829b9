/* SPDX-License-Identifier: Apache-2.0 */
/* vm_info.c - a libvirt domain as the API's VM object (docs/api.md). */
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "domain_xml.h"
#include "json_util.h"

const char *kc_vm_state_name(int s)
{
	switch (s) {
	case VIR_DOMAIN_RUNNING:
		return "running";
	case VIR_DOMAIN_BLOCKED:
		return "blocked";
	case VIR_DOMAIN_PAUSED:
		return "paused";
	case VIR_DOMAIN_SHUTDOWN:
		return "shutdown";
	case VIR_DOMAIN_SHUTOFF:
		return "shutoff";
	case VIR_DOMAIN_CRASHED:
		return "crashed";
	case VIR_DOMAIN_PMSUSPENDED:
		return "pmsuspended";
	default:
		return "unknown";
	}
}

struct xdoc {
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
};

static int xdoc_open_flags(virDomainPtr dom, unsigned flags, struct xdoc *x, struct kc_error *err)
{
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, flags);
	if (!xml)
		return kc_lverr(err, "reading the XML of VM '%s'", virDomainGetName(dom));
	x->doc = xmlReadMemory(xml, strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
	x->ctx = x->doc ? xmlXPathNewContext(x->doc) : NULL;
	if (!x->ctx) {
		if (x->doc)
			xmlFreeDoc(x->doc);
		return kc_error_set(err, KC_ERR_HYPERVISOR, "cannot parse the XML of VM '%s'",
				    virDomainGetName(dom));
	}
	xmlXPathRegisterNs(x->ctx, (const xmlChar *)"kc", (const xmlChar *)KC_XML_NS);
	return 0;
}

static int xdoc_open(virDomainPtr dom, struct xdoc *x, struct kc_error *err)
{
	return xdoc_open_flags(dom, 0, x, err);
}

static void xdoc_close(struct xdoc *x)
{
	xmlXPathFreeContext(x->ctx);
	xmlFreeDoc(x->doc);
}

static json_t *str_or_null(char *s)
{
	json_t *j = s ? json_string(s) : json_null();
	free(s);
	return j ? j : json_null();
}

static json_t *disk_capacity(virConnectPtr conn, virDomainPtr dom, const char *path,
			     const char *target)
{
	if (!path)
		return json_null();
	virStorageVolPtr v = virStorageVolLookupByPath(conn, path);
	if (v) {
		virStorageVolInfo vi;
		int r = virStorageVolGetInfo(v, &vi);
		virStorageVolFree(v);
		if (r == 0)
			return json_integer(vi.capacity);
	}
	virResetLastError();
	virDomainBlockInfo bi;
	if (target && virDomainGetBlockInfo(dom, target, &bi, 0) == 0)
		return json_integer(bi.capacity);
	virResetLastError();
	return json_null();
}

/* Runs fn for each node matching expr, with ctx->node set to it. */
#define FOREACH_NODE(x, expr, body)                                                                \
	do {                                                                                       \
		xmlXPathObjectPtr _o = xmlXPathEvalExpression((const xmlChar *)(expr), (x)->ctx);  \
		int _n = _o && _o->nodesetval ? _o->nodesetval->nodeNr : 0;                        \
		for (int _i = 0; _i < _n; _i++) {                                                  \
			(x)->ctx->node = _o->nodesetval->nodeTab[_i];                              \
			body;                                                                      \
		}                                                                                  \
		(x)->ctx->node = NULL;                                                             \
		xmlXPathFreeObject(_o);                                                            \
	} while (0)

json_t *kc_vm_json(struct kc_agent *a, virConnectPtr conn, virDomainPtr dom, struct kc_error *err)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	int state, reason, autostart = 0;
	if (virDomainGetUUIDString(dom, uuid) < 0 ||
	    virDomainGetState(dom, &state, &reason, 0) < 0) {
		kc_lverr(err, "reading VM '%s'", virDomainGetName(dom));
		return NULL;
	}
	if (virDomainGetAutostart(dom, &autostart) < 0)
		virResetLastError();
	struct xdoc x;
	if (xdoc_open(dom, &x, err) < 0)
		return NULL;

	_cleanup_json_ json_t *o = json_object();
	json_object_set_new(o, "name", json_string(virDomainGetName(dom)));
	json_object_set_new(o, "uuid", json_string(uuid));
	json_object_set_new(o, "host", json_string(a->host_name));
	json_object_set_new(o, "state", json_string(kc_vm_state_name(state)));
	xmlXPathObjectPtr mo =
		xmlXPathEvalExpression((const xmlChar *)"count(/domain/metadata/kc:*) > 0", x.ctx);
	json_object_set_new(o, "managed", json_boolean(mo && xmlXPathCastToBoolean(mo)));
	xmlXPathFreeObject(mo);
	_cleanup_free_ char *type = kc_xpath_string(x.ctx, "string(/domain/@type)");
	const char *accel = !type			? "unknown"
			    : strcmp(type, "kvm") == 0	? "kvm"
			    : strcmp(type, "qemu") == 0 ? "tcg"
							: type;
	json_object_set_new(o, "accel", json_string(accel));
	/* The CPU as configured: a running domain's XML shows the model QEMU
	 * was given even when we asked for none. */
	struct xdoc cfg = x;
	bool own_cfg = state != VIR_DOMAIN_SHUTOFF &&
		       xdoc_open_flags(dom, VIR_DOMAIN_XML_INACTIVE, &cfg, NULL) == 0;
	if (!own_cfg)
		cfg = x;
	_cleanup_free_ char *mode = kc_xpath_string(cfg.ctx, "string(/domain/cpu/@mode)");
	json_object_set_new(o, "cpu_mode", json_string(mode ? mode : "default"));
	_cleanup_free_ char *model = kc_xpath_string(cfg.ctx, "string(/domain/cpu/model)");
	if (model)
		json_object_set_new(o, "cpu_model", json_string(model));
	if (own_cfg)
		xdoc_close(&cfg);
	json_object_set_new(o, "vcpus",
			    json_integer(kc_xpath_long(x.ctx, "string(/domain/vcpu)", 0)));
	/* libvirt always reports <memory unit='KiB'>. */
	_cleanup_free_ char *mem = kc_xpath_string(x.ctx, "string(/domain/memory)");
	json_object_set_new(o, "memory_mib",
			    json_integer(mem ? strtoull(mem, NULL, 10) / 1024 : 0));
	json_object_set_new(
		o, "image",
		str_or_null(kc_xpath_string(x.ctx, "string((/domain/metadata//kc:image)[1])")));
	json_object_set_new(o, "autostart", json_boolean(autostart));

	_cleanup_free_ char *gtype =
		kc_xpath_string(x.ctx, "string(/domain/devices/graphics[1]/@type)");
	json_object_set_new(o, "graphics", json_string(gtype ? gtype : "none"));
	if (gtype && strcmp(gtype, "vnc") == 0) {
		_cleanup_free_ char *listen = kc_xpath_string(
			x.ctx, "string(/domain/devices/graphics[1]/listen[1]/@address)");
		if (!listen)
			listen = kc_xpath_string(x.ctx,
						 "string(/domain/devices/graphics[1]/@listen)");
		long port = kc_xpath_long(x.ctx, "string(/domain/devices/graphics[1]/@port)", -1);
		json_object_set_new(o, "vnc",
				    json_pack("{s:s,s:o}", "listen", listen ? listen : "127.0.0.1",
					      "port", port > 0 ? json_integer(port) : json_null()));
	}

	json_t *disks = json_array();
	FOREACH_NODE(&x, "/domain/devices/disk", {
		_cleanup_free_ char *target = kc_xpath_string(x.ctx, "string(target/@dev)");
		_cleanup_free_ char *path = kc_xpath_string(x.ctx, "string(source/@file)");
		if (!path)
			path = kc_xpath_string(x.ctx, "string(source/@dev)");
		json_t *d = json_object();
		json_object_set_new(d, "target", json_string(target ? target : ""));
		json_object_set_new(d, "device",
				    str_or_null(kc_xpath_string(x.ctx, "string(@device)")));
		json_object_set_new(d, "format",
				    str_or_null(kc_xpath_string(x.ctx, "string(driver/@type)")));
		json_object_set_new(d, "path", path ? json_string(path) : json_null());
		json_object_set_new(d, "capacity_bytes", disk_capacity(conn, dom, path, target));
		json_array_append_new(disks, d);
	});
	json_object_set_new(o, "disks", disks);

	json_t *nics = json_array();
	FOREACH_NODE(&x, "/domain/devices/interface", {
		_cleanup_free_ char *t = kc_xpath_string(x.ctx, "string(@type)");
		char *src = NULL;
		if (t && strcmp(t, "network") == 0)
			src = kc_xpath_string(x.ctx, "string(source/@network)");
		else if (t && strcmp(t, "bridge") == 0)
			src = kc_xpath_string(x.ctx, "string(source/@bridge)");
		json_t *n = json_object();
		json_object_set_new(n, "type", json_string(t ? t : "unknown"));
		json_object_set_new(n, "source", str_or_null(src));
		json_object_set_new(n, "mac",
				    str_or_null(kc_xpath_string(x.ctx, "string(mac/@address)")));
		json_array_append_new(nics, n);
	});
	json_object_set_new(o, "nics", nics);
	json_object_set_new(o, "created_at",
			    str_or_null(kc_xpath_string(
				    x.ctx, "string((/domain/metadata//kc:created_at)[1])")));
	xdoc_close(&x);
	return steal_ptr(&o);
}

void kc_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

char **kc_vm_nfs_disks(virDomainPtr dom, struct kc_error *err)
{
	struct xdoc x;
	if (xdoc_open(dom, &x, err) < 0)
		return NULL;
	char **v = calloc(KC_MAX_DISKS + 1, sizeof(char *));
	size_t n = 0;
	FOREACH_NODE(&x, "/domain/devices/disk[@type='network'][source/@protocol='nfs']", {
		char *h = kc_xpath_string(x.ctx, "string(source/host/@name)");
		char *p = kc_xpath_string(x.ctx, "string(source/@name)");
		if (v && h && p && n < KC_MAX_DISKS && asprintf(&v[n], "%s\t%s", h, p) >= 0)
			n++;
		free(h);
		free(p);
	});
	xdoc_close(&x);
	if (!v)
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return v;
}

char **kc_vm_disk_paths(virDomainPtr dom, struct kc_error *err)
{
	struct xdoc x;
	if (xdoc_open(dom, &x, err) < 0)
		return NULL;
	char **v = calloc(KC_MAX_DISKS * 4 + 1, sizeof(char *));
	size_t n = 0;
	FOREACH_NODE(&x, "/domain/devices/disk[source/@file]", {
		if (v && n < KC_MAX_DISKS * 4) {
			char *p = kc_xpath_string(x.ctx, "string(source/@file)");
			if (p)
				v[n++] = p;
		}
	});
	xdoc_close(&x);
	if (!v)
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return v;
}
