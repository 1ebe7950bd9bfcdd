/*
 * log.h - levelled, module-tagged log lines on stderr.
 *
 * Each .c file defines RS_LOG_MODULE before including this header. A line reads
 *   2026-01-05T10:00:00.123Z warn store: map full, growing size_mb=1024
 * Any thread may log; one line is written with one write(2), so lines never interleave.
 */
#ifndef RS_LOG_H
#define RS_LOG_H

enum rs_log_level { RS_LOG_LEVEL_ERROR, RS_LOG_LEVEL_WARN, RS_LOG_LEVEL_INFO, RS_LOG_LEVEL_DEBUG };

/* Lines above `level` are dropped. Default: info. Set once at start, before threads exist. */
void rs_log_set_level(enum rs_log_level level);

/* Parse "error", "warn", "info" or "debug". Returns 0, or RS_ECONFIG for another word. */
int rs_log_parse_level(const char *name, enum rs_log_level *level);

int rs_log_enabled(enum rs_log_level level);

void rs_log_write(enum rs_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The macros below name RS_LOG_MODULE, which each .c file defines before using them. */
#define RS_LOG_AT(level, ...)                                \
    do {                                                     \
        if (rs_log_enabled(level)) {                         \
            rs_log_write(level, RS_LOG_MODULE, __VA_ARGS__); \
        }                                                    \
    } while (0)

#define RS_LOG_ERROR(...) RS_LOG_AT(RS_LOG_LEVEL_ERROR, __VA_ARGS__)
#define RS_LOG_WARN(...)  RS_LOG_AT(RS_LOG_LEVEL_WARN, __VA_ARGS__)
#define RS_LOG_INFO(...)  RS_LOG_AT(RS_LOG_LEVEL_INFO, __VA_ARGS__)
#define RS_LOG_DEBUG(...) RS_LOG_AT(RS_LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
