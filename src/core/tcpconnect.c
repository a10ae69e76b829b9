/* SPDX-License-Identifier: Apache-2.0 */
/* tcpconnect.c - the connect shared by the agent's link and the servers' peer links. */
#include "tcpconnect.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLICE_MS 200

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for a non-blocking connect on fd; returns 0 or the errno it failed with. */
static int wait_connected(int fd, unsigned timeout_ms, bool (*stopped)(void *), void *opaque)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	while (mono_ms() < deadline) {
		if (stopped && stopped(opaque))
			return ECANCELED;
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int n = poll(&pfd, 1, SLICE_MS);
		if (n < 0 && errno != EINTR)
			return errno;
		if (n > 0) {
			int soerr = 0;
			socklen_t len = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
				return errno;
			return soerr;
		}
	}
	return ETIMEDOUT;
}

int kc_tcp_connect(const char *host, const char *port, unsigned timeout_ms,
		   bool (*stopped)(void *opaque), void *opaque, int *ret_fd, struct kc_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return kc_error_set(err, KC_ERR_UNAVAILABLE, "cannot resolve %s: %s", host,
				    gai_strerror(rc));
	int last_errno = ETIMEDOUT;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		int soerr = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
			soerr = errno == EINPROGRESS
					? wait_connected(fd, timeout_ms, stopped, opaque)
					: errno;
		if (soerr != 0) {
			last_errno = soerr;
			close(fd);
			if (soerr == ECANCELED)
				break;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		freeaddrinfo(res);
		*ret_fd = fd;
		return 0;
	}
	freeaddrinfo(res);
	return kc_error_set_errno(err, KC_ERR_UNAVAILABLE, last_errno, "cannot connect to %s:%s",
				  host, port);
}
