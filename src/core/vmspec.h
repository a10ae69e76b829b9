/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmspec.h - what a user asks for when creating a VM (struct kc_vm_request,
 * parsed strictly from the API's JSON), and the fully resolved definition
 * the agent turns into libvirt domain XML (struct kc_domain_def).
 *
 * The request names things (an image, a network); only the agent knows the
 * paths behind those names, so it resolves a request into a domain def.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "gnet.h"
#include "validate.h"

#define KC_MAX_DISKS 8
#define KC_MAX_DATA_DISKS 4
#define KC_MAX_NICS 4
#define KC_MAX_BOOT 3
#define KC_MAX_VCPUS 64
#define KC_MIN_MEMORY_MIB 32
#define KC_MAX_USER_DATA (64 * 1024)
#define KC_MAX_DISK_GIB 16384

enum kc_accel { KC_ACCEL_TCG = 0, KC_ACCEL_KVM };
enum kc_cpu_mode {
	KC_CPU_DEFAULT = 0, /* no <cpu> element: the hypervisor's default model */
	KC_CPU_CUSTOM,
	KC_CPU_HOST_MODEL,
	KC_CPU_HOST_PASSTHROUGH,
};
enum kc_nic_type { KC_NIC_USER = 0, KC_NIC_NETWORK, KC_NIC_BRIDGE };
enum kc_graphics { KC_GRAPHICS_NONE = 0, KC_GRAPHICS_VNC };
enum kc_boot_dev { KC_BOOT_HD = 0, KC_BOOT_CDROM, KC_BOOT_NETWORK };
enum kc_disk_device { KC_DEVICE_DISK = 0, KC_DEVICE_CDROM };
/* IDE is what a CD-ROM on the default `pc` machine needs when the guest
 * kernel has no AHCI (SATA) driver, as many cloud kernels do. */
enum kc_disk_bus { KC_BUS_VIRTIO = 0, KC_BUS_SATA, KC_BUS_IDE };
enum kc_disk_format { KC_FORMAT_QCOW2 = 0, KC_FORMAT_RAW };
/* How a root disk is made from its template (docs/storage.md, "Clones"):
 * linked = a qcow2 overlay on a read-only base volume cached in the pool,
 * full = a standalone copy. */
enum kc_clone_mode { KC_CLONE_LINKED = 0, KC_CLONE_FULL };

const char *kc_accel_name(enum kc_accel a);              /* "tcg" / "kvm" */
const char *kc_cpu_mode_name(enum kc_cpu_mode m);        /* "default", "custom", "host-model", "host-passthrough" */
int kc_cpu_mode_parse(const char *s, enum kc_cpu_mode *ret, struct kc_error *err);
const char *kc_nic_type_name(enum kc_nic_type t);        /* "user", "network", "bridge" */
const char *kc_boot_dev_name(enum kc_boot_dev d);        /* "hd", "cdrom", "network" */
const char *kc_disk_format_name(enum kc_disk_format f);  /* "qcow2", "raw" */
const char *kc_clone_mode_name(enum kc_clone_mode m);    /* "linked", "full" */

struct kc_nic_request {
	enum kc_nic_type type;
	char source[KC_NAME_MAX + 1]; /* network or bridge name; empty for user */
	char mac[18];                 /* "52:54:00:xx:xx:xx" or empty = generate */
	/* A kvmcloud guest network (gnet.h; {"network": N, "ip": A}): the
	 * server allocates the MAC and address and resolves the attachment;
	 * type and source are then unused. */
	char network[KC_NAME_MAX + 1];
	char ip[16];                  /* requested IPv4 or empty = the next free one */
	bool resolved;                /* agent: gnet below is the network's definition */
	struct kc_gnet gnet;
};

/*
 * The JSON body of POST /api/v1/vms (see docs/api.md for the field list).
 * Unknown keys are an error.  Defaults are applied by the parser.
 */
struct kc_vm_request {
	char name[KC_NAME_MAX + 1];
	unsigned vcpus;                 /* default 1, 1..KC_MAX_VCPUS */
	uint64_t memory_mib;            /* required, >= KC_MIN_MEMORY_MIB */
	char image[KC_NAME_MAX + 1];    /* template in the image store; may be empty if iso set */
	uint64_t disk_gib;              /* root disk size; 0 = the image's own size */
	uint64_t data_disks_gib[KC_MAX_DATA_DISKS];
	size_t n_data_disks;
	char iso[KC_NAME_MAX + 1];      /* optional ISO in the image store */
	struct kc_nic_request nics[KC_MAX_NICS];
	size_t n_nics;                  /* default: one "user" NIC */
	enum kc_boot_dev boot[KC_MAX_BOOT];
	size_t n_boot;                  /* default: ["hd"], or ["cdrom","hd"] with an iso and no image */
	enum kc_graphics graphics;      /* default none */
	bool autostart;                 /* default false */
	bool start;                     /* default true: start after define */
	char hostname[64];              /* guest hostname for the NoCloud seed; default = name */
	char *user_data;                /* owned; optional NoCloud user-data, <= KC_MAX_USER_DATA */
	char pool[KC_NAME_MAX + 1];     /* storage pool of the disks; default "default" */
	enum kc_clone_mode clone;       /* default linked; only with an image */
};

/* Parses and validates (names, ranges, unknown keys).  Host-dependent limits
 * (memory above the host's, CPU counts above the host's) are the agent's. */
int kc_vm_request_from_json(const json_t *obj, struct kc_vm_request *ret, struct kc_error *err);
void kc_vm_request_clear(struct kc_vm_request *req); /* frees owned members */
/* The request back as JSON (for storing in the database). */
json_t *kc_vm_request_to_json(const struct kc_vm_request *req);

struct kc_disk_def {
	enum kc_disk_device device;
	enum kc_disk_bus bus;
	enum kc_disk_format format;
	char *path;          /* owned; with nfs_host: the file's path on that server */
	char target[8];      /* "vda", "sda", "hda" */
	bool readonly;
	/* An NFS disk (QEMU's own nfs:// driver, no kernel mount): the server;
	 * NULL for a local file.  Opened as uid/gid 0 (<identity>). */
	char *nfs_host;      /* owned */
	/* NFS qcow2 overlays: the backing file's path on the same server,
	 * written as an explicit <backingStore> (libvirt cannot probe a chain
	 * over NFS); NULL: none, or a local file (libvirt reads its header). */
	char *nfs_backing;   /* owned */
};

struct kc_nic_def {
	enum kc_nic_type type;
	char *source;        /* owned; NULL for user */
	char mac[18];
	bool ovs;            /* bridge: an Open vSwitch port (virtualport, checksum offload off) */
	unsigned vlan;       /* ovs: the port's VLAN tag, 0 = none */
	unsigned mtu;        /* 0 = the bridge's */
};

/* A fully resolved domain: everything domain_xml needs, no lookups left. */
struct kc_domain_def {
	char *name;                /* owned, already validated */
	char uuid[37];             /* may be empty: libvirt generates one */
	enum kc_accel accel;       /* KVM -> <domain type='kvm'>, TCG -> type='qemu' */
	unsigned vcpus;
	uint64_t memory_kib;
	enum kc_cpu_mode cpu_mode;
	char *cpu_model;           /* owned; only for KC_CPU_CUSTOM */
	char *machine;             /* owned; NULL = "pc" */
	struct kc_disk_def disks[KC_MAX_DISKS];
	size_t n_disks;
	struct kc_nic_def nics[KC_MAX_NICS];
	size_t n_nics;
	enum kc_boot_dev boot[KC_MAX_BOOT];
	size_t n_boot;
	char *serial_log;          /* owned; file the serial console is logged to (virtlogd) */
	enum kc_graphics graphics;
	char *vnc_password;        /* owned; VNC always listens on 127.0.0.1 only */
	char *owner;               /* owned; recorded in <metadata> (kvmcloud namespace) */
};

void kc_domain_def_clear(struct kc_domain_def *def);
