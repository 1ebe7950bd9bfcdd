#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"
#include "timer.h"
#include "tmpdir.h"

#include <stdio.h>
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

static void test_timer_arm_new_and_cancel_at_skip_the_lookup(void **state)
{
    struct fixture *f = *state;
    int64_t next, d;

    assert_int_equal(rs_timer_arm_new(f->st, 0, 7, B("a"), 1000, B("p"), NULL), 0);
    assert_int_equal(rs_timer_arm_new(f->st, 0, 7, B("b"), 2000, B("p"), NULL), 0);
    assert_int_equal(rs_timer_deadline(f->st, 0, 7, B("a"), &d, NULL), 0);
    assert_int_equal(d, 1000);
    /* The right deadline: gone, index and all. */
    assert_int_equal(rs_timer_cancel_at(f->st, 0, 7, B("a"), 1000, NULL), 0);
    assert_int_equal(rs_timer_deadline(f->st, 0, 7, B("a"), &d, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_timer_cancel_at(f->st, 0, 7, B("a"), 1000, NULL), RS_ENOTFOUND);
    /* A wrong one drops the index entry, and the timer still fires, as documented. */
    assert_int_equal(rs_timer_cancel_at(f->st, 0, 7, B("b"), 1999, NULL), 0);
    assert_int_equal(rs_timer_deadline(f->st, 0, 7, B("b"), &d, NULL), RS_ENOTFOUND);
    assert_int_equal(fire(f, 0, 3000, &next), 1);
    assert_string_equal(f->fired[0], "b");
    assert_int_equal(next, RS_TIMER_NONE);
}

/* ---- the near view against a model ---- */

#define M_ENTITIES 12
#define M_PARTS    2

/* The model: per (partition, entity), the deadline (RS_TIMER_NONE: no timer). */
struct model {
    int64_t deadline[M_PARTS][M_ENTITIES];
};

struct model_fire {
    struct model *m;
    uint32_t partition;
    int64_t watermark;
    int64_t last; /* the last fired deadline: the order must not go back */
    int last_entity;
    int n;
};

static int model_on_fire(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                         int64_t deadline_ms, struct rs_bytes payload)
{
    struct model_fire *mf = opaque;
    int e;

    assert_int_equal(partition, mf->partition);
    assert_int_equal(rule, 7);
    assert_int_equal(entity.len, 3);
    e = (((const char *)entity.ptr)[1] - '0') * 10 + (((const char *)entity.ptr)[2] - '0');
    assert_true(e >= 0 && e < M_ENTITIES);
    /* It was armed with that deadline, it is due, and it comes in key order. */
    assert_int_equal(mf->m->deadline[partition][e], deadline_ms);
    assert_true(deadline_ms <= mf->watermark);
    assert_true(deadline_ms > mf->last || (deadline_ms == mf->last && e > mf->last_entity));
    assert_int_equal(payload.len, 2);
    assert_int_equal(((const uint8_t *)payload.ptr)[0], (uint8_t)e);
    mf->last = deadline_ms;
    mf->last_entity = e;
    mf->m->deadline[partition][e] = RS_TIMER_NONE;
    mf->n++;
    return 0;
}

static int64_t model_min(const struct model *m, uint32_t partition)
{
    int64_t min = RS_TIMER_NONE;

    for (int e = 0; e < M_ENTITIES; e++) {
        if (m->deadline[partition][e] < min) {
            min = m->deadline[partition][e];
        }
    }
    return min;
}

/*
 * Arms, re-arms, cancels, fires, commits and aborts at random over two partitions, with a
 * view of 1 to 4 timers so that it fills, sheds its latest and reloads all the time; after
 * every step the timers fire exactly as the model says, in key order, and the next deadline
 * is never later than the model's.
 */
static void test_timer_view_answers_as_lmdb_would(void **state)
{
    struct fixture *f = *state;
    struct model m, committed;
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    int64_t wm[M_PARTS] = { 0, 0 };

    for (int p = 0; p < M_PARTS; p++) {
        for (int e = 0; e < M_ENTITIES; e++) {
            m.deadline[p][e] = RS_TIMER_NONE;
        }
    }
    committed = m;
    for (int step = 0; step < 20000; step++) {
        uint32_t r, p;
        int e;
        char ent[4];

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        r = (uint32_t)(seed >> 16);
        p = r % M_PARTS;
        e = (int)((r >> 4) % M_ENTITIES);
        (void)snprintf(ent, sizeof(ent), "e%02d", e);
        if (step % 1000 == 0) {
            rs_timer_view_limit(f->st, 1 + (size_t)(step / 1000) % 4);
        }
        switch ((r >> 12) % 16) {
        case 0: /* commit */
            assert_int_equal(rs_store_commit(f->st, NULL), 0);
            assert_int_equal(rs_store_begin(f->st, NULL), 0);
            committed = m;
            break;
        case 1: /* abort: back to the last commit */
            rs_store_abort(f->st);
            assert_int_equal(rs_store_begin(f->st, NULL), 0);
            m = committed;
            break;
        case 2:
        case 3: { /* cancel */
            int rc = rs_timer_cancel(f->st, p, 7, B(ent), NULL);

            assert_int_equal(rc, m.deadline[p][e] == RS_TIMER_NONE ? RS_ENOTFOUND : 0);
            m.deadline[p][e] = RS_TIMER_NONE;
            break;
        }
        case 4:
        case 5:
        case 6: { /* fire what the watermark passed */
            struct model_fire mf = { &m, p, 0, INT64_MIN, -1, 0 };
            int64_t next, expect = 0;

            wm[p] += (int64_t)((r >> 20) % 8);
            mf.watermark = wm[p];
            for (int i = 0; i < M_ENTITIES; i++) {
                expect += m.deadline[p][i] <= wm[p];
            }
            assert_int_equal(rs_timer_fire_due(f->st, p, wm[p], 0, model_on_fire, &mf, &next, NULL),
                             expect);
            assert_int_equal(mf.n, expect);
            assert_true(next > wm[p]);
            assert_true(next <= model_min(&m, p));
            break;
        }
        case 7: { /* the next deadline */
            int64_t next;

            assert_int_equal(rs_timer_next_deadline(f->st, p, &next, NULL), 0);
            assert_true(next <= model_min(&m, p));
            break;
        }
        default: { /* arm or re-arm, due soon or later */
            int64_t d = wm[p] + (int64_t)((r >> 20) % 40) - 4;
            uint8_t pl[2] = { (uint8_t)e, 0 };

            assert_int_equal(rs_timer_arm(f->st, p, 7, B(ent), d, (struct rs_bytes){ pl, 2 }, NULL),
                             0);
            m.deadline[p][e] = d;
            break;
        }
        }
    }
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
        T(test_timer_arm_new_and_cancel_at_skip_the_lookup),
        T(test_timer_view_answers_as_lmdb_would),
    };

    return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
