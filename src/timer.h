/*
 * timer.h - SLA deadlines kept in the state store, and the watermark that fires them.
 *
 * A timer is (partition, rule, entity) -> deadline plus a small payload. Timers live in two
 * databases: `timers`, ordered by (partition, deadline), so the due ones are a range scan from
 * the start of the partition; and `timer_index`, by (partition, rule, entity), so a stop
 * event finds the timer to cancel or re-arm. Both change inside the caller's batch.
 *
 * The watermark decides when a timer is due (DESIGN.md "Time"): the largest event time seen
 * in the partition minus the allowed lateness; once the partition is caught up (its consumer
 * reached the end of the log), the wall clock too. So a replay that is catching up fires
 * nothing early, and a live breach fires within one tick of its deadline.
 *
 * Inside a batch, each partition's earliest timers (up to twice rs_timer_view_limit()) are also
 * kept in memory, in deadline order, so that the watermark's test for due timers, run per
 * event, costs no LMDB seek; a timer armed and cancelled within one batch then costs LMDB
 * nothing. LMDB stays the state: the view is rebuilt from it when it runs out, and after a
 * batch was dropped (timer.c, "The near view").
 *
 * Not here: what a fired timer means (sla.c). Threads: the loop thread, inside a batch.
 */
#ifndef RS_TIMER_H
#define RS_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define RS_TIMER_NONE        INT64_MAX /* "no deadline" */
#define RS_TIMER_PAYLOAD_MAX 32        /* payloads are small fixed records */
#define RS_TIMER_ENTITY_MAX  256       /* longest entity id we key timers by */

/* Arm (or re-arm: an existing timer of the same rule and entity is replaced). */
int rs_timer_arm(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                 int64_t deadline_ms, struct rs_bytes payload, struct rs_err *err);

/* Cancel. Returns 0, RS_ENOTFOUND if no such timer, or RS_ESTORE. */
int rs_timer_cancel(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                    struct rs_err *err);

/*
 * Arm a timer the caller knows is not armed (no timer of this rule and entity exists: a lead
 * seen for the first time), without looking for one to replace. Returns as rs_timer_arm.
 */
int rs_timer_arm_new(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                     int64_t deadline_ms, struct rs_bytes payload, struct rs_err *err);

/*
 * Cancel the timer of (rule, entity) the caller knows was armed for deadline_ms, without
 * looking its deadline up. Returns 0, RS_ENOTFOUND if neither it nor an index entry of (rule,
 * entity) was there, or RS_ESTORE. A wrong deadline leaves that timer to fire: for callers
 * whose timers are checked against their state when they fire (sla.c).
 */
int rs_timer_cancel_at(struct rs_store *st, uint32_t partition, uint8_t rule,
                       struct rs_bytes entity, int64_t deadline_ms, struct rs_err *err);

/* Deadline of a timer, or RS_ENOTFOUND. */
int rs_timer_deadline(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                      int64_t *deadline_ms, struct rs_err *err);

/*
 * Called for each due timer, after it was removed, so the callback may re-arm it.
 * Borrowed: entity and payload, for the call. Return 0 to go on, or a negative code to stop.
 */
typedef int rs_timer_fire_cb(void *opaque, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                             int64_t deadline_ms, struct rs_bytes payload);

/*
 * Fire, in deadline order, every timer of `partition` with deadline <= watermark_ms, up to
 * `max` of them (0 = no limit). Sets *next_deadline_ms to the earliest deadline left (or
 * RS_TIMER_NONE). Returns the number fired (>= 0), or a negative code (the callback's, or
 * RS_ESTORE / RS_ESTORE_FULL).
 */
int rs_timer_fire_due(struct rs_store *st, uint32_t partition, int64_t watermark_ms, uint32_t max,
                      rs_timer_fire_cb *cb, void *opaque, int64_t *next_deadline_ms,
                      struct rs_err *err);

/*
 * How many of a partition's earliest timers the view loads at a time (it holds at most twice
 * as many); default 4096. Tests make it small to exercise the reloads. Drops the views.
 */
void rs_timer_view_limit(struct rs_store *st, size_t limit);

/*
 * Earliest deadline in `partition`, or RS_TIMER_NONE. Inside a batch it may be earlier than
 * the earliest timer (never later): the deadline below which nothing is due.
 */
int rs_timer_next_deadline(struct rs_store *st, uint32_t partition, int64_t *deadline_ms,
                           struct rs_err *err);

/* The watermark of one partition. */
struct rs_watermark {
    int64_t max_event_ms; /* largest event time applied; INT64_MIN before the first */
    int64_t lateness_ms;  /* allowed out-of-orderness */
    bool caught_up;       /* the consumer is at the end of the partition */
};

void rs_watermark_init(struct rs_watermark *wm, int64_t lateness_ms, int64_t max_event_ms);

/* Note an applied event. Returns true if the event-time watermark moved forward. */
bool rs_watermark_observe(struct rs_watermark *wm, int64_t event_ms);

/* The event-time watermark alone: max event time minus lateness, or INT64_MIN before one. */
int64_t rs_watermark_event(const struct rs_watermark *wm);

/*
 * The watermark at wall-clock time now_ms: max event time minus lateness, or now_ms itself
 * when the partition is caught up and that is later. INT64_MIN before the first event of a
 * partition that is not caught up.
 */
int64_t rs_watermark_at(const struct rs_watermark *wm, int64_t now_ms);

#endif
