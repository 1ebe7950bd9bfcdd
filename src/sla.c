#define RS_LOG_MODULE "sla"
#include "sla.h"

#include "log.h"
#include "mem.h"
#include "record.h"
#include "timer.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND_LEAD      1 /* entities key kind byte; never reuse a value */
#define RECORD_VERSION 1
#define STR_MAX        1024 /* longest id or label kept on a lead record; longer ones are cut */
#define RECORD_MAX     (40 + 5 * (2 + STR_MAX))

static const char SLA_TYPE[] = "SLA-01_speed_to_lead";

enum lead_status {
    ST_PENDING, /* touched or cancelled before its lead.created arrived */
    ST_RUNNING,
    ST_BREACHED, /* open, L1 fired */
    ST_MET,
    ST_BREACHED_THEN_MET,
    ST_CANCELLED,
};

enum {
    F_CREATED = 1,     /* lead.created applied */
    F_TOUCHED = 2,     /* touched_ms holds the first response */
    F_EARLY_START = 4, /* pending: created_ms holds the start of a lead merged into this one */
};

static const char *const level_names[RS_SLA_LEVELS] = { "L0_warning", "L1_breach", "L2_escalate" };
static const enum rs_alert_kind level_kinds[RS_SLA_LEVELS] = { RS_ALERT_WARNING, RS_ALERT_BREACHED,
                                                               RS_ALERT_ESCALATED };

/* A lead record, decoded. Its strings point into raw[], never into LMDB memory. */
struct lead {
    uint8_t tier;
    uint8_t status;
    uint8_t fired; /* bit per level */
    uint8_t flags;
    uint32_t attempt_n;
    int64_t created_ms;
    int64_t touched_ms;
    int64_t threshold_ms;
    struct rs_str owner, channel, segment, account, tenant;
    uint8_t raw[RECORD_MAX];
};

void rs_sla_init(struct rs_sla *sla, const struct rs_sla_config *cfg, rs_sla_emit_cb *emit,
                 void *opaque)
{
    memset(sla, 0, sizeof(*sla));
    sla->cfg = *cfg;
    sla->emit = emit;
    sla->opaque = opaque;
}

/* Layout: version tier status fired flags pad(3) attempt(4) created(8) touched(8) threshold(8),
 * then five length-prefixed strings. Keep in sync with lead_decode(). */
static size_t lead_encode(const struct lead *l, uint8_t *out)
{
    uint8_t *p = out;

    p[0] = RECORD_VERSION;
    p[1] = l->tier;
    p[2] = l->status;
    p[3] = l->fired;
    p[4] = l->flags;
    p[5] = p[6] = p[7] = 0;
    rs_store_put_u32(p + 8, l->attempt_n);
    rs_store_put_u64(p + 12, (uint64_t)l->created_ms);
    rs_store_put_u64(p + 20, (uint64_t)l->touched_ms);
    rs_store_put_u64(p + 28, (uint64_t)l->threshold_ms);
    p += 36;
    p = rs_rec_put_str(p, l->owner, STR_MAX);
    p = rs_rec_put_str(p, l->channel, STR_MAX);
    p = rs_rec_put_str(p, l->segment, STR_MAX);
    p = rs_rec_put_str(p, l->account, STR_MAX);
    p = rs_rec_put_str(p, l->tenant, STR_MAX);
    return (size_t)(p - out);
}

static int lead_decode(struct lead *l, struct rs_bytes val, struct rs_err *err)
{
    const uint8_t *p = l->raw;
    const uint8_t *end;

    if (val.len < 36 || val.len > sizeof(l->raw) ||
        ((const uint8_t *)val.ptr)[0] != RECORD_VERSION) {
        return rs_err_set(err, RS_ESTORE,
                          "lead record of %zu bytes is corrupt or of another version", val.len);
    }
    memcpy(l->raw, val.ptr, val.len);
    end = l->raw + val.len;
    l->tier = p[1];
    l->status = p[2];
    l->fired = p[3];
    l->flags = p[4];
    l->attempt_n = rs_store_get_u32(p + 8);
    l->created_ms = (int64_t)rs_store_get_u64(p + 12);
    l->touched_ms = (int64_t)rs_store_get_u64(p + 20);
    l->threshold_ms = (int64_t)rs_store_get_u64(p + 28);
    p += 36;
    p = rs_rec_get_str(p, end, &l->owner);
    p = rs_rec_get_str(p, end, &l->channel);
    p = rs_rec_get_str(p, end, &l->segment);
    p = rs_rec_get_str(p, end, &l->account);
    p = rs_rec_get_str(p, end, &l->tenant);
    if (p == NULL || l->tier >= RS_TIER__COUNT || l->status > ST_CANCELLED) {
        return rs_err_set(err, RS_ESTORE, "lead record is corrupt");
    }
    return 0;
}

/* Returns 0 with *l filled, RS_ENOTFOUND, or an error. */
static int lead_load(struct rs_store *st, uint32_t partition, struct rs_str id, struct lead *l,
                     struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    struct rs_bytes val;
    int rc =
        rs_store_get(st, RS_DB_ENTITIES, rs_entity_key(kbuf, partition, KIND_LEAD, id), &val, err);

    if (rc != 0) {
        return rc;
    }
    return lead_decode(l, val, err);
}

static int lead_save(struct rs_store *st, uint32_t partition, struct rs_str id,
                     const struct lead *l, struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    uint8_t vbuf[RECORD_MAX];
    size_t len = lead_encode(l, vbuf);

    return rs_store_put(st, RS_DB_ENTITIES, rs_entity_key(kbuf, partition, KIND_LEAD, id),
                        (struct rs_bytes){ vbuf, len }, err);
}

static void lead_new(struct lead *l)
{
    memset(l, 0, offsetof(struct lead, raw));
    l->status = ST_PENDING;
    l->attempt_n = 1;
    l->touched_ms = INT64_MIN;
}

/*
 * The first instant at which `level` is late: start + pct% of the threshold, plus 1 ms, so
 * that a touch exactly at the threshold meets the SLA and a timer never fires a level that a
 * touch at that same instant would have met.
 */
static int64_t level_deadline(const struct rs_sla *sla, const struct lead *l, int level)
{
    static const uint32_t breach_pct = 100;
    uint32_t pct =
        level == 0 ? sla->cfg.warning_pct : (level == 1 ? breach_pct : sla->cfg.escalate_pct);

    return l->created_ms + l->threshold_ms / 100 * pct + (l->threshold_ms % 100) * pct / 100 + 1;
}

/*
 * OpenSSL 3 looks the algorithm up by name on every EVP_Digest(..., EVP_sha256(), ...), and
 * EVP_Digest() allocates and frees a context each time: together more than the digest costs at
 * our message sizes. Fetch the algorithm once for the process, and keep one context per thread
 * (freed at the thread's exit).
 */
static EVP_MD *sha256;
static pthread_key_t sha256_ctx_key;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void free_sha256_ctx(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    (void)pthread_key_create(&sha256_ctx_key, free_sha256_ctx);
}

/* The SHA-256 of buf[0..len), into md (32 bytes). */
static void digest_sha256(const char *buf, size_t len, unsigned char *md)
{
    const EVP_MD *md_type;
    EVP_MD_CTX *ctx;
    unsigned int mdlen = 0;

    (void)pthread_once(&sha256_once, fetch_sha256);
    md_type = sha256 != NULL ? sha256 : EVP_sha256();
    ctx = pthread_getspecific(sha256_ctx_key);
    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL || pthread_setspecific(sha256_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            (void)EVP_Digest(buf, len, md, &mdlen, md_type, NULL);
            return;
        }
    }
    if (EVP_DigestInit_ex(ctx, md_type, NULL) != 1 || EVP_DigestUpdate(ctx, buf, len) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        (void)EVP_Digest(buf, len, md, &mdlen, md_type, NULL);
    }
}

/*
 * Append to buf[*n..cap-1) as snprintf's "%.*s" would: up to len bytes, stopping at a NUL,
 * never past cap - 1 (the id hashes what snprintf would have kept).
 */
static void put_part(char *buf, size_t cap, size_t *n, const char *s, size_t len)
{
    const char *nul = s != NULL && len > 0 ? memchr(s, '\0', len) : NULL;
    size_t room = cap - 1 - *n;

    if (s == NULL) {
        return;
    }
    if (nul != NULL) {
        len = (size_t)(nul - s);
    }
    if (len > room) {
        len = room;
    }
    memcpy(buf + *n, s, len);
    *n += len;
}

void rs_sla_alert_id(char out[65], struct rs_str tenant, const char *sla_type, struct rs_str entity,
                     uint32_t attempt, const char *level, const char *suffix)
{
    char buf[2 * STR_MAX + 128];
    char num[16];
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t n = 0;
    int numlen = 0;

    /* "tenant|sla_type|entity|attempt|level suffix", built by hand: snprintf cost more than
     * the digest. */
    do {
        num[sizeof(num) - 1 - (size_t)numlen++] = (char)('0' + attempt % 10);
        attempt /= 10;
    } while (attempt != 0);
    put_part(buf, sizeof(buf), &n, tenant.ptr, tenant.len);
    put_part(buf, sizeof(buf), &n, "|", 1);
    put_part(buf, sizeof(buf), &n, sla_type, strlen(sla_type));
    put_part(buf, sizeof(buf), &n, "|", 1);
    put_part(buf, sizeof(buf), &n, entity.ptr, entity.len);
    put_part(buf, sizeof(buf), &n, "|", 1);
    put_part(buf, sizeof(buf), &n, num + sizeof(num) - (size_t)numlen, (size_t)numlen);
    put_part(buf, sizeof(buf), &n, "|", 1);
    put_part(buf, sizeof(buf), &n, level, strlen(level));
    put_part(buf, sizeof(buf), &n, suffix, strlen(suffix));
    digest_sha256(buf, n, md);
    for (unsigned int i = 0; i < 32; i++) {
        static const char hex[] = "0123456789abcdef";

        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static const char *status_name(uint8_t status)
{
    static const char *const names[] = { "pending", "running",           "breached",
                                         "met",     "breached_then_met", "cancelled" };

    return status <= ST_CANCELLED ? names[status] : "unknown";
}

static int emit(struct rs_sla *sla, const struct lead *l, struct rs_str lead_id,
                enum rs_alert_kind kind, int level, int64_t evaluated_at_ms, int64_t elapsed_ms,
                struct rs_err *err)
{
    struct rs_alert a;
    const char *level_name = level >= 0 ? level_names[level] : "resolved";

    memset(&a, 0, sizeof(a));
    a.kind = kind;
    if (kind == RS_ALERT_RETRACTED) {
        rs_sla_alert_id(a.alert_id, l->tenant, SLA_TYPE, lead_id, l->attempt_n, level_name,
                        "|retracted");
        rs_sla_alert_id(a.retracts_id, l->tenant, SLA_TYPE, lead_id, l->attempt_n, level_name, "");
    } else {
        rs_sla_alert_id(a.alert_id, l->tenant, SLA_TYPE, lead_id, l->attempt_n, level_name, "");
    }
    a.sla_type = SLA_TYPE;
    a.level = level_name;
    a.status = status_name(l->status);
    a.entity_type = "lead";
    a.entity_id = lead_id;
    a.attempt_n = l->attempt_n;
    a.owner_id = l->owner;
    a.account = l->account;
    a.start_event_type = "lead.created";
    a.start_at_ms = l->created_ms;
    a.target_at_ms = l->created_ms + l->threshold_ms;
    a.level_at_ms = level >= 0 ? level_deadline(sla, l, level) - 1 : l->touched_ms;
    a.evaluated_at_ms = evaluated_at_ms;
    a.threshold_ms = l->threshold_ms;
    a.elapsed_ms = elapsed_ms;
    a.elapsed_business_ms = elapsed_ms; /* a 24x7 clock */
    a.clock = "24x7";
    a.intent_tier = rs_intent_tier_name((enum rs_intent_tier)l->tier);
    a.channel = l->channel;
    a.segment = l->segment;
    sla->counters.alerts[kind]++;
    return sla->emit(sla->opaque, &a, err);
}

/* Arm `level`; `fresh`: the lead was never seen before, so it has no timer to replace. */
static int arm_level(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                     struct rs_str lead_id, const struct lead *l, int level, bool fresh,
                     int64_t *next_deadline_ms, struct rs_err *err)
{
    uint8_t payload[5];
    int64_t deadline = level_deadline(sla, l, level);

    payload[0] = (uint8_t)level;
    rs_store_put_u32(payload + 1, l->attempt_n);
    if (deadline < *next_deadline_ms) {
        *next_deadline_ms = deadline;
    }
    return (fresh ? rs_timer_arm_new : rs_timer_arm)(
        st, partition, RS_SLA_RULE_SPEED_TO_LEAD, (struct rs_bytes){ lead_id.ptr, lead_id.len },
        deadline, (struct rs_bytes){ payload, sizeof(payload) }, err);
}

static bool is_open(const struct lead *l)
{
    return l->status == ST_RUNNING || l->status == ST_BREACHED;
}

/*
 * The deadline of an open lead's running timer: that of its first level not fired (levels
 * fire in order, each arming the next). RS_TIMER_NONE when every level fired.
 */
static int64_t armed_deadline(const struct rs_sla *sla, const struct lead *l)
{
    int level = 0;

    while (level < RS_SLA_LEVELS && (l->fired & (1u << level))) {
        level++;
    }
    return level < RS_SLA_LEVELS ? level_deadline(sla, l, level) : RS_TIMER_NONE;
}

/*
 * The clock stops at touch time t: settle every level against t, then the outcome. armed_ms:
 * the deadline of the lead's running timer (armed_deadline() before the caller changed the
 * record), or RS_TIMER_NONE when none runs.
 */
static int stop_clock(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                      struct rs_str lead_id, struct lead *l, int64_t t, int64_t armed_ms,
                      struct rs_err *err)
{
    int64_t response = t - l->created_ms;
    bool breached = t >= level_deadline(sla, l, 1);
    int rc;

    if (response < 0) {
        response = 0;
        sla->counters.negative_durations++;
    }
    sla->counters.touches++;
    l->touched_ms = t;
    l->flags |= F_TOUCHED;
    l->status = breached ? ST_BREACHED_THEN_MET : ST_MET;
    for (int level = 0; level < RS_SLA_LEVELS; level++) {
        bool happened = t >= level_deadline(sla, l, level);
        bool fired = (l->fired & (1u << level)) != 0;

        if (happened && !fired) {
            /* The watermark had not reached it yet; in event time it did happen. */
            rc = emit(sla, l, lead_id, level_kinds[level], level, t,
                      level_deadline(sla, l, level) - 1 - l->created_ms, err);
            l->fired |= (uint8_t)(1u << level);
        } else if (!happened && fired) {
            rc = emit(sla, l, lead_id, RS_ALERT_RETRACTED, level, t, response, err);
        } else {
            rc = 0;
        }
        if (rc != 0) {
            return rc;
        }
    }
    /* §5.2: every level notified and still standing gets its resolution. */
    if (t >= level_deadline(sla, l, 0)) {
        rc = emit(sla, l, lead_id, RS_ALERT_RECOVERED, -1, t, response, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (armed_ms == RS_TIMER_NONE) {
        return 0;
    }
    /* Its deadline is known: no lookup. Were it wrong, that timer would fire stale (fire_one). */
    rc = rs_timer_cancel_at(st, partition, RS_SLA_RULE_SPEED_TO_LEAD,
                            (struct rs_bytes){ lead_id.ptr, lead_id.len }, armed_ms, err);
    return rc == RS_ENOTFOUND ? 0 : rc;
}

/*
 * A touch earlier than the one that stopped the clock arrived late: the response time is the
 * earlier one, and levels that held only because of the later touch are retracted.
 */
static int restate_touch(struct rs_sla *sla, struct rs_str lead_id, struct lead *l, int64_t t,
                         struct rs_err *err)
{
    int64_t response = t > l->created_ms ? t - l->created_ms : 0;

    for (int level = 0; level < RS_SLA_LEVELS; level++) {
        bool held = l->touched_ms >= level_deadline(sla, l, level);
        bool holds = t >= level_deadline(sla, l, level);

        if ((l->fired & (1u << level)) && held && !holds) {
            int rc;

            l->status = t >= level_deadline(sla, l, 1) ? ST_BREACHED_THEN_MET : ST_MET;
            rc = emit(sla, l, lead_id, RS_ALERT_RETRACTED, level, t, response, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    l->touched_ms = t;
    l->status = t >= level_deadline(sla, l, 1) ? ST_BREACHED_THEN_MET : ST_MET;
    return 0;
}

static int on_created(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                      const struct rs_event *ev, int64_t *next_deadline_ms, struct rs_err *err)
{
    const struct rs_lead_created *c = &ev->u.lead_created;
    struct lead l;
    int rc = lead_load(st, partition, c->lead_id, &l, err);
    bool fresh = rc == RS_ENOTFOUND; /* never seen: no timer (lead records are never deleted) */

    if (rc == RS_ENOTFOUND) {
        lead_new(&l);
        rc = 0;
    } else if (rc != 0) {
        return rc;
    } else if (l.flags & F_CREATED) {
        sla->counters.duplicate_leads++;
        return 0;
    }
    sla->counters.leads++;
    /* A lead merged into this one before it was created starts the clock earlier. */
    if (!(l.flags & F_EARLY_START) || ev->ts_ms < l.created_ms) {
        l.created_ms = ev->ts_ms;
    }
    l.flags |= F_CREATED;
    l.tier = (uint8_t)c->intent_tier;
    l.threshold_ms = sla->cfg.threshold_ms[c->intent_tier];
    l.owner = c->owner_id;
    l.channel = c->channel;
    l.segment = c->segment;
    l.account = ev->account;
    l.tenant = ev->tenant;
    if (l.status == ST_CANCELLED) {
        /* Disqualified, converted or merged before we saw it created: no clock. */
    } else if (l.flags & F_TOUCHED) {
        l.status = ST_RUNNING;
        rc = stop_clock(sla, st, partition, c->lead_id, &l, l.touched_ms, RS_TIMER_NONE, err);
    } else {
        l.status = ST_RUNNING;
        rc = arm_level(sla, st, partition, c->lead_id, &l, 0, fresh, next_deadline_ms, err);
    }
    return rc != 0 ? rc : lead_save(st, partition, c->lead_id, &l, err);
}

static int on_touched(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                      const struct rs_event *ev, struct rs_err *err)
{
    const struct rs_lead_touched *t = &ev->u.lead_touched;
    struct lead l;
    int rc;

    /* M11/SLA-01: only a rep-initiated outbound touch is a response. */
    if (t->actor_type != RS_ACTOR_HUMAN || t->direction != RS_DIR_OUTBOUND) {
        return 0;
    }
    rc = lead_load(st, partition, t->lead_id, &l, err);
    if (rc == RS_ENOTFOUND) {
        lead_new(&l);
        rc = 0;
    } else if (rc != 0) {
        return rc;
    }
    if (l.status == ST_PENDING) {
        if (!(l.flags & F_TOUCHED) || ev->ts_ms < l.touched_ms) {
            l.flags |= F_TOUCHED;
            l.touched_ms = ev->ts_ms;
        }
    } else if (is_open(&l)) {
        rc =
            stop_clock(sla, st, partition, t->lead_id, &l, ev->ts_ms, armed_deadline(sla, &l), err);
    } else if ((l.status == ST_MET || l.status == ST_BREACHED_THEN_MET) &&
               ev->ts_ms < l.touched_ms) {
        rc = restate_touch(sla, t->lead_id, &l, ev->ts_ms, err);
    } else {
        return 0; /* a later touch, or a cancelled lead: nothing changes */
    }
    return rc != 0 ? rc : lead_save(st, partition, t->lead_id, &l, err);
}

/* Cancel the lead's clock; *l is left loaded (or new) for the caller. */
static int cancel_lead(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                       struct rs_str lead_id, struct lead *l, struct rs_err *err)
{
    int rc = lead_load(st, partition, lead_id, l, err);

    if (rc == RS_ENOTFOUND) {
        lead_new(l);
        rc = 0;
    } else if (rc != 0) {
        return rc;
    }
    if (l->status == ST_PENDING) {
        l->status = ST_CANCELLED;
    } else if (is_open(l)) {
        l->status = ST_CANCELLED;
        sla->counters.cancelled++;
        rc = rs_timer_cancel(st, partition, RS_SLA_RULE_SPEED_TO_LEAD,
                             (struct rs_bytes){ lead_id.ptr, lead_id.len }, err);
        if (rc != 0 && rc != RS_ENOTFOUND) {
            return rc;
        }
    } else {
        return 0;
    }
    return lead_save(st, partition, lead_id, l, err);
}

static int on_merged(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                     const struct rs_event *ev, int64_t *next_deadline_ms, struct rs_err *err)
{
    const struct rs_lead_merged *m = &ev->u.lead_merged;
    struct lead from, into;
    int64_t armed;
    int level;
    int rc;

    if (m->lead_id.len == m->into_lead_id.len &&
        memcmp(m->lead_id.ptr, m->into_lead_id.ptr, m->lead_id.len) == 0) {
        return 0; /* merged into itself: nothing moves */
    }
    rc = cancel_lead(sla, st, partition, m->lead_id, &from, err);
    if (rc != 0) {
        return rc;
    }
    rc = lead_load(st, partition, m->into_lead_id, &into, err);
    if (rc == RS_ENOTFOUND) {
        lead_new(&into);
        rc = 0;
    } else if (rc != 0) {
        return rc;
    }
    if (into.status == ST_PENDING) {
        /* The survivor is not created yet: keep what the merged record knew for it. */
        if ((from.flags & F_CREATED) &&
            (!(into.flags & F_EARLY_START) || from.created_ms < into.created_ms)) {
            into.created_ms = from.created_ms;
            into.flags |= F_EARLY_START;
        }
        if ((from.flags & F_TOUCHED) &&
            (!(into.flags & F_TOUCHED) || from.touched_ms < into.touched_ms)) {
            into.touched_ms = from.touched_ms;
            into.flags |= F_TOUCHED;
        }
        return lead_save(st, partition, m->into_lead_id, &into, err);
    }
    if (!is_open(&into)) {
        return 0;
    }
    armed = armed_deadline(sla, &into);
    if ((from.flags & F_CREATED) && from.created_ms < into.created_ms) {
        into.created_ms = from.created_ms; /* the earliest creation starts the clock */
    }
    if (from.flags & F_TOUCHED) {
        rc = stop_clock(sla, st, partition, m->into_lead_id, &into, from.touched_ms, armed, err);
    } else {
        for (level = 0; level < RS_SLA_LEVELS && (into.fired & (1u << level)); level++) {
        }
        rc = level < RS_SLA_LEVELS ? arm_level(sla, st, partition, m->into_lead_id, &into, level,
                                               false, next_deadline_ms, err)
                                   : 0;
    }
    return rc != 0 ? rc : lead_save(st, partition, m->into_lead_id, &into, err);
}

int rs_sla_apply(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                 const struct rs_event *ev, int64_t *next_deadline_ms, struct rs_err *err)
{
    struct lead l;

    switch (ev->type) {
    case RS_EV_LEAD_CREATED:
        return on_created(sla, st, partition, ev, next_deadline_ms, err);
    case RS_EV_LEAD_TOUCHED:
        return on_touched(sla, st, partition, ev, err);
    case RS_EV_LEAD_DISQUALIFIED:
        return cancel_lead(sla, st, partition, ev->u.lead_disqualified.lead_id, &l, err);
    case RS_EV_LEAD_CONVERTED:
        return cancel_lead(sla, st, partition, ev->u.lead_converted.lead_id, &l, err);
    case RS_EV_LEAD_MERGED:
        return on_merged(sla, st, partition, ev, next_deadline_ms, err);
    case RS_EV_LEAD_ASSIGNED: /* SLA-01 does not act on these yet (lead.reopened: §5.5) */
    case RS_EV_LEAD_QUALIFIED:
    case RS_EV_LEAD_RECYCLED:
    case RS_EV_LEAD_REOPENED:
    case RS_EV_OPP_CREATED:
    case RS_EV_OPP_STAGE_CHANGED:
    case RS_EV_OPP_CLOSED:
    case RS_EV_OPP_REOPENED:
    case RS_EV_HANDOFF_STARTED:
    case RS_EV_HANDOFF_COMPLETED:
    case RS_EV_ONBOARDING_MILESTONE:
    case RS_EV_ONBOARDING_PAUSED:
    case RS_EV_ONBOARDING_RESUMED:
    case RS_EV_REP_ONBOARDED:
    case RS_EV_REP_QUOTA_SET:
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED:
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_REFUNDED:
    case RS_EV_INVOICE_PAYMENT_FAILED:
    case RS_EV_SPEND_RECORDED:
    case RS_EV_FORECAST_SUBMITTED:
    case RS_EV_FINANCIALS_REPORTED:
    case RS_EV_FX_RATE:
    case RS_EV_REP_TERMINATED:
    case RS_EV__COUNT:
        break;
    }
    return 0;
}

struct fire_ctx {
    struct rs_sla *sla;
    struct rs_store *st;
    int64_t watermark_ms;
    int64_t next_deadline_ms;
    struct rs_err *err;
};

static int fire_one(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                    int64_t deadline_ms, struct rs_bytes payload)
{
    struct fire_ctx *fc = opaque;
    struct rs_str lead_id = { entity.ptr, entity.len };
    struct lead l;
    int level;
    int rc;

    (void)deadline_ms;
    if (rule != RS_SLA_RULE_SPEED_TO_LEAD || payload.len != 5) {
        return 0;
    }
    level = ((const uint8_t *)payload.ptr)[0];
    rc = lead_load(fc->st, partition, lead_id, &l, fc->err);
    if (rc == RS_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    /* A timer of an earlier attempt, or of a level already settled, is stale. */
    if (!is_open(&l) || level >= RS_SLA_LEVELS || (l.fired & (1u << level)) ||
        rs_store_get_u32((const uint8_t *)payload.ptr + 1) != l.attempt_n) {
        return 0;
    }
    l.fired |= (uint8_t)(1u << level);
    if (level >= 1) {
        l.status = ST_BREACHED;
    }
    rc = emit(fc->sla, &l, lead_id, level_kinds[level], level, fc->watermark_ms,
              level_deadline(fc->sla, &l, level) - 1 - l.created_ms, fc->err);
    if (rc == 0 && level + 1 < RS_SLA_LEVELS) {
        /* The timer that fired is gone: nothing to replace. */
        rc = arm_level(fc->sla, fc->st, partition, lead_id, &l, level + 1, true,
                       &fc->next_deadline_ms, fc->err);
    }
    return rc != 0 ? rc : lead_save(fc->st, partition, lead_id, &l, fc->err);
}

int rs_sla_fire(struct rs_sla *sla, struct rs_store *st, uint32_t partition, int64_t watermark_ms,
                int64_t *next_deadline_ms, struct rs_err *err)
{
    struct fire_ctx fc = { sla, st, watermark_ms, RS_TIMER_NONE, err };
    int64_t left;
    int fired;

    fired = rs_timer_fire_due(st, partition, watermark_ms, 0, fire_one, &fc, &left, err);
    if (fired < 0) {
        return fired;
    }
    /* The next levels armed while firing are after the watermark, or fire on the next pass. */
    *next_deadline_ms = left < fc.next_deadline_ms ? left : fc.next_deadline_ms;
    return fired;
}

int rs_sla_fire_timer(struct rs_sla *sla, struct rs_store *st, uint32_t partition,
                      int64_t watermark_ms, struct rs_bytes entity, int64_t deadline_ms,
                      struct rs_bytes payload, int64_t *next_deadline_ms, struct rs_err *err)
{
    struct fire_ctx fc = { sla, st, watermark_ms, *next_deadline_ms, err };
    int rc = fire_one(&fc, partition, RS_SLA_RULE_SPEED_TO_LEAD, entity, deadline_ms, payload);

    *next_deadline_ms = fc.next_deadline_ms;
    return rc;
}

double rs_sla_percentile(const int64_t *sorted, size_t n, double q)
{
    double h, v;
    size_t lo;

    if (n == 0) {
        return 0;
    }
    h = (double)(n - 1) * q;
    lo = (size_t)h;
    if (lo + 1 >= n) {
        return (double)sorted[n - 1];
    }
    v = (double)sorted[lo] + (h - (double)lo) * (double)(sorted[lo + 1] - sorted[lo]);
    /* (n-1)*q is rarely exact in binary (9 * 0.9 = 8.100000000000001): round to 1/1000 of
     * the unit, so that worked examples come out exact and equal inputs give equal output. */
    return nearbyint(v * 1000.0) / 1000.0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

int rs_sla_stats(struct rs_store *st, struct rs_sla_stats *stats, struct rs_err *err)
{
    uint8_t from[RS_ENTITY_KEY_MAX + 1];
    size_t from_len = 0;
    int64_t *resp = NULL;
    size_t cap = 0;
    int rc;

    memset(stats, 0, sizeof(*stats));
    rc = rs_store_read_begin(st, err);
    if (rc != 0) {
        return rc;
    }
    for (;;) {
        struct rs_bytes key, val;
        struct lead l;

        rc =
            rs_store_seek(st, RS_DB_ENTITIES, (struct rs_bytes){ from, from_len }, &key, &val, err);
        if (rc == RS_ENOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) {
            break;
        }
        /* Next seek: the smallest key after this one. */
        from_len = key.len < RS_ENTITY_KEY_MAX ? key.len : RS_ENTITY_KEY_MAX;
        memcpy(from, key.ptr, from_len);
        from[from_len++] = 0;
        if (key.len < 5 || ((const uint8_t *)key.ptr)[4] != KIND_LEAD) {
            continue;
        }
        rc = lead_decode(&l, val, err);
        if (rc != 0) {
            break;
        }
        if (!(l.flags & F_CREATED)) {
            stats->pending++;
            continue;
        }
        stats->leads++;
        switch (l.status) {
        case ST_RUNNING:
            stats->running++;
            break;
        case ST_BREACHED:
            stats->breached++;
            break;
        case ST_MET:
            stats->met++;
            break;
        case ST_BREACHED_THEN_MET:
            stats->breached_then_met++;
            break;
        case ST_CANCELLED:
            stats->cancelled++;
            break;
        default:
            break;
        }
        if (l.status == ST_MET || l.status == ST_BREACHED_THEN_MET) {
            if (stats->responded == cap) {
                cap = cap == 0 ? 1024 : cap * 2;
                resp = rs_xrealloc(resp, cap * sizeof(*resp));
            }
            resp[stats->responded++] =
                l.touched_ms > l.created_ms ? l.touched_ms - l.created_ms : 0;
        }
    }
    rs_store_read_end(st);
    if (rc == 0 && stats->responded > 0) {
        qsort(resp, stats->responded, sizeof(*resp), cmp_i64);
        stats->p50_response_ms = rs_sla_percentile(resp, stats->responded, 0.5);
        stats->p90_response_ms = rs_sla_percentile(resp, stats->responded, 0.9);
    }
    free(resp);
    return rc;
}
