/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console.c - the serial console: the log file (virtlogd writes it), and the
 * interactive console, a libvirt stream bridged to a socketpair by callbacks
 * in the event loop thread (as virsh console does), with bounded buffers in
 * both directions: a slow reader stops reading from the other side instead
 * of growing a buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"

#define LOG_READ_MAX (1024 * 1024)
#define BRIDGE_BUF   16384

int kc_agent_vm_log_read(struct kc_agent *a, const char *name, uint64_t offset, size_t max,
			 char **ret_buf, size_t *ret_len, uint64_t *ret_next, uint64_t *ret_size,
			 struct kc_error *err)
{
	_cleanup_free_ char *path = kc_path_join_name(a->console_dir, name, ".log", "VM name", err);
	if (!path)
		return -1;
	{
		_cleanup_conn_ virConnectPtr conn = NULL;
		_cleanup_dom_ virDomainPtr d = kc_dom_get(a, name, &conn, err);
		if (!d)
			return -1;
	}
	if (max > LOG_READ_MAX)
		max = LOG_READ_MAX;
	_cleanup_free_ char *buf = malloc(max + 1);
	if (!buf)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint64_t size = 0;
	size_t len = 0;
	if (fd < 0 && errno != ENOENT)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "open %s", path);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "stat %s", path);
		size = st.st_size;
		/* Past the end: the log was recreated, start over. */
		if (offset > size)
			offset = 0;
		while (len < max) {
			ssize_t n = pread(fd, buf + len, max - len, offset + len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "read %s",
							  path);
			if (n == 0)
				break;
			len += n;
		}
	} else {
		offset = 0;
	}
	buf[len] = '\0';
	*ret_buf = steal_ptr(&buf);
	*ret_len = len;
	*ret_next = offset + len;
	*ret_size = size > offset + len ? size : offset + len;
	return 0;
}

struct bridge {
	virStreamPtr st;
	int fd;
	int watch;
	/* Freed by the socket watch's release: libvirt's remote streams do not
	 * call a callback's free function on removal, and every callback runs
	 * in the event loop thread, so once the watch is released the stream
	 * callback (removed first) cannot run again. */
	int refs;
	bool closed;
	char to_fd[BRIDGE_BUF];
	size_t to_fd_len;
	char to_st[BRIDGE_BUF];
	size_t to_st_len;
};

static void bridge_unref(void *opaque)
{
	struct bridge *b = opaque;
	if (--b->refs > 0)
		return;
	close(b->fd);
	virStreamFree(b->st);
	free(b);
}

static void bridge_close(struct bridge *b)
{
	if (b->closed)
		return;
	b->closed = true;
	virStreamEventRemoveCallback(b->st);
	if (virStreamAbort(b->st) < 0)
		virResetLastError();
	shutdown(b->fd, SHUT_RDWR);
	virEventRemoveHandle(b->watch);
}

static void bridge_update(struct bridge *b)
{
	if (b->closed)
		return;
	int sev = 0, fev = 0;
	if (b->to_fd_len < BRIDGE_BUF)
		sev |= VIR_STREAM_EVENT_READABLE;
	if (b->to_st_len > 0)
		sev |= VIR_STREAM_EVENT_WRITABLE;
	if (b->to_st_len < BRIDGE_BUF)
		fev |= VIR_EVENT_HANDLE_READABLE;
	if (b->to_fd_len > 0)
		fev |= VIR_EVENT_HANDLE_WRITABLE;
	virStreamEventUpdateCallback(b->st, sev);
	virEventUpdateHandle(b->watch, fev);
}

static void flush_fd(struct bridge *b)
{
	while (b->to_fd_len > 0) {
		ssize_t n = write(b->fd, b->to_fd, b->to_fd_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				bridge_close(b);
			return;
		}
		memmove(b->to_fd, b->to_fd + n, b->to_fd_len - n);
		b->to_fd_len -= n;
	}
}

static void flush_stream(struct bridge *b)
{
	if (b->to_st_len == 0 || b->closed)
		return;
	int n = virStreamSend(b->st, b->to_st, b->to_st_len);
	if (n == -2)
		return;
	if (n < 0) {
		virResetLastError();
		bridge_close(b);
		return;
	}
	memmove(b->to_st, b->to_st + n, b->to_st_len - n);
	b->to_st_len -= n;
}

static void stream_cb(virStreamPtr st, int events, void *opaque)
{
	struct bridge *b = opaque;
	if (b->closed)
		return;
	if ((events & VIR_STREAM_EVENT_READABLE) && b->to_fd_len < BRIDGE_BUF) {
		int n = virStreamRecv(st, b->to_fd + b->to_fd_len, BRIDGE_BUF - b->to_fd_len);
		if (n > 0) {
			b->to_fd_len += n;
		} else if (n != -2) {
			virResetLastError();
			bridge_close(b); /* guest side ended */
			return;
		}
	}
	if (events & VIR_STREAM_EVENT_WRITABLE)
		flush_stream(b);
	if (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP)) {
		bridge_close(b);
		return;
	}
	flush_fd(b);
	bridge_update(b);
}

static void fd_cb(int watch, int fd, int events, void *opaque)
{
	struct bridge *b = opaque;
	if (b->closed)
		return;
	if ((events & VIR_EVENT_HANDLE_READABLE) && b->to_st_len < BRIDGE_BUF) {
		ssize_t n = read(fd, b->to_st + b->to_st_len, BRIDGE_BUF - b->to_st_len);
		if (n > 0) {
			b->to_st_len += n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			bridge_close(b); /* the client closed its end */
			return;
		}
	}
	if (events & VIR_EVENT_HANDLE_WRITABLE)
		flush_fd(b);
	if (!b->closed && (events & (VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP))) {
		bridge_close(b);
		return;
	}
	flush_stream(b);
	bridge_update(b);
}

int kc_agent_vm_console_open(struct kc_agent *a, const char *name, int *ret_fd,
			     struct kc_error *err)
{
	_cleanup_conn_ virConnectPtr conn = NULL;
	_cleanup_dom_ virDomainPtr d = kc_dom_get(a, name, &conn, err);
	if (!d)
		return -1;
	if (virDomainIsActive(d) != 1)
		return kc_error_set(err, KC_ERR_CONFLICT, "VM %s is not running", name);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "socketpair");
	struct bridge *b = calloc(1, sizeof(*b));
	if (!b) {
		close(sv[0]);
		close(sv[1]);
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	b->fd = sv[1];
	b->watch = -1;
	fcntl(b->fd, F_SETFL, fcntl(b->fd, F_GETFL) | O_NONBLOCK);
	b->st = virStreamNew(conn, VIR_STREAM_NONBLOCK);
	/* FORCE: a stale session (a closed browser tab) must not lock the
	 * console forever. */
	if (!b->st || virDomainOpenConsole(d, NULL, b->st, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
		kc_lverr(err, "opening the console of VM '%s'", name);
		goto fail;
	}
	/* The socket watch first: stream callbacks may fire at once and
	 * update it. */
	b->refs = 1;
	b->watch = virEventAddHandle(b->fd, VIR_EVENT_HANDLE_READABLE, fd_cb, b, bridge_unref);
	if (b->watch < 0) {
		kc_error_set(err, KC_ERR_INTERNAL, "cannot watch the console socket");
		virStreamAbort(b->st);
		goto fail;
	}
	if (virStreamEventAddCallback(b->st, VIR_STREAM_EVENT_READABLE, stream_cb, b, NULL) < 0) {
		kc_lverr(err, "watching the console of VM '%s'", name);
		b->closed = true;
		virStreamAbort(b->st);
		virResetLastError();
		virEventRemoveHandle(b->watch); /* its release frees b */
		close(sv[0]);
		return -1;
	}
	*ret_fd = sv[0];
	return 0;
fail:
	virResetLastError();
	if (b->st)
		virStreamFree(b->st);
	close(b->fd);
	free(b);
	close(sv[0]);
	return -1;
}
