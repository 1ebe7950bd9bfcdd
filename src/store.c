#define RS_LOG_MODULE "store"
#include "store.h"

#include "log.h"
#include "mem.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

/* Keep in sync with enum rs_db. */
static const char *const db_names[] = {
    "meta",   "offsets",    "entities", "timers",       "timer_index",
    "outbox", "aggregates", "dedup",    "dedup_expiry",
};

_Static_assert(sizeof(db_names) / sizeof(db_names[0]) == RS_DB__COUNT, "a name per enum rs_db");

/* The meta key that keeps the outbox sequence monotonic across restarts with an empty outbox. */
#define META_OUTBOX_SEQ "outbox_seq"

/* The map never grows past this, whatever state.map_size_mb asked for: 1 TiB. */
#define MAP_MAX_BYTES (UINT64_C(1) << 40)

struct rs_store {
    MDB_env *env;
    MDB_dbi dbi[RS_DB__COUNT];
    MDB_txn *txn;         /* the open batch, or NULL */
    uint64_t map_bytes;   /* current map size */
    uint64_t outbox_next; /* next outbox sequence; the batch's view */
    uint64_t outbox_committed;
    char *dir;
    bool readonly;
    bool has_db[RS_DB__COUNT]; /* read-only: a state dir older than a database lacks it */
    /* The batch's write-back cache (see "Write-back cache" below). */
    GHashTable *ov;    /* struct ov_entry, by (db, key) */
    GPtrArray *chunks; /* the entries' memory, reused batch after batch */
    GPtrArray *big;    /* values larger than a chunk, freed with the batch */
    guint chunk;       /* the chunk being filled */
    size_t chunk_used;
    GPtrArray *dirty[RS_DB__COUNT]; /* entries of each db with changes not yet in the txn */
    uint32_t gen[RS_DB__COUNT];     /* bumped by every write of a db into the txn */
    size_t ov_bytes;                /* key and value bytes put since the last full flush */
    uint64_t epoch;                 /* bumped when a batch's writes are dropped */
    void *view[RS_VIEW__COUNT];     /* the modules' views (rs_store_set_view) */
    void (*view_release[RS_VIEW__COUNT])(void *view);
};

/* The batch's write-back cache, below. */
static void ov_init(struct rs_store *st);
static void ov_release(struct rs_store *st);
static void ov_clear(struct rs_store *st);

/*
 * The calling thread's read snapshot. Per thread because HTTP and inspect threads read while
 * the loop thread writes: each reader needs its own LMDB read transaction (MDB_NOTLS lets it
 * live on any thread), and only the loop thread may touch the batch.
 */
static _Thread_local struct {
    const struct rs_store *st;
    MDB_txn *txn;
    unsigned depth; /* nested rs_store_read_begin() calls */
} snap;

/* The store whose batch this thread opened: a reader on another thread never sees st->txn. */
static _Thread_local const struct rs_store *batch_here;

const char *rs_store_lmdb_version(void)
{
    return mdb_version(NULL, NULL, NULL);
}

void rs_store_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void rs_store_put_u64(uint8_t *p, uint64_t v)
{
    rs_store_put_u32(p, (uint32_t)(v >> 32));
    rs_store_put_u32(p + 4, (uint32_t)v);
}

uint32_t rs_store_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t rs_store_get_u64(const uint8_t *p)
{
    return (uint64_t)rs_store_get_u32(p) << 32 | rs_store_get_u32(p + 4);
}

static MDB_val to_val(struct rs_bytes b)
{
    MDB_val v = { b.len, (void *)(uintptr_t)b.ptr };

    return v;
}

static struct rs_bytes from_val(MDB_val v)
{
    struct rs_bytes b = { v.mv_data, v.mv_size };

    return b;
}

/* A key of the meta database; LMDB never writes through mv_data of a key. */
static MDB_val meta_key(const char *name)
{
    MDB_val v = { strlen(name), (void *)(uintptr_t)name };

    return v;
}

static int store_error(struct rs_store *st, struct rs_err *err, int rc, const char *what)
{
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        return rs_err_set(err, RS_ESTORE_FULL, "state store '%s' full during %s: %s", st->dir, what,
                          mdb_strerror(rc));
    }
    return rs_err_set(err, RS_ESTORE, "state store '%s': %s failed: %s", st->dir, what,
                      mdb_strerror(rc));
}

/* A read-only transaction, adopting the map size if another process grew it meanwhile. */
static int begin_read(struct rs_store *st, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);

    if (rc == MDB_MAP_RESIZED) {
        (void)mdb_env_set_mapsize(st->env, 0);
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
    }
    return rc;
}

/* Read the highest outbox sequence so that appends continue after a restart. */
static int load_outbox_next(struct rs_store *st, MDB_txn *txn, struct rs_err *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(txn, st->dbi[RS_DB_OUTBOX], &cur);
    if (rc != 0) {
        return store_error(st, err, rc, "outbox cursor");
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    st->outbox_next = 1;
    if (rc == 0 && k.mv_size == 8) {
        st->outbox_next = rs_store_get_u64(k.mv_data) + 1;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_error(st, err, rc, "outbox read");
    }
    /* A restart may find an empty outbox: the meta key keeps the sequence monotonic. */
    {
        MDB_val mk = meta_key(META_OUTBOX_SEQ);
        MDB_val mv;

        if (mdb_get(txn, st->dbi[RS_DB_META], &mk, &mv) == 0 && mv.mv_size == 8) {
            uint64_t seen = rs_store_get_u64(mv.mv_data);

            if (seen >= st->outbox_next) {
                st->outbox_next = seen + 1;
            }
        }
    }
    st->outbox_committed = st->outbox_next;
    return 0;
}

/* A missing version is written when `create`, else the directory holds no state yet. */
static int check_version(struct rs_store *st, MDB_txn *txn, bool create, struct rs_err *err)
{
    MDB_val k = meta_key("format_version");
    MDB_val v;
    uint8_t want[4];
    int rc;

    rs_store_put_u32(want, RS_STORE_FORMAT_VERSION);
    rc = mdb_get(txn, st->dbi[RS_DB_META], &k, &v);
    if (rc == MDB_NOTFOUND && !create) {
        return rs_err_set(err, RS_ENOTFOUND, "no state in '%s'", st->dir);
    }
    if (rc == MDB_NOTFOUND) {
        MDB_val nv = { 4, want };

        rc = mdb_put(txn, st->dbi[RS_DB_META], &k, &nv, 0);
        return rc == 0 ? 0 : store_error(st, err, rc, "write format version");
    }
    if (rc != 0) {
        return store_error(st, err, rc, "read format version");
    }
    if (v.mv_size != 4 || memcmp(v.mv_data, want, 4) != 0) {
        return rs_err_set(
            err, RS_ESTORE, "state store '%s' has format version %u, this build reads %u", st->dir,
            v.mv_size == 4 ? rs_store_get_u32(v.mv_data) : 0, RS_STORE_FORMAT_VERSION);
    }
    return 0;
}

int rs_store_open(struct rs_store **out, const char *dir, uint64_t map_size_mb, struct rs_err *err)
{
    struct rs_store *st;
    MDB_txn *txn = NULL;
    int rc;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return rs_err_set(err, -errno, "cannot create state directory '%s': %s", dir,
                          strerror(errno));
    }
    st = rs_xcalloc(1, sizeof(*st));
    st->dir = rs_xstrdup(dir);
    st->map_bytes = map_size_mb << 20;
    if (st->map_bytes > MAP_MAX_BYTES) {
        st->map_bytes = MAP_MAX_BYTES;
    }
    rc = mdb_env_create(&st->env);
    if (rc != 0) {
        rc = store_error(st, err, rc, "create environment");
        goto fail_free;
    }
    (void)mdb_env_set_maxdbs(st->env, RS_DB__COUNT);
    rc = mdb_env_set_mapsize(st->env, (size_t)st->map_bytes);
    if (rc != 0) {
        rc = store_error(st, err, rc, "set map size");
        goto fail_env;
    }
    /*
     * MDB_NOSYNC: offsets commit with state, so skipping fsync costs durability on an OS
     * crash only, never consistency. MDB_NOTLS: read snapshots may be taken on other threads.
     * No MDB_WRITEMAP: with NOSYNC a system crash could then corrupt the file.
     */
    rc = mdb_env_open(st->env, dir, MDB_NOSYNC | MDB_NOTLS, 0600);
    if (rc != 0) {
        rc = rs_err_set(err, RS_ESTORE, "cannot open state store '%s': %s", dir, mdb_strerror(rc));
        goto fail_env; /* LMDB: a failed open still needs mdb_env_close() */
    }
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) {
        rc = store_error(st, err, rc, "begin");
        goto fail_env;
    }
    for (int i = 0; i < RS_DB__COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]);
        if (rc != 0) {
            rc = store_error(st, err, rc, db_names[i]);
            goto fail_txn;
        }
        st->has_db[i] = true;
    }
    rc = check_version(st, txn, true, err);
    if (rc != 0) {
        goto fail_txn;
    }
    rc = load_outbox_next(st, txn, err);
    if (rc != 0) {
        goto fail_txn;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        rc = store_error(st, err, rc, "commit");
        goto fail_env;
    }
    {
        MDB_envinfo info;

        if (mdb_env_info(st->env, &info) == 0 && info.me_mapsize > st->map_bytes) {
            st->map_bytes = info.me_mapsize; /* an earlier run grew it */
        }
    }
    *out = st;
    return 0;

fail_txn:
    mdb_txn_abort(txn);
fail_env:
    mdb_env_close(st->env);
fail_free:
    free(st->dir);
    free(st);
    return rc;
}

int rs_store_open_readonly(struct rs_store **out, const char *dir, struct rs_err *err)
{
    struct rs_store *st;
    MDB_txn *txn = NULL;
    MDB_envinfo info;
    struct stat sb;
    char *data;
    size_t len = strlen(dir) + sizeof("/data.mdb");
    int rc;

    /* Tell "nothing here" from "something broken" before LMDB does, as it would say ENOENT. */
    data = rs_xmalloc(len);
    (void)snprintf(data, len, "%s/data.mdb", dir);
    rc = stat(data, &sb);
    free(data);
    if (rc != 0 && errno == ENOENT) {
        return rs_err_set(err, RS_ENOTFOUND, "no state in '%s'", dir);
    }
    st = rs_xcalloc(1, sizeof(*st));
    st->dir = rs_xstrdup(dir);
    st->readonly = true;
    rc = mdb_env_create(&st->env);
    if (rc != 0) {
        rc = store_error(st, err, rc, "create environment");
        goto fail_free;
    }
    (void)mdb_env_set_maxdbs(st->env, RS_DB__COUNT);
    /* No map size: LMDB takes the one recorded by the writer. MDB_RDONLY still registers in
     * the lock file as a reader, which is what lets a running writer keep its pages safe. */
    rc = mdb_env_open(st->env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc != 0) {
        rc = rs_err_set(err, RS_ESTORE, "cannot open state store '%s' read-only: %s", dir,
                        mdb_strerror(rc));
        goto fail_env; /* LMDB: a failed open still needs mdb_env_close() */
    }
    rc = begin_read(st, &txn);
    if (rc != 0) {
        rc = store_error(st, err, rc, "begin");
        goto fail_env;
    }
    for (int i = 0; i < RS_DB__COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], 0, &st->dbi[i]);
        if (rc == MDB_NOTFOUND && i != RS_DB_META) {
            continue; /* written before this database existed: it reads as empty */
        }
        if (rc == MDB_NOTFOUND) {
            rc = rs_err_set(err, RS_ENOTFOUND, "no state in '%s'", dir);
            goto fail_txn;
        }
        if (rc != 0) {
            rc = store_error(st, err, rc, db_names[i]);
            goto fail_txn;
        }
        st->has_db[i] = true;
    }
    rc = check_version(st, txn, false, err);
    if (rc != 0) {
        goto fail_txn;
    }
    /* Committing a read transaction is what keeps its database handles for the environment. */
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        rc = store_error(st, err, rc, "commit");
        goto fail_env;
    }
    if (mdb_env_info(st->env, &info) == 0) {
        st->map_bytes = info.me_mapsize;
    }
    *out = st;
    return 0;

fail_txn:
    mdb_txn_abort(txn);
fail_env:
    mdb_env_close(st->env);
fail_free:
    free(st->dir);
    free(st);
    return rc;
}

void rs_store_close(struct rs_store *st)
{
    if (st == NULL) {
        return;
    }
    rs_store_abort(st);
    if (snap.st == st) {
        /* A snapshot left open on this thread: LMDB requires its end before the close. */
        mdb_txn_abort(snap.txn);
        snap.st = NULL;
        snap.txn = NULL;
        snap.depth = 0;
    }
    ov_release(st);
    for (int i = 0; i < RS_VIEW__COUNT; i++) {
        if (st->view[i] != NULL && st->view_release[i] != NULL) {
            st->view_release[i](st->view[i]);
        }
    }
    if (!st->readonly) {
        (void)mdb_env_sync(st->env, 1);
    }
    mdb_env_close(st->env);
    free(st->dir);
    free(st);
}

int rs_store_begin(struct rs_store *st, struct rs_err *err)
{
    int rc;

    if (st->readonly) {
        return rs_err_set(err, RS_ESTORE, "state store '%s': opened read-only", st->dir);
    }
    if (st->txn != NULL) {
        return rs_err_set(err, RS_ESTORE, "state store '%s': batch already open", st->dir);
    }
    rc = mdb_txn_begin(st->env, NULL, 0, &st->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size and try once more. */
        (void)mdb_env_set_mapsize(st->env, 0);
        rc = mdb_txn_begin(st->env, NULL, 0, &st->txn);
    }
    if (rc != 0) {
        st->txn = NULL;
        return store_error(st, err, rc, "begin batch");
    }
    st->outbox_next = st->outbox_committed;
    batch_here = st;
    if (st->ov == NULL) {
        ov_init(st);
    }
    return 0;
}

/* Double the map after MDB_MAP_FULL; no transaction may be open. */
static void grow_map(struct rs_store *st)
{
    uint64_t want = st->map_bytes * 2;

    if (want > MAP_MAX_BYTES) {
        want = MAP_MAX_BYTES;
    }
    if (want == st->map_bytes) {
        RS_LOG_ERROR("map full at its limit size_mb=%llu", (unsigned long long)(want >> 20));
        return;
    }
    if (mdb_env_set_mapsize(st->env, (size_t)want) == 0) {
        RS_LOG_WARN("map full, growing size_mb=%llu", (unsigned long long)(want >> 20));
        st->map_bytes = want;
    }
}

/* ---- Write-back cache ----
 *
 * Inside a batch, puts and deletes are kept in a hash table and reach the LMDB transaction
 * only at commit, sorted by key (or earlier: before a seek of the same database, before a
 * count, and when the cache grows large). A key written several times in a batch
 * (a lead saved by its creation and by its touch, a timer armed and cancelled) costs one
 * LMDB write or none, and the B-tree descents that remain are made in key order. Reads look
 * in the cache first, and a read that went to LMDB is remembered, found or not, so that the
 * write or delete that usually follows needs no second descent. What a batch sees is exactly
 * what it would see with the writes applied at once.
 */

/* A full flush once the batch has put a quarter of the map, or OV_FLUSH_MAX: bounds the
 * cache, and a map too small for the batch still fails at a put, not only at commit. */
#define OV_FLUSH_MAX ((size_t)64 << 20)
#define OV_CHUNK     ((size_t)256 << 10)

enum { TXN_NO, TXN_YES, TXN_UNKNOWN }; /* does the transaction hold the key? */

struct ov_key {
    const uint8_t *ptr;
    uint32_t len;
    uint32_t hash;
    uint8_t db;
};

struct ov_entry {
    struct ov_key k; /* first: the table's key */
    bool present;    /* the batch sees a value (else the key is deleted or absent) */
    bool dirty;      /* differs from the transaction */
    bool listed;     /* in st->dirty[db] */
    bool borrowed;   /* val points into LMDB memory, valid while gen matches */
    uint8_t in_txn;
    uint32_t gen;
    const uint8_t *val;
    size_t vlen;
    uint8_t *vbuf; /* owned value buffer, in a chunk */
    size_t vcap;
    uint64_t prefix[2]; /* the key's first 16 bytes, big-endian: most compares stop there */
    uint8_t bytes[];    /* the key */
};

/* Memory for the batch's cache, from chunks reused batch after batch; a value larger than a
 * chunk gets a chunk of its own, freed when the batch ends. */
static void *ov_alloc(struct rs_store *st, size_t len)
{
    void *p;

    len = (len + 15) & ~(size_t)15;
    if (len > OV_CHUNK) {
        p = rs_xmalloc(len);
        g_ptr_array_add(st->big, p);
        return p;
    }
    if (st->chunk_used + len > OV_CHUNK) {
        st->chunk++;
        st->chunk_used = 0;
    }
    if (st->chunk == st->chunks->len) {
        g_ptr_array_add(st->chunks, rs_xmalloc(OV_CHUNK));
    }
    p = (uint8_t *)st->chunks->pdata[st->chunk] + st->chunk_used;
    st->chunk_used += len;
    return p;
}

static uint32_t ov_hash_of(uint8_t db, const uint8_t *p, size_t len)
{
    return (uint32_t)XXH3_64bits_withSeed(p, len, db);
}

static guint ov_hash(gconstpointer p)
{
    return ((const struct ov_key *)p)->hash;
}

static gboolean ov_equal(gconstpointer a, gconstpointer b)
{
    const struct ov_key *x = a;
    const struct ov_key *y = b;

    return x->hash == y->hash && x->db == y->db && x->len == y->len &&
           memcmp(x->ptr, y->ptr, x->len) == 0;
}

/* LMDB's default order: bytes, then the shorter key first. */
static int ov_cmp(const struct ov_entry *x, const struct ov_entry *y)
{
    int c;

    if (x->prefix[0] != y->prefix[0]) {
        return x->prefix[0] < y->prefix[0] ? -1 : 1;
    }
    if (x->prefix[1] != y->prefix[1]) {
        return x->prefix[1] < y->prefix[1] ? -1 : 1;
    }
    c = memcmp(x->k.ptr, y->k.ptr, x->k.len < y->k.len ? x->k.len : y->k.len);
    return c != 0 ? c : (x->k.len > y->k.len) - (x->k.len < y->k.len);
}

static void ov_swap(struct ov_entry **a, size_t i, size_t j)
{
    struct ov_entry *t = a[i];

    a[i] = a[j];
    a[j] = t;
}

/* Sort entries by key: a quicksort with the compare inlined (qsort's indirect calls and
 * merge buffer cost more than the writes they order). */
static void ov_sort(struct ov_entry **a, size_t n)
{
    while (n > 12) {
        size_t i = 0, j = n - 1, mid = n / 2;
        struct ov_entry *pivot;

        /* Median of three, so that sorted runs do not degrade it. */
        if (ov_cmp(a[mid], a[0]) < 0) {
            ov_swap(a, mid, 0);
        }
        if (ov_cmp(a[n - 1], a[mid]) < 0) {
            ov_swap(a, n - 1, mid);
            if (ov_cmp(a[mid], a[0]) < 0) {
                ov_swap(a, mid, 0);
            }
        }
        pivot = a[mid];
        for (;;) {
            while (ov_cmp(a[i], pivot) < 0) {
                i++;
            }
            while (ov_cmp(pivot, a[j]) < 0) {
                j--;
            }
            if (i >= j) {
                break;
            }
            ov_swap(a, i, j);
            i++;
            j--;
        }
        /* a[0..j] <= pivot <= a[j+1..n): recurse into the smaller side, loop on the other. */
        if (j + 1 < n - j - 1) {
            ov_sort(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            ov_sort(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        struct ov_entry *x = a[i];
        size_t j = i;

        while (j > 0 && ov_cmp(x, a[j - 1]) < 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void ov_init(struct rs_store *st)
{
    st->ov = g_hash_table_new(ov_hash, ov_equal);
    st->chunks = g_ptr_array_new_with_free_func(free);
    st->big = g_ptr_array_new_with_free_func(free);
    for (int i = 0; i < RS_DB__COUNT; i++) {
        st->dirty[i] = g_ptr_array_new();
    }
}

static void ov_release(struct rs_store *st)
{
    if (st->ov != NULL) {
        g_hash_table_destroy(st->ov);
        g_ptr_array_free(st->chunks, TRUE);
        g_ptr_array_free(st->big, TRUE);
        for (int i = 0; i < RS_DB__COUNT; i++) {
            g_ptr_array_free(st->dirty[i], TRUE);
        }
        st->ov = NULL;
    }
}

/* Forget every change: the transaction is gone or holds them all. */
static void ov_clear(struct rs_store *st)
{
    if (st->ov != NULL) {
        g_hash_table_remove_all(st->ov);
        for (int i = 0; i < RS_DB__COUNT; i++) {
            g_ptr_array_set_size(st->dirty[i], 0);
        }
        g_ptr_array_set_size(st->big, 0);
    }
    st->chunk = 0;
    st->chunk_used = 0;
    st->ov_bytes = 0;
}

static struct ov_entry *ov_find(struct rs_store *st, enum rs_db db, struct rs_bytes key,
                                uint32_t hash)
{
    struct ov_key probe = { key.ptr, (uint32_t)key.len, hash, (uint8_t)db };

    return g_hash_table_lookup(st->ov, &probe);
}

static struct ov_entry *ov_add(struct rs_store *st, enum rs_db db, struct rs_bytes key,
                               uint32_t hash)
{
    struct ov_entry *e = ov_alloc(st, sizeof(*e) + key.len);
    uint8_t pfx[16] = { 0 };

    memset(e, 0, sizeof(*e));
    memcpy(e->bytes, key.ptr, key.len);
    memcpy(pfx, key.ptr, key.len < 16 ? key.len : 16);
    e->prefix[0] = rs_store_get_u64(pfx);
    e->prefix[1] = rs_store_get_u64(pfx + 8);
    e->k = (struct ov_key){ e->bytes, (uint32_t)key.len, hash, (uint8_t)db };
    g_hash_table_add(st->ov, e);
    return e;
}

static void ov_mark_dirty(struct rs_store *st, struct ov_entry *e)
{
    e->dirty = true;
    if (!e->listed) {
        e->listed = true;
        g_ptr_array_add(st->dirty[e->k.db], e);
    }
}

/* Write db's pending changes into the transaction, in key order. Returns an LMDB code. */
static int ov_flush_db(struct rs_store *st, enum rs_db db)
{
    GPtrArray *arr = st->dirty[db];
    MDB_cursor *cur = NULL;
    int rc;

    if (arr->len == 0) {
        return 0;
    }
    ov_sort((struct ov_entry **)arr->pdata, arr->len);
    /* One cursor for the sorted run: LMDB searches a key within the cursor's current page
     * first, so neighbours on one page cost no descent from the root. */
    rc = mdb_cursor_open(st->txn, st->dbi[db], &cur);
    for (guint i = 0; i < arr->len && rc == 0; i++) {
        struct ov_entry *e = arr->pdata[i];
        MDB_val k = { e->k.len, e->bytes };

        e->listed = false;
        if (!e->dirty) {
            continue;
        }
        if (e->present) {
            MDB_val v = { e->vlen, (void *)(uintptr_t)e->val };

            rc = mdb_cursor_put(cur, &k, &v, 0);
            e->in_txn = TXN_YES;
        } else {
            MDB_val v;

            rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
            rc = rc == 0 ? mdb_cursor_del(cur, 0) : rc == MDB_NOTFOUND ? 0 : rc;
            e->in_txn = TXN_NO;
        }
        e->dirty = false;
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    g_ptr_array_set_size(arr, 0);
    st->gen[db]++;
    return rc;
}

static int ov_flush_all(struct rs_store *st)
{
    int rc = 0;

    for (int i = 0; i < RS_DB__COUNT && rc == 0; i++) {
        rc = ov_flush_db(st, (enum rs_db)i);
    }
    return rc;
}

/* After a failed write into the transaction: it is unusable, abort; grow if it was full. */
static int ov_fail(struct rs_store *st, struct rs_err *err, int rc, const char *what)
{
    rs_store_abort(st);
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        grow_map(st);
    }
    return store_error(st, err, rc, what);
}

/* A read inside the batch: the cache, else the transaction (remembered). */
static int ov_get(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_bytes *val,
                  struct rs_err *err)
{
    uint32_t hash = ov_hash_of((uint8_t)db, key.ptr, key.len);
    struct ov_entry *e = ov_find(st, db, key, hash);
    MDB_val k = to_val(key);
    MDB_val v;
    int rc;

    if (e != NULL && !e->present) {
        return RS_ENOTFOUND;
    }
    if (e != NULL && (!e->borrowed || e->gen == st->gen[db])) {
        *val = (struct rs_bytes){ e->val, e->vlen };
        return 0;
    }
    rc = mdb_get(st->txn, st->dbi[db], &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return store_error(st, err, rc, "get");
    }
    if (e == NULL) {
        e = ov_add(st, db, key, hash);
    }
    if (rc == MDB_NOTFOUND) {
        e->present = false;
        e->in_txn = TXN_NO;
        return RS_ENOTFOUND;
    }
    e->present = true;
    e->borrowed = true;
    e->in_txn = TXN_YES;
    e->gen = st->gen[db];
    e->val = v.mv_data;
    e->vlen = v.mv_size;
    *val = from_val(v);
    return 0;
}

static int ov_put(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_bytes val,
                  struct rs_err *err)
{
    uint32_t hash = ov_hash_of((uint8_t)db, key.ptr, key.len);
    struct ov_entry *e = ov_find(st, db, key, hash);

    if (e == NULL) {
        e = ov_add(st, db, key, hash);
        e->in_txn = TXN_UNKNOWN;
    }
    if (val.len > e->vcap) {
        /* val may point into the old buffer (a put of what a get returned): copy first. */
        size_t cap = val.len < 2 * e->vcap ? 2 * e->vcap : val.len;
        uint8_t *buf = ov_alloc(st, cap);

        memcpy(buf, val.ptr, val.len); /* the old buffer stays with the batch */
        e->vbuf = buf;
        e->vcap = cap;
    } else if (val.len > 0) {
        memmove(e->vbuf, val.ptr, val.len);
    }
    e->present = true;
    e->borrowed = false;
    e->val = e->vbuf;
    e->vlen = val.len;
    ov_mark_dirty(st, e);
    st->ov_bytes += key.len + val.len;
    if (st->ov_bytes > OV_FLUSH_MAX || st->ov_bytes > st->map_bytes / 4) {
        int rc = ov_flush_all(st);

        if (rc != 0) {
            return ov_fail(st, err, rc, "put");
        }
        ov_clear(st);
    }
    return 0;
}

static int ov_del(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_err *err)
{
    uint32_t hash = ov_hash_of((uint8_t)db, key.ptr, key.len);
    struct ov_entry *e = ov_find(st, db, key, hash);
    MDB_val k = to_val(key);
    int rc;

    if (e != NULL) {
        if (!e->present) {
            return RS_ENOTFOUND;
        }
        e->present = false;
        e->borrowed = false;
        e->vlen = 0;
        if (e->in_txn == TXN_NO) {
            e->dirty = false; /* put and deleted within the batch: nothing to write */
        } else {
            ov_mark_dirty(st, e);
        }
        return 0;
    }
    /* Unknown to the cache: delete at once, which also tells whether the key was there. */
    rc = mdb_del(st->txn, st->dbi[db], &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ov_fail(st, err, rc, "del");
    }
    if (rc == 0) {
        st->gen[db]++;
    }
    e = ov_add(st, db, key, hash);
    e->in_txn = TXN_NO;
    return rc == MDB_NOTFOUND ? RS_ENOTFOUND : 0;
}

int rs_store_commit(struct rs_store *st, struct rs_err *err)
{
    int rc;

    if (st->txn == NULL) {
        return rs_err_set(err, RS_ESTORE, "state store '%s': no batch open", st->dir);
    }
    rc = ov_flush_all(st);
    if (rc != 0) {
        return ov_fail(st, err, rc, "commit");
    }
    ov_clear(st);
    if (st->outbox_next != st->outbox_committed) {
        uint8_t seq[8];
        MDB_val k = meta_key(META_OUTBOX_SEQ);
        MDB_val v = { 8, seq };

        rs_store_put_u64(seq, st->outbox_next - 1);
        rc = mdb_put(st->txn, st->dbi[RS_DB_META], &k, &v, 0);
        if (rc != 0) {
            rs_store_abort(st);
            if (rc == MDB_MAP_FULL) {
                grow_map(st);
            }
            return store_error(st, err, rc, "outbox sequence");
        }
    }
    rc = mdb_txn_commit(st->txn);
    st->txn = NULL;
    batch_here = NULL;
    if (rc != 0) {
        st->epoch++; /* the batch is gone */
        if (rc == MDB_MAP_FULL) {
            grow_map(st);
        }
        return store_error(st, err, rc, "commit");
    }
    st->outbox_committed = st->outbox_next;
    return 0;
}

void rs_store_abort(struct rs_store *st)
{
    ov_clear(st);
    if (st->txn != NULL) {
        st->epoch++;
        mdb_txn_abort(st->txn);
        st->txn = NULL;
        batch_here = NULL;
    }
    st->outbox_next = st->outbox_committed;
}

uint64_t rs_store_epoch(const struct rs_store *st)
{
    return st->epoch;
}

void *rs_store_view(const struct rs_store *st, enum rs_store_view which)
{
    return st->view[which];
}

void rs_store_set_view(struct rs_store *st, enum rs_store_view which, void *view,
                       void (*release)(void *view))
{
    st->view[which] = view;
    st->view_release[which] = release;
}

bool rs_store_in_batch(const struct rs_store *st)
{
    return batch_here == st && st->txn != NULL;
}

int rs_store_read_begin(struct rs_store *st, struct rs_err *err)
{
    MDB_txn *txn;
    int rc;

    if (rs_store_in_batch(st)) {
        return rs_err_set(err, RS_ESTORE, "state store '%s': snapshot inside a batch", st->dir);
    }
    if (snap.depth > 0) {
        if (snap.st != st) {
            return rs_err_set(err, RS_ESTORE,
                              "state store '%s': this thread holds a snapshot of another store",
                              st->dir);
        }
        snap.depth++; /* nested: one consistent view for the outermost caller */
        return 0;
    }
    rc = begin_read(st, &txn);
    if (rc != 0) {
        return store_error(st, err, rc, "read snapshot");
    }
    snap.st = st;
    snap.txn = txn;
    snap.depth = 1;
    return 0;
}

void rs_store_read_end(struct rs_store *st)
{
    if (snap.st != st || snap.depth == 0) {
        return;
    }
    if (--snap.depth == 0) {
        mdb_txn_abort(snap.txn);
        snap.st = NULL;
        snap.txn = NULL;
    }
}

/* The transaction rs_store_get() and rs_store_seek() read from: the batch, else the snapshot. */
static int reading_txn(struct rs_store *st, MDB_txn **txn, struct rs_err *err)
{
    if (rs_store_in_batch(st)) {
        *txn = st->txn;
    } else if (snap.st == st && snap.depth > 0) {
        *txn = snap.txn;
    } else {
        return rs_err_set(err, RS_ESTORE, "state store '%s': no batch or snapshot open", st->dir);
    }
    return 0;
}

static int need_batch(struct rs_store *st, struct rs_err *err)
{
    if (st->txn == NULL) {
        return rs_err_set(err, RS_ESTORE, "state store '%s': no batch open", st->dir);
    }
    return 0;
}

int rs_store_get(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_bytes *val,
                 struct rs_err *err)
{
    MDB_val k = to_val(key);
    MDB_val v;
    MDB_txn *txn = NULL;
    int rc = reading_txn(st, &txn, err);

    if (rc != 0) {
        return rc;
    }
    if (!st->has_db[db]) {
        return RS_ENOTFOUND;
    }
    if (txn == st->txn) {
        return ov_get(st, db, key, val, err);
    }
    rc = mdb_get(txn, st->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND) {
        return RS_ENOTFOUND;
    }
    if (rc != 0) {
        return store_error(st, err, rc, "get");
    }
    *val = from_val(v);
    return 0;
}

int rs_store_put(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_bytes val,
                 struct rs_err *err)
{
    int rc = need_batch(st, err);

    return rc != 0 ? rc : ov_put(st, db, key, val, err);
}

int rs_store_del(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_err *err)
{
    int rc = need_batch(st, err);

    return rc != 0 ? rc : ov_del(st, db, key, err);
}

int rs_store_seek(struct rs_store *st, enum rs_db db, struct rs_bytes from, struct rs_bytes *key,
                  struct rs_bytes *val, struct rs_err *err)
{
    MDB_cursor *cur;
    MDB_val k = to_val(from);
    MDB_val v;
    MDB_txn *txn = NULL;
    int rc = reading_txn(st, &txn, err);

    if (rc != 0) {
        return rc;
    }
    if (!st->has_db[db]) {
        return RS_ENOTFOUND;
    }
    if (txn == st->txn && st->dirty[db]->len > 0) {
        /* A scan sees the transaction: the database's pending writes go there first. */
        rc = ov_flush_db(st, db);
        if (rc != 0) {
            return ov_fail(st, err, rc, "seek");
        }
    }
    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return store_error(st, err, rc, "cursor");
    }
    rc = mdb_cursor_get(cur, &k, &v, from.len == 0 ? MDB_FIRST : MDB_SET_RANGE);
    /* The data stays valid after the close: until the next write in a batch, for the life of a
     * snapshot. */
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        return RS_ENOTFOUND;
    }
    if (rc != 0) {
        return store_error(st, err, rc, "seek");
    }
    *key = from_val(k);
    *val = from_val(v);
    return 0;
}

/* Offsets key: topic bytes, a NUL, then the partition big-endian. */
static size_t offset_key(uint8_t *buf, size_t cap, const char *topic, int32_t partition)
{
    size_t len = strlen(topic);

    if (len + 5 > cap) {
        len = cap - 5; /* topic names are at most 249 bytes; cap is larger */
    }
    memcpy(buf, topic, len);
    buf[len] = 0;
    rs_store_put_u32(buf + len + 1, (uint32_t)partition);
    return len + 5;
}

int rs_store_offset_get(struct rs_store *st, const char *topic, int32_t partition,
                        struct rs_store_offset *off, struct rs_err *err)
{
    uint8_t kbuf[300];
    MDB_val k = { offset_key(kbuf, sizeof(kbuf), topic, partition), kbuf };
    MDB_val v;
    MDB_txn *txn = st->txn;
    int rc;

    if (txn == NULL) {
        rc = begin_read(st, &txn);
        if (rc != 0) {
            return store_error(st, err, rc, "read snapshot");
        }
        rc = mdb_get(txn, st->dbi[RS_DB_OFFSETS], &k, &v);
    } else {
        struct rs_bytes b;

        rc = ov_get(st, RS_DB_OFFSETS, (struct rs_bytes){ kbuf, k.mv_size }, &b, err);
        if (rc != 0) {
            return rc;
        }
        v = (MDB_val){ b.len, (void *)(uintptr_t)b.ptr };
    }
    if (rc == 0 && v.mv_size == 24) {
        off->next_offset = (int64_t)rs_store_get_u64(v.mv_data);
        off->max_ts_ms = (int64_t)rs_store_get_u64((const uint8_t *)v.mv_data + 8);
        off->applied = rs_store_get_u64((const uint8_t *)v.mv_data + 16);
    } else if (rc == 0) {
        rc = rs_err_set(err, RS_ESTORE, "state store '%s': offset record of %s[%d] is corrupt",
                        st->dir, topic, partition);
    }
    if (txn != st->txn) {
        mdb_txn_abort(txn);
    }
    if (rc == MDB_NOTFOUND) {
        return RS_ENOTFOUND;
    }
    return rc == 0 || rc == RS_ESTORE ? rc : store_error(st, err, rc, "offset read");
}

int rs_store_offset_put(struct rs_store *st, const char *topic, int32_t partition,
                        const struct rs_store_offset *off, struct rs_err *err)
{
    uint8_t kbuf[300];
    uint8_t vbuf[24];
    struct rs_bytes k = { kbuf, offset_key(kbuf, sizeof(kbuf), topic, partition) };
    struct rs_bytes v = { vbuf, sizeof(vbuf) };

    rs_store_put_u64(vbuf, (uint64_t)off->next_offset);
    rs_store_put_u64(vbuf + 8, (uint64_t)off->max_ts_ms);
    rs_store_put_u64(vbuf + 16, off->applied);
    return rs_store_put(st, RS_DB_OFFSETS, k, v, err);
}

int rs_store_offset_each(struct rs_store *st, rs_store_offset_cb *cb, void *opaque,
                         struct rs_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int stop = 0;
    int rc;

    rc = begin_read(st, &txn);
    if (rc != 0) {
        return store_error(st, err, rc, "read snapshot");
    }
    rc = mdb_cursor_open(txn, st->dbi[RS_DB_OFFSETS], &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_error(st, err, rc, "offsets cursor");
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char topic[256];
        struct rs_store_offset off;
        const uint8_t *p = v.mv_data;
        size_t tlen = k.mv_size - 5;

        if (k.mv_size < 6 || tlen >= sizeof(topic) || v.mv_size != 24) {
            continue;
        }
        memcpy(topic, k.mv_data, tlen);
        topic[tlen] = '\0';
        off.next_offset = (int64_t)rs_store_get_u64(p);
        off.max_ts_ms = (int64_t)rs_store_get_u64(p + 8);
        off.applied = rs_store_get_u64(p + 16);
        stop = cb(opaque, topic, (int32_t)rs_store_get_u32((const uint8_t *)k.mv_data + tlen + 1),
                  &off);
        if (stop != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (stop != 0) {
        return stop;
    }
    return rc == MDB_NOTFOUND ? 0 : store_error(st, err, rc, "offsets scan");
}

int rs_store_outbox_append(struct rs_store *st, struct rs_bytes record, uint64_t *seq,
                           struct rs_err *err)
{
    uint8_t kbuf[8];
    int rc;

    rs_store_put_u64(kbuf, st->outbox_next);
    rc = rs_store_put(st, RS_DB_OUTBOX, (struct rs_bytes){ kbuf, 8 }, record, err);
    if (rc == 0) {
        *seq = st->outbox_next++;
    }
    return rc;
}

/* LMDB's default order: bytes, then the shorter key first. */
static int bytes_cmp(const void *a, const void *b)
{
    const struct rs_bytes *x = a;
    const struct rs_bytes *y = b;
    int c = memcmp(x->ptr, y->ptr, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* The batch's cache entry of a key LMDB no longer holds (deleted behind the cache's back). */
static void ov_forget(struct rs_store *st, enum rs_db db, MDB_val k)
{
    struct ov_entry *e = ov_find(st, db, (struct rs_bytes){ k.mv_data, k.mv_size },
                                 ov_hash_of((uint8_t)db, k.mv_data, k.mv_size));

    if (e != NULL) {
        e->present = false;
        e->borrowed = false;
        e->dirty = false;
        e->vlen = 0;
        e->in_txn = TXN_NO;
    }
}

int rs_store_del_keys(struct rs_store *st, enum rs_db db, struct rs_bytes *keys, size_t n,
                      struct rs_err *err)
{
    MDB_cursor *cur = NULL;
    bool on_next = false; /* the cursor is on the entry after the last one deleted */
    int rc = need_batch(st, err);

    if (rc != 0 || n == 0) {
        return rc;
    }
    qsort(keys, n, sizeof(*keys), bytes_cmp);
    rc = mdb_cursor_open(st->txn, st->dbi[db], &cur);
    for (size_t i = 0; i < n && rc == 0; i++) {
        MDB_val k = to_val(keys[i]), v, ck;

        if (ov_find(st, db, keys[i], ov_hash_of((uint8_t)db, keys[i].ptr, keys[i].len)) != NULL) {
            /* The batch knows this key (written, read or deleted): its cache decides. */
            mdb_cursor_close(cur);
            cur = NULL;
            rc = ov_del(st, db, keys[i], err);
            if (rc != 0 && rc != RS_ENOTFOUND) {
                return rc;
            }
            rc = mdb_cursor_open(st->txn, st->dbi[db], &cur);
            on_next = false;
            continue;
        }
        /* Keys deleted together are often neighbours: after a delete the cursor usually stands
         * on the next one already, which costs no search. */
        rc = on_next ? mdb_cursor_get(cur, &ck, &v, MDB_GET_CURRENT) : MDB_NOTFOUND;
        if (rc != 0 || bytes_cmp(&(struct rs_bytes){ ck.mv_data, ck.mv_size }, &keys[i]) != 0) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
        }
        if (rc == MDB_NOTFOUND) {
            rc = 0; /* not there: asked twice, or never written */
            on_next = false;
            continue;
        }
        if (rc == 0) {
            rc = mdb_cursor_del(cur, 0);
            on_next = rc == 0;
        }
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    st->gen[db]++;
    return rc == 0 ? 0 : ov_fail(st, err, rc, "delete");
}

int rs_store_del_range(struct rs_store *st, enum rs_db db, struct rs_bytes from, uint32_t max,
                       rs_store_range_cb *cb, void *opaque, struct rs_err *err)
{
    MDB_cursor *cur;
    MDB_val k = to_val(from), v;
    uint32_t limit = max == 0 || max > INT_MAX ? INT_MAX : max;
    uint32_t deleted = 0;
    int stop = 0;
    int rc = need_batch(st, err);

    if (rc != 0) {
        return rc;
    }
    /* LMDB must hold the truth the cursor walks: the database's pending writes go first. */
    rc = ov_flush_db(st, db);
    if (rc == 0) {
        rc = mdb_cursor_open(st->txn, st->dbi[db], &cur);
    }
    if (rc != 0) {
        return ov_fail(st, err, rc, "delete range");
    }
    rc = mdb_cursor_get(cur, &k, &v, from.len == 0 ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0 && deleted < limit) {
        stop = cb(opaque, (struct rs_bytes){ k.mv_data, k.mv_size },
                  (struct rs_bytes){ v.mv_data, v.mv_size });
        if (stop <= 0) {
            break;
        }
        ov_forget(st, db, k);
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0) {
            deleted++;
            /* After a delete the cursor stands on the next entry, which MDB_NEXT returns. */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(cur);
    st->gen[db]++;
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ov_fail(st, err, rc, "delete range");
    }
    return stop < 0 ? stop : (int)deleted;
}

int rs_store_outbox_delete(struct rs_store *st, uint64_t *seqs, size_t n, struct rs_err *err)
{
    uint8_t *buf;
    struct rs_bytes *keys;
    int rc;

    if (n == 0) {
        return need_batch(st, err);
    }
    buf = rs_xmalloc(n * 8);
    keys = rs_xmalloc(n * sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        rs_store_put_u64(buf + 8 * i, seqs[i]);
        keys[i] = (struct rs_bytes){ buf + 8 * i, 8 };
    }
    rc = rs_store_del_keys(st, RS_DB_OUTBOX, keys, n, err);
    free(keys);
    free(buf);
    return rc;
}

int rs_store_outbox_scan(struct rs_store *st, uint64_t from_seq, rs_store_outbox_cb *cb,
                         void *opaque, struct rs_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t kbuf[8];
    MDB_val k = { 8, kbuf };
    MDB_val v;
    int stop = 0;
    int rc;

    rs_store_put_u64(kbuf, from_seq);
    rc = begin_read(st, &txn);
    if (rc != 0) {
        return store_error(st, err, rc, "read snapshot");
    }
    rc = mdb_cursor_open(txn, st->dbi[RS_DB_OUTBOX], &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_error(st, err, rc, "outbox cursor");
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            continue;
        }
        stop = cb(opaque, rs_store_get_u64(k.mv_data), from_val(v));
        if (stop != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (stop != 0) {
        return stop;
    }
    return rc == MDB_NOTFOUND ? 0 : store_error(st, err, rc, "outbox scan");
}

uint64_t rs_store_count(struct rs_store *st, enum rs_db db)
{
    MDB_txn *txn = rs_store_in_batch(st) ? st->txn : NULL;
    MDB_stat stat;
    uint64_t n = 0;

    if (!st->has_db[db]) {
        return 0;
    }
    if (txn == NULL && begin_read(st, &txn) != 0) {
        return 0;
    }
    if (mdb_stat(txn, st->dbi[db], &stat) == 0) {
        n = stat.ms_entries;
    }
    if (txn == st->txn && st->ov != NULL) {
        /* The batch's pending writes: what each changes in the count. */
        GPtrArray *arr = st->dirty[db];

        for (guint i = 0; i < arr->len; i++) {
            const struct ov_entry *e = arr->pdata[i];
            bool had = e->in_txn == TXN_YES;

            if (e->in_txn == TXN_UNKNOWN) {
                MDB_val k = { e->k.len, (void *)(uintptr_t)e->bytes };
                MDB_val v;

                had = mdb_get(txn, st->dbi[db], &k, &v) == 0;
            }
            if (e->dirty && e->present && !had) {
                n++;
            } else if (e->dirty && !e->present && had) {
                n--;
            }
        }
    }
    if (txn != st->txn) {
        mdb_txn_abort(txn);
    }
    return n;
}

void rs_store_usage(struct rs_store *st, uint64_t *map_bytes, uint64_t *used_bytes)
{
    MDB_envinfo info;
    MDB_stat stat;

    *map_bytes = st->map_bytes;
    *used_bytes = 0;
    if (mdb_env_info(st->env, &info) == 0 && mdb_env_stat(st->env, &stat) == 0) {
        *used_bytes = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
    }
}

int rs_store_sync(struct rs_store *st, struct rs_err *err)
{
    int rc = mdb_env_sync(st->env, 1);

    return rc == 0 ? 0 : store_error(st, err, rc, "sync");
}

/* ---- canonical dump ---- */

/* Hex digits written per fwrite(): a value of any size costs one call per this many. */
#define DUMP_CHUNK_BYTES 2048

/* Write `len` bytes as lowercase hex. Returns 0, or -1 if the stream failed. */
static int dump_hex(FILE *fp, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char buf[2 * DUMP_CHUNK_BYTES];

    while (len > 0) {
        size_t n = len < DUMP_CHUNK_BYTES ? len : DUMP_CHUNK_BYTES;

        for (size_t i = 0; i < n; i++) {
            buf[2 * i] = digits[p[i] >> 4];
            buf[2 * i + 1] = digits[p[i] & 0x0f];
        }
        if (fwrite(buf, 1, 2 * n, fp) != 2 * n) {
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

/*
 * Left out of the dump: what depends on when Kafka acknowledged a publish rather than on the
 * events applied. Keep in sync with the rs_store_dump() comment in store.h.
 */
static bool dump_skips(enum rs_db db, MDB_val key)
{
    static const char seq[] = META_OUTBOX_SEQ;

    if (db == RS_DB_OUTBOX) {
        return true;
    }
    return db == RS_DB_META && key.mv_size == sizeof(seq) - 1 &&
           memcmp(key.mv_data, seq, sizeof(seq) - 1) == 0;
}

/* Databases by name, so the dump's order does not depend on the order of enum rs_db. */
static void dump_order(enum rs_db order[RS_DB__COUNT])
{
    for (int i = 0; i < RS_DB__COUNT; i++) {
        int j = i;

        while (j > 0 && strcmp(db_names[order[j - 1]], db_names[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (enum rs_db)i;
    }
}

static int dump_write_error(struct rs_store *st, struct rs_err *err)
{
    return rs_err_set(err, RS_EIO, "cannot write the dump of state store '%s': %s", st->dir,
                      strerror(errno));
}

/* Dump one database from `txn`. Returns 0, RS_EIO or RS_ESTORE. */
static int dump_db(struct rs_store *st, MDB_txn *txn, enum rs_db db, FILE *fp, struct rs_err *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, st->dbi[db], &cur);

    if (rc != 0) {
        return store_error(st, err, rc, db_names[db]);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (dump_skips(db, k)) {
            continue;
        }
        if (fputs(db_names[db], fp) == EOF || fputc('\t', fp) == EOF ||
            dump_hex(fp, k.mv_data, k.mv_size) != 0 || fputc('\t', fp) == EOF ||
            dump_hex(fp, v.mv_data, v.mv_size) != 0 || fputc('\n', fp) == EOF) {
            mdb_cursor_close(cur);
            return dump_write_error(st, err); /* errno is still the stream's */
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : store_error(st, err, rc, db_names[db]);
}

int rs_store_dump(struct rs_store *st, void *out, struct rs_err *err)
{
    FILE *fp = out;
    enum rs_db order[RS_DB__COUNT];
    int rc = rs_store_read_begin(st, err);

    if (rc != 0) {
        return rc;
    }
    dump_order(order);
    for (int i = 0; i < RS_DB__COUNT && rc == 0; i++) {
        if (st->has_db[order[i]]) { /* a read-only store may predate a database: empty */
            rc = dump_db(st, snap.txn, order[i], fp, err);
        }
    }
    rs_store_read_end(st);
    if (rc == 0 && fflush(fp) != 0) {
        rc = dump_write_error(st, err); /* a buffered stream reports a full disk only here */
    }
    return rc;
}
