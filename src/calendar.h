/*
 * calendar.h - time zones, metric buckets and business-hours clocks (METRICS.md §1.2, §5.3).
 *
 * A zone is an IANA time zone read from the system's time-zone database through GLib's
 * GTimeZone (no hand-written tz rules here). Buckets are half-open [start, end) intervals of
 * local calendar time in a zone: day, ISO week (Monday), calendar month, calendar quarter.
 * Every bucket is named by its first instant (ms since the Unix epoch, UTC) and labelled in
 * local time: "2026-03-02", "2026-W10", "2026-03", "2026-Q1".
 *
 * A calendar is a zone, weekly open intervals in local wall-clock time and a list of holiday
 * dates. rs_calendar_add() walks forward through open time; a start outside hours begins at
 * the next opening. A day of 23 or 25 hours (DST) keeps its open interval in local time. An
 * interval whose local start or end does not exist that day (in the DST gap) begins or ends
 * at the first instant after the gap; a local time that occurs twice (fall back) means its
 * first occurrence. Instants are taken within 0001-01-08 .. 9999-12-01 (clamped outside).
 *
 * Threads: zones and calendars are immutable once made; any thread may use them.
 */
#ifndef RS_CALENDAR_H
#define RS_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct rs_zone;
struct rs_calendar;

enum rs_grain { RS_GRAIN_DAY, RS_GRAIN_WEEK, RS_GRAIN_MONTH, RS_GRAIN_QUARTER, RS_GRAIN__COUNT };

/* "day", "week", "month", "quarter"; NULL outside the enum. */
const char *rs_grain_name(enum rs_grain grain);
/* The grain named `name` (len bytes), or -1. */
int rs_grain_parse(const char *name, size_t len);

/* An IANA zone ("UTC", "Europe/Paris"). Returns 0 or RS_ECONFIG naming the zone. */
int rs_zone_new(const char *tzid, struct rs_zone **out, struct rs_err *err);
void rs_zone_free(struct rs_zone *zone); /* NULL allowed */
const char *rs_zone_id(const struct rs_zone *zone);

/* Offset of local time from UTC at instant t_ms, in ms (e.g. +3600000 for CET). */
int64_t rs_zone_offset_ms(const struct rs_zone *zone, int64_t t_ms);

/* First instant of the bucket of `grain` that holds t_ms, in `zone`. */
int64_t rs_bucket_start(const struct rs_zone *zone, enum rs_grain grain, int64_t t_ms);
/* First instant of the next bucket (the end of the one starting at bucket_start). */
int64_t rs_bucket_end(const struct rs_zone *zone, enum rs_grain grain, int64_t bucket_start);
/* Write the label of the bucket starting at bucket_start ("2026-W10", ...); returns its
 * length (< size, NUL-terminated) or 0 if it does not fit. */
size_t rs_bucket_label(const struct rs_zone *zone, enum rs_grain grain, int64_t bucket_start,
                       char *out, size_t size);
/* Parse a label of `grain` (len bytes) into its bucket start. Returns 0 or RS_EINVAL. */
int rs_bucket_parse(const struct rs_zone *zone, enum rs_grain grain, const char *label, size_t len,
                    int64_t *bucket_start, struct rs_err *err);

/*
 * A calendar. `hours` is a weekly spec of local open intervals, days and ranges separated by
 * spaces or commas: "mon-fri 09:00-18:00", "mon-thu 09:00-17:00 fri 09:00-13:00",
 * "24x7". Times are HH:MM, 24:00 may end an interval, and the intervals of a day must not
 * overlap. `holidays`: local dates "YYYY-MM-DD" separated by commas (may be NULL or ""),
 * closed all day; "24x7" with holidays is open all day on every other date and is not
 * rs_calendar_is_24x7(). `id` names it in alerts. Returns 0 or RS_ECONFIG with err naming
 * the bad part. Cost of add/elapsed: a few tz lookups per local day walked; whole weeks
 * without a holiday or DST change are stepped over at once.
 */
int rs_calendar_new(const char *id, const char *tzid, const char *hours, const char *holidays,
                    struct rs_calendar **out, struct rs_err *err);
void rs_calendar_free(struct rs_calendar *cal); /* NULL allowed */
const char *rs_calendar_id(const struct rs_calendar *cal);
bool rs_calendar_is_24x7(const struct rs_calendar *cal);

/* Is instant t_ms inside open hours? */
bool rs_calendar_is_open(const struct rs_calendar *cal, int64_t t_ms);

/*
 * The instant at which `business_ms` of open time has elapsed since start_ms (§5.3
 * add_business_time). business_ms <= 0 gives the next opening at or after start_ms. A
 * calendar with no open time at all, or an answer after 9999-12-01, gives INT64_MAX.
 */
int64_t rs_calendar_add(const struct rs_calendar *cal, int64_t start_ms, int64_t business_ms);

/* Open time inside [from_ms, to_ms), in ms; 0 when to_ms <= from_ms. */
int64_t rs_calendar_elapsed(const struct rs_calendar *cal, int64_t from_ms, int64_t to_ms);

#endif
