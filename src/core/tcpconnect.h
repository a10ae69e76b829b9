/* SPDX-License-Identifier: Apache-2.0 */
/* tcpconnect.h - an outgoing TCP connection with a bounded, stoppable connect. */
#pragma once

#include <stdbool.h>

#include "error.h"

/* Connects to host:port (each address getaddrinfo gives, in turn), giving
 * each at most timeout_ms.  The wait is polled in short slices and
 * abandoned when stopped(opaque) says so (stopped may be NULL).  On success
 * *ret_fd is a blocking, O_CLOEXEC, keep-alive socket the caller owns. */
int kc_tcp_connect(const char *host, const char *port, unsigned timeout_ms,
		   bool (*stopped)(void *opaque), void *opaque, int *ret_fd, struct kc_error *err);
