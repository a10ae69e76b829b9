/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pool - pool definitions and their libvirt XML against golden files
 * (tests/golden/pool/: NAME.json -> NAME.xml; invalid-*.json must be
 * refused; nfs-*.json have no libvirt pool), the volume XML, the JSON
 * round trip and the overcommit rule.  No libvirtd needed.
 * KC_UPDATE_GOLDEN=1 rewrites the .xml files from the output.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json_util.h"
#include "pool.h"
#include "pool_backend.h"
#include "tap.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void golden_one(const char *dir, const char *file)
{
	char path[1400], xml_path[1400];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(xml_path, sizeof(xml_path), "%s/%.*s.xml", dir, (int)(strlen(file) - 5), file);
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_load_file(path, 0, &jerr);
	struct kc_pool_def def = {0};
	struct kc_error err = {0};
	bool invalid = strncmp(file, "invalid-", 8) == 0;
	int r = j ? kc_pool_def_from_json(j, NULL, false, &def, &err) : -1;
	if (invalid) {
		ok(r < 0 && err.code != KC_OK, "%s refused (%s)", file, err.message);
		return;
	}
	ok(r == 0, "%s parses%s%s", file, r ? ": " : "", err.message);
	if (r < 0)
		return;
	_cleanup_free_ char *xml = NULL;
	r = kc_pool_xml(&def, &xml, &err);
	if (strncmp(file, "nfs-", 4) == 0) {
		ok(r < 0, "%s: an NFS pool has no libvirt pool XML", file);
	} else if (getenv("KC_UPDATE_GOLDEN") && r == 0) {
		FILE *f = fopen(xml_path, "we");
		ok(f && fputs(xml, f) >= 0 && fclose(f) == 0, "%s: golden file written", file);
	} else {
		_cleanup_free_ char *want = slurp(xml_path);
		ok(r == 0 && want && strcmp(want, xml) == 0, "%s matches %s", file, xml_path);
		if (r == 0 && want && strcmp(want, xml) != 0)
			printf("# got:\n%s", xml);
	}
	/* The JSON the server sends parses back to the same XML. */
	_cleanup_json_ json_t *back = kc_pool_def_to_json(&def);
	struct kc_pool_def def2 = {0};
	_cleanup_free_ char *xml2 = NULL;
	bool same = back && kc_pool_def_from_json(back, NULL, false, &def2, &err) == 0 &&
		    def2.type == def.type && def2.overcommit_pct == def.overcommit_pct;
	if (same && def.type != KC_POOL_NFS)
		same = kc_pool_xml(&def2, &xml2, &err) == 0 && strcmp(xml2, xml) == 0;
	ok(same, "%s: the definition survives its JSON round trip", file);
	kc_pool_def_clear(&def2);
	kc_pool_def_clear(&def);
}

static void golden(void)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/golden/pool", KC_SOURCE_DIR);
	struct dirent **list = NULL;
	int n = scandir(dir, &list, NULL, alphasort);
	ok(n > 10, "golden files found in %s", dir);
	for (int i = 0; i < n; i++) {
		const char *f = list[i]->d_name;
		size_t l = strlen(f);
		if (l > 5 && strcmp(f + l - 5, ".json") == 0)
			golden_one(dir, f);
		free(list[i]);
	}
	free(list);
}

static void special_names(void)
{
	struct kc_error err = {0};
	struct kc_pool_def def = {0};
	_cleanup_json_ json_t *d = json_pack("{s:s}", "name", "default");
	ok(kc_pool_def_from_json(d, NULL, true, &def, &err) == 0 && def.type == KC_POOL_DIR,
	   "the agent takes {\"name\":\"default\"} as its own pool");
	kc_pool_def_clear(&def);
	kc_error_clear(&err);
	ok(kc_pool_def_from_json(d, NULL, false, &def, &err) < 0 && err.code == KC_ERR_CONFLICT,
	   "the server refuses to create a pool named default (%s)", err.message);
	kc_error_clear(&err);
	_cleanup_json_ json_t *extra = json_pack("{s:s,s:s,s:s,s:s}", "name", "p", "type", "dir",
						 "path", "/srv/p", "host", "h1");
	const char *const also[] = {"scope", "host", "cluster", NULL};
	ok(kc_pool_def_from_json(extra, NULL, false, &def, &err) < 0,
	   "the agent refuses keys it does not know (%s)", err.message);
	kc_error_clear(&err);
	ok(kc_pool_def_from_json(extra, also, false, &def, &err) == 0,
	   "the server's extra keys pass when listed");
	kc_pool_def_clear(&def);
}

static void vol_xml(void)
{
	struct kc_error err = {0};
	_cleanup_free_ char *q = NULL, *r = NULL, *l = NULL;
	ok(kc_pool_vol_xml("disk1", KC_POOL_DIR, KC_VOL_QCOW2, 1073741824, &q, &err) == 0 &&
		   strstr(q, "<format type=\"qcow2\"/>") &&
		   strstr(q, "<capacity unit=\"bytes\">1073741824</capacity>") &&
		   strstr(q, "<allocation unit=\"bytes\">0</allocation>"),
	   "qcow2 volume XML states its format, sparse");
	ok(kc_pool_vol_xml("disk2", KC_POOL_MOUNTPOINT, KC_VOL_RAW, 512, &r, &err) == 0 &&
		   strstr(r, "<format type=\"raw\"/>"),
	   "raw volume XML states its format");
	ok(kc_pool_vol_xml("lv1", KC_POOL_LOGICAL, KC_VOL_RAW, 4096, &l, &err) == 0 &&
		   !strstr(l, "<format") &&
		   strstr(l, "<allocation unit=\"bytes\">4096</allocation>"),
	   "an LVM volume has no format element and is fully allocated");
	enum kc_vol_format f;
	ok(kc_vol_format_parse("vmdk", &f, &err) < 0, "unknown volume formats are refused");
}

static void overcommit(void)
{
	struct kc_error err = {0};
	struct kc_pool_info info = {.capacity = 100ULL << 30, .virtual = 90ULL << 30};
	ok(kc_pool_check_overcommit("p", &info, 100, 10ULL << 30, &err) == 0,
	   "exactly full at 1.0 is allowed");
	ok(kc_pool_check_overcommit("p", &info, 100, (10ULL << 30) + 1, &err) < 0 &&
		   err.code == KC_ERR_NO_CAPACITY && strstr(err.message, "90.00 GiB") &&
		   strstr(err.message, "100.00 GiB"),
	   "one byte more is refused, naming the figures (%s)", err.message);
	kc_error_clear(&err);
	ok(kc_pool_check_overcommit("p", &info, 150, 60ULL << 30, &err) == 0,
	   "overcommit 1.5 lets 150 GiB of volumes into 100 GiB");
	ok(kc_pool_check_overcommit("p", &info, 150, (60ULL << 30) + 1, &err) < 0, "but not more");
	kc_error_clear(&err);
	struct kc_pool_info huge = {.capacity = UINT64_MAX, .virtual = UINT64_MAX};
	ok(kc_pool_check_overcommit("p", &huge, 1000, UINT64_MAX, &err) == 0,
	   "no wrap-around with huge figures");
}

int main(void)
{
	golden();
	special_names();
	vol_xml();
	overcommit();
	return tap_done();
}
