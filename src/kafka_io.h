/*
 * kafka_io.h - librdkafka consumer and producer, bridged to the libuv loop.
 *
 * Each client's queue wakes the loop through rd_kafka_queue_io_event_enable() on the write
 * end of a non-blocking pipe whose read end a uv_poll_t watches. librdkafka writes that fd only
 * when the queue goes from empty to non-empty (ANCHORS.md d.1, e), so a handler that leaves
 * anything queued gets no further wake-up: the consumer drains in batches of at most
 * batch_max_events and, when it stops early for fairness, a uv_idle_t carries on the drain on
 * the next loop iteration. Wake-ups may be spurious; an empty poll is fine.
 *
 * While the consumer is behind (each batch fills up with more waiting), the next batch may
 * hold twice as many, up to RS_KAFKA_BATCH_GROW times batch_max_events but no more than
 * RS_KAFKA_BATCH_GROW_MAX (nor less than batch_max_events); the first poll that finds the
 * queue empty brings it back. A live engine that keeps up sees batch_max_events; one that
 * rebuilds or catches up shares each commit among more events.
 *
 * Rebalances use the eager protocol (range, roundrobin): librdkafka 2.0.x can lose its
 * assignment when it commits during a cooperative rebalance (DESIGN.md). Before the
 * application hears of a revocation, every message already polled is handed over as a batch,
 * so a batch never holds messages of a partition that is no longer ours. On assignment the
 * application supplies the offsets to start from (its own store's, not Kafka's).
 *
 * Nothing here blocks the loop: polls use a 0 ms timeout, the consumer closes through
 * rd_kafka_consumer_close_queue(), and the producer is flushed by serving its queue on the
 * loop. Only *_free() may block (rd_kafka_destroy), after the loop has stopped.
 *
 * Threads: the loop thread. This is the only module that includes rdkafka.h.
 */
#ifndef RS_KAFKA_IO_H
#define RS_KAFKA_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "err.h"
#include "store.h"

#define RS_KAFKA_BATCH_GROW     4
#define RS_KAFKA_BATCH_GROW_MAX 20000

/* A message handed to the application; borrowed until the batch callback returns. */
struct rs_msg {
    const void *payload;
    size_t len;
    const void *key;
    size_t key_len;
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t ts_ms;  /* the record timestamp (received_at), or -1 */
    void *headers_; /* rd_kafka_headers_t *, for rs_msg_header() */
};

/* Find a header's value. Returns 0 and sets *value, or RS_ENOTFOUND. */
int rs_msg_header(const struct rs_msg *msg, const char *name, struct rs_bytes *value);

/* Pass to on_assign's offsets to start where the group's committed offset or reset says. */
#define RS_KAFKA_OFFSET_DEFAULT (-1001)
/* Pass to on_assign's offsets to start at the oldest message the log still has. */
#define RS_KAFKA_OFFSET_BEGINNING (-2)

struct rs_kafka_consumer_handlers {
    /* Messages in poll order, possibly of several partitions. Non-zero return stops the
     * consumer: the handler has hit a fatal error and reports it itself. */
    int (*on_batch)(void *opaque, const struct rs_msg *msgs, size_t n);
    /* Newly assigned partitions: set offsets[i] to the next offset to read, or
     * RS_KAFKA_OFFSET_DEFAULT. Non-zero return stops the consumer. */
    int (*on_assign)(void *opaque, const char *topic, const int32_t *partitions, int64_t *offsets,
                     size_t n);
    /* Partitions taken away; every message of theirs already went through on_batch. */
    void (*on_revoke)(void *opaque, const char *topic, const int32_t *partitions, size_t n);
    /* The consumer reached the end of a partition (offset = next to be written). */
    void (*on_eof)(void *opaque, const char *topic, int32_t partition, int64_t offset);
    /* A fatal client error: the consumer is stopped. */
    void (*on_fatal)(void *opaque, const char *reason);
};

struct rs_kafka_consumer;

/*
 * Create a consumer in group `group_id` (NULL: kafka.group.id from cfg, which must then be
 * set) with cfg's kafka properties for the consumer role. It polls nothing until subscribe.
 * Returns 0 (Returns new: close, then free) or RS_EKAFKA naming the property and librdkafka's
 * reason. On error the handlers are never called.
 */
int rs_kafka_consumer_open(struct rs_kafka_consumer **out, uv_loop_t *loop,
                           const struct rs_config *cfg, const char *group_id,
                           const struct rs_kafka_consumer_handlers *handlers, void *opaque,
                           struct rs_err *err);

/* Subscribe to `topic` and start polling on the loop. Returns 0 or RS_EKAFKA. */
int rs_kafka_consumer_subscribe(struct rs_kafka_consumer *c, const char *topic, struct rs_err *err);

/*
 * Assign partitions[0..n) of `topic` directly, without joining the group (a replay: no
 * rebalance, no commits), and start polling. on_assign runs first to pick the start offsets,
 * as on a group assignment. Returns 0 or RS_EKAFKA.
 */
int rs_kafka_consumer_assign(struct rs_kafka_consumer *c, const char *topic,
                             const int32_t *partitions, size_t n, struct rs_err *err);

/*
 * Stop (true) or resume (false) handing messages to on_batch, for a rate limit: what is
 * fetched waits in librdkafka's queue (bounded by queued.max.messages.kbytes).
 */
void rs_kafka_consumer_throttle(struct rs_kafka_consumer *c, bool stop);

/* Tell Kafka's group how far we are (monitoring only: our store holds the truth). */
void rs_kafka_consumer_store_offset(struct rs_kafka_consumer *c, const char *topic,
                                    int32_t partition, int64_t next_offset);

/* High watermark of a partition as last seen by the fetcher (no request), or -1. */
int64_t rs_kafka_consumer_high_watermark(struct rs_kafka_consumer *c, const char *topic,
                                         int32_t partition);

/*
 * Leave the group without blocking; on_revoke runs for the current assignment, then
 * `done(opaque)` once librdkafka reports the consumer closed and the loop handles are closed.
 */
void rs_kafka_consumer_close(struct rs_kafka_consumer *c, void (*done)(void *opaque), void *opaque);

/* Destroy the client (may block briefly). Only after close's done. NULL allowed. */
void rs_kafka_consumer_free(struct rs_kafka_consumer *c);

/* A header on a produced message. */
struct rs_kafka_header {
    const char *name;
    struct rs_bytes value;
};

/*
 * Delivery report: `ok` false with librdkafka's reason when the message was not written;
 * `retriable` then says whether sending it again can succeed (a timeout, a broker away) or
 * not (too large for the broker, topic unknown or not authorized).
 */
typedef void rs_kafka_delivered_cb(void *opaque, uint64_t seq, bool ok, bool retriable,
                                   const char *reason);

struct rs_kafka_producer;

/*
 * Create an idempotent producer (enable.idempotence=true, so acks=all and no reordering or
 * duplicates from retries) with cfg's kafka properties for the producer role. `on_fatal` runs
 * when the idempotent producer hits a fatal error (it cannot send again).
 * Returns 0 (Returns new: close, then free) or RS_EKAFKA.
 */
int rs_kafka_producer_open(struct rs_kafka_producer **out, uv_loop_t *loop,
                           const struct rs_config *cfg, rs_kafka_delivered_cb *delivered,
                           void (*on_fatal)(void *opaque, const char *reason), void *opaque,
                           struct rs_err *err);

/*
 * Queue one message; `seq` comes back in the delivery report. Copies key, payload and headers.
 * Returns 0, -ENOBUFS when librdkafka's queue is full (try again after reports), or RS_EKAFKA
 * when this message can never be sent (too large, for example).
 */
int rs_kafka_producer_send(struct rs_kafka_producer *p, const char *topic, struct rs_bytes key,
                           struct rs_bytes payload, const struct rs_kafka_header *headers,
                           size_t n_headers, int64_t ts_ms, uint64_t seq, struct rs_err *err);

/* Messages queued or in flight. */
size_t rs_kafka_producer_pending(struct rs_kafka_producer *p);

/* Stop watching the producer's queue and close the loop handle; `done` after that. */
void rs_kafka_producer_close(struct rs_kafka_producer *p, void (*done)(void *opaque), void *opaque);

/* Destroy the client, waiting at most flush_ms for what is still in flight. NULL allowed. */
void rs_kafka_producer_free(struct rs_kafka_producer *p, int flush_ms);

/*
 * An in-process Kafka cluster (librdkafka's mock cluster, for the demo and fault injection;
 * never a stand-in for the real broker in tests of semantics). Topics are created with
 * `partitions` partitions. Returns 0 (Returns new: rs_kafka_mock_free) or RS_EKAFKA.
 */
struct rs_kafka_mock;
int rs_kafka_mock_new(struct rs_kafka_mock **out, const char *const *topics, size_t n_topics,
                      int partitions, struct rs_err *err);
/* "host:port,..." to use as bootstrap.servers. Borrowed until rs_kafka_mock_free. */
const char *rs_kafka_mock_bootstraps(const struct rs_kafka_mock *m);
void rs_kafka_mock_free(struct rs_kafka_mock *m);

/*
 * Build (and throw away) the consumer's and the producer's librdkafka configuration from cfg,
 * so that a bad kafka.* key or value is reported at check time. Returns 0 or RS_ECONFIG.
 */
int rs_kafka_check_config(const struct rs_config *cfg, struct rs_err *err);

/*
 * The partitions of `topic` and, for each, its first offset at or after the record timestamp
 * at_ms (INT64_MIN: the log start; the log end when no record is that late) and its high
 * watermark. *n_out gets the partition count, start and end (new arrays, index = partition;
 * free them) the offsets. BLOCKS on the cluster for up to timeout_ms: call it before the loop
 * runs (replay setup), never from a handler. Returns 0 or RS_EKAFKA naming the topic and the
 * reason.
 */
int rs_kafka_query_offsets(const struct rs_config *cfg, const char *topic, int64_t at_ms,
                           int timeout_ms, size_t *n_out, int64_t **start, int64_t **end,
                           struct rs_err *err);

/* librdkafka's version string, for `revstream version`. */
const char *rs_kafka_version(void);

#endif
