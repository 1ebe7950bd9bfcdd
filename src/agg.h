/*
 * agg.h - metric aggregates: signed counters and a sketch per (metric, dimensions, bucket).
 *
 * One machinery for every metric (DESIGN.md "Rules are data"): a cell is a fixed set of
 * int64 counters (RS_AGG_FIELDS; what each means is the metric's business, metrics.c) plus an
 * optional duration sketch (sketch.h). Facts are signed: applying a fact adds to counters and
 * the sketch, retracting it subtracts, so a cell is always the sum of the facts standing.
 *
 * Cells are kept per input partition in the `aggregates` database, key
 *   partition(u32) metric(u16) dims NUL grain(u8) bucket(i64, sign-flipped, big-endian)
 * so the buckets of one series are one range scan. `dims` is a canonical string of
 * "key=value" pairs joined by ',' in key order ("" for none), written by rs_agg_dims().
 *
 * Writes go through a per-batch cache: rs_agg_add() loads a cell once per batch, changes it
 * in memory, and rs_agg_flush() writes each changed cell once, in key order, inside the
 * caller's batch, and reports it (for the metrics topic). Reads sum a cell over partitions
 * in a read snapshot (HTTP, inspect) without blocking the writer.
 *
 * Threads: an rs_agg belongs to the loop thread; the read functions take their own snapshot.
 */
#ifndef RS_AGG_H
#define RS_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "err.h"
#include "event.h"
#include "sketch.h"
#include "store.h"

#define RS_AGG_FIELDS   8   /* counters per cell */
#define RS_AGG_DIMS_MAX 256 /* longest canonical dimensions string */

/* A cell's value. */
struct rs_agg_cell {
    int64_t n[RS_AGG_FIELDS];
    struct rs_sketch sketch; /* empty when the metric keeps none */
};

void rs_agg_cell_init(struct rs_agg_cell *cell);
void rs_agg_cell_release(struct rs_agg_cell *cell);

/* Where a cell lives. dims borrowed. */
struct rs_agg_key {
    uint32_t partition;
    uint16_t metric;
    enum rs_grain grain;
    int64_t bucket; /* rs_bucket_start() of the grain */
    struct rs_str dims;
};

/*
 * Build a canonical dimensions string from n (key, value) pairs into out (size bytes), sorted
 * by key (a repeated key by value); keys and values are written as they are, except that ','
 * '=' and '\' are escaped with '\'. Returns the length, or 0 with out = "" if it does not fit
 * in size - 1 or RS_AGG_DIMS_MAX bytes (the fact is then kept under no dimensions: better a
 * coarser cell than a lost fact).
 */
size_t rs_agg_dims(char *out, size_t size, const struct rs_str (*pairs)[2], size_t n);

/* One fact, applied (sign +1) or retracted (sign -1). */
struct rs_agg_fact {
    int64_t n[RS_AGG_FIELDS]; /* added times sign */
    bool has_value;           /* add/remove `value` to/from the sketch */
    int64_t value;
};

/* The per-batch cache. */
struct rs_agg;

struct rs_agg *rs_agg_new(void);
void rs_agg_free(struct rs_agg *agg); /* NULL allowed */

/*
 * Add `sign` x fact to the cell at key, for every grain in grains_mask (bit per enum
 * rs_grain; key->grain and key->bucket are ignored then, buckets computed from t_ms in zone
 * with rs_bucket_start()). grains_mask == 0: the one cell at key->grain, key->bucket (zone
 * and t_ms unused). A retracted value the sketch does not hold is ignored. Inside the caller's
 * batch. With a mask and no sketch value (neither side of a move has one), the counters are
 * summed per (partition, metric, dims, mask, local day) and added to each grain's cell by
 * rs_agg_flush(): one lookup per fact instead of one per grain, with the same cells in the
 * end (counters only add); such a fact's cells are loaded, and a corrupt one reported, by the
 * flush. Returns 0, RS_EINVAL (dims longer than RS_AGG_DIMS_MAX), RS_ESTORE (also a corrupt
 * stored cell) or RS_ESTORE_FULL; after a failure some grains may be applied in the cache:
 * abort the batch and rs_agg_discard().
 */
int rs_agg_add(struct rs_agg *agg, struct rs_store *st, const struct rs_zone *zone,
               const struct rs_agg_key *key, unsigned grains_mask, int64_t t_ms, int sign,
               const struct rs_agg_fact *fact, struct rs_err *err);

/*
 * Retract `from` and add `to` in the same cells, as rs_agg_add() with -1 then +1 would, at
 * the cost of one: a fact whose counters or value changed while its cells did not (a lead
 * touched: the same day, the same dimensions).
 */
int rs_agg_move(struct rs_agg *agg, struct rs_store *st, const struct rs_zone *zone,
                const struct rs_agg_key *key, unsigned grains_mask, int64_t t_ms,
                const struct rs_agg_fact *from, const struct rs_agg_fact *to, struct rs_err *err);

/* Called by rs_agg_flush() for each changed cell, after it was written. Borrowed. */
typedef int rs_agg_changed_cb(void *opaque, const struct rs_agg_key *key,
                              const struct rs_agg_cell *cell);

/*
 * Add the batch's summed counters (rs_agg_add()) to their cells, then write every changed
 * cell of the batch in key order and call cb (may be NULL) for each;
 * a cell whose counters all returned to 0 and whose sketch is empty is deleted (and still
 * reported). A cell whose changes cancelled out within the batch (it encodes as it was
 * loaded, or was absent and is zero) is neither written nor reported. Then forget the batch,
 * also after a failure. Returns 0, the callback's code (the flush stops there), RS_ESTORE or
 * RS_ESTORE_FULL.
 */
int rs_agg_flush(struct rs_agg *agg, struct rs_store *st, rs_agg_changed_cb *cb, void *opaque,
                 struct rs_err *err);

/* Forget the batch's changes without writing (the batch aborted). */
void rs_agg_discard(struct rs_agg *agg);

/*
 * Read the cell at key (key->partition ignored) summed over the partitions in
 * partitions[0..n) (n == 0: every partition that has it, found with one seek per partition
 * that has state) from a read snapshot, or from the open batch if called inside one on its
 * thread (then it sees the cells flushed so far, not an rs_agg's unflushed changes). Outside
 * a batch it joins the thread's open snapshot or takes its own. Any thread. *cell must be
 * initialised; it is overwritten (zero on failure). Returns 0 (an absent cell reads as zero),
 * or RS_ESTORE.
 */
int rs_agg_read(struct rs_store *st, const struct rs_agg_key *key, const uint32_t *partitions,
                size_t n, struct rs_agg_cell *cell, struct rs_err *err);

/* Called by rs_agg_scan() for each stored cell (one partition's part). Borrowed. */
typedef int rs_agg_scan_cb(void *opaque, const struct rs_agg_key *key,
                           const struct rs_agg_cell *cell);

/*
 * Visit the stored cells of `metric` (every metric when metric == 0) of every partition, in
 * key order, from a read snapshot (as rs_agg_read: the batch inside one). Any thread. Returns
 * 0, the callback's non-zero code (the scan stops there) or RS_ESTORE.
 */
int rs_agg_scan(struct rs_store *st, uint16_t metric, rs_agg_scan_cb *cb, void *opaque,
                struct rs_err *err);

#endif
