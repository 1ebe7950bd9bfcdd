/*
 * broker.h - what the integration tests need around a real Kafka broker: topics, a plain
 * producer, a reader that starts at the beginning of every partition, and the revstream
 * binary as a child process (the path a user takes).
 *
 * Tests call rs_tb_brokers() first: NULL means RS_TEST_BROKERS is unset and the test skips
 * (on a developer's machine); CI always sets it, and scripts/test.sh fails on a skip.
 */
#ifndef RS_TEST_BROKER_H
#define RS_TEST_BROKER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* RS_TEST_BROKERS, or NULL. */
const char *rs_tb_brokers(void);

/* A name unique to this run: "<prefix>-<pid>-<counter>-<random>". Returns new (free). */
char *rs_tb_unique(const char *prefix);

/* Create a topic and wait for it; aborts the test process on failure. */
void rs_tb_create_topic(const char *brokers, const char *topic, int partitions);

rd_kafka_t *rs_tb_producer_new(const char *brokers);
/* Produce one message (copied); aborts on a local error. */
void rs_tb_produce(rd_kafka_t *p, const char *topic, const void *key, size_t key_len,
                   const void *payload, size_t len);
/* Produce one message to an explicit partition (copied); aborts on a local error. */
void rs_tb_produce_to(rd_kafka_t *p, const char *topic, int32_t partition, const void *payload,
                      size_t len);

/* Produce one message to `partition` with an explicit record timestamp (ms, > 0), as a source
 * that stamps its own records does; copied; aborts on a local error. */
void rs_tb_produce_at(rd_kafka_t *p, const char *topic, int32_t partition, const void *payload,
                      size_t len, int64_t timestamp_ms);

/* Wait until everything produced is acknowledged; aborts if not within 30 s. */
void rs_tb_flush(rd_kafka_t *p);

/* A consumer assigned to every partition of `topic` from the beginning. */
rd_kafka_t *rs_tb_reader_new(const char *brokers, const char *topic, int partitions);

/* Read everything there is now: messages until `idle_ms` pass without one, or until
 * `want` messages were read (0: no count), or `timeout_ms`. Calls cb for each. */
typedef void rs_tb_message_cb(void *opaque, const rd_kafka_message_t *m);
size_t rs_tb_read(rd_kafka_t *reader, size_t want, int idle_ms, int timeout_ms,
                  rs_tb_message_cb *cb, void *opaque);

/* Start `revstream <args...>` (NULL-terminated) with stdout to `out_path` (NULL: inherit). */
pid_t rs_tb_spawn(const char *const *args, const char *out_path);
/* The same, with stderr to `err_path` too (NULL: inherit). */
pid_t rs_tb_spawn_io(const char *const *args, const char *out_path, const char *err_path);
/* Wait for the child; returns its exit code, or 128 + signal. */
int rs_tb_wait(pid_t pid);
/* Run to completion and return the exit code; stdout goes to out_path. */
int rs_tb_run(const char *const *args, const char *out_path);

/* Run to completion with stdout and stderr captured; returns the exit code. */
int rs_tb_run_io(const char *const *args, const char *out_path, const char *err_path);

/* Read a whole file (NUL-terminated). Returns new (free), or NULL. */
char *rs_tb_slurp(const char *path);

/* Wall clock, ms. */
int64_t rs_tb_now_ms(void);

/* Sleep for `ms` (the integration tests wait on a real broker and a child process). */
void rs_tb_sleep_ms(int ms);

#endif
