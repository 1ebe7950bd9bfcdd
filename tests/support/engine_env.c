#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine_env.h"

#include "broker.h"
#include "http_get.h"
#include "tmpdir.h"

#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rs_env_line {
    int64_t ts;
    size_t order;
    char text[768];
};

struct rs_env *rs_env_new(int partitions)
{
    struct rs_env *e = calloc(1, sizeof(*e));

    assert_non_null(e);
    e->brokers = rs_tb_brokers();
    e->partitions = partitions;
    e->dir = rs_test_tmpdir_new();
    e->events = rs_tb_unique("events");
    e->alerts = rs_tb_unique("alerts");
    e->dlq = rs_tb_unique("dlq");
    e->metrics = rs_tb_unique("metrics");
    e->group = rs_tb_unique("group");
    (void)snprintf(e->config, sizeof(e->config), "%s/revstream.conf", e->dir);
    (void)snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
    (void)snprintf(e->input, sizeof(e->input), "%s/events.jsonl", e->dir);
    return e;
}

void rs_env_free(struct rs_env *e)
{
    if (e == NULL) {
        return;
    }
    if (e->engine > 0) {
        (void)kill(e->engine, SIGKILL);
        (void)rs_tb_wait(e->engine);
    }
    rs_test_tmpdir_remove(e->dir);
    free(e->queue);
    free(e->events);
    free(e->alerts);
    free(e->dlq);
    free(e->metrics);
    free(e->group);
    free(e);
}

int rs_env_teardown(void **state)
{
    rs_env_free(*state);
    return 0;
}

void rs_env_need_broker(struct rs_env *e)
{
    if (e->brokers == NULL) {
        skip();
    }
    rs_tb_create_topic(e->brokers, e->events, e->partitions);
    rs_tb_create_topic(e->brokers, e->alerts, e->partitions);
    rs_tb_create_topic(e->brokers, e->dlq, 1);
    rs_tb_create_topic(e->brokers, e->metrics, e->partitions);
}

void rs_env_write_config(struct rs_env *e, const char *extra)
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

pid_t rs_env_start(struct rs_env *e)
{
    const char *args[] = { RS_BINARY, "run", "-c", e->config, NULL };

    e->engine = rs_tb_spawn(args, NULL);
    return e->engine;
}

int rs_env_stop(struct rs_env *e)
{
    int rc;

    assert_int_equal(kill(e->engine, SIGTERM), 0);
    rc = rs_tb_wait(e->engine);
    e->engine = 0;
    return rc;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
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

int64_t rs_env_utc(int y, int mo, int d, int h, int mi)
{
    return days_from_civil(y, mo, d) * RS_ENV_DAY + h * RS_ENV_HOUR + mi * RS_ENV_MIN;
}

void rs_env_line(struct rs_env *e, const char *type, int64_t ts, const char *fields, ...)
{
    struct rs_env_line *q;
    va_list ap;
    int n;

    if (e->queue_n == e->queue_cap) {
        e->queue_cap = e->queue_cap == 0 ? 256 : e->queue_cap * 2;
        e->queue = realloc(e->queue, e->queue_cap * sizeof(*e->queue));
        assert_non_null(e->queue);
    }
    q = &e->queue[e->queue_n];
    q->ts = ts;
    q->order = e->queue_n++;
    n = snprintf(q->text, sizeof(q->text), "{\"type\":\"%s\",\"id\":\"e%zu\",\"ts\":%lld,", type,
                 ++e->n_lines, (long long)ts);
    va_start(ap, fields);
    n += vsnprintf(q->text + n, sizeof(q->text) - (size_t)n, fields, ap);
    va_end(ap);
    assert_true((size_t)n + 2 < sizeof(q->text));
    strcat(q->text, "}");
}

static int cmp_line(const void *a, const void *b)
{
    const struct rs_env_line *x = a, *y = b;

    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order);
}

void rs_env_send(struct rs_env *e)
{
    const char *args[] = { RS_BINARY, "send", "-c", e->config, e->input, NULL };
    FILE *f = fopen(e->input, "w");

    assert_non_null(f);
    qsort(e->queue, e->queue_n, sizeof(*e->queue), cmp_line);
    for (size_t i = 0; i < e->queue_n; i++) {
        fprintf(f, "%s\n", e->queue[i].text);
    }
    assert_int_equal(fclose(f), 0);
    e->queue_n = 0;
    assert_int_equal(rs_tb_run(args, NULL), 0);
}

json_t *rs_env_get_json(struct rs_env *e, const char *path, int want_status)
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

void rs_env_wait_json(struct rs_env *e, const char *path, bool (*cond)(const json_t *v),
                      int timeout_ms)
{
    int64_t deadline = rs_tb_now_ms() + timeout_ms;

    for (;;) {
        char *body = NULL;
        int status = rs_test_http_get(e->port, path, &body, 2000);
        json_t *v = status == 200 ? json_loads(body, 0, NULL) : NULL;
        bool done = v != NULL && cond(v);

        json_decref(v);
        if (done) {
            free(body);
            return;
        }
        if (rs_tb_now_ms() >= deadline) {
            print_error("GET %s: still not there after %d ms: %d %s\n", path, timeout_ms, status,
                        body != NULL ? body : "");
            free(body);
            fail();
        }
        free(body);
        rs_tb_sleep_ms(200);
    }
}

double rs_env_num(const json_t *o, const char *key)
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

void rs_env_assert_near(double got, double want)
{
    double tol = 1e-6 * (fabs(want) > 1 ? fabs(want) : 1);

    if (fabs(got - want) > tol) {
        print_error("got %.9g, want %.9g\n", got, want);
    }
    assert_true(fabs(got - want) <= tol);
}

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
    struct rs_env_metrics *mm = opaque;
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
            assert_true(mm->keys != NULL && mm->inputs != NULL);
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

void rs_env_read_metrics(struct rs_env *e, struct rs_env_metrics *mm)
{
    rd_kafka_t *r = rs_tb_reader_new(e->brokers, e->metrics, e->partitions);

    (void)rs_tb_read(r, 0, 3000, 60000, on_metric_msg, mm);
    rd_kafka_destroy(r);
}

int rs_env_metric_sum(const struct rs_env_metrics *mm, const char *prefix, int64_t sum[8])
{
    size_t len = strlen(prefix);
    int parts = 0;

    memset(sum, 0, 8 * sizeof(sum[0]));
    for (size_t i = 0; i < mm->n; i++) {
        if (strncmp(mm->keys[i], prefix, len) == 0 && strncmp(mm->keys[i] + len, "|p", 2) == 0) {
            for (int k = 0; k < 8; k++) {
                sum[k] += mm->inputs[i][k + 1];
            }
            parts++;
        }
    }
    return parts;
}

void rs_env_metrics_release(struct rs_env_metrics *mm)
{
    free(mm->keys);
    free(mm->inputs);
    memset(mm, 0, sizeof(*mm));
}
