/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws_guard.c - serialises libulfius's list of active WebSockets.
 *
 * libulfius 2.7.13 (Debian 12) reallocs the instance's array of active
 * WebSockets in ulfius_instance_add_websocket_active() before it takes its
 * own lock, while ulfius_instance_remove_websocket_active() frees that
 * array under the lock when the last WebSocket ends.  A console opening
 * while another closes is then a double free (seen under ASan in the e2e
 * console test).  The library calls both through its PLT, so the
 * definitions here take precedence: each holds one mutex around the
 * library's own function, found with dlsym(RTLD_NEXT).
 */
#include "ws_guard.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

struct _u_instance;
struct _websocket;
typedef int (*ws_list_fn)(struct _u_instance *, struct _websocket *);

#define U_ERROR 1 /* ulfius's code for a generic failure */

static pthread_mutex_t ws_list_lock = PTHREAD_MUTEX_INITIALIZER;

static int call_locked(const char *symbol, struct _u_instance *instance,
		       struct _websocket *websocket)
{
	ws_list_fn real = (ws_list_fn)dlsym(RTLD_NEXT, symbol);
	if (!real)
		return U_ERROR;
	pthread_mutex_lock(&ws_list_lock);
	int rc = real(instance, websocket);
	pthread_mutex_unlock(&ws_list_lock);
	return rc;
}

int ulfius_instance_add_websocket_active(struct _u_instance *instance,
					 struct _websocket *websocket);
int ulfius_instance_remove_websocket_active(struct _u_instance *instance,
					    struct _websocket *websocket);

int ulfius_instance_add_websocket_active(struct _u_instance *instance, struct _websocket *websocket)
{
	return call_locked("ulfius_instance_add_websocket_active", instance, websocket);
}

int ulfius_instance_remove_websocket_active(struct _u_instance *instance,
					    struct _websocket *websocket)
{
	return call_locked("ulfius_instance_remove_websocket_active", instance, websocket);
}

bool kc_ws_guard_active(void)
{
	return dlsym(RTLD_DEFAULT, "ulfius_instance_add_websocket_active") ==
	       (void *)ulfius_instance_add_websocket_active;
}
