/*
 * http_get.h - a minimal blocking HTTP/1.1 GET for tests against the engine's endpoint.
 */
#ifndef RS_TEST_HTTP_GET_H
#define RS_TEST_HTTP_GET_H

#include <stdint.h>

/*
 * GET http://127.0.0.1:port/path_and_query. Returns the status code (or -1 when the server
 * cannot be reached within timeout_ms) and the body in *body (new; free it), NUL-terminated.
 */
int rs_test_http_get(uint16_t port, const char *path_and_query, char **body, int timeout_ms);

/* A port that was free a moment ago on 127.0.0.1 (bind to 0, read it, close). */
uint16_t rs_test_free_port(void);

#endif
