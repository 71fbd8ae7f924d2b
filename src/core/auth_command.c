/*
 * This file contains the runner of an authentication `command` (auth.h):
 * splitting it into words, spawning it without a shell (or with /bin/sh -c),
 * reading its output with a deadline, and logging its standard error with
 * the output masked.
 */
#include "core/auth.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DOMAIN "auth"
#define MAX_OUTPUT (64 * 1024)   /* tokens are a few KiB; more is not a token */

extern char **environ;

static void push_word(char ***argv, size_t *count, cw_buf_t *word)
{
	*argv = cw_xrealloc(*argv, (*count + 2) * sizeof **argv);
	(*argv)[(*count)++] = cw_buf_take(word);
	(*argv)[*count] = NULL;
}

int cw_auth_command_split(const char *command, char ***argv, cw_err_t *err)
{
	char **words = NULL;
	size_t count = 0;
	cw_buf_t word = CW_BUF_INIT;
	bool in_word = false;
	char quote = '\0';
	*argv = NULL;
	for (const char *p = command; *p; p++) {
		if (quote == '\'' && *p != '\'') {
			cw_buf_append_char(&word, *p);
		} else if (*p == '\\' && p[1] != '\0' && quote != '\'') {
			cw_buf_append_char(&word, *++p);
			in_word = true;
		} else if (*p == quote) {
			quote = '\0';
		} else if (quote == '\0' && (*p == '"' || *p == '\'')) {
			quote = *p;
			in_word = true;
		} else if (quote == '\0' && (*p == ' ' || *p == '\t' || *p == '\n')) {
			if (in_word)
				push_word(&words, &count, &word);
			in_word = false;
		} else {
			cw_buf_append_char(&word, *p);
			in_word = true;
		}
	}
	if (quote != '\0' || (!in_word && count == 0)) {
		cw_buf_free(&word);
		cw_auth_argv_free(words);
		return cw_err_set(err, CW_EINVAL, DOMAIN, quote ? "the command has an unterminated %c quote"
		                                                : "the command is empty", quote);
	}
	if (in_word)
		push_word(&words, &count, &word);
	cw_buf_free(&word);
	*argv = words;
	return 0;
}

void cw_auth_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs each line of the command's standard error, the output and url passwords masked. */
static void log_stderr(const char *id, const cw_buf_t *errors, const char *output)
{
	const char *text = cw_buf_cstr(errors);
	while (*text) {
		size_t len = strcspn(text, "\n");
		char *line = cw_xstrndup(text, len);
		size_t out_len = output ? strlen(output) : 0;
		for (char *hit; out_len > 0 && (hit = strstr(line, output)) != NULL;) {
			char *masked = cw_xasprintf("%.*s****%s", (int)(hit - line), line, hit + out_len);
			free(line);
			line = masked;
		}
		char *clean = cw_secret_mask(line);
		if (clean[0] != '\0')
			cw_log_warn(DOMAIN, "command of authentication \"%s\" says: %s", id, clean);
		free(clean);
		free(line);
		text += len + (text[len] == '\n');
	}
}

/*
 * Reads the child's stdout and stderr until both close or the deadline
 * passes. Returns 0, CW_ETIMEDOUT or CW_EIO (too much output).
 */
static int read_both(int out_fd, int err_fd, int64_t deadline, cw_buf_t *output, cw_buf_t *errors)
{
	struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
	char chunk[4096];
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return CW_ETIMEDOUT;
		int ready = poll(fds, 2, (int)(left > 1000 ? 1000 : left));
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0)
			return CW_EIO;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fds[i].fd = -1;
				continue;
			}
			cw_buf_t *into = i == 0 ? output : errors;
			if (into->len + (size_t)n > MAX_OUTPUT)
				return CW_EIO;
			cw_buf_append(into, chunk, (size_t)n);
		}
	}
	return 0;
}

/* Waits for pid until the deadline, then kills its group and reaps it: *status, -1 when killed. */
static void reap(pid_t pid, int64_t deadline, bool kill_now, int *status)
{
	while (!kill_now && now_ms() < deadline) {
		pid_t got = waitpid(pid, status, WNOHANG);
		if (got == pid || (got < 0 && errno != EINTR))
			return;
		struct timespec pause = {0, 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	*status = -1;
}

static char *trimmed(const cw_buf_t *buf)
{
	const char *text = cw_buf_cstr(buf);
	size_t start = strspn(text, " \t\r\n"), end = buf->len;
	while (end > start && strchr(" \t\r\n", text[end - 1]) != NULL)
		end--;
	return cw_xstrndup(text + start, end - start);
}

/* A pipe whose ends other spawned programs do not inherit. */
static bool private_pipe(int ends[2])
{
	if (pipe(ends) != 0)
		return false;
	fcntl(ends[0], F_SETFD, FD_CLOEXEC);
	fcntl(ends[1], F_SETFD, FD_CLOEXEC);
	return true;
}

/* Spawns argv with stdout and stderr to the pipes' write ends, stdin from /dev/null. */
static int spawn(char **argv, bool shell, int out_w, int err_w, pid_t *pid)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&actions);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out_w, 1);
	posix_spawn_file_actions_adddup2(&actions, err_w, 2);
	posix_spawnattr_setpgroup(&attr, 0);
	/* The daemon's threads block signals and it ignores SIGPIPE: the command gets neither. */
	sigset_t none, reset;
	sigemptyset(&none);
	sigemptyset(&reset);
	sigaddset(&reset, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &reset);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF);
	int rc = shell ? posix_spawn(pid, "/bin/sh", &actions, &attr, argv, environ)
	               : posix_spawnp(pid, argv[0], &actions, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&actions);
	return rc;
}

int cw_auth_command_run(const char *id, const char *command, bool shell, int64_t timeout_ms,
                        char **output, cw_err_t *err)
{
	char **argv = NULL;
	int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
	cw_buf_t out = CW_BUF_INIT, errors = CW_BUF_INIT;
	char *secret = NULL;
	pid_t pid = -1;
	int status = -1, rc;   /* -1 until reaped: killed, or reaped by someone else */
	*output = NULL;
	if (shell) {
		argv = cw_xcalloc(4, sizeof *argv);
		argv[0] = cw_xstrdup("/bin/sh");
		argv[1] = cw_xstrdup("-c");
		argv[2] = cw_xstrdup(command);
	} else if ((rc = cw_auth_command_split(command, &argv, err)) != 0) {
		goto cleanup;
	}
	if (!private_pipe(out_pipe) || !private_pipe(err_pipe)) {
		rc = cw_err_set(err, CW_EIO, DOMAIN, "could not run the command of authentication \"%s\": "
		                "%s", id, strerror(errno));
		goto cleanup;
	}
	int spawn_rc = spawn(argv, shell, out_pipe[1], err_pipe[1], &pid);
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;
	if (spawn_rc != 0) {
		pid = -1;
		rc = cw_err_set(err, CW_EAUTH, DOMAIN, "could not run the command of authentication \"%s\" "
		                "(\"%s\"): %s", id, argv[0], strerror(spawn_rc));
		goto cleanup;
	}
	int64_t deadline = now_ms() + timeout_ms;
	int read_rc = read_both(out_pipe[0], err_pipe[0], deadline, &out, &errors);
	reap(pid, deadline, read_rc != 0, &status);
	secret = trimmed(&out);
	log_stderr(id, &errors, secret);
	if (read_rc == CW_ETIMEDOUT || (read_rc == 0 && status == -1))
		rc = cw_err_set(err, CW_ETIMEDOUT, DOMAIN, "the command of authentication \"%s\" did not "
		                "finish within %lld ms: it was killed", id, (long long)timeout_ms);
	else if (read_rc != 0)
		rc = cw_err_set(err, CW_EAUTH, DOMAIN, "the command of authentication \"%s\" printed more "
		                "than %d bytes: not a password or token", id, MAX_OUTPUT);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = cw_err_set(err, CW_EAUTH, DOMAIN, "the command of authentication \"%s\" failed (%s %d; "
		                "its standard error is logged)", id,
		                WIFEXITED(status) ? "exit status" : "signal",
		                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	else if (secret[0] == '\0')
		rc = cw_err_set(err, CW_EAUTH, DOMAIN, "the command of authentication \"%s\" printed "
		                "nothing: it must print the password or token", id);
	else
		rc = 0;
	if (rc == 0) {
		*output = secret;
		secret = NULL;
	}
cleanup:
	cw_auth_secret_free(secret);
	if (out.data != NULL)
		explicit_bzero(out.data, out.len);
	cw_buf_free(&out);
	cw_buf_free(&errors);
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	cw_auth_argv_free(argv);
	return rc;
}
