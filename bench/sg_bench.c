/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sg_bench.c - how long a security group ruleset takes to apply: one VM
 * with N rules (default 100) rendered by nft_render.c, applied through
 * libnftables in-process (kc_sg_nft_run, what the agent does) and, for the
 * same text in the same run, with the nft CLI (`nft -f FILE`, one process
 * per apply).  Runs in a network namespace of its own (unshare), so the
 * machine's ruleset is never touched.  Needs root.
 *
 *   kc-sg-bench [RULES] [ROUNDS]
 */
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "nft_render.h"
#include "secgroup.h"
#include "sg_nft.h"

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	printf("%-34s median %7.2f ms  min %7.2f  max %7.2f  (%d rounds)\n", what, v[n / 2], v[0],
	       v[n - 1], n);
}

int main(int argc, char **argv)
{
	int n_rules = argc > 1 ? atoi(argv[1]) : 100;
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	struct kc_error err = {0};

	if (n_rules < 1 || n_rules > KC_SG_VM_RULES_MAX || rounds < 1 || rounds > 1000) {
		fprintf(stderr, "usage: kc-sg-bench [RULES 1..%d] [ROUNDS 1..1000]\n",
			KC_SG_VM_RULES_MAX);
		return 2;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET) (needs root)");
		return 1;
	}
	struct kc_sg_rule *rules = calloc((size_t)n_rules, sizeof(*rules));
	struct kc_sg_ruleset rs = {.n_vms = 1, .vms = calloc(1, sizeof(struct kc_sg_vm))};
	if (!rules || !rs.vms)
		return 1;
	struct kc_sg_vm *vm = &rs.vms[0];
	snprintf(vm->name, sizeof(vm->name), "bench");
	vm->n_nics = 1;
	snprintf(vm->nics[0].tap, sizeof(vm->nics[0].tap), "vnet0");
	snprintf(vm->nics[0].mac, sizeof(vm->nics[0].mac), "52:54:00:00:00:01");
	kc_sg_cidr_parse("10.60.0.55", "ip", &vm->nics[0].ips[0], &err);
	vm->nics[0].n_ips = 1;
	for (int i = 0; i < n_rules; i++) {
		char cidr[32];
		rules[i].dir = i % 10 == 9 ? KC_SG_OUT : KC_SG_IN;
		rules[i].proto = i % 2 ? KC_SG_UDP : KC_SG_TCP;
		rules[i].port_min = rules[i].port_max = 1000 + (unsigned)i;
		snprintf(cidr, sizeof(cidr), "10.%d.%d.0/24", i / 250, i % 250);
		rules[i].has_cidr = kc_sg_cidr_parse(cidr, "cidr", &rules[i].cidr, &err) == 0;
	}
	vm->rules = rules;
	vm->n_rules = (size_t)n_rules;

	double *lib = calloc((size_t)rounds, sizeof(double));
	double *cli = calloc((size_t)rounds, sizeof(double));
	double *render = calloc((size_t)rounds, sizeof(double));
	_cleanup_free_ char *text = NULL;
	for (int r = 0; r < rounds; r++) {
		free(text);
		text = NULL;
		double t0 = now_ms();
		if (kc_nft_render_sg(&rs, &text, &err) < 0) {
			fprintf(stderr, "render: %s\n", err.message);
			return 1;
		}
		render[r] = now_ms() - t0;
		t0 = now_ms();
		if (kc_sg_nft_run(text, &err) < 0) {
			fprintf(stderr, "libnftables: %s\n", err.message);
			return 1;
		}
		lib[r] = now_ms() - t0;
	}
	char path[] = "/tmp/kc-sg-bench-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("temp file");
		return 1;
	}
	close(fd);
	for (int r = 0; r < rounds; r++) {
		char *args[] = {"/usr/sbin/nft", "-f", path, NULL};
		pid_t pid;
		int st;
		double t0 = now_ms();
		if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0 ||
		    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "nft -f failed\n");
			unlink(path);
			return 1;
		}
		cli[r] = now_ms() - t0;
	}
	unlink(path);
	printf("security group ruleset: 1 VM, %d rules, %zu bytes of nft text\n", n_rules,
	       strlen(text));
	report("render (nft_render.c)", render, rounds);
	report("apply, libnftables in-process", lib, rounds);
	report("apply, nft -f (CLI process)", cli, rounds);
	free(lib);
	free(cli);
	free(render);
	kc_sg_ruleset_clear(&rs);
	return 0;
}
