/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vm_create.c - a VM request resolved against this host and turned into
 * volumes, a seed ISO and a libvirt domain.  All or nothing: whatever was
 * created before a failure is removed again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "domain_xml.h"
#include "pool.h"

/* What this create has made so far, for the rollback. */
struct created {
	char *vols[1 + KC_MAX_DATA_DISKS];
	size_t n_vols;
	char *seed_path;
	char *log_path;
	virDomainPtr dom;
	struct kc_intent intent;
	struct kc_clone_target target; /* the pool of the disks (clone.c) */
};

/* A rollback that libvirtd's death interrupted waits this long for the
 * daemon to come back: the domain it may have defined must go too. */
#define ROLLBACK_WAIT_MS 60000

/* conn is dead (libvirtd went away during the create): waits for a new
 * connection and looks the domain up again there, since the define may or
 * may not have reached the old daemon.  NULL if libvirtd stays away. */
static virConnectPtr rollback_reconnect(struct kc_agent *a, struct created *c, const char *name)
{
	uint64_t until = kc_now_ms() + ROLLBACK_WAIT_MS;
	virConnectPtr fresh;
	while (!(fresh = kc_conn_get(a, NULL)) && kc_now_ms() < until) {
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!fresh)
		return NULL;
	if (c->dom)
		virDomainFree(c->dom);
	/* The name is claimed by this create: a domain of that name is ours. */
	c->dom = virDomainLookupByName(fresh, name);
	virResetLastError();
	return fresh;
}

/* Removes what c records.  False if libvirt could not be reached to do
 * it: the caller keeps the intent record for the reaper then. */
static bool rollback(struct kc_agent *a, virConnectPtr conn, virStoragePoolPtr pool,
		     struct created *c, const char *name)
{
	_cleanup_conn_ virConnectPtr fresh = NULL;
	_cleanup_pool_ virStoragePoolPtr fresh_pool = NULL;
	if (virConnectIsAlive(conn) != 1) {
		virResetLastError();
		if (!(fresh = rollback_reconnect(a, c, name)))
			return false;
		pool = fresh_pool = kc_pool_get(a, fresh, NULL);
	}
	if (c->dom) {
		if (virDomainIsActive(c->dom) == 1)
			virDomainDestroy(c->dom);
		virDomainUndefineFlags(c->dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
						       VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
						       VIR_DOMAIN_UNDEFINE_NVRAM);
		virResetLastError();
	}
	/* The disks' pool: the default one is `pool` (fresh after a
	 * reconnect); another pool's old handle is dead then, files remain. */
	if (c->target.nfs_host) {
		/* Through libnfs (the pool's table), libvirt has no part in it. */
		for (size_t i = 0; i < c->n_vols; i++)
			if (c->vols[i])
				kc_pool_vol_delete(c->target.kp, c->vols[i], NULL);
	}
	bool in_default = !c->target.nfs_host &&
			  (!c->target.dir || strcmp(c->target.dir, a->storage_dir) == 0);
	virStoragePoolPtr tpool = in_default ? pool : fresh ? NULL : c->target.pool;
	for (size_t i = 0; i < c->n_vols && !c->target.nfs_host; i++) {
		if (!c->vols[i])
			continue;
		if (tpool && kc_vol_delete_name(tpool, c->vols[i], NULL) < 0)
			virResetLastError();
		/* As the reaper does: libvirt may not know the file (a new
		 * daemon that has not refreshed the pool, or no pool at all). */
		char path[4200];
		snprintf(path, sizeof(path), "%s/%s", in_default ? a->storage_dir : c->target.dir,
			 c->vols[i]);
		unlink(path);
	}
	if (tpool && tpool != pool && virStoragePoolRefresh(tpool, 0) < 0)
		virResetLastError();
	if (c->seed_path)
		unlink(c->seed_path);
	if (c->log_path)
		unlink(c->log_path);
	if (pool && virStoragePoolRefresh(pool, 0) < 0)
		virResetLastError();
	return true;
}

static void created_clear(struct created *c)
{
	for (size_t i = 0; i < c->n_vols; i++)
		free(c->vols[i]);
	free(c->seed_path);
	free(c->log_path);
	if (c->dom)
		virDomainFree(c->dom);
	kc_clone_target_close(&c->target);
}

/* Adds a disk to def; target NULL names it after the virtio disks before
 * it: vda, vdb... */
static int set_disk(struct kc_domain_def *def, enum kc_disk_device dev, enum kc_disk_bus bus,
		    enum kc_disk_format fmt, const char *path, const char *target,
		    struct kc_error *err)
{
	if (def->n_disks >= KC_MAX_DISKS)
		return kc_error_set(err, KC_ERR_INVALID, "too many disks");
	struct kc_disk_def *d = &def->disks[def->n_disks];
	d->path = strdup(path);
	if (!d->path)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	d->device = dev;
	d->bus = bus;
	d->format = fmt;
	d->readonly = dev == KC_DEVICE_CDROM;
	if (target) {
		snprintf(d->target, sizeof(d->target), "%s", target);
	} else {
		size_t n_virtio = 0;
		for (size_t i = 0; i < def->n_disks; i++)
			n_virtio += def->disks[i].bus == KC_BUS_VIRTIO;
		snprintf(d->target, sizeof(d->target), "vd%c", (char)('a' + n_virtio));
	}
	def->n_disks++;
	return 0;
}

/* make_volume in an NFS pool: the record names the volume with its
 * pool's definition (the reaper deletes it through libnfs). */
static int make_nfs_volume(struct kc_agent *a, struct created *c, struct kc_domain_def *def,
			   const char *vol, uint64_t capacity, const char *backing,
			   const char *full_from, uint64_t full_size, const char *vm,
			   struct kc_error *err)
{
	struct kc_clone_target *t = &c->target;
	int ex = kc_clone_nfs_vol_exists(t, vol, err);
	if (ex < 0)
		return -1;
	if (ex > 0)
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "volume %s exists already in pool \"%s\" (a disk kept "
				    "from an earlier VM?)",
				    vol, t->name);
	if (kc_intent_note_pool_vol(&c->intent, kc_pool_get_def(t->kp), vol, err) < 0)
		return -1;
	c->vols[c->n_vols++] = strdup(vol);
	int r = full_from ? kc_clone_full(a, t, vm, full_from, vol, capacity, full_size, err)
		: backing ? kc_clone_overlay_nfs(t, vol, capacity, backing, err)
			  : kc_pool_vol_create(t->kp, vol, KC_VOL_QCOW2, capacity, err);
	if (r < 0)
		return -1;
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", t->nfs_export, vol);
	if (set_disk(def, KC_DEVICE_DISK, KC_BUS_VIRTIO, KC_FORMAT_QCOW2, path, NULL, err) < 0)
		return -1;
	struct kc_disk_def *d = &def->disks[def->n_disks - 1];
	d->nfs_host = strdup(t->nfs_host);
	if (!d->nfs_host || (backing && !(d->nfs_backing = strdup(backing))))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

/* Names vol in the intent record, then creates it and adds it to def as
 * the next virtio disk.  A volume of that name that exists already (a disk
 * kept from an earlier VM) is a conflict and never goes into the record: a
 * reaper would delete it. */
static int make_volume(struct kc_agent *a, struct created *c, struct kc_domain_def *def,
		       const char *vol, uint64_t capacity, const char *backing,
		       const char *full_from, uint64_t full_size, const char *vm,
		       struct kc_error *err)
{
	struct kc_clone_target *t = &c->target;
	char path[4200];
	if (t->nfs_host)
		return make_nfs_volume(a, c, def, vol, capacity, backing, full_from, full_size, vm,
				       err);
	snprintf(path, sizeof(path), "%s/%s", t->dir, vol);
	virStorageVolPtr v = virStorageVolLookupByName(t->pool, vol);
	if (v || access(path, F_OK) == 0) {
		if (v)
			virStorageVolFree(v);
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "volume %s exists already in pool \"%s\" (a disk kept "
				    "from an earlier VM?)",
				    vol, t->name);
	}
	virResetLastError();
	/* The record names the default pool's files relative to storage.dir,
	 * other pools' by their whole path. */
	bool in_default = strcmp(t->dir, a->storage_dir) == 0;
	if (kc_intent_note(&c->intent, in_default ? vol : path, err) < 0)
		return -1;
	/* The rollback's before it is made, as the reaper's: a libvirtd that
	 * dies during the create may still leave the file. */
	c->vols[c->n_vols++] = strdup(vol);
	if (full_from ? kc_clone_full(a, t, vm, full_from, vol, capacity, full_size, err) < 0
		      : kc_vol_create_qcow2(t->pool, vol, capacity, backing, err) < 0)
		return -1;
	return set_disk(def, KC_DEVICE_DISK, KC_BUS_VIRTIO, KC_FORMAT_QCOW2, path, NULL, err);
}

static int random_mac(char mac[18], struct kc_error *err)
{
	unsigned char b[3];
	if (kc_random_bytes(b, sizeof(b), err) < 0)
		return -1;
	snprintf(mac, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
	return 0;
}

static int random_uuid(char uuid[37], struct kc_error *err)
{
	unsigned char b[16];
	if (kc_random_bytes(b, sizeof(b), err) < 0)
		return -1;
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(uuid, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

static char *random_password(struct kc_error *err)
{
	static const char set[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	unsigned char b[8];
	if (kc_random_bytes(b, sizeof(b), err) < 0)
		return NULL;
	char *p = malloc(9);
	if (!p)
		return NULL;
	for (int i = 0; i < 8; i++)
		p[i] = set[b[i] % (sizeof(set) - 1)];
	p[8] = '\0';
	return p;
}

/* Adds <image> and <created_at> to the <metadata> element domain_xml wrote
 * (it only knows the owner). */
static int add_metadata(const char *xml, const char *image, char **ret, struct kc_error *err)
{
	xmlDocPtr doc = xmlReadMemory(xml, strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot parse the generated domain XML");
	int ret_code = -1;
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr o = NULL;
	if (!ctx)
		goto out;
	xmlXPathRegisterNs(ctx, (const xmlChar *)"kc", (const xmlChar *)KC_XML_NS);
	o = xmlXPathEvalExpression((const xmlChar *)"/domain/metadata/kc:*[1]", ctx);
	if (!o || !o->nodesetval || o->nodesetval->nodeNr < 1) {
		kc_error_set(err, KC_ERR_INTERNAL, "the generated domain XML has no metadata");
		goto out;
	}
	xmlNodePtr vm = o->nodesetval->nodeTab[0];
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (image && *image)
		xmlNewTextChild(vm, vm->ns, (const xmlChar *)"image", (const xmlChar *)image);
	xmlNewTextChild(vm, vm->ns, (const xmlChar *)"created_at", (const xmlChar *)now);
	xmlChar *out = NULL;
	int len = 0;
	xmlDocDumpMemory(doc, &out, &len);
	if (!out) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot write the domain XML");
		goto out;
	}
	*ret = strdup((const char *)out);
	xmlFree(out);
	ret_code = *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
out:
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return ret_code;
}

static int check_nics(virConnectPtr conn, const struct kc_vm_request *req, struct kc_error *err)
{
	for (size_t i = 0; i < req->n_nics; i++) {
		const struct kc_nic_request *n = &req->nics[i];
		if (n->network[0]) {
			/* A guest network: the server ensured it here (net.ensure). */
			if (!n->resolved)
				return kc_error_set(err, KC_ERR_INVALID,
						    "NIC %zu: network \"%s\" has no definition", i,
						    n->network);
		} else if (n->type == KC_NIC_NETWORK) {
			if (kc_name_validate(n->source, "network name", err) < 0)
				return -1;
			virNetworkPtr net = virNetworkLookupByName(conn, n->source);
			if (!net) {
				virResetLastError();
				return kc_error_set(err, KC_ERR_NOT_FOUND,
						    "libvirt network '%s' not found", n->source);
			}
			virNetworkFree(net);
		} else if (n->type == KC_NIC_BRIDGE) {
			_cleanup_free_ char *p = kc_path_join_name("/sys/class/net", n->source,
								   "/bridge", "bridge name", err);
			if (!p)
				return -1;
			if (access(p, F_OK) != 0)
				return kc_error_set(err, KC_ERR_NOT_FOUND,
						    "bridge '%s' not found on this host",
						    n->source);
		}
	}
	return 0;
}

static void default_hostname(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%.63s", name);
	for (char *p = buf; *p; p++)
		if (*p == '_' || *p == '.')
			*p = '-';
}

/* Claims `name` and `bytes` of pool space for a create under way.  Fails
 * if the name is a domain already or another create holds it, or if the
 * pool cannot hold these bytes on top of what other creates claimed. */
static int claim(struct kc_agent *a, virConnectPtr conn, virStoragePoolPtr pool, const char *name,
		 uint64_t bytes, struct kc_error *err)
{
	pthread_mutex_lock(&a->create_lock);
	int r = -1;
	uint64_t claimed = 0;
	for (size_t i = 0; i < a->n_inflight; i++) {
		if (strcmp(a->inflight[i].name, name) == 0) {
			kc_error_set(err, KC_ERR_CONFLICT, "VM '%s' is being created already",
				     name);
			goto out;
		}
		claimed += a->inflight[i].bytes;
	}
	virDomainPtr existing = virDomainLookupByName(conn, name);
	if (existing) {
		virDomainFree(existing);
		kc_error_set(err, KC_ERR_CONFLICT, "VM '%s' exists already", name);
		goto out;
	}
	virResetLastError();
	if (a->n_inflight == KC_MAX_INFLIGHT) {
		kc_error_set(err, KC_ERR_UNAVAILABLE,
			     "more than %d VM creates at once on this host", KC_MAX_INFLIGHT);
		goto out;
	}
	if (kc_pool_check_space(pool, bytes + claimed, err) < 0)
		goto out;
	struct kc_inflight *f = &a->inflight[a->n_inflight++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->bytes = bytes;
	r = 0;
out:
	pthread_mutex_unlock(&a->create_lock);
	return r;
}

static void release(struct kc_agent *a, const char *name)
{
	pthread_mutex_lock(&a->create_lock);
	for (size_t i = 0; i < a->n_inflight; i++) {
		if (strcmp(a->inflight[i].name, name) == 0) {
			a->inflight[i] = a->inflight[--a->n_inflight];
			break;
		}
	}
	pthread_mutex_unlock(&a->create_lock);
}

bool kc_agent_is_creating(struct kc_agent *a, const char *name)
{
	/* Callers hold create_lock. */
	for (size_t i = 0; i < a->n_inflight; i++)
		if (strcmp(a->inflight[i].name, name) == 0)
			return true;
	return false;
}

json_t *kc_agent_creates_in_flight(struct kc_agent *a)
{
	json_t *names = json_array();
	pthread_mutex_lock(&a->create_lock);
	for (size_t i = 0; names && i < a->n_inflight; i++)
		json_array_append_new(names, json_string(a->inflight[i].name));
	pthread_mutex_unlock(&a->create_lock);
	return names;
}

/* <images.dir>/<name><ext>, which must be readable; `kind` ("image",
 * "ISO") names it in errors. */
static char *store_file(struct kc_agent *a, const char *name, const char *ext, const char *kind,
			struct kc_error *err)
{
	char what[16];
	snprintf(what, sizeof(what), "%s name", kind);
	_cleanup_free_ char *path = kc_path_join_name(a->images_dir, name, ext, what, err);
	if (!path)
		return NULL;
	if (access(path, R_OK) != 0) {
		kc_error_set(err, KC_ERR_NOT_FOUND, "%s '%s' not found in the image store", kind,
			     name);
		return NULL;
	}
	return steal_ptr(&path);
}

static int create_vm(struct kc_agent *a, virConnectPtr conn, const struct kc_vm_request *req,
		     const struct kc_pool_def *pool_def, struct created *c,
		     virStoragePoolPtr *ret_pool, bool *ret_claimed, struct kc_error *err)
{
	virDomainPtr existing = virDomainLookupByName(conn, req->name);
	if (existing) {
		virDomainFree(existing);
		return kc_error_set(err, KC_ERR_CONFLICT, "VM '%s' exists already", req->name);
	}
	virResetLastError();

	_cleanup_free_ char *img = NULL, *iso = NULL;
	uint64_t img_size = 0;
	if (req->image[0]) {
		img = store_file(a, req->image, ".qcow2", "image", err);
		if (!img)
			return -1;
		char what[KC_NAME_MAX + 16];
		snprintf(what, sizeof(what), "image '%s'", req->image);
		if (kc_qcow2_virtual_size(img, what, &img_size, err) < 0)
			return -1;
	}
	if (req->iso[0]) {
		iso = store_file(a, req->iso, ".iso", "ISO", err);
		if (!iso)
			return -1;
	}
	if (!img && !iso)
		return kc_error_set(err, KC_ERR_INVALID, "a VM needs an image or an iso");
	if (check_nics(conn, req, err) < 0)
		return -1;
	if (req->disk_gib > KC_MAX_DISK_GIB)
		return kc_error_set(err, KC_ERR_INVALID, "disk_gib is over %d", KC_MAX_DISK_GIB);

	uint64_t root = req->disk_gib * KC_GIB;
	if (img && root < img_size)
		root = img_size;
	uint64_t total = root;
	for (size_t i = 0; i < req->n_data_disks && i < KC_MAX_DATA_DISKS; i++) {
		if (req->data_disks_gib[i] < 1 || req->data_disks_gib[i] > KC_MAX_DISK_GIB)
			return kc_error_set(err, KC_ERR_INVALID,
					    "data disk %zu: size must be 1..%d GiB", i,
					    KC_MAX_DISK_GIB);
		total += req->data_disks_gib[i] * KC_GIB;
	}

	if (pool_def && strcmp(pool_def->name, req->pool) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "vm.create: the pool definition is \"%s\", the request names "
				    "\"%s\"",
				    pool_def->name, req->pool);
	if (!pool_def && strcmp(req->pool, KC_POOL_DEFAULT_NAME) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "vm.create: pool \"%s\" needs its definition (\"pool_def\")",
				    req->pool);
	/* The default pool holds the intent record and the seed ISO. */
	virStoragePoolPtr pool = kc_pool_get(a, conn, err);
	if (!pool)
		return -1;
	*ret_pool = pool;
	if (kc_clone_target_open(a, conn, pool_def, &c->target, err) < 0)
		return -1;
	bool in_default = !c->target.kp;
	if (!in_default) {
		/* Another pool: its own rule (capacity x overcommit), pool.h. */
		struct kc_pool_info info;
		if (kc_pool_info(c->target.kp, &info, err) < 0 ||
		    kc_pool_check_overcommit(c->target.name, &info, pool_def->overcommit_pct, total,
					     err) < 0)
			return -1;
	}
	if (claim(a, conn, pool, req->name, in_default ? total : 0, err) < 0)
		return -1;
	*ret_claimed = true;
	/* From here on every file is named in the record before it is made. */
	if (kc_intent_begin(a, conn, pool, req->name, &c->intent, err) < 0)
		return -1;

	_cleanup_(kc_domain_def_clear) struct kc_domain_def def = {0};
	if (random_uuid(def.uuid, err) < 0)
		return -1;
	def.name = strdup(req->name);
	def.owner = strdup(KC_OWNER);
	def.serial_log = kc_path_join_name(a->console_dir, req->name, ".log", "VM name", err);
	if (!def.name || !def.owner || !def.serial_log)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	def.accel = kc_agent_accel(a);
	def.vcpus = req->vcpus ? req->vcpus : 1;
	def.memory_kib = req->memory_mib * 1024;
	def.cpu_mode = a->cpu_mode;
	if (a->cpu_mode == KC_CPU_CUSTOM && !(def.cpu_model = strdup(a->cpu_model)))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	char path[4200], vol[KC_NAME_MAX + 32];
	if (root > 0) {
		snprintf(vol, sizeof(vol), "%s-root.qcow2", req->name);
		_cleanup_free_ char *base = NULL;
		/* Linked: an overlay on the pool's cached copy of the template. */
		if (img && req->clone == KC_CLONE_LINKED &&
		    (c->target.nfs_host ? kc_clone_base_ensure_nfs(a, &c->target, req->image, img,
								   &c->intent, &base, err)
					: kc_clone_base_ensure(a, &c->target, req->image, img,
							       &c->intent, &base, err)) < 0)
			return -1;
		if (make_volume(a, c, &def, vol, root, base,
				img && req->clone == KC_CLONE_FULL ? img : NULL, img_size,
				req->name, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < req->n_data_disks && i < KC_MAX_DATA_DISKS; i++) {
		snprintf(vol, sizeof(vol), "%s-data%zu.qcow2", req->name, i + 1);
		if (make_volume(a, c, &def, vol, req->data_disks_gib[i] * KC_GIB, NULL, NULL, 0,
				req->name, err) < 0)
			return -1;
	}
	/* IDE, not SATA: on the `pc` machine every guest kernel can read an
	 * IDE CD-ROM, while many cloud kernels have no AHCI driver. */
	if (iso && set_disk(&def, KC_DEVICE_CDROM, KC_BUS_IDE, KC_FORMAT_RAW, iso, "hdc", err) < 0)
		return -1;
	if (img) {
		char host[64];
		if (req->hostname[0])
			snprintf(host, sizeof(host), "%s", req->hostname);
		else
			default_hostname(req->name, host, sizeof(host));
		/* As for volumes: a kept seed never goes into the record. */
		snprintf(vol, sizeof(vol), "%s-seed.iso", req->name);
		snprintf(path, sizeof(path), "%s/%s", a->storage_dir, vol);
		if (access(path, F_OK) == 0)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "volume %s exists already in the storage pool (kept "
					    "from an earlier VM?)",
					    vol);
		if (kc_intent_note(&c->intent, vol, err) < 0)
			return -1;
		if (kc_seed_create(a, req->name, def.uuid, host, req->user_data, &c->seed_path,
				   err) < 0)
			return -1;
		if (virStoragePoolRefresh(pool, 0) < 0)
			virResetLastError();
		/* A read-only virtio disk rather than a SATA CD-ROM: NoCloud finds
		 * it by its label either way, virtio_blk is in every cloud image
		 * (kctest has no AHCI driver), and it leaves the one CD-ROM slot
		 * to a user ISO. */
		if (set_disk(&def, KC_DEVICE_DISK, KC_BUS_VIRTIO, KC_FORMAT_RAW, c->seed_path, NULL,
			     err) < 0)
			return -1;
		def.disks[def.n_disks - 1].readonly = true;
	}

	def.n_nics = req->n_nics;
	for (size_t i = 0; i < req->n_nics && i < KC_MAX_NICS; i++) {
		def.nics[i].type = req->nics[i].type;
		if (req->nics[i].resolved) {
			if (kc_gnet_nic_attach(&req->nics[i].gnet, &def.nics[i], err) < 0)
				return -1;
		} else if (req->nics[i].type != KC_NIC_USER &&
			   !(def.nics[i].source = strdup(req->nics[i].source))) {
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
		if (req->nics[i].mac[0])
			snprintf(def.nics[i].mac, sizeof(def.nics[i].mac), "%s", req->nics[i].mac);
		else if (random_mac(def.nics[i].mac, err) < 0)
			return -1;
	}
	if (req->n_nics == 0) {
		def.n_nics = 1;
		def.nics[0].type = KC_NIC_USER;
		if (random_mac(def.nics[0].mac, err) < 0)
			return -1;
	}
	def.n_boot = req->n_boot;
	for (size_t i = 0; i < req->n_boot && i < KC_MAX_BOOT; i++)
		def.boot[i] = req->boot[i];
	def.graphics = req->graphics;
	if (def.graphics == KC_GRAPHICS_VNC && !(def.vnc_password = random_password(err)))
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot make a VNC password");

	_cleanup_free_ char *xml0 = NULL, *xml = NULL;
	if (kc_domain_xml_build(&def, &xml0, err) < 0 ||
	    add_metadata(xml0, req->image, &xml, err) < 0)
		return -1;

	/* A log left by an earlier VM of the same name is not this VM's. */
	unlink(def.serial_log);
	c->log_path = strdup(def.serial_log);
	c->dom = virDomainDefineXML(conn, xml);
	if (!c->dom)
		return kc_lverr(err, "defining VM '%s'", req->name);
	if (req->autostart && virDomainSetAutostart(c->dom, 1) < 0)
		return kc_lverr(err, "setting autostart of VM '%s'", req->name);
	if (req->start && virDomainCreate(c->dom) < 0)
		return kc_lverr(err, "starting VM '%s'", req->name);
	return 0;
}

/* What the create returns when kc_vm_json fails: {"name","uuid","state"}. */
static json_t *minimal_json(virDomainPtr dom, const char *name)
{
	char uuid[VIR_UUID_STRING_BUFLEN] = "";
	int state = -1, reason;
	if (virDomainGetUUIDString(dom, uuid) < 0 || virDomainGetState(dom, &state, &reason, 0) < 0)
		virResetLastError();
	return json_pack("{s:s,s:s,s:s}", "name", name, "uuid", uuid, "state",
			 kc_vm_state_name(state));
}

/* *ret_unsettled: the rollback could not reach libvirt, the intent record
 * is kept. */
static int vm_create(struct kc_agent *a, const struct kc_vm_request *req,
		     const struct kc_pool_def *pool_def, json_t **ret, bool *ret_unsettled,
		     struct kc_error *err)
{
	if (kc_name_validate(req->name, "VM name", err) < 0)
		return -1;
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	unsigned cpus;
	uint64_t mem_kib;
	if (kc_host_limits(conn, &cpus, &mem_kib, err) < 0)
		return -1;
	if (req->vcpus > cpus)
		return kc_error_set(err, KC_ERR_INVALID,
				    "vcpus %u is more than this host's %u CPUs", req->vcpus, cpus);
	if (req->memory_mib > mem_kib / 1024)
		return kc_error_set(err, KC_ERR_INVALID,
				    "memory_mib %" PRIu64 " is more than this host's %" PRIu64
				    " MiB",
				    req->memory_mib, mem_kib / 1024);

	struct created c = {0};
	virStoragePoolPtr pool = NULL;
	bool claimed = false;
	int r = create_vm(a, conn, req, pool_def, &c, &pool, &claimed, err);
	/* Only after the rollback: until it is over the name and its volumes
	 * are ours. */
	if (r < 0 && !rollback(a, conn, pool, &c, req->name)) {
		kc_intent_abandon(&c.intent);
		*ret_unsettled = true;
	} else {
		kc_intent_end(&c.intent);
	}
	if (claimed)
		release(a, req->name);
	json_t *vm = NULL;
	if (r == 0 && !(vm = kc_vm_json(a, conn, c.dom, err))) {
		/* The VM exists: describing it must not fail the create. */
		vm = minimal_json(c.dom, req->name);
		if (vm)
			kc_error_clear(err);
		else
			r = kc_error_set(err, KC_ERR_INTERNAL,
					 "VM '%s' was created, but out of memory describing it",
					 req->name);
	}
	created_clear(&c);
	if (pool)
		virStoragePoolFree(pool);
	if (r == 0)
		*ret = vm;
	return r;
}

int kc_agent_vm_create(struct kc_agent *a, const struct kc_vm_request *req, json_t **ret,
		       struct kc_error *err)
{
	return kc_agent_vm_create_in(a, req, NULL, ret, err);
}

int kc_agent_vm_create_in(struct kc_agent *a, const struct kc_vm_request *req,
			  const struct kc_pool_def *pool_def, json_t **ret, struct kc_error *err)
{
	bool unsettled = false;
	int r = vm_create(a, req, pool_def, ret, &unsettled, err);
	/* A remote server reads "unavailable" or "timeout" from a create as
	 * "the link dropped, the outcome is unknown" and keeps the record
	 * "creating" until a hello settles it.  A create that is over here
	 * (never begun, or rolled back) is a libvirt failure instead. */
	if (r < 0 && !unsettled && (err->code == KC_ERR_UNAVAILABLE || err->code == KC_ERR_TIMEOUT))
		err->code = KC_ERR_HYPERVISOR;
	return r;
}
