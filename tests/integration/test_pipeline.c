/*
 * test_pipeline.c - the engine end to end against a real Kafka broker, through the revstream
 * binary as a user runs it: events produced to a topic, `revstream run -c FILE`, alerts and
 * dead letters read back from their topics, state read back with `revstream inspect`.
 *
 * Needs RS_TEST_BROKERS (scripts/test.sh starts deploy/kafka.sh and sets it); skips without.
 * Every test uses topics, a consumer group and a state directory of its own.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "event.h"
#include "tmpdir.h"

#include <msgpack.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN        (60 * INT64_C(1000))
#define HOUR       (60 * MIN)
#define PARTITIONS 3

struct env {
    const char *brokers;
    char *dir;
    char *events, *alerts, *dlq, *metrics, *group;
    char config[4096];
    char state[4096];
    pid_t engine;  /* running child, killed at teardown if a test failed before stopping it */
    pid_t engine2; /* a second instance in the same group, likewise */
};

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
    if (e->engine2 > 0) {
        (void)kill(e->engine2, SIGKILL);
        (void)rs_tb_wait(e->engine2);
    }
    rs_test_tmpdir_remove(e->dir);
    free(e->events);
    free(e->alerts);
    free(e->dlq);
    free(e->metrics);
    free(e->group);
    free(e);
    return 0;
}

/* Skip on a developer's machine without a broker; create the topics otherwise. */
static void need_broker(struct env *e, int partitions)
{
    if (e->brokers == NULL) {
        skip();
    }
    rs_tb_create_topic(e->brokers, e->events, partitions);
    rs_tb_create_topic(e->brokers, e->alerts, PARTITIONS);
    rs_tb_create_topic(e->brokers, e->dlq, 1);
    rs_tb_create_topic(e->brokers, e->metrics, PARTITIONS);
}

static void write_config_to(struct env *e, const char *path, const char *state_dir, int instance,
                            const char *extra)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f,
            "# written by test_pipeline\n"
            "kafka.bootstrap.servers = %s\n"
            "kafka.group.id = %s\n"
            "kafka.group.instance.id = %s-%d\n"
            "kafka.session.timeout.ms = 6000\n"
            "topic.events = %s\n"
            "topic.alerts = %s\n"
            "topic.dlq = %s\n"
            "topic.metrics = %s\n"
            "http.bind = off\n"
            "# SLA-01 is under test; the data-freshness rule would see the gaps between the\n"
            "# test's events as silent sources (test_funnel covers it).\n"
            "sla.freshness.enabled = false\n"
            "# Nor the guardrail on the day's share within SLA-01 (test_guardrail covers it):\n"
            "# these tests count every alert on the topic.\n"
            "guardrail.speed_to_lead.enabled = false\n"
            "state.dir = %s\n"
            "log.level = warn\n"
            "%s",
            e->brokers, e->group, e->group, instance, e->events, e->alerts, e->dlq, e->metrics,
            state_dir, extra != NULL ? extra : "");
    assert_int_equal(fclose(f), 0);
}

static void write_config(struct env *e, const char *extra)
{
    write_config_to(e, e->config, e->state, 1, extra);
}

static pid_t start_engine(struct env *e)
{
    const char *args[] = { RS_BINARY, "run", "-c", e->config, NULL };

    e->engine = rs_tb_spawn(args, NULL);
    return e->engine;
}

/* Signal the engine and wait for it; returns its exit code. */
static int stop_engine(struct env *e, int sig)
{
    int rc;

    assert_int_equal(kill(e->engine, sig), 0);
    rc = rs_tb_wait(e->engine);
    e->engine = 0;
    return rc;
}

/* ---- events ------------------------------------------------------------------------ */

static struct rs_str S(const char *s) {
    return (struct rs_str){ s, strlen(s) };
}

/*
 * Events are queued, then produced in event-time order, as real sources deliver them: a touch
 * made at 2.5 days is produced after everything before it, not next to its lead.created.
 */
struct queued {
    int64_t ts;
    size_t order; /* ties keep the order they were queued in */
    char key[64];
    struct rs_buf bytes;
};

struct producer {
    rd_kafka_t *rk;
    const char *topic;
    size_t sent;
    struct queued *q;
    size_t n, cap, next;
};

static void send_event(struct producer *p, const struct rs_event *ev, const char *key)
{
    struct queued *m;

    if (p->n == p->cap) {
        p->cap = p->cap == 0 ? 1024 : p->cap * 2;
        p->q = realloc(p->q, p->cap * sizeof(*p->q));
    }
    m = &p->q[p->n];
    m->ts = ev->ts_ms;
    m->order = p->n++;
    (void)snprintf(m->key, sizeof(m->key), "%s", key);
    rs_buf_init(&m->bytes);
    rs_event_encode(ev, &m->bytes);
}

static int cmp_queued(const void *a, const void *b)
{
    const struct queued *x = a, *y = b;

    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Sort what is queued and not yet sent. */
static void sort_queue(struct producer *p)
{
    qsort(p->q + p->next, p->n - p->next, sizeof(*p->q), cmp_queued);
}

/* Produce the next `count` queued events (all of them for SIZE_MAX). */
static void produce_queued(struct producer *p, size_t count)
{
    for (; p->next < p->n && count > 0; p->next++, count--) {
        struct queued *m = &p->q[p->next];

        rs_tb_produce(p->rk, p->topic, m->key, strlen(m->key), m->bytes.data, m->bytes.len);
        p->sent++;
    }
}

static void producer_release(struct producer *p)
{
    for (size_t i = 0; i < p->n; i++) {
        rs_buf_release(&p->q[i].bytes);
    }
    free(p->q);
    rd_kafka_destroy(p->rk);
}

/*
 * A lead.created far in the future on every partition: the watermark passes every deadline
 * before it, so each level that comes due in event time fires without the wall clock.
 */
static void send_watermark_sentinels(struct producer *p, int partitions, int64_t ts)
{
    struct rs_buf b;
    struct rs_event ev;
    char id[32];

    rs_buf_init(&b);
    for (int i = 0; i < partitions; i++) {
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
        rs_tb_produce_to(p->rk, p->topic, i, b.data, b.len);
        p->sent++;
    }
    rs_buf_release(&b);
    rs_tb_flush(p->rk);
}

static void send_created(struct producer *p, const char *lead, enum rs_intent_tier tier, int64_t ts)
{
    struct rs_event ev;
    char id[64];

    memset(&ev, 0, sizeof(ev));
    (void)snprintf(id, sizeof(id), "%s-created", lead);
    ev.type = RS_EV_LEAD_CREATED;
    ev.id = S(id);
    ev.ts_ms = ts;
    ev.u.lead_created.lead_id = S(lead);
    ev.u.lead_created.channel = S("demo_request");
    ev.u.lead_created.intent_tier = tier;
    ev.u.lead_created.segment = S("smb");
    ev.u.lead_created.owner_id = S("rep-1");
    send_event(p, &ev, lead);
}

static void send_touch(struct producer *p, const char *lead, int64_t ts, enum rs_actor_type a)
{
    struct rs_event ev;
    char id[64];

    memset(&ev, 0, sizeof(ev));
    (void)snprintf(id, sizeof(id), "%s-touch-%lld-%d", lead, (long long)ts, (int)a);
    ev.type = RS_EV_LEAD_TOUCHED;
    ev.id = S(id);
    ev.ts_ms = ts;
    ev.u.lead_touched.lead_id = S(lead);
    ev.u.lead_touched.rep_id = S("rep-1");
    ev.u.lead_touched.actor_type = a;
    ev.u.lead_touched.channel = RS_CH_CALL;
    ev.u.lead_touched.direction = RS_DIR_OUTBOUND;
    send_event(p, &ev, lead);
}

static void send_disqualified(struct producer *p, const char *lead, int64_t ts)
{
    struct rs_event ev;
    char id[64];

    memset(&ev, 0, sizeof(ev));
    (void)snprintf(id, sizeof(id), "%s-dq", lead);
    ev.type = RS_EV_LEAD_DISQUALIFIED;
    ev.id = S(id);
    ev.ts_ms = ts;
    ev.u.lead_disqualified.lead_id = S(lead);
    ev.u.lead_disqualified.reason = S("spam");
    send_event(p, &ev, lead);
}

/* ---- the oracle: which alerts a lead must produce, from METRICS.md SLA-01 and §5.2 ----- */

static const int64_t thresholds[RS_TIER__COUNT] = { 5 * MIN, 60 * MIN, 24 * HOUR };

enum outcome { ON_TIME, NEAR_LINE, LATE, VERY_LATE, NEVER, DISQUALIFIED, OUTCOMES };

/* Time of the human touch as a fraction of the threshold, per outcome (0: none). */
static const double touch_at[OUTCOMES] = { 0.5, 0.9, 1.5, 2.5, 0, 0 };

struct expected {
    char (*keys)[96]; /* "lead|kind|level", sorted */
    size_t n, cap;
};

static void expect(struct expected *x, const char *lead, const char *kind, const char *level)
{
    if (x->n == x->cap) {
        x->cap = x->cap == 0 ? 256 : x->cap * 2;
        x->keys = realloc(x->keys, x->cap * sizeof(*x->keys));
    }
    (void)snprintf(x->keys[x->n++], 96, "%s|%s|%s", lead, kind, level);
}

/* What a lead with `outcome` publishes once the clock is far past every level. */
static void expect_lead(struct expected *x, const char *lead, enum outcome o)
{
    double t = touch_at[o];

    if (o == DISQUALIFIED) {
        return;
    }
    if (o == NEVER || t > 0.8) {
        expect(x, lead, "sla.warning", "L0_warning");
    }
    if (o == NEVER || t > 1.0) {
        expect(x, lead, "sla.breached", "L1_breach");
    }
    if (o == NEVER || t > 2.0) {
        expect(x, lead, "sla.escalated", "L2_escalate");
    }
    if (o != NEVER && t > 0.8) { /* every notified level is resolved (§5.2) */
        expect(x, lead, "sla.recovered", "resolved");
    }
}

static void send_lead(struct producer *p, struct expected *x, const char *lead,
                      enum rs_intent_tier tier, enum outcome o, int64_t created)
{
    send_created(p, lead, tier, created);
    if (o == DISQUALIFIED) {
        send_disqualified(p, lead, created + thresholds[tier] / 2);
    } else if (touch_at[o] > 0) {
        /* An auto-reply first: it must not count as a response. */
        send_touch(p, lead, created + thresholds[tier] / 10, RS_ACTOR_AUTOMATION);
        send_touch(p, lead, created + (int64_t)(touch_at[o] * (double)thresholds[tier]),
                   RS_ACTOR_HUMAN);
    }
    expect_lead(x, lead, o);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* ---- reading alerts back ----------------------------------------------------------- */

struct seen {
    struct rs_event_decoder dec;
    char (*ids)[65];
    char (*keys)[96]; /* parallel to ids: the first content seen with that id */
    size_t n, cap;
    size_t messages;
    size_t duplicates; /* the same id again, with the same content */
    size_t conflicts;  /* the same id with different content: never allowed */
    int64_t last_breach_arrival_ms;
};

static void on_alert(void *opaque, const rd_kafka_message_t *m)
{
    struct seen *s = opaque;
    struct rs_alert_view a;
    struct rs_err err;
    char key[96];

    assert_int_equal(rs_alert_view_decode(&s->dec, m->payload, m->len, &a, &err), 0);
    s->messages++;
    (void)snprintf(key, sizeof(key), "%.*s|%s|%.*s", (int)a.entity_id.len, a.entity_id.ptr,
                   rs_alert_kind_name(a.kind), (int)a.level.len, a.level.ptr);
    if (a.kind == RS_ALERT_BREACHED) {
        s->last_breach_arrival_ms = rs_tb_now_ms();
    }
    for (size_t i = 0; i < s->n; i++) {
        if (a.alert_id.len == 64 && memcmp(s->ids[i], a.alert_id.ptr, 64) == 0) {
            if (strcmp(s->keys[i], key) == 0) {
                s->duplicates++;
            } else {
                s->conflicts++;
            }
            return;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 256 : s->cap * 2;
        s->ids = realloc(s->ids, s->cap * sizeof(*s->ids));
        s->keys = realloc(s->keys, s->cap * sizeof(*s->keys));
    }
    assert_int_equal(a.alert_id.len, 64);
    memcpy(s->ids[s->n], a.alert_id.ptr, 64);
    s->ids[s->n][64] = '\0';
    memcpy(s->keys[s->n++], key, sizeof(key));
}

static void seen_release(struct seen *s)
{
    rs_event_decoder_release(&s->dec);
    free(s->ids);
    free(s->keys);
}

/* The distinct alerts seen must be exactly the expected ones. */
static void assert_same_alerts(struct seen *s, struct expected *x)
{
    char(*got)[96] = malloc((s->n + 1) * sizeof(*got));

    memcpy(got, s->keys, s->n * sizeof(*got));
    qsort(got, s->n, sizeof(*got), cmp_key);
    qsort(x->keys, x->n, sizeof(*x->keys), cmp_key);
    size_t wrong = 0;

    for (size_t i = 0, j = 0; i < s->n || j < x->n;) {
        int c = i == s->n ? 1 : (j == x->n ? -1 : strcmp(got[i], x->keys[j]));

        if (c < 0) {
            print_error("unexpected alert %s\n", got[i++]);
            wrong++;
        } else if (c > 0) {
            print_error("missing alert %s\n", x->keys[j++]);
            wrong++;
        } else {
            i++;
            j++;
        }
    }
    assert_int_equal(s->conflicts, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(s->n, x->n);
    free(got);
}

/* ---- inspect ----------------------------------------------------------------------- */

struct state_summary {
    long long created, met, breached, breached_then_met, cancelled, running;
    long long applied; /* summed over partitions */
};

static long long json_number(const char *json, const char *key)
{
    char pat[64];
    const char *p;

    (void)snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(json, pat);
    return p != NULL ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static struct state_summary inspect_config(struct env *e, const char *config)
{
    const char *args[] = { RS_BINARY, "inspect", "-c", config, NULL };
    char out[4200];
    struct state_summary s;
    char *json;
    const char *p;

    (void)snprintf(out, sizeof(out), "%s/inspect.json", e->dir);
    assert_int_equal(rs_tb_run(args, out), 0);
    json = rs_tb_slurp(out);
    assert_non_null(json);
    s.created = json_number(json, "created");
    s.met = json_number(json, "met");
    s.breached = json_number(json, "breached");
    s.breached_then_met = json_number(json, "breached_then_met");
    s.cancelled = json_number(json, "cancelled");
    s.running = json_number(json, "running");
    s.applied = 0;
    for (p = strstr(json, "\"applied\":"); p != NULL; p = strstr(p + 1, "\"applied\":")) {
        s.applied += strtoll(p + 10, NULL, 10);
    }
    free(json);
    return s;
}

static struct state_summary inspect(struct env *e)
{
    return inspect_config(e, e->config);
}

/* ---- tests ------------------------------------------------------------------------- */

/*
 * A known set of leads, produced in event-time order and followed by a watermark sentinel on
 * every partition, so every ladder level whose time came in event time is due. Event times
 * lie a day ahead of the wall clock, so only event time decides. The engine must publish
 * exactly the oracle's alerts, no more, and stop cleanly on SIGTERM. Then a touch that was
 * made before the deadline arrives late: its levels are retracted.
 */
static void test_pipeline_publishes_exactly_the_expected_alerts(void **state)
{
    struct env *e = *state;
    struct producer p = { 0 };
    struct expected x = { NULL, 0, 0 };
    struct seen s;
    int64_t t0 = rs_tb_now_ms() + 24 * HOUR;
    rd_kafka_t *reader;
    char lead[32];
    struct state_summary st;

    need_broker(e, PARTITIONS);
    write_config(e, NULL);
    memset(&s, 0, sizeof(s));
    rs_event_decoder_init(&s.dec, 1 << 20);
    p.rk = rs_tb_producer_new(e->brokers);
    p.topic = e->events;
    for (int i = 0; i < 36; i++) {
        (void)snprintf(lead, sizeof(lead), "L-%02d", i);
        send_lead(&p, &x, lead, (enum rs_intent_tier)(i % RS_TIER__COUNT),
                  (enum outcome)(i / RS_TIER__COUNT % OUTCOMES), t0 + i * MIN);
    }
    send_created(&p, "L-late", RS_TIER_HIGH, t0);
    expect_lead(&x, "L-late", NEVER);
    sort_queue(&p);
    produce_queued(&p, SIZE_MAX);
    rs_tb_flush(p.rk);
    send_watermark_sentinels(&p, PARTITIONS, t0 + 30 * 24 * HOUR);

    (void)start_engine(e);
    reader = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);
    (void)rs_tb_read(reader, x.n, 60000, 90000, on_alert, &s);
    (void)rs_tb_read(reader, 0, 2000, 10000, on_alert, &s); /* nothing more may come */
    assert_same_alerts(&s, &x);

    /* A touch made at 2 minutes arrives now: L0, L1 and L2 of L-late are withdrawn. */
    send_touch(&p, "L-late", t0 + 2 * MIN, RS_ACTOR_HUMAN);
    produce_queued(&p, SIZE_MAX);
    rs_tb_flush(p.rk);
    expect(&x, "L-late", "sla.retracted", "L0_warning");
    expect(&x, "L-late", "sla.retracted", "L1_breach");
    expect(&x, "L-late", "sla.retracted", "L2_escalate");
    (void)rs_tb_read(reader, 3, 30000, 60000, on_alert, &s);
    (void)rs_tb_read(reader, 0, 2000, 10000, on_alert, &s);
    assert_same_alerts(&s, &x);

    assert_int_equal(stop_engine(e, SIGTERM), 0);
    st = inspect(e);
    assert_int_equal(st.created, 37 + PARTITIONS);
    assert_int_equal(st.running, PARTITIONS); /* the sentinels: nothing comes after them */
    assert_int_equal(st.applied, (long long)p.sent);
    assert_int_equal(st.cancelled, 6); /* the disqualified */
    assert_int_equal(st.breached, 6);  /* never touched, still open */
    assert_int_equal(st.met, 12 + 1);  /* on time, near the line, and L-late */
    assert_int_equal(st.breached_then_met, 12);

    rd_kafka_destroy(reader);
    producer_release(&p);
    free(x.keys);
    seen_release(&s);
}

/*
 * A live lead on an idle partition: no event follows it, yet its breach is published as the
 * wall clock passes the deadline (thresholds shortened so the test is quick).
 */
static void live_breach(struct env *e, const char *config)
{
    struct producer p = { 0 };
    struct seen s;
    rd_kafka_t *reader;
    int64_t created, deadline;

    need_broker(e, PARTITIONS);
    write_config(e, config);
    memset(&s, 0, sizeof(s));
    rs_event_decoder_init(&s.dec, 1 << 20);
    p.rk = rs_tb_producer_new(e->brokers);
    p.topic = e->events;
    (void)start_engine(e);
    reader = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);
    /* Let the engine join and reach the (empty) end of its partitions. */
    (void)rs_tb_read(reader, 0, 5000, 5000, on_alert, &s);
    created = rs_tb_now_ms();
    deadline = created + 3000;
    send_created(&p, "L-live", RS_TIER_HIGH, created);
    produce_queued(&p, SIZE_MAX);
    rs_tb_flush(p.rk);
    (void)rs_tb_read(reader, 2, 30000, 30000, on_alert, &s); /* L0 and L1 */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.conflicts, 0);
    assert_true(s.last_breach_arrival_ms >= deadline);
    /* A figure, not an assertion: timings are for bench/. */
    print_message("live breach read back %lld ms after its deadline\n",
                  (long long)(s.last_breach_arrival_ms - deadline));
    assert_int_equal(stop_engine(e, SIGINT), 0);
    rd_kafka_destroy(reader);
    producer_release(&p);
    seen_release(&s);
}

static void test_pipeline_live_breach_fires_on_wall_clock_without_further_events(void **state)
{
    live_breach(*state, "sla.speed_to_lead.high = 3s\n");
}

/*
 * The same with a tick far longer than the wait for the alert: the engine wakes at the
 * deadline itself, not at the next tick (which would come about a minute after it).
 */
static void test_pipeline_live_breach_fires_at_its_deadline_not_at_the_next_tick(void **state)
{
    live_breach(*state, "sla.speed_to_lead.high = 3s\ntime.tick = 1m\n");
}

/*
 * Kill the engine with SIGKILL again and again while events keep arriving; restart it each
 * time. At the end no event is lost or applied twice (the store's per-partition counts equal
 * what was produced) and every expected alert was published, duplicates only with equal ids.
 */
static void test_pipeline_sigkill_loses_nothing_and_counts_nothing_twice(void **state)
{
    struct env *e = *state;
    struct producer p = { 0 };
    struct expected x = { NULL, 0, 0 };
    struct seen s;
    int64_t t0 = rs_tb_now_ms() + 24 * HOUR; /* ahead of the wall clock: event time decides */
    unsigned seed = (unsigned)rs_tb_now_ms();
    rd_kafka_t *reader;
    struct state_summary st;
    char lead[32];
    int kills = 0;
    const int rounds = 6, leads = 2400;
    size_t per_round;

    need_broker(e, PARTITIONS);
    write_config(e, "batch.max_events = 200\n");
    memset(&s, 0, sizeof(s));
    rs_event_decoder_init(&s.dec, 1 << 20);
    p.rk = rs_tb_producer_new(e->brokers);
    p.topic = e->events;
    srand(seed);
    print_message("kill seed %u\n", seed);
    for (int n = 0; n < leads; n++) {
        (void)snprintf(lead, sizeof(lead), "K-%05d", n);
        send_lead(&p, &x, lead, (enum rs_intent_tier)(n % RS_TIER__COUNT),
                  (enum outcome)(n / RS_TIER__COUNT % OUTCOMES), t0 + n * 1000);
    }
    sort_queue(&p);
    per_round = p.n / (size_t)rounds + 1;
    for (int r = 0; r < rounds; r++) {
        /* The engine runs while the round's events arrive, and dies at a random moment of
         * it: while joining, in a batch, or while publishing. */
        int64_t started = rs_tb_now_ms();
        int kill_after_ms = rand() % 2000;
        bool killed = false;

        (void)start_engine(e);
        for (size_t i = 0; i < per_round && p.next < p.n; i += 100) {
            produce_queued(&p, 100);
            rd_kafka_flush(p.rk, 1000);
            rs_tb_sleep_ms(50);
            if (!killed && rs_tb_now_ms() - started >= kill_after_ms) {
                assert_int_equal(stop_engine(e, SIGKILL), 128 + SIGKILL);
                killed = true;
                kills++;
            }
        }
        rs_tb_flush(p.rk);
        if (!killed) {
            assert_int_equal(stop_engine(e, SIGKILL), 128 + SIGKILL);
            kills++;
        }
    }
    produce_queued(&p, SIZE_MAX);
    rs_tb_flush(p.rk);
    /* The last run goes to the end, which the sentinels' watermark marks. */
    (void)start_engine(e);
    send_watermark_sentinels(&p, PARTITIONS, t0 + 30 * 24 * HOUR);
    for (int waited = 0; waited < 120000; waited += 500) {
        rs_tb_sleep_ms(500);
        st = inspect(e);
        if (st.applied >= (long long)p.sent && st.running == PARTITIONS) {
            break;
        }
    }
    reader = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);
    (void)rs_tb_read(reader, 0, 5000, 180000, on_alert, &s);
    assert_int_equal(stop_engine(e, SIGTERM), 0);
    (void)rs_tb_read(reader, 0, 2000, 30000, on_alert, &s);
    print_message("kills %d, events %zu, alert messages %zu, distinct %zu, duplicates %zu\n", kills,
                  p.sent, s.messages, s.n, s.duplicates);
    st = inspect(e);
    assert_int_equal(st.applied, (long long)p.sent);
    assert_int_equal(st.created, leads + PARTITIONS);
    assert_same_alerts(&s, &x);
    rd_kafka_destroy(reader);
    producer_release(&p);
    free(x.keys);
    seen_release(&s);
}

/*
 * Two instances in one group split the partitions; when the first stops, the second takes
 * its partitions over. It has no state for them, so it rebuilds them from the start of the
 * log (never from the group's committed offsets): at the end its own store has applied every
 * message exactly once, and the alerts of both instances together are exactly the oracle's.
 */
static void test_pipeline_second_instance_takes_over_and_rebuilds_partitions(void **state)
{
    struct env *e = *state;
    struct producer p = { 0 };
    struct expected x = { NULL, 0, 0 };
    struct seen s;
    int64_t t0 = rs_tb_now_ms() + 24 * HOUR;
    char config2[4200], state2[4200], lead[32];
    const char *args2[] = { RS_BINARY, "run", "-c", config2, NULL };
    struct state_summary a, b;
    rd_kafka_t *reader;
    const int leads = 600;

    need_broker(e, PARTITIONS);
    write_config(e, NULL);
    (void)snprintf(config2, sizeof(config2), "%s/second.conf", e->dir);
    (void)snprintf(state2, sizeof(state2), "%s/state2", e->dir);
    write_config_to(e, config2, state2, 2, NULL);
    memset(&s, 0, sizeof(s));
    rs_event_decoder_init(&s.dec, 1 << 20);
    p.rk = rs_tb_producer_new(e->brokers);
    p.topic = e->events;
    for (int n = 0; n < leads; n++) {
        (void)snprintf(lead, sizeof(lead), "H-%04d", n);
        send_lead(&p, &x, lead, (enum rs_intent_tier)(n % RS_TIER__COUNT),
                  (enum outcome)(n / RS_TIER__COUNT % OUTCOMES), t0 + n * 1000);
    }
    sort_queue(&p);

    /* The first instance alone takes the first third. */
    (void)start_engine(e);
    produce_queued(&p, p.n / 3);
    rs_tb_flush(p.rk);
    for (int waited = 0; waited < 60000; waited += 300) {
        a = inspect(e);
        if (a.applied >= (long long)p.sent) {
            break;
        }
        rs_tb_sleep_ms(300);
    }
    assert_int_equal(a.applied, (long long)p.sent);

    /* A second instance joins; the group splits the partitions between them. */
    e->engine2 = rs_tb_spawn(args2, NULL);
    rs_tb_sleep_ms(4000);
    produce_queued(&p, p.n / 3);
    rs_tb_flush(p.rk);
    rs_tb_sleep_ms(2000);

    /* The first one stops; the second takes everything over and sees it to the end. */
    assert_int_equal(stop_engine(e, SIGTERM), 0);
    produce_queued(&p, SIZE_MAX);
    rs_tb_flush(p.rk);
    send_watermark_sentinels(&p, PARTITIONS, t0 + 30 * 24 * HOUR);
    for (int waited = 0; waited < 90000; waited += 500) {
        b = inspect_config(e, config2);
        if (b.applied >= (long long)p.sent && b.running == PARTITIONS) {
            break;
        }
        rs_tb_sleep_ms(500);
    }
    reader = rs_tb_reader_new(e->brokers, e->alerts, PARTITIONS);
    (void)rs_tb_read(reader, 0, 3000, 60000, on_alert, &s);
    assert_int_equal(kill(e->engine2, SIGTERM), 0);
    assert_int_equal(rs_tb_wait(e->engine2), 0);
    e->engine2 = 0;
    print_message("takeover: first instance applied %lld, second %lld of %zu; alert messages %zu, "
                  "distinct %zu\n",
                  a.applied, b.applied, p.sent, s.messages, s.n);
    b = inspect_config(e, config2);
    assert_int_equal(b.applied, (long long)p.sent); /* every partition, once, from offset 0 */
    assert_int_equal(b.created, leads + PARTITIONS);
    assert_same_alerts(&s, &x);
    rd_kafka_destroy(reader);
    producer_release(&p);
    free(x.keys);
    seen_release(&s);
}

/* `revstream send`: JSON lines in, the same events as msgpack on the topic, keyed by lead. */
struct sent_check {
    struct rs_event_decoder dec;
    int n, created, touched;
};

static void on_sent_event(void *opaque, const rd_kafka_message_t *m)
{
    struct sent_check *c = opaque;
    struct rs_event ev;
    struct rs_err err;

    assert_int_equal(rs_event_decode(&c->dec, m->payload, m->len, &ev, NULL, &err), 0);
    assert_int_equal(m->key_len, 3);
    assert_memory_equal(m->key, "L-9", 3);
    if (ev.type == RS_EV_LEAD_CREATED) {
        c->created++;
        assert_int_equal(ev.ts_ms, 1772409600000);
        assert_int_equal(ev.u.lead_created.intent_tier, RS_TIER_MQL);
        assert_int_equal(rd_kafka_message_timestamp(m, NULL), 1772409600000);
    } else {
        c->touched++;
        assert_int_equal(ev.type, RS_EV_LEAD_TOUCHED);
        assert_true(ev.u.lead_touched.connected);
    }
    c->n++;
}

static void test_pipeline_send_turns_json_lines_into_events(void **state)
{
    struct env *e = *state;
    char input[4200];
    const char *args[] = { RS_BINARY, "send", "-c", e->config, input, NULL };
    struct sent_check c;
    rd_kafka_t *reader;
    FILE *f;

    need_broker(e, PARTITIONS);
    write_config(e, NULL);
    (void)snprintf(input, sizeof(input), "%s/events.jsonl", e->dir);
    f = fopen(input, "w");
    assert_non_null(f);
    fputs("{\"type\":\"lead.created\",\"id\":\"s1\",\"ts\":1772409600000,\"lead_id\":\"L-9\","
          "\"channel\":\"webinar\",\"intent_tier\":\"mql\",\"segment\":\"smb\"}\n"
          "{\"type\":\"lead.touched\",\"id\":\"s2\",\"ts\":1772409660000,\"lead_id\":\"L-9\","
          "\"rep_id\":\"r\",\"actor_type\":\"human\",\"channel\":\"call\","
          "\"direction\":\"outbound\",\"connected\":true,\"note\":{\"any\":[1,2.5,null]}}\n",
          f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rs_tb_run(args, NULL), 0);
    memset(&c, 0, sizeof(c));
    rs_event_decoder_init(&c.dec, 1 << 20);
    reader = rs_tb_reader_new(e->brokers, e->events, PARTITIONS);
    (void)rs_tb_read(reader, 2, 10000, 30000, on_sent_event, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.created, 1);
    assert_int_equal(c.touched, 1);
    rd_kafka_destroy(reader);
    rs_event_decoder_release(&c.dec);
}

/* ---- dead letters ------------------------------------------------------------------ */

struct bad {
    const char *reason;
    char bytes[6000];
    size_t len;
};

static void pack_map(struct bad *b, int kind)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

#define KEY(k) msgpack_pack_str_with_body(&pk, (k), strlen(k))
#define STR(v) msgpack_pack_str_with_body(&pk, (v), strlen(v))
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    switch (kind) {
    case 0: /* missing lead_id */
        msgpack_pack_map(&pk, 6);
        KEY("type"), STR("lead.created"), KEY("id"), STR("b0"), KEY("ts");
        msgpack_pack_int64(&pk, 1772409600000);
        KEY("channel"), STR("webinar"), KEY("intent_tier"), STR("high"), KEY("segment"), STR("smb");
        break;
    case 1: /* ts as a string */
        msgpack_pack_map(&pk, 3);
        KEY("type"), STR("lead.disqualified"), KEY("id"), STR("b1"), KEY("ts"), STR("today");
        break;
    case 2: /* enum out of range */
        msgpack_pack_map(&pk, 7);
        KEY("type"), STR("lead.created"), KEY("id"), STR("b2"), KEY("ts");
        msgpack_pack_int64(&pk, 1772409600000);
        KEY("lead_id"), STR("L"), KEY("channel"), STR("webinar"), KEY("intent_tier"), STR("urgent"),
            KEY("segment"), STR("smb");
        break;
    case 3: /* unknown type */
        msgpack_pack_map(&pk, 3);
        KEY("type"), STR("lead.teleported"), KEY("id"), STR("b3"), KEY("ts");
        msgpack_pack_int64(&pk, 1772409600000);
        break;
    default: /* not a map */
        msgpack_pack_array(&pk, 2);
        STR("lead.created"), STR("L");
        break;
    }
#undef KEY
#undef STR
    memcpy(b->bytes, sb.data, sb.size);
    b->len = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

struct dlq_seen {
    struct bad *bad;
    size_t n_bad;
    const char *events_topic;
    size_t n;
};

static void header(const rd_kafka_message_t *m, const char *name, char *out, size_t cap)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;

    out[0] = '\0';
    assert_int_equal(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_header_get_last(h, name, &v, &len), RD_KAFKA_RESP_ERR_NO_ERROR);
    if (len >= cap) {
        len = cap - 1;
    }
    memcpy(out, v, len);
    out[len] = '\0';
}

static void on_dead_letter(void *opaque, const rd_kafka_message_t *m)
{
    struct dlq_seen *d = opaque;
    char topic[256], partition[16], offset[32], reason[64], error[512];
    long long off;

    header(m, "revstream.source.topic", topic, sizeof(topic));
    header(m, "revstream.source.partition", partition, sizeof(partition));
    header(m, "revstream.source.offset", offset, sizeof(offset));
    header(m, "revstream.reason", reason, sizeof(reason));
    header(m, "revstream.error", error, sizeof(error));
    assert_string_equal(topic, d->events_topic);
    assert_string_equal(partition, "0");
    off = strtoll(offset, NULL, 10);
    /* Bad message i sits at offset 2i + 1: every bad one follows a good one. */
    assert_true(off % 2 == 1 && (size_t)(off / 2) < d->n_bad);
    assert_string_equal(reason, d->bad[off / 2].reason);
    assert_true(strlen(error) > 0);
    assert_int_equal(m->len, d->bad[off / 2].len);
    assert_memory_equal(m->payload, d->bad[off / 2].bytes, m->len);
    d->n++;
}

static void test_pipeline_bad_messages_go_to_dead_letters_and_state_moves_on(void **state)
{
    struct env *e = *state;
    struct producer p = { 0 };
    struct bad bad[9];
    struct dlq_seen d;
    struct state_summary st;
    rd_kafka_t *reader;
    int64_t t0 = rs_tb_now_ms() - HOUR;
    char lead[32];
    size_t n = 0;

    need_broker(e, 1);
    write_config(e, "event.max_bytes = 4096\n");
    memset(bad, 0, sizeof(bad));
    bad[n].reason = "invalid_msgpack"; /* JSON, not msgpack */
    bad[n].len = (size_t)snprintf(bad[n].bytes, sizeof(bad[n].bytes), "{\"type\":\"x\"}");
    n++;
    bad[n].reason = "invalid_msgpack"; /* a map cut short */
    pack_map(&bad[n], 0);
    bad[n].len -= 4;
    n++;
    bad[n].reason = "missing_field";
    pack_map(&bad[n], 0);
    n++;
    bad[n].reason = "wrong_type";
    pack_map(&bad[n], 1);
    n++;
    bad[n].reason = "bad_value";
    pack_map(&bad[n], 2);
    n++;
    bad[n].reason = "unknown_type";
    pack_map(&bad[n], 3);
    n++;
    bad[n].reason = "not_a_map";
    pack_map(&bad[n], 4);
    n++;
    bad[n].reason = "too_large";
    bad[n].len = 5000;
    memset(bad[n].bytes, 0xc0, bad[n].len); /* 5000 msgpack nils */
    n++;
    bad[n].reason = "invalid_msgpack"; /* empty payload */
    bad[n].len = 0;
    n++;

    p.rk = rs_tb_producer_new(e->brokers);
    p.topic = e->events;
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(lead, sizeof(lead), "G-%zu", i);
        send_created(&p, lead, RS_TIER_LOW, t0 + (int64_t)i); /* offset 2i */
        produce_queued(&p, SIZE_MAX);
        rs_tb_produce(p.rk, p.topic, "bad", 3, bad[i].bytes, bad[i].len); /* offset 2i+1 */
        p.sent++;
    }
    rs_tb_flush(p.rk);
    (void)start_engine(e);
    d.bad = bad;
    d.n_bad = n;
    d.events_topic = e->events;
    d.n = 0;
    reader = rs_tb_reader_new(e->brokers, e->dlq, 1);
    (void)rs_tb_read(reader, n, 60000, 60000, on_dead_letter, &d);
    assert_int_equal(d.n, n);
    for (int waited = 0; waited < 30000; waited += 300) {
        st = inspect(e);
        if (st.applied >= (long long)p.sent) {
            break;
        }
        rs_tb_sleep_ms(300);
    }
    assert_int_equal(stop_engine(e, SIGTERM), 0);
    st = inspect(e);
    assert_int_equal(st.applied, (long long)p.sent); /* the partition moved past each one */
    assert_int_equal(st.created, (long long)n);      /* the good events, and only them */
    rd_kafka_destroy(reader);
    producer_release(&p);
}

#define T(name) cmocka_unit_test_setup_teardown(name, env_setup, env_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pipeline_publishes_exactly_the_expected_alerts),
        T(test_pipeline_live_breach_fires_on_wall_clock_without_further_events),
        T(test_pipeline_live_breach_fires_at_its_deadline_not_at_the_next_tick),
        T(test_pipeline_bad_messages_go_to_dead_letters_and_state_moves_on),
        T(test_pipeline_sigkill_loses_nothing_and_counts_nothing_twice),
        T(test_pipeline_second_instance_takes_over_and_rebuilds_partitions),
        T(test_pipeline_send_turns_json_lines_into_events),
    };

    return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
