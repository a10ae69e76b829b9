/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_volume - volumes (docs/storage.md "Volumes"):
 *  - the hot-plug <disk> element against golden files
 *    (tests/golden/domain/disk/: NAME.json -> NAME.xml; invalid-*.json
 *    must be refused; KC_UPDATE_GOLDEN=1 rewrites the .xml files);
 *  - the free target choice over domain XML;
 *  - the vol.* ops through kc_agent_dispatch against the real libvirtd,
 *    in a dir pool of the test's own: create, bad names and sizes, resize
 *    (grow only), upload and download round trip, refused uploads (a
 *    qcow2 with a backing file, a raw file with a qcow2 header) that
 *    leave the volume unchanged, delete.  Skipped without libvirtd.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "agent.h"
#include "cleanup.h"
#include "config.h"
#include "dispatch.h"
#include "domain_xml.h"
#include "json_util.h"
#include "tap.h"

#define GOLDEN_DIR KC_SOURCE_DIR "/tests/golden/domain/disk"

/* A whole file (binary), NUL-terminated. */
static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	if (!f)
		return NULL;
	char *buf = fstat(fileno(f), &st) == 0 ? malloc((size_t)st.st_size + 1) : NULL;
	size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!buf || n != (size_t)st.st_size) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (ret_len)
		*ret_len = n;
	return buf;
}

static const char *jstr(const json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static void golden_one(const char *file)
{
	char path[1400], xml_path[1400];
	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, file);
	snprintf(xml_path, sizeof(xml_path), "%s/%.*s.xml", GOLDEN_DIR, (int)(strlen(file) - 5),
		 file);
	_cleanup_json_ json_t *j = json_load_file(path, 0, NULL);
	const char *kind = jstr(j, "kind"), *fmt = jstr(j, "format");
	struct kc_hotdisk d = {
		.kind = kind && strcmp(kind, "block") == 0     ? KC_HOTDISK_BLOCK
			: kind && strcmp(kind, "network") == 0 ? KC_HOTDISK_NETWORK
							       : KC_HOTDISK_FILE,
		.format = fmt && strcmp(fmt, "raw") == 0 ? KC_FORMAT_RAW : KC_FORMAT_QCOW2,
		.path = jstr(j, "path"),
		.protocol = jstr(j, "protocol"),
		.host = jstr(j, "host"),
		.port = (unsigned)json_integer_value(json_object_get(j, "port")),
		.name = jstr(j, "name"),
		.initiator = jstr(j, "initiator"),
		.target = jstr(j, "target"),
		.serial = jstr(j, "serial"),
	};
	struct kc_error err = {0};
	_cleanup_free_ char *xml = NULL;
	int r = j ? kc_hotdisk_xml_build(&d, &xml, &err) : -1;
	if (strncmp(file, "invalid-", 8) == 0) {
		ok(r < 0 && err.code == KC_ERR_INVALID, "%s refused (%s)", file, err.message);
		return;
	}
	ok(r == 0, "%s builds%s%s", file, r ? ": " : "", err.message);
	if (r < 0)
		return;
	if (getenv("KC_UPDATE_GOLDEN")) {
		FILE *f = fopen(xml_path, "we");
		ok(f && fputs(xml, f) >= 0 && fclose(f) == 0, "%s: golden file written", file);
		return;
	}
	_cleanup_free_ char *want = slurp(xml_path, NULL);
	ok(want && strcmp(want, xml) == 0, "%s matches %s", file, xml_path);
	if (want && strcmp(want, xml) != 0)
		printf("# got:\n%s", xml);
}

static void golden(void)
{
	DIR *d = opendir(GOLDEN_DIR);
	struct dirent *e;
	char *names[64];
	size_t n = 0;
	ok(d != NULL, "golden folder %s", GOLDEN_DIR);
	while (d && (e = readdir(d)) && n < 64) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
			names[n++] = strdup(e->d_name);
	}
	if (d)
		closedir(d);
	ok(n >= 10, "%zu golden cases", n);
	for (size_t i = 0; i < n; i++) {
		golden_one(names[i]);
		free(names[i]);
	}
}

static void targets(void)
{
	const char *cfg = "<domain><devices>"
			  "<disk><source file='/p/root'/><target dev='vda' bus='virtio'/></disk>"
			  "<disk><source file='/p/seed'/><target dev='vdb' bus='virtio'/></disk>"
			  "<disk><target dev='hdc' bus='ide'/></disk>"
			  "</devices></domain>";
	const char *live = "<domain><devices>"
			   "<disk><source file='/p/root'/><target dev='vda' bus='virtio'/></disk>"
			   "<disk><source file='/p/x'/><target dev='vdc' bus='virtio'/></disk>"
			   "</devices></domain>";
	char t[8] = "";
	struct kc_error err = {0};
	const char *const one[] = {cfg};
	ok(kc_vol_free_target(one, 1, t, &err) == 0 && strcmp(t, "vdc") == 0,
	   "config only: vdc is free (%s)", t);
	const char *const both[] = {cfg, live};
	ok(kc_vol_free_target(both, 2, t, &err) == 0 && strcmp(t, "vdd") == 0,
	   "config and live: vdd, a target either uses is taken (%s)", t);
	const char *const none[] = {"<domain><devices/></domain>", NULL};
	ok(kc_vol_free_target(none, 2, t, &err) == 0 && strcmp(t, "vdb") == 0,
	   "no disks: vdb, never vda (%s)", t);
	char full[4096] = "<domain><devices>";
	for (char c = 'a'; c <= 'z'; c++) {
		char one_disk[80];
		snprintf(one_disk, sizeof(one_disk), "<disk><target dev='vd%c'/></disk>", c);
		strcat(full, one_disk);
	}
	strcat(full, "</devices></domain>");
	const char *const f[] = {full};
	kc_error_clear(&err);
	ok(kc_vol_free_target(f, 1, t, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "all 26 taken: conflict (%s)", err.message);
}

/* ---- against libvirtd ---- */

static struct kc_agent *agent;
static json_t *pool;

static int op(const char *name, json_t *args, json_t **ret, struct kc_error *err)
{
	json_t *r = NULL;
	kc_error_clear(err);
	int rc = kc_agent_dispatch(agent, name, args, &r, err);
	json_decref(args);
	if (ret)
		*ret = r;
	else
		json_decref(r);
	return rc;
}

static json_t *vargs(const char *vol, const char *fmt)
{
	json_t *a = json_pack("{s:O,s:s}", "pool", pool, "name", vol);
	if (fmt)
		json_object_set_new(a, "format", json_string(fmt));
	return a;
}

static json_t *with(json_t *a, const char *k, json_t *v)
{
	json_object_set_new(a, k, v);
	return a;
}

static char *b64(const void *data, size_t len)
{
	gnutls_datum_t in = {(unsigned char *)data, (unsigned)len}, out = {0};
	if (gnutls_base64_encode2(&in, &out) < 0)
		return NULL;
	char *s = strndup((char *)out.data, out.size);
	gnutls_free(out.data);
	return s;
}

static int upload(const char *vol, const char *fmt, uint64_t cap, const unsigned char *data,
		  size_t len, size_t chunk, struct kc_error *err)
{
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		_cleanup_free_ char *s = b64(data + off, n);
		json_t *a = vargs(vol, fmt);
		json_object_set_new(a, "capacity", json_integer((json_int_t)cap));
		json_object_set_new(a, "offset", json_integer((json_int_t)off));
		json_object_set_new(a, "size", json_integer((json_int_t)len));
		json_object_set_new(a, "data", json_string(s));
		if (op("vol.upload", a, NULL, err) < 0)
			return -1;
	}
	return 0;
}

/* The whole volume through vol.download, in 100 KiB pieces. */
static unsigned char *download(const char *vol, size_t *ret_len, struct kc_error *err)
{
	unsigned char *all = NULL;
	size_t have = 0;
	for (;;) {
		json_t *r = NULL;
		json_t *a = vargs(vol, NULL);
		json_object_set_new(a, "offset", json_integer((json_int_t)have));
		json_object_set_new(a, "length", json_integer(100 * 1024));
		if (op("vol.download", a, &r, err) < 0) {
			free(all);
			return NULL;
		}
		const char *d = jstr(r, "data");
		gnutls_datum_t in = {(unsigned char *)d, (unsigned)strlen(d)}, out = {0};
		if (*d && gnutls_base64_decode2(&in, &out) < 0)
			out.size = 0;
		all = realloc(all, have + out.size + 1);
		if (out.size)
			memcpy(all + have, out.data, out.size);
		have += out.size;
		gnutls_free(out.data);
		json_decref(r);
		if (out.size == 0)
			break;
	}
	*ret_len = have;
	return all;
}

static void run_cmd(const char *cmd)
{
	if (system(cmd) != 0)
		printf("# failed: %s\n", cmd);
}

static void live(const char *root)
{
	struct kc_error err = {0};
	json_t *r = NULL;
	char path[700], cmd[1400];
	char ppath[600];

	char pname[32];
	snprintf(ppath, sizeof(ppath), "%s/pool", root);
	snprintf(pname, sizeof(pname), "kcvt-%d", (int)getpid());
	pool = json_pack("{s:s,s:s,s:s}", "name", pname, "type", "dir", "path", ppath);
	ok(op("pool.ensure", json_pack("{s:O}", "pool", pool), NULL, &err) == 0, "pool made (%s)",
	   err.message);

	ok(op("vol.create", with(vargs("kcvt-q", "qcow2"), "capacity", json_integer(1 << 20)), NULL,
	      &err) == 0,
	   "vol.create qcow2 1 MiB (%s)", err.message);
	ok(op("vol.create", with(vargs("kcvt-r", "raw"), "capacity", json_integer(1 << 20)), NULL,
	      &err) == 0,
	   "vol.create raw 1 MiB (%s)", err.message);
	ok(op("vol.create", with(vargs("kcvt-r", "raw"), "capacity", json_integer(1 << 20)), NULL,
	      &err) < 0 &&
		   err.code == KC_ERR_CONFLICT,
	   "a taken name is a conflict (%s)", err.message);
	static const char *const bad[] = {"../x", "a/b", "..", ".hidden", ""};
	for (size_t i = 0; i < KC_ARRAY_SIZE(bad); i++)
		ok(op("vol.create", with(vargs(bad[i], "raw"), "capacity", json_integer(4096)),
		      NULL, &err) < 0 &&
			   err.code == KC_ERR_INVALID,
		   "name '%s' refused (%s)", bad[i], err.message);
	ok(op("vol.create", with(vargs("kcvt-z", "raw"), "capacity", json_integer(0)), NULL, &err) <
			   0 &&
		   err.code == KC_ERR_INVALID,
	   "size 0 refused (%s)", err.message);
	ok(op("vol.create", with(vargs("kcvt-z", "raw"), "capacity", json_integer(60LL << 40)),
	      NULL, &err) < 0 &&
		   err.code == KC_ERR_NO_CAPACITY,
	   "a size beyond the pool refused (%s)", err.message);
	ok(op("vol.create", with(vargs("kcvt-z", "vmdk"), "capacity", json_integer(4096)), NULL,
	      &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "format vmdk refused (%s)", err.message);
	snprintf(path, sizeof(path), "%s/kcvt-z", ppath);
	ok(access(path, F_OK) != 0, "the refused creates made nothing");

	/* resize */
	ok(op("vol.resize", with(vargs("kcvt-q", "qcow2"), "capacity", json_integer(2 << 20)), &r,
	      &err) == 0 &&
		   json_integer_value(json_object_get(r, "capacity")) == 2 << 20,
	   "grow qcow2 to 2 MiB (%s)", err.message);
	json_decref(r);
	snprintf(cmd, sizeof(cmd),
		 "qemu-img info -f qcow2 --output=json %s/kcvt-q | grep -q '\"virtual-size\": "
		 "2097152'",
		 ppath);
	ok(system(cmd) == 0, "the qcow2 header says 2 MiB");
	ok(op("vol.resize", with(vargs("kcvt-q", "qcow2"), "capacity", json_integer(1 << 20)), NULL,
	      &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "shrinking refused (%s)", err.message);

	/* upload, download */
	size_t len = 1 << 20;
	unsigned char *data = malloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	ok(upload("kcvt-r", "raw", 1 << 20, data, len, 300 * 1024, &err) == 0,
	   "upload 1 MiB raw in 4 chunks (%s)", err.message);
	size_t got = 0;
	unsigned char *back = download("kcvt-r", &got, &err);
	ok(back && got == len && memcmp(back, data, len) == 0, "download gives the same %zu bytes",
	   got);
	free(back);
	ok(upload("kcvt-r", "raw", 1 << 20, data, len, 1000, &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "a first chunk under 64 KiB is refused (%s)", err.message);
	ok(upload("kcvt-r", "raw", 1 << 20, data, len + 1, 512 * 1024, &err) < 0,
	   "more than the raw volume holds is refused (%s)", err.message);

	snprintf(cmd, sizeof(cmd),
		 "qemu-img create -q -f qcow2 %s/base.qcow2 1M && "
		 "qemu-img create -q -f qcow2 -F qcow2 -b %s/base.qcow2 %s/overlay.qcow2 && "
		 "qemu-img create -q -f qcow2 %s/plain.qcow2 1M",
		 root, root, root, root);
	run_cmd(cmd);
	size_t olen = 0, plen = 0;
	snprintf(path, sizeof(path), "%s/overlay.qcow2", root);
	_cleanup_free_ char *overlay = slurp(path, &olen);
	snprintf(path, sizeof(path), "%s/plain.qcow2", root);
	_cleanup_free_ char *plain = slurp(path, &plen);
	ok(overlay && plain, "test images made");
	ok(overlay &&
		   upload("kcvt-q", "qcow2", 2 << 20, (unsigned char *)overlay, olen, 512 * 1024,
			  &err) < 0 &&
		   err.code == KC_ERR_INVALID && strstr(err.message, "backing"),
	   "a qcow2 with a backing file is refused (%s)", err.message);
	snprintf(cmd, sizeof(cmd), "qemu-img info -f qcow2 %s/kcvt-q | grep -q backing", ppath);
	ok(system(cmd) != 0, "... and the volume has none");
	ok(plain &&
		   upload("kcvt-r", "raw", 1 << 20, (unsigned char *)plain, plen, 512 * 1024,
			  &err) < 0 &&
		   err.code == KC_ERR_INVALID,
	   "a qcow2 file uploaded as raw is refused (%s)", err.message);
	back = download("kcvt-r", &got, &err);
	ok(back && got == len && memcmp(back, data, len) == 0,
	   "... and the raw volume still holds the earlier upload");
	free(back);
	ok(plain && upload("kcvt-q", "qcow2", 2 << 20, (unsigned char *)plain, plen, 512 * 1024,
			   &err) == 0,
	   "a plain 1 MiB qcow2 uploads into the 2 MiB qcow2 volume (%s)", err.message);
	snprintf(cmd, sizeof(cmd),
		 "qemu-img info -f qcow2 --output=json %s/kcvt-q | grep -q '\"virtual-size\": "
		 "2097152'",
		 ppath);
	ok(system(cmd) == 0, "... and grew to the volume's 2 MiB");
	free(data);

	/* delete */
	ok(op("vol.delete", vargs("kcvt-q", NULL), NULL, &err) == 0, "delete qcow2 (%s)",
	   err.message);
	ok(op("vol.delete", vargs("kcvt-r", NULL), NULL, &err) == 0, "delete raw (%s)",
	   err.message);
	ok(op("vol.delete", vargs("kcvt-r", NULL), NULL, &err) < 0 && err.code == KC_ERR_NOT_FOUND,
	   "delete again: not found (%s)", err.message);
	ok(op("pool.volumes", json_pack("{s:O}", "pool", pool), &r, &err) == 0 &&
		   json_array_size(json_object_get(r, "volumes")) == 0,
	   "the pool is empty");
	json_decref(r);
	ok(op("pool.remove", json_pack("{s:O}", "pool", pool), NULL, &err) == 0, "pool removed");
	json_decref(pool);
}

int main(void)
{
	golden();
	targets();

	char root[64];
	snprintf(root, sizeof(root), "/var/tmp/kcvoltest-%d", (int)getpid());
	mkdir(root, 0755);
	_cleanup_config_ struct kc_config *cfg = kc_config_new();
	char data[128];
	snprintf(data, sizeof(data), "%s/agent", root);
	kc_config_set(cfg, "libvirt.uri", "qemu:///system", NULL);
	kc_config_set(cfg, "data.dir", data, NULL);
	char spool[32];
	snprintf(spool, sizeof(spool), "kcvt-default-%d", (int)getpid());
	kc_config_set(cfg, "storage.pool", spool, NULL);
	kc_config_set(cfg, "accel", "tcg", NULL);
	struct kc_error err = {0};
	if (kc_agent_new(cfg, &agent, &err) < 0) {
		printf("# libvirtd not reachable, skipping the live part: %s\n", err.message);
		spool[0] = '\0';
	} else {
		live(root);
		/* The agent's own default pool. */
		char cmd[300];
		snprintf(cmd, sizeof(cmd),
			 "virsh -q -c qemu:///system pool-destroy %s >/dev/null 2>&1; "
			 "virsh -q -c qemu:///system pool-undefine %s >/dev/null 2>&1",
			 spool, spool);
		run_cmd(cmd);
	}
	kc_agent_free(agent);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	run_cmd(cmd);
	return tap_done();
}
