/* SPDX-License-Identifier: Apache-2.0 */
/* db_vm_list.c - VM records with their host's state, for the VM list. */
#include "db_vm_list.h"

int kc_db_vm_list_view(struct kc_db *db, const char *owner, json_t **ret, struct kc_error *err)
{
	if (kc_db_query(db,
			"SELECT v.name, v.uuid, v.host, v.state, v.owner, v.vcpus, v.memory_mib, "
			"v.request, v.created_at, v.updated_at, h.state AS host_state "
			"FROM vms v LEFT JOIN hosts h ON h.name = v.host "
			"WHERE $1 IS NULL OR v.owner = $1 ORDER BY v.name",
			KC_DB_PARAMS(KC_DB_TEXT(owner)), ret, err) < 0)
		return -1;
	kc_db_rows_parse_json(*ret, (const char *const[]){"request", NULL});
	return 0;
}
