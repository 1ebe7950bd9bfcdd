#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calendar.h"
#include "event.h"
#include "guardrail.h"
#include "store.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY   (24 * 3600 * INT64_C(1000))
#define MAR1  INT64_C(1772323200000) /* 2026-03-01 00:00 UTC */
#define MAR10 (MAR1 + 9 * DAY)
#define APR1  (MAR1 + 31 * DAY)
#define JAN1  INT64_C(1767225600000) /* 2026-01-01: Q1 */
#define FEB15 (JAN1 + 45 * DAY)
#define MAY15 (APR1 + 44 * DAY) /* Q2 */

/* What the fake reader answers: one row per (metric, grain, bucket). */
struct row {
    const char *metric;
    enum rs_grain grain;
    int64_t bucket;
    struct rs_metric_value v;
};

struct seen {
    enum rs_alert_kind kind;
    char id[65];
    char retracts[65];
    char level[24];
    char status[16];
    char sla_type[40];
    char entity[48];
    uint32_t attempt_n;
    double value, threshold;
    char comparison[4];
    char bucket[16];
    bool provisional, qtd;
    bool encoded_kpi; /* the encoder wrote a `kpi` map */
};

struct fixture {
    char *dir;
    struct rs_store *st;
    struct rs_zone *zone;
    struct rs_guardrails g;
    struct row rows[16];
    size_t n_rows;
    int reads_failing; /* a code every read returns, 0: none */
    struct seen alerts[32];
    int n;
};

static int record_alert(void *opaque, const struct rs_alert *a, struct rs_err *err)
{
    struct fixture *f = opaque;
    struct rs_event_decoder dec;
    struct rs_alert_view view;
    struct rs_buf buf;
    struct seen *s;

    (void)err;
    assert_true(f->n < 32);
    assert_non_null(a->kpi);
    s = &f->alerts[f->n++];
    s->kind = a->kind;
    memcpy(s->id, a->alert_id, 65);
    memcpy(s->retracts, a->retracts_id, 65);
    (void)snprintf(s->level, sizeof(s->level), "%s", a->level);
    (void)snprintf(s->status, sizeof(s->status), "%s", a->status);
    (void)snprintf(s->sla_type, sizeof(s->sla_type), "%s", a->sla_type);
    (void)snprintf(s->entity, sizeof(s->entity), "%.*s", (int)a->entity_id.len, a->entity_id.ptr);
    s->attempt_n = a->attempt_n;
    s->value = a->kpi->value;
    s->threshold = a->kpi->threshold;
    (void)snprintf(s->comparison, sizeof(s->comparison), "%s", a->kpi->comparison);
    (void)snprintf(s->bucket, sizeof(s->bucket), "%s", a->kpi->bucket);
    s->provisional = a->kpi->provisional;
    s->qtd = a->kpi->qtd;

    /* The alert goes on the wire like an SLA alert, with its kpi map. */
    rs_buf_init(&buf);
    rs_alert_encode(a, &buf);
    rs_event_decoder_init(&dec, 1 << 20);
    assert_int_equal(rs_alert_view_decode(&dec, buf.data, buf.len, &view, NULL), 0);
    assert_int_equal(view.kind, a->kind);
    assert_int_equal(view.alert_id.len, 64);
    assert_memory_equal(view.alert_id.ptr, a->alert_id, 64);
    for (size_t i = 0; i + 5 <= buf.len; i++) {
        s->encoded_kpi = s->encoded_kpi || memcmp(buf.data + i, "\xa3kpi\x88", 5) == 0;
    }
    rs_event_decoder_release(&dec);
    rs_buf_release(&buf);
    return 0;
}

static int fake_read(void *opaque, const char *metric, enum rs_grain grain, int64_t bucket,
                     struct rs_metric_value *out, struct rs_err *err)
{
    struct fixture *f = opaque;

    if (f->reads_failing != 0) {
        return rs_err_set(err, f->reads_failing, "fake reader fails");
    }
    for (size_t i = 0; i < f->n_rows; i++) {
        const struct row *r = &f->rows[i];

        if (strcmp(r->metric, metric) == 0 && r->grain == grain && r->bucket == bucket) {
            *out = r->v;
            return 0;
        }
    }
    if (strcmp(metric, "magic_number") == 0 || strcmp(metric, "cac_payback") == 0 ||
        strcmp(metric, "nrr_t12") == 0 || strcmp(metric, "speed_to_lead") == 0) {
        memset(out, 0, sizeof(*out));
        out->is_null = true;
        out->null_reason = "no_base";
        return 0;
    }
    return rs_err_set(err, RS_EINVAL, "no metric named '%s'", metric); /* not built yet */
}

/* Set (or replace) the value the reader gives for (metric, grain, bucket). */
static void set_value(struct fixture *f, const char *metric, enum rs_grain grain, int64_t bucket,
                      double value, double value2, bool provisional)
{
    struct row *r = NULL;

    for (size_t i = 0; i < f->n_rows; i++) {
        if (strcmp(f->rows[i].metric, metric) == 0 && f->rows[i].grain == grain &&
            f->rows[i].bucket == bucket) {
            r = &f->rows[i];
        }
    }
    if (r == NULL) {
        assert_true(f->n_rows < 16);
        r = &f->rows[f->n_rows++];
    }
    memset(r, 0, sizeof(*r));
    r->metric = metric;
    r->grain = grain;
    r->bucket = bucket;
    r->v.value = value;
    r->v.value2 = value2;
    r->v.pct_within = value;
    r->v.count = 20;
    r->v.provisional = provisional;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rs_guardrail_config cfg;

    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 8, NULL), 0);
    assert_int_equal(rs_zone_new("UTC", &f->zone, NULL), 0);
    rs_guardrail_config_defaults(&cfg);
    cfg.zone = f->zone;
    cfg.interval_ms = 0;
    rs_guardrails_init(&f->g, &cfg, record_alert, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rs_store_close(f->st);
    rs_zone_free(f->zone);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* One evaluation in its own committed batch; returns the alerts published. */
static int eval(struct fixture *f, int64_t watermark)
{
    int n;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    n = rs_guardrails_eval(&f->g, f->st, watermark, fake_read, f, NULL);
    assert_true(n >= 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    return n;
}

static void expect_id(const char *got, const char *name, const char *bucket, uint32_t attempt,
                      const char *level, const char *suffix)
{
    char sla_type[40], entity[48], want[65];

    (void)snprintf(sla_type, sizeof(sla_type), "KPI-%s", name);
    (void)snprintf(entity, sizeof(entity), "%s|%s", name, bucket);
    rs_sla_alert_id(want, RS_STR_NULL, sla_type, (struct rs_str){ entity, strlen(entity) }, attempt,
                    level, suffix);
    assert_string_equal(got, want);
}

static void test_breach_alerts_once_then_confirms_when_final(void **state)
{
    struct fixture *f = *state;

    set_value(f, "nrr_t12", RS_GRAIN_MONTH, MAR1, 0.95, 0.90, true);
    assert_int_equal(eval(f, MAR10), 1);
    assert_int_equal(f->alerts[0].kind, RS_ALERT_BREACHED);
    assert_string_equal(f->alerts[0].level, "L1_breach");
    assert_string_equal(f->alerts[0].status, "breached");
    assert_string_equal(f->alerts[0].sla_type, "KPI-nrr_t12");
    assert_string_equal(f->alerts[0].entity, "nrr_t12|2026-03");
    assert_string_equal(f->alerts[0].bucket, "2026-03");
    assert_true(f->alerts[0].value == 0.95);
    assert_true(f->alerts[0].threshold == 1.0);
    assert_string_equal(f->alerts[0].comparison, "<");
    assert_true(f->alerts[0].provisional);
    assert_true(f->alerts[0].qtd);
    assert_true(f->alerts[0].encoded_kpi);
    expect_id(f->alerts[0].id, "nrr_t12", "2026-03", 1, "L1_breach", "");
    /* GRR 90% is above its 85% threshold: no alert. */

    /* Same value, and a worse one: the episode has alerted already. */
    assert_int_equal(eval(f, MAR10 + DAY), 0);
    set_value(f, "nrr_t12", RS_GRAIN_MONTH, MAR1, 0.93, 0.90, true);
    assert_int_equal(eval(f, MAR10 + 2 * DAY), 0);

    /* April: March ended but is still provisional (lateness), then final. */
    assert_int_equal(eval(f, APR1 + DAY), 0);
    set_value(f, "nrr_t12", RS_GRAIN_MONTH, MAR1, 0.93, 0.90, false);
    assert_int_equal(eval(f, APR1 + 2 * DAY), 1);
    assert_string_equal(f->alerts[1].level, "L1_breach_final");
    assert_int_equal(f->alerts[1].attempt_n, 1);
    assert_false(f->alerts[1].provisional);
    assert_false(f->alerts[1].qtd);
    assert_int_equal(eval(f, APR1 + 3 * DAY), 0);
}

static void test_value_back_within_while_open_recovers(void **state)
{
    struct fixture *f = *state;

    set_value(f, "speed_to_lead", RS_GRAIN_DAY, MAR10, 0.70, 0, true);
    assert_int_equal(eval(f, MAR10 + 3600000), 1);
    assert_string_equal(f->alerts[0].sla_type, "KPI-speed_to_lead");
    assert_string_equal(f->alerts[0].entity, "speed_to_lead|2026-03-10");
    set_value(f, "speed_to_lead", RS_GRAIN_DAY, MAR10, 0.85, 0, true);
    assert_int_equal(eval(f, MAR10 + 7200000), 1);
    assert_int_equal(f->alerts[1].kind, RS_ALERT_RECOVERED);
    assert_string_equal(f->alerts[1].level, "resolved");
    assert_string_equal(f->alerts[1].status, "met");
    assert_true(f->alerts[1].value == 0.85);
    /* Breaching again is a new episode with its own ids. */
    set_value(f, "speed_to_lead", RS_GRAIN_DAY, MAR10, 0.75, 0, true);
    assert_int_equal(eval(f, MAR10 + 10800000), 1);
    assert_int_equal(f->alerts[2].attempt_n, 2);
    expect_id(f->alerts[2].id, "speed_to_lead", "2026-03-10", 2, "L1_breach", "");
}

static void test_restated_value_after_close_retracts(void **state)
{
    struct fixture *f = *state;

    set_value(f, "cac_payback", RS_GRAIN_QUARTER, JAN1, 30, 0, true);
    assert_int_equal(eval(f, FEB15), 1);
    assert_string_equal(f->alerts[0].comparison, ">");
    assert_string_equal(f->alerts[0].entity, "cac_payback|2026-Q1");
    set_value(f, "cac_payback", RS_GRAIN_QUARTER, JAN1, 31, 0, false);
    assert_int_equal(eval(f, MAY15), 1); /* final and still breaching */
    assert_string_equal(f->alerts[1].level, "L1_breach_final");

    /* Late spend data restates Q1 to 20 months: both alerts of the episode are withdrawn. */
    set_value(f, "cac_payback", RS_GRAIN_QUARTER, JAN1, 20, 0, false);
    assert_int_equal(eval(f, MAY15 + DAY), 2);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[2].retracts, f->alerts[0].id);
    expect_id(f->alerts[2].id, "cac_payback", "2026-Q1", 1, "L1_breach", "|retracted");
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RETRACTED);
    assert_string_equal(f->alerts[3].retracts, f->alerts[1].id);
    assert_string_equal(f->alerts[3].status, "met");
}

static void test_magic_number_low_or_low_two_quarters(void **state)
{
    struct fixture *f = *state;

    /* 0.7 in Q1 alone breaches nothing (Q4 has no value). */
    set_value(f, "magic_number", RS_GRAIN_QUARTER, JAN1, 0.7, 0, true);
    assert_int_equal(eval(f, FEB15), 0);
    /* Q2 at 0.7 too: two quarters below 0.75. */
    set_value(f, "magic_number", RS_GRAIN_QUARTER, JAN1, 0.7, 0, false);
    set_value(f, "magic_number", RS_GRAIN_QUARTER, APR1, 0.7, 0, true);
    assert_int_equal(eval(f, MAY15), 1);
    assert_string_equal(f->alerts[0].sla_type, "KPI-magic_number_2q");
    assert_string_equal(f->alerts[0].entity, "magic_number_2q|2026-Q2");
    /* Q2 falls to 0.4: now below 0.5 as well; the 2q episode stands. */
    set_value(f, "magic_number", RS_GRAIN_QUARTER, APR1, 0.4, 0, true);
    assert_int_equal(eval(f, MAY15 + DAY), 1);
    assert_string_equal(f->alerts[1].sla_type, "KPI-magic_number");
    /* Q2 recovers to 0.8 within the quarter: both recover. */
    set_value(f, "magic_number", RS_GRAIN_QUARTER, APR1, 0.8, 0, true);
    assert_int_equal(eval(f, MAY15 + 2 * DAY), 2);
    assert_int_equal(f->alerts[2].kind, RS_ALERT_RECOVERED);
    assert_int_equal(f->alerts[3].kind, RS_ALERT_RECOVERED);
}

static void test_disabled_unbuilt_and_interval(void **state)
{
    struct fixture *f = *state;

    /* handoff_completion and cac are unknown to this reader: skipped, no error. */
    f->g.cfg.enabled[RS_GUARD_NRR_T12] = false;
    set_value(f, "nrr_t12", RS_GRAIN_MONTH, MAR1, 0.5, 0.95, true);
    assert_int_equal(eval(f, MAR10), 0);
    f->g.cfg.enabled[RS_GUARD_NRR_T12] = true;
    f->g.cfg.interval_ms = DAY;
    assert_int_equal(eval(f, MAR10 + 1000), 0); /* within the interval: not run */
    assert_int_equal(eval(f, MAR10 + DAY), 1);
    assert_string_equal(f->alerts[0].sla_type, "KPI-nrr_t12");
    /* A threshold from configuration. */
    f->g.cfg.threshold[RS_GUARD_GRR_T12] = 0.99;
    assert_int_equal(eval(f, MAR10 + 2 * DAY), 1);
    assert_string_equal(f->alerts[1].sla_type, "KPI-grr_t12");
    assert_true(f->alerts[1].value == 0.95);
    assert_true(f->alerts[1].threshold == 0.99);
    assert_int_equal(eval(f, INT64_MIN), 0); /* no watermark yet */
}

static void test_reader_failure_aborts(void **state)
{
    struct fixture *f = *state;
    struct rs_err err;

    f->reads_failing = RS_ESTORE;
    rs_err_clear(&err);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_guardrails_eval(&f->g, f->st, MAR10, fake_read, f, &err), RS_ESTORE);
    rs_store_abort(f->st);
    assert_string_equal(err.msg, "fake reader fails");
    assert_int_equal(f->n, 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(rs_guardrail_name(RS_GUARD_MAGIC_NUMBER), "magic_number");
    assert_string_equal(rs_guardrail_name(RS_GUARD_HANDOFF_ON_TIME), "handoff_on_time");
    assert_null(rs_guardrail_name(RS_GUARD__COUNT));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_breach_alerts_once_then_confirms_when_final),
        T(test_value_back_within_while_open_recovers),
        T(test_restated_value_after_close_retracts),
        T(test_magic_number_low_or_low_two_quarters),
        T(test_disabled_unbuilt_and_interval),
        T(test_reader_failure_aborts),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests_name("guardrail", tests, NULL, NULL);
}
