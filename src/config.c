#define RS_LOG_MODULE "config"
#include "config.h"

#include "calendar.h"
#include "finance.h"

#include "mem.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Longest line we read, in bytes without the newline. Far beyond any real key and value, yet
 * small enough that a binary file named by mistake fails fast instead of being read whole.
 */
#define LINE_MAX_BYTES 65536

/* How much of a bad value or line an error quotes: struct rs_err holds 512 bytes in all. */
#define EXCERPT_MAX 60

/* Keys longer than this get no "did you mean": none of ours is near it. */
#define SUGGEST_MAX_LEN 64

/* Furthest edit distance at which an unknown key still gets a "did you mean". */
#define SUGGEST_MAX_DISTANCE 3

/* Kafka's own limit on topic names (kafka.common.internals.Topic). */
#define TOPIC_MAX_LEN 249

/* Variables under ENV_PREFIX are ours, so one that names no key is an error (config.h). */
#define ENV_PREFIX       "REVSTREAM_"
#define ENV_KAFKA_PREFIX "REVSTREAM_KAFKA_"
#define KAFKA_PREFIX     "kafka."                         /* the keys handed to librdkafka */
#define STAGE_PREFIX     "sla.stalled_opportunity.stage." /* per-stage SLA-03 thresholds */

/* Duration units; int64_t from the start so that 365 * MS_PER_D cannot overflow an int. */
#define MS_PER_S   INT64_C(1000)
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_H   (60 * MS_PER_MIN)
#define MS_PER_D   (24 * MS_PER_H)

enum key_type {
    KEY_LOG_LEVEL, /* enum rs_log_level */
    KEY_STRING,    /* char *, not empty */
    KEY_TOPIC,     /* char *, a legal Kafka topic name */
    KEY_U32,       /* uint32_t in [min, max] */
    KEY_U64,       /* uint64_t in [min, max] */
    KEY_SIZE,      /* size_t in [min, max] */
    KEY_DURATION,  /* int64_t milliseconds in [min, max], written with a unit */
    KEY_BOOL,      /* bool: true or false */
    KEY_NUMBER,    /* double in [min, max]: a decimal, or a percentage with '%' (85% = 0.85) */
};

/* One key outside kafka.: its name, its field in struct rs_config, its range and default. */
struct key_spec {
    const char *name;
    enum key_type type;
    size_t offset;
    uint64_t min; /* integers and durations (in ms), inclusive */
    uint64_t max;
    const char *default_value; /* as a file would say it; rs_config_init() parses it */
};

/* Where a key's value lives; the thresholds are one array indexed by enum rs_intent_tier. */
#define FIELD(f) offsetof(struct rs_config, f)
#define TIER_FIELD(tier) \
    (offsetof(struct rs_config, lead_threshold_ms) + (size_t)(tier) * sizeof(int64_t))

#define ENABLED_FIELD(rule) \
    (offsetof(struct rs_config, sla_enabled) + (size_t)(rule) * sizeof(bool))
#define ONBOARD_FIELD(i) (offsetof(struct rs_config, onboarding_ms) + (size_t)(i) * sizeof(int64_t))
#define GUARD_ENABLED_FIELD(i) \
    (offsetof(struct rs_config, guardrail_enabled) + (size_t)(i) * sizeof(bool))
#define GUARD_THRESHOLD_FIELD(i) \
    (offsetof(struct rs_config, guardrail_threshold) + (size_t)(i) * sizeof(double))
#define WINDOW_FIELD(i) \
    (offsetof(struct rs_config, funnel_window_ms) + (size_t)(i) * sizeof(int64_t))

_Static_assert(RS_TIER__COUNT == 3, "one sla.speed_to_lead key per intent tier in key_specs");

/*
 * Keep in sync with the field comments in config.h, deploy/revstream.conf and
 * docs/configuration.md. The order here is the order rs_config_print() writes.
 */
static const struct key_spec key_specs[] = {
    { "log.level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, "info" },
    { "topic.events", KEY_TOPIC, FIELD(topic_events), 0, 0, "revops.events" },
    { "topic.alerts", KEY_TOPIC, FIELD(topic_alerts), 0, 0, "revops.alerts" },
    { "topic.dlq", KEY_TOPIC, FIELD(topic_dlq), 0, 0, "revops.dlq" },
    { "state.dir", KEY_STRING, FIELD(state_dir), 0, 0, "./revstream-state" },
    /* 1 MiB to 1 TiB: LMDB reserves the whole map as address space up front. */
    { "state.map_size_mb", KEY_U64, FIELD(state_map_size_mb), 1, 1048576, "1024" },
    { "state.sync_interval", KEY_DURATION, FIELD(state_sync_ms), 1, MS_PER_H, "1s" },
    { "batch.max_events", KEY_U32, FIELD(batch_max_events), 1, 1000000, "5000" },
    { "batch.max_time", KEY_DURATION, FIELD(batch_max_ms), 1, MS_PER_MIN, "20ms" },
    /* 64 bytes to 1 GiB: librdkafka's message.max.bytes stops just below 1 GiB anyway. */
    { "event.max_bytes", KEY_SIZE, FIELD(event_max_bytes), 64, 1073741824, "1048576" },
    /* 0s turns dedup off; a year bounds the table at a year of event ids. */
    { "dedup.window", KEY_DURATION, FIELD(dedup_window_ms), 0, 365 * MS_PER_D, "7d" },
    { "time.max_out_of_orderness", KEY_DURATION, FIELD(max_out_of_orderness_ms), 0, 7 * MS_PER_D,
      "10m" },
    { "time.tick", KEY_DURATION, FIELD(tick_ms), 1, MS_PER_MIN, "100ms" },
    { "sla.speed_to_lead.high", KEY_DURATION, TIER_FIELD(RS_TIER_HIGH), 1, 365 * MS_PER_D, "5m" },
    { "sla.speed_to_lead.mql", KEY_DURATION, TIER_FIELD(RS_TIER_MQL), 1, 365 * MS_PER_D, "60m" },
    { "sla.speed_to_lead.low", KEY_DURATION, TIER_FIELD(RS_TIER_LOW), 1, 365 * MS_PER_D, "1d" },
    /* Warning strictly before the breach (100%), escalation strictly after it. */
    { "sla.warning_pct", KEY_U32, FIELD(warning_pct), 1, 99, "80" },
    { "sla.escalate_pct", KEY_U32, FIELD(escalate_pct), 101, 10000, "200" },
    { "topic.metrics", KEY_TOPIC, FIELD(topic_metrics), 0, 0, "revops.metrics" },
    { "http.bind", KEY_STRING, FIELD(http_bind), 0, 0, "127.0.0.1:9464" },
    { "time.zone", KEY_STRING, FIELD(time_zone), 0, 0, "UTC" },
    { "calendar.zone", KEY_STRING, FIELD(calendar_zone), 0, 0, "UTC" },
    { "calendar.hours", KEY_STRING, FIELD(calendar_hours), 0, 0, "mon-fri 09:00-18:00" },
    { "calendar.holidays", KEY_STRING, FIELD(calendar_holidays), 0, 0, "none" },
    { "sla.mql_acceptance.enabled", KEY_BOOL, ENABLED_FIELD(2), 0, 0, "true" },
    /* One business day of the default calendar (09:00-18:00). */
    { "sla.mql_acceptance.threshold", KEY_DURATION, FIELD(mql_acceptance_ms), 1, 365 * MS_PER_D,
      "9h" },
    { "sla.stalled_opportunity.enabled", KEY_BOOL, ENABLED_FIELD(3), 0, 0, "true" },
    { "sla.stalled_opportunity.threshold", KEY_DURATION, FIELD(stalled_opp_ms), 1, 365 * MS_PER_D,
      "30d" },
    { "sla.handoff.enabled", KEY_BOOL, ENABLED_FIELD(4), 0, 0, "true" },
    { "sla.handoff.threshold", KEY_DURATION, FIELD(handoff_ms), 1, 365 * MS_PER_D, "18h" },
    { "sla.onboarding.enabled", KEY_BOOL, ENABLED_FIELD(5), 0, 0, "true" },
    { "sla.onboarding.smb", KEY_DURATION, ONBOARD_FIELD(0), 1, 730 * MS_PER_D, "30d" },
    { "sla.onboarding.mid_market", KEY_DURATION, ONBOARD_FIELD(1), 1, 730 * MS_PER_D, "60d" },
    { "sla.onboarding.enterprise", KEY_DURATION, ONBOARD_FIELD(2), 1, 730 * MS_PER_D, "90d" },
    { "sla.onboarding.default", KEY_DURATION, ONBOARD_FIELD(3), 1, 730 * MS_PER_D, "60d" },
    { "sla.freshness.enabled", KEY_BOOL, ENABLED_FIELD(7), 0, 0, "true" },
    { "sla.freshness.silence", KEY_DURATION, FIELD(freshness_silence_ms), 1, 30 * MS_PER_D, "60m" },
    { "sla.freshness.lag_p95", KEY_DURATION, FIELD(freshness_lag_ms), 1, 30 * MS_PER_D, "15m" },
    { "metrics.funnel_window.lead_mql", KEY_DURATION, WINDOW_FIELD(0), 1, 730 * MS_PER_D, "30d" },
    { "metrics.funnel_window.mql_sql", KEY_DURATION, WINDOW_FIELD(1), 1, 730 * MS_PER_D, "30d" },
    { "metrics.funnel_window.sql_opp", KEY_DURATION, WINDOW_FIELD(2), 1, 730 * MS_PER_D, "30d" },
    { "metrics.funnel_window.opp_won", KEY_DURATION, WINDOW_FIELD(3), 1, 730 * MS_PER_D, "180d" },
    { "metrics.reopen_same_opportunity", KEY_DURATION, FIELD(reopen_same_opp_ms), 0, 365 * MS_PER_D,
      "30d" },
    { "metrics.lateness.ops", KEY_DURATION, FIELD(lateness_ops_ms), 0, 365 * MS_PER_D, "2d" },
    { "metrics.lateness.sales", KEY_DURATION, FIELD(lateness_sales_ms), 0, 365 * MS_PER_D, "7d" },
    { "metrics.min_n", KEY_U32, FIELD(min_n), 1, 1000000, "10" },
    { "metrics.onboarding_start", KEY_STRING, FIELD(onboarding_start), 0, 0, "handoff_completed" },
    /* The customer MRR ledger (METRICS.md §7). */
    { "currency.reporting", KEY_STRING, FIELD(reporting_currency), 0, 0, "USD" },
    { "ledger.classification_window", KEY_DURATION, FIELD(classification_window_ms), 0,
      1440 * MS_PER_MIN, "60m" },
    { "ledger.churn_recognition", KEY_STRING, FIELD(churn_recognition), 0, 0, "end_of_period" },
    { "ledger.zero_mrr_is_logo_churn", KEY_BOOL, FIELD(zero_mrr_is_logo_churn), 0, 0, "true" },
    { "ledger.past_due_auto_churn", KEY_STRING, FIELD(past_due_auto_churn), 0, 0, "30d" },
    { "ledger.churn_reversal_window", KEY_DURATION, FIELD(churn_reversal_window_ms), 0,
      90 * MS_PER_D, "0s" },
    { "ledger.refund_void_new_business", KEY_STRING, FIELD(refund_void_new_business), 0, 0, "off" },
    { "ledger.finite_discounts_reduce_mrr", KEY_BOOL, FIELD(finite_discounts_reduce_mrr), 0, 0,
      "false" },
    /* SLA-06 and the KPI guardrails (METRICS.md §5.5, §6); guardrail indexes are
     * enum rs_guardrail_id (guardrail.h). */
    { "sla.renewal_coverage.enabled", KEY_BOOL, ENABLED_FIELD(6), 0, 0, "true" },
    { "sla.renewal_coverage.lead", KEY_DURATION, FIELD(renewal_lead_ms), MS_PER_D, 730 * MS_PER_D,
      "90d" },
    { "guardrail.interval", KEY_DURATION, FIELD(guardrail_interval_ms), 0, 30 * MS_PER_D, "1m" },
    { "guardrail.magic_number.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(0), 0, 0, "true" },
    { "guardrail.magic_number.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(0), 0, 100, "0.5" },
    { "guardrail.magic_number_2q.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(1), 0, 0, "true" },
    { "guardrail.magic_number_2q.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(1), 0, 100, "0.75" },
    { "guardrail.cac_payback.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(2), 0, 0, "true" },
    { "guardrail.cac_payback.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(2), 0, 1000, "24" },
    { "guardrail.ltv_cac.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(3), 0, 0, "true" },
    { "guardrail.ltv_cac.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(3), 0, 100, "3" },
    { "guardrail.nrr_t12.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(4), 0, 0, "true" },
    { "guardrail.nrr_t12.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(4), 0, 10, "100%" },
    { "guardrail.grr_t12.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(5), 0, 0, "true" },
    { "guardrail.grr_t12.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(5), 0, 1, "85%" },
    { "guardrail.speed_to_lead.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(6), 0, 0, "true" },
    { "guardrail.speed_to_lead.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(6), 0, 1, "80%" },
    { "guardrail.handoff_on_time.enabled", KEY_BOOL, GUARD_ENABLED_FIELD(7), 0, 0, "true" },
    { "guardrail.handoff_on_time.threshold", KEY_NUMBER, GUARD_THRESHOLD_FIELD(7), 0, 1, "90%" },
    /* Revenue metrics; finance.* words are checked in validate_words(). */
    { "metrics.lateness.finance", KEY_DURATION, FIELD(lateness_finance_ms), 0, 365 * MS_PER_D,
      "35d" },
    { "finance.gross_margin_default", KEY_NUMBER, FIELD(gross_margin_default), 0, 1, "0.75" },
    { "finance.churn_floor_monthly", KEY_NUMBER, FIELD(churn_floor_monthly), 0, 1, "0.0167" },
    { "finance.shared_spend_new_logo", KEY_NUMBER, FIELD(shared_spend_new_logo), 0, 1, "1" },
    /* At most a year of months (or three of quarters) between spend and its customers. */
    { "finance.spend_lag_periods", KEY_U32, FIELD(spend_lag_periods), 0, 12, "0" },
    { "finance.ltv_formula", KEY_STRING, FIELD(ltv_formula), 0, 0, "arpa_gm_over_churn_avg6" },
    { "finance.magic_number_variant", KEY_STRING, FIELD(magic_number_variant), 0, 0,
      "arr_prior_quarter" },
    { "finance.cac_payback_variant", KEY_STRING, FIELD(cac_payback_variant), 0, 0,
      "bessemer_new_mrr" },
    { "finance.rule_of_40_margin", KEY_STRING, FIELD(rule_of_40_margin), 0, 0, "fcf" },
    { "finance.customer_churn_formula", KEY_STRING, FIELD(customer_churn_formula), 0, 0,
      "chartmogul_b2b" },
};

#define KEY_COUNT (sizeof(key_specs) / sizeof(key_specs[0])) /* also the length of cfg->origins */

/* REVSTREAM_* variables that name no key but belong to someone else: skipped, not errors. */
static const char *const env_reserved[] = {
    "REVSTREAM_CONFIG", /* the CLI's way to name the file */
};

/*
 * Common librdkafka properties, only to suggest "kafka.bootstrap.servers" to someone who
 * wrote "bootstrap.servers"; any other property passes through without being listed.
 */
static const char *const kafka_hints[] = {
    "bootstrap.servers", "group.id",         "client.id",     "security.protocol",
    "sasl.mechanisms",   "sasl.username",    "sasl.password", "ssl.ca.location",
    "auto.offset.reset", "compression.type", "linger.ms",     "acks",
};

/* The parsed form of one value outside kafka., before it is stored. */
union parsed {
    double d;
    bool b;
    enum rs_log_level level;
    uint64_t u;
    int64_t ms;
};

/* ---- small text helpers ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Letters, digits, '.', '_' and '-': what keys and librdkafka property names are made of. */
static bool is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* strstr, ignoring ASCII case (strcasestr is a GNU extension). */
static bool contains_ci(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);

    for (; *haystack != '\0'; haystack++) {
        size_t i = 0;

        while (i < n && haystack[i] != '\0' &&
               tolower((unsigned char)haystack[i]) == tolower((unsigned char)needle[i])) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    return false;
}

/*
 * Copy at most EXCERPT_MAX bytes of `text` into `buf` for an error message. Control bytes
 * become '?' and a cut is marked "...", so a binary or huge value can neither flood nor
 * garble the log line.
 */
static const char *excerpt(char *buf, size_t cap, const char *text)
{
    size_t limit = cap - 4 < EXCERPT_MAX ? cap - 4 : EXCERPT_MAX; /* room for "..." and NUL */
    size_t i = 0;

    assert(cap > 4);
    for (; text[i] != '\0' && i < limit; i++) {
        buf[i] = iscntrl((unsigned char)text[i]) ? '?' : text[i];
    }
    if (text[i] != '\0') {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* malloc'd "<a><b>"; out of memory aborts. */
static char *concat(const char *a, const char *b)
{
    size_t a_len = strlen(a);
    size_t b_len = strlen(b);
    char *s = rs_xmalloc(a_len + b_len + 1);

    memcpy(s, a, a_len);
    memcpy(s + a_len, b, b_len + 1);
    return s;
}

/* The name of a librdkafka property whose value must not reach a log or stdout. */
static bool is_secret_name(const char *name)
{
    return contains_ci(name, "password") || contains_ci(name, "secret") ||
           contains_ci(name, ".key") || contains_ci(name, "sasl.oauthbearer.config");
}

/* ---- numbers and durations ---- */

/* Decimal digits only: strtoull alone would accept " 7", "+7" and wrap "-7" around. */
static bool parse_u64(const char *text, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (!isdigit((unsigned char)text[0])) {
        return false;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {
    /* Largest first: format_duration() picks the first unit that divides evenly. */
    { "d", MS_PER_D }, { "h", MS_PER_H }, { "m", MS_PER_MIN }, { "s", MS_PER_S }, { "ms", 1 },
};

int rs_config_parse_duration(const char *text, int64_t *ms)
{
    unsigned long long n;
    char *end;

    if (!isdigit((unsigned char)text[0])) {
        return RS_ECONFIG;
    }
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno != 0) {
        return RS_ECONFIG;
    }
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        uint64_t unit = (uint64_t)duration_units[i].ms;

        if (strcmp(end, duration_units[i].name) != 0) {
            continue;
        }
        if (n > (uint64_t)INT64_MAX / unit) {
            return RS_ECONFIG;
        }
        *ms = (int64_t)(n * unit);
        return 0;
    }
    return RS_ECONFIG; /* no unit, or one we do not know: "5", "5 m", "5min", "1.5h" */
}

/* The shortest exact spelling: 300000 -> "5m", 1500 -> "1500ms". */
static const char *format_duration(char *buf, size_t cap, int64_t ms)
{
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        int64_t unit = duration_units[i].ms;

        if (ms != 0 && ms % unit == 0) {
            (void)snprintf(buf, cap, "%" PRId64 "%s", ms / unit, duration_units[i].name);
            return buf;
        }
    }
    (void)snprintf(buf, cap, "%" PRId64 "ms", ms);
    return buf;
}

/* ---- "did you mean" ---- */

/*
 * Edit distance with adjacent transpositions (optimal string alignment), ignoring ASCII case,
 * so "hgih" is one step from "high" and "Topic.Alerts" none from "topic.alerts".
 * Returns SIZE_MAX for strings longer than SUGGEST_MAX_LEN.
 */
static size_t edit_distance(const char *a, const char *b)
{
    size_t a_len = strlen(a);
    size_t b_len = strlen(b);
    size_t rows[3][SUGGEST_MAX_LEN + 1];
    size_t *prev2 = rows[0];
    size_t *prev = rows[1];
    size_t *cur = rows[2];

    if (a_len > SUGGEST_MAX_LEN || b_len > SUGGEST_MAX_LEN) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= b_len; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= a_len; i++) {
        int ca = tolower((unsigned char)a[i - 1]);
        size_t *spare;

        cur[0] = i;
        for (size_t j = 1; j <= b_len; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ca == cb ? 0u : 1u);

            if (prev[j] + 1 < best) {
                best = prev[j] + 1;
            }
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best) {
                best = prev2[j - 2] + 1;
            }
            cur[j] = best;
        }
        spare = prev2;
        prev2 = prev;
        prev = cur;
        cur = spare;
    }
    return prev[b_len];
}

/* Close enough to suggest: at most SUGGEST_MAX_DISTANCE, and less than a third of the word. */
static bool is_near(const char *typed, const char *known, size_t *best)
{
    size_t d = edit_distance(typed, known);

    if (d > SUGGEST_MAX_DISTANCE || d * 3 >= strlen(known) || d >= *best) {
        return false;
    }
    *best = d;
    return true;
}

/*
 * Write into `buf` the key `key` was most likely meant to be, or return NULL. Besides our own
 * keys this catches a misspelt "kafka." prefix and a librdkafka property written without it.
 */
static const char *suggest_key(const char *key, char *buf, size_t cap)
{
    const char *dot = strchr(key, '.');
    size_t best = SIZE_MAX;
    const char *found = NULL;

    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (is_near(key, key_specs[i].name, &best)) {
            found = key_specs[i].name;
        }
    }
    if (found != NULL) {
        (void)snprintf(buf, cap, "%s", found);
        return buf;
    }
    if (dot != NULL && dot[1] != '\0' && dot - key <= 7) {
        char head[8];

        memcpy(head, key, (size_t)(dot - key));
        head[dot - key] = '\0';
        if (edit_distance(head, "kafka") <= 2) {
            (void)snprintf(buf, cap, KAFKA_PREFIX "%s", dot + 1);
            return buf;
        }
    }
    for (size_t i = 0; i < sizeof(kafka_hints) / sizeof(kafka_hints[0]); i++) {
        if (edit_distance(key, kafka_hints[i]) <= 1) {
            (void)snprintf(buf, cap, KAFKA_PREFIX "%s", kafka_hints[i]);
            return buf;
        }
    }
    return NULL;
}

/* "REVSTREAM_" + the key upper-cased with '.' as '_'. Returns new; free() it. */
static char *env_name_of(const char *key)
{
    char *name = concat(ENV_PREFIX, key);

    for (char *p = name + strlen(ENV_PREFIX); *p != '\0'; p++) {
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    }
    return name;
}

/* ---- keys outside kafka. ---- */

static int find_key(const char *key)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strcmp(key, key_specs[i].name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int unknown_key(const char *origin, const char *key, struct rs_err *err)
{
    char shown[EXCERPT_MAX + 4];
    char hint[SUGGEST_MAX_LEN + 16];

    if (suggest_key(key, hint, sizeof(hint)) != NULL) {
        return rs_err_set(err, RS_ECONFIG, "%s: unknown key '%s'; did you mean '%s'?", origin,
                          excerpt(shown, sizeof(shown), key), hint);
    }
    return rs_err_set(err, RS_ECONFIG, "%s: unknown key '%s'", origin,
                      excerpt(shown, sizeof(shown), key));
}

/* A legal Kafka topic name: 1 to 249 of [A-Za-z0-9._-], and not "." or "..". */
static bool is_topic_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > TOPIC_MAX_LEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_key_char(s[i])) {
            return false;
        }
    }
    return true;
}

/*
 * Parse `value` for `spec` and check its range, without storing anything.
 * Returns 0 with *out set, or RS_ECONFIG with err naming origin, key and problem.
 */
static int check_value(const struct key_spec *spec, const char *value, const char *origin,
                       union parsed *out, struct rs_err *err)
{
    /* A '#' here is most likely a trailing comment that the format keeps as part of the value. */
    const char *hash_hint =
        strchr(value, '#') != NULL ? " ('#' starts a comment only at the start of a line)" : "";
    char shown[EXCERPT_MAX + 4];
    char lo[32];
    char hi[32];
    uint64_t u;
    int64_t ms;

    if (value[0] == '\0') {
        return rs_err_set(err, RS_ECONFIG, "%s: key '%s': empty value", origin, spec->name);
    }
    excerpt(shown, sizeof(shown), value);
    switch (spec->type) {
    case KEY_LOG_LEVEL:
        if (rs_log_parse_level(value, &out->level) != 0) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected one of error, warn, info, debug, got '%s'%s",
                              origin, spec->name, shown, hash_hint);
        }
        return 0;
    case KEY_STRING:
        return 0;
    case KEY_TOPIC:
        if (!is_topic_name(value)) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected a Kafka topic name (at most %d letters, "
                              "digits, '.', '_' or '-'), got '%s'%s",
                              origin, spec->name, TOPIC_MAX_LEN, shown, hash_hint);
        }
        return 0;
    case KEY_U32:
    case KEY_U64:
    case KEY_SIZE:
        if (!parse_u64(value, &u) || u < spec->min || u > spec->max) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected an integer from %" PRIu64 " to %" PRIu64
                              ", got '%s'%s",
                              origin, spec->name, spec->min, spec->max, shown, hash_hint);
        }
        out->u = u;
        return 0;
    case KEY_DURATION:
        if (parse_u64(value, &u)) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected a duration with a unit (ms, s, m, h, d) "
                              "such as 5m, got '%s'",
                              origin, spec->name, shown);
        }
        if (rs_config_parse_duration(value, &ms) != 0) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected a duration such as 5m, got '%s'%s", origin,
                              spec->name, shown, hash_hint);
        }
        if ((uint64_t)ms < spec->min || (uint64_t)ms > spec->max) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected a duration from %s to %s, got '%s'", origin,
                              spec->name, format_duration(lo, sizeof(lo), (int64_t)spec->min),
                              format_duration(hi, sizeof(hi), (int64_t)spec->max), shown);
        }
        out->ms = ms;
        return 0;
    case KEY_BOOL:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            return rs_err_set(err, RS_ECONFIG, "%s: key '%s': expected true or false, got '%s'%s",
                              origin, spec->name, shown, hash_hint);
        }
        out->b = value[0] == 't';
        return 0;
    case KEY_NUMBER: {
        char *end = NULL;
        double d = strtod(value, &end);

        if (end != NULL && end != value && *end == '%' && end[1] == '\0') {
            d /= 100;
            end++;
        }
        if (end == NULL || end == value || *end != '\0' || !isfinite(d) || d < (double)spec->min ||
            d > (double)spec->max) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected a number from %" PRIu64 " to %" PRIu64
                              " (or a percentage such as 85%%), got '%s'%s",
                              origin, spec->name, spec->min, spec->max, shown, hash_hint);
        }
        out->d = d;
        return 0;
    }
    }
    assert(0 && "key_type not handled");
    return RS_ECONFIG;
}

/* Store a value that check_value() accepted. */
static void store_value(struct rs_config *cfg, const struct key_spec *spec, const char *value,
                        const union parsed *parsed)
{
    char *field = (char *)cfg + spec->offset;
    char **str;
    char *copy;

    switch (spec->type) {
    case KEY_LOG_LEVEL:
        *(enum rs_log_level *)(void *)field = parsed->level;
        break;
    case KEY_STRING:
    case KEY_TOPIC:
        /* Copy before freeing: `value` may be the very string being replaced. */
        copy = rs_xstrdup(value);
        str = (char **)(void *)field;
        free(*str);
        *str = copy;
        break;
    case KEY_U32:
        *(uint32_t *)(void *)field = (uint32_t)parsed->u; /* max <= UINT32_MAX in key_specs */
        break;
    case KEY_U64:
        *(uint64_t *)(void *)field = parsed->u;
        break;
    case KEY_SIZE:
        *(size_t *)(void *)field = (size_t)parsed->u; /* max <= 1 GiB in key_specs */
        break;
    case KEY_DURATION:
        *(int64_t *)(void *)field = parsed->ms;
        break;
    case KEY_BOOL:
        *(bool *)(void *)field = parsed->b;
        break;
    case KEY_NUMBER:
        *(double *)(void *)field = parsed->d;
        break;
    }
}

/* A KEY_STRING or KEY_TOPIC value; "" before rs_config_init() has set it. */
static const char *string_field(const struct rs_config *cfg, const struct key_spec *spec)
{
    const char *str = *(char *const *)(const void *)((const char *)cfg + spec->offset);

    assert(spec->type == KEY_STRING || spec->type == KEY_TOPIC);
    return str != NULL ? str : "";
}

/*
 * The current value of `spec` as a file would spell it: the string field itself, or `buf`.
 * Ownership: borrows cfg or buf.
 */
static const char *format_value(const struct rs_config *cfg, const struct key_spec *spec, char *buf,
                                size_t cap)
{
    /* Keep in sync with log.c, whose names log.h does not export. */
    static const char *const level_names[] = { "error", "warn", "info", "debug" };
    const char *field = (const char *)cfg + spec->offset;
    enum rs_log_level level;

    switch (spec->type) {
    case KEY_LOG_LEVEL:
        level = *(const enum rs_log_level *)(const void *)field;
        if ((size_t)level < sizeof(level_names) / sizeof(level_names[0])) {
            return level_names[level];
        }
        (void)snprintf(buf, cap, "%d", (int)level);
        return buf;
    case KEY_STRING:
    case KEY_TOPIC:
        return string_field(cfg, spec);
    case KEY_U32:
        (void)snprintf(buf, cap, "%" PRIu32, *(const uint32_t *)(const void *)field);
        return buf;
    case KEY_U64:
        (void)snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)(const void *)field);
        return buf;
    case KEY_SIZE:
        (void)snprintf(buf, cap, "%zu", *(const size_t *)(const void *)field);
        return buf;
    case KEY_DURATION:
        return format_duration(buf, cap, *(const int64_t *)(const void *)field);
    case KEY_BOOL:
        return *(const bool *)(const void *)field ? "true" : "false";
    case KEY_NUMBER: {
        double x = *(const double *)(const void *)field;

        /* The shortest spelling that reads back as the same double. */
        (void)snprintf(buf, cap, "%.15g", x);
        if (strtod(buf, NULL) != x) {
            (void)snprintf(buf, cap, "%.17g", x);
        }
        return buf;
    }
    }
    assert(0 && "key_type not handled");
    return "";
}

static int set_known(struct rs_config *cfg, size_t index, const char *value, const char *origin,
                     struct rs_err *err)
{
    const struct key_spec *spec = &key_specs[index];
    union parsed parsed;
    char *new_origin;
    int rc;

    rc = check_value(spec, value, origin != NULL ? origin : "default", &parsed, err);
    if (rc != 0) {
        return rc;
    }
    store_value(cfg, spec, value, &parsed);
    new_origin = origin != NULL ? rs_xstrdup(origin) : NULL; /* may be cfg->origins[index] */
    free(cfg->origins[index]);
    cfg->origins[index] = new_origin;
    return 0;
}

/* ---- kafka.* ---- */

/* Split "kafka.[consumer.|producer.]NAME"; `key` starts with KAFKA_PREFIX. */
static int split_kafka_key(const char *key, const char *origin, enum rs_kafka_role *role,
                           const char **name, struct rs_err *err)
{
    static const struct {
        const char *word;
        enum rs_kafka_role role;
    } roles[] = { { "consumer", RS_KAFKA_CONSUMER }, { "producer", RS_KAFKA_PRODUCER } };
    const char *rest = key + strlen(KAFKA_PREFIX);
    char shown[EXCERPT_MAX + 4];

    *role = RS_KAFKA_BOTH;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        size_t len = strlen(roles[i].word);

        /* "kafka.consumer" alone is a role with its property name left out, not a property. */
        if (strncmp(rest, roles[i].word, len) == 0 && (rest[len] == '.' || rest[len] == '\0')) {
            *role = roles[i].role;
            rest += rest[len] == '.' ? len + 1 : len;
            break;
        }
    }
    if (rest[0] == '\0') {
        return rs_err_set(err, RS_ECONFIG, "%s: key '%s': no librdkafka property name after it",
                          origin, excerpt(shown, sizeof(shown), key));
    }
    for (const char *p = rest; *p != '\0'; p++) {
        if (!is_key_char(*p)) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': a property name holds only letters, digits, '.', "
                              "'_' and '-'",
                              origin, excerpt(shown, sizeof(shown), key));
        }
    }
    *name = rest;
    return 0;
}

static struct rs_kafka_prop *find_kafka(const struct rs_config *cfg, enum rs_kafka_role role,
                                        const char *name)
{
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (cfg->kafka[i].role == role && strcmp(cfg->kafka[i].name, name) == 0) {
            return &cfg->kafka[i];
        }
    }
    return NULL;
}

static int set_kafka(struct rs_config *cfg, const char *key, const char *value, const char *origin,
                     struct rs_err *err)
{
    enum rs_kafka_role role;
    struct rs_kafka_prop *prop;
    const char *name;
    char *new_origin;
    size_t at;
    int rc;

    rc = split_kafka_key(key, origin, &role, &name, err);
    if (rc != 0) {
        return rc;
    }
    if (value[0] == '\0') {
        return rs_err_set(err, RS_ECONFIG, "%s: key '%s': empty value", origin, key);
    }
    prop = find_kafka(cfg, role, name);
    if (prop != NULL) {
        char *new_value = rs_xstrdup(value); /* before the free: `value` may be prop->value */

        free(prop->value);
        prop->value = new_value;
        new_origin = rs_xstrdup(origin);
        free(prop->origin);
        prop->origin = new_origin;
        return 0;
    }
    /* Keep every RS_KAFKA_BOTH entry before the role-specific ones (config.h says why). */
    at = cfg->kafka_count;
    if (role == RS_KAFKA_BOTH) {
        at = 0;
        while (at < cfg->kafka_count && cfg->kafka[at].role == RS_KAFKA_BOTH) {
            at++;
        }
    }
    cfg->kafka = rs_xrealloc(cfg->kafka, (cfg->kafka_count + 1) * sizeof(cfg->kafka[0]));
    memmove(&cfg->kafka[at + 1], &cfg->kafka[at], (cfg->kafka_count - at) * sizeof(cfg->kafka[0]));
    cfg->kafka[at].name = rs_xstrdup(name);
    cfg->kafka[at].value = rs_xstrdup(value);
    cfg->kafka[at].role = role;
    cfg->kafka[at].origin = rs_xstrdup(origin);
    cfg->kafka_count++;
    return 0;
}

/* ---- public: lifecycle, set, validate ---- */

void rs_config_init(struct rs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->origins = rs_xcalloc(KEY_COUNT, sizeof(cfg->origins[0]));
    for (size_t i = 0; i < KEY_COUNT; i++) {
        int rc = set_known(cfg, i, key_specs[i].default_value, NULL, NULL);

        assert(rc == 0 && "a default in key_specs is out of its own range");
        (void)rc;
    }
}

void rs_config_release(struct rs_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (key_specs[i].type == KEY_STRING || key_specs[i].type == KEY_TOPIC) {
            free(*(char **)(void *)((char *)cfg + key_specs[i].offset));
        }
        if (cfg->origins != NULL) {
            free(cfg->origins[i]);
        }
    }
    free(cfg->origins);
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
        free(cfg->kafka[i].origin);
    }
    free(cfg->kafka);
    for (size_t i = 0; i < cfg->n_stage_thresholds; i++) {
        free(cfg->stage_names[i]);
    }
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/* sla.stalled_opportunity.stage.<stage> = duration: the stall threshold of one stage. */
static int set_stage(struct rs_config *cfg, const char *key, const char *value, const char *origin,
                     struct rs_err *err)
{
    const char *stage = key + strlen(STAGE_PREFIX);
    char shown[EXCERPT_MAX + 4];
    size_t i;
    int64_t ms;

    if (stage[0] == '\0') {
        return rs_err_set(err, RS_ECONFIG, "%s: key '%s': no stage name after it", origin, key);
    }
    if (rs_config_parse_duration(value, &ms) != 0 || ms < 1 || ms > 365 * MS_PER_D) {
        return rs_err_set(err, RS_ECONFIG,
                          "%s: key '%s': expected a duration from 1ms to 365d such as 14d, got "
                          "'%s'",
                          origin, excerpt(shown, sizeof(shown), key), value);
    }
    for (i = 0; i < cfg->n_stage_thresholds; i++) {
        if (strcmp(cfg->stage_names[i], stage) == 0) {
            break;
        }
    }
    if (i == cfg->n_stage_thresholds) {
        if (i == RS_CONFIG_STAGES_MAX) {
            return rs_err_set(err, RS_ECONFIG, "%s: key '%s': at most %d stages have thresholds",
                              origin, excerpt(shown, sizeof(shown), key), RS_CONFIG_STAGES_MAX);
        }
        cfg->stage_names[i] = rs_xstrdup(stage);
        cfg->n_stage_thresholds++;
    }
    cfg->stage_ms[i] = ms;
    return 0;
}

int rs_config_set(struct rs_config *cfg, const char *key, const char *value, const char *origin,
                  struct rs_err *err)
{
    int index;

    assert(origin != NULL);
    if (starts_with(key, KAFKA_PREFIX)) {
        return set_kafka(cfg, key, value, origin, err);
    }
    if (starts_with(key, STAGE_PREFIX)) {
        return set_stage(cfg, key, value, origin, err);
    }
    index = find_key(key);
    if (index < 0) {
        return unknown_key(origin, key, err);
    }
    return set_known(cfg, (size_t)index, value, origin, err);
}

const char *rs_config_origin(const struct rs_config *cfg, const char *key)
{
    const struct rs_kafka_prop *prop;
    enum rs_kafka_role role;
    const char *name;
    int index;

    if (starts_with(key, KAFKA_PREFIX)) {
        if (split_kafka_key(key, "", &role, &name, NULL) != 0) {
            return NULL;
        }
        prop = find_kafka(cfg, role, name);
        return prop != NULL ? prop->origin : NULL;
    }
    index = find_key(key);
    return index >= 0 ? cfg->origins[index] : NULL;
}

/* The origin of a known key, for messages. */
static const char *origin_of(const struct rs_config *cfg, const char *key)
{
    int index = find_key(key);

    return index >= 0 && cfg->origins[index] != NULL ? cfg->origins[index] : "default";
}

/* http.bind is "off" or HOST:PORT with a numeric port; the host is checked when binding. */
int rs_config_http_bind(const struct rs_config *cfg, char *host, size_t host_size, uint16_t *port)
{
    const char *colon = strrchr(cfg->http_bind, ':');
    uint64_t p;

    if (strcmp(cfg->http_bind, "off") == 0) {
        return RS_ENOTFOUND;
    }
    if (colon == NULL || colon == cfg->http_bind || (size_t)(colon - cfg->http_bind) >= host_size ||
        !parse_u64(colon + 1, &p) || p > 65535) {
        return RS_ECONFIG;
    }
    memcpy(host, cfg->http_bind, (size_t)(colon - cfg->http_bind));
    host[colon - cfg->http_bind] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static int check_zone(const struct rs_config *cfg, const char *key, const char *tzid,
                      struct rs_err *err)
{
    struct rs_zone *zone;
    struct rs_err zerr;

    rs_err_clear(&zerr);
    if (rs_zone_new(tzid, &zone, &zerr) != 0) {
        return rs_err_set(err, RS_ECONFIG, "%s: key '%s': %s", origin_of(cfg, key), key, zerr.msg);
    }
    rs_zone_free(zone);
    return 0;
}

int rs_config_off_or_days(const char *text, int64_t *ms)
{
    if (strcmp(text, "off") == 0 || strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (rs_config_parse_duration(text, ms) != 0 || *ms < MS_PER_D || *ms > 90 * MS_PER_D) {
        return RS_ECONFIG;
    }
    return 0;
}

/* The ledger's keys that are words, or a duration or off. */
static int validate_ledger(const struct rs_config *cfg, struct rs_err *err)
{
    static const char *const off_keys[] = { "ledger.past_due_auto_churn",
                                            "ledger.refund_void_new_business" };
    const char *off_values[] = { cfg->past_due_auto_churn, cfg->refund_void_new_business };
    const char *c = cfg->reporting_currency;
    int64_t ms;

    if (strlen(c) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c[2] < 'A' ||
        c[2] > 'Z') {
        return rs_err_set(err, RS_ECONFIG,
                          "%s: key 'currency.reporting': expected an ISO 4217 code such as USD, "
                          "got '%s'",
                          origin_of(cfg, "currency.reporting"), c);
    }
    if (strcmp(cfg->churn_recognition, "end_of_period") != 0 &&
        strcmp(cfg->churn_recognition, "at_cancel") != 0 &&
        strcmp(cfg->churn_recognition, "at_schedule") != 0) {
        return rs_err_set(err, RS_ECONFIG,
                          "%s: key 'ledger.churn_recognition': expected one of end_of_period, "
                          "at_cancel, at_schedule, got '%s'",
                          origin_of(cfg, "ledger.churn_recognition"), cfg->churn_recognition);
    }
    for (size_t i = 0; i < 2; i++) {
        if (rs_config_off_or_days(off_values[i], &ms) != 0) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': expected off or a duration from 1d to 90d, got '%s'",
                              origin_of(cfg, off_keys[i]), off_keys[i], off_values[i]);
        }
    }
    return 0;
}

/* The finance.* option words (METRICS.md §7), as finance.c names them. */
static int validate_finance_words(const struct rs_config *cfg, struct rs_err *err)
{
    const struct {
        const char *option;
        const char *value;
    } words[] = {
        { "ltv_formula", cfg->ltv_formula },
        { "magic_number_variant", cfg->magic_number_variant },
        { "cac_payback_variant", cfg->cac_payback_variant },
        { "rule_of_40_margin", cfg->rule_of_40_margin },
        { "customer_churn_formula", cfg->customer_churn_formula },
    };
    char key[64];

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (rs_finance_option(words[i].option, words[i].value) < 0) {
            (void)snprintf(key, sizeof(key), "finance.%s", words[i].option);
            return rs_err_set(err, RS_ECONFIG, "%s: key '%s': expected one of %s, got '%s'",
                              origin_of(cfg, key), key, rs_finance_option_words(words[i].option),
                              words[i].value);
        }
    }
    return 0;
}

static int validate_words(const struct rs_config *cfg, struct rs_err *err)
{
    char host[256];
    uint16_t port;
    int rc = rs_config_http_bind(cfg, host, sizeof(host), &port);

    if (rc == RS_ECONFIG) {
        return rs_err_set(err, RS_ECONFIG,
                          "%s: key 'http.bind': expected HOST:PORT such as 127.0.0.1:9464, or "
                          "off, got '%s'",
                          origin_of(cfg, "http.bind"), cfg->http_bind);
    }
    if (check_zone(cfg, "time.zone", cfg->time_zone, err) != 0 ||
        check_zone(cfg, "calendar.zone", cfg->calendar_zone, err) != 0) {
        return RS_ECONFIG;
    }
    {
        struct rs_calendar *cal;
        struct rs_err cerr;
        const char *holidays =
            strcmp(cfg->calendar_holidays, "none") == 0 ? "" : cfg->calendar_holidays;

        rs_err_clear(&cerr);
        if (rs_calendar_new("business", cfg->calendar_zone, cfg->calendar_hours, holidays, &cal,
                            &cerr) != 0) {
            /* The calendar's message names the bad part; say which keys hold it. */
            return rs_err_set(err, RS_ECONFIG, "%s: key 'calendar.hours' / 'calendar.holidays': %s",
                              origin_of(cfg, "calendar.hours"), cerr.msg);
        }
        rs_calendar_free(cal);
    }
    if (strcmp(cfg->onboarding_start, "handoff_completed") != 0 &&
        strcmp(cfg->onboarding_start, "opportunity_won") != 0) {
        return rs_err_set(err, RS_ECONFIG,
                          "%s: key 'metrics.onboarding_start': expected one of handoff_completed, "
                          "opportunity_won, got '%s'",
                          origin_of(cfg, "metrics.onboarding_start"), cfg->onboarding_start);
    }
    rc = validate_ledger(cfg, err);
    return rc != 0 ? rc : validate_finance_words(cfg, err);
}

int rs_config_validate(const struct rs_config *cfg, struct rs_err *err)
{
    char buf[32];
    size_t topics[4];
    size_t topic_count = 0;
    union parsed parsed;
    int rc;

    /* Fields may have been written directly, so every range is checked again here. */
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *origin = cfg->origins[i] != NULL ? cfg->origins[i] : "default";

        rc = check_value(&key_specs[i], format_value(cfg, &key_specs[i], buf, sizeof(buf)), origin,
                         &parsed, err);
        if (rc != 0) {
            return rc;
        }
        if (key_specs[i].type == KEY_TOPIC) {
            assert(topic_count < sizeof(topics) / sizeof(topics[0]));
            topics[topic_count++] = i;
        }
    }
    /* Alerts written to the input topic, or dead letters fed back in, would loop forever. */
    for (size_t a = 0; a < topic_count; a++) {
        for (size_t b = a + 1; b < topic_count; b++) {
            const struct key_spec *first = &key_specs[topics[a]];
            const struct key_spec *second = &key_specs[topics[b]];
            const char *name = string_field(cfg, first);
            const char *first_origin = cfg->origins[topics[a]];
            const char *second_origin = cfg->origins[topics[b]];

            if (strcmp(name, string_field(cfg, second)) != 0) {
                continue;
            }
            if (second_origin == NULL) {
                /* Report at the key that was set: the default cannot be the mistake. */
                const struct key_spec *swap_spec = first;

                first = second;
                second = swap_spec;
                second_origin = first_origin;
                first_origin = NULL;
            }
            return rs_err_set(err, RS_ECONFIG,
                              "%s: key '%s': topic '%s' is already used by key '%s' (%s); "
                              "topic.events, topic.alerts, topic.dlq and topic.metrics must differ",
                              second_origin != NULL ? second_origin : "default", second->name, name,
                              first->name, first_origin != NULL ? first_origin : "default");
        }
    }
    return validate_words(cfg, err);
}

/* ---- public: load ---- */

/* A growable line buffer that never holds more than LINE_MAX_BYTES. */
struct line_buf {
    char *data;
    size_t len;
    size_t cap;
    bool has_nul;
};

/* Returned by read_line() for a line over LINE_MAX_BYTES; positive, so never an error code. */
#define LINE_TOO_LONG 2

/*
 * Read one line without its '\n' into lb (NUL-terminated).
 * Returns 1 for a line, 0 at the end of the file, LINE_TOO_LONG, or -errno for a read error.
 */
static int read_line(FILE *fp, struct line_buf *lb)
{
    int c;

    lb->len = 0;
    lb->has_nul = false;
    while ((c = getc(fp)) != EOF && c != '\n') {
        if (lb->len == LINE_MAX_BYTES) {
            return LINE_TOO_LONG;
        }
        if (lb->len + 2 > lb->cap) {
            lb->cap = lb->cap == 0 ? 256 : lb->cap * 2;
            lb->data = rs_xrealloc(lb->data, lb->cap);
        }
        if (c == '\0') {
            lb->has_nul = true;
        }
        lb->data[lb->len++] = (char)c;
    }
    if (c == EOF && ferror(fp)) {
        return errno != 0 ? -errno : RS_EIO;
    }
    if (c == EOF && lb->len == 0) {
        return 0;
    }
    if (lb->data == NULL) {
        lb->cap = 256;
        lb->data = rs_xmalloc(lb->cap);
    }
    lb->data[lb->len] = '\0';
    return 1;
}

/* What the loader keeps between lines of one file. */
struct load_ctx {
    struct rs_config *cfg;
    const char *path;
    size_t line_no;
    size_t set_at[KEY_COUNT]; /* line where each key outside kafka. was set; 0: not in this file */
    struct rs_err *err;
};

/* Remove white space at both ends of [s, s + len), in place. */
static char *trim(char *s, size_t len)
{
    while (len > 0 && is_blank(s[len - 1])) {
        len--;
    }
    s[len] = '\0';
    while (is_blank(*s)) {
        s++;
    }
    return s;
}

static int bad_line(const struct load_ctx *ctx, const char *line)
{
    char shown[EXCERPT_MAX + 4];
    size_t len = 0;

    if (!is_secret_name(line)) {
        return rs_err_set(ctx->err, RS_ECONFIG, "%s:%zu: expected 'key = value', got '%s'",
                          ctx->path, ctx->line_no, excerpt(shown, sizeof(shown), line));
    }
    /* The line may hold a password with its '=' mistyped: quote only the key-like start. */
    while (len < EXCERPT_MAX && is_key_char(line[len])) {
        shown[len] = line[len];
        len++;
    }
    shown[len] = '\0';
    return rs_err_set(ctx->err, RS_ECONFIG,
                      "%s:%zu: expected 'key = value', got '%s...' (rest not shown: it may hold "
                      "a secret)",
                      ctx->path, ctx->line_no, shown);
}

static int parse_line(struct load_ctx *ctx, char *line, size_t len)
{
    char origin[32];
    char *full_origin;
    char *eq;
    char *key_end;
    char *key;
    char *value;
    size_t value_len;
    int index;
    int rc;

    /* A UTF-8 byte order mark, as some Windows editors write, is not part of the first key. */
    if (ctx->line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    line = trim(line, len);
    if (line[0] == '\0' || line[0] == '#') {
        return 0;
    }
    eq = strchr(line, '=');
    if (eq == NULL || eq == line) {
        return bad_line(ctx, line);
    }
    key_end = eq;
    while (is_blank(key_end[-1])) {
        key_end--; /* stops at line[0], which trim() left non-blank */
    }
    for (const char *p = line; p < key_end; p++) {
        if (!is_key_char(*p)) {
            return bad_line(ctx, line); /* "a b = c", "[section]", "key: value = x" */
        }
    }
    key = line;
    *key_end = '\0';
    value = trim(eq + 1, strlen(eq + 1));
    value_len = strlen(value);
    (void)snprintf(origin, sizeof(origin), ":%zu", ctx->line_no);
    full_origin = concat(ctx->path, origin);
    if (value[0] == '"') {
        if (value_len < 2 || value[value_len - 1] != '"') {
            rc = rs_err_set(ctx->err, RS_ECONFIG, "%s: key '%s': value has no closing '\"'",
                            full_origin, key);
            goto out;
        }
        value[value_len - 1] = '\0';
        value++;
    }
    if (starts_with(key, KAFKA_PREFIX)) {
        rc = set_kafka(ctx->cfg, key, value, full_origin, ctx->err);
        goto out;
    }
    if (starts_with(key, STAGE_PREFIX)) {
        rc = set_stage(ctx->cfg, key, value, full_origin, ctx->err);
        goto out;
    }
    index = find_key(key);
    if (index < 0) {
        rc = unknown_key(full_origin, key, ctx->err);
        goto out;
    }
    if (ctx->set_at[index] != 0) {
        rc = rs_err_set(ctx->err, RS_ECONFIG,
                        "%s: key '%s': already set on line %zu (only kafka.* and per-stage keys "
                        "may repeat)",
                        full_origin, key, ctx->set_at[index]);
        goto out;
    }
    rc = set_known(ctx->cfg, (size_t)index, value, full_origin, ctx->err);
    if (rc == 0) {
        ctx->set_at[index] = ctx->line_no;
    }
out:
    free(full_origin);
    return rc;
}

static int load_file(struct rs_config *cfg, const char *path, struct rs_err *err)
{
    struct load_ctx ctx = { .cfg = cfg, .path = path, .err = err };
    struct line_buf lb = { 0 };
    FILE *fp;
    int rc;

    fp = fopen(path, "r");
    if (fp == NULL) {
        rc = errno != 0 ? -errno : RS_EIO;
        return rs_err_set(err, rc, "cannot read config '%s': %s", path, rs_strerror(rc));
    }
    for (;;) {
        ctx.line_no++;
        rc = read_line(fp, &lb);
        if (rc == 0) {
            break;
        }
        if (rc == LINE_TOO_LONG) {
            rc = rs_err_set(err, RS_ECONFIG, "%s:%zu: line longer than %d bytes", path, ctx.line_no,
                            LINE_MAX_BYTES);
            break;
        }
        if (rc < 0) {
            rc = rs_err_set(err, rc, "cannot read config '%s': %s", path, rs_strerror(rc));
            break;
        }
        if (lb.has_nul) {
            rc = rs_err_set(err, RS_ECONFIG, "%s:%zu: NUL byte in line (not a text file?)", path,
                            ctx.line_no);
            break;
        }
        rc = parse_line(&ctx, lb.data, lb.len);
        if (rc != 0) {
            break;
        }
    }
    free(lb.data);
    (void)fclose(fp); /* read-only: a failed close loses nothing */
    return rc;
}

static bool is_env_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof(env_reserved) / sizeof(env_reserved[0]); i++) {
        if (strcmp(name, env_reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int unknown_env(const char *origin, const char *name, struct rs_err *err)
{
    char shown[EXCERPT_MAX + 4];
    size_t best = SIZE_MAX;
    char *found = NULL;
    int rc;

    for (size_t i = 0; i < KEY_COUNT; i++) {
        char *candidate = env_name_of(key_specs[i].name);

        if (is_near(name, candidate, &best)) {
            free(found);
            found = candidate;
        } else {
            free(candidate);
        }
    }
    for (size_t i = 0; i < sizeof(env_reserved) / sizeof(env_reserved[0]); i++) {
        if (is_near(name, env_reserved[i], &best)) {
            free(found);
            found = rs_xstrdup(env_reserved[i]);
        }
    }
    excerpt(shown, sizeof(shown), name);
    if (found == NULL) {
        return rs_err_set(err, RS_ECONFIG,
                          "%s: unknown variable '%s' (names no config key; kafka properties "
                          "are REVSTREAM_KAFKA_*)",
                          origin, shown);
    }
    rc = rs_err_set(err, RS_ECONFIG, "%s: unknown variable '%s'; did you mean '%s'?", origin, shown,
                    found);
    free(found);
    return rc;
}

/* Apply one REVSTREAM_* variable; `name` is its name alone. */
static int load_env_var(struct rs_config *cfg, const char *name, const char *value,
                        struct rs_err *err)
{
    char *origin = concat("env ", name);
    char *key = NULL;
    int index = -1;
    int rc;

    if (starts_with(name, ENV_KAFKA_PREFIX)) {
        key = concat(KAFKA_PREFIX, name + strlen(ENV_KAFKA_PREFIX));
        for (char *p = key + strlen(KAFKA_PREFIX); *p != '\0'; p++) {
            *p = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        }
        rc = set_kafka(cfg, key, value, origin, err);
        goto out;
    }
    for (size_t i = 0; i < KEY_COUNT && index < 0; i++) {
        char *candidate = env_name_of(key_specs[i].name);

        if (strcmp(name, candidate) == 0) {
            index = (int)i;
        }
        free(candidate);
    }
    if (index < 0) {
        rc = unknown_env(origin, name, err);
        goto out;
    }
    rc = set_known(cfg, (size_t)index, value, origin, err);
out:
    free(key);
    free(origin);
    return rc;
}

static int load_env(struct rs_config *cfg, char *const *envp, struct rs_err *err)
{
    for (char *const *entry = envp; *entry != NULL; entry++) {
        const char *eq = strchr(*entry, '=');
        char *name;
        int rc;

        if (!starts_with(*entry, ENV_PREFIX) || eq == NULL) {
            continue;
        }
        name = rs_xstrndup(*entry, (size_t)(eq - *entry));
        rc = is_env_reserved(name) ? 0 : load_env_var(cfg, name, eq + 1, err);
        free(name);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int rs_config_load(struct rs_config *cfg, const char *path, char *const *envp, struct rs_err *err)
{
    int rc;

    free(cfg->path);
    cfg->path = path != NULL ? rs_xstrdup(path) : NULL;
    if (path != NULL) {
        rc = load_file(cfg, path, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (envp != NULL) {
        rc = load_env(cfg, envp, err);
        if (rc != 0) {
            return rc;
        }
    }
    return rs_config_validate(cfg, err);
}

/* ---- public: print ---- */

/* Quote what the loader would otherwise trim or take for an unclosed quote. */
static void print_pair(FILE *fp, const char *key_prefix, const char *key, const char *value)
{
    size_t len = strlen(value);
    bool quote = len == 0 || is_blank(value[0]) || is_blank(value[len - 1]) || value[0] == '"';

    (void)fprintf(fp, quote ? "%s%s = \"%s\"\n" : "%s%s = %s\n", key_prefix, key, value);
}

void rs_config_print(const struct rs_config *cfg, void *out)
{
    static const char *const role_prefix[] = {
        [RS_KAFKA_BOTH] = KAFKA_PREFIX,
        [RS_KAFKA_CONSUMER] = KAFKA_PREFIX "consumer.",
        [RS_KAFKA_PRODUCER] = KAFKA_PREFIX "producer.",
    };
    FILE *fp = out;
    char buf[32];

    for (size_t i = 0; i < KEY_COUNT; i++) {
        print_pair(fp, "", key_specs[i].name, format_value(cfg, &key_specs[i], buf, sizeof(buf)));
    }
    for (size_t i = 0; i < cfg->n_stage_thresholds; i++) {
        print_pair(fp, STAGE_PREFIX, cfg->stage_names[i],
                   format_duration(buf, sizeof(buf), cfg->stage_ms[i]));
    }
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        const struct rs_kafka_prop *prop = &cfg->kafka[i];

        print_pair(fp, role_prefix[prop->role], prop->name,
                   is_secret_name(prop->name) ? "***" : prop->value);
    }
}
