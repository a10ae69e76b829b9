/* SPDX-License-Identifier: Apache-2.0 */
#include "xmlwriter.h"

#include <stdlib.h>
#include <string.h>

static void check(struct kc_xmlw *x, int rc)
{
	if (rc < 0)
		x->failed = true;
}

int kc_xmlw_init(struct kc_xmlw *x, struct kc_error *err)
{
	x->failed = false;
	x->buf = xmlBufferCreate();
	if (!x->buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	x->w = xmlNewTextWriterMemory(x->buf, 0);
	if (!x->w) {
		xmlBufferFree(x->buf);
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot create an XML writer");
	}
	check(x, xmlTextWriterSetIndent(x->w, 1));
	check(x, xmlTextWriterSetIndentString(x->w, BAD_CAST "  "));
	return 0;
}

void kc_xmlw_start(struct kc_xmlw *x, const char *name)
{
	if (!x->failed)
		check(x, xmlTextWriterStartElement(x->w, BAD_CAST name));
}

void kc_xmlw_start_ns(struct kc_xmlw *x, const char *prefix, const char *name, const char *ns_uri)
{
	if (!x->failed)
		check(x, xmlTextWriterStartElementNS(x->w, BAD_CAST prefix, BAD_CAST name,
						     BAD_CAST ns_uri));
}

void kc_xmlw_end(struct kc_xmlw *x)
{
	if (!x->failed)
		check(x, xmlTextWriterEndElement(x->w));
}

void kc_xmlw_attr(struct kc_xmlw *x, const char *name, const char *value)
{
	if (!x->failed)
		check(x, xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value));
}

void kc_xmlw_text(struct kc_xmlw *x, const char *text)
{
	if (!x->failed)
		check(x, xmlTextWriterWriteString(x->w, BAD_CAST text));
}

void kc_xmlw_elem(struct kc_xmlw *x, const char *name, const char *text)
{
	kc_xmlw_start(x, name);
	kc_xmlw_text(x, text);
	kc_xmlw_end(x);
}

void kc_xmlw_elem_attr(struct kc_xmlw *x, const char *name, const char *attr, const char *value)
{
	kc_xmlw_start(x, name);
	if (attr)
		kc_xmlw_attr(x, attr, value);
	kc_xmlw_end(x);
}

char *kc_xmlw_finish(struct kc_xmlw *x, const char *what, struct kc_error *err)
{
	if (!x->failed)
		check(x, xmlTextWriterEndDocument(x->w));
	/* Freeing the writer flushes it into buf. */
	xmlFreeTextWriter(x->w);
	x->w = NULL;
	char *s = x->failed ? NULL : strdup((const char *)xmlBufferContent(x->buf));
	xmlBufferFree(x->buf);
	x->buf = NULL;
	if (x->failed)
		kc_error_set(err, KC_ERR_INTERNAL, "cannot write %s", what);
	else if (!s)
		kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return s;
}
