/*
 * http.h - the engine's HTTP endpoint, served on the libuv loop by GNU libmicrohttpd.
 *
 * libmicrohttpd runs without threads of its own (external polling on its epoll fd): a
 * uv_poll on that fd and a uv_timer for its timeouts call MHD_run() on the loop thread, so a
 * handler sees the engine between batches and may open an LMDB read snapshot. Every request
 * is answered at once from memory; nothing blocks.
 *
 * Threads: the loop thread only.
 */
#ifndef RS_HTTP_H
#define RS_HTTP_H

#include <stdint.h>
#include <uv.h>

#include "err.h"
#include "event.h"

struct rs_http;
struct rs_http_request; /* opaque: the connection of one GET */

/* The URL-decoded value of query parameter `name`, "" for a bare "?name", or NULL when absent.
 * Borrowed for the call. */
const char *rs_http_query(const struct rs_http_request *req, const char *name);
/* The path, without the query string ("/metrics"). */
const char *rs_http_path(const struct rs_http_request *req);

struct rs_http_response {
    unsigned status;          /* 200 unless set */
    const char *content_type; /* "text/plain; version=0.0.4", ... (copied); NULL: text/plain */
    struct rs_buf body;       /* initialised empty; freed by the server */
};

/* Answer one GET or HEAD (other methods get 405 before this is called; MHD drops a HEAD's body). */
typedef void rs_http_handler(void *opaque, const struct rs_http_request *req,
                             struct rs_http_response *resp);

/*
 * Listen on addr:port (port 0: any free port, see rs_http_port) and serve on `loop`.
 * Returns 0 with *out set, or RS_EIO naming the address and the reason.
 */
int rs_http_start(uv_loop_t *loop, const char *addr, uint16_t port, rs_http_handler *handler,
                  void *opaque, struct rs_http **out, struct rs_err *err);

/* The bound port. */
uint16_t rs_http_port(const struct rs_http *http);

/* Stop listening, close connections, and free once libuv has closed the handles. NULL allowed.
 * Not from inside a handler. */
void rs_http_stop(struct rs_http *http);

#endif
