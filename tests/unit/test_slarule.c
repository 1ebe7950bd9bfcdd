#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calendar.h"
#include "event.h"
#include "slarule.h"
#include "store.h"
#include "timer.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN  (60 * INT64_C(1000))
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define T0   INT64_C(1772409600000) /* Monday 2026-03-02 00:00 UTC */
#define FRI  (T0 + 4 * DAY)
#define MON2 (T0 + 7 * DAY)
#define TUE2 (T0 + 8 * DAY)

struct seen {
    enum rs_alert_kind kind;
    char id[65];
    char retracts[65];
    char level[24];
    char status[24];
    char sla_type[32];
    char entity[32];
    char dim[32];
    uint32_t attempt_n;
    int64_t level_at_ms, evaluated_at_ms, target_at_ms, elapsed_ms, elapsed_business_ms;
    int64_t paused_ms;
};

struct outcome {
    uint8_t rule;
    char status[24];
    char entity[32];
    char dim[32];
    int sign;
    uint32_t attempt_n;
    int64_t start_ms, stop_ms, elapsed_ms, elapsed_business_ms;
};

struct fixture {
    char *dir;
    struct rs_store *st;
    struct rs_calendar *cal;
    struct rs_rules r;
    int64_t next_deadline;
    struct seen alerts[64];
    int n;
    struct outcome outcomes[32];
    int n_out;
};

static void copy_str(char *out, size_t size, struct rs_str s)
{
    (void)snprintf(out, size, "%.*s", (int)s.len, s.ptr != NULL ? s.ptr : "");
}

static int record_alert(void *opaque, const struct rs_alert *a, struct rs_err *err)
{
    struct fixture *f = opaque;
    struct seen *s;

    (void)err;
    assert_true(f->n < 64);
    s = &f->alerts[f->n++];
    s->kind = a->kind;
    memcpy(s->id, a->alert_id, 65);
    memcpy(s->retracts, a->retracts_id, 65);
    (void)snprintf(s->level, sizeof(s->level), "%s", a->level);
    (void)snprintf(s->status, sizeof(s->status), "%s", a->status);
    (void)snprintf(s->sla_type, sizeof(s->sla_type), "%s", a->sla_type);
    copy_str(s->entity, sizeof(s->entity), a->entity_id);
    copy_str(s->dim, sizeof(s->dim), rs_str_is_set(a->stage) ? a->stage : a->segment);
    s->attempt_n = a->attempt_n;
    s->level_at_ms = a->level_at_ms;
    s->evaluated_at_ms = a->evaluated_at_ms;
    s->target_at_ms = a->target_at_ms;
    s->elapsed_ms = a->elapsed_ms;
    s->elapsed_business_ms = a->elapsed_business_ms;
    s->paused_ms = a->paused_ms;
    assert_int_equal(strlen(a->alert_id), 64);
    assert_non_null(a->start_event_type);
    return 0;
}

static int record_outcome(void *opaque, uint32_t partition, const struct rs_sla_outcome *o,
                          int sign, struct rs_err *err)
{
    struct fixture *f = opaque;
    struct outcome *x;

    (void)partition;
    (void)err;
    assert_true(f->n_out < 32);
    x = &f->outcomes[f->n_out++];
    x->rule = o->rule;
    (void)snprintf(x->status, sizeof(x->status), "%s", o->status);
    copy_str(x->entity, sizeof(x->entity), o->entity_id);
    copy_str(x->dim, sizeof(x->dim), o->dim);
    x->sign = sign;
    x->attempt_n = o->attempt_n;
    x->start_ms = o->start_ms;
    x->stop_ms = o->stop_ms;
    x->elapsed_ms = o->elapsed_ms;
    x->elapsed_business_ms = o->elapsed_business_ms;
    return 0;
}

static int rules_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rs_rules_config cfg;

    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 8, NULL), 0);
    assert_int_equal(rs_calendar_new("emea", "UTC", "mon-fri 09:00-18:00", NULL, &f->cal, NULL), 0);
    rs_rules_config_defaults(&cfg);
    cfg.freshness.enabled = false; /* SLA-07 would track every event; its own tests enable it */
    rs_rules_init(&f->r, &cfg, record_alert, record_outcome, f);
    f->next_deadline = RS_TIMER_NONE;
    *state = f;
    return 0;
}

static int rules_teardown(void **state)
{
    struct fixture *f = *state;

    rs_store_close(f->st);
    rs_calendar_free(f->cal);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

static struct rs_event
ev_of(enum rs_event_type type, int64_t ts)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.id = S("e");
    ev.ts_ms = ts;
    ev.tenant = S("t1");
    return ev;
}

/* Each helper applies one event in its own committed batch, as the engine would. */
static void apply_at(struct fixture *f, uint32_t partition, const struct rs_event *ev,
                     int64_t received_ms)
{
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(
        rs_rules_apply(&f->r, f->st, partition, ev, received_ms, &f->next_deadline, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
}

static void apply(struct fixture *f, const struct rs_event *ev)
{
    apply_at(f, 0, ev, ev->ts_ms);
}

static int fire_at(struct fixture *f, uint32_t partition, int64_t watermark)
{
    int n;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    n = rs_rules_fire(&f->r, f->st, partition, watermark, &f->next_deadline, NULL);
    assert_true(n >= 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    return n;
}

static int fire(struct fixture *f, int64_t watermark)
{
    return fire_at(f, 0, watermark);
}

/* The armed deadline of (rule, entity) in `partition`, or RS_TIMER_NONE. */
static int64_t timer_of_at(struct fixture *f, uint32_t partition, uint8_t rule, const char *entity)
{
    int64_t deadline = RS_TIMER_NONE;
    int rc;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    rc = rs_timer_deadline(f->st, partition, rule, (struct rs_bytes){ entity, strlen(entity) },
                           &deadline, NULL);
    rs_store_abort(f->st);
    assert_true(rc == 0 || rc == RS_ENOTFOUND);
    return rc == 0 ? deadline : RS_TIMER_NONE;
}

static int64_t timer_of(struct fixture *f, uint8_t rule, const char *entity)
{
    return timer_of_at(f, 0, rule, entity);
}

static void qualified(struct fixture *f, const char *lead, enum rs_qual_stage stage, int64_t ts)
{
    struct rs_event ev = ev_of(RS_EV_LEAD_QUALIFIED, ts);

    ev.u.lead_qualified.lead_id = S(lead);
    ev.u.lead_qualified.stage = stage;
    apply(f, &ev);
}

static void lead_event(struct fixture *f, enum rs_event_type type, const char *lead, int64_t ts)
{
    struct rs_event ev = ev_of(type, ts);

    switch (type) {
    case RS_EV_LEAD_DISQUALIFIED:
        ev.u.lead_disqualified.lead_id = S(lead);
        ev.u.lead_disqualified.reason = S("no_budget");
        break;
    case RS_EV_LEAD_MERGED:
        ev.u.lead_merged.lead_id = S(lead);
        ev.u.lead_merged.into_lead_id = S("L-9");
        break;
    case RS_EV_LEAD_ASSIGNED:
        ev.u.lead_assigned.lead_id = S(lead);
        ev.u.lead_assigned.owner_id = S("rep-7");
        break;
    default:
        ev.u.lead_lifecycle.lead_id = S(lead);
        break;
    }
    apply(f, &ev);
}

static void opp_created(struct fixture *f, const char *opp, const char *stage,
                        enum rs_deal_type deal, int64_t ts)
{
    struct rs_event ev = ev_of(RS_EV_OPP_CREATED, ts);

    ev.u.opp_created.opportunity_id = S(opp);
    ev.u.opp_created.account_id = S("A-1");
    ev.u.opp_created.owner_id = S("ae-1");
    ev.u.opp_created.deal_type = deal;
    ev.u.opp_created.currency = S("EUR");
    ev.u.opp_created.stage = S(stage);
    apply(f, &ev);
}

static void stage_changed(struct fixture *f, const char *opp, const char *from, const char *to,
                          int64_t ts)
{
    struct rs_event ev = ev_of(RS_EV_OPP_STAGE_CHANGED, ts);

    ev.u.opp_stage_changed.opportunity_id = S(opp);
    ev.u.opp_stage_changed.from_stage = S(from);
    ev.u.opp_stage_changed.to_stage = S(to);
    apply(f, &ev);
}

/* deal < 0: the event carries no deal type. */
static void closed(struct fixture *f, const char *opp, enum rs_outcome outcome, int deal,
                   int64_t ts)
{
    struct rs_event ev = ev_of(RS_EV_OPP_CLOSED, ts);

    ev.u.opp_closed.opportunity_id = S(opp);
    ev.u.opp_closed.outcome = outcome;
    ev.u.opp_closed.currency = S("EUR");
    ev.u.opp_closed.close_date_ms = ts;
    ev.u.opp_closed.has_deal_type = deal >= 0;
    ev.u.opp_closed.deal_type = deal >= 0 ? (enum rs_deal_type)deal : RS_DEAL_NEW;
    apply(f, &ev);
}

static void reopened(struct fixture *f, const char *opp, int64_t ts)
{
    struct rs_event ev = ev_of(RS_EV_OPP_REOPENED, ts);

    ev.u.opp_reopened.opportunity_id = S(opp);
    apply(f, &ev);
}

static void handoff_completed(struct fixture *f, const char *opp, const char *account,
                              const char *segment, bool checklist, const char *csm, int64_t ts)
{
    struct rs_event ev = ev_of(RS_EV_HANDOFF_COMPLETED, ts);

    ev.u.handoff.account_id = S(account);
    ev.u.handoff.opportunity_id = S(opp);
    ev.u.handoff.csm_id = csm != NULL ? S(csm) : RS_STR_NULL;
    ev.u.handoff.checklist_complete = checklist;
    ev.u.handoff.segment = segment != NULL ? S(segment) : RS_STR_NULL;
    apply(f, &ev);
}

static void onboarding(struct fixture *f, enum rs_event_type type, const char *account, int64_t ts)
{
    struct rs_event ev = ev_of(type, ts);

    if (type == RS_EV_ONBOARDING_MILESTONE) {
        ev.u.onboarding_milestone.account_id = S(account);
        ev.u.onboarding_milestone.milestone = RS_MS_FIRST_VALUE;
    } else {
        ev.u.onboarding_pause.account_id = S(account);
        ev.u.onboarding_pause.reason = S("waiting_on_customer");
    }
    apply(f, &ev);
}

/* An event no rule but SLA-07 reads, from `source` (NULL: none), received at received_ms. */
static void from_source(struct fixture *f, uint32_t partition, const char *source, int64_t ts,
                        int64_t received_ms)
{
    struct rs_event ev = ev_of(RS_EV_REP_ONBOARDED, ts);

    ev.source = source != NULL ? S(source) : RS_STR_NULL;
    ev.u.rep_onboarded.rep_id = S("rep-1");
    ev.u.rep_onboarded.start_date_ms = ts;
    apply_at(f, partition, &ev, received_ms);
}

static void assert_outcome(const struct outcome *o, const char *status, int sign,
                           uint32_t attempt_n, int64_t elapsed_ms)
{
    assert_string_equal(o->status, status);
    assert_int_equal(o->sign, sign);
    assert_int_equal(o->attempt_n, attempt_n);
    assert_int_equal(o->elapsed_ms, elapsed_ms);
}

/* ---- SLA-02 ------------------------------------------------------------------------------ */

/* Hours 09:00-18:00: a 9 h business day. Start Friday 17:58: 2 minutes on Friday, the rest
 * from Monday 09:00. L0 at 80% = 7 h 12 min: Monday 16:10; L1 at 9 h: Monday 17:58. */
static void test_mql_business_deadlines_from_friday_evening(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.mql_acceptance.calendar = f->cal;
    qualified(f, "L-1", RS_QUAL_MQL, FRI + 17 * HOUR + 58 * MIN);
    assert_int_equal(f->next_deadline, MON2 + 16 * HOUR + 10 * MIN + 1);
    assert_int_equal(fire(f, MON2 + 16 * HOUR + 10 * MIN), 0);
    assert_int_equal(f->n, 0);
    assert_int_equal(fire(f, MON2 + 16 * HOUR + 10 * MIN + 1), 1);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->alerts[0].level, "L0_warning");
    assert_string_equal(f->alerts[0].sla_type, "SLA-02_mql_acceptance");
    assert_int_equal(f->alerts[0].target_at_ms, MON2 + 17 * HOUR + 58 * MIN);
    assert_int_equal(timer_of(f, RS_RULE_MQL_ACCEPTANCE, "L-1"), MON2 + 17 * HOUR + 58 * MIN + 1);

    /* Accepted exactly at the target: met, and the warning gets its resolution. */
    qualified(f, "L-1", RS_QUAL_SAL, MON2 + 17 * HOUR + 58 * MIN);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[1].status, "met");
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "met", +1, 1, 3 * DAY); /* Fri 17:58 -> Mon 17:58 */
    assert_int_equal(f->outcomes[0].elapsed_business_ms, 9 * HOUR);
    assert_int_equal(timer_of(f, RS_RULE_MQL_ACCEPTANCE, "L-1"), RS_TIMER_NONE);
}

static void test_mql_accepted_early_meets_without_alerts(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.mql_acceptance.calendar = f->cal;
    qualified(f, "L-1", RS_QUAL_MQL, FRI + 17 * HOUR + 58 * MIN);
    qualified(f, "L-1", RS_QUAL_SQL, MON2 + 10 * HOUR);
    assert_int_equal(fire(f, MON2 + 30 * DAY), 0);
    assert_int_equal(f->n, 0);
    assert_int_equal(f->n_out, 1);
    /* Wall: Fri 17:58 -> Mon 10:00 = 64 h 2 min; business: 2 min + 1 h. */
    assert_outcome(&f->outcomes[0], "met", +1, 1, 64 * HOUR + 2 * MIN);
    assert_int_equal(f->outcomes[0].elapsed_business_ms, 62 * MIN);
    assert_int_equal(f->outcomes[0].stop_ms, MON2 + 10 * HOUR);
}

/* 24x7, T = 9 h: L0 7 h 12 min, L1 9 h, L2 18 h, L3 max(90 h, 24 h) = 90 h. */
static void test_mql_climbs_the_full_ladder_and_recovers(void **state)
{
    struct fixture *f = *state;
    static const char *const levels[] = { "L0_warning", "L1_breach", "L2_escalate", "L3_critical" };
    static const enum rs_alert_kind kinds[] = { RS_ALERT_WARNING, RS_ALERT_BREACHED,
                                                RS_ALERT_ESCALATED, RS_ALERT_CRITICAL };
    static const int64_t at[] = { 7 * HOUR + 12 * MIN, 9 * HOUR, 18 * HOUR, 90 * HOUR };

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    assert_int_equal(fire(f, T0 + 90 * HOUR), 3);
    assert_int_equal(f->next_deadline, T0 + 90 * HOUR + 1);
    assert_int_equal(fire(f, T0 + 90 * HOUR + 1), 1);
    assert_int_equal(f->n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f->alerts[i].kind, kinds[i]);
        assert_string_equal(f->alerts[i].level, levels[i]);
        assert_int_equal(f->alerts[i].level_at_ms, T0 + at[i]);
        assert_int_equal(f->alerts[i].elapsed_ms, at[i]);
    }
    assert_int_equal(f->alerts[0].evaluated_at_ms, T0 + 90 * HOUR);
    assert_string_equal(f->alerts[3].status, "breached");
    assert_int_equal(timer_of(f, RS_RULE_MQL_ACCEPTANCE, "L-1"), RS_TIMER_NONE);
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "breached", +1, 1, 9 * HOUR);
    assert_int_equal(f->outcomes[0].stop_ms, INT64_MIN);

    lead_event(f, RS_EV_LEAD_DISQUALIFIED, "L-1", T0 + 100 * HOUR);
    assert_int_equal(f->n, 5);
    assert_int_equal(f->alerts[4].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[4].level, "resolved");
    assert_string_equal(f->alerts[4].status, "breached_then_met");
    assert_int_equal(f->alerts[4].elapsed_ms, 100 * HOUR);
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[1], "breached", -1, 1, 9 * HOUR);
    assert_outcome(&f->outcomes[2], "breached_then_met", +1, 1, 100 * HOUR);
}

/* T = 1 business hour from Monday 09:00: 10 x T = 10 h < 24 business hours, which end on
 * Wednesday 15:00 (9 h Monday, 9 h Tuesday, 6 h Wednesday). */
static void test_l3_waits_for_24_business_hours_when_longer_than_ten_thresholds(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.mql_acceptance.calendar = f->cal;
    f->r.cfg.mql_acceptance.threshold_ms = HOUR;
    qualified(f, "L-1", RS_QUAL_MQL, MON2 + 9 * HOUR);
    assert_int_equal(fire(f, MON2 + 2 * DAY + 15 * HOUR), 3); /* L0 09:48, L1 10:00, L2 11:00 */
    assert_int_equal(f->alerts[2].level_at_ms, MON2 + 11 * HOUR);
    assert_int_equal(f->next_deadline, MON2 + 2 * DAY + 15 * HOUR + 1);
    assert_int_equal(fire(f, MON2 + 2 * DAY + 15 * HOUR + 1), 1);
    assert_int_equal(f->alerts[3].kind, RS_ALERT_CRITICAL);
    assert_int_equal(f->alerts[3].elapsed_business_ms, 24 * HOUR);
}

/* These ids were computed outside the engine: printf '%s' '<text>' | sha256sum. */
#define ID_L0   "17b2e29b8d5d455e18e0bfeb54c267e60b6a219a47e563d67aea0f4f342cb337"
#define ID_L1   "6902972a65ac0e97ef1b5cb9cbd1001b675a9157450b98956626fbfa8a87a4c0"
#define ID_L0_R "15cb8981fc9c59a449b2571c50d00ae9bf0fc44b5ce24c0fe9871cca4c9dc835"

static void test_late_stop_before_deadline_retracts_fired_levels(void **state)
{
    struct fixture *f = *state;

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    assert_int_equal(fire(f, T0 + 10 * HOUR), 2);
    assert_string_equal(f->alerts[0].id, ID_L0); /* t1|SLA-02_mql_acceptance|L-1|1|L0_warning */
    assert_string_equal(f->alerts[1].id, ID_L1); /* ...|L1_breach */
    assert_int_equal(f->n_out, 1);

    /* Accepted at 5 h, before both levels: the watermark was wrong about both. */
    qualified(f, "L-1", RS_QUAL_SAL, T0 + 5 * HOUR);
    assert_int_equal(f->n, 4);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[2].level, "L0_warning");
    assert_string_equal(f->alerts[2].id, ID_L0_R); /* ...|L0_warning|retracted */
    assert_string_equal(f->alerts[2].retracts, ID_L0);
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[3].retracts, ID_L1);
    assert_string_equal(f->alerts[3].status, "met");
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[1], "breached", -1, 1, 9 * HOUR);
    assert_outcome(&f->outcomes[2], "met", +1, 1, 5 * HOUR);
}

static void test_stop_after_unfired_levels_publishes_them(void **state)
{
    struct fixture *f = *state;

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    qualified(f, "L-1", RS_QUAL_SQL, T0 + 10 * HOUR); /* the watermark never reached 7 h */
    assert_int_equal(f->n, 3);
    assert_int_equal(f->alerts[0].kind, RS_ALERT_WARNING);
    assert_string_equal(f->alerts[0].id, ID_L0); /* the same id as if the timer had fired */
    assert_int_equal(f->alerts[0].evaluated_at_ms, T0 + 10 * HOUR);
    assert_int_equal(f->alerts[0].level_at_ms, T0 + 7 * HOUR + 12 * MIN);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
    assert_string_equal(f->alerts[1].id, ID_L1);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RECOVERED);
    assert_int_equal(f->n_out, 1); /* never reported breached on its own */
    assert_outcome(&f->outcomes[0], "breached_then_met", +1, 1, 10 * HOUR);
}

static void test_earlier_stop_arriving_later_restates_the_outcome(void **state)
{
    struct fixture *f = *state;

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    lead_event(f, RS_EV_LEAD_DISQUALIFIED, "L-1", T0 + 10 * HOUR);
    assert_int_equal(f->n, 3);
    qualified(f, "L-1", RS_QUAL_SAL, T0 + HOUR);
    assert_int_equal(f->n, 5);
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[3].retracts, f->alerts[0].id);
    assert_string_equal(f->alerts[4].retracts, f->alerts[1].id);
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[0], "breached_then_met", +1, 1, 10 * HOUR);
    assert_outcome(&f->outcomes[1], "breached_then_met", -1, 1, 10 * HOUR);
    assert_outcome(&f->outcomes[2], "met", +1, 1, HOUR);
    /* A later stop changes nothing. */
    qualified(f, "L-1", RS_QUAL_SQL, T0 + 2 * HOUR);
    assert_int_equal(f->n, 5);
    assert_int_equal(f->n_out, 3);
}

static void test_mql_again_after_recycle_opens_the_next_attempt(void **state)
{
    struct fixture *f = *state;

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    qualified(f, "L-1", RS_QUAL_SAL, T0 + HOUR);
    qualified(f, "L-1", RS_QUAL_MQL, T0 + 2 * HOUR); /* no recycle: not a new attempt */
    assert_int_equal(timer_of(f, RS_RULE_MQL_ACCEPTANCE, "L-1"), RS_TIMER_NONE);
    lead_event(f, RS_EV_LEAD_RECYCLED, "L-1", T0 + 3 * HOUR);
    qualified(f, "L-1", RS_QUAL_MQL, T0 + 4 * HOUR);
    assert_int_equal(timer_of(f, RS_RULE_MQL_ACCEPTANCE, "L-1"),
                     T0 + 4 * HOUR + 7 * HOUR + 12 * MIN + 1);
    assert_int_equal(fire(f, T0 + 14 * HOUR), 2);
    assert_int_equal(f->alerts[0].attempt_n, 2);
    assert_int_equal(f->alerts[1].attempt_n, 2);
    assert_string_not_equal(f->alerts[1].id, ID_L1); /* attempt 2 has ids of its own */
    assert_outcome(&f->outcomes[1], "breached", +1, 2, 9 * HOUR);
}

static void test_merged_lead_cancels_and_never_fires(void **state)
{
    struct fixture *f = *state;

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    lead_event(f, RS_EV_LEAD_MERGED, "L-1", T0 + HOUR);
    assert_int_equal(f->n_out, 1);
    assert_string_equal(f->outcomes[0].status, "cancelled");
    assert_int_equal(f->outcomes[0].stop_ms, INT64_MIN);
    assert_int_equal(timer_of(f, RS_RULE_MQL_ACCEPTANCE, "L-1"), RS_TIMER_NONE);
    assert_int_equal(fire(f, T0 + 100 * HOUR), 0);
    assert_int_equal(f->n, 0);
    assert_int_equal(f->r.counters.cancelled, 1);
}

/* ---- SLA-03 ------------------------------------------------------------------------------ */

static void test_stalled_opportunity_per_stage_thresholds_and_restarts(void **state)
{
    struct fixture *f = *state;
    struct rs_rule_config *c = &f->r.cfg.stalled_opp;

    c->n_dims = 2;
    c->dim_value[0] = "discovery";
    c->dim_threshold_ms[0] = 10 * DAY;
    c->dim_value[1] = "proposal";
    c->dim_threshold_ms[1] = 20 * DAY;

    opp_created(f, "O-1", "discovery", RS_DEAL_NEW, T0);
    assert_int_equal(timer_of(f, RS_RULE_STALLED_OPP, "O-1"), T0 + 8 * DAY + 1);
    stage_changed(f, "O-1", "discovery", "proposal", T0 + 7 * DAY);
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "met", +1, 1, 7 * DAY);
    assert_string_equal(f->outcomes[0].dim, "discovery");
    /* Attempt 2 in proposal: 80% of 20 d after day 7. */
    assert_int_equal(timer_of(f, RS_RULE_STALLED_OPP, "O-1"), T0 + 23 * DAY + 1);

    assert_int_equal(fire(f, T0 + 27 * DAY + 1), 2);
    assert_string_equal(f->alerts[1].level, "L1_breach");
    assert_string_equal(f->alerts[1].dim, "proposal");
    assert_int_equal(f->alerts[1].attempt_n, 2);
    assert_outcome(&f->outcomes[1], "breached", +1, 2, 20 * DAY);

    stage_changed(f, "O-1", "proposal", "proposal", T0 + 30 * DAY); /* no change */
    assert_int_equal(f->n_out, 2);
    stage_changed(f, "O-1", "proposal", "negotiation", T0 + 30 * DAY);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RECOVERED);
    assert_int_equal(f->n_out, 4);
    assert_outcome(&f->outcomes[2], "breached", -1, 2, 20 * DAY);
    assert_outcome(&f->outcomes[3], "breached_then_met", +1, 2, 23 * DAY);
    /* negotiation has no threshold of its own: the 30 d default. */
    assert_int_equal(timer_of(f, RS_RULE_STALLED_OPP, "O-1"), T0 + 54 * DAY + 1);

    closed(f, "O-1", RS_OUTCOME_LOST, -1, T0 + 31 * DAY);
    assert_outcome(&f->outcomes[4], "met", +1, 3, DAY);
    assert_int_equal(timer_of(f, RS_RULE_STALLED_OPP, "O-1"), RS_TIMER_NONE);

    /* Reopened: a new attempt in the stage it closed in. */
    reopened(f, "O-1", T0 + 40 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_STALLED_OPP, "O-1"), T0 + 64 * DAY + 1);
    assert_int_equal(fire(f, T0 + 64 * DAY + 1), 1);
    assert_string_equal(f->alerts[3].dim, "negotiation");
    assert_int_equal(f->alerts[3].attempt_n, 4);
}

/* ---- SLA-04 ------------------------------------------------------------------------------ */

/* 2 business days = 18 h from Friday 17:58: 2 min Friday, 9 h Monday, 8 h 58 min Tuesday. */
static void test_handoff_on_business_days_from_the_close(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.handoff.calendar = f->cal;
    f->r.cfg.stalled_opp.enabled = false; /* its outcomes are not under test here */
    opp_created(f, "O-1", "proposal", RS_DEAL_NEW, T0);
    closed(f, "O-1", RS_OUTCOME_WON, -1, FRI + 17 * HOUR + 58 * MIN); /* type from the record */
    /* L0 at 80% = 14 h 24 min: Tuesday 14:22. */
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-1"), TUE2 + 14 * HOUR + 22 * MIN + 1);

    handoff_completed(f, "O-1", "A-1", NULL, true, NULL, TUE2 + 11 * HOUR); /* no CSM */
    assert_int_equal(f->n_out, 0);
    handoff_completed(f, "O-1", "A-1", NULL, false, "csm-1", TUE2 + 11 * HOUR); /* checklist */
    assert_int_equal(f->n_out, 0);
    handoff_completed(f, "O-1", "A-1", NULL, true, "csm-1", TUE2 + 12 * HOUR);
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "met", +1, 1, 3 * DAY + 18 * HOUR + 2 * MIN);
    assert_int_equal(f->outcomes[0].elapsed_business_ms, 12 * HOUR + 2 * MIN);
    assert_int_equal(f->outcomes[0].rule, RS_RULE_HANDOFF);
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-1"), RS_TIMER_NONE);
    assert_int_equal(f->n, 0);

    /* Expansion deals are not handed off; a deal type on the close event wins. */
    opp_created(f, "O-2", "proposal", RS_DEAL_EXPANSION, T0);
    closed(f, "O-2", RS_OUTCOME_WON, -1, T0 + DAY);
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-2"), RS_TIMER_NONE);
    closed(f, "O-3", RS_OUTCOME_WON, RS_DEAL_NEW, MON2 + 9 * HOUR);
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-3"), TUE2 + 14 * HOUR + 24 * MIN + 1);
    closed(f, "O-4", RS_OUTCOME_LOST, RS_DEAL_NEW, MON2 + 9 * HOUR);
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-4"), RS_TIMER_NONE);
}

static void test_handoff_completed_before_close_is_met_in_zero(void **state)
{
    struct fixture *f = *state;

    handoff_completed(f, "O-1", "A-1", NULL, true, "csm-1", T0 + HOUR);
    assert_int_equal(f->n_out, 0);
    closed(f, "O-1", RS_OUTCOME_WON, RS_DEAL_NEW, T0 + 2 * HOUR);
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "met", +1, 1, 0);
    assert_int_equal(f->outcomes[0].stop_ms, T0 + 2 * HOUR);
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-1"), RS_TIMER_NONE);
    assert_int_equal(fire(f, T0 + 10 * DAY), 0);
    assert_int_equal(f->n, 0);
}

static void test_reopened_deal_withdraws_its_handoff_and_a_new_win_restarts(void **state)
{
    struct fixture *f = *state;

    closed(f, "O-1", RS_OUTCOME_WON, RS_DEAL_NEW, T0);
    handoff_completed(f, "O-1", "A-1", NULL, true, "csm-1", T0 + HOUR);
    reopened(f, "O-1", T0 + 2 * HOUR);
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[0], "met", +1, 1, HOUR);
    assert_outcome(&f->outcomes[1], "met", -1, 1, HOUR);
    assert_string_equal(f->outcomes[2].status, "cancelled");
    assert_int_equal(f->outcomes[2].sign, +1);

    closed(f, "O-1", RS_OUTCOME_WON, RS_DEAL_NEW, T0 + 5 * DAY);
    /* 24x7: 80% of 18 h. */
    assert_int_equal(timer_of(f, RS_RULE_HANDOFF, "O-1"), T0 + 5 * DAY + 14 * HOUR + 24 * MIN + 1);
    assert_int_equal(fire(f, T0 + 6 * DAY), 2);
    assert_int_equal(f->alerts[1].attempt_n, 2);
}

/* ---- SLA-05 ------------------------------------------------------------------------------ */

/* smb: 30 d, calendar time net of pauses. Paused days 10-15: every level moves by 5 days. */
static void test_onboarding_pause_pushes_every_level(void **state)
{
    struct fixture *f = *state;

    handoff_completed(f, "O-1", "A-1", "smb", true, "csm-1", T0);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-1"), T0 + 15 * DAY + 1); /* 50% */
    onboarding(f, RS_EV_ONBOARDING_PAUSED, "A-1", T0 + 10 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-1"), RS_TIMER_NONE);
    assert_int_equal(fire(f, T0 + 14 * DAY), 0);
    onboarding(f, RS_EV_ONBOARDING_RESUMED, "A-1", T0 + 15 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-1"), T0 + 20 * DAY + 1);

    assert_int_equal(fire(f, T0 + 35 * DAY), 2);
    assert_string_equal(f->alerts[0].level, "L0_warning_50");
    assert_int_equal(f->alerts[0].level_at_ms, T0 + 20 * DAY);
    assert_string_equal(f->alerts[1].level, "L0_warning");
    assert_int_equal(f->alerts[1].level_at_ms, T0 + 29 * DAY);
    assert_int_equal(f->next_deadline, T0 + 35 * DAY + 1);
    assert_int_equal(fire(f, T0 + 35 * DAY + 1), 1);
    assert_string_equal(f->alerts[2].level, "L1_breach");
    assert_int_equal(f->alerts[2].level_at_ms, T0 + 35 * DAY);
    assert_int_equal(f->alerts[2].elapsed_ms, 30 * DAY);
    assert_int_equal(f->alerts[2].paused_ms, 5 * DAY);
    assert_string_equal(f->alerts[2].dim, "smb");

    onboarding(f, RS_EV_ONBOARDING_MILESTONE, "A-1", T0 + 36 * DAY);
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RECOVERED);
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[0], "breached", +1, 1, 30 * DAY);
    assert_outcome(&f->outcomes[1], "breached", -1, 1, 30 * DAY);
    assert_outcome(&f->outcomes[2], "breached_then_met", +1, 1, 31 * DAY);
}

static void test_onboarding_threshold_follows_segment(void **state)
{
    struct fixture *f = *state;

    handoff_completed(f, "O-1", "A-1", "smb", true, "csm-1", T0);
    handoff_completed(f, "O-2", "A-2", "mid_market", true, "csm-1", T0);
    handoff_completed(f, "O-3", "A-3", "enterprise", true, "csm-1", T0);
    handoff_completed(f, "O-4", "A-4", "public_sector", true, "csm-1", T0);
    handoff_completed(f, "O-5", "A-5", NULL, true, "csm-1", T0);
    /* The first level is at 50% of 30, 60, 90, 60 and 60 days. */
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-1"), T0 + 15 * DAY + 1);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-2"), T0 + 30 * DAY + 1);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-3"), T0 + 45 * DAY + 1);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-4"), T0 + 30 * DAY + 1);
    assert_int_equal(timer_of(f, RS_RULE_ONBOARDING, "A-5"), T0 + 30 * DAY + 1);
}

/* ---- SLA-07 ------------------------------------------------------------------------------ */

static void test_freshness_silence_alerts_then_recovers(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.freshness.enabled = true;
    from_source(f, 0, "crm", T0, T0);
    assert_int_equal(f->next_deadline, T0 + 60 * MIN + 1);
    from_source(f, 0, "crm", T0 + 30 * MIN, T0 + 30 * MIN); /* moves the window */
    /* The timer stays at the old window's end and moves when it fires there. */
    assert_int_equal(timer_of(f, RS_RULE_DATA_FRESHNESS, "crm"), T0 + 60 * MIN + 1);
    assert_int_equal(fire(f, T0 + 61 * MIN), 1);
    assert_int_equal(f->n, 0);
    assert_int_equal(timer_of(f, RS_RULE_DATA_FRESHNESS, "crm"), T0 + 90 * MIN + 1);
    assert_int_equal(f->next_deadline, T0 + 90 * MIN + 1);
    assert_int_equal(fire(f, T0 + 90 * MIN), 0);
    assert_int_equal(fire(f, T0 + 90 * MIN + 1), 1);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->alerts[0].level, "L1_breach");
    assert_string_equal(f->alerts[0].entity, "crm");
    assert_string_equal(f->alerts[0].sla_type, "SLA-07_data_freshness");
    assert_int_equal(f->alerts[0].elapsed_ms, 60 * MIN);
    assert_outcome(&f->outcomes[0], "breached", +1, 1, 60 * MIN);

    from_source(f, 0, "crm", T0 + 120 * MIN, T0 + 120 * MIN);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_RECOVERED);
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[1], "breached", -1, 1, 60 * MIN);
    assert_outcome(&f->outcomes[2], "breached_then_met", +1, 1, 90 * MIN);
    assert_int_equal(timer_of(f, RS_RULE_DATA_FRESHNESS, "crm"), T0 + 180 * MIN + 1);

    from_source(f, 0, NULL, T0 + 121 * MIN, T0 + 121 * MIN);
    assert_int_equal(timer_of(f, RS_RULE_DATA_FRESHNESS, "default"), T0 + 181 * MIN + 1);
}

/* Silence is measured in event time: a stream whose events run a day ahead of the brokers'
 * clock (or a replay, whose events are old) is judged by its own timeline. */
static void test_freshness_silence_runs_on_event_time(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.freshness.enabled = true;
    from_source(f, 0, "crm", T0 + 24 * 60 * MIN, T0);
    assert_int_equal(timer_of(f, RS_RULE_DATA_FRESHNESS, "crm"), T0 + (24 * 60 + 60) * MIN + 1);
    assert_int_equal(fire(f, T0 + 61 * MIN), 0);
    assert_int_equal(f->n, 0);
}

/* Silence is judged per partition: what another partition heard does not count, so the
 * outcome does not depend on the order partitions are applied in (a replay's order). */
static void test_freshness_partition_judges_its_own_silence(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.freshness.enabled = true;
    from_source(f, 0, "crm", T0, T0);
    from_source(f, 1, "crm", T0 + 40 * MIN, T0 + 40 * MIN);
    f->next_deadline = RS_TIMER_NONE;
    assert_int_equal(fire_at(f, 0, T0 + 60 * MIN), 0);
    assert_int_equal(fire_at(f, 0, T0 + 60 * MIN + 1), 1);
    assert_int_equal(f->n, 1); /* partition 0 alone has been silent for the threshold */
    assert_string_equal(f->alerts[0].level, "L1_breach");
    assert_int_equal(timer_of_at(f, 1, RS_RULE_DATA_FRESHNESS, "crm"), T0 + 100 * MIN + 1);
}

/* P95 (type 7) over 64 lags: with 4 lags of 20 min among 60 of 1 min it is
 * 1 + 0.85 x 19 = 17.15 min > 15; with 3 it is 1 min. */
static void test_freshness_ingest_lag_alerts_and_resolves(void **state)
{
    struct fixture *f = *state;
    int64_t t = T0;

    f->r.cfg.freshness.enabled = true;
    for (int i = 0; i < 19; i++, t += MIN) {
        from_source(f, 0, "crm", t - 20 * MIN, t);
    }
    assert_int_equal(f->n, 0); /* fewer than 20 samples */
    from_source(f, 0, "crm", t - 20 * MIN, t);
    t += MIN;
    assert_int_equal(f->n, 1);
    assert_string_equal(f->alerts[0].level, "L1_ingest_lag");
    assert_int_equal(f->alerts[0].kind, RS_ALERT_BREACHED);
    assert_int_equal(f->alerts[0].elapsed_ms, 20 * MIN);
    /* 44 fill the ring, then each evicts a 20-minute lag: 60 leave 4 of them. */
    for (int i = 0; i < 60; i++, t += MIN) {
        from_source(f, 0, "crm", t - MIN, t);
    }
    assert_int_equal(f->n, 1);
    from_source(f, 0, "crm", t - MIN, t);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[1].level, "resolved_ingest_lag");
    assert_int_equal(f->alerts[1].elapsed_ms, MIN);
    assert_int_equal(f->n_out, 0); /* lag is not a silence outcome */
}

/* ---- the machine ------------------------------------------------------------------------- */

static void test_stale_timers_are_ignored(void **state)
{
    struct fixture *f = *state;
    uint8_t payload[5] = { 0, 0, 0, 0, 9 }; /* level 0 of attempt 9 */

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_timer_arm(f->st, 0, RS_RULE_MQL_ACCEPTANCE, (struct rs_bytes){ "L-1", 3 },
                                  T0 + MIN, (struct rs_bytes){ payload, 5 }, NULL),
                     0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(fire(f, T0 + 100 * HOUR), 1);
    assert_int_equal(f->n, 0);

    /* A level that already fired, armed again, fires nothing either. */
    qualified(f, "L-2", RS_QUAL_MQL, T0);
    assert_int_equal(fire(f, T0 + 8 * HOUR), 1);
    assert_int_equal(f->n, 1);
    payload[4] = 1;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_timer_arm(f->st, 0, RS_RULE_MQL_ACCEPTANCE, (struct rs_bytes){ "L-2", 3 },
                                  T0 + 8 * HOUR, (struct rs_bytes){ payload, 5 }, NULL),
                     0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(fire(f, T0 + 8 * HOUR), 1);
    assert_int_equal(f->n, 1);
}

static void test_fire_keeps_other_modules_timers(void **state)
{
    struct fixture *f = *state;
    uint8_t payload[5] = { 0, 0, 0, 0, 1 };

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_timer_arm(f->st, 0, RS_SLA_RULE_SPEED_TO_LEAD,
                                  (struct rs_bytes){ "L-1", 3 }, T0 + MIN,
                                  (struct rs_bytes){ payload, 5 }, NULL),
                     0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(fire(f, T0 + HOUR), 0);
    assert_int_equal(timer_of(f, RS_SLA_RULE_SPEED_TO_LEAD, "L-1"), T0 + MIN);
    assert_int_equal(f->next_deadline, T0 + MIN);
}

struct scan_seen {
    int n;
    struct rs_sla_open open[8];
    char entity[8][16];
    char owner[8][16];
};

static int collect_open(void *opaque, const struct rs_sla_open *o)
{
    struct scan_seen *s = opaque;

    assert_true(s->n < 8);
    s->open[s->n] = *o;
    copy_str(s->entity[s->n], sizeof(s->entity[0]), o->entity_id);
    copy_str(s->owner[s->n], sizeof(s->owner[0]), o->owner_id);
    s->n++;
    return 0;
}

static struct scan_seen scan(struct fixture *f, uint8_t rule, const char *owner)
{
    struct scan_seen s;

    memset(&s, 0, sizeof(s));
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0); /* as the HTTP API reads */
    assert_int_equal(rs_rules_scan_open(f->st, rule, owner != NULL ? S(owner) : RS_STR_NULL,
                                        collect_open, &s, NULL),
                     0);
    rs_store_read_end(f->st);
    return s;
}

static void test_scan_open_by_rule_and_owner(void **state)
{
    struct fixture *f = *state;
    struct scan_seen s;

    qualified(f, "L-1", RS_QUAL_MQL, T0);
    lead_event(f, RS_EV_LEAD_ASSIGNED, "L-1", T0 + MIN); /* owner rep-7 */
    qualified(f, "L-2", RS_QUAL_MQL, T0);
    qualified(f, "L-3", RS_QUAL_MQL, T0);
    qualified(f, "L-3", RS_QUAL_SAL, T0 + MIN); /* settled: not open */
    handoff_completed(f, "O-1", "A-1", "smb", true, "csm-1", T0);
    onboarding(f, RS_EV_ONBOARDING_PAUSED, "A-1", T0 + DAY);

    s = scan(f, 0, NULL);
    assert_int_equal(s.n, 3);
    s = scan(f, RS_RULE_MQL_ACCEPTANCE, NULL);
    assert_int_equal(s.n, 2);
    s = scan(f, RS_RULE_MQL_ACCEPTANCE, "rep-7");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.entity[0], "L-1");
    assert_string_equal(s.owner[0], "rep-7");
    assert_string_equal(s.open[0].status, "running");
    assert_string_equal(s.open[0].sla_type, "SLA-02_mql_acceptance");
    assert_int_equal(s.open[0].start_ms, T0);
    assert_int_equal(s.open[0].target_ms, T0 + 9 * HOUR);
    assert_int_equal(s.open[0].next_level_ms, T0 + 7 * HOUR + 12 * MIN + 1);
    s = scan(f, RS_RULE_ONBOARDING, "csm-1");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.open[0].status, "paused");
    assert_int_equal(s.open[0].next_level_ms, INT64_MAX);
    assert_int_equal(s.open[0].target_ms, T0 + 30 * DAY);
}

/* ---- SLA-06 ------------------------------------------------------------------------------ */

#define RENEWAL (T0 + 365 * DAY) /* the first period's end */

static void subscription(struct fixture *f, enum rs_event_type type, const char *sub,
                         enum rs_sub_status status, int64_t period_start, int64_t period_end,
                         int64_t cancel_at, int64_t ts)
{
    struct rs_event ev = ev_of(type, ts);

    ev.account = S("A-1");
    ev.u.subscription.subscription_id = S(sub);
    ev.u.subscription.currency = S("EUR");
    ev.u.subscription.status = status;
    ev.u.subscription.interval = RS_BILL_YEAR;
    ev.u.subscription.has_mrr_after = true;
    ev.u.subscription.mrr_after_minor = 100000;
    ev.u.subscription.service_period_start_ms = period_start;
    ev.u.subscription.service_period_end_ms = period_end;
    ev.u.subscription.has_period_end = true;
    ev.u.subscription.has_cancel_at = cancel_at != 0;
    ev.u.subscription.cancel_at_ms = cancel_at;
    apply(f, &ev);
}

static void renewal_setup(struct fixture *f)
{
    f->r.cfg.stalled_opp.enabled = false; /* opportunity.created would start SLA-03 */
    f->r.cfg.handoff.enabled = false;
    subscription(f, RS_EV_SUB_STARTED, "S-1", RS_SUB_ACTIVE, T0, RENEWAL, 0, T0);
}

static void expect_id(const char *got, uint32_t attempt, const char *level, const char *suffix)
{
    char want[65];

    rs_sla_alert_id(want, S("t1"), "SLA-06_renewal_coverage", S("A-1"), attempt, level, suffix);
    assert_string_equal(got, want);
}

static void test_renewal_breaches_at_lead_before_the_renewal_date(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    /* L0 is two weeks before the breach point, the breach point 90 days before renewal. */
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RENEWAL - 104 * DAY + 1);
    assert_int_equal(fire(f, RENEWAL - 91 * DAY), 1);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->alerts[0].level, "L0_warning");
    assert_int_equal(f->alerts[0].kind, RS_ALERT_WARNING);
    assert_int_equal(f->n_out, 0);
    /* A coverage at exactly the breach point would still meet it: fire 1 ms after. */
    assert_int_equal(fire(f, RENEWAL - 90 * DAY), 0);
    assert_int_equal(fire(f, RENEWAL - 90 * DAY + 1), 1);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_BREACHED);
    assert_string_equal(f->alerts[1].level, "L1_breach");
    assert_string_equal(f->alerts[1].sla_type, "SLA-06_renewal_coverage");
    assert_string_equal(f->alerts[1].entity, "A-1");
    assert_string_equal(f->alerts[1].status, "breached");
    assert_int_equal(f->alerts[1].target_at_ms, RENEWAL - 90 * DAY);
    assert_int_equal(f->alerts[1].level_at_ms, RENEWAL - 90 * DAY);
    assert_int_equal(f->alerts[1].elapsed_ms, 275 * DAY);
    expect_id(f->alerts[1].id, 1, "L1_breach", "");
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "breached", +1, 1, 275 * DAY);
    assert_int_equal(f->outcomes[0].rule, RS_RULE_RENEWAL_COVERAGE);

    /* Escalation at 60 days before the renewal, critical at 30. */
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RENEWAL - 60 * DAY + 1);
    assert_int_equal(fire(f, RENEWAL - 10 * DAY), 2);
    assert_string_equal(f->alerts[2].level, "L2_escalate");
    assert_int_equal(f->alerts[2].level_at_ms, RENEWAL - 60 * DAY);
    assert_string_equal(f->alerts[3].level, "L3_critical");
    assert_int_equal(f->alerts[3].level_at_ms, RENEWAL - 30 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
}

static void test_renewal_opportunity_before_the_breach_meets(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    opp_created(f, "O-1", "discovery", RS_DEAL_EXPANSION, RENEWAL - 200 * DAY);
    assert_int_equal(f->n_out, 0); /* an expansion is no renewal coverage */
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RENEWAL - 104 * DAY + 1);
    opp_created(f, "O-2", "discovery", RS_DEAL_RENEWAL, RENEWAL - 120 * DAY);
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "met", +1, 1, 245 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
    assert_int_equal(fire(f, RENEWAL), 0);
    assert_int_equal(f->n, 0);
}

static void test_renewal_opportunity_after_the_breach_recovers(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    assert_int_equal(fire(f, RENEWAL - 85 * DAY), 2); /* L0, L1 */
    opp_created(f, "O-1", "discovery", RS_DEAL_RENEWAL, RENEWAL - 80 * DAY);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[2].level, "resolved");
    assert_string_equal(f->alerts[2].status, "breached_then_met");
    assert_int_equal(f->n_out, 3);
    assert_outcome(&f->outcomes[1], "breached", -1, 1, 275 * DAY);
    assert_outcome(&f->outcomes[2], "breached_then_met", +1, 1, 285 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
}

static void test_renewal_late_opportunity_retracts_fired_levels(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    assert_int_equal(fire(f, RENEWAL - 85 * DAY), 2);
    /* Created 100 days before the renewal, known only now: neither level happened. */
    opp_created(f, "O-1", "discovery", RS_DEAL_RENEWAL, RENEWAL - 110 * DAY);
    assert_int_equal(f->n, 4);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[2].retracts, f->alerts[0].id);
    expect_id(f->alerts[2].id, 1, "L0_warning", "|retracted");
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[3].retracts, f->alerts[1].id);
    assert_string_equal(f->alerts[3].status, "met");
    assert_outcome(&f->outcomes[2], "met", +1, 1, 255 * DAY);
}

static void test_renewal_won_renewal_deal_meets(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    f->r.cfg.handoff.enabled = true; /* SLA-04 ignores renewals; the opp facts are kept */
    opp_created(f, "O-1", "discovery", RS_DEAL_NEW, T0); /* mislabelled, corrected at close */
    closed(f, "O-1", RS_OUTCOME_WON, RS_DEAL_RENEWAL, RENEWAL - 95 * DAY);
    assert_int_equal(f->n_out, 1);
    assert_outcome(&f->outcomes[0], "met", +1, 1, 270 * DAY);
    /* The warning was due 104 days out and had not fired: published, then resolved. */
    assert_int_equal(f->n, 2);
    assert_string_equal(f->alerts[0].level, "L0_warning");
    assert_int_equal(f->alerts[1].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[1].status, "met");
}

static void test_renewal_cancelled_by_churn_or_scheduled_cancel(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    /* Another subscription of the account ending does not cancel this one. */
    subscription(f, RS_EV_SUB_CHURNED, "S-2", RS_SUB_CANCELED, T0, RENEWAL, 0, T0 + DAY);
    assert_int_equal(f->n_out, 0);
    subscription(f, RS_EV_SUB_CHURNED, "S-1", RS_SUB_CANCELED, T0, RENEWAL, 0, T0 + 2 * DAY);
    assert_int_equal(f->n_out, 1);
    assert_string_equal(f->outcomes[0].status, "cancelled");
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
    assert_int_equal(fire(f, RENEWAL), 0);
    assert_int_equal(f->n, 0);

    /* Reactivated: a new attempt; then a cancellation scheduled at the period end. */
    subscription(f, RS_EV_SUB_REACTIVATED, "S-1", RS_SUB_ACTIVE, T0 + 10 * DAY,
                 T0 + 10 * DAY + 365 * DAY, 0, T0 + 10 * DAY);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RENEWAL - 94 * DAY + 1);
    subscription(f, RS_EV_SUB_CONTRACTED, "S-1", RS_SUB_ACTIVE, T0 + 10 * DAY,
                 T0 + 10 * DAY + 365 * DAY, RENEWAL + 10 * DAY, T0 + 20 * DAY);
    assert_int_equal(f->n_out, 2);
    assert_string_equal(f->outcomes[1].status, "cancelled");
    assert_int_equal(f->outcomes[1].attempt_n, 2);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
}

static void test_renewal_rolls_to_the_next_period(void **state)
{
    struct fixture *f = *state;

    renewal_setup(f);
    opp_created(f, "O-1", "discovery", RS_DEAL_RENEWAL, RENEWAL - 110 * DAY);
    assert_int_equal(f->n_out, 1);
    assert_int_equal(f->n, 0);
    subscription(f, RS_EV_SUB_RENEWED, "S-1", RS_SUB_ACTIVE, RENEWAL, RENEWAL + 365 * DAY, 0,
                 RENEWAL);
    /* The next period's instance is attempt 2, anchored on the next renewal date. */
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RENEWAL + 261 * DAY + 1);
    /* The last period's opportunity, replayed late, does not cover the new period. */
    opp_created(f, "O-1", "discovery", RS_DEAL_RENEWAL, RENEWAL - 110 * DAY);
    assert_int_equal(f->n_out, 1);
    assert_int_equal(fire(f, RENEWAL + 276 * DAY), 2);
    assert_int_equal(f->alerts[1].attempt_n, 2);
    expect_id(f->alerts[1].id, 2, "L1_breach", "");

    /* Renewed again without coverage: attempt 2 settles at the renewal, attempt 3 opens. */
    subscription(f, RS_EV_SUB_RENEWED, "S-1", RS_SUB_ACTIVE, RENEWAL + 365 * DAY,
                 RENEWAL + 730 * DAY, 0, RENEWAL + 365 * DAY);
    assert_int_equal(f->n, 5); /* L2 and L3 happened before the renewal, then resolved */
    assert_string_equal(f->alerts[2].level, "L2_escalate");
    assert_string_equal(f->alerts[3].level, "L3_critical");
    assert_int_equal(f->alerts[4].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[4].status, "breached_then_met");
    assert_string_equal(f->outcomes[f->n_out - 1].status, "breached_then_met");
    assert_int_equal(f->outcomes[f->n_out - 1].attempt_n, 2);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RENEWAL + 626 * DAY + 1);
}

static void test_renewal_ignores_short_periods_and_past_dates(void **state)
{
    struct fixture *f = *state;

    f->r.cfg.stalled_opp.enabled = false;
    subscription(f, RS_EV_SUB_STARTED, "S-1", RS_SUB_ACTIVE, T0, T0 + 30 * DAY, 0, T0);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
    subscription(f, RS_EV_SUB_STARTED, "S-1", RS_SUB_TRIALING, T0, RENEWAL, 0, T0);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
    subscription(f, RS_EV_SUB_EXPANDED, "S-1", RS_SUB_ACTIVE, T0, RENEWAL, 0, RENEWAL + DAY);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), RS_TIMER_NONE);
    /* A shorter lead (configured) covers shorter periods. */
    rs_rules_set_renewal_lead(&f->r.cfg.renewal, 10 * DAY);
    subscription(f, RS_EV_SUB_STARTED, "S-1", RS_SUB_PAST_DUE, T0, T0 + 30 * DAY, 0, T0);
    assert_int_equal(timer_of(f, RS_RULE_RENEWAL_COVERAGE, "A-1"), T0 + 6 * DAY + 1);
}

static void test_rule_names(void **state)
{
    (void)state;
    assert_string_equal(rs_rule_sla_type(RS_RULE_MQL_ACCEPTANCE), "SLA-02_mql_acceptance");
    assert_string_equal(rs_rule_sla_type(RS_RULE_HANDOFF), "SLA-04_handoff");
    assert_string_equal(rs_rule_sla_type(RS_RULE_RENEWAL_COVERAGE), "SLA-06_renewal_coverage");
    assert_null(rs_rule_sla_type(RS_SLA_RULE_SPEED_TO_LEAD));
}

#define T(name) cmocka_unit_test_setup_teardown(name, rules_setup, rules_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_mql_business_deadlines_from_friday_evening),
        T(test_mql_accepted_early_meets_without_alerts),
        T(test_mql_climbs_the_full_ladder_and_recovers),
        T(test_l3_waits_for_24_business_hours_when_longer_than_ten_thresholds),
        T(test_late_stop_before_deadline_retracts_fired_levels),
        T(test_stop_after_unfired_levels_publishes_them),
        T(test_earlier_stop_arriving_later_restates_the_outcome),
        T(test_mql_again_after_recycle_opens_the_next_attempt),
        T(test_merged_lead_cancels_and_never_fires),
        T(test_stalled_opportunity_per_stage_thresholds_and_restarts),
        T(test_handoff_on_business_days_from_the_close),
        T(test_handoff_completed_before_close_is_met_in_zero),
        T(test_reopened_deal_withdraws_its_handoff_and_a_new_win_restarts),
        T(test_onboarding_pause_pushes_every_level),
        T(test_onboarding_threshold_follows_segment),
        T(test_freshness_silence_alerts_then_recovers),
        T(test_freshness_silence_runs_on_event_time),
        T(test_freshness_partition_judges_its_own_silence),
        T(test_freshness_ingest_lag_alerts_and_resolves),
        T(test_renewal_breaches_at_lead_before_the_renewal_date),
        T(test_renewal_opportunity_before_the_breach_meets),
        T(test_renewal_opportunity_after_the_breach_recovers),
        T(test_renewal_late_opportunity_retracts_fired_levels),
        T(test_renewal_won_renewal_deal_meets),
        T(test_renewal_cancelled_by_churn_or_scheduled_cancel),
        T(test_renewal_rolls_to_the_next_period),
        T(test_renewal_ignores_short_periods_and_past_dates),
        T(test_stale_timers_are_ignored),
        T(test_fire_keeps_other_modules_timers),
        T(test_scan_open_by_rule_and_owner),
        cmocka_unit_test(test_rule_names),
    };

    return cmocka_run_group_tests_name("slarule", tests, NULL, NULL);
}
