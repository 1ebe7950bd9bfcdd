#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"
#include "tmpdir.h"

#include <lmdb.h> /* only to build a state directory as an older version left it */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
    char *dir;
    struct rs_store *st;
};

static int store_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 1, NULL), 0);
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    struct fixture *f = *state;

    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

#define B(s) ((struct rs_bytes){ (s), strlen(s) })

static void reopen(struct fixture *f)
{
    rs_store_close(f->st);
    assert_int_equal(rs_store_open(&f->st, f->dir, 1, NULL), 0);
}

static void test_store_get_missing_key_returns_enotfound(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes val;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("nope"), &val, NULL), RS_ENOTFOUND);
    rs_store_abort(f->st);
}

static void test_store_commit_makes_writes_survive_reopen(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes val;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("k"), B("v1"), NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    reopen(f);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k"), &val, NULL), 0);
    assert_int_equal(val.len, 2);
    assert_memory_equal(val.ptr, "v1", 2);
    rs_store_abort(f->st);
}

static void test_store_abort_discards_state_offsets_and_outbox_together(void **state)
{
    struct fixture *f = *state;
    struct rs_store_offset off = { 42, 1000, 7 };
    struct rs_bytes val;
    uint64_t seq;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("k"), B("v"), NULL), 0);
    assert_int_equal(rs_store_offset_put(f->st, "events", 3, &off, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("alert"), &seq, NULL), 0);
    rs_store_abort(f->st);
    assert_false(rs_store_in_batch(f->st));

    assert_int_equal(rs_store_offset_get(f->st, "events", 3, &off, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_count(f->st, RS_DB_OUTBOX), 0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k"), &val, NULL), RS_ENOTFOUND);
    rs_store_abort(f->st);
}

static void test_store_offsets_are_per_topic_and_partition(void **state)
{
    struct fixture *f = *state;
    struct rs_store_offset a = { 10, 111, 10 }, b = { 20, 222, 19 }, c = { 30, 333, 30 };
    struct rs_store_offset got;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_offset_put(f->st, "events", 0, &a, NULL), 0);
    assert_int_equal(rs_store_offset_put(f->st, "events", 1, &b, NULL), 0);
    assert_int_equal(rs_store_offset_put(f->st, "events2", 0, &c, NULL), 0);
    /* Inside the batch the batch's own writes are visible. */
    assert_int_equal(rs_store_offset_get(f->st, "events", 1, &got, NULL), 0);
    assert_int_equal(got.next_offset, 20);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    reopen(f);
    assert_int_equal(rs_store_offset_get(f->st, "events", 0, &got, NULL), 0);
    assert_int_equal(got.next_offset, 10);
    assert_int_equal(got.max_ts_ms, 111);
    assert_int_equal(got.applied, 10);
    assert_int_equal(rs_store_offset_get(f->st, "events2", 0, &got, NULL), 0);
    assert_int_equal(got.next_offset, 30);
    assert_int_equal(rs_store_offset_get(f->st, "events", 2, &got, NULL), RS_ENOTFOUND);
}

static int collect(void *opaque, uint64_t seq, struct rs_bytes record)
{
    uint64_t *seen = opaque;

    seen[0]++;
    seen[seen[0]] = seq;
    assert_true(record.len > 0);
    return 0;
}

static void test_store_outbox_sequence_keeps_growing_across_restarts(void **state)
{
    struct fixture *f = *state;
    uint64_t s1, s2, s3;
    uint64_t seen[8] = { 0 };
    uint8_t k[8];

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("a"), &s1, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("b"), &s2, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_true(s2 > s1);

    /* Deliver both: the outbox is empty, yet a restart must not reuse their numbers. */
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    rs_store_put_u64(k, s1);
    assert_int_equal(rs_store_del(f->st, RS_DB_OUTBOX, (struct rs_bytes){ k, 8 }, NULL), 0);
    rs_store_put_u64(k, s2);
    assert_int_equal(rs_store_del(f->st, RS_DB_OUTBOX, (struct rs_bytes){ k, 8 }, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    reopen(f);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("c"), &s3, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_true(s3 > s2);

    assert_int_equal(rs_store_outbox_scan(f->st, 0, collect, seen, NULL), 0);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], s3);
}

/*
 * Acknowledgements out of order, twice, for a record already gone, for one the batch has
 * read, and for one appended in the same batch: exactly those records go, the rest stay.
 */
static void test_store_outbox_delete_removes_exactly_the_acknowledged(void **state)
{
    struct fixture *f = *state;
    uint64_t seq[12];
    uint64_t seen[16] = { 0 };
    uint64_t acked[8];
    uint8_t k[8];
    struct rs_bytes val;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rs_store_outbox_append(f->st, B("r"), &seq[i], NULL), 0);
    }
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    rs_store_put_u64(k, seq[8]);
    assert_int_equal(rs_store_get(f->st, RS_DB_OUTBOX, (struct rs_bytes){ k, 8 }, &val, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("new"), &seq[10], NULL), 0);
    acked[0] = seq[7];
    acked[1] = seq[3];
    acked[2] = seq[4];
    acked[3] = seq[3];
    acked[4] = seq[9] + 100; /* never written */
    acked[5] = seq[8];
    acked[6] = seq[10];
    acked[7] = seq[5];
    assert_int_equal(rs_store_outbox_delete(f->st, acked, 8, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_OUTBOX, (struct rs_bytes){ k, 8 }, &val, NULL),
                     RS_ENOTFOUND);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    assert_int_equal(rs_store_outbox_scan(f->st, 0, collect, seen, NULL), 0);
    assert_int_equal(seen[0], 5);
    assert_int_equal(seen[1], seq[0]);
    assert_int_equal(seen[2], seq[1]);
    assert_int_equal(seen[3], seq[2]);
    assert_int_equal(seen[4], seq[6]);
    assert_int_equal(seen[5], seq[9]);
}

static int below_k10(void *opaque, struct rs_bytes key, struct rs_bytes val)
{
    int *seen = opaque;

    (void)val;
    (*seen)++;
    return key.len >= 3 && memcmp(key.ptr, "k10", 3) < 0;
}

/*
 * A range delete walks one cursor over what the batch sees (its pending writes included) and
 * stops where the judge says; a keys delete takes keys in any order, twice, absent, pending.
 * Both leave the batch's cache telling the truth.
 */
static void test_store_range_and_keys_deletes_see_the_batch(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes val;
    struct rs_bytes keys[5];
    char name[8];
    int seen = 0;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (int i = 0; i < 20; i++) {
        (void)snprintf(name, sizeof(name), "k%02d", i);
        assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B(name), B("v"), NULL), 0);
    }
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("a"), B("v"), NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k05"), &val, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("k03x"), B("v"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("k20"), B("v"), NULL), 0);
    assert_int_equal(rs_store_del_range(f->st, RS_DB_ENTITIES, B("k"), 0, below_k10, &seen, NULL),
                     11);
    assert_int_equal(seen, 12); /* k00..k09, k03x, and k10 which stopped it */
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k05"), &val, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k03x"), &val, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k10"), &val, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("a"), &val, NULL), 0);
    /* At most 2, from k10 on. */
    seen = -100;
    assert_int_equal(rs_store_del_range(f->st, RS_DB_ENTITIES, B("k10"), 2, below_k10, &seen, NULL),
                     0);
    keys[0] = B("k15");
    keys[1] = B("k12");
    keys[2] = B("k12");
    keys[3] = B("k99");
    keys[4] = B("k20");
    assert_int_equal(rs_store_del_keys(f->st, RS_DB_ENTITIES, keys, 5, NULL), 0);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k12"), &val, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k15"), &val, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k20"), &val, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_get(f->st, RS_DB_ENTITIES, B("k13"), &val, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    /* 21 + k03x + k20 put, 11 + 3 deleted. */
    assert_int_equal(rs_store_count(f->st, RS_DB_ENTITIES), 9);
}

static void test_store_aborted_outbox_append_does_not_consume_a_sequence(void **state)
{
    struct fixture *f = *state;
    uint64_t s1, s2;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("x"), &s1, NULL), 0);
    rs_store_abort(f->st);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("y"), &s2, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(s1, s2);
}

static void test_store_map_full_aborts_batch_and_grows_map(void **state)
{
    struct fixture *f = *state;
    static char big[64 * 1024];
    char key[16];
    int rc = 0;
    int i;
    uint64_t map_before, map_after, used;

    rs_store_usage(f->st, &map_before, &used);
    memset(big, 'x', sizeof(big));
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (i = 0; i < 64 && rc == 0; i++) {
        (void)snprintf(key, sizeof(key), "k%03d", i);
        rc = rs_store_put(f->st, RS_DB_ENTITIES, B(key), (struct rs_bytes){ big, sizeof(big) },
                          NULL);
    }
    assert_int_equal(rc, RS_ESTORE_FULL); /* 4 MiB into a 1 MiB map */
    assert_false(rs_store_in_batch(f->st));
    rs_store_usage(f->st, &map_after, &used);
    assert_true(map_after > map_before);

    /* The caller runs the batch again; with enough growth it fits. */
    for (int attempt = 0; attempt < 8; attempt++) {
        assert_int_equal(rs_store_begin(f->st, NULL), 0);
        for (i = 0, rc = 0; i < 64 && rc == 0; i++) {
            (void)snprintf(key, sizeof(key), "k%03d", i);
            rc = rs_store_put(f->st, RS_DB_ENTITIES, B(key), (struct rs_bytes){ big, sizeof(big) },
                              NULL);
        }
        if (rc == 0) {
            rc = rs_store_commit(f->st, NULL);
        }
        if (rc != RS_ESTORE_FULL) {
            break;
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(rs_store_count(f->st, RS_DB_ENTITIES), 64);
}

/*
 * The batch keeps its writes in a cache until commit (store.c): whatever the mix of puts,
 * deletes, reads, seeks, counts, commits and aborts, every answer must be the one a store
 * writing at once would give. A model of the databases (a value or nothing per key) checks
 * each answer along a long pseudo-random run; values up to 16 KiB make the cache flush in
 * the middle of batches, and a key space small enough makes keys come back often.
 */
#define MODEL_KEYS 48
#define MODEL_DBS  3

struct model {
    uint8_t key[MODEL_KEYS][24];
    size_t klen[MODEL_KEYS];
    uint8_t *val[MODEL_DBS][MODEL_KEYS]; /* NULL: absent */
    size_t vlen[MODEL_DBS][MODEL_KEYS];
};

static const enum rs_db model_db[MODEL_DBS] = { RS_DB_ENTITIES, RS_DB_TIMERS, RS_DB_DEDUP };

/* LMDB's order: bytes, then the shorter key first. */
static int model_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static void model_copy(struct model *to, const struct model *from)
{
    for (int d = 0; d < MODEL_DBS; d++) {
        for (int i = 0; i < MODEL_KEYS; i++) {
            free(to->val[d][i]);
            to->val[d][i] = NULL;
            to->vlen[d][i] = from->vlen[d][i];
            if (from->val[d][i] != NULL) {
                to->val[d][i] = malloc(from->vlen[d][i] + 1);
                memcpy(to->val[d][i], from->val[d][i], from->vlen[d][i]);
            }
        }
    }
}

static void model_free(struct model *m)
{
    for (int d = 0; d < MODEL_DBS; d++) {
        for (int i = 0; i < MODEL_KEYS; i++) {
            free(m->val[d][i]);
        }
    }
}

/* Check every key of every database, and a seek from every key, against the model. */
static void model_check_all(struct rs_store *st, const struct model *m)
{
    for (int d = 0; d < MODEL_DBS; d++) {
        uint64_t present = 0;

        /* First, while the batch's writes are still pending (a seek writes them). */
        for (int i = 0; i < MODEL_KEYS; i++) {
            present += m->val[d][i] != NULL;
        }
        assert_int_equal(rs_store_count(st, model_db[d]), present);
        for (int i = 0; i < MODEL_KEYS; i++) {
            struct rs_bytes v, k;
            int best = -1;
            int rc =
                rs_store_get(st, model_db[d], (struct rs_bytes){ m->key[i], m->klen[i] }, &v, NULL);

            if (m->val[d][i] == NULL) {
                assert_int_equal(rc, RS_ENOTFOUND);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(v.len, m->vlen[d][i]);
                assert_memory_equal(v.ptr, m->val[d][i], v.len);
            }
            for (int j = 0; j < MODEL_KEYS; j++) {
                if (m->val[d][j] != NULL &&
                    model_cmp(m->key[j], m->klen[j], m->key[i], m->klen[i]) >= 0 &&
                    (best < 0 ||
                     model_cmp(m->key[j], m->klen[j], m->key[best], m->klen[best]) < 0)) {
                    best = j;
                }
            }
            rc = rs_store_seek(st, model_db[d], (struct rs_bytes){ m->key[i], m->klen[i] }, &k, &v,
                               NULL);
            if (best < 0) {
                assert_int_equal(rc, RS_ENOTFOUND);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(k.len, m->klen[best]);
                assert_memory_equal(k.ptr, m->key[best], k.len);
                assert_int_equal(v.len, m->vlen[d][best]);
                assert_memory_equal(v.ptr, m->val[d][best], v.len);
            }
        }
        assert_int_equal(rs_store_count(st, model_db[d]), present);
    }
}

static void test_store_batch_answers_as_if_every_write_were_applied_at_once(void **state)
{
    struct fixture *f = *state;
    static uint8_t buf[16384];
    struct model batch, committed;
    uint32_t seed = 12345;
    bool open = false;

    memset(&batch, 0, sizeof(batch));
    memset(&committed, 0, sizeof(committed));
    for (int i = 0; i < MODEL_KEYS; i++) {
        /* Lengths 1 to 24, shared prefixes longer than 16 bytes, NUL bytes, a key and its
         * extension ("ab" < "ab\0" < "ab\0\1"). */
        size_t len = 1 + (size_t)(i * 7 % 24);

        memset(batch.key[i], i % 4 == 0 ? 0 : 'p', sizeof(batch.key[i]));
        batch.key[i][len - 1] = (uint8_t)(i % 5);
        if (len > 2) {
            batch.key[i][len - 2] = (uint8_t)('a' + i % 3);
        }
        batch.klen[i] = len;
    }
    memcpy(committed.key, batch.key, sizeof(batch.key));
    memcpy(committed.klen, batch.klen, sizeof(batch.klen));
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 31 + 7);
    }
    /* Keys made equal by the construction would make the model wrong. */
    for (int i = 0; i < MODEL_KEYS; i++) {
        for (int j = i + 1; j < MODEL_KEYS; j++) {
            if (model_cmp(batch.key[i], batch.klen[i], batch.key[j], batch.klen[j]) == 0) {
                batch.klen[j] = committed.klen[j] = 24;
                batch.key[j][23] = committed.key[j][23] = (uint8_t)(200 + j);
            }
        }
    }
    for (int step = 0; step < 20000; step++) {
        int op, d, i, rc;
        bool long_batch;
        struct rs_bytes v;

        seed = seed * 1103515245u + 12345u;
        op = (int)(seed >> 16) % 100;
        /* Every other stretch of 2500 steps is one long batch: it outgrows the cache (a
         * flush in the middle) and at first the map (RS_ESTORE_FULL, and the map grows). */
        long_batch = (step / 2500) % 2 == 1;
        if (long_batch && op >= 83) {
            op = (int)(seed >> 12) % 83;
        }
        d = (int)(seed >> 8) % MODEL_DBS;
        i = (int)((seed >> 20) * 7u) % MODEL_KEYS;
        if (!open) {
            assert_int_equal(rs_store_begin(f->st, NULL), 0);
            open = true;
        }
        if (op < 35) {
            size_t len = (seed >> 4) % (long_batch ? 4 : 16) == 0 ? (seed >> 10) % sizeof(buf)
                                                                  : (seed >> 10) % 40;
            const uint8_t *src = buf + (seed >> 3) % 64;

            if (len + 64 > sizeof(buf)) {
                len = sizeof(buf) - 64;
            }
            rc = rs_store_put(f->st, model_db[d], (struct rs_bytes){ batch.key[i], batch.klen[i] },
                              (struct rs_bytes){ src, len }, NULL);
            if (rc == RS_ESTORE_FULL) {
                /* The map grew; the batch is gone, as a batch that failed. */
                assert_false(rs_store_in_batch(f->st));
                model_copy(&batch, &committed);
                open = false;
                continue;
            }
            assert_int_equal(rc, 0);
            free(batch.val[d][i]);
            batch.val[d][i] = malloc(len + 1);
            memcpy(batch.val[d][i], src, len);
            batch.vlen[d][i] = len;
        } else if (op < 60) {
            rc = rs_store_del(f->st, model_db[d], (struct rs_bytes){ batch.key[i], batch.klen[i] },
                              NULL);
            assert_int_equal(rc, batch.val[d][i] == NULL ? RS_ENOTFOUND : 0);
            free(batch.val[d][i]);
            batch.val[d][i] = NULL;
        } else if (op < 80) {
            rc = rs_store_get(f->st, model_db[d], (struct rs_bytes){ batch.key[i], batch.klen[i] },
                              &v, NULL);
            if (batch.val[d][i] == NULL) {
                assert_int_equal(rc, RS_ENOTFOUND);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(v.len, batch.vlen[d][i]);
                assert_memory_equal(v.ptr, batch.val[d][i], v.len);
            }
        } else if (op < 83) {
            model_check_all(f->st, &batch);
        } else if (op < 95) {
            rc = rs_store_commit(f->st, NULL);
            open = false;
            if (rc == RS_ESTORE_FULL) {
                model_copy(&batch, &committed);
                continue;
            }
            assert_int_equal(rc, 0);
            model_copy(&committed, &batch);
        } else {
            rs_store_abort(f->st);
            open = false;
            model_copy(&batch, &committed);
        }
    }
    if (open) {
        rs_store_abort(f->st);
        model_copy(&batch, &committed);
    }
    /* What the commits left, through a snapshot and after a reopen. */
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    model_check_all(f->st, &committed);
    rs_store_read_end(f->st);
    reopen(f);
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    model_check_all(f->st, &committed);
    rs_store_read_end(f->st);
    model_free(&batch);
    model_free(&committed);
}

static void test_store_seek_finds_first_key_at_or_after(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes k, v;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_TIMERS, B("b1"), B("x"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_TIMERS, B("b3"), B("y"), NULL), 0);
    assert_int_equal(rs_store_seek(f->st, RS_DB_TIMERS, B("b2"), &k, &v, NULL), 0);
    assert_int_equal(k.len, 2);
    assert_memory_equal(k.ptr, "b3", 2);
    assert_int_equal(rs_store_seek(f->st, RS_DB_TIMERS, B("c"), &k, &v, NULL), RS_ENOTFOUND);
    rs_store_abort(f->st);
}

static void test_store_refuses_batch_inside_batch(void **state)
{
    struct fixture *f = *state;
    struct rs_err err;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_begin(f->st, &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "already open"));
    rs_store_abort(f->st);
    assert_int_equal(rs_store_commit(f->st, &err), RS_ESTORE);
}

static void test_store_signed_keys_sort_numerically(void **state)
{
    uint8_t a[8], b[8], c[8];

    (void)state;
    rs_store_put_u64(a, rs_store_i64_key(-5));
    rs_store_put_u64(b, rs_store_i64_key(0));
    rs_store_put_u64(c, rs_store_i64_key(INT64_C(1772409600000)));
    assert_true(memcmp(a, b, 8) < 0);
    assert_true(memcmp(b, c, 8) < 0);
    assert_int_equal(rs_store_key_i64(rs_store_get_u64(a)), -5);
}

static void put_commit(struct rs_store *st, const char *key, const char *val)
{
    assert_int_equal(rs_store_begin(st, NULL), 0);
    assert_int_equal(rs_store_put(st, RS_DB_AGGREGATES, B(key), B(val), NULL), 0);
    assert_int_equal(rs_store_commit(st, NULL), 0);
}

static void assert_get(struct rs_store *st, const char *key, const char *want)
{
    struct rs_bytes val;

    assert_int_equal(rs_store_get(st, RS_DB_AGGREGATES, B(key), &val, NULL), 0);
    assert_int_equal(val.len, strlen(want));
    assert_memory_equal(val.ptr, want, val.len);
}

static void test_store_snapshot_keeps_the_commit_it_started_from(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes k, v;

    put_commit(f->st, "a", "v1");
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    assert_get(f->st, "a", "v1");
    put_commit(f->st, "a", "v2"); /* the writer is not blocked by the snapshot */
    put_commit(f->st, "b", "new");
    assert_get(f->st, "a", "v1");
    assert_int_equal(rs_store_seek(f->st, RS_DB_AGGREGATES, B("a\x01"), &k, &v, NULL),
                     RS_ENOTFOUND);
    rs_store_read_end(f->st);
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    assert_get(f->st, "a", "v2");
    assert_int_equal(rs_store_seek(f->st, RS_DB_AGGREGATES, B("a\x01"), &k, &v, NULL), 0);
    assert_int_equal(k.len, 1);
    assert_memory_equal(k.ptr, "b", 1);
    assert_memory_equal(v.ptr, "new", 3);
    rs_store_read_end(f->st);
}

static void test_store_get_needs_a_batch_or_a_snapshot(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes k, v;
    struct rs_err err;

    put_commit(f->st, "a", "v1");
    assert_int_equal(rs_store_get(f->st, RS_DB_AGGREGATES, B("a"), &v, &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "no batch or snapshot"));
    assert_int_equal(rs_store_seek(f->st, RS_DB_AGGREGATES, B(""), &k, &v, NULL), RS_ESTORE);
    rs_store_read_end(f->st); /* without a begin: nothing to end */
}

static void test_store_snapshots_nest_and_are_refused_inside_a_batch(void **state)
{
    struct fixture *f = *state;
    struct rs_bytes v;

    put_commit(f->st, "a", "v1");
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    rs_store_read_end(f->st);
    assert_get(f->st, "a", "v1"); /* the outer one is still open */
    rs_store_read_end(f->st);
    assert_int_equal(rs_store_get(f->st, RS_DB_AGGREGATES, B("a"), &v, NULL), RS_ESTORE);

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_read_begin(f->st, NULL), RS_ESTORE);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, B("a"), B("v2"), NULL), 0);
    assert_get(f->st, "a", "v2"); /* the batch's own write */
    rs_store_abort(f->st);

    /* A snapshot open when a batch begins: the batch is what its thread reads. */
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, B("a"), B("v3"), NULL), 0);
    assert_get(f->st, "a", "v3");
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_get(f->st, "a", "v1");
    rs_store_read_end(f->st);
}

struct reader {
    struct rs_store *st;
    int begin_rc;
    int get_rc;
    bool in_batch;
    char val[8];
};

static void *read_elsewhere(void *arg)
{
    struct reader *r = arg;
    struct rs_bytes v;

    r->in_batch = rs_store_in_batch(r->st);
    r->begin_rc = rs_store_read_begin(r->st, NULL);
    r->get_rc = rs_store_get(r->st, RS_DB_AGGREGATES, B("a"), &v, NULL);
    if (r->get_rc == 0 && v.len < sizeof(r->val)) {
        memcpy(r->val, v.ptr, v.len);
    }
    rs_store_read_end(r->st);
    return NULL;
}

static void test_store_another_thread_reads_the_last_commit_during_a_batch(void **state)
{
    struct fixture *f = *state;
    struct reader r = { f->st, -1, -1, true, { 0 } };
    pthread_t th;

    put_commit(f->st, "a", "old");
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, B("a"), B("new"), NULL), 0);
    assert_int_equal(pthread_create(&th, NULL, read_elsewhere, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_false(r.in_batch);
    assert_int_equal(r.begin_rc, 0);
    assert_int_equal(r.get_rc, 0);
    assert_string_equal(r.val, "old");
    assert_true(rs_store_in_batch(f->st));
    assert_get(f->st, "a", "new");
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
}

static void test_store_open_readonly_without_state_returns_enotfound(void **state)
{
    struct fixture *f = *state;
    char *empty = rs_test_tmpdir_new();
    char missing[4200];
    struct rs_store *ro = NULL;
    struct rs_err err;

    (void)f;
    assert_int_equal(rs_store_open_readonly(&ro, empty, &err), RS_ENOTFOUND);
    assert_non_null(strstr(err.msg, empty));
    (void)snprintf(missing, sizeof(missing), "%s/not-there", empty);
    assert_int_equal(rs_store_open_readonly(&ro, missing, NULL), RS_ENOTFOUND);
    assert_null(ro);
    rs_test_tmpdir_remove(empty);
}

static void test_store_readonly_reads_snapshots_and_refuses_batches(void **state)
{
    struct fixture *f = *state;
    struct rs_store_offset off = { 5, 6, 7 }, got;
    struct rs_store *ro;
    struct rs_err err;

    put_commit(f->st, "a", "v1");
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_offset_put(f->st, "events", 2, &off, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    rs_store_close(f->st);
    f->st = NULL;

    assert_int_equal(rs_store_open_readonly(&ro, f->dir, NULL), 0);
    assert_int_equal(rs_store_begin(ro, &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_int_equal(rs_store_read_begin(ro, NULL), 0);
    assert_get(ro, "a", "v1");
    rs_store_read_end(ro);
    assert_int_equal(rs_store_offset_get(ro, "events", 2, &got, NULL), 0);
    assert_int_equal(got.next_offset, 5);
    assert_int_equal(rs_store_count(ro, RS_DB_AGGREGATES), 1);
    rs_store_close(ro);
    assert_int_equal(rs_store_open(&f->st, f->dir, 1, NULL), 0); /* for the teardown */
}

/* Child side of the two-process test: write, report, wait for the parent, repeat. */
static int writer_process(const char *dir, int to_parent, int from_parent)
{
    struct rs_store *st;
    char go;
    int ok = rs_store_open(&st, dir, 1, NULL) == 0;

    for (int round = 1; ok && round <= 2; round++) {
        char val[2] = { (char)('0' + round), '\0' };

        ok = rs_store_begin(st, NULL) == 0 &&
             rs_store_put(st, RS_DB_AGGREGATES, B("k"), B(val), NULL) == 0 &&
             rs_store_commit(st, NULL) == 0 && write(to_parent, val, 1) == 1 &&
             read(from_parent, &go, 1) == 1;
    }
    if (ok) {
        rs_store_close(st); /* while the parent still has the environment open */
    }
    return ok ? 0 : 1;
}

static void test_store_readonly_works_while_another_process_writes(void **state)
{
    struct fixture *f = *state;
    char *dir = rs_test_tmpdir_new();
    int up[2], down[2];
    char c = 0;
    struct rs_store *ro;
    int status;
    pid_t pid;

    (void)f;
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = writer_process(dir, up[1], down[0]);

        free(dir); /* the child's copy: a leak checker follows fork() */
        _exit(rc);
    }
    assert_int_equal(read(up[0], &c, 1), 1);
    assert_int_equal(c, '1');
    assert_int_equal(rs_store_open_readonly(&ro, dir, NULL), 0);
    assert_int_equal(rs_store_read_begin(ro, NULL), 0);
    assert_get(ro, "k", "1");
    assert_int_equal(write(down[1], "g", 1), 1);
    assert_int_equal(read(up[0], &c, 1), 1);
    assert_int_equal(c, '2');
    assert_get(ro, "k", "1"); /* the snapshot holds */
    rs_store_read_end(ro);
    assert_int_equal(rs_store_read_begin(ro, NULL), 0);
    assert_get(ro, "k", "2");
    rs_store_read_end(ro);
    assert_int_equal(write(down[1], "g", 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    rs_store_close(ro);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    rs_test_tmpdir_remove(dir);
}

/* A state directory as a build before the aggregates database left it. */
static void make_old_state(const char *dir, uint32_t version)
{
    static const char *const old_dbs[] = { "meta",   "offsets",     "entities",
                                           "timers", "timer_index", "outbox" };
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi, meta = 0;
    uint8_t v[4];
    MDB_val k = { 14, (void *)(uintptr_t) "format_version" };
    MDB_val val = { 4, v };

    rs_store_put_u32(v, version);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(mdb_dbi_open(txn, old_dbs[i], MDB_CREATE, &dbi), 0);
        if (i == 0) {
            meta = dbi;
        }
    }
    assert_int_equal(mdb_put(txn, meta, &k, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_store_state_without_aggregates_reads_empty_and_gains_it(void **state)
{
    struct fixture *f = *state;
    char *dir = rs_test_tmpdir_new();
    struct rs_store *st;
    struct rs_bytes k, v;

    (void)f;
    make_old_state(dir, RS_STORE_FORMAT_VERSION);
    assert_int_equal(rs_store_open_readonly(&st, dir, NULL), 0);
    assert_int_equal(rs_store_read_begin(st, NULL), 0);
    assert_int_equal(rs_store_get(st, RS_DB_AGGREGATES, B("k"), &v, NULL), RS_ENOTFOUND);
    assert_int_equal(rs_store_seek(st, RS_DB_AGGREGATES, B(""), &k, &v, NULL), RS_ENOTFOUND);
    rs_store_read_end(st);
    assert_int_equal(rs_store_count(st, RS_DB_AGGREGATES), 0);
    rs_store_close(st);

    assert_int_equal(rs_store_open(&st, dir, 1, NULL), 0); /* same format: accepted, db added */
    put_commit(st, "k", "v");
    rs_store_close(st);
    assert_int_equal(rs_store_open_readonly(&st, dir, NULL), 0);
    assert_int_equal(rs_store_read_begin(st, NULL), 0);
    assert_get(st, "k", "v");
    rs_store_read_end(st);
    rs_store_close(st);
    rs_test_tmpdir_remove(dir);
}

static void test_store_readonly_refuses_another_format_version(void **state)
{
    struct fixture *f = *state;
    char *dir = rs_test_tmpdir_new();
    struct rs_store *st = NULL;
    struct rs_err err;

    (void)f;
    make_old_state(dir, RS_STORE_FORMAT_VERSION + 1);
    assert_int_equal(rs_store_open_readonly(&st, dir, &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "format version"));
    assert_null(st);
    rs_test_tmpdir_remove(dir);
}

/* ---- rs_store_dump ---- */

/* The dump of `st` as a string the caller frees; *len gets its length. */
static char *dump_to_string(struct rs_store *st, size_t *len)
{
    char *text = NULL;
    struct rs_err err;
    FILE *fp = open_memstream(&text, len);
    int rc;

    assert_non_null(fp);
    rc = rs_store_dump(st, fp, &err);
    if (rc != 0) {
        fail_msg("rs_store_dump: %d %s", rc, err.msg);
    }
    assert_int_equal(fclose(fp), 0);
    return text;
}

struct dump_put {
    enum rs_db db;
    struct rs_bytes key;
    struct rs_bytes val;
};

/* Byte strings with embedded NULs: BN in an expression, BI in a static initializer. */
#define BN(s) ((struct rs_bytes){ (s), sizeof(s) - 1 })
#define BI(s)              \
    {                      \
        (s), sizeof(s) - 1 \
    }

/* One entry in every database but the outbox, binary keys and an empty value among them. */
static const struct dump_put dump_puts[] = {
    { RS_DB_META, BI("zz_note"), BI("x") },
    { RS_DB_ENTITIES, BI("\x00\x00\x00\x01\x02lead-1"), BI("\x01\x02\x03") },
    { RS_DB_ENTITIES, BI("\x00\x00\x00\x00\x02lead-2"), BI("\xff") },
    { RS_DB_TIMERS, BI("\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x01\x01lead-1"), BI("p") },
    { RS_DB_TIMER_INDEX, BI("\x00\x00\x00\x00\x01lead-1"), BI("\x80\x00\x00\x00\x00\x00\x00\x01") },
    { RS_DB_AGGREGATES, BI("\x00\x00\x00\x00\x00\x01seg\x00\x01"), BI("\x00\x00\x00\x07") },
    { RS_DB_AGGREGATES, BI("\x00\x00\x00\x00\x00\x01seg\x00\x00"), BI("\x00\x00\x00\x05") },
    { RS_DB_DEDUP, BI("\x00\x00\x00\x00id-1"), BI("\x80\x00\x01\x9b\x00\x00\x00\x00") },
    { RS_DB_DEDUP_EXPIRY, BI("\x00\x00\x00\x00\x80\x00\x01\x9b\x00\x00\x00\x00id-1"), BI("") },
};

#define DUMP_PUTS (sizeof(dump_puts) / sizeof(dump_puts[0]))

static void put_at(struct rs_store *st, size_t i)
{
    assert_int_equal(rs_store_put(st, dump_puts[i].db, dump_puts[i].key, dump_puts[i].val, NULL),
                     0);
}

static void test_store_dump_is_the_same_for_the_same_puts_in_any_order(void **state)
{
    struct fixture *f = *state;
    char *dir = rs_test_tmpdir_new();
    struct rs_store *other;
    struct rs_store_offset off = { 42, 1000, 41 };
    char *a, *b;
    size_t a_len, b_len;
    uint64_t seq;

    /* One batch, in order, and an outbox that Kafka has not acknowledged yet. */
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (size_t i = 0; i < DUMP_PUTS; i++) {
        put_at(f->st, i);
    }
    assert_int_equal(rs_store_offset_put(f->st, "events", 0, &off, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("alert-1"), &seq, NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("alert-2"), &seq, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    /* One batch per put, in reverse, a value overwritten on the way, the outbox drained. */
    assert_int_equal(rs_store_open(&other, dir, 1, NULL), 0);
    assert_int_equal(rs_store_begin(other, NULL), 0);
    assert_int_equal(
        rs_store_offset_put(other, "events", 0, &(struct rs_store_offset){ 1, 2, 3 }, NULL), 0);
    assert_int_equal(rs_store_outbox_append(other, B("alert-0"), &seq, NULL), 0);
    assert_int_equal(rs_store_commit(other, NULL), 0);
    for (size_t i = DUMP_PUTS; i-- > 0;) {
        assert_int_equal(rs_store_begin(other, NULL), 0);
        put_at(other, i);
        assert_int_equal(rs_store_commit(other, NULL), 0);
    }
    assert_int_equal(rs_store_begin(other, NULL), 0);
    assert_int_equal(rs_store_offset_put(other, "events", 0, &off, NULL), 0);
    assert_int_equal(
        rs_store_del(other, RS_DB_OUTBOX, BN("\x00\x00\x00\x00\x00\x00\x00\x01"), NULL), 0);
    assert_int_equal(rs_store_commit(other, NULL), 0);

    a = dump_to_string(f->st, &a_len);
    b = dump_to_string(other, &b_len);
    if (a_len != b_len || memcmp(a, b, a_len) != 0) {
        fail_msg("dumps differ:\n%s----\n%s", a, b);
    }
    assert_null(strstr(a, "outbox"));               /* neither the database nor meta's outbox_seq */
    assert_null(strstr(a, "6f7574626f785f736571")); /* hex of "outbox_seq" */
    assert_non_null(strstr(a, "meta\t7a7a5f6e6f7465\t78\n"));
    free(a);
    free(b);
    rs_store_close(other);
    rs_test_tmpdir_remove(dir);
}

static void test_store_dump_orders_databases_by_name_and_keys_as_lmdb(void **state)
{
    struct fixture *f = *state;
    char want[1024];
    char *text;
    size_t len;
    uint64_t seq;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_TIMERS, B("t"), B("v"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_TIMER_INDEX, B("i"), B("\xAB"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("b"), BN("\x00\x01"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("a"), B("\xFF"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_DEDUP_EXPIRY, B("e"), BN(""), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_DEDUP, B("d"), B("D"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, BN("\x00\xff"), B("g"), NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, BN("\x00"), B("h"), NULL), 0);
    assert_int_equal(rs_store_outbox_append(f->st, B("alert"), &seq, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    (void)snprintf(want, sizeof(want),
                   "aggregates\t00\t68\n"
                   "aggregates\t00ff\t67\n"
                   "dedup\t64\t44\n"
                   "dedup_expiry\t65\t\n"
                   "entities\t61\tff\n"
                   "entities\t62\t0001\n"
                   "meta\t666f726d61745f76657273696f6e\t%08x\n" /* "format_version" */
                   "timer_index\t69\tab\n"
                   "timers\t74\t76\n",
                   (unsigned)RS_STORE_FORMAT_VERSION);
    text = dump_to_string(f->st, &len);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
}

static void test_store_dump_changes_with_every_database_but_the_outbox(void **state)
{
    struct fixture *f = *state;
    char *before, *after;
    size_t before_len, after_len;
    struct rs_err err;
    uint64_t seq;

    before = dump_to_string(f->st, &before_len);
    for (int db = 0; db < RS_DB__COUNT; db++) {
        assert_int_equal(rs_store_begin(f->st, NULL), 0);
        if (db == RS_DB_OUTBOX) {
            assert_int_equal(rs_store_outbox_append(f->st, B("alert"), &seq, NULL), 0);
        } else {
            assert_int_equal(rs_store_put(f->st, (enum rs_db)db, B("x"), B("y"), NULL), 0);
        }
        assert_int_equal(rs_store_commit(f->st, NULL), 0);
        after = dump_to_string(f->st, &after_len);
        if (db == RS_DB_OUTBOX) {
            assert_int_equal(after_len, before_len);
            assert_memory_equal(after, before, before_len);
        } else if (after_len == before_len && memcmp(after, before, before_len) == 0) {
            fail_msg("a put in database %d left the dump unchanged", db);
        }
        free(before);
        before = after;
        before_len = after_len;
    }
    /* A changed value, not only a new key, shows too. */
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_ENTITIES, B("x"), B("z"), NULL), 0);
    {
        char *text = NULL;
        size_t len = 0;
        FILE *fp = open_memstream(&text, &len);

        assert_non_null(fp);
        assert_int_equal(rs_store_dump(f->st, fp, &err), RS_ESTORE); /* no snapshot in a batch */
        assert_int_equal(fclose(fp), 0);
        assert_int_equal(len, 0);
        free(text);
    }
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    after = dump_to_string(f->st, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_not_equal(after, before, before_len);
    free(before);
    free(after);
}

static void test_store_dump_works_on_a_readonly_store(void **state)
{
    struct fixture *f = *state;
    char *dir = rs_test_tmpdir_new();
    struct rs_store *ro;
    char *rw_text, *ro_text;
    size_t rw_len, ro_len;
    char want[128];

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (size_t i = 0; i < DUMP_PUTS; i++) {
        put_at(f->st, i);
    }
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    rw_text = dump_to_string(f->st, &rw_len);
    rs_store_close(f->st);
    f->st = NULL;

    assert_int_equal(rs_store_open_readonly(&ro, f->dir, NULL), 0);
    assert_int_equal(rs_store_read_begin(ro, NULL), 0); /* nested in a caller's snapshot */
    ro_text = dump_to_string(ro, &ro_len);
    rs_store_read_end(ro);
    assert_int_equal(ro_len, rw_len);
    assert_memory_equal(ro_text, rw_text, rw_len);
    free(ro_text);
    rs_store_close(ro);
    assert_int_equal(rs_store_open(&f->st, f->dir, 1, NULL), 0); /* for the teardown */

    /* A state directory older than the dedup databases dumps what it has. */
    make_old_state(dir, RS_STORE_FORMAT_VERSION);
    assert_int_equal(rs_store_open_readonly(&ro, dir, NULL), 0);
    ro_text = dump_to_string(ro, &ro_len);
    (void)snprintf(want, sizeof(want), "meta\t666f726d61745f76657273696f6e\t%08x\n",
                   (unsigned)RS_STORE_FORMAT_VERSION);
    assert_string_equal(ro_text, want);
    free(ro_text);
    free(rw_text);
    rs_store_close(ro);
    rs_test_tmpdir_remove(dir);
}

static void test_store_dump_write_failure_returns_eio(void **state)
{
    struct fixture *f = *state;
    struct rs_err err;
    FILE *fp = fopen(f->dir, "r"); /* a stream that refuses every write */

    assert_non_null(fp);
    assert_int_equal(rs_store_dump(f->st, fp, &err), RS_EIO);
    assert_non_null(strstr(err.msg, "cannot write the dump"));
    assert_int_equal(fclose(fp), 0);
    /* The snapshot was released: a batch can begin on this thread. */
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    rs_store_abort(f->st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_get_missing_key_returns_enotfound, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_commit_makes_writes_survive_reopen, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_abort_discards_state_offsets_and_outbox_together,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_offsets_are_per_topic_and_partition, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_outbox_sequence_keeps_growing_across_restarts,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_outbox_delete_removes_exactly_the_acknowledged,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_range_and_keys_deletes_see_the_batch,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_aborted_outbox_append_does_not_consume_a_sequence, store_setup,
            store_teardown),
        cmocka_unit_test_setup_teardown(test_store_map_full_aborts_batch_and_grows_map, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_batch_answers_as_if_every_write_were_applied_at_once, store_setup,
            store_teardown),
        cmocka_unit_test_setup_teardown(test_store_seek_finds_first_key_at_or_after, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_refuses_batch_inside_batch, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_snapshot_keeps_the_commit_it_started_from,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_get_needs_a_batch_or_a_snapshot, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_snapshots_nest_and_are_refused_inside_a_batch,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_another_thread_reads_the_last_commit_during_a_batch, store_setup,
            store_teardown),
        cmocka_unit_test_setup_teardown(test_store_open_readonly_without_state_returns_enotfound,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_readonly_reads_snapshots_and_refuses_batches,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_readonly_works_while_another_process_writes,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_state_without_aggregates_reads_empty_and_gains_it, store_setup,
            store_teardown),
        cmocka_unit_test_setup_teardown(test_store_readonly_refuses_another_format_version,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_dump_is_the_same_for_the_same_puts_in_any_order,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_dump_orders_databases_by_name_and_keys_as_lmdb,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_dump_changes_with_every_database_but_the_outbox,
                                        store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_store_dump_works_on_a_readonly_store, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_dump_write_failure_returns_eio, store_setup,
                                        store_teardown),
        cmocka_unit_test(test_store_signed_keys_sort_numerically),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
