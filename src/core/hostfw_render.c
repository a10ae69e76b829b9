/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostfw_render.c - host firewall policy -> nft text (hostfw_render.h).
 * Parsing fills small structs first; the text is printed from them only,
 * so nothing the user wrote reaches nft unparsed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "hostfw_render.h"
#include "json_util.h"

#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */

struct addr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char a[16];
	unsigned prefix; /* 32/128 for a plain address */
};

struct addr_list {
	struct addr *v;
	size_t n, max;
};

struct allow {
	bool udp;
	unsigned port, to_port;
	struct addr from[KC_HOSTFW_FROM_MAX];
	size_t n_from;
};

struct policy {
	unsigned ssh_port;
	bool libvirt_tls, vnc, migration, vxlan;
	char bridges[KC_HOSTFW_BRIDGES_MAX][IFNAME_MAX + 2];
	size_t n_bridges;
	struct allow allow[KC_HOSTFW_ALLOW_MAX];
	size_t n_allow;
	struct addr deny[KC_HOSTFW_DENY_MAX];
	size_t n_deny;
	struct addr servers[KC_HOSTFW_ADDRS_MAX];
	size_t n_servers;
	struct addr peers[KC_HOSTFW_ADDRS_MAX];
	size_t n_peers;
};

/* "a.b.c.d", "v6", with "/len" if `cidr`; host bits are cleared so that
 * nft never sees a prefix it refuses. */
static int addr_parse(const char *s, bool cidr, struct addr *ret, const char *what,
		      struct kc_error *err)
{
	char buf[INET6_ADDRSTRLEN + 8];
	if (!s || strlen(s) >= sizeof(buf))
		return kc_error_set(err, KC_ERR_INVALID, "%s: want an IP address%s", what,
				    cidr ? " or CIDR" : "");
	memcpy(buf, s, strlen(s) + 1);
	char *slash = strchr(buf, '/');
	long len = -1;
	if (slash) {
		char *end = NULL;
		if (!cidr || !slash[1] || slash[1] == '+' || slash[1] == '-')
			goto bad;
		len = strtol(slash + 1, &end, 10);
		if (*end)
			goto bad;
		*slash = '\0';
	}
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, buf, ret->a) == 1) {
		ret->family = AF_INET;
		ret->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, ret->a) == 1) {
		ret->family = AF_INET6;
		ret->prefix = 128;
	} else {
		goto bad;
	}
	if (len >= 0) {
		if (len > (long)ret->prefix)
			goto bad;
		ret->prefix = (unsigned)len;
	}
	for (unsigned bit = ret->prefix; bit < (ret->family == AF_INET ? 32u : 128u); bit++)
		ret->a[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	return 0;
bad:
	return kc_error_set(err, KC_ERR_INVALID, "%s: \"%.64s\" is not an IP address%s", what, s,
			    cidr ? " or CIDR" : "");
}

static bool addr_in(const struct addr *v, size_t n, const struct addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].family == a->family && v[i].prefix == a->prefix &&
		    memcmp(v[i].a, a->a, sizeof(a->a)) == 0)
			return true;
	return false;
}

/* Appends the strings of array `arr` (NULL: none) to v, skipping
 * duplicates; at most `max` in all. */
static int addrs_add(const json_t *arr, bool cidr, struct addr *v, size_t *n, size_t max,
		     const char *what, struct kc_error *err)
{
	size_t i;
	const json_t *e;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return kc_error_set(err, KC_ERR_INVALID, "\"%s\" must be an array", what);
	json_array_foreach(arr, i, e)
	{
		struct addr a;
		if (addr_parse(json_string_value(e), cidr, &a, what, err) < 0)
			return -1;
		if (addr_in(v, *n, &a))
			continue;
		if (*n == max)
			return kc_error_set(err, KC_ERR_INVALID, "\"%s\": at most %zu entries",
					    what, max);
		v[(*n)++] = a;
	}
	return 0;
}

/* An interface name, or a prefix of one followed by "*" (nft's wildcard). */
static int bridge_parse(const char *s, char *ret, struct kc_error *err)
{
	size_t len = s ? strlen(s) : 0;
	size_t name_len = len && s[len - 1] == '*' ? len - 1 : len;
	if (name_len == 0 || name_len > IFNAME_MAX || s[0] < 'a' || s[0] > 'z')
		goto bad;
	for (size_t i = 0; i < name_len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			goto bad;
	memcpy(ret, s, len + 1);
	return 0;
bad:
	return kc_error_set(err, KC_ERR_INVALID,
			    "nat_bridges: \"%.32s\" is not an interface name "
			    "([a-z][a-z0-9-]{0,14}, optionally ending in *)",
			    s ? s : "");
}

static int allow_parse(const json_t *o, struct allow *ret, struct kc_error *err)
{
	static const char *const keys[] = {"proto", "port", "to_port", "from", NULL};
	const char *proto = NULL;
	uint64_t port = 0, to = 0;
	if (!json_is_object(o))
		return kc_error_set(err, KC_ERR_INVALID, "\"allow\" entries must be objects");
	if (kc_json_check_keys(o, keys, "allow entry", err) < 0 ||
	    kc_json_get_string(o, "proto", true, 8, &proto, err) < 0 ||
	    kc_json_get_uint(o, "port", true, 1, 65535, &port, err) < 0)
		return -1;
	to = port;
	if (kc_json_get_uint(o, "to_port", false, port, 65535, &to, err) < 0)
		return -1;
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
		return kc_error_set(err, KC_ERR_INVALID, "allow: \"proto\" must be tcp or udp");
	memset(ret, 0, sizeof(*ret));
	ret->udp = proto[0] == 'u';
	ret->port = (unsigned)port;
	ret->to_port = (unsigned)to;
	return addrs_add(json_object_get(o, "from"), true, ret->from, &ret->n_from,
			 KC_HOSTFW_FROM_MAX, "allow.from", err);
}

static int policy_parse(const json_t *j, struct policy *p, struct kc_error *err)
{
	static const char *const keys[] = {"ssh_port", "libvirt_tls", "vnc",   "migration",
					   "vxlan",    "nat_bridges", "allow", "deny",
					   "servers",  "peers",	      NULL};
	uint64_t ssh = 22;
	size_t i;
	const json_t *e;

	memset(p, 0, sizeof(*p));
	p->libvirt_tls = p->vnc = p->migration = p->vxlan = true;
	if (!json_is_object(j))
		return kc_error_set(err, KC_ERR_INVALID, "the firewall policy must be an object");
	if (kc_json_check_keys(j, keys, "firewall policy", err) < 0 ||
	    kc_json_get_uint(j, "ssh_port", false, 1, 65535, &ssh, err) < 0 ||
	    kc_json_get_bool(j, "libvirt_tls", false, &p->libvirt_tls, err) < 0 ||
	    kc_json_get_bool(j, "vnc", false, &p->vnc, err) < 0 ||
	    kc_json_get_bool(j, "migration", false, &p->migration, err) < 0 ||
	    kc_json_get_bool(j, "vxlan", false, &p->vxlan, err) < 0)
		return -1;
	p->ssh_port = (unsigned)ssh;

	const json_t *br = json_object_get(j, "nat_bridges");
	if (!br) {
		/* libvirt's own NAT bridges: virbr0, virbr1, ... */
		strcpy(p->bridges[0], "virbr*");
		p->n_bridges = 1;
	} else if (!json_is_array(br) || json_array_size(br) > KC_HOSTFW_BRIDGES_MAX) {
		return kc_error_set(err, KC_ERR_INVALID, "\"nat_bridges\" must be at most %d names",
				    KC_HOSTFW_BRIDGES_MAX);
	}
	json_array_foreach(br, i, e)
	{
		if (bridge_parse(json_string_value(e), p->bridges[p->n_bridges], err) < 0)
			return -1;
		p->n_bridges++;
	}

	const json_t *allow = json_object_get(j, "allow");
	if (allow && (!json_is_array(allow) || json_array_size(allow) > KC_HOSTFW_ALLOW_MAX))
		return kc_error_set(err, KC_ERR_INVALID, "\"allow\" must be at most %d rules",
				    KC_HOSTFW_ALLOW_MAX);
	json_array_foreach(allow, i, e)
	{
		if (allow_parse(e, &p->allow[p->n_allow], err) < 0)
			return -1;
		p->n_allow++;
	}
	return addrs_add(json_object_get(j, "deny"), true, p->deny, &p->n_deny, KC_HOSTFW_DENY_MAX,
			 "deny", err) < 0 ||
			       addrs_add(json_object_get(j, "servers"), false, p->servers,
					 &p->n_servers, KC_HOSTFW_ADDRS_MAX, "servers", err) < 0 ||
			       addrs_add(json_object_get(j, "peers"), false, p->peers, &p->n_peers,
					 KC_HOSTFW_ADDRS_MAX, "peers", err) < 0
		       ? -1
		       : 0;
}

int kc_hostfw_policy_check(const json_t *policy, struct kc_error *err)
{
	_cleanup_free_ struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return policy_parse(policy, p, err);
}

/* ---- printing ---- */

static void addr_print(FILE *f, const struct addr *a)
{
	char s[INET6_ADDRSTRLEN];
	inet_ntop(a->family, a->a, s, sizeof(s));
	fputs(s, f);
	if (a->prefix != (a->family == AF_INET ? 32u : 128u))
		fprintf(f, "/%u", a->prefix);
}

/* "a, b, c" of the addresses of one family; returns how many. */
static size_t addrs_print(FILE *f, const struct addr *v, size_t n, int family)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].family != family)
			continue;
		fputs(k++ ? ", " : "", f);
		addr_print(f, &v[i]);
	}
	return k;
}

static size_t addrs_count(const struct addr *v, size_t n, int family)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += v[i].family == family;
	return k;
}

static void set_print(FILE *f, const char *name, const struct addr *v, size_t n, int family,
		      bool interval)
{
	fprintf(f, "\tset %s%s {\n\t\ttype %s\n", name, family == AF_INET6 ? "6" : "",
		family == AF_INET6 ? "ipv6_addr" : "ipv4_addr");
	if (interval)
		fputs("\t\tflags interval\n", f);
	if (addrs_count(v, n, family)) {
		fputs("\t\telements = { ", f);
		addrs_print(f, v, n, family);
		fputs(" }\n", f);
	}
	fputs("\t}\n", f);
}

static void ports_print(FILE *f, const char *proto, unsigned lo, unsigned hi)
{
	if (lo == hi)
		fprintf(f, "%s dport %u", proto, lo);
	else
		fprintf(f, "%s dport %u-%u", proto, lo, hi);
}

/* One rule per family: "<proto> dport P ip saddr @set accept". */
static void from_set_print(FILE *f, const char *proto, unsigned lo, unsigned hi, const char *set,
			   const char *why)
{
	fputc('\t', f);
	fputc('\t', f);
	ports_print(f, proto, lo, hi);
	fprintf(f, " ip saddr @%s accept comment \"%s\"\n\t\t", set, why);
	ports_print(f, proto, lo, hi);
	fprintf(f, " ip6 saddr @%s6 accept comment \"%s\"\n", set, why);
}

static void allow_print(FILE *f, const struct allow *r)
{
	const char *proto = r->udp ? "udp" : "tcp";
	if (!r->n_from) {
		fputs("\t\t", f);
		ports_print(f, proto, r->port, r->to_port);
		fputs(" accept\n", f);
		return;
	}
	static const int families[] = {AF_INET, AF_INET6};
	for (size_t i = 0; i < KC_ARRAY_SIZE(families); i++) {
		if (!addrs_count(r->from, r->n_from, families[i]))
			continue;
		fputs("\t\t", f);
		ports_print(f, proto, r->port, r->to_port);
		fprintf(f, " %s saddr { ", families[i] == AF_INET ? "ip" : "ip6");
		addrs_print(f, r->from, r->n_from, families[i]);
		fputs(" } accept\n", f);
	}
}

static void policy_print(FILE *f, const struct policy *p)
{
	fputs("# kvmcloud host firewall, written by kvmcloud-agent: do not edit (replaced whole)\n"
	      "table inet " KC_HOSTFW_TABLE "\n"
	      "delete table inet " KC_HOSTFW_TABLE "\n"
	      "table inet " KC_HOSTFW_TABLE " {\n",
	      f);
	set_print(f, "servers", p->servers, p->n_servers, AF_INET, false);
	set_print(f, "servers", p->servers, p->n_servers, AF_INET6, false);
	set_print(f, "peers", p->peers, p->n_peers, AF_INET, false);
	set_print(f, "peers", p->peers, p->n_peers, AF_INET6, false);
	set_print(f, "deny", p->deny, p->n_deny, AF_INET, true);
	set_print(f, "deny", p->deny, p->n_deny, AF_INET6, true);
	fprintf(f,
		"\tchain input {\n"
		"\t\ttype filter hook input priority filter; policy drop;\n"
		"\t\tiif \"lo\" accept\n"
		"\t\tip saddr @deny counter drop\n"
		"\t\tip6 saddr @deny6 counter drop\n"
		"\t\tct state established,related accept\n"
		"\t\tct state invalid drop\n"
		"\t\tip protocol icmp accept\n"
		"\t\tmeta l4proto ipv6-icmp accept\n"
		"\t\ttcp dport %u accept comment \"ssh\"\n",
		p->ssh_port);
	if (p->libvirt_tls)
		from_set_print(f, "tcp", KC_HOSTFW_LIBVIRT_TLS_PORT, KC_HOSTFW_LIBVIRT_TLS_PORT,
			       "servers", "libvirt-tls");
	if (p->vnc)
		from_set_print(f, "tcp", KC_HOSTFW_VNC_MIN, KC_HOSTFW_VNC_MAX, "servers", "vnc");
	if (p->migration)
		from_set_print(f, "tcp", KC_HOSTFW_MIGRATION_MIN, KC_HOSTFW_MIGRATION_MAX, "peers",
			       "migration");
	if (p->vxlan)
		from_set_print(f, "udp", KC_HOSTFW_VXLAN_PORT, KC_HOSTFW_VXLAN_PORT, "peers",
			       "vxlan");
	for (size_t i = 0; i < p->n_bridges; i++)
		fprintf(f,
			"\t\tiifname \"%s\" udp dport { 53, 67 } accept comment \"nat-dhcp-dns\"\n"
			"\t\tiifname \"%s\" tcp dport 53 accept comment \"nat-dns\"\n",
			p->bridges[i], p->bridges[i]);
	for (size_t i = 0; i < p->n_allow; i++)
		allow_print(f, &p->allow[i]);
	fputs("\t\tcounter drop\n"
	      "\t}\n"
	      "}\n",
	      f);
}

int kc_hostfw_render(const json_t *policy, const json_t *servers, const json_t *peers, char **ret,
		     struct kc_error *err)
{
	_cleanup_free_ struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (policy_parse(policy, p, err) < 0 ||
	    addrs_add(servers, false, p->servers, &p->n_servers, KC_HOSTFW_ADDRS_MAX, "servers",
		      err) < 0 ||
	    addrs_add(peers, false, p->peers, &p->n_peers, KC_HOSTFW_ADDRS_MAX, "peers", err) < 0)
		return -1;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	policy_print(f, p);
	if (ferror(f) | fclose(f)) {
		free(text);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	*ret = text;
	return 0;
}

const char *kc_hostfw_render_remove(void)
{
	return "table inet " KC_HOSTFW_TABLE "\ndelete table inet " KC_HOSTFW_TABLE "\n";
}
