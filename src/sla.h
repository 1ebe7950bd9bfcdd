/*
 * sla.h - SLA-01 speed to lead (METRICS.md SLA-01, §5.1, §5.2) on a 24x7 clock.
 *
 * `lead.created` opens an SLA instance and arms its first level; the first human outbound
 * `lead.touched` meets it; `lead.disqualified`, `lead.converted` and `lead.merged` cancel it.
 * The ladder: L0 warning at warning_pct of the threshold, L1 breach at 100%, L2 escalation at
 * escalate_pct. Each level is one timer; firing it publishes the level's alert and arms the
 * next. A touch after a notified level publishes `sla.recovered` (level "resolved") with the
 * real response time: status breached_then_met after a breach, met after only the warning. A
 * touch whose time is before a level that already fired (it arrived late, after the wall
 * clock fired the level) retracts that level with `sla.retracted`; so does a touch earlier
 * than the one that already stopped the clock.
 *
 * Determinism: every alert is a function of the events and the watermark only, and its id is
 * sha256("tenant|sla_type|lead|attempt|level") (plus "|retracted" for a retraction), so a
 * replay publishes the same ids and consumers drop redeliveries. A stop event later than an
 * unfired level publishes that level itself, so whether the watermark reached a level before
 * or after the touch was applied changes no alert id.
 *
 * Out of order: a touch or cancel for a lead not yet created is kept on a pending record and
 * applied when `lead.created` arrives. Merge: the survivor's clock starts at the earliest
 * created time of the two and takes the earliest touch (METRICS.md §1.5).
 *
 * Not here: business-hours calendars (24x7 only for now), routing SLAs, other rules.
 * Threads: the loop thread, inside the caller's store batch.
 */
#ifndef RS_SLA_H
#define RS_SLA_H

#include <stdint.h>

#include "err.h"
#include "event.h"
#include "store.h"

#define RS_SLA_RULE_SPEED_TO_LEAD 1 /* timer rule id; stored in timer keys, never reuse */
#define RS_SLA_LEVELS             3 /* L0 warning, L1 breach, L2 escalate */

struct rs_sla_config {
    int64_t threshold_ms[RS_TIER__COUNT];
    uint32_t warning_pct;  /* L0, percent of the threshold (80) */
    uint32_t escalate_pct; /* L2, percent of the threshold (200) */
};

/* Receives each alert, inside the batch; returns 0 or a negative code that aborts the batch. */
typedef int rs_sla_emit_cb(void *opaque, const struct rs_alert *alert, struct rs_err *err);

/* Live counters since start; not state (the state store holds the truth). */
struct rs_sla_counters {
    uint64_t leads;
    uint64_t duplicate_leads;    /* lead.created for a lead already known: ignored */
    uint64_t touches;            /* human outbound touches that stopped a clock */
    uint64_t negative_durations; /* touch before creation: response counted as 0 */
    uint64_t cancelled;
    uint64_t alerts[RS_ALERT__COUNT];
};

struct rs_sla {
    struct rs_sla_config cfg;
    rs_sla_emit_cb *emit;
    void *opaque;
    struct rs_sla_counters counters;
};

void rs_sla_init(struct rs_sla *sla, const struct rs_sla_config *cfg, rs_sla_emit_cb *emit,
                 void *opaque);

/*
 * Apply one event of `partition`. *next_deadline_ms is lowered to any deadline armed.
 * Returns 0 or a negative code (RS_ESTORE, RS_ESTORE_FULL, the emit callback's).
 */
int rs_sla_apply(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                 const struct rs_event *ev, int64_t *next_deadline_ms, struct rs_err *err);

/*
 * Fire every level of `partition` due at watermark_ms. Sets *next_deadline_ms to the
 * earliest deadline left. Returns the number of timers fired or a negative code.
 */
int rs_sla_fire(struct rs_sla *sla, struct rs_store *st, uint32_t partition, int64_t watermark_ms,
                int64_t *next_deadline_ms, struct rs_err *err);

/*
 * One due SLA-01 timer, already taken from the store (an rs_timer_fire_cb's arguments), fired
 * as rs_sla_fire()'s pass would: for a caller that runs one pass over every rule's timers
 * (app.c). The deadlines of the levels it arms lower *next_deadline_ms. Returns 0 or a
 * negative code.
 */
int rs_sla_fire_timer(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                      int64_t watermark_ms, struct rs_bytes entity, int64_t deadline_ms,
                      struct rs_bytes payload, int64_t *next_deadline_ms, struct rs_err *err);

/*
 * The deterministic id of an alert: hex sha256 of "tenant|sla_type|entity|attempt|level"
 * followed by `suffix` ("" or "|retracted"), NUL-terminated in out. An unset tenant hashes as
 * "". Shared by every SLA rule (sla.c, slarule.c), so ids never depend on which module fired.
 */
void rs_sla_alert_id(char out[65], struct rs_str tenant, const char *sla_type, struct rs_str entity,
                     uint32_t attempt, const char *level, const char *suffix);

/* What the state store says about every lead, all partitions together. */
struct rs_sla_stats {
    uint64_t leads;    /* created leads */
    uint64_t pending;  /* records for leads whose lead.created has not arrived */
    uint64_t running;  /* open, not yet breached */
    uint64_t breached; /* open and breached */
    uint64_t met;
    uint64_t breached_then_met;
    uint64_t cancelled;
    uint64_t responded;     /* leads with a response time */
    double p50_response_ms; /* type 7 percentiles over responded leads; 0 when none */
    double p90_response_ms;
};

/* Scan the entities database in a read snapshot (not inside a batch). */
int rs_sla_stats(struct rs_store *st, struct rs_sla_stats *stats, struct rs_err *err);

/*
 * Linear-interpolation percentile (Hyndman-Fan type 7) of sorted values[0..n), q in [0,1],
 * rounded to 1/1000 of the values' unit. 0 for n == 0.
 */
double rs_sla_percentile(const int64_t *sorted, size_t n, double q);

#endif
