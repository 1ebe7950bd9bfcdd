#define RS_LOG_MODULE "ledger"
#include "ledger.h"

#include "mem.h"
#include "record.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * How the ledger folds a customer (see ledger.h for the cells).
 *
 * The log is kept in (occurred_at, seq, event id, arrival) order. A fold runs in three steps:
 *  1. Per subscription, its entries become "changes": (effective time, MRR in the reporting
 *     currency, its native amount and rate, alive or not). This is where the §3.2 rules that
 *     concern one subscription live: churn recognition moves a cancellation's effective time,
 *     a past-due subscription is cut at the end of its last paid period once
 *     past_due_auto_churn_ms have passed (by the fold's as-of watermark), a paid invoice
 *     recovers it, and a fully refunded subscription cancelled early is voided. A change that
 *     is overtaken by a later entry before it takes effect (a cancellation at period end
 *     reverted before the end) is dropped.
 *  2. The changes of all subscriptions, in time order, are grouped by the smart window (every
 *     change before first + window joins the group), and each group is classified from
 *     customer-level MRR before (b) and after at constant rates (a'): a subscription that
 *     already paid keeps its previous rate, so only amounts move the movement, and the rest
 *     of the change (a - a') is fx_impact. Hence a = b + movement + fx exactly, per group,
 *     so MRR_end = MRR_start + movements + fx_impact in every bucket. A reactivation within
 *     churn_reversal_window of a churn replaces the pair by the net change, and the customer
 *     counts as paying through the gap (so the identity still holds in the gap's buckets).
 *  3. Facts: movements, cohort, per-grain customer facts, monthly balances and T12 pairs up
 *     to the horizon (the month of the as-of watermark), cash and data quality.
 *
 * The customer record stores the as-of watermark of its last fold, so the facts that stand
 * can always be recomputed exactly (before), and a fold at the new watermark (after) gives
 * the difference to apply. Stored conversions are made once, when an entry is inserted: a
 * later fx.rate for an earlier day does not restate them.
 */

#define MS_PER_MIN  (60 * INT64_C(1000))
#define MS_PER_HOUR (60 * MS_PER_MIN)
#define MS_PER_DAY  (24 * MS_PER_HOUR)
#define NONE        INT64_MIN

#define GRAIN(g) (1u << (g))
#define ALL_GRAINS \
    (GRAIN(RS_GRAIN_DAY) | GRAIN(RS_GRAIN_WEEK) | GRAIN(RS_GRAIN_MONTH) | GRAIN(RS_GRAIN_QUARTER))

#define REC_VERSION 1
#define KEY_MAX     512 /* LMDB's default key limit is 511 */
#define ID_MAX      RS_EVENT_ID_MAX

/* ---- small helpers ------------------------------------------------------------------- */

static struct rs_str str_of(const char *s)
{
    return (struct rs_str){ s, strlen(s) };
}

static bool str_same(struct rs_str a, struct rs_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t utc_day(int64_t t_ms)
{
    return floor_div(t_ms, MS_PER_DAY) * MS_PER_DAY;
}

static int64_t month_start(const struct rs_zone *zone, int64_t t_ms)
{
    return rs_bucket_start(zone, RS_GRAIN_MONTH, t_ms);
}

static int64_t convert_at(int64_t amount, double rate)
{
    return (int64_t)llround((double)amount * rate);
}

static uint64_t double_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_double(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/* ---- facts ----------------------------------------------------------------------------- */

struct fact {
    uint16_t metric;
    unsigned grains;
    int64_t t_ms;
    char dims[RS_AGG_DIMS_MAX];
    int64_t n[RS_AGG_FIELDS];
};

struct factset {
    size_t n, cap;
    struct fact *v;
};

static struct fact *fact_new(struct factset *fs, uint16_t metric, unsigned grains, int64_t t_ms)
{
    struct fact *f;

    if (fs->n == fs->cap) {
        fs->cap = fs->cap == 0 ? 64 : fs->cap * 2;
        fs->v = rs_xrealloc(fs->v, fs->cap * sizeof(*fs->v));
    }
    f = &fs->v[fs->n++];
    memset(f, 0, sizeof(*f));
    f->metric = metric;
    f->grains = grains;
    f->t_ms = t_ms;
    return f;
}

static int fact_cmp(const void *pa, const void *pb)
{
    const struct fact *a = pa, *b = pb;
    int c;

    if (a->metric != b->metric) {
        return a->metric < b->metric ? -1 : 1;
    }
    if (a->grains != b->grains) {
        return a->grains < b->grains ? -1 : 1;
    }
    if (a->t_ms != b->t_ms) {
        return a->t_ms < b->t_ms ? -1 : 1;
    }
    c = strcmp(a->dims, b->dims);
    if (c != 0) {
        return c;
    }
    for (size_t i = 0; i < RS_AGG_FIELDS; i++) {
        if (a->n[i] != b->n[i]) {
            return a->n[i] < b->n[i] ? -1 : 1;
        }
    }
    return 0;
}

static bool fact_is_zero(const struct fact *f)
{
    for (size_t i = 0; i < RS_AGG_FIELDS; i++) {
        if (f->n[i] != 0) {
            return false;
        }
    }
    return true;
}

static int fact_apply(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                      const struct fact *f, int sign, struct rs_err *err)
{
    struct rs_agg_key key = { partition, f->metric, RS_GRAIN_DAY, 0,
                              (struct rs_str){ f->dims, strlen(f->dims) } };
    struct rs_agg_fact af;

    memset(&af, 0, sizeof(af));
    memcpy(af.n, f->n, sizeof(af.n));
    return rs_agg_add(l->agg, st, l->cfg.zone, &key, f->grains, f->t_ms, sign, &af, err);
}

/* Retract what `before` holds and `after` does not, then add the new: both sorted, merged. */
static int facts_diff(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                      struct factset *before, struct factset *after, struct rs_err *err)
{
    size_t i = 0, j = 0;
    int rc = 0;

    if (before->n > 1) {
        qsort(before->v, before->n, sizeof(*before->v), fact_cmp);
    }
    if (after->n > 1) {
        qsort(after->v, after->n, sizeof(*after->v), fact_cmp);
    }
    while (rc == 0 && (i < before->n || j < after->n)) {
        int c = i == before->n ? 1 : j == after->n ? -1 : fact_cmp(&before->v[i], &after->v[j]);

        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            l->counters.restated++;
            rc = fact_apply(l, st, partition, &before->v[i++], -1, err);
        } else {
            rc = fact_apply(l, st, partition, &after->v[j++], +1, err);
        }
    }
    return rc;
}

/* ---- the customer record ------------------------------------------------------------- */

enum {
    EF_SEQ = 1,
    EF_END = 2,
    EF_CANCEL_AT = 4,
    EF_FALLBACK = 8,
    EF_FULL_REFUND = 16,
};

struct entry {
    uint8_t type; /* enum rs_event_type: subscription.* or invoice.* */
    uint8_t status;
    uint8_t flags;
    char currency[4];
    int64_t t, seq;
    uint64_t arrival;
    int64_t native; /* subscription: normalised MRR in its currency; invoice: the amount */
    int64_t mrr;    /* the same in the reporting currency */
    double rate;
    int64_t start, end, cancel_at;
    uint32_t conflicts; /* replaced events of the same subscription and time, no seq */
    uint16_t id_len, sub_len;
    char id[ID_MAX];
    char sub[ID_MAX];
};

struct customer {
    int64_t asof_ms; /* the watermark of the last fold */
    int64_t due_ms;  /* the next time-driven re-fold, NONE */
    uint64_t arrivals;
    size_t n, cap;
    struct entry *e;
    bool found;
};

static bool is_sub(const struct entry *e)
{
    return e->type >= RS_EV_SUB_STARTED && e->type <= RS_EV_SUB_REACTIVATED;
}

static struct rs_str entry_sub(const struct entry *e)
{
    return (struct rs_str){ e->sub, e->sub_len };
}

static struct rs_bytes customer_key(uint8_t *buf, uint32_t partition, struct rs_str account)
{
    return rs_entity_key(buf, partition, RS_KIND_CUSTOMER, account);
}

static void put_i64(uint8_t **p, int64_t v)
{
    rs_store_put_u64(*p, (uint64_t)v);
    *p += 8;
}

static bool get_i64(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    if (*p == NULL || end - *p < 8) {
        *p = NULL;
        return false;
    }
    *v = (int64_t)rs_store_get_u64(*p);
    *p += 8;
    return true;
}

#define ENTRY_FIXED (3 + 3 + 9 * 8 + 4 + 4)

static size_t customer_encode(const struct customer *c, uint8_t **out)
{
    size_t cap = 1 + 3 * 8 + 4 + c->n * (ENTRY_FIXED + 2 * ID_MAX);
    uint8_t *buf = rs_xmalloc(cap);
    uint8_t *p = buf;

    *p++ = REC_VERSION;
    put_i64(&p, c->asof_ms);
    put_i64(&p, c->due_ms);
    put_i64(&p, (int64_t)c->arrivals);
    rs_store_put_u32(p, (uint32_t)c->n);
    p += 4;
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];

        *p++ = e->type;
        *p++ = e->status;
        *p++ = e->flags;
        memcpy(p, e->currency, 3);
        p += 3;
        put_i64(&p, e->t);
        put_i64(&p, e->seq);
        put_i64(&p, (int64_t)e->arrival);
        put_i64(&p, e->native);
        put_i64(&p, e->mrr);
        put_i64(&p, (int64_t)double_bits(e->rate));
        put_i64(&p, e->start);
        put_i64(&p, e->end);
        put_i64(&p, e->cancel_at);
        rs_store_put_u32(p, e->conflicts);
        p += 4;
        p = rs_rec_put_str(p, (struct rs_str){ e->id, e->id_len }, ID_MAX);
        p = rs_rec_put_str(p, entry_sub(e), ID_MAX);
    }
    *out = buf;
    return (size_t)(p - buf);
}

static void customer_reserve(struct customer *c, size_t n)
{
    if (n > c->cap) {
        c->cap = n < 16 ? 16 : n * 2;
        c->e = rs_xrealloc(c->e, c->cap * sizeof(*c->e));
    }
}

static int customer_decode(struct customer *c, struct rs_bytes val, struct rs_err *err)
{
    const uint8_t *p = val.ptr;
    const uint8_t *end = p + val.len;
    int64_t v = 0;
    uint32_t n;

    if (val.len < 1 + 3 * 8 + 4 || p[0] != REC_VERSION) {
        return rs_err_set(err, RS_ESTORE,
                          "ledger customer record is corrupt or of another version");
    }
    p++;
    get_i64(&p, end, &c->asof_ms);
    get_i64(&p, end, &c->due_ms);
    get_i64(&p, end, &v);
    c->arrivals = (uint64_t)v;
    n = rs_store_get_u32(p);
    p += 4;
    customer_reserve(c, n);
    for (uint32_t i = 0; i < n; i++) {
        struct entry *e = &c->e[i];
        struct rs_str id, sub;

        if (end - p < ENTRY_FIXED) {
            return rs_err_set(err, RS_ESTORE, "ledger customer record is truncated");
        }
        memset(e, 0, offsetof(struct entry, id));
        e->type = *p++;
        e->status = *p++;
        e->flags = *p++;
        memcpy(e->currency, p, 3);
        e->currency[3] = '\0';
        p += 3;
        get_i64(&p, end, &e->t);
        get_i64(&p, end, &e->seq);
        get_i64(&p, end, &v);
        e->arrival = (uint64_t)v;
        get_i64(&p, end, &e->native);
        get_i64(&p, end, &e->mrr);
        get_i64(&p, end, &v);
        e->rate = bits_double((uint64_t)v);
        get_i64(&p, end, &e->start);
        get_i64(&p, end, &e->end);
        get_i64(&p, end, &e->cancel_at);
        e->conflicts = rs_store_get_u32(p);
        p += 4;
        p = rs_rec_get_str(p, end, &id);
        p = rs_rec_get_str(p, end, &sub);
        if (p == NULL) {
            return rs_err_set(err, RS_ESTORE, "ledger customer record is truncated");
        }
        e->id_len = (uint16_t)id.len;
        e->sub_len = (uint16_t)sub.len;
        if (id.len > 0) {
            memcpy(e->id, id.ptr, id.len);
        }
        if (sub.len > 0) {
            memcpy(e->sub, sub.ptr, sub.len);
        }
    }
    c->n = n;
    c->found = true;
    return 0;
}

static int customer_load(struct rs_store *st, uint32_t partition, struct rs_str account,
                         struct customer *c, struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    struct rs_bytes val;
    int rc;

    c->asof_ms = NONE;
    c->due_ms = NONE;
    c->arrivals = 0;
    c->n = 0;
    c->found = false;
    rc = rs_store_get(st, RS_DB_ENTITIES, customer_key(kbuf, partition, account), &val, err);
    if (rc == RS_ENOTFOUND) {
        rs_err_clear(err);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    return customer_decode(c, val, err);
}

static struct rs_bytes due_key(uint8_t *buf, uint32_t partition, int64_t due_ms,
                               struct rs_str account)
{
    size_t len = account.len < RS_EVENT_ID_MAX ? account.len : RS_EVENT_ID_MAX;

    rs_store_put_u32(buf, partition);
    buf[4] = RS_KIND_LEDGER_DUE;
    rs_store_put_u64(buf + 5, rs_store_i64_key(due_ms));
    if (len > 0) {
        memcpy(buf + 13, account.ptr, len);
    }
    return (struct rs_bytes){ buf, 13 + len };
}

/* Save c and move its due-index entry from old_due to c->due_ms. */
static int customer_save(struct rs_store *st, uint32_t partition, struct rs_str account,
                         const struct customer *c, int64_t old_due, struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX];
    uint8_t dbuf[13 + RS_EVENT_ID_MAX];
    uint8_t *val;
    size_t len = customer_encode(c, &val);
    int rc = rs_store_put(st, RS_DB_ENTITIES, customer_key(kbuf, partition, account),
                          (struct rs_bytes){ val, len }, err);

    free(val);
    if (rc != 0 || old_due == c->due_ms) {
        return rc;
    }
    if (old_due != NONE) {
        rc = rs_store_del(st, RS_DB_ENTITIES, due_key(dbuf, partition, old_due, account), err);
        if (rc == RS_ENOTFOUND) {
            rs_err_clear(err);
            rc = 0;
        }
    }
    if (rc == 0 && c->due_ms != NONE) {
        rc = rs_store_put(st, RS_DB_ENTITIES, due_key(dbuf, partition, c->due_ms, account),
                          (struct rs_bytes){ "", 0 }, err);
    }
    return rc;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int c;

    if (a->t != b->t) {
        return a->t < b->t ? -1 : 1;
    }
    if ((a->flags & EF_SEQ) && (b->flags & EF_SEQ) && a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }
    c = memcmp(a->id, b->id, a->id_len < b->id_len ? a->id_len : b->id_len);
    if (c != 0) {
        return c;
    }
    if (a->id_len != b->id_len) {
        return a->id_len < b->id_len ? -1 : 1;
    }
    return a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
}

/* ---- the fold -------------------------------------------------------------------------- */

struct change {
    int64_t t;
    size_t sub;   /* index into the fold's subscriptions */
    size_t order; /* position in generation: ties keep it */
    int64_t mrr, native;
    double rate;
    const char *currency;
    bool alive;
    bool delinquent;
};

struct substate {
    struct rs_str id;
    int64_t mrr, native;
    double rate;
    const char *currency;
    bool alive;
};

enum mv { MV_NONE = -1, MV_NEW, MV_EXPANSION, MV_REACTIVATION, MV_CONTRACTION, MV_CHURN };

struct group {
    int64_t t;
    int64_t b, a; /* customer MRR before and after */
    int kind;     /* enum mv */
    int64_t amount, fx;
    bool logo, delinquent;
};

struct mark { /* an entry's data-quality signal and its time */
    int64_t t;
    bool disagrees, scheduled;
};

struct scratch {
    struct customer cust;
    struct factset before, after;
    struct change *ch;
    size_t n_ch, cap_ch;
    struct group *g;
    size_t n_g, cap_g;
    struct substate *subs;
    size_t n_subs, cap_subs;
    struct mark *marks;
    size_t cap_marks;
    int64_t *months;
    size_t cap_months;
};

#define GROW(arr, n, cap)                                       \
    do {                                                        \
        if ((n) >= (cap)) {                                     \
            (cap) = (cap) == 0 ? 32 : (cap)*2;                  \
            (arr) = rs_xrealloc((arr), (cap) * sizeof(*(arr))); \
        }                                                       \
    } while (0)

/* Append a change of subscription `sub`, dropping its own changes it overtakes (effective
 * later than this one: they never took effect). seg: where this subscription's begin. */
static void change_push(struct scratch *w, size_t seg, const struct change *c)
{
    while (w->n_ch > seg && w->ch[w->n_ch - 1].t > c->t) {
        w->n_ch--;
    }
    GROW(w->ch, w->n_ch, w->cap_ch);
    w->ch[w->n_ch] = *c;
    w->ch[w->n_ch].order = w->n_ch;
    w->n_ch++;
}

static int64_t sub_contribution(const struct entry *e)
{
    return e->status == RS_SUB_ACTIVE || e->status == RS_SUB_PAST_DUE ? e->mrr : 0;
}

/* Is the label of e contradicted by the subscription's MRR before (prev) and after? */
static bool label_disagrees(const struct entry *e, int64_t prev, int64_t now)
{
    switch (e->type) {
    case RS_EV_SUB_EXPANDED:
        return !(now > prev);
    case RS_EV_SUB_CONTRACTED:
        return !(now < prev);
    case RS_EV_SUB_CHURNED:
        return now != 0;
    case RS_EV_SUB_STARTED:
        return prev != 0;
    case RS_EV_SUB_REACTIVATED:
        return !(prev == 0 && now > 0);
    default:
        return false;
    }
}

/* Step 1 for subscription s: its entries -> changes. */
static void fold_subscription(const struct rs_ledger_config *cfg, struct scratch *w,
                              const struct customer *c, size_t s, int64_t asof_ms, int64_t *due)
{
    struct rs_str id = w->subs[s].id;
    size_t seg = w->n_ch;
    int64_t prev = 0;        /* the subscription's MRR contribution after the last entry */
    int64_t paid_end = NONE; /* end of the last paid service period */
    int64_t past_due = NONE; /* when it became past due */
    int64_t pd_start = NONE; /* the past-due period's start */
    int64_t pd_end = NONE;   /* and its end, when known */
    int64_t first_paid = NONE, ended = NONE, refunded = NONE;
    int64_t scheduled = NONE;
    bool churned_delinquent = false;
    struct change cur = { 0 };

    cur.sub = s;
    cur.rate = 1.0;
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];

        if (!is_sub(e) && e->sub_len > 0 && !str_same(entry_sub(e), id)) {
            continue;
        }
        if (is_sub(e) && !str_same(entry_sub(e), id)) {
            continue;
        }
        if (past_due != NONE && cfg->past_due_auto_churn_ms > 0 &&
            e->t >= past_due + cfg->past_due_auto_churn_ms && !churned_delinquent) {
            struct change cut = cur;

            cut.t = paid_end != NONE ? paid_end : pd_start;
            cut.mrr = 0;
            cut.alive = false;
            cut.delinquent = true;
            change_push(w, seg, &cut);
            churned_delinquent = true;
        }
        if (!is_sub(e)) {
            if (e->type == RS_EV_INVOICE_REFUNDED && (e->flags & EF_FULL_REFUND)) {
                refunded = e->t;
            }
            if (e->type == RS_EV_INVOICE_PAID && past_due != NONE) {
                /* The payment recovers it: paying again (a reactivation after auto-churn). */
                cur.t = e->t;
                cur.alive = true;
                cur.delinquent = false;
                change_push(w, seg, &cur);
                /* The past-due period is now the last paid one: a later cancellation ends with
                 * it, never with the period before (which would date it before this). */
                paid_end = pd_end;
                past_due = NONE;
                churned_delinquent = false;
            }
            continue;
        }
        {
            int64_t now = sub_contribution(e);
            bool cancel = e->status == RS_SUB_CANCELED || e->status == RS_SUB_UNPAID;
            int64_t eff = e->t;

            w->marks[i].disagrees = label_disagrees(e, prev, now);
            w->marks[i].t = e->t;
            if ((e->flags & EF_CANCEL_AT) && !cancel) {
                if (scheduled != e->cancel_at) {
                    w->marks[i].scheduled = true;
                }
                scheduled = e->cancel_at;
            }
            if (cancel && cfg->churn_recognition == RS_CHURN_END_OF_PERIOD) {
                eff = (e->flags & EF_END) ? e->end : paid_end != NONE ? paid_end : e->t;
            }
            cur.t = eff;
            cur.mrr = now;
            cur.native = e->native;
            cur.rate = e->rate;
            cur.currency = e->currency;
            cur.alive = !cancel;
            cur.delinquent = false;
            if (cancel && cfg->churn_recognition == RS_CHURN_AT_SCHEDULE && scheduled != NONE) {
                /* Already gone when it was scheduled; the cancellation changes nothing. */
            } else {
                change_push(w, seg, &cur);
            }
            if (!cancel && (e->flags & EF_CANCEL_AT) &&
                cfg->churn_recognition == RS_CHURN_AT_SCHEDULE) {
                struct change gone = cur;

                gone.mrr = 0;
                gone.alive = false;
                change_push(w, seg, &gone);
            }
            if (now > 0 && first_paid == NONE) {
                first_paid = eff;
            }
            if (e->status == RS_SUB_ACTIVE) {
                if (e->flags & EF_END) {
                    paid_end = e->end;
                } else if (paid_end != NONE && e->start >= paid_end) {
                    paid_end = NONE; /* a new period of unknown end: the old end is stale */
                }
                past_due = NONE;
                churned_delinquent = false;
            } else if (e->status == RS_SUB_PAST_DUE) {
                if (past_due == NONE) {
                    past_due = e->t;
                    pd_start = e->start;
                    pd_end = (e->flags & EF_END) ? e->end : NONE;
                }
            } else {
                past_due = NONE;
            }
            if (cancel) {
                ended = e->t;
            }
            if (!(e->flags & EF_CANCEL_AT) && !cancel) {
                scheduled = NONE;
            }
            prev = now;
        }
    }
    if (past_due != NONE && cfg->past_due_auto_churn_ms > 0 && !churned_delinquent) {
        int64_t at = past_due + cfg->past_due_auto_churn_ms;

        if (asof_ms != NONE && at <= asof_ms) {
            struct change cut = cur;

            cut.t = paid_end != NONE ? paid_end : pd_start;
            cut.mrr = 0;
            cut.alive = false;
            cut.delinquent = true;
            change_push(w, seg, &cut);
        } else if (*due == NONE || at < *due) {
            *due = at;
        }
    }
    /* A full refund and a cancellation soon after the start: as if it never existed. */
    if (cfg->refund_void_new_business_ms > 0 && refunded != NONE && ended != NONE &&
        first_paid != NONE && ended - first_paid <= cfg->refund_void_new_business_ms &&
        refunded - first_paid <= cfg->refund_void_new_business_ms) {
        w->n_ch = seg;
    }
}

static int change_cmp(const void *pa, const void *pb)
{
    const struct change *a = pa, *b = pb;

    if (a->t != b->t) {
        return a->t < b->t ? -1 : 1;
    }
    return a->order < b->order ? -1 : a->order > b->order;
}

static void group_push(struct scratch *w, const struct group *g)
{
    GROW(w->g, w->n_g, w->cap_g);
    w->g[w->n_g++] = *g;
}

/* Step 2: changes -> classified groups. */
static void fold_groups(const struct rs_ledger_config *cfg, struct scratch *w)
{
    bool ever_paid = false;
    size_t last_churn = SIZE_MAX;
    int64_t mrr = 0;

    for (size_t s = 0; s < w->n_subs; s++) {
        w->subs[s].mrr = 0;
        w->subs[s].native = 0;
        w->subs[s].rate = 1.0;
        w->subs[s].currency = NULL;
        w->subs[s].alive = false;
    }
    if (w->n_ch > 1) {
        qsort(w->ch, w->n_ch, sizeof(*w->ch), change_cmp);
    }
    for (size_t i = 0; i < w->n_ch;) {
        struct group g = { .t = w->ch[i].t, .b = mrr, .kind = MV_NONE };
        int64_t a = 0, a_const = 0;
        bool alive = false;
        size_t j = i;

        for (; j < w->n_ch &&
               w->ch[j].t <
                   g.t + (cfg->classification_window_ms > 0 ? cfg->classification_window_ms : 1);
             j++) {
            const struct change *ch = &w->ch[j];

            g.delinquent = g.delinquent || ch->delinquent;
        }
        /* Recompute per subscription from the last change of each in the group. */
        for (size_t s = 0; s < w->n_subs; s++) {
            struct substate *st = &w->subs[s];
            const struct change *last = NULL;
            for (size_t k = i; k < j; k++) {
                if (w->ch[k].sub == s) {
                    last = &w->ch[k];
                }
            }
            if (last == NULL) {
                a += st->mrr;
                a_const += st->mrr;
                alive = alive || st->alive;
                continue;
            }
            a += last->mrr;
            if (st->mrr > 0 && last->mrr > 0 && st->currency != NULL && last->currency != NULL &&
                strcmp(st->currency, last->currency) == 0) {
                a_const += convert_at(last->native, st->rate);
            } else {
                a_const += last->mrr;
            }
            st->rate = last->rate; /* the next group measures from the new rate */
            st->mrr = last->mrr;
            st->native = last->native;
            st->currency = last->currency;
            st->alive = last->alive;
            alive = alive || st->alive;
        }
        g.a = a;
        g.fx = a - a_const;
        if (g.b == 0 && a_const > 0) {
            g.kind = ever_paid ? MV_REACTIVATION : MV_NEW;
            g.amount = a_const;
        } else if (g.b > 0 && a_const == 0) {
            g.kind = MV_CHURN;
            g.amount = g.b;
            g.logo = !alive || cfg->zero_mrr_is_logo_churn;
        } else if (a_const > g.b) {
            g.kind = MV_EXPANSION;
            g.amount = a_const - g.b;
        } else if (a_const < g.b) {
            g.kind = MV_CONTRACTION;
            g.amount = g.b - a_const;
        }
        if (g.kind != MV_CHURN) {
            g.delinquent = false;
        }
        if (g.kind == MV_REACTIVATION && last_churn != SIZE_MAX &&
            cfg->churn_reversal_window_ms > 0 &&
            g.t - w->g[last_churn].t <= cfg->churn_reversal_window_ms) {
            /* Retract both: the customer was paying its pre-churn MRR through the gap. */
            int64_t pre = w->g[last_churn].b;

            for (size_t k = last_churn; k < w->n_g; k++) {
                struct group *p = &w->g[k];

                if (k > last_churn) {
                    p->b = pre;
                }
                p->a = pre;
                p->fx = 0;
                p->kind = MV_NONE;
                p->amount = 0;
                p->logo = p->delinquent = false;
            }
            g.b = pre;
            g.fx = 0;
            g.kind = a > pre ? MV_EXPANSION : a < pre ? MV_CONTRACTION : MV_NONE;
            g.amount = a > pre ? a - pre : pre - a;
            last_churn = SIZE_MAX;
        } else if (g.kind == MV_CHURN) {
            last_churn = w->n_g;
        } else if (g.kind != MV_NONE) {
            last_churn = SIZE_MAX;
        }
        if (a > 0) {
            ever_paid = true;
        }
        mrr = a;
        group_push(w, &g);
        i = j;
    }
}

/* Customer MRR just before t_ms (the groups effective before it). */
static int64_t mrr_before(const struct scratch *w, int64_t t_ms)
{
    int64_t mrr = 0;

    for (size_t k = 0; k < w->n_g && w->g[k].t < t_ms; k++) {
        mrr = w->g[k].a;
    }
    return mrr;
}

static size_t customers_fact(struct factset *fs, size_t from, enum rs_grain grain, int64_t bucket)
{
    for (size_t k = fs->n; k > from; k--) {
        if (fs->v[k - 1].metric == RS_MLEDGER_CUSTOMERS && fs->v[k - 1].grains == GRAIN(grain) &&
            fs->v[k - 1].t_ms == bucket) {
            return k - 1;
        }
    }
    (void)fact_new(fs, RS_MLEDGER_CUSTOMERS, GRAIN(grain), bucket);
    return fs->n - 1;
}

/* Step 3: the facts of the groups, balances and entries. */
static void fold_facts(const struct rs_ledger_config *cfg, struct scratch *w,
                       const struct customer *c, int64_t asof_ms, struct factset *fs)
{
    const struct rs_zone *zone = cfg->zone;
    char cohort[32] = "";
    size_t first_new = SIZE_MAX, first_paid = SIZE_MAX;
    size_t cust_from = fs->n;

    for (size_t k = 0; k < w->n_g; k++) {
        if (w->g[k].kind == MV_NEW && first_new == SIZE_MAX) {
            first_new = k;
        }
        if (w->g[k].a > 0 && first_paid == SIZE_MAX) {
            first_paid = k;
        }
    }
    if (first_new != SIZE_MAX) {
        char label[16];
        const struct rs_str pair[1][2] = { { str_of("cohort"), { label, 0 } } };
        struct rs_str pairs[1][2];

        pairs[0][0] = pair[0][0];
        pairs[0][1] = (struct rs_str){ label, rs_bucket_label(zone, RS_GRAIN_MONTH,
                                                              month_start(zone, w->g[first_new].t),
                                                              label, sizeof(label)) };
        (void)rs_agg_dims(cohort, sizeof(cohort), (const struct rs_str(*)[2])pairs, 1);
    }
    for (size_t k = 0; k < w->n_g; k++) {
        const struct group *g = &w->g[k];
        struct fact *f;

        if (g->kind == MV_NONE && g->fx == 0) {
            continue;
        }
        f = fact_new(fs, RS_MLEDGER_MOVEMENTS, ALL_GRAINS, g->t);
        if (g->kind != MV_NONE) {
            f->n[g->kind] = g->amount;
        }
        f->n[5] = g->fx;
        f->n[6] = g->kind == MV_NEW;
        f->n[7] = g->kind == MV_REACTIVATION;
        if (cohort[0] != '\0') {
            static const int cohort_field[] = { [MV_NEW] = 0,
                                                [MV_EXPANSION] = 1,
                                                [MV_REACTIVATION] = 4,
                                                [MV_CONTRACTION] = 2,
                                                [MV_CHURN] = 3 };

            f = fact_new(fs, RS_MLEDGER_COHORT, GRAIN(RS_GRAIN_MONTH), g->t);
            strcpy(f->dims, cohort);
            if (g->kind != MV_NONE) {
                f->n[cohort_field[g->kind]] = g->amount;
            }
            f->n[5] = g->fx;
            f->n[6] = g->kind == MV_NEW;
        }
    }
    /* Per grain: the "same bucket" and "existing at the bucket start" facts. */
    for (int gr = 0; gr < RS_GRAIN__COUNT; gr++) {
        enum rs_grain grain = (enum rs_grain)gr;

        for (size_t k = 0; k < w->n_g; k++) {
            const struct group *g = &w->g[k];
            int64_t bucket;
            bool existing;
            struct fact *f;

            if (g->kind == MV_NONE || g->kind == MV_NEW || g->kind == MV_REACTIVATION) {
                continue;
            }
            bucket = rs_bucket_start(zone, grain, g->t);
            existing = mrr_before(w, bucket) > 0;
            f = &fs->v[customers_fact(fs, cust_from, grain, bucket)];
            if (g->kind == MV_CHURN && g->logo) {
                bool joined = false;

                for (size_t q = 0; q < w->n_g; q++) {
                    joined = joined || (w->g[q].kind == MV_NEW &&
                                        rs_bucket_start(zone, grain, w->g[q].t) == bucket);
                }
                f->n[0]++;
                f->n[1] += joined;
                f->n[5] += g->delinquent;
            }
            if (existing) {
                f->n[g->kind == MV_EXPANSION ? 2 : g->kind == MV_CONTRACTION ? 3 : 4] += g->amount;
            }
        }
        for (size_t i = 0; i < c->n; i++) {
            struct fact *f;

            if (!w->marks[i].disagrees && !w->marks[i].scheduled) {
                continue;
            }
            f = &fs->v[customers_fact(fs, cust_from, grain,
                                      rs_bucket_start(zone, grain, w->marks[i].t))];
            f->n[6] += w->marks[i].scheduled;
            f->n[7] += w->marks[i].disagrees;
        }
    }
    /* Data quality and cash, per entry. */
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];
        struct fact *f;

        if (w->marks[i].disagrees || e->conflicts > 0 || (e->flags & EF_FALLBACK)) {
            f = fact_new(fs, RS_MLEDGER_DQ, ALL_GRAINS, e->t);
            f->n[0] = w->marks[i].disagrees;
            f->n[1] = e->conflicts;
            f->n[2] = (e->flags & EF_FALLBACK) != 0;
        }
        if (!is_sub(e)) {
            int field = e->type == RS_EV_INVOICE_PAID       ? 0
                        : e->type == RS_EV_INVOICE_REFUNDED ? 2
                                                            : 4;

            f = fact_new(fs, RS_MLEDGER_CASH, ALL_GRAINS, e->t);
            f->n[field] = e->mrr;
            f->n[field + 1] = 1;
        }
    }
    /* Balances and T12 pairs: every month start from the first paying month to the horizon. */
    if (first_paid != SIZE_MAX && asof_ms != NONE) {
        int64_t horizon = month_start(zone, asof_ms);
        size_t n = 0;

        for (int64_t m = month_start(zone, w->g[first_paid].t); m <= horizon;
             m = rs_bucket_end(zone, RS_GRAIN_MONTH, m)) {
            GROW(w->months, n, w->cap_months);
            w->months[n++] = m;
        }
        GROW(w->months, n, w->cap_months);
        w->months[n] = rs_bucket_end(zone, RS_GRAIN_MONTH, w->months[n - 1]);
        for (size_t k = 1; k < n; k++) {
            int64_t m = w->months[k];
            int64_t mrr = mrr_before(w, m);
            struct fact *f;

            if (mrr > 0) {
                unsigned grains = GRAIN(RS_GRAIN_MONTH);

                if (rs_bucket_start(zone, RS_GRAIN_QUARTER, m) == m) {
                    grains |= GRAIN(RS_GRAIN_QUARTER);
                }
                f = fact_new(fs, RS_MLEDGER_BALANCE, grains, m);
                f->n[0] = 1;
                f->n[1] = mrr;
            }
        }
        /* Month k: MRR at the end of k - 12 is MRR before months[k - 11]. */
        for (size_t k = 12; k < n; k++) {
            int64_t prev = mrr_before(w, w->months[k - 11]);
            int64_t now = mrr_before(w, w->months[k + 1]);
            struct fact *f;

            if (prev > 0) {
                f = fact_new(fs, RS_MLEDGER_T12, GRAIN(RS_GRAIN_MONTH), w->months[k]);
                f->n[0] = 1;
                f->n[1] = prev;
                f->n[2] = now;
                f->n[3] = now < prev ? now : prev;
            }
        }
    }
    /* Drop the per-grain facts that came out empty. */
    for (size_t k = cust_from; k < fs->n;) {
        if (fact_is_zero(&fs->v[k])) {
            fs->v[k] = fs->v[--fs->n];
        } else {
            k++;
        }
    }
}

/* The facts of customer c as of asof_ms; *due: the next time-driven re-fold or NONE. */
static void fold(const struct rs_ledger_config *cfg, struct scratch *w, const struct customer *c,
                 int64_t asof_ms, struct factset *fs, int64_t *due)
{
    fs->n = 0;
    w->n_ch = 0;
    w->n_g = 0;
    w->n_subs = 0;
    *due = NONE;
    if (c->n > w->cap_marks) {
        w->cap_marks = c->n * 2;
        w->marks = rs_xrealloc(w->marks, w->cap_marks * sizeof(*w->marks));
    }
    if (c->n > 0) { /* a new customer has no marks yet: memset(NULL, ...) is undefined */
        memset(w->marks, 0, c->n * sizeof(*w->marks));
    }
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];
        bool known = false;

        if (!is_sub(e)) {
            continue;
        }
        for (size_t s = 0; s < w->n_subs && !known; s++) {
            known = str_same(w->subs[s].id, entry_sub(e));
        }
        if (!known) {
            GROW(w->subs, w->n_subs, w->cap_subs);
            w->subs[w->n_subs++].id = entry_sub(e);
        }
    }
    for (size_t s = 0; s < w->n_subs; s++) {
        fold_subscription(cfg, w, c, s, asof_ms, due);
    }
    fold_groups(cfg, w);
    fold_facts(cfg, w, c, asof_ms, fs);
}

/* ---- public: setup --------------------------------------------------------------------- */

void rs_ledger_config_defaults(struct rs_ledger_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    memcpy(cfg->reporting_currency, "USD", 4);
    cfg->classification_window_ms = 60 * MS_PER_MIN;
    cfg->churn_recognition = RS_CHURN_END_OF_PERIOD;
    cfg->zero_mrr_is_logo_churn = true;
    cfg->past_due_auto_churn_ms = 30 * MS_PER_DAY;
    cfg->churn_reversal_window_ms = 0;
    cfg->refund_void_new_business_ms = 0;
    cfg->finite_discounts_reduce_mrr = false;
}

void rs_ledger_init(struct rs_ledger *l, const struct rs_ledger_config *cfg, struct rs_agg *agg)
{
    memset(l, 0, sizeof(*l));
    l->cfg = *cfg;
    l->agg = agg;
    l->scratch = rs_xcalloc(1, sizeof(struct scratch));
}

void rs_ledger_release(struct rs_ledger *l)
{
    struct scratch *w;

    if (l == NULL || l->scratch == NULL) {
        return;
    }
    w = l->scratch;
    free(w->cust.e);
    free(w->before.v);
    free(w->after.v);
    free(w->ch);
    free(w->g);
    free(w->subs);
    free(w->marks);
    free(w->months);
    free(w);
    l->scratch = NULL;
}

/* ---- FX -------------------------------------------------------------------------------- */

/* Days are stored inverted so that a seek (first key >= ) finds the latest on or before. */
static struct rs_bytes fx_key(uint8_t *buf, struct rs_str currency, int64_t day_ms)
{
    rs_store_put_u32(buf, RS_LEDGER_STORE_WIDE);
    buf[4] = RS_KIND_FX;
    memset(buf + 5, 0, 3);
    memcpy(buf + 5, currency.ptr, currency.len < 3 ? currency.len : 3);
    rs_store_put_u64(buf + 8, ~rs_store_i64_key(utc_day(day_ms)));
    return (struct rs_bytes){ buf, 16 };
}

static bool is_reporting(const struct rs_ledger *l, struct rs_str currency)
{
    return !rs_str_is_set(currency) || str_same(currency, str_of(l->cfg.reporting_currency));
}

static int fx_rate(struct rs_ledger *l, struct rs_store *st, struct rs_str currency, int64_t day_ms,
                   double *rate, bool *fallback, struct rs_err *err)
{
    uint8_t kbuf[16];
    struct rs_bytes from = fx_key(kbuf, currency, day_ms);
    struct rs_bytes key, val;
    int rc;

    *rate = 1.0;
    *fallback = false;
    if (is_reporting(l, currency)) {
        return 0;
    }
    rc = rs_store_seek(st, RS_DB_ENTITIES, from, &key, &val, err);
    if (rc == RS_ENOTFOUND ||
        (rc == 0 && (key.len != 16 || memcmp(key.ptr, kbuf, 8) != 0 || val.len != 8))) {
        rs_err_clear(err);
        return RS_ENOTFOUND;
    }
    if (rc != 0) {
        return rc;
    }
    *rate = bits_double(rs_store_get_u64(val.ptr));
    *fallback = memcmp(key.ptr, kbuf, 16) != 0;
    return 0;
}

int rs_ledger_convert(struct rs_ledger *l, struct rs_store *st, struct rs_str currency,
                      int64_t day_ms, int64_t amount_minor, int64_t *out, bool *fallback,
                      struct rs_err *err)
{
    double rate;
    bool fb;
    int rc = fx_rate(l, st, currency, day_ms, &rate, &fb, err);

    if (fallback != NULL) {
        *fallback = fb;
    }
    if (rc == RS_ENOTFOUND) {
        return rs_err_set(err, RS_ENOTFOUND, "no fx rate for '%.*s' on or before day %" PRId64,
                          (int)currency.len, currency.ptr, floor_div(day_ms, MS_PER_DAY));
    }
    if (rc != 0) {
        return rc;
    }
    *out = is_reporting(l, currency) ? amount_minor : convert_at(amount_minor, rate);
    return 0;
}

/* The currency and day an event's amounts convert at; false when it has none. */
static bool event_money(const struct rs_event *ev, struct rs_str *currency, int64_t *day_ms)
{
    switch (ev->type) {
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED:
        *currency = ev->u.subscription.currency;
        *day_ms = ev->u.subscription.service_period_start_ms;
        return true;
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_REFUNDED:
    case RS_EV_INVOICE_PAYMENT_FAILED:
        *currency = ev->u.invoice.currency;
        *day_ms = ev->ts_ms;
        return true;
    case RS_EV_SPEND_RECORDED:
        *currency = ev->u.spend.currency;
        *day_ms = ev->ts_ms;
        return true;
    case RS_EV_FORECAST_SUBMITTED:
        *currency = ev->u.forecast.currency;
        *day_ms = ev->u.forecast.as_of_ms;
        return true;
    case RS_EV_FINANCIALS_REPORTED:
        *currency = ev->u.financials.currency;
        *day_ms = ev->ts_ms;
        return true;
    default:
        return false;
    }
}

int rs_ledger_admit(struct rs_ledger *l, struct rs_store *st, const struct rs_event *ev,
                    const char **reason, struct rs_err *err)
{
    struct rs_str currency;
    int64_t day_ms;
    double rate;
    bool fallback;
    int rc;

    *reason = NULL;
    if (!event_money(ev, &currency, &day_ms) || is_reporting(l, currency)) {
        return 0;
    }
    rc = fx_rate(l, st, currency, day_ms, &rate, &fallback, err);
    if (rc == RS_ENOTFOUND) {
        l->counters.rejected++;
        *reason = "fx_rate_missing";
        {
            time_t t = (time_t)(floor_div(day_ms, MS_PER_DAY) * 86400);
            struct tm tm;
            char day[16] = "?";

            if (gmtime_r(&t, &tm) != NULL) {
                (void)strftime(day, sizeof(day), "%Y-%m-%d", &tm);
            }
            rs_err_set(err, RS_ENOTFOUND,
                       "no fx.rate for '%.*s' on or before %s (UTC): send the rate first, then "
                       "this event again",
                       (int)currency.len, currency.ptr, day);
        }
        return 0;
    }
    return rc;
}

static int fx_put(struct rs_store *st, const struct rs_fx_rate *fx, struct rs_err *err)
{
    uint8_t kbuf[16], vbuf[8];

    rs_store_put_u64(vbuf, double_bits(fx->rate));
    return rs_store_put(st, RS_DB_ENTITIES, fx_key(kbuf, fx->currency, fx->date_ms),
                        (struct rs_bytes){ vbuf, 8 }, err);
}

/* ---- subscriptions and invoices -------------------------------------------------------- */

/* §1.4: one month of recurring price x quantity - permanent discounts (rounded). */
static int64_t normalised_mrr(const struct rs_ledger_config *cfg, const struct rs_subscription *s)
{
    int64_t x, q = s->quantity > 0 ? s->quantity : 0;

    if (s->has_mrr_after) {
        return s->mrr_after_minor;
    }
    if (!s->has_price) {
        return 0;
    }
    x = s->price_minor * q;
    if (s->discount_duration == RS_DISCOUNT_FOREVER || cfg->finite_discounts_reduce_mrr) {
        x -= s->discount_minor;
    }
    if (x <= 0) {
        return 0;
    }
    switch (s->interval) {
    case RS_BILL_DAY:
        return (x * 365 + 6) / 12;
    case RS_BILL_WEEK:
        return (x * 52 + 6) / 12;
    case RS_BILL_QUARTER:
        return (x + 1) / 3;
    case RS_BILL_SEMI_ANNUAL:
        return (x + 3) / 6;
    case RS_BILL_YEAR:
        return (x + 6) / 12;
    default:
        return x;
    }
}

static void copy_id(char *dst, uint16_t *len, struct rs_str s)
{
    size_t n = s.len < ID_MAX ? s.len : ID_MAX;

    if (n > 0) {
        memcpy(dst, s.ptr, n);
    }
    *len = (uint16_t)n;
}

/* The log entry of ev (a subscription.* or invoice.* event), converted. */
static int entry_of(struct rs_ledger *l, struct rs_store *st, const struct rs_event *ev,
                    struct entry *e, struct rs_err *err)
{
    struct rs_str currency = RS_STR_NULL;
    int64_t day_ms = 0;
    bool fallback = false;
    int rc;

    memset(e, 0, offsetof(struct entry, id));
    e->type = (uint8_t)ev->type;
    e->t = ev->ts_ms;
    e->seq = ev->seq;
    e->flags = ev->has_seq ? EF_SEQ : 0;
    e->start = e->end = e->cancel_at = NONE;
    copy_id(e->id, &e->id_len, ev->id);
    (void)event_money(ev, &currency, &day_ms);
    memcpy(e->currency, currency.ptr != NULL ? currency.ptr : "   ", 3);
    rc = fx_rate(l, st, currency, day_ms, &e->rate, &fallback, err);
    if (rc != 0) {
        return rc == RS_ENOTFOUND ? rs_err_set(err, RS_ENOTFOUND, "no fx rate for '%.*s'",
                                               (int)currency.len, currency.ptr)
                                  : rc;
    }
    e->flags |= fallback ? EF_FALLBACK : 0;
    if (is_sub(e)) {
        const struct rs_subscription *s = &ev->u.subscription;

        e->status = (uint8_t)s->status;
        e->native = normalised_mrr(&l->cfg, s);
        e->start = s->service_period_start_ms;
        if (s->has_period_end) {
            e->end = s->service_period_end_ms;
            e->flags |= EF_END;
        }
        if (s->has_cancel_at) {
            e->cancel_at = s->cancel_at_ms;
            e->flags |= EF_CANCEL_AT;
        }
        copy_id(e->sub, &e->sub_len, s->subscription_id);
    } else {
        const struct rs_invoice *inv = &ev->u.invoice;

        e->native = inv->amount_minor;
        if (inv->refund_type == RS_REFUND_FULL) {
            e->flags |= EF_FULL_REFUND;
        }
        copy_id(e->sub, &e->sub_len, inv->subscription_id);
    }
    e->mrr = is_reporting(l, currency) ? e->native : convert_at(e->native, e->rate);
    return 0;
}

/* Insert e in order. Same subscription and time with no seq: the later arrival replaces the
 * earlier (§3.2), a conflict when the amounts differ. Returns the entry's index. */
static size_t customer_insert(struct customer *c, struct entry *e)
{
    e->arrival = ++c->arrivals;
    if (is_sub(e)) {
        for (size_t i = 0; i < c->n; i++) {
            struct entry *o = &c->e[i];

            if (is_sub(o) && o->t == e->t && str_same(entry_sub(o), entry_sub(e)) &&
                !((o->flags & EF_SEQ) && (e->flags & EF_SEQ))) {
                e->conflicts = o->conflicts + (o->mrr != e->mrr || o->status != e->status);
                *o = *e;
                qsort(c->e, c->n, sizeof(*c->e), entry_cmp);
                goto found;
            }
        }
    }
    customer_reserve(c, c->n + 1);
    c->e[c->n++] = *e;
    qsort(c->e, c->n, sizeof(*c->e), entry_cmp);
found:
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].arrival == e->arrival) {
            return i;
        }
    }
    return 0;
}

/*
 * Re-fold the customer `account` as of max(stored, watermark_ms), with `e` inserted first
 * when not NULL, and apply the difference of its facts.
 */
static int customer_refold(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                           struct rs_str account, struct entry *e, int64_t watermark_ms,
                           struct rs_err *err)
{
    struct scratch *w = l->scratch;
    struct customer *c = &w->cust;
    int64_t old_due, due;
    size_t at = 0;
    int rc;

    rc = customer_load(st, partition, account, c, err);
    if (rc != 0) {
        return rc;
    }
    if (!c->found && e == NULL) {
        return 0;
    }
    old_due = c->due_ms;
    fold(&l->cfg, w, c, c->asof_ms, &w->before, &due);
    if (e != NULL) {
        at = customer_insert(c, e);
    }
    if (watermark_ms != NONE && (c->asof_ms == NONE || watermark_ms > c->asof_ms)) {
        c->asof_ms = watermark_ms;
    }
    fold(&l->cfg, w, c, c->asof_ms, &w->after, &c->due_ms);
    if (e != NULL && w->marks[at].disagrees) {
        l->counters.disagreeing++;
    }
    l->counters.refolds++;
    rc = facts_diff(l, st, partition, &w->before, &w->after, err);
    if (rc == 0) {
        rc = customer_save(st, partition, account, c, old_due, err);
    }
    return rc;
}

static struct rs_str event_account(const struct rs_event *ev)
{
    struct rs_str id = ev->type <= RS_EV_SUB_REACTIVATED && ev->type >= RS_EV_SUB_STARTED
                           ? ev->u.subscription.account_id
                           : ev->u.invoice.account_id;

    return rs_str_is_set(id) ? id : ev->account;
}

static int apply_customer(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                          const struct rs_event *ev, int64_t watermark_ms, struct rs_err *err)
{
    struct rs_str account = event_account(ev);
    struct entry *e;
    int rc;

    if (!rs_str_is_set(account)) {
        return 0; /* no customer to keep it under */
    }
    e = rs_xmalloc(sizeof(*e));
    rc = entry_of(l, st, ev, e, err);
    if (rc == 0) {
        rc = customer_refold(l, st, partition, account, e, watermark_ms, err);
    }
    free(e);
    return rc;
}

/* ---- spend ------------------------------------------------------------------------------ */

/* Days since 1970-01-01 of t's local date. */
static int64_t local_day(const struct rs_zone *zone, int64_t t_ms)
{
    return floor_div(t_ms + rs_zone_offset_ms(zone, t_ms), MS_PER_DAY);
}

static int apply_spend(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                       const struct rs_event *ev, struct rs_err *err)
{
    const struct rs_spend *sp = &ev->u.spend;
    const struct rs_zone *zone = l->cfg.zone;
    int64_t amount, first = local_day(zone, sp->period_start_ms);
    int64_t days = local_day(zone, sp->period_end_ms) - first;
    int64_t done_days = 0, done_amount = 0;
    int rc =
        rs_ledger_convert(l, st, sp->currency, ev->ts_ms, sp->amount_minor, &amount, NULL, err);

    if (rc != 0) {
        return rc;
    }
    if (days < 1) {
        days = 1;
    }
    for (int64_t m = month_start(zone, sp->period_start_ms); done_days < days;
         m = rs_bucket_end(zone, RS_GRAIN_MONTH, m)) {
        int64_t end_day = local_day(zone, rs_bucket_end(zone, RS_GRAIN_MONTH, m)) - first;
        int64_t cum = end_day < days ? end_day : days;
        /* Parts by cumulative days: floor(amount x cum / days) never overflows this way. */
        int64_t q = amount / days, r = amount % days;
        int64_t upto = q * cum + floor_div(r * cum, days);
        struct fact f;
        struct rs_agg_key key = { partition, RS_MLEDGER_SPEND, RS_GRAIN_DAY, 0, { "", 0 } };
        struct rs_agg_fact af;

        if (cum <= done_days) {
            continue;
        }
        memset(&f, 0, sizeof(f));
        f.n[0] = upto - done_amount;
        f.n[1 + (int)sp->allocation] = f.n[0];
        f.n[sp->function == RS_FN_SALES ? 4 : 5] = f.n[0];
        done_amount = upto;
        done_days = cum;
        memset(&af, 0, sizeof(af));
        memcpy(af.n, f.n, sizeof(af.n));
        rc = rs_agg_add(l->agg, st, zone, &key, GRAIN(RS_GRAIN_MONTH) | GRAIN(RS_GRAIN_QUARTER), m,
                        +1, &af, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- forecasts and financials ----------------------------------------------------------- */

static int period_start(const struct rs_zone *zone, const struct rs_period *p, int64_t *out,
                        struct rs_err *err)
{
    char label[16];
    int n = snprintf(label, sizeof(label), "%04u-%02u", (unsigned)p->year,
                     (unsigned)(p->first_month > 0 ? p->first_month : 1));

    return rs_bucket_parse(zone, RS_GRAIN_MONTH, label, (size_t)n, out, err);
}

/* A record of versions: u32 n, then per version i64 as_of, u64 arrival, i64 amount. */
#define FC_VERSION 24

static struct rs_bytes named_key(uint8_t *buf, uint32_t partition, uint8_t kind, const char *a,
                                 size_t alen, struct rs_str b)
{
    size_t len = 0;

    rs_store_put_u32(buf, partition);
    buf[4] = kind;
    if (alen > KEY_MAX - 5 - 1 - b.len) {
        alen = b.len < KEY_MAX - 6 ? KEY_MAX - 6 - b.len : 0;
    }
    memcpy(buf + 5, a, alen);
    len = 5 + alen;
    buf[len++] = '|';
    if (b.len > 0 && len + b.len <= KEY_MAX) {
        memcpy(buf + len, b.ptr, b.len);
        len += b.len;
    }
    return (struct rs_bytes){ buf, len };
}

static void forecast_facts(const struct rs_ledger *l, const uint8_t *v, size_t n, int64_t lock_ms,
                           int64_t *out /* [4] */)
{
    int64_t lock_asof = NONE, latest_asof = NONE;
    uint64_t lock_arr = 0, latest_arr = 0;

    (void)l;
    memset(out, 0, 4 * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = v + i * FC_VERSION;
        int64_t asof = (int64_t)rs_store_get_u64(p);
        uint64_t arr = rs_store_get_u64(p + 8);
        int64_t amount = (int64_t)rs_store_get_u64(p + 16);

        if (asof <= lock_ms && (asof > lock_asof || (asof == lock_asof && arr > lock_arr))) {
            lock_asof = asof, lock_arr = arr, out[0] = amount, out[1] = 1;
        }
        if (asof > latest_asof || (asof == latest_asof && arr > latest_arr)) {
            latest_asof = asof, latest_arr = arr, out[2] = amount;
        }
    }
    out[3] = (int64_t)n;
}

static int apply_forecast(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                          const struct rs_event *ev, struct rs_err *err)
{
    const struct rs_forecast *fc = &ev->u.forecast;
    const struct rs_zone *zone = l->cfg.zone;
    static const char *const scopes[] = { "company", "team", "rep" };
    static const char *const measures[] = { "net_new_arr", "bookings", "ending_arr" };
    static const char *const cats[] = { "commit", "best_case", "pipeline" };
    struct rs_str pairs[4][2] = {
        { str_of("category"), str_of(cats[fc->category]) },
        { str_of("measure"), str_of(measures[fc->measure]) },
        { str_of("scope"), str_of(scopes[fc->scope]) },
        { str_of("scope_id"), fc->scope_id },
    };
    char dims[RS_AGG_DIMS_MAX + 1];
    size_t dlen = rs_agg_dims(dims, sizeof(dims), (const struct rs_str(*)[2])pairs,
                              rs_str_is_set(fc->scope_id) ? 4 : 3);
    uint8_t kbuf[KEY_MAX];
    struct rs_bytes key = named_key(kbuf, partition, RS_KIND_FORECAST, dims, dlen, fc->period.text);
    struct rs_bytes val;
    enum rs_grain grain = fc->period.months == 1 ? RS_GRAIN_MONTH : RS_GRAIN_QUARTER;
    int64_t start, lock_ms, amount, before[4], after[4];
    uint8_t *rec;
    size_t n = 0;
    uint64_t arrivals = 0;
    int rc;

    rc = period_start(zone, &fc->period, &start, err);
    if (rc == 0) {
        rc = rs_ledger_convert(l, st, fc->currency, fc->as_of_ms, fc->amount_minor, &amount, NULL,
                               err);
    }
    if (rc != 0) {
        return rc;
    }
    /* The end of the period's first business day (sales calendar; the first day without). */
    lock_ms = l->cfg.sales_hours != NULL ? rs_calendar_add(l->cfg.sales_hours, start, 0) : start;
    if (lock_ms != INT64_MAX) {
        lock_ms = rs_bucket_end(zone, RS_GRAIN_DAY, rs_bucket_start(zone, RS_GRAIN_DAY, lock_ms));
    }
    rc = rs_store_get(st, RS_DB_ENTITIES, key, &val, err);
    if (rc == RS_ENOTFOUND) {
        rs_err_clear(err);
        val = (struct rs_bytes){ NULL, 0 };
    } else if (rc != 0) {
        return rc;
    } else if (val.len < 12 || (val.len - 12) % FC_VERSION != 0) {
        return rs_err_set(err, RS_ESTORE, "forecast record of %zu bytes is corrupt", val.len);
    } else {
        n = rs_store_get_u32(val.ptr);
        arrivals = rs_store_get_u64((const uint8_t *)val.ptr + 4);
    }
    rec = rs_xmalloc(12 + (n + 1) * FC_VERSION);
    if (n > 0) {
        memcpy(rec + 12, (const uint8_t *)val.ptr + 12, n * FC_VERSION);
    }
    forecast_facts(l, rec + 12, n, lock_ms, before);
    rs_store_put_u64(rec + 12 + n * FC_VERSION, (uint64_t)fc->as_of_ms);
    rs_store_put_u64(rec + 12 + n * FC_VERSION + 8, ++arrivals);
    rs_store_put_u64(rec + 12 + n * FC_VERSION + 16, (uint64_t)amount);
    n++;
    rs_store_put_u32(rec, (uint32_t)n);
    rs_store_put_u64(rec + 4, arrivals);
    forecast_facts(l, rec + 12, n, lock_ms, after);
    rc = rs_store_put(st, RS_DB_ENTITIES, key, (struct rs_bytes){ rec, 12 + n * FC_VERSION }, err);
    free(rec);
    for (int sign = -1; sign <= 1 && rc == 0; sign += 2) {
        struct rs_agg_key ak = { partition, RS_MLEDGER_FORECAST, grain, start, { dims, dlen } };
        struct rs_agg_fact af;

        memset(&af, 0, sizeof(af));
        memcpy(af.n, sign < 0 ? before : after, 4 * sizeof(int64_t));
        if (sign < 0 && n == 1) {
            continue;
        }
        rc = rs_agg_add(l->agg, st, zone, &ak, GRAIN(grain), start, sign, &af, err);
    }
    return rc;
}

/* Financials record: i64 ts, u64 arrival, then the 7 counters of the cell. */
#define FIN_REC (16 + 7 * 8)

static int apply_financials(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                            const struct rs_event *ev, struct rs_err *err)
{
    const struct rs_financials *fin = &ev->u.financials;
    const struct rs_zone *zone = l->cfg.zone;
    uint8_t kbuf[KEY_MAX], rec[FIN_REC];
    struct rs_bytes key = named_key(kbuf, partition, RS_KIND_FINANCIALS, "", 0, fin->period.text);
    struct rs_bytes val;
    bool year = fin->period.months == 12;
    enum rs_grain grain = fin->period.months == 1 ? RS_GRAIN_MONTH : RS_GRAIN_QUARTER;
    const char *dims = year ? "period=year" : "";
    int64_t start, n[7] = { 0 }, old[7] = { 0 };
    uint64_t arrival = 1;
    int64_t v;
    bool had = false;
    int rc = period_start(zone, &fin->period, &start, err);

    if (rc != 0) {
        return rc;
    }
    rc = rs_store_get(st, RS_DB_ENTITIES, key, &val, err);
    if (rc == 0 && val.len == FIN_REC) {
        had = true;
        memcpy(rec, val.ptr, FIN_REC);
        arrival = rs_store_get_u64(rec + 8) + 1;
        for (int i = 0; i < 7; i++) {
            old[i] = (int64_t)rs_store_get_u64(rec + 16 + 8 * i);
        }
        if ((int64_t)rs_store_get_u64(rec) > ev->ts_ms) {
            return 0; /* an older report than the one standing */
        }
    } else if (rc == RS_ENOTFOUND) {
        rs_err_clear(err);
    } else if (rc == 0) {
        return rs_err_set(err, RS_ESTORE, "financials record of %zu bytes is corrupt", val.len);
    } else {
        return rc;
    }
    rc = rs_ledger_convert(l, st, fin->currency, ev->ts_ms, fin->revenue_minor, &n[0], NULL, err);
    if (rc == 0 && fin->has_gross_margin) {
        n[1] = (int64_t)llround(fin->gross_margin_pct * 100.0);
        n[5] |= 1;
    }
    if (rc == 0 && fin->has_ebitda) {
        rc = rs_ledger_convert(l, st, fin->currency, ev->ts_ms, fin->ebitda_minor, &v, NULL, err);
        n[2] = v, n[5] |= 2;
    }
    if (rc == 0 && fin->has_fcf) {
        rc = rs_ledger_convert(l, st, fin->currency, ev->ts_ms, fin->free_cash_flow_minor, &v, NULL,
                               err);
        n[3] = v, n[5] |= 4;
    }
    if (rc == 0 && fin->has_operating_income) {
        rc = rs_ledger_convert(l, st, fin->currency, ev->ts_ms, fin->operating_income_minor, &v,
                               NULL, err);
        n[4] = v, n[5] |= 8;
    }
    if (rc != 0) {
        return rc;
    }
    n[6] = 1;
    rs_store_put_u64(rec, (uint64_t)ev->ts_ms);
    rs_store_put_u64(rec + 8, arrival);
    for (int i = 0; i < 7; i++) {
        rs_store_put_u64(rec + 16 + 8 * i, (uint64_t)n[i]);
    }
    rc = rs_store_put(st, RS_DB_ENTITIES, key, (struct rs_bytes){ rec, FIN_REC }, err);
    for (int sign = -1; sign <= 1 && rc == 0; sign += 2) {
        struct rs_agg_key ak = { partition, RS_MLEDGER_FINANCIALS, grain, start, str_of(dims) };
        struct rs_agg_fact af;

        if (sign < 0 && !had) {
            continue;
        }
        memset(&af, 0, sizeof(af));
        memcpy(af.n, sign < 0 ? old : n, sizeof(n));
        rc = rs_agg_add(l->agg, st, zone, &ak, GRAIN(grain), start, sign, &af, err);
    }
    return rc;
}

/* ---- public: apply and advance ----------------------------------------------------------- */

int rs_ledger_apply(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                    const struct rs_event *ev, int64_t watermark_ms, struct rs_err *err)
{
    switch (ev->type) {
    case RS_EV_SUB_STARTED:
    case RS_EV_SUB_RENEWED:
    case RS_EV_SUB_EXPANDED:
    case RS_EV_SUB_CONTRACTED:
    case RS_EV_SUB_CHURNED:
    case RS_EV_SUB_REACTIVATED:
    case RS_EV_INVOICE_PAID:
    case RS_EV_INVOICE_REFUNDED:
    case RS_EV_INVOICE_PAYMENT_FAILED:
        return apply_customer(l, st, partition, ev, watermark_ms, err);
    case RS_EV_SPEND_RECORDED:
        return apply_spend(l, st, partition, ev, err);
    case RS_EV_FORECAST_SUBMITTED:
        return apply_forecast(l, st, partition, ev, err);
    case RS_EV_FINANCIALS_REPORTED:
        return apply_financials(l, st, partition, ev, err);
    case RS_EV_FX_RATE:
        return fx_put(st, &ev->u.fx_rate, err);
    default:
        return 0;
    }
}

static struct rs_bytes state_key(uint8_t *buf, uint32_t partition)
{
    return rs_entity_key(buf, partition, RS_KIND_LEDGER_STATE, RS_STR_NULL);
}

/*
 * Re-fold the customers named by the partition's entity keys of `kind`, in key order: the
 * account follows `skip` bytes after the kind. With `due` (RS_KIND_LEDGER_DUE: a due time comes
 * first), the walk stops at the first due time after the watermark.
 */
static int refold_kind(struct rs_ledger *l, struct rs_store *st, uint32_t partition, uint8_t kind,
                       size_t skip, bool due, int64_t watermark_ms, struct rs_err *err)
{
    uint8_t from[13 + RS_EVENT_ID_MAX + 1];
    size_t from_len = 5;

    rs_store_put_u32(from, partition);
    from[4] = kind;
    for (;;) {
        struct rs_bytes key, val;
        char account[RS_EVENT_ID_MAX];
        size_t alen;
        int rc =
            rs_store_seek(st, RS_DB_ENTITIES, (struct rs_bytes){ from, from_len }, &key, &val, err);

        if (rc == RS_ENOTFOUND) {
            rs_err_clear(err);
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        if (key.len < 5 + skip || memcmp(key.ptr, from, 5) != 0 ||
            (due &&
             rs_store_key_i64(rs_store_get_u64((const uint8_t *)key.ptr + 5)) > watermark_ms)) {
            return 0;
        }
        alen = key.len - 5 - skip;
        memcpy(account, (const uint8_t *)key.ptr + 5 + skip, alen);
        /* Next time start after this key, whatever the re-fold does with it. */
        memcpy(from, key.ptr, key.len);
        from[key.len] = 0;
        from_len = key.len + 1;
        rc = customer_refold(l, st, partition, (struct rs_str){ account, alen }, NULL, watermark_ms,
                             err);
        if (rc != 0) {
            return rc;
        }
    }
}

int rs_ledger_advance(struct rs_ledger *l, struct rs_store *st, uint32_t partition,
                      int64_t watermark_ms, struct rs_err *err)
{
    uint8_t kbuf[RS_ENTITY_KEY_MAX], vbuf[8];
    struct rs_bytes key = state_key(kbuf, partition), val;
    int64_t horizon, stored = NONE;
    int rc;

    if (watermark_ms == NONE) {
        return 0;
    }
    /* Every customer whose due time passed, then (a new month) every customer. */
    rc = refold_kind(l, st, partition, RS_KIND_LEDGER_DUE, 8, true, watermark_ms, err);
    if (rc != 0) {
        return rc;
    }
    horizon = month_start(l->cfg.zone, watermark_ms);
    rc = rs_store_get(st, RS_DB_ENTITIES, key, &val, err);
    if (rc == 0 && val.len == 8) {
        stored = (int64_t)rs_store_get_u64(val.ptr);
    } else if (rc == RS_ENOTFOUND) {
        rs_err_clear(err);
    } else if (rc != 0) {
        return rc;
    }
    if (stored != NONE && stored >= horizon) {
        return 0;
    }
    rc = refold_kind(l, st, partition, RS_KIND_CUSTOMER, 0, false, watermark_ms, err);
    if (rc == 0) {
        rs_store_put_u64(vbuf, (uint64_t)horizon);
        rc = rs_store_put(st, RS_DB_ENTITIES, key, (struct rs_bytes){ vbuf, 8 }, err);
    }
    return rc;
}
