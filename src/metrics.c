#define RS_LOG_MODULE "metrics"
#include "metrics.h"

#include "finance.h"
#include "ledger.h"
#include "mem.h"
#include "record.h"

#include <assert.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * How the metrics are kept.
 *
 * Every entity a metric needs has one record in the `entities` database (kinds below). An
 * event changes a record; the facts a record stands for are a pure function of it
 * (lead_facts(), opp_facts(), ...). So an event computes the record's facts before and after
 * the change and applies the difference: facts that did not change cost nothing, the ones
 * that did are retracted and the corrected ones added. Late and out-of-order events (an
 * earlier touch, a close before its create, a merge) need no special path: they change the
 * record, and the diff restates whatever depended on it. Two changes deliberately keep the
 * old facts standing: a lead.reopened / lead.recycled (the finished instance stays counted)
 * and the reopen of a loss after reopen_same_opportunity_ms (the lost cycle stays lost).
 *
 * Records are per partition, as all state is: a lead's funnel needs its lead.* and
 * opportunity.* events on one partition (the envelope's account as the key gives that once
 * a lead has converted); M15/M16 are the exception, designed to sum across partitions.
 *
 * Cell layouts, n[0..7] (the sketch holds the durations named):
 *   M11 speed_to_lead(_business)  dims "tier=<t>" and "" (all tiers); bucket: instance start
 *       n0 instances  n1 touched  n2 within lead_sla_ms[tier]  n3 within 1 h
 *       n4 negative durations  n5 sum of TTFA ms              sketch: TTFA ms
 *   M12 funnel_conversion          dims "from=<s>,to=<s>"; bucket: reaching `from` (cohort)
 *       n0 entered  n1 reached `to` within the window
 *   M12 win_rate                   dims ""; bucket: close
 *       n0 won  n1 lost  n2 won ACV (minor)  n3 lost ACV
 *   M13 sales_cycle                dims "outcome=won|lost"; bucket: close
 *       n0 deals  n1 negative durations  n2 sum of days        sketch: days
 *   M14 handoff_completion         dims ""; bucket: close of won new deals
 *       n0 won deals  n1 matured  n2 on time  n3 completed  n4 missing_csm
 *       n5 sum of handoff business ms (completed)            sketch: business ms
 *   M15 rep_ramp                   dims "rep=<id>"; bucket: start date (rep's partition)
 *       n0 reps  n1 start_date ms  n2 termination ms (0: none); dims "": n0 reps started
 *   M16 quota_attainment           dims "rep=<id>" and "team=<id>"; bucket: month
 *       n0 credited bookings (minor)  n1 deals  (the deal's partition)
 *       n2 quota  n3 months at full quota  n4 months the rep was terminated in
 *       n5 months with a quota  n6 full (unramped) quota       (the rep's partition)
 *   M20 time_to_onboard            dims "milestone=go_live|first_value"; bucket: start
 *       n0 started  n1 reached  n2..n5 reached within 7, 30, 60, 90 d
 *       n6 sum of durations ms (reached)  n7 negative durations  sketch: duration ms
 *   MDQ  duplicate_events          dims ""; bucket: the duplicate's event time
 *       n0 duplicates (an id seen within dedup.window, not applied)
 *   MSLA sla_compliance            dims "rule=SLA-0x" and "owner=<id>,rule=SLA-0x"; bucket:
 *       start  n0 met  n1 breached  n2 breached_then_met  n3 cancelled
 *       n4 sum of elapsed ms (met and breached_then_met)     sketch: elapsed on the rule clock
 * Every counter is a sum of facts, so cells of one key sum over partitions; the values that
 * are not sums (the ramp, the share of reps at quota) are computed on read.
 *
 * Decisions the specification leaves open:
 * - M11 counts instances (a reopen or recycle is attempt + 1 with its own clock); a touch
 *   earlier than the current instance's start is not its touch. % within SLA is over all
 *   instances (an untouched lead is not within). Spam before any touch leaves M11 only.
 * - M12 is person-level: first-reach times per stage, the earliest event wins, a later stage
 *   reaches every earlier one at its time (skipping), regressions change nothing. SAL is MQL
 *   accepted, not a stage. End-to-end pairs use the sum of their steps' windows (lead->opp
 *   90 d, lead->won 270 d). Win rate counts every deal type; a reversed win leaves the won
 *   stage when it was that deal's close.
 * - M15/M16 across partitions: bookings are credited by (rep, close month) on the deal's
 *   partition, quota by (rep, month) on the rep's, from the quota's period for QUOTA_MONTHS
 *   months (re-written by each rep.quota_set, cut at the termination month). A team's
 *   bookings follow the opportunity's team_id, its quota the rep's team.
 * - M14 keys the SLA-04 outcome and the handoff by opportunity_id (slarule.c's entity).
 * - The tenant is not part of the metric keys yet (one company per deployment).
 */

#define MS_PER_MIN  (60 * INT64_C(1000))
#define MS_PER_HOUR (60 * MS_PER_MIN)
#define MS_PER_DAY  (24 * MS_PER_HOUR)
#define NONE        INT64_MIN /* an instant not (yet) known */

#define ALL_GRAINS                                                           \
    ((1u << RS_GRAIN_DAY) | (1u << RS_GRAIN_WEEK) | (1u << RS_GRAIN_MONTH) | \
     (1u << RS_GRAIN_QUARTER))
/* Quota is monthly: a day or week cell would hold bookings with no quota to divide by. */
#define MONTHLY_GRAINS ((1u << RS_GRAIN_MONTH) | (1u << RS_GRAIN_QUARTER))
/* The revenue ledger keeps balances by month and quarter, and days from their month's. */
#define DMQ_GRAINS    ((1u << RS_GRAIN_DAY) | MONTHLY_GRAINS)
#define MONTH_GRAIN   (1u << RS_GRAIN_MONTH)
#define QUARTER_GRAIN (1u << RS_GRAIN_QUARTER)

/* Quota facts are written this many months from the quota's `period` on: a rep.quota_set is
 * expected at least every two years (plans are annual); reads past that see no quota. */
#define QUOTA_MONTHS 24
/* A rep that has not ramped within this many months of tenure is not looked at further. */
#define RAMP_MONTHS_MAX 120
/* Failed to ramp: terminated unramped with less tenure than this (METRICS.md M15). */
#define RAMP_FAIL_MONTHS 12.0
/* Most facts one record stands for: a rep's quota months (2 dims each) and its M15 cells. */
#define FACTS_MAX (2 * QUOTA_MONTHS + 8)

/* Entity kinds (key byte after the partition): sla.c has 1, slarule.c 0x10 + rule. Never
 * reuse a value. */
enum {
    KIND_LEAD = 0x20,    /* a lead's funnel record, by lead_id */
    KIND_OPP = 0x21,     /* an opportunity, by opportunity_id */
    KIND_REP = 0x22,     /* a rep, by rep_id */
    KIND_HANDOFF = 0x23, /* SLA-04 outcome and handoff completion, by opportunity_id */
    KIND_ONBOARD = 0x24, /* onboarding start and milestones, by account */
};

/* ---- records -------------------------------------------------------------------------- */

#define REC_VERSION 1
#define REC_INTS    16
#define REC_STRS    5
#define REC_STR_MAX RS_EVENT_ID_MAX /* every string kept is an identifier */
#define REC_MAX     (2 + 8 * REC_INTS + REC_STRS * (2 + REC_STR_MAX))
#define KEY_MAX     (5 + RS_EVENT_ID_MAX)
#define STR_UNSET   0xffffu

/* A record, decoded: what each int and string means is the kind's business (enums below).
 * Loaded strings point into raw[]; strings set from an event borrow the event. */
struct rec {
    int64_t v[REC_INTS];
    struct rs_str s[REC_STRS];
    bool found;
    uint8_t raw[REC_MAX];
};

enum { L_FLAGS, L_TIER, L_ATTEMPT, L_START, L_TOUCH, L_SPAM, L_STAGE };
enum { LS_INTO };
enum { LF_CREATED = 1, LF_MERGED = 2 };
enum { STAGE_LEAD, STAGE_MQL, STAGE_SQL, STAGE_OPP, STAGE_WON, STAGE__COUNT };

enum { O_FLAGS, O_DEAL, O_CLOSED_DEAL, O_CREATED, O_CLOSE, O_AMOUNT, O_CYCLE };
enum { OS_LEAD, OS_OWNER, OS_CREDIT, OS_TEAM, OS_ACCOUNT };
enum { OF_CREATED = 1, OF_CLOSED = 2, OF_WON = 4 };

enum { R_FLAGS, R_START, R_TERM, R_PERIOD, R_QUOTA, R_RAMP_N, R_RAMP /* 3 ints, 8 per int */ };
enum { RS_TEAM };
enum { RF_ONBOARDED = 1, RF_QUOTA = 2, RF_TERMINATED = 4 };

enum { H_FLAGS, H_STATUS, H_START, H_ELAPSED, H_THRESHOLD };
enum { HF_OUTCOME = 1, HF_COMPLETED = 2, HF_CSM = 4 };
enum { OC_MET, OC_BREACHED, OC_BREACHED_THEN_MET, OC_CANCELLED, OC__COUNT };

enum { B_START, B_MILESTONE /* go_live, first_value */ };
#define MILESTONES 2

static void rec_init(struct rec *r)
{
    memset(r->v, 0, sizeof(r->v));
    for (size_t i = 0; i < REC_STRS; i++) {
        r->s[i] = RS_STR_NULL;
    }
    r->found = false;
}

/* Layout: version, REC_INTS, the ints big-endian, then REC_STRS strings as u16 length
 * (STR_UNSET: unset) and bytes. Keep in sync with rec_decode(). */
static size_t rec_encode(const struct rec *r, uint8_t *out)
{
    uint8_t *p = out;

    *p++ = REC_VERSION;
    *p++ = REC_INTS;
    for (size_t i = 0; i < REC_INTS; i++) {
        rs_store_put_u64(p, (uint64_t)r->v[i]);
        p += 8;
    }
    for (size_t i = 0; i < REC_STRS; i++) {
        size_t len = r->s[i].len < REC_STR_MAX ? r->s[i].len : REC_STR_MAX;
        unsigned tag = r->s[i].ptr == NULL ? STR_UNSET : (unsigned)len;

        p[0] = (uint8_t)(tag >> 8);
        p[1] = (uint8_t)tag;
        p += 2;
        if (r->s[i].ptr != NULL && len > 0) {
            memcpy(p, r->s[i].ptr, len);
            p += len;
        }
    }
    return (size_t)(p - out);
}

static int rec_decode(struct rec *r, struct rs_bytes val, struct rs_err *err)
{
    const uint8_t *p = r->raw;
    const uint8_t *end;

    if (val.len < 2 + 8 * REC_INTS || val.len > sizeof(r->raw) ||
        ((const uint8_t *)val.ptr)[0] != REC_VERSION || ((const uint8_t *)val.ptr)[1] != REC_INTS) {
        return rs_err_set(err, RS_ESTORE,
                          "metrics record of %zu bytes is corrupt or of another version", val.len);
    }
    memcpy(r->raw, val.ptr, val.len);
    end = r->raw + val.len;
    p += 2;
    for (size_t i = 0; i < REC_INTS; i++) {
        r->v[i] = (int64_t)rs_store_get_u64(p);
        p += 8;
    }
    for (size_t i = 0; i < REC_STRS; i++) {
        unsigned tag;

        if (end - p < 2) {
            return rs_err_set(err, RS_ESTORE, "metrics record is truncated");
        }
        tag = (unsigned)p[0] << 8 | p[1];
        p += 2;
        if (tag == STR_UNSET) {
            r->s[i] = RS_STR_NULL;
            continue;
        }
        if ((size_t)(end - p) < tag) {
            return rs_err_set(err, RS_ESTORE, "metrics record is truncated");
        }
        r->s[i] = (struct rs_str){ (const char *)p, tag };
        p += tag;
    }
    r->found = true;
    return 0;
}

/* Load (kind, id); a missing record reads as rec_init()'s with found = false. */
static int rec_load(struct rs_store *st, uint32_t partition, uint8_t kind, struct rs_str id,
                    struct rec *r, struct rs_err *err)
{
    uint8_t kbuf[KEY_MAX];
    struct rs_bytes val;
    int rc;

    rec_init(r);
    rc = rs_store_get(st, RS_DB_ENTITIES, rs_entity_key(kbuf, partition, kind, id), &val, err);
    if (rc == RS_ENOTFOUND) {
        rs_err_clear(err);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    return rec_decode(r, val, err);
}

static int rec_save(struct rs_store *st, uint32_t partition, uint8_t kind, struct rs_str id,
                    const struct rec *r, struct rs_err *err)
{
    uint8_t kbuf[KEY_MAX];
    uint8_t vbuf[REC_MAX];
    size_t len = rec_encode(r, vbuf);

    return rs_store_put(st, RS_DB_ENTITIES, rs_entity_key(kbuf, partition, kind, id),
                        (struct rs_bytes){ vbuf, len }, err);
}

/* ---- facts ---------------------------------------------------------------------------- */

struct fact {
    uint16_t metric;
    unsigned grains;
    int64_t t_ms;
    char dims[RS_AGG_DIMS_MAX];
    struct rs_agg_fact f;
};

struct factset {
    size_t n;
    struct fact v[FACTS_MAX];
};

/* Scratch for one event: the facts before and after, off the stack (about 40 KiB). */
struct work {
    struct factset before, after;
    struct rec a, b;
};

static struct rs_str str_of(const char *s)
{
    return (struct rs_str){ s, strlen(s) };
}

static bool str_eq(struct rs_str a, const char *b)
{
    size_t len = strlen(b);

    return a.ptr != NULL && a.len == len && memcmp(a.ptr, b, len) == 0;
}

static bool str_same(struct rs_str a, struct rs_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* A new zeroed fact under dims built from n pairs (up to two). */
static struct rs_agg_fact *fact_add(struct factset *fs, uint16_t metric, unsigned grains,
                                    int64_t t_ms, const struct rs_str (*pairs)[2], size_t n)
{
    struct fact *f = &fs->v[fs->n++];

    assert(fs->n <= FACTS_MAX); /* the fact functions stay within FACTS_MAX by construction */
    memset(f, 0, sizeof(*f));
    f->metric = metric;
    f->grains = grains;
    f->t_ms = t_ms;
    if (n > 0) {
        (void)rs_agg_dims(f->dims, sizeof(f->dims), pairs, n);
    }
    return &f->f;
}

static struct rs_agg_fact *fact_add1(struct factset *fs, uint16_t metric, unsigned grains,
                                     int64_t t_ms, const char *key, struct rs_str value)
{
    const struct rs_str pair[1][2] = { { str_of(key), value } };

    return fact_add(fs, metric, grains, t_ms, value.ptr != NULL ? pair : NULL,
                    value.ptr != NULL ? 1 : 0);
}

static bool fact_equal(const struct fact *a, const struct fact *b)
{
    if (a->metric != b->metric || a->grains != b->grains || a->t_ms != b->t_ms ||
        strcmp(a->dims, b->dims) != 0 || a->f.has_value != b->f.has_value ||
        (a->f.has_value && a->f.value != b->f.value)) {
        return false;
    }
    return memcmp(a->f.n, b->f.n, sizeof(a->f.n)) == 0;
}

static int fact_apply(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                      const struct fact *f, int sign, struct rs_err *err)
{
    struct rs_agg_key key = { partition, f->metric, RS_GRAIN_DAY, 0,
                              (struct rs_str){ f->dims, strlen(f->dims) } };

    m->counters.facts++;
    return rs_agg_add(m->agg, st, m->cfg.zone, &key, f->grains, f->t_ms, sign, &f->f, err);
}

/* Do two facts fall in the same cells (differing, if at all, in counters or value)? */
static bool fact_same_cells(const struct fact *a, const struct fact *b)
{
    return a->metric == b->metric && a->grains == b->grains && a->t_ms == b->t_ms &&
           strcmp(a->dims, b->dims) == 0;
}

/*
 * Retract the facts of `before` that `after` does not hold and add the new ones. A retracted
 * and an added fact that fall in the same cells are one move (rs_agg_move): the cells end the
 * same, with half the work.
 */
static int facts_diff(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                      const struct factset *before, const struct factset *after, struct rs_err *err)
{
    bool kept_before[FACTS_MAX] = { false };
    bool kept_after[FACTS_MAX] = { false };
    int rc = 0;

    for (size_t i = 0; i < before->n; i++) {
        for (size_t j = 0; j < after->n; j++) {
            if (!kept_after[j] && fact_equal(&before->v[i], &after->v[j])) {
                kept_before[i] = kept_after[j] = true;
                break;
            }
        }
    }
    for (size_t i = 0; i < before->n && rc == 0; i++) {
        const struct fact *b = &before->v[i];
        size_t j;

        if (kept_before[i]) {
            continue;
        }
        m->counters.restated++;
        for (j = 0; j < after->n; j++) {
            if (!kept_after[j] && fact_same_cells(b, &after->v[j])) {
                break;
            }
        }
        if (j < after->n) {
            struct rs_agg_key key = { partition, b->metric, RS_GRAIN_DAY, 0,
                                      (struct rs_str){ b->dims, strlen(b->dims) } };

            kept_after[j] = true;
            m->counters.facts += 2;
            rc = rs_agg_move(m->agg, st, m->cfg.zone, &key, b->grains, b->t_ms, &b->f,
                             &after->v[j].f, err);
        } else {
            rc = fact_apply(m, st, partition, b, -1, err);
        }
    }
    for (size_t j = 0; j < after->n && rc == 0; j++) {
        if (!kept_after[j]) {
            rc = fact_apply(m, st, partition, &after->v[j], +1, err);
        }
    }
    return rc;
}

/* ---- local calendar arithmetic (GLib's GDate) ----------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of t's local date in the reporting zone. */
static int64_t local_day(const struct rs_zone *zone, int64_t t_ms)
{
    return floor_div(t_ms + rs_zone_offset_ms(zone, t_ms), MS_PER_DAY);
}

static void local_date(const struct rs_zone *zone, int64_t t_ms, GDate *d)
{
    GDate epoch;

    g_date_clear(&epoch, 1);
    g_date_set_dmy(&epoch, 1, G_DATE_JANUARY, 1970);
    g_date_clear(d, 1);
    g_date_set_julian(d, (guint32)((int64_t)g_date_get_julian(&epoch) + local_day(zone, t_ms)));
}

/* Months from the local date of from_ms to that of to_ms: whole months, plus the elapsed
 * fraction of the month that follows them (Jan 15 -> Jun 1 = 4 + 17/31). */
static double months_between(const struct rs_zone *zone, int64_t from_ms, int64_t to_ms)
{
    GDate from, to, anchor, next;
    int n;

    if (to_ms <= from_ms) {
        return 0;
    }
    local_date(zone, from_ms, &from);
    local_date(zone, to_ms, &to);
    n = ((int)g_date_get_year(&to) * 12 + (int)g_date_get_month(&to)) -
        ((int)g_date_get_year(&from) * 12 + (int)g_date_get_month(&from));
    for (;; n--) {
        anchor = from;
        if (n > 0) {
            g_date_add_months(&anchor, (guint)n);
        }
        if (n <= 0 || g_date_compare(&anchor, &to) <= 0) {
            break;
        }
    }
    if (n < 0) {
        n = 0;
        anchor = from;
    }
    next = anchor;
    g_date_add_months(&next, 1);
    return (double)n +
           (double)g_date_days_between(&anchor, &to) / (double)g_date_days_between(&anchor, &next);
}

/* Months since the epoch of t's local month, for tenure months. */
static int64_t local_month_index(const struct rs_zone *zone, int64_t t_ms)
{
    GDate d;

    local_date(zone, t_ms, &d);
    return (int64_t)g_date_get_year(&d) * 12 + (int64_t)g_date_get_month(&d);
}

/* ---- metric definitions --------------------------------------------------------------- */

static const struct rs_metric_def defs[] = {
    { RS_M11_SPEED_TO_LEAD, "speed_to_lead", "ms", "tier", ALL_GRAINS, false },
    { RS_M11_SPEED_BUSINESS, "speed_to_lead_business", "ms", "tier", ALL_GRAINS, false },
    { RS_M12_FUNNEL, "funnel_conversion", "ratio", "from,to", ALL_GRAINS, true },
    { RS_M12_WIN_RATE, "win_rate", "ratio", "", ALL_GRAINS, false },
    { RS_M13_SALES_CYCLE, "sales_cycle", "days", "outcome", ALL_GRAINS, false },
    { RS_M14_HANDOFF, "handoff_completion", "ratio", "", ALL_GRAINS, false },
    { RS_M15_RAMP, "rep_ramp", "months", "rep", MONTHLY_GRAINS, true },
    { RS_M16_QUOTA, "quota_attainment", "ratio", "rep,team", MONTHLY_GRAINS, false },
    { RS_M20_ONBOARDING, "time_to_onboard", "days", "milestone", ALL_GRAINS, true },
    { RS_MSLA_COMPLIANCE, "sla_compliance", "ratio", "owner,rule", ALL_GRAINS, false },
    { RS_MDQ_DUPLICATES, "duplicate_events", "count", "", ALL_GRAINS, false },
    /* The revenue ledger's raw cells (ledger.h), published on the metrics topic. */
    { RS_MLEDGER_MOVEMENTS, "ledger_movements", "minor", "", ALL_GRAINS, false },
    { RS_MLEDGER_CUSTOMERS, "ledger_customers", "count", "", ALL_GRAINS, false },
    { RS_MLEDGER_BALANCE, "ledger_balance", "minor", "", MONTHLY_GRAINS, false },
    { RS_MLEDGER_T12, "ledger_t12", "ratio", "", MONTH_GRAIN, false },
    { RS_MLEDGER_COHORT, "ledger_cohort", "minor", "cohort", MONTH_GRAIN, false },
    { RS_MLEDGER_CASH, "cash", "minor", "", ALL_GRAINS, false },
    { RS_MLEDGER_SPEND, "spend", "minor", "", MONTHLY_GRAINS, false },
    { RS_MLEDGER_FORECAST, "forecast", "minor", "category,measure,scope,scope_id", MONTHLY_GRAINS,
      false },
    { RS_MLEDGER_FINANCIALS, "financials", "minor", "period", MONTHLY_GRAINS, false },
    { RS_MLEDGER_DQ, "ledger_dq", "count", "", ALL_GRAINS, false },
    /* The revenue metrics (finance.h): evaluated on read from the cells above. */
    { RS_M01_MRR, "mrr", "minor", "", DMQ_GRAINS, false },
    { RS_M02_CUSTOMER_CHURN, "customer_churn", "ratio", "", MONTHLY_GRAINS, false },
    { RS_M03_MRR_CHURN, "mrr_churn", "ratio", "", MONTHLY_GRAINS, false },
    { RS_M04_ARPA, "arpa", "minor", "", DMQ_GRAINS, false },
    { RS_M05_NRR, "nrr", "ratio", "", MONTHLY_GRAINS, false },
    { RS_M05_NRR_T12, "nrr_t12", "ratio", "", MONTH_GRAIN, false },
    { RS_M06_LTV, "ltv", "minor", "", MONTH_GRAIN, false },
    { RS_M07_CAC, "cac", "minor", "", MONTHLY_GRAINS, false },
    { RS_M08_CAC_PAYBACK, "cac_payback", "months", "", MONTHLY_GRAINS, false },
    { RS_M09_MAGIC_NUMBER, "magic_number", "ratio", "", QUARTER_GRAIN, false },
    { RS_M10_RULE_OF_40, "rule_of_40", "pct", "", QUARTER_GRAIN, false },
    { RS_M21_COHORT, "cohort_expansion", "ratio", "cohort", MONTH_GRAIN, true },
    { RS_M22_FORECAST, "forecast_accuracy", "ratio", "category,measure,scope,scope_id",
      MONTHLY_GRAINS, false },
};

#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

const struct rs_metric_def *rs_metric_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < N_DEFS; i++) {
        if (strlen(defs[i].name) == len && memcmp(defs[i].name, name, len) == 0) {
            return &defs[i];
        }
    }
    return NULL;
}

const struct rs_metric_def *rs_metric_by_id(uint16_t id)
{
    for (size_t i = 0; i < N_DEFS; i++) {
        if (defs[i].id == id) {
            return &defs[i];
        }
    }
    return NULL;
}

const struct rs_metric_def *rs_metric_defs(size_t *n)
{
    *n = N_DEFS;
    return defs;
}

/* ---- configuration -------------------------------------------------------------------- */

void rs_metrics_config_defaults(struct rs_metrics_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->lead_sla_ms[RS_TIER_HIGH] = 5 * MS_PER_MIN;
    cfg->lead_sla_ms[RS_TIER_MQL] = 60 * MS_PER_MIN;
    cfg->lead_sla_ms[RS_TIER_LOW] = MS_PER_DAY;
    cfg->funnel_window_ms[0] = 30 * MS_PER_DAY;
    cfg->funnel_window_ms[1] = 30 * MS_PER_DAY;
    cfg->funnel_window_ms[2] = 30 * MS_PER_DAY;
    cfg->funnel_window_ms[3] = 180 * MS_PER_DAY;
    cfg->reopen_same_opportunity_ms = 30 * MS_PER_DAY;
    cfg->handoff_threshold_ms = 18 * MS_PER_HOUR; /* 2 business days of 09:00-18:00 */
    cfg->onboarding_start_at_won = false;
    cfg->lateness_ops_ms = 2 * MS_PER_DAY;
    cfg->lateness_sales_ms = 7 * MS_PER_DAY;
    cfg->min_n = 10;
}

void rs_metrics_init(struct rs_metrics *m, const struct rs_metrics_config *cfg, struct rs_agg *agg)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    m->agg = agg;
}

/* ---- M11 and M12: the lead ------------------------------------------------------------ */

static const char *const stage_names[STAGE__COUNT] = { "lead", "mql", "sql", "opp", "won" };

/* Funnel pairs: the four steps, then end to end in the lead cohort. */
static const uint8_t funnel_pairs[][2] = {
    { STAGE_LEAD, STAGE_MQL }, { STAGE_MQL, STAGE_SQL },  { STAGE_SQL, STAGE_OPP },
    { STAGE_OPP, STAGE_WON },  { STAGE_LEAD, STAGE_OPP }, { STAGE_LEAD, STAGE_WON },
};

#define N_PAIRS (sizeof(funnel_pairs) / sizeof(funnel_pairs[0]))

/* The window of a pair: an end-to-end pair gets the sum of its steps' windows. */
static int64_t funnel_window(const struct rs_metrics_config *cfg, uint8_t from, uint8_t to)
{
    int64_t w = 0;

    for (uint8_t k = from; k < to; k++) {
        w += cfg->funnel_window_ms[k];
    }
    return w;
}

/* Disqualified as spam before any touch: out of the M11 denominator. */
static bool lead_excluded(const struct rec *l)
{
    return l->v[L_SPAM] != NONE && (l->v[L_TOUCH] == NONE || l->v[L_TOUCH] > l->v[L_SPAM]);
}

static bool lead_negative(const struct rec *l)
{
    return (l->v[L_FLAGS] & LF_CREATED) && l->v[L_TOUCH] != NONE && l->v[L_TOUCH] < l->v[L_START];
}

static void lead_init(struct rec *l)
{
    l->v[L_ATTEMPT] = 1;
    l->v[L_START] = NONE;
    l->v[L_TOUCH] = NONE;
    l->v[L_SPAM] = NONE;
    for (int k = 0; k < STAGE__COUNT; k++) {
        l->v[L_STAGE + k] = NONE;
    }
}

/* The speed-to-lead facts of the current instance (both clocks, its tier and all tiers). */
static void lead_instance_facts(const struct rs_metrics *m, const struct rec *l, struct factset *fs)
{
    enum rs_intent_tier tier = (enum rs_intent_tier)l->v[L_TIER];
    int64_t start = l->v[L_START];
    int64_t touch = l->v[L_TOUCH];

    if (!(l->v[L_FLAGS] & LF_CREATED) || lead_excluded(l) || tier >= RS_TIER__COUNT) {
        return;
    }
    for (int business = 0; business < 2; business++) {
        uint16_t metric = business ? RS_M11_SPEED_BUSINESS : RS_M11_SPEED_TO_LEAD;
        int64_t d = 0;

        if (business && m->cfg.sales_hours == NULL) {
            continue;
        }
        if (touch != NONE) {
            /* A touch before the start counts as 0 (clock skew, earlier contact). */
            d = business ? rs_calendar_elapsed(m->cfg.sales_hours, start, touch)
                         : (touch > start ? touch - start : 0);
        }
        for (int all = 0; all < 2; all++) {
            struct rs_agg_fact *f =
                fact_add1(fs, metric, ALL_GRAINS, start, "tier",
                          all ? RS_STR_NULL : str_of(rs_intent_tier_name(tier)));

            f->n[0] = 1;
            if (touch != NONE) {
                f->n[1] = 1;
                f->n[2] = d <= m->cfg.lead_sla_ms[tier];
                f->n[3] = d <= MS_PER_HOUR;
                f->n[4] = touch < start;
                f->n[5] = d;
                f->has_value = true;
                f->value = d;
            }
        }
    }
}

/* The funnel facts of the person: one per pair whose `from` stage was reached. */
static void lead_funnel_facts(const struct rs_metrics *m, const struct rec *l, struct factset *fs)
{
    for (size_t i = 0; i < N_PAIRS; i++) {
        uint8_t from = funnel_pairs[i][0], to = funnel_pairs[i][1];
        int64_t t_from = l->v[L_STAGE + from], t_to = l->v[L_STAGE + to];
        const struct rs_str pairs[2][2] = { { str_of("from"), str_of(stage_names[from]) },
                                            { str_of("to"), str_of(stage_names[to]) } };
        struct rs_agg_fact *f;

        if (t_from == NONE) {
            continue;
        }
        f = fact_add(fs, RS_M12_FUNNEL, ALL_GRAINS, t_from, pairs, 2);
        f->n[0] = 1;
        f->n[1] = t_to != NONE && t_to - t_from <= funnel_window(&m->cfg, from, to);
    }
}

static void lead_facts(const struct rs_metrics *m, const struct rec *l, bool instance,
                       struct factset *fs)
{
    if (l->v[L_FLAGS] & LF_MERGED) {
        return; /* counted under the survivor */
    }
    if (instance) {
        lead_instance_facts(m, l, fs);
    }
    lead_funnel_facts(m, l, fs);
}

/* First reach of `stage` at ts; reaching a stage reaches every earlier one (stage skipping),
 * and the earliest time wins, so the order events arrive in does not matter. */
static void lead_reach(struct rec *l, int stage, int64_t ts)
{
    for (int k = 0; k <= stage; k++) {
        if (l->v[L_STAGE + k] == NONE || ts < l->v[L_STAGE + k]) {
            l->v[L_STAGE + k] = ts;
        }
    }
}

enum lead_op {
    OP_CREATED,
    OP_TOUCHED,
    OP_SPAM,
    OP_REACH,
    OP_UNWIN, /* a win reversed: forget the won stage it gave */
    OP_REOPEN,
};

/*
 * Load lead `id`, following a merge to its survivor (one hop: a survivor merged again
 * later is found under its own survivor by the events that name it). *real gets the id
 * the record is kept under; it borrows buf or the event.
 */
static int lead_load(struct rs_store *st, uint32_t partition, struct rs_str id, struct rec *l,
                     char *buf, struct rs_str *real, struct rs_err *err)
{
    int rc = rec_load(st, partition, KIND_LEAD, id, l, err);

    *real = id;
    if (rc == 0 && l->found && (l->v[L_FLAGS] & LF_MERGED) && l->s[LS_INTO].ptr != NULL) {
        size_t len = l->s[LS_INTO].len;

        memcpy(buf, l->s[LS_INTO].ptr, len);
        *real = (struct rs_str){ buf, len };
        rc = rec_load(st, partition, KIND_LEAD, *real, l, err);
    }
    if (rc == 0 && !l->found) {
        lead_init(l);
    }
    return rc;
}

static int lead_change(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                       struct rs_str id, enum lead_op op, int arg, int64_t ts, struct work *w,
                       struct rs_err *err)
{
    char buf[RS_EVENT_ID_MAX];
    struct rs_str real;
    struct rec *l = &w->a;
    bool was_negative;
    int rc = lead_load(st, partition, id, l, buf, &real, err);

    if (rc != 0) {
        return rc;
    }
    w->before.n = w->after.n = 0;
    /* A new instance leaves the finished one's speed-to-lead facts standing. */
    lead_facts(m, l, op != OP_REOPEN, &w->before);
    was_negative = lead_negative(l);
    switch (op) {
    case OP_CREATED:
        if (!(l->v[L_FLAGS] & LF_CREATED)) {
            l->v[L_FLAGS] |= LF_CREATED;
            l->v[L_START] = ts;
            l->v[L_TIER] = arg;
        } else if (l->v[L_ATTEMPT] == 1 && ts < l->v[L_START]) {
            l->v[L_START] = ts;
        }
        lead_reach(l, STAGE_LEAD, ts);
        break;
    case OP_TOUCHED:
        /* A touch before a later instance began belongs to an earlier one, whose clock is
         * settled: it is not kept. */
        if (l->v[L_ATTEMPT] > 1 && ts < l->v[L_START]) {
            return 0;
        }
        if (l->v[L_TOUCH] == NONE || ts < l->v[L_TOUCH]) {
            l->v[L_TOUCH] = ts;
        }
        break;
    case OP_SPAM:
        if (l->v[L_SPAM] == NONE || ts < l->v[L_SPAM]) {
            l->v[L_SPAM] = ts;
        }
        break;
    case OP_REACH:
        lead_reach(l, arg, ts);
        break;
    case OP_UNWIN:
        if (l->v[L_STAGE + STAGE_WON] != ts) {
            return 0;
        }
        l->v[L_STAGE + STAGE_WON] = NONE;
        break;
    case OP_REOPEN:
        l->v[L_FLAGS] |= LF_CREATED;
        l->v[L_ATTEMPT]++;
        l->v[L_START] = ts;
        l->v[L_TOUCH] = NONE;
        l->v[L_SPAM] = NONE;
        break;
    }
    lead_facts(m, l, true, &w->after);
    if (!was_negative && lead_negative(l)) {
        m->counters.negative_durations++;
    }
    rc = facts_diff(m, st, partition, &w->before, &w->after, err);
    return rc != 0 ? rc : rec_save(st, partition, KIND_LEAD, real, l, err);
}

/* lead.merged: the survivor keeps the earliest start, touch and stage times of both. */
static int lead_merge(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                      const struct rs_lead_merged *e, struct work *w, struct rs_err *err)
{
    char buf[RS_EVENT_ID_MAX];
    struct rs_str into;
    struct rec *a = &w->a, *b = &w->b;
    bool was_negative;
    int rc;

    if (str_same(e->lead_id, e->into_lead_id)) {
        return 0;
    }
    rc = rec_load(st, partition, KIND_LEAD, e->lead_id, a, err);
    if (rc == 0) {
        rc = lead_load(st, partition, e->into_lead_id, b, buf, &into, err);
    }
    if (rc != 0) {
        return rc;
    }
    if (!a->found) {
        lead_init(a);
    } else if (a->v[L_FLAGS] & LF_MERGED) {
        return 0; /* merged already */
    }
    if (str_same(e->lead_id, into)) {
        return 0; /* the survivor was merged into this one: a cycle, ignored */
    }
    w->before.n = w->after.n = 0;
    lead_facts(m, a, true, &w->before);
    lead_facts(m, b, true, &w->before);
    was_negative = lead_negative(b);
    if (a->v[L_FLAGS] & LF_CREATED) {
        if (!(b->v[L_FLAGS] & LF_CREATED)) {
            b->v[L_FLAGS] |= LF_CREATED;
            b->v[L_TIER] = a->v[L_TIER];
            b->v[L_START] = a->v[L_START];
            b->v[L_ATTEMPT] = a->v[L_ATTEMPT];
        } else if (a->v[L_START] < b->v[L_START]) {
            b->v[L_START] = a->v[L_START];
        }
    }
    if (a->v[L_TOUCH] != NONE && (b->v[L_TOUCH] == NONE || a->v[L_TOUCH] < b->v[L_TOUCH])) {
        b->v[L_TOUCH] = a->v[L_TOUCH];
    }
    for (int k = 0; k < STAGE__COUNT; k++) {
        int64_t t = a->v[L_STAGE + k];

        if (t != NONE && (b->v[L_STAGE + k] == NONE || t < b->v[L_STAGE + k])) {
            b->v[L_STAGE + k] = t;
        }
    }
    a->v[L_FLAGS] |= LF_MERGED;
    a->s[LS_INTO] = into;
    lead_facts(m, a, true, &w->after);
    lead_facts(m, b, true, &w->after);
    if (!was_negative && lead_negative(b)) {
        m->counters.negative_durations++;
    }
    rc = facts_diff(m, st, partition, &w->before, &w->after, err);
    if (rc == 0) {
        rc = rec_save(st, partition, KIND_LEAD, into, b, err);
    }
    return rc != 0 ? rc : rec_save(st, partition, KIND_LEAD, e->lead_id, a, err);
}

/* ---- M12 win rate, M13, M14 won deals, M16 bookings: the opportunity -------------------- */

static void opp_init(struct rec *o)
{
    o->v[O_DEAL] = RS_DEAL_NEW; /* until opportunity.created says otherwise */
    o->v[O_CLOSED_DEAL] = -1;
    o->v[O_CREATED] = NONE;
    o->v[O_CLOSE] = NONE;
}

static int64_t opp_deal(const struct rec *o)
{
    return o->v[O_CLOSED_DEAL] >= 0 ? o->v[O_CLOSED_DEAL] : o->v[O_DEAL];
}

static bool opp_negative(const struct rs_metrics *m, const struct rec *o)
{
    return (o->v[O_FLAGS] & OF_CLOSED) && (o->v[O_FLAGS] & OF_CREATED) &&
           local_day(m->cfg.zone, o->v[O_CLOSE]) < local_day(m->cfg.zone, o->v[O_CREATED]);
}

static void opp_facts(const struct rs_metrics *m, const struct rec *o, struct factset *fs)
{
    bool won = (o->v[O_FLAGS] & OF_WON) != 0;
    int64_t close = o->v[O_CLOSE];
    int64_t amount = o->v[O_AMOUNT];
    struct rs_agg_fact *f;

    if (!(o->v[O_FLAGS] & OF_CLOSED)) {
        return;
    }
    f = fact_add(fs, RS_M12_WIN_RATE, ALL_GRAINS, close, NULL, 0);
    f->n[won ? 0 : 1] = 1;
    f->n[won ? 2 : 3] = amount;
    if (o->v[O_FLAGS] & OF_CREATED) {
        int64_t days = local_day(m->cfg.zone, close) - local_day(m->cfg.zone, o->v[O_CREATED]);

        f = fact_add1(fs, RS_M13_SALES_CYCLE, ALL_GRAINS, close, "outcome",
                      str_of(won ? "won" : "lost"));
        f->n[0] = 1;
        f->n[1] = days < 0;
        f->n[2] = days > 0 ? days : 0;
        f->has_value = true;
        f->value = days > 0 ? days : 0;
    }
    if (won && opp_deal(o) == RS_DEAL_NEW) {
        struct rs_str credit = o->s[OS_CREDIT].ptr != NULL ? o->s[OS_CREDIT] : o->s[OS_OWNER];

        f = fact_add(fs, RS_M14_HANDOFF, ALL_GRAINS, close, NULL, 0);
        f->n[0] = 1;
        if (credit.ptr != NULL) {
            f = fact_add1(fs, RS_M16_QUOTA, MONTHLY_GRAINS, close, "rep", credit);
            f->n[0] = amount;
            f->n[1] = 1;
        }
        if (o->s[OS_TEAM].ptr != NULL) {
            f = fact_add1(fs, RS_M16_QUOTA, MONTHLY_GRAINS, close, "team", o->s[OS_TEAM]);
            f->n[0] = amount;
            f->n[1] = 1;
        }
    }
}

/* Load, let `change` edit, diff and save an opportunity. keep_before: the old facts stay. */
typedef void opp_change_fn(const struct rs_metrics *m, struct rec *o, const struct rs_event *ev,
                           bool *keep_before);

static int opp_change(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                      struct rs_str id, opp_change_fn *change, const struct rs_event *ev,
                      struct work *w, struct rs_err *err)
{
    struct rec *o = &w->b;
    bool keep_before = false, was_negative;
    int rc = rec_load(st, partition, KIND_OPP, id, o, err);

    if (rc != 0) {
        return rc;
    }
    if (!o->found) {
        opp_init(o);
    }
    w->before.n = w->after.n = 0;
    opp_facts(m, o, &w->before);
    was_negative = opp_negative(m, o);
    change(m, o, ev, &keep_before);
    if (keep_before) {
        w->before.n = 0;
    }
    opp_facts(m, o, &w->after);
    if (!was_negative && opp_negative(m, o)) {
        m->counters.negative_durations++;
    }
    rc = facts_diff(m, st, partition, &w->before, &w->after, err);
    return rc != 0 ? rc : rec_save(st, partition, KIND_OPP, id, o, err);
}

static void opp_created(const struct rs_metrics *m, struct rec *o, const struct rs_event *ev,
                        bool *keep_before)
{
    const struct rs_opp_created *e = &ev->u.opp_created;

    (void)m;
    (void)keep_before;
    if (!(o->v[O_FLAGS] & OF_CREATED) || (o->v[O_CYCLE] == 0 && ev->ts_ms < o->v[O_CREATED])) {
        o->v[O_CREATED] = ev->ts_ms;
    }
    o->v[O_FLAGS] |= OF_CREATED;
    o->v[O_DEAL] = e->deal_type;
    o->s[OS_OWNER] = e->owner_id;
    if (rs_str_is_set(e->team_id)) {
        o->s[OS_TEAM] = e->team_id;
    }
    if (rs_str_is_set(e->account_id)) {
        o->s[OS_ACCOUNT] = e->account_id;
    }
    if (rs_str_is_set(e->lead_id) && o->s[OS_LEAD].ptr == NULL) {
        o->s[OS_LEAD] = e->lead_id;
    }
}

static void opp_closed(const struct rs_metrics *m, struct rec *o, const struct rs_event *ev,
                       bool *keep_before)
{
    const struct rs_opp_closed *e = &ev->u.opp_closed;

    (void)m;
    (void)keep_before;
    o->v[O_FLAGS] |= OF_CLOSED;
    o->v[O_FLAGS] &= ~(int64_t)OF_WON;
    if (e->outcome == RS_OUTCOME_WON) {
        o->v[O_FLAGS] |= OF_WON;
    }
    o->v[O_CLOSE] = e->close_date_ms;
    o->v[O_AMOUNT] = e->amount_minor;
    o->v[O_CLOSED_DEAL] = e->has_deal_type ? (int64_t)e->deal_type : -1;
    o->s[OS_CREDIT] = e->owner_id;
}

/*
 * opportunity.reopened: a reversed win is clawed back (its facts retracted); a loss
 * reopened within reopen_same_opportunity_ms is voided (the original created date stands);
 * a later reopen starts a new cycle and the lost one stays lost.
 */
static void opp_reopened(const struct rs_metrics *m, struct rec *o, const struct rs_event *ev,
                         bool *keep_before)
{
    int64_t flags = o->v[O_FLAGS];

    if (!(flags & OF_CLOSED)) {
        return;
    }
    if (!(flags & OF_WON) && ev->ts_ms - o->v[O_CLOSE] > m->cfg.reopen_same_opportunity_ms) {
        *keep_before = true;
        o->v[O_CREATED] = ev->ts_ms;
        o->v[O_FLAGS] |= OF_CREATED;
        o->v[O_CYCLE]++;
    }
    o->v[O_FLAGS] &= ~(int64_t)(OF_CLOSED | OF_WON);
}

/* ---- M14: SLA-04 outcomes and handoff completions -------------------------------------- */

static void handoff_init(struct rec *h)
{
    h->v[H_START] = NONE;
}

static void handoff_facts(const struct rs_metrics *m, const struct rec *h, struct factset *fs)
{
    int64_t flags = h->v[H_FLAGS];
    int64_t status = h->v[H_STATUS];
    int64_t threshold = h->v[H_THRESHOLD] > 0 ? h->v[H_THRESHOLD] : m->cfg.handoff_threshold_ms;
    bool matured, missing, completed;
    struct rs_agg_fact *f;

    if (!(flags & HF_OUTCOME)) {
        return;
    }
    matured = status == OC_MET || status == OC_BREACHED || status == OC_BREACHED_THEN_MET;
    /* A handoff.completed that names no CSM is not a completed handoff (missing_csm). */
    missing = matured && (flags & HF_COMPLETED) && !(flags & HF_CSM);
    completed = (status == OC_MET || status == OC_BREACHED_THEN_MET) && !missing;
    f = fact_add(fs, RS_M14_HANDOFF, ALL_GRAINS, h->v[H_START], NULL, 0);
    f->n[1] = matured;
    f->n[2] = completed && h->v[H_ELAPSED] <= threshold;
    f->n[3] = completed;
    f->n[4] = missing;
    if (completed) {
        f->n[5] = h->v[H_ELAPSED];
        f->has_value = true;
        f->value = h->v[H_ELAPSED];
    }
}

static int outcome_code(const char *status)
{
    static const char *const names[OC__COUNT] = { "met", "breached", "breached_then_met",
                                                  "cancelled" };

    for (int i = 0; i < OC__COUNT; i++) {
        if (status != NULL && strcmp(status, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- M20: onboarding ------------------------------------------------------------------ */

static const char *const milestone_names[MILESTONES] = { "go_live", "first_value" };

static void onboard_init(struct rec *b)
{
    b->v[B_START] = NONE;
    for (int i = 0; i < MILESTONES; i++) {
        b->v[B_MILESTONE + i] = NONE;
    }
}

static bool onboard_negative(const struct rec *b, int i)
{
    return b->v[B_START] != NONE && b->v[B_MILESTONE + i] != NONE &&
           b->v[B_MILESTONE + i] < b->v[B_START];
}

static void onboard_facts(const struct rec *b, struct factset *fs)
{
    static const int64_t within_days[4] = { 7, 30, 60, 90 };
    int64_t start = b->v[B_START];

    if (start == NONE) {
        return;
    }
    for (int i = 0; i < MILESTONES; i++) {
        int64_t at = b->v[B_MILESTONE + i];
        struct rs_agg_fact *f = fact_add1(fs, RS_M20_ONBOARDING, ALL_GRAINS, start, "milestone",
                                          str_of(milestone_names[i]));

        f->n[0] = 1;
        if (at != NONE) {
            int64_t d = at > start ? at - start : 0; /* a milestone before start (pilot) */

            f->n[1] = 1;
            for (int k = 0; k < 4; k++) {
                f->n[2 + k] = d <= within_days[k] * MS_PER_DAY;
            }
            f->n[6] = d;
            f->n[7] = at < start;
            f->has_value = true;
            f->value = d;
        }
    }
}

/* milestone < 0: a start at ts; else the milestone reached at ts. Earliest wins. */
static int onboard_change(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                          struct rs_str account, int milestone, int64_t ts, struct work *w,
                          struct rs_err *err)
{
    struct rec *b = &w->a;
    int slot = milestone < 0 ? B_START : B_MILESTONE + milestone;
    bool was_negative[MILESTONES];
    int rc;

    if (!rs_str_is_set(account)) {
        return 0;
    }
    rc = rec_load(st, partition, KIND_ONBOARD, account, b, err);
    if (rc != 0) {
        return rc;
    }
    if (!b->found) {
        onboard_init(b);
    }
    if (b->v[slot] != NONE && b->v[slot] <= ts) {
        return 0;
    }
    w->before.n = w->after.n = 0;
    onboard_facts(b, &w->before);
    for (int i = 0; i < MILESTONES; i++) {
        was_negative[i] = onboard_negative(b, i);
    }
    b->v[slot] = ts;
    onboard_facts(b, &w->after);
    for (int i = 0; i < MILESTONES; i++) {
        if (!was_negative[i] && onboard_negative(b, i)) {
            m->counters.negative_durations++;
        }
    }
    rc = facts_diff(m, st, partition, &w->before, &w->after, err);
    return rc != 0 ? rc : rec_save(st, partition, KIND_ONBOARD, account, b, err);
}

/* ---- M15 and M16: the rep ------------------------------------------------------------- */

static void rep_init(struct rec *r)
{
    r->v[R_START] = NONE;
    r->v[R_TERM] = NONE;
    r->v[R_PERIOD] = NONE;
}

static unsigned rep_ramp_pct(const struct rec *r, int64_t k)
{
    uint64_t word;

    if (k < 0 || k >= r->v[R_RAMP_N] || k >= RS_RAMP_MAX) {
        return 100;
    }
    word = (uint64_t)r->v[R_RAMP + k / 8];
    return (unsigned)((word >> (8 * (k % 8))) & 0xffu);
}

static void rep_facts(const struct rs_metrics *m, struct rs_str id, const struct rec *r,
                      struct factset *fs)
{
    const struct rs_zone *zone = m->cfg.zone;
    int64_t flags = r->v[R_FLAGS];
    struct rs_agg_fact *f;

    if (flags & RF_ONBOARDED) {
        f = fact_add1(fs, RS_M15_RAMP, MONTHLY_GRAINS, r->v[R_START], "rep", id);
        f->n[0] = 1;
        f->n[1] = r->v[R_START];
        f->n[2] = (flags & RF_TERMINATED) ? r->v[R_TERM] : 0;
        f = fact_add(fs, RS_M15_RAMP, MONTHLY_GRAINS, r->v[R_START], NULL, 0);
        f->n[0] = 1;
    }
    if (flags & RF_QUOTA) {
        int64_t start_month =
            (flags & RF_ONBOARDED) ? rs_bucket_start(zone, RS_GRAIN_MONTH, r->v[R_START]) : NONE;
        int64_t term_month = (flags & RF_TERMINATED)
                                 ? rs_bucket_start(zone, RS_GRAIN_MONTH, r->v[R_TERM])
                                 : INT64_MAX;
        int64_t start_index =
            (flags & RF_ONBOARDED) ? local_month_index(zone, r->v[R_START]) : INT64_MIN;
        int64_t b = r->v[R_PERIOD];

        for (int i = 0; i < QUOTA_MONTHS && b <= term_month; i++) {
            if (b >= start_month) {
                /* Tenure month k + 1 gets ramp_schedule[k]; no start date: full quota. */
                int64_t k = start_index != INT64_MIN ? local_month_index(zone, b) - start_index
                                                     : RS_RAMP_MAX;
                int64_t full = r->v[R_QUOTA];
                int64_t quota = full * (int64_t)rep_ramp_pct(r, k) / 100;

                for (int team = 0; team < 2; team++) {
                    if (team && r->s[RS_TEAM].ptr == NULL) {
                        continue;
                    }
                    f = fact_add1(fs, RS_M16_QUOTA, MONTHLY_GRAINS, b, team ? "team" : "rep",
                                  team ? r->s[RS_TEAM] : id);
                    f->n[2] = quota;
                    f->n[3] = quota >= full;
                    f->n[4] = b == term_month;
                    f->n[5] = 1;
                    f->n[6] = full;
                }
            }
            b = rs_bucket_end(zone, RS_GRAIN_MONTH, b);
        }
    }
}

static int rep_change(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                      const struct rs_event *ev, struct work *w, struct rs_err *err)
{
    struct rec *r = &w->a;
    struct rs_str id = ev->type == RS_EV_REP_ONBOARDED   ? ev->u.rep_onboarded.rep_id
                       : ev->type == RS_EV_REP_QUOTA_SET ? ev->u.rep_quota_set.rep_id
                                                         : ev->u.rep_terminated.rep_id;
    int rc = rec_load(st, partition, KIND_REP, id, r, err);

    if (rc != 0) {
        return rc;
    }
    if (!r->found) {
        rep_init(r);
    }
    w->before.n = w->after.n = 0;
    rep_facts(m, id, r, &w->before);
    if (ev->type == RS_EV_REP_ONBOARDED) {
        const struct rs_rep_onboarded *e = &ev->u.rep_onboarded;

        r->v[R_FLAGS] |= RF_ONBOARDED;
        r->v[R_START] = e->start_date_ms;
        if (rs_str_is_set(e->team_id)) {
            r->s[RS_TEAM] = e->team_id;
        }
    } else if (ev->type == RS_EV_REP_QUOTA_SET) {
        const struct rs_rep_quota_set *e = &ev->u.rep_quota_set;
        int64_t period;
        uint32_t n = e->ramp_n < RS_RAMP_MAX ? e->ramp_n : RS_RAMP_MAX;

        /* The period names a month of the reporting zone, not of UTC. */
        if (rs_bucket_parse(m->cfg.zone, RS_GRAIN_MONTH, e->period.ptr, e->period.len, &period,
                            NULL) != 0) {
            period = rs_bucket_start(m->cfg.zone, RS_GRAIN_MONTH, e->period_start_ms);
        }
        r->v[R_FLAGS] |= RF_QUOTA;
        r->v[R_PERIOD] = period;
        r->v[R_QUOTA] = e->quota_minor;
        r->v[R_RAMP_N] = n;
        for (int i = 0; i < 3; i++) {
            r->v[R_RAMP + i] = 0;
        }
        for (uint32_t k = 0; k < n; k++) {
            uint64_t word = (uint64_t)r->v[R_RAMP + k / 8];

            word |= (uint64_t)e->ramp_pct[k] << (8 * (k % 8));
            r->v[R_RAMP + k / 8] = (int64_t)word;
        }
    } else {
        if (!(r->v[R_FLAGS] & RF_TERMINATED) || ev->ts_ms < r->v[R_TERM]) {
            r->v[R_TERM] = ev->ts_ms;
        }
        r->v[R_FLAGS] |= RF_TERMINATED;
    }
    rep_facts(m, id, r, &w->after);
    rc = facts_diff(m, st, partition, &w->before, &w->after, err);
    return rc != 0 ? rc : rec_save(st, partition, KIND_REP, id, r, err);
}

/* ---- the write side ------------------------------------------------------------------- */

/* Link a lead and an opportunity: the lead reaches the opportunity stage at `at`, and the
 * won stage if the opportunity is won already (events in any order). */
static int link_lead(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                     struct rs_str lead, int64_t at, struct rs_str opp_id, struct work *w,
                     struct rs_err *err)
{
    struct rec *o = &w->b;
    int64_t won_at = NONE;
    int rc = rec_load(st, partition, KIND_OPP, opp_id, o, err);

    if (rc != 0) {
        return rc;
    }
    if (!o->found) {
        opp_init(o);
    }
    if (o->s[OS_LEAD].ptr == NULL) {
        o->s[OS_LEAD] = lead;
        rc = rec_save(st, partition, KIND_OPP, opp_id, o, err);
    }
    if ((o->v[O_FLAGS] & OF_CLOSED) && (o->v[O_FLAGS] & OF_WON)) {
        won_at = o->v[O_CLOSE];
    }
    if (rc == 0) {
        rc = lead_change(m, st, partition, lead, OP_REACH, STAGE_OPP, at, w, err);
    }
    if (rc == 0 && won_at != NONE) {
        rc = lead_change(m, st, partition, lead, OP_REACH, STAGE_WON, won_at, w, err);
    }
    return rc;
}

static int apply_opp(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                     const struct rs_event *ev, struct work *w, struct rs_err *err)
{
    struct rs_str id = ev->type == RS_EV_OPP_CREATED  ? ev->u.opp_created.opportunity_id
                       : ev->type == RS_EV_OPP_CLOSED ? ev->u.opp_closed.opportunity_id
                                                      : ev->u.opp_reopened.opportunity_id;
    char lead_buf[RS_EVENT_ID_MAX], account_buf[RS_EVENT_ID_MAX];
    struct rs_str lead = RS_STR_NULL, account = RS_STR_NULL;
    bool was_won;
    int64_t close;
    int rc;

    /* What the lead and the onboarding need after the opportunity changed. */
    rc = rec_load(st, partition, KIND_OPP, id, &w->b, err);
    if (rc != 0) {
        return rc;
    }
    was_won = w->b.found && (w->b.v[O_FLAGS] & OF_CLOSED) && (w->b.v[O_FLAGS] & OF_WON);
    close = w->b.found ? w->b.v[O_CLOSE] : NONE;
    switch (ev->type) {
    case RS_EV_OPP_CREATED:
        rc = opp_change(m, st, partition, id, opp_created, ev, w, err);
        break;
    case RS_EV_OPP_CLOSED:
        rc = opp_change(m, st, partition, id, opp_closed, ev, w, err);
        break;
    default:
        rc = opp_change(m, st, partition, id, opp_reopened, ev, w, err);
        break;
    }
    if (rc != 0) {
        return rc;
    }
    if (w->b.s[OS_LEAD].ptr != NULL) {
        memcpy(lead_buf, w->b.s[OS_LEAD].ptr, w->b.s[OS_LEAD].len);
        lead = (struct rs_str){ lead_buf, w->b.s[OS_LEAD].len };
    }
    if (w->b.s[OS_ACCOUNT].ptr != NULL) {
        memcpy(account_buf, w->b.s[OS_ACCOUNT].ptr, w->b.s[OS_ACCOUNT].len);
        account = (struct rs_str){ account_buf, w->b.s[OS_ACCOUNT].len };
    }
    if (ev->type == RS_EV_OPP_CREATED && rs_str_is_set(ev->u.opp_created.lead_id)) {
        return link_lead(m, st, partition, ev->u.opp_created.lead_id, ev->ts_ms, id, w, err);
    }
    if (ev->type == RS_EV_OPP_CLOSED && ev->u.opp_closed.outcome == RS_OUTCOME_WON) {
        int64_t at = ev->u.opp_closed.close_date_ms;

        if (lead.ptr != NULL) {
            rc = lead_change(m, st, partition, lead, OP_REACH, STAGE_WON, at, w, err);
        }
        if (rc == 0 && m->cfg.onboarding_start_at_won) {
            rc = onboard_change(m, st, partition,
                                rs_str_is_set(ev->account) ? ev->account : account, -1, at, w, err);
        }
        return rc;
    }
    if (ev->type == RS_EV_OPP_REOPENED && was_won && lead.ptr != NULL) {
        return lead_change(m, st, partition, lead, OP_UNWIN, 0, close, w, err);
    }
    return 0;
}

static int apply_handoff(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                         const struct rs_event *ev, struct work *w, struct rs_err *err)
{
    const struct rs_handoff *e = &ev->u.handoff;
    struct rec *h = &w->a;
    int64_t before_flags;
    int rc = 0;

    if (rs_str_is_set(e->opportunity_id)) {
        rc = rec_load(st, partition, KIND_HANDOFF, e->opportunity_id, h, err);
        if (rc != 0) {
            return rc;
        }
        if (!h->found) {
            handoff_init(h);
        }
        before_flags = h->v[H_FLAGS];
        w->before.n = w->after.n = 0;
        handoff_facts(m, h, &w->before);
        h->v[H_FLAGS] |= HF_COMPLETED;
        if (rs_str_is_set(e->csm_id)) {
            h->v[H_FLAGS] |= HF_CSM;
        }
        if (h->v[H_FLAGS] != before_flags) {
            handoff_facts(m, h, &w->after);
            rc = facts_diff(m, st, partition, &w->before, &w->after, err);
            if (rc == 0) {
                rc = rec_save(st, partition, KIND_HANDOFF, e->opportunity_id, h, err);
            }
        }
    }
    if (rc == 0 && !m->cfg.onboarding_start_at_won) {
        rc = onboard_change(m, st, partition,
                            rs_str_is_set(e->account_id) ? e->account_id : ev->account, -1,
                            ev->ts_ms, w, err);
    }
    return rc;
}

static int apply_event(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                       const struct rs_event *ev, struct work *w, struct rs_err *err)
{
    const struct rs_lead_touched *touch = &ev->u.lead_touched;
    const struct rs_onboarding_milestone *ms = &ev->u.onboarding_milestone;

    switch (ev->type) {
    case RS_EV_LEAD_CREATED:
        return lead_change(m, st, partition, ev->u.lead_created.lead_id, OP_CREATED,
                           (int)ev->u.lead_created.intent_tier, ev->ts_ms, w, err);
    case RS_EV_LEAD_TOUCHED:
        if (touch->actor_type != RS_ACTOR_HUMAN || touch->direction != RS_DIR_OUTBOUND) {
            return 0; /* auto-replies and inbound messages are not a first attempt */
        }
        return lead_change(m, st, partition, touch->lead_id, OP_TOUCHED, 0, ev->ts_ms, w, err);
    case RS_EV_LEAD_DISQUALIFIED:
        if (!str_eq(ev->u.lead_disqualified.reason, "spam")) {
            return 0;
        }
        return lead_change(m, st, partition, ev->u.lead_disqualified.lead_id, OP_SPAM, 0, ev->ts_ms,
                           w, err);
    case RS_EV_LEAD_QUALIFIED:
        /* SAL is MQL accepted: not a funnel stage of its own. */
        return lead_change(m, st, partition, ev->u.lead_qualified.lead_id, OP_REACH,
                           ev->u.lead_qualified.stage == RS_QUAL_SQL ? STAGE_SQL : STAGE_MQL,
                           ev->ts_ms, w, err);
    case RS_EV_LEAD_CONVERTED:
        if (!rs_str_is_set(ev->u.lead_converted.opportunity_id)) {
            return 0;
        }
        return link_lead(m, st, partition, ev->u.lead_converted.lead_id, ev->ts_ms,
                         ev->u.lead_converted.opportunity_id, w, err);
    case RS_EV_LEAD_MERGED:
        return lead_merge(m, st, partition, &ev->u.lead_merged, w, err);
    case RS_EV_LEAD_RECYCLED:
    case RS_EV_LEAD_REOPENED:
        return lead_change(m, st, partition, ev->u.lead_lifecycle.lead_id, OP_REOPEN, 0, ev->ts_ms,
                           w, err);
    case RS_EV_OPP_CREATED:
    case RS_EV_OPP_CLOSED:
    case RS_EV_OPP_REOPENED:
        return apply_opp(m, st, partition, ev, w, err);
    case RS_EV_HANDOFF_COMPLETED:
        return apply_handoff(m, st, partition, ev, w, err);
    case RS_EV_ONBOARDING_MILESTONE:
        if (rs_str_is_set(ms->status) && !str_eq(ms->status, "completed")) {
            return 0;
        }
        if (ms->milestone == RS_MS_GO_LIVE || ms->milestone == RS_MS_FIRST_VALUE) {
            return onboard_change(m, st, partition,
                                  rs_str_is_set(ms->account_id) ? ms->account_id : ev->account,
                                  ms->milestone == RS_MS_GO_LIVE ? 0 : 1, ev->ts_ms, w, err);
        }
        return 0;
    case RS_EV_REP_ONBOARDED:
    case RS_EV_REP_QUOTA_SET:
    case RS_EV_REP_TERMINATED:
        return rep_change(m, st, partition, ev, w, err);
    default:
        return 0;
    }
}

int rs_metrics_apply(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                     const struct rs_event *ev, struct rs_err *err)
{
    struct work *w;
    int rc;

    switch (ev->type) {
    case RS_EV_LEAD_ASSIGNED:
    case RS_EV_OPP_STAGE_CHANGED:
    case RS_EV_HANDOFF_STARTED:
    case RS_EV_ONBOARDING_PAUSED:
    case RS_EV_ONBOARDING_RESUMED:
        return 0; /* no metric of this module reads them */
    default:
        break;
    }
    m->st = st;
    w = rs_xmalloc(sizeof(*w));
    rc = apply_event(m, st, partition, ev, w, err);
    free(w);
    return rc;
}

/* "SLA-02" from "SLA-02_mql_acceptance". */
static struct rs_str rule_label(const struct rs_sla_outcome *o, char *buf, size_t size)
{
    const char *type = o->sla_type != NULL ? o->sla_type : rs_rule_sla_type(o->rule);
    const char *cut;
    int n;

    if (type != NULL && (cut = strchr(type, '_')) != NULL) {
        return (struct rs_str){ type, (size_t)(cut - type) };
    }
    n = snprintf(buf, size, "SLA-%02u", (unsigned)o->rule);
    return (struct rs_str){ buf, n > 0 ? (size_t)n : 0 };
}

/* M14: the SLA-04 instance of a deal settled (sign +1) or its earlier outcome withdrawn. */
static int handoff_outcome(struct rs_metrics *m, uint32_t partition, const struct rs_sla_outcome *o,
                           int code, int sign, struct work *w, struct rs_err *err)
{
    struct rec *h = &w->a;
    int rc = rec_load(m->st, partition, KIND_HANDOFF, o->entity_id, h, err);

    if (rc != 0) {
        return rc;
    }
    if (!h->found) {
        handoff_init(h);
    }
    w->before.n = w->after.n = 0;
    handoff_facts(m, h, &w->before);
    if (sign > 0) {
        h->v[H_FLAGS] |= HF_OUTCOME;
        h->v[H_STATUS] = code;
        h->v[H_START] = o->start_ms;
        h->v[H_ELAPSED] = o->elapsed_business_ms;
        h->v[H_THRESHOLD] = o->threshold_ms;
    } else if ((h->v[H_FLAGS] & HF_OUTCOME) && h->v[H_STATUS] == code) {
        h->v[H_FLAGS] &= ~(int64_t)HF_OUTCOME;
    } else {
        return 0; /* withdrawing an outcome that was never recorded */
    }
    handoff_facts(m, h, &w->after);
    rc = facts_diff(m, m->st, partition, &w->before, &w->after, err);
    return rc != 0 ? rc : rec_save(m->st, partition, KIND_HANDOFF, o->entity_id, h, err);
}

int rs_metrics_sla_outcome(void *opaque, uint32_t partition, const struct rs_sla_outcome *o,
                           int sign, struct rs_err *err)
{
    struct rs_metrics *m = opaque;
    int code = outcome_code(o->status);
    char buf[16];
    struct rs_str rule = rule_label(o, buf, sizeof(buf));
    struct work *w;
    int rc = 0;

    if (code < 0 || (sign != 1 && sign != -1)) {
        return 0; /* a status the metrics do not count (running, paused) */
    }
    if (m->st == NULL) {
        return rs_err_set(err, RS_EINVAL, "metrics: no store to record an SLA outcome in");
    }
    w = rs_xmalloc(sizeof(*w));
    w->before.n = 0;
    for (int owner = 0; owner < 2; owner++) {
        const struct rs_str pairs[2][2] = { { str_of("owner"), o->owner_id },
                                            { str_of("rule"), rule } };
        struct rs_agg_fact *f;

        if (owner && !rs_str_is_set(o->owner_id)) {
            continue;
        }
        f = owner ? fact_add(&w->before, RS_MSLA_COMPLIANCE, ALL_GRAINS, o->start_ms, pairs, 2)
                  : fact_add(&w->before, RS_MSLA_COMPLIANCE, ALL_GRAINS, o->start_ms, pairs + 1, 1);
        f->n[code] = 1;
        if (code == OC_MET || code == OC_BREACHED_THEN_MET) {
            f->n[4] = o->elapsed_business_ms;
            f->has_value = true;
            f->value = o->elapsed_business_ms;
        }
    }
    for (size_t i = 0; i < w->before.n && rc == 0; i++) {
        if (sign < 0) {
            m->counters.restated++;
        }
        rc = fact_apply(m, m->st, partition, &w->before.v[i], sign, err);
    }
    if (rc == 0 && o->rule == RS_RULE_HANDOFF && rs_str_is_set(o->entity_id)) {
        rc = handoff_outcome(m, partition, o, code, sign, w, err);
    }
    free(w);
    return rc;
}

int rs_metrics_duplicate(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                         const struct rs_event *ev, struct rs_err *err)
{
    struct fact f;

    memset(&f, 0, sizeof(f));
    f.metric = RS_MDQ_DUPLICATES;
    f.grains = ALL_GRAINS;
    f.t_ms = ev->ts_ms;
    f.f.n[0] = 1;
    return fact_apply(m, st, partition, &f, +1, err);
}

/* ---- the read side -------------------------------------------------------------------- */

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        return INT64_MIN;
    }
    return a + b;
}

static void set_ratio(struct rs_metric_value *out, int64_t num, int64_t den)
{
    out->numerator = num;
    out->denominator = den;
    if (den <= 0) {
        out->is_null = true;
        out->null_reason = "no_base";
    } else {
        out->value = (double)num / (double)den;
    }
}

static double share(int64_t num, int64_t den)
{
    return den > 0 ? (double)num / (double)den : 0;
}

static void set_quantiles(struct rs_metric_value *out, const struct rs_sketch *sk, double scale)
{
    out->p50 = rs_sketch_quantile(sk, 0.5) / scale;
    out->p75 = rs_sketch_quantile(sk, 0.75) / scale;
    out->p90 = rs_sketch_quantile(sk, 0.9) / scale;
}

/*
 * Quantile q (type 7) of n_total units of which those in sk are observed and the others
 * have not reached the milestone yet, so rank above every observed one. False when the
 * quantile falls among them.
 */
static bool censored_quantile(const struct rs_sketch *sk, int64_t n_total, double q, double *out)
{
    int64_t n_obs = (int64_t)sk->count;
    double h = (double)(n_total - 1) * q;

    if (n_total <= 0 || n_obs <= 0 || ceil(h) > (double)(n_obs - 1)) {
        return false;
    }
    *out = n_obs == 1 ? rs_sketch_quantile(sk, 0) : rs_sketch_quantile(sk, h / (double)(n_obs - 1));
    return true;
}

/* The funnel pair that dims name, or -1. */
static int funnel_pair_of(struct rs_str dims)
{
    char want[64];

    for (size_t i = 0; i < N_PAIRS; i++) {
        int n = snprintf(want, sizeof(want), "from=%s,to=%s", stage_names[funnel_pairs[i][0]],
                         stage_names[funnel_pairs[i][1]]);

        if (n > 0 && (size_t)n == dims.len && memcmp(want, dims.ptr, dims.len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

void rs_metric_eval(const struct rs_metrics_config *cfg, const struct rs_metric_def *def,
                    struct rs_str dims, enum rs_grain grain, int64_t bucket,
                    const struct rs_agg_cell *cell, int64_t watermark_ms,
                    struct rs_metric_value *out)
{
    const int64_t *n = cell->n;
    const struct rs_sketch *sk = &cell->sketch;
    int64_t end = rs_bucket_end(cfg->zone, grain, bucket);
    bool ops = (def->id == RS_M11_SPEED_TO_LEAD || def->id == RS_M11_SPEED_BUSINESS ||
                def->id == RS_MSLA_COMPLIANCE) &&
               grain == RS_GRAIN_DAY;
    int64_t lateness = ops ? cfg->lateness_ops_ms : cfg->lateness_sales_ms;

    if ((def->id >= RS_MLEDGER_MOVEMENTS && def->id <= RS_MLEDGER_DQ) || def->id >= RS_M01_MRR) {
        rs_finance_eval_cell(cfg, def, grain, bucket, cell, watermark_ms, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    out->provisional = watermark_ms == INT64_MIN || add_sat(end, lateness) > watermark_ms;
    switch (def->id) {
    case RS_M11_SPEED_TO_LEAD:
    case RS_M11_SPEED_BUSINESS:
        out->count = n[0];
        set_ratio(out, n[2], n[0]);
        out->pct_within = share(n[2], n[0]);
        out->value2 = share(n[0] - n[1], n[0]);
        out->mean = n[1] > 0 ? (double)n[5] / (double)n[1] : 0;
        set_quantiles(out, sk, 1);
        if (!out->is_null && n[1] == 0) {
            out->is_null = true;
            out->null_reason = "insufficient_sample";
        }
        out->value = out->is_null ? 0 : out->p50;
        break;
    case RS_M12_FUNNEL: {
        int pair = funnel_pair_of(dims);
        int64_t window =
            pair >= 0 ? funnel_window(cfg, funnel_pairs[pair][0], funnel_pairs[pair][1]) : 0;

        out->count = n[0];
        set_ratio(out, n[1], n[0]);
        if (!out->is_null && (watermark_ms == INT64_MIN || add_sat(end, window) > watermark_ms)) {
            out->is_null = true;
            out->null_reason = "window_not_mature";
            out->value = 0;
        }
        break;
    }
    case RS_M12_WIN_RATE:
        out->count = n[0] + n[1];
        set_ratio(out, n[0], n[0] + n[1]);
        out->value2 = share(n[2], n[2] + n[3]);
        break;
    case RS_M13_SALES_CYCLE:
        out->count = n[0];
        out->numerator = n[2];
        out->denominator = n[0];
        if (n[0] <= 0) {
            out->is_null = true;
            out->null_reason = "no_base";
        }
        out->mean = share(n[2], n[0]);
        set_quantiles(out, sk, 1);
        out->value = out->is_null ? 0 : out->p50;
        break;
    case RS_M14_HANDOFF:
        out->count = n[0];
        set_ratio(out, n[2], n[1]);
        out->pct_within = share(n[2], n[1]);
        out->value2 = share(n[3], n[1]);
        out->mean = share(n[5], n[3]) / (double)MS_PER_HOUR;
        set_quantiles(out, sk, (double)MS_PER_HOUR);
        out->low_confidence = n[1] < (int64_t)cfg->min_n;
        break;
    case RS_M15_RAMP:
        /* Whether a rep ramped needs the bookings of every partition: rs_metrics_read. */
        out->count = n[0];
        out->is_null = true;
        out->null_reason = n[0] > 0 ? "computed_on_read" : "no_base";
        break;
    case RS_M16_QUOTA:
        out->count = n[1];
        set_ratio(out, n[0], n[2]);
        if (dims.len == 0) {
            out->is_null = true;
            out->null_reason = "computed_on_read";
            out->value = 0;
        }
        break;
    case RS_M20_ONBOARDING: {
        double v;

        out->count = n[0];
        out->numerator = n[1];
        out->denominator = n[0];
        out->pct_within = share(n[3], n[0]);
        out->value2 = share(n[1], n[0]);
        out->mean = share(n[6], n[1]) / (double)MS_PER_DAY;
        if (n[0] <= 0) {
            out->is_null = true;
            out->null_reason = "no_base";
        } else if (!censored_quantile(sk, n[0], 0.5, &v)) {
            out->is_null = true;
            out->null_reason = "insufficient_sample";
        } else {
            out->value = out->p50 = v / (double)MS_PER_DAY;
        }
        if (censored_quantile(sk, n[0], 0.75, &v)) {
            out->p75 = v / (double)MS_PER_DAY;
        }
        if (censored_quantile(sk, n[0], 0.9, &v)) {
            out->p90 = v / (double)MS_PER_DAY;
        }
        break;
    }
    case RS_MSLA_COMPLIANCE: {
        int64_t total = n[0] + n[1] + n[2];

        out->count = total;
        set_ratio(out, n[0], total);
        out->pct_within = share(n[0], total);
        out->value2 = share(n[1] + n[2], total);
        out->mean = share(n[4], n[0] + n[2]);
        set_quantiles(out, sk, 1);
        break;
    }
    case RS_MDQ_DUPLICATES:
        out->count = n[0];
        out->value = (double)n[0];
        out->numerator = n[0];
        break;
    default:
        out->is_null = true;
        out->null_reason = "no_base";
        break;
    }
    if (def->id == RS_MDQ_DUPLICATES) {
        return; /* a count, not a ratio over units */
    }
    if (def->id != RS_M14_HANDOFF && def->id != RS_M16_QUOTA) {
        out->low_confidence = out->count < (int64_t)cfg->min_n;
    }
}

static bool partition_wanted(uint32_t partition, const uint32_t *partitions, size_t n)
{
    if (n == 0) {
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (partitions[i] == partition) {
            return true;
        }
    }
    return false;
}

/* Cells of one (metric, grain, bucket) under dims "<prefix>=...", summed by dims. */
struct collect {
    enum rs_grain grain;
    int64_t bucket;
    struct rs_str prefix; /* dims start with it */
    bool exact;           /* ... or equal it */
    const uint32_t *partitions;
    size_t n_partitions;
    GHashTable *by_dims; /* dims string -> int64_t[RS_AGG_FIELDS] */
};

static int collect_cell(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct collect *c = opaque;
    size_t plen = c->prefix.len;
    int64_t *sum;
    char *dims;

    if (key->grain != c->grain || key->bucket != c->bucket || key->dims.len < plen ||
        (c->exact && key->dims.len != plen) || memcmp(key->dims.ptr, c->prefix.ptr, plen) != 0 ||
        !partition_wanted(key->partition, c->partitions, c->n_partitions)) {
        return 0;
    }
    dims = g_strndup(key->dims.ptr, key->dims.len);
    sum = g_hash_table_lookup(c->by_dims, dims);
    if (sum == NULL) {
        sum = g_new0(int64_t, RS_AGG_FIELDS);
        g_hash_table_insert(c->by_dims, dims, sum);
    } else {
        g_free(dims);
    }
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        sum[i] += cell->n[i];
    }
    return 0;
}

static int collect(struct rs_store *st, uint16_t metric, struct collect *c, struct rs_err *err)
{
    c->by_dims = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return rs_agg_scan(st, metric, collect_cell, c, err);
}

/* The share of reps at >= 100% of quota in (grain, bucket): ramped reps for the value, all
 * reps for value2; reps terminated in the period are left out of both. */
static int read_quota_rate(const struct rs_metrics_config *cfg, struct rs_store *st,
                           const struct rs_metric_def *def, enum rs_grain grain, int64_t bucket,
                           const uint32_t *partitions, size_t n, int64_t watermark_ms,
                           struct rs_metric_value *out, struct rs_err *err)
{
    struct collect c = { grain, bucket, str_of("rep="), false, partitions, n, NULL };
    struct rs_agg_cell empty;
    int64_t hit = 0, ramped = 0, hit_all = 0, all = 0;
    GHashTableIter it;
    gpointer k, v;
    int rc = collect(st, RS_M16_QUOTA, &c, err);

    rs_agg_cell_init(&empty);
    rs_metric_eval(cfg, def, RS_STR_NULL, grain, bucket, &empty, watermark_ms, out);
    rs_agg_cell_release(&empty);
    g_hash_table_iter_init(&it, c.by_dims);
    while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
        const int64_t *s = v;
        bool at_quota = s[0] >= s[2];

        if (s[5] <= 0 || s[2] <= 0 || s[4] > 0) {
            continue; /* no quota in the period, or left during it */
        }
        all++;
        hit_all += at_quota;
        if (s[3] == s[5]) {
            ramped++;
            hit += at_quota;
        }
    }
    g_hash_table_destroy(c.by_dims);
    if (rc != 0) {
        return rc;
    }
    out->null_reason = NULL;
    out->is_null = false;
    out->count = all;
    set_ratio(out, hit, ramped);
    out->value2 = share(hit_all, all);
    out->low_confidence = ramped < (int64_t)cfg->min_n;
    return 0;
}

enum ramp_state { RAMP_RAMPED, RAMP_CENSORED, RAMP_FAILED };

struct ramp {
    enum ramp_state state;
    double months; /* ramped: the ramp, to one decimal; otherwise the tenure */
};

/* Ramp of one rep: the first month from the start on whose credited bookings (every
 * partition) reach the full quota. */
static int ramp_eval(const struct rs_metrics_config *cfg, struct rs_store *st, struct rs_str rep,
                     int64_t start, int64_t term, const uint32_t *partitions, size_t n,
                     int64_t watermark_ms, struct ramp *out, struct rs_err *err)
{
    const struct rs_zone *zone = cfg->zone;
    int64_t until = term > 0 && term < watermark_ms ? term : watermark_ms;
    int64_t b = rs_bucket_start(zone, RS_GRAIN_MONTH, start);
    struct rs_agg_cell cell;
    int rc = 0;

    rs_agg_cell_init(&cell);
    for (int i = 0; i < RAMP_MONTHS_MAX && b <= until && rc == 0; i++) {
        struct rs_agg_key key = { 0, RS_M16_QUOTA, RS_GRAIN_MONTH, b, rep };
        int64_t end = rs_bucket_end(zone, RS_GRAIN_MONTH, b);

        rc = rs_agg_read(st, &key, partitions, n, &cell, err);
        if (rc == 0 && cell.n[6] > 0 && cell.n[0] >= cell.n[6]) {
            out->state = RAMP_RAMPED;
            out->months = round(months_between(zone, start, end) * 10) / 10;
            rs_agg_cell_release(&cell);
            return 0;
        }
        b = end;
    }
    rs_agg_cell_release(&cell);
    out->months = round(months_between(zone, start, until) * 10) / 10;
    out->state =
        term > 0 && term <= watermark_ms && months_between(zone, start, term) < RAMP_FAIL_MONTHS
            ? RAMP_FAILED
            : RAMP_CENSORED;
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Type 7 quantile of n_total reps whose first n_obs (sorted) ramped; the others rank above. */
static bool censored_quantile_array(const double *v, size_t n_obs, size_t n_total, double q,
                                    double *out)
{
    double h = (double)(n_total - 1) * q;
    size_t lo = (size_t)floor(h), hi = (size_t)ceil(h);

    if (n_total == 0 || hi >= n_obs) {
        return false;
    }
    *out = v[lo] + (h - (double)lo) * (v[hi] - v[lo]);
    return true;
}

static int read_ramp(const struct rs_metrics_config *cfg, struct rs_store *st,
                     const struct rs_metric_def *def, struct rs_str dims, enum rs_grain grain,
                     int64_t bucket, const uint32_t *partitions, size_t n, int64_t watermark_ms,
                     struct rs_metric_value *out, struct rs_err *err)
{
    struct collect c = { grain,        bucket,     dims.len > 0 ? dims : str_of("rep="),
                         dims.len > 0, partitions, n,
                         NULL };
    struct rs_agg_cell empty;
    GHashTableIter it;
    gpointer k, v;
    double *months = NULL;
    size_t n_reps, n_ramped = 0, n_failed = 0;
    double sum_months = 0;
    int rc;

    rs_agg_cell_init(&empty);
    rs_metric_eval(cfg, def, dims, grain, bucket, &empty, watermark_ms, out);
    rs_agg_cell_release(&empty);
    out->is_null = false;
    out->null_reason = NULL;
    rc = collect(st, RS_M15_RAMP, &c, err);
    n_reps = g_hash_table_size(c.by_dims);
    months = rs_xcalloc(n_reps + 1, sizeof(*months));
    g_hash_table_iter_init(&it, c.by_dims);
    while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
        const int64_t *s = v;
        struct ramp r;

        if (s[0] <= 0) {
            continue;
        }
        /* One partition holds a rep's cell; dividing keeps a replayed duplicate exact. */
        rc = ramp_eval(cfg, st, str_of(k), s[1] / s[0], s[2] / s[0], partitions, n, watermark_ms,
                       &r, err);
        if (rc == 0 && r.state == RAMP_RAMPED) {
            months[n_ramped++] = r.months;
            sum_months += r.months;
        } else if (rc == 0) {
            n_failed += r.state == RAMP_FAILED;
            if (dims.len > 0) {
                out->value2 = r.months; /* tenure */
                out->null_reason = r.state == RAMP_FAILED ? "failed_to_ramp" : "not_yet_ramped";
            }
        }
    }
    g_hash_table_destroy(c.by_dims);
    if (rc == 0) {
        double q;

        qsort(months, n_ramped, sizeof(*months), cmp_double);
        out->count = (int64_t)n_reps;
        out->numerator = (int64_t)n_ramped;
        out->denominator = (int64_t)n_reps;
        out->pct_within = share((int64_t)n_ramped, (int64_t)n_reps);
        if (dims.len == 0) {
            out->value2 = share((int64_t)n_failed, (int64_t)n_reps);
        }
        out->mean = n_ramped > 0 ? sum_months / (double)n_ramped : 0;
        if (n_reps == 0) {
            out->is_null = true;
            out->null_reason = "no_base";
        } else if (!censored_quantile_array(months, n_ramped, n_reps, 0.5, &q)) {
            out->is_null = true;
            if (out->null_reason == NULL) {
                out->null_reason = "insufficient_sample";
            }
        } else {
            out->value = out->p50 = q;
            out->null_reason = NULL;
        }
        if (censored_quantile_array(months, n_ramped, n_reps, 0.75, &q)) {
            out->p75 = q;
        }
        if (censored_quantile_array(months, n_ramped, n_reps, 0.9, &q)) {
            out->p90 = q;
        }
        out->low_confidence = (int64_t)n_reps < (int64_t)cfg->min_n && dims.len == 0;
    }
    free(months);
    return rc;
}

int rs_metrics_read(const struct rs_metrics_config *cfg, struct rs_store *st,
                    const struct rs_metric_def *def, struct rs_str dims, enum rs_grain grain,
                    int64_t bucket, const uint32_t *partitions, size_t n, int64_t watermark_ms,
                    struct rs_metric_value *out, struct rs_err *err)
{
    struct rs_agg_key key = { 0, def->id, grain, bucket, dims };
    struct rs_agg_cell cell;
    int rc;

    if (def->id >= RS_M01_MRR) {
        if (cfg->finance == NULL) {
            return rs_err_set(err, RS_EINVAL, "metric '%s': no revenue metric options", def->name);
        }
        return rs_finance_read(cfg->finance, st, def, dims, grain, bucket, partitions, n,
                               watermark_ms, out, err);
    }
    if (def->id == RS_M16_QUOTA && dims.len == 0) {
        return read_quota_rate(cfg, st, def, grain, bucket, partitions, n, watermark_ms, out, err);
    }
    if (def->id == RS_M15_RAMP) {
        return read_ramp(cfg, st, def, dims, grain, bucket, partitions, n, watermark_ms, out, err);
    }
    rs_agg_cell_init(&cell);
    rc = rs_agg_read(st, &key, partitions, n, &cell, err);
    if (rc == 0) {
        rs_metric_eval(cfg, def, dims, grain, bucket, &cell, watermark_ms, out);
    }
    rs_agg_cell_release(&cell);
    return rc;
}

/* ---- the metrics topic ---------------------------------------------------------------- */

static bool has_durations(uint16_t id)
{
    return id == RS_M11_SPEED_TO_LEAD || id == RS_M11_SPEED_BUSINESS || id == RS_M13_SALES_CYCLE ||
           id == RS_M14_HANDOFF || id == RS_M20_ONBOARDING || id == RS_MSLA_COMPLIANCE;
}

static void write_cstr(struct rs_buf *out, const char *s)
{
    rs_event_write_str(out, s, strlen(s));
}

/* Split canonical dims at unescaped ','; unescape each part into buf. Returns the pairs. */
static size_t dims_split(struct rs_str dims, char *buf, struct rs_str (*pairs)[2], size_t max)
{
    size_t n = 0, at = 0;
    size_t i = 0;

    while (i < dims.len && n < max) {
        int part = 0;
        size_t begin = at;

        pairs[n][0] = pairs[n][1] = (struct rs_str){ buf + at, 0 };
        for (; i < dims.len && dims.ptr[i] != ','; i++) {
            char ch = dims.ptr[i];

            if (ch == '\\' && i + 1 < dims.len) {
                ch = dims.ptr[++i];
            } else if (ch == '=' && part == 0) {
                pairs[n][0].len = at - begin;
                part = 1;
                begin = at;
                pairs[n][1].ptr = buf + at;
                continue;
            }
            buf[at++] = ch;
        }
        pairs[n][part].len = at - begin;
        n++;
        i++; /* the ',' */
    }
    return n;
}

void rs_metric_update_encode(const struct rs_metrics_config *cfg, const struct rs_agg_key *key,
                             const struct rs_agg_cell *cell, int64_t watermark_ms,
                             struct rs_buf *key_out, struct rs_buf *out)
{
    static const struct rs_metric_def unknown = { 0, "unknown", "", "", ALL_GRAINS, false };
    const struct rs_metric_def *def = rs_metric_by_id(key->metric);
    char label[32], name[16], text[RS_AGG_DIMS_MAX + 128];
    char dbuf[RS_AGG_DIMS_MAX];
    struct rs_str pairs[8][2];
    struct rs_metric_value v;
    const char *grain = rs_grain_name(key->grain);
    struct rs_str dims = { key->dims.ptr,
                           key->dims.len < sizeof(dbuf) ? key->dims.len : sizeof(dbuf) };
    size_t n_pairs = dims_split(dims, dbuf, pairs, 8);
    bool durations;
    int len;

    if (def == NULL) {
        (void)snprintf(name, sizeof(name), "m%u", (unsigned)key->metric);
        def = &unknown;
    }
    durations = has_durations(def->id);
    if (rs_bucket_label(cfg->zone, key->grain, key->bucket, label, sizeof(label)) == 0) {
        label[0] = '\0';
    }
    rs_metric_eval(cfg, def, key->dims, key->grain, key->bucket, cell, watermark_ms, &v);
    len = snprintf(text, sizeof(text), "%s|%.*s|%s|%s|p%u", def == &unknown ? name : def->name,
                   (int)key->dims.len, key->dims.ptr, grain != NULL ? grain : "", label,
                   (unsigned)key->partition);
    if (len > 0) {
        rs_buf_append(key_out, text, (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1);
    }
    /* Keep in sync with schemas/metric.json. */
    rs_event_write_map(out, durations ? 22 : 18);
    write_cstr(out, "metric");
    write_cstr(out, def == &unknown ? name : def->name);
    write_cstr(out, "unit");
    write_cstr(out, def->unit);
    write_cstr(out, "dims");
    rs_event_write_map(out, (uint32_t)n_pairs);
    for (size_t i = 0; i < n_pairs; i++) {
        rs_event_write_str(out, pairs[i][0].ptr, pairs[i][0].len);
        rs_event_write_str(out, pairs[i][1].ptr, pairs[i][1].len);
    }
    write_cstr(out, "grain");
    write_cstr(out, grain != NULL ? grain : "");
    write_cstr(out, "bucket");
    write_cstr(out, label);
    write_cstr(out, "bucket_start");
    rs_event_write_int(out, key->bucket);
    write_cstr(out, "partition");
    rs_event_write_int(out, key->partition);
    write_cstr(out, "value");
    if (v.is_null) {
        rs_event_write_nil(out);
    } else {
        rs_event_write_double(out, v.value);
    }
    write_cstr(out, "value2");
    rs_event_write_double(out, v.value2);
    write_cstr(out, "null_reason");
    if (v.is_null && v.null_reason != NULL) {
        write_cstr(out, v.null_reason);
    } else {
        rs_event_write_nil(out);
    }
    write_cstr(out, "numerator");
    rs_event_write_int(out, v.numerator);
    write_cstr(out, "denominator");
    rs_event_write_int(out, v.denominator);
    write_cstr(out, "count");
    rs_event_write_int(out, v.count);
    write_cstr(out, "pct_within");
    rs_event_write_double(out, v.pct_within);
    if (durations) {
        write_cstr(out, "mean");
        rs_event_write_double(out, v.mean);
        write_cstr(out, "p50");
        rs_event_write_double(out, v.p50);
        write_cstr(out, "p75");
        rs_event_write_double(out, v.p75);
        write_cstr(out, "p90");
        rs_event_write_double(out, v.p90);
    }
    write_cstr(out, "status");
    write_cstr(out, v.provisional ? "provisional" : "final");
    write_cstr(out, "low_confidence");
    rs_event_write_bool(out, v.low_confidence);
    write_cstr(out, "inputs");
    rs_event_write_array(out, RS_AGG_FIELDS);
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        rs_event_write_int(out, cell->n[i]);
    }
    write_cstr(out, "watermark");
    if (watermark_ms == INT64_MIN) {
        rs_event_write_nil(out);
    } else {
        rs_event_write_int(out, watermark_ms);
    }
}
