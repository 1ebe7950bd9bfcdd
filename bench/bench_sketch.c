/*
 * bench_sketch.c - accuracy and cost of sketch.c's histogram mode on one core.
 *
 *   bench_sketch [TRIALS] [MAX_N]     default 10 trials per size, sizes up to 1000000
 *
 * For each n of 1e3, 1e5 and 1e6 (up to MAX_N): TRIALS sketches of n lognormal durations in
 * ms (median one minute, sigma 1.5: a long tail, like speed to lead), each compared with the
 * exact type-7 quantile of the same values sorted. Prints the command, the machine, then one
 * line per n: the max and mean relative error of P50, P90 and P99 over the trials, the mean
 * encoded size, and ns per rs_sketch_add() (all adds of the size timed as one run, values
 * drawn beforehand). Exits 1 if an error exceeds RS_SKETCH_ALPHA, so the smoke run in CI
 * checks the bound as well as the build.
 */
#include "bench_machine.h"
#include "sketch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TRIALS 10
#define MAX_TRIALS     1000
#define QUANTILES      3

static const double qs[QUANTILES] = { 0.5, 0.9, 0.99 };

static int64_t now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: seeded per trial, so a run is reproducible. */
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

static int64_t lognormal_ms(uint64_t *s)
{
    double z = sqrt(-2.0 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s));

    return (int64_t)llround(exp(log(60000.0) + 1.5 * z));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static double type7(const int64_t *sorted, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)h;

    if (lo + 1 >= n) {
        return (double)sorted[n - 1];
    }
    return (double)sorted[lo] + (h - (double)lo) * (double)(sorted[lo + 1] - sorted[lo]);
}

/* One size: returns 0, or 1 if the error bound was broken. */
static int run(size_t n, int trials)
{
    int64_t *v = malloc(n * sizeof(*v));
    double max_err[QUANTILES] = { 0 }, sum_err[QUANTILES] = { 0 };
    int64_t add_ns = 0;
    size_t bytes = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;

    if (v == NULL) {
        perror("malloc");
        exit(2);
    }
    for (int t = 0; t < trials; t++) {
        uint64_t seed = UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(t + 1) ^ n;
        struct rs_sketch sk;
        int64_t t0;

        for (size_t i = 0; i < n; i++) {
            v[i] = lognormal_ms(&seed);
        }
        rs_sketch_init(&sk);
        t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            rs_sketch_add(&sk, v[i]);
        }
        add_ns += now_ns() - t0;
        bytes += rs_sketch_encode(&sk, &buf, &cap, 0);
        qsort(v, n, sizeof(*v), cmp_i64);
        for (int k = 0; k < QUANTILES; k++) {
            double want = type7(v, n, qs[k]);
            double err = fabs(rs_sketch_quantile(&sk, qs[k]) - want) / want;

            sum_err[k] += err;
            if (err > max_err[k]) {
                max_err[k] = err;
            }
        }
        rs_sketch_release(&sk);
    }
    printf("sketch_n%zu %zu %d", n, n, trials);
    for (int k = 0; k < QUANTILES; k++) {
        printf(" %.5f %.5f", max_err[k], sum_err[k] / trials);
    }
    printf(" %zu %.1f\n", bytes / (size_t)trials, (double)add_ns / ((double)n * trials));
    free(buf);
    free(v);
    for (int k = 0; k < QUANTILES; k++) {
        if (max_err[k] > RS_SKETCH_ALPHA) {
            fprintf(stderr, "bench_sketch: P%g error %.5f over alpha %.3f at n %zu\n", qs[k] * 100,
                    max_err[k], RS_SKETCH_ALPHA, n);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = { 1000, 100000, 1000000 };
    long trials = argc > 1 ? strtol(argv[1], NULL, 10) : DEFAULT_TRIALS;
    size_t max_n = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 1000000;
    int bad = 0;

    if (trials < 1 || trials > MAX_TRIALS) {
        fprintf(stderr, "usage: bench_sketch [TRIALS 1..%d] [MAX_N]\n", MAX_TRIALS);
        return 2;
    }
    rs_bench_print_machine(argc, argv);
    printf("# lognormal durations in ms (median 60000, sigma 1.5); relative error against exact "
           "type 7; alpha %.3f\n",
           RS_SKETCH_ALPHA);
    printf("# case n trials p50_max p50_mean p90_max p90_mean p99_max p99_mean bytes "
           "ns_per_add\n");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (sizes[i] <= max_n) {
            bad |= run(sizes[i], (int)trials);
        }
    }
    return bad;
}
