/* SPDX-License-Identifier: Apache-2.0 */
/* hostlink.c - the embedded agent as a hostlink, and picking the link of a host:
 * embedded agent, this server's agent link, or a peer server (peerlink.c). */
#include "hostlink.h"

#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "cleanup.h"
#include "dispatch.h"
#include "ha.h"
#include "json_util.h"
#include "peerlink.h"
#include "server.h"

#define CREATE_TIMEOUT_S  300
#define DEFAULT_TIMEOUT_S 60
/* Room above a shutdown's own wait for the agent to force it off. */
#define SHUTDOWN_SLACK_S 60

struct local_link {
	struct kc_hostlink base;
	struct kc_agent *agent;
};

static int local_call(struct kc_hostlink *link, const char *op, const json_t *args,
		      json_t **ret_result, struct kc_error *err)
{
	struct local_link *l = (struct local_link *)link;
	_cleanup_json_ json_t *empty = json_object();

	return kc_agent_dispatch(l->agent, op, args ? args : empty, ret_result, err);
}

static void local_release(struct kc_hostlink *link)
{
	free(link);
}

static const struct kc_hostlink_ops local_ops = {
	.call = local_call,
	.release = local_release,
};

bool kc_host_is_local(const struct kc_server *srv, const char *host)
{
	return srv->agent && srv->host_name && host && strcmp(host, srv->host_name) == 0;
}

bool kc_host_held_here(struct kc_server *srv, const char *host)
{
	if (!host)
		return false;
	if (kc_host_is_local(srv, host))
		return true;
	return srv->alink && kc_agentlink_connected(srv->alink, host);
}

bool kc_host_reachable(struct kc_server *srv, const char *host)
{
	if (kc_host_held_here(srv, host))
		return true;
	if (!host || !srv->plink)
		return false;
	_cleanup_free_ char *ep = kc_ha_holder(srv, host);
	return ep != NULL;
}

int kc_hostlink_get_own(struct kc_server *srv, const char *host, struct kc_hostlink **ret,
			struct kc_error *err)
{
	if (!host)
		return kc_error_set(err, KC_ERR_INTERNAL, "no host given");
	if (kc_host_is_local(srv, host)) {
		struct local_link *l = calloc(1, sizeof(*l));
		if (!l)
			return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
		l->base.ops = &local_ops;
		l->agent = srv->agent;
		*ret = &l->base;
		return 0;
	}
	if (!srv->alink)
		return kc_error_set(err, KC_ERR_UNAVAILABLE,
				    "host \"%s\" is not connected (the agent listener is off)",
				    host);
	return kc_agentlink_get(srv->alink, host, ret, err);
}

int kc_hostlink_get(struct kc_server *srv, const char *host, struct kc_hostlink **ret,
		    struct kc_error *err)
{
	struct kc_error own = {0};

	if (kc_hostlink_get_own(srv, host, ret, &own) == 0)
		return 0;
	/* Held by another server on the same database: through it. */
	if (own.code == KC_ERR_UNAVAILABLE && srv->plink) {
		_cleanup_free_ char *ep = kc_ha_holder(srv, host);
		if (ep)
			return kc_peerlink_get(srv->plink, ep, host, ret, err);
	}
	if (err)
		*err = own;
	return -1;
}

void kc_hostlink_release(struct kc_hostlink *link)
{
	if (link)
		link->ops->release(link);
}

int kc_host_call(struct kc_server *srv, const char *host, const char *op, const json_t *args,
		 json_t **ret_result, struct kc_error *err)
{
	struct kc_hostlink *link = NULL;

	if (kc_hostlink_get(srv, host, &link, err) < 0)
		return -1;
	int rc = link->ops->call(link, op, args, ret_result, err);
	kc_hostlink_release(link);
	return rc;
}

unsigned kc_hostlink_timeout_s(const char *op, const json_t *args)
{
	if (strcmp(op, "vm.create") == 0 || strcmp(op, "vm.snapshot.create") == 0 ||
	    strcmp(op, "vm.snapshot.revert") == 0 ||  /* QEMU saves or loads the guest's memory */
	    strcmp(op, "vm.template.prepare") == 0 || /* flattens a whole disk */
	    strcmp(op, "image.commit") == 0 ||	      /* hashes and checks a whole image */
	    strcmp(op, "vol.upload") == 0 ||	      /* the last chunk checks the whole volume */
	    strcmp(op, "pool.prune") == 0)	      /* reads every volume's backing chain */
		return CREATE_TIMEOUT_S;
	if (strcmp(op, "vm.shutdown") == 0) {
		json_t *t = json_object_get(args, "timeout_s");
		json_int_t s = json_is_integer(t) ? json_integer_value(t) : 0;
		if (s < 0 || s > 24 * 3600)
			s = 0;
		return (unsigned)s + SHUTDOWN_SLACK_S;
	}
	/* A host firewall change is confirmed only if the link carries it
	 * promptly (api_hostfw.c); the agent's own timer does the rest. */
	if (strncmp(op, "host.firewall.", 14) == 0)
		return 10;
	/* The same for a host network's confirmation (api_hostnet.c). */
	if (strcmp(op, "host.net.confirm") == 0)
		return 10;
	return DEFAULT_TIMEOUT_S;
}
