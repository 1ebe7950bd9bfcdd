#define RS_LOG_MODULE "send"
#include "send.h"

#include "event.h"
#include "kafka_io.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define NESTING_MAX 16 /* events are flat; deeper JSON is a mistake, not data */

struct outgoing {
    struct rs_buf bytes;
    char *key;
    int64_t ts_ms;
};

struct sender {
    struct outgoing *msgs;
    size_t n, cap;
    uint64_t delivered, failed;
    char failure[256];
};

/* JSON value -> msgpack, recursively. Returns 0, or RS_EDECODE with err set. */
static int to_msgpack(const json_t *v, struct rs_buf *out, int depth, const char *where,
                      struct rs_err *err)
{
    const char *key;
    json_t *item;
    size_t i;

    if (depth > NESTING_MAX) {
        return rs_err_set(err, RS_EDECODE, "%s: nested deeper than %d levels", where, NESTING_MAX);
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rs_event_write_map(out, (uint32_t)json_object_size(v));
        json_object_foreach((json_t *)(uintptr_t)v, key, item)
        {
            int rc;

            rs_event_write_str(out, key, strlen(key));
            rc = to_msgpack(item, out, depth + 1, where, err);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    case JSON_ARRAY:
        rs_event_write_array(out, (uint32_t)json_array_size(v));
        json_array_foreach(v, i, item)
        {
            int rc = to_msgpack(item, out, depth + 1, where, err);

            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    case JSON_STRING:
        rs_event_write_str(out, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        rs_event_write_int(out, (int64_t)json_integer_value(v));
        return 0;
    case JSON_REAL:
        rs_event_write_double(out, json_real_value(v));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        rs_event_write_bool(out, json_is_true(v));
        return 0;
    case JSON_NULL:
        rs_event_write_nil(out);
        return 0;
    }
    return rs_err_set(err, RS_EDECODE, "%s: unsupported JSON value", where);
}

/*
 * The partition key of DESIGN.md: the account, or the lead for a lead with no account. Other
 * events with no account fall back to their account_id or, lacking one, the id of their entity
 * (opportunity, rep), so that one entity's events at least stay in one partition.
 * Subscriptions and invoices always have an account (account_id defaults to it). The company
 * level revenue events key on what orders them: a spend on its spend_id (else the event id:
 * spend is additive, so its order does not matter), a forecast on its forecast_id, financials
 * on their period (the latest report of a period wins, so its reports must stay in order) and
 * an fx.rate on its currency (one currency's rates in order).
 */
static char *key_of(const struct rs_event *ev)
{
    struct rs_str k = ev->account;

    if (!rs_str_is_set(k)) {
        switch (ev->type) {
        case RS_EV_LEAD_CREATED:
            k = ev->u.lead_created.lead_id;
            break;
        case RS_EV_LEAD_TOUCHED:
            k = ev->u.lead_touched.lead_id;
            break;
        case RS_EV_LEAD_DISQUALIFIED:
            k = ev->u.lead_disqualified.lead_id;
            break;
        case RS_EV_LEAD_CONVERTED:
            k = ev->u.lead_converted.account_id;
            break;
        case RS_EV_LEAD_MERGED:
            k = ev->u.lead_merged.into_lead_id;
            break;
        case RS_EV_LEAD_ASSIGNED:
            k = ev->u.lead_assigned.lead_id;
            break;
        case RS_EV_LEAD_QUALIFIED:
            k = ev->u.lead_qualified.lead_id;
            break;
        case RS_EV_LEAD_RECYCLED:
        case RS_EV_LEAD_REOPENED:
            k = ev->u.lead_lifecycle.lead_id;
            break;
        case RS_EV_OPP_CREATED:
            k = ev->u.opp_created.account_id;
            break;
        case RS_EV_OPP_STAGE_CHANGED:
            k = ev->u.opp_stage_changed.opportunity_id;
            break;
        case RS_EV_OPP_CLOSED:
            k = ev->u.opp_closed.opportunity_id;
            break;
        case RS_EV_OPP_REOPENED:
            k = ev->u.opp_reopened.opportunity_id;
            break;
        case RS_EV_HANDOFF_STARTED:
        case RS_EV_HANDOFF_COMPLETED:
            k = ev->u.handoff.account_id;
            break;
        case RS_EV_ONBOARDING_MILESTONE:
            k = ev->u.onboarding_milestone.account_id;
            break;
        case RS_EV_ONBOARDING_PAUSED:
        case RS_EV_ONBOARDING_RESUMED:
            k = ev->u.onboarding_pause.account_id;
            break;
        case RS_EV_REP_ONBOARDED:
            k = ev->u.rep_onboarded.rep_id;
            break;
        case RS_EV_REP_QUOTA_SET:
            k = ev->u.rep_quota_set.rep_id;
            break;
        case RS_EV_REP_TERMINATED:
            k = ev->u.rep_terminated.rep_id;
            break;
        case RS_EV_SUB_STARTED:
        case RS_EV_SUB_RENEWED:
        case RS_EV_SUB_EXPANDED:
        case RS_EV_SUB_CONTRACTED:
        case RS_EV_SUB_CHURNED:
        case RS_EV_SUB_REACTIVATED:
            k = ev->u.subscription.account_id;
            break;
        case RS_EV_INVOICE_PAID:
        case RS_EV_INVOICE_REFUNDED:
        case RS_EV_INVOICE_PAYMENT_FAILED:
            k = ev->u.invoice.account_id;
            break;
        case RS_EV_SPEND_RECORDED:
            k = rs_str_is_set(ev->u.spend.spend_id) ? ev->u.spend.spend_id : ev->id;
            break;
        case RS_EV_FORECAST_SUBMITTED:
            k = ev->u.forecast.forecast_id;
            break;
        case RS_EV_FINANCIALS_REPORTED:
            k = ev->u.financials.period.text;
            break;
        case RS_EV_FX_RATE:
            k = ev->u.fx_rate.currency;
            break;
        case RS_EV__COUNT:
            break;
        }
    }
    return rs_xstrndup(k.ptr != NULL ? k.ptr : "", k.len);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read, convert and check every line; nothing is sent unless all of them are good. */
static int load(struct sender *s, const char *path, size_t max_bytes, struct rs_err *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    struct rs_event_decoder dec;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    int64_t now = wall_ms();
    int rc = 0;

    if (f == NULL) {
        return rs_err_set(err, -errno, "cannot read '%s': %s", path, strerror(errno));
    }
    rs_event_decoder_init(&dec, max_bytes);
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        char where[300];
        json_error_t jerr;
        json_t *root;
        struct outgoing *m;
        struct rs_event ev;
        enum rs_event_fault fault;
        struct rs_err derr;

        lineno++;
        (void)snprintf(where, sizeof(where), "%s:%lu", name, lineno);
        if (strspn(line, " \t\r\n") == (size_t)len) {
            continue;
        }
        root = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL) {
            rc = rs_err_set(err, RS_EDECODE, "%s: not JSON: %s (column %d)", where, jerr.text,
                            jerr.column);
            break;
        }
        if (!json_is_object(root)) {
            json_decref(root);
            rc = rs_err_set(err, RS_EDECODE, "%s: expected a JSON object", where);
            break;
        }
        if (s->n == s->cap) {
            s->cap = s->cap == 0 ? 256 : s->cap * 2;
            s->msgs = rs_xrealloc(s->msgs, s->cap * sizeof(*s->msgs));
        }
        m = &s->msgs[s->n];
        rs_buf_init(&m->bytes);
        m->key = NULL;
        rc = to_msgpack(root, &m->bytes, 0, where, err);
        json_decref(root);
        if (rc == 0 &&
            rs_event_decode(&dec, m->bytes.data, m->bytes.len, &ev, &fault, &derr) != 0) {
            rc = rs_err_set(err, RS_EDECODE, "%s: %s (%s)", where, derr.msg,
                            rs_event_fault_name(fault));
        }
        if (rc != 0) {
            rs_buf_release(&m->bytes);
            break;
        }
        m->key = key_of(&ev);
        /* Record time = event time, which replay by time uses; brokers refuse the future. */
        m->ts_ms = ev.ts_ms <= now ? ev.ts_ms : 0;
        s->n++;
    }
    if (rc == 0 && ferror(f)) {
        rc = rs_err_set(err, RS_EIO, "cannot read '%s'", path);
    }
    free(line);
    rs_event_decoder_release(&dec);
    if (f != stdin) {
        (void)fclose(f);
    }
    return rc;
}

static void on_delivered(void *opaque, uint64_t seq, bool ok, bool retriable, const char *reason)
{
    struct sender *s = opaque;

    (void)seq;
    (void)retriable;
    if (ok) {
        s->delivered++;
    } else {
        s->failed++;
        (void)snprintf(s->failure, sizeof(s->failure), "%s", reason);
    }
}

static void on_fatal(void *opaque, const char *reason)
{
    struct sender *s = opaque;

    s->failed++;
    (void)snprintf(s->failure, sizeof(s->failure), "%s", reason);
}

static void closed(void *opaque)
{
    (void)opaque;
}

int rs_send_run(const struct rs_config *cfg, const char *topic, const char *path,
                struct rs_err *err)
{
    struct sender s;
    struct rs_kafka_producer *p = NULL;
    uv_loop_t loop;
    int rc;

    memset(&s, 0, sizeof(s));
    if (topic == NULL) {
        topic = cfg->topic_events;
    }
    rc = load(&s, path, cfg->event_max_bytes, err);
    if (rc == 0) {
        (void)uv_loop_init(&loop);
        rc = rs_kafka_producer_open(&p, &loop, cfg, on_delivered, on_fatal, &s, err);
        for (size_t i = 0; rc == 0 && i < s.n; i++) {
            struct outgoing *m = &s.msgs[i];

            rc = rs_kafka_producer_send(p, topic, (struct rs_bytes){ m->key, strlen(m->key) },
                                        (struct rs_bytes){ m->bytes.data, m->bytes.len }, NULL, 0,
                                        m->ts_ms, i, err);
            if (rc == -ENOBUFS) {
                (void)uv_run(&loop, UV_RUN_ONCE); /* wait for reports to make room */
                i--;
                rc = 0;
            }
        }
        while (p != NULL && s.delivered + s.failed < s.n && s.failed == 0) {
            (void)uv_run(&loop, UV_RUN_ONCE);
        }
        if (rc == 0 && s.failed > 0) {
            rc = rs_err_set(err, RS_EKAFKA, "%" PRIu64 " of %zu events not delivered to '%s': %s",
                            s.failed, s.n, topic, s.failure);
        }
        if (p != NULL) {
            rs_kafka_producer_close(p, closed, NULL);
            (void)uv_run(&loop, UV_RUN_DEFAULT);
            rs_kafka_producer_free(p, 5000);
        }
        (void)uv_loop_close(&loop);
    }
    if (rc == 0) {
        printf("sent %zu events to '%s'\n", s.n, topic);
    }
    for (size_t i = 0; i < s.n; i++) {
        rs_buf_release(&s.msgs[i].bytes);
        free(s.msgs[i].key);
    }
    free(s.msgs);
    return rc;
}
