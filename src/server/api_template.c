/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_template.c - POST /api/v1/vms/{name}/template (clones.h; docs/api.md
 * "VM to template"): a stopped VM becomes a template of the image library.
 * A job: the VM's host flattens its root disk (vm.template.prepare), the
 * server reads it back in chunks (vm.template.read; part I's transfer in
 * the other direction, over the host's normal link) into the store's part
 * file, then checks it as it checks an upload (kc_image_finish: header,
 * qemu-img info with the format forced, size, SHA-256) and registers it.
 * Who may do it is authz.c's VM rule (the VM's owner, or an admin); the
 * image belongs to the job's owner.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cleanup.h"
#include "clones.h"
#include "db_images.h"
#include "hostlink.h"
#include "http_util.h"
#include "images.h"
#include "jobs.h"
#include "json_util.h"
#include "validate.h"

/* The largest chunk vm.template.read sends (the agent's KC_TEMPLATE_CHUNK_MAX). */
#define CHUNK_MAX (512 * 1024)

static const char *const template_keys[] = {"image", "os_type", NULL};

static int parse_args(const json_t *args, const char **ret_image, const char **ret_os,
		      struct kc_error *err)
{
	*ret_os = NULL;
	if (!json_is_object(args))
		return kc_error_set(err, KC_ERR_INVALID, "the template request must be an object");
	if (kc_json_check_keys(args, template_keys, "template request", err) < 0 ||
	    kc_json_get_string(args, "image", true, KC_NAME_MAX, ret_image, err) < 0 ||
	    kc_name_validate(*ret_image, "image name", err) < 0 ||
	    kc_json_get_string(args, "os_type", false, KC_NAME_MAX, ret_os, err) < 0 ||
	    (*ret_os && kc_name_validate(*ret_os, "os_type", err) < 0))
		return -1;
	return 0;
}

/* The VM's record (managed, settled, not known to be running) and host. */
static int template_vm(struct kc_server *srv, const char *vm, json_t **ret_row,
		       const char **ret_host, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	if (kc_api_require_managed(srv, vm, &row, err) < 0)
		return -1;
	const char *state = json_string_value(json_object_get(row, "state"));
	if (state && strcmp(state, "creating") == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM \"%s\" is being created", vm);
	/* The record's state is the last one heard; the host checks again. */
	if (state && (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0))
		return kc_error_set(err, KC_ERR_CONFLICT,
				    "VM \"%s\" is %s: stop it before making a template of it", vm,
				    state);
	const char *host = json_string_value(json_object_get(row, "host"));
	if (!host)
		host = srv->agent ? srv->host_name : NULL;
	if (!host)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "VM \"%s\" has no host", vm);
	*ret_host = host;
	*ret_row = steal_ptr(&row);
	return 0;
}

static int image_free(struct kc_server *srv, const char *image, struct kc_error *err)
{
	_cleanup_json_ json_t *existing = NULL;
	struct kc_error e = {0};
	if (kc_db_image_get(srv->db, image, &existing, &e) == 0)
		return kc_error_set(err, KC_ERR_CONFLICT, "image \"%s\" already exists", image);
	if (e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	kc_error_clear(&e);
	return 0;
}

int kc_api_vm_template(struct kc_call *c, struct kc_error *err)
{
	_cleanup_json_ json_t *body = NULL, *row = NULL;
	const char *image = NULL, *os = NULL, *host = NULL;

	/* Bad requests are refused now, not queued as jobs bound to fail. */
	if (kc_http_read_json(c->req, true, &body, err) < 0 ||
	    parse_args(body, &image, &os, err) < 0 ||
	    template_vm(c->srv, c->name, &row, &host, err) < 0 ||
	    image_free(c->srv, image, err) < 0)
		return -1;
	return kc_jobs_serve(c, "vm.template", c->name, body, 201, err);
}

/* Reads the flattened disk from the host into the record's part file. */
static int transfer(struct kc_server *srv, const char *host, const json_t *img_row,
		    const char *token, uint64_t size, kc_progress_fn progress, void *opaque,
		    struct kc_error *err)
{
	_cleanup_free_ unsigned char *buf = malloc(CHUNK_MAX);
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	uint64_t off = 0;
	for (;;) {
		_cleanup_json_ json_t *args =
			json_pack("{s:s,s:I}", "token", token, "offset", (json_int_t)off);
		_cleanup_json_ json_t *res = NULL;
		if (!args)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		if (kc_host_call(srv, host, "vm.template.read", args, &res, err) < 0)
			return -1;
		const char *data = json_string_value(json_object_get(res, "data"));
		size_t len = 0;
		if (!data || sodium_base642bin(buf, CHUNK_MAX, data, strlen(data), NULL, &len, NULL,
					       sodium_base64_VARIANT_ORIGINAL) != 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "host %s sent a bad vm.template.read chunk", host);
		uint64_t received = off;
		if (len > 0 &&
		    kc_image_upload_chunk(srv, img_row, off, buf, len, &received, err) < 0)
			return -1;
		off = received;
		if (progress && size)
			progress(opaque, 20 + (int)(off * 70 / size));
		if (json_is_true(json_object_get(res, "eof")) || len == 0)
			break;
	}
	if (off != size)
		return kc_error_set(err, KC_ERR_INVALID,
				    "host %s sent %llu bytes of a %llu-byte template", host,
				    (unsigned long long)off, (unsigned long long)size);
	return 0;
}

int kc_template_op(struct kc_server *srv, const char *vm, const char *owner, const json_t *args,
		   kc_progress_fn progress, void *opaque, json_t **ret, struct kc_error *err)
{
	_cleanup_json_ json_t *vm_row = NULL, *prep = NULL, *img_row = NULL;
	_cleanup_free_ char *source = NULL;
	const char *image = NULL, *os = NULL, *host = NULL;

	if (parse_args(args, &image, &os, err) < 0 ||
	    template_vm(srv, vm, &vm_row, &host, err) < 0 || image_free(srv, image, err) < 0)
		return -1;
	_cleanup_json_ json_t *pargs = json_pack("{s:s}", "name", vm);
	if (!pargs || asprintf(&source, "vm:%s", vm) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (kc_host_call(srv, host, "vm.template.prepare", pargs, &prep, err) < 0)
		return -1;
	if (progress)
		progress(opaque, 20);
	const char *token = json_string_value(json_object_get(prep, "token"));
	const char *sha256 = json_string_value(json_object_get(prep, "sha256"));
	json_int_t size = json_integer_value(json_object_get(prep, "size_bytes"));
	int rc = -1;
	bool inserted = false;
	if (!token || !sha256 || !kc_img_sha256_valid(sha256) || size <= 0) {
		kc_error_set(err, KC_ERR_INVALID, "host %s answered vm.template.prepare badly",
			     host);
		goto out;
	}
	if ((uint64_t)size > KC_IMAGE_MAX_BYTES) {
		kc_error_set(err, KC_ERR_NO_CAPACITY,
			     "the flattened disk of VM \"%s\" is %lld bytes, over the image "
			     "store's limit",
			     vm, (long long)size);
		goto out;
	}
	/* "downloading": a server that dies during the transfer leaves a
	 * record its next start marks failed (image_store.c), and it cannot
	 * be deleted while this job writes its file. */
	if (kc_db_image_insert(srv->db,
			       &(struct kc_db_image){.name = image,
						     .kind = "template",
						     .format = "qcow2",
						     .os_type = os,
						     .sha256 = sha256,
						     .source = source,
						     .state = "downloading",
						     .owner = owner,
						     .size_bytes = size,
						     .virtual_size_bytes = -1},
			       err) < 0)
		goto out;
	inserted = true;
	/* A part file no record owned (an earlier, killed attempt). */
	kc_image_store_remove(srv, image, "qcow2");
	if (kc_db_image_get(srv->db, image, &img_row, err) < 0 ||
	    transfer(srv, host, img_row, token, (uint64_t)size, progress, opaque, err) < 0 ||
	    kc_image_finish(srv, img_row, sha256, err) < 0)
		goto out;
	json_decref(img_row);
	img_row = NULL;
	if (kc_db_image_get(srv->db, image, &img_row, err) < 0)
		goto out;
	*ret = kc_image_view(img_row);
	rc = *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
out:
	if (rc < 0 && inserted) {
		/* Refused or failed: nothing of it stays, record included. */
		kc_image_store_remove(srv, image, "qcow2");
		kc_db_image_delete(srv->db, image, NULL);
	}
	if (token) {
		_cleanup_json_ json_t *dargs = json_pack("{s:s}", "token", token);
		_cleanup_json_ json_t *dres = NULL;
		struct kc_error e = {0};
		if (dargs && kc_host_call(srv, host, "vm.template.done", dargs, &dres, &e) < 0)
			fprintf(stderr, "warning: VM \"%s\": template file left on host %s: %s\n",
				vm, host, e.message);
		kc_error_clear(&e);
	}
	return rc;
}
