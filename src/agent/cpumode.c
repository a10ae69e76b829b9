/* SPDX-License-Identifier: Apache-2.0 */
/* cpumode.c - guest.cpu.mode / guest.cpu.model checked against what this
 * host's libvirt and accelerator can do, once, at agent start. */
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "agent_priv.h"
#include "cleanup.h"

/* Reads one attribute from the domain capabilities for the accelerator in
 * use; NULL when unknown (then we do not second-guess libvirt). */
static char *domcaps_attr(virConnectPtr conn, enum kc_accel accel, const char *arch,
			  const char *expr_fmt, const char *arg)
{
	_cleanup_free_ char *xml = virConnectGetDomainCapabilities(
		conn, NULL, arch, NULL, accel == KC_ACCEL_KVM ? "kvm" : "qemu", 0);
	if (!xml) {
		virResetLastError();
		return NULL;
	}
	xmlDocPtr doc = xmlReadMemory(xml, strlen(xml), "domcaps.xml", NULL, XML_PARSE_NONET);
	if (!doc)
		return NULL;
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	char *v = NULL;
	if (ctx) {
		/* The model name is passed as an XPath variable, never spliced
		 * into the expression. */
		if (arg)
			xmlXPathRegisterVariable(ctx, (const xmlChar *)"arg",
						 xmlXPathNewString((const xmlChar *)arg));
		v = kc_xpath_string(ctx, expr_fmt);
		xmlXPathFreeContext(ctx);
	}
	xmlFreeDoc(doc);
	return v;
}

int kc_cpumode_validate(struct kc_agent *a, virConnectPtr conn, struct kc_error *err)
{
	char arch[64];
	if (kc_host_arch(conn, arch, sizeof(arch), err) < 0)
		return -1;
	a->cpu_warning[0] = '\0';
	switch (a->cpu_mode) {
	case KC_CPU_DEFAULT:
		return 0;
	case KC_CPU_CUSTOM: {
		if (!a->cpu_model || !*a->cpu_model)
			return kc_error_set(err, KC_ERR_INVALID,
					    "guest.cpu.mode=custom needs guest.cpu.model");
		char **models = NULL;
		int n = virConnectGetCPUModelNames(conn, arch, &models, 0);
		if (n < 0)
			return kc_lverr(err, "listing CPU models for %s", arch);
		bool found = false;
		for (int i = 0; i < n; i++) {
			if (strcmp(models[i], a->cpu_model) == 0)
				found = true;
			free(models[i]);
		}
		free(models);
		if (!found)
			return kc_error_set(err, KC_ERR_INVALID,
					    "guest.cpu.model '%s' is not a CPU model libvirt knows "
					    "(see `virsh cpu-models %s`)",
					    a->cpu_model, arch);
		_cleanup_free_ char *usable =
			domcaps_attr(conn, a->accel, arch,
				     "string(/domainCapabilities/cpu/mode[@name='custom']/"
				     "model[.=$arg]/@usable)",
				     a->cpu_model);
		if (usable && strcmp(usable, "no") == 0)
			snprintf(a->cpu_warning, sizeof(a->cpu_warning),
				 "CPU model %s lacks features under %s on this host; guests may "
				 "fail to start",
				 a->cpu_model, a->accel == KC_ACCEL_KVM ? "KVM" : "TCG");
		return 0;
	}
	case KC_CPU_HOST_MODEL: {
		_cleanup_free_ char *sup = domcaps_attr(
			conn, a->accel, arch,
			"string(/domainCapabilities/cpu/mode[@name='host-model']/@supported)",
			NULL);
		if (sup && strcmp(sup, "no") == 0)
			return kc_error_set(err, KC_ERR_INVALID,
					    "guest.cpu.mode=host-model is not supported by libvirt "
					    "under %s on this host",
					    a->accel == KC_ACCEL_KVM ? "KVM" : "TCG");
		return 0;
	}
	case KC_CPU_HOST_PASSTHROUGH:
		if (a->accel != KC_ACCEL_KVM)
			return kc_error_set(
				err, KC_ERR_INVALID,
				"guest.cpu.mode=host-passthrough needs KVM, which is not "
				"usable on this host");
		snprintf(a->cpu_warning, sizeof(a->cpu_warning),
			 "host-passthrough: live migration only to identical hosts");
		return 0;
	}
	return 0;
}
