/* SPDX-License-Identifier: Apache-2.0 */
/* validate.h - checks for names and paths that come from users. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define KC_NAME_MAX 64

/* A resource name (VM, image, host, pool, volume...): 1..64 characters from
 * [A-Za-z0-9._-], starting with a letter or digit, never containing "..".
 * So it can never carry '/', spaces, XML or shell metacharacters, and is
 * safe as a file name component.  `what` names the field in the error
 * ("VM name"). */
int kc_name_validate(const char *name, const char *what, struct kc_error *err);

/* A host name as used for a guest's hostname: RFC 1123 labels, max 63
 * characters.  */
int kc_hostname_validate(const char *name, struct kc_error *err);

/* A NIC's MAC address "xx:xx:xx:xx:xx:xx" (hex digits of either case) and,
 * when `unicast`, with the group bit of the first octet clear (libvirt
 * refuses multicast addresses for a NIC).  `what` names the field in the
 * error: "<what> '<mac>' is not of the form xx:xx:xx:xx:xx:xx" or
 * "<what> '<mac>' is multicast". */
int kc_mac_validate(const char *mac, bool unicast, const char *what, struct kc_error *err);

/* Joins dir + "/" + name + suffix after validating name with
 * kc_name_validate.  Returns a malloc'd path or NULL with err set. */
char *kc_path_join_name(const char *dir, const char *name, const char *suffix, const char *what,
			struct kc_error *err);
