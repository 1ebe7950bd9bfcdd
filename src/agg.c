#include "agg.h"

#include "mem.h"
#include "varint.h"

#include <assert.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Keep in sync with cell_decode(): a new layout gets a new version, old ones still read. */
#define CELL_VERSION 1

/* partition(4) metric(2) NUL(1) grain(1) bucket(8) around the dims. */
#define KEY_FIXED 16
#define KEY_MAX   (KEY_FIXED + RS_AGG_DIMS_MAX)

/* Encoded key bytes: what the cache hashes and what LMDB orders. */
struct cache_key {
    size_t len;
    uint8_t bytes[KEY_MAX];
};

/* One cell touched in the batch. Every entry was changed by an add, so all are candidates for
 * the flush; `orig` lets the flush skip a cell whose changes cancelled out. */
struct entry {
    struct cache_key key; /* first: the table hashes entries through it */
    struct rs_agg_cell cell;
    bool stored;   /* the cell was in the store when first touched */
    uint8_t *orig; /* its encoding then */
    size_t orig_len;
};

/*
 * Bucket starts of the last local day seen. Every bucket of every grain is a union of whole
 * local days, so one day's instants share all their bucket starts; facts cluster in time,
 * and the zone lookups (GLib) would otherwise cost a fifth of a metric update.
 */
struct bucket_memo {
    const struct rs_zone *zone; /* NULL: empty */
    int64_t day_from, day_to;   /* [from, to) of the local day */
    unsigned known;             /* bit per grain in bucket[] */
    int64_t bucket[RS_GRAIN__COUNT];
};

/*
 * The counters a batch adds to the cells of one (partition, metric, dims, grains mask, local
 * day), summed, for facts without a sketch value. Counters only add (wrapping), so adding the
 * sum to each grain's cell at the flush leaves every cell as adding fact by fact would, for
 * one lookup per fact instead of one per grain: every bucket of every grain is a union of
 * whole local days, so the day says each grain's bucket. A fact with a value changes a sketch,
 * whose form depends on the order of its adds and removes: it goes to its cells at once.
 */
struct pending {
    struct cache_key key; /* first: the table hashes it; the cell key with the mask as grain */
    const struct rs_zone *zone;
    unsigned grains_mask;
    int64_t day;
    int64_t n[RS_AGG_FIELDS];
};

struct rs_agg {
    GHashTable *cells;   /* struct entry, keyed by itself */
    GHashTable *pending; /* struct pending, keyed by itself: applied by the flush */
    GPtrArray *order;    /* the flush's sorted entries; kept to reuse its memory */
    uint8_t *buf;        /* cell encodings */
    size_t cap;
    struct bucket_memo memo;
};

static int64_t bucket_of(struct bucket_memo *m, const struct rs_zone *zone, enum rs_grain grain,
                         int64_t t_ms)
{
    if (m->zone != zone || t_ms < m->day_from || t_ms >= m->day_to) {
        m->zone = zone;
        m->day_from = rs_bucket_start(zone, RS_GRAIN_DAY, t_ms);
        m->day_to = rs_bucket_end(zone, RS_GRAIN_DAY, m->day_from);
        m->bucket[RS_GRAIN_DAY] = m->day_from;
        m->known = 1u << RS_GRAIN_DAY;
    }
    if (!(m->known & (1u << grain))) {
        m->bucket[grain] = rs_bucket_start(zone, grain, t_ms);
        m->known |= 1u << grain;
    }
    return m->bucket[grain];
}

void rs_agg_cell_init(struct rs_agg_cell *cell)
{
    memset(cell->n, 0, sizeof(cell->n));
    rs_sketch_init(&cell->sketch);
}

void rs_agg_cell_release(struct rs_agg_cell *cell)
{
    rs_sketch_release(&cell->sketch);
}

static void cell_zero(struct rs_agg_cell *cell)
{
    memset(cell->n, 0, sizeof(cell->n));
    rs_sketch_reset(&cell->sketch);
}

static bool cell_is_zero(const struct rs_agg_cell *cell)
{
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        if (cell->n[i] != 0) {
            return false;
        }
    }
    return cell->sketch.count == 0;
}

/* Counters wrap instead of overflowing: a corrupt or absurd sum must not be undefined. */
static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t neg_wrap(int64_t a)
{
    return (int64_t)(0 - (uint64_t)a);
}

static void cell_add(struct rs_agg_cell *dst, const struct rs_agg_cell *src)
{
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        dst->n[i] = add_wrap(dst->n[i], src->n[i]);
    }
    rs_sketch_merge(&dst->sketch, &src->sketch);
}

/* Layout: version, the counters as zigzag varints, then the sketch's own encoding. */
static size_t cell_encode(const struct rs_agg_cell *cell, uint8_t **buf, size_t *cap)
{
    size_t need = 1 + RS_AGG_FIELDS * RS_VARINT_MAX;
    size_t len = 0;

    if (*cap < need) {
        *buf = rs_xrealloc(*buf, need);
        *cap = need;
    }
    (*buf)[len++] = CELL_VERSION;
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        len += rs_varint_put(*buf + len, rs_varint_zigzag(cell->n[i]));
    }
    return len + rs_sketch_encode(&cell->sketch, buf, cap, len);
}

static int cell_decode(struct rs_agg_cell *cell, struct rs_bytes val, struct rs_err *err)
{
    const uint8_t *p = val.ptr;
    const uint8_t *end = p + val.len;
    int64_t n[RS_AGG_FIELDS];
    struct rs_err why;

    if (val.len < 1 || p[0] != CELL_VERSION) {
        return rs_err_set(err, RS_ESTORE, "corrupt aggregate cell: unknown version");
    }
    p++;
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        uint64_t u;

        if (rs_varint_get(&p, end, &u) != 0) {
            return rs_err_set(err, RS_ESTORE, "corrupt aggregate cell: truncated counter");
        }
        n[i] = rs_varint_unzigzag(u);
    }
    if (rs_sketch_decode(&cell->sketch, p, (size_t)(end - p), &why) != 0) {
        return rs_err_set(err, RS_ESTORE, "corrupt aggregate cell: %s", why.msg);
    }
    memcpy(cell->n, n, sizeof(n));
    return 0;
}

static size_t key_encode(uint8_t *buf, uint32_t partition, uint16_t metric, struct rs_str dims,
                         enum rs_grain grain, int64_t bucket)
{
    rs_store_put_u32(buf, partition);
    buf[4] = (uint8_t)(metric >> 8);
    buf[5] = (uint8_t)metric;
    if (dims.len > 0) {
        memcpy(buf + 6, dims.ptr, dims.len);
    }
    buf[6 + dims.len] = 0;
    buf[7 + dims.len] = (uint8_t)grain;
    rs_store_put_u64(buf + 8 + dims.len, rs_store_i64_key(bucket));
    return KEY_FIXED + dims.len;
}

/* Parse a stored key; key->dims borrows from it. The fixed tail is read from the end, so the
 * dims bytes need no escaping of NUL. */
static int key_decode(struct rs_bytes raw, struct rs_agg_key *key, struct rs_err *err)
{
    const uint8_t *p = raw.ptr;
    size_t dims_len;

    if (raw.len < KEY_FIXED || raw.len > KEY_MAX) {
        return rs_err_set(err, RS_ESTORE, "corrupt aggregate key: %zu bytes", raw.len);
    }
    dims_len = raw.len - KEY_FIXED;
    if (p[6 + dims_len] != 0 || p[7 + dims_len] >= RS_GRAIN__COUNT) {
        return rs_err_set(err, RS_ESTORE, "corrupt aggregate key: bad separator or grain");
    }
    key->partition = rs_store_get_u32(p);
    key->metric = (uint16_t)(p[4] << 8 | p[5]);
    key->dims.ptr = (const char *)(p + 6);
    key->dims.len = dims_len;
    key->grain = (enum rs_grain)p[7 + dims_len];
    key->bucket = rs_store_key_i64(rs_store_get_u64(p + 8 + dims_len));
    return 0;
}

/* Hashed once per add (several per fact): XXH3 reads the short keys a word at a time. */
static guint entry_hash(gconstpointer p)
{
    const struct cache_key *k = p;

    return (guint)XXH3_64bits(k->bytes, k->len);
}

static gboolean entry_equal(gconstpointer a, gconstpointer b)
{
    const struct cache_key *x = a;
    const struct cache_key *y = b;

    return x->len == y->len && memcmp(x->bytes, y->bytes, x->len) == 0;
}

static void entry_free(gpointer p)
{
    struct entry *e = p;

    rs_agg_cell_release(&e->cell);
    free(e->orig);
    free(e);
}

struct rs_agg *rs_agg_new(void)
{
    struct rs_agg *agg = rs_xcalloc(1, sizeof(*agg));

    agg->cells = g_hash_table_new_full(entry_hash, entry_equal, NULL, entry_free);
    agg->pending = g_hash_table_new_full(entry_hash, entry_equal, NULL, free);
    agg->order = g_ptr_array_new();
    return agg;
}

void rs_agg_free(struct rs_agg *agg)
{
    if (agg == NULL) {
        return;
    }
    g_hash_table_destroy(agg->cells);
    g_hash_table_destroy(agg->pending);
    g_ptr_array_free(agg->order, TRUE);
    free(agg->buf);
    free(agg);
}

void rs_agg_discard(struct rs_agg *agg)
{
    g_hash_table_remove_all(agg->cells);
    g_hash_table_remove_all(agg->pending);
    agg->memo.zone = NULL; /* a zone need only outlive the batch it was used in */
}

/* The cache entry of `probe`, loaded from the batch on first touch. */
static int entry_get(struct rs_agg *agg, struct rs_store *st, const struct cache_key *probe,
                     struct entry **out, struct rs_err *err)
{
    struct entry *e = g_hash_table_lookup(agg->cells, probe);
    struct rs_bytes val;
    int rc;

    if (e != NULL) {
        *out = e;
        return 0;
    }
    e = rs_xcalloc(1, sizeof(*e));
    e->key.len = probe->len;
    memcpy(e->key.bytes, probe->bytes, probe->len);
    rs_agg_cell_init(&e->cell);
    rc = rs_store_get(st, RS_DB_AGGREGATES, (struct rs_bytes){ probe->bytes, probe->len }, &val,
                      err);
    if (rc == 0) {
        rc = cell_decode(&e->cell, val, err);
        if (rc == 0) {
            e->stored = true;
            e->orig_len = val.len;
            e->orig = rs_xmalloc(val.len);
            memcpy(e->orig, val.ptr, val.len);
        }
    } else if (rc == RS_ENOTFOUND) {
        rc = 0;
    }
    if (rc != 0) {
        entry_free(e);
        return rc;
    }
    g_hash_table_add(agg->cells, e);
    *out = e;
    return 0;
}

/* in - out, counter by counter (NULL: nothing), wrapping. */
static void delta_of(int64_t d[RS_AGG_FIELDS], const struct rs_agg_fact *out,
                     const struct rs_agg_fact *in)
{
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        int64_t v = in != NULL ? in->n[i] : 0;

        d[i] = out != NULL ? add_wrap(v, neg_wrap(out->n[i])) : v;
    }
}

/* Add the counters d to the cell of (key's partition, metric, dims; grain, bucket). */
static int add_counters(struct rs_agg *agg, struct rs_store *st, const struct rs_agg_key *key,
                        enum rs_grain grain, int64_t bucket, const int64_t d[RS_AGG_FIELDS],
                        struct entry **out, struct rs_err *err)
{
    struct cache_key probe;
    struct entry *e;
    int rc;

    probe.len = key_encode(probe.bytes, key->partition, key->metric, key->dims, grain, bucket);
    rc = entry_get(agg, st, &probe, &e, err);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        e->cell.n[i] = add_wrap(e->cell.n[i], d[i]);
    }
    *out = e;
    return 0;
}

/* Retract `out` (NULL: nothing) and add `in` (NULL: nothing) in one cell. */
static int add_one(struct rs_agg *agg, struct rs_store *st, const struct rs_agg_key *key,
                   enum rs_grain grain, int64_t bucket, const struct rs_agg_fact *out,
                   const struct rs_agg_fact *in, struct rs_err *err)
{
    int64_t d[RS_AGG_FIELDS];
    struct entry *e;
    int rc;

    delta_of(d, out, in);
    rc = add_counters(agg, st, key, grain, bucket, d, &e, err);
    if (rc != 0) {
        return rc;
    }
    if (out != NULL && out->has_value) {
        /* A retraction the sketch does not hold (state written before the metric kept a
         * sketch) leaves it as it is: the counters still say what was retracted. */
        (void)rs_sketch_remove(&e->cell.sketch, out->value);
    }
    if (in != NULL && in->has_value) {
        rs_sketch_add(&e->cell.sketch, in->value);
    }
    return 0;
}

/* Sum a fact's counters into its pending entry: see struct pending. */
static void defer(struct rs_agg *agg, const struct rs_zone *zone, const struct rs_agg_key *key,
                  unsigned grains_mask, int64_t t_ms, const struct rs_agg_fact *out,
                  const struct rs_agg_fact *in)
{
    int64_t day = bucket_of(&agg->memo, zone, RS_GRAIN_DAY, t_ms);
    struct cache_key probe;
    struct pending *p;
    int64_t d[RS_AGG_FIELDS];

    probe.len = key_encode(probe.bytes, key->partition, key->metric, key->dims,
                           (enum rs_grain)grains_mask, day);
    p = g_hash_table_lookup(agg->pending, &probe);
    if (p == NULL) {
        p = rs_xcalloc(1, sizeof(*p));
        p->key.len = probe.len;
        memcpy(p->key.bytes, probe.bytes, probe.len);
        p->zone = zone;
        p->grains_mask = grains_mask;
        p->day = day;
        g_hash_table_add(agg->pending, p);
    }
    delta_of(d, out, in);
    for (int i = 0; i < RS_AGG_FIELDS; i++) {
        p->n[i] = add_wrap(p->n[i], d[i]);
    }
}

/* Add every pending sum to the cells of its grains, and forget it. */
static int apply_pending(struct rs_agg *agg, struct rs_store *st, struct rs_err *err)
{
    GHashTableIter it;
    gpointer v;
    int rc = 0;

    g_hash_table_iter_init(&it, agg->pending);
    while (rc == 0 && g_hash_table_iter_next(&it, &v, NULL)) {
        const struct pending *p = v;
        struct rs_agg_key key;
        bool zero = true;

        for (int i = 0; i < RS_AGG_FIELDS; i++) {
            zero = zero && p->n[i] == 0;
        }
        if (zero) {
            continue; /* the cells end as they were: nothing to load */
        }
        /* The cell key's layout, the mask in the grain's place (never read as one). */
        key.partition = rs_store_get_u32(p->key.bytes);
        key.metric = (uint16_t)(p->key.bytes[4] << 8 | p->key.bytes[5]);
        key.dims = (struct rs_str){ (const char *)p->key.bytes + 6, p->key.len - KEY_FIXED };
        for (int g = 0; g < RS_GRAIN__COUNT && rc == 0; g++) {
            struct entry *e;

            if ((p->grains_mask & (1u << g)) != 0) {
                rc = add_counters(agg, st, &key, (enum rs_grain)g,
                                  bucket_of(&agg->memo, p->zone, (enum rs_grain)g, p->day), p->n,
                                  &e, err);
            }
        }
    }
    g_hash_table_remove_all(agg->pending);
    return rc;
}

static int add_grains(struct rs_agg *agg, struct rs_store *st, const struct rs_zone *zone,
                      const struct rs_agg_key *key, unsigned grains_mask, int64_t t_ms,
                      const struct rs_agg_fact *out, const struct rs_agg_fact *in,
                      struct rs_err *err)
{
    assert(grains_mask >> RS_GRAIN__COUNT == 0);
    if (key->dims.len > RS_AGG_DIMS_MAX) {
        return rs_err_set(err, RS_EINVAL, "aggregate dimensions of %zu bytes, at most %d",
                          key->dims.len, RS_AGG_DIMS_MAX);
    }
    if (grains_mask == 0) {
        return add_one(agg, st, key, key->grain, key->bucket, out, in, err);
    }
    if ((out == NULL || !out->has_value) && (in == NULL || !in->has_value)) {
        defer(agg, zone, key, grains_mask, t_ms, out, in);
        return 0;
    }
    for (int g = 0; g < RS_GRAIN__COUNT; g++) {
        if ((grains_mask & (1u << g)) != 0) {
            enum rs_grain grain = (enum rs_grain)g;
            int rc = add_one(agg, st, key, grain, bucket_of(&agg->memo, zone, grain, t_ms), out, in,
                             err);

            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int rs_agg_add(struct rs_agg *agg, struct rs_store *st, const struct rs_zone *zone,
               const struct rs_agg_key *key, unsigned grains_mask, int64_t t_ms, int sign,
               const struct rs_agg_fact *fact, struct rs_err *err)
{
    assert(sign == 1 || sign == -1);
    return add_grains(agg, st, zone, key, grains_mask, t_ms, sign < 0 ? fact : NULL,
                      sign > 0 ? fact : NULL, err);
}

int rs_agg_move(struct rs_agg *agg, struct rs_store *st, const struct rs_zone *zone,
                const struct rs_agg_key *key, unsigned grains_mask, int64_t t_ms,
                const struct rs_agg_fact *from, const struct rs_agg_fact *to, struct rs_err *err)
{
    return add_grains(agg, st, zone, key, grains_mask, t_ms, from, to, err);
}

/* LMDB's default order: bytes, then the shorter key first. */
static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a;
    const struct entry *y = *(struct entry *const *)b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.bytes, y->key.bytes, n);

    if (c != 0) {
        return c;
    }
    return (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* Write (or delete) one cell; *changed is false when it ends as it started. */
static int flush_one(struct rs_agg *agg, struct rs_store *st, struct entry *e, bool *changed,
                     struct rs_err *err)
{
    struct rs_bytes k = { e->key.bytes, e->key.len };
    size_t len;
    int rc;

    *changed = true;
    if (cell_is_zero(&e->cell)) {
        if (!e->stored) {
            *changed = false; /* absent before and after */
            return 0;
        }
        rc = rs_store_del(st, RS_DB_AGGREGATES, k, err);
        return rc == RS_ENOTFOUND ? 0 : rc;
    }
    len = cell_encode(&e->cell, &agg->buf, &agg->cap);
    if (e->stored && len == e->orig_len && memcmp(agg->buf, e->orig, len) == 0) {
        *changed = false;
        return 0;
    }
    return rs_store_put(st, RS_DB_AGGREGATES, k, (struct rs_bytes){ agg->buf, len }, err);
}

int rs_agg_flush(struct rs_agg *agg, struct rs_store *st, rs_agg_changed_cb *cb, void *opaque,
                 struct rs_err *err)
{
    GHashTableIter it;
    gpointer e;
    int rc = 0;

    rc = apply_pending(agg, st, err);
    agg->memo.zone = NULL; /* a zone need only outlive the batch it was used in */
    g_ptr_array_set_size(agg->order, 0);
    g_hash_table_iter_init(&it, agg->cells);
    while (g_hash_table_iter_next(&it, &e, NULL)) {
        g_ptr_array_add(agg->order, e);
    }
    /* Key order is LMDB's order: sequential page writes, and a deterministic callback order. */
    if (agg->order->len > 1) {
        qsort(agg->order->pdata, agg->order->len, sizeof(gpointer), entry_cmp);
    }
    for (guint i = 0; i < agg->order->len && rc == 0; i++) {
        struct entry *en = agg->order->pdata[i];
        struct rs_agg_key key;
        bool changed;

        rc = flush_one(agg, st, en, &changed, err);
        if (rc == 0 && changed && cb != NULL) {
            rc = key_decode((struct rs_bytes){ en->key.bytes, en->key.len }, &key, err);
            if (rc == 0) {
                rc = cb(opaque, &key, &en->cell);
            }
        }
    }
    g_ptr_array_set_size(agg->order, 0);
    g_hash_table_remove_all(agg->cells); /* after a failure too: the batch is aborted */
    return rc;
}

/* Read inside the caller's batch, else inside a snapshot of our own (nested if one is open). */
static int read_enter(struct rs_store *st, bool *own, struct rs_err *err)
{
    *own = !rs_store_in_batch(st);
    return *own ? rs_store_read_begin(st, err) : 0;
}

static void read_leave(struct rs_store *st, bool own)
{
    if (own) {
        rs_store_read_end(st);
    }
}

/*
 * Without a list of partitions, find them by seeking: the seek to (p, rest of key) lands on
 * the cell itself, on a later key of p (p lacks the cell: go on with p + 1), or on the first
 * key of the next partition q that has any cell (go on with q). One seek per partition with
 * state, whatever the number of cells.
 */
static int read_all_partitions(struct rs_store *st, const struct rs_agg_key *key,
                               struct rs_agg_cell *sum, struct rs_agg_cell *part,
                               struct rs_err *err)
{
    uint8_t kbuf[KEY_MAX];
    uint32_t p = 0;

    for (;;) {
        size_t klen = key_encode(kbuf, p, key->metric, key->dims, key->grain, key->bucket);
        struct rs_bytes k, v;
        uint32_t q;
        int rc = rs_store_seek(st, RS_DB_AGGREGATES, (struct rs_bytes){ kbuf, klen }, &k, &v, err);

        if (rc == RS_ENOTFOUND) {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        if (k.len < 4) {
            return rs_err_set(err, RS_ESTORE, "corrupt aggregate key: %zu bytes", k.len);
        }
        q = rs_store_get_u32(k.ptr);
        if (q != p) {
            p = q; /* the seek only moves forward, so q > p */
            continue;
        }
        if (k.len == klen && memcmp(k.ptr, kbuf, klen) == 0) {
            rc = cell_decode(part, v, err);
            if (rc != 0) {
                return rc;
            }
            cell_add(sum, part);
        }
        if (p == UINT32_MAX) {
            return 0;
        }
        p++;
    }
}

int rs_agg_read(struct rs_store *st, const struct rs_agg_key *key, const uint32_t *partitions,
                size_t n, struct rs_agg_cell *cell, struct rs_err *err)
{
    struct rs_agg_cell part;
    bool own;
    int rc;

    cell_zero(cell);
    if (key->dims.len > RS_AGG_DIMS_MAX) {
        return 0; /* no such cell can be stored */
    }
    rc = read_enter(st, &own, err);
    if (rc != 0) {
        return rc;
    }
    rs_agg_cell_init(&part);
    if (n == 0) {
        rc = read_all_partitions(st, key, cell, &part, err);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t kbuf[KEY_MAX];
        size_t klen =
            key_encode(kbuf, partitions[i], key->metric, key->dims, key->grain, key->bucket);
        struct rs_bytes v;

        rc = rs_store_get(st, RS_DB_AGGREGATES, (struct rs_bytes){ kbuf, klen }, &v, err);
        if (rc == 0) {
            rc = cell_decode(&part, v, err);
            if (rc == 0) {
                cell_add(cell, &part);
            }
        } else if (rc == RS_ENOTFOUND) {
            rc = 0;
        }
    }
    rs_agg_cell_release(&part);
    read_leave(st, own);
    if (rc != 0) {
        cell_zero(cell);
    }
    return rc;
}

/* Where a scan of one metric goes on: at (partition, metric). */
static size_t metric_prefix(uint8_t *buf, uint32_t partition, uint16_t metric)
{
    rs_store_put_u32(buf, partition);
    buf[4] = (uint8_t)(metric >> 8);
    buf[5] = (uint8_t)metric;
    return 6;
}

/*
 * Walk by seeking: after key k the next key is the first one >= k followed by a NUL byte.
 * With a metric, keys of other metrics are skipped by seeking to (partition, metric) or to
 * (partition + 1, metric).
 */
static int scan_cells(struct rs_store *st, uint16_t metric, rs_agg_scan_cb *cb, void *opaque,
                      struct rs_agg_cell *cell, struct rs_err *err)
{
    uint8_t from[KEY_MAX + 1];
    size_t from_len = metric == 0 ? 0 : metric_prefix(from, 0, metric);

    for (;;) {
        struct rs_bytes k, v;
        struct rs_agg_key key;
        int rc =
            rs_store_seek(st, RS_DB_AGGREGATES, (struct rs_bytes){ from, from_len }, &k, &v, err);

        if (rc == RS_ENOTFOUND) {
            return 0;
        }
        if (rc == 0) {
            rc = key_decode(k, &key, err);
        }
        if (rc != 0) {
            return rc;
        }
        if (metric != 0 && key.metric < metric) {
            from_len = metric_prefix(from, key.partition, metric);
            continue;
        }
        if (metric != 0 && key.metric > metric) {
            if (key.partition == UINT32_MAX) {
                return 0;
            }
            from_len = metric_prefix(from, key.partition + 1, metric);
            continue;
        }
        rc = cell_decode(cell, v, err);
        if (rc == 0) {
            rc = cb(opaque, &key, cell);
        }
        if (rc != 0) {
            return rc;
        }
        memcpy(from, k.ptr, k.len); /* k is at most KEY_MAX bytes: key_decode checked */
        from[k.len] = 0;
        from_len = k.len + 1;
    }
}

int rs_agg_scan(struct rs_store *st, uint16_t metric, rs_agg_scan_cb *cb, void *opaque,
                struct rs_err *err)
{
    struct rs_agg_cell cell;
    bool own;
    int rc = read_enter(st, &own, err);

    if (rc != 0) {
        return rc;
    }
    rs_agg_cell_init(&cell);
    rc = scan_cells(st, metric, cb, opaque, &cell, err);
    rs_agg_cell_release(&cell);
    read_leave(st, own);
    return rc;
}

static int str_cmp(struct rs_str a, struct rs_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n == 0 ? 0 : memcmp(a.ptr, b.ptr, n);

    if (c != 0) {
        return c;
    }
    return (a.len > b.len) - (a.len < b.len);
}

/* By key, then by value: equal keys still get one canonical order. */
static int pair_cmp(const void *a, const void *b)
{
    const struct rs_str *x = *(const struct rs_str *const *)a;
    const struct rs_str *y = *(const struct rs_str *const *)b;
    int c = str_cmp(x[0], y[0]);

    return c != 0 ? c : str_cmp(x[1], y[1]);
}

/* Append s escaped at out[*len]; false if it would not leave room for the NUL in `limit`. */
static bool put_escaped(char *out, size_t limit, size_t *len, struct rs_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        bool esc = c == ',' || c == '=' || c == '\\';

        if (*len + (esc ? 2 : 1) >= limit) {
            return false;
        }
        if (esc) {
            out[(*len)++] = '\\';
        }
        out[(*len)++] = c;
    }
    return true;
}

static bool put_char(char *out, size_t limit, size_t *len, char c)
{
    if (*len + 1 >= limit) {
        return false;
    }
    out[(*len)++] = c;
    return true;
}

size_t rs_agg_dims(char *out, size_t size, const struct rs_str (*pairs)[2], size_t n)
{
    /* Keys are escaped like values: a key holding '=' must not read as another pair. */
    const struct rs_str *small[16];
    const struct rs_str **order = n <= 16 ? small : rs_xmalloc(n * sizeof(*order));
    size_t limit = size < RS_AGG_DIMS_MAX + 1 ? size : RS_AGG_DIMS_MAX + 1;
    size_t len = 0;
    bool fits = limit > 0;

    for (size_t i = 0; i < n; i++) {
        order[i] = pairs[i];
    }
    if (n > 1) {
        qsort(order, n, sizeof(*order), pair_cmp);
    }
    for (size_t i = 0; i < n && fits; i++) {
        fits = (i == 0 || put_char(out, limit, &len, ',')) &&
               put_escaped(out, limit, &len, order[i][0]) && put_char(out, limit, &len, '=') &&
               put_escaped(out, limit, &len, order[i][1]);
    }
    if (order != small) {
        free(order);
    }
    if (!fits) {
        len = 0;
    }
    if (size > 0) {
        out[len] = '\0';
    }
    return len;
}
