#define RS_LOG_MODULE "kafka"
#include "kafka_io.h"

#include "log.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLOSE_POLL_MS 10 /* how often a closing consumer is served; close takes a few rounds */

struct rs_kafka_consumer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer queue; the main queue is forwarded to it */
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_idle_t idle; /* continues a drain cut short for fairness */
    uv_timer_t close_timer;
    int wake[2]; /* pipe: librdkafka writes [1], the loop watches [0] */
    struct rs_kafka_consumer_handlers h;
    void *opaque;
    char *topic;

    uint32_t batch_max;  /* batch.max_events: a batch's size while the consumer keeps up */
    uint32_t batch_cap;  /* the size the next batch may reach: grows while behind */
    uint32_t batch_grow; /* the most it grows to */
    uint64_t batch_max_ns;
    struct rs_msg *msgs;
    rd_kafka_message_t **raw;
    size_t n;

    bool stopped;   /* fatal error or handler asked to stop */
    bool throttled; /* rs_kafka_consumer_throttle(): not draining for now */
    bool closing;
    int handles_open;
    void (*done)(void *opaque);
    void *done_opaque;
};

struct rs_kafka_producer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    uv_poll_t poll;
    int wake[2];
    rs_kafka_delivered_cb *delivered;
    void (*on_fatal)(void *opaque, const char *reason);
    void *opaque;
    void (*done)(void *opaque);
    void *done_opaque;
};

struct rs_kafka_mock {
    rd_kafka_t *rk;
    char *bootstraps;
};

const char *rs_kafka_version(void)
{
    return rd_kafka_version_str();
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    enum rs_log_level l = level <= 3   ? RS_LOG_LEVEL_ERROR
                          : level == 4 ? RS_LOG_LEVEL_WARN
                          : level <= 6 ? RS_LOG_LEVEL_INFO
                                       : RS_LOG_LEVEL_DEBUG;

    if (rs_log_enabled(l)) {
        rs_log_write(l, RS_LOG_MODULE, "%s %s: %s", rd_kafka_name(rk), fac, buf);
    }
}

static int make_wake_pipe(int fds[2], struct rs_err *err)
{
    if (pipe(fds) != 0) {
        return rs_err_set(err, -errno, "cannot create wake-up pipe: %s", strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        /* librdkafka's write must never block its thread; our read must never block ours. */
        if (fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            int e = errno;

            close(fds[0]);
            close(fds[1]);
            return rs_err_set(err, -e, "cannot set up wake-up pipe: %s", strerror(e));
        }
    }
    return 0;
}

static void drain_wake_pipe(int fd)
{
    char buf[64];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

/*
 * Consumer-group properties that a `kafka.X` key (both roles) also hands to the producer,
 * where librdkafka ignores them with a CONFWARN line at every start. librdkafka has no call
 * that tells a property's scope, so the common ones are named here; kafka.producer.X still
 * passes anything through.
 */
static bool consumer_only(const char *name)
{
    static const char *const names[] = {
        "group.id",
        "group.instance.id",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "auto.offset.reset",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "isolation.level",
        "fetch.wait.max.ms",
        "fetch.min.bytes",
        "fetch.max.bytes",
        "queued.min.messages",
        "queued.max.messages.kbytes",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Apply cfg's kafka properties of `role` (and of both roles) to conf. */
static int apply_props(rd_kafka_conf_t *conf, const struct rs_config *cfg, enum rs_kafka_role role,
                       struct rs_err *err)
{
    char errstr[512];

    for (size_t i = 0; i < cfg->kafka_count; i++) {
        const struct rs_kafka_prop *p = &cfg->kafka[i];

        if (p->role != RS_KAFKA_BOTH && p->role != role) {
            continue;
        }
        if (p->role == RS_KAFKA_BOTH && role == RS_KAFKA_PRODUCER && consumer_only(p->name)) {
            continue;
        }
        if (rd_kafka_conf_set(conf, p->name, p->value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            return rs_err_set(err, RS_ECONFIG, "%s: kafka property '%s': %s",
                              p->origin != NULL ? p->origin : "config", p->name, errstr);
        }
    }
    return 0;
}

static int set_default(rd_kafka_conf_t *conf, const struct rs_config *cfg, enum rs_kafka_role role,
                       const char *name, const char *value, struct rs_err *err)
{
    char errstr[512];

    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if ((cfg->kafka[i].role == RS_KAFKA_BOTH || cfg->kafka[i].role == role) &&
            strcmp(cfg->kafka[i].name, name) == 0) {
            return 0; /* the user's value wins */
        }
    }
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return rs_err_set(err, RS_EKAFKA, "kafka property '%s': %s", name, errstr);
    }
    return 0;
}

/* Force a property the engine's guarantees depend on; a user value that disagrees is an error. */
static int set_required(rd_kafka_conf_t *conf, const struct rs_config *cfg, enum rs_kafka_role role,
                        const char *name, const char *value, struct rs_err *err)
{
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        const struct rs_kafka_prop *p = &cfg->kafka[i];

        if ((p->role == RS_KAFKA_BOTH || p->role == role) && strcmp(p->name, name) == 0 &&
            strcmp(p->value, value) != 0) {
            return rs_err_set(err, RS_ECONFIG,
                              "%s: kafka property '%s' must be '%s' for revstream's delivery "
                              "guarantees, got '%s'",
                              p->origin != NULL ? p->origin : "config", name, value, p->value);
        }
    }
    return set_default(conf, cfg, role, name, value, err);
}

/*
 * A non-fatal client error: librdkafka retries by itself. A transport error already has its
 * own librdkafka log line, so it is repeated only at debug; the rest are warnings.
 */
static void log_client_error(const char *client, int err, const char *reason)
{
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT) {
        RS_LOG_DEBUG("%s: %s", client, reason);
        return;
    }
    RS_LOG_WARN("%s: %s (%s)", client, reason, rd_kafka_err2name((rd_kafka_resp_err_t)err));
}

/* ---- consumer ---------------------------------------------------------------------- */

static void consumer_stop(struct rs_kafka_consumer *c)
{
    c->stopped = true;
    if (uv_is_active((uv_handle_t *)&c->poll)) {
        (void)uv_poll_stop(&c->poll);
    }
    (void)uv_idle_stop(&c->idle);
}

/* Hand the accumulated messages to the application, then free them. */
static void flush_batch(struct rs_kafka_consumer *c)
{
    size_t n = c->n;
    int rc = 0;

    if (n == 0) {
        return;
    }
    c->n = 0;
    if (!c->stopped) {
        rc = c->h.on_batch(c->opaque, c->msgs, n);
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_destroy(c->raw[i]);
    }
    if (rc != 0) {
        consumer_stop(c);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct rs_kafka_consumer *c = opaque;
    int32_t *ids = rs_xcalloc((size_t)parts->cnt + 1, sizeof(*ids));
    int64_t *offsets = rs_xcalloc((size_t)parts->cnt + 1, sizeof(*offsets));
    size_t n = (size_t)parts->cnt;
    rd_kafka_resp_err_t aerr;

    /* Whatever was polled belongs to the old assignment: it goes through first. */
    flush_batch(c);
    for (size_t i = 0; i < n; i++) {
        ids[i] = parts->elems[i].partition;
        offsets[i] = RS_KAFKA_OFFSET_DEFAULT;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        RS_LOG_INFO("assigned partitions=%zu topic=%s", n, n > 0 ? parts->elems[0].topic : "-");
        if (!c->stopped && !c->closing && n > 0 &&
            c->h.on_assign(c->opaque, parts->elems[0].topic, ids, offsets, n) != 0) {
            consumer_stop(c);
        }
        for (size_t i = 0; i < n; i++) {
            parts->elems[i].offset = offsets[i] == RS_KAFKA_OFFSET_DEFAULT ? RD_KAFKA_OFFSET_INVALID
                                     : offsets[i] == RS_KAFKA_OFFSET_BEGINNING
                                         ? RD_KAFKA_OFFSET_BEGINNING
                                         : offsets[i];
        }
        aerr = rd_kafka_assign(rk, parts);
    } else {
        RS_LOG_INFO("revoked partitions=%zu lost=%d", n, rd_kafka_assignment_lost(rk));
        if (n > 0) {
            c->h.on_revoke(c->opaque, parts->elems[0].topic, ids, n);
        }
        aerr = rd_kafka_assign(rk, NULL);
    }
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        RS_LOG_ERROR("assign failed: %s", rd_kafka_err2str(aerr));
    }
    free(ids);
    free(offsets);
}

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct rs_kafka_consumer *c = opaque;
    char buf[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        (void)rd_kafka_fatal_error(rk, buf, sizeof(buf));
        consumer_stop(c);
        c->h.on_fatal(c->opaque, buf);
        return;
    }
    log_client_error("consumer", err, reason);
}

static void on_consumer_idle(uv_idle_t *idle);

static void drain(struct rs_kafka_consumer *c)
{
    uint64_t start = uv_hrtime();

    while (!c->stopped && !c->throttled) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        struct rs_msg *msg;

        if (m == NULL) {
            flush_batch(c);
            c->batch_cap = c->batch_max;  /* caught up with the fetcher: small batches again */
            (void)uv_idle_stop(&c->idle); /* empty: the next element will write the fd */
            return;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            flush_batch(c); /* the end comes after what was before it */
            if (!c->stopped) {
                c->h.on_eof(c->opaque, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            RS_LOG_WARN("consume error topic=%s partition=%d: %s",
                        m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "-", m->partition,
                        rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (c->closing) {
            rd_kafka_message_destroy(m); /* past the revocation: not ours to apply */
            continue;
        }
        msg = &c->msgs[c->n];
        c->raw[c->n++] = m;
        msg->payload = m->payload;
        msg->len = m->len;
        msg->key = m->key;
        msg->key_len = m->key_len;
        msg->topic = rd_kafka_topic_name(m->rkt);
        msg->partition = m->partition;
        msg->offset = m->offset;
        msg->ts_ms = rd_kafka_message_timestamp(m, NULL);
        msg->headers_ = NULL;
        {
            rd_kafka_headers_t *hdrs = NULL;

            if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                msg->headers_ = hdrs;
            }
        }
        if (c->n >= c->batch_cap || uv_hrtime() - start >= c->batch_max_ns) {
            /* A full batch with more waiting: the consumer is behind, and larger batches
             * share each commit's work among more events until it catches up. */
            if (c->n >= c->batch_cap) {
                c->batch_cap = c->batch_cap > c->batch_grow / 2 ? c->batch_grow : 2 * c->batch_cap;
            }
            flush_batch(c);
            /* Cut short for fairness: the queue is not empty, so no wake-up will come. */
            if (!c->stopped && !c->throttled) {
                (void)uv_idle_start(&c->idle, on_consumer_idle);
            }
            return;
        }
    }
}

static void on_consumer_idle(uv_idle_t *idle)
{
    drain(idle->data);
}

static void on_consumer_wake(uv_poll_t *poll, int status, int events)
{
    struct rs_kafka_consumer *c = poll->data;

    (void)events;
    if (status < 0) {
        RS_LOG_WARN("wake-up poll failed: %s", uv_strerror(status));
    }
    drain_wake_pipe(c->wake[0]);
    drain(c);
}

int rs_msg_header(const struct rs_msg *msg, const char *name, struct rs_bytes *value)
{
    const void *v;
    size_t len;

    if (msg->headers_ == NULL ||
        rd_kafka_header_get_last(msg->headers_, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return RS_ENOTFOUND;
    }
    *value = (struct rs_bytes){ v, len };
    return 0;
}

/* The consumer's configuration: the user's properties plus what our guarantees need. */
static int consumer_conf(const struct rs_config *cfg, const char *group_id, rd_kafka_conf_t **out,
                         struct rs_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    int rc;

    rc = apply_props(conf, cfg, RS_KAFKA_CONSUMER, err);
    if (rc == 0 && group_id != NULL) {
        rc = rd_kafka_conf_set(conf, "group.id", group_id, errstr, sizeof(errstr)) ==
                     RD_KAFKA_CONF_OK
                 ? 0
                 : rs_err_set(err, RS_EKAFKA, "kafka property 'group.id': %s", errstr);
    }
    /* Our store, not Kafka, holds the offsets that matter; Kafka's are for lag monitoring. */
    if (rc == 0) {
        rc = set_required(conf, cfg, RS_KAFKA_CONSUMER, "enable.auto.offset.store", "false", err);
    }
    if (rc == 0) {
        rc = set_required(conf, cfg, RS_KAFKA_CONSUMER, "enable.partition.eof", "true", err);
    }
    if (rc == 0) {
        /* Eager assignors only: see the header. */
        rc = set_default(conf, cfg, RS_KAFKA_CONSUMER, "partition.assignment.strategy",
                         "range,roundrobin", err);
    }
    if (rc == 0) {
        rc = set_default(conf, cfg, RS_KAFKA_CONSUMER, "auto.offset.reset", "earliest", err);
    }
    if (rc == 0) {
        rc = set_required(conf, cfg, RS_KAFKA_CONSUMER, "log.queue", "true", err);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    *out = conf;
    return 0;
}

int rs_kafka_consumer_open(struct rs_kafka_consumer **out, uv_loop_t *loop,
                           const struct rs_config *cfg, const char *group_id,
                           const struct rs_kafka_consumer_handlers *handlers, void *opaque,
                           struct rs_err *err)
{
    struct rs_kafka_consumer *c;
    rd_kafka_conf_t *conf;
    char errstr[512];
    int rc;

    rc = consumer_conf(cfg, group_id, &conf, err);
    if (rc != 0) {
        return rc;
    }
    c = rs_xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->h = *handlers;
    c->opaque = opaque;
    c->batch_max = cfg->batch_max_events;
    c->batch_cap = c->batch_max;
    /* RS_KAFKA_BATCH_GROW times batch.max_events, at most RS_KAFKA_BATCH_GROW_MAX, never less
     * than batch.max_events. */
    c->batch_grow = c->batch_max < RS_KAFKA_BATCH_GROW_MAX / RS_KAFKA_BATCH_GROW
                        ? c->batch_max * RS_KAFKA_BATCH_GROW
                        : RS_KAFKA_BATCH_GROW_MAX;
    if (c->batch_grow < c->batch_max) {
        c->batch_grow = c->batch_max;
    }
    c->batch_max_ns = (uint64_t)cfg->batch_max_ms * 1000000u;
    c->msgs = rs_xcalloc(c->batch_grow, sizeof(*c->msgs));
    c->raw = rs_xcalloc(c->batch_grow, sizeof(*c->raw));
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        rc = rs_err_set(err, RS_EKAFKA, "cannot create consumer: %s", errstr);
        rd_kafka_conf_destroy(conf); /* conf is still ours */
        goto fail_free;
    }
    conf = NULL;                               /* rd_kafka_new() took it */
    (void)rd_kafka_set_log_queue(c->rk, NULL); /* logs to the main queue, served on the loop */
    (void)rd_kafka_poll_set_consumer(c->rk);   /* main queue forwarded to the consumer queue */
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    rc = make_wake_pipe(c->wake, err);
    if (rc != 0) {
        goto fail_rk;
    }
    rd_kafka_queue_io_event_enable(c->queue, c->wake[1], "1", 1);
    (void)uv_poll_init(loop, &c->poll, c->wake[0]);
    (void)uv_idle_init(loop, &c->idle);
    (void)uv_timer_init(loop, &c->close_timer);
    c->poll.data = c->idle.data = c->close_timer.data = c;
    c->handles_open = 3;
    *out = c;
    return 0;

fail_rk:
    rd_kafka_queue_destroy(c->queue);
    rd_kafka_destroy(c->rk);
fail_free:
    free(c->msgs);
    free(c->raw);
    free(c);
    return rc;
}

int rs_kafka_consumer_subscribe(struct rs_kafka_consumer *c, const char *topic, struct rs_err *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t kerr;

    (void)rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rs_err_set(err, RS_EKAFKA, "cannot subscribe to '%s': %s", topic,
                          rd_kafka_err2str(kerr));
    }
    free(c->topic);
    c->topic = rs_xstrdup(topic);
    (void)uv_poll_start(&c->poll, UV_READABLE, on_consumer_wake);
    /* Anything queued before the fd was watched gave its wake-up already: look now. */
    (void)uv_idle_start(&c->idle, on_consumer_idle);
    return 0;
}

int rs_kafka_consumer_assign(struct rs_kafka_consumer *c, const char *topic,
                             const int32_t *partitions, size_t n, struct rs_err *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n + 1);
    int64_t *offsets = rs_xcalloc(n + 1, sizeof(*offsets));
    rd_kafka_resp_err_t kerr;

    for (size_t i = 0; i < n; i++) {
        offsets[i] = RS_KAFKA_OFFSET_DEFAULT;
    }
    if (n > 0 && c->h.on_assign(c->opaque, topic, partitions, offsets, n) != 0) {
        free(offsets);
        rd_kafka_topic_partition_list_destroy(list);
        return rs_err_set(err, RS_EKAFKA, "assigning '%s': the application refused", topic);
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(list, topic, partitions[i])->offset =
            offsets[i] == RS_KAFKA_OFFSET_DEFAULT     ? RD_KAFKA_OFFSET_BEGINNING
            : offsets[i] == RS_KAFKA_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
                                                      : offsets[i];
    }
    free(offsets);
    kerr = rd_kafka_assign(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return rs_err_set(err, RS_EKAFKA, "cannot assign '%s': %s", topic, rd_kafka_err2str(kerr));
    }
    free(c->topic);
    c->topic = rs_xstrdup(topic);
    RS_LOG_INFO("assigned partitions=%zu topic=%s (no group)", n, topic);
    (void)uv_poll_start(&c->poll, UV_READABLE, on_consumer_wake);
    (void)uv_idle_start(&c->idle, on_consumer_idle);
    return 0;
}

void rs_kafka_consumer_throttle(struct rs_kafka_consumer *c, bool stop)
{
    if (c->stopped || c->closing || c->throttled == stop) {
        return;
    }
    c->throttled = stop;
    if (stop) {
        (void)uv_poll_stop(&c->poll);
        (void)uv_idle_stop(&c->idle);
    } else {
        (void)uv_poll_start(&c->poll, UV_READABLE, on_consumer_wake);
        /* The queue may hold messages whose wake-up came while stopped. */
        (void)uv_idle_start(&c->idle, on_consumer_idle);
    }
}

void rs_kafka_consumer_store_offset(struct rs_kafka_consumer *c, const char *topic,
                                    int32_t partition, int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = next_offset;
    (void)rd_kafka_offsets_store(c->rk, list); /* fails harmlessly for a revoked partition */
    rd_kafka_topic_partition_list_destroy(list);
}

int64_t rs_kafka_consumer_high_watermark(struct rs_kafka_consumer *c, const char *topic,
                                         int32_t partition)
{
    int64_t lo = -1, hi = -1;

    if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        return -1;
    }
    return hi;
}

static void consumer_handle_closed(uv_handle_t *h)
{
    struct rs_kafka_consumer *c = h->data;

    if (--c->handles_open == 0 && c->done != NULL) {
        c->done(c->done_opaque);
    }
}

static void finish_close(struct rs_kafka_consumer *c)
{
    (void)uv_timer_stop(&c->close_timer);
    rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
    uv_close((uv_handle_t *)&c->poll, consumer_handle_closed);
    uv_close((uv_handle_t *)&c->idle, consumer_handle_closed);
    uv_close((uv_handle_t *)&c->close_timer, consumer_handle_closed);
}

static void on_close_tick(uv_timer_t *t)
{
    struct rs_kafka_consumer *c = t->data;
    rd_kafka_message_t *m;

    drain_wake_pipe(c->wake[0]);
    while ((m = rd_kafka_consumer_poll(c->rk, 0)) != NULL) {
        rd_kafka_message_destroy(m);
    }
    if (rd_kafka_consumer_closed(c->rk)) {
        finish_close(c);
    }
}

void rs_kafka_consumer_close(struct rs_kafka_consumer *c, void (*done)(void *opaque), void *opaque)
{
    rd_kafka_error_t *error;

    c->done = done;
    c->done_opaque = opaque;
    flush_batch(c);
    c->closing = true;
    if (uv_is_active((uv_handle_t *)&c->poll)) {
        (void)uv_poll_stop(&c->poll);
    }
    (void)uv_idle_stop(&c->idle);
    /* Non-blocking close: revocation and leave happen as we serve the queue below. */
    error = rd_kafka_consumer_close_queue(c->rk, c->queue);
    if (error != NULL) {
        /* After a fatal error librdkafka never reports the consumer closed: finish now. */
        RS_LOG_WARN("consumer close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        finish_close(c);
        return;
    }
    (void)uv_timer_start(&c->close_timer, on_close_tick, 0, CLOSE_POLL_MS);
}

void rs_kafka_consumer_free(struct rs_kafka_consumer *c)
{
    if (c == NULL) {
        return;
    }
    rd_kafka_queue_destroy(c->queue);
    rd_kafka_destroy(c->rk);
    close(c->wake[0]);
    close(c->wake[1]);
    free(c->msgs);
    free(c->raw);
    free(c->topic);
    free(c);
}

int rs_kafka_query_offsets(const struct rs_config *cfg, const char *topic, int64_t at_ms,
                           int timeout_ms, size_t *n_out, int64_t **start, int64_t **end,
                           struct rs_err *err)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t kerr;
    char errstr[512];
    size_t n = 0;
    int rc;

    *start = *end = NULL;
    rc = consumer_conf(cfg, "revstream-query", &conf, err);
    if (rc != 0) {
        return rc;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return rs_err_set(err, RS_EKAFKA, "cannot create a client: %s", errstr);
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    kerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err != 0)) {
        kerr = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    }
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = rs_err_set(err, RS_EKAFKA, "topic '%s': %s", topic, rd_kafka_err2str(kerr));
        goto out;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        size_t id = (size_t)md->topics[0].partitions[i].id;

        n = id + 1 > n ? id + 1 : n;
    }
    *start = rs_xcalloc(n + 1, sizeof(**start));
    *end = rs_xcalloc(n + 1, sizeof(**end));
    list = rd_kafka_topic_partition_list_new((int)n + 1);
    for (size_t p = 0; p < n; p++) {
        int64_t lo, hi;

        kerr = rd_kafka_query_watermark_offsets(rk, topic, (int32_t)p, &lo, &hi, timeout_ms);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = rs_err_set(err, RS_EKAFKA, "topic '%s' partition %zu: %s", topic, p,
                            rd_kafka_err2str(kerr));
            goto out;
        }
        (*start)[p] = lo;
        (*end)[p] = hi;
        rd_kafka_topic_partition_list_add(list, topic, (int32_t)p)->offset = at_ms;
    }
    if (at_ms != INT64_MIN) {
        kerr = rd_kafka_offsets_for_times(rk, list, timeout_ms);
        for (int i = 0; kerr == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &list->elems[i];

            if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                kerr = tp->err;
            } else {
                /* -1: no record that late; the replay of that partition is empty. */
                (*start)[tp->partition] = tp->offset >= 0 ? tp->offset : (*end)[tp->partition];
            }
        }
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = rs_err_set(err, RS_EKAFKA, "offsets for time %lld on '%s': %s", (long long)at_ms,
                            topic, rd_kafka_err2str(kerr));
            goto out;
        }
    }
    *n_out = n;

out:
    if (rc != 0) {
        free(*start);
        free(*end);
        *start = *end = NULL;
    }
    if (list != NULL) {
        rd_kafka_topic_partition_list_destroy(list);
    }
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- producer ---------------------------------------------------------------------- */

/* Errors that sending the same bytes to the same topic again cannot cure. */
static bool is_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct rs_kafka_producer *p = opaque;

    (void)rk;
    p->delivered(p->opaque, (uint64_t)(uintptr_t)m->_private, m->err == RD_KAFKA_RESP_ERR_NO_ERROR,
                 !is_permanent(m->err), rd_kafka_err2str(m->err));
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct rs_kafka_producer *p = opaque;
    char buf[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* The idempotent producer cannot go on; outbox entries stay for the next start. */
        (void)rd_kafka_fatal_error(rk, buf, sizeof(buf));
        p->on_fatal(p->opaque, buf);
        return;
    }
    log_client_error("producer", err, reason);
}

static void on_producer_wake(uv_poll_t *poll, int status, int events)
{
    struct rs_kafka_producer *p = poll->data;

    (void)status;
    (void)events;
    drain_wake_pipe(p->wake[0]);
    /* Serve until empty: a queue left non-empty writes the fd no more. */
    while (rd_kafka_poll(p->rk, 0) > 0) {
    }
}

/* The producer's configuration: the user's properties plus idempotence. */
static int producer_conf(const struct rs_config *cfg, rd_kafka_conf_t **out, struct rs_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc;

    rc = apply_props(conf, cfg, RS_KAFKA_PRODUCER, err);
    if (rc == 0) {
        rc = set_required(conf, cfg, RS_KAFKA_PRODUCER, "enable.idempotence", "true", err);
    }
    if (rc == 0) {
        rc = set_default(conf, cfg, RS_KAFKA_PRODUCER, "linger.ms", "5", err);
    }
    if (rc == 0) {
        rc = set_required(conf, cfg, RS_KAFKA_PRODUCER, "log.queue", "true", err);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    *out = conf;
    return 0;
}

int rs_kafka_check_config(const struct rs_config *cfg, struct rs_err *err)
{
    rd_kafka_conf_t *conf;
    int rc = consumer_conf(cfg, NULL, &conf, err);

    if (rc != 0) {
        return rc == RS_EKAFKA ? RS_ECONFIG : rc;
    }
    rd_kafka_conf_destroy(conf);
    rc = producer_conf(cfg, &conf, err);
    if (rc != 0) {
        return rc == RS_EKAFKA ? RS_ECONFIG : rc;
    }
    rd_kafka_conf_destroy(conf);
    return 0;
}

int rs_kafka_producer_open(struct rs_kafka_producer **out, uv_loop_t *loop,
                           const struct rs_config *cfg, rs_kafka_delivered_cb *delivered,
                           void (*on_fatal)(void *opaque, const char *reason), void *opaque,
                           struct rs_err *err)
{
    struct rs_kafka_producer *p;
    rd_kafka_conf_t *conf;
    char errstr[512];
    int rc;

    rc = producer_conf(cfg, &conf, err);
    if (rc != 0) {
        return rc;
    }
    p = rs_xcalloc(1, sizeof(*p));
    p->delivered = delivered;
    p->on_fatal = on_fatal;
    p->opaque = opaque;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk == NULL) {
        rc = rs_err_set(err, RS_EKAFKA, "cannot create producer: %s", errstr);
        rd_kafka_conf_destroy(conf); /* conf is still ours */
        free(p);
        return rc;
    }
    conf = NULL; /* rd_kafka_new() took it */
    (void)rd_kafka_set_log_queue(p->rk, NULL);
    p->queue = rd_kafka_queue_get_main(p->rk);
    rc = make_wake_pipe(p->wake, err);
    if (rc != 0) {
        rd_kafka_queue_destroy(p->queue);
        rd_kafka_destroy(p->rk);
        free(p);
        return rc;
    }
    rd_kafka_queue_io_event_enable(p->queue, p->wake[1], "1", 1);
    (void)uv_poll_init(loop, &p->poll, p->wake[0]);
    p->poll.data = p;
    (void)uv_poll_start(&p->poll, UV_READABLE, on_producer_wake);
    /* Whatever rd_kafka_new() queued already (a CONFWARN log line, say) gave no wake-up, and
     * while it sits there no later element writes the fd: serve the queue empty now. */
    while (rd_kafka_poll(p->rk, 0) > 0) {
    }
    *out = p;
    return 0;
}

int rs_kafka_producer_send(struct rs_kafka_producer *p, const char *topic, struct rs_bytes key,
                           struct rs_bytes payload, const struct rs_kafka_header *headers,
                           size_t n_headers, int64_t ts_ms, uint64_t seq, struct rs_err *err)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_vu_t vu[7];
    rd_kafka_error_t *error;
    rd_kafka_resp_err_t kerr;

    if (n_headers > 0) {
        hdrs = rd_kafka_headers_new(n_headers);
        for (size_t i = 0; i < n_headers; i++) {
            (void)rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value.ptr,
                                      (ssize_t)headers[i].value.len);
        }
    }
    /* produceva, not the RD_KAFKA_V_* macros: those are GNU statement expressions. */
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = topic;
    vu[1].vtype = RD_KAFKA_VTYPE_KEY;
    vu[1].u.mem.ptr = (void *)(uintptr_t)key.ptr; /* copied: RD_KAFKA_MSG_F_COPY */
    vu[1].u.mem.size = key.len;
    vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[2].u.mem.ptr = (void *)(uintptr_t)payload.ptr;
    vu[2].u.mem.size = payload.len;
    vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[3].u.i = RD_KAFKA_MSG_F_COPY;
    vu[4].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vu[4].u.i64 = ts_ms > 0 ? ts_ms : 0; /* 0: librdkafka stamps the send time */
    vu[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[5].u.ptr = (void *)(uintptr_t)seq;
    vu[6].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[6].u.headers = hdrs;
    error = rd_kafka_produceva(p->rk, vu, hdrs != NULL ? 7 : 6);
    kerr = error != NULL ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (error != NULL) {
        rd_kafka_error_destroy(error);
    }
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hdrs != NULL) {
            rd_kafka_headers_destroy(hdrs); /* only taken on success; NULL is not allowed */
        }
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            return -ENOBUFS;
        }
        return rs_err_set(err, RS_EKAFKA, "cannot produce to '%s': %s", topic,
                          rd_kafka_err2str(kerr));
    }
    return 0;
}

size_t rs_kafka_producer_pending(struct rs_kafka_producer *p)
{
    int n = rd_kafka_outq_len(p->rk);

    return n > 0 ? (size_t)n : 0;
}

static void producer_handle_closed(uv_handle_t *h)
{
    struct rs_kafka_producer *p = h->data;

    if (p->done != NULL) {
        p->done(p->done_opaque);
    }
}

void rs_kafka_producer_close(struct rs_kafka_producer *p, void (*done)(void *opaque), void *opaque)
{
    p->done = done;
    p->done_opaque = opaque;
    while (rd_kafka_poll(p->rk, 0) > 0) {
    }
    rd_kafka_queue_io_event_enable(p->queue, -1, NULL, 0);
    uv_close((uv_handle_t *)&p->poll, producer_handle_closed);
}

void rs_kafka_producer_free(struct rs_kafka_producer *p, int flush_ms)
{
    if (p == NULL) {
        return;
    }
    if (rd_kafka_flush(p->rk, flush_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        RS_LOG_WARN("producer closed with %d messages undelivered; the outbox keeps them",
                    rd_kafka_outq_len(p->rk));
    }
    rd_kafka_queue_destroy(p->queue);
    rd_kafka_destroy(p->rk);
    close(p->wake[0]);
    close(p->wake[1]);
    free(p);
}

/* ---- mock cluster ------------------------------------------------------------------ */

int rs_kafka_mock_new(struct rs_kafka_mock **out, const char *const *topics, size_t n_topics,
                      int partitions, struct rs_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct rs_kafka_mock *m;
    rd_kafka_mock_cluster_t *mc;
    char errstr[512];

    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return rs_err_set(err, RS_EKAFKA, "mock cluster: %s", errstr);
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    m = rs_xcalloc(1, sizeof(*m));
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (m->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        free(m);
        return rs_err_set(err, RS_EKAFKA, "cannot start mock cluster: %s", errstr);
    }
    mc = rd_kafka_handle_mock_cluster(m->rk);
    for (size_t i = 0; i < n_topics; i++) {
        rd_kafka_resp_err_t kerr = rd_kafka_mock_topic_create(mc, topics[i], partitions, 1);

        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rs_kafka_mock_free(m);
            return rs_err_set(err, RS_EKAFKA, "mock cluster: cannot create topic '%s': %s",
                              topics[i], rd_kafka_err2str(kerr));
        }
    }
    m->bootstraps = rs_xstrdup(rd_kafka_mock_cluster_bootstraps(mc));
    *out = m;
    return 0;
}

const char *rs_kafka_mock_bootstraps(const struct rs_kafka_mock *m)
{
    return m->bootstraps;
}

void rs_kafka_mock_free(struct rs_kafka_mock *m)
{
    if (m == NULL) {
        return;
    }
    rd_kafka_destroy(m->rk);
    free(m->bootstraps);
    free(m);
}
