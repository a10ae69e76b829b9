/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_qcow2 - kc_qcow2_virtual_size against hand-made qcow2 headers: only
 * standalone templates may become backing files.  No libvirtd needed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_priv.h"
#include "cleanup.h"
#include "tap.h"

static char path[64];

static void put_be(unsigned char *p, int bytes, uint64_t v)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

/* A header as qemu-img writes it (fields at their spec offsets), then
 * padding up to 512 bytes. */
static void make(uint32_t version, uint64_t backing_off, uint64_t size, uint64_t incompat,
		 size_t len)
{
	unsigned char h[512] = {0};
	memcpy(h, "QFI\xfb", 4);
	put_be(h + 4, 4, version);
	put_be(h + 8, 8, backing_off);
	put_be(h + 16, 4, backing_off ? 6 : 0);
	put_be(h + 20, 4, 16); /* cluster_bits */
	put_be(h + 24, 8, size);
	if (version >= 3) {
		put_be(h + 72, 8, incompat);
		put_be(h + 96, 4, 4);	 /* refcount_order */
		put_be(h + 100, 4, 104); /* header_length */
	}
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, h, len) != (ssize_t)len) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static void expect(const char *desc, bool good, uint64_t want_size, const char *want_msg)
{
	struct kc_error err = {0};
	uint64_t size = 0;
	int r = kc_qcow2_virtual_size(path, "image 'tpl'", &size, &err);
	if (good)
		ok(r == 0 && size == want_size, "%s: accepted, size %llu", desc,
		   (unsigned long long)size);
	else
		ok(r < 0 && err.code == KC_ERR_INVALID && strstr(err.message, "image 'tpl'") &&
			   !strstr(err.message, path) && strstr(err.message, want_msg),
		   "%s: refused (%s)", desc, err.message);
}

int main(void)
{
	snprintf(path, sizeof(path), "/tmp/kc-test-qcow2-%d", (int)getpid());
	const uint64_t gib = 1ULL << 30;

	make(3, 0, gib, 0, 512);
	expect("v3 standalone", true, gib, "");
	make(2, 0, 2 * gib, 0, 512);
	expect("v2 standalone", true, 2 * gib, "");
	make(3, 0, gib, 1 | 2 | 8 | 16, 512);
	expect("v3 with known features (dirty, corrupt, compression, extended L2)", true, gib, "");
	make(2, 0, gib, 4, 512); /* bytes 72.. are not a v2 field */
	expect("v2 ignores bytes past its header", true, gib, "");

	make(3, 0x200, gib, 0, 512);
	expect("v3 with a backing file", false, 0, "backing file");
	make(2, 0x10000, gib, 0, 512);
	expect("v2 with a backing file", false, 0, "backing file");
	make(3, 0, gib, 4, 512);
	expect("v3 with an external data file", false, 0, "external data file");
	make(3, 0, gib, 1ULL << 5, 512);
	expect("v3 with an unknown incompatible feature", false, 0, "unknown");
	make(3, 0, gib, 1ULL << 63, 512);
	expect("v3 with incompatible bit 63", false, 0, "0x8000000000000000");
	make(4, 0, gib, 0, 512);
	expect("version 4", false, 0, "version 4");
	make(3, 0, gib, 0, 80);
	expect("truncated v3 header", false, 0, "truncated");
	make(2, 0, gib, 0, 40);
	expect("file shorter than a v2 header", false, 0, "not a qcow2");
	make(3, 0, gib, 0, 512);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && pwrite(fd, "QFI\xfa", 4, 0) != 4)
		n_fail++;
	expect("wrong magic", false, 0, "not a qcow2");

	struct kc_error err = {0};
	uint64_t size;
	unlink(path);
	ok(kc_qcow2_virtual_size(path, "image 'tpl'", &size, &err) < 0 &&
		   err.code == KC_ERR_NOT_FOUND && !strstr(err.message, path),
	   "missing file: not found, no path (%s)", err.message);

	return tap_done();
}
