/* SPDX-License-Identifier: Apache-2.0 */
/*
 * imgcheck.c - content checks of library images (imgcheck.h).
 */
#include "imgcheck.h"

#include <jansson.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"

#define QCOW2_INCOMPAT_CORRUPT	 (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
/* dirty, corrupt, external data file, compression type, extended L2 */
#define QCOW2_INCOMPAT_KNOWN 0x1fULL
#define ISO_SIG_OFFSET	     32769

static const char *const format_names[] = {"qcow2", "raw", "iso"};

int kc_img_format_parse(const char *s, enum kc_img_format *ret, struct kc_error *err)
{
	for (size_t i = 0; s && i < KC_ARRAY_SIZE(format_names); i++)
		if (strcmp(s, format_names[i]) == 0) {
			*ret = (enum kc_img_format)i;
			return 0;
		}
	return kc_error_set(err, KC_ERR_INVALID, "format must be qcow2, raw or iso");
}

const char *kc_img_format_name(enum kc_img_format f)
{
	return format_names[f];
}

const char *kc_img_format_ext(enum kc_img_format f)
{
	return f == KC_IMG_QCOW2 ? ".qcow2" : f == KC_IMG_RAW ? ".raw" : ".iso";
}

const char *kc_img_format_qemu(enum kc_img_format f)
{
	return f == KC_IMG_QCOW2 ? "qcow2" : "raw";
}

int kc_img_kind_parse(const char *s, enum kc_img_kind *ret, struct kc_error *err)
{
	if (s && strcmp(s, "template") == 0)
		*ret = KC_IMG_TEMPLATE;
	else if (s && strcmp(s, "iso") == 0)
		*ret = KC_IMG_ISO_KIND;
	else
		return kc_error_set(err, KC_ERR_INVALID, "kind must be template or iso");
	return 0;
}

int kc_img_kind_format_check(enum kc_img_kind k, enum kc_img_format f, struct kc_error *err)
{
	if (k == KC_IMG_ISO_KIND && f != KC_IMG_ISO)
		return kc_error_set(err, KC_ERR_INVALID, "an ISO has format iso");
	if (k == KC_IMG_TEMPLATE && f == KC_IMG_ISO)
		return kc_error_set(err, KC_ERR_INVALID, "a template has format qcow2 or raw");
	return 0;
}

bool kc_img_sha256_valid(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static uint64_t be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* Formats QEMU (or another tool) recognises by their first bytes. */
static const struct magic {
	const char *name;
	size_t offset;
	const char *bytes;
	size_t len;
} magics[] = {
	{"qcow2", 0, "QFI\xfb", 4},
	{"QED", 0, "QED\0", 4},
	{"VMDK", 0, "KDMV", 4},
	{"VMDK descriptor", 0, "# Disk DescriptorFile", 21},
	{"VMDK (ESX sparse)", 0, "COWD", 4},
	{"VDI", 64, "\x7f\x10\xda\xbe", 4},
	{"VHDX", 0, "vhdxfile", 8},
	{"VHD", 0, "conectix", 8},
	{"LUKS", 0, "LUKS\xba\xbe", 6},
	{"Bochs", 0, "Bochs Virtual HD Image", 22},
	{"cloop", 0, "#!/bin/sh\n#V2.0 Format\n", 23},
	{"Parallels", 0, "WithoutFreeSpace", 16},
	{"Parallels", 0, "WithouFreSpacExt", 16},
};

static int check_qcow2(const unsigned char *h, size_t len, const char *what, struct kc_error *err)
{
	if (len < 72 || memcmp(h, "QFI\xfb", 4) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s is not a qcow2 image", what);
	uint64_t version = be(h + 4, 4);
	if (version != 2 && version != 3)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s has qcow2 version %llu (2 or 3 expected)", what,
				    (unsigned long long)version);
	/* QEMU would open these other files itself. */
	if (be(h + 8, 8) != 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s has a backing file; flatten it first (qemu-img convert "
				    "-O qcow2)",
				    what);
	if (be(h + 32, 4) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s is encrypted", what);
	if (version == 3) {
		if (len < 104)
			return kc_error_set(err, KC_ERR_INVALID, "%s has a truncated qcow2 header",
					    what);
		uint64_t incompat = be(h + 72, 8);
		if (incompat & QCOW2_INCOMPAT_DATA_FILE)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s uses an external data file; flatten it first "
					    "(qemu-img convert -O qcow2)",
					    what);
		if (incompat & QCOW2_INCOMPAT_CORRUPT)
			return kc_error_set(err, KC_ERR_INVALID, "%s is marked corrupt", what);
		if (incompat & ~QCOW2_INCOMPAT_KNOWN)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s has unknown qcow2 incompatible features 0x%llx",
					    what,
					    (unsigned long long)(incompat & ~QCOW2_INCOMPAT_KNOWN));
	}
	return 0;
}

int kc_img_check_magic(const unsigned char *head, size_t len, enum kc_img_format f,
		       const char *what, struct kc_error *err)
{
	if (f == KC_IMG_QCOW2)
		return check_qcow2(head, len, what, err);
	for (size_t i = 0; i < KC_ARRAY_SIZE(magics); i++) {
		const struct magic *m = &magics[i];
		if (len >= m->offset + m->len && memcmp(head + m->offset, m->bytes, m->len) == 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s is declared %s but starts like a %s image; refused "
					    "(a header that does not match the declared format)",
					    what, kc_img_format_name(f), m->name);
	}
	if (f == KC_IMG_ISO &&
	    (len < ISO_SIG_OFFSET + 5 || memcmp(head + ISO_SIG_OFFSET, "CD001", 5) != 0))
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s is not an ISO 9660 image (no CD001 signature)", what);
	return 0;
}

int kc_img_check_info(const char *json, size_t len, enum kc_img_format f, uint64_t max_virtual,
		      const char *what, uint64_t *ret_virtual, struct kc_error *err)
{
	_cleanup_json_ json_t *info = json_loadb(json, len, 0, NULL);

	if (!json_is_object(info))
		return kc_error_set(err, KC_ERR_INVALID, "%s: qemu-img gave no usable answer",
				    what);
	const char *fmt = json_string_value(json_object_get(info, "format"));
	if (!fmt || strcmp(fmt, kc_img_format_qemu(f)) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s: qemu-img opened it as %s, not %s",
				    what, fmt ? fmt : "nothing", kc_img_format_qemu(f));
	if (json_object_get(info, "backing-filename") ||
	    json_object_get(info, "full-backing-filename") ||
	    json_object_get(info, "backing-filename-format"))
		return kc_error_set(err, KC_ERR_INVALID, "%s has a backing file", what);
	if (json_is_true(json_object_get(info, "encrypted")))
		return kc_error_set(err, KC_ERR_INVALID, "%s is encrypted", what);
	json_t *data = json_object_get(json_object_get(info, "format-specific"), "data");
	if (json_object_get(data, "data-file") || json_object_get(data, "data-file-raw"))
		return kc_error_set(err, KC_ERR_INVALID, "%s uses an external data file", what);
	if (json_is_true(json_object_get(data, "corrupt")))
		return kc_error_set(err, KC_ERR_INVALID, "%s is marked corrupt", what);
	json_t *vs = json_object_get(info, "virtual-size");
	if (!json_is_integer(vs) || json_integer_value(vs) < 0)
		return kc_error_set(err, KC_ERR_INVALID, "%s: qemu-img reports no virtual size",
				    what);
	uint64_t v = (uint64_t)json_integer_value(vs);
	if (v > max_virtual)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s has a virtual size of %llu bytes, over the limit of %llu",
				    what, (unsigned long long)v, (unsigned long long)max_virtual);
	*ret_virtual = v;
	return 0;
}
