/*
 * bench_replay.c - how fast `revstream replay` rebuilds state from a real broker, against how
 * fast librdkafka alone fetches the same topic from that broker.
 *
 *   bench_replay [--events N] [--partitions P] [--topic NAME] [--runs R] [--batch B]
 *                [--batch-time T] [--reuse] [--revstream PATH]
 *
 *   defaults: 5000000 events, 4 partitions, topic revstream.bench.replay, 3 runs, replay
 *   cases with batch.max_events=20000 and with that and batch.max_time=1s (--batch 0: neither;
 *   --batch-time 0: not the second), the revstream binary of the same build tree. The broker
 *   is RS_BENCH_BROKERS, else 127.0.0.1:9092.
 *
 * It writes the events once (with --reuse, not at all when the topic already holds exactly N
 * of them), then measures, round after round so that every case sees the same noise:
 *   fetch          a consumer assigned to every partition from the beginning, with the
 *                  engine's consumer settings, polling until the end offsets captured at the
 *                  start; it touches each payload but decodes nothing: the fetch limit
 *   replay         `revstream replay --no-output` into a fresh state directory, timed from
 *                  fork to exit (wall), plus the replay's own final line (own)
 *   replay_bB      the same with batch.max_events=B
 *   replay_bB_tT   and batch.max_time=T: the default 20ms closes a batch long before 5000
 *                  events, so batch.max_events alone changes little
 * Prints the command, the machine, one line per case and run (name run events events/s
 * seconds), the medians, and each replay's median rate as a fraction of the fetch's.
 *
 * Events: leads over 1000 accounts (a third high intent), keyed by account, their first human
 * touches (most in time, some late, a fifth never), and an opportunity for a tenth of the
 * touched leads (created, two stage changes, closed), in increasing event time from
 * 2026-03-02T00:00:00Z.
 *
 * The stream, the topic and the fetch are bench_kafka.c's, shared with bench_e2e.
 */
#include "bench_kafka.h"
#include "bench_machine.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Medians are over at most this many runs (the per-case arrays are fixed). */
#define MAX_RUNS 15

struct options {
    size_t events;
    int partitions;
    const char *topic;
    int runs;
    unsigned batch;
    const char *batch_time;
    bool reuse;
    const char *revstream;
    const char *brokers;
};

/* ---- the replay ------------------------------------------------------------------------ */

/* The replay's configuration: the bench topic, a service state.dir it never touches. */
/* A replay case: batch settings, 0 and NULL for the defaults. */
struct replay_case {
    unsigned batch;
    const char *batch_time;
};

static int write_conf(const char *path, const char *work, const struct options *o,
                      const struct replay_case *rc)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f,
            "kafka.bootstrap.servers = %s\n"
            "topic.events = %s\nstate.dir = %s/service-state\nhttp.bind = off\n"
            "log.level = warn\n",
            o->brokers, o->topic, work);
    if (rc->batch > 0) {
        fprintf(f, "batch.max_events = %u\n", rc->batch);
    }
    if (rc->batch_time != NULL) {
        fprintf(f, "batch.max_time = %s\n", rc->batch_time);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

struct replay_result {
    uint64_t events;
    double wall_s, own_s, own_rate;
    int64_t state_bytes;
};

/* Pick the numbers out of "replay: done events=N ... seconds=S events_per_s=R". */
static int parse_done(const char *out, struct replay_result *r)
{
    const char *line = NULL, *p = out;
    const char *ev, *secs, *rate;
    unsigned long long n;

    while ((p = strstr(p, "replay: done ")) != NULL) {
        line = p++;
    }
    if (line == NULL || (ev = strstr(line, " events=")) == NULL ||
        (secs = strstr(line, " seconds=")) == NULL ||
        (rate = strstr(line, " events_per_s=")) == NULL || sscanf(ev, " events=%llu", &n) != 1 ||
        sscanf(secs, " seconds=%lf", &r->own_s) != 1 ||
        sscanf(rate, " events_per_s=%lf", &r->own_rate) != 1) {
        return 1;
    }
    r->events = n;
    return 0;
}

/* Run `revstream replay --no-output` into a fresh work/state-K and time it. */
static int replay(const struct options *o, const char *work, const struct replay_case *rc, int k,
                  struct replay_result *r)
{
    char conf[PATH_MAX], state[PATH_MAX], mdb[PATH_MAX + 16];
    char *out = NULL;
    size_t len = 0, cap = 0;
    int fds[2], status;
    struct stat sb;
    pid_t pid;
    int64_t t;
    ssize_t got;

    (void)snprintf(conf, sizeof(conf), "%s/replay.conf", work);
    (void)snprintf(state, sizeof(state), "%s/state-%d", work, k);
    if (write_conf(conf, work, o, rc) != 0 || pipe(fds) != 0) {
        return 1;
    }
    (void)fflush(stdout);
    t = rs_bench_now_ns();
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        (void)dup2(fds[1], STDOUT_FILENO);
        (void)close(fds[0]);
        (void)close(fds[1]);
        execl(o->revstream, "revstream", "replay", "-c", conf, "--state-dir", state, "--no-output",
              (char *)NULL);
        fprintf(stderr, "exec '%s': %s\n", o->revstream, strerror(errno));
        _exit(127);
    }
    (void)close(fds[1]);
    for (;;) {
        if (cap - len < 4096) {
            cap = cap > 0 ? cap * 2 : 65536;
            out = realloc(out, cap);
            if (out == NULL) {
                abort();
            }
        }
        got = read(fds[0], out + len, cap - len - 1);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        len += (size_t)got;
    }
    out[len] = '\0';
    (void)close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r->wall_s = rs_bench_secs_since(t);
    (void)snprintf(mdb, sizeof(mdb), "%s/data.mdb", state);
    r->state_bytes = stat(mdb, &sb) == 0 ? (int64_t)sb.st_size : -1;
    rs_bench_remove_tree(state);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || parse_done(out, r) != 0) {
        fprintf(stderr, "replay failed (status %d); its output:\n%s\n", status, out);
        free(out);
        return 1;
    }
    free(out);
    return 0;
}

/* ---- the report ------------------------------------------------------------------------ */

/* The seconds of one case in each run, wall and the replay's own (0 for the fetch). */
struct series {
    char name[48];
    struct replay_case rc;
    double wall[MAX_RUNS], own[MAX_RUNS];
    int64_t state_bytes;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_replay [--events N] [--partitions P] [--topic NAME] [--runs R]\n"
            "                    [--batch B] [--batch-time T] [--reuse] [--revstream PATH]\n");
}

static int parse_args(int argc, char **argv, struct options *o, char *exe, size_t exe_size)
{
    const char *env = getenv("RS_BENCH_BROKERS");

    *o =
        (struct options){ 5000000, 4, "revstream.bench.replay", 3, 20000, "1s", false, NULL, NULL };
    o->brokers = env != NULL && env[0] != '\0' ? env : "127.0.0.1:9092";
    o->revstream = rs_bench_default_revstream(exe, exe_size);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--reuse") == 0) {
            o->reuse = true;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--events") == 0) {
            o->events = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--partitions") == 0) {
            o->partitions = atoi(v);
        } else if (strcmp(a, "--topic") == 0) {
            o->topic = v;
        } else if (strcmp(a, "--runs") == 0) {
            o->runs = atoi(v);
        } else if (strcmp(a, "--batch") == 0) {
            o->batch = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--batch-time") == 0) {
            o->batch_time = strcmp(v, "0") != 0 ? v : NULL;
        } else if (strcmp(a, "--revstream") == 0) {
            o->revstream = v;
        } else {
            usage();
            return 2;
        }
    }
    if (o->events == 0 || o->partitions < 1 || o->partitions > 1024 || o->runs < 1 ||
        o->runs > MAX_RUNS) {
        usage();
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct rs_bench_topic topic;
    char exe[PATH_MAX];
    char work[] = "/tmp/revstream-bench-replay-XXXXXX";
    struct series cases[3];
    double fetch_wall[MAX_RUNS];
    int64_t *lo, *hi;
    size_t n_cases = 0;
    uint64_t fetch_bytes = 0;
    int rc = parse_args(argc, argv, &o, exe, sizeof(exe));

    if (rc != 0) {
        return rc;
    }
    rs_bench_print_machine(argc, argv);
    printf("# brokers %s, topic %s, %d partitions, %zu events, revstream %s\n", o.brokers, o.topic,
           o.partitions, o.events, o.revstream);
    lo = calloc((size_t)o.partitions, sizeof(*lo));
    hi = calloc((size_t)o.partitions, sizeof(*hi));
    if (lo == NULL || hi == NULL || mkdtemp(work) == NULL) {
        fprintf(stderr, "setup: %s\n", strerror(errno));
        return 1;
    }
    topic = (struct rs_bench_topic){ o.brokers, o.topic, o.partitions, o.events, o.reuse };
    if (rs_bench_prepare_topic(&topic, lo, hi) != 0) {
        return 1;
    }
    memset(cases, 0, sizeof(cases));
    (void)snprintf(cases[n_cases++].name, sizeof(cases[0].name), "replay");
    if (o.batch > 0) {
        cases[n_cases].rc.batch = o.batch;
        (void)snprintf(cases[n_cases++].name, sizeof(cases[0].name), "replay_b%u", o.batch);
    }
    if (o.batch > 0 && o.batch_time != NULL) {
        cases[n_cases].rc = (struct replay_case){ o.batch, o.batch_time };
        (void)snprintf(cases[n_cases++].name, sizeof(cases[0].name), "replay_b%u_t%s", o.batch,
                       o.batch_time);
    }
    printf("# name run events events/s seconds [own_events/s own_seconds state_mb]\n");
    for (int run = 0; run < o.runs; run++) {
        uint64_t n = 0;

        if (rs_bench_fetch(&topic, lo, hi, &n, &fetch_bytes, &fetch_wall[run]) != 0 ||
            n != o.events) {
            fprintf(stderr, "fetch read %" PRIu64 " of %zu events\n", n, o.events);
            return 1;
        }
        printf("fetch %d %" PRIu64 " %.0f %.3f\n", run + 1, n, (double)n / fetch_wall[run],
               fetch_wall[run]);
        for (size_t c = 0; c < n_cases; c++) {
            struct replay_result r;

            if (replay(&o, work, &cases[c].rc, run, &r) != 0) {
                return 1;
            }
            if (r.events != o.events) {
                fprintf(stderr, "%s applied %" PRIu64 " of %zu events\n", cases[c].name, r.events,
                        o.events);
                return 1;
            }
            cases[c].wall[run] = r.wall_s;
            cases[c].own[run] = r.own_s;
            cases[c].state_bytes = r.state_bytes;
            printf("%s %d %" PRIu64 " %.0f %.3f own %.0f %.3f %.0f\n", cases[c].name, run + 1,
                   r.events, (double)r.events / r.wall_s, r.wall_s, r.own_rate, r.own_s,
                   (double)r.state_bytes / 1048576.0);
        }
        (void)fflush(stdout);
    }
    {
        double f = rs_bench_median(fetch_wall, o.runs);

        printf("# medians of %d runs (%.0f payload bytes per event)\n", o.runs,
               (double)fetch_bytes / (double)o.events);
        printf("fetch median %zu %.0f %.3f\n", o.events, (double)o.events / f, f);
        for (size_t c = 0; c < n_cases; c++) {
            double w = rs_bench_median(cases[c].wall, o.runs),
                   s = rs_bench_median(cases[c].own, o.runs);

            printf("%s median %zu %.0f %.3f own %.0f %.3f\n", cases[c].name, o.events,
                   (double)o.events / w, w, (double)o.events / s, s);
            printf("# %s / fetch = %.3f (wall), %.3f (own)\n", cases[c].name, f / w, f / s);
        }
    }
    rs_bench_remove_tree(work);
    free(lo);
    free(hi);
    return 0;
}
