/*
 * test_kafka_io.c - kafka_io's bridge to the loop, on librdkafka's in-process mock cluster
 * (no broker needed; the semantics that need a real broker are in test_pipeline.c):
 * the consumer drains a deep queue in bounded batches without losing its wake-up, starts at
 * the offsets the application gives on assignment, and the producer's delivery reports arrive
 * even when librdkafka queued something before the wake-up fd was set.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define RS_LOG_MODULE "test"
#include "config.h"
#include "kafka_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define TOPIC    "t"
#define MESSAGES 1000
#define GUARD_MS 30000 /* a lost wake-up shows as this timeout, not as a hang */

struct fixture {
    uv_loop_t loop;
    uv_timer_t guard;
    struct rs_kafka_mock *mock;
    struct rs_config cfg;
    struct rs_kafka_producer *producer;
    struct rs_kafka_consumer *consumer;
    uint64_t delivered, delivery_failures;
    size_t received, batches, largest_batch, first_batch;
    int64_t first_offset, next_offset;
    int64_t start_at; /* offset the application asks for on assignment */
    size_t want;
    bool timed_out, offsets_in_order;
};

static void on_delivered(void *opaque, uint64_t seq, bool ok, bool retriable, const char *reason)
{
    struct fixture *f = opaque;

    (void)seq;
    (void)retriable;
    (void)reason;
    if (ok) {
        f->delivered++;
    } else {
        f->delivery_failures++;
    }
}

static void stop_loop_soon(struct fixture *f);

static int on_batch(void *opaque, const struct rs_msg *msgs, size_t n)
{
    struct fixture *f = opaque;

    if (f->batches++ == 0) {
        f->first_batch = n;
    }
    if (n > f->largest_batch) {
        f->largest_batch = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (f->received == 0) {
            f->first_offset = msgs[i].offset;
            f->next_offset = msgs[i].offset;
        }
        f->offsets_in_order &= msgs[i].offset == f->next_offset;
        f->next_offset = msgs[i].offset + 1;
        f->received++;
    }
    if (f->received >= f->want) {
        stop_loop_soon(f);
    }
    return 0;
}

static int on_assign(void *opaque, const char *topic, const int32_t *ids, int64_t *offsets,
                     size_t n)
{
    struct fixture *f = opaque;

    (void)topic;
    (void)ids;
    for (size_t i = 0; i < n; i++) {
        offsets[i] = f->start_at;
    }
    return 0;
}

static void on_revoke(void *opaque, const char *topic, const int32_t *ids, size_t n)
{
    (void)opaque;
    (void)topic;
    (void)ids;
    (void)n;
}

static void on_eof(void *opaque, const char *topic, int32_t partition, int64_t offset)
{
    (void)opaque;
    (void)topic;
    (void)partition;
    (void)offset;
}

static void on_producer_fatal(void *opaque, const char *reason)
{
    (void)opaque;
    fail_msg("fatal producer error: %s", reason);
}

static void on_fatal(void *opaque, const char *reason)
{
    (void)opaque;
    fail_msg("fatal consumer error: %s", reason);
}

static const struct rs_kafka_consumer_handlers handlers = {
    on_batch, on_assign, on_revoke, on_eof, on_fatal,
};

static void on_guard(uv_timer_t *t)
{
    struct fixture *f = t->data;

    f->timed_out = true;
    uv_stop(&f->loop);
}

static void stop_loop_soon(struct fixture *f)
{
    uv_stop(&f->loop);
}

static int io_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *topics[] = { TOPIC };
    struct rs_err err;

    rs_log_set_level(RS_LOG_LEVEL_ERROR);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(rs_kafka_mock_new(&f->mock, topics, 1, 1, &err), 0);
    rs_config_init(&f->cfg);
    assert_int_equal(rs_config_set(&f->cfg, "kafka.bootstrap.servers",
                                   rs_kafka_mock_bootstraps(f->mock), "test", &err),
                     0);
    /* A consumer property: the producer logs a CONFWARN into its queue as it is created. */
    assert_int_equal(rs_config_set(&f->cfg, "kafka.group.id", "g", "test", &err), 0);
    assert_int_equal(rs_config_set(&f->cfg, "batch.max_events", "64", "test", &err), 0);
    (void)uv_timer_init(&f->loop, &f->guard);
    f->guard.data = f;
    (void)uv_timer_start(&f->guard, on_guard, GUARD_MS, 0);
    f->offsets_in_order = true;
    *state = f;
    return 0;
}

static void closed(void *opaque)
{
    (void)opaque;
}

static int io_teardown(void **state)
{
    struct fixture *f = *state;

    if (f->consumer != NULL) {
        rs_kafka_consumer_close(f->consumer, closed, f);
    }
    if (f->producer != NULL) {
        rs_kafka_producer_close(f->producer, closed, f);
    }
    uv_close((uv_handle_t *)&f->guard, NULL);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    rs_kafka_consumer_free(f->consumer);
    rs_kafka_producer_free(f->producer, 1000);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rs_kafka_mock_free(f->mock);
    rs_config_release(&f->cfg);
    free(f);
    return 0;
}

static void produce(struct fixture *f, size_t n)
{
    struct rs_err err;
    char payload[32];

    assert_int_equal(rs_kafka_producer_open(&f->producer, &f->loop, &f->cfg, on_delivered,
                                            on_producer_fatal, f, &err),
                     0);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(payload, sizeof(payload), "m%zu", i);

        assert_int_equal(rs_kafka_producer_send(f->producer, TOPIC, (struct rs_bytes){ "k", 1 },
                                                (struct rs_bytes){ payload, (size_t)len }, NULL, 0,
                                                0, i, &err),
                         0);
    }
    while (f->delivered + f->delivery_failures < n && !f->timed_out) {
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void test_producer_delivery_reports_arrive_on_the_loop(void **state)
{
    struct fixture *f = *state;

    produce(f, 10);
    assert_false(f->timed_out);
    assert_int_equal(f->delivered, 10);
    assert_int_equal(f->delivery_failures, 0);
    assert_int_equal(rs_kafka_producer_pending(f->producer), 0);
}

/*
 * A full producer queue is -ENOBUFS, with and without headers, and the message can be sent
 * again once reports made room (librdkafka 2.0.2 crashes on rd_kafka_headers_destroy(NULL):
 * the path of every alert and metric update, which have no headers, under load).
 */
static void test_producer_full_queue_is_enobufs_then_sends(void **state)
{
    struct fixture *f = *state;
    const struct rs_kafka_header hdr = { "h", { "v", 1 } };
    struct rs_err err;
    int rc;

    assert_int_equal(
        rs_config_set(&f->cfg, "kafka.producer.queue.buffering.max.messages", "1", "test", &err),
        0);
    assert_int_equal(rs_kafka_producer_open(&f->producer, &f->loop, &f->cfg, on_delivered,
                                            on_producer_fatal, f, &err),
                     0);
    assert_int_equal(rs_kafka_producer_send(f->producer, TOPIC, (struct rs_bytes){ "k", 1 },
                                            (struct rs_bytes){ "a", 1 }, NULL, 0, 0, 0, &err),
                     0);
    assert_int_equal(rs_kafka_producer_send(f->producer, TOPIC, (struct rs_bytes){ "k", 1 },
                                            (struct rs_bytes){ "b", 1 }, NULL, 0, 0, 1, &err),
                     -ENOBUFS);
    assert_int_equal(rs_kafka_producer_send(f->producer, TOPIC, (struct rs_bytes){ "k", 1 },
                                            (struct rs_bytes){ "b", 1 }, &hdr, 1, 0, 1, &err),
                     -ENOBUFS);
    while ((rc = rs_kafka_producer_send(f->producer, TOPIC, (struct rs_bytes){ "k", 1 },
                                        (struct rs_bytes){ "b", 1 }, NULL, 0, 0, 1, &err)) ==
               -ENOBUFS &&
           !f->timed_out) {
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(rc, 0);
    while (f->delivered < 2 && !f->timed_out) {
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->delivered, 2);
}

static void consume(struct fixture *f)
{
    struct rs_err err;

    assert_int_equal(
        rs_kafka_consumer_open(&f->consumer, &f->loop, &f->cfg, NULL, &handlers, f, &err), 0);
    assert_int_equal(rs_kafka_consumer_subscribe(f->consumer, TOPIC, &err), 0);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT); /* until on_batch or the guard stops it */
}

static void test_consumer_drains_deep_queue_in_bounded_batches(void **state)
{
    struct fixture *f = *state;

    produce(f, MESSAGES);
    assert_int_equal(f->delivered, MESSAGES);
    f->want = MESSAGES;
    f->start_at = RS_KAFKA_OFFSET_DEFAULT;
    consume(f);
    assert_false(f->timed_out); /* a lost wake-up would leave messages queued until here */
    assert_int_equal(f->received, MESSAGES);
    /* batch.max_events first; while more wait, batches grow, to 4 times that at most. */
    assert_true(f->first_batch <= 64);
    assert_true(f->largest_batch > 64);
    assert_true(f->largest_batch <= 64 * RS_KAFKA_BATCH_GROW);
    assert_true(f->batches >= MESSAGES / (64 * RS_KAFKA_BATCH_GROW));
    assert_true(f->offsets_in_order);
    assert_int_equal(f->first_offset, 0);
}

static void test_consumer_starts_at_offsets_given_on_assignment(void **state)
{
    struct fixture *f = *state;

    produce(f, 100);
    f->want = 40;
    f->start_at = 60;
    consume(f);
    assert_false(f->timed_out);
    assert_int_equal(f->first_offset, 60);
    assert_int_equal(f->received, 40);
    assert_int_equal(f->next_offset, 100);
}

#define T(name) cmocka_unit_test_setup_teardown(name, io_setup, io_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_producer_delivery_reports_arrive_on_the_loop),
        T(test_producer_full_queue_is_enobufs_then_sends),
        T(test_consumer_drains_deep_queue_in_bounded_batches),
        T(test_consumer_starts_at_offsets_given_on_assignment),
    };

    return cmocka_run_group_tests_name("kafka_io", tests, NULL, NULL);
}
