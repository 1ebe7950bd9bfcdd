#include "dedup.h"

#include "mem.h"

#include <stdlib.h>
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

/* The expiry's walk: which entries of dedup_expiry go, and the dedup keys they name. */
struct expiry {
    uint32_t partition;
    int64_t before_ms;
    struct rs_buf ids; /* per entry: its dedup key's length (2 bytes), then the key */
    size_t n;
    struct rs_err *err;
};

static int expire_one(void *opaque, struct rs_bytes key, struct rs_bytes val)
{
    struct expiry *x = opaque;
    uint8_t kbuf[ID_KEY_MAX];
    struct rs_bytes id;
    uint16_t len;

    (void)val;
    if (key.len < PART_BYTES || rs_store_get_u32(key.ptr) != x->partition) {
        return 0; /* past the partition's entries */
    }
    if (key.len < PART_BYTES + TIME_BYTES || key.len > EXP_KEY_MAX) {
        return rs_err_set(x->err, RS_ESTORE, "dedup expiry key of partition %u has %zu bytes",
                          x->partition, key.len);
    }
    if (rs_store_key_i64(rs_store_get_u64((const uint8_t *)key.ptr + PART_BYTES)) >= x->before_ms) {
        return 0;
    }
    id = id_key(kbuf, x->partition,
                (struct rs_str){ (const char *)key.ptr + PART_BYTES + TIME_BYTES,
                                 key.len - PART_BYTES - TIME_BYTES });
    len = (uint16_t)id.len;
    rs_buf_append(&x->ids, &len, sizeof(len));
    rs_buf_append(&x->ids, id.ptr, id.len);
    x->n++;
    return 1;
}

int rs_dedup_expire(struct rs_store *st, uint32_t partition, int64_t before_ms, uint32_t max,
                    struct rs_err *err)
{
    uint8_t from[PART_BYTES];
    struct expiry x = { partition, before_ms, { NULL, 0, 0 }, 0, err };
    struct rs_bytes *keys;
    int deleted;
    int rc;

    /* One cursor walks the expiry index from the partition's oldest entry, deleting as it
     * goes; then the ids it named go from dedup, in key order, through one cursor too. */
    rs_store_put_u32(from, partition);
    deleted = rs_store_del_range(st, RS_DB_DEDUP_EXPIRY, (struct rs_bytes){ from, PART_BYTES }, max,
                                 expire_one, &x, err);
    if (deleted < 0 || x.n == 0) {
        rs_buf_release(&x.ids);
        return deleted;
    }
    keys = rs_xmalloc(x.n * sizeof(*keys));
    for (size_t i = 0, off = 0; i < x.n; i++) {
        uint16_t len;

        memcpy(&len, x.ids.data + off, sizeof(len));
        keys[i] = (struct rs_bytes){ x.ids.data + off + sizeof(len), len };
        off += sizeof(len) + len;
    }
    rc = rs_store_del_keys(st, RS_DB_DEDUP, keys, x.n, err);
    free(keys);
    rs_buf_release(&x.ids);
    return rc != 0 ? rc : deleted;
}
