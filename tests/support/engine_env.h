/*
 * engine_env.h - one `revstream run` against the real broker, as the integration tests drive
 * it: fresh topics and a state directory, a config file, events queued as JSON lines and
 * loaded with `revstream send` (the path a user takes), the HTTP API read as JSON, and the
 * metrics topic read back as a compacted topic's view (the latest message per key).
 *
 * test_revenue.c and test_funnel.c use it. test_pipeline.c and test_replay.c still carry their
 * own setup and teardown: they run a second engine or a replay beside the first, and write
 * configurations of their own (to be moved here).
 */
#ifndef RS_TEST_ENGINE_ENV_H
#define RS_TEST_ENGINE_ENV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RS_ENV_MIN  (60 * INT64_C(1000))
#define RS_ENV_HOUR (60 * RS_ENV_MIN)
#define RS_ENV_DAY  (24 * RS_ENV_HOUR)

struct rs_env_line;

struct rs_env {
    const char *brokers; /* NULL: no broker, the test skips */
    int partitions;
    char *dir;
    char *events, *alerts, *dlq, *metrics, *group;
    char config[4096];
    char state[4096];
    char input[4096];
    uint16_t port;
    pid_t engine;
    size_t n_lines; /* events queued so far: their ids are "e<n>" */
    struct rs_env_line *queue;
    size_t queue_n, queue_cap;
};

/* A new environment (names and paths only); NULL brokers when RS_TEST_BROKERS is unset. */
struct rs_env *rs_env_new(int partitions);
/* Kill the engine if it runs, remove the directory, free. NULL allowed. */
void rs_env_free(struct rs_env *e);
/* cmocka teardown of a test whose setup put rs_env_new() in *state: rs_env_free(). */
int rs_env_teardown(void **state);

/* Create the topics (skips the test without a broker). */
void rs_env_need_broker(struct rs_env *e);
/* Write the config file: brokers, topics, state, HTTP on a free port, then `extra` lines. */
void rs_env_write_config(struct rs_env *e, const char *extra);
pid_t rs_env_start(struct rs_env *e);
/* SIGTERM and wait; returns the exit code. */
int rs_env_stop(struct rs_env *e);

/* ms since the epoch of a UTC civil time, computed here, independent of the engine. */
int64_t rs_env_utc(int y, int mo, int d, int h, int mi);

/*
 * Queue one event: {"type":type,"id":"e<n>","ts":ts, <fields>}. fields is the rest of the
 * object (no braces). Lines are sent sorted by ts (ties in queueing order), as a source
 * delivers them.
 */
__attribute__((format(printf, 4, 5))) void rs_env_line(struct rs_env *e, const char *type,
                                                       int64_t ts, const char *fields, ...);
/* Write the queued lines to a file and load them with `revstream send -c config FILE`. */
void rs_env_send(struct rs_env *e);

/* GET path; asserts the status and that the body is JSON. Returns new (json_decref). */
json_t *rs_env_get_json(struct rs_env *e, const char *path, int want_status);
/* GET until cond(body) holds or timeout_ms passes (then fails the test). */
void rs_env_wait_json(struct rs_env *e, const char *path, bool (*cond)(const json_t *v),
                      int timeout_ms);
/* A number member of o; fails the test, printing o, if absent. */
double rs_env_num(const json_t *o, const char *key);
/* Assert got == want within 1e-6 relative. */
void rs_env_assert_near(double got, double want);

/* The metrics topic as a compacted topic shows it: the latest message per key. */
struct rs_env_metrics {
    char (*keys)[320];
    int64_t (*inputs)[9]; /* count, then n[0..7] */
    size_t n, cap;
};

/* Read everything on e->metrics now into mm (zeroed before the first call). */
void rs_env_read_metrics(struct rs_env *e, struct rs_env_metrics *mm);
/* Sum the latest part of every partition of "metric|dims|grain|bucket": n[0..7] into sum;
 * returns the number of parts. */
int rs_env_metric_sum(const struct rs_env_metrics *mm, const char *prefix, int64_t sum[8]);
void rs_env_metrics_release(struct rs_env_metrics *mm);

#endif
