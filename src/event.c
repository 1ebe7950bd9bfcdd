#define RS_LOG_MODULE "event"
#include "event.h"

#include "log.h"
#include "mem.h"

#include <assert.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

/*
 * Decoding makes two passes over the payload (bench/bench_decode.c has the costs):
 *
 * 1. scan() walks the bytes without building anything. It proves that they hold exactly one
 *    complete msgpack object and that every array or map count fits in the bytes that remain.
 *    msgpack-c allocates count * sizeof(msgpack_object) in the zone as soon as it reads a
 *    container header (unpack_template.h says "FIXME security guard"), so a 5-byte payload
 *    declaring 2^26 items would make it reserve 1.5 GiB. After scan(), the zone holds at most
 *    about 24 bytes per payload byte. scan() also gives the byte offsets that msgpack-c does not
 *    report (msgpack_unpack() only says "parse error" or "incomplete").
 * 2. build() makes the object tree that msgpack_unpack() would make, in the reused zone, at
 *    a third of its cost; str objects point into the payload (msgpack-c never copies them
 *    either). Then one walk over the top-level map files each known key into a slot, and the
 *    type's fields are read from the slots.
 *
 * The common payload, a map of string keys, first takes one pass instead (walk_map()): each
 * value is built by build(), which checks what scan() checks, straight into its key's slot,
 * and no tree is made for the map itself. Whatever
 * it does not take (a payload scan() would refuse, another top-level type, a key that is not a
 * string) goes the two-pass way, which gives the message. So it takes only payloads that
 * scan() accepts, and fills the slots that the two passes fill.
 */

/*
 * msgpack-c's parser holds at most this many open containers and fails on deeper input. It is
 * MSGPACK_EMBED_STACK_SIZE from the internal unpack_define.h, fixed when libmsgpackc was built;
 * test_event.c checks the boundary against the installed library.
 */
#define SCAN_MAX_DEPTH 32

/* Longest value quoted in an error message; longer ones are cut and marked with "...". */
#define QUOTE_MAX_BYTES 40

/* Room for a quoted value: each byte may become \xNN, plus quotes, "..." and the NUL. */
#define QUOTE_BUF_SIZE (QUOTE_MAX_BYTES * 4 + 8)

/* The first allocation of an rs_buf; an alert is about 400 bytes. */
#define BUF_MIN_CAP 512

/* A string literal as a struct rs_str, its length counted by the compiler. */
#define LIT(s)           \
    {                    \
        s, sizeof(s) - 1 \
    }

/* Every key the decoder knows. Keep in sync with field_names, field_of_key() and schemas/. */
enum field {
    F_TYPE,
    F_ID,
    F_TS,
    F_ACCOUNT,
    F_TENANT,
    F_SOURCE,
    F_SOURCE_ID,
    F_SEQ,
    F_LEAD_ID, /* the first field that is not part of the envelope */
    F_CHANNEL,
    F_INTENT_TIER,
    F_SEGMENT,
    F_OWNER_ID,
    F_REP_ID,
    F_ACTOR_TYPE,
    F_DIRECTION,
    F_CONNECTED,
    F_REASON,
    F_ACCOUNT_ID,
    F_CONTACT_ID,
    F_OPPORTUNITY_ID,
    F_INTO_LEAD_ID,
    F_QUEUE,
    F_STAGE,
    F_QUALIFIED_BY,
    F_DEAL_TYPE,
    F_AMOUNT_MINOR,
    F_TCV_MINOR,
    F_CURRENCY,
    F_OUTCOME,
    F_LOSS_REASON,
    F_CLOSE_DATE,
    F_TEAM_ID,
    F_FROM_STAGE,
    F_TO_STAGE,
    F_FORECAST_CATEGORY,
    F_AE_ID,
    F_CSM_ID,
    F_CHECKLIST_COMPLETE,
    F_MILESTONE,
    F_STATUS,
    F_START_DATE,
    F_ROLE,
    F_PERIOD,
    F_QUOTA_MINOR,
    F_RAMP_SCHEDULE,
    F_SUBSCRIPTION_ID,
    F_PLAN,
    F_QUANTITY,
    F_BILLING_INTERVAL,
    F_MRR_AFTER_MINOR,
    F_MRR_BEFORE_MINOR,
    F_PRICE_MINOR,
    F_DISCOUNT_MINOR,
    F_DISCOUNT_DURATION,
    F_SERVICE_PERIOD_START,
    F_SERVICE_PERIOD_END,
    F_CANCEL_AT,
    F_INVOICE_ID,
    F_REFUND_TYPE,
    F_SPEND_ID,
    F_PERIOD_START,
    F_PERIOD_END,
    F_FUNCTION,
    F_CATEGORY,
    F_ALLOCATION,
    F_FORECAST_ID,
    F_SCOPE,
    F_SCOPE_ID,
    F_MEASURE,
    F_AS_OF,
    F_REVENUE_MINOR,
    F_GROSS_MARGIN_PCT,
    F_EBITDA_MINOR,
    F_FREE_CASH_FLOW_MINOR,
    F_OPERATING_INCOME_MINOR,
    F_RATE,
    F_DATE,
    F__COUNT
};

/* Words of struct decode's `seen` mask: one bit per field. */
#define SEEN_WORDS ((F__COUNT + 63) / 64)

static const struct rs_str field_names[F__COUNT] = {
    [F_TYPE] = LIT("type"),
    [F_ID] = LIT("id"),
    [F_TS] = LIT("ts"),
    [F_ACCOUNT] = LIT("account"),
    [F_TENANT] = LIT("tenant"),
    [F_SOURCE] = LIT("source"),
    [F_SOURCE_ID] = LIT("source_id"),
    [F_SEQ] = LIT("seq"),
    [F_LEAD_ID] = LIT("lead_id"),
    [F_CHANNEL] = LIT("channel"),
    [F_INTENT_TIER] = LIT("intent_tier"),
    [F_SEGMENT] = LIT("segment"),
    [F_OWNER_ID] = LIT("owner_id"),
    [F_REP_ID] = LIT("rep_id"),
    [F_ACTOR_TYPE] = LIT("actor_type"),
    [F_DIRECTION] = LIT("direction"),
    [F_CONNECTED] = LIT("connected"),
    [F_REASON] = LIT("reason"),
    [F_ACCOUNT_ID] = LIT("account_id"),
    [F_CONTACT_ID] = LIT("contact_id"),
    [F_OPPORTUNITY_ID] = LIT("opportunity_id"),
    [F_INTO_LEAD_ID] = LIT("into_lead_id"),
    [F_QUEUE] = LIT("queue"),
    [F_STAGE] = LIT("stage"),
    [F_QUALIFIED_BY] = LIT("qualified_by"),
    [F_DEAL_TYPE] = LIT("deal_type"),
    [F_AMOUNT_MINOR] = LIT("amount_minor"),
    [F_TCV_MINOR] = LIT("tcv_minor"),
    [F_CURRENCY] = LIT("currency"),
    [F_OUTCOME] = LIT("outcome"),
    [F_LOSS_REASON] = LIT("loss_reason"),
    [F_CLOSE_DATE] = LIT("close_date"),
    [F_TEAM_ID] = LIT("team_id"),
    [F_FROM_STAGE] = LIT("from_stage"),
    [F_TO_STAGE] = LIT("to_stage"),
    [F_FORECAST_CATEGORY] = LIT("forecast_category"),
    [F_AE_ID] = LIT("ae_id"),
    [F_CSM_ID] = LIT("csm_id"),
    [F_CHECKLIST_COMPLETE] = LIT("checklist_complete"),
    [F_MILESTONE] = LIT("milestone"),
    [F_STATUS] = LIT("status"),
    [F_START_DATE] = LIT("start_date"),
    [F_ROLE] = LIT("role"),
    [F_PERIOD] = LIT("period"),
    [F_QUOTA_MINOR] = LIT("quota_minor"),
    [F_RAMP_SCHEDULE] = LIT("ramp_schedule"),
    [F_SUBSCRIPTION_ID] = LIT("subscription_id"),
    [F_PLAN] = LIT("plan"),
    [F_QUANTITY] = LIT("quantity"),
    [F_BILLING_INTERVAL] = LIT("billing_interval"),
    [F_MRR_AFTER_MINOR] = LIT("mrr_after_minor"),
    [F_MRR_BEFORE_MINOR] = LIT("mrr_before_minor"),
    [F_PRICE_MINOR] = LIT("price_minor"),
    [F_DISCOUNT_MINOR] = LIT("discount_minor"),
    [F_DISCOUNT_DURATION] = LIT("discount_duration"),
    [F_SERVICE_PERIOD_START] = LIT("service_period_start"),
    [F_SERVICE_PERIOD_END] = LIT("service_period_end"),
    [F_CANCEL_AT] = LIT("cancel_at"),
    [F_INVOICE_ID] = LIT("invoice_id"),
    [F_REFUND_TYPE] = LIT("refund_type"),
    [F_SPEND_ID] = LIT("spend_id"),
    [F_PERIOD_START] = LIT("period_start"),
    [F_PERIOD_END] = LIT("period_end"),
    [F_FUNCTION] = LIT("function"),
    [F_CATEGORY] = LIT("category"),
    [F_ALLOCATION] = LIT("allocation"),
    [F_FORECAST_ID] = LIT("forecast_id"),
    [F_SCOPE] = LIT("scope"),
    [F_SCOPE_ID] = LIT("scope_id"),
    [F_MEASURE] = LIT("measure"),
    [F_AS_OF] = LIT("as_of"),
    [F_REVENUE_MINOR] = LIT("revenue_minor"),
    [F_GROSS_MARGIN_PCT] = LIT("gross_margin_pct"),
    [F_EBITDA_MINOR] = LIT("ebitda_minor"),
    [F_FREE_CASH_FLOW_MINOR] = LIT("free_cash_flow_minor"),
    [F_OPERATING_INCOME_MINOR] = LIT("operating_income_minor"),
    [F_RATE] = LIT("rate"),
    [F_DATE] = LIT("date"),
};

/* Keep in sync with enum rs_event_type and schemas/<type>.json. */
static const struct rs_str type_names[RS_EV__COUNT] = {
    [RS_EV_LEAD_CREATED] = LIT("lead.created"),
    [RS_EV_LEAD_TOUCHED] = LIT("lead.touched"),
    [RS_EV_LEAD_DISQUALIFIED] = LIT("lead.disqualified"),
    [RS_EV_LEAD_CONVERTED] = LIT("lead.converted"),
    [RS_EV_LEAD_MERGED] = LIT("lead.merged"),
    [RS_EV_LEAD_ASSIGNED] = LIT("lead.assigned"),
    [RS_EV_LEAD_QUALIFIED] = LIT("lead.qualified"),
    [RS_EV_LEAD_RECYCLED] = LIT("lead.recycled"),
    [RS_EV_LEAD_REOPENED] = LIT("lead.reopened"),
    [RS_EV_OPP_CREATED] = LIT("opportunity.created"),
    [RS_EV_OPP_STAGE_CHANGED] = LIT("opportunity.stage_changed"),
    [RS_EV_OPP_CLOSED] = LIT("opportunity.closed"),
    [RS_EV_OPP_REOPENED] = LIT("opportunity.reopened"),
    [RS_EV_HANDOFF_STARTED] = LIT("handoff.started"),
    [RS_EV_HANDOFF_COMPLETED] = LIT("handoff.completed"),
    [RS_EV_ONBOARDING_MILESTONE] = LIT("onboarding.milestone"),
    [RS_EV_ONBOARDING_PAUSED] = LIT("onboarding.paused"),
    [RS_EV_ONBOARDING_RESUMED] = LIT("onboarding.resumed"),
    [RS_EV_REP_ONBOARDED] = LIT("rep.onboarded"),
    [RS_EV_REP_QUOTA_SET] = LIT("rep.quota_set"),
    [RS_EV_REP_TERMINATED] = LIT("rep.terminated"),
    [RS_EV_SUB_STARTED] = LIT("subscription.started"),
    [RS_EV_SUB_RENEWED] = LIT("subscription.renewed"),
    [RS_EV_SUB_EXPANDED] = LIT("subscription.expanded"),
    [RS_EV_SUB_CONTRACTED] = LIT("subscription.contracted"),
    [RS_EV_SUB_CHURNED] = LIT("subscription.churned"),
    [RS_EV_SUB_REACTIVATED] = LIT("subscription.reactivated"),
    [RS_EV_INVOICE_PAID] = LIT("invoice.paid"),
    [RS_EV_INVOICE_REFUNDED] = LIT("invoice.refunded"),
    [RS_EV_INVOICE_PAYMENT_FAILED] = LIT("invoice.payment_failed"),
    [RS_EV_SPEND_RECORDED] = LIT("spend.recorded"),
    [RS_EV_FORECAST_SUBMITTED] = LIT("forecast.submitted"),
    [RS_EV_FINANCIALS_REPORTED] = LIT("financials.reported"),
    [RS_EV_FX_RATE] = LIT("fx.rate"),
};

/* The enum tables below are indexed by the enum value; keep in sync with event.h. */
static const struct rs_str tier_names[RS_TIER__COUNT] = {
    [RS_TIER_HIGH] = LIT("high"),
    [RS_TIER_MQL] = LIT("mql"),
    [RS_TIER_LOW] = LIT("low"),
};

static const struct rs_str actor_names[RS_ACTOR_AUTOMATION + 1] = {
    [RS_ACTOR_HUMAN] = LIT("human"),
    [RS_ACTOR_AUTOMATION] = LIT("automation"),
};

static const struct rs_str direction_names[RS_DIR_INBOUND + 1] = {
    [RS_DIR_OUTBOUND] = LIT("outbound"),
    [RS_DIR_INBOUND] = LIT("inbound"),
};

static const struct rs_str touch_channel_names[RS_CH_SOCIAL + 1] = {
    [RS_CH_CALL] = LIT("call"), [RS_CH_EMAIL] = LIT("email"),     [RS_CH_SMS] = LIT("sms"),
    [RS_CH_CHAT] = LIT("chat"), [RS_CH_MEETING] = LIT("meeting"), [RS_CH_SOCIAL] = LIT("social"),
};

/* Upper-case, as sales teams write them (METRICS.md §2). */
static const struct rs_str qual_stage_names[RS_QUAL__COUNT] = {
    [RS_QUAL_MQL] = LIT("MQL"),
    [RS_QUAL_SAL] = LIT("SAL"),
    [RS_QUAL_SQL] = LIT("SQL"),
};

static const struct rs_str deal_type_names[RS_DEAL__COUNT] = {
    [RS_DEAL_NEW] = LIT("new"),
    [RS_DEAL_EXPANSION] = LIT("expansion"),
    [RS_DEAL_RENEWAL] = LIT("renewal"),
};

static const struct rs_str outcome_names[RS_OUTCOME_LOST + 1] = {
    [RS_OUTCOME_WON] = LIT("won"),
    [RS_OUTCOME_LOST] = LIT("lost"),
};

static const struct rs_str milestone_names[RS_MS__COUNT] = {
    [RS_MS_KICKOFF] = LIT("kickoff"),         [RS_MS_CONFIGURED] = LIT("configured"),
    [RS_MS_INTEGRATED] = LIT("integrated"),   [RS_MS_GO_LIVE] = LIT("go_live"),
    [RS_MS_FIRST_VALUE] = LIT("first_value"),
};

static const struct rs_str billing_interval_names[RS_BILL__COUNT] = {
    [RS_BILL_DAY] = LIT("day"),
    [RS_BILL_WEEK] = LIT("week"),
    [RS_BILL_MONTH] = LIT("month"),
    [RS_BILL_QUARTER] = LIT("quarter"),
    [RS_BILL_SEMI_ANNUAL] = LIT("semi_annual"),
    [RS_BILL_YEAR] = LIT("year"),
};

static const struct rs_str sub_status_names[RS_SUB__COUNT] = {
    [RS_SUB_TRIALING] = LIT("trialing"), [RS_SUB_ACTIVE] = LIT("active"),
    [RS_SUB_PAST_DUE] = LIT("past_due"), [RS_SUB_CANCELED] = LIT("canceled"),
    [RS_SUB_UNPAID] = LIT("unpaid"),
};

static const struct rs_str discount_duration_names[RS_DISCOUNT_FINITE + 1] = {
    [RS_DISCOUNT_FOREVER] = LIT("forever"),
    [RS_DISCOUNT_FINITE] = LIT("finite"),
};

/* RS_REFUND_NONE has no wire value, so this table starts at RS_REFUND_FULL (REFUND_FIRST). An
 * empty entry for it would match an empty string. */
#define REFUND_FIRST RS_REFUND_FULL
static const struct rs_str refund_type_names[RS_REFUND_PARTIAL - REFUND_FIRST + 1] = {
    [RS_REFUND_FULL - REFUND_FIRST] = LIT("full"),
    [RS_REFUND_PARTIAL - REFUND_FIRST] = LIT("partial"),
};

static const struct rs_str spend_function_names[RS_FN_MARKETING + 1] = {
    [RS_FN_SALES] = LIT("sales"),
    [RS_FN_MARKETING] = LIT("marketing"),
};

static const struct rs_str spend_category_names[RS_SPEND_OTHER + 1] = {
    [RS_SPEND_SALARIES] = LIT("salaries"), [RS_SPEND_COMMISSIONS] = LIT("commissions"),
    [RS_SPEND_PROGRAMS] = LIT("programs"), [RS_SPEND_TOOLS] = LIT("tools"),
    [RS_SPEND_OTHER] = LIT("other"),
};

static const struct rs_str spend_allocation_names[RS_ALLOC_SHARED + 1] = {
    [RS_ALLOC_NEW_LOGO] = LIT("new_logo"),
    [RS_ALLOC_EXPANSION] = LIT("expansion"),
    [RS_ALLOC_SHARED] = LIT("shared"),
};

static const struct rs_str forecast_scope_names[RS_SCOPE_REP + 1] = {
    [RS_SCOPE_COMPANY] = LIT("company"),
    [RS_SCOPE_TEAM] = LIT("team"),
    [RS_SCOPE_REP] = LIT("rep"),
};

static const struct rs_str forecast_measure_names[RS_MEASURE_ENDING_ARR + 1] = {
    [RS_MEASURE_NET_NEW_ARR] = LIT("net_new_arr"),
    [RS_MEASURE_BOOKINGS] = LIT("bookings"),
    [RS_MEASURE_ENDING_ARR] = LIT("ending_arr"),
};

static const struct rs_str forecast_category_names[RS_FC_PIPELINE + 1] = {
    [RS_FC_COMMIT] = LIT("commit"),
    [RS_FC_BEST_CASE] = LIT("best_case"),
    [RS_FC_PIPELINE] = LIT("pipeline"),
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* What a field accepts. */
enum {
    FIELD_OPTIONAL = 0,
    FIELD_REQUIRED = 1 << 0,
    FIELD_NON_EMPTY = 1 << 1, /* identifiers: an empty string names nothing */
    FIELD_DATE = 1 << 2,      /* times: "YYYY-MM-DD" is taken as well */
};

#define FIELD_REQUIRED_ID (FIELD_REQUIRED | FIELD_NON_EMPTY)
#define FIELD_OPTIONAL_ID FIELD_NON_EMPTY

/* One decode in progress. */
struct decode {
    /* The value of each known key, valid where its bit in `seen` is set. A bit mask instead of
     * NULLs spares clearing F__COUNT pointers per event, which showed up in profiles. */
    const msgpack_object *slot[F__COUNT];
    uint64_t seen[SEEN_WORDS];
    msgpack_object value[F__COUNT]; /* walk_map()'s slots point here */
    const char *type_name;          /* for messages; NULL until `type` is known */
    enum rs_event_fault *fault;
    struct rs_err *err;
};

static int reject(struct decode *d, enum rs_event_fault fault, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record why the payload is rejected. Returns RS_EDECODE. */
static int reject(struct decode *d, enum rs_event_fault fault, const char *fmt, ...)
{
    char msg[RS_ERR_MSG_MAX];
    va_list ap;

    *d->fault = fault;
    if (d->err == NULL) {
        return RS_EDECODE; /* skip the formatting: a dead-letter counter needs no text */
    }
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rs_err_set(d->err, RS_EDECODE, "%s", msg);
}

/*
 * Write `p` as a single-quoted, printable value into out[QUOTE_BUF_SIZE]: bytes outside
 * printable ASCII, the quote and the backslash are escaped, and only the first QUOTE_MAX_BYTES
 * are shown, so a hostile value can neither flood a log line nor inject control characters.
 */
static const char *quote(char *out, const char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t shown = len < QUOTE_MAX_BYTES ? len : QUOTE_MAX_BYTES;
    size_t o = 0;

    out[o++] = '\'';
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c == '\'' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
        }
    }
    out[o++] = '\'';
    if (shown < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static const char *object_kind(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

/* Read an n-byte big-endian length (n <= 4), as msgpack writes them. */
static size_t load_be(const unsigned char *p, size_t n)
{
    size_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* "map" or "array", from the type byte of a container. */
static const char *container_kind(unsigned char c)
{
    return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf ? "map" : "array";
}

/*
 * Check that p[0, len) is exactly one complete msgpack object that msgpack-c can build without
 * allocating more than the input justifies (see the comment at the top).
 */
static int scan(struct decode *d, const unsigned char *p, size_t len)
{
    /* The innermost count lives in a register: a decrement through memory for every item
     * costs more than the rest of the walk. */
    size_t left = 0;                   /* items (keys and values) the innermost container expects */
    size_t outer_left[SCAN_MAX_DEPTH]; /* the same for each container around it */
    size_t open_at[SCAN_MAX_DEPTH];    /* where each open container starts, for messages */
    size_t depth = 0;
    size_t pos = 0;

    for (;;) {
        size_t start = pos;
        size_t count_bytes = 0; /* width of the length or count that follows the type byte */
        size_t fixed = 0;       /* bytes after the type byte and the count: ext type, scalars */
        size_t n = 0;           /* str/bin/ext payload bytes, or container items */
        bool container = false;
        bool is_map = false;
        unsigned char c;

        if (pos == len) {
            assert(depth > 0); /* the first item starts at 0 < len, later ones inside a container */
            return reject(d, RS_FAULT_MSGPACK,
                          "not valid msgpack: truncated at byte %zu of %zu (the %s at byte %zu "
                          "is incomplete)",
                          pos, len, container_kind(p[open_at[depth - 1]]), open_at[depth - 1]);
        }
        c = p[pos];
        if (c >= 0xa0 && c <= 0xbf) {
            n = c & 0x1fu; /* fixstr first: every key and most values are one */
        } else if (c <= 0x7f || c >= 0xe0) {
            /* positive or negative fixint: the type byte is the value */
        } else if (c <= 0x8f) {
            container = is_map = true;
            n = c & 0x0fu;
        } else if (c <= 0x9f) {
            container = true;
            n = c & 0x0fu;
        } else {
            switch (c) {
            case 0xc0: /* nil */
            case 0xc2: /* false */
            case 0xc3: /* true */
                break;
            case 0xc1:
                return reject(d, RS_FAULT_MSGPACK,
                              "not valid msgpack: byte 0xc1 (never used) at byte %zu of %zu", pos,
                              len);
            case 0xc4: /* bin 8 */
            case 0xd9: /* str 8 */
                count_bytes = 1;
                break;
            case 0xc5: /* bin 16 */
            case 0xda: /* str 16 */
                count_bytes = 2;
                break;
            case 0xc6: /* bin 32 */
            case 0xdb: /* str 32 */
                count_bytes = 4;
                break;
            case 0xc7: /* ext 8, 16, 32: the count, then one type byte */
                count_bytes = 1;
                fixed = 1;
                break;
            case 0xc8:
                count_bytes = 2;
                fixed = 1;
                break;
            case 0xc9:
                count_bytes = 4;
                fixed = 1;
                break;
            case 0xcc: /* uint 8 */
            case 0xd0: /* int 8 */
                fixed = 1;
                break;
            case 0xcd:
            case 0xd1:
                fixed = 2;
                break;
            case 0xca: /* float 32 */
            case 0xce:
            case 0xd2:
                fixed = 4;
                break;
            case 0xcb: /* float 64 */
            case 0xcf:
            case 0xd3:
                fixed = 8;
                break;
            case 0xd4: /* fixext 1, 2, 4, 8, 16: one type byte, then the data */
                fixed = 2;
                break;
            case 0xd5:
                fixed = 3;
                break;
            case 0xd6:
                fixed = 5;
                break;
            case 0xd7:
                fixed = 9;
                break;
            case 0xd8:
                fixed = 17;
                break;
            case 0xdc: /* array 16, 32 */
                container = true;
                count_bytes = 2;
                break;
            case 0xdd:
                container = true;
                count_bytes = 4;
                break;
            case 0xde: /* map 16, 32 */
                container = is_map = true;
                count_bytes = 2;
                break;
            default: /* 0xdf, map 32: every other byte value is handled above */
                container = is_map = true;
                count_bytes = 4;
                break;
            }
        }

        if (len - pos < 1 + count_bytes + fixed) {
            return reject(d, RS_FAULT_MSGPACK,
                          "not valid msgpack: truncated at byte %zu of %zu (a header of %zu bytes "
                          "at byte %zu)",
                          len, len, 1 + count_bytes + fixed, start);
        }
        if (count_bytes != 0) {
            n = load_be(p + pos + 1, count_bytes);
        }
        pos += 1 + count_bytes + fixed;

        if (!container) {
            if (len - pos < n) {
                return reject(d, RS_FAULT_MSGPACK,
                              "not valid msgpack: truncated at byte %zu of %zu (a value of %zu "
                              "bytes at byte %zu)",
                              len, len, n, start);
            }
            pos += n;
        } else {
            /* Each item takes at least one byte, so a count larger than what is left is a lie. */
            size_t items = is_map ? 2 * n : n;

            if (items > len - pos) {
                return reject(d, RS_FAULT_MSGPACK,
                              "not valid msgpack: truncated at byte %zu of %zu (%s of %zu "
                              "entries at byte %zu)",
                              len, len, is_map ? "a map" : "an array", n, start);
            }
            /* msgpack-c refuses even an empty container once this many are open. */
            if (depth == SCAN_MAX_DEPTH) {
                return reject(d, RS_FAULT_MSGPACK,
                              "not valid msgpack: nested deeper than %d levels at byte %zu",
                              SCAN_MAX_DEPTH, start);
            }
            if (items != 0) {
                outer_left[depth] = left;
                open_at[depth] = start;
                depth++;
                left = items;
                continue;
            }
        }

        /* One item is complete: it may complete its container, and so on outwards. */
        for (;;) {
            if (depth == 0) {
                if (pos != len) {
                    return reject(d, RS_FAULT_MSGPACK,
                                  "not valid msgpack: trailing bytes after the object (it ends "
                                  "at byte %zu of %zu)",
                                  pos, len);
                }
                return 0;
            }
            if (--left != 0) {
                break;
            }
            depth--;
            left = outer_left[depth];
        }
    }
}

/*
 * The object of the scalar at p, whose bytes build() checked are there, exactly as
 * msgpack_unpack() makes it (the same object types, str/bin/ext pointing into the payload).
 * Returns the bytes read.
 */
static size_t build_scalar(const unsigned char *p, msgpack_object *o)
{
    unsigned char c = p[0];
    size_t count_bytes = 0, ext_size;

    if (c <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = c;
        return 1;
    }
    if (c >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)c;
        return 1;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.size = c & 0x1fu;
        o->via.str.ptr = (const char *)p + 1; /* an empty one too, never NULL, as in msgpack-c */
        return 1 + o->via.str.size;
    }
    switch (c) {
    case 0xc0:
        o->type = MSGPACK_OBJECT_NIL;
        return 1;
    case 0xc2:
    case 0xc3:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = c == 0xc3;
        return 1;
    case 0xc4:
    case 0xc5:
    case 0xc6:
    case 0xd9:
    case 0xda:
    case 0xdb:
        count_bytes = c == 0xc4 || c == 0xd9 ? 1 : c == 0xc5 || c == 0xda ? 2 : 4;
        o->type = c <= 0xc6 ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
        o->via.str.size = (uint32_t)load_be(p + 1, count_bytes);
        /* msgpack-c points an empty one inside the header: anywhere but NULL will do. */
        o->via.str.ptr = (const char *)p + 1 + (o->via.str.size != 0 ? count_bytes : 0);
        return 1 + count_bytes + o->via.str.size; /* via.bin has the same layout */
    case 0xc7:
    case 0xc8:
    case 0xc9:
        count_bytes = c == 0xc7 ? 1 : c == 0xc8 ? 2 : 4;
        ext_size = load_be(p + 1, count_bytes);
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)p[1 + count_bytes];
        o->via.ext.size = (uint32_t)ext_size;
        o->via.ext.ptr = (const char *)p + 2 + count_bytes;
        return 2 + count_bytes + ext_size;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        ext_size = (size_t)1 << (c - 0xd4);
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)p[1];
        o->via.ext.size = (uint32_t)ext_size;
        o->via.ext.ptr = (const char *)p + 2;
        return 2 + ext_size;
    case 0xca: {
        uint32_t bits = (uint32_t)load_be(p + 1, 4);
        float f;

        memcpy(&f, &bits, sizeof(f));
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = (double)f;
        return 5;
    }
    case 0xcb: {
        uint64_t bits = (uint64_t)load_be(p + 1, 4) << 32 | load_be(p + 5, 4);

        o->type = MSGPACK_OBJECT_FLOAT64;
        memcpy(&o->via.f64, &bits, sizeof(bits));
        return 9;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        count_bytes = (size_t)1 << (c - 0xcc);
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = count_bytes == 8 ? (uint64_t)load_be(p + 1, 4) << 32 | load_be(p + 5, 4)
                                      : load_be(p + 1, count_bytes);
        return 1 + count_bytes;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        uint64_t u;
        int64_t v;

        count_bytes = (size_t)1 << (c - 0xd0);
        u = count_bytes == 8 ? (uint64_t)load_be(p + 1, 4) << 32 | load_be(p + 5, 4)
                             : load_be(p + 1, count_bytes);
        /* Sign-extend from the encoded width. */
        v = count_bytes == 1   ? (int8_t)u
            : count_bytes == 2 ? (int16_t)u
            : count_bytes == 4 ? (int32_t)u
                               : (int64_t)u;
        if (v < 0) {
            o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            o->via.i64 = v;
        } else {
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = (uint64_t)v;
        }
        return 1 + count_bytes;
    }
    default: /* containers and 0xc1: build() never passes them here */
        assert(0 && "build_scalar() of a container or 0xc1");
        return 0;
    }
}

/*
 * Build the object tree at p, which may run to `end`, nested `level` containers deep, exactly
 * as msgpack_unpack() would (containers allocated in the zone), without its general state
 * machine, which cost twice as much as scan() and this together. It checks what scan() checks
 * (bounds, item counts, depth, 0xc1), so it also serves walk_map(), which has no scan() before
 * it. Returns the bytes read, or 0 where scan() would refuse the bytes, or might, or the zone
 * could not allocate (after scan() accepted the bytes, only the last).
 */
static size_t build(msgpack_zone *z, const unsigned char *p, const unsigned char *end, int level,
                    msgpack_object *o)
{
    size_t avail = (size_t)(end - p);
    size_t head, n, pos;
    unsigned char c;
    bool is_map;

    if (avail == 0) {
        return 0;
    }
    c = p[0];
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        return build_scalar(p, o); /* one byte */
    }
    if (c >= 0xa0 && c <= 0xbf) {
        return avail > (size_t)(c & 0x1fu) ? build_scalar(p, o) : 0;
    }
    if (c <= 0x9f) {
        is_map = c <= 0x8f;
        n = c & 0x0fu;
        head = 1;
    } else if (c >= 0xdc) {
        is_map = c >= 0xde;
        head = c == 0xdc || c == 0xde ? 3 : 5;
        if (avail < head) {
            return 0;
        }
        n = load_be(p + 1, head - 1);
    } else {
        switch (c) {
        case 0xc4: /* bin and str 8, 16, 32: a count, then that many bytes */
        case 0xc5:
        case 0xc6:
        case 0xd9:
        case 0xda:
        case 0xdb:
            head = 1 + (c == 0xc4 || c == 0xd9 ? 1 : c == 0xc5 || c == 0xda ? 2 : 4);
            return avail >= head && avail - head >= load_be(p + 1, head - 1) ? build_scalar(p, o)
                                                                             : 0;
        case 0xc7: /* ext 8, 16, 32: a count, a type byte, that many bytes */
        case 0xc8:
        case 0xc9:
            head = 2 + (c == 0xc7 ? 1 : c == 0xc8 ? 2 : 4);
            return avail >= head && avail - head >= load_be(p + 1, head - 2) ? build_scalar(p, o)
                                                                             : 0;
        case 0xd4: /* fixext 1 to 16 */
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            return avail >= 2 + ((size_t)1 << (c - 0xd4)) ? build_scalar(p, o) : 0;
        case 0xca:
        case 0xce:
        case 0xd2:
            return avail >= 5 ? build_scalar(p, o) : 0;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            return avail >= 9 ? build_scalar(p, o) : 0;
        case 0xcc:
        case 0xd0:
            return avail >= 2 ? build_scalar(p, o) : 0;
        case 0xcd:
        case 0xd1:
            return avail >= 3 ? build_scalar(p, o) : 0;
        default: /* 0xc1 */
            return 0;
        }
    }
    /* A container, as scan() sees one: not this deep, no more items than bytes left. */
    if (level >= SCAN_MAX_DEPTH || (is_map ? 2 * n : n) > avail - head) {
        return 0;
    }
    pos = head;
    if (is_map) {
        msgpack_object_kv *kv = msgpack_zone_malloc(z, n * sizeof(*kv));

        if (kv == NULL) {
            return 0;
        }
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = kv;
        for (size_t i = 0; i < n; i++) {
            size_t k = build(z, p + pos, end, level + 1, &kv[i].key);
            size_t v = k != 0 ? build(z, p + pos + k, end, level + 1, &kv[i].val) : 0;

            if (v == 0) {
                return 0;
            }
            pos += k + v;
        }
    } else {
        msgpack_object *items = msgpack_zone_malloc(z, n * sizeof(*items));

        if (items == NULL) {
            return 0;
        }
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = items;
        for (size_t i = 0; i < n; i++) {
            size_t k = build(z, p + pos, end, level + 1, &items[i]);

            if (k == 0) {
                return 0;
            }
            pos += k;
        }
    }
    return pos;
}

static enum field field_of_key(const char *k, size_t len);

/*
 * The one pass (see the top of the file): if p[0, len) is one map of string keys that scan()
 * accepts, file each known key's value into its slot and return true; else false, with the
 * slots to be cleared before the two-pass way.
 */
static bool walk_map(struct decode *d, msgpack_zone *z, const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;
    unsigned char c = p[0];
    size_t n, pos;

    if (c >= 0x80 && c <= 0x8f) {
        n = c & 0x0fu;
        pos = 1;
    } else if ((c == 0xde && len >= 3) || (c == 0xdf && len >= 5)) {
        pos = c == 0xde ? 3 : 5;
        n = load_be(p + 1, pos - 1);
    } else {
        return false;
    }
    if (2 * n > len - pos) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t klen, vlen;
        const char *k;
        enum field f;
        msgpack_object scratch;

        if (pos == len) {
            return false;
        }
        c = p[pos];
        if (c >= 0xa0 && c <= 0xbf) {
            klen = c & 0x1fu;
            k = (const char *)p + pos + 1;
        } else if (c == 0xd9 && len - pos >= 2) {
            klen = p[pos + 1];
            k = (const char *)p + pos + 2;
        } else {
            return false; /* a longer or non-string key: the two passes say which */
        }
        if ((size_t)(end - (const unsigned char *)k) < klen) {
            return false;
        }
        pos = (size_t)((const unsigned char *)k + klen - p);
        f = field_of_key(k, klen);
        vlen = build(z, p + pos, end, 1, f != F__COUNT ? &d->value[f] : &scratch);
        if (vlen == 0) {
            return false;
        }
        pos += vlen;
        if (f != F__COUNT) {
            /* A repeated key: the later value is in the slot, as in the two passes. */
            d->slot[f] = &d->value[f];
            d->seen[f / 64] |= UINT64_C(1) << (f % 64);
        }
    }
    return pos == len;
}

/*
 * Map a key to its slot. Switching on the length first means most keys are rejected or
 * matched with one fixed-size memcmp, which the compiler inlines.
 */
static enum field field_of_key(const char *k, size_t len)
{
#define KEY_IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)
    switch (len) {
    case 2:
        if (KEY_IS("id")) {
            return F_ID;
        }
        if (KEY_IS("ts")) {
            return F_TS;
        }
        break;
    case 3:
        if (KEY_IS("seq")) {
            return F_SEQ;
        }
        break;
    case 4:
        if (KEY_IS("type")) {
            return F_TYPE;
        }
        if (KEY_IS("role")) {
            return F_ROLE;
        }
        if (KEY_IS("plan")) {
            return F_PLAN;
        }
        if (KEY_IS("rate")) {
            return F_RATE;
        }
        if (KEY_IS("date")) {
            return F_DATE;
        }
        break;
    case 5:
        if (KEY_IS("queue")) {
            return F_QUEUE;
        }
        if (KEY_IS("stage")) {
            return F_STAGE;
        }
        if (KEY_IS("ae_id")) {
            return F_AE_ID;
        }
        if (KEY_IS("scope")) {
            return F_SCOPE;
        }
        if (KEY_IS("as_of")) {
            return F_AS_OF;
        }
        break;
    case 6:
        if (KEY_IS("tenant")) {
            return F_TENANT;
        }
        if (KEY_IS("source")) {
            return F_SOURCE;
        }
        if (KEY_IS("rep_id")) {
            return F_REP_ID;
        }
        if (KEY_IS("reason")) {
            return F_REASON;
        }
        if (KEY_IS("csm_id")) {
            return F_CSM_ID;
        }
        if (KEY_IS("status")) {
            return F_STATUS;
        }
        if (KEY_IS("period")) {
            return F_PERIOD;
        }
        break;
    case 7:
        if (KEY_IS("account")) {
            return F_ACCOUNT;
        }
        if (KEY_IS("lead_id")) {
            return F_LEAD_ID;
        }
        if (KEY_IS("channel")) {
            return F_CHANNEL;
        }
        if (KEY_IS("segment")) {
            return F_SEGMENT;
        }
        if (KEY_IS("outcome")) {
            return F_OUTCOME;
        }
        if (KEY_IS("team_id")) {
            return F_TEAM_ID;
        }
        if (KEY_IS("measure")) {
            return F_MEASURE;
        }
        break;
    case 8:
        if (KEY_IS("owner_id")) {
            return F_OWNER_ID;
        }
        if (KEY_IS("currency")) {
            return F_CURRENCY;
        }
        if (KEY_IS("to_stage")) {
            return F_TO_STAGE;
        }
        if (KEY_IS("quantity")) {
            return F_QUANTITY;
        }
        if (KEY_IS("spend_id")) {
            return F_SPEND_ID;
        }
        if (KEY_IS("function")) {
            return F_FUNCTION;
        }
        if (KEY_IS("category")) {
            return F_CATEGORY;
        }
        if (KEY_IS("scope_id")) {
            return F_SCOPE_ID;
        }
        break;
    case 9:
        if (KEY_IS("source_id")) {
            return F_SOURCE_ID;
        }
        if (KEY_IS("direction")) {
            return F_DIRECTION;
        }
        if (KEY_IS("connected")) {
            return F_CONNECTED;
        }
        if (KEY_IS("deal_type")) {
            return F_DEAL_TYPE;
        }
        if (KEY_IS("tcv_minor")) {
            return F_TCV_MINOR;
        }
        if (KEY_IS("milestone")) {
            return F_MILESTONE;
        }
        if (KEY_IS("cancel_at")) {
            return F_CANCEL_AT;
        }
        break;
    case 10:
        if (KEY_IS("actor_type")) {
            return F_ACTOR_TYPE;
        }
        if (KEY_IS("account_id")) {
            return F_ACCOUNT_ID;
        }
        if (KEY_IS("contact_id")) {
            return F_CONTACT_ID;
        }
        if (KEY_IS("close_date")) {
            return F_CLOSE_DATE;
        }
        if (KEY_IS("from_stage")) {
            return F_FROM_STAGE;
        }
        if (KEY_IS("start_date")) {
            return F_START_DATE;
        }
        if (KEY_IS("invoice_id")) {
            return F_INVOICE_ID;
        }
        if (KEY_IS("period_end")) {
            return F_PERIOD_END;
        }
        if (KEY_IS("allocation")) {
            return F_ALLOCATION;
        }
        break;
    case 11:
        if (KEY_IS("intent_tier")) {
            return F_INTENT_TIER;
        }
        if (KEY_IS("loss_reason")) {
            return F_LOSS_REASON;
        }
        if (KEY_IS("quota_minor")) {
            return F_QUOTA_MINOR;
        }
        if (KEY_IS("price_minor")) {
            return F_PRICE_MINOR;
        }
        if (KEY_IS("refund_type")) {
            return F_REFUND_TYPE;
        }
        if (KEY_IS("forecast_id")) {
            return F_FORECAST_ID;
        }
        break;
    case 12:
        if (KEY_IS("into_lead_id")) {
            return F_INTO_LEAD_ID;
        }
        if (KEY_IS("qualified_by")) {
            return F_QUALIFIED_BY;
        }
        if (KEY_IS("amount_minor")) {
            return F_AMOUNT_MINOR;
        }
        if (KEY_IS("period_start")) {
            return F_PERIOD_START;
        }
        if (KEY_IS("ebitda_minor")) {
            return F_EBITDA_MINOR;
        }
        break;
    case 13:
        if (KEY_IS("ramp_schedule")) {
            return F_RAMP_SCHEDULE;
        }
        if (KEY_IS("revenue_minor")) {
            return F_REVENUE_MINOR;
        }
        break;
    case 14:
        if (KEY_IS("opportunity_id")) {
            return F_OPPORTUNITY_ID;
        }
        if (KEY_IS("discount_minor")) {
            return F_DISCOUNT_MINOR;
        }
        break;
    case 15:
        if (KEY_IS("subscription_id")) {
            return F_SUBSCRIPTION_ID;
        }
        if (KEY_IS("mrr_after_minor")) {
            return F_MRR_AFTER_MINOR;
        }
        break;
    case 16:
        if (KEY_IS("billing_interval")) {
            return F_BILLING_INTERVAL;
        }
        if (KEY_IS("mrr_before_minor")) {
            return F_MRR_BEFORE_MINOR;
        }
        if (KEY_IS("gross_margin_pct")) {
            return F_GROSS_MARGIN_PCT;
        }
        break;
    case 17:
        if (KEY_IS("forecast_category")) {
            return F_FORECAST_CATEGORY;
        }
        if (KEY_IS("discount_duration")) {
            return F_DISCOUNT_DURATION;
        }
        break;
    case 18:
        if (KEY_IS("checklist_complete")) {
            return F_CHECKLIST_COMPLETE;
        }
        if (KEY_IS("service_period_end")) {
            return F_SERVICE_PERIOD_END;
        }
        break;
    case 20:
        if (KEY_IS("service_period_start")) {
            return F_SERVICE_PERIOD_START;
        }
        if (KEY_IS("free_cash_flow_minor")) {
            return F_FREE_CASH_FLOW_MINOR;
        }
        break;
    case 22:
        if (KEY_IS("operating_income_minor")) {
            return F_OPERATING_INCOME_MINOR;
        }
        break;
    default:
        break;
    }
    return F__COUNT;
#undef KEY_IS
}

/*
 * Index of `s` in names[0, count), or -1. The names are a few short words, so a byte loop
 * after the length check beats a call to memcmp() (this runs for every enum and every type).
 */
static int find_name(const struct rs_str *names, size_t count, const char *s, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        const char *name = names[i].ptr;
        size_t j = 0;

        if (names[i].len != len) {
            continue;
        }
        while (j < len && name[j] == s[j]) {
            j++;
        }
        if (j == len) {
            return (int)i;
        }
    }
    return -1;
}

/* Whether the payload has key `f`, nil or not. */
static bool is_seen(const struct decode *d, enum field f)
{
    return ((d->seen[f / 64] >> (f % 64)) & 1u) != 0;
}

/* The slot's value, or NULL when the key is absent or nil (nil means absent). */
static const msgpack_object *present(const struct decode *d, enum field f)
{
    const msgpack_object *o = is_seen(d, f) ? d->slot[f] : NULL;

    return o != NULL && o->type != MSGPACK_OBJECT_NIL ? o : NULL;
}

static int reject_missing(struct decode *d, enum field f)
{
    const char *why = is_seen(d, f) ? " (nil)" : "";

    if (f < F_LEAD_ID || d->type_name == NULL) {
        return reject(d, RS_FAULT_MISSING_FIELD, "missing required field '%s'%s",
                      field_names[f].ptr, why);
    }
    return reject(d, RS_FAULT_MISSING_FIELD, "missing required field '%s' for type '%s'%s",
                  field_names[f].ptr, d->type_name, why);
}

static int reject_wrong_type(struct decode *d, enum field f, const char *expected,
                             const msgpack_object *o)
{
    return reject(d, RS_FAULT_WRONG_TYPE, "field '%s': expected %s, got %s", field_names[f].ptr,
                  expected, object_kind(o));
}

/* Read a string field; an unset optional one becomes RS_STR_NULL. */
static int get_str(struct decode *d, enum field f, unsigned flags, struct rs_str *out)
{
    const msgpack_object *o = present(d, f);

    if (o == NULL) {
        *out = RS_STR_NULL;
        return (flags & FIELD_REQUIRED) != 0 ? reject_missing(d, f) : 0;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return reject_wrong_type(d, f, "a string", o);
    }
    if (o->via.str.size == 0 && (flags & FIELD_NON_EMPTY) != 0) {
        return reject(d, RS_FAULT_BAD_VALUE, "field '%s': expected a non-empty string, got ''",
                      field_names[f].ptr);
    }
    /* State and timer keys hold identifiers whole: a longer one would be cut and collide. */
    if (o->via.str.size > RS_EVENT_ID_MAX && (flags & FIELD_NON_EMPTY) != 0) {
        return reject(d, RS_FAULT_BAD_VALUE,
                      "field '%s': an identifier of %" PRIu32 " bytes, at most %d allowed",
                      field_names[f].ptr, o->via.str.size, RS_EVENT_ID_MAX);
    }
    out->ptr = o->via.str.ptr;
    out->len = o->via.str.size;
    return 0;
}

/* Read a required string that must be one of names[0, count); *out is its index. */
static int get_enum(struct decode *d, enum field f, const struct rs_str *names, size_t count,
                    int *out)
{
    const msgpack_object *o = present(d, f);
    char expected[128];
    char quoted[QUOTE_BUF_SIZE];
    size_t used = 0;

    if (o == NULL) {
        return reject_missing(d, f);
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return reject_wrong_type(d, f, "a string", o);
    }
    *out = find_name(names, count, o->via.str.ptr, o->via.str.size);
    if (*out >= 0) {
        return 0;
    }
    /* The list is built from the table, so the message cannot drift from what is accepted. */
    expected[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        int w = snprintf(expected + used, sizeof(expected) - used, "%s%s", i > 0 ? ", " : "",
                         names[i].ptr);

        if (w < 0 || (size_t)w >= sizeof(expected) - used) {
            break;
        }
        used += (size_t)w;
    }
    return reject(d, RS_FAULT_BAD_VALUE, "field '%s': expected one of %s, got %s",
                  field_names[f].ptr, expected, quote(quoted, o->via.str.ptr, o->via.str.size));
}

static int get_bool(struct decode *d, enum field f, bool *out)
{
    const msgpack_object *o = present(d, f);

    if (o == NULL) {
        return reject_missing(d, f);
    }
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        return reject_wrong_type(d, f, "a bool", o);
    }
    *out = o->via.boolean;
    return 0;
}

/* Read an optional integer that must fit int64. */
static int get_opt_int64(struct decode *d, enum field f, int64_t *out, bool *has)
{
    const msgpack_object *o = present(d, f);

    *has = false;
    *out = 0;
    if (o == NULL) {
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
    } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) {
            return reject(d, RS_FAULT_BAD_VALUE, "field '%s': %" PRIu64 " does not fit int64",
                          field_names[f].ptr, o->via.u64);
        }
        *out = (int64_t)o->via.u64;
    } else {
        return reject_wrong_type(d, f, "an integer", o);
    }
    *has = true;
    return 0;
}

static int get_date(struct decode *d, enum field f, const msgpack_object *o, int64_t *out);

/*
 * A time: `ts`, close_date, start_date and the times of the revenue events. A positive integer
 * (ms), or a timestamp extension (-1) truncated to whole ms; with FIELD_DATE also a day as
 * "YYYY-MM-DD" (its first instant, UTC). An absent optional time is `dflt`.
 */
static int get_time(struct decode *d, enum field f, unsigned flags, int64_t dflt, int64_t *out)
{
    bool date_ok = (flags & FIELD_DATE) != 0;
    const char *expected = date_ok ? "an integer (ms), a timestamp or a date (YYYY-MM-DD)"
                                   : "an integer (ms) or a timestamp";
    const msgpack_object *o = present(d, f);
    const char *name = field_names[f].ptr;
    msgpack_timestamp t;

    if (o == NULL) {
        *out = dflt;
        return (flags & FIELD_REQUIRED) != 0 ? reject_missing(d, f) : 0;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        if (date_ok) {
            return get_date(d, f, o, out);
        }
        return reject_wrong_type(d, f, expected, o);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 == 0 || o->via.u64 > INT64_MAX) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': expected a positive int64 (ms), got %" PRIu64, name,
                          o->via.u64);
        }
        if (o->via.u64 > RS_EVENT_TS_MAX) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': %" PRIu64 " ms is after the year 9999 (microseconds "
                          "instead of milliseconds?)",
                          name, o->via.u64);
        }
        *out = (int64_t)o->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return reject(d, RS_FAULT_BAD_VALUE,
                      "field '%s': expected a positive int64 (ms), got %" PRId64, name, o->via.i64);
    case MSGPACK_OBJECT_EXT:
        if (o->via.ext.type != -1) {
            return reject(d, RS_FAULT_WRONG_TYPE, "field '%s': expected %s, got ext type %d", name,
                          expected, o->via.ext.type);
        }
        if (!msgpack_object_to_timestamp(o, &t)) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': a timestamp has 4, 8 or 12 bytes, got %" PRIu32, name,
                          o->via.ext.size);
        }
        if (t.tv_nsec > 999999999u) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': timestamp nanoseconds %" PRIu32 " exceed 999999999", name,
                          t.tv_nsec);
        }
        /* Positive and small enough that seconds * 1000 + 999 fits int64. */
        if (t.tv_sec < 0 || t.tv_sec > INT64_MAX / 1000 - 1 ||
            (t.tv_sec == 0 && t.tv_nsec < 1000000u)) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': expected a positive time of at least 1 ms, got %" PRId64
                          " s %" PRIu32 " ns",
                          name, t.tv_sec, t.tv_nsec);
        }
        *out = t.tv_sec * 1000 + (int64_t)(t.tv_nsec / 1000000u);
        if (*out > (int64_t)RS_EVENT_TS_MAX) {
            return reject(d, RS_FAULT_BAD_VALUE, "field '%s': %" PRId64 " s is after the year 9999",
                          name, t.tv_sec);
        }
        return 0;
    default:
        return reject_wrong_type(d, f, expected, o);
    }
}

/* An optional enum; *has says whether it was present. */
static int get_opt_enum(struct decode *d, enum field f, const struct rs_str *names, size_t count,
                        int *out, bool *has)
{
    *out = 0;
    *has = present(d, f) != NULL;
    return *has ? get_enum(d, f, names, count, out) : 0;
}

/* An optional bool; absent means false. */
static int get_opt_bool(struct decode *d, enum field f, bool *out)
{
    *out = false;
    return present(d, f) != NULL ? get_bool(d, f, out) : 0;
}

/*
 * Money in minor units (amount_minor, tcv_minor, quota_minor): an int64, never a float (§1.1).
 * `positive` asks for > 0 (a quota of nothing divides by zero later), otherwise >= 0 (a refund
 * or discount is an event of its own, not a negative amount). *has may be NULL for required
 * fields.
 */
static int get_money(struct decode *d, enum field f, unsigned flags, bool positive, int64_t *out,
                     bool *has)
{
    bool set = false;

    if (get_opt_int64(d, f, out, &set) != 0) {
        return RS_EDECODE;
    }
    if (has != NULL) {
        *has = set;
    }
    if (!set) {
        return (flags & FIELD_REQUIRED) != 0 ? reject_missing(d, f) : 0;
    }
    if (positive ? *out <= 0 : *out < 0) {
        return reject(d, RS_FAULT_BAD_VALUE, "field '%s': expected %s integer, got %" PRId64,
                      field_names[f].ptr, positive ? "a positive" : "a non-negative", *out);
    }
    return 0;
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * ISO 4217 alphabetic code: the shape only. Whether the code is assigned is not checked: the
 * list changes, and an unknown code is a data-quality finding, not a reason to drop the event.
 */
static int get_currency(struct decode *d, enum field f, struct rs_str *out)
{
    char quoted[QUOTE_BUF_SIZE];

    if (get_str(d, f, FIELD_REQUIRED, out) != 0) {
        return RS_EDECODE;
    }
    if (out->len == 3 && is_upper(out->ptr[0]) && is_upper(out->ptr[1]) && is_upper(out->ptr[2])) {
        return 0;
    }
    return reject(d, RS_FAULT_BAD_VALUE,
                  "field '%s': expected an ISO 4217 code of three upper-case letters, got %s",
                  field_names[f].ptr, quote(quoted, out->ptr, out->len));
}

/* Days from 1970-01-01 to the first day of `month` (1..12) of `year` (1970..9999), UTC. */
static int64_t days_to_month(int year, int month)
{
    static const int days_before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
    int y = year - 1;
    /* Gregorian leap years in [1970, year): every 4th, but of the centuries only every 4th. */
    int leaps = (y / 4 - y / 100 + y / 400) - (1969 / 4 - 1969 / 100 + 1969 / 400);
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return (int64_t)(year - 1970) * 365 + leaps + days_before[month - 1] +
           (leap && month > 2 ? 1 : 0);
}

/*
 * `period`: exactly "YYYY-MM". No other spelling ("2024-5", "2024/05", "2024-05-01") is taken,
 * because the quota is keyed by the month and two spellings of one month would be two quotas.
 * Years before 1970 would give a negative period start, which no event time can reach.
 */
static int get_period(struct decode *d, enum field f, struct rs_str *out, int64_t *start_ms)
{
    char quoted[QUOTE_BUF_SIZE];
    const char *p;

    if (get_str(d, f, FIELD_REQUIRED, out) != 0) {
        return RS_EDECODE;
    }
    p = out->ptr;
    if (out->len == 7 && is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) &&
        p[4] == '-' && is_digit(p[5]) && is_digit(p[6])) {
        int year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
        int month = (p[5] - '0') * 10 + (p[6] - '0');

        if (year >= 1970 && month >= 1 && month <= 12) {
            *start_ms = days_to_month(year, month) * INT64_C(86400000);
            return 0;
        }
    }
    return reject(d, RS_FAULT_BAD_VALUE,
                  "field '%s': expected a month as YYYY-MM from 1970-01 to 9999-12, got %s",
                  field_names[f].ptr, quote(quoted, out->ptr, out->len));
}

/* Milliseconds in a day; days are UTC, so there are no leap seconds or zone shifts. */
#define DAY_MS INT64_C(86400000)

/* The value of the `n` decimal digits at p; -1 unless all of them are digits. */
static int parse_digits(const char *p, size_t n)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i])) {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return days[month - 1] + (leap && month == 2 ? 1 : 0);
}

/*
 * A day as exactly "YYYY-MM-DD", 1970-01-01 to 9999-12-31; *out is its first instant, UTC.
 * Only this spelling: a date with a time or a zone would need rules the producer should apply.
 */
static int get_date(struct decode *d, enum field f, const msgpack_object *o, int64_t *out)
{
    char quoted[QUOTE_BUF_SIZE];
    const char *p = o->via.str.ptr;

    if (o->via.str.size == 10 && p[4] == '-' && p[7] == '-') {
        int year = parse_digits(p, 4);
        int month = parse_digits(p + 5, 2);
        int day = parse_digits(p + 8, 2);

        if (year >= 1970 && month >= 1 && month <= 12 && day >= 1 &&
            day <= days_in_month(year, month)) {
            *out = (days_to_month(year, month) + day - 1) * DAY_MS;
            return 0;
        }
    }
    return reject(d, RS_FAULT_BAD_VALUE,
                  "field '%s': expected a date as YYYY-MM-DD from 1970-01-01 to 9999-12-31, got %s",
                  field_names[f].ptr, quote(quoted, p, o->via.str.size));
}

/* Which spellings of a reporting period a field takes. */
enum {
    PERIOD_MONTH = 1 << 0,   /* "YYYY-MM" */
    PERIOD_QUARTER = 1 << 1, /* "YYYY-Qn" */
    PERIOD_YEAR = 1 << 2,    /* "YYYY" */
};

/*
 * A reporting period (struct rs_period): "YYYY-MM", "YYYY-Qn" or "YYYY", as `allowed` says,
 * year 1970..9999. Exactly these spellings, for the reason given at get_period().
 */
static int get_report_period(struct decode *d, enum field f, unsigned allowed,
                             struct rs_period *out)
{
    char quoted[QUOTE_BUF_SIZE];
    const char *p;
    size_t len;
    int year;
    int month = 1;
    int months = 0;

    memset(out, 0, sizeof(*out));
    if (get_str(d, f, FIELD_REQUIRED, &out->text) != 0) {
        return RS_EDECODE;
    }
    p = out->text.ptr;
    len = out->text.len;
    year = len >= 4 ? parse_digits(p, 4) : -1;
    if (year >= 1970) {
        if (len == 4 && (allowed & PERIOD_YEAR) != 0) {
            months = 12;
        } else if (len == 7 && p[4] == '-' && p[5] == 'Q' && (allowed & PERIOD_QUARTER) != 0) {
            int quarter = parse_digits(p + 6, 1);

            if (quarter >= 1 && quarter <= 4) {
                month = quarter * 3 - 2;
                months = 3;
            }
        } else if (len == 7 && p[4] == '-' && (allowed & PERIOD_MONTH) != 0) {
            month = parse_digits(p + 5, 2);
            months = month >= 1 && month <= 12 ? 1 : 0;
        }
    }
    if (months != 0) {
        out->year = (uint16_t)year;
        out->first_month = (uint8_t)month;
        out->months = (uint8_t)months;
        return 0;
    }
    return reject(d, RS_FAULT_BAD_VALUE, "field '%s': expected %s from 1970 to 9999, got %s",
                  field_names[f].ptr,
                  (allowed & PERIOD_YEAR) != 0 ? "a month (YYYY-MM), a quarter (YYYY-Qn) or a "
                                                 "year (YYYY)"
                                               : "a month (YYYY-MM) or a quarter (YYYY-Qn)",
                  quote(quoted, p, len));
}

/*
 * Money that may take either sign (spend credits, a negative forecast of net new ARR, a loss):
 * an int64 as for get_money(). *has may be NULL for required fields.
 */
static int get_signed_money(struct decode *d, enum field f, unsigned flags, int64_t *out, bool *has)
{
    bool set = false;

    if (get_opt_int64(d, f, out, &set) != 0) {
        return RS_EDECODE;
    }
    if (has != NULL) {
        *has = set;
    }
    return !set && (flags & FIELD_REQUIRED) != 0 ? reject_missing(d, f) : 0;
}

/*
 * A number that is not money (a rate, a percentage): an integer or a float, finite and in
 * [min, max]; `min_open` excludes min itself (a rate of 0 converts everything to nothing).
 * `range` says that in words for the message.
 */
static int get_number(struct decode *d, enum field f, unsigned flags, double min, bool min_open,
                      double max, const char *range, double *out, bool *has)
{
    const msgpack_object *o = present(d, f);
    const char *name = field_names[f].ptr;

    *out = 0.0;
    *has = false;
    if (o == NULL) {
        return (flags & FIELD_REQUIRED) != 0 ? reject_missing(d, f) : 0;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32: /* msgpack-c widens both to via.f64 */
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        break;
    default:
        return reject_wrong_type(d, f, "a number", o);
    }
    /* NaN fails every comparison, so it is named on its own rather than slipping through. */
    if (!isfinite(*out)) {
        return reject(d, RS_FAULT_BAD_VALUE, "field '%s': expected a finite number, got %g", name,
                      *out);
    }
    if ((min_open ? *out <= min : *out < min) || *out > max) {
        return reject(d, RS_FAULT_BAD_VALUE, "field '%s': expected %s, got %g", name, range, *out);
    }
    *has = true;
    return 0;
}

/* `ramp_schedule`: percent of the full quota for tenure months 1..n; absent or [] means no
 * ramp (a rep hired at full quota). */
static int get_ramp(struct decode *d, enum field f, uint16_t pct[RS_RAMP_MAX], uint32_t *n)
{
    const msgpack_object *o = present(d, f);
    const char *name = field_names[f].ptr;

    *n = 0;
    if (o == NULL) {
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return reject_wrong_type(d, f, "an array of integers", o);
    }
    if (o->via.array.size > RS_RAMP_MAX) {
        return reject(d, RS_FAULT_BAD_VALUE, "field '%s': %" PRIu32 " months, at most %d allowed",
                      name, o->via.array.size, RS_RAMP_MAX);
    }
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *item = &o->via.array.ptr[i];

        if (item->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': item %" PRIu32 " is %" PRId64 ", expected 0..%d (percent)",
                          name, i, item->via.i64, RS_RAMP_PCT_MAX);
        }
        if (item->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return reject(d, RS_FAULT_WRONG_TYPE,
                          "field '%s': item %" PRIu32 ": expected an integer, got %s", name, i,
                          object_kind(item));
        }
        if (item->via.u64 > RS_RAMP_PCT_MAX) {
            return reject(d, RS_FAULT_BAD_VALUE,
                          "field '%s': item %" PRIu32 " is %" PRIu64 ", expected 0..%d (percent)",
                          name, i, item->via.u64, RS_RAMP_PCT_MAX);
        }
        pct[i] = (uint16_t)item->via.u64;
    }
    *n = o->via.array.size;
    return 0;
}

/*
 * METRICS.md §2: `account` in the envelope and `account_id` are the same value, and a producer
 * may set only `account`. So account_id falls back to account, and two different values are
 * a contradiction, not a choice to make here.
 */
static int get_account_id(struct decode *d, const struct rs_event *ev, struct rs_str *out)
{
    char a[QUOTE_BUF_SIZE];
    char b[QUOTE_BUF_SIZE];
    unsigned flags = rs_str_is_set(ev->account) ? FIELD_OPTIONAL_ID : FIELD_REQUIRED_ID;

    if (get_str(d, F_ACCOUNT_ID, flags, out) != 0) {
        return RS_EDECODE;
    }
    if (!rs_str_is_set(*out)) {
        *out = ev->account;
    } else if (rs_str_is_set(ev->account) &&
               (out->len != ev->account.len || memcmp(out->ptr, ev->account.ptr, out->len) != 0)) {
        return reject(d, RS_FAULT_BAD_VALUE, "field 'account_id': %s differs from 'account' %s",
                      quote(a, out->ptr, out->len), quote(b, ev->account.ptr, ev->account.len));
    }
    return 0;
}

static int decode_lead_created(struct decode *d, struct rs_lead_created *lc)
{
    int tier = 0;

    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &lc->lead_id) != 0 ||
        get_str(d, F_CHANNEL, FIELD_REQUIRED, &lc->channel) != 0 ||
        get_enum(d, F_INTENT_TIER, tier_names, COUNT_OF(tier_names), &tier) != 0 ||
        get_str(d, F_SEGMENT, FIELD_REQUIRED, &lc->segment) != 0 ||
        get_str(d, F_OWNER_ID, FIELD_OPTIONAL_ID, &lc->owner_id) != 0) {
        return RS_EDECODE;
    }
    lc->intent_tier = (enum rs_intent_tier)tier;
    return 0;
}

static int decode_lead_touched(struct decode *d, struct rs_lead_touched *lt)
{
    int actor = 0;
    int channel = 0;
    int direction = 0;

    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &lt->lead_id) != 0 ||
        get_str(d, F_REP_ID, FIELD_REQUIRED_ID, &lt->rep_id) != 0 ||
        get_enum(d, F_ACTOR_TYPE, actor_names, COUNT_OF(actor_names), &actor) != 0 ||
        get_enum(d, F_CHANNEL, touch_channel_names, COUNT_OF(touch_channel_names), &channel) != 0 ||
        get_enum(d, F_DIRECTION, direction_names, COUNT_OF(direction_names), &direction) != 0 ||
        get_bool(d, F_CONNECTED, &lt->connected) != 0) {
        return RS_EDECODE;
    }
    lt->actor_type = (enum rs_actor_type)actor;
    lt->channel = (enum rs_touch_channel)channel;
    lt->direction = (enum rs_direction)direction;
    return 0;
}

static int decode_lead_disqualified(struct decode *d, struct rs_lead_disqualified *ld)
{
    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &ld->lead_id) != 0 ||
        get_str(d, F_REASON, FIELD_REQUIRED, &ld->reason) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_lead_converted(struct decode *d, struct rs_event *ev)
{
    struct rs_lead_converted *lc = &ev->u.lead_converted;

    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &lc->lead_id) != 0 ||
        get_account_id(d, ev, &lc->account_id) != 0 ||
        get_str(d, F_CONTACT_ID, FIELD_REQUIRED_ID, &lc->contact_id) != 0 ||
        get_str(d, F_OPPORTUNITY_ID, FIELD_OPTIONAL_ID, &lc->opportunity_id) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_lead_merged(struct decode *d, struct rs_lead_merged *lm)
{
    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &lm->lead_id) != 0 ||
        get_str(d, F_INTO_LEAD_ID, FIELD_REQUIRED_ID, &lm->into_lead_id) != 0 ||
        get_str(d, F_REASON, FIELD_OPTIONAL, &lm->reason) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_lead_assigned(struct decode *d, struct rs_lead_assigned *la)
{
    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &la->lead_id) != 0 ||
        get_str(d, F_OWNER_ID, FIELD_REQUIRED_ID, &la->owner_id) != 0 ||
        get_str(d, F_QUEUE, FIELD_OPTIONAL, &la->queue) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_lead_qualified(struct decode *d, struct rs_lead_qualified *lq)
{
    int stage = 0;

    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &lq->lead_id) != 0 ||
        get_enum(d, F_STAGE, qual_stage_names, COUNT_OF(qual_stage_names), &stage) != 0 ||
        get_str(d, F_QUALIFIED_BY, FIELD_OPTIONAL, &lq->qualified_by) != 0) {
        return RS_EDECODE;
    }
    lq->stage = (enum rs_qual_stage)stage;
    return 0;
}

/* lead.recycled and lead.reopened. */
static int decode_lead_lifecycle(struct decode *d, struct rs_lead_lifecycle *ll)
{
    if (get_str(d, F_LEAD_ID, FIELD_REQUIRED_ID, &ll->lead_id) != 0 ||
        get_str(d, F_REASON, FIELD_OPTIONAL, &ll->reason) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_opp_created(struct decode *d, struct rs_event *ev)
{
    struct rs_opp_created *oc = &ev->u.opp_created;
    int deal_type = 0;

    if (get_str(d, F_OPPORTUNITY_ID, FIELD_REQUIRED_ID, &oc->opportunity_id) != 0 ||
        get_account_id(d, ev, &oc->account_id) != 0 ||
        get_str(d, F_LEAD_ID, FIELD_OPTIONAL_ID, &oc->lead_id) != 0 ||
        get_str(d, F_OWNER_ID, FIELD_REQUIRED_ID, &oc->owner_id) != 0 ||
        get_enum(d, F_DEAL_TYPE, deal_type_names, COUNT_OF(deal_type_names), &deal_type) != 0 ||
        get_money(d, F_AMOUNT_MINOR, FIELD_REQUIRED, false, &oc->amount_minor, NULL) != 0 ||
        get_currency(d, F_CURRENCY, &oc->currency) != 0 ||
        get_str(d, F_STAGE, FIELD_REQUIRED, &oc->stage) != 0 ||
        get_str(d, F_SEGMENT, FIELD_OPTIONAL, &oc->segment) != 0 ||
        get_str(d, F_TEAM_ID, FIELD_OPTIONAL_ID, &oc->team_id) != 0) {
        return RS_EDECODE;
    }
    oc->deal_type = (enum rs_deal_type)deal_type;
    return 0;
}

static int decode_opp_stage_changed(struct decode *d, struct rs_opp_stage_changed *sc)
{
    if (get_str(d, F_OPPORTUNITY_ID, FIELD_REQUIRED_ID, &sc->opportunity_id) != 0 ||
        get_str(d, F_FROM_STAGE, FIELD_REQUIRED, &sc->from_stage) != 0 ||
        get_str(d, F_TO_STAGE, FIELD_REQUIRED, &sc->to_stage) != 0 ||
        get_str(d, F_FORECAST_CATEGORY, FIELD_OPTIONAL, &sc->forecast_category) != 0 ||
        get_money(d, F_AMOUNT_MINOR, FIELD_OPTIONAL, false, &sc->amount_minor, &sc->has_amount) !=
            0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_opp_closed(struct decode *d, struct rs_event *ev)
{
    struct rs_opp_closed *oc = &ev->u.opp_closed;
    int outcome = 0;
    int deal_type = 0;

    if (get_str(d, F_OPPORTUNITY_ID, FIELD_REQUIRED_ID, &oc->opportunity_id) != 0 ||
        get_enum(d, F_OUTCOME, outcome_names, COUNT_OF(outcome_names), &outcome) != 0 ||
        get_money(d, F_AMOUNT_MINOR, FIELD_REQUIRED, false, &oc->amount_minor, NULL) != 0 ||
        get_money(d, F_TCV_MINOR, FIELD_OPTIONAL, false, &oc->tcv_minor, &oc->has_tcv) != 0 ||
        get_currency(d, F_CURRENCY, &oc->currency) != 0 ||
        get_str(d, F_LOSS_REASON, FIELD_OPTIONAL, &oc->loss_reason) != 0 ||
        get_time(d, F_CLOSE_DATE, FIELD_OPTIONAL, ev->ts_ms, &oc->close_date_ms) != 0 ||
        get_str(d, F_OWNER_ID, FIELD_OPTIONAL_ID, &oc->owner_id) != 0 ||
        get_opt_enum(d, F_DEAL_TYPE, deal_type_names, COUNT_OF(deal_type_names), &deal_type,
                     &oc->has_deal_type) != 0) {
        return RS_EDECODE;
    }
    oc->outcome = (enum rs_outcome)outcome;
    oc->deal_type = (enum rs_deal_type)deal_type;
    return 0;
}

static int decode_opp_reopened(struct decode *d, struct rs_opp_reopened *orp)
{
    if (get_str(d, F_OPPORTUNITY_ID, FIELD_REQUIRED_ID, &orp->opportunity_id) != 0 ||
        get_str(d, F_REASON, FIELD_OPTIONAL, &orp->reason) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

/* handoff.started and handoff.completed: only a completion must say whether the checklist is
 * done (SLA-04 stops on it); a start without it has not done it yet. */
static int decode_handoff(struct decode *d, struct rs_event *ev, bool completed)
{
    struct rs_handoff *h = &ev->u.handoff;

    if (get_account_id(d, ev, &h->account_id) != 0 ||
        get_str(d, F_OPPORTUNITY_ID, FIELD_REQUIRED_ID, &h->opportunity_id) != 0 ||
        get_str(d, F_AE_ID, FIELD_OPTIONAL_ID, &h->ae_id) != 0 ||
        get_str(d, F_CSM_ID, FIELD_OPTIONAL_ID, &h->csm_id) != 0 ||
        (completed ? get_bool(d, F_CHECKLIST_COMPLETE, &h->checklist_complete)
                   : get_opt_bool(d, F_CHECKLIST_COMPLETE, &h->checklist_complete)) != 0 ||
        get_str(d, F_SEGMENT, FIELD_OPTIONAL, &h->segment) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_onboarding_milestone(struct decode *d, struct rs_event *ev)
{
    struct rs_onboarding_milestone *om = &ev->u.onboarding_milestone;
    int milestone = 0;

    if (get_account_id(d, ev, &om->account_id) != 0 ||
        get_enum(d, F_MILESTONE, milestone_names, COUNT_OF(milestone_names), &milestone) != 0 ||
        get_str(d, F_STATUS, FIELD_OPTIONAL, &om->status) != 0) {
        return RS_EDECODE;
    }
    om->milestone = (enum rs_milestone)milestone;
    return 0;
}

/* onboarding.paused needs a reason (SLA-05 pauses only for some); a resume needs none. */
static int decode_onboarding_pause(struct decode *d, struct rs_event *ev, bool paused)
{
    struct rs_onboarding_pause *op = &ev->u.onboarding_pause;

    if (get_account_id(d, ev, &op->account_id) != 0 ||
        get_str(d, F_REASON, paused ? FIELD_REQUIRED : FIELD_OPTIONAL, &op->reason) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_rep_onboarded(struct decode *d, struct rs_event *ev)
{
    struct rs_rep_onboarded *ro = &ev->u.rep_onboarded;

    if (get_str(d, F_REP_ID, FIELD_REQUIRED_ID, &ro->rep_id) != 0 ||
        get_time(d, F_START_DATE, FIELD_OPTIONAL, ev->ts_ms, &ro->start_date_ms) != 0 ||
        get_str(d, F_ROLE, FIELD_OPTIONAL, &ro->role) != 0 ||
        get_str(d, F_SEGMENT, FIELD_OPTIONAL, &ro->segment) != 0 ||
        get_str(d, F_TEAM_ID, FIELD_OPTIONAL_ID, &ro->team_id) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_rep_quota_set(struct decode *d, struct rs_rep_quota_set *q)
{
    if (get_str(d, F_REP_ID, FIELD_REQUIRED_ID, &q->rep_id) != 0 ||
        get_period(d, F_PERIOD, &q->period, &q->period_start_ms) != 0 ||
        get_money(d, F_QUOTA_MINOR, FIELD_REQUIRED, true, &q->quota_minor, NULL) != 0 ||
        get_currency(d, F_CURRENCY, &q->currency) != 0 ||
        get_ramp(d, F_RAMP_SCHEDULE, q->ramp_pct, &q->ramp_n) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

static int decode_rep_terminated(struct decode *d, struct rs_rep_terminated *rt)
{
    if (get_str(d, F_REP_ID, FIELD_REQUIRED_ID, &rt->rep_id) != 0 ||
        get_str(d, F_REASON, FIELD_OPTIONAL, &rt->reason) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

/*
 * subscription.*: the MRR is mrr_after_minor or, lacking it, price_minor (the ledger
 * normalises it, METRICS.md §1.4); one of them must be there, and the message names the
 * preferred one.
 */
static int decode_subscription(struct decode *d, struct rs_event *ev)
{
    struct rs_subscription *sub = &ev->u.subscription;
    int interval = 0;
    int duration = 0;
    int status = 0;
    bool has_quantity = false;
    bool has_duration = false;

    if (get_str(d, F_SUBSCRIPTION_ID, FIELD_REQUIRED_ID, &sub->subscription_id) != 0 ||
        get_account_id(d, ev, &sub->account_id) != 0 ||
        get_str(d, F_PLAN, FIELD_OPTIONAL, &sub->plan) != 0 ||
        get_money(d, F_QUANTITY, FIELD_OPTIONAL, false, &sub->quantity, &has_quantity) != 0 ||
        get_enum(d, F_BILLING_INTERVAL, billing_interval_names, COUNT_OF(billing_interval_names),
                 &interval) != 0 ||
        get_money(d, F_MRR_AFTER_MINOR, FIELD_OPTIONAL, false, &sub->mrr_after_minor,
                  &sub->has_mrr_after) != 0 ||
        get_money(d, F_MRR_BEFORE_MINOR, FIELD_OPTIONAL, false, &sub->mrr_before_minor,
                  &sub->has_mrr_before) != 0 ||
        get_money(d, F_PRICE_MINOR, FIELD_OPTIONAL, false, &sub->price_minor, &sub->has_price) !=
            0 ||
        get_money(d, F_DISCOUNT_MINOR, FIELD_OPTIONAL, false, &sub->discount_minor, NULL) != 0 ||
        get_opt_enum(d, F_DISCOUNT_DURATION, discount_duration_names,
                     COUNT_OF(discount_duration_names), &duration, &has_duration) != 0 ||
        get_currency(d, F_CURRENCY, &sub->currency) != 0 ||
        get_time(d, F_SERVICE_PERIOD_START, FIELD_DATE, ev->ts_ms, &sub->service_period_start_ms) !=
            0 ||
        get_time(d, F_SERVICE_PERIOD_END, FIELD_DATE, 0, &sub->service_period_end_ms) != 0 ||
        get_enum(d, F_STATUS, sub_status_names, COUNT_OF(sub_status_names), &status) != 0 ||
        get_time(d, F_CANCEL_AT, FIELD_OPTIONAL, 0, &sub->cancel_at_ms) != 0) {
        return RS_EDECODE;
    }
    if (!sub->has_mrr_after && !sub->has_price) {
        return reject_missing(d, F_MRR_AFTER_MINOR);
    }
    if (!has_quantity) {
        sub->quantity = 1; /* a subscription is for one seat unless it says otherwise */
    }
    sub->has_period_end = present(d, F_SERVICE_PERIOD_END) != NULL;
    if (sub->has_period_end && sub->service_period_end_ms <= sub->service_period_start_ms) {
        return reject(d, RS_FAULT_BAD_VALUE,
                      "field 'service_period_end': %" PRId64
                      " ms is not after 'service_period_start' %" PRId64 " ms",
                      sub->service_period_end_ms, sub->service_period_start_ms);
    }
    sub->has_cancel_at = present(d, F_CANCEL_AT) != NULL;
    sub->interval = (enum rs_billing_interval)interval;
    sub->discount_duration = (enum rs_discount_duration)duration; /* absent: forever (0) */
    sub->status = (enum rs_sub_status)status;
    return 0;
}

/* invoice.*: only a refund says how much of the invoice it returns; the others ignore the key. */
static int decode_invoice(struct decode *d, struct rs_event *ev, bool refunded)
{
    struct rs_invoice *inv = &ev->u.invoice;
    int refund = 0;

    inv->refund_type = RS_REFUND_NONE;
    if (get_str(d, F_INVOICE_ID, FIELD_REQUIRED_ID, &inv->invoice_id) != 0 ||
        get_account_id(d, ev, &inv->account_id) != 0 ||
        get_str(d, F_SUBSCRIPTION_ID, FIELD_OPTIONAL_ID, &inv->subscription_id) != 0 ||
        get_money(d, F_AMOUNT_MINOR, FIELD_REQUIRED, false, &inv->amount_minor, NULL) != 0 ||
        get_currency(d, F_CURRENCY, &inv->currency) != 0 ||
        (refunded && get_enum(d, F_REFUND_TYPE, refund_type_names, COUNT_OF(refund_type_names),
                              &refund) != 0) ||
        get_str(d, F_REASON, FIELD_OPTIONAL, &inv->reason) != 0) {
        return RS_EDECODE;
    }
    if (refunded) {
        inv->refund_type = (enum rs_refund_type)(refund + REFUND_FIRST);
    }
    return 0;
}

static int decode_spend(struct decode *d, struct rs_spend *sp)
{
    int function = 0;
    int category = 0;
    int allocation = 0;

    if (get_str(d, F_SPEND_ID, FIELD_OPTIONAL_ID, &sp->spend_id) != 0 ||
        get_time(d, F_PERIOD_START, FIELD_REQUIRED | FIELD_DATE, 0, &sp->period_start_ms) != 0 ||
        get_time(d, F_PERIOD_END, FIELD_REQUIRED | FIELD_DATE, 0, &sp->period_end_ms) != 0 ||
        get_enum(d, F_FUNCTION, spend_function_names, COUNT_OF(spend_function_names), &function) !=
            0 ||
        get_enum(d, F_CATEGORY, spend_category_names, COUNT_OF(spend_category_names), &category) !=
            0 ||
        get_enum(d, F_ALLOCATION, spend_allocation_names, COUNT_OF(spend_allocation_names),
                 &allocation) != 0 ||
        get_signed_money(d, F_AMOUNT_MINOR, FIELD_REQUIRED, &sp->amount_minor, NULL) != 0 ||
        get_currency(d, F_CURRENCY, &sp->currency) != 0) {
        return RS_EDECODE;
    }
    /* Spend is prorated by days over the period: an empty one would divide by zero. */
    if (sp->period_end_ms <= sp->period_start_ms) {
        return reject(d, RS_FAULT_BAD_VALUE,
                      "field 'period_end': %" PRId64 " ms is not after 'period_start' %" PRId64
                      " ms",
                      sp->period_end_ms, sp->period_start_ms);
    }
    sp->function = (enum rs_spend_function)function;
    sp->category = (enum rs_spend_category)category;
    sp->allocation = (enum rs_spend_allocation)allocation;
    return 0;
}

/* forecast.submitted: a team or rep forecast must say whose it is; the company is one. M22
 * compares forecasts by month or quarter, so a year is not a forecast period. */
static int decode_forecast(struct decode *d, struct rs_event *ev)
{
    struct rs_forecast *fc = &ev->u.forecast;
    int scope = 0;
    int measure = 0;
    int category = 0;

    if (get_str(d, F_FORECAST_ID, FIELD_REQUIRED_ID, &fc->forecast_id) != 0 ||
        get_enum(d, F_SCOPE, forecast_scope_names, COUNT_OF(forecast_scope_names), &scope) != 0 ||
        get_str(d, F_SCOPE_ID, FIELD_OPTIONAL_ID, &fc->scope_id) != 0 ||
        get_report_period(d, F_PERIOD, PERIOD_MONTH | PERIOD_QUARTER, &fc->period) != 0 ||
        get_enum(d, F_MEASURE, forecast_measure_names, COUNT_OF(forecast_measure_names),
                 &measure) != 0 ||
        get_enum(d, F_CATEGORY, forecast_category_names, COUNT_OF(forecast_category_names),
                 &category) != 0 ||
        get_signed_money(d, F_AMOUNT_MINOR, FIELD_REQUIRED, &fc->amount_minor, NULL) != 0 ||
        get_currency(d, F_CURRENCY, &fc->currency) != 0 ||
        get_time(d, F_AS_OF, FIELD_OPTIONAL, ev->ts_ms, &fc->as_of_ms) != 0) {
        return RS_EDECODE;
    }
    fc->scope = (enum rs_forecast_scope)scope;
    if (fc->scope != RS_SCOPE_COMPANY && !rs_str_is_set(fc->scope_id)) {
        return reject(d, RS_FAULT_MISSING_FIELD,
                      "missing required field 'scope_id' for type '%s' with scope '%s'",
                      d->type_name, forecast_scope_names[scope].ptr);
    }
    fc->measure = (enum rs_forecast_measure)measure;
    fc->category = (enum rs_forecast_category)category;
    return 0;
}

static int decode_financials(struct decode *d, struct rs_financials *fin)
{
    if (get_report_period(d, F_PERIOD, PERIOD_MONTH | PERIOD_QUARTER | PERIOD_YEAR, &fin->period) !=
            0 ||
        get_signed_money(d, F_REVENUE_MINOR, FIELD_REQUIRED, &fin->revenue_minor, NULL) != 0 ||
        get_currency(d, F_CURRENCY, &fin->currency) != 0 ||
        get_number(d, F_GROSS_MARGIN_PCT, FIELD_OPTIONAL, -100.0, false, 100.0,
                   "a percentage from -100 to 100", &fin->gross_margin_pct,
                   &fin->has_gross_margin) != 0 ||
        get_signed_money(d, F_EBITDA_MINOR, FIELD_OPTIONAL, &fin->ebitda_minor, &fin->has_ebitda) !=
            0 ||
        get_signed_money(d, F_FREE_CASH_FLOW_MINOR, FIELD_OPTIONAL, &fin->free_cash_flow_minor,
                         &fin->has_fcf) != 0 ||
        get_signed_money(d, F_OPERATING_INCOME_MINOR, FIELD_OPTIONAL, &fin->operating_income_minor,
                         &fin->has_operating_income) != 0) {
        return RS_EDECODE;
    }
    return 0;
}

/* fx.rate: a daily close, so any time of the day names that day. */
static int decode_fx_rate(struct decode *d, struct rs_fx_rate *fx)
{
    bool has_rate = false;

    if (get_currency(d, F_CURRENCY, &fx->currency) != 0 ||
        get_number(d, F_RATE, FIELD_REQUIRED, 0.0, true, DBL_MAX, "a positive number", &fx->rate,
                   &has_rate) != 0 ||
        get_time(d, F_DATE, FIELD_REQUIRED | FIELD_DATE, 0, &fx->date_ms) != 0) {
        return RS_EDECODE;
    }
    fx->date_ms -= fx->date_ms % DAY_MS;
    return 0;
}

static int decode_type(struct decode *d, enum rs_event_type *type)
{
    const msgpack_object *o = present(d, F_TYPE);
    char quoted[QUOTE_BUF_SIZE];
    int found;

    if (o == NULL) {
        return reject_missing(d, F_TYPE);
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        return reject_wrong_type(d, F_TYPE, "a string", o);
    }
    found = find_name(type_names, COUNT_OF(type_names), o->via.str.ptr, o->via.str.size);
    if (found < 0) {
        return reject(d, RS_FAULT_UNKNOWN_TYPE, "unknown event type %s",
                      quote(quoted, o->via.str.ptr, o->via.str.size));
    }
    *type = (enum rs_event_type)found;
    d->type_name = type_names[found].ptr;
    return 0;
}

static int decode_fields(struct decode *d, struct rs_event *ev);

static int decode_map(struct decode *d, const msgpack_object *root, struct rs_event *ev)
{
    if (root->type != MSGPACK_OBJECT_MAP) {
        return reject(d, RS_FAULT_NOT_MAP, "expected a map at the top level, got %s",
                      object_kind(root));
    }
    /* Duplicate keys: the later value overwrites the slot, so the last one wins. */
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr[i];
        enum field f;

        if (kv->key.type != MSGPACK_OBJECT_STR) {
            return reject(d, RS_FAULT_NOT_MAP, "key %" PRIu32 " of the map is %s, not a string", i,
                          object_kind(&kv->key));
        }
        f = field_of_key(kv->key.via.str.ptr, kv->key.via.str.size);
        if (f != F__COUNT) {
            d->slot[f] = &kv->val;
            d->seen[f / 64] |= UINT64_C(1) << (f % 64);
        }
    }
    return decode_fields(d, ev);
}

/* Read the event from the slots. */
static int decode_fields(struct decode *d, struct rs_event *ev)
{
    enum rs_event_type type = RS_EV_LEAD_CREATED;

    if (decode_type(d, &type) != 0 || get_str(d, F_ID, FIELD_REQUIRED_ID, &ev->id) != 0 ||
        get_time(d, F_TS, FIELD_REQUIRED, 0, &ev->ts_ms) != 0 ||
        get_str(d, F_ACCOUNT, FIELD_OPTIONAL_ID, &ev->account) != 0 ||
        get_str(d, F_TENANT, FIELD_OPTIONAL_ID, &ev->tenant) != 0 ||
        get_str(d, F_SOURCE, FIELD_OPTIONAL_ID, &ev->source) != 0 ||
        get_str(d, F_SOURCE_ID, FIELD_OPTIONAL_ID, &ev->source_id) != 0 ||
        get_opt_int64(d, F_SEQ, &ev->seq, &ev->has_seq) != 0) {
        return RS_EDECODE;
    }
    ev->type = type;
    switch (type) {
    case RS_EV_LEAD_CREATED:
        return decode_lead_created(d, &ev->u.lead_created);
    case RS_EV_LEAD_TOUCHED:
        return decode_lead_touched(d, &ev->u.lead_touched);
    case RS_EV_LEAD_DISQUALIFIED:
        return decode_lead_disqualified(d, &ev->u.lead_disqualified);
    case RS_EV_LEAD_CONVERTED:
        return decode_lead_converted(d, ev);
    case RS_EV_LEAD_MERGED:
        return decode_lead_merged(d, &ev->u.lead_merged);
    case RS_EV_LEAD_ASSIGNED:
        return decode_lead_assigned(d, &ev->u.lead_assigned);
    case RS_EV_LEAD_QUALIFIED:
        return decode_lead_qualified(d, &ev->u.lead_qualified);
    case RS_EV_LEAD_RECYCLED:
    case RS_EV_LEAD_REOPENED:
        return decode_lead_lifecycle(d, &ev->u.lead_lifecycle);
    case RS_EV_OPP_CREATED:
        return decode_opp_created(d, ev);
    case RS_EV_OPP_STAGE_CHANGED:
        return decode_opp_stage_changed(d, &ev->u.opp_stage_changed);
    case RS_EV_OPP_CLOSED:
        return decode_opp_closed(d, ev);
    case RS_EV_OPP_REOPENED:
        return decode_opp_reopened(d, &ev->u.opp_reopened);
    case RS_EV_HANDOFF_STARTED:
        return decode_handoff(d, ev, false);
    case RS_EV_HANDOFF_COMPLETED:
        return decode_handoff(d, ev, true);
    case RS_EV_ONBOARDING_MILESTONE:
        return decode_onboarding_milestone(d, ev);
    case RS_EV_ONBOARDING_PAUSED:
        return decode_onboarding_pause(d, ev, true);
    case RS_EV_ONBOARDING_RESUMED:
        return decode_onboarding_pause(d, ev, false);
    case RS_EV_REP_ONBOARDED:
        return decode_rep_onboarded(d, ev);
    case RS_EV_REP_QUOTA_SET:
        return decode_rep_quota_set(d, &ev->u.rep_quota_set);
    case RS_EV_REP_TERMINATED:
        return decode_rep_terminated(d, &ev->u.rep_terminated);
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED:
        return decode_subscription(d, ev);
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_PAYMENT_FAILED:
        return decode_invoice(d, ev, false);
    case RS_EV_INVOICE_REFUNDED:
        return decode_invoice(d, ev, true);
    case RS_EV_SPEND_RECORDED:
        return decode_spend(d, &ev->u.spend);
    case RS_EV_FORECAST_SUBMITTED:
        return decode_forecast(d, ev);
    case RS_EV_FINANCIALS_REPORTED:
        return decode_financials(d, &ev->u.financials);
    case RS_EV_FX_RATE:
        return decode_fx_rate(d, &ev->u.fx_rate);
    case RS_EV__COUNT:
        break;
    }
    assert(0 && "decode_type() returned a type without a decoder");
    return reject(d, RS_FAULT_UNKNOWN_TYPE, "no decoder for type '%s'", d->type_name);
}

void rs_event_decoder_init(struct rs_event_decoder *dec, size_t max_bytes)
{
    msgpack_zone *zone = rs_xmalloc(sizeof(*zone));

    /* One chunk covers the tree of any ordinary event (about 600 bytes for 150 bytes of input),
     * and msgpack_zone_clear() keeps that first chunk, so steady state allocates nothing. */
    if (!msgpack_zone_init(zone, MSGPACK_ZONE_CHUNK_SIZE)) {
        RS_LOG_ERROR("out of memory size=%d", MSGPACK_ZONE_CHUNK_SIZE);
        abort();
    }
    dec->zone = zone;
    dec->max_bytes = max_bytes;
    dec->two_pass = false;

#ifndef NDEBUG
    for (int f = 0; f < F__COUNT; f++) {
        assert((int)field_of_key(field_names[f].ptr, field_names[f].len) == f);
    }
#endif
}

void rs_event_decoder_release(struct rs_event_decoder *dec)
{
    if (dec == NULL || dec->zone == NULL) {
        return;
    }
    msgpack_zone_destroy(dec->zone);
    free(dec->zone);
    dec->zone = NULL;
}

int rs_event_decode(struct rs_event_decoder *dec, const void *data, size_t len, struct rs_event *ev,
                    enum rs_event_fault *fault, struct rs_err *err)
{
    enum rs_event_fault ignored;
    struct decode d;
    msgpack_object root;
    int rc;

    assert(dec->zone != NULL);
    memset(d.seen, 0, sizeof(d.seen));
    d.type_name = NULL;
    d.fault = fault != NULL ? fault : &ignored;
    d.err = err;
    *d.fault = RS_FAULT_NONE;

    if (len > dec->max_bytes) {
        return reject(&d, RS_FAULT_TOO_LARGE, "payload of %zu bytes exceeds the limit of %zu", len,
                      dec->max_bytes);
    }
    if (len == 0) {
        return reject(&d, RS_FAULT_MSGPACK, "not valid msgpack: empty payload");
    }
    msgpack_zone_clear(dec->zone);
    if (!dec->two_pass && walk_map(&d, dec->zone, data, len)) {
        return decode_fields(&d, ev);
    }
    memset(d.seen, 0, sizeof(d.seen));
    rc = scan(&d, data, len);
    if (rc != 0) {
        return rc;
    }

    /* Drop the previous event's tree; the first chunk stays for this one. */
    msgpack_zone_clear(dec->zone);
    if (build(dec->zone, data, (const unsigned char *)data + len, 0, &root) == 0) {
        /* scan() accepted the bytes, so this is the zone failing to allocate. */
        return reject(&d, RS_FAULT_MSGPACK, "not valid msgpack: msgpack-c failed with %d",
                      (int)MSGPACK_UNPACK_NOMEM_ERROR);
    }
    return decode_map(&d, &root, ev);
}

static const char *name_of(const struct rs_str *names, size_t count, int i)
{
    return i >= 0 && (size_t)i < count ? names[i].ptr : NULL;
}

const char *rs_event_type_name(enum rs_event_type type)
{
    return name_of(type_names, COUNT_OF(type_names), (int)type);
}

const char *rs_intent_tier_name(enum rs_intent_tier tier)
{
    return name_of(tier_names, COUNT_OF(tier_names), (int)tier);
}

const char *rs_actor_type_name(enum rs_actor_type actor)
{
    return name_of(actor_names, COUNT_OF(actor_names), (int)actor);
}

const char *rs_direction_name(enum rs_direction direction)
{
    return name_of(direction_names, COUNT_OF(direction_names), (int)direction);
}

const char *rs_touch_channel_name(enum rs_touch_channel channel)
{
    return name_of(touch_channel_names, COUNT_OF(touch_channel_names), (int)channel);
}

const char *rs_qual_stage_name(enum rs_qual_stage stage)
{
    return name_of(qual_stage_names, COUNT_OF(qual_stage_names), (int)stage);
}

const char *rs_deal_type_name(enum rs_deal_type type)
{
    return name_of(deal_type_names, COUNT_OF(deal_type_names), (int)type);
}

const char *rs_outcome_name(enum rs_outcome outcome)
{
    return name_of(outcome_names, COUNT_OF(outcome_names), (int)outcome);
}

const char *rs_milestone_name(enum rs_milestone milestone)
{
    return name_of(milestone_names, COUNT_OF(milestone_names), (int)milestone);
}

const char *rs_billing_interval_name(enum rs_billing_interval interval)
{
    return name_of(billing_interval_names, COUNT_OF(billing_interval_names), (int)interval);
}

const char *rs_sub_status_name(enum rs_sub_status status)
{
    return name_of(sub_status_names, COUNT_OF(sub_status_names), (int)status);
}

const char *rs_discount_duration_name(enum rs_discount_duration duration)
{
    return name_of(discount_duration_names, COUNT_OF(discount_duration_names), (int)duration);
}

const char *rs_refund_type_name(enum rs_refund_type type)
{
    return name_of(refund_type_names, COUNT_OF(refund_type_names), (int)type - REFUND_FIRST);
}

const char *rs_spend_function_name(enum rs_spend_function function)
{
    return name_of(spend_function_names, COUNT_OF(spend_function_names), (int)function);
}

const char *rs_spend_category_name(enum rs_spend_category category)
{
    return name_of(spend_category_names, COUNT_OF(spend_category_names), (int)category);
}

const char *rs_spend_allocation_name(enum rs_spend_allocation allocation)
{
    return name_of(spend_allocation_names, COUNT_OF(spend_allocation_names), (int)allocation);
}

const char *rs_forecast_scope_name(enum rs_forecast_scope scope)
{
    return name_of(forecast_scope_names, COUNT_OF(forecast_scope_names), (int)scope);
}

const char *rs_forecast_measure_name(enum rs_forecast_measure measure)
{
    return name_of(forecast_measure_names, COUNT_OF(forecast_measure_names), (int)measure);
}

const char *rs_forecast_category_name(enum rs_forecast_category category)
{
    return name_of(forecast_category_names, COUNT_OF(forecast_category_names), (int)category);
}

const char *rs_event_fault_name(enum rs_event_fault fault)
{
    /* These are dead-letter reason headers: downstream tooling matches on them. */
    static const struct rs_str names[RS_FAULT__COUNT] = {
        [RS_FAULT_NONE] = LIT("none"),
        [RS_FAULT_MSGPACK] = LIT("invalid_msgpack"),
        [RS_FAULT_NOT_MAP] = LIT("not_a_map"),
        [RS_FAULT_MISSING_FIELD] = LIT("missing_field"),
        [RS_FAULT_WRONG_TYPE] = LIT("wrong_type"),
        [RS_FAULT_BAD_VALUE] = LIT("bad_value"),
        [RS_FAULT_UNKNOWN_TYPE] = LIT("unknown_type"),
        [RS_FAULT_TOO_LARGE] = LIT("too_large"),
    };

    return name_of(names, COUNT_OF(names), (int)fault);
}

const char *rs_alert_kind_name(enum rs_alert_kind kind)
{
    /* Keep in sync with the `type` enum in schemas/alert.json. */
    static const struct rs_str names[RS_ALERT__COUNT] = {
        [RS_ALERT_WARNING] = LIT("sla.warning"),     [RS_ALERT_BREACHED] = LIT("sla.breached"),
        [RS_ALERT_ESCALATED] = LIT("sla.escalated"), [RS_ALERT_CRITICAL] = LIT("sla.critical"),
        [RS_ALERT_RECOVERED] = LIT("sla.recovered"), [RS_ALERT_RETRACTED] = LIT("sla.retracted"),
    };

    return name_of(names, COUNT_OF(names), (int)kind);
}

void rs_buf_init(struct rs_buf *buf)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void rs_buf_release(struct rs_buf *buf)
{
    if (buf == NULL) {
        return;
    }
    free(buf->data);
    rs_buf_init(buf);
}

void rs_buf_reset(struct rs_buf *buf)
{
    buf->len = 0;
}

void rs_buf_grow(struct rs_buf *buf, size_t len)
{
    size_t cap = buf->cap != 0 ? buf->cap : BUF_MIN_CAP;

    if (len <= buf->cap - buf->len) {
        return;
    }
    if (len > SIZE_MAX - buf->len) {
        RS_LOG_ERROR("out of memory size=%zu+%zu", buf->len, len);
        abort();
    }
    while (cap < buf->len + len) {
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : buf->len + len;
    }
    buf->data = rs_xrealloc(buf->data, cap);
    buf->cap = cap;
}

/* The packer's sink: rs_buf_append() cannot fail, so neither can packing. */
static int buf_write(void *data, const char *bytes, size_t len)
{
    rs_buf_append(data, bytes, len);
    return 0;
}

#define PACK_KEY(pk, lit) (void)msgpack_pack_str_with_body(pk, lit, sizeof(lit) - 1)

/* Required strings: the caller (sla.c) always sets them, so NULL is our own bug. */
static void pack_cstr(msgpack_packer *pk, const char *s)
{
    assert(s != NULL && "a required alert string is unset");
    (void)msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_str(msgpack_packer *pk, struct rs_str s)
{
    assert(rs_str_is_set(s) && "a required alert string is unset");
    (void)msgpack_pack_str_with_body(pk, s.ptr, s.len);
}

static void pack_cstr_or_nil(msgpack_packer *pk, const char *s)
{
    if (s == NULL) {
        (void)msgpack_pack_nil(pk);
    } else {
        (void)msgpack_pack_str_with_body(pk, s, strlen(s));
    }
}

static void pack_str_or_nil(msgpack_packer *pk, struct rs_str s)
{
    if (!rs_str_is_set(s)) {
        (void)msgpack_pack_nil(pk);
    } else {
        (void)msgpack_pack_str_with_body(pk, s.ptr, s.len);
    }
}

/* alert_id and retracts_id are fixed arrays; never read past them, even without a NUL. */
static void pack_id(msgpack_packer *pk, const char id[65])
{
    (void)msgpack_pack_str_with_body(pk, id, strnlen(id, 64));
}

/* Keep in sync with schemas/alert.json: key names, order, types and which may be nil. */
void rs_alert_encode(const struct rs_alert *alert, struct rs_buf *out)
{
    bool retracted = alert->kind == RS_ALERT_RETRACTED;
    msgpack_packer pk;

    msgpack_packer_init(&pk, out, buf_write);
    (void)msgpack_pack_map(&pk, 15u + (retracted ? 1u : 0u) + (alert->kpi != NULL ? 1u : 0u));

    PACK_KEY(&pk, "type");
    pack_cstr(&pk, rs_alert_kind_name(alert->kind));
    PACK_KEY(&pk, "alert_id");
    pack_id(&pk, alert->alert_id);
    PACK_KEY(&pk, "sla_type");
    pack_cstr(&pk, alert->sla_type);
    PACK_KEY(&pk, "level");
    pack_cstr(&pk, alert->level);
    PACK_KEY(&pk, "status");
    pack_cstr(&pk, alert->status);

    PACK_KEY(&pk, "entity");
    (void)msgpack_pack_map(&pk, 3);
    PACK_KEY(&pk, "type");
    pack_cstr(&pk, alert->entity_type);
    PACK_KEY(&pk, "id");
    pack_str(&pk, alert->entity_id);
    PACK_KEY(&pk, "attempt_n");
    (void)msgpack_pack_uint32(&pk, alert->attempt_n);

    PACK_KEY(&pk, "owner_id");
    pack_str_or_nil(&pk, alert->owner_id);
    PACK_KEY(&pk, "account");
    pack_str_or_nil(&pk, alert->account);

    PACK_KEY(&pk, "start_event");
    (void)msgpack_pack_map(&pk, 2);
    PACK_KEY(&pk, "type");
    pack_cstr(&pk, alert->start_event_type);
    PACK_KEY(&pk, "occurred_at");
    (void)msgpack_pack_int64(&pk, alert->start_at_ms);

    PACK_KEY(&pk, "target_at");
    (void)msgpack_pack_int64(&pk, alert->target_at_ms);
    PACK_KEY(&pk, "level_at");
    (void)msgpack_pack_int64(&pk, alert->level_at_ms);
    PACK_KEY(&pk, "evaluated_at");
    (void)msgpack_pack_int64(&pk, alert->evaluated_at_ms);

    PACK_KEY(&pk, "threshold");
    (void)msgpack_pack_map(&pk, 3);
    PACK_KEY(&pk, "value_ms");
    (void)msgpack_pack_int64(&pk, alert->threshold_ms);
    PACK_KEY(&pk, "clock");
    pack_cstr(&pk, alert->clock);
    PACK_KEY(&pk, "calendar_id");
    pack_cstr_or_nil(&pk, alert->calendar_id);

    PACK_KEY(&pk, "elapsed");
    (void)msgpack_pack_map(&pk, 3);
    PACK_KEY(&pk, "wall_ms");
    (void)msgpack_pack_int64(&pk, alert->elapsed_ms);
    PACK_KEY(&pk, "business_ms");
    (void)msgpack_pack_int64(&pk, alert->elapsed_business_ms);
    PACK_KEY(&pk, "paused_ms");
    (void)msgpack_pack_int64(&pk, alert->paused_ms);

    PACK_KEY(&pk, "context");
    (void)msgpack_pack_map(&pk, 4);
    PACK_KEY(&pk, "intent_tier");
    pack_cstr_or_nil(&pk, alert->intent_tier);
    PACK_KEY(&pk, "channel");
    pack_str_or_nil(&pk, alert->channel);
    PACK_KEY(&pk, "segment");
    pack_str_or_nil(&pk, alert->segment);
    PACK_KEY(&pk, "stage");
    pack_str_or_nil(&pk, alert->stage);

    /* KPI guardrails (guardrail.h): what was judged. */
    if (alert->kpi != NULL) {
        const struct rs_alert_kpi *k = alert->kpi;

        PACK_KEY(&pk, "kpi");
        (void)msgpack_pack_map(&pk, 8);
        PACK_KEY(&pk, "metric");
        pack_cstr(&pk, k->metric);
        PACK_KEY(&pk, "grain");
        pack_cstr(&pk, k->grain);
        PACK_KEY(&pk, "bucket");
        pack_cstr(&pk, k->bucket);
        PACK_KEY(&pk, "value");
        (void)msgpack_pack_double(&pk, k->value);
        PACK_KEY(&pk, "threshold");
        (void)msgpack_pack_double(&pk, k->threshold);
        PACK_KEY(&pk, "comparison");
        pack_cstr(&pk, k->comparison);
        PACK_KEY(&pk, "provisional");
        (void)(k->provisional ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
        PACK_KEY(&pk, "qtd");
        (void)(k->qtd ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    }
    if (retracted) {
        PACK_KEY(&pk, "retracts");
        pack_id(&pk, alert->retracts_id);
    }
}

const char *rs_event_msgpack_version(void)
{
    return msgpack_version();
}

/* What rs_event_encode() writes for one key; OUT_NONE (zero) leaves the key out. */
enum out_kind { OUT_NONE, OUT_STR, OUT_INT, OUT_BOOL, OUT_DOUBLE, OUT_RAMP };

struct out_field {
    enum out_kind kind;
    struct rs_str s;
    int64_t i; /* OUT_INT; OUT_BOOL as 0 or 1 */
    double x;  /* OUT_DOUBLE */
};

/* An unset string is an absent optional field: leave it out. */
static void out_str(struct out_field *o, enum field f, struct rs_str v)
{
    if (rs_str_is_set(v)) {
        o[f].kind = OUT_STR;
        o[f].s = v;
    }
}

static void out_int(struct out_field *o, enum field f, int64_t v)
{
    o[f].kind = OUT_INT;
    o[f].i = v;
}

static void out_bool(struct out_field *o, enum field f, bool v)
{
    o[f].kind = OUT_BOOL;
    o[f].i = v ? 1 : 0;
}

/* An optional integer: written only when `has`. */
static void out_opt_int(struct out_field *o, enum field f, bool has, int64_t v)
{
    if (has) {
        out_int(o, f, v);
    }
}

/* Always a float 64, so that a rate read from an integer is written the same way every time. */
static void out_double(struct out_field *o, enum field f, double v)
{
    o[f].kind = OUT_DOUBLE;
    o[f].x = v;
}

/* Fill `o` with the type's own fields; the envelope is the caller's. */
static void out_fields(const struct rs_event *ev, struct out_field *o)
{
    switch (ev->type) {
    case RS_EV_LEAD_CREATED:
        out_str(o, F_LEAD_ID, ev->u.lead_created.lead_id);
        out_str(o, F_CHANNEL, ev->u.lead_created.channel);
        out_str(o, F_INTENT_TIER, tier_names[ev->u.lead_created.intent_tier]);
        out_str(o, F_SEGMENT, ev->u.lead_created.segment);
        out_str(o, F_OWNER_ID, ev->u.lead_created.owner_id);
        break;
    case RS_EV_LEAD_TOUCHED:
        out_str(o, F_LEAD_ID, ev->u.lead_touched.lead_id);
        out_str(o, F_REP_ID, ev->u.lead_touched.rep_id);
        out_str(o, F_ACTOR_TYPE, actor_names[ev->u.lead_touched.actor_type]);
        out_str(o, F_CHANNEL, touch_channel_names[ev->u.lead_touched.channel]);
        out_str(o, F_DIRECTION, direction_names[ev->u.lead_touched.direction]);
        out_bool(o, F_CONNECTED, ev->u.lead_touched.connected);
        break;
    case RS_EV_LEAD_DISQUALIFIED:
        out_str(o, F_LEAD_ID, ev->u.lead_disqualified.lead_id);
        out_str(o, F_REASON, ev->u.lead_disqualified.reason);
        break;
    case RS_EV_LEAD_CONVERTED:
        out_str(o, F_LEAD_ID, ev->u.lead_converted.lead_id);
        out_str(o, F_ACCOUNT_ID, ev->u.lead_converted.account_id);
        out_str(o, F_CONTACT_ID, ev->u.lead_converted.contact_id);
        out_str(o, F_OPPORTUNITY_ID, ev->u.lead_converted.opportunity_id);
        break;
    case RS_EV_LEAD_MERGED:
        out_str(o, F_LEAD_ID, ev->u.lead_merged.lead_id);
        out_str(o, F_INTO_LEAD_ID, ev->u.lead_merged.into_lead_id);
        out_str(o, F_REASON, ev->u.lead_merged.reason);
        break;
    case RS_EV_LEAD_ASSIGNED:
        out_str(o, F_LEAD_ID, ev->u.lead_assigned.lead_id);
        out_str(o, F_OWNER_ID, ev->u.lead_assigned.owner_id);
        out_str(o, F_QUEUE, ev->u.lead_assigned.queue);
        break;
    case RS_EV_LEAD_QUALIFIED:
        out_str(o, F_LEAD_ID, ev->u.lead_qualified.lead_id);
        out_str(o, F_STAGE, qual_stage_names[ev->u.lead_qualified.stage]);
        out_str(o, F_QUALIFIED_BY, ev->u.lead_qualified.qualified_by);
        break;
    case RS_EV_LEAD_RECYCLED:
    case RS_EV_LEAD_REOPENED:
        out_str(o, F_LEAD_ID, ev->u.lead_lifecycle.lead_id);
        out_str(o, F_REASON, ev->u.lead_lifecycle.reason);
        break;
    case RS_EV_OPP_CREATED: {
        const struct rs_opp_created *oc = &ev->u.opp_created;

        out_str(o, F_OPPORTUNITY_ID, oc->opportunity_id);
        out_str(o, F_ACCOUNT_ID, oc->account_id);
        out_str(o, F_LEAD_ID, oc->lead_id);
        out_str(o, F_OWNER_ID, oc->owner_id);
        out_str(o, F_DEAL_TYPE, deal_type_names[oc->deal_type]);
        out_int(o, F_AMOUNT_MINOR, oc->amount_minor);
        out_str(o, F_CURRENCY, oc->currency);
        out_str(o, F_STAGE, oc->stage);
        out_str(o, F_SEGMENT, oc->segment);
        out_str(o, F_TEAM_ID, oc->team_id);
        break;
    }
    case RS_EV_OPP_STAGE_CHANGED: {
        const struct rs_opp_stage_changed *sc = &ev->u.opp_stage_changed;

        out_str(o, F_OPPORTUNITY_ID, sc->opportunity_id);
        out_str(o, F_FROM_STAGE, sc->from_stage);
        out_str(o, F_TO_STAGE, sc->to_stage);
        out_str(o, F_FORECAST_CATEGORY, sc->forecast_category);
        if (sc->has_amount) {
            out_int(o, F_AMOUNT_MINOR, sc->amount_minor);
        }
        break;
    }
    case RS_EV_OPP_CLOSED: {
        const struct rs_opp_closed *oc = &ev->u.opp_closed;

        out_str(o, F_OPPORTUNITY_ID, oc->opportunity_id);
        out_str(o, F_OUTCOME, outcome_names[oc->outcome]);
        out_int(o, F_AMOUNT_MINOR, oc->amount_minor);
        if (oc->has_tcv) {
            out_int(o, F_TCV_MINOR, oc->tcv_minor);
        }
        out_str(o, F_CURRENCY, oc->currency);
        out_str(o, F_LOSS_REASON, oc->loss_reason);
        out_int(o, F_CLOSE_DATE, oc->close_date_ms);
        out_str(o, F_OWNER_ID, oc->owner_id);
        if (oc->has_deal_type) {
            out_str(o, F_DEAL_TYPE, deal_type_names[oc->deal_type]);
        }
        break;
    }
    case RS_EV_OPP_REOPENED:
        out_str(o, F_OPPORTUNITY_ID, ev->u.opp_reopened.opportunity_id);
        out_str(o, F_REASON, ev->u.opp_reopened.reason);
        break;
    case RS_EV_HANDOFF_STARTED:
    case RS_EV_HANDOFF_COMPLETED:
        out_str(o, F_ACCOUNT_ID, ev->u.handoff.account_id);
        out_str(o, F_OPPORTUNITY_ID, ev->u.handoff.opportunity_id);
        out_str(o, F_AE_ID, ev->u.handoff.ae_id);
        out_str(o, F_CSM_ID, ev->u.handoff.csm_id);
        out_bool(o, F_CHECKLIST_COMPLETE, ev->u.handoff.checklist_complete);
        out_str(o, F_SEGMENT, ev->u.handoff.segment);
        break;
    case RS_EV_ONBOARDING_MILESTONE:
        out_str(o, F_ACCOUNT_ID, ev->u.onboarding_milestone.account_id);
        out_str(o, F_MILESTONE, milestone_names[ev->u.onboarding_milestone.milestone]);
        out_str(o, F_STATUS, ev->u.onboarding_milestone.status);
        break;
    case RS_EV_ONBOARDING_PAUSED:
    case RS_EV_ONBOARDING_RESUMED:
        out_str(o, F_ACCOUNT_ID, ev->u.onboarding_pause.account_id);
        out_str(o, F_REASON, ev->u.onboarding_pause.reason);
        break;
    case RS_EV_REP_ONBOARDED:
        out_str(o, F_REP_ID, ev->u.rep_onboarded.rep_id);
        out_int(o, F_START_DATE, ev->u.rep_onboarded.start_date_ms);
        out_str(o, F_ROLE, ev->u.rep_onboarded.role);
        out_str(o, F_SEGMENT, ev->u.rep_onboarded.segment);
        out_str(o, F_TEAM_ID, ev->u.rep_onboarded.team_id);
        break;
    case RS_EV_REP_QUOTA_SET:
        out_str(o, F_REP_ID, ev->u.rep_quota_set.rep_id);
        out_str(o, F_PERIOD, ev->u.rep_quota_set.period);
        out_int(o, F_QUOTA_MINOR, ev->u.rep_quota_set.quota_minor);
        out_str(o, F_CURRENCY, ev->u.rep_quota_set.currency);
        o[F_RAMP_SCHEDULE].kind = OUT_RAMP;
        break;
    case RS_EV_REP_TERMINATED:
        out_str(o, F_REP_ID, ev->u.rep_terminated.rep_id);
        out_str(o, F_REASON, ev->u.rep_terminated.reason);
        break;
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED: {
        const struct rs_subscription *sub = &ev->u.subscription;

        out_str(o, F_SUBSCRIPTION_ID, sub->subscription_id);
        out_str(o, F_ACCOUNT_ID, sub->account_id);
        out_str(o, F_PLAN, sub->plan);
        out_int(o, F_QUANTITY, sub->quantity);
        out_str(o, F_BILLING_INTERVAL, billing_interval_names[sub->interval]);
        out_opt_int(o, F_MRR_AFTER_MINOR, sub->has_mrr_after, sub->mrr_after_minor);
        out_opt_int(o, F_MRR_BEFORE_MINOR, sub->has_mrr_before, sub->mrr_before_minor);
        out_opt_int(o, F_PRICE_MINOR, sub->has_price, sub->price_minor);
        out_int(o, F_DISCOUNT_MINOR, sub->discount_minor);
        out_str(o, F_DISCOUNT_DURATION, discount_duration_names[sub->discount_duration]);
        out_str(o, F_CURRENCY, sub->currency);
        out_int(o, F_SERVICE_PERIOD_START, sub->service_period_start_ms);
        out_opt_int(o, F_SERVICE_PERIOD_END, sub->has_period_end, sub->service_period_end_ms);
        out_str(o, F_STATUS, sub_status_names[sub->status]);
        out_opt_int(o, F_CANCEL_AT, sub->has_cancel_at, sub->cancel_at_ms);
        break;
    }
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_REFUNDED:
    case RS_EV_INVOICE_PAYMENT_FAILED: {
        const struct rs_invoice *inv = &ev->u.invoice;

        out_str(o, F_INVOICE_ID, inv->invoice_id);
        out_str(o, F_ACCOUNT_ID, inv->account_id);
        out_str(o, F_SUBSCRIPTION_ID, inv->subscription_id);
        out_int(o, F_AMOUNT_MINOR, inv->amount_minor);
        out_str(o, F_CURRENCY, inv->currency);
        if (inv->refund_type != RS_REFUND_NONE) {
            out_str(o, F_REFUND_TYPE, refund_type_names[inv->refund_type - REFUND_FIRST]);
        }
        out_str(o, F_REASON, inv->reason);
        break;
    }
    case RS_EV_SPEND_RECORDED: {
        const struct rs_spend *sp = &ev->u.spend;

        out_str(o, F_SPEND_ID, sp->spend_id);
        out_int(o, F_PERIOD_START, sp->period_start_ms);
        out_int(o, F_PERIOD_END, sp->period_end_ms);
        out_str(o, F_FUNCTION, spend_function_names[sp->function]);
        out_str(o, F_CATEGORY, spend_category_names[sp->category]);
        out_str(o, F_ALLOCATION, spend_allocation_names[sp->allocation]);
        out_int(o, F_AMOUNT_MINOR, sp->amount_minor);
        out_str(o, F_CURRENCY, sp->currency);
        break;
    }
    case RS_EV_FORECAST_SUBMITTED: {
        const struct rs_forecast *fc = &ev->u.forecast;

        out_str(o, F_FORECAST_ID, fc->forecast_id);
        out_str(o, F_SCOPE, forecast_scope_names[fc->scope]);
        out_str(o, F_SCOPE_ID, fc->scope_id);
        out_str(o, F_PERIOD, fc->period.text);
        out_str(o, F_MEASURE, forecast_measure_names[fc->measure]);
        out_str(o, F_CATEGORY, forecast_category_names[fc->category]);
        out_int(o, F_AMOUNT_MINOR, fc->amount_minor);
        out_str(o, F_CURRENCY, fc->currency);
        out_int(o, F_AS_OF, fc->as_of_ms);
        break;
    }
    case RS_EV_FINANCIALS_REPORTED: {
        const struct rs_financials *fin = &ev->u.financials;

        out_str(o, F_PERIOD, fin->period.text);
        out_int(o, F_REVENUE_MINOR, fin->revenue_minor);
        out_str(o, F_CURRENCY, fin->currency);
        if (fin->has_gross_margin) {
            out_double(o, F_GROSS_MARGIN_PCT, fin->gross_margin_pct);
        }
        out_opt_int(o, F_EBITDA_MINOR, fin->has_ebitda, fin->ebitda_minor);
        out_opt_int(o, F_FREE_CASH_FLOW_MINOR, fin->has_fcf, fin->free_cash_flow_minor);
        out_opt_int(o, F_OPERATING_INCOME_MINOR, fin->has_operating_income,
                    fin->operating_income_minor);
        break;
    }
    case RS_EV_FX_RATE:
        out_str(o, F_CURRENCY, ev->u.fx_rate.currency);
        out_double(o, F_RATE, ev->u.fx_rate.rate);
        out_int(o, F_DATE, ev->u.fx_rate.date_ms);
        break;
    case RS_EV__COUNT:
        break;
    }
}

/* Keep in sync with the decoders above and schemas/: the same keys, the same enum names. Keys
 * are written in enum field order, so the same event always gives the same bytes. */
void rs_event_encode(const struct rs_event *ev, struct rs_buf *out)
{
    struct out_field o[F__COUNT];
    msgpack_packer pk;
    uint32_t n = 0;

    memset(o, 0, sizeof(o));
    out_str(o, F_TYPE, type_names[ev->type]);
    out_str(o, F_ID, ev->id);
    out_int(o, F_TS, ev->ts_ms);
    out_str(o, F_ACCOUNT, ev->account);
    out_str(o, F_TENANT, ev->tenant);
    out_str(o, F_SOURCE, ev->source);
    out_str(o, F_SOURCE_ID, ev->source_id);
    if (ev->has_seq) {
        out_int(o, F_SEQ, ev->seq);
    }
    out_fields(ev, o);

    for (int f = 0; f < F__COUNT; f++) {
        n += o[f].kind != OUT_NONE ? 1 : 0;
    }
    msgpack_packer_init(&pk, out, buf_write);
    (void)msgpack_pack_map(&pk, n);
    for (int f = 0; f < F__COUNT; f++) {
        if (o[f].kind == OUT_NONE) {
            continue;
        }
        (void)msgpack_pack_str_with_body(&pk, field_names[f].ptr, field_names[f].len);
        switch (o[f].kind) {
        case OUT_NONE:
            break;
        case OUT_STR:
            (void)msgpack_pack_str_with_body(&pk, o[f].s.ptr, o[f].s.len);
            break;
        case OUT_INT:
            (void)msgpack_pack_int64(&pk, o[f].i);
            break;
        case OUT_BOOL:
            (void)(o[f].i != 0 ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
            break;
        case OUT_DOUBLE:
            (void)msgpack_pack_double(&pk, o[f].x);
            break;
        case OUT_RAMP: {
            const struct rs_rep_quota_set *q = &ev->u.rep_quota_set;
            /* Never read past ramp_pct, even for a ramp_n the decoder could not have made. */
            uint32_t count = q->ramp_n <= RS_RAMP_MAX ? q->ramp_n : RS_RAMP_MAX;

            (void)msgpack_pack_array(&pk, count);
            for (uint32_t i = 0; i < count; i++) {
                (void)msgpack_pack_uint16(&pk, q->ramp_pct[i]);
            }
            break;
        }
        }
    }
}

/* Find `key` in a msgpack map object; NULL if absent. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    size_t len = strlen(key);

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;

        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
            memcmp(k->via.str.ptr, key, len) == 0) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

static struct rs_str view_str(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
        return RS_STR_NULL;
    }
    return (struct rs_str){ o->via.str.ptr, o->via.str.size };
}

static int64_t view_int(const msgpack_object *o)
{
    if (o == NULL) {
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
    }
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : 0;
}

int rs_alert_view_decode(struct rs_event_decoder *dec, const void *data, size_t len,
                         struct rs_alert_view *view, struct rs_err *err)
{
    enum rs_event_fault fault;
    struct decode d = { .seen = { 0 }, .type_name = NULL, .fault = &fault, .err = NULL };
    msgpack_object root;
    size_t off = 0;
    struct rs_str kind;
    int k;

    msgpack_zone_clear(dec->zone);
    /* scan() first, as for events: msgpack-c alone would trust the counts in the header. */
    if (len > dec->max_bytes || len == 0 || scan(&d, data, len) != 0 ||
        msgpack_unpack(data, len, &off, dec->zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        root.type != MSGPACK_OBJECT_MAP) {
        return rs_err_set(err, RS_EDECODE, "alert is not a msgpack map of at most %zu bytes",
                          dec->max_bytes);
    }
    memset(view, 0, sizeof(*view));
    kind = view_str(map_get(&root, "type"));
    for (k = 0; k < RS_ALERT__COUNT; k++) {
        const char *name = rs_alert_kind_name((enum rs_alert_kind)k);

        if (kind.len == strlen(name) && memcmp(kind.ptr, name, kind.len) == 0) {
            break;
        }
    }
    if (k == RS_ALERT__COUNT) {
        return rs_err_set(err, RS_EDECODE, "alert has no known 'type'");
    }
    view->kind = (enum rs_alert_kind)k;
    view->alert_id = view_str(map_get(&root, "alert_id"));
    view->retracts_id = view_str(map_get(&root, "retracts"));
    view->level = view_str(map_get(&root, "level"));
    view->status = view_str(map_get(&root, "status"));
    view->entity_id = view_str(map_get(map_get(&root, "entity"), "id"));
    view->entity_type = view_str(map_get(map_get(&root, "entity"), "type"));
    view->sla_type = view_str(map_get(&root, "sla_type"));
    view->owner_id = view_str(map_get(&root, "owner_id"));
    view->intent_tier = view_str(map_get(map_get(&root, "context"), "intent_tier"));
    view->start_at_ms = view_int(map_get(map_get(&root, "start_event"), "occurred_at"));
    view->target_at_ms = view_int(map_get(&root, "target_at"));
    view->evaluated_at_ms = view_int(map_get(&root, "evaluated_at"));
    view->threshold_ms = view_int(map_get(map_get(&root, "threshold"), "value_ms"));
    view->elapsed_ms = view_int(map_get(map_get(&root, "elapsed"), "wall_ms"));
    view->calendar_id = view_str(map_get(map_get(&root, "threshold"), "calendar_id"));
    view->elapsed_business_ms = view_int(map_get(map_get(&root, "elapsed"), "business_ms"));
    view->paused_ms = view_int(map_get(map_get(&root, "elapsed"), "paused_ms"));
    view->stage = view_str(map_get(map_get(&root, "context"), "stage"));
    if (!rs_str_is_set(view->alert_id) || !rs_str_is_set(view->entity_id)) {
        return rs_err_set(err, RS_EDECODE, "alert lacks 'alert_id' or 'entity.id'");
    }
    return 0;
}

/* ---- a minimal writer, for tools that build payloads from another format ------------- */

static msgpack_packer writer(struct rs_buf *out)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, out, buf_write);
    return pk;
}

void rs_event_write_map(struct rs_buf *out, uint32_t n)
{
    msgpack_packer pk = writer(out);

    (void)msgpack_pack_map(&pk, n);
}

void rs_event_write_array(struct rs_buf *out, uint32_t n)
{
    msgpack_packer pk = writer(out);

    (void)msgpack_pack_array(&pk, n);
}

void rs_event_write_str(struct rs_buf *out, const char *s, size_t len)
{
    msgpack_packer pk = writer(out);

    (void)msgpack_pack_str_with_body(&pk, s, len);
}

void rs_event_write_int(struct rs_buf *out, int64_t v)
{
    msgpack_packer pk = writer(out);

    (void)msgpack_pack_int64(&pk, v);
}

void rs_event_write_double(struct rs_buf *out, double v)
{
    msgpack_packer pk = writer(out);

    (void)msgpack_pack_double(&pk, v);
}

void rs_event_write_bool(struct rs_buf *out, bool v)
{
    msgpack_packer pk = writer(out);

    (void)(v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

void rs_event_write_nil(struct rs_buf *out)
{
    msgpack_packer pk = writer(out);

    (void)msgpack_pack_nil(&pk);
}
