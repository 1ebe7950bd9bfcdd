#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agg.h"
#include "calendar.h"
#include "event.h"
#include "metrics.h"
#include "sketch.h"
#include "store.h"
#include "tmpdir.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN  (60 * INT64_C(1000))
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* Every expected value below was worked out by hand from METRICS.md, never by the code. */

/* |got - want| within a relative 1e-12 (absolute 1e-9 near 0). */
static void assert_near_at(double got, double want, const char *file, int line)
{
    double tol = (want < 0 ? -want : want) * 1e-12;
    double diff = got - want;

    if (tol < 1e-9) {
        tol = 1e-9;
    }
    if (diff > tol || diff < -tol) {
        fail_msg("%s:%d: got %.12g, want %.12g", file, line, got, want);
    }
}

#define assert_near(got, want) assert_near_at((double)(got), (double)(want), __FILE__, __LINE__)

struct fx {
    char *dir;
    struct rs_store *st;
    struct rs_zone *zone;
    struct rs_calendar *cal;
    struct rs_agg *agg;
    struct rs_metrics m;
    uint32_t partition;
    int n_ids;
    char ids[4096][24]; /* identifiers the events of a test borrow */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct rs_metrics_config cfg;

    assert_non_null(f);
    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 64, NULL), 0);
    assert_int_equal(rs_zone_new("UTC", &f->zone, NULL), 0);
    assert_int_equal(rs_calendar_new("sales", "UTC", "mon-fri 09:00-18:00", "", &f->cal, NULL), 0);
    f->agg = rs_agg_new();
    rs_metrics_config_defaults(&cfg);
    cfg.zone = f->zone;
    cfg.sales_hours = f->cal;
    rs_metrics_init(&f->m, &cfg, f->agg);
    f->m.st = f->st;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    rs_agg_free(f->agg);
    rs_calendar_free(f->cal);
    rs_zone_free(f->zone);
    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

/* "<prefix><i>", kept until the test ends. */
static struct rs_str
id_of(struct fx *f, const char *prefix, int i)
{
    char *p = f->ids[f->n_ids++ % 4096];

    (void)snprintf(p, sizeof(f->ids[0]), "%s%d", prefix, i);
    return S(p);
}

/* The instant `date` (YYYY-MM-DD) h:mi in UTC. */
static int64_t at(const struct fx *f, const char *date, int h, int mi)
{
    int64_t day;

    assert_int_equal(rs_bucket_parse(f->zone, RS_GRAIN_DAY, date, strlen(date), &day, NULL), 0);
    return day + h * HOUR + mi * MIN;
}

static void begin(struct fx *f)
{
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
}

static void commit(struct fx *f)
{
    struct rs_err err;

    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, &err), 0);
    assert_int_equal(rs_store_commit(f->st, &err), 0);
}

static void apply(struct fx *f, struct rs_event *ev)
{
    struct rs_err err;
    int rc;

    if (!rs_str_is_set(ev->id)) {
        ev->id = S("ev");
    }
    rc = rs_metrics_apply(&f->m, f->st, f->partition, ev, &err);
    if (rc != 0) {
        fail_msg("rs_metrics_apply: %s", err.msg);
    }
}

static struct rs_metric_value read_at(struct fx *f, uint16_t metric, const char *dims,
                                      enum rs_grain grain, const char *label, int64_t watermark)
{
    const struct rs_metric_def *def = rs_metric_by_id(metric);
    struct rs_metric_value v;
    struct rs_err err;
    int64_t bucket;

    assert_non_null(def);
    assert_int_equal(rs_bucket_parse(f->zone, grain, label, strlen(label), &bucket, NULL), 0);
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    if (rs_metrics_read(&f->m.cfg, f->st, def, S(dims), grain, bucket, NULL, 0, watermark, &v,
                        &err) != 0) {
        fail_msg("rs_metrics_read: %s", err.msg);
    }
    rs_store_read_end(f->st);
    return v;
}

/* The raw counters of a cell summed over every partition. */
static void read_cell(struct fx *f, uint16_t metric, const char *dims, enum rs_grain grain,
                      const char *label, int64_t n[RS_AGG_FIELDS])
{
    struct rs_agg_key key = { 0, metric, grain, 0, S(dims) };
    struct rs_agg_cell cell;

    assert_int_equal(rs_bucket_parse(f->zone, grain, label, strlen(label), &key.bucket, NULL), 0);
    rs_agg_cell_init(&cell);
    assert_int_equal(rs_agg_read(f->st, &key, NULL, 0, &cell, NULL), 0);
    memcpy(n, cell.n, sizeof(cell.n));
    rs_agg_cell_release(&cell);
}

/* ---- event builders ------------------------------------------------------------------- */

static void lead_created(struct fx *f, struct rs_str lead, enum rs_intent_tier tier, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_LEAD_CREATED, .ts_ms = ts };

    ev.u.lead_created.lead_id = lead;
    ev.u.lead_created.intent_tier = tier;
    ev.u.lead_created.channel = S("demo_request");
    apply(f, &ev);
}

static void lead_touched(struct fx *f, struct rs_str lead, int64_t ts, enum rs_actor_type actor)
{
    struct rs_event ev = { .type = RS_EV_LEAD_TOUCHED, .ts_ms = ts };

    ev.u.lead_touched.lead_id = lead;
    ev.u.lead_touched.rep_id = S("rep1");
    ev.u.lead_touched.actor_type = actor;
    ev.u.lead_touched.direction = RS_DIR_OUTBOUND;
    apply(f, &ev);
}

static void lead_disqualified(struct fx *f, struct rs_str lead, const char *reason, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_LEAD_DISQUALIFIED, .ts_ms = ts };

    ev.u.lead_disqualified.lead_id = lead;
    ev.u.lead_disqualified.reason = S(reason);
    apply(f, &ev);
}

static void lead_qualified(struct fx *f, struct rs_str lead, enum rs_qual_stage stage, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_LEAD_QUALIFIED, .ts_ms = ts };

    ev.u.lead_qualified.lead_id = lead;
    ev.u.lead_qualified.stage = stage;
    apply(f, &ev);
}

static void lead_lifecycle(struct fx *f, enum rs_event_type type, struct rs_str lead, int64_t ts)
{
    struct rs_event ev = { .type = type, .ts_ms = ts };

    ev.u.lead_lifecycle.lead_id = lead;
    apply(f, &ev);
}

static void lead_merged(struct fx *f, struct rs_str from, struct rs_str into, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_LEAD_MERGED, .ts_ms = ts };

    ev.u.lead_merged.lead_id = from;
    ev.u.lead_merged.into_lead_id = into;
    apply(f, &ev);
}

static void opp_created(struct fx *f, struct rs_str opp, struct rs_str lead, struct rs_str owner,
                        struct rs_str team, enum rs_deal_type deal, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_OPP_CREATED, .ts_ms = ts };

    ev.account = S("acct");
    ev.u.opp_created.opportunity_id = opp;
    ev.u.opp_created.account_id = S("acct");
    ev.u.opp_created.lead_id = lead;
    ev.u.opp_created.owner_id = owner;
    ev.u.opp_created.team_id = team;
    ev.u.opp_created.deal_type = deal;
    ev.u.opp_created.currency = S("USD");
    ev.u.opp_created.stage = S("discovery");
    apply(f, &ev);
}

static void opp_closed(struct fx *f, struct rs_str opp, enum rs_outcome outcome, int64_t amount,
                       int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_OPP_CLOSED, .ts_ms = ts };

    ev.account = S("acct");
    ev.u.opp_closed.opportunity_id = opp;
    ev.u.opp_closed.outcome = outcome;
    ev.u.opp_closed.amount_minor = amount;
    ev.u.opp_closed.currency = S("USD");
    ev.u.opp_closed.close_date_ms = ts;
    apply(f, &ev);
}

static void opp_reopened(struct fx *f, struct rs_str opp, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_OPP_REOPENED, .ts_ms = ts };

    ev.u.opp_reopened.opportunity_id = opp;
    apply(f, &ev);
}

static void handoff_completed(struct fx *f, struct rs_str account, struct rs_str opp,
                              struct rs_str csm, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_HANDOFF_COMPLETED, .ts_ms = ts };

    ev.account = account;
    ev.u.handoff.account_id = account;
    ev.u.handoff.opportunity_id = opp;
    ev.u.handoff.csm_id = csm;
    ev.u.handoff.checklist_complete = true;
    apply(f, &ev);
}

static void milestone(struct fx *f, struct rs_str account, enum rs_milestone ms, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_ONBOARDING_MILESTONE, .ts_ms = ts };

    ev.u.onboarding_milestone.account_id = account;
    ev.u.onboarding_milestone.milestone = ms;
    ev.u.onboarding_milestone.status = S("completed");
    apply(f, &ev);
}

static void rep_onboarded(struct fx *f, struct rs_str rep, struct rs_str team, int64_t start)
{
    struct rs_event ev = { .type = RS_EV_REP_ONBOARDED, .ts_ms = start };

    ev.u.rep_onboarded.rep_id = rep;
    ev.u.rep_onboarded.start_date_ms = start;
    ev.u.rep_onboarded.team_id = team;
    apply(f, &ev);
}

static void quota_set(struct fx *f, struct rs_str rep, const char *period, int64_t quota,
                      const uint8_t *ramp, uint32_t ramp_n, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_REP_QUOTA_SET, .ts_ms = ts };

    ev.u.rep_quota_set.rep_id = rep;
    ev.u.rep_quota_set.period = S(period);
    ev.u.rep_quota_set.period_start_ms = at(f, "2000-01-01", 0, 0); /* the label decides */
    ev.u.rep_quota_set.quota_minor = quota;
    ev.u.rep_quota_set.currency = S("USD");
    ev.u.rep_quota_set.ramp_n = ramp_n;
    if (ramp_n > 0) {
        memcpy(ev.u.rep_quota_set.ramp_pct, ramp, ramp_n);
    }
    apply(f, &ev);
}

static void rep_terminated(struct fx *f, struct rs_str rep, int64_t ts)
{
    struct rs_event ev = { .type = RS_EV_REP_TERMINATED, .ts_ms = ts };

    ev.u.rep_terminated.rep_id = rep;
    apply(f, &ev);
}

/* A won (or lost) new deal of `amount` credited to owner, created `created`, closed `close`. */
static void deal(struct fx *f, struct rs_str opp, struct rs_str owner, struct rs_str team,
                 enum rs_outcome outcome, int64_t amount, int64_t created, int64_t close)
{
    opp_created(f, opp, RS_STR_NULL, owner, team, RS_DEAL_NEW, created);
    opp_closed(f, opp, outcome, amount, close);
}

static void outcome(struct fx *f, const char *entity, const char *status, int64_t start,
                    int64_t elapsed, int sign)
{
    struct rs_sla_outcome o;
    struct rs_err err;

    memset(&o, 0, sizeof(o));
    o.rule = RS_RULE_HANDOFF;
    o.sla_type = "SLA-04_handoff";
    o.entity_id = S(entity);
    o.owner_id = S("ae1");
    o.status = status;
    o.start_ms = start;
    o.stop_ms = INT64_MIN;
    o.elapsed_ms = elapsed;
    o.elapsed_business_ms = elapsed;
    o.threshold_ms = 18 * HOUR;
    if (rs_metrics_sla_outcome(&f->m, f->partition, &o, sign, &err) != 0) {
        fail_msg("rs_metrics_sla_outcome: %s", err.msg);
    }
}

/* ---- definitions and pure evaluation -------------------------------------------------- */

static void test_metrics_defs_by_name_and_id(void **state)
{
    const struct rs_metric_def *d = rs_metric_by_name("speed_to_lead", 13);
    size_t n;

    (void)state;
    assert_non_null(d);
    assert_int_equal(d->id, RS_M11_SPEED_TO_LEAD);
    assert_string_equal(d->dims, "tier");
    assert_null(rs_metric_by_name("speed_to_lea", 12));
    assert_string_equal(rs_metric_by_id(RS_M16_QUOTA)->name, "quota_attainment");
    assert_null(rs_metric_by_id(999));
    assert_string_equal(rs_metric_by_id(RS_MDQ_DUPLICATES)->name, "duplicate_events");
    assert_non_null(rs_metric_defs(&n));
    assert_int_equal(n, 34); /* 11 + the revenue ledger's 10 raw cells and 13 metrics */
}

/* A duplicate counts once in every grain of its event time, and nowhere else. */
static void test_metrics_duplicate_counts_in_its_buckets(void **state)
{
    struct fx *f = *state;
    struct rs_event ev;
    struct rs_metric_value v;
    struct rs_err err;
    const struct rs_metric_def *def = rs_metric_by_id(RS_MDQ_DUPLICATES);
    int64_t t = INT64_C(1772409600000) + 3600000; /* 2026-03-02 01:00 UTC */

    memset(&ev, 0, sizeof(ev));
    ev.ts_ms = t;
    assert_int_equal(rs_store_begin(f->st, &err), 0);
    assert_int_equal(rs_metrics_duplicate(&f->m, f->st, 0, &ev, &err), 0);
    assert_int_equal(rs_metrics_duplicate(&f->m, f->st, 1, &ev, &err), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, &err), 0);
    assert_int_equal(rs_store_commit(f->st, &err), 0);
    assert_int_equal(rs_store_read_begin(f->st, &err), 0);
    assert_int_equal(rs_metrics_read(&f->m.cfg, f->st, def, (struct rs_str){ "", 0 }, RS_GRAIN_DAY,
                                     INT64_C(1772409600000), NULL, 0, t, &v, &err),
                     0);
    assert_int_equal(v.count, 2);
    assert_true(v.value == 2.0);
    assert_int_equal(rs_metrics_read(&f->m.cfg, f->st, def, (struct rs_str){ "", 0 }, RS_GRAIN_DAY,
                                     INT64_C(1772409600000) + 86400000, NULL, 0, t, &v, &err),
                     0);
    assert_int_equal(v.count, 0);
    rs_store_read_end(f->st);
}

/* M11 worked example on a hand-built cell: [2,3,4,4,5,7,9,15,30,120] min. */
static void test_metrics_eval_speed_to_lead_worked_example(void **state)
{
    struct fx *f = *state;
    static const int mins[10] = { 2, 3, 4, 4, 5, 7, 9, 15, 30, 120 };
    struct rs_agg_cell cell;
    struct rs_metric_value v;
    int64_t bucket = at(f, "2026-03-02", 0, 0);

    rs_agg_cell_init(&cell);
    for (int i = 0; i < 10; i++) {
        rs_sketch_add(&cell.sketch, mins[i] * MIN);
    }
    cell.n[0] = 10;        /* instances */
    cell.n[1] = 10;        /* touched */
    cell.n[2] = 5;         /* within 5 min */
    cell.n[3] = 9;         /* within 1 h */
    cell.n[5] = 199 * MIN; /* 2+3+4+4+5+7+9+15+30+120 */
    rs_metric_eval(&f->m.cfg, rs_metric_by_id(RS_M11_SPEED_TO_LEAD), S("tier=high"), RS_GRAIN_DAY,
                   bucket, &cell, bucket + 3 * DAY, &v);
    assert_false(v.is_null);
    assert_near(v.value, 6 * MIN);
    assert_near(v.p90, 39 * MIN);
    assert_true(v.mean > 19.9 * MIN - 1e-3 && v.mean < 19.9 * MIN + 1e-3);
    assert_near(v.pct_within, 0.5);
    assert_int_equal(v.count, 10);
    assert_false(v.low_confidence);
    assert_false(v.provisional); /* day end + 2 d lateness is before the watermark */
    rs_agg_cell_release(&cell);
}

/* Provisional until bucket end + lateness (2 d for M11 days, 7 d for monthly sales). */
static void test_metrics_eval_provisional_and_low_confidence(void **state)
{
    struct fx *f = *state;
    struct rs_agg_cell cell;
    struct rs_metric_value v;
    int64_t day = at(f, "2026-03-02", 0, 0);
    int64_t month = at(f, "2026-03-01", 0, 0);

    rs_agg_cell_init(&cell);
    cell.n[0] = 3;
    rs_metric_eval(&f->m.cfg, rs_metric_by_id(RS_M11_SPEED_TO_LEAD), S(""), RS_GRAIN_DAY, day,
                   &cell, at(f, "2026-03-05", 0, 0) - 1, &v);
    assert_true(v.provisional);
    rs_metric_eval(&f->m.cfg, rs_metric_by_id(RS_M11_SPEED_TO_LEAD), S(""), RS_GRAIN_DAY, day,
                   &cell, at(f, "2026-03-05", 0, 0), &v);
    assert_false(v.provisional);
    assert_true(v.low_confidence); /* 3 < min_n 10 */
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "insufficient_sample"); /* nobody touched yet */
    assert_near(v.value2, 1);                                  /* all three never touched */

    cell.n[0] = 12;
    cell.n[2] = 12;
    rs_sketch_add(&cell.sketch, 40);
    rs_metric_eval(&f->m.cfg, rs_metric_by_id(RS_M13_SALES_CYCLE), S("outcome=won"), RS_GRAIN_MONTH,
                   month, &cell, at(f, "2026-04-08", 0, 0) - 1, &v);
    assert_true(v.provisional); /* April 1 + 7 d */
    rs_metric_eval(&f->m.cfg, rs_metric_by_id(RS_M13_SALES_CYCLE), S("outcome=won"), RS_GRAIN_MONTH,
                   month, &cell, at(f, "2026-04-08", 0, 0), &v);
    assert_false(v.provisional);
    assert_false(v.low_confidence);
    rs_agg_cell_release(&cell);

    rs_agg_cell_init(&cell);
    rs_metric_eval(&f->m.cfg, rs_metric_by_id(RS_M12_WIN_RATE), S(""), RS_GRAIN_MONTH, month, &cell,
                   INT64_MIN, &v);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "no_base");
    assert_true(v.provisional); /* no watermark yet */
    rs_agg_cell_release(&cell);
}

/* ---- M11 through apply, flush and read ------------------------------------------------ */

static void test_metrics_speed_to_lead_worked_example(void **state)
{
    struct fx *f = *state;
    static const int mins[10] = { 2, 3, 4, 4, 5, 7, 9, 15, 30, 120 };
    struct rs_metric_value v;
    int64_t wm = at(f, "2026-03-10", 0, 0);

    begin(f);
    for (int i = 0; i < 10; i++) {
        int64_t created = at(f, "2026-03-02", 10, i);
        struct rs_str lead = id_of(f, "L", i);

        lead_created(f, lead, RS_TIER_HIGH, created);
        lead_touched(f, lead, created + mins[i] * MIN, RS_ACTOR_HUMAN);
        lead_touched(f, lead, created + MIN, RS_ACTOR_AUTOMATION); /* an auto-reply: ignored */
    }
    commit(f);
    for (int all = 0; all < 2; all++) {
        v = read_at(f, RS_M11_SPEED_TO_LEAD, all ? "" : "tier=high", RS_GRAIN_DAY, "2026-03-02",
                    wm);
        assert_false(v.is_null);
        assert_int_equal(v.count, 10);
        assert_near(v.value, 6 * MIN);
        assert_near(v.p90, 39 * MIN);
        assert_true(v.mean > 19.9 * MIN - 1e-3 && v.mean < 19.9 * MIN + 1e-3);
        assert_near(v.pct_within, 0.5);
        assert_near(v.value2, 0); /* none untouched */
        assert_false(v.provisional);
    }
    /* The same facts are in the week, month and quarter cells. */
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_QUARTER, "2026-Q1", wm);
    assert_int_equal(v.count, 10);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_WEEK, "2026-W10", wm);
    assert_int_equal(v.count, 10);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "tier=mql", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "no_base");
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "tier=high", RS_GRAIN_DAY, "2026-03-02",
                at(f, "2026-03-04", 0, 0));
    assert_true(v.provisional); /* March 3 + 2 d is still ahead */
}

/* Created Fri 17:58, called Mon 09:02, hours Mon-Fri 09:00-18:00: 4 business minutes. */
static void test_metrics_speed_to_lead_business_time(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t wm = at(f, "2026-03-20", 0, 0);

    begin(f);
    lead_created(f, S("L1"), RS_TIER_MQL, at(f, "2026-03-06", 17, 58));
    lead_touched(f, S("L1"), at(f, "2026-03-09", 9, 2), RS_ACTOR_HUMAN);
    commit(f);
    v = read_at(f, RS_M11_SPEED_BUSINESS, "tier=mql", RS_GRAIN_DAY, "2026-03-06", wm);
    assert_near(v.value, 4 * MIN);
    assert_near(v.pct_within, 1); /* within the MQL tier's 60 min */
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "tier=mql", RS_GRAIN_DAY, "2026-03-06", wm);
    assert_near(v.value, (63 * HOUR + 4 * MIN));
    assert_near(v.pct_within, 0);
}

/* A touch that arrives late but happened earlier replaces the first one: no double count. */
static void test_metrics_speed_to_lead_late_earlier_touch_restates(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t created = at(f, "2026-03-02", 10, 0);
    int64_t wm = at(f, "2026-03-10", 0, 0);

    begin(f);
    lead_created(f, S("L1"), RS_TIER_HIGH, created);
    lead_touched(f, S("L1"), created + 20 * MIN, RS_ACTOR_HUMAN);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "tier=high", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_near(v.value, 20 * MIN);
    assert_near(v.pct_within, 0);

    begin(f);
    lead_touched(f, S("L1"), created + 3 * MIN, RS_ACTOR_HUMAN);
    lead_touched(f, S("L1"), created + 9 * MIN, RS_ACTOR_HUMAN); /* later: changes nothing */
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "tier=high", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 3 * MIN);
    assert_near(v.pct_within, 1);
    assert_true(f->m.counters.restated >= 1);
}

/* Spam before any touch leaves the denominator; spam after a touch does not. */
static void test_metrics_speed_to_lead_spam_excluded(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t t = at(f, "2026-03-02", 10, 0);
    int64_t wm = at(f, "2026-03-10", 0, 0);

    begin(f);
    lead_created(f, S("A"), RS_TIER_LOW, t);
    lead_disqualified(f, S("A"), "spam", t + 5 * MIN);
    lead_created(f, S("B"), RS_TIER_LOW, t);
    lead_created(f, S("C"), RS_TIER_LOW, t);
    lead_touched(f, S("C"), t + 2 * MIN, RS_ACTOR_HUMAN);
    lead_disqualified(f, S("C"), "spam", t + 5 * MIN);
    lead_created(f, S("D"), RS_TIER_LOW, t);
    lead_disqualified(f, S("D"), "no_budget", t + 5 * MIN); /* not spam: still counted */
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 3);   /* B, C, D */
    assert_near(v.value2, 2.0 / 3); /* B and D untouched */

    /* A late touch from before the spam verdict: A was touched first, so it counts again. */
    begin(f);
    lead_touched(f, S("A"), t + 4 * MIN, RS_ACTOR_HUMAN);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 4);
    assert_near(v.value2, 0.5);
}

/* A touch before the lead's creation: TTFA 0 and one dq.negative_duration. */
static void test_metrics_speed_to_lead_negative_duration(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t n[RS_AGG_FIELDS];
    int64_t t = at(f, "2026-03-02", 10, 0);

    begin(f);
    lead_touched(f, S("L1"), t - 5 * MIN, RS_ACTOR_HUMAN); /* arrives first, too */
    lead_created(f, S("L1"), RS_TIER_HIGH, t);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "tier=high", RS_GRAIN_DAY, "2026-03-02",
                at(f, "2026-03-10", 0, 0));
    assert_false(v.is_null);
    assert_near(v.value, 0);
    assert_near(v.pct_within, 1);
    assert_int_equal(f->m.counters.negative_durations, 1);
    read_cell(f, RS_M11_SPEED_TO_LEAD, "tier=high", RS_GRAIN_DAY, "2026-03-02", n);
    assert_int_equal(n[4], 1);
}

/* lead.reopened starts instance 2 with its own clock; instance 1 stays counted. */
static void test_metrics_speed_to_lead_reopen_new_instance(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t t1 = at(f, "2026-03-02", 10, 0), t2 = at(f, "2026-03-04", 10, 0);
    int64_t wm = at(f, "2026-03-20", 0, 0);

    begin(f);
    lead_created(f, S("L1"), RS_TIER_HIGH, t1);
    lead_touched(f, S("L1"), t1 + 10 * MIN, RS_ACTOR_HUMAN);
    commit(f);
    begin(f);
    lead_lifecycle(f, RS_EV_LEAD_REOPENED, S("L1"), t2);
    lead_touched(f, S("L1"), t2 + 2 * MIN, RS_ACTOR_HUMAN);
    lead_touched(f, S("L1"), t1 + MIN, RS_ACTOR_HUMAN); /* before instance 2: not its touch */
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 10 * MIN);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-04", wm);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 2 * MIN);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 2); /* instances, not people */

    /* Recycled after the lead-stage funnel entry: still one person in the funnel. */
    begin(f);
    lead_lifecycle(f, RS_EV_LEAD_RECYCLED, S("L1"), t2 + DAY);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 3);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.denominator, 1);
}

/* Merged: the survivor keeps the earliest created time and the earliest touch. */
static void test_metrics_speed_to_lead_merge(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t t = at(f, "2026-03-02", 10, 0);
    int64_t wm = at(f, "2026-03-20", 0, 0);

    begin(f);
    lead_created(f, S("A"), RS_TIER_HIGH, t);
    lead_touched(f, S("A"), t + 30 * MIN, RS_ACTOR_HUMAN);
    lead_created(f, S("B"), RS_TIER_HIGH, t + 10 * MIN);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 2);
    begin(f);
    lead_merged(f, S("A"), S("B"), t + HOUR);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 30 * MIN);
    assert_near(v.value2, 0); /* the survivor was touched */
    /* A touch on the merged-away id is a touch of the survivor. */
    begin(f);
    lead_touched(f, S("A"), t + 12 * MIN, RS_ACTOR_HUMAN);
    commit(f);
    v = read_at(f, RS_M11_SPEED_TO_LEAD, "", RS_GRAIN_DAY, "2026-03-02", wm);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 12 * MIN);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.denominator, 1);
}

/* ---- M12 ------------------------------------------------------------------------------ */

static void assert_ratio(struct rs_metric_value v, int64_t num, int64_t den, double value)
{
    assert_false(v.is_null);
    assert_int_equal(v.numerator, num);
    assert_int_equal(v.denominator, den);
    assert_true(v.value > value - 1e-9 && v.value < value + 1e-9);
}

/* January cohort 1000 -> 300 MQL -> 120 SQL -> 72 Opp -> 18 Won. */
static void test_metrics_funnel_worked_example(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t mature = at(f, "2027-01-01", 0, 0);
    int64_t early = at(f, "2026-03-15", 0, 0);

    begin(f);
    for (int i = 0; i < 1000; i++) {
        struct rs_str lead = id_of(f, "L", i);

        lead_created(f, lead, RS_TIER_LOW, at(f, "2026-01-05", 9, 0));
        if (i < 300) {
            lead_qualified(f, lead, RS_QUAL_MQL, at(f, "2026-01-10", 9, 0));
        }
        if (i < 300 && i % 10 == 0) {
            lead_qualified(f, lead, RS_QUAL_SAL, at(f, "2026-01-11", 9, 0)); /* not a stage */
        }
        if (i < 120) {
            lead_qualified(f, lead, RS_QUAL_SQL, at(f, "2026-01-20", 9, 0));
        }
        if (i < 72) {
            struct rs_str opp = id_of(f, "O", i);

            opp_created(f, opp, lead, S("rep1"), RS_STR_NULL, RS_DEAL_NEW,
                        at(f, "2026-01-25", 9, 0));
            if (i < 18) {
                opp_closed(f, opp, RS_OUTCOME_WON, 1000, at(f, "2026-03-01", 9, 0));
            } else if (i < 30) {
                opp_closed(f, opp, RS_OUTCOME_LOST, 1000, at(f, "2026-03-01", 9, 0));
            }
        }
    }
    commit(f);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_MONTH, "2026-01", mature);
    assert_ratio(v, 300, 1000, 0.30);
    v = read_at(f, RS_M12_FUNNEL, "from=mql,to=sql", RS_GRAIN_MONTH, "2026-01", mature);
    assert_ratio(v, 120, 300, 0.40);
    v = read_at(f, RS_M12_FUNNEL, "from=sql,to=opp", RS_GRAIN_MONTH, "2026-01", mature);
    assert_ratio(v, 72, 120, 0.60);
    v = read_at(f, RS_M12_FUNNEL, "from=opp,to=won", RS_GRAIN_MONTH, "2026-01", mature);
    assert_ratio(v, 18, 72, 0.25);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=opp", RS_GRAIN_MONTH, "2026-01", mature);
    assert_ratio(v, 72, 1000, 0.072);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=won", RS_GRAIN_MONTH, "2026-01", mature);
    assert_ratio(v, 18, 1000, 0.018);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_QUARTER, "2026-Q1", mature);
    assert_ratio(v, 300, 1000, 0.30);

    /* Mid-March: January + 30 d has passed, January + 180 d has not. */
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_MONTH, "2026-01", early);
    assert_ratio(v, 300, 1000, 0.30);
    v = read_at(f, RS_M12_FUNNEL, "from=opp,to=won", RS_GRAIN_MONTH, "2026-01", early);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "window_not_mature");
    assert_int_equal(v.numerator, 18); /* the inputs are still shown */
    assert_int_equal(v.denominator, 72);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_MONTH, "2026-02", mature);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "no_base");

    /* Win rate by close month: 18 won, 12 lost. */
    v = read_at(f, RS_M12_WIN_RATE, "", RS_GRAIN_MONTH, "2026-03", mature);
    assert_ratio(v, 18, 30, 0.6);
}

/* Straight to SQL passes MQL at the same instant; a regression keeps the first reach. */
static void test_metrics_funnel_stage_skipping_and_regression(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t wm = at(f, "2027-01-01", 0, 0);

    begin(f);
    lead_created(f, S("L1"), RS_TIER_HIGH, at(f, "2026-01-05", 9, 0));
    lead_qualified(f, S("L1"), RS_QUAL_SQL, at(f, "2026-01-06", 9, 0));
    lead_qualified(f, S("L1"), RS_QUAL_MQL, at(f, "2026-03-02", 9, 0)); /* regression */
    lead_created(f, S("L2"), RS_TIER_HIGH, at(f, "2026-01-05", 9, 0));
    lead_qualified(f, S("L2"), RS_QUAL_MQL, at(f, "2026-02-20", 9, 0)); /* 46 d: too late */
    commit(f);
    v = read_at(f, RS_M12_FUNNEL, "from=lead,to=mql", RS_GRAIN_MONTH, "2026-01", wm);
    assert_ratio(v, 1, 2, 0.5);
    v = read_at(f, RS_M12_FUNNEL, "from=mql,to=sql", RS_GRAIN_MONTH, "2026-01", wm);
    assert_ratio(v, 1, 1, 1.0);
    v = read_at(f, RS_M12_FUNNEL, "from=mql,to=sql", RS_GRAIN_MONTH, "2026-02", wm);
    assert_ratio(v, 0, 1, 0.0); /* L2's MQL cohort is February */
    v = read_at(f, RS_M12_FUNNEL, "from=mql,to=sql", RS_GRAIN_MONTH, "2026-03", wm);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "no_base"); /* the regression entered nothing */
}

/*
 * Win rate, cycle and reopen: a loss reopened within 30 d is voided, a later reopen is a new
 * cycle (the first loss stays), a reversed win is clawed back.
 */
static void test_metrics_win_rate_and_reopen(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t wm = at(f, "2027-01-01", 0, 0);
    int64_t created = at(f, "2026-02-01", 9, 0);

    begin(f);
    deal(f, S("O1"), S("r1"), RS_STR_NULL, RS_OUTCOME_WON, 100, created, at(f, "2026-03-10", 9, 0));
    deal(f, S("O2"), S("r1"), RS_STR_NULL, RS_OUTCOME_LOST, 300, created,
         at(f, "2026-03-10", 9, 0));
    deal(f, S("O3"), S("r1"), RS_STR_NULL, RS_OUTCOME_LOST, 500, created,
         at(f, "2026-03-10", 9, 0));
    deal(f, S("O4"), S("r1"), RS_STR_NULL, RS_OUTCOME_LOST, 700, created,
         at(f, "2026-03-01", 9, 0));
    commit(f);
    v = read_at(f, RS_M12_WIN_RATE, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_ratio(v, 1, 4, 0.25);

    begin(f);
    opp_reopened(f, S("O3"), at(f, "2026-03-20", 9, 0)); /* 10 d after the loss: voided */
    opp_reopened(f, S("O4"), at(f, "2026-04-15", 9, 0)); /* 45 d: a new cycle */
    commit(f);
    v = read_at(f, RS_M12_WIN_RATE, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_ratio(v, 1, 3, 1.0 / 3);
    assert_near(v.value2, 100.0 / 1100); /* by ACV */
    v = read_at(f, RS_M13_SALES_CYCLE, "outcome=lost", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 2); /* O2 and O4's first cycle; O3's loss is void */

    begin(f);
    opp_closed(f, S("O4"), RS_OUTCOME_WON, 700, at(f, "2026-05-01", 9, 0));
    opp_closed(f, S("O3"), RS_OUTCOME_WON, 500, at(f, "2026-04-01", 9, 0));
    commit(f);
    v = read_at(f, RS_M13_SALES_CYCLE, "outcome=won", RS_GRAIN_MONTH, "2026-05", wm);
    assert_near(v.value, 16); /* April 15 -> May 1 */
    v = read_at(f, RS_M13_SALES_CYCLE, "outcome=won", RS_GRAIN_MONTH, "2026-04", wm);
    assert_near(v.value, 59); /* Feb 1 -> Apr 1: original date */

    begin(f);
    opp_reopened(f, S("O1"), at(f, "2026-06-01", 9, 0)); /* a reversed win, months later */
    commit(f);
    v = read_at(f, RS_M12_WIN_RATE, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_ratio(v, 0, 2, 0.0);
}

/* ---- M13 ------------------------------------------------------------------------------ */

static void test_metrics_sales_cycle_worked_example(void **state)
{
    struct fx *f = *state;
    static const int days[5] = { 20, 35, 41, 60, 95 };
    struct rs_metric_value v;
    int64_t close = at(f, "2026-03-25", 15, 0);
    int64_t wm = at(f, "2026-05-01", 0, 0);

    begin(f);
    for (int i = 0; i < 5; i++) {
        /* Calendar days: created late in the day, closed in the afternoon. */
        deal(f, id_of(f, "O", i), S("r1"), RS_STR_NULL, RS_OUTCOME_WON, 10,
             close - days[i] * DAY + 8 * HOUR, close);
    }
    /* Closed before it was created: 0 days and a negative duration. */
    deal(f, S("X"), S("r1"), RS_STR_NULL, RS_OUTCOME_LOST, 10, at(f, "2026-03-20", 9, 0),
         at(f, "2026-03-18", 9, 0));
    commit(f);
    v = read_at(f, RS_M13_SALES_CYCLE, "outcome=won", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 5);
    assert_near(v.value, 41);
    assert_near(v.mean, 50.2);
    assert_near(v.p75, 60);
    assert_near(v.p90, 81); /* 60 + 0.6 x 35 */
    v = read_at(f, RS_M13_SALES_CYCLE, "outcome=lost", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 0);
    assert_int_equal(f->m.counters.negative_durations, 1);
}

/* ---- M14 ------------------------------------------------------------------------------ */

/* 40 won in March, 38 matured, 34 on time, 2 late, 2 without a CSM. */
static void test_metrics_handoff_worked_example(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t n[RS_AGG_FIELDS];
    int64_t close = at(f, "2026-03-10", 12, 0);
    int64_t wm = at(f, "2026-05-01", 0, 0);

    begin(f);
    for (int i = 0; i < 40; i++) {
        struct rs_str opp = id_of(f, "O", i);

        deal(f, opp, S("ae1"), RS_STR_NULL, RS_OUTCOME_WON, 1000, close - 30 * DAY, close);
        if (i < 34) {
            handoff_completed(f, S("acct"), opp, S("csm1"), close + 2 * HOUR);
            outcome(f, opp.ptr, "met", close, 2 * HOUR, 1);
        } else if (i < 36) {
            /* Breached first, then completed late: the breach is restated. */
            outcome(f, opp.ptr, "breached", close, 18 * HOUR, 1);
            handoff_completed(f, S("acct"), opp, S("csm1"), close + 5 * DAY);
            outcome(f, opp.ptr, "breached", close, 18 * HOUR, -1);
            outcome(f, opp.ptr, "breached_then_met", close, 30 * HOUR, 1);
        } else if (i < 38) {
            handoff_completed(f, S("acct"), opp, RS_STR_NULL, close + HOUR); /* no CSM */
            outcome(f, opp.ptr, "breached", close, 18 * HOUR, 1);
        }
        /* 38, 39: not matured yet */
    }
    /* An expansion win is not a handoff deal. */
    opp_created(f, S("E1"), RS_STR_NULL, S("ae1"), RS_STR_NULL, RS_DEAL_EXPANSION, close - DAY);
    opp_closed(f, S("E1"), RS_OUTCOME_WON, 10, close);
    commit(f);
    v = read_at(f, RS_M14_HANDOFF, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 40);
    assert_ratio(v, 34, 38, 34.0 / 38);
    assert_true(v.value > 0.8947 && v.value < 0.8948);   /* 89.5% */
    assert_true(v.value2 > 0.9473 && v.value2 < 0.9474); /* 36 / 38 = 94.7% */
    assert_near(v.p50, 2);                               /* business hours */
    read_cell(f, RS_M14_HANDOFF, "", RS_GRAIN_MONTH, "2026-03", n);
    assert_int_equal(n[4], 2); /* missing_csm */
    assert_int_equal(n[3], 36);

    /* The same outcomes feed SLA-04's compliance, by start date. */
    v = read_at(f, RS_MSLA_COMPLIANCE, "rule=SLA-04", RS_GRAIN_DAY, "2026-03-10", wm);
    assert_ratio(v, 34, 38, 34.0 / 38);
    v = read_at(f, RS_MSLA_COMPLIANCE, "owner=ae1,rule=SLA-04", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 38);
    assert_near(v.value2, 4.0 / 38);

    /* A win reversed: SLA-04 cancels, the deal leaves both counts. */
    begin(f);
    opp_reopened(f, S("O0"), close + 3 * DAY);
    outcome(f, "O0", "met", close, 2 * HOUR, -1);
    outcome(f, "O0", "cancelled", close, 0, 1);
    commit(f);
    v = read_at(f, RS_M14_HANDOFF, "", RS_GRAIN_MONTH, "2026-03", wm);
    assert_int_equal(v.count, 39);
    assert_ratio(v, 33, 37, 33.0 / 37);
}

/* ---- M15 ------------------------------------------------------------------------------ */

/* Start Jan 15, full quota 50k, bookings Feb 10k, Mar 20k, Apr 35k, May 52k: 4.5 months.
 * Rep events on partition 1, deals on partition 2: the read sums both. */
static void test_metrics_ramp_worked_example(void **state)
{
    struct fx *f = *state;
    static const uint8_t ramp[4] = { 20, 40, 60, 80 };
    static const char *const months[4] = { "2026-02-10", "2026-03-10", "2026-04-10", "2026-05-10" };
    static const int64_t booked[4] = { 10000, 20000, 35000, 52000 };
    struct rs_metric_value v;
    int64_t wm = at(f, "2026-07-01", 0, 0);

    begin(f);
    f->partition = 1;
    rep_onboarded(f, S("R"), S("T"), at(f, "2026-01-15", 10, 0));
    quota_set(f, S("R"), "2026-01", 50000, ramp, 4, at(f, "2026-01-15", 10, 0));
    rep_onboarded(f, S("R2"), S("T"), at(f, "2026-01-20", 10, 0));
    quota_set(f, S("R2"), "2026-01", 50000, NULL, 0, at(f, "2026-01-20", 10, 0));
    rep_onboarded(f, S("R3"), S("T"), at(f, "2026-01-05", 10, 0));
    quota_set(f, S("R3"), "2026-01", 50000, NULL, 0, at(f, "2026-01-05", 10, 0));
    rep_terminated(f, S("R3"), at(f, "2026-04-10", 10, 0));
    rep_onboarded(f, S("R4"), S("T"), at(f, "2026-01-01", 10, 0));
    quota_set(f, S("R4"), "2026-01", 50000, NULL, 0, at(f, "2026-01-01", 10, 0));
    rep_onboarded(f, S("R5"), S("T"), at(f, "2026-01-01", 10, 0));
    quota_set(f, S("R5"), "2026-01", 50000, NULL, 0, at(f, "2026-01-01", 10, 0));
    f->partition = 2;
    for (int i = 0; i < 4; i++) {
        deal(f, id_of(f, "O", i), S("R"), S("T"), RS_OUTCOME_WON, booked[i],
             at(f, months[i], 9, 0) - 5 * DAY, at(f, months[i], 9, 0));
    }
    deal(f, S("P1"), S("R2"), S("T"), RS_OUTCOME_WON, 10000, at(f, "2026-02-01", 9, 0),
         at(f, "2026-02-10", 9, 0));
    deal(f, S("P4"), S("R4"), S("T"), RS_OUTCOME_WON, 50000, at(f, "2026-01-10", 9, 0),
         at(f, "2026-01-20", 9, 0));
    deal(f, S("P5"), S("R5"), S("T"), RS_OUTCOME_WON, 30000, at(f, "2026-01-10", 9, 0),
         at(f, "2026-01-20", 9, 0));
    deal(f, S("P6"), S("R5"), S("T"), RS_OUTCOME_WON, 60000, at(f, "2026-02-01", 9, 0),
         at(f, "2026-02-20", 9, 0));
    commit(f);

    v = read_at(f, RS_M15_RAMP, "rep=R", RS_GRAIN_MONTH, "2026-01", wm);
    assert_false(v.is_null);
    assert_near(v.value, 4.5);
    v = read_at(f, RS_M15_RAMP, "rep=R4", RS_GRAIN_MONTH, "2026-01", wm);
    assert_near(v.value, 1.0); /* Jan 1 -> Feb 1 */
    v = read_at(f, RS_M15_RAMP, "rep=R2", RS_GRAIN_MONTH, "2026-01", wm);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "not_yet_ramped");
    assert_near(v.value2, 5.4); /* Jan 20 -> Jul 1 */
    v = read_at(f, RS_M15_RAMP, "rep=R3", RS_GRAIN_MONTH, "2026-01", wm);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "failed_to_ramp");
    assert_near(v.value2, 3.2); /* Jan 5 -> Apr 10 */

    /* Cohort: ramped [1.0, 2.0, 4.5], then R2 and R3 above them: the median is 4.5. */
    v = read_at(f, RS_M15_RAMP, "", RS_GRAIN_MONTH, "2026-01", wm);
    assert_false(v.is_null);
    assert_int_equal(v.count, 5);
    assert_int_equal(v.numerator, 3);
    assert_near(v.value, 4.5);
    assert_near(v.value2, 0.2); /* failed to ramp: 1 of 5 */

    /* A clawback of R's May deal: R has not ramped after all. */
    begin(f);
    opp_reopened(f, S("O3"), at(f, "2026-06-01", 9, 0));
    commit(f);
    v = read_at(f, RS_M15_RAMP, "rep=R", RS_GRAIN_MONTH, "2026-01", wm);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "not_yet_ramped");
    v = read_at(f, RS_M15_RAMP, "", RS_GRAIN_MONTH, "2026-01", wm);
    assert_true(v.is_null); /* [1.0, 2.0] and three above: the median is among them */
    assert_string_equal(v.null_reason, "insufficient_sample");
}

/* ---- M16 ------------------------------------------------------------------------------ */

/* A 180/150, B 150/150, C 120/150, D 90/150, E (ramping) 60/75 in June. */
static void test_metrics_quota_worked_example(void **state)
{
    struct fx *f = *state;
    static const char *const reps[5] = { "A", "B", "C", "D", "E" };
    static const int64_t booked[5] = { 180000, 150000, 120000, 90000, 60000 };
    static const uint8_t ramp[2] = { 50, 75 };
    struct rs_metric_value v;
    int64_t wm = at(f, "2026-07-20", 0, 0);

    begin(f);
    f->partition = 0;
    for (int i = 0; i < 4; i++) {
        rep_onboarded(f, S(reps[i]), S("T"), at(f, "2025-01-01", 9, 0));
        quota_set(f, S(reps[i]), "2026-01", 150000, NULL, 0, at(f, "2026-01-01", 9, 0));
    }
    rep_onboarded(f, S("E"), S("T"), at(f, "2026-06-01", 9, 0));
    quota_set(f, S("E"), "2026-06", 150000, ramp, 2, at(f, "2026-06-01", 9, 0));
    f->partition = 1;
    for (int i = 0; i < 5; i++) {
        /* Two deals each, so a clawback can take one back. */
        deal(f, id_of(f, reps[i], 1), S(reps[i]), S("T"), RS_OUTCOME_WON, booked[i] / 2,
             at(f, "2026-05-01", 9, 0), at(f, "2026-06-10", 9, 0));
        deal(f, id_of(f, reps[i], 2), S(reps[i]), S("T"), RS_OUTCOME_WON, booked[i] / 2,
             at(f, "2026-05-01", 9, 0), at(f, "2026-06-20", 9, 0));
    }
    /* Expansion is not credited by default. */
    opp_created(f, S("X1"), RS_STR_NULL, S("C"), S("T"), RS_DEAL_EXPANSION,
                at(f, "2026-05-01", 9, 0));
    opp_closed(f, S("X1"), RS_OUTCOME_WON, 500000, at(f, "2026-06-15", 9, 0));
    commit(f);

    v = read_at(f, RS_M16_QUOTA, "rep=A", RS_GRAIN_MONTH, "2026-06", wm);
    assert_ratio(v, 180000, 150000, 1.2);
    v = read_at(f, RS_M16_QUOTA, "rep=E", RS_GRAIN_MONTH, "2026-06", wm);
    assert_ratio(v, 60000, 75000, 0.8);
    v = read_at(f, RS_M16_QUOTA, "team=T", RS_GRAIN_MONTH, "2026-06", wm);
    assert_ratio(v, 600000, 675000, 600.0 / 675); /* 88.9% */
    assert_true(v.value > 0.8888 && v.value < 0.8889);
    v = read_at(f, RS_M16_QUOTA, "", RS_GRAIN_MONTH, "2026-06", wm);
    assert_ratio(v, 2, 4, 0.5); /* ramped reps only */
    assert_near(v.value2, 0.4); /* all reps: 2 / 5 */
    /* E's July quota is 75% of full; A's quota runs through 2027-12 only. */
    v = read_at(f, RS_M16_QUOTA, "rep=E", RS_GRAIN_MONTH, "2026-07", wm);
    assert_int_equal(v.denominator, 112500);
    v = read_at(f, RS_M16_QUOTA, "rep=A", RS_GRAIN_QUARTER, "2026-Q2", wm);
    assert_ratio(v, 180000, 450000, 0.4);

    /* Clawback of one of B's deals; D leaves in June (out of the rate, in the team). */
    begin(f);
    f->partition = 1;
    opp_reopened(f, S("B1"), at(f, "2026-06-25", 9, 0));
    f->partition = 0;
    rep_terminated(f, S("D"), at(f, "2026-06-28", 9, 0));
    commit(f);
    v = read_at(f, RS_M16_QUOTA, "", RS_GRAIN_MONTH, "2026-06", wm);
    assert_ratio(v, 1, 3, 1.0 / 3); /* A of A, B, C */
    v = read_at(f, RS_M16_QUOTA, "team=T", RS_GRAIN_MONTH, "2026-06", wm);
    assert_ratio(v, 525000, 675000, 525.0 / 675);
    v = read_at(f, RS_M16_QUOTA, "rep=D", RS_GRAIN_MONTH, "2026-07", wm);
    assert_true(v.is_null); /* no quota after leaving */
    assert_string_equal(v.null_reason, "no_base");
}

/* ---- M20 ------------------------------------------------------------------------------ */

/* [12, 20, 25, 40, >60] days: median 25, 60% within 30 days. */
static void test_metrics_onboarding_worked_example(void **state)
{
    struct fx *f = *state;
    static const int days[4] = { 12, 20, 25, 40 };
    struct rs_metric_value v;
    int64_t start = at(f, "2026-03-02", 10, 0);
    int64_t wm = start + 61 * DAY;

    begin(f);
    for (int i = 0; i < 5; i++) {
        struct rs_str account = id_of(f, "A", i);

        handoff_completed(f, account, id_of(f, "O", i), S("csm1"), start);
        if (i < 4) {
            milestone(f, account, RS_MS_FIRST_VALUE, start + days[i] * DAY);
        }
    }
    commit(f);
    v = read_at(f, RS_M20_ONBOARDING, "milestone=first_value", RS_GRAIN_MONTH, "2026-03", wm);
    assert_false(v.is_null);
    assert_int_equal(v.count, 5);
    assert_near(v.value, 25);
    assert_near(v.pct_within, 0.6);
    assert_near(v.p75, 40); /* rank 3 of 0..4: observed */
    v = read_at(f, RS_M20_ONBOARDING, "milestone=go_live", RS_GRAIN_MONTH, "2026-03", wm);
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "insufficient_sample"); /* all five censored */
    assert_int_equal(v.count, 5);

    /* A milestone before the start (a pilot): 0 days and a negative duration. */
    begin(f);
    milestone(f, S("P"), RS_MS_GO_LIVE, at(f, "2026-04-01", 9, 0));
    handoff_completed(f, S("P"), S("OP"), S("csm1"), at(f, "2026-04-05", 9, 0));
    commit(f);
    v = read_at(f, RS_M20_ONBOARDING, "milestone=go_live", RS_GRAIN_MONTH, "2026-04", wm);
    assert_false(v.is_null);
    assert_near(v.value, 0);
    assert_int_equal(f->m.counters.negative_durations, 1);

    /* Two of five reached: the median (rank 2 of 0..4) is among those still waiting. */
    begin(f);
    for (int i = 0; i < 5; i++) {
        struct rs_str account = id_of(f, "M", i);

        handoff_completed(f, account, id_of(f, "MO", i), S("csm1"), at(f, "2026-05-04", 9, 0));
        if (i < 2) {
            milestone(f, account, RS_MS_FIRST_VALUE, at(f, "2026-05-04", 9, 0) + (i + 1) * DAY);
        }
    }
    commit(f);
    v = read_at(f, RS_M20_ONBOARDING, "milestone=first_value", RS_GRAIN_MONTH, "2026-05",
                at(f, "2026-08-01", 0, 0));
    assert_true(v.is_null);
    assert_string_equal(v.null_reason, "insufficient_sample");
    assert_near(v.pct_within, 0.4);
    assert_int_equal(v.numerator, 2);
}

/* onboarding_start_at_won: the clock starts at the won close, not at the handoff. */
static void test_metrics_onboarding_starts_at_won(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;
    int64_t close = at(f, "2026-03-02", 10, 0);

    f->m.cfg.onboarding_start_at_won = true;
    begin(f);
    deal(f, S("O1"), S("ae1"), RS_STR_NULL, RS_OUTCOME_WON, 10, close - 20 * DAY, close);
    handoff_completed(f, S("acct"), S("O1"), S("csm1"), close + 3 * DAY); /* not the start */
    milestone(f, S("acct"), RS_MS_GO_LIVE, close + 10 * DAY);
    commit(f);
    v = read_at(f, RS_M20_ONBOARDING, "milestone=go_live", RS_GRAIN_MONTH, "2026-03",
                close + 100 * DAY);
    assert_int_equal(v.count, 1);
    assert_near(v.value, 10);
}

/* ---- the metrics topic ---------------------------------------------------------------- */

struct captured {
    const struct rs_metrics_config *cfg;
    int64_t watermark;
    int n;
    char key[128];
    struct rs_buf payload;
};

static int capture(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct captured *c = opaque;
    struct rs_buf k;

    rs_buf_init(&k);
    if (key->metric == RS_M11_SPEED_TO_LEAD && key->grain == RS_GRAIN_DAY && key->dims.len > 0) {
        rs_buf_reset(&c->payload);
        rs_metric_update_encode(c->cfg, key, cell, c->watermark, &k, &c->payload);
        assert_true(k.len < sizeof(c->key));
        memcpy(c->key, k.data, k.len);
        c->key[k.len] = '\0';
        c->n++;
    }
    rs_buf_release(&k);
    return 0;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *name)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];

        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(name) &&
            memcmp(kv->key.via.str.ptr, name, kv->key.via.str.size) == 0) {
            return &kv->val;
        }
    }
    fail_msg("no key '%s'", name);
    return NULL;
}

static void assert_str(const msgpack_object *o, const char *want)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

static void test_metrics_update_encode(void **state)
{
    struct fx *f = *state;
    struct captured c = { &f->m.cfg, 0, 0, "", { NULL, 0, 0 } };
    int64_t created = at(f, "2026-03-02", 10, 0);
    msgpack_unpacked u;
    const msgpack_object *o, *inputs;
    size_t off = 0;

    c.watermark = created + 4 * MIN;
    f->partition = 3;
    begin(f);
    lead_created(f, S("L1"), RS_TIER_HIGH, created);
    lead_touched(f, S("L1"), created + 4 * MIN, RS_ACTOR_HUMAN);
    assert_int_equal(rs_agg_flush(f->agg, f->st, capture, &c, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.key, "speed_to_lead|tier=high|day|2026-03-02|p3");

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, c.payload.data, c.payload.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, c.payload.len);
    o = &u.data;
    assert_str(map_get(o, "metric"), "speed_to_lead");
    assert_str(map_get(o, "unit"), "ms");
    assert_int_equal(map_get(o, "dims")->via.map.size, 1);
    assert_str(&map_get(o, "dims")->via.map.ptr[0].key, "tier");
    assert_str(&map_get(o, "dims")->via.map.ptr[0].val, "high");
    assert_str(map_get(o, "grain"), "day");
    assert_str(map_get(o, "bucket"), "2026-03-02");
    assert_int_equal(map_get(o, "bucket_start")->via.i64, at(f, "2026-03-02", 0, 0));
    assert_int_equal(map_get(o, "partition")->via.u64, 3);
    assert_near(map_get(o, "value")->via.f64, 4 * MIN);
    assert_int_equal(map_get(o, "null_reason")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(map_get(o, "count")->via.u64, 1);
    assert_near(map_get(o, "p50")->via.f64, 4 * MIN);
    assert_str(map_get(o, "status"), "provisional");
    assert_int_equal(map_get(o, "low_confidence")->via.boolean, true);
    inputs = map_get(o, "inputs");
    assert_int_equal(inputs->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(inputs->via.array.size, RS_AGG_FIELDS);
    assert_int_equal(inputs->via.array.ptr[0].via.u64, 1); /* instances */
    assert_int_equal(inputs->via.array.ptr[2].via.u64, 1); /* within 5 min */
    assert_int_equal(inputs->via.array.ptr[5].via.u64, 4 * MIN);
    assert_int_equal(map_get(o, "watermark")->via.i64, created + 4 * MIN);
    assert_int_equal(o->via.map.size, 22);
    msgpack_unpacked_destroy(&u);
    rs_buf_release(&c.payload);
}

/* An immature funnel cell on the topic: value nil, reason given, inputs kept. */
static void test_metrics_update_encode_null(void **state)
{
    struct fx *f = *state;
    struct rs_agg_cell cell;
    struct rs_agg_key key = { 7, RS_M12_FUNNEL, RS_GRAIN_MONTH, at(f, "2026-01-01", 0, 0),
                              S("from=opp,to=won") };
    struct rs_buf k, out;
    msgpack_unpacked u;
    size_t off = 0;

    (void)state;
    rs_agg_cell_init(&cell);
    cell.n[0] = 72;
    cell.n[1] = 18;
    rs_buf_init(&k);
    rs_buf_init(&out);
    rs_metric_update_encode(&f->m.cfg, &key, &cell, at(f, "2026-03-15", 0, 0), &k, &out);
    assert_int_equal(k.len, strlen("funnel_conversion|from=opp,to=won|month|2026-01|p7"));
    assert_memory_equal(k.data, "funnel_conversion|from=opp,to=won|month|2026-01|p7", k.len);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, out.data, out.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(map_get(&u.data, "value")->type, MSGPACK_OBJECT_NIL);
    assert_str(map_get(&u.data, "null_reason"), "window_not_mature");
    assert_int_equal(map_get(&u.data, "numerator")->via.u64, 18);
    assert_int_equal(map_get(&u.data, "dims")->via.map.size, 2);
    assert_str(&map_get(&u.data, "dims")->via.map.ptr[1].key, "to");
    assert_int_equal(u.data.via.map.size, 18); /* no durations for a ratio of counts */
    msgpack_unpacked_destroy(&u);
    rs_buf_release(&k);
    rs_buf_release(&out);
    rs_agg_cell_release(&cell);
}

/* schemas/metric.json lists exactly the keys the encoder writes, in its order. */
static void test_metrics_schema_lists_what_update_encode_writes(void **state)
{
    static const char *const durations[4] = { "mean", "p50", "p75", "p90" };
    struct fx *f = *state;
    const char *src = getenv("RS_SOURCE_DIR");
    char path[4096];
    json_error_t jerr;
    json_t *root, *required, *props;
    struct rs_agg_cell cell;
    struct rs_agg_key key = { 0, RS_M13_SALES_CYCLE, RS_GRAIN_MONTH, at(f, "2026-03-01", 0, 0),
                              S("outcome=won") };
    struct rs_buf k, out;
    msgpack_unpacked u;
    size_t off = 0, next = 0;

    assert_non_null(src);
    (void)snprintf(path, sizeof(path), "%s/schemas/metric.json", src);
    root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fail_msg("%s: %s", path, jerr.text);
    }
    required = json_object_get(root, "required");
    props = json_object_get(root, "properties");
    assert_true(json_is_array(required) && json_is_object(props));
    rs_agg_cell_init(&cell);
    cell.n[0] = 1;
    rs_sketch_add(&cell.sketch, 20);
    rs_buf_init(&k);
    rs_buf_init(&out);
    rs_metric_update_encode(&f->m.cfg, &key, &cell, INT64_MIN, &k, &out);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, out.data, out.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.via.map.size, json_array_size(required) + 4);
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object_str *name = &u.data.via.map.ptr[i].key.via.str;
        char buf[64];
        bool duration = false;

        assert_true(name->size < sizeof(buf));
        memcpy(buf, name->ptr, name->size);
        buf[name->size] = '\0';
        assert_non_null(json_object_get(props, buf));
        for (int d = 0; d < 4; d++) {
            duration = duration || strcmp(buf, durations[d]) == 0;
        }
        if (!duration) {
            assert_string_equal(buf, json_string_value(json_array_get(required, next)));
            next++;
        }
    }
    assert_int_equal(next, json_array_size(required));
    msgpack_unpacked_destroy(&u);
    rs_buf_release(&k);
    rs_buf_release(&out);
    rs_agg_cell_release(&cell);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_defs_by_name_and_id),
        cmocka_unit_test_setup_teardown(test_metrics_duplicate_counts_in_its_buckets, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_eval_speed_to_lead_worked_example, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_eval_provisional_and_low_confidence, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_worked_example, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_business_time, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_late_earlier_touch_restates,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_spam_excluded, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_negative_duration, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_reopen_new_instance, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_speed_to_lead_merge, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_funnel_worked_example, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_funnel_stage_skipping_and_regression, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_win_rate_and_reopen, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_sales_cycle_worked_example, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_handoff_worked_example, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_ramp_worked_example, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_quota_worked_example, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_onboarding_worked_example, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_onboarding_starts_at_won, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_update_encode, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_update_encode_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_schema_lists_what_update_encode_writes,
                                        fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
