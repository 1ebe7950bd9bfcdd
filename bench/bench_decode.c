/*
 * bench_decode.c - decode and encode throughput of event.c on one core.
 *
 *   bench_decode [BATCHES]      default 2000 batches of 1000 operations per case
 *
 * Prints the command, the machine, then one line per case: name ops/s p50_us p99_us. Cases:
 *   decode_lead_touched_<n>b   a valid event of n bytes (about 150, then about 220)
 *   decode_bad_value_<n>b      a lead.created with intent_tier 'urgent', message formatted
 *   encode_alert               rs_alert_encode() of an SLA-01 breach into a reused buffer
 * The percentiles are over batches of
 * BATCH operations (timing one 250 ns decode with clock_gettime() would mostly measure the
 * clock), so they show jitter between batches, not the tail of single decodes. For comparing
 * two versions use callgrind (STYLE.md §8), which counts instructions instead of seconds.
 */
#include "bench_machine.h"
#include "event.h"
#include "msgpack_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Operations per timed batch: long enough that the clock's own cost is noise. */
#define BATCH 1000

/* Most batches per case; the default run is about a second of decodes at 2M/s. */
#define MAX_BATCHES     100000
#define DEFAULT_BATCHES 2000

typedef int bench_op(void *arg);

struct decode_arg {
    struct rs_event_decoder *dec;
    const char *data;
    size_t len;
    int want;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int decode_op(void *arg)
{
    struct decode_arg *a = arg;
    struct rs_event ev;
    enum rs_event_fault fault;
    struct rs_err err;

    return rs_event_decode(a->dec, a->data, a->len, &ev, &fault, &err) == a->want ? 0 : -1;
}

static int encode_op(void *arg)
{
    static struct rs_buf buf; /* reused, like the producer's */
    const struct rs_alert *alert = arg;

    rs_buf_reset(&buf);
    rs_alert_encode(alert, &buf);
    return buf.len > 0 ? 0 : -1;
}

static int run(const char *name, bench_op *op, void *arg, size_t batches)
{
    static int64_t batch_ns[MAX_BATCHES];
    int64_t total = 0;

    for (int i = 0; i < BATCH; i++) { /* warm caches and branch predictors */
        if (op(arg) != 0) {
            fprintf(stderr, "%s: the operation failed\n", name);
            return -1;
        }
    }
    for (size_t b = 0; b < batches; b++) {
        int64_t t0 = now_ns();
        int bad = 0;

        for (int i = 0; i < BATCH; i++) {
            bad |= op(arg);
        }
        batch_ns[b] = now_ns() - t0;
        total += batch_ns[b];
        if (bad != 0) {
            fprintf(stderr, "%s: the operation failed\n", name);
            return -1;
        }
    }
    qsort(batch_ns, batches, sizeof(batch_ns[0]), cmp_i64);
    printf("%s %.0f %.3f %.3f\n", name, (double)batches * BATCH * 1e9 / (double)total,
           (double)batch_ns[batches / 2] / BATCH / 1000.0,
           (double)batch_ns[batches * 99 / 100] / BATCH / 1000.0);
    return 0;
}

int main(int argc, char **argv)
{
    size_t batches = argc > 1 ? strtoul(argv[1], NULL, 10) : DEFAULT_BATCHES;
    const struct mpb_kv touched[] = {
        MPB_S("type", "lead.touched"),
        MPB_S("id", "01HY3K9Q6Z8X2V4B7N5M1C0D9E"),
        MPB_I("ts", 1715680800000),
        MPB_S("account", "0015g00000XyZaBAAV"),
        MPB_S("source", "salesforce"),
        MPB_S("lead_id", "00Q5g000004AbCdEAK"),
        MPB_S("rep_id", "0055g000001QwErTAA"),
        MPB_S("actor_type", "human"),
        MPB_S("channel", "call"),
        MPB_S("direction", "outbound"),
        MPB_B("connected", true),
    };
    /* About 150 bytes: the size DESIGN.md's 4M decodes/s figure refers to. */
    const struct mpb_kv touched_short[] = {
        MPB_S("type", "lead.touched"), MPB_S("id", "01HY3K9Q6Z8X2V4B7N5M1C0D9E"),
        MPB_I("ts", 1715680800000),    MPB_S("lead_id", "00Q5g000004AbCd"),
        MPB_S("rep_id", "rep_42"),     MPB_S("actor_type", "human"),
        MPB_S("channel", "call"),      MPB_S("direction", "outbound"),
        MPB_B("connected", true),
    };
    const struct mpb_kv bad_tier = MPB_S("intent_tier", "urgent");
    const struct mpb_kv created[] = {
        MPB_S("type", "lead.created"),    MPB_S("id", "01HY3K9Q6Z8X2V4B7N5M1C0D9F"),
        MPB_I("ts", 1715680680000),       MPB_S("lead_id", "00Q5g000004AbCdEAK"),
        MPB_S("channel", "demo_request"), MPB_S("intent_tier", "high"),
        MPB_S("segment", "mid_market"),
    };
    struct rs_alert alert = {
        .kind = RS_ALERT_BREACHED,
        .sla_type = "SLA-01_speed_to_lead",
        .level = "L1_breach",
        .status = "breached",
        .entity_type = "lead",
        .entity_id = { "00Q5g000004AbCdEAK", 18 },
        .attempt_n = 1,
        .owner_id = { "0055g000001QwErTAA", 18 },
        .account = RS_STR_NULL,
        .start_event_type = "lead.created",
        .start_at_ms = 1715680680000,
        .target_at_ms = 1715680980000,
        .level_at_ms = 1715680980000,
        .evaluated_at_ms = 1715681041000,
        .threshold_ms = 300000,
        .elapsed_ms = 361000,
        .clock = "24x7",
        .intent_tier = "high",
        .channel = { "demo_request", 12 },
        .segment = { "mid_market", 10 },
    };
    struct rs_event_decoder dec;
    struct mpb good;
    struct mpb short_good;
    struct mpb bad;
    struct decode_arg arg;
    char name[64];
    int rc = 0;

    if (argc > 2 || batches == 0 || batches > MAX_BATCHES) {
        fprintf(stderr, "usage: bench_decode [BATCHES]   (1 to %d)\n", MAX_BATCHES);
        return 2;
    }
    rs_bench_print_machine(argc, argv);
    memset(alert.alert_id, 'a', 64);
    rs_event_decoder_init(&dec, 1 << 20);
    mpb_init(&good);
    mpb_init(&short_good);
    mpb_init(&bad);
    mpb_event(&good, touched, sizeof(touched) / sizeof(touched[0]), NULL, NULL);
    mpb_event(&short_good, touched_short, sizeof(touched_short) / sizeof(touched_short[0]), NULL,
              NULL);
    mpb_event(&bad, created, sizeof(created) / sizeof(created[0]), NULL, &bad_tier);

    printf("# name ops/s p50_us p99_us\n");
    arg = (struct decode_arg){ &dec, mpb_data(&short_good), mpb_len(&short_good), 0 };
    (void)snprintf(name, sizeof(name), "decode_lead_touched_%zub", mpb_len(&short_good));
    rc |= run(name, decode_op, &arg, batches);
    arg = (struct decode_arg){ &dec, mpb_data(&good), mpb_len(&good), 0 };
    (void)snprintf(name, sizeof(name), "decode_lead_touched_%zub", mpb_len(&good));
    rc |= run(name, decode_op, &arg, batches);
    arg = (struct decode_arg){ &dec, mpb_data(&bad), mpb_len(&bad), RS_EDECODE };
    (void)snprintf(name, sizeof(name), "decode_bad_value_%zub", mpb_len(&bad));
    rc |= run(name, decode_op, &arg, batches);
    rc |= run("encode_alert", encode_op, &alert, batches);

    mpb_release(&bad);
    mpb_release(&short_good);
    mpb_release(&good);
    rs_event_decoder_release(&dec);
    return rc == 0 ? 0 : 1;
}
