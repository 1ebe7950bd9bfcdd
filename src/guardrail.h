/*
 * guardrail.h - KPI guardrail alerts (METRICS.md §6): a metric's value of one bucket judged
 * against a threshold, published on the alerts topic like the SLA alerts.
 *
 * The guardrails of the finance and funnel metrics: magic number < 0.5, magic number < 0.75
 * two quarters in a row, CAC payback > 24 months, LTV:CAC < 3, NRR T12 < 100%, GRR T12 < 85%,
 * speed to lead % within SLA < 80% for the day, handoff on-time < 90% (M14). Each is on/off
 * and has its threshold in configuration (guardrail.<name>.enabled / .threshold). The DQ,
 * forecast-bias and health guardrails of §6 wait for their metrics (M18, M22, M19).
 *
 * When ("at bucket finalization and QTD", made precise): rs_guardrails_eval() runs after a
 * batch's aggregates are flushed, at most once per guardrail.interval of event time (the
 * watermark: the lowest of the assigned partitions'). Each run reads, per guardrail, the
 * bucket holding the watermark (the period to date: QTD for a quarter) and the one before it
 * (still provisional until its lateness passes, then final), and acts only when the value or
 * its provisional/final status changed since the last run. Per (guardrail, bucket):
 * - a breach opens an episode (attempt_n 1, 2, ...) and publishes "L1_breach" (sla.breached)
 *   while the value is provisional; once the bucket is final and still breaching,
 *   "L1_breach_final" confirms it (a breach first seen final publishes only the latter);
 * - a value back within the threshold while its bucket is still running publishes
 *   "resolved" (sla.recovered, status met): the period to date recovered;
 * - a value back within the threshold after the bucket ended is a restatement (late or
 *   corrected data): every alert the episode published is retracted (sla.retracted with
 *   retracts_id), exactly as a late stop event retracts an SLA level;
 * - a null value (no base) judges nothing and changes no state.
 * Alert ids are rs_sla_alert_id(tenant "", "KPI-<name>", "<name>|<bucket label>", attempt,
 * level), so each (guardrail, bucket, episode, level) alerts once. Every alert carries a `kpi`
 * map (metric, grain, bucket, value, threshold, comparison, provisional, qtd; struct
 * rs_alert_kpi in event.h).
 *
 * Determinism: the values read depend on where batches end, so a run that flaps around a
 * threshold can give a replay other episodes than the live run; the first breach of a bucket
 * and a final confirmation have the same ids either way.
 *
 * State: one record per (guardrail, bucket) in `entities`, kind 0x40, under partition
 * RS_GUARDRAIL_STORE_WIDE (the metrics are judged summed over partitions). Metrics are read
 * through a reader (rs_guardrail_read_fn) so that this module does not depend on how they are
 * computed (finance.h, metrics.h) and tests can feed values.
 *
 * Threads: the loop thread, inside the caller's store batch.
 */
#ifndef RS_GUARDRAIL_H
#define RS_GUARDRAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "err.h"
#include "event.h"
#include "metrics.h"
#include "sla.h"
#include "store.h"

#define RS_GUARDRAIL_KIND       0x40       /* entities kind byte; 0x40-0x4f are guardrail.c's */
#define RS_GUARDRAIL_STORE_WIDE UINT32_MAX /* partition of the records: not one partition's */

/* Keep in sync with the table in guardrail.c and the guardrail.* keys of config.c. */
enum rs_guardrail_id {
    RS_GUARD_MAGIC_NUMBER,    /* "magic_number": M09 < 0.5 (quarter) */
    RS_GUARD_MAGIC_NUMBER_2Q, /* "magic_number_2q": M09 < 0.75 this and the previous quarter */
    RS_GUARD_CAC_PAYBACK,     /* "cac_payback": M08 > 24 months (quarter) */
    RS_GUARD_LTV_CAC,         /* "ltv_cac": M07 value2 < 3 (quarter) */
    RS_GUARD_NRR_T12,         /* "nrr_t12": M05 T12 NRR < 1.00 (month) */
    RS_GUARD_GRR_T12,         /* "grr_t12": M05 T12 GRR (value2) < 0.85 (month) */
    RS_GUARD_SPEED_TO_LEAD,   /* "speed_to_lead": M11 % within SLA < 0.80 (day) */
    RS_GUARD_HANDOFF_ON_TIME, /* "handoff_on_time": M14 on-time rate < 0.90 (month) */
    RS_GUARD__COUNT
};

/*
 * Read one metric's value of (grain, bucket start) summed over the engine's partitions.
 * Returns 0, RS_ENOTFOUND or RS_EINVAL for a metric or grain the reader does not have (the
 * guardrail is skipped), or another negative code (the batch aborts).
 */
typedef int rs_guardrail_read_fn(void *opaque, const char *metric, enum rs_grain grain,
                                 int64_t bucket, struct rs_metric_value *out, struct rs_err *err);

struct rs_guardrail_config {
    const struct rs_zone *zone; /* reporting zone of the buckets (borrowed) */
    bool enabled[RS_GUARD__COUNT];
    double threshold[RS_GUARD__COUNT]; /* in the metric's unit: ratios as fractions */
    int64_t interval_ms;               /* event time between runs; 0: every batch */
};

/* The §6 defaults, every guardrail on, interval 1 min; zone left NULL (UTC). */
void rs_guardrail_config_defaults(struct rs_guardrail_config *cfg);

/* "magic_number", ...; NULL outside the enum. */
const char *rs_guardrail_name(enum rs_guardrail_id id);

struct rs_guardrail_counters {
    uint64_t runs;
    uint64_t evaluations; /* (guardrail, bucket) values that changed and were judged */
    uint64_t alerts[RS_ALERT__COUNT];
};

struct rs_guardrails {
    struct rs_guardrail_config cfg;
    rs_sla_emit_cb *emit;
    void *opaque;
    int64_t last_run_ms; /* the watermark of the last run; INT64_MIN: none yet */
    struct rs_guardrail_counters counters;
};

void rs_guardrails_init(struct rs_guardrails *g, const struct rs_guardrail_config *cfg,
                        rs_sla_emit_cb *emit, void *opaque);

/*
 * Judge every enabled guardrail at watermark_ms (see the header comment), reading through
 * read(read_opaque, ...) and publishing through the emit callback, inside the caller's batch.
 * Skipped (returns 0) when the watermark is unknown (INT64_MIN) or less than interval_ms past
 * the last run. Returns the number of alerts published, or a negative code (store, reader,
 * emit callback's).
 */
int rs_guardrails_eval(struct rs_guardrails *g, struct rs_store *st, int64_t watermark_ms,
                       rs_guardrail_read_fn *read, void *read_opaque, struct rs_err *err);

#endif
