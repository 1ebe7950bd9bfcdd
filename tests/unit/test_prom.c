#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "prom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int prom_setup(void **state)
{
    struct rs_buf *out = malloc(sizeof(*out));

    rs_buf_init(out);
    *state = out;
    return 0;
}

static int prom_teardown(void **state)
{
    struct rs_buf *out = *state;

    rs_buf_release(out);
    free(out);
    return 0;
}

/* The buffer is not NUL-terminated; compare it as bytes against the expected text. */
static void assert_text(struct rs_buf *out, const char *expected)
{
    rs_buf_append(out, "", 1);
    assert_string_equal(out->data, expected);
    out->len--;
}

static void test_prom_family_writes_help_and_type_lines(void **state)
{
    struct rs_buf *out = *state;

    rs_prom_family(out, "rs_events_total", "counter", "Events decoded, by type.");
    assert_text(out, "# HELP rs_events_total Events decoded, by type.\n"
                     "# TYPE rs_events_total counter\n");
}

static void test_prom_family_escapes_backslash_and_newline_in_help(void **state)
{
    struct rs_buf *out = *state;

    /* A double quote is literal in HELP text; only label values escape it. */
    rs_prom_family(out, "rs_x", "gauge", "a \\ b\nc \"q\"");
    assert_text(out, "# HELP rs_x a \\\\ b\\nc \"q\"\n"
                     "# TYPE rs_x gauge\n");
}

static void test_prom_sample_without_labels_has_no_braces(void **state)
{
    struct rs_buf *out = *state;

    rs_prom_sample(out, "rs_up", NULL, 0, 1);
    assert_text(out, "rs_up 1\n");
}

static void test_prom_sample_writes_labels_in_order(void **state)
{
    struct rs_buf *out = *state;
    const char *const labels[] = { "type", "lead.created", "partition", "3" };

    rs_prom_sample(out, "rs_events_total", labels, 2, 42);
    assert_text(out, "rs_events_total{type=\"lead.created\",partition=\"3\"} 42\n");
}

static void test_prom_sample_escapes_label_values(void **state)
{
    struct rs_buf *out = *state;
    const char *const labels[] = { "path", "C:\\tmp \"x\"\nend" };

    rs_prom_sample(out, "rs_x", labels, 1, 0);
    assert_text(out, "rs_x{path=\"C:\\\\tmp \\\"x\\\"\\nend\"} 0\n");
}

static void test_prom_sample_prints_integers_exactly(void **state)
{
    struct rs_buf *out = *state;

    rs_prom_sample(out, "a", NULL, 0, 42);
    rs_prom_sample(out, "b", NULL, 0, -7);
    rs_prom_sample(out, "c", NULL, 0, 1e15);
    rs_prom_sample(out, "d", NULL, 0, 9007199254740993.0); /* 2^53 + 1 rounds to 2^53 */
    rs_prom_sample(out, "e", NULL, 0, -0.0);
    rs_prom_sample(out, "f", NULL, 0, 1e20); /* past int64: %g, still exact in Go's parser */
    assert_text(out, "a 42\n"
                     "b -7\n"
                     "c 1000000000000000\n"
                     "d 9007199254740992\n"
                     "e 0\n"
                     "f 1e+20\n");
}

static void test_prom_sample_prints_shortest_round_trip_doubles(void **state)
{
    struct rs_buf *out = *state;

    rs_prom_sample(out, "a", NULL, 0, 0.1);
    rs_prom_sample(out, "b", NULL, 0, 2.5);
    rs_prom_sample(out, "c", NULL, 0, 1.0 / 3.0);
    rs_prom_sample(out, "d", NULL, 0, 0.1 + 0.2);
    rs_prom_sample(out, "e", NULL, 0, 1.5e-7);
    assert_text(out, "a 0.1\n"
                     "b 2.5\n"
                     "c 0.3333333333333333\n"
                     "d 0.30000000000000004\n"
                     "e 1.5e-07\n");
}

static void test_prom_sample_values_parse_back_to_the_same_double(void **state)
{
    struct rs_buf *out = *state;
    const double values[] = { 0.1,        1.0 / 3.0, 2.0 / 3.0,        1e-300,
                              123456.789, 5e-324,    3.141592653589793 };

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        rs_buf_reset(out);
        rs_prom_sample(out, "v", NULL, 0, values[i]);
        rs_buf_append(out, "", 1);
        assert_true(strtod(out->data + 2, NULL) == values[i]);
    }
}

static void test_prom_sample_spells_infinities_and_nan_as_prometheus(void **state)
{
    struct rs_buf *out = *state;

    rs_prom_sample(out, "a", NULL, 0, INFINITY);
    rs_prom_sample(out, "b", NULL, 0, -INFINITY);
    rs_prom_sample(out, "c", NULL, 0, NAN);
    assert_text(out, "a +Inf\n"
                     "b -Inf\n"
                     "c NaN\n");
}

static void test_histogram_observe_counts_upper_bound_inclusive(void **state)
{
    const double bounds[] = { 1, 5 };
    struct rs_histogram h;

    (void)state;
    rs_histogram_init(&h, bounds, 2);
    rs_histogram_observe(&h, 1);   /* on the bound: le="1" */
    rs_histogram_observe(&h, 1.5); /* le="5" */
    rs_histogram_observe(&h, 5);   /* le="5" */
    rs_histogram_observe(&h, 9);   /* +Inf only */
    assert_int_equal(h.counts[0], 1);
    assert_int_equal(h.counts[1], 2);
    assert_int_equal(h.counts[2], 1);
    assert_int_equal(h.count, 4);
    assert_true(h.sum == 16.5);
}

static void test_prom_histogram_writes_cumulative_buckets_sum_and_count(void **state)
{
    struct rs_buf *out = *state;
    const double bounds[] = { 0.005, 0.5, 1, 2.5, 10 };
    const char *const labels[] = { "rule", "sla-01" };
    struct rs_histogram h;

    rs_histogram_init(&h, bounds, 5);
    rs_histogram_observe(&h, 0.00390625); /* binary fractions: the sum is exact */
    rs_histogram_observe(&h, 0.25);
    rs_histogram_observe(&h, 0.75);
    rs_histogram_observe(&h, 2);
    rs_histogram_observe(&h, 2.5);
    rs_histogram_observe(&h, 100);
    rs_prom_family(out, "rs_delay_seconds", "histogram", "Delay.");
    rs_prom_histogram(out, "rs_delay_seconds", labels, 1, &h);
    assert_text(out, "# HELP rs_delay_seconds Delay.\n"
                     "# TYPE rs_delay_seconds histogram\n"
                     "rs_delay_seconds_bucket{rule=\"sla-01\",le=\"0.005\"} 1\n"
                     "rs_delay_seconds_bucket{rule=\"sla-01\",le=\"0.5\"} 2\n"
                     "rs_delay_seconds_bucket{rule=\"sla-01\",le=\"1\"} 3\n"
                     "rs_delay_seconds_bucket{rule=\"sla-01\",le=\"2.5\"} 5\n"
                     "rs_delay_seconds_bucket{rule=\"sla-01\",le=\"10\"} 5\n"
                     "rs_delay_seconds_bucket{rule=\"sla-01\",le=\"+Inf\"} 6\n"
                     "rs_delay_seconds_sum{rule=\"sla-01\"} 105.50390625\n"
                     "rs_delay_seconds_count{rule=\"sla-01\"} 6\n");
}

static void test_prom_histogram_without_labels_or_bounds_has_only_inf(void **state)
{
    struct rs_buf *out = *state;
    struct rs_histogram h;

    rs_histogram_init(&h, NULL, 0);
    rs_prom_histogram(out, "rs_empty", NULL, 0, &h);
    rs_histogram_observe(&h, 3);
    rs_prom_histogram(out, "rs_one", NULL, 0, &h);
    assert_text(out, "rs_empty_bucket{le=\"+Inf\"} 0\n"
                     "rs_empty_sum 0\n"
                     "rs_empty_count 0\n"
                     "rs_one_bucket{le=\"+Inf\"} 1\n"
                     "rs_one_sum 3\n"
                     "rs_one_count 1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, prom_setup, prom_teardown)
        T(test_prom_family_writes_help_and_type_lines),
        T(test_prom_family_escapes_backslash_and_newline_in_help),
        T(test_prom_sample_without_labels_has_no_braces),
        T(test_prom_sample_writes_labels_in_order),
        T(test_prom_sample_escapes_label_values),
        T(test_prom_sample_prints_integers_exactly),
        T(test_prom_sample_prints_shortest_round_trip_doubles),
        T(test_prom_sample_values_parse_back_to_the_same_double),
        T(test_prom_sample_spells_infinities_and_nan_as_prometheus),
        T(test_histogram_observe_counts_upper_bound_inclusive),
        T(test_prom_histogram_writes_cumulative_buckets_sum_and_count),
        T(test_prom_histogram_without_labels_or_bounds_has_only_inf),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
