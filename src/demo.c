#define RS_LOG_MODULE "demo"
#include "demo.h"

#include "app.h"
#include "config.h"
#include "event.h"
#include "kafka_io.h"
#include "log.h"
#include "mem.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SIM_START_MS  INT64_C(1772409600000) /* 2026-03-02T00:00:00Z: a Monday */
#define DAY_MS        INT64_C(86400000)
#define LEAD_SPAN_MS  (8 * 3600 * INT64_C(1000)) /* leads arrive over a working day */
#define PARTITIONS    4
#define REPS          12
#define GEN_TICK_MS   2
#define DONE_CHECK_MS 50
#define GIVE_UP_MS    120000 /* a demo that has not finished in two minutes has failed */
#define FAST_AFTER_MS (30 * 3600 * INT64_C(1000)) /* past the leads' day, the clock runs faster */
#define FAST_FACTOR   25.0 /* days of pipeline in seconds: stalls, handoffs, onboarding */
#define HOUR_MS       (3600 * INT64_C(1000))
#define USD(x)        ((int64_t)(x)*100) /* minor units */

/* One generated message, encoded. */
struct gen_msg {
    int64_t ts_ms;
    char key[32];
    struct rs_buf bytes;
};

struct demo {
    const struct rs_demo_options *opts;
    uv_loop_t loop;
    struct rs_config cfg;
    char state_dir[64];
    struct rs_kafka_mock *mock;
    struct rs_app *app;
    struct rs_kafka_producer *gen;
    struct rs_kafka_consumer *tail;
    struct rs_kafka_consumer *metrics_tail;
    struct rs_event_decoder alert_decoder;
    uv_timer_t gen_timer;
    uv_timer_t done_timer;

    struct gen_msg *msgs;
    size_t n_msgs, next_msg;
    uint64_t good_events, bad_events;
    int64_t sim_end_ms;

    bool tail_assigned, metrics_assigned, sim_started, stopping, tail_closed, app_closed;
    bool metrics_closed;
    uint64_t metric_updates_seen;
    uint64_t sim_started_ns, wall_started_ns;
    uint64_t alerts_seen;
    uint64_t seen_by_kind[RS_ALERT__COUNT];
    int app_status;
    int status;
};

/* splitmix64: small, seeded, the same stream on every machine. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) / 9007199254740992.0;
}

static int64_t sim_now(void *opaque)
{
    struct demo *d = opaque;

    if (!d->sim_started) {
        return SIM_START_MS;
    }
    {
        double wall_ms = (double)(uv_hrtime() - d->sim_started_ns) / 1e6;
        double slow_ms = (double)FAST_AFTER_MS / d->opts->speed; /* wall ms of the first part */

        if (wall_ms <= slow_ms) {
            return SIM_START_MS + (int64_t)(wall_ms * d->opts->speed);
        }
        return SIM_START_MS + FAST_AFTER_MS +
               (int64_t)((wall_ms - slow_ms) * d->opts->speed * FAST_FACTOR);
    }
}

static struct gen_msg *add_msg(struct demo *d, int64_t ts_ms, const char *key)
{
    struct gen_msg *m;

    if (d->n_msgs % 1024 == 0) {
        d->msgs = rs_xrealloc(d->msgs, (d->n_msgs + 1024) * sizeof(*d->msgs));
    }
    m = &d->msgs[d->n_msgs++];
    m->ts_ms = ts_ms;
    (void)snprintf(m->key, sizeof(m->key), "%s", key);
    rs_buf_init(&m->bytes);
    return m;
}

static void add_event(struct demo *d, const struct rs_event *ev, const char *key)
{
    rs_event_encode(ev, &add_msg(d, ev->ts_ms, key)->bytes);
    d->good_events++;
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

static int
cmp_msg(const void *a, const void *b)
{
    const struct gen_msg *x = a;
    const struct gen_msg *y = b;

    return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
}

static void envelope(struct rs_event *ev, enum rs_event_type type, char *id, size_t id_size,
                     const char *lead, const char *suffix, int64_t ts_ms, const char *account)
{
    memset(ev, 0, sizeof(*ev));
    (void)snprintf(id, id_size, "ev-%s-%s", lead, suffix);
    ev->type = type;
    ev->id = S(id);
    ev->ts_ms = ts_ms;
    ev->account = account != NULL ? S(account) : RS_STR_NULL;
}

/* A subscription event's body: active, quantity 1, MRR given (already monthly). */
static void subscription(struct rs_event *ev, const char *sub, const char *account,
                         enum rs_billing_interval interval, int64_t mrr, const char *currency,
                         int64_t period_start, int64_t period_end)
{
    struct rs_subscription *su = &ev->u.subscription;

    su->subscription_id = S(sub);
    su->account_id = S(account);
    su->plan = S(mrr >= USD(2000) ? "enterprise" : (mrr >= USD(800) ? "growth" : "starter"));
    su->quantity = 1;
    su->interval = interval;
    su->mrr_after_minor = mrr;
    su->has_mrr_after = true;
    su->currency = S(currency);
    su->service_period_start_ms = period_start;
    su->service_period_end_ms = period_end;
    su->has_period_end = true;
    su->status = RS_SUB_ACTIVE;
}

/* Twelve reps: nine ramped long ago, three who started a month before the demo. */
static void generate_reps(struct demo *d)
{
    for (unsigned r = 1; r <= REPS; r++) {
        char rep[16], id[48], team[16];
        struct rs_event ev;
        bool new_rep = r > REPS - 3;
        static const uint8_t ramp[] = { 25, 50, 75 };

        (void)snprintf(rep, sizeof(rep), "rep-%02u", r);
        (void)snprintf(team, sizeof(team), "team-%c", r % 2 ? 'a' : 'b');
        /* Told to the engine just before the demo starts; the start dates lie further back. */
        envelope(&ev, RS_EV_REP_ONBOARDED, id, sizeof(id), rep, "onboarded", SIM_START_MS - 60000,
                 NULL);
        ev.u.rep_onboarded.rep_id = S(rep);
        ev.u.rep_onboarded.start_date_ms = SIM_START_MS - (new_rep ? 30 : 400) * DAY_MS;
        ev.u.rep_onboarded.role = S("ae");
        ev.u.rep_onboarded.segment = S("mid_market");
        ev.u.rep_onboarded.team_id = S(team);
        add_event(d, &ev, rep);
        envelope(&ev, RS_EV_REP_QUOTA_SET, id, sizeof(id), rep, "quota", SIM_START_MS - 30000,
                 NULL);
        ev.u.rep_quota_set.rep_id = S(rep);
        ev.u.rep_quota_set.period = S("2026-03");
        ev.u.rep_quota_set.period_start_ms = INT64_C(1772323200000); /* 2026-03-01 */
        ev.u.rep_quota_set.quota_minor = USD(40000);
        ev.u.rep_quota_set.currency = S("USD");
        if (new_rep) {
            ev.u.rep_quota_set.ramp_n = sizeof(ramp) / sizeof(ramp[0]);
            for (size_t k = 0; k < sizeof(ramp) / sizeof(ramp[0]); k++) {
                ev.u.rep_quota_set.ramp_pct[k] = ramp[k];
            }
        }
        add_event(d, &ev, rep);
    }
}

/*
 * What happens after a lead with an account is created: qualification (MQL, then SQL; high
 * intent sometimes straight to SQL), an opportunity through its stages, won or lost, and for
 * a win the handoff to customer success and onboarding. All keyed by the account, so the
 * lead, its opportunity and the onboarding share a partition. Durations are days, some of
 * them past the SLA thresholds the demo sets, so every rule fires now and then.
 */
static int64_t generate_pipeline(struct demo *d, uint64_t *s, const char *lead, const char *account,
                                 const char *owner, enum rs_intent_tier tier, int64_t created)
{
    static const char *const stages[] = { "discovery", "proposal", "negotiation" };
    static const char *const segments[] = { "smb", "mid_market", "enterprise" };
    char id[48], opp[24];
    struct rs_event ev;
    int64_t t = created, last = created;
    bool sql_direct = tier == RS_TIER_HIGH && uniform(s) < 0.3;
    int64_t amount = USD(5000 + (int64_t)(uniform(s) * 45000));
    const char *segment = segments[next_rand(s) % 3];
    bool won;

    if (tier == RS_TIER_LOW || uniform(s) > 0.7) {
        return last;
    }
    if (!sql_direct) {
        t += HOUR_MS + (int64_t)(uniform(s) * 20 * (double)HOUR_MS);
        envelope(&ev, RS_EV_LEAD_QUALIFIED, id, sizeof(id), lead, "mql", t, account);
        ev.u.lead_qualified.lead_id = S(lead);
        ev.u.lead_qualified.stage = RS_QUAL_MQL;
        ev.u.lead_qualified.qualified_by = S("marketing-automation");
        add_event(d, &ev, account);
        if (uniform(s) < 0.35) {
            return t; /* never accepted: SLA-02 breaches */
        }
        /* Accepted within about one business day, a quarter of them later. */
        t += (int64_t)((uniform(s) < 0.75 ? 0.1 + 0.8 * uniform(s) : 1.2 + 2 * uniform(s)) *
                       (double)DAY_MS);
    } else {
        t += 2 * HOUR_MS;
    }
    envelope(&ev, RS_EV_LEAD_QUALIFIED, id, sizeof(id), lead, "sql", t, account);
    ev.u.lead_qualified.lead_id = S(lead);
    ev.u.lead_qualified.stage = RS_QUAL_SQL;
    ev.u.lead_qualified.qualified_by = S(owner);
    add_event(d, &ev, account);
    last = t;
    if (uniform(s) < 0.4) {
        return last;
    }
    (void)snprintf(opp, sizeof(opp), "O-%s", lead + 2);
    t += HOUR_MS + (int64_t)(uniform(s) * (double)DAY_MS);
    envelope(&ev, RS_EV_OPP_CREATED, id, sizeof(id), lead, "opp", t, account);
    ev.u.opp_created.opportunity_id = S(opp);
    ev.u.opp_created.account_id = S(account);
    ev.u.opp_created.lead_id = S(lead);
    ev.u.opp_created.owner_id = S(owner);
    ev.u.opp_created.deal_type = RS_DEAL_NEW;
    ev.u.opp_created.amount_minor = amount;
    ev.u.opp_created.currency = S("USD");
    ev.u.opp_created.stage = S(stages[0]);
    ev.u.opp_created.segment = S(segment);
    add_event(d, &ev, account);
    for (size_t k = 1; k < sizeof(stages) / sizeof(stages[0]); k++) {
        /* A stage takes one to four days; one in six stalls past the demo's 5-day threshold. */
        t += (int64_t)((uniform(s) < 0.83 ? 1 + 3 * uniform(s) : 6 + 3 * uniform(s)) *
                       (double)DAY_MS);
        envelope(&ev, RS_EV_OPP_STAGE_CHANGED, id, sizeof(id), lead, stages[k], t, account);
        ev.u.opp_stage_changed.opportunity_id = S(opp);
        ev.u.opp_stage_changed.from_stage = S(stages[k - 1]);
        ev.u.opp_stage_changed.to_stage = S(stages[k]);
        ev.u.opp_stage_changed.forecast_category = S(k == 2 ? "commit" : "pipeline");
        ev.u.opp_stage_changed.amount_minor = amount;
        ev.u.opp_stage_changed.has_amount = true;
        add_event(d, &ev, account);
    }
    won = uniform(s) < 0.4;
    t += (int64_t)((1 + 3 * uniform(s)) * (double)DAY_MS);
    envelope(&ev, RS_EV_OPP_CLOSED, id, sizeof(id), lead, "closed", t, account);
    ev.u.opp_closed.opportunity_id = S(opp);
    ev.u.opp_closed.outcome = won ? RS_OUTCOME_WON : RS_OUTCOME_LOST;
    ev.u.opp_closed.amount_minor = amount;
    ev.u.opp_closed.currency = S("USD");
    ev.u.opp_closed.loss_reason = won ? RS_STR_NULL : S("price");
    ev.u.opp_closed.close_date_ms = t;
    add_event(d, &ev, account);
    last = t;
    if (!won) {
        return last;
    }
    /* The won deal's subscription starts the next day, annual, at its ACV (MRR = ACV / 12). */
    {
        char sub[40];

        (void)snprintf(sub, sizeof(sub), "sub-%s", opp);
        envelope(&ev, RS_EV_SUB_STARTED, id, sizeof(id), lead, "sub", t + DAY_MS, account);
        subscription(&ev, sub, account, RS_BILL_YEAR, amount / 12, "USD", t + DAY_MS,
                     t + DAY_MS + 365 * DAY_MS);
        add_event(d, &ev, account);
    }
    {
        bool missing_csm = uniform(s) < 0.05;
        /* Two business days is about 2.8 calendar days: a fifth are late. */
        int64_t done =
            t + (int64_t)((uniform(s) < 0.8 ? 0.2 + 1.5 * uniform(s) : 3.5 + 2 * uniform(s)) *
                          (double)DAY_MS);

        envelope(&ev, RS_EV_HANDOFF_STARTED, id, sizeof(id), lead, "handoff-s", t + HOUR_MS,
                 account);
        ev.u.handoff.account_id = S(account);
        ev.u.handoff.opportunity_id = S(opp);
        ev.u.handoff.ae_id = S(owner);
        ev.u.handoff.csm_id = S("csm-1");
        ev.u.handoff.segment = S(segment);
        add_event(d, &ev, account);
        envelope(&ev, RS_EV_HANDOFF_COMPLETED, id, sizeof(id), lead, "handoff-c", done, account);
        ev.u.handoff.account_id = S(account);
        ev.u.handoff.opportunity_id = S(opp);
        ev.u.handoff.ae_id = S(owner);
        ev.u.handoff.csm_id = missing_csm ? RS_STR_NULL : S("csm-1");
        ev.u.handoff.checklist_complete = !missing_csm;
        ev.u.handoff.segment = S(segment);
        add_event(d, &ev, account);
        t = done;
    }
    {
        static const enum rs_milestone milestones[] = { RS_MS_KICKOFF, RS_MS_GO_LIVE,
                                                        RS_MS_FIRST_VALUE };
        static const char *const names[] = { "kickoff", "go-live", "first-value" };
        bool pause = uniform(s) < 0.2;

        for (size_t k = 0; k < sizeof(milestones) / sizeof(milestones[0]); k++) {
            t += (int64_t)((0.5 + (k == 0 ? 1 : 4) * uniform(s)) * (double)DAY_MS);
            if (pause && k == 1) {
                envelope(&ev, RS_EV_ONBOARDING_PAUSED, id, sizeof(id), lead, "paused", t, account);
                ev.u.onboarding_pause.account_id = S(account);
                ev.u.onboarding_pause.reason = S("waiting_on_customer");
                add_event(d, &ev, account);
                t += 2 * DAY_MS;
                envelope(&ev, RS_EV_ONBOARDING_RESUMED, id, sizeof(id), lead, "resumed", t,
                         account);
                ev.u.onboarding_pause.account_id = S(account);
                ev.u.onboarding_pause.reason = RS_STR_NULL;
                add_event(d, &ev, account);
            }
            envelope(&ev, RS_EV_ONBOARDING_MILESTONE, id, sizeof(id), lead, names[k], t, account);
            ev.u.onboarding_milestone.account_id = S(account);
            ev.u.onboarding_milestone.milestone = milestones[k];
            ev.u.onboarding_milestone.status = S("completed");
            add_event(d, &ev, account);
        }
    }
    return t;
}

/*
 * The funnel: a quarter of the leads are high intent (demo requests), most are MQLs, the
 * rest low intent. Outcomes follow the speed-to-lead studies of METRICS.md §8 loosely: most
 * are contacted in time, a fifth late, about one in eight never.
 */
/* First instant of month `k` months after January 2025, UTC (k >= 0). */
static int64_t month_start(int k)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int64_t t = INT64_C(1735689600000); /* 2025-01-01T00:00:00Z */

    for (int i = 0; i < k; i++) {
        int m = i % 12, y = 2025 + i / 12;
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        t += (days[m] + (m == 1 && leap ? 1 : 0)) * DAY_MS;
    }
    return t;
}

#define REV_MONTHS    15 /* January 2025 .. March 2026 (the demo's month) */
#define REV_CUSTOMERS 80

/*
 * The revenue side, from January 2025 to the demo's month: customers in USD, EUR and GBP that
 * start, renew monthly (a non-USD renewal at a new rate is FX, not a movement), expand,
 * contract, churn and come back; a month's exchange rates on its first day; S&M spend per
 * month; reported financials per quarter of 2025; and the company's commit forecast of net new
 * ARR for the demo's quarter. History before the demo's start is sent at once, as a backfill.
 */
static void generate_revenue(struct demo *d, uint64_t *s)
{
    static const char *const currencies[] = { "USD", "EUR", "GBP" };
    static const double base_rate[] = { 1.0, 1.08, 1.27 };
    static const int64_t plans[] = { USD(300), USD(500), USD(900), USD(1500), USD(2500) };
    char id[64], account[24], sub[32], period[16];
    struct rs_event ev;

    double rates[REV_MONTHS][3];

    for (int k = 0; k < REV_MONTHS; k++) {
        for (size_t c = 0; c < 3; c++) {
            rates[k][c] = base_rate[c] * (c == 0 ? 1.0 : 1.0 + 0.04 * (uniform(s) - 0.5));
        }
    }
    for (int k = 0; k < REV_MONTHS; k++) {
        for (int f = 0; f < 2; f++) {
            (void)snprintf(id, sizeof(id), "spend-%02d-%d", k, f);
            memset(&ev, 0, sizeof(ev));
            ev.type = RS_EV_SPEND_RECORDED;
            ev.id = S(id);
            ev.ts_ms = month_start(k + 1) - 1;
            ev.u.spend.spend_id = S(id);
            ev.u.spend.period_start_ms = month_start(k);
            ev.u.spend.period_end_ms = month_start(k + 1);
            ev.u.spend.function = f == 0 ? RS_FN_SALES : RS_FN_MARKETING;
            ev.u.spend.category = f == 0 ? RS_SPEND_SALARIES : RS_SPEND_PROGRAMS;
            ev.u.spend.allocation = RS_ALLOC_NEW_LOGO;
            ev.u.spend.amount_minor = USD(90000 + (int64_t)(uniform(s) * 40000));
            ev.u.spend.currency = S("USD");
            add_event(d, &ev, "spend");
        }
    }
    for (int q = 0; q < 4; q++) {
        (void)snprintf(id, sizeof(id), "fin-2025-q%d", q + 1);
        (void)snprintf(period, sizeof(period), "2025-Q%d", q + 1);
        memset(&ev, 0, sizeof(ev));
        ev.type = RS_EV_FINANCIALS_REPORTED;
        ev.id = S(id);
        ev.ts_ms = month_start(3 * q + 3) + 10 * DAY_MS;
        ev.u.financials.period = (struct rs_period){ S(period), 2025, (uint8_t)(3 * q + 1), 3 };
        ev.u.financials.revenue_minor = USD(90000 + 15000 * q);
        ev.u.financials.currency = S("USD");
        ev.u.financials.gross_margin_pct = 78.0;
        ev.u.financials.has_gross_margin = true;
        ev.u.financials.free_cash_flow_minor = USD(9000 + 2000 * q);
        ev.u.financials.has_fcf = true;
        add_event(d, &ev, "financials");
    }
    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_FORECAST_SUBMITTED;
    ev.id = S("forecast-2026-q1-commit");
    ev.ts_ms = month_start(12);
    ev.u.forecast.forecast_id = S("forecast-2026-q1-commit");
    ev.u.forecast.scope = RS_SCOPE_COMPANY;
    ev.u.forecast.period = (struct rs_period){ S("2026-Q1"), 2026, 1, 3 };
    ev.u.forecast.measure = RS_MEASURE_NET_NEW_ARR;
    ev.u.forecast.category = RS_FC_COMMIT;
    ev.u.forecast.amount_minor = USD(120000);
    ev.u.forecast.currency = S("USD");
    ev.u.forecast.as_of_ms = month_start(12);
    add_event(d, &ev, "forecast");

    for (unsigned c = 1; c <= REV_CUSTOMERS; c++) {
        int first = (int)(next_rand(s) % (REV_MONTHS - 1));
        size_t cur = uniform(s) < 0.7 ? 0 : (uniform(s) < 0.67 ? 1 : 2);
        int64_t mrr = plans[next_rand(s) % (sizeof(plans) / sizeof(plans[0]))];
        int64_t day = (int64_t)(next_rand(s) % 25) * DAY_MS + 9 * HOUR_MS;
        int churn_at = uniform(s) < 0.15 ? first + 2 + (int)(next_rand(s) % 8) : REV_MONTHS;
        int back_at = churn_at < REV_MONTHS && uniform(s) < 0.3 ? churn_at + 2 : REV_MONTHS;
        int change_at = first + 1 + (int)(next_rand(s) % 10);
        bool up = uniform(s) < 0.7;

        (void)snprintf(account, sizeof(account), "cust-%03u", c);
        (void)snprintf(sub, sizeof(sub), "sub-cust-%03u", c);
        /*
         * The month's rate of the customer's currency, on the customer's own partition ahead
         * of its events: a partition applies its events in order, but nothing orders two
         * partitions, so a rate sent once to another partition might come too late.
         */
        for (int k = first; cur != 0 && k < REV_MONTHS; k++) {
            (void)snprintf(id, sizeof(id), "fx-%s-%02d-%s", currencies[cur], k, account);
            memset(&ev, 0, sizeof(ev));
            ev.type = RS_EV_FX_RATE;
            ev.id = S(id);
            ev.ts_ms = month_start(k);
            ev.u.fx_rate.currency = S(currencies[cur]);
            ev.u.fx_rate.rate = rates[k][cur];
            ev.u.fx_rate.date_ms = month_start(k);
            add_event(d, &ev, account);
        }
        for (int k = first; k < REV_MONTHS; k++) {
            enum rs_event_type type = k == first ? RS_EV_SUB_STARTED : RS_EV_SUB_RENEWED;
            int64_t t = month_start(k) + day;
            int64_t end = month_start(k + 1) + day;

            if (k >= churn_at && k < back_at) {
                if (k == churn_at) { /* cancels; churn at the end of the paid month */
                    (void)snprintf(id, sizeof(id), "ev-%s-%02d-cancel", account, k);
                    memset(&ev, 0, sizeof(ev));
                    ev.type = RS_EV_SUB_CHURNED;
                    ev.id = S(id);
                    ev.ts_ms = t - 3 * DAY_MS;
                    ev.account = S(account);
                    subscription(&ev, sub, account, RS_BILL_MONTH, 0, currencies[cur],
                                 month_start(k - 1) + day, t);
                    ev.u.subscription.status = RS_SUB_CANCELED;
                    add_event(d, &ev, account);
                }
                continue;
            }
            if (k == back_at) {
                type = RS_EV_SUB_REACTIVATED;
            } else if (k == change_at && k != first) {
                type = up ? RS_EV_SUB_EXPANDED : RS_EV_SUB_CONTRACTED;
                mrr = up ? mrr * 3 / 2 : mrr * 2 / 3;
            } else if (cur == 0 && k != first) {
                continue; /* a USD renewal at the same price changes nothing: not sent */
            }
            (void)snprintf(id, sizeof(id), "ev-%s-%02d", account, k);
            memset(&ev, 0, sizeof(ev));
            ev.type = type;
            ev.id = S(id);
            ev.ts_ms = t;
            ev.account = S(account);
            subscription(&ev, sub, account, RS_BILL_MONTH, mrr, currencies[cur], t, end);
            add_event(d, &ev, account);
        }
    }
}

static void generate(struct demo *d)
{
    static const char *const segments[] = { "smb", "mid_market", "enterprise" };
    static const char *const channels[RS_TIER__COUNT] = { "demo_request", "webinar", "ebook" };
    uint64_t s = d->opts->seed;
    char(*ids)[6][24] = rs_xcalloc(d->opts->leads, sizeof(*ids));
    int64_t last_created = SIM_START_MS;
    int64_t last_event = SIM_START_MS;

    for (uint32_t i = 0; i < d->opts->leads; i++) {
        struct rs_event ev;
        char *lead = ids[i][0], *owner = ids[i][1], *account = ids[i][2], *eid = ids[i][3];
        double r = uniform(&s);
        enum rs_intent_tier tier = r < 0.25 ? RS_TIER_HIGH : (r < 0.7 ? RS_TIER_MQL : RS_TIER_LOW);
        int64_t t_ms = d->cfg.lead_threshold_ms[tier];
        int64_t created = SIM_START_MS + (int64_t)(uniform(&s) * (double)LEAD_SPAN_MS);
        bool has_account = uniform(&s) < 0.8;
        double outcome = uniform(&s);
        const char *key;

        (void)snprintf(lead, 24, "L-%05u", i + 1);
        (void)snprintf(owner, 24, "rep-%02u", (unsigned)(next_rand(&s) % REPS) + 1);
        (void)snprintf(account, 24, "acct-%04u",
                       (unsigned)(next_rand(&s) % (d->opts->leads / 3 + 1)) + 1);
        key = has_account ? account : lead;
        if (created > last_created) {
            last_created = created;
        }
        memset(&ev, 0, sizeof(ev));
        (void)snprintf(eid, 24, "ev-%05u-c", i + 1);
        ev.type = RS_EV_LEAD_CREATED;
        ev.id = S(eid);
        ev.ts_ms = created;
        ev.account = has_account ? S(account) : RS_STR_NULL;
        ev.u.lead_created.lead_id = S(lead);
        ev.u.lead_created.channel = S(channels[tier]);
        ev.u.lead_created.intent_tier = tier;
        ev.u.lead_created.segment = S(segments[next_rand(&s) % 3]);
        ev.u.lead_created.owner_id = S(owner);
        add_event(d, &ev, key);

        if (uniform(&s) < 0.3) { /* an auto-reply: not a response */
            struct rs_event a = ev;

            (void)snprintf(ids[i][4], 24, "ev-%05u-a", i + 1);
            a.type = RS_EV_LEAD_TOUCHED;
            a.id = S(ids[i][4]);
            a.ts_ms = created + 30000;
            memset(&a.u, 0, sizeof(a.u));
            a.u.lead_touched.lead_id = S(lead);
            a.u.lead_touched.rep_id = S("bot");
            a.u.lead_touched.actor_type = RS_ACTOR_AUTOMATION;
            a.u.lead_touched.channel = RS_CH_EMAIL;
            a.u.lead_touched.direction = RS_DIR_OUTBOUND;
            add_event(d, &a, key);
        }
        if (outcome < 0.87) {
            double f = outcome < 0.50   ? 0.05 + 0.7 * uniform(&s)  /* on time */
                       : outcome < 0.60 ? 0.75 + 0.23 * uniform(&s) /* close to the line */
                       : outcome < 0.82 ? 1.1 + 1.6 * uniform(&s)   /* late */
                                        : 0.1 + 0.4 * uniform(&s);  /* disqualified */
            struct rs_event t = ev;

            (void)snprintf(ids[i][5], 24, "ev-%05u-t", i + 1);
            t.id = S(ids[i][5]);
            t.ts_ms = created + (int64_t)(f * (double)t_ms);
            memset(&t.u, 0, sizeof(t.u));
            if (outcome >= 0.82) {
                t.type = RS_EV_LEAD_DISQUALIFIED;
                t.u.lead_disqualified.lead_id = S(lead);
                t.u.lead_disqualified.reason = S("not_a_fit");
            } else {
                t.type = RS_EV_LEAD_TOUCHED;
                t.u.lead_touched.lead_id = S(lead);
                t.u.lead_touched.rep_id = S(owner);
                t.u.lead_touched.actor_type = RS_ACTOR_HUMAN;
                t.u.lead_touched.channel = uniform(&s) < 0.6 ? RS_CH_CALL : RS_CH_EMAIL;
                t.u.lead_touched.direction = RS_DIR_OUTBOUND;
                t.u.lead_touched.connected = uniform(&s) < 0.4;
            }
            add_event(d, &t, key);
        }
        if (has_account && outcome < 0.82) {
            int64_t end = generate_pipeline(d, &s, lead, account, owner, tier, created);

            last_event = end > last_event ? end : last_event;
        }
    }
    generate_reps(d);
    generate_revenue(d, &s);
    /* Malformed input, as real producers send it now and then: each becomes a dead letter. */
    {
        static const char garbage[] = "{\"type\":\"lead.created\"}"; /* JSON, not msgpack */
        int64_t at = SIM_START_MS + LEAD_SPAN_MS / 2;
        struct rs_event bad;
        struct gen_msg *m = add_msg(d, at, "bad-1");

        rs_buf_append(&m->bytes, garbage, sizeof(garbage) - 1);
        memset(&bad, 0, sizeof(bad));
        bad.type = RS_EV_LEAD_CREATED;
        bad.id = S("ev-bad-2");
        bad.ts_ms = at + 1000;
        bad.u.lead_created.lead_id = S("L-bad");
        bad.u.lead_created.channel = S("webinar");
        bad.u.lead_created.segment = S("smb");
        m = add_msg(d, at + 1000, "bad-2");
        rs_event_encode(&bad, &m->bytes);
        m->bytes.len -= 3; /* truncated in flight */
        d->bad_events += 2;
    }
    free(ids);
    qsort(d->msgs, d->n_msgs, sizeof(*d->msgs), cmp_msg);
    /* Run until the slowest ladder (low intent, L2 at escalate_pct) could have fired. */
    d->sim_end_ms =
        last_created + d->cfg.lead_threshold_ms[RS_TIER_LOW] * d->cfg.escalate_pct / 100 + 60000;
    /* And until the pipeline's last event, plus a day for the stall and handoff ladders. */
    if (last_event + DAY_MS > d->sim_end_ms) {
        d->sim_end_ms = last_event + DAY_MS;
    }
}

static void on_gen_delivered(void *opaque, uint64_t seq, bool ok, bool retriable,
                             const char *reason)
{
    (void)opaque;
    (void)retriable;
    if (!ok) {
        RS_LOG_WARN("generator message %" PRIu64 " not delivered: %s", seq, reason);
    }
}

static void on_gen_fatal(void *opaque, const char *reason)
{
    struct demo *d = opaque;

    RS_LOG_ERROR("generator producer: %s", reason);
    d->status = 1;
}

static void on_gen_tick(uv_timer_t *t)
{
    struct demo *d = t->data;
    int64_t now = sim_now(d);

    if (!d->sim_started) {
        if (!d->tail_assigned || !d->metrics_assigned || !rs_app_is_caught_up(d->app)) {
            return; /* both consumers join their groups first */
        }
        d->sim_started = true;
        d->sim_started_ns = uv_hrtime();
        if (!d->opts->json) {
            printf("revstream demo: %zu messages over %.1f simulated hours at %.0fx; alerts as "
                   "they arrive on '%s':\n",
                   d->n_msgs, (double)(d->sim_end_ms - SIM_START_MS) / 3.6e6, d->opts->speed,
                   d->cfg.topic_alerts);
        }
    }
    while (d->next_msg < d->n_msgs && d->msgs[d->next_msg].ts_ms <= now) {
        struct gen_msg *m = &d->msgs[d->next_msg];
        struct rs_err err;
        int rc = rs_kafka_producer_send(
            d->gen, d->cfg.topic_events, (struct rs_bytes){ m->key, strlen(m->key) },
            (struct rs_bytes){ m->bytes.data, m->bytes.len }, NULL, 0, m->ts_ms, d->next_msg, &err);

        if (rc == -ENOBUFS) {
            return;
        }
        if (rc != 0) {
            RS_LOG_ERROR("%s", err.msg);
        }
        d->next_msg++;
    }
}

static void format_duration(char *out, size_t cap, int64_t ms)
{
    int64_t s = ms / 1000;

    if (s >= 86400) {
        (void)snprintf(out, cap, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
    } else if (s >= 3600) {
        (void)snprintf(out, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    } else {
        (void)snprintf(out, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    }
}

static int on_tail_batch(void *opaque, const struct rs_msg *msgs, size_t n)
{
    struct demo *d = opaque;

    for (size_t i = 0; i < n; i++) {
        struct rs_alert_view a;
        struct rs_err err;
        char elapsed[32], threshold[32];
        int64_t at;

        if (rs_alert_view_decode(&d->alert_decoder, msgs[i].payload, msgs[i].len, &a, &err) != 0) {
            RS_LOG_ERROR("alert at offset %" PRId64 " does not decode: %s", msgs[i].offset,
                         err.msg);
            d->status = 1;
            continue;
        }
        d->alerts_seen++;
        d->seen_by_kind[a.kind]++;
        if (d->opts->json) {
            continue;
        }
        at = a.evaluated_at_ms - SIM_START_MS;
        /* On a business calendar the level is reached in business time: show that. */
        format_duration(elapsed, sizeof(elapsed),
                        a.calendar_id.ptr != NULL ? a.elapsed_business_ms : a.elapsed_ms);
        if (a.calendar_id.ptr != NULL) {
            strncat(elapsed, " business", sizeof(elapsed) - strlen(elapsed) - 1);
        }
        if (a.sla_type.len > 4 && memcmp(a.sla_type.ptr, "KPI-", 4) == 0) {
            /* A guardrail: the metric and bucket are its entity; no clock to show. */
            printf("  day %2" PRId64 " %02" PRId64 ":%02" PRId64 "  KPI    %-14s %-15.*s %.*s\n",
                   at / DAY_MS + 1, at % DAY_MS / 3600000, at % 3600000 / 60000,
                   rs_alert_kind_name(a.kind), (int)a.level.len, a.level.ptr, (int)a.entity_id.len,
                   a.entity_id.ptr);
            continue;
        }
        format_duration(threshold, sizeof(threshold), a.threshold_ms);
        printf("  day %2" PRId64 " %02" PRId64 ":%02" PRId64 "  %.*s %-14s %-13.*s %-11.*s "
               "%-10.*s owner %-7.*s threshold %-6s elapsed %s\n",
               at / DAY_MS + 1, at % DAY_MS / 3600000, at % 3600000 / 60000,
               a.sla_type.ptr != NULL ? (int)(a.sla_type.len < 6 ? a.sla_type.len : 6) : 6,
               a.sla_type.ptr != NULL ? a.sla_type.ptr : "SLA-??", rs_alert_kind_name(a.kind),
               (int)a.level.len, a.level.ptr, (int)a.entity_type.len, a.entity_type.ptr,
               (int)a.entity_id.len, a.entity_id.ptr, (int)a.owner_id.len,
               a.owner_id.ptr != NULL ? a.owner_id.ptr : "-", threshold, elapsed);
    }
    (void)fflush(stdout);
    return 0;
}

static int on_tail_assign(void *opaque, const char *topic, const int32_t *ids, int64_t *offsets,
                          size_t n)
{
    struct demo *d = opaque;

    (void)topic;
    (void)ids;
    for (size_t i = 0; i < n; i++) {
        offsets[i] = 0; /* everything the engine ever published */
    }
    d->tail_assigned = true;
    return 0;
}

/* The metrics topic, read as a dashboard would: counted, not printed. */
static int on_metrics_batch(void *opaque, const struct rs_msg *msgs, size_t n)
{
    struct demo *d = opaque;

    (void)msgs;
    d->metric_updates_seen += n;
    return 0;
}

static int on_metrics_assign(void *opaque, const char *topic, const int32_t *ids, int64_t *offsets,
                             size_t n)
{
    struct demo *d = opaque;

    (void)topic;
    (void)ids;
    for (size_t i = 0; i < n; i++) {
        offsets[i] = 0;
    }
    d->metrics_assigned = true;
    return 0;
}

static void on_tail_revoke(void *opaque, const char *topic, const int32_t *ids, size_t n)
{
    (void)opaque;
    (void)topic;
    (void)ids;
    (void)n;
}

static void on_tail_eof(void *opaque, const char *topic, int32_t partition, int64_t offset)
{
    (void)opaque;
    (void)topic;
    (void)partition;
    (void)offset;
}

static void on_tail_fatal(void *opaque, const char *reason)
{
    struct demo *d = opaque;

    RS_LOG_ERROR("alerts consumer: %s", reason);
    d->status = 1;
}

static void maybe_finish(struct demo *d);

static void tail_closed(void *opaque)
{
    struct demo *d = opaque;

    d->tail_closed = true;
    maybe_finish(d);
}

static void metrics_closed(void *opaque)
{
    struct demo *d = opaque;

    d->metrics_closed = true;
    maybe_finish(d);
}

static void gen_closed(void *opaque)
{
    (void)opaque;
}

static void app_done(void *opaque, int status)
{
    struct demo *d = opaque;

    d->app_status = status;
    d->app_closed = true;
    maybe_finish(d);
}

static void maybe_finish(struct demo *d)
{
    if (d->tail_closed && d->metrics_closed && d->app_closed &&
        !uv_is_closing((uv_handle_t *)&d->gen_timer)) {
        uv_close((uv_handle_t *)&d->gen_timer, NULL);
        uv_close((uv_handle_t *)&d->done_timer, NULL);
        if (d->gen != NULL) {
            rs_kafka_producer_close(d->gen, gen_closed, d);
        }
    }
}

static void stop_all(struct demo *d)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    (void)uv_timer_stop(&d->gen_timer);
    (void)uv_timer_stop(&d->done_timer);
    d->app_closed = d->app == NULL;
    d->tail_closed = d->tail == NULL;
    d->metrics_closed = d->metrics_tail == NULL;
    if (d->app != NULL) {
        rs_app_stop(d->app, app_done, d);
    }
    if (d->tail != NULL) {
        rs_kafka_consumer_close(d->tail, tail_closed, d);
    }
    if (d->metrics_tail != NULL) {
        rs_kafka_consumer_close(d->metrics_tail, metrics_closed, d);
    }
    maybe_finish(d);
}

static void on_done_check(uv_timer_t *t)
{
    struct demo *d = t->data;
    const struct rs_app_counters *c = rs_app_counters(d->app);

    if (rs_app_status(d->app) != 0 || (uv_hrtime() - d->wall_started_ns) / 1000000 > GIVE_UP_MS) {
        if (rs_app_status(d->app) == 0) {
            RS_LOG_ERROR("demo did not finish within %d s", GIVE_UP_MS / 1000);
        }
        d->status = 1;
        stop_all(d);
        return;
    }
    /* Done: all sent and applied, the clock past the last deadline, every alert read back. */
    if (d->sim_started && d->next_msg == d->n_msgs && sim_now(d) >= d->sim_end_ms &&
        c->events + c->dead_letters >= d->n_msgs && rs_app_outbox_pending(d->app) == 0 &&
        rs_app_is_caught_up(d->app) &&
        d->alerts_seen + d->metric_updates_seen + c->dead_letters >= c->published) {
        stop_all(d);
    }
}

static void remove_state_dir(const char *dir)
{
    static const char *const files[] = { "data.mdb", "lock.mdb" };
    char path[128];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        (void)snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        (void)unlink(path);
    }
    (void)rmdir(dir);
}

/* The headline metrics of the demo's month (and quarter), read back from the state store. */
enum pick { PICK_VALUE, PICK_VALUE2, PICK_DETAIL };

static const struct headline {
    const char *label; /* summary line and JSON key */
    const char *metric;
    const char *dims;
    enum rs_grain grain;
    enum pick pick;
    const char *detail; /* PICK_DETAIL: the input's name */
    const char *unit;   /* how to print: "ratio", "ms", "days", "minor", "x" */
} headlines[] = {
    { "speed_to_lead", "speed_to_lead", "", RS_GRAIN_MONTH, PICK_VALUE, NULL, "ms" },
    { "lead_to_mql", "funnel_conversion", "from=lead,to=mql", RS_GRAIN_MONTH, PICK_VALUE, NULL,
      "ratio" },
    { "mql_to_sql", "funnel_conversion", "from=mql,to=sql", RS_GRAIN_MONTH, PICK_VALUE, NULL,
      "ratio" },
    { "sql_to_opp", "funnel_conversion", "from=sql,to=opp", RS_GRAIN_MONTH, PICK_VALUE, NULL,
      "ratio" },
    { "opp_to_won", "funnel_conversion", "from=opp,to=won", RS_GRAIN_MONTH, PICK_VALUE, NULL,
      "ratio" },
    { "win_rate", "win_rate", "", RS_GRAIN_MONTH, PICK_VALUE, NULL, "ratio" },
    { "sales_cycle_won", "sales_cycle", "outcome=won", RS_GRAIN_MONTH, PICK_VALUE, NULL, "days" },
    { "handoff_on_time", "handoff_completion", "", RS_GRAIN_MONTH, PICK_VALUE, NULL, "ratio" },
    { "quota_attainment", "quota_attainment", "", RS_GRAIN_MONTH, PICK_VALUE, NULL, "ratio" },
    { "time_to_value", "time_to_onboard", "milestone=first_value", RS_GRAIN_MONTH, PICK_VALUE, NULL,
      "days" },
    { "arr", "mrr", "", RS_GRAIN_MONTH, PICK_DETAIL, "arr", "minor" },
    { "nrr_t12", "nrr_t12", "", RS_GRAIN_MONTH, PICK_VALUE, NULL, "ratio" },
    { "grr_t12", "nrr_t12", "", RS_GRAIN_MONTH, PICK_VALUE2, NULL, "ratio" },
    { "quick_ratio", "mrr", "", RS_GRAIN_MONTH, PICK_DETAIL, "quick_ratio", "x" },
    { "magic_number", "magic_number", "", RS_GRAIN_QUARTER, PICK_VALUE, NULL, "x" },
};

#define N_HEADLINES (sizeof(headlines) / sizeof(headlines[0]))

/* The picked figure of v into *out; false when it is null. */
static bool headline_value(const struct headline *h, const struct rs_metric_value *v, double *out)
{
    if (v->is_null) {
        return false;
    }
    switch (h->pick) {
    case PICK_VALUE:
        *out = v->value;
        return true;
    case PICK_VALUE2:
        *out = v->value2;
        return true;
    case PICK_DETAIL:
        for (size_t i = 0; i < v->n_detail; i++) {
            if (strcmp(v->detail[i].name, h->detail) == 0) {
                *out = v->detail[i].value;
                return !v->detail[i].is_null;
            }
        }
        return false;
    }
    return false;
}

static void read_headlines(struct demo *d, struct rs_metric_value *v)
{
    for (size_t i = 0; i < N_HEADLINES; i++) {
        struct rs_err err;

        if (rs_app_metric(d->app, headlines[i].metric, headlines[i].dims, headlines[i].grain,
                          SIM_START_MS, &v[i], &err) != 0) {
            RS_LOG_ERROR("%s", err.msg);
            memset(&v[i], 0, sizeof(v[i]));
            v[i].is_null = true;
            v[i].null_reason = "unreadable";
        }
    }
}

static void print_headlines(const struct rs_metric_value *v)
{
    printf("  metrics (March 2026, the demo's month, and its quarter; cohorts younger than "
           "their window are immature):\n");
    for (size_t i = 0; i < N_HEADLINES; i++) {
        const struct headline *h = &headlines[i];
        char value[48];
        double x = 0;

        if (!headline_value(h, &v[i], &x)) {
            (void)snprintf(value, sizeof(value), "- (%s)",
                           v[i].null_reason != NULL ? v[i].null_reason : "no_base");
        } else if (strcmp(h->unit, "ratio") == 0) {
            (void)snprintf(value, sizeof(value), "%.1f%%", 100 * x);
        } else if (strcmp(h->unit, "ms") == 0) {
            format_duration(value, sizeof(value), (int64_t)x);
            strncat(value, " (P50)", sizeof(value) - strlen(value) - 1);
        } else if (strcmp(h->unit, "minor") == 0) {
            (void)snprintf(value, sizeof(value), "$%.0f", x / 100);
        } else if (strcmp(h->unit, "x") == 0) {
            (void)snprintf(value, sizeof(value), "%.2f", x);
        } else {
            (void)snprintf(value, sizeof(value), "%.1f %s (P50)", x, h->unit);
        }
        if (h->pick == PICK_VALUE && strcmp(h->unit, "x") != 0 && strcmp(h->unit, "minor") != 0) {
            printf("    %-18s %-26s of %" PRId64 " (%" PRId64 "/%" PRId64 ")\n", h->label, value,
                   v[i].count, v[i].numerator, v[i].denominator);
        } else {
            printf("    %-18s %-26s%s\n", h->label, value, v[i].provisional ? " provisional" : "");
        }
    }
}

static void json_headlines(const struct rs_metric_value *v)
{
    printf(",\"metrics\":{");
    for (size_t i = 0; i < N_HEADLINES; i++) {
        double x = 0;

        printf("%s\"%s\":{\"value\":", i > 0 ? "," : "", headlines[i].label);
        if (!headline_value(&headlines[i], &v[i], &x)) {
            printf("null,\"null_reason\":\"%s\"",
                   v[i].null_reason != NULL ? v[i].null_reason : "no_base");
        } else {
            printf("%.6g", x);
        }
        printf(",\"numerator\":%" PRId64 ",\"denominator\":%" PRId64 ",\"count\":%" PRId64
               ",\"p50\":%.6g,\"p90\":%.6g}",
               v[i].numerator, v[i].denominator, v[i].count, v[i].p50, v[i].p90);
    }
    printf("}");
}

static void print_summary(struct demo *d, const struct rs_sla_stats *st,
                          const struct rs_metric_value *v, double wall_s)
{
    const struct rs_app_counters *c = rs_app_counters(d->app);
    /* Leads, from the store: breached = ever breached; recovered = breached, then met. */
    uint64_t breached = st->breached + st->breached_then_met;

    if (d->opts->json) {
        printf("{\"events\":%" PRIu64 ",\"leads\":%" PRIu64 ",\"breached\":%" PRIu64
               ",\"recovered\":%" PRIu64 ",\"dead_letters\":%" PRIu64
               ",\"p50_response_ms\":%.0f,\"p90_response_ms\":%.0f,\"met\":%" PRIu64
               ",\"breached_then_met\":%" PRIu64 ",\"open_breached\":%" PRIu64
               ",\"cancelled\":%" PRIu64 ",\"running\":%" PRIu64 ",\"warnings\":%" PRIu64
               ",\"escalations\":%" PRIu64 ",\"retractions\":%" PRIu64 ",\"resolutions\":%" PRIu64
               ",\"alerts\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"wall_seconds\":%.1f",
               c->events, st->leads, breached, st->breached_then_met, c->dead_letters,
               st->p50_response_ms, st->p90_response_ms, st->met, st->breached_then_met,
               st->breached, st->cancelled, st->running, d->seen_by_kind[RS_ALERT_WARNING],
               d->seen_by_kind[RS_ALERT_ESCALATED], d->seen_by_kind[RS_ALERT_RETRACTED],
               d->seen_by_kind[RS_ALERT_RECOVERED], d->alerts_seen, d->opts->seed, wall_s);
        printf(",\"metric_updates\":%" PRIu64, d->metric_updates_seen);
        json_headlines(v);
        printf("}\n");
        return;
    }
    {
        char p50[32], p90[32];

        format_duration(p50, sizeof(p50), (int64_t)st->p50_response_ms);
        format_duration(p90, sizeof(p90), (int64_t)st->p90_response_ms);
        printf("\nsummary (seed %" PRIu64 ", %.1f s):\n", d->opts->seed, wall_s);
        printf("  events applied   %" PRIu64 " (dead letters %" PRIu64 ")\n", c->events,
               c->dead_letters);
        printf("  leads            %" PRIu64 ": met %" PRIu64 ", breached %" PRIu64
               " (recovered %" PRIu64 ", never contacted %" PRIu64 "), cancelled %" PRIu64 "\n",
               st->leads, st->met, breached, st->breached_then_met, st->breached, st->cancelled);
        printf("  alerts           %" PRIu64 ": warnings %" PRIu64 ", breaches %" PRIu64
               ", escalations %" PRIu64 ", resolved %" PRIu64 ", retracted %" PRIu64 "\n",
               d->alerts_seen, d->seen_by_kind[RS_ALERT_WARNING],
               d->seen_by_kind[RS_ALERT_BREACHED], d->seen_by_kind[RS_ALERT_ESCALATED],
               d->seen_by_kind[RS_ALERT_RECOVERED], d->seen_by_kind[RS_ALERT_RETRACTED]);
        printf("  response time    p50 %s, p90 %s (first human outbound touch)\n", p50, p90);
        printf("  metric updates   %" PRIu64 " on '%s'\n", d->metric_updates_seen,
               d->cfg.topic_metrics);
        print_headlines(v);
    }
}

static int set(struct demo *d, const char *key, const char *value)
{
    struct rs_err err;

    if (rs_config_set(&d->cfg, key, value, "demo", &err) != 0) {
        RS_LOG_ERROR("%s", err.msg);
        return 1;
    }
    return 0;
}

int rs_demo_run(const struct rs_demo_options *opts)
{
    static const struct rs_kafka_consumer_handlers tail_handlers = {
        on_tail_batch, on_tail_assign, on_tail_revoke, on_tail_eof, on_tail_fatal,
    };
    static const struct rs_kafka_consumer_handlers metrics_handlers = {
        on_metrics_batch, on_metrics_assign, on_tail_revoke, on_tail_eof, on_tail_fatal,
    };
    struct demo *d = rs_xcalloc(1, sizeof(*d));
    const char *topics[4];
    const char *tmp = getenv("TMPDIR");
    struct rs_clock clock;
    struct rs_sla_stats stats;
    struct rs_err err;
    int status = 1;

    rs_err_clear(&err);
    d->opts = opts;
    d->wall_started_ns = uv_hrtime();
    rs_config_init(&d->cfg);
    rs_event_decoder_init(&d->alert_decoder, 1 << 20);
    (void)snprintf(d->state_dir, sizeof(d->state_dir), "%s/revstream-demo-XXXXXX",
                   tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(d->state_dir) == NULL) {
        RS_LOG_ERROR("cannot create a state directory under '%s'", d->state_dir);
        goto out_cfg;
    }
    topics[0] = d->cfg.topic_events;
    topics[1] = d->cfg.topic_alerts;
    topics[2] = d->cfg.topic_dlq;
    topics[3] = d->cfg.topic_metrics;
    if (rs_kafka_mock_new(&d->mock, topics, 4, PARTITIONS, &err) != 0) {
        RS_LOG_ERROR("%s", err.msg);
        goto out_dir;
    }
    if (set(d, "kafka.bootstrap.servers", rs_kafka_mock_bootstraps(d->mock)) ||
        set(d, "kafka.group.id", "revstream-demo") || set(d, "state.dir", d->state_dir) ||
        set(d, "time.tick", "5ms") || set(d, "kafka.producer.linger.ms", "1") ||
        /* At 12000x a 100 ms fetch wait is 20 simulated minutes of ingest lag. */
        set(d, "kafka.consumer.fetch.wait.max.ms", "5") || set(d, "kafka.log_level", "3") ||
        /* The pipeline runs in days, not months: thresholds to match. */
        set(d, "sla.stalled_opportunity.threshold", "5d") || set(d, "sla.onboarding.smb", "6d") ||
        set(d, "sla.onboarding.mid_market", "9d") || set(d, "sla.onboarding.enterprise", "12d") ||
        set(d, "sla.freshness.silence", "12h") || set(d, "http.bind", "off")) {
        goto out_mock;
    }
    generate(d);
    (void)uv_loop_init(&d->loop);
    clock.now_ms = sim_now;
    clock.opaque = d;
    (void)uv_timer_init(&d->loop, &d->gen_timer);
    (void)uv_timer_init(&d->loop, &d->done_timer);
    d->gen_timer.data = d->done_timer.data = d;
    if (rs_app_open(&d->app, &d->loop, &d->cfg, &clock, &err) != 0 ||
        rs_kafka_producer_open(&d->gen, &d->loop, &d->cfg, on_gen_delivered, on_gen_fatal, d,
                               &err) != 0 ||
        rs_kafka_consumer_open(&d->tail, &d->loop, &d->cfg, "revstream-demo-tail", &tail_handlers,
                               d, &err) != 0 ||
        rs_kafka_consumer_subscribe(d->tail, d->cfg.topic_alerts, &err) != 0 ||
        rs_kafka_consumer_open(&d->metrics_tail, &d->loop, &d->cfg, "revstream-demo-metrics",
                               &metrics_handlers, d, &err) != 0 ||
        rs_kafka_consumer_subscribe(d->metrics_tail, d->cfg.topic_metrics, &err) != 0 ||
        rs_app_start(d->app, &err) != 0) {
        RS_LOG_ERROR("%s", err.msg);
        d->status = 1;
        stop_all(d);
    } else {
        (void)uv_timer_start(&d->gen_timer, on_gen_tick, 0, GEN_TICK_MS);
        (void)uv_timer_start(&d->done_timer, on_done_check, DONE_CHECK_MS, DONE_CHECK_MS);
    }
    (void)uv_run(&d->loop, UV_RUN_DEFAULT);
    if (d->app != NULL && d->status == 0 && d->app_status == 0) {
        if (rs_app_lead_stats(d->app, &stats, &err) != 0) {
            RS_LOG_ERROR("%s", err.msg);
            d->status = 1;
        } else {
            struct rs_metric_value v[N_HEADLINES];

            read_headlines(d, v);
            print_summary(d, &stats, v, (double)(uv_hrtime() - d->wall_started_ns) / 1e9);
            status = 0;
        }
    }
    rs_kafka_consumer_free(d->tail);
    rs_kafka_consumer_free(d->metrics_tail);
    rs_kafka_producer_free(d->gen, 1000);
    rs_app_free(d->app);
    if (uv_loop_close(&d->loop) != 0) {
        RS_LOG_WARN("demo loop closed with handles open");
    }
out_mock:
    rs_kafka_mock_free(d->mock);
out_dir:
    remove_state_dir(d->state_dir);
out_cfg:
    for (size_t i = 0; i < d->n_msgs; i++) {
        rs_buf_release(&d->msgs[i].bytes);
    }
    free(d->msgs);
    rs_event_decoder_release(&d->alert_decoder);
    rs_config_release(&d->cfg);
    free(d);
    return status;
}
