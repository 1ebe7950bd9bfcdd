#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dedup.h"
#include "tmpdir.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS  (INT64_C(86400) * 1000)
#define WINDOW  (7 * DAY_MS)
#define T0      (INT64_C(1767225600) * 1000) /* 2026-01-01T00:00:00Z */
#define NO_MARK INT64_MIN                    /* the watermark before the first event */

struct fixture {
    char *dir;
    struct rs_store *st;
};

/* A fresh store with a batch open: every dedup call runs inside the caller's batch. */
static int dedup_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 1, NULL), 0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    *state = f;
    return 0;
}

static int dedup_teardown(void **state)
{
    struct fixture *f = *state;

    rs_store_close(f->st); /* aborts the batch */
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

/* Check `id` and return *duplicate; the call itself must succeed. */
static bool
seen(struct rs_store *st, uint32_t partition, struct rs_str id, int64_t ts_ms, int64_t watermark_ms,
     int64_t window_ms)
{
    struct rs_err err;
    bool dup = true; /* the call must set it either way */
    int rc = rs_dedup_check(st, partition, id, ts_ms, watermark_ms, window_ms, &dup, &err);

    if (rc != 0) {
        fail_msg("rs_dedup_check: %d %s", rc, err.msg);
    }
    return dup;
}

static void assert_entries(struct rs_store *st, uint64_t n)
{
    assert_int_equal(rs_store_count(st, RS_DB_DEDUP), n);
    assert_int_equal(rs_store_count(st, RS_DB_DEDUP_EXPIRY), n);
}

static void test_dedup_first_sighting_is_new_and_the_second_a_duplicate(void **state)
{
    struct fixture *f = *state;

    assert_false(seen(f->st, 0, S("ev-1"), T0, NO_MARK, WINDOW));
    assert_entries(f->st, 1);
    assert_true(seen(f->st, 0, S("ev-1"), T0, T0, WINDOW));
    assert_true(seen(f->st, 0, S("ev-1"), T0 + DAY_MS, T0, WINDOW)); /* a resend, later ts */
    assert_false(seen(f->st, 0, S("ev-2"), T0, T0, WINDOW));
    assert_false(seen(f->st, 0, S("ev-10"), T0, T0, WINDOW)); /* not a prefix match */
    assert_entries(f->st, 3);
}

static void test_dedup_survives_the_commit_of_the_batch(void **state)
{
    struct fixture *f = *state;

    assert_false(seen(f->st, 3, S("ev-1"), T0, NO_MARK, WINDOW));
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_true(seen(f->st, 3, S("ev-1"), T0, T0, WINDOW));
}

static void test_dedup_same_id_on_another_partition_is_not_a_duplicate(void **state)
{
    struct fixture *f = *state;

    assert_false(seen(f->st, 0, S("ev-1"), T0, NO_MARK, WINDOW));
    assert_false(seen(f->st, 1, S("ev-1"), T0, NO_MARK, WINDOW));
    assert_false(seen(f->st, UINT32_MAX, S("ev-1"), T0, NO_MARK, WINDOW));
    assert_true(seen(f->st, 1, S("ev-1"), T0, T0, WINDOW));
    assert_entries(f->st, 3);
}

static void test_dedup_expire_by_event_time_removes_both_entries(void **state)
{
    struct fixture *f = *state;
    int64_t mark = T0 + WINDOW + DAY_MS; /* cutoff T0 + 1 day */

    assert_false(seen(f->st, 0, S("old"), T0, NO_MARK, WINDOW));
    assert_false(seen(f->st, 0, S("edge"), T0 + DAY_MS, T0, WINDOW));
    assert_false(seen(f->st, 0, S("young"), T0 + 2 * DAY_MS, T0, WINDOW));
    assert_false(seen(f->st, 1, S("other"), T0, T0, WINDOW));
    assert_entries(f->st, 4);

    assert_int_equal(rs_dedup_expire(f->st, 0, rs_dedup_cutoff_ms(mark, WINDOW), 0, NULL), 1);
    assert_entries(f->st, 3); /* "edge" sits at the cutoff: kept; partition 1 untouched */
    assert_int_equal(rs_dedup_expire(f->st, 0, rs_dedup_cutoff_ms(mark, WINDOW), 0, NULL), 0);
    assert_true(seen(f->st, 0, S("edge"), T0 + DAY_MS, mark, WINDOW));
    assert_true(seen(f->st, 1, S("other"), T0, T0, WINDOW));

    /* Expired: a resend with a fresh time is applied again and recorded again. */
    assert_false(seen(f->st, 0, S("old"), mark, mark, WINDOW));
    assert_entries(f->st, 4);
    assert_true(seen(f->st, 0, S("old"), mark, mark, WINDOW));
}

static void test_dedup_expire_respects_max_and_goes_oldest_first(void **state)
{
    static const int64_t days[] = { 5, 1, 4, 2, 3 }; /* recorded out of order */
    static const char *const ids[] = { "e5", "e1", "e4", "e2", "e3" };
    struct fixture *f = *state;
    int64_t before = T0 + 10 * DAY_MS;

    for (size_t i = 0; i < 5; i++) {
        assert_false(seen(f->st, 7, S(ids[i]), T0 + days[i] * DAY_MS, NO_MARK, WINDOW));
    }
    assert_false(seen(f->st, 8, S("e0"), T0, NO_MARK, WINDOW)); /* another partition */
    assert_int_equal(rs_dedup_expire(f->st, 7, before, 2, NULL), 2);
    assert_entries(f->st, 4);
    /* e1 and e2 went; with no watermark nothing is out of the window, so the rest still are. */
    assert_true(seen(f->st, 7, S("e3"), T0, NO_MARK, WINDOW));
    assert_true(seen(f->st, 7, S("e4"), T0, NO_MARK, WINDOW));
    assert_true(seen(f->st, 7, S("e5"), T0, NO_MARK, WINDOW));
    assert_false(seen(f->st, 7, S("e1"), T0 + 11 * DAY_MS, NO_MARK, WINDOW));
    assert_false(seen(f->st, 7, S("e2"), T0 + 11 * DAY_MS, NO_MARK, WINDOW));
    /* e3..e5 only: the new e1 and e2 lie at day 11, not before day 10. */
    assert_int_equal(rs_dedup_expire(f->st, 7, before, 0, NULL), 3);
    assert_entries(f->st, 3);
    assert_true(seen(f->st, 8, S("e0"), T0, NO_MARK, WINDOW));
}

static void test_dedup_event_older_than_the_window_is_applied_but_not_recorded(void **state)
{
    struct fixture *f = *state;
    int64_t mark = T0 + 30 * DAY_MS;
    int64_t late = mark - WINDOW - 1; /* one millisecond past the window */

    assert_false(seen(f->st, 0, S("late"), late, mark, WINDOW));
    assert_entries(f->st, 0);
    assert_false(seen(f->st, 0, S("late"), late, mark, WINDOW)); /* unchecked, applied again */
    assert_true(late < rs_dedup_cutoff_ms(mark, WINDOW));        /* what the caller counts */
    assert_false(seen(f->st, 0, S("edge"), mark - WINDOW, mark, WINDOW));
    assert_entries(f->st, 1);
    assert_true(seen(f->st, 0, S("edge"), mark - WINDOW, mark, WINDOW));
}

static void test_dedup_entry_out_of_the_window_but_not_expired_counts_as_absent(void **state)
{
    struct fixture *f = *state;
    int64_t mark = T0 + WINDOW + DAY_MS;

    assert_false(seen(f->st, 0, S("ev"), T0, NO_MARK, WINDOW));
    /* No rs_dedup_expire() ran: the answer must still be the same as if it had. */
    assert_false(seen(f->st, 0, S("ev"), mark, mark, WINDOW));
    assert_entries(f->st, 1); /* replaced, not added: the old index entry went too */
    assert_int_equal(rs_dedup_expire(f->st, 0, mark, 0, NULL), 0);
    assert_int_equal(rs_dedup_expire(f->st, 0, mark + 1, 0, NULL), 1);
    assert_entries(f->st, 0);

    /* Out of the window on both sides: forgotten and not recorded again. */
    assert_false(seen(f->st, 0, S("ev2"), T0, NO_MARK, WINDOW));
    assert_false(seen(f->st, 0, S("ev2"), T0, mark, WINDOW));
    assert_entries(f->st, 0);
}

static void test_dedup_window_zero_records_nothing(void **state)
{
    struct fixture *f = *state;

    assert_false(seen(f->st, 0, S("ev"), T0, NO_MARK, 0));
    assert_false(seen(f->st, 0, S("ev"), T0, T0, 0));
    assert_entries(f->st, 0);
    /* Turning it off hides what an earlier run recorded rather than reading it. */
    assert_false(seen(f->st, 0, S("kept"), T0, T0, WINDOW));
    assert_false(seen(f->st, 0, S("kept"), T0, T0, 0));
    assert_entries(f->st, 1);
}

static void test_dedup_ids_at_the_length_limit(void **state)
{
    struct fixture *f = *state;
    char id[RS_EVENT_ID_MAX + 1];
    struct rs_str full = { id, RS_EVENT_ID_MAX };
    struct rs_str shorter = { id, RS_EVENT_ID_MAX - 1 };
    struct rs_str too_long = { id, RS_EVENT_ID_MAX + 1 };
    struct rs_err err;
    bool dup = true;

    for (size_t i = 0; i < sizeof(id); i++) {
        id[i] = (char)(i * 37); /* every byte value appears, NUL among them */
    }
    assert_false(seen(f->st, 0, full, T0, NO_MARK, WINDOW));
    assert_false(seen(f->st, 0, shorter, T0, NO_MARK, WINDOW));
    assert_true(seen(f->st, 0, full, T0, T0, WINDOW));
    assert_true(seen(f->st, 0, shorter, T0, T0, WINDOW));
    assert_int_equal(rs_dedup_check(f->st, 0, too_long, T0, T0, WINDOW, &dup, &err), RS_EINVAL);
    assert_false(dup);
    assert_non_null(strstr(err.msg, "257 bytes"));
    assert_entries(f->st, 2);
    assert_int_equal(rs_dedup_expire(f->st, 0, T0 + 1, 0, NULL), 2);
    assert_entries(f->st, 0);
    assert_false(seen(f->st, 0, full, T0 + 1, T0 + 1, WINDOW));
}

static void test_dedup_cutoff_saturates_and_is_off_without_a_window(void **state)
{
    (void)state;
    assert_int_equal(rs_dedup_cutoff_ms(T0, WINDOW), T0 - WINDOW);
    assert_int_equal(rs_dedup_cutoff_ms(T0, 0), INT64_MIN);
    assert_int_equal(rs_dedup_cutoff_ms(NO_MARK, WINDOW), INT64_MIN);
    assert_int_equal(rs_dedup_cutoff_ms(INT64_MIN + WINDOW - 1, WINDOW), INT64_MIN);
    assert_int_equal(rs_dedup_cutoff_ms(INT64_MIN + WINDOW, WINDOW), INT64_MIN);
    assert_int_equal(rs_dedup_cutoff_ms(INT64_MIN + WINDOW + 1, WINDOW), INT64_MIN + 1);
}

static void test_dedup_outside_a_batch_fails_with_estore(void **state)
{
    struct fixture *f = *state;
    bool dup = true;

    rs_store_abort(f->st);
    assert_int_equal(rs_dedup_check(f->st, 0, S("ev"), T0, NO_MARK, WINDOW, &dup, NULL), RS_ESTORE);
    assert_false(dup);
    assert_int_equal(rs_dedup_expire(f->st, 0, T0, 0, NULL), RS_ESTORE);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, dedup_setup, dedup_teardown)
    const struct CMUnitTest tests[] = {
        T(test_dedup_first_sighting_is_new_and_the_second_a_duplicate),
        T(test_dedup_survives_the_commit_of_the_batch),
        T(test_dedup_same_id_on_another_partition_is_not_a_duplicate),
        T(test_dedup_expire_by_event_time_removes_both_entries),
        T(test_dedup_expire_respects_max_and_goes_oldest_first),
        T(test_dedup_event_older_than_the_window_is_applied_but_not_recorded),
        T(test_dedup_entry_out_of_the_window_but_not_expired_counts_as_absent),
        T(test_dedup_window_zero_records_nothing),
        T(test_dedup_ids_at_the_length_limit),
        T(test_dedup_cutoff_saturates_and_is_off_without_a_window),
        T(test_dedup_outside_a_batch_fails_with_estore),
#undef T
    };

    return cmocka_run_group_tests_name("dedup", tests, NULL, NULL);
}
