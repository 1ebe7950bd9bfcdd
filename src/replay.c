/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#define RS_LOG_MODULE "replay"
#include "replay.h"

#include "app.h"
#include "kafka_io.h"
#include "log.h"
#include "mem.h"
#include "store.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define QUERY_TIMEOUT_MS 15000
#define TTY_EVERY_MS     200  /* progress bar refresh */
#define LINE_EVERY_MS    5000 /* progress line when stdout is not a terminal */
#define RATE_EVERY_MS    20   /* rate limiter granularity */
#define RANGE_FILE       "replay.range"
#define DEFAULT_SUFFIX   ".replay"

/*
 * A replay's batches, unless the configuration sets them: nothing waits on a replay's alerts,
 * so it trades the service's latency-sized batches (5000 events, 20 ms) for fewer commits,
 * each rewriting fewer pages per event. What fires and the state it builds do not depend on
 * where batches end.
 */
#define REPLAY_BATCH_EVENTS "20000"
#define REPLAY_BATCH_TIME   "1s"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

struct replay {
    const struct rs_cli *cli;
    struct rs_config *cfg;
    uv_loop_t loop;
    struct rs_app *app;
    struct rs_app_replay r;
    size_t n;
    int64_t *start, *end;
    uint64_t total; /* offsets in the range */
    uv_timer_t progress, rate;
    uv_signal_t sigint, sigterm;
    uint64_t started_ns;
    bool tty;
    bool paused;  /* a signal stopped it */
    bool done;    /* every partition reached its end */
    bool stopped; /* rs_app_stop was called */
    int app_status;
};

/* ---- the range ------------------------------------------------------------------------ */

/* "2026-03-02T00:00:00Z" (any ISO-8601 GLib reads, with a zone) -> ms. */
static int parse_time(const char *text, int64_t *ms)
{
    GDateTime *dt = g_date_time_new_from_iso8601(text, NULL);

    if (dt == NULL) {
        return RS_EUSAGE;
    }
    *ms = g_date_time_to_unix(dt) * 1000 + g_date_time_get_microsecond(dt) / 1000;
    g_date_time_unref(dt);
    return 0;
}

/* "P:O,P:O" -> offsets[P] = O for each pair. */
static int parse_pairs(const char *text, size_t n, int64_t *offsets, struct rs_err *err)
{
    const char *p = text;

    while (*p != '\0') {
        char *end;
        unsigned long part;
        long long off;

        errno = 0;
        part = strtoul(p, &end, 10);
        if (end == p || *end != ':' || errno != 0) {
            return rs_err_set(err, RS_EUSAGE,
                              "'%s': expected PARTITION:OFFSET pairs like 0:100,1:0", text);
        }
        p = end + 1;
        off = strtoll(p, &end, 10);
        if (end == p || off < 0 || errno != 0 || (*end != ',' && *end != '\0')) {
            return rs_err_set(err, RS_EUSAGE,
                              "'%s': expected PARTITION:OFFSET pairs like 0:100,1:0", text);
        }
        if (part >= n) {
            return rs_err_set(err, RS_EUSAGE,
                              "'%s': partition %lu does not exist (the topic has %zu)", text, part,
                              n);
        }
        offsets[part] = off;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static bool is_pairs(const char *text)
{
    return strchr(text, ':') != NULL && strchr(text, 'T') == NULL;
}

/* Resolve --from and --to against the cluster. */
static int resolve_range(struct replay *rp, struct rs_err *err)
{
    const char *from = rp->cli->from != NULL ? rp->cli->from : "earliest";
    const char *to = rp->cli->to != NULL ? rp->cli->to : "end";
    int64_t at = INT64_MIN;
    int rc;

    if (strcmp(from, "earliest") != 0 && !is_pairs(from) && parse_time(from, &at) != 0) {
        return rs_err_set(err, RS_EUSAGE,
                          "--from '%s': expected earliest, an ISO-8601 time such as "
                          "2026-03-02T00:00:00Z, or PARTITION:OFFSET pairs",
                          from);
    }
    rc = rs_kafka_query_offsets(rp->cfg, rp->cfg->topic_events, at, QUERY_TIMEOUT_MS, &rp->n,
                                &rp->start, &rp->end, err);
    if (rc != 0) {
        return rc;
    }
    if (is_pairs(from)) {
        rc = parse_pairs(from, rp->n, rp->start, err);
    }
    if (rc == 0 && strcmp(to, "end") != 0) {
        int64_t until;

        if (is_pairs(to)) {
            rc = parse_pairs(to, rp->n, rp->end, err);
        } else if (parse_time(to, &until) == 0) {
            size_t n2;
            int64_t *s2, *e2;

            /* The first record at or after `until` is where the replay stops. */
            rc = rs_kafka_query_offsets(rp->cfg, rp->cfg->topic_events, until, QUERY_TIMEOUT_MS,
                                        &n2, &s2, &e2, err);
            for (size_t i = 0; rc == 0 && i < rp->n && i < n2; i++) {
                rp->end[i] = s2[i];
            }
            if (rc == 0) {
                free(s2);
                free(e2);
            }
        } else {
            rc = rs_err_set(err, RS_EUSAGE,
                            "--to '%s': expected end, an ISO-8601 time, or PARTITION:OFFSET pairs",
                            to);
        }
    }
    for (size_t i = 0; rc == 0 && i < rp->n; i++) {
        if (rp->end[i] < rp->start[i]) {
            rp->end[i] = rp->start[i]; /* an end before the start is an empty range */
        }
    }
    return rc;
}

static void range_path(const struct replay *rp, char *out, size_t size)
{
    (void)snprintf(out, size, "%s/%s", rp->cli->state_dir, RANGE_FILE);
}

/* The range, as text next to the state: "topic T" then "P START END" lines. */
static int save_range(const struct replay *rp, struct rs_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;

    range_path(rp, path, sizeof(path));
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (mkdir(rp->cli->state_dir, 0700) != 0 && errno != EEXIST) {
        return rs_err_set(err, RS_EIO, "--state-dir '%s': %s", rp->cli->state_dir, strerror(errno));
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        return rs_err_set(err, RS_EIO, "%s: %s", tmp, strerror(errno));
    }
    fprintf(f, "topic %s\n", rp->cfg->topic_events);
    for (size_t i = 0; i < rp->n; i++) {
        fprintf(f, "%zu %" PRId64 " %" PRId64 "\n", i, rp->start[i], rp->end[i]);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        return rs_err_set(err, RS_EIO, "%s: %s", path, strerror(errno));
    }
    return 0;
}

static int load_range(struct replay *rp, struct rs_err *err)
{
    char path[PATH_MAX], topic[512];
    FILE *f;
    size_t p;
    int64_t s, e;
    int rc = 0;

    range_path(rp, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL) {
        return rs_err_set(err, RS_EUSAGE, "--resume: no paused replay in '%s' (%s: %s)",
                          rp->cli->state_dir, path, strerror(errno));
    }
    if (fscanf(f, "topic %511s\n", topic) != 1 || strcmp(topic, rp->cfg->topic_events) != 0) {
        rc = rs_err_set(err, RS_EUSAGE, "--resume: %s is a replay of another topic", path);
    }
    while (rc == 0 && fscanf(f, "%zu %" SCNd64 " %" SCNd64 "\n", &p, &s, &e) == 3) {
        if (p != rp->n || s < 0 || e < s) {
            rc = rs_err_set(err, RS_EIO, "%s: line for partition %zu is corrupt", path, p);
            break;
        }
        rp->start = rs_xrealloc(rp->start, (rp->n + 1) * sizeof(*rp->start));
        rp->end = rs_xrealloc(rp->end, (rp->n + 1) * sizeof(*rp->end));
        rp->start[rp->n] = s;
        rp->end[rp->n++] = e;
    }
    (void)fclose(f);
    if (rc == 0 && rp->n == 0) {
        rc = rs_err_set(err, RS_EIO, "%s holds no partitions", path);
    }
    return rc;
}

/* ---- isolation --------------------------------------------------------------------------- */

static bool same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];

    if (realpath(a, ra) == NULL || realpath(b, rb) == NULL) {
        return strcmp(a, b) == 0;
    }
    return strcmp(ra, rb) == 0;
}

static bool holds_state(const char *dir)
{
    char path[PATH_MAX];
    struct stat sb;

    (void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

/* Point cfg at the replay's directory and outputs. */
static int configure(struct replay *rp, struct rs_err *err)
{
    static const char *const outputs[] = { "topic.alerts", "topic.metrics", "topic.dlq" };
    const char *suffix = rp->cli->topic_suffix != NULL ? rp->cli->topic_suffix : DEFAULT_SUFFIX;
    struct rs_config *cfg = rp->cfg;
    int rc;

    if (same_dir(rp->cli->state_dir, cfg->state_dir) && !rp->cli->in_place) {
        return rs_err_set(err, RS_EUSAGE,
                          "--state-dir '%s' is the service's state.dir: a replay rebuilds into "
                          "a directory of its own (or give --in-place, with the service stopped)",
                          rp->cli->state_dir);
    }
    if (!rp->cli->resume && !rp->cli->in_place && holds_state(rp->cli->state_dir)) {
        return rs_err_set(err, RS_EUSAGE,
                          "--state-dir '%s' already holds state: use a fresh directory, or "
                          "--resume to continue a paused replay",
                          rp->cli->state_dir);
    }
    rc = rs_config_set(cfg, "state.dir", rp->cli->state_dir, "--state-dir", err);
    for (size_t i = 0; rc == 0 && !rp->cli->no_output && i < 3; i++) {
        char name[512];
        const char *base = i == 0   ? cfg->topic_alerts
                           : i == 1 ? cfg->topic_metrics
                                    : cfg->topic_dlq;

        (void)snprintf(name, sizeof(name), "%s%s", base, suffix);
        rc = rs_config_set(cfg, outputs[i], name, "--topic-suffix", err);
    }
    if (rc == 0) {
        rc = rs_config_set(cfg, "http.bind", "off", "replay", err);
    }
    if (rc == 0 && rs_config_origin(cfg, "batch.max_events") == NULL) {
        rc = rs_config_set(cfg, "batch.max_events", REPLAY_BATCH_EVENTS, "replay", err);
    }
    if (rc == 0 && rs_config_origin(cfg, "batch.max_time") == NULL) {
        rc = rs_config_set(cfg, "batch.max_time", REPLAY_BATCH_TIME, "replay", err);
    }
    if (rc == 0 && rp->cli->rate > 0) {
        /* Batches of RATE_EVERY_MS worth of events: the limit holds within one batch. */
        double per = rp->cli->rate * RATE_EVERY_MS / 1000.0;
        char n[32];

        (void)snprintf(n, sizeof(n), "%u",
                       per < 1                               ? 1u
                       : per < (double)cfg->batch_max_events ? (unsigned)per
                                                             : cfg->batch_max_events);
        rc = rs_config_set(cfg, "batch.max_events", n, "--rate", err);
    }
    return rc == 0 ? rs_config_validate(cfg, err) : rc;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static uint64_t applied(const struct replay *rp)
{
    uint64_t n = 0;

    for (size_t i = 0; i < rp->n; i++) {
        int64_t next = rs_app_next_offset(rp->app, (int32_t)i);

        if (next > rp->start[i]) {
            n += (uint64_t)((next < rp->end[i] ? next : rp->end[i]) - rp->start[i]);
        }
    }
    return n;
}

static double elapsed_s(const struct replay *rp)
{
    return (double)(uv_hrtime() - rp->started_ns) / 1e9;
}

static void print_progress(struct replay *rp, bool final)
{
    uint64_t n = applied(rp);
    double secs = elapsed_s(rp);
    double rate = secs > 0 ? (double)n / secs : 0;
    double pct = rp->total > 0 ? 100.0 * (double)n / (double)rp->total : 100.0;
    double eta = rate > 0 ? (double)(rp->total - n) / rate : 0;

    if (rp->tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);

        for (int i = 0; i < 30; i++) {
            bar[i] = i < fill ? '#' : '.';
        }
        bar[30] = '\0';
        printf("\r[%s] %5.1f%%  %" PRIu64 "/%" PRIu64 " offsets  %.0f/s  eta %.0fs   %s", bar, pct,
               n, rp->total, rate, eta, final ? "\n" : "");
    } else {
        printf("replay: offsets=%" PRIu64 "/%" PRIu64 " rate=%.0f/s done=%.1f%% eta=%.0fs\n", n,
               rp->total, rate, pct, eta);
    }
    (void)fflush(stdout);
}

static void on_progress(uv_timer_t *t)
{
    print_progress(t->data, false);
}

/*
 * The rate limit: after every batch, and every RATE_EVERY_MS while stopped, consuming stops
 * while the replay is ahead of rate x elapsed time. Batches are cut to RATE_EVERY_MS worth of
 * events (configure()), so a burst is at most that.
 */
static void check_rate(struct replay *rp)
{
    const struct rs_app_counters *c = rs_app_counters(rp->app);
    double allowed = rp->cli->rate * elapsed_s(rp);

    if (rp->cli->rate > 0) {
        rs_app_throttle(rp->app, (double)(c->events + c->dead_letters) >= allowed);
    }
}

static void on_rate(uv_timer_t *t)
{
    check_rate(t->data);
}

static void on_batch(void *opaque)
{
    check_rate(opaque);
}

static void app_stopped(void *opaque, int status)
{
    struct replay *rp = opaque;

    rp->app_status = status;
    (void)uv_timer_stop(&rp->progress);
    (void)uv_timer_stop(&rp->rate);
    uv_close((uv_handle_t *)&rp->progress, NULL);
    uv_close((uv_handle_t *)&rp->rate, NULL);
    uv_close((uv_handle_t *)&rp->sigint, NULL);
    uv_close((uv_handle_t *)&rp->sigterm, NULL);
}

static void stop(struct replay *rp)
{
    if (!rp->stopped) {
        rp->stopped = true;
        rs_app_stop(rp->app, app_stopped, rp);
    }
}

static void on_done(void *opaque)
{
    struct replay *rp = opaque;

    rp->done = true;
    stop(rp);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct replay *rp = s->data;

    if (rp->stopped) {
        fprintf(stderr,
                "replay: signal %d again: exiting now; --resume continues from the last "
                "commit\n",
                signum);
        _exit(1);
    }
    rp->paused = !rp->done;
    stop(rp);
}

static void print_offsets(const struct replay *rp, FILE *out)
{
    for (size_t i = 0; i < rp->n; i++) {
        int64_t next = rs_app_next_offset(rp->app, (int32_t)i);

        fprintf(out, "%s%zu:%" PRId64, i > 0 ? "," : "", i, next >= 0 ? next : rp->start[i]);
    }
}

static int run(struct replay *rp, struct rs_err *err)
{
    int rc = rs_app_open(&rp->app, &rp->loop, rp->cfg, NULL, err);

    if (rc != 0) {
        return rc;
    }
    rp->r = (struct rs_app_replay){ rp->n,   rp->start, rp->end, rp->cli->no_output,
                                    on_done, on_batch,  rp };
    rs_app_set_replay(rp->app, &rp->r);
    (void)uv_timer_init(&rp->loop, &rp->progress);
    (void)uv_timer_init(&rp->loop, &rp->rate);
    (void)uv_signal_init(&rp->loop, &rp->sigint);
    (void)uv_signal_init(&rp->loop, &rp->sigterm);
    rp->progress.data = rp->rate.data = rp->sigint.data = rp->sigterm.data = rp;
    (void)uv_signal_start(&rp->sigint, on_signal, SIGINT);
    (void)uv_signal_start(&rp->sigterm, on_signal, SIGTERM);
    rp->started_ns = uv_hrtime();
    rc = rs_app_start(rp->app, err);
    if (rc != 0) {
        rp->app_status = 1;
        stop(rp);
    } else {
        (void)uv_timer_start(&rp->progress, on_progress, rp->tty ? TTY_EVERY_MS : LINE_EVERY_MS,
                             rp->tty ? TTY_EVERY_MS : LINE_EVERY_MS);
        if (rp->cli->rate > 0) {
            (void)uv_timer_start(&rp->rate, on_rate, 0, RATE_EVERY_MS);
        }
    }
    (void)uv_run(&rp->loop, UV_RUN_DEFAULT);
    return rc;
}

int rs_replay_run(struct rs_config *cfg, const struct rs_cli *cli)
{
    struct replay rp;
    struct rs_err err;
    int code = EXIT_OK;
    int rc;

    memset(&rp, 0, sizeof(rp));
    rs_err_clear(&err);
    rp.cli = cli;
    rp.cfg = cfg;
    rp.tty = isatty(STDOUT_FILENO) != 0;
    rc = configure(&rp, &err);
    if (rc == 0) {
        rc = cli->resume ? load_range(&rp, &err) : resolve_range(&rp, &err);
    }
    if (rc == 0 && !cli->resume) {
        rc = save_range(&rp, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "revstream: %s\n", err.msg);
        free(rp.start);
        free(rp.end);
        return rc == RS_EUSAGE || rc == RS_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
    }
    for (size_t i = 0; i < rp.n; i++) {
        rp.total += (uint64_t)(rp.end[i] - rp.start[i]);
    }
    (void)uv_loop_init(&rp.loop);
    rc = run(&rp, &err);
    if (rc != 0) {
        fprintf(stderr, "revstream: %s\n", err.msg);
        code = EXIT_RUNTIME;
    } else if (rp.app_status != 0) {
        code = EXIT_RUNTIME;
    } else if (rp.paused) {
        print_progress(&rp, true);
        printf("replay: paused at ");
        print_offsets(&rp, stdout);
        printf("; resume with --resume\n");
        code = RS_REPLAY_PAUSED;
    } else {
        const struct rs_app_counters *c = rs_app_counters(rp.app);
        double secs = elapsed_s(&rp);

        print_progress(&rp, true);
        printf("replay: done events=%" PRIu64 " dead_letters=%" PRIu64 " duplicates=%" PRIu64
               " seconds=%.3f events_per_s=%.0f offsets=",
               c->events, c->dead_letters, c->duplicates, secs,
               secs > 0 ? (double)(c->events + c->dead_letters) / secs : 0);
        print_offsets(&rp, stdout);
        printf("\n");
    }
    rs_app_free(rp.app);
    if (uv_loop_close(&rp.loop) != 0) {
        RS_LOG_WARN("replay loop closed with handles open");
    }
    free(rp.start);
    free(rp.end);
    return code;
}
