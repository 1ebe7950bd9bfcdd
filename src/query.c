#include "query.h"

#include "finance.h"
#include "slarule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SERIES_MAX  400 /* buckets in one series answer */
#define OPEN_LIMIT  100 /* default open instances in one answer */
#define OPEN_MAX    10000
#define PARAM_SHOWN 64 /* bytes of a bad parameter value quoted back */
#define DIM_PAIRS   8

static const char *param(const struct rs_query_params *p, const char *name)
{
    const char *v = p->get(p->opaque, name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int bad(struct rs_err *err, const char *name, const char *expected, const char *got)
{
    return rs_err_set(err, RS_EINVAL, "parameter '%s': expected %s, got '%.*s'", name, expected,
                      PARAM_SHOWN, got != NULL ? got : "");
}

static int parse_name(const struct rs_query_params *p, const struct rs_metric_def **def,
                      struct rs_err *err)
{
    const char *name = param(p, "name");

    if (name == NULL) {
        return rs_err_set(err, RS_EINVAL,
                          "parameter 'name': missing; one of the metrics of "
                          "/api/metrics");
    }
    *def = rs_metric_by_name(name, strlen(name));
    if (*def == NULL) {
        return bad(err, "name", "a metric name listed by /api/metrics", name);
    }
    return 0;
}

static int parse_grain(const struct rs_query_params *p, const struct rs_metric_def *def,
                       enum rs_grain *grain, struct rs_err *err)
{
    const char *g = param(p, "grain");
    int v;

    if (g == NULL) {
        *grain = (def->grains & (1u << RS_GRAIN_DAY)) ? RS_GRAIN_DAY : RS_GRAIN_MONTH;
        return 0;
    }
    v = rs_grain_parse(g, strlen(g));
    if (v < 0) {
        return bad(err, "grain", "one of day, week, month, quarter", g);
    }
    if (!(def->grains & (1u << v))) {
        return rs_err_set(err, RS_EINVAL, "parameter 'grain': metric '%s' is not kept by %s",
                          def->name, g);
    }
    *grain = (enum rs_grain)v;
    return 0;
}

static bool key_allowed(const struct rs_metric_def *def, const char *key, size_t len)
{
    const char *p = def->dims;

    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);

        if (n == len && memcmp(p, key, len) == 0) {
            return true;
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
    return false;
}

/* "k=v,k=v" -> canonical dims in out. */
static int parse_dims(const struct rs_query_params *p, const struct rs_metric_def *def, char *out,
                      size_t size, struct rs_str *dims, json_t *echo, struct rs_err *err)
{
    const char *d = param(p, "dims");
    struct rs_str pairs[DIM_PAIRS][2];
    size_t n = 0;

    *dims = (struct rs_str){ out, 0 };
    out[0] = '\0';
    if (d == NULL) {
        return 0;
    }
    for (const char *s = d; *s != '\0';) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        const char *eq = memchr(s, '=', len);

        if (eq == NULL || eq == s || n == DIM_PAIRS) {
            return bad(err, "dims", "key=value pairs separated by ','", d);
        }
        if (!key_allowed(def, s, (size_t)(eq - s))) {
            return rs_err_set(err, RS_EINVAL,
                              "parameter 'dims': metric '%s' has no dimension '%.*s' (it has: "
                              "%s)",
                              def->name, (int)(eq - s), s, def->dims[0] ? def->dims : "none");
        }
        pairs[n][0] = (struct rs_str){ s, (size_t)(eq - s) };
        pairs[n][1] = (struct rs_str){ eq + 1, len - (size_t)(eq - s) - 1 };
        if (echo != NULL) {
            char key[64];
            size_t klen = pairs[n][0].len < sizeof(key) - 1 ? pairs[n][0].len : sizeof(key) - 1;

            memcpy(key, s, klen);
            key[klen] = '\0';
            json_object_set_new(echo, key, json_stringn(pairs[n][1].ptr, pairs[n][1].len));
        }
        n++;
        s = comma != NULL ? comma + 1 : s + len;
    }
    dims->len = rs_agg_dims(out, size, (const struct rs_str(*)[2])pairs, n);
    if (dims->len == 0 && n > 0) {
        return bad(err, "dims", "shorter dimension values", d);
    }
    return 0;
}

static int parse_bucket(const struct rs_query_ctx *ctx, const struct rs_query_params *p,
                        const char *name, enum rs_grain grain, int64_t *bucket, struct rs_err *err)
{
    const char *label = param(p, name);
    struct rs_err perr;

    if (label == NULL) {
        int64_t t = ctx->watermark_ms != INT64_MIN ? ctx->watermark_ms : 0;

        *bucket = rs_bucket_start(ctx->mcfg->zone, grain, t);
        return 0;
    }
    if (rs_bucket_parse(ctx->mcfg->zone, grain, label, strlen(label), bucket, &perr) != 0) {
        static const char *const expected[RS_GRAIN__COUNT] = {
            "a day label such as 2026-03-02",
            "an ISO week label such as 2026-W10",
            "a month label such as 2026-03",
            "a quarter label such as 2026-Q1",
        };

        return bad(err, name, expected[grain], label);
    }
    return 0;
}

static json_t *num_or_null(bool is_null, double v)
{
    return is_null ? json_null() : json_real(v);
}

/* What value2 holds, per metric (metrics.c); NULL when it holds nothing. */
static const char *value2_name(uint16_t metric)
{
    switch (metric) {
    case RS_M11_SPEED_TO_LEAD:
    case RS_M11_SPEED_BUSINESS:
        return "pct_never_touched";
    case RS_M12_WIN_RATE:
        return "value_win_rate";
    case RS_M14_HANDOFF:
        return "completion_rate_any_time";
    case RS_M16_QUOTA:
        return "share_all_reps_at_quota";
    case RS_M20_ONBOARDING:
        return "pct_reached";
    case RS_MSLA_COMPLIANCE:
        return "pct_breached";
    case RS_M03_MRR_CHURN:
        return "net_mrr_churn";
    case RS_M05_NRR:
    case RS_M05_NRR_T12:
        return "grr";
    case RS_M07_CAC:
        return "ltv_cac";
    case RS_M10_RULE_OF_40:
        return "revenue_growth_pct";
    case RS_M22_FORECAST:
        return "bias";
    default:
        return NULL;
    }
}

static json_t *value_json(const struct rs_query_ctx *ctx, const struct rs_metric_def *def,
                          json_t *dims, enum rs_grain grain, int64_t bucket,
                          const struct rs_metric_value *v)
{
    char label[32];
    json_t *o = json_object();

    (void)rs_bucket_label(ctx->mcfg->zone, grain, bucket, label, sizeof(label));
    json_object_set_new(o, "metric", json_string(def->name));
    json_object_set_new(o, "unit", json_string(def->unit));
    json_object_set(o, "dims", dims);
    json_object_set_new(o, "grain", json_string(rs_grain_name(grain)));
    json_object_set_new(o, "bucket", json_string(label));
    json_object_set_new(o, "bucket_start", json_integer(bucket));
    json_object_set_new(o, "value", num_or_null(v->is_null, v->value));
    json_object_set_new(o, "null_reason",
                        v->null_reason != NULL ? json_string(v->null_reason) : json_null());
    json_object_set_new(o, "numerator", json_integer(v->numerator));
    json_object_set_new(o, "denominator", json_integer(v->denominator));
    json_object_set_new(o, "count", json_integer(v->count));
    json_object_set_new(o, "mean", json_real(v->mean));
    json_object_set_new(o, "p50", json_real(v->p50));
    json_object_set_new(o, "p75", json_real(v->p75));
    json_object_set_new(o, "p90", json_real(v->p90));
    json_object_set_new(o, "pct_within", json_real(v->pct_within));
    if (value2_name(def->id) != NULL) {
        /* A null value has no second headline either. */
        json_object_set_new(o, value2_name(def->id),
                            def->id >= RS_M01_MRR ? num_or_null(v->is_null, v->value2)
                                                  : json_real(v->value2));
    }
    if (v->n_detail > 0) {
        json_t *detail = json_object();

        for (size_t i = 0; i < v->n_detail && i < RS_METRIC_DETAIL_MAX; i++) {
            json_object_set_new(detail, v->detail[i].name,
                                num_or_null(v->detail[i].is_null, v->detail[i].value));
        }
        json_object_set_new(o, "detail", detail);
    }
    if (def->id >= RS_M01_MRR) {
        json_object_set_new(o, "churn_floored", json_boolean(v->churn_floored));
        json_object_set_new(o, "flagged_long", json_boolean(v->flagged_long));
        json_object_set_new(o, "qtd", json_boolean(v->qtd));
    }
    json_object_set_new(o, "status", json_string(v->provisional ? "provisional" : "final"));
    json_object_set_new(o, "low_confidence", json_boolean(v->low_confidence));
    return o;
}

static json_t *partitions_json(const struct rs_query_ctx *ctx)
{
    json_t *a = json_array();

    for (size_t i = 0; i < ctx->n_partitions; i++) {
        json_array_append_new(a, json_integer(ctx->partitions[i]));
    }
    return a;
}

int rs_query_metric(const struct rs_query_ctx *ctx, const struct rs_query_params *params,
                    json_t **out, struct rs_err *err)
{
    const struct rs_metric_def *def;
    enum rs_grain grain;
    int64_t bucket;
    char dbuf[RS_AGG_DIMS_MAX];
    struct rs_str dims;
    struct rs_metric_value v;
    json_t *echo;
    int rc;

    *out = NULL;
    rc = parse_name(params, &def, err);
    if (rc == 0) {
        rc = parse_grain(params, def, &grain, err);
    }
    if (rc == 0) {
        rc = parse_bucket(ctx, params, "bucket", grain, &bucket, err);
    }
    if (rc != 0) {
        return rc;
    }
    echo = json_object();
    rc = parse_dims(params, def, dbuf, sizeof(dbuf), &dims, echo, err);
    if (rc == 0) {
        rc = rs_metrics_read(ctx->mcfg, ctx->st, def, dims, grain, bucket, ctx->partitions,
                             ctx->n_partitions, ctx->watermark_ms, &v, err);
    }
    if (rc == 0) {
        *out = value_json(ctx, def, echo, grain, bucket, &v);
        json_object_set_new(*out, "partitions", partitions_json(ctx));
    }
    json_decref(echo);
    return rc;
}

int rs_query_series(const struct rs_query_ctx *ctx, const struct rs_query_params *params,
                    json_t **out, struct rs_err *err)
{
    const struct rs_metric_def *def;
    enum rs_grain grain;
    int64_t from, to;
    char dbuf[RS_AGG_DIMS_MAX];
    struct rs_str dims;
    json_t *echo, *points;
    int rc;

    *out = NULL;
    rc = parse_name(params, &def, err);
    if (rc == 0) {
        rc = parse_grain(params, def, &grain, err);
    }
    if (rc == 0 && param(params, "from") == NULL) {
        rc = rs_err_set(err, RS_EINVAL, "parameter 'from': missing; the first bucket's label");
    }
    if (rc == 0) {
        rc = parse_bucket(ctx, params, "from", grain, &from, err);
    }
    if (rc == 0) {
        rc = parse_bucket(ctx, params, "to", grain, &to, err);
    }
    if (rc == 0 && to < from) {
        rc = rs_err_set(err, RS_EINVAL, "parameter 'to': the bucket is before 'from'");
    }
    if (rc != 0) {
        return rc;
    }
    echo = json_object();
    rc = parse_dims(params, def, dbuf, sizeof(dbuf), &dims, echo, err);
    points = json_array();
    for (int64_t b = from, n = 0; rc == 0 && b <= to;
         b = rs_bucket_end(ctx->mcfg->zone, grain, b)) {
        struct rs_metric_value v;

        if (++n > SERIES_MAX) {
            rc = rs_err_set(err, RS_EINVAL, "parameter 'to': at most %d buckets in one series",
                            SERIES_MAX);
            break;
        }
        rc = rs_metrics_read(ctx->mcfg, ctx->st, def, dims, grain, b, ctx->partitions,
                             ctx->n_partitions, ctx->watermark_ms, &v, err);
        if (rc == 0) {
            json_array_append_new(points, value_json(ctx, def, echo, grain, b, &v));
        }
    }
    if (rc == 0) {
        *out = json_object();
        json_object_set_new(*out, "metric", json_string(def->name));
        json_object_set_new(*out, "grain", json_string(rs_grain_name(grain)));
        json_object_set(*out, "dims", echo);
        json_object_set_new(*out, "partitions", partitions_json(ctx));
        json_object_set_new(*out, "points", points);
    } else {
        json_decref(points);
    }
    json_decref(echo);
    return rc;
}

struct open_ctx {
    const struct rs_query_ctx *q;
    json_t *items;
    size_t limit;
    size_t total;
};

static bool covered(const struct rs_query_ctx *q, uint32_t partition)
{
    if (q->n_partitions == 0) {
        return true;
    }
    for (size_t i = 0; i < q->n_partitions; i++) {
        if (q->partitions[i] == partition) {
            return true;
        }
    }
    return false;
}

static json_t *time_or_null(int64_t t)
{
    return t == INT64_MAX || t == INT64_MIN ? json_null() : json_integer(t);
}

static int on_open(void *opaque, const struct rs_sla_open *o)
{
    struct open_ctx *c = opaque;
    json_t *item;

    if (!covered(c->q, o->partition)) {
        return 0;
    }
    if (c->total++ >= c->limit) {
        return 0;
    }
    item = json_object();
    json_object_set_new(item, "sla_type", json_string(o->sla_type));
    json_object_set_new(item, "entity_id", json_stringn(o->entity_id.ptr, o->entity_id.len));
    json_object_set_new(item, "owner_id",
                        rs_str_is_set(o->owner_id) ? json_stringn(o->owner_id.ptr, o->owner_id.len)
                                                   : json_null());
    json_object_set_new(item, "status", json_string(o->status));
    json_object_set_new(item, "partition", json_integer(o->partition));
    json_object_set_new(item, "start_at", json_integer(o->start_ms));
    json_object_set_new(item, "target_at", time_or_null(o->target_ms));
    json_object_set_new(item, "next_level_at", time_or_null(o->next_level_ms));
    json_array_append_new(c->items, item);
    return 0;
}

/* "SLA-02", "sla-02", "SLA-02_mql_acceptance" or "2" -> rule id; 0 when none matches. */
static uint8_t rule_of(const char *s)
{
    for (unsigned id = 1; id < 8; id++) {
        const char *type = rs_rule_sla_type((uint8_t)id);

        if (type == NULL) {
            continue;
        }
        if (strcmp(s, type) == 0 || (strlen(s) == 6 && strncasecmp(s, type, 6) == 0) ||
            (s[0] == (char)('0' + id) && s[1] == '\0')) {
            return (uint8_t)id;
        }
    }
    return 0;
}

int rs_query_open(const struct rs_query_ctx *ctx, const struct rs_query_params *params,
                  json_t **out, struct rs_err *err)
{
    const char *rule_s = param(params, "rule");
    const char *owner_s = param(params, "owner");
    const char *limit_s = param(params, "limit");
    struct open_ctx c = { ctx, NULL, OPEN_LIMIT, 0 };
    struct rs_str owner = RS_STR_NULL;
    uint8_t rule = 0;
    int rc;

    *out = NULL;
    if (rule_s != NULL && (rule = rule_of(rule_s)) == 0) {
        return bad(err, "rule", "an SLA such as SLA-02 or SLA-02_mql_acceptance", rule_s);
    }
    if (limit_s != NULL) {
        char *end;
        long v = strtol(limit_s, &end, 10);

        if (*end != '\0' || v < 1 || v > OPEN_MAX) {
            return bad(err, "limit", "a number from 1 to 10000", limit_s);
        }
        c.limit = (size_t)v;
    }
    if (owner_s != NULL) {
        owner = (struct rs_str){ owner_s, strlen(owner_s) };
    }
    c.items = json_array();
    rc = rs_rules_scan_open(ctx->st, rule, owner, on_open, &c, err);
    if (rc != 0) {
        json_decref(c.items);
        return rc;
    }
    *out = json_object();
    json_object_set_new(*out, "rule",
                        rule != 0 ? json_string(rs_rule_sla_type(rule)) : json_null());
    json_object_set_new(*out, "owner", owner_s != NULL ? json_string(owner_s) : json_null());
    json_object_set_new(*out, "total", json_integer((json_int_t)c.total));
    json_object_set_new(*out, "truncated", json_boolean(c.total > c.limit));
    json_object_set_new(*out, "partitions", partitions_json(ctx));
    json_object_set_new(*out, "open", c.items);
    return 0;
}

json_t *rs_query_list(void)
{
    size_t n;
    const struct rs_metric_def *defs = rs_metric_defs(&n);
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_t *grains = json_array();

        for (int g = 0; g < RS_GRAIN__COUNT; g++) {
            if (defs[i].grains & (1u << g)) {
                json_array_append_new(grains, json_string(rs_grain_name((enum rs_grain)g)));
            }
        }
        json_object_set_new(o, "name", json_string(defs[i].name));
        json_object_set_new(o, "unit", json_string(defs[i].unit));
        json_object_set_new(o, "dims", json_string(defs[i].dims));
        json_object_set_new(o, "grains", grains);
        json_object_set_new(o, "cohort", json_boolean(defs[i].cohort));
        json_array_append_new(a, o);
    }
    return a;
}
