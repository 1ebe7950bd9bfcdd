#include "slarule.h"

#include "mem.h"
#include "record.h"
#include "timer.h"

#include <stdlib.h>
#include <string.h>

#define KIND_BASE      0x10 /* entities kind of an instance: KIND_BASE + rule id (sla.c's leads: 1) */
#define KIND_OPP       0x1f /* this module's opportunity facts; 0x10-0x1f are slarule.c's kinds */
#define RECORD_VERSION 1
#define STR_MAX        RS_EVENT_ID_MAX /* ids and stage names are at most this long */
#define HEADER_LEN     72
#define LAG_RING       64 /* SLA-07: ingest lags kept per source for the P95 */
#define LAG_MIN        20 /* SLA-07: fewer samples give no P95 worth alerting on */
#define ANCHOR_LEN     8  /* SLA-06: the renewal date, after the strings */
#define RECORD_MAX     (HEADER_LEN + 4 * (2 + STR_MAX) + 4 * LAG_RING + ANCHOR_LEN)
#define OPP_MAX        (2 + 3 * (2 + STR_MAX))
#define PAYLOAD_LEN    5 /* level(u8) attempt(u32) */
#define NO_TIME        INT64_MIN
#define DEAL_UNKNOWN   0xff
#define HOUR_MS        (3600 * INT64_C(1000))
#define DAY_MS         (24 * HOUR_MS)

enum status {
    ST_PENDING, /* SLA-04: completed before the close that starts it */
    ST_RUNNING,
    ST_PAUSED,
    ST_BREACHED, /* open, the breach level fired */
    ST_MET,
    ST_BREACHED_THEN_MET,
    ST_CANCELLED,
};

enum {
    F_STOP_SEEN = 1, /* pending: stop_ms holds a stop that came before the start */
    F_REARM = 2,     /* settled: the next start opens attempt + 1 */
    F_REPORTED = 4,  /* "breached" went to the outcome callback and still stands */
    F_LAGGING = 8,   /* SLA-07: the ingest-lag alert stands */
};

/* What each rule is, beyond its configuration. Keep in sync with enum rs_rule_id. */
struct rule_def {
    uint8_t id;
    const char *sla_type;
    const char *entity_type;
    const char *clock;   /* the clock's name without a business calendar */
    bool pending_stop;   /* a stop before the start is kept and applied at the start */
    bool cancel_settled; /* a cancel also withdraws an outcome already reported */
    bool anchored;       /* levels are due before the instance's anchor (SLA-06), not after start */
};

static const struct rule_def rule_defs[] = {
    { RS_RULE_MQL_ACCEPTANCE, "SLA-02_mql_acceptance", "lead", "24x7", false, false, false },
    { RS_RULE_STALLED_OPP, "SLA-03_stalled_opportunity", "opportunity", "calendar", false, false,
      false },
    /* M14: a reversed win removes the deal from the handoff denominator. */
    { RS_RULE_HANDOFF, "SLA-04_handoff", "opportunity", "24x7", true, true, false },
    { RS_RULE_ONBOARDING, "SLA-05_onboarding", "account", "calendar", false, false, false },
    /* A renewal opportunity created before the first subscription event still covers it. */
    { RS_RULE_RENEWAL_COVERAGE, "SLA-06_renewal_coverage", "account", "calendar", true, false,
      true },
    { RS_RULE_DATA_FRESHNESS, "SLA-07_data_freshness", "source", "24x7", false, false, false },
};

static const struct rule_def *rule_def(uint8_t rule)
{
    for (size_t i = 0; i < sizeof(rule_defs) / sizeof(rule_defs[0]); i++) {
        if (rule_defs[i].id == rule) {
            return &rule_defs[i];
        }
    }
    return NULL;
}

const char *rs_rule_sla_type(uint8_t rule)
{
    const struct rule_def *d = rule_def(rule);

    return d != NULL ? d->sla_type : NULL;
}

/* An instance record, decoded. Its strings point into raw[] or into the event being applied. */
struct inst {
    uint8_t rule;
    uint8_t status;
    uint8_t fired; /* bit per level */
    uint8_t flags;
    uint8_t start_type; /* enum rs_event_type of the start event */
    uint8_t lag_n, lag_pos;
    uint32_t attempt_n;
    uint32_t lag_attempt; /* SLA-07: ingest-lag episodes, for their alert ids */
    int64_t start_ms;
    int64_t stop_ms; /* settled: the stop (or cancel) time; pending: the early stop */
    int64_t threshold_ms;
    int64_t paused_since_ms;
    int64_t paused_ms;          /* closed pauses, wall time */
    int64_t paused_business_ms; /* closed pauses, open time of the rule's calendar */
    int64_t target_ms;          /* start + threshold on the rule's clock, as of the last save */
    int64_t anchor_ms;          /* SLA-06: the renewal date the levels count back from */
    struct rs_str owner, dim, account, tenant;
    uint32_t lag_ms[LAG_RING];
    uint8_t raw[RECORD_MAX];
};

/* Opportunity facts the rules need later: the deal type for SLA-04, the stage for SLA-03. */
struct opp {
    bool found;
    uint8_t deal_type;
    struct rs_str owner, account, stage;
    uint8_t raw[OPP_MAX];
};

/* One event (or one fired timer) being applied. */
struct ctx {
    struct rs_rules *r;
    struct rs_store *st;
    uint32_t partition;
    const struct rs_event *ev; /* NULL while firing */
    int64_t *next_deadline_ms;
    struct rs_err *err;
};

static const struct rs_rule_config *rule_cfg(const struct rs_rules *r, uint8_t rule)
{
    switch (rule) {
    case RS_RULE_MQL_ACCEPTANCE:
        return &r->cfg.mql_acceptance;
    case RS_RULE_STALLED_OPP:
        return &r->cfg.stalled_opp;
    case RS_RULE_HANDOFF:
        return &r->cfg.handoff;
    case RS_RULE_ONBOARDING:
        return &r->cfg.onboarding;
    case RS_RULE_RENEWAL_COVERAGE:
        return &r->cfg.renewal;
    case RS_RULE_DATA_FRESHNESS:
        return &r->cfg.freshness;
    default:
        return NULL;
    }
}

/* The default ladder of §5.2; SLA-05 adds a warning at 50%. */
static void set_ladder(struct rs_rule_config *c, bool early_warning, bool warning)
{
    size_t n = 0;

    if (early_warning) {
        c->levels[n++] = (struct rs_rule_level){ 50, 0, RS_ALERT_WARNING, "L0_warning_50", 0 };
    }
    if (warning) {
        c->levels[n++] = (struct rs_rule_level){ 80, 0, RS_ALERT_WARNING, "L0_warning", 0 };
    }
    c->levels[n++] = (struct rs_rule_level){ 100, 0, RS_ALERT_BREACHED, "L1_breach", 0 };
    c->levels[n++] = (struct rs_rule_level){ 200, 0, RS_ALERT_ESCALATED, "L2_escalate", 0 };
    c->levels[n++] =
        (struct rs_rule_level){ 1000, 24 * HOUR_MS, RS_ALERT_CRITICAL, "L3_critical", 0 };
    c->n_levels = n;
}

void rs_rules_set_renewal_lead(struct rs_rule_config *c, int64_t lead_ms)
{
    c->threshold_ms = lead_ms;
    c->n_levels = 4;
    c->levels[0] =
        (struct rs_rule_level){ 100, 0, RS_ALERT_WARNING, "L0_warning", lead_ms + 14 * DAY_MS };
    c->levels[1] = (struct rs_rule_level){ 100, 0, RS_ALERT_BREACHED, "L1_breach", lead_ms };
    c->levels[2] = (struct rs_rule_level){ 100, 0, RS_ALERT_ESCALATED, "L2_escalate",
                                           lead_ms / 3 * 2 + lead_ms % 3 * 2 / 3 };
    c->levels[3] = (struct rs_rule_level){ 100, 0, RS_ALERT_CRITICAL, "L3_critical", lead_ms / 3 };
}

void rs_rules_config_defaults(struct rs_rules_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    /* "1 business day" is the 9-hour working day of the default calendar (mon-fri
     * 09:00-18:00), as config.c's defaults say; set the threshold for other hours. */
    cfg->mql_acceptance.enabled = true;
    cfg->mql_acceptance.threshold_ms = 9 * HOUR_MS;
    set_ladder(&cfg->mql_acceptance, false, true);

    cfg->stalled_opp.enabled = true;
    cfg->stalled_opp.threshold_ms = 30 * DAY_MS;
    set_ladder(&cfg->stalled_opp, false, true);

    cfg->handoff.enabled = true;
    cfg->handoff.threshold_ms = 18 * HOUR_MS;
    set_ladder(&cfg->handoff, false, true);

    cfg->onboarding.enabled = true;
    cfg->onboarding.threshold_ms = 60 * DAY_MS; /* unknown or absent segment */
    cfg->onboarding.n_dims = 3;
    cfg->onboarding.dim_value[0] = "smb";
    cfg->onboarding.dim_threshold_ms[0] = 30 * DAY_MS;
    cfg->onboarding.dim_value[1] = "mid_market";
    cfg->onboarding.dim_threshold_ms[1] = 60 * DAY_MS;
    cfg->onboarding.dim_value[2] = "enterprise";
    cfg->onboarding.dim_threshold_ms[2] = 90 * DAY_MS;
    set_ladder(&cfg->onboarding, true, true);

    cfg->renewal.enabled = true;
    rs_rules_set_renewal_lead(&cfg->renewal, 90 * DAY_MS);

    /* A warning after 48 silent minutes is noise: a source is either silent or not. */
    cfg->freshness.enabled = true;
    cfg->freshness.threshold_ms = 60 * 60 * INT64_C(1000);
    set_ladder(&cfg->freshness, false, false);
    cfg->freshness_lag_p95_ms = 15 * 60 * INT64_C(1000);
}

void rs_rules_init(struct rs_rules *r, const struct rs_rules_config *cfg, rs_sla_emit_cb *emit,
                   rs_sla_outcome_cb *outcome, void *opaque)
{
    memset(r, 0, sizeof(*r));
    r->cfg = *cfg;
    r->emit = emit;
    r->outcome = outcome;
    r->opaque = opaque;
}

/* ---- records ---------------------------------------------------------------------------- */

static void put_i64(uint8_t *p, int64_t v)
{
    rs_store_put_u64(p, (uint64_t)v);
}

static int64_t get_i64(const uint8_t *p)
{
    return (int64_t)rs_store_get_u64(p);
}

/* Layout: version rule status fired flags start_type lag_n lag_pos attempt(4) lag_attempt(4)
 * start stop threshold paused_since paused paused_business target (8 each), four length-prefixed
 * strings (owner dim account tenant), then for SLA-07 the lag ring (64 x u32), for SLA-06 the
 * anchor (8). Keep in sync with inst_decode(). */
static size_t inst_encode(const struct inst *in, uint8_t *out)
{
    uint8_t *p = out;

    p[0] = RECORD_VERSION;
    p[1] = in->rule;
    p[2] = in->status;
    p[3] = in->fired;
    p[4] = in->flags;
    p[5] = in->start_type;
    p[6] = in->lag_n;
    p[7] = in->lag_pos;
    rs_store_put_u32(p + 8, in->attempt_n);
    rs_store_put_u32(p + 12, in->lag_attempt);
    put_i64(p + 16, in->start_ms);
    put_i64(p + 24, in->stop_ms);
    put_i64(p + 32, in->threshold_ms);
    put_i64(p + 40, in->paused_since_ms);
    put_i64(p + 48, in->paused_ms);
    put_i64(p + 56, in->paused_business_ms);
    put_i64(p + 64, in->target_ms);
    p += HEADER_LEN;
    p = rs_rec_put_str(p, in->owner, STR_MAX);
    p = rs_rec_put_str(p, in->dim, STR_MAX);
    p = rs_rec_put_str(p, in->account, STR_MAX);
    p = rs_rec_put_str(p, in->tenant, STR_MAX);
    if (in->rule == RS_RULE_DATA_FRESHNESS) {
        for (size_t i = 0; i < LAG_RING; i++, p += 4) {
            rs_store_put_u32(p, in->lag_ms[i]);
        }
    } else if (in->rule == RS_RULE_RENEWAL_COVERAGE) {
        put_i64(p, in->anchor_ms);
        p += ANCHOR_LEN;
    }
    return (size_t)(p - out);
}

static int inst_decode(struct inst *in, struct rs_bytes val, struct rs_err *err)
{
    const uint8_t *p = in->raw;
    const uint8_t *end;

    if (val.len < HEADER_LEN || val.len > sizeof(in->raw) ||
        ((const uint8_t *)val.ptr)[0] != RECORD_VERSION) {
        return rs_err_set(err, RS_ESTORE,
                          "sla instance record of %zu bytes is corrupt or of another version",
                          val.len);
    }
    memcpy(in->raw, val.ptr, val.len);
    end = in->raw + val.len;
    in->rule = p[1];
    in->status = p[2];
    in->fired = p[3];
    in->flags = p[4];
    in->start_type = p[5];
    in->lag_n = p[6];
    in->lag_pos = p[7];
    in->attempt_n = rs_store_get_u32(p + 8);
    in->lag_attempt = rs_store_get_u32(p + 12);
    in->start_ms = get_i64(p + 16);
    in->stop_ms = get_i64(p + 24);
    in->threshold_ms = get_i64(p + 32);
    in->paused_since_ms = get_i64(p + 40);
    in->paused_ms = get_i64(p + 48);
    in->paused_business_ms = get_i64(p + 56);
    in->target_ms = get_i64(p + 64);
    p += HEADER_LEN;
    p = rs_rec_get_str(p, end, &in->owner);
    p = rs_rec_get_str(p, end, &in->dim);
    p = rs_rec_get_str(p, end, &in->account);
    p = rs_rec_get_str(p, end, &in->tenant);
    memset(in->lag_ms, 0, sizeof(in->lag_ms));
    in->anchor_ms = NO_TIME;
    if (p != NULL && in->rule == RS_RULE_RENEWAL_COVERAGE) {
        if (end - p != ANCHOR_LEN) {
            p = NULL;
        } else {
            in->anchor_ms = get_i64(p);
        }
    }
    if (p != NULL && in->rule == RS_RULE_DATA_FRESHNESS) {
        if (end - p != 4 * LAG_RING) {
            p = NULL;
        } else {
            for (size_t i = 0; i < LAG_RING; i++, p += 4) {
                in->lag_ms[i] = rs_store_get_u32(p);
            }
        }
    }
    if (p == NULL || in->status > ST_CANCELLED || in->lag_n > LAG_RING || in->lag_pos >= LAG_RING) {
        return rs_err_set(err, RS_ESTORE, "sla instance record is corrupt");
    }
    return 0;
}

static void inst_new(struct inst *in, uint8_t rule)
{
    memset(in, 0, offsetof(struct inst, raw));
    in->rule = rule;
    in->status = ST_PENDING;
    in->attempt_n = 1;
    in->start_ms = NO_TIME;
    in->stop_ms = NO_TIME;
    in->paused_since_ms = NO_TIME;
    in->anchor_ms = NO_TIME;
}

/* Returns 0 with *in filled, RS_ENOTFOUND, or an error. */
static int inst_load(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_str id,
                     struct inst *in, struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    struct rs_bytes val;
    int rc =
        rs_store_get(st, RS_DB_ENTITIES,
                     rs_entity_key(kbuf, partition, (uint8_t)(KIND_BASE + rule), id), &val, err);

    if (rc != 0) {
        return rc;
    }
    rc = inst_decode(in, val, err);
    if (rc == 0 && in->rule != rule) {
        rc = rs_err_set(err, RS_ESTORE, "sla instance record of kind %u holds rule %u",
                        KIND_BASE + rule, in->rule);
    }
    return rc;
}

static int64_t breach_deadline(const struct rs_rule_config *cfg, const struct inst *in);

static int inst_save(const struct ctx *c, struct rs_str id, struct inst *in)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    uint8_t vbuf[RECORD_MAX];
    size_t len;

    /* Kept for readers without the configuration (rs_rules_scan_open). */
    in->target_ms =
        in->start_ms == NO_TIME ? NO_TIME : breach_deadline(rule_cfg(c->r, in->rule), in) - 1;
    len = inst_encode(in, vbuf);

    return rs_store_put(c->st, RS_DB_ENTITIES,
                        rs_entity_key(kbuf, c->partition, (uint8_t)(KIND_BASE + in->rule), id),
                        (struct rs_bytes){ vbuf, len }, c->err);
}

static int opp_load(const struct ctx *c, struct rs_str id, struct opp *o)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    struct rs_bytes val;
    const uint8_t *p, *end;
    int rc;

    memset(o, 0, offsetof(struct opp, raw));
    o->deal_type = DEAL_UNKNOWN;
    rc = rs_store_get(c->st, RS_DB_ENTITIES, rs_entity_key(kbuf, c->partition, KIND_OPP, id), &val,
                      c->err);
    if (rc == RS_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (val.len < 2 || val.len > sizeof(o->raw) ||
        ((const uint8_t *)val.ptr)[0] != RECORD_VERSION) {
        return rs_err_set(c->err, RS_ESTORE, "opportunity record of %zu bytes is corrupt", val.len);
    }
    memcpy(o->raw, val.ptr, val.len);
    end = o->raw + val.len;
    o->deal_type = o->raw[1];
    p = rs_rec_get_str(o->raw + 2, end, &o->owner);
    p = rs_rec_get_str(p, end, &o->account);
    p = rs_rec_get_str(p, end, &o->stage);
    if (p == NULL) {
        return rs_err_set(c->err, RS_ESTORE, "opportunity record is corrupt");
    }
    o->found = true;
    return 0;
}

static int opp_save(const struct ctx *c, struct rs_str id, const struct opp *o)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    uint8_t vbuf[OPP_MAX];
    uint8_t *p = vbuf;

    p[0] = RECORD_VERSION;
    p[1] = o->deal_type;
    p = rs_rec_put_str(p + 2, o->owner, STR_MAX);
    p = rs_rec_put_str(p, o->account, STR_MAX);
    p = rs_rec_put_str(p, o->stage, STR_MAX);
    return rs_store_put(c->st, RS_DB_ENTITIES, rs_entity_key(kbuf, c->partition, KIND_OPP, id),
                        (struct rs_bytes){ vbuf, (size_t)(p - vbuf) }, c->err);
}

/* ---- clocks and levels ------------------------------------------------------------------ */

static bool is_business(const struct rs_rule_config *cfg)
{
    return cfg->calendar != NULL && !rs_calendar_is_24x7(cfg->calendar);
}

static bool is_open(const struct inst *in)
{
    return in->status == ST_RUNNING || in->status == ST_PAUSED || in->status == ST_BREACHED;
}

static bool is_settled(const struct inst *in)
{
    return in->status == ST_MET || in->status == ST_BREACHED_THEN_MET || in->status == ST_CANCELLED;
}

static int64_t pct_of(int64_t t, uint32_t pct)
{
    return t / 100 * pct + (t % 100) * pct / 100;
}

/*
 * The first instant at which `level` is late, on the rule's clock: the start plus pct% of the
 * threshold (or the level's floor in business time, L3) plus the time spent paused, plus 1 ms,
 * the SLA-01 convention (a stop exactly at the threshold meets it). INT64_MAX if the calendar
 * never opens. An anchored rule's level is due before_anchor_ms before the anchor (+ 1 ms).
 */
static int64_t level_deadline(const struct rs_rule_config *cfg, const struct inst *in, size_t level)
{
    const struct rs_rule_level *lv = &cfg->levels[level];
    int64_t amount = pct_of(in->threshold_ms, lv->pct);
    int64_t at;

    if (rule_def(in->rule)->anchored) {
        return in->anchor_ms == NO_TIME ? INT64_MAX : in->anchor_ms - lv->before_anchor_ms + 1;
    }
    if (lv->min_business_ms > amount) {
        amount = lv->min_business_ms;
    }
    if (is_business(cfg)) {
        at = rs_calendar_add(cfg->calendar, in->start_ms, amount + in->paused_business_ms);
        return at == INT64_MAX ? INT64_MAX : at + 1;
    }
    return in->start_ms + amount + in->paused_ms + 1;
}

/* The breach level's deadline; a ladder without one breaches at 100%. */
static int64_t breach_deadline(const struct rs_rule_config *cfg, const struct inst *in)
{
    for (size_t i = 0; i < cfg->n_levels; i++) {
        if (cfg->levels[i].kind == RS_ALERT_BREACHED) {
            return level_deadline(cfg, in, i);
        }
    }
    if (is_business(cfg)) {
        int64_t at =
            rs_calendar_add(cfg->calendar, in->start_ms, in->threshold_ms + in->paused_business_ms);

        return at == INT64_MAX ? INT64_MAX : at + 1;
    }
    return in->start_ms + in->threshold_ms + in->paused_ms + 1;
}

/* Elapsed time at t: wall net of pauses, and on the rule's clock net of paused open time. */
static void elapsed_at(const struct rs_rule_config *cfg, const struct inst *in, int64_t t,
                       int64_t *wall, int64_t *business)
{
    int64_t paused = in->paused_ms;
    int64_t paused_business = in->paused_business_ms;

    if (in->status == ST_PAUSED && in->paused_since_ms != NO_TIME && t > in->paused_since_ms) {
        paused += t - in->paused_since_ms;
        if (is_business(cfg)) {
            paused_business += rs_calendar_elapsed(cfg->calendar, in->paused_since_ms, t);
        }
    }
    *wall = t - in->start_ms - paused;
    if (*wall < 0) {
        *wall = 0;
    }
    if (is_business(cfg)) {
        *business = rs_calendar_elapsed(cfg->calendar, in->start_ms, t) - paused_business;
        if (*business < 0) {
            *business = 0;
        }
    } else {
        *business = *wall;
    }
}

static const char *status_name(uint8_t status)
{
    static const char *const names[] = { "pending", "running",           "paused",   "breached",
                                         "met",     "breached_then_met", "cancelled" };

    return status <= ST_CANCELLED ? names[status] : "unknown";
}

/* ---- alerts and outcomes ---------------------------------------------------------------- */

struct alert_args {
    enum rs_alert_kind kind;
    const char *level;  /* its name, "resolved", ... */
    uint32_t attempt_n; /* the id's attempt */
    int64_t level_at_ms;
    int64_t evaluated_at_ms;
    int64_t elapsed_ms, elapsed_business_ms;
};

static int emit(const struct ctx *c, const struct inst *in, struct rs_str entity,
                const struct alert_args *x)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    const struct rule_def *def = rule_def(in->rule);
    const char *start_type = rs_event_type_name((enum rs_event_type)in->start_type);
    struct rs_alert a;

    memset(&a, 0, sizeof(a));
    a.kind = x->kind;
    if (x->kind == RS_ALERT_RETRACTED) {
        rs_sla_alert_id(a.alert_id, in->tenant, def->sla_type, entity, x->attempt_n, x->level,
                        "|retracted");
        rs_sla_alert_id(a.retracts_id, in->tenant, def->sla_type, entity, x->attempt_n, x->level,
                        "");
    } else {
        rs_sla_alert_id(a.alert_id, in->tenant, def->sla_type, entity, x->attempt_n, x->level, "");
    }
    a.sla_type = def->sla_type;
    a.level = x->level;
    a.status = status_name(in->status);
    a.entity_type = def->entity_type;
    a.entity_id = entity;
    a.attempt_n = x->attempt_n;
    a.owner_id = in->owner;
    a.account = in->account;
    a.start_event_type = start_type != NULL ? start_type : "unknown";
    a.start_at_ms = in->start_ms;
    a.target_at_ms = breach_deadline(cfg, in) - 1;
    a.level_at_ms = x->level_at_ms;
    a.evaluated_at_ms = x->evaluated_at_ms;
    a.threshold_ms = in->threshold_ms;
    a.elapsed_ms = x->elapsed_ms;
    a.elapsed_business_ms = x->elapsed_business_ms;
    a.paused_ms = in->paused_ms;
    a.clock = is_business(cfg) ? "business" : def->clock;
    a.calendar_id = is_business(cfg) ? rs_calendar_id(cfg->calendar) : NULL;
    if (in->rule == RS_RULE_STALLED_OPP) {
        a.stage = in->dim;
    } else if (in->rule == RS_RULE_ONBOARDING) {
        a.segment = in->dim;
    }
    c->r->counters.alerts[x->kind]++;
    return c->r->emit(c->r->opaque, &a, c->err);
}

/* A level of the ladder, as it became due; evaluated at `evaluated_at_ms`. */
static int emit_level(const struct ctx *c, const struct inst *in, struct rs_str entity,
                      enum rs_alert_kind kind, size_t level, int64_t evaluated_at_ms,
                      int64_t elapsed_t)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    struct alert_args x = {
        kind, cfg->levels[level].name, in->attempt_n, 0, evaluated_at_ms, 0, 0
    };

    x.level_at_ms = level_deadline(cfg, in, level) - 1;
    elapsed_at(cfg, in, elapsed_t, &x.elapsed_ms, &x.elapsed_business_ms);
    return emit(c, in, entity, &x);
}

/*
 * Report an outcome to the metrics. "breached" is reported at the breach instant, cancelled
 * at the cancel time, met and breached_then_met at the stop.
 */
static int report(const struct ctx *c, const struct inst *in, struct rs_str entity, uint8_t status,
                  int sign)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    struct rs_sla_outcome o;
    int64_t at;

    if (c->r->outcome == NULL) {
        return 0;
    }
    memset(&o, 0, sizeof(o));
    o.rule = in->rule;
    o.sla_type = rule_def(in->rule)->sla_type;
    o.entity_id = entity;
    o.owner_id = in->owner;
    o.dim = in->dim.ptr != NULL ? in->dim : (struct rs_str){ "", 0 };
    o.attempt_n = in->attempt_n;
    o.status = status_name(status);
    o.start_ms = in->start_ms;
    if (status == ST_BREACHED) {
        o.stop_ms = INT64_MIN;
        at = breach_deadline(cfg, in) - 1;
    } else if (status == ST_CANCELLED) {
        o.stop_ms = INT64_MIN;
        at = in->stop_ms;
    } else {
        o.stop_ms = in->stop_ms;
        at = in->stop_ms;
    }
    elapsed_at(cfg, in, at, &o.elapsed_ms, &o.elapsed_business_ms);
    o.threshold_ms = in->threshold_ms;
    return c->r->outcome(c->r->opaque, c->partition, &o, sign, c->err);
}

/* ---- timers ----------------------------------------------------------------------------- */

static int cancel_timer(const struct ctx *c, const struct inst *in, struct rs_str entity)
{
    int rc = rs_timer_cancel(c->st, c->partition, in->rule,
                             (struct rs_bytes){ entity.ptr, entity.len }, c->err);

    return rc == RS_ENOTFOUND ? 0 : rc;
}

/* Arm the first level not yet fired (none left: no timer). */
static int arm_next(const struct ctx *c, const struct inst *in, struct rs_str entity)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    uint8_t payload[PAYLOAD_LEN];
    int64_t deadline;
    size_t level;

    for (level = 0; level < cfg->n_levels && (in->fired & (1u << level)); level++) {
    }
    if (level == cfg->n_levels) {
        return cancel_timer(c, in, entity);
    }
    deadline = level_deadline(cfg, in, level);
    if (deadline == INT64_MAX) {
        return cancel_timer(c, in, entity); /* a calendar that never opens: never late */
    }
    payload[0] = (uint8_t)level;
    rs_store_put_u32(payload + 1, in->attempt_n);
    if (deadline < *c->next_deadline_ms) {
        *c->next_deadline_ms = deadline;
    }
    return rs_timer_arm(c->st, c->partition, in->rule, (struct rs_bytes){ entity.ptr, entity.len },
                        deadline, (struct rs_bytes){ payload, sizeof(payload) }, c->err);
}

/* ---- the instance machine --------------------------------------------------------------- */

/* What a trigger takes from its event. Unset strings keep the instance's values. */
struct facts {
    struct rs_str entity, owner, dim, account;
    int64_t anchor_ms; /* SLA-06: the subscription's renewal date */
};

static int64_t threshold_for(const struct rs_rule_config *cfg, struct rs_str dim)
{
    for (size_t i = 0; i < cfg->n_dims && i < RS_RULE_DIMS_MAX; i++) {
        const char *v = cfg->dim_value[i];

        if (v != NULL && dim.ptr != NULL && strlen(v) == dim.len &&
            memcmp(v, dim.ptr, dim.len) == 0) {
            return cfg->dim_threshold_ms[i];
        }
    }
    return cfg->threshold_ms;
}

/* Open attempt `attempt_n` at t and arm its first level. */
static int start(const struct ctx *c, struct inst *in, const struct facts *f, int64_t t,
                 uint32_t attempt_n)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);

    in->status = ST_RUNNING;
    in->fired = 0;
    in->flags &= (uint8_t) ~(F_REARM | F_REPORTED);
    in->attempt_n = attempt_n;
    in->start_ms = t;
    in->paused_since_ms = NO_TIME;
    in->paused_ms = 0;
    in->paused_business_ms = 0;
    if (!(in->flags & F_STOP_SEEN)) {
        in->stop_ms = NO_TIME;
    }
    if (rs_str_is_set(f->owner)) {
        in->owner = f->owner;
    }
    if (rs_str_is_set(f->dim)) {
        in->dim = f->dim;
    }
    if (rs_str_is_set(f->account)) {
        in->account = f->account;
    }
    if (c->ev != NULL) {
        in->start_type = (uint8_t)c->ev->type;
        if (rs_str_is_set(c->ev->tenant)) {
            in->tenant = c->ev->tenant;
        }
    }
    in->threshold_ms = threshold_for(cfg, in->dim);
    c->r->counters.started++;
    c->r->counters.open[in->rule]++;
    return arm_next(c, in, f->entity);
}

static void close_pause(const struct rs_rule_config *cfg, struct inst *in, int64_t t)
{
    if (in->paused_since_ms == NO_TIME) {
        return;
    }
    if (t > in->paused_since_ms) {
        in->paused_ms += t - in->paused_since_ms;
        if (is_business(cfg)) {
            in->paused_business_ms += rs_calendar_elapsed(cfg->calendar, in->paused_since_ms, t);
        }
    }
    in->paused_since_ms = NO_TIME;
}

static void open_gone(struct rs_rules *r, uint8_t rule)
{
    if (r->counters.open[rule] > 0) {
        r->counters.open[rule]--;
    }
}

/*
 * The clock stops at t: every level is settled against its own deadline, as SLA-01 does.
 * Levels that happened but had not fired are published, levels that fired but did not
 * happen are retracted, and a notified level gets its resolution.
 */
static int stop_clock(const struct ctx *c, struct inst *in, struct rs_str entity, int64_t t)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    struct alert_args x;
    bool notified = false;
    int rc;

    if (in->status == ST_PAUSED) {
        close_pause(cfg, in, t);
    }
    in->status = t >= breach_deadline(cfg, in) ? ST_BREACHED_THEN_MET : ST_MET;
    in->stop_ms = t;
    for (size_t level = 0; level < cfg->n_levels; level++) {
        int64_t deadline = level_deadline(cfg, in, level);
        bool happened = t >= deadline;
        bool fired = (in->fired & (1u << level)) != 0;

        rc = 0;
        if (happened && !fired) {
            /* The watermark had not reached it; in event time it did happen. */
            rc = emit_level(c, in, entity, cfg->levels[level].kind, level, t, deadline - 1);
            in->fired |= (uint8_t)(1u << level);
        } else if (!happened && fired) {
            rc = emit_level(c, in, entity, RS_ALERT_RETRACTED, level, t, t);
        }
        if (rc != 0) {
            return rc;
        }
        notified = notified || happened;
    }
    if (notified) {
        x = (struct alert_args){ RS_ALERT_RECOVERED, "resolved", in->attempt_n, t, t, 0, 0 };
        elapsed_at(cfg, in, t, &x.elapsed_ms, &x.elapsed_business_ms);
        rc = emit(c, in, entity, &x);
        if (rc != 0) {
            return rc;
        }
    }
    rc = cancel_timer(c, in, entity);
    if (rc == 0 && (in->flags & F_REPORTED)) {
        in->flags &= (uint8_t)~F_REPORTED;
        rc = report(c, in, entity, ST_BREACHED, -1);
    }
    if (rc == 0) {
        rc = report(c, in, entity, in->status, +1);
    }
    c->r->counters.stopped++;
    open_gone(c->r, in->rule);
    return rc;
}

/*
 * A stop earlier than the one that settled the instance arrived late: the outcome is
 * restated, and levels that stood only because of the later stop are retracted.
 */
static int restate_stop(const struct ctx *c, struct inst *in, struct rs_str entity, int64_t t)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    int64_t old_stop = in->stop_ms;
    int rc = report(c, in, entity, in->status, -1);

    if (rc != 0) {
        return rc;
    }
    in->stop_ms = t;
    in->status = t >= breach_deadline(cfg, in) ? ST_BREACHED_THEN_MET : ST_MET;
    for (size_t level = 0; level < cfg->n_levels; level++) {
        int64_t deadline = level_deadline(cfg, in, level);

        if ((in->fired & (1u << level)) && old_stop >= deadline && t < deadline) {
            rc = emit_level(c, in, entity, RS_ALERT_RETRACTED, level, t, t);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return report(c, in, entity, in->status, +1);
}

/* Cancel an open instance, or withdraw a settled one's outcome where the rule says so. */
static int cancel(const struct ctx *c, struct inst *in, struct rs_str entity, int64_t t)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    int rc = 0;

    if (is_open(in)) {
        rc = cancel_timer(c, in, entity);
        if (rc == 0 && (in->flags & F_REPORTED)) {
            rc = report(c, in, entity, ST_BREACHED, -1);
        }
        if (in->status == ST_PAUSED) {
            close_pause(cfg, in, t);
        }
        open_gone(c->r, in->rule);
    } else if (in->status == ST_MET || in->status == ST_BREACHED_THEN_MET) {
        rc = report(c, in, entity, in->status, -1);
    } else {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    in->flags &= (uint8_t)~F_REPORTED;
    in->flags |= F_REARM;
    in->status = ST_CANCELLED;
    in->stop_ms = t > in->start_ms ? t : in->start_ms;
    c->r->counters.cancelled++;
    return report(c, in, entity, ST_CANCELLED, +1);
}

static int pause(const struct ctx *c, struct inst *in, struct rs_str entity, int64_t t)
{
    in->paused_since_ms = t > in->start_ms ? t : in->start_ms;
    in->status = ST_PAUSED;
    c->r->counters.paused++;
    return cancel_timer(c, in, entity);
}

static int resume(const struct ctx *c, struct inst *in, struct rs_str entity, int64_t t)
{
    close_pause(rule_cfg(c->r, in->rule), in, t);
    in->status = (in->flags & F_REPORTED) ? ST_BREACHED : ST_RUNNING;
    c->r->counters.resumed++;
    return arm_next(c, in, entity);
}

/* ---- SLA-07 ------------------------------------------------------------------------------ */

/* A source's event (or its latest event seen in another partition) received at t. */
static int freshness_seen(const struct ctx *c, struct inst *in, const struct facts *f, int64_t t)
{
    int rc;

    if (t <= in->start_ms) {
        return 0; /* not newer than what the instance knows */
    }
    if (in->fired == 0) {
        /* Nothing notified: the silence window just moves. The armed timer stays where it is
         * (one write per event instead of three); when it fires early it is moved. */
        in->start_ms = t;
        return 0;
    }
    rc = stop_clock(c, in, f->entity, t);
    return rc != 0 ? rc : start(c, in, f, t, in->attempt_n + 1);
}

static int lag_sample(const struct ctx *c, struct inst *in, struct rs_str entity, int64_t lag_ms)
{
    int64_t sorted[LAG_RING];
    int64_t limit = c->r->cfg.freshness_lag_p95_ms;
    struct alert_args x;
    double p95;
    bool lagging;

    in->lag_ms[in->lag_pos] =
        lag_ms < 0 ? 0 : (lag_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)lag_ms);
    in->lag_pos = (uint8_t)((in->lag_pos + 1) % LAG_RING);
    if (in->lag_n < LAG_RING) {
        in->lag_n++;
    }
    if (limit <= 0 || in->lag_n < LAG_MIN) {
        return 0;
    }
    for (size_t i = 0; i < in->lag_n; i++) {
        size_t j = i;

        /* Insertion sort: 64 values at most. */
        for (; j > 0 && sorted[j - 1] > (int64_t)in->lag_ms[i]; j--) {
            sorted[j] = sorted[j - 1];
        }
        sorted[j] = in->lag_ms[i];
    }
    p95 = rs_sla_percentile(sorted, in->lag_n, 0.95);
    lagging = p95 > (double)limit;
    if (lagging == ((in->flags & F_LAGGING) != 0)) {
        return 0;
    }
    if (lagging) {
        in->flags |= F_LAGGING;
        in->lag_attempt++;
        x = (struct alert_args){ RS_ALERT_BREACHED, "L1_ingest_lag", in->lag_attempt, 0, 0, 0, 0 };
    } else {
        in->flags &= (uint8_t)~F_LAGGING;
        x = (struct alert_args){
            RS_ALERT_RECOVERED, "resolved_ingest_lag", in->lag_attempt, 0, 0, 0, 0
        };
    }
    x.evaluated_at_ms = c->ev != NULL ? c->ev->ts_ms : 0;
    x.level_at_ms = x.evaluated_at_ms;
    x.elapsed_ms = x.elapsed_business_ms = (int64_t)p95;
    return emit(c, in, entity, &x);
}

/* ---- the declarations ------------------------------------------------------------------- */

enum action {
    ACT_START,   /* open attempt 1 (or attempt + 1 after a cancel or re-arm) */
    ACT_RESTART, /* settle the open instance at t (if its dim changed) and open the next */
    ACT_STOP,    /* settle (met / breached_then_met); pending if the rule keeps early stops */
    ACT_PAUSE,
    ACT_RESUME,
    ACT_CANCEL,
    ACT_REARM,     /* the next start opens a new attempt; an open instance is cancelled */
    ACT_OWNER,     /* a new owner for the open instance */
    ACT_HEARTBEAT, /* SLA-07: the source is alive */
    ACT_RENEW,     /* SLA-06: open the period's instance, or roll to the next period */
};

/* Does the trigger apply to ev? If so, fill *f. o: the opportunity's facts (opp events). */
typedef bool when_fn(const struct rs_event *ev, const struct opp *o, struct facts *f);

struct trigger {
    uint8_t rule;
    enum rs_event_type type; /* RS_EV__COUNT: every event */
    enum action action;
    when_fn *when;
};

static bool mql_entered(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.lead_qualified.lead_id;
    return ev->u.lead_qualified.stage == RS_QUAL_MQL;
}

static bool mql_accepted(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.lead_qualified.lead_id;
    return ev->u.lead_qualified.stage == RS_QUAL_SAL || ev->u.lead_qualified.stage == RS_QUAL_SQL;
}

static bool lead_disqualified(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.lead_disqualified.lead_id;
    return true;
}

static bool lead_merged(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.lead_merged.lead_id;
    return true;
}

static bool lead_lifecycle(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.lead_lifecycle.lead_id;
    return true;
}

static bool lead_assigned(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.lead_assigned.lead_id;
    f->owner = ev->u.lead_assigned.owner_id;
    return true;
}

static bool opp_created(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.opp_created.opportunity_id;
    f->owner = ev->u.opp_created.owner_id;
    f->dim = ev->u.opp_created.stage;
    f->account =
        rs_str_is_set(ev->u.opp_created.account_id) ? ev->u.opp_created.account_id : ev->account;
    return true;
}

static bool opp_stage_entered(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    f->entity = ev->u.opp_stage_changed.opportunity_id;
    f->dim = ev->u.opp_stage_changed.to_stage;
    f->owner = o->owner;
    f->account = o->found ? o->account : ev->account;
    return true;
}

static bool opp_closed(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.opp_closed.opportunity_id;
    return true;
}

/* The stage it had when it closed: our opportunity record's (unset: the instance's). */
static bool opp_reopened_in_stage(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    f->entity = ev->u.opp_reopened.opportunity_id;
    f->dim = o->stage;
    return true;
}

static bool opp_reopened(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.opp_reopened.opportunity_id;
    return true;
}

/* SLA-04 starts only for a won new-business deal; a deal of unknown type is not started. */
static bool opp_won_new(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    const struct rs_opp_closed *cl = &ev->u.opp_closed;
    unsigned deal_type = cl->has_deal_type ? (unsigned)cl->deal_type : o->deal_type;

    f->entity = cl->opportunity_id;
    f->owner = rs_str_is_set(cl->owner_id) ? cl->owner_id : o->owner;
    f->account = o->found && rs_str_is_set(o->account) ? o->account : ev->account;
    return cl->outcome == RS_OUTCOME_WON && deal_type == RS_DEAL_NEW;
}

/* M14: a handoff without a CSM, or with its checklist open, is not completed. */
static bool handoff_done(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = ev->u.handoff.opportunity_id;
    return ev->u.handoff.checklist_complete && rs_str_is_set(ev->u.handoff.csm_id) &&
           rs_str_is_set(ev->u.handoff.opportunity_id);
}

static bool onboarding_begins(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = rs_str_is_set(ev->u.handoff.account_id) ? ev->u.handoff.account_id : ev->account;
    f->account = f->entity;
    f->owner = ev->u.handoff.csm_id;
    f->dim = ev->u.handoff.segment;
    return rs_str_is_set(f->entity);
}

static bool first_value(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = rs_str_is_set(ev->u.onboarding_milestone.account_id)
                    ? ev->u.onboarding_milestone.account_id
                    : ev->account;
    return ev->u.onboarding_milestone.milestone == RS_MS_FIRST_VALUE && rs_str_is_set(f->entity);
}

static bool onboarding_account(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = rs_str_is_set(ev->u.onboarding_pause.account_id) ? ev->u.onboarding_pause.account_id
                                                                 : ev->account;
    return rs_str_is_set(f->entity);
}

static bool any_source(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity = rs_str_is_set(ev->source) ? ev->source : (struct rs_str){ "default", 7 };
    return true;
}

/* SLA-06: the account a subscription event is about. */
static struct rs_str sub_account(const struct rs_event *ev)
{
    return rs_str_is_set(ev->u.subscription.account_id) ? ev->u.subscription.account_id
                                                        : ev->account;
}

/* A live subscription with a known renewal date and no cancellation scheduled. */
static bool sub_renewable(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    const struct rs_subscription *sub = &ev->u.subscription;

    (void)o;
    f->entity = sub_account(ev);
    f->account = f->entity;
    f->dim = sub->subscription_id;
    f->anchor_ms = sub->service_period_end_ms;
    return ev->type != RS_EV_SUB_CHURNED &&
           (sub->status == RS_SUB_ACTIVE || sub->status == RS_SUB_PAST_DUE) &&
           sub->has_period_end && !sub->has_cancel_at && rs_str_is_set(sub->subscription_id);
}

/* Churned, canceled, or a cancellation scheduled (churn_scheduled: the churn-risk path). */
static bool sub_ending(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    const struct rs_subscription *sub = &ev->u.subscription;

    (void)o;
    f->entity = sub_account(ev);
    f->dim = sub->subscription_id;
    return ev->type == RS_EV_SUB_CHURNED || sub->status == RS_SUB_CANCELED || sub->has_cancel_at;
}

static bool renewal_opp_created(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    (void)o;
    f->entity =
        rs_str_is_set(ev->u.opp_created.account_id) ? ev->u.opp_created.account_id : ev->account;
    return ev->u.opp_created.deal_type == RS_DEAL_RENEWAL;
}

/* A won renewal was created before its close, even if its creation never reached us. */
static bool renewal_opp_won(const struct rs_event *ev, const struct opp *o, struct facts *f)
{
    const struct rs_opp_closed *cl = &ev->u.opp_closed;
    unsigned deal_type = cl->has_deal_type ? (unsigned)cl->deal_type : o->deal_type;

    f->entity = o->found && rs_str_is_set(o->account) ? o->account : ev->account;
    return cl->outcome == RS_OUTCOME_WON && deal_type == RS_DEAL_RENEWAL;
}

/* METRICS.md §5.5, one row per (rule, event, action). Rows of one event run in order. */
static const struct trigger triggers[] = {
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_QUALIFIED, ACT_START, mql_entered },
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_QUALIFIED, ACT_STOP, mql_accepted },
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_DISQUALIFIED, ACT_STOP, lead_disqualified },
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_MERGED, ACT_CANCEL, lead_merged },
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_RECYCLED, ACT_REARM, lead_lifecycle },
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_REOPENED, ACT_REARM, lead_lifecycle },
    { RS_RULE_MQL_ACCEPTANCE, RS_EV_LEAD_ASSIGNED, ACT_OWNER, lead_assigned },
    { RS_RULE_STALLED_OPP, RS_EV_OPP_CREATED, ACT_START, opp_created },
    { RS_RULE_STALLED_OPP, RS_EV_OPP_STAGE_CHANGED, ACT_RESTART, opp_stage_entered },
    { RS_RULE_STALLED_OPP, RS_EV_OPP_CLOSED, ACT_STOP, opp_closed },
    { RS_RULE_STALLED_OPP, RS_EV_OPP_REOPENED, ACT_RESTART, opp_reopened_in_stage },
    { RS_RULE_HANDOFF, RS_EV_OPP_CLOSED, ACT_START, opp_won_new },
    { RS_RULE_HANDOFF, RS_EV_HANDOFF_COMPLETED, ACT_STOP, handoff_done },
    { RS_RULE_HANDOFF, RS_EV_OPP_REOPENED, ACT_CANCEL, opp_reopened },
    { RS_RULE_ONBOARDING, RS_EV_HANDOFF_COMPLETED, ACT_START, onboarding_begins },
    { RS_RULE_ONBOARDING, RS_EV_ONBOARDING_MILESTONE, ACT_STOP, first_value },
    { RS_RULE_ONBOARDING, RS_EV_ONBOARDING_PAUSED, ACT_PAUSE, onboarding_account },
    { RS_RULE_ONBOARDING, RS_EV_ONBOARDING_RESUMED, ACT_RESUME, onboarding_account },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_STARTED, ACT_RENEW, sub_renewable },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_RENEWED, ACT_RENEW, sub_renewable },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_EXPANDED, ACT_RENEW, sub_renewable },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_CONTRACTED, ACT_RENEW, sub_renewable },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_REACTIVATED, ACT_RENEW, sub_renewable },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_STARTED, ACT_CANCEL, sub_ending },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_RENEWED, ACT_CANCEL, sub_ending },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_EXPANDED, ACT_CANCEL, sub_ending },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_CONTRACTED, ACT_CANCEL, sub_ending },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_CHURNED, ACT_CANCEL, sub_ending },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_SUB_REACTIVATED, ACT_CANCEL, sub_ending },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_OPP_CREATED, ACT_STOP, renewal_opp_created },
    { RS_RULE_RENEWAL_COVERAGE, RS_EV_OPP_CLOSED, ACT_STOP, renewal_opp_won },
    { RS_RULE_DATA_FRESHNESS, RS_EV__COUNT, ACT_HEARTBEAT, any_source },
};

static bool same_str(struct rs_str a, struct rs_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/*
 * SLA-06: a live subscription period ending at f->anchor_ms. Opens the account's instance,
 * or, when the instance's subscription moved to a later period (it renewed), settles the
 * old period at t and opens the next. Returns 0, 1 when nothing changed, or an error.
 */
static int renew(const struct ctx *c, struct inst *in, const struct facts *f, int64_t t)
{
    const struct rs_rule_config *cfg = rule_cfg(c->r, in->rule);
    int64_t period_start = c->ev->u.subscription.service_period_start_ms;
    int rc;

    if (f->anchor_ms <= t || f->anchor_ms - period_start <= cfg->threshold_ms) {
        return 1; /* the renewal date passed, or a period too short to need an opportunity */
    }
    if (in->status == ST_PENDING) {
        in->anchor_ms = f->anchor_ms;
        rc = start(c, in, f, t, in->attempt_n);
        if (rc == 0 && (in->flags & F_STOP_SEEN)) {
            in->flags &= (uint8_t)~F_STOP_SEEN;
            rc = stop_clock(c, in, f->entity, in->stop_ms > t ? in->stop_ms : t);
        }
        return rc;
    }
    if (is_open(in)) {
        if (!same_str(f->dim, in->dim) || f->anchor_ms <= in->anchor_ms || t < in->start_ms) {
            return 1; /* another subscription, or no later period */
        }
        rc = stop_clock(c, in, f->entity, t);
    } else if (t >= in->stop_ms && ((in->flags & F_REARM) || f->anchor_ms > in->anchor_ms)) {
        rc = 0; /* a period after a cancel, or the next one after a covered period */
    } else {
        return 1;
    }
    if (rc == 0) {
        in->anchor_ms = f->anchor_ms;
        rc = start(c, in, f, t, in->attempt_n + 1);
    }
    return rc;
}

/* Run one trigger on its instance. t is the event time (SLA-07: the receive time). */
static int run(const struct ctx *c, enum action action, uint8_t rule, const struct facts *f,
               int64_t t, int64_t received_ms)
{
    const struct rule_def *def = rule_def(rule);
    struct inst in;
    bool found;
    int rc = inst_load(c->st, c->partition, rule, f->entity, &in, c->err);

    if (rc == RS_ENOTFOUND) {
        inst_new(&in, rule);
        found = false;
        rc = 0;
    } else if (rc != 0) {
        return rc;
    } else {
        found = true;
    }
    switch (action) {
    case ACT_START:
        if (in.status == ST_PENDING) {
            rc = start(c, &in, f, t, in.attempt_n);
            if (rc == 0 && (in.flags & F_STOP_SEEN)) {
                /* Stopped before it started (a handoff completed before the close): met with
                 * no time elapsed, or at the stop if that came later in event time. */
                in.flags &= (uint8_t)~F_STOP_SEEN;
                rc = stop_clock(c, &in, f->entity, in.stop_ms > t ? in.stop_ms : t);
            }
        } else if (is_settled(&in) && (in.flags & F_REARM)) {
            rc = start(c, &in, f, t, in.attempt_n + 1);
        } else {
            return 0; /* a duplicate start */
        }
        break;
    case ACT_RESTART:
        if (in.status == ST_PENDING) {
            rc = start(c, &in, f, t, in.attempt_n);
        } else if (is_open(&in)) {
            if (t < in.start_ms || !rs_str_is_set(f->dim) || same_str(f->dim, in.dim)) {
                return 0; /* older than the open instance, or no change */
            }
            rc = stop_clock(c, &in, f->entity, t);
            if (rc == 0) {
                rc = start(c, &in, f, t, in.attempt_n + 1);
            }
        } else if (t >= in.stop_ms) {
            rc = start(c, &in, f, t, in.attempt_n + 1);
        } else {
            return 0; /* older than the stop that settled it */
        }
        break;
    case ACT_STOP:
        if (def->anchored && in.status != ST_PENDING && in.attempt_n > 1 && t < in.start_ms) {
            return 0; /* it covered an earlier period, whose outcome stands */
        }
        if (in.status == ST_PENDING) {
            if (!def->pending_stop || ((in.flags & F_STOP_SEEN) && in.stop_ms <= t)) {
                return 0;
            }
            in.flags |= F_STOP_SEEN;
            in.stop_ms = t;
            if (rs_str_is_set(c->ev->tenant)) {
                in.tenant = c->ev->tenant;
            }
        } else if (is_open(&in)) {
            rc = stop_clock(c, &in, f->entity, t);
        } else if ((in.status == ST_MET || in.status == ST_BREACHED_THEN_MET) && t < in.stop_ms) {
            rc = restate_stop(c, &in, f->entity, t);
        } else {
            return 0;
        }
        break;
    case ACT_PAUSE:
        if (in.status != ST_RUNNING && in.status != ST_BREACHED) {
            return 0;
        }
        rc = pause(c, &in, f->entity, t);
        break;
    case ACT_RESUME:
        if (in.status != ST_PAUSED) {
            return 0;
        }
        rc = resume(c, &in, f->entity, t);
        break;
    case ACT_CANCEL:
        if (!found || !(is_open(&in) || def->cancel_settled)) {
            return 0;
        }
        if (def->anchored && rs_str_is_set(f->dim) && !same_str(f->dim, in.dim)) {
            return 0; /* another subscription of the account ends */
        }
        rc = cancel(c, &in, f->entity, t);
        break;
    case ACT_REARM:
        if (!found || in.status == ST_PENDING) {
            return 0;
        }
        rc = is_open(&in) ? cancel(c, &in, f->entity, t) : 0;
        in.flags |= F_REARM;
        break;
    case ACT_OWNER:
        if (!is_open(&in) || !rs_str_is_set(f->owner)) {
            return 0;
        }
        in.owner = f->owner;
        break;
    case ACT_RENEW:
        rc = renew(c, &in, f, t);
        if (rc > 0) {
            return 0;
        }
        break;
    case ACT_HEARTBEAT:
        if (!found) {
            rc = start(c, &in, f, t, 1);
        } else if (is_open(&in)) {
            rc = freshness_seen(c, &in, f, t);
        } else {
            rc = start(c, &in, f, t, in.attempt_n + 1);
        }
        if (rc == 0) {
            rc = lag_sample(c, &in, f->entity, received_ms - c->ev->ts_ms);
        }
        break;
    }
    return rc != 0 ? rc : inst_save(c, f->entity, &in);
}

/* Keep the opportunity facts SLA-03 and SLA-04 read later; *o is the record before ev. */
static int opp_track(const struct ctx *c, const struct rs_event *ev, struct opp *o)
{
    struct rs_str id;
    int rc;

    switch (ev->type) {
    case RS_EV_OPP_CREATED:
        id = ev->u.opp_created.opportunity_id;
        break;
    case RS_EV_OPP_STAGE_CHANGED:
        id = ev->u.opp_stage_changed.opportunity_id;
        break;
    case RS_EV_OPP_CLOSED:
        id = ev->u.opp_closed.opportunity_id;
        break;
    case RS_EV_OPP_REOPENED:
        id = ev->u.opp_reopened.opportunity_id;
        break;
    default:
        memset(o, 0, offsetof(struct opp, raw));
        o->deal_type = DEAL_UNKNOWN;
        return 0;
    }
    rc = opp_load(c, id, o);
    if (rc != 0) {
        return rc;
    }
    if (ev->type == RS_EV_OPP_CREATED) {
        struct opp now = *o;

        now.deal_type = (uint8_t)ev->u.opp_created.deal_type;
        now.owner = ev->u.opp_created.owner_id;
        now.account = rs_str_is_set(ev->u.opp_created.account_id) ? ev->u.opp_created.account_id
                                                                  : ev->account;
        /* A stage change that came first knows the later stage. */
        if (!o->found || !rs_str_is_set(o->stage)) {
            now.stage = ev->u.opp_created.stage;
        }
        return opp_save(c, id, &now);
    }
    if (ev->type == RS_EV_OPP_STAGE_CHANGED) {
        struct opp now = *o;

        now.stage = ev->u.opp_stage_changed.to_stage;
        return opp_save(c, id, &now);
    }
    return 0;
}

int rs_rules_apply(struct rs_rules *r, struct rs_store *st, uint32_t partition,
                   const struct rs_event *ev, int64_t received_ms, int64_t *next_deadline_ms,
                   struct rs_err *err)
{
    struct ctx c = { r, st, partition, ev, next_deadline_ms, err };
    struct opp o;
    int rc;

    if (r->cfg.stalled_opp.enabled || r->cfg.handoff.enabled || r->cfg.renewal.enabled) {
        rc = opp_track(&c, ev, &o);
        if (rc != 0) {
            return rc;
        }
    } else {
        memset(&o, 0, offsetof(struct opp, raw));
        o.deal_type = DEAL_UNKNOWN;
    }
    for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++) {
        const struct trigger *tr = &triggers[i];
        const struct rs_rule_config *cfg = rule_cfg(r, tr->rule);
        struct facts f;
        int64_t t = ev->ts_ms;

        if (!cfg->enabled || (tr->type != RS_EV__COUNT && tr->type != ev->type)) {
            continue;
        }
        memset(&f, 0, sizeof(f));
        if (!tr->when(ev, &o, &f) || !rs_str_is_set(f.entity) || f.entity.len == 0) {
            continue;
        }
        rc = run(&c, tr->action, tr->rule, &f, t, received_ms > 0 ? received_ms : ev->ts_ms);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- firing ----------------------------------------------------------------------------- */

/* A due timer of a rule this module does not run (SLA-01), put back after the pass. */
struct foreign {
    uint8_t rule;
    int64_t deadline_ms;
    uint8_t entity[RS_TIMER_ENTITY_MAX];
    size_t entity_len;
    uint8_t payload[RS_TIMER_PAYLOAD_MAX];
    size_t payload_len;
};

struct fire_ctx {
    struct ctx c;
    int64_t watermark_ms;
    int64_t next_deadline_ms; /* arms note their deadlines here; the pass's `left` supersedes */
    struct foreign *foreign;
    size_t n_foreign, cap_foreign;
};

static int keep_foreign(struct fire_ctx *fc, uint8_t rule, struct rs_bytes entity,
                        int64_t deadline_ms, struct rs_bytes payload)
{
    struct foreign *f;

    if (fc->n_foreign == fc->cap_foreign) {
        fc->cap_foreign = fc->cap_foreign == 0 ? 16 : 2 * fc->cap_foreign;
        fc->foreign = rs_xrealloc(fc->foreign, fc->cap_foreign * sizeof(*fc->foreign));
    }
    f = &fc->foreign[fc->n_foreign++];
    f->rule = rule;
    f->deadline_ms = deadline_ms;
    f->entity_len = entity.len < sizeof(f->entity) ? entity.len : sizeof(f->entity);
    memcpy(f->entity, entity.ptr, f->entity_len);
    f->payload_len = payload.len < sizeof(f->payload) ? payload.len : sizeof(f->payload);
    memcpy(f->payload, payload.ptr, f->payload_len);
    return 0;
}

static int fire_one(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                    int64_t deadline_ms, struct rs_bytes payload)
{
    struct fire_ctx *fc = opaque;
    struct ctx *c = &fc->c;
    const struct rs_rule_config *cfg = rule_cfg(c->r, rule);
    struct rs_str id = { entity.ptr, entity.len };
    struct inst in;
    size_t level;
    int rc;

    (void)partition;
    if (cfg == NULL) {
        return keep_foreign(fc, rule, entity, deadline_ms, payload);
    }
    if (payload.len != PAYLOAD_LEN) {
        return 0;
    }
    level = ((const uint8_t *)payload.ptr)[0];
    rc = inst_load(c->st, c->partition, rule, id, &in, c->err);
    if (rc == RS_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    /* A timer of an earlier attempt, of a paused instance or of a settled level is stale. */
    if ((in.status != ST_RUNNING && in.status != ST_BREACHED) || level >= cfg->n_levels ||
        (in.fired & (1u << level)) ||
        rs_store_get_u32((const uint8_t *)payload.ptr + 1) != in.attempt_n) {
        return 0;
    }
    if (level_deadline(cfg, &in, level) > fc->watermark_ms) {
        return arm_next(c, &in, id); /* the window moved since the timer was armed */
    }
    in.fired |= (uint8_t)(1u << level);
    if (cfg->levels[level].kind == RS_ALERT_BREACHED) {
        in.status = ST_BREACHED;
    }
    rc = emit_level(c, &in, id, cfg->levels[level].kind, level, fc->watermark_ms,
                    level_deadline(cfg, &in, level) - 1);
    if (rc == 0 && cfg->levels[level].kind == RS_ALERT_BREACHED) {
        in.flags |= F_REPORTED;
        rc = report(c, &in, id, ST_BREACHED, +1);
    }
    if (rc == 0) {
        rc = arm_next(c, &in, id);
    }
    return rc != 0 ? rc : inst_save(c, id, &in);
}

int rs_rules_fire(struct rs_rules *r, struct rs_store *st, uint32_t partition, int64_t watermark_ms,
                  int64_t *next_deadline_ms, struct rs_err *err)
{
    struct fire_ctx fc;
    int64_t left;
    int fired;
    int rc = 0;

    memset(&fc, 0, sizeof(fc));
    fc.c = (struct ctx){ r, st, partition, NULL, &fc.next_deadline_ms, err };
    fc.watermark_ms = watermark_ms;
    fc.next_deadline_ms = RS_TIMER_NONE;
    fired = rs_timer_fire_due(st, partition, watermark_ms, 0, fire_one, &fc, &left, err);
    for (size_t i = 0; fired >= 0 && i < fc.n_foreign; i++) {
        const struct foreign *f = &fc.foreign[i];

        rc = rs_timer_arm(st, partition, f->rule, (struct rs_bytes){ f->entity, f->entity_len },
                          f->deadline_ms, (struct rs_bytes){ f->payload, f->payload_len }, err);
        if (rc != 0) {
            break;
        }
        if (f->deadline_ms < left) {
            left = f->deadline_ms;
        }
    }
    free(fc.foreign);
    if (fired < 0) {
        return fired;
    }
    if (rc != 0) {
        return rc;
    }
    /* The pass runs until the first timer is after the watermark, so `left` already counts
     * every level armed while firing (those due fired in the same pass). */
    *next_deadline_ms = left;
    return fired - (int)fc.n_foreign;
}

int rs_rules_fire_timer(struct rs_rules *r, struct rs_store *st, uint32_t partition,
                        int64_t watermark_ms, uint8_t rule, struct rs_bytes entity,
                        int64_t deadline_ms, struct rs_bytes payload, int64_t *next_deadline_ms,
                        struct rs_err *err)
{
    struct fire_ctx fc;
    int rc;

    if (rule_cfg(r, rule) == NULL) {
        return 0;
    }
    memset(&fc, 0, sizeof(fc));
    fc.c = (struct ctx){ r, st, partition, NULL, next_deadline_ms, err };
    fc.watermark_ms = watermark_ms;
    rc = fire_one(&fc, partition, rule, entity, deadline_ms, payload);
    free(fc.foreign); /* none: the rule is ours */
    return rc;
}

/* ---- the open instances ----------------------------------------------------------------- */

int rs_rules_scan_open(struct rs_store *st, uint8_t rule, struct rs_str owner, rs_sla_open_cb *cb,
                       void *opaque, struct rs_err *err)
{
    uint8_t from[RS_ENTITY_KEY_MAX + 1];
    size_t from_len = 0;
    int rc;

    for (;;) {
        struct rs_bytes key, val;
        struct rs_sla_open o;
        struct inst in;
        uint8_t kind;
        uint32_t partition;

        rc =
            rs_store_seek(st, RS_DB_ENTITIES, (struct rs_bytes){ from, from_len }, &key, &val, err);
        if (rc == RS_ENOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        /* Next seek: the smallest key after this one. */
        from_len = key.len < RS_ENTITY_KEY_MAX ? key.len : RS_ENTITY_KEY_MAX;
        memcpy(from, key.ptr, from_len);
        from[from_len++] = 0;
        if (key.len < 5) {
            continue;
        }
        kind = ((const uint8_t *)key.ptr)[4];
        if (kind <= KIND_BASE || rule_def((uint8_t)(kind - KIND_BASE)) == NULL ||
            (rule != 0 && kind != KIND_BASE + rule)) {
            continue;
        }
        partition = rs_store_get_u32(key.ptr);
        rc = inst_decode(&in, val, err);
        if (rc != 0) {
            return rc;
        }
        if (!is_open(&in) || (rs_str_is_set(owner) && !same_str(owner, in.owner))) {
            continue;
        }
        memset(&o, 0, sizeof(o));
        o.partition = partition;
        o.rule = in.rule;
        o.sla_type = rule_def(in.rule)->sla_type;
        o.entity_id = (struct rs_str){ (const char *)from + 5, from_len - 6 };
        o.owner_id = in.owner;
        o.status = status_name(in.status);
        o.start_ms = in.start_ms;
        o.target_ms = in.target_ms;
        /* The armed timer is the next level; a paused instance has none. */
        rc = rs_timer_deadline(st, partition, in.rule,
                               (struct rs_bytes){ o.entity_id.ptr, o.entity_id.len },
                               &o.next_level_ms, err);
        if (rc == RS_ENOTFOUND) {
            o.next_level_ms = INT64_MAX;
        } else if (rc != 0) {
            return rc;
        }
        rc = cb(opaque, &o);
        if (rc != 0) {
            return rc;
        }
    }
}
