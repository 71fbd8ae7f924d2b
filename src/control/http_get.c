/* This file contains the HTTP GET client declared in http_get.h. */
#include "control/http_get.h"

#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DOMAIN "http"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; 0, or CW_ETIMEDOUT / CW_EIO. */
static int wait_fd(int fd, short events, long long deadline, const char *address, cw_err_t *err)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return cw_err_set(err, CW_ETIMEDOUT, DOMAIN, "no answer from %s in time", address);
		struct pollfd p = {fd, events, 0};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return cw_err_set(err, CW_EIO, DOMAIN, "could not reach %s: %s", address, strerror(errno));
	}
}

/* Connects a non-blocking socket to address before deadline; the fd or -1 with err filled. */
static int connect_to(const char *address, long long deadline, cw_err_t *err)
{
	const char *colon = strrchr(address, ':');
	if (colon == NULL || colon == address || colon[1] == '\0') {
		cw_err_set(err, CW_EINVAL, DOMAIN, "address \"%s\" is not HOST:PORT", address);
		return -1;
	}
	char *host = cw_xstrndup(address, (size_t)(colon - address));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {   /* [::1]:8080 */
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
	}
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, colon + 1, &hints, &res);
	free(host);
	if (gai != 0) {
		cw_err_set(err, CW_EIO, DOMAIN, "could not resolve %s: %s", address, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline, address, err) == 0) {
			int so_error = 0;
			socklen_t len = sizeof so_error;
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
			errno = so_error;
			rc = so_error == 0 ? 0 : -1;
		}
		if (rc != 0) {
			cw_err_set(err, CW_EIO, DOMAIN, "could not reach %s: %s", address, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

static int send_all(int fd, const char *data, size_t len, long long deadline, const char *address,
                    cw_err_t *err)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = wait_fd(fd, POLLOUT, deadline, address, err);
			if (rc != 0)
				return rc;
		} else {
			return cw_err_set(err, CW_EIO, DOMAIN, "could not send to %s: %s", address,
			                  strerror(errno));
		}
	}
	return 0;
}

/* Splits the raw response into status and body. */
static int parse_response(const cw_buf_t *raw, const char *address, int *status, cw_buf_t *body,
                          cw_err_t *err)
{
	const char *text = cw_buf_cstr(raw);
	int code = 0;
	if (sscanf(text, "HTTP/%*d.%*d %d", &code) != 1 || code < 100 || code > 599)
		return cw_err_set(err, CW_EPROTO, DOMAIN, "%s did not answer with HTTP", address);
	const char *end = strstr(text, "\r\n\r\n");
	if (end == NULL)
		return cw_err_set(err, CW_EPROTO, DOMAIN, "%s sent an incomplete answer", address);
	end += 4;
	cw_buf_append(body, end, raw->len - (size_t)(end - text));
	*status = code;
	return 0;
}

int cw_http_get(const char *address, const char *path, const char *token, int timeout_ms,
                int *status, cw_buf_t *body, cw_err_t *err)
{
	long long deadline = now_ms() + timeout_ms;
	int fd = connect_to(address, deadline, err);
	if (fd < 0)
		return err ? err->code : CW_EIO;
	cw_buf_t request = CW_BUF_INIT;
	cw_buf_appendf(&request, "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n", path,
	               address);
	if (token != NULL)
		cw_buf_appendf(&request, "Authorization: Bearer %s\r\n", token);
	cw_buf_append_str(&request, "Connection: close\r\n\r\n");
	int rc = send_all(fd, request.data, request.len, deadline, address, err);
	cw_buf_free(&request);
	cw_buf_t raw = CW_BUF_INIT;
	while (rc == 0) {
		char chunk[8192];
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n > 0) {
			if (raw.len + (size_t)n > CW_HTTP_GET_MAX_BODY + 32768)
				rc = cw_err_set(err, CW_EPROTO, DOMAIN, "answer from %s is too large", address);
			else
				cw_buf_append(&raw, chunk, (size_t)n);
		} else if (n == 0) {
			break;
		} else if (errno == EAGAIN || errno == EINTR) {
			rc = wait_fd(fd, POLLIN, deadline, address, err);
		} else {
			rc = cw_err_set(err, CW_EIO, DOMAIN, "could not read from %s: %s", address,
			                strerror(errno));
		}
	}
	close(fd);
	if (rc == 0)
		rc = parse_response(&raw, address, status, body, err);
	cw_buf_free(&raw);
	return rc;
}
