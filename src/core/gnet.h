/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gnet.h - a guest network (docs/networking.md, "Guest networks"): what an
 * admin declares (kind, bridge, VLAN, VNI, IPv4 range), parsed strictly from
 * JSON, and how a VM's NIC attaches to it on a host.
 *
 *   nat       libvirt network, forward mode nat, dnsmasq DHCP; per host
 *   isolated  libvirt network without forward; per host
 *   bridged   an existing host bridge (Linux or Open vSwitch)
 *   vlan      an Open vSwitch bridge, the guest port tagged with the VLAN
 *   vxlan     per host a Linux bridge kcbr<VNI> + vxlan device kcvx<VNI>,
 *             one flood FDB entry per peer host; guests get MTU 1450
 *
 * Addresses are IPv4, kept in host byte order once parsed (inet_pton).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "validate.h"

struct kc_nic_def;
struct kc_vm_request;

enum kc_gnet_kind {
	KC_GNET_NAT = 0,
	KC_GNET_ISOLATED,
	KC_GNET_BRIDGED,
	KC_GNET_VLAN,
	KC_GNET_VXLAN,
};
enum kc_gnet_backend { KC_GNET_LINUX = 0, KC_GNET_OVS };

#define KC_IFNAME_LEN	   15 /* IFNAMSIZ - 1 */
#define KC_GNET_MIN_PREFIX 16 /* IPAM walks the range: at most 65534 addresses */
#define KC_GNET_MAX_PREFIX 30
#define KC_VXLAN_MTU	   1450
#define KC_MAX_PEERS	   256

struct kc_gnet {
	char name[KC_NAME_MAX + 1];
	enum kc_gnet_kind kind;
	enum kc_gnet_backend backend;
	/* nat/isolated: kcnat<N>/kciso<N> (the server numbers them; also the
	 * libvirt network's name); bridged/vlan: the host's bridge; vxlan:
	 * kcbr<VNI>. */
	char bridge[KC_IFNAME_LEN + 1];
	unsigned vlan;			  /* vlan: 1..4094 */
	unsigned vni;			  /* vxlan: 1..16777215 */
	char underlay[KC_IFNAME_LEN + 1]; /* vxlan: the host interface VXLAN leaves by */
	unsigned mtu;			  /* guests' MTU; 0 = the bridge's */
	bool has_cidr;			  /* no range: no IPAM (bridged/vlan/vxlan only) */
	uint32_t net;			  /* network address */
	unsigned prefix;		  /* KC_GNET_MIN_PREFIX..KC_GNET_MAX_PREFIX */
	uint32_t gateway;		  /* 0: none (bridged/vlan/vxlan) */
	uint32_t dhcp_start, dhcp_end;	  /* the pool addresses are handed out from */
};

const char *kc_gnet_kind_name(enum kc_gnet_kind k);	  /* "nat", "isolated", ... */
const char *kc_gnet_backend_name(enum kc_gnet_backend b); /* "linux", "ovs" */

/* Parses and validates a network definition: name, kind, the fields its
 * kind needs and no others, interface names ^[a-z][a-z0-9-]{0,14}$, VLAN
 * 1..4094, VNI 1..16777215, MTU 576..9000, cidr "A.B.C.D/P" with P in
 * 16..30 and host bits clear, gateway/dhcp_start/dhcp_end inside it.
 * Defaults: gateway .1 for nat/isolated, the pool from the address after
 * the gateway to the one before broadcast, MTU 1450 for vxlan.  For
 * nat/isolated "bridge" must be kcnat<N>/kciso<N>. */
int kc_gnet_from_json(const json_t *obj, struct kc_gnet *ret, struct kc_error *err);
/* The definition back as JSON (every field set; parses to the same). */
json_t *kc_gnet_to_json(const struct kc_gnet *g);

/* "A.B.C.D" -> host order; KC_ERR_INVALID naming `what`. */
int kc_ipv4_parse(const char *s, const char *what, uint32_t *ret, struct kc_error *err);
void kc_ipv4_format(uint32_t a, char buf[16]);
/* True if `ip` may be handed to a guest: in the pool, not the gateway. */
bool kc_gnet_ip_assignable(const struct kc_gnet *g, uint32_t ip);
/* The vxlan device's name, kcvx<VNI>. */
void kc_gnet_vxlan_dev(const struct kc_gnet *g, char buf[KC_IFNAME_LEN + 1]);

/* Fills the type, source and attachment fields of a domain NIC for this
 * network (mac left alone): nat/isolated -> <interface type='network'>
 * on the libvirt network; others -> type='bridge', OVS virtualport, VLAN
 * tag and checksum offload off for OVS, MTU for vxlan. */
int kc_gnet_nic_attach(const struct kc_gnet *g, struct kc_nic_def *nic, struct kc_error *err);

/* The agent's side of vm.create: "nic_defs" is an array as long as the
 * request's NICs, null for a NIC on no guest network and otherwise
 * {"network": NetDef, "mac": M, "ip": A (optional)}, filled by the server
 * from its allocation.  Each guest-network NIC of req gets its definition
 * and MAC; one without is an error. */
int kc_gnet_resolve_nics(struct kc_vm_request *req, const json_t *nic_defs, struct kc_error *err);

/*
 * The hybrid plug (docs/networking.md, "Security groups"): a NIC with a
 * security group on an Open vSwitch network is plugged tap -> Linux bridge
 * kcq<MAC> -> veth kcv<MAC>/kco<MAC> -> OVS port kco<MAC> with the VLAN
 * tag, so that nft's bridge family and br_netfilter see its frames on a
 * Linux bridge.  <MAC> is the MAC's 12 hex digits (15 characters in all).
 * The OVS bridge and tag move from the domain's <interface> into its
 * metadata (KC_PLUG_NS), where the agent finds them at the next start.
 */
#define KC_PLUG_NS   "https://kvmcloud.invalid/xmlns/plug/1"
#define KC_PLUGS_MAX 16

struct kc_gnet_plug {
	char mac[18];			    /* lower case */
	char qbr[KC_IFNAME_LEN + 1];	    /* kcq<MAC>: the per-NIC Linux bridge */
	char vin[KC_IFNAME_LEN + 1];	    /* kcv<MAC>: veth end on the Linux bridge */
	char vout[KC_IFNAME_LEN + 1];	    /* kco<MAC>: veth end on the OVS bridge */
	char ovs_bridge[KC_IFNAME_LEN + 1]; /* the network's OVS bridge */
	unsigned vlan;			    /* the OVS port's tag, 0 = none */
};

/* Fills mac (lower-cased) and the three names from a unicast MAC; the
 * other fields are cleared.  KC_ERR_INVALID for a bad MAC. */
int kc_gnet_plug_names(const char *mac, struct kc_gnet_plug *ret, struct kc_error *err);
/* Rewrites domain XML `xml`: each <interface> plugged straight into Open
 * vSwitch whose MAC is in macs (n_macs of them) gets source bridge
 * kcq<MAC>, loses <virtualport> and <vlan>, and is recorded in
 * <metadata><kcplug:plugs> with its OVS bridge and tag; everything else
 * (model, address, checksum settings) stays.  *ret_xml is malloc'd (NULL
 * when nothing changed); *ret_changed counts the NICs rewritten.  A VLAN
 * trunk (several tags) is KC_ERR_INVALID. */
int kc_gnet_domain_hybrid(const char *xml, const char *const *macs, size_t n_macs, char **ret_xml,
			  size_t *ret_changed, struct kc_error *err);
/* The hybrid plugs recorded in domain XML `xml` (at most max), each
 * checked again (MAC, interface names, VLAN 0..4094): the agent passes
 * them to ip and ovs-vsctl. */
int kc_gnet_domain_plugs(const char *xml, struct kc_gnet_plug *out, size_t max, size_t *ret_n,
			 struct kc_error *err);
