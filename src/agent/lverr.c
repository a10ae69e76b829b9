/* SPDX-License-Identifier: Apache-2.0 */
/* lverr.c - libvirt's thread-local last error turned into a kc_error. */
#include <stdarg.h>
#include <stdio.h>

#include "agent_priv.h"
#include <libvirt/virterror.h>

int kc_lverr(struct kc_error *err, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);

	virErrorPtr e = virGetLastError();
	enum kc_errcode code = KC_ERR_HYPERVISOR;
	const char *msg = e && e->message ? e->message : "unknown libvirt error";
	if (e) {
		switch (e->code) {
		case VIR_ERR_NO_DOMAIN:
		case VIR_ERR_NO_STORAGE_POOL:
		case VIR_ERR_NO_STORAGE_VOL:
		case VIR_ERR_NO_NETWORK:
			code = KC_ERR_NOT_FOUND;
			break;
		case VIR_ERR_NO_CONNECT:
		case VIR_ERR_SYSTEM_ERROR:
		case VIR_ERR_RPC:
			if (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE)
				code = KC_ERR_UNAVAILABLE;
			break;
		default:
			break;
		}
	}
	kc_error_set(err, code, "%s: %s", what, msg);
	virResetLastError();
	return -1;
}

virDomainPtr kc_dom_lookup(virConnectPtr conn, const char *name, struct kc_error *err)
{
	if (kc_name_validate(name, "VM name", err) < 0)
		return NULL;
	virDomainPtr d = virDomainLookupByName(conn, name);
	if (d)
		return d;
	virErrorPtr e = virGetLastError();
	if (e && e->code == VIR_ERR_NO_DOMAIN) {
		virResetLastError();
		kc_error_set(err, KC_ERR_NOT_FOUND, "VM '%s' not found", name);
		return NULL;
	}
	kc_lverr(err, "looking up VM '%s'", name);
	return NULL;
}

virDomainPtr kc_dom_get(struct kc_agent *a, const char *name, virConnectPtr *ret_conn,
			struct kc_error *err)
{
	virConnectPtr conn = kc_conn_get(a, err);
	if (!conn)
		return NULL;
	virDomainPtr d = kc_dom_lookup(conn, name, err);
	if (!d) {
		virConnectClose(conn);
		return NULL;
	}
	*ret_conn = conn;
	return d;
}
