/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for vmspec.h: strict parsing of the VM request, round trip. */
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "kctest.h"
#include "vmspec.h"

/* Parses a JSON text; the test fails on a syntax error in the test itself. */
static json_t *J(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!j)
		kc_test_fail(__FILE__, __LINE__, "bad test JSON: %s: %s", jerr.text, text);
	return j;
}

/* Expects kc_vm_request_from_json to reject `text` with KC_ERR_INVALID and
 * a message containing `needle`. */
static void check_reject(const char *text, const char *needle, int line)
{
	_cleanup_json_ json_t *j = J(text);
	struct kc_vm_request r;
	struct kc_error err = {0};

	memset(&r, 0x5a, sizeof(r));
	if (!j)
		return;
	if (kc_vm_request_from_json(j, &r, &err) == 0) {
		kc_test_fail(__FILE__, line, "accepted: %s", text);
		kc_vm_request_clear(&r);
		return;
	}
	if (err.code != KC_ERR_INVALID)
		kc_test_fail(__FILE__, line, "code %s, not invalid_argument: %s",
			     kc_errcode_name(err.code), err.message);
	if (needle && !strstr(err.message, needle))
		kc_test_fail(__FILE__, line, "message \"%s\" lacks \"%s\"", err.message, needle);
	/* ret untouched on failure: still our fill pattern. */
	if (r.vcpus != 0x5a5a5a5aU)
		kc_test_fail(__FILE__, line, "ret was modified on failure");
}
#define REJECT(text, needle) check_reject((text), (needle), __LINE__)

static bool parse(const char *text, struct kc_vm_request *r)
{
	_cleanup_json_ json_t *j = J(text);
	struct kc_error err = {0};
	if (!j)
		return false;
	if (kc_vm_request_from_json(j, r, &err) < 0) {
		kc_test_diag("rejected: %s: %s", text, err.message);
		return false;
	}
	return true;
}

KC_TEST(defaults)
{
	struct kc_vm_request r;
	if (!KC_CHECK(parse("{\"name\":\"web1\",\"memory_mib\":256,\"image\":\"kctest\"}", &r)))
		return;
	KC_CHECK_STREQ(r.name, "web1");
	KC_CHECK_INT(r.vcpus, 1);
	KC_CHECK_INT(r.memory_mib, 256);
	KC_CHECK_STREQ(r.image, "kctest");
	KC_CHECK_INT(r.disk_gib, 0);
	KC_CHECK_INT(r.n_data_disks, 0);
	KC_CHECK_STREQ(r.iso, "");
	KC_CHECK_INT(r.n_nics, 1);
	KC_CHECK_INT(r.nics[0].type, KC_NIC_USER);
	KC_CHECK_STREQ(r.nics[0].source, "");
	KC_CHECK_STREQ(r.nics[0].mac, "");
	KC_CHECK_INT(r.n_boot, 1);
	KC_CHECK_INT(r.boot[0], KC_BOOT_HD);
	KC_CHECK_INT(r.graphics, KC_GRAPHICS_NONE);
	KC_CHECK(r.autostart == false);
	KC_CHECK(r.start == true);
	KC_CHECK_STREQ(r.hostname, "web1");
	KC_CHECK(r.user_data == NULL);
	kc_vm_request_clear(&r);
}

KC_TEST(iso_only_boots_cdrom_first)
{
	struct kc_vm_request r;
	if (!KC_CHECK(parse("{\"name\":\"inst\",\"memory_mib\":512,\"iso\":\"debian-12\","
			    "\"disk_gib\":8}",
			    &r)))
		return;
	KC_CHECK_STREQ(r.iso, "debian-12");
	KC_CHECK_STREQ(r.image, "");
	KC_CHECK_INT(r.n_boot, 2);
	KC_CHECK_INT(r.boot[0], KC_BOOT_CDROM);
	KC_CHECK_INT(r.boot[1], KC_BOOT_HD);
	kc_vm_request_clear(&r);
}

KC_TEST(hostname_default_when_name_is_no_hostname)
{
	struct kc_vm_request r;
	if (!KC_CHECK(parse("{\"name\":\"db_2\",\"memory_mib\":64,\"image\":\"i\"}", &r)))
		return;
	/* '_' is not allowed in a hostname; the parser picks a valid one. */
	struct kc_error err = {0};
	KC_CHECK_INT(kc_hostname_validate(r.hostname, &err), 0);
	KC_CHECK_STREQ(r.hostname, "db-2");
	kc_vm_request_clear(&r);
	/* Still no host name after the mapping ("a-" ends in '-'): the fallback. */
	if (!KC_CHECK(parse("{\"name\":\"a_\",\"memory_mib\":64,\"image\":\"i\"}", &r)))
		return;
	KC_CHECK_STREQ(r.hostname, "kcvm");
	kc_vm_request_clear(&r);
}

KC_TEST(full_request)
{
	struct kc_vm_request r;
	const char *text =
		"{\"name\":\"full\",\"vcpus\":64,\"memory_mib\":32,\"image\":\"deb12\","
		"\"disk_gib\":20,\"data_disks_gib\":[1,2,3,16384],\"iso\":\"tools\","
		"\"nics\":[{\"type\":\"user\"},{\"type\":\"network\",\"source\":\"default\"},"
		"{\"type\":\"bridge\",\"source\":\"cloudbr0\",\"mac\":\"52:54:00:ab:cd:ef\"},"
		"{\"type\":\"user\",\"mac\":\"52:54:00:00:00:09\"}],"
		"\"boot\":[\"network\",\"cdrom\",\"hd\"],\"graphics\":\"vnc\",\"autostart\":true,"
		"\"start\":false,\"hostname\":\"full.example.org\",\"user_data\":\"#cloud-"
		"config\\n\"}";
	if (!KC_CHECK(parse(text, &r)))
		return;
	KC_CHECK_INT(r.vcpus, 64);
	KC_CHECK_INT(r.memory_mib, 32);
	KC_CHECK_INT(r.disk_gib, 20);
	KC_CHECK_INT(r.n_data_disks, 4);
	KC_CHECK_INT(r.data_disks_gib[3], 16384);
	KC_CHECK_INT(r.n_nics, 4);
	KC_CHECK_INT(r.nics[1].type, KC_NIC_NETWORK);
	KC_CHECK_STREQ(r.nics[1].source, "default");
	KC_CHECK_INT(r.nics[2].type, KC_NIC_BRIDGE);
	KC_CHECK_STREQ(r.nics[2].mac, "52:54:00:ab:cd:ef");
	KC_CHECK_INT(r.n_boot, 3);
	KC_CHECK_INT(r.boot[0], KC_BOOT_NETWORK);
	KC_CHECK_INT(r.graphics, KC_GRAPHICS_VNC);
	KC_CHECK(r.autostart);
	KC_CHECK(!r.start);
	KC_CHECK_STREQ(r.hostname, "full.example.org");
	KC_CHECK_STREQ(r.user_data, "#cloud-config\n");
	kc_vm_request_clear(&r);
	kc_vm_request_clear(&r); /* twice is harmless */
}

KC_TEST(rejects_missing_and_bad_names)
{
	REJECT("{\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"\",\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"a/b\",\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"..\",\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"<x>\",\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"-rf\",\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":null,\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"a\\u0000b\",\"memory_mib\":256,\"image\":\"i\"}", "name");
}

KC_TEST(rejects_unknown_keys)
{
	REJECT("{\"name\":\"a\",\"memroy_mib\":256,\"memory_mib\":256,\"image\":\"i\"}",
	       "memroy_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"user\",\"vlan\":5}]}",
	       "vlan");
}

KC_TEST(rejects_ranges)
{
	REJECT("{\"name\":\"a\",\"image\":\"i\"}", "memory_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":0,\"image\":\"i\"}", "memory_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":31,\"image\":\"i\"}", "memory_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":-1,\"image\":\"i\"}", "memory_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"vcpus\":0,\"image\":\"i\"}", "vcpus");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"vcpus\":65,\"image\":\"i\"}", "vcpus");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"disk_gib\":16385,\"image\":\"i\"}",
	       "disk_gib");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"data_disks_gib\":[0]}",
	       "data_disks_gib");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"data_disks_gib\":[1,1,1,1,1]}",
	       "data_disks_gib");
}

KC_TEST(rejects_wrong_types)
{
	REJECT("{\"name\":5,\"memory_mib\":256,\"image\":\"i\"}", "name");
	REJECT("{\"name\":\"a\",\"memory_mib\":\"256\",\"image\":\"i\"}", "memory_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":256.5,\"image\":\"i\"}", "memory_mib");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"vcpus\":true,\"image\":\"i\"}", "vcpus");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":[\"i\"]}", "image");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"nics\":{}}", "nics");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"nics\":[\"user\"]}", NULL);
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"boot\":\"hd\"}", "boot");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"boot\":[1]}", "boot");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"autostart\":\"yes\"}",
	       "autostart");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"start\":1}", "start");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"user_data\":{}}", "user_data");
	REJECT("[]", NULL);
	REJECT("\"web1\"", NULL);
}

KC_TEST(rejects_nics)
{
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"nics\":["
	       "{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"},"
	       "{\"type\":\"user\"}]}",
	       "nics");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"nics\":[{\"type\":\"tap\"}]}",
	       "type");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"nics\":[{}]}", "type");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"bridge\"}]}",
	       "source");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"bridge\",\"source\":\"br0;reboot\"}]}",
	       "source");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"user\",\"source\":\"x\"}]}",
	       "source");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"user\",\"mac\":\"52:54:00:00:00\"}]}",
	       "mac");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"user\",\"mac\":\"52-54-00-00-00-01\"}]}",
	       "mac");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"user\",\"mac\":\"01:00:5e:00:00:01\"}]}",
	       "mac");
}

KC_TEST(guest_network_nics)
{
	struct kc_vm_request r;
	if (!KC_CHECK(parse("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"nics\":["
			    "{\"network\":\"web\",\"ip\":\"10.60.0.55\"},"
			    "{\"network\":\"v200\",\"mac\":\"52:54:00:00:00:07\"}]}",
			    &r)))
		return;
	KC_CHECK_INT(r.n_nics, 2);
	KC_CHECK_STREQ(r.nics[0].network, "web");
	KC_CHECK_STREQ(r.nics[0].ip, "10.60.0.55");
	KC_CHECK_STREQ(r.nics[1].mac, "52:54:00:00:00:07");
	KC_CHECK(!r.nics[0].resolved);
	/* Back to JSON and again: the same request. */
	_cleanup_json_ json_t *j = kc_vm_request_to_json(&r);
	struct kc_vm_request r2;
	struct kc_error err = {0};
	if (KC_CHECK_INT(kc_vm_request_from_json(j, &r2, &err), 0)) {
		KC_CHECK_STREQ(r2.nics[0].network, "web");
		KC_CHECK_STREQ(r2.nics[0].ip, "10.60.0.55");
		KC_CHECK(json_object_get(json_array_get(json_object_get(j, "nics"), 0), "type") ==
			 NULL);
		kc_vm_request_clear(&r2);
	}
	kc_vm_request_clear(&r);
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"network\":\"web\",\"type\":\"bridge\"}]}",
	       "\"type\"");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"network\":\"../x\"}]}",
	       "network");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"network\":\"web\",\"ip\":\"10.60.0.256\"}]}",
	       "ip");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"type\":\"user\",\"ip\":\"10.0.0.1\"}]}",
	       "needs a \"network\"");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"nics\":[{\"network\":\"web\",\"nic_defs\":1}]}",
	       "nic_defs");
}

KC_TEST(rejects_boot_graphics_hostname)
{
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"boot\":[\"floppy\"]}", "boot");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"boot\":[\"hd\",\"hd\"]}",
	       "boot");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\","
	       "\"boot\":[\"hd\",\"cdrom\",\"network\",\"hd\"]}",
	       "boot");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"boot\":[]}", "boot");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"graphics\":\"spice\"}",
	       "graphics");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"hostname\":\"a_b\"}",
	       "hostname");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"i\",\"hostname\":\"-a\"}",
	       "hostname");
}

KC_TEST(rejects_image_and_iso)
{
	REJECT("{\"name\":\"a\",\"memory_mib\":256}", "image");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"a/b\"}", "image");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"../../etc/passwd\"}", "image");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"image\":\"/abs\"}", "image");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"iso\":\"x/y\",\"disk_gib\":1}", "ISO");
	REJECT("{\"name\":\"a\",\"memory_mib\":256,\"iso\":\"inst\"}", "disk_gib");
}

KC_TEST(user_data_limit)
{
	size_t n = KC_MAX_USER_DATA;
	char *big = malloc(n + 2);
	if (!KC_CHECK(big != NULL))
		return;
	memset(big, 'u', n + 1);
	big[n + 1] = '\0';

	json_t *o = json_pack("{s:s,s:i,s:s,s:s}", "name", "a", "memory_mib", 256, "image", "i",
			      "user_data", big);
	struct kc_vm_request r;
	struct kc_error err = {0};
	KC_CHECK_INT(kc_vm_request_from_json(o, &r, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK(strstr(err.message, "user_data") != NULL);
	json_decref(o);

	big[n] = '\0'; /* exactly at the limit is fine */
	o = json_pack("{s:s,s:i,s:s,s:s}", "name", "a", "memory_mib", 256, "image", "i",
		      "user_data", big);
	kc_error_clear(&err);
	if (KC_CHECK_INT(kc_vm_request_from_json(o, &r, &err), 0)) {
		KC_CHECK_INT(strlen(r.user_data), n);
		kc_vm_request_clear(&r);
	}
	json_decref(o);
	free(big);
}

/* to_json(from_json(x)) parses back to the same request. */
static void check_round_trip(const char *text)
{
	struct kc_vm_request a, b;
	struct kc_error err = {0};
	if (!KC_CHECK(parse(text, &a)))
		return;
	_cleanup_json_ json_t *j = kc_vm_request_to_json(&a);
	if (!KC_CHECK(j != NULL))
		goto out_a;
	if (!KC_CHECK_INT(kc_vm_request_from_json(j, &b, &err), 0)) {
		kc_test_diag("%s", err.message);
		goto out_a;
	}
	KC_CHECK_STREQ(a.name, b.name);
	KC_CHECK_INT(a.vcpus, b.vcpus);
	KC_CHECK_INT(a.memory_mib, b.memory_mib);
	KC_CHECK_STREQ(a.image, b.image);
	KC_CHECK_INT(a.disk_gib, b.disk_gib);
	KC_CHECK_INT(a.n_data_disks, b.n_data_disks);
	for (size_t i = 0; i < a.n_data_disks && i < b.n_data_disks; i++)
		KC_CHECK_INT(a.data_disks_gib[i], b.data_disks_gib[i]);
	KC_CHECK_STREQ(a.iso, b.iso);
	KC_CHECK_INT(a.n_nics, b.n_nics);
	for (size_t i = 0; i < a.n_nics && i < b.n_nics; i++) {
		KC_CHECK_INT(a.nics[i].type, b.nics[i].type);
		KC_CHECK_STREQ(a.nics[i].source, b.nics[i].source);
		KC_CHECK_STREQ(a.nics[i].mac, b.nics[i].mac);
	}
	KC_CHECK_INT(a.n_boot, b.n_boot);
	for (size_t i = 0; i < a.n_boot && i < b.n_boot; i++)
		KC_CHECK_INT(a.boot[i], b.boot[i]);
	KC_CHECK_INT(a.graphics, b.graphics);
	KC_CHECK(a.autostart == b.autostart);
	KC_CHECK(a.start == b.start);
	KC_CHECK_STREQ(a.hostname, b.hostname);
	KC_CHECK_STREQ(a.user_data, b.user_data);
	KC_CHECK_STREQ(a.pool, b.pool);
	KC_CHECK_INT(a.clone, b.clone);
	kc_vm_request_clear(&b);
out_a:
	kc_vm_request_clear(&a);
}

KC_TEST(round_trip)
{
	check_round_trip("{\"name\":\"web1\",\"memory_mib\":256,\"image\":\"kctest\"}");
	check_round_trip("{\"name\":\"inst\",\"memory_mib\":512,\"iso\":\"debian-12\","
			 "\"disk_gib\":8}");
	check_round_trip(
		"{\"name\":\"full\",\"vcpus\":3,\"memory_mib\":2048,\"image\":\"deb12\","
		"\"disk_gib\":20,\"data_disks_gib\":[1,2],\"iso\":\"tools\","
		"\"nics\":[{\"type\":\"network\",\"source\":\"default\"},"
		"{\"type\":\"bridge\",\"source\":\"cloudbr0\",\"mac\":\"52:54:00:ab:cd:ef\"}],"
		"\"boot\":[\"cdrom\",\"hd\"],\"graphics\":\"vnc\",\"autostart\":true,"
		"\"start\":false,\"hostname\":\"h1\",\"user_data\":\"#cloud-config\\nx: "
		"\\\"y\\\"\\n\"}");
	check_round_trip("{\"name\":\"c\",\"memory_mib\":64,\"image\":\"t\",\"pool\":\"shared\","
			 "\"clone\":\"full\"}");
}

KC_TEST(pool_and_clone)
{
	struct kc_vm_request r;
	if (!KC_CHECK(parse("{\"name\":\"c1\",\"memory_mib\":64,\"image\":\"t\"}", &r)))
		return;
	KC_CHECK_STREQ(r.pool, "default");
	KC_CHECK_INT(r.clone, KC_CLONE_LINKED);
	kc_vm_request_clear(&r);
	if (!KC_CHECK(parse("{\"name\":\"c2\",\"memory_mib\":64,\"image\":\"t\","
			    "\"pool\":\"fast-1\",\"clone\":\"full\"}",
			    &r)))
		return;
	KC_CHECK_STREQ(r.pool, "fast-1");
	KC_CHECK_INT(r.clone, KC_CLONE_FULL);
	KC_CHECK_STREQ(kc_clone_mode_name(r.clone), "full");
	kc_vm_request_clear(&r);
	if (!KC_CHECK(parse("{\"name\":\"c3\",\"memory_mib\":64,\"image\":\"t\","
			    "\"clone\":\"linked\"}",
			    &r)))
		return;
	KC_CHECK_INT(r.clone, KC_CLONE_LINKED);
	kc_vm_request_clear(&r);
	REJECT("{\"name\":\"c\",\"memory_mib\":64,\"image\":\"t\",\"clone\":\"deep\"}",
	       "linked or full");
	REJECT("{\"name\":\"c\",\"memory_mib\":64,\"image\":\"t\",\"clone\":1}", "clone");
	REJECT("{\"name\":\"c\",\"memory_mib\":64,\"iso\":\"i\",\"disk_gib\":1,"
	       "\"clone\":\"full\"}",
	       "needs an \"image\"");
	REJECT("{\"name\":\"c\",\"memory_mib\":64,\"image\":\"t\",\"pool\":\"../etc\"}",
	       "pool name");
	REJECT("{\"name\":\"c\",\"memory_mib\":64,\"image\":\"t\",\"pool\":\"\"}", "pool name");
}

KC_TEST(enum_names)
{
	enum kc_cpu_mode m = KC_CPU_DEFAULT;
	struct kc_error err = {0};
	KC_CHECK_STREQ(kc_accel_name(KC_ACCEL_TCG), "tcg");
	KC_CHECK_STREQ(kc_accel_name(KC_ACCEL_KVM), "kvm");
	KC_CHECK_STREQ(kc_cpu_mode_name(KC_CPU_HOST_PASSTHROUGH), "host-passthrough");
	KC_CHECK_STREQ(kc_nic_type_name(KC_NIC_BRIDGE), "bridge");
	KC_CHECK_STREQ(kc_boot_dev_name(KC_BOOT_CDROM), "cdrom");
	KC_CHECK_STREQ(kc_disk_format_name(KC_FORMAT_RAW), "raw");
	KC_CHECK_INT(kc_cpu_mode_parse("host-model", &m, &err), 0);
	KC_CHECK_INT(m, KC_CPU_HOST_MODEL);
	KC_CHECK_INT(kc_cpu_mode_parse("custom", &m, &err), 0);
	KC_CHECK_INT(m, KC_CPU_CUSTOM);
	KC_CHECK_INT(kc_cpu_mode_parse("host", &m, &err), -1);
	KC_CHECK_INT(err.code, KC_ERR_INVALID);
	KC_CHECK_INT(m, KC_CPU_CUSTOM);
}

KC_TEST(domain_def_clear_frees_and_zeroes)
{
	struct kc_domain_def def = {0};
	def.name = strdup("x");
	def.cpu_model = strdup("EPYC");
	def.n_disks = 1;
	def.disks[0].path = strdup("/p");
	def.n_nics = 1;
	def.nics[0].source = strdup("br0");
	def.owner = strdup("o");
	kc_domain_def_clear(&def);
	KC_CHECK(def.name == NULL && def.n_disks == 0 && def.disks[0].path == NULL);
	kc_domain_def_clear(&def);
	kc_domain_def_clear(NULL);
}

KC_TEST_MAIN()
