/* SPDX-License-Identifier: Apache-2.0 */
/*
 * format.h - human output: aligned tables for lists, "Key: value" blocks
 * for one object, "PASS|WARN|FAIL name: reason" lines for checks.  Text
 * from the server is printed with control characters replaced by '?', so
 * that a VM or host name cannot drive the user's terminal.  Missing values
 * print as "-".
 */
#pragma once

#include <jansson.h>
#include <stdio.h>

/* {"vms": [...]} or the array: NAME STATE HOST HOST-STATE VCPUS MEMORY
 * IMAGE. */
void kc_fmt_vm_table(FILE *out, const json_t *vms);
/* {"hosts": [...]} or the array: NAME STATE ACCEL CPUS MEMORY LIBVIRT QEMU CHECK. */
void kc_fmt_host_table(FILE *out, const json_t *hosts);
void kc_fmt_vm_show(FILE *out, const json_t *vm);
void kc_fmt_host_show(FILE *out, const json_t *host);
/* One line per item of a Check object; `indent` spaces before each. */
void kc_fmt_check_items(FILE *out, const json_t *check, int indent);
/* Indented JSON, keys in the server's order, and a newline. */
void kc_fmt_json(FILE *out, const json_t *j);
/* Prints `s` with control characters as '?'. */
void kc_fmt_safe(FILE *out, const char *s);

/* "256MiB", "2GiB"; "23.5GiB" for KiB amounts.  `buf` of at least 32 bytes. */
void kc_fmt_mib(char *buf, size_t size, long long mib);
void kc_fmt_kib(char *buf, size_t size, long long kib);
