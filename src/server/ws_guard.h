/* SPDX-License-Identifier: Apache-2.0 */
/* ws_guard.h - the lock around libulfius's active-WebSocket list (ws_guard.c). */
#pragma once

#include <stdbool.h>

/* Whether the process resolves libulfius's list functions to ours (the
 * server calls it at start, which also links ws_guard.c in). */
bool kc_ws_guard_active(void);
