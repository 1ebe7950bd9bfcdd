/*
 * query.h - the read side that the HTTP JSON API and `revstream inspect` share.
 *
 * Each query takes its parameters by name through a lookup function (the HTTP query string,
 * or inspect's options), checks them, reads the store in the caller's read snapshot, and
 * returns a JSON value (Jansson). A bad parameter is RS_EINVAL with a message naming it:
 *   parameter 'grain': expected one of day, week, month, quarter, got 'year'
 *
 *   metric  name, grain (day), bucket (label; default: the bucket holding the watermark),
 *           dims ("key=value,key=value"; default none)  -> one value with its inputs
 *   series  name, grain, from, to (labels, inclusive; at most 400 buckets), dims
 *   open    rule ("SLA-02" or a full sla_type; default all), owner, limit (100)
 *   list    the metric definitions
 *
 * Threads: the caller's; the store snapshot must be open (rs_store_read_begin).
 */
#ifndef RS_QUERY_H
#define RS_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "err.h"
#include "metrics.h"
#include "store.h"

struct rs_query_ctx {
    struct rs_store *st;
    const struct rs_metrics_config *mcfg;
    const uint32_t *partitions; /* the partitions to sum; n_partitions == 0: every one stored */
    size_t n_partitions;
    int64_t watermark_ms; /* decides provisional / final and cohort maturity */
};

/* The value of parameter `name`, or NULL when absent. */
typedef const char *rs_query_param_fn(void *opaque, const char *name);

struct rs_query_params {
    rs_query_param_fn *get;
    void *opaque;
};

int rs_query_metric(const struct rs_query_ctx *ctx, const struct rs_query_params *params,
                    json_t **out, struct rs_err *err);
int rs_query_series(const struct rs_query_ctx *ctx, const struct rs_query_params *params,
                    json_t **out, struct rs_err *err);
int rs_query_open(const struct rs_query_ctx *ctx, const struct rs_query_params *params,
                  json_t **out, struct rs_err *err);
json_t *rs_query_list(void);

#endif
