/* SPDX-License-Identifier: Apache-2.0 */
/* db_users.h - users, their roles and quotas. */
#pragma once

#include "db.h"

/* Per-user limits; a negative value is unlimited (NULL in the table). */
struct kc_db_quota {
	int64_t max_vms;
	int64_t max_vcpus;
	int64_t max_memory_mib;
	int64_t max_disk_gib;
};

#define KC_DB_QUOTA_UNLIMITED ((struct kc_db_quota){-1, -1, -1, -1})

/* Creates a user; role "admin" or "user"; password_hash (an argon2id
 * string from crypto_pwhash_str) may be NULL (token-only user).  A taken
 * name is KC_ERR_CONFLICT, a bad role KC_ERR_INVALID.  *ret (may be NULL)
 * gets the user object as kc_db_user_get returns it. */
int kc_db_user_create(struct kc_db *db, const char *name, const char *role,
		      const char *password_hash, json_t **ret, struct kc_error *err);
/* {"id","name","role","max_vms","max_vcpus","max_memory_mib","max_disk_gib",
 *  "created_at","updated_at"} (never the password hash); KC_ERR_NOT_FOUND. */
int kc_db_user_get(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
int kc_db_user_list(struct kc_db *db, json_t **ret, struct kc_error *err);
/* The stored password hash (malloc'd), or NULL when the user has none;
 * an unknown user is KC_ERR_NOT_FOUND. */
int kc_db_user_password_hash(struct kc_db *db, const char *name, char **ret, struct kc_error *err);
int kc_db_user_set_password(struct kc_db *db, const char *name, const char *password_hash,
			    struct kc_error *err);
int kc_db_user_set_role(struct kc_db *db, const char *name, const char *role, struct kc_error *err);
int kc_db_user_set_quota(struct kc_db *db, const char *name, const struct kc_db_quota *q,
			 struct kc_error *err);
/* What the user's VM records add up to: {"vms","vcpus","memory_mib","disk_gib"}. */
int kc_db_user_usage(struct kc_db *db, const char *name, json_t **ret, struct kc_error *err);
/* Deletes a user and their tokens and jobs; one who still owns VMs is
 * KC_ERR_CONFLICT, the built-in admin KC_ERR_FORBIDDEN. */
int kc_db_user_delete(struct kc_db *db, const char *name, struct kc_error *err);
