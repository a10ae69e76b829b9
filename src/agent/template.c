/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.c - a stopped VM's root disk as a new template (docs/storage.md,
 * "Clones"; docs/protocol.md, vm.template.*):
 *   vm.template.prepare  flattens the root disk (qemu-img convert -f qcow2
 *                        -O qcow2: the backing chain read through, no
 *                        backing file left) into <data.dir>/template-XXXXXX/,
 *                        hashes it, hands out a token;
 *   vm.template.read     a chunk of it (base64, at most KC_TEMPLATE_CHUNK_MAX);
 *   vm.template.done     removes it.
 * The server writes the chunks into its image store and checks the file
 * as it checks an upload.  A folder whose process died is reaped by
 * tmpdir.c; one whose server went away is removed after TEMPLATE_IDLE_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "json_util.h"

#define MAX_TEMPLATES	 4
#define TEMPLATE_IDLE_MS (10 * 60 * 1000)

struct flat {
	const struct kc_agent *agent;
	char token[33];
	char dir[4200];
	char file[4220];
	int lock;
	uint64_t size, touched_ms;
	int readers; /* reads under way: never removed under them */
};

static pthread_mutex_t flats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flat flats[MAX_TEMPLATES];

static struct flat *flat_find(const struct kc_agent *a, const char *token)
{
	for (size_t i = 0; i < MAX_TEMPLATES; i++)
		if (flats[i].agent == a && strcmp(flats[i].token, token) == 0)
			return &flats[i];
	return NULL;
}

/* flats_lock held. */
static void flat_drop(struct flat *f)
{
	kc_tmpdir_remove(f->dir, f->lock);
	memset(f, 0, sizeof(*f));
}

/* A free slot, after dropping those nobody read for TEMPLATE_IDLE_MS
 * (their server went away); NULL if all are busy.  flats_lock held. */
static struct flat *flat_slot(void)
{
	struct flat *free_slot = NULL;
	for (size_t i = 0; i < MAX_TEMPLATES; i++) {
		struct flat *f = &flats[i];
		if (f->agent && !f->readers && kc_now_ms() - f->touched_ms > TEMPLATE_IDLE_MS)
			flat_drop(f);
		if (!f->agent && !free_slot)
			free_slot = f;
	}
	return free_slot;
}

/* The root disk of domain `vm`: its <vm>-root.qcow2 (malloc'd). */
static char *root_disk(virDomainPtr d, const char *vm, struct kc_error *err)
{
	char **paths = kc_vm_disk_paths(d, err);
	if (!paths)
		return NULL;
	char want[KC_NAME_MAX + 16];
	snprintf(want, sizeof(want), "%s-root.qcow2", vm);
	char *found = NULL;
	for (size_t i = 0; paths[i] && !found; i++) {
		const char *slash = strrchr(paths[i], '/');
		if (slash && strcmp(slash + 1, want) == 0)
			found = strdup(paths[i]);
	}
	kc_strv_free(paths);
	if (!found)
		kc_error_set(err, KC_ERR_CONFLICT,
			     "VM '%s' has no root disk %s to make a template of", vm, want);
	return found;
}

/* Is VM `name` stopped and not being created?  Its domain in *ret. */
static int stopped_vm(struct kc_agent *a, virConnectPtr conn, const char *name, virDomainPtr *ret,
		      struct kc_error *err)
{
	pthread_mutex_lock(&a->create_lock);
	bool creating = kc_agent_is_creating(a, name);
	pthread_mutex_unlock(&a->create_lock);
	if (creating)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM '%s' is being created", name);
	virDomainPtr d = kc_dom_lookup(conn, name, err);
	if (!d)
		return -1;
	int active = virDomainIsActive(d);
	if (active != 0) {
		virDomainFree(d);
		return active > 0 ? kc_error_set(err, KC_ERR_CONFLICT,
						 "VM '%s' is running: stop it before making a "
						 "template of it",
						 name)
				  : kc_lverr(err, "reading the state of VM '%s'", name);
	}
	*ret = d;
	return 0;
}

int kc_agent_template_prepare(struct kc_agent *a, const json_t *args, json_t **ret,
			      struct kc_error *err)
{
	static const char *const keys[] = {"name", NULL};
	const char *name = NULL;
	if (kc_json_check_keys(args, keys, "vm.template.prepare args", err) < 0 ||
	    kc_json_get_string(args, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "VM name", err) < 0)
		return -1;
	_cleanup_conn_ virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return -1;
	_cleanup_dom_ virDomainPtr d = NULL;
	if (stopped_vm(a, conn, name, &d, err) < 0)
		return -1;
	_cleanup_free_ char *root = root_disk(d, name, err);
	if (!root)
		return -1;

	struct flat f = {.agent = a, .lock = -1};
	_cleanup_close_ int fd = -1;
	unsigned char rnd[16];
	if (kc_random_bytes(rnd, sizeof(rnd), err) < 0)
		return -1;
	for (int i = 0; i < 16; i++)
		snprintf(f.token + 2 * i, 3, "%02x", rnd[i]);
	if (kc_tmpdir_make(a->data_dir, "template-", f.dir, sizeof(f.dir), &f.lock, err) < 0)
		return -1;
	snprintf(f.file, sizeof(f.file), "%s/disk.qcow2", f.dir);
	char what[KC_NAME_MAX + 32];
	snprintf(what, sizeof(what), "root disk of VM '%s'", name);
	/* The VM's own changes and its template's, in one file with no
	 * backing file; QEMU's image locking refuses a start meanwhile. */
	char *const argv[] = {KC_QEMU_IMG, "convert", "-f",   "qcow2", "-O",
			      "qcow2",	   root,      f.file, NULL};
	char sha[65];
	uint64_t size = 0;
	if (kc_qemu_img_run(argv, NULL, NULL, what, err) < 0)
		goto fail;
	fd = open(f.file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot open the flattened disk");
		goto fail;
	}
	if (kc_image_sha256_fd(fd, sha, &size, err) < 0)
		goto fail;
	f.size = size;
	f.touched_ms = kc_now_ms();

	pthread_mutex_lock(&flats_lock);
	struct flat *slot = flat_slot();
	if (slot)
		*slot = f;
	pthread_mutex_unlock(&flats_lock);
	if (!slot) {
		kc_error_set(err, KC_ERR_UNAVAILABLE,
			     "more than %d templates are being made on this host at once",
			     MAX_TEMPLATES);
		goto fail;
	}
	*ret = json_pack("{s:s,s:I,s:s,s:I}", "token", f.token, "size_bytes", (json_int_t)size,
			 "sha256", sha, "chunk_max", (json_int_t)KC_TEMPLATE_CHUNK_MAX);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
fail:
	kc_tmpdir_remove(f.dir, f.lock);
	return -1;
}

/* The caller's entry with a reader counted (release with flat_put). */
static struct flat *flat_get(struct kc_agent *a, const json_t *args, const char *op,
			     struct kc_error *err)
{
	const char *token = NULL;
	if (kc_json_get_string(args, "token", true, 32, &token, err) < 0)
		return NULL;
	pthread_mutex_lock(&flats_lock);
	struct flat *f = flat_find(a, token);
	if (f) {
		f->readers++;
		f->touched_ms = kc_now_ms();
	}
	pthread_mutex_unlock(&flats_lock);
	if (!f)
		kc_error_set(err, KC_ERR_NOT_FOUND, "%s: no template under way with that token",
			     op);
	return f;
}

static void flat_put(struct flat *f)
{
	pthread_mutex_lock(&flats_lock);
	f->readers--;
	pthread_mutex_unlock(&flats_lock);
}

int kc_agent_template_read(struct kc_agent *a, const json_t *args, json_t **ret,
			   struct kc_error *err)
{
	static const char *const keys[] = {"token", "offset", NULL};
	uint64_t offset = 0;
	if (kc_json_check_keys(args, keys, "vm.template.read args", err) < 0 ||
	    kc_json_get_uint(args, "offset", true, 0, INT64_MAX, &offset, err) < 0)
		return -1;
	struct flat *f = flat_get(a, args, "vm.template.read", err);
	if (!f)
		return -1;
	int r = -1;
	_cleanup_free_ unsigned char *buf = malloc(KC_TEMPLATE_CHUNK_MAX);
	_cleanup_close_ int fd = open(f->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = -1;
	if (!buf) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	} else if (offset > f->size) {
		kc_error_set(err, KC_ERR_INVALID, "vm.template.read: offset beyond the %llu bytes",
			     (unsigned long long)f->size);
	} else if (fd < 0 || (n = pread(fd, buf, KC_TEMPLATE_CHUNK_MAX, (off_t)offset)) < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read the flattened disk");
	} else {
		gnutls_datum_t in = {buf, (unsigned)n}, out = {0};
		if (gnutls_base64_encode2(&in, &out) < 0) {
			kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		} else {
			uint64_t next = offset + (uint64_t)n;
			*ret = json_pack("{s:s%,s:I,s:b}", "data", (const char *)out.data,
					 (size_t)out.size, "next", (json_int_t)next, "eof",
					 next >= f->size);
			gnutls_free(out.data);
			r = *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		}
	}
	flat_put(f);
	return r;
}

int kc_agent_template_done(struct kc_agent *a, const json_t *args, json_t **ret,
			   struct kc_error *err)
{
	static const char *const keys[] = {"token", NULL};
	const char *token = NULL;
	if (kc_json_check_keys(args, keys, "vm.template.done args", err) < 0 ||
	    kc_json_get_string(args, "token", true, 32, &token, err) < 0)
		return -1;
	pthread_mutex_lock(&flats_lock);
	struct flat *f = flat_find(a, token);
	bool busy = f && f->readers > 0;
	if (f && !busy)
		flat_drop(f);
	pthread_mutex_unlock(&flats_lock);
	if (busy)
		return kc_error_set(err, KC_ERR_CONFLICT, "vm.template.done: a read is under way");
	/* Unknown (done twice, or expired) is fine: nothing is left either way. */
	*ret = json_pack("{s:b}", "removed", f != NULL);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}
