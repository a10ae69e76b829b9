/* SPDX-License-Identifier: Apache-2.0 */
/*
 * placement.c - where a new VM goes.  A stand-in for the scheduler of
 * issue 3 (free memory and vCPUs, overcommit, affinity): the choice lives
 * in this one function so that the scheduler replaces only its body.
 */
#include "cluster.h"

#include <stdlib.h>
#include <string.h>

#include "agentlink.h"
#include "cleanup.h"
#include "hostlink.h"
#include "json_util.h"
#include "server.h"

static int take(const char *name, char **ret, struct kc_error *err)
{
	*ret = strdup(name);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

int kc_place_vm(struct kc_server *srv, const char *requested, char **ret_host, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	size_t i;
	json_t *row;

	if (requested) {
		_cleanup_json_ json_t *h = NULL;
		if (kc_db_host_get(srv->db, requested, &h, err) < 0)
			return -1;
		const char *state = json_string_value(json_object_get(h, "state"));
		if (state && strcmp(state, "Pending") == 0)
			return kc_error_set(err, KC_ERR_CONFLICT, "host \"%s\" has not joined yet",
					    requested);
		if (state && strcmp(state, "Maintenance") == 0)
			return kc_error_set(err, KC_ERR_CONFLICT,
					    "host \"%s\" is in maintenance: no new VMs", requested);
		return take(requested, ret_host, err);
	}
	if (srv->agent && srv->host_name)
		return take(srv->host_name, ret_host, err);

	if (kc_db_host_list(srv->db, &rows, err) < 0)
		return -1;
	json_array_foreach(rows, i, row)
	{
		const char *name = json_string_value(json_object_get(row, "name"));
		const char *state = json_string_value(json_object_get(row, "state"));
		if (name && state && strcmp(state, "Up") == 0 && kc_host_reachable(srv, name))
			return take(name, ret_host, err);
	}
	return kc_error_set(err, KC_ERR_UNAVAILABLE,
			    "no host is Up and connected to place the VM on");
}
