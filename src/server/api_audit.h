/* SPDX-License-Identifier: Apache-2.0 */
/* api_audit.h - one audit row per state-changing request (api.c calls it). */
#pragma once

#include "api.h"

/* Whether a request on this route is audited: every POST, PUT, DELETE and
 * PATCH.  The dispatcher calls kc_api_audit_request() for those once the
 * answer is made, whatever it is. */
bool kc_api_audit_wanted(const char *method);

/* Writes the row: the caller (or, for a password login, the claimed user;
 * "-" if none), "METHOD PATTERN", the target (the name parameter, else the
 * body's "name"), ok or error, and {"status", "code"}.  A failed write is
 * logged on stderr and does not change the answer: the change is made. */
void kc_api_audit_request(struct kc_call *c, const char *method, const char *pattern);
