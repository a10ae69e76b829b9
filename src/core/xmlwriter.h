/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xmlwriter.h - a thin wrapper over libxml2's xmlTextWriter, indented by two
 * spaces, for the XML documents we give libvirt.  The failure flag is sticky
 * (as libvirt's virBuffer): calls after a failure do nothing, and the result
 * is checked once in kc_xmlw_finish, so that formatting code reads like the
 * XML it produces.  Every value goes through the writer, which escapes it.
 */
#pragma once

#include <stdbool.h>

#include <libxml/xmlwriter.h>

#include "error.h"

struct kc_xmlw {
	xmlBufferPtr buf;
	xmlTextWriterPtr w;
	bool failed;
};

int kc_xmlw_init(struct kc_xmlw *x, struct kc_error *err);
void kc_xmlw_start(struct kc_xmlw *x, const char *name);
/* <prefix:name xmlns:prefix="ns_uri">; ns_uri NULL for no declaration. */
void kc_xmlw_start_ns(struct kc_xmlw *x, const char *prefix, const char *name, const char *ns_uri);
void kc_xmlw_end(struct kc_xmlw *x);
void kc_xmlw_attr(struct kc_xmlw *x, const char *name, const char *value);
void kc_xmlw_text(struct kc_xmlw *x, const char *text);
/* <name>text</name> */
void kc_xmlw_elem(struct kc_xmlw *x, const char *name, const char *text);
/* <name attr="value"/>, or <name/> when attr is NULL. */
void kc_xmlw_elem_attr(struct kc_xmlw *x, const char *name, const char *attr, const char *value);
/* Ends the document and returns it (malloc'd), or NULL with err set
 * ("cannot write <what>"); frees the writer either way. */
char *kc_xmlw_finish(struct kc_xmlw *x, const char *what, struct kc_error *err);
