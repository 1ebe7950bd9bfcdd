/*
 * calendar_stub.c - a test-only stand-in for calendar.c until it lands: UTC only, "24x7" or
 * "mon-fri HH:MM-HH:MM", no holidays. Implements the calendar part of calendar.h that
 * slarule.c uses.
 */
#include "calendar.h"

#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400 * INT64_C(1000))

struct rs_calendar {
    char *id;
    bool all_week;
    int64_t open_ms, close_ms; /* offsets in the day */
};

int rs_calendar_new(const char *id, const char *tzid, const char *hours, const char *holidays,
                    struct rs_calendar **out, struct rs_err *err)
{
    struct rs_calendar *cal;
    int oh, om, ch, cm;

    (void)holidays;
    if (strcmp(tzid, "UTC") != 0) {
        return rs_err_set(err, RS_ECONFIG, "stub calendar: only UTC, not '%s'", tzid);
    }
    cal = rs_xcalloc(1, sizeof(*cal));
    cal->id = rs_xstrdup(id);
    if (strcmp(hours, "24x7") == 0) {
        cal->all_week = true;
    } else if (sscanf(hours, "mon-fri %d:%d-%d:%d", &oh, &om, &ch, &cm) == 4) {
        cal->open_ms = ((int64_t)oh * 60 + om) * 60000;
        cal->close_ms = ((int64_t)ch * 60 + cm) * 60000;
    } else {
        free(cal->id);
        free(cal);
        return rs_err_set(err, RS_ECONFIG, "stub calendar: cannot read '%s'", hours);
    }
    *out = cal;
    return 0;
}

void rs_calendar_free(struct rs_calendar *cal)
{
    if (cal != NULL) {
        free(cal->id);
        free(cal);
    }
}

const char *rs_calendar_id(const struct rs_calendar *cal)
{
    return cal->id;
}

bool rs_calendar_is_24x7(const struct rs_calendar *cal)
{
    return cal->all_week;
}

static int64_t day_start(int64_t t)
{
    int64_t d = t / DAY_MS;

    if (t % DAY_MS < 0) {
        d--;
    }
    return d * DAY_MS;
}

/* 1970-01-01 was a Thursday: day 0 is weekday 3 when Monday is 0. */
static bool is_weekday(int64_t day)
{
    int64_t wd = ((day / DAY_MS) % 7 + 7 + 3) % 7;

    return wd < 5;
}

bool rs_calendar_is_open(const struct rs_calendar *cal, int64_t t_ms)
{
    int64_t d = day_start(t_ms);

    return cal->all_week || (is_weekday(d) && t_ms >= d + cal->open_ms && t_ms < d + cal->close_ms);
}

int64_t rs_calendar_add(const struct rs_calendar *cal, int64_t start_ms, int64_t business_ms)
{
    int64_t d;

    if (cal->all_week) {
        return start_ms + business_ms;
    }
    for (d = day_start(start_ms);; d += DAY_MS) {
        int64_t from = d + cal->open_ms;
        int64_t to = d + cal->close_ms;

        if (!is_weekday(d) || start_ms >= to) {
            continue;
        }
        if (from < start_ms) {
            from = start_ms;
        }
        if (business_ms < to - from || (business_ms == 0)) {
            return from + business_ms;
        }
        business_ms -= to - from;
        if (business_ms == 0) {
            return to;
        }
    }
}

int64_t rs_calendar_elapsed(const struct rs_calendar *cal, int64_t from_ms, int64_t to_ms)
{
    int64_t total = 0;

    if (to_ms <= from_ms) {
        return 0;
    }
    if (cal->all_week) {
        return to_ms - from_ms;
    }
    for (int64_t d = day_start(from_ms); d < to_ms; d += DAY_MS) {
        int64_t a = d + cal->open_ms;
        int64_t b = d + cal->close_ms;

        if (!is_weekday(d)) {
            continue;
        }
        a = a > from_ms ? a : from_ms;
        b = b < to_ms ? b : to_ms;
        if (b > a) {
            total += b - a;
        }
    }
    return total;
}
