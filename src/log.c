#define RS_LOG_MODULE "log"
#include "log.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum rs_log_level max_level = RS_LOG_LEVEL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void rs_log_set_level(enum rs_log_level level)
{
    max_level = level;
}

int rs_log_parse_level(const char *name, enum rs_log_level *level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (enum rs_log_level)i;
            return 0;
        }
    }
    return RS_ECONFIG;
}

int rs_log_enabled(enum rs_log_level level)
{
    return level <= max_level;
}

void rs_log_write(enum rs_log_level level, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec now;
    struct tm tm;
    size_t len;
    int n;
    va_list ap;

    (void)clock_gettime(CLOCK_REALTIME, &now);
    (void)gmtime_r(&now.tv_sec, &tm);
    len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s %s: ", now.tv_nsec / 1000000L,
                 level_names[level], module);
    len += n > 0 ? (size_t)n : 0;
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);
    if (n > 0) {
        len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n : sizeof(line) - len - 2;
    }
    line[len++] = '\n';
    /* One write(2) per line keeps lines from different threads whole. */
    (void)!write(STDERR_FILENO, line, len);
}
