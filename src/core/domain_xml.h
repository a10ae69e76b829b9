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
