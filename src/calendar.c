#include "calendar.h"

#include "mem.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S  INT64_C(86400)
#define DAY_MS (DAY_S * 1000)
/* A weekday rarely has more than a lunch break; more than this is a typo in the spec. */
#define DAY_SPANS_MAX 8
/* GDate numbers days from 0001-01-01 = 1; this is 1970-01-01, the Unix epoch. */
#define EPOCH_JULIAN INT64_C(719163)
/*
 * Instants are clamped to local days [0001-01-08, 9999-12-01]: GDate stops at day 1, a week
 * start may go back 6 days and a quarter end forward 3 months, and labels keep 4-digit years.
 */
#define JULIAN_MIN INT64_C(8)
#define JULIAN_MAX INT64_C(3652029)
#define T_MIN_MS   ((JULIAN_MIN - EPOCH_JULIAN) * DAY_MS)
#define T_MAX_MS   ((JULIAN_MAX - EPOCH_JULIAN) * DAY_MS)
#define LABEL_ECHO 40 /* bytes of a bad label or token quoted back in a message */
/* Longest stretch (weeks) a walk tries to step over at once; halved until it fits. */
#define QUIET_WEEKS_MAX INT64_C(1024)

struct rs_zone {
    GTimeZone *tz;
    char *id;
};

/* Open hours of one weekday in local wall-clock seconds after midnight; close may be 86400. */
struct span {
    int32_t open_s;
    int32_t close_s;
};

/* An open interval as instants, [from_ms, to_ms). */
struct open_ms {
    int64_t from_ms;
    int64_t to_ms;
};

struct rs_calendar {
    char *id;
    struct rs_zone *zone;
    bool is_24x7;
    uint8_t n_spans[7]; /* index 0 is Monday */
    struct span spans[7][DAY_SPANS_MAX];
    int64_t week_open_ms; /* open time of a week of 24-hour days without holidays */
    int64_t *holidays;    /* julian days, sorted, unique */
    size_t n_holidays;
};

static const char *const grain_names[RS_GRAIN__COUNT] = { "day", "week", "month", "quarter" };
static const char *const day_names[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

const char *rs_grain_name(enum rs_grain grain)
{
    return (unsigned)grain < RS_GRAIN__COUNT ? grain_names[grain] : NULL;
}

int rs_grain_parse(const char *name, size_t len)
{
    for (int g = 0; g < RS_GRAIN__COUNT; g++) {
        if (strlen(grain_names[g]) == len && memcmp(grain_names[g], name, len) == 0) {
            return g;
        }
    }
    return -1;
}

/* Division rounding toward minus infinity: instants before 1970 are negative. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t clamp_ms(int64_t t_ms)
{
    return t_ms < T_MIN_MS ? T_MIN_MS : (t_ms > T_MAX_MS ? T_MAX_MS : t_ms);
}

static int64_t offset_s(GTimeZone *tz, int64_t t_s)
{
    return g_time_zone_get_offset(tz, g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t_s));
}

/*
 * The first instant (s) at which the local clock reads local_s (seconds of local wall-clock
 * time counted as if it were UTC). A reading inside a DST gap gives the first instant after
 * the gap, and one that occurs twice (fall back) gives its first occurrence, so opening and
 * closing times keep their order.
 */
static int64_t first_instant_s(GTimeZone *tz, int64_t local_s)
{
    gint64 adjusted = local_s;
    int interval = g_time_zone_adjust_time(tz, G_TIME_TYPE_DAYLIGHT, &adjusted);
    int64_t best = adjusted - g_time_zone_get_offset(tz, interval);

    if (adjusted != local_s) {
        return best; /* GLib moved a reading in the gap to the start of the next interval */
    }
    /*
     * GLib returns one reading of an ambiguous time, not always the first. The other reading,
     * if any, uses the offset in force on the far side of the transition, and transitions are
     * more than a day apart, so the offsets a day either side name every candidate.
     */
    for (int side = -1; side <= 1; side += 2) {
        int64_t off = offset_s(tz, best + side * DAY_S);
        int64_t candidate = local_s - off;

        if (candidate < best && offset_s(tz, candidate) == off) {
            best = candidate;
        }
    }
    return best;
}

/* The local day (GDate julian) holding instant t_ms. */
static int64_t local_day(GTimeZone *tz, int64_t t_ms)
{
    int64_t t_s = floor_div(clamp_ms(t_ms), 1000);

    return floor_div(t_s + offset_s(tz, t_s), DAY_S) + EPOCH_JULIAN;
}

/* The first instant (ms) at which the clock reads `sec` seconds past local day `julian`. */
static int64_t local_instant_ms(GTimeZone *tz, int64_t julian, int64_t sec)
{
    return first_instant_s(tz, (julian - EPOCH_JULIAN) * DAY_S + sec) * 1000;
}

static GDate date_of(int64_t julian)
{
    GDate d;

    g_date_clear(&d, 1);
    g_date_set_julian(&d, (guint32)julian);
    return d;
}

/* 0 for Monday ... 6 for Sunday. */
static int weekday_of(int64_t julian)
{
    GDate d = date_of(julian);

    return (int)g_date_get_weekday(&d) - 1;
}

static int64_t first_day_of_bucket(enum rs_grain grain, int64_t julian)
{
    GDate d = date_of(julian);

    switch (grain) {
    case RS_GRAIN_WEEK:
        return julian - weekday_of(julian);
    case RS_GRAIN_MONTH:
        g_date_set_day(&d, 1);
        break;
    case RS_GRAIN_QUARTER:
        g_date_set_dmy(&d, 1, (GDateMonth)((g_date_get_month(&d) - 1) / 3 * 3 + 1),
                       g_date_get_year(&d));
        break;
    case RS_GRAIN_DAY:
    case RS_GRAIN__COUNT:
        return julian;
    }
    return g_date_get_julian(&d);
}

static int64_t first_day_of_next_bucket(enum rs_grain grain, int64_t first_day)
{
    GDate d = date_of(first_day);

    switch (grain) {
    case RS_GRAIN_WEEK:
        return first_day + 7;
    case RS_GRAIN_MONTH:
        g_date_add_months(&d, 1);
        break;
    case RS_GRAIN_QUARTER:
        g_date_add_months(&d, 3);
        break;
    case RS_GRAIN_DAY:
    case RS_GRAIN__COUNT:
        return first_day + 1;
    }
    return g_date_get_julian(&d);
}

/* The ISO week-numbering year of a week is the year of its Thursday. */
static unsigned iso_week_year(int64_t monday)
{
    GDate thursday = date_of(monday + 3);

    return g_date_get_year(&thursday);
}

int rs_zone_new(const char *tzid, struct rs_zone **out, struct rs_err *err)
{
    GTimeZone *tz;
    struct rs_zone *zone;

    *out = NULL;
    /* GLib reads NULL as the machine's zone: a deployment must name its zone. */
    if (tzid == NULL || tzid[0] == '\0') {
        return rs_err_set(err, RS_ECONFIG, "empty time zone");
    }
    tz = g_time_zone_new_identifier(tzid);
    if (tz == NULL) {
        return rs_err_set(err, RS_ECONFIG, "unknown time zone '%s'", tzid);
    }
    zone = rs_xcalloc(1, sizeof(*zone));
    zone->tz = tz;
    zone->id = rs_xstrdup(tzid);
    *out = zone;
    return 0;
}

void rs_zone_free(struct rs_zone *zone)
{
    if (zone == NULL) {
        return;
    }
    g_time_zone_unref(zone->tz);
    free(zone->id);
    free(zone);
}

const char *rs_zone_id(const struct rs_zone *zone)
{
    return zone->id;
}

int64_t rs_zone_offset_ms(const struct rs_zone *zone, int64_t t_ms)
{
    return offset_s(zone->tz, floor_div(clamp_ms(t_ms), 1000)) * 1000;
}

int64_t rs_bucket_start(const struct rs_zone *zone, enum rs_grain grain, int64_t t_ms)
{
    int64_t first = first_day_of_bucket(grain, local_day(zone->tz, t_ms));

    return local_instant_ms(zone->tz, first, 0);
}

int64_t rs_bucket_end(const struct rs_zone *zone, enum rs_grain grain, int64_t bucket_start)
{
    int64_t first = first_day_of_bucket(grain, local_day(zone->tz, bucket_start));

    return local_instant_ms(zone->tz, first_day_of_next_bucket(grain, first), 0);
}

size_t rs_bucket_label(const struct rs_zone *zone, enum rs_grain grain, int64_t bucket_start,
                       char *out, size_t size)
{
    int64_t first = first_day_of_bucket(grain, local_day(zone->tz, bucket_start));
    GDate d = date_of(first);
    unsigned year = g_date_get_year(&d);
    unsigned month = g_date_get_month(&d);
    int n;

    switch (grain) {
    case RS_GRAIN_WEEK:
        n = snprintf(out, size, "%04u-W%02u", iso_week_year(first),
                     g_date_get_iso8601_week_of_year(&d));
        break;
    case RS_GRAIN_MONTH:
        n = snprintf(out, size, "%04u-%02u", year, month);
        break;
    case RS_GRAIN_QUARTER:
        n = snprintf(out, size, "%04u-Q%u", year, (month - 1) / 3 + 1);
        break;
    case RS_GRAIN_DAY:
    case RS_GRAIN__COUNT:
    default:
        n = snprintf(out, size, "%04u-%02u-%02u", year, month, g_date_get_day(&d));
        break;
    }
    if (n < 0 || (size_t)n >= size) {
        if (size > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    return (size_t)n;
}

/* Exactly `n` decimal digits at s. */
static bool parse_digits(const char *s, size_t n, unsigned *value)
{
    unsigned v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *value = v;
    return true;
}

/* "YYYY-MM-DD" (len bytes) as a julian day; false unless it is a real date in years 1..9999. */
static bool parse_date(const char *s, size_t len, int64_t *julian)
{
    unsigned y, m, d;
    GDate date;

    if (len != 10 || s[4] != '-' || s[7] != '-' || !parse_digits(s, 4, &y) ||
        !parse_digits(s + 5, 2, &m) || !parse_digits(s + 8, 2, &d) ||
        !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y)) {
        return false;
    }
    g_date_clear(&date, 1);
    g_date_set_dmy(&date, (GDateDay)d, (GDateMonth)m, (GDateYear)y);
    *julian = g_date_get_julian(&date);
    return true;
}

int rs_bucket_parse(const struct rs_zone *zone, enum rs_grain grain, const char *label, size_t len,
                    int64_t *bucket_start, struct rs_err *err)
{
    static const char *const formats[RS_GRAIN__COUNT] = { "YYYY-MM-DD", "YYYY-Www", "YYYY-MM",
                                                          "YYYY-Qn" };
    int echo = (int)(len < LABEL_ECHO ? len : LABEL_ECHO);
    unsigned year = 0, n = 0;
    int64_t first = 0;
    bool ok = false;
    GDate d;

    if ((unsigned)grain >= RS_GRAIN__COUNT) {
        return rs_err_set(err, RS_EINVAL, "unknown grain %d", (int)grain);
    }
    g_date_clear(&d, 1);
    ok = len >= 5 && parse_digits(label, 4, &year) && year >= 1 && label[4] == '-';
    switch (grain) {
    case RS_GRAIN_DAY:
        ok = ok && parse_date(label, len, &first);
        break;
    case RS_GRAIN_WEEK:
        ok = ok && len == 8 && label[5] == 'W' && parse_digits(label + 6, 2, &n) && n >= 1 &&
             n <= 53;
        if (ok) {
            /* Week 1 is the week holding January 4th. */
            g_date_set_dmy(&d, 4, G_DATE_JANUARY, (GDateYear)year);
            first = g_date_get_julian(&d);
            first = first - weekday_of(first) + 7 * (int64_t)(n - 1);
            if (iso_week_year(first) != year) {
                return rs_err_set(err, RS_EINVAL, "bad week label '%.*s': %04u has 52 weeks", echo,
                                  label, year);
            }
        }
        break;
    case RS_GRAIN_MONTH:
        ok = ok && len == 7 && parse_digits(label + 5, 2, &n) && n >= 1 && n <= 12;
        if (ok) {
            g_date_set_dmy(&d, 1, (GDateMonth)n, (GDateYear)year);
            first = g_date_get_julian(&d);
        }
        break;
    case RS_GRAIN_QUARTER:
        ok =
            ok && len == 7 && label[5] == 'Q' && parse_digits(label + 6, 1, &n) && n >= 1 && n <= 4;
        if (ok) {
            g_date_set_dmy(&d, 1, (GDateMonth)(3 * n - 2), (GDateYear)year);
            first = g_date_get_julian(&d);
        }
        break;
    case RS_GRAIN__COUNT:
        break;
    }
    if (!ok) {
        return rs_err_set(err, RS_EINVAL, "bad %s label '%.*s': want %s", grain_names[grain], echo,
                          label, formats[grain]);
    }
    *bucket_start = local_instant_ms(zone->tz, first, 0);
    return 0;
}

/* Calendars. */

static bool is_sep(char c)
{
    return c == ' ' || c == ',' || c == '\t' || c == '\n';
}

static int day_index(const char *s, size_t len)
{
    if (len != 3) {
        return -1;
    }
    for (int i = 0; i < 7; i++) {
        if (g_ascii_strncasecmp(s, day_names[i], 3) == 0) {
            return i;
        }
    }
    return -1;
}

/* "HH:MM" (5 bytes) as seconds after midnight; 24:00 only when allow_24 is set. */
static bool parse_clock(const char *s, bool allow_24, int32_t *sec)
{
    unsigned h, m;

    if (s[2] != ':' || !parse_digits(s, 2, &h) || !parse_digits(s + 3, 2, &m) || m > 59 || h > 24 ||
        (h == 24 && (m != 0 || !allow_24))) {
        return false;
    }
    *sec = (int32_t)(h * 3600 + m * 60);
    return true;
}

static int cal_error(struct rs_err *err, const char *id, const char *tok, size_t len,
                     const char *why)
{
    int echo = (int)(len < LABEL_ECHO ? len : LABEL_ECHO);

    return rs_err_set(err, RS_ECONFIG, "calendar '%s': bad hours token '%.*s': %s", id, echo, tok,
                      why);
}

/* Open `sp` on every day of `days` (bit per weekday), refusing an overlap. */
static int add_span(struct rs_calendar *cal, unsigned days, struct span sp, const char *tok,
                    size_t len, struct rs_err *err)
{
    char why[96];

    for (int wd = 0; wd < 7; wd++) {
        if ((days & (1u << wd)) == 0) {
            continue;
        }
        for (int i = 0; i < cal->n_spans[wd]; i++) {
            const struct span *o = &cal->spans[wd][i];

            if (sp.open_s < o->close_s && o->open_s < sp.close_s) {
                (void)snprintf(why, sizeof(why), "overlaps %02d:%02d-%02d:%02d on %s",
                               o->open_s / 3600, o->open_s % 3600 / 60, o->close_s / 3600,
                               o->close_s % 3600 / 60, day_names[wd]);
                return cal_error(err, cal->id, tok, len, why);
            }
        }
        if (cal->n_spans[wd] == DAY_SPANS_MAX) {
            return cal_error(err, cal->id, tok, len, "too many intervals in one day");
        }
        cal->spans[wd][cal->n_spans[wd]++] = sp;
    }
    return 0;
}

static int compare_spans(const void *a, const void *b)
{
    const struct span *x = a, *y = b;

    return (x->open_s > y->open_s) - (x->open_s < y->open_s);
}

/* Sort each day and join touching intervals (12:00-13:00 13:00-14:00), so walks see fewer. */
static void normalise_spans(struct rs_calendar *cal)
{
    for (int wd = 0; wd < 7; wd++) {
        struct span *s = cal->spans[wd];
        int n = 0;

        qsort(s, cal->n_spans[wd], sizeof(*s), compare_spans);
        for (int i = 0; i < cal->n_spans[wd]; i++) {
            if (n > 0 && s[n - 1].close_s == s[i].open_s) {
                s[n - 1].close_s = s[i].close_s;
            } else {
                s[n++] = s[i];
            }
        }
        cal->n_spans[wd] = (uint8_t)n;
    }
}

/*
 * Tokens are day sets ("mon", "mon-fri") and time ranges ("09:00-18:00"); each run of time
 * ranges applies to the days named just before it.
 */
static int parse_hours(struct rs_calendar *cal, const char *hours, bool *all_week,
                       struct rs_err *err)
{
    unsigned days = 0;
    bool days_have_hours = false, any = false;
    const char *last_days = NULL;
    size_t last_days_len = 0;
    const char *p = hours;

    *all_week = false;
    while (*p != '\0') {
        const char *tok;
        size_t len;
        int from, to;

        while (is_sep(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        tok = p;
        while (*p != '\0' && !is_sep(*p)) {
            p++;
        }
        len = (size_t)(p - tok);
        if (len == 4 && g_ascii_strncasecmp(tok, "24x7", 4) == 0) {
            const char *rest = p;

            while (is_sep(*rest)) {
                rest++;
            }
            if (any || *rest != '\0') {
                return cal_error(err, cal->id, tok, len, "24x7 stands alone");
            }
            for (int wd = 0; wd < 7; wd++) {
                cal->spans[wd][0] = (struct span){ 0, (int32_t)DAY_S };
                cal->n_spans[wd] = 1;
            }
            *all_week = true;
            return 0;
        }
        any = true;
        if (tok[0] >= '0' && tok[0] <= '9') {
            struct span sp;
            int rc;

            if (len != 11 || tok[5] != '-' || !parse_clock(tok, false, &sp.open_s) ||
                !parse_clock(tok + 6, true, &sp.close_s)) {
                return cal_error(err, cal->id, tok, len, "want HH:MM-HH:MM, 00:00 to 24:00");
            }
            if (sp.close_s <= sp.open_s) {
                return cal_error(err, cal->id, tok, len,
                                 "ends before it starts (split overnight hours at 24:00)");
            }
            if (days == 0) {
                return cal_error(err, cal->id, tok, len, "no days before it");
            }
            rc = add_span(cal, days, sp, tok, len, err);
            if (rc != 0) {
                return rc;
            }
            days_have_hours = true;
            continue;
        }
        from = day_index(tok, len < 3 ? len : 3);
        to = from;
        if (len == 7 && tok[3] == '-') {
            to = day_index(tok + 4, 3);
        } else if (len != 3) {
            from = -1;
        }
        if (from < 0 || to < 0) {
            return cal_error(err, cal->id, tok, len,
                             "want a day (mon..sun), a day range or HH:MM-HH:MM");
        }
        if (to < from) {
            return cal_error(err, cal->id, tok, len,
                             "day range runs backwards (weeks start on mon)");
        }
        if (days_have_hours) {
            days = 0;
            days_have_hours = false;
        }
        for (int wd = from; wd <= to; wd++) {
            days |= 1u << wd;
        }
        last_days = tok;
        last_days_len = len;
    }
    if (!any) {
        return rs_err_set(err, RS_ECONFIG, "calendar '%s': no hours", cal->id);
    }
    if (!days_have_hours) {
        return cal_error(err, cal->id, last_days, last_days_len, "no hours after it");
    }
    normalise_spans(cal);
    return 0;
}

static int64_t week_open_ms(const struct rs_calendar *cal)
{
    int64_t total = 0;

    for (int wd = 0; wd < 7; wd++) {
        for (int i = 0; i < cal->n_spans[wd]; i++) {
            total += (cal->spans[wd][i].close_s - cal->spans[wd][i].open_s) * INT64_C(1000);
        }
    }
    return total;
}

static int compare_days(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int parse_holidays(struct rs_calendar *cal, const char *holidays, struct rs_err *err)
{
    size_t cap = 0, n = 0;
    const char *p = holidays;

    while (p != NULL && *p != '\0') {
        const char *tok;
        size_t len;
        int64_t julian;

        while (is_sep(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        tok = p;
        while (*p != '\0' && !is_sep(*p)) {
            p++;
        }
        len = (size_t)(p - tok);
        if (!parse_date(tok, len, &julian)) {
            return rs_err_set(err, RS_ECONFIG, "calendar '%s': bad holiday '%.*s': want YYYY-MM-DD",
                              cal->id, (int)(len < LABEL_ECHO ? len : LABEL_ECHO), tok);
        }
        if (n == cap) {
            cap = cap == 0 ? 16 : 2 * cap;
            cal->holidays = rs_xrealloc(cal->holidays, cap * sizeof(*cal->holidays));
        }
        cal->holidays[n++] = julian;
    }
    if (n > 0) {
        size_t kept = 1;

        qsort(cal->holidays, n, sizeof(*cal->holidays), compare_days);
        for (size_t i = 1; i < n; i++) {
            if (cal->holidays[i] != cal->holidays[kept - 1]) {
                cal->holidays[kept++] = cal->holidays[i];
            }
        }
        n = kept;
    }
    cal->n_holidays = n;
    return 0;
}

int rs_calendar_new(const char *id, const char *tzid, const char *hours, const char *holidays,
                    struct rs_calendar **out, struct rs_err *err)
{
    struct rs_calendar *cal = rs_xcalloc(1, sizeof(*cal));
    struct rs_err zone_err;
    bool all_week = false;
    int rc;

    *out = NULL;
    cal->id = rs_xstrdup(id != NULL ? id : "");
    rc = rs_zone_new(tzid, &cal->zone, &zone_err);
    if (rc != 0) {
        rc = rs_err_set(err, rc, "calendar '%s': %s", cal->id, zone_err.msg);
        goto fail;
    }
    rc = parse_hours(cal, hours != NULL ? hours : "", &all_week, err);
    if (rc != 0) {
        goto fail;
    }
    rc = parse_holidays(cal, holidays, err);
    if (rc != 0) {
        goto fail;
    }
    /* "24x7" with holidays is open all day except on those dates: it takes the slow path. */
    cal->is_24x7 = all_week && cal->n_holidays == 0;
    cal->week_open_ms = week_open_ms(cal); /* > 0: parse_hours wants at least one interval */
    *out = cal;
    return 0;

fail:
    rs_calendar_free(cal);
    return rc;
}

void rs_calendar_free(struct rs_calendar *cal)
{
    if (cal == NULL) {
        return;
    }
    rs_zone_free(cal->zone);
    free(cal->holidays);
    free(cal->id);
    free(cal);
}

const char *rs_calendar_id(const struct rs_calendar *cal)
{
    return cal->id;
}

bool rs_calendar_is_24x7(const struct rs_calendar *cal)
{
    return cal->is_24x7;
}

/* Index of the first holiday on or after `julian` (n_holidays if none). */
static size_t next_holiday(const struct rs_calendar *cal, int64_t julian)
{
    size_t lo = 0, hi = cal->n_holidays;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cal->holidays[mid] < julian) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool is_holiday(const struct rs_calendar *cal, int64_t julian)
{
    size_t i = next_holiday(cal, julian);

    return i < cal->n_holidays && cal->holidays[i] == julian;
}

/*
 * The most whole weeks from local day `day` (at most max_weeks) that hold no holiday and no
 * change of UTC offset, or 0. Each day of such a stretch lasts 24 h and opens at fixed
 * distances from its midnight, so the stretch holds exactly weeks * week_open_ms of open time
 * and a long walk steps over it instead of converting every day: a walk from 1970 to 9999
 * then costs a few lookups per DST change, not per day. GLib numbers its intervals in time
 * order, so one index at both ends of the stretch proves there is no transition inside.
 */
static int64_t quiet_weeks(const struct rs_calendar *cal, int64_t day, int64_t max_weeks)
{
    GTimeZone *tz = cal->zone->tz;
    int64_t start_s = local_instant_ms(tz, day, 0) / 1000;
    int first = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, start_s);
    size_t holiday = next_holiday(cal, day);

    for (int64_t w = max_weeks < QUIET_WEEKS_MAX ? max_weeks : QUIET_WEEKS_MAX; w > 0; w /= 2) {
        int64_t end_s = local_instant_ms(tz, day + 7 * w, 0) / 1000;

        if ((holiday == cal->n_holidays || cal->holidays[holiday] >= day + 7 * w) &&
            g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, end_s - 1) == first) {
            return w;
        }
    }
    return 0;
}

/*
 * The open intervals of local day `julian` as instants, in order. The day's wall-clock hours
 * are converted on their own day, so a 23- or 25-hour day keeps 09:00-18:00 local.
 */
static int day_open(const struct rs_calendar *cal, int64_t julian, struct open_ms *out)
{
    int wd = weekday_of(julian);
    int n = 0;

    if (cal->n_spans[wd] == 0 || is_holiday(cal, julian)) {
        return 0;
    }
    for (int i = 0; i < cal->n_spans[wd]; i++) {
        const struct span *sp = &cal->spans[wd][i];
        int64_t from = local_instant_ms(cal->zone->tz, julian, sp->open_s);
        int64_t to = local_instant_ms(cal->zone->tz, julian, sp->close_s);

        if (to > from) { /* empty when both ends fall in the same DST gap */
            out[n++] = (struct open_ms){ from, to };
        }
    }
    return n;
}

bool rs_calendar_is_open(const struct rs_calendar *cal, int64_t t_ms)
{
    struct open_ms open[DAY_SPANS_MAX];
    int n;

    if (cal->is_24x7) {
        return true;
    }
    n = day_open(cal, local_day(cal->zone->tz, t_ms), open);
    for (int i = 0; i < n; i++) {
        if (open[i].from_ms <= t_ms && t_ms < open[i].to_ms) {
            return true;
        }
    }
    return false;
}

int64_t rs_calendar_add(const struct rs_calendar *cal, int64_t start_ms, int64_t business_ms)
{
    struct open_ms open[DAY_SPANS_MAX];
    int64_t left = business_ms > 0 ? business_ms : 0;
    int64_t first, retry = 0;

    if (cal->is_24x7) {
        return start_ms > INT64_MAX - left ? INT64_MAX : start_ms + left;
    }
    start_ms = clamp_ms(start_ms);
    /* Open time never exceeds wall time: past this the answer lies beyond the last day. */
    if (left > T_MAX_MS - start_ms) {
        return INT64_MAX;
    }
    first = local_day(cal->zone->tz, start_ms);
    for (int64_t day = first; day <= JULIAN_MAX; day++) {
        int64_t weeks = (left - 1) / cal->week_open_ms; /* leaves some open time after them */
        int n;

        if (day > first && day >= retry && weeks >= 2) {
            weeks = quiet_weeks(cal, day,
                                weeks < (JULIAN_MAX - day) / 7 ? weeks : (JULIAN_MAX - day) / 7);
            if (weeks > 0) {
                left -= weeks * cal->week_open_ms;
                day += 7 * weeks - 1;
                continue;
            }
            retry = day + 7; /* the coming week is not quiet: walk it day by day */
        }
        n = day_open(cal, day, open);

        for (int i = 0; i < n; i++) {
            int64_t from = open[i].from_ms > start_ms ? open[i].from_ms : start_ms;

            if (open[i].to_ms <= start_ms) {
                continue;
            }
            if (left <= open[i].to_ms - from) {
                return from + left;
            }
            left -= open[i].to_ms - from;
        }
    }
    return INT64_MAX;
}

int64_t rs_calendar_elapsed(const struct rs_calendar *cal, int64_t from_ms, int64_t to_ms)
{
    struct open_ms open[DAY_SPANS_MAX];
    int64_t total = 0, first, last, retry = 0;

    from_ms = clamp_ms(from_ms);
    to_ms = clamp_ms(to_ms);
    if (to_ms <= from_ms) {
        return 0;
    }
    if (cal->is_24x7) {
        return to_ms - from_ms;
    }
    first = local_day(cal->zone->tz, from_ms);
    last = local_day(cal->zone->tz, to_ms);
    for (int64_t day = first; day <= last; day++) {
        int n;

        /* Whole weeks strictly inside (first, last) lie wholly inside [from_ms, to_ms). */
        if (day > first && day >= retry && last - day >= 14) {
            int64_t weeks = quiet_weeks(cal, day, (last - day) / 7);

            if (weeks > 0) {
                total += weeks * cal->week_open_ms;
                day += 7 * weeks - 1;
                continue;
            }
            retry = day + 7;
        }
        n = day_open(cal, day, open);

        for (int i = 0; i < n; i++) {
            int64_t a = open[i].from_ms > from_ms ? open[i].from_ms : from_ms;
            int64_t b = open[i].to_ms < to_ms ? open[i].to_ms : to_ms;

            if (b > a) {
                total += b - a;
            }
        }
    }
    return total;
}
