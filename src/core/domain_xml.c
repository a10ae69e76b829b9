/* SPDX-License-Identifier: Apache-2.0 */
#include "domain_xml.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <libxml/xmlstring.h>
#include <libxml/xmlwriter.h>

#include "cleanup.h"

/*
 * Attributes are written with libxml2's default double quote on purpose:
 * with xmlTextWriterSetQuoteChar('\'') libxml2 2.9 does not escape a
 * single quote inside an attribute value, so a path such as /a'b would
 * produce malformed XML.
 */

#define KC_OWNER_MAX	  256
#define KC_PATH_MAX	  4096
#define KC_IFNAME_MAX	  15
#define KC_VNC_PASSWD_MAX 8 /* the VNC protocol uses only the first 8 bytes */

/* ---- validation ---- */

/* Text we put into XML must be valid UTF-8 without control characters:
 * XML 1.0 cannot carry most of them, even escaped. */
static int check_text(const char *s, size_t max, const char *what, struct kc_error *err)
{
	size_t len = strlen(s);

	if (len > max)
		return kc_error_set(err, KC_ERR_INVALID, "%s is longer than %zu bytes", what, max);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return kc_error_set(err, KC_ERR_INVALID, "%s contains a control character",
					    what);
	if (!xmlCheckUTF8((const xmlChar *)s))
		return kc_error_set(err, KC_ERR_INVALID, "%s is not valid UTF-8", what);
	return 0;
}

static int check_path(const char *path, const char *what, struct kc_error *err)
{
	if (!path || !*path)
		return kc_error_set(err, KC_ERR_INVALID, "%s is missing", what);
	if (path[0] != '/')
		return kc_error_set(err, KC_ERR_INVALID, "%s '%s' is not an absolute path", what,
				    path);
	size_t len = strlen(path);
	if (strstr(path, "/../") || (len >= 3 && strcmp(path + len - 3, "/..") == 0))
		return kc_error_set(err, KC_ERR_INVALID, "%s '%s' contains '..'", what, path);
	return check_text(path, KC_PATH_MAX, what, err);
}

static bool is_hex(char c)
{
	return isxdigit((unsigned char)c);
}

/* "xx:xx:xx:xx:xx:xx", unicast (libvirt refuses multicast addresses). */
static int check_mac(const char *mac, size_t idx, struct kc_error *err)
{
	bool ok = strlen(mac) == 17;

	for (size_t i = 0; ok && i < 17; i++)
		ok = (i % 3 == 2) ? mac[i] == ':' : is_hex(mac[i]);
	if (!ok)
		return kc_error_set(
			err, KC_ERR_INVALID,
			"NIC %zu: MAC address '%s' is not of the form xx:xx:xx:xx:xx:xx", idx, mac);
	unsigned first = (unsigned)strtoul(mac, NULL, 16);
	if (first & 1)
		return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: MAC address '%s' is multicast",
				    idx, mac);
	return 0;
}

static int check_uuid(const char *uuid, struct kc_error *err)
{
	bool ok = strlen(uuid) == 36;

	for (size_t i = 0; ok && i < 36; i++)
		ok = (i == 8 || i == 13 || i == 18 || i == 23) ? uuid[i] == '-' : is_hex(uuid[i]);
	if (!ok)
		return kc_error_set(err, KC_ERR_INVALID, "UUID '%s' is not a valid UUID", uuid);
	return 0;
}

/* Indexed by enum kc_disk_bus. */
static const char *const bus_name[] = {"virtio", "sata", "ide"};
static const char *const bus_target_prefix[] = {"vd", "sd", "hd"};

static int check_disk(const struct kc_domain_def *def, size_t i, struct kc_error *err)
{
	const struct kc_disk_def *d = &def->disks[i];
	char what[32];

	snprintf(what, sizeof(what), "disk %zu path", i);
	if (d->device != KC_DEVICE_DISK && d->device != KC_DEVICE_CDROM)
		return kc_error_set(err, KC_ERR_INVALID, "disk %zu: unknown device %d", i,
				    (int)d->device);
	if (d->bus != KC_BUS_VIRTIO && d->bus != KC_BUS_SATA && d->bus != KC_BUS_IDE)
		return kc_error_set(err, KC_ERR_INVALID, "disk %zu: unknown bus %d", i,
				    (int)d->bus);
	if (d->format != KC_FORMAT_QCOW2 && d->format != KC_FORMAT_RAW)
		return kc_error_set(err, KC_ERR_INVALID, "disk %zu: unknown format %d", i,
				    (int)d->format);
	if (d->device == KC_DEVICE_CDROM && d->bus == KC_BUS_VIRTIO)
		return kc_error_set(err, KC_ERR_INVALID, "disk %zu: a CD-ROM cannot be on virtio",
				    i);
	if (check_path(d->path, what, err) < 0)
		return -1;

	/* The target names the guest device; its prefix must match the bus
	 * or the guest sees a different name than the one we report. */
	size_t tlen = strnlen(d->target, sizeof(d->target));
	const char *prefix = bus_target_prefix[d->bus];
	if (tlen == 0 || tlen >= sizeof(d->target))
		return kc_error_set(err, KC_ERR_INVALID, "disk %zu: target is missing", i);
	bool ok = tlen >= 3 && strncmp(d->target, prefix, 2) == 0;
	for (size_t k = 2; ok && k < tlen; k++)
		ok = d->target[k] >= 'a' && d->target[k] <= 'z';
	if (!ok)
		return kc_error_set(err, KC_ERR_INVALID,
				    "disk %zu: target '%.*s' is not %s[a-z]+ as its bus requires",
				    i, (int)tlen, d->target, prefix);
	for (size_t k = 0; k < i; k++)
		if (strcmp(def->disks[k].target, d->target) == 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "disks %zu and %zu have the same target '%s'", k, i,
					    d->target);
	return 0;
}

static int check_nic(const struct kc_domain_def *def, size_t i, struct kc_error *err)
{
	const struct kc_nic_def *n = &def->nics[i];

	switch (n->type) {
	case KC_NIC_USER:
		if (n->source && *n->source)
			return kc_error_set(err, KC_ERR_INVALID,
					    "NIC %zu: a user NIC takes no source", i);
		break;
	case KC_NIC_NETWORK:
	case KC_NIC_BRIDGE:
		if (!n->source || !*n->source)
			return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: %s NIC needs a source",
					    i,
					    n->type == KC_NIC_NETWORK ? "a network" : "a bridge");
		if (kc_name_validate(n->source,
				     n->type == KC_NIC_NETWORK ? "network name" : "bridge name",
				     err) < 0)
			return -1;
		/* A bridge is a Linux interface: IFNAMSIZ - 1 characters. */
		if (n->type == KC_NIC_BRIDGE && strlen(n->source) > KC_IFNAME_MAX)
			return kc_error_set(
				err, KC_ERR_INVALID,
				"NIC %zu: bridge name '%s' is longer than %d characters", i,
				n->source, KC_IFNAME_MAX);
		break;
	default:
		return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: unknown type %d", i,
				    (int)n->type);
	}
	/* An empty MAC lets libvirt generate one. */
	size_t mlen = strnlen(n->mac, sizeof(n->mac));
	if (mlen == sizeof(n->mac))
		return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: MAC address is not terminated",
				    i);
	if (mlen == 0)
		return 0;
	if (check_mac(n->mac, i, err) < 0)
		return -1;
	for (size_t k = 0; k < i; k++)
		if (strcasecmp(def->nics[k].mac, n->mac) == 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "NICs %zu and %zu have the same MAC address %s", k, i,
					    n->mac);
	return 0;
}

static int check_def(const struct kc_domain_def *def, struct kc_error *err)
{
	if (!def)
		return kc_error_set(err, KC_ERR_INVALID, "no domain definition");
	if (!def->name)
		return kc_error_set(err, KC_ERR_INVALID, "VM name is missing");
	if (kc_name_validate(def->name, "VM name", err) < 0)
		return -1;
	if (strnlen(def->uuid, sizeof(def->uuid)) == sizeof(def->uuid))
		return kc_error_set(err, KC_ERR_INVALID, "UUID is not terminated");
	if (def->uuid[0] && check_uuid(def->uuid, err) < 0)
		return -1;
	if (def->accel != KC_ACCEL_TCG && def->accel != KC_ACCEL_KVM)
		return kc_error_set(err, KC_ERR_INVALID, "unknown accelerator %d", (int)def->accel);
	if (def->vcpus < 1 || def->vcpus > KC_MAX_VCPUS)
		return kc_error_set(err, KC_ERR_INVALID, "vcpus must be 1..%d, not %u",
				    KC_MAX_VCPUS, def->vcpus);
	if (def->memory_kib == 0)
		return kc_error_set(err, KC_ERR_INVALID, "memory must be more than 0");

	switch (def->cpu_mode) {
	case KC_CPU_CUSTOM:
		if (!def->cpu_model || !*def->cpu_model)
			return kc_error_set(err, KC_ERR_INVALID,
					    "CPU mode custom needs a CPU model");
		if (kc_name_validate(def->cpu_model, "CPU model", err) < 0)
			return -1;
		break;
	case KC_CPU_DEFAULT:
	case KC_CPU_HOST_MODEL:
	case KC_CPU_HOST_PASSTHROUGH:
		if (def->cpu_model && *def->cpu_model)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a CPU model is only allowed with CPU mode custom");
		break;
	default:
		return kc_error_set(err, KC_ERR_INVALID, "unknown CPU mode %d", (int)def->cpu_mode);
	}
	if (def->machine && kc_name_validate(def->machine, "machine type", err) < 0)
		return -1;

	if (def->n_disks > KC_MAX_DISKS)
		return kc_error_set(err, KC_ERR_INVALID, "at most %d disks, not %zu", KC_MAX_DISKS,
				    def->n_disks);
	for (size_t i = 0; i < def->n_disks; i++)
		if (check_disk(def, i, err) < 0)
			return -1;

	if (def->n_nics > KC_MAX_NICS)
		return kc_error_set(err, KC_ERR_INVALID, "at most %d NICs, not %zu", KC_MAX_NICS,
				    def->n_nics);
	for (size_t i = 0; i < def->n_nics; i++)
		if (check_nic(def, i, err) < 0)
			return -1;

	if (def->n_boot > KC_MAX_BOOT)
		return kc_error_set(err, KC_ERR_INVALID, "at most %d boot devices, not %zu",
				    KC_MAX_BOOT, def->n_boot);
	for (size_t i = 0; i < def->n_boot; i++) {
		if (def->boot[i] != KC_BOOT_HD && def->boot[i] != KC_BOOT_CDROM &&
		    def->boot[i] != KC_BOOT_NETWORK)
			return kc_error_set(err, KC_ERR_INVALID, "unknown boot device %d",
					    (int)def->boot[i]);
		for (size_t k = 0; k < i; k++)
			if (def->boot[k] == def->boot[i])
				return kc_error_set(err, KC_ERR_INVALID,
						    "boot device '%s' is listed twice",
						    kc_boot_dev_name(def->boot[i]));
	}

	if (def->serial_log && check_path(def->serial_log, "serial log path", err) < 0)
		return -1;

	switch (def->graphics) {
	case KC_GRAPHICS_NONE:
		break;
	case KC_GRAPHICS_VNC:
		if (def->vnc_password) {
			size_t plen = strlen(def->vnc_password);
			if (plen == 0 || plen > KC_VNC_PASSWD_MAX)
				return kc_error_set(err, KC_ERR_INVALID,
						    "VNC password must be 1..%d characters (VNC "
						    "uses only %d)",
						    KC_VNC_PASSWD_MAX, KC_VNC_PASSWD_MAX);
			if (check_text(def->vnc_password, KC_VNC_PASSWD_MAX, "VNC password", err) <
			    0)
				return -1;
		}
		break;
	default:
		return kc_error_set(err, KC_ERR_INVALID, "unknown graphics %d", (int)def->graphics);
	}

	if (def->owner && check_text(def->owner, KC_OWNER_MAX, "owner", err) < 0)
		return -1;
	return 0;
}

/* ---- writing ---- */

/*
 * A writer with a sticky failure flag (as libvirt's virBuffer): calls after
 * a failure do nothing, and the result is checked once at the end, so the
 * formatting code reads like the XML it produces.
 */
struct xw {
	xmlTextWriterPtr w;
	bool failed;
};

static void xw_check(struct xw *x, int rc)
{
	if (rc < 0)
		x->failed = true;
}

static void xw_start(struct xw *x, const char *name)
{
	if (!x->failed)
		xw_check(x, xmlTextWriterStartElement(x->w, BAD_CAST name));
}

static void xw_end(struct xw *x)
{
	if (!x->failed)
		xw_check(x, xmlTextWriterEndElement(x->w));
}

static void xw_attr(struct xw *x, const char *name, const char *value)
{
	if (!x->failed)
		xw_check(x, xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value));
}

static void xw_text(struct xw *x, const char *text)
{
	if (!x->failed)
		xw_check(x, xmlTextWriterWriteString(x->w, BAD_CAST text));
}

/* <name>text</name> */
static void xw_elem_text(struct xw *x, const char *name, const char *text)
{
	xw_start(x, name);
	xw_text(x, text);
	xw_end(x);
}

/* <name attr="value"/> */
static void xw_elem_attr(struct xw *x, const char *name, const char *attr, const char *value)
{
	xw_start(x, name);
	if (attr)
		xw_attr(x, attr, value);
	xw_end(x);
}

static void write_metadata(struct xw *x, const struct kc_domain_def *def)
{
	if (!def->owner)
		return;
	xw_start(x, "metadata");
	if (!x->failed)
		xw_check(x, xmlTextWriterStartElementNS(x->w, BAD_CAST "kvmcloud", BAD_CAST "vm",
							BAD_CAST KC_XML_NS));
	if (!x->failed)
		xw_check(x, xmlTextWriterStartElementNS(x->w, BAD_CAST "kvmcloud", BAD_CAST "owner",
							NULL));
	xw_text(x, def->owner);
	xw_end(x);
	xw_end(x);
	xw_end(x);
}

static void write_os(struct xw *x, const struct kc_domain_def *def)
{
	xw_start(x, "os");
	xw_start(x, "type");
	xw_attr(x, "arch", "x86_64");
	xw_attr(x, "machine", def->machine ? def->machine : "pc");
	xw_text(x, "hvm");
	xw_end(x);
	if (def->n_boot == 0)
		xw_elem_attr(x, "boot", "dev", "hd");
	for (size_t i = 0; i < def->n_boot; i++)
		xw_elem_attr(x, "boot", "dev", kc_boot_dev_name(def->boot[i]));
	xw_end(x);
}

static void write_cpu(struct xw *x, const struct kc_domain_def *def)
{
	switch (def->cpu_mode) {
	case KC_CPU_DEFAULT:
		return;
	case KC_CPU_CUSTOM:
		xw_start(x, "cpu");
		xw_attr(x, "mode", "custom");
		xw_attr(x, "match", "exact");
		xw_attr(x, "check", "partial");
		xw_start(x, "model");
		xw_attr(x, "fallback", "forbid");
		xw_text(x, def->cpu_model);
		xw_end(x);
		xw_end(x);
		return;
	case KC_CPU_HOST_MODEL:
		xw_start(x, "cpu");
		xw_attr(x, "mode", "host-model");
		xw_attr(x, "check", "partial");
		xw_end(x);
		return;
	case KC_CPU_HOST_PASSTHROUGH:
		xw_start(x, "cpu");
		xw_attr(x, "mode", "host-passthrough");
		xw_attr(x, "check", "none");
		xw_attr(x, "migratable", "on");
		xw_end(x);
		return;
	}
}

static void write_disk(struct xw *x, const struct kc_disk_def *d)
{
	bool cdrom = d->device == KC_DEVICE_CDROM;

	xw_start(x, "disk");
	xw_attr(x, "type", "file");
	xw_attr(x, "device", cdrom ? "cdrom" : "disk");
	xw_start(x, "driver");
	xw_attr(x, "name", "qemu");
	xw_attr(x, "type", kc_disk_format_name(d->format));
	if (!cdrom)
		xw_attr(x, "discard", "unmap");
	xw_end(x);
	xw_elem_attr(x, "source", "file", d->path);
	xw_start(x, "target");
	xw_attr(x, "dev", d->target);
	xw_attr(x, "bus", bus_name[d->bus]);
	xw_end(x);
	if (cdrom || d->readonly)
		xw_elem_attr(x, "readonly", NULL, NULL);
	xw_end(x);
}

static void write_nic(struct xw *x, const struct kc_nic_def *n)
{
	xw_start(x, "interface");
	xw_attr(x, "type", kc_nic_type_name(n->type));
	if (n->mac[0])
		xw_elem_attr(x, "mac", "address", n->mac);
	if (n->type == KC_NIC_NETWORK)
		xw_elem_attr(x, "source", "network", n->source);
	else if (n->type == KC_NIC_BRIDGE)
		xw_elem_attr(x, "source", "bridge", n->source);
	xw_elem_attr(x, "model", "type", "virtio");
	xw_end(x);
}

static void write_console(struct xw *x, const struct kc_domain_def *def)
{
	xw_start(x, "serial");
	xw_attr(x, "type", "pty");
	if (def->serial_log) {
		xw_start(x, "log");
		xw_attr(x, "file", def->serial_log);
		xw_attr(x, "append", "on");
		xw_end(x);
	}
	xw_elem_attr(x, "target", "port", "0");
	xw_end(x);

	xw_start(x, "console");
	xw_attr(x, "type", "pty");
	xw_start(x, "target");
	xw_attr(x, "type", "serial");
	xw_attr(x, "port", "0");
	xw_end(x);
	xw_end(x);
}

/* VNC listens on loopback only, whatever the def says: remote viewers go
 * through the API's authenticated proxy, never straight to QEMU. */
static void write_graphics(struct xw *x, const struct kc_domain_def *def)
{
	if (def->graphics != KC_GRAPHICS_VNC)
		return;
	xw_start(x, "graphics");
	xw_attr(x, "type", "vnc");
	xw_attr(x, "port", "-1");
	xw_attr(x, "autoport", "yes");
	xw_attr(x, "listen", "127.0.0.1");
	if (def->vnc_password)
		xw_attr(x, "passwd", def->vnc_password);
	xw_start(x, "listen");
	xw_attr(x, "type", "address");
	xw_attr(x, "address", "127.0.0.1");
	xw_end(x);
	xw_end(x);

	/* VGA rather than virtio-gpu: every guest, firmware and installer
	 * can drive it. */
	xw_start(x, "video");
	xw_elem_attr(x, "model", "type", "vga");
	xw_end(x);
}

static void write_devices(struct xw *x, const struct kc_domain_def *def)
{
	xw_start(x, "devices");
	for (size_t i = 0; i < def->n_disks; i++)
		write_disk(x, &def->disks[i]);
	for (size_t i = 0; i < def->n_nics; i++)
		write_nic(x, &def->nics[i]);
	write_console(x, def);
	write_graphics(x, def);
	xw_elem_attr(x, "memballoon", "model", "virtio");
	xw_start(x, "rng");
	xw_attr(x, "model", "virtio");
	xw_start(x, "backend");
	xw_attr(x, "model", "random");
	xw_text(x, "/dev/urandom");
	xw_end(x);
	xw_end(x);
	xw_end(x);
}

static void write_domain(struct xw *x, const struct kc_domain_def *def)
{
	char num[32];

	xw_start(x, "domain");
	xw_attr(x, "type", def->accel == KC_ACCEL_KVM ? "kvm" : "qemu");
	xw_elem_text(x, "name", def->name);
	if (def->uuid[0])
		xw_elem_text(x, "uuid", def->uuid);
	write_metadata(x, def);

	snprintf(num, sizeof(num), "%" PRIu64, def->memory_kib);
	xw_start(x, "memory");
	xw_attr(x, "unit", "KiB");
	xw_text(x, num);
	xw_end(x);

	snprintf(num, sizeof(num), "%u", def->vcpus);
	xw_start(x, "vcpu");
	xw_attr(x, "placement", "static");
	xw_text(x, num);
	xw_end(x);

	write_os(x, def);
	xw_start(x, "features");
	xw_elem_attr(x, "acpi", NULL, NULL);
	xw_elem_attr(x, "apic", NULL, NULL);
	xw_end(x);
	write_cpu(x, def);
	xw_elem_attr(x, "clock", "offset", "utc");
	xw_elem_text(x, "on_poweroff", "destroy");
	xw_elem_text(x, "on_reboot", "restart");
	xw_elem_text(x, "on_crash", "destroy");
	write_devices(x, def);
	xw_end(x);
	if (!x->failed)
		xw_check(x, xmlTextWriterEndDocument(x->w));
}

/* Validates first, so that nothing invalid ever reaches libvirt; then writes
 * the XML.  Every value goes through the writer, which escapes it. */
int kc_domain_xml_build(const struct kc_domain_def *def, char **ret_xml, struct kc_error *err)
{
	if (check_def(def, err) < 0)
		return -1;

	xmlBufferPtr buf = xmlBufferCreate();
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	struct xw x = {.w = xmlNewTextWriterMemory(buf, 0)};
	if (!x.w) {
		xmlBufferFree(buf);
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot create an XML writer");
	}
	xw_check(&x, xmlTextWriterSetIndent(x.w, 1));
	xw_check(&x, xmlTextWriterSetIndentString(x.w, BAD_CAST "  "));
	write_domain(&x, def);
	/* Freeing the writer flushes it into buf. */
	xmlFreeTextWriter(x.w);

	char *xml = x.failed ? NULL : strdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	if (x.failed)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot write the domain XML");
	if (!xml)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	*ret_xml = xml;
	return 0;
}
