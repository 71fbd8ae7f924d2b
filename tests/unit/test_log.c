/*
 * This file contains the unit tests of core/log.c: the output is captured in
 * a temporary file (or a pseudo-terminal for the auto format), every JSON
 * line is parsed with jansson, and a planted password must never appear.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PLANTED "hunter2-planted"

typedef struct capture {
	int fd;
} capture_t;

static int capture_setup(void **state)
{
	char path[] = "/tmp/cw-test-log-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	capture_t *capture = calloc(1, sizeof *capture);
	capture->fd = fd;
	*state = capture;
	return 0;
}

static int capture_teardown(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_AUTO, 2);
	close(capture->fd);
	free(capture);
	return 0;
}

/* Everything logged into the capture so far (owned by the caller); empties the capture. */
static char *captured(capture_t *capture)
{
	off_t size = lseek(capture->fd, 0, SEEK_END);
	assert_true(size >= 0);
	char *text = calloc(1, (size_t)size + 1);
	assert_int_equal(pread(capture->fd, text, (size_t)size, 0), size);
	assert_int_equal(ftruncate(capture->fd, 0), 0);
	assert_int_equal(lseek(capture->fd, 0, SEEK_SET), 0);
	return text;
}

static size_t count_lines(const char *text)
{
	size_t lines = 0;
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	return lines;
}

static bool matches(const char *pattern, const char *text)
{
	regex_t regex;
	assert_int_equal(regcomp(&regex, pattern, REG_EXTENDED | REG_NOSUB), 0);
	bool matched = regexec(&regex, text, 0, NULL, 0) == 0;
	regfree(&regex);
	return matched;
}

/* Parses the n-th line (0-based) of text as a JSON object; fails the test otherwise. */
static json_t *json_line(const char *text, size_t n)
{
	const char *line = text;
	for (size_t i = 0; i < n; i++) {
		line = strchr(line, '\n');
		assert_non_null(line);
		line++;
	}
	const char *end = strchr(line, '\n');
	assert_non_null(end);
	json_error_t error;
	json_t *object = json_loadb(line, (size_t)(end - line), 0, &error);
	if (object == NULL)
		fail_msg("line %zu is not JSON (%s): %.*s", n, error.text, (int)(end - line), line);
	assert_true(json_is_object(object));
	return object;
}

static const char *field(json_t *object, const char *key)
{
	json_t *value = json_object_get(object, key);
	if (!json_is_string(value))
		fail_msg("field \"%s\" missing or not a string", key);
	return json_string_value(value);
}

static void test_json_line_has_fields(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_DEBUG, CW_LOG_FORMAT_JSON, capture->fd);
	cw_log_kv(CW_LOG_INFO, "hub", "connected", "entity", "products", "count", "3", NULL);
	char *text = captured(capture);
	assert_int_equal(count_lines(text), 1);
	assert_true(matches("^\\{\"ts\":\"[^\"]*\",\"level\":\"info\",\"component\":\"hub\","
		"\"msg\":\"connected\",", text));
	json_t *line = json_line(text, 0);
	assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
		field(line, "ts")));
	assert_string_equal(field(line, "level"), "info");
	assert_string_equal(field(line, "component"), "hub");
	assert_string_equal(field(line, "msg"), "connected");
	assert_string_equal(field(line, "entity"), "products");
	assert_string_equal(field(line, "count"), "3");
	assert_int_equal(json_object_size(line), 6);
	json_decref(line);
	free(text);
}

static void test_json_timestamp_is_now(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, capture->fd);
	/* Not time(2): glibc reads a coarse clock there that may lag CLOCK_REALTIME. */
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	cw_log_info("hub", "tick");
	clock_gettime(CLOCK_REALTIME, &after);
	char *text = captured(capture);
	json_t *line = json_line(text, 0);
	struct tm tm = {0};
	const char *rest = strptime(field(line, "ts"), "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(rest);
	time_t logged = timegm(&tm);
	assert_true(logged >= before.tv_sec && logged <= after.tv_sec);
	json_decref(line);
	free(text);
}

static void test_json_escaping(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, capture->fd);
	const char *tricky = "quote \" backslash \\ newline \n tab \t bell \x01 del \x7f caf\xc3\xa9";
	cw_log_kv(CW_LOG_INFO, "ap\"i", tricky, "we\"ird\nkey", tricky, "absent", NULL, NULL);
	cw_log_info("hub", "bad utf-8 \xff\xc3 and overlong \xc0\xaf and surrogate \xed\xa0\x80 end");
	char *text = captured(capture);
	assert_int_equal(count_lines(text), 2);
	json_t *line = json_line(text, 0);
	assert_string_equal(field(line, "msg"), tricky);
	assert_string_equal(field(line, "component"), "ap\"i");
	assert_string_equal(field(line, "we\"ird\nkey"), tricky);
	assert_true(json_is_null(json_object_get(line, "absent")));
	json_decref(line);
	line = json_line(text, 1);
	assert_string_equal(field(line, "msg"), "bad utf-8 \xef\xbf\xbd\xef\xbf\xbd and overlong "
		"\xef\xbf\xbd\xef\xbf\xbd and surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
	json_decref(line);
	free(text);
}

static void test_printf_message(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, capture->fd);
	char long_name[3000];
	memset(long_name, 'x', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	cw_log_warn("apply", "batch %d of \"%s\"", 3, "products");
	cw_log_error("apply", "%s", long_name);
	char *text = captured(capture);
	json_t *line = json_line(text, 0);
	assert_string_equal(field(line, "msg"), "batch 3 of \"products\"");
	assert_string_equal(field(line, "level"), "warn");
	json_decref(line);
	line = json_line(text, 1);
	assert_string_equal(field(line, "msg"), long_name);
	assert_string_equal(field(line, "level"), "error");
	json_decref(line);
	free(text);
}

static void test_level_filter(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_WARN, CW_LOG_FORMAT_JSON, capture->fd);
	cw_log_debug("hub", "d");
	cw_log_info("hub", "i");
	cw_log_kv(CW_LOG_INFO, "hub", "i2", "k", "v", NULL);
	cw_log_warn("hub", "w");
	cw_log_kv(CW_LOG_ERROR, "hub", "e", NULL);
	char *text = captured(capture);
	assert_int_equal(count_lines(text), 2);
	json_t *line = json_line(text, 0);
	assert_string_equal(field(line, "level"), "warn");
	assert_string_equal(field(line, "msg"), "w");
	json_decref(line);
	line = json_line(text, 1);
	assert_string_equal(field(line, "level"), "error");
	json_decref(line);
	free(text);

	cw_log_setup(CW_LOG_DEBUG, CW_LOG_FORMAT_JSON, capture->fd);
	cw_log_debug("hub", "d");
	text = captured(capture);
	line = json_line(text, 0);
	assert_string_equal(field(line, "level"), "debug");
	json_decref(line);
	free(text);
}

static void test_text_format(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_DEBUG, CW_LOG_FORMAT_TEXT, capture->fd);
	cw_log_kv(CW_LOG_INFO, "hub", "connected", "entity", "products", "note", "two words",
		"empty", "", NULL);
	cw_log_error("apply", "line one\nline two");
	cw_log_debug("x", "d");
	cw_log_warn("x", "w");
	char *text = captured(capture);
	assert_int_equal(count_lines(text), 4);
	const char *time_re = "[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}";
	char pattern[512];
	snprintf(pattern, sizeof pattern, "^%s INFO  hub: connected entity=products "
		"note=\"two words\" empty=\"\"\n%s ERROR apply: line one\\\\nline two\n"
		"%s DEBUG x: d\n%s WARN  x: w\n$", time_re, time_re, time_re, time_re);
	if (!matches(pattern, text))
		fail_msg("unexpected text output:\n%s", text);
	free(text);
}

static void test_auto_picks_json_for_a_file(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_AUTO, capture->fd);
	cw_log_info("hub", "to a file");
	char *text = captured(capture);
	json_t *line = json_line(text, 0);
	assert_string_equal(field(line, "msg"), "to a file");
	json_decref(line);
	free(text);
}

/* Reads from fd until a newline arrives or five seconds pass. */
static void read_line_with_deadline(int fd, char *out, size_t size)
{
	size_t len = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	out[0] = '\0';
	while (strchr(out, '\n') == NULL && len + 1 < size) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long waited_ms = (now.tv_sec - start.tv_sec) * 1000 +
			(now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited_ms > 5000)
			fail_msg("no line on the terminal after 5s, got \"%s\"", out);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		ssize_t got = read(fd, out + len, size - 1 - len);
		assert_true(got > 0);
		len += (size_t)got;
		out[len] = '\0';
	}
}

static void test_auto_picks_text_for_a_terminal(void **state)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0)
		skip();
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	int terminal = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(terminal >= 0);
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_AUTO, terminal);
	cw_log_info("hub", "on a terminal");
	char line[1024];
	read_line_with_deadline(master, line, sizeof line);
	if (!matches("^[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} INFO  hub: on a terminal\r?\n$", line))
		fail_msg("not a text line: \"%s\"", line);
	close(terminal);
	close(master);
}

static void log_planted_secrets(void)
{
	const char *url = "postgresql://replicator:" PLANTED "@db.internal:5432/app";
	const char *mongo = "mongodb://admin:" PLANTED "@m1:27017,m2:27017/shop";
	const char *conninfo = "host=db.internal password=" PLANTED " dbname=app";
	const char *quoted = "host=db.internal password='" PLANTED " x' dbname=app";
	const char *query = "https://api.internal/v1?token=" PLANTED "&x=1";
	cw_log_error("capture", "could not connect to \"%s\": refused", url);
	cw_log_error("capture", "could not connect with \"%s\" or %s", conninfo, mongo);
	cw_log_kv(CW_LOG_WARN, "hub", "retrying", "url", url, "conninfo", conninfo,
		"quoted", quoted, "mongo", mongo, "query", query, NULL);
	cw_log_kv(CW_LOG_INFO, "hub", url, "both", "from postgres://u:" PLANTED "@a to "
		"mongodb+srv://v:" PLANTED "@b", NULL);
}

static void test_passwords_never_logged(void **state)
{
	capture_t *capture = *state;
	const cw_log_format_t formats[] = {CW_LOG_FORMAT_JSON, CW_LOG_FORMAT_TEXT};
	for (size_t i = 0; i < 2; i++) {
		cw_log_setup(CW_LOG_DEBUG, formats[i], capture->fd);
		log_planted_secrets();
		char *text = captured(capture);
		assert_int_equal(count_lines(text), 4);
		if (strstr(text, PLANTED) != NULL || strstr(text, "hunter2") != NULL)
			fail_msg("the planted password leaked:\n%s", text);
		assert_non_null(strstr(text, "replicator:****@db.internal:5432/app"));
		assert_non_null(strstr(text, "password=**** dbname=app"));
		assert_non_null(strstr(text, "token=****&x=1"));
		if (formats[i] == CW_LOG_FORMAT_JSON) {
			for (size_t n = 0; n < 4; n++)
				json_decref(json_line(text, n));
		}
		free(text);
	}
}

static void test_secret_named_fields_masked(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, capture->fd);
	cw_log_kv(CW_LOG_INFO, "api", "configured", "api_token", "hunter2", "Password", "hunter2",
	          "user", "alice", NULL);
	char *text = captured(capture);
	if (strstr(text, "hunter2") != NULL)
		fail_msg("a secret-named field leaked:\n%s", text);
	assert_non_null(strstr(text, "\"api_token\":\"****\""));
	assert_non_null(strstr(text, "\"Password\":\"****\""));
	assert_non_null(strstr(text, "\"user\":\"alice\""));
	free(text);
}

static void test_errno_preserved(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, -1);  /* every write fails with EBADF */
	errno = ENOSPC;
	cw_log_error("hub", "disk full");
	assert_int_equal(errno, ENOSPC);
	cw_log_kv(CW_LOG_ERROR, "hub", "disk full", "k", "v", NULL);
	assert_int_equal(errno, ENOSPC);
	(void)capture;
}

static void test_parse_and_names(void **state)
{
	cw_log_level_t level = CW_LOG_ERROR;
	assert_int_equal(cw_log_level_parse("debug", &level), 0);
	assert_int_equal(level, CW_LOG_DEBUG);
	assert_int_equal(cw_log_level_parse("INFO", &level), 0);
	assert_int_equal(level, CW_LOG_INFO);
	assert_int_equal(cw_log_level_parse("warning", &level), 0);
	assert_int_equal(level, CW_LOG_WARN);
	assert_int_equal(cw_log_level_parse("error", &level), 0);
	assert_int_equal(level, CW_LOG_ERROR);
	assert_int_equal(cw_log_level_parse("loud", &level), -1);
	assert_int_equal(cw_log_level_parse("", &level), -1);

	cw_log_format_t format = CW_LOG_FORMAT_AUTO;
	assert_int_equal(cw_log_format_parse("json", &format), 0);
	assert_int_equal(format, CW_LOG_FORMAT_JSON);
	assert_int_equal(cw_log_format_parse("text", &format), 0);
	assert_int_equal(format, CW_LOG_FORMAT_TEXT);
	assert_int_equal(cw_log_format_parse("Auto", &format), 0);
	assert_int_equal(format, CW_LOG_FORMAT_AUTO);
	assert_int_equal(cw_log_format_parse("xml", &format), -1);

	assert_string_equal(cw_log_level_name(CW_LOG_DEBUG), "debug");
	assert_string_equal(cw_log_level_name(CW_LOG_INFO), "info");
	assert_string_equal(cw_log_level_name(CW_LOG_WARN), "warn");
	assert_string_equal(cw_log_level_name(CW_LOG_ERROR), "error");
	assert_string_equal(cw_log_level_name((cw_log_level_t)42), "unknown");
}

#define WRITER_THREADS 4
#define LINES_PER_WRITER 2000

static void *write_lines(void *arg)
{
	const char *component = arg;
	for (int i = 0; i < LINES_PER_WRITER; i++)
		cw_log_kv(CW_LOG_INFO, component, "a line long enough to be torn if it were "
			"written in pieces", "padding", "0123456789abcdef0123456789abcdef", NULL);
	return NULL;
}

static void test_concurrent_lines_do_not_interleave(void **state)
{
	capture_t *capture = *state;
	cw_log_setup(CW_LOG_INFO, CW_LOG_FORMAT_JSON, capture->fd);
	pthread_t threads[WRITER_THREADS];
	static const char *const names[WRITER_THREADS] = {"t0", "t1", "t2", "t3"};
	for (int i = 0; i < WRITER_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, write_lines, (void *)names[i]), 0);
	for (int i = 0; i < WRITER_THREADS; i++)
		pthread_join(threads[i], NULL);
	char *text = captured(capture);
	assert_int_equal(count_lines(text), WRITER_THREADS * LINES_PER_WRITER);
	json_error_t error;
	for (char *line = text, *end; (end = strchr(line, '\n')) != NULL; line = end + 1) {
		json_t *object = json_loadb(line, (size_t)(end - line), 0, &error);
		if (object == NULL)
			fail_msg("torn line: %.*s", (int)(end - line), line);
		json_decref(object);
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json_line_has_fields, capture_setup, capture_teardown),
		cmocka_unit_test_setup_teardown(test_json_timestamp_is_now, capture_setup, capture_teardown),
		cmocka_unit_test_setup_teardown(test_json_escaping, capture_setup, capture_teardown),
		cmocka_unit_test_setup_teardown(test_printf_message, capture_setup, capture_teardown),
		cmocka_unit_test_setup_teardown(test_level_filter, capture_setup, capture_teardown),
		cmocka_unit_test_setup_teardown(test_text_format, capture_setup, capture_teardown),
		cmocka_unit_test_setup_teardown(test_auto_picks_json_for_a_file, capture_setup,
			capture_teardown),
		cmocka_unit_test_setup_teardown(test_auto_picks_text_for_a_terminal, capture_setup,
			capture_teardown),
		cmocka_unit_test_setup_teardown(test_passwords_never_logged, capture_setup,
			capture_teardown),
		cmocka_unit_test_setup_teardown(test_secret_named_fields_masked, capture_setup,
		                                capture_teardown),
		cmocka_unit_test_setup_teardown(test_errno_preserved, capture_setup, capture_teardown),
		cmocka_unit_test(test_parse_and_names),
		cmocka_unit_test_setup_teardown(test_concurrent_lines_do_not_interleave, capture_setup,
			capture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
