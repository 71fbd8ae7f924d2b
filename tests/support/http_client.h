/*
 * This file contains a tiny HTTP/1.1 client for integration tests of the
 * REST API: one request per connection (Connection: close) to 127.0.0.1,
 * the reply read until the server closes. Failures fail the running cmocka
 * test. Raw requests let a test send what a polite client would not.
 */
#ifndef CW_HTTP_CLIENT_H
#define CW_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_http_reply {
	int status;
	char *head;                   /* status line and headers */
	char *body;
	size_t body_len;
} cw_http_reply_t;

/* Frees the reply's strings and zeroes it. */
void cw_http_reply_free(cw_http_reply_t *r);

/* Sends len raw bytes to 127.0.0.1:port and reads the reply (out owned by the caller). */
void cw_http_raw(uint16_t port, const char *request, size_t len, cw_http_reply_t *out);

/* Sends METHOD path with an optional bearer token and JSON body (both may be NULL). */
void cw_http(uint16_t port, const char *method, const char *path, const char *token,
             const char *body, cw_http_reply_t *out);

#endif
