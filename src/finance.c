#include "finance.h"

#include "ledger.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * How the revenue metrics are read.
 *
 * Every value is a function of raw ledger cells (ledger.h), each summed over the partitions
 * asked for: a bucket's movements, its customer facts and its start balance give the period
 * (struct period); the ratios then take their parts from one or more periods. Amounts stay in
 * the reporting currency's minor units; rates are fractions (0.025 is 2.5%) except M10, which
 * is in percentage points as the Rule of 40 is quoted.
 *
 * Decisions the specification leaves open:
 * - Day grain: the balance at a day's start is its month's start balance plus the day cells
 *   of that month before it (there are no daily balance snapshots).
 * - Net new MRR leaves fx_impact out (§3.1 lists it apart); MRR_end includes it. M21 leaves
 *   FX out of the cohort's MRR (M21 edge cases) and reports it as a detail.
 * - stripe_rolling_30d counts customers (the ledger has no subscriber counts): churned in the
 *   30 days before the bucket end over customers 30 days before it plus new and reactivated
 *   customers in those days.
 * - M06 baremetrics and stripe divide by the month's own customer churn (no smoothing; stripe
 *   floors only a zero churn); profitwell divides by the mean net MRR churn (M03) of the six
 *   previous months, floored.
 * - M07 for a quarter and M22 bookings: LTV is the quarter's last month's; company bookings
 *   are the sum of the per-rep M16 cells (credited new deals). ARR forecasts of a team or a
 *   rep have no actual (the ledger has no owner): null no_base.
 * - M08 unit form divides the prior period's new-logo spend by the period's new customers
 *   (the CAC of M08's lag), which makes it equal to the Bessemer form when all spend is
 *   new-logo, as in METRICS.md's example.
 * - M10 quarters: a quarter report, else the sum of its three month reports; a TTM window
 *   that is a calendar year may use the year report.
 */

#define MS_PER_DAY   (24 * INT64_C(3600000))
#define ROLLING_DAYS 30  /* stripe_rolling_30d */
#define LTV_MONTHS   6   /* churn_avg6: six complete months before the current one */
#define PAYBACK_LONG 60  /* M08: reported, but flagged as very long */
#define COHORT_MAX   600 /* months a cohort is followed (50 years) */
#define GM_PRESENT   1   /* FINANCIALS n5 bit: gross margin reported */
#define BP_PER_ONE   10000.0

void rs_finance_config_defaults(struct rs_finance_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->lateness_ms = 35 * MS_PER_DAY;
    cfg->min_n = 10;
    cfg->gross_margin_default = 0.75;
    cfg->churn_floor_monthly = 0.0167;
    cfg->shared_spend_new_logo = 1.0;
    cfg->spend_lag_periods = 0;
    cfg->ltv = RS_LTV_ARPA_GM_OVER_CHURN_AVG6;
    cfg->magic = RS_MAGIC_ARR_PRIOR_QUARTER;
    cfg->payback = RS_PAYBACK_BESSEMER_NEW_MRR;
    cfg->r40 = RS_R40_FCF;
    cfg->customer_churn = RS_CHURN_CHARTMOGUL_B2B;
}

/* ---- option words ---------------------------------------------------------------------- */

struct option_words {
    const char *key;
    const char *const *words; /* by enum value */
    size_t n;
    const char *list;
};

static const char *const ltv_words[] = { "arpa_gm_over_churn_avg6", "chartmogul", "baremetrics",
                                         "stripe", "profitwell" };
static const char *const magic_words[] = { "arr_prior_quarter", "gaap",
                                           "same_quarter",      "t4q",
                                           "gm_adjusted",       "new_logo_only" };
static const char *const payback_words[] = { "bessemer_new_mrr", "net", "unit" };
static const char *const r40_words[] = { "fcf", "ebitda", "operating_margin" };
static const char *const churn_words[] = { "chartmogul_b2b", "stripe_rolling_30d" };

#define WORDS(key, w, list)                    \
    {                                          \
        key, w, sizeof(w) / sizeof(w[0]), list \
    }

static const struct option_words options[] = {
    WORDS("ltv_formula", ltv_words,
          "arpa_gm_over_churn_avg6, chartmogul, baremetrics, stripe, "
          "profitwell"),
    WORDS("magic_number_variant", magic_words,
          "arr_prior_quarter, gaap, same_quarter, t4q, gm_adjusted, new_logo_only"),
    WORDS("cac_payback_variant", payback_words, "bessemer_new_mrr, net, unit"),
    WORDS("rule_of_40_margin", r40_words, "fcf, ebitda, operating_margin"),
    WORDS("customer_churn_formula", churn_words, "chartmogul_b2b, stripe_rolling_30d"),
};

static const struct option_words *option_of(const char *key)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (strcmp(options[i].key, key) == 0) {
            return &options[i];
        }
    }
    return NULL;
}

int rs_finance_option(const char *key, const char *word)
{
    const struct option_words *o = option_of(key);

    for (size_t i = 0; o != NULL && i < o->n; i++) {
        if (strcmp(o->words[i], word) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *rs_finance_option_words(const char *key)
{
    const struct option_words *o = option_of(key);

    return o != NULL ? o->list : "";
}

/* ---- reading cells ---------------------------------------------------------------------- */

/* One read: where, over which partitions, and where a failure goes. */
struct rd {
    const struct rs_finance_config *cfg;
    struct rs_store *st;
    const uint32_t *partitions;
    size_t n;
    struct rs_err *err;
};

static struct rs_str str_of(const char *s)
{
    return (struct rs_str){ s, strlen(s) };
}

static int cell_read(const struct rd *r, uint16_t metric, struct rs_str dims, enum rs_grain grain,
                     int64_t bucket, int64_t n[RS_AGG_FIELDS])
{
    struct rs_agg_key key = { 0, metric, grain, bucket, dims };
    struct rs_agg_cell cell;
    int rc;

    rs_agg_cell_init(&cell);
    rc = rs_agg_read(r->st, &key, r->partitions, r->n, &cell, r->err);
    memcpy(n, cell.n, sizeof(cell.n));
    rs_agg_cell_release(&cell);
    return rc;
}

static int64_t prev_bucket(const struct rd *r, enum rs_grain grain, int64_t bucket)
{
    return rs_bucket_start(r->cfg->zone, grain, bucket - 1);
}

static int64_t shift_back(const struct rd *r, enum rs_grain grain, int64_t bucket, int periods)
{
    for (int i = 0; i < periods; i++) {
        bucket = prev_bucket(r, grain, bucket);
    }
    return bucket;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        return INT64_MIN;
    }
    return a + b;
}

/* ---- the value being built --------------------------------------------------------------- */

static void detail(struct rs_metric_value *out, const char *name, double v)
{
    if (out->n_detail < RS_METRIC_DETAIL_MAX) {
        out->detail[out->n_detail++] = (struct rs_metric_detail){ name, v, false };
    }
}

static void detail_null(struct rs_metric_value *out, const char *name)
{
    if (out->n_detail < RS_METRIC_DETAIL_MAX) {
        out->detail[out->n_detail++] = (struct rs_metric_detail){ name, 0, true };
    }
}

/* A detail that is a ratio: null over an empty denominator. */
static void detail_ratio(struct rs_metric_value *out, const char *name, double num, double den)
{
    if (den != 0) {
        detail(out, name, num / den);
    } else {
        detail_null(out, name);
    }
}

static void set_null(struct rs_metric_value *out, const char *reason)
{
    out->is_null = true;
    out->null_reason = reason;
    out->value = 0;
}

static void set_low_confidence(const struct rd *r, struct rs_metric_value *out, int64_t units)
{
    out->count = units;
    out->low_confidence = units < (int64_t)r->cfg->min_n;
}

/* ---- a period: movements, customer facts, balances ---------------------------------------- */

enum {
    MV_NEW,
    MV_EXPANSION,
    MV_REACTIVATION,
    MV_CONTRACTION,
    MV_CHURN,
    MV_FX,
    MV_NEW_CUST,
    MV_REACT_CUST
};
enum { CU_CHURNED, CU_JOINED_CHURNED, CU_EXP_EXISTING, CU_CONTR_EXISTING, CU_CHURN_EXISTING };

struct period {
    int64_t mv[RS_AGG_FIELDS]; /* RS_MLEDGER_MOVEMENTS */
    int64_t cu[RS_AGG_FIELDS]; /* RS_MLEDGER_CUSTOMERS */
    int64_t mrr_start, customers_start;
    int64_t mrr_end, customers_end;
};

/* New + expansion + reactivation - contraction - churn: FX is not a movement. */
static int64_t net_new(const int64_t *mv)
{
    return mv[MV_NEW] + mv[MV_EXPANSION] + mv[MV_REACTIVATION] - mv[MV_CONTRACTION] - mv[MV_CHURN];
}

static int64_t customers_delta(const int64_t *mv, const int64_t *cu)
{
    return mv[MV_NEW_CUST] + mv[MV_REACT_CUST] - cu[CU_CHURNED];
}

static int period_read(const struct rd *r, enum rs_grain grain, int64_t bucket, struct period *p)
{
    struct rs_str none = { "", 0 };
    int64_t bal[RS_AGG_FIELDS];
    int64_t start =
        grain == RS_GRAIN_DAY ? rs_bucket_start(r->cfg->zone, RS_GRAIN_MONTH, bucket) : bucket;
    int rc;

    memset(p, 0, sizeof(*p));
    rc = cell_read(r, RS_MLEDGER_BALANCE, none, grain == RS_GRAIN_DAY ? RS_GRAIN_MONTH : grain,
                   start, bal);
    p->customers_start = bal[0];
    p->mrr_start = bal[1];
    /* A day starts from its month's balance and the days of the month before it. */
    for (int64_t d = start; rc == 0 && grain == RS_GRAIN_DAY && d < bucket;
         d = rs_bucket_end(r->cfg->zone, RS_GRAIN_DAY, d)) {
        int64_t mv[RS_AGG_FIELDS] = { 0 }, cu[RS_AGG_FIELDS] = { 0 };

        rc = cell_read(r, RS_MLEDGER_MOVEMENTS, none, RS_GRAIN_DAY, d, mv);
        if (rc == 0) {
            rc = cell_read(r, RS_MLEDGER_CUSTOMERS, none, RS_GRAIN_DAY, d, cu);
        }
        p->mrr_start += net_new(mv) + mv[MV_FX];
        p->customers_start += customers_delta(mv, cu);
    }
    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_MOVEMENTS, none, grain, bucket, p->mv);
    }
    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_CUSTOMERS, none, grain, bucket, p->cu);
    }
    p->mrr_end = p->mrr_start + net_new(p->mv) + p->mv[MV_FX];
    p->customers_end = p->customers_start + customers_delta(p->mv, p->cu);
    return rc;
}

/* The gross margin of a period: its financials.reported (a month's, else its quarter's) or
 * the configured default. */
static int gross_margin(const struct rd *r, enum rs_grain grain, int64_t bucket, double *gm,
                        bool *reported)
{
    int64_t f[RS_AGG_FIELDS];
    int rc = cell_read(r, RS_MLEDGER_FINANCIALS, str_of(""), grain, bucket, f);

    if (rc == 0 && !(f[6] > 0 && (f[5] & GM_PRESENT)) && grain == RS_GRAIN_MONTH) {
        rc = cell_read(r, RS_MLEDGER_FINANCIALS, str_of(""), RS_GRAIN_QUARTER,
                       rs_bucket_start(r->cfg->zone, RS_GRAIN_QUARTER, bucket), f);
    }
    *reported = rc == 0 && f[6] > 0 && (f[5] & GM_PRESENT);
    *gm = *reported ? (double)f[1] / BP_PER_ONE : r->cfg->gross_margin_default;
    return rc;
}

static void gm_details(struct rs_metric_value *out, double gm, bool reported)
{
    detail(out, "gross_margin", gm);
    detail(out, "gross_margin_reported", reported ? 1 : 0);
}

/* ---- M01 MRR ------------------------------------------------------------------------------- */

static int read_mrr(const struct rd *r, enum rs_grain grain, int64_t bucket,
                    struct rs_metric_value *out)
{
    struct period p;
    int rc = period_read(r, grain, bucket, &p);
    int64_t nn = net_new(p.mv);

    out->value = (double)p.mrr_end;
    out->count = p.customers_end;
    detail(out, "mrr_start", (double)p.mrr_start);
    detail(out, "new_business", (double)p.mv[MV_NEW]);
    detail(out, "expansion", (double)p.mv[MV_EXPANSION]);
    detail(out, "reactivation", (double)p.mv[MV_REACTIVATION]);
    detail(out, "contraction", (double)p.mv[MV_CONTRACTION]);
    detail(out, "churn", (double)p.mv[MV_CHURN]);
    detail(out, "fx_impact", (double)p.mv[MV_FX]);
    detail(out, "net_new_mrr", (double)nn);
    detail(out, "arr", 12.0 * (double)p.mrr_end);
    detail(out, "net_new_arr", 12.0 * (double)nn);
    detail_ratio(out, "quick_ratio",
                 (double)(p.mv[MV_NEW] + p.mv[MV_EXPANSION] + p.mv[MV_REACTIVATION]),
                 (double)(p.mv[MV_CHURN] + p.mv[MV_CONTRACTION]));
    detail(out, "customers_start", (double)p.customers_start);
    detail(out, "customers_end", (double)p.customers_end);
    detail(out, "new_customers", (double)p.mv[MV_NEW_CUST]);
    detail(out, "reactivated_customers", (double)p.mv[MV_REACT_CUST]);
    detail(out, "churned_customers", (double)p.cu[CU_CHURNED]);
    return rc;
}

/* ---- M02 customer churn ------------------------------------------------------------------- */

struct rate {
    bool ok; /* false: empty base */
    double value;
    int64_t base;
};

/* Customers churned in the 30 days before `end`, over the customers 30 days before it plus
 * those who joined in between. */
static int churn_rolling(const struct rd *r, int64_t end, struct rate *rate,
                         struct rs_metric_value *out)
{
    struct rs_str none = { "", 0 };
    int64_t first = end, churned = 0, joined = 0;
    struct period p;
    int rc = 0;

    for (int i = 0; i < ROLLING_DAYS; i++) {
        first = rs_bucket_start(r->cfg->zone, RS_GRAIN_DAY, first - 1);
    }
    rc = period_read(r, RS_GRAIN_DAY, first, &p);
    for (int64_t d = first; rc == 0 && d < end; d = rs_bucket_end(r->cfg->zone, RS_GRAIN_DAY, d)) {
        int64_t mv[RS_AGG_FIELDS] = { 0 }, cu[RS_AGG_FIELDS] = { 0 };

        rc = cell_read(r, RS_MLEDGER_MOVEMENTS, none, RS_GRAIN_DAY, d, mv);
        if (rc == 0) {
            rc = cell_read(r, RS_MLEDGER_CUSTOMERS, none, RS_GRAIN_DAY, d, cu);
        }
        churned += cu[CU_CHURNED];
        joined += mv[MV_NEW_CUST] + mv[MV_REACT_CUST];
    }
    rate->base = p.customers_start + joined;
    rate->ok = rate->base > 0;
    rate->value = rate->ok ? (double)churned / (double)rate->base : 0;
    if (out != NULL) {
        out->numerator = churned;
        out->denominator = rate->base;
        detail(out, "churned_customers", (double)churned);
        detail(out, "customers_30d_ago", (double)p.customers_start);
        detail(out, "joined_customers", (double)joined);
    }
    return rc;
}

/* M02 of (grain, bucket) with the configured formula; details into out when not NULL. */
static int customer_churn(const struct rd *r, enum rs_grain grain, int64_t bucket,
                          struct rate *rate, struct rs_metric_value *out)
{
    struct rs_str none = { "", 0 };
    int64_t bal[RS_AGG_FIELDS], cu[RS_AGG_FIELDS];
    int64_t churned;
    int rc;

    if (r->cfg->customer_churn == RS_CHURN_STRIPE_ROLLING_30D) {
        return churn_rolling(r, rs_bucket_end(r->cfg->zone, grain, bucket), rate, out);
    }
    rc = cell_read(r, RS_MLEDGER_BALANCE, none, grain, bucket, bal);
    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_CUSTOMERS, none, grain, bucket, cu);
    }
    if (rc != 0) {
        return rc;
    }
    /* ChartMogul B2B: a customer who joined and churned within the period is in neither. */
    churned = cu[CU_CHURNED] - cu[CU_JOINED_CHURNED];
    rate->base = bal[0];
    rate->ok = bal[0] > 0;
    rate->value = rate->ok ? (double)churned / (double)bal[0] : 0;
    if (out != NULL) {
        out->numerator = churned;
        out->denominator = bal[0];
        detail(out, "churned_customers", (double)cu[CU_CHURNED]);
        detail(out, "joined_and_churned", (double)cu[CU_JOINED_CHURNED]);
        detail(out, "customers_start", (double)bal[0]);
    }
    return 0;
}

static int read_customer_churn(const struct rd *r, enum rs_grain grain, int64_t bucket,
                               struct rs_metric_value *out)
{
    struct rate rate;
    int rc = customer_churn(r, grain, bucket, &rate, out);

    if (!rate.ok) {
        set_null(out, "no_base");
    } else {
        out->value = rate.value;
    }
    set_low_confidence(r, out, rate.base);
    return rc;
}

/* ---- M03 MRR churn, M04 ARPA, M05 NRR ---------------------------------------------------- */

/* Gross (value) and net (value2) MRR churn of a period. */
static void mrr_churn(const struct period *p, struct rate *gross, double *net)
{
    int64_t lost = p->mv[MV_CHURN] + p->mv[MV_CONTRACTION];
    int64_t won = p->mv[MV_EXPANSION] + p->mv[MV_REACTIVATION];

    gross->base = p->mrr_start;
    gross->ok = p->mrr_start > 0;
    gross->value = gross->ok ? (double)lost / (double)p->mrr_start : 0;
    *net = gross->ok ? (double)(lost - won) / (double)p->mrr_start : 0;
}

static int read_mrr_churn(const struct rd *r, enum rs_grain grain, int64_t bucket,
                          struct rs_metric_value *out)
{
    struct period p;
    struct rate gross;
    double net;
    int rc = period_read(r, grain, bucket, &p);

    mrr_churn(&p, &gross, &net);
    out->numerator = p.mv[MV_CHURN] + p.mv[MV_CONTRACTION];
    out->denominator = p.mrr_start;
    if (gross.ok) {
        out->value = gross.value;
        out->value2 = net;
    } else {
        set_null(out, "no_base");
    }
    detail(out, "mrr_start", (double)p.mrr_start);
    detail(out, "churn", (double)p.mv[MV_CHURN]);
    detail(out, "contraction", (double)p.mv[MV_CONTRACTION]);
    detail(out, "expansion", (double)p.mv[MV_EXPANSION]);
    detail(out, "reactivation", (double)p.mv[MV_REACTIVATION]);
    set_low_confidence(r, out, p.customers_start);
    return rc;
}

struct arpa {
    bool ok;
    double value;
    int64_t mrr, customers;
};

static int arpa_of(const struct rd *r, enum rs_grain grain, int64_t bucket, struct arpa *a)
{
    struct period p;
    int rc = period_read(r, grain, bucket, &p);

    a->mrr = p.mrr_end;
    a->customers = p.customers_end;
    a->ok = p.customers_end > 0;
    a->value = a->ok ? (double)p.mrr_end / (double)p.customers_end : 0;
    return rc;
}

static int read_arpa(const struct rd *r, enum rs_grain grain, int64_t bucket,
                     struct rs_metric_value *out)
{
    struct arpa a;
    int rc = arpa_of(r, grain, bucket, &a);

    out->numerator = a.mrr;
    out->denominator = a.customers;
    if (a.ok) {
        out->value = a.value;
    } else {
        set_null(out, "no_base");
    }
    detail(out, "mrr_end", (double)a.mrr);
    detail(out, "customers_end", (double)a.customers);
    set_low_confidence(r, out, a.customers);
    return rc;
}

static int read_nrr(const struct rd *r, enum rs_grain grain, int64_t bucket,
                    struct rs_metric_value *out)
{
    struct rs_str none = { "", 0 };
    int64_t bal[RS_AGG_FIELDS], cu[RS_AGG_FIELDS];
    int64_t start, kept;
    int rc = cell_read(r, RS_MLEDGER_BALANCE, none, grain, bucket, bal);

    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_CUSTOMERS, none, grain, bucket, cu);
    }
    if (rc != 0) {
        return rc;
    }
    /* The customers paying at the bucket start are the existing ones: new business and
     * reactivation are left out (ChartMogul Net MRR Retention). */
    start = bal[1];
    kept = start - cu[CU_CONTR_EXISTING] - cu[CU_CHURN_EXISTING];
    out->numerator = kept + cu[CU_EXP_EXISTING];
    out->denominator = start;
    if (start > 0) {
        out->value = (double)(kept + cu[CU_EXP_EXISTING]) / (double)start;
        out->value2 = (double)kept / (double)start;
    } else {
        set_null(out, "no_base");
    }
    detail(out, "mrr_start_existing", (double)start);
    detail(out, "expansion_existing", (double)cu[CU_EXP_EXISTING]);
    detail(out, "contraction_existing", (double)cu[CU_CONTR_EXISTING]);
    detail(out, "churn_existing", (double)cu[CU_CHURN_EXISTING]);
    set_low_confidence(r, out, bal[0]);
    return 0;
}

static int read_nrr_t12(const struct rd *r, enum rs_grain grain, int64_t bucket,
                        struct rs_metric_value *out)
{
    int64_t t[RS_AGG_FIELDS];
    int rc = cell_read(r, RS_MLEDGER_T12, str_of(""), grain, bucket, t);

    if (rc != 0) {
        return rc;
    }
    out->numerator = t[2];
    out->denominator = t[1];
    if (t[1] > 0) {
        out->value = (double)t[2] / (double)t[1];
        out->value2 = (double)t[3] / (double)t[1];
    } else {
        set_null(out, "no_base");
    }
    detail(out, "customers_t_minus_12", (double)t[0]);
    detail(out, "mrr_t_minus_12", (double)t[1]);
    detail(out, "mrr_t", (double)t[2]);
    detail(out, "mrr_t_capped", (double)t[3]);
    set_low_confidence(r, out, t[0]);
    return 0;
}

/* ---- M06 LTV ------------------------------------------------------------------------------- */

struct ltv {
    bool ok;
    const char *null_reason;
    double value, arpa, gm, churn;
    bool gm_reported, floored;
    int64_t customers;
    int months; /* months in the churn average */
};

/* The mean of M02 (net M03 for profitwell) over the LTV_MONTHS months before `month`. */
static int churn_avg(const struct rd *r, int64_t month, bool net_mrr, double *mean, int *months)
{
    double sum = 0;
    int rc = 0;

    *months = 0;
    for (int i = 0; rc == 0 && i < LTV_MONTHS; i++) {
        struct rate rate;
        double net = 0;

        month = prev_bucket(r, RS_GRAIN_MONTH, month);
        if (net_mrr) {
            struct period p;

            rc = period_read(r, RS_GRAIN_MONTH, month, &p);
            mrr_churn(&p, &rate, &net);
        } else {
            rc = customer_churn(r, RS_GRAIN_MONTH, month, &rate, NULL);
        }
        if (rc == 0 && rate.ok) {
            sum += net_mrr ? net : rate.value;
            (*months)++;
        }
    }
    *mean = *months > 0 ? sum / *months : 0;
    return rc;
}

static int ltv_of(const struct rd *r, int64_t month, struct ltv *l)
{
    const struct rs_finance_config *cfg = r->cfg;
    bool smoothed = cfg->ltv == RS_LTV_ARPA_GM_OVER_CHURN_AVG6 || cfg->ltv == RS_LTV_CHARTMOGUL ||
                    cfg->ltv == RS_LTV_PROFITWELL;
    struct arpa a;
    int rc;

    memset(l, 0, sizeof(*l));
    rc = arpa_of(r, RS_GRAIN_MONTH, month, &a);
    if (rc == 0) {
        rc = gross_margin(r, RS_GRAIN_MONTH, month, &l->gm, &l->gm_reported);
    }
    if (rc == 0 && smoothed) {
        rc = churn_avg(r, month, cfg->ltv == RS_LTV_PROFITWELL, &l->churn, &l->months);
    } else if (rc == 0) {
        struct rate rate;

        rc = customer_churn(r, RS_GRAIN_MONTH, month, &rate, NULL);
        l->churn = rate.value;
        l->months = rate.ok ? 1 : 0;
    }
    if (rc != 0) {
        return rc;
    }
    l->arpa = a.value;
    l->customers = a.customers;
    if (!a.ok) {
        l->null_reason = "no_base";
        return 0;
    }
    if (l->months == 0) {
        l->null_reason = "insufficient_sample";
        return 0;
    }
    /* Stripe assumes 1.67% only for a zero churn; the others use it as a floor, which caps
     * the lifetime at about 60 months. */
    if (cfg->ltv == RS_LTV_STRIPE ? l->churn <= 0 : l->churn < cfg->churn_floor_monthly) {
        l->churn = cfg->churn_floor_monthly;
        l->floored = true;
    }
    if (l->churn <= 0) {
        l->null_reason = "no_base"; /* zero churn and no floor configured */
        return 0;
    }
    l->ok = true;
    l->value = cfg->ltv == RS_LTV_ARPA_GM_OVER_CHURN_AVG6 ? l->arpa * l->gm / l->churn
                                                          : l->arpa / l->churn;
    return 0;
}

static int read_ltv(const struct rd *r, int64_t month, struct rs_metric_value *out)
{
    struct ltv l;
    int rc = ltv_of(r, month, &l);

    if (l.ok) {
        out->value = l.value;
    } else {
        set_null(out, l.null_reason);
    }
    out->churn_floored = l.floored;
    detail(out, "arpa", l.arpa);
    gm_details(out, l.gm, l.gm_reported);
    detail(out, "churn", l.churn);
    detail(out, "churn_months", l.months);
    set_low_confidence(r, out, l.customers);
    if (l.months < LTV_MONTHS &&
        (r->cfg->ltv == RS_LTV_ARPA_GM_OVER_CHURN_AVG6 || r->cfg->ltv == RS_LTV_CHARTMOGUL)) {
        out->low_confidence = true; /* fewer than six months of churn history */
    }
    return rc;
}

/* ---- M07 CAC, M08 payback ------------------------------------------------------------------ */

enum { SP_ALL, SP_NEW_LOGO, SP_EXPANSION, SP_SHARED };

static double new_logo_spend(const struct rd *r, const int64_t *sp)
{
    return (double)sp[SP_NEW_LOGO] + r->cfg->shared_spend_new_logo * (double)sp[SP_SHARED];
}

static int read_cac(const struct rd *r, enum rs_grain grain, int64_t bucket,
                    struct rs_metric_value *out)
{
    int64_t sp[RS_AGG_FIELDS], mv[RS_AGG_FIELDS];
    int64_t spend_bucket = shift_back(r, grain, bucket, r->cfg->spend_lag_periods);
    int64_t last_month = rs_bucket_start(r->cfg->zone, RS_GRAIN_MONTH,
                                         rs_bucket_end(r->cfg->zone, grain, bucket) - 1);
    double spend;
    struct ltv l;
    int rc = cell_read(r, RS_MLEDGER_SPEND, str_of(""), grain, spend_bucket, sp);

    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_MOVEMENTS, str_of(""), grain, bucket, mv);
    }
    if (rc == 0) {
        rc = ltv_of(r, last_month, &l);
    }
    if (rc != 0) {
        return rc;
    }
    spend = new_logo_spend(r, sp);
    out->numerator = (int64_t)llround(spend);
    out->denominator = mv[MV_NEW_CUST];
    /* Reactivated customers are not acquired: only new ones divide. */
    if (mv[MV_NEW_CUST] > 0) {
        out->value = spend / (double)mv[MV_NEW_CUST];
        out->value2 = l.ok && out->value > 0 ? l.value / out->value : 0;
    } else {
        set_null(out, "no_base");
    }
    out->churn_floored = l.floored;
    detail(out, "spend_new_logo", spend);
    detail(out, "spend_all", (double)sp[SP_ALL]);
    detail(out, "spend_shared", (double)sp[SP_SHARED]);
    detail(out, "new_customers", (double)mv[MV_NEW_CUST]);
    if (l.ok) {
        detail(out, "ltv", l.value);
    } else {
        detail_null(out, "ltv");
    }
    if (l.ok && !out->is_null && out->value > 0) {
        detail(out, "ltv_cac", out->value2);
    } else {
        detail_null(out, "ltv_cac"); /* the ratio is value2, 0 here */
    }
    set_low_confidence(r, out, mv[MV_NEW_CUST]);
    return 0;
}

static int read_payback(const struct rd *r, enum rs_grain grain, int64_t bucket,
                        struct rs_metric_value *out)
{
    int64_t sp[RS_AGG_FIELDS], mv[RS_AGG_FIELDS];
    int64_t prior = prev_bucket(r, grain, bucket);
    double gm, den = 0, num = 0;
    bool reported;
    int rc = cell_read(r, RS_MLEDGER_SPEND, str_of(""), grain, prior, sp);

    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_MOVEMENTS, str_of(""), grain, bucket, mv);
    }
    if (rc == 0) {
        rc = gross_margin(r, grain, bucket, &gm, &reported);
    }
    if (rc != 0) {
        return rc;
    }
    switch (r->cfg->payback) {
    case RS_PAYBACK_BESSEMER_NEW_MRR:
        /* Bessemer: "forget the effect of churn and upsells for now". */
        num = (double)sp[SP_ALL];
        den = (double)mv[MV_NEW] * gm;
        break;
    case RS_PAYBACK_NET:
        num = (double)sp[SP_ALL];
        den = (double)net_new(mv) * gm;
        break;
    case RS_PAYBACK_UNIT:
        if (mv[MV_NEW_CUST] > 0) {
            double cac = new_logo_spend(r, sp) / (double)mv[MV_NEW_CUST];
            double new_arpa = (double)mv[MV_NEW] / (double)mv[MV_NEW_CUST];

            detail(out, "cac", cac);
            detail(out, "new_arpa", new_arpa);
            num = cac;
            den = new_arpa * gm;
        }
        break;
    }
    if (den > 0) {
        out->value = num / den;
        out->flagged_long = out->value > PAYBACK_LONG;
    } else {
        set_null(out, "no_base");
    }
    detail(out, "spend_prior_period", (double)sp[SP_ALL]);
    detail(out, "spend_new_logo_prior_period", new_logo_spend(r, sp));
    detail(out, "new_business", (double)mv[MV_NEW]);
    detail(out, "net_new_mrr", (double)net_new(mv));
    detail(out, "new_customers", (double)mv[MV_NEW_CUST]);
    gm_details(out, gm, reported);
    set_low_confidence(r, out, mv[MV_NEW_CUST]);
    return 0;
}

/* ---- M09 magic number, M10 rule of 40 ------------------------------------------------------- */

enum { FI_REVENUE, FI_GM_BP, FI_EBITDA, FI_FCF, FI_OPERATING, FI_PRESENT, FI_REPORTS };

/* A quarter's financials: its own report, else the sum of its three month reports. *ok is
 * false when neither is there; FI_PRESENT then holds the fields every part reported. */
static int quarter_financials(const struct rd *r, int64_t quarter, int64_t f[RS_AGG_FIELDS],
                              bool *ok)
{
    int64_t m = quarter;
    int rc = cell_read(r, RS_MLEDGER_FINANCIALS, str_of(""), RS_GRAIN_QUARTER, quarter, f);

    *ok = rc == 0 && f[FI_REPORTS] > 0;
    if (rc != 0 || *ok) {
        return rc;
    }
    memset(f, 0, sizeof(int64_t) * RS_AGG_FIELDS);
    f[FI_PRESENT] = ~INT64_C(0);
    for (int i = 0; i < 3; i++, m = rs_bucket_end(r->cfg->zone, RS_GRAIN_MONTH, m)) {
        int64_t part[RS_AGG_FIELDS];

        rc = cell_read(r, RS_MLEDGER_FINANCIALS, str_of(""), RS_GRAIN_MONTH, m, part);
        if (rc != 0 || part[FI_REPORTS] <= 0) {
            return rc;
        }
        for (int k = FI_REVENUE; k <= FI_OPERATING; k++) {
            f[k] += part[k];
        }
        f[FI_PRESENT] &= part[FI_PRESENT];
    }
    f[FI_GM_BP] = 0; /* a sum of margins means nothing */
    f[FI_PRESENT] &= ~(int64_t)GM_PRESENT;
    f[FI_REPORTS] = 3;
    *ok = true;
    return 0;
}

/* TTM financials of the four quarters ending with `last`. */
static int ttm_financials(const struct rd *r, int64_t last, int64_t f[RS_AGG_FIELDS], bool *ok)
{
    int64_t q = last;
    char label[16];
    int rc = 0;

    memset(f, 0, sizeof(int64_t) * RS_AGG_FIELDS);
    f[FI_PRESENT] = ~INT64_C(0);
    *ok = true;
    for (int i = 0; rc == 0 && i < 4; i++) {
        int64_t part[RS_AGG_FIELDS];
        bool have;

        if (i > 0) {
            q = prev_bucket(r, RS_GRAIN_QUARTER, q);
        }
        rc = quarter_financials(r, q, part, &have);
        *ok = *ok && have;
        for (int k = FI_REVENUE; k <= FI_OPERATING; k++) {
            f[k] += part[k];
        }
        f[FI_PRESENT] &= part[FI_PRESENT];
    }
    /* A window that is a calendar year may have been reported as one. */
    if (rc == 0 && !*ok &&
        rs_bucket_label(r->cfg->zone, RS_GRAIN_QUARTER, q, label, sizeof(label)) > 0 &&
        strstr(label, "Q1") != NULL) {
        rc = cell_read(r, RS_MLEDGER_FINANCIALS, str_of("period=year"), RS_GRAIN_QUARTER, q, f);
        *ok = rc == 0 && f[FI_REPORTS] > 0;
    }
    return rc;
}

static int read_magic(const struct rd *r, int64_t bucket, int64_t watermark_ms,
                      struct rs_metric_value *out)
{
    const struct rs_finance_config *cfg = r->cfg;
    enum rs_grain q = RS_GRAIN_QUARTER;
    int64_t prior = prev_bucket(r, q, bucket);
    int64_t sp[RS_AGG_FIELDS], mv[RS_AGG_FIELDS];
    double num, spend;
    int rc = cell_read(r, RS_MLEDGER_MOVEMENTS, str_of(""), q, bucket, mv);

    if (rc == 0) {
        rc = cell_read(r, RS_MLEDGER_SPEND, str_of(""), q,
                       cfg->magic == RS_MAGIC_SAME_QUARTER ? bucket : prior, sp);
    }
    if (rc != 0) {
        return rc;
    }
    num = 12.0 * (double)net_new(mv);
    spend = (double)sp[SP_ALL];
    out->qtd = watermark_ms == INT64_MIN || rs_bucket_end(cfg->zone, q, bucket) > watermark_ms;
    switch (cfg->magic) {
    case RS_MAGIC_ARR_PRIOR_QUARTER:
    case RS_MAGIC_SAME_QUARTER:
        break;
    case RS_MAGIC_NEW_LOGO_ONLY:
        num = 12.0 * (double)mv[MV_NEW];
        break;
    case RS_MAGIC_GM_ADJUSTED: {
        double gm;
        bool reported;

        rc = gross_margin(r, q, bucket, &gm, &reported);
        num *= gm;
        gm_details(out, gm, reported);
        break;
    }
    case RS_MAGIC_T4Q: {
        int64_t b = bucket;

        /* Trailing four quarters of net new ARR over the four quarters of spend before. */
        for (int i = 1; rc == 0 && i < 4; i++) {
            b = prev_bucket(r, q, b);
            rc = cell_read(r, RS_MLEDGER_MOVEMENTS, str_of(""), q, b, mv);
            num += 12.0 * (double)net_new(mv);
        }
        b = prior;
        for (int i = 1; rc == 0 && i < 4; i++) {
            b = prev_bucket(r, q, b);
            rc = cell_read(r, RS_MLEDGER_SPEND, str_of(""), q, b, sp);
            spend += (double)sp[SP_ALL];
        }
        break;
    }
    case RS_MAGIC_GAAP: {
        int64_t now[RS_AGG_FIELDS], before[RS_AGG_FIELDS];
        bool have_now, have_before = false;

        /* Scale VP: annualised new GAAP revenue over last quarter's S&M. */
        rc = quarter_financials(r, bucket, now, &have_now);
        if (rc == 0) {
            rc = quarter_financials(r, prior, before, &have_before);
        }
        if (rc == 0 && !(have_now && have_before)) {
            set_null(out, "no_base");
        }
        num = 4.0 * (double)(now[FI_REVENUE] - before[FI_REVENUE]);
        detail(out, "revenue", (double)now[FI_REVENUE]);
        detail(out, "revenue_prior_quarter", (double)before[FI_REVENUE]);
        break;
    }
    }
    if (rc != 0) {
        return rc;
    }
    if (spend <= 0) {
        set_null(out, "no_base");
    } else if (!out->is_null) {
        /* A negative net new ARR gives a negative magic number: reported, not nulled. */
        out->value = num / spend;
    }
    detail(out, "numerator_arr", num);
    detail(out, cfg->magic == RS_MAGIC_SAME_QUARTER ? "spend_same_quarter" : "spend_prior_quarter",
           spend);
    return 0;
}

static int read_rule_of_40(const struct rd *r, int64_t bucket, struct rs_metric_value *out)
{
    static const int field[] = {
        [RS_R40_FCF] = FI_FCF, [RS_R40_EBITDA] = FI_EBITDA, [RS_R40_OPERATING_MARGIN] = FI_OPERATING
    };
    static const int64_t bit[] = {
        [RS_R40_FCF] = 4, [RS_R40_EBITDA] = 2, [RS_R40_OPERATING_MARGIN] = 8
    };
    int64_t now[RS_AGG_FIELDS], before[RS_AGG_FIELDS];
    bool have_now, have_before = false;
    int64_t year_ago = shift_back(r, RS_GRAIN_QUARTER, bucket, 4);
    int m = field[r->cfg->r40];
    double growth, margin;
    int rc = ttm_financials(r, bucket, now, &have_now);

    if (rc == 0) {
        rc = ttm_financials(r, year_ago, before, &have_before);
    }
    if (rc != 0) {
        return rc;
    }
    detail(out, "ttm_revenue", (double)now[FI_REVENUE]);
    detail(out, "prior_ttm_revenue", (double)before[FI_REVENUE]);
    if (!have_now || !have_before || before[FI_REVENUE] <= 0 || now[FI_REVENUE] <= 0) {
        set_null(out, "no_base");
        return 0;
    }
    if (!(now[FI_PRESENT] & bit[r->cfg->r40])) {
        set_null(out, "insufficient_sample"); /* the margin was not reported for every quarter */
        return 0;
    }
    growth = 100.0 * ((double)now[FI_REVENUE] / (double)before[FI_REVENUE] - 1.0);
    margin = 100.0 * (double)now[m] / (double)now[FI_REVENUE];
    out->value = growth + margin;
    out->value2 = growth;
    detail(out, "revenue_growth_pct", growth);
    detail(out, "margin_pct", margin);
    return 0;
}

/* ---- dims ------------------------------------------------------------------------------- */

/* The raw (still escaped) value of `key` in canonical dims; false when absent. */
static bool dim_value(struct rs_str dims, const char *key, struct rs_str *value)
{
    size_t klen = strlen(key), i = 0;

    while (i < dims.len) {
        size_t start = i;

        while (i < dims.len && dims.ptr[i] != ',') {
            i += dims.ptr[i] == '\\' && i + 1 < dims.len ? 2 : 1;
        }
        if (i - start > klen && memcmp(dims.ptr + start, key, klen) == 0 &&
            dims.ptr[start + klen] == '=') {
            *value = (struct rs_str){ dims.ptr + start + klen + 1, i - start - klen - 1 };
            return true;
        }
        i++;
    }
    return false;
}

static bool str_is(struct rs_str s, const char *word)
{
    return s.len == strlen(word) && memcmp(s.ptr, word, s.len) == 0;
}

/* ---- M21 cohorts ---------------------------------------------------------------------- */

enum { CO_NEW, CO_EXPANSION, CO_CONTRACTION, CO_CHURN, CO_REACTIVATION, CO_FX, CO_CUSTOMERS };

static int read_cohort(const struct rd *r, struct rs_str dims, int64_t bucket,
                       struct rs_metric_value *out)
{
    int64_t cohort, sum[RS_AGG_FIELDS] = { 0 }, last[RS_AGG_FIELDS] = { 0 };
    struct rs_str label;
    int k = 0, rc = 0;

    if (!dim_value(dims, "cohort", &label) ||
        rs_bucket_parse(r->cfg->zone, RS_GRAIN_MONTH, label.ptr, label.len, &cohort, NULL) != 0) {
        return rs_err_set(r->err, RS_EINVAL,
                          "metric 'cohort_expansion': dims need cohort=YYYY-MM, got '%.*s'",
                          (int)dims.len, dims.ptr);
    }
    for (int64_t m = cohort; rc == 0 && m <= bucket && k <= COHORT_MAX;
         m = rs_bucket_end(r->cfg->zone, RS_GRAIN_MONTH, m), k++) {
        rc = cell_read(r, RS_MLEDGER_COHORT, dims, RS_GRAIN_MONTH, m, last);
        for (int i = 0; i < RS_AGG_FIELDS; i++) {
            sum[i] += last[i];
        }
    }
    if (rc != 0) {
        return rc;
    }
    if (bucket < cohort) {
        set_null(out, "no_base"); /* before the cohort began */
        return 0;
    }
    /* ChartMogul cohort NRR: the cohort's MRR at the end of the month over its new business. */
    {
        int64_t mrr = sum[CO_NEW] + sum[CO_EXPANSION] + sum[CO_REACTIVATION] - sum[CO_CONTRACTION] -
                      sum[CO_CHURN];

        out->numerator = mrr;
        out->denominator = sum[CO_NEW];
        if (sum[CO_NEW] > 0) {
            out->value = (double)mrr / (double)sum[CO_NEW];
        } else {
            set_null(out, "no_base");
        }
        detail(out, "offset", k - 1);
        detail(out, "cohort_value", (double)sum[CO_NEW]);
        detail(out, "cohort_mrr", (double)mrr);
        detail(out, "expansion", (double)last[CO_EXPANSION]);
        detail(out, "cum_expansion", (double)sum[CO_EXPANSION]);
        detail(out, "contraction", (double)last[CO_CONTRACTION]);
        detail(out, "cum_contraction", (double)sum[CO_CONTRACTION]);
        detail(out, "churn", (double)last[CO_CHURN]);
        detail(out, "cum_churn", (double)sum[CO_CHURN]);
        detail(out, "reactivation", (double)last[CO_REACTIVATION]);
        detail(out, "fx_impact", (double)sum[CO_FX]);
        detail_ratio(out, "expansion_share", (double)last[CO_EXPANSION],
                     (double)(last[CO_NEW] + last[CO_EXPANSION]));
    }
    set_low_confidence(r, out, sum[CO_CUSTOMERS]);
    return 0;
}

/* ---- M22 forecast accuracy -------------------------------------------------------------- */

enum measure { MEASURE_NET_NEW_ARR, MEASURE_ENDING_ARR, MEASURE_BOOKINGS };

/* Cells of one metric at (grain, bucket) whose dims start with prefix, summed per dims
 * suffix over the partitions asked for. */
struct scan {
    const struct rd *r;
    enum rs_grain grain;
    int64_t bucket;
    struct rs_str prefix;
    GHashTable *by_rest; /* the dims after the prefix -> int64_t[RS_AGG_FIELDS] */
};

static bool partition_wanted(const struct rd *r, uint32_t partition)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->partitions[i] == partition) {
            return true;
        }
    }
    return r->n == 0;
}

static int scan_cell(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct scan *s = opaque;
    size_t plen = s->prefix.len;
    int64_t *sum;
    char *rest;

    if (key->grain != s->grain || key->bucket != s->bucket || key->dims.len <= plen ||
        memcmp(key->dims.ptr, s->prefix.ptr, plen) != 0 ||
        !partition_wanted(s->r, key->partition)) {
        return 0;
    }
    rest = g_strndup(key->dims.ptr + plen, key->dims.len - plen);
    sum = g_hash_table_lookup(s->by_rest, rest);
    if (sum == NULL) {
        sum = g_new0(int64_t, RS_AGG_FIELDS);
        g_hash_table_insert(s->by_rest, rest, sum);
    } else {
        g_free(rest);
    }
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        sum[i] += cell->n[i];
    }
    return 0;
}

static int scan(struct scan *s, uint16_t metric)
{
    s->by_rest = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return rs_agg_scan(s->r->st, metric, scan_cell, s, s->r->err);
}

/* The actual of one unit: a scope_id's (escaped, as in dims) bookings, or the company's. */
static int actual_of(const struct rd *r, enum measure measure, struct rs_str scope,
                     struct rs_str scope_id, enum rs_grain grain, int64_t bucket, bool *ok,
                     double *actual)
{
    char dims[RS_AGG_DIMS_MAX + 8];
    int64_t n[RS_AGG_FIELDS];
    int rc = 0;

    *ok = false;
    *actual = 0;
    if (measure != MEASURE_BOOKINGS) {
        struct period p;

        if (!str_is(scope, "company")) {
            return 0; /* the ledger knows no owner of an ARR movement */
        }
        rc = period_read(r, grain, bucket, &p);
        *actual = 12.0 * (double)(measure == MEASURE_ENDING_ARR ? p.mrr_end : net_new(p.mv));
        *ok = true;
        return rc;
    }
    if (str_is(scope, "company")) {
        struct scan s = { r, grain, bucket, str_of("rep="), NULL };
        GHashTableIter it;
        gpointer k, v;

        rc = scan(&s, RS_M16_QUOTA);
        g_hash_table_iter_init(&it, s.by_rest);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            *actual += (double)((int64_t *)v)[0];
        }
        g_hash_table_destroy(s.by_rest);
        *ok = true;
        return rc;
    }
    if (!str_is(scope, "rep") && !str_is(scope, "team")) {
        return 0;
    }
    (void)snprintf(dims, sizeof(dims), "%.*s=%.*s", (int)scope.len, scope.ptr, (int)scope_id.len,
                   scope_id.ptr);
    rc = cell_read(r, RS_M16_QUOTA, str_of(dims), grain, bucket, n);
    *actual = (double)n[0];
    *ok = true;
    return rc;
}

/* accuracy = max(0, 1 - |A - F| / A); bias = (F - A) / A; attainment = A / F. */
static void accuracy(struct rs_metric_value *out, double f, double a)
{
    detail(out, "forecast", f);
    detail(out, "actual", a);
    detail(out, "abs_error", fabs(a - f));
    detail_ratio(out, "attainment_vs_forecast", a, f);
    if (a == 0) {
        set_null(out, "no_base");
        return;
    }
    out->value = 1.0 - fabs(a - f) / a;
    if (out->value < 0) {
        out->value = 0;
    }
    out->value2 = (f - a) / a;
}

static int read_forecast(const struct rd *r, struct rs_str dims, enum rs_grain grain,
                         int64_t bucket, struct rs_metric_value *out)
{
    struct rs_str measure_s, scope, scope_id = { "", 0 }, category;
    enum measure measure;
    int64_t fc[RS_AGG_FIELDS];
    bool has_id, ok;
    double a;
    int rc;

    has_id = dim_value(dims, "scope_id", &scope_id);
    if (!dim_value(dims, "category", &category) || !dim_value(dims, "measure", &measure_s) ||
        !dim_value(dims, "scope", &scope)) {
        return rs_err_set(r->err, RS_EINVAL,
                          "metric 'forecast_accuracy': dims need category, measure and scope, "
                          "got '%.*s'",
                          (int)dims.len, dims.ptr);
    }
    if (str_is(measure_s, "net_new_arr")) {
        measure = MEASURE_NET_NEW_ARR;
    } else if (str_is(measure_s, "ending_arr")) {
        measure = MEASURE_ENDING_ARR;
    } else if (str_is(measure_s, "bookings")) {
        measure = MEASURE_BOOKINGS;
    } else {
        return rs_err_set(r->err, RS_EINVAL,
                          "metric 'forecast_accuracy': measure '%.*s' is not one of net_new_arr, "
                          "ending_arr, bookings",
                          (int)measure_s.len, measure_s.ptr);
    }
    rc = cell_read(r, RS_MLEDGER_FORECAST, dims, grain, bucket, fc);
    if (rc != 0) {
        return rc;
    }
    detail(out, "versions", (double)fc[3]);
    if (fc[1] > 0 || has_id) {
        /* One unit, evaluated at its lock; versions after it are not. */
        if (fc[1] <= 0) {
            set_null(out, "no_base");
            return 0;
        }
        rc = actual_of(r, measure, scope, scope_id, grain, bucket, &ok, &a);
        if (rc == 0 && !ok) {
            set_null(out, "no_base");
        } else if (rc == 0) {
            accuracy(out, (double)fc[0], a);
            out->count = 1;
        }
        return rc;
    }
    /* Every locked unit of the scope: WMAPE = sum |A - F| / sum A. */
    {
        char prefix[RS_AGG_DIMS_MAX + 16];
        struct scan s = { r, grain, bucket, { prefix, 0 }, NULL };
        double sum_a = 0, sum_f = 0, sum_err = 0;
        int64_t units = 0;
        GHashTableIter it;
        gpointer k, v;

        s.prefix.len =
            (size_t)snprintf(prefix, sizeof(prefix), "%.*s,scope_id=", (int)dims.len, dims.ptr);
        rc = scan(&s, RS_MLEDGER_FORECAST);
        g_hash_table_iter_init(&it, s.by_rest);
        while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
            const int64_t *unit = v;

            if (unit[1] <= 0) {
                continue;
            }
            rc = actual_of(r, measure, scope, str_of(k), grain, bucket, &ok, &a);
            if (rc == 0 && ok) {
                sum_a += a;
                sum_f += (double)unit[0];
                sum_err += fabs(a - (double)unit[0]);
                units++;
            }
        }
        g_hash_table_destroy(s.by_rest);
        if (rc != 0) {
            return rc;
        }
        detail(out, "forecast", sum_f);
        detail(out, "actual", sum_a);
        detail(out, "abs_error", sum_err);
        detail(out, "units", (double)units);
        if (sum_a <= 0) {
            detail_null(out, "wmape");
            set_null(out, "no_base");
        } else {
            detail(out, "wmape", sum_err / sum_a);
            out->value = 1.0 - sum_err / sum_a;
            if (out->value < 0) {
                out->value = 0;
            }
            out->value2 = (sum_f - sum_a) / sum_a;
        }
        set_low_confidence(r, out, units);
    }
    return 0;
}

/* ---- the entry point ---------------------------------------------------------------------- */

int rs_finance_read(const struct rs_finance_config *cfg, struct rs_store *st,
                    const struct rs_metric_def *def, struct rs_str dims, enum rs_grain grain,
                    int64_t bucket, const uint32_t *partitions, size_t n, int64_t watermark_ms,
                    struct rs_metric_value *out, struct rs_err *err)
{
    struct rd r = { cfg, st, partitions, n, err };
    int64_t end;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((unsigned)grain >= RS_GRAIN__COUNT || !(def->grains & (1u << grain))) {
        return rs_err_set(err, RS_EINVAL, "metric '%s' has no %s grain", def->name,
                          (unsigned)grain < RS_GRAIN__COUNT ? rs_grain_name(grain) : "such");
    }
    end = rs_bucket_end(cfg->zone, grain, bucket);
    out->provisional = watermark_ms == INT64_MIN || add_sat(end, cfg->lateness_ms) > watermark_ms;
    switch (def->id) {
    case RS_M01_MRR:
        rc = read_mrr(&r, grain, bucket, out);
        break;
    case RS_M02_CUSTOMER_CHURN:
        rc = read_customer_churn(&r, grain, bucket, out);
        break;
    case RS_M03_MRR_CHURN:
        rc = read_mrr_churn(&r, grain, bucket, out);
        break;
    case RS_M04_ARPA:
        rc = read_arpa(&r, grain, bucket, out);
        break;
    case RS_M05_NRR:
        rc = read_nrr(&r, grain, bucket, out);
        break;
    case RS_M05_NRR_T12:
        rc = read_nrr_t12(&r, grain, bucket, out);
        break;
    case RS_M06_LTV:
        rc = read_ltv(&r, bucket, out);
        break;
    case RS_M07_CAC:
        rc = read_cac(&r, grain, bucket, out);
        break;
    case RS_M08_CAC_PAYBACK:
        rc = read_payback(&r, grain, bucket, out);
        break;
    case RS_M09_MAGIC_NUMBER:
        rc = read_magic(&r, bucket, watermark_ms, out);
        break;
    case RS_M10_RULE_OF_40:
        rc = read_rule_of_40(&r, bucket, out);
        break;
    case RS_M21_COHORT:
        rc = read_cohort(&r, dims, bucket, out);
        break;
    case RS_M22_FORECAST:
        rc = read_forecast(&r, dims, grain, bucket, out);
        break;
    default:
        return rs_err_set(err, RS_EINVAL, "metric '%s' is not a revenue metric", def->name);
    }
    if (rc != 0) {
        bool provisional = out->provisional;

        memset(out, 0, sizeof(*out));
        out->provisional = provisional;
    }
    return rc;
}

/* ---- raw ledger cells on the metrics topic -------------------------------------------------- */

void rs_finance_eval_cell(const struct rs_metrics_config *mcfg, const struct rs_metric_def *def,
                          enum rs_grain grain, int64_t bucket, const struct rs_agg_cell *cell,
                          int64_t watermark_ms, struct rs_metric_value *out)
{
    const int64_t *n = cell->n;
    int64_t lateness = mcfg->finance != NULL ? mcfg->finance->lateness_ms : 35 * MS_PER_DAY;
    int64_t end = rs_bucket_end(mcfg->zone, grain, bucket);

    memset(out, 0, sizeof(*out));
    out->provisional = watermark_ms == INT64_MIN || add_sat(end, lateness) > watermark_ms;
    switch (def->id) {
    case RS_MLEDGER_MOVEMENTS:
        out->value = (double)(net_new(n) + n[MV_FX]); /* the bucket's MRR change */
        out->count = n[MV_NEW_CUST] + n[MV_REACT_CUST];
        break;
    case RS_MLEDGER_CUSTOMERS:
        out->value = (double)n[CU_CHURNED];
        out->count = n[CU_CHURNED];
        break;
    case RS_MLEDGER_BALANCE:
        out->value = (double)n[1];
        out->count = n[0];
        break;
    case RS_MLEDGER_T12:
        out->count = n[0];
        out->numerator = n[2];
        out->denominator = n[1];
        if (n[1] > 0) {
            out->value = (double)n[2] / (double)n[1];
            out->value2 = (double)n[3] / (double)n[1];
        } else {
            set_null(out, "no_base");
        }
        break;
    case RS_MLEDGER_COHORT:
        out->value = (double)(n[CO_NEW] + n[CO_EXPANSION] + n[CO_REACTIVATION] - n[CO_CONTRACTION] -
                              n[CO_CHURN] + n[CO_FX]);
        out->count = n[CO_CUSTOMERS];
        break;
    case RS_MLEDGER_CASH:
        out->value = (double)(n[0] - n[2]); /* paid less refunded */
        out->count = n[1];
        break;
    case RS_MLEDGER_SPEND:
        out->value = (double)n[SP_ALL];
        break;
    case RS_MLEDGER_FORECAST:
        out->count = n[3];
        out->value2 = (double)n[2];
        if (n[1] > 0) {
            out->value = (double)n[0];
        } else {
            set_null(out, "no_base"); /* no lock yet */
        }
        break;
    case RS_MLEDGER_FINANCIALS:
        out->value = (double)n[FI_REVENUE];
        out->value2 = (n[FI_PRESENT] & GM_PRESENT) ? (double)n[FI_GM_BP] / BP_PER_ONE : 0;
        out->count = n[FI_REPORTS];
        break;
    case RS_MLEDGER_DQ:
        out->value = (double)(n[0] + n[1] + n[2]);
        out->count = n[0] + n[1] + n[2];
        break;
    default:
        set_null(out, "computed_on_read"); /* the derived metrics have no cells */
        break;
    }
}
