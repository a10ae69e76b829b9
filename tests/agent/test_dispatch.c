/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dispatch - kc_agent_dispatch() against the real libvirtd: every
 * row's argument validation (unknown, missing, ill-typed, out of range ->
 * invalid_argument before anything runs; valid args reach the agent, shown
 * by its own answer, e.g. not_found), then one VM through the table from
 * create to delete.  Everything is named kclnk-<pid>-d-*.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "json_util.h"
#include "vm_fixture.h"
#include "tap.h"

static struct vm_fixture fx;
static char vm[128], none[128];

/* args_fmt with "%s" replaced by the test VM's name and "NONE" by a name
 * that does not exist; "" stands for NULL args. */
static int call(struct kc_agent *a, const char *op, const char *args_fmt, json_t **ret,
		struct kc_error *err)
{
	char buf[1024];
	size_t n = 0;
	for (const char *p = args_fmt; *p && n < sizeof(buf) - 200;) {
		const char *with = strncmp(p, "%s", 2) == 0	? vm
				   : strncmp(p, "NONE", 4) == 0 ? none
								: NULL;
		if (with) {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", with);
			p += with == vm ? 2 : 4;
		} else {
			buf[n++] = *p++;
		}
	}
	buf[n] = '\0';
	json_error_t jerr;
	_cleanup_json_ json_t *args = args_fmt[0] ? json_loads(buf, JSON_DECODE_ANY, &jerr) : NULL;
	if (args_fmt[0] && !args) {
		printf("# bad test args %s: %s\n", buf, jerr.text);
		return -2;
	}
	json_t *result = NULL;
	int r = kc_agent_dispatch(a, op, args, &result, err);
	if (ret)
		*ret = result;
	else
		json_decref(result);
	return r;
}

static void test_validation(struct kc_agent *a)
{
	static const struct {
		const char *op, *args;
		enum kc_errcode code; /* KC_OK: succeeds */
	} cases[] = {
		{"vm.nope", "{}", KC_ERR_INVALID},
		{"", "{}", KC_ERR_INVALID},
		{"VM.LIST", "{}", KC_ERR_INVALID},
		{"vm.list", "[]", KC_ERR_INVALID},
		{"vm.list", "\"x\"", KC_ERR_INVALID},
		{"vm.list", "", KC_OK}, /* NULL args is {} */
		{"host.facts", "{}", KC_OK},
		{"host.facts", "{\"x\":1}", KC_ERR_INVALID},
		{"host.check", "{\"probe_kvm\":false}", KC_OK},
		{"host.check", "{}", KC_OK},
		{"host.check", "{\"probe_kvm\":\"yes\"}", KC_ERR_INVALID},
		{"host.check", "{\"probe\":true}", KC_ERR_INVALID},
		{"host.stats", "{}", KC_OK},
		{"host.stats", "{\"vm\":\"x\"}", KC_ERR_INVALID},
		{"vm.stats", "{}", KC_OK},
		{"vm.stats", "{\"a\":1}", KC_ERR_INVALID},
		{"vm.list", "{}", KC_OK},
		{"vm.list", "{\"all\":true}", KC_ERR_INVALID},
		{"vm.show", "{}", KC_ERR_INVALID},
		{"vm.show", "{\"name\":5}", KC_ERR_INVALID},
		{"vm.show", "{\"name\":\"../etc\"}", KC_ERR_INVALID},
		{"vm.show", "{\"name\":\"\"}", KC_ERR_INVALID},
		{"vm.show", "{\"name\":\"NONE\",\"x\":1}", KC_ERR_INVALID},
		{"vm.show", "{\"name\":\"NONE\"}", KC_ERR_NOT_FOUND},
		{"vm.start", "{}", KC_ERR_INVALID},
		{"vm.start", "{\"name\":true}", KC_ERR_INVALID},
		{"vm.start", "{\"name\":\"NONE\"}", KC_ERR_NOT_FOUND},
		{"vm.reboot", "{\"name\":[]}", KC_ERR_INVALID},
		{"vm.reboot", "{\"name\":\"NONE\",\"force\":true}", KC_ERR_INVALID},
		{"vm.reboot", "{\"name\":\"NONE\"}", KC_ERR_NOT_FOUND},
		{"vm.destroy", "{\"nam\":\"NONE\"}", KC_ERR_INVALID},
		{"vm.destroy", "{\"name\":\"NONE\"}", KC_ERR_NOT_FOUND},
		{"vm.shutdown", "{\"name\":\"NONE\",\"timeout_s\":-1}", KC_ERR_INVALID},
		{"vm.shutdown", "{\"name\":\"NONE\",\"timeout_s\":3601}", KC_ERR_INVALID},
		{"vm.shutdown", "{\"name\":\"NONE\",\"timeout_s\":\"5\"}", KC_ERR_INVALID},
		{"vm.shutdown", "{\"name\":\"NONE\",\"timeout_s\":1.5}", KC_ERR_INVALID},
		{"vm.shutdown", "{\"name\":\"NONE\",\"force\":\"no\"}", KC_ERR_INVALID},
		{"vm.shutdown", "{\"timeout_s\":5}", KC_ERR_INVALID},
		{"vm.shutdown", "{\"name\":\"NONE\",\"timeout_s\":0,\"force\":true}",
		 KC_ERR_NOT_FOUND},
		{"vm.delete", "{\"name\":\"NONE\",\"with_disks\":1}", KC_ERR_INVALID},
		{"vm.delete", "{\"name\":\"NONE\",\"keep_disks\":true}", KC_ERR_INVALID},
		{"vm.delete", "{\"with_disks\":true}", KC_ERR_INVALID},
		{"vm.delete", "{\"name\":\"NONE\",\"with_disks\":true}", KC_ERR_NOT_FOUND},
		{"vm.log", "{\"name\":\"NONE\",\"max\":0}", KC_ERR_INVALID},
		{"vm.log", "{\"name\":\"NONE\",\"max\":524289}", KC_ERR_INVALID},
		{"vm.log", "{\"name\":\"NONE\",\"offset\":-1}", KC_ERR_INVALID},
		{"vm.log", "{\"name\":\"NONE\",\"offset\":\"0\"}", KC_ERR_INVALID},
		{"vm.log", "{\"name\":\"NONE\",\"tail\":10}", KC_ERR_INVALID},
		{"vm.log", "{\"offset\":0}", KC_ERR_INVALID},
		{"vm.log", "{\"name\":\"NONE\",\"offset\":0,\"max\":524288}", KC_ERR_NOT_FOUND},
		{"vm.create", "{}", KC_ERR_INVALID},
		{"vm.create", "{\"name\":\"NONE\",\"memory_mib\":\"64\",\"image\":\"kctest\"}",
		 KC_ERR_INVALID},
		{"vm.create",
		 "{\"request\":{\"name\":\"NONE\",\"memory_mib\":64,\"image\":\"kctest\"}}",
		 KC_ERR_INVALID},
		{"vm.create", "{\"name\":\"NONE\",\"memory_mib\":64,\"image\":\"kctest\",\"x\":1}",
		 KC_ERR_INVALID},
		{"vm.create", "{\"name\":\"a/b\",\"memory_mib\":64,\"image\":\"kctest\"}",
		 KC_ERR_INVALID},
		{"vm.create", "{\"name\":\"NONE\",\"memory_mib\":64,\"image\":\"nosuchimage\"}",
		 KC_ERR_NOT_FOUND},
	};
	for (size_t i = 0; i < KC_ARRAY_SIZE(cases); i++) {
		struct kc_error err = {0};
		int r = call(a, cases[i].op, cases[i].args, NULL, &err);
		bool good = cases[i].code == KC_OK ? r == 0 : r == -1 && err.code == cases[i].code;
		ok(good, "%s %s -> %s (%s)", cases[i].op[0] ? cases[i].op : "\"\"", cases[i].args,
		   kc_errcode_name(cases[i].code), r == 0 ? "ok" : err.message);
	}
	struct kc_error err = {0};
	json_t *r = NULL;
	ok(kc_agent_dispatch(a, NULL, NULL, &r, &err) == -1 && err.code == KC_ERR_INVALID,
	   "NULL op is invalid");
	ok(kc_agent_op_exists("vm.create") && !kc_agent_op_exists("vm.console"), "op table lookup");
}

static int b64val(char c)
{
	const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(tab, c) : NULL;
	return p ? (int)(p - tab) : -1;
}

/* Decodes strict base64 into out; returns the length or -1. */
static long unb64(const char *in, unsigned char *out, size_t max)
{
	size_t len = strlen(in), n = 0;
	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : b64val(in[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
			return -1;
		unsigned w = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		int pad = (in[i + 3] == '=') + (in[i + 2] == '=');
		for (int k = 0; k < 3 - pad && n < max; k++)
			out[n++] = (unsigned char)(w >> (16 - 8 * k));
	}
	return (long)n;
}

/* vm.log through the table equals the agent's own read, for lengths that
 * need every kind of base64 padding. */
static void test_log(struct kc_agent *a)
{
	struct kc_error err = {0};
	uint64_t next = 0, size = 0;
	for (int i = 0; i < 150 && size < 64; i++) {
		char *buf = NULL;
		size_t len = 0;
		if (kc_agent_vm_log_read(a, vm, 0, 1, &buf, &len, &next, &size, &err) < 0)
			break;
		free(buf);
		if (size < 64)
			usleep(200 * 1000);
	}
	ok(size >= 64, "the guest wrote %llu bytes to its serial log", (unsigned long long)size);
	for (int max = 16; max <= 18; max++) {
		char args[64];
		snprintf(args, sizeof(args), "{\"name\":\"%%s\",\"offset\":3,\"max\":%d}", max);
		json_t *r = NULL;
		int rc = call(a, "vm.log", args, &r, &err);
		const char *b64 = json_string_value(json_object_get(r, "data_base64"));
		unsigned char got[64];
		long n = b64 ? unb64(b64, got, sizeof(got)) : -1;
		char *want = NULL;
		size_t wlen = 0;
		uint64_t wnext = 0, wsize = 0;
		kc_agent_vm_log_read(a, vm, 3, (size_t)max, &want, &wlen, &wnext, &wsize, &err);
		ok(rc == 0 && n == max && want && wlen == (size_t)max &&
			   memcmp(got, want, wlen) == 0 &&
			   json_integer_value(json_object_get(r, "next")) == 3 + max &&
			   json_integer_value(json_object_get(r, "size")) >= (json_int_t)wsize,
		   "vm.log max %d: %s decodes to the log's bytes %s", max, b64 ? b64 : "-",
		   err.message);
		free(want);
		json_decref(r);
	}
}

static void test_lifecycle(struct kc_agent *a)
{
	struct kc_error err = {0};
	json_t *r = NULL;
	int rc = call(a, "vm.create",
		      "{\"name\":\"%s\",\"memory_mib\":128,\"image\":\"kctest\",\"start\":false}",
		      &r, &err);
	ok(rc == 0 && strcmp(json_string_value(json_object_get(r, "name")), vm) == 0,
	   "vm.create makes %s %s", vm, err.message);
	json_decref(r);
	r = NULL;
	rc = call(a, "vm.show", "{\"name\":\"%s\"}", &r, &err);
	ok(rc == 0 && json_is_string(json_object_get(r, "state")), "vm.show: %s",
	   json_string_value(json_object_get(r, "state")));
	json_decref(r);
	r = NULL;
	rc = call(a, "vm.start", "{\"name\":\"%s\"}", &r, &err);
	ok(rc == 0 && json_is_object(r) && json_object_size(r) == 0, "vm.start answers {} %s",
	   err.message);
	json_decref(r);
	r = NULL;
	test_log(a);
	rc = call(a, "vm.list", "{}", &r, &err);
	bool listed = false;
	size_t i;
	json_t *it;
	json_array_foreach(r, i, it) listed |=
		strcmp(json_string_value(json_object_get(it, "name")), vm) == 0;
	ok(rc == 0 && listed, "vm.list has it");
	json_decref(r);
	r = NULL;
	rc = call(a, "vm.delete", "{\"name\":\"%s\",\"with_disks\":true}", &r, &err);
	ok(rc == -1 && err.code == KC_ERR_CONFLICT, "vm.delete of a running VM: conflict (%s)",
	   err.message);
	kc_error_clear(&err);
	rc = call(a, "vm.shutdown", "{\"name\":\"%s\",\"timeout_s\":0,\"force\":true}", &r, &err);
	ok(rc == 0 && json_is_true(json_object_get(r, "forced")) && json_object_size(r) == 1,
	   "vm.shutdown with force at once: {\"forced\": true} %s", err.message);
	json_decref(r);
	r = NULL;
	rc = call(a, "vm.delete", "{\"name\":\"%s\",\"with_disks\":true}", &r, &err);
	ok(rc == 0 && json_object_size(r) == 0, "vm.delete answers {} %s", err.message);
	json_decref(r);
	r = NULL;
	rc = call(a, "vm.show", "{\"name\":\"%s\"}", &r, &err);
	ok(rc == -1 && err.code == KC_ERR_NOT_FOUND, "gone afterwards");
}

int main(void)
{
	const char *skip = vm_fixture_init(&fx, "kclnk", "d");
	if (skip) {
		printf("1..0 # SKIP %s\n", skip);
		vm_fixture_cleanup(&fx);
		return 0;
	}
	snprintf(vm, sizeof(vm), "%s-vm1", fx.prefix);
	snprintf(none, sizeof(none), "%s-none", fx.prefix);
	struct kc_error err = {0};
	struct kc_agent *a = vm_fixture_agent(&fx, NULL, &err);
	ok(a != NULL, "agent starts %s", err.message);
	if (a) {
		test_validation(a);
		test_lifecycle(a);
		kc_agent_free(a);
	}
	vm_fixture_cleanup(&fx);
	return tap_done();
}
