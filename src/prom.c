#include "prom.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for "%.17g" of any double ("-2.2250738585072014e-308") and any uint64. */
#define NUM_MAX 32

/* Below 2^63 an integral double converts to int64_t exactly, so it can print as digits. */
#define EXACT_INT_LIMIT 9223372036854775808.0

void rs_histogram_init(struct rs_histogram *h, const double *bounds, size_t n)
{
    assert(n <= RS_PROM_BUCKETS_MAX);
    memset(h, 0, sizeof(*h));
    h->n = n;
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || bounds[i - 1] < bounds[i]);
        h->bounds[i] = bounds[i];
    }
}

void rs_histogram_observe(struct rs_histogram *h, double v)
{
    size_t i = 0;

    /* Upper bounds are inclusive (le = "less or equal"); NaN fails every test and so lands
     * in +Inf, as it does in the Prometheus clients. */
    while (i < h->n && !(v <= h->bounds[i])) {
        i++;
    }
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

static void put_str(struct rs_buf *out, const char *s)
{
    rs_buf_append(out, s, strlen(s));
}

static void put_u64(struct rs_buf *out, uint64_t v)
{
    char num[NUM_MAX];
    int len = snprintf(num, sizeof(num), "%" PRIu64, v);

    rs_buf_append(out, num, (size_t)len);
}

/*
 * Format `v` into `num` the way Prometheus parses it back: integers as plain digits ("42",
 * never "4.2e+01"), other finite values in the fewest digits that still round-trip (so
 * 0.005 prints as "0.005", not "0.0050000000000000001"), and the infinities and NaN spelled
 * as the Go parser expects. Returns the length.
 */
static size_t format_double(char num[NUM_MAX], double v)
{
    int len = 0;

    if (isnan(v)) {
        len = snprintf(num, NUM_MAX, "NaN");
    } else if (isinf(v)) {
        len = snprintf(num, NUM_MAX, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v == trunc(v) && fabs(v) < EXACT_INT_LIMIT) {
        len = snprintf(num, NUM_MAX, "%" PRId64, (int64_t)v); /* -0.0 prints "0" */
    } else {
        /* Any decimal of up to 15 digits survives a trip through a double, so try 15
         * first; 17 always round-trips. */
        for (int prec = 15; prec <= 17; prec++) {
            len = snprintf(num, NUM_MAX, "%.*g", prec, v);
            if (strtod(num, NULL) == v) {
                break;
            }
        }
    }
    return (size_t)len;
}

static void put_double(struct rs_buf *out, double v)
{
    char num[NUM_MAX];
    size_t len = format_double(num, v);

    rs_buf_append(out, num, len);
}

/* HELP text escapes only backslash and newline (text format 0.0.4). */
static void put_help(struct rs_buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            put_str(out, "\\\\");
        } else if (*s == '\n') {
            put_str(out, "\\n");
        } else {
            rs_buf_append(out, s, 1);
        }
    }
}

/* Label values also escape the double quote that ends them. */
static void put_label_value(struct rs_buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            put_str(out, "\\\\");
        } else if (*s == '"') {
            put_str(out, "\\\"");
        } else if (*s == '\n') {
            put_str(out, "\\n");
        } else {
            rs_buf_append(out, s, 1);
        }
    }
}

static void put_label(struct rs_buf *out, const char *key, const char *value, int *n_written)
{
    put_str(out, *n_written == 0 ? "{" : ",");
    put_str(out, key);
    put_str(out, "=\"");
    put_label_value(out, value);
    put_str(out, "\"");
    (*n_written)++;
}

/*
 * Write `name` (plus `suffix`) and the label set, with `le` as a last label when not NULL,
 * then the space before the value.
 */
static void put_series(struct rs_buf *out, const char *name, const char *suffix,
                       const char *const *labels, size_t n_labels, const char *le)
{
    int n_written = 0;

    put_str(out, name);
    put_str(out, suffix);
    for (size_t i = 0; i < n_labels; i++) {
        put_label(out, labels[2 * i], labels[2 * i + 1], &n_written);
    }
    if (le != NULL) {
        put_label(out, "le", le, &n_written);
    }
    if (n_written > 0) {
        put_str(out, "}");
    }
    put_str(out, " ");
}

void rs_prom_family(struct rs_buf *out, const char *name, const char *type, const char *help)
{
    put_str(out, "# HELP ");
    put_str(out, name);
    put_str(out, " ");
    put_help(out, help);
    put_str(out, "\n# TYPE ");
    put_str(out, name);
    put_str(out, " ");
    put_str(out, type);
    put_str(out, "\n");
}

void rs_prom_sample(struct rs_buf *out, const char *name, const char *const *labels,
                    size_t n_labels, double value)
{
    put_series(out, name, "", labels, n_labels, NULL);
    put_double(out, value);
    put_str(out, "\n");
}

void rs_prom_histogram(struct rs_buf *out, const char *name, const char *const *labels,
                       size_t n_labels, const struct rs_histogram *h)
{
    char le[NUM_MAX];
    uint64_t cumulative = 0;

    for (size_t i = 0; i <= h->n; i++) {
        cumulative += h->counts[i];
        format_double(le, i < h->n ? h->bounds[i] : INFINITY);
        put_series(out, name, "_bucket", labels, n_labels, le);
        put_u64(out, cumulative);
        put_str(out, "\n");
    }
    put_series(out, name, "_sum", labels, n_labels, NULL);
    put_double(out, h->sum);
    put_str(out, "\n");
    put_series(out, name, "_count", labels, n_labels, NULL);
    put_u64(out, h->count);
    put_str(out, "\n");
}
