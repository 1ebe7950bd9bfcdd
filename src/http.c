#define RS_LOG_MODULE "http"
#include "http.h"

#include "log.h"
#include "mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The endpoint serves scrapers and operators, not the public: a few dozen sockets is
 * plenty, and the cap keeps a connection flood from eating file descriptors. */
#define CONNECTION_LIMIT 64

/* Seconds a connection may stay silent before MHD drops it, so a client that connects and
 * sends nothing (or trickles bytes) cannot hold a slot for long. */
#define CONNECTION_TIMEOUT_S 10

#define ALLOWED_METHODS "GET, HEAD"

#define DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"

struct rs_http {
    struct MHD_Daemon *daemon;
    uv_poll_t poll;   /* MHD's epoll fd: readable when any of its sockets has work */
    uv_timer_t timer; /* MHD's next timeout (idle connections, pending buffered data) */
    rs_http_handler *handler;
    void *opaque;
    uint16_t port;
    int closes_pending;
};

struct rs_http_request {
    struct MHD_Connection *conn;
    const char *path;
};

const char *rs_http_query(const struct rs_http_request *req, const char *name)
{
    const char *value = NULL;

    /* The _n variant tells "?flag" (present, no value) from an absent key, which the plain
     * lookup reports alike as NULL. */
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &value,
                                      NULL) != MHD_YES) {
        return NULL;
    }
    return value != NULL ? value : "";
}

const char *rs_http_path(const struct rs_http_request *req)
{
    return req->path;
}

uint16_t rs_http_port(const struct rs_http *http)
{
    return http->port;
}

/* MHD's messages (client protocol errors, accept failures) are per connection, so they are
 * debug lines: the endpoint logs nothing per request by default. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    int saved_errno = errno; /* rs_http_start() reads the errno MHD leaves on failure */
    char line[RS_ERR_MSG_MAX];
    size_t len;

    (void)cls;
    if (rs_log_enabled(RS_LOG_LEVEL_DEBUG) && vsnprintf(line, sizeof(line), fmt, ap) >= 0) {
        len = strlen(line);
        while (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        RS_LOG_DEBUG("libmicrohttpd: %s", line);
    }
    errno = saved_errno;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, const char *type,
                             struct rs_buf *body, const char *allow)
{
    static char empty[1]; /* never read (size 0), but a real address for MHD */
    struct MHD_Response *resp;
    enum MHD_Result rc;

    if (body->len == 0) {
        rs_buf_release(body);
        resp = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
    } else {
        /* MHD takes the buffer and frees it once sent: no copy of a large /metrics page. */
        resp = MHD_create_response_from_buffer_with_free_callback(body->len, body->data, free);
        if (resp == NULL) {
            rs_buf_release(body);
        }
        rs_buf_init(body);
    }
    if (resp == NULL) {
        return MHD_NO; /* MHD closes the connection */
    }
    rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (rc == MHD_YES && allow != NULL) {
        rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (rc == MHD_YES) {
        rc = MHD_queue_response(conn, status, resp);
    }
    MHD_destroy_response(resp); /* MHD keeps its own reference while sending */
    return rc;
}

/*
 * MHD calls this several times per request: first with *req_cls == NULL once the headers are
 * in, then once per piece of body, then with *upload_data_size == 0 when the request is
 * complete. A GET is answered on that last call: a response queued on the first call makes
 * MHD 0.9.75 close the connection (it cannot know yet whether a body follows), which would
 * defeat keep-alive for scrapers.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct rs_http *http = cls;
    struct rs_http_request req = { conn, url };
    struct rs_http_response resp = { .status = 200, .content_type = DEFAULT_CONTENT_TYPE };

    (void)version;
    (void)upload_data;
    rs_buf_init(&resp.body);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "method not allowed\n";

        /* At once, body unread: MHD then closes the connection rather than parse it. */
        rs_buf_append(&resp.body, msg, sizeof(msg) - 1);
        return queue(conn, MHD_HTTP_METHOD_NOT_ALLOWED, DEFAULT_CONTENT_TYPE, &resp.body,
                     ALLOWED_METHODS);
    }
    if (*req_cls == NULL) {
        *req_cls = http; /* any non-NULL marks "headers seen"; nothing to free later */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body on a GET means nothing to us: drop it */
        return MHD_YES;
    }
    http->handler(http->opaque, &req, &resp);
    /* MHD drops the body of a HEAD answer itself but keeps its Content-Length. */
    return queue(conn, resp.status,
                 resp.content_type != NULL ? resp.content_type : DEFAULT_CONTENT_TYPE, &resp.body,
                 NULL);
}

static void on_timer(uv_timer_t *timer);

/* After each run MHD knows its next deadline; 0 means buffered work is already waiting. */
static void rearm(struct rs_http *http)
{
    MHD_UNSIGNED_LONG_LONG timeout_ms = 0;

    if (MHD_get_timeout(http->daemon, &timeout_ms) == MHD_YES) {
        uv_timer_start(&http->timer, on_timer, (uint64_t)timeout_ms, 0);
    } else {
        uv_timer_stop(&http->timer); /* no connection, nothing pending: the poll suffices */
    }
}

/* MHD_run() never blocks without an internal thread: it polls its epoll fd with timeout 0. */
static void run_mhd(struct rs_http *http)
{
    if (MHD_run(http->daemon) != MHD_YES) {
        RS_LOG_WARN("libmicrohttpd run failed");
    }
    rearm(http);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    (void)events;
    if (status < 0) {
        RS_LOG_WARN("poll on the http epoll fd failed: %s", uv_strerror(status));
    }
    run_mhd(poll->data);
}

static void on_timer(uv_timer_t *timer)
{
    run_mhd(timer->data);
}

/* "127.0.0.1:9464" or "[::1]:9464", as the error messages name the endpoint. */
static void format_endpoint(char *out, size_t size, const char *addr, uint16_t port)
{
    int len = strchr(addr, ':') != NULL ? snprintf(out, size, "[%s]:%u", addr, (unsigned)port)
                                        : snprintf(out, size, "%s:%u", addr, (unsigned)port);

    if (len < 0) {
        out[0] = '\0';
    }
}

int rs_http_start(uv_loop_t *loop, const char *addr, uint16_t port, rs_http_handler *handler,
                  void *opaque, struct rs_http **out, struct rs_err *err)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    unsigned int flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    char where[INET6_ADDRSTRLEN + 16];
    const union MHD_DaemonInfo *info;
    struct rs_http *http;
    int rc;

    format_endpoint(where, sizeof(where), addr, port);
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sa = (struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        sa = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        return rs_err_set(err, RS_EIO, "http.bind %s: not a numeric IPv4 or IPv6 address", where);
    }

    http = rs_xcalloc(1, sizeof(*http));
    http->handler = handler;
    http->opaque = opaque;
    /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD creates no thread and runs only inside
     * MHD_run() on the loop thread. MHD_start_daemon() has no error out-parameter; it
     * leaves the errno of the failing socket()/bind()/listen(), so clear it first. */
    errno = 0;
    http->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (http->daemon == NULL) {
        rc = rs_err_set(err, RS_EIO, "http.bind %s: %s", where,
                        errno != 0 ? strerror(errno) : "libmicrohttpd cannot start");
        goto fail_http;
    }
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        rc = rs_err_set(err, RS_EIO, "http.bind %s: cannot read the bound port", where);
        goto fail_daemon;
    }
    http->port = info->port;
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || info->epoll_fd < 0) {
        rc = rs_err_set(err, RS_EIO, "http.bind %s: libmicrohttpd has no epoll fd", where);
        goto fail_daemon;
    }
    rc = uv_poll_init(loop, &http->poll, info->epoll_fd);
    if (rc != 0) {
        rc = rs_err_set(err, RS_EIO, "http.bind %s: cannot poll the epoll fd: %s", where,
                        uv_strerror(rc));
        goto fail_daemon;
    }
    http->poll.data = http;
    uv_timer_init(loop, &http->timer); /* cannot fail: it only links the handle */
    http->timer.data = http;
    rc = uv_poll_start(&http->poll, UV_READABLE, on_poll);
    if (rc != 0) {
        rc = rs_err_set(err, RS_EIO, "http.bind %s: cannot poll the epoll fd: %s", where,
                        uv_strerror(rc));
        rs_http_stop(http); /* the handles exist now: free in their close callbacks */
        return rc;
    }
    rearm(http);
    *out = http;
    return 0;

fail_daemon:
    MHD_stop_daemon(http->daemon);
fail_http:
    free(http);
    return rc;
}

static void on_close(uv_handle_t *handle)
{
    struct rs_http *http = handle->data;

    if (--http->closes_pending == 0) {
        free(http);
    }
}

void rs_http_stop(struct rs_http *http)
{
    if (http == NULL) {
        return;
    }
    /* Stop watching before MHD closes the epoll fd: libuv must not keep a dead fd. */
    uv_poll_stop(&http->poll);
    uv_timer_stop(&http->timer);
    MHD_stop_daemon(http->daemon); /* closes the listen socket and every connection */
    http->daemon = NULL;
    http->closes_pending = 2;
    uv_close((uv_handle_t *)&http->poll, on_close);
    uv_close((uv_handle_t *)&http->timer, on_close);
}
