#include "dedup.h"

#include <limits.h>
#include <string.h>

/*
 * Key layouts (store.h): `dedup` is partition(u32) id -> time, `dedup_expiry` is
 * partition(u32) time id -> "", where time is rs_store_i64_key(ts) big-endian, so that the
 * expiry index sorts by event time within a partition. The id is the tail of both keys, so
 * any byte (NUL too) is allowed in it. The value of `dedup` is the same eight bytes as the
 * time in the expiry key, which lets a lookup rebuild the index key without decoding.
 */
#define PART_BYTES  4
#define TIME_BYTES  8
#define ID_KEY_MAX  (PART_BYTES + RS_EVENT_ID_MAX)
#define EXP_KEY_MAX (PART_BYTES + TIME_BYTES + RS_EVENT_ID_MAX)

int64_t rs_dedup_cutoff_ms(int64_t watermark_ms, int64_t window_ms)
{
    if (window_ms <= 0 || watermark_ms < INT64_MIN + window_ms) {
        return INT64_MIN; /* off, before the first event, or an underflow: nothing too old */
    }
    return watermark_ms - window_ms;
}

static struct rs_bytes id_key(uint8_t *buf, uint32_t partition, struct rs_str id)
{
    rs_store_put_u32(buf, partition);
    memcpy(buf + PART_BYTES, id.ptr, id.len);
    return (struct rs_bytes){ buf, PART_BYTES + id.len };
}

static struct rs_bytes expiry_key(uint8_t *buf, uint32_t partition, const uint8_t *time,
                                  struct rs_str id)
{
    rs_store_put_u32(buf, partition);
    memcpy(buf + PART_BYTES, time, TIME_BYTES);
    memcpy(buf + PART_BYTES + TIME_BYTES, id.ptr, id.len);
    return (struct rs_bytes){ buf, PART_BYTES + TIME_BYTES + id.len };
}

/* Record (partition, id) at `time` (encoded) in both databases. */
static int record(struct rs_store *st, uint32_t partition, struct rs_str id, const uint8_t *time,
                  struct rs_err *err)
{
    uint8_t kbuf[ID_KEY_MAX];
    uint8_t ebuf[EXP_KEY_MAX];
    int rc;

    rc = rs_store_put(st, RS_DB_DEDUP, id_key(kbuf, partition, id),
                      (struct rs_bytes){ time, TIME_BYTES }, err);
    if (rc != 0) {
        return rc;
    }
    return rs_store_put(st, RS_DB_DEDUP_EXPIRY, expiry_key(ebuf, partition, time, id),
                        (struct rs_bytes){ "", 0 }, err);
}

/*
 * An entry the expiry has not reached yet although it is out of the window: forget it, so
 * that whether an id counts as seen never depends on how far a bounded expiry has got.
 */
static int forget(struct rs_store *st, uint32_t partition, struct rs_str id, const uint8_t *time,
                  struct rs_err *err)
{
    uint8_t kbuf[ID_KEY_MAX];
    uint8_t ebuf[EXP_KEY_MAX];
    int rc;

    rc = rs_store_del(st, RS_DB_DEDUP_EXPIRY, expiry_key(ebuf, partition, time, id), err);
    if (rc != 0 && rc != RS_ENOTFOUND) {
        return rc;
    }
    rc = rs_store_del(st, RS_DB_DEDUP, id_key(kbuf, partition, id), err);
    return rc == RS_ENOTFOUND ? 0 : rc;
}

int rs_dedup_check(struct rs_store *st, uint32_t partition, struct rs_str id, int64_t ts_ms,
                   int64_t watermark_ms, int64_t window_ms, bool *duplicate, struct rs_err *err)
{
    uint8_t kbuf[ID_KEY_MAX];
    uint8_t seen[TIME_BYTES];
    uint8_t time[TIME_BYTES];
    int64_t cutoff_ms = rs_dedup_cutoff_ms(watermark_ms, window_ms);
    struct rs_bytes val;
    int rc;

    *duplicate = false;
    if (window_ms <= 0) {
        return 0;
    }
    if (id.len > RS_EVENT_ID_MAX) {
        return rs_err_set(err, RS_EINVAL, "event id of %zu bytes, longer than %d", id.len,
                          RS_EVENT_ID_MAX);
    }
    rc = rs_store_get(st, RS_DB_DEDUP, id_key(kbuf, partition, id), &val, err);
    if (rc == 0 && val.len != TIME_BYTES) {
        return rs_err_set(err, RS_ESTORE, "dedup entry of partition %u has %zu bytes, not %d",
                          partition, val.len, TIME_BYTES);
    }
    if (rc == 0) {
        memcpy(seen, val.ptr, TIME_BYTES); /* the writes below invalidate val */
        if (rs_store_key_i64(rs_store_get_u64(seen)) >= cutoff_ms) {
            *duplicate = true;
            return 0;
        }
        rc = forget(st, partition, id, seen, err);
        if (rc != 0) {
            return rc;
        }
    } else if (rc != RS_ENOTFOUND) {
        return rc;
    }
    if (ts_ms < cutoff_ms) {
        return 0; /* expired on arrival: applied, unchecked, and not recorded */
    }
    rs_store_put_u64(time, rs_store_i64_key(ts_ms));
    return record(st, partition, id, time, err);
}

int rs_dedup_expire(struct rs_store *st, uint32_t partition, int64_t before_ms, uint32_t max,
                    struct rs_err *err)
{
    uint8_t from[PART_BYTES];
    uint8_t ebuf[EXP_KEY_MAX];
    uint8_t kbuf[ID_KEY_MAX];
    uint32_t limit = max == 0 || max > INT_MAX ? INT_MAX : max;
    uint32_t deleted = 0;
    int rc;

    rs_store_put_u32(from, partition);
    while (deleted < limit) {
        struct rs_bytes key, val;
        struct rs_str id;
        size_t id_len;

        /* Seek again after each delete: the deletes invalidate what a seek returned. */
        rc = rs_store_seek(st, RS_DB_DEDUP_EXPIRY, (struct rs_bytes){ from, PART_BYTES }, &key,
                           &val, err);
        if (rc == RS_ENOTFOUND) {
            break;
        }
        if (rc != 0) {
            return rc;
        }
        if (key.len < PART_BYTES || memcmp(key.ptr, from, PART_BYTES) != 0) {
            break; /* past the partition's entries */
        }
        if (key.len < PART_BYTES + TIME_BYTES || key.len > EXP_KEY_MAX) {
            return rs_err_set(err, RS_ESTORE, "dedup expiry key of partition %u has %zu bytes",
                              partition, key.len);
        }
        if (rs_store_key_i64(rs_store_get_u64((const uint8_t *)key.ptr + PART_BYTES)) >=
            before_ms) {
            break;
        }
        id_len = key.len - PART_BYTES - TIME_BYTES;
        memcpy(ebuf, key.ptr, key.len);
        id = (struct rs_str){ (const char *)ebuf + PART_BYTES + TIME_BYTES, id_len };
        rc = rs_store_del(st, RS_DB_DEDUP_EXPIRY, (struct rs_bytes){ ebuf, key.len }, err);
        if (rc != 0) {
            return rc;
        }
        rc = rs_store_del(st, RS_DB_DEDUP, id_key(kbuf, partition, id), err);
        if (rc != 0 && rc != RS_ENOTFOUND) {
            return rc;
        }
        deleted++;
    }
    return (int)deleted;
}
