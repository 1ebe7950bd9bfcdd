/*
 * prom.h - the Prometheus text exposition format (version 0.0.4), written into an rs_buf.
 *
 * rs_prom_family() writes the # HELP and # TYPE lines once per metric family, then
 * rs_prom_sample() one line per label set. Labels are given as alternating key/value C
 * strings; values are escaped (\\, \", \n) here. Histograms keep cumulative buckets with fixed
 * upper bounds and write _bucket{le=...}, _sum and _count.
 *
 * Threads: belongs to its caller.
 */
#ifndef RS_PROM_H
#define RS_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define RS_PROM_BUCKETS_MAX 24

struct rs_histogram {
    size_t n;                                 /* number of finite upper bounds */
    double bounds[RS_PROM_BUCKETS_MAX];       /* ascending; +Inf is implied */
    uint64_t counts[RS_PROM_BUCKETS_MAX + 1]; /* per bucket, not cumulative; last is +Inf */
    double sum;
    uint64_t count;
};

/* bounds[0..n) ascending, n <= RS_PROM_BUCKETS_MAX. */
void rs_histogram_init(struct rs_histogram *h, const double *bounds, size_t n);
/* Count `v` in the first bucket whose bound is >= v (le is inclusive); NaN lands in +Inf. */
void rs_histogram_observe(struct rs_histogram *h, double v);

/* type: "counter", "gauge" or "histogram". */
void rs_prom_family(struct rs_buf *out, const char *name, const char *type, const char *help);
/* labels: n_labels pairs (key, value). Values print exactly: integers as digits ("42"), others
 * in the shortest form that round-trips (at most %.17g), and +Inf, -Inf, NaN. */
void rs_prom_sample(struct rs_buf *out, const char *name, const char *const *labels,
                    size_t n_labels, double value);
void rs_prom_histogram(struct rs_buf *out, const char *name, const char *const *labels,
                       size_t n_labels, const struct rs_histogram *h);

#endif
