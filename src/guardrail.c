#include "guardrail.h"

#include "record.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define RECORD_VERSION 1
#define RECORD_LEN     20 /* version status flags pad attempt(4) value(8) pad(4) */
#define LABEL_MAX      32 /* "2026-Q1", "2026-03-02": short */
#define ID_MAX         (24 + LABEL_MAX)
#define SLA_TYPE_MAX   40
#define MS_PER_MIN     (60 * INT64_C(1000))

enum field { F_VALUE, F_VALUE2, F_PCT_WITHIN };

/* One guardrail. Keep in sync with enum rs_guardrail_id. */
struct guard_def {
    const char *name;   /* the guardrail (config keys, sla_type "KPI-<name>", ids) */
    const char *metric; /* the metric read (rs_metric_def names) */
    enum rs_grain grain;
    enum field field;
    bool above;       /* breach when value > threshold; else when value < threshold */
    unsigned periods; /* consecutive buckets that must breach (magic number: 2) */
    double threshold; /* the §6 default */
};

static const struct guard_def defs[RS_GUARD__COUNT] = {
    [RS_GUARD_MAGIC_NUMBER] = { "magic_number", "magic_number", RS_GRAIN_QUARTER, F_VALUE, false, 1,
                                0.5 },
    [RS_GUARD_MAGIC_NUMBER_2Q] = { "magic_number_2q", "magic_number", RS_GRAIN_QUARTER, F_VALUE,
                                   false, 2, 0.75 },
    [RS_GUARD_CAC_PAYBACK] = { "cac_payback", "cac_payback", RS_GRAIN_QUARTER, F_VALUE, true, 1,
                               24 },
    [RS_GUARD_LTV_CAC] = { "ltv_cac", "cac", RS_GRAIN_QUARTER, F_VALUE2, false, 1, 3 },
    [RS_GUARD_NRR_T12] = { "nrr_t12", "nrr_t12", RS_GRAIN_MONTH, F_VALUE, false, 1, 1.0 },
    [RS_GUARD_GRR_T12] = { "grr_t12", "nrr_t12", RS_GRAIN_MONTH, F_VALUE2, false, 1, 0.85 },
    [RS_GUARD_SPEED_TO_LEAD] = { "speed_to_lead", "speed_to_lead", RS_GRAIN_DAY, F_PCT_WITHIN,
                                 false, 1, 0.8 },
    [RS_GUARD_HANDOFF_ON_TIME] = { "handoff_on_time", "handoff_completion", RS_GRAIN_MONTH, F_VALUE,
                                   false, 1, 0.9 },
};

enum status { ST_WITHIN, ST_BREACHED };

enum {
    F_FIRED = 1,       /* the episode published L1_breach */
    F_FIRED_FINAL = 2, /* the episode published L1_breach_final */
    F_SEEN = 4,        /* value holds the last value judged */
    F_WAS_FINAL = 8,   /* that value was final */
};

/* The state of one (guardrail, bucket). */
struct state {
    uint8_t status;
    uint8_t flags;
    uint32_t attempt_n; /* breach episodes so far */
    double value;
};

const char *rs_guardrail_name(enum rs_guardrail_id id)
{
    return (unsigned)id < RS_GUARD__COUNT ? defs[id].name : NULL;
}

void rs_guardrail_config_defaults(struct rs_guardrail_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < RS_GUARD__COUNT; i++) {
        cfg->enabled[i] = true;
        cfg->threshold[i] = defs[i].threshold;
    }
    cfg->interval_ms = MS_PER_MIN;
}

void rs_guardrails_init(struct rs_guardrails *g, const struct rs_guardrail_config *cfg,
                        rs_sla_emit_cb *emit, void *opaque)
{
    memset(g, 0, sizeof(*g));
    g->cfg = *cfg;
    g->emit = emit;
    g->opaque = opaque;
    g->last_run_ms = INT64_MIN;
}

/* ---- records ---------------------------------------------------------------------------- */

static uint64_t double_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Layout: version status flags pad attempt(u32) value(f64 bits) pad(4). */
static int state_load(struct rs_store *st, struct rs_str id, struct state *s, struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    struct rs_bytes val;
    const uint8_t *p;
    int rc = rs_store_get(st, RS_DB_ENTITIES,
                          rs_entity_key(kbuf, RS_GUARDRAIL_STORE_WIDE, RS_GUARDRAIL_KIND, id), &val,
                          err);

    memset(s, 0, sizeof(*s));
    if (rc == RS_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    p = val.ptr;
    if (val.len != RECORD_LEN || p[0] != RECORD_VERSION || p[1] > ST_BREACHED) {
        return rs_err_set(err, RS_ESTORE, "guardrail record '%.*s' of %zu bytes is corrupt",
                          (int)id.len, id.ptr, val.len);
    }
    s->status = p[1];
    s->flags = p[2];
    s->attempt_n = rs_store_get_u32(p + 4);
    s->value = bits_double(rs_store_get_u64(p + 8));
    return 0;
}

static int state_save(struct rs_store *st, struct rs_str id, const struct state *s,
                      struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    uint8_t v[RECORD_LEN];

    memset(v, 0, sizeof(v));
    v[0] = RECORD_VERSION;
    v[1] = s->status;
    v[2] = s->flags;
    rs_store_put_u32(v + 4, s->attempt_n);
    rs_store_put_u64(v + 8, double_bits(s->value));
    return rs_store_put(st, RS_DB_ENTITIES,
                        rs_entity_key(kbuf, RS_GUARDRAIL_STORE_WIDE, RS_GUARDRAIL_KIND, id),
                        (struct rs_bytes){ v, sizeof(v) }, err);
}

/* ---- judging ---------------------------------------------------------------------------- */

/* One bucket's value as the guardrail reads it. */
struct reading {
    bool has; /* false: null, no base, or a metric the reader lacks */
    double value;
    bool provisional;
};

static int read_value(const struct guard_def *d, rs_guardrail_read_fn *read, void *opaque,
                      int64_t bucket, struct reading *out, struct rs_err *err)
{
    struct rs_metric_value mv;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&mv, 0, sizeof(mv));
    rc = read(opaque, d->metric, d->grain, bucket, &mv, err);
    if (rc == RS_ENOTFOUND || rc == RS_EINVAL) {
        return 0; /* not built (yet): nothing to judge */
    }
    if (rc != 0) {
        return rc;
    }
    switch (d->field) {
    case F_VALUE:
        out->value = mv.value;
        out->has = !mv.is_null;
        break;
    case F_VALUE2:
        out->value = mv.value2;
        out->has = !mv.is_null;
        break;
    case F_PCT_WITHIN:
        /* M11's headline is a percentile, null until a lead is touched; the share within the
         * SLA is defined as soon as a lead was created. */
        out->value = mv.pct_within;
        out->has = mv.count > 0;
        break;
    }
    out->has = out->has && isfinite(out->value);
    out->provisional = mv.provisional;
    return 0;
}

static bool breaches(const struct guard_def *d, double threshold, double value)
{
    return d->above ? value > threshold : value < threshold;
}

/* One evaluation of one (guardrail, bucket). */
struct judge {
    struct rs_guardrails *g;
    const struct guard_def *d;
    enum rs_guardrail_id id;
    int64_t bucket, bucket_end, watermark_ms;
    struct rs_str entity; /* "<name>|<label>" */
    const char *label;
    char sla_type[SLA_TYPE_MAX];
    struct rs_err *err;
};

static int publish(const struct judge *j, const struct state *s, enum rs_alert_kind kind,
                   const char *level, const struct reading *r)
{
    struct rs_alert a;
    struct rs_alert_kpi k;
    int64_t until = j->watermark_ms < j->bucket_end ? j->watermark_ms : j->bucket_end;

    memset(&a, 0, sizeof(a));
    k.metric = j->d->name;
    k.grain = rs_grain_name(j->d->grain);
    k.bucket = j->label;
    k.value = r->value;
    k.threshold = j->g->cfg.threshold[j->id];
    k.comparison = j->d->above ? ">" : "<";
    k.provisional = r->provisional || j->watermark_ms < j->bucket_end;
    k.qtd = j->watermark_ms < j->bucket_end;
    a.kind = kind;
    if (kind == RS_ALERT_RETRACTED) {
        rs_sla_alert_id(a.alert_id, RS_STR_NULL, j->sla_type, j->entity, s->attempt_n, level,
                        "|retracted");
        rs_sla_alert_id(a.retracts_id, RS_STR_NULL, j->sla_type, j->entity, s->attempt_n, level,
                        "");
    } else {
        rs_sla_alert_id(a.alert_id, RS_STR_NULL, j->sla_type, j->entity, s->attempt_n, level, "");
    }
    a.sla_type = j->sla_type;
    a.level = level;
    a.status = s->status == ST_BREACHED ? "breached" : "met";
    a.entity_type = "metric";
    a.entity_id = j->entity;
    a.attempt_n = s->attempt_n;
    a.start_event_type = "metric.bucket";
    a.start_at_ms = j->bucket;
    a.target_at_ms = j->bucket_end;
    a.level_at_ms = j->watermark_ms;
    a.evaluated_at_ms = j->watermark_ms;
    a.threshold_ms = 0; /* not a duration: the kpi map has the threshold */
    a.elapsed_ms = a.elapsed_business_ms = until > j->bucket ? until - j->bucket : 0;
    a.clock = "calendar";
    a.kpi = &k;
    j->g->counters.alerts[kind]++;
    return j->g->emit(j->g->opaque, &a, j->err);
}

/* Judge r against the state; returns the alerts published or a negative code. */
static int judge(const struct judge *j, struct state *s, const struct reading *r, bool breach)
{
    bool open = j->watermark_ms < j->bucket_end;
    bool final = !open && !r->provisional;
    int n = 0;
    int rc = 0;

    if (breach) {
        if (s->status == ST_WITHIN) {
            s->status = ST_BREACHED;
            s->attempt_n++;
            s->flags &= (uint8_t) ~(F_FIRED | F_FIRED_FINAL);
            if (!final) {
                s->flags |= F_FIRED;
                rc = publish(j, s, RS_ALERT_BREACHED, "L1_breach", r);
                n++;
            }
        }
        if (rc == 0 && final && !(s->flags & F_FIRED_FINAL)) {
            s->flags |= F_FIRED_FINAL;
            rc = publish(j, s, RS_ALERT_BREACHED, "L1_breach_final", r);
            n++;
        }
    } else if (s->status == ST_BREACHED) {
        s->status = ST_WITHIN;
        if (open) {
            rc = publish(j, s, RS_ALERT_RECOVERED, "resolved", r);
            n++;
        } else {
            /* The period is over: its value was restated, so the breach never was. */
            if (s->flags & F_FIRED) {
                rc = publish(j, s, RS_ALERT_RETRACTED, "L1_breach", r);
                n++;
            }
            if (rc == 0 && (s->flags & F_FIRED_FINAL)) {
                rc = publish(j, s, RS_ALERT_RETRACTED, "L1_breach_final", r);
                n++;
            }
        }
        s->flags &= (uint8_t) ~(F_FIRED | F_FIRED_FINAL);
    }
    return rc != 0 ? rc : n;
}

static int eval_bucket(struct rs_guardrails *g, struct rs_store *st, enum rs_guardrail_id id,
                       int64_t bucket, int64_t watermark_ms, rs_guardrail_read_fn *read,
                       void *opaque, struct rs_err *err)
{
    const struct guard_def *d = &defs[id];
    const struct rs_zone *zone = g->cfg.zone;
    double threshold = g->cfg.threshold[id];
    char label[LABEL_MAX];
    char entity[ID_MAX];
    struct judge j;
    struct reading r;
    struct state s;
    bool breach, final;
    int n, rc;

    rc = read_value(d, read, opaque, bucket, &r, err);
    if (rc != 0 || !r.has) {
        return rc;
    }
    breach = breaches(d, threshold, r.value);
    /* The sustained form: every one of the `periods` buckets up to this one breaches. */
    for (unsigned k = 1; breach && k < d->periods; k++) {
        struct reading prev;
        int64_t before = bucket;

        for (unsigned back = 0; back < k; back++) {
            before = rs_bucket_start(zone, d->grain, before - 1);
        }
        rc = read_value(d, read, opaque, before, &prev, err);
        if (rc != 0) {
            return rc;
        }
        breach = prev.has && breaches(d, threshold, prev.value);
    }

    memset(&j, 0, sizeof(j));
    j.g = g;
    j.d = d;
    j.id = id;
    j.bucket = bucket;
    j.bucket_end = rs_bucket_end(zone, d->grain, bucket);
    j.watermark_ms = watermark_ms;
    j.err = err;
    if (rs_bucket_label(zone, d->grain, bucket, label, sizeof(label)) == 0) {
        (void)snprintf(label, sizeof(label), "%lld", (long long)bucket);
    }
    j.label = label;
    (void)snprintf(entity, sizeof(entity), "%s|%s", d->name, label);
    j.entity = (struct rs_str){ entity, strlen(entity) };
    (void)snprintf(j.sla_type, sizeof(j.sla_type), "KPI-%s", d->name);

    rc = state_load(st, j.entity, &s, err);
    if (rc != 0) {
        return rc;
    }
    final = watermark_ms >= j.bucket_end && !r.provisional;
    /*
     * Only the judgment is state, never the value judged: a value summed over partitions at
     * the end of a batch depends on how far each partition had got, which a replay or a
     * restart after a crash does not reproduce, while the judgment (breached or not, final or
     * not) does unless the value sits at the threshold. So the stored state stays what a
     * replay rebuilds.
     */
    if (!breach && s.attempt_n == 0 && s.status == ST_WITHIN && !(s.flags & F_SEEN)) {
        return 0; /* never breached: nothing to remember, so nothing a replay might not */
    }
    if ((s.flags & F_SEEN) && final == ((s.flags & F_WAS_FINAL) != 0) &&
        breach == (s.status == ST_BREACHED)) {
        return 0;
    }
    g->counters.evaluations++;
    n = judge(&j, &s, &r, breach);
    if (n < 0) {
        return n;
    }
    s.value = 0; /* kept in the layout; see above */
    s.flags = (uint8_t)((s.flags & ~F_WAS_FINAL) | F_SEEN | (final ? F_WAS_FINAL : 0));
    rc = state_save(st, j.entity, &s, err);
    return rc != 0 ? rc : n;
}

int rs_guardrails_eval(struct rs_guardrails *g, struct rs_store *st, int64_t watermark_ms,
                       rs_guardrail_read_fn *read, void *read_opaque, struct rs_err *err)
{
    int total = 0;

    if (watermark_ms == INT64_MIN || g->cfg.zone == NULL ||
        (g->last_run_ms != INT64_MIN && watermark_ms < g->last_run_ms + g->cfg.interval_ms) ||
        watermark_ms <= g->last_run_ms) {
        return 0;
    }
    g->last_run_ms = watermark_ms;
    g->counters.runs++;
    for (size_t i = 0; i < RS_GUARD__COUNT; i++) {
        const struct guard_def *d = &defs[i];
        int64_t current, previous;

        if (!g->cfg.enabled[i]) {
            continue;
        }
        current = rs_bucket_start(g->cfg.zone, d->grain, watermark_ms);
        previous = rs_bucket_start(g->cfg.zone, d->grain, current - 1);
        /* The one before first: a restated previous period is judged before the running one. */
        for (int k = 0; k < 2; k++) {
            int n = eval_bucket(g, st, (enum rs_guardrail_id)i, k == 0 ? previous : current,
                                watermark_ms, read, read_opaque, err);

            if (n < 0) {
                return n;
            }
            total += n;
        }
    }
    return total;
}
