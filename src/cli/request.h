/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request.h - from parsed verb arguments to the JSON bodies and paths of
 * docs/api.md.  Pure functions: no I/O except reading --user-data.
 * Errors with code KC_ERR_INVALID are usage errors (exit status 2).
 */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "args.h"
#include "error.h"

#define KC_USER_DATA_MAX (64 * 1024)

/* `vm create NAME ...` -> VMRequest.  Only the fields given on the command
 * line are sent, so the server's defaults apply to the others. */
json_t *kc_req_vm_create(const struct kc_args *a, struct kc_error *err);
/* `vm shutdown NAME [--timeout S] [--no-force]` -> {"timeout_s":S,"force":false};
 * "force" is always sent (true unless --no-force), "timeout_s" only when given. */
json_t *kc_req_vm_shutdown(const struct kc_args *a, struct kc_error *err);
/* `host check NAME [--probe]` -> {"probe_kvm":true}, or NULL for no body (not an error). */
json_t *kc_req_host_check(const struct kc_args *a);

/* One --nic value: "user" | "network=NAME" | "bridge=NAME", then optional ",mac=MAC". */
json_t *kc_req_nic(const char *spec, struct kc_error *err);

/* "/api/v1/" + collection + "/" + name + suffix, after kc_name_validate(name). */
char *kc_req_path(const char *collection, const char *name, const char *suffix, const char *what,
		  struct kc_error *err);
