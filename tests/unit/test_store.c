#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        cmocka_unit_test_setup_teardown(
            test_store_aborted_outbox_append_does_not_consume_a_sequence, store_setup,
            store_teardown),
        cmocka_unit_test_setup_teardown(test_store_map_full_aborts_batch_and_grows_map, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_seek_finds_first_key_at_or_after, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_store_refuses_batch_inside_batch, store_setup,
                                        store_teardown),
        cmocka_unit_test(test_store_signed_keys_sort_numerically),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
