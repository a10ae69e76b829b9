/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authz.c - the authorisation policy.  Policy by route pattern, with a
 * default of "admins only": a route added later is closed to users until
 * someone decides otherwise here.
 */
#include "authz.h"

#include <string.h>

#include "cleanup.h"
#include "db_groups.h"
#include "db_secgroups.h"
#include "db_vms.h"
#include "db_volumes.h"
#include "json_util.h"

bool kc_authz_is_admin(const struct kc_call *c)
{
	return strcmp(c->who.role, "admin") == 0;
}

const char *kc_authz_vm_owner(const struct kc_call *c)
{
	return kc_authz_is_admin(c) ? NULL : c->who.user;
}

int kc_authz_self_or_admin(const struct kc_call *c, const char *user, struct kc_error *err)
{
	if (kc_authz_is_admin(c) || (user && strcmp(user, c->who.user) == 0))
		return 0;
	return kc_error_set(err, KC_ERR_FORBIDDEN, "only an admin may do this for another user");
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A user's VM route: the VM must have a record they own.  Anything else
 * (another's VM, a domain kvmcloud did not create, nothing) is the same
 * 404 the route gives for a VM that does not exist. */
static int own_vm(struct kc_call *c, const char *name, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	if (kc_db_vm_get(c->srv->db, name, &row, &e) < 0) {
		if (e.code != KC_ERR_NOT_FOUND) {
			*err = e;
			return -1;
		}
		kc_error_clear(&e);
	}
	const char *owner = json_string_value(json_object_get(row, "owner"));
	if (!owner || strcmp(owner, c->who.user) != 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "VM \"%s\" not found", name);
	return 0;
}

/* A user's group route: like own_vm, another's group is "not found". */
static int own_group(struct kc_call *c, const char *name, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	if (kc_db_group_get(c->srv->db, name, &row, &e) < 0 && e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	const char *owner = json_string_value(json_object_get(row, "owner"));
	if (!owner || strcmp(owner, c->who.user) != 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "group \"%s\" not found", name);
	return 0;
}

/* A user's security group route: like own_vm, another's is "not found". */
static int own_sg(struct kc_call *c, const char *name, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	if (kc_db_sg_get(c->srv->db, name, &row, &e) < 0 && e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	const char *owner = json_string_value(json_object_get(row, "owner"));
	if (!owner || strcmp(owner, c->who.user) != 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "security group \"%s\" not found", name);
	return 0;
}

/* A user's volume route: like own_vm, another's volume is "not found". */
static int own_volume(struct kc_call *c, const char *name, struct kc_error *err)
{
	_cleanup_json_ json_t *row = NULL;
	struct kc_error e = {0};

	if (kc_db_volume_get(c->srv->db, name, &row, &e) < 0 && e.code != KC_ERR_NOT_FOUND) {
		*err = e;
		return -1;
	}
	const char *owner = json_string_value(json_object_get(row, "owner"));
	if (!owner || strcmp(owner, c->who.user) != 0)
		return kc_error_set(err, KC_ERR_NOT_FOUND, "volume \"%s\" not found", name);
	return 0;
}

int kc_authz_route(struct kc_call *c, const char *method, const char *pattern, const char *name,
		   struct kc_error *err)
{
	if (kc_authz_is_admin(c))
		return 0;
	if (strcmp(c->who.role, "user") != 0)
		return kc_error_set(err, KC_ERR_FORBIDDEN, "no role allows this");

	if (strcmp(pattern, "/api/v1/vms") == 0)
		return 0; /* the list is filtered, a create is owned and within quota */
	if (starts_with(pattern, "/api/v1/vms/:vm"))
		return own_vm(c, name, err);
	if (strcmp(pattern, "/api/v1/groups") == 0)
		return 0; /* the list shows the caller's own groups */
	if (starts_with(pattern, "/api/v1/groups/:group"))
		return own_group(c, name, err);
	if (strcmp(pattern, "/api/v1/security-groups") == 0)
		return 0; /* the list is the caller's own, a create is owned */
	if (starts_with(pattern, "/api/v1/security-groups/:sg"))
		return own_sg(c, name, err);
	if (strcmp(pattern, "/api/v1/volumes") == 0)
		return 0; /* the list is the caller's own, a create is owned and within quota */
	if (starts_with(pattern, "/api/v1/volumes/:volume"))
		return own_volume(c, name, err);
	if (starts_with(pattern, "/api/v1/networks") && strcmp(method, "GET") == 0)
		return 0; /* networks are for all; addresses filtered to the caller's VMs */
	if (starts_with(pattern, "/api/v1/images"))
		return 0; /* ready images for all; changes by admins or owners (api_images.c) */
	if (starts_with(pattern, "/api/v1/tokens") || starts_with(pattern, "/api/v1/jobs"))
		return 0; /* scoped to the caller's own tokens / jobs by the handlers */
	if (strcmp(pattern, "/api/v1/users/:user/tokens") == 0 ||
	    (strcmp(pattern, "/api/v1/users/:user") == 0 && strcmp(method, "GET") == 0))
		return kc_authz_self_or_admin(c, name, err);
	return kc_error_set(err, KC_ERR_FORBIDDEN, "only an admin may %s %s", method, pattern);
}
