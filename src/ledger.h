/*
 * ledger.h - the customer MRR ledger (METRICS.md §3) and the finance facts around it: FX
 * rates (§1.3), invoices (cash), S&M spend, forecasts and reported financials.
 *
 * Write side. Each customer (the account) has one record in the `entities` database: the log
 * of its subscription events in (occurred_at, seq, id) order, each with its MRR normalised
 * (§1.4) and converted to the reporting currency at the rate of its service-period start.
 * The customer's facts are a pure function of that log, the configuration and the partition's
 * horizon (the month of its watermark): ledger_fold() replays the log, groups changes within
 * the smart-classification window, classifies each group from customer-level MRR before and
 * after (§3.1), applies the §3.2 rules (churn recognition, zero MRR, past-due auto-churn,
 * churn reversal, refunds, trials), and puts FX changes on their own line. An event, late or
 * backdated or not, inserts into the log, re-folds, and applies the difference between the
 * facts before and after (retraction, then the corrected facts), as metrics.c does. Labels
 * are advisory: a label the amounts disagree with is counted (dq), never obeyed.
 *
 * Time-driven changes re-fold a customer without an event: a new month (balance snapshots
 * of the month that began), and a past-due subscription reaching past_due_auto_churn_days.
 * rs_ledger_advance() does both from the watermark; it is cheap when nothing is due.
 *
 * Balances: per customer per month, the MRR at the month's start is a fact of the fold
 * (snapshots in LMDB, summed by partition in the BALANCE cells) from the customer's first
 * paying month up to the horizon; T12 NRR/GRR pairs likewise. Nothing re-reads history.
 *
 * FX rates are reference data for the whole store (not per partition): fx.rate events on any
 * partition set (currency, day) -> rate; a conversion uses the latest rate dated on or before
 * the day it needs. An event that needs a rate no fx.rate has given is refused before it is
 * applied (rs_ledger_admit(): dead letter `fx_rate_missing`), so it can be sent again later.
 * With several instances, fx.rate must reach every instance's partitions (README).
 *
 * Cell layouts (metric ids are stored in aggregate keys: never reuse), amounts in the
 * reporting currency's minor units:
 *   RS_MLEDGER_MOVEMENTS  dims ""; all grains; bucket: the movement's effective time
 *       n0 new_business  n1 expansion  n2 reactivation  n3 contraction  n4 churn
 *       n5 fx_impact (signed)  n6 new customers  n7 reactivated customers
 *   RS_MLEDGER_CUSTOMERS  dims ""; one fact per grain (the "same bucket" tests are per grain)
 *       n0 churned customers (logo)  n1 of them, new business in the same bucket
 *       n2 expansion of customers paying at the bucket start ("existing")
 *       n3 contraction of existing  n4 churn MRR of existing
 *       n5 customers auto-churned as delinquent  n6 churn scheduled (signal)
 *       n7 movements whose label the amounts disagree with (dq consistency)
 *   RS_MLEDGER_BALANCE    dims ""; month (every month) and quarter (quarter-start months)
 *       n0 customers with MRR > 0 at the bucket start  n1 their MRR at the bucket start
 *   RS_MLEDGER_T12        dims ""; month m: customers with MRR > 0 at the end of m - 12
 *       n0 customers  n1 their MRR at the end of m - 12  n2 their MRR at the end of m
 *       n3 sum of min(MRR end m, MRR end m - 12)
 *   RS_MLEDGER_COHORT     dims "cohort=YYYY-MM" (month of the first new business); month
 *       grain, bucket: the movement's month
 *       n0 new_business  n1 expansion  n2 contraction  n3 churn  n4 reactivation
 *       n5 fx_impact  n6 new customers
 *   RS_MLEDGER_CASH       dims ""; all grains; bucket: the invoice event's time; converted at
 *       the transaction date's rate
 *       n0 paid  n1 invoices paid  n2 refunded  n3 refunds  n4 failed  n5 failures
 *   RS_MLEDGER_SPEND      dims ""; month and quarter; prorated by days over the months
 *       (remainders so that the parts sum to the amount exactly)
 *       n0 all S&M  n1 new_logo  n2 expansion  n3 shared  n4 sales  n5 marketing
 *   RS_MLEDGER_FORECAST   dims "category=<c>,measure=<m>,scope=<s>[,scope_id=<id>]"; the
 *       forecast period's grain (month or quarter), bucket: the period start
 *       n0 locked amount  n1 1 when a lock exists  n2 latest amount  n3 versions
 *       The lock is the latest version with as_of at or before the end of the period's first
 *       business day (sales calendar); versions after it are kept, not evaluated.
 *   RS_MLEDGER_FINANCIALS dims "" for a month or quarter report (its grain, bucket: the
 *       period start); dims "period=year" for a year report (quarter grain, bucket: the
 *       year's first quarter); the latest report (by ts) of a period wins
 *       n0 revenue  n1 gross margin in basis points (78% = 7800)  n2 ebitda
 *       n3 free cash flow  n4 operating income  n5 fields present (bit 0 gm, 1 ebitda,
 *       2 fcf, 3 operating income)  n6 reports (1)
 *   RS_MLEDGER_DQ         dims ""; all grains; bucket: event time
 *       n0 label disagreements  n1 conflicts (same subscription and time, no seq)
 *       n2 rate fallbacks (a rate from an earlier day)
 *
 * Threads: the loop thread, inside the caller's batch.
 */
#ifndef RS_LEDGER_H
#define RS_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "agg.h"
#include "calendar.h"
#include "err.h"
#include "event.h"
#include "store.h"

/* Raw cell ids (see above). The derived metrics (mrr, nrr, ...) are finance.h's. */
enum rs_ledger_metric_id {
    RS_MLEDGER_MOVEMENTS = 1,
    RS_MLEDGER_CUSTOMERS = 2,
    RS_MLEDGER_BALANCE = 3,
    RS_MLEDGER_T12 = 4,
    RS_MLEDGER_COHORT = 5,
    RS_MLEDGER_CASH = 6,
    RS_MLEDGER_SPEND = 7,
    RS_MLEDGER_FORECAST = 8,
    RS_MLEDGER_FINANCIALS = 9,
    RS_MLEDGER_DQ = 10,
};

/* Entity kinds of the ledger in `entities` (metrics.c has 0x20-0x24): never reuse. */
enum {
    RS_KIND_CUSTOMER = 0x30,     /* a customer's subscription log, by account */
    RS_KIND_LEDGER_DUE = 0x31,   /* be64(due ms) account -> "" : time-driven re-folds */
    RS_KIND_LEDGER_STATE = 0x32, /* "" -> the partition's horizon month */
    RS_KIND_FORECAST = 0x33,     /* a forecast series' versions, by dims|period */
    RS_KIND_FINANCIALS = 0x34,   /* the latest report of a period, by period */
    RS_KIND_FX = 0x35,           /* under RS_LEDGER_STORE_WIDE: currency be64(day) -> rate */
};

/* The partition number under which store-wide reference data (FX rates) is keyed. */
#define RS_LEDGER_STORE_WIDE UINT32_MAX

enum rs_churn_recognition {
    RS_CHURN_AT_CANCEL,     /* when the cancellation event happens */
    RS_CHURN_END_OF_PERIOD, /* at the end of the final paid service period (default) */
    RS_CHURN_AT_SCHEDULE,   /* as soon as a cancellation is scheduled (cancel_at) */
};

/* METRICS.md §7; rs_ledger_config_defaults() gives the §7 defaults. */
struct rs_ledger_config {
    const struct rs_zone *zone;                  /* reporting time zone (borrowed) */
    const struct rs_calendar *sales_hours;       /* forecast locks (borrowed) */
    char reporting_currency[4];                  /* "USD" */
    int64_t classification_window_ms;            /* smart_classification_window: 60 min */
    enum rs_churn_recognition churn_recognition; /* end_of_period */
    bool zero_mrr_is_logo_churn;                 /* true */
    int64_t past_due_auto_churn_ms;              /* 30 d; 0 = never */
    int64_t churn_reversal_window_ms;            /* 0 = off */
    int64_t refund_void_new_business_ms;         /* refund_handling: 0 = ignore */
    bool finite_discounts_reduce_mrr;            /* false */
};

void rs_ledger_config_defaults(struct rs_ledger_config *cfg);

/* Live counters, not state. */
struct rs_ledger_counters {
    uint64_t refolds;     /* customer re-folds (events and time) */
    uint64_t restated;    /* facts retracted and replaced */
    uint64_t rejected;    /* events refused by rs_ledger_admit() */
    uint64_t disagreeing; /* labels the amounts disagree with */
};

struct rs_ledger {
    struct rs_ledger_config cfg;
    struct rs_agg *agg; /* borrowed: the batch cache, flushed by the caller */
    struct rs_ledger_counters counters;
    void *scratch; /* the fold's working memory, reused */
};

void rs_ledger_init(struct rs_ledger *l, const struct rs_ledger_config *cfg, struct rs_agg *agg);
void rs_ledger_release(struct rs_ledger *l);

/*
 * Before dedup and every other module: may this event be applied? Sets *reason to NULL (yes)
 * or to a dead-letter reason ("fx_rate_missing") with err naming the currency and day. Only
 * subscription.*, invoice.*, spend.recorded, forecast.submitted, financials.reported can be
 * refused. Returns 0 or RS_ESTORE.
 */
int rs_ledger_admit(struct rs_ledger *l, struct rs_store *st, const struct rs_event *ev,
                    const char **reason, struct rs_err *err);

/*
 * Apply one event of `partition` (the types above and fx.rate; others are ignored) inside the
 * caller's batch; watermark_ms is the partition's event-time watermark after this event.
 * Returns 0 or a negative code.
 */
int rs_ledger_apply(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                    const struct rs_event *ev, int64_t watermark_ms, struct rs_err *err);

/*
 * The time-driven re-folds of `partition` up to watermark_ms: every customer when the
 * watermark entered a new month (balances of the new month), and the customers whose due time
 * passed (past-due auto-churn). Call once per batch per partition whose watermark moved, and
 * before reading. Returns 0 or a negative code.
 */
int rs_ledger_advance(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                      int64_t watermark_ms, struct rs_err *err);

/*
 * Convert amount_minor of currency on day_ms (any instant of the day, UTC) into the reporting
 * currency with the latest rate dated on or before that day. Returns 0, RS_ENOTFOUND (no rate)
 * or RS_ESTORE. *fallback says whether the rate is from an earlier day.
 */
int rs_ledger_convert(struct rs_ledger *l, struct rs_store *st, struct rs_str currency,
                      int64_t day_ms, int64_t amount_minor, int64_t *out, bool *fallback,
                      struct rs_err *err);

#endif
