/*
 * test_funnel.c - the funnel, pipeline and handoff metrics and SLA-02..07 end to end against a
 * real Kafka broker, through the paths a user takes: events written as JSON lines and loaded
 * with `revstream send`, `revstream run -c FILE`, then the values read back three ways: the
 * HTTP JSON API, the metrics topic (per-partition parts summed as README says), and
 * `revstream inspect` on the stopped engine's state. Alerts are read from the alerts topic.
 *
 * The events are the worked examples of METRICS.md (M11, M12, M13, M14, M15, M16, M20) placed
 * on one 2027 timeline, so every expected value below is the specification's own number or
 * one derived from the timeline by hand in the comment next to it.
 *
 * Needs RS_TEST_BROKERS (scripts/test.sh starts deploy/kafka.sh and sets it); skips without.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "engine_env.h"
#include "event.h"
#include "http_get.h"
#include "tmpdir.h"

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS 3
#define MIN        RS_ENV_MIN
#define HOUR       RS_ENV_HOUR
#define DAY        RS_ENV_DAY
#define USD(x)     ((int64_t)(x)*100)

/* ---- the environment (tests/support/engine_env.c) ---------------------------------- */

static int env_setup(void **state)
{
    *state = rs_env_new(PARTITIONS);
    return 0;
}

/* ---- events as JSON lines, loaded with `revstream send` ----------------------------- */

/* One lead.created per partition at `ts`: every partition's watermark passes what is before. */
static void send_sentinels(struct rs_env *e, int64_t ts)
{
    rd_kafka_t *p = rs_tb_producer_new(e->brokers);
    struct rs_buf b;

    rs_buf_init(&b);
    for (int i = 0; i < PARTITIONS; i++) {
        struct rs_event ev;
        char id[32];

        memset(&ev, 0, sizeof(ev));
        (void)snprintf(id, sizeof(id), "sentinel-%d", i);
        ev.type = RS_EV_LEAD_CREATED;
        ev.id = (struct rs_str){ id, strlen(id) };
        ev.ts_ms = ts;
        ev.u.lead_created.lead_id = ev.id;
        ev.u.lead_created.channel = (struct rs_str){ "test", 4 };
        ev.u.lead_created.intent_tier = RS_TIER_LOW;
        ev.u.lead_created.segment = (struct rs_str){ "smb", 3 };
        rs_buf_reset(&b);
        rs_event_encode(&ev, &b);
        rs_tb_produce_to(p, e->events, i, b.data, b.len);
    }
    rs_buf_release(&b);
    rs_tb_flush(p);
    rd_kafka_destroy(p);
}

/* GET one metric value. */
static json_t *metric(struct rs_env *e, const char *query)
{
    char path[512];

    (void)snprintf(path, sizeof(path), "/api/metric?%s", query);
    return rs_env_get_json(e, path, 200);
}

/* Wait until the engine serves and every partition applied its sentinel (made on `day`). */
static void wait_applied(struct rs_env *e, const char *day)
{
    char query[128];
    int64_t deadline = rs_tb_now_ms() + 60000;

    (void)snprintf(query, sizeof(query), "/api/metric?name=speed_to_lead&grain=day&bucket=%s", day);
    for (;;) {
        char *body = NULL;
        int status = rs_test_http_get(e->port, query, &body, 2000);
        json_t *v = status == 200 ? json_loads(body, 0, NULL) : NULL;
        bool done = v != NULL && json_number_value(json_object_get(v, "count")) == PARTITIONS;

        json_decref(v);
        free(body);
        if (done) {
            return;
        }
        assert_true(rs_tb_now_ms() < deadline);
        rs_tb_sleep_ms(200);
    }
}

/* ---- topics -------------------------------------------------------------------------- */

struct alert_set {
    struct rs_event_decoder dec;
    char (*lines)[256]; /* "SLA-0x|entity|type|level" */
    size_t n, cap;
};

static void on_alert_msg(void *opaque, const rd_kafka_message_t *m)
{
    struct alert_set *as = opaque;
    struct rs_alert_view a;
    struct rs_err err;

    assert_int_equal(rs_alert_view_decode(&as->dec, m->payload, m->len, &a, &err), 0);
    if (as->n == as->cap) {
        as->cap = as->cap == 0 ? 1024 : as->cap * 2;
        as->lines = realloc(as->lines, as->cap * sizeof(*as->lines));
    }
    (void)snprintf(as->lines[as->n++], sizeof(as->lines[0]), "%.6s|%.*s|%s|%.*s", a.sla_type.ptr,
                   (int)a.entity_id.len, a.entity_id.ptr, rs_alert_kind_name(a.kind),
                   (int)a.level.len, a.level.ptr);
}

static bool has_alert(const struct alert_set *as, const char *want)
{
    for (size_t i = 0; i < as->n; i++) {
        if (strcmp(as->lines[i], want) == 0) {
            return true;
        }
    }
    return false;
}

static void assert_alert(const struct alert_set *as, const char *want, bool present)
{
    if (has_alert(as, want) != present) {
        print_error("alert %s: expected %s among %zu alerts\n", want,
                    present ? "present" : "absent", as->n);
    }
    assert_true(has_alert(as, want) == present);
}

/* ---- the timeline -------------------------------------------------------------------- */

static const char *account_of(int i)
{
    static const char *const accounts[] = { "acct-1", "acct-2", "acct-3", "acct-4", "acct-5" };

    return accounts[i % 5];
}

static void lead_events(struct rs_env *e)
{
    /* M11: ten high-intent leads on Monday 2027-03-01 10:00 with TTFA in minutes. */
    static const int ttfa[10] = { 2, 3, 4, 4, 5, 7, 9, 15, 30, 120 };
    int64_t created = rs_env_utc(2027, 3, 1, 10, 0);

    for (int i = 0; i < 10; i++) {
        rs_env_line(e, "lead.created", created,
                    "\"account\":\"%s\",\"lead_id\":\"L%02d\",\"channel\":\"demo_request\","
                    "\"intent_tier\":\"high\",\"segment\":\"smb\",\"owner_id\":\"R1\"",
                    account_of(i), i + 1);
    }
    for (int i = 0; i < 10; i++) {
        rs_env_line(
            e, "lead.touched", created + ttfa[i] * MIN,
            "\"account\":\"%s\",\"lead_id\":\"L%02d\",\"rep_id\":\"R1\",\"actor_type\":\"human\","
            "\"channel\":\"call\",\"direction\":\"outbound\",\"connected\":true",
            account_of(i), i + 1);
    }
    /* M12: L01 MQL then SQL, L02 MQL only (SLA-02 breaches), L03 straight to SQL. */
    rs_env_line(e, "lead.qualified", rs_env_utc(2027, 3, 1, 11, 0),
                "\"account\":\"acct-1\",\"lead_id\":\"L01\",\"stage\":\"MQL\"");
    rs_env_line(e, "lead.qualified", rs_env_utc(2027, 3, 1, 11, 0),
                "\"account\":\"acct-2\",\"lead_id\":\"L02\",\"stage\":\"MQL\"");
    rs_env_line(e, "lead.qualified", rs_env_utc(2027, 3, 1, 12, 0),
                "\"account\":\"acct-1\",\"lead_id\":\"L01\",\"stage\":\"SQL\"");
    rs_env_line(e, "lead.qualified", rs_env_utc(2027, 3, 1, 12, 0),
                "\"account\":\"acct-3\",\"lead_id\":\"L03\",\"stage\":\"SQL\"");
    /* M11 business time: created Friday 17:58, called Monday 09:02. */
    rs_env_line(e, "lead.created", rs_env_utc(2027, 3, 5, 17, 58),
                "\"account\":\"acct-4\",\"lead_id\":\"L11\",\"channel\":\"webinar\","
                "\"intent_tier\":\"mql\",\"segment\":\"smb\",\"owner_id\":\"R1\"");
    rs_env_line(
        e, "lead.touched", rs_env_utc(2027, 3, 8, 9, 2),
        "\"account\":\"acct-4\",\"lead_id\":\"L11\",\"rep_id\":\"R1\",\"actor_type\":\"human\","
        "\"channel\":\"call\",\"direction\":\"outbound\",\"connected\":true");
}

static void opp(struct rs_env *e, const char *id, const char *account, const char *lead,
                const char *owner, const char *team, const char *stage, int64_t created,
                int64_t closed, bool won, int64_t amount)
{
    char lead_field[64] = "";

    if (lead != NULL) {
        (void)snprintf(lead_field, sizeof(lead_field), "\"lead_id\":\"%s\",", lead);
    }
    rs_env_line(e, "opportunity.created", created,
                "\"account\":\"%s\",\"opportunity_id\":\"%s\",%s\"owner_id\":\"%s\","
                "\"deal_type\":\"new\",\"amount_minor\":%lld,\"currency\":\"USD\",\"stage\":\"%s\","
                "\"team_id\":\"%s\",\"segment\":\"smb\"",
                account, id, lead_field, owner, (long long)amount, stage, team);
    if (closed != 0) {
        rs_env_line(e, "opportunity.closed", closed,
                    "\"account\":\"%s\",\"opportunity_id\":\"%s\",\"outcome\":\"%s\","
                    "\"amount_minor\":%lld,\"currency\":\"USD\"",
                    account, id, won ? "won" : "lost", (long long)amount);
    }
}

static void handoff(struct rs_env *e, const char *account, const char *opp_id, int64_t ts,
                    bool with_csm)
{
    rs_env_line(e, "handoff.completed", ts,
                "\"account\":\"%s\",\"opportunity_id\":\"%s\",\"ae_id\":\"R1\",%s"
                "\"checklist_complete\":%s,\"segment\":\"smb\"",
                account, opp_id, with_csm ? "\"csm_id\":\"CSM1\"," : "",
                with_csm ? "true" : "false");
}

/*
 * All events, in event-time order per key (send keeps the file's order). Lines are grouped
 * by subject for reading; every key's events are in time order within its group, and no two
 * groups share a key except where the later group's events are later.
 */
static void timeline(struct rs_env *e)
{
    /* Reps: R1 (M15, team-y) from 2027-01-15 at $50k a month; RA..RD ramped long ago and RE
     * new in May with a 50%, 50% ramp, all at $150k (M16, team-x). */
    rs_env_line(e, "rep.onboarded", rs_env_utc(2027, 1, 15, 9, 0),
                "\"rep_id\":\"R1\",\"start_date\":%lld,\"role\":\"ae\",\"team_id\":\"team-y\"",
                (long long)rs_env_utc(2027, 1, 15, 0, 0));
    rs_env_line(
        e, "rep.quota_set", rs_env_utc(2027, 1, 15, 9, 1),
        "\"rep_id\":\"R1\",\"period\":\"2027-01\",\"quota_minor\":%lld,\"currency\":\"USD\"",
        (long long)USD(50000));
    for (char r = 'A'; r <= 'E'; r++) {
        bool ramping = r == 'E';

        rs_env_line(
            e, "rep.onboarded", rs_env_utc(2027, 1, 15, 10, 0),
            "\"rep_id\":\"R%c\",\"start_date\":%lld,\"role\":\"ae\",\"team_id\":\"team-x\"", r,
            (long long)(ramping ? rs_env_utc(2027, 5, 1, 0, 0) : rs_env_utc(2026, 1, 1, 0, 0)));
        rs_env_line(
            e, "rep.quota_set", rs_env_utc(2027, 1, 15, 10, 1),
            "\"rep_id\":\"R%c\",\"period\":\"%s\",\"quota_minor\":%lld,\"currency\":\"USD\"%s", r,
            ramping ? "2027-05" : "2027-01", (long long)USD(150000),
            ramping ? ",\"ramp_schedule\":[50,50]" : "");
    }
    /* R1's bookings for M15: Feb $10k, Mar $20k (O1), Apr $35k, May $52k (the five M13 deals). */
    opp(e, "O2F", "acct-6", NULL, "R1", "team-y", "proposal", rs_env_utc(2027, 1, 20, 12, 0),
        rs_env_utc(2027, 2, 15, 12, 0), true, USD(10000));
    lead_events(e);
    /* M12/M13 in March: O1 from L01 won after 20 days, O3 from L03 lost after 10 days. */
    opp(e, "O1", "acct-1", "L01", "R1", "team-y", "discovery", rs_env_utc(2027, 3, 1, 13, 0),
        rs_env_utc(2027, 3, 21, 13, 0), true, USD(20000));
    opp(e, "O3", "acct-3", "L03", "R1", "team-y", "discovery", rs_env_utc(2027, 3, 1, 14, 0),
        rs_env_utc(2027, 3, 11, 14, 0), false, USD(8000));
    opp(e, "O4", "acct-7", NULL, "R1", "team-y", "proposal", rs_env_utc(2027, 3, 15, 12, 0),
        rs_env_utc(2027, 4, 12, 12, 0), true, USD(35000));
    /* M13/M14 in May: cycles of 95, 60, 41, 35, 20 days, all closed Monday 2027-05-10 12:00. */
    {
        static const struct {
            const char *id, *account;
            int mo, d;
            int64_t amount;
        } may[] = {
            { "O5E", "acct-8", 2, 4, USD(18000) },   { "O5D", "acct-9", 3, 11, USD(12000) },
            { "O5C", "acct-10", 3, 30, USD(10000) }, { "O5B", "acct-11", 4, 5, USD(7000) },
            { "O5A", "acct-12", 4, 20, USD(5000) },
        };

        for (size_t i = 0; i < sizeof(may) / sizeof(may[0]); i++) {
            opp(e, may[i].id, may[i].account, NULL, "R1", "team-y", "proposal",
                rs_env_utc(2027, may[i].mo, may[i].d, 12, 0), rs_env_utc(2027, 5, 10, 12, 0), true,
                may[i].amount);
        }
        /* SLA-04: 18 business hours from Monday 12:00 end Wednesday 12:00. On time: O5A
         * (Tue 10:00), O5B (Wed 11:00), O5C (Mon 15:00); late: O5D (Thu 10:00); O5E's
         * handoff has no CSM and an open checklist. */
        handoff(e, "acct-10", "O5C", rs_env_utc(2027, 5, 10, 15, 0), true);
        handoff(e, "acct-12", "O5A", rs_env_utc(2027, 5, 11, 10, 0), true);
        handoff(e, "acct-8", "O5E", rs_env_utc(2027, 5, 11, 10, 0), false);
        handoff(e, "acct-11", "O5B", rs_env_utc(2027, 5, 12, 11, 0), true);
        handoff(e, "acct-9", "O5D", rs_env_utc(2027, 5, 13, 10, 0), true);
    }
    /* M20/SLA-05: five accounts handed over Thursday 2027-04-01 10:00; first value after 12,
     * 20, 25 and 40 days, the fifth never (past 60 days at the end of the timeline). */
    {
        static const int days[] = { 12, 20, 25, 40, -1 };

        for (int i = 0; i < 5; i++) {
            char account[16], opp_id[16];

            (void)snprintf(account, sizeof(account), "onb-%d", i + 1);
            (void)snprintf(opp_id, sizeof(opp_id), "OC%d", i + 1);
            handoff(e, account, opp_id, rs_env_utc(2027, 4, 1, 10, 0), true);
        }
        for (int i = 0; i < 4; i++) {
            rs_env_line(
                e, "onboarding.milestone", rs_env_utc(2027, 4, 1, 10, 0) + days[i] * DAY,
                "\"account\":\"onb-%d\",\"milestone\":\"first_value\",\"status\":\"completed\"",
                i + 1);
        }
    }
    /* R1 leaves at the end of May; June is team-x's month (M16). */
    rs_env_line(e, "rep.terminated", rs_env_utc(2027, 5, 31, 18, 0),
                "\"rep_id\":\"R1\",\"reason\":\"left\"");
    {
        static const int64_t june[] = { USD(180000), USD(150000), USD(120000), USD(90000),
                                        USD(60000) };

        for (int i = 0; i < 5; i++) {
            char id[8], owner[8], account[16];

            (void)snprintf(id, sizeof(id), "OJ%c", 'A' + i);
            (void)snprintf(owner, sizeof(owner), "R%c", 'A' + i);
            (void)snprintf(account, sizeof(account), "june-%d", i + 1);
            opp(e, id, account, NULL, owner, "team-x", "proposal", rs_env_utc(2027, 6, 1, 12, 0),
                rs_env_utc(2027, 6, 15, 12, 0), true, june[i]);
        }
    }
}

/* ---- the test ------------------------------------------------------------------------ */

static void assert_metrics_over_http(struct rs_env *e)
{
    json_t *v;

    /* M11 worked example: P50 6.0 min, P90 39.0 min, mean 19.9 min, 50% within 5 min. */
    v = metric(e, "name=speed_to_lead&grain=day&bucket=2027-03-01");
    rs_env_assert_near(rs_env_num(v, "count"), 10);
    rs_env_assert_near(rs_env_num(v, "p50"), 6.0 * MIN);
    rs_env_assert_near(rs_env_num(v, "p90"), 39.0 * MIN);
    rs_env_assert_near(rs_env_num(v, "mean"), 19.9 * MIN);
    rs_env_assert_near(rs_env_num(v, "pct_within"), 0.5);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "final");
    assert_int_equal(json_array_size(json_object_get(v, "partitions")), PARTITIONS);
    json_decref(v);
    /* Business time: Friday 17:58 to Monday 09:02 is 4 business minutes, 63 h 04 min wall. */
    v = metric(e, "name=speed_to_lead_business&grain=day&bucket=2027-03-05");
    rs_env_assert_near(rs_env_num(v, "p50"), 4.0 * MIN);
    json_decref(v);
    v = metric(e, "name=speed_to_lead&grain=day&bucket=2027-03-05");
    rs_env_assert_near(rs_env_num(v, "p50"), (63 * 60 + 4) * MIN);
    json_decref(v);

    /* M12, the day cohort of 2027-03-01: 10 leads; MQL L01, L02 and L03 (skipped to SQL);
     * SQL L01, L03; both opportunities created; O1 won, O3 lost. */
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=lead,to=mql");
    rs_env_assert_near(rs_env_num(v, "denominator"), 10);
    rs_env_assert_near(rs_env_num(v, "numerator"), 3);
    rs_env_assert_near(rs_env_num(v, "value"), 0.3);
    json_decref(v);
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=mql,to=sql");
    rs_env_assert_near(rs_env_num(v, "value"), 2.0 / 3.0);
    json_decref(v);
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=sql,to=opp");
    rs_env_assert_near(rs_env_num(v, "value"), 1.0);
    json_decref(v);
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=opp,to=won");
    rs_env_assert_near(rs_env_num(v, "value"), 0.5);
    json_decref(v);
    v = metric(e, "name=win_rate&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), 0.5);
    json_decref(v);

    /* M13 worked example: May's won cycles [20, 35, 41, 60, 95] days: P50 41, mean 50.2. */
    v = metric(e, "name=sales_cycle&grain=month&bucket=2027-05&dims=outcome=won");
    rs_env_assert_near(rs_env_num(v, "count"), 5);
    rs_env_assert_near(rs_env_num(v, "p50"), 41);
    rs_env_assert_near(rs_env_num(v, "mean"), 50.2);
    json_decref(v);
    v = metric(e, "name=sales_cycle&grain=month&bucket=2027-03&dims=outcome=lost");
    rs_env_assert_near(rs_env_num(v, "p50"), 10);
    json_decref(v);

    /* M14: May's 5 won deals, all matured: 3 on time, 1 late, 1 without a CSM. */
    v = metric(e, "name=handoff_completion&grain=month&bucket=2027-05");
    rs_env_assert_near(rs_env_num(v, "denominator"), 5);
    rs_env_assert_near(rs_env_num(v, "value"), 0.6);
    rs_env_assert_near(rs_env_num(v, "completion_rate_any_time"), 0.8);
    json_decref(v);

    /* M15 worked example: start Jan 15, 104% of the full quota in May: 4.5 months. */
    v = metric(e, "name=rep_ramp&grain=month&bucket=2027-01&dims=rep=R1");
    rs_env_assert_near(rs_env_num(v, "value"), 4.5);
    json_decref(v);

    /* M16 worked example in June: team 600 / 675; ramped reps at quota 2 of 4, all 2 of 5. */
    v = metric(e, "name=quota_attainment&grain=month&bucket=2027-06&dims=team=team-x");
    rs_env_assert_near(rs_env_num(v, "value"), 600.0 / 675.0);
    json_decref(v);
    v = metric(e, "name=quota_attainment&grain=month&bucket=2027-06");
    rs_env_assert_near(rs_env_num(v, "value"), 0.5);
    rs_env_assert_near(rs_env_num(v, "share_all_reps_at_quota"), 0.4);
    json_decref(v);
    v = metric(e, "name=quota_attainment&grain=month&bucket=2027-06&dims=rep=RA");
    rs_env_assert_near(rs_env_num(v, "value"), 1.2);
    json_decref(v);

    /* M20 worked example: [12, 20, 25, 40, >60] days: median 25, 60% within 30 days. */
    v = metric(e, "name=time_to_onboard&grain=month&bucket=2027-04&dims=milestone=first_value");
    rs_env_assert_near(rs_env_num(v, "count"), 5);
    rs_env_assert_near(rs_env_num(v, "value"), 25);
    rs_env_assert_near(rs_env_num(v, "pct_within"), 0.6);
    json_decref(v);

    /* SLA compliance of SLA-04 for May's starts: 3 met of 5. */
    v = metric(e, "name=sla_compliance&grain=month&bucket=2027-05&dims=rule=SLA-04");
    rs_env_assert_near(rs_env_num(v, "count"), 5);
    rs_env_assert_near(rs_env_num(v, "value"), 0.6);
    json_decref(v);
}

static void assert_api_edges(struct rs_env *e)
{
    json_t *v;
    const json_t *open;
    char *body = NULL;
    bool o5e = false, o5a = false;

    /* A time series: May and June of handoff completion. */
    v = rs_env_get_json(
        e, "/api/series?name=handoff_completion&grain=month&from=2027-05&to=2027-06", 200);
    assert_int_equal(json_array_size(json_object_get(v, "points")), 2);
    json_decref(v);
    /* Open SLA instances: O5E's handoff never completed; O5A's did. */
    v = rs_env_get_json(e, "/api/sla/open?rule=SLA-04&owner=R1", 200);
    open = json_object_get(v, "open");
    for (size_t i = 0; i < json_array_size(open); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(open, i), "entity_id"));

        o5e |= strcmp(id, "O5E") == 0;
        o5a |= strcmp(id, "O5A") == 0;
    }
    assert_true(o5e);
    assert_false(o5a);
    json_decref(v);
    /* Bad parameters: 400 naming the parameter. */
    v = rs_env_get_json(e, "/api/metric?name=nope", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'name'"));
    json_decref(v);
    v = rs_env_get_json(e, "/api/metric?name=win_rate&grain=year", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'grain'"));
    json_decref(v);
    v = rs_env_get_json(e, "/api/metric?name=win_rate&grain=month&bucket=2027-13", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'bucket'"));
    json_decref(v);
    v = rs_env_get_json(e, "/api/metric?name=win_rate&dims=color=red", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'dims'"));
    json_decref(v);
    v = rs_env_get_json(e, "/api/sla/open?limit=0", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'limit'"));
    json_decref(v);
    /* Health, readiness and Prometheus. */
    assert_int_equal(rs_test_http_get(e->port, "/healthz", &body, 5000), 200);
    free(body);
    /* Ready once every partition is known to be at its end: an EOF or a fetch after its last
     * message, which can come a tick after the last apply. */
    {
        int64_t deadline = rs_tb_now_ms() + 10000;
        int status;

        while ((status = rs_test_http_get(e->port, "/readyz", &body, 5000)) == 503 &&
               rs_tb_now_ms() < deadline) {
            free(body);
            rs_tb_sleep_ms(100);
        }
        assert_int_equal(status, 200);
        v = json_loads(body, 0, NULL);
        free(body);
        assert_true(json_is_true(json_object_get(v, "ready")));
        json_decref(v);
    }
    assert_int_equal(rs_test_http_get(e->port, "/metrics", &body, 5000), 200);
    assert_non_null(strstr(body, "revstream_events_total{type=\"opportunity.closed\"} 14\n"));
    assert_non_null(strstr(body, "revstream_consumer_lag{partition=\"0\"} 0\n"));
    assert_non_null(strstr(body, "revstream_alerts_total{rule=\"SLA-04"));
    assert_non_null(strstr(body, "# TYPE revstream_commit_ms histogram\n"));
    assert_non_null(strstr(body, "revstream_open_timers{rule=\"SLA-05"));
    assert_non_null(strstr(body, "revstream_lmdb_used_bytes "));
    free(body);
}

static void assert_alerts(struct rs_env *e)
{
    struct alert_set as;
    rd_kafka_t *r = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);

    memset(&as, 0, sizeof(as));
    rs_event_decoder_init(&as.dec, 1 << 20);
    (void)rs_tb_read(r, 0, 3000, 30000, on_alert_msg, &as);
    rd_kafka_destroy(r);
    /* SLA-01: L06 answered in 7 min breached and recovered; L01 in 2 min, nothing. */
    assert_alert(&as, "SLA-01|L06|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-01|L06|sla.recovered|resolved", true);
    assert_alert(&as, "SLA-01|L01|sla.warning|L0_warning", false);
    /* SLA-02: L02 was never accepted; L01 was within the hour. */
    assert_alert(&as, "SLA-02|L02|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-02|L01|sla.breached|L1_breach", false);
    /* SLA-03: discovery's 5 days passed for O3 before it was lost on day 10. */
    assert_alert(&as, "SLA-03|O3|sla.breached|L1_breach", true);
    /* SLA-04: O5D late then completed, O5E never; O5A on time. */
    assert_alert(&as, "SLA-04|O5D|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-04|O5D|sla.recovered|resolved", true);
    assert_alert(&as, "SLA-04|O5E|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-04|O5A|sla.breached|L1_breach", false);
    /* SLA-05 (smb, 30 days): onb-4 reached first value on day 40, onb-1 on day 12. */
    assert_alert(&as, "SLA-05|onb-4|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-05|onb-4|sla.recovered|resolved", true);
    assert_alert(&as, "SLA-05|onb-1|sla.breached|L1_breach", false);
    assert_alert(&as, "SLA-05|onb-5|sla.breached|L1_breach", true);
    rs_event_decoder_release(&as.dec);
    free(as.lines);
}

static void assert_metrics_topic(struct rs_env *e)
{
    struct rs_env_metrics mm;
    int64_t sum[8];

    memset(&mm, 0, sizeof(mm));
    rs_env_read_metrics(e, &mm);
    /* M11's day: the parts of every partition sum to the 10 leads, 5 of them within 5 min. */
    assert_true(rs_env_metric_sum(&mm, "speed_to_lead||day|2027-03-01", sum) >= 2);
    assert_int_equal(sum[0], 10);
    assert_int_equal(sum[2], 5);
    /* M12 lead -> MQL for the same cohort: 3 of 10. */
    (void)rs_env_metric_sum(&mm, "funnel_conversion|from=lead,to=mql|day|2027-03-01", sum);
    assert_int_equal(sum[0], 10);
    assert_int_equal(sum[1], 3);
    /* M16: team-x's June bookings, $600k, from five partitions' parts. */
    (void)rs_env_metric_sum(&mm, "quota_attainment|team=team-x|month|2027-06", sum);
    assert_int_equal(sum[0], USD(600000));
    rs_env_metrics_release(&mm);
}

static void assert_inspect(struct rs_env *e)
{
    char out[4200];
    const char *args[] = { RS_BINARY,  "inspect", "-c",    e->config,  "metric",  "--name",
                           "win_rate", "--grain", "month", "--bucket", "2027-03", NULL };
    const char *table[] = { RS_BINARY, "inspect", "-c",     e->config, "--table",
                            "open",    "--rule",  "SLA-04", NULL };
    const char *bad[] = { RS_BINARY, "inspect", "-c", e->config, "metric", "--name", "nope", NULL };
    char *text;
    json_t *v;

    (void)snprintf(out, sizeof(out), "%s/inspect.out", e->dir);
    assert_int_equal(rs_tb_run(args, out), 0);
    text = rs_tb_slurp(out);
    v = json_loads(text, 0, NULL);
    assert_non_null(v);
    rs_env_assert_near(rs_env_num(v, "value"), 0.5);
    json_decref(v);
    free(text);
    assert_int_equal(rs_tb_run(table, out), 0);
    text = rs_tb_slurp(out);
    assert_non_null(strstr(text, "O5E"));
    assert_non_null(strstr(text, "entity_id"));
    free(text);
    assert_int_equal(rs_tb_run(bad, out), 2);
}

static void test_funnel_metrics_and_slas_through_the_broker(void **state)
{
    struct rs_env *e = *state;
    int64_t end = rs_env_utc(2027, 8, 1, 0, 0);

    rs_env_need_broker(e);
    rs_env_write_config(e, "time.max_out_of_orderness = 0s\n"
                           "metrics.funnel_window.opp_won = 90d\n"
                           "sla.stalled_opportunity.stage.discovery = 5d\n"
                           "sla.freshness.enabled = false\n");
    timeline(e);
    rs_env_send(e);
    send_sentinels(e, end);
    rs_env_start(e);
    wait_applied(e, "2027-08-01");
    assert_metrics_over_http(e);
    assert_api_edges(e);
    assert_int_equal(rs_env_stop(e), 0);
    assert_alerts(e);
    assert_metrics_topic(e);
    assert_inspect(e);
}

/*
 * SLA-07 live: a source that falls silent on every partition is alerted by the wall clock
 * (the partitions are caught up), and its next event resolves it.
 */
static void test_freshness_alerts_a_silent_source_live(void **state)
{
    struct rs_env *e = *state;
    struct alert_set as;
    int64_t now = rs_tb_now_ms();
    int64_t deadline;
    rd_kafka_t *r;

    rs_env_need_broker(e);
    rs_env_write_config(e, "calendar.hours = 24x7\n"
                           "sla.freshness.silence = 3s\n"
                           "time.max_out_of_orderness = 0s\n");
    for (int i = 0; i < 6; i++) {
        rs_env_line(e, "lead.disqualified", now + i,
                    "\"source\":\"crm\",\"account\":\"%s\",\"lead_id\":\"F%d\",\"reason\":\"spam\"",
                    account_of(i), i);
    }
    rs_env_send(e);
    rs_env_start(e);
    memset(&as, 0, sizeof(as));
    rs_event_decoder_init(&as.dec, 1 << 20);
    r = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);
    deadline = rs_tb_now_ms() + 30000;
    while (!has_alert(&as, "SLA-07|crm|sla.breached|L1_breach") && rs_tb_now_ms() < deadline) {
        (void)rs_tb_read(r, 1, 500, 1000, on_alert_msg, &as);
    }
    assert_alert(&as, "SLA-07|crm|sla.breached|L1_breach", true);
    rs_env_line(e, "lead.disqualified", rs_tb_now_ms(),
                "\"source\":\"crm\",\"account\":\"acct-1\",\"lead_id\":\"F9\",\"reason\":\"spam\"");
    rs_env_send(e);
    deadline = rs_tb_now_ms() + 30000;
    while (!has_alert(&as, "SLA-07|crm|sla.recovered|resolved") && rs_tb_now_ms() < deadline) {
        (void)rs_tb_read(r, 1, 500, 1000, on_alert_msg, &as);
    }
    assert_alert(&as, "SLA-07|crm|sla.recovered|resolved", true);
    rd_kafka_destroy(r);
    assert_int_equal(rs_env_stop(e), 0);
    rs_event_decoder_release(&as.dec);
    free(as.lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_funnel_metrics_and_slas_through_the_broker, env_setup,
                                        rs_env_teardown),
        cmocka_unit_test_setup_teardown(test_freshness_alerts_a_silent_source_live, env_setup,
                                        rs_env_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
