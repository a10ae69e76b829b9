/* SPDX-License-Identifier: Apache-2.0 */
#include "gnet.h"

#include <arpa/inet.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "secgroup.h" /* kc_ifname_validate */
#include "vmspec.h"

static const char *const kind_names[] = {"nat", "isolated", "bridged", "vlan", "vxlan"};
static const char *const backend_names[] = {"linux", "ovs"};

#define NAME_OF(tab, v) ((size_t)(v) < KC_ARRAY_SIZE(tab) ? tab[v] : "unknown")

const char *kc_gnet_kind_name(enum kc_gnet_kind k)
{
	return NAME_OF(kind_names, k);
}

const char *kc_gnet_backend_name(enum kc_gnet_backend b)
{
	return NAME_OF(backend_names, b);
}

static int lookup(const char *const *tab, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(tab[i], s) == 0)
			return (int)i;
	return -1;
}

int kc_ipv4_parse(const char *s, const char *what, uint32_t *ret, struct kc_error *err)
{
	struct in_addr a;
	if (!s || strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1)
		return kc_error_set(err, KC_ERR_INVALID, "%s must be an IPv4 address A.B.C.D",
				    what);
	*ret = ntohl(a.s_addr);
	return 0;
}

void kc_ipv4_format(uint32_t a, char buf[16])
{
	struct in_addr in = {.s_addr = htonl(a)};
	if (!inet_ntop(AF_INET, &in, buf, 16))
		buf[0] = '\0';
}

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : ~UINT32_C(0) << (32 - prefix);
}

static uint32_t broadcast_of(const struct kc_gnet *g)
{
	return g->net | ~mask_of(g->prefix);
}

static bool in_net(const struct kc_gnet *g, uint32_t ip)
{
	return (ip & mask_of(g->prefix)) == g->net && ip != g->net && ip != broadcast_of(g);
}

bool kc_gnet_ip_assignable(const struct kc_gnet *g, uint32_t ip)
{
	return g->has_cidr && in_net(g, ip) && ip >= g->dhcp_start && ip <= g->dhcp_end &&
	       ip != g->gateway;
}

void kc_gnet_vxlan_dev(const struct kc_gnet *g, char buf[KC_IFNAME_LEN + 1])
{
	snprintf(buf, KC_IFNAME_LEN + 1, "kcvx%u", g->vni);
}

static int parse_cidr(const char *s, struct kc_gnet *g, struct kc_error *err)
{
	char addr[16];
	const char *slash = s ? strchr(s, '/') : NULL;
#define CIDR_MSG "\"cidr\" must be A.B.C.D/P with P from %d to %d and the host bits clear"
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return kc_error_set(err, KC_ERR_INVALID, CIDR_MSG, KC_GNET_MIN_PREFIX,
				    KC_GNET_MAX_PREFIX);
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	char *end = NULL;
	long p = strtol(slash + 1, &end, 10);
	if (!slash[1] || *end || p < KC_GNET_MIN_PREFIX || p > KC_GNET_MAX_PREFIX ||
	    kc_ipv4_parse(addr, "cidr", &g->net, NULL) < 0 || (g->net & ~mask_of((unsigned)p)))
		return kc_error_set(err, KC_ERR_INVALID, CIDR_MSG, KC_GNET_MIN_PREFIX,
				    KC_GNET_MAX_PREFIX);
	g->prefix = (unsigned)p;
	g->has_cidr = true;
	return 0;
}

/* Reads an optional address that must lie inside the network. */
static int get_ip(const json_t *obj, const char *key, const struct kc_gnet *g, uint32_t *ret,
		  struct kc_error *err)
{
	const char *s = NULL;
	if (kc_json_get_string(obj, key, false, 15, &s, err) < 0)
		return -1;
	if (!s)
		return 0;
	char what[32];
	snprintf(what, sizeof(what), "\"%s\"", key);
	if (!g->has_cidr)
		return kc_error_set(err, KC_ERR_INVALID, "%s needs a \"cidr\"", what);
	if (kc_ipv4_parse(s, what, ret, err) < 0)
		return -1;
	if (!in_net(g, *ret))
		return kc_error_set(err, KC_ERR_INVALID, "%s %s is not a host address of the cidr",
				    what, s);
	return 0;
}

/* Refuses a key that the kind does not use, so nothing is silently ignored. */
static int refuse(const json_t *obj, const char *key, const struct kc_gnet *g, struct kc_error *err)
{
	if (json_object_get(obj, key))
		return kc_error_set(err, KC_ERR_INVALID, "a %s network takes no \"%s\"",
				    kc_gnet_kind_name(g->kind), key);
	return 0;
}

static int check_num_bridge(const struct kc_gnet *g, const char *prefix, struct kc_error *err)
{
	size_t pl = strlen(prefix);
	bool ok =
		strncmp(g->bridge, prefix, pl) == 0 && g->bridge[pl] >= '1' && g->bridge[pl] <= '9';
	for (size_t i = pl + 1; ok && g->bridge[i]; i++)
		ok = g->bridge[i] >= '0' && g->bridge[i] <= '9';
	if (!ok)
		return kc_error_set(err, KC_ERR_INVALID,
				    "a %s network's bridge must be %s<N> (the server numbers it)",
				    kc_gnet_kind_name(g->kind), prefix);
	return 0;
}

static int parse(const json_t *obj, struct kc_gnet *g, struct kc_error *err)
{
	static const char *const keys[] = {"name",	 "kind",     "backend", "bridge", "vlan",
					   "vni",	 "underlay", "mtu",	"cidr",	  "gateway",
					   "dhcp_start", "dhcp_end", NULL};
	const char *name = NULL, *kind = NULL, *backend = NULL, *bridge = NULL, *underlay = NULL,
		   *cidr = NULL;
	uint64_t vlan = 0, vni = 0, mtu = 0;

	if (!json_is_object(obj))
		return kc_error_set(err, KC_ERR_INVALID, "a network must be a JSON object");
	if (kc_json_check_keys(obj, keys, "the network", err) < 0 ||
	    kc_json_get_string(obj, "name", true, 1024, &name, err) < 0 ||
	    kc_name_validate(name, "network name", err) < 0 ||
	    kc_json_get_string(obj, "kind", true, 16, &kind, err) < 0 ||
	    kc_json_get_string(obj, "backend", false, 16, &backend, err) < 0 ||
	    kc_json_get_string(obj, "bridge", false, 64, &bridge, err) < 0 ||
	    kc_json_get_string(obj, "underlay", false, 64, &underlay, err) < 0 ||
	    kc_json_get_string(obj, "cidr", false, 32, &cidr, err) < 0 ||
	    kc_json_get_uint(obj, "vlan", false, 1, 4094, &vlan, err) < 0 ||
	    kc_json_get_uint(obj, "vni", false, 1, 16777215, &vni, err) < 0 ||
	    kc_json_get_uint(obj, "mtu", false, 576, 9000, &mtu, err) < 0)
		return -1;
	snprintf(g->name, sizeof(g->name), "%s", name);
	int k = lookup(kind_names, KC_ARRAY_SIZE(kind_names), kind);
	if (k < 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"kind\" must be nat, isolated, bridged, vlan or vxlan");
	g->kind = (enum kc_gnet_kind)k;
	int b = backend ? lookup(backend_names, KC_ARRAY_SIZE(backend_names), backend)
			: (g->kind == KC_GNET_VLAN ? KC_GNET_OVS : KC_GNET_LINUX);
	if (b < 0)
		return kc_error_set(err, KC_ERR_INVALID, "\"backend\" must be linux or ovs");
	g->backend = (enum kc_gnet_backend)b;
	if (bridge) {
		if (kc_ifname_validate(bridge, "\"bridge\"", err) < 0)
			return -1;
		snprintf(g->bridge, sizeof(g->bridge), "%s", bridge);
	}
	if (underlay) {
		if (kc_ifname_validate(underlay, "\"underlay\"", err) < 0)
			return -1;
		snprintf(g->underlay, sizeof(g->underlay), "%s", underlay);
	}
	g->vlan = (unsigned)vlan;
	g->vni = (unsigned)vni;
	g->mtu = (unsigned)mtu;
	if (cidr && parse_cidr(cidr, g, err) < 0)
		return -1;

	switch (g->kind) {
	case KC_GNET_NAT:
	case KC_GNET_ISOLATED:
		if (refuse(obj, "vlan", g, err) < 0 || refuse(obj, "vni", g, err) < 0 ||
		    refuse(obj, "underlay", g, err) < 0 || refuse(obj, "backend", g, err) < 0)
			return -1;
		if (!g->has_cidr)
			return kc_error_set(err, KC_ERR_INVALID, "a %s network needs a \"cidr\"",
					    kind);
		if (!bridge)
			return kc_error_set(err, KC_ERR_INVALID, "a %s network needs its bridge",
					    kind);
		if (check_num_bridge(g, g->kind == KC_GNET_NAT ? "kcnat" : "kciso", err) < 0)
			return -1;
		break;
	case KC_GNET_BRIDGED:
	case KC_GNET_VLAN:
		if (refuse(obj, "vni", g, err) < 0 || refuse(obj, "underlay", g, err) < 0)
			return -1;
		if (!bridge)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a %s network needs \"bridge\" (the host's bridge)",
					    kind);
		if (g->kind == KC_GNET_VLAN) {
			if (!vlan)
				return kc_error_set(err, KC_ERR_INVALID,
						    "a vlan network needs \"vlan\" (1..4094)");
			if (g->backend != KC_GNET_OVS)
				return kc_error_set(
					err, KC_ERR_INVALID,
					"a vlan network needs backend ovs: Linux bridge VLAN "
					"filtering is not supported (docs/networking.md)");
		} else if (refuse(obj, "vlan", g, err) < 0) {
			return -1;
		}
		break;
	case KC_GNET_VXLAN:
		if (refuse(obj, "vlan", g, err) < 0 || refuse(obj, "bridge", g, err) < 0)
			return -1;
		if (!vni || !underlay)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a vxlan network needs \"vni\" (1..16777215) and "
					    "\"underlay\" (the host interface VXLAN uses)");
		if (g->backend != KC_GNET_LINUX)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a vxlan network uses backend linux");
		snprintf(g->bridge, sizeof(g->bridge), "kcbr%u", g->vni);
		if (!g->mtu)
			g->mtu = KC_VXLAN_MTU;
		if (g->mtu > KC_VXLAN_MTU)
			return kc_error_set(err, KC_ERR_INVALID,
					    "a vxlan network's MTU is at most %d (50 bytes of "
					    "encapsulation on a 1500 underlay)",
					    KC_VXLAN_MTU);
		break;
	}

	if (g->has_cidr) {
		uint32_t bc = broadcast_of(g);
		if (g->kind == KC_GNET_NAT || g->kind == KC_GNET_ISOLATED)
			g->gateway = g->net + 1;
		if (get_ip(obj, "gateway", g, &g->gateway, err) < 0)
			return -1;
		g->dhcp_start = g->gateway == g->net + 1 ? g->net + 2 : g->net + 1;
		g->dhcp_end = bc - 1;
		if (get_ip(obj, "dhcp_start", g, &g->dhcp_start, err) < 0 ||
		    get_ip(obj, "dhcp_end", g, &g->dhcp_end, err) < 0)
			return -1;
		if (g->dhcp_start > g->dhcp_end)
			return kc_error_set(err, KC_ERR_INVALID,
					    "\"dhcp_start\" is after \"dhcp_end\"");
	} else if (json_object_get(obj, "gateway") || json_object_get(obj, "dhcp_start") ||
		   json_object_get(obj, "dhcp_end")) {
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"gateway\", \"dhcp_start\" and \"dhcp_end\" need a \"cidr\"");
	}
	return 0;
}

int kc_gnet_from_json(const json_t *obj, struct kc_gnet *ret, struct kc_error *err)
{
	struct kc_gnet g = {0};
	if (parse(obj, &g, err) < 0)
		return -1;
	*ret = g;
	return 0;
}

json_t *kc_gnet_to_json(const struct kc_gnet *g)
{
	json_t *o = json_pack("{s:s,s:s}", "name", g->name, "kind", kc_gnet_kind_name(g->kind));
	if (!o)
		return NULL;
	if (g->kind != KC_GNET_NAT && g->kind != KC_GNET_ISOLATED)
		json_object_set_new(o, "backend", json_string(kc_gnet_backend_name(g->backend)));
	if (g->bridge[0] && g->kind != KC_GNET_VXLAN)
		json_object_set_new(o, "bridge", json_string(g->bridge));
	if (g->vlan)
		json_object_set_new(o, "vlan", json_integer(g->vlan));
	if (g->vni)
		json_object_set_new(o, "vni", json_integer(g->vni));
	if (g->underlay[0])
		json_object_set_new(o, "underlay", json_string(g->underlay));
	if (g->mtu)
		json_object_set_new(o, "mtu", json_integer(g->mtu));
	if (g->has_cidr) {
		char a[16], cidr[24];
		kc_ipv4_format(g->net, a);
		snprintf(cidr, sizeof(cidr), "%s/%u", a, g->prefix);
		json_object_set_new(o, "cidr", json_string(cidr));
		if (g->gateway) {
			kc_ipv4_format(g->gateway, a);
			json_object_set_new(o, "gateway", json_string(a));
		}
		kc_ipv4_format(g->dhcp_start, a);
		json_object_set_new(o, "dhcp_start", json_string(a));
		kc_ipv4_format(g->dhcp_end, a);
		json_object_set_new(o, "dhcp_end", json_string(a));
	}
	return o;
}

int kc_gnet_nic_attach(const struct kc_gnet *g, struct kc_nic_def *nic, struct kc_error *err)
{
	_cleanup_free_ char *src = strdup(g->bridge);
	if (!src)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	nic->ovs = false;
	nic->vlan = 0;
	nic->mtu = g->mtu;
	switch (g->kind) {
	case KC_GNET_NAT:
	case KC_GNET_ISOLATED:
		nic->type = KC_NIC_NETWORK; /* the libvirt network is named as its bridge */
		break;
	case KC_GNET_VLAN:
		nic->vlan = g->vlan;
		/* fall through */
	case KC_GNET_BRIDGED:
	case KC_GNET_VXLAN:
		nic->type = KC_NIC_BRIDGE;
		nic->ovs = g->backend == KC_GNET_OVS;
		break;
	default:
		return kc_error_set(err, KC_ERR_INVALID, "unknown network kind %d", (int)g->kind);
	}
	free(nic->source);
	nic->source = steal_ptr(&src);
	return 0;
}

int kc_gnet_resolve_nics(struct kc_vm_request *req, const json_t *nic_defs, struct kc_error *err)
{
	static const char *const keys[] = {"network", "mac", "ip", NULL};

	if (nic_defs && (!json_is_array(nic_defs) || json_array_size(nic_defs) != req->n_nics))
		return kc_error_set(err, KC_ERR_INVALID,
				    "\"nic_defs\" must have one entry per NIC");
	for (size_t i = 0; i < req->n_nics; i++) {
		struct kc_nic_request *n = &req->nics[i];
		const json_t *d = nic_defs ? json_array_get(nic_defs, i) : NULL;
		const char *mac = NULL, *ip = NULL;
		if (!n->network[0]) {
			if (d && !json_is_null(d))
				return kc_error_set(err, KC_ERR_INVALID,
						    "nic_defs[%zu] is for no guest network", i);
			continue;
		}
		if (!d || json_is_null(d))
			return kc_error_set(err, KC_ERR_INVALID,
					    "NIC %zu (network \"%s\") needs its definition", i,
					    n->network);
		if (kc_json_check_keys(d, keys, "a NIC definition", err) < 0 ||
		    kc_gnet_from_json(json_object_get(d, "network"), &n->gnet, err) < 0 ||
		    kc_json_get_string(d, "mac", true, 17, &mac, err) < 0 ||
		    kc_mac_validate(mac, true, "NIC MAC", err) < 0 ||
		    kc_json_get_string(d, "ip", false, 15, &ip, err) < 0)
			return -1;
		if (strcmp(n->gnet.name, n->network) != 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "nic_defs[%zu] is network \"%s\", not \"%s\"", i,
					    n->gnet.name, n->network);
		uint32_t a;
		if (ip && (kc_ipv4_parse(ip, "NIC address", &a, err) < 0 ||
			   !kc_gnet_ip_assignable(&n->gnet, a)))
			return kc_error_set(err, KC_ERR_INVALID,
					    "NIC %zu: address not in network \"%s\"", i,
					    n->network);
		snprintf(n->mac, sizeof(n->mac), "%s", mac);
		if (ip)
			snprintf(n->ip, sizeof(n->ip), "%s", ip);
		n->resolved = true;
	}
	return 0;
}

int kc_gnet_plug_names(const char *mac, struct kc_gnet_plug *ret, struct kc_error *err)
{
	char hex[13];
	size_t k = 0;

	memset(ret, 0, sizeof(*ret));
	if (!mac || kc_mac_validate(mac, true, "NIC MAC", err) < 0)
		return mac ? -1 : kc_error_set(err, KC_ERR_INVALID, "NIC MAC missing");
	for (size_t i = 0; i < 17; i++) {
		char c = (char)((mac[i] >= 'A' && mac[i] <= 'F') ? mac[i] + 32 : mac[i]);
		ret->mac[i] = c;
		if (c != ':')
			hex[k++] = c;
	}
	hex[12] = '\0';
	snprintf(ret->qbr, sizeof(ret->qbr), "kcq%s", hex);
	snprintf(ret->vin, sizeof(ret->vin), "kcv%s", hex);
	snprintf(ret->vout, sizeof(ret->vout), "kco%s", hex);
	return 0;
}

static bool mac_listed(const char *mac, const char *const *macs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (macs[i] && strcasecmp(macs[i], mac) == 0)
			return true;
	return false;
}

static char *xp_string(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr)
{
	ctx->node = node;
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	char *s = NULL;
	if (o && o->type == XPATH_STRING && o->stringval && o->stringval[0])
		s = strdup((const char *)o->stringval);
	xmlXPathFreeObject(o);
	return s;
}

static double xp_number(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr)
{
	ctx->node = node;
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	double d = o && o->type == XPATH_NUMBER ? o->floatval : 0;
	xmlXPathFreeObject(o);
	return d;
}

static void unlink_children(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr c = parent->children, next; c; c = next) {
		next = c->next;
		if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, (const xmlChar *)name) == 0) {
			/* Its indentation goes with it. */
			xmlNodePtr ws = c->prev;
			if (ws && xmlIsBlankNode(ws)) {
				xmlUnlinkNode(ws);
				xmlFreeNode(ws);
			}
			xmlUnlinkNode(c);
			xmlFreeNode(c);
		}
	}
}

static xmlNodePtr child_named(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, (const xmlChar *)name) == 0)
			return c;
	return NULL;
}

/* <metadata><kcplug:plugs xmlns:kcplug=KC_PLUG_NS>, made if missing. */
static xmlNodePtr plugs_node(xmlDocPtr doc, xmlXPathContextPtr ctx)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	ctx->node = root;
	xmlXPathObjectPtr o =
		xmlXPathEvalExpression((const xmlChar *)"/domain/metadata/kcplug:plugs", ctx);
	xmlNodePtr n =
		o && o->nodesetval && o->nodesetval->nodeNr ? o->nodesetval->nodeTab[0] : NULL;
	xmlXPathFreeObject(o);
	if (n)
		return n;
	xmlNodePtr md = child_named(root, "metadata");
	if (!md) {
		md = xmlNewNode(NULL, (const xmlChar *)"metadata");
		if (!md)
			return NULL;
		/* libvirt wants <metadata> after the name/uuid/description. */
		xmlNodePtr after = child_named(root, "uuid");
		if (!after)
			after = child_named(root, "name");
		if (after ? !xmlAddNextSibling(after, md) : !xmlAddChild(root, md)) {
			xmlFreeNode(md);
			return NULL;
		}
	}
	n = xmlNewChild(md, NULL, (const xmlChar *)"plugs", NULL);
	xmlNsPtr ns =
		n ? xmlNewNs(n, (const xmlChar *)KC_PLUG_NS, (const xmlChar *)"kcplug") : NULL;
	if (!ns)
		return NULL;
	xmlSetNs(n, ns);
	return n;
}

static int hybrid_one(xmlDocPtr doc, xmlXPathContextPtr ctx, xmlNodePtr iface, const char *mac,
		      struct kc_error *err)
{
	struct kc_gnet_plug p;
	_cleanup_free_ char *br = xp_string(ctx, iface, "string(source/@bridge)");
	if (kc_gnet_plug_names(mac, &p, err) < 0)
		return -1;
	if (!br || kc_ifname_validate(br, "OVS bridge", err) < 0)
		return br ? -1 : kc_error_set(err, KC_ERR_INVALID, "NIC %s has no bridge", mac);
	if (xp_number(ctx, iface, "count(vlan/tag)") > 1)
		return kc_error_set(err, KC_ERR_INVALID,
				    "NIC %s is a VLAN trunk: no security group on it", mac);
	double tag = xp_number(ctx, iface, "number(concat('0', vlan/tag/@id))");
	if (!(tag >= 0 && tag <= 4094))
		return kc_error_set(err, KC_ERR_INVALID, "NIC %s: bad VLAN tag", mac);
	xmlNodePtr plugs = plugs_node(doc, ctx);
	xmlNodePtr src = child_named(iface, "source");
	char vlan[12];
	snprintf(vlan, sizeof(vlan), "%u", (unsigned)tag);
	xmlNodePtr rec = plugs ? xmlNewChild(plugs, plugs->ns, (const xmlChar *)"nic", NULL) : NULL;
	if (!rec || !src || !xmlNewProp(rec, (const xmlChar *)"mac", (const xmlChar *)p.mac) ||
	    !xmlNewProp(rec, (const xmlChar *)"bridge", (const xmlChar *)br) ||
	    !xmlNewProp(rec, (const xmlChar *)"vlan", (const xmlChar *)vlan) ||
	    !xmlSetProp(src, (const xmlChar *)"bridge", (const xmlChar *)p.qbr))
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	unlink_children(iface, "virtualport");
	unlink_children(iface, "vlan");
	return 0;
}

static xmlXPathContextPtr plug_ctx(xmlDocPtr doc)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	if (ctx &&
	    xmlXPathRegisterNs(ctx, (const xmlChar *)"kcplug", (const xmlChar *)KC_PLUG_NS) < 0) {
		xmlXPathFreeContext(ctx);
		return NULL;
	}
	return ctx;
}

int kc_gnet_domain_hybrid(const char *xml, const char *const *macs, size_t n_macs, char **ret_xml,
			  size_t *ret_changed, struct kc_error *err)
{
	int rc = -1;
	size_t changed = 0;
	xmlXPathObjectPtr o = NULL;
	xmlXPathContextPtr ctx = NULL;
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	*ret_xml = NULL;
	*ret_changed = 0;
	if (!doc || !(ctx = plug_ctx(doc))) {
		kc_error_set(err, KC_ERR_INVALID, "unreadable domain XML");
		goto out;
	}
	o = xmlXPathEvalExpression(
		(const xmlChar *)"/domain/devices/interface[virtualport/@type='openvswitch']", ctx);
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlNodePtr iface = o->nodesetval->nodeTab[i];
		_cleanup_free_ char *mac = xp_string(ctx, iface, "string(mac/@address)");
		if (!mac || !mac_listed(mac, macs, n_macs))
			continue;
		if (hybrid_one(doc, ctx, iface, mac, err) < 0)
			goto out;
		changed++;
	}
	if (changed) {
		xmlChar *buf = NULL;
		int len = 0;
		xmlDocDumpFormatMemory(doc, &buf, &len, 1);
		if (!buf) {
			kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
			goto out;
		}
		*ret_xml = strdup((const char *)buf);
		xmlFree(buf);
		if (!*ret_xml) {
			kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	*ret_changed = changed;
	rc = 0;
out:
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return rc;
}

int kc_gnet_domain_plugs(const char *xml, struct kc_gnet_plug *out, size_t max, size_t *ret_n,
			 struct kc_error *err)
{
	int rc = -1;
	xmlXPathObjectPtr o = NULL;
	xmlXPathContextPtr ctx = NULL;
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	*ret_n = 0;
	if (!doc || !(ctx = plug_ctx(doc))) {
		kc_error_set(err, KC_ERR_INVALID, "unreadable domain XML");
		goto out;
	}
	o = xmlXPathEvalExpression((const xmlChar *)"/domain/metadata/kcplug:plugs/kcplug:nic",
				   ctx);
	for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
		xmlNodePtr n = o->nodesetval->nodeTab[i];
		_cleanup_free_ char *mac = xp_string(ctx, n, "string(@mac)");
		_cleanup_free_ char *br = xp_string(ctx, n, "string(@bridge)");
		double vlan = xp_number(ctx, n, "number(@vlan)");
		if (*ret_n >= max) {
			kc_error_set(err, KC_ERR_INVALID, "more than %zu hybrid plugs", max);
			goto out;
		}
		struct kc_gnet_plug *p = &out[*ret_n];
		if (kc_gnet_plug_names(mac, p, err) < 0 || !br ||
		    kc_ifname_validate(br, "OVS bridge", err) < 0) {
			if (!br)
				kc_error_set(err, KC_ERR_INVALID, "a hybrid plug has no bridge");
			goto out;
		}
		if (!(vlan >= 0 && vlan <= 4094) || vlan != (double)(unsigned)vlan) {
			kc_error_set(err, KC_ERR_INVALID, "hybrid plug %s: bad VLAN", p->mac);
			goto out;
		}
		snprintf(p->ovs_bridge, sizeof(p->ovs_bridge), "%s", br);
		p->vlan = (unsigned)vlan;
		(*ret_n)++;
	}
	rc = 0;
out:
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return rc;
}
