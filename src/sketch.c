#include "sketch.h"

#include "mem.h"
#include "varint.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keep in sync with rs_sketch_decode(): a new layout gets a new version, old ones still read. */
#define ENCODING_VERSION 1
#define MODE_EXACT       0
#define MODE_HISTOGRAM   1

/* ln(gamma) with gamma = (1 + a) / (1 - a); a constant the compiler folds. */
static double ln_gamma(void)
{
    return log((1.0 + RS_SKETCH_ALPHA) / (1.0 - RS_SKETCH_ALPHA));
}

/* Bucket of v > 0: ceil(log_gamma(v)). Every int64 v >= 1 lands in [0, index_max()]. */
static int32_t bucket_index(int64_t v)
{
    return (int32_t)ceil(log((double)v) / ln_gamma());
}

static int32_t index_max(void)
{
    return bucket_index(INT64_MAX);
}

/* The value that stands for bucket i: within relative error alpha of anything in it. */
static double bucket_value(int32_t i)
{
    double gamma = (1.0 + RS_SKETCH_ALPHA) / (1.0 - RS_SKETCH_ALPHA);

    return 2.0 * exp((double)i * ln_gamma()) / (gamma + 1.0);
}

void rs_sketch_init(struct rs_sketch *sk)
{
    memset(sk, 0, sizeof(*sk));
    sk->exact = true;
}

void rs_sketch_release(struct rs_sketch *sk)
{
    free(sk->values);
    free(sk->counts);
    rs_sketch_init(sk);
}

void rs_sketch_reset(struct rs_sketch *sk)
{
    if (!sk->exact) {
        /* Only an exact sketch keeps its memory: an empty sketch is always exact. */
        rs_sketch_release(sk);
        return;
    }
    sk->count = 0;
}

/* Room for `need` entries in whichever array the mode uses. */
static void reserve(struct rs_sketch *sk, size_t need)
{
    size_t cap = sk->cap == 0 ? 16 : sk->cap;

    if (need <= sk->cap) {
        return;
    }
    while (cap < need) {
        cap *= 2;
    }
    if (sk->exact) {
        sk->values = rs_xrealloc(sk->values, cap * sizeof(*sk->values));
    } else {
        sk->counts = rs_xrealloc(sk->counts, cap * sizeof(*sk->counts));
    }
    sk->cap = cap;
}

/* Index of the first value > v in the sorted values[]. */
static size_t upper_bound(const struct rs_sketch *sk, int64_t v)
{
    size_t lo = 0, hi = (size_t)sk->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (sk->values[mid] <= v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Widen counts[] so that bucket i has a slot. */
static void cover(struct rs_sketch *sk, int32_t i)
{
    if (sk->n_counts == 0) {
        reserve(sk, 1);
        sk->min_index = i;
        sk->n_counts = 1;
        sk->counts[0] = 0;
    } else if (i < sk->min_index) {
        size_t shift = (size_t)(sk->min_index - i);

        reserve(sk, sk->n_counts + shift);
        memmove(sk->counts + shift, sk->counts, sk->n_counts * sizeof(*sk->counts));
        memset(sk->counts, 0, shift * sizeof(*sk->counts));
        sk->min_index = i;
        sk->n_counts += (uint32_t)shift;
    } else if (i - sk->min_index >= (int32_t)sk->n_counts) {
        size_t n = (size_t)(i - sk->min_index) + 1;

        reserve(sk, n);
        memset(sk->counts + sk->n_counts, 0, (n - sk->n_counts) * sizeof(*sk->counts));
        sk->n_counts = (uint32_t)n;
    }
}

/* Add c values to the bucket of v (histogram mode); count is the caller's. */
static void hist_add(struct rs_sketch *sk, int64_t v, uint64_t c)
{
    int32_t i;

    if (v <= 0) {
        sk->zeros += c;
        return;
    }
    i = bucket_index(v);
    cover(sk, i);
    sk->counts[i - sk->min_index] += c;
}

/* Turn an exact sketch into a histogram of the same values. */
static void to_histogram(struct rs_sketch *sk)
{
    int64_t *values = sk->values;
    uint64_t n = sk->count;

    sk->values = NULL;
    sk->cap = 0;
    sk->exact = false;
    sk->zeros = 0;
    sk->n_counts = 0;
    for (uint64_t k = 0; k < n; k++) {
        hist_add(sk, values[k], 1);
    }
    free(values);
}

void rs_sketch_add(struct rs_sketch *sk, int64_t v)
{
    size_t at;

    if (v < 0) {
        v = 0;
    }
    if (sk->exact && sk->count < RS_SKETCH_EXACT_MAX) {
        reserve(sk, (size_t)sk->count + 1);
        at = upper_bound(sk, v);
        memmove(sk->values + at + 1, sk->values + at,
                ((size_t)sk->count - at) * sizeof(*sk->values));
        sk->values[at] = v;
        sk->count++;
        return;
    }
    if (sk->exact) {
        to_histogram(sk);
    }
    hist_add(sk, v, 1);
    sk->count++;
}

bool rs_sketch_remove(struct rs_sketch *sk, int64_t v)
{
    if (v < 0) {
        v = 0;
    }
    if (sk->exact) {
        size_t at = upper_bound(sk, v);

        if (at == 0 || sk->values[at - 1] != v) {
            return false;
        }
        memmove(sk->values + at - 1, sk->values + at,
                ((size_t)sk->count - at) * sizeof(*sk->values));
        sk->count--;
        return true;
    }
    if (v == 0) {
        if (sk->zeros == 0) {
            return false;
        }
        sk->zeros--;
    } else {
        int32_t i = bucket_index(v);

        if (sk->n_counts == 0 || i < sk->min_index || i - sk->min_index >= (int32_t)sk->n_counts ||
            sk->counts[i - sk->min_index] == 0) {
            return false;
        }
        sk->counts[i - sk->min_index]--;
    }
    /* A histogram does not go back to exact (its values are gone), unless nothing is left. */
    if (--sk->count == 0) {
        rs_sketch_release(sk);
    }
    return true;
}

/* Merge two sorted runs into dst->values (exact + exact that fits). */
static void merge_exact(struct rs_sketch *dst, const struct rs_sketch *src)
{
    size_t i = (size_t)dst->count, j = (size_t)src->count, k = i + j;

    reserve(dst, k);
    /* From the back, so that dst's own values never get overwritten before they are read. */
    while (j > 0) {
        if (i > 0 && dst->values[i - 1] > src->values[j - 1]) {
            dst->values[--k] = dst->values[--i];
        } else {
            dst->values[--k] = src->values[--j];
        }
    }
    dst->count += src->count;
}

void rs_sketch_merge(struct rs_sketch *dst, const struct rs_sketch *src)
{
    assert(dst != src);
    if (src->count == 0) {
        return;
    }
    if (src->exact && dst->exact && dst->count + src->count <= RS_SKETCH_EXACT_MAX) {
        merge_exact(dst, src);
        return;
    }
    if (dst->exact) {
        to_histogram(dst);
    }
    if (src->exact) {
        for (uint64_t k = 0; k < src->count; k++) {
            hist_add(dst, src->values[k], 1);
        }
    } else {
        dst->zeros += src->zeros;
        for (uint32_t k = 0; k < src->n_counts; k++) {
            int32_t i = src->min_index + (int32_t)k;

            if (src->counts[k] != 0) {
                cover(dst, i);
                dst->counts[i - dst->min_index] += src->counts[k];
            }
        }
    }
    dst->count += src->count;
}

/* The value at 0-based rank r < count: the stored value, or its bucket's value. */
static double value_at(const struct rs_sketch *sk, uint64_t r)
{
    uint64_t seen = sk->zeros;

    if (sk->exact) {
        return (double)sk->values[r];
    }
    if (r < seen) {
        return 0;
    }
    for (uint32_t k = 0; k < sk->n_counts; k++) {
        seen += sk->counts[k];
        if (r < seen) {
            return bucket_value(sk->min_index + (int32_t)k);
        }
    }
    assert(0 && "rank past the count");
    return 0;
}

double rs_sketch_quantile(const struct rs_sketch *sk, double q)
{
    double h, lo_v, v;
    uint64_t lo;

    if (sk->count == 0) {
        return 0;
    }
    if (!(q > 0)) {
        q = 0; /* also NaN */
    } else if (q > 1) {
        q = 1;
    }
    /* Type 7 over the values (exact) or over the buckets' values (histogram): each of the two
     * neighbours is within alpha of the true one, so their interpolation is too. */
    h = (double)(sk->count - 1) * q;
    lo = (uint64_t)h;
    if (lo + 1 >= sk->count) {
        return value_at(sk, sk->count - 1);
    }
    lo_v = value_at(sk, lo);
    v = lo_v + (h - (double)lo) * (value_at(sk, lo + 1) - lo_v);
    if (!sk->exact) {
        return v; /* rounding could push a small value past the error bound */
    }
    /* As rs_sla_percentile(): (n-1)*q is rarely exact in binary, so round to 1/1000 of the
     * unit; worked examples come out exact and equal inputs give equal output. */
    return nearbyint(v * 1000.0) / 1000.0;
}

uint64_t rs_sketch_count_le(const struct rs_sketch *sk, int64_t v)
{
    uint64_t n;
    int32_t last;

    if (v < 0) {
        return 0;
    }
    if (sk->exact) {
        return upper_bound(sk, v);
    }
    n = sk->zeros;
    if (v == 0 || sk->n_counts == 0) {
        return n;
    }
    /* The whole bucket of v counts: values up to a factor gamma above its lower edge. */
    last = bucket_index(v) - sk->min_index;
    for (int32_t k = 0; k <= last && k < (int32_t)sk->n_counts; k++) {
        n += sk->counts[k];
    }
    return n;
}

/*
 * Layout (all varints):
 *   version, mode,
 *   exact:     count, then the first value and the gaps between neighbours (sorted, >= 0);
 *   histogram: count, zeros, buckets, then per non-empty bucket the index gap from the
 *              previous one (the first: its index) and its count.
 * Only non-empty buckets are written, so the bytes depend on the bucket counts alone.
 */
size_t rs_sketch_encode(const struct rs_sketch *sk, uint8_t **out, size_t *out_cap, size_t at)
{
    size_t items = sk->exact ? (size_t)sk->count : 2 * (size_t)sk->n_counts;
    size_t need = at + 2 + 3 * RS_VARINT_MAX + items * RS_VARINT_MAX;
    uint8_t *p;
    uint32_t buckets = 0;

    if (*out_cap < need) {
        *out = rs_xrealloc(*out, need);
        *out_cap = need;
    }
    p = *out + at;
    *p++ = ENCODING_VERSION;
    *p++ = sk->exact ? MODE_EXACT : MODE_HISTOGRAM;
    p += rs_varint_put(p, sk->count);
    if (sk->exact) {
        for (uint64_t k = 0; k < sk->count; k++) {
            int64_t prev = k == 0 ? 0 : sk->values[k - 1];

            p += rs_varint_put(p, (uint64_t)(sk->values[k] - prev));
        }
        return (size_t)(p - (*out + at));
    }
    p += rs_varint_put(p, sk->zeros);
    for (uint32_t k = 0; k < sk->n_counts; k++) {
        if (sk->counts[k] != 0) {
            buckets++;
        }
    }
    p += rs_varint_put(p, buckets);
    for (uint32_t k = 0, prev = 0, first = 1; k < sk->n_counts; k++) {
        uint32_t i = (uint32_t)(sk->min_index + (int32_t)k);

        if (sk->counts[k] == 0) {
            continue;
        }
        p += rs_varint_put(p, first ? i : i - prev);
        p += rs_varint_put(p, sk->counts[k]);
        prev = i;
        first = 0;
    }
    return (size_t)(p - (*out + at));
}

static int corrupt(struct rs_err *err, const char *what)
{
    return rs_err_set(err, RS_ESTORE, "corrupt sketch: %s", what);
}

static int decode_exact(struct rs_sketch *sk, const uint8_t **p, const uint8_t *end, uint64_t count,
                        struct rs_err *err)
{
    int64_t prev = 0;

    if (count > RS_SKETCH_EXACT_MAX) {
        return corrupt(err, "exact count past the limit");
    }
    if (count > 0) {
        reserve(sk, (size_t)count);
    }
    for (uint64_t k = 0; k < count; k++) {
        uint64_t gap;

        if (rs_varint_get(p, end, &gap) != 0) {
            return corrupt(err, "truncated value");
        }
        if (gap > (uint64_t)(INT64_MAX - prev)) {
            return corrupt(err, "value out of range");
        }
        prev += (int64_t)gap;
        sk->values[k] = prev;
    }
    sk->count = count;
    return 0;
}

static int decode_histogram(struct rs_sketch *sk, const uint8_t **p, const uint8_t *end,
                            uint64_t count, struct rs_err *err)
{
    uint64_t zeros, buckets, total;
    uint64_t index = 0;
    uint64_t max = (uint64_t)index_max();

    sk->exact = false;
    if (rs_varint_get(p, end, &zeros) != 0 || rs_varint_get(p, end, &buckets) != 0) {
        return corrupt(err, "truncated header");
    }
    if (count == 0) {
        return corrupt(err, "empty histogram"); /* an empty sketch is always exact */
    }
    if (buckets > max + 1) {
        return corrupt(err, "too many buckets");
    }
    total = zeros;
    for (uint64_t k = 0; k < buckets; k++) {
        uint64_t gap, c;

        if (rs_varint_get(p, end, &gap) != 0 || rs_varint_get(p, end, &c) != 0) {
            return corrupt(err, "truncated bucket");
        }
        if ((k > 0 && gap == 0) || gap > max - (k == 0 ? 0 : index)) {
            return corrupt(err, "bucket index out of order or range");
        }
        index = k == 0 ? gap : index + gap;
        if (c == 0 || c > UINT64_MAX - total) {
            return corrupt(err, "bad bucket count");
        }
        total += c;
        cover(sk, (int32_t)index);
        sk->counts[(int32_t)index - sk->min_index] = c;
    }
    if (total != count) {
        return corrupt(err, "counts do not add up");
    }
    sk->zeros = zeros;
    sk->count = count;
    return 0;
}

int rs_sketch_decode(struct rs_sketch *sk, const uint8_t *p, size_t len, struct rs_err *err)
{
    const uint8_t *end = p + len;
    struct rs_sketch tmp;
    uint64_t count;
    uint8_t mode;
    int rc;

    if (len < 2) {
        return corrupt(err, "truncated");
    }
    if (p[0] != ENCODING_VERSION) {
        return rs_err_set(err, RS_ESTORE, "corrupt sketch: unknown version %u", p[0]);
    }
    if (p[1] != MODE_EXACT && p[1] != MODE_HISTOGRAM) {
        return rs_err_set(err, RS_ESTORE, "corrupt sketch: unknown mode %u", p[1]);
    }
    mode = p[1];
    rs_sketch_init(&tmp);
    p += 2;
    if (rs_varint_get(&p, end, &count) != 0) {
        return corrupt(err, "truncated count");
    }
    if (mode == MODE_EXACT) {
        rc = decode_exact(&tmp, &p, end, count, err);
    } else {
        rc = decode_histogram(&tmp, &p, end, count, err);
    }
    if (rc == 0 && p != end) {
        rc = corrupt(err, "trailing bytes");
    }
    if (rc != 0) {
        rs_sketch_release(&tmp);
        return rc;
    }
    rs_sketch_release(sk);
    *sk = tmp;
    return 0;
}
