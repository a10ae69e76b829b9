/* SPDX-License-Identifier: Apache-2.0 */
/* xmlw.h - a thin wrapper over xmlTextWriter for the small XML documents the
 * agent gives libvirt (pools, volumes).  Errors are sticky: check once at
 * kc_xmlw_finish. */
#pragma once

#include <libxml/xmlwriter.h>

#include "error.h"

struct kc_xmlw {
	xmlBufferPtr buf;
	xmlTextWriterPtr w;
	int failed;
};

int kc_xmlw_init(struct kc_xmlw *x, struct kc_error *err);
void kc_xmlw_start(struct kc_xmlw *x, const char *name);
void kc_xmlw_end(struct kc_xmlw *x);
void kc_xmlw_attr(struct kc_xmlw *x, const char *name, const char *value);
void kc_xmlw_text(struct kc_xmlw *x, const char *text);
/* <name>text</name> */
void kc_xmlw_elem(struct kc_xmlw *x, const char *name, const char *text);
/* Returns the document (malloc'd) or NULL with err set; frees the writer
 * either way. */
char *kc_xmlw_finish(struct kc_xmlw *x, struct kc_error *err);
