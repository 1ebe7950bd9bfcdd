#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "event.h"
#include "msgpack_build.h"

#include <dirent.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

/* Larger than any payload here except the too-large ones. */
#define TEST_MAX_BYTES 65536

struct fx {
    struct rs_event_decoder dec;
    struct mpb b;
    struct rs_event ev;
    enum rs_event_fault fault;
    struct rs_err err;
};

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    rs_event_decoder_init(&fx->dec, TEST_MAX_BYTES);
    mpb_init(&fx->b);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;

    mpb_release(&fx->b);
    rs_event_decoder_release(&fx->dec);
    free(fx);
    return 0;
}

/* Complete events, every field set. Keep in sync with schemas/ examples. */
static const struct mpb_kv created[] = {
    MPB_S("type", "lead.created"),     MPB_S("id", "ev-1"),
    MPB_I("ts", 1715680680000),        MPB_S("account", "acc-9"),
    MPB_S("tenant", "t_123"),          MPB_S("source", "salesforce"),
    MPB_S("source_id", "00Q5g000001"), MPB_I("seq", 7),
    MPB_S("lead_id", "L-889"),         MPB_S("channel", "demo_request"),
    MPB_S("intent_tier", "high"),      MPB_S("segment", "mid_market"),
    MPB_S("owner_id", "rep_42"),
};

static const struct mpb_kv touched[] = {
    MPB_S("type", "lead.touched"), MPB_S("id", "ev-2"),         MPB_I("ts", 1715680800000),
    MPB_S("account", "acc-9"),     MPB_S("lead_id", "L-889"),   MPB_S("rep_id", "rep_42"),
    MPB_S("actor_type", "human"),  MPB_S("channel", "meeting"), MPB_S("direction", "inbound"),
    MPB_B("connected", true),
};

static const struct mpb_kv disqualified[] = {
    MPB_S("type", "lead.disqualified"), MPB_S("id", "ev-3"),     MPB_I("ts", 1715680900000),
    MPB_S("lead_id", "L-889"),          MPB_S("reason", "spam"),
};

static const struct mpb_kv converted[] = {
    MPB_S("type", "lead.converted"), MPB_S("id", "ev-4"),
    MPB_I("ts", 1715681000000),      MPB_S("account", "acc-9"),
    MPB_S("lead_id", "L-889"),       MPB_S("account_id", "acc-9"),
    MPB_S("contact_id", "C-17"),     MPB_S("opportunity_id", "O-5"),
};

static const struct mpb_kv merged[] = {
    MPB_S("type", "lead.merged"),   MPB_S("id", "ev-5"),
    MPB_I("ts", 1715681100000),     MPB_S("lead_id", "L-890"),
    MPB_S("into_lead_id", "L-889"), MPB_S("reason", "duplicate_email"),
};

/* The lead, opportunity, handoff, onboarding and rep events, every field set. */
static const struct mpb_kv assigned[] = {
    MPB_S("type", "lead.assigned"), MPB_S("id", "ev-6"),       MPB_I("ts", 1715680700000),
    MPB_S("account", "acc-9"),      MPB_S("lead_id", "L-889"), MPB_S("owner_id", "rep_42"),
    MPB_S("queue", "inbound_emea"),
};

static const struct mpb_kv qualified[] = {
    MPB_S("type", "lead.qualified"), MPB_S("id", "ev-7"),   MPB_I("ts", 1715681200000),
    MPB_S("lead_id", "L-889"),       MPB_S("stage", "SQL"), MPB_S("qualified_by", "rep_42"),
};

static const struct mpb_kv recycled[] = {
    MPB_S("type", "lead.recycled"), MPB_S("id", "ev-8"),
    MPB_I("ts", 1715690000000),     MPB_S("lead_id", "L-889"),
    MPB_S("reason", "no_response"),
};

static const struct mpb_kv reopened[] = {
    MPB_S("type", "lead.reopened"), MPB_S("id", "ev-9"),
    MPB_I("ts", 1718000000000),     MPB_S("lead_id", "L-889"),
    MPB_S("reason", "new_inquiry"),
};

static const struct mpb_kv opp_created[] = {
    MPB_S("type", "opportunity.created"),
    MPB_S("id", "ev-10"),
    MPB_I("ts", 1715700000000),
    MPB_S("account", "acc-9"),
    MPB_S("opportunity_id", "O-5"),
    MPB_S("account_id", "acc-9"),
    MPB_S("lead_id", "L-889"),
    MPB_S("owner_id", "rep_42"),
    MPB_S("deal_type", "expansion"),
    MPB_I("amount_minor", 2400000),
    MPB_S("currency", "EUR"),
    MPB_S("stage", "discovery"),
    MPB_S("segment", "mid_market"),
    MPB_S("team_id", "team_emea"),
};

static const struct mpb_kv stage_changed[] = {
    MPB_S("type", "opportunity.stage_changed"),
    MPB_S("id", "ev-11"),
    MPB_I("ts", 1716000000000),
    MPB_S("opportunity_id", "O-5"),
    MPB_S("from_stage", "discovery"),
    MPB_S("to_stage", "proposal"),
    MPB_S("forecast_category", "best_case"),
    MPB_I("amount_minor", 2600000),
};

static const struct mpb_kv opp_closed[] = {
    MPB_S("type", "opportunity.closed"), MPB_S("id", "ev-12"),       MPB_I("ts", 1717000000000),
    MPB_S("opportunity_id", "O-5"),      MPB_S("outcome", "lost"),   MPB_I("amount_minor", 2600000),
    MPB_I("tcv_minor", 7800000),         MPB_S("currency", "EUR"),   MPB_S("loss_reason", "price"),
    MPB_I("close_date", 1716940800000),  MPB_S("owner_id", "rep_7"), MPB_S("deal_type", "renewal"),
};

static const struct mpb_kv opp_reopened[] = {
    MPB_S("type", "opportunity.reopened"),
    MPB_S("id", "ev-13"),
    MPB_I("ts", 1717100000000),
    MPB_S("opportunity_id", "O-5"),
    MPB_S("reason", "contract_not_signed"),
};

static const struct mpb_kv handoff_started[] = {
    MPB_S("type", "handoff.started"),  MPB_S("id", "ev-14"),
    MPB_I("ts", 1717050000000),        MPB_S("account", "acc-9"),
    MPB_S("account_id", "acc-9"),      MPB_S("opportunity_id", "O-5"),
    MPB_S("ae_id", "rep_42"),          MPB_S("csm_id", "csm_3"),
    MPB_B("checklist_complete", true), MPB_S("segment", "enterprise"),
};

static const struct mpb_kv handoff_completed[] = {
    MPB_S("type", "handoff.completed"), MPB_S("id", "ev-15"),
    MPB_I("ts", 1717100000000),         MPB_S("account", "acc-9"),
    MPB_S("account_id", "acc-9"),       MPB_S("opportunity_id", "O-5"),
    MPB_S("ae_id", "rep_42"),           MPB_S("csm_id", "csm_3"),
    MPB_B("checklist_complete", true),  MPB_S("segment", "enterprise"),
};

static const struct mpb_kv milestone[] = {
    MPB_S("type", "onboarding.milestone"),
    MPB_S("id", "ev-16"),
    MPB_I("ts", 1718000000000),
    MPB_S("account", "acc-9"),
    MPB_S("account_id", "acc-9"),
    MPB_S("milestone", "go_live"),
    MPB_S("status", "completed"),
};

static const struct mpb_kv paused[] = {
    MPB_S("type", "onboarding.paused"), MPB_S("id", "ev-17"),
    MPB_I("ts", 1717500000000),         MPB_S("account", "acc-9"),
    MPB_S("account_id", "acc-9"),       MPB_S("reason", "waiting_on_customer"),
};

static const struct mpb_kv resumed[] = {
    MPB_S("type", "onboarding.resumed"), MPB_S("id", "ev-18"),
    MPB_I("ts", 1717700000000),          MPB_S("account", "acc-9"),
    MPB_S("account_id", "acc-9"),        MPB_S("reason", "customer_ready"),
};

static const struct mpb_kv rep_onboarded[] = {
    MPB_S("type", "rep.onboarded"),     MPB_S("id", "ev-19"),
    MPB_I("ts", 1704067200000),         MPB_S("rep_id", "rep_42"),
    MPB_I("start_date", 1705276800000), MPB_S("role", "AE"),
    MPB_S("segment", "mid_market"),     MPB_S("team_id", "team_emea"),
};

static const int64_t ramp4[] = { 25, 50, 75, 100 };

static const struct mpb_kv quota_set[] = {
    MPB_S("type", "rep.quota_set"), MPB_S("id", "ev-20"),
    MPB_I("ts", 1704067200000),     MPB_S("rep_id", "rep_42"),
    MPB_S("period", "2024-02"),     MPB_I("quota_minor", 5000000),
    MPB_S("currency", "USD"),       MPB_INTS_KV("ramp_schedule", ramp4),
};

static const struct mpb_kv rep_terminated[] = {
    MPB_S("type", "rep.terminated"), MPB_S("id", "ev-21"),         MPB_I("ts", 1735603200000),
    MPB_S("rep_id", "rep_42"),       MPB_S("reason", "voluntary"),
};

/* The revenue events (issue 6), every field set. The six subscription.* types share a body. */
#define SUBSCRIPTION_FULL(t, ev_id)                                                               \
    MPB_S("type", t), MPB_S("id", ev_id), MPB_I("ts", 1709251200000), MPB_S("account", "acc-9"),  \
        MPB_S("subscription_id", "sub_77"), MPB_S("account_id", "acc-9"), MPB_S("plan", "pro"),   \
        MPB_I("quantity", 10), MPB_S("billing_interval", "year"),                                 \
        MPB_I("mrr_after_minor", 100000), MPB_I("mrr_before_minor", 80000),                       \
        MPB_I("price_minor", 120000), MPB_I("discount_minor", 5000),                              \
        MPB_S("discount_duration", "finite"), MPB_S("currency", "USD"),                           \
        MPB_S("service_period_start", "2024-03-01"), MPB_TS("service_period_end", 1740787200, 0), \
        MPB_S("status", "past_due"), MPB_I("cancel_at", 1740787200000)

static const struct mpb_kv sub_started[] = { SUBSCRIPTION_FULL("subscription.started", "ev-30") };
static const struct mpb_kv sub_renewed[] = { SUBSCRIPTION_FULL("subscription.renewed", "ev-31") };
static const struct mpb_kv sub_expanded[] = { SUBSCRIPTION_FULL("subscription.expanded", "ev-32") };
static const struct mpb_kv sub_contracted[] = { SUBSCRIPTION_FULL("subscription.contracted",
                                                                  "ev-33") };
static const struct mpb_kv sub_churned[] = { SUBSCRIPTION_FULL("subscription.churned", "ev-34") };
static const struct mpb_kv sub_reactivated[] = { SUBSCRIPTION_FULL("subscription.reactivated",
                                                                   "ev-35") };

#define INVOICE_FULL(t, ev_id)                                                                   \
    MPB_S("type", t), MPB_S("id", ev_id), MPB_I("ts", 1709337600000), MPB_S("account", "acc-9"), \
        MPB_S("invoice_id", "in_501"), MPB_S("account_id", "acc-9"),                             \
        MPB_S("subscription_id", "sub_77"), MPB_I("amount_minor", 1200000),                      \
        MPB_S("currency", "USD"), MPB_S("reason", "card_declined")

static const struct mpb_kv invoice_paid[] = { INVOICE_FULL("invoice.paid", "ev-36") };
static const struct mpb_kv invoice_refunded[] = { INVOICE_FULL("invoice.refunded", "ev-37"),
                                                  MPB_S("refund_type", "partial") };
static const struct mpb_kv invoice_failed[] = { INVOICE_FULL("invoice.payment_failed", "ev-38") };

static const struct mpb_kv spend[] = {
    MPB_S("type", "spend.recorded"),
    MPB_S("id", "ev-39"),
    MPB_I("ts", 1711929600000),
    MPB_S("spend_id", "gl-17"),
    MPB_S("period_start", "2024-03-01"),
    MPB_I("period_end", 1711929600000),
    MPB_S("function", "marketing"),
    MPB_S("category", "programs"),
    MPB_S("allocation", "expansion"),
    MPB_I("amount_minor", -2500),
    MPB_S("currency", "EUR"),
};

static const struct mpb_kv forecast[] = {
    MPB_S("type", "forecast.submitted"),
    MPB_S("id", "ev-40"),
    MPB_I("ts", 1711929600000),
    MPB_S("forecast_id", "fc-9"),
    MPB_S("scope", "team"),
    MPB_S("scope_id", "team_emea"),
    MPB_S("period", "2024-Q2"),
    MPB_S("measure", "ending_arr"),
    MPB_S("category", "best_case"),
    MPB_I("amount_minor", -300),
    MPB_S("currency", "USD"),
    MPB_TS("as_of", 1711843200, 500000000),
};

static const struct mpb_kv financials[] = {
    MPB_S("type", "financials.reported"), MPB_S("id", "ev-41"),
    MPB_I("ts", 1735689600000),           MPB_S("period", "2024"),
    MPB_I("revenue_minor", 1250000000),   MPB_S("currency", "USD"),
    MPB_F("gross_margin_pct", 78.5),      MPB_I("ebitda_minor", -1200),
    MPB_I("free_cash_flow_minor", 400),   MPB_I("operating_income_minor", -2000),
};

static const struct mpb_kv fx_rate[] = {
    MPB_S("type", "fx.rate"), MPB_S("id", "ev-42"),  MPB_I("ts", 1709337600000),
    MPB_S("currency", "EUR"), MPB_F("rate", 1.0842), MPB_I("date", 1709294400123),
};

/* The same events with only the required fields. */
static const struct mpb_kv created_min[] = {
    MPB_S("type", "lead.created"), MPB_S("id", "ev-1"),         MPB_I("ts", 1715680680000),
    MPB_S("lead_id", "L-889"),     MPB_S("channel", "webinar"), MPB_S("intent_tier", "mql"),
    MPB_S("segment", "smb"),
};

static const struct mpb_kv touched_min[] = {
    MPB_S("type", "lead.touched"), MPB_S("id", "ev-2"),
    MPB_I("ts", 1715680800000),    MPB_S("lead_id", "L-889"),
    MPB_S("rep_id", "rep_42"),     MPB_S("actor_type", "automation"),
    MPB_S("channel", "email"),     MPB_S("direction", "outbound"),
    MPB_B("connected", false),
};

static const struct mpb_kv disqualified_min[] = {
    MPB_S("type", "lead.disqualified"), MPB_S("id", "ev-3"),     MPB_I("ts", 1715680900000),
    MPB_S("lead_id", "L-889"),          MPB_S("reason", "spam"),
};

static const struct mpb_kv converted_min[] = {
    MPB_S("type", "lead.converted"), MPB_S("id", "ev-4"),          MPB_I("ts", 1715681000000),
    MPB_S("lead_id", "L-889"),       MPB_S("account_id", "acc-9"), MPB_S("contact_id", "C-17"),
};

static const struct mpb_kv merged_min[] = {
    MPB_S("type", "lead.merged"),   MPB_S("id", "ev-5"),
    MPB_I("ts", 1715681100000),     MPB_S("lead_id", "L-890"),
    MPB_S("into_lead_id", "L-889"),
};

static const struct mpb_kv assigned_min[] = {
    MPB_S("type", "lead.assigned"), MPB_S("id", "ev-6"),         MPB_I("ts", 1715680700000),
    MPB_S("lead_id", "L-889"),      MPB_S("owner_id", "rep_42"),
};

static const struct mpb_kv qualified_min[] = {
    MPB_S("type", "lead.qualified"), MPB_S("id", "ev-7"),   MPB_I("ts", 1715681200000),
    MPB_S("lead_id", "L-889"),       MPB_S("stage", "MQL"),
};

static const struct mpb_kv recycled_min[] = {
    MPB_S("type", "lead.recycled"),
    MPB_S("id", "ev-8"),
    MPB_I("ts", 1715690000000),
    MPB_S("lead_id", "L-889"),
};

static const struct mpb_kv reopened_min[] = {
    MPB_S("type", "lead.reopened"),
    MPB_S("id", "ev-9"),
    MPB_I("ts", 1718000000000),
    MPB_S("lead_id", "L-889"),
};

/* account_id rather than the envelope's account, so that dropping it means "no account". */
static const struct mpb_kv opp_created_min[] = {
    MPB_S("type", "opportunity.created"),
    MPB_S("id", "ev-10"),
    MPB_I("ts", 1715700000000),
    MPB_S("opportunity_id", "O-5"),
    MPB_S("account_id", "acc-9"),
    MPB_S("owner_id", "rep_42"),
    MPB_S("deal_type", "new"),
    MPB_I("amount_minor", 0),
    MPB_S("currency", "USD"),
    MPB_S("stage", "qualification"),
};

static const struct mpb_kv stage_changed_min[] = {
    MPB_S("type", "opportunity.stage_changed"),
    MPB_S("id", "ev-11"),
    MPB_I("ts", 1716000000000),
    MPB_S("opportunity_id", "O-5"),
    MPB_S("from_stage", "discovery"),
    MPB_S("to_stage", "proposal"),
};

static const struct mpb_kv opp_closed_min[] = {
    MPB_S("type", "opportunity.closed"),
    MPB_S("id", "ev-12"),
    MPB_I("ts", 1717000000000),
    MPB_S("opportunity_id", "O-5"),
    MPB_S("outcome", "won"),
    MPB_I("amount_minor", 1200000),
    MPB_S("currency", "USD"),
};

static const struct mpb_kv opp_reopened_min[] = {
    MPB_S("type", "opportunity.reopened"),
    MPB_S("id", "ev-13"),
    MPB_I("ts", 1717100000000),
    MPB_S("opportunity_id", "O-5"),
};

static const struct mpb_kv handoff_started_min[] = {
    MPB_S("type", "handoff.started"), MPB_S("id", "ev-14"),           MPB_I("ts", 1717050000000),
    MPB_S("account_id", "acc-9"),     MPB_S("opportunity_id", "O-5"),
};

static const struct mpb_kv handoff_completed_min[] = {
    MPB_S("type", "handoff.completed"), MPB_S("id", "ev-15"),
    MPB_I("ts", 1717100000000),         MPB_S("account_id", "acc-9"),
    MPB_S("opportunity_id", "O-5"),     MPB_B("checklist_complete", false),
};

static const struct mpb_kv milestone_min[] = {
    MPB_S("type", "onboarding.milestone"),
    MPB_S("id", "ev-16"),
    MPB_I("ts", 1718000000000),
    MPB_S("account_id", "acc-9"),
    MPB_S("milestone", "kickoff"),
};

static const struct mpb_kv paused_min[] = {
    MPB_S("type", "onboarding.paused"),
    MPB_S("id", "ev-17"),
    MPB_I("ts", 1717500000000),
    MPB_S("account_id", "acc-9"),
    MPB_S("reason", "waiting_on_customer"),
};

static const struct mpb_kv resumed_min[] = {
    MPB_S("type", "onboarding.resumed"),
    MPB_S("id", "ev-18"),
    MPB_I("ts", 1717700000000),
    MPB_S("account_id", "acc-9"),
};

static const struct mpb_kv rep_onboarded_min[] = {
    MPB_S("type", "rep.onboarded"),
    MPB_S("id", "ev-19"),
    MPB_I("ts", 1704067200000),
    MPB_S("rep_id", "rep_42"),
};

static const struct mpb_kv quota_set_min[] = {
    MPB_S("type", "rep.quota_set"), MPB_S("id", "ev-20"),       MPB_I("ts", 1704067200000),
    MPB_S("rep_id", "rep_42"),      MPB_S("period", "2024-01"), MPB_I("quota_minor", 1),
    MPB_S("currency", "USD"),
};

static const struct mpb_kv rep_terminated_min[] = {
    MPB_S("type", "rep.terminated"),
    MPB_S("id", "ev-21"),
    MPB_I("ts", 1735603200000),
    MPB_S("rep_id", "rep_42"),
};

/* The revenue events with their required fields only. */
#define SUBSCRIPTION_MIN(t, ev_id)                                                                 \
    MPB_S("type", t), MPB_S("id", ev_id), MPB_I("ts", 1709251200000),                              \
        MPB_S("subscription_id", "sub_77"), MPB_S("account_id", "acc-9"),                          \
        MPB_S("billing_interval", "month"), MPB_I("mrr_after_minor", 0), MPB_S("currency", "USD"), \
        MPB_S("status", "active")

static const struct mpb_kv sub_started_min[] = { SUBSCRIPTION_MIN("subscription.started",
                                                                  "ev-30") };
static const struct mpb_kv sub_renewed_min[] = { SUBSCRIPTION_MIN("subscription.renewed",
                                                                  "ev-31") };
static const struct mpb_kv sub_expanded_min[] = { SUBSCRIPTION_MIN("subscription.expanded",
                                                                   "ev-32") };
static const struct mpb_kv sub_contracted_min[] = { SUBSCRIPTION_MIN("subscription.contracted",
                                                                     "ev-33") };
static const struct mpb_kv sub_churned_min[] = { SUBSCRIPTION_MIN("subscription.churned",
                                                                  "ev-34") };
static const struct mpb_kv sub_reactivated_min[] = { SUBSCRIPTION_MIN("subscription.reactivated",
                                                                      "ev-35") };

#define INVOICE_MIN(t, ev_id)                                                                  \
    MPB_S("type", t), MPB_S("id", ev_id), MPB_I("ts", 1709337600000),                          \
        MPB_S("invoice_id", "in_501"), MPB_S("account_id", "acc-9"), MPB_I("amount_minor", 0), \
        MPB_S("currency", "USD")

static const struct mpb_kv invoice_paid_min[] = { INVOICE_MIN("invoice.paid", "ev-36") };
static const struct mpb_kv invoice_refunded_min[] = { INVOICE_MIN("invoice.refunded", "ev-37"),
                                                      MPB_S("refund_type", "full") };
static const struct mpb_kv invoice_failed_min[] = { INVOICE_MIN("invoice.payment_failed",
                                                                "ev-38") };

static const struct mpb_kv spend_min[] = {
    MPB_S("type", "spend.recorded"),   MPB_S("id", "ev-39"),
    MPB_I("ts", 1711929600000),        MPB_I("period_start", 1709251200000),
    MPB_S("period_end", "2024-04-01"), MPB_S("function", "sales"),
    MPB_S("category", "salaries"),     MPB_S("allocation", "new_logo"),
    MPB_I("amount_minor", 0),          MPB_S("currency", "USD"),
};

static const struct mpb_kv forecast_min[] = {
    MPB_S("type", "forecast.submitted"),
    MPB_S("id", "ev-40"),
    MPB_I("ts", 1711929600000),
    MPB_S("forecast_id", "fc-9"),
    MPB_S("scope", "company"),
    MPB_S("period", "2024-05"),
    MPB_S("measure", "net_new_arr"),
    MPB_S("category", "commit"),
    MPB_I("amount_minor", 0),
    MPB_S("currency", "USD"),
};

static const struct mpb_kv financials_min[] = {
    MPB_S("type", "financials.reported"), MPB_S("id", "ev-41"),      MPB_I("ts", 1735689600000),
    MPB_S("period", "2024-Q1"),           MPB_I("revenue_minor", 0), MPB_S("currency", "USD"),
};

static const struct mpb_kv fx_rate_min[] = {
    MPB_S("type", "fx.rate"), MPB_S("id", "ev-42"), MPB_I("ts", 1709337600000),
    MPB_S("currency", "EUR"), MPB_I("rate", 2),     MPB_S("date", "2024-03-01"),
};

struct event_case {
    const char *type;
    const struct mpb_kv *kvs;
    size_t n;
};

static const struct event_case min_cases[] = {
    { "lead.created", created_min, MPB_COUNT(created_min) },
    { "lead.touched", touched_min, MPB_COUNT(touched_min) },
    { "lead.disqualified", disqualified_min, MPB_COUNT(disqualified_min) },
    { "lead.converted", converted_min, MPB_COUNT(converted_min) },
    { "lead.merged", merged_min, MPB_COUNT(merged_min) },
    { "lead.assigned", assigned_min, MPB_COUNT(assigned_min) },
    { "lead.qualified", qualified_min, MPB_COUNT(qualified_min) },
    { "lead.recycled", recycled_min, MPB_COUNT(recycled_min) },
    { "lead.reopened", reopened_min, MPB_COUNT(reopened_min) },
    { "opportunity.created", opp_created_min, MPB_COUNT(opp_created_min) },
    { "opportunity.stage_changed", stage_changed_min, MPB_COUNT(stage_changed_min) },
    { "opportunity.closed", opp_closed_min, MPB_COUNT(opp_closed_min) },
    { "opportunity.reopened", opp_reopened_min, MPB_COUNT(opp_reopened_min) },
    { "handoff.started", handoff_started_min, MPB_COUNT(handoff_started_min) },
    { "handoff.completed", handoff_completed_min, MPB_COUNT(handoff_completed_min) },
    { "onboarding.milestone", milestone_min, MPB_COUNT(milestone_min) },
    { "onboarding.paused", paused_min, MPB_COUNT(paused_min) },
    { "onboarding.resumed", resumed_min, MPB_COUNT(resumed_min) },
    { "rep.onboarded", rep_onboarded_min, MPB_COUNT(rep_onboarded_min) },
    { "rep.quota_set", quota_set_min, MPB_COUNT(quota_set_min) },
    { "rep.terminated", rep_terminated_min, MPB_COUNT(rep_terminated_min) },
    { "subscription.started", sub_started_min, MPB_COUNT(sub_started_min) },
    { "subscription.renewed", sub_renewed_min, MPB_COUNT(sub_renewed_min) },
    { "subscription.expanded", sub_expanded_min, MPB_COUNT(sub_expanded_min) },
    { "subscription.contracted", sub_contracted_min, MPB_COUNT(sub_contracted_min) },
    { "subscription.churned", sub_churned_min, MPB_COUNT(sub_churned_min) },
    { "subscription.reactivated", sub_reactivated_min, MPB_COUNT(sub_reactivated_min) },
    { "invoice.paid", invoice_paid_min, MPB_COUNT(invoice_paid_min) },
    { "invoice.refunded", invoice_refunded_min, MPB_COUNT(invoice_refunded_min) },
    { "invoice.payment_failed", invoice_failed_min, MPB_COUNT(invoice_failed_min) },
    { "spend.recorded", spend_min, MPB_COUNT(spend_min) },
    { "forecast.submitted", forecast_min, MPB_COUNT(forecast_min) },
    { "financials.reported", financials_min, MPB_COUNT(financials_min) },
    { "fx.rate", fx_rate_min, MPB_COUNT(fx_rate_min) },
};

/* Every event of the catalogue, every field set; keep in the order of enum rs_event_type. */
static const struct event_case full_cases[] = {
    { "lead.created", created, MPB_COUNT(created) },
    { "lead.touched", touched, MPB_COUNT(touched) },
    { "lead.disqualified", disqualified, MPB_COUNT(disqualified) },
    { "lead.converted", converted, MPB_COUNT(converted) },
    { "lead.merged", merged, MPB_COUNT(merged) },
    { "lead.assigned", assigned, MPB_COUNT(assigned) },
    { "lead.qualified", qualified, MPB_COUNT(qualified) },
    { "lead.recycled", recycled, MPB_COUNT(recycled) },
    { "lead.reopened", reopened, MPB_COUNT(reopened) },
    { "opportunity.created", opp_created, MPB_COUNT(opp_created) },
    { "opportunity.stage_changed", stage_changed, MPB_COUNT(stage_changed) },
    { "opportunity.closed", opp_closed, MPB_COUNT(opp_closed) },
    { "opportunity.reopened", opp_reopened, MPB_COUNT(opp_reopened) },
    { "handoff.started", handoff_started, MPB_COUNT(handoff_started) },
    { "handoff.completed", handoff_completed, MPB_COUNT(handoff_completed) },
    { "onboarding.milestone", milestone, MPB_COUNT(milestone) },
    { "onboarding.paused", paused, MPB_COUNT(paused) },
    { "onboarding.resumed", resumed, MPB_COUNT(resumed) },
    { "rep.onboarded", rep_onboarded, MPB_COUNT(rep_onboarded) },
    { "rep.quota_set", quota_set, MPB_COUNT(quota_set) },
    { "rep.terminated", rep_terminated, MPB_COUNT(rep_terminated) },
    { "subscription.started", sub_started, MPB_COUNT(sub_started) },
    { "subscription.renewed", sub_renewed, MPB_COUNT(sub_renewed) },
    { "subscription.expanded", sub_expanded, MPB_COUNT(sub_expanded) },
    { "subscription.contracted", sub_contracted, MPB_COUNT(sub_contracted) },
    { "subscription.churned", sub_churned, MPB_COUNT(sub_churned) },
    { "subscription.reactivated", sub_reactivated, MPB_COUNT(sub_reactivated) },
    { "invoice.paid", invoice_paid, MPB_COUNT(invoice_paid) },
    { "invoice.refunded", invoice_refunded, MPB_COUNT(invoice_refunded) },
    { "invoice.payment_failed", invoice_failed, MPB_COUNT(invoice_failed) },
    { "spend.recorded", spend, MPB_COUNT(spend) },
    { "forecast.submitted", forecast, MPB_COUNT(forecast) },
    { "financials.reported", financials, MPB_COUNT(financials) },
    { "fx.rate", fx_rate, MPB_COUNT(fx_rate) },
};

static bool is_envelope_key(const char *key)
{
    return strcmp(key, "type") == 0 || strcmp(key, "id") == 0 || strcmp(key, "ts") == 0;
}

static int decode(struct fx *fx)
{
    return rs_event_decode(&fx->dec, mpb_data(&fx->b), mpb_len(&fx->b), &fx->ev, &fx->fault,
                           &fx->err);
}

static int decode_event(struct fx *fx, const struct mpb_kv *kvs, size_t n, const char *drop,
                        const struct mpb_kv *replace)
{
    mpb_reset(&fx->b);
    mpb_event(&fx->b, kvs, n, drop, replace);
    return decode(fx);
}

static void expect_ok(struct fx *fx)
{
    int rc = decode(fx);

    if (rc != 0) {
        print_error("decode failed: fault=%s msg='%s'\n", rs_event_fault_name(fx->fault),
                    fx->err.msg);
        fail();
    }
    assert_int_equal(fx->fault, RS_FAULT_NONE);
}

/* Decode fx->b and require `fault` and a message containing `part`. */
static void expect_fault(struct fx *fx, enum rs_event_fault fault, const char *part)
{
    int rc;

    memset(&fx->err, 0, sizeof(fx->err));
    rc = decode(fx);
    if (rc != RS_EDECODE || fx->fault != fault || fx->err.code != RS_EDECODE ||
        strstr(fx->err.msg, part) == NULL) {
        print_error("rc=%d fault=%s msg='%s'; want fault=%s and a message with '%s'\n", rc,
                    rs_event_fault_name(fx->fault), fx->err.msg, rs_event_fault_name(fault), part);
        fail();
    }
}

static void assert_str(struct rs_str s, const char *want)
{
    if (s.ptr == NULL) {
        print_error("string unset, want '%s'\n", want);
        fail();
    }
    if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0) {
        print_error("got '%.*s', want '%s'\n", (int)s.len, s.ptr, want);
        fail();
    }
}

static void assert_unset(struct rs_str s)
{
    assert_null(s.ptr);
    assert_int_equal(s.len, 0);
}

static const void *zone_head(const struct fx *fx)
{
    const msgpack_zone *zone = fx->dec.zone;

    return zone->chunk_list.head;
}

/* ---- valid events ---- */

static void test_decode_lead_created_fills_every_field(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    assert_int_equal(fx->fault, RS_FAULT_NONE);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_CREATED);
    assert_str(fx->ev.id, "ev-1");
    assert_int_equal(fx->ev.ts_ms, 1715680680000);
    assert_str(fx->ev.account, "acc-9");
    assert_str(fx->ev.tenant, "t_123");
    assert_str(fx->ev.source, "salesforce");
    assert_str(fx->ev.source_id, "00Q5g000001");
    assert_true(fx->ev.has_seq);
    assert_int_equal(fx->ev.seq, 7);
    assert_str(fx->ev.u.lead_created.lead_id, "L-889");
    assert_str(fx->ev.u.lead_created.channel, "demo_request");
    assert_int_equal(fx->ev.u.lead_created.intent_tier, RS_TIER_HIGH);
    assert_str(fx->ev.u.lead_created.segment, "mid_market");
    assert_str(fx->ev.u.lead_created.owner_id, "rep_42");
}

static void test_decode_lead_touched_fills_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_lead_touched *lt = &fx->ev.u.lead_touched;

    assert_int_equal(decode_event(fx, touched, MPB_COUNT(touched), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_TOUCHED);
    assert_str(fx->ev.id, "ev-2");
    assert_int_equal(fx->ev.ts_ms, 1715680800000);
    assert_str(fx->ev.account, "acc-9");
    assert_str(lt->lead_id, "L-889");
    assert_str(lt->rep_id, "rep_42");
    assert_int_equal(lt->actor_type, RS_ACTOR_HUMAN);
    assert_int_equal(lt->channel, RS_CH_MEETING);
    assert_int_equal(lt->direction, RS_DIR_INBOUND);
    assert_true(lt->connected);
}

static void test_decode_lead_disqualified_fills_every_field(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(decode_event(fx, disqualified, MPB_COUNT(disqualified), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_DISQUALIFIED);
    assert_str(fx->ev.id, "ev-3");
    assert_int_equal(fx->ev.ts_ms, 1715680900000);
    assert_str(fx->ev.u.lead_disqualified.lead_id, "L-889");
    assert_str(fx->ev.u.lead_disqualified.reason, "spam");
}

static void test_decode_lead_converted_fills_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_lead_converted *lc = &fx->ev.u.lead_converted;

    assert_int_equal(decode_event(fx, converted, MPB_COUNT(converted), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_CONVERTED);
    assert_str(fx->ev.id, "ev-4");
    assert_int_equal(fx->ev.ts_ms, 1715681000000);
    assert_str(fx->ev.account, "acc-9");
    assert_str(lc->lead_id, "L-889");
    assert_str(lc->account_id, "acc-9");
    assert_str(lc->contact_id, "C-17");
    assert_str(lc->opportunity_id, "O-5");
}

static void test_decode_lead_merged_fills_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_lead_merged *lm = &fx->ev.u.lead_merged;

    assert_int_equal(decode_event(fx, merged, MPB_COUNT(merged), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_MERGED);
    assert_str(fx->ev.id, "ev-5");
    assert_int_equal(fx->ev.ts_ms, 1715681100000);
    assert_str(lm->lead_id, "L-890");
    assert_str(lm->into_lead_id, "L-889");
    assert_str(lm->reason, "duplicate_email");
}

static void test_decode_absent_optional_fields_are_unset(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(decode_event(fx, created_min, MPB_COUNT(created_min), NULL, NULL), 0);
    assert_unset(fx->ev.account);
    assert_unset(fx->ev.tenant);
    assert_unset(fx->ev.source);
    assert_unset(fx->ev.source_id);
    assert_false(fx->ev.has_seq);
    assert_int_equal(fx->ev.u.lead_created.intent_tier, RS_TIER_MQL);
    assert_unset(fx->ev.u.lead_created.owner_id);

    assert_int_equal(decode_event(fx, converted_min, MPB_COUNT(converted_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.lead_converted.opportunity_id);

    assert_int_equal(decode_event(fx, merged_min, MPB_COUNT(merged_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.lead_merged.reason);
}

static void test_decode_nil_optional_fields_are_unset(void **state)
{
    struct fx *fx = *state;
    static const char *const envelope[] = { "account", "tenant", "source", "source_id", "seq" };

    for (size_t i = 0; i < MPB_COUNT(envelope); i++) {
        struct mpb_kv nil = MPB_NIL_KV(envelope[i]);

        assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, &nil), 0);
    }

    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(created_min) + 6);
    mpb_kvs(&fx->b, created_min, MPB_COUNT(created_min));
    mpb_str(&fx->b, "account");
    mpb_nil(&fx->b);
    mpb_str(&fx->b, "tenant");
    mpb_nil(&fx->b);
    mpb_str(&fx->b, "source");
    mpb_nil(&fx->b);
    mpb_str(&fx->b, "source_id");
    mpb_nil(&fx->b);
    mpb_str(&fx->b, "seq");
    mpb_nil(&fx->b);
    mpb_str(&fx->b, "owner_id");
    mpb_nil(&fx->b);
    expect_ok(fx);
    assert_unset(fx->ev.account);
    assert_unset(fx->ev.tenant);
    assert_unset(fx->ev.source);
    assert_unset(fx->ev.source_id);
    assert_false(fx->ev.has_seq);
    assert_unset(fx->ev.u.lead_created.owner_id);

    {
        struct mpb_kv nil = MPB_NIL_KV("opportunity_id");

        assert_int_equal(decode_event(fx, converted, MPB_COUNT(converted), NULL, &nil), 0);
        assert_unset(fx->ev.u.lead_converted.opportunity_id);
    }
    {
        struct mpb_kv nil = MPB_NIL_KV("reason");

        assert_int_equal(decode_event(fx, merged, MPB_COUNT(merged), NULL, &nil), 0);
        assert_unset(fx->ev.u.lead_merged.reason);
    }
}

static void put_float(struct mpb *b, double v)
{
    struct mpb_val val = { .kind = MPB_FLOAT, .f = v };

    mpb_val(b, &val);
}

static void test_decode_ignores_unknown_keys_of_any_shape(void **state)
{
    struct fx *fx = *state;
    static const unsigned char raw[] = { 0x01, 0x02 };

    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(touched) + 7);
    mpb_kvs(&fx->b, touched, MPB_COUNT(touched));
    mpb_str(&fx->b, "lead_score");
    put_float(&fx->b, 0.62);
    mpb_str(&fx->b, "tags");
    mpb_array(&fx->b, 2);
    mpb_str(&fx->b, "a");
    mpb_int(&fx->b, -1);
    mpb_str(&fx->b, "nested");
    mpb_map(&fx->b, 1);
    mpb_int(&fx->b, 5); /* a non-string key below the top level is not our business */
    mpb_map(&fx->b, 0);
    mpb_str(&fx->b, "blob");
    mpb_ext(&fx->b, 42, raw, sizeof(raw));
    mpb_str(&fx->b, "into_lead_id"); /* known key of another type */
    mpb_int(&fx->b, 3);
    mpb_str(&fx->b, "");
    mpb_nil(&fx->b);
    mpb_str(&fx->b, "lead_id_v2");
    mpb_str(&fx->b, "other");
    expect_ok(fx);
    assert_str(fx->ev.u.lead_touched.lead_id, "L-889");
    assert_int_equal(fx->ev.u.lead_touched.channel, RS_CH_MEETING);
}

static void test_decode_duplicate_key_last_value_wins(void **state)
{
    struct fx *fx = *state;

    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(disqualified) + 2);
    mpb_str(&fx->b, "lead_id");
    mpb_str(&fx->b, "first");
    mpb_kvs(&fx->b, disqualified, MPB_COUNT(disqualified));
    mpb_str(&fx->b, "reason");
    mpb_str(&fx->b, "last");
    expect_ok(fx);
    assert_str(fx->ev.u.lead_disqualified.lead_id, "L-889");
    assert_str(fx->ev.u.lead_disqualified.reason, "last");

    /* A later nil wins too, so the required field is then missing. */
    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(disqualified) + 1);
    mpb_kvs(&fx->b, disqualified, MPB_COUNT(disqualified));
    mpb_str(&fx->b, "reason");
    mpb_nil(&fx->b);
    expect_fault(fx, RS_FAULT_MISSING_FIELD,
                 "missing required field 'reason' for type 'lead.disqualified' (nil)");
}

static void test_decode_every_enum_value_is_accepted(void **state)
{
    struct fx *fx = *state;
    static const char *const tiers[] = { "high", "mql", "low" };
    static const char *const actors[] = { "human", "automation" };
    static const char *const channels[] = { "call", "email", "sms", "chat", "meeting", "social" };
    static const char *const directions[] = { "outbound", "inbound" };

    for (size_t i = 0; i < MPB_COUNT(tiers); i++) {
        struct mpb_kv kv = MPB_S("intent_tier", tiers[i]);

        assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, &kv), 0);
        assert_int_equal(fx->ev.u.lead_created.intent_tier, i);
        assert_string_equal(rs_intent_tier_name(fx->ev.u.lead_created.intent_tier), tiers[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(actors); i++) {
        struct mpb_kv kv = MPB_S("actor_type", actors[i]);

        assert_int_equal(decode_event(fx, touched, MPB_COUNT(touched), NULL, &kv), 0);
        assert_string_equal(rs_actor_type_name(fx->ev.u.lead_touched.actor_type), actors[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(channels); i++) {
        struct mpb_kv kv = MPB_S("channel", channels[i]);

        assert_int_equal(decode_event(fx, touched, MPB_COUNT(touched), NULL, &kv), 0);
        assert_string_equal(rs_touch_channel_name(fx->ev.u.lead_touched.channel), channels[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(directions); i++) {
        struct mpb_kv kv = MPB_S("direction", directions[i]);

        assert_int_equal(decode_event(fx, touched, MPB_COUNT(touched), NULL, &kv), 0);
        assert_string_equal(rs_direction_name(fx->ev.u.lead_touched.direction), directions[i]);
    }
}

static void test_decode_free_text_fields_may_be_empty(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv channel = MPB_S("channel", "");
    struct mpb_kv reason = MPB_S("reason", "");

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, &channel), 0);
    assert_str(fx->ev.u.lead_created.channel, "");
    assert_int_equal(decode_event(fx, disqualified, MPB_COUNT(disqualified), NULL, &reason), 0);
    assert_str(fx->ev.u.lead_disqualified.reason, "");
}

static void test_decode_seq_takes_any_int64(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv negative = MPB_I("seq", -3);
    struct mpb_kv largest = MPB_U("seq", INT64_MAX);

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, &negative), 0);
    assert_true(fx->ev.has_seq);
    assert_int_equal(fx->ev.seq, -3);
    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, &largest), 0);
    assert_int_equal(fx->ev.seq, INT64_MAX);
}

/* msgpack's timestamp extension: type -1, then 4, 8 or 12 bytes, all big-endian. */
static void put_ts_ext(struct mpb *b, size_t size, int64_t sec, uint32_t nsec)
{
    unsigned char data[12];
    uint64_t v;

    switch (size) {
    case 4:
        v = (uint64_t)sec;
        for (size_t i = 0; i < 4; i++) {
            data[i] = (unsigned char)(v >> (24 - 8 * i));
        }
        break;
    case 8:
        v = ((uint64_t)nsec << 34) | (uint64_t)sec;
        for (size_t i = 0; i < 8; i++) {
            data[i] = (unsigned char)(v >> (56 - 8 * i));
        }
        break;
    default:
        for (size_t i = 0; i < 4; i++) {
            data[i] = (unsigned char)(nsec >> (24 - 8 * i));
        }
        v = (uint64_t)sec;
        for (size_t i = 0; i < 8; i++) {
            data[4 + i] = (unsigned char)(v >> (56 - 8 * i));
        }
        break;
    }
    mpb_ext(b, -1, data, size);
}

/* created_min with its ts replaced by a timestamp extension. */
static void build_with_ts_ext(struct fx *fx, size_t size, int64_t sec, uint32_t nsec)
{
    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(created_min));
    for (size_t i = 0; i < MPB_COUNT(created_min); i++) {
        mpb_str(&fx->b, created_min[i].key);
        if (strcmp(created_min[i].key, "ts") == 0) {
            put_ts_ext(&fx->b, size, sec, nsec);
        } else {
            mpb_val(&fx->b, &created_min[i].val);
        }
    }
}

static void test_decode_ts_timestamp_ext_is_converted_to_ms(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv packed = MPB_TS("ts", 1715680680, 999999999);

    build_with_ts_ext(fx, 4, 1715680680, 0);
    expect_ok(fx);
    assert_int_equal(fx->ev.ts_ms, 1715680680000);

    /* Sub-millisecond digits are cut, not rounded: 123.456789 ms -> 123 ms. */
    build_with_ts_ext(fx, 8, 1715680680, 123456789);
    expect_ok(fx);
    assert_int_equal(fx->ev.ts_ms, 1715680680123);

    /* The 96-bit form, needed past 2514. */
    build_with_ts_ext(fx, 12, INT64_C(17179869184), 5000000);
    expect_ok(fx);
    assert_int_equal(fx->ev.ts_ms, INT64_C(17179869184005));

    /* And whatever msgpack_pack_timestamp() chooses. */
    assert_int_equal(decode_event(fx, created_min, MPB_COUNT(created_min), NULL, &packed), 0);
    assert_int_equal(fx->ev.ts_ms, 1715680680999);
}

static void test_decode_strings_point_into_the_payload(void **state)
{
    struct fx *fx = *state;
    const char *lo;
    const char *hi;

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    lo = mpb_data(&fx->b);
    hi = lo + mpb_len(&fx->b);
    {
        const struct rs_str all[] = {
            fx->ev.id,
            fx->ev.account,
            fx->ev.tenant,
            fx->ev.source,
            fx->ev.source_id,
            fx->ev.u.lead_created.lead_id,
            fx->ev.u.lead_created.channel,
            fx->ev.u.lead_created.segment,
            fx->ev.u.lead_created.owner_id,
        };

        for (size_t i = 0; i < MPB_COUNT(all); i++) {
            assert_true(all[i].ptr >= lo && all[i].ptr + all[i].len <= hi);
        }
    }
}
static void test_decode_converted_account_id_defaults_to_account(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv same = MPB_S("account_id", "acc-9");

    assert_int_equal(decode_event(fx, converted, MPB_COUNT(converted), "account_id", NULL), 0);
    assert_str(fx->ev.u.lead_converted.account_id, "acc-9");
    assert_ptr_equal(fx->ev.u.lead_converted.account_id.ptr, fx->ev.account.ptr);

    assert_int_equal(decode_event(fx, converted, MPB_COUNT(converted), NULL, &same), 0);
    assert_str(fx->ev.u.lead_converted.account_id, "acc-9");
}

static void test_decode_converted_account_id_differing_from_account_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv other = MPB_S("account_id", "acc-10");

    mpb_reset(&fx->b);
    mpb_event(&fx->b, converted, MPB_COUNT(converted), NULL, &other);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'account_id': 'acc-10' differs from 'account' 'acc-9'");
}

static void test_decode_reuses_its_zone_across_many_events(void **state)
{
    struct fx *fx = *state;
    const struct event_case full[] = {
        { "lead.created", created, MPB_COUNT(created) },
        { "lead.touched", touched, MPB_COUNT(touched) },
        { "lead.disqualified", disqualified, MPB_COUNT(disqualified) },
        { "lead.converted", converted, MPB_COUNT(converted) },
        { "lead.merged", merged, MPB_COUNT(merged) },
    };
    const void *head = NULL;

    for (int i = 0; i < 10000; i++) {
        const struct event_case *c = &full[i % 5];
        char id[32];
        struct mpb_kv kv;

        (void)snprintf(id, sizeof(id), "ev-%d", i);
        kv = (struct mpb_kv)MPB_S("id", id);
        assert_int_equal(decode_event(fx, c->kvs, c->n, NULL, &kv), 0);
        assert_string_equal(rs_event_type_name(fx->ev.type), c->type);
        assert_str(fx->ev.id, id);
        /* Every type's first field is lead_id, so any member of the union shows it. */
        assert_str(fx->ev.u.lead_created.lead_id, i % 5 == 4 ? "L-890" : "L-889");
        if (head == NULL) {
            head = zone_head(fx);
        }
        assert_ptr_equal(zone_head(fx), head); /* no new chunk: nothing allocated */
    }
}

/* Decode `p` with `dec` into a summary: the code, the fault, the message, and the event as
 * rs_event_encode() writes it (every field, whatever its type). */
struct decode_result {
    int rc;
    enum rs_event_fault fault;
    struct rs_err err;
    struct rs_buf enc;
};

static void decode_into(struct rs_event_decoder *dec, const uint8_t *p, size_t len,
                        struct decode_result *out)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    out->err.msg[0] = '\0';
    rs_buf_reset(&out->enc);
    out->rc = rs_event_decode(dec, p, len, &ev, &out->fault, &out->err);
    if (out->rc == 0) {
        rs_event_encode(&ev, &out->enc);
    }
}

/*
 * The one pass (walk_map() in event.c) and the two passes (scan(), build()) agree on every
 * payload: the same code, fault and message, and the same event. Payloads: every event type,
 * as built and then mutated at random (bytes overwritten, often with container, string and
 * reserved type bytes; truncations; bytes appended; the top-level map re-headed as map 16
 * or map 32), so that both valid events and every kind of refusal come through.
 */
static void test_decode_one_pass_agrees_with_two_passes(void **state)
{
    static const uint8_t tricky[] = { 0xc1, 0xd9, 0xda, 0xdb, 0xde, 0xdf, 0xdc, 0xdd, 0x8f,
                                      0x9f, 0xbf, 0xc7, 0xd8, 0xc0, 0x80, 0x90, 0xa0, 0xff };
    struct fx *fx = *state;
    struct rs_event_decoder two;
    struct decode_result a, b;
    uint8_t buf[4096];
    uint64_t rng = 7;
    size_t accepted = 0, refused = 0;

    rs_event_decoder_init(&two, TEST_MAX_BYTES);
    two.two_pass = true;
    rs_buf_init(&a.enc);
    rs_buf_init(&b.enc);
    for (int round = 0; round < 100000; round++) {
        const struct event_case *c = &full_cases[(size_t)round % MPB_COUNT(full_cases)];
        uint64_t r = (rng = rng * 6364136223846793005u + 1442695040888963407u) >> 16;
        size_t len;

        mpb_reset(&fx->b);
        mpb_event(&fx->b, c->kvs, c->n, NULL, NULL);
        len = mpb_len(&fx->b);
        assert_true(len + 8 <= sizeof(buf));
        memcpy(buf, mpb_data(&fx->b), len);
        if (r % 8 == 1 && buf[0] >= 0x80 && buf[0] <= 0x8f) {
            size_t n = buf[0] & 0x0fu;
            size_t head = r % 16 < 8 ? 3 : 5;

            memmove(buf + head, buf + 1, len - 1);
            buf[0] = head == 3 ? 0xde : 0xdf;
            memset(buf + 1, 0, head - 1);
            buf[head - 1] = (uint8_t)n;
            len += head - 1;
        }
        for (int m = 0; m < (int)(r >> 4) % 4; m++) {
            uint64_t q = (rng = rng * 6364136223846793005u + 1442695040888963407u) >> 16;
            size_t at = (size_t)(q % len);

            switch ((q >> 20) % 4) {
            case 0:
                buf[at] = (uint8_t)(q >> 28);
                break;
            case 1:
                buf[at] = tricky[(q >> 28) % sizeof(tricky)];
                break;
            case 2:
                len = at > 0 ? at : 1;
                break;
            default:
                buf[len++] = (uint8_t)(q >> 28);
                break;
            }
        }
        decode_into(&fx->dec, buf, len, &a);
        decode_into(&two, buf, len, &b);
        if (a.rc != b.rc || a.fault != b.fault || strcmp(a.err.msg, b.err.msg) != 0) {
            print_error("round %d: one pass rc %d '%s', two passes rc %d '%s'\n", round, a.rc,
                        a.err.msg, b.rc, b.err.msg);
            fail();
        }
        assert_int_equal(a.enc.len, b.enc.len);
        assert_memory_equal(a.enc.data, b.enc.data, a.enc.len);
        if (a.rc == 0) {
            accepted++;
        } else {
            refused++;
        }
    }
    /* Both kinds came through in numbers. */
    assert_true(accepted > 10000);
    assert_true(refused > 10000);
    rs_buf_release(&a.enc);
    rs_buf_release(&b.enc);
    rs_event_decoder_release(&two);
}

static void test_decode_large_event_grows_the_zone_only_until_the_next_decode(void **state)
{
    struct fx *fx = *state;
    const void *head;

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    head = zone_head(fx);

    /* 2000 unknown keys with an array each need about 48 KiB of tree, far more than the first
     * chunk (the top-level map itself needs none: its values go straight to their slots). */
    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(created) + 2000);
    mpb_kvs(&fx->b, created, MPB_COUNT(created));
    for (int i = 0; i < 2000; i++) {
        char key[16];

        (void)snprintf(key, sizeof(key), "x%d", i);
        mpb_str(&fx->b, key);
        mpb_array(&fx->b, 1);
        mpb_nil(&fx->b);
    }
    expect_ok(fx);
    assert_ptr_not_equal(zone_head(fx), head);

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    assert_ptr_equal(zone_head(fx), head);
    assert_str(fx->ev.u.lead_created.lead_id, "L-889");
}

static void test_decode_success_after_failure_clears_the_fault(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), "id", NULL), RS_EDECODE);
    assert_int_equal(fx->fault, RS_FAULT_MISSING_FIELD);
    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    assert_int_equal(fx->fault, RS_FAULT_NONE);
}

static void test_decode_accepts_null_fault_and_err(void **state)
{
    struct fx *fx = *state;
    static const unsigned char garbage[] = { 0xc1 };

    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, NULL);
    assert_int_equal(
        rs_event_decode(&fx->dec, mpb_data(&fx->b), mpb_len(&fx->b), &fx->ev, NULL, NULL), 0);
    assert_int_equal(rs_event_decode(&fx->dec, garbage, sizeof(garbage), &fx->ev, NULL, NULL),
                     RS_EDECODE);
}

/* ---- invalid msgpack ---- */

static void test_decode_garbage_is_invalid_msgpack(void **state)
{
    struct fx *fx = *state;
    static const unsigned char never_used[] = { 0x81, 0xa1, 'x', 0xc1 };
    static const char json[] = "{\"type\":\"lead.created\"}";

    mpb_raw(&fx->b, never_used, sizeof(never_used));
    expect_fault(fx, RS_FAULT_MSGPACK, "not valid msgpack: byte 0xc1 (never used) at byte 3 of 4");

    /* JSON on the msgpack topic: '{' reads as the integer 123, and the rest is left over. */
    mpb_reset(&fx->b);
    mpb_raw(&fx->b, json, sizeof(json) - 1);
    expect_fault(fx, RS_FAULT_MSGPACK, "not valid msgpack: trailing bytes");
}

static void test_decode_empty_payload_is_invalid_msgpack(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(rs_event_decode(&fx->dec, NULL, 0, &fx->ev, &fx->fault, &fx->err), RS_EDECODE);
    assert_int_equal(fx->fault, RS_FAULT_MSGPACK);
    assert_string_equal(fx->err.msg, "not valid msgpack: empty payload");
}

static void test_decode_every_truncation_is_invalid_msgpack(void **state)
{
    struct fx *fx = *state;
    size_t len;

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, NULL);
    len = mpb_len(&fx->b);
    /* msgpack is prefix-free: no proper prefix of an object is itself complete. */
    for (size_t cut = 1; cut < len; cut++) {
        int rc = rs_event_decode(&fx->dec, mpb_data(&fx->b), cut, &fx->ev, &fx->fault, &fx->err);

        if (rc != RS_EDECODE || fx->fault != RS_FAULT_MSGPACK ||
            strstr(fx->err.msg, "not valid msgpack: truncated at byte") == NULL) {
            print_error("cut=%zu of %zu: fault=%s msg='%s'\n", cut, len,
                        rs_event_fault_name(fx->fault), fx->err.msg);
            fail();
        }
    }
}

static void test_decode_truncated_message_names_the_offsets(void **state)
{
    struct fx *fx = *state;

    /* {"type": <str of 20 bytes, only 5 present>} */
    mpb_raw(&fx->b,
            "\x81\xa4type\xb4"
            "abcde",
            12);
    expect_fault(fx, RS_FAULT_MSGPACK,
                 "not valid msgpack: truncated at byte 12 of 12 (a value of 20 bytes at byte 6)");

    mpb_reset(&fx->b);
    /* {"x": nil, nil: <missing>}: the counts fit, but the input ends first */
    mpb_raw(&fx->b, "\x82\xa1x\xc0\xc0", 5);
    expect_fault(fx, RS_FAULT_MSGPACK,
                 "not valid msgpack: truncated at byte 5 of 5 (the map at byte 0 is incomplete)");

    /* {"x": [1, <missing>]} */
    mpb_reset(&fx->b);
    mpb_raw(&fx->b, "\x81\xa1x\x92\x01", 5);
    expect_fault(fx, RS_FAULT_MSGPACK, "(an array of 2 entries at byte 3)");
    mpb_reset(&fx->b);
    mpb_raw(&fx->b, "\x81\xa1x\x92\x01\x01\x01", 7);
    expect_fault(fx, RS_FAULT_MSGPACK, "trailing bytes");
    mpb_reset(&fx->b);
    mpb_raw(&fx->b, "\x81\xa1x\x93\x01\x01\x01", 7);
    expect_fault(fx, RS_FAULT_MISSING_FIELD, "missing required field 'type'"); /* valid */
    mpb_reset(&fx->b);
    mpb_raw(&fx->b, "\x82\xa1x\x92\x01\x01\x01", 7);
    expect_fault(fx, RS_FAULT_MSGPACK, "(the map at byte 0 is incomplete)");
}

static void test_decode_trailing_bytes_are_invalid_msgpack(void **state)
{
    struct fx *fx = *state;
    char msg[128];

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, NULL);
    (void)snprintf(msg, sizeof(msg),
                   "not valid msgpack: trailing bytes after the object (it "
                   "ends at byte %zu of %zu)",
                   mpb_len(&fx->b), mpb_len(&fx->b) + 1);
    mpb_nil(&fx->b);
    expect_fault(fx, RS_FAULT_MSGPACK, msg);

    /* Two complete events in one payload are not one event. */
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, NULL);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, NULL);
    expect_fault(fx, RS_FAULT_MSGPACK, "trailing bytes");
}

static void test_decode_count_larger_than_payload_is_invalid_without_allocating(void **state)
{
    struct fx *fx = *state;
    const void *head;

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    head = zone_head(fx);

    /* {"x": array32 of 2^26 items}: msgpack-c alone would reserve 1.5 GiB for it. */
    mpb_reset(&fx->b);
    mpb_raw(&fx->b, "\x81\xa1x\xdd\x04\x00\x00\x00", 8);
    expect_fault(fx, RS_FAULT_MSGPACK,
                 "truncated at byte 8 of 8 (an array of 67108864 entries at byte 3)");
    assert_ptr_equal(zone_head(fx), head);

    mpb_reset(&fx->b);
    mpb_raw(&fx->b, "\xdf\xff\xff\xff\xff", 5);
    expect_fault(fx, RS_FAULT_MSGPACK, "(a map of 4294967295 entries at byte 0)");
    assert_ptr_equal(zone_head(fx), head);
}

/* created_min plus "deep": `arrays` nested one-item arrays around `innermost`. */
static void build_nested(struct fx *fx, int arrays, bool innermost_empty)
{
    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(created_min) + 1);
    mpb_kvs(&fx->b, created_min, MPB_COUNT(created_min));
    mpb_str(&fx->b, "deep");
    for (int i = 0; i < arrays; i++) {
        mpb_array(&fx->b, 1);
    }
    if (innermost_empty) {
        mpb_array(&fx->b, 0);
    } else {
        mpb_nil(&fx->b);
    }
}

static void test_decode_nesting_limit_matches_msgpack_c(void **state)
{
    struct fx *fx = *state;

    /* The top-level map and 31 arrays: 32 open containers, msgpack-c's limit. */
    build_nested(fx, 31, false);
    expect_ok(fx);
    build_nested(fx, 30, true);
    expect_ok(fx);

    /* One more container, even an empty one, and msgpack-c fails. */
    build_nested(fx, 32, false);
    expect_fault(fx, RS_FAULT_MSGPACK, "not valid msgpack: nested deeper than 32 levels");
    build_nested(fx, 31, true);
    expect_fault(fx, RS_FAULT_MSGPACK, "nested deeper than 32 levels");
}

/* ---- not a map ---- */

static void test_decode_top_level_other_than_map_is_not_a_map(void **state)
{
    struct fx *fx = *state;

    mpb_array(&fx->b, 2);
    mpb_int(&fx->b, 1);
    mpb_int(&fx->b, 2);
    expect_fault(fx, RS_FAULT_NOT_MAP, "expected a map at the top level, got array");

    mpb_reset(&fx->b);
    mpb_str(&fx->b, "lead.created");
    expect_fault(fx, RS_FAULT_NOT_MAP, "expected a map at the top level, got str");
}

static void test_decode_non_string_key_is_not_a_map(void **state)
{
    struct fx *fx = *state;

    mpb_map(&fx->b, MPB_COUNT(created_min) + 1);
    mpb_kvs(&fx->b, created_min, 3);
    mpb_int(&fx->b, 7);
    mpb_str(&fx->b, "seven");
    mpb_kvs(&fx->b, created_min + 3, MPB_COUNT(created_min) - 3);
    expect_fault(fx, RS_FAULT_NOT_MAP, "key 3 of the map is int, not a string");

    mpb_reset(&fx->b);
    mpb_map(&fx->b, 1);
    mpb_raw(&fx->b, "\xc4\x04type", 6); /* bin, not str */
    mpb_str(&fx->b, "lead.created");
    expect_fault(fx, RS_FAULT_NOT_MAP, "key 0 of the map is bin, not a string");
}

/* ---- the envelope ---- */

static void test_decode_missing_type_is_missing_field(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv nil = MPB_NIL_KV("type");

    decode_event(fx, created, MPB_COUNT(created), "type", NULL);
    assert_int_equal(fx->fault, RS_FAULT_MISSING_FIELD);
    assert_string_equal(fx->err.msg, "missing required field 'type'");

    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &nil);
    expect_fault(fx, RS_FAULT_MISSING_FIELD, "missing required field 'type' (nil)");
}

static void test_decode_type_not_a_string_is_wrong_type(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv kv = MPB_I("type", 1);

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &kv);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'type': expected a string, got int");
}

static void test_decode_unknown_type_is_unknown_type(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv kv = MPB_S("type", "lead.teleported");
    struct mpb_kv upper = MPB_S("type", "Lead.Created");

    decode_event(fx, created, MPB_COUNT(created), NULL, &kv);
    assert_int_equal(fx->fault, RS_FAULT_UNKNOWN_TYPE);
    assert_string_equal(fx->err.msg, "unknown event type 'lead.teleported'");

    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &upper);
    expect_fault(fx, RS_FAULT_UNKNOWN_TYPE, "unknown event type 'Lead.Created'");
}

static void test_decode_message_quotes_values_safely(void **state)
{
    struct fx *fx = *state;
    char long_type[201];
    struct mpb_kv odd = MPB_S("type", "lead.\x01\n'\\\xc3\xa9");
    struct mpb_kv huge = MPB_S("type", long_type);

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &odd);
    expect_fault(fx, RS_FAULT_UNKNOWN_TYPE,
                 "unknown event type 'lead.\\x01\\x0a\\'\\\\\\xc3\\xa9'");

    memset(long_type, 'a', 200);
    long_type[200] = '\0';
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &huge);
    expect_fault(fx, RS_FAULT_UNKNOWN_TYPE,
                 "unknown event type 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'...");
    assert_int_equal(strlen(fx->err.msg), strlen("unknown event type ''...") + 40);
}

static void test_decode_missing_id_is_missing_field(void **state)
{
    struct fx *fx = *state;

    mpb_event(&fx->b, created, MPB_COUNT(created), "id", NULL);
    expect_fault(fx, RS_FAULT_MISSING_FIELD, "missing required field 'id'");
}

static void test_decode_empty_id_is_bad_value(void **state)
{
    struct fx *fx = *state;
    static const char *const ids[] = { "id", "account", "tenant", "source", "source_id" };

    for (size_t i = 0; i < MPB_COUNT(ids); i++) {
        struct mpb_kv kv = MPB_S(ids[i], "");
        char msg[96];

        (void)snprintf(msg, sizeof(msg), "field '%s': expected a non-empty string, got ''", ids[i]);
        mpb_reset(&fx->b);
        mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &kv);
        expect_fault(fx, RS_FAULT_BAD_VALUE, msg);
    }
}

static void test_decode_missing_ts_is_missing_field(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv nil = MPB_NIL_KV("ts");

    mpb_event(&fx->b, created, MPB_COUNT(created), "ts", NULL);
    expect_fault(fx, RS_FAULT_MISSING_FIELD, "missing required field 'ts'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &nil);
    expect_fault(fx, RS_FAULT_MISSING_FIELD, "missing required field 'ts' (nil)");
}

static void test_decode_ts_of_wrong_type_is_wrong_type(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv str = MPB_S("ts", "2024-05-14T09:58:00Z");
    struct mpb_kv flt = MPB_F("ts", 1715680680000.0);
    static const unsigned char four[4] = { 0 };

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &str);
    expect_fault(fx, RS_FAULT_WRONG_TYPE,
                 "field 'ts': expected an integer (ms) or a timestamp, got str");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &flt);
    expect_fault(fx, RS_FAULT_WRONG_TYPE,
                 "field 'ts': expected an integer (ms) or a timestamp, got float");

    mpb_reset(&fx->b);
    mpb_map(&fx->b, 4);
    mpb_kvs(&fx->b, created_min, 2);
    mpb_str(&fx->b, "ts");
    mpb_ext(&fx->b, 5, four, sizeof(four));
    mpb_kvs(&fx->b, created_min + 3, 1);
    expect_fault(fx, RS_FAULT_WRONG_TYPE,
                 "field 'ts': expected an integer (ms) or a timestamp, got ext type 5");
}

static void test_decode_ts_not_positive_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv negative = MPB_I("ts", -5);
    struct mpb_kv zero = MPB_I("ts", 0);
    struct mpb_kv huge = MPB_U("ts", UINT64_MAX);

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &negative);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': expected a positive int64 (ms), got -5");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &zero);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': expected a positive int64 (ms), got 0");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &huge);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "got 18446744073709551615");
}

static void test_decode_ts_after_year_9999_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv last = MPB_I("ts", INT64_C(253402300799999));
    struct mpb_kv micros = MPB_I("ts", INT64_C(1715680680000000)); /* microseconds */

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &last);
    expect_ok(fx);
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &micros);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "is after the year 9999 (microseconds instead of");
    mpb_reset(&fx->b);
    build_with_ts_ext(fx, 12, INT64_C(253402300800), 0);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': 253402300800 s is after the year 9999");
}

static void test_decode_bad_timestamp_ext_is_bad_value(void **state)
{
    struct fx *fx = *state;
    static const unsigned char three[3] = { 0 };

    /* Before 1970 (the 96-bit form is signed). */
    build_with_ts_ext(fx, 12, -1, 0);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': expected a positive time");
    /* The epoch itself, and less than one ms after it. */
    build_with_ts_ext(fx, 4, 0, 0);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': expected a positive time");
    build_with_ts_ext(fx, 8, 0, 999999);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': expected a positive time");
    /* Beyond what int64 ms can hold. */
    build_with_ts_ext(fx, 12, INT64_MAX, 0);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': expected a positive time");
    /* The 64-bit form has room for nanoseconds that do not exist. */
    build_with_ts_ext(fx, 8, 1715680680, 1000000000);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "timestamp nanoseconds 1000000000 exceed 999999999");

    mpb_reset(&fx->b);
    mpb_map(&fx->b, MPB_COUNT(created_min));
    for (size_t i = 0; i < MPB_COUNT(created_min); i++) {
        mpb_str(&fx->b, created_min[i].key);
        if (strcmp(created_min[i].key, "ts") == 0) {
            mpb_ext(&fx->b, -1, three, sizeof(three));
        } else {
            mpb_val(&fx->b, &created_min[i].val);
        }
    }
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ts': a timestamp has 4, 8 or 12 bytes, got 3");
}

static void test_decode_seq_of_wrong_type_or_range_is_rejected(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv str = MPB_S("seq", "7");
    struct mpb_kv huge = MPB_U("seq", (uint64_t)INT64_MAX + 1);

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &str);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'seq': expected an integer, got str");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &huge);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'seq': 9223372036854775808 does not fit int64");
}

static void test_decode_optional_envelope_field_of_wrong_type_is_wrong_type(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv kv = MPB_I("account", 9);

    mpb_event(&fx->b, created_min, MPB_COUNT(created_min), NULL, &kv);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'account': expected a string, got int");
}

/* ---- per-type fields ---- */

static void test_decode_each_missing_required_field_is_missing_field(void **state)
{
    struct fx *fx = *state;

    for (size_t c = 0; c < MPB_COUNT(min_cases); c++) {
        const struct event_case *ec = &min_cases[c];

        for (size_t i = 0; i < ec->n; i++) {
            const char *key = ec->kvs[i].key;
            struct mpb_kv nil = MPB_NIL_KV(key);
            char msg[128];

            if (strcmp(key, "type") == 0) {
                continue; /* without a type there is no "for type" (see above) */
            }
            if (is_envelope_key(key)) {
                (void)snprintf(msg, sizeof(msg), "missing required field '%s'", key);
            } else {
                (void)snprintf(msg, sizeof(msg), "missing required field '%s' for type '%s'", key,
                               ec->type);
            }
            mpb_reset(&fx->b);
            mpb_event(&fx->b, ec->kvs, ec->n, key, NULL);
            expect_fault(fx, RS_FAULT_MISSING_FIELD, msg);
            assert_string_equal(fx->err.msg, msg);

            /* nil for a required field reads as missing too */
            mpb_reset(&fx->b);
            mpb_event(&fx->b, ec->kvs, ec->n, NULL, &nil);
            expect_fault(fx, RS_FAULT_MISSING_FIELD, msg);
            assert_non_null(strstr(fx->err.msg, "(nil)"));
        }
    }
}

static void test_decode_each_field_of_wrong_type_is_wrong_type(void **state)
{
    struct fx *fx = *state;

    for (size_t c = 0; c < MPB_COUNT(min_cases); c++) {
        const struct event_case *ec = &min_cases[c];

        for (size_t i = 0; i < ec->n; i++) {
            const char *key = ec->kvs[i].key;
            char msg[128];
            struct mpb_kv kv;

            if (strcmp(key, "ts") == 0) {
                continue; /* has its own wording, tested above */
            }
            if (strcmp(key, "connected") == 0 || strcmp(key, "checklist_complete") == 0) {
                kv = (struct mpb_kv)MPB_S(key, "true");
                (void)snprintf(msg, sizeof(msg), "field '%s': expected a bool, got str", key);
            } else if (strstr(key, "_minor") != NULL) {
                kv = (struct mpb_kv)MPB_S(key, "5");
                (void)snprintf(msg, sizeof(msg), "field '%s': expected an integer, got str", key);
            } else if (strcmp(key, "period_start") == 0 || strcmp(key, "period_end") == 0 ||
                       strcmp(key, "date") == 0) {
                kv = (struct mpb_kv)MPB_B(key, true);
                (void)snprintf(msg, sizeof(msg),
                               "field '%s': expected an integer (ms), a timestamp or a date "
                               "(YYYY-MM-DD), got bool",
                               key);
            } else if (strcmp(key, "rate") == 0) {
                kv = (struct mpb_kv)MPB_S(key, "1.5");
                (void)snprintf(msg, sizeof(msg), "field '%s': expected a number, got str", key);
            } else if (strcmp(key, "ramp_schedule") == 0) {
                kv = (struct mpb_kv)MPB_B(key, true);
                (void)snprintf(msg, sizeof(msg),
                               "field '%s': expected an array of integers, got bool", key);
            } else {
                kv = (struct mpb_kv)MPB_B(key, true);
                (void)snprintf(msg, sizeof(msg), "field '%s': expected a string, got bool", key);
            }
            mpb_reset(&fx->b);
            mpb_event(&fx->b, ec->kvs, ec->n, NULL, &kv);
            expect_fault(fx, RS_FAULT_WRONG_TYPE, msg);
        }
    }
}

static void test_decode_optional_field_of_wrong_type_is_wrong_type(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv owner = MPB_I("owner_id", 42);
    struct mpb_kv opportunity = MPB_F("opportunity_id", 5.0);
    struct mpb_kv reason = MPB_B("reason", false);

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &owner);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'owner_id': expected a string, got int");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, converted, MPB_COUNT(converted), NULL, &opportunity);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'opportunity_id': expected a string, got float");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, merged, MPB_COUNT(merged), NULL, &reason);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'reason': expected a string, got bool");
}

static void test_decode_string_as_bin_is_wrong_type(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv kv = { "lead_id", { .kind = MPB_BIN, .str = "L-889" } };

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &kv);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'lead_id': expected a string, got bin");
}

static void test_decode_enum_out_of_range_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv tier = MPB_S("intent_tier", "urgent");
    struct mpb_kv upper = MPB_S("intent_tier", "HIGH");
    struct mpb_kv actor = MPB_S("actor_type", "robot");
    struct mpb_kv channel = MPB_S("channel", "fax");
    struct mpb_kv direction = MPB_S("direction", "sideways");

    decode_event(fx, created, MPB_COUNT(created), NULL, &tier);
    assert_int_equal(fx->fault, RS_FAULT_BAD_VALUE);
    assert_string_equal(fx->err.msg,
                        "field 'intent_tier': expected one of high, mql, low, got 'urgent'");

    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &upper);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "got 'HIGH'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, touched, MPB_COUNT(touched), NULL, &actor);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'actor_type': expected one of human, automation, got 'robot'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, touched, MPB_COUNT(touched), NULL, &channel);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'channel': expected one of call, email, sms, chat, meeting, social, got "
                 "'fax'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, touched, MPB_COUNT(touched), NULL, &direction);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'direction': expected one of outbound, inbound, got 'sideways'");
}

static void test_decode_empty_required_id_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv lead = MPB_S("lead_id", "");
    struct mpb_kv into = MPB_S("into_lead_id", "");
    struct mpb_kv owner = MPB_S("owner_id", "");

    mpb_event(&fx->b, touched, MPB_COUNT(touched), NULL, &lead);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'lead_id': expected a non-empty string, got ''");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, merged, MPB_COUNT(merged), NULL, &into);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'into_lead_id': expected a non-empty string");
    /* An optional id that is present must name something as well; nil means "no owner". */
    mpb_reset(&fx->b);
    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, &owner);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'owner_id': expected a non-empty string");
}

static void test_decode_identifier_longer_than_limit_is_bad_value(void **state)
{
    struct fx *fx = *state;
    static char longest[RS_EVENT_ID_MAX + 2];
    struct mpb_kv lead = MPB_S("lead_id", longest);

    memset(longest, 'x', RS_EVENT_ID_MAX);
    longest[RS_EVENT_ID_MAX] = '\0';
    mpb_event(&fx->b, touched, MPB_COUNT(touched), NULL, &lead);
    expect_ok(fx); /* exactly the limit */
    assert_int_equal(fx->ev.u.lead_touched.lead_id.len, RS_EVENT_ID_MAX);
    longest[RS_EVENT_ID_MAX] = 'x';
    mpb_reset(&fx->b);
    mpb_event(&fx->b, touched, MPB_COUNT(touched), NULL, &lead);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'lead_id': an identifier of 257 bytes, at most 256 allowed");
}

/* ---- the lead, opportunity, handoff, onboarding and rep events ---- */

static void test_decode_lead_lifecycle_events_fill_every_field(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(decode_event(fx, assigned, MPB_COUNT(assigned), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_ASSIGNED);
    assert_str(fx->ev.id, "ev-6");
    assert_int_equal(fx->ev.ts_ms, 1715680700000);
    assert_str(fx->ev.account, "acc-9");
    assert_str(fx->ev.u.lead_assigned.lead_id, "L-889");
    assert_str(fx->ev.u.lead_assigned.owner_id, "rep_42");
    assert_str(fx->ev.u.lead_assigned.queue, "inbound_emea");

    assert_int_equal(decode_event(fx, qualified, MPB_COUNT(qualified), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_QUALIFIED);
    assert_str(fx->ev.u.lead_qualified.lead_id, "L-889");
    assert_int_equal(fx->ev.u.lead_qualified.stage, RS_QUAL_SQL);
    assert_str(fx->ev.u.lead_qualified.qualified_by, "rep_42");

    assert_int_equal(decode_event(fx, recycled, MPB_COUNT(recycled), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_RECYCLED);
    assert_str(fx->ev.u.lead_lifecycle.lead_id, "L-889");
    assert_str(fx->ev.u.lead_lifecycle.reason, "no_response");

    assert_int_equal(decode_event(fx, reopened, MPB_COUNT(reopened), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_LEAD_REOPENED);
    assert_int_equal(fx->ev.ts_ms, 1718000000000);
    assert_str(fx->ev.u.lead_lifecycle.lead_id, "L-889");
    assert_str(fx->ev.u.lead_lifecycle.reason, "new_inquiry");
}

static void test_decode_opportunity_events_fill_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_opp_created *oc = &fx->ev.u.opp_created;
    const struct rs_opp_stage_changed *sc = &fx->ev.u.opp_stage_changed;
    const struct rs_opp_closed *cl = &fx->ev.u.opp_closed;

    assert_int_equal(decode_event(fx, opp_created, MPB_COUNT(opp_created), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_OPP_CREATED);
    assert_str(oc->opportunity_id, "O-5");
    assert_str(oc->account_id, "acc-9");
    assert_str(oc->lead_id, "L-889");
    assert_str(oc->owner_id, "rep_42");
    assert_int_equal(oc->deal_type, RS_DEAL_EXPANSION);
    assert_int_equal(oc->amount_minor, 2400000);
    assert_str(oc->currency, "EUR");
    assert_str(oc->stage, "discovery");
    assert_str(oc->segment, "mid_market");
    assert_str(oc->team_id, "team_emea");

    assert_int_equal(decode_event(fx, stage_changed, MPB_COUNT(stage_changed), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_OPP_STAGE_CHANGED);
    assert_str(sc->opportunity_id, "O-5");
    assert_str(sc->from_stage, "discovery");
    assert_str(sc->to_stage, "proposal");
    assert_str(sc->forecast_category, "best_case");
    assert_true(sc->has_amount);
    assert_int_equal(sc->amount_minor, 2600000);

    assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_OPP_CLOSED);
    assert_str(cl->opportunity_id, "O-5");
    assert_int_equal(cl->outcome, RS_OUTCOME_LOST);
    assert_int_equal(cl->amount_minor, 2600000);
    assert_true(cl->has_tcv);
    assert_int_equal(cl->tcv_minor, 7800000);
    assert_str(cl->currency, "EUR");
    assert_str(cl->loss_reason, "price");
    assert_int_equal(cl->close_date_ms, 1716940800000);
    assert_str(cl->owner_id, "rep_7");
    assert_true(cl->has_deal_type);
    assert_int_equal(cl->deal_type, RS_DEAL_RENEWAL);

    assert_int_equal(decode_event(fx, opp_reopened, MPB_COUNT(opp_reopened), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_OPP_REOPENED);
    assert_str(fx->ev.u.opp_reopened.opportunity_id, "O-5");
    assert_str(fx->ev.u.opp_reopened.reason, "contract_not_signed");
}

static void test_decode_handoff_and_onboarding_events_fill_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_handoff *h = &fx->ev.u.handoff;

    assert_int_equal(decode_event(fx, handoff_started, MPB_COUNT(handoff_started), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_HANDOFF_STARTED);
    assert_str(h->account_id, "acc-9");
    assert_str(h->opportunity_id, "O-5");
    assert_str(h->ae_id, "rep_42");
    assert_str(h->csm_id, "csm_3");
    assert_true(h->checklist_complete);
    assert_str(h->segment, "enterprise");

    assert_int_equal(decode_event(fx, handoff_completed, MPB_COUNT(handoff_completed), NULL, NULL),
                     0);
    assert_int_equal(fx->ev.type, RS_EV_HANDOFF_COMPLETED);
    assert_str(h->opportunity_id, "O-5");
    assert_true(h->checklist_complete);

    assert_int_equal(decode_event(fx, milestone, MPB_COUNT(milestone), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_ONBOARDING_MILESTONE);
    assert_str(fx->ev.u.onboarding_milestone.account_id, "acc-9");
    assert_int_equal(fx->ev.u.onboarding_milestone.milestone, RS_MS_GO_LIVE);
    assert_str(fx->ev.u.onboarding_milestone.status, "completed");

    assert_int_equal(decode_event(fx, paused, MPB_COUNT(paused), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_ONBOARDING_PAUSED);
    assert_str(fx->ev.u.onboarding_pause.account_id, "acc-9");
    assert_str(fx->ev.u.onboarding_pause.reason, "waiting_on_customer");

    assert_int_equal(decode_event(fx, resumed, MPB_COUNT(resumed), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_ONBOARDING_RESUMED);
    assert_str(fx->ev.u.onboarding_pause.reason, "customer_ready");
}

static void test_decode_rep_events_fill_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_rep_quota_set *q = &fx->ev.u.rep_quota_set;

    assert_int_equal(decode_event(fx, rep_onboarded, MPB_COUNT(rep_onboarded), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_REP_ONBOARDED);
    assert_str(fx->ev.u.rep_onboarded.rep_id, "rep_42");
    assert_int_equal(fx->ev.u.rep_onboarded.start_date_ms, 1705276800000);
    assert_str(fx->ev.u.rep_onboarded.role, "AE");
    assert_str(fx->ev.u.rep_onboarded.segment, "mid_market");
    assert_str(fx->ev.u.rep_onboarded.team_id, "team_emea");

    assert_int_equal(decode_event(fx, quota_set, MPB_COUNT(quota_set), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_REP_QUOTA_SET);
    assert_str(q->rep_id, "rep_42");
    assert_str(q->period, "2024-02");
    assert_int_equal(q->period_start_ms, 1706745600000); /* 2024-02-01T00:00:00Z */
    assert_int_equal(q->quota_minor, 5000000);
    assert_str(q->currency, "USD");
    assert_int_equal(q->ramp_n, MPB_COUNT(ramp4));
    for (size_t i = 0; i < MPB_COUNT(ramp4); i++) {
        assert_int_equal(q->ramp_pct[i], ramp4[i]);
    }

    assert_int_equal(decode_event(fx, rep_terminated, MPB_COUNT(rep_terminated), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_REP_TERMINATED);
    assert_str(fx->ev.u.rep_terminated.rep_id, "rep_42");
    assert_str(fx->ev.u.rep_terminated.reason, "voluntary");
}

static void test_decode_new_types_absent_optional_fields_take_their_defaults(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(decode_event(fx, assigned_min, MPB_COUNT(assigned_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.lead_assigned.queue);
    assert_int_equal(decode_event(fx, qualified_min, MPB_COUNT(qualified_min), NULL, NULL), 0);
    assert_int_equal(fx->ev.u.lead_qualified.stage, RS_QUAL_MQL);
    assert_unset(fx->ev.u.lead_qualified.qualified_by);
    assert_int_equal(decode_event(fx, recycled_min, MPB_COUNT(recycled_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.lead_lifecycle.reason);

    assert_int_equal(decode_event(fx, opp_created_min, MPB_COUNT(opp_created_min), NULL, NULL), 0);
    assert_unset(fx->ev.account);
    assert_str(fx->ev.u.opp_created.account_id, "acc-9");
    assert_unset(fx->ev.u.opp_created.lead_id);
    assert_int_equal(fx->ev.u.opp_created.amount_minor, 0); /* zero is an amount */
    assert_unset(fx->ev.u.opp_created.segment);
    assert_unset(fx->ev.u.opp_created.team_id);

    assert_int_equal(decode_event(fx, stage_changed_min, MPB_COUNT(stage_changed_min), NULL, NULL),
                     0);
    assert_false(fx->ev.u.opp_stage_changed.has_amount);
    assert_int_equal(fx->ev.u.opp_stage_changed.amount_minor, 0);
    assert_unset(fx->ev.u.opp_stage_changed.forecast_category);

    assert_int_equal(decode_event(fx, opp_closed_min, MPB_COUNT(opp_closed_min), NULL, NULL), 0);
    assert_int_equal(fx->ev.u.opp_closed.outcome, RS_OUTCOME_WON);
    assert_false(fx->ev.u.opp_closed.has_tcv);
    assert_int_equal(fx->ev.u.opp_closed.tcv_minor, 0);
    assert_unset(fx->ev.u.opp_closed.loss_reason);
    assert_int_equal(fx->ev.u.opp_closed.close_date_ms, 1717000000000); /* the envelope's ts */
    assert_unset(fx->ev.u.opp_closed.owner_id);
    assert_false(fx->ev.u.opp_closed.has_deal_type);

    assert_int_equal(decode_event(fx, opp_reopened_min, MPB_COUNT(opp_reopened_min), NULL, NULL),
                     0);
    assert_unset(fx->ev.u.opp_reopened.reason);

    assert_int_equal(
        decode_event(fx, handoff_started_min, MPB_COUNT(handoff_started_min), NULL, NULL), 0);
    assert_false(fx->ev.u.handoff.checklist_complete);
    assert_unset(fx->ev.u.handoff.ae_id);
    assert_unset(fx->ev.u.handoff.csm_id);
    assert_unset(fx->ev.u.handoff.segment);

    assert_int_equal(decode_event(fx, milestone_min, MPB_COUNT(milestone_min), NULL, NULL), 0);
    assert_int_equal(fx->ev.u.onboarding_milestone.milestone, RS_MS_KICKOFF);
    assert_unset(fx->ev.u.onboarding_milestone.status);
    assert_int_equal(decode_event(fx, resumed_min, MPB_COUNT(resumed_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.onboarding_pause.reason);

    assert_int_equal(decode_event(fx, rep_onboarded_min, MPB_COUNT(rep_onboarded_min), NULL, NULL),
                     0);
    assert_int_equal(fx->ev.u.rep_onboarded.start_date_ms, 1704067200000); /* ts */
    assert_unset(fx->ev.u.rep_onboarded.role);
    assert_unset(fx->ev.u.rep_onboarded.segment);
    assert_unset(fx->ev.u.rep_onboarded.team_id);

    assert_int_equal(decode_event(fx, quota_set_min, MPB_COUNT(quota_set_min), NULL, NULL), 0);
    assert_int_equal(fx->ev.u.rep_quota_set.ramp_n, 0); /* absent is no ramp */
    assert_int_equal(fx->ev.u.rep_quota_set.quota_minor, 1);
    assert_int_equal(
        decode_event(fx, rep_terminated_min, MPB_COUNT(rep_terminated_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.rep_terminated.reason);
}

static void test_decode_new_types_nil_optional_fields_take_their_defaults(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv nil_tcv = MPB_NIL_KV("tcv_minor");
    struct mpb_kv nil_close = MPB_NIL_KV("close_date");
    struct mpb_kv nil_deal = MPB_NIL_KV("deal_type");
    struct mpb_kv nil_amount = MPB_NIL_KV("amount_minor");
    struct mpb_kv nil_checklist = MPB_NIL_KV("checklist_complete");
    struct mpb_kv nil_start = MPB_NIL_KV("start_date");
    struct mpb_kv nil_account_id = MPB_NIL_KV("account_id");

    assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &nil_tcv), 0);
    assert_false(fx->ev.u.opp_closed.has_tcv);
    assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &nil_close), 0);
    assert_int_equal(fx->ev.u.opp_closed.close_date_ms, fx->ev.ts_ms);
    assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &nil_deal), 0);
    assert_false(fx->ev.u.opp_closed.has_deal_type);
    assert_int_equal(decode_event(fx, stage_changed, MPB_COUNT(stage_changed), NULL, &nil_amount),
                     0);
    assert_false(fx->ev.u.opp_stage_changed.has_amount);
    assert_int_equal(
        decode_event(fx, handoff_started, MPB_COUNT(handoff_started), NULL, &nil_checklist), 0);
    assert_false(fx->ev.u.handoff.checklist_complete);
    assert_int_equal(decode_event(fx, rep_onboarded, MPB_COUNT(rep_onboarded), NULL, &nil_start),
                     0);
    assert_int_equal(fx->ev.u.rep_onboarded.start_date_ms, fx->ev.ts_ms);
    assert_int_equal(decode_event(fx, paused, MPB_COUNT(paused), NULL, &nil_account_id), 0);
    assert_str(fx->ev.u.onboarding_pause.account_id, "acc-9");
}

static void test_decode_close_and_start_date_take_the_forms_of_ts(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv close_ext = MPB_TS("close_date", 1716940800, 250000000);
    struct mpb_kv start_ext = MPB_TS("start_date", 1705276800, 0);
    struct mpb_kv negative = MPB_I("close_date", -1);
    struct mpb_kv zero = MPB_I("start_date", 0);
    struct mpb_kv text = MPB_S("close_date", "2024-05-29");
    struct mpb_kv micros = MPB_I("start_date", INT64_C(1705276800000000));

    assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &close_ext), 0);
    assert_int_equal(fx->ev.u.opp_closed.close_date_ms, 1716940800250);
    assert_int_equal(decode_event(fx, rep_onboarded, MPB_COUNT(rep_onboarded), NULL, &start_ext),
                     0);
    assert_int_equal(fx->ev.u.rep_onboarded.start_date_ms, 1705276800000);

    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &negative);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'close_date': expected a positive int64 (ms), got -1");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, rep_onboarded, MPB_COUNT(rep_onboarded), NULL, &zero);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'start_date': expected a positive int64 (ms), got 0");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &text);
    expect_fault(fx, RS_FAULT_WRONG_TYPE,
                 "field 'close_date': expected an integer (ms) or a timestamp, got str");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, rep_onboarded, MPB_COUNT(rep_onboarded), NULL, &micros);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'start_date': 1705276800000000 ms is after the");
}

static void test_decode_new_enums_accept_every_value(void **state)
{
    struct fx *fx = *state;
    static const char *const stages[] = { "MQL", "SAL", "SQL" };
    static const char *const deal_types[] = { "new", "expansion", "renewal" };
    static const char *const outcomes[] = { "won", "lost" };
    static const char *const milestones[] = { "kickoff", "configured", "integrated", "go_live",
                                              "first_value" };

    for (size_t i = 0; i < MPB_COUNT(stages); i++) {
        struct mpb_kv kv = MPB_S("stage", stages[i]);

        assert_int_equal(decode_event(fx, qualified, MPB_COUNT(qualified), NULL, &kv), 0);
        assert_string_equal(rs_qual_stage_name(fx->ev.u.lead_qualified.stage), stages[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(deal_types); i++) {
        struct mpb_kv kv = MPB_S("deal_type", deal_types[i]);

        assert_int_equal(decode_event(fx, opp_created, MPB_COUNT(opp_created), NULL, &kv), 0);
        assert_string_equal(rs_deal_type_name(fx->ev.u.opp_created.deal_type), deal_types[i]);
        assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &kv), 0);
        assert_true(fx->ev.u.opp_closed.has_deal_type);
        assert_string_equal(rs_deal_type_name(fx->ev.u.opp_closed.deal_type), deal_types[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(outcomes); i++) {
        struct mpb_kv kv = MPB_S("outcome", outcomes[i]);

        assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &kv), 0);
        assert_string_equal(rs_outcome_name(fx->ev.u.opp_closed.outcome), outcomes[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(milestones); i++) {
        struct mpb_kv kv = MPB_S("milestone", milestones[i]);

        assert_int_equal(decode_event(fx, milestone, MPB_COUNT(milestone), NULL, &kv), 0);
        assert_string_equal(rs_milestone_name(fx->ev.u.onboarding_milestone.milestone),
                            milestones[i]);
    }
}

static void test_decode_new_enum_out_of_range_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv lower = MPB_S("stage", "mql");
    struct mpb_kv deal = MPB_S("deal_type", "upsell");
    struct mpb_kv outcome = MPB_S("outcome", "tie");
    struct mpb_kv ms = MPB_S("milestone", "done");
    struct mpb_kv stage_int = MPB_I("stage", 1);

    mpb_event(&fx->b, qualified, MPB_COUNT(qualified), NULL, &lower);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'stage': expected one of MQL, SAL, SQL, got 'mql'");
    assert_string_equal(fx->err.msg, "field 'stage': expected one of MQL, SAL, SQL, got 'mql'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_created, MPB_COUNT(opp_created), NULL, &deal);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'deal_type': expected one of new, expansion, renewal, got 'upsell'");
    /* Optional on opportunity.closed, but a value that is there must be one of them. */
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &deal);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'deal_type': expected one of new, expansion");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &outcome);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'outcome': expected one of won, lost, got 'tie'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, milestone, MPB_COUNT(milestone), NULL, &ms);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'milestone': expected one of kickoff, configured, integrated, go_live, "
                 "first_value, got 'done'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, qualified, MPB_COUNT(qualified), NULL, &stage_int);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'stage': expected a string, got int");
}

static void test_decode_bad_currency_is_bad_value(void **state)
{
    struct fx *fx = *state;
    static const char *const bad[] = {
        "usd", "Usd", "US", "USDX", "U5D", "", "U D", "\xe2\x82\xac"
    };
    const struct event_case with_currency[] = {
        { "opportunity.created", opp_created, MPB_COUNT(opp_created) },
        { "opportunity.closed", opp_closed, MPB_COUNT(opp_closed) },
        { "rep.quota_set", quota_set, MPB_COUNT(quota_set) },
        { "subscription.started", sub_started, MPB_COUNT(sub_started) },
        { "invoice.refunded", invoice_refunded, MPB_COUNT(invoice_refunded) },
        { "spend.recorded", spend, MPB_COUNT(spend) },
        { "forecast.submitted", forecast, MPB_COUNT(forecast) },
        { "financials.reported", financials, MPB_COUNT(financials) },
        { "fx.rate", fx_rate, MPB_COUNT(fx_rate) },
    };
    struct mpb_kv number = MPB_I("currency", 840);

    for (size_t c = 0; c < MPB_COUNT(with_currency); c++) {
        for (size_t i = 0; i < MPB_COUNT(bad); i++) {
            struct mpb_kv kv = MPB_S("currency", bad[i]);

            mpb_reset(&fx->b);
            mpb_event(&fx->b, with_currency[c].kvs, with_currency[c].n, NULL, &kv);
            expect_fault(fx, RS_FAULT_BAD_VALUE,
                         "field 'currency': expected an ISO 4217 code of three upper-case "
                         "letters, got '");
        }
        mpb_reset(&fx->b);
        mpb_event(&fx->b, with_currency[c].kvs, with_currency[c].n, NULL, &number);
        expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'currency': expected a string, got int");
    }
    mpb_reset(&fx->b);
    {
        struct mpb_kv kv = MPB_S("currency", "usd");

        mpb_event(&fx->b, opp_created, MPB_COUNT(opp_created), NULL, &kv);
        expect_fault(fx, RS_FAULT_BAD_VALUE, "upper-case letters, got 'usd'");
    }
}

static void test_decode_negative_amount_or_empty_quota_is_bad_value(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv amount = MPB_I("amount_minor", -1);
    struct mpb_kv tcv = MPB_I("tcv_minor", -100);
    struct mpb_kv quota_zero = MPB_I("quota_minor", 0);
    struct mpb_kv quota_negative = MPB_I("quota_minor", -5);
    struct mpb_kv amount_float = MPB_F("amount_minor", 12.5);
    struct mpb_kv amount_huge = MPB_U("amount_minor", (uint64_t)INT64_MAX + 1);
    struct mpb_kv amount_max = MPB_U("amount_minor", INT64_MAX);

    mpb_event(&fx->b, opp_created, MPB_COUNT(opp_created), NULL, &amount);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'amount_minor': expected a non-negative integer, got -1");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &amount);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'amount_minor': expected a non-negative integer");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, stage_changed, MPB_COUNT(stage_changed), NULL, &amount);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'amount_minor': expected a non-negative integer");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &tcv);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'tcv_minor': expected a non-negative integer, got -100");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &quota_zero);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'quota_minor': expected a positive integer, got 0");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &quota_negative);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'quota_minor': expected a positive integer, got -5");
    /* Money is never a float (METRICS.md §1.1), not even one with a whole value. */
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_created, MPB_COUNT(opp_created), NULL, &amount_float);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'amount_minor': expected an integer, got float");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, opp_closed, MPB_COUNT(opp_closed), NULL, &amount_huge);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'amount_minor': 9223372036854775808 does not fit int64");
    assert_int_equal(decode_event(fx, opp_closed, MPB_COUNT(opp_closed), NULL, &amount_max), 0);
    assert_int_equal(fx->ev.u.opp_closed.amount_minor, INT64_MAX);
}

static void test_decode_bad_period_is_bad_value(void **state)
{
    struct fx *fx = *state;
    static const char *const bad[] = {
        "2024-13", "2024-00", "2024-5",   "2024/05",  "2024-05-01", "24-05",   "",
        "1969-12", "0000-01", " 2024-05", "2024-05 ", "2024-1a",    "abcd-ef", "20240-5",
    };
    struct mpb_kv number = MPB_I("period", 202405);

    for (size_t i = 0; i < MPB_COUNT(bad); i++) {
        struct mpb_kv kv = MPB_S("period", bad[i]);
        char msg[128];

        (void)snprintf(msg, sizeof(msg),
                       "field 'period': expected a month as YYYY-MM from 1970-01 to 9999-12, got "
                       "'%s'",
                       bad[i]);
        mpb_reset(&fx->b);
        mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &kv);
        expect_fault(fx, RS_FAULT_BAD_VALUE, msg);
    }
    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &number);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'period': expected a string, got int");
}

static void test_decode_period_start_is_the_first_instant_of_the_month_utc(void **state)
{
    struct fx *fx = *state;
    /* Expected values from `date -u -d 2024-03-01 +%s` and so on, times 1000. */
    static const struct {
        const char *period;
        int64_t start_ms;
    } cases[] = {
        { "1970-01", 0 },
        { "1970-02", INT64_C(2678400000) },
        { "2023-03", INT64_C(1677628800000) }, /* not a leap year */
        { "2024-02", INT64_C(1706745600000) },
        { "2024-03", INT64_C(1709251200000) }, /* after 29 February */
        { "2024-12", INT64_C(1733011200000) },
        { "2000-03", INT64_C(951868800000) },  /* a century that is a leap year */
        { "2100-03", INT64_C(4107542400000) }, /* one that is not */
        { "9999-12", INT64_C(253399622400000) },
    };

    for (size_t i = 0; i < MPB_COUNT(cases); i++) {
        struct mpb_kv kv = MPB_S("period", cases[i].period);

        assert_int_equal(decode_event(fx, quota_set, MPB_COUNT(quota_set), NULL, &kv), 0);
        assert_str(fx->ev.u.rep_quota_set.period, cases[i].period);
        if (fx->ev.u.rep_quota_set.period_start_ms != cases[i].start_ms) {
            print_error("%s: got %lld, want %lld\n", cases[i].period,
                        (long long)fx->ev.u.rep_quota_set.period_start_ms,
                        (long long)cases[i].start_ms);
            fail();
        }
    }
}

static void test_decode_ramp_schedule_size_and_values_are_checked(void **state)
{
    struct fx *fx = *state;
    static const int64_t longest[RS_RAMP_MAX] = {
        0,   10,  20,  30,  40,  50,  60,  70,   80,   90,   100,  200,
        300, 400, 500, 600, 700, 800, 900, 1000, 1000, 1000, 1000, 1000,
    };
    static const int64_t too_long[RS_RAMP_MAX + 1] = { 0 };
    static const int64_t too_high[] = { 50, 1001 };
    static const int64_t negative[] = { -1 };
    struct mpb_kv ok = MPB_INTS_KV("ramp_schedule", longest);
    struct mpb_kv long_kv = MPB_INTS_KV("ramp_schedule", too_long);
    struct mpb_kv high_kv = MPB_INTS_KV("ramp_schedule", too_high);
    struct mpb_kv negative_kv = MPB_INTS_KV("ramp_schedule", negative);
    struct mpb_kv map_kv = { "ramp_schedule", { .kind = MPB_EMPTY_MAP } };

    assert_int_equal(decode_event(fx, quota_set, MPB_COUNT(quota_set), NULL, &ok), 0);
    assert_int_equal(fx->ev.u.rep_quota_set.ramp_n, RS_RAMP_MAX);
    for (size_t i = 0; i < RS_RAMP_MAX; i++) {
        assert_int_equal(fx->ev.u.rep_quota_set.ramp_pct[i], longest[i]);
    }

    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &long_kv);
    expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'ramp_schedule': 25 months, at most 24 allowed");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &high_kv);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'ramp_schedule': item 1 is 1001, expected 0..1000 (percent)");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &negative_kv);
    expect_fault(fx, RS_FAULT_BAD_VALUE,
                 "field 'ramp_schedule': item 0 is -1, expected 0..1000 (percent)");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, quota_set, MPB_COUNT(quota_set), NULL, &map_kv);
    expect_fault(fx, RS_FAULT_WRONG_TYPE,
                 "field 'ramp_schedule': expected an array of integers, got map");

    /* Items of another type: a string, then a float. */
    for (int kind = 0; kind < 2; kind++) {
        mpb_reset(&fx->b);
        mpb_map(&fx->b, MPB_COUNT(quota_set));
        for (size_t i = 0; i < MPB_COUNT(quota_set); i++) {
            mpb_str(&fx->b, quota_set[i].key);
            if (strcmp(quota_set[i].key, "ramp_schedule") != 0) {
                mpb_val(&fx->b, &quota_set[i].val);
                continue;
            }
            mpb_array(&fx->b, 3);
            mpb_int(&fx->b, 25);
            mpb_int(&fx->b, 50);
            if (kind == 0) {
                mpb_str(&fx->b, "75");
            } else {
                put_float(&fx->b, 75.0);
            }
        }
        expect_fault(fx, RS_FAULT_WRONG_TYPE,
                     kind == 0 ? "field 'ramp_schedule': item 2: expected an integer, got str"
                               : "field 'ramp_schedule': item 2: expected an integer, got float");
    }
}

/* The account_id of the types where it defaults to the envelope's account. */
static struct rs_str account_id_of(const struct rs_event *ev)
{
    switch (ev->type) {
    case RS_EV_LEAD_CONVERTED:
        return ev->u.lead_converted.account_id;
    case RS_EV_OPP_CREATED:
        return ev->u.opp_created.account_id;
    case RS_EV_HANDOFF_STARTED:
    case RS_EV_HANDOFF_COMPLETED:
        return ev->u.handoff.account_id;
    case RS_EV_ONBOARDING_MILESTONE:
        return ev->u.onboarding_milestone.account_id;
    case RS_EV_ONBOARDING_PAUSED:
    case RS_EV_ONBOARDING_RESUMED:
        return ev->u.onboarding_pause.account_id;
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED:
        return ev->u.subscription.account_id;
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_REFUNDED:
    case RS_EV_INVOICE_PAYMENT_FAILED:
        return ev->u.invoice.account_id;
    default:
        fail_msg("%s has no account_id", rs_event_type_name(ev->type));
    }
    return RS_STR_NULL;
}

static void test_decode_account_id_of_new_types_defaults_to_account_and_must_match(void **state)
{
    struct fx *fx = *state;
    const struct event_case with_account[] = {
        { "opportunity.created", opp_created, MPB_COUNT(opp_created) },
        { "handoff.started", handoff_started, MPB_COUNT(handoff_started) },
        { "handoff.completed", handoff_completed, MPB_COUNT(handoff_completed) },
        { "onboarding.milestone", milestone, MPB_COUNT(milestone) },
        { "onboarding.paused", paused, MPB_COUNT(paused) },
        { "onboarding.resumed", resumed, MPB_COUNT(resumed) },
        { "subscription.started", sub_started, MPB_COUNT(sub_started) },
        { "subscription.renewed", sub_renewed, MPB_COUNT(sub_renewed) },
        { "subscription.expanded", sub_expanded, MPB_COUNT(sub_expanded) },
        { "subscription.contracted", sub_contracted, MPB_COUNT(sub_contracted) },
        { "subscription.churned", sub_churned, MPB_COUNT(sub_churned) },
        { "subscription.reactivated", sub_reactivated, MPB_COUNT(sub_reactivated) },
        { "invoice.paid", invoice_paid, MPB_COUNT(invoice_paid) },
        { "invoice.refunded", invoice_refunded, MPB_COUNT(invoice_refunded) },
        { "invoice.payment_failed", invoice_failed, MPB_COUNT(invoice_failed) },
    };
    struct mpb_kv other = MPB_S("account_id", "acc-10");
    struct mpb_kv empty = MPB_S("account_id", "");

    for (size_t c = 0; c < MPB_COUNT(with_account); c++) {
        const struct event_case *ec = &with_account[c];
        char msg[128];

        assert_int_equal(decode_event(fx, ec->kvs, ec->n, "account_id", NULL), 0);
        assert_str(account_id_of(&fx->ev), "acc-9");
        assert_ptr_equal(account_id_of(&fx->ev).ptr, fx->ev.account.ptr);

        mpb_reset(&fx->b);
        mpb_event(&fx->b, ec->kvs, ec->n, NULL, &other);
        expect_fault(fx, RS_FAULT_BAD_VALUE,
                     "field 'account_id': 'acc-10' differs from 'account' 'acc-9'");

        mpb_reset(&fx->b);
        mpb_event(&fx->b, ec->kvs, ec->n, NULL, &empty);
        expect_fault(fx, RS_FAULT_BAD_VALUE, "field 'account_id': expected a non-empty string");

        /* Only account_id, no envelope account: taken as it is. */
        assert_int_equal(decode_event(fx, ec->kvs, ec->n, "account", NULL), 0);
        assert_unset(fx->ev.account);
        assert_str(account_id_of(&fx->ev), "acc-9");

        /* Neither: the account is missing (the min cases drop account_id alone). */
        (void)snprintf(msg, sizeof(msg), "missing required field 'account_id' for type '%s'",
                       ec->type);
        mpb_reset(&fx->b);
        {
            struct mpb_kv nil = MPB_NIL_KV("account");

            mpb_event(&fx->b, ec->kvs, ec->n, "account_id", &nil);
        }
        expect_fault(fx, RS_FAULT_MISSING_FIELD, msg);
    }
}

static void test_decode_checklist_and_pause_reason_are_required_only_where_they_decide(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv checklist_str = MPB_S("checklist_complete", "yes");

    /* A completion without the checklist cannot stop SLA-04; a start may say nothing. */
    mpb_event(&fx->b, handoff_completed, MPB_COUNT(handoff_completed), "checklist_complete", NULL);
    expect_fault(fx, RS_FAULT_MISSING_FIELD,
                 "missing required field 'checklist_complete' for type 'handoff.completed'");
    assert_int_equal(
        decode_event(fx, handoff_started, MPB_COUNT(handoff_started), "checklist_complete", NULL),
        0);
    assert_false(fx->ev.u.handoff.checklist_complete);
    mpb_reset(&fx->b);
    mpb_event(&fx->b, handoff_started, MPB_COUNT(handoff_started), NULL, &checklist_str);
    expect_fault(fx, RS_FAULT_WRONG_TYPE, "field 'checklist_complete': expected a bool, got str");

    mpb_reset(&fx->b);
    mpb_event(&fx->b, paused, MPB_COUNT(paused), "reason", NULL);
    expect_fault(fx, RS_FAULT_MISSING_FIELD,
                 "missing required field 'reason' for type 'onboarding.paused'");
    assert_int_equal(decode_event(fx, resumed, MPB_COUNT(resumed), "reason", NULL), 0);
    assert_unset(fx->ev.u.onboarding_pause.reason);
}

static void test_decode_new_identifiers_must_be_non_empty_and_short(void **state)
{
    struct fx *fx = *state;
    static char too_long[RS_EVENT_ID_MAX + 2];
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        const char *key;
    } ids[] = {
        { assigned, MPB_COUNT(assigned), "owner_id" },
        { opp_created, MPB_COUNT(opp_created), "opportunity_id" },
        { opp_created, MPB_COUNT(opp_created), "lead_id" },
        { opp_created, MPB_COUNT(opp_created), "team_id" },
        { opp_closed, MPB_COUNT(opp_closed), "owner_id" },
        { handoff_started, MPB_COUNT(handoff_started), "ae_id" },
        { handoff_completed, MPB_COUNT(handoff_completed), "csm_id" },
        { rep_onboarded, MPB_COUNT(rep_onboarded), "rep_id" },
        { rep_onboarded, MPB_COUNT(rep_onboarded), "team_id" },
        { quota_set, MPB_COUNT(quota_set), "rep_id" },
        { rep_terminated, MPB_COUNT(rep_terminated), "rep_id" },
    };

    memset(too_long, 'x', RS_EVENT_ID_MAX + 1);
    too_long[RS_EVENT_ID_MAX + 1] = '\0';
    for (size_t i = 0; i < MPB_COUNT(ids); i++) {
        struct mpb_kv empty = MPB_S(ids[i].key, "");
        struct mpb_kv longer = MPB_S(ids[i].key, too_long);
        char msg[128];

        (void)snprintf(msg, sizeof(msg), "field '%s': expected a non-empty string, got ''",
                       ids[i].key);
        mpb_reset(&fx->b);
        mpb_event(&fx->b, ids[i].kvs, ids[i].n, NULL, &empty);
        expect_fault(fx, RS_FAULT_BAD_VALUE, msg);
        (void)snprintf(msg, sizeof(msg),
                       "field '%s': an identifier of 257 bytes, at most 256 allowed", ids[i].key);
        mpb_reset(&fx->b);
        mpb_event(&fx->b, ids[i].kvs, ids[i].n, NULL, &longer);
        expect_fault(fx, RS_FAULT_BAD_VALUE, msg);
    }
}

static void test_decode_new_free_text_fields_may_be_empty(void **state)
{
    struct fx *fx = *state;
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        const char *key;
    } texts[] = {
        { assigned, MPB_COUNT(assigned), "queue" },
        { qualified, MPB_COUNT(qualified), "qualified_by" },
        { opp_created, MPB_COUNT(opp_created), "stage" },
        { stage_changed, MPB_COUNT(stage_changed), "from_stage" },
        { stage_changed, MPB_COUNT(stage_changed), "forecast_category" },
        { opp_closed, MPB_COUNT(opp_closed), "loss_reason" },
        { paused, MPB_COUNT(paused), "reason" },
        { milestone, MPB_COUNT(milestone), "status" },
        { rep_onboarded, MPB_COUNT(rep_onboarded), "role" },
    };

    for (size_t i = 0; i < MPB_COUNT(texts); i++) {
        struct mpb_kv empty = MPB_S(texts[i].key, "");

        if (decode_event(fx, texts[i].kvs, texts[i].n, NULL, &empty) != 0) {
            print_error("'%s' = '': %s\n", texts[i].key, fx->err.msg);
            fail();
        }
    }
}

/* ---- the revenue events (issue 6) ---- */

/* A day's first instant, UTC: `date -u -d 2024-03-01 +%s` times 1000. */
#define MS_2024_03_01 INT64_C(1709251200000)
#define MS_2024_04_01 INT64_C(1711929600000)
#define MS_2025_03_01 INT64_C(1740787200000)

/* Decode kvs with `replace`; fail with the message unless it decodes. */
static void expect_decodes(struct fx *fx, const struct mpb_kv *kvs, size_t n,
                           const struct mpb_kv *replace)
{
    mpb_reset(&fx->b);
    mpb_event(&fx->b, kvs, n, NULL, replace);
    expect_ok(fx);
}

/* Decode kvs with `replace` and require `fault` and a message containing `part`. */
static void expect_rejects(struct fx *fx, const struct mpb_kv *kvs, size_t n,
                           const struct mpb_kv *replace, enum rs_event_fault fault,
                           const char *part)
{
    mpb_reset(&fx->b);
    mpb_event(&fx->b, kvs, n, NULL, replace);
    expect_fault(fx, fault, part);
}

static void test_decode_revenue_events_fill_every_field(void **state)
{
    struct fx *fx = *state;
    const struct rs_subscription *sub = &fx->ev.u.subscription;
    const struct rs_invoice *inv = &fx->ev.u.invoice;
    const struct rs_spend *sp = &fx->ev.u.spend;
    const struct rs_forecast *fc = &fx->ev.u.forecast;
    const struct rs_financials *fin = &fx->ev.u.financials;
    const struct rs_fx_rate *rate = &fx->ev.u.fx_rate;

    assert_int_equal(decode_event(fx, sub_expanded, MPB_COUNT(sub_expanded), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_SUB_EXPANDED);
    assert_str(sub->subscription_id, "sub_77");
    assert_str(sub->account_id, "acc-9");
    assert_str(sub->plan, "pro");
    assert_int_equal(sub->quantity, 10);
    assert_int_equal(sub->interval, RS_BILL_YEAR);
    assert_true(sub->has_mrr_after);
    assert_int_equal(sub->mrr_after_minor, 100000);
    assert_true(sub->has_mrr_before);
    assert_int_equal(sub->mrr_before_minor, 80000);
    assert_true(sub->has_price);
    assert_int_equal(sub->price_minor, 120000);
    assert_int_equal(sub->discount_minor, 5000);
    assert_int_equal(sub->discount_duration, RS_DISCOUNT_FINITE);
    assert_str(sub->currency, "USD");
    assert_int_equal(sub->service_period_start_ms, MS_2024_03_01); /* from "2024-03-01" */
    assert_true(sub->has_period_end);
    assert_int_equal(sub->service_period_end_ms, MS_2025_03_01); /* from a timestamp ext */
    assert_int_equal(sub->status, RS_SUB_PAST_DUE);
    assert_true(sub->has_cancel_at);
    assert_int_equal(sub->cancel_at_ms, MS_2025_03_01);

    assert_int_equal(decode_event(fx, invoice_refunded, MPB_COUNT(invoice_refunded), NULL, NULL),
                     0);
    assert_int_equal(fx->ev.type, RS_EV_INVOICE_REFUNDED);
    assert_str(inv->invoice_id, "in_501");
    assert_str(inv->account_id, "acc-9");
    assert_str(inv->subscription_id, "sub_77");
    assert_int_equal(inv->amount_minor, 1200000);
    assert_str(inv->currency, "USD");
    assert_int_equal(inv->refund_type, RS_REFUND_PARTIAL);
    assert_str(inv->reason, "card_declined");

    assert_int_equal(decode_event(fx, spend, MPB_COUNT(spend), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_SPEND_RECORDED);
    assert_str(sp->spend_id, "gl-17");
    assert_int_equal(sp->period_start_ms, MS_2024_03_01);
    assert_int_equal(sp->period_end_ms, MS_2024_04_01);
    assert_int_equal(sp->function, RS_FN_MARKETING);
    assert_int_equal(sp->category, RS_SPEND_PROGRAMS);
    assert_int_equal(sp->allocation, RS_ALLOC_EXPANSION);
    assert_int_equal(sp->amount_minor, -2500); /* a credit */
    assert_str(sp->currency, "EUR");

    assert_int_equal(decode_event(fx, forecast, MPB_COUNT(forecast), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_FORECAST_SUBMITTED);
    assert_str(fc->forecast_id, "fc-9");
    assert_int_equal(fc->scope, RS_SCOPE_TEAM);
    assert_str(fc->scope_id, "team_emea");
    assert_str(fc->period.text, "2024-Q2");
    assert_int_equal(fc->period.year, 2024);
    assert_int_equal(fc->period.first_month, 4);
    assert_int_equal(fc->period.months, 3);
    assert_int_equal(fc->measure, RS_MEASURE_ENDING_ARR);
    assert_int_equal(fc->category, RS_FC_BEST_CASE);
    assert_int_equal(fc->amount_minor, -300);
    assert_str(fc->currency, "USD");
    assert_int_equal(fc->as_of_ms, INT64_C(1711843200500));

    assert_int_equal(decode_event(fx, financials, MPB_COUNT(financials), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_FINANCIALS_REPORTED);
    assert_str(fin->period.text, "2024");
    assert_int_equal(fin->period.year, 2024);
    assert_int_equal(fin->period.first_month, 1);
    assert_int_equal(fin->period.months, 12);
    assert_int_equal(fin->revenue_minor, 1250000000);
    assert_str(fin->currency, "USD");
    assert_true(fin->has_gross_margin);
    assert_true(fin->gross_margin_pct == 78.5);
    assert_true(fin->has_ebitda);
    assert_int_equal(fin->ebitda_minor, -1200);
    assert_true(fin->has_fcf);
    assert_int_equal(fin->free_cash_flow_minor, 400);
    assert_true(fin->has_operating_income);
    assert_int_equal(fin->operating_income_minor, -2000);

    assert_int_equal(decode_event(fx, fx_rate, MPB_COUNT(fx_rate), NULL, NULL), 0);
    assert_int_equal(fx->ev.type, RS_EV_FX_RATE);
    assert_str(rate->currency, "EUR");
    assert_true(rate->rate == 1.0842);
    assert_int_equal(rate->date_ms, MS_2024_03_01); /* 12:00:00.123 cut to its day */
}

static void test_decode_revenue_events_absent_optional_fields_take_their_defaults(void **state)
{
    struct fx *fx = *state;
    const struct rs_subscription *sub = &fx->ev.u.subscription;
    const struct rs_financials *fin = &fx->ev.u.financials;
    struct mpb_kv price = MPB_I("price_minor", 4900);

    assert_int_equal(decode_event(fx, sub_started_min, MPB_COUNT(sub_started_min), NULL, NULL), 0);
    assert_unset(sub->plan);
    assert_int_equal(sub->quantity, 1);
    assert_true(sub->has_mrr_after);
    assert_int_equal(sub->mrr_after_minor, 0); /* zero MRR is an MRR (a free plan) */
    assert_false(sub->has_mrr_before);
    assert_false(sub->has_price);
    assert_int_equal(sub->discount_minor, 0);
    assert_int_equal(sub->discount_duration, RS_DISCOUNT_FOREVER);
    assert_int_equal(sub->service_period_start_ms, fx->ev.ts_ms);
    assert_false(sub->has_period_end);
    assert_false(sub->has_cancel_at);

    /* price_minor instead of mrr_after_minor is enough. */
    mpb_reset(&fx->b);
    mpb_event(&fx->b, sub_started_min, MPB_COUNT(sub_started_min), "mrr_after_minor", &price);
    expect_ok(fx);
    assert_false(sub->has_mrr_after);
    assert_true(sub->has_price);
    assert_int_equal(sub->price_minor, 4900);

    assert_int_equal(decode_event(fx, invoice_paid_min, MPB_COUNT(invoice_paid_min), NULL, NULL),
                     0);
    assert_unset(fx->ev.u.invoice.subscription_id);
    assert_unset(fx->ev.u.invoice.reason);
    assert_int_equal(fx->ev.u.invoice.refund_type, RS_REFUND_NONE);

    assert_int_equal(decode_event(fx, spend_min, MPB_COUNT(spend_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.spend.spend_id);
    assert_int_equal(fx->ev.u.spend.period_start_ms, MS_2024_03_01);
    assert_int_equal(fx->ev.u.spend.period_end_ms, MS_2024_04_01);

    assert_int_equal(decode_event(fx, forecast_min, MPB_COUNT(forecast_min), NULL, NULL), 0);
    assert_unset(fx->ev.u.forecast.scope_id); /* the company needs none */
    assert_int_equal(fx->ev.u.forecast.as_of_ms, fx->ev.ts_ms);
    assert_int_equal(fx->ev.u.forecast.period.first_month, 5);
    assert_int_equal(fx->ev.u.forecast.period.months, 1);

    assert_int_equal(decode_event(fx, financials_min, MPB_COUNT(financials_min), NULL, NULL), 0);
    assert_false(fin->has_gross_margin);
    assert_false(fin->has_ebitda);
    assert_false(fin->has_fcf);
    assert_false(fin->has_operating_income);
    assert_int_equal(fin->period.first_month, 1);
    assert_int_equal(fin->period.months, 3);

    assert_int_equal(decode_event(fx, fx_rate_min, MPB_COUNT(fx_rate_min), NULL, NULL), 0);
    assert_true(fx->ev.u.fx_rate.rate == 2.0); /* an integer rate */
    assert_int_equal(fx->ev.u.fx_rate.date_ms, MS_2024_03_01);

    /* nil is absent for the optional ones. */
    {
        struct mpb_kv nil_start = MPB_NIL_KV("service_period_start");
        struct mpb_kv nil_quantity = MPB_NIL_KV("quantity");
        struct mpb_kv nil_as_of = MPB_NIL_KV("as_of");
        struct mpb_kv nil_margin = MPB_NIL_KV("gross_margin_pct");

        expect_decodes(fx, sub_renewed, MPB_COUNT(sub_renewed), &nil_start);
        assert_int_equal(sub->service_period_start_ms, fx->ev.ts_ms);
        expect_decodes(fx, sub_renewed, MPB_COUNT(sub_renewed), &nil_quantity);
        assert_int_equal(sub->quantity, 1);
        expect_decodes(fx, forecast, MPB_COUNT(forecast), &nil_as_of);
        assert_int_equal(fx->ev.u.forecast.as_of_ms, fx->ev.ts_ms);
        expect_decodes(fx, financials, MPB_COUNT(financials), &nil_margin);
        assert_false(fin->has_gross_margin);
    }
}

static void test_decode_subscription_needs_mrr_after_or_price(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv nil_price = MPB_NIL_KV("price_minor");

    mpb_event(&fx->b, sub_churned_min, MPB_COUNT(sub_churned_min), "mrr_after_minor", NULL);
    expect_fault(fx, RS_FAULT_MISSING_FIELD,
                 "missing required field 'mrr_after_minor' for type 'subscription.churned'");
    mpb_reset(&fx->b);
    mpb_event(&fx->b, sub_churned_min, MPB_COUNT(sub_churned_min), "mrr_after_minor", &nil_price);
    expect_fault(fx, RS_FAULT_MISSING_FIELD, "missing required field 'mrr_after_minor'");
}

static void test_decode_invoice_refund_type_only_on_refunds(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv half = MPB_S("refund_type", "half");
    struct mpb_kv number = MPB_I("refund_type", 1);

    expect_rejects(fx, invoice_refunded, MPB_COUNT(invoice_refunded), &half, RS_FAULT_BAD_VALUE,
                   "field 'refund_type': expected one of full, partial, got 'half'");
    expect_rejects(fx, invoice_refunded, MPB_COUNT(invoice_refunded), &number, RS_FAULT_WRONG_TYPE,
                   "field 'refund_type': expected a string, got int");
    /* The other invoice types do not read it, whatever it holds. */
    expect_decodes(fx, invoice_paid, MPB_COUNT(invoice_paid), &half);
    assert_int_equal(fx->ev.u.invoice.refund_type, RS_REFUND_NONE);
    expect_decodes(fx, invoice_failed, MPB_COUNT(invoice_failed), &number);
    assert_int_equal(fx->ev.u.invoice.refund_type, RS_REFUND_NONE);
}

static void test_decode_team_and_rep_forecasts_need_scope_id(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv team = MPB_S("scope", "team");
    struct mpb_kv rep = MPB_S("scope", "rep");
    struct mpb_kv empty = MPB_S("scope_id", "");

    mpb_event(&fx->b, forecast, MPB_COUNT(forecast), "scope_id", NULL);
    expect_fault(fx, RS_FAULT_MISSING_FIELD,
                 "missing required field 'scope_id' for type 'forecast.submitted' with scope "
                 "'team'");
    expect_rejects(fx, forecast_min, MPB_COUNT(forecast_min), &rep, RS_FAULT_MISSING_FIELD,
                   "missing required field 'scope_id' for type 'forecast.submitted' with scope "
                   "'rep'");
    expect_rejects(fx, forecast_min, MPB_COUNT(forecast_min), &team, RS_FAULT_MISSING_FIELD,
                   "with scope 'team'");
    expect_rejects(fx, forecast, MPB_COUNT(forecast), &empty, RS_FAULT_BAD_VALUE,
                   "field 'scope_id': expected a non-empty string, got ''");
}

static void test_decode_revenue_enums_accept_every_value(void **state)
{
    struct fx *fx = *state;
    static const char *const intervals[] = { "day",     "week",        "month",
                                             "quarter", "semi_annual", "year" };
    static const char *const statuses[] = { "trialing", "active", "past_due", "canceled",
                                            "unpaid" };
    static const char *const durations[] = { "forever", "finite" };
    static const char *const refunds[] = { "full", "partial" };
    static const char *const functions[] = { "sales", "marketing" };
    static const char *const spend_categories[] = { "salaries", "commissions", "programs", "tools",
                                                    "other" };
    static const char *const allocations[] = { "new_logo", "expansion", "shared" };
    static const char *const scopes[] = { "company", "team", "rep" };
    static const char *const measures[] = { "net_new_arr", "bookings", "ending_arr" };
    static const char *const fc_categories[] = { "commit", "best_case", "pipeline" };
    const struct rs_subscription *sub = &fx->ev.u.subscription;

    for (size_t i = 0; i < MPB_COUNT(intervals); i++) {
        struct mpb_kv kv = MPB_S("billing_interval", intervals[i]);

        expect_decodes(fx, sub_started, MPB_COUNT(sub_started), &kv);
        assert_string_equal(rs_billing_interval_name(sub->interval), intervals[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(statuses); i++) {
        struct mpb_kv kv = MPB_S("status", statuses[i]);

        expect_decodes(fx, sub_started, MPB_COUNT(sub_started), &kv);
        assert_string_equal(rs_sub_status_name(sub->status), statuses[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(durations); i++) {
        struct mpb_kv kv = MPB_S("discount_duration", durations[i]);

        expect_decodes(fx, sub_started, MPB_COUNT(sub_started), &kv);
        assert_string_equal(rs_discount_duration_name(sub->discount_duration), durations[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(refunds); i++) {
        struct mpb_kv kv = MPB_S("refund_type", refunds[i]);

        expect_decodes(fx, invoice_refunded, MPB_COUNT(invoice_refunded), &kv);
        assert_string_equal(rs_refund_type_name(fx->ev.u.invoice.refund_type), refunds[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(functions); i++) {
        struct mpb_kv kv = MPB_S("function", functions[i]);

        expect_decodes(fx, spend, MPB_COUNT(spend), &kv);
        assert_string_equal(rs_spend_function_name(fx->ev.u.spend.function), functions[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(spend_categories); i++) {
        struct mpb_kv kv = MPB_S("category", spend_categories[i]);

        expect_decodes(fx, spend, MPB_COUNT(spend), &kv);
        assert_string_equal(rs_spend_category_name(fx->ev.u.spend.category), spend_categories[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(allocations); i++) {
        struct mpb_kv kv = MPB_S("allocation", allocations[i]);

        expect_decodes(fx, spend, MPB_COUNT(spend), &kv);
        assert_string_equal(rs_spend_allocation_name(fx->ev.u.spend.allocation), allocations[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(scopes); i++) {
        struct mpb_kv kv = MPB_S("scope", scopes[i]);

        expect_decodes(fx, forecast, MPB_COUNT(forecast), &kv);
        assert_string_equal(rs_forecast_scope_name(fx->ev.u.forecast.scope), scopes[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(measures); i++) {
        struct mpb_kv kv = MPB_S("measure", measures[i]);

        expect_decodes(fx, forecast, MPB_COUNT(forecast), &kv);
        assert_string_equal(rs_forecast_measure_name(fx->ev.u.forecast.measure), measures[i]);
    }
    for (size_t i = 0; i < MPB_COUNT(fc_categories); i++) {
        struct mpb_kv kv = MPB_S("category", fc_categories[i]);

        expect_decodes(fx, forecast, MPB_COUNT(forecast), &kv);
        assert_string_equal(rs_forecast_category_name(fx->ev.u.forecast.category),
                            fc_categories[i]);
    }
}

static void test_decode_revenue_enum_out_of_range_is_bad_value(void **state)
{
    struct fx *fx = *state;
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        struct mpb_kv kv;
        const char *msg;
    } cases[] = {
        { sub_started, MPB_COUNT(sub_started), MPB_S("billing_interval", "monthly"),
          "field 'billing_interval': expected one of day, week, month, quarter, semi_annual, "
          "year, got 'monthly'" },
        { sub_started, MPB_COUNT(sub_started), MPB_S("status", "Active"),
          "field 'status': expected one of trialing, active, past_due, canceled, unpaid, got "
          "'Active'" },
        { sub_started, MPB_COUNT(sub_started), MPB_S("discount_duration", "once"),
          "field 'discount_duration': expected one of forever, finite, got 'once'" },
        { spend, MPB_COUNT(spend), MPB_S("function", "cs"),
          "field 'function': expected one of sales, marketing, got 'cs'" },
        { spend, MPB_COUNT(spend), MPB_S("category", "commit"),
          "field 'category': expected one of salaries, commissions, programs, tools, other, got "
          "'commit'" },
        { spend, MPB_COUNT(spend), MPB_S("allocation", "new"),
          "field 'allocation': expected one of new_logo, expansion, shared, got 'new'" },
        { forecast, MPB_COUNT(forecast), MPB_S("scope", "region"),
          "field 'scope': expected one of company, team, rep, got 'region'" },
        { forecast, MPB_COUNT(forecast), MPB_S("measure", "arr"),
          "field 'measure': expected one of net_new_arr, bookings, ending_arr, got 'arr'" },
        { forecast, MPB_COUNT(forecast), MPB_S("category", "tools"),
          "field 'category': expected one of commit, best_case, pipeline, got 'tools'" },
        { sub_started, MPB_COUNT(sub_started), MPB_I("discount_duration", 0),
          "field 'discount_duration': expected a string, got int" },
    };

    for (size_t i = 0; i < MPB_COUNT(cases); i++) {
        expect_rejects(fx, cases[i].kvs, cases[i].n, &cases[i].kv,
                       cases[i].kv.val.kind == MPB_STR ? RS_FAULT_BAD_VALUE : RS_FAULT_WRONG_TYPE,
                       cases[i].msg);
    }
}

static void test_decode_revenue_money_sign_rules(void **state)
{
    struct fx *fx = *state;
    /* Where money is a balance or a payment, negative is bad_value. */
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        const char *key;
    } non_negative[] = {
        { sub_started, MPB_COUNT(sub_started), "mrr_after_minor" },
        { sub_started, MPB_COUNT(sub_started), "mrr_before_minor" },
        { sub_started, MPB_COUNT(sub_started), "price_minor" },
        { sub_started, MPB_COUNT(sub_started), "discount_minor" },
        { sub_started, MPB_COUNT(sub_started), "quantity" },
        { invoice_paid, MPB_COUNT(invoice_paid), "amount_minor" },
        { invoice_refunded, MPB_COUNT(invoice_refunded), "amount_minor" },
        { invoice_failed, MPB_COUNT(invoice_failed), "amount_minor" },
    };
    /* Where it is a flow or a result, any sign. */
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        const char *key;
    } any_sign[] = {
        { spend, MPB_COUNT(spend), "amount_minor" },
        { forecast, MPB_COUNT(forecast), "amount_minor" },
        { financials, MPB_COUNT(financials), "revenue_minor" },
        { financials, MPB_COUNT(financials), "ebitda_minor" },
        { financials, MPB_COUNT(financials), "free_cash_flow_minor" },
        { financials, MPB_COUNT(financials), "operating_income_minor" },
    };

    for (size_t i = 0; i < MPB_COUNT(non_negative); i++) {
        struct mpb_kv kv = MPB_I(non_negative[i].key, -1);
        struct mpb_kv text = MPB_S(non_negative[i].key, "1");
        char msg[128];

        (void)snprintf(msg, sizeof(msg), "field '%s': expected a non-negative integer, got -1",
                       non_negative[i].key);
        expect_rejects(fx, non_negative[i].kvs, non_negative[i].n, &kv, RS_FAULT_BAD_VALUE, msg);
        (void)snprintf(msg, sizeof(msg), "field '%s': expected an integer, got str",
                       non_negative[i].key);
        expect_rejects(fx, non_negative[i].kvs, non_negative[i].n, &text, RS_FAULT_WRONG_TYPE, msg);
    }
    for (size_t i = 0; i < MPB_COUNT(any_sign); i++) {
        struct mpb_kv kv = MPB_I(any_sign[i].key, INT64_MIN);
        struct mpb_kv real = MPB_F(any_sign[i].key, -1.5);
        struct mpb_kv huge = MPB_U(any_sign[i].key, (uint64_t)INT64_MAX + 1);
        char msg[128];

        expect_decodes(fx, any_sign[i].kvs, any_sign[i].n, &kv);
        (void)snprintf(msg, sizeof(msg), "field '%s': expected an integer, got float",
                       any_sign[i].key);
        expect_rejects(fx, any_sign[i].kvs, any_sign[i].n, &real, RS_FAULT_WRONG_TYPE, msg);
        (void)snprintf(msg, sizeof(msg), "field '%s': 9223372036854775808 does not fit int64",
                       any_sign[i].key);
        expect_rejects(fx, any_sign[i].kvs, any_sign[i].n, &huge, RS_FAULT_BAD_VALUE, msg);
    }
    {
        struct mpb_kv kv = MPB_I("amount_minor", INT64_MIN);

        expect_decodes(fx, spend, MPB_COUNT(spend), &kv);
        assert_int_equal(fx->ev.u.spend.amount_minor, INT64_MIN);
    }
}

static void test_decode_revenue_times_take_ts_forms_and_dates_where_documented(void **state)
{
    struct fx *fx = *state;
    static const char *const bad_dates[] = {
        "2024-02-30", "2023-02-29", "2024-13-01",  "2024-00-10",           "2024-04-31",
        "1969-12-31", "2024-3-01",  "2024/03/01",  "2024-03-01T00:00:00Z", "20240301",
        "",           "2024-03-0a", " 2024-03-01",
    };
    /* Date strings where the field is a day. */
    static const char *const date_keys[] = { "service_period_start", "service_period_end" };
    struct mpb_kv leap = MPB_S("date", "2024-02-29");
    struct mpb_kv epoch = MPB_S("period_start", "1970-01-01");
    struct mpb_kv last = MPB_S("date", "9999-12-31");
    struct mpb_kv ext = MPB_TS("date", 1709294400, 999000000);
    struct mpb_kv cancel_text = MPB_S("cancel_at", "2025-03-01");
    struct mpb_kv as_of_text = MPB_S("as_of", "2024-03-31");
    struct mpb_kv negative = MPB_I("period_start", -1);
    struct mpb_kv zero = MPB_I("date", 0);
    struct mpb_kv micros = MPB_I("cancel_at", INT64_C(1740787200000000));

    expect_decodes(fx, fx_rate, MPB_COUNT(fx_rate), &leap);
    assert_int_equal(fx->ev.u.fx_rate.date_ms, INT64_C(1709164800000));
    expect_decodes(fx, fx_rate, MPB_COUNT(fx_rate), &last);
    assert_int_equal(fx->ev.u.fx_rate.date_ms, INT64_C(253402214400000));
    expect_decodes(fx, fx_rate, MPB_COUNT(fx_rate), &ext);
    assert_int_equal(fx->ev.u.fx_rate.date_ms, MS_2024_03_01);
    expect_decodes(fx, spend_min, MPB_COUNT(spend_min), &epoch);
    assert_int_equal(fx->ev.u.spend.period_start_ms, 0);

    for (size_t i = 0; i < MPB_COUNT(bad_dates); i++) {
        struct mpb_kv kv = MPB_S("date", bad_dates[i]);
        char msg[160];

        (void)snprintf(msg, sizeof(msg),
                       "field 'date': expected a date as YYYY-MM-DD from 1970-01-01 to "
                       "9999-12-31, got '%s'",
                       bad_dates[i]);
        expect_rejects(fx, fx_rate, MPB_COUNT(fx_rate), &kv, RS_FAULT_BAD_VALUE, msg);
    }
    for (size_t i = 0; i < MPB_COUNT(date_keys); i++) {
        struct mpb_kv kv = MPB_S(date_keys[i], "2024-02-30");
        struct mpb_kv ok = MPB_S(date_keys[i], "2024-03-02");
        char msg[128];

        (void)snprintf(msg, sizeof(msg), "field '%s': expected a date as YYYY-MM-DD", date_keys[i]);
        expect_rejects(fx, sub_started, MPB_COUNT(sub_started), &kv, RS_FAULT_BAD_VALUE, msg);
        expect_decodes(fx, sub_started, MPB_COUNT(sub_started), &ok);
    }
    {
        struct mpb_kv kv = MPB_S("period_end", "2024-04-31");

        expect_rejects(fx, spend, MPB_COUNT(spend), &kv, RS_FAULT_BAD_VALUE,
                       "field 'period_end': expected a date as YYYY-MM-DD");
    }

    /* cancel_at and as_of are instants, not days: only the forms of ts. */
    expect_rejects(fx, sub_started, MPB_COUNT(sub_started), &cancel_text, RS_FAULT_WRONG_TYPE,
                   "field 'cancel_at': expected an integer (ms) or a timestamp, got str");
    expect_rejects(fx, forecast, MPB_COUNT(forecast), &as_of_text, RS_FAULT_WRONG_TYPE,
                   "field 'as_of': expected an integer (ms) or a timestamp, got str");
    expect_rejects(fx, spend, MPB_COUNT(spend), &negative, RS_FAULT_BAD_VALUE,
                   "field 'period_start': expected a positive int64 (ms), got -1");
    expect_rejects(fx, fx_rate, MPB_COUNT(fx_rate), &zero, RS_FAULT_BAD_VALUE,
                   "field 'date': expected a positive int64 (ms), got 0");
    expect_rejects(fx, sub_started, MPB_COUNT(sub_started), &micros, RS_FAULT_BAD_VALUE,
                   "field 'cancel_at': 1740787200000000 ms is after the year 9999");
}

static void test_decode_revenue_period_end_must_follow_its_start(void **state)
{
    struct fx *fx = *state;
    struct mpb_kv sub_same = MPB_S("service_period_end", "2024-03-01");
    struct mpb_kv sub_before = MPB_I("service_period_end", MS_2024_03_01 - 1);
    struct mpb_kv sub_after = MPB_I("service_period_end", MS_2024_03_01 + 1);
    struct mpb_kv spend_same = MPB_S("period_end", "2024-03-01");
    struct mpb_kv spend_before = MPB_S("period_end", "2024-02-01");
    /* Without service_period_start the end is checked against ts, its default. */
    struct mpb_kv end_at_ts = MPB_I("service_period_end", 1709251200000);

    expect_rejects(fx, sub_started, MPB_COUNT(sub_started), &sub_same, RS_FAULT_BAD_VALUE,
                   "field 'service_period_end': 1709251200000 ms is not after "
                   "'service_period_start' 1709251200000 ms");
    expect_rejects(fx, sub_started, MPB_COUNT(sub_started), &sub_before, RS_FAULT_BAD_VALUE,
                   "field 'service_period_end': 1709251199999 ms is not after");
    expect_decodes(fx, sub_started, MPB_COUNT(sub_started), &sub_after);
    expect_rejects(fx, spend, MPB_COUNT(spend), &spend_same, RS_FAULT_BAD_VALUE,
                   "field 'period_end': 1709251200000 ms is not after 'period_start' "
                   "1709251200000 ms");
    expect_rejects(fx, spend, MPB_COUNT(spend), &spend_before, RS_FAULT_BAD_VALUE,
                   "field 'period_end': 1706745600000 ms is not after 'period_start'");
    expect_rejects(fx, sub_started_min, MPB_COUNT(sub_started_min), &end_at_ts, RS_FAULT_BAD_VALUE,
                   "field 'service_period_end': 1709251200000 ms is not after");
}

static void test_decode_report_periods_by_type(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *text;
        unsigned year, first_month, months;
    } good[] = {
        { "2024-01", 2024, 1, 1 }, { "2024-12", 2024, 12, 1 }, { "1970-Q1", 1970, 1, 3 },
        { "2024-Q2", 2024, 4, 3 }, { "2024-Q3", 2024, 7, 3 },  { "9999-Q4", 9999, 10, 3 },
    };
    static const char *const bad[] = {
        "2024-Q0", "2024-Q5", "2024-q1", "2024-Q", "2024-Q12", "1969-Q4", "2024-13", "2024-00",
        "2024-1",  "24",      "",        "2024 ",  "Q1-2024",  "2024-H1", "1969",    "20245",
    };

    for (size_t i = 0; i < MPB_COUNT(good); i++) {
        struct mpb_kv kv = MPB_S("period", good[i].text);
        const struct rs_period *periods[2] = { &fx->ev.u.forecast.period,
                                               &fx->ev.u.financials.period };

        for (int t = 0; t < 2; t++) {
            if (t == 0) {
                expect_decodes(fx, forecast, MPB_COUNT(forecast), &kv);
            } else {
                expect_decodes(fx, financials, MPB_COUNT(financials), &kv);
            }
            assert_str(periods[t]->text, good[i].text);
            assert_int_equal(periods[t]->year, good[i].year);
            assert_int_equal(periods[t]->first_month, good[i].first_month);
            assert_int_equal(periods[t]->months, good[i].months);
        }
    }
    for (size_t i = 0; i < MPB_COUNT(bad); i++) {
        struct mpb_kv kv = MPB_S("period", bad[i]);
        char msg[160];

        (void)snprintf(msg, sizeof(msg),
                       "field 'period': expected a month (YYYY-MM) or a quarter (YYYY-Qn) from "
                       "1970 to 9999, got '%s'",
                       bad[i]);
        expect_rejects(fx, forecast, MPB_COUNT(forecast), &kv, RS_FAULT_BAD_VALUE, msg);
        (void)snprintf(msg, sizeof(msg),
                       "field 'period': expected a month (YYYY-MM), a quarter (YYYY-Qn) or a year "
                       "(YYYY) from 1970 to 9999, got '%s'",
                       bad[i]);
        expect_rejects(fx, financials, MPB_COUNT(financials), &kv, RS_FAULT_BAD_VALUE, msg);
    }
    /* A year is a financial period but not a forecast period. */
    {
        struct mpb_kv year = MPB_S("period", "2024");
        struct mpb_kv number = MPB_I("period", 2024);

        expect_rejects(fx, forecast, MPB_COUNT(forecast), &year, RS_FAULT_BAD_VALUE, "got '2024'");
        expect_decodes(fx, financials, MPB_COUNT(financials), &year);
        expect_rejects(fx, financials, MPB_COUNT(financials), &number, RS_FAULT_WRONG_TYPE,
                       "field 'period': expected a string, got int");
    }
}

static void test_decode_fx_rate_and_gross_margin_are_finite_numbers_in_range(void **state)
{
    struct fx *fx = *state;
    const struct {
        struct mpb_kv kv;
        const char *msg;
    } bad_rates[] = {
        { MPB_F("rate", 0.0), "field 'rate': expected a positive number, got 0" },
        { MPB_I("rate", 0), "field 'rate': expected a positive number, got 0" },
        { MPB_F("rate", -1.25), "field 'rate': expected a positive number, got -1.25" },
        { MPB_I("rate", -3), "field 'rate': expected a positive number, got -3" },
        { MPB_F("rate", NAN), "field 'rate': expected a finite number, got nan" },
        { MPB_F("rate", INFINITY), "field 'rate': expected a finite number, got inf" },
        { MPB_F("rate", -INFINITY), "field 'rate': expected a finite number, got -inf" },
    };
    const struct {
        struct mpb_kv kv;
        const char *msg;
    } bad_margins[] = {
        { MPB_F("gross_margin_pct", 100.5),
          "field 'gross_margin_pct': expected a percentage from -100 to 100, got 100.5" },
        { MPB_I("gross_margin_pct", -101),
          "field 'gross_margin_pct': expected a percentage from -100 to 100, got -101" },
        { MPB_F("gross_margin_pct", NAN),
          "field 'gross_margin_pct': expected a finite number, got nan" },
    };
    struct mpb_kv tiny = MPB_F("rate", 1e-300);
    struct mpb_kv margin_top = MPB_I("gross_margin_pct", 100);
    struct mpb_kv margin_bottom = MPB_F("gross_margin_pct", -100.0);
    struct mpb_kv margin_text = MPB_S("gross_margin_pct", "78%");
    struct mpb_kv rate_bool = MPB_B("rate", true);

    for (size_t i = 0; i < MPB_COUNT(bad_rates); i++) {
        expect_rejects(fx, fx_rate, MPB_COUNT(fx_rate), &bad_rates[i].kv, RS_FAULT_BAD_VALUE,
                       bad_rates[i].msg);
    }
    for (size_t i = 0; i < MPB_COUNT(bad_margins); i++) {
        expect_rejects(fx, financials, MPB_COUNT(financials), &bad_margins[i].kv,
                       RS_FAULT_BAD_VALUE, bad_margins[i].msg);
    }
    expect_decodes(fx, fx_rate, MPB_COUNT(fx_rate), &tiny);
    assert_true(fx->ev.u.fx_rate.rate == 1e-300);
    expect_decodes(fx, financials, MPB_COUNT(financials), &margin_top);
    assert_true(fx->ev.u.financials.gross_margin_pct == 100.0);
    expect_decodes(fx, financials, MPB_COUNT(financials), &margin_bottom);
    assert_true(fx->ev.u.financials.gross_margin_pct == -100.0);
    expect_rejects(fx, financials, MPB_COUNT(financials), &margin_text, RS_FAULT_WRONG_TYPE,
                   "field 'gross_margin_pct': expected a number, got str");
    expect_rejects(fx, fx_rate, MPB_COUNT(fx_rate), &rate_bool, RS_FAULT_WRONG_TYPE,
                   "field 'rate': expected a number, got bool");
}

static void test_decode_revenue_identifiers_must_be_non_empty(void **state)
{
    struct fx *fx = *state;
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        const char *key;
    } ids[] = {
        { sub_started, MPB_COUNT(sub_started), "subscription_id" },
        { invoice_paid, MPB_COUNT(invoice_paid), "invoice_id" },
        { invoice_paid, MPB_COUNT(invoice_paid), "subscription_id" },
        { spend, MPB_COUNT(spend), "spend_id" },
        { forecast, MPB_COUNT(forecast), "forecast_id" },
    };
    const struct {
        const struct mpb_kv *kvs;
        size_t n;
        const char *key;
    } texts[] = {
        { sub_started, MPB_COUNT(sub_started), "plan" },
        { invoice_refunded, MPB_COUNT(invoice_refunded), "reason" },
    };

    for (size_t i = 0; i < MPB_COUNT(ids); i++) {
        struct mpb_kv empty = MPB_S(ids[i].key, "");
        char msg[128];

        (void)snprintf(msg, sizeof(msg), "field '%s': expected a non-empty string, got ''",
                       ids[i].key);
        expect_rejects(fx, ids[i].kvs, ids[i].n, &empty, RS_FAULT_BAD_VALUE, msg);
    }
    for (size_t i = 0; i < MPB_COUNT(texts); i++) {
        struct mpb_kv empty = MPB_S(texts[i].key, "");

        expect_decodes(fx, texts[i].kvs, texts[i].n, &empty);
    }
}

/* ---- size ---- */

static void test_decode_payload_over_max_bytes_is_too_large(void **state)
{
    struct fx *fx = *state;
    struct rs_event_decoder small;
    size_t len;
    char msg[96];

    mpb_event(&fx->b, created, MPB_COUNT(created), NULL, NULL);
    len = mpb_len(&fx->b);

    rs_event_decoder_init(&small, len);
    assert_int_equal(rs_event_decode(&small, mpb_data(&fx->b), len, &fx->ev, &fx->fault, &fx->err),
                     0);
    rs_event_decoder_release(&small);

    rs_event_decoder_init(&small, len - 1);
    assert_int_equal(rs_event_decode(&small, mpb_data(&fx->b), len, &fx->ev, &fx->fault, &fx->err),
                     RS_EDECODE);
    assert_int_equal(fx->fault, RS_FAULT_TOO_LARGE);
    (void)snprintf(msg, sizeof(msg), "payload of %zu bytes exceeds the limit of %zu", len, len - 1);
    assert_string_equal(fx->err.msg, msg);

    /* The size is checked first: even garbage is too_large, not invalid_msgpack. */
    assert_int_equal(rs_event_decode(&small, "\xc1\xc1\xc1", 3, &fx->ev, &fx->fault, &fx->err),
                     RS_EDECODE);
    assert_int_equal(fx->fault, RS_FAULT_MSGPACK);
    mpb_reset(&fx->b);
    for (size_t i = 0; i < len; i++) {
        mpb_raw(&fx->b, "\xc1", 1);
    }
    assert_int_equal(rs_event_decode(&small, mpb_data(&fx->b), len, &fx->ev, &fx->fault, &fx->err),
                     RS_EDECODE);
    assert_int_equal(fx->fault, RS_FAULT_TOO_LARGE);
    rs_event_decoder_release(&small);
    rs_event_decoder_release(&small); /* a second release is harmless */
    rs_event_decoder_release(NULL);
}
/* ---- names ---- */

static void test_name_functions_name_every_value_and_null_outside(void **state)
{
    static const char *const types[] = {
        "lead.created",
        "lead.touched",
        "lead.disqualified",
        "lead.converted",
        "lead.merged",
        "lead.assigned",
        "lead.qualified",
        "lead.recycled",
        "lead.reopened",
        "opportunity.created",
        "opportunity.stage_changed",
        "opportunity.closed",
        "opportunity.reopened",
        "handoff.started",
        "handoff.completed",
        "onboarding.milestone",
        "onboarding.paused",
        "onboarding.resumed",
        "rep.onboarded",
        "rep.quota_set",
        "rep.terminated",
        "subscription.started",
        "subscription.renewed",
        "subscription.expanded",
        "subscription.contracted",
        "subscription.churned",
        "subscription.reactivated",
        "invoice.paid",
        "invoice.refunded",
        "invoice.payment_failed",
        "spend.recorded",
        "forecast.submitted",
        "financials.reported",
        "fx.rate",
    };
    static const char *const stages[] = { "MQL", "SAL", "SQL" };
    static const char *const deal_types[] = { "new", "expansion", "renewal" };
    static const char *const milestones[] = { "kickoff", "configured", "integrated", "go_live",
                                              "first_value" };
    static const char *const faults[] = { "none",          "invalid_msgpack", "not_a_map",
                                          "missing_field", "wrong_type",      "bad_value",
                                          "unknown_type",  "too_large" };
    static const char *const kinds[] = { "sla.warning",  "sla.breached",  "sla.escalated",
                                         "sla.critical", "sla.recovered", "sla.retracted" };

    (void)state;
    assert_int_equal(MPB_COUNT(types), RS_EV__COUNT);
    for (int i = 0; i < RS_EV__COUNT; i++) {
        assert_string_equal(rs_event_type_name((enum rs_event_type)i), types[i]);
    }
    assert_null(rs_event_type_name(RS_EV__COUNT));
    assert_null(rs_event_type_name((enum rs_event_type) - 1));

    assert_int_equal(MPB_COUNT(faults), RS_FAULT__COUNT);
    for (int i = 0; i < RS_FAULT__COUNT; i++) {
        assert_string_equal(rs_event_fault_name((enum rs_event_fault)i), faults[i]);
    }
    assert_null(rs_event_fault_name(RS_FAULT__COUNT));

    assert_int_equal(MPB_COUNT(kinds), RS_ALERT__COUNT);
    for (int i = 0; i < RS_ALERT__COUNT; i++) {
        assert_string_equal(rs_alert_kind_name((enum rs_alert_kind)i), kinds[i]);
    }
    assert_null(rs_alert_kind_name(RS_ALERT__COUNT));

    assert_string_equal(rs_intent_tier_name(RS_TIER_HIGH), "high");
    assert_string_equal(rs_intent_tier_name(RS_TIER_MQL), "mql");
    assert_string_equal(rs_intent_tier_name(RS_TIER_LOW), "low");
    assert_null(rs_intent_tier_name(RS_TIER__COUNT));
    assert_string_equal(rs_actor_type_name(RS_ACTOR_AUTOMATION), "automation");
    assert_null(rs_actor_type_name((enum rs_actor_type)2));
    assert_string_equal(rs_direction_name(RS_DIR_OUTBOUND), "outbound");
    assert_null(rs_direction_name((enum rs_direction)2));
    assert_string_equal(rs_touch_channel_name(RS_CH_SOCIAL), "social");
    assert_null(rs_touch_channel_name((enum rs_touch_channel)6));

    assert_int_equal(MPB_COUNT(stages), RS_QUAL__COUNT);
    for (int i = 0; i < RS_QUAL__COUNT; i++) {
        assert_string_equal(rs_qual_stage_name((enum rs_qual_stage)i), stages[i]);
    }
    assert_null(rs_qual_stage_name(RS_QUAL__COUNT));
    assert_int_equal(MPB_COUNT(deal_types), RS_DEAL__COUNT);
    for (int i = 0; i < RS_DEAL__COUNT; i++) {
        assert_string_equal(rs_deal_type_name((enum rs_deal_type)i), deal_types[i]);
    }
    assert_null(rs_deal_type_name(RS_DEAL__COUNT));
    assert_string_equal(rs_outcome_name(RS_OUTCOME_WON), "won");
    assert_string_equal(rs_outcome_name(RS_OUTCOME_LOST), "lost");
    assert_null(rs_outcome_name((enum rs_outcome)2));
    assert_int_equal(MPB_COUNT(milestones), RS_MS__COUNT);
    for (int i = 0; i < RS_MS__COUNT; i++) {
        assert_string_equal(rs_milestone_name((enum rs_milestone)i), milestones[i]);
    }
    assert_null(rs_milestone_name(RS_MS__COUNT));

    assert_string_equal(rs_billing_interval_name(RS_BILL_SEMI_ANNUAL), "semi_annual");
    assert_null(rs_billing_interval_name(RS_BILL__COUNT));
    assert_string_equal(rs_sub_status_name(RS_SUB_PAST_DUE), "past_due");
    assert_null(rs_sub_status_name(RS_SUB__COUNT));
    assert_string_equal(rs_discount_duration_name(RS_DISCOUNT_FOREVER), "forever");
    assert_null(rs_discount_duration_name((enum rs_discount_duration)2));
    assert_null(rs_refund_type_name(RS_REFUND_NONE)); /* not a wire value */
    assert_string_equal(rs_refund_type_name(RS_REFUND_FULL), "full");
    assert_string_equal(rs_refund_type_name(RS_REFUND_PARTIAL), "partial");
    assert_null(rs_refund_type_name((enum rs_refund_type)3));
    assert_string_equal(rs_spend_function_name(RS_FN_SALES), "sales");
    assert_null(rs_spend_function_name((enum rs_spend_function)2));
    assert_string_equal(rs_spend_category_name(RS_SPEND_OTHER), "other");
    assert_null(rs_spend_category_name((enum rs_spend_category)5));
    assert_string_equal(rs_spend_allocation_name(RS_ALLOC_NEW_LOGO), "new_logo");
    assert_null(rs_spend_allocation_name((enum rs_spend_allocation)3));
    assert_string_equal(rs_forecast_scope_name(RS_SCOPE_REP), "rep");
    assert_null(rs_forecast_scope_name((enum rs_forecast_scope)3));
    assert_string_equal(rs_forecast_measure_name(RS_MEASURE_NET_NEW_ARR), "net_new_arr");
    assert_null(rs_forecast_measure_name((enum rs_forecast_measure)3));
    assert_string_equal(rs_forecast_category_name(RS_FC_BEST_CASE), "best_case");
    assert_null(rs_forecast_category_name((enum rs_forecast_category)3));
}

/* ---- rs_buf ---- */

static void test_buf_append_grows_and_reset_keeps_the_memory(void **state)
{
    struct rs_buf buf;
    char big[10000];
    char *data;

    (void)state;
    rs_buf_init(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
    rs_buf_append(&buf, NULL, 0);
    assert_int_equal(buf.len, 0);

    rs_buf_append(&buf, "abc", 3);
    memset(big, 'x', sizeof(big));
    rs_buf_append(&buf, big, sizeof(big));
    assert_int_equal(buf.len, 3 + sizeof(big));
    assert_true(buf.cap >= buf.len);
    assert_memory_equal(buf.data, "abcxxx", 6);
    assert_int_equal(buf.data[buf.len - 1], 'x');

    data = buf.data;
    rs_buf_reset(&buf);
    assert_int_equal(buf.len, 0);
    assert_ptr_equal(buf.data, data);
    rs_buf_append(&buf, "z", 1);
    assert_int_equal(buf.len, 1);
    assert_int_equal(buf.data[0], 'z');

    rs_buf_release(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.cap, 0);
    rs_buf_release(&buf);
    rs_buf_release(NULL);
}

/* ---- rs_alert_encode ---- */

static const char sample_alert_id[] =
    "9f2c4e8a1b3d5f7091a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5";
static const char sample_retracts_id[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static struct rs_alert sample_alert(enum rs_alert_kind kind)
{
    struct rs_alert a = {
        .kind = kind,
        .sla_type = "SLA-01_speed_to_lead",
        .level = "L1_breach",
        .status = "breached",
        .entity_type = "lead",
        .entity_id = { "L-889", 5 },
        .attempt_n = 1,
        .owner_id = { "rep_42", 6 },
        .account = { "acc-9", 5 },
        .start_event_type = "lead.created",
        .start_at_ms = 1715680680000,
        .target_at_ms = 1715680980000,
        .level_at_ms = 1715680980000,
        .evaluated_at_ms = 1715681041000,
        .threshold_ms = 300000,
        .elapsed_ms = 361000,
        .clock = "business",
        .calendar_id = "emea_sales",
        .elapsed_business_ms = 241000,
        .paused_ms = 60000,
        .intent_tier = "high",
        .channel = { "demo_request", 12 },
        .segment = { "mid_market", 10 },
        .stage = { "proposal", 8 },
    };

    memcpy(a.alert_id, sample_alert_id, sizeof(a.alert_id));
    if (kind == RS_ALERT_RETRACTED) {
        memcpy(a.retracts_id, sample_retracts_id, sizeof(a.retracts_id));
    }
    return a;
}

struct decoded {
    msgpack_zone zone;
    msgpack_object root;
    size_t off;
};

static void decode_alert(struct decoded *d, const struct rs_buf *buf, size_t off)
{
    assert_true(msgpack_zone_init(&d->zone, 4096));
    d->off = off;
    assert_true(msgpack_unpack(buf->data, buf->len, &d->off, &d->zone, &d->root) >= 0);
    assert_int_equal(d->root.type, MSGPACK_OBJECT_MAP);
}

/* The value of map[index], after checking that its key is `key`: order is part of the format. */
static const msgpack_object *at(const msgpack_object *map, uint32_t index, const char *key)
{
    const msgpack_object_kv *kv;

    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    assert_true(index < map->via.map.size);
    kv = &map->via.map.ptr[index];
    assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
    if (kv->key.via.str.size != strlen(key) || memcmp(kv->key.via.str.ptr, key, strlen(key)) != 0) {
        print_error("key %u is '%.*s', want '%s'\n", index, (int)kv->key.via.str.size,
                    kv->key.via.str.ptr, key);
        fail();
    }
    return &kv->val;
}

static void assert_mp_str(const msgpack_object *o, const char *want)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

static void assert_mp_int(const msgpack_object *o, int64_t want)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(o->via.u64, (uint64_t)want);
}

static void test_alert_encode_writes_every_key_in_order(void **state)
{
    struct rs_alert a = sample_alert(RS_ALERT_BREACHED);
    struct rs_buf buf;
    struct decoded d;
    const msgpack_object *o;

    (void)state;
    rs_buf_init(&buf);
    rs_alert_encode(&a, &buf);
    decode_alert(&d, &buf, 0);
    assert_int_equal(d.off, buf.len); /* exactly one object */
    assert_int_equal(d.root.via.map.size, 15);

    assert_mp_str(at(&d.root, 0, "type"), "sla.breached");
    assert_mp_str(at(&d.root, 1, "alert_id"), sample_alert_id);
    assert_mp_str(at(&d.root, 2, "sla_type"), "SLA-01_speed_to_lead");
    assert_mp_str(at(&d.root, 3, "level"), "L1_breach");
    assert_mp_str(at(&d.root, 4, "status"), "breached");
    o = at(&d.root, 5, "entity");
    assert_int_equal(o->via.map.size, 3);
    assert_mp_str(at(o, 0, "type"), "lead");
    assert_mp_str(at(o, 1, "id"), "L-889");
    assert_mp_int(at(o, 2, "attempt_n"), 1);
    assert_mp_str(at(&d.root, 6, "owner_id"), "rep_42");
    assert_mp_str(at(&d.root, 7, "account"), "acc-9");
    o = at(&d.root, 8, "start_event");
    assert_int_equal(o->via.map.size, 2);
    assert_mp_str(at(o, 0, "type"), "lead.created");
    assert_mp_int(at(o, 1, "occurred_at"), 1715680680000);
    assert_mp_int(at(&d.root, 9, "target_at"), 1715680980000);
    assert_mp_int(at(&d.root, 10, "level_at"), 1715680980000);
    assert_mp_int(at(&d.root, 11, "evaluated_at"), 1715681041000);
    o = at(&d.root, 12, "threshold");
    assert_int_equal(o->via.map.size, 3);
    assert_mp_int(at(o, 0, "value_ms"), 300000);
    assert_mp_str(at(o, 1, "clock"), "business");
    assert_mp_str(at(o, 2, "calendar_id"), "emea_sales");
    o = at(&d.root, 13, "elapsed");
    assert_int_equal(o->via.map.size, 3);
    assert_mp_int(at(o, 0, "wall_ms"), 361000);
    assert_mp_int(at(o, 1, "business_ms"), 241000);
    assert_mp_int(at(o, 2, "paused_ms"), 60000);
    o = at(&d.root, 14, "context");
    assert_int_equal(o->via.map.size, 4);
    assert_mp_str(at(o, 0, "intent_tier"), "high");
    assert_mp_str(at(o, 1, "channel"), "demo_request");
    assert_mp_str(at(o, 2, "segment"), "mid_market");
    assert_mp_str(at(o, 3, "stage"), "proposal");

    msgpack_zone_destroy(&d.zone);
    rs_buf_release(&buf);
}

static void test_alert_encode_writes_unset_strings_as_nil(void **state)
{
    struct rs_alert a = sample_alert(RS_ALERT_WARNING);
    struct rs_buf buf;
    struct decoded d;
    const msgpack_object *context;

    (void)state;
    a.owner_id = RS_STR_NULL;
    a.account = RS_STR_NULL;
    a.intent_tier = NULL;
    a.channel = RS_STR_NULL;
    a.segment = RS_STR_NULL;
    a.calendar_id = NULL;
    a.stage = RS_STR_NULL;
    rs_buf_init(&buf);
    rs_alert_encode(&a, &buf);
    decode_alert(&d, &buf, 0);

    assert_mp_str(at(&d.root, 0, "type"), "sla.warning");
    assert_int_equal(at(&d.root, 6, "owner_id")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(at(&d.root, 7, "account")->type, MSGPACK_OBJECT_NIL);
    context = at(&d.root, 14, "context");
    assert_int_equal(at(context, 0, "intent_tier")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(at(context, 1, "channel")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(at(context, 2, "segment")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(at(context, 3, "stage")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(at(at(&d.root, 12, "threshold"), 2, "calendar_id")->type, MSGPACK_OBJECT_NIL);

    msgpack_zone_destroy(&d.zone);
    rs_buf_release(&buf);
}

static void test_alert_encode_retracted_names_the_withdrawn_alert(void **state)
{
    struct rs_alert a = sample_alert(RS_ALERT_RETRACTED);
    struct rs_buf buf;
    struct decoded d;

    (void)state;
    a.level = "resolved";
    a.status = "met";
    rs_buf_init(&buf);
    rs_alert_encode(&a, &buf);
    decode_alert(&d, &buf, 0);

    assert_int_equal(d.root.via.map.size, 16);
    assert_mp_str(at(&d.root, 0, "type"), "sla.retracted");
    assert_mp_str(at(&d.root, 3, "level"), "resolved");
    assert_mp_str(at(&d.root, 4, "status"), "met");
    assert_mp_str(at(&d.root, 15, "retracts"), sample_retracts_id);

    msgpack_zone_destroy(&d.zone);
    rs_buf_release(&buf);
}

static void test_alert_encode_appends_and_is_deterministic(void **state)
{
    struct rs_alert a = sample_alert(RS_ALERT_RECOVERED);
    struct rs_buf buf;
    struct decoded first;
    struct decoded second;
    size_t one;

    (void)state;
    rs_buf_init(&buf);
    rs_alert_encode(&a, &buf);
    one = buf.len;
    rs_alert_encode(&a, &buf);
    assert_int_equal(buf.len, 2 * one);
    assert_memory_equal(buf.data, buf.data + one, one);

    decode_alert(&first, &buf, 0);
    assert_int_equal(first.off, one);
    decode_alert(&second, &buf, one);
    assert_int_equal(second.off, buf.len);
    assert_mp_str(at(&second.root, 0, "type"), "sla.recovered");

    msgpack_zone_destroy(&first.zone);
    msgpack_zone_destroy(&second.zone);
    rs_buf_release(&buf);
}

/* ---- rs_event_encode and rs_alert_view_decode ---- */

static bool same_str(struct rs_str a, struct rs_str b)
{
    if (!rs_str_is_set(a) || !rs_str_is_set(b)) {
        return rs_str_is_set(a) == rs_str_is_set(b);
    }
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static void assert_same_period(const struct rs_period *a, const struct rs_period *b)
{
    assert_true(same_str(a->text, b->text));
    assert_int_equal(a->year, b->year);
    assert_int_equal(a->first_month, b->first_month);
    assert_int_equal(a->months, b->months);
}

static void assert_same_event(const struct rs_event *a, const struct rs_event *b)
{
    assert_int_equal(a->type, b->type);
    assert_true(same_str(a->id, b->id));
    assert_int_equal(a->ts_ms, b->ts_ms);
    assert_true(same_str(a->account, b->account));
    assert_true(same_str(a->tenant, b->tenant));
    assert_true(same_str(a->source, b->source));
    assert_true(same_str(a->source_id, b->source_id));
    assert_int_equal(a->has_seq, b->has_seq);
    assert_int_equal(a->seq, b->seq);
    switch (a->type) {
    case RS_EV_LEAD_CREATED:
        assert_true(same_str(a->u.lead_created.lead_id, b->u.lead_created.lead_id));
        assert_true(same_str(a->u.lead_created.channel, b->u.lead_created.channel));
        assert_int_equal(a->u.lead_created.intent_tier, b->u.lead_created.intent_tier);
        assert_true(same_str(a->u.lead_created.segment, b->u.lead_created.segment));
        assert_true(same_str(a->u.lead_created.owner_id, b->u.lead_created.owner_id));
        break;
    case RS_EV_LEAD_TOUCHED:
        assert_true(same_str(a->u.lead_touched.lead_id, b->u.lead_touched.lead_id));
        assert_true(same_str(a->u.lead_touched.rep_id, b->u.lead_touched.rep_id));
        assert_int_equal(a->u.lead_touched.actor_type, b->u.lead_touched.actor_type);
        assert_int_equal(a->u.lead_touched.channel, b->u.lead_touched.channel);
        assert_int_equal(a->u.lead_touched.direction, b->u.lead_touched.direction);
        assert_int_equal(a->u.lead_touched.connected, b->u.lead_touched.connected);
        break;
    case RS_EV_LEAD_DISQUALIFIED:
        assert_true(same_str(a->u.lead_disqualified.lead_id, b->u.lead_disqualified.lead_id));
        assert_true(same_str(a->u.lead_disqualified.reason, b->u.lead_disqualified.reason));
        break;
    case RS_EV_LEAD_CONVERTED:
        assert_true(same_str(a->u.lead_converted.lead_id, b->u.lead_converted.lead_id));
        assert_true(same_str(a->u.lead_converted.account_id, b->u.lead_converted.account_id));
        assert_true(same_str(a->u.lead_converted.contact_id, b->u.lead_converted.contact_id));
        assert_true(
            same_str(a->u.lead_converted.opportunity_id, b->u.lead_converted.opportunity_id));
        break;
    case RS_EV_LEAD_MERGED:
        assert_true(same_str(a->u.lead_merged.lead_id, b->u.lead_merged.lead_id));
        assert_true(same_str(a->u.lead_merged.into_lead_id, b->u.lead_merged.into_lead_id));
        assert_true(same_str(a->u.lead_merged.reason, b->u.lead_merged.reason));
        break;
    case RS_EV_LEAD_ASSIGNED:
        assert_true(same_str(a->u.lead_assigned.lead_id, b->u.lead_assigned.lead_id));
        assert_true(same_str(a->u.lead_assigned.owner_id, b->u.lead_assigned.owner_id));
        assert_true(same_str(a->u.lead_assigned.queue, b->u.lead_assigned.queue));
        break;
    case RS_EV_LEAD_QUALIFIED:
        assert_true(same_str(a->u.lead_qualified.lead_id, b->u.lead_qualified.lead_id));
        assert_int_equal(a->u.lead_qualified.stage, b->u.lead_qualified.stage);
        assert_true(same_str(a->u.lead_qualified.qualified_by, b->u.lead_qualified.qualified_by));
        break;
    case RS_EV_LEAD_RECYCLED:
    case RS_EV_LEAD_REOPENED:
        assert_true(same_str(a->u.lead_lifecycle.lead_id, b->u.lead_lifecycle.lead_id));
        assert_true(same_str(a->u.lead_lifecycle.reason, b->u.lead_lifecycle.reason));
        break;
    case RS_EV_OPP_CREATED: {
        const struct rs_opp_created *x = &a->u.opp_created;
        const struct rs_opp_created *y = &b->u.opp_created;

        assert_true(same_str(x->opportunity_id, y->opportunity_id));
        assert_true(same_str(x->account_id, y->account_id));
        assert_true(same_str(x->lead_id, y->lead_id));
        assert_true(same_str(x->owner_id, y->owner_id));
        assert_int_equal(x->deal_type, y->deal_type);
        assert_int_equal(x->amount_minor, y->amount_minor);
        assert_true(same_str(x->currency, y->currency));
        assert_true(same_str(x->stage, y->stage));
        assert_true(same_str(x->segment, y->segment));
        assert_true(same_str(x->team_id, y->team_id));
        break;
    }
    case RS_EV_OPP_STAGE_CHANGED: {
        const struct rs_opp_stage_changed *x = &a->u.opp_stage_changed;
        const struct rs_opp_stage_changed *y = &b->u.opp_stage_changed;

        assert_true(same_str(x->opportunity_id, y->opportunity_id));
        assert_true(same_str(x->from_stage, y->from_stage));
        assert_true(same_str(x->to_stage, y->to_stage));
        assert_true(same_str(x->forecast_category, y->forecast_category));
        assert_int_equal(x->has_amount, y->has_amount);
        assert_int_equal(x->amount_minor, y->amount_minor);
        break;
    }
    case RS_EV_OPP_CLOSED: {
        const struct rs_opp_closed *x = &a->u.opp_closed;
        const struct rs_opp_closed *y = &b->u.opp_closed;

        assert_true(same_str(x->opportunity_id, y->opportunity_id));
        assert_int_equal(x->outcome, y->outcome);
        assert_int_equal(x->amount_minor, y->amount_minor);
        assert_int_equal(x->has_tcv, y->has_tcv);
        assert_int_equal(x->tcv_minor, y->tcv_minor);
        assert_true(same_str(x->currency, y->currency));
        assert_true(same_str(x->loss_reason, y->loss_reason));
        assert_int_equal(x->close_date_ms, y->close_date_ms);
        assert_true(same_str(x->owner_id, y->owner_id));
        assert_int_equal(x->has_deal_type, y->has_deal_type);
        assert_int_equal(x->deal_type, y->deal_type);
        break;
    }
    case RS_EV_OPP_REOPENED:
        assert_true(same_str(a->u.opp_reopened.opportunity_id, b->u.opp_reopened.opportunity_id));
        assert_true(same_str(a->u.opp_reopened.reason, b->u.opp_reopened.reason));
        break;
    case RS_EV_HANDOFF_STARTED:
    case RS_EV_HANDOFF_COMPLETED:
        assert_true(same_str(a->u.handoff.account_id, b->u.handoff.account_id));
        assert_true(same_str(a->u.handoff.opportunity_id, b->u.handoff.opportunity_id));
        assert_true(same_str(a->u.handoff.ae_id, b->u.handoff.ae_id));
        assert_true(same_str(a->u.handoff.csm_id, b->u.handoff.csm_id));
        assert_int_equal(a->u.handoff.checklist_complete, b->u.handoff.checklist_complete);
        assert_true(same_str(a->u.handoff.segment, b->u.handoff.segment));
        break;
    case RS_EV_ONBOARDING_MILESTONE:
        assert_true(
            same_str(a->u.onboarding_milestone.account_id, b->u.onboarding_milestone.account_id));
        assert_int_equal(a->u.onboarding_milestone.milestone, b->u.onboarding_milestone.milestone);
        assert_true(same_str(a->u.onboarding_milestone.status, b->u.onboarding_milestone.status));
        break;
    case RS_EV_ONBOARDING_PAUSED:
    case RS_EV_ONBOARDING_RESUMED:
        assert_true(same_str(a->u.onboarding_pause.account_id, b->u.onboarding_pause.account_id));
        assert_true(same_str(a->u.onboarding_pause.reason, b->u.onboarding_pause.reason));
        break;
    case RS_EV_REP_ONBOARDED:
        assert_true(same_str(a->u.rep_onboarded.rep_id, b->u.rep_onboarded.rep_id));
        assert_int_equal(a->u.rep_onboarded.start_date_ms, b->u.rep_onboarded.start_date_ms);
        assert_true(same_str(a->u.rep_onboarded.role, b->u.rep_onboarded.role));
        assert_true(same_str(a->u.rep_onboarded.segment, b->u.rep_onboarded.segment));
        assert_true(same_str(a->u.rep_onboarded.team_id, b->u.rep_onboarded.team_id));
        break;
    case RS_EV_REP_QUOTA_SET: {
        const struct rs_rep_quota_set *x = &a->u.rep_quota_set;
        const struct rs_rep_quota_set *y = &b->u.rep_quota_set;

        assert_true(same_str(x->rep_id, y->rep_id));
        assert_true(same_str(x->period, y->period));
        assert_int_equal(x->period_start_ms, y->period_start_ms);
        assert_int_equal(x->quota_minor, y->quota_minor);
        assert_true(same_str(x->currency, y->currency));
        assert_int_equal(x->ramp_n, y->ramp_n);
        assert_memory_equal(x->ramp_pct, y->ramp_pct, x->ramp_n * sizeof(x->ramp_pct[0]));
        break;
    }
    case RS_EV_REP_TERMINATED:
        assert_true(same_str(a->u.rep_terminated.rep_id, b->u.rep_terminated.rep_id));
        assert_true(same_str(a->u.rep_terminated.reason, b->u.rep_terminated.reason));
        break;
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED: {
        const struct rs_subscription *x = &a->u.subscription;
        const struct rs_subscription *y = &b->u.subscription;

        assert_true(same_str(x->subscription_id, y->subscription_id));
        assert_true(same_str(x->account_id, y->account_id));
        assert_true(same_str(x->plan, y->plan));
        assert_int_equal(x->quantity, y->quantity);
        assert_int_equal(x->interval, y->interval);
        assert_int_equal(x->has_mrr_after, y->has_mrr_after);
        assert_int_equal(x->mrr_after_minor, y->mrr_after_minor);
        assert_int_equal(x->has_mrr_before, y->has_mrr_before);
        assert_int_equal(x->mrr_before_minor, y->mrr_before_minor);
        assert_int_equal(x->has_price, y->has_price);
        assert_int_equal(x->price_minor, y->price_minor);
        assert_int_equal(x->discount_minor, y->discount_minor);
        assert_int_equal(x->discount_duration, y->discount_duration);
        assert_true(same_str(x->currency, y->currency));
        assert_int_equal(x->service_period_start_ms, y->service_period_start_ms);
        assert_int_equal(x->has_period_end, y->has_period_end);
        assert_int_equal(x->service_period_end_ms, y->service_period_end_ms);
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->has_cancel_at, y->has_cancel_at);
        assert_int_equal(x->cancel_at_ms, y->cancel_at_ms);
        break;
    }
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_REFUNDED:
    case RS_EV_INVOICE_PAYMENT_FAILED: {
        const struct rs_invoice *x = &a->u.invoice;
        const struct rs_invoice *y = &b->u.invoice;

        assert_true(same_str(x->invoice_id, y->invoice_id));
        assert_true(same_str(x->account_id, y->account_id));
        assert_true(same_str(x->subscription_id, y->subscription_id));
        assert_int_equal(x->amount_minor, y->amount_minor);
        assert_true(same_str(x->currency, y->currency));
        assert_int_equal(x->refund_type, y->refund_type);
        assert_true(same_str(x->reason, y->reason));
        break;
    }
    case RS_EV_SPEND_RECORDED: {
        const struct rs_spend *x = &a->u.spend;
        const struct rs_spend *y = &b->u.spend;

        assert_true(same_str(x->spend_id, y->spend_id));
        assert_int_equal(x->period_start_ms, y->period_start_ms);
        assert_int_equal(x->period_end_ms, y->period_end_ms);
        assert_int_equal(x->function, y->function);
        assert_int_equal(x->category, y->category);
        assert_int_equal(x->allocation, y->allocation);
        assert_int_equal(x->amount_minor, y->amount_minor);
        assert_true(same_str(x->currency, y->currency));
        break;
    }
    case RS_EV_FORECAST_SUBMITTED: {
        const struct rs_forecast *x = &a->u.forecast;
        const struct rs_forecast *y = &b->u.forecast;

        assert_true(same_str(x->forecast_id, y->forecast_id));
        assert_int_equal(x->scope, y->scope);
        assert_true(same_str(x->scope_id, y->scope_id));
        assert_same_period(&x->period, &y->period);
        assert_int_equal(x->measure, y->measure);
        assert_int_equal(x->category, y->category);
        assert_int_equal(x->amount_minor, y->amount_minor);
        assert_true(same_str(x->currency, y->currency));
        assert_int_equal(x->as_of_ms, y->as_of_ms);
        break;
    }
    case RS_EV_FINANCIALS_REPORTED: {
        const struct rs_financials *x = &a->u.financials;
        const struct rs_financials *y = &b->u.financials;

        assert_same_period(&x->period, &y->period);
        assert_int_equal(x->revenue_minor, y->revenue_minor);
        assert_true(same_str(x->currency, y->currency));
        assert_int_equal(x->has_gross_margin, y->has_gross_margin);
        assert_true(x->gross_margin_pct == y->gross_margin_pct);
        assert_int_equal(x->has_ebitda, y->has_ebitda);
        assert_int_equal(x->ebitda_minor, y->ebitda_minor);
        assert_int_equal(x->has_fcf, y->has_fcf);
        assert_int_equal(x->free_cash_flow_minor, y->free_cash_flow_minor);
        assert_int_equal(x->has_operating_income, y->has_operating_income);
        assert_int_equal(x->operating_income_minor, y->operating_income_minor);
        break;
    }
    case RS_EV_FX_RATE:
        assert_true(same_str(a->u.fx_rate.currency, b->u.fx_rate.currency));
        assert_true(a->u.fx_rate.rate == b->u.fx_rate.rate);
        assert_int_equal(a->u.fx_rate.date_ms, b->u.fx_rate.date_ms);
        break;
    case RS_EV__COUNT:
        fail();
    }
}

static void round_trip(struct fx *fx, struct rs_event_decoder *other, const struct event_case *c)
{
    struct rs_event again;
    struct rs_buf buf;
    struct rs_buf twice;

    if (decode_event(fx, c->kvs, c->n, NULL, NULL) != 0) {
        print_error("%s: %s\n", c->type, fx->err.msg);
        fail();
    }
    assert_string_equal(rs_event_type_name(fx->ev.type), c->type);
    rs_buf_init(&buf);
    rs_event_encode(&fx->ev, &buf);
    if (rs_event_decode(other, buf.data, buf.len, &again, &fx->fault, &fx->err) != 0) {
        print_error("%s encoded: %s\n", c->type, fx->err.msg);
        fail();
    }
    assert_same_event(&fx->ev, &again);
    /* And the encoding is a fixed point: the same event gives the same bytes. */
    rs_buf_init(&twice);
    rs_event_encode(&again, &twice);
    assert_int_equal(twice.len, buf.len);
    assert_memory_equal(twice.data, buf.data, buf.len);
    rs_buf_release(&twice);
    rs_buf_release(&buf);
}

static void test_event_encode_round_trips_every_type(void **state)
{
    struct fx *fx = *state;
    struct rs_event_decoder other; /* so that `first` stays valid by the header's rules */

    assert_int_equal(MPB_COUNT(full_cases), RS_EV__COUNT);
    assert_int_equal(MPB_COUNT(min_cases), RS_EV__COUNT);
    rs_event_decoder_init(&other, TEST_MAX_BYTES);
    for (size_t c = 0; c < MPB_COUNT(full_cases); c++) {
        assert_string_equal(full_cases[c].type, rs_event_type_name((enum rs_event_type)c));
        round_trip(fx, &other, &full_cases[c]);
        round_trip(fx, &other, &min_cases[c]);
    }
    rs_event_decoder_release(&other);
}

static void test_alert_view_decode_reads_what_alert_encode_wrote(void **state)
{
    struct fx *fx = *state;
    struct rs_alert a = sample_alert(RS_ALERT_RETRACTED);
    struct rs_alert_view view;
    struct rs_buf buf;

    rs_buf_init(&buf);
    rs_alert_encode(&a, &buf);
    assert_int_equal(rs_alert_view_decode(&fx->dec, buf.data, buf.len, &view, &fx->err), 0);
    assert_int_equal(view.kind, RS_ALERT_RETRACTED);
    assert_str(view.alert_id, sample_alert_id);
    assert_str(view.retracts_id, sample_retracts_id);
    assert_str(view.level, "L1_breach");
    assert_str(view.status, "breached");
    assert_str(view.entity_id, "L-889");
    assert_str(view.owner_id, "rep_42");
    assert_str(view.intent_tier, "high");
    assert_int_equal(view.start_at_ms, 1715680680000);
    assert_int_equal(view.target_at_ms, 1715680980000);
    assert_int_equal(view.evaluated_at_ms, 1715681041000);
    assert_int_equal(view.threshold_ms, 300000);
    assert_int_equal(view.elapsed_ms, 361000);
    assert_str(view.calendar_id, "emea_sales");
    assert_int_equal(view.elapsed_business_ms, 241000);
    assert_int_equal(view.paused_ms, 60000);
    assert_str(view.stage, "proposal");

    a = sample_alert(RS_ALERT_WARNING);
    a.calendar_id = NULL;
    a.stage = RS_STR_NULL;
    rs_buf_reset(&buf);
    rs_alert_encode(&a, &buf);
    assert_int_equal(rs_alert_view_decode(&fx->dec, buf.data, buf.len, &view, &fx->err), 0);
    assert_int_equal(view.kind, RS_ALERT_WARNING);
    assert_unset(view.retracts_id);
    assert_unset(view.calendar_id);
    assert_unset(view.stage);

    a = sample_alert(RS_ALERT_CRITICAL);
    a.level = "L3_critical";
    rs_buf_reset(&buf);
    rs_alert_encode(&a, &buf);
    assert_int_equal(rs_alert_view_decode(&fx->dec, buf.data, buf.len, &view, &fx->err), 0);
    assert_int_equal(view.kind, RS_ALERT_CRITICAL);
    assert_str(view.level, "L3_critical");
    rs_buf_release(&buf);
}

static void test_alert_view_decode_rejects_bad_input_without_allocating(void **state)
{
    struct fx *fx = *state;
    struct rs_alert_view view;
    const void *head;

    assert_int_equal(decode_event(fx, created, MPB_COUNT(created), NULL, NULL), 0);
    head = zone_head(fx);
    assert_int_equal(rs_alert_view_decode(&fx->dec, "\xc1", 1, &view, &fx->err), RS_EDECODE);
    assert_int_equal(rs_alert_view_decode(&fx->dec, "", 0, &view, &fx->err), RS_EDECODE);
    /* An alert map claiming 2^26 entries: rejected before msgpack-c reserves 3 GiB. */
    assert_int_equal(rs_alert_view_decode(&fx->dec, "\xdf\x04\x00\x00\x00", 5, &view, &fx->err),
                     RS_EDECODE);
    assert_ptr_equal(zone_head(fx), head);
    /* An event is not an alert. */
    assert_int_equal(
        rs_alert_view_decode(&fx->dec, mpb_data(&fx->b), mpb_len(&fx->b), &view, &fx->err),
        RS_EDECODE);
}

/* ---- schemas/ ---- */

/* JSON -> msgpack as `revstream send` writes it, leaving out the top-level key `drop`. */
static void json_to_msgpack(json_t *v, struct rs_buf *out, const char *drop)
{
    const char *key;
    json_t *item;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);

        if (drop != NULL && json_object_get(v, drop) != NULL) {
            n--;
        }
        rs_event_write_map(out, (uint32_t)n);
        json_object_foreach(v, key, item)
        {
            if (drop != NULL && strcmp(key, drop) == 0) {
                continue;
            }
            rs_event_write_str(out, key, strlen(key));
            json_to_msgpack(item, out, NULL);
        }
        break;
    }
    case JSON_ARRAY:
        rs_event_write_array(out, (uint32_t)json_array_size(v));
        json_array_foreach(v, i, item)
        {
            json_to_msgpack(item, out, NULL);
        }
        break;
    case JSON_STRING:
        rs_event_write_str(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        rs_event_write_int(out, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        rs_event_write_double(out, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        rs_event_write_bool(out, json_is_true(v));
        break;
    case JSON_NULL:
        rs_event_write_nil(out);
        break;
    }
}

/* Decode `example` without `drop`, or with `key` set to `value` when value is not NULL. */
static int decode_json(struct fx *fx, json_t *example, const char *drop, const char *key,
                       json_t *value)
{
    json_t *copy = json_copy(example);
    struct rs_buf buf;
    int rc;

    assert_non_null(copy);
    if (value != NULL) {
        assert_int_equal(json_object_set(copy, key, value), 0);
    }
    rs_buf_init(&buf);
    json_to_msgpack(copy, &buf, drop);
    memset(&fx->err, 0, sizeof(fx->err));
    rc = rs_event_decode(&fx->dec, buf.data, buf.len, &fx->ev, &fx->fault, &fx->err);
    rs_buf_release(&buf);
    json_decref(copy);
    return rc;
}

/* A string member of `o`, or "" when there is none, so that a comparison fails readably. */
static const char *json_str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

static bool json_array_has(json_t *array, const char *s)
{
    size_t i;
    json_t *item;

    json_array_foreach(array, i, item)
    {
        if (strcmp(json_string_value(item), s) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *load_schema(const char *file)
{
    const char *src = getenv("RS_SOURCE_DIR"); /* set by tests/CMakeLists.txt */
    char path[4096];
    json_error_t jerr;
    json_t *root;

    assert_non_null(src);
    (void)snprintf(path, sizeof(path), "%s/schemas/%s", src, file);
    root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        print_error("%s: %s (line %d)\n", path, jerr.text, jerr.line);
        fail();
    }
    return root;
}

/*
 * The schema of `type` against the decoder: its examples decode; dropping a key in `required`
 * is missing_field and dropping any other is fine; and the decoder reads every property, which
 * shows as wrong_type when the property is given an object.
 */
static void check_event_schema(struct fx *fx, const char *file, const char *type, int t)
{
    json_t *root = load_schema(file);
    json_t *props = json_object_get(root, "properties");
    json_t *required = json_object_get(root, "required");
    json_t *examples = json_object_get(root, "examples");
    json_t *example = json_array_get(examples, 0);
    char id[300];
    const char *key;
    json_t *value;
    size_t i;

    (void)snprintf(id, sizeof(id), "urn:revstream:schemas:%s", type);
    assert_string_equal(json_str_at(root, "$id"), id);
    assert_string_equal(json_str_at(root, "title"), type);
    assert_string_equal(json_str_at(json_object_get(props, "type"), "const"), type);
    assert_true(json_is_array(required));
    assert_true(json_array_size(examples) >= 1);

    json_array_foreach(examples, i, value)
    {
        if (decode_json(fx, value, NULL, NULL, NULL) != 0) {
            print_error("%s: example %zu: %s\n", file, i, fx->err.msg);
            fail();
        }
        assert_int_equal(fx->ev.type, t);
    }
    json_array_foreach(required, i, value)
    {
        const char *field = json_string_value(value);

        if (strcmp(field, "type") == 0) {
            continue;
        }
        assert_non_null(json_object_get(props, field));
        if (decode_json(fx, example, field, NULL, NULL) != RS_EDECODE ||
            fx->fault != RS_FAULT_MISSING_FIELD || strstr(fx->err.msg, field) == NULL) {
            print_error("%s: without required '%s': fault=%s msg='%s'\n", file, field,
                        rs_event_fault_name(fx->fault), fx->err.msg);
            fail();
        }
    }
    json_object_foreach(props, key, value)
    {
        json_t *object;
        char want[128];

        if (strcmp(key, "type") == 0) {
            continue;
        }
        /* The example sets every field, so that each of these checks tests something. */
        if (json_object_get(example, key) == NULL) {
            print_error("%s: the first example lacks '%s'\n", file, key);
            fail();
        }
        if (!json_array_has(required, key) && decode_json(fx, example, key, NULL, NULL) != 0) {
            print_error("%s: without optional '%s': %s\n", file, key, fx->err.msg);
            fail();
        }
        (void)snprintf(want, sizeof(want), "field '%s': expected ", key);
        object = json_object();
        if (decode_json(fx, example, NULL, key, object) != RS_EDECODE ||
            fx->fault != RS_FAULT_WRONG_TYPE || strstr(fx->err.msg, want) == NULL) {
            print_error("%s: '%s' as a map: fault=%s msg='%s'\n", file, key,
                        rs_event_fault_name(fx->fault), fx->err.msg);
            fail();
        }
        json_decref(object);
    }
    json_decref(root);
}

static void test_schemas_describe_exactly_the_types_the_decoder_knows(void **state)
{
    struct fx *fx = *state;
    const char *src = getenv("RS_SOURCE_DIR");
    bool seen[RS_EV__COUNT] = { false };
    char dir[4096];
    struct dirent *e;
    DIR *d;

    assert_non_null(src);
    (void)snprintf(dir, sizeof(dir), "%s/schemas", src);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char type[256];
        int t;

        if (len <= 5 || len - 5 >= sizeof(type) || strcmp(e->d_name + len - 5, ".json") != 0 ||
            strcmp(e->d_name, "envelope.json") == 0 || strcmp(e->d_name, "alert.json") == 0 ||
            strcmp(e->d_name, "metric.json") == 0) {
            continue; /* the envelope, and what the engine writes rather than reads */
        }
        memcpy(type, e->d_name, len - 5);
        type[len - 5] = '\0';
        for (t = 0; t < RS_EV__COUNT; t++) {
            if (strcmp(rs_event_type_name((enum rs_event_type)t), type) == 0) {
                break;
            }
        }
        if (t == RS_EV__COUNT) {
            print_error("schemas/%s names a type the decoder does not know\n", e->d_name);
            fail();
        }
        assert_false(seen[t]);
        seen[t] = true;
        check_event_schema(fx, e->d_name, type, t);
    }
    assert_int_equal(closedir(d), 0);
    for (int t = 0; t < RS_EV__COUNT; t++) {
        if (!seen[t]) {
            print_error("no schemas/%s.json\n", rs_event_type_name((enum rs_event_type)t));
            fail();
        }
    }
}

/* The value of `key` in msgpack map `map`; NULL if absent. */
static const msgpack_object *map_value(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];

        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0) {
            return &kv->val;
        }
    }
    return NULL;
}

/* The keys of msgpack map `map`, in order, against the JSON array `names`. */
static void assert_keys_are(const msgpack_object *map, json_t *names, const char *where)
{
    size_t i;
    json_t *name;

    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    if (map->via.map.size != json_array_size(names)) {
        print_error("%s: %u keys written, %zu in the schema\n", where, map->via.map.size,
                    json_array_size(names));
        fail();
    }
    json_array_foreach(names, i, name)
    {
        (void)at(map, (uint32_t)i, json_string_value(name));
    }
}

static void test_alert_schema_lists_what_alert_encode_writes(void **state)
{
    json_t *root = load_schema("alert.json");
    json_t *props = json_object_get(root, "properties");
    json_t *kinds = json_object_get(json_object_get(props, "type"), "enum");
    json_t *required = json_array();
    static const char *const sub[] = { "entity", "start_event", "threshold", "elapsed", "context" };
    struct rs_alert a = sample_alert(RS_ALERT_RETRACTED);
    struct rs_buf buf;
    struct decoded d;

    (void)state;
    assert_int_equal(json_array_size(kinds), RS_ALERT__COUNT);
    for (int k = 0; k < RS_ALERT__COUNT; k++) {
        assert_string_equal(json_string_value(json_array_get(kinds, (size_t)k)),
                            rs_alert_kind_name((enum rs_alert_kind)k));
    }

    /* A retracted alert writes every key: the required ones in order, then retracts. */
    rs_buf_init(&buf);
    rs_alert_encode(&a, &buf);
    decode_alert(&d, &buf, 0);
    assert_int_equal(json_array_extend(required, json_object_get(root, "required")), 0);
    assert_int_equal(json_array_append_new(required, json_string("retracts")), 0);
    assert_keys_are(&d.root, required, "alert");
    for (size_t i = 0; i < MPB_COUNT(sub); i++) {
        const msgpack_object *o = map_value(&d.root, sub[i]);

        assert_non_null(o);
        assert_keys_are(o, json_object_get(json_object_get(props, sub[i]), "required"), sub[i]);
    }
    msgpack_zone_destroy(&d.zone);
    rs_buf_release(&buf);
    json_decref(required);
    json_decref(root);
}

static void test_alert_schema_level_pattern_takes_every_ladder_name(void **state)
{
    json_t *root = load_schema("alert.json");
    const char *pattern =
        json_str_at(json_object_get(json_object_get(root, "properties"), "level"), "pattern");
    static const char *const good[] = { "L0_warning",  "L1_breach",     "L2_escalate",
                                        "L3_critical", "L0_warning_50", "resolved" };
    static const char *const bad[] = { "", "L1", "warning", "l1_breach", "L1_Breach", "resolved2" };
    regex_t re;

    (void)state;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    for (size_t i = 0; i < MPB_COUNT(good); i++) {
        if (regexec(&re, good[i], 0, NULL, 0) != 0) {
            print_error("'%s' does not match %s\n", good[i], pattern);
            fail();
        }
    }
    for (size_t i = 0; i < MPB_COUNT(bad); i++) {
        if (regexec(&re, bad[i], 0, NULL, 0) == 0) {
            print_error("'%s' matches %s\n", bad[i], pattern);
            fail();
        }
    }
    regfree(&re);
    json_decref(root);
}

#define FX_TEST(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_decode_lead_created_fills_every_field),
        FX_TEST(test_decode_lead_touched_fills_every_field),
        FX_TEST(test_decode_lead_disqualified_fills_every_field),
        FX_TEST(test_decode_lead_converted_fills_every_field),
        FX_TEST(test_decode_lead_merged_fills_every_field),
        FX_TEST(test_decode_absent_optional_fields_are_unset),
        FX_TEST(test_decode_nil_optional_fields_are_unset),
        FX_TEST(test_decode_ignores_unknown_keys_of_any_shape),
        FX_TEST(test_decode_duplicate_key_last_value_wins),
        FX_TEST(test_decode_every_enum_value_is_accepted),
        FX_TEST(test_decode_free_text_fields_may_be_empty),
        FX_TEST(test_decode_seq_takes_any_int64),
        FX_TEST(test_decode_ts_timestamp_ext_is_converted_to_ms),
        FX_TEST(test_decode_strings_point_into_the_payload),
        FX_TEST(test_decode_converted_account_id_defaults_to_account),
        FX_TEST(test_decode_converted_account_id_differing_from_account_is_bad_value),
        FX_TEST(test_decode_reuses_its_zone_across_many_events),
        FX_TEST(test_decode_one_pass_agrees_with_two_passes),
        FX_TEST(test_decode_large_event_grows_the_zone_only_until_the_next_decode),
        FX_TEST(test_decode_success_after_failure_clears_the_fault),
        FX_TEST(test_decode_accepts_null_fault_and_err),
        FX_TEST(test_decode_garbage_is_invalid_msgpack),
        FX_TEST(test_decode_empty_payload_is_invalid_msgpack),
        FX_TEST(test_decode_every_truncation_is_invalid_msgpack),
        FX_TEST(test_decode_truncated_message_names_the_offsets),
        FX_TEST(test_decode_trailing_bytes_are_invalid_msgpack),
        FX_TEST(test_decode_count_larger_than_payload_is_invalid_without_allocating),
        FX_TEST(test_decode_nesting_limit_matches_msgpack_c),
        FX_TEST(test_decode_top_level_other_than_map_is_not_a_map),
        FX_TEST(test_decode_non_string_key_is_not_a_map),
        FX_TEST(test_decode_missing_type_is_missing_field),
        FX_TEST(test_decode_type_not_a_string_is_wrong_type),
        FX_TEST(test_decode_unknown_type_is_unknown_type),
        FX_TEST(test_decode_message_quotes_values_safely),
        FX_TEST(test_decode_missing_id_is_missing_field),
        FX_TEST(test_decode_empty_id_is_bad_value),
        FX_TEST(test_decode_missing_ts_is_missing_field),
        FX_TEST(test_decode_ts_of_wrong_type_is_wrong_type),
        FX_TEST(test_decode_ts_not_positive_is_bad_value),
        FX_TEST(test_decode_ts_after_year_9999_is_bad_value),
        FX_TEST(test_decode_bad_timestamp_ext_is_bad_value),
        FX_TEST(test_decode_seq_of_wrong_type_or_range_is_rejected),
        FX_TEST(test_decode_optional_envelope_field_of_wrong_type_is_wrong_type),
        FX_TEST(test_decode_each_missing_required_field_is_missing_field),
        FX_TEST(test_decode_each_field_of_wrong_type_is_wrong_type),
        FX_TEST(test_decode_optional_field_of_wrong_type_is_wrong_type),
        FX_TEST(test_decode_string_as_bin_is_wrong_type),
        FX_TEST(test_decode_enum_out_of_range_is_bad_value),
        FX_TEST(test_decode_empty_required_id_is_bad_value),
        FX_TEST(test_decode_identifier_longer_than_limit_is_bad_value),
        FX_TEST(test_decode_lead_lifecycle_events_fill_every_field),
        FX_TEST(test_decode_opportunity_events_fill_every_field),
        FX_TEST(test_decode_handoff_and_onboarding_events_fill_every_field),
        FX_TEST(test_decode_rep_events_fill_every_field),
        FX_TEST(test_decode_new_types_absent_optional_fields_take_their_defaults),
        FX_TEST(test_decode_new_types_nil_optional_fields_take_their_defaults),
        FX_TEST(test_decode_close_and_start_date_take_the_forms_of_ts),
        FX_TEST(test_decode_new_enums_accept_every_value),
        FX_TEST(test_decode_new_enum_out_of_range_is_bad_value),
        FX_TEST(test_decode_bad_currency_is_bad_value),
        FX_TEST(test_decode_negative_amount_or_empty_quota_is_bad_value),
        FX_TEST(test_decode_bad_period_is_bad_value),
        FX_TEST(test_decode_period_start_is_the_first_instant_of_the_month_utc),
        FX_TEST(test_decode_ramp_schedule_size_and_values_are_checked),
        FX_TEST(test_decode_account_id_of_new_types_defaults_to_account_and_must_match),
        FX_TEST(test_decode_checklist_and_pause_reason_are_required_only_where_they_decide),
        FX_TEST(test_decode_new_identifiers_must_be_non_empty_and_short),
        FX_TEST(test_decode_new_free_text_fields_may_be_empty),
        FX_TEST(test_decode_revenue_events_fill_every_field),
        FX_TEST(test_decode_revenue_events_absent_optional_fields_take_their_defaults),
        FX_TEST(test_decode_subscription_needs_mrr_after_or_price),
        FX_TEST(test_decode_invoice_refund_type_only_on_refunds),
        FX_TEST(test_decode_team_and_rep_forecasts_need_scope_id),
        FX_TEST(test_decode_revenue_enums_accept_every_value),
        FX_TEST(test_decode_revenue_enum_out_of_range_is_bad_value),
        FX_TEST(test_decode_revenue_money_sign_rules),
        FX_TEST(test_decode_revenue_times_take_ts_forms_and_dates_where_documented),
        FX_TEST(test_decode_revenue_period_end_must_follow_its_start),
        FX_TEST(test_decode_report_periods_by_type),
        FX_TEST(test_decode_fx_rate_and_gross_margin_are_finite_numbers_in_range),
        FX_TEST(test_decode_revenue_identifiers_must_be_non_empty),
        FX_TEST(test_decode_payload_over_max_bytes_is_too_large),
        cmocka_unit_test(test_name_functions_name_every_value_and_null_outside),
        cmocka_unit_test(test_buf_append_grows_and_reset_keeps_the_memory),
        cmocka_unit_test(test_alert_encode_writes_every_key_in_order),
        cmocka_unit_test(test_alert_encode_writes_unset_strings_as_nil),
        cmocka_unit_test(test_alert_encode_retracted_names_the_withdrawn_alert),
        cmocka_unit_test(test_alert_encode_appends_and_is_deterministic),
        FX_TEST(test_event_encode_round_trips_every_type),
        FX_TEST(test_alert_view_decode_reads_what_alert_encode_wrote),
        FX_TEST(test_alert_view_decode_rejects_bad_input_without_allocating),
        FX_TEST(test_schemas_describe_exactly_the_types_the_decoder_knows),
        cmocka_unit_test(test_alert_schema_lists_what_alert_encode_writes),
        cmocka_unit_test(test_alert_schema_level_pattern_takes_every_ladder_name),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
