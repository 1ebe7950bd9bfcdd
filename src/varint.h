/*
 * varint.h - LEB128 unsigned varints and zigzag signed ones, for compact stored values
 * (sketch.c, agg.c). Header-only: a few lines each, shared by encoders that must agree.
 * Any thread.
 */
#ifndef RS_VARINT_H
#define RS_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define RS_VARINT_MAX 10 /* bytes of the longest uint64 varint: ceil(64 / 7) */

/* Write v at p (room for RS_VARINT_MAX bytes); returns the bytes written. */
static inline size_t rs_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/*
 * Read a varint from [*p, end) and advance *p. Returns 0, or -1 if it is truncated, longer
 * than RS_VARINT_MAX bytes or does not fit in 64 bits (the caller names the corruption).
 */
static inline int rs_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t out = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b;

        if (*p >= end) {
            return -1;
        }
        b = *(*p)++;
        if (shift == 63 && b > 1) {
            return -1; /* the 10th byte holds only bit 63 */
        }
        out |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = out;
            return 0;
        }
    }
    return -1;
}

/* Zigzag keeps small negative numbers short: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ... */
static inline uint64_t rs_varint_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v < 0 ? -1 : 0);
}

static inline int64_t rs_varint_unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

#endif
