/* SPDX-License-Identifier: Apache-2.0 */
/* events.c - libvirt lifecycle events passed on to the agent's callback. */
#include "agent_priv.h"
#include "sg_nft.h"

static const char *lifecycle_name(int event)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_DEFINED:
		return "defined";
	case VIR_DOMAIN_EVENT_UNDEFINED:
		return "undefined";
	case VIR_DOMAIN_EVENT_STARTED:
		return "started";
	case VIR_DOMAIN_EVENT_SUSPENDED:
		return "suspended";
	case VIR_DOMAIN_EVENT_RESUMED:
		return "resumed";
	case VIR_DOMAIN_EVENT_STOPPED:
		return "stopped";
	case VIR_DOMAIN_EVENT_SHUTDOWN:
		return "shutdown";
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		return "pmsuspended";
	case VIR_DOMAIN_EVENT_CRASHED:
		return "crashed";
	default:
		return "unknown";
	}
}

static int lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	kc_agent_emit(opaque, virDomainGetName(dom), lifecycle_name(event));
	/* A start (or migration in) makes a new tap, a stop frees one. */
	if (event == VIR_DOMAIN_EVENT_STARTED || event == VIR_DOMAIN_EVENT_STOPPED)
		kc_sg_kick(opaque);
	return 0;
}

/* Called with conn_lock held, right after (re)connecting. */
int kc_events_register(struct kc_agent *a, virConnectPtr conn)
{
	kc_cb_hold();
	a->lifecycle_cb = virConnectDomainEventRegisterAny(
		conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb),
		a, kc_cb_release);
	if (a->lifecycle_cb < 0) {
		kc_cb_release(NULL);
		virResetLastError();
		return -1;
	}
	return 0;
}

void kc_events_unregister(struct kc_agent *a, virConnectPtr conn)
{
	if (a->lifecycle_cb < 0)
		return;
	/* Fails on a dead connection; libvirt then releases it on close. */
	if (virConnectDomainEventDeregisterAny(conn, a->lifecycle_cb) < 0)
		virResetLastError();
	a->lifecycle_cb = -1;
}

void kc_agent_set_event_cb(struct kc_agent *a, kc_agent_event_fn fn, void *opaque)
{
	pthread_mutex_lock(&a->event_lock);
	a->event_fn = fn;
	a->event_opaque = opaque;
	pthread_mutex_unlock(&a->event_lock);
}
