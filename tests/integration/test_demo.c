/*
 * test_demo.c - README's first command, `revstream demo`, run to its end on librdkafka's mock
 * cluster (no broker of our own) with its JSON summary checked: the funnel, the SLA alerts and
 * the revenue side (ARR, NRR and GRR over twelve months, the quick ratio, the magic number)
 * all come out as numbers, and the same seed gives the same summary twice.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "tmpdir.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *run_demo(const char *dir, const char *name)
{
    char out[4096];
    const char *args[] = { RS_BINARY, "demo", "--json", "--leads", "300", "--seed", "11", NULL };
    char *text;
    json_t *v;

    (void)snprintf(out, sizeof(out), "%s/%s", dir, name);
    assert_int_equal(rs_tb_run(args, out), 0);
    text = rs_tb_slurp(out);
    assert_non_null(text);
    v = json_loads(text, 0, NULL);
    if (v == NULL) {
        print_error("the demo's summary is not JSON: %s\n", text);
    }
    free(text);
    assert_non_null(v);
    return v;
}

static double headline(const json_t *summary, const char *name)
{
    const json_t *m = json_object_get(json_object_get(summary, "metrics"), name);
    const json_t *v = json_object_get(m, "value");

    if (!json_is_number(v)) {
        char *text = json_dumps(m, JSON_COMPACT);

        print_error("headline %s is not a number: %s\n", name, text != NULL ? text : "absent");
        free(text);
    }
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_demo_summary_has_the_revenue_headlines(void **state)
{
    char *dir = rs_test_tmpdir_new();
    json_t *a, *b;
    double arr, nrr, grr;

    (void)state;
    a = run_demo(dir, "a.json");
    assert_true(json_integer_value(json_object_get(a, "events")) > 1000);
    assert_true(json_integer_value(json_object_get(a, "alerts")) > 0);
    arr = headline(a, "arr");
    nrr = headline(a, "nrr_t12");
    grr = headline(a, "grr_t12");
    assert_true(arr > 0);
    /* GRR caps each customer at its prior MRR: never above NRR, never above 100%. */
    assert_true(grr <= nrr + 1e-12);
    assert_true(grr <= 1.0 + 1e-12);
    assert_true(nrr > 0.5 && nrr < 2.0);
    assert_true(headline(a, "quick_ratio") > 0);
    (void)headline(a, "magic_number");
    (void)headline(a, "win_rate");

    /* The same seed, the same numbers (the wall time and alert counts read live aside). */
    b = run_demo(dir, "b.json");
    assert_true(json_equal(json_object_get(a, "metrics"), json_object_get(b, "metrics")));
    json_decref(a);
    json_decref(b);
    rs_test_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_summary_has_the_revenue_headlines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
