/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_imgcheck - the image library's content checks (imgcheck.h,
 * kc_image_validate) on small crafted files, and the host cache's
 * image.ensure / image.put / image.commit ops on a bare agent struct.
 * Needs qemu-img; no libvirtd.
 */
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "dispatch.h"
#include "json_util.h"
#include "tap.h"

static char dir[] = "/tmp/kc-imgcheck-XXXXXX";

static char *at(const char *name)
{
	static char buf[8][256];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_file(const char *name, const void *data, size_t len, size_t total)
{
	_cleanup_close_ int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || ftruncate(fd, (off_t)total) < 0) {
		printf("Bail out! cannot write %s\n", name);
		exit(1);
	}
}

/* The file `name` with `magic` written at `off` over `size` zero bytes. */
static void magic_file(const char *name, size_t off, const char *magic, size_t mlen, size_t size)
{
	unsigned char *buf = calloc(1, size);
	memcpy(buf + off, magic, mlen);
	write_file(name, buf, size, size);
	free(buf);
}

static void sh(const char *cmd)
{
	if (system(cmd) != 0) {
		printf("Bail out! %s failed\n", cmd);
		exit(1);
	}
}

static void expect(const char *name, enum kc_img_format f, uint64_t max, const char *want_err)
{
	struct kc_error err = {0};
	struct kc_image_facts facts = {0};
	int r = kc_image_validate(at(name), f, max, "image 'x'", &facts, &err);

	if (!want_err)
		ok(r == 0 && facts.size_bytes > 0 && strlen(facts.sha256) == 64,
		   "%s as %s: accepted (%s)", name, kc_img_format_name(f),
		   r == 0 ? facts.sha256 : err.message);
	else
		ok(r < 0 && err.code == KC_ERR_INVALID && strstr(err.message, want_err) &&
			   !strstr(err.message, dir),
		   "%s as %s: refused (%s)", name, kc_img_format_name(f), err.message);
}

static void content_checks(void)
{
	char cmd[1024];
	struct kc_error err = {0};
	struct kc_image_facts facts = {0};

	snprintf(cmd, sizeof(cmd),
		 "cd %s && qemu-img create -q -f qcow2 good.qcow2 10M && "
		 "qemu-img create -q -f qcow2 -b good.qcow2 -F qcow2 backed.qcow2 && "
		 "qemu-img create -q -f qcow2 -o data_file=%s/data.raw datafile.qcow2 10M && "
		 "qemu-img create -q -f qcow2 huge.qcow2 20T && "
		 "qemu-img create -q -f raw plain.raw 1M && "
		 "qemu-img create -q -f vmdk disk.vmdk 1M && "
		 "qemu-img create -q -f vdi disk.vdi 1M && "
		 "qemu-img create -q -f vhdx disk.vhdx 1M && "
		 "qemu-img create -q -f qed disk.qed 1M && "
		 "ln -s good.qcow2 link.qcow2",
		 dir, dir);
	sh(cmd);

	if (kc_image_validate(at("good.qcow2"), KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "image 'x'",
			      &facts, &err) == 0) {
		char want[128] = "";
		snprintf(cmd, sizeof(cmd), "sha256sum %s", at("good.qcow2"));
		FILE *p = popen(cmd, "r");
		if (p && fgets(want, sizeof(want), p))
			want[64] = '\0';
		if (p)
			pclose(p);
		ok(facts.virtual_size_bytes == 10 << 20 && strcmp(facts.sha256, want) == 0,
		   "good qcow2: virtual size %llu, sha256 as sha256sum's",
		   (unsigned long long)facts.virtual_size_bytes);
	} else {
		ok(false, "good qcow2 accepted: %s", err.message);
	}
	expect("backed.qcow2", KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "backing file");
	expect("datafile.qcow2", KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "external data file");
	expect("huge.qcow2", KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "over the limit");
	expect("good.qcow2", KC_IMG_QCOW2, 1 << 20, "over the limit");
	expect("plain.raw", KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "not a qcow2");
	expect("plain.raw", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, NULL);
	expect("link.qcow2", KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "symbolic link");

	/* Lying headers: declared raw (or iso), bytes of another format. */
	expect("good.qcow2", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "starts like a qcow2");
	expect("disk.vmdk", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "VMDK");
	expect("disk.vdi", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "VDI");
	expect("disk.vhdx", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "VHDX");
	expect("disk.qed", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "QED");
	magic_file("luks.raw", 0, "LUKS\xba\xbe\0\x01", 8, 65536);
	expect("luks.raw", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "LUKS");
	magic_file("desc.raw", 0, "# Disk DescriptorFile\nRW 8 FLAT \"/etc/shadow\" 0\n", 48, 4096);
	expect("desc.raw", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "VMDK descriptor");

	/* ISO 9660: the signature, and no other format's magic before it. */
	magic_file("good.iso", 32768,
		   "\x01"
		   "CD001\x01",
		   7, 65536);
	expect("good.iso", KC_IMG_ISO, KC_IMG_MAX_VIRTUAL, NULL);
	expect("plain.raw", KC_IMG_ISO, KC_IMG_MAX_VIRTUAL, "not an ISO 9660");
	unsigned char poly[65536] = {0};
	memcpy(poly, "QFI\xfb\0\0\0\x03", 8);
	memcpy(poly + 32768,
	       "\x01"
	       "CD001\x01",
	       7);
	write_file("poly.iso", poly, sizeof(poly), sizeof(poly));
	expect("poly.iso", KC_IMG_ISO, KC_IMG_MAX_VIRTUAL, "starts like a qcow2");
	write_file("empty.raw", "", 0, 0);
	expect("empty.raw", KC_IMG_RAW, KC_IMG_MAX_VIRTUAL, "empty");

	/* A qcow2 header with an unknown incompatible feature bit. */
	unsigned char h[512] = {0};
	memcpy(h, "QFI\xfb\0\0\0\x03", 8);
	h[23] = 16;			/* cluster_bits */
	h[29] = 0x10;			/* 1 MiB virtual */
	h[72 + 7] = 0x00, h[72] = 0x80; /* incompatible bit 63 */
	h[99] = 4, h[103] = 104;
	write_file("unknown.qcow2", h, sizeof(h), sizeof(h));
	expect("unknown.qcow2", KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "unknown qcow2 incompatible");
}

static void info_json(void)
{
	struct kc_error err = {0};
	uint64_t v = 0;
	static const char good[] = "{\"format\":\"qcow2\",\"virtual-size\":1024}";
	static const char as_raw[] = "{\"format\":\"raw\",\"virtual-size\":1024}";
	static const char enc[] = "{\"format\":\"qcow2\",\"virtual-size\":1,\"encrypted\":true}";

	ok(kc_img_check_info(good, strlen(good), KC_IMG_QCOW2, 4096, "i", &v, &err) == 0 &&
		   v == 1024,
	   "qemu-img info: a plain qcow2 passes");
	ok(kc_img_check_info(as_raw, strlen(as_raw), KC_IMG_QCOW2, 4096, "i", &v, &err) < 0 &&
		   strstr(err.message, "opened it as raw"),
	   "qemu-img info: another format than declared is refused");
	kc_error_clear(&err);
	ok(kc_img_check_info(enc, strlen(enc), KC_IMG_QCOW2, 4096, "i", &v, &err) < 0 &&
		   strstr(err.message, "encrypted"),
	   "qemu-img info: an encrypted image is refused");
	kc_error_clear(&err);
	ok(kc_img_check_info("nope", 4, KC_IMG_QCOW2, 4096, "i", &v, &err) < 0,
	   "qemu-img info: garbage is refused");
}

static json_t *call(struct kc_agent *a, const char *op, json_t *args, struct kc_error *err)
{
	json_t *res = NULL;
	kc_error_clear(err);
	if (kc_agent_dispatch(a, op, args, &res, err) < 0)
		res = NULL;
	json_decref(args);
	return res;
}

/* Sends file `src` as image `name` in chunks; returns the commit's result. */
static json_t *upload(struct kc_agent *a, const char *name, const char *src, const char *sha,
		      const char *token, struct kc_error *err)
{
	struct stat st;
	stat(at(src), &st);
	_cleanup_close_ int fd = open(at(src), O_RDONLY | O_CLOEXEC);
	unsigned char buf[100000];
	uint64_t off = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		gnutls_datum_t in = {buf, (unsigned)n}, out = {0};
		gnutls_base64_encode2(&in, &out);
		char *b64 = strndup((char *)out.data, out.size);
		gnutls_free(out.data);
		json_t *r = call(a, "image.put",
				 json_pack("{s:s,s:s,s:s,s:I,s:s}", "name", name, "format", "qcow2",
					   "token", token, "offset", (json_int_t)off, "data", b64),
				 err);
		free(b64);
		if (!r)
			return NULL;
		json_decref(r);
		off += (uint64_t)n;
	}
	(void)sha;
	return call(a, "image.commit",
		    json_pack("{s:s,s:s,s:s}", "name", name, "format", "qcow2", "token", token),
		    err);
}

static void cache_ops(void)
{
	struct kc_agent a = {0};
	struct kc_error err = {0};
	struct kc_image_facts facts;
	char cache[300];

	snprintf(cache, sizeof(cache), "%s/cache", dir);
	mkdir(cache, 0755);
	a.images_dir = cache;
	a.host_name = "h1";
	kc_image_validate(at("good.qcow2"), KC_IMG_QCOW2, KC_IMG_MAX_VIRTUAL, "x", &facts, &err);
	struct stat st;
	stat(at("good.qcow2"), &st);
#define ENSURE(n, s)                                                                               \
	call(&a, "image.ensure",                                                                   \
	     json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", n, "kind", "template", "format", "qcow2",  \
		       "sha256", s, "size", (json_int_t)st.st_size),                               \
	     &err)

	json_t *r1 = ENSURE("tpl", facts.sha256);
	const char *tok = json_string_value(json_object_get(r1, "token"));
	ok(r1 && json_is_false(json_object_get(r1, "present")) && tok,
	   "ensure of a missing image gives an upload token");
	json_t *r2 = ENSURE("tpl", facts.sha256);
	ok(r2 && json_is_true(json_object_get(r2, "busy")) && !json_object_get(r2, "token"),
	   "a second ensure while the upload runs is told busy (one copy)");
	json_decref(r2);
	r2 = call(&a, "image.put",
		  json_pack("{s:s,s:s,s:s,s:I,s:s}", "name", "tpl", "format", "qcow2", "token",
			    "0123456789abcdef0123456789abcdef", "offset", (json_int_t)0, "data",
			    "AAAA"),
		  &err);
	ok(!r2 && err.code == KC_ERR_CONFLICT, "a put with a wrong token is refused");
	json_t *c = upload(&a, "tpl", "good.qcow2", facts.sha256, tok, &err);
	ok(c && json_is_true(json_object_get(c, "present")), "chunks + commit: present (%s)",
	   c ? "ok" : err.message);
	json_decref(c);
	json_decref(r1);
	r1 = ENSURE("tpl", facts.sha256);
	ok(r1 && json_is_true(json_object_get(r1, "present")), "ensure again: present, no copy");
	json_decref(r1);
	char zeros[65] = "0000000000000000000000000000000000000000000000000000000000000000";
	r1 = ENSURE("tpl", zeros);
	ok(!r1 && err.code == KC_ERR_CONFLICT && strstr(err.message, "different image"),
	   "ensure with another sha256 is a conflict, the file is never replaced");

	/* A copy whose content does not match its announced sha256. */
	r1 = ENSURE("bad", zeros);
	tok = json_string_value(json_object_get(r1, "token"));
	c = tok ? upload(&a, "bad", "good.qcow2", zeros, tok, &err) : NULL;
	char p1[400], p2[400];
	snprintf(p1, sizeof(p1), "%s/bad.qcow2", cache);
	snprintf(p2, sizeof(p2), "%s/.bad.qcow2.part", cache);
	ok(!c && strstr(err.message, "SHA-256") && access(p1, F_OK) != 0 && access(p2, F_OK) != 0,
	   "a copy with the wrong sha256 is refused and leaves nothing (%s)", err.message);
	json_decref(r1);

	/* A backing-file qcow2 sent to a host is refused there too. */
	stat(at("backed.qcow2"), &st);
	kc_image_sha256_fd(open(at("backed.qcow2"), O_RDONLY | O_CLOEXEC), facts.sha256, NULL,
			   &err);
	r1 = ENSURE("backed", facts.sha256);
	tok = json_string_value(json_object_get(r1, "token"));
	c = tok ? upload(&a, "backed", "backed.qcow2", facts.sha256, tok, &err) : NULL;
	ok(!c && strstr(err.message, "backing file"), "the host refuses a backing-file qcow2 (%s)",
	   err.message);
	json_decref(r1);
	r1 = call(&a, "image.ensure",
		  json_pack("{s:s,s:s,s:s,s:I}", "name", "../etc", "format", "qcow2", "sha256",
			    zeros, "size", (json_int_t)1),
		  &err);
	ok(!r1 && err.code == KC_ERR_INVALID, "a path-traversal name is refused (%s)", err.message);
}

int main(void)
{
	if (access("/usr/bin/qemu-img", X_OK) != 0) {
		printf("1..0 # SKIP no qemu-img\n");
		return 0;
	}
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	content_checks();
	info_json();
	cache_ops();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
	return tap_done();
}
