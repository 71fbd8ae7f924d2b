/* This file contains the Prometheus output checks declared in prom_check.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "prom_check.h"

#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Checks every histogram: le strictly increasing, counts non-decreasing, +Inf == _count. */
void cw_prom_check_histograms(const char *text)
{
	char family[128] = "", labels[256] = "";
	double last_le = -1, last_count = -1;
	int histograms = 0;
	for (const char *line = text; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char row[512];
		snprintf(row, sizeof row, "%.*s", (int)len, line);
		line = end ? end + 1 : line + len;
		char *bucket = strstr(row, "_bucket{");
		if (bucket != NULL) {
			char *le = strstr(row, "le=\"");
			assert_non_null(le);
			char name[128], rest[256];
			snprintf(name, sizeof name, "%.*s", (int)(bucket - row), row);
			snprintf(rest, sizeof rest, "%.*s", (int)(le - bucket), bucket);
			if (strcmp(name, family) != 0 || strcmp(rest, labels) != 0) {
				snprintf(family, sizeof family, "%s", name);
				snprintf(labels, sizeof labels, "%s", rest);
				last_le = -1;
				last_count = -1;
				histograms++;
			}
			double bound = strncmp(le + 4, "+Inf", 4) == 0 ? 1e308 : strtod(le + 4, NULL);
			double count = strtod(strchr(le, '}') + 1, NULL);
			assert_true(bound > last_le);
			assert_true(count >= last_count);
			last_le = bound;
			last_count = count;
		} else if (strstr(row, "_count") != NULL && family[0] != '\0' &&
		           strncmp(row, family, strlen(family)) == 0) {
			assert_true(last_le == 1e308);
			assert_true(strtod(strrchr(row, ' ') + 1, NULL) == last_count);
		}
	}
	assert_true(histograms >= 1);
}

int cw_prom_promtool_check(const char *text, size_t len)
{
	if (system("command -v promtool >/dev/null 2>&1") != 0)
		return -1;
	char file[] = "/tmp/cw-metrics-XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	char *cmd = cw_xasprintf("promtool check metrics < %s >&2", file);
	int rc = system(cmd);
	free(cmd);
	unlink(file);
	return rc == 0 ? 0 : 1;
}
