/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "xmlw.h"

int kc_xmlw_init(struct kc_xmlw *x, struct kc_error *err)
{
	x->failed = 0;
	x->buf = xmlBufferCreate();
	x->w = x->buf ? xmlNewTextWriterMemory(x->buf, 0) : NULL;
	if (!x->w) {
		if (x->buf)
			xmlBufferFree(x->buf);
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot create an XML writer");
	}
	xmlTextWriterSetIndent(x->w, 1);
	xmlTextWriterSetIndentString(x->w, (const xmlChar *)"  ");
	return 0;
}

void kc_xmlw_start(struct kc_xmlw *x, const char *name)
{
	if (xmlTextWriterStartElement(x->w, (const xmlChar *)name) < 0)
		x->failed = 1;
}

void kc_xmlw_end(struct kc_xmlw *x)
{
	if (xmlTextWriterEndElement(x->w) < 0)
		x->failed = 1;
}

void kc_xmlw_attr(struct kc_xmlw *x, const char *name, const char *value)
{
	if (xmlTextWriterWriteAttribute(x->w, (const xmlChar *)name, (const xmlChar *)value) < 0)
		x->failed = 1;
}

void kc_xmlw_text(struct kc_xmlw *x, const char *text)
{
	if (xmlTextWriterWriteString(x->w, (const xmlChar *)text) < 0)
		x->failed = 1;
}

void kc_xmlw_elem(struct kc_xmlw *x, const char *name, const char *text)
{
	if (xmlTextWriterWriteElement(x->w, (const xmlChar *)name, (const xmlChar *)text) < 0)
		x->failed = 1;
}

char *kc_xmlw_finish(struct kc_xmlw *x, struct kc_error *err)
{
	char *s = NULL;
	if (xmlTextWriterEndDocument(x->w) < 0)
		x->failed = 1;
	xmlFreeTextWriter(x->w);
	if (!x->failed)
		s = strdup((const char *)xmlBufferContent(x->buf));
	xmlBufferFree(x->buf);
	if (!s)
		kc_error_set(err, KC_ERR_INTERNAL, "cannot write XML");
	return s;
}
