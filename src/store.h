/*
 * store.h - the state store: one LMDB environment in the state directory.
 *
 * Named databases (DESIGN.md "State in LMDB"), all with big-endian, prefix-ordered keys:
 *   meta         name -> value (format version)
 *   offsets      topic NUL partition(u32) -> next offset, max event time, messages applied
 *   entities     partition(u32) kind(u8) id -> record (sla.c decides the encoding)
 *   timers       partition(u32) deadline(i64) rule(u8) entity -> payload   (timer.c)
 *   timer_index  partition(u32) rule(u8) entity -> deadline(i64)           (timer.c)
 *   outbox       sequence(u64) -> record not yet acknowledged by Kafka
 *   aggregates   partition(u32) metric(u16) dims NUL grain(u8) bucket(i64) -> cell  (agg.c)
 *   dedup        partition(u32) id -> event time(i64)                    (dedup.c)
 *   dedup_expiry partition(u32) event time(i64) id -> ""                (dedup.c)
 *
 * Writes happen inside a batch (one LMDB write transaction) that brackets one slice of the
 * Kafka stream: state, timers, offsets and outbox commit together or not at all. The
 * environment is opened with MDB_NOSYNC, so a commit costs no fsync; rs_store_sync() makes
 * earlier commits durable and may run on another thread. A process crash loses nothing
 * committed; an operating-system crash loses at most the batches since the last sync, which
 * are consumed again from Kafka because their offsets are lost with them.
 *
 * Threads: the batch functions belong to the loop thread. rs_store_sync(), the snapshot
 * functions and the read functions outside a batch (offset and outbox reads) may run on any
 * thread.
 * This is the only module that includes lmdb.h.
 */
#ifndef RS_STORE_H
#define RS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RS_STORE_FORMAT_VERSION 1 /* bump when a key or value layout changes */

enum rs_db {
    RS_DB_META,
    RS_DB_OFFSETS,
    RS_DB_ENTITIES,
    RS_DB_TIMERS,
    RS_DB_TIMER_INDEX,
    RS_DB_OUTBOX,
    RS_DB_AGGREGATES,
    RS_DB_DEDUP,        /* partition(u32) id -> event time(i64)                (dedup.c) */
    RS_DB_DEDUP_EXPIRY, /* partition(u32) event time(i64) id -> ""             (dedup.c) */
    RS_DB__COUNT
};

/* A borrowed byte range. */
struct rs_bytes {
    const void *ptr;
    size_t len;
};

struct rs_store;

/* Per-partition progress kept next to the state it produced. */
struct rs_store_offset {
    int64_t next_offset; /* the offset to consume next */
    int64_t max_ts_ms;   /* the largest event time applied: the watermark survives restarts */
    uint64_t applied;    /* messages applied (events and dead letters): proves none twice */
};

/*
 * Open (creating if needed) the environment in directory `dir` with a map of map_size_mb.
 * Returns 0 with *out set (Returns new: free with rs_store_close), or RS_ESTORE naming the
 * directory and LMDB's reason. A directory written by another format version is refused.
 */
int rs_store_open(struct rs_store **out, const char *dir, uint64_t map_size_mb, struct rs_err *err);

/* Close the environment; an open batch is aborted. NULL allowed. */
void rs_store_close(struct rs_store *st);

/* Begin a batch. Returns 0 or RS_ESTORE. Only one batch is open at a time. */
int rs_store_begin(struct rs_store *st, struct rs_err *err);

/*
 * Commit the open batch.
 * Returns 0, RS_ESTORE_FULL (the batch is aborted and the map has grown: run it again), or
 * RS_ESTORE (the batch is aborted).
 */
int rs_store_commit(struct rs_store *st, struct rs_err *err);

/* Abort the open batch, if any. */
void rs_store_abort(struct rs_store *st);

/*
 * A number that changes whenever a batch's writes are dropped (an abort, a failed commit). A
 * module that keeps in memory what it wrote in batches compares it to know whether those
 * writes still stand.
 */
uint64_t rs_store_epoch(const struct rs_store *st);

/*
 * Modules' in-memory views of part of the state, kept with the store (one per kind) and
 * released by rs_store_close(). The store knows nothing of what they hold; each checks
 * rs_store_epoch(). timer.c keeps each partition's earliest deadlines (timer.h).
 */
enum rs_store_view { RS_VIEW_TIMERS, RS_VIEW__COUNT };

void *rs_store_view(const struct rs_store *st, enum rs_store_view which);
void rs_store_set_view(struct rs_store *st, enum rs_store_view which, void *view,
                       void (*release)(void *view));

/* Is a batch open on st by the calling thread? (Another thread's batch is invisible.) */
bool rs_store_in_batch(const struct rs_store *st);

/*
 * Open an existing environment read-only (`revstream inspect` on the state of a stopped or
 * running engine, in another process: LMDB allows one open of an environment per process):
 * batches are refused, snapshots work. A database the directory predates reads as empty.
 * Returns 0 or RS_ESTORE naming the directory (RS_ENOTFOUND if it holds no state).
 */
int rs_store_open_readonly(struct rs_store **out, const char *dir, struct rs_err *err);

/*
 * Open a read snapshot outside a batch: until rs_store_read_end(), rs_store_get() and
 * rs_store_seek() read from it (a consistent view of the last commit that never blocks the
 * writer). Any thread; the snapshot belongs to the calling thread, so a reader thread can
 * hold one while the loop thread writes. Calls nest: an inner begin shares the outer
 * snapshot and only the outermost end closes it. One store per thread at a time.
 * Returns 0 or RS_ESTORE (also when this thread has a batch open on st).
 */
int rs_store_read_begin(struct rs_store *st, struct rs_err *err);
/* End one rs_store_read_begin(); a no-op without one. */
void rs_store_read_end(struct rs_store *st);

/*
 * Look up `key` in `db` inside the calling thread's open batch, else its read snapshot.
 * Returns 0 and sets *val, RS_ENOTFOUND, or RS_ESTORE (also with neither open).
 * Ownership: *val borrows LMDB memory until the next write in the batch or its end (the end
 * of the snapshot).
 */
int rs_store_get(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_bytes *val,
                 struct rs_err *err);

/*
 * Store `val` under `key` in the open batch.
 * Returns 0, RS_ESTORE_FULL (abort and retry the batch after it grew), or RS_ESTORE.
 */
int rs_store_put(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_bytes val,
                 struct rs_err *err);

/* Delete `key` in the open batch. Returns 0, RS_ENOTFOUND, or RS_ESTORE. */
int rs_store_del(struct rs_store *st, enum rs_db db, struct rs_bytes key, struct rs_err *err);

/*
 * Find the first key >= `from` in `db` inside the open batch (else read snapshot), for scans.
 * Returns 0 and sets *key and *val (borrowed as in rs_store_get), RS_ENOTFOUND past the end,
 * or RS_ESTORE (RS_ESTORE_FULL, batch aborted, as for rs_store_put).
 * Inside a batch it first writes the batch's pending changes of `db` (a batch keeps its
 * writes until commit): it ends values borrowed from `db` as a write would.
 */
int rs_store_seek(struct rs_store *st, enum rs_db db, struct rs_bytes from, struct rs_bytes *key,
                  struct rs_bytes *val, struct rs_err *err);

/*
 * Delete each of the n keys of `db` in the open batch (the array is sorted here, in place),
 * through one cursor: for many deletes at once (acknowledged outbox records, expired ids).
 * An absent key is skipped. Returns 0, RS_ESTORE or RS_ESTORE_FULL (the batch is aborted).
 */
int rs_store_del_keys(struct rs_store *st, enum rs_db db, struct rs_bytes *keys, size_t n,
                      struct rs_err *err);

/*
 * rs_store_del_range()'s judge: 1 to delete the entry and go on, 0 to stop before it, or a
 * negative code to stop with it. key and val are borrowed for the call; it may write other
 * databases, not this one.
 */
typedef int rs_store_range_cb(void *opaque, struct rs_bytes key, struct rs_bytes val);

/*
 * Delete `db`'s entries in key order from the first at or after `from`, while cb accepts
 * them, at most max (0: no limit), through one cursor, in the open batch. Returns the number
 * deleted, cb's negative code, RS_ESTORE or RS_ESTORE_FULL (the batch is aborted).
 */
int rs_store_del_range(struct rs_store *st, enum rs_db db, struct rs_bytes from, uint32_t max,
                       rs_store_range_cb *cb, void *opaque, struct rs_err *err);

/*
 * Read the stored progress of (topic, partition). Inside a batch it sees the batch's writes;
 * outside it reads the last commit. Returns 0, RS_ENOTFOUND, or RS_ESTORE.
 */
int rs_store_offset_get(struct rs_store *st, const char *topic, int32_t partition,
                        struct rs_store_offset *off, struct rs_err *err);

/* Record progress of (topic, partition) in the open batch. Returns as rs_store_put. */
int rs_store_offset_put(struct rs_store *st, const char *topic, int32_t partition,
                        const struct rs_store_offset *off, struct rs_err *err);

/* Called for each stored (topic, partition) progress record, in key order. */
typedef int rs_store_offset_cb(void *opaque, const char *topic, int32_t partition,
                               const struct rs_store_offset *off);

/* Visit every progress record in a read snapshot. Returns 0, the callback's value, or RS_ESTORE. */
int rs_store_offset_each(struct rs_store *st, rs_store_offset_cb *cb, void *opaque,
                         struct rs_err *err);

/*
 * Append a record to the outbox in the open batch; *seq gets its sequence, which increases
 * across batches and restarts. Returns as rs_store_put.
 */
int rs_store_outbox_append(struct rs_store *st, struct rs_bytes record, uint64_t *seq,
                           struct rs_err *err);

/*
 * Called for each outbox record in sequence order. Return 0 to go on, anything else to stop
 * the scan (rs_store_outbox_scan then returns that value). `record` is borrowed for the call.
 */
typedef int rs_store_outbox_cb(void *opaque, uint64_t seq, struct rs_bytes record);

/*
 * Delete the outbox records of the n sequences in the open batch: what Kafka acknowledged.
 * A sequence with no record is skipped. Returns as rs_store_del_keys.
 */
int rs_store_outbox_delete(struct rs_store *st, uint64_t *seqs, size_t n, struct rs_err *err);

/*
 * Visit outbox records with sequence >= from_seq in a read snapshot (not inside a batch).
 * Returns 0, the callback's non-zero value, or RS_ESTORE.
 */
int rs_store_outbox_scan(struct rs_store *st, uint64_t from_seq, rs_store_outbox_cb *cb,
                         void *opaque, struct rs_err *err);

/* Number of entries in `db` as of the last commit (or in the open batch). */
uint64_t rs_store_count(struct rs_store *st, enum rs_db db);

/* Map size in bytes and bytes in use, for metrics. */
void rs_store_usage(struct rs_store *st, uint64_t *map_bytes, uint64_t *used_bytes);

/* Flush committed batches to disk (fsync). Any thread. Returns 0 or RS_ESTORE. */
int rs_store_sync(struct rs_store *st, struct rs_err *err);

/*
 * Write a canonical dump of the state to `out` (a FILE *): for each database in name order
 * (strcmp of the names above: aggregates, dedup, dedup_expiry, entities, meta, offsets,
 * timer_index, timers), each entry in LMDB key order as "db<TAB>hex key<TAB>hex value<NEWLINE>"
 * with lowercase hex (an empty value leaves nothing after the second tab). What depends on
 * when Kafka acknowledged a publish, not on the events, is left out: the outbox and its
 * sequence in meta ("outbox_seq"). Two stores that applied the same events in the same order
 * dump the same bytes. Opens its own read snapshot (nested in the thread's snapshot if it
 * holds one), so it works on a read-only store and is refused inside a batch (RS_ESTORE). A
 * database that a read-only directory predates dumps as empty. Flushes `out`.
 * Returns 0, RS_ESTORE, or RS_EIO if writing fails (`out` may then hold a partial dump).
 */
int rs_store_dump(struct rs_store *st, void *out, struct rs_err *err);

/* LMDB's version string, for `revstream version`. */
const char *rs_store_lmdb_version(void);

/* Big-endian key pieces, so that byte order is numeric order. */
void rs_store_put_u32(uint8_t *p, uint32_t v);
void rs_store_put_u64(uint8_t *p, uint64_t v);
uint32_t rs_store_get_u32(const uint8_t *p);
uint64_t rs_store_get_u64(const uint8_t *p);

/* Signed times sort correctly after flipping the sign bit. */
static inline uint64_t rs_store_i64_key(int64_t v)
{
    return (uint64_t)v ^ (UINT64_C(1) << 63);
}

static inline int64_t rs_store_key_i64(uint64_t v)
{
    return (int64_t)(v ^ (UINT64_C(1) << 63));
}

#endif
