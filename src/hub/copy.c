/* This file contains the COPY text-format encoder declared in copy.h. */
#include "hub/copy.h"

#include <string.h>
#include <time.h>

void cw_copy_append_value(cw_buf_t *buf, const char *value)
{
	if (value == NULL) {
		cw_buf_append(buf, "\\N", 2);
		return;
	}
	for (;;) {
		size_t run = strcspn(value, "\\\t\n\r");
		cw_buf_append(buf, value, run);
		value += run;
		const char *escape;
		switch (*value) {
		case '\\': escape = "\\\\"; break;
		case '\t': escape = "\\t"; break;
		case '\n': escape = "\\n"; break;
		case '\r': escape = "\\r"; break;
		default: return;   /* the terminating NUL */
		}
		cw_buf_append(buf, escape, 2);
		value++;
	}
}

void cw_copy_append_sep(cw_buf_t *buf)
{
	cw_buf_append_char(buf, '\t');
}

void cw_copy_end_row(cw_buf_t *buf)
{
	cw_buf_append_char(buf, '\n');
}

void cw_copy_append_timestamp(cw_buf_t *buf, int64_t unix_us)
{
	int64_t seconds = unix_us / 1000000;
	int64_t micros = unix_us % 1000000;
	if (micros < 0) {
		micros += 1000000;
		seconds -= 1;
	}
	time_t t = (time_t)seconds;
	struct tm tm;
	gmtime_r(&t, &tm);
	char text[64];
	size_t len = strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
	text[len] = '\0';
	cw_buf_appendf(buf, "%s.%06lld+00", text, (long long)micros);
}
