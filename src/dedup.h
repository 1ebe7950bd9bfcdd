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
 * Look `id` up for `partition`; if absent, record it with ts_ms. *duplicate says whether it
 * was there. watermark_ms (INT64_MIN before the first event) and window_ms decide what is
 * too old to record. Returns 0, RS_ESTORE or RS_ESTORE_FULL.
 */
int rs_dedup_check(struct rs_store *st, uint32_t partition, struct rs_str id, int64_t ts_ms,
                   int64_t watermark_ms, int64_t window_ms, bool *duplicate, struct rs_err *err);

/*
 * Delete the entries of `partition` with event time < before_ms, at most `max` of them (0:
 * all). Returns the number deleted (>= 0), or RS_ESTORE.
 */
int rs_dedup_expire(struct rs_store *st, uint32_t partition, int64_t before_ms, uint32_t max,
                    struct rs_err *err);

#endif
