/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sg_plug.c - the hybrid plug's plumbing (sg_plug.h).  The OVS bridge and
 * tag of each plug live in the domain's own metadata (gnet.h), so a start
 * after a host restart needs nothing but the definition.  Links are made
 * with ip(8), the OVS port with ovs-vsctl, both through argv (net_exec.c).
 * Checksum offload is off on both veth ends: OVS's userspace datapath
 * would send partial checksums as they are (TCP fails, ping works), and
 * with it off the kernel completes them as the frame leaves the veth.
 */
#include "sg_plug.h"

#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "gnet.h"
#include "net_backend.h"

#define ETHTOOL_BIN "/usr/sbin/ethtool"

struct kc_sg_plugs {
	size_t n;
	struct kc_gnet_plug p[KC_PLUGS_MAX];
};

/* err's message behind `what` (err may be NULL). */
static int prefix(struct kc_error *err, const char *what)
{
	if (!err)
		return -1;
	char m[sizeof(err->message)];
	enum kc_errcode code = err->code;
	snprintf(m, sizeof(m), "%s", err->message);
	kc_error_clear(err);
	return kc_error_set(err, code, "%s: %s", what, m);
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static int plumb_up(const struct kc_gnet_plug *p, struct kc_error *err)
{
	char tag[16];
	snprintf(tag, sizeof(tag), "tag=%u", p->vlan);
	if (!link_exists(p->qbr) &&
	    kc_net_runl(err, KC_IP_BIN, "link", "add", p->qbr, "type", "bridge", NULL) < 0)
		return -1;
	if (!link_exists(p->vin) && kc_net_runl(err, KC_IP_BIN, "link", "add", p->vin, "type",
						"veth", "peer", "name", p->vout, NULL) < 0)
		return -1;
	if (kc_net_runl(err, KC_IP_BIN, "link", "set", p->vin, "master", p->qbr, NULL) < 0 ||
	    kc_net_runl(err, ETHTOOL_BIN, "-K", p->vin, "tx", "off", NULL) < 0 ||
	    kc_net_runl(err, ETHTOOL_BIN, "-K", p->vout, "tx", "off", NULL) < 0 ||
	    kc_net_runl(err, KC_IP_BIN, "link", "set", p->vin, "up", NULL) < 0 ||
	    kc_net_runl(err, KC_IP_BIN, "link", "set", p->vout, "up", NULL) < 0 ||
	    kc_net_runl(err, KC_IP_BIN, "link", "set", p->qbr, "up", NULL) < 0)
		return -1;
	/* --may-exist keeps a port of an earlier run (ovsdb outlives links);
	 * the tag is set again in the same transaction. */
	if (p->vlan)
		return kc_net_runl(err, KC_OVS_VSCTL_BIN, "--timeout=10", "--may-exist", "add-port",
				   p->ovs_bridge, p->vout, tag, NULL);
	return kc_net_runl(err, KC_OVS_VSCTL_BIN, "--timeout=10", "--may-exist", "add-port",
			   p->ovs_bridge, p->vout, NULL);
}

static void plumb_down(const struct kc_gnet_plug *p)
{
	kc_net_runl(NULL, KC_OVS_VSCTL_BIN, "--timeout=10", "--if-exists", "del-port", p->vout,
		    NULL);
	if (link_exists(p->vin)) /* its peer kco goes with it */
		kc_net_runl(NULL, KC_IP_BIN, "link", "del", p->vin, NULL);
	if (link_exists(p->qbr))
		kc_net_runl(NULL, KC_IP_BIN, "link", "del", p->qbr, NULL);
}

static int read_plugs(virDomainPtr d, struct kc_sg_plugs *ret, struct kc_error *err)
{
	ret->n = 0;
	_cleanup_free_ char *xml =
		virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
	if (!xml)
		return kc_lverr(err, "reading the definition of VM '%s'", virDomainGetName(d));
	return kc_gnet_domain_plugs(xml, ret->p, KC_PLUGS_MAX, &ret->n, err);
}

int kc_sg_plug_prepare(virDomainPtr d, struct kc_error *err)
{
	struct kc_sg_plugs ps;
	if (read_plugs(d, &ps, err) < 0)
		return -1;
	for (size_t i = 0; i < ps.n; i++)
		if (plumb_up(&ps.p[i], err) < 0)
			return prefix(err, ps.p[i].qbr);
	return 0;
}

struct kc_sg_plugs *kc_sg_plug_read(virDomainPtr d)
{
	struct kc_sg_plugs *ps = calloc(1, sizeof(*ps));
	if (ps && read_plugs(d, ps, NULL) < 0) {
		virResetLastError();
		ps->n = 0;
	}
	return ps;
}

void kc_sg_plug_remove(struct kc_sg_plugs *ps)
{
	for (size_t i = 0; ps && i < ps->n; i++)
		plumb_down(&ps->p[i]);
	free(ps);
}

int kc_sg_plug_vm(virConnectPtr conn, const char *vm, const char *const *macs, size_t n, char *warn,
		  size_t warn_len, struct kc_error *err)
{
	virDomainPtr d0 = virDomainLookupByName(conn, vm);
	if (!d0) {
		virResetLastError();
		return 0;
	}
	_cleanup_dom_ virDomainPtr d = d0;
	_cleanup_free_ char *xml =
		virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
	_cleanup_free_ char *out = NULL;
	size_t changed = 0;
	if (!xml)
		return kc_lverr(err, "reading the definition of VM '%s'", vm);
	if (kc_gnet_domain_hybrid(xml, macs, n, &out, &changed, err) < 0)
		return prefix(err, vm);
	if (!changed)
		return 0; /* hybrid already (or no OVS NIC): vm.start makes missing links */
	int active = virDomainIsActive(d);
	if (active != 0) {
		if (active < 0)
			return kc_lverr(err, "reading the state of VM '%s'", vm);
		size_t used = strlen(warn);
		snprintf(warn + used, warn_len - used,
			 "%sVM %s runs with %zu NIC(s) plugged straight into Open vSwitch: its "
			 "security groups apply once it is stopped and started",
			 used ? "; " : "", vm, changed);
		return 0;
	}
	virDomainPtr nd = virDomainDefineXML(conn, out);
	if (!nd)
		return kc_lverr(err, "redefining VM '%s' with the hybrid plug", vm);
	virDomainFree(nd);
	return kc_sg_plug_prepare(d, err);
}
