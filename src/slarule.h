/*
 * slarule.h - the shared SLA instance machine and the SLA declarations it runs:
 * SLA-02 MQL acceptance, SLA-03 stalled opportunity, SLA-04 sales-to-CS handoff,
 * SLA-05 onboarding / first value, SLA-06 renewal coverage, SLA-07 data freshness
 * (METRICS.md §5).
 *
 * An SLA instance (rule, entity, attempt) has a start, a threshold on its rule's clock (24x7,
 * a business calendar, or calendar time net of pauses), a status (running, paused, met,
 * breached, breached_then_met, cancelled) and a ladder of levels, each a percentage of the
 * threshold (§5.2: L0 warning 80%, L1 breach 100%, L2 escalate 200%, L3 critical at
 * max(10 x T, 24 business hours); SLA-05 warns at 50% and 80%). One timer per instance
 * (timer.c) holds the next level's deadline; firing publishes that level's alert and arms
 * the next. A stop event settles every level against its own time exactly as SLA-01 does
 * (sla.h): levels that happened in event time but had not fired are published, levels that
 * fired but did not happen are retracted, and every notified level gets its resolution. A
 * pause cancels the timer and a resume re-arms it with the deadline pushed by the paused
 * time (on a business clock, by the paused business time).
 *
 * Each rule is a declaration (struct rs_sla_rule): its start, stop, pause, resume and cancel
 * conditions are a table of (event type, predicate) in slarule.c; thresholds, calendars and
 * ladders come from configuration. Alert ids are sha256(tenant|sla_type|entity|attempt|level)
 * as for SLA-01, so replays publish the same ids.
 *
 * Every settled instance is also reported to an outcome callback (met, breached_then_met,
 * breached at L1, cancelled; later restated with sign -1 then +1), which the metrics use
 * (M14 handoff on-time rate, SLA compliance per rule).
 *
 * State: one record per (partition, rule, entity) in the `entities` database, kind 0x10 + rule
 * id, plus this module's opportunity facts (deal type, owner, stage) under kind 0x1f; kinds
 * 0x10-0x1f belong to slarule.c. One timer per instance, payload (level, attempt): a timer of
 * an earlier attempt, of a paused instance or of a level already fired is stale and ignored.
 *
 * Decisions the catalogue leaves open:
 * - Owners: SLA-02 from lead.assigned, SLA-03 and SLA-04 the opportunity's (the close event's
 *   owner_id first for SLA-04), SLA-05 the handoff's CSM; SLA-07 has none.
 * - "1 business day" (SLA-02) and "2 business days" (SLA-04) are thresholds in open time of
 *   the rule's calendar: 9 h and 18 h, the working day of the default mon-fri 09:00-18:00.
 * - SLA-02: lead.recycled or lead.reopened cancels an open instance (neither accepted nor
 *   rejected) and lets the next MQL open attempt + 1; without them a repeated MQL is ignored.
 * - SLA-03: every entered stage restarts the clock (the previous stage settles at the change);
 *   thresholds per stage come from configuration (`dim_value`), the default otherwise. The
 *   "2 x P50 historical time-in-stage, recomputed monthly" option is not implemented.
 * - SLA-04: the deal type comes from the close event, else from opportunity.created; a deal of
 *   unknown type is not started. A handoff without a CSM or with its checklist open does not
 *   stop the clock. A completion before the close is met in 0; a reopened deal withdraws the
 *   outcome already reported (M14: a reversed win leaves the denominator).
 * - SLA-05: pause and resume apply from their own time, in arrival order; a stop settles
 *   every level against the deadlines net of all pauses.
 * - SLA-07: the entity is the event's `source` ("default" when absent) and the silence is
 *   measured in event time, like every other clock here: the deadline is the source's latest
 *   event time plus the threshold, and the watermark fires it (the wall clock, once caught
 *   up), so a replay of the same events gives the same alerts and a stream whose event times
 *   run ahead of the brokers' clocks is not silent. A source whose events arrive late, not
 *   rarely, is the ingest-lag rule's case. Silence is judged per partition, like all state:
 *   looking at the source's instances in other partitions would make the outcome depend on
 *   the order partitions were applied in, which a replay does not reproduce. A partition that
 *   hears little from a source therefore alarms on its own; the alert ids of one source are
 *   the same on every partition, so a downstream consumer sees one alert per attempt. The
 *   ingest lag is the P95 (type 7) of the last 64 lags (receive - event time), judged from 20
 *   samples on; "L1_ingest_lag" and "resolved_ingest_lag" alerts carry their own episode
 *   number as attempt.
 *
 * - SLA-06: the instance is the account's (entity type "account"); its deadline is absolute,
 *   anchored on the renewal date (the service_period_end of the account's current subscription)
 *   instead of start + threshold: each level fires `before_anchor_ms` before the renewal
 *   date. The ladder (rs_rules_set_renewal_lead, lead L = sla.renewal_coverage.lead, 90 d):
 *   L0 warning at L + 14 d before the renewal, L1 breach at L, L2 escalate at 2L/3 (60 d),
 *   L3 critical at L/3 (30 d): the §5.2 shape (warn, breach, escalate, critical) on a
 *   calendar clock whose urgency grows as the renewal nears. Started (or rolled) by a
 *   subscription event with status active or past_due, a service_period_end in the future
 *   and no cancel_at; only subscriptions whose service period is longer than the lead are
 *   covered (a monthly plan renews on its own; asking for a renewal opportunity 90 days out
 *   of a 30-day period would breach every month). Met by opportunity.created with deal_type
 *   renewal for the account, or opportunity.closed won of a renewal deal (a renewal
 *   created before its close); health (M19) is not built, so the "health != red" half of
 *   the stop reads as unknown, never red. The renewal itself (a later service_period_end of
 *   the same subscription) settles the instance at that event (met, or breached_then_met
 *   after the breach point) and opens attempt + 1 for the next period. Cancelled by
 *   subscription.churned, status canceled, or a scheduled cancel_at (churn_scheduled: the
 *   churn-risk path); a later active period re-opens attempt + 1. One instance per account:
 *   it follows the subscription that opened it; events of the account's other
 *   subscriptions open nothing while it is open or covered. A stop older than the instance's
 *   start belongs to an earlier period and is ignored from attempt 2 on.
 *
 * Threads: the loop thread, inside the caller's store batch.
 */
#ifndef RS_SLARULE_H
#define RS_SLARULE_H

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "err.h"
#include "event.h"
#include "sla.h"
#include "store.h"

/* Timer rule ids, stored in timer keys: never reuse. SLA-01 is RS_SLA_RULE_SPEED_TO_LEAD. */
enum rs_rule_id {
    RS_RULE_MQL_ACCEPTANCE = 2,   /* SLA-02 */
    RS_RULE_STALLED_OPP = 3,      /* SLA-03 */
    RS_RULE_HANDOFF = 4,          /* SLA-04 */
    RS_RULE_ONBOARDING = 5,       /* SLA-05 */
    RS_RULE_RENEWAL_COVERAGE = 6, /* SLA-06 */
    RS_RULE_DATA_FRESHNESS = 7,   /* SLA-07 */
};

#define RS_RULE_LEVELS_MAX 5
#define RS_RULE_DIMS_MAX   16 /* per-dimension thresholds (stage, segment) */

struct rs_rule_level {
    uint32_t pct;            /* of the threshold */
    int64_t min_business_ms; /* L3: at least this much (24 business hours); 0 = none */
    enum rs_alert_kind kind;
    const char *name;         /* "L1_breach", ... */
    int64_t before_anchor_ms; /* anchored rules (SLA-06): due this long before the anchor */
};

/* Configuration of one rule (from the `sla.<rule>.*` keys). */
struct rs_rule_config {
    bool enabled;
    int64_t threshold_ms; /* default threshold */
    size_t n_dims;        /* per-dimension overrides: stage for SLA-03, segment for SLA-05 */
    const char *dim_value[RS_RULE_DIMS_MAX]; /* borrowed */
    int64_t dim_threshold_ms[RS_RULE_DIMS_MAX];
    const struct rs_calendar *calendar; /* borrowed; NULL = 24x7 */
    size_t n_levels;
    struct rs_rule_level levels[RS_RULE_LEVELS_MAX];
};

struct rs_rules_config {
    struct rs_rule_config mql_acceptance; /* SLA-02: 1 business day */
    struct rs_rule_config stalled_opp;    /* SLA-03: per stage, bootstrap 30d, calendar */
    struct rs_rule_config handoff;        /* SLA-04: 2 business days, deal_type new */
    struct rs_rule_config onboarding;     /* SLA-05: smb 30d, mid_market 60d, enterprise 90d */
    struct rs_rule_config renewal;        /* SLA-06: lead 90d before the renewal date */
    struct rs_rule_config freshness;      /* SLA-07: 60 min silent during business hours */
    int64_t freshness_lag_p95_ms;         /* SLA-07: ingest lag P95 threshold, 15 min */
};

/* Defaults of METRICS.md §5.5 (calendars left NULL: the caller sets them). */
void rs_rules_config_defaults(struct rs_rules_config *cfg);

/*
 * Set SLA-06's lead (its threshold) and the ladder that follows from it: L0 at lead + 14 d
 * before the renewal date, L1 at lead, L2 at 2/3 and L3 at 1/3 of the lead.
 */
void rs_rules_set_renewal_lead(struct rs_rule_config *c, int64_t lead_ms);

/* A settled (or restated) instance, for the metrics. Strings borrowed for the call. */
struct rs_sla_outcome {
    uint8_t rule; /* enum rs_rule_id, or RS_SLA_RULE_SPEED_TO_LEAD */
    const char *sla_type;
    struct rs_str entity_id;
    struct rs_str owner_id; /* may be unset */
    struct rs_str dim;      /* stage / segment / "" */
    uint32_t attempt_n;
    const char *status; /* "met", "breached", "breached_then_met", "cancelled" */
    int64_t start_ms;
    int64_t stop_ms;             /* INT64_MIN for breached (still open) and cancelled */
    int64_t elapsed_ms;          /* wall, net of pauses for calendar rules */
    int64_t elapsed_business_ms; /* on the rule's clock */
    int64_t threshold_ms;
};

typedef int rs_sla_outcome_cb(void *opaque, uint32_t partition, const struct rs_sla_outcome *o,
                              int sign, struct rs_err *err);

struct rs_rules_counters {
    uint64_t started, stopped, paused, resumed, cancelled;
    uint64_t alerts[RS_ALERT__COUNT];
    uint64_t open[8]; /* by rule id: instances running or paused (live estimate) */
};

struct rs_rules {
    struct rs_rules_config cfg;
    rs_sla_emit_cb *emit;
    rs_sla_outcome_cb *outcome; /* may be NULL */
    void *opaque;
    struct rs_rules_counters counters;
};

void rs_rules_init(struct rs_rules *r, const struct rs_rules_config *cfg, rs_sla_emit_cb *emit,
                   rs_sla_outcome_cb *outcome, void *opaque);

/*
 * Apply one event of `partition` to every rule it starts, stops, pauses, resumes or cancels.
 * received_ms is the Kafka message timestamp (SLA-07). *next_deadline_ms is lowered to any
 * deadline armed. Returns 0 or a negative code (store, emit or outcome callback's).
 */
int rs_rules_apply(struct rs_rules *r, struct rs_store *st, uint32_t partition,
                   const struct rs_event *ev, int64_t received_ms, int64_t *next_deadline_ms,
                   struct rs_err *err);

/*
 * Fire every level of every rule due at watermark_ms in `partition` (as rs_sla_fire), and set
 * *next_deadline_ms to the earliest deadline left. Due timers of rules this module does not run
 * (SLA-01's) are put back unchanged, so call this before rs_sla_fire(), which drops timers of
 * other rules. Returns the number of this module's timers fired, or a negative code.
 */
int rs_rules_fire(struct rs_rules *r, struct rs_store *st, uint32_t partition, int64_t watermark_ms,
                  int64_t *next_deadline_ms, struct rs_err *err);

/*
 * One due timer of a rule this module runs, already taken from the store (an
 * rs_timer_fire_cb's arguments), fired as rs_rules_fire()'s pass would: for a caller that runs
 * one pass over every rule's timers (app.c), so that SLA-01's are neither taken nor put back
 * here. A rule it does not run is ignored. The deadlines of the levels it arms lower
 * *next_deadline_ms. Returns 0 or a negative code.
 */
int rs_rules_fire_timer(struct rs_rules *r, struct rs_store *st, uint32_t partition,
                        int64_t watermark_ms, uint8_t rule, struct rs_bytes entity,
                        int64_t deadline_ms, struct rs_bytes payload, int64_t *next_deadline_ms,
                        struct rs_err *err);

/* One open instance, for the HTTP API and inspect. Strings borrowed for the call. */
struct rs_sla_open {
    uint32_t partition;
    uint8_t rule;
    const char *sla_type;
    struct rs_str entity_id;
    struct rs_str owner_id;
    const char *status; /* running, paused, breached */
    int64_t start_ms;
    int64_t target_ms;
    int64_t next_level_ms; /* INT64_MAX when none */
};

typedef int rs_sla_open_cb(void *opaque, const struct rs_sla_open *open);

/*
 * Visit the open instances of `rule` (0: every rule of this module; SLA-01's leads are sla.c's
 * records and are not visited) whose owner is `owner` (unset: any), in the open batch or read
 * snapshot. target_ms is as of the instance's last change; next_level_ms is its armed timer.
 * Returns 0, the callback's code or RS_ESTORE.
 */
int rs_rules_scan_open(struct rs_store *st, uint8_t rule, struct rs_str owner, rs_sla_open_cb *cb,
                       void *opaque, struct rs_err *err);

/* "SLA-02_mql_acceptance", ...; NULL for an unknown id. */
const char *rs_rule_sla_type(uint8_t rule);

#endif
