/* SPDX-License-Identifier: Apache-2.0 */
/* net_exec.c - running ip/ovs-vsctl without a shell, and reading or
 * setting one interface's addresses (net_backend.h). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "json_util.h"
#include "net_backend.h"
#include "nlmsg.h"

extern char **environ;

#define OUT_MAX (4u << 20)

static void last_line(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	char *end = buf + strlen(buf);
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	char *nl = strrchr(buf, '\n');
	if (nl)
		memmove(buf, nl + 1, strlen(nl + 1) + 1);
}

int kc_net_run(char *const argv[], char **ret_out, struct kc_error *err)
{
	_cleanup_close_ int outfd = memfd_create("kc-net-out", MFD_CLOEXEC);
	_cleanup_close_ int errfd = memfd_create("kc-net-err", MFD_CLOEXEC);
	if (outfd < 0 || errfd < 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "memfd_create");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return kc_error_set_errno(err, KC_ERR_INTERNAL, r, "cannot run %s", argv[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return kc_error_set_errno(err, KC_ERR_INTERNAL, errno, "waitpid %s",
						  argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[1024];
		last_line(errfd, why, sizeof(why));
		return kc_error_set(err, KC_ERR_INTERNAL, "%s %s failed: %s", argv[0],
				    argv[1] ? argv[1] : "", why);
	}
	if (!ret_out)
		return 0;
	struct stat st;
	if (fstat(outfd, &st) < 0 || (size_t)st.st_size > OUT_MAX)
		return kc_error_set(err, KC_ERR_TOO_LARGE, "%s printed more than %u bytes", argv[0],
				    OUT_MAX);
	char *out = malloc((size_t)st.st_size + 1);
	if (!out)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	ssize_t n = pread(outfd, out, (size_t)st.st_size, 0);
	out[n > 0 ? n : 0] = '\0';
	*ret_out = out;
	return 0;
}

int kc_net_runl(struct kc_error *err, ...)
{
	char *argv[16];
	size_t n = 0;
	va_list ap;
	va_start(ap, err);
	for (char *s; n < KC_ARRAY_SIZE(argv) - 1 && (s = va_arg(ap, char *));)
		argv[n++] = s;
	va_end(ap);
	argv[n] = NULL;
	return kc_net_run(argv, NULL, err);
}

int kc_net_iface_read(const char *name, bool *ret_exists, bool *ret_up, json_t **ret_addrs,
		      struct kc_error *err)
{
	*ret_exists = false;
	*ret_up = false;
	*ret_addrs = json_array();
	if (!*ret_addrs)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	if (if_nametoindex(name) == 0)
		return 0;
	char *argv[] = {KC_IP_BIN, "-j", "addr", "show", "dev", (char *)name, NULL};
	_cleanup_free_ char *out = NULL;
	struct kc_error e = {0};
	if (kc_net_run(argv, &out, &e) < 0) {
		/* Gone between the two looks: missing, not an error. */
		if (if_nametoindex(name) == 0)
			return 0;
		*err = e;
		return -1;
	}
	json_error_t je;
	_cleanup_json_ json_t *j = json_loads(out, 0, &je);
	json_t *link = json_array_get(j, 0);
	if (!link)
		return kc_error_set(err, KC_ERR_INTERNAL, "ip -j addr: unexpected output");
	*ret_exists = true;
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(link, "flags"), i, f)
	{
		if (json_is_string(f) && strcmp(json_string_value(f), "UP") == 0)
			*ret_up = true;
	}
	json_t *ai;
	json_array_foreach(json_object_get(link, "addr_info"), i, ai)
	{
		const char *local = json_string_value(json_object_get(ai, "local"));
		const char *scope = json_string_value(json_object_get(ai, "scope"));
		json_int_t plen = json_integer_value(json_object_get(ai, "prefixlen"));
		if (!local || (scope && strcmp(scope, "global") != 0))
			continue;
		char txt[80];
		snprintf(txt, sizeof(txt), "%s/%d", local, (int)plen);
		struct kc_net_addr a;
		/* Canonical, the way declarations are. */
		if (kc_net_addr_parse(txt, &a, NULL) == 0)
			json_array_append_new(*ret_addrs, json_string(a.text));
	}
	return 0;
}

static bool in_array(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

int kc_net_iface_set(const char *name, const json_t *want, struct kc_error *err)
{
	int ifindex = (int)if_nametoindex(name);
	if (ifindex == 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "interface %s does not exist", name);
	bool exists, up;
	_cleanup_json_ json_t *have = NULL;
	if (kc_net_iface_read(name, &exists, &up, &have, err) < 0)
		return -1;
	struct kc_nlmsg m;
	char what[96];
	snprintf(what, sizeof(what), "set %s up", name);
	if (!up && (kc_nl_link_updown(&m, 1, ifindex, true, err) < 0 ||
		    kc_netlink_send(&m, what, err) < 0))
		return -1;
	size_t i;
	json_t *v;
	json_array_foreach(have, i, v)
	{
		const char *a = json_string_value(v);
		struct kc_net_addr na;
		if (in_array(want, a) || kc_net_addr_parse(a, &na, err) < 0)
			continue;
		snprintf(what, sizeof(what), "remove %s from %s", a, name);
		if (kc_nl_addr(&m, 2, false, ifindex, &na, err) < 0 ||
		    kc_netlink_send(&m, what, err) < 0)
			return -1;
	}
	json_array_foreach(want, i, v)
	{
		const char *a = json_string_value(v);
		struct kc_net_addr na;
		if (!a || in_array(have, a))
			continue;
		if (kc_net_addr_parse(a, &na, err) < 0)
			return -1;
		snprintf(what, sizeof(what), "add %s to %s", a, name);
		if (kc_nl_addr(&m, 3, true, ifindex, &na, err) < 0 ||
		    kc_netlink_send(&m, what, err) < 0)
			return -1;
	}
	return 0;
}
