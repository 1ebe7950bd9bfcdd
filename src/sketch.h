/*
 * sketch.h - a mergeable, subtractable distribution of non-negative durations.
 *
 * Exact while small: up to RS_SKETCH_EXACT_MAX values are kept as they are, and quantiles are
 * exact type 7 (linear interpolation, METRICS.md §1.7). Past that the sketch turns into a
 * logarithmic histogram (DDSketch's mapping): value v > 0 goes to bucket ceil(log_g(v)) with
 * g = (1 + a) / (1 - a), so every quantile it returns is within relative error a of a value
 * whose rank is the requested one. a = RS_SKETCH_ALPHA. Zero has a bucket of its own.
 *
 * Values can be removed (a retracted fact), and two sketches merge by adding counts, so
 * per-partition sketches sum to the sketch of the union. A histogram stays a histogram when
 * removals bring it back to RS_SKETCH_EXACT_MAX values or fewer (the values themselves are
 * gone); only a sketch emptied completely is exact again. Merging two exact sketches stays
 * exact while the total fits. The serialised form is compact and deterministic: the same
 * multiset of values gives the same bytes in exact mode, and the same multiset of buckets
 * gives the same bytes in histogram mode, whatever the order of adds, removes and merges.
 *
 * Threads: a sketch belongs to its caller.
 */
#ifndef RS_SKETCH_H
#define RS_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RS_SKETCH_EXACT_MAX 128
#define RS_SKETCH_ALPHA     0.01

struct rs_sketch {
    uint64_t count;
    bool exact;        /* values[] holds every value, sorted */
    int64_t *values;   /* exact mode: `count` values, sorted ascending */
    uint64_t zeros;    /* histogram mode: values equal to 0 */
    int32_t min_index; /* histogram mode: counts[i] is bucket min_index + i */
    uint32_t n_counts;
    uint64_t *counts;
    size_t cap; /* allocated entries of values[] or counts[] */
};

void rs_sketch_init(struct rs_sketch *sk);
void rs_sketch_release(struct rs_sketch *sk); /* leaves it empty and usable */
void rs_sketch_reset(struct rs_sketch *sk);   /* empty, keeps memory */

/* Add v (negative values count as 0). Out of memory aborts. */
void rs_sketch_add(struct rs_sketch *sk, int64_t v);
/* Remove one occurrence of v; returns false if the sketch holds no such value (or bucket). */
bool rs_sketch_remove(struct rs_sketch *sk, int64_t v);
/* dst += src (src != dst). */
void rs_sketch_merge(struct rs_sketch *dst, const struct rs_sketch *src);

/*
 * Quantile q in [0,1] (clamped): exact type 7 rounded to 1/1000 as rs_sla_percentile() in
 * exact mode; in histogram mode type 7 over the buckets' values, unrounded, within relative
 * error RS_SKETCH_ALPHA of the exact answer. 0 if empty.
 */
double rs_sketch_quantile(const struct rs_sketch *sk, double q);
/*
 * Number of values <= v: exact in exact mode; in histogram mode the whole bucket of v counts,
 * so values up to a factor (1 + a) / (1 - a) above v's bucket edge may be included.
 */
uint64_t rs_sketch_count_le(const struct rs_sketch *sk, int64_t v);

/* Append the serialised form to out (grown with realloc); returns its length. */
size_t rs_sketch_encode(const struct rs_sketch *sk, uint8_t **out, size_t *out_cap, size_t at);
/*
 * Replace *sk with the decoding of [p, p+len), which must hold exactly one sketch. Returns 0,
 * or RS_ESTORE if corrupt (*sk is then unchanged).
 */
int rs_sketch_decode(struct rs_sketch *sk, const uint8_t *p, size_t len, struct rs_err *err);

#endif
