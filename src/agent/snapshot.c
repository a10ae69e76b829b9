/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c - VM snapshots: libvirt internal snapshots, kept inside the
 * VM's qcow2 disks (docs/storage.md "Snapshots", docs/decisions.md).  A
 * stopped VM gets a disk-only snapshot (qemu-img snapshot), a running one
 * a snapshot with its memory (QEMU savevm).  Read-only disks (the NoCloud
 * seed, an installation ISO) are left out: nothing can have changed there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"
#include "validate.h"
#include "xmlwriter.h"

/* QEMU's own limits on a qcow2 snapshot table (block/qcow2.h). */
#define QCOW2_MAX_SNAPSHOTS  65536
#define QCOW2_MAX_EXTRA_DATA 1024

struct xdoc {
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
};

static int xdoc_parse(const char *xml, const char *what, struct xdoc *x, struct kc_error *err)
{
	x->doc = xmlReadMemory(xml, (int)strlen(xml), "snapshot.xml", NULL, XML_PARSE_NONET);
	x->ctx = x->doc ? xmlXPathNewContext(x->doc) : NULL;
	if (!x->ctx) {
		if (x->doc)
			xmlFreeDoc(x->doc);
		x->doc = NULL;
		return kc_error_set(err, KC_ERR_HYPERVISOR, "cannot parse the XML of %s", what);
	}
	return 0;
}

static void xdoc_close(struct xdoc *x)
{
	xmlXPathFreeContext(x->ctx);
	xmlFreeDoc(x->doc);
}

/* The nodes of `expr` (NULL if none); free with xmlXPathFreeObject. */
static xmlXPathObjectPtr xnodes(struct xdoc *x, const char *expr, int *ret_n)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, x->ctx);
	*ret_n = o && o->nodesetval ? o->nodesetval->nodeNr : 0;
	return o;
}

static json_t *str_or_null(char *s)
{
	json_t *j = s ? json_string(s) : json_null();
	free(s);
	return j ? j : json_null();
}

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Sizes QEMU recorded for snapshot `name` in the qcow2 file at `path`: the
 * saved memory state and the disk's virtual size then.  False if the file
 * holds no such snapshot or cannot be read (sizes are informative only).
 * QEMU writes this table, never the guest; every field is bounded anyway. */
static bool qcow2_snapshot_sizes(const char *path, const char *name, uint64_t *ret_vmstate,
				 uint64_t *ret_disk)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char h[72], e[40], extra[16];
	size_t name_len = strlen(name);

	if (fd < 0 || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h, "QFI\xfb", 4) != 0)
		return false;
	uint32_t nb = be32(h + 60);
	uint64_t off = be64(h + 64);
	if (nb > QCOW2_MAX_SNAPSHOTS)
		return false;
	for (uint32_t i = 0; i < nb; i++) {
		if (off > INT64_MAX - 1024 * 1024 ||
		    pread(fd, e, sizeof(e), (off_t)off) != sizeof(e))
			return false;
		uint16_t id_len = (uint16_t)(e[12] << 8 | e[13]);
		uint16_t nm_len = (uint16_t)(e[14] << 8 | e[15]);
		uint32_t extra_len = be32(e + 36);
		if (extra_len > QCOW2_MAX_EXTRA_DATA)
			return false;
		uint64_t vmstate = be32(e + 32), disk = 0;
		memset(extra, 0, sizeof(extra));
		size_t want = extra_len < sizeof(extra) ? extra_len : sizeof(extra);
		if (want && pread(fd, extra, want, (off_t)(off + sizeof(e))) != (ssize_t)want)
			return false;
		if (extra_len >= 8)
			vmstate = be64(extra);
		if (extra_len >= 16)
			disk = be64(extra + 8);
		if (nm_len == name_len) {
			char buf[KC_NAME_MAX + 1];
			off_t at = (off_t)(off + sizeof(e) + extra_len + id_len);
			if (name_len <= KC_NAME_MAX &&
			    pread(fd, buf, name_len, at) == (ssize_t)name_len &&
			    memcmp(buf, name, name_len) == 0) {
				*ret_vmstate = vmstate;
				*ret_disk = disk;
				return true;
			}
		}
		off += sizeof(e) + extra_len + id_len + nm_len;
		off = (off + 7) & ~7ULL;
	}
	return false;
}

static void free_snaps(virDomainSnapshotPtr *s, int n)
{
	for (int i = 0; s && i < n; i++)
		virDomainSnapshotFree(s[i]);
	free(s);
}

static void snap_freep(virDomainSnapshotPtr *s)
{
	if (*s)
		virDomainSnapshotFree(*s);
}
#define _cleanup_snap_ __attribute__((cleanup(snap_freep)))

/* The Snapshot object (docs/api.md).  with_sizes reads the sizes QEMU
 * recorded in the disks (slower: show, not list). */
static json_t *snapshot_json(virDomainSnapshotPtr s, bool with_sizes, struct kc_error *err)
{
	const char *name = virDomainSnapshotGetName(s);
	_cleanup_free_ char *xml = virDomainSnapshotGetXMLDesc(s, 0);
	struct xdoc x;

	if (!xml) {
		kc_lverr(err, "reading snapshot '%s'", name);
		return NULL;
	}
	if (xdoc_parse(xml, "a snapshot", &x, err) < 0)
		return NULL;
	_cleanup_json_ json_t *o = json_object();
	json_t *disks = json_array(), *children = json_array();
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "vm", json_string(virDomainGetName(virDomainSnapshotGetDomain(s))));
	json_object_set_new(
		o, "description",
		str_or_null(kc_xpath_string(x.ctx, "string(/domainsnapshot/description)")));
	json_object_set_new(o, "state",
			    str_or_null(kc_xpath_string(x.ctx, "string(/domainsnapshot/state)")));
	_cleanup_free_ char *mem =
		kc_xpath_string(x.ctx, "string(/domainsnapshot/memory/@snapshot)");
	bool memory = mem && strcmp(mem, "no") != 0;
	json_object_set_new(o, "memory", json_boolean(memory));
	_cleanup_free_ char *ct = kc_xpath_string(x.ctx, "string(/domainsnapshot/creationTime)");
	char *end = NULL;
	long long t = ct ? strtoll(ct, &end, 10) : -1;
	if (!ct || *end || t < 0)
		t = -1;
	char when[32] = "";
	struct tm tm;
	time_t tt = (time_t)t;
	if (t >= 0 && gmtime_r(&tt, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, "created_at", when[0] ? json_string(when) : json_null());
	json_object_set_new(o, "creation_time", json_integer((json_int_t)t));
	json_object_set_new(
		o, "parent",
		str_or_null(kc_xpath_string(x.ctx, "string(/domainsnapshot/parent/name)")));
	int cur = virDomainSnapshotIsCurrent(s, 0);
	json_object_set_new(o, "current", json_boolean(cur == 1));
	if (cur < 0)
		virResetLastError();

	virDomainSnapshotPtr *kids = NULL;
	int nk = virDomainSnapshotListAllChildren(s, &kids, 0);
	if (nk < 0)
		virResetLastError();
	for (int i = 0; i < nk; i++)
		json_array_append_new(children, json_string(virDomainSnapshotGetName(kids[i])));
	free_snaps(kids, nk);
	json_object_set_new(o, "children", children);

	int n;
	xmlXPathObjectPtr nodes = xnodes(&x, "/domainsnapshot/disks/disk", &n);
	uint64_t vmstate_total = 0;
	bool vmstate_known = false;
	for (int i = 0; i < n; i++) {
		x.ctx->node = nodes->nodesetval->nodeTab[i];
		_cleanup_free_ char *dev = kc_xpath_string(x.ctx, "string(@name)");
		_cleanup_free_ char *how = kc_xpath_string(x.ctx, "string(@snapshot)");
		json_t *d = json_pack("{s:s?,s:s}", "target", dev, "snapshot", how ? how : "no");
		if (d && with_sizes && dev && how && strcmp(how, "internal") == 0) {
			char expr[160];
			snprintf(expr, sizeof(expr),
				 "string(/domainsnapshot/domain/devices/disk[target/@dev='%s']/"
				 "source/@file)",
				 dev);
			x.ctx->node = NULL;
			_cleanup_free_ char *path =
				strchr(dev, '\'') ? NULL : kc_xpath_string(x.ctx, expr);
			uint64_t vmstate = 0, size = 0;
			if (path && qcow2_snapshot_sizes(path, name, &vmstate, &size)) {
				json_object_set_new(d, "size_bytes",
						    json_integer((json_int_t)size));
				vmstate_total += vmstate;
				vmstate_known = true;
			}
		}
		if (d)
			json_array_append_new(disks, d);
	}
	x.ctx->node = NULL;
	xmlXPathFreeObject(nodes);
	json_object_set_new(o, "disks", disks);
	if (memory && vmstate_known)
		json_object_set_new(o, "memory_bytes", json_integer((json_int_t)vmstate_total));
	xdoc_close(&x);
	return steal_ptr(&o);
}

static int check_creating(struct kc_agent *a, const char *vm, struct kc_error *err)
{
	pthread_mutex_lock(&a->create_lock);
	bool creating = kc_agent_is_creating(a, vm);
	pthread_mutex_unlock(&a->create_lock);
	if (creating)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "VM %s is being created; try again when it is done", vm);
	return 0;
}

/* The VM (after the checks every operation makes) and its connection. */
static virDomainPtr vm_get(struct kc_agent *a, const char *vm, virConnectPtr *ret_conn,
			   struct kc_error *err)
{
	if (kc_name_validate(vm, "VM name", err) < 0 || check_creating(a, vm, err) < 0)
		return NULL;
	return kc_dom_get(a, vm, ret_conn, err);
}

static virDomainSnapshotPtr snap_lookup(virDomainPtr d, const char *name, struct kc_error *err)
{
	if (kc_name_validate(name, "snapshot name", err) < 0)
		return NULL;
	virDomainSnapshotPtr s = virDomainSnapshotLookupByName(d, name, 0);
	if (s)
		return s;
	virErrorPtr e = virGetLastError();
	if (e && e->code == VIR_ERR_NO_DOMAIN_SNAPSHOT) {
		virResetLastError();
		kc_error_set(err, KC_ERR_NOT_FOUND, "VM %s has no snapshot '%s'",
			     virDomainGetName(d), name);
		return NULL;
	}
	kc_lverr(err, "looking up snapshot '%s'", name);
	return NULL;
}

/* The VM's snapshot `name`; *ret_conn and *ret_dom are the caller's to
 * free, also on failure. */
static virDomainSnapshotPtr snap_open(struct kc_agent *a, const char *vm, const char *name,
				      virConnectPtr *ret_conn, virDomainPtr *ret_dom,
				      struct kc_error *err)
{
	*ret_dom = vm_get(a, vm, ret_conn, err);
	return *ret_dom ? snap_lookup(*ret_dom, name, err) : NULL;
}

/* The <domainsnapshot> to ask libvirt for: each writable disk snapshotted
 * inside its qcow2 file, read-only ones (CD-ROMs, the seed) and empty
 * drives left out; the memory too when the VM runs.  A writable disk that
 * is not qcow2 cannot hold an internal snapshot: conflict. */
static char *snapshot_xml(virDomainPtr d, const char *name, const char *desc, bool active,
			  struct kc_error *err)
{
	_cleanup_free_ char *dxml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
	struct xdoc x;
	struct kc_xmlw w;
	int n, r = 0;

	if (!dxml) {
		kc_lverr(err, "reading the XML of VM '%s'", virDomainGetName(d));
		return NULL;
	}
	if (xdoc_parse(dxml, "the VM", &x, err) < 0)
		return NULL;
	if (kc_xmlw_init(&w, err) < 0) {
		xdoc_close(&x);
		return NULL;
	}
	kc_xmlw_start(&w, "domainsnapshot");
	kc_xmlw_elem(&w, "name", name);
	if (desc && *desc)
		kc_xmlw_elem(&w, "description", desc);
	kc_xmlw_elem_attr(&w, "memory", "snapshot", active ? "internal" : "no");
	kc_xmlw_start(&w, "disks");
	xmlXPathObjectPtr nodes = xnodes(&x, "/domain/devices/disk", &n);
	for (int i = 0; i < n && r == 0; i++) {
		x.ctx->node = nodes->nodesetval->nodeTab[i];
		_cleanup_free_ char *dev = kc_xpath_string(x.ctx, "string(target/@dev)");
		_cleanup_free_ char *kind = kc_xpath_string(x.ctx, "string(@device)");
		_cleanup_free_ char *fmt = kc_xpath_string(x.ctx, "string(driver/@type)");
		_cleanup_free_ char *src = kc_xpath_string(
			x.ctx, "concat(source/@file, source/@dev, source/@name, source/@volume)");
		bool ro = kc_xpath_long(x.ctx, "count(readonly)", 0) > 0;
		if (!dev)
			continue;
		bool writable = !ro && kind && strcmp(kind, "disk") == 0 && src;
		if (writable && (!fmt || strcmp(fmt, "qcow2") != 0)) {
			r = kc_error_set(err, KC_ERR_CONFLICT,
					 "disk %s of VM %s is %s, not qcow2: it cannot hold a "
					 "snapshot",
					 dev, virDomainGetName(d), fmt ? fmt : "of unknown format");
			break;
		}
		kc_xmlw_start(&w, "disk");
		kc_xmlw_attr(&w, "name", dev);
		kc_xmlw_attr(&w, "snapshot", writable ? "internal" : "no");
		kc_xmlw_end(&w);
	}
	x.ctx->node = NULL;
	xmlXPathFreeObject(nodes);
	xdoc_close(&x);
	kc_xmlw_end(&w);
	kc_xmlw_end(&w);
	char *xml = kc_xmlw_finish(&w, "snapshot XML", r < 0 ? NULL : err);
	if (r < 0) {
		free(xml);
		return NULL;
	}
	return xml;
}

static int check_desc(const char *desc, struct kc_error *err)
{
	size_t n = desc ? strlen(desc) : 0;
	if (n > KC_SNAPSHOT_DESC_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "description longer than %d bytes",
				    KC_SNAPSHOT_DESC_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)desc[i] < 0x20 || desc[i] == 0x7f)
			return kc_error_set(err, KC_ERR_INVALID,
					    "description may not hold control characters");
	return 0;
}

int kc_agent_snapshot_create(struct kc_agent *a, const char *vm, const char *name,
			     const char *description, json_t **ret, struct kc_error *err)
{
	if (kc_name_validate(name, "snapshot name", err) < 0 || check_desc(description, err) < 0)
		return -1;
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = vm_get(a, vm, &conn, err);
	if (!d)
		return -1;
	_cleanup_snap_ virDomainSnapshotPtr old = virDomainSnapshotLookupByName(d, name, 0);
	if (old)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM %s already has a snapshot '%s'", vm,
				    name);
	virResetLastError();
	int count = virDomainSnapshotNum(d, 0);
	if (count < 0)
		return kc_lverr(err, "counting the snapshots of VM '%s'", vm);
	if (count >= KC_SNAPSHOT_MAX)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "VM %s has %d snapshots, the most allowed; delete some first",
				    vm, count);
	int active = virDomainIsActive(d);
	if (active < 0)
		return kc_lverr(err, "reading the state of VM '%s'", vm);
	_cleanup_free_ char *xml = snapshot_xml(d, name, description, active == 1, err);
	if (!xml)
		return -1;
	_cleanup_snap_ virDomainSnapshotPtr s =
		virDomainSnapshotCreateXML(d, xml, VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
	if (!s) {
		/* Two creates of one name at once: libvirt lets one win. */
		virErrorPtr e = virGetLastError();
		_cleanup_free_ char *msg = e && e->message ? strdup(e->message) : NULL;
		virResetLastError();
		_cleanup_snap_ virDomainSnapshotPtr again =
			virDomainSnapshotLookupByName(d, name, 0);
		virResetLastError();
		if (again)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "VM %s already has a snapshot '%s'", vm, name);
		return kc_error_set(err, KC_ERR_HYPERVISOR, "creating snapshot '%s' of VM '%s': %s",
				    name, vm, msg ? msg : "unknown libvirt error");
	}
	json_t *o = snapshot_json(s, true, err);
	if (!o)
		return -1;
	*ret = o;
	return 0;
}

struct snap_row {
	long long t;
	json_t *o;
};

static int row_cmp(const void *pa, const void *pb)
{
	const struct snap_row *a = pa, *b = pb;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return strcmp(json_string_value(json_object_get(a->o, "name")),
		      json_string_value(json_object_get(b->o, "name")));
}

int kc_agent_snapshot_list(struct kc_agent *a, const char *vm, json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = vm_get(a, vm, &conn, err);
	if (!d)
		return -1;
	virDomainSnapshotPtr *snaps = NULL;
	int n = virDomainListAllSnapshots(d, &snaps, 0);
	if (n < 0)
		return kc_lverr(err, "listing the snapshots of VM '%s'", vm);
	_cleanup_free_ struct snap_row *rows = calloc((size_t)n + 1, sizeof(*rows));
	int r = rows ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	int got = 0;
	for (int i = 0; i < n && r == 0; i++) {
		struct kc_error e = {0};
		json_t *o = snapshot_json(snaps[i], false, &e);
		if (o) {
			rows[got].t = json_integer_value(json_object_get(o, "creation_time"));
			rows[got++].o = o;
		} else if (e.code != KC_ERR_NOT_FOUND) { /* deleted meanwhile: skip */
			r = kc_error_set(err, e.code, "%s", e.message);
		}
	}
	free_snaps(snaps, n);
	_cleanup_json_ json_t *arr = json_array();
	const char *current = NULL;
	if (rows)
		qsort(rows, (size_t)got, sizeof(*rows), row_cmp);
	for (int i = 0; i < got; i++) {
		if (json_is_true(json_object_get(rows[i].o, "current")))
			current = json_string_value(json_object_get(rows[i].o, "name"));
		json_array_append_new(arr, rows[i].o);
	}
	if (r < 0)
		return -1;
	json_t *o = json_pack("{s:s,s:s?,s:O}", "vm", vm, "current", current, "snapshots", arr);
	if (!o)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = o;
	return 0;
}

int kc_agent_snapshot_show(struct kc_agent *a, const char *vm, const char *name, json_t **ret,
			   struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = NULL;
	_cleanup_snap_ virDomainSnapshotPtr s = snap_open(a, vm, name, &conn, &d, err);
	if (!s)
		return -1;
	json_t *o = snapshot_json(s, true, err);
	if (!o)
		return -1;
	*ret = o;
	return 0;
}

int kc_agent_snapshot_revert(struct kc_agent *a, const char *vm, const char *name, bool start,
			     json_t **ret, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = NULL;
	_cleanup_snap_ virDomainSnapshotPtr s = snap_open(a, vm, name, &conn, &d, err);
	if (!s)
		return -1;
	if (virDomainRevertToSnapshot(s, start ? VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING : 0) < 0)
		return kc_lverr(err, "reverting VM '%s' to snapshot '%s'", vm, name);
	int state = 0, reason = 0;
	if (virDomainGetState(d, &state, &reason, 0) < 0)
		return kc_lverr(err, "reading the state of VM '%s'", vm);
	json_t *o = json_pack("{s:s,s:s}", "snapshot", name, "state", kc_vm_state_name(state));
	if (!o)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret = o;
	return 0;
}

int kc_agent_snapshot_delete(struct kc_agent *a, const char *vm, const char *name,
			     bool with_children, unsigned *ret_deleted, struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = NULL;
	_cleanup_snap_ virDomainSnapshotPtr s = snap_open(a, vm, name, &conn, &d, err);
	if (!s)
		return -1;
	int below = 0;
	if (with_children) {
		below = virDomainSnapshotNumChildren(s, VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS);
		if (below < 0)
			return kc_lverr(err, "counting the children of snapshot '%s'", name);
	}
	if (virDomainSnapshotDelete(s, with_children ? VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN : 0) < 0)
		return kc_lverr(err, "deleting snapshot '%s' of VM '%s'", name, vm);
	if (ret_deleted)
		*ret_deleted = (unsigned)below + 1;
	return 0;
}

int kc_snapshots_count(virDomainPtr d, int *ret, struct kc_error *err)
{
	int n = virDomainSnapshotNum(d, 0);
	if (n < 0)
		return kc_lverr(err, "counting the snapshots of VM '%s'", virDomainGetName(d));
	*ret = n;
	return 0;
}

int kc_snapshots_delete_all(virDomainPtr d, struct kc_error *err)
{
	virDomainSnapshotPtr *roots = NULL;
	int n = virDomainListAllSnapshots(d, &roots, VIR_DOMAIN_SNAPSHOT_LIST_ROOTS);
	int r = 0;

	if (n < 0)
		return kc_lverr(err, "listing the snapshots of VM '%s'", virDomainGetName(d));
	for (int i = 0; i < n && r == 0; i++)
		if (virDomainSnapshotDelete(roots[i], VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN) < 0)
			r = kc_lverr(err, "deleting snapshot '%s' of VM '%s'",
				     virDomainSnapshotGetName(roots[i]), virDomainGetName(d));
	free_snaps(roots, n);
	return r;
}
