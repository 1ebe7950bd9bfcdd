/*
 * msgpack_build.h - build msgpack payloads in tests.
 *
 * A thin layer over msgpack-c's packer and sbuffer, plus field lists: an event is written as
 * an array of key/value pairs, so a test can say "this valid lead.touched, without lead_id" or
 * "... with connected set to a string" in one line. Test code only (tests/, bench/); src/ keeps
 * msgpack.h inside event.c. Out of memory aborts.
 *
 *   struct mpb b;
 *   mpb_init(&b);
 *   mpb_event(&b, touched, MPB_COUNT(touched), "lead_id", NULL);
 *   rc = rs_event_decode(&dec, mpb_data(&b), mpb_len(&b), &ev, &fault, &err);
 *   mpb_release(&b);
 */
#ifndef RS_TEST_MSGPACK_BUILD_H
#define RS_TEST_MSGPACK_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

struct mpb {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
};

enum mpb_kind {
    MPB_STR,
    MPB_INT,  /* signed, packed in the smallest form */
    MPB_UINT, /* unsigned, for values above INT64_MAX */
    MPB_BOOL,
    MPB_NIL,
    MPB_FLOAT,     /* float 64 */
    MPB_BIN,       /* the bytes of .str, without its NUL */
    MPB_TIMESTAMP, /* ext -1, in the smallest of the 32, 64 and 96-bit forms */
    MPB_EMPTY_MAP,
    MPB_EMPTY_ARRAY,
    MPB_INTS, /* an array of .n integers at .ints */
};

struct mpb_val {
    enum mpb_kind kind;
    const char *str;
    int64_t i;
    uint64_t u;
    bool b;
    double f;
    uint32_t nsec; /* MPB_TIMESTAMP: .i holds the seconds */
    const int64_t *ints;
    size_t n;
};

struct mpb_kv {
    const char *key;
    struct mpb_val val;
};

#define MPB_S(k, v)                     \
    {                                   \
        k,                              \
        {                               \
            .kind = MPB_STR, .str = (v) \
        }                               \
    }
#define MPB_I(k, v)                   \
    {                                 \
        k,                            \
        {                             \
            .kind = MPB_INT, .i = (v) \
        }                             \
    }
#define MPB_U(k, v)                    \
    {                                  \
        k,                             \
        {                              \
            .kind = MPB_UINT, .u = (v) \
        }                              \
    }
#define MPB_B(k, v)                    \
    {                                  \
        k,                             \
        {                              \
            .kind = MPB_BOOL, .b = (v) \
        }                              \
    }
#define MPB_NIL_KV(k)       \
    {                       \
        k,                  \
        {                   \
            .kind = MPB_NIL \
        }                   \
    }
#define MPB_F(k, v)                     \
    {                                   \
        k,                              \
        {                               \
            .kind = MPB_FLOAT, .f = (v) \
        }                               \
    }
#define MPB_TS(k, sec, ns)                                  \
    {                                                       \
        k,                                                  \
        {                                                   \
            .kind = MPB_TIMESTAMP, .i = (sec), .nsec = (ns) \
        }                                                   \
    }

/* `arr` must be an array, not a pointer: its length is counted here. */
#define MPB_INTS_KV(k, arr)                                                      \
    {                                                                            \
        k,                                                                       \
        {                                                                        \
            .kind = MPB_INTS, .ints = (arr), .n = sizeof(arr) / sizeof((arr)[0]) \
        }                                                                        \
    }

#define MPB_COUNT(a) (sizeof(a) / sizeof((a)[0]))

void mpb_init(struct mpb *b);
void mpb_release(struct mpb *b);
/* Forget what was written, keep the memory. */
void mpb_reset(struct mpb *b);

/* Borrowed until the next write or mpb_release(). */
const char *mpb_data(const struct mpb *b);
size_t mpb_len(const struct mpb *b);

void mpb_map(struct mpb *b, uint32_t n);
void mpb_array(struct mpb *b, uint32_t n);
void mpb_str(struct mpb *b, const char *s);
void mpb_strn(struct mpb *b, const char *s, size_t len);
void mpb_int(struct mpb *b, int64_t v);
void mpb_uint(struct mpb *b, uint64_t v);
void mpb_bool(struct mpb *b, bool v);
void mpb_nil(struct mpb *b);
/* An ext of `type` with `len` bytes of `data`, in whichever header msgpack-c picks. */
void mpb_ext(struct mpb *b, int8_t type, const void *data, size_t len);
/* Bytes as they are, for invalid input. */
void mpb_raw(struct mpb *b, const void *data, size_t len);
void mpb_val(struct mpb *b, const struct mpb_val *v);
/* Write the pairs of kvs[0, n) with no map header, after an mpb_map() that counts them. */
void mpb_kvs(struct mpb *b, const struct mpb_kv *kvs, size_t n);

/*
 * Write kvs[0, n) as one map. A pair whose key equals `drop` is left out (NULL drops nothing).
 * If `replace` is not NULL, its value takes the place of the pair with the same key, or the
 * pair is added at the end when there is none.
 */
void mpb_event(struct mpb *b, const struct mpb_kv *kvs, size_t n, const char *drop,
               const struct mpb_kv *replace);

#endif
