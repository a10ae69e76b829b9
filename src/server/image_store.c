/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_store.c - the server's image store <data-dir>/images (images.h):
 * a file reaches its final name only after its checks, from a part file
 * .<name><ext>.part that a download or an upload fills; what fails its
 * checks is removed.  The verified record beside each file is the one the
 * agents' caches use (agent.h), so an all-in-one server whose agent reads
 * this folder never copies or hashes an image twice.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "cleanup.h"
#include "db_images.h"
#include "images.h"
#include "io.h"
#include "json_util.h"
#include "server.h"
#include "validate.h"

#define URL_MAX 2048

/* Serialises upload chunks: two clients sending one image must not
 * interleave their writes. */
static pthread_mutex_t upload_lock = PTHREAD_MUTEX_INITIALIZER;

static char *store_dir(struct kc_server *srv)
{
	char *d = NULL;
	return asprintf(&d, "%s/images", srv->data_dir) < 0 ? NULL : d;
}

char *kc_image_store_path(struct kc_server *srv, const char *name, const char *format, bool part,
			  struct kc_error *err)
{
	enum kc_img_format f;
	_cleanup_free_ char *dir = store_dir(srv);
	char *path = NULL;

	if (kc_img_format_parse(format, &f, err) < 0 ||
	    kc_name_validate(name, "image name", err) < 0)
		return NULL;
	if (!dir || asprintf(&path, part ? "%s/.%s%s.part" : "%s/%s%s", dir, name,
			     kc_img_format_ext(f)) < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	return path;
}

json_t *kc_image_view(const json_t *row)
{
	json_t *o = json_deep_copy(row);

	if (o && json_is_null(json_object_get(o, "error")))
		json_object_del(o, "error");
	return o;
}

static const char *row_str(const json_t *row, const char *key)
{
	return json_string_value(json_object_get(row, key));
}

int kc_image_finish(struct kc_server *srv, const json_t *row, const char *sha256,
		    struct kc_error *err)
{
	const char *name = row_str(row, "name"), *format = row_str(row, "format");
	_cleanup_free_ char *part = kc_image_store_path(srv, name, format, true, err);
	_cleanup_free_ char *path =
		part ? kc_image_store_path(srv, name, format, false, err) : NULL;
	struct kc_image_facts facts;
	enum kc_img_format f;
	char what[KC_NAME_MAX + 16];
	json_t *declared = json_object_get(row, "size_bytes");
	int r = -1;

	if (!path)
		return -1;
	snprintf(what, sizeof(what), "image '%s'", name);
	kc_img_format_parse(format, &f, err);
	if (kc_image_validate(part, f, KC_IMG_MAX_VIRTUAL, what, &facts, err) < 0)
		;
	else if (json_is_integer(declared) &&
		 (uint64_t)json_integer_value(declared) != facts.size_bytes)
		kc_error_set(err, KC_ERR_INVALID, "%s: %llu bytes received, %lld announced", what,
			     (unsigned long long)facts.size_bytes,
			     (long long)json_integer_value(declared));
	else if (sha256 && strcmp(sha256, facts.sha256) != 0)
		kc_error_set(err, KC_ERR_INVALID, "%s: sha256 %s does not match the given %s", what,
			     facts.sha256, sha256);
	else if (renameat2(AT_FDCWD, part, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
		kc_error_set_errno(err, errno == EEXIST ? KC_ERR_CONFLICT : KC_ERR_INTERNAL, errno,
				   "cannot move %s into the store", what);
	else if (kc_fsync_parent(path),
		 kc_image_mark_verified(path, facts.sha256, err) < 0 ||
			 kc_db_image_set_ready(srv->db, name, (int64_t)facts.size_bytes,
					       (int64_t)facts.virtual_size_bytes, facts.sha256,
					       err) < 0)
		kc_image_store_remove(srv, name, format);
	else
		r = 0;
	if (r < 0)
		unlink(part);
	return r;
}

void kc_image_store_remove(struct kc_server *srv, const char *name, const char *format)
{
	for (int part = 0; part < 2; part++) {
		_cleanup_free_ char *p = kc_image_store_path(srv, name, format, part, NULL);
		if (p && !part)
			kc_image_forget(p);
		if (p)
			unlink(p);
	}
}

uint64_t kc_image_upload_received(struct kc_server *srv, const json_t *row)
{
	_cleanup_free_ char *part =
		kc_image_store_path(srv, row_str(row, "name"), row_str(row, "format"), true, NULL);
	struct stat st;

	return part && lstat(part, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

int kc_image_upload_chunk(struct kc_server *srv, const json_t *row, uint64_t offset,
			  const void *data, size_t len, uint64_t *ret_received,
			  struct kc_error *err)
{
	_cleanup_free_ char *part =
		kc_image_store_path(srv, row_str(row, "name"), row_str(row, "format"), true, err);
	json_int_t declared = json_integer_value(json_object_get(row, "size_bytes"));
	struct stat st;
	int r = -1;

	if (!part)
		return -1;
	pthread_mutex_lock(&upload_lock);
	int fd = open(part, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || fstat(fd, &st) < 0) {
		kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot open the upload's file");
	} else if ((uint64_t)st.st_size != offset) {
		kc_error_set(err, KC_ERR_CONFLICT,
			     "offset %llu, but %lld bytes were received so far",
			     (unsigned long long)offset, (long long)st.st_size);
	} else if (offset + len > (uint64_t)declared) {
		kc_error_set(err, KC_ERR_INVALID, "more than the %lld bytes announced",
			     (long long)declared);
	} else {
		ssize_t w = 0;
		for (size_t done = 0; done < len; done += (size_t)w) {
			w = pwrite(fd, (const char *)data + done, len - done,
				   (off_t)(offset + done));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w <= 0)
				break;
		}
		if (w < 0) {
			kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot write the upload");
			/* Keep the file at a chunk boundary the client can resume from. */
			if (ftruncate(fd, (off_t)offset) < 0)
				unlink(part);
		} else {
			*ret_received = offset + len;
			r = 0;
		}
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&upload_lock);
	return r;
}

/* ---- downloads ---- */

struct dl {
	int fd;
	uint64_t got;
	bool too_large;
	kc_progress_fn progress;
	void *opaque;
	int last;
};

static size_t dl_write(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct dl *d = opaque;
	size_t n = size * nmemb;

	if (d->got + n > KC_IMAGE_MAX_BYTES) {
		d->too_large = true;
		return 0;
	}
	if (kc_write_all(d->fd, data, n) < 0)
		return 0;
	d->got += n;
	return n;
}

static int dl_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct dl *d = opaque;

	/* 10..90 while downloading; the checks take the rest. */
	if (d->progress && dltotal > 0) {
		int pct = 10 + (int)(80 * (double)dlnow / (double)dltotal);
		if (pct >= d->last + 5) {
			d->progress(d->opaque, pct);
			d->last = pct;
		}
	}
	return 0;
}

int kc_image_ca_check(const char *file, char **ret, struct kc_error *err)
{
	_cleanup_free_ char *abs = realpath(file, NULL);
	char buf[64 * 1024 + 1];
	struct stat st;

	if (!abs)
		return kc_error_set_errno(err, KC_ERR_INVALID, errno, "--image-ca %s", file);
	_cleanup_close_ int fd = open(abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return kc_error_set_errno(err, KC_ERR_INVALID, errno, "--image-ca %s", file);
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)sizeof(buf) - 1)
		return kc_error_set(err, KC_ERR_INVALID,
				    "--image-ca %s: not a PEM file of at most 64 KiB", file);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	if (n <= 0 || !strstr(buf, "-----BEGIN CERTIFICATE-----"))
		return kc_error_set(err, KC_ERR_INVALID, "--image-ca %s: no PEM certificate in it",
				    file);
	*ret = steal_ptr(&abs);
	return 0;
}

/* Downloads `url` into `part` (created afresh).  Redirects: at most
 * MAX_REDIRS, http(s) only, and never from https to http (what was asked
 * over TLS is not fetched in clear); libcurl sends no credentials to
 * another host on a redirect (none are sent at all). */
#define MAX_REDIRS 5
static int download(struct kc_server *srv, const char *url, const char *part,
		    kc_progress_fn progress, void *opaque, struct kc_error *err)
{
	bool https = strncmp(url, "https://", 8) == 0;
	struct dl d = {.progress = progress, .opaque = opaque};
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;

	d.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (d.fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
					  "cannot create the download's file");
	CURL *cu = curl_easy_init();
	if (!cu) {
		close(d.fd);
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start libcurl");
	}
	curl_easy_setopt(cu, CURLOPT_URL, url);
	/* http(s) only, redirects included: never file://, gopher://, ... */
	curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(cu, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(cu, CURLOPT_MAXREDIRS, (long)MAX_REDIRS);
	curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
	if (srv->image_ca)
		curl_easy_setopt(cu, CURLOPT_CAINFO, srv->image_ca);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, 30L);
	/* Stalled (under 1 KiB/s for a minute) is failed; slow is not. */
	curl_easy_setopt(cu, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(cu, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KC_IMAGE_MAX_BYTES);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "kvmcloud-server");
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, dl_write);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, &d);
	curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, dl_progress);
	curl_easy_setopt(cu, CURLOPT_XFERINFODATA, &d);
	curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
	CURLcode rc = curl_easy_perform(cu);
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(cu);
	int cerr = close(d.fd);
	if (rc == CURLE_OK && cerr == 0)
		return 0;
	unlink(part);
	if (d.too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "the download is over %llu bytes",
				    (unsigned long long)KC_IMAGE_MAX_BYTES);
	if (rc == CURLE_HTTP_RETURNED_ERROR)
		return kc_error_set(err, KC_ERR_INVALID, "the URL answered HTTP %ld", status);
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the image server's certificate is not trusted (%s); give its "
				    "CA to the server with --image-ca FILE",
				    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	if (rc == CURLE_TOO_MANY_REDIRECTS)
		return kc_error_set(err, KC_ERR_INVALID, "more than %d redirects", MAX_REDIRS);
	if (rc == CURLE_UNSUPPORTED_PROTOCOL && https)
		return kc_error_set(
			err, KC_ERR_INVALID,
			"a redirect from https to another scheme (http) was refused: %s",
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return kc_error_set(err, KC_ERR_UNAVAILABLE, "download failed: %s",
			    errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

int kc_image_op_run(struct kc_server *srv, const char *kind, const char *target, const char *owner,
		    const json_t *args, kc_progress_fn progress, void *opaque, json_t **ret,
		    struct kc_error *err)
{
	const char *url = row_str(args, "url"), *format = row_str(args, "format");
	const char *sha256 = row_str(args, "sha256");
	_cleanup_json_ json_t *row = NULL;

	if (strcmp(kind, "image.register") != 0 || !url || !format || !sha256)
		return kc_error_set(err, KC_ERR_INTERNAL, "bad image job");
	if (kc_db_image_insert(srv->db,
			       &(struct kc_db_image){.name = target,
						     .kind = row_str(args, "kind"),
						     .format = format,
						     .os_type = row_str(args, "os_type"),
						     .source = url,
						     .sha256 = sha256,
						     .state = "downloading",
						     .owner = owner,
						     .size_bytes = -1,
						     .virtual_size_bytes = -1},
			       err) < 0)
		return -1;
	_cleanup_free_ char *part = kc_image_store_path(srv, target, format, true, err);
	if (!part || download(srv, url, part, progress, opaque, err) < 0 ||
	    kc_db_image_get(srv->db, target, &row, err) < 0 ||
	    kc_image_finish(srv, row, sha256, err) < 0) {
		/* The record stays, in error, saying why (delete it to retry). */
		kc_db_image_set_state(srv->db, target, "error", err->message, NULL);
		return -1;
	}
	json_decref(row);
	row = NULL;
	if (kc_db_image_get(srv->db, target, &row, err) < 0)
		return -1;
	*ret = kc_image_view(row);
	return *ret ? 0 : kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
}

/* ---- start-up ---- */

/* Registers one file of the store that has no record. */
static void adopt(struct kc_server *srv, const char *file, FILE *log)
{
	static const char *const formats[] = {"qcow2", "raw", "iso"};
	char name[KC_NAME_MAX + 1];
	struct kc_error e = {0};
	const char *dot = strrchr(file, '.');
	enum kc_img_format f;

	if (!dot || dot == file || (size_t)(dot - file) > KC_NAME_MAX)
		return;
	snprintf(name, sizeof(name), "%.*s", (int)(dot - file), file);
	size_t i = 0;
	while (i < KC_ARRAY_SIZE(formats) && strcmp(dot + 1, formats[i]) != 0)
		i++;
	if (i == KC_ARRAY_SIZE(formats) || kc_name_validate(name, "image name", NULL) < 0)
		return;
	_cleanup_json_ json_t *row = NULL;
	if (kc_db_image_get(srv->db, name, &row, &e) == 0 || e.code != KC_ERR_NOT_FOUND)
		return;
	kc_error_clear(&e);
	_cleanup_free_ char *path = kc_image_store_path(srv, name, formats[i], false, &e);
	struct kc_image_facts facts;
	char what[KC_NAME_MAX + 16];
	snprintf(what, sizeof(what), "image '%s'", name);
	kc_img_format_parse(formats[i], &f, NULL);
	if (!path || kc_image_validate(path, f, KC_IMG_MAX_VIRTUAL, what, &facts, &e) < 0 ||
	    kc_image_mark_verified(path, facts.sha256, &e) < 0 ||
	    kc_db_image_insert(
		    srv->db,
		    &(struct kc_db_image){.name = name,
					  .kind = f == KC_IMG_ISO ? "iso" : "template",
					  .format = formats[i],
					  .source = "adopted",
					  .sha256 = facts.sha256,
					  .state = "ready",
					  .owner = KC_DB_ADMIN_USER,
					  .size_bytes = (int64_t)facts.size_bytes,
					  .virtual_size_bytes = (int64_t)facts.virtual_size_bytes},
		    &e) < 0) {
		if (e.code != KC_ERR_CONFLICT) /* another server adopted it */
			fprintf(log, "warning: image store: %s not adopted: %s\n", file, e.message);
		return;
	}
	fprintf(log, "image store: adopted %s (%s, sha256 %.12s...)\n", file, formats[i],
		facts.sha256);
}

int kc_image_store_open(struct kc_server *srv, FILE *log, struct kc_error *err)
{
	_cleanup_free_ char *dir = store_dir(srv);
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (!dir)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot create %s", dir);
	/* A download a dead run left: its job is settled as failed (jobs.h). */
	if (kc_db_image_list(srv->db, NULL, &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, row)
	{
		const char *state = row_str(row, "state");
		if (state && strcmp(state, "downloading") == 0) {
			_cleanup_free_ char *part = kc_image_store_path(
				srv, row_str(row, "name"), row_str(row, "format"), true, NULL);
			if (part)
				unlink(part);
			kc_db_image_set_state(srv->db, row_str(row, "name"), "error",
					      "interrupted by a server restart", NULL);
		}
	}
	DIR *d = opendir(dir);
	if (!d)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "cannot read %s", dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (e->d_type == DT_REG || e->d_type == DT_UNKNOWN))
			adopt(srv, e->d_name, log);
	closedir(d);
	return 0;
}
