/* SPDX-License-Identifier: Apache-2.0 */
/* secgroup.c - the security group model and its strict readers (secgroup.h). */
#include "secgroup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "json_util.h"

int kc_sg_cidr_parse(const char *s, const char *what, struct kc_sg_cidr *ret, struct kc_error *err)
{
	char buf[KC_SG_CIDR_STR_MAX];
	struct kc_sg_cidr c = {0};

	if (!s || strlen(s) >= sizeof(buf))
		return kc_error_set(err, KC_ERR_INVALID, "%s is not an address or CIDR", what);
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c.addr) == 1)
		c.family = AF_INET6;
	else
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s \"%.64s\" is not an IPv4 or IPv6 address", what, s);
	unsigned max = c.family == AF_INET ? 32 : 128;
	c.prefix = max;
	if (slash) {
		const char *p = slash + 1;
		char *end = NULL;
		errno = 0;
		unsigned long n = strtoul(p, &end, 10);
		if (!*p || *end || errno || p[0] == '+' || p[0] == '-' || n > max ||
		    (p[0] == '0' && p[1]))
			return kc_error_set(err, KC_ERR_INVALID,
					    "%s \"%.64s\": the prefix length must be 0..%u", what,
					    s, max);
		c.prefix = (unsigned)n;
	}
	/* Host bits cleared: "10.1.2.3/8" means 10.0.0.0/8, and nft is only
	 * ever given the canonical network. */
	unsigned bytes = max / 8;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = c.prefix > i * 8 ? c.prefix - i * 8 : 0;
		if (keep < 8)
			c.addr[i] &= (unsigned char)(0xff00 >> keep);
	}
	*ret = c;
	return 0;
}

void kc_sg_cidr_format(const struct kc_sg_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "";
	unsigned max = c->family == AF_INET ? 32 : 128;

	inet_ntop(c->family, c->addr, a, sizeof(a));
	if (c->prefix == max)
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%u", a, c->prefix);
}

int kc_ifname_validate(const char *name, const char *what, struct kc_error *err)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n >= 1 && n <= KC_IFNAME_MAX && name[0] >= 'a' && name[0] <= 'z';
	for (size_t i = 1; ok && i < n; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		     name[i] == '-';
	if (!ok)
		return kc_error_set(err, KC_ERR_INVALID,
				    "%s \"%.32s\" must match ^[a-z][a-z0-9-]{0,14}$", what,
				    name ? name : "");
	return 0;
}

static const char *const dir_names[] = {"in", "out"};
static const char *const proto_names[] = {"any", "tcp", "udp", "icmp"};

static int pick(const char *s, const char *const *names, size_t n, const char *what, int *ret,
		struct kc_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (int)i;
			return 0;
		}
	return kc_error_set(err, KC_ERR_INVALID, "%s \"%.32s\" is not one of %s", what, s,
			    n == 2 ? "in, out" : "tcp, udp, icmp, any");
}

int kc_sg_rule_from_json(const json_t *j, bool allow_remote_group, struct kc_sg_rule *ret,
			 struct kc_error *err)
{
	static const char *const keys[] = {"direction", "protocol",	"port_min", "port_max",
					   "cidr",	"remote_group", NULL};
	struct kc_sg_rule r = {0};
	const char *dir = NULL, *proto = "any", *cidr = NULL, *rg = NULL;
	uint64_t pmin = 0, pmax = 0;
	int v = 0;

	if (!json_is_object(j))
		return kc_error_set(err, KC_ERR_INVALID, "a rule must be an object");
	if (kc_json_check_keys(j, keys, "rule", err) < 0 ||
	    kc_json_get_string(j, "direction", true, 8, &dir, err) < 0 ||
	    kc_json_get_string(j, "protocol", false, 8, &proto, err) < 0 ||
	    kc_json_get_uint(j, "port_min", false, 1, 65535, &pmin, err) < 0 ||
	    kc_json_get_uint(j, "port_max", false, 1, 65535, &pmax, err) < 0 ||
	    kc_json_get_string(j, "cidr", false, KC_SG_CIDR_STR_MAX, &cidr, err) < 0 ||
	    kc_json_get_string(j, "remote_group", false, KC_NAME_MAX, &rg, err) < 0)
		return -1;
	if (pick(dir, dir_names, 2, "rule direction", &v, err) < 0)
		return -1;
	r.dir = (enum kc_sg_dir)v;
	if (pick(proto, proto_names, 4, "rule protocol", &v, err) < 0)
		return -1;
	r.proto = (enum kc_sg_proto)v;
	if (pmax && !pmin)
		return kc_error_set(err, KC_ERR_INVALID, "rule: port_max needs port_min");
	if (pmin && !pmax)
		pmax = pmin;
	if (pmin > pmax)
		return kc_error_set(err, KC_ERR_INVALID,
				    "rule: port range %llu-%llu is empty (first > last)",
				    (unsigned long long)pmin, (unsigned long long)pmax);
	if (pmin && r.proto != KC_SG_TCP && r.proto != KC_SG_UDP)
		return kc_error_set(err, KC_ERR_INVALID, "rule: ports need protocol tcp or udp");
	r.port_min = (unsigned)pmin;
	r.port_max = (unsigned)pmax;
	if (cidr && rg)
		return kc_error_set(err, KC_ERR_INVALID,
				    "rule: give cidr or remote_group, not both");
	if (cidr) {
		if (kc_sg_cidr_parse(cidr, "rule cidr", &r.cidr, err) < 0)
			return -1;
		r.has_cidr = true;
	}
	if (rg) {
		if (!allow_remote_group)
			return kc_error_set(err, KC_ERR_INVALID,
					    "rule: remote_group must be expanded to addresses");
		if (kc_name_validate(rg, "remote group name", err) < 0)
			return -1;
		snprintf(r.remote_group, sizeof(r.remote_group), "%s", rg);
	}
	*ret = r;
	return 0;
}

json_t *kc_sg_rule_to_json(const struct kc_sg_rule *r)
{
	char c[KC_SG_CIDR_STR_MAX];
	json_t *j = json_pack("{s:s,s:s}", "direction", dir_names[r->dir], "protocol",
			      proto_names[r->proto]);
	if (!j)
		return NULL;
	int rc = 0;
	if (r->port_min)
		rc |= json_object_set_new(j, "port_min", json_integer(r->port_min)) |
		      json_object_set_new(j, "port_max", json_integer(r->port_max));
	if (r->has_cidr) {
		kc_sg_cidr_format(&r->cidr, c, sizeof(c));
		/* Always with the prefix, so "/32" reads as what it is. */
		if (!strchr(c, '/'))
			snprintf(c + strlen(c), sizeof(c) - strlen(c), "/%u", r->cidr.prefix);
		rc |= json_object_set_new(j, "cidr", json_string(c));
	}
	if (r->remote_group[0])
		rc |= json_object_set_new(j, "remote_group", json_string(r->remote_group));
	if (rc) {
		json_decref(j);
		return NULL;
	}
	return j;
}

bool kc_sg_rule_equal(const struct kc_sg_rule *a, const struct kc_sg_rule *b)
{
	if (a->dir != b->dir || a->proto != b->proto || a->port_min != b->port_min ||
	    a->port_max != b->port_max || a->has_cidr != b->has_cidr ||
	    strcmp(a->remote_group, b->remote_group) != 0)
		return false;
	if (!a->has_cidr)
		return true;
	return a->cidr.family == b->cidr.family && a->cidr.prefix == b->cidr.prefix &&
	       memcmp(a->cidr.addr, b->cidr.addr, sizeof(a->cidr.addr)) == 0;
}

static int nic_from_json(const json_t *j, struct kc_sg_nic *nic, struct kc_error *err)
{
	static const char *const keys[] = {"tap", "mac", "ips", NULL};
	const char *tap = NULL, *mac = NULL;
	json_t *ips = json_object_get(j, "ips");
	size_t i;
	json_t *ip;

	if (!json_is_object(j))
		return kc_error_set(err, KC_ERR_INVALID, "a NIC must be an object");
	if (kc_json_check_keys(j, keys, "NIC", err) < 0 ||
	    kc_json_get_string(j, "tap", false, 64, &tap, err) < 0 ||
	    kc_json_get_string(j, "mac", true, 32, &mac, err) < 0 ||
	    kc_mac_validate(mac, true, "NIC mac", err) < 0)
		return -1;
	if (tap && kc_ifname_validate(tap, "NIC tap", err) < 0)
		return -1;
	snprintf(nic->tap, sizeof(nic->tap), "%s", tap ? tap : "");
	/* Lower case: nft prints and compares it so, and so do we (tap lookup). */
	for (i = 0; i < 17; i++)
		nic->mac[i] = (char)((mac[i] >= 'A' && mac[i] <= 'F') ? mac[i] + 32 : mac[i]);
	nic->mac[17] = '\0';
	if (ips && !json_is_array(ips))
		return kc_error_set(err, KC_ERR_INVALID, "NIC ips must be an array");
	if (json_array_size(ips) > KC_SG_IPS_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "a NIC has at most %d addresses",
				    KC_SG_IPS_MAX);
	json_array_foreach(ips, i, ip)
	{
		struct kc_sg_cidr *c = &nic->ips[nic->n_ips];
		if (kc_sg_cidr_parse(json_string_value(ip), "NIC address", c, err) < 0)
			return -1;
		if (c->prefix != (c->family == AF_INET ? 32u : 128u))
			return kc_error_set(
				err, KC_ERR_INVALID,
				"NIC address \"%.64s\" must be one address, not a network",
				json_string_value(ip));
		nic->n_ips++;
	}
	return 0;
}

static int vm_from_json(const json_t *j, struct kc_sg_vm *vm, struct kc_error *err)
{
	static const char *const keys[] = {"name", "nics", "rules", NULL};
	const char *name = NULL;
	json_t *nics = json_object_get(j, "nics"), *rules = json_object_get(j, "rules");
	size_t i;
	json_t *e;

	if (!json_is_object(j))
		return kc_error_set(err, KC_ERR_INVALID, "a VM must be an object");
	if (kc_json_check_keys(j, keys, "sg VM", err) < 0 ||
	    kc_json_get_string(j, "name", true, KC_NAME_MAX, &name, err) < 0 ||
	    kc_name_validate(name, "VM name", err) < 0)
		return -1;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	if (!json_is_array(nics) || json_array_size(nics) > KC_SG_NICS_MAX)
		return kc_error_set(err, KC_ERR_INVALID,
				    "VM %s: nics must be an array of at most %d", name,
				    KC_SG_NICS_MAX);
	json_array_foreach(nics, i, e)
	{
		if (nic_from_json(e, &vm->nics[i], err) < 0)
			return -1;
		vm->n_nics++;
	}
	if (rules && !json_is_array(rules))
		return kc_error_set(err, KC_ERR_INVALID, "VM %s: rules must be an array", name);
	if (json_array_size(rules) > KC_SG_VM_RULES_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "VM %s: at most %d rules", name,
				    KC_SG_VM_RULES_MAX);
	if (json_array_size(rules)) {
		vm->rules = calloc(json_array_size(rules), sizeof(*vm->rules));
		if (!vm->rules)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	json_array_foreach(rules, i, e)
	{
		if (kc_sg_rule_from_json(e, false, &vm->rules[i], err) < 0)
			return -1;
		vm->n_rules++;
	}
	return 0;
}

int kc_sg_ruleset_from_json(const json_t *j, struct kc_sg_ruleset *ret, struct kc_error *err)
{
	static const char *const keys[] = {"vms", NULL};
	struct kc_sg_ruleset rs = {0};
	json_t *vms = json_object_get(j, "vms");
	size_t i;
	json_t *e;

	if (!json_is_object(j) || kc_json_check_keys(j, keys, "sg.apply args", err) < 0)
		return kc_error_set(err, KC_ERR_INVALID, "sg.apply args must be {\"vms\": [...]}");
	if (!json_is_array(vms) || json_array_size(vms) > KC_SG_VMS_MAX)
		return kc_error_set(err, KC_ERR_INVALID, "vms must be an array of at most %d",
				    KC_SG_VMS_MAX);
	if (json_array_size(vms)) {
		rs.vms = calloc(json_array_size(vms), sizeof(*rs.vms));
		if (!rs.vms)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	json_array_foreach(vms, i, e)
	{
		rs.n_vms++;
		if (vm_from_json(e, &rs.vms[i], err) < 0)
			goto fail;
		for (size_t k = 0; k < i; k++)
			if (strcmp(rs.vms[k].name, rs.vms[i].name) == 0) {
				kc_error_set(err, KC_ERR_INVALID, "VM %s is listed twice",
					     rs.vms[i].name);
				goto fail;
			}
	}
	/* Two NICs claiming one tap would give one port two identities. */
	for (size_t a = 0; a < rs.n_vms; a++)
		for (size_t n = 0; n < rs.vms[a].n_nics; n++) {
			const char *tap = rs.vms[a].nics[n].tap;
			for (size_t b = a; tap[0] && b < rs.n_vms; b++)
				for (size_t m = (b == a ? n + 1 : 0); m < rs.vms[b].n_nics; m++)
					if (strcmp(tap, rs.vms[b].nics[m].tap) == 0) {
						kc_error_set(err, KC_ERR_INVALID,
							     "tap %s is listed twice", tap);
						goto fail;
					}
		}
	*ret = rs;
	return 0;
fail:
	kc_sg_ruleset_clear(&rs);
	return -1;
}

json_t *kc_sg_ruleset_to_json(const struct kc_sg_ruleset *rs)
{
	_cleanup_json_ json_t *vms = json_array();
	char c[KC_SG_CIDR_STR_MAX];

	for (size_t i = 0; vms && i < rs->n_vms; i++) {
		const struct kc_sg_vm *vm = &rs->vms[i];
		json_t *nics = json_array(), *rules = json_array();
		json_t *o =
			json_pack("{s:s,s:o,s:o}", "name", vm->name, "nics", nics, "rules", rules);
		if (!o || json_array_append_new(vms, o) < 0)
			return NULL;
		for (size_t n = 0; n < vm->n_nics; n++) {
			const struct kc_sg_nic *nic = &vm->nics[n];
			json_t *ips = json_array();
			json_t *jn = json_pack("{s:s,s:o}", "mac", nic->mac, "ips", ips);
			if (!jn || json_array_append_new(nics, jn) < 0)
				return NULL;
			if (nic->tap[0] &&
			    json_object_set_new(jn, "tap", json_string(nic->tap)) < 0)
				return NULL;
			for (size_t k = 0; k < nic->n_ips; k++) {
				kc_sg_cidr_format(&nic->ips[k], c, sizeof(c));
				if (json_array_append_new(ips, json_string(c)) < 0)
					return NULL;
			}
		}
		for (size_t r = 0; r < vm->n_rules; r++)
			if (json_array_append_new(rules, kc_sg_rule_to_json(&vm->rules[r])) < 0)
				return NULL;
	}
	return vms ? json_pack("{s:O}", "vms", vms) : NULL;
}

void kc_sg_ruleset_clear(struct kc_sg_ruleset *rs)
{
	for (size_t i = 0; rs && i < rs->n_vms; i++)
		free(rs->vms[i].rules);
	if (rs) {
		free(rs->vms);
		rs->vms = NULL;
		rs->n_vms = 0;
	}
}
