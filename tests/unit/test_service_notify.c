/* Unit tests of the service manager notifications (control/service_notify.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/service_notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A datagram socket bound to name (a path, or "@abstract"); the fd. */
static int listen_on(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un addr;
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	size_t len = strlen(name);
	memcpy(addr.sun_path, name, len);
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&addr,
	                      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

static void expect_message(int fd, const char *want)
{
	char got[256];
	ssize_t n = recv(fd, got, sizeof got - 1, MSG_DONTWAIT);
	assert_true(n >= 0);
	got[n] = '\0';
	assert_string_equal(got, want);
}

static void ready_reaches_a_path_socket_and_an_abstract_one(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof path, "/tmp/cw-notify-%d.sock", (int)getpid());
	unlink(path);
	int fd = listen_on(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(cw_service_notify("READY=1\nSTATUS=running"), 0);
	expect_message(fd, "READY=1\nSTATUS=running");
	close(fd);
	unlink(path);

	char abstract[64];
	snprintf(abstract, sizeof abstract, "@cw-notify-%d", (int)getpid());
	fd = listen_on(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	assert_int_equal(cw_service_notify("STOPPING=1"), 0);
	expect_message(fd, "STOPPING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void without_a_service_manager_nothing_is_sent(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(cw_service_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(cw_service_notify("READY=1"), -1);
	setenv("NOTIFY_SOCKET", "/nonexistent/cw-notify.sock", 1);
	assert_int_equal(cw_service_notify("READY=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ready_reaches_a_path_socket_and_an_abstract_one),
		cmocka_unit_test(without_a_service_manager_nothing_is_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
