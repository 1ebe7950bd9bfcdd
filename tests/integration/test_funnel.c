/*
 * test_funnel.c - the funnel, pipeline and handoff metrics and SLA-02..07 end to end against a
 * real Kafka broker, through the paths a user takes: events written as JSON lines and loaded
 * with `revstream send`, `revstream run -c FILE`, then the values read back three ways: the
 * HTTP JSON API, the metrics topic (per-partition parts summed as README says), and
 * `revstream inspect` on the stopped engine's state. Alerts are read from the alerts topic.
 *
 * The events are the worked examples of METRICS.md (M11, M12, M13, M14, M15, M16, M20) placed
 * on one 2027 timeline, so every expected value below is the specification's own number or
 * one derived from the timeline by hand in the comment next to it.
 *
 * Needs RS_TEST_BROKERS (scripts/test.sh starts deploy/kafka.sh and sets it); skips without.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "event.h"
#include "http_get.h"
#include "tmpdir.h"

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS 3
#define MIN        (60 * INT64_C(1000))
#define HOUR       (60 * MIN)
#define DAY        (24 * HOUR)
#define USD(x)     ((int64_t)(x)*100)

struct env {
    const char *brokers;
    char *dir;
    char *events, *alerts, *dlq, *metrics, *group;
    char config[4096];
    char state[4096];
    char input[4096];
    uint16_t port;
    pid_t engine;
    size_t n_lines; /* events queued so far: their ids */
};

/* The JSON lines queued for `revstream send` (see line()). */
struct queued_line;
static struct queued_line *queue;
static size_t queue_n, queue_cap;

static int env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));

    e->brokers = rs_tb_brokers();
    e->dir = rs_test_tmpdir_new();
    e->events = rs_tb_unique("events");
    e->alerts = rs_tb_unique("alerts");
    e->dlq = rs_tb_unique("dlq");
    e->metrics = rs_tb_unique("metrics");
    e->group = rs_tb_unique("group");
    (void)snprintf(e->config, sizeof(e->config), "%s/revstream.conf", e->dir);
    (void)snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
    (void)snprintf(e->input, sizeof(e->input), "%s/events.jsonl", e->dir);
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *e = *state;

    if (e->engine > 0) {
        (void)kill(e->engine, SIGKILL);
        (void)rs_tb_wait(e->engine);
    }
    free(queue);
    queue = NULL;
    queue_n = queue_cap = 0;
    rs_test_tmpdir_remove(e->dir);
    free(e->events);
    free(e->alerts);
    free(e->dlq);
    free(e->metrics);
    free(e->group);
    free(e);
    return 0;
}

static void need_broker(struct env *e)
{
    if (e->brokers == NULL) {
        skip();
    }
    rs_tb_create_topic(e->brokers, e->events, PARTITIONS);
    rs_tb_create_topic(e->brokers, e->alerts, PARTITIONS);
    rs_tb_create_topic(e->brokers, e->dlq, 1);
    rs_tb_create_topic(e->brokers, e->metrics, PARTITIONS);
}

static void write_config(struct env *e, const char *extra)
{
    FILE *f = fopen(e->config, "w");

    e->port = rs_test_free_port();
    assert_true(e->port != 0);
    assert_non_null(f);
    fprintf(f,
            "kafka.bootstrap.servers = %s\n"
            "kafka.group.id = %s\n"
            "kafka.group.instance.id = %s-1\n"
            "kafka.session.timeout.ms = 6000\n"
            "topic.events = %s\n"
            "topic.alerts = %s\n"
            "topic.dlq = %s\n"
            "topic.metrics = %s\n"
            "http.bind = 127.0.0.1:%u\n"
            "state.dir = %s\n"
            "log.level = warn\n"
            "%s",
            e->brokers, e->group, e->group, e->events, e->alerts, e->dlq, e->metrics,
            (unsigned)e->port, e->state, extra);
    assert_int_equal(fclose(f), 0);
}

static pid_t start_engine(struct env *e)
{
    const char *args[] = { RS_BINARY, "run", "-c", e->config, NULL };

    e->engine = rs_tb_spawn(args, NULL);
    return e->engine;
}

static int stop_engine(struct env *e)
{
    int rc;

    assert_int_equal(kill(e->engine, SIGTERM), 0);
    rc = rs_tb_wait(e->engine);
    e->engine = 0;
    return rc;
}

/* ---- time ------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), independent of the engine. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return days_from_civil(y, mo, d) * DAY + h * HOUR + mi * MIN;
}

/* ---- events as JSON lines, loaded with `revstream send` ----------------------------- */

/*
 * Lines are queued and written sorted by event time (ties keep their order), as sources
 * deliver them: each partition then sees its events in time order, so what fires when is
 * the timeline's, not the order the test lists them in.
 */
struct queued_line {
    int64_t ts;
    size_t order;
    char text[768];
};

__attribute__((format(printf, 4, 5))) static void line(struct env *e, const char *type, int64_t ts,
                                                       const char *fmt, ...)
{
    struct queued_line *q;
    va_list ap;
    int n;

    if (queue_n == queue_cap) {
        queue_cap = queue_cap == 0 ? 256 : queue_cap * 2;
        queue = realloc(queue, queue_cap * sizeof(*queue));
    }
    q = &queue[queue_n];
    q->ts = ts;
    q->order = queue_n++;
    n = snprintf(q->text, sizeof(q->text), "{\"type\":\"%s\",\"id\":\"e%zu\",\"ts\":%lld,", type,
                 ++e->n_lines, (long long)ts);
    va_start(ap, fmt);
    n += vsnprintf(q->text + n, sizeof(q->text) - (size_t)n, fmt, ap);
    va_end(ap);
    assert_true((size_t)n + 2 < sizeof(q->text));
    strcat(q->text, "}");
}

static int cmp_line(const void *a, const void *b)
{
    const struct queued_line *x = a, *y = b;

    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order);
}

static void send_lines(struct env *e)
{
    const char *args[] = { RS_BINARY, "send", "-c", e->config, e->input, NULL };
    FILE *f = fopen(e->input, "w");

    assert_non_null(f);
    qsort(queue, queue_n, sizeof(*queue), cmp_line);
    for (size_t i = 0; i < queue_n; i++) {
        fprintf(f, "%s\n", queue[i].text);
    }
    assert_int_equal(fclose(f), 0);
    queue_n = 0;
    assert_int_equal(rs_tb_run(args, NULL), 0);
}

/* One lead.created per partition at `ts`: every partition's watermark passes what is before. */
static void send_sentinels(struct env *e, int64_t ts)
{
    rd_kafka_t *p = rs_tb_producer_new(e->brokers);
    struct rs_buf b;

    rs_buf_init(&b);
    for (int i = 0; i < PARTITIONS; i++) {
        struct rs_event ev;
        char id[32];

        memset(&ev, 0, sizeof(ev));
        (void)snprintf(id, sizeof(id), "sentinel-%d", i);
        ev.type = RS_EV_LEAD_CREATED;
        ev.id = (struct rs_str){ id, strlen(id) };
        ev.ts_ms = ts;
        ev.u.lead_created.lead_id = ev.id;
        ev.u.lead_created.channel = (struct rs_str){ "test", 4 };
        ev.u.lead_created.intent_tier = RS_TIER_LOW;
        ev.u.lead_created.segment = (struct rs_str){ "smb", 3 };
        rs_buf_reset(&b);
        rs_event_encode(&ev, &b);
        rs_tb_produce_to(p, e->events, i, b.data, b.len);
    }
    rs_buf_release(&b);
    rs_tb_flush(p);
    rd_kafka_destroy(p);
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static json_t *get_json(struct env *e, const char *path, int want_status)
{
    char *body = NULL;
    json_error_t jerr;
    json_t *v;
    int status = rs_test_http_get(e->port, path, &body, 5000);

    if (status != want_status) {
        print_error("GET %s: status %d, body %s\n", path, status, body != NULL ? body : "");
    }
    assert_int_equal(status, want_status);
    v = json_loads(body, 0, &jerr);
    if (v == NULL) {
        print_error("GET %s: not JSON: %s\n", path, body);
    }
    assert_non_null(v);
    free(body);
    return v;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_number(v)) {
        char *text = json_dumps(o, JSON_COMPACT);

        print_error("no number '%s' in %s\n", key, text);
        free(text);
    }
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-6 * (fabs(want) > 1 ? fabs(want) : 1)) {
        print_error("got %.9g, want %.9g\n", got, want);
    }
    assert_true(fabs(got - want) <= 1e-6 * (fabs(want) > 1 ? fabs(want) : 1));
}

/* GET one metric value. */
static json_t *metric(struct env *e, const char *query)
{
    char path[512];

    (void)snprintf(path, sizeof(path), "/api/metric?%s", query);
    return get_json(e, path, 200);
}

/* Wait until the engine serves and every partition applied its sentinel (made on `day`). */
static void wait_applied(struct env *e, const char *day)
{
    char query[128];
    int64_t deadline = rs_tb_now_ms() + 60000;

    (void)snprintf(query, sizeof(query), "/api/metric?name=speed_to_lead&grain=day&bucket=%s", day);
    for (;;) {
        char *body = NULL;
        int status = rs_test_http_get(e->port, query, &body, 2000);
        json_t *v = status == 200 ? json_loads(body, 0, NULL) : NULL;
        bool done = v != NULL && json_number_value(json_object_get(v, "count")) == PARTITIONS;

        json_decref(v);
        free(body);
        if (done) {
            return;
        }
        assert_true(rs_tb_now_ms() < deadline);
        rs_tb_sleep_ms(200);
    }
}

/* ---- topics -------------------------------------------------------------------------- */

/* The latest message of every metric key (a compacted topic's view), parts summed. */
struct part_sum {
    char key[256]; /* metric|dims|grain|bucket, the partition cut off */
    int64_t count;
    int64_t inputs[8];
    int parts;
};

struct metric_msgs {
    char (*keys)[320];
    int64_t (*inputs)[9]; /* count, then n[0..7] */
    size_t n, cap;
};

static const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];

        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0) {
            return &kv->val;
        }
    }
    return NULL;
}

static int64_t mp_int(const msgpack_object *o)
{
    if (o == NULL) {
        return 0;
    }
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : (int64_t)o->via.u64;
}

static void on_metric_msg(void *opaque, const rd_kafka_message_t *m)
{
    struct metric_msgs *mm = opaque;
    msgpack_unpacked u;
    size_t i;
    char key[320];
    const msgpack_object *inputs;

    (void)snprintf(key, sizeof(key), "%.*s", (int)m->key_len, (const char *)m->key);
    for (i = 0; i < mm->n && strcmp(mm->keys[i], key) != 0; i++) {
    }
    if (i == mm->n) {
        if (mm->n == mm->cap) {
            mm->cap = mm->cap == 0 ? 1024 : mm->cap * 2;
            mm->keys = realloc(mm->keys, mm->cap * sizeof(*mm->keys));
            mm->inputs = realloc(mm->inputs, mm->cap * sizeof(*mm->inputs));
        }
        (void)snprintf(mm->keys[mm->n++], sizeof(mm->keys[0]), "%s", key);
    }
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, m->payload, m->len, NULL), MSGPACK_UNPACK_SUCCESS);
    mm->inputs[i][0] = mp_int(mp_get(&u.data, "count"));
    inputs = mp_get(&u.data, "inputs");
    assert_non_null(inputs);
    assert_int_equal(inputs->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(inputs->via.array.size, 8);
    for (uint32_t k = 0; k < 8; k++) {
        mm->inputs[i][k + 1] = mp_int(&inputs->via.array.ptr[k]);
    }
    msgpack_unpacked_destroy(&u);
}

/* Sum the latest part of each partition for "metric|dims|grain|bucket". */
static struct part_sum sum_parts(const struct metric_msgs *mm, const char *prefix)
{
    struct part_sum s;
    size_t len = strlen(prefix);

    memset(&s, 0, sizeof(s));
    (void)snprintf(s.key, sizeof(s.key), "%s", prefix);
    for (size_t i = 0; i < mm->n; i++) {
        if (strncmp(mm->keys[i], prefix, len) == 0 && strncmp(mm->keys[i] + len, "|p", 2) == 0) {
            s.count += mm->inputs[i][0];
            for (int k = 0; k < 8; k++) {
                s.inputs[k] += mm->inputs[i][k + 1];
            }
            s.parts++;
        }
    }
    return s;
}

struct alert_set {
    struct rs_event_decoder dec;
    char (*lines)[256]; /* "SLA-0x|entity|type|level" */
    size_t n, cap;
};

static void on_alert_msg(void *opaque, const rd_kafka_message_t *m)
{
    struct alert_set *as = opaque;
    struct rs_alert_view a;
    struct rs_err err;

    assert_int_equal(rs_alert_view_decode(&as->dec, m->payload, m->len, &a, &err), 0);
    if (as->n == as->cap) {
        as->cap = as->cap == 0 ? 1024 : as->cap * 2;
        as->lines = realloc(as->lines, as->cap * sizeof(*as->lines));
    }
    (void)snprintf(as->lines[as->n++], sizeof(as->lines[0]), "%.6s|%.*s|%s|%.*s", a.sla_type.ptr,
                   (int)a.entity_id.len, a.entity_id.ptr, rs_alert_kind_name(a.kind),
                   (int)a.level.len, a.level.ptr);
}

static bool has_alert(const struct alert_set *as, const char *want)
{
    for (size_t i = 0; i < as->n; i++) {
        if (strcmp(as->lines[i], want) == 0) {
            return true;
        }
    }
    return false;
}

static void assert_alert(const struct alert_set *as, const char *want, bool present)
{
    if (has_alert(as, want) != present) {
        print_error("alert %s: expected %s among %zu alerts\n", want,
                    present ? "present" : "absent", as->n);
    }
    assert_true(has_alert(as, want) == present);
}

/* ---- the timeline -------------------------------------------------------------------- */

static const char *account_of(int i)
{
    static const char *const accounts[] = { "acct-1", "acct-2", "acct-3", "acct-4", "acct-5" };

    return accounts[i % 5];
}

static void lead_events(struct env *e)
{
    /* M11: ten high-intent leads on Monday 2027-03-01 10:00 with TTFA in minutes. */
    static const int ttfa[10] = { 2, 3, 4, 4, 5, 7, 9, 15, 30, 120 };
    int64_t created = utc(2027, 3, 1, 10, 0);

    for (int i = 0; i < 10; i++) {
        line(e, "lead.created", created,
             "\"account\":\"%s\",\"lead_id\":\"L%02d\",\"channel\":\"demo_request\","
             "\"intent_tier\":\"high\",\"segment\":\"smb\",\"owner_id\":\"R1\"",
             account_of(i), i + 1);
    }
    for (int i = 0; i < 10; i++) {
        line(e, "lead.touched", created + ttfa[i] * MIN,
             "\"account\":\"%s\",\"lead_id\":\"L%02d\",\"rep_id\":\"R1\",\"actor_type\":\"human\","
             "\"channel\":\"call\",\"direction\":\"outbound\",\"connected\":true",
             account_of(i), i + 1);
    }
    /* M12: L01 MQL then SQL, L02 MQL only (SLA-02 breaches), L03 straight to SQL. */
    line(e, "lead.qualified", utc(2027, 3, 1, 11, 0),
         "\"account\":\"acct-1\",\"lead_id\":\"L01\",\"stage\":\"MQL\"");
    line(e, "lead.qualified", utc(2027, 3, 1, 11, 0),
         "\"account\":\"acct-2\",\"lead_id\":\"L02\",\"stage\":\"MQL\"");
    line(e, "lead.qualified", utc(2027, 3, 1, 12, 0),
         "\"account\":\"acct-1\",\"lead_id\":\"L01\",\"stage\":\"SQL\"");
    line(e, "lead.qualified", utc(2027, 3, 1, 12, 0),
         "\"account\":\"acct-3\",\"lead_id\":\"L03\",\"stage\":\"SQL\"");
    /* M11 business time: created Friday 17:58, called Monday 09:02. */
    line(e, "lead.created", utc(2027, 3, 5, 17, 58),
         "\"account\":\"acct-4\",\"lead_id\":\"L11\",\"channel\":\"webinar\","
         "\"intent_tier\":\"mql\",\"segment\":\"smb\",\"owner_id\":\"R1\"");
    line(e, "lead.touched", utc(2027, 3, 8, 9, 2),
         "\"account\":\"acct-4\",\"lead_id\":\"L11\",\"rep_id\":\"R1\",\"actor_type\":\"human\","
         "\"channel\":\"call\",\"direction\":\"outbound\",\"connected\":true");
}

static void opp(struct env *e, const char *id, const char *account, const char *lead,
                const char *owner, const char *team, const char *stage, int64_t created,
                int64_t closed, bool won, int64_t amount)
{
    char lead_field[64] = "";

    if (lead != NULL) {
        (void)snprintf(lead_field, sizeof(lead_field), "\"lead_id\":\"%s\",", lead);
    }
    line(e, "opportunity.created", created,
         "\"account\":\"%s\",\"opportunity_id\":\"%s\",%s\"owner_id\":\"%s\","
         "\"deal_type\":\"new\",\"amount_minor\":%lld,\"currency\":\"USD\",\"stage\":\"%s\","
         "\"team_id\":\"%s\",\"segment\":\"smb\"",
         account, id, lead_field, owner, (long long)amount, stage, team);
    if (closed != 0) {
        line(e, "opportunity.closed", closed,
             "\"account\":\"%s\",\"opportunity_id\":\"%s\",\"outcome\":\"%s\","
             "\"amount_minor\":%lld,\"currency\":\"USD\"",
             account, id, won ? "won" : "lost", (long long)amount);
    }
}

static void handoff(struct env *e, const char *account, const char *opp_id, int64_t ts,
                    bool with_csm)
{
    line(e, "handoff.completed", ts,
         "\"account\":\"%s\",\"opportunity_id\":\"%s\",\"ae_id\":\"R1\",%s"
         "\"checklist_complete\":%s,\"segment\":\"smb\"",
         account, opp_id, with_csm ? "\"csm_id\":\"CSM1\"," : "", with_csm ? "true" : "false");
}

/*
 * All events, in event-time order per key (send keeps the file's order). Lines are grouped
 * by subject for reading; every key's events are in time order within its group, and no two
 * groups share a key except where the later group's events are later.
 */
static void timeline(struct env *e)
{
    /* Reps: R1 (M15, team-y) from 2027-01-15 at $50k a month; RA..RD ramped long ago and RE
     * new in May with a 50%, 50% ramp, all at $150k (M16, team-x). */
    line(e, "rep.onboarded", utc(2027, 1, 15, 9, 0),
         "\"rep_id\":\"R1\",\"start_date\":%lld,\"role\":\"ae\",\"team_id\":\"team-y\"",
         (long long)utc(2027, 1, 15, 0, 0));
    line(e, "rep.quota_set", utc(2027, 1, 15, 9, 1),
         "\"rep_id\":\"R1\",\"period\":\"2027-01\",\"quota_minor\":%lld,\"currency\":\"USD\"",
         (long long)USD(50000));
    for (char r = 'A'; r <= 'E'; r++) {
        bool ramping = r == 'E';

        line(e, "rep.onboarded", utc(2027, 1, 15, 10, 0),
             "\"rep_id\":\"R%c\",\"start_date\":%lld,\"role\":\"ae\",\"team_id\":\"team-x\"", r,
             (long long)(ramping ? utc(2027, 5, 1, 0, 0) : utc(2026, 1, 1, 0, 0)));
        line(e, "rep.quota_set", utc(2027, 1, 15, 10, 1),
             "\"rep_id\":\"R%c\",\"period\":\"%s\",\"quota_minor\":%lld,\"currency\":\"USD\"%s", r,
             ramping ? "2027-05" : "2027-01", (long long)USD(150000),
             ramping ? ",\"ramp_schedule\":[50,50]" : "");
    }
    /* R1's bookings for M15: Feb $10k, Mar $20k (O1), Apr $35k, May $52k (the five M13 deals). */
    opp(e, "O2F", "acct-6", NULL, "R1", "team-y", "proposal", utc(2027, 1, 20, 12, 0),
        utc(2027, 2, 15, 12, 0), true, USD(10000));
    lead_events(e);
    /* M12/M13 in March: O1 from L01 won after 20 days, O3 from L03 lost after 10 days. */
    opp(e, "O1", "acct-1", "L01", "R1", "team-y", "discovery", utc(2027, 3, 1, 13, 0),
        utc(2027, 3, 21, 13, 0), true, USD(20000));
    opp(e, "O3", "acct-3", "L03", "R1", "team-y", "discovery", utc(2027, 3, 1, 14, 0),
        utc(2027, 3, 11, 14, 0), false, USD(8000));
    opp(e, "O4", "acct-7", NULL, "R1", "team-y", "proposal", utc(2027, 3, 15, 12, 0),
        utc(2027, 4, 12, 12, 0), true, USD(35000));
    /* M13/M14 in May: cycles of 95, 60, 41, 35, 20 days, all closed Monday 2027-05-10 12:00. */
    {
        static const struct {
            const char *id, *account;
            int mo, d;
            int64_t amount;
        } may[] = {
            { "O5E", "acct-8", 2, 4, USD(18000) },   { "O5D", "acct-9", 3, 11, USD(12000) },
            { "O5C", "acct-10", 3, 30, USD(10000) }, { "O5B", "acct-11", 4, 5, USD(7000) },
            { "O5A", "acct-12", 4, 20, USD(5000) },
        };

        for (size_t i = 0; i < sizeof(may) / sizeof(may[0]); i++) {
            opp(e, may[i].id, may[i].account, NULL, "R1", "team-y", "proposal",
                utc(2027, may[i].mo, may[i].d, 12, 0), utc(2027, 5, 10, 12, 0), true,
                may[i].amount);
        }
        /* SLA-04: 18 business hours from Monday 12:00 end Wednesday 12:00. On time: O5A
         * (Tue 10:00), O5B (Wed 11:00), O5C (Mon 15:00); late: O5D (Thu 10:00); O5E's
         * handoff has no CSM and an open checklist. */
        handoff(e, "acct-10", "O5C", utc(2027, 5, 10, 15, 0), true);
        handoff(e, "acct-12", "O5A", utc(2027, 5, 11, 10, 0), true);
        handoff(e, "acct-8", "O5E", utc(2027, 5, 11, 10, 0), false);
        handoff(e, "acct-11", "O5B", utc(2027, 5, 12, 11, 0), true);
        handoff(e, "acct-9", "O5D", utc(2027, 5, 13, 10, 0), true);
    }
    /* M20/SLA-05: five accounts handed over Thursday 2027-04-01 10:00; first value after 12,
     * 20, 25 and 40 days, the fifth never (past 60 days at the end of the timeline). */
    {
        static const int days[] = { 12, 20, 25, 40, -1 };

        for (int i = 0; i < 5; i++) {
            char account[16], opp_id[16];

            (void)snprintf(account, sizeof(account), "onb-%d", i + 1);
            (void)snprintf(opp_id, sizeof(opp_id), "OC%d", i + 1);
            handoff(e, account, opp_id, utc(2027, 4, 1, 10, 0), true);
        }
        for (int i = 0; i < 4; i++) {
            line(e, "onboarding.milestone", utc(2027, 4, 1, 10, 0) + days[i] * DAY,
                 "\"account\":\"onb-%d\",\"milestone\":\"first_value\",\"status\":\"completed\"",
                 i + 1);
        }
    }
    /* R1 leaves at the end of May; June is team-x's month (M16). */
    line(e, "rep.terminated", utc(2027, 5, 31, 18, 0), "\"rep_id\":\"R1\",\"reason\":\"left\"");
    {
        static const int64_t june[] = { USD(180000), USD(150000), USD(120000), USD(90000),
                                        USD(60000) };

        for (int i = 0; i < 5; i++) {
            char id[8], owner[8], account[16];

            (void)snprintf(id, sizeof(id), "OJ%c", 'A' + i);
            (void)snprintf(owner, sizeof(owner), "R%c", 'A' + i);
            (void)snprintf(account, sizeof(account), "june-%d", i + 1);
            opp(e, id, account, NULL, owner, "team-x", "proposal", utc(2027, 6, 1, 12, 0),
                utc(2027, 6, 15, 12, 0), true, june[i]);
        }
    }
}

/* ---- the test ------------------------------------------------------------------------ */

static void assert_metrics_over_http(struct env *e)
{
    json_t *v;

    /* M11 worked example: P50 6.0 min, P90 39.0 min, mean 19.9 min, 50% within 5 min. */
    v = metric(e, "name=speed_to_lead&grain=day&bucket=2027-03-01");
    assert_near(num(v, "count"), 10);
    assert_near(num(v, "p50"), 6.0 * MIN);
    assert_near(num(v, "p90"), 39.0 * MIN);
    assert_near(num(v, "mean"), 19.9 * MIN);
    assert_near(num(v, "pct_within"), 0.5);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "final");
    assert_int_equal(json_array_size(json_object_get(v, "partitions")), PARTITIONS);
    json_decref(v);
    /* Business time: Friday 17:58 to Monday 09:02 is 4 business minutes, 63 h 04 min wall. */
    v = metric(e, "name=speed_to_lead_business&grain=day&bucket=2027-03-05");
    assert_near(num(v, "p50"), 4.0 * MIN);
    json_decref(v);
    v = metric(e, "name=speed_to_lead&grain=day&bucket=2027-03-05");
    assert_near(num(v, "p50"), (63 * 60 + 4) * MIN);
    json_decref(v);

    /* M12, the day cohort of 2027-03-01: 10 leads; MQL L01, L02 and L03 (skipped to SQL);
     * SQL L01, L03; both opportunities created; O1 won, O3 lost. */
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=lead,to=mql");
    assert_near(num(v, "denominator"), 10);
    assert_near(num(v, "numerator"), 3);
    assert_near(num(v, "value"), 0.3);
    json_decref(v);
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=mql,to=sql");
    assert_near(num(v, "value"), 2.0 / 3.0);
    json_decref(v);
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=sql,to=opp");
    assert_near(num(v, "value"), 1.0);
    json_decref(v);
    v = metric(e, "name=funnel_conversion&grain=day&bucket=2027-03-01&dims=from=opp,to=won");
    assert_near(num(v, "value"), 0.5);
    json_decref(v);
    v = metric(e, "name=win_rate&grain=month&bucket=2027-03");
    assert_near(num(v, "value"), 0.5);
    json_decref(v);

    /* M13 worked example: May's won cycles [20, 35, 41, 60, 95] days: P50 41, mean 50.2. */
    v = metric(e, "name=sales_cycle&grain=month&bucket=2027-05&dims=outcome=won");
    assert_near(num(v, "count"), 5);
    assert_near(num(v, "p50"), 41);
    assert_near(num(v, "mean"), 50.2);
    json_decref(v);
    v = metric(e, "name=sales_cycle&grain=month&bucket=2027-03&dims=outcome=lost");
    assert_near(num(v, "p50"), 10);
    json_decref(v);

    /* M14: May's 5 won deals, all matured: 3 on time, 1 late, 1 without a CSM. */
    v = metric(e, "name=handoff_completion&grain=month&bucket=2027-05");
    assert_near(num(v, "denominator"), 5);
    assert_near(num(v, "value"), 0.6);
    assert_near(num(v, "completion_rate_any_time"), 0.8);
    json_decref(v);

    /* M15 worked example: start Jan 15, 104% of the full quota in May: 4.5 months. */
    v = metric(e, "name=rep_ramp&grain=month&bucket=2027-01&dims=rep=R1");
    assert_near(num(v, "value"), 4.5);
    json_decref(v);

    /* M16 worked example in June: team 600 / 675; ramped reps at quota 2 of 4, all 2 of 5. */
    v = metric(e, "name=quota_attainment&grain=month&bucket=2027-06&dims=team=team-x");
    assert_near(num(v, "value"), 600.0 / 675.0);
    json_decref(v);
    v = metric(e, "name=quota_attainment&grain=month&bucket=2027-06");
    assert_near(num(v, "value"), 0.5);
    assert_near(num(v, "share_all_reps_at_quota"), 0.4);
    json_decref(v);
    v = metric(e, "name=quota_attainment&grain=month&bucket=2027-06&dims=rep=RA");
    assert_near(num(v, "value"), 1.2);
    json_decref(v);

    /* M20 worked example: [12, 20, 25, 40, >60] days: median 25, 60% within 30 days. */
    v = metric(e, "name=time_to_onboard&grain=month&bucket=2027-04&dims=milestone=first_value");
    assert_near(num(v, "count"), 5);
    assert_near(num(v, "value"), 25);
    assert_near(num(v, "pct_within"), 0.6);
    json_decref(v);

    /* SLA compliance of SLA-04 for May's starts: 3 met of 5. */
    v = metric(e, "name=sla_compliance&grain=month&bucket=2027-05&dims=rule=SLA-04");
    assert_near(num(v, "count"), 5);
    assert_near(num(v, "value"), 0.6);
    json_decref(v);
}

static void assert_api_edges(struct env *e)
{
    json_t *v;
    const json_t *open;
    char *body = NULL;
    bool o5e = false, o5a = false;

    /* A time series: May and June of handoff completion. */
    v = get_json(e, "/api/series?name=handoff_completion&grain=month&from=2027-05&to=2027-06", 200);
    assert_int_equal(json_array_size(json_object_get(v, "points")), 2);
    json_decref(v);
    /* Open SLA instances: O5E's handoff never completed; O5A's did. */
    v = get_json(e, "/api/sla/open?rule=SLA-04&owner=R1", 200);
    open = json_object_get(v, "open");
    for (size_t i = 0; i < json_array_size(open); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(open, i), "entity_id"));

        o5e |= strcmp(id, "O5E") == 0;
        o5a |= strcmp(id, "O5A") == 0;
    }
    assert_true(o5e);
    assert_false(o5a);
    json_decref(v);
    /* Bad parameters: 400 naming the parameter. */
    v = get_json(e, "/api/metric?name=nope", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'name'"));
    json_decref(v);
    v = get_json(e, "/api/metric?name=win_rate&grain=year", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'grain'"));
    json_decref(v);
    v = get_json(e, "/api/metric?name=win_rate&grain=month&bucket=2027-13", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'bucket'"));
    json_decref(v);
    v = get_json(e, "/api/metric?name=win_rate&dims=color=red", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'dims'"));
    json_decref(v);
    v = get_json(e, "/api/sla/open?limit=0", 400);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")), "'limit'"));
    json_decref(v);
    /* Health, readiness and Prometheus. */
    assert_int_equal(rs_test_http_get(e->port, "/healthz", &body, 5000), 200);
    free(body);
    /* Ready once every partition is known to be at its end: an EOF or a fetch after its last
     * message, which can come a tick after the last apply. */
    {
        int64_t deadline = rs_tb_now_ms() + 10000;
        int status;

        while ((status = rs_test_http_get(e->port, "/readyz", &body, 5000)) == 503 &&
               rs_tb_now_ms() < deadline) {
            free(body);
            rs_tb_sleep_ms(100);
        }
        assert_int_equal(status, 200);
        v = json_loads(body, 0, NULL);
        free(body);
        assert_true(json_is_true(json_object_get(v, "ready")));
        json_decref(v);
    }
    assert_int_equal(rs_test_http_get(e->port, "/metrics", &body, 5000), 200);
    assert_non_null(strstr(body, "revstream_events_total{type=\"opportunity.closed\"} 14\n"));
    assert_non_null(strstr(body, "revstream_consumer_lag{partition=\"0\"} 0\n"));
    assert_non_null(strstr(body, "revstream_alerts_total{rule=\"SLA-04"));
    assert_non_null(strstr(body, "# TYPE revstream_commit_ms histogram\n"));
    assert_non_null(strstr(body, "revstream_open_timers{rule=\"SLA-05"));
    assert_non_null(strstr(body, "revstream_lmdb_used_bytes "));
    free(body);
}

static void assert_alerts(struct env *e)
{
    struct alert_set as;
    rd_kafka_t *r = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);

    memset(&as, 0, sizeof(as));
    rs_event_decoder_init(&as.dec, 1 << 20);
    (void)rs_tb_read(r, 0, 3000, 30000, on_alert_msg, &as);
    rd_kafka_destroy(r);
    /* SLA-01: L06 answered in 7 min breached and recovered; L01 in 2 min, nothing. */
    assert_alert(&as, "SLA-01|L06|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-01|L06|sla.recovered|resolved", true);
    assert_alert(&as, "SLA-01|L01|sla.warning|L0_warning", false);
    /* SLA-02: L02 was never accepted; L01 was within the hour. */
    assert_alert(&as, "SLA-02|L02|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-02|L01|sla.breached|L1_breach", false);
    /* SLA-03: discovery's 5 days passed for O3 before it was lost on day 10. */
    assert_alert(&as, "SLA-03|O3|sla.breached|L1_breach", true);
    /* SLA-04: O5D late then completed, O5E never; O5A on time. */
    assert_alert(&as, "SLA-04|O5D|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-04|O5D|sla.recovered|resolved", true);
    assert_alert(&as, "SLA-04|O5E|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-04|O5A|sla.breached|L1_breach", false);
    /* SLA-05 (smb, 30 days): onb-4 reached first value on day 40, onb-1 on day 12. */
    assert_alert(&as, "SLA-05|onb-4|sla.breached|L1_breach", true);
    assert_alert(&as, "SLA-05|onb-4|sla.recovered|resolved", true);
    assert_alert(&as, "SLA-05|onb-1|sla.breached|L1_breach", false);
    assert_alert(&as, "SLA-05|onb-5|sla.breached|L1_breach", true);
    rs_event_decoder_release(&as.dec);
    free(as.lines);
}

static void assert_metrics_topic(struct env *e)
{
    struct metric_msgs mm;
    struct part_sum s;
    rd_kafka_t *r = rs_tb_reader_new(e->brokers, e->metrics, PARTITIONS);

    memset(&mm, 0, sizeof(mm));
    (void)rs_tb_read(r, 0, 3000, 60000, on_metric_msg, &mm);
    rd_kafka_destroy(r);
    /* M11's day: the parts of every partition sum to the 10 leads, 5 of them within 5 min. */
    s = sum_parts(&mm, "speed_to_lead||day|2027-03-01");
    assert_true(s.parts >= 2);
    assert_int_equal(s.inputs[0], 10);
    assert_int_equal(s.inputs[2], 5);
    /* M12 lead -> MQL for the same cohort: 3 of 10. */
    s = sum_parts(&mm, "funnel_conversion|from=lead,to=mql|day|2027-03-01");
    assert_int_equal(s.inputs[0], 10);
    assert_int_equal(s.inputs[1], 3);
    /* M16: team-x's June bookings, $600k, from five partitions' parts. */
    s = sum_parts(&mm, "quota_attainment|team=team-x|month|2027-06");
    assert_int_equal(s.inputs[0], USD(600000));
    free(mm.keys);
    free(mm.inputs);
}

static void assert_inspect(struct env *e)
{
    char out[4200];
    const char *args[] = { RS_BINARY,  "inspect", "-c",    e->config,  "metric",  "--name",
                           "win_rate", "--grain", "month", "--bucket", "2027-03", NULL };
    const char *table[] = { RS_BINARY, "inspect", "-c",     e->config, "--table",
                            "open",    "--rule",  "SLA-04", NULL };
    const char *bad[] = { RS_BINARY, "inspect", "-c", e->config, "metric", "--name", "nope", NULL };
    char *text;
    json_t *v;

    (void)snprintf(out, sizeof(out), "%s/inspect.out", e->dir);
    assert_int_equal(rs_tb_run(args, out), 0);
    text = rs_tb_slurp(out);
    v = json_loads(text, 0, NULL);
    assert_non_null(v);
    assert_near(num(v, "value"), 0.5);
    json_decref(v);
    free(text);
    assert_int_equal(rs_tb_run(table, out), 0);
    text = rs_tb_slurp(out);
    assert_non_null(strstr(text, "O5E"));
    assert_non_null(strstr(text, "entity_id"));
    free(text);
    assert_int_equal(rs_tb_run(bad, out), 2);
}

static void test_funnel_metrics_and_slas_through_the_broker(void **state)
{
    struct env *e = *state;
    int64_t end = utc(2027, 8, 1, 0, 0);

    need_broker(e);
    write_config(e, "time.max_out_of_orderness = 0s\n"
                    "metrics.funnel_window.opp_won = 90d\n"
                    "sla.stalled_opportunity.stage.discovery = 5d\n"
                    "sla.freshness.enabled = false\n");
    timeline(e);
    send_lines(e);
    send_sentinels(e, end);
    start_engine(e);
    wait_applied(e, "2027-08-01");
    assert_metrics_over_http(e);
    assert_api_edges(e);
    assert_int_equal(stop_engine(e), 0);
    assert_alerts(e);
    assert_metrics_topic(e);
    assert_inspect(e);
}

/*
 * SLA-07 live: a source that falls silent on every partition is alerted by the wall clock
 * (the partitions are caught up), and its next event resolves it.
 */
static void test_freshness_alerts_a_silent_source_live(void **state)
{
    struct env *e = *state;
    struct alert_set as;
    int64_t now = rs_tb_now_ms();
    int64_t deadline;
    rd_kafka_t *r;

    need_broker(e);
    write_config(e, "calendar.hours = 24x7\n"
                    "sla.freshness.silence = 3s\n"
                    "time.max_out_of_orderness = 0s\n");
    for (int i = 0; i < 6; i++) {
        line(e, "lead.disqualified", now + i,
             "\"source\":\"crm\",\"account\":\"%s\",\"lead_id\":\"F%d\",\"reason\":\"spam\"",
             account_of(i), i);
    }
    send_lines(e);
    start_engine(e);
    memset(&as, 0, sizeof(as));
    rs_event_decoder_init(&as.dec, 1 << 20);
    r = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);
    deadline = rs_tb_now_ms() + 30000;
    while (!has_alert(&as, "SLA-07|crm|sla.breached|L1_breach") && rs_tb_now_ms() < deadline) {
        (void)rs_tb_read(r, 1, 500, 1000, on_alert_msg, &as);
    }
    assert_alert(&as, "SLA-07|crm|sla.breached|L1_breach", true);
    line(e, "lead.disqualified", rs_tb_now_ms(),
         "\"source\":\"crm\",\"account\":\"acct-1\",\"lead_id\":\"F9\",\"reason\":\"spam\"");
    send_lines(e);
    deadline = rs_tb_now_ms() + 30000;
    while (!has_alert(&as, "SLA-07|crm|sla.recovered|resolved") && rs_tb_now_ms() < deadline) {
        (void)rs_tb_read(r, 1, 500, 1000, on_alert_msg, &as);
    }
    assert_alert(&as, "SLA-07|crm|sla.recovered|resolved", true);
    rd_kafka_destroy(r);
    assert_int_equal(stop_engine(e), 0);
    rs_event_decoder_release(&as.dec);
    free(as.lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_funnel_metrics_and_slas_through_the_broker, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_freshness_alerts_a_silent_source_live, env_setup,
                                        env_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
