/*
 * bench_kafka.c - the broker side the benches share (bench_kafka.h): the generated event
 * stream, the topic it goes into, and the bare fetch.
 */
#include "bench_kafka.h"
#include "event.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 2026-03-02T00:00:00Z: the first event's time. */
#define T0 INT64_C(1772409600000)

#define ACCOUNTS         1000
#define REPS             50
#define MINUTE_MS        INT64_C(60000)
#define DAY_MS           (24 * 60 * MINUTE_MS)
#define ADMIN_TIMEOUT_MS RS_BENCH_ADMIN_TIMEOUT_MS
#define FLUSH_TIMEOUT_MS 300000
/* A fetch that sees nothing for this long has lost the broker: give up rather than hang. */
#define IDLE_TIMEOUT_MS 60000

int64_t rs_bench_now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double rs_bench_secs_since(int64_t t_ns)
{
    return (double)(rs_bench_now_ns() - t_ns) / 1e9;
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

int rs_bench_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
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
int rs_bench_watermarks(rd_kafka_t *rk, const char *topic, int partitions, int64_t *lo, int64_t *hi,
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

static int await_partitions(rd_kafka_t *rk, const char *topic, int want);

/*
 * Create the topic; one being deleted still "exists" for a moment, so try again then. A topic
 * that the metadata did not show but the controller still has (seen once on a broker busy
 * with a 5M-event topic) is deleted again every 2 s of trying.
 */
static int create_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    int rc;

    for (int i = 0; i < 50; i++) {
        rc = admin_topic(rk, topic, partitions, true, i < 49);
        if (rc != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            return rc;
        }
        if (i % 10 == 9) {
            (void)admin_topic(rk, topic, 0, false, true);
            (void)await_partitions(rk, topic, 0);
        }
        (void)nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
    }
    return rc;
}

/* Wait until the topic's metadata shows `want` partitions (0: gone). */
static int await_partitions(rd_kafka_t *rk, const char *topic, int want)
{
    int64_t t = rs_bench_now_ns();

    while (topic_partitions(rk, topic, want > 0) != want) {
        if (rs_bench_secs_since(t) > ADMIN_TIMEOUT_MS / 1000) {
            fprintf(stderr, "topic '%s': still not at %d partitions after %d s\n", topic, want,
                    ADMIN_TIMEOUT_MS / 1000);
            return 1;
        }
        (void)nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
    }
    return 0;
}

/* Delete the topic when it has partitions (`have`), then create it with `partitions`. */
static int recreate(rd_kafka_t *rk, const char *topic, int have, int partitions)
{
    if (have > 0 &&
        (admin_topic(rk, topic, 0, false, false) != 0 || await_partitions(rk, topic, 0) != 0)) {
        return 1;
    }
    if (create_topic(rk, topic, partitions) != 0 || await_partitions(rk, topic, partitions) != 0) {
        return 1;
    }
    return 0;
}

int rs_bench_recreate_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    int have = topic_partitions(rk, topic, false);

    return have < 0 ? 1 : recreate(rk, topic, have, partitions);
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
static int generate(rd_kafka_t *rk, struct delivery *d, const struct rs_bench_topic *o,
                    uint64_t *bytes)
{
    struct stream s;
    struct rs_buf buf;
    rd_kafka_topic_t *rkt;
    int have = topic_partitions(rk, o->topic, false);
    int64_t t;
    double secs;

    if (have < 0 || recreate(rk, o->topic, have, o->partitions) != 0) {
        return 1;
    }
    memset(&s, 0, sizeof(s));
    s.rng = UINT64_C(0x9e3779b97f4a7c15);
    s.clock_ms = T0;
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rs_buf_init(&buf);
    *bytes = 0;
    t = rs_bench_now_ns();
    for (size_t i = 0; i < o->events; i++) {
        struct rs_event ev;
        rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;

        stream_next(&s, &ev);
        rs_buf_reset(&buf);
        rs_event_encode(&ev, &buf);
        *bytes += buf.len;
        /* The record timestamp stays the producer's clock: event times weeks in the past
         * would fall outside the broker's retention at once. rd_kafka_produce, not producev:
         * the RD_KAFKA_V_* macros are GNU statement expressions (-Wpedantic). The partitioner
         * hashes the key, so an account stays on its partition. */
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
    secs = rs_bench_secs_since(t);
    printf("# generated %zu events (%" PRIu64 " bytes, %.0f per event; %" PRIu32
           " leads) in %.1f s: %.0f events/s\n",
           o->events, *bytes, (double)*bytes / (double)o->events, s.leads, secs,
           (double)o->events / secs);
    return 0;
}

/* The topic as the bench needs it, reused when --reuse and it already holds the events. */
int rs_bench_prepare_topic(const struct rs_bench_topic *o, int64_t *lo, int64_t *hi)
{
    struct delivery d = { 0, 0 };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char errstr[512];
    uint64_t count = 0, bytes = 0;
    int have;
    int rc = 0;

    /* Throughput over latency; idempotence keeps retries from writing an event twice. */
    if (rs_bench_conf_set(conf, "bootstrap.servers", o->brokers) != 0 ||
        rs_bench_conf_set(conf, "enable.idempotence", "true") != 0 ||
        rs_bench_conf_set(conf, "linger.ms", "20") != 0 ||
        rs_bench_conf_set(conf, "batch.size", "1000000") != 0 ||
        rs_bench_conf_set(conf, "batch.num.messages", "100000") != 0 ||
        rs_bench_conf_set(conf, "queue.buffering.max.messages", "1000000") != 0 ||
        rs_bench_conf_set(conf, "queue.buffering.max.kbytes", "1048576") != 0 ||
        rs_bench_conf_set(conf, "compression.type", "lz4") != 0) {
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
               rs_bench_watermarks(rk, o->topic, have, lo, hi, &count) == 0 && count == o->events) {
        printf("# reused topic %s: it holds %" PRIu64 " events\n", o->topic, count);
    } else {
        rc = generate(rk, &d, o, &bytes);
        rc = rc != 0 ? rc : rs_bench_watermarks(rk, o->topic, o->partitions, lo, hi, &count);
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
int rs_bench_fetch(const struct rs_bench_topic *o, const int64_t *lo, const int64_t *hi,
                   uint64_t *events, uint64_t *bytes, double *secs)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_t *rk;
    char errstr[512];
    int left = 0;
    unsigned sum = 0;
    int64_t t, idle_since;

    if (rs_bench_conf_set(conf, "bootstrap.servers", o->brokers) != 0 ||
        rs_bench_conf_set(conf, "group.id", "revstream-bench-fetch") != 0 ||
        rs_bench_conf_set(conf, "enable.auto.offset.store", "false") != 0 ||
        rs_bench_conf_set(conf, "enable.partition.eof", "true") != 0 ||
        rs_bench_conf_set(conf, "partition.assignment.strategy", "range,roundrobin") != 0 ||
        rs_bench_conf_set(conf, "auto.offset.reset", "earliest") != 0) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    t = rs_bench_now_ns();
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
    idle_since = rs_bench_now_ns();
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (m == NULL) {
            if (rs_bench_secs_since(idle_since) * 1000 > IDLE_TIMEOUT_MS) {
                fprintf(stderr, "fetch: nothing for %d s, %d partitions short\n",
                        IDLE_TIMEOUT_MS / 1000, left);
                left = -1;
            }
            continue;
        }
        idle_since = rs_bench_now_ns();
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
    *secs = rs_bench_secs_since(t);
    (void)rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    payload_sink = sum;
    return left == 0 ? 0 : 1;
}

/* ---- helpers --------------------------------------------------------------------------- */

int64_t rs_bench_wall_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void rs_bench_remove_tree(const char *path)
{
    (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double rs_bench_median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof(*s));
    double m;

    if (s == NULL) {
        abort();
    }
    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    m = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

const char *rs_bench_default_revstream(char *buf, size_t size)
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

/* ---- children --------------------------------------------------------------------------- */

/* The longest command line a bench runs, plus one. */
#define MAX_ARGS 16

void rs_bench_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

pid_t rs_bench_spawn(const char *const argv[], const char *out_path, const char *err_path)
{
    /* execv wants char *const []: copies, made before fork (no malloc in the child). */
    char *args[MAX_ARGS];
    size_t n = 0;
    pid_t pid;

    for (; argv[n] != NULL && n + 1 < MAX_ARGS; n++) {
        args[n] = strdup(argv[n]);
        if (args[n] == NULL) {
            abort();
        }
    }
    args[n] = NULL;
    (void)fflush(stdout);
    (void)fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
    }
    if (pid == 0) {
        const char *paths[2] = { out_path, err_path };

        for (int i = 0; i < 2; i++) {
            int fd = paths[i] != NULL ? open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;

            /* One file for both: one open file description, or each overwrites the other. */
            if (i == 1 && paths[0] != NULL && paths[1] != NULL && strcmp(paths[0], paths[1]) == 0) {
                (void)dup2(STDOUT_FILENO, STDERR_FILENO);
                break;
            }
            if (fd >= 0) {
                (void)dup2(fd, i == 0 ? STDOUT_FILENO : STDERR_FILENO);
                (void)close(fd);
            }
        }
        execv(args[0], args);
        fprintf(stderr, "exec '%s': %s\n", args[0], strerror(errno));
        _exit(127);
    }
    for (size_t i = 0; i < n; i++) {
        free(args[i]);
    }
    return pid;
}

char *rs_bench_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, got;

    if (f == NULL) {
        return NULL;
    }
    do {
        if (cap - len < 4096) {
            cap = cap > 0 ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (buf == NULL) {
                abort();
            }
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    buf[len] = '\0';
    (void)fclose(f);
    return buf;
}

double rs_bench_proc_cpu_s(pid_t pid)
{
    char path[64], *text, *p;
    unsigned long long ut, st;
    double r = -1;

    (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    text = rs_bench_slurp(path);
    /* The command name may hold spaces: fields count from the last ')'. */
    p = text != NULL ? strrchr(text, ')') : NULL;
    if (p != NULL &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
        r = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    free(text);
    return r;
}

double rs_bench_proc_anon_mb(pid_t pid)
{
    char path[64], *text, *p;
    unsigned long long kb;
    double r = -1;

    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    text = rs_bench_slurp(path);
    p = text != NULL ? strstr(text, "\nRssAnon:") : NULL;
    if (p != NULL && sscanf(p, "\nRssAnon: %llu", &kb) == 1) {
        r = (double)kb / 1024.0;
    }
    free(text);
    return r;
}
