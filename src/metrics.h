/*
 * metrics.h - the funnel, pipeline and handoff metrics (METRICS.md M11-M16, M20) on top of
 * the aggregate machinery (agg.h), and their read side.
 *
 * Write side: rs_metrics_apply() keeps the per-entity state the metrics need (a lead's
 * funnel record, an opportunity, a rep, an onboarding account) in the `entities` database and
 * turns each event into signed facts on cells (rs_agg_add): a fact that an event restates (a
 * late, earlier touch; a reopened deal) is retracted and the corrected one added, so every
 * cell stays the sum of the facts standing. rs_metrics_sla_outcome() takes settled SLA
 * instances (slarule.h) for M14 and the per-rule compliance metric.
 *
 * Read side: rs_metric_eval() turns a cell (summed over partitions) into the published value
 * with its inputs, null reason and provisional/final status; rs_metrics_read() does that for
 * one (metric, dims, grain, bucket) from the store; the quota-attainment rate, which is not a
 * sum of per-partition parts, is computed on read from the per-rep cells.
 *
 * Cell layouts (n[0..7]) are documented per metric in metrics.c and README.
 * Threads: the loop thread (write side); read side in a read snapshot, any thread.
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "agg.h"
#include "calendar.h"
#include "err.h"
#include "event.h"
#include "slarule.h"
#include "store.h"

/* Metric ids: stored in aggregate keys, never reuse. */
enum rs_metric_id {
    RS_M11_SPEED_TO_LEAD = 11,   /* wall clock; dims tier */
    RS_M11_SPEED_BUSINESS = 111, /* business time; dims tier */
    RS_M12_FUNNEL = 12,          /* cohort conversion; dims from, to */
    RS_M12_WIN_RATE = 121,       /* by close bucket; dims none */
    RS_M13_SALES_CYCLE = 13,     /* by close bucket; dims outcome */
    RS_M14_HANDOFF = 14,         /* by close bucket */
    RS_M15_RAMP = 15,            /* by rep start-month cohort; and dims rep */
    RS_M16_QUOTA = 16,           /* by month; dims rep or team */
    RS_M20_ONBOARDING = 20,      /* by start-month cohort; dims milestone */
    RS_MSLA_COMPLIANCE = 50,     /* by start bucket; dims rule, and rule+owner */
    RS_MDQ_DUPLICATES = 60,      /* dq.duplicate_events (METRICS.md §1.6.1), by event time */
};

struct rs_finance_config; /* finance.h */

struct rs_metrics_config {
    const struct rs_zone *zone; /* reporting time zone (borrowed) */
    /* The revenue metrics' options (borrowed); NULL: rs_metrics_read() refuses them. */
    const struct rs_finance_config *finance;
    const struct rs_calendar *sales_hours; /* business clock of M11 (borrowed) */
    int64_t lead_sla_ms[RS_TIER__COUNT];   /* M11 "within SLA" (same as SLA-01) */
    int64_t funnel_window_ms[4];           /* lead->MQL, MQL->SQL, SQL->Opp, Opp->Won */
    int64_t reopen_same_opportunity_ms;    /* 30 d */
    int64_t handoff_threshold_ms;          /* M14 on-time (SLA-04's) */
    bool onboarding_start_at_won;          /* M20 start: won close (true) or handoff.completed */
    int64_t lateness_ops_ms;               /* allowed lateness, daily operational (2 d) */
    int64_t lateness_sales_ms;             /* monthly sales metrics (7 d) */
    uint32_t min_n;                        /* low_confidence below (10) */
};

void rs_metrics_config_defaults(struct rs_metrics_config *cfg);

/* Live counters (data-quality signals), not state. */
struct rs_metrics_counters {
    uint64_t negative_durations; /* dq.negative_duration */
    uint64_t facts;              /* facts applied (either sign) */
    uint64_t restated;           /* facts retracted and replaced */
};

struct rs_metrics {
    struct rs_metrics_config cfg;
    struct rs_agg *agg; /* borrowed: the batch cache, flushed by the caller */
    /* Borrowed: the store rs_metrics_sla_outcome() writes in (the callback has no store
     * argument). Set it once the store is open; rs_metrics_apply() also sets it. */
    struct rs_store *st;
    struct rs_metrics_counters counters;
};

void rs_metrics_init(struct rs_metrics *m, const struct rs_metrics_config *cfg, struct rs_agg *agg);

/* Apply one event of `partition` inside the caller's batch. Returns 0 or a negative code. */
int rs_metrics_apply(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                     const struct rs_event *ev, struct rs_err *err);

/* The rs_sla_outcome_cb for slarule.c and sla.c (opaque = struct rs_metrics *). */
int rs_metrics_sla_outcome(void *opaque, uint32_t partition, const struct rs_sla_outcome *o,
                           int sign, struct rs_err *err);

/*
 * Count one duplicate event (an id seen within dedup.window, not applied) in the
 * duplicate_events metric of its event time. Inside the caller's batch.
 */
int rs_metrics_duplicate(struct rs_metrics *m, struct rs_store *st, uint32_t partition,
                         const struct rs_event *ev, struct rs_err *err);

/* The metrics by name, for the API, the topic and inspect. */
struct rs_metric_def {
    uint16_t id;
    const char *name; /* "speed_to_lead", "funnel_conversion", ... */
    const char *unit; /* "ms", "ratio", "days", "minor" */
    const char *dims; /* allowed dimension keys, comma separated ("tier") */
    unsigned grains;  /* bit per enum rs_grain */
    bool cohort;      /* buckets are cohorts with a maturity window */
};

const struct rs_metric_def *rs_metric_by_name(const char *name, size_t len);
const struct rs_metric_def *rs_metric_by_id(uint16_t id);
/* Every definition, for listings; *n gets the count. */
const struct rs_metric_def *rs_metric_defs(size_t *n);

#define RS_METRIC_DETAIL_MAX 24

/* A named input of a value computed from several cells (the finance metrics). */
struct rs_metric_detail {
    const char *name; /* static: "mrr_start", "new_business", "spend_prior_quarter", ... */
    double value;
    bool is_null;
};

/* A metric's value as published and served. */
struct rs_metric_value {
    bool is_null;
    /* "no_base", "insufficient_sample", "window_not_mature"; M15 "not_yet_ramped",
     * "failed_to_ramp"; "computed_on_read" for a stored part that only the read side can
     * evaluate (M15 cells, M16 rate). */
    const char *null_reason;
    double value; /* the headline (a rate in [0,1], a P50, ...) */
    int64_t numerator, denominator, count;
    double mean, p50, p75, p90; /* durations in the metric's unit; 0 when not applicable */
    double pct_within;          /* M11 % within SLA, M14 on-time, M20 % within 30 d, ... */
    /* The second headline: M11 % never touched, M12 win rate by value, M14 completion any
     * time, M15 tenure of an unramped rep / the cohort's failed-to-ramp share, M16 rate
     * over all reps (value: ramped reps only), M20 % reached, SLA % breached. */
    double value2;
    bool provisional;    /* bucket end + allowed lateness not yet passed */
    bool low_confidence; /* fewer than min_n units */
    size_t n_detail;     /* finance metrics: the inputs, in a fixed order per metric */
    struct rs_metric_detail detail[RS_METRIC_DETAIL_MAX];
    /* Finance flags (METRICS.md): M06 churn_floored, M08 > 60 months, M09 quarter-to-date,
     * M10 margin_source=manual. */
    bool churn_floored, flagged_long, qtd;
};

/*
 * Evaluate `cell` of metric def at (grain, bucket) as of watermark_ms (provisional and
 * maturity are decided against it).
 */
void rs_metric_eval(const struct rs_metrics_config *cfg, const struct rs_metric_def *def,
                    struct rs_str dims, enum rs_grain grain, int64_t bucket,
                    const struct rs_agg_cell *cell, int64_t watermark_ms,
                    struct rs_metric_value *out);

/*
 * Read and evaluate one (metric, dims, grain, bucket) summed over partitions[0..n) (n == 0:
 * all) in the open snapshot or batch. M16 with dims "" gives the attainment rate of ramped
 * reps (the share at >= 100%), computed from the per-rep cells. The finance metrics
 * (finance.h, ids >= 200) are routed to rs_finance_read() with cfg->finance.
 */
int rs_metrics_read(const struct rs_metrics_config *cfg, struct rs_store *st,
                    const struct rs_metric_def *def, struct rs_str dims, enum rs_grain grain,
                    int64_t bucket, const uint32_t *partitions, size_t n, int64_t watermark_ms,
                    struct rs_metric_value *out, struct rs_err *err);

/*
 * The metrics-topic message of one changed cell (schemas/metric.json): key
 * "metric|dims|grain|bucket-label|p<partition>" into *key, msgpack value appended to out.
 */
void rs_metric_update_encode(const struct rs_metrics_config *cfg, const struct rs_agg_key *key,
                             const struct rs_agg_cell *cell, int64_t watermark_ms,
                             struct rs_buf *key_out, struct rs_buf *out);

#endif
