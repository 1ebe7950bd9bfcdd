#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agg.h"
#include "calendar.h"
#include "finance.h"
#include "ledger.h"
#include "metrics.h"
#include "query.h"
#include "store.h"
#include "tmpdir.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY (24 * 3600 * INT64_C(1000))

/*
 * The ledger cells are written directly (the ledger's own tests cover how events make them),
 * then read back through rs_metrics_read(), as the API does. Amounts are in cents. Every
 * expected value is METRICS.md's worked example, or worked out by hand from its formula.
 */

static void assert_near_at(double got, double want, double tol, const char *file, int line)
{
    if (isnan(got) || fabs(got - want) > tol) {
        fail_msg("%s:%d: got %.12g, want %.12g", file, line, got, want);
    }
}

#define assert_near(got, want, tol) \
    assert_near_at((double)(got), (double)(want), (double)(tol), __FILE__, __LINE__)

struct fx {
    char *dir;
    struct rs_store *st;
    struct rs_zone *zone;
    struct rs_agg *agg;
    struct rs_finance_config fc;
    struct rs_metrics_config mc;
    uint32_t partition; /* where put() writes */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 64, NULL), 0);
    assert_int_equal(rs_zone_new("UTC", &f->zone, NULL), 0);
    f->agg = rs_agg_new();
    rs_finance_config_defaults(&f->fc);
    f->fc.zone = f->zone;
    rs_metrics_config_defaults(&f->mc);
    f->mc.zone = f->zone;
    f->mc.finance = &f->fc;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    rs_agg_free(f->agg);
    rs_zone_free(f->zone);
    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

static int64_t
bucket_of(const struct fx *f, enum rs_grain grain, const char *label)
{
    int64_t b;

    assert_int_equal(rs_bucket_parse(f->zone, grain, label, strlen(label), &b, NULL), 0);
    return b;
}

/* Add n[0..7] to the cell (metric, dims, grain, label) of f->partition in the open batch. */
static void put(struct fx *f, uint16_t metric, const char *dims, enum rs_grain grain,
                const char *label, int64_t n0, int64_t n1, int64_t n2, int64_t n3, int64_t n4,
                int64_t n5, int64_t n6, int64_t n7)
{
    struct rs_agg_key key = { f->partition, metric, grain, bucket_of(f, grain, label), S(dims) };
    struct rs_agg_fact fact = { { n0, n1, n2, n3, n4, n5, n6, n7 }, false, 0 };
    struct rs_err err;

    if (rs_agg_add(f->agg, f->st, f->zone, &key, 0, 0, 1, &fact, &err) != 0) {
        fail_msg("rs_agg_add: %s", err.msg);
    }
}

/* Flush and commit what put() wrote; a new batch stays open for more. */
static void commit(struct fx *f)
{
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
}

static struct rs_metric_value read_p(struct fx *f, uint16_t metric, const char *dims,
                                     enum rs_grain grain, const char *label,
                                     const uint32_t *partitions, size_t n, int64_t watermark)
{
    const struct rs_metric_def *def = rs_metric_by_id(metric);
    struct rs_metric_value v;
    struct rs_err err;

    assert_non_null(def);
    commit(f);
    if (rs_metrics_read(&f->mc, f->st, def, S(dims), grain, bucket_of(f, grain, label), partitions,
                        n, watermark, &v, &err) != 0) {
        fail_msg("rs_metrics_read %s: %s", def->name, err.msg);
    }
    return v;
}

static struct rs_metric_value read_v(struct fx *f, uint16_t metric, const char *dims,
                                     enum rs_grain grain, const char *label)
{
    return read_p(f, metric, dims, grain, label, NULL, 0, INT64_MIN);
}

/* The named detail; fails when it is absent. */
static const struct rs_metric_detail *find_detail(const struct rs_metric_value *v, const char *name)
{
    for (size_t i = 0; i < v->n_detail; i++) {
        if (strcmp(v->detail[i].name, name) == 0) {
            return &v->detail[i];
        }
    }
    fail_msg("no detail '%s'", name);
    return NULL;
}

static double det(const struct rs_metric_value *v, const char *name)
{
    const struct rs_metric_detail *d = find_detail(v, name);

    assert_false(d->is_null);
    return d->value;
}

static void assert_null_reason(const struct rs_metric_value *v, const char *reason)
{
    assert_true(v->is_null);
    assert_non_null(v->null_reason);
    assert_string_equal(v->null_reason, reason);
}

/* ---- METRICS.md §3.3: March ---------------------------------------------------------------- */

/* 200 customers and $100,000 at the start; 16 new ($8,000), expansion $5,000, 2 reactivated
 * ($1,000), contraction $2,000, 6 churned ($3,000) of whom 1 ($200) joined in March. */
static void put_march(struct fx *f)
{
    put(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, "2026-03", 200, 10000000, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, "2026-03", 800000, 500000, 100000, 200000,
        300000, 0, 16, 2);
    put(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, "2026-03", 6, 1, 500000, 200000, 280000, 0, 0,
        0);
}

static void test_m01_march_mrr_end_net_new_arr_quick_ratio(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_march(f);
    v = read_v(f, RS_M01_MRR, "", RS_GRAIN_MONTH, "2026-03");
    assert_false(v.is_null);
    assert_near(v.value, 10900000, 0);              /* $109,000 */
    assert_near(det(&v, "net_new_mrr"), 900000, 0); /* $9,000 */
    assert_near(det(&v, "net_new_arr"), 10800000, 0);
    assert_near(det(&v, "arr"), 130800000, 0);
    assert_near(det(&v, "quick_ratio"), 2.8, 1e-12); /* 14,000 / 5,000 */
    assert_near(det(&v, "customers_end"), 212, 0);
    assert_near(det(&v, "mrr_start"), 10000000, 0);
    assert_near(det(&v, "fx_impact"), 0, 0);
}

static void test_m01_fx_moves_mrr_end_but_not_net_new(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_march(f);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, "2026-03", 0, 0, 0, 0, 0, -50000, 0, 0);
    v = read_v(f, RS_M01_MRR, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 10850000, 0);
    assert_near(det(&v, "net_new_mrr"), 900000, 0);
    assert_near(det(&v, "fx_impact"), -50000, 0);
}

static void test_m01_quick_ratio_null_without_losses(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, "2026-03", 1000, 0, 0, 0, 0, 0, 1, 0);
    v = read_v(f, RS_M01_MRR, "", RS_GRAIN_MONTH, "2026-03");
    assert_true(find_detail(&v, "quick_ratio")->is_null);
    assert_near(v.value, 1000, 0);
}

static void test_m01_day_grain_from_month_balance_and_days(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, "2026-03", 10, 100000, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, "2026-03-02", 5000, 0, 0, 0, 0, 0, 1, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, "2026-03-05", 0, 0, 0, 0, 2000, 0, 0, 0);
    put(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, "2026-03-05", 1, 0, 0, 0, 2000, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, "2026-03-09", 0, 700, 0, 0, 0, 0, 0, 0);
    v = read_v(f, RS_M01_MRR, "", RS_GRAIN_DAY, "2026-03-05");
    assert_near(det(&v, "mrr_start"), 105000, 0);
    assert_near(v.value, 103000, 0);
    assert_near(det(&v, "customers_end"), 10, 0); /* 10 + 1 - 1 */
    v = read_v(f, RS_M04_ARPA, "", RS_GRAIN_DAY, "2026-03-05");
    assert_near(v.value, 10300, 1e-9);
    v = read_v(f, RS_M01_MRR, "", RS_GRAIN_DAY, "2026-03-09");
    assert_near(v.value, 103700, 0);
}

static void test_m02_m03_m04_m05_march(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_march(f);
    v = read_v(f, RS_M02_CUSTOMER_CHURN, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 0.025, 1e-15); /* (6 - 1) / 200 */
    assert_int_equal(v.numerator, 5);
    assert_int_equal(v.denominator, 200);
    v = read_v(f, RS_M03_MRR_CHURN, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 0.05, 1e-15);   /* gross: 5,000 / 100,000 */
    assert_near(v.value2, -0.01, 1e-15); /* net: (5,000 - 6,000) / 100,000 */
    v = read_v(f, RS_M04_ARPA, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value / 100, 514.15, 0.005); /* $109,000 / 212 */
    assert_near(v.value, 10900000.0 / 212.0, 1e-9);
    v = read_v(f, RS_M05_NRR, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 1.002, 1e-12);  /* (100,000 + 5,000 - 2,000 - 2,800) / 100,000 */
    assert_near(v.value2, 0.952, 1e-12); /* (100,000 - 2,000 - 2,800) / 100,000 */
    assert_false(v.low_confidence);
}

static void test_m05_t12_worked_example(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    /* A 1,000 -> 1,300; B 500 -> 500; C 400 -> 0; D 700 -> 600; E 400 -> 450. */
    put(f, RS_MLEDGER_T12, "", RS_GRAIN_MONTH, "2026-03", 5, 300000, 285000, 250000, 0, 0, 0, 0);
    v = read_v(f, RS_M05_NRR_T12, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 0.95, 1e-12);
    assert_near(v.value2, 2500.0 / 3000.0, 1e-12);
    assert_near(v.value2 * 100, 83.3, 0.05);
    assert_true(v.low_confidence); /* 5 customers < min_n 10 */
}

static void test_empty_denominators_are_null_no_base(void **state)
{
    struct fx *f = *state;
    static const uint16_t ids[] = {
        RS_M02_CUSTOMER_CHURN, RS_M03_MRR_CHURN, RS_M04_ARPA, RS_M05_NRR,
        RS_M05_NRR_T12,        RS_M06_LTV,       RS_M07_CAC,  RS_M08_CAC_PAYBACK
    };
    struct rs_metric_value v;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        v = read_v(f, ids[i], "", RS_GRAIN_MONTH, "2026-03");
        assert_null_reason(&v, "no_base");
        assert_near(v.value, 0, 0);
    }
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base");
    v = read_v(f, RS_M10_RULE_OF_40, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base");
    v = read_v(f, RS_M21_COHORT, "cohort=2026-01", RS_GRAIN_MONTH, "2026-03");
    assert_null_reason(&v, "no_base");
    v = read_v(f, RS_M22_FORECAST, "category=commit,measure=net_new_arr,scope=company",
               RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base");
    /* M01 is a balance, not a ratio: an empty ledger has MRR 0. */
    v = read_v(f, RS_M01_MRR, "", RS_GRAIN_MONTH, "2026-03");
    assert_false(v.is_null);
    assert_near(v.value, 0, 0);
}

/* ---- M02 stripe_rolling_30d ---------------------------------------------------------------- */

static void test_m02_stripe_rolling_30d(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    f->fc.customer_churn = RS_CHURN_STRIPE_ROLLING_30D;
    /* April has 30 days: the window is April 1-30, 100 customers on April 1. */
    put(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, "2026-04", 100, 1000000, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, "2026-04-10", 5000, 0, 0, 0, 0, 0, 10, 0);
    put(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, "2026-04-20", 11, 0, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, "2026-05-01", 7, 0, 0, 0, 0, 0, 0, 0);
    v = read_v(f, RS_M02_CUSTOMER_CHURN, "", RS_GRAIN_MONTH, "2026-04");
    assert_near(v.value, 0.1, 1e-15); /* 11 / (100 + 10) */
    assert_near(det(&v, "customers_30d_ago"), 100, 0);
}

/* ---- M06 LTV, M07 CAC ------------------------------------------------------------------------ */

/* Six complete months before March with churn 1, 3, 2, 2, 1, 3% (mean 2.0%). */
static void put_churn_history(struct fx *f, const int64_t churned[6])
{
    static const char *const months[6] = { "2025-09", "2025-10", "2025-11",
                                           "2025-12", "2026-01", "2026-02" };

    for (int i = 0; i < 6; i++) {
        put(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, months[i], 100, 5000000, 0, 0, 0, 0, 0, 0);
        put(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, months[i], churned[i], 0, 0, 0, 0, 0, 0,
            0);
    }
}

static const int64_t churn_2pct[6] = { 1, 3, 2, 2, 1, 3 };

static void test_m06_ltv_worked_example_and_chartmogul(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_march(f);
    put_churn_history(f, churn_2pct);
    /* The current month's own churn (2.5%) must not count. */
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_MONTH, "2026-03", 0, 7800, 0, 0, 0, 1, 1, 0);
    v = read_v(f, RS_M06_LTV, "", RS_GRAIN_MONTH, "2026-03");
    assert_false(v.is_null);
    assert_near(v.value / 100, 20051.89, 0.005); /* 514.15 x 0.78 / 0.02 */
    assert_near(v.value, 10900000.0 / 212.0 * 0.78 / 0.02, 1e-6);
    assert_near(det(&v, "churn"), 0.02, 1e-15);
    assert_near(det(&v, "gross_margin"), 0.78, 1e-15);
    assert_near(det(&v, "gross_margin_reported"), 1, 0);
    assert_false(v.churn_floored);
    f->fc.ltv = RS_LTV_CHARTMOGUL;
    v = read_v(f, RS_M06_LTV, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value / 100, 25707.55, 0.005); /* 514.15 / 0.02 */
}

static void test_m06_gm_default_floor_and_short_history(void **state)
{
    struct fx *f = *state;
    static const int64_t none[6] = { 0, 0, 0, 0, 0, 0 };
    struct rs_metric_value v;

    put_march(f);
    v = read_v(f, RS_M06_LTV, "", RS_GRAIN_MONTH, "2026-03");
    assert_null_reason(&v, "insufficient_sample"); /* no month of churn history */
    put_churn_history(f, none);
    v = read_v(f, RS_M06_LTV, "", RS_GRAIN_MONTH, "2026-03");
    assert_true(v.churn_floored);
    assert_near(det(&v, "gross_margin"), 0.75, 0);
    assert_near(v.value, 10900000.0 / 212.0 * 0.75 / 0.0167, 1e-6);
    /* A quarter's report gives the month its margin. */
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, "2026-Q1", 0, 8000, 0, 0, 0, 1, 1, 0);
    v = read_v(f, RS_M06_LTV, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(det(&v, "gross_margin"), 0.8, 1e-15);
}

static void test_m07_cac_and_ltv_cac(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_march(f);
    put_churn_history(f, churn_2pct);
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_MONTH, "2026-03", 0, 7800, 0, 0, 0, 1, 1, 0);
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, "2026-03", 9000000, 9000000, 0, 0, 5000000,
        4000000, 0, 0);
    v = read_v(f, RS_M07_CAC, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 562500, 1e-9); /* $90,000 / 16 = $5,625 */
    assert_near(v.value2, 3.56, 0.005); /* 20,051.89 / 5,625 */
    assert_near(det(&v, "ltv_cac"), v.value2, 0);
    f->fc.ltv = RS_LTV_CHARTMOGUL;
    v = read_v(f, RS_M07_CAC, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value2, 4.57, 0.005); /* 25,707.55 / 5,625 */
}

static void test_m07_shared_spend_lag_and_no_new_customers(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_march(f);
    /* $60,000 new-logo, $20,000 expansion (never CAC), $30,000 shared. */
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, "2026-03", 11000000, 6000000, 2000000, 3000000, 0,
        0, 0, 0);
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, "2026-02", 1600000, 1600000, 0, 0, 0, 0, 0, 0);
    v = read_v(f, RS_M07_CAC, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 9000000.0 / 16, 1e-9);
    f->fc.shared_spend_new_logo = 0.5;
    v = read_v(f, RS_M07_CAC, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 7500000.0 / 16, 1e-9);
    f->fc.spend_lag_periods = 1;
    v = read_v(f, RS_M07_CAC, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 100000, 1e-9); /* February's $16,000 over March's 16 */
    v = read_v(f, RS_M07_CAC, "", RS_GRAIN_MONTH, "2026-04");
    assert_null_reason(&v, "no_base");
}

/* ---- M08 payback, M09 magic number ----------------------------------------------------------- */

/* Q1 S&M $270,000 (all new-logo); Q2 new business $24,000 from 48 customers at 78% GM. */
static void put_q2(struct fx *f)
{
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_QUARTER, "2026-Q1", 27000000, 27000000, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, "2026-Q2", 2400000, 300000, 0, 0, 200000, 0,
        48, 0);
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, "2026-Q2", 0, 7800, 0, 0, 0, 1, 1, 0);
}

static void test_m08_payback_bessemer_and_unit(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_q2(f);
    v = read_v(f, RS_M08_CAC_PAYBACK, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 14.4, 0.05); /* 270,000 / (24,000 x 0.78) */
    assert_near(v.value, 270000.0 / (24000.0 * 0.78), 1e-9);
    assert_false(v.flagged_long);
    f->fc.payback = RS_PAYBACK_UNIT;
    v = read_v(f, RS_M08_CAC_PAYBACK, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(det(&v, "cac"), 562500, 1e-9);  /* $5,625 */
    assert_near(det(&v, "new_arpa"), 50000, 0); /* $500 */
    assert_near(v.value, 5625.0 / (500.0 * 0.78), 1e-9);
    f->fc.payback = RS_PAYBACK_NET;
    v = read_v(f, RS_M08_CAC_PAYBACK, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 270000.0 / (25000.0 * 0.78), 1e-9); /* net new $25,000 */
}

static void test_m08_bessemer_11_months_long_and_nonpositive(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    /* Bessemer: $100k new CMRR at 70% GM with $770k S&M -> 11 months. */
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_QUARTER, "2025-Q4", 77000000, 0, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, "2026-Q1", 10000000, 0, 0, 0, 0, 0, 20, 0);
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, "2026-Q1", 0, 7000, 0, 0, 0, 1, 1, 0);
    v = read_v(f, RS_M08_CAC_PAYBACK, "", RS_GRAIN_QUARTER, "2026-Q1");
    assert_near(v.value, 11.0, 1e-12);
    /* $10k new MRR on the same spend at the default GM: 102.7 months, reported and flagged. */
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_QUARTER, "2026-Q1", 77000000, 0, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, "2026-Q2", 1000000, 0, 0, 0, 3000000, 0, 2,
        0);
    v = read_v(f, RS_M08_CAC_PAYBACK, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 770000.0 / (10000.0 * 0.75), 1e-9); /* default GM */
    assert_true(v.flagged_long);
    f->fc.payback = RS_PAYBACK_NET; /* net new MRR -$20,000 */
    v = read_v(f, RS_M08_CAC_PAYBACK, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base");
}

static void test_m09_magic_number_and_variants(void **state)
{
    struct fx *f = *state;
    int64_t q2_end = bucket_of(f, RS_GRAIN_QUARTER, "2026-Q3");
    struct rs_metric_value v;

    put_q2(f); /* net new MRR 24,000 + 3,000 - 2,000 = $25,000 */
    v = read_p(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2", NULL, 0, q2_end - DAY);
    assert_near(v.value, 1.11, 0.005); /* 300,000 / 270,000 */
    assert_near(v.value, 300000.0 / 270000.0, 1e-12);
    assert_true(v.qtd);
    assert_true(v.provisional);
    v = read_p(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2", NULL, 0, q2_end + 40 * DAY);
    assert_false(v.qtd);
    assert_false(v.provisional);
    f->fc.magic = RS_MAGIC_NEW_LOGO_ONLY;
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 288000.0 / 270000.0, 1e-12);
    f->fc.magic = RS_MAGIC_GM_ADJUSTED;
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 300000.0 * 0.78 / 270000.0, 1e-12);
    f->fc.magic = RS_MAGIC_SAME_QUARTER; /* no Q2 spend */
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base");
    f->fc.magic = RS_MAGIC_GAAP; /* revenue $1,000,000 -> $1,075,000 */
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base"); /* Q2 has a margin report but no Q1 revenue */
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, "2026-Q1", 100000000, 0, 0, 0, 0, 0, 1, 0);
    put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, "2026-Q2", 107500000, 0, 0, 0, 0, 0, 0, 0);
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 75000.0 * 4 / 270000.0, 1e-12);
    f->fc.magic = RS_MAGIC_T4Q;
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, "2025-Q4", 100000, 0, 0, 0, 0, 0, 1, 0);
    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_QUARTER, "2025-Q3", 3000000, 0, 0, 0, 0, 0, 0, 0);
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, (300000.0 + 12000.0) / 300000.0, 1e-12);
}

static void test_m09_negative_net_new_is_reported(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put(f, RS_MLEDGER_SPEND, "", RS_GRAIN_QUARTER, "2026-Q1", 1000000, 0, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, "2026-Q2", 0, 0, 0, 0, 5000, 0, 0, 0);
    v = read_v(f, RS_M09_MAGIC_NUMBER, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_false(v.is_null);
    assert_near(v.value, -60000.0 / 1000000.0, 1e-15);
}

/* ---- M10 rule of 40 ----------------------------------------------------------------------------
 */

static void test_m10_rule_of_40_worked_example(void **state)
{
    struct fx *f = *state;
    static const char *const now[4] = { "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2" };
    static const char *const before[4] = { "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2" };
    struct rs_metric_value v;

    /* TTM revenue $12.0M vs $9.0M; FCF 10% of it. Fields: fcf only (bit 2). */
    for (int i = 0; i < 4; i++) {
        put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, now[i], 300000000, 0, 0, 30000000, 0, 4,
            1, 0);
        put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, before[i], 225000000, 0, 0, 0, 0, 4, 1,
            0);
    }
    v = read_v(f, RS_M10_RULE_OF_40, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 43.3, 0.05);
    assert_near(v.value, 100.0 / 3.0 + 10.0, 1e-9);
    assert_near(det(&v, "margin_pct"), 10, 1e-9);
    f->fc.r40 = RS_R40_EBITDA; /* never reported */
    v = read_v(f, RS_M10_RULE_OF_40, "", RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "insufficient_sample");
}

static void test_m10_months_and_year_reports(void **state)
{
    struct fx *f = *state;
    static const char *const months[3] = { "2025-10", "2025-11", "2025-12" };
    static const char *const q[3] = { "2025-Q1", "2025-Q2", "2025-Q3" };
    struct rs_metric_value v;

    /* 2025: three quarter reports and Q4 as three month reports; 2024 as one year report. */
    for (int i = 0; i < 3; i++) {
        put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, q[i], 300, 0, 0, 30, 0, 4, 1, 0);
        put(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_MONTH, months[i], 100, 0, 0, 10, 0, 4, 1, 0);
    }
    put(f, RS_MLEDGER_FINANCIALS, "period=year", RS_GRAIN_QUARTER, "2024-Q1", 1000, 0, 0, 0, 0, 4,
        1, 0);
    v = read_v(f, RS_M10_RULE_OF_40, "", RS_GRAIN_QUARTER, "2025-Q4");
    assert_near(v.value, 20.0 + 10.0, 1e-9); /* 1,200 vs 1,000; FCF 120 / 1,200 */
}

/* ---- M21 cohorts ---------------------------------------------------------------------------- */

static void test_m21_cohort_nrr_worked_example(void **state)
{
    struct fx *f = *state;
    const char *jan = "cohort=2026-01";
    struct rs_metric_value v;

    put(f, RS_MLEDGER_COHORT, jan, RS_GRAIN_MONTH, "2026-01", 1000000, 0, 0, 0, 0, 0, 20, 0);
    put(f, RS_MLEDGER_COHORT, jan, RS_GRAIN_MONTH, "2026-02", 0, 50000, 0, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_COHORT, jan, RS_GRAIN_MONTH, "2026-03", 0, 80000, 20000, 0, 0, 0, 0, 0);
    put(f, RS_MLEDGER_COHORT, jan, RS_GRAIN_MONTH, "2026-04", 0, 30000, 0, 100000, 0, 0, 0, 0);
    /* Another cohort's cells are not this one's. */
    put(f, RS_MLEDGER_COHORT, "cohort=2026-02", RS_GRAIN_MONTH, "2026-04", 500000, 900000, 0, 0, 0,
        0, 5, 0);
    v = read_v(f, RS_M21_COHORT, jan, RS_GRAIN_MONTH, "2026-04");
    assert_near(v.value, 1.04, 1e-12); /* (10,000 + 1,600 - 200 - 1,000) / 10,000 */
    assert_near(det(&v, "offset"), 3, 0);
    assert_near(det(&v, "cum_expansion"), 160000, 0);
    assert_near(det(&v, "expansion"), 30000, 0);
    assert_near(det(&v, "cohort_value"), 1000000, 0);
    assert_near(det(&v, "expansion_share"), 1, 0); /* no new business at offset 3 */
    v = read_v(f, RS_M21_COHORT, jan, RS_GRAIN_MONTH, "2026-02");
    assert_near(v.value, 1.05, 1e-12);
    v = read_v(f, RS_M21_COHORT, jan, RS_GRAIN_MONTH, "2025-12");
    assert_null_reason(&v, "no_base");
}

/* ---- M22 forecast accuracy ------------------------------------------------------------------ */

static void test_m22_company_net_new_arr(void **state)
{
    struct fx *f = *state;
    const char *dims = "category=commit,measure=net_new_arr,scope=company";
    struct rs_metric_value v;

    /* Commit $300k locked (a later $310k version is not evaluated); actual 12 x $22,500. */
    put(f, RS_MLEDGER_FORECAST, dims, RS_GRAIN_QUARTER, "2026-Q2", 30000000, 1, 31000000, 2, 0, 0,
        0, 0);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, "2026-Q2", 2250000, 0, 0, 0, 0, 0, 10, 0);
    v = read_v(f, RS_M22_FORECAST, dims, RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 0.889, 0.0005);
    assert_near(v.value, 1.0 - 30000.0 / 270000.0, 1e-12);
    assert_near(v.value2, 0.111, 0.0005); /* bias +11.1% */
    assert_near(det(&v, "attainment_vs_forecast"), 0.9, 1e-12);
    assert_near(det(&v, "actual"), 27000000, 0);
}

static void test_m22_ending_arr_and_zero_actual(void **state)
{
    struct fx *f = *state;
    const char *dims = "category=best_case,measure=ending_arr,scope=company";
    struct rs_metric_value v;

    put(f, RS_MLEDGER_FORECAST, dims, RS_GRAIN_MONTH, "2026-03", 120000000, 1, 0, 1, 0, 0, 0, 0);
    v = read_v(f, RS_M22_FORECAST, dims, RS_GRAIN_MONTH, "2026-03");
    assert_null_reason(&v, "no_base"); /* A = 0 */
    assert_near(det(&v, "abs_error"), 120000000, 0);
    put_march(f); /* ending ARR 12 x $109,000 = $1,308,000 */
    v = read_v(f, RS_M22_FORECAST, dims, RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 1.0 - 108000.0 / 1308000.0, 1e-12);
}

static void put_reps(struct fx *f)
{
    static const char *const ids[3] = { "r1", "r2", "r3" };
    static const int64_t fc[3] = { 100, 80, 60 }, actual[3] = { 90, 100, 40 };
    char dims[96], rep[16];

    for (int i = 0; i < 3; i++) {
        (void)snprintf(dims, sizeof(dims), "category=commit,measure=bookings,scope=rep,scope_id=%s",
                       ids[i]);
        (void)snprintf(rep, sizeof(rep), "rep=%s", ids[i]);
        put(f, RS_MLEDGER_FORECAST, dims, RS_GRAIN_QUARTER, "2026-Q2", fc[i], 1, fc[i], 1, 0, 0, 0,
            0);
        put(f, RS_M16_QUOTA, rep, RS_GRAIN_QUARTER, "2026-Q2", actual[i], 1, 0, 0, 0, 0, 0, 0);
    }
}

static void test_m22_wmape_across_reps(void **state)
{
    struct fx *f = *state;
    struct rs_metric_value v;

    put_reps(f);
    /* A rep with a forecast that has no lock yet is not a unit. */
    put(f, RS_MLEDGER_FORECAST, "category=commit,measure=bookings,scope=rep,scope_id=r4",
        RS_GRAIN_QUARTER, "2026-Q2", 0, 0, 500, 1, 0, 0, 0, 0);
    v = read_v(f, RS_M22_FORECAST, "category=commit,measure=bookings,scope=rep", RS_GRAIN_QUARTER,
               "2026-Q2");
    assert_near(det(&v, "wmape"), 0.217, 0.0005); /* 50 / 230 */
    assert_near(det(&v, "wmape"), 50.0 / 230.0, 1e-12);
    assert_near(v.value, 1.0 - 50.0 / 230.0, 1e-12); /* 78.3% */
    assert_near(det(&v, "units"), 3, 0);
    assert_true(v.low_confidence);
    v = read_v(f, RS_M22_FORECAST, "category=commit,measure=bookings,scope=rep,scope_id=r2",
               RS_GRAIN_QUARTER, "2026-Q2");
    assert_near(v.value, 0.8, 1e-12);   /* 1 - 20 / 100 */
    assert_near(v.value2, -0.2, 1e-12); /* under-forecast */
    v = read_v(f, RS_M22_FORECAST, "category=commit,measure=bookings,scope=rep,scope_id=r4",
               RS_GRAIN_QUARTER, "2026-Q2");
    assert_null_reason(&v, "no_base"); /* no lock */
}

/* ---- status, partitions, routing ------------------------------------------------------------ */

static void test_provisional_until_35_days_after_the_bucket(void **state)
{
    struct fx *f = *state;
    int64_t april = bucket_of(f, RS_GRAIN_MONTH, "2026-04");
    struct rs_metric_value v;

    put_march(f);
    v = read_p(f, RS_M02_CUSTOMER_CHURN, "", RS_GRAIN_MONTH, "2026-03", NULL, 0,
               april + 35 * DAY - 1);
    assert_true(v.provisional);
    v = read_p(f, RS_M02_CUSTOMER_CHURN, "", RS_GRAIN_MONTH, "2026-03", NULL, 0, april + 35 * DAY);
    assert_false(v.provisional);
    assert_near(v.value, 0.025, 1e-15);
}

static void test_reads_sum_the_partitions_asked_for(void **state)
{
    struct fx *f = *state;
    static const uint32_t one[] = { 1 };
    struct rs_metric_value v;

    put(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, "2026-03", 10, 10000, 0, 0, 0, 0, 0, 0);
    f->partition = 1;
    put(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, "2026-03", 30, 50000, 0, 0, 0, 0, 0, 0);
    v = read_v(f, RS_M04_ARPA, "", RS_GRAIN_MONTH, "2026-03");
    assert_near(v.value, 60000.0 / 40.0, 1e-12);
    v = read_p(f, RS_M04_ARPA, "", RS_GRAIN_MONTH, "2026-03", one, 1, INT64_MIN);
    assert_near(v.value, 50000.0 / 30.0, 1e-12);
}

static void test_routing_refusals(void **state)
{
    struct fx *f = *state;
    const struct rs_metric_def *mrr = rs_metric_by_name("mrr", 3);
    const struct rs_metric_def *magic = rs_metric_by_id(RS_M09_MAGIC_NUMBER);
    struct rs_metric_value v;
    struct rs_err err;

    assert_non_null(mrr);
    assert_int_equal(mrr->id, RS_M01_MRR);
    assert_int_equal(rs_metrics_read(&f->mc, f->st, magic, S(""), RS_GRAIN_MONTH, 0, NULL, 0,
                                     INT64_MIN, &v, &err),
                     RS_EINVAL);
    assert_int_equal(rs_metrics_read(&f->mc, f->st, rs_metric_by_id(RS_M21_COHORT), S(""),
                                     RS_GRAIN_MONTH, 0, NULL, 0, INT64_MIN, &v, &err),
                     RS_EINVAL);
    f->mc.finance = NULL;
    assert_int_equal(
        rs_metrics_read(&f->mc, f->st, mrr, S(""), RS_GRAIN_MONTH, 0, NULL, 0, INT64_MIN, &v, &err),
        RS_EINVAL);
}

static void test_every_finance_name_is_defined(void **state)
{
    static const char *const names[] = {
        "mrr",
        "customer_churn",
        "mrr_churn",
        "arpa",
        "nrr",
        "nrr_t12",
        "ltv",
        "cac",
        "cac_payback",
        "magic_number",
        "rule_of_40",
        "cohort_expansion",
        "forecast_accuracy",
        "ledger_movements",
        "ledger_customers",
        "ledger_balance",
        "ledger_t12",
        "ledger_cohort",
        "cash",
        "spend",
        "forecast",
        "financials",
        "ledger_dq",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (rs_metric_by_name(names[i], strlen(names[i])) == NULL) {
            fail_msg("no metric '%s'", names[i]);
        }
    }
    assert_int_equal(rs_metric_by_name("ledger_dq", 9)->id, RS_MLEDGER_DQ);
}

static void test_raw_cells_evaluate_for_the_topic(void **state)
{
    struct fx *f = *state;
    struct rs_agg_cell cell;
    struct rs_metric_value v;
    int64_t march = bucket_of(f, RS_GRAIN_MONTH, "2026-03");
    int64_t n[RS_AGG_FIELDS] = { 800000, 500000, 100000, 200000, 300000, -1000, 16, 2 };

    rs_agg_cell_init(&cell);
    memcpy(cell.n, n, sizeof(n));
    rs_metric_eval(&f->mc, rs_metric_by_id(RS_MLEDGER_MOVEMENTS), S(""), RS_GRAIN_MONTH, march,
                   &cell, INT64_MIN, &v);
    assert_false(v.is_null);
    assert_near(v.value, 899000, 0); /* net movement, FX included */
    assert_int_equal(v.count, 18);
    assert_true(v.provisional);
    memset(cell.n, 0, sizeof(cell.n));
    rs_metric_eval(&f->mc, rs_metric_by_id(RS_MLEDGER_T12), S(""), RS_GRAIN_MONTH, march, &cell,
                   INT64_MIN, &v);
    assert_null_reason(&v, "no_base");
    rs_metric_eval(&f->mc, rs_metric_by_id(RS_M01_MRR), S(""), RS_GRAIN_MONTH, march, &cell,
                   INT64_MIN, &v);
    assert_null_reason(&v, "computed_on_read");
    rs_agg_cell_release(&cell);
}

static void test_option_words(void **state)
{
    (void)state;
    assert_int_equal(rs_finance_option("ltv_formula", "profitwell"), RS_LTV_PROFITWELL);
    assert_int_equal(rs_finance_option("magic_number_variant", "t4q"), RS_MAGIC_T4Q);
    assert_int_equal(rs_finance_option("cac_payback_variant", "unit"), RS_PAYBACK_UNIT);
    assert_int_equal(rs_finance_option("rule_of_40_margin", "operating_margin"),
                     RS_R40_OPERATING_MARGIN);
    assert_int_equal(rs_finance_option("customer_churn_formula", "stripe_rolling_30d"),
                     RS_CHURN_STRIPE_ROLLING_30D);
    assert_int_equal(rs_finance_option("ltv_formula", "nope"), -1);
    assert_int_equal(rs_finance_option("nope", "fcf"), -1);
    assert_non_null(strstr(rs_finance_option_words("rule_of_40_margin"), "ebitda"));
}

static const char *query_param(void *opaque, const char *name)
{
    const char *const *kv = opaque;

    for (; kv[0] != NULL; kv += 2) {
        if (strcmp(kv[0], name) == 0) {
            return kv[1];
        }
    }
    return NULL;
}

static void test_query_json_has_detail_and_flags(void **state)
{
    struct fx *f = *state;
    const char *kv[] = { "name", "mrr", "grain", "month", "bucket", "2026-03", NULL };
    struct rs_query_params params = { query_param, kv };
    struct rs_query_ctx ctx = { f->st, &f->mc, NULL, 0, INT64_MIN };
    json_t *out = NULL, *detail;
    struct rs_err err;

    put_march(f);
    put(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, "2026-04", 1000, 0, 0, 0, 0, 0, 1, 0);
    commit(f);
    if (rs_query_metric(&ctx, &params, &out, &err) != 0) {
        fail_msg("rs_query_metric: %s", err.msg);
    }
    assert_near(json_real_value(json_object_get(out, "value")), 10900000, 0);
    detail = json_object_get(out, "detail");
    assert_true(json_is_object(detail));
    assert_near(json_real_value(json_object_get(detail, "quick_ratio")), 2.8, 1e-12);
    assert_near(json_real_value(json_object_get(detail, "net_new_arr")), 10800000, 0);
    assert_true(json_is_false(json_object_get(out, "qtd")));
    assert_true(json_is_false(json_object_get(out, "churn_floored")));
    json_decref(out);
    /* April has no losses: quick_ratio is JSON null, not 0. */
    kv[5] = "2026-04";
    assert_int_equal(rs_query_metric(&ctx, &params, &out, &err), 0);
    assert_true(json_is_null(json_object_get(json_object_get(out, "detail"), "quick_ratio")));
    json_decref(out);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_m01_march_mrr_end_net_new_arr_quick_ratio),
        T(test_m01_fx_moves_mrr_end_but_not_net_new),
        T(test_m01_quick_ratio_null_without_losses),
        T(test_m01_day_grain_from_month_balance_and_days),
        T(test_m02_m03_m04_m05_march),
        T(test_m05_t12_worked_example),
        T(test_empty_denominators_are_null_no_base),
        T(test_m02_stripe_rolling_30d),
        T(test_m06_ltv_worked_example_and_chartmogul),
        T(test_m06_gm_default_floor_and_short_history),
        T(test_m07_cac_and_ltv_cac),
        T(test_m07_shared_spend_lag_and_no_new_customers),
        T(test_m08_payback_bessemer_and_unit),
        T(test_m08_bessemer_11_months_long_and_nonpositive),
        T(test_m09_magic_number_and_variants),
        T(test_m09_negative_net_new_is_reported),
        T(test_m10_rule_of_40_worked_example),
        T(test_m10_months_and_year_reports),
        T(test_m21_cohort_nrr_worked_example),
        T(test_m22_company_net_new_arr),
        T(test_m22_ending_arr_and_zero_actual),
        T(test_m22_wmape_across_reps),
        T(test_provisional_until_35_days_after_the_bucket),
        T(test_reads_sum_the_partitions_asked_for),
        T(test_routing_refusals),
        T(test_every_finance_name_is_defined),
        T(test_raw_cells_evaluate_for_the_topic),
        T(test_option_words),
        T(test_query_json_has_detail_and_flags),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
