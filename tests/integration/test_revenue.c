/*
 * test_revenue.c - the customer MRR ledger and the revenue metrics end to end against a real
 * Kafka broker, on the path a user takes: subscription events written as JSON lines and loaded
 * with `revstream send`, `revstream run -c FILE`, values read back from the HTTP API and from
 * the metrics topic (per-partition parts summed as README says).
 *
 * The timeline is METRICS.md §3.3, the month of March (2027 here): 200 customers paying
 * $100,000 at the start; 16 new customers ($8,000, one of them, $200, churns within the
 * month); expansion $5,000; 2 reactivations $1,000; contraction $2,000; 6 churned customers
 * with $3,000 of MRR. So MRR_end $109,000, 212 customers, net new ARR $108,000, quick ratio
 * 2.8, logo churn 2.5%, gross MRR churn 5%, net -1%, ARPA $514.15, NRR 100.2%, GRR 95.2%, and
 * with March's S&M of $90,000, CAC $5,625 (M01-M05, M07 worked examples).
 *
 * Then a backdated contraction (dated February, sent after March was read) restates February
 * and March: the retraction and the corrected facts keep every sum consistent. And an event in
 * a currency without any exchange rate is refused to the dead-letter topic.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS 3
#define DAY        RS_ENV_DAY
#define HOUR       RS_ENV_HOUR
#define USD(x)     ((int64_t)(x)*100)

static int env_setup(void **state)
{
    *state = rs_env_new(PARTITIONS);
    return 0;
}

static int64_t at(int month, int day)
{
    return rs_env_utc(2027, month, day, 10, 0);
}

/* One subscription event of customer `acct` (its only subscription "s-<acct>"). */
static void sub(struct rs_env *e, const char *type, int64_t ts, const char *acct, int64_t mrr,
                const char *status, int64_t period_start, int64_t period_end)
{
    rs_env_line(e, type, ts,
                "\"account\":\"%s\",\"subscription_id\":\"s-%s\",\"mrr_after_minor\":%lld,"
                "\"currency\":\"USD\",\"plan\":\"pro\",\"quantity\":1,"
                "\"billing_interval\":\"month\",\"status\":\"%s\","
                "\"service_period_start\":%lld,\"service_period_end\":%lld",
                acct, acct, (long long)mrr, status, (long long)period_start, (long long)period_end);
}

static void started(struct rs_env *e, int64_t ts, const char *acct, int64_t mrr)
{
    sub(e, "subscription.started", ts, acct, mrr, "active", ts, ts + 31 * DAY);
}

static void churned(struct rs_env *e, int64_t ts, const char *acct, int64_t paid_until)
{
    sub(e, "subscription.churned", ts, acct, 0, "canceled", paid_until - 28 * DAY, paid_until);
}

/* The §3.3 timeline. */
static void march(struct rs_env *e)
{
    char acct[16];

    /* 200 customers since January: 198 at $500, one at $800 (churns), one at $200. */
    for (int i = 1; i <= 200; i++) {
        (void)snprintf(acct, sizeof(acct), "c%03d", i);
        started(e, at(1, 5) + i * 60000, acct,
                i == 199 ? USD(800) : (i == 200 ? USD(200) : USD(500)));
    }
    /* Two customers who paid in January, left at its end, and come back in March. */
    for (int i = 1; i <= 2; i++) {
        (void)snprintf(acct, sizeof(acct), "r%d", i);
        started(e, at(1, 6), acct, USD(500));
        churned(e, at(1, 20), acct, rs_env_utc(2027, 1, 31, 0, 0));
        sub(e, "subscription.reactivated", at(3, 10), acct, USD(500), "active", at(3, 10),
            at(4, 10));
    }
    /* 16 new customers: 15 at $520 and one at $200 who churns on the 20th. */
    for (int i = 1; i <= 16; i++) {
        (void)snprintf(acct, sizeof(acct), "n%02d", i);
        started(e, at(3, 2) + i * HOUR, acct, i == 16 ? USD(200) : USD(520));
    }
    churned(e, at(3, 12), "n16", rs_env_utc(2027, 3, 20, 0, 0));
    /* Expansion: c001-c010 $500 -> $1,000. Contraction: c011-c018 $500 -> $250. */
    for (int i = 1; i <= 18; i++) {
        (void)snprintf(acct, sizeof(acct), "c%03d", i);
        sub(e, i <= 10 ? "subscription.expanded" : "subscription.contracted", at(3, 15) + i * 60000,
            acct, i <= 10 ? USD(1000) : USD(250), "active", at(3, 15), at(4, 15));
    }
    /* Churn of existing customers: c019-c022 ($500) and c199 ($800), paid until the 25th. */
    for (int i = 19; i <= 22; i++) {
        (void)snprintf(acct, sizeof(acct), "c%03d", i);
        churned(e, at(3, 8), acct, rs_env_utc(2027, 3, 25, 0, 0));
    }
    churned(e, at(3, 8), "c199", rs_env_utc(2027, 3, 25, 0, 0));
    /* March S&M, all new-logo. */
    rs_env_line(e, "spend.recorded", at(3, 31),
                "\"spend_id\":\"sm-2027-03\",\"period_start\":\"2027-03-01\","
                "\"period_end\":\"2027-04-01\",\"function\":\"sales\",\"category\":\"salaries\","
                "\"allocation\":\"new_logo\",\"amount_minor\":%lld,\"currency\":\"USD\"",
                (long long)USD(90000));
    /* No rate for CHF was ever given: refused to the dead-letter topic, nothing applied. */
    rs_env_line(e, "subscription.started", at(3, 9),
                "\"account\":\"x-chf\",\"subscription_id\":"
                "\"s-x-chf\",\"mrr_after_minor\":100000,\"currency\":\"CHF\","
                "\"billing_interval\":\"month\",\"status\":\"active\"");
}

/* One event per partition in April: every partition's watermark enters April. */
static void sentinels(struct rs_env *e, int64_t ts)
{
    rd_kafka_t *p = rs_tb_producer_new(e->brokers);
    struct rs_buf b;

    rs_buf_init(&b);
    for (int i = 0; i < PARTITIONS; i++) {
        struct rs_event ev;
        char id[32];

        memset(&ev, 0, sizeof(ev));
        (void)snprintf(id, sizeof(id), "sentinel-%lld-%d", (long long)ts, i);
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

static double detail(const json_t *v, const char *name)
{
    const json_t *d = json_object_get(v, "detail");

    if (!json_is_object(d)) {
        char *text = json_dumps(v, JSON_COMPACT);

        print_error("no detail object in %s\n", text);
        free(text);
    }
    assert_true(json_is_object(d));
    return rs_env_num(d, name);
}

static json_t *metric(struct rs_env *e, const char *query)
{
    char path[512];

    (void)snprintf(path, sizeof(path), "/api/metric?%s", query);
    return rs_env_get_json(e, path, 200);
}

static double expected_mrr_start;

static bool march_started_at(const json_t *v)
{
    const json_t *d = json_object_get(v, "detail");

    return json_is_object(d) &&
           json_number_value(json_object_get(d, "mrr_start")) == expected_mrr_start;
}

/* Wait until March's MRR start reads `mrr_start` (minor units). */
static void wait_march(struct rs_env *e, double mrr_start)
{
    expected_mrr_start = mrr_start;
    rs_env_wait_json(e, "/api/metric?name=mrr&grain=month&bucket=2027-03", march_started_at, 60000);
}

static void assert_march_over_http(struct rs_env *e)
{
    json_t *v;

    v = metric(e, "name=mrr&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), USD(109000));
    rs_env_assert_near(detail(v, "mrr_start"), USD(100000));
    rs_env_assert_near(detail(v, "new_business"), USD(8000));
    rs_env_assert_near(detail(v, "expansion"), USD(5000));
    rs_env_assert_near(detail(v, "reactivation"), USD(1000));
    rs_env_assert_near(detail(v, "contraction"), USD(2000));
    rs_env_assert_near(detail(v, "churn"), USD(3000));
    rs_env_assert_near(detail(v, "fx_impact"), 0);
    rs_env_assert_near(detail(v, "net_new_arr"), USD(108000));
    rs_env_assert_near(detail(v, "quick_ratio"), 2.8);
    json_decref(v);

    v = metric(e, "name=customer_churn&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), 0.025);
    json_decref(v);
    v = metric(e, "name=mrr_churn&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), 0.05);
    rs_env_assert_near(rs_env_num(v, "net_mrr_churn"), -0.01);
    json_decref(v);
    v = metric(e, "name=arpa&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), USD(109000) / 212.0);
    json_decref(v);
    v = metric(e, "name=nrr&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), 1.002);
    rs_env_assert_near(rs_env_num(v, "grr"), 0.952);
    json_decref(v);
    v = metric(e, "name=cac&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), USD(5625));
    json_decref(v);
}

/* The metrics topic: the parts of March's movements and of April's opening balance. */
static void assert_topic(struct rs_env *e, int64_t contraction_feb, int64_t mrr_start_march)
{
    struct rs_env_metrics mm;
    int64_t mov[8], bal_mar[8], bal_apr[8], feb[8];

    memset(&mm, 0, sizeof(mm));
    rs_env_read_metrics(e, &mm);
    assert_true(rs_env_metric_sum(&mm, "ledger_movements||month|2027-03", mov) > 0);
    assert_int_equal(mov[0], USD(8000));
    assert_int_equal(mov[1], USD(5000));
    assert_int_equal(mov[2], USD(1000));
    assert_int_equal(mov[3], USD(2000));
    assert_int_equal(mov[4], USD(3000));
    assert_int_equal(mov[6], 16);
    assert_int_equal(mov[7], 2);
    assert_true(rs_env_metric_sum(&mm, "ledger_balance||month|2027-03", bal_mar) > 0);
    assert_int_equal(bal_mar[0], 200);
    assert_int_equal(bal_mar[1], mrr_start_march);
    assert_true(rs_env_metric_sum(&mm, "ledger_balance||month|2027-04", bal_apr) > 0);
    assert_int_equal(bal_apr[0], 212);
    /* MRR_end = MRR_start + movements + fx_impact, from the topic alone. */
    assert_int_equal(bal_apr[1], bal_mar[1] + mov[0] + mov[1] + mov[2] - mov[3] - mov[4] + mov[5]);
    (void)rs_env_metric_sum(&mm, "ledger_movements||month|2027-02", feb);
    assert_int_equal(feb[3], contraction_feb);
    rs_env_metrics_release(&mm);
}

static size_t dead_letters;
static bool fx_refused;

static void on_dead_letter(void *opaque, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;

    (void)opaque;
    dead_letters++;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, "revstream.reason", &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        len == strlen("fx_rate_missing") && memcmp(v, "fx_rate_missing", len) == 0) {
        fx_refused = true;
    }
}

static void test_march_ledger_through_the_broker(void **state)
{
    struct rs_env *e = *state;
    rd_kafka_t *r;
    json_t *v;

    rs_env_need_broker(e);
    rs_env_write_config(e, "");
    march(e);
    assert_true(rs_env_start(e) > 0);
    rs_env_send(e);
    sentinels(e, at(4, 2));
    wait_march(e, USD(100000));
    assert_march_over_http(e);
    assert_topic(e, 0, USD(100000));

    r = rs_tb_reader_new(e->brokers, e->dlq, 1);
    (void)rs_tb_read(r, 1, 2000, 30000, on_dead_letter, NULL);
    rd_kafka_destroy(r);
    assert_int_equal(dead_letters, 1);
    assert_true(fx_refused);

    /* Backdated: c200 ($200) had contracted to $100 on February 20th. */
    sub(e, "subscription.contracted", rs_env_utc(2027, 2, 20, 10, 0), "c200", USD(100), "active",
        rs_env_utc(2027, 2, 20, 10, 0), rs_env_utc(2027, 3, 20, 10, 0));
    rs_env_send(e);
    wait_march(e, USD(99900));
    v = metric(e, "name=mrr&grain=month&bucket=2027-03");
    rs_env_assert_near(rs_env_num(v, "value"), USD(108900));
    rs_env_assert_near(detail(v, "contraction"), USD(2000)); /* March's own are unchanged */
    json_decref(v);
    v = metric(e, "name=mrr&grain=month&bucket=2027-02");
    rs_env_assert_near(detail(v, "contraction"), USD(100));
    json_decref(v);
    assert_topic(e, USD(100), USD(99900));
    assert_int_equal(rs_env_stop(e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_march_ledger_through_the_broker, env_setup,
                                        rs_env_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
