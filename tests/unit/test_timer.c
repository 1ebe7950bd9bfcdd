#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"
#include "timer.h"
#include "tmpdir.h"

#include <stdlib.h>
#include <string.h>

struct fixture {
    char *dir;
    struct rs_store *st;
    /* what fired, in order */
    char fired[16][16];
    int64_t deadlines[16];
    int n_fired;
    int rearm_once; /* re-arm the first fired timer 100 ms later, from inside the callback */
};

static int timer_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 4, NULL), 0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    *state = f;
    return 0;
}

static int timer_teardown(void **state)
{
    struct fixture *f = *state;

    rs_store_abort(f->st);
    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

#define B(s) ((struct rs_bytes){ (s), strlen(s) })

static int on_fire(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                   int64_t deadline_ms, struct rs_bytes payload)
{
    struct fixture *f = opaque;

    assert_int_equal(rule, 7);
    assert_int_equal(payload.len, 1);
    memcpy(f->fired[f->n_fired], entity.ptr, entity.len);
    f->fired[f->n_fired][entity.len] = '\0';
    f->deadlines[f->n_fired++] = deadline_ms;
    if (f->rearm_once) {
        f->rearm_once = 0;
        assert_int_equal(
            rs_timer_arm(f->st, partition, rule, entity, deadline_ms + 100, payload, NULL), 0);
    }
    return 0;
}

static void arm(struct fixture *f, uint32_t partition, const char *entity, int64_t deadline)
{
    assert_int_equal(rs_timer_arm(f->st, partition, 7, B(entity), deadline, B("p"), NULL), 0);
}

static int fire(struct fixture *f, uint32_t partition, int64_t watermark, int64_t *next)
{
    return rs_timer_fire_due(f->st, partition, watermark, 0, on_fire, f, next, NULL);
}

static void test_timer_fires_due_timers_in_deadline_order(void **state)
{
    struct fixture *f = *state;
    int64_t next;

    arm(f, 0, "c", 3000);
    arm(f, 0, "a", 1000);
    arm(f, 0, "b", 2000);
    arm(f, 0, "late", 9000);
    assert_int_equal(fire(f, 0, 3000, &next), 3);
    assert_string_equal(f->fired[0], "a");
    assert_string_equal(f->fired[1], "b");
    assert_string_equal(f->fired[2], "c");
    assert_int_equal(next, 9000);
    /* Fired timers are gone: the same watermark fires nothing more. */
    assert_int_equal(fire(f, 0, 3000, &next), 0);
}

static void test_timer_deadline_after_watermark_does_not_fire(void **state)
{
    struct fixture *f = *state;
    int64_t next;

    arm(f, 0, "a", 1000);
    assert_int_equal(fire(f, 0, 999, &next), 0);
    assert_int_equal(next, 1000);
    assert_int_equal(fire(f, 0, 1000, &next), 1);
    assert_int_equal(next, RS_TIMER_NONE);
}

static void test_timer_cancel_removes_timer(void **state)
{
    struct fixture *f = *state;
    int64_t next;

    arm(f, 0, "a", 1000);
    arm(f, 0, "b", 1000);
    assert_int_equal(rs_timer_cancel(f->st, 0, 7, B("a"), NULL), 0);
    assert_int_equal(rs_timer_cancel(f->st, 0, 7, B("a"), NULL), RS_ENOTFOUND);
    assert_int_equal(fire(f, 0, 5000, &next), 1);
    assert_string_equal(f->fired[0], "b");
}

static void test_timer_rearm_replaces_the_old_deadline(void **state)
{
    struct fixture *f = *state;
    int64_t next, deadline;

    arm(f, 0, "a", 1000);
    arm(f, 0, "a", 4000);
    assert_int_equal(rs_timer_deadline(f->st, 0, 7, B("a"), &deadline, NULL), 0);
    assert_int_equal(deadline, 4000);
    assert_int_equal(fire(f, 0, 3999, &next), 0);
    assert_int_equal(next, 4000);
    assert_int_equal(fire(f, 0, 4000, &next), 1);
    assert_int_equal(f->deadlines[0], 4000);
}

static void test_timer_callback_may_rearm_the_fired_timer(void **state)
{
    struct fixture *f = *state;
    int64_t next;

    arm(f, 0, "a", 1000);
    f->rearm_once = 1;
    /* The re-armed deadline (1100) is within the watermark: it fires in the same pass. */
    assert_int_equal(fire(f, 0, 1200, &next), 2);
    assert_int_equal(f->deadlines[0], 1000);
    assert_int_equal(f->deadlines[1], 1100);
}

static void test_timer_partitions_are_independent(void **state)
{
    struct fixture *f = *state;
    int64_t next;

    arm(f, 1, "a", 1000);
    arm(f, 2, "a", 500);
    assert_int_equal(fire(f, 1, 800, &next), 0);
    assert_int_equal(next, 1000);
    assert_int_equal(rs_timer_next_deadline(f->st, 2, &next, NULL), 0);
    assert_int_equal(next, 500);
    assert_int_equal(rs_timer_next_deadline(f->st, 3, &next, NULL), 0);
    assert_int_equal(next, RS_TIMER_NONE);
}

static void test_timer_negative_and_large_deadlines_order_correctly(void **state)
{
    struct fixture *f = *state;
    int64_t next;

    arm(f, 0, "big", INT64_C(1772409600000));
    arm(f, 0, "neg", -5);
    assert_int_equal(fire(f, 0, 0, &next), 1);
    assert_string_equal(f->fired[0], "neg");
    assert_int_equal(next, INT64_C(1772409600000));
}

static void test_timer_rejects_empty_or_oversized_entity(void **state)
{
    struct fixture *f = *state;
    char big[RS_TIMER_ENTITY_MAX + 2];
    struct rs_err err;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rs_timer_arm(f->st, 0, 7, B(big), 1, B("p"), &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "entity id"));
    assert_int_equal(rs_timer_arm(f->st, 0, 7, B(""), 1, B("p"), NULL), RS_ESTORE);
}

static void test_watermark_follows_event_time_minus_lateness_while_catching_up(void **state)
{
    struct rs_watermark wm;
    const int64_t now = 1000000; /* the injected clock, far ahead of the events */

    (void)state;
    rs_watermark_init(&wm, 600, INT64_MIN);
    assert_int_equal(rs_watermark_at(&wm, now), INT64_MIN);
    assert_true(rs_watermark_observe(&wm, 5000));
    assert_int_equal(rs_watermark_at(&wm, now), 4400);
    /* A late event does not move it back. */
    assert_false(rs_watermark_observe(&wm, 4000));
    assert_int_equal(rs_watermark_at(&wm, now), 4400);
}

static void test_watermark_follows_the_clock_once_caught_up(void **state)
{
    struct rs_watermark wm;

    (void)state;
    rs_watermark_init(&wm, 600, 5000);
    wm.caught_up = true;
    assert_int_equal(rs_watermark_at(&wm, 7000), 7000);
    /* A clock behind the events never pulls the watermark below event time. */
    assert_int_equal(rs_watermark_at(&wm, 1000), 4400);
    /* Caught up with no event yet: the clock alone. */
    rs_watermark_init(&wm, 600, INT64_MIN);
    wm.caught_up = true;
    assert_int_equal(rs_watermark_at(&wm, 7000), 7000);
}

static void test_idle_partition_fires_on_clock_not_on_events(void **state)
{
    struct fixture *f = *state;
    struct rs_watermark wm;
    int64_t next;
    int64_t clock = 1000; /* injected */

    rs_watermark_init(&wm, 600, INT64_MIN);
    (void)rs_watermark_observe(&wm, 1000);
    arm(f, 0, "lead", 1300);
    /* Catching up: event time 1000 - lateness 600 is far from 1300. */
    clock = 1400;
    assert_int_equal(fire(f, 0, rs_watermark_at(&wm, clock), &next), 0);
    /* Caught up and idle: the clock passes the deadline with no further event. */
    wm.caught_up = true;
    assert_int_equal(fire(f, 0, rs_watermark_at(&wm, clock), &next), 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, timer_setup, timer_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_timer_fires_due_timers_in_deadline_order),
        T(test_timer_deadline_after_watermark_does_not_fire),
        T(test_timer_cancel_removes_timer),
        T(test_timer_rearm_replaces_the_old_deadline),
        T(test_timer_callback_may_rearm_the_fired_timer),
        T(test_timer_partitions_are_independent),
        T(test_timer_negative_and_large_deadlines_order_correctly),
        T(test_timer_rejects_empty_or_oversized_entity),
        cmocka_unit_test(test_watermark_follows_event_time_minus_lateness_while_catching_up),
        cmocka_unit_test(test_watermark_follows_the_clock_once_caught_up),
        T(test_idle_partition_fires_on_clock_not_on_events),
    };

    return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
