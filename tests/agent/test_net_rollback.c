/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_net_rollback.c - the confirm-or-roll-back helper (net_rollback.h)
 * with fake callbacks: confirm cancels, the timer restores, a failed
 * apply is restored at once, a marker left by a "dead" handle is picked
 * up by the next one (re-armed, or restored when its deadline passed).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kctest.h"
#include "net_rollback.h"

struct fake {
	int snapshots, applies, restores;
	bool fail_apply;
	char restored[64];
};

static int f_snapshot(void *opaque, const json_t *change, json_t **ret, struct kc_error *err)
{
	struct fake *f = opaque;
	f->snapshots++;
	*ret = json_pack("{s:s,s:i}", "was", "before", "n", f->snapshots);
	return 0;
}

static int f_apply(void *opaque, const json_t *change, struct kc_error *err)
{
	struct fake *f = opaque;
	f->applies++;
	return f->fail_apply ? kc_error_set(err, KC_ERR_INTERNAL, "apply broke") : 0;
}

static int f_restore(void *opaque, const json_t *snap, struct kc_error *err)
{
	struct fake *f = opaque;
	__atomic_add_fetch(&f->restores, 1, __ATOMIC_SEQ_CST);
	snprintf(f->restored, sizeof(f->restored), "%s",
		 json_string_value(json_object_get(snap, "was")));
	return 0;
}

static const struct kc_rollback_ops ops = {"test change", f_snapshot, f_apply, f_restore};

static char dir[] = "/tmp/kc-rbtest-XXXXXX";
static char marker[256];

static bool wait_restores(struct fake *f, int n, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		if (__atomic_load_n(&f->restores, __ATOMIC_SEQ_CST) >= n)
			return true;
		usleep(50000);
	}
	return false;
}

KC_TEST(confirm_cancels)
{
	struct fake f = {0};
	struct kc_rollback *rb = NULL;
	struct kc_error err = {0};
	char id[37];
	json_t *change = json_pack("{s:i}", "x", 1), *got = NULL;
	if (!KC_CHECK(kc_rollback_new(&ops, &f, marker, &rb, &err) == 0))
		return;
	KC_CHECK(kc_rollback_begin(rb, change, 5, id, &err) == 0);
	KC_CHECK(access(marker, F_OK) == 0);
	struct stat st;
	KC_CHECK(stat(marker, &st) == 0 && (st.st_mode & 0777) == 0600);
	KC_CHECK_INT(f.applies, 1);
	struct kc_error e2 = {0};
	KC_CHECK(kc_rollback_begin(rb, change, 5, id, &e2) < 0);
	KC_CHECK_INT(e2.code, KC_ERR_CONFLICT);
	struct kc_error e3 = {0};
	KC_CHECK(kc_rollback_confirm(rb, "00000000-0000-4000-8000-000000000000", NULL, &e3) < 0);
	KC_CHECK_INT(e3.code, KC_ERR_CONFLICT);
	KC_CHECK(kc_rollback_confirm(rb, id, &got, &err) == 0);
	KC_CHECK(json_equal(got, change));
	KC_CHECK(access(marker, F_OK) != 0);
	usleep(5500 * 1000);
	KC_CHECK_INT(f.restores, 0);
	json_t *s = kc_rollback_status(rb);
	KC_CHECK_STREQ(json_string_value(json_object_get(json_object_get(s, "last"), "result")),
		       "confirmed");
	json_decref(s);
	struct kc_error e4 = {0};
	KC_CHECK(kc_rollback_confirm(rb, id, NULL, &e4) < 0);
	KC_CHECK_INT(e4.code, KC_ERR_NOT_FOUND);
	json_decref(got);
	json_decref(change);
	kc_rollback_free(rb);
}

KC_TEST(timer_restores)
{
	struct fake f = {0};
	struct kc_rollback *rb = NULL;
	struct kc_error err = {0};
	char id[37];
	json_t *change = json_pack("{s:i}", "x", 2);
	if (!KC_CHECK(kc_rollback_new(&ops, &f, marker, &rb, &err) == 0))
		return;
	KC_CHECK(kc_rollback_begin(rb, change, 4, id, &err) < 0); /* below the minimum */
	kc_error_clear(&err);
	time_t t0 = time(NULL);
	KC_CHECK(kc_rollback_begin(rb, change, 5, id, &err) == 0);
	usleep(3000 * 1000);
	KC_CHECK_INT(f.restores, 0);
	KC_CHECK(wait_restores(&f, 1, 5000));
	KC_CHECK(time(NULL) - t0 >= 5);
	KC_CHECK_STREQ(f.restored, "before");
	KC_CHECK(access(marker, F_OK) != 0);
	struct kc_error e2 = {0};
	KC_CHECK(kc_rollback_confirm(rb, id, NULL, &e2) < 0);
	KC_CHECK(strstr(e2.message, "rolled back") != NULL);
	json_decref(change);
	kc_rollback_free(rb);
}

KC_TEST(failed_apply_restores_at_once)
{
	struct fake f = {.fail_apply = true};
	struct kc_rollback *rb = NULL;
	struct kc_error err = {0};
	char id[37];
	json_t *change = json_pack("{s:i}", "x", 3);
	if (!KC_CHECK(kc_rollback_new(&ops, &f, marker, &rb, &err) == 0))
		return;
	KC_CHECK(kc_rollback_begin(rb, change, 60, id, &err) < 0);
	KC_CHECK_STREQ(err.message, "apply broke");
	KC_CHECK_INT(f.restores, 1);
	KC_CHECK(access(marker, F_OK) != 0);
	json_decref(change);
	kc_rollback_free(rb);
}

KC_TEST(marker_survives_a_dead_handle)
{
	struct fake f = {0}, g = {0};
	struct kc_rollback *rb = NULL, *rb2 = NULL;
	struct kc_error err = {0};
	char id[37];
	json_t *change = json_pack("{s:i}", "x", 4);
	if (!KC_CHECK(kc_rollback_new(&ops, &f, marker, &rb, &err) == 0))
		return;
	KC_CHECK(kc_rollback_begin(rb, change, 60, id, &err) == 0);
	kc_rollback_free(rb); /* the process "dies": nothing restored, marker kept */
	KC_CHECK_INT(f.restores, 0);
	KC_CHECK(access(marker, F_OK) == 0);
	/* A new process within the window: re-armed, still confirmable. */
	if (!KC_CHECK(kc_rollback_new(&ops, &g, marker, &rb2, &err) == 0))
		return;
	KC_CHECK(kc_rollback_resume(rb2, &err) == 0);
	json_t *s = kc_rollback_status(rb2);
	json_t *p = json_object_get(s, "pending");
	KC_CHECK_STREQ(json_string_value(json_object_get(p, "id")), id);
	KC_CHECK(json_integer_value(json_object_get(p, "remaining_s")) > 50);
	json_decref(s);
	KC_CHECK(kc_rollback_confirm(rb2, id, NULL, &err) == 0);
	KC_CHECK_INT(g.restores, 0);
	kc_rollback_free(rb2);

	/* Past the deadline: restored at once by the next process. */
	struct fake h = {0}, k = {0};
	if (!KC_CHECK(kc_rollback_new(&ops, &h, marker, &rb, &err) == 0))
		return;
	KC_CHECK(kc_rollback_begin(rb, change, 5, id, &err) == 0);
	kc_rollback_free(rb);
	sleep(6);
	KC_CHECK_INT(h.restores, 0);
	if (!KC_CHECK(kc_rollback_new(&ops, &k, marker, &rb2, &err) == 0))
		return;
	KC_CHECK(kc_rollback_resume(rb2, &err) == 0);
	KC_CHECK(wait_restores(&k, 1, 2000));
	KC_CHECK_STREQ(k.restored, "before");
	KC_CHECK(access(marker, F_OK) != 0);
	kc_rollback_free(rb2);
	json_decref(change);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	snprintf(marker, sizeof(marker), "%s/pending.json", dir);
	kc_test_run_registered();
	unlink(marker);
	rmdir(dir);
	return kc_test_finish();
}
