/*
 * bench_e2e.c - the engine end to end through a real broker: `revstream run` consuming a
 * preloaded topic from the beginning, against librdkafka alone fetching the same topic, and
 * against the Kafka Streams peer (bench/peer/run.sh) processing it.
 *
 *   bench_e2e [--events N] [--partitions P] [--topic NAME] [--reuse] [--revstream PATH]
 *             [--peer RUN_SH] [--compare] [--poll-ms MS]
 *
 *   defaults: 5000000 events, 4 partitions, topic revstream.bench.e2e, the revstream binary
 *   of the same build tree, no peer, the engine's state read every 50 ms. The broker is
 *   RS_BENCH_BROKERS, else 127.0.0.1:9092.
 *
 * The topic holds bench_replay's generated stream (bench_kafka.c). Cases, in this order:
 *   fetch    the bare fetch: the limit anything that reads this topic is held to
 *   engine   `revstream run -c CONF` with a fresh consumer group, a fresh state directory and
 *            http.bind off, until its state says it applied every event: the bench opens the
 *            state directory read-only (LMDB readers never block the writer, as for
 *            `revstream inspect`) every --poll-ms and sums the stored next offsets; then
 *            SIGTERM, and wait4() gives the child's CPU time and peak RSS
 *   peer     `RUN_SH BROKERS TOPIC ALERTS STATE N` (built beforehand with `RUN_SH --build`, so
 *            the build is not measured), until it exits by itself; wait4() likewise
 * With --compare, instead: `revstream replay` (event time only, as the peer) publishing its
 * alerts, then the peer, then bench/peer/compare.sh on the two alerts topics; exit 1 when
 * they differ. Meant for a small topic.
 *
 * Prints the command, the machine and one line per case as `name key=value ...`, then the
 * ratios. Exit 1 when a case does not see exactly N events.
 */
/* wait4(): the rusage of one child, which POSIX does not offer. */
#define _DEFAULT_SOURCE

#include "bench_kafka.h"
#include "bench_machine.h"
#include "err.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The engine that applies nothing for this long is stuck: stop it rather than hang. */
#define STALL_TIMEOUT_S 120
/* How long the engine may take to stop after SIGTERM before it is killed. */
#define STOP_TIMEOUT_S 60

struct options {
    struct rs_bench_topic t;
    const char *revstream;
    const char *peer;
    bool compare;
    int poll_ms;
};

/* ---- children -------------------------------------------------------------------------- */

/* What a finished child cost, from wait4(). */
struct usage {
    int status;
    double wall_s;
    double cpu_s;  /* user + system */
    double rss_mb; /* ru_maxrss: the peak resident set */
    /* The largest RssAnon sampled while it ran: its own memory, without the file pages it
     * maps (LMDB's data.mdb counts in the engine's RSS, and the page cache holds it anyway). */
    double anon_mb;
};

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/*
 * Wait for pid (started at t0_ns); with a timeout > 0, SIGKILL it after that many seconds.
 * wait4()'s rusage covers the child and the children it waited for: the JVM a script runs.
 */
static void reap(pid_t pid, int64_t t0_ns, int timeout_s, struct usage *u)
{
    struct rusage ru;
    pid_t got;

    memset(&ru, 0, sizeof(ru));
    for (int i = 0;; i++) {
        got = wait4(pid, &u->status, WNOHANG, &ru);
        if (got == pid || (got < 0 && errno != EINTR)) {
            break;
        }
        if (got == 0 && timeout_s > 0 && rs_bench_secs_since(t0_ns) > timeout_s) {
            fprintf(stderr, "pid %d did not stop within %d s: killing it\n", (int)pid, timeout_s);
            (void)kill(pid, SIGKILL);
            timeout_s = 0;
        } else if (got == 0) {
            double anon = i % 5 == 0 ? rs_bench_proc_anon_mb(pid) : -1;

            u->anon_mb = anon > u->anon_mb ? anon : u->anon_mb;
            rs_bench_sleep_ms(20);
        }
    }
    u->wall_s = rs_bench_secs_since(t0_ns);
    u->cpu_s = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    u->rss_mb = (double)ru.ru_maxrss / 1024.0;
}

/* Print the last lines of a child's log, for a failure. */
static void show_tail(const char *what, const char *path)
{
    char *text = rs_bench_slurp(path);
    size_t len = text != NULL ? strlen(text) : 0;
    const char *from = text != NULL ? text : "";

    if (len > 3000) {
        from = text + len - 3000;
    }
    fprintf(stderr, "--- last of %s (%s) ---\n%s\n---\n", what, path, from);
    free(text);
}

/* ---- topics and configuration ---------------------------------------------------------- */

/* Recreate each named topic with P partitions (NULL ends the list). */
static int fresh_topics(const struct options *o, const char *const *topics)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;
    int rc = 0;

    if (rs_bench_conf_set(conf, "bootstrap.servers", o->t.brokers) != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "cannot create admin client: %s\n", errstr);
        rd_kafka_conf_destroy(conf); /* still ours */
        return 1;
    }
    for (size_t i = 0; topics[i] != NULL && rc == 0; i++) {
        rc = rs_bench_recreate_topic(rk, topics[i], o->t.partitions);
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* The output topics of the engine's configuration: TOPIC.alerts, .metrics, .dlq (+ suffix). */
struct outputs {
    char alerts[256], metrics[256], dlq[256];
};

static void name_outputs(struct outputs *out, const char *topic, const char *suffix)
{
    (void)snprintf(out->alerts, sizeof(out->alerts), "%s.alerts%s", topic, suffix);
    (void)snprintf(out->metrics, sizeof(out->metrics), "%s.metrics%s", topic, suffix);
    (void)snprintf(out->dlq, sizeof(out->dlq), "%s.dlq%s", topic, suffix);
}

/*
 * The engine's configuration: the bench topic, its own output topics, a fresh consumer group
 * (so it starts from the earliest offset), the given state directory, no HTTP endpoint.
 */
static int write_conf(const char *path, const struct options *o, const char *state,
                      const char *group)
{
    struct outputs out;
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    name_outputs(&out, o->t.topic, "");
    fprintf(f,
            "kafka.bootstrap.servers = %s\nkafka.group.id = %s\n"
            "topic.events = %s\ntopic.alerts = %s\ntopic.metrics = %s\ntopic.dlq = %s\n"
            "state.dir = %s\nhttp.bind = off\nlog.level = info\n",
            o->t.brokers, group, o->t.topic, out.alerts, out.metrics, out.dlq, state);
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- the engine ------------------------------------------------------------------------ */

struct applied {
    const char *topic;
    const int64_t *lo;
    int partitions;
    uint64_t sum;
};

static int add_applied(void *opaque, const char *topic, int32_t partition,
                       const struct rs_store_offset *off)
{
    struct applied *a = opaque;

    if (strcmp(topic, a->topic) == 0 && partition >= 0 && partition < a->partitions &&
        off->next_offset > a->lo[partition]) {
        a->sum += (uint64_t)(off->next_offset - a->lo[partition]);
    }
    return 0;
}

/*
 * Events the engine's state says it applied, as `revstream inspect` would read them: 0 while
 * the state directory does not exist yet. The store is opened on first use and kept.
 */
static uint64_t applied_now(struct rs_store **st, const char *state, struct applied *a)
{
    struct rs_err err;

    a->sum = 0;
    if (*st == NULL && rs_store_open_readonly(st, state, &err) != 0) {
        *st = NULL;
        return 0;
    }
    if (rs_store_offset_each(*st, add_applied, a, &err) != 0) {
        /* A snapshot that failed may succeed on a fresh open: the writer was mid-resize. */
        rs_store_close(*st);
        *st = NULL;
        return 0;
    }
    return a->sum;
}

struct engine_result {
    struct usage u;
    double first_s; /* fork to the first applied event seen */
    double done_s;  /* fork to every event applied */
    double cpu_at_done_s;
    double state_mb;
};

static int run_engine(const struct options *o, const char *work, const int64_t *lo,
                      struct engine_result *r)
{
    char conf[PATH_MAX], state[PATH_MAX], log[PATH_MAX], group[96], mdb[PATH_MAX + 16];
    struct outputs out;
    const char *topics[4];
    const char *argv[] = { o->revstream, "run", "-c", conf, NULL };
    struct applied a = { o->t.topic, lo, o->t.partitions, 0 };
    struct rs_store *st = NULL;
    uint64_t last = 0, now_applied;
    int64_t t0, progress_at;
    struct stat sb;
    pid_t pid;
    int rc = 0;

    name_outputs(&out, o->t.topic, "");
    topics[0] = out.alerts;
    topics[1] = out.metrics;
    topics[2] = out.dlq;
    topics[3] = NULL;
    (void)snprintf(conf, sizeof(conf), "%s/engine.conf", work);
    (void)snprintf(state, sizeof(state), "%s/engine-state", work);
    (void)snprintf(log, sizeof(log), "%s/engine.log", work);
    (void)snprintf(group, sizeof(group), "revstream-bench-e2e-%d-%" PRId64, (int)getpid(),
                   rs_bench_wall_ms());
    if (fresh_topics(o, topics) != 0 || write_conf(conf, o, state, group) != 0) {
        return 1;
    }
    memset(r, 0, sizeof(*r));
    t0 = rs_bench_now_ns();
    pid = rs_bench_spawn(argv, log, log);
    if (pid < 0) {
        return 1;
    }
    progress_at = t0;
    for (;;) {
        int status;

        rs_bench_sleep_ms(o->poll_ms);
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "revstream run exited early (status %d)\n", status);
            show_tail("the engine's log", log);
            rs_store_close(st);
            return 1;
        }
        now_applied = applied_now(&st, state, &a);
        {
            double anon = rs_bench_proc_anon_mb(pid);

            r->u.anon_mb = anon > r->u.anon_mb ? anon : r->u.anon_mb;
        }
        if (now_applied > 0 && r->first_s == 0) {
            r->first_s = rs_bench_secs_since(t0);
        }
        if (now_applied != last) {
            last = now_applied;
            progress_at = rs_bench_now_ns();
        }
        if (now_applied >= o->t.events) {
            r->done_s = rs_bench_secs_since(t0);
            r->cpu_at_done_s = rs_bench_proc_cpu_s(pid);
            break;
        }
        if (rs_bench_secs_since(progress_at) > STALL_TIMEOUT_S) {
            fprintf(stderr,
                    "revstream run applied %" PRIu64 " of %zu events, then nothing for %d s\n",
                    now_applied, o->t.events, STALL_TIMEOUT_S);
            show_tail("the engine's log", log);
            rc = 1;
            break;
        }
    }
    rs_store_close(st);
    (void)kill(pid, SIGTERM);
    reap(pid, t0, (int)rs_bench_secs_since(t0) + STOP_TIMEOUT_S, &r->u);
    if (rc == 0 && (!WIFEXITED(r->u.status) || WEXITSTATUS(r->u.status) != 0)) {
        fprintf(stderr, "revstream run did not stop cleanly (status %d)\n", r->u.status);
        show_tail("the engine's log", log);
        rc = 1;
    }
    (void)snprintf(mdb, sizeof(mdb), "%s/data.mdb", state);
    r->state_mb = stat(mdb, &sb) == 0 ? (double)sb.st_blocks * 512 / 1048576.0 : -1;
    rs_bench_remove_tree(state);
    return rc;
}

/* ---- the peer -------------------------------------------------------------------------- */

struct peer_result {
    struct usage u;
    uint64_t records, alerts;
    double own_s;
};

static int build_peer(const struct options *o)
{
    const char *argv[] = { o->peer, "--build", NULL };
    struct usage u = { 0 };
    int64_t t0 = rs_bench_now_ns();
    pid_t pid = rs_bench_spawn(argv, NULL, NULL);

    if (pid < 0) {
        return 1;
    }
    reap(pid, t0, 0, &u);
    if (!WIFEXITED(u.status) || WEXITSTATUS(u.status) != 0) {
        fprintf(stderr, "%s --build failed (status %d)\n", o->peer, u.status);
        return 1;
    }
    return 0;
}

/* Run the peer over the topic into `alerts` (recreated), until it exits by itself. */
static int run_peer(const struct options *o, const char *work, const char *alerts,
                    struct peer_result *r)
{
    char state[PATH_MAX], out_path[PATH_MAX], log[PATH_MAX], n[32];
    const char *topics[] = { alerts, NULL };
    const char *argv[] = { o->peer, o->t.brokers, o->t.topic, alerts, state, n, NULL };
    unsigned long long records = 0, nalerts = 0;
    char *text, *line;
    int64_t t0;
    pid_t pid;

    (void)snprintf(state, sizeof(state), "%s/peer-state", work);
    (void)snprintf(out_path, sizeof(out_path), "%s/peer.out", work);
    (void)snprintf(log, sizeof(log), "%s/peer.log", work);
    (void)snprintf(n, sizeof(n), "%zu", o->t.events);
    if (fresh_topics(o, topics) != 0) {
        return 1;
    }
    memset(r, 0, sizeof(*r));
    t0 = rs_bench_now_ns();
    pid = rs_bench_spawn(argv, out_path, log);
    if (pid < 0) {
        return 1;
    }
    reap(pid, t0, 0, &r->u);
    rs_bench_remove_tree(state);
    text = rs_bench_slurp(out_path);
    line = text != NULL ? strstr(text, "peer: records=") : NULL;
    if (!WIFEXITED(r->u.status) || WEXITSTATUS(r->u.status) != 0 || line == NULL ||
        sscanf(line, "peer: records=%llu seconds=%lf alerts=%llu", &records, &r->own_s, &nalerts) !=
            3) {
        fprintf(stderr, "the peer failed (status %d)\n", r->u.status);
        show_tail("the peer's log", log);
        free(text);
        return 1;
    }
    free(text);
    r->records = records;
    r->alerts = nalerts;
    return 0;
}

/* ---- --compare ------------------------------------------------------------------------- */

/*
 * revstream replay (timers on event time only, like the peer's stream time) publishing into
 * TOPIC.alerts.replay, the peer into TOPIC.peer.alerts, then compare.sh on both.
 */
static int compare(const struct options *o, const char *work)
{
    char conf[PATH_MAX], state[PATH_MAX], service[PATH_MAX], log[PATH_MAX], script[PATH_MAX];
    char peer_alerts[256];
    struct outputs out;
    const char *topics[4];
    const char *replay_argv[] = { o->revstream, "replay", "-c", conf, "--state-dir", state, NULL };
    const char *compare_argv[] = { script, o->t.brokers, peer_alerts, NULL, NULL };
    struct peer_result pr;
    struct usage u = { 0 };
    const char *slash = strrchr(o->peer, '/');
    int64_t t0;
    pid_t pid;

    name_outputs(&out, o->t.topic, ".replay");
    topics[0] = out.alerts;
    topics[1] = out.metrics;
    topics[2] = out.dlq;
    topics[3] = NULL;
    compare_argv[3] = out.alerts;
    (void)snprintf(conf, sizeof(conf), "%s/engine.conf", work);
    (void)snprintf(state, sizeof(state), "%s/replay-state", work);
    /* The replay refuses the configuration's own state.dir: that one stays untouched. */
    (void)snprintf(service, sizeof(service), "%s/service-state", work);
    (void)snprintf(log, sizeof(log), "%s/replay.log", work);
    (void)snprintf(peer_alerts, sizeof(peer_alerts), "%s.peer.alerts", o->t.topic);
    (void)snprintf(script, sizeof(script), "%.*s/compare.sh",
                   slash != NULL ? (int)(slash - o->peer) : 1, slash != NULL ? o->peer : ".");
    if (fresh_topics(o, topics) != 0 ||
        write_conf(conf, o, service, "revstream-bench-compare") != 0) {
        return 1;
    }
    t0 = rs_bench_now_ns();
    pid = rs_bench_spawn(replay_argv, log, log);
    if (pid < 0) {
        return 1;
    }
    reap(pid, t0, 0, &u);
    rs_bench_remove_tree(state);
    if (!WIFEXITED(u.status) || WEXITSTATUS(u.status) != 0) {
        fprintf(stderr, "revstream replay failed (status %d)\n", u.status);
        show_tail("the replay's log", log);
        return 1;
    }
    printf("replay events=%zu seconds=%.3f alerts_topic=%s\n", o->t.events, u.wall_s, out.alerts);
    if (run_peer(o, work, peer_alerts, &pr) != 0) {
        return 1;
    }
    printf("peer events=%" PRIu64 " seconds=%.3f alerts=%" PRIu64 " alerts_topic=%s\n", pr.records,
           pr.u.wall_s, pr.alerts, peer_alerts);
    t0 = rs_bench_now_ns();
    pid = rs_bench_spawn(compare_argv, NULL, NULL);
    if (pid < 0) {
        return 1;
    }
    reap(pid, t0, 0, &u);
    if (!WIFEXITED(u.status) || WEXITSTATUS(u.status) > 1) {
        fprintf(stderr, "%s failed (status %d)\n", script, u.status);
        return 1;
    }
    printf("compare same=%d\n", WEXITSTATUS(u.status) == 0);
    return WEXITSTATUS(u.status);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_e2e [--events N] [--partitions P] [--topic NAME] [--reuse]\n"
            "                 [--revstream PATH] [--peer RUN_SH] [--compare] [--poll-ms MS]\n");
}

static int parse_args(int argc, char **argv, struct options *o, char *exe, size_t exe_size)
{
    const char *env = getenv("RS_BENCH_BROKERS");

    memset(o, 0, sizeof(*o));
    o->t = (struct rs_bench_topic){ env != NULL && env[0] != '\0' ? env : "127.0.0.1:9092",
                                    "revstream.bench.e2e", 4, 5000000, false };
    o->revstream = rs_bench_default_revstream(exe, exe_size);
    o->poll_ms = 50;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--reuse") == 0) {
            o->t.reuse = true;
            continue;
        }
        if (strcmp(a, "--compare") == 0) {
            o->compare = true;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--events") == 0) {
            o->t.events = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--partitions") == 0) {
            o->t.partitions = atoi(v);
        } else if (strcmp(a, "--topic") == 0) {
            o->t.topic = v;
        } else if (strcmp(a, "--revstream") == 0) {
            o->revstream = v;
        } else if (strcmp(a, "--peer") == 0) {
            o->peer = v;
        } else if (strcmp(a, "--poll-ms") == 0) {
            o->poll_ms = atoi(v);
        } else {
            usage();
            return 2;
        }
    }
    if (o->t.events == 0 || o->t.partitions < 1 || o->t.partitions > 1024 || o->poll_ms < 1 ||
        o->poll_ms > 10000 || (o->compare && o->peer == NULL)) {
        usage();
        return 2;
    }
    return 0;
}

static double per_million(double cpu_s, uint64_t events)
{
    return cpu_s * 1e6 / (double)events;
}

int main(int argc, char **argv)
{
    struct options o;
    char exe[PATH_MAX];
    char work[] = "/tmp/revstream-bench-e2e-XXXXXX";
    struct engine_result er;
    struct peer_result pr;
    uint64_t n = 0, bytes = 0;
    double fetch_s = 0, engine_s;
    int64_t *lo, *hi;
    bool have_peer = false;
    int rc = parse_args(argc, argv, &o, exe, sizeof(exe));

    if (rc != 0) {
        return rc;
    }
    rs_bench_print_machine(argc, argv);
    printf("# brokers %s, topic %s, %d partitions, %zu events, revstream %s, peer %s\n",
           o.t.brokers, o.t.topic, o.t.partitions, o.t.events, o.revstream,
           o.peer != NULL ? o.peer : "none");
    lo = calloc((size_t)o.t.partitions, sizeof(*lo));
    hi = calloc((size_t)o.t.partitions, sizeof(*hi));
    if (lo == NULL || hi == NULL || mkdtemp(work) == NULL) {
        fprintf(stderr, "setup: %s\n", strerror(errno));
        return 1;
    }
    if (rs_bench_prepare_topic(&o.t, lo, hi) != 0) {
        return 1;
    }
    if (o.peer != NULL && build_peer(&o) != 0) {
        return 1;
    }
    if (o.compare) {
        rc = compare(&o, work);
        rs_bench_remove_tree(work);
        return rc;
    }
    if (rs_bench_fetch(&o.t, lo, hi, &n, &bytes, &fetch_s) != 0 || n != o.t.events) {
        fprintf(stderr, "fetch read %" PRIu64 " of %zu events\n", n, o.t.events);
        return 1;
    }
    printf("fetch events=%" PRIu64 " seconds=%.3f events_per_s=%.0f bytes_per_event=%.0f\n", n,
           fetch_s, (double)n / fetch_s, (double)bytes / (double)n);
    (void)fflush(stdout);
    if (run_engine(&o, work, lo, &er) != 0) {
        return 1;
    }
    engine_s = er.done_s - er.first_s;
    printf("engine events=%zu seconds=%.3f events_per_s=%.0f first_event_s=%.3f "
           "steady_seconds=%.3f steady_events_per_s=%.0f cpu_s=%.2f cpu_s_per_mevents=%.3f "
           "cpu_s_at_done=%.2f peak_rss_mb=%.1f peak_anon_mb=%.1f state_mb=%.0f\n",
           o.t.events, er.done_s, (double)o.t.events / er.done_s, er.first_s, engine_s,
           (double)o.t.events / engine_s, er.u.cpu_s, per_million(er.u.cpu_s, o.t.events),
           er.cpu_at_done_s, er.u.rss_mb, er.u.anon_mb, er.state_mb);
    (void)fflush(stdout);
    if (o.peer != NULL) {
        char alerts[256];

        (void)snprintf(alerts, sizeof(alerts), "%s.peer.alerts", o.t.topic);
        if (run_peer(&o, work, alerts, &pr) != 0) {
            return 1;
        }
        if (pr.records != o.t.events) {
            fprintf(stderr, "the peer processed %" PRIu64 " of %zu events\n", pr.records,
                    o.t.events);
            return 1;
        }
        have_peer = true;
        printf("peer events=%" PRIu64 " seconds=%.3f events_per_s=%.0f own_seconds=%.3f "
               "own_events_per_s=%.0f cpu_s=%.2f cpu_s_per_mevents=%.3f peak_rss_mb=%.1f "
               "peak_anon_mb=%.1f alerts=%" PRIu64 "\n",
               pr.records, pr.u.wall_s, (double)pr.records / pr.u.wall_s, pr.own_s,
               (double)pr.records / pr.own_s, pr.u.cpu_s, per_million(pr.u.cpu_s, pr.records),
               pr.u.rss_mb, pr.u.anon_mb, pr.alerts);
    }
    printf("# engine / fetch = %.3f (from the first applied event), %.3f (from fork, with the "
           "group join)\n",
           fetch_s / engine_s, fetch_s / er.done_s);
    if (have_peer) {
        printf("# events per CPU second: engine %.0f, peer %.0f: engine / peer = %.2f\n",
               (double)o.t.events / er.u.cpu_s, (double)pr.records / pr.u.cpu_s,
               pr.u.cpu_s / er.u.cpu_s);
        printf("# peak RSS: engine %.1f MB, peer %.1f MB: peer / engine = %.2f\n", er.u.rss_mb,
               pr.u.rss_mb, pr.u.rss_mb / er.u.rss_mb);
        printf("# events/s: engine %.0f, peer %.0f (from fork to done, both)\n",
               (double)o.t.events / er.done_s, (double)pr.records / pr.u.wall_s);
    }
    rs_bench_remove_tree(work);
    free(lo);
    free(hi);
    return 0;
}
