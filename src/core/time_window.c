/* This file contains a daily time window (time_window.h). */
#include "core/time_window.h"

#include <ctype.h>
#include <string.h>

/* "HH:MM" at text (exactly five characters) into minutes; -1 when malformed. */
static int clock_minutes(const char *text)
{
	if (!isdigit((unsigned char)text[0]) || !isdigit((unsigned char)text[1]) || text[2] != ':' ||
	    !isdigit((unsigned char)text[3]) || !isdigit((unsigned char)text[4]))
		return -1;
	int hours = (text[0] - '0') * 10 + (text[1] - '0');
	int minutes = (text[3] - '0') * 10 + (text[4] - '0');
	if (hours > 23 || minutes > 59)
		return -1;
	return hours * 60 + minutes;
}

int cw_time_window_parse(const char *text, int *start, int *end, cw_err_t *err)
{
	if (strlen(text) != 11 || text[5] != '-' || (*start = clock_minutes(text)) < 0 ||
	    (*end = clock_minutes(text + 6)) < 0)
		return cw_err_set(err, CW_EINVAL, "config", "\"%.40s\": expected "
		                  "HH:MM-HH:MM in 24-hour local time, e.g. 02:00-05:00", text);
	return 0;
}

bool cw_time_window_contains(int start, int end, int minute)
{
	if (start == end)
		return true;
	if (start < end)
		return minute >= start && minute < end;
	return minute >= start || minute < end;
}
