/* SPDX-License-Identifier: Apache-2.0 */
#include "db.h"

#include <string.h>

int kc_db_open(const char *spec, struct kc_db **ret, struct kc_error *err)
{
	if (strncmp(spec, "postgresql:", 11) == 0 || strncmp(spec, "postgres:", 9) == 0)
		return kc_error_set(err, KC_ERR_INVALID,
				    "the PostgreSQL backend is not implemented yet; use SQLite");
	if (strncmp(spec, "sqlite:", 7) == 0)
		spec += 7;
	if (!*spec)
		return kc_error_set(err, KC_ERR_INVALID, "empty database path");
	return kc_db_sqlite_open(spec, -1, ret, err);
}

void kc_db_close(struct kc_db *db)
{
	if (db)
		db->ops->close(db);
}
