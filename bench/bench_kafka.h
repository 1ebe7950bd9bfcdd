/*
 * bench_kafka.h - what the benches that run against a real broker share: the generated
 * SLA-01 event stream written into a topic, the bare librdkafka fetch of that topic (the
 * limit an engine reading it cannot beat), topic administration, and small helpers for
 * timing and for the children they run.
 *
 * Not for tests: everything here prints its failures to stderr and returns non-zero, which
 * is what a bench does with them. Like kafka_io.c this header includes rdkafka.h: a bench
 * measures librdkafka itself. One thread.
 */
#ifndef RS_BENCH_KAFKA_H
#define RS_BENCH_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How long an admin request or a metadata query may take before the bench gives up. */
#define RS_BENCH_ADMIN_TIMEOUT_MS 30000

/* The topic a bench reads: where it is, how many partitions and generated events. */
struct rs_bench_topic {
    const char *brokers;
    const char *topic;
    int partitions;
    size_t events;
    bool reuse; /* keep the topic when it already holds exactly `events` events */
};

/* CLOCK_MONOTONIC in nanoseconds, and the seconds since such a reading. */
int64_t rs_bench_now_ns(void);
double rs_bench_secs_since(int64_t t_ns);

/* CLOCK_REALTIME in milliseconds since the Unix epoch: event times and deadlines. */
int64_t rs_bench_wall_ms(void);

/* rd_kafka_conf_set that prints its failure. Returns 0 or 1. */
int rs_bench_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);

/*
 * Make `t->topic` hold exactly t->events events of the generated stream (leads over 1000
 * accounts keyed by account, their touches, some opportunities, in increasing event time from
 * 2026-03-02; deterministic), writing it anew unless t->reuse and it already does. Prints
 * "# generated ..." or "# reused topic ..."; fills lo[] and hi[] (t->partitions each) with
 * the partitions' start and end offsets. Returns 0 or 1.
 */
int rs_bench_prepare_topic(const struct rs_bench_topic *t, int64_t *lo, int64_t *hi);

/*
 * Consume every partition from the beginning up to hi[] with the properties the engine's
 * consumer forces and its poll call, touching each payload but decoding nothing. Sets *events,
 * *bytes and *secs (client creation to the last message). Returns 0 or 1.
 */
int rs_bench_fetch(const struct rs_bench_topic *t, const int64_t *lo, const int64_t *hi,
                   uint64_t *events, uint64_t *bytes, double *secs);

/*
 * Delete `topic` if it exists and create it with `partitions` partitions, waiting until every
 * partition has a leader. Returns 0 or 1.
 */
int rs_bench_recreate_topic(rd_kafka_t *rk, const char *topic, int partitions);

/* Start and end offsets of each partition; *count is the records between them. 0 or 1. */
int rs_bench_watermarks(rd_kafka_t *rk, const char *topic, int partitions, int64_t *lo, int64_t *hi,
                        uint64_t *count);

/* rm -rf `path`; what cannot be removed is left. */
void rs_bench_remove_tree(const char *path);

/* The median of v[0..n), n >= 1; v is left as it was. */
double rs_bench_median(const double *v, int n);

/*
 * The revstream binary of this build tree: bench/../revstream beside this executable, written
 * into buf; "revstream" (found on PATH) when /proc/self/exe cannot be read.
 */
const char *rs_bench_default_revstream(char *buf, size_t size);

/* Sleep `ms` milliseconds, through signals. */
void rs_bench_sleep_ms(int ms);

/*
 * Fork and exec argv (NULL-terminated, at most 15 words) with stdout and stderr into the
 * files named (truncated; NULL: inherited). Returns the child's pid, or -1 (printed).
 */
pid_t rs_bench_spawn(const char *const argv[], const char *out_path, const char *err_path);

/* The whole of a small file, NUL-terminated (Returns new: free it), or NULL. */
char *rs_bench_slurp(const char *path);

/* CPU seconds (user + system) a live process used so far, from /proc; -1 if unreadable. */
double rs_bench_proc_cpu_s(pid_t pid);

/* Anonymous resident memory (RssAnon) of a live process in MB, from /proc; -1 if unreadable. */
double rs_bench_proc_anon_mb(pid_t pid);

#endif
