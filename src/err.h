/*
 * err.h - error codes and the optional error message that travels with them.
 *
 * A function that can fail returns int: 0 on success, -errno for a system error, or one of
 * the RS_E* codes below. The human-readable detail goes into an optional struct rs_err
 * filled where the failure happens. Any thread may use this module.
 */
#ifndef RS_ERR_H
#define RS_ERR_H

#include <stddef.h>

/* Our own codes sit far below any -errno value so rs_strerror() can tell them apart. */
enum {
    RS_ECONFIG = -1001,     /* bad configuration file, key or value */
    RS_EDECODE = -1002,     /* a message that is not a valid event */
    RS_ENOTFOUND = -1003,   /* key absent (not an error for most callers) */
    RS_ESTORE = -1004,      /* LMDB failure */
    RS_ESTORE_FULL = -1005, /* LMDB map full: grow and retry the batch */
    RS_EKAFKA = -1006,      /* librdkafka failure */
    RS_EUSAGE = -1007,      /* bad command line */
    RS_EIO = -1008,         /* file or stream failure not covered by errno */
    RS_EINVAL = -1009,      /* a bad argument: a query parameter, a label */
};

#define RS_ERR_MSG_MAX 512 /* long enough for a path, a key and a library's reason */

struct rs_err {
    int code;
    char msg[RS_ERR_MSG_MAX];
};

/*
 * Record `code` and a printf-style message in `err` (which may be NULL).
 * Returns code, so the failing path stays one statement: return rs_err_set(err, ...).
 */
int rs_err_set(struct rs_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear `err` (NULL allowed). */
void rs_err_clear(struct rs_err *err);

/* Name of a code: our own codes by name, -errno through strerror(). Never NULL. */
const char *rs_strerror(int code);

#endif
