/* This file contains the test HTTP client declared in http_client.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_client.h"

#include "core/buf.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

void cw_http_reply_free(cw_http_reply_t *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* Sends raw bytes to 127.0.0.1:port and reads the reply until the server closes. */
void cw_http_raw(uint16_t port, const char *request, size_t len, cw_http_reply_t *out)
{
	memset(out, 0, sizeof *out);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval timeout = {.tv_sec = 120};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	size_t sent = 0;
	while (sent < len) {
		ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break;   /* the server may answer and close before reading everything */
		sent += (size_t)n;
	}
	cw_buf_t in = CW_BUF_INIT;
	char chunk[8192];
	ssize_t n;
	while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0)
		cw_buf_append(&in, chunk, (size_t)n);
	close(fd);
	const char *text = cw_buf_cstr(&in);
	const char *split = strstr(text, "\r\n\r\n");
	if (split == NULL)
		fail_msg("no HTTP reply: \"%s\"", text);
	assert_int_equal(sscanf(text, "HTTP/1.%*d %d", &out->status), 1);
	out->head = cw_xstrndup(text, (size_t)(split - text));
	out->body_len = in.len - (size_t)(split + 4 - text);
	out->body = cw_xstrndup(split + 4, out->body_len);
	cw_buf_free(&in);
}

void cw_http(uint16_t port, const char *method, const char *path, const char *token,
                 const char *body, cw_http_reply_t *out)
{
	cw_buf_t req = CW_BUF_INIT;
	cw_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
	               method, path);
	if (token != NULL)
		cw_buf_appendf(&req, "Authorization: Bearer %s\r\n", token);
	if (body != NULL)
		cw_buf_appendf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
		               strlen(body));
	cw_buf_appendf(&req, "\r\n%s", body ? body : "");
	cw_http_raw(port, req.data, req.len, out);
	cw_buf_free(&req);
}

