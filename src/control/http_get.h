/*
 * This file contains a minimal HTTP/1.0 GET client for the CLI: `cachewarp
 * status` asks a running daemon for its /v1/status. Plain HTTP on the
 * configured api.listen address, no redirects, no TLS, bounded time and size.
 */
#ifndef CW_CONTROL_HTTP_GET_H
#define CW_CONTROL_HTTP_GET_H

#include "core/buf.h"
#include "core/err.h"

/* Largest response body accepted. */
#define CW_HTTP_GET_MAX_BODY (4 * 1024 * 1024)

/*
 * GETs path from address ("host:port", borrowed) with an optional bearer
 * token (NULL for none), within timeout_ms for the whole exchange. Returns 0
 * with *status and body (appended to) filled, or CW_EIO / CW_ETIMEDOUT /
 * CW_EPROTO with err filled ("could not reach 127.0.0.1:8080: connection
 * refused").
 */
int cw_http_get(const char *address, const char *path, const char *token, int timeout_ms,
                int *status, cw_buf_t *body, cw_err_t *err);

#endif
