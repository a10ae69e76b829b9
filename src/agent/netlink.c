/* SPDX-License-Identifier: Apache-2.0 */
/* netlink.c - sends one rtnetlink message built by nlmsg.c and reads its
 * ACK (net_backend.h).  A socket per message: these are rare, and a fresh
 * socket cannot read a stale answer meant for someone else. */
#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cleanup.h"
#include "net_backend.h"
#include "nlmsg.h"

#define UNSUPPORTED "unsupported_on_this_kernel"

bool kc_netlink_unsupported(const struct kc_error *err)
{
	return err && err->code == KC_ERR_UNAVAILABLE && strstr(err->message, UNSUPPORTED);
}

int kc_netlink_send(struct kc_nlmsg *m, const char *what, struct kc_error *err)
{
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "%s: netlink socket", what);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
	if (sendto(fd, m->buf, m->len, 0, (struct sockaddr *)&sa, sizeof(sa)) != (ssize_t)m->len)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "%s: netlink send", what);
	for (;;) {
		union {
			struct nlmsghdr h;
			char b[8192];
		} ans;
		ssize_t n = recv(fd, &ans, sizeof(ans), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno,
						  "%s: no netlink answer", what);
		for (struct nlmsghdr *r = &ans.h; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
			if (r->nlmsg_seq != h->nlmsg_seq || r->nlmsg_type != NLMSG_ERROR)
				continue;
			if (r->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return kc_error_set(err, KC_ERR_INTERNAL,
						    "%s: short netlink answer", what);
			const struct nlmsgerr *e = NLMSG_DATA(r);
			int code = -e->error;
			if (code == 0)
				return 0;
			/* A link kind the kernel lacks (vlan, bond without their
			 * modules) is EOPNOTSUPP; so is bridge VLAN filtering. */
			if (code == EOPNOTSUPP)
				return kc_error_set(err, KC_ERR_UNAVAILABLE,
						    "%s: " UNSUPPORTED " (%s)", what,
						    strerror(code));
			return kc_error_set_errno(err, KC_ERR_INTERNAL, code, "%s", what);
		}
	}
}
