#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calendar.h"

#include <string.h>

#define MIN  (60 * INT64_C(1000))
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/*
 * ms since the epoch of a UTC civil time. Expected instants are written with this and the
 * zone's known UTC offset on that date, so they never come from the code under test (which
 * asks GLib). Days are counted from 0000-03-01 in 400-year eras of the Gregorian rule.
 */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    int64_t yy = mo <= 2 ? y - 1 : y;
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468; /* 719468: 0000-03-01 to 1970-01-01 */

    return days * DAY + h * HOUR + mi * MIN;
}

static struct rs_zone *zone(const char *id)
{
    struct rs_zone *z = NULL;

    assert_int_equal(rs_zone_new(id, &z, NULL), 0);
    return z;
}

static struct rs_calendar *calendar(const char *tz, const char *hours, const char *holidays)
{
    struct rs_calendar *cal = NULL;
    struct rs_err err = { 0 };

    if (rs_calendar_new("test", tz, hours, holidays, &cal, &err) != 0) {
        fail_msg("calendar '%s' rejected: %s", hours, err.msg);
    }
    return cal;
}

static void assert_label(const struct rs_zone *z, enum rs_grain g, int64_t start, const char *want)
{
    char buf[32];
    size_t n = rs_bucket_label(z, g, start, buf, sizeof(buf));

    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

/* Bucket start, end and label of the bucket of grain g that holds t. */
static void assert_bucket(const struct rs_zone *z, enum rs_grain g, int64_t t, int64_t start,
                          int64_t end, const char *label)
{
    assert_int_equal(rs_bucket_start(z, g, t), start);
    assert_int_equal(rs_bucket_end(z, g, start), end);
    assert_label(z, g, start, label);
}

static void test_grain_names_and_parse(void **state)
{
    (void)state;
    assert_string_equal(rs_grain_name(RS_GRAIN_DAY), "day");
    assert_string_equal(rs_grain_name(RS_GRAIN_WEEK), "week");
    assert_string_equal(rs_grain_name(RS_GRAIN_MONTH), "month");
    assert_string_equal(rs_grain_name(RS_GRAIN_QUARTER), "quarter");
    assert_null(rs_grain_name(RS_GRAIN__COUNT));
    assert_int_equal(rs_grain_parse("day", 3), RS_GRAIN_DAY);
    assert_int_equal(rs_grain_parse("week", 4), RS_GRAIN_WEEK);
    assert_int_equal(rs_grain_parse("month", 5), RS_GRAIN_MONTH);
    assert_int_equal(rs_grain_parse("quarter", 7), RS_GRAIN_QUARTER);
    assert_int_equal(rs_grain_parse("dayz", 3), RS_GRAIN_DAY); /* len bytes only */
    assert_int_equal(rs_grain_parse("days", 4), -1);
    assert_int_equal(rs_grain_parse("Week", 4), -1);
    assert_int_equal(rs_grain_parse("", 0), -1);
}

static void test_zone_unknown_id_is_rejected_with_its_name(void **state)
{
    struct rs_zone *z = (struct rs_zone *)&z; /* must be reset to NULL */
    struct rs_err err = { 0 };

    (void)state;
    assert_int_equal(rs_zone_new("Mars/Olympus_Mons", &z, &err), RS_ECONFIG);
    assert_null(z);
    assert_non_null(strstr(err.msg, "'Mars/Olympus_Mons'"));
    assert_int_equal(rs_zone_new("", &z, &err), RS_ECONFIG);
    assert_int_equal(rs_zone_new(NULL, &z, &err), RS_ECONFIG);
    rs_zone_free(NULL);
}

static void test_zone_offsets_follow_dst(void **state)
{
    struct rs_zone *paris = zone("Europe/Paris");
    struct rs_zone *ny = zone("America/New_York");
    struct rs_zone *u = zone("UTC");

    (void)state;
    assert_string_equal(rs_zone_id(paris), "Europe/Paris");
    assert_int_equal(rs_zone_offset_ms(paris, utc(2026, 1, 15, 12, 0)), 1 * HOUR);
    assert_int_equal(rs_zone_offset_ms(paris, utc(2026, 7, 15, 12, 0)), 2 * HOUR);
    /* Paris springs forward at 01:00 UTC on the last Sunday of March (2026-03-29). */
    assert_int_equal(rs_zone_offset_ms(paris, utc(2026, 3, 29, 1, 0) - 1), 1 * HOUR);
    assert_int_equal(rs_zone_offset_ms(paris, utc(2026, 3, 29, 1, 0)), 2 * HOUR);
    assert_int_equal(rs_zone_offset_ms(ny, utc(2026, 1, 15, 12, 0)), -5 * HOUR);
    assert_int_equal(rs_zone_offset_ms(ny, utc(2026, 7, 15, 12, 0)), -4 * HOUR);
    assert_int_equal(rs_zone_offset_ms(ny, utc(1965, 1, 15, 12, 0)), -5 * HOUR);
    assert_int_equal(rs_zone_offset_ms(u, utc(2026, 7, 15, 12, 0)), 0);
    rs_zone_free(paris);
    rs_zone_free(ny);
    rs_zone_free(u);
}

static void test_bucket_utc_every_grain(void **state)
{
    struct rs_zone *u = zone("UTC");
    int64_t t = utc(2026, 3, 4, 15, 0); /* a Wednesday */

    (void)state;
    assert_bucket(u, RS_GRAIN_DAY, t, utc(2026, 3, 4, 0, 0), utc(2026, 3, 5, 0, 0), "2026-03-04");
    assert_bucket(u, RS_GRAIN_WEEK, t, utc(2026, 3, 2, 0, 0), utc(2026, 3, 9, 0, 0), "2026-W10");
    assert_bucket(u, RS_GRAIN_MONTH, t, utc(2026, 3, 1, 0, 0), utc(2026, 4, 1, 0, 0), "2026-03");
    assert_bucket(u, RS_GRAIN_QUARTER, t, utc(2026, 1, 1, 0, 0), utc(2026, 4, 1, 0, 0), "2026-Q1");
    /* Half-open: the first instant belongs to its bucket, the last ms to the one before. */
    assert_int_equal(rs_bucket_start(u, RS_GRAIN_DAY, utc(2026, 3, 5, 0, 0)),
                     utc(2026, 3, 5, 0, 0));
    assert_int_equal(rs_bucket_start(u, RS_GRAIN_DAY, utc(2026, 3, 5, 0, 0) - 1),
                     utc(2026, 3, 4, 0, 0));
    assert_int_equal(rs_bucket_start(u, RS_GRAIN_WEEK, utc(2026, 3, 8, 23, 59)),
                     utc(2026, 3, 2, 0, 0)); /* Sunday closes the ISO week */
    assert_bucket(u, RS_GRAIN_QUARTER, utc(2026, 12, 31, 23, 59), utc(2026, 10, 1, 0, 0),
                  utc(2027, 1, 1, 0, 0), "2026-Q4");
    assert_bucket(u, RS_GRAIN_MONTH, utc(2024, 2, 29, 12, 0), utc(2024, 2, 1, 0, 0),
                  utc(2024, 3, 1, 0, 0), "2024-02");
    /* Before the epoch: negative instants round down, not toward zero. */
    assert_bucket(u, RS_GRAIN_DAY, utc(1969, 12, 31, 23, 0), utc(1969, 12, 31, 0, 0), 0,
                  "1969-12-31");
    rs_zone_free(u);
}

static void test_bucket_iso_week_belongs_to_its_thursdays_year(void **state)
{
    struct rs_zone *u = zone("UTC");

    (void)state;
    /* 2026-12-31 is a Thursday and 2027-01-01 a Friday: both in 2026's 53rd week. */
    assert_bucket(u, RS_GRAIN_WEEK, utc(2026, 12, 31, 12, 0), utc(2026, 12, 28, 0, 0),
                  utc(2027, 1, 4, 0, 0), "2026-W53");
    assert_bucket(u, RS_GRAIN_WEEK, utc(2027, 1, 1, 12, 0), utc(2026, 12, 28, 0, 0),
                  utc(2027, 1, 4, 0, 0), "2026-W53");
    assert_bucket(u, RS_GRAIN_WEEK, utc(2027, 1, 4, 0, 0), utc(2027, 1, 4, 0, 0),
                  utc(2027, 1, 11, 0, 0), "2027-W01");
    /* 2021-01-03 is a Sunday: the end of 2020-W53. */
    assert_bucket(u, RS_GRAIN_WEEK, utc(2021, 1, 3, 12, 0), utc(2020, 12, 28, 0, 0),
                  utc(2021, 1, 4, 0, 0), "2020-W53");
    /* 2024-12-30 is a Monday whose Thursday is 2025-01-02: week 1 of the next year. */
    assert_bucket(u, RS_GRAIN_WEEK, utc(2024, 12, 31, 12, 0), utc(2024, 12, 30, 0, 0),
                  utc(2025, 1, 6, 0, 0), "2025-W01");
    rs_zone_free(u);
}

static void test_bucket_new_york_dst_days_are_one_bucket(void **state)
{
    struct rs_zone *ny = zone("America/New_York");

    (void)state;
    /* 2026-03-08 springs forward: 00:00 EST (05:00Z) to 00:00 EDT next day (04:00Z), 23 h. */
    assert_bucket(ny, RS_GRAIN_DAY, utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 5, 0),
                  utc(2026, 3, 9, 4, 0), "2026-03-08");
    assert_int_equal(utc(2026, 3, 9, 4, 0) - utc(2026, 3, 8, 5, 0), 23 * HOUR);
    /* 2026-11-01 falls back: 00:00 EDT (04:00Z) to 00:00 EST next day (05:00Z), 25 h. */
    assert_bucket(ny, RS_GRAIN_DAY, utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 4, 0),
                  utc(2026, 11, 2, 5, 0), "2026-11-01");
    /* 22:00 EST on the 3rd is 03:00Z on the 4th: the local date names the bucket. */
    assert_bucket(ny, RS_GRAIN_DAY, utc(2026, 3, 4, 3, 0), utc(2026, 3, 3, 5, 0),
                  utc(2026, 3, 4, 5, 0), "2026-03-03");
    /* The week of the spring change is 167 h long; weeks start at local midnight Monday. */
    assert_bucket(ny, RS_GRAIN_WEEK, utc(2026, 3, 8, 12, 0), utc(2026, 3, 2, 5, 0),
                  utc(2026, 3, 9, 4, 0), "2026-W10");
    assert_bucket(ny, RS_GRAIN_MONTH, utc(2026, 3, 20, 0, 0), utc(2026, 3, 1, 5, 0),
                  utc(2026, 4, 1, 4, 0), "2026-03");
    assert_bucket(ny, RS_GRAIN_MONTH, utc(2026, 4, 1, 3, 59), utc(2026, 3, 1, 5, 0),
                  utc(2026, 4, 1, 4, 0), "2026-03");
    assert_bucket(ny, RS_GRAIN_QUARTER, utc(2026, 5, 1, 0, 0), utc(2026, 4, 1, 4, 0),
                  utc(2026, 7, 1, 4, 0), "2026-Q2");
    assert_bucket(ny, RS_GRAIN_QUARTER, utc(2026, 12, 1, 0, 0), utc(2026, 10, 1, 4, 0),
                  utc(2027, 1, 1, 5, 0), "2026-Q4");
    rs_zone_free(ny);
}

static void test_bucket_paris_local_new_year(void **state)
{
    struct rs_zone *paris = zone("Europe/Paris");
    int64_t t = utc(2026, 12, 31, 23, 30); /* 00:30 CET on 2027-01-01 */

    (void)state;
    assert_bucket(paris, RS_GRAIN_DAY, t, utc(2026, 12, 31, 23, 0), utc(2027, 1, 1, 23, 0),
                  "2027-01-01");
    assert_bucket(paris, RS_GRAIN_WEEK, t, utc(2026, 12, 27, 23, 0), utc(2027, 1, 3, 23, 0),
                  "2026-W53");
    assert_bucket(paris, RS_GRAIN_MONTH, t, utc(2026, 12, 31, 23, 0), utc(2027, 1, 31, 23, 0),
                  "2027-01");
    assert_bucket(paris, RS_GRAIN_QUARTER, t, utc(2026, 12, 31, 23, 0), utc(2027, 3, 31, 22, 0),
                  "2027-Q1"); /* Q1 ends at 00:00 CEST on 1 April */
    rs_zone_free(paris);
}

static void test_bucket_day_starting_in_a_midnight_dst_gap(void **state)
{
    struct rs_zone *sp = zone("America/Sao_Paulo");

    (void)state;
    /* 2018-11-04 00:00 -03 did not exist (clocks jumped to 01:00 -02 at 03:00Z). */
    assert_bucket(sp, RS_GRAIN_DAY, utc(2018, 11, 4, 12, 0), utc(2018, 11, 4, 3, 0),
                  utc(2018, 11, 5, 2, 0), "2018-11-04");
    /* 2019-02-17 00:00 -02 fell back to 2019-02-16 23:00 -03: the 16th lasts 25 h. */
    assert_bucket(sp, RS_GRAIN_DAY, utc(2019, 2, 17, 2, 30), utc(2019, 2, 16, 2, 0),
                  utc(2019, 2, 17, 3, 0), "2019-02-16");
    rs_zone_free(sp);
}

static void test_bucket_parse_gives_local_start(void **state)
{
    struct rs_zone *u = zone("UTC");
    struct rs_zone *ny = zone("America/New_York");
    int64_t start = 0;

    (void)state;
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_DAY, "2026-03-04", 10, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 3, 4, 0, 0));
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_WEEK, "2020-W53", 8, &start, NULL), 0);
    assert_int_equal(start, utc(2020, 12, 28, 0, 0));
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_WEEK, "2026-W01", 8, &start, NULL), 0);
    assert_int_equal(start, utc(2025, 12, 29, 0, 0));
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_WEEK, "2025-W01", 8, &start, NULL), 0);
    assert_int_equal(start, utc(2024, 12, 30, 0, 0));
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_MONTH, "2026-02", 7, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 2, 1, 0, 0));
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_QUARTER, "2026-Q3", 7, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 7, 1, 0, 0));
    assert_int_equal(rs_bucket_parse(ny, RS_GRAIN_DAY, "2026-11-01", 10, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 11, 1, 4, 0));
    assert_int_equal(rs_bucket_parse(ny, RS_GRAIN_WEEK, "2026-W11", 8, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 3, 9, 4, 0));
    assert_int_equal(rs_bucket_parse(ny, RS_GRAIN_QUARTER, "2026-Q4", 7, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 10, 1, 4, 0));
    /* Only len bytes count. */
    assert_int_equal(rs_bucket_parse(u, RS_GRAIN_MONTH, "2026-05-17", 7, &start, NULL), 0);
    assert_int_equal(start, utc(2026, 5, 1, 0, 0));
    rs_zone_free(u);
    rs_zone_free(ny);
}

static void test_bucket_label_parse_round_trip(void **state)
{
    const char *zones[] = { "UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe" };

    (void)state;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct rs_zone *tz = zone(zones[z]);

        for (int g = 0; g < RS_GRAIN__COUNT; g++) {
            /* Every 61 h over three years hits each bucket of each grain at least once. */
            for (int64_t t = utc(2025, 1, 1, 0, 0); t < utc(2028, 1, 1, 0, 0); t += 61 * HOUR) {
                int64_t start = rs_bucket_start(tz, (enum rs_grain)g, t);
                int64_t end = rs_bucket_end(tz, (enum rs_grain)g, start);
                int64_t parsed = 0;
                char label[32];
                size_t n = rs_bucket_label(tz, (enum rs_grain)g, start, label, sizeof(label));

                assert_true(start <= t && t < end);
                assert_int_equal(rs_bucket_start(tz, (enum rs_grain)g, end), end);
                assert_int_equal(rs_bucket_start(tz, (enum rs_grain)g, end - 1), start);
                assert_true(n > 0);
                assert_int_equal(rs_bucket_parse(tz, (enum rs_grain)g, label, n, &parsed, NULL), 0);
                assert_int_equal(parsed, start);
            }
        }
        rs_zone_free(tz);
    }
}

static void test_bucket_parse_rejects_bad_labels(void **state)
{
    static const struct {
        enum rs_grain grain;
        const char *label;
    } bad[] = {
        { RS_GRAIN_DAY, "2026-02-29" },
        { RS_GRAIN_DAY, "2026-13-01" },
        { RS_GRAIN_DAY, "2026-3-01" },
        { RS_GRAIN_DAY, "26-03-01" },
        { RS_GRAIN_DAY, "0000-01-01" },
        { RS_GRAIN_DAY, "2026/03/01" },
        { RS_GRAIN_DAY, "" },
        { RS_GRAIN_WEEK, "2026-W00" },
        { RS_GRAIN_WEEK, "2026-W54" },
        { RS_GRAIN_WEEK, "2025-W53" },
        { RS_GRAIN_WEEK, "2026-w10" },
        { RS_GRAIN_WEEK, "2026-W1" },
        { RS_GRAIN_MONTH, "2026-00" },
        { RS_GRAIN_MONTH, "2026-13" },
        { RS_GRAIN_MONTH, "2026-1x" },
        { RS_GRAIN_QUARTER, "2026-Q0" },
        { RS_GRAIN_QUARTER, "2026-Q5" },
        { RS_GRAIN_QUARTER, "2026-03" },
    };
    struct rs_zone *u = zone("UTC");

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rs_err err = { 0 };
        int64_t start = 42;

        if (rs_bucket_parse(u, bad[i].grain, bad[i].label, strlen(bad[i].label), &start, &err) !=
            RS_EINVAL) {
            fail_msg("label '%s' accepted", bad[i].label);
        }
        assert_int_equal(start, 42);
        assert_non_null(strstr(err.msg, bad[i].label));
    }
    rs_zone_free(u);
}

static void test_bucket_label_reports_a_short_buffer(void **state)
{
    struct rs_zone *u = zone("UTC");
    char buf[16];

    (void)state;
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(rs_bucket_label(u, RS_GRAIN_DAY, utc(2026, 3, 4, 0, 0), buf, 10), 0);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(rs_bucket_label(u, RS_GRAIN_DAY, utc(2026, 3, 4, 0, 0), buf, 11), 10);
    assert_string_equal(buf, "2026-03-04");
    rs_zone_free(u);
}

/* METRICS.md §5.3 vectors 1-3; 2026-03-04 is a Wednesday. */
static void test_calendar_metrics_vectors(void **state)
{
    struct rs_calendar *ten = calendar("UTC", "mon-fri 10:00-18:00", NULL);
    struct rs_calendar *nine = calendar("UTC", "mon-fri 09:00-18:00", NULL);
    struct rs_calendar *paris = calendar("Europe/Paris", "mon-fri 10:00-18:00", NULL);

    (void)state;
    assert_false(rs_calendar_is_24x7(ten));
    assert_string_equal(rs_calendar_id(ten), "test");
    /* 1. Wed 15:00 + 10 h: 3 h on Wed, 7 h on Thu -> Thu 17:00. */
    assert_int_equal(rs_calendar_add(ten, utc(2026, 3, 4, 15, 0), 10 * HOUR),
                     utc(2026, 3, 5, 17, 0));
    /* 2. Wed 20:00 (closed) + 10 h: 8 h on Thu, 2 h on Fri -> Fri 12:00. */
    assert_int_equal(rs_calendar_add(ten, utc(2026, 3, 4, 20, 0), 10 * HOUR),
                     utc(2026, 3, 6, 12, 0));
    /* 3. Fri 17:58 + 5 min: 2 min on Fri, 3 min on Mon -> Mon 09:03. */
    assert_int_equal(rs_calendar_add(nine, utc(2026, 3, 6, 17, 58), 5 * MIN),
                     utc(2026, 3, 9, 9, 3));
    /* Vector 1 in Paris (CET, UTC+1, in early March). */
    assert_int_equal(rs_calendar_add(paris, utc(2026, 3, 4, 14, 0), 10 * HOUR),
                     utc(2026, 3, 5, 16, 0));
    rs_calendar_free(ten);
    rs_calendar_free(nine);
    rs_calendar_free(paris);
}

/* Vector 4: a business day still opens at local 09:00 after a DST change. */
static void test_calendar_dst_keeps_local_opening(void **state)
{
    struct rs_calendar *ny = calendar("America/New_York", "mon-fri 09:00-18:00", NULL);
    struct rs_calendar *paris = calendar("Europe/Paris", "mon-fri 09:00-18:00", NULL);

    (void)state;
    /* Fri 2026-03-06 17:00 EST (22:00Z) + 2 h: 1 h Fri, Mon 09:00 EDT (13:00Z) + 1 h. */
    assert_int_equal(rs_calendar_add(ny, utc(2026, 3, 6, 22, 0), 2 * HOUR), utc(2026, 3, 9, 14, 0));
    assert_int_equal(rs_calendar_add(ny, utc(2026, 3, 7, 12, 0), 0), utc(2026, 3, 9, 13, 0));
    /* Fri 2026-10-30 17:00 EDT (21:00Z) + 2 h: Mon 09:00 EST (14:00Z) + 1 h. */
    assert_int_equal(rs_calendar_add(ny, utc(2026, 10, 30, 21, 0), 2 * HOUR),
                     utc(2026, 11, 2, 15, 0));
    assert_int_equal(rs_calendar_elapsed(ny, utc(2026, 10, 30, 21, 0), utc(2026, 11, 2, 15, 0)),
                     2 * HOUR);
    /* Fri 2026-03-27 17:00 CET (16:00Z) + 2 h: Mon 30th 09:00 CEST (07:00Z) + 1 h. */
    assert_int_equal(rs_calendar_add(paris, utc(2026, 3, 27, 16, 0), 2 * HOUR),
                     utc(2026, 3, 30, 8, 0));
    /* Fri 2026-10-23 17:00 CEST (15:00Z) + 2 h: Mon 26th 09:00 CET (08:00Z) + 1 h. */
    assert_int_equal(rs_calendar_add(paris, utc(2026, 10, 23, 15, 0), 2 * HOUR),
                     utc(2026, 10, 26, 9, 0));
    assert_true(rs_calendar_is_open(paris, utc(2026, 10, 26, 8, 0)));
    assert_false(rs_calendar_is_open(paris, utc(2026, 10, 26, 8, 0) - 1));
    assert_true(rs_calendar_is_open(paris, utc(2026, 10, 23, 15, 59)));
    assert_false(rs_calendar_is_open(paris, utc(2026, 10, 23, 16, 0)));
    rs_calendar_free(ny);
    rs_calendar_free(paris);
}

static void test_calendar_dst_days_keep_local_hours(void **state)
{
    struct rs_calendar *sun = calendar("America/New_York", "sun 00:00-24:00", NULL);
    struct rs_calendar *gap = calendar("America/New_York", "sun 02:30-04:00", NULL);
    struct rs_calendar *twice = calendar("America/New_York", "sun 01:00-02:00", NULL);
    struct rs_calendar *dublin = calendar("Europe/Dublin", "sun 01:30-03:00", NULL);

    (void)state;
    /* Spring Sunday: 05:00Z to 04:00Z next day, 23 h of open time; fall Sunday 25 h. */
    assert_int_equal(rs_calendar_elapsed(sun, utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0)),
                     23 * HOUR);
    assert_int_equal(rs_calendar_add(sun, utc(2026, 3, 7, 0, 0), 23 * HOUR), utc(2026, 3, 9, 4, 0));
    assert_int_equal(rs_calendar_elapsed(sun, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0)),
                     25 * HOUR);
    /* 02:30 does not exist on 2026-03-08: open from 03:00 EDT (07:00Z) to 04:00 EDT (08:00Z). */
    assert_int_equal(rs_calendar_add(gap, utc(2026, 3, 8, 0, 0), 0), utc(2026, 3, 8, 7, 0));
    assert_int_equal(rs_calendar_elapsed(gap, utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0)),
                     1 * HOUR);
    /* An ordinary Sunday: 02:30 EST (07:30Z) to 04:00 EST (09:00Z). */
    assert_int_equal(rs_calendar_add(gap, utc(2026, 3, 1, 0, 0), 0), utc(2026, 3, 1, 7, 30));
    /* 01:00 happens twice on 2026-11-01: open from the first (05:00Z) to 02:00 EST (07:00Z). */
    assert_int_equal(rs_calendar_add(twice, utc(2026, 11, 1, 0, 0), 0), utc(2026, 11, 1, 5, 0));
    assert_int_equal(rs_calendar_elapsed(twice, utc(2026, 11, 1, 0, 0), utc(2026, 11, 2, 0, 0)),
                     2 * HOUR);
    assert_true(rs_calendar_is_open(twice, utc(2026, 11, 1, 6, 30)));
    assert_false(rs_calendar_is_open(twice, utc(2026, 11, 1, 7, 0)));
    /*
     * Dublin's tz data marks winter time as the DST one (negative save), so the first 01:30
     * of 2026-10-25 is "standard" IST (00:30Z); the second is GMT (01:30Z). Close: 03:00Z.
     */
    assert_int_equal(rs_calendar_add(dublin, utc(2026, 10, 24, 12, 0), 0),
                     utc(2026, 10, 25, 0, 30));
    assert_int_equal(rs_calendar_elapsed(dublin, utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0)),
                     2 * HOUR + 30 * MIN);
    rs_calendar_free(dublin);
    rs_calendar_free(sun);
    rs_calendar_free(gap);
    rs_calendar_free(twice);
}

/* METRICS.md M11: created Fri 17:58, first call Mon 09:02, hours Mon-Fri 09:00-18:00. */
static void test_calendar_m11_business_versus_wall_clock(void **state)
{
    struct rs_calendar *cal = calendar("Europe/Paris", "mon-fri 09:00-18:00", NULL);
    int64_t created = utc(2026, 3, 6, 16, 58); /* Fri 17:58 CET */
    int64_t called = utc(2026, 3, 9, 8, 2);    /* Mon 09:02 CET */

    (void)state;
    assert_int_equal(rs_calendar_elapsed(cal, created, called), 4 * MIN);
    assert_int_equal(called - created, 63 * HOUR + 4 * MIN);
    /* Business TTFA starts at the next opening: Mon 09:00 CET. */
    assert_int_equal(rs_calendar_add(cal, created + 2 * MIN, 0), utc(2026, 3, 9, 8, 0));
    rs_calendar_free(cal);
}

static void test_calendar_holidays_are_closed_all_day(void **state)
{
    struct rs_calendar *cal =
        calendar("America/New_York", "mon-fri 09:00-18:00", "2026-12-25, 2027-01-01,2026-12-25");

    (void)state;
    /* Thu 2026-12-24 17:00 EST (22:00Z) + 2 h: 1 h Thu, Fri holiday, Mon 28th 09:00 + 1 h. */
    assert_int_equal(rs_calendar_add(cal, utc(2026, 12, 24, 22, 0), 2 * HOUR),
                     utc(2026, 12, 28, 15, 0));
    assert_false(rs_calendar_is_open(cal, utc(2026, 12, 25, 15, 0)));
    assert_true(rs_calendar_is_open(cal, utc(2026, 12, 24, 15, 0)));
    /* Thu 2026-12-31 17:00 EST + 9 h: 1 h Thu, Fri 1st holiday, 8 h on Mon 4th -> 17:00 EST. */
    assert_int_equal(rs_calendar_add(cal, utc(2026, 12, 31, 22, 0), 9 * HOUR),
                     utc(2027, 1, 4, 22, 0));
    /* Mon 12-21 00:00 to Mon 01-04 00:00 EST: 10 weekdays less 2 holidays, 9 h each. */
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 12, 21, 5, 0), utc(2027, 1, 4, 5, 0)),
                     8 * 9 * HOUR);
    rs_calendar_free(cal);
}

static void test_calendar_elapsed_across_a_weekend(void **state)
{
    struct rs_calendar *cal = calendar("UTC", "mon-fri 09:00-18:00", NULL);

    (void)state;
    /* Fri 16:00 to Mon 11:00: 2 h + 2 h. */
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 3, 6, 16, 0), utc(2026, 3, 9, 11, 0)),
                     4 * HOUR);
    /* Sat to Sun: nothing open. */
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 3, 7, 8, 0), utc(2026, 3, 8, 20, 0)), 0);
    /* A whole week, Monday to Monday: 5 x 9 h. */
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 3, 2, 0, 0), utc(2026, 3, 9, 0, 0)),
                     45 * HOUR);
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 3, 9, 11, 0), utc(2026, 3, 6, 16, 0)), 0);
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 3, 9, 11, 0), utc(2026, 3, 9, 11, 0)), 0);
    rs_calendar_free(cal);
}

static void test_calendar_is_open_at_boundaries(void **state)
{
    struct rs_calendar *cal = calendar("UTC", "mon-fri 09:00-18:00", NULL);

    (void)state;
    assert_true(rs_calendar_is_open(cal, utc(2026, 3, 4, 9, 0)));
    assert_false(rs_calendar_is_open(cal, utc(2026, 3, 4, 9, 0) - 1));
    assert_true(rs_calendar_is_open(cal, utc(2026, 3, 4, 18, 0) - 1));
    assert_false(rs_calendar_is_open(cal, utc(2026, 3, 4, 18, 0)));
    assert_false(rs_calendar_is_open(cal, utc(2026, 3, 7, 12, 0))); /* Saturday */
    rs_calendar_free(cal);
}

static void test_calendar_add_zero_or_to_a_closing_time(void **state)
{
    struct rs_calendar *cal = calendar("UTC", "mon-fri 09:00-18:00", NULL);

    (void)state;
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 7, 12, 0), 0), utc(2026, 3, 9, 9, 0));
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 4, 12, 0), 0), utc(2026, 3, 4, 12, 0));
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 4, 18, 0), 0), utc(2026, 3, 5, 9, 0));
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 4, 12, 0), -HOUR), utc(2026, 3, 4, 12, 0));
    /* Using up the day exactly ends at closing time, not at the next opening. */
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 6, 17, 58), 2 * MIN),
                     utc(2026, 3, 6, 18, 0));
    rs_calendar_free(cal);
}

static void test_calendar_split_and_short_days(void **state)
{
    struct rs_calendar *shortfri = calendar("UTC", "mon-thu 09:00-17:00 fri 09:00-13:00", NULL);
    struct rs_calendar *lunch = calendar("UTC", "Mon-Fri 09:00-12:00,13:00-17:00", NULL);
    struct rs_calendar *sat = calendar("UTC", "sat 10:00-14:00", NULL);
    struct rs_calendar *joined =
        calendar("UTC", "mon 09:00-12:00 mon 12:00-24:00 tue 00:00-02:00", NULL);

    (void)state;
    /* Fri 12:00 + 2 h: 1 h Fri, Mon 09:00 + 1 h. */
    assert_int_equal(rs_calendar_add(shortfri, utc(2026, 3, 6, 12, 0), 2 * HOUR),
                     utc(2026, 3, 9, 10, 0));
    assert_int_equal(rs_calendar_elapsed(shortfri, utc(2026, 3, 2, 0, 0), utc(2026, 3, 9, 0, 0)),
                     36 * HOUR);
    /* 11:00 + 2 h: 1 h to noon, lunch, 1 h -> 14:00. */
    assert_int_equal(rs_calendar_add(lunch, utc(2026, 3, 4, 11, 0), 2 * HOUR),
                     utc(2026, 3, 4, 14, 0));
    assert_false(rs_calendar_is_open(lunch, utc(2026, 3, 4, 12, 30)));
    /* Sat 2026-03-07 13:00 + 2 h: 1 h, then Sat 14th 10:00 + 1 h. */
    assert_int_equal(rs_calendar_add(sat, utc(2026, 3, 7, 13, 0), 2 * HOUR),
                     utc(2026, 3, 14, 11, 0));
    /* Mon 09:00 to Tue 02:00 is one stretch of 17 h across midnight. */
    assert_int_equal(rs_calendar_add(joined, utc(2026, 3, 2, 0, 0), 16 * HOUR),
                     utc(2026, 3, 3, 1, 0));
    assert_int_equal(rs_calendar_add(joined, utc(2026, 3, 2, 0, 0), 18 * HOUR),
                     utc(2026, 3, 9, 10, 0));
    rs_calendar_free(shortfri);
    rs_calendar_free(lunch);
    rs_calendar_free(sat);
    rs_calendar_free(joined);
}

static void test_calendar_24x7(void **state)
{
    struct rs_calendar *all = calendar("Europe/Paris", "24x7", "");
    struct rs_calendar *xmas = calendar("UTC", " 24x7 ", "2026-12-25");

    (void)state;
    assert_true(rs_calendar_is_24x7(all));
    assert_true(rs_calendar_is_open(all, utc(2026, 3, 29, 1, 30)));
    assert_int_equal(rs_calendar_add(all, utc(2026, 3, 28, 12, 0), 48 * HOUR),
                     utc(2026, 3, 30, 12, 0));
    assert_int_equal(rs_calendar_add(all, INT64_MAX - 5, 10), INT64_MAX);
    assert_int_equal(rs_calendar_elapsed(all, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 12, 0)),
                     48 * HOUR);
    /* Round the clock except on a holiday: not the fast path, and the 25th is closed. */
    assert_false(rs_calendar_is_24x7(xmas));
    assert_false(rs_calendar_is_open(xmas, utc(2026, 12, 25, 12, 0)));
    assert_true(rs_calendar_is_open(xmas, utc(2026, 12, 24, 23, 59)));
    assert_int_equal(rs_calendar_add(xmas, utc(2026, 12, 24, 12, 0), 24 * HOUR),
                     utc(2026, 12, 26, 12, 0));
    assert_int_equal(rs_calendar_elapsed(xmas, utc(2026, 12, 24, 0, 0), utc(2026, 12, 27, 0, 0)),
                     48 * HOUR);
    rs_calendar_free(all);
    rs_calendar_free(xmas);
}

static void test_calendar_add_then_elapsed_gives_back_the_amount(void **state)
{
    struct rs_calendar *cal = calendar(
        "America/New_York", "mon-thu 08:30-12:00 13:00-17:30 fri 08:30-15:00", "2026-11-26");

    (void)state;
    for (int64_t start = utc(2026, 10, 20, 0, 0); start < utc(2026, 12, 10, 0, 0);
         start += 7 * HOUR + 13 * MIN) {
        for (int64_t amount = 0; amount <= 30 * HOUR; amount += 5 * HOUR + 7 * MIN) {
            int64_t end = rs_calendar_add(cal, start, amount);

            assert_true(end >= start);
            assert_int_equal(rs_calendar_elapsed(cal, start, end), amount);
        }
    }
    rs_calendar_free(cal);
}

/* Weekday counts below come from counting dates one by one outside this code. */
static void test_calendar_long_spans_count_every_business_day(void **state)
{
    struct rs_calendar *ny = calendar("America/New_York", "mon-fri 09:00-18:00", "2026-12-25");
    struct rs_calendar *plain = calendar("America/New_York", "mon-fri 09:00-18:00", NULL);
    struct rs_calendar *u = calendar("UTC", "mon-fri 09:00-18:00", NULL);

    (void)state;
    /* 2026 has 261 weekdays; one holiday. Local midnight is 05:00Z (EST) at both ends. */
    assert_int_equal(rs_calendar_elapsed(ny, utc(2026, 1, 1, 5, 0), utc(2027, 1, 1, 5, 0)),
                     260 * 9 * HOUR);
    assert_int_equal(rs_calendar_add(ny, utc(2026, 1, 1, 5, 0), 260 * 9 * HOUR),
                     utc(2026, 12, 31, 23, 0)); /* 18:00 EST on the last weekday */
    /* 2000-01-01 to 2100-01-01: 26089 weekdays, across 200 DST changes. */
    assert_int_equal(rs_calendar_elapsed(plain, utc(2000, 1, 1, 5, 0), utc(2100, 1, 1, 5, 0)),
                     26089 * 9 * HOUR);
    /* The 20000th weekday from Mon 2000-01-03 is Fri 2076-08-28: 18:00 EDT is 22:00Z. */
    assert_int_equal(rs_calendar_add(plain, utc(2000, 1, 3, 14, 0), 20000 * 9 * HOUR),
                     utc(2076, 8, 28, 22, 0));
    /* 6 h on Mon 03-02, then 10 business days: ends at closing time on Mon 03-16. */
    assert_int_equal(rs_calendar_add(u, utc(2026, 3, 2, 12, 0), 96 * HOUR),
                     utc(2026, 3, 16, 18, 0));
    /* The whole supported range must stay cheap: 2094904 weekdays from 1970 to 9999-12-01. */
    assert_int_equal(rs_calendar_elapsed(u, 0, INT64_MAX), 2094904 * 9 * HOUR);
    rs_calendar_free(ny);
    rs_calendar_free(plain);
    rs_calendar_free(u);
}

static void test_calendar_long_spans_follow_dst_changes(void **state)
{
    /* A holiday outside the range keeps this off the 24x7 fast path. */
    struct rs_calendar *cal = calendar("America/New_York", "24x7", "2027-12-25");

    (void)state;
    assert_false(rs_calendar_is_24x7(cal));
    /* 181 local days, one of them 23 h: 2026-01-01 05:00Z to 2026-07-01 04:00Z. */
    assert_int_equal(rs_calendar_elapsed(cal, utc(2026, 1, 1, 5, 0), utc(2026, 7, 1, 4, 0)),
                     181 * DAY - HOUR);
    assert_int_equal(rs_calendar_add(cal, utc(2026, 1, 1, 5, 0), 181 * DAY - HOUR),
                     utc(2026, 7, 1, 4, 0));
    /* 2027-12-25 is closed: 2027-12-20 05:00Z to 2027-12-30 05:00Z holds 9 open days. */
    assert_int_equal(rs_calendar_elapsed(cal, utc(2027, 12, 20, 5, 0), utc(2027, 12, 30, 5, 0)),
                     9 * DAY);
    rs_calendar_free(cal);
}

static void test_calendar_long_add_then_elapsed_gives_back_the_amount(void **state)
{
    struct rs_calendar *cal =
        calendar("Europe/Paris", "mon-thu 09:00-12:00 14:00-18:00 sat 10:00-12:00",
                 "2026-05-01,2026-05-08,2026-07-14,2026-12-25,2027-05-01");

    (void)state;
    for (int64_t start = utc(2026, 1, 1, 0, 0); start < utc(2027, 1, 1, 0, 0);
         start += 9 * DAY + 5 * HOUR + 11 * MIN) {
        for (int64_t amount = 0; amount <= 3000 * HOUR; amount += 197 * HOUR + 13 * MIN) {
            int64_t end = rs_calendar_add(cal, start, amount);

            assert_int_equal(rs_calendar_elapsed(cal, start, end), amount);
            assert_int_equal(rs_calendar_elapsed(cal, start, end - 1), amount > 0 ? amount - 1 : 0);
        }
    }
    rs_calendar_free(cal);
}

static void test_calendar_add_beyond_the_last_day_saturates(void **state)
{
    struct rs_calendar *cal = calendar("UTC", "mon-fri 09:00-18:00", NULL);

    (void)state;
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 4, 12, 0), INT64_MAX), INT64_MAX);
    /* 60 business days of 9 h from Mon 2026-03-02 09:00: 12 weeks, ending Fri 05-22 18:00. */
    assert_int_equal(rs_calendar_add(cal, utc(2026, 3, 2, 9, 0), 60 * 9 * HOUR),
                     utc(2026, 5, 22, 18, 0));
    rs_calendar_free(cal);
}

static void test_calendar_rejects_bad_specs_naming_the_token(void **state)
{
    static const struct {
        const char *tz, *hours, *holidays, *named;
    } bad[] = {
        { "Mars/Olympus_Mons", "24x7", NULL, "'Mars/Olympus_Mons'" },
        { "UTC", "mon-fri 9-18", NULL, "'9-18'" },
        { "UTC", "mon-fri 9:00-18:00", NULL, "'9:00-18:00'" },
        { "UTC", "funday 09:00-18:00", NULL, "'funday'" },
        { "UTC", "mon-fry 09:00-18:00", NULL, "'mon-fry'" },
        { "UTC", "fri-mon 09:00-18:00", NULL, "'fri-mon'" },
        { "UTC", "mon 18:00-09:00", NULL, "'18:00-09:00'" },
        { "UTC", "mon 09:00-09:00", NULL, "'09:00-09:00'" },
        { "UTC", "mon 09:00-24:30", NULL, "'09:00-24:30'" },
        { "UTC", "mon 24:00-24:00", NULL, "'24:00-24:00'" },
        { "UTC", "mon 09:60-10:00", NULL, "'09:60-10:00'" },
        { "UTC", "mon-fri 09:00-12:00 11:00-13:00", NULL, "'11:00-13:00'" },
        { "UTC", "mon-fri 09:00-12:00 wed 11:00-13:00", NULL, "'11:00-13:00'" },
        { "UTC", "09:00-18:00 mon-fri", NULL, "'09:00-18:00'" },
        { "UTC", "mon-fri 09:00-18:00 sat", NULL, "'sat'" },
        { "UTC", "mon-fri", NULL, "'mon-fri'" },
        { "UTC", "24x7 sat 10:00-12:00", NULL, "'24x7'" },
        { "UTC", "mon 09:00-10:00 24x7", NULL, "'24x7'" },
        { "UTC", "", NULL, "no hours" },
        { "UTC", " , ", NULL, "no hours" },
        { "UTC", NULL, NULL, "no hours" },
        { "UTC", "mon-fri 09:00-18:00", "2026-02-30", "'2026-02-30'" },
        { "UTC", "mon-fri 09:00-18:00", "2026-12-25;2027-01-01", "'2026-12-25;2027-01-01'" },
        { "UTC", "mon-fri 09:00-18:00", "tomorrow", "'tomorrow'" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rs_calendar *cal = (struct rs_calendar *)&cal;
        struct rs_err err = { 0 };
        int rc = rs_calendar_new("support", bad[i].tz, bad[i].hours, bad[i].holidays, &cal, &err);

        if (rc != RS_ECONFIG) {
            fail_msg("hours '%s' holidays '%s': rc %d", bad[i].hours ? bad[i].hours : "(null)",
                     bad[i].holidays ? bad[i].holidays : "(null)", rc);
        }
        assert_null(cal);
        if (strstr(err.msg, bad[i].named) == NULL || strstr(err.msg, "'support'") == NULL) {
            fail_msg("message '%s' does not name %s", err.msg, bad[i].named);
        }
    }
    rs_calendar_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grain_names_and_parse),
        cmocka_unit_test(test_zone_unknown_id_is_rejected_with_its_name),
        cmocka_unit_test(test_zone_offsets_follow_dst),
        cmocka_unit_test(test_bucket_utc_every_grain),
        cmocka_unit_test(test_bucket_iso_week_belongs_to_its_thursdays_year),
        cmocka_unit_test(test_bucket_new_york_dst_days_are_one_bucket),
        cmocka_unit_test(test_bucket_paris_local_new_year),
        cmocka_unit_test(test_bucket_day_starting_in_a_midnight_dst_gap),
        cmocka_unit_test(test_bucket_parse_gives_local_start),
        cmocka_unit_test(test_bucket_label_parse_round_trip),
        cmocka_unit_test(test_bucket_parse_rejects_bad_labels),
        cmocka_unit_test(test_bucket_label_reports_a_short_buffer),
        cmocka_unit_test(test_calendar_metrics_vectors),
        cmocka_unit_test(test_calendar_dst_keeps_local_opening),
        cmocka_unit_test(test_calendar_dst_days_keep_local_hours),
        cmocka_unit_test(test_calendar_m11_business_versus_wall_clock),
        cmocka_unit_test(test_calendar_holidays_are_closed_all_day),
        cmocka_unit_test(test_calendar_elapsed_across_a_weekend),
        cmocka_unit_test(test_calendar_is_open_at_boundaries),
        cmocka_unit_test(test_calendar_add_zero_or_to_a_closing_time),
        cmocka_unit_test(test_calendar_split_and_short_days),
        cmocka_unit_test(test_calendar_24x7),
        cmocka_unit_test(test_calendar_add_then_elapsed_gives_back_the_amount),
        cmocka_unit_test(test_calendar_long_spans_count_every_business_day),
        cmocka_unit_test(test_calendar_long_spans_follow_dst_changes),
        cmocka_unit_test(test_calendar_long_add_then_elapsed_gives_back_the_amount),
        cmocka_unit_test(test_calendar_add_beyond_the_last_day_saturates),
        cmocka_unit_test(test_calendar_rejects_bad_specs_naming_the_token),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
