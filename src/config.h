/*
 * config.h - the configuration file, validated once at start into a read-only struct.
 *
 * Format (docs/configuration.md; deploy/revstream.conf is a commented sample): one
 * `key = value` per line; a line whose first non-blank character is `#` is a comment; blank
 * lines are ignored; surrounding white space is trimmed; a value may be wrapped in double
 * quotes to keep leading or trailing spaces (one pair is removed, nothing inside is escaped).
 * A `#` after a value is part of the value, not a comment, so passwords may contain it.
 * Lines are at most 64 KiB and hold no NUL byte. Keys are dotted names. Every key under
 * `kafka.` passes through to librdkafka unchanged (minus the prefix) for both the consumer
 * and the producer; `kafka.consumer.X` and `kafka.producer.X` reach only that client as X.
 * Durations take a unit: ms, s, m, h, d (for example `5m`). Unknown keys outside `kafka.`
 * are errors, so a typo never silently keeps a default; for the same reason a key outside
 * `kafka.` may appear only once in a file. A `kafka.` key may repeat: the last one wins.
 * Empty values are errors everywhere.
 *
 * Environment: REVSTREAM_<KEY> overrides <KEY> after the file is read, with the key
 * upper-cased and every `.` written `_` (REVSTREAM_STATE_DIR for state.dir). For kafka keys the
 * rest after REVSTREAM_KAFKA_ is lower-cased and its underscores map back to dots
 * (REVSTREAM_KAFKA_SASL_PASSWORD for kafka.sasl.password, REVSTREAM_KAFKA_CONSUMER_GROUP_ID for
 * kafka.consumer.group.id), because librdkafka property names use dots, never underscores.
 * Values are taken verbatim (no trimming, no quotes). REVSTREAM_CONFIG is reserved for the
 * CLI (it names the file) and ignored here; any other REVSTREAM_* variable that names no key
 * is an error, so a misspelt secret never goes unnoticed.
 *
 * Errors name the file, the line, the key and the problem:
 *   revstream.conf:12: key 'sla.speed_to_lead.high': expected a duration such as 5m, got 'soon'
 *   env REVSTREAM_BATCH_MAX_EVENTS: key 'batch.max_events': expected an integer from 1 to ...
 * Not here: librdkafka's own validation of kafka.* values (kafka_io.c reports those, naming the
 * key and the origin). Threads: build on the main thread before the loop starts; read-only
 * afterwards.
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"
#include "log.h"

enum rs_kafka_role { RS_KAFKA_BOTH, RS_KAFKA_CONSUMER, RS_KAFKA_PRODUCER };

/* One librdkafka property. */
struct rs_kafka_prop {
    char *name; /* librdkafka's name, without "kafka." or the role prefix */
    char *value;
    enum rs_kafka_role role;
    char *origin; /* "file:line" or "env NAME", for error messages */
};

#define RS_CONFIG_STAGES_MAX 16 /* per-stage SLA-03 thresholds */
#define RS_CONFIG_GUARDRAILS 8  /* RS_GUARD__COUNT (guardrail.h); app.c checks it */

struct rs_config {
    char *path; /* the file read, or NULL for defaults only */

    enum rs_log_level log_level; /* log.level: error, warn, info (default), debug */

    /*
     * Every kafka.X entry (RS_KAFKA_BOTH) comes before the role-specific ones, each group in
     * the order first seen (file, then environment), so a client that applies, in array order,
     * the entries of its role and of RS_KAFKA_BOTH lets kafka.consumer.X beat kafka.X whatever
     * the order in the file. A repeated key replaces the earlier value in place.
     */
    struct rs_kafka_prop *kafka;
    size_t kafka_count;

    char *topic_events; /* topic.events, default "revops.events" */
    char *topic_alerts; /* topic.alerts, default "revops.alerts" */
    char *topic_dlq;    /* topic.dlq, default "revops.dlq" */

    char *state_dir;            /* state.dir, default "./revstream-state" */
    uint64_t state_map_size_mb; /* state.map_size_mb, default 1024 */
    int64_t state_sync_ms;      /* state.sync_interval: mdb_env_sync period, default 1s */

    uint32_t batch_max_events; /* batch.max_events, default 5000 */
    int64_t batch_max_ms;      /* batch.max_time, default 20ms */

    size_t event_max_bytes;  /* event.max_bytes, default 1048576 */
    int64_t dedup_window_ms; /* dedup.window: event-time window of the id dedup, 7d; 0 off */

    int64_t max_out_of_orderness_ms; /* time.max_out_of_orderness, default 10m */
    int64_t tick_ms;                 /* time.tick: wall-clock timer check period, default 100ms */

    /* SLA-01 speed to lead: sla.speed_to_lead.{high,mql,low}, defaults 5m, 60m, 1d */
    int64_t lead_threshold_ms[RS_TIER__COUNT];
    uint32_t warning_pct;  /* sla.warning_pct, default 80 (L0) */
    uint32_t escalate_pct; /* sla.escalate_pct, default 200 (L2) */

    char *topic_metrics; /* topic.metrics, default "revops.metrics" */
    char *http_bind;     /* http.bind: host:port of the HTTP endpoint, "off"; 127.0.0.1:9464 */

    /* Reporting time zone of metric buckets (time.zone, IANA, default UTC) and the business
     * calendar of the business-clock SLAs and of M11's business time (calendar.*). */
    char *time_zone;
    char *calendar_zone;     /* calendar.zone, default UTC */
    char *calendar_hours;    /* calendar.hours, default "mon-fri 09:00-18:00" */
    char *calendar_holidays; /* calendar.holidays, "YYYY-MM-DD,...", default "none" */

    /* SLA-02..07 (METRICS.md §5.5); thresholds on the rule's clock. */
    bool sla_enabled[8];       /* sla.<rule>.enabled, by enum rs_rule_id */
    int64_t mql_acceptance_ms; /* sla.mql_acceptance.threshold, 9h business */
    int64_t stalled_opp_ms;    /* sla.stalled_opportunity.threshold, 30d */
    size_t n_stage_thresholds; /* sla.stalled_opportunity.stage.<name> */
    char *stage_names[RS_CONFIG_STAGES_MAX];
    int64_t stage_ms[RS_CONFIG_STAGES_MAX];
    int64_t handoff_ms;           /* sla.handoff.threshold, 18h business */
    int64_t onboarding_ms[4];     /* sla.onboarding.{smb,mid_market,enterprise,default} */
    int64_t freshness_silence_ms; /* sla.freshness.silence, 60m business */
    int64_t freshness_lag_ms;     /* sla.freshness.lag_p95, 15m */

    /* Metrics (METRICS.md §7). */
    int64_t funnel_window_ms[4]; /* metrics.funnel_window.{lead_mql,mql_sql,sql_opp,opp_won} */
    int64_t reopen_same_opp_ms;  /* metrics.reopen_same_opportunity, 30d */
    int64_t lateness_ops_ms;     /* metrics.lateness.ops, 2d */
    int64_t lateness_sales_ms;   /* metrics.lateness.sales, 7d */
    uint32_t min_n;              /* metrics.min_n, 10 */
    char *onboarding_start;      /* metrics.onboarding_start: handoff_completed, opportunity_won */

    /* Customer MRR ledger (METRICS.md §3, §7). */
    char *reporting_currency;         /* currency.reporting, USD */
    int64_t classification_window_ms; /* ledger.classification_window, 60m (0..1440m) */
    char *churn_recognition;          /* ledger.churn_recognition: end_of_period, at_cancel,
                                       * at_schedule */
    bool zero_mrr_is_logo_churn;      /* ledger.zero_mrr_is_logo_churn, true */
    char *past_due_auto_churn;        /* ledger.past_due_auto_churn: 1d..90d or off, 30d */
    int64_t churn_reversal_window_ms; /* ledger.churn_reversal_window, 0s = off (..90d) */
    char *refund_void_new_business;   /* ledger.refund_void_new_business: off or 1d..90d */
    bool finite_discounts_reduce_mrr; /* ledger.finite_discounts_reduce_mrr, false */
    /* SLA-06 renewal coverage and the KPI guardrails (METRICS.md §5.5, §6). */
    int64_t renewal_lead_ms;       /* sla.renewal_coverage.lead, 90d */
    int64_t guardrail_interval_ms; /* guardrail.interval: event time between runs, 1m */
    /* guardrail.<name>.enabled / .threshold, by enum rs_guardrail_id (guardrail.h) */
    bool guardrail_enabled[RS_CONFIG_GUARDRAILS];
    double guardrail_threshold[RS_CONFIG_GUARDRAILS];
    /* Revenue metrics (METRICS.md §7, finance.h); the words are checked by rs_finance_option. */
    int64_t lateness_finance_ms;  /* metrics.lateness.finance, 35d */
    double gross_margin_default;  /* finance.gross_margin_default, 0.75 */
    double churn_floor_monthly;   /* finance.churn_floor_monthly, 0.0167 */
    double shared_spend_new_logo; /* finance.shared_spend_new_logo, 1.0 */
    uint32_t spend_lag_periods;   /* finance.spend_lag_periods, 0 */
    char *ltv_formula;            /* finance.ltv_formula, arpa_gm_over_churn_avg6 */
    char *magic_number_variant;   /* finance.magic_number_variant, arr_prior_quarter */
    char *cac_payback_variant;    /* finance.cac_payback_variant, bessemer_new_mrr */
    char *rule_of_40_margin;      /* finance.rule_of_40_margin, fcf */
    char *customer_churn_formula; /* finance.customer_churn_formula, chartmogul_b2b */

    /* Where each key outside kafka. was last set; read it with rs_config_origin(). */
    char **origins;
};

/*
 * Split http.bind into host (NUL-terminated, host_size bytes at most) and port.
 * Returns 0, RS_ENOTFOUND for "off", or RS_ECONFIG (rs_config_validate() reports it).
 */
int rs_config_http_bind(const struct rs_config *cfg, char *host, size_t host_size, uint16_t *port);

/* Fill `cfg` with the defaults above. Pair with rs_config_release(). */
void rs_config_init(struct rs_config *cfg);

/* Free everything `cfg` owns. NULL allowed. */
void rs_config_release(struct rs_config *cfg);

/*
 * Read `path` over the values already in `cfg`, then apply REVSTREAM_* variables from
 * `envp` (NULL-terminated, as environ; NULL skips the environment), then rs_config_validate().
 * A NULL `path` reads no file (environment and defaults only).
 * Returns 0 or RS_ECONFIG (or -errno if the file cannot be read) with err naming file, line,
 * key and problem. On failure `cfg` still holds valid, releasable values.
 */
int rs_config_load(struct rs_config *cfg, const char *path, char *const *envp, struct rs_err *err);

/*
 * Set one key, as if read from `origin` (for example "revstream.conf:12" or "--set"; not NULL).
 * Checks the value's own range only: call rs_config_validate() after the last set.
 * Returns 0 or RS_ECONFIG with err naming origin, key and problem; `cfg` is then unchanged.
 */
int rs_config_set(struct rs_config *cfg, const char *key, const char *value, const char *origin,
                  struct rs_err *err);

/*
 * Check every key's range again and the rules between keys (topic.events, topic.alerts and
 * topic.dlq distinct). rs_config_load() calls it.
 * Returns 0 or RS_ECONFIG with err naming each key involved and where it was set.
 */
int rs_config_validate(const struct rs_config *cfg, struct rs_err *err);

/*
 * Where `key` (any key, kafka.* included) got its value: "file:line", "env NAME" or the origin
 * given to rs_config_set(). Returns NULL for a key still at its default or unknown.
 * Ownership: borrows `cfg` until it next changes or is released.
 */
const char *rs_config_origin(const struct rs_config *cfg, const char *key);

/*
 * Parse a duration such as "250ms", "5m", "1d" into milliseconds.
 * Returns 0, or RS_ECONFIG (leaving *ms alone) for a missing unit, a negative or an
 * overflowing value.
 */
int rs_config_parse_duration(const char *text, int64_t *ms);

/* A ledger option that is "off" (or "0": 0 ms) or a duration from 1d to 90d. Returns 0 or
 * RS_ECONFIG. */
int rs_config_off_or_days(const char *text, int64_t *ms);

/*
 * Write the effective configuration to `out` as `key = value` lines in the file format (loading
 * them back gives the same values, masked ones aside): the keys outside kafka. in the order of
 * docs/configuration.md, then the kafka entries in array order. Values of kafka keys that
 * look secret (the name holds "password", "secret", ".key" or is sasl.oauthbearer.config) are
 * masked as "***".
 */
void rs_config_print(const struct rs_config *cfg, void *out /* FILE * */);

#endif
