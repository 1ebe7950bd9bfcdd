#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agg.h"
#include "calendar.h"
#include "store.h"
#include "tmpdir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY INT64_C(86400000)
/* Wednesday 2026-03-04 10:00 UTC, and the starts of its buckets, counted by hand:
 * 2026-01-01 is day 20454 (56 years, 14 of them leap), March 1st day 20513. */
#define T_WED   (20516 * DAY + 10 * 3600000)
#define B_DAY   (20516 * DAY)
#define B_WEEK  (20514 * DAY) /* Monday 2026-03-02 */
#define B_MONTH (20513 * DAY)
#define B_QTR   (20454 * DAY)

#define ALL_GRAINS \
    (1u << RS_GRAIN_DAY | 1u << RS_GRAIN_WEEK | 1u << RS_GRAIN_MONTH | 1u << RS_GRAIN_QUARTER)

struct seen {
    struct rs_agg_key key;
    char dims[RS_AGG_DIMS_MAX + 1];
    int64_t n[RS_AGG_FIELDS];
    uint64_t values;
};

struct fixture {
    char *dir;
    struct rs_store *st;
    struct rs_agg *agg;
    struct rs_zone *utc;
    struct seen seen[128];
    size_t n_seen;
    int cb_rc; /* what the callback returns */
};

static int agg_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dir = rs_test_tmpdir_new();
    assert_int_equal(rs_store_open(&f->st, f->dir, 4, NULL), 0);
    assert_int_equal(rs_zone_new("UTC", &f->utc, NULL), 0);
    f->agg = rs_agg_new();
    *state = f;
    return 0;
}

static int agg_teardown(void **state)
{
    struct fixture *f = *state;

    rs_agg_free(f->agg);
    rs_zone_free(f->utc);
    rs_store_close(f->st);
    rs_test_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static int record(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct fixture *f = opaque;
    struct seen *s;

    assert_true(f->n_seen < 128);
    s = &f->seen[f->n_seen++];
    s->key = *key;
    memcpy(s->dims, key->dims.ptr, key->dims.len);
    s->dims[key->dims.len] = '\0';
    s->key.dims.ptr = s->dims;
    memcpy(s->n, cell->n, sizeof(s->n));
    s->values = cell->sketch.count;
    return f->cb_rc;
}

static struct rs_agg_key key_of(uint32_t partition, uint16_t metric, const char *dims,
                                enum rs_grain grain, int64_t bucket)
{
    struct rs_agg_key k = { partition, metric, grain, bucket, { dims, strlen(dims) } };

    return k;
}

static struct rs_agg_fact fact_of(int64_t n0, int64_t n1, bool has_value, int64_t value)
{
    struct rs_agg_fact fact;

    memset(&fact, 0, sizeof(fact));
    fact.n[0] = n0;
    fact.n[1] = n1;
    fact.has_value = has_value;
    fact.value = value;
    return fact;
}

/* One batch: add (sign) the fact at key for `mask`, flush into record(), commit. */
static void apply(struct fixture *f, const struct rs_agg_key *key, unsigned mask, int sign,
                  const struct rs_agg_fact *fact)
{
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, key, mask, T_WED, sign, fact, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, record, f, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
}

static void read_cell(struct fixture *f, const struct rs_agg_key *key, struct rs_agg_cell *cell)
{
    assert_int_equal(rs_agg_read(f->st, key, NULL, 0, cell, NULL), 0);
}

static void test_agg_add_then_retract_returns_cell_to_zero_and_deletes_it(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(2, 7, "channel=web", RS_GRAIN_DAY, B_DAY);
    struct rs_agg_fact fact = fact_of(1, 300, true, 300000);
    struct rs_agg_cell cell;

    rs_agg_cell_init(&cell);
    apply(f, &key, 0, 1, &fact);
    assert_int_equal(f->n_seen, 1);
    assert_int_equal(f->seen[0].n[0], 1);
    assert_int_equal(f->seen[0].n[1], 300);
    assert_int_equal(f->seen[0].values, 1);
    assert_int_equal(rs_store_count(f->st, RS_DB_AGGREGATES), 1);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 1);
    assert_int_equal(cell.sketch.count, 1);
    assert_true(rs_sketch_quantile(&cell.sketch, 0.5) == 300000.0);

    apply(f, &key, 0, -1, &fact);
    assert_int_equal(f->n_seen, 2); /* the deletion is reported too */
    assert_int_equal(f->seen[1].n[0], 0);
    assert_int_equal(f->seen[1].n[1], 0);
    assert_int_equal(f->seen[1].values, 0);
    assert_int_equal(rs_store_count(f->st, RS_DB_AGGREGATES), 0);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 0);
    assert_int_equal(cell.sketch.count, 0);
    rs_agg_cell_release(&cell);
}

static void test_agg_add_updates_one_cell_per_grain_of_the_mask(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(0, 3, "", RS_GRAIN_DAY, 0); /* grain, bucket: ignored */
    struct rs_agg_fact fact = fact_of(1, 0, false, 0);
    static const int64_t want[RS_GRAIN__COUNT] = { B_DAY, B_WEEK, B_MONTH, B_QTR };

    apply(f, &key, ALL_GRAINS, 1, &fact);
    assert_int_equal(f->n_seen, RS_GRAIN__COUNT);
    for (int g = 0; g < RS_GRAIN__COUNT; g++) { /* key order puts the grain before the bucket */
        assert_int_equal(f->seen[g].key.grain, g);
        assert_int_equal(f->seen[g].key.bucket, want[g]);
        assert_int_equal(f->seen[g].key.partition, 0);
        assert_int_equal(f->seen[g].key.metric, 3);
        assert_int_equal(f->seen[g].n[0], 1);
    }
    /* Only the week and the day: the month and quarter cells stay as they were. */
    f->n_seen = 0;
    apply(f, &key, 1u << RS_GRAIN_WEEK | 1u << RS_GRAIN_DAY, 1, &fact);
    assert_int_equal(f->n_seen, 2);
    assert_int_equal(f->seen[0].key.grain, RS_GRAIN_DAY);
    assert_int_equal(f->seen[0].n[0], 2);
    assert_int_equal(f->seen[1].key.grain, RS_GRAIN_WEEK);
    assert_int_equal(f->seen[1].n[0], 2);
    {
        struct rs_agg_key month = key_of(0, 3, "", RS_GRAIN_MONTH, B_MONTH);
        struct rs_agg_cell cell;

        rs_agg_cell_init(&cell);
        read_cell(f, &month, &cell);
        assert_int_equal(cell.n[0], 1);
        rs_agg_cell_release(&cell);
    }
    assert_int_equal(rs_store_count(f->st, RS_DB_AGGREGATES), RS_GRAIN__COUNT);
}

/* Encoded-key order of two reported keys, as agg.h lays the key out. */
static int key_order(const struct rs_agg_key *a, const struct rs_agg_key *b)
{
    size_t n = a->dims.len < b->dims.len ? a->dims.len : b->dims.len;
    int c;

    if (a->partition != b->partition) {
        return a->partition < b->partition ? -1 : 1;
    }
    if (a->metric != b->metric) {
        return a->metric < b->metric ? -1 : 1;
    }
    c = memcmp(a->dims.ptr, b->dims.ptr, n);
    if (c != 0 || a->dims.len != b->dims.len) {
        /* The NUL after the dims makes a prefix sort first. */
        return c != 0 ? c : (a->dims.len < b->dims.len ? -1 : 1);
    }
    if (a->grain != b->grain) {
        return a->grain < b->grain ? -1 : 1;
    }
    return a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
}

static void test_agg_flush_writes_each_changed_cell_once_in_key_order(void **state)
{
    struct fixture *f = *state;
    static const char *const dims[] = { "b=1", "a=2", "", "a=2,c=3", "a" };
    struct rs_agg_fact one = fact_of(1, 10, true, 5);
    struct rs_agg_key stored = key_of(9, 9, "x=1", RS_GRAIN_DAY, B_DAY);
    struct rs_agg_key fleeting = key_of(9, 9, "x=2", RS_GRAIN_DAY, B_DAY);
    int64_t buckets[] = { B_DAY, -3 * DAY, B_DAY + DAY };

    apply(f, &stored, 0, 1, &one);
    f->n_seen = 0;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    /* 3 partitions x 2 metrics x 5 dims x 3 buckets, each added twice, in a scrambled order. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 90; i++) {
            int j = (i * 37 + round * 11) % 90;
            struct rs_agg_key k = key_of((uint32_t)(2 - j % 3), (uint16_t)(1 + j / 3 % 2),
                                         dims[j / 6 % 5], RS_GRAIN_DAY, buckets[j / 30]);

            assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &k, 0, 0, 1, &one, NULL), 0);
        }
    }
    /* Changes that cancel out within the batch write and report nothing. */
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &stored, 0, 0, 1, &one, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &stored, 0, 0, -1, &one, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &fleeting, 0, 0, 1, &one, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &fleeting, 0, 0, -1, &one, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, record, f, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    assert_int_equal(f->n_seen, 90);
    for (size_t i = 0; i < f->n_seen; i++) {
        assert_int_equal(f->seen[i].n[0], 2);
        assert_int_equal(f->seen[i].n[1], 20);
        assert_int_equal(f->seen[i].values, 2);
        if (i > 0) {
            assert_true(key_order(&f->seen[i - 1].key, &f->seen[i].key) < 0);
        }
    }
    assert_int_equal(rs_store_count(f->st, RS_DB_AGGREGATES), 91);

    /* The cache was forgotten: a flush with nothing added reports nothing. */
    f->n_seen = 0;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, record, f, NULL), 0);
    rs_store_abort(f->st);
    assert_int_equal(f->n_seen, 0);
}

static void test_agg_discard_forgets_the_batch(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(0, 1, "", RS_GRAIN_DAY, B_DAY);
    struct rs_agg_fact fact = fact_of(4, 0, false, 0);
    struct rs_agg_cell cell;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), 0);
    rs_agg_discard(f->agg);
    assert_int_equal(rs_agg_flush(f->agg, f->st, record, f, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(f->n_seen, 0);
    rs_agg_cell_init(&cell);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 0);
    rs_agg_cell_release(&cell);
}

static void test_agg_flush_stops_at_callback_error_and_forgets_the_batch(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_fact fact = fact_of(1, 0, false, 0);

    f->cb_rc = -42;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (uint32_t p = 0; p < 3; p++) {
        struct rs_agg_key key = key_of(p, 1, "", RS_GRAIN_DAY, B_DAY);

        assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), 0);
    }
    assert_int_equal(rs_agg_flush(f->agg, f->st, record, f, NULL), -42);
    assert_int_equal(f->n_seen, 1);
    rs_store_abort(f->st);
    f->cb_rc = 0;
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, record, f, NULL), 0);
    rs_store_abort(f->st);
    assert_int_equal(f->n_seen, 1);
}

static void test_agg_read_sums_the_cell_over_partitions(void **state)
{
    struct fixture *f = *state;
    static const uint32_t parts[] = { 0, 3, 7, UINT32_MAX };
    struct rs_agg_key key = key_of(0, 5, "seg=smb", RS_GRAIN_WEEK, B_WEEK);
    struct rs_agg_cell cell;
    static const uint32_t some[] = { 7, 4, 3 };

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (size_t i = 0; i < 4; i++) {
        struct rs_agg_fact fact = fact_of((int64_t)i + 1, -(int64_t)i, true, (int64_t)i * 10);

        key.partition = parts[i];
        assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), 0);
    }
    /* Neighbours that must not be summed: another bucket, other dims, another metric. */
    for (uint32_t p = 1; p < 9; p += 4) {
        struct rs_agg_fact fact = fact_of(100, 100, true, 1);
        struct rs_agg_key other[] = {
            key_of(p, 5, "seg=smb", RS_GRAIN_WEEK, B_WEEK + 7 * DAY),
            key_of(p, 5, "seg=ent", RS_GRAIN_WEEK, B_WEEK),
            key_of(p, 6, "seg=smb", RS_GRAIN_WEEK, B_WEEK),
        };

        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &other[i], 0, 0, 1, &fact, NULL), 0);
        }
    }
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    rs_agg_cell_init(&cell);
    key.partition = 12345; /* ignored */
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 1 + 2 + 3 + 4);
    assert_int_equal(cell.n[1], 0 - 1 - 2 - 3);
    assert_int_equal(cell.sketch.count, 4);
    assert_true(rs_sketch_quantile(&cell.sketch, 1.0) == 30.0);
    assert_true(rs_sketch_quantile(&cell.sketch, 0.5) == 15.0);

    assert_int_equal(rs_agg_read(f->st, &key, some, 3, &cell, NULL), 0);
    assert_int_equal(cell.n[0], 2 + 3);
    assert_int_equal(cell.sketch.count, 2);
    assert_true(rs_sketch_quantile(&cell.sketch, 0.0) == 10.0);
    rs_agg_cell_release(&cell);
}

struct reader {
    struct rs_store *st;
    struct rs_agg_key key;
    int rc;
    int64_t n0;
};

static void *read_on_another_thread(void *arg)
{
    struct reader *r = arg;
    struct rs_agg_cell cell;

    rs_agg_cell_init(&cell);
    r->rc = rs_agg_read(r->st, &r->key, NULL, 0, &cell, NULL);
    r->n0 = cell.n[0];
    rs_agg_cell_release(&cell);
    return NULL;
}

static void test_agg_read_sees_the_batch_inside_it_and_the_snapshot_outside(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(1, 2, "", RS_GRAIN_DAY, B_DAY);
    struct rs_agg_fact fact = fact_of(1, 0, false, 0);
    struct rs_agg_cell cell;
    struct reader r = { f->st, key, -1, -1 };
    pthread_t th;

    rs_agg_cell_init(&cell);
    apply(f, &key, 0, 1, &fact); /* committed: 1 */

    /* A snapshot taken now keeps seeing 1 after a later batch commits 2. */
    assert_int_equal(rs_store_read_begin(f->st, NULL), 0);
    apply(f, &key, 0, 1, &fact);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 1);
    rs_store_read_end(f->st);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 2);

    /* Inside a batch: what the batch flushed, uncommitted; another thread: the last commit. */
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 3);
    assert_int_equal(pthread_create(&th, NULL, read_on_another_thread, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n0, 2);
    rs_store_abort(f->st);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 2);
    rs_agg_cell_release(&cell);
}

struct scan_log {
    struct seen seen[32];
    size_t n;
    size_t stop_after; /* 0: never */
};

static int scan_record(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct scan_log *log = opaque;
    struct seen *s;

    assert_true(log->n < 32);
    s = &log->seen[log->n++];
    s->key = *key;
    memcpy(s->dims, key->dims.ptr, key->dims.len);
    s->dims[key->dims.len] = '\0';
    s->key.dims.ptr = s->dims;
    memcpy(s->n, cell->n, sizeof(s->n));
    return log->n == log->stop_after ? 7 : 0;
}

static void test_agg_scan_visits_stored_cells_of_all_or_one_metric(void **state)
{
    struct fixture *f = *state;
    struct scan_log log;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (uint32_t p = 0; p < 3; p++) {
        for (uint16_t m = 1; m <= 3; m++) {
            struct rs_agg_key key = key_of(p, m, m == 2 ? "k=v" : "", RS_GRAIN_DAY, B_DAY);
            struct rs_agg_fact fact = fact_of((int64_t)(p * 10 + m), 0, false, 0);

            assert_int_equal(
                rs_agg_add(f->agg, f->st, f->utc, &key, 1u << RS_GRAIN_DAY, T_WED, 1, &fact, NULL),
                0);
        }
    }
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);

    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_agg_scan(f->st, 0, scan_record, &log, NULL), 0);
    assert_int_equal(log.n, 9);
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(log.seen[i].key.partition, i / 3);
        assert_int_equal(log.seen[i].key.metric, i % 3 + 1);
        assert_int_equal(log.seen[i].n[0], (int64_t)(i / 3 * 10 + i % 3 + 1));
        assert_int_equal(log.seen[i].key.bucket, B_DAY);
    }
    assert_string_equal(log.seen[1].dims, "k=v");

    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_agg_scan(f->st, 2, scan_record, &log, NULL), 0);
    assert_int_equal(log.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(log.seen[i].key.partition, i);
        assert_int_equal(log.seen[i].key.metric, 2);
        assert_string_equal(log.seen[i].dims, "k=v");
    }

    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_agg_scan(f->st, 4, scan_record, &log, NULL), 0);
    assert_int_equal(log.n, 0);

    memset(&log, 0, sizeof(log));
    log.stop_after = 2;
    assert_int_equal(rs_agg_scan(f->st, 0, scan_record, &log, NULL), 7);
    assert_int_equal(log.n, 2);
}

static void test_agg_dims_are_sorted_and_escaped(void **state)
{
    char out[RS_AGG_DIMS_MAX + 1];
    const struct rs_str ab[][2] = {
        { { "segment", 7 }, { "smb", 3 } },
        { { "channel", 7 }, { "web", 3 } },
    };
    const struct rs_str ba[][2] = {
        { { "channel", 7 }, { "web", 3 } },
        { { "segment", 7 }, { "smb", 3 } },
    };
    const struct rs_str tricky[][2] = {
        { { "v", 1 }, { "a,b=c\\d", 7 } },
        { { "k=1", 3 }, { "", 0 } },
        { { "v", 1 }, { "a", 1 } }, /* a repeated key: ordered by value */
    };
    struct rs_str many[20][2];
    char names[20][4];
    size_t len;

    (void)state;
    len = rs_agg_dims(out, sizeof(out), ab, 2);
    assert_string_equal(out, "channel=web,segment=smb");
    assert_int_equal(len, strlen(out));
    assert_int_equal(rs_agg_dims(out, sizeof(out), ba, 2), len);
    assert_string_equal(out, "channel=web,segment=smb");

    len = rs_agg_dims(out, sizeof(out), tricky, 3);
    assert_string_equal(out, "k\\=1=,v=a,v=a\\,b\\=c\\\\d");
    assert_int_equal(len, strlen(out));

    assert_int_equal(rs_agg_dims(out, sizeof(out), NULL, 0), 0);
    assert_string_equal(out, "");

    /* Exactly enough room, then one byte short. */
    assert_int_equal(rs_agg_dims(out, 24, ab, 2), 23);
    assert_string_equal(out, "channel=web,segment=smb");
    assert_int_equal(rs_agg_dims(out, 23, ab, 2), 0);
    assert_string_equal(out, "");
    /* Room for the k, not for the escaped '=' after it. */
    assert_int_equal(rs_agg_dims(out, 3, tricky, 3), 0);
    assert_string_equal(out, "");

    /* Twelve pairs (sorted on the stack) given shuffled, two with the same key. */
    for (int i = 0; i < 12; i++) {
        int k = (i * 5) % 12; /* 0 5 10 3 8 1 6 11 4 9 2 7 */

        (void)snprintf(names[i], sizeof(names[i]), "k%02d", k == 11 ? 10 : k);
        many[i][0] = (struct rs_str){ names[i], 3 };
        many[i][1] = k == 11 ? (struct rs_str){ "a", 1 } : (struct rs_str){ "b", 1 };
    }
    len = rs_agg_dims(out, sizeof(out), (const struct rs_str(*)[2])many, 12);
    assert_string_equal(out, "k00=b,k01=b,k02=b,k03=b,k04=b,k05=b,k06=b,k07=b,k08=b,k09=b,"
                             "k10=a,k10=b");
    assert_int_equal(len, strlen(out));

    /* More pairs than fit on the stack, given in reverse. */
    for (int i = 0; i < 20; i++) {
        (void)snprintf(names[i], sizeof(names[i]), "%c%c", 'a' + (19 - i) / 10,
                       '0' + (19 - i) % 10);
        many[i][0] = (struct rs_str){ names[i], 2 };
        many[i][1] = (struct rs_str){ "x", 1 };
    }
    len = rs_agg_dims(out, sizeof(out), (const struct rs_str(*)[2])many, 20);
    assert_int_equal(len, 20 * 5 - 1);
    assert_memory_equal(out, "a0=x,a1=x,", 10);
    assert_memory_equal(out + len - 4, "b9=x", 4);
}

static void test_agg_refuses_dims_longer_than_the_limit(void **state)
{
    struct fixture *f = *state;
    char dims[RS_AGG_DIMS_MAX + 2];
    struct rs_agg_key key;
    struct rs_agg_fact fact = fact_of(1, 0, false, 0);
    struct rs_err err;

    memset(dims, 'a', sizeof(dims) - 1);
    dims[sizeof(dims) - 1] = '\0';
    key = key_of(0, 1, dims, RS_GRAIN_DAY, B_DAY);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, &err), RS_EINVAL);
    key.dims.len = RS_AGG_DIMS_MAX; /* the longest allowed */
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    assert_int_equal(rs_store_count(f->st, RS_DB_AGGREGATES), 1);
}

static void test_agg_cells_round_trip_with_histogram_and_negative_counters(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(0, 1, "", RS_GRAIN_MONTH, B_MONTH);
    struct rs_sketch want;
    struct rs_agg_cell cell;

    rs_sketch_init(&want);
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    for (int i = 0; i < 1000; i++) {
        struct rs_agg_fact fact = fact_of(INT64_MIN / 2000, -1, true, (int64_t)i * i);

        rs_sketch_add(&want, (int64_t)i * i);
        assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), 0);
    }
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    rs_agg_cell_init(&cell);
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], INT64_MIN / 2000 * 1000);
    assert_int_equal(cell.n[1], -1000);
    assert_false(cell.sketch.exact);
    assert_int_equal(cell.sketch.count, 1000);
    for (double q = 0; q <= 1; q += 0.1) {
        assert_true(rs_sketch_quantile(&cell.sketch, q) == rs_sketch_quantile(&want, q));
    }
    rs_agg_cell_release(&cell);
    rs_sketch_release(&want);
}

/* Put raw bytes at the cell of key in partition p. */
static void put_raw(struct fixture *f, uint32_t p, const void *val, size_t len)
{
    uint8_t k[16];

    rs_store_put_u32(k, p);
    k[4] = 0;
    k[5] = 1;
    k[6] = 0; /* no dims, the NUL */
    k[7] = RS_GRAIN_DAY;
    rs_store_put_u64(k + 8, rs_store_i64_key(B_DAY));
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, (struct rs_bytes){ k, sizeof(k) },
                                  (struct rs_bytes){ val, len }, NULL),
                     0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
}

static void test_agg_corrupt_cell_bytes_give_estore(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(0, 1, "", RS_GRAIN_DAY, B_DAY);
    struct rs_agg_fact fact = fact_of(1, 0, false, 0);
    static const uint8_t valid[] = { 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 }; /* n0 = 1, no sketch */
    static const uint8_t bad_version[] = { 9, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 };
    static const uint8_t truncated[] = { 1, 2, 0, 0 };
    static const uint8_t trailing[] = { 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
    static const uint8_t bad_sketch[] = { 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5 };
    static const struct {
        const uint8_t *p;
        size_t len;
    } cases[] = { { bad_version, sizeof(bad_version) },
                  { truncated, sizeof(truncated) },
                  { trailing, sizeof(trailing) },
                  { bad_sketch, sizeof(bad_sketch) },
                  { valid, 0 } };
    struct rs_agg_cell cell;
    struct scan_log log;
    struct rs_err err;

    rs_agg_cell_init(&cell);
    put_raw(f, 0, valid, sizeof(valid));
    read_cell(f, &key, &cell);
    assert_int_equal(cell.n[0], 1); /* the hand-made valid cell reads */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put_raw(f, 4, cases[i].p, cases[i].len);
        err.msg[0] = '\0';
        assert_int_equal(rs_agg_read(f->st, &key, NULL, 0, &cell, &err), RS_ESTORE);
        assert_non_null(strstr(err.msg, "corrupt aggregate cell"));
        memset(&log, 0, sizeof(log));
        assert_int_equal(rs_agg_scan(f->st, 0, scan_record, &log, NULL), RS_ESTORE);
        assert_int_equal(log.n, 1); /* partition 0's good cell came first */
        key.partition = 4;
        assert_int_equal(rs_store_begin(f->st, NULL), 0);
        assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, 0, 0, 1, &fact, NULL), RS_ESTORE);
        rs_agg_discard(f->agg);
        rs_store_abort(f->st);
        key.partition = 0;
    }
    rs_agg_cell_release(&cell);
}

/* What one side of the comparison below reports from its flushes. */
struct flush_log {
    char text[1 << 16];
    size_t len;
};

static int log_changed(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct flush_log *log = opaque;
    int w = snprintf(log->text + log->len, sizeof(log->text) - log->len,
                     "%u/%u/%.*s/%d/%lld:%lld,%lld,%lld values %llu q50 %.3f\n", key->partition,
                     key->metric, (int)key->dims.len, key->dims.ptr, (int)key->grain,
                     (long long)key->bucket, (long long)cell->n[0], (long long)cell->n[1],
                     (long long)cell->n[7], (unsigned long long)cell->sketch.count,
                     rs_sketch_quantile(&cell->sketch, 0.5));

    assert_true(w > 0 && (size_t)w < sizeof(log->text) - log->len);
    log->len += (size_t)w;
    return 0;
}

static char *dump_of(struct rs_store *st, size_t *len)
{
    char *buf = NULL;
    FILE *fp = open_memstream(&buf, len);

    assert_non_null(fp);
    assert_int_equal(rs_store_dump(st, fp, NULL), 0);
    assert_int_equal(fclose(fp), 0);
    return buf;
}

/* One random fact operation of the comparison below. */
struct fact_op {
    struct rs_agg_key key;
    unsigned mask;
    int64_t t;
    int kind; /* 0 add, 1 retract, 2 move */
    struct rs_agg_fact from, to;
};

/* Apply ops[0..n) in one batch, masked or (by_cell) one cell per grain; flush into log. */
static void apply_ops(struct rs_store *st, struct rs_agg *agg, const struct rs_zone *zone,
                      const struct fact_op *ops, int n, bool by_cell, struct flush_log *log)
{
    assert_int_equal(rs_store_begin(st, NULL), 0);
    for (int i = 0; i < n; i++) {
        const struct fact_op *op = &ops[i];

        for (int g = 0; g < RS_GRAIN__COUNT; g++) {
            struct rs_agg_key key = op->key;
            unsigned mask = op->mask;

            if (by_cell && (mask & (1u << g)) == 0) {
                continue;
            }
            if (by_cell) {
                key.grain = (enum rs_grain)g;
                key.bucket = rs_bucket_start(zone, key.grain, op->t);
                mask = 0;
            }
            if (op->kind == 2) {
                assert_int_equal(
                    rs_agg_move(agg, st, zone, &key, mask, op->t, &op->from, &op->to, NULL), 0);
            } else {
                assert_int_equal(rs_agg_add(agg, st, zone, &key, mask, op->t,
                                            op->kind == 0 ? 1 : -1, &op->from, NULL),
                                 0);
            }
            if (!by_cell) {
                break; /* the mask did every grain */
            }
        }
    }
    log->len = 0;
    assert_int_equal(rs_agg_flush(agg, st, log_changed, log, NULL), 0);
    assert_int_equal(rs_store_commit(st, NULL), 0);
}

/*
 * A fact added for a mask of grains (whose counters the flush adds to each grain's cell, see
 * agg.c's struct pending) ends exactly as the same fact added cell by cell (grains_mask 0):
 * the same changed cells reported in the same order, the same stored bytes, after random
 * adds, retractions and moves with and without sketch values, over four months of a zone with
 * daylight saving time, in batches of random size.
 */
static void test_agg_masked_facts_end_as_cell_by_cell_facts(void **state)
{
    static const char *const dims[] = { "", "a=1", "b=2,c=3" };
    char *dir_a = rs_test_tmpdir_new(), *dir_b = rs_test_tmpdir_new();
    struct rs_store *st_a, *st_b;
    struct rs_agg *agg_a = rs_agg_new(), *agg_b = rs_agg_new();
    struct rs_zone *zone;
    struct flush_log *log_a = calloc(1, sizeof(*log_a)), *log_b = calloc(1, sizeof(*log_b));
    struct fact_op ops[128];
    const int64_t t0 = 20513 * DAY; /* 2026-03-01; summer time starts in Berlin on the 29th */
    uint64_t rng = 42;
    size_t reported = 0;

    (void)state;
    assert_non_null(log_a);
    assert_non_null(log_b);
    assert_int_equal(rs_store_open(&st_a, dir_a, 64, NULL), 0);
    assert_int_equal(rs_store_open(&st_b, dir_b, 64, NULL), 0);
    assert_int_equal(rs_zone_new("Europe/Berlin", &zone, NULL), 0);
    for (int batch = 0; batch < 40; batch++) {
        int n = (int)((rng = rng * 6364136223846793005u + 1442695040888963407u) >> 57);
        size_t len_a, len_b;
        char *dump_a, *dump_b;

        for (int i = 0; i < n; i++) {
            uint64_t r = (rng = rng * 6364136223846793005u + 1442695040888963407u) >> 11;
            struct fact_op *op = &ops[i];

            op->mask = (unsigned)(r % 15) + 1; /* a non-empty subset of the grains */
            op->key = key_of((uint32_t)(r >> 4) % 2, (uint16_t)(1 + (r >> 5) % 2),
                             dims[(r >> 6) % 3], RS_GRAIN_DAY, 0);
            op->t = t0 + (int64_t)((r >> 8) % (120 * 24)) * 3600000;
            op->kind = (int)((r >> 20) % 3);
            op->from = fact_of((int64_t)((r >> 22) % 7) - 2, (int64_t)((r >> 25) % 5),
                               (r >> 28) % 4 == 0, (int64_t)((r >> 30) % 1000));
            op->from.n[7] = INT64_MAX - (int64_t)(r % 3); /* sums wrap */
            op->to = fact_of((int64_t)((r >> 40) % 3), -1, op->from.has_value,
                             (int64_t)((r >> 42) % 1000));
        }
        apply_ops(st_a, agg_a, zone, ops, n, false, log_a);
        apply_ops(st_b, agg_b, zone, ops, n, true, log_b);
        assert_int_equal(log_a->len, log_b->len);
        assert_memory_equal(log_a->text, log_b->text, log_a->len);
        reported += log_a->len;
        dump_a = dump_of(st_a, &len_a);
        dump_b = dump_of(st_b, &len_b);
        assert_int_equal(len_a, len_b);
        assert_memory_equal(dump_a, dump_b, len_a);
        free(dump_a);
        free(dump_b);
    }
    assert_true(reported > 0);
    free(log_a);
    free(log_b);
    rs_zone_free(zone);
    rs_agg_free(agg_a);
    rs_agg_free(agg_b);
    rs_store_close(st_a);
    rs_store_close(st_b);
    rs_test_tmpdir_remove(dir_a);
    rs_test_tmpdir_remove(dir_b);
}

/* A masked fact's cells are loaded by the flush: a corrupt one fails the flush, not the add. */
static void test_agg_masked_fact_on_a_corrupt_cell_fails_the_flush(void **state)
{
    struct fixture *f = *state;
    struct rs_agg_key key = key_of(4, 1, "", RS_GRAIN_DAY, B_DAY);
    struct rs_agg_fact fact = fact_of(1, 0, false, 0);
    static const uint8_t bad_version[] = { 9, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 };
    struct rs_err err;

    put_raw(f, 4, bad_version, sizeof(bad_version));
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_add(f->agg, f->st, f->utc, &key, ALL_GRAINS, T_WED, 1, &fact, NULL), 0);
    err.msg[0] = '\0';
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, &err), RS_ESTORE);
    assert_non_null(strstr(err.msg, "corrupt aggregate cell"));
    rs_store_abort(f->st);
    /* The failed flush forgot the batch: the next one starts clean. */
    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_agg_flush(f->agg, f->st, NULL, NULL, NULL), 0);
    rs_store_abort(f->st);
}

static void test_agg_scan_rejects_a_corrupt_key(void **state)
{
    struct fixture *f = *state;
    static const uint8_t valid[] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 };
    struct scan_log log;

    assert_int_equal(rs_store_begin(f->st, NULL), 0);
    assert_int_equal(rs_store_put(f->st, RS_DB_AGGREGATES, (struct rs_bytes){ "\0\0\0\1\0", 5 },
                                  (struct rs_bytes){ valid, sizeof(valid) }, NULL),
                     0);
    assert_int_equal(rs_store_commit(f->st, NULL), 0);
    memset(&log, 0, sizeof(log));
    assert_int_equal(rs_agg_scan(f->st, 0, scan_record, &log, NULL), RS_ESTORE);
    assert_int_equal(log.n, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, agg_setup, agg_teardown)
    const struct CMUnitTest tests[] = {
        T(test_agg_add_then_retract_returns_cell_to_zero_and_deletes_it),
        T(test_agg_add_updates_one_cell_per_grain_of_the_mask),
        T(test_agg_flush_writes_each_changed_cell_once_in_key_order),
        T(test_agg_discard_forgets_the_batch),
        T(test_agg_flush_stops_at_callback_error_and_forgets_the_batch),
        T(test_agg_read_sums_the_cell_over_partitions),
        T(test_agg_read_sees_the_batch_inside_it_and_the_snapshot_outside),
        T(test_agg_scan_visits_stored_cells_of_all_or_one_metric),
        cmocka_unit_test(test_agg_dims_are_sorted_and_escaped),
        T(test_agg_refuses_dims_longer_than_the_limit),
        T(test_agg_cells_round_trip_with_histogram_and_negative_counters),
        T(test_agg_corrupt_cell_bytes_give_estore),
        T(test_agg_masked_facts_end_as_cell_by_cell_facts),
        T(test_agg_masked_fact_on_a_corrupt_cell_fails_the_flush),
        T(test_agg_scan_rejects_a_corrupt_key),
    };
#undef T

    return cmocka_run_group_tests_name("agg", tests, NULL, NULL);
}
