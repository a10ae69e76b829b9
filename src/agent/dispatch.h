/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.h - the agent's operations by name (docs/protocol.md,
 * "Operations"): one table maps an op and its JSON args to a function of
 * agent.h.  The remote agent runs it for each request from the server; the
 * all-in-one server may call it in-process with the same ops and args.
 */
#pragma once

#include <jansson.h>

#include "agent.h"
#include "error.h"

/* Longest op name the table knows, plus room to spare; longer is invalid. */
#define KC_OP_NAME_MAX 32
/* The most serial-log bytes one vm.log may ask for: base64 of it fits in
 * one protocol frame. */
#define KC_OP_LOG_MAX (512 * 1024)

/* Runs `op` with `args` (a JSON object; NULL is taken as {}).  Unknown op,
 * an unknown, missing or ill-typed argument, or a value out of range is
 * KC_ERR_INVALID before anything is done; otherwise the operation's own
 * error.  On success *ret_result is a new reference (the op's result, see
 * docs/protocol.md).  Thread-safe as the agent library is. */
int kc_agent_dispatch(struct kc_agent *a, const char *op, const json_t *args, json_t **ret_result,
		      struct kc_error *err);

/* Whether `op` is a name in the table (for early checks and tests). */
bool kc_agent_op_exists(const char *op);
