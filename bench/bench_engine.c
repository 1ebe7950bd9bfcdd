/*
 * bench_engine.c - the engine alone, no Kafka: decode + SLA-01 apply + timers + one LMDB
 * commit per batch, on one core, with the store flags the engine uses (MDB_NOSYNC).
 *
 *   bench_engine [EVENTS [BATCH]]      defaults: 1000000 events, batches of 5000
 *
 * Prints the command, the machine, then one line per case: name events/s ns/event
 * events/cpu-s. events/s is by the wall clock; events/cpu-s by the CPU time of the thread
 * (user and system: LMDB's writes into the page cache count), which is what one core does
 * when another process shares it. The cases are measured in one run so their ratio survives
 * a noisy machine:
 *   decode_only     msgpack -> struct rs_event, the codec's limit
 *   engine_sla01    decode + SLA-01 apply + timers + commit
 *   engine_all      the same plus the SLA-02..07 rules and the metrics with their aggregate
 *                   flush: what `revstream run` does per batch
 *   lmdb_rmw        the limit of the store: one get and one put of a lead-sized record per
 *                   event, batches of the same size, the engine's flags (MDB_NOSYNC)
 * Then the time of each case split by stage (decode, timers fired, SLA-01 state, rules,
 * metrics, aggregate flush and commit), from a second run of each engine case that reads the
 * clock around every stage: its total is higher than the plain run's by the clock reads, so
 * only the shares are printed.
 * Events: leads (a third high intent) and their first human touches, half of them in time,
 * interleaved as a live stream would bring them, timers fired on the event-time watermark.
 */
#include "agg.h"
#include "bench_machine.h"
#include "calendar.h"
#include "event.h"
#include "metrics.h"
#include "sla.h"
#include "slarule.h"
#include "store.h"
#include "timer.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define T0 INT64_C(1772409600000)

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    (void)clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* Wall-clock and thread CPU seconds of one run. */
struct took {
    double wall_s;
    double cpu_s;
};

static int64_t cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int emit_count(void *opaque, const struct rs_alert *a, struct rs_err *err)
{
    (void)a;
    (void)err;
    (*(uint64_t *)opaque)++;
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* What the rules call back into: the alert counter and the metrics (app.c's roles). */
struct rules_ctx {
    uint64_t *alerts;
    struct rs_metrics *metrics;
};

static int rules_emit(void *opaque, const struct rs_alert *a, struct rs_err *err)
{
    return emit_count(((struct rules_ctx *)opaque)->alerts, a, err);
}

static int rules_outcome(void *opaque, uint32_t partition, const struct rs_sla_outcome *o, int sign,
                         struct rs_err *err)
{
    return rs_metrics_sla_outcome(((struct rules_ctx *)opaque)->metrics, partition, o, sign, err);
}

/*
 * Run the stream through a fresh store in dir/<case>, batch by batch; with `all`, the rules
 * and the metrics too. Sets *took to the time of the batches.
 */
/* Time per stage, in ns, when a run is profiled. */
enum stage { ST_DECODE, ST_FIRE, ST_SLA01, ST_RULES, ST_METRICS, ST_COMMIT, ST__COUNT };

static const char *const stage_names[ST__COUNT] = { "decode", "timers",  "sla01_state",
                                                    "rules",  "metrics", "flush_commit" };

/* Add the time since *t to prof[s] and restart *t; nothing without a profile. */
static void lap(int64_t *prof, enum stage s, int64_t *t)
{
    if (prof != NULL) {
        int64_t now = now_ns();

        prof[s] += now - *t;
        *t = now;
    }
}

/* One pass over the due timers, each to the module that runs its rule, as app.c does. */
struct fire_pass {
    struct rs_store *st;
    struct rs_sla *sla;
    struct rs_rules *rules;
    int64_t watermark;
    int64_t next;
    struct rs_err *err;
};

static int fire_timer(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                      int64_t deadline_ms, struct rs_bytes payload)
{
    struct fire_pass *fp = opaque;

    if (rule == RS_SLA_RULE_SPEED_TO_LEAD) {
        return rs_sla_fire_timer(fp->sla, fp->st, partition, fp->watermark, entity, deadline_ms,
                                 payload, &fp->next, fp->err);
    }
    return rs_rules_fire_timer(fp->rules, fp->st, partition, fp->watermark, rule, entity,
                               deadline_ms, payload, &fp->next, fp->err);
}

static int run_engine(const char *dir, const struct rs_buf *msgs, size_t n, size_t batch,
                      struct rs_event_decoder *dec, bool all, uint64_t *alerts, struct took *took,
                      int64_t *prof)
{
    struct rs_sla_config cfg = { { 5 * 60000, 60 * 60000, 24 * 3600000 }, 80, 200 };
    struct rs_sla sla;
    struct rs_rules rules;
    struct rs_rules_config rules_cfg;
    struct rs_metrics metrics;
    struct rs_metrics_config metrics_cfg;
    struct rules_ctx rctx;
    struct rs_zone *zone = NULL;
    struct rs_calendar *cal = NULL;
    struct rs_agg *agg = all ? rs_agg_new() : NULL;
    struct rs_store *st;
    struct rs_watermark wm;
    struct rs_err err;
    char path[64];
    int64_t next = RS_TIMER_NONE;
    int64_t t, c;

    (void)snprintf(path, sizeof(path), "%s/%s", dir, all ? "all" : "sla01");
    if (mkdir(path, 0700) != 0 || rs_store_open(&st, path, 4096, &err) != 0 ||
        rs_zone_new("UTC", &zone, &err) != 0 ||
        rs_calendar_new("business", "UTC", "mon-fri 09:00-18:00", "", &cal, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    rs_sla_init(&sla, &cfg, emit_count, alerts);
    rs_rules_config_defaults(&rules_cfg);
    rules_cfg.mql_acceptance.calendar = rules_cfg.handoff.calendar = cal;
    rules_cfg.freshness.calendar = cal;
    rs_metrics_config_defaults(&metrics_cfg);
    metrics_cfg.zone = zone;
    metrics_cfg.sales_hours = cal;
    rs_metrics_init(&metrics, &metrics_cfg, agg);
    metrics.st = st;
    rctx = (struct rules_ctx){ alerts, &metrics };
    rs_rules_init(&rules, &rules_cfg, rules_emit, rules_outcome, &rctx);
    rs_watermark_init(&wm, 10 * 60000, INT64_MIN);
    t = now_ns();
    c = cpu_ns();
    for (size_t i = 0; i < n; i += batch) {
        size_t end = i + batch < n ? i + batch : n;
        struct rs_store_offset off = { (int64_t)end, 0, end };

        if (rs_store_begin(st, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        for (size_t j = i; j < end; j++) {
            struct rs_event ev;
            enum rs_event_fault fault;
            int64_t w;
            int64_t lt = prof != NULL ? now_ns() : 0;
            int rc = rs_event_decode(dec, msgs[j].data, msgs[j].len, &ev, &fault, &err);

            lap(prof, ST_DECODE, &lt);
            if (rc == 0 && rs_watermark_observe(&wm, ev.ts_ms) &&
                (w = rs_watermark_at(&wm, 0)) >= next) {
                if (all) {
                    struct fire_pass fp = { st, &sla, &rules, w, RS_TIMER_NONE, &err };

                    /* As the engine does (app.c): one pass, each timer to its rule's module. */
                    rc = rs_timer_fire_due(st, 0, w, 0, fire_timer, &fp, &next, &err);
                    next = fp.next < next ? fp.next : next;
                } else {
                    rc = rs_sla_fire(&sla, st, 0, w, &next, &err);
                }
                rc = rc < 0 ? rc : 0;
            }
            lap(prof, ST_FIRE, &lt);
            if (rc == 0) {
                rc = rs_sla_apply(&sla, st, 0, &ev, &next, &err);
            }
            lap(prof, ST_SLA01, &lt);
            if (rc == 0 && all) {
                rc = rs_rules_apply(&rules, st, 0, &ev, ev.ts_ms, &next, &err);
            }
            lap(all ? prof : NULL, ST_RULES, &lt);
            if (rc == 0 && all) {
                rc = rs_metrics_apply(&metrics, st, 0, &ev, &err);
            }
            lap(all ? prof : NULL, ST_METRICS, &lt);
            if (rc != 0) {
                fprintf(stderr, "apply: %s\n", err.msg);
                return 1;
            }
        }
        off.max_ts_ms = wm.max_event_ms;
        {
            int64_t lt = prof != NULL ? now_ns() : 0;

            if ((all && rs_agg_flush(agg, st, NULL, NULL, &err) != 0) ||
                rs_store_offset_put(st, "events", 0, &off, &err) != 0 ||
                rs_store_commit(st, &err) != 0) {
                fprintf(stderr, "commit: %s\n", err.msg);
                return 1;
            }
            lap(prof, ST_COMMIT, &lt);
        }
    }
    took->wall_s = (double)(now_ns() - t) / 1e9;
    took->cpu_s = (double)(cpu_ns() - c) / 1e9;
    rs_store_close(st);
    rs_agg_free(agg);
    rs_calendar_free(cal);
    rs_zone_free(zone);
    (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* The store's limit: a get and a put of a 64-byte record per event, in batches. */
static int run_lmdb(const char *dir, size_t n, size_t batch, struct took *took)
{
    struct rs_store *st;
    struct rs_err err;
    char path[64];
    uint8_t key[32], val[64];
    int64_t t, c;

    (void)snprintf(path, sizeof(path), "%s/lmdb", dir);
    if (mkdir(path, 0700) != 0 || rs_store_open(&st, path, 4096, &err) != 0) {
        fprintf(stderr, "lmdb: %s\n", err.msg);
        return 1;
    }
    memset(val, 7, sizeof(val));
    t = now_ns();
    c = cpu_ns();
    for (size_t i = 0; i < n; i += batch) {
        size_t end = i + batch < n ? i + batch : n;

        if (rs_store_begin(st, &err) != 0) {
            return 1;
        }
        for (size_t j = i; j < end; j++) {
            /* A lead's key, as sla.c builds it: partition, kind, id; each lead twice. */
            int len = snprintf((char *)key + 5, sizeof(key) - 5, "L-%zu", j / 2);
            struct rs_bytes k = { key, 5 + (size_t)len };
            struct rs_bytes v;

            rs_store_put_u32(key, 0);
            key[4] = 1;
            if (rs_store_get(st, RS_DB_ENTITIES, k, &v, &err) == 0 && v.len == sizeof(val)) {
                val[0] = (uint8_t)(((const uint8_t *)v.ptr)[0] + 1);
            }
            if (rs_store_put(st, RS_DB_ENTITIES, k, (struct rs_bytes){ val, sizeof(val) }, &err) !=
                0) {
                return 1;
            }
        }
        if (rs_store_commit(st, &err) != 0) {
            return 1;
        }
    }
    took->wall_s = (double)(now_ns() - t) / 1e9;
    took->cpu_s = (double)(cpu_ns() - c) / 1e9;
    rs_store_close(st);
    (void)nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void print_case(const char *name, size_t n, const struct took *t)
{
    printf("%s %.0f %.0f %.0f\n", name, (double)n / t->wall_s, t->wall_s * 1e9 / (double)n,
           (double)n / t->cpu_s);
}

static void print_stages(const char *name, const int64_t *prof)
{
    int64_t total = 0;

    for (int s = 0; s < ST__COUNT; s++) {
        total += prof[s];
    }
    printf("# %s by stage:", name);
    for (int s = 0; s < ST__COUNT; s++) {
        if (prof[s] > 0) {
            printf(" %s %.1f%%", stage_names[s], 100.0 * (double)prof[s] / (double)total);
        }
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t batch = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000;
    struct rs_buf *msgs = calloc(n, sizeof(*msgs));
    struct rs_event_decoder dec;
    struct rs_err err;
    char dir[] = "/tmp/revstream-bench-XXXXXX";
    char ids[2][32];
    uint64_t alerts = 0, alerts_all = 0, ignored = 0;
    int64_t t, c;
    int64_t prof_sla01[ST__COUNT] = { 0 }, prof_all[ST__COUNT] = { 0 };
    struct took decode, engine, all, lmdb, ignored_took;

    if (n == 0 || batch == 0 || msgs == NULL || mkdtemp(dir) == NULL) {
        fprintf(stderr, "usage: bench_engine [EVENTS [BATCH]]\n");
        return 2;
    }
    rs_bench_print_machine(argc, argv);
    /* Lead i is created at T0 + i*100ms; its touch, if any, comes 16 events later. */
    for (size_t i = 0; i < n; i++) {
        struct rs_event ev;
        size_t lead = i % 2 == 0 ? i / 2 : (i - 1) / 2 - 8;
        bool touch = i % 2 == 1 && i >= 17;

        memset(&ev, 0, sizeof(ev));
        (void)snprintf(ids[0], sizeof(ids[0]), "L-%zu", touch ? lead : i / 2);
        (void)snprintf(ids[1], sizeof(ids[1]), "ev-%zu", i);
        ev.id = (struct rs_str){ ids[1], strlen(ids[1]) };
        ev.ts_ms = T0 + (int64_t)i * 50;
        ev.account = (struct rs_str){ "acct-0001", 9 };
        if (!touch) {
            ev.type = RS_EV_LEAD_CREATED;
            ev.u.lead_created.lead_id = (struct rs_str){ ids[0], strlen(ids[0]) };
            ev.u.lead_created.channel = (struct rs_str){ "demo_request", 12 };
            ev.u.lead_created.intent_tier = (enum rs_intent_tier)(i / 2 % 3);
            ev.u.lead_created.segment = (struct rs_str){ "smb", 3 };
            ev.u.lead_created.owner_id = (struct rs_str){ "rep-01", 6 };
        } else {
            ev.type = RS_EV_LEAD_TOUCHED;
            ev.ts_ms += lead % 2 == 0 ? 0 : 10 * 60000; /* half late */
            ev.u.lead_touched.lead_id = (struct rs_str){ ids[0], strlen(ids[0]) };
            ev.u.lead_touched.rep_id = (struct rs_str){ "rep-01", 6 };
            ev.u.lead_touched.actor_type = RS_ACTOR_HUMAN;
            ev.u.lead_touched.direction = RS_DIR_OUTBOUND;
        }
        rs_buf_init(&msgs[i]);
        rs_event_encode(&ev, &msgs[i]);
    }
    rs_event_decoder_init(&dec, 1 << 20);

    t = now_ns();
    c = cpu_ns();
    for (size_t i = 0; i < n; i++) {
        struct rs_event ev;
        enum rs_event_fault fault;

        if (rs_event_decode(&dec, msgs[i].data, msgs[i].len, &ev, &fault, &err) != 0) {
            fprintf(stderr, "decode: %s\n", err.msg);
            return 1;
        }
    }
    decode.wall_s = (double)(now_ns() - t) / 1e9;
    decode.cpu_s = (double)(cpu_ns() - c) / 1e9;

    if (run_engine(dir, msgs, n, batch, &dec, false, &alerts, &engine, NULL) != 0 ||
        run_engine(dir, msgs, n, batch, &dec, true, &alerts_all, &all, NULL) != 0 ||
        run_lmdb(dir, n, batch, &lmdb) != 0 ||
        run_engine(dir, msgs, n, batch, &dec, false, &ignored, &ignored_took, prof_sla01) != 0 ||
        run_engine(dir, msgs, n, batch, &dec, true, &ignored, &ignored_took, prof_all) != 0) {
        return 1;
    }

    printf("# name events/s ns/event events/cpu-s (batch %zu, %zu events, %llu alerts)\n", batch, n,
           (unsigned long long)alerts);
    print_case("decode_only", n, &decode);
    print_case("engine_sla01", n, &engine);
    print_case("engine_all", n, &all);
    print_case("lmdb_rmw", n, &lmdb);
    printf("# engine_sla01 / decode = %.3f, engine_sla01 / lmdb_rmw = %.3f, "
           "engine_all / engine_sla01 = %.3f (wall clock)\n",
           decode.wall_s / engine.wall_s, lmdb.wall_s / engine.wall_s, engine.wall_s / all.wall_s);
    printf("# CPU time / wall time of the runs: engine_sla01 %.2f, engine_all %.2f (below 1: the "
           "core was shared)\n",
           engine.cpu_s / engine.wall_s, all.cpu_s / all.wall_s);
    print_stages("engine_sla01", prof_sla01);
    print_stages("engine_all", prof_all);

    (void)rmdir(dir);
    rs_event_decoder_release(&dec);
    for (size_t i = 0; i < n; i++) {
        rs_buf_release(&msgs[i]);
    }
    free(msgs);
    return alerts > 0 && alerts_all >= alerts ? 0 : 1;
}
