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
 * touched leads (created, two stage changes, closed), in increasing event time from T0.
 *
 * Like kafka_io.c this file includes rdkafka.h: a bench measures librdkafka itself.
 */
#include "bench_machine.h"
#include "event.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* 2026-03-02T00:00:00Z: the first event's time. */
#define T0 INT64_C(1772409600000)

#define ACCOUNTS         1000
#define REPS             50
#define MINUTE_MS        INT64_C(60000)
#define DAY_MS           (24 * 60 * MINUTE_MS)
#define ADMIN_TIMEOUT_MS 30000
#define FLUSH_TIMEOUT_MS 300000
/* A fetch that sees nothing for this long has lost the broker: give up rather than hang. */
#define IDLE_TIMEOUT_MS 60000
#define MAX_RUNS        15

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

static int64_t now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double secs_since(int64_t t)
{
    return (double)(now_ns() - t) / 1e9;
}

/* ---- the event stream ---------------------------------------------------------------- */

enum step { STEP_TOUCH, STEP_OPP_CREATED, STEP_OPP_STAGE_1, STEP_OPP_STAGE_2, STEP_OPP_CLOSED };

/* An event a lead has yet to produce, due at due_ms. */
struct pending {
    int64_t due_ms;
    uint32_t lead;
    enum step step;
};

/* A binary min-heap on due_ms: the next lead event to come. */
struct heap {
    struct pending *v;
    size_t n, cap;
};

static void heap_push(struct heap *h, struct pending p)
{
    size_t i;

    if (h->n == h->cap) {
        h->cap = h->cap > 0 ? h->cap * 2 : 1024;
        h->v = realloc(h->v, h->cap * sizeof(*h->v));
        if (h->v == NULL) {
            abort();
        }
    }
    i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].due_ms > p.due_ms) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = p;
}

static struct pending heap_pop(struct heap *h)
{
    struct pending top = h->v[0];
    struct pending last = h->v[--h->n];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= h->n) {
            break;
        }
        if (c + 1 < h->n && h->v[c + 1].due_ms < h->v[c].due_ms) {
            c++;
        }
        if (h->v[c].due_ms >= last.due_ms) {
            break;
        }
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) {
        h->v[i] = last;
    }
    return top;
}

/* xorshift64*: a fixed seed, so every run writes the same stream. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static double uniform(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) / 9007199254740992.0;
}

struct stream {
    struct heap pending;
    uint64_t rng;
    int64_t clock_ms;
    uint32_t leads;
    size_t emitted;
    char id[32], lead[32], account[32], owner[32], opp[32];
};

static uint32_t account_of(uint32_t lead)
{
    return (uint32_t)((lead * UINT64_C(2654435761)) % ACCOUNTS);
}

static void name_lead(struct stream *s, uint32_t lead)
{
    uint32_t account = account_of(lead);

    (void)snprintf(s->lead, sizeof(s->lead), "L-%" PRIu32, lead);
    (void)snprintf(s->account, sizeof(s->account), "acct-%04" PRIu32, account + 1);
    (void)snprintf(s->owner, sizeof(s->owner), "rep-%02" PRIu32, account % REPS + 1);
    (void)snprintf(s->opp, sizeof(s->opp), "O-%" PRIu32, lead);
}

#define S(lit) ((struct rs_str){ (lit), strlen(lit) })

static const char *const segments[] = { "smb", "mid_market", "enterprise" };
static const char *const channels[] = { "demo_request", "webinar", "content" };
static const char *const stages[] = { "discovery", "proposal", "negotiation" };

/* SLA-01's default thresholds per tier, so that "in time" and "late" mean something. */
static const int64_t threshold_ms[] = { 5 * MINUTE_MS, 60 * MINUTE_MS, DAY_MS };

/* A new lead at the current clock; schedules its touch (or not). */
static void new_lead(struct stream *s, struct rs_event *ev)
{
    uint32_t lead = s->leads++;
    enum rs_intent_tier tier = (enum rs_intent_tier)(lead % 3);
    double u = uniform(&s->rng);

    name_lead(s, lead);
    ev->type = RS_EV_LEAD_CREATED;
    ev->u.lead_created.lead_id = S(s->lead);
    ev->u.lead_created.channel = S(channels[tier]);
    ev->u.lead_created.intent_tier = tier;
    ev->u.lead_created.segment = S(segments[account_of(lead) % 3]);
    ev->u.lead_created.owner_id = S(s->owner);
    if (u < 0.8) {
        /* 55% in time (10..90% of the threshold), 25% late (1.1..3x). */
        double f = u < 0.55 ? 0.1 + uniform(&s->rng) * 0.8 : 1.1 + uniform(&s->rng) * 1.9;

        heap_push(&s->pending,
                  (struct pending){ s->clock_ms + (int64_t)(f * (double)threshold_ms[tier]), lead,
                                    STEP_TOUCH });
    }
}

/* The due event of a lead, at the current clock; schedules the lead's next one. */
static void lead_step(struct stream *s, struct pending p, struct rs_event *ev)
{
    int64_t amount = 1000000 + (int64_t)(p.lead % 97) * 250000;
    struct pending next = { 0, p.lead, STEP_OPP_CREATED };

    name_lead(s, p.lead);
    switch (p.step) {
    case STEP_TOUCH:
        ev->type = RS_EV_LEAD_TOUCHED;
        ev->u.lead_touched.lead_id = S(s->lead);
        ev->u.lead_touched.rep_id = S(s->owner);
        ev->u.lead_touched.actor_type = RS_ACTOR_HUMAN;
        ev->u.lead_touched.channel = p.lead % 5 < 3 ? RS_CH_CALL : RS_CH_EMAIL;
        ev->u.lead_touched.direction = RS_DIR_OUTBOUND;
        ev->u.lead_touched.connected = p.lead % 5 < 2;
        if (uniform(&s->rng) < 0.1) {
            next.due_ms = s->clock_ms + DAY_MS + (int64_t)(uniform(&s->rng) * 2 * DAY_MS);
            heap_push(&s->pending, next);
        }
        return;
    case STEP_OPP_CREATED:
        ev->type = RS_EV_OPP_CREATED;
        ev->u.opp_created.opportunity_id = S(s->opp);
        ev->u.opp_created.account_id = S(s->account);
        ev->u.opp_created.lead_id = S(s->lead);
        ev->u.opp_created.owner_id = S(s->owner);
        ev->u.opp_created.deal_type = RS_DEAL_NEW;
        ev->u.opp_created.amount_minor = amount;
        ev->u.opp_created.currency = S("USD");
        ev->u.opp_created.stage = S(stages[0]);
        ev->u.opp_created.segment = S(segments[account_of(p.lead) % 3]);
        next = (struct pending){ s->clock_ms + 5 * DAY_MS, p.lead, STEP_OPP_STAGE_1 };
        break;
    case STEP_OPP_STAGE_1:
    case STEP_OPP_STAGE_2: {
        int k = p.step == STEP_OPP_STAGE_1 ? 1 : 2;

        ev->type = RS_EV_OPP_STAGE_CHANGED;
        ev->u.opp_stage_changed.opportunity_id = S(s->opp);
        ev->u.opp_stage_changed.from_stage = S(stages[k - 1]);
        ev->u.opp_stage_changed.to_stage = S(stages[k]);
        ev->u.opp_stage_changed.forecast_category = S(k == 2 ? "commit" : "pipeline");
        ev->u.opp_stage_changed.amount_minor = amount;
        ev->u.opp_stage_changed.has_amount = true;
        next = (struct pending){ s->clock_ms + 7 * DAY_MS, p.lead,
                                 k == 1 ? STEP_OPP_STAGE_2 : STEP_OPP_CLOSED };
        break;
    }
    case STEP_OPP_CLOSED:
        ev->type = RS_EV_OPP_CLOSED;
        ev->u.opp_closed.opportunity_id = S(s->opp);
        ev->u.opp_closed.outcome = p.lead % 10 < 3 ? RS_OUTCOME_WON : RS_OUTCOME_LOST;
        ev->u.opp_closed.amount_minor = amount;
        ev->u.opp_closed.currency = S("USD");
        ev->u.opp_closed.loss_reason = p.lead % 10 < 3 ? RS_STR_NULL : S("price");
        ev->u.opp_closed.close_date_ms = s->clock_ms;
        return;
    }
    heap_push(&s->pending, next);
}

/* The next event of the stream into *ev (its strings borrow s until the next call). */
static void stream_next(struct stream *s, struct rs_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    /* About one event a second: 5 million events span some 58 days. */
    s->clock_ms += 500 + (int64_t)(next_rand(&s->rng) % 1000);
    if (s->pending.n > 0 && s->pending.v[0].due_ms <= s->clock_ms) {
        lead_step(s, heap_pop(&s->pending), ev);
    } else {
        new_lead(s, ev);
    }
    (void)snprintf(s->id, sizeof(s->id), "ev-%zu", s->emitted++);
    ev->id = S(s->id);
    ev->ts_ms = s->clock_ms;
    ev->account = S(s->account);
}

/* ---- the topic ------------------------------------------------------------------------ */

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka property '%s': %s\n", name, errstr);
        return 1;
    }
    return 0;
}

/*
 * Partition count of the topic, 0 when it does not exist, -1 when the broker did not answer.
 * With `ready`, a partition without a leader yet does not count. It asks for every topic's
 * metadata: asking for this one alone would have the broker auto-create it.
 */
static int topic_partitions(rd_kafka_t *rk, const char *topic, bool ready)
{
    const rd_kafka_metadata_t *md;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 1, NULL, &md, ADMIN_TIMEOUT_MS);
    int n = 0;

    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "metadata: %s\n", rd_kafka_err2str(kerr));
        return -1;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];

        if (strcmp(t->topic, topic) != 0) {
            continue;
        }
        for (int p = 0; p < t->partition_cnt; p++) {
            n += !ready || (t->partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                            t->partitions[p].leader >= 0);
        }
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Log start and end offset of each partition; returns the number of records between them. */
static int watermarks(rd_kafka_t *rk, const char *topic, int partitions, int64_t *lo, int64_t *hi,
                      uint64_t *count)
{
    *count = 0;
    for (int p = 0; p < partitions; p++) {
        rd_kafka_resp_err_t kerr =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo[p], &hi[p], ADMIN_TIMEOUT_MS);

        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "watermarks of '%s' [%d]: %s\n", topic, p, rd_kafka_err2str(kerr));
            return 1;
        }
        *count += (uint64_t)(hi[p] - lo[p]);
    }
    return 0;
}

/*
 * Run one admin request (create or delete) on the topic. Returns 0, the topic's own error
 * code (a positive rd_kafka_resp_err_t, printed unless quiet) or -1.
 */
static int admin_topic(rd_kafka_t *rk, const char *topic, int partitions, bool create, bool quiet)
{
    const char *what = create ? "create" : "delete";
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;
    const rd_kafka_topic_result_t **res;
    size_t n = 0;
    int rc = 0;

    if (create) {
        char errstr[512];
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));

        if (nt == NULL) {
            fprintf(stderr, "topic '%s': %s\n", topic, errstr);
            rd_kafka_queue_destroy(q);
            return -1;
        }
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        rd_kafka_NewTopic_destroy(nt);
    } else {
        rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);

        rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
        rd_kafka_DeleteTopic_destroy(dt);
    }
    ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
    if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "%s topic '%s': %s\n", what, topic,
                ev != NULL ? rd_kafka_event_error_string(ev) : "timed out");
        rc = -1;
    } else {
        res = create
                  ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
                  : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        rc = n == 1 ? (int)rd_kafka_topic_result_error(res[0]) : -1;
        if (rc != 0 && !quiet) {
            fprintf(stderr, "%s topic '%s': %s\n", what, topic,
                    n == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no result");
        }
    }
    if (ev != NULL) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    return rc;
}

/* Create the topic; one being deleted still "exists" for a moment, so try again then. */
static int create_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    int rc;

    for (int i = 0; i < 50; i++) {
        rc = admin_topic(rk, topic, partitions, true, i < 49);
        if (rc != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            return rc;
        }
        (void)nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
    }
    return rc;
}

/* Wait until the topic's metadata shows `want` partitions (0: gone). */
static int await_partitions(rd_kafka_t *rk, const char *topic, int want)
{
    int64_t t = now_ns();

    while (topic_partitions(rk, topic, want > 0) != want) {
        if (secs_since(t) > ADMIN_TIMEOUT_MS / 1000) {
            fprintf(stderr, "topic '%s': still not at %d partitions after %d s\n", topic, want,
                    ADMIN_TIMEOUT_MS / 1000);
            return 1;
        }
        (void)nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
    }
    return 0;
}

struct delivery {
    uint64_t ok, failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct delivery *d = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->ok++;
    } else if (d->failed++ == 0) {
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

/* A fresh topic holding exactly o->events events. */
static int generate(rd_kafka_t *rk, struct delivery *d, const struct options *o, uint64_t *bytes)
{
    struct stream s;
    struct rs_buf buf;
    rd_kafka_topic_t *rkt;
    int have = topic_partitions(rk, o->topic, false);
    int64_t t;
    double secs;

    if (have < 0) {
        return 1;
    }
    if (have > 0 && (admin_topic(rk, o->topic, 0, false, false) != 0 ||
                     await_partitions(rk, o->topic, 0) != 0)) {
        return 1;
    }
    if (create_topic(rk, o->topic, o->partitions) != 0 ||
        await_partitions(rk, o->topic, o->partitions) != 0) {
        return 1;
    }
    memset(&s, 0, sizeof(s));
    s.rng = UINT64_C(0x9e3779b97f4a7c15);
    s.clock_ms = T0;
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rs_buf_init(&buf);
    *bytes = 0;
    t = now_ns();
    for (size_t i = 0; i < o->events; i++) {
        struct rs_event ev;
        rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;

        stream_next(&s, &ev);
        rs_buf_reset(&buf);
        rs_event_encode(&ev, &buf);
        *bytes += buf.len;
        /* The record timestamp stays the producer's clock: event times weeks in the past
         * would fall outside the broker's retention at once. */
        /* rd_kafka_produce, not producev: the RD_KAFKA_V_* macros are GNU statement
         * expressions. The partitioner hashes the key, so an account stays on its partition. */
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, buf.data, buf.len,
                                s.account, strlen(s.account), NULL) != 0) {
            kerr = rd_kafka_last_error();
            if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
            (void)rd_kafka_poll(rk, 50);
        }
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(kerr));
            rs_buf_release(&buf);
            free(s.pending.v);
            rd_kafka_topic_destroy(rkt);
            return 1;
        }
        if (i % 1024 == 0) {
            (void)rd_kafka_poll(rk, 0);
        }
    }
    rs_buf_release(&buf);
    free(s.pending.v);
    rd_kafka_topic_destroy(rkt);
    if (rd_kafka_flush(rk, FLUSH_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR || d->failed > 0 ||
        d->ok != o->events) {
        fprintf(stderr, "produce: %" PRIu64 " of %zu delivered, %" PRIu64 " failed\n", d->ok,
                o->events, d->failed);
        return 1;
    }
    secs = secs_since(t);
    printf("# generated %zu events (%" PRIu64 " bytes, %.0f per event; %" PRIu32
           " leads) in %.1f s: %.0f events/s\n",
           o->events, *bytes, (double)*bytes / (double)o->events, s.leads, secs,
           (double)o->events / secs);
    return 0;
}

/* The topic as the bench needs it, reused when --reuse and it already holds the events. */
static int prepare_topic(const struct options *o, int64_t *lo, int64_t *hi)
{
    struct delivery d = { 0, 0 };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char errstr[512];
    uint64_t count = 0, bytes = 0;
    int have;
    int rc = 0;

    /* Throughput over latency; idempotence keeps retries from writing an event twice. */
    if (conf_set(conf, "bootstrap.servers", o->brokers) != 0 ||
        conf_set(conf, "enable.idempotence", "true") != 0 ||
        conf_set(conf, "linger.ms", "20") != 0 || conf_set(conf, "batch.size", "1000000") != 0 ||
        conf_set(conf, "batch.num.messages", "100000") != 0 ||
        conf_set(conf, "queue.buffering.max.messages", "1000000") != 0 ||
        conf_set(conf, "queue.buffering.max.kbytes", "1048576") != 0 ||
        conf_set(conf, "compression.type", "lz4") != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &d);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "cannot create producer: %s\n", errstr);
        rd_kafka_conf_destroy(conf); /* still ours */
        return 1;
    }
    have = topic_partitions(rk, o->topic, true);
    if (have < 0) {
        rc = 1;
    } else if (o->reuse && have == o->partitions &&
               watermarks(rk, o->topic, have, lo, hi, &count) == 0 && count == o->events) {
        printf("# reused topic %s: it holds %" PRIu64 " events\n", o->topic, count);
    } else {
        rc = generate(rk, &d, o, &bytes);
        rc = rc != 0 ? rc : watermarks(rk, o->topic, o->partitions, lo, hi, &count);
        if (rc == 0 && count != o->events) {
            fprintf(stderr, "topic '%s' holds %" PRIu64 " events after writing %zu\n", o->topic,
                    count, o->events);
            rc = 1;
        }
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the bare fetch -------------------------------------------------------------------- */

/* Where the fetch leaves a sum of payload bytes, so that its reads cannot be optimised away. */
static volatile unsigned payload_sink;

/*
 * Consume every partition from the beginning to hi[], with the properties kafka_io.c's
 * consumer_conf() sets, and the engine's poll call. Sets *secs (client creation to the last
 * message, as the replay's own clock runs) and *bytes.
 */
static int fetch(const struct options *o, const int64_t *lo, const int64_t *hi, uint64_t *events,
                 uint64_t *bytes, double *secs)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_t *rk;
    char errstr[512];
    int left = 0;
    unsigned sum = 0;
    int64_t t, idle_since;

    if (conf_set(conf, "bootstrap.servers", o->brokers) != 0 ||
        conf_set(conf, "group.id", "revstream-bench-fetch") != 0 ||
        conf_set(conf, "enable.auto.offset.store", "false") != 0 ||
        conf_set(conf, "enable.partition.eof", "true") != 0 ||
        conf_set(conf, "partition.assignment.strategy", "range,roundrobin") != 0 ||
        conf_set(conf, "auto.offset.reset", "earliest") != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    t = now_ns();
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "cannot create consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf); /* still ours */
        return 1;
    }
    (void)rd_kafka_poll_set_consumer(rk);
    list = rd_kafka_topic_partition_list_new(o->partitions);
    for (int p = 0; p < o->partitions; p++) {
        rd_kafka_topic_partition_list_add(list, o->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        left += hi[p] > lo[p];
    }
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "cannot assign '%s'\n", o->topic);
        left = -1;
    }
    rd_kafka_topic_partition_list_destroy(list);
    *events = *bytes = 0;
    idle_since = now_ns();
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (m == NULL) {
            if (secs_since(idle_since) * 1000 > IDLE_TIMEOUT_MS) {
                fprintf(stderr, "fetch: nothing for %d s, %d partitions short\n",
                        IDLE_TIMEOUT_MS / 1000, left);
                left = -1;
            }
            continue;
        }
        idle_since = now_ns();
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset < hi[m->partition]) {
            (*events)++;
            *bytes += m->len;
            sum += m->len > 0 ? ((const unsigned char *)m->payload)[m->len - 1] : 0;
            left -= m->offset + 1 == hi[m->partition];
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                   m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "fetch [%d]: %s\n", m->partition, rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    *secs = secs_since(t);
    (void)rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    payload_sink = sum;
    return left == 0 ? 0 : 1;
}

/* ---- the replay ------------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

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
    t = now_ns();
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
    r->wall_s = secs_since(t);
    (void)snprintf(mdb, sizeof(mdb), "%s/data.mdb", state);
    r->state_bytes = stat(mdb, &sb) == 0 ? (int64_t)sb.st_size : -1;
    (void)nftw(state, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || parse_done(out, r) != 0) {
        fprintf(stderr, "replay failed (status %d); its output:\n%s\n", status, out);
        free(out);
        return 1;
    }
    free(out);
    return 0;
}

/* ---- the report ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_RUNS];

    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

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

/* The revstream binary of this build tree: bench/../revstream beside this executable. */
static const char *default_revstream(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 32);
    char *slash;

    if (n <= 0) {
        return "revstream";
    }
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash == NULL) {
        return "revstream";
    }
    (void)snprintf(slash, 32, "/../revstream");
    return buf;
}

static int parse_args(int argc, char **argv, struct options *o, char *exe, size_t exe_size)
{
    const char *env = getenv("RS_BENCH_BROKERS");

    *o =
        (struct options){ 5000000, 4, "revstream.bench.replay", 3, 20000, "1s", false, NULL, NULL };
    o->brokers = env != NULL && env[0] != '\0' ? env : "127.0.0.1:9092";
    o->revstream = default_revstream(exe, exe_size);
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
    if (prepare_topic(&o, lo, hi) != 0) {
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

        if (fetch(&o, lo, hi, &n, &fetch_bytes, &fetch_wall[run]) != 0 || n != o.events) {
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
        double f = median(fetch_wall, o.runs);

        printf("# medians of %d runs (%.0f payload bytes per event)\n", o.runs,
               (double)fetch_bytes / (double)o.events);
        printf("fetch median %zu %.0f %.3f\n", o.events, (double)o.events / f, f);
        for (size_t c = 0; c < n_cases; c++) {
            double w = median(cases[c].wall, o.runs), s = median(cases[c].own, o.runs);

            printf("%s median %zu %.0f %.3f own %.0f %.3f\n", cases[c].name, o.events,
                   (double)o.events / w, w, (double)o.events / s, s);
            printf("# %s / fetch = %.3f (wall), %.3f (own)\n", cases[c].name, f / w, f / s);
        }
    }
    (void)nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(lo);
    free(hi);
    return 0;
}
