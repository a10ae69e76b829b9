/* SPDX-License-Identifier: Apache-2.0 */
/* nft_render.c - security groups as nft text (nft_render.h). */
#include "nft_render.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "cleanup.h"

static bool nic_has(const struct kc_sg_nic *nic, int family)
{
	for (size_t i = 0; i < nic->n_ips; i++)
		if (nic->ips[i].family == family)
			return true;
	return false;
}

static bool vm_has(const struct kc_sg_vm *vm, int family)
{
	for (size_t n = 0; n < vm->n_nics; n++)
		if (vm->nics[n].tap[0] && nic_has(&vm->nics[n], family))
			return true;
	return false;
}

static bool vm_running(const struct kc_sg_vm *vm)
{
	for (size_t n = 0; n < vm->n_nics; n++)
		if (vm->nics[n].tap[0])
			return true;
	return false;
}

/* " { a, b }" of a NIC's addresses of one family (prefix `extra` first). */
static void print_set(FILE *f, const struct kc_sg_nic *nics, size_t n_nics, int family,
		      const char *extra)
{
	char c[KC_SG_CIDR_STR_MAX];
	const char *sep = "";

	fputs(" { ", f);
	if (extra) {
		fputs(extra, f);
		sep = ", ";
	}
	for (size_t n = 0; n < n_nics; n++) {
		if (!nics[n].tap[0])
			continue;
		for (size_t i = 0; i < nics[n].n_ips; i++) {
			if (nics[n].ips[i].family != family)
				continue;
			kc_sg_cidr_format(&nics[n].ips[i], c, sizeof(c));
			fprintf(f, "%s%s", sep, c);
			sep = ", ";
		}
	}
	fputs(" }", f);
}

static void render_spoof(FILE *f, const struct kc_sg_vm *vm, const struct kc_sg_nic *nic)
{
	fprintf(f, "\t# vm %s, nic %s\n", vm->name, nic->mac);
	fprintf(f, "\tchain spoof_%s {\n", nic->tap);
	fprintf(f, "\t\tether saddr != %s counter drop\n", nic->mac);
	fprintf(f, "\t\tether type arp arp saddr ether != %s counter drop\n", nic->mac);
	/* 0.0.0.0: ARP probes before an address is configured (RFC 5227). */
	fputs("\t\tether type arp arp saddr ip !=", f);
	print_set(f, nic, 1, AF_INET, "0.0.0.0");
	fputs(" counter drop\n", f);
	/* Not a DHCP server: replies go out only from the network's own. */
	fputs("\t\tether type ip udp sport 67 udp dport 68 counter drop\n", f);
	fputs("\t\tether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 return\n", f);
	if (nic_has(nic, AF_INET)) {
		fputs("\t\tether type ip ip saddr !=", f);
		print_set(f, nic, 1, AF_INET, NULL);
		fputs(" counter drop\n", f);
	} else {
		fputs("\t\tether type ip counter drop\n", f);
	}
	if (nic_has(nic, AF_INET6)) {
		/* Duplicate address detection sends from "::". */
		fputs("\t\tether type ip6 ip6 saddr :: icmpv6 type nd-neighbor-solicit return\n",
		      f);
		fputs("\t\tether type ip6 ip6 saddr !=", f);
		print_set(f, nic, 1, AF_INET6, "fe80::/10");
		fputs(" counter drop\n", f);
	} else {
		fputs("\t\tether type ip6 counter drop\n", f);
	}
	fputs("\t}\n", f);
}

static void render_bridge(FILE *f, const struct kc_sg_ruleset *rs)
{
	fputs("table bridge " KC_NFT_TABLE "\n", f);
	fputs("delete table bridge " KC_NFT_TABLE "\n", f);
	fputs("table bridge " KC_NFT_TABLE " {\n", f);
	for (size_t v = 0; v < rs->n_vms; v++)
		for (size_t n = 0; n < rs->vms[v].n_nics; n++)
			if (rs->vms[v].nics[n].tap[0])
				render_spoof(f, &rs->vms[v], &rs->vms[v].nics[n]);
	fputs("\tchain prerouting {\n", f);
	fputs("\t\ttype filter hook prerouting priority 0; policy accept;\n", f);
	for (size_t v = 0; v < rs->n_vms; v++)
		for (size_t n = 0; n < rs->vms[v].n_nics; n++) {
			const char *tap = rs->vms[v].nics[n].tap;
			if (tap[0])
				fprintf(f, "\t\tiifname \"%s\" jump spoof_%s\n", tap, tap);
		}
	fputs("\t}\n}\n", f);
}

/* One group rule; the remote end is the source of inbound traffic and the
 * destination of outbound traffic. */
static void render_rule(FILE *f, const struct kc_sg_rule *r)
{
	char c[KC_SG_CIDR_STR_MAX];
	const char *l4 = r->proto == KC_SG_TCP ? "tcp" : "udp";

	fputs("\t\t", f);
	if (r->has_cidr) {
		kc_sg_cidr_format(&r->cidr, c, sizeof(c));
		fprintf(f, "%s %s %s ", r->cidr.family == AF_INET ? "ip" : "ip6",
			r->dir == KC_SG_IN ? "saddr" : "daddr", c);
	}
	switch (r->proto) {
	case KC_SG_TCP:
	case KC_SG_UDP:
		if (r->port_min == r->port_max && r->port_min)
			fprintf(f, "%s dport %u ", l4, r->port_min);
		else if (r->port_min)
			fprintf(f, "%s dport %u-%u ", l4, r->port_min, r->port_max);
		else
			fprintf(f, "meta l4proto %s ", l4);
		break;
	case KC_SG_ICMP:
		if (!r->has_cidr)
			fputs("meta l4proto { icmp, ipv6-icmp } ", f);
		else
			fputs(r->cidr.family == AF_INET ? "meta l4proto icmp "
							: "meta l4proto ipv6-icmp ",
			      f);
		break;
	case KC_SG_ANY:
		break;
	}
	fputs("return\n", f);
}

static bool has_dir(const struct kc_sg_vm *vm, enum kc_sg_dir dir)
{
	for (size_t i = 0; i < vm->n_rules; i++)
		if (vm->rules[i].dir == dir)
			return true;
	return false;
}

static void render_vm_chain(FILE *f, const struct kc_sg_vm *vm, size_t idx, enum kc_sg_dir dir)
{
	fprintf(f, "\tchain vm%zu_%s {\n", idx, dir == KC_SG_IN ? "in" : "out");
	fputs("\t\tct state established,related return\n", f);
	fputs("\t\tct state invalid counter drop\n", f);
	/* DHCP answers (kvmcloud's server in a namespace on vlan/vxlan
	 * networks is forwarded traffic; an offer to a booting guest matches
	 * no connection yet).  Other guests cannot send them: their spoof
	 * chains drop server replies. */
	if (dir == KC_SG_IN && vm_has(vm, AF_INET))
		fputs("\t\tudp sport 67 udp dport 68 return\n", f);
	if (dir == KC_SG_IN && vm_has(vm, AF_INET6))
		fputs("\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
		      "nd-router-advert } return\n",
		      f);
	for (size_t i = 0; i < vm->n_rules; i++)
		if (vm->rules[i].dir == dir)
			render_rule(f, &vm->rules[i]);
	fputs("\t\tcounter drop\n\t}\n", f);
}

static void render_jumps(FILE *f, const struct kc_sg_vm *vm, size_t idx, int family)
{
	if (!vm_has(vm, family))
		return;
	const char *p = family == AF_INET ? "ip" : "ip6";
	fprintf(f, "\t\t%s daddr", p);
	print_set(f, vm->nics, vm->n_nics, family, NULL);
	fprintf(f, " jump vm%zu_in\n", idx);
	if (!has_dir(vm, KC_SG_OUT))
		return; /* egress allowed: no chain */
	fprintf(f, "\t\t%s saddr", p);
	print_set(f, vm->nics, vm->n_nics, family, NULL);
	fprintf(f, " jump vm%zu_out\n", idx);
}

static void render_inet(FILE *f, const struct kc_sg_ruleset *rs)
{
	fputs("table inet " KC_NFT_TABLE "\n", f);
	fputs("delete table inet " KC_NFT_TABLE "\n", f);
	fputs("table inet " KC_NFT_TABLE " {\n", f);
	for (size_t v = 0; v < rs->n_vms; v++) {
		const struct kc_sg_vm *vm = &rs->vms[v];
		if (!vm_running(vm))
			continue;
		fprintf(f, "\t# vm %s\n", vm->name);
		render_vm_chain(f, vm, v, KC_SG_IN);
		if (has_dir(vm, KC_SG_OUT))
			render_vm_chain(f, vm, v, KC_SG_OUT);
	}
	fputs("\tchain forward {\n", f);
	fputs("\t\ttype filter hook forward priority 0; policy accept;\n", f);
	for (size_t v = 0; v < rs->n_vms; v++) {
		if (!vm_running(&rs->vms[v]))
			continue;
		render_jumps(f, &rs->vms[v], v, AF_INET);
		render_jumps(f, &rs->vms[v], v, AF_INET6);
	}
	fputs("\t}\n}\n", f);
}

int kc_nft_render_sg(const struct kc_sg_ruleset *rs, char **ret_text, struct kc_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	bool any = false;
	for (size_t v = 0; v < rs->n_vms; v++)
		any = any || vm_running(&rs->vms[v]);
	if (any) {
		render_bridge(f, rs);
		render_inet(f, rs);
	} else {
		/* Nothing to protect: remove our tables (created first, so the
		 * delete cannot fail on a host that never had them). */
		fputs("table bridge " KC_NFT_TABLE "\ndelete table bridge " KC_NFT_TABLE "\n", f);
		fputs("table inet " KC_NFT_TABLE "\ndelete table inet " KC_NFT_TABLE "\n", f);
	}
	if (ferror(f) | fclose(f)) {
		free(text);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	*ret_text = text;
	return 0;
}
