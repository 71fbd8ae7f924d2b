/*
 * This file contains the logger: one JSON object per line (ts RFC 3339 with
 * milliseconds, level, component, msg, extra fields) or readable text when
 * stderr is a terminal. Every message and field value passes through
 * cw_secret_mask (core/secret.h) before it is written, so a password inside a
 * URL or conninfo never reaches a log line.
 *
 * THREAD SAFETY: cw_log_setup is called once by main before any thread
 * starts (cw_log_set_level may change the level later); the logger is the
 * one process-wide object in cachewarp. Logging
 * functions may be called from any thread; each line is written with one
 * write(2) so lines never interleave.
 */
#ifndef CW_CORE_LOG_H
#define CW_CORE_LOG_H

#include <stdio.h>

typedef enum cw_log_level {
	CW_LOG_DEBUG = 0,
	CW_LOG_INFO,
	CW_LOG_WARN,
	CW_LOG_ERROR,
} cw_log_level_t;

typedef enum cw_log_format {
	CW_LOG_FORMAT_AUTO = 0, /* text when the output is a terminal, JSON otherwise */
	CW_LOG_FORMAT_JSON,
	CW_LOG_FORMAT_TEXT,
} cw_log_format_t;

/* Output goes to fd (2 by default). Defaults: info, auto. */
void cw_log_setup(cw_log_level_t level, cw_log_format_t format, int fd);

/* Changes the level from any thread, while others log (a configuration reload). */
void cw_log_set_level(cw_log_level_t level);

int cw_log_level_parse(const char *name, cw_log_level_t *level);     /* 0 or -1 */
int cw_log_format_parse(const char *name, cw_log_format_t *format);  /* 0 or -1 */
const char *cw_log_level_name(cw_log_level_t level);

/* A message, printf style. */
void cw_log(cw_log_level_t level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A message with fields: after msg come pairs of (const char *key,
 * const char *value) ended by a NULL key. Values are written as JSON strings.
 *   cw_log_kv(CW_LOG_INFO, "hub", "connected", "url", url, NULL);
 */
void cw_log_kv(cw_log_level_t level, const char *component, const char *msg, ...);

#define cw_log_debug(component, ...) cw_log(CW_LOG_DEBUG, component, __VA_ARGS__)
#define cw_log_info(component, ...) cw_log(CW_LOG_INFO, component, __VA_ARGS__)
#define cw_log_warn(component, ...) cw_log(CW_LOG_WARN, component, __VA_ARGS__)
#define cw_log_error(component, ...) cw_log(CW_LOG_ERROR, component, __VA_ARGS__)

#endif
