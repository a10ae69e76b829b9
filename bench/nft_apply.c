/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kc-nft-apply: time N security-group-like rules applied through
 * libnftables in this process (bench/net.sh).  Run it inside a network
 * namespace made for the benchmark (`ip netns exec`): it replaces its own
 * table, inet kcbench_sg, and removes it at the end.
 *
 *   kc-nft-apply N RUNS [FILE]   prints "libnftables_ms_p50 X" and, with
 *                                FILE, writes the same text there for
 *                                `nft -f` to apply.
 */
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RULES_MAX 100000
#define RUNS_MAX  1000

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One table, one chain per "VM" of 10 rules, as a security group would
 * render: stateful accept, then port and source rules, then drop.  ("fwd"
 * is an nft keyword, hence the chain's longer name.) */
static char *ruleset(int n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fputs("table inet kcbench_sg\ndelete table inet kcbench_sg\ntable inet kcbench_sg {\n", f);
	fputs("\tchain sg_forward {\n\t\ttype filter hook forward priority filter; policy "
	      "accept;\n",
	      f);
	for (int vm = 0; vm * 10 < n; vm++)
		fprintf(f, "\t\tip daddr 10.200.%d.%d jump vm%d\n", vm / 250, vm % 250 + 1, vm);
	fputs("\t}\n", f);
	for (int vm = 0; vm * 10 < n; vm++) {
		fprintf(f, "\tchain vm%d {\n\t\tct state established,related accept\n", vm);
		for (int r = vm * 10; r < n && r < vm * 10 + 10; r++)
			fprintf(f, "\t\tip saddr 10.%d.%d.0/24 tcp dport %d accept\n",
				r / 250 % 250, r % 250, 1000 + r);
		fputs("\t\tdrop\n\t}\n", f);
	}
	fputs("}\n", f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: kc-nft-apply N RUNS [FILE]\n");
		return 2;
	}
	int n = atoi(argv[1]), runs = atoi(argv[2]);
	if (n < 1 || n > RULES_MAX || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "kc-nft-apply: N 1..%d, RUNS 1..%d\n", RULES_MAX, RUNS_MAX);
		return 2;
	}
	char *text = ruleset(n);
	if (!text)
		return 1;
	if (argc > 3) {
		FILE *out = fopen(argv[3], "we");
		if (!out || fputs(text, out) < 0 || fclose(out) != 0) {
			perror(argv[3]);
			return 1;
		}
	}
	double *ms = calloc((size_t)runs, sizeof(*ms));
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ms || !ctx)
		return 1;
	nft_ctx_buffer_error(ctx);
	for (int i = 0; i < runs; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int rc = nft_run_cmd_from_buffer(ctx, text);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rc != 0) {
			fprintf(stderr, "kc-nft-apply: %s", nft_ctx_get_error_buffer(ctx));
			return 1;
		}
		ms[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	}
	nft_run_cmd_from_buffer(ctx, "delete table inet kcbench_sg");
	qsort(ms, (size_t)runs, sizeof(*ms), cmp_double);
	printf("libnftables_ms_p50 %.2f\n", ms[runs / 2]);
	nft_ctx_free(ctx);
	free(ms);
	free(text);
	return 0;
}
