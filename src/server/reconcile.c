/* SPDX-License-Identifier: Apache-2.0 */
#include "reconcile.h"

#include <string.h>

#include "cleanup.h"
#include "json_util.h"

json_t *kc_index_by_name(const json_t *array)
{
	json_t *by_name = json_object();
	size_t i;
	json_t *v;

	json_array_foreach(array, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		if (by_name && name && json_object_set(by_name, name, v) < 0) {
			json_decref(by_name);
			return NULL;
		}
	}
	return by_name;
}

int kc_reconcile_startup(struct kc_server *srv, FILE *log, struct kc_error *err)
{
	_cleanup_json_ json_t *rows = NULL;
	_cleanup_json_ json_t *live = NULL;
	_cleanup_json_ json_t *by_name = NULL;
	size_t i;
	json_t *v;

	if (kc_db_vm_list(srv->db, NULL, &rows, err) < 0 ||
	    kc_agent_vm_list(srv->agent, &live, err) < 0)
		return -1;
	by_name = kc_index_by_name(live);
	if (!by_name)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");

	json_array_foreach(rows, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *state = json_string_value(json_object_get(v, "state"));
		const json_t *dom = name ? json_object_get(by_name, name) : NULL;
		struct kc_error e = {0};

		const char *host = json_string_value(json_object_get(v, "host"));
		/* Records of remote hosts are settled when their agent says
		 * hello (agentlink.c), not from this host's libvirt. */
		if (!name || !state || (host && srv->host_name && strcmp(host, srv->host_name) != 0))
			continue;
		if (strcmp(state, "creating") == 0) {
			if (dom) {
				const char *uuid = json_string_value(json_object_get(dom, "uuid"));
				const char *st = json_string_value(json_object_get(dom, "state"));
				if (kc_db_vm_update(srv->db, name, uuid,
							    st ? st : "unknown", &e) < 0)
					fprintf(log, "reconcile: VM %s: %s\n", name, e.message);
				else
					fprintf(log,
						"reconcile: VM %s: create was interrupted but "
						"the domain exists; kept\n",
						name);
			} else {
				if (kc_db_vm_delete(srv->db, name, &e) < 0)
					fprintf(log, "reconcile: VM %s: %s\n", name, e.message);
				else
					fprintf(log,
						"reconcile: VM %s: create was interrupted; "
						"record removed\n",
						name);
			}
			continue;
		}
		const char *st = dom ? json_string_value(json_object_get(dom, "state")) : "missing";
		if (st && kc_db_vm_note_state(srv->db, name, st, &e) < 0)
			fprintf(log, "reconcile: VM %s: %s\n", name, e.message);
	}
	return 0;
}

/* libvirt lifecycle event names (as the agent reports them) to the state
 * the domain is in afterwards.  Events that say nothing final ("defined",
 * "shutdown" which is followed by "stopped") are ignored. */
static const struct {
	const char *event;
	const char *state;
} event_states[] = {
	{"started", "running"},	  {"resumed", "running"}, {"running", "running"},
	{"suspended", "paused"},  {"paused", "paused"},	  {"stopped", "shutoff"},
	{"shutoff", "shutoff"},	  {"crashed", "crashed"}, {"pmsuspended", "pmsuspended"},
	{"undefined", "missing"},
};

void kc_reconcile_event(const char *vm_name, const char *event, void *opaque)
{
	struct kc_server *srv = opaque;

	if (!vm_name || !event)
		return; /* connection up/down: nothing to record per VM */
	for (size_t i = 0; i < KC_ARRAY_SIZE(event_states); i++) {
		if (strcmp(event, event_states[i].event) == 0) {
			/* Only for this host's records (as agentlink.c does for
			 * remote agents): the VM list shows this column, and a
			 * domain of the same name here may be someone else's. */
			_cleanup_json_ json_t *row = NULL;
			if (kc_db_vm_get(srv->db, vm_name, &row, NULL) < 0)
				return;
			const char *host = json_string_value(json_object_get(row, "host"));
			if (host && srv->host_name && strcmp(host, srv->host_name) != 0)
				return;
			/* Errors are dropped: the next action, show or hello
			 * (reconciliation) writes the state again. */
			kc_db_vm_note_state(srv->db, vm_name, event_states[i].state, NULL);
			return;
		}
	}
}
