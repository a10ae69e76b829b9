/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostfw.c - the host firewall's file, its loading through libnftables,
 * and the confirm-or-roll-back timer (hostfw.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hostfw.h"
#include "hostfw_render.h"
#include "io.h"
#include "json_util.h"

#define PATH_MAX_LEN	  1024
#define ENDPOINT_HOST_MAX 64

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; wakes the timer */
	char file[PATH_MAX_LEN];
	kc_hostfw_log_fn log;
	void *log_opaque;
	json_t *policy;	     /* the confirmed policy, NULL if none */
	json_t *pending;     /* the policy waiting for its confirmation */
	json_t *peers;	     /* from host.firewall.peers (array) */
	json_t *servers;     /* from the link's endpoints (array) */
	uint64_t pending_id; /* counts applies that wait */
	struct timespec deadline;
	const char *state; /* none, applied, pending, confirmed, rolled_back */
	char last_error[KC_ERROR_MSG_MAX];
	pthread_t timer;
	bool timer_started, timer_running, stopping;
} fw = {.lock = PTHREAD_MUTEX_INITIALIZER, .file = KC_HOSTFW_DEFAULT_FILE, .state = "none"};

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;

static void cond_init(void)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fw.cond, &attr);
	pthread_condattr_destroy(&attr);
}

static void fw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fw_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (!fw.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fw.log(line, fw.log_opaque);
}

/* ---- files ---- */

static void side_path(char *out, size_t size, const char *suffix)
{
	snprintf(out, size, "%s%s", fw.file, suffix);
}

/* Mode 0600: the policy names the cluster's addresses. */
static int file_replace(const char *path, const char *text, struct kc_error *err)
{
	return kc_file_replace(path, text, 0600, err);
}

/* <file>.json: what re-rendering needs after a restart. */
static int state_save(struct kc_error *err)
{
	char path[PATH_MAX_LEN + 8];
	side_path(path, sizeof(path), ".json");
	_cleanup_json_ json_t *j = json_pack("{s:O?,s:O?,s:O?}", "policy", fw.policy, "peers",
					     fw.peers, "servers", fw.servers);
	_cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	if (!text)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return file_replace(path, text, err);
}

static void state_load(void)
{
	char path[PATH_MAX_LEN + 8];
	side_path(path, sizeof(path), ".json");
	_cleanup_json_ json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return;
	json_t *p = json_object_get(j, "policy");
	json_t *s = json_object_get(j, "servers"), *pe = json_object_get(j, "peers");
	/* Saved as null when there were none. */
	s = json_is_array(s) ? s : NULL;
	pe = json_is_array(pe) ? pe : NULL;
	_cleanup_free_ char *probe = NULL;
	/* Only what still renders: a bad file must not poison later changes. */
	if (json_is_object(p) && kc_hostfw_render(p, s, pe, &probe, NULL) == 0) {
		json_decref(fw.policy);
		fw.policy = json_incref(p);
	}
	if (s && !fw.servers)
		fw.servers = json_incref(s);
	if (pe) {
		json_decref(fw.peers);
		fw.peers = json_incref(pe);
	}
}

/* ---- libnftables ---- */

/* Runs nft on a file or on text; nft's own message on failure (first
 * lines only: it quotes the offending line). */
static int nft_run(const char *file, const char *text, char **ret_out, struct kc_error *err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot create an nftables context");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int rc = file ? nft_run_cmd_from_filename(ctx, file) : nft_run_cmd_from_buffer(ctx, text);
	if (rc != 0) {
		const char *msg = nft_ctx_get_error_buffer(ctx);
		kc_error_set(err, KC_ERR_HYPERVISOR, "nft %s failed: %s", file ? file : "command",
			     msg && *msg ? msg : "(no message)");
	} else if (ret_out) {
		const char *out = nft_ctx_get_output_buffer(ctx);
		if (!(*ret_out = strdup(out ? out : "")))
			rc = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	nft_ctx_free(ctx);
	return rc == 0 ? 0 : -1;
}

/* The table as the kernel has it (with counters), NULL if not loaded. */
static char *table_list(void)
{
	char *out = NULL;
	struct kc_error e = {0};
	if (nft_run(NULL, "list table inet " KC_HOSTFW_TABLE, &out, &e) < 0)
		return NULL;
	return out;
}

/* ---- the state machine, under fw.lock ---- */

static int render(const json_t *policy, char **ret, struct kc_error *err)
{
	return kc_hostfw_render(policy, fw.servers, fw.peers, ret, err);
}

static int pending_path(char *out, size_t size)
{
	side_path(out, size, ".pending");
	return 0;
}

/* Back to the confirmed ruleset (or to no table).  The pending file goes. */
static void rollback_locked(const char *why)
{
	char pend[PATH_MAX_LEN + 16];
	struct kc_error e = {0};
	pending_path(pend, sizeof(pend));
	unlink(pend);
	int rc = fw.policy && access(fw.file, F_OK) == 0
			 ? nft_run(fw.file, NULL, NULL, &e)
			 : nft_run(NULL, kc_hostfw_render_remove(), NULL, &e);
	json_decref(fw.pending);
	fw.pending = NULL;
	fw.state = "rolled_back";
	if (rc < 0) {
		snprintf(fw.last_error, sizeof(fw.last_error), "%s", e.message);
		fw_log("host firewall: rollback (%s) failed: %s", why, e.message);
	} else {
		fw_log("host firewall: change %llu rolled back (%s); %s",
		       (unsigned long long)fw.pending_id, why,
		       fw.policy ? "the confirmed ruleset is loaded again" : "table removed");
	}
}

static void *timer_main(void *arg)
{
	pthread_mutex_lock(&fw.lock);
	while (!fw.stopping && fw.pending) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > fw.deadline.tv_sec ||
		    (now.tv_sec == fw.deadline.tv_sec && now.tv_nsec >= fw.deadline.tv_nsec)) {
			rollback_locked("not confirmed in time");
			break;
		}
		pthread_cond_timedwait(&fw.cond, &fw.lock, &fw.deadline);
	}
	fw.timer_running = false;
	pthread_mutex_unlock(&fw.lock);
	return NULL;
}

static int timer_arm_locked(unsigned confirm_s, struct kc_error *err)
{
	clock_gettime(CLOCK_MONOTONIC, &fw.deadline);
	fw.deadline.tv_sec += confirm_s;
	if (fw.timer_running) {
		pthread_cond_broadcast(&fw.cond);
		return 0;
	}
	/* A timer that ended has nothing left to do under the lock. */
	if (fw.timer_started)
		pthread_join(fw.timer, NULL);
	fw.timer_started = false;
	if (pthread_create(&fw.timer, NULL, timer_main, NULL) != 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot start the confirmation timer");
	fw.timer_started = fw.timer_running = true;
	return 0;
}

/* Writes `text` as the pending file and loads it: a text nft refuses
 * changes nothing (nft applies a file as one transaction). */
static int load_pending(const char *text, struct kc_error *err)
{
	char pend[PATH_MAX_LEN + 16];
	pending_path(pend, sizeof(pend));
	if (file_replace(pend, text, err) < 0)
		return -1;
	if (nft_run(pend, NULL, NULL, err) < 0) {
		unlink(pend);
		return -1;
	}
	return 0;
}

/* The pending file becomes the file: the change is kept for restarts. */
static int commit_pending(json_t *policy, struct kc_error *err)
{
	char pend[PATH_MAX_LEN + 16];
	pending_path(pend, sizeof(pend));
	if (rename(pend, fw.file) < 0)
		return kc_error_set(err, KC_ERR_INTERNAL, "cannot rename %s: %s", pend,
				    strerror(errno));
	kc_fsync_parent(fw.file);
	json_decref(fw.policy);
	fw.policy = json_incref(policy);
	return state_save(err);
}

/* After the address sets changed: both files again, the live one loaded. */
static int rerender_locked(struct kc_error *err)
{
	_cleanup_free_ char *text = NULL, *ptext = NULL;
	char pend[PATH_MAX_LEN + 16];
	if (fw.policy &&
	    (render(fw.policy, &text, err) < 0 || file_replace(fw.file, text, err) < 0))
		return -1;
	if (fw.pending) {
		pending_path(pend, sizeof(pend));
		if (render(fw.pending, &ptext, err) < 0 || file_replace(pend, ptext, err) < 0 ||
		    nft_run(pend, NULL, NULL, err) < 0)
			return -1;
	} else if (fw.policy && nft_run(fw.file, NULL, NULL, err) < 0) {
		return -1;
	}
	return fw.policy || fw.pending ? state_save(err) : 0;
}

/* ---- API ---- */

int kc_hostfw_configure(const struct kc_config *cfg, struct kc_error *err)
{
	const char *f = kc_config_get(cfg, "firewall.file", KC_HOSTFW_DEFAULT_FILE);
	if (f[0] != '/' || strlen(f) >= PATH_MAX_LEN - 32 || strstr(f, "/../"))
		return kc_error_set(
			err, KC_ERR_INVALID,
			"firewall.file must be an absolute path (at most %d characters)",
			PATH_MAX_LEN - 32);
	pthread_mutex_lock(&fw.lock);
	snprintf(fw.file, sizeof(fw.file), "%s", f);
	pthread_mutex_unlock(&fw.lock);
	return 0;
}

int kc_hostfw_start(kc_hostfw_log_fn log, void *opaque, struct kc_error *err)
{
	char pend[PATH_MAX_LEN + 16];
	int rc = 0;
	pthread_once(&cond_once, cond_init);
	pthread_mutex_lock(&fw.lock);
	fw.log = log;
	fw.log_opaque = opaque;
	fw.stopping = false;
	pending_path(pend, sizeof(pend));
	if (unlink(pend) == 0)
		fw_log("host firewall: %s was never confirmed: not loaded (rolled back)", pend);
	state_load();
	if (access(fw.file, F_OK) == 0) {
		rc = nft_run(fw.file, NULL, NULL, err);
		fw.state = rc == 0 ? "applied" : "none";
		if (rc == 0)
			fw_log("host firewall: %s loaded (table inet %s)", fw.file,
			       KC_HOSTFW_TABLE);
	}
	pthread_mutex_unlock(&fw.lock);
	return rc;
}

void kc_hostfw_stop(void)
{
	pthread_once(&cond_once, cond_init);
	pthread_mutex_lock(&fw.lock);
	fw.stopping = true;
	if (fw.pending)
		rollback_locked("the agent stops");
	pthread_cond_broadcast(&fw.cond);
	bool join = fw.timer_started;
	fw.timer_started = false;
	pthread_mutex_unlock(&fw.lock);
	if (join)
		pthread_join(fw.timer, NULL);
	pthread_mutex_lock(&fw.lock);
	json_decref(fw.policy);
	json_decref(fw.peers);
	json_decref(fw.servers);
	fw.policy = fw.peers = fw.servers = NULL;
	fw.log = NULL;
	pthread_mutex_unlock(&fw.lock);
}

/* "host:port" or "[v6]:port" -> the host part if it is an IP literal. */
static bool endpoint_ip(const char *ep, char *out, size_t size)
{
	const char *start = ep, *end;
	if (*ep == '[') {
		start = ep + 1;
		end = strchr(start, ']');
	} else {
		end = strrchr(ep, ':');
	}
	if (!end || end <= start || (size_t)(end - start) >= size)
		return false;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	unsigned char buf[16];
	return inet_pton(AF_INET, out, buf) == 1 || inet_pton(AF_INET6, out, buf) == 1;
}

void kc_hostfw_link_endpoints(const char *const *endpoints, size_t n)
{
	_cleanup_json_ json_t *list = json_array();
	char ip[ENDPOINT_HOST_MAX];
	if (!list)
		return;
	for (size_t i = 0; i < n && i < KC_HOSTFW_ADDRS_MAX; i++)
		if (endpoints[i] && endpoint_ip(endpoints[i], ip, sizeof(ip)))
			json_array_append_new(list, json_string(ip));
	pthread_mutex_lock(&fw.lock);
	if (!fw.servers || !json_equal(fw.servers, list)) {
		struct kc_error e = {0};
		json_decref(fw.servers);
		fw.servers = json_incref(list);
		if ((fw.policy || fw.pending) && rerender_locked(&e) < 0) {
			snprintf(fw.last_error, sizeof(fw.last_error), "%s", e.message);
			fw_log("host firewall: cannot update the servers set: %s", e.message);
		}
	}
	pthread_mutex_unlock(&fw.lock);
}

int kc_hostfw_apply(const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"policy", "confirm_s", NULL};
	uint64_t confirm_s = 0;
	_cleanup_free_ char *text = NULL;
	json_t *policy = json_object_get(args, "policy");
	if (kc_json_check_keys(args, keys, "host.firewall.apply", err) < 0 ||
	    kc_json_get_uint(args, "confirm_s", false, 0, KC_HOSTFW_CONFIRM_MAX, &confirm_s, err) <
		    0)
		return -1;
	if (!json_is_object(policy))
		return kc_error_set(err, KC_ERR_INVALID, "\"policy\" must be an object");
	pthread_once(&cond_once, cond_init);
	pthread_mutex_lock(&fw.lock);
	int rc = render(policy, &text, err);
	if (rc == 0)
		rc = load_pending(text, err);
	if (rc == 0 && confirm_s == 0) {
		rc = commit_pending(policy, err);
		json_decref(fw.pending);
		fw.pending = NULL;
		pthread_cond_broadcast(&fw.cond);
		fw.state = "applied";
	} else if (rc == 0) {
		json_decref(fw.pending);
		fw.pending = json_incref(policy);
		fw.pending_id++;
		fw.state = "pending";
		rc = timer_arm_locked((unsigned)confirm_s, err);
		if (rc < 0)
			rollback_locked("no timer");
	}
	if (rc == 0)
		*ret = fw.pending ? json_pack("{s:s,s:I,s:I}", "state", fw.state, "pending_id",
					      (json_int_t)fw.pending_id, "confirm_s",
					      (json_int_t)confirm_s)
				  : json_pack("{s:s}", "state", fw.state);
	pthread_mutex_unlock(&fw.lock);
	if (rc == 0 && !*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return rc;
}

int kc_hostfw_confirm(const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"pending_id", NULL};
	uint64_t id = 0;
	pthread_once(&cond_once, cond_init);
	if (kc_json_check_keys(args, keys, "host.firewall.confirm", err) < 0 ||
	    kc_json_get_uint(args, "pending_id", false, 1, UINT64_MAX >> 12, &id, err) < 0)
		return -1;
	pthread_mutex_lock(&fw.lock);
	int rc = 0;
	if (!fw.pending)
		rc = kc_error_set(err, KC_ERR_CONFLICT,
				  "no host firewall change waits for a confirmation (state %s)",
				  fw.state);
	else if (id && id != fw.pending_id)
		rc = kc_error_set(err, KC_ERR_CONFLICT,
				  "change %llu is no longer the pending one (%llu is)",
				  (unsigned long long)id, (unsigned long long)fw.pending_id);
	if (rc == 0) {
		_cleanup_json_ json_t *p = fw.pending;
		fw.pending = NULL;
		rc = commit_pending(p, err);
		fw.state = rc == 0 ? "confirmed" : fw.state;
		pthread_cond_broadcast(&fw.cond);
		if (rc < 0)
			rollback_locked("cannot keep it");
	}
	if (rc == 0 && !(*ret = json_pack("{s:s}", "state", fw.state)))
		rc = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	pthread_mutex_unlock(&fw.lock);
	return rc;
}

int kc_hostfw_peers(const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {"peers", NULL};
	json_t *peers = json_object_get(args, "peers");
	_cleanup_json_ json_t *empty = json_object();
	_cleanup_free_ char *probe = NULL;
	if (kc_json_check_keys(args, keys, "host.firewall.peers", err) < 0)
		return -1;
	if (!json_is_array(peers))
		return kc_error_set(err, KC_ERR_INVALID, "\"peers\" must be an array of addresses");
	/* Validates the addresses (and their number) as the renderer will. */
	if (kc_hostfw_render(empty, NULL, peers, &probe, err) < 0)
		return -1;
	pthread_mutex_lock(&fw.lock);
	json_t *old = fw.peers;
	fw.peers = json_copy(peers);
	int rc = rerender_locked(err);
	if (rc < 0) {
		json_decref(fw.peers);
		fw.peers = old;
	} else {
		json_decref(old);
		if (!(*ret = json_pack("{s:s}", "state", fw.state)))
			rc = kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	}
	pthread_mutex_unlock(&fw.lock);
	return rc;
}

int kc_hostfw_show(const json_t *args, json_t **ret, struct kc_error *err)
{
	static const char *const keys[] = {NULL};
	if (kc_json_check_keys(args, keys, "host.firewall.show", err) < 0)
		return -1;
	_cleanup_free_ char *table = table_list();
	pthread_mutex_lock(&fw.lock);
	json_int_t left = 0;
	if (fw.pending) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = fw.deadline.tv_sec - now.tv_sec;
	}
	*ret = json_pack("{s:s,s:s,s:O?,s:O?,s:I,s:I,s:O?,s:O?,s:b,s:s?,s:s?}", "file", fw.file,
			 "state", fw.state, "policy", fw.policy, "pending", fw.pending,
			 "pending_id", (json_int_t)(fw.pending ? fw.pending_id : 0), "confirm_in_s",
			 left < 0 ? 0 : left, "servers", fw.servers, "peers", fw.peers, "loaded",
			 table != NULL, "table", table, "last_error",
			 fw.last_error[0] ? fw.last_error : NULL);
	pthread_mutex_unlock(&fw.lock);
	if (!*ret)
		return kc_error_set(err, KC_ERR_INTERNAL, "out of memory");
	return 0;
}

int kc_hostfw_check(char *why, size_t size)
{
	char file[PATH_MAX_LEN];
	pthread_mutex_lock(&fw.lock);
	snprintf(file, sizeof(file), "%s", fw.file);
	pthread_mutex_unlock(&fw.lock);
	if (access(file, F_OK) != 0) {
		snprintf(why, size,
			 "no host firewall policy (%s absent): kvmcloud filters no inbound traffic",
			 file);
		return 0;
	}
	_cleanup_free_ char *table = table_list();
	if (!table) {
		snprintf(why, size,
			 "%s exists but table inet %s is not loaded (is the agent running?)", file,
			 KC_HOSTFW_TABLE);
		return 1;
	}
	snprintf(why, size, "table inet %s loaded (policy drop; kept in %s)", KC_HOSTFW_TABLE,
		 file);
	return 0;
}
