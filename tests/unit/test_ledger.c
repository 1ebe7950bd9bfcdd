#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agg.h"
#include "calendar.h"
#include "event.h"
#include "ledger.h"
#include "store.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN  (60 * INT64_C(1000))
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* Every expected value below was worked out by hand from METRICS.md, never by the code. */

struct fx {
    char *dir;
    struct rs_store *st;
    struct rs_zone *zone;
    struct rs_calendar *cal;
    struct rs_agg *agg;
    struct rs_ledger l;
    struct rs_ledger_config cfg;
    int64_t wm; /* the partition's watermark: the latest event time put */
    int n_ids;
    char ids[8192][24];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 64, NULL), 0);
    assert_int_equal(rs_zone_new("UTC", &f->zone, NULL), 0);
    assert_int_equal(rs_calendar_new("sales", "UTC", "mon-fri 09:00-18:00", "", &f->cal, NULL), 0);
    f->agg = rs_agg_new();
    rs_ledger_config_defaults(&f->cfg);
    f->cfg.zone = f->zone;
    f->cfg.sales_hours = f->cal;
    rs_ledger_init(&f->l, &f->cfg, f->agg);
    f->wm = INT64_MIN;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    rs_ledger_release(&f->l);
    rs_agg_free(f->agg);
    rs_calendar_free(f->cal);
    rs_zone_free(f->zone);
    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* Re-initialise the ledger with f->cfg after a test changed an option. */
static void reconfigure(struct fx *f)
{
    rs_ledger_release(&f->l);
    rs_ledger_init(&f->l, &f->cfg, f->agg);
}

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

static struct rs_str
id_of(struct fx *f, const char *prefix, int i)
{
    char *p = f->ids[f->n_ids++ % 8192];

    (void)snprintf(p, sizeof(f->ids[0]), "%s%d", prefix, i);
    return S(p);
}

/* The instant `date` (YYYY-MM-DD) h:mi in UTC. */
static int64_t at(const struct fx *f, const char *date, int h, int mi)
{
    int64_t day;

    assert_int_equal(rs_bucket_parse(f->zone, RS_GRAIN_DAY, date, strlen(date), &day, NULL), 0);
    return day + h * HOUR + mi * MIN;
}

static int64_t month(const struct fx *f, const char *label)
{
    int64_t m;

    assert_int_equal(rs_bucket_parse(f->zone, RS_GRAIN_MONTH, label, strlen(label), &m, NULL), 0);
    return m;
}

/* Apply ev in its own batch; the watermark follows the largest event time. */
static void put(struct fx *f, struct rs_event *ev)
{
    struct rs_err err;
    int rc;

    if (!rs_str_is_set(ev->id)) {
        ev->id = id_of(f, "ev", f->n_ids);
    }
    if (ev->ts_ms > f->wm) {
        f->wm = ev->ts_ms;
    }
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    rc = rs_ledger_apply(&f->l, f->st, 0, ev, f->wm, &err);
    if (rc != 0) {
        fail_msg("rs_ledger_apply: %s", err.msg);
    }
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, &err), 0);
    assert_int_equal(rs_store_commit(f->st, &err), 0);
}

/* Move the watermark to wm (time passes without events) and advance. */
static void advance(struct fx *f, int64_t wm)
{
    struct rs_err err;

    f->wm = wm;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_ledger_advance(&f->l, f->st, 0, wm, &err), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, &err), 0);
    assert_int_equal(rs_store_commit(f->st, &err), 0);
}

static struct rs_event sub(struct fx *f, enum rs_event_type type, const char *acct, int i,
                           const char *sub_id, int64_t ts, int64_t mrr, enum rs_sub_status status)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.ts_ms = ts;
    ev.account = id_of(f, acct, i);
    ev.u.subscription.subscription_id = sub_id != NULL ? S(sub_id) : id_of(f, acct, i);
    ev.u.subscription.quantity = 1;
    ev.u.subscription.interval = RS_BILL_MONTH;
    ev.u.subscription.mrr_after_minor = mrr;
    ev.u.subscription.has_mrr_after = true;
    ev.u.subscription.currency = S("USD");
    ev.u.subscription.service_period_start_ms = ts;
    ev.u.subscription.status = status;
    return ev;
}

/* Shorthand: a subscription event of customer acct+i (its subscription has the same id). */
static void ev_sub(struct fx *f, enum rs_event_type type, const char *acct, int i, int64_t ts,
                   int64_t mrr, enum rs_sub_status status)
{
    struct rs_event ev = sub(f, type, acct, i, NULL, ts, mrr, status);

    put(f, &ev);
}

static struct rs_agg_cell cell(struct fx *f, uint16_t metric, const char *dims, enum rs_grain grain,
                               int64_t t_ms)
{
    struct rs_agg_cell c;
    struct rs_agg_key key = { 0, metric, grain, rs_bucket_start(f->zone, grain, t_ms), S(dims) };

    rs_agg_cell_init(&c);
    assert_int_equal(rs_agg_read(f->st, &key, NULL, 0, &c, NULL), 0);
    rs_agg_cell_release(&c);
    return c;
}

enum { NEW, EXP, REACT, CONTR, CHURN, FXI, NEWC, REACTC };

static void assert_cell(const struct rs_agg_cell *c, const int64_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c->n[i] != want[i]) {
            fail_msg("n%zu: got %lld, want %lld", i, (long long)c->n[i], (long long)want[i]);
        }
    }
}

#define ASSERT_CELL(c, ...)                                        \
    do {                                                           \
        const int64_t want_[] = { __VA_ARGS__ };                   \
        struct rs_agg_cell c_ = (c);                               \
        assert_cell(&c_, want_, sizeof(want_) / sizeof(want_[0])); \
    } while (0)

/* MRR_end = MRR_start + movements + fx_impact over month m (BALANCE of m and m + 1). */
static void assert_identity(struct fx *f, int64_t m)
{
    int64_t next = rs_bucket_end(f->zone, RS_GRAIN_MONTH, m);
    struct rs_agg_cell mv = cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, m);
    struct rs_agg_cell b0 = cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, m);
    struct rs_agg_cell b1 = cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, next);

    assert_int_equal(b1.n[1], b0.n[1] + mv.n[NEW] + mv.n[EXP] + mv.n[REACT] - mv.n[CONTR] -
                                  mv.n[CHURN] + mv.n[FXI]);
}

/* ---- §3.3: the March example -------------------------------------------------------------- */

static void test_march_example(void **state)
{
    struct fx *f = *state;
    int64_t feb = at(f, "2026-02-02", 10, 0), mar = month(f, "2026-03");

    /* 200 customers paying 100,000 at the start of March: c20..c23 500, c24 800, c25 200. */
    for (int i = 0; i < 200; i++) {
        ev_sub(f, RS_EV_SUB_STARTED, "c", i, feb + i * MIN,
               i == 24   ? 800
               : i == 25 ? 200
                         : 500,
               RS_SUB_ACTIVE);
    }
    /* r0, r1 paid in January and churned then. */
    for (int i = 0; i < 2; i++) {
        ev_sub(f, RS_EV_SUB_STARTED, "r", i, at(f, "2026-01-05", 9, 0), 700, RS_SUB_ACTIVE);
        ev_sub(f, RS_EV_SUB_CHURNED, "r", i, at(f, "2026-01-20", 9, 0), 0, RS_SUB_CANCELED);
    }
    advance(f, at(f, "2026-03-01", 1, 0));
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, mar), 200, 100000);

    for (int i = 0; i < 10; i++) { /* expansion 5,000 */
        ev_sub(f, RS_EV_SUB_EXPANDED, "c", i, at(f, "2026-03-05", 9, i), 1000, RS_SUB_ACTIVE);
    }
    for (int i = 10; i < 18; i++) { /* contraction 2,000 */
        ev_sub(f, RS_EV_SUB_CONTRACTED, "c", i, at(f, "2026-03-06", 9, i), 250, RS_SUB_ACTIVE);
    }
    for (int i = 0; i < 16; i++) { /* 16 new customers, 8,000 */
        ev_sub(f, RS_EV_SUB_STARTED, "n", i, at(f, "2026-03-03", 9, i), i == 15 ? 200 : 520,
               RS_SUB_ACTIVE);
    }
    for (int i = 0; i < 2; i++) { /* 2 reactivations, 1,000 */
        ev_sub(f, RS_EV_SUB_REACTIVATED, "r", i, at(f, "2026-03-10", 9, 0), 500, RS_SUB_ACTIVE);
    }
    for (int i = 20; i < 25; i++) { /* 5 existing churn 2,800, and n15 joined and churned */
        ev_sub(f, RS_EV_SUB_CHURNED, "c", i, at(f, "2026-03-15", 9, i), 0, RS_SUB_CANCELED);
    }
    ev_sub(f, RS_EV_SUB_CHURNED, "n", 15, at(f, "2026-03-20", 9, 0), 0, RS_SUB_CANCELED);

    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, mar), 8000, 5000, 1000, 2000,
                3000, 0, 16, 2);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, mar), 6, 1, 5000, 2000, 2800, 0,
                0, 0);
    /* The same-bucket test is per grain: n15 joined in week 10 and churned in week 12. */
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_WEEK, at(f, "2026-03-20", 0, 0)), 1, 0);
    /* Q1 also holds February's 200 and January's r0, r1 (700 each, new and churned). */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_QUARTER, mar), 100000 + 1400 + 8000,
                5000, 1000, 2000, 1400 + 3000, 0, 200 + 2 + 16, 2);
    advance(f, at(f, "2026-04-01", 0, 30));
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 212, 109000);
    /* April starts Q2: its balance is the quarter's too. */
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_QUARTER, month(f, "2026-04")), 212,
                109000);
    assert_identity(f, mar);
}

/* ---- §3.1: the smart window ----------------------------------------------------------------- */

static void test_smart_window(void **state)
{
    struct fx *f = *state;
    int64_t t = at(f, "2026-03-02", 10, 0);
    struct rs_event a = sub(f, RS_EV_SUB_STARTED, "w", 1, "s1", t, 300, RS_SUB_ACTIVE);
    struct rs_event b = sub(f, RS_EV_SUB_STARTED, "w", 1, "s2", t + 55 * MIN, 200, RS_SUB_ACTIVE);
    struct rs_event c = sub(f, RS_EV_SUB_STARTED, "w", 2, "s3", t, 300, RS_SUB_ACTIVE);
    struct rs_event d = sub(f, RS_EV_SUB_STARTED, "w", 2, "s4", t + 65 * MIN, 200, RS_SUB_ACTIVE);

    put(f, &a);
    put(f, &b);
    /* One new business of 500 for w1, at the group's first change. */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t), 500, 0, 0, 0, 0, 0, 1, 0);
    put(f, &c);
    put(f, &d); /* outside the window: new 300, then expansion 200 */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t), 800, 200, 0, 0, 0, 0, 2, 0);
}

/* ---- §3.2: every edge case ---------------------------------------------------------------- */

static void test_churn_recognition(void **state)
{
    struct fx *f = *state;
    int64_t mar1 = at(f, "2026-03-01", 0, 0), end = at(f, "2026-04-01", 0, 0);
    int64_t cancel = at(f, "2026-03-10", 12, 0);
    struct rs_event ev;

    /* end_of_period (default): churn at the end of the final paid period. */
    ev = sub(f, RS_EV_SUB_STARTED, "eop", 1, NULL, mar1, 400, RS_SUB_ACTIVE);
    ev.u.subscription.service_period_end_ms = end;
    ev.u.subscription.has_period_end = true;
    put(f, &ev);
    ev = sub(f, RS_EV_SUB_CHURNED, "eop", 1, NULL, cancel, 0, RS_SUB_CANCELED);
    ev.u.subscription.service_period_start_ms = mar1;
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, cancel), 0, 0, 0, 0, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, end), 0, 0, 0, 0, 400);
    /* at_cancel: when the cancellation happens. */
    f->cfg.churn_recognition = RS_CHURN_AT_CANCEL;
    reconfigure(f);
    ev = sub(f, RS_EV_SUB_STARTED, "atc", 1, NULL, mar1, 300, RS_SUB_ACTIVE);
    ev.u.subscription.service_period_end_ms = end;
    ev.u.subscription.has_period_end = true;
    put(f, &ev);
    ev_sub(f, RS_EV_SUB_CHURNED, "atc", 1, cancel, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, cancel), 0, 0, 0, 0, 300);
    /* at_schedule: a cancel_at is the churn, at once; the signal n6 in every grain. */
    f->cfg.churn_recognition = RS_CHURN_AT_SCHEDULE;
    reconfigure(f);
    ev_sub(f, RS_EV_SUB_STARTED, "ats", 1, mar1, 200, RS_SUB_ACTIVE);
    ev = sub(f, RS_EV_SUB_RENEWED, "ats", 1, NULL, at(f, "2026-03-05", 8, 0), 200, RS_SUB_ACTIVE);
    ev.u.subscription.cancel_at_ms = end;
    ev.u.subscription.has_cancel_at = true;
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, at(f, "2026-03-05", 0, 0)), 0, 0, 0,
                0, 200);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, at(f, "2026-03-05", 0, 0)), 1, 0, 0,
                0, 200, 0, 1, 0);
    /* March: atc and ats, both joined on Mar 1 (not existing); eop churned on Apr 1. */
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, mar1), 2, 2, 0, 0, 0, 0, 1, 0);
    /* The cancellation at the scheduled time changes nothing more: April holds only eop's
     * churn (recognised on Apr 1, the end of its paid period, above). */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, end), 0, 0, 0, 0, 400);
    ev_sub(f, RS_EV_SUB_CHURNED, "ats", 1, end, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, end), 0, 0, 0, 0, 400);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, end), 1, 0, 0, 0, 400, 0, 0, 0);
}

static void test_zero_mrr(void **state)
{
    struct fx *f = *state;
    int64_t t = at(f, "2026-03-02", 9, 0), t2 = at(f, "2026-03-09", 9, 0);

    ev_sub(f, RS_EV_SUB_STARTED, "z", 1, t, 100, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_CONTRACTED, "z", 1, t2, 0, RS_SUB_ACTIVE); /* free plan / 100% off */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t2), 0, 0, 0, 0, 100);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, t2), 1, 0);
    /* zero_mrr_is_logo_churn = false: revenue churn, no logo churn. */
    f->cfg.zero_mrr_is_logo_churn = false;
    reconfigure(f);
    ev_sub(f, RS_EV_SUB_STARTED, "z", 2, t, 70, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_CONTRACTED, "z", 2, t2 + HOUR * 2, 0, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t2), 0, 0, 0, 0, 170);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, t2), 1, 0);
    /* A cancelled subscription is a logo churn either way. */
    ev_sub(f, RS_EV_SUB_STARTED, "z", 3, t, 30, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_CHURNED, "z", 3, t2 + HOUR * 4, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, t2), 2, 0);
}

static void test_past_due_auto_churn(void **state)
{
    struct fx *f = *state;
    int64_t jan = at(f, "2026-01-01", 0, 0), feb = at(f, "2026-02-01", 0, 0);
    struct rs_event ev = sub(f, RS_EV_SUB_STARTED, "pd", 1, NULL, jan, 250, RS_SUB_ACTIVE);
    struct rs_event paid;

    ev.u.subscription.service_period_end_ms = feb;
    ev.u.subscription.has_period_end = true;
    put(f, &ev);
    ev = sub(f, RS_EV_SUB_RENEWED, "pd", 1, NULL, feb + HOUR, 250, RS_SUB_PAST_DUE);
    ev.u.subscription.service_period_start_ms = feb;
    put(f, &ev);
    /* Past due keeps MRR: nothing yet, and nothing a day before the 30 days are up. */
    advance(f, feb + HOUR + 29 * DAY);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, feb), 0, 0, 0, 0, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-03")), 1, 250);
    /* 30 days after: churn dated at the end of the last paid period, delinquent. */
    advance(f, feb + HOUR + 30 * DAY);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, feb), 0, 0, 0, 0, 250);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, feb), 1, 0, 0, 0, 250, 1);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-03")), 0, 0);
    /* The payment recovers it: a reactivation. */
    memset(&paid, 0, sizeof(paid));
    paid.type = RS_EV_INVOICE_PAID;
    paid.ts_ms = at(f, "2026-03-10", 9, 0);
    paid.account = S("pd1");
    paid.u.invoice.invoice_id = S("inv1");
    paid.u.invoice.subscription_id = S("pd1");
    paid.u.invoice.amount_minor = 250;
    paid.u.invoice.currency = S("USD");
    put(f, &paid);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, paid.ts_ms), 0, 0, 250, 0, 0, 0, 0,
                1);
    ASSERT_CELL(cell(f, RS_MLEDGER_CASH, "", RS_GRAIN_DAY, paid.ts_ms), 250, 1, 0, 0, 0, 0);
    /* unpaid does not count MRR (Stripe). */
    ev_sub(f, RS_EV_SUB_RENEWED, "pd", 1, at(f, "2026-03-20", 9, 0), 250, RS_SUB_UNPAID);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, at(f, "2026-03-20", 9, 0)), 0, 0, 0,
                0, 250);
    /* The payment paid the past-due period (no end given): the churn is not dated back to Feb 1
     * (the end of the period before), so the reactivation stands. */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, paid.ts_ms), 0, 0, 250, 0, 0, 0, 0,
                1);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, feb), 0, 0, 0, 0, 250);
    advance(f, at(f, "2026-04-01", 0, 0));
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 0, 0);
    assert_identity(f, month(f, "2026-03"));
}

/* end_of_period with a period end from an earlier period: a new period without an end makes it
 * stale, so a later cancellation is dated at its own time, after the reactivation. */
static void test_stale_period_end(void **state)
{
    struct fx *f = *state;
    int64_t jan = at(f, "2026-01-01", 0, 0), feb = at(f, "2026-02-01", 0, 0);
    int64_t mar = at(f, "2026-03-02", 9, 0), apr = at(f, "2026-04-10", 9, 0);
    struct rs_event ev = sub(f, RS_EV_SUB_STARTED, "st", 1, NULL, jan, 250, RS_SUB_ACTIVE);

    ev.u.subscription.service_period_end_ms = feb;
    ev.u.subscription.has_period_end = true;
    put(f, &ev);
    ev_sub(f, RS_EV_SUB_CHURNED, "st", 1, at(f, "2026-01-15", 9, 0), 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, feb), 0, 0, 0, 0, 250);
    ev_sub(f, RS_EV_SUB_REACTIVATED, "st", 1, mar, 300, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_CHURNED, "st", 1, apr, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, feb), 0, 0, 0, 0, 250);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, mar), 0, 0, 300, 0, 0, 0, 0, 1);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, apr), 0, 0, 0, 0, 300);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 1, 300);
}

static void test_churn_reversal(void **state)
{
    struct fx *f = *state;
    int64_t jan = at(f, "2026-01-10", 9, 0), churn = at(f, "2026-02-10", 9, 0);
    int64_t back = at(f, "2026-03-05", 9, 0);

    f->cfg.churn_reversal_window_ms = 30 * DAY;
    reconfigure(f);
    ev_sub(f, RS_EV_SUB_STARTED, "rv", 1, jan, 400, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_CHURNED, "rv", 1, churn, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, churn), 0, 0, 0, 0, 400);
    /* Back 23 days later at 450: both retracted, one expansion of 50 instead. */
    ev_sub(f, RS_EV_SUB_REACTIVATED, "rv", 1, back, 450, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, churn), 0, 0, 0, 0, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, back), 0, 50, 0, 0, 0, 0, 0, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, churn), 0, 0);
    /* The customer was paying through the gap: the identity holds in February. */
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-03")), 1, 400);
    advance(f, at(f, "2026-04-01", 0, 0));
    assert_identity(f, month(f, "2026-02"));
    assert_identity(f, month(f, "2026-03"));
    /* A second churn and a reactivation 40 days later: both count (window 30 d). */
    ev_sub(f, RS_EV_SUB_CHURNED, "rv", 1, at(f, "2026-04-01", 9, 0), 0, RS_SUB_CANCELED);
    ev_sub(f, RS_EV_SUB_REACTIVATED, "rv", 1, at(f, "2026-05-11", 9, 0), 450, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, month(f, "2026-04")), 0, 0, 0, 0,
                450);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, month(f, "2026-05")), 0, 0, 450,
                0, 0, 0, 0, 1);
}

static struct rs_event invoice(struct fx *f, enum rs_event_type type, const char *acct, int64_t ts,
                               int64_t amount, enum rs_refund_type refund)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.ts_ms = ts;
    ev.account = S(acct);
    ev.u.invoice.invoice_id = id_of(f, "inv", f->n_ids);
    ev.u.invoice.amount_minor = amount;
    ev.u.invoice.currency = S("USD");
    ev.u.invoice.refund_type = refund;
    return ev;
}

static void test_refunds(void **state)
{
    struct fx *f = *state;
    int64_t mar = at(f, "2026-03-01", 9, 0), d3 = at(f, "2026-03-03", 9, 0);
    struct rs_event ev;

    /* Ignored for MRR (default): cash only. */
    ev_sub(f, RS_EV_SUB_STARTED, "rf", 1, mar, 100, RS_SUB_ACTIVE);
    ev = invoice(f, RS_EV_INVOICE_REFUNDED, "rf1", d3, 100, RS_REFUND_FULL);
    put(f, &ev);
    ev_sub(f, RS_EV_SUB_CHURNED, "rf", 1, d3 + HOUR, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, mar), 100, 0, 0, 0, 100);
    ASSERT_CELL(cell(f, RS_MLEDGER_CASH, "", RS_GRAIN_MONTH, mar), 0, 0, 100, 1, 0, 0);
    /* refund_void_new_business 14 d: the same story leaves no movement at all. */
    f->cfg.refund_void_new_business_ms = 14 * DAY;
    reconfigure(f);
    ev_sub(f, RS_EV_SUB_STARTED, "rf", 2, mar, 60, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, mar), 160, 0, 0, 0, 100);
    ev = invoice(f, RS_EV_INVOICE_REFUNDED, "rf2", d3, 60, RS_REFUND_FULL);
    put(f, &ev);
    ev_sub(f, RS_EV_SUB_CHURNED, "rf", 2, d3 + HOUR, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, mar), 100, 0, 0, 0, 100, 0, 1);
    ASSERT_CELL(cell(f, RS_MLEDGER_CASH, "", RS_GRAIN_MONTH, mar), 0, 0, 160, 2, 0, 0);
    /* A partial refund is only cash. */
    ev_sub(f, RS_EV_SUB_STARTED, "rf", 3, mar, 80, RS_SUB_ACTIVE);
    ev = invoice(f, RS_EV_INVOICE_REFUNDED, "rf3", d3, 20, RS_REFUND_PARTIAL);
    put(f, &ev);
    ev_sub(f, RS_EV_SUB_CHURNED, "rf", 3, d3 + HOUR, 0, RS_SUB_CANCELED);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, mar), 180, 0, 0, 0, 180, 0, 2);
    ev = invoice(f, RS_EV_INVOICE_PAYMENT_FAILED, "rf3", d3, 80, RS_REFUND_NONE);
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_CASH, "", RS_GRAIN_MONTH, mar), 0, 0, 180, 3, 80, 1);
}

static void test_trial_and_plan_switch(void **state)
{
    struct fx *f = *state;
    int64_t t = at(f, "2026-03-01", 9, 0), paid = at(f, "2026-03-15", 9, 0);
    struct rs_event ev;

    ev_sub(f, RS_EV_SUB_STARTED, "tr", 1, t, 90, RS_SUB_TRIALING);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, t), 0, 0, 0, 0, 0, 0, 0);
    ev_sub(f, RS_EV_SUB_RENEWED, "tr", 1, paid, 90, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, paid), 90, 0, 0, 0, 0, 0, 1);
    /* A plan switch at the same price: no movement. */
    ev = sub(f, RS_EV_SUB_RENEWED, "tr", 1, NULL, at(f, "2026-03-20", 9, 0), 90, RS_SUB_ACTIVE);
    ev.u.subscription.plan = S("pro-annual");
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, t), 90, 0, 0, 0, 0, 0, 1);
    /* §1.4: a yearly price normalised to a month, a finite discount ignored. */
    ev = sub(f, RS_EV_SUB_STARTED, "tr", 2, NULL, paid, 0, RS_SUB_ACTIVE);
    ev.u.subscription.has_mrr_after = false;
    ev.u.subscription.has_price = true;
    ev.u.subscription.price_minor = 1200;
    ev.u.subscription.quantity = 3;
    ev.u.subscription.interval = RS_BILL_YEAR;
    ev.u.subscription.discount_minor = 600;
    ev.u.subscription.discount_duration = RS_DISCOUNT_FINITE;
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, paid), 90 + 300, 0, 0, 0, 0, 0, 2);
}

static void test_duplicates_and_labels(void **state)
{
    struct fx *f = *state;
    int64_t t = at(f, "2026-03-02", 9, 0), t2 = at(f, "2026-03-09", 9, 0);
    struct rs_event a, b;

    ev_sub(f, RS_EV_SUB_STARTED, "d", 1, t, 100, RS_SUB_ACTIVE);
    /* Same subscription and time, no seq, other amounts: the later arrival wins. */
    a = sub(f, RS_EV_SUB_EXPANDED, "d", 1, NULL, t2, 300, RS_SUB_ACTIVE);
    b = sub(f, RS_EV_SUB_EXPANDED, "d", 1, NULL, t2, 200, RS_SUB_ACTIVE);
    put(f, &a);
    put(f, &b);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t2), 0, 100);
    ASSERT_CELL(cell(f, RS_MLEDGER_DQ, "", RS_GRAIN_DAY, t2), 0, 1, 0);
    /* With seq, seq wins whatever the arrival. */
    a = sub(f, RS_EV_SUB_EXPANDED, "d", 2, NULL, t2, 500, RS_SUB_ACTIVE);
    a.seq = 2, a.has_seq = true;
    b = sub(f, RS_EV_SUB_EXPANDED, "d", 2, NULL, t2, 400, RS_SUB_ACTIVE);
    b.seq = 1, b.has_seq = true;
    ev_sub(f, RS_EV_SUB_STARTED, "d", 2, t, 100, RS_SUB_ACTIVE);
    put(f, &a);
    put(f, &b);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t2), 0, 100 + 400);
    ASSERT_CELL(cell(f, RS_MLEDGER_DQ, "", RS_GRAIN_DAY, t2), 0, 1, 0);
    /* A label the amounts disagree with: "expanded" to less is a contraction, counted. */
    ev_sub(f, RS_EV_SUB_EXPANDED, "d", 1, at(f, "2026-03-12", 9, 0), 150, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, at(f, "2026-03-12", 9, 0)), 0, 0, 0,
                50, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_DQ, "", RS_GRAIN_DAY, at(f, "2026-03-12", 9, 0)), 1, 0, 0);
    /* d1 joined on Mar 2, so its contraction is not one of a customer existing at the start of
     * March (§M05): only the disagreement counts there. On Mar 12 it was paying at the start. */
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_MONTH, t), 0, 0, 0, 0, 0, 0, 0, 1);
    ASSERT_CELL(cell(f, RS_MLEDGER_CUSTOMERS, "", RS_GRAIN_DAY, at(f, "2026-03-12", 9, 0)), 0, 0, 0,
                50, 0, 0, 0, 1);
    assert_int_equal(f->l.counters.disagreeing, 1);
}

static void test_backdated(void **state)
{
    struct fx *f = *state;
    int64_t t1 = at(f, "2026-03-01", 9, 0), t10 = at(f, "2026-03-10", 9, 0);
    int64_t t20 = at(f, "2026-03-20", 9, 0);

    ev_sub(f, RS_EV_SUB_STARTED, "b", 1, t1, 500, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_EXPANDED, "b", 1, t20, 800, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t20), 0, 300);
    /* Late: a contraction on the 10th. The 20th is restated from 300 to 500. */
    ev_sub(f, RS_EV_SUB_CONTRACTED, "b", 1, t10, 300, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t10), 0, 0, 0, 200);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, t20), 0, 500);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, t1), 500, 500, 0, 200, 0);
    assert_true(f->l.counters.restated >= 1);
    advance(f, at(f, "2026-04-02", 0, 0));
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 1, 800);
    assert_identity(f, month(f, "2026-03"));
}

/* ---- §1.3: FX ------------------------------------------------------------------------------ */

static void fx_rate(struct fx *f, const char *cur, const char *day, double rate)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_FX_RATE;
    ev.ts_ms = at(f, day, 0, 0);
    ev.u.fx_rate.currency = S(cur);
    ev.u.fx_rate.rate = rate;
    ev.u.fx_rate.date_ms = ev.ts_ms;
    put(f, &ev);
}

static void test_fx(void **state)
{
    struct fx *f = *state;
    int64_t jan = at(f, "2026-01-01", 0, 0), feb = at(f, "2026-02-01", 0, 0);
    int64_t feb10 = at(f, "2026-02-10", 9, 0), out;
    struct rs_event ev;
    const char *reason = "unset";
    bool fallback;

    /* Admission: no GBP rate at all refuses; the reporting currency needs none. */
    ev = sub(f, RS_EV_SUB_STARTED, "gb", 1, NULL, jan, 100, RS_SUB_ACTIVE);
    ev.u.subscription.currency = S("GBP");
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    assert_int_equal(rs_ledger_admit(&f->l, f->st, &ev, &reason, NULL), 0);
    assert_string_equal(reason, "fx_rate_missing");
    ev.u.subscription.currency = S("USD");
    assert_int_equal(rs_ledger_admit(&f->l, f->st, &ev, &reason, NULL), 0);
    assert_null(reason);
    rs_store_read_end(f->st);

    fx_rate(f, "EUR", "2026-01-01", 1.10);
    fx_rate(f, "EUR", "2026-02-01", 1.20);
    ev.u.subscription.currency = S("EUR");
    ev.u.subscription.service_period_start_ms = at(f, "2025-12-31", 0, 0);
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    assert_int_equal(rs_ledger_admit(&f->l, f->st, &ev, &reason, NULL), 0);
    assert_string_equal(reason, "fx_rate_missing"); /* no rate on or before Dec 31 */
    assert_int_equal(rs_ledger_convert(&f->l, f->st, S("EUR"), feb10, 1000, &out, &fallback, NULL),
                     0);
    assert_int_equal(out, 1200);
    assert_true(fallback);
    rs_store_read_end(f->st);

    ev = sub(f, RS_EV_SUB_STARTED, "eu", 1, NULL, jan + HOUR, 1000, RS_SUB_ACTIVE);
    ev.u.subscription.currency = S("EUR");
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, jan), 1100, 0, 0, 0, 0, 0, 1);
    ASSERT_CELL(cell(f, RS_MLEDGER_DQ, "", RS_GRAIN_MONTH, jan), 0, 0, 0); /* 01:00: same day */
    /* Renewal at the new rate, same EUR: no movement, +100 FX impact. */
    ev = sub(f, RS_EV_SUB_RENEWED, "eu", 1, NULL, feb, 1000, RS_SUB_ACTIVE);
    ev.u.subscription.currency = S("EUR");
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, feb), 0, 0, 0, 0, 0, 100, 0);
    /* Expansion to 1500 EUR on Feb 10 (the Feb 1 rate, a fallback): 600 at constant rate. */
    ev = sub(f, RS_EV_SUB_EXPANDED, "eu", 1, NULL, feb10, 1500, RS_SUB_ACTIVE);
    ev.u.subscription.currency = S("EUR");
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_DAY, feb10), 0, 600, 0, 0, 0, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_DQ, "", RS_GRAIN_DAY, feb10), 0, 0, 1);
    /* A rate change with an expansion in one renewal: 1.25 and 1600 EUR on Mar 1. */
    fx_rate(f, "EUR", "2026-03-01", 1.25);
    ev = sub(f, RS_EV_SUB_RENEWED, "eu", 1, NULL, at(f, "2026-03-01", 0, 0), 1600, RS_SUB_ACTIVE);
    ev.u.subscription.currency = S("EUR");
    put(f, &ev);
    /* constant rate: 1600 x 1.2 - 1800 = 120 expansion; FX 2000 - 1920 = 80 */
    ASSERT_CELL(cell(f, RS_MLEDGER_MOVEMENTS, "", RS_GRAIN_MONTH, month(f, "2026-03")), 0, 120, 0,
                0, 0, 80);
    /* A USD customer alongside, a rounding rate, and the identity in every month. */
    fx_rate(f, "EUR", "2026-03-15", 1.0 / 3.0);
    ev = sub(f, RS_EV_SUB_RENEWED, "eu", 1, NULL, at(f, "2026-03-15", 0, 0), 1601, RS_SUB_ACTIVE);
    ev.u.subscription.currency = S("EUR");
    put(f, &ev);
    ev_sub(f, RS_EV_SUB_STARTED, "us", 1, feb10, 333, RS_SUB_ACTIVE);
    advance(f, at(f, "2026-04-01", 0, 0));
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 2,
                534 + 333); /* 1601 / 3 = 533.67 -> 534 */
    assert_identity(f, jan);
    assert_identity(f, feb);
    assert_identity(f, month(f, "2026-03"));
}

/* ---- M05(b) T12 and M21 cohorts -------------------------------------------------------------- */

static void test_t12(void **state)
{
    struct fx *f = *state;
    const int64_t before[] = { 1000, 500, 400, 700, 400 }, after[] = { 1300, 500, 0, 600, 450 };
    int64_t start = at(f, "2025-12-15", 9, 0), change = at(f, "2026-07-15", 9, 0);

    for (int i = 0; i < 5; i++) {
        ev_sub(f, RS_EV_SUB_STARTED, "t", i, start, before[i], RS_SUB_ACTIVE);
    }
    for (int i = 0; i < 5; i++) {
        if (after[i] != before[i]) {
            ev_sub(f, after[i] > before[i] ? RS_EV_SUB_EXPANDED : RS_EV_SUB_CONTRACTED, "t", i,
                   change + i * HOUR, after[i], after[i] == 0 ? RS_SUB_CANCELED : RS_SUB_ACTIVE);
        }
    }
    ev_sub(f, RS_EV_SUB_STARTED, "t", 5, change, 300, RS_SUB_ACTIVE); /* F: excluded */
    advance(f, at(f, "2027-01-05", 0, 0));
    /* T = 2027-01: customers with MRR > 0 at the end of 2026-01. */
    ASSERT_CELL(cell(f, RS_MLEDGER_T12, "", RS_GRAIN_MONTH, month(f, "2027-01")), 5, 3000, 2850,
                2500);
    /* 2026-12 compares the end of 2025-12 (same set) with the end of 2026-12. */
    ASSERT_CELL(cell(f, RS_MLEDGER_T12, "", RS_GRAIN_MONTH, month(f, "2026-12")), 5, 3000, 2850,
                2500);
    ASSERT_CELL(cell(f, RS_MLEDGER_T12, "", RS_GRAIN_MONTH, month(f, "2026-11")), 0, 0, 0, 0);
}

static void test_cohort(void **state)
{
    struct fx *f = *state;
    int64_t jan = at(f, "2026-01-20", 9, 0), mar = at(f, "2026-03-03", 9, 0);

    ev_sub(f, RS_EV_SUB_STARTED, "co", 1, jan, 1000, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_STARTED, "co", 2, jan, 500, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_EXPANDED, "co", 1, mar, 1300, RS_SUB_ACTIVE);
    ev_sub(f, RS_EV_SUB_CHURNED, "co", 2, mar, 0, RS_SUB_CANCELED);
    ev_sub(f, RS_EV_SUB_STARTED, "co", 3, mar, 700, RS_SUB_ACTIVE); /* the March cohort */
    ASSERT_CELL(cell(f, RS_MLEDGER_COHORT, "cohort=2026-01", RS_GRAIN_MONTH, jan), 1500, 0, 0, 0, 0,
                0, 2);
    ASSERT_CELL(cell(f, RS_MLEDGER_COHORT, "cohort=2026-01", RS_GRAIN_MONTH, mar), 0, 300, 0, 500,
                0, 0, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_COHORT, "cohort=2026-03", RS_GRAIN_MONTH, mar), 700, 0, 0, 0, 0,
                0, 1);
}

/* ---- time: month rollover ------------------------------------------------------------------- */

static void test_rollover(void **state)
{
    struct fx *f = *state;

    ev_sub(f, RS_EV_SUB_STARTED, "ro", 1, at(f, "2026-01-10", 9, 0), 420, RS_SUB_ACTIVE);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-02")), 0, 0);
    advance(f, at(f, "2026-02-01", 0, 5));
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-02")), 1, 420);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-03")), 0, 0);
    advance(f, at(f, "2026-04-03", 0, 0)); /* two months at once */
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-03")), 1, 420);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 1, 420);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_QUARTER, month(f, "2026-04")), 1, 420);
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_QUARTER, month(f, "2026-03")), 0, 0);
    advance(f, at(f, "2026-04-20", 0, 0)); /* same month: nothing changes */
    ASSERT_CELL(cell(f, RS_MLEDGER_BALANCE, "", RS_GRAIN_MONTH, month(f, "2026-04")), 1, 420);
}

/* ---- spend, forecasts, financials ------------------------------------------------------------ */

static void spend(struct fx *f, const char *from, const char *to, int64_t amount,
                  enum rs_spend_allocation alloc, enum rs_spend_function fn)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_SPEND_RECORDED;
    ev.ts_ms = at(f, from, 0, 0);
    ev.u.spend.period_start_ms = at(f, from, 0, 0);
    ev.u.spend.period_end_ms = at(f, to, 0, 0);
    ev.u.spend.amount_minor = amount;
    ev.u.spend.allocation = alloc;
    ev.u.spend.function = fn;
    ev.u.spend.currency = S("USD");
    put(f, &ev);
}

static void test_spend(void **state)
{
    struct fx *f = *state;

    /* Jan 15 .. Mar 15: 17 + 28 + 14 = 59 days. */
    spend(f, "2026-01-15", "2026-03-15", 5900, RS_ALLOC_NEW_LOGO, RS_FN_SALES);
    ASSERT_CELL(cell(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, month(f, "2026-01")), 1700, 1700, 0,
                0, 1700, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, month(f, "2026-02")), 2800, 2800, 0,
                0, 2800, 0);
    ASSERT_CELL(cell(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, month(f, "2026-03")), 1400, 1400, 0,
                0, 1400, 0);
    /* 1000 over 3 days (1 in March, 2 in April): 333 + 667, exactly 1000. */
    spend(f, "2026-03-31", "2026-04-03", 1000, RS_ALLOC_SHARED, RS_FN_MARKETING);
    ASSERT_CELL(cell(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, month(f, "2026-03")), 1733, 1400, 0,
                333, 1400, 333);
    ASSERT_CELL(cell(f, RS_MLEDGER_SPEND, "", RS_GRAIN_MONTH, month(f, "2026-04")), 667, 0, 0, 667,
                0, 667);
    ASSERT_CELL(cell(f, RS_MLEDGER_SPEND, "", RS_GRAIN_QUARTER, month(f, "2026-01")), 5900 + 333,
                5900, 0, 333, 5900, 333);
}

static void forecast(struct fx *f, const char *period, uint8_t first_month, uint8_t months,
                     int64_t as_of, int64_t amount)
{
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_FORECAST_SUBMITTED;
    ev.ts_ms = as_of;
    ev.u.forecast.forecast_id = id_of(f, "fc", f->n_ids);
    ev.u.forecast.scope = RS_SCOPE_COMPANY;
    ev.u.forecast.period = (struct rs_period){ S(period), 2026, first_month, months };
    ev.u.forecast.measure = RS_MEASURE_NET_NEW_ARR;
    ev.u.forecast.category = RS_FC_COMMIT;
    ev.u.forecast.amount_minor = amount;
    ev.u.forecast.currency = S("USD");
    ev.u.forecast.as_of_ms = as_of;
    put(f, &ev);
}

static void test_forecast_lock(void **state)
{
    struct fx *f = *state;
    const char *dims = "category=commit,measure=net_new_arr,scope=company";

    /* Q2 2026 starts on Wednesday Apr 1: the lock is the last version by the end of Apr 1. */
    forecast(f, "2026-Q2", 4, 3, at(f, "2026-03-28", 10, 0), 300);
    forecast(f, "2026-Q2", 4, 3, at(f, "2026-04-01", 17, 0), 320);
    forecast(f, "2026-Q2", 4, 3, at(f, "2026-04-03", 10, 0), 350);
    ASSERT_CELL(cell(f, RS_MLEDGER_FORECAST, dims, RS_GRAIN_QUARTER, month(f, "2026-04")), 320, 1,
                350, 3);
    /* August 2026 starts on a Saturday: the first business day is Monday Aug 3. */
    forecast(f, "2026-08", 8, 1, at(f, "2026-08-03", 20, 0), 40);
    forecast(f, "2026-08", 8, 1, at(f, "2026-08-04", 9, 0), 45);
    ASSERT_CELL(cell(f, RS_MLEDGER_FORECAST, dims, RS_GRAIN_MONTH, month(f, "2026-08")), 40, 1, 45,
                2);
    /* Only versions after the lock: no lock. */
    forecast(f, "2026-09", 9, 1, at(f, "2026-09-05", 9, 0), 10);
    ASSERT_CELL(cell(f, RS_MLEDGER_FORECAST, dims, RS_GRAIN_MONTH, month(f, "2026-09")), 0, 0, 10,
                1);
}

static void test_financials(void **state)
{
    struct fx *f = *state;
    struct rs_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = RS_EV_FINANCIALS_REPORTED;
    ev.ts_ms = at(f, "2026-04-10", 0, 0);
    ev.u.financials.period = (struct rs_period){ S("2026-Q1"), 2026, 1, 3 };
    ev.u.financials.revenue_minor = 1000;
    ev.u.financials.currency = S("USD");
    ev.u.financials.gross_margin_pct = 78;
    ev.u.financials.has_gross_margin = true;
    put(f, &ev);
    ev.id = RS_STR_NULL;
    ev.ts_ms = at(f, "2026-04-20", 0, 0); /* a restated report wins */
    ev.u.financials.revenue_minor = 1100;
    ev.u.financials.ebitda_minor = -50;
    ev.u.financials.has_ebitda = true;
    put(f, &ev);
    ev.id = RS_STR_NULL;
    ev.ts_ms = at(f, "2026-04-15", 0, 0); /* an older one does not */
    ev.u.financials.revenue_minor = 1;
    put(f, &ev);
    ASSERT_CELL(cell(f, RS_MLEDGER_FINANCIALS, "", RS_GRAIN_QUARTER, month(f, "2026-01")), 1100,
                7800, -50, 0, 0, 3, 1);
    ev.id = RS_STR_NULL;
    ev.u.financials.period = (struct rs_period){ S("2026"), 2026, 1, 12 };
    ev.u.financials.revenue_minor = 5000;
    put(f, &ev);
    ASSERT_CELL(
        cell(f, RS_MLEDGER_FINANCIALS, "period=year", RS_GRAIN_QUARTER, month(f, "2026-01")), 5000,
        7800, -50, 0, 0, 3, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_march_example, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_smart_window, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_churn_recognition, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_zero_mrr, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_past_due_auto_churn, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stale_period_end, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_churn_reversal, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refunds, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_trial_and_plan_switch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_labels, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_backdated, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fx, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_t12, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cohort, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rollover, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_spend, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_forecast_lock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_financials, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
