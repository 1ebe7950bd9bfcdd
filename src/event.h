/*
 * event.h - the wire codec: msgpack bytes <-> typed events and alerts.
 *
 * Decoding turns one Kafka payload (a msgpack map, schemas/envelope.json plus the type's own
 * schema) into a struct rs_event without a heap allocation per event: strings are views into
 * the payload, and msgpack-c's object tree lives in a zone that the decoder reuses. Unknown
 * keys are ignored (forward compatible). A bad message yields RS_EDECODE, a fault class (the
 * dead-letter reason) and a message naming the field and the problem.
 *
 * Encoding writes alerts (schemas/alert.json) as msgpack maps into a caller-owned buffer.
 *
 * Not here: what an event means (sla.c), where it came from (kafka_io.c).
 * Threads: a decoder belongs to one thread; the functions keep no global state.
 * This is the only module that includes msgpack.h; keep in sync with schemas/.
 */
#ifndef RS_EVENT_H
#define RS_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

/* Longest identifier (id, lead_id, account, ...) accepted; longer ones are bad_value. Keep in
 * sync with RS_TIMER_ENTITY_MAX (timer.h) and maxLength in schemas/. */
#define RS_EVENT_ID_MAX 256

/* Latest event time accepted: 9999-12-31T23:59:59.999Z. A microsecond or nanosecond time sent
 * as milliseconds lands far beyond it and would drag a partition's watermark years ahead. */
#define RS_EVENT_TS_MAX UINT64_C(253402300799999)

/* A borrowed, not NUL-terminated string. */
struct rs_str {
    const char *ptr;
    size_t len;
};

#define RS_STR_NULL ((struct rs_str){ NULL, 0 })

static inline bool rs_str_is_set(struct rs_str s)
{
    return s.ptr != NULL;
}

/* Keep in sync with rs_event_type_name() and schemas/. */
enum rs_event_type {
    RS_EV_LEAD_CREATED,
    RS_EV_LEAD_TOUCHED,
    RS_EV_LEAD_DISQUALIFIED,
    RS_EV_LEAD_CONVERTED,
    RS_EV_LEAD_MERGED,
    RS_EV_LEAD_ASSIGNED,
    RS_EV_LEAD_QUALIFIED,
    RS_EV_LEAD_RECYCLED,
    RS_EV_LEAD_REOPENED,
    RS_EV_OPP_CREATED,
    RS_EV_OPP_STAGE_CHANGED,
    RS_EV_OPP_CLOSED,
    RS_EV_OPP_REOPENED,
    RS_EV_HANDOFF_STARTED,
    RS_EV_HANDOFF_COMPLETED,
    RS_EV_ONBOARDING_MILESTONE,
    RS_EV_ONBOARDING_PAUSED,
    RS_EV_ONBOARDING_RESUMED,
    RS_EV_REP_ONBOARDED,
    RS_EV_REP_QUOTA_SET,
    RS_EV_REP_TERMINATED,
    RS_EV_SUB_STARTED, /* subscription.*: one struct rs_subscription for all six */
    RS_EV_SUB_RENEWED,
    RS_EV_SUB_EXPANDED,
    RS_EV_SUB_CONTRACTED,
    RS_EV_SUB_CHURNED,
    RS_EV_SUB_REACTIVATED,
    RS_EV_INVOICE_PAID, /* invoice.*: struct rs_invoice */
    RS_EV_INVOICE_REFUNDED,
    RS_EV_INVOICE_PAYMENT_FAILED,
    RS_EV_SPEND_RECORDED,
    RS_EV_FORECAST_SUBMITTED,
    RS_EV_FINANCIALS_REPORTED,
    RS_EV_FX_RATE,
    RS_EV__COUNT
};

enum rs_intent_tier { RS_TIER_HIGH, RS_TIER_MQL, RS_TIER_LOW, RS_TIER__COUNT };
enum rs_actor_type { RS_ACTOR_HUMAN, RS_ACTOR_AUTOMATION };
enum rs_direction { RS_DIR_OUTBOUND, RS_DIR_INBOUND };
enum rs_touch_channel {
    RS_CH_CALL,
    RS_CH_EMAIL,
    RS_CH_SMS,
    RS_CH_CHAT,
    RS_CH_MEETING,
    RS_CH_SOCIAL
};

enum rs_qual_stage { RS_QUAL_MQL, RS_QUAL_SAL, RS_QUAL_SQL, RS_QUAL__COUNT }; /* "MQL", ... */
enum rs_deal_type { RS_DEAL_NEW, RS_DEAL_EXPANSION, RS_DEAL_RENEWAL, RS_DEAL__COUNT };
enum rs_outcome { RS_OUTCOME_WON, RS_OUTCOME_LOST };
enum rs_milestone {
    RS_MS_KICKOFF,
    RS_MS_CONFIGURED,
    RS_MS_INTEGRATED,
    RS_MS_GO_LIVE,
    RS_MS_FIRST_VALUE,
    RS_MS__COUNT
};

/* subscription.* */
enum rs_billing_interval { /* "day", "week", "month", "quarter", "semi_annual", "year" */
                           RS_BILL_DAY,
                           RS_BILL_WEEK,
                           RS_BILL_MONTH,
                           RS_BILL_QUARTER,
                           RS_BILL_SEMI_ANNUAL,
                           RS_BILL_YEAR,
                           RS_BILL__COUNT
};
enum rs_sub_status { /* "trialing", "active", "past_due", "canceled", "unpaid" */
                     RS_SUB_TRIALING,
                     RS_SUB_ACTIVE,
                     RS_SUB_PAST_DUE,
                     RS_SUB_CANCELED,
                     RS_SUB_UNPAID,
                     RS_SUB__COUNT
};
enum rs_discount_duration { RS_DISCOUNT_FOREVER, RS_DISCOUNT_FINITE };     /* "forever", "finite" */
enum rs_refund_type { RS_REFUND_NONE, RS_REFUND_FULL, RS_REFUND_PARTIAL }; /* -, "full", ... */
/* spend.recorded */
enum rs_spend_function { RS_FN_SALES, RS_FN_MARKETING }; /* "sales", ... */
enum rs_spend_category { /* "salaries", "commissions", "programs", "tools", "other" */
                         RS_SPEND_SALARIES,
                         RS_SPEND_COMMISSIONS,
                         RS_SPEND_PROGRAMS,
                         RS_SPEND_TOOLS,
                         RS_SPEND_OTHER
};
enum rs_spend_allocation {
    RS_ALLOC_NEW_LOGO,
    RS_ALLOC_EXPANSION,
    RS_ALLOC_SHARED
}; /* new_logo.. */
/* forecast.submitted */
enum rs_forecast_scope { RS_SCOPE_COMPANY, RS_SCOPE_TEAM, RS_SCOPE_REP }; /* "company", ... */
enum rs_forecast_measure { /* "net_new_arr", "bookings", "ending_arr" */
                           RS_MEASURE_NET_NEW_ARR,
                           RS_MEASURE_BOOKINGS,
                           RS_MEASURE_ENDING_ARR
};
enum rs_forecast_category { RS_FC_COMMIT, RS_FC_BEST_CASE, RS_FC_PIPELINE }; /* "commit", .. */

/*
 * A reporting period named by a string: "YYYY-MM" (a month), "YYYY-Qn" (a calendar quarter)
 * or "YYYY" (a year), year 1970..9999. Where it starts in time is the reader's business (the
 * reporting zone, calendar.h); the decoder only parses it.
 */
struct rs_period {
    struct rs_str text;
    uint16_t year;
    uint8_t first_month; /* 1..12 */
    uint8_t months;      /* 1, 3 or 12 */
};

/* Longest ramp schedule of rep.quota_set (months). */
#define RS_RAMP_MAX 24

/* Largest percent in a ramp schedule; keep in sync with schemas/rep.quota_set.json. */
#define RS_RAMP_PCT_MAX 1000

/* Why a message was rejected; its name is the dead letter's reason header. */
enum rs_event_fault {
    RS_FAULT_NONE,
    RS_FAULT_MSGPACK,       /* "invalid_msgpack": not one complete msgpack object */
    RS_FAULT_NOT_MAP,       /* "not_a_map": valid msgpack, but not a map with string keys */
    RS_FAULT_MISSING_FIELD, /* "missing_field" */
    RS_FAULT_WRONG_TYPE,    /* "wrong_type": a field of the wrong msgpack type */
    RS_FAULT_BAD_VALUE,     /* "bad_value": right type, value outside its enum or range */
    RS_FAULT_UNKNOWN_TYPE,  /* "unknown_type": `type` names no event we know */
    RS_FAULT_TOO_LARGE,     /* "too_large": payload over the configured limit */
    RS_FAULT__COUNT
};

struct rs_lead_created {
    struct rs_str lead_id;
    struct rs_str channel; /* lead source: demo_request, webinar, ... */
    enum rs_intent_tier intent_tier;
    struct rs_str segment;
    struct rs_str owner_id; /* optional */
};

struct rs_lead_touched {
    struct rs_str lead_id;
    struct rs_str rep_id;
    enum rs_actor_type actor_type;
    enum rs_touch_channel channel;
    enum rs_direction direction;
    bool connected;
};

/* lead.disqualified; reason required. */
struct rs_lead_disqualified {
    struct rs_str lead_id;
    struct rs_str reason;
};

struct rs_lead_converted {
    struct rs_str lead_id;
    struct rs_str account_id;
    struct rs_str contact_id;
    struct rs_str opportunity_id; /* optional */
};

struct rs_lead_merged {
    struct rs_str lead_id;      /* the record merged away */
    struct rs_str into_lead_id; /* the survivor */
    struct rs_str reason;       /* optional */
};

/* lead.assigned */
struct rs_lead_assigned {
    struct rs_str lead_id;
    struct rs_str owner_id;
    struct rs_str queue; /* optional */
};

/* lead.qualified */
struct rs_lead_qualified {
    struct rs_str lead_id;
    enum rs_qual_stage stage;
    struct rs_str qualified_by; /* optional */
};

/* lead.recycled and lead.reopened; reason optional. */
struct rs_lead_lifecycle {
    struct rs_str lead_id;
    struct rs_str reason;
};

/* opportunity.created; account_id defaults to the envelope's account. */
struct rs_opp_created {
    struct rs_str opportunity_id;
    struct rs_str account_id;
    struct rs_str lead_id; /* optional */
    struct rs_str owner_id;
    enum rs_deal_type deal_type;
    int64_t amount_minor;   /* ACV, >= 0 */
    struct rs_str currency; /* ISO 4217: three upper-case letters */
    struct rs_str stage;
    struct rs_str segment; /* optional */
    struct rs_str team_id; /* optional */
};

/* opportunity.stage_changed */
struct rs_opp_stage_changed {
    struct rs_str opportunity_id;
    struct rs_str from_stage;
    struct rs_str to_stage;
    struct rs_str forecast_category; /* optional */
    int64_t amount_minor;            /* valid when has_amount */
    bool has_amount;
};

/* opportunity.closed; close_date defaults to the envelope's ts. */
struct rs_opp_closed {
    struct rs_str opportunity_id;
    enum rs_outcome outcome;
    int64_t amount_minor; /* ACV, >= 0 */
    int64_t tcv_minor;    /* valid when has_tcv */
    bool has_tcv;
    struct rs_str currency;    /* ISO 4217 */
    struct rs_str loss_reason; /* optional */
    int64_t close_date_ms;
    struct rs_str owner_id;      /* optional: the credited rep, else the opportunity's owner */
    enum rs_deal_type deal_type; /* valid when has_deal_type, else the opportunity's */
    bool has_deal_type;
};

/* opportunity.reopened */
struct rs_opp_reopened {
    struct rs_str opportunity_id;
    struct rs_str reason; /* optional */
};

/* handoff.started and handoff.completed; account_id defaults to the envelope's account. */
struct rs_handoff {
    struct rs_str account_id;
    struct rs_str opportunity_id;
    struct rs_str ae_id;  /* optional */
    struct rs_str csm_id; /* optional: a handoff without one is not completed (missing_csm) */
    bool checklist_complete;
    struct rs_str segment; /* optional: smb, mid_market, enterprise (SLA-05 threshold) */
};

/* onboarding.milestone */
struct rs_onboarding_milestone {
    struct rs_str account_id;
    enum rs_milestone milestone;
    struct rs_str status; /* optional, e.g. "completed" */
};

/* onboarding.paused and onboarding.resumed; account_id defaults to the envelope's account. */
struct rs_onboarding_pause {
    struct rs_str account_id;
    struct rs_str reason; /* optional for resumed; e.g. waiting_on_customer */
};

/* rep.onboarded */
struct rs_rep_onboarded {
    struct rs_str rep_id;
    int64_t start_date_ms; /* defaults to ts */
    struct rs_str role;    /* optional */
    struct rs_str segment; /* optional */
    struct rs_str team_id; /* optional */
};

/* rep.quota_set: the rep's full (unramped) quota per month from `period` on. */
struct rs_rep_quota_set {
    struct rs_str rep_id;
    struct rs_str period;           /* "YYYY-MM": first month the quota applies to */
    int64_t period_start_ms;        /* that month's first instant, UTC */
    int64_t quota_minor;            /* full monthly quota, > 0 */
    struct rs_str currency;         /* ISO 4217 */
    uint32_t ramp_n;                /* ramp_schedule: percent of full quota in tenure months 1..n */
    uint16_t ramp_pct[RS_RAMP_MAX]; /* 0..RS_RAMP_PCT_MAX, which does not fit uint8_t */
};

/* rep.terminated */
struct rs_rep_terminated {
    struct rs_str rep_id;
    struct rs_str reason; /* optional */
};

/*
 * subscription.started/renewed/expanded/contracted/churned/reactivated. The type is a label
 * and advisory (METRICS.md §2): the ledger classifies movements from customer-level MRR
 * before and after, and counts a label that disagrees as a consistency failure.
 * MRR: mrr_after_minor when given (already normalised to a month, after permanent
 * discounts); otherwise the ledger normalises price_minor x quantity - discount_minor per
 * billing_interval (METRICS.md §1.4). One of the two must be present. account_id defaults to
 * the envelope's account.
 */
struct rs_subscription {
    struct rs_str subscription_id;
    struct rs_str account_id;
    struct rs_str plan; /* optional */
    int64_t quantity;   /* >= 0; default 1 */
    enum rs_billing_interval interval;
    int64_t mrr_after_minor; /* >= 0; valid when has_mrr_after */
    bool has_mrr_after;
    int64_t mrr_before_minor; /* >= 0; optional, advisory; valid when has_mrr_before */
    bool has_mrr_before;
    int64_t price_minor; /* >= 0; recurring price per interval and unit; when has_price */
    bool has_price;
    int64_t discount_minor;                      /* >= 0; per interval, 0 when absent */
    enum rs_discount_duration discount_duration; /* default forever */
    struct rs_str currency;                      /* ISO 4217 */
    int64_t service_period_start_ms;             /* defaults to ts */
    int64_t service_period_end_ms;               /* valid when has_period_end; > start */
    bool has_period_end;
    enum rs_sub_status status;
    int64_t cancel_at_ms; /* when has_cancel_at: a scheduled cancellation */
    bool has_cancel_at;
};

/* invoice.paid / refunded / payment_failed. account_id defaults to the envelope's account. */
struct rs_invoice {
    struct rs_str invoice_id;
    struct rs_str account_id;
    struct rs_str subscription_id; /* optional */
    int64_t amount_minor;          /* >= 0 */
    struct rs_str currency;
    enum rs_refund_type refund_type; /* required for refunded, else RS_REFUND_NONE */
    struct rs_str reason;            /* optional */
};

/* spend.recorded: S&M spend over [period_start, period_end), prorated by days. */
struct rs_spend {
    struct rs_str spend_id; /* optional */
    int64_t period_start_ms;
    int64_t period_end_ms; /* > period_start */
    enum rs_spend_function function;
    enum rs_spend_category category;
    enum rs_spend_allocation allocation;
    int64_t amount_minor; /* any sign: a credit reduces the sum (METRICS.md M07) */
    struct rs_str currency;
};

/* forecast.submitted */
struct rs_forecast {
    struct rs_str forecast_id;
    enum rs_forecast_scope scope;
    struct rs_str scope_id; /* required for team and rep, optional for company */
    struct rs_period period;
    enum rs_forecast_measure measure;
    enum rs_forecast_category category;
    int64_t amount_minor; /* any sign (net new ARR can be negative) */
    struct rs_str currency;
    int64_t as_of_ms; /* defaults to ts */
};

/* financials.reported: the period's figures; the latest report of a period wins. */
struct rs_financials {
    struct rs_period period;
    int64_t revenue_minor; /* required, any sign */
    struct rs_str currency;
    double gross_margin_pct; /* -100..100 when has_gross_margin */
    bool has_gross_margin;
    int64_t ebitda_minor; /* when has_ebitda */
    bool has_ebitda;
    int64_t free_cash_flow_minor; /* when has_fcf */
    bool has_fcf;
    int64_t operating_income_minor; /* when has_operating_income */
    bool has_operating_income;
};

/* fx.rate: one unit of `currency` is `rate` units of the reporting currency on `date`
 * (its daily close). */
struct rs_fx_rate {
    struct rs_str currency;
    double rate;     /* finite, > 0 */
    int64_t date_ms; /* the day's start, UTC ("YYYY-MM-DD" or a time, truncated to its day) */
};

struct rs_event {
    enum rs_event_type type;
    struct rs_str id;        /* required: idempotency key */
    int64_t ts_ms;           /* required: event time, ms since the Unix epoch */
    struct rs_str account;   /* optional */
    struct rs_str tenant;    /* optional */
    struct rs_str source;    /* optional: source system */
    struct rs_str source_id; /* optional: id in the source system */
    int64_t seq;             /* optional: per-entity sequence; valid when has_seq */
    bool has_seq;
    union {
        struct rs_lead_created lead_created;
        struct rs_lead_touched lead_touched;
        struct rs_lead_disqualified lead_disqualified;
        struct rs_lead_converted lead_converted;
        struct rs_lead_merged lead_merged;
        struct rs_lead_assigned lead_assigned;
        struct rs_lead_qualified lead_qualified;
        struct rs_lead_lifecycle lead_lifecycle; /* recycled, reopened */
        struct rs_opp_created opp_created;
        struct rs_opp_stage_changed opp_stage_changed;
        struct rs_opp_closed opp_closed;
        struct rs_opp_reopened opp_reopened;
        struct rs_handoff handoff; /* started, completed */
        struct rs_onboarding_milestone onboarding_milestone;
        struct rs_onboarding_pause onboarding_pause; /* paused, resumed */
        struct rs_rep_onboarded rep_onboarded;
        struct rs_rep_quota_set rep_quota_set;
        struct rs_rep_terminated rep_terminated;
        struct rs_subscription subscription; /* subscription.* */
        struct rs_invoice invoice;           /* invoice.* */
        struct rs_spend spend;
        struct rs_forecast forecast;
        struct rs_financials financials;
        struct rs_fx_rate fx_rate;
    } u;
};

/* Reusable decoding state: owns the msgpack zone that decoded events borrow from. */
struct rs_event_decoder {
    void *zone; /* msgpack_zone *, opaque here so that callers need no msgpack.h */
    size_t max_bytes;
    bool two_pass; /* false (the default): try the one pass first; tests compare the two ways */
};

/*
 * Prepare `dec`; payloads over max_bytes are rejected with RS_FAULT_TOO_LARGE.
 * Out of memory aborts. In steady state a decode allocates nothing: the zone keeps its first
 * 8 KiB chunk, which holds the object tree of any ordinary event.
 */
void rs_event_decoder_init(struct rs_event_decoder *dec, size_t max_bytes);

/* Free the zone. NULL allowed, and so is a second release. */
void rs_event_decoder_release(struct rs_event_decoder *dec);

/*
 * Decode one payload into *ev.
 * Returns 0 (and *fault = RS_FAULT_NONE), or RS_EDECODE with *fault set and err naming the
 * field and problem, for example
 *   field 'intent_tier': expected one of high, mql, low, got 'urgent'
 * fault and err may be NULL. Rules the schemas cannot say on their own:
 * - the payload must be exactly one complete msgpack object: truncated input, trailing bytes
 *   after the map, an array or map count larger than the bytes left, or nesting deeper than
 *   msgpack-c's 32 levels are all RS_FAULT_MSGPACK;
 * - a duplicate key: the last value wins;
 * - nil for an optional field means absent, nil for a required field is RS_FAULT_MISSING_FIELD;
 * - identifiers (`id`, `account`, `tenant`, `source`, `source_id` and every `*_id`) must be
 *   non-empty when present; other strings (channel, segment, reason) may be empty;
 * - enum values match exactly (case-sensitive, no trimming); str payloads are not checked for
 *   UTF-8;
 * - `ts` is a positive integer in ms, or a timestamp extension (-1) truncated to whole ms;
 * - lead.converted, opportunity.created, handoff.* and onboarding.*: `account_id` defaults to
 *   the envelope's `account` (METRICS.md §2), one of them must be present, and two different
 *   values are RS_FAULT_BAD_VALUE;
 * - `close_date` and `start_date` take the same forms as `ts` and default to it;
 * - revenue events: subscription.* and invoice.* take `account_id` like lead.converted above;
 *   `cancel_at` and `as_of` take the forms of `ts`; service_period_start/end, period_start/end
 *   and `date` also take a day "YYYY-MM-DD" (its UTC midnight, 1970-01-01..9999-12-31);
 *   service_period_start and as_of default to ts; an fx.rate `date` is cut to its UTC day;
 *   an end must be after its start; a subscription needs mrr_after_minor or price_minor (else
 *   missing_field naming mrr_after_minor), quantity defaults to 1; invoice.refunded needs
 *   refund_type, the other invoice types ignore it; a team or rep forecast needs scope_id;
 *   `period` of forecast.submitted is "YYYY-MM" or "YYYY-Qn", of financials.reported also
 *   "YYYY"; spend, forecast and financials money may be negative; gross_margin_pct (int or
 *   float) is in -100..100 and fx `rate` (int or float) finite and > 0;
 * - money (`*_minor`) is an integer: amounts >= 0, quota_minor > 0; `currency` is exactly three
 *   ASCII upper-case letters; `period` is "YYYY-MM" (year 1970..9999, month 01..12);
 *   `ramp_schedule` (optional) is an array of at most RS_RAMP_MAX integers in
 *   0..RS_RAMP_PCT_MAX (absent or empty means no ramp); anything else in range or size is
 * RS_FAULT_BAD_VALUE. On failure the contents of *ev are unspecified (partly this payload, partly
 * the last). Ownership: the strings in *ev borrow `data` and the decoder's zone; both stay valid
 * until the next rs_event_decode() on this decoder or until `data` is freed, whichever comes first.
 * (Today they point into `data` only, since msgpack-c does not copy str payloads; do not rely
 * on that.)
 */
int rs_event_decode(struct rs_event_decoder *dec, const void *data, size_t len, struct rs_event *ev,
                    enum rs_event_fault *fault, struct rs_err *err);

/* msgpack-c's version string, for `revstream version`. */
const char *rs_event_msgpack_version(void);

/* "lead.created", ...; NULL outside the enum. */
const char *rs_event_type_name(enum rs_event_type type);

/* "high", "mql", "low"; NULL outside the enum. */
const char *rs_intent_tier_name(enum rs_intent_tier tier);

/* "human", "automation"; NULL outside the enum. */
const char *rs_actor_type_name(enum rs_actor_type actor);

/* "outbound", "inbound"; NULL outside the enum. */
const char *rs_direction_name(enum rs_direction direction);

/* "call", "email", "sms", "chat", "meeting", "social"; NULL outside the enum. */
const char *rs_touch_channel_name(enum rs_touch_channel channel);

/* "MQL", "SAL", "SQL"; "new", "expansion", "renewal"; "won", "lost"; "kickoff", ...,
 * "first_value". NULL outside the enum. */
const char *rs_qual_stage_name(enum rs_qual_stage stage);
const char *rs_deal_type_name(enum rs_deal_type type);
const char *rs_outcome_name(enum rs_outcome outcome);
const char *rs_milestone_name(enum rs_milestone milestone);

/* Names of the enums above (the wire values); NULL outside the enum, and NULL for
 * RS_REFUND_NONE, which has no wire value. */
const char *rs_billing_interval_name(enum rs_billing_interval interval);
const char *rs_sub_status_name(enum rs_sub_status status);
const char *rs_discount_duration_name(enum rs_discount_duration duration);
const char *rs_refund_type_name(enum rs_refund_type type);
const char *rs_spend_function_name(enum rs_spend_function function);
const char *rs_spend_category_name(enum rs_spend_category category);
const char *rs_spend_allocation_name(enum rs_spend_allocation allocation);
const char *rs_forecast_scope_name(enum rs_forecast_scope scope);
const char *rs_forecast_measure_name(enum rs_forecast_measure measure);
const char *rs_forecast_category_name(enum rs_forecast_category category);

/* "invalid_msgpack", "missing_field", ...; "none" for RS_FAULT_NONE; NULL outside the enum. */
const char *rs_event_fault_name(enum rs_event_fault fault);

/* Alert kinds published on the alerts topic; keep in sync with schemas/alert.json. */
enum rs_alert_kind {
    RS_ALERT_WARNING,   /* "sla.warning":   L0, 80% of the threshold elapsed */
    RS_ALERT_BREACHED,  /* "sla.breached":  L1, the threshold elapsed */
    RS_ALERT_ESCALATED, /* "sla.escalated": L2, 200% of the threshold elapsed */
    RS_ALERT_CRITICAL,  /* "sla.critical":  L3, max(10x threshold, 24 business hours) */
    RS_ALERT_RECOVERED, /* "sla.recovered": the stop event came after a notified level */
    RS_ALERT_RETRACTED, /* "sla.retracted": a late stop event shows a fired level was wrong */
    RS_ALERT__COUNT
};

/* What a KPI guardrail alert (guardrail.h) judged; strings borrowed like the alert's. */
struct rs_alert_kpi {
    const char *metric;     /* the guardrail's name: "magic_number", "nrr_t12", ... */
    const char *grain;      /* "day", "month", "quarter" */
    const char *bucket;     /* the bucket's label: "2026-Q1", "2026-03", "2026-03-02" */
    double value;           /* the metric's value that was judged */
    double threshold;       /* in the metric's unit */
    const char *comparison; /* "<" or ">": the breach condition, value <comparison> threshold */
    bool provisional;       /* the bucket is not final yet */
    bool qtd;               /* the bucket is still running: a period-to-date value */
};

/* One alert. Every string is borrowed for the duration of rs_alert_encode(). */
struct rs_alert {
    enum rs_alert_kind kind;
    char alert_id[65];       /* hex sha256, see sla.c for what it hashes */
    char retracts_id[65];    /* RS_ALERT_RETRACTED only: the alert it withdraws */
    const char *sla_type;    /* "SLA-01_speed_to_lead" */
    const char *level;       /* "L0_warning", "L1_breach", "L2_escalate", "L3_critical",
                              * "resolved", or another "L<n>_..." of a rule's own ladder */
    const char *status;      /* "running", "breached", "breached_then_met", "met" */
    const char *entity_type; /* "lead" */
    struct rs_str entity_id;
    uint32_t attempt_n;
    struct rs_str owner_id;       /* may be unset */
    struct rs_str account;        /* may be unset */
    const char *start_event_type; /* "lead.created" */
    int64_t start_at_ms;
    int64_t target_at_ms;    /* start + threshold */
    int64_t level_at_ms;     /* when this level became due (event time) */
    int64_t evaluated_at_ms; /* the watermark that fired it, or the stop event's time */
    int64_t threshold_ms;
    int64_t elapsed_ms;             /* at evaluation; for recovered, the real response time */
    const char *clock;              /* "24x7", "business" or "calendar" */
    const char *calendar_id;        /* may be NULL: the 24x7 clock */
    int64_t elapsed_business_ms;    /* on the rule's clock; equals elapsed_ms on 24x7 */
    int64_t paused_ms;              /* time the instance spent paused */
    const char *intent_tier;        /* context; may be NULL */
    struct rs_str channel;          /* context */
    struct rs_str segment;          /* context */
    struct rs_str stage;            /* context: the opportunity stage (SLA-03) */
    const struct rs_alert_kpi *kpi; /* KPI guardrail alerts only; NULL: no `kpi` key */
};

/* "sla.warning", ...; NULL outside the enum. */
const char *rs_alert_kind_name(enum rs_alert_kind kind);

/* A growable output buffer owned by the caller. */
struct rs_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Empty, with no memory yet. */
void rs_buf_init(struct rs_buf *buf);
/* Free the memory and leave `buf` empty. NULL allowed. */
void rs_buf_release(struct rs_buf *buf);
/* Forget the contents, keep the memory. */
void rs_buf_reset(struct rs_buf *buf);
/* Make room for `len` more bytes; out of memory aborts. */
void rs_buf_grow(struct rs_buf *buf, size_t len);

/* Append `len` bytes; out of memory aborts. Inline: the encoders append a few bytes at a time. */
static inline void rs_buf_append(struct rs_buf *buf, const void *data, size_t len)
{
    if (len == 0) {
        return; /* data may be NULL, and memcpy() must not see that */
    }
    if (len > buf->cap - buf->len) {
        rs_buf_grow(buf, len);
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
}

/*
 * Append `alert` to `out` as one msgpack map (schemas/alert.json, keys in a fixed order, so the
 * same alert always gives the same bytes). Cannot fail (out of memory aborts). owner_id,
 * account, calendar_id, intent_tier, channel, segment and stage are written as nil when unset;
 * the other strings must be set.
 */
void rs_alert_encode(const struct rs_alert *alert, struct rs_buf *out);

/*
 * Append `ev` to `out` as the msgpack map a producer would send (envelope plus the type's
 * fields; unset optional strings and numbers whose has_* flag is false are left out, while
 * close_date, start_date and the defaulted fields of the revenue events (quantity,
 * discount_minor, discount_duration, service_period_start, as_of) are always written; times
 * are written as integer ms, rate and gross_margin_pct as float 64). The inverse of
 * rs_event_decode(), used by the demo generator and the tests; the same event always gives the
 * same bytes. Cannot fail.
 */
void rs_event_encode(const struct rs_event *ev, struct rs_buf *out);

/* What a consumer of the alerts topic reads back; strings borrow the payload and zone. */
struct rs_alert_view {
    enum rs_alert_kind kind;
    struct rs_str alert_id;
    struct rs_str retracts_id; /* unset unless kind is RS_ALERT_RETRACTED */
    struct rs_str level;
    struct rs_str status;
    struct rs_str sla_type; /* "SLA-01_speed_to_lead", ... */
    struct rs_str entity_type;
    struct rs_str entity_id;
    struct rs_str owner_id;
    struct rs_str intent_tier;
    int64_t start_at_ms;
    int64_t target_at_ms;
    int64_t evaluated_at_ms;
    int64_t threshold_ms;
    int64_t elapsed_ms;
    struct rs_str calendar_id; /* unset for the 24x7 clock */
    int64_t elapsed_business_ms;
    int64_t paused_ms;
    struct rs_str stage; /* unset unless the alert is about an opportunity stage */
};

/*
 * Decode an alert written by rs_alert_encode(). Returns 0 or RS_EDECODE with err naming the
 * problem. Ownership: as rs_event_decode().
 */
int rs_alert_view_decode(struct rs_event_decoder *dec, const void *data, size_t len,
                         struct rs_alert_view *view, struct rs_err *err);

/*
 * A minimal msgpack writer for tools that build payloads from another format (send.c turns
 * JSON lines into events with it). Each call appends one item to `out`; cannot fail.
 */
void rs_event_write_map(struct rs_buf *out, uint32_t n);
void rs_event_write_array(struct rs_buf *out, uint32_t n);
void rs_event_write_str(struct rs_buf *out, const char *s, size_t len);
void rs_event_write_int(struct rs_buf *out, int64_t v);
void rs_event_write_double(struct rs_buf *out, double v);
void rs_event_write_bool(struct rs_buf *out, bool v);
void rs_event_write_nil(struct rs_buf *out);

#endif
