#define RS_LOG_MODULE "app"
#include "app.h"

#include "agg.h"
#include "calendar.h"
#include "dedup.h"
#include "event.h"
#include "finance.h"
#include "guardrail.h"
#include "http.h"
#include "kafka_io.h"
#include "ledger.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "prom.h"
#include "query.h"
#include "slarule.h"
#include "store.h"
#include "timer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_TIMEOUT_MS  10000 /* how long a stop waits for Kafka to acknowledge the outbox */
#define DRAIN_POLL_MS     20    /* how often a stopping engine looks at the outbox */
#define FLUSH_ON_FREE_MS  2000  /* the producer's last chance; the outbox keeps what is left */
#define DLQ_LOG_FIRST     10    /* bad messages are data: log the first few, then 1 in 1000 */
#define DLQ_LOG_EVERY     1000
#define DLQ_PAYLOAD_MAX   900000 /* longer originals are cut; revstream.truncated says so */
#define PROGRESS_EVERY_MS 30000  /* a progress line in the log this often */

/* Outbox record destinations; stored in the record, never reuse a value. */
enum { DEST_ALERTS = 0, DEST_DLQ = 1, DEST_METRICS = 2 };
#define ALERT_SERIES_MAX   64 /* (rule, level) pairs counted for /metrics */
#define OUTBOX_HEADERS_MAX 6

struct part {
    bool assigned;
    bool fetched;     /* a message or EOF since assignment: the high watermark is fresh */
    bool dirty;       /* progress changed in the open batch: write it once at its end */
    bool dedup_dirty; /* ids recorded in the open batch: expire old ones at its end */
    struct rs_store_offset off;
    struct rs_watermark wm;
    int64_t next_deadline_ms;
};

/* What /metrics reports beyond the counters; live since start, not state. */
struct app_stats {
    uint64_t events_by_type[RS_EV__COUNT];
    struct rs_histogram batch_events; /* messages per batch */
    struct rs_histogram commit_ms;    /* LMDB commit latency */
    struct rs_histogram fire_lag_ms;  /* wall-clock firing: now - the level's deadline */
    size_t n_alert_series;
    struct {
        const char *sla_type;
        const char *level;
        uint64_t count;
    } alerts[ALERT_SERIES_MAX];
    uint64_t metric_updates;
};

struct rs_app {
    uv_loop_t *loop;
    const struct rs_config *cfg;
    struct rs_clock clock;
    struct rs_store *store;
    struct rs_kafka_consumer *consumer;
    struct rs_kafka_producer *producer;
    struct rs_event_decoder decoder;
    struct rs_sla sla;
    struct rs_rules rules;
    struct rs_metrics metrics;
    struct rs_ledger ledger; /* the customer MRR ledger and the finance facts */
    struct rs_guardrails guardrails;
    struct rs_agg *agg;
    struct rs_finance_config finance; /* the revenue metrics' options: metrics.cfg borrows it */
    struct rs_zone *zone;
    struct rs_calendar *calendar;
    struct rs_http *http;
    struct rs_app_counters counters;
    struct app_stats stats;
    bool clock_firing;                  /* inside body_tick: alerts fired by the wall clock */
    const struct rs_app_replay *replay; /* NULL: the live service */
    bool replay_done;
    int lock_fd;              /* flock on <state.dir>/revstream.lock: one engine per directory */
    struct rs_err *batch_err; /* the open batch's error, for callbacks that have none */

    struct part *parts;
    size_t n_parts;
    struct part *parts_before; /* copy taken at batch start, restored if the batch reruns */
    struct rs_sla_counters sla_before;
    struct rs_rules_counters rules_before;
    struct rs_metrics_counters metrics_before;
    struct rs_ledger_counters ledger_before;
    struct rs_guardrails guardrails_before;

    struct rs_buf record;  /* scratch: one outbox record */
    struct rs_buf payload; /* scratch: one alert */
    struct rs_buf mkey;    /* scratch: one metric update's key */

    uint64_t outbox_cursor; /* next outbox sequence to hand to the producer */
    uint64_t in_flight;
    uint64_t *acked; /* delivered, to delete in the next batch */
    size_t n_acked, cap_acked;

    uv_timer_t tick;
    uv_timer_t sync_timer;
    uv_timer_t drain_timer;
    uv_signal_t sigint, sigterm;
    uv_work_t sync_work;
    bool sync_running;
    bool signals;
    int handles_open;

    bool stopping;
    int status;
    uint64_t drain_started_ms;
    uint64_t progress_logged_ms;
    void (*done)(void *opaque, int status);
    void *done_opaque;
};

static int64_t wall_now_ms(void *opaque)
{
    struct timespec ts;

    (void)opaque;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const struct rs_app *app)
{
    return app->clock.now_ms(app->clock.opaque);
}

static void fail(struct rs_app *app, const char *what, const struct rs_err *err);

static struct part *part_get(struct rs_app *app, int32_t id)
{
    if (id < 0) {
        return NULL;
    }
    if ((size_t)id >= app->n_parts) {
        size_t n = (size_t)id + 1;

        app->parts = rs_xrealloc(app->parts, n * sizeof(*app->parts));
        app->parts_before = rs_xrealloc(app->parts_before, n * sizeof(*app->parts_before));
        memset(app->parts + app->n_parts, 0, (n - app->n_parts) * sizeof(*app->parts));
        app->n_parts = n;
    }
    return &app->parts[id];
}

/* ---- outbox records ---------------------------------------------------------------- */

/*
 * Layout: dest(1) ts(8) key_len(4) key n_headers(1) {name_len(1) name value_len(4) value}
 * payload (the rest). Keep in sync with record_parse().
 */
static void put_u32(struct rs_buf *b, uint32_t v)
{
    uint8_t p[4];

    rs_store_put_u32(p, v);
    rs_buf_append(b, p, 4);
}

static void record_begin(struct rs_buf *b, uint8_t dest, int64_t ts_ms, struct rs_bytes key)
{
    uint8_t ts[8];

    rs_buf_reset(b);
    rs_buf_append(b, &dest, 1);
    rs_store_put_u64(ts, (uint64_t)ts_ms);
    rs_buf_append(b, ts, 8);
    put_u32(b, (uint32_t)key.len);
    rs_buf_append(b, key.ptr, key.len);
}

struct record {
    uint8_t dest;
    int64_t ts_ms;
    struct rs_bytes key;
    struct rs_kafka_header headers[OUTBOX_HEADERS_MAX];
    char names[OUTBOX_HEADERS_MAX][64];
    size_t n_headers;
    struct rs_bytes payload;
};

static int record_parse(struct rs_bytes raw, struct record *r)
{
    const uint8_t *p = raw.ptr;
    const uint8_t *end = p + raw.len;
    uint32_t len;

    if (raw.len < 14) {
        return RS_ESTORE;
    }
    r->dest = p[0];
    r->ts_ms = (int64_t)rs_store_get_u64(p + 1);
    len = rs_store_get_u32(p + 9);
    p += 13;
    if ((size_t)(end - p) < (size_t)len + 1) {
        return RS_ESTORE;
    }
    r->key = (struct rs_bytes){ p, len };
    p += len;
    r->n_headers = *p++;
    if (r->n_headers > OUTBOX_HEADERS_MAX) {
        return RS_ESTORE;
    }
    for (size_t i = 0; i < r->n_headers; i++) {
        size_t nlen;

        if (end - p < 1 || (size_t)(end - p) < (size_t)p[0] + 5) {
            return RS_ESTORE;
        }
        nlen = p[0] < 63 ? p[0] : 63;
        memcpy(r->names[i], p + 1, nlen);
        r->names[i][nlen] = '\0';
        p += 1 + p[0];
        len = rs_store_get_u32(p);
        p += 4;
        if ((size_t)(end - p) < len) {
            return RS_ESTORE;
        }
        r->headers[i].name = r->names[i];
        r->headers[i].value = (struct rs_bytes){ p, len };
        p += len;
    }
    r->payload = (struct rs_bytes){ p, (size_t)(end - p) };
    return 0;
}

static void count_alert(struct app_stats *stats, const struct rs_alert *alert)
{
    size_t i;

    for (i = 0; i < stats->n_alert_series; i++) {
        if (strcmp(stats->alerts[i].sla_type, alert->sla_type) == 0 &&
            strcmp(stats->alerts[i].level, alert->level) == 0) {
            break;
        }
    }
    if (i == stats->n_alert_series) {
        if (i == ALERT_SERIES_MAX) {
            return;
        }
        /* Rule and level names are static strings of sla.c and slarule.c. */
        stats->alerts[i].sla_type = alert->sla_type;
        stats->alerts[i].level = alert->level;
        stats->n_alert_series++;
    }
    stats->alerts[i].count++;
}

static int emit_alert(void *opaque, const struct rs_alert *alert, struct rs_err *err)
{
    struct rs_app *app = opaque;
    uint8_t none = 0;
    uint64_t seq;

    count_alert(&app->stats, alert);
    if (app->replay != NULL && app->replay->no_output) {
        return 0;
    }
    if (app->clock_firing && alert->kind <= RS_ALERT_CRITICAL &&
        alert->kind != RS_ALERT_RECOVERED) {
        rs_histogram_observe(&app->stats.fire_lag_ms, (double)(now_ms(app) - alert->level_at_ms));
    }

    rs_buf_reset(&app->payload);
    rs_alert_encode(alert, &app->payload);
    /* Record timestamp 0: the time of publishing. Event time is in the payload, and brokers
     * refuse record times far from their clock (log.message.timestamp.after.max.ms). */
    record_begin(&app->record, DEST_ALERTS, 0,
                 (struct rs_bytes){ alert->entity_id.ptr, alert->entity_id.len });
    rs_buf_append(&app->record, &none, 1);
    rs_buf_append(&app->record, app->payload.data, app->payload.len);
    return rs_store_outbox_append(
        app->store, (struct rs_bytes){ app->record.data, app->record.len }, &seq, err);
}

/* The event-time watermark of a partition, for provisional / final. */
static int64_t part_watermark(const struct rs_app *app, uint32_t partition)
{
    return partition < app->n_parts ? rs_watermark_event(&app->parts[partition].wm) : INT64_MIN;
}

/* rs_agg_flush() reports each changed cell once per batch: one metrics-topic message. */
static int emit_metric(void *opaque, const struct rs_agg_key *key, const struct rs_agg_cell *cell)
{
    struct rs_app *app = opaque;
    struct rs_err err;
    uint8_t none = 0;
    uint64_t seq;
    int rc;

    if (app->replay != NULL && app->replay->no_output) {
        return 0;
    }
    rs_buf_reset(&app->mkey);
    rs_buf_reset(&app->payload);
    rs_metric_update_encode(&app->metrics.cfg, key, cell, part_watermark(app, key->partition),
                            &app->mkey, &app->payload);
    record_begin(&app->record, DEST_METRICS, 0, (struct rs_bytes){ app->mkey.data, app->mkey.len });
    rs_buf_append(&app->record, &none, 1);
    rs_buf_append(&app->record, app->payload.data, app->payload.len);
    rc = rs_store_outbox_append(app->store, (struct rs_bytes){ app->record.data, app->record.len },
                                &seq, app->batch_err != NULL ? app->batch_err : &err);
    if (rc == 0) {
        app->stats.metric_updates++;
    }
    return rc;
}

static void put_header(struct rs_buf *b, const char *name, const void *value, size_t len)
{
    uint8_t nlen = (uint8_t)strlen(name);

    rs_buf_append(b, &nlen, 1);
    rs_buf_append(b, name, nlen);
    put_u32(b, (uint32_t)len);
    rs_buf_append(b, value, len);
}

/* A dead letter whose reason header is `reason` (a decode fault's name, or a module's). */
static int dead_letter_reason(struct rs_app *app, const struct rs_msg *msg, const char *reason,
                              const char *detail, struct rs_err *err)
{
    char partition[16], offset[24];
    bool truncated = msg->payload != NULL && msg->len > DLQ_PAYLOAD_MAX;
    uint8_t n = truncated ? 6 : 5;
    uint64_t seq;
    uint64_t count = ++app->counters.dead_letters;

    if (count <= DLQ_LOG_FIRST || count % DLQ_LOG_EVERY == 0) {
        RS_LOG_WARN("dead letter topic=%s partition=%d offset=%" PRId64 " reason=%s count=%" PRIu64
                    ": %s",
                    msg->topic, msg->partition, msg->offset, reason, count, detail);
    }
    if (app->replay != NULL && app->replay->no_output) {
        return 0;
    }
    (void)snprintf(partition, sizeof(partition), "%d", msg->partition);
    (void)snprintf(offset, sizeof(offset), "%" PRId64, msg->offset);
    record_begin(&app->record, DEST_DLQ, msg->ts_ms,
                 (struct rs_bytes){ msg->key, msg->key != NULL ? msg->key_len : 0 });
    rs_buf_append(&app->record, &n, 1);
    /* Keep in sync with README.md "Dead letters". */
    put_header(&app->record, "revstream.source.topic", msg->topic, strlen(msg->topic));
    put_header(&app->record, "revstream.source.partition", partition, strlen(partition));
    put_header(&app->record, "revstream.source.offset", offset, strlen(offset));
    put_header(&app->record, "revstream.reason", reason, strlen(reason));
    put_header(&app->record, "revstream.error", detail, strlen(detail));
    if (truncated) {
        char original[24];

        (void)snprintf(original, sizeof(original), "%zu", msg->len); /* the length before */
        put_header(&app->record, "revstream.truncated", original, strlen(original));
    }
    /* Keep the dead letter under the producer's default message.max.bytes (1000000). */
    rs_buf_append(&app->record, msg->payload,
                  msg->payload == NULL ? 0
                                       : (msg->len < DLQ_PAYLOAD_MAX ? msg->len : DLQ_PAYLOAD_MAX));
    return rs_store_outbox_append(
        app->store, (struct rs_bytes){ app->record.data, app->record.len }, &seq, err);
}

static int dead_letter(struct rs_app *app, const struct rs_msg *msg, enum rs_event_fault fault,
                       const char *detail, struct rs_err *err)
{
    app->counters.dead_letters_by_fault[fault]++;
    return dead_letter_reason(app, msg, rs_event_fault_name(fault), detail, err);
}

/* ---- publishing -------------------------------------------------------------------- */

static void ack(struct rs_app *app, uint64_t seq)
{
    if (app->n_acked == app->cap_acked) {
        app->cap_acked = app->cap_acked == 0 ? 1024 : app->cap_acked * 2;
        app->acked = rs_xrealloc(app->acked, app->cap_acked * sizeof(*app->acked));
    }
    app->acked[app->n_acked++] = seq;
}

static void give_up(struct rs_app *app, uint64_t seq, const char *reason)
{
    app->counters.publish_failures++;
    RS_LOG_ERROR("outbox entry seq=%" PRIu64 " cannot be published and is dropped: %s", seq,
                 reason);
    ack(app, seq);
}

static int publish_one(void *opaque, uint64_t seq, struct rs_bytes raw)
{
    struct rs_app *app = opaque;
    struct record r;
    struct rs_err err;
    const char *topic;
    int rc;

    if (record_parse(raw, &r) != 0 || r.dest > DEST_METRICS) {
        RS_LOG_ERROR("outbox record seq=%" PRIu64 " is corrupt; dropped", seq);
        app->outbox_cursor = seq + 1;
        return 0;
    }
    topic = r.dest == DEST_ALERTS ? app->cfg->topic_alerts
            : r.dest == DEST_DLQ  ? app->cfg->topic_dlq
                                  : app->cfg->topic_metrics;
    rc = rs_kafka_producer_send(app->producer, topic, r.key, r.payload, r.headers, r.n_headers,
                                r.ts_ms, seq, &err);
    if (rc == -ENOBUFS) {
        return 1; /* librdkafka's queue is full: the rest waits for delivery reports */
    }
    app->outbox_cursor = seq + 1;
    if (rc != 0) {
        /* It can never be sent: drop it loudly rather than block every entry after it. */
        give_up(app, seq, err.msg);
        return 0;
    }
    app->in_flight++;
    return 0;
}

static void pump_outbox(struct rs_app *app)
{
    struct rs_err err;

    if (app->producer == NULL) {
        return;
    }
    rs_err_clear(&err);
    if (rs_store_outbox_scan(app->store, app->outbox_cursor, publish_one, app, &err) < 0) {
        RS_LOG_ERROR("%s", err.msg);
    }
}

static void on_delivered(void *opaque, uint64_t seq, bool ok, bool retriable, const char *reason)
{
    struct rs_app *app = opaque;

    app->in_flight--;
    if (ok) {
        app->counters.published++;
        ack(app, seq);
    } else if (retriable) {
        /* At least once: publish it again from the outbox (later entries may repeat). */
        RS_LOG_WARN("delivery failed seq=%" PRIu64 ": %s; will retry", seq, reason);
        if (seq < app->outbox_cursor) {
            app->outbox_cursor = seq;
        }
    } else {
        give_up(app, seq, reason);
    }
}

static void on_producer_fatal(void *opaque, const char *reason)
{
    struct rs_app *app = opaque;
    struct rs_err err;

    (void)rs_err_set(&err, RS_EKAFKA, "producer: %s", reason);
    fail(app, "kafka", &err);
}

/* Inside a batch: forget what Kafka has acknowledged. */
static int delete_acked(struct rs_app *app, struct rs_err *err)
{
    return rs_store_outbox_delete(app->store, app->acked, app->n_acked, err);
}

/* ---- the batch --------------------------------------------------------------------- */

/* One pass over a partition's due timers, each to the module that runs its rule. */
struct fire_pass {
    struct rs_app *app;
    int64_t watermark;
    int64_t next_deadline_ms; /* the levels armed while firing */
    struct rs_err *err;
};

static int fire_timer(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                      int64_t deadline_ms, struct rs_bytes payload)
{
    struct fire_pass *fp = opaque;

    if (rule == RS_SLA_RULE_SPEED_TO_LEAD) {
        return rs_sla_fire_timer(&fp->app->sla, fp->app->store, partition, fp->watermark, entity,
                                 deadline_ms, payload, &fp->next_deadline_ms, fp->err);
    }
    return rs_rules_fire_timer(&fp->app->rules, fp->app->store, partition, fp->watermark, rule,
                               entity, deadline_ms, payload, &fp->next_deadline_ms, fp->err);
}

static int fire_partition(struct rs_app *app, int32_t id, struct part *p, int64_t watermark,
                          struct rs_err *err)
{
    struct fire_pass fp = { app, watermark, RS_TIMER_NONE, err };
    int64_t left;
    int rc;

    if (watermark < p->next_deadline_ms) {
        return 0;
    }
    /* Every rule's timers in one pass, in deadline order. The pass runs until the first timer
     * after the watermark, so `left` counts the levels armed while firing as well. */
    rc = rs_timer_fire_due(app->store, (uint32_t)id, watermark, 0, fire_timer, &fp, &left, err);
    if (rc < 0) {
        return rc;
    }
    p->next_deadline_ms = left < fp.next_deadline_ms ? left : fp.next_deadline_ms;
    return 0;
}

static int apply_message(struct rs_app *app, const struct rs_msg *msg, struct rs_err *err)
{
    struct part *p = part_get(app, msg->partition);
    struct rs_event ev;
    enum rs_event_fault fault = RS_FAULT_NONE;
    struct rs_err derr;
    int rc;

    if (p == NULL || !p->assigned) {
        return 0;
    }
    if (msg->offset < p->off.next_offset) {
        app->counters.skipped++; /* applied before a restart or a seek: never twice */
        return 0;
    }
    if (app->replay != NULL && ((size_t)msg->partition >= app->replay->n ||
                                msg->offset >= app->replay->end[msg->partition])) {
        return 0; /* past the replay's end: written after it started */
    }
    p->fetched = true;
    p->wm.caught_up = false;
    rs_err_clear(&derr);
    rc = rs_event_decode(&app->decoder, msg->payload, msg->len, &ev, &fault, &derr);
    if (rc != 0) {
        rc = dead_letter(app, msg, fault, derr.msg, err);
    } else {
        int64_t wm;

        app->counters.events++;
        /*
         * Event-time firing happens here, per event, so that what fires depends on the order
         * of the partition's events only, never on where a batch ends: the watermark moves
         * with the event's arrival and what it passed fires before the event applies; a timer
         * the event arms already behind the watermark fires right after it.
         */
        if (rs_watermark_observe(&p->wm, ev.ts_ms)) {
            p->off.max_ts_ms = p->wm.max_event_ms;
        }
        wm = rs_watermark_event(&p->wm);
        rc = fire_partition(app, msg->partition, p, wm, err);
        if (rc == 0) {
            /* An amount no rate converts yet: refused whole, so it can be sent again. */
            const char *refused = NULL;

            rs_err_clear(&derr);
            rc = rs_ledger_admit(&app->ledger, app->store, &ev, &refused, &derr);
            if (rc == 0 && refused != NULL) {
                rc = dead_letter_reason(app, msg, refused, derr.msg, err);
                goto applied;
            }
            if (rc != 0 && err != NULL) {
                *err = derr;
            }
        }
        if (rc == 0) {
            bool duplicate = false;

            /* A duplicate id within the window: counted, never applied (METRICS.md §1.6). */
            rc = rs_dedup_check(app->store, (uint32_t)msg->partition, ev.id, ev.ts_ms, wm,
                                app->cfg->dedup_window_ms, &duplicate, err);
            p->dedup_dirty = true; /* the watermark may have moved: expire at the batch's end */
            if (rc == 0 && duplicate) {
                app->counters.duplicates++;
                rc = rs_metrics_duplicate(&app->metrics, app->store, (uint32_t)msg->partition, &ev,
                                          err);
                goto applied;
            }
        }
        if (rc == 0) {
            rc = rs_sla_apply(&app->sla, app->store, (uint32_t)msg->partition, &ev,
                              &p->next_deadline_ms, err);
        }
        if (rc == 0) {
            rc = rs_rules_apply(&app->rules, app->store, (uint32_t)msg->partition, &ev, msg->ts_ms,
                                &p->next_deadline_ms, err);
        }
        if (rc == 0) {
            rc = rs_metrics_apply(&app->metrics, app->store, (uint32_t)msg->partition, &ev, err);
        }
        if (rc == 0) {
            rc = rs_ledger_apply(&app->ledger, app->store, (uint32_t)msg->partition, &ev, wm, err);
        }
        if (rc == 0 && ev.type < RS_EV__COUNT) {
            app->stats.events_by_type[ev.type]++;
        }
        if (rc == 0) {
            rc = fire_partition(app, msg->partition, p, wm, err);
        }
    }
applied:
    if (rc != 0) {
        return rc;
    }
    p->off.next_offset = msg->offset + 1;
    p->off.applied++;
    p->dirty = true;
    return 0;
}

static size_t assigned_parts(const struct rs_app *app, uint32_t *ids, size_t cap, int64_t *wm);

/* The guardrails' reader: a metric summed over the assigned partitions, in the open batch. */
struct guard_read {
    struct rs_app *app;
    const uint32_t *ids;
    size_t n;
    int64_t wm;
};

static int read_guarded_metric(void *opaque, const char *metric, enum rs_grain grain,
                               int64_t bucket, struct rs_metric_value *out, struct rs_err *err)
{
    const struct guard_read *gr = opaque;
    const struct rs_metric_def *def = rs_metric_by_name(metric, strlen(metric));

    /* The finance metrics (finance.h) reach rs_finance_read() through rs_metrics_read() once
     * they are in metrics.c's table; until then they are not found and their guardrails
     * judge nothing. */
    if (def == NULL) {
        return RS_ENOTFOUND;
    }
    return rs_metrics_read(&gr->app->metrics.cfg, gr->app->store, def, (struct rs_str){ "", 0 },
                           grain, bucket, gr->n > 0 ? gr->ids : NULL, gr->n, gr->wm, out, err);
}

static int eval_guardrails(struct rs_app *app, struct rs_err *err)
{
    uint32_t ids[1024];
    struct guard_read gr = { app, ids, 0, INT64_MIN };
    int rc;

    gr.n = assigned_parts(app, ids, sizeof(ids) / sizeof(ids[0]), &gr.wm);
    /* The lowest watermark of the partitions that have one: a partition that never had an
     * event has nothing to wait for, and must not hold the guardrails back forever. */
    gr.wm = INT64_MAX;
    for (size_t i = 0; i < gr.n; i++) {
        int64_t w = rs_watermark_event(&app->parts[ids[i]].wm);

        if (w != INT64_MIN && w < gr.wm) {
            gr.wm = w;
        }
    }
    if (gr.n == 0 || gr.wm == INT64_MAX) {
        return 0; /* no watermark to judge at yet */
    }
    rc = rs_guardrails_eval(&app->guardrails, app->store, gr.wm, read_guarded_metric, &gr, err);
    return rc < 0 ? rc : 0;
}

/*
 * Run `body` in one store batch, with the acknowledged outbox deletes, and commit. When the
 * map fills, the batch is undone in memory too and runs again on the grown map.
 */
typedef int batch_body(struct rs_app *app, const void *arg, struct rs_err *err);

static int run_batch(struct rs_app *app, batch_body *body, const void *arg, struct rs_err *err)
{
    struct rs_app_counters counters_before = app->counters;
    int rc;

    for (int attempt = 0;; attempt++) {
        struct app_stats stats_before = app->stats;
        uint64_t started;

        memcpy(app->parts_before, app->parts, app->n_parts * sizeof(*app->parts));
        app->sla_before = app->sla.counters;
        app->rules_before = app->rules.counters;
        app->metrics_before = app->metrics.counters;
        app->ledger_before = app->ledger.counters;
        app->guardrails_before = app->guardrails;
        app->batch_err = err;
        rc = rs_store_begin(app->store, err);
        if (rc == 0) {
            rc = delete_acked(app, err);
        }
        if (rc == 0) {
            rc = body(app, arg, err);
        }
        /* Every cell the batch changed, written once and published once. */
        if (rc == 0) {
            rc = rs_agg_flush(app->agg, app->store, emit_metric, app, err);
        }
        /* After the flush: the guardrails read the cells this batch wrote. */
        if (rc == 0) {
            rc = eval_guardrails(app, err);
        }
        started = uv_hrtime();
        if (rc == 0) {
            rc = rs_store_commit(app->store, err);
        } else {
            rs_agg_discard(app->agg);
            rs_store_abort(app->store);
        }
        app->batch_err = NULL;
        if (rc == 0) {
            rs_histogram_observe(&app->stats.commit_ms, (double)(uv_hrtime() - started) / 1e6);
            break;
        }
        /* Undone in the store, so undone in memory: watermarks, deadlines, counters. */
        memcpy(app->parts, app->parts_before, app->n_parts * sizeof(*app->parts));
        app->sla.counters = app->sla_before;
        app->rules.counters = app->rules_before;
        app->metrics.counters = app->metrics_before;
        app->ledger.counters = app->ledger_before;
        app->guardrails = app->guardrails_before;
        app->stats = stats_before;
        app->counters = counters_before;
        if (rc != RS_ESTORE_FULL || attempt >= 8) {
            return rc;
        }
        app->counters.batch_retries++;
        counters_before.batch_retries++;
    }
    app->n_acked = 0;
    app->counters.batches++;
    return 0;
}

struct msgs {
    const struct rs_msg *msgs;
    size_t n;
};

static int body_messages(struct rs_app *app, const void *arg, struct rs_err *err)
{
    const struct msgs *m = arg;

    for (size_t i = 0; i < m->n; i++) {
        int rc = apply_message(app, &m->msgs[i], err);

        if (rc != 0) {
            return rc;
        }
    }
    /* Each partition's progress once per batch, in the same transaction as its state; and
     * the dedup entries that fell out of the window, a bounded number per batch. */
    for (size_t i = 0; i < app->n_parts; i++) {
        struct part *p = &app->parts[i];
        int rc;

        if (p->dedup_dirty && app->cfg->dedup_window_ms > 0) {
            int64_t wm = rs_watermark_event(&p->wm);

            p->dedup_dirty = false;
            /* Everything out of the window goes, however much: a bounded pass would leave a
             * backlog that depends on where batches end, and a replay must dump the same. */
            rc = rs_dedup_expire(app->store, (uint32_t)i,
                                 rs_dedup_cutoff_ms(wm, app->cfg->dedup_window_ms), 0, err);
            if (rc < 0) {
                return rc;
            }
        }
        if (!p->dirty) {
            continue;
        }
        /* Time-driven re-folds (a new month, past-due auto-churn) before the agg flush. */
        rc = rs_ledger_advance(&app->ledger, app->store, (uint32_t)i, rs_watermark_event(&p->wm),
                               err);
        if (rc != 0) {
            return rc;
        }
        rc = rs_store_offset_put(app->store, app->cfg->topic_events, (int32_t)i, &p->off, err);
        if (rc != 0) {
            return rc;
        }
        p->dirty = false;
    }
    return 0;
}

/* A replay is done once every partition's progress reached its end. */
static void check_replay_done(struct rs_app *app)
{
    const struct rs_app_replay *r = app->replay;

    if (r == NULL || app->replay_done || app->stopping) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (i >= app->n_parts || !app->parts[i].assigned ||
            app->parts[i].off.next_offset < r->end[i]) {
            return;
        }
    }
    app->replay_done = true;
    r->done(r->opaque);
}

static void wake_for_deadlines(struct rs_app *app);

static int on_batch(void *opaque, const struct rs_msg *msgs, size_t n)
{
    struct rs_app *app = opaque;
    struct msgs m = { msgs, n };
    struct rs_err err;
    int rc;

    rs_err_clear(&err);
    rs_histogram_observe(&app->stats.batch_events, (double)n);
    rc = run_batch(app, body_messages, &m, &err);
    if (rc != 0) {
        fail(app, "batch", &err);
        return rc;
    }
    if (app->replay != NULL && app->replay->batch != NULL) {
        app->replay->batch(app->replay->opaque);
    }
    check_replay_done(app);
    /* Kafka's group offsets follow ours, for lag monitoring only. */
    for (size_t i = 0; app->replay == NULL && i < n; i++) {
        if (i + 1 == n || msgs[i + 1].partition != msgs[i].partition) {
            rs_kafka_consumer_store_offset(app->consumer, msgs[i].topic, msgs[i].partition,
                                           msgs[i].offset + 1);
        }
    }
    pump_outbox(app);
    wake_for_deadlines(app);
    return 0;
}

static int body_tick(struct rs_app *app, const void *arg, struct rs_err *err)
{
    int64_t now = *(const int64_t *)arg;

    for (size_t i = 0; i < app->n_parts; i++) {
        struct part *p = &app->parts[i];
        int rc;

        /* Only the wall clock moves a watermark here: event time fired as events applied. */
        if (!p->assigned || !p->wm.caught_up) {
            continue;
        }
        rc = fire_partition(app, (int32_t)i, p, rs_watermark_at(&p->wm, now), err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Caught up: at EOF, or at the high watermark the fetcher last saw since assignment
 * (librdkafka keeps the one from before a rebalance until the next fetch). */
static bool refresh_caught_up(struct rs_app *app, size_t i)
{
    struct part *p = &app->parts[i];

    if (!p->wm.caught_up && p->fetched && app->consumer != NULL && app->replay == NULL) {
        int64_t hi =
            rs_kafka_consumer_high_watermark(app->consumer, app->cfg->topic_events, (int32_t)i);

        p->wm.caught_up = hi >= 0 && p->off.next_offset >= hi;
    }
    return p->wm.caught_up;
}

static void on_tick(uv_timer_t *t);

/*
 * The clock fires a caught-up partition's timers on the tick; when the earliest deadline
 * comes before the next tick, the tick comes early, at the deadline, so that a breach is
 * published at its deadline plus the batch rather than up to a tick later.
 */
static void wake_for_deadlines(struct rs_app *app)
{
    int64_t now = now_ms(app);
    int64_t next = INT64_MAX;

    if (app->stopping || app->replay != NULL) {
        return;
    }
    for (size_t i = 0; i < app->n_parts; i++) {
        struct part *p = &app->parts[i];

        if (p->assigned && p->next_deadline_ms < next && refresh_caught_up(app, i)) {
            next = p->next_deadline_ms;
        }
    }
    if (next == INT64_MAX) {
        return;
    }
    /* At least 1 ms: a deadline the last batch could not clear must not spin the loop. */
    next = next <= now ? 1 : next - now + 1;
    if ((uint64_t)next < uv_timer_get_due_in(&app->tick)) {
        (void)uv_timer_start(&app->tick, on_tick, (uint64_t)next, (uint64_t)app->cfg->tick_ms);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct rs_app *app = t->data;
    int64_t now = now_ms(app);
    bool due = false;
    struct rs_err err;
    int rc;

    for (size_t i = 0; i < app->n_parts && !due; i++) {
        struct part *p = &app->parts[i];

        if (!p->assigned) {
            continue;
        }
        /* Event time fires as events apply; here only the clock of a caught-up partition. */
        due = refresh_caught_up(app, i) && rs_watermark_at(&p->wm, now) >= p->next_deadline_ms;
    }
    if (!due && app->n_acked == 0) {
        pump_outbox(app);
        wake_for_deadlines(app);
        return;
    }
    /* Delivered entries go now, not with the next event batch: after a crash, what Kafka
     * acknowledged more than a tick ago is not published again. */
    rs_err_clear(&err);
    app->clock_firing = true;
    rc = run_batch(app, body_tick, &now, &err);
    app->clock_firing = false;
    if (rc != 0) {
        fail(app, "timer batch", &err);
        return;
    }
    pump_outbox(app);
    wake_for_deadlines(app);
}

/* ---- consumer handlers ------------------------------------------------------------- */

static int body_load_parts(struct rs_app *app, const void *arg, struct rs_err *err)
{
    (void)arg;
    for (size_t i = 0; i < app->n_parts; i++) {
        struct part *p = &app->parts[i];
        int rc;

        if (p->assigned && p->next_deadline_ms == 0) {
            rc = rs_timer_next_deadline(app->store, (uint32_t)i, &p->next_deadline_ms, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int on_assign(void *opaque, const char *topic, const int32_t *ids, int64_t *offsets,
                     size_t n)
{
    struct rs_app *app = opaque;
    struct rs_err err;
    int rc;

    for (size_t i = 0; i < n; i++) {
        struct part *p = part_get(app, ids[i]);

        rc = rs_store_offset_get(app->store, topic, ids[i], &p->off, &err);
        if (rc == RS_ENOTFOUND && app->replay != NULL) {
            int64_t from = (size_t)ids[i] < app->replay->n ? app->replay->start[ids[i]] : 0;

            p->off = (struct rs_store_offset){ from, INT64_MIN, 0 };
            offsets[i] = from;
        } else if (rc == RS_ENOTFOUND) {
            /* No state for it here: rebuild it from the start of the log, never from the
             * group's committed offset, which would skip events this store never saw. */
            p->off = (struct rs_store_offset){ 0, INT64_MIN, 0 };
            RS_LOG_INFO("partition %s[%d]: no local state, rebuilding from the earliest offset",
                        topic, ids[i]);
        } else if (rc != 0) {
            fail(app, "assign", &err);
            return rc;
        } else {
            RS_LOG_INFO("partition %s[%d]: resuming at offset %" PRId64, topic, ids[i],
                        p->off.next_offset);
        }
        /* The oldest retained message, whatever auto.offset.reset says: a log whose start
         * was deleted must not make a rebuild jump to its end. */
        if (app->replay == NULL || rc == 0) {
            offsets[i] = rc == RS_ENOTFOUND ? RS_KAFKA_OFFSET_BEGINNING : p->off.next_offset;
        }
        rs_watermark_init(&p->wm, app->cfg->max_out_of_orderness_ms, p->off.max_ts_ms);
        p->assigned = true;
        p->fetched = false;
        p->next_deadline_ms = 0; /* loaded below */
    }
    rc = rs_store_begin(app->store, &err);
    if (rc == 0) {
        rc = body_load_parts(app, NULL, &err);
        rs_store_abort(app->store); /* read only */
    }
    if (rc != 0) {
        fail(app, "assign", &err);
        return rc;
    }
    return 0;
}

static void on_revoke(void *opaque, const char *topic, const int32_t *ids, size_t n)
{
    struct rs_app *app = opaque;

    (void)topic;
    for (size_t i = 0; i < n; i++) {
        struct part *p = part_get(app, ids[i]);

        p->assigned = false;
    }
}

static void on_eof(void *opaque, const char *topic, int32_t partition, int64_t offset)
{
    struct rs_app *app = opaque;
    struct part *p = part_get(app, partition);

    (void)topic;
    /* A replay never lets the wall clock fire: it is not caught up with anything live. */
    if (p != NULL && p->assigned && offset <= p->off.next_offset && app->replay == NULL) {
        p->fetched = true;
        p->wm.caught_up = true;
    }
}

static void on_fatal(void *opaque, const char *reason)
{
    struct rs_app *app = opaque;
    struct rs_err err;

    (void)rs_err_set(&err, RS_EKAFKA, "consumer: %s", reason);
    fail(app, "kafka", &err);
}

/* ---- periodic fsync ---------------------------------------------------------------- */

static void sync_work(uv_work_t *w)
{
    struct rs_app *app = w->data;
    struct rs_err err;

    if (rs_store_sync(app->store, &err) != 0) {
        RS_LOG_WARN("%s", err.msg);
    }
}

static void sync_done(uv_work_t *w, int status)
{
    struct rs_app *app = w->data;

    (void)status;
    app->sync_running = false;
}

/* One line of progress now and then, so an operator tailing the log sees it work. */
static void log_progress(struct rs_app *app)
{
    const struct rs_app_counters *c = &app->counters;
    uint64_t now = uv_now(app->loop);

    if (now - app->progress_logged_ms < PROGRESS_EVERY_MS) {
        return;
    }
    app->progress_logged_ms = now;
    RS_LOG_INFO("progress events=%" PRIu64 " dead_letters=%" PRIu64 " published=%" PRIu64
                " outbox=%" PRIu64 " batches=%" PRIu64 " caught_up=%d",
                c->events, c->dead_letters, c->published, rs_store_count(app->store, RS_DB_OUTBOX),
                c->batches, rs_app_is_caught_up(app));
}

static void on_sync_timer(uv_timer_t *t)
{
    struct rs_app *app = t->data;

    log_progress(app);
    if (!app->sync_running) {
        app->sync_running = true;
        app->sync_work.data = app;
        (void)uv_queue_work(app->loop, &app->sync_work, sync_work, sync_done);
    }
}

/* ---- HTTP: /metrics, /healthz, /readyz and the JSON API ----------------------------- */

static void counter(struct rs_buf *b, const char *name, const char *help, double v)
{
    rs_prom_family(b, name, "counter", help);
    rs_prom_sample(b, name, NULL, 0, v);
}

/* Open timers per rule: one pass over the timer index (partition, rule, entity). */
static void count_timers(struct rs_app *app, uint64_t by_rule[256])
{
    uint8_t from[RS_TIMER_ENTITY_MAX + 8];
    size_t from_len = 0;
    struct rs_bytes key, val;
    struct rs_err err;

    memset(by_rule, 0, 256 * sizeof(by_rule[0]));
    while (rs_store_seek(app->store, RS_DB_TIMER_INDEX, (struct rs_bytes){ from, from_len }, &key,
                         &val, &err) == 0) {
        if (key.len >= 5) {
            by_rule[((const uint8_t *)key.ptr)[4]]++;
        }
        /* The smallest key after this one. */
        from_len = key.len < sizeof(from) - 1 ? key.len : sizeof(from) - 1;
        memcpy(from, key.ptr, from_len);
        from[from_len++] = 0;
    }
}

static void write_prometheus(struct rs_app *app, struct rs_buf *b)
{
    const struct rs_app_counters *c = &app->counters;
    const struct app_stats *s = &app->stats;
    uint64_t timers[256];
    uint64_t map_bytes, used_bytes;
    char part[24];

    rs_prom_family(b, "revstream_events_total", "counter", "Events decoded and applied, by type.");
    for (int t = 0; t < RS_EV__COUNT; t++) {
        const char *labels[] = { "type", rs_event_type_name((enum rs_event_type)t) };

        rs_prom_sample(b, "revstream_events_total", labels, 1, (double)s->events_by_type[t]);
    }
    rs_prom_family(b, "revstream_dead_letters_total", "counter",
                   "Messages sent to the dead-letter topic, by reason.");
    for (int f = 1; f < RS_FAULT__COUNT; f++) {
        const char *labels[] = { "reason", rs_event_fault_name((enum rs_event_fault)f) };

        rs_prom_sample(b, "revstream_dead_letters_total", labels, 1,
                       (double)c->dead_letters_by_fault[f]);
    }
    counter(b, "revstream_batches_total", "LMDB batches committed.", (double)c->batches);
    counter(b, "revstream_duplicates_total",
            "Events whose id was seen within dedup.window: counted, not applied.",
            (double)c->duplicates);
    counter(b, "revstream_published_total", "Outbox entries acknowledged by Kafka.",
            (double)c->published);
    counter(b, "revstream_publish_failures_total", "Outbox entries dropped as unpublishable.",
            (double)c->publish_failures);
    counter(b, "revstream_metric_updates_total", "Metric updates written to the outbox.",
            (double)s->metric_updates);
    rs_prom_family(b, "revstream_consumer_lag", "gauge",
                   "Messages between the partition's high watermark and the next offset to apply.");
    rs_prom_family(b, "revstream_partition_caught_up", "gauge",
                   "1 when the assigned partition is at the end of its log.");
    for (size_t i = 0; i < app->n_parts; i++) {
        const struct part *p = &app->parts[i];
        int64_t hi;
        const char *labels[] = { "partition", part };

        if (!p->assigned) {
            continue;
        }
        (void)snprintf(part, sizeof(part), "%zu", i);
        hi = app->consumer != NULL ? rs_kafka_consumer_high_watermark(
                                         app->consumer, app->cfg->topic_events, (int32_t)i)
                                   : -1;
        if (hi >= 0) {
            rs_prom_sample(b, "revstream_consumer_lag", labels, 1,
                           (double)(hi > p->off.next_offset ? hi - p->off.next_offset : 0));
        }
        rs_prom_sample(b, "revstream_partition_caught_up", labels, 1, p->wm.caught_up ? 1 : 0);
    }
    rs_prom_family(b, "revstream_batch_events", "histogram", "Messages per batch.");
    rs_prom_histogram(b, "revstream_batch_events", NULL, 0, &s->batch_events);
    rs_prom_family(b, "revstream_commit_ms", "histogram", "LMDB batch commit latency (ms).");
    rs_prom_histogram(b, "revstream_commit_ms", NULL, 0, &s->commit_ms);
    rs_prom_family(b, "revstream_timer_fire_lag_ms", "histogram",
                   "Wall-clock firing: ms between a level's deadline and its alert.");
    rs_prom_histogram(b, "revstream_timer_fire_lag_ms", NULL, 0, &s->fire_lag_ms);
    rs_prom_family(b, "revstream_alerts_total", "counter", "Alerts written, by rule and level.");
    for (size_t i = 0; i < s->n_alert_series; i++) {
        const char *labels[] = { "rule", s->alerts[i].sla_type, "level", s->alerts[i].level };

        rs_prom_sample(b, "revstream_alerts_total", labels, 2, (double)s->alerts[i].count);
    }
    rs_prom_family(b, "revstream_open_timers", "gauge", "Armed SLA timers, by rule.");
    if (rs_store_read_begin(app->store, NULL) == 0) {
        count_timers(app, timers);
        rs_store_read_end(app->store);
        for (unsigned r = 1; r < 8; r++) {
            const char *type = r == RS_SLA_RULE_SPEED_TO_LEAD ? "SLA-01_speed_to_lead"
                                                              : rs_rule_sla_type((uint8_t)r);
            const char *labels[] = { "rule", type };

            if (type != NULL) {
                rs_prom_sample(b, "revstream_open_timers", labels, 1, (double)timers[r]);
            }
        }
    }
    rs_store_usage(app->store, &map_bytes, &used_bytes);
    rs_prom_family(b, "revstream_lmdb_map_bytes", "gauge", "LMDB map size.");
    rs_prom_sample(b, "revstream_lmdb_map_bytes", NULL, 0, (double)map_bytes);
    rs_prom_family(b, "revstream_lmdb_used_bytes", "gauge", "LMDB pages in use.");
    rs_prom_sample(b, "revstream_lmdb_used_bytes", NULL, 0, (double)used_bytes);
    rs_prom_family(b, "revstream_outbox_pending", "gauge", "Outbox entries not yet acknowledged.");
    rs_prom_sample(b, "revstream_outbox_pending", NULL, 0,
                   (double)rs_store_count(app->store, RS_DB_OUTBOX));
}

static const char *http_param(void *opaque, const char *name)
{
    return rs_http_query(opaque, name);
}

/* The assigned partitions and their slowest event-time watermark. */
static size_t assigned_parts(const struct rs_app *app, uint32_t *ids, size_t cap, int64_t *wm)
{
    size_t n = 0;

    *wm = INT64_MAX;
    for (size_t i = 0; i < app->n_parts && n < cap; i++) {
        if (app->parts[i].assigned) {
            int64_t w = rs_watermark_event(&app->parts[i].wm);

            ids[n++] = (uint32_t)i;
            *wm = w < *wm ? w : *wm;
        }
    }
    if (n == 0) {
        *wm = INT64_MIN;
    }
    return n;
}

static void json_body(struct rs_http_response *resp, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    resp->status = status;
    resp->content_type = "application/json";
    if (text != NULL) {
        rs_buf_append(&resp->body, text, strlen(text));
        rs_buf_append(&resp->body, "\n", 1);
        free(text);
    }
    json_decref(body);
}

static void json_error(struct rs_http_response *resp, unsigned status, const char *msg)
{
    json_t *o = json_object();

    json_object_set_new(o, "error", json_string(msg));
    json_body(resp, status, o);
}

static void serve_api(struct rs_app *app, const char *path, const struct rs_http_request *req,
                      struct rs_http_response *resp)
{
    uint32_t ids[1024];
    struct rs_query_ctx ctx = { app->store, &app->metrics.cfg, ids, 0, 0 };
    struct rs_query_params params = { http_param, (void *)(uintptr_t)req };
    struct rs_err err;
    json_t *out = NULL;
    int rc;

    if (strcmp(path, "/api/metrics") == 0) {
        json_body(resp, 200, rs_query_list());
        return;
    }
    ctx.n_partitions = assigned_parts(app, ids, sizeof(ids) / sizeof(ids[0]), &ctx.watermark_ms);
    if (ctx.n_partitions == 0) {
        json_error(resp, 503, "no partitions assigned yet");
        return;
    }
    rs_err_clear(&err);
    rc = rs_store_read_begin(app->store, &err);
    if (rc == 0) {
        if (strcmp(path, "/api/metric") == 0) {
            rc = rs_query_metric(&ctx, &params, &out, &err);
        } else if (strcmp(path, "/api/series") == 0) {
            rc = rs_query_series(&ctx, &params, &out, &err);
        } else if (strcmp(path, "/api/sla/open") == 0) {
            rc = rs_query_open(&ctx, &params, &out, &err);
        } else {
            rc = rs_err_set(&err, RS_ENOTFOUND, "no such endpoint: %s", path);
        }
        rs_store_read_end(app->store);
    }
    if (rc == 0) {
        json_body(resp, 200, out);
    } else {
        json_error(resp, rc == RS_EINVAL ? 400 : rc == RS_ENOTFOUND ? 404 : 500, err.msg);
    }
}

static void serve_http(void *opaque, const struct rs_http_request *req,
                       struct rs_http_response *resp)
{
    struct rs_app *app = opaque;
    const char *path = rs_http_path(req);

    if (strcmp(path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4";
        write_prometheus(app, &resp->body);
    } else if (strcmp(path, "/healthz") == 0) {
        bool ok = app->status == 0 && !app->stopping;

        resp->status = ok ? 200 : 503;
        resp->content_type = "text/plain";
        rs_buf_append(&resp->body, ok ? "ok\n" : "stopping\n", ok ? 3 : 9);
    } else if (strcmp(path, "/readyz") == 0) {
        json_t *o = json_object();
        json_t *lagging = json_array();
        bool any = false;

        for (size_t i = 0; i < app->n_parts; i++) {
            if (app->parts[i].assigned) {
                any = true;
                if (!app->parts[i].wm.caught_up) {
                    json_array_append_new(lagging, json_integer((json_int_t)i));
                }
            }
        }
        json_object_set_new(o, "ready", json_boolean(any && json_array_size(lagging) == 0));
        json_object_set_new(o, "assigned", json_boolean(any));
        json_object_set_new(o, "catching_up", lagging);
        json_body(resp, any && json_array_size(json_object_get(o, "catching_up")) == 0 ? 200 : 503,
                  o);
    } else if (strncmp(path, "/api/", 5) == 0) {
        serve_api(app, path, req, resp);
    } else {
        json_error(resp, 404, "not found; try /metrics, /healthz, /readyz or /api/metrics");
    }
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void init_stats(struct app_stats *stats)
{
    static const double batch_bounds[] = { 1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000 };
    static const double ms_bounds[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000 };
    static const double lag_bounds[] = { 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000 };

    memset(stats, 0, sizeof(*stats));
    rs_histogram_init(&stats->batch_events, batch_bounds,
                      sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    rs_histogram_init(&stats->commit_ms, ms_bounds, sizeof(ms_bounds) / sizeof(ms_bounds[0]));
    rs_histogram_init(&stats->fire_lag_ms, lag_bounds, sizeof(lag_bounds) / sizeof(lag_bounds[0]));
}

/*
 * One engine per state directory: two writers would interleave their batches and each seek
 * to the other's offsets. LMDB itself allows that, so an flock says who owns the directory;
 * the kernel drops it when the process ends, kill -9 included.
 */
static int lock_state_dir(struct rs_app *app, struct rs_err *err)
{
    char path[4096];
    char pid[24];
    int n;

    (void)snprintf(path, sizeof(path), "%s/revstream.lock", app->cfg->state_dir);
    app->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (app->lock_fd < 0) {
        return rs_err_set(err, RS_ESTORE, "state.dir '%s': cannot open %s: %s", app->cfg->state_dir,
                          path, strerror(errno));
    }
    if (flock(app->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t len = read(app->lock_fd, pid, sizeof(pid) - 1);

        pid[len > 0 ? len : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return rs_err_set(err, RS_ESTORE,
                          "state.dir '%s' is in use by another revstream process%s%s%s (%s)",
                          app->cfg->state_dir, pid[0] != '\0' ? " (pid " : "", pid,
                          pid[0] != '\0' ? ")" : "", e == EWOULDBLOCK ? "locked" : strerror(e));
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(app->lock_fd, 0) != 0 || write(app->lock_fd, pid, (size_t)n) != n) {
        RS_LOG_WARN("cannot write the pid into %s: %s", path, strerror(errno));
    }
    return 0;
}

int rs_app_clocks_open(const struct rs_config *cfg, struct rs_zone **zone,
                       struct rs_calendar **calendar, struct rs_err *err)
{
    int rc = rs_zone_new(cfg->time_zone, zone, err);

    *calendar = NULL;
    if (rc == 0) {
        rc = rs_calendar_new("business", cfg->calendar_zone, cfg->calendar_hours,
                             strcmp(cfg->calendar_holidays, "none") == 0 ? ""
                                                                         : cfg->calendar_holidays,
                             calendar, err);
    }
    if (rc != 0) {
        rs_zone_free(*zone);
        *zone = NULL;
    }
    return rc;
}

/* A finance.* word validated by rs_config_validate(); the default if it is not one. */
static int finance_option(const char *key, const char *word)
{
    int v = rs_finance_option(key, word);

    return v >= 0 ? v : 0;
}

void rs_app_metrics_config(const struct rs_config *cfg, const struct rs_zone *zone,
                           const struct rs_calendar *calendar, struct rs_finance_config *fc,
                           struct rs_metrics_config *mc)
{
    rs_finance_config_defaults(fc);
    fc->zone = zone;
    fc->lateness_ms = cfg->lateness_finance_ms;
    fc->min_n = cfg->min_n;
    fc->gross_margin_default = cfg->gross_margin_default;
    fc->churn_floor_monthly = cfg->churn_floor_monthly;
    fc->shared_spend_new_logo = cfg->shared_spend_new_logo;
    fc->spend_lag_periods = (int)cfg->spend_lag_periods;
    fc->ltv = (enum rs_ltv_formula)finance_option("ltv_formula", cfg->ltv_formula);
    fc->magic =
        (enum rs_magic_variant)finance_option("magic_number_variant", cfg->magic_number_variant);
    fc->payback =
        (enum rs_payback_variant)finance_option("cac_payback_variant", cfg->cac_payback_variant);
    fc->r40 = (enum rs_r40_margin)finance_option("rule_of_40_margin", cfg->rule_of_40_margin);
    fc->customer_churn = (enum rs_customer_churn_formula)finance_option(
        "customer_churn_formula", cfg->customer_churn_formula);
    rs_metrics_config_defaults(mc);
    mc->finance = fc;
    mc->zone = zone;
    mc->sales_hours = calendar;
    memcpy(mc->lead_sla_ms, cfg->lead_threshold_ms, sizeof(mc->lead_sla_ms));
    memcpy(mc->funnel_window_ms, cfg->funnel_window_ms, sizeof(mc->funnel_window_ms));
    mc->reopen_same_opportunity_ms = cfg->reopen_same_opp_ms;
    mc->handoff_threshold_ms = cfg->handoff_ms;
    mc->onboarding_start_at_won = strcmp(cfg->onboarding_start, "opportunity_won") == 0;
    mc->lateness_ops_ms = cfg->lateness_ops_ms;
    mc->lateness_sales_ms = cfg->lateness_sales_ms;
    mc->min_n = cfg->min_n;
}

/* The ledger's options (METRICS.md §7) from the configuration. */
static void ledger_config(const struct rs_config *cfg, const struct rs_zone *zone,
                          const struct rs_calendar *calendar, struct rs_ledger_config *lc)
{
    rs_ledger_config_defaults(lc);
    lc->zone = zone;
    lc->sales_hours = calendar;
    (void)snprintf(lc->reporting_currency, sizeof(lc->reporting_currency), "%s",
                   cfg->reporting_currency);
    lc->classification_window_ms = cfg->classification_window_ms;
    lc->churn_recognition = strcmp(cfg->churn_recognition, "at_cancel") == 0 ? RS_CHURN_AT_CANCEL
                            : strcmp(cfg->churn_recognition, "at_schedule") == 0
                                ? RS_CHURN_AT_SCHEDULE
                                : RS_CHURN_END_OF_PERIOD;
    lc->zero_mrr_is_logo_churn = cfg->zero_mrr_is_logo_churn;
    /* Validated by rs_config_validate(). */
    (void)rs_config_off_or_days(cfg->past_due_auto_churn, &lc->past_due_auto_churn_ms);
    lc->churn_reversal_window_ms = cfg->churn_reversal_window_ms;
    (void)rs_config_off_or_days(cfg->refund_void_new_business, &lc->refund_void_new_business_ms);
    lc->finite_discounts_reduce_mrr = cfg->finite_discounts_reduce_mrr;
}

/* Settled SLA instances feed the metrics (M14, compliance per rule). */
static int app_outcome(void *opaque, uint32_t partition, const struct rs_sla_outcome *o, int sign,
                       struct rs_err *err)
{
    struct rs_app *app = opaque;

    return rs_metrics_sla_outcome(&app->metrics, partition, o, sign, err);
}

static void init_rules(struct rs_app *app)
{
    const struct rs_config *cfg = app->cfg;
    struct rs_rules_config rc;
    struct rs_rule_config *stalled = &rc.stalled_opp;
    struct rs_rule_config *onboarding = &rc.onboarding;
    static const char *const segments[] = { "smb", "mid_market", "enterprise" };

    rs_rules_config_defaults(&rc);
    rc.mql_acceptance.enabled = cfg->sla_enabled[RS_RULE_MQL_ACCEPTANCE];
    rc.mql_acceptance.threshold_ms = cfg->mql_acceptance_ms;
    rc.mql_acceptance.calendar = app->calendar;
    stalled->enabled = cfg->sla_enabled[RS_RULE_STALLED_OPP];
    stalled->threshold_ms = cfg->stalled_opp_ms;
    stalled->n_dims = 0;
    for (size_t i = 0; i < cfg->n_stage_thresholds && i < RS_RULE_DIMS_MAX; i++) {
        stalled->dim_value[i] = cfg->stage_names[i];
        stalled->dim_threshold_ms[i] = cfg->stage_ms[i];
        stalled->n_dims++;
    }
    rc.handoff.enabled = cfg->sla_enabled[RS_RULE_HANDOFF];
    rc.handoff.threshold_ms = cfg->handoff_ms;
    rc.handoff.calendar = app->calendar;
    onboarding->enabled = cfg->sla_enabled[RS_RULE_ONBOARDING];
    onboarding->threshold_ms = cfg->onboarding_ms[3];
    onboarding->n_dims = 3;
    for (size_t i = 0; i < 3; i++) {
        onboarding->dim_value[i] = segments[i];
        onboarding->dim_threshold_ms[i] = cfg->onboarding_ms[i];
    }
    rc.freshness.enabled = cfg->sla_enabled[RS_RULE_DATA_FRESHNESS];
    rc.freshness.threshold_ms = cfg->freshness_silence_ms;
    rc.freshness.calendar = app->calendar;
    rc.freshness_lag_p95_ms = cfg->freshness_lag_ms;
    rc.renewal.enabled = cfg->sla_enabled[RS_RULE_RENEWAL_COVERAGE];
    rs_rules_set_renewal_lead(&rc.renewal, cfg->renewal_lead_ms);
    rs_rules_init(&app->rules, &rc, emit_alert, app_outcome, app);
}

_Static_assert(RS_CONFIG_GUARDRAILS == RS_GUARD__COUNT, "one guardrail.* key pair per guardrail");

static void init_guardrails(struct rs_app *app)
{
    struct rs_guardrail_config gc;

    rs_guardrail_config_defaults(&gc);
    gc.zone = app->zone;
    gc.interval_ms = app->cfg->guardrail_interval_ms;
    for (size_t i = 0; i < RS_GUARD__COUNT; i++) {
        gc.enabled[i] = app->cfg->guardrail_enabled[i];
        gc.threshold[i] = app->cfg->guardrail_threshold[i];
    }
    rs_guardrails_init(&app->guardrails, &gc, emit_alert, app);
}

int rs_app_open(struct rs_app **out, uv_loop_t *loop, const struct rs_config *cfg,
                const struct rs_clock *clock, struct rs_err *err)
{
    struct rs_app *app = rs_xcalloc(1, sizeof(*app));
    struct rs_sla_config sla_cfg;
    struct rs_metrics_config mc;
    struct rs_ledger_config lc;
    int rc;

    app->lock_fd = -1;
    app->loop = loop;
    app->cfg = cfg;
    app->clock.now_ms = wall_now_ms;
    if (clock != NULL && clock->now_ms != NULL) {
        app->clock = *clock;
    }
    rs_event_decoder_init(&app->decoder, cfg->event_max_bytes);
    rs_buf_init(&app->record);
    rs_buf_init(&app->payload);
    memcpy(sla_cfg.threshold_ms, cfg->lead_threshold_ms, sizeof(sla_cfg.threshold_ms));
    sla_cfg.warning_pct = cfg->warning_pct;
    sla_cfg.escalate_pct = cfg->escalate_pct;
    rs_sla_init(&app->sla, &sla_cfg, emit_alert, app);
    init_stats(&app->stats);
    rs_buf_init(&app->mkey);

    rc = rs_app_clocks_open(cfg, &app->zone, &app->calendar, err);
    if (rc != 0) {
        goto fail;
    }
    app->agg = rs_agg_new();
    rs_app_metrics_config(cfg, app->zone, app->calendar, &app->finance, &mc);
    rs_metrics_init(&app->metrics, &mc, app->agg);
    ledger_config(cfg, app->zone, app->calendar, &lc);
    rs_ledger_init(&app->ledger, &lc, app->agg);
    init_rules(app);
    init_guardrails(app);
    rc = rs_store_open(&app->store, cfg->state_dir, cfg->state_map_size_mb, err);
    if (rc != 0) {
        goto fail;
    }
    app->metrics.st = app->store; /* SLA outcomes reach the metrics without a store argument */
    rc = lock_state_dir(app, err);
    if (rc != 0) {
        goto fail;
    }
    rc = rs_kafka_producer_open(&app->producer, loop, cfg, on_delivered, on_producer_fatal, app,
                                err);
    if (rc != 0) {
        goto fail;
    }
    (void)uv_timer_init(loop, &app->tick);
    (void)uv_timer_init(loop, &app->sync_timer);
    (void)uv_timer_init(loop, &app->drain_timer);
    app->tick.data = app->sync_timer.data = app->drain_timer.data = app;
    app->handles_open = 3;
    *out = app;
    return 0;

fail:
    if (app->lock_fd >= 0) {
        (void)close(app->lock_fd);
    }
    rs_store_close(app->store);
    rs_event_decoder_release(&app->decoder);
    rs_buf_release(&app->record);
    rs_buf_release(&app->payload);
    rs_buf_release(&app->mkey);
    rs_ledger_release(&app->ledger);
    rs_agg_free(app->agg);
    rs_calendar_free(app->calendar);
    rs_zone_free(app->zone);
    free(app);
    return rc;
}

static int start_http(struct rs_app *app, struct rs_err *err)
{
    char host[256];
    uint16_t port;

    if (rs_config_http_bind(app->cfg, host, sizeof(host), &port) != 0) {
        return 0; /* "off" */
    }
    return rs_http_start(app->loop, host, port, serve_http, app, &app->http, err);
}

uint16_t rs_app_http_port(const struct rs_app *app)
{
    return app->http != NULL ? rs_http_port(app->http) : 0;
}

int rs_app_start(struct rs_app *app, struct rs_err *err)
{
    static const struct rs_kafka_consumer_handlers handlers = {
        on_batch, on_assign, on_revoke, on_eof, on_fatal,
    };
    uint64_t pending = rs_store_count(app->store, RS_DB_OUTBOX);
    int rc;

    if (pending > 0) {
        RS_LOG_INFO("outbox holds %" PRIu64 " entries from the last run; publishing them", pending);
    }
    pump_outbox(app);
    if (app->replay != NULL) {
        int32_t *ids = rs_xcalloc(app->replay->n + 1, sizeof(*ids));

        /* No group to join: the group id only names the client. */
        rc = rs_kafka_consumer_open(&app->consumer, app->loop, app->cfg, "revstream-replay",
                                    &handlers, app, err);
        for (size_t i = 0; i < app->replay->n; i++) {
            ids[i] = (int32_t)i;
        }
        if (rc == 0) {
            rc = rs_kafka_consumer_assign(app->consumer, app->cfg->topic_events, ids,
                                          app->replay->n, err);
        }
        free(ids);
        if (rc != 0) {
            return rc;
        }
        check_replay_done(app); /* every range may be empty */
    } else {
        rc = rs_kafka_consumer_open(&app->consumer, app->loop, app->cfg, NULL, &handlers, app, err);
        if (rc != 0) {
            return rc;
        }
        rc = rs_kafka_consumer_subscribe(app->consumer, app->cfg->topic_events, err);
        if (rc != 0) {
            return rc;
        }
        rc = start_http(app, err);
        if (rc != 0) {
            return rc;
        }
    }
    (void)uv_timer_start(&app->tick, on_tick, (uint64_t)app->cfg->tick_ms,
                         (uint64_t)app->cfg->tick_ms);
    (void)uv_timer_start(&app->sync_timer, on_sync_timer, (uint64_t)app->cfg->state_sync_ms,
                         (uint64_t)app->cfg->state_sync_ms);
    RS_LOG_INFO("consuming topic=%s alerts=%s metrics=%s dlq=%s state=%s http=%s",
                app->cfg->topic_events, app->cfg->topic_alerts, app->cfg->topic_metrics,
                app->cfg->topic_dlq, app->cfg->state_dir, app->cfg->http_bind);
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct rs_app *app = h->data;

    if (--app->handles_open == 0 && app->done != NULL) {
        app->done(app->done_opaque, app->status);
    }
}

static void producer_closed(void *opaque)
{
    struct rs_app *app = opaque;
    struct rs_err err;

    if (rs_store_sync(app->store, &err) != 0) {
        RS_LOG_WARN("%s", err.msg);
    }
    rs_http_stop(app->http);
    app->http = NULL;
    uv_close((uv_handle_t *)&app->tick, handle_closed);
    uv_close((uv_handle_t *)&app->sync_timer, handle_closed);
    uv_close((uv_handle_t *)&app->drain_timer, handle_closed);
    if (app->signals) {
        uv_close((uv_handle_t *)&app->sigint, handle_closed);
        uv_close((uv_handle_t *)&app->sigterm, handle_closed);
    }
}

static void on_drain_timer(uv_timer_t *t)
{
    struct rs_app *app = t->data;
    uint64_t left;

    if (app->n_acked > 0) {
        struct rs_err err;

        rs_err_clear(&err);
        if (run_batch(app, body_tick, &(int64_t){ INT64_MIN }, &err) != 0) {
            RS_LOG_ERROR("%s", err.msg);
            app->n_acked = 0;
        }
    }
    pump_outbox(app);
    left = rs_store_count(app->store, RS_DB_OUTBOX);
    if (left > 0 && uv_now(app->loop) - app->drain_started_ms < DRAIN_TIMEOUT_MS) {
        return;
    }
    if (left > 0) {
        RS_LOG_WARN("stopping with %" PRIu64 " outbox entries unacknowledged; the next start "
                    "publishes them",
                    left);
    }
    (void)uv_timer_stop(t);
    (void)uv_timer_stop(&app->tick);
    (void)uv_timer_stop(&app->sync_timer);
    rs_kafka_producer_close(app->producer, producer_closed, app);
}

static void consumer_closed(void *opaque)
{
    struct rs_app *app = opaque;

    RS_LOG_INFO("consumer closed; draining the outbox pending=%" PRIu64,
                rs_store_count(app->store, RS_DB_OUTBOX));
    app->drain_started_ms = uv_now(app->loop);
    (void)uv_timer_start(&app->drain_timer, on_drain_timer, 0, DRAIN_POLL_MS);
}

void rs_app_stop(struct rs_app *app, void (*done)(void *opaque, int status), void *opaque)
{
    if (done != NULL) {
        app->done = done;
        app->done_opaque = opaque;
    }
    if (app->stopping) {
        return;
    }
    app->stopping = true;
    if (app->consumer != NULL) {
        rs_kafka_consumer_close(app->consumer, consumer_closed, app);
    } else {
        consumer_closed(app);
    }
}

static void fail(struct rs_app *app, const char *what, const struct rs_err *err)
{
    RS_LOG_ERROR("%s failed: %s", what, err->msg);
    app->status = 1;
    rs_app_stop(app, NULL, NULL);
}

int rs_app_status(const struct rs_app *app)
{
    return app->status;
}

const struct rs_app_counters *rs_app_counters(const struct rs_app *app)
{
    return &app->counters;
}

const struct rs_sla_counters *rs_app_sla_counters(const struct rs_app *app)
{
    return &app->sla.counters;
}

bool rs_app_is_caught_up(const struct rs_app *app)
{
    bool any = false;

    for (size_t i = 0; i < app->n_parts; i++) {
        if (app->parts[i].assigned) {
            if (!app->parts[i].wm.caught_up) {
                return false;
            }
            any = true;
        }
    }
    return any;
}

int rs_app_lead_stats(struct rs_app *app, struct rs_sla_stats *stats, struct rs_err *err)
{
    return rs_sla_stats(app->store, stats, err);
}

int rs_app_metric(struct rs_app *app, const char *name, const char *dims, enum rs_grain grain,
                  int64_t t_ms, struct rs_metric_value *out, struct rs_err *err)
{
    const struct rs_metric_def *def = rs_metric_by_name(name, strlen(name));
    uint32_t ids[1024];
    int64_t wm;
    size_t n = assigned_parts(app, ids, sizeof(ids) / sizeof(ids[0]), &wm);
    int rc;

    if (def == NULL) {
        return rs_err_set(err, RS_EINVAL, "no metric named '%s'", name);
    }
    rc = rs_store_read_begin(app->store, err);
    if (rc != 0) {
        return rc;
    }
    rc = rs_metrics_read(
        &app->metrics.cfg, app->store, def,
        (struct rs_str){ dims != NULL ? dims : "", dims != NULL ? strlen(dims) : 0 }, grain,
        rs_bucket_start(app->zone, grain, t_ms), n > 0 ? ids : NULL, n, wm, out, err);
    rs_store_read_end(app->store);
    return rc;
}

void rs_app_set_replay(struct rs_app *app, const struct rs_app_replay *replay)
{
    app->replay = replay;
}

int64_t rs_app_next_offset(const struct rs_app *app, int32_t p)
{
    return p >= 0 && (size_t)p < app->n_parts && app->parts[p].assigned
               ? app->parts[p].off.next_offset
               : -1;
}

void rs_app_throttle(struct rs_app *app, bool stop)
{
    if (app->consumer != NULL && !app->stopping) {
        rs_kafka_consumer_throttle(app->consumer, stop);
    }
}

uint64_t rs_app_outbox_pending(const struct rs_app *app)
{
    return rs_store_count(app->store, RS_DB_OUTBOX);
}

void rs_app_free(struct rs_app *app)
{
    if (app == NULL) {
        return;
    }
    rs_kafka_consumer_free(app->consumer);
    rs_kafka_producer_free(app->producer, FLUSH_ON_FREE_MS);
    rs_store_close(app->store);
    if (app->lock_fd >= 0) {
        (void)close(app->lock_fd); /* releases the directory */
    }
    rs_event_decoder_release(&app->decoder);
    rs_buf_release(&app->record);
    rs_buf_release(&app->payload);
    rs_buf_release(&app->mkey);
    rs_ledger_release(&app->ledger);
    rs_agg_free(app->agg);
    rs_calendar_free(app->calendar);
    rs_zone_free(app->zone);
    free(app->parts);
    free(app->parts_before);
    free(app->acked);
    free(app);
}

/* ---- the service ------------------------------------------------------------------- */

static void on_signal(uv_signal_t *s, int signum)
{
    struct rs_app *app = s->data;

    if (app->stopping) {
        /* Asked twice: stop now. Committed state and the outbox make this as safe as a crash. */
        RS_LOG_WARN("signal %d again: exiting now; the next start publishes what is left", signum);
        _exit(1);
    }
    RS_LOG_INFO("signal %d: finishing the batch, flushing and stopping", signum);
    rs_app_stop(app, NULL, NULL);
}

static void run_done(void *opaque, int status)
{
    *(int *)opaque = status;
}

int rs_app_run(const struct rs_config *cfg)
{
    uv_loop_t loop;
    struct rs_app *app = NULL;
    struct rs_err err;
    int status = 1;
    int rc;

    rs_err_clear(&err);
    if (uv_loop_init(&loop) != 0) {
        RS_LOG_ERROR("cannot create the event loop");
        return 1;
    }
    rc = rs_app_open(&app, &loop, cfg, NULL, &err);
    if (rc != 0) {
        RS_LOG_ERROR("%s", err.msg);
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
        return rc == RS_ECONFIG ? 2 : 1;
    }
    app->signals = true;
    app->handles_open += 2;
    (void)uv_signal_init(&loop, &app->sigint);
    (void)uv_signal_init(&loop, &app->sigterm);
    app->sigint.data = app->sigterm.data = app;
    (void)uv_signal_start(&app->sigint, on_signal, SIGINT);
    (void)uv_signal_start(&app->sigterm, on_signal, SIGTERM);
    app->done = run_done;
    app->done_opaque = &status;
    rc = rs_app_start(app, &err);
    if (rc != 0) {
        RS_LOG_ERROR("%s", err.msg);
        app->status = rc == RS_ECONFIG ? 2 : 1;
        rs_app_stop(app, NULL, NULL);
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    rs_app_free(app);
    if (uv_loop_close(&loop) != 0) {
        RS_LOG_WARN("event loop closed with handles still open");
    }
    RS_LOG_INFO("stopped status=%d", status);
    return status;
}
