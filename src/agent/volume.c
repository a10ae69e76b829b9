/* SPDX-License-Identifier: Apache-2.0 */
/*
 * volume.c - the agent's vol.* operations (docs/protocol.md, docs/storage.md
 * "Volumes"): volumes of a pool (pool.h's table does the storage work),
 * hot-plugged into domains as virtio disks, uploaded and downloaded in
 * chunks through libvirt streams (NFS pools: libnfs, pool_nfs.c).  The
 * agent keeps no volume state: the server sends the pool's definition,
 * the name and the format each time.
 *
 * Uploads replace a volume's whole content and are checked like library
 * images (imgcheck.h): the first chunk (at least 64 KiB, or the whole
 * file) before anything is written, the whole volume with qemu-img after
 * the last chunk; a refused upload leaves the volume empty, never with
 * content that failed a check.
 */
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "domain_xml.h"
#include "json_util.h"
#include "pool.h"
#include "validate.h"

struct vol_args {
	struct kc_pool_def pool;
	const char *name;
	enum kc_vol_format format;
	bool has_format; /* "format" was sent (else format is only a default) */
	uint64_t capacity;
	const char *vm;
	const char *target;
};

static void vol_args_clear(struct vol_args *va)
{
	kc_pool_def_clear(&va->pool);
}

/* In the default pool, volumes sit beside the VMs' own files: a volume
 * must never take (or later be taken for) a VM's disk or seed name; in any
 * pool, never a clone base's name. */
static int check_not_vm_file(const char *pool, const char *vol, struct kc_error *err)
{
	static const char *const tails[] = {"-root.qcow2", "-seed.iso"};
	size_t n = strlen(vol);

	/* Every pool holds the clones' shared read-only bases (clone.c): a
	 * user volume named like a future base would be booted by other VMs. */
	if (strncmp(vol, "base-", 5) == 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "volume name \"%s\" is reserved: \"base-\" names hold templates' "
				    "base copies",
				    vol);
	if (strcmp(pool, KC_POOL_DEFAULT_NAME) != 0)
		return 0;
	for (size_t i = 0; i < KC_ARRAY_SIZE(tails); i++) {
		size_t t = strlen(tails[i]);
		if (n > t && strcmp(vol + n - t, tails[i]) == 0)
			goto bad;
	}
	const char *d = strstr(vol, "-data");
	while (d) {
		const char *p = d + 5;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p > d + 5 && strcmp(p, ".qcow2") == 0)
			goto bad;
		d = strstr(d + 1, "-data");
	}
	return 0;
bad:
	return kc_error_set(err, KC_ERR_INVALID,
			    "volume name \"%s\" is reserved for VM disks in the default pool", vol);
}

/* {"pool": def, "name", "format"?, plus the op's own keys}. */
static int parse(const json_t *args, const char *const *keys, const char *op, bool need_format,
		 struct vol_args *va, struct kc_error *err)
{
	const char *fmt = NULL;
	json_t *def = json_object_get(args, "pool");

	if (kc_json_check_keys(args, keys, op, err) < 0)
		return -1;
	if (!def)
		return kc_error_set(err, KC_ERR_INVALID, "%s: \"pool\" is required", op);
	if (kc_pool_def_from_json(def, NULL, true, &va->pool, err) < 0 ||
	    kc_json_get_string(args, "name", true, KC_NAME_MAX, &va->name, err) < 0 ||
	    kc_name_validate(va->name, "volume name", err) < 0 ||
	    kc_json_get_string(args, "format", need_format, 8, &fmt, err) < 0 ||
	    (fmt && kc_vol_format_parse(fmt, &va->format, err) < 0) ||
	    kc_json_get_string(args, "vm", false, KC_NAME_MAX, &va->vm, err) < 0 ||
	    (va->vm && kc_name_validate(va->vm, "VM name", err) < 0) ||
	    kc_json_get_string(args, "target", false, 4, &va->target, err) < 0)
		return -1;
	va->has_format = fmt != NULL;
	return 0;
}

static int ok_result(json_t **ret, json_t *r, struct kc_error *err)
{
	if (!r)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = r;
	return 0;
}

/* The volume's current capacity as the pool lists it. */
static int vol_capacity(struct kc_pool *p, const char *vol, uint64_t *ret, struct kc_error *err)
{
	struct kc_pool_vol *vols = NULL;
	size_t n = 0;
	int rc = -1;

	if (kc_pool_volumes(p, &vols, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(vols[i].name, vol) == 0) {
			*ret = vols[i].capacity;
			rc = 0;
		}
	kc_pool_vols_free(vols, n);
	if (rc < 0)
		kc_error_set(err, KC_ERR_NOT_FOUND, "volume \"%s\" not found in pool \"%s\"", vol,
			     kc_pool_get_def(p)->name);
	return rc;
}

int kc_agent_vol_create(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool", "name", "format", "capacity", NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	int rc = -1;

	if (parse(args, keys, "vol.create args", true, &va, err) < 0 ||
	    kc_json_get_uint(args, "capacity", true, 0, INT64_MAX, &va.capacity, err) < 0 ||
	    check_not_vm_file(va.pool.name, va.name, err) < 0 ||
	    kc_pool_open(a, &va.pool, &p, err) < 0)
		goto out;
	if (kc_intent_vol_create(a, p, va.name, va.format, va.capacity, err) < 0)
		goto out;
	rc = ok_result(ret,
		       json_pack("{s:s,s:s,s:I}", "name", va.name, "format",
				 kc_vol_format_name(va.format), "capacity",
				 (json_int_t)va.capacity),
		       err);
out:
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}

int kc_agent_vol_delete(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool", "name", "format", NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	int rc = -1;

	if (parse(args, keys, "vol.delete args", false, &va, err) < 0 ||
	    check_not_vm_file(va.pool.name, va.name, err) < 0 ||
	    kc_pool_open(a, &va.pool, &p, err) < 0 || kc_pool_vol_delete(p, va.name, err) < 0)
		goto out;
	rc = ok_result(ret, json_pack("{s:s}", "deleted", va.name), err);
out:
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}

/* The domain `vm` if it exists and is running (*ret_dom NULL if it is not
 * running); *ret_conn the connection. */
static int running_dom(struct kc_agent *a, const char *vm, virConnectPtr *ret_conn,
		       virDomainPtr *ret_dom, struct kc_error *err)
{
	virConnectPtr conn = NULL;
	virDomainPtr dom = kc_dom_get(a, vm, &conn, err);
	if (!dom)
		return -1;
	if (virDomainIsActive(dom) != 1) {
		virResetLastError();
		virDomainFree(dom);
		dom = NULL;
	}
	*ret_conn = conn;
	*ret_dom = dom;
	return 0;
}

static bool is_nfs(const struct kc_pool *p)
{
	return kc_pool_get_def(p)->type == KC_POOL_NFS;
}

/* Grows a volume no running VM holds.  NFS volumes are resized by
 * qemu-img with the format stated, so the caller must send it. */
static int resize_stored(struct kc_pool *p, const struct vol_args *va, uint64_t capacity,
			 struct kc_error *err)
{
	if (!is_nfs(p))
		return kc_pool_vol_resize(p, va->name, capacity, err);
	if (!va->has_format)
		return kc_error_set(
			err, KC_ERR_INVALID,
			"vol.resize: \"format\" is required for a volume of an NFS pool");
	return kc_pool_nfs_vol_resize(p, va->name, va->format, capacity, err);
}

/* The pool's capacity rule for `add` more bytes (kc_pool_vol_create's:
 * the default pool wants them available, others capacity x overcommit). */
static int fits(struct kc_pool *p, uint64_t add, struct kc_error *err)
{
	const struct kc_pool_def *d = kc_pool_get_def(p);
	struct kc_pool_info info;

	if (kc_pool_info(p, &info, err) < 0)
		return -1;
	if (strcmp(d->name, KC_POOL_DEFAULT_NAME) == 0) {
		if (add > info.available)
			return kc_error_set(err, KC_ERR_NO_CAPACITY,
					    "pool \"default\" has %.2f GiB available, the volume "
					    "needs %.2f GiB more",
					    info.available / (double)KC_GIB, add / (double)KC_GIB);
		return 0;
	}
	return kc_pool_check_overcommit(d->name, &info, d->overcommit_pct, add, err);
}

int kc_agent_vol_resize(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool", "name",   "format", "capacity",
					   "vm",   "target", NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr dom = NULL;
	uint64_t now = 0;
	int rc = -1;

	if (parse(args, keys, "vol.resize args", false, &va, err) < 0 ||
	    kc_json_get_uint(args, "capacity", true, 1, KC_POOL_VOL_MAX, &va.capacity, err) < 0 ||
	    kc_pool_open(a, &va.pool, &p, err) < 0 || vol_capacity(p, va.name, &now, err) < 0)
		goto out;
	if (va.capacity < now) {
		kc_error_set(err, KC_ERR_INVALID,
			     "volume \"%s\" has %" PRIu64
			     " bytes: volumes only grow, not shrink to %" PRIu64,
			     va.name, now, va.capacity);
		goto out;
	}
	if (va.capacity == now) {
		rc = ok_result(ret, json_pack("{s:I,s:b}", "capacity", (json_int_t)now, "live", 0),
			       err);
		goto out;
	}
	if (fits(p, va.capacity - now, err) < 0)
		goto out;
	if (va.vm && (!va.target || running_dom(a, va.vm, &conn, &dom, err) < 0)) {
		if (!va.target)
			kc_error_set(err, KC_ERR_INVALID, "vol.resize: \"vm\" needs \"target\"");
		goto out;
	}
	if (dom) {
		/* QEMU holds the image open: it grows it and tells the guest. */
		if (virDomainBlockResize(dom, va.target, va.capacity,
					 VIR_DOMAIN_BLOCK_RESIZE_BYTES) < 0) {
			kc_lverr(err, "resizing disk %s of VM %s", va.target, va.vm);
			goto out;
		}
	} else if (resize_stored(p, &va, va.capacity, err) < 0) {
		goto out;
	}
	rc = ok_result(
		ret,
		json_pack("{s:I,s:b}", "capacity", (json_int_t)va.capacity, "live", dom != NULL),
		err);
out:
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}

/* ---- hotplug ---- */

/* The XML of a domain's config or live definition. */
static char *dom_xml(virDomainPtr dom, bool live, struct kc_error *err)
{
	char *xml = virDomainGetXMLDesc(dom, live ? 0 : VIR_DOMAIN_XML_INACTIVE);
	if (!xml)
		kc_lverr(err, "reading the VM's XML");
	return xml;
}

/* The VM's persistent XML and, if it runs, its live XML (NULL if not);
 * both the caller's to free, also on failure. */
static int dom_xmls(virDomainPtr dom, char **ret_cfg, char **ret_live, bool *ret_active,
		    struct kc_error *err)
{
	if (!(*ret_cfg = dom_xml(dom, false, err)))
		return -1;
	*ret_active = virDomainIsActive(dom) == 1;
	if (*ret_active && !(*ret_live = dom_xml(dom, true, err)))
		return -1;
	return 0;
}

/* Calls fn for each disk's target and source ("file", "dev" or network
 * "name") in `xml`; stops at the first non-zero. */
static int each_disk(const char *xml, int (*fn)(const char *target, const char *source, void *),
		     void *opaque, struct kc_error *err)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr o =
		ctx ? xmlXPathEvalExpression((const xmlChar *)"/domain/devices/disk", ctx) : NULL;
	int r = 0;

	if (!o) {
		r = kc_error_set(err, KC_ERR_HYPERVISOR, "cannot parse the VM's XML");
	} else {
		for (int i = 0; o->nodesetval && i < o->nodesetval->nodeNr && r == 0; i++) {
			ctx->node = o->nodesetval->nodeTab[i];
			_cleanup_free_ char *t = kc_xpath_string(ctx, "string(target/@dev)");
			_cleanup_free_ char *s = kc_xpath_string(
				ctx, "string(source/@file | source/@dev | source/@name)");
			if (t)
				r = fn(t, s ? s : "", opaque);
		}
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}

struct disk_scan {
	bool used[26];	    /* vda..vdz */
	const char *source; /* the volume's: is it attached already? */
	const char *target; /* detach: the disk to find */
	char found_target[8];
	char found_source[4200];
};

static int scan_one(const char *target, const char *source, void *opaque)
{
	struct disk_scan *s = opaque;
	if (strlen(target) == 3 && strncmp(target, "vd", 2) == 0 && target[2] >= 'a' &&
	    target[2] <= 'z')
		s->used[target[2] - 'a'] = true;
	if (s->source && strcmp(source, s->source) == 0)
		snprintf(s->found_target, sizeof(s->found_target), "%s", target);
	if (s->target && strcmp(target, s->target) == 0)
		snprintf(s->found_source, sizeof(s->found_source), "%s", source);
	return 0;
}

int kc_vol_free_target(const char *const *xmls, size_t n, char ret[static 8], struct kc_error *err)
{
	struct disk_scan s = {0};
	for (size_t i = 0; i < n; i++)
		if (xmls[i] && each_disk(xmls[i], scan_one, &s, err) < 0)
			return -1;
	/* vda is the root disk's, even when a VM has none yet. */
	for (int c = 1; c < 26; c++)
		if (!s.used[c]) {
			snprintf(ret, 8, "vd%c", 'a' + c);
			return 0;
		}
	return kc_error_set(err, KC_ERR_CONFLICT, "the VM has no free virtio disk slot (vdb..vdz)");
}

/* The volume's <disk> for `target`. */
static int volume_disk_xml(struct kc_pool *p, const struct vol_args *va, const char *target,
			   char **ret_xml, struct kc_pool_disk *pd, struct kc_error *err)
{
	if (kc_pool_vol_disk(p, va->name, va->format, pd, err) < 0)
		return -1;
	struct kc_hotdisk hd = {
		.kind = pd->kind == KC_POOL_DISK_FILE	 ? KC_HOTDISK_FILE
			: pd->kind == KC_POOL_DISK_BLOCK ? KC_HOTDISK_BLOCK
							 : KC_HOTDISK_NETWORK,
		.format = va->format == KC_VOL_QCOW2 ? KC_FORMAT_QCOW2 : KC_FORMAT_RAW,
		.path = pd->path,
		.protocol = pd->protocol,
		.host = pd->host,
		.port = pd->port,
		.name = pd->name,
		.initiator = pd->initiator,
		.target = target,
		/* The guest sees the volume's name (virtio serials hold 20 bytes). */
		.serial = strlen(va->name) <= 20 ? va->name : NULL,
	};
	return kc_hotdisk_xml_build(&hd, ret_xml, err);
}

static const char *disk_source(const struct kc_pool_disk *pd)
{
	return pd->kind == KC_POOL_DISK_NETWORK ? pd->name : pd->path;
}

int kc_agent_vol_attach(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool", "name", "format", "vm", NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	struct kc_pool_disk pd = {0};
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr dom = NULL;
	_cleanup_free_ char *cfg = NULL, *live = NULL, *xml = NULL;
	char target[8];
	int rc = -1;

	if (parse(args, keys, "vol.attach args", true, &va, err) < 0)
		goto out;
	if (!va.vm) {
		kc_error_set(err, KC_ERR_INVALID, "vol.attach args: \"vm\" is required");
		goto out;
	}
	bool active;
	if (kc_pool_open(a, &va.pool, &p, err) < 0 || !(dom = kc_dom_get(a, va.vm, &conn, err)) ||
	    dom_xmls(dom, &cfg, &live, &active, err) < 0)
		goto out;
	/* Attached already (a retried call): the same answer. */
	if (kc_pool_vol_disk(p, va.name, va.format, &pd, err) < 0)
		goto out;
	struct disk_scan s = {.source = disk_source(&pd)};
	if (each_disk(cfg, scan_one, &s, err) < 0 ||
	    (live && each_disk(live, scan_one, &s, err) < 0))
		goto out;
	if (s.found_target[0]) {
		rc = ok_result(
			ret, json_pack("{s:s,s:b}", "target", s.found_target, "live", active), err);
		goto out;
	}
	const char *const xmls[] = {cfg, live};
	if (kc_vol_free_target(xmls, 2, target, err) < 0)
		goto out;
	kc_pool_disk_clear(&pd);
	if (volume_disk_xml(p, &va, target, &xml, &pd, err) < 0)
		goto out;
	unsigned flags = VIR_DOMAIN_AFFECT_CONFIG | (active ? VIR_DOMAIN_AFFECT_LIVE : 0);
	if (virDomainAttachDeviceFlags(dom, xml, flags) < 0) {
		kc_lverr(err, "attaching volume %s to VM %s", va.name, va.vm);
		goto out;
	}
	rc = ok_result(ret, json_pack("{s:s,s:b}", "target", target, "live", active), err);
out:
	kc_pool_disk_clear(&pd);
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}

int kc_agent_vol_detach(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool", "name", "format", "vm", "target", NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	struct kc_pool_disk pd = {0};
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr dom = NULL;
	_cleanup_free_ char *cfg = NULL, *live = NULL, *xml = NULL;
	int rc = -1;

	if (parse(args, keys, "vol.detach args", true, &va, err) < 0)
		goto out;
	if (!va.vm || !va.target) {
		kc_error_set(err, KC_ERR_INVALID,
			     "vol.detach args: \"vm\" and \"target\" are required");
		goto out;
	}
	if (kc_pool_open(a, &va.pool, &p, err) < 0 ||
	    volume_disk_xml(p, &va, va.target, &xml, &pd, err) < 0)
		goto out;
	dom = kc_dom_get(a, va.vm, &conn, err);
	if (!dom) {
		/* The VM is gone: so is the attachment. */
		if (err && err->code == KC_ERR_NOT_FOUND) {
			kc_error_clear(err);
			rc = ok_result(ret, json_pack("{s:s,s:b}", "detached", va.name, "live", 0),
				       err);
		}
		goto out;
	}
	bool active;
	if (dom_xmls(dom, &cfg, &live, &active, err) < 0)
		goto out;
	/* Only the disk that is this volume: a target the guest reused for
	 * something else is never detached in its place. */
	unsigned flags = 0;
	struct disk_scan s = {.target = va.target};
	if (each_disk(cfg, scan_one, &s, err) < 0)
		goto out;
	if (s.found_source[0] && strcmp(s.found_source, disk_source(&pd)) == 0) {
		flags |= VIR_DOMAIN_AFFECT_CONFIG;
	} else if (s.found_source[0]) {
		kc_error_set(err, KC_ERR_CONFLICT, "disk %s of VM %s is not volume %s", va.target,
			     va.vm, va.name);
		goto out;
	}
	s = (struct disk_scan){.target = va.target};
	if (live && each_disk(live, scan_one, &s, err) < 0)
		goto out;
	if (live && s.found_source[0] && strcmp(s.found_source, disk_source(&pd)) == 0)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	if (flags && virDomainDetachDeviceFlags(dom, xml, flags) < 0) {
		kc_lverr(err, "detaching volume %s from VM %s", va.name, va.vm);
		goto out;
	}
	rc = ok_result(ret,
		       json_pack("{s:s,s:b}", "detached", va.name, "live",
				 (flags & VIR_DOMAIN_AFFECT_LIVE) != 0),
		       err);
out:
	kc_pool_disk_clear(&pd);
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}

/* ---- upload and download ---- */

/* Empties a volume: deleted and made again with its format and size. */
static int recreate(struct kc_pool *p, const struct vol_args *va, struct kc_error *err)
{
	if (kc_pool_vol_delete(p, va->name, err) < 0)
		return -1;
	return kc_pool_vol_create(p, va->name, va->format, va->capacity, err);
}

/* The virtual size in a qcow2 header (big-endian at 24). */
static uint64_t qcow2_size(const unsigned char *h)
{
	uint64_t v = 0;
	for (int i = 24; i < 32; i++)
		v = v << 8 | h[i];
	return v;
}

/* After the last chunk: the whole volume, as qemu-img reads it with the
 * format forced (an NFS volume on its nfs:// URL).  iSCSI LUNs have no
 * path or URL here: the first chunk's header check is what they get. */
static int check_whole(struct kc_pool *p, const struct vol_args *va, uint64_t *ret_virtual,
		       struct kc_error *err)
{
	struct kc_pool_disk pd = {0};
	struct kc_image_facts facts;
	char what[KC_NAME_MAX + 16];
	int r = 0;

	*ret_virtual = va->capacity;
	snprintf(what, sizeof(what), "upload to volume '%s'", va->name);
	if (is_nfs(p))
		return kc_pool_nfs_vol_check(p, va->name, va->format, va->capacity, what,
					     ret_virtual, err);
	if (kc_pool_vol_disk(p, va->name, va->format, &pd, err) < 0)
		return -1;
	if (pd.kind != KC_POOL_DISK_NETWORK) {
		r = kc_image_validate(pd.path,
				      va->format == KC_VOL_QCOW2 ? KC_IMG_QCOW2 : KC_IMG_RAW,
				      va->capacity, what, &facts, err);
		if (r == 0)
			*ret_virtual = facts.virtual_size_bytes;
	}
	kc_pool_disk_clear(&pd);
	return r;
}

int kc_agent_vol_upload(struct kc_agent *a, const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pool",   "name", "format", "capacity",
					   "offset", "size", "data",   NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	uint64_t offset = 0, size = 0;
	const char *data = NULL;
	gnutls_datum_t out = {0};
	char what[KC_NAME_MAX + 16];
	int rc = -1;

	if (parse(args, keys, "vol.upload args", true, &va, err) < 0 ||
	    kc_json_get_uint(args, "capacity", true, 1, KC_POOL_VOL_MAX, &va.capacity, err) < 0 ||
	    kc_json_get_uint(args, "size", true, 1, KC_POOL_VOL_MAX + (KC_POOL_VOL_MAX >> 3), &size,
			     err) < 0 ||
	    kc_json_get_uint(args, "offset", true, 0, size - 1, &offset, err) < 0 ||
	    kc_json_get_string(args, "data", true, (KC_VOL_CHUNK_MAX + 2) / 3 * 4, &data, err) < 0)
		goto out;
	gnutls_datum_t in = {(unsigned char *)data, (unsigned)strlen(data)};
	if (gnutls_base64_decode2(&in, &out) < 0 || out.size == 0) {
		kc_error_set(err, KC_ERR_INVALID, "vol.upload: data is not base64");
		goto out;
	}
	if (out.size > size - offset) {
		kc_error_set(err, KC_ERR_INVALID,
			     "vol.upload: more data than the %" PRIu64 " bytes announced", size);
		goto out;
	}
	snprintf(what, sizeof(what), "upload to volume '%s'", va.name);
	/* A raw file is the disk byte for byte; a qcow2 file a little larger
	 * than what it holds (its tables), never more than an eighth. */
	if (va.format == KC_VOL_RAW ? size > va.capacity
				    : size > va.capacity + (va.capacity >> 3) + (64ULL << 20)) {
		kc_error_set(err, KC_ERR_INVALID,
			     "%s: %" PRIu64 " bytes do not fit in a %s volume of %" PRIu64 " bytes",
			     what, size, kc_vol_format_name(va.format), va.capacity);
		goto out;
	}
	if (kc_pool_open(a, &va.pool, &p, err) < 0 || kc_pool_check_writable(p, err) < 0)
		goto out;
	if (offset == 0) {
		/* Nothing is written before the header passed. */
		size_t head = size < KC_IMG_HEAD_BYTES ? (size_t)size : KC_IMG_HEAD_BYTES;
		if (out.size < head) {
			kc_error_set(err, KC_ERR_INVALID,
				     "%s: the first chunk must hold the first %zu bytes", what,
				     head);
			goto out;
		}
		if (kc_img_check_magic(out.data, head,
				       va.format == KC_VOL_QCOW2 ? KC_IMG_QCOW2 : KC_IMG_RAW, what,
				       err) < 0)
			goto out;
		if (va.format == KC_VOL_QCOW2 && qcow2_size(out.data) > va.capacity) {
			kc_error_set(err, KC_ERR_INVALID,
				     "%s: the image's virtual size %" PRIu64
				     " is larger than the volume's %" PRIu64 " bytes",
				     what, qcow2_size(out.data), va.capacity);
			goto out;
		}
		if (recreate(p, &va, err) < 0)
			goto out;
	}
	if (kc_pool_vol_write(p, va.name, offset, out.data, out.size, err) < 0)
		goto out;
	uint64_t next = offset + out.size, virt = va.capacity;
	if (next == size) {
		struct kc_error e = {0};
		if (check_whole(p, &va, &virt, err) < 0) {
			/* Never leave content that failed a check. */
			recreate(p, &va, &e);
			kc_error_clear(&e);
			if (err) {
				char msg[KC_ERROR_MSG_MAX];
				snprintf(msg, sizeof(msg), "%s", err->message);
				kc_error_set(err, err->code, "%s (the volume is empty again)", msg);
			}
			goto out;
		}
		/* A smaller qcow2 image grows to the volume's size. */
		if (virt < va.capacity && resize_stored(p, &va, va.capacity, err) < 0)
			goto out;
	}
	rc = ok_result(ret, json_pack("{s:I,s:b}", "next", (json_int_t)next, "done", next == size),
		       err);
out:
	gnutls_free(out.data);
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}

int kc_agent_vol_download(struct kc_agent *a, const json_t *args, json_t **ret,
			  struct kc_error *err)
{
	static const char *const keys[] = {"pool", "name", "format", "offset", "length", NULL};
	struct vol_args va = {0};
	struct kc_pool *p = NULL;
	uint64_t offset = 0, length = KC_VOL_CHUNK_MAX, size = 0;
	size_t n = 0;
	_cleanup_free_ unsigned char *buf = NULL;
	gnutls_datum_t b64 = {0};
	int rc = -1;

	if (parse(args, keys, "vol.download args", false, &va, err) < 0 ||
	    kc_json_get_uint(args, "offset", true, 0, INT64_MAX, &offset, err) < 0 ||
	    kc_json_get_uint(args, "length", false, 0, KC_VOL_CHUNK_MAX, &length, err) < 0 ||
	    kc_pool_open(a, &va.pool, &p, err) < 0)
		goto out;
	buf = malloc(length ? length : 1);
	if (!buf) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (kc_pool_vol_read(p, va.name, offset, buf, length, &n, &size, err) < 0)
		goto out;
	gnutls_datum_t in = {buf, (unsigned)n};
	if (n > 0 && gnutls_base64_encode2(&in, &b64) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		goto out;
	}
	json_t *r = json_pack("{s:I,s:I,s:s#}", "size", (json_int_t)size, "next",
			      (json_int_t)(offset + n), "data", n ? (const char *)b64.data : "",
			      n ? (int)b64.size : 0);
	rc = ok_result(ret, r, err);
out:
	gnutls_free(b64.data);
	kc_pool_close(p);
	vol_args_clear(&va);
	return rc;
}
