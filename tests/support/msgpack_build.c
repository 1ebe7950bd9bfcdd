#include "msgpack_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* msgpack_sbuffer_write() returns non-zero only when realloc() fails. */
static void check(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "msgpack_build: out of memory\n");
        abort();
    }
}

void mpb_init(struct mpb *b)
{
    msgpack_sbuffer_init(&b->sbuf);
    msgpack_packer_init(&b->pk, &b->sbuf, msgpack_sbuffer_write);
}

void mpb_release(struct mpb *b)
{
    msgpack_sbuffer_destroy(&b->sbuf);
}

void mpb_reset(struct mpb *b)
{
    msgpack_sbuffer_clear(&b->sbuf);
}

const char *mpb_data(const struct mpb *b)
{
    return b->sbuf.data;
}

size_t mpb_len(const struct mpb *b)
{
    return b->sbuf.size;
}

void mpb_map(struct mpb *b, uint32_t n)
{
    check(msgpack_pack_map(&b->pk, n));
}

void mpb_array(struct mpb *b, uint32_t n)
{
    check(msgpack_pack_array(&b->pk, n));
}

void mpb_str(struct mpb *b, const char *s)
{
    mpb_strn(b, s, strlen(s));
}

void mpb_strn(struct mpb *b, const char *s, size_t len)
{
    check(msgpack_pack_str_with_body(&b->pk, s, len));
}

void mpb_int(struct mpb *b, int64_t v)
{
    check(msgpack_pack_int64(&b->pk, v));
}

void mpb_uint(struct mpb *b, uint64_t v)
{
    check(msgpack_pack_uint64(&b->pk, v));
}

void mpb_bool(struct mpb *b, bool v)
{
    check(v ? msgpack_pack_true(&b->pk) : msgpack_pack_false(&b->pk));
}

void mpb_nil(struct mpb *b)
{
    check(msgpack_pack_nil(&b->pk));
}

void mpb_ext(struct mpb *b, int8_t type, const void *data, size_t len)
{
    check(msgpack_pack_ext(&b->pk, len, type));
    check(msgpack_pack_ext_body(&b->pk, data, len));
}

void mpb_raw(struct mpb *b, const void *data, size_t len)
{
    check(msgpack_sbuffer_write(&b->sbuf, data, len));
}

void mpb_val(struct mpb *b, const struct mpb_val *v)
{
    msgpack_timestamp ts;

    switch (v->kind) {
    case MPB_STR:
        mpb_str(b, v->str);
        break;
    case MPB_INT:
        mpb_int(b, v->i);
        break;
    case MPB_UINT:
        mpb_uint(b, v->u);
        break;
    case MPB_BOOL:
        mpb_bool(b, v->b);
        break;
    case MPB_NIL:
        mpb_nil(b);
        break;
    case MPB_FLOAT:
        check(msgpack_pack_double(&b->pk, v->f));
        break;
    case MPB_BIN:
        check(msgpack_pack_bin_with_body(&b->pk, v->str, strlen(v->str)));
        break;
    case MPB_TIMESTAMP:
        ts.tv_sec = v->i;
        ts.tv_nsec = v->nsec;
        check(msgpack_pack_timestamp(&b->pk, &ts));
        break;
    case MPB_EMPTY_MAP:
        mpb_map(b, 0);
        break;
    case MPB_EMPTY_ARRAY:
        mpb_array(b, 0);
        break;
    case MPB_INTS:
        mpb_array(b, (uint32_t)v->n);
        for (size_t i = 0; i < v->n; i++) {
            mpb_int(b, v->ints[i]);
        }
        break;
    }
}

void mpb_kvs(struct mpb *b, const struct mpb_kv *kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mpb_str(b, kvs[i].key);
        mpb_val(b, &kvs[i].val);
    }
}

void mpb_event(struct mpb *b, const struct mpb_kv *kvs, size_t n, const char *drop,
               const struct mpb_kv *replace)
{
    uint32_t count = 0;
    bool replaced = false;

    for (size_t i = 0; i < n; i++) {
        if (drop == NULL || strcmp(kvs[i].key, drop) != 0) {
            count++;
        }
        if (replace != NULL && strcmp(kvs[i].key, replace->key) == 0) {
            replaced = true;
        }
    }
    if (replace != NULL && !replaced) {
        count++;
    }

    mpb_map(b, count);
    for (size_t i = 0; i < n; i++) {
        if (drop != NULL && strcmp(kvs[i].key, drop) == 0) {
            continue;
        }
        mpb_str(b, kvs[i].key);
        if (replace != NULL && strcmp(kvs[i].key, replace->key) == 0) {
            mpb_val(b, &replace->val);
        } else {
            mpb_val(b, &kvs[i].val);
        }
    }
    if (replace != NULL && !replaced) {
        mpb_str(b, replace->key);
        mpb_val(b, &replace->val);
    }
}
