/*
 * bench_latency.c - live latency of `revstream run` on a real broker, at a steady input rate:
 * how long after an SLA-01 deadline its sla.breached alert can be read from the alerts topic,
 * and how long after a lead.created is produced it shows in the HTTP API.
 *
 *   bench_latency [--rate R] [--seconds D] [--partitions P] [--topic NAME] [--threshold-ms T]
 *                 [--tick T] [--probe-every-ms MS] [--grace-s G] [--samples DIR]
 *                 [--revstream PATH]
 *
 *   defaults: 20000 events/s for 60 s, 4 partitions, topic revstream.bench.latency, SLA-01's
 *   high tier at 3000 ms, the engine's default time.tick, a probe every 100 ms, 10 s of
 *   grace after the last deadline. The broker is RS_BENCH_BROKERS, else 127.0.0.1:9092.
 *
 * The engine runs with a fresh topic (P partitions) and output topics, a fresh consumer group
 * and state directory, the HTTP endpoint on a free port and sla.speed_to_lead.high = T; the
 * bench waits for /readyz, then produces for D seconds, with event time = the wall clock:
 *   1 event in 10   lead.created, tier high, never touched: its L1 deadline (created + T +
 *                   1 ms, the first instant it is late) falls during the run
 *   6 in 10         lead.created, tier mql (60 minutes: nothing due during the run)
 *   3 in 10         lead.touched, the first human touch of an mql lead created 100 events
 *                   earlier (its SLA is met, its timer cancelled)
 * keyed by account (1000 accounts).
 *
 * Alert latency: a consumer assigned to every partition of the alerts topic from the start
 * decodes each message (rs_alert_view_decode) and, for each SLA-01 sla.breached, takes the
 * wall clock at receipt minus the deadline (target_at + 1 ms). The bench and the engine read
 * the same clock. Every high lead must breach: the count received is checked against it.
 *
 * Event path: one probe at a time, every --probe-every-ms: a lead.created of tier low (the
 * load has none), timed from the produce call to the first answer of
 * GET /api/metric?name=speed_to_lead&grain=day&bucket=B&dims=tier%3Dlow whose count (the
 * M11 instances of low leads started in bucket B) includes it; the API is polled every 2 ms.
 * One probe in flight and a count that only probes move make the attribution exact.
 *
 * Prints the command, the machine, `name key=value ...` lines for the load, the two latencies
 * (p50, p90, p99, max in ms) and the engine's CPU and peak RSS (wait4 after SIGTERM). With
 * --samples DIR, writes DIR/alert_latency.txt and DIR/event_latency.txt: "seconds latency_ms"
 * per sample, seconds since the load began. Exit 1 when an alert or a probe is missing.
 */
/* wait4(): the rusage of one child, which POSIX does not offer. */
#define _DEFAULT_SOURCE

#include "bench_kafka.h"
#include "bench_machine.h"
#include "err.h"
#include "event.h"
#include "http_get.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNTS 1000
/* A touch names the mql lead this many events back (same account, so same partition). */
#define TOUCH_BACK 106
/* How long the engine may take to join its group and report ready. */
#define READY_TIMEOUT_S 90
/* A probe not visible after this long is lost. */
#define PROBE_TIMEOUT_MS 10000
#define HTTP_POLL_MS     2
#define STOP_TIMEOUT_S   60

struct options {
    const char *brokers;
    const char *topic;
    const char *revstream;
    const char *tick;
    const char *samples;
    int partitions;
    double rate;
    int seconds;
    int threshold_ms;
    int probe_every_ms;
    int grace_s;
};

static int64_t wall_us(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A growable array of (seconds since the load began, latency ms). */
struct samples {
    double *at_s, *ms;
    size_t n, cap;
};

static void samples_add(struct samples *s, double at_s, double ms)
{
    if (s->n == s->cap) {
        s->cap = s->cap > 0 ? s->cap * 2 : 4096;
        s->at_s = realloc(s->at_s, s->cap * sizeof(*s->at_s));
        s->ms = realloc(s->ms, s->cap * sizeof(*s->ms));
        if (s->at_s == NULL || s->ms == NULL) {
            abort();
        }
    }
    s->at_s[s->n] = at_s;
    s->ms[s->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* "p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.." of the samples (nearest rank). */
static void print_quantiles(const struct samples *s)
{
    double *v = malloc((s->n > 0 ? s->n : 1) * sizeof(*v));
    static const double qs[] = { 0.50, 0.90, 0.99 };
    static const char *const names[] = { "p50", "p90", "p99" };

    if (v == NULL) {
        abort();
    }
    memcpy(v, s->ms, s->n * sizeof(*v));
    qsort(v, s->n, sizeof(*v), cmp_double);
    for (size_t k = 0; k < 3; k++) {
        size_t rank = (size_t)(qs[k] * (double)s->n + 0.999999);

        printf(" %s_ms=%.1f", names[k], s->n > 0 ? v[rank > 0 ? rank - 1 : 0] : 0.0);
    }
    printf(" min_ms=%.1f max_ms=%.1f", s->n > 0 ? v[0] : 0.0, s->n > 0 ? v[s->n - 1] : 0.0);
    free(v);
}

static int write_samples(const char *dir, const char *name, const struct samples *s)
{
    char path[PATH_MAX];
    FILE *f;

    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < s->n; i++) {
        fprintf(f, "%.3f %.3f\n", s->at_s[i], s->ms[i]);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- the alerts consumer (a thread) ----------------------------------------------------- */

struct alert_reader {
    const struct options *o;
    char topic[256];
    int64_t load_start_us;
    atomic_bool stop;
    atomic_bool assigned;
    struct samples breaches;
    uint64_t messages, undecodable, warnings, escalations, other;
    int rc;
};

static void *alert_thread(void *arg)
{
    struct alert_reader *ar = arg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *list;
    struct rs_event_decoder dec;
    char errstr[512];
    rd_kafka_t *rk;

    if (rs_bench_conf_set(conf, "bootstrap.servers", ar->o->brokers) != 0 ||
        rs_bench_conf_set(conf, "group.id", "revstream-bench-latency-alerts") != 0 ||
        rs_bench_conf_set(conf, "enable.auto.commit", "false") != 0 ||
        rs_bench_conf_set(conf, "auto.offset.reset", "earliest") != 0) {
        rd_kafka_conf_destroy(conf);
        ar->rc = 1;
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "cannot create the alerts consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf); /* still ours */
        ar->rc = 1;
        return NULL;
    }
    (void)rd_kafka_poll_set_consumer(rk);
    list = rd_kafka_topic_partition_list_new(ar->o->partitions);
    for (int p = 0; p < ar->o->partitions; p++) {
        rd_kafka_topic_partition_list_add(list, ar->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "cannot assign '%s'\n", ar->topic);
        ar->rc = 1;
    }
    rd_kafka_topic_partition_list_destroy(list);
    atomic_store(&ar->assigned, true);
    rs_event_decoder_init(&dec, 1 << 20);
    while (ar->rc == 0 && !atomic_load(&ar->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        int64_t seen_us = wall_us();
        struct rs_alert_view v;

        if (m == NULL) {
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "alerts [%d]: %s\n", m->partition, rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        ar->messages++;
        if (rs_alert_view_decode(&dec, m->payload, m->len, &v, NULL) != 0) {
            ar->undecodable++;
        } else if (v.kind == RS_ALERT_BREACHED && v.sla_type.len >= 6 &&
                   memcmp(v.sla_type.ptr, "SLA-01", 6) == 0) {
            /* The deadline is target_at + 1 ms: a touch at target_at still meets the SLA. */
            int64_t deadline_us = (v.target_at_ms + 1) * 1000;

            samples_add(&ar->breaches, (double)(deadline_us - ar->load_start_us) / 1e6,
                        (double)(seen_us - deadline_us) / 1000.0);
        } else if (v.kind == RS_ALERT_WARNING) {
            ar->warnings++;
        } else if (v.kind == RS_ALERT_ESCALATED) {
            ar->escalations++;
        } else {
            ar->other++;
        }
        rd_kafka_message_destroy(m);
    }
    rs_event_decoder_release(&dec);
    (void)rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

/* ---- the producer side ------------------------------------------------------------------ */

struct producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    const char *topic;
    atomic_ullong failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct producer *pr = opaque;

    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && atomic_fetch_add(&pr->failed, 1) == 0) {
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

static int producer_open(struct producer *pr, const struct options *o, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    pr->topic = topic;
    atomic_init(&pr->failed, 0);
    /* librdkafka's defaults otherwise (linger.ms 5): a live source, not a bulk load. */
    if (rs_bench_conf_set(conf, "bootstrap.servers", o->brokers) != 0 ||
        rs_bench_conf_set(conf, "enable.idempotence", "true") != 0 ||
        rs_bench_conf_set(conf, "compression.type", "lz4") != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, pr);
    pr->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (pr->rk == NULL) {
        fprintf(stderr, "cannot create producer: %s\n", errstr);
        rd_kafka_conf_destroy(conf); /* still ours */
        return 1;
    }
    pr->rkt = rd_kafka_topic_new(pr->rk, topic, NULL);
    return 0;
}

#define S(lit) ((struct rs_str){ (lit), strlen(lit) })

static const char *const segments[] = { "smb", "mid_market", "enterprise" };

static uint32_t account_of(uint64_t lead)
{
    return (uint32_t)((lead * UINT64_C(2654435761)) % ACCOUNTS);
}

/*
 * Produce one event (thread-safe: librdkafka's producer is). kind: 'h' high lead, 'm' mql
 * lead, 'l' low lead (a probe), 't' touch of lead `lead`.
 */
static int produce(struct producer *pr, char kind, uint64_t lead, const char *id_prefix,
                   uint64_t seq, int64_t ts_ms)
{
    char id[48], lead_id[32], account[16], owner[16];
    uint32_t acct = account_of(lead);
    struct rs_event ev;
    struct rs_buf buf;
    rd_kafka_resp_err_t kerr;

    (void)snprintf(id, sizeof(id), "%s-%" PRIu64, id_prefix, seq);
    (void)snprintf(lead_id, sizeof(lead_id), "%s-%" PRIu64, kind == 'l' ? "P" : "B", lead);
    (void)snprintf(account, sizeof(account), "acct-%04" PRIu32, acct + 1);
    (void)snprintf(owner, sizeof(owner), "rep-%02" PRIu32, acct % 50 + 1);
    memset(&ev, 0, sizeof(ev));
    ev.id = S(id);
    ev.ts_ms = ts_ms;
    ev.account = S(account);
    if (kind == 't') {
        ev.type = RS_EV_LEAD_TOUCHED;
        ev.u.lead_touched.lead_id = S(lead_id);
        ev.u.lead_touched.rep_id = S(owner);
        ev.u.lead_touched.actor_type = RS_ACTOR_HUMAN;
        ev.u.lead_touched.channel = RS_CH_CALL;
        ev.u.lead_touched.direction = RS_DIR_OUTBOUND;
        ev.u.lead_touched.connected = true;
    } else {
        ev.type = RS_EV_LEAD_CREATED;
        ev.u.lead_created.lead_id = S(lead_id);
        ev.u.lead_created.channel = S("demo_request");
        ev.u.lead_created.intent_tier =
            kind == 'h' ? RS_TIER_HIGH : (kind == 'm' ? RS_TIER_MQL : RS_TIER_LOW);
        ev.u.lead_created.segment = S(segments[acct % 3]);
        ev.u.lead_created.owner_id = S(owner);
    }
    rs_buf_init(&buf);
    rs_event_encode(&ev, &buf);
    /* rd_kafka_produce, not producev: the RD_KAFKA_V_* macros are GNU statement expressions
     * (-Wpedantic). The key's hash keeps an account on its partition. */
    kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    while (rd_kafka_produce(pr->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf.data, buf.len,
                            account, strlen(account), NULL) != 0) {
        kerr = rd_kafka_last_error();
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        (void)rd_kafka_poll(pr->rk, 10);
    }
    rs_buf_release(&buf);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(kerr));
        return 1;
    }
    return 0;
}

/* ---- probes of the event path (a thread) ----------------------------------------------- */

struct prober {
    const struct options *o;
    struct producer *pr;
    uint16_t port;
    char bucket[16]; /* the day (UTC, the engine's default time.zone) the probes start in */
    int64_t ts_ms;   /* every probe's event time: so all fall in that bucket */
    int64_t load_start_us;
    atomic_bool stop;
    struct samples visible;
    uint64_t sent, lost;
    int rc;
};

/* The low-tier M11 instance count of the bucket, or -1 when the API did not answer. */
static int64_t low_leads(const struct prober *pb)
{
    char path[256], *body = NULL, *p;
    long long n = -1;
    int status;

    (void)snprintf(path, sizeof(path),
                   "/api/metric?name=speed_to_lead&grain=day&bucket=%s&dims=tier%%3Dlow",
                   pb->bucket);
    status = rs_test_http_get(pb->port, path, &body, 1000);
    p = status == 200 && body != NULL ? strstr(body, "\"count\":") : NULL;
    if (p == NULL || sscanf(p, "\"count\":%lld", &n) != 1) {
        n = -1;
    }
    free(body);
    return n;
}

static void *probe_thread(void *arg)
{
    struct prober *pb = arg;

    while (!atomic_load(&pb->stop)) {
        int64_t t0, now;
        int64_t want = (int64_t)pb->sent + 1, have = -1;

        sleep_us((int64_t)pb->o->probe_every_ms * 1000);
        if (atomic_load(&pb->stop)) {
            break;
        }
        t0 = wall_us();
        if (produce(pb->pr, 'l', pb->sent, "probe", pb->sent, pb->ts_ms) != 0) {
            pb->rc = 1;
            break;
        }
        pb->sent++;
        do {
            sleep_us(HTTP_POLL_MS * 1000);
            have = low_leads(pb);
            now = wall_us();
        } while (have < want && now - t0 < PROBE_TIMEOUT_MS * 1000);
        if (have < want) {
            pb->lost++;
            /* Later probes would count this one: wait for it so attribution stays exact. */
            while (!atomic_load(&pb->stop) && low_leads(pb) < want) {
                sleep_us(10000);
            }
            continue;
        }
        samples_add(&pb->visible, (double)(t0 - pb->load_start_us) / 1e6,
                    (double)(now - t0) / 1000.0);
    }
    return NULL;
}

/* ---- the engine ------------------------------------------------------------------------ */

static int write_conf(const char *path, const struct options *o, const char *state, uint16_t port,
                      const char *group)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f,
            "kafka.bootstrap.servers = %s\nkafka.group.id = %s\n"
            "topic.events = %s\ntopic.alerts = %s.alerts\ntopic.metrics = %s.metrics\n"
            "topic.dlq = %s.dlq\nstate.dir = %s\nhttp.bind = 127.0.0.1:%u\nlog.level = info\n"
            "sla.speed_to_lead.high = %dms\n",
            o->brokers, group, o->topic, o->topic, o->topic, o->topic, state, (unsigned)port,
            o->threshold_ms);
    if (o->tick != NULL) {
        fprintf(f, "time.tick = %s\n", o->tick);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* Wait until GET /readyz answers 200 (assigned and caught up), or the engine exits. */
static int await_ready(pid_t pid, uint16_t port)
{
    int64_t t0 = rs_bench_now_ns();
    int status;

    while (rs_bench_secs_since(t0) < READY_TIMEOUT_S) {
        char *body = NULL;
        int code = rs_test_http_get(port, "/readyz", &body, 1000);

        free(body);
        if (code == 200) {
            return 0;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "revstream run exited before it was ready (status %d)\n", status);
            return 1;
        }
        sleep_us(100000);
    }
    fprintf(stderr, "revstream run not ready after %d s\n", READY_TIMEOUT_S);
    return 1;
}

/* SIGTERM, then wait4 (SIGKILL after STOP_TIMEOUT_S); CPU seconds and peak RSS in MB. */
static int stop_engine(pid_t pid, double *cpu_s, double *rss_mb)
{
    int64_t t0 = rs_bench_now_ns();
    struct rusage ru;
    bool killed = false;
    int status = 0;
    pid_t got;

    memset(&ru, 0, sizeof(ru));
    (void)kill(pid, SIGTERM);
    while ((got = wait4(pid, &status, WNOHANG, &ru)) == 0 || (got < 0 && errno == EINTR)) {
        if (!killed && rs_bench_secs_since(t0) > STOP_TIMEOUT_S) {
            (void)kill(pid, SIGKILL);
            killed = true;
        }
        sleep_us(20000);
    }
    *cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    *rss_mb = (double)ru.ru_maxrss / 1024.0;
    return got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/*
 * The engine's own view of timer firing: the mean of revstream_timer_fire_lag_ms (deadline to
 * the alert written to the outbox, by its clock) from /metrics. Sets *count to -1 if absent.
 */
static void engine_fire_lag(uint16_t port, double *mean_ms, double *count)
{
    char *body = NULL, *p;
    double sum = 0;

    *mean_ms = 0;
    *count = -1;
    if (rs_test_http_get(port, "/metrics", &body, 2000) == 200 && body != NULL &&
        (p = strstr(body, "\nrevstream_timer_fire_lag_ms_sum ")) != NULL &&
        sscanf(p, "\nrevstream_timer_fire_lag_ms_sum %lf", &sum) == 1 &&
        (p = strstr(body, "\nrevstream_timer_fire_lag_ms_count ")) != NULL &&
        sscanf(p, "\nrevstream_timer_fire_lag_ms_count %lf", count) == 1 && *count > 0) {
        *mean_ms = sum / *count;
    }
    free(body);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_latency [--rate R] [--seconds D] [--partitions P] [--topic NAME]\n"
            "                     [--threshold-ms T] [--tick T] [--probe-every-ms MS]\n"
            "                     [--grace-s G] [--samples DIR] [--revstream PATH]\n");
}

static int parse_args(int argc, char **argv, struct options *o, char *exe, size_t exe_size)
{
    const char *env = getenv("RS_BENCH_BROKERS");

    memset(o, 0, sizeof(*o));
    o->brokers = env != NULL && env[0] != '\0' ? env : "127.0.0.1:9092";
    o->topic = "revstream.bench.latency";
    o->revstream = rs_bench_default_revstream(exe, exe_size);
    o->partitions = 4;
    o->rate = 20000;
    o->seconds = 60;
    o->threshold_ms = 3000;
    o->probe_every_ms = 100;
    o->grace_s = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];

        if (strcmp(a, "--rate") == 0) {
            o->rate = strtod(v, NULL);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = atoi(v);
        } else if (strcmp(a, "--partitions") == 0) {
            o->partitions = atoi(v);
        } else if (strcmp(a, "--topic") == 0) {
            o->topic = v;
        } else if (strcmp(a, "--threshold-ms") == 0) {
            o->threshold_ms = atoi(v);
        } else if (strcmp(a, "--tick") == 0) {
            o->tick = v;
        } else if (strcmp(a, "--probe-every-ms") == 0) {
            o->probe_every_ms = atoi(v);
        } else if (strcmp(a, "--grace-s") == 0) {
            o->grace_s = atoi(v);
        } else if (strcmp(a, "--samples") == 0) {
            o->samples = v;
        } else if (strcmp(a, "--revstream") == 0) {
            o->revstream = v;
        } else {
            usage();
            return 2;
        }
    }
    if (argc % 2 == 0 || o->rate < 10 || o->rate > 1e7 || o->seconds < 1 || o->partitions < 1 ||
        o->partitions > 1024 || o->threshold_ms < 1 || o->probe_every_ms < 1 || o->grace_s < 0) {
        usage();
        return 2;
    }
    return 0;
}

static void utc_day(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    (void)gmtime_r(&t, &tm);
    (void)strftime(out, size, "%Y-%m-%d", &tm);
}

/* The load: D seconds at R events/s, paced on the monotonic clock. Counts the high leads. */
static int run_load(const struct options *o, struct producer *pr, uint64_t *sent, uint64_t *high,
                    double *secs)
{
    int64_t t0 = rs_bench_now_ns();
    uint64_t total = (uint64_t)(o->rate * o->seconds);
    uint64_t i = 0;

    *high = 0;
    while (i < total) {
        double elapsed = rs_bench_secs_since(t0);
        uint64_t due = (uint64_t)(elapsed * o->rate);

        due = due < total ? due : total;
        for (; i < due; i++) {
            uint64_t slot = i % 10;
            int64_t now_ms = rs_bench_wall_ms();
            int rc;

            if (slot == 0) {
                rc = produce(pr, 'h', i, "ev", i, now_ms);
                (*high)++;
            } else if (slot >= 7 && i >= TOUCH_BACK) {
                rc = produce(pr, 't', i - TOUCH_BACK, "ev", i, now_ms);
            } else {
                rc = produce(pr, 'm', i, "ev", i, now_ms);
            }
            if (rc != 0) {
                return 1;
            }
        }
        (void)rd_kafka_poll(pr->rk, 0);
        sleep_us(1000);
    }
    *sent = i;
    *secs = rs_bench_secs_since(t0);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    char exe[PATH_MAX], conf[PATH_MAX], state[PATH_MAX], log[PATH_MAX], group[96];
    char work[] = "/tmp/revstream-bench-latency-XXXXXX";
    char names[3][256];
    const char *engine_argv[5] = { NULL, "run", "-c", NULL, NULL };
    double cpu_before, cpu_after, fire_mean_ms, fire_count;
    struct alert_reader ar;
    struct prober pb;
    struct producer pr;
    pthread_t alert_tid, probe_tid;
    uint64_t sent = 0, high = 0;
    double load_s = 0, cpu_s = 0, rss_mb = 0;
    uint16_t port;
    pid_t pid;
    int rc = parse_args(argc, argv, &o, exe, sizeof(exe));

    if (rc != 0) {
        return rc;
    }
    rs_bench_print_machine(argc, argv);
    printf("# brokers %s, topic %s, %d partitions, %.0f events/s for %d s, SLA-01 high %d ms, "
           "time.tick %s, a probe every %d ms, revstream %s\n",
           o.brokers, o.topic, o.partitions, o.rate, o.seconds, o.threshold_ms,
           o.tick != NULL ? o.tick : "default", o.probe_every_ms, o.revstream);
    if (mkdtemp(work) == NULL) {
        fprintf(stderr, "setup: %s\n", strerror(errno));
        return 1;
    }
    if (producer_open(&pr, &o, o.topic) != 0) {
        return 1;
    }
    (void)snprintf(names[0], sizeof(names[0]), "%s.alerts", o.topic);
    (void)snprintf(names[1], sizeof(names[1]), "%s.metrics", o.topic);
    (void)snprintf(names[2], sizeof(names[2]), "%s.dlq", o.topic);
    if (rs_bench_recreate_topic(pr.rk, o.topic, o.partitions) != 0) {
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        if (rs_bench_recreate_topic(pr.rk, names[i], o.partitions) != 0) {
            return 1;
        }
    }
    port = rs_test_free_port();
    (void)snprintf(conf, sizeof(conf), "%s/engine.conf", work);
    (void)snprintf(state, sizeof(state), "%s/state", work);
    (void)snprintf(log, sizeof(log), "%s/engine.log", work);
    (void)snprintf(group, sizeof(group), "revstream-bench-latency-%d-%" PRId64, (int)getpid(),
                   rs_bench_wall_ms());
    if (write_conf(conf, &o, state, port, group) != 0) {
        return 1;
    }
    engine_argv[0] = o.revstream;
    engine_argv[3] = conf;
    pid = rs_bench_spawn(engine_argv, log, log);
    if (pid < 0) {
        return 1;
    }
    if (await_ready(pid, port) != 0) {
        (void)stop_engine(pid, &cpu_s, &rss_mb);
        return 1;
    }

    memset(&ar, 0, sizeof(ar));
    ar.o = &o;
    (void)snprintf(ar.topic, sizeof(ar.topic), "%s", names[0]);
    atomic_init(&ar.stop, false);
    atomic_init(&ar.assigned, false);
    memset(&pb, 0, sizeof(pb));
    pb.o = &o;
    pb.pr = &pr;
    pb.port = port;
    atomic_init(&pb.stop, false);
    ar.load_start_us = pb.load_start_us = wall_us();
    pb.ts_ms = ar.load_start_us / 1000;
    utc_day(pb.ts_ms, pb.bucket, sizeof(pb.bucket));
    if (pthread_create(&alert_tid, NULL, alert_thread, &ar) != 0) {
        return 1;
    }
    while (!atomic_load(&ar.assigned)) {
        sleep_us(1000);
    }
    if (pthread_create(&probe_tid, NULL, probe_thread, &pb) != 0) {
        return 1;
    }
    cpu_before = rs_bench_proc_cpu_s(pid);
    rc = run_load(&o, &pr, &sent, &high, &load_s);
    cpu_after = rs_bench_proc_cpu_s(pid);
    atomic_store(&pb.stop, true);
    (void)pthread_join(probe_tid, NULL);
    /* The last high lead's deadline is threshold after the load ends; then the grace. */
    {
        int64_t until = rs_bench_now_ns() + ((int64_t)o.threshold_ms + o.grace_s * 1000) * 1000000;

        while (rc == 0 && rs_bench_now_ns() < until && ar.breaches.n < high) {
            (void)rd_kafka_poll(pr.rk, 100);
        }
        /* A little longer, so that duplicates (at-least-once) would show. */
        (void)rd_kafka_poll(pr.rk, 500);
    }
    atomic_store(&ar.stop, true);
    (void)pthread_join(alert_tid, NULL);
    engine_fire_lag(port, &fire_mean_ms, &fire_count);
    (void)rd_kafka_flush(pr.rk, 10000);
    rd_kafka_topic_destroy(pr.rkt);
    rd_kafka_destroy(pr.rk);
    if (stop_engine(pid, &cpu_s, &rss_mb) != 0) {
        fprintf(stderr, "revstream run did not stop cleanly; its log: %s\n", log);
        rc = 1;
    }

    printf("load events=%" PRIu64 " seconds=%.3f events_per_s=%.0f high_leads=%" PRIu64
           " delivery_failures=%llu\n",
           sent, load_s, (double)sent / load_s, high, (unsigned long long)atomic_load(&pr.failed));
    printf("alert_latency breaches=%zu expected=%" PRIu64, ar.breaches.n, high);
    print_quantiles(&ar.breaches);
    printf(" warnings=%" PRIu64 " escalations=%" PRIu64 " undecodable=%" PRIu64 "\n", ar.warnings,
           ar.escalations, ar.undecodable);
    printf("event_latency probes=%zu lost=%" PRIu64, pb.visible.n, pb.lost);
    print_quantiles(&pb.visible);
    printf("\n");
    /* CPU while the load ran (from /proc), so start-up and the grace period are left out. */
    printf("engine load_cpu_s=%.2f cpu_share=%.3f cpu_s_per_mevents=%.3f cpu_s=%.2f "
           "peak_rss_mb=%.1f\n",
           cpu_after - cpu_before, (cpu_after - cpu_before) / load_s,
           (cpu_after - cpu_before) * 1e6 / (double)(sent > 0 ? sent : 1), cpu_s, rss_mb);
    printf("engine_view fire_lag_mean_ms=%.1f fire_lag_count=%.0f\n", fire_mean_ms, fire_count);
    if (o.samples != NULL && (write_samples(o.samples, "alert_latency.txt", &ar.breaches) != 0 ||
                              write_samples(o.samples, "event_latency.txt", &pb.visible) != 0)) {
        rc = 1;
    }
    if (ar.rc != 0 || pb.rc != 0 || ar.breaches.n < high || pb.lost > 0 ||
        atomic_load(&pr.failed) > 0) {
        fprintf(stderr,
                "incomplete: %zu of %" PRIu64 " breaches, %" PRIu64
                " probes lost; the engine's log: %s\n",
                ar.breaches.n, high, pb.lost, log);
        rc = 1;
    }
    if (rc == 0) {
        rs_bench_remove_tree(work);
    }
    free(ar.breaches.at_s);
    free(ar.breaches.ms);
    free(pb.visible.at_s);
    free(pb.visible.ms);
    return rc;
}
