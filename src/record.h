/*
 * record.h - the pieces of the binary records that sla.c, slarule.c and metrics.c keep in the
 * `entities` database: the key (partition, kind, id) and length-prefixed strings.
 *
 * Each module owns its kinds (a byte after the partition; see each module's enum) and its
 * record layout; these helpers only keep the common encoding in one place.
 */
#ifndef RS_RECORD_H
#define RS_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event.h"
#include "store.h"

#define RS_ENTITY_KEY_MAX (5 + RS_EVENT_ID_MAX)

/* partition(u32) kind(u8) id, the id cut at RS_EVENT_ID_MAX (the decoder's limit), in buf
 * (RS_ENTITY_KEY_MAX bytes). */
static inline struct rs_bytes rs_entity_key(uint8_t *buf, uint32_t partition, uint8_t kind,
                                            struct rs_str id)
{
    size_t len = id.len < RS_EVENT_ID_MAX ? id.len : RS_EVENT_ID_MAX;

    rs_store_put_u32(buf, partition);
    buf[4] = kind;
    if (len > 0) {
        memcpy(buf + 5, id.ptr, len);
    }
    return (struct rs_bytes){ buf, 5 + len };
}

/* Write s as u16 length (big-endian) and bytes, cut at max (< 65536); unset is length 0. */
static inline uint8_t *rs_rec_put_str(uint8_t *p, struct rs_str s, size_t max)
{
    size_t len = s.ptr == NULL ? 0 : (s.len < max ? s.len : max);

    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    if (len > 0) {
        memcpy(p + 2, s.ptr, len);
    }
    return p + 2 + len;
}

/* Read what rs_rec_put_str() wrote; *s borrows p. NULL when p is NULL or the bytes run out. */
static inline const uint8_t *rs_rec_get_str(const uint8_t *p, const uint8_t *end, struct rs_str *s)
{
    size_t len;

    if (p == NULL || end - p < 2) {
        return NULL;
    }
    len = (size_t)p[0] << 8 | p[1];
    if ((size_t)(end - p - 2) < len) {
        return NULL;
    }
    *s = (struct rs_str){ len > 0 ? (const char *)p + 2 : NULL, len };
    return p + 2 + len;
}

#endif
