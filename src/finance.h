/*
 * finance.h - the revenue metrics read from the ledger's cells (ledger.h): M01-M10, M21, M22
 * of METRICS.md, and the KPI guardrails of §6 that judge them.
 *
 * None of these metrics has cells of its own: each is evaluated on read from the raw ledger
 * cells of one or more buckets (summed over partitions), because most of them are ratios of
 * parts that live in different buckets (M08 and M09 divide by the prior quarter's spend,
 * M06 averages six months of churn, M05 T12 compares two months a year apart). The HTTP API,
 * inspect and the guardrails all read through rs_finance_read(), so there is one formula per
 * metric.
 *
 * Every option of METRICS.md §7 that changes one of these numbers is a field of
 * struct rs_finance_config, a config key (docs/configuration.md) with the §7 default.
 * Empty denominators give is_null with a null_reason (never 0 or infinity); a value whose
 * buckets are not past their allowed lateness (35 d for finance) is provisional.
 *
 * Threads: any thread, inside a read snapshot (or the loop's open batch).
 */
#ifndef RS_FINANCE_H
#define RS_FINANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "err.h"
#include "event.h"
#include "metrics.h"
#include "store.h"

/* Derived metric ids (in the rs_metric_def table of metrics.c; no cells of their own). */
enum rs_finance_metric_id {
    RS_M01_MRR = 201,            /* MRR/ARR, movements, net new, quick ratio */
    RS_M02_CUSTOMER_CHURN = 202, /* logo churn, chartmogul_b2b or stripe_rolling_30d */
    RS_M03_MRR_CHURN = 203,      /* gross (value) and net (value2) MRR churn */
    RS_M04_ARPA = 204,
    RS_M05_NRR = 205,     /* period NRR (value) and GRR (value2) */
    RS_M05_NRR_T12 = 206, /* trailing-12-month NRR (value) and GRR (value2) */
    RS_M06_LTV = 207,
    RS_M07_CAC = 208, /* CAC (value) and LTV:CAC (value2) */
    RS_M08_CAC_PAYBACK = 209,
    RS_M09_MAGIC_NUMBER = 210,
    RS_M10_RULE_OF_40 = 211,
    RS_M21_COHORT = 221,   /* dims cohort=YYYY-MM; bucket: the month whose offset is read */
    RS_M22_FORECAST = 222, /* dims scope, scope_id?, measure, category: accuracy, bias */
};

enum rs_ltv_formula {
    RS_LTV_ARPA_GM_OVER_CHURN_AVG6, /* default */
    RS_LTV_CHARTMOGUL,
    RS_LTV_BAREMETRICS,
    RS_LTV_STRIPE,
    RS_LTV_PROFITWELL,
};
enum rs_magic_variant {
    RS_MAGIC_ARR_PRIOR_QUARTER, /* default */
    RS_MAGIC_GAAP,
    RS_MAGIC_SAME_QUARTER,
    RS_MAGIC_T4Q,
    RS_MAGIC_GM_ADJUSTED,
    RS_MAGIC_NEW_LOGO_ONLY,
};
enum rs_payback_variant { RS_PAYBACK_BESSEMER_NEW_MRR, RS_PAYBACK_NET, RS_PAYBACK_UNIT };
enum rs_r40_margin { RS_R40_FCF, RS_R40_EBITDA, RS_R40_OPERATING_MARGIN };
enum rs_customer_churn_formula { RS_CHURN_CHARTMOGUL_B2B, RS_CHURN_STRIPE_ROLLING_30D };

struct rs_finance_config {
    const struct rs_zone *zone;   /* reporting time zone (borrowed) */
    int64_t lateness_ms;          /* allowed lateness of finance buckets: 35 d */
    uint32_t min_n;               /* low_confidence below (10) */
    double gross_margin_default;  /* 0.75; a financials.reported gross margin overrides */
    double churn_floor_monthly;   /* 0.0167 */
    double shared_spend_new_logo; /* share of `shared` spend counted as new-logo: 1.0 */
    int spend_lag_periods;        /* M07 CAC: 0 */
    enum rs_ltv_formula ltv;      /* arpa_gm_over_churn_avg6 */
    enum rs_magic_variant magic;  /* arr_prior_quarter */
    enum rs_payback_variant payback;
    enum rs_r40_margin r40;
    enum rs_customer_churn_formula customer_churn;
};

void rs_finance_config_defaults(struct rs_finance_config *cfg);

/*
 * Evaluate derived metric def (an rs_finance_metric_id) at (grain, bucket), summed over
 * partitions[0..n) (n == 0: all), as of watermark_ms. out->detail holds the named inputs
 * (mrr_start, new_business, ..., spend_prior_quarter) the value was computed from. Returns 0
 * or RS_ESTORE; a grain the metric does not have is RS_EINVAL.
 */
int rs_finance_read(const struct rs_finance_config *cfg, struct rs_store *st,
                    const struct rs_metric_def *def, struct rs_str dims, enum rs_grain grain,
                    int64_t bucket, const uint32_t *partitions, size_t n, int64_t watermark_ms,
                    struct rs_metric_value *out, struct rs_err *err);

/*
 * The published value of one raw ledger cell (ids RS_MLEDGER_*, ledger.h) for the metrics
 * topic and rs_metric_eval(): MOVEMENTS the bucket's MRR change, BALANCE the MRR at its start,
 * T12 its NRR (value2 GRR), FORECAST the locked amount, FINANCIALS revenue, ... A derived id
 * (no cells) reads as null "computed_on_read".
 */
void rs_finance_eval_cell(const struct rs_metrics_config *mcfg, const struct rs_metric_def *def,
                          enum rs_grain grain, int64_t bucket, const struct rs_agg_cell *cell,
                          int64_t watermark_ms, struct rs_metric_value *out);

/*
 * The METRICS.md §7 option words, for the configuration: the enum value that `word` names
 * for option `key` ("ltv_formula", "magic_number_variant", "cac_payback_variant",
 * "rule_of_40_margin", "customer_churn_formula"), or -1; rs_finance_option_words() lists
 * them for a message ("" for an unknown key). Static strings.
 */
int rs_finance_option(const char *key, const char *word);
const char *rs_finance_option_words(const char *key);

#endif
