#include <setjmp.h> /* cmocka 1.1 needs these four first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "err.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/*
 * The server runs on a real uv loop on the test thread. The client is a second thread with
 * plain blocking sockets: it runs a script, records what it read (cmocka asserts must stay
 * on the test thread), and wakes the loop through a uv_async when it is done or wants the
 * server stopped. A watchdog timer and the socket receive timeout turn a hang into a
 * failure.
 */

#define WATCHDOG_MS          10000
#define CLIENT_RCV_TIMEOUT_S 5
#define MAX_EXCHANGES        4
#define RESPONSE_MAX         4096

struct exchange {
    char text[RESPONSE_MAX]; /* status line, headers and body, NUL-terminated */
    int rc;                  /* 0, or the -errno the client hit */
};

struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t watchdog;
    struct rs_http *http;
    uint16_t port;
    int n_handled; /* handler calls; the loop thread only */
    int timed_out;

    pthread_t client;
    void (*script)(struct fixture *f);
    struct exchange got[MAX_EXCHANGES];
    int eof_after_stop; /* the stop script's last read saw the server close */

    pthread_mutex_t mu; /* guards the two requests below */
    int stop_requested;
    int client_done;
};

static void handler(void *opaque, const struct rs_http_request *req, struct rs_http_response *resp)
{
    struct fixture *f = opaque;
    const char *path = rs_http_path(req);
    char text[512];
    int len;

    f->n_handled++;
    if (strcmp(path, "/hello") == 0) {
        resp->content_type = "text/plain; version=0.0.4";
        rs_buf_append(&resp->body, "hello\n", 6);
    } else if (strcmp(path, "/echo") == 0) {
        const char *names[] = { "a", "b", "flag", "absent" };

        resp->content_type = "application/json";
        len = 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            const char *v = rs_http_query(req, names[i]);

            len += snprintf(text + len, sizeof(text) - (size_t)len, "%s=%s;", names[i],
                            v != NULL ? v : "(null)");
        }
        rs_buf_append(&resp->body, text, (size_t)len);
    } else {
        resp->status = 404;
        rs_buf_append(&resp->body, "not found\n", 10);
    }
}

static void on_wake(uv_async_t *wake)
{
    struct fixture *f = wake->data;
    int stop;
    int done;

    pthread_mutex_lock(&f->mu);
    stop = f->stop_requested;
    done = f->client_done;
    pthread_mutex_unlock(&f->mu);
    if (stop && f->http != NULL) {
        rs_http_stop(f->http);
        f->http = NULL;
    }
    if (done) {
        uv_stop(&f->loop);
    }
}

static void on_watchdog(uv_timer_t *timer)
{
    struct fixture *f = timer->data;

    f->timed_out = 1;
    uv_stop(&f->loop);
}

static int http_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rs_err err;

    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    f->wake.data = f;
    assert_int_equal(uv_timer_init(&f->loop, &f->watchdog), 0);
    f->watchdog.data = f;
    assert_int_equal(uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0), 0);
    assert_int_equal(pthread_mutex_init(&f->mu, NULL), 0);
    assert_int_equal(rs_http_start(&f->loop, "127.0.0.1", 0, handler, f, &f->http, &err), 0);
    f->port = rs_http_port(f->http);
    assert_int_not_equal(f->port, 0);
    *state = f;
    return 0;
}

static int http_teardown(void **state)
{
    struct fixture *f = *state;

    rs_http_stop(f->http);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    /* 0: nothing of the server is left on the loop once its handles have closed. */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

/* --- the client thread: no cmocka calls here ------------------------------------------ */

static int client_connect(uint16_t port)
{
    struct sockaddr_in sin;
    struct timeval tv = { CLIENT_RCV_TIMEOUT_S, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -errno;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    return fd;
}

static int client_send(int fd, const char *request)
{
    size_t len = strlen(request);

    while (len > 0) {
        ssize_t n = send(fd, request, len, MSG_NOSIGNAL);

        if (n < 0) {
            return -errno;
        }
        request += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The body length a response announces, or -1 when it does not. */
static long content_length(const char *head)
{
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0) {
            return strtol(line + 2 + 15, NULL, 10);
        }
    }
    return -1;
}

/*
 * Read one response into `ex`: the head, then Content-Length bytes of body (none for a HEAD
 * request), or up to EOF when no length is given.
 */
static void client_read(int fd, struct exchange *ex, int is_head)
{
    size_t len = 0;
    size_t want = 0; /* 0 until the head is complete */

    ex->rc = 0;
    ex->text[0] = '\0';
    while (want == 0 || len < want) {
        ssize_t n = recv(fd, ex->text + len, sizeof(ex->text) - 1 - len, 0);

        if (n < 0) {
            ex->rc = -errno;
            return;
        }
        if (n == 0) {
            ex->rc = want == 0 && len > 0 && strstr(ex->text, "\r\n\r\n") != NULL ? 0 : -EPIPE;
            return;
        }
        len += (size_t)n;
        ex->text[len] = '\0';
        if (want == 0) {
            const char *end = strstr(ex->text, "\r\n\r\n");
            long body;

            if (end == NULL) {
                continue;
            }
            body = is_head ? 0 : content_length(ex->text);
            if (body < 0) {
                continue; /* read to EOF */
            }
            want = (size_t)(end + 4 - ex->text) + (size_t)body;
        }
    }
}

/* One request on a fresh connection that asks to be closed afterwards. */
static void client_once(struct fixture *f, const char *request, struct exchange *ex)
{
    int fd = client_connect(f->port);

    if (fd < 0) {
        ex->rc = fd;
        return;
    }
    ex->rc = client_send(fd, request);
    if (ex->rc == 0) {
        client_read(fd, ex, strncmp(request, "HEAD ", 5) == 0);
    }
    close(fd);
}

static void signal_loop(struct fixture *f, int *flag)
{
    pthread_mutex_lock(&f->mu);
    *flag = 1;
    pthread_mutex_unlock(&f->mu);
    uv_async_send(&f->wake);
}

static void *client_main(void *arg)
{
    struct fixture *f = arg;

    f->script(f);
    signal_loop(f, &f->client_done);
    return NULL;
}

/* Run `script` on the client thread while the test thread serves, until the client ends. */
static void run_client(struct fixture *f, void (*script)(struct fixture *f))
{
    f->script = script;
    assert_int_equal(pthread_create(&f->client, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(pthread_join(f->client, NULL), 0);
    assert_false(f->timed_out);
}

/* --- assertions on what the client read ------------------------------------------------ */

static const char *body_of(const struct exchange *ex)
{
    const char *end = strstr(ex->text, "\r\n\r\n");

    assert_non_null(end);
    return end + 4;
}

static void assert_status(const struct exchange *ex, const char *status_line)
{
    const char *eol = strstr(ex->text, "\r\n");

    assert_int_equal(ex->rc, 0);
    assert_non_null(eol);
    assert_int_equal(eol - ex->text, strlen(status_line));
    assert_memory_equal(ex->text, status_line, strlen(status_line));
}

static void assert_header(const struct exchange *ex, const char *line)
{
    char want[256];

    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    if (strstr(ex->text, want) == NULL) {
        fail_msg("no header line '%s' in:\n%s", line, ex->text);
    }
}

/* --- the tests -------------------------------------------------------------------------- */

#define GET(path) "GET " path " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

static void script_hello(struct fixture *f)
{
    client_once(f, GET("/hello"), &f->got[0]);
}

static void test_http_get_returns_handler_body_and_content_type(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_hello);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_header(&f->got[0], "Content-Type: text/plain; version=0.0.4");
    assert_header(&f->got[0], "Content-Length: 6");
    assert_string_equal(body_of(&f->got[0]), "hello\n");
    assert_int_equal(f->n_handled, 1);
}

static void script_head(struct fixture *f)
{
    client_once(f, "HEAD /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                &f->got[0]);
}

static void test_http_head_answers_like_get_without_body(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_head);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_header(&f->got[0], "Content-Length: 6");
    assert_string_equal(body_of(&f->got[0]), "");
}

static void script_query(struct fixture *f)
{
    client_once(f, GET("/echo?a=1&b=hello%20world%26more&flag"), &f->got[0]);
    client_once(f, GET("/echo"), &f->got[1]);
}

static void test_http_query_parameters_present_absent_and_decoded(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_query);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_header(&f->got[0], "Content-Type: application/json");
    /* "flag" without "=" is present and empty, unlike a parameter that is not there. */
    assert_string_equal(body_of(&f->got[0]), "a=1;b=hello world&more;flag=;absent=(null);");
    assert_status(&f->got[1], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[1]), "a=(null);b=(null);flag=(null);absent=(null);");
}

static void script_not_found(struct fixture *f)
{
    client_once(f, GET("/nope?x=1"), &f->got[0]);
}

static void test_http_handler_status_404_reaches_the_client(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_not_found);
    assert_status(&f->got[0], "HTTP/1.1 404 Not Found");
    assert_header(&f->got[0], "Content-Type: text/plain; charset=utf-8");
    assert_string_equal(body_of(&f->got[0]), "not found\n");
}

static void script_post(struct fixture *f)
{
    client_once(f,
                "POST /hello HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
                "Connection: close\r\n\r\nabc",
                &f->got[0]);
}

static void test_http_post_gets_405_with_allow_before_the_handler(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_post);
    assert_status(&f->got[0], "HTTP/1.1 405 Method Not Allowed");
    assert_header(&f->got[0], "Allow: GET, HEAD");
    assert_int_equal(f->n_handled, 0);
}

static void script_sequential(struct fixture *f)
{
    client_once(f, GET("/hello"), &f->got[0]);
    client_once(f, GET("/nope"), &f->got[1]);
}

static void test_http_serves_two_sequential_connections(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_sequential);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[0]), "hello\n");
    assert_status(&f->got[1], "HTTP/1.1 404 Not Found");
    assert_int_equal(f->n_handled, 2);
}

#define GET_KEEP(path) "GET " path " HTTP/1.1\r\nHost: localhost\r\n\r\n"

static void script_keep_alive(struct fixture *f)
{
    int fd = client_connect(f->port);

    if (fd < 0) {
        f->got[0].rc = fd;
        return;
    }
    f->got[0].rc = client_send(fd, GET_KEEP("/hello"));
    if (f->got[0].rc == 0) {
        client_read(fd, &f->got[0], 0);
    }
    f->got[1].rc = client_send(fd, GET_KEEP("/echo?a=2"));
    if (f->got[1].rc == 0) {
        client_read(fd, &f->got[1], 0);
    }
    close(fd);
}

static void test_http_keep_alive_serves_two_requests_on_one_connection(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_keep_alive);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[0]), "hello\n");
    assert_status(&f->got[1], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[1]), "a=2;b=(null);flag=(null);absent=(null);");
    assert_int_equal(f->n_handled, 2);
}

static void script_get_with_body(struct fixture *f)
{
    int fd = client_connect(f->port);

    if (fd < 0) {
        f->got[0].rc = fd;
        return;
    }
    f->got[0].rc = client_send(fd, "GET /hello HTTP/1.1\r\nHost: localhost\r\n"
                                   "Content-Length: 4\r\n\r\njunk");
    if (f->got[0].rc == 0) {
        client_read(fd, &f->got[0], 0);
    }
    f->got[1].rc = client_send(fd, GET_KEEP("/hello"));
    if (f->got[1].rc == 0) {
        client_read(fd, &f->got[1], 0);
    }
    close(fd);
}

static void test_http_get_body_is_dropped_and_the_connection_kept(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_get_with_body);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[0]), "hello\n");
    assert_status(&f->got[1], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[1]), "hello\n");
    assert_int_equal(f->n_handled, 2);
}

static void script_idle_then_other(struct fixture *f)
{
    int idle = client_connect(f->port); /* connects first and never sends a byte */

    if (idle < 0) {
        f->got[0].rc = idle;
        return;
    }
    client_once(f, GET("/hello"), &f->got[0]);
    close(idle);
}

static void test_http_silent_client_does_not_block_another(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_idle_then_other);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_string_equal(body_of(&f->got[0]), "hello\n");
}

static void script_stop_while_connected(struct fixture *f)
{
    int fd = client_connect(f->port);
    char byte;

    if (fd < 0) {
        f->got[0].rc = fd;
        return;
    }
    f->got[0].rc = client_send(fd, GET_KEEP("/hello"));
    if (f->got[0].rc == 0) {
        client_read(fd, &f->got[0], 0);
    }
    signal_loop(f, &f->stop_requested);
    /* The connection stays open after a keep-alive answer, until the server stops. */
    f->eof_after_stop = recv(fd, &byte, 1, 0) == 0;
    close(fd);
}

static void test_http_stop_closes_open_connections_and_leaves_the_loop_clean(void **state)
{
    struct fixture *f = *state;

    run_client(f, script_stop_while_connected);
    assert_status(&f->got[0], "HTTP/1.1 200 OK");
    assert_null(f->http); /* stopped by on_wake; teardown checks the loop empties */
    assert_true(f->eof_after_stop);
}

static void test_http_start_on_a_port_in_use_fails_with_eio(void **state)
{
    struct fixture *f = *state;
    struct rs_http *second = NULL;
    struct rs_err err;
    char want[64];

    rs_err_clear(&err);
    assert_int_equal(rs_http_start(&f->loop, "127.0.0.1", f->port, handler, f, &second, &err),
                     RS_EIO);
    assert_null(second);
    snprintf(want, sizeof(want), "http.bind 127.0.0.1:%u: %s", (unsigned)f->port,
             strerror(EADDRINUSE));
    assert_string_equal(err.msg, want);
}

static void test_http_start_on_a_bad_address_fails_with_eio(void **state)
{
    struct fixture *f = *state;
    struct rs_http *second = NULL;
    struct rs_err err;

    rs_err_clear(&err);
    assert_int_equal(rs_http_start(&f->loop, "localhost", 9464, handler, f, &second, &err), RS_EIO);
    assert_null(second);
    assert_string_equal(err.msg, "http.bind localhost:9464: not a numeric IPv4 or IPv6 address");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, http_setup, http_teardown)
        T(test_http_get_returns_handler_body_and_content_type),
        T(test_http_head_answers_like_get_without_body),
        T(test_http_query_parameters_present_absent_and_decoded),
        T(test_http_handler_status_404_reaches_the_client),
        T(test_http_post_gets_405_with_allow_before_the_handler),
        T(test_http_serves_two_sequential_connections),
        T(test_http_keep_alive_serves_two_requests_on_one_connection),
        T(test_http_get_body_is_dropped_and_the_connection_kept),
        T(test_http_silent_client_does_not_block_another),
        T(test_http_stop_closes_open_connections_and_leaves_the_loop_clean),
        T(test_http_start_on_a_port_in_use_fails_with_eio),
        T(test_http_start_on_a_bad_address_fails_with_eio),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
