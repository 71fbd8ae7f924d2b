/*
 * This file contains the C side of the test harness declared in testsrv.h:
 * it runs tests/support/pg.sh and mongo.sh (found through CW_SUPPORT_DIR,
 * else CW_SOURCE_DIR/tests/support, else next to this source file) and psql,
 * without a shell in between, and reads what they print.
 */
#include "testsrv.h"

#include "core/buf.h"
#include "core/mem.h"
#include "hub/migrations.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where Debian keeps psql itself (not the pg_wrapper script in /usr/bin). */
#define PG_DEFAULT_BINDIR "/usr/lib/postgresql/15/bin"

/*
 * In the child between fork and exec: closes every descriptor above stderr so
 * a server started by a script never holds a pipe or socket of the test open.
 */
static void close_inherited_fds(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	long open_max = sysconf(_SC_OPEN_MAX);
	if (open_max < 0 || open_max > 65536)
		open_max = 65536;
	for (int fd = 3; fd < open_max; fd++)
		close(fd);
}

/* In the child after a failed exec: only async-signal-safe calls. */
static void exec_failed(const char *program)
{
	const char *parts[] = {"testsrv: could not run \"", program, "\"\n"};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
			break;
	}
	_exit(127);
}

/*
 * Runs argv (argv[0] looked up in PATH), stderr shared with the test, and
 * collects its stdout into *out (owned by the caller, NUL-terminated).
 * Returns the exit status, or -1 when the program could not run or was
 * killed by a signal; *out is set even then.
 */
static int run_capture(char *const argv[], char **out)
{
	cw_buf_t output = CW_BUF_INIT;
	int pipe_fds[2] = {-1, -1};
	int status = 0;
	int result = -1;
	pid_t pid;

	if (pipe(pipe_fds) != 0) {
		fprintf(stderr, "testsrv: could not create a pipe for \"%s\": %s\n",
			argv[0], strerror(errno));
		goto cleanup;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "testsrv: could not fork for \"%s\": %s\n", argv[0],
			strerror(errno));
		goto cleanup;
	}
	if (pid == 0) {
		if (dup2(pipe_fds[1], STDOUT_FILENO) < 0)
			_exit(127);
		close_inherited_fds();
		execvp(argv[0], argv);
		exec_failed(argv[0]);
	}
	close(pipe_fds[1]);
	pipe_fds[1] = -1;
	for (;;) {
		char chunk[4096];
		ssize_t got = read(pipe_fds[0], chunk, sizeof chunk);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		cw_buf_append(&output, chunk, (size_t)got);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "testsrv: could not wait for \"%s\": %s\n",
				argv[0], strerror(errno));
			goto cleanup;
		}
	}
	if (WIFEXITED(status))
		result = WEXITSTATUS(status);

cleanup:
	if (pipe_fds[0] >= 0)
		close(pipe_fds[0]);
	if (pipe_fds[1] >= 0)
		close(pipe_fds[1]);
	*out = cw_buf_take(&output);
	return result;
}

/* Drops one trailing newline (and a carriage return before it). */
static void chomp(char *text)
{
	size_t len = strlen(text);
	if (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	if (len > 0 && text[len - 1] == '\r')
		text[--len] = '\0';
}

/* Full path of the support script called name (owned), or NULL. */
static char *script_path(const char *name)
{
	const char *dir = getenv("CW_SUPPORT_DIR");
	if (dir != NULL && dir[0] != '\0')
		return cw_xasprintf("%s/%s", dir, name);
	dir = getenv("CW_SOURCE_DIR");
	if (dir != NULL && dir[0] != '\0')
		return cw_xasprintf("%s/tests/support/%s", dir, name);
	/* run by hand outside ctest: CMake compiles this file by absolute path */
	const char *self = __FILE__;
	const char *slash = strrchr(self, '/');
	if (self[0] == '/' && slash != NULL)
		return cw_xasprintf("%.*s/%s", (int)(slash - self), self, name);
	fprintf(stderr, "testsrv: could not find \"%s\": set CW_SUPPORT_DIR\n", name);
	return NULL;
}

/* Runs "bash SCRIPT stop DIR"; the script ignores a directory already gone. */
static void stop_server(cw_testsrv_t *srv, const char *script_name)
{
	char *script = NULL;
	char *out = NULL;

	if (srv == NULL)
		return;
	if (srv->dir[0] != '\0') {
		script = script_path(script_name);
		if (script != NULL) {
			char *argv[] = {"bash", script, "stop", srv->dir, NULL};
			if (run_capture(argv, &out) != 0)
				fprintf(stderr, "testsrv: could not stop the server in \"%s\"\n",
					srv->dir);
		}
	}
	free(out);
	free(script);
	free(srv->url);
	srv->url = NULL;
	srv->dir[0] = '\0';
}

/*
 * After a failed start: stops whatever the script started (its tail of the
 * log is already on stderr) once it marked the directory, else removes the
 * empty directory made here.
 */
static void discard_dir(cw_testsrv_t *srv, const char *script_name)
{
	char *marker = cw_xasprintf("%s/.cw-testsrv", srv->dir);
	if (access(marker, F_OK) == 0) {
		stop_server(srv, script_name);
	} else {
		rmdir(srv->dir);
		srv->dir[0] = '\0';
	}
	free(marker);
}

/*
 * Makes a fresh directory under /tmp and runs "bash SCRIPT start --owner
 * <our pid> DIR", which prints the server's URL as its only line.
 */
static int start_server(cw_testsrv_t *srv, const char *script_name, const char *kind)
{
	char owner[32];
	char *script = NULL;
	char *out = NULL;
	int status;
	int rc = -1;

	srv->url = NULL;
	snprintf(srv->dir, sizeof srv->dir, "/tmp/cw-%s-XXXXXX", kind);
	if (mkdtemp(srv->dir) == NULL) {
		fprintf(stderr, "testsrv: could not create a directory for %s: %s\n", kind,
			strerror(errno));
		srv->dir[0] = '\0';
		goto cleanup;
	}
	script = script_path(script_name);
	if (script == NULL)
		goto cleanup;
	snprintf(owner, sizeof owner, "%ld", (long)getpid());
	char *argv[] = {"bash", script, "start", "--owner", owner, srv->dir, NULL};
	status = run_capture(argv, &out);
	chomp(out);
	if (status != 0 || out[0] == '\0' || strchr(out, '\n') != NULL) {
		fprintf(stderr, "testsrv: could not start %s in \"%s\" (%s exited %d)\n",
			kind, srv->dir, script_name, status);
		goto cleanup;
	}
	srv->url = out;
	out = NULL;
	rc = 0;

cleanup:
	if (rc != 0 && srv->dir[0] != '\0')
		discard_dir(srv, script_name);
	free(out);
	free(script);
	return rc;
}

int cw_testpg_start(cw_testsrv_t *srv)
{
	return start_server(srv, "pg.sh", "pg");
}

void cw_testpg_stop(cw_testsrv_t *srv)
{
	stop_server(srv, "pg.sh");
}

int cw_testmongo_start(cw_testsrv_t *srv)
{
	return start_server(srv, "mongo.sh", "mongo");
}

void cw_testmongo_stop(cw_testsrv_t *srv)
{
	stop_server(srv, "mongo.sh");
}

int cw_testferret_start(cw_testsrv_t *srv)
{
	return start_server(srv, "ferretdb.sh", "ferretdb");
}

void cw_testferret_stop(cw_testsrv_t *srv)
{
	stop_server(srv, "ferretdb.sh");
}

/* psql from CW_PG_BINDIR, else Debian's server bin dir, else PATH (owned). */
static char *psql_path(void)
{
	const char *bindir = getenv("CW_PG_BINDIR");
	if (bindir != NULL && bindir[0] != '\0')
		return cw_xasprintf("%s/psql", bindir);
	if (access(PG_DEFAULT_BINDIR "/psql", X_OK) == 0)
		return cw_xstrdup(PG_DEFAULT_BINDIR "/psql");
	return cw_xstrdup("psql");
}

char *cw_testpg_query(const char *url, const char *sql)
{
	char *psql = psql_path();
	char *out = NULL;
	char *argv[] = {psql, "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", (char *)url,
			"-c", (char *)sql, NULL};

	if (run_capture(argv, &out) != 0) {
		fprintf(stderr, "testsrv: psql failed on \"%s\"\n", sql);
		free(out);
		out = NULL;
	} else {
		chomp(out);
	}
	free(psql);
	return out;
}

int cw_testsrv_listening(const char *url)
{
	const char *host = strstr(url, "@127.0.0.1:");
	host = host != NULL ? host + 1 : strstr(url, "//127.0.0.1:");
	if (host == NULL)
		return -1;
	const char *digits = strchr(host, ':') + 1;
	char *end = NULL;
	long port = strtol(digits, &end, 10);
	if (end == digits || port <= 0 || port > 65535)
		return -1;

	struct sockaddr_in addr = {0};
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int accepted = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
	close(fd);
	return accepted;
}

int cw_testhub_start(cw_testhub_t *th, bool migrate)
{
	memset(th, 0, sizeof *th);
	if (cw_testpg_start(&th->srv) != 0)
		return -1;
	cw_err_t err = {0};
	th->hub = cw_hub_connect(th->srv.url, &err);
	if (th->hub == NULL || (migrate && cw_hub_migrate(th->hub, NULL, &err) != 0)) {
		fprintf(stderr, "hub setup: %s\n", err.message);
		cw_testhub_stop(th);
		return -1;
	}
	return 0;
}

void cw_testhub_stop(cw_testhub_t *th)
{
	cw_hub_close(th->hub);
	th->hub = NULL;
	cw_testpg_stop(&th->srv);
}

long long cw_testhub_int(cw_hub_t *hub, const char *sql)
{
	PGresult *res = PQexec(cw_hub_pgconn(hub), sql);
	long long value = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		value = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(cw_hub_pgconn(hub)));
	PQclear(res);
	return value;
}
