#define RS_LOG_MODULE "timer"
#include "timer.h"

#include "log.h"
#include "mem.h"

#include <glib.h>

#include <string.h>

/* timers key: partition(4) deadline(8) rule(1) entity; timer_index key: partition(4) rule(1) entity
 */
#define TIMER_KEY_MAX (13 + RS_TIMER_ENTITY_MAX)
#define INDEX_KEY_MAX (5 + RS_TIMER_ENTITY_MAX)

static int check_entity(struct rs_bytes entity, struct rs_err *err)
{
    if (entity.len == 0 || entity.len > RS_TIMER_ENTITY_MAX) {
        return rs_err_set(err, RS_ESTORE, "timer entity id of %zu bytes (1 to %d allowed)",
                          entity.len, RS_TIMER_ENTITY_MAX);
    }
    return 0;
}

static struct rs_bytes timer_key(uint8_t *buf, uint32_t partition, int64_t deadline_ms,
                                 uint8_t rule, struct rs_bytes entity)
{
    rs_store_put_u32(buf, partition);
    rs_store_put_u64(buf + 4, rs_store_i64_key(deadline_ms));
    buf[12] = rule;
    memcpy(buf + 13, entity.ptr, entity.len);
    return (struct rs_bytes){ buf, 13 + entity.len };
}

static struct rs_bytes index_key(uint8_t *buf, uint32_t partition, uint8_t rule,
                                 struct rs_bytes entity)
{
    rs_store_put_u32(buf, partition);
    buf[4] = rule;
    memcpy(buf + 5, entity.ptr, entity.len);
    return (struct rs_bytes){ buf, 5 + entity.len };
}

int rs_timer_deadline(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                      int64_t *deadline_ms, struct rs_err *err)
{
    uint8_t ibuf[INDEX_KEY_MAX];
    struct rs_bytes val;
    int rc = check_entity(entity, err);

    if (rc != 0) {
        return rc;
    }
    rc = rs_store_get(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity), &val, err);
    if (rc != 0) {
        return rc;
    }
    if (val.len != 8) {
        return rs_err_set(err, RS_ESTORE, "timer index record of %zu bytes, expected 8", val.len);
    }
    *deadline_ms = rs_store_key_i64(rs_store_get_u64(val.ptr));
    return 0;
}

/* ---- The near view ----
 *
 * Inside a batch, each partition's earliest timers are also kept in memory, in the timers
 * database's key order, so that finding the next due timer costs no seek. A seek would first
 * write the database's pending changes into the transaction (store.c), once per event that
 * moves the watermark past a deadline; and a timer armed and cancelled within one batch (a
 * lead touched soon after it was created) would then cost LMDB four writes instead of none.
 * LMDB, through the batch cache, stays the state: the view is built from it when first
 * needed, again when its near end runs out, and from scratch after a batch was dropped
 * (rs_store_epoch()).
 *
 * For a loaded partition: the tree holds exactly the stored timers whose key is below `bound`
 * (all of them when not `bounded`), and far_ms is at most the deadline of every stored timer
 * at or above the bound. The tree holds at most twice `limit` timers: past that, the latest go
 * back to being LMDB's alone and the bound comes down.
 */
#define VIEW_LIMIT_DEFAULT 4096

struct tnode {
    uint16_t klen;
    uint8_t plen;
    uint8_t bytes[]; /* the timers key, then the payload */
};

struct near {
    bool loaded;
    bool bounded;
    uint16_t bound_len;
    int64_t far_ms;
    GTree *tree; /* struct tnode, by key */
    uint8_t bound[TIMER_KEY_MAX];
};

struct view {
    uint64_t epoch;
    size_t limit;
    GPtrArray *parts; /* struct near *, by partition (NULL: never used) */
};

/* LMDB's default order: bytes, then the shorter key first. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static gint node_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    const struct tnode *x = a;
    const struct tnode *y = b;

    (void)unused;
    return key_cmp(x->bytes, x->klen, y->bytes, y->klen);
}

static int64_t key_deadline(const uint8_t *key)
{
    return rs_store_key_i64(rs_store_get_u64(key + 4));
}

static void near_unload(struct near *nr)
{
    if (nr->tree != NULL) {
        g_tree_destroy(nr->tree);
        nr->tree = NULL;
    }
    nr->loaded = false;
}

static void view_release(void *p)
{
    struct view *v = p;

    for (guint i = 0; i < v->parts->len; i++) {
        struct near *nr = v->parts->pdata[i];

        if (nr != NULL) {
            near_unload(nr);
            free(nr);
        }
    }
    g_ptr_array_free(v->parts, TRUE);
    free(v);
}

static struct view *view_of(struct rs_store *st)
{
    struct view *v = rs_store_view(st, RS_VIEW_TIMERS);

    if (v == NULL) {
        v = rs_xcalloc(1, sizeof(*v));
        v->epoch = rs_store_epoch(st);
        v->limit = VIEW_LIMIT_DEFAULT;
        v->parts = g_ptr_array_new();
        rs_store_set_view(st, RS_VIEW_TIMERS, v, view_release);
    }
    if (v->epoch != rs_store_epoch(st)) {
        /* Writes the view saw were dropped: forget it all. */
        for (guint i = 0; i < v->parts->len; i++) {
            if (v->parts->pdata[i] != NULL) {
                near_unload(v->parts->pdata[i]);
            }
        }
        v->epoch = rs_store_epoch(st);
    }
    return v;
}

void rs_timer_view_limit(struct rs_store *st, size_t limit)
{
    struct view *v = view_of(st);

    v->limit = limit > 0 ? limit : 1;
    for (guint i = 0; i < v->parts->len; i++) {
        if (v->parts->pdata[i] != NULL) {
            near_unload(v->parts->pdata[i]);
        }
    }
}

static void view_add(struct view *v, struct near *nr, const uint8_t *key, size_t klen,
                     struct rs_bytes payload);

/* (Re)build the view of `partition` from the batch: its first `limit` timers. */
static int near_load(struct rs_store *st, struct view *v, struct near *nr, uint32_t partition,
                     struct rs_err *err)
{
    uint8_t from[TIMER_KEY_MAX + 1];
    size_t from_len = 4;
    size_t n = 0;

    near_unload(nr);
    nr->tree = g_tree_new_full(node_cmp, NULL, free, NULL);
    nr->loaded = true;
    nr->bounded = false;
    nr->far_ms = RS_TIMER_NONE;
    rs_store_put_u32(from, partition);
    for (;;) {
        struct rs_bytes key, val;
        int rc =
            rs_store_seek(st, RS_DB_TIMERS, (struct rs_bytes){ from, from_len }, &key, &val, err);

        if (rc == RS_ENOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            near_unload(nr);
            return rc;
        }
        if (key.len < 14 || key.len > TIMER_KEY_MAX || rs_store_get_u32(key.ptr) != partition) {
            return 0;
        }
        if (n == v->limit) {
            nr->bounded = true;
            nr->bound_len = (uint16_t)key.len;
            memcpy(nr->bound, key.ptr, key.len);
            nr->far_ms = key_deadline(key.ptr);
            return 0;
        }
        view_add(v, nr, key.ptr, key.len, val);
        n++;
        /* The smallest key after this one. */
        memcpy(from, key.ptr, key.len);
        from[key.len] = 0;
        from_len = key.len + 1;
    }
}

/*
 * The view of `partition`, or NULL outside a batch (the timers are then read from LMDB).
 * load: build it if it is not loaded (else a partition not loaded gets NULL: LMDB will tell
 * when it is built).
 */
static int near_get(struct rs_store *st, uint32_t partition, bool load, struct near **out,
                    struct rs_err *err)
{
    struct view *v;
    struct near *nr;

    *out = NULL;
    if (!rs_store_in_batch(st)) {
        return 0;
    }
    v = view_of(st);
    if (partition >= v->parts->len) {
        g_ptr_array_set_size(v->parts, (gint)(partition + 1));
    }
    nr = v->parts->pdata[partition];
    if (nr == NULL) {
        nr = rs_xcalloc(1, sizeof(*nr));
        v->parts->pdata[partition] = nr;
    }
    if (!nr->loaded) {
        int rc;

        if (!load) {
            return 0;
        }
        rc = near_load(st, v, nr, partition, err);
        if (rc != 0) {
            return rc;
        }
    }
    *out = nr;
    return 0;
}

static bool near_holds(const struct near *nr, const uint8_t *key, size_t klen)
{
    return !nr->bounded || key_cmp(key, klen, nr->bound, nr->bound_len) < 0;
}

static void view_add(struct view *v, struct near *nr, const uint8_t *key, size_t klen,
                     struct rs_bytes payload)
{
    size_t plen = payload.len < RS_TIMER_PAYLOAD_MAX ? payload.len : RS_TIMER_PAYLOAD_MAX;
    struct tnode *node;

    if (!near_holds(nr, key, klen)) {
        int64_t d = key_deadline(key);

        if (d < nr->far_ms) {
            nr->far_ms = d;
        }
        return;
    }
    node = rs_xmalloc(sizeof(*node) + klen + plen);
    node->klen = (uint16_t)klen;
    node->plen = (uint8_t)plen;
    memcpy(node->bytes, key, klen);
    if (plen > 0) {
        memcpy(node->bytes + klen, payload.ptr, plen);
    }
    g_tree_replace(nr->tree, node, node);
    /* Too many: the latest go back to LMDB alone, and the bound comes down to them. */
    while ((size_t)g_tree_nnodes(nr->tree) > 2 * v->limit) {
        struct tnode *last = g_tree_node_key(g_tree_node_last(nr->tree));

        nr->bounded = true;
        nr->bound_len = last->klen;
        memcpy(nr->bound, last->bytes, last->klen);
        if (key_deadline(last->bytes) < nr->far_ms) {
            nr->far_ms = key_deadline(last->bytes);
        }
        g_tree_remove(nr->tree, last);
    }
}

static void view_remove(struct near *nr, struct rs_bytes key)
{
    union {
        struct tnode n;
        uint8_t raw[sizeof(struct tnode) + TIMER_KEY_MAX];
    } probe;

    if (key.len > TIMER_KEY_MAX || !near_holds(nr, key.ptr, key.len)) {
        return;
    }
    probe.n.klen = (uint16_t)key.len;
    probe.n.plen = 0;
    memcpy(probe.n.bytes, key.ptr, key.len);
    (void)g_tree_remove(nr->tree, &probe.n);
}

/* ---- Arming, cancelling, firing ---------------------------------------------------- */

/* Store timer (rule, entity) at deadline_ms, and its index entry; the view follows. */
static int put(struct rs_store *st, struct near *nr, uint32_t partition, uint8_t rule,
               struct rs_bytes entity, int64_t deadline_ms, struct rs_bytes payload,
               struct rs_err *err)
{
    uint8_t ibuf[INDEX_KEY_MAX];
    uint8_t tbuf[TIMER_KEY_MAX];
    uint8_t dl[8];
    struct rs_bytes tkey = timer_key(tbuf, partition, deadline_ms, rule, entity);
    int rc = rs_store_put(st, RS_DB_TIMERS, tkey, payload, err);

    if (rc != 0) {
        return rc;
    }
    rs_store_put_u64(dl, rs_store_i64_key(deadline_ms));
    rc = rs_store_put(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity),
                      (struct rs_bytes){ dl, 8 }, err);
    if (rc == 0 && nr != NULL) {
        view_add(view_of(st), nr, tkey.ptr, tkey.len, payload);
    }
    return rc;
}

/*
 * Delete timer (rule, entity) at deadline_ms and the index entry of (rule, entity); the view
 * follows. Returns how many of the two were there (0 to 2), or a negative code.
 */
static int drop(struct rs_store *st, struct near *nr, uint32_t partition, uint8_t rule,
                struct rs_bytes entity, int64_t deadline_ms, struct rs_err *err)
{
    uint8_t ibuf[INDEX_KEY_MAX];
    uint8_t tbuf[TIMER_KEY_MAX];
    struct rs_bytes tkey = timer_key(tbuf, partition, deadline_ms, rule, entity);
    int found = 0;
    int rc = rs_store_del(st, RS_DB_TIMERS, tkey, err);

    if (rc != 0 && rc != RS_ENOTFOUND) {
        return rc;
    }
    found += rc == 0;
    if (nr != NULL) {
        view_remove(nr, tkey);
    }
    rc = rs_store_del(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity), err);
    if (rc != 0 && rc != RS_ENOTFOUND) {
        return rc;
    }
    return found + (rc == 0);
}

/* Delete the stored timer (rule, entity) whose deadline the index gives, and its index entry. */
static int cancel(struct rs_store *st, struct near *nr, uint32_t partition, uint8_t rule,
                  struct rs_bytes entity, struct rs_err *err)
{
    int64_t deadline = 0;
    int rc = rs_timer_deadline(st, partition, rule, entity, &deadline, err);

    if (rc == 0) {
        rc = drop(st, nr, partition, rule, entity, deadline, err);
    }
    return rc < 0 ? rc : 0; /* the index had it: found */
}

int rs_timer_cancel(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                    struct rs_err *err)
{
    struct near *nr;
    int rc = near_get(st, partition, false, &nr, err);

    return rc != 0 ? rc : cancel(st, nr, partition, rule, entity, err);
}

int rs_timer_arm(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                 int64_t deadline_ms, struct rs_bytes payload, struct rs_err *err)
{
    struct near *nr;
    int rc = near_get(st, partition, false, &nr, err);

    if (rc == 0) {
        rc = cancel(st, nr, partition, rule, entity, err);
    }
    if (rc != 0 && rc != RS_ENOTFOUND) {
        return rc;
    }
    return put(st, nr, partition, rule, entity, deadline_ms, payload, err);
}

int rs_timer_arm_new(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                     int64_t deadline_ms, struct rs_bytes payload, struct rs_err *err)
{
    struct near *nr;
    int rc = check_entity(entity, err);

    if (rc == 0) {
        rc = near_get(st, partition, false, &nr, err);
    }
    return rc != 0 ? rc : put(st, nr, partition, rule, entity, deadline_ms, payload, err);
}

int rs_timer_cancel_at(struct rs_store *st, uint32_t partition, uint8_t rule,
                       struct rs_bytes entity, int64_t deadline_ms, struct rs_err *err)
{
    struct near *nr;
    int rc = check_entity(entity, err);

    if (rc == 0) {
        rc = near_get(st, partition, false, &nr, err);
    }
    if (rc == 0) {
        rc = drop(st, nr, partition, rule, entity, deadline_ms, err);
        rc = rc < 0 ? rc : rc > 0 ? 0 : RS_ENOTFOUND;
    }
    return rc;
}

/* The first timer of `partition` in LMDB: RS_ENOTFOUND if it has none. */
static int first_timer(struct rs_store *st, uint32_t partition, struct rs_bytes *key,
                       struct rs_bytes *val, struct rs_err *err)
{
    uint8_t from[4];
    int rc;

    rs_store_put_u32(from, partition);
    rc = rs_store_seek(st, RS_DB_TIMERS, (struct rs_bytes){ from, 4 }, key, val, err);
    if (rc != 0) {
        return rc;
    }
    if (key->len < 14 || rs_store_get_u32(key->ptr) != partition) {
        return RS_ENOTFOUND;
    }
    return 0;
}

/*
 * The first timer of `partition`, from the view when there is one (copied into key, payload),
 * else from LMDB. RS_ENOTFOUND if it has none.
 */
static int next_timer(struct rs_store *st, struct near *nr, uint32_t partition,
                      int64_t watermark_ms, uint8_t key[TIMER_KEY_MAX], size_t *klen,
                      uint8_t payload[RS_TIMER_PAYLOAD_MAX], size_t *plen, int64_t *far_ms,
                      struct rs_err *err)
{
    struct rs_bytes k, v;
    int rc;

    *far_ms = RS_TIMER_NONE;
    while (nr != NULL) {
        GTreeNode *first = g_tree_node_first(nr->tree);
        const struct tnode *node;

        if (first == NULL) {
            if (!nr->bounded) {
                return RS_ENOTFOUND;
            }
            if (nr->far_ms > watermark_ms) {
                *far_ms = nr->far_ms; /* nothing due before it: no need to look */
                return RS_ENOTFOUND;
            }
            rc = near_load(st, view_of(st), nr, partition, err);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        node = g_tree_node_key(first);
        *klen = node->klen;
        *plen = node->plen;
        memcpy(key, node->bytes, node->klen);
        memcpy(payload, node->bytes + node->klen, node->plen);
        return 0;
    }
    rc = first_timer(st, partition, &k, &v, err);
    if (rc != 0) {
        return rc;
    }
    if (k.len > TIMER_KEY_MAX) {
        return rs_err_set(err, RS_ESTORE, "timer key of %zu bytes", k.len);
    }
    *klen = k.len;
    *plen = v.len < RS_TIMER_PAYLOAD_MAX ? v.len : RS_TIMER_PAYLOAD_MAX;
    memcpy(key, k.ptr, k.len);
    memcpy(payload, v.ptr, *plen);
    return 0;
}

int rs_timer_next_deadline(struct rs_store *st, uint32_t partition, int64_t *deadline_ms,
                           struct rs_err *err)
{
    uint8_t key[TIMER_KEY_MAX];
    uint8_t payload[RS_TIMER_PAYLOAD_MAX];
    size_t klen, plen;
    int64_t far_ms;
    struct near *nr;
    int rc = near_get(st, partition, true, &nr, err);

    *deadline_ms = RS_TIMER_NONE;
    if (rc == 0) {
        /* With the view: a bound's far_ms, a lower bound, is as good as the exact deadline. */
        rc = next_timer(st, nr, partition, INT64_MIN, key, &klen, payload, &plen, &far_ms, err);
    }
    if (rc == RS_ENOTFOUND) {
        *deadline_ms = far_ms;
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    *deadline_ms = key_deadline(key);
    return 0;
}

int rs_timer_fire_due(struct rs_store *st, uint32_t partition, int64_t watermark_ms, uint32_t max,
                      rs_timer_fire_cb *cb, void *opaque, int64_t *next_deadline_ms,
                      struct rs_err *err)
{
    uint8_t tkey[TIMER_KEY_MAX];
    uint8_t ibuf[INDEX_KEY_MAX];
    uint8_t payload[RS_TIMER_PAYLOAD_MAX];
    struct near *nr;
    int fired = 0;
    int rc = near_get(st, partition, true, &nr, err);

    *next_deadline_ms = RS_TIMER_NONE;
    if (rc != 0) {
        return rc;
    }
    for (;;) {
        struct rs_bytes entity;
        size_t klen, plen;
        int64_t deadline, far_ms;
        uint8_t rule;

        rc = next_timer(st, nr, partition, watermark_ms, tkey, &klen, payload, &plen, &far_ms, err);
        if (rc == RS_ENOTFOUND) {
            *next_deadline_ms = far_ms;
            return fired;
        }
        if (rc != 0) {
            return rc;
        }
        deadline = key_deadline(tkey);
        if (deadline > watermark_ms || (max != 0 && (uint32_t)fired >= max)) {
            *next_deadline_ms = deadline;
            return fired;
        }
        rule = tkey[12];
        entity = (struct rs_bytes){ tkey + 13, klen - 13 };
        rc = rs_store_del(st, RS_DB_TIMERS, (struct rs_bytes){ tkey, klen }, err);
        if (rc != 0) {
            return rc;
        }
        if (nr != NULL) {
            view_remove(nr, (struct rs_bytes){ tkey, klen });
        }
        rc = rs_store_del(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity), err);
        if (rc != 0 && rc != RS_ENOTFOUND) {
            return rc;
        }
        rc = cb(opaque, partition, rule, entity, deadline, (struct rs_bytes){ payload, plen });
        if (rc < 0) {
            return rc;
        }
        fired++;
    }
}

void rs_watermark_init(struct rs_watermark *wm, int64_t lateness_ms, int64_t max_event_ms)
{
    wm->max_event_ms = max_event_ms;
    wm->lateness_ms = lateness_ms;
    wm->caught_up = false;
}

bool rs_watermark_observe(struct rs_watermark *wm, int64_t event_ms)
{
    if (event_ms > wm->max_event_ms) {
        wm->max_event_ms = event_ms;
        return true;
    }
    return false;
}

int64_t rs_watermark_event(const struct rs_watermark *wm)
{
    return wm->max_event_ms == INT64_MIN ? INT64_MIN : wm->max_event_ms - wm->lateness_ms;
}

int64_t rs_watermark_at(const struct rs_watermark *wm, int64_t now_ms)
{
    int64_t event_wm = rs_watermark_event(wm);

    if (wm->caught_up && now_ms > event_wm) {
        return now_ms;
    }
    return event_wm;
}
