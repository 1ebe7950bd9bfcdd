#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "event.h"
#include "sla.h"
#include "store.h"
#include "timer.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN (60 * INT64_C(1000))
#define T0  INT64_C(1772409600000)

struct seen {
    enum rs_alert_kind kind;
    char id[65];
    char retracts[65];
    char level[16];
    char status[24];
    char lead[32];
    int64_t elapsed_ms;
    int64_t evaluated_at_ms;
};

struct fixture {
    char *dir;
    struct rs_store *st;
    struct rs_sla sla;
    int64_t next_deadline;
    struct seen alerts[64];
    int n;
};

static int record_alert(void *opaque, const struct rs_alert *a, struct rs_err *err)
{
    struct fixture *f = opaque;
    struct seen *s = &f->alerts[f->n++];

    (void)err;
    assert_true(f->n < 64);
    s->kind = a->kind;
    memcpy(s->id, a->alert_id, 65);
    memcpy(s->retracts, a->retracts_id, 65);
    (void)snprintf(s->level, sizeof(s->level), "%s", a->level);
    (void)snprintf(s->status, sizeof(s->status), "%s", a->status);
    (void)snprintf(s->lead, sizeof(s->lead), "%.*s", (int)a->entity_id.len, a->entity_id.ptr);
    s->elapsed_ms = a->elapsed_ms;
    s->evaluated_at_ms = a->evaluated_at_ms;
    assert_int_equal(strlen(a->alert_id), 64);
    assert_string_equal(a->sla_type, "SLA-01_speed_to_lead");
    return 0;
}

static const struct rs_sla_config cfg = {
    { 5 * MIN, 60 * MIN, 24 * 60 * MIN },
    80,
    200,
};

static int sla_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 4, NULL), 0);
    rs_sla_init(&f->sla, &cfg, record_alert, f);
    f->next_deadline = RS_TIMER_NONE;
    *state = f;
    return 0;
}

static int sla_teardown(void **state)
{
    struct fixture *f = *state;

    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

/* Each helper applies one event in its own committed batch, as the engine would. */
static void
apply(struct fixture *f, const struct rs_event *ev)
{
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_sla_apply(&f->sla, f->st, 0, ev, &f->next_deadline, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
}

static void created(struct fixture *f, const char *lead, enum rs_intent_tier tier, int64_t ts)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_LEAD_CREATED;
    ev.id = S("e1");
    ev.ts_ms = ts;
    ev.u.lead_created.lead_id = S(lead);
    ev.u.lead_created.channel = S("demo_request");
    ev.u.lead_created.intent_tier = tier;
    ev.u.lead_created.segment = S("smb");
    ev.u.lead_created.owner_id = S("rep-1");
    apply(f, &ev);
}

static void touched(struct fixture *f, const char *lead, int64_t ts, enum rs_actor_type actor,
                    enum rs_direction dir)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_LEAD_TOUCHED;
    ev.id = S("e2");
    ev.ts_ms = ts;
    ev.u.lead_touched.lead_id = S(lead);
    ev.u.lead_touched.rep_id = S("rep-1");
    ev.u.lead_touched.actor_type = actor;
    ev.u.lead_touched.direction = dir;
    apply(f, &ev);
}

static void human_touch(struct fixture *f, const char *lead, int64_t ts)
{
    touched(f, lead, ts, RS_ACTOR_HUMAN, RS_DIR_OUTBOUND);
}

static void simple(struct fixture *f, enum rs_event_type type, const char *lead, const char *into,
                   int64_t ts)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.id = S("e3");
    ev.ts_ms = ts;
    if (type == RS_EV_LEAD_MERGED) {
        ev.u.lead_merged.lead_id = S(lead);
        ev.u.lead_merged.into_lead_id = S(into);
    } else if (type == RS_EV_LEAD_CONVERTED) {
        ev.u.lead_converted.lead_id = S(lead);
        ev.u.lead_converted.account_id = S("acct");
        ev.u.lead_converted.contact_id = S("c");
    } else {
        ev.u.lead_disqualified.lead_id = S(lead);
        ev.u.lead_disqualified.reason = S("spam");
    }
    apply(f, &ev);
}

static int fire(struct fixture *f, int64_t watermark)
{
    int n;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    n = rs_sla_fire(&f->sla, f->st, 0, watermark, &f->next_deadline, NULL);
    assert_true(n >= 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    return n;
}

static struct rs_sla_stats stats(struct fixture *f)
{
    struct rs_sla_stats s;

    assert_int_equal(rs_sla_stats(f->st, &s, NULL), 0);
    return s;
}

static void test_sla_touch_in_time_meets_without_alerts(void **state)
{
    struct fixture *f = *state;
    struct rs_sla_stats s;

    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(f->next_deadline, T0 + 4 * MIN + 1); /* L0 at 80% of 5 min */
    human_touch(f, "L1", T0 + 3 * MIN);
    assert_int_equal(fire(f, T0 + 60 * MIN), 0);
    assert_int_equal(f->n, 0);
    s = stats(f);
    assert_int_equal(s.leads, 1);
    assert_int_equal(s.met, 1);
    assert_true(s.p50_response_ms == (double)(3 * MIN));
}

static void test_sla_untouched_lead_climbs_the_ladder(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(fire(f, T0 + 4 * MIN), 0); /* exactly 80%: not yet late */
    assert_int_equal(fire(f, T0 + 4 * MIN + 1), 1);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->alerts[0].kind, RS_ALERT_WARNING);
    assert_string_equal(f->alerts[0].level, "L0_warning");
    assert_int_equal(fire(f, T0 + 5 * MIN + 1), 1);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
    assert_string_equal(f->alerts[1].level, "L1_breach");
    assert_string_equal(f->alerts[1].status, "breached");
    assert_int_equal(f->alerts[1].elapsed_ms, 5 * MIN);
    assert_int_equal(fire(f, T0 + 10 * MIN + 1), 1);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_ESCALATED);
    assert_int_equal(fire(f, T0 + 1000 * MIN), 0); /* the ladder ends at L2 */
    assert_int_equal(f->n, 3);
    assert_int_equal(f->next_deadline, RS_TIMER_NONE);
    assert_string_not_equal(f->alerts[0].id, f->alerts[1].id);
    assert_int_equal(stats(f).breached, 1);
}

static void test_sla_one_watermark_jump_fires_every_passed_level_in_order(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(fire(f, T0 + 11 * MIN), 3);
    assert_int_equal(f->alerts[0].kind, RS_ALERT_WARNING);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_ESCALATED);
}

static void test_sla_touch_after_breach_recovers_with_real_response_time(void **state)
{
    struct fixture *f = *state;
    struct rs_sla_stats s;

    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(fire(f, T0 + 6 * MIN), 2); /* L0, L1 */
    human_touch(f, "L1", T0 + 7 * MIN);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[2].level, "resolved");
    assert_string_equal(f->alerts[2].status, "breached_then_met");
    assert_int_equal(f->alerts[2].elapsed_ms, 7 * MIN);
    assert_int_equal(fire(f, T0 + 60 * MIN), 0); /* no escalation after the touch */
    s = stats(f);
    assert_int_equal(s.breached_then_met, 1);
    assert_true(s.p50_response_ms == (double)(7 * MIN));
}

static void test_sla_late_touch_before_deadline_retracts_fired_levels(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    /* The wall clock fired L0 and L1 ... */
    assert_int_equal(fire(f, T0 + 6 * MIN), 2);
    /* ... then a touch made at 3 minutes arrives late. */
    human_touch(f, "L1", T0 + 3 * MIN);
    assert_int_equal(f->n, 4);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[2].retracts, f->alerts[0].id);
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[3].retracts, f->alerts[1].id);
    assert_string_not_equal(f->alerts[3].id, f->alerts[1].id);
    assert_string_equal(f->alerts[3].status, "met");
    assert_int_equal(stats(f).met, 1);
}

static void test_sla_late_touch_between_warning_and_deadline_retracts_only_breach(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(fire(f, T0 + 6 * MIN), 2);
    human_touch(f, "L1", T0 + 4 * MIN + 30000); /* after L0 (4 min), before L1 (5 min) */
    assert_int_equal(f->n, 4);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[2].retracts, f->alerts[1].id);
    /* The warning stood: it gets its resolution, with the SLA met. */
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[3].status, "met");
}

static void test_sla_touch_past_unfired_levels_publishes_them_then_recovers(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    /* The watermark never reached the deadline, but the touch came at 6 minutes. */
    human_touch(f, "L1", T0 + 6 * MIN);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->alerts[0].kind, RS_ALERT_WARNING);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RECOVERED);
}

static void test_sla_alert_ids_do_not_depend_on_when_the_watermark_came(void **state)
{
    struct fixture *f = *state;
    char breach_by_timer[65];

    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(fire(f, T0 + 5 * MIN + 1), 2);
    memcpy(breach_by_timer, f->alerts[1].id, 65);
    human_touch(f, "L1", T0 + 6 * MIN);

    /* The same lead in a second store where the touch arrives before the watermark. */
    created(f, "L2", RS_TIER_HIGH, T0);
    f->n = 0;
    {
        struct fixture g;
        char *dir = rs_test_tmpdir_new();

        memset(&g, 0, sizeof(g));
        assert_int_equal(rs_store_open(&g.st, dir, 4, NULL), 0);
        rs_sla_init(&g.sla, &cfg, record_alert, &g);
        g.next_deadline = RS_TIMER_NONE;
        created(&g, "L1", RS_TIER_HIGH, T0);
        human_touch(&g, "L1", T0 + 6 * MIN);
        assert_int_equal(g.n, 3);
        assert_string_equal(g.alerts[1].id, breach_by_timer);
        rs_store_close(g.st);
        rs_test_tmpdir_remove(dir);
    }
}

static void test_sla_touch_exactly_at_threshold_meets(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    human_touch(f, "L1", T0 + 5 * MIN);
    assert_int_equal(stats(f).met, 1);
    /* Only the warning (80%) had passed; it is resolved as met. */
    assert_int_equal(f->n, 2);
    assert_int_equal(f->alerts[0].kind, RS_ALERT_WARNING);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[1].status, "met");
}

static void test_sla_earlier_touch_arriving_after_a_later_one_restates(void **state)
{
    struct fixture *f = *state;
    struct rs_sla_stats s;

    created(f, "L1", RS_TIER_HIGH, T0);
    human_touch(f, "L1", T0 + 11 * MIN); /* L0, L1, L2 and the resolution */
    assert_int_equal(f->n, 4);
    human_touch(f, "L1", T0 + 2 * MIN); /* made earlier, arrived later */
    assert_int_equal(f->n, 7);
    for (int i = 4; i < 7; i++) {
        assert_int_equal(f->alerts[i].kind, RS_ALERT_RETRACTED);
        assert_string_equal(f->alerts[i].retracts, f->alerts[i - 4].id);
    }
    s = stats(f);
    assert_int_equal(s.met, 1);
    assert_true(s.p50_response_ms == (double)(2 * MIN));
    human_touch(f, "L1", T0 + 3 * MIN); /* later than the response: nothing */
    assert_int_equal(f->n, 7);
}

static void test_sla_merge_into_survivor_not_yet_created_carries_start_and_touch(void **state)
{
    struct fixture *f = *state;

    created(f, "old", RS_TIER_HIGH, T0);
    simple(f, RS_EV_LEAD_MERGED, "old", "new", T0 + MIN);
    created(f, "new", RS_TIER_HIGH, T0 + 3 * MIN);
    /* The survivor's clock starts at T0, the merged record's creation. */
    assert_int_equal(fire(f, T0 + 5 * MIN + 1), 2);
    assert_string_equal(f->alerts[1].lead, "new");
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);

    created(f, "a", RS_TIER_HIGH, T0);
    human_touch(f, "a", T0 + MIN);
    simple(f, RS_EV_LEAD_MERGED, "a", "b", T0 + 2 * MIN);
    created(f, "b", RS_TIER_HIGH, T0 + 2 * MIN);
    assert_int_equal(fire(f, T0 + 60 * MIN), 1); /* only "new"'s escalation: "b" was met */
    assert_string_equal(f->alerts[2].lead, "new");
}

static void test_sla_automation_and_inbound_touches_do_not_stop_the_clock(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    touched(f, "L1", T0 + MIN, RS_ACTOR_AUTOMATION, RS_DIR_OUTBOUND);
    touched(f, "L1", T0 + MIN, RS_ACTOR_HUMAN, RS_DIR_INBOUND);
    assert_int_equal(fire(f, T0 + 6 * MIN), 2);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
}

static void test_sla_thresholds_follow_intent_tier(void **state)
{
    struct fixture *f = *state;

    created(f, "H", RS_TIER_HIGH, T0);
    created(f, "M", RS_TIER_MQL, T0);
    created(f, "W", RS_TIER_LOW, T0);
    human_touch(f, "H", T0 + 2 * MIN);
    assert_int_equal(fire(f, T0 + 59 * MIN), 1); /* M's warning at 48 min */
    assert_string_equal(f->alerts[0].lead, "M");
    assert_int_equal(fire(f, T0 + 61 * MIN), 1); /* M's breach at 60 min */
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
    assert_int_equal(fire(f, T0 + 24 * 60 * MIN + 1), 3); /* M's L2, W's L0 and L1 */
    assert_string_equal(f->alerts[4].lead, "W");
    assert_int_equal(f->alerts[4].elapsed_ms, 24 * 60 * MIN);
}

static void test_sla_disqualified_and_converted_cancel_the_clock(void **state)
{
    struct fixture *f = *state;
    struct rs_sla_stats s;

    created(f, "L1", RS_TIER_HIGH, T0);
    created(f, "L2", RS_TIER_HIGH, T0);
    simple(f, RS_EV_LEAD_DISQUALIFIED, "L1", NULL, T0 + MIN);
    simple(f, RS_EV_LEAD_CONVERTED, "L2", NULL, T0 + MIN);
    assert_int_equal(fire(f, T0 + 60 * MIN), 0);
    assert_int_equal(f->n, 0);
    s = stats(f);
    assert_int_equal(s.cancelled, 2);
    /* A touch after cancellation changes nothing. */
    human_touch(f, "L1", T0 + 2 * MIN);
    assert_int_equal(stats(f).cancelled, 2);
}

static void test_sla_touch_before_created_is_applied_when_lead_arrives(void **state)
{
    struct fixture *f = *state;
    struct rs_sla_stats s;

    human_touch(f, "L1", T0 + 2 * MIN);
    s = stats(f);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.leads, 0);
    created(f, "L1", RS_TIER_HIGH, T0);
    s = stats(f);
    assert_int_equal(s.met, 1);
    assert_int_equal(f->n, 0);
    assert_int_equal(fire(f, T0 + 60 * MIN), 0);
}

static void test_sla_cancel_before_created_keeps_clock_from_starting(void **state)
{
    struct fixture *f = *state;

    simple(f, RS_EV_LEAD_DISQUALIFIED, "L1", NULL, T0);
    created(f, "L1", RS_TIER_HIGH, T0);
    assert_int_equal(fire(f, T0 + 60 * MIN), 0);
    assert_int_equal(stats(f).cancelled, 1);
}

static void test_sla_duplicate_created_is_ignored(void **state)
{
    struct fixture *f = *state;

    created(f, "L1", RS_TIER_HIGH, T0);
    created(f, "L1", RS_TIER_LOW, T0 + 30 * MIN);
    assert_int_equal(f->sla.counters.duplicate_leads, 1);
    assert_int_equal(fire(f, T0 + 6 * MIN), 2); /* still the 5-minute clock from T0 */
}

static void test_sla_merge_moves_clock_to_survivor_with_earliest_start(void **state)
{
    struct fixture *f = *state;

    created(f, "old", RS_TIER_HIGH, T0);
    created(f, "new", RS_TIER_HIGH, T0 + 3 * MIN);
    simple(f, RS_EV_LEAD_MERGED, "old", "new", T0 + 3 * MIN);
    /* Survivor's clock starts at T0: breached at T0+5min, not T0+8min. */
    assert_true(f->next_deadline <= T0 + 4 * MIN + 1);
    assert_int_equal(fire(f, T0 + 5 * MIN + 1), 2);
    assert_string_equal(f->alerts[0].lead, "new");
    assert_string_equal(f->alerts[1].lead, "new");
    assert_int_equal(stats(f).cancelled, 1);
}

static void test_sla_merge_of_touched_record_meets_survivor(void **state)
{
    struct fixture *f = *state;

    created(f, "old", RS_TIER_HIGH, T0);
    human_touch(f, "old", T0 + MIN);
    created(f, "new", RS_TIER_HIGH, T0 + 2 * MIN);
    simple(f, RS_EV_LEAD_MERGED, "old", "new", T0 + 3 * MIN);
    assert_int_equal(fire(f, T0 + 60 * MIN), 0);
    assert_int_equal(f->n, 0);
}

static void test_sla_percentile_matches_worked_example_m11(void **state)
{
    /* METRICS.md M11: TTFA minutes [2,3,4,4,5,7,9,15,30,120] -> P50 6.0, P90 39.0 (type 7). */
    static const int64_t v[] = { 2, 3, 4, 4, 5, 7, 9, 15, 30, 120 };

    (void)state;
    assert_true(rs_sla_percentile(v, 10, 0.5) == 6.0);
    assert_true(rs_sla_percentile(v, 10, 0.9) == 39.0);
    assert_true(rs_sla_percentile(v, 1, 0.9) == 2.0);
    assert_true(rs_sla_percentile(v, 0, 0.5) == 0.0);
}

static void test_sla_stats_over_many_leads_match_worked_example(void **state)
{
    struct fixture *f = *state;
    static const int ttfa_min[] = { 2, 3, 4, 4, 5, 7, 9, 15, 30, 120 };
    char lead[16];
    struct rs_sla_stats s;

    for (int i = 0; i < 10; i++) {
        (void)snprintf(lead, sizeof(lead), "L%d", i);
        created(f, lead, RS_TIER_MQL, T0);
        human_touch(f, lead, T0 + ttfa_min[i] * MIN);
    }
    s = stats(f);
    assert_int_equal(s.responded, 10);
    assert_true(s.p50_response_ms == 6.0 * (double)MIN);
    assert_true(s.p90_response_ms == 39.0 * (double)MIN);
    assert_int_equal(s.breached_then_met, 1); /* 120 min > 60 min MQL threshold */
}

#define T(name) cmocka_unit_test_setup_teardown(name, sla_setup, sla_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sla_touch_in_time_meets_without_alerts),
        T(test_sla_untouched_lead_climbs_the_ladder),
        T(test_sla_one_watermark_jump_fires_every_passed_level_in_order),
        T(test_sla_touch_after_breach_recovers_with_real_response_time),
        T(test_sla_late_touch_before_deadline_retracts_fired_levels),
        T(test_sla_late_touch_between_warning_and_deadline_retracts_only_breach),
        T(test_sla_touch_past_unfired_levels_publishes_them_then_recovers),
        T(test_sla_alert_ids_do_not_depend_on_when_the_watermark_came),
        T(test_sla_touch_exactly_at_threshold_meets),
        T(test_sla_earlier_touch_arriving_after_a_later_one_restates),
        T(test_sla_merge_into_survivor_not_yet_created_carries_start_and_touch),
        T(test_sla_automation_and_inbound_touches_do_not_stop_the_clock),
        T(test_sla_thresholds_follow_intent_tier),
        T(test_sla_disqualified_and_converted_cancel_the_clock),
        T(test_sla_touch_before_created_is_applied_when_lead_arrives),
        T(test_sla_cancel_before_created_keeps_clock_from_starting),
        T(test_sla_duplicate_created_is_ignored),
        T(test_sla_merge_moves_clock_to_survivor_with_earliest_start),
        T(test_sla_merge_of_touched_record_meets_survivor),
        cmocka_unit_test(test_sla_percentile_matches_worked_example_m11),
        T(test_sla_stats_over_many_leads_match_worked_example),
    };

    return cmocka_run_group_tests_name("sla", tests, NULL, NULL);
}
