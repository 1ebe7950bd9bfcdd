/*
 * app.h - the engine: owns the loop's handles and every module, and runs the data path
 *
 *   Kafka batch -> decode -> (dead letter | SLA rules) -> one LMDB batch holding state, timers,
 *   offsets and outbox -> commit -> outbox to the idempotent producer -> delete on delivery.
 *
 * Start order: store, producer, outbox replay, consumer. Stop order (rs_app_stop): close the
 * consumer (its last batch commits first), drain the outbox until every entry is delivered or
 * the drain timeout passes, close the producer, sync the store, close the handles. The loop
 * then runs out of work and uv_run() returns.
 *
 * Time: events carry their own time; the clock here only decides when a caught-up partition's
 * watermark follows "now". The demo injects a compressed clock; everything else uses the
 * wall clock.
 *
 * Threads: the loop thread; the periodic fsync of the store runs on libuv's thread pool.
 */
#ifndef RS_APP_H
#define RS_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "calendar.h"
#include "config.h"
#include "err.h"
#include "event.h"
#include "metrics.h"
#include "sla.h"

struct rs_app;

/* Where "now" comes from. NULL now_ms means the wall clock. */
struct rs_clock {
    int64_t (*now_ms)(void *opaque);
    void *opaque;
};

/* Counters since start, for logs, the demo summary and tests. */
struct rs_app_counters {
    uint64_t batches;
    uint64_t events;       /* decoded and applied */
    uint64_t dead_letters; /* by any reason */
    uint64_t dead_letters_by_fault[RS_FAULT__COUNT];
    uint64_t skipped;    /* already applied (offset below the stored one) */
    uint64_t duplicates; /* an event id seen within dedup.window: counted, not applied */
    uint64_t published;  /* outbox entries acknowledged by Kafka */
    uint64_t publish_failures;
    uint64_t batch_retries; /* batches run again after the map grew */
};

/*
 * Open the store and the producer; nothing is consumed until rs_app_start().
 * Borrowed: cfg and clock for the app's lifetime. Returns 0 (Returns new: rs_app_free after
 * the loop has finished) or a negative code with err filled.
 */
int rs_app_open(struct rs_app **out, uv_loop_t *loop, const struct rs_config *cfg,
                const struct rs_clock *clock, struct rs_err *err);

/* Publish what the outbox still holds, subscribe, and start the timers. Returns 0 or < 0. */
int rs_app_start(struct rs_app *app, struct rs_err *err);

/*
 * Stop gracefully (see the header comment); `done(opaque, status)` runs once everything is
 * closed, with status 0, or 1 after a runtime failure. Safe to call more than once.
 */
void rs_app_stop(struct rs_app *app, void (*done)(void *opaque, int status), void *opaque);

/* Set when a fatal error stopped (or is stopping) the app; 0 otherwise. */
int rs_app_status(const struct rs_app *app);

const struct rs_app_counters *rs_app_counters(const struct rs_app *app);
const struct rs_sla_counters *rs_app_sla_counters(const struct rs_app *app);

/* Partitions assigned and caught up right now, and entries waiting in the outbox. */
bool rs_app_is_caught_up(const struct rs_app *app);
uint64_t rs_app_outbox_pending(const struct rs_app *app);

/* What the state store says about leads (see rs_sla_stats); not inside a batch. */
int rs_app_lead_stats(struct rs_app *app, struct rs_sla_stats *stats, struct rs_err *err);

/*
 * One metric of the bucket of `grain` holding t_ms, summed over the assigned partitions (or
 * every stored one when none is assigned), with canonical dims ("" for none). Not inside a
 * batch. Returns 0, RS_EINVAL for an unknown name, or RS_ESTORE.
 */
int rs_app_metric(struct rs_app *app, const char *name, const char *dims, enum rs_grain grain,
                  int64_t t_ms, struct rs_metric_value *out, struct rs_err *err);

/* The HTTP endpoint's bound port (http.bind with port 0 picks one), or 0 when off. */
uint16_t rs_app_http_port(const struct rs_app *app);

/*
 * The reporting zone and business calendar the configuration names (Returns new: free both).
 * Returns 0 or RS_ECONFIG naming the key.
 */
int rs_app_clocks_open(const struct rs_config *cfg, struct rs_zone **zone,
                       struct rs_calendar **calendar, struct rs_err *err);

/* The metric options of `cfg`, over the zone and calendar (borrowed); the revenue metrics'
 * options go into *fc, which mc->finance then borrows. */
void rs_app_metrics_config(const struct rs_config *cfg, const struct rs_zone *zone,
                           const struct rs_calendar *calendar, struct rs_finance_config *fc,
                           struct rs_metrics_config *mc);

/*
 * A replay (`revstream replay`): partitions 0..n-1 of topic.events assigned directly (no group,
 * no commits) from start (for a partition the store has no progress of; otherwise the stored
 * offset, which is how a paused replay resumes) to end (exclusive); timers fire on event time
 * only, never on the wall clock; no HTTP endpoint. `done` runs once every partition reached
 * its end. Borrowed for the app's lifetime.
 */
struct rs_app_replay {
    size_t n;
    const int64_t *start;
    const int64_t *end;
    bool no_output; /* write nothing to the outbox: rebuild state only */
    void (*done)(void *opaque);
    void (*batch)(void *opaque); /* after each batch (a rate limit's check); may be NULL */
    void *opaque;
};

/* Make the app a replay; call before rs_app_start(). */
void rs_app_set_replay(struct rs_app *app, const struct rs_app_replay *replay);

/* The next offset partition p will apply (its progress), or -1 when it is not assigned. */
int64_t rs_app_next_offset(const struct rs_app *app, int32_t p);

/* Stop (true) or resume (false) consuming, for a rate limit. */
void rs_app_throttle(struct rs_app *app, bool stop);

/* Free after the loop finished. NULL allowed. */
void rs_app_free(struct rs_app *app);

/*
 * The service: run the engine on a new loop until SIGINT or SIGTERM, then stop gracefully.
 * Returns the process exit code: 0 after a clean stop, 1 after a runtime failure (logged).
 */
int rs_app_run(const struct rs_config *cfg);

#endif
