/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secgroup.h - security groups: the rule model, its strict JSON readers, and
 * a host's whole ruleset (every VM with groups, its NICs and its flattened
 * rules) as the agent's sg.apply gets it.  Pure: no I/O, no nft.  Every
 * address is parsed with inet_pton here, so the renderer (nft_render.h)
 * only ever prints structured, validated values.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "validate.h"

#define KC_SG_RULES_MAX	    200	 /* per group */
#define KC_SG_GROUPS_PER_VM 10	 /* groups one VM may have */
#define KC_SG_VM_RULES_MAX  4000 /* one VM's rules after flattening and remote groups */
#define KC_SG_NICS_MAX	    8	 /* NICs of one VM */
#define KC_SG_IPS_MAX	    16	 /* addresses of one NIC */
#define KC_SG_VMS_MAX	    1024 /* VMs in one host's ruleset */
#define KC_SG_DESC_MAX	    255
#define KC_SG_CIDR_STR_MAX  64
#define KC_IFNAME_MAX	    15

enum kc_sg_dir { KC_SG_IN, KC_SG_OUT };
enum kc_sg_proto { KC_SG_ANY, KC_SG_TCP, KC_SG_UDP, KC_SG_ICMP };

/* An address with a prefix; host bits are cleared when parsed. */
struct kc_sg_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct kc_sg_rule {
	enum kc_sg_dir dir;
	enum kc_sg_proto proto;
	unsigned port_min, port_max; /* 0, 0: every port (or no ports: icmp, any) */
	bool has_cidr;		     /* false: any address, both families */
	struct kc_sg_cidr cidr;
	char remote_group[KC_NAME_MAX + 1]; /* "" if none; the server expands it */
};

struct kc_sg_nic {
	char tap[KC_IFNAME_MAX + 1]; /* "" when the agent must find it by MAC */
	char mac[18];
	size_t n_ips;
	struct kc_sg_cidr ips[KC_SG_IPS_MAX]; /* prefix 32 / 128 */
};

struct kc_sg_vm {
	char name[KC_NAME_MAX + 1];
	size_t n_nics;
	struct kc_sg_nic nics[KC_SG_NICS_MAX];
	size_t n_rules;
	struct kc_sg_rule *rules; /* malloc'd */
};

/* A host's whole ruleset: what sg.apply renders and replaces atomically. */
struct kc_sg_ruleset {
	size_t n_vms;
	struct kc_sg_vm *vms; /* malloc'd */
};

/* Parses "a.b.c.d/n", "v6/n" or a bare address (full length) with
 * inet_pton; host bits are cleared.  KC_ERR_INVALID naming `what`. */
int kc_sg_cidr_parse(const char *s, const char *what, struct kc_sg_cidr *ret, struct kc_error *err);
/* The canonical text ("10.0.0.0/8", "2001:db8::/32", a host without
 * "/32"); buf at least KC_SG_CIDR_STR_MAX. */
void kc_sg_cidr_format(const struct kc_sg_cidr *c, char *buf, size_t len);
/* An interface name as Linux and nft both take it: ^[a-z][a-z0-9-]{0,14}$. */
int kc_ifname_validate(const char *name, const char *what, struct kc_error *err);

/* A rule from the API or the agent:
 * {"direction": "in"|"out", "protocol": "tcp"|"udp"|"icmp"|"any",
 *  "port_min"?, "port_max"? (1..65535, tcp/udp only; port_max defaults to
 *  port_min), "cidr"? | "remote_group"? (not both; neither: any address)}.
 * Unknown keys refused.  With allow_remote_group false (the agent's input,
 * where the server has expanded groups to addresses) remote_group is
 * refused. */
int kc_sg_rule_from_json(const json_t *j, bool allow_remote_group, struct kc_sg_rule *ret,
			 struct kc_error *err);
/* The same keys back, canonical ("ports" not included). */
json_t *kc_sg_rule_to_json(const struct kc_sg_rule *r);
/* Two rules that match the same packets (for refusing duplicates). */
bool kc_sg_rule_equal(const struct kc_sg_rule *a, const struct kc_sg_rule *b);

/* sg.apply's args: {"vms": [{"name", "nics": [{"tap"?, "mac", "ips": [...]}],
 * "rules": [rule...]}]}; every bound above checked, names validated, VM
 * names and taps unique.  Free with kc_sg_ruleset_clear. */
int kc_sg_ruleset_from_json(const json_t *j, struct kc_sg_ruleset *ret, struct kc_error *err);
/* The same shape back (taps as resolved), for the agent's state file. */
json_t *kc_sg_ruleset_to_json(const struct kc_sg_ruleset *rs);
void kc_sg_ruleset_clear(struct kc_sg_ruleset *rs); /* accepts zeroed */
