/*
 * dedup.h - events deduplicated by `id` within a window of event time (METRICS.md §1.6.1).
 *
 * Each partition keeps the ids it applied in the `dedup` database, keyed (partition, id) ->
 * event time, plus an expiry index `dedup_expiry` keyed (partition, event time, id), so that
 * expiring is a range delete from the start of the partition. An entry lives while its event
 * time is within `window` of the partition's watermark; an event whose id is still there is a
 * duplicate: counted, and not applied. The table is bounded by the events of one window.
 *
 * An event older than the window itself (ts < watermark - window) cannot be checked; it is
 * applied and recorded only if it is not already expired on arrival (counted as `unchecked`).
 * An entry already out of the window but not yet reached by a bounded rs_dedup_expire() counts
 * as absent, so the answer never depends on how far expiry has got.
 *
 * Cost per event (B-tree operations on the caller's batch, each O(log n) in the table):
 *   dedup off (window 0):                 nothing
 *   duplicate, or older than the window:  1 get
 *   new, within the window:               1 get + 2 puts
 *   expiry, once per recorded event:      1 seek + 2 deletes (amortised over the calls)
 * plus, in the rare case of an entry out of the window that expiry has not reached yet, 2
 * deletes. Space per recorded id: two LMDB entries, 16 + 2 * len(id) bytes of key and 8 of
 * value, plus LMDB's per-entry overhead.
 *
 * Usage, per event inside the batch (cutoff = rs_dedup_cutoff_ms(watermark, window)):
 *   rs_dedup_check(...) -> skip the event if *duplicate, else count `unchecked` if ts < cutoff
 *   rs_dedup_expire(st, partition, cutoff, max, err) as the watermark advances
 *
 * Threads: the loop thread, inside the caller's store batch.
 */
#ifndef RS_DEDUP_H
#define RS_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "event.h"
#include "store.h"

/*
 * The event time before which entries are out of the window: watermark_ms - window_ms, or
 * INT64_MIN when nothing is (window_ms <= 0, watermark_ms INT64_MIN, or an underflow).
 */
int64_t rs_dedup_cutoff_ms(int64_t watermark_ms, int64_t window_ms);

/*
 * Look `id` up for `partition`; if absent, record it with ts_ms. *duplicate says whether it
 * was there. watermark_ms (INT64_MIN before the first event) and window_ms decide what is
 * too old to record. window_ms <= 0 turns dedup off: nothing is read or recorded and
 * *duplicate is false. Returns 0, RS_ESTORE, RS_ESTORE_FULL (the batch is aborted: run it
 * again), or RS_EINVAL for an id longer than RS_EVENT_ID_MAX (the decoder never passes one).
 */
int rs_dedup_check(struct rs_store *st, uint32_t partition, struct rs_str id, int64_t ts_ms,
                   int64_t watermark_ms, int64_t window_ms, bool *duplicate, struct rs_err *err);

/*
 * Delete the entries of `partition` with event time < before_ms, oldest first, at most `max`
 * of them (0: all, up to INT_MAX per call). Returns the number deleted (>= 0), RS_ESTORE, or
 * RS_ESTORE_FULL (a delete can need pages too: the batch is aborted, run it again).
 */
int rs_dedup_expire(struct rs_store *st, uint32_t partition, int64_t before_ms, uint32_t max,
                    struct rs_err *err);

#endif
