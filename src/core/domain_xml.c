/* SPDX-License-Identifier: Apache-2.0 */
#include "domain_xml.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <libxml/xmlstring.h>

#include "cleanup.h"
#include "xmlwriter.h"

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
	if (d->nfs_backing && !d->nfs_host)
		return kc_error_set(err, KC_ERR_INVALID, "disk %zu: a backing store needs NFS", i);
	if (d->nfs_host) {
		if (!*d->nfs_host || check_text(d->nfs_host, 253, "disk host", err) < 0)
			return kc_error_set(err, KC_ERR_INVALID, "disk %zu: bad NFS host", i);
		if (d->device != KC_DEVICE_DISK)
			return kc_error_set(err, KC_ERR_INVALID,
					    "disk %zu: an NFS disk is no CD-ROM", i);
		if (d->nfs_backing && (d->format != KC_FORMAT_QCOW2 ||
				       check_path(d->nfs_backing, "backing path", err) < 0))
			return kc_error_set(err, KC_ERR_INVALID,
					    "disk %zu: a backing store needs a qcow2 disk and an "
					    "absolute path",
					    i);
	}

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
	if (n->ovs && n->type != KC_NIC_BRIDGE)
		return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: only a bridge NIC is on OVS", i);
	if (n->vlan && (!n->ovs || n->vlan > 4094))
		return kc_error_set(err, KC_ERR_INVALID,
				    "NIC %zu: a VLAN tag (1..4094) needs an OVS bridge", i);
	if (n->mtu && (n->mtu < 576 || n->mtu > 9000))
		return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: MTU must be 576..9000", i);
	/* An empty MAC lets libvirt generate one. */
	size_t mlen = strnlen(n->mac, sizeof(n->mac));
	if (mlen == sizeof(n->mac))
		return kc_error_set(err, KC_ERR_INVALID, "NIC %zu: MAC address is not terminated",
				    i);
	if (mlen == 0)
		return 0;
	char what[40];
	snprintf(what, sizeof(what), "NIC %zu: MAC address", i);
	if (kc_mac_validate(n->mac, true, what, err) < 0)
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

static void write_metadata(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	if (!def->owner)
		return;
	kc_xmlw_start(x, "metadata");
	kc_xmlw_start_ns(x, "kvmcloud", "vm", KC_XML_NS);
	kc_xmlw_start_ns(x, "kvmcloud", "owner", NULL);
	kc_xmlw_text(x, def->owner);
	kc_xmlw_end(x);
	kc_xmlw_end(x);
	kc_xmlw_end(x);
}

static void write_os(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	kc_xmlw_start(x, "os");
	kc_xmlw_start(x, "type");
	kc_xmlw_attr(x, "arch", "x86_64");
	kc_xmlw_attr(x, "machine", def->machine ? def->machine : "pc");
	kc_xmlw_text(x, "hvm");
	kc_xmlw_end(x);
	if (def->n_boot == 0)
		kc_xmlw_elem_attr(x, "boot", "dev", "hd");
	for (size_t i = 0; i < def->n_boot; i++)
		kc_xmlw_elem_attr(x, "boot", "dev", kc_boot_dev_name(def->boot[i]));
	kc_xmlw_end(x);
}

static void write_cpu(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	switch (def->cpu_mode) {
	case KC_CPU_DEFAULT:
		return;
	case KC_CPU_CUSTOM:
		kc_xmlw_start(x, "cpu");
		kc_xmlw_attr(x, "mode", "custom");
		kc_xmlw_attr(x, "match", "exact");
		kc_xmlw_attr(x, "check", "partial");
		kc_xmlw_start(x, "model");
		kc_xmlw_attr(x, "fallback", "forbid");
		kc_xmlw_text(x, def->cpu_model);
		kc_xmlw_end(x);
		kc_xmlw_end(x);
		return;
	case KC_CPU_HOST_MODEL:
		kc_xmlw_start(x, "cpu");
		kc_xmlw_attr(x, "mode", "host-model");
		kc_xmlw_attr(x, "check", "partial");
		kc_xmlw_end(x);
		return;
	case KC_CPU_HOST_PASSTHROUGH:
		kc_xmlw_start(x, "cpu");
		kc_xmlw_attr(x, "mode", "host-passthrough");
		kc_xmlw_attr(x, "check", "none");
		kc_xmlw_attr(x, "migratable", "on");
		kc_xmlw_end(x);
		return;
	}
}

/* QEMU's nfs driver opens the file as uid/gid 0: the agent makes the
 * volumes as root (mode 0600) and libvirt cannot chown a network file. */
static void write_nfs_source(struct kc_xmlw *x, const char *host, const char *path)
{
	kc_xmlw_start(x, "source");
	kc_xmlw_attr(x, "protocol", "nfs");
	kc_xmlw_attr(x, "name", path);
	kc_xmlw_elem_attr(x, "host", "name", host);
	kc_xmlw_start(x, "identity");
	kc_xmlw_attr(x, "user", "root");
	kc_xmlw_attr(x, "group", "root");
	kc_xmlw_end(x);
	kc_xmlw_end(x);
}

static void write_disk(struct kc_xmlw *x, const struct kc_disk_def *d)
{
	bool cdrom = d->device == KC_DEVICE_CDROM;

	kc_xmlw_start(x, "disk");
	kc_xmlw_attr(x, "type", d->nfs_host ? "network" : "file");
	kc_xmlw_attr(x, "device", cdrom ? "cdrom" : "disk");
	kc_xmlw_start(x, "driver");
	kc_xmlw_attr(x, "name", "qemu");
	kc_xmlw_attr(x, "type", kc_disk_format_name(d->format));
	if (!cdrom)
		kc_xmlw_attr(x, "discard", "unmap");
	kc_xmlw_end(x);
	if (!d->nfs_host) {
		kc_xmlw_elem_attr(x, "source", "file", d->path);
	} else {
		write_nfs_source(x, d->nfs_host, d->path);
		/* The whole chain, stated: the base is qcow2 with no backing. */
		if (d->nfs_backing) {
			kc_xmlw_start(x, "backingStore");
			kc_xmlw_attr(x, "type", "network");
			kc_xmlw_elem_attr(x, "format", "type", "qcow2");
			write_nfs_source(x, d->nfs_host, d->nfs_backing);
			kc_xmlw_elem_attr(x, "backingStore", NULL, NULL);
			kc_xmlw_end(x);
		}
	}
	kc_xmlw_start(x, "target");
	kc_xmlw_attr(x, "dev", d->target);
	kc_xmlw_attr(x, "bus", bus_name[d->bus]);
	kc_xmlw_end(x);
	if (cdrom || d->readonly)
		kc_xmlw_elem_attr(x, "readonly", NULL, NULL);
	kc_xmlw_end(x);
}

static void write_nic(struct kc_xmlw *x, const struct kc_nic_def *n)
{
	kc_xmlw_start(x, "interface");
	kc_xmlw_attr(x, "type", kc_nic_type_name(n->type));
	if (n->mac[0])
		kc_xmlw_elem_attr(x, "mac", "address", n->mac);
	if (n->type == KC_NIC_NETWORK)
		kc_xmlw_elem_attr(x, "source", "network", n->source);
	else if (n->type == KC_NIC_BRIDGE)
		kc_xmlw_elem_attr(x, "source", "bridge", n->source);
	if (n->ovs)
		kc_xmlw_elem_attr(x, "virtualport", "type", "openvswitch");
	if (n->vlan) {
		char tag[12];
		snprintf(tag, sizeof(tag), "%u", n->vlan);
		kc_xmlw_start(x, "vlan");
		kc_xmlw_elem_attr(x, "tag", "id", tag);
		kc_xmlw_end(x);
	}
	kc_xmlw_elem_attr(x, "model", "type", "virtio");
	/* OVS's userspace datapath (netdev, the only one on hosts without
	 * its kernel module) sends frames that still need their checksum
	 * with a bad one: ping works, TCP does not.  The guest computes its
	 * own checksums instead; on a kernel datapath this costs little. */
	if (n->ovs) {
		static const char *const off[] = {"csum", "gso", "tso4", "tso6", "ecn", "ufo"};
		kc_xmlw_start(x, "driver");
		kc_xmlw_start(x, "host");
		for (size_t i = 0; i < KC_ARRAY_SIZE(off); i++)
			kc_xmlw_attr(x, off[i], "off");
		kc_xmlw_end(x);
		kc_xmlw_end(x);
	}
	if (n->mtu) {
		char mtu[12];
		snprintf(mtu, sizeof(mtu), "%u", n->mtu);
		kc_xmlw_elem_attr(x, "mtu", "size", mtu);
	}
	kc_xmlw_end(x);
}

static void write_console(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	kc_xmlw_start(x, "serial");
	kc_xmlw_attr(x, "type", "pty");
	if (def->serial_log) {
		kc_xmlw_start(x, "log");
		kc_xmlw_attr(x, "file", def->serial_log);
		kc_xmlw_attr(x, "append", "on");
		kc_xmlw_end(x);
	}
	kc_xmlw_elem_attr(x, "target", "port", "0");
	kc_xmlw_end(x);

	kc_xmlw_start(x, "console");
	kc_xmlw_attr(x, "type", "pty");
	kc_xmlw_start(x, "target");
	kc_xmlw_attr(x, "type", "serial");
	kc_xmlw_attr(x, "port", "0");
	kc_xmlw_end(x);
	kc_xmlw_end(x);
}

/* VNC listens on loopback only, whatever the def says: remote viewers go
 * through the API's authenticated proxy, never straight to QEMU. */
static void write_graphics(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	if (def->graphics != KC_GRAPHICS_VNC)
		return;
	kc_xmlw_start(x, "graphics");
	kc_xmlw_attr(x, "type", "vnc");
	kc_xmlw_attr(x, "port", "-1");
	kc_xmlw_attr(x, "autoport", "yes");
	kc_xmlw_attr(x, "listen", "127.0.0.1");
	if (def->vnc_password)
		kc_xmlw_attr(x, "passwd", def->vnc_password);
	kc_xmlw_start(x, "listen");
	kc_xmlw_attr(x, "type", "address");
	kc_xmlw_attr(x, "address", "127.0.0.1");
	kc_xmlw_end(x);
	kc_xmlw_end(x);

	/* VGA rather than virtio-gpu: every guest, firmware and installer
	 * can drive it. */
	kc_xmlw_start(x, "video");
	kc_xmlw_elem_attr(x, "model", "type", "vga");
	kc_xmlw_end(x);
}

static void write_devices(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	kc_xmlw_start(x, "devices");
	for (size_t i = 0; i < def->n_disks; i++)
		write_disk(x, &def->disks[i]);
	for (size_t i = 0; i < def->n_nics; i++)
		write_nic(x, &def->nics[i]);
	write_console(x, def);
	write_graphics(x, def);
	kc_xmlw_elem_attr(x, "memballoon", "model", "virtio");
	kc_xmlw_start(x, "rng");
	kc_xmlw_attr(x, "model", "virtio");
	kc_xmlw_start(x, "backend");
	kc_xmlw_attr(x, "model", "random");
	kc_xmlw_text(x, "/dev/urandom");
	kc_xmlw_end(x);
	kc_xmlw_end(x);
	kc_xmlw_end(x);
}

static void write_domain(struct kc_xmlw *x, const struct kc_domain_def *def)
{
	char num[32];

	kc_xmlw_start(x, "domain");
	kc_xmlw_attr(x, "type", def->accel == KC_ACCEL_KVM ? "kvm" : "qemu");
	kc_xmlw_elem(x, "name", def->name);
	if (def->uuid[0])
		kc_xmlw_elem(x, "uuid", def->uuid);
	write_metadata(x, def);

	snprintf(num, sizeof(num), "%" PRIu64, def->memory_kib);
	kc_xmlw_start(x, "memory");
	kc_xmlw_attr(x, "unit", "KiB");
	kc_xmlw_text(x, num);
	kc_xmlw_end(x);

	snprintf(num, sizeof(num), "%u", def->vcpus);
	kc_xmlw_start(x, "vcpu");
	kc_xmlw_attr(x, "placement", "static");
	kc_xmlw_text(x, num);
	kc_xmlw_end(x);

	write_os(x, def);
	kc_xmlw_start(x, "features");
	kc_xmlw_elem_attr(x, "acpi", NULL, NULL);
	kc_xmlw_elem_attr(x, "apic", NULL, NULL);
	kc_xmlw_end(x);
	write_cpu(x, def);
	kc_xmlw_elem_attr(x, "clock", "offset", "utc");
	kc_xmlw_elem(x, "on_poweroff", "destroy");
	kc_xmlw_elem(x, "on_reboot", "restart");
	kc_xmlw_elem(x, "on_crash", "destroy");
	write_devices(x, def);
	kc_xmlw_end(x);
}

/* Validates first, so that nothing invalid ever reaches libvirt; then writes
 * the XML.  Every value goes through the writer, which escapes it. */
int kc_domain_xml_build(const struct kc_domain_def *def, char **ret_xml, struct kc_error *err)
{
	if (check_def(def, err) < 0)
		return -1;

	struct kc_xmlw x;
	if (kc_xmlw_init(&x, err) < 0)
		return -1;
	write_domain(&x, def);
	char *xml = kc_xmlw_finish(&x, "the domain XML", err);
	if (!xml)
		return -1;
	*ret_xml = xml;
	return 0;
}

/* ---- a hot-plugged volume's <disk> ---- */

#define KC_SERIAL_MAX 20 /* virtio-blk serials are 20 bytes */

static int check_hotdisk(const struct kc_hotdisk *d, struct kc_error *err)
{
	size_t tl = d->target ? strlen(d->target) : 0;
	if (tl < 3 || tl > 4 || strncmp(d->target, "vd", 2) != 0)
		return kc_error_set(err, KC_ERR_INVALID, "disk target '%s' is not vd[a-z]",
				    d->target ? d->target : "");
	for (size_t i = 2; i < tl; i++)
		if (d->target[i] < 'a' || d->target[i] > 'z')
			return kc_error_set(err, KC_ERR_INVALID, "disk target '%s' is not vd[a-z]",
					    d->target);
	if (d->format != KC_FORMAT_QCOW2 && d->format != KC_FORMAT_RAW)
		return kc_error_set(err, KC_ERR_INVALID, "unknown disk format %d", (int)d->format);
	if (d->serial && check_text(d->serial, KC_SERIAL_MAX, "disk serial", err) < 0)
		return -1;
	switch (d->kind) {
	case KC_HOTDISK_FILE:
	case KC_HOTDISK_BLOCK:
		return check_path(d->path, "disk path", err);
	case KC_HOTDISK_NETWORK:
		if (!d->protocol ||
		    (strcmp(d->protocol, "nfs") != 0 && strcmp(d->protocol, "iscsi") != 0))
			return kc_error_set(err, KC_ERR_INVALID, "unknown disk protocol '%s'",
					    d->protocol ? d->protocol : "");
		if (!d->host || !*d->host || !d->name || !*d->name)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a network disk needs host and name");
		if (d->port > 65535)
			return kc_error_set(err, KC_ERR_INVALID, "disk port %u", d->port);
		if (check_text(d->host, 253, "disk host", err) < 0 ||
		    check_text(d->name, KC_PATH_MAX, "disk source name", err) < 0 ||
		    (d->initiator && check_text(d->initiator, 223, "initiator", err) < 0))
			return -1;
		return 0;
	}
	return kc_error_set(err, KC_ERR_INVALID, "unknown disk kind %d", (int)d->kind);
}

int kc_hotdisk_xml_build(const struct kc_hotdisk *d, char **ret_xml, struct kc_error *err)
{
	static const char *const kind[] = {"file", "block", "network"};
	char port[12];
	struct kc_xmlw x;

	if (check_hotdisk(d, err) < 0 || kc_xmlw_init(&x, err) < 0)
		return -1;
	kc_xmlw_start(&x, "disk");
	kc_xmlw_attr(&x, "type", kind[d->kind]);
	kc_xmlw_attr(&x, "device", "disk");
	kc_xmlw_start(&x, "driver");
	kc_xmlw_attr(&x, "name", "qemu");
	kc_xmlw_attr(&x, "type", kc_disk_format_name(d->format));
	kc_xmlw_attr(&x, "discard", "unmap");
	kc_xmlw_end(&x);
	switch (d->kind) {
	case KC_HOTDISK_FILE:
		kc_xmlw_elem_attr(&x, "source", "file", d->path);
		break;
	case KC_HOTDISK_BLOCK:
		kc_xmlw_elem_attr(&x, "source", "dev", d->path);
		break;
	case KC_HOTDISK_NETWORK:
		kc_xmlw_start(&x, "source");
		kc_xmlw_attr(&x, "protocol", d->protocol);
		kc_xmlw_attr(&x, "name", d->name);
		kc_xmlw_start(&x, "host");
		kc_xmlw_attr(&x, "name", d->host);
		if (d->port) {
			snprintf(port, sizeof(port), "%u", d->port);
			kc_xmlw_attr(&x, "port", port);
		}
		kc_xmlw_end(&x);
		if (strcmp(d->protocol, "nfs") == 0) {
			/* As write_nfs_source: QEMU opens the file as root. */
			kc_xmlw_start(&x, "identity");
			kc_xmlw_attr(&x, "user", "root");
			kc_xmlw_attr(&x, "group", "root");
			kc_xmlw_end(&x);
		}
		if (d->initiator) {
			kc_xmlw_start(&x, "initiator");
			kc_xmlw_elem_attr(&x, "iqn", "name", d->initiator);
			kc_xmlw_end(&x);
		}
		kc_xmlw_end(&x);
		break;
	}
	kc_xmlw_start(&x, "target");
	kc_xmlw_attr(&x, "dev", d->target);
	kc_xmlw_attr(&x, "bus", "virtio");
	kc_xmlw_end(&x);
	if (d->serial)
		kc_xmlw_elem(&x, "serial", d->serial);
	kc_xmlw_end(&x);
	char *xml = kc_xmlw_finish(&x, "the disk XML", err);
	if (!xml)
		return -1;
	*ret_xml = xml;
	return 0;
}
