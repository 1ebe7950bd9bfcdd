/*
 * calendar_utc_stub.c - a UTC-only stand-in for the parts of calendar.h that agg.c and its
 * tests use (rs_zone_new/free/id, rs_bucket_start), until calendar.c lands. Plain integer
 * arithmetic on days since 1970-01-01, walking whole years: tests only. Remove at the merge.
 */
#include "calendar.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS (INT64_C(86400) * 1000)

struct rs_zone {
    int unused; /* UTC has no rules */
};

int rs_zone_new(const char *tzid, struct rs_zone **out, struct rs_err *err)
{
    if (strcmp(tzid, "UTC") != 0) {
        return rs_err_set(err, RS_ECONFIG, "time zone '%s': the test stub knows only UTC", tzid);
    }
    *out = calloc(1, sizeof(**out));
    if (*out == NULL) {
        abort();
    }
    return 0;
}

void rs_zone_free(struct rs_zone *zone)
{
    free(zone);
}

const char *rs_zone_id(const struct rs_zone *zone)
{
    (void)zone;
    return "UTC";
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t year_days(int64_t y)
{
    return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365;
}

static int64_t month_days(int64_t y, int m) /* m 1..12 */
{
    static const int64_t len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return m == 2 ? len[1] + (year_days(y) - 365) : len[m - 1];
}

/* First day (since the epoch) of the month, or quarter when `quarter`, that holds `day`. */
static int64_t period_start(int64_t day, int quarter)
{
    int64_t y = 1970, start = 0;
    int m = 1;
    int64_t month_start;

    while (day < start) {
        y--;
        start -= year_days(y);
    }
    while (day >= start + year_days(y)) {
        start += year_days(y);
        y++;
    }
    month_start = start;
    while (day >= month_start + month_days(y, m)) {
        month_start += month_days(y, m);
        m++;
    }
    if (!quarter) {
        return month_start;
    }
    for (int k = 1; k < (m - 1) / 3 * 3 + 1; k++) {
        start += month_days(y, k);
    }
    return start;
}

int64_t rs_bucket_start(const struct rs_zone *zone, enum rs_grain grain, int64_t t_ms)
{
    int64_t day = floor_div(t_ms, DAY_MS);

    (void)zone;
    switch (grain) {
    case RS_GRAIN_DAY:
        return day * DAY_MS;
    case RS_GRAIN_WEEK: /* 1970-01-01 was a Thursday, 3 days after a Monday */
        return (day - ((day + 3) - floor_div(day + 3, 7) * 7)) * DAY_MS;
    case RS_GRAIN_MONTH:
        return period_start(day, 0) * DAY_MS;
    case RS_GRAIN_QUARTER:
        return period_start(day, 1) * DAY_MS;
    case RS_GRAIN__COUNT:
        break;
    }
    return t_ms;
}
