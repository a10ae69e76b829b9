/* SPDX-License-Identifier: Apache-2.0 */
/*
 * imgcheck.h - content checks of library images (docs/storage.md, "Image
 * library"): pure functions over bytes a caller read and over the JSON of
 * `qemu-img info -f FMT --output=json`.  Nothing in an image is trusted: a
 * guest may have written every byte of it, so a declared format is checked
 * against the bytes, never guessed from them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum kc_img_format {
	KC_IMG_QCOW2,
	KC_IMG_RAW,
	KC_IMG_ISO,
};

enum kc_img_kind {
	KC_IMG_TEMPLATE,
	KC_IMG_ISO_KIND,
};

/* How many leading bytes kc_img_check_magic wants (the ISO 9660 primary
 * volume descriptor sits at 32769). */
#define KC_IMG_HEAD_BYTES (64 * 1024)
/* The largest virtual size a template may declare (as vm create's disks). */
#define KC_IMG_MAX_VIRTUAL (16384ULL << 30)

/* "qcow2", "raw", "iso" -> format; anything else is KC_ERR_INVALID. */
int kc_img_format_parse(const char *s, enum kc_img_format *ret, struct kc_error *err);
const char *kc_img_format_name(enum kc_img_format f);
/* The file name suffix of a stored image: ".qcow2", ".raw", ".iso". */
const char *kc_img_format_ext(enum kc_img_format f);
/* The format qemu-img is told with -f: "qcow2" or "raw" (an ISO is raw). */
const char *kc_img_format_qemu(enum kc_img_format f);
/* "template", "iso" -> kind; and whether a kind may have a format (an ISO
 * is format iso, a template qcow2 or raw). */
int kc_img_kind_parse(const char *s, enum kc_img_kind *ret, struct kc_error *err);
int kc_img_kind_format_check(enum kc_img_kind k, enum kc_img_format f, struct kc_error *err);
/* A lowercase hex SHA-256 (64 characters of [0-9a-f]). */
bool kc_img_sha256_valid(const char *s);

/* Checks the first `len` bytes of an image (the whole file if it is
 * shorter than KC_IMG_HEAD_BYTES) against its declared format:
 *  - qcow2: the qcow2 magic, version 2 or 3, no backing file, no external
 *    data file, no unknown incompatible feature, no encryption;
 *  - raw and iso: no other format's magic (qcow2, QED, VMDK, VDI, VHD,
 *    VHDX, LUKS, Bochs, cloop, Parallels), which QEMU or a tool that
 *    probes would read as that format - a lying header;
 *  - iso: the ISO 9660 signature "CD001" at 32769.
 * `what` names the image in errors ("image 'x'"); KC_ERR_INVALID. */
int kc_img_check_magic(const unsigned char *head, size_t len, enum kc_img_format f,
		       const char *what, struct kc_error *err);

/* Checks qemu-img's JSON answer: the format it opened is the declared
 * one, no backing file, no external data file, not encrypted, not marked
 * corrupt, virtual size at most max_virtual.  *ret_virtual gets the
 * virtual size.  KC_ERR_INVALID naming `what`. */
int kc_img_check_info(const char *json, size_t len, enum kc_img_format f, uint64_t max_virtual,
		      const char *what, uint64_t *ret_virtual, struct kc_error *err);
