#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sketch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GAMMA ((1.0 + RS_SKETCH_ALPHA) / (1.0 - RS_SKETCH_ALPHA))

/* xorshift64*: a seeded generator, so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static double rng_unit(uint64_t *s) /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(uint64_t *s)
{
    return sqrt(-2.0 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s));
}

enum dist { D_LOGNORMAL, D_UNIFORM, D_EXPONENTIAL, D_SMALL_INTS, D__COUNT };

static int64_t draw(enum dist d, uint64_t *s)
{
    switch (d) {
    case D_LOGNORMAL: /* durations around a minute with a long tail, in ms */
        return (int64_t)exp(log(60000.0) + 1.5 * rng_normal(s));
    case D_UNIFORM:
        return (int64_t)(rng_next(s) % 1000000);
    case D_EXPONENTIAL:
        return (int64_t)(-300000.0 * log(rng_unit(s)));
    case D_SMALL_INTS: /* many ties and zeros */
        return (int64_t)(rng_next(s) % 11);
    case D__COUNT:
        break;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Type 7 on a sorted array, unrounded: the reference the histogram is checked against. */
static double type7(const int64_t *sorted, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)h;

    if (lo + 1 >= n) {
        return (double)sorted[n - 1];
    }
    return (double)sorted[lo] + (h - (double)lo) * (double)(sorted[lo + 1] - sorted[lo]);
}

static size_t encode(const struct rs_sketch *sk, uint8_t **buf, size_t *cap)
{
    return rs_sketch_encode(sk, buf, cap, 0);
}

static void assert_same_bytes(const struct rs_sketch *a, const struct rs_sketch *b)
{
    uint8_t *ba = NULL, *bb = NULL;
    size_t ca = 0, cb = 0;
    size_t la = encode(a, &ba, &ca);
    size_t lb = encode(b, &bb, &cb);

    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void fill(struct rs_sketch *sk, const int64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rs_sketch_add(sk, v[i]);
    }
}

static const int64_t WORKED[] = { 30, 4, 120, 2, 9, 4, 15, 3, 7, 5 }; /* METRICS.md SLA-01 */

static void test_sketch_exact_quantiles_match_type7_worked_example(void **state)
{
    struct rs_sketch sk;

    (void)state;
    rs_sketch_init(&sk);
    fill(&sk, WORKED, 10);
    assert_true(sk.exact);
    assert_int_equal(sk.count, 10);
    /* Sorted: 2 3 4 4 5 7 9 15 30 120; h = 9q. */
    assert_true(rs_sketch_quantile(&sk, 0.5) == 6.0);    /* h 4.5: 5 + .5 * 2 */
    assert_true(rs_sketch_quantile(&sk, 0.9) == 39.0);   /* h 8.1: 30 + .1 * 90 */
    assert_true(rs_sketch_quantile(&sk, 0.25) == 4.0);   /* h 2.25: 4 + .25 * 0 */
    assert_true(rs_sketch_quantile(&sk, 0.75) == 13.5);  /* h 6.75: 9 + .75 * 6 */
    assert_true(rs_sketch_quantile(&sk, 0.99) == 111.9); /* h 8.91: 30 + .91 * 90 */
    assert_true(rs_sketch_quantile(&sk, 0.0) == 2.0);
    assert_true(rs_sketch_quantile(&sk, 1.0) == 120.0);
    assert_true(rs_sketch_quantile(&sk, 2.0) == 120.0); /* clamped */
    assert_int_equal(rs_sketch_count_le(&sk, 5), 5);    /* 50% within 5 min */
    assert_int_equal(rs_sketch_count_le(&sk, 1), 0);
    assert_int_equal(rs_sketch_count_le(&sk, 4), 4);
    assert_int_equal(rs_sketch_count_le(&sk, 1000), 10);
    rs_sketch_release(&sk);
}

static void test_sketch_empty_and_negative_values(void **state)
{
    struct rs_sketch sk;

    (void)state;
    rs_sketch_init(&sk);
    assert_true(rs_sketch_quantile(&sk, 0.5) == 0.0);
    assert_int_equal(rs_sketch_count_le(&sk, 100), 0);
    assert_false(rs_sketch_remove(&sk, 3));
    rs_sketch_add(&sk, -40); /* counts as 0 */
    rs_sketch_add(&sk, 10);
    assert_true(rs_sketch_quantile(&sk, 0.0) == 0.0);
    assert_true(rs_sketch_quantile(&sk, 0.5) == 5.0);
    assert_int_equal(rs_sketch_count_le(&sk, 0), 1);
    assert_int_equal(rs_sketch_count_le(&sk, -1), 0);
    assert_true(rs_sketch_remove(&sk, -7)); /* the 0 */
    assert_int_equal(sk.count, 1);
    assert_true(rs_sketch_quantile(&sk, 0.3) == 10.0);
    rs_sketch_release(&sk);
}

static void test_sketch_remove_undoes_add_in_exact_mode(void **state)
{
    struct rs_sketch sk, ref;

    (void)state;
    rs_sketch_init(&sk);
    rs_sketch_init(&ref);
    fill(&sk, WORKED, 10);
    fill(&ref, WORKED, 10);
    rs_sketch_add(&sk, 8);
    rs_sketch_add(&sk, 9);
    assert_true(rs_sketch_quantile(&sk, 0.5) == 7.5); /* h 5.5 over 2 3 4 4 5 7 8 9 9 ... */
    assert_false(rs_sketch_remove(&sk, 6));           /* never added */
    assert_true(rs_sketch_remove(&sk, 9));
    assert_true(rs_sketch_remove(&sk, 8));
    assert_false(rs_sketch_remove(&sk, 8));
    assert_int_equal(sk.count, 10);
    assert_same_bytes(&sk, &ref);
    assert_true(rs_sketch_quantile(&sk, 0.5) == 6.0);
    for (size_t i = 0; i < 10; i++) {
        assert_true(rs_sketch_remove(&sk, WORKED[i]));
    }
    assert_int_equal(sk.count, 0);
    assert_true(sk.exact);
    rs_sketch_release(&sk);
    rs_sketch_release(&ref);
}

static void test_sketch_histogram_stays_histogram_until_empty(void **state)
{
    struct rs_sketch sk, empty;
    int64_t v[RS_SKETCH_EXACT_MAX + 1];
    uint64_t seed = 7;

    (void)state;
    rs_sketch_init(&sk);
    rs_sketch_init(&empty);
    for (size_t i = 0; i < RS_SKETCH_EXACT_MAX + 1; i++) {
        v[i] = draw(D_LOGNORMAL, &seed);
    }
    fill(&sk, v, RS_SKETCH_EXACT_MAX);
    assert_true(sk.exact);
    rs_sketch_add(&sk, v[RS_SKETCH_EXACT_MAX]);
    assert_false(sk.exact);
    assert_int_equal(sk.count, RS_SKETCH_EXACT_MAX + 1);
    assert_true(rs_sketch_remove(&sk, v[0]));
    assert_false(sk.exact); /* back at the limit, but the values are gone */
    assert_int_equal(sk.count, RS_SKETCH_EXACT_MAX);
    assert_false(rs_sketch_remove(&sk, INT64_C(1) << 60)); /* an empty bucket */
    for (size_t i = 1; i < RS_SKETCH_EXACT_MAX + 1; i++) {
        assert_true(rs_sketch_remove(&sk, v[i]));
    }
    assert_int_equal(sk.count, 0);
    assert_true(sk.exact);
    assert_same_bytes(&sk, &empty);
    rs_sketch_add(&sk, 42); /* usable again, and exact */
    assert_true(rs_sketch_quantile(&sk, 0.5) == 42.0);
    rs_sketch_release(&sk);
    rs_sketch_release(&empty);
}

static void test_sketch_merge_exact_into_exact_stays_exact_when_it_fits(void **state)
{
    struct rs_sketch a, b, all;

    (void)state;
    rs_sketch_init(&a);
    rs_sketch_init(&b);
    rs_sketch_init(&all);
    fill(&a, WORKED, 4);
    fill(&b, WORKED + 4, 6);
    fill(&all, WORKED, 10);
    rs_sketch_merge(&a, &b);
    assert_true(a.exact);
    assert_int_equal(a.count, 10);
    assert_same_bytes(&a, &all);
    assert_true(rs_sketch_quantile(&a, 0.9) == 39.0);
    assert_int_equal(b.count, 6); /* src untouched */
    rs_sketch_release(&a);
    rs_sketch_release(&b);
    rs_sketch_release(&all);
}

static void test_sketch_merge_in_every_mode_equals_adding_everything(void **state)
{
    enum { N = 300 };
    int64_t v[N];
    uint64_t seed = 11;
    /* (size of the first part, size of the second): exact+exact over the limit, exact into a
     * histogram, a histogram into an exact, histogram+histogram. */
    static const size_t splits[][2] = { { 100, 100 }, { 200, 50 }, { 50, 200 }, { 150, 150 } };

    (void)state;
    for (size_t i = 0; i < N; i++) {
        v[i] = draw(D_EXPONENTIAL, &seed);
    }
    v[3] = 0;
    for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
        struct rs_sketch a, b, all;
        size_t na = splits[s][0], nb = splits[s][1];

        rs_sketch_init(&a);
        rs_sketch_init(&b);
        rs_sketch_init(&all);
        fill(&a, v, na);
        fill(&b, v + na, nb);
        fill(&all, v, na + nb);
        rs_sketch_merge(&a, &b);
        assert_false(a.exact);
        assert_int_equal(a.count, na + nb);
        assert_same_bytes(&a, &all);
        rs_sketch_release(&a);
        rs_sketch_release(&b);
        rs_sketch_release(&all);
    }
}

static void test_sketch_histogram_error_within_alpha(void **state)
{
    static const double qs[] = { 0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1 };
    static const size_t sizes[] = { RS_SKETCH_EXACT_MAX + 1, 1000, 20000 };
    uint64_t seed = 2026;

    (void)state;
    for (int d = 0; d < D__COUNT; d++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            size_t n = sizes[s];
            int64_t *v = malloc(n * sizeof(*v));
            struct rs_sketch sk;
            double worst = 0;

            assert_non_null(v);
            rs_sketch_init(&sk);
            for (size_t i = 0; i < n; i++) {
                v[i] = draw((enum dist)d, &seed);
                rs_sketch_add(&sk, v[i]);
            }
            assert_false(sk.exact);
            qsort(v, n, sizeof(*v), cmp_i64);
            for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
                double want = type7(v, n, qs[k]);
                double got = rs_sketch_quantile(&sk, qs[k]);
                double rel = want == 0 ? fabs(got) : fabs(got - want) / want;

                if (rel > worst) {
                    worst = rel;
                }
                if (rel > RS_SKETCH_ALPHA * (1 + 1e-9)) {
                    fail_msg("dist %d n %zu q %g: got %f want %f (rel %g)", d, n, qs[k], got, want,
                             rel);
                }
            }
            /* The bound is tight enough to matter: the sketch is not exact by accident. */
            if (d != D_SMALL_INTS) {
                assert_true(worst > RS_SKETCH_ALPHA / 100);
            }
            rs_sketch_release(&sk);
            free(v);
        }
    }
}

static void test_sketch_histogram_count_le_brackets_the_truth(void **state)
{
    enum { N = 5000 };
    int64_t v[N];
    struct rs_sketch sk;
    uint64_t seed = 5;

    (void)state;
    rs_sketch_init(&sk);
    for (size_t i = 0; i < N; i++) {
        v[i] = draw(D_LOGNORMAL, &seed);
        rs_sketch_add(&sk, v[i]);
    }
    qsort(v, N, sizeof(*v), cmp_i64);
    for (int64_t t = 1000; t < INT64_C(10000000); t = t * 3 / 2) {
        uint64_t le = 0, le_gamma = 0;
        uint64_t got = rs_sketch_count_le(&sk, t);

        for (size_t i = 0; i < N; i++) {
            if (v[i] <= t) {
                le++;
            }
            if ((double)v[i] <= (double)t * GAMMA) {
                le_gamma++;
            }
        }
        assert_true(got >= le);
        assert_true(got <= le_gamma);
    }
    assert_int_equal(rs_sketch_count_le(&sk, INT64_MAX), N);
    rs_sketch_release(&sk);
}

static void test_sketch_same_multiset_gives_same_bytes_in_any_order(void **state)
{
    enum { N = 2000 };
    int64_t v[N];
    struct rs_sketch fwd, shuffled, detour;
    uint64_t seed = 99;

    (void)state;
    for (size_t i = 0; i < N; i++) {
        v[i] = draw(D_LOGNORMAL, &seed);
    }
    rs_sketch_init(&fwd);
    rs_sketch_init(&shuffled);
    rs_sketch_init(&detour);
    fill(&fwd, v, N);
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&seed) % (i + 1));
        int64_t t = v[i];

        v[i] = v[j];
        v[j] = t;
    }
    fill(&shuffled, v, N);
    /* Extremes added and removed again widen the bucket range: the bytes must not show it. */
    rs_sketch_add(&detour, 1);
    rs_sketch_add(&detour, INT64_MAX);
    fill(&detour, v + N / 2, N - N / 2);
    fill(&detour, v, N / 2);
    assert_true(rs_sketch_remove(&detour, INT64_MAX));
    assert_true(rs_sketch_remove(&detour, 1));
    assert_false(fwd.exact);
    assert_false(shuffled.exact);
    assert_same_bytes(&fwd, &shuffled);
    assert_same_bytes(&fwd, &detour);
    rs_sketch_release(&fwd);
    rs_sketch_release(&shuffled);
    rs_sketch_release(&detour);
}

static void round_trip(const struct rs_sketch *sk)
{
    uint8_t *buf = NULL, *again = NULL;
    size_t cap = 0, cap2 = 0;
    size_t len, len2;
    struct rs_sketch back;

    /* Append after a prefix: the encoder must honour `at`. */
    buf = malloc(3);
    assert_non_null(buf);
    memcpy(buf, "abc", 3);
    cap = 3;
    len = rs_sketch_encode(sk, &buf, &cap, 3);
    assert_memory_equal(buf, "abc", 3);
    rs_sketch_init(&back);
    rs_sketch_add(&back, 77); /* replaced by the decode */
    assert_int_equal(rs_sketch_decode(&back, buf + 3, len, NULL), 0);
    assert_int_equal(back.count, sk->count);
    assert_int_equal(back.exact, sk->exact);
    for (double q = 0; q <= 1.0; q += 0.125) {
        assert_true(rs_sketch_quantile(&back, q) == rs_sketch_quantile(sk, q));
    }
    len2 = encode(&back, &again, &cap2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf + 3, len);
    rs_sketch_release(&back);
    free(buf);
    free(again);
}

static void test_sketch_encoding_round_trips(void **state)
{
    struct rs_sketch sk;
    uint64_t seed = 3;

    (void)state;
    rs_sketch_init(&sk);
    round_trip(&sk); /* empty */
    fill(&sk, WORKED, 10);
    rs_sketch_add(&sk, 0);
    rs_sketch_add(&sk, INT64_MAX);
    round_trip(&sk); /* exact, with both extremes */
    for (int i = 0; i < 5000; i++) {
        rs_sketch_add(&sk, draw(D_LOGNORMAL, &seed));
    }
    rs_sketch_add(&sk, 0);
    round_trip(&sk); /* histogram, with zeros */
    rs_sketch_release(&sk);
}

/* Decode must fail with RS_ESTORE and leave the target as it was. */
static void assert_rejected(const uint8_t *p, size_t len)
{
    struct rs_sketch sk;
    struct rs_err err;

    rs_sketch_init(&sk);
    rs_sketch_add(&sk, 5);
    err.msg[0] = '\0';
    assert_int_equal(rs_sketch_decode(&sk, p, len, &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "corrupt sketch"));
    assert_int_equal(sk.count, 1);
    assert_true(rs_sketch_quantile(&sk, 0.5) == 5.0);
    rs_sketch_release(&sk);
}

static void test_sketch_decode_rejects_corrupt_bytes(void **state)
{
    /* version 1, mode, then varints */
    static const uint8_t bad_version[] = { 2, 0, 0 };
    static const uint8_t bad_mode[] = { 1, 2, 0 };
    static const uint8_t exact_too_many[] = { 1, 0, 129, 1 };
    static const uint8_t exact_short[] = { 1, 0, 3, 1, 1 };
    static const uint8_t exact_trailing[] = { 1, 0, 1, 1, 0 };
    static const uint8_t exact_overflow[] = { 1,    0,    2,    0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0xff, 0x7f, 1 };
    static const uint8_t varint_too_long[] = { 1,    0,    1,    0x80, 0x80, 0x80, 0x80,
                                               0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0 };
    static const uint8_t hist_empty[] = { 1, 1, 0, 0, 0 };
    static const uint8_t hist_sum[] = { 1, 1, 5, 1, 1, 10, 3 };        /* 1 + 3 != 5 */
    static const uint8_t hist_zero_count[] = { 1, 1, 1, 1, 1, 10, 0 }; /* an empty bucket */
    static const uint8_t hist_gap_zero[] = { 1, 1, 2, 0, 2, 10, 1, 0, 1 };
    static const uint8_t hist_index_range[] = { 1, 1, 1, 0, 1, 0xff, 0x7f, 1 };
    static const uint8_t hist_buckets[] = { 1, 1, 1, 0, 0xff, 0xff, 0x03 };
    static const struct {
        const uint8_t *p;
        size_t len;
    } cases[] = {
#define CASE(a) { a, sizeof(a) }
        CASE(bad_version),    CASE(bad_mode),        CASE(exact_too_many),  CASE(exact_short),
        CASE(exact_trailing), CASE(exact_overflow),  CASE(varint_too_long), CASE(hist_empty),
        CASE(hist_sum),       CASE(hist_zero_count), CASE(hist_gap_zero),   CASE(hist_index_range),
        CASE(hist_buckets),
#undef CASE
    };
    static const uint8_t ok[] = { 1, 1, 5, 1, 2, 10, 3, 5, 1 };
    struct rs_sketch sk;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_rejected(cases[i].p, cases[i].len);
    }
    assert_rejected(ok, 0);
    assert_rejected(ok, 1);
    /* The valid neighbour of the bad ones: buckets 10 and 15, counts 3 and 1, one zero. */
    rs_sketch_init(&sk);
    assert_int_equal(rs_sketch_decode(&sk, ok, sizeof(ok), NULL), 0);
    assert_int_equal(sk.count, 5);
    assert_int_equal(rs_sketch_count_le(&sk, 0), 1);
    rs_sketch_release(&sk);
}

static void test_sketch_decode_rejects_every_truncation_and_survives_bit_flips(void **state)
{
    struct rs_sketch sk, out;
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t seed = 17;

    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        size_t len;

        rs_sketch_init(&sk);
        for (int i = 0; i < (mode == 0 ? 50 : 400); i++) {
            rs_sketch_add(&sk, draw(D_LOGNORMAL, &seed));
        }
        rs_sketch_add(&sk, 0);
        len = encode(&sk, &buf, &cap);
        for (size_t cut = 0; cut < len; cut++) {
            assert_rejected(buf, cut);
        }
        /* A flipped bit either fails cleanly or decodes into a sketch that is consistent. */
        for (size_t at = 0; at < len; at++) {
            for (int bit = 0; bit < 8; bit++) {
                int rc;

                buf[at] ^= (uint8_t)(1u << bit);
                rs_sketch_init(&out);
                rc = rs_sketch_decode(&out, buf, len, NULL);
                assert_true(rc == 0 || rc == RS_ESTORE);
                if (rc == 0) {
                    assert_int_equal(rs_sketch_count_le(&out, INT64_MAX), out.count);
                }
                rs_sketch_release(&out);
                buf[at] ^= (uint8_t)(1u << bit);
            }
        }
        rs_sketch_release(&sk);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sketch_exact_quantiles_match_type7_worked_example),
        cmocka_unit_test(test_sketch_empty_and_negative_values),
        cmocka_unit_test(test_sketch_remove_undoes_add_in_exact_mode),
        cmocka_unit_test(test_sketch_histogram_stays_histogram_until_empty),
        cmocka_unit_test(test_sketch_merge_exact_into_exact_stays_exact_when_it_fits),
        cmocka_unit_test(test_sketch_merge_in_every_mode_equals_adding_everything),
        cmocka_unit_test(test_sketch_histogram_error_within_alpha),
        cmocka_unit_test(test_sketch_histogram_count_le_brackets_the_truth),
        cmocka_unit_test(test_sketch_same_multiset_gives_same_bytes_in_any_order),
        cmocka_unit_test(test_sketch_encoding_round_trips),
        cmocka_unit_test(test_sketch_decode_rejects_corrupt_bytes),
        cmocka_unit_test(test_sketch_decode_rejects_every_truncation_and_survives_bit_flips),
    };

    return cmocka_run_group_tests_name("sketch", tests, NULL, NULL);
}
