#define RS_LOG_MODULE "timer"
#include "timer.h"

#include "log.h"

#include <string.h>

/* timers key: partition(4) deadline(8) rule(1) entity; timer_index key: partition(4) rule(1) entity
 */
#define TIMER_KEY_MAX (13 + RS_TIMER_ENTITY_MAX)
#define INDEX_KEY_MAX (5 + RS_TIMER_ENTITY_MAX)

static int check_entity(struct rs_bytes entity, struct rs_err *err)
{
    if (entity.len == 0 || entity.len > RS_TIMER_ENTITY_MAX) {
        return rs_err_set(err, RS_ESTORE, "timer entity id of %zu bytes (1 to %d allowed)",
                          entity.len, RS_TIMER_ENTITY_MAX);
    }
    return 0;
}

static struct rs_bytes timer_key(uint8_t *buf, uint32_t partition, int64_t deadline_ms,
                                 uint8_t rule, struct rs_bytes entity)
{
    rs_store_put_u32(buf, partition);
    rs_store_put_u64(buf + 4, rs_store_i64_key(deadline_ms));
    buf[12] = rule;
    memcpy(buf + 13, entity.ptr, entity.len);
    return (struct rs_bytes){ buf, 13 + entity.len };
}

static struct rs_bytes index_key(uint8_t *buf, uint32_t partition, uint8_t rule,
                                 struct rs_bytes entity)
{
    rs_store_put_u32(buf, partition);
    buf[4] = rule;
    memcpy(buf + 5, entity.ptr, entity.len);
    return (struct rs_bytes){ buf, 5 + entity.len };
}

int rs_timer_deadline(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                      int64_t *deadline_ms, struct rs_err *err)
{
    uint8_t ibuf[INDEX_KEY_MAX];
    struct rs_bytes val;
    int rc = check_entity(entity, err);

    if (rc != 0) {
        return rc;
    }
    rc = rs_store_get(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity), &val, err);
    if (rc != 0) {
        return rc;
    }
    if (val.len != 8) {
        return rs_err_set(err, RS_ESTORE, "timer index record of %zu bytes, expected 8", val.len);
    }
    *deadline_ms = rs_store_key_i64(rs_store_get_u64(val.ptr));
    return 0;
}

int rs_timer_cancel(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                    struct rs_err *err)
{
    uint8_t ibuf[INDEX_KEY_MAX];
    uint8_t tbuf[TIMER_KEY_MAX];
    int64_t deadline = 0;
    int rc = rs_timer_deadline(st, partition, rule, entity, &deadline, err);

    if (rc != 0) {
        return rc;
    }
    rc = rs_store_del(st, RS_DB_TIMERS, timer_key(tbuf, partition, deadline, rule, entity), err);
    if (rc != 0 && rc != RS_ENOTFOUND) {
        return rc;
    }
    return rs_store_del(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity), err);
}

int rs_timer_arm(struct rs_store *st, uint32_t partition, uint8_t rule, struct rs_bytes entity,
                 int64_t deadline_ms, struct rs_bytes payload, struct rs_err *err)
{
    uint8_t ibuf[INDEX_KEY_MAX];
    uint8_t tbuf[TIMER_KEY_MAX];
    uint8_t dl[8];
    int rc = rs_timer_cancel(st, partition, rule, entity, err);

    if (rc != 0 && rc != RS_ENOTFOUND) {
        return rc;
    }
    rc = rs_store_put(st, RS_DB_TIMERS, timer_key(tbuf, partition, deadline_ms, rule, entity),
                      payload, err);
    if (rc != 0) {
        return rc;
    }
    rs_store_put_u64(dl, rs_store_i64_key(deadline_ms));
    return rs_store_put(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity),
                        (struct rs_bytes){ dl, 8 }, err);
}

/* The first timer of `partition`: RS_ENOTFOUND if it has none. */
static int first_timer(struct rs_store *st, uint32_t partition, struct rs_bytes *key,
                       struct rs_bytes *val, struct rs_err *err)
{
    uint8_t from[4];
    int rc;

    rs_store_put_u32(from, partition);
    rc = rs_store_seek(st, RS_DB_TIMERS, (struct rs_bytes){ from, 4 }, key, val, err);
    if (rc != 0) {
        return rc;
    }
    if (key->len < 14 || rs_store_get_u32(key->ptr) != partition) {
        return RS_ENOTFOUND;
    }
    return 0;
}

int rs_timer_next_deadline(struct rs_store *st, uint32_t partition, int64_t *deadline_ms,
                           struct rs_err *err)
{
    struct rs_bytes key, val;
    int rc = first_timer(st, partition, &key, &val, err);

    *deadline_ms = RS_TIMER_NONE;
    if (rc == RS_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    *deadline_ms = rs_store_key_i64(rs_store_get_u64((const uint8_t *)key.ptr + 4));
    return 0;
}

int rs_timer_fire_due(struct rs_store *st, uint32_t partition, int64_t watermark_ms, uint32_t max,
                      rs_timer_fire_cb *cb, void *opaque, int64_t *next_deadline_ms,
                      struct rs_err *err)
{
    uint8_t tkey[TIMER_KEY_MAX];
    uint8_t ibuf[INDEX_KEY_MAX];
    uint8_t payload[RS_TIMER_PAYLOAD_MAX];
    int fired = 0;
    int rc;

    *next_deadline_ms = RS_TIMER_NONE;
    for (;;) {
        struct rs_bytes key, val, entity;
        int64_t deadline;
        uint8_t rule;
        size_t plen;

        rc = first_timer(st, partition, &key, &val, err);
        if (rc == RS_ENOTFOUND) {
            return fired;
        }
        if (rc != 0) {
            return rc;
        }
        deadline = rs_store_key_i64(rs_store_get_u64((const uint8_t *)key.ptr + 4));
        if (deadline > watermark_ms || (max != 0 && (uint32_t)fired >= max)) {
            *next_deadline_ms = deadline;
            return fired;
        }
        /* Copy out of LMDB memory: the deletes below invalidate it. */
        memcpy(tkey, key.ptr, key.len);
        plen = val.len < sizeof(payload) ? val.len : sizeof(payload);
        memcpy(payload, val.ptr, plen);
        rule = tkey[12];
        entity = (struct rs_bytes){ tkey + 13, key.len - 13 };
        rc = rs_store_del(st, RS_DB_TIMERS, (struct rs_bytes){ tkey, key.len }, err);
        if (rc != 0) {
            return rc;
        }
        rc = rs_store_del(st, RS_DB_TIMER_INDEX, index_key(ibuf, partition, rule, entity), err);
        if (rc != 0 && rc != RS_ENOTFOUND) {
            return rc;
        }
        rc = cb(opaque, partition, rule, entity, deadline, (struct rs_bytes){ payload, plen });
        if (rc < 0) {
            return rc;
        }
        fired++;
    }
}

void rs_watermark_init(struct rs_watermark *wm, int64_t lateness_ms, int64_t max_event_ms)
{
    wm->max_event_ms = max_event_ms;
    wm->lateness_ms = lateness_ms;
    wm->caught_up = false;
}

bool rs_watermark_observe(struct rs_watermark *wm, int64_t event_ms)
{
    if (event_ms > wm->max_event_ms) {
        wm->max_event_ms = event_ms;
        return true;
    }
    return false;
}

int64_t rs_watermark_event(const struct rs_watermark *wm)
{
    return wm->max_event_ms == INT64_MIN ? INT64_MIN : wm->max_event_ms - wm->lateness_ms;
}

int64_t rs_watermark_at(const struct rs_watermark *wm, int64_t now_ms)
{
    int64_t event_wm = rs_watermark_event(wm);

    if (wm->caught_up && now_ms > event_wm) {
        return now_ms;
    }
    return event_wm;
}
