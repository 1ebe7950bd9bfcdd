#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rs_err_set(struct rs_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return code;
    }
    err->code = code;
    va_start(ap, fmt);
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void rs_err_clear(struct rs_err *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *rs_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case RS_ECONFIG:
        return "bad configuration";
    case RS_EDECODE:
        return "invalid event";
    case RS_ENOTFOUND:
        return "not found";
    case RS_ESTORE:
        return "state store failure";
    case RS_ESTORE_FULL:
        return "state store map full";
    case RS_EKAFKA:
        return "kafka failure";
    case RS_EUSAGE:
        return "bad usage";
    case RS_EIO:
        return "i/o failure";
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        return strerror(-code);
    }
    return "unknown error";
}
