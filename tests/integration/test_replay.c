/*
 * test_replay.c - `revstream replay`, `inspect --dump` and event-id deduplication end to end
 * against a real Kafka broker, through the binary as a user runs it.
 *
 * The property under test: state is a function of the events topic alone. A live engine (even
 * one killed with SIGKILL again and again) and any number of replays of the same topic end
 * with byte-identical dumps and publish the same alert ids; duplicates (the same event id
 * again) are counted and leave state untouched; the replay options start, stop, throttle,
 * pause and resume where the contract says.
 *
 * Every event time lies a day or more ahead of the wall clock, so the live engine's wall-clock
 * firing never runs ahead of the event-time watermark, and live and replay must agree exactly.
 *
 * Needs RS_TEST_BROKERS (scripts/test.sh starts deploy/kafka.sh and sets it); skips without.
 * Every test uses topics, a consumer group and state directories of its own.
 */
#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "event.h"
#include "metrics.h" /* RS_MDQ_DUPLICATES: the cells duplicates may change */
#include "tmpdir.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC        INT64_C(1000)
#define MIN        (60 * SEC)
#define HOUR       (60 * MIN)
#define DAY        (24 * HOUR)
#define PARTITIONS 3

/* Long enough for a loaded CI machine, short enough that a hang fails within the ctest
 * TIMEOUT of the whole file. */
#define APPLY_TIMEOUT_MS 120000

struct env {
    const char *brokers;
    char *dir;
    char *events, *alerts, *dlq, *metrics, *group;
    char config[4096];
    char state[4096];
    pid_t engine; /* running child, killed at teardown if a test failed before stopping it */
    pid_t replay; /* likewise, a replay run in the background */
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
    if (e->replay > 0) {
        (void)kill(e->replay, SIGKILL);
        (void)rs_tb_wait(e->replay);
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

/* A path under the test's directory, in `buf` (at least 4200 bytes). */
static char *path_in(const struct env *e, const char *name, char *buf)
{
    (void)snprintf(buf, 4200, "%s/%s", e->dir, name);
    return buf;
}

/* The output topics of a replay with `suffix`, which the contract says must exist. */
static void create_outputs(struct env *e, const char *suffix)
{
    char name[512];

    (void)snprintf(name, sizeof(name), "%s%s", e->alerts, suffix);
    rs_tb_create_topic(e->brokers, name, PARTITIONS);
    (void)snprintf(name, sizeof(name), "%s%s", e->metrics, suffix);
    rs_tb_create_topic(e->brokers, name, PARTITIONS);
    (void)snprintf(name, sizeof(name), "%s%s", e->dlq, suffix);
    rs_tb_create_topic(e->brokers, name, 1);
}

/* Skip on a developer's machine without a broker; create the topics otherwise. */
static void need_broker(struct env *e, int partitions)
{
    if (e->brokers == NULL) {
        skip();
    }
    rs_tb_create_topic(e->brokers, e->events, partitions);
    create_outputs(e, "");
}

static void write_config_to(struct env *e, const char *path, const char *events, const char *extra)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f,
            "# written by test_replay\n"
            "kafka.bootstrap.servers = %s\n"
            "kafka.group.id = %s\n"
            "kafka.group.instance.id = %s-1\n"
            "kafka.session.timeout.ms = 6000\n"
            "topic.events = %s\n"
            "topic.alerts = %s\n"
            "topic.dlq = %s\n"
            "topic.metrics = %s\n"
            "http.bind = off\n"
            "state.dir = %s\n"
            "log.level = warn\n"
            "%s",
            e->brokers, e->group, e->group, events, e->alerts, e->dlq, e->metrics, e->state,
            extra != NULL ? extra : "");
    assert_int_equal(fclose(f), 0);
}

static void write_config(struct env *e, const char *extra)
{
    write_config_to(e, e->config, e->events, extra);
}

static void start_engine(struct env *e)
{
    const char *args[] = { RS_BINARY, "run", "-c", e->config, NULL };

    e->engine = rs_tb_spawn(args, NULL);
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

static void
envelope(struct rs_event *ev, enum rs_event_type type, const char *id, int64_t ts)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    ev->id = S(id);
    ev->ts_ms = ts;
}

static void enc_created(struct rs_buf *out, const char *lead, enum rs_intent_tier tier, int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-created", lead);
    envelope(&ev, RS_EV_LEAD_CREATED, id, ts);
    ev.u.lead_created.lead_id = S(lead);
    ev.u.lead_created.channel = S("demo_request");
    ev.u.lead_created.intent_tier = tier;
    ev.u.lead_created.segment = S("smb");
    ev.u.lead_created.owner_id = S("rep-1");
    rs_event_encode(&ev, out);
}

static void enc_touch(struct rs_buf *out, const char *lead, enum rs_actor_type actor, int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-touch-%" PRId64 "-%d", lead, ts, (int)actor);
    envelope(&ev, RS_EV_LEAD_TOUCHED, id, ts);
    ev.u.lead_touched.lead_id = S(lead);
    ev.u.lead_touched.rep_id = S("rep-1");
    ev.u.lead_touched.actor_type = actor;
    ev.u.lead_touched.channel = RS_CH_CALL;
    ev.u.lead_touched.direction = RS_DIR_OUTBOUND;
    rs_event_encode(&ev, out);
}

static void enc_disqualified(struct rs_buf *out, const char *lead, int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-dq", lead);
    envelope(&ev, RS_EV_LEAD_DISQUALIFIED, id, ts);
    ev.u.lead_disqualified.lead_id = S(lead);
    ev.u.lead_disqualified.reason = S("spam");
    rs_event_encode(&ev, out);
}

static void enc_qualified(struct rs_buf *out, const char *lead, enum rs_qual_stage stage,
                          int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-%s", lead, rs_qual_stage_name(stage));
    envelope(&ev, RS_EV_LEAD_QUALIFIED, id, ts);
    ev.u.lead_qualified.lead_id = S(lead);
    ev.u.lead_qualified.stage = stage;
    ev.u.lead_qualified.qualified_by = S("rep-1");
    rs_event_encode(&ev, out);
}

static void enc_opp_created(struct rs_buf *out, const char *opp, const char *lead,
                            const char *account, int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-created", opp);
    envelope(&ev, RS_EV_OPP_CREATED, id, ts);
    ev.account = S(account);
    ev.u.opp_created.opportunity_id = S(opp);
    ev.u.opp_created.account_id = S(account);
    ev.u.opp_created.lead_id = S(lead);
    ev.u.opp_created.owner_id = S("rep-1");
    ev.u.opp_created.deal_type = RS_DEAL_NEW;
    ev.u.opp_created.amount_minor = 1200000;
    ev.u.opp_created.currency = S("USD");
    ev.u.opp_created.stage = S("discovery");
    ev.u.opp_created.segment = S("smb");
    rs_event_encode(&ev, out);
}

static void enc_opp_closed(struct rs_buf *out, const char *opp, bool won, int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-closed", opp);
    envelope(&ev, RS_EV_OPP_CLOSED, id, ts);
    ev.u.opp_closed.opportunity_id = S(opp);
    ev.u.opp_closed.outcome = won ? RS_OUTCOME_WON : RS_OUTCOME_LOST;
    ev.u.opp_closed.amount_minor = won ? 1200000 : 0;
    ev.u.opp_closed.currency = S("USD");
    ev.u.opp_closed.loss_reason = won ? RS_STR_NULL : S("price");
    ev.u.opp_closed.close_date_ms = ts;
    rs_event_encode(&ev, out);
}

static void enc_handoff(struct rs_buf *out, const char *opp, const char *account, int64_t ts)
{
    struct rs_event ev;
    char id[96];

    (void)snprintf(id, sizeof(id), "%s-handoff", opp);
    envelope(&ev, RS_EV_HANDOFF_COMPLETED, id, ts);
    ev.account = S(account);
    ev.u.handoff.account_id = S(account);
    ev.u.handoff.opportunity_id = S(opp);
    ev.u.handoff.ae_id = S("rep-1");
    ev.u.handoff.csm_id = S("csm-1");
    ev.u.handoff.checklist_complete = true;
    ev.u.handoff.segment = S("smb");
    rs_event_encode(&ev, out);
}

/* A lead.created far in the future: the watermark passes every deadline before it. */
static void enc_sentinel(struct rs_buf *out, int partition, int64_t ts)
{
    char lead[32];

    (void)snprintf(lead, sizeof(lead), "sentinel-%d", partition);
    enc_created(out, lead, RS_TIER_LOW, ts);
}

/*
 * A stream built in memory, then produced in arrival order: an event's arrival is its event
 * time plus a delay, so a delayed event lands after later ones (out of order, late) and a
 * duplicate is the same bytes queued again.
 */
struct item {
    int32_t partition;
    int64_t arrival;
    size_t order; /* ties keep the order they were queued in */
    struct rs_buf bytes;
};

struct stream {
    struct item *v;
    size_t n, cap;
    size_t duplicates; /* items that repeat an earlier one byte for byte */
    size_t late;       /* items delayed beyond time.max_out_of_orderness */
};

static struct rs_buf *queue(struct stream *s, int32_t partition, int64_t arrival)
{
    struct item *it;

    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 512 : s->cap * 2;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        assert_non_null(s->v);
    }
    it = &s->v[s->n];
    it->partition = partition;
    it->arrival = arrival;
    it->order = s->n++;
    rs_buf_init(&it->bytes);
    return &it->bytes;
}

/* Queue the same bytes as item `i` again, `delay_ms` after it arrives. */
static void duplicate(struct stream *s, size_t i, int64_t delay_ms)
{
    int32_t partition = s->v[i].partition;
    int64_t arrival = s->v[i].arrival + delay_ms;
    struct rs_buf *b = queue(s, partition, arrival);

    rs_buf_append(b, s->v[i].bytes.data, s->v[i].bytes.len);
    s->duplicates++;
}

static int cmp_item(const void *a, const void *b)
{
    const struct item *x = a, *y = b;

    if (x->arrival != y->arrival) {
        return x->arrival < y->arrival ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order);
}

/*
 * Produce the items of `partition` (-1: of every partition) in arrival order; adds to
 * per_partition what each partition got.
 */
static void produce_stream(rd_kafka_t *rk, const char *topic, struct stream *s, int partition,
                           size_t per_partition[PARTITIONS])
{
    qsort(s->v, s->n, sizeof(*s->v), cmp_item);
    for (size_t i = 0; i < s->n; i++) {
        if (partition >= 0 && s->v[i].partition != partition) {
            continue;
        }
        rs_tb_produce_to(rk, topic, s->v[i].partition, s->v[i].bytes.data, s->v[i].bytes.len);
        per_partition[s->v[i].partition]++;
    }
    rs_tb_flush(rk);
}

static void stream_release(struct stream *s)
{
    for (size_t i = 0; i < s->n; i++) {
        rs_buf_release(&s->v[i].bytes);
    }
    free(s->v);
}

/* One sentinel on each partition in `partitions` (a bit set). */
static size_t produce_sentinels(rd_kafka_t *rk, const char *topic, unsigned partitions, int64_t ts)
{
    struct rs_buf b;
    size_t n = 0;

    rs_buf_init(&b);
    for (int i = 0; i < PARTITIONS; i++) {
        if ((partitions & (1u << i)) != 0) {
            rs_buf_reset(&b);
            enc_sentinel(&b, i, ts);
            rs_tb_produce_to(rk, topic, i, b.data, b.len);
            n++;
        }
    }
    rs_buf_release(&b);
    rs_tb_flush(rk);
    return n;
}

/* ---- inspect ----------------------------------------------------------------------- */

struct summary {
    long long next_offset[PARTITIONS]; /* -1: no row for the partition */
    long long applied[PARTITIONS];
    long long next_offset_sum, applied_sum;
    long long outbox;
    long long duplicates; /* -1: the summary has no such field */
    long long created;
};

static struct summary inspect_dir(struct env *e, const char *config, const char *state_dir)
{
    const char *args[] = { RS_BINARY, "inspect", "-c", config, "--state-dir", state_dir, NULL };
    char out[4200];
    struct summary s;
    json_error_t jerr;
    json_t *root, *offsets, *o, *v;
    size_t i;

    memset(&s, 0, sizeof(s));
    for (int p = 0; p < PARTITIONS; p++) {
        s.next_offset[p] = -1;
        s.applied[p] = -1;
    }
    assert_int_equal(rs_tb_run(args, path_in(e, "inspect.json", out)), 0);
    root = json_load_file(out, 0, &jerr);
    if (root == NULL) {
        print_error("inspect printed no JSON: %s\n", jerr.text);
        fail();
    }
    offsets = json_object_get(root, "offsets");
    json_array_foreach(offsets, i, o)
    {
        long long p = json_integer_value(json_object_get(o, "partition"));

        assert_true(p >= 0 && p < PARTITIONS);
        s.next_offset[p] = json_integer_value(json_object_get(o, "next_offset"));
        s.applied[p] = json_integer_value(json_object_get(o, "applied"));
        s.next_offset_sum += s.next_offset[p];
        s.applied_sum += s.applied[p];
    }
    s.outbox = json_integer_value(json_object_get(root, "outbox"));
    v = json_object_get(root, "duplicates");
    s.duplicates = json_is_integer(v) ? json_integer_value(v) : -1;
    s.created = json_integer_value(json_object_get(json_object_get(root, "leads"), "created"));
    json_decref(root);
    return s;
}

static struct summary inspect_live(struct env *e)
{
    return inspect_dir(e, e->config, e->state);
}

/* Wait until the live engine has consumed `messages` and its outbox is empty. */
static struct summary wait_applied(struct env *e, long long messages)
{
    struct summary s;

    for (int waited = 0;; waited += 300) {
        s = inspect_live(e);
        if ((s.next_offset_sum >= messages && s.outbox == 0) || waited >= APPLY_TIMEOUT_MS) {
            break;
        }
        rs_tb_sleep_ms(300);
    }
    assert_int_equal(s.next_offset_sum, messages);
    return s;
}

/* `inspect --dump` of `state_dir` into `out`. */
static void dump(struct env *e, const char *state_dir, const char *out)
{
    const char *args[] = { RS_BINARY,     "inspect", "-c",     e->config,
                           "--state-dir", state_dir, "--dump", NULL };

    assert_int_equal(rs_tb_run(args, out), 0);
}

/* Whether a dump line is left out of a comparison. */
typedef bool skip_fn(const char *line);

/* The lines of a dump, without those `leave_out` names (NULL: none). */
struct dump_lines {
    char *text;
    char **v;
    size_t n;
};

static void dump_lines_load(struct dump_lines *d, const char *path, skip_fn *leave_out)
{
    size_t cap = 0;
    char *line, *next;

    d->text = rs_tb_slurp(path);
    d->v = NULL;
    d->n = 0;
    assert_non_null(d->text);
    for (line = d->text; *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        } else {
            next = line + strlen(line);
        }
        if (leave_out != NULL && leave_out(line)) {
            continue;
        }
        if (d->n == cap) {
            cap = cap == 0 ? 1024 : cap * 2;
            d->v = realloc(d->v, cap * sizeof(*d->v));
            assert_non_null(d->v);
        }
        d->v[d->n++] = line;
    }
}

static void dump_lines_release(struct dump_lines *d)
{
    free(d->v);
    free(d->text);
}

/* "db<TAB>hex key" of a line: its length. */
static size_t entry_len(const char *line)
{
    const char *tab = strchr(line, '\t');

    tab = tab != NULL ? strchr(tab + 1, '\t') : NULL;
    return tab != NULL ? (size_t)(tab - line) : strlen(line);
}

/*
 * Compare two dumps, leaving out the lines `leave_out` names (NULL: none). On a
 * difference, prints the first differing line of each, then how many entries only one side
 * has or both have with other values (the dumps are in database and key order, so a merge
 * pairs them). Returns whether they are equal; *lines gets the line count of `a_path`.
 */
static bool same_dump(const char *a_path, const char *b_path, skip_fn *leave_out, size_t *lines)
{
    struct dump_lines a, b;
    size_t i = 0, j = 0, only_a = 0, only_b = 0, changed = 0, first;

    dump_lines_load(&a, a_path, leave_out);
    dump_lines_load(&b, b_path, leave_out);
    if (lines != NULL) {
        *lines = a.n;
    }
    for (first = 0; first < a.n && first < b.n && strcmp(a.v[first], b.v[first]) == 0; first++) {
    }
    if (first == a.n && first == b.n) {
        dump_lines_release(&a);
        dump_lines_release(&b);
        return true;
    }
    print_error("dumps differ at line %zu:\n  %s: %.300s\n  %s: %.300s\n", first + 1, a_path,
                first < a.n ? a.v[first] : "(end)", b_path, first < b.n ? b.v[first] : "(end)");
    while (i < a.n || j < b.n) {
        int c;

        if (i == a.n || j == b.n) {
            c = i == a.n ? 1 : -1;
        } else {
            size_t la = entry_len(a.v[i]), lb = entry_len(b.v[j]);

            c = strncmp(a.v[i], b.v[j], la < lb ? la : lb);
            c = c != 0 ? c : (la < lb ? -1 : la > lb);
        }
        if (c < 0) {
            if (only_a++ < 3) {
                print_error("  only in the first: %.200s\n", a.v[i]);
            }
            i++;
        } else if (c > 0) {
            if (only_b++ < 3) {
                print_error("  only in the second: %.200s\n", b.v[j]);
            }
            j++;
        } else {
            if (strcmp(a.v[i], b.v[j]) != 0 && changed++ < 3) {
                print_error("  changed: %.200s\n       to: %.200s\n", a.v[i], b.v[j]);
            }
            i++;
            j++;
        }
    }
    print_error("  %zu and %zu lines: %zu entries only in the first, %zu only in the second, %zu "
                "changed\n",
                a.n, b.n, only_a, only_b, changed);
    dump_lines_release(&a);
    dump_lines_release(&b);
    return false;
}

/* ---- replay ------------------------------------------------------------------------ */

#define REPLAY_ARGS_MAX 16

/* argv for `revstream replay -c config --state-dir dir opts...` (opts NULL-terminated). */
static void replay_argv(const char **argv, const char *config, const char *dir,
                        const char *const *opts)
{
    int n = 0;

    argv[n++] = RS_BINARY;
    argv[n++] = "replay";
    argv[n++] = "-c";
    argv[n++] = config;
    argv[n++] = "--state-dir";
    argv[n++] = dir;
    for (; opts != NULL && *opts != NULL; opts++) {
        assert_true(n < REPLAY_ARGS_MAX - 1);
        argv[n++] = *opts;
    }
    argv[n] = NULL;
}

/* Run a replay to completion; stdout to `out` and stderr to `err_out` (either may be NULL). */
static int replay(const char *config, const char *dir, const char *const *opts, const char *out,
                  const char *err_out)
{
    const char *argv[REPLAY_ARGS_MAX];

    replay_argv(argv, config, dir, opts);
    return rs_tb_run_io(argv, out, err_out);
}

/* What the final line "replay: done events=N dead_letters=D duplicates=X ..." says. */
struct replay_done {
    long long events, dead_letters, duplicates;
};

static long long field(const char *line, const char *name)
{
    const char *p = strstr(line, name);

    return p != NULL ? strtoll(p + strlen(name), NULL, 10) : -1;
}

static struct replay_done replay_done(const char *out)
{
    char *text = rs_tb_slurp(out);
    struct replay_done d = { -1, -1, -1 };
    const char *line;

    assert_non_null(text);
    line = strstr(text, "replay: done ");
    if (line == NULL) {
        print_error("no 'replay: done' line in the output:\n%s\n", text);
        fail();
    }
    d.events = field(line, " events=");
    d.dead_letters = field(line, " dead_letters=");
    d.duplicates = field(line, " duplicates=");
    free(text);
    return d;
}

/* ---- alerts read back -------------------------------------------------------------- */

struct ids {
    struct rs_event_decoder dec;
    char (*v)[65];
    size_t n, cap;
    size_t messages;
    size_t kinds[RS_ALERT__COUNT];
};

static void ids_init(struct ids *s)
{
    memset(s, 0, sizeof(*s));
    rs_event_decoder_init(&s->dec, 1 << 20);
}

static void ids_release(struct ids *s)
{
    rs_event_decoder_release(&s->dec);
    free(s->v);
}

static void on_alert(void *opaque, const rd_kafka_message_t *m)
{
    struct ids *s = opaque;
    struct rs_alert_view a;
    struct rs_err err;

    assert_int_equal(rs_alert_view_decode(&s->dec, m->payload, m->len, &a, &err), 0);
    assert_int_equal(a.alert_id.len, 64);
    s->messages++;
    s->kinds[a.kind]++;
    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 256 : s->cap * 2;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        assert_non_null(s->v);
    }
    memcpy(s->v[s->n], a.alert_id.ptr, 64);
    s->v[s->n++][64] = '\0';
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 64);
}

/* Sort and drop repeats: afterwards n is the number of distinct ids. */
static void ids_distinct(struct ids *s)
{
    size_t w = 0;

    qsort(s->v, s->n, sizeof(*s->v), cmp_id);
    for (size_t r = 0; r < s->n; r++) {
        if (w == 0 || memcmp(s->v[w - 1], s->v[r], 64) != 0) {
            memmove(s->v[w++], s->v[r], sizeof(*s->v));
        }
    }
    s->n = w;
}

/* Every alert on `topic` (the output of a finished run), as distinct ids. */
static void read_alerts(struct env *e, const char *topic, int idle_ms, struct ids *s)
{
    rd_kafka_t *reader = rs_tb_reader_new(e->brokers, topic, PARTITIONS);

    (void)rs_tb_read(reader, 0, idle_ms, APPLY_TIMEOUT_MS, on_alert, s);
    rd_kafka_destroy(reader);
    ids_distinct(s);
}

/* How many ids of `want` (distinct) are missing from `have` (distinct); prints a few. */
static size_t missing_ids(const struct ids *have, const struct ids *want, const char *what)
{
    size_t missing = 0;

    for (size_t i = 0, j = 0; j < want->n;) {
        int c = i == have->n ? 1 : memcmp(have->v[i], want->v[j], 64);

        if (c < 0) {
            i++;
        } else if (c > 0) {
            if (missing++ < 5) {
                print_error("%s: alert %s missing\n", what, want->v[j]);
            }
            j++;
        } else {
            i++;
            j++;
        }
    }
    return missing;
}

/* Messages on `topic`, whatever they hold (the dead letters). */
static void count_message(void *opaque, const rd_kafka_message_t *m)
{
    (void)m;
    (*(size_t *)opaque)++;
}

static size_t count_messages(struct env *e, const char *topic, int partitions)
{
    rd_kafka_t *reader = rs_tb_reader_new(e->brokers, topic, partitions);
    size_t n = 0;

    (void)rs_tb_read(reader, 0, 2000, 30000, count_message, &n);
    rd_kafka_destroy(reader);
    return n;
}

/* ---- 1. determinism ---------------------------------------------------------------- */

enum outcome { ON_TIME, NEAR_LINE, LATE, VERY_LATE, NEVER, DISQUALIFIED, OUTCOMES };

static const int64_t thresholds[RS_TIER__COUNT] = { 5 * MIN, 60 * MIN, 24 * HOUR };
static const double touch_at[OUTCOMES] = { 0.5, 0.9, 1.5, 2.5, 0, 0 };

#define DET_LEADS 72

/*
 * Leads on partitions 0 and 1 (partition 2 stays idle), every SLA-01 outcome and tier, a
 * funnel for some of them (MQL, SQL, opportunity, won or lost, handoff). Some touches arrive
 * late within time.max_out_of_orderness (10m), some beyond it (after their deadlines fired:
 * the alerts are retracted). With `dups`, some events are produced twice, at once or later
 * within the dedup window.
 */
static void build_determinism_stream(struct stream *s, int64_t t0, bool dups)
{
    char lead[32], opp[32], account[32];

    for (int i = 0; i < DET_LEADS; i++) {
        enum rs_intent_tier tier = (enum rs_intent_tier)(i % RS_TIER__COUNT);
        enum outcome o = (enum outcome)(i / RS_TIER__COUNT % OUTCOMES);
        int32_t part = i % 2;
        int64_t created = t0 + i * 2 * MIN;
        int64_t th = thresholds[tier];
        size_t at;

        (void)snprintf(lead, sizeof(lead), "D-%03d", i);
        (void)snprintf(opp, sizeof(opp), "O-%03d", i);
        (void)snprintf(account, sizeof(account), "A-%03d", i);
        at = s->n;
        enc_created(queue(s, part, created), lead, tier, created);
        if (dups && i % 6 == 2) {
            duplicate(s, at, 0); /* right behind the original */
        }
        if (o == DISQUALIFIED) {
            enc_disqualified(queue(s, part, created + th / 2), lead, created + th / 2);
        } else if (touch_at[o] > 0) {
            int64_t auto_ts = created + th / 10;
            int64_t human_ts = created + (int64_t)(touch_at[o] * (double)th);
            int64_t delay = 0;

            enc_touch(queue(s, part, auto_ts), lead, RS_ACTOR_AUTOMATION, auto_ts);
            if (i % 5 == 1) {
                delay = 5 * MIN; /* out of order, within the allowed lateness */
            } else if (i % 7 == 3) {
                delay = 3 * DAY; /* long after its deadlines fired */
                s->late++;
            }
            at = s->n;
            enc_touch(queue(s, part, human_ts + delay), lead, RS_ACTOR_HUMAN, human_ts);
            if (dups && i % 9 == 4) {
                duplicate(s, at, 1 * DAY);
            }
        }
        if (i % 4 == 0) {
            enc_qualified(queue(s, part, created + 30 * MIN), lead, RS_QUAL_MQL,
                          created + 30 * MIN);
        }
        if (i % 8 == 0) {
            int64_t closed = created + 10 * DAY;

            enc_qualified(queue(s, part, created + 2 * HOUR), lead, RS_QUAL_SQL,
                          created + 2 * HOUR);
            at = s->n;
            enc_opp_created(queue(s, part, created + 3 * HOUR), opp, lead, account,
                            created + 3 * HOUR);
            if (dups) {
                duplicate(s, at, 1 * HOUR);
            }
            enc_opp_closed(queue(s, part, closed), opp, i % 16 == 0, closed);
            if (i % 16 == 0) {
                at = s->n;
                enc_handoff(queue(s, part, closed + 4 * HOUR), opp, account, closed + 4 * HOUR);
                if (dups) {
                    duplicate(s, at, 2 * HOUR);
                }
            }
        }
    }
}

/*
 * What duplicates may change: the offsets (every message counts, duplicate or not) and the
 * cells of the duplicate-events metric, aggregates keyed partition(u32) metric(u16) ...
 */
static bool offsets_or_duplicate_count(const char *line)
{
    static const char agg[] = "aggregates\t";
    char metric[8];

    (void)snprintf(metric, sizeof(metric), "%04x", (unsigned)RS_MDQ_DUPLICATES);
    return strncmp(line, "offsets\t", 8) == 0 ||
           (strncmp(line, agg, sizeof(agg) - 1) == 0 && strlen(line) > sizeof(agg) - 1 + 12 &&
            strncmp(line + sizeof(agg) - 1 + 8, metric, 4) == 0);
}

/*
 * Live, then two replays of the same topic into fresh directories: the three dumps are
 * byte-identical and the three alert topics hold the same set of alert ids. Duplicates are
 * counted and change nothing else: a replay of the same stream without them dumps the same
 * state but for the offsets and the duplicate count. `extra` is added to the configuration.
 */
static void check_determinism(struct env *e, const char *extra)
{
    struct stream s = { 0 }, clean = { 0 };
    size_t per_part[PARTITIONS] = { 0 }, per_part_clean[PARTITIONS] = { 0 };
    int64_t t0 = rs_tb_now_ms() + DAY;
    int64_t end_ts = t0 + 60 * DAY;
    char d1[4200], d2[4200], d0[4200], dl[4200], f1[4200], f2[4200], f0[4200], out[4200];
    char config0[4200], alerts_r1[512], alerts_r2[512];
    char *events0 = rs_tb_unique("events-nodup");
    const char *opts_r1[] = { "--from", "earliest", "--topic-suffix", ".r1", NULL };
    const char *opts_r2[] = { "--topic-suffix", ".r2", NULL };
    const char *opts_quiet[] = { "--no-output", NULL };
    struct ids live, r1, r2;
    struct summary sl, s1, s0;
    struct replay_done done;
    size_t sent, lines = 0;
    rd_kafka_t *rk;

    need_broker(e, PARTITIONS);
    create_outputs(e, ".r1");
    create_outputs(e, ".r2");
    rs_tb_create_topic(e->brokers, events0, PARTITIONS);
    write_config(e, extra);
    build_determinism_stream(&s, t0, true);
    build_determinism_stream(&clean, t0, false);
    assert_true(s.duplicates > 0 && s.late > 0);

    /*
     * Live, partition 1 first: the engine applies all of it before partition 0 gets a
     * message, while a replay reads the partitions side by side or 0 first. State is per
     * partition, so how partitions interleave must not show in it.
     */
    rk = rs_tb_producer_new(e->brokers);
    start_engine(e);
    produce_stream(rk, e->events, &s, 1, per_part);
    (void)wait_applied(e, (long long)per_part[1]);
    produce_stream(rk, e->events, &s, 0, per_part);
    sent = s.n + produce_sentinels(rk, e->events, 0x3, end_ts);
    assert_int_equal(per_part[2], 0); /* the idle partition */
    (void)wait_applied(e, (long long)sent);
    assert_int_equal(stop_engine(e, SIGTERM), 0);
    sl = inspect_live(e);
    assert_int_equal(sl.outbox, 0);
    assert_int_equal(sl.created, DET_LEADS + 2);
    assert_int_equal(sl.duplicates, (long long)s.duplicates); /* counted, and only once */
    ids_init(&live);
    read_alerts(e, e->alerts, 3000, &live);
    assert_int_equal(count_messages(e, e->dlq, 1), 0); /* every event is well formed */
    /* The stream does what it is meant to: alerts fire, and the late touches retract some. */
    assert_true(live.kinds[RS_ALERT_BREACHED] > 0);
    assert_true(live.kinds[RS_ALERT_RETRACTED] > 0);
    dump(e, e->state, path_in(e, "live.dump", dl));

    /* Two replays into fresh directories, each to its own output topics. */
    path_in(e, "d1", d1);
    path_in(e, "d2", d2);
    assert_int_equal(replay(e->config, d1, opts_r1, path_in(e, "r1.out", out), NULL), 0);
    done = replay_done(out);
    print_message("replay 1: events=%lld dead_letters=%lld duplicates=%lld (produced %zu, of them "
                  "%zu duplicates, %zu late beyond the allowed lateness)\n",
                  done.events, done.dead_letters, done.duplicates, sent, s.duplicates, s.late);
    assert_int_equal(done.duplicates, (long long)s.duplicates);
    assert_int_equal(done.dead_letters, 0);
    assert_int_equal(replay(e->config, d2, opts_r2, path_in(e, "r2.out", out), NULL), 0);
    s1 = inspect_dir(e, e->config, d1);
    assert_int_equal(s1.next_offset_sum, (long long)sent);
    assert_int_equal(s1.outbox, 0);
    dump(e, d1, path_in(e, "d1.dump", f1));
    dump(e, d2, path_in(e, "d2.dump", f2));
    assert_true(same_dump(dl, f1, NULL, &lines));
    assert_true(same_dump(f1, f2, NULL, NULL));
    assert_true(lines > 0);

    (void)snprintf(alerts_r1, sizeof(alerts_r1), "%s.r1", e->alerts);
    (void)snprintf(alerts_r2, sizeof(alerts_r2), "%s.r2", e->alerts);
    ids_init(&r1);
    ids_init(&r2);
    read_alerts(e, alerts_r1, 3000, &r1);
    read_alerts(e, alerts_r2, 3000, &r2);
    print_message("dump lines %zu; alerts: live %zu messages %zu distinct, .r1 %zu/%zu, .r2 "
                  "%zu/%zu\n",
                  lines, live.messages, live.n, r1.messages, r1.n, r2.messages, r2.n);
    assert_true(live.n > 0);
    assert_int_equal(missing_ids(&live, &r1, "live vs .r1"), 0);
    assert_int_equal(missing_ids(&r1, &live, ".r1 vs live"), 0);
    assert_int_equal(missing_ids(&r2, &r1, ".r2 vs .r1"), 0);
    assert_int_equal(missing_ids(&r1, &r2, ".r1 vs .r2"), 0);

    /* The same stream without the duplicates: the same state, but for what counts them. */
    produce_stream(rk, events0, &clean, -1, per_part_clean);
    (void)produce_sentinels(rk, events0, 0x3, end_ts);
    write_config_to(e, path_in(e, "nodup.conf", config0), events0, extra);
    path_in(e, "d0", d0);
    assert_int_equal(replay(config0, d0, opts_quiet, path_in(e, "r0.out", out), NULL), 0);
    done = replay_done(out);
    assert_int_equal(done.duplicates, 0);
    s0 = inspect_dir(e, config0, d0);
    assert_int_equal(s0.next_offset_sum, (long long)(clean.n + 2));
    dump(e, d0, path_in(e, "d0.dump", f0));
    assert_true(same_dump(f0, f1, offsets_or_duplicate_count, NULL));

    ids_release(&live);
    ids_release(&r1);
    ids_release(&r2);
    rd_kafka_destroy(rk);
    stream_release(&s);
    stream_release(&clean);
    free(events0);
}

/* SLA-01 and the funnel rules and metrics; SLA-07 has a test of its own below. */
static void test_replay_live_and_two_replays_agree_byte_for_byte(void **state)
{
    check_determinism(*state, "sla.freshness.enabled = false\n");
}

/*
 * The same with every rule at its default, SLA-07 data freshness included: a source's
 * silence is judged across the partitions of a store, which must not make the state depend on
 * how the partitions' events interleave (they interleave differently live and in a replay).
 */
static void test_replay_agrees_with_live_with_data_freshness_on(void **state)
{
    check_determinism(*state, NULL);
}

/* ---- 2. SIGKILL, again and again --------------------------------------------------- */

#define FEED_STEP_MS (20 * SEC) /* event time between two events of the feed */

/*
 * The feed: event k at t0 + k * FEED_STEP_MS. Every third event creates a lead (high or mql
 * intent); the other two touch earlier leads, so that the human touch lands before the
 * warning, between breach and escalation, or never (those leads get automation touches only).
 */
struct feed {
    rd_kafka_t *rk;
    const char *topic;
    int64_t t0;
    atomic_bool stop;
    atomic_size_t sent;
};

static void feed_event(struct rs_buf *b, char *lead, size_t lead_size, int64_t t0, size_t k)
{
    int64_t ts = t0 + (int64_t)k * FEED_STEP_MS;
    size_t j = k / 3;
    size_t back = k % 3 == 1 ? 2 : 6; /* 7 steps (140 s) or 20 steps (400 s) after creation */
    size_t m = j >= back ? j - back : j;
    /* Lead m is never touched by a human (m % 5 == 0), late (1: breached, then recovered),
     * or on time (the rest). */
    bool human = j >= back && (back == 2 ? m % 5 >= 2 : m % 5 == 1);

    if (k % 3 == 0) {
        (void)snprintf(lead, lead_size, "C-%06zu", j);
        enc_created(b, lead, j % 4 == 3 ? RS_TIER_MQL : RS_TIER_HIGH, ts);
        return;
    }
    (void)snprintf(lead, lead_size, "C-%06zu", m);
    enc_touch(b, lead, human ? RS_ACTOR_HUMAN : RS_ACTOR_AUTOMATION, ts);
}

static void *feed_run(void *arg)
{
    struct feed *f = arg;
    struct rs_buf b;
    char lead[32];

    rs_buf_init(&b);
    for (size_t k = 0; !atomic_load(&f->stop); k++) {
        rs_buf_reset(&b);
        feed_event(&b, lead, sizeof(lead), f->t0, k);
        rs_tb_produce(f->rk, f->topic, lead, strlen(lead), b.data, b.len);
        atomic_store(&f->sent, k + 1);
        if (k % 20 == 19) {
            rs_tb_sleep_ms(20); /* about a thousand events a second */
        }
    }
    rs_tb_flush(f->rk);
    rs_buf_release(&b);
    return NULL;
}

/*
 * Events keep arriving while the engine is killed with SIGKILL at random moments (while
 * joining the group, mid-batch, while publishing) and restarted, over twenty times. At the end
 * the live state dumps exactly as a clean replay of the topic, and every alert the clean
 * state implies was published live at least once (repeats allowed: at least once).
 */
static void test_replay_state_after_sigkills_equals_clean_replay(void **state)
{
    struct env *e = *state;
    struct feed f;
    pthread_t thread;
    unsigned seed = (unsigned)rs_tb_now_ms();
    const int kills_wanted = 24;
    int kills = 0;
    char rdir[4200], cdir[4200], fl[4200], fr[4200], out[4200], alerts_clean[512];
    const char *opts_quiet[] = { "--from", "earliest", "--no-output", NULL };
    const char *opts_clean[] = { "--topic-suffix", ".clean", NULL };
    struct ids live, clean;
    struct summary sl;
    struct replay_done done;
    size_t sent, lines = 0;
    rd_kafka_t *rk;

    need_broker(e, PARTITIONS);
    create_outputs(e, ".clean");
    write_config(e, "batch.max_events = 200\n"
                    "# SLA-01 is under test; the feed's gaps are no silent sources.\n"
                    "sla.freshness.enabled = false\n"
                    "# The KPI guardrails judge sums over partitions at the end of batches, and\n"
                    "# kills move batch ends: their episodes are not part of what a replay\n"
                    "# rebuilds exactly (README, \"The revenue ledger\").\n"
                    "guardrail.speed_to_lead.enabled = false\n");
    srand(seed);
    print_message("kill seed %u\n", seed);
    memset(&f, 0, sizeof(f));
    f.rk = rs_tb_producer_new(e->brokers);
    f.topic = e->events;
    f.t0 = rs_tb_now_ms() + DAY;
    atomic_init(&f.stop, false);
    atomic_init(&f.sent, 0);
    assert_int_equal(pthread_create(&thread, NULL, feed_run, &f), 0);

    for (; kills < kills_wanted; kills++) {
        /* A third die while joining the group or taking the assignment, a third in the first
         * batches, a third once they run and publish in steady state. */
        int phase = kills % 3;
        int delay_ms = phase == 0   ? rand() % 400
                       : phase == 1 ? 400 + rand() % 1100
                                    : 1500 + rand() % 2500;

        start_engine(e);
        rs_tb_sleep_ms(delay_ms);
        assert_int_equal(stop_engine(e, SIGKILL), 128 + SIGKILL);
    }
    atomic_store(&f.stop, true);
    assert_int_equal(pthread_join(thread, NULL), 0);
    sent = atomic_load(&f.sent);

    /* The last run sees the end, which the sentinels' watermark marks, and stops cleanly. */
    rk = rs_tb_producer_new(e->brokers);
    start_engine(e);
    sent += produce_sentinels(rk, e->events, 0x7, f.t0 + (int64_t)sent * FEED_STEP_MS + 60 * DAY);
    sl = wait_applied(e, (long long)sent);
    assert_int_equal(stop_engine(e, SIGTERM), 0);
    sl = inspect_live(e);
    assert_int_equal(sl.outbox, 0);
    assert_int_equal(sl.applied_sum, (long long)sent); /* no message applied twice */
    dump(e, e->state, path_in(e, "live.dump", fl));

    path_in(e, "replay", rdir);
    assert_int_equal(replay(e->config, rdir, opts_quiet, path_in(e, "r.out", out), NULL), 0);
    done = replay_done(out);
    assert_int_equal(done.events, (long long)sent);
    dump(e, rdir, path_in(e, "replay.dump", fr));
    assert_true(same_dump(fl, fr, NULL, &lines));

    path_in(e, "clean", cdir);
    assert_int_equal(replay(e->config, cdir, opts_clean, path_in(e, "c.out", out), NULL), 0);
    (void)snprintf(alerts_clean, sizeof(alerts_clean), "%s.clean", e->alerts);
    ids_init(&live);
    ids_init(&clean);
    read_alerts(e, e->alerts, 3000, &live);
    read_alerts(e, alerts_clean, 3000, &clean);
    print_message("kills %d, events %zu, dump lines %zu; live alert messages %zu, distinct %zu, "
                  "duplicates downstream %zu; clean replay messages %zu, distinct %zu; live ids "
                  "not in the clean replay %zu\n",
                  kills, sent, lines, live.messages, live.n, live.messages - live.n, clean.messages,
                  clean.n, missing_ids(&clean, &live, "live beyond clean"));
    assert_true(clean.n > 0);
    assert_int_equal(missing_ids(&live, &clean, "live vs clean"), 0);

    ids_release(&live);
    ids_release(&clean);
    rd_kafka_destroy(rk);
    rd_kafka_destroy(f.rk);
}

/* ---- 3. replay options ------------------------------------------------------------- */

#define OPT_PARTITIONS 2
#define OPT_EVENTS     400
/* The paused replay: enough events that at --rate PAUSE_RATE it runs for seconds. */
#define PAUSE_EVENTS 4000
#define PAUSE_RATE   "500"

/*
 * n events alternating between partitions 0 and 1, with record timestamps
 * base + i * 500 ms (in the past: brokers refuse record times far in the future) and event
 * times a day ahead. Fills record_ts[i] and offset[i].
 */
static void produce_timed(struct env *e, int64_t base, int n, int64_t *record_ts, int64_t *offset)
{
    rd_kafka_t *rk = rs_tb_producer_new(e->brokers);
    int64_t t0 = rs_tb_now_ms() + DAY;
    int64_t next[OPT_PARTITIONS] = { 0 };
    struct rs_buf b;
    char lead[32];

    rs_buf_init(&b);
    for (int i = 0; i < n; i++) {
        int32_t part = i % OPT_PARTITIONS;
        int j = i / 4; /* two events per lead: created, then a touch two steps later */

        rs_buf_reset(&b);
        (void)snprintf(lead, sizeof(lead), "T-%04d", j * OPT_PARTITIONS + part);
        if (i % 4 < OPT_PARTITIONS) {
            enc_created(&b, lead, RS_TIER_HIGH, t0 + i * MIN);
        } else {
            enc_touch(&b, lead, RS_ACTOR_HUMAN, t0 + i * MIN);
        }
        record_ts[i] = base + i * 500;
        offset[i] = next[part]++;
        rs_tb_produce_at(rk, e->events, part, b.data, b.len, record_ts[i]);
    }
    rs_buf_release(&b);
    rs_tb_flush(rk);
    rd_kafka_destroy(rk);
}

static void iso8601(int64_t ms, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    assert_int_equal(ms % 1000, 0);
    assert_non_null(gmtime_r(&secs, &tm));
    assert_true(strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
}

/*
 * --from TIME starts each partition at its first record with a timestamp >= TIME (and equals
 * --from P:O with those offsets); --to P:O stops there; --rate finishes with every event.
 */
static void test_replay_from_to_and_rate_select_the_right_records(void **state)
{
    struct env *e = *state;
    int64_t record_ts[OPT_EVENTS], offset[OPT_EVENTS];
    int64_t base = (rs_tb_now_ms() / 1000) * 1000 - HOUR;
    int64_t cut =
        base + 150 * 500; /* record 150 is stamped exactly then; 149 half a second before */
    long long first[OPT_PARTITIONS] = { -1, -1 }, end[OPT_PARTITIONS] = { 0 };
    long long expect_from = 0;
    char when[64], from_po[64], to_po[64], rate[32];
    char da[4200], db[4200], dc[4200], dd[4200], fa[4200], fb[4200], out[4200];
    const char *opts_time[] = { "--from", when, "--no-output", NULL };
    const char *opts_po[] = { "--from", from_po, "--no-output", NULL };
    const char *opts_to[] = { "--to", to_po, "--no-output", NULL };
    const char *opts_rate[] = { "--rate", rate, "--no-output", NULL };
    struct summary sa, sc, sd;
    struct replay_done done;

    need_broker(e, OPT_PARTITIONS);
    write_config(e, NULL);
    produce_timed(e, base, OPT_EVENTS, record_ts, offset);
    for (int i = 0; i < OPT_EVENTS; i++) {
        int p = i % OPT_PARTITIONS;

        end[p] = offset[i] + 1;
        if (record_ts[i] >= cut && first[p] < 0) {
            first[p] = offset[i];
        }
        expect_from += record_ts[i] >= cut;
    }
    iso8601(cut, when, sizeof(when));
    (void)snprintf(from_po, sizeof(from_po), "0:%lld,1:%lld", first[0], first[1]);

    /* --from TIME */
    path_in(e, "from-time", da);
    assert_int_equal(replay(e->config, da, opts_time, path_in(e, "a.out", out), NULL), 0);
    done = replay_done(out);
    sa = inspect_dir(e, e->config, da);
    print_message("--from %s: events=%lld (want %lld), next offsets %lld,%lld, applied %lld,%lld\n",
                  when, done.events, expect_from, sa.next_offset[0], sa.next_offset[1],
                  sa.applied[0], sa.applied[1]);
    assert_int_equal(done.events, expect_from);
    for (int p = 0; p < OPT_PARTITIONS; p++) {
        assert_int_equal(sa.next_offset[p], end[p]);
        assert_int_equal(sa.applied[p], end[p] - first[p]);
    }

    /* --from P:O with the offsets TIME resolves to: the same state. */
    path_in(e, "from-po", db);
    assert_int_equal(replay(e->config, db, opts_po, path_in(e, "b.out", out), NULL), 0);
    dump(e, da, path_in(e, "a.dump", fa));
    dump(e, db, path_in(e, "b.dump", fb));
    assert_true(same_dump(fa, fb, NULL, NULL));

    /* --to P:O is exclusive. */
    (void)snprintf(to_po, sizeof(to_po), "0:%lld,1:%lld", end[0] / 2, end[1] / 3);
    path_in(e, "to", dc);
    assert_int_equal(replay(e->config, dc, opts_to, path_in(e, "c.out", out), NULL), 0);
    done = replay_done(out);
    sc = inspect_dir(e, e->config, dc);
    assert_int_equal(done.events, end[0] / 2 + end[1] / 3);
    assert_int_equal(sc.next_offset[0], end[0] / 2);
    assert_int_equal(sc.next_offset[1], end[1] / 3);
    assert_int_equal(sc.applied_sum, end[0] / 2 + end[1] / 3);

    /* --rate: only that it ends with everything applied; timings are for bench/. */
    (void)snprintf(rate, sizeof(rate), "%d", OPT_EVENTS);
    path_in(e, "rate", dd);
    assert_int_equal(replay(e->config, dd, opts_rate, path_in(e, "d.out", out), NULL), 0);
    done = replay_done(out);
    sd = inspect_dir(e, e->config, dd);
    assert_int_equal(done.events, OPT_EVENTS);
    assert_int_equal(sd.applied_sum, OPT_EVENTS);
    assert_int_equal(sd.next_offset_sum, OPT_EVENTS);
}

/* Parse "replay: paused at 0:OFF,1:OFF; resume with --resume" from `text`. */
static bool parse_paused(const char *text, long long at[OPT_PARTITIONS])
{
    const char *p = strstr(text, "replay: paused at ");
    char *end;

    if (p == NULL || strstr(p, "resume with --resume") == NULL) {
        return false;
    }
    p += strlen("replay: paused at ");
    for (int i = 0; i < OPT_PARTITIONS; i++) {
        long part = strtol(p, &end, 10);

        if (end == p || *end != ':' || part < 0 || part >= OPT_PARTITIONS) {
            return false;
        }
        at[part] = strtoll(end + 1, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    return true;
}

/*
 * SIGINT pauses a replay (exit 3) and names the offsets to resume from; --resume finishes it
 * with the same state as a replay that never paused.
 */
static void test_replay_sigint_pauses_and_resume_completes_the_same_state(void **state)
{
    struct env *e = *state;
    static int64_t record_ts[PAUSE_EVENTS], offset[PAUSE_EVENTS];
    long long at[OPT_PARTITIONS] = { -1, -1 };
    char paused[4200], whole[4200], out[4200], err_out[4200], fp[4200], fw[4200];
    const char *opts_slow[] = { "--rate", PAUSE_RATE, "--no-output", NULL };
    const char *opts_resume[] = { "--resume", "--no-output", NULL };
    const char *opts_whole[] = { "--no-output", NULL };
    const char *argv[REPLAY_ARGS_MAX];
    struct summary sp;
    char *text, *errs;
    int rc;

    need_broker(e, OPT_PARTITIONS);
    /* The limiter lets a whole batch through, and every batch until its next 20 ms check;
     * small batches keep that burst a fraction of the run. */
    write_config(e, "batch.max_events = 20\n");
    produce_timed(e, (rs_tb_now_ms() / 1000) * 1000 - HOUR, PAUSE_EVENTS, record_ts, offset);

    /* At 500 events a second the 4000 events take eight seconds: SIGINT comes well before. */
    path_in(e, "paused", paused);
    replay_argv(argv, e->config, paused, opts_slow);
    e->replay = rs_tb_spawn_io(argv, path_in(e, "p.out", out), path_in(e, "p.err", err_out));
    rs_tb_sleep_ms(1500);
    assert_int_equal(kill(e->replay, SIGINT), 0);
    rc = rs_tb_wait(e->replay);
    e->replay = 0;
    text = rs_tb_slurp(out);
    errs = rs_tb_slurp(err_out);
    assert_non_null(text);
    assert_non_null(errs);
    print_message("paused replay: exit %d, stdout \"%s\"\n", rc, text);
    assert_int_equal(rc, 3);
    assert_true(parse_paused(text, at) || parse_paused(errs, at));
    free(text);
    free(errs);
    sp = inspect_dir(e, e->config, paused);
    for (int p = 0; p < OPT_PARTITIONS; p++) {
        /* The offsets printed are the ones the store holds: resuming loses and repeats nothing. */
        assert_true(sp.next_offset[p] == at[p] || (sp.next_offset[p] == -1 && at[p] == 0));
    }
    assert_true(at[0] + at[1] < PAUSE_EVENTS);

    assert_int_equal(replay(e->config, paused, opts_resume, path_in(e, "resume.out", out), NULL),
                     0);
    sp = inspect_dir(e, e->config, paused);
    assert_int_equal(sp.next_offset_sum, PAUSE_EVENTS);
    assert_int_equal(sp.applied_sum, PAUSE_EVENTS);

    path_in(e, "whole", whole);
    assert_int_equal(replay(e->config, whole, opts_whole, path_in(e, "w.out", out), NULL), 0);
    dump(e, paused, path_in(e, "paused.dump", fp));
    dump(e, whole, path_in(e, "whole.dump", fw));
    assert_true(same_dump(fp, fw, NULL, NULL));
}

/*
 * Replaying into the live state directory needs --in-place; with it, it is still refused
 * while the live service holds the directory.
 */
static void test_replay_into_the_live_state_dir_is_refused(void **state)
{
    struct env *e = *state;
    int64_t record_ts[OPT_EVENTS], offset[OPT_EVENTS];
    char out[4200], err_out[4200];
    const char *opts_none[] = { "--no-output", NULL };
    const char *opts_in_place[] = { "--in-place", "--no-output", NULL };
    struct summary before, after;
    char *errs;
    int rc;

    need_broker(e, OPT_PARTITIONS);
    write_config(e, NULL);
    produce_timed(e, (rs_tb_now_ms() / 1000) * 1000 - HOUR, OPT_EVENTS, record_ts, offset);

    rc = replay(e->config, e->state, opts_none, path_in(e, "x.out", out),
                path_in(e, "x.err", err_out));
    errs = rs_tb_slurp(err_out);
    assert_non_null(errs);
    print_message("without --in-place: exit %d, stderr \"%s\"\n", rc, errs);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(errs, "--in-place"));
    free(errs);

    start_engine(e);
    before = wait_applied(e, OPT_EVENTS);
    rc = replay(e->config, e->state, opts_in_place, path_in(e, "y.out", out),
                path_in(e, "y.err", err_out));
    errs = rs_tb_slurp(err_out);
    assert_non_null(errs);
    print_message("--in-place while the service runs: exit %d, stderr \"%s\"\n", rc, errs);
    assert_true(rc != 0 && rc != 3);
    assert_true(strlen(errs) > 0);
    free(errs);
    assert_int_equal(stop_engine(e, SIGTERM), 0);
    after = inspect_live(e);
    assert_int_equal(after.applied_sum, before.applied_sum); /* the refusal touched nothing */
}

#define T(name) cmocka_unit_test_setup_teardown(name, env_setup, env_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_replay_live_and_two_replays_agree_byte_for_byte),
        T(test_replay_agrees_with_live_with_data_freshness_on),
        T(test_replay_state_after_sigkills_equals_clean_replay),
        T(test_replay_from_to_and_rate_select_the_right_records),
        T(test_replay_sigint_pauses_and_resume_completes_the_same_state),
        T(test_replay_into_the_live_state_dir_is_refused),
    };

    /* One test while working on it, e.g. RS_TEST_FILTER='*sigkill*'. */
    if (getenv("RS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("RS_TEST_FILTER"));
    }
    return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
