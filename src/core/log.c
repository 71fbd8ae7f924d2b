/*
 * This file contains the logger declared in log.h.
 *
 * The configuration below is cachewarp's one mutable global, a documented
 * exception: cw_log_setup writes it once, before any thread starts, and
 * from then on it is only read, so it needs no lock. Each line is built in
 * memory and handed to one write(2) (repeated only for the remainder of a
 * short write), so concurrent lines do not interleave.
 *
 * Every message and field value goes through cw_secret_mask. Output is
 * always valid UTF-8: a byte that does not start a well-formed sequence is
 * written as U+FFFD, so every JSON line parses.
 */
#include "core/log.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"
#include "core/secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static struct {
	cw_log_level_t level;
	cw_log_format_t format;   /* AUTO only until cw_log_setup resolves it */
	int fd;
} logger = {CW_LOG_INFO, CW_LOG_FORMAT_AUTO, 2};

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

static const char replacement_char[] = "\xef\xbf\xbd";  /* U+FFFD */

static cw_log_format_t resolve_format(cw_log_format_t format, int fd)
{
	if (format != CW_LOG_FORMAT_AUTO)
		return format;
	return isatty(fd) ? CW_LOG_FORMAT_TEXT : CW_LOG_FORMAT_JSON;
}

void cw_log_setup(cw_log_level_t level, cw_log_format_t format, int fd)
{
	__atomic_store_n(&logger.level, level, __ATOMIC_RELAXED);
	logger.fd = fd;
	logger.format = resolve_format(format, fd);
}

int cw_log_level_parse(const char *name, cw_log_level_t *level)
{
	for (int i = CW_LOG_DEBUG; i <= CW_LOG_ERROR; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*level = (cw_log_level_t)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*level = CW_LOG_WARN;
		return 0;
	}
	return -1;
}

int cw_log_format_parse(const char *name, cw_log_format_t *format)
{
	static const char *const names[] = {"auto", "json", "text"};
	for (int i = CW_LOG_FORMAT_AUTO; i <= CW_LOG_FORMAT_TEXT; i++) {
		if (strcasecmp(name, names[i]) == 0) {
			*format = (cw_log_format_t)i;
			return 0;
		}
	}
	return -1;
}

const char *cw_log_level_name(cw_log_level_t level)
{
	if ((int)level < CW_LOG_DEBUG || level > CW_LOG_ERROR)
		return "unknown";
	return level_names[level];
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_sequence_len(const unsigned char *s)
{
	size_t len;
	uint32_t code_point;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		code_point = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		code_point = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		code_point = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;  /* also stops at the terminating NUL */
		code_point = (code_point << 6) | (s[i] & 0x3f);
	}
	if (len == 3 && (code_point < 0x800 || (code_point >= 0xd800 && code_point <= 0xdfff)))
		return 0;
	if (len == 4 && (code_point < 0x10000 || code_point > 0x10ffff))
		return 0;
	return len;
}

/*
 * Appends text with control characters escaped JSON-style; with json also
 * escapes '"' and '\\' so the result fits between JSON quotes.
 */
static void append_escaped(cw_buf_t *out, const char *text, bool json)
{
	const unsigned char *p = (const unsigned char *)text;
	while (*p != '\0') {
		size_t len = utf8_sequence_len(p);
		if (len == 0) {
			cw_buf_append_str(out, replacement_char);
			p++;
		} else if (*p == '\n') {
			cw_buf_append_str(out, "\\n");
			p++;
		} else if (*p == '\r') {
			cw_buf_append_str(out, "\\r");
			p++;
		} else if (*p == '\t') {
			cw_buf_append_str(out, "\\t");
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			cw_buf_appendf(out, "\\u%04x", *p);
			p++;
		} else if (json && (*p == '"' || *p == '\\')) {
			cw_buf_append_char(out, '\\');
			cw_buf_append_char(out, (char)*p);
			p++;
		} else {
			cw_buf_append(out, p, len);
			p += len;
		}
	}
}

static void append_json_string(cw_buf_t *out, const char *text)
{
	cw_buf_append_char(out, '"');
	append_escaped(out, text, true);
	cw_buf_append_char(out, '"');
}

/* A text-format value is quoted when it is empty or holds blanks, quotes, '=' or controls. */
static void append_text_value(cw_buf_t *out, const char *value)
{
	bool quote = value[0] == '\0';
	for (const unsigned char *p = (const unsigned char *)value; *p && !quote; p++)
		quote = *p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f;
	if (quote)
		append_json_string(out, value);
	else
		append_escaped(out, value, false);
}

/* A field whose name says it holds a secret is never printed, whatever its value looks like. */
static bool secret_key(const char *key)
{
	static const char *const words[] = {"password", "passwd", "secret", "token"};
	char lower[64];
	size_t n = 0;
	for (; key[n] != '\0' && n < sizeof lower - 1; n++)
		lower[n] = (char)tolower((unsigned char)key[n]);
	lower[n] = '\0';
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strstr(lower, words[i]) != NULL)
			return true;
	return false;
}

static void append_field(cw_buf_t *out, cw_log_format_t format, const char *key,
	const char *value)
{
	char *masked = value == NULL ? NULL : secret_key(key) ? cw_xstrdup("****")
	                                                      : cw_secret_mask(value);
	if (format == CW_LOG_FORMAT_TEXT) {
		cw_buf_append_char(out, ' ');
		append_escaped(out, key, false);
		cw_buf_append_char(out, '=');
		append_text_value(out, masked ? masked : "null");
	} else {
		cw_buf_append_char(out, ',');
		append_json_string(out, key);
		cw_buf_append_char(out, ':');
		if (masked)
			append_json_string(out, masked);
		else
			cw_buf_append_str(out, "null");
	}
	free(masked);
}

static void write_line(int fd, const char *line, size_t len)
{
	while (len > 0) {
		ssize_t written = write(fd, line, len);
		if (written < 0) {
			if (errno == EINTR)
				continue;
			return;  /* nowhere left to report a failing log */
		}
		line += written;
		len -= (size_t)written;
	}
}

/* Builds and writes one line; fields, when not NULL, holds (key, value) pairs ending in NULL. */
static void emit(cw_log_level_t level, const char *component, const char *msg, va_list *fields)
{
	cw_log_format_t format = resolve_format(logger.format, logger.fd);
	char ts[CW_TIME_RFC3339_LEN];
	cw_time_format_rfc3339_ms(cw_clock_wall_us(cw_clock_system()), ts);
	char *masked_msg = cw_secret_mask(msg);
	const char *name = component ? component : "cachewarp";
	int level_index = (int)level < CW_LOG_DEBUG || level > CW_LOG_ERROR ? CW_LOG_ERROR : (int)level;
	cw_buf_t line = CW_BUF_INIT;

	if (format == CW_LOG_FORMAT_TEXT) {
		/* "2026-11-22T10:00:00.123Z" -> "10:00:00.123" */
		cw_buf_appendf(&line, "%.12s %s ", ts + 11, level_labels[level_index]);
		append_escaped(&line, name, false);
		cw_buf_append_str(&line, ": ");
		append_escaped(&line, masked_msg, false);
	} else {
		cw_buf_appendf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
			level_names[level_index]);
		append_json_string(&line, name);
		cw_buf_append_str(&line, ",\"msg\":");
		append_json_string(&line, masked_msg);
	}
	const char *key;
	while (fields != NULL && (key = va_arg(*fields, const char *)) != NULL) {
		const char *value = va_arg(*fields, const char *);
		append_field(&line, format, key, value);
	}
	if (format != CW_LOG_FORMAT_TEXT)
		cw_buf_append_char(&line, '}');
	cw_buf_append_char(&line, '\n');
	write_line(logger.fd, line.data, line.len);
	cw_buf_free(&line);
	free(masked_msg);
}

void cw_log(cw_log_level_t level, const char *component, const char *fmt, ...)
{
	if (level < __atomic_load_n(&logger.level, __ATOMIC_RELAXED))
		return;
	int saved_errno = errno;
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *msg;
	if (len < 0) {
		msg = cw_xstrdup(fmt);
	} else {
		msg = cw_xmalloc((size_t)len + 1);
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)len + 1, fmt, ap);
		va_end(ap);
	}
	emit(level, component, msg, NULL);
	free(msg);
	errno = saved_errno;
}

void cw_log_kv(cw_log_level_t level, const char *component, const char *msg, ...)
{
	if (level < __atomic_load_n(&logger.level, __ATOMIC_RELAXED))
		return;
	int saved_errno = errno;
	va_list fields;
	va_start(fields, msg);
	emit(level, component, msg ? msg : "", &fields);
	va_end(fields);
	errno = saved_errno;
}

void cw_log_set_level(cw_log_level_t level)
{
	__atomic_store_n(&logger.level, level, __ATOMIC_RELAXED);
}
