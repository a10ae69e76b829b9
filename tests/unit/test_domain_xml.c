/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Golden-file tests for kc_domain_xml_build (as libvirt's qemuxml2argv):
 * every tests/golden/domain/<case>.json describes a struct kc_domain_def;
 * the XML built from it must equal <case>.xml byte for byte, or, if the
 * JSON has "expect_error", building must fail with that error code.
 *
 * KC_UPDATE_GOLDEN=1 rewrites the .xml files from the current output.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "domain_xml.h"
#include "kctest.h"

#ifndef KC_SOURCE_DIR
#error "KC_SOURCE_DIR must be defined by the build"
#endif

#define GOLDEN_DIR KC_SOURCE_DIR "/tests/golden/domain"

/* ---- JSON -> struct kc_domain_def (test fixture loader) ---- */

static int enum_of(const char *s, const char *const *names, size_t n, int *ret)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0) {
			*ret = (int)i;
			return 0;
		}
	return -1;
}

/* Reads an optional string enum; false on a bad value. */
static bool get_enum(json_t *o, const char *key, const char *const *names, size_t n, int *ret)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return true;
	return json_is_string(v) && enum_of(json_string_value(v), names, n, ret) == 0;
}

static bool dup_str(json_t *o, const char *key, char **ret)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return true;
	if (!json_is_string(v))
		return false;
	*ret = strdup(json_string_value(v));
	return *ret != NULL;
}

static bool copy_str(json_t *o, const char *key, char *buf, size_t size)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return true;
	if (!json_is_string(v) || strlen(json_string_value(v)) >= size)
		return false;
	snprintf(buf, size, "%s", json_string_value(v));
	return true;
}

/* The loader is strict about keys so that a typo in a case file cannot
 * silently produce a different def than intended. */
static bool keys_known(json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		bool found = false;
		for (size_t i = 0; keys[i] && !found; i++)
			found = strcmp(keys[i], k) == 0;
		if (!found) {
			kc_test_diag("unknown key \"%s\" in case file", k);
			return false;
		}
	}
	return true;
}

static bool load_disk(json_t *j, struct kc_disk_def *d)
{
	static const char *const keys[] = {"device", "bus",	 "format",	"path",
					   "target", "readonly", "nfs_host", "nfs_backing",
					   NULL};
	static const char *const devices[] = {"disk", "cdrom"};
	static const char *const buses[] = {"virtio", "sata", "ide"};
	static const char *const formats[] = {"qcow2", "raw"};
	int device = 0, bus = 0, format = 0;

	if (!json_is_object(j) || !keys_known(j, keys))
		return false;
	if (!get_enum(j, "device", devices, 2, &device) || !get_enum(j, "bus", buses, 3, &bus) ||
	    !get_enum(j, "format", formats, 2, &format))
		return false;
	d->device = (enum kc_disk_device)device;
	d->bus = (enum kc_disk_bus)bus;
	d->format = (enum kc_disk_format)format;
	d->readonly = json_is_true(json_object_get(j, "readonly"));
	return dup_str(j, "path", &d->path) && dup_str(j, "nfs_host", &d->nfs_host) &&
	       dup_str(j, "nfs_backing", &d->nfs_backing) &&
	       copy_str(j, "target", d->target, sizeof(d->target));
}

static bool load_nic(json_t *j, struct kc_nic_def *n)
{
	static const char *const keys[] = {"type", "source", "mac", "ovs", "vlan", "mtu", NULL};
	static const char *const types[] = {"user", "network", "bridge"};
	int type = 0;

	if (!json_is_object(j) || !keys_known(j, keys) || !get_enum(j, "type", types, 3, &type))
		return false;
	n->type = (enum kc_nic_type)type;
	n->ovs = json_is_true(json_object_get(j, "ovs"));
	n->vlan = (unsigned)json_integer_value(json_object_get(j, "vlan"));
	n->mtu = (unsigned)json_integer_value(json_object_get(j, "mtu"));
	return dup_str(j, "source", &n->source) && copy_str(j, "mac", n->mac, sizeof(n->mac));
}

static bool load_def(json_t *o, struct kc_domain_def *def)
{
	static const char *const keys[] = {
		"expect_error", "expect_message", "name",      "uuid",	       "accel", "vcpus",
		"memory_kib",	"cpu_mode",	  "cpu_model", "machine",      "disks", "nics",
		"boot",		"serial_log",	  "graphics",  "vnc_password", "owner", NULL};
	static const char *const accels[] = {"tcg", "kvm"};
	static const char *const cpu_modes[] = {"default", "custom", "host-model",
						"host-passthrough"};
	static const char *const boots[] = {"hd", "cdrom", "network"};
	static const char *const graphics[] = {"none", "vnc"};
	int accel = 0, cpu_mode = 0, gfx = 0;
	json_t *a, *v;
	size_t i;

	if (!json_is_object(o) || !keys_known(o, keys))
		return false;
	if (!get_enum(o, "accel", accels, 2, &accel) ||
	    !get_enum(o, "cpu_mode", cpu_modes, 4, &cpu_mode) ||
	    !get_enum(o, "graphics", graphics, 2, &gfx))
		return false;
	def->accel = (enum kc_accel)accel;
	def->cpu_mode = (enum kc_cpu_mode)cpu_mode;
	def->graphics = (enum kc_graphics)gfx;
	def->vcpus = (unsigned)json_integer_value(json_object_get(o, "vcpus"));
	def->memory_kib = (uint64_t)json_integer_value(json_object_get(o, "memory_kib"));
	if (!dup_str(o, "name", &def->name) || !copy_str(o, "uuid", def->uuid, sizeof(def->uuid)) ||
	    !dup_str(o, "cpu_model", &def->cpu_model) || !dup_str(o, "machine", &def->machine) ||
	    !dup_str(o, "serial_log", &def->serial_log) ||
	    !dup_str(o, "vnc_password", &def->vnc_password) || !dup_str(o, "owner", &def->owner))
		return false;

	a = json_object_get(o, "disks");
	if (a && (!json_is_array(a) || json_array_size(a) > KC_MAX_DISKS))
		return false;
	json_array_foreach(a, i, v)
	{
		def->n_disks++;
		if (!load_disk(v, &def->disks[i]))
			return false;
	}
	a = json_object_get(o, "nics");
	if (a && (!json_is_array(a) || json_array_size(a) > KC_MAX_NICS))
		return false;
	json_array_foreach(a, i, v)
	{
		def->n_nics++;
		if (!load_nic(v, &def->nics[i]))
			return false;
	}
	a = json_object_get(o, "boot");
	if (a && (!json_is_array(a) || json_array_size(a) > KC_MAX_BOOT))
		return false;
	json_array_foreach(a, i, v)
	{
		int b;
		if (!json_is_string(v) || enum_of(json_string_value(v), boots, 3, &b) < 0)
			return false;
		def->boot[def->n_boot++] = (enum kc_boot_dev)b;
	}
	return true;
}

/* ---- golden comparison ---- */

static char *read_file(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	_cleanup_fclose_ FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	m = NULL;
	return buf;
}

static bool write_file(const char *path, const char *data)
{
	_cleanup_fclose_ FILE *f = fopen(path, "we");
	if (!f)
		return false;
	return fputs(data, f) >= 0 && fflush(f) == 0;
}

/* Splits s into lines (borrowed, each without its '\n'). */
static size_t split_lines(char *s, char **lines, size_t max)
{
	size_t n = 0;
	for (char *p = s; *p && n < max;) {
		lines[n++] = p;
		char *nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

/* Fails the test and prints a unified-diff-like hunk covering the lines
 * between the common prefix and the common suffix. */
static void fail_with_diff(const char *path, const char *expected, const char *actual)
{
	enum { MAX_LINES = 4096, MAX_SHOWN = 20 };
	static char *el[MAX_LINES], *al[MAX_LINES];
	_cleanup_free_ char *e = strdup(expected);
	_cleanup_free_ char *a = strdup(actual);
	if (!e || !a) {
		kc_test_fail(path, 0, "generated XML differs from the golden file");
		return;
	}
	size_t ne = split_lines(e, el, MAX_LINES), na = split_lines(a, al, MAX_LINES);
	size_t first = 0, tail = 0;
	while (first < ne && first < na && strcmp(el[first], al[first]) == 0)
		first++;
	while (tail < ne - first && tail < na - first &&
	       strcmp(el[ne - 1 - tail], al[na - 1 - tail]) == 0)
		tail++;
	size_t from = first > 2 ? first - 2 : 0;
	size_t e_end = ne - tail, a_end = na - tail;

	kc_test_fail(path, (int)first + 1, "generated XML differs from the golden file");
	kc_test_diag("--- %s", path);
	kc_test_diag("+++ generated (KC_UPDATE_GOLDEN=1 rewrites the golden file)");
	kc_test_diag("@@ -%zu,%zu +%zu,%zu @@", from + 1, e_end - from, from + 1, a_end - from);
	for (size_t i = from; i < first; i++)
		kc_test_diag(" %s", el[i]);
	for (size_t i = first; i < e_end && i < first + MAX_SHOWN; i++)
		kc_test_diag("-%s", el[i]);
	for (size_t i = first; i < a_end && i < first + MAX_SHOWN; i++)
		kc_test_diag("+%s", al[i]);
	for (size_t i = e_end; i < ne && i < e_end + 2; i++)
		kc_test_diag(" %s", el[i]);
}

static void run_case(const char *dir, const char *file)
{
	char path[4096], xml_path[4096];
	struct kc_domain_def def = {0};
	struct kc_error err = {0};
	json_error_t jerr;
	char *xml = NULL, *golden = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(xml_path, sizeof(xml_path), "%.*s.xml", (int)(strlen(path) - 5), path);

	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		kc_test_fail(path, jerr.line, "cannot parse case: %s", jerr.text);
		return;
	}
	if (!load_def(j, &def)) {
		kc_test_fail(path, 0, "bad case file (unknown key, wrong type or bad enum)");
		goto out;
	}

	const char *expect = json_string_value(json_object_get(j, "expect_error"));
	const char *expect_msg = json_string_value(json_object_get(j, "expect_message"));
	int rc = kc_domain_xml_build(&def, &xml, &err);
	if (expect) {
		if (KC_CHECK_INT(rc, -1) && KC_CHECK(xml == NULL)) {
			KC_CHECK_STREQ(kc_errcode_name(err.code), expect);
			if (expect_msg && !strstr(err.message, expect_msg))
				kc_test_fail(path, 0, "message \"%s\" lacks \"%s\"", err.message,
					     expect_msg);
		}
		goto out;
	}
	if (!KC_CHECK_INT(rc, 0)) {
		kc_test_diag("%s: %s", path, err.message);
		goto out;
	}

	if (getenv("KC_UPDATE_GOLDEN") && strcmp(getenv("KC_UPDATE_GOLDEN"), "1") == 0) {
		if (!write_file(xml_path, xml))
			kc_test_fail(xml_path, 0, "cannot write: %s", strerror(errno));
		else
			kc_test_diag("updated %s", xml_path);
		goto out;
	}
	golden = read_file(xml_path);
	if (!golden) {
		kc_test_fail(xml_path, 0,
			     "cannot read golden file (%s); generate it with "
			     "KC_UPDATE_GOLDEN=1",
			     strerror(errno));
		goto out;
	}
	if (strcmp(golden, xml) != 0)
		fail_with_diff(xml_path, golden, xml);
out:
	free(golden);
	free(xml);
	kc_domain_def_clear(&def);
	json_decref(j);
}

static int is_json(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static void run_golden_cases(void)
{
	struct dirent **ents = NULL;
	int n = scandir(GOLDEN_DIR, &ents, is_json, alphasort);

	if (n <= 0) {
		kc_test_begin("golden cases exist in " GOLDEN_DIR);
		kc_test_fail(__FILE__, __LINE__, "no case files: %s",
			     n < 0 ? strerror(errno) : "empty");
		kc_test_end();
		free(ents);
		return;
	}
	for (int i = 0; i < n; i++) {
		char name[300];
		snprintf(name, sizeof(name), "golden %s", ents[i]->d_name);
		kc_test_begin(name);
		run_case(GOLDEN_DIR, ents[i]->d_name);
		kc_test_end();
		free(ents[i]);
	}
	free(ents);
}

/* ---- properties that hold for every def ---- */

/* A small valid def; the caller owns it. */
static void sample_def(struct kc_domain_def *def)
{
	*def = (struct kc_domain_def){0};
	def->name = strdup("sample");
	def->vcpus = 1;
	def->memory_kib = 131072;
	def->n_disks = 1;
	def->disks[0].path = strdup("/srv/pool/sample.qcow2");
	snprintf(def->disks[0].target, sizeof(def->disks[0].target), "vda");
	def->n_nics = 1;
	def->nics[0].type = KC_NIC_USER;
}

static xmlDocPtr parse(const char *xml)
{
	return xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* The string value of an XPath expression, malloc'd ("" if no match). */
static char *xpath_str(xmlDocPtr doc, const char *expr)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathRegisterNs(ctx, BAD_CAST "kc", BAD_CAST KC_XML_NS);
	xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	xmlChar *s = r ? xmlXPathCastToString(r) : NULL;
	char *ret = strdup(s ? (const char *)s : "");
	xmlFree(s);
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	return ret;
}

KC_TEST(deterministic_output)
{
	struct kc_domain_def def;
	char *a = NULL, *b = NULL;
	sample_def(&def);
	KC_CHECK_INT(kc_domain_xml_build(&def, &a, NULL), 0);
	KC_CHECK_INT(kc_domain_xml_build(&def, &b, NULL), 0);
	KC_CHECK_STREQ(a, b);
	free(a);
	free(b);
	kc_domain_def_clear(&def);
}

KC_TEST(metacharacters_round_trip_through_a_parser)
{
	static const char nasty[] = "/srv/&<>'\"]]>&amp;/x.qcow2";
	static const char owner[] = "o'\"&<>]]>";
	struct kc_domain_def def;
	char *xml = NULL;
	sample_def(&def);
	free(def.disks[0].path);
	def.disks[0].path = strdup(nasty);
	def.owner = strdup(owner);
	def.serial_log = strdup(nasty);
	def.graphics = KC_GRAPHICS_VNC;
	def.vnc_password = strdup("'\"&<>");
	if (!KC_CHECK_INT(kc_domain_xml_build(&def, &xml, NULL), 0))
		goto out;
	xmlDocPtr doc = parse(xml);
	if (KC_CHECK(doc != NULL)) {
		char *s;
		s = xpath_str(doc, "string(/domain/devices/disk/source/@file)");
		KC_CHECK_STREQ(s, nasty);
		free(s);
		s = xpath_str(doc, "string(/domain/devices/serial/log/@file)");
		KC_CHECK_STREQ(s, nasty);
		free(s);
		s = xpath_str(doc, "string(/domain/metadata/kc:vm/kc:owner)");
		KC_CHECK_STREQ(s, owner);
		free(s);
		s = xpath_str(doc, "string(/domain/devices/graphics/@passwd)");
		KC_CHECK_STREQ(s, "'\"&<>");
		free(s);
		xmlFreeDoc(doc);
	}
out:
	free(xml);
	kc_domain_def_clear(&def);
}

KC_TEST(vnc_listens_on_loopback_only)
{
	struct kc_domain_def def;
	char *xml = NULL;
	sample_def(&def);
	def.graphics = KC_GRAPHICS_VNC;
	if (KC_CHECK_INT(kc_domain_xml_build(&def, &xml, NULL), 0)) {
		xmlDocPtr doc = parse(xml);
		if (KC_CHECK(doc != NULL)) {
			char *s = xpath_str(doc, "string(/domain/devices/graphics/@listen)");
			KC_CHECK_STREQ(s, "127.0.0.1");
			free(s);
			s = xpath_str(doc, "count(//listen[@address!='127.0.0.1'])");
			KC_CHECK_STREQ(s, "0");
			free(s);
			s = xpath_str(doc, "count(/domain/devices/graphics/@passwd)");
			KC_CHECK_STREQ(s, "0");
			free(s);
			xmlFreeDoc(doc);
		}
	}
	free(xml);
	kc_domain_def_clear(&def);
}

KC_TEST(no_graphics_means_no_video)
{
	struct kc_domain_def def;
	char *xml = NULL;
	sample_def(&def);
	if (KC_CHECK_INT(kc_domain_xml_build(&def, &xml, NULL), 0)) {
		KC_CHECK(strstr(xml, "<graphics") == NULL);
		KC_CHECK(strstr(xml, "<video") == NULL);
	}
	free(xml);
	kc_domain_def_clear(&def);
}

KC_TEST(failure_leaves_ret_untouched)
{
	struct kc_domain_def def;
	struct kc_error err = {0};
	char *xml = (char *)"sentinel";
	sample_def(&def);
	def.vcpus = 0;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_STREQ(xml, "sentinel");
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);
}

KC_TEST(null_def_and_null_err)
{
	char *xml = NULL;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_domain_xml_build(NULL, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK_INT(kc_domain_xml_build(NULL, &xml, NULL), -1);
	KC_CHECK(xml == NULL);
}

KC_TEST(counts_over_their_limits)
{
	struct kc_domain_def def;
	struct kc_error err = {0};
	char *xml = NULL;
	size_t n;

	sample_def(&def);
	n = def.n_disks;
	def.n_disks = KC_MAX_DISKS + 1;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	def.n_disks = n;

	kc_error_clear(&err);
	n = def.n_nics;
	def.n_nics = KC_MAX_NICS + 1;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	def.n_nics = n;

	kc_error_clear(&err);
	def.n_boot = KC_MAX_BOOT + 1;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	def.n_boot = 0;

	kc_error_clear(&err);
	def.vcpus = KC_MAX_VCPUS;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), 0);
	free(xml);
	kc_domain_def_clear(&def);
}

KC_TEST(bad_values_are_invalid)
{
	struct kc_domain_def def;
	struct kc_error err = {0};
	char *xml = NULL;

	/* A MAC field filled to the last byte without a terminator. */
	sample_def(&def);
	memset(def.nics[0].mac, 'a', sizeof(def.nics[0].mac));
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* Path ending in "/..". */
	kc_error_clear(&err);
	sample_def(&def);
	free(def.disks[0].path);
	def.disks[0].path = strdup("/srv/pool/..");
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* Disk without a path. */
	kc_error_clear(&err);
	sample_def(&def);
	free(def.disks[0].path);
	def.disks[0].path = NULL;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* Invalid UTF-8 in a path. */
	kc_error_clear(&err);
	sample_def(&def);
	free(def.disks[0].path);
	def.disks[0].path = strdup("/srv/\xff\xfe.qcow2");
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* Virtio target on the SATA bus. */
	kc_error_clear(&err);
	sample_def(&def);
	def.disks[0].bus = KC_BUS_SATA;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* Malformed UUID. */
	kc_error_clear(&err);
	sample_def(&def);
	snprintf(def.uuid, sizeof(def.uuid), "not-a-uuid");
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* Out-of-range enums. */
	kc_error_clear(&err);
	sample_def(&def);
	def.cpu_mode = (enum kc_cpu_mode)42;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	kc_error_clear(&err);
	sample_def(&def);
	def.nics[0].type = (enum kc_nic_type)7;
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);

	/* VNC passwords longer than VNC can use. */
	kc_error_clear(&err);
	sample_def(&def);
	def.graphics = KC_GRAPHICS_VNC;
	def.vnc_password = strdup("123456789");
	KC_CHECK_INT(kc_domain_xml_build(&def, &xml, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	kc_domain_def_clear(&def);
	KC_CHECK(xml == NULL);
}

int main(void)
{
	kc_test_run_registered();
	run_golden_cases();
	xmlCleanupParser();
	return kc_test_finish();
}
