/* SPDX-License-Identifier: Apache-2.0 */
/*
 * domain_xml.h - libvirt domain XML from a struct kc_domain_def, written
 * with libxml2's xmlTextWriter (never by string concatenation).
 *
 * Output is deterministic (same def -> same bytes), so tests compare it
 * against golden files in tests/golden/.
 */
#pragma once

#include "error.h"
#include "vmspec.h"

/* Validates the def (names, counts, targets matching their bus, paths absolute)
 * and returns malloc'd XML in *ret_xml.  *ret_xml untouched on failure. */
int kc_domain_xml_build(const struct kc_domain_def *def, char **ret_xml, struct kc_error *err);

/* The namespace of our <metadata> element. */
#define KC_XML_NS "https://kvmcloud.invalid/xmlns/domain/1"

/* One volume's <disk> element, for hot-plugging a volume into a domain
 * (virDomainAttachDeviceFlags / DetachDeviceFlags; docs/storage.md
 * "Volumes"): a virtio disk whose source is a file, a block device or a
 * network disk (QEMU's own nfs or iscsi driver), with the format given
 * explicitly, never probed. */
enum kc_hotdisk_kind { KC_HOTDISK_FILE = 0, KC_HOTDISK_BLOCK, KC_HOTDISK_NETWORK };
struct kc_hotdisk {
	enum kc_hotdisk_kind kind;
	enum kc_disk_format format;
	const char *path;      /* file, block: absolute */
	const char *protocol;  /* network: "nfs" or "iscsi" */
	const char *host;      /* network */
	unsigned port;	       /* network; 0: the protocol's default */
	const char *name;      /* network: "<export>/<vol>" or "<iqn>/<lun>" */
	const char *initiator; /* iscsi: the initiator IQN, or NULL */
	const char *target;    /* "vdb".."vdz" */
	const char *serial;    /* the volume name, shown to the guest; NULL: none */
};
/* Checks every value (paths absolute without "..", targets vd[a-z]+,
 * hosts and names without control characters) and writes the element.
 * Deterministic: tests compare it with tests/golden/domain/disk/. */
int kc_hotdisk_xml_build(const struct kc_hotdisk *d, char **ret_xml, struct kc_error *err);
