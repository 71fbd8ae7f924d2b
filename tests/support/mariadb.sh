#!/usr/bin/env bash
# This file contains the throwaway MariaDB server for tests.
#
#   mariadb.sh start [--owner PID] DIR   mariadb-install-db + mariadbd on a free port; prints the URL
#   mariadb.sh stop DIR                  stops the server (SIGKILL after 10 s) and removes DIR
#   mariadb.sh url DIR                   prints the URL of the server in DIR
#
# The server listens on 127.0.0.1 only, has user "root" without a password
# reachable over TCP, a database "app", the binlog on (binlog_format=ROW,
# binlog_row_image=FULL, binlog_row_metadata=FULL, server_id=1, GTIDs) and no
# durability (sync_binlog=0, innodb_flush_log_at_trx_commit=0). mariadbd
# refuses to run as root unless told, so as root it runs with --user=root:
# the server files stay root's, which is what CI (root, nothing set up by
# hand) can rely on. With --owner (or CW_OWNER_PID) a detached watchdog stops
# the server and removes DIR when PID exits. MARIADB_EXTRA adds server options
# (e.g. "--binlog-row-image=MINIMAL").
set -u -o pipefail
umask 022

SRV_NAME=mariadb.sh
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=srv_common.sh
. "$(dirname "$SELF")/srv_common.sh"

find_server() {
	local bin
	for bin in "${CW_MARIADBD:-}" /usr/sbin/mariadbd "$(command -v mariadbd 2>/dev/null)"; do
		if [ -n "$bin" ] && [ -x "$bin" ]; then
			echo "$bin"
			return 0
		fi
	done
	return 1
}

# is_server PID: true when PID is still our mariadbd (not a reused pid).
is_server() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -F -- "--datadir=$SRV_DIR/data"
}

client() { # client SQL...: runs SQL as root over the socket
	mariadb --no-defaults -uroot --socket="$SRV_DIR/sock" -N -B -e "$*"
}

start_server() {
	local attempt pid deadline
	for attempt in 1 2 3 4 5; do
		PORT=$(srv_free_port) || srv_die "could not find a free port"
		: >"$LOG"
		# shellcheck disable=SC2086
		setsid "$BIN" --no-defaults --user="$(id -un)" --datadir="$SRV_DIR/data" \
			--socket="$SRV_DIR/sock" --pid-file="$SRV_DIR/mariadbd.pid" \
			--bind-address=127.0.0.1 --port="$PORT" --log-error="$LOG" \
			--log-bin="$SRV_DIR/data/binlog" --server-id=1 --binlog-format=ROW \
			--binlog-row-image=FULL --binlog-row-metadata=FULL --sync-binlog=0 \
			--innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M \
			--innodb-log-file-size=48M --skip-name-resolve --character-set-server=utf8mb4 \
			--collation-server=utf8mb4_bin --default-time-zone=+00:00 --max-connections=50 \
			${MARIADB_EXTRA:-} </dev/null >/dev/null 2>&1 &
		pid=$!
		echo "$pid" >"$SRV_DIR/pid"
		deadline=$((SECONDS + 60))
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
			client "SELECT 1" >/dev/null 2>&1 && return 0
			sleep 0.1
		done
		srv_stop_server "$pid"
		grep -q -e 'Address already in use' -e 'Do you already have another' "$LOG" || break
		echo "$SRV_NAME: port $PORT was taken, retrying (attempt $attempt)" >&2
	done
	srv_die "could not start mariadbd in \"$SRV_DIR\"" "$LOG"
}

cmd_start() {
	srv_parse_start_args "$@"
	BIN=$(find_server) || srv_die "could not find mariadbd (run make deps, or set CW_MARIADBD)"
	command -v mariadb-install-db >/dev/null 2>&1 || srv_die "could not find mariadb-install-db"
	srv_prepare_dir mariadb
	cd "$SRV_DIR" || srv_die "could not enter \"$SRV_DIR\""
	if [ -n "$SRV_OWNER" ]; then
		srv_watchdog_start "$SRV_OWNER" "$SELF" ||
			srv_die "could not start the watchdog for owner pid $SRV_OWNER"
	fi
	LOG=$SRV_DIR/mariadbd.log
	# The bootstrap has failed once in a while on a loaded machine: one more
	# try in an empty directory, and the bootstrap's own errors shown if the
	# second fails too (its last lines are only advice).
	local try
	for try in 1 2; do
		rm -rf "$SRV_DIR/data"
		mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$SRV_DIR/data" \
			--auth-root-authentication-method=normal --skip-test-db \
			>"$SRV_DIR/install.log" 2>&1 && break
		grep -i -E 'error|fail|abort' "$SRV_DIR/install.log" | head -n 20 >&2 || true
		[ "$try" -eq 2 ] &&
			srv_die "mariadb-install-db failed in \"$SRV_DIR/data\"" "$SRV_DIR/install.log"
		echo "$SRV_NAME: mariadb-install-db failed in \"$SRV_DIR/data\"; trying once more" >&2
	done
	start_server
	client "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
		GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
		CREATE DATABASE app;" >>"$LOG" 2>&1 ||
		srv_die "could not set up users in \"$SRV_DIR\"" "$LOG"
	URL="mysql://root@127.0.0.1:$PORT/app"
	echo "$URL" >"$SRV_DIR/url"
	echo "$URL"
}

cmd_stop() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" mariadb || return 0
	srv_watchdog_stop
	srv_stop_server "$(cat "$SRV_DIR/pid" 2>/dev/null)"
	rm -rf "$SRV_DIR" || srv_die "could not remove \"$SRV_DIR\""
}

cmd_url() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" mariadb || srv_die "directory \"$1\" does not exist"
	cat "$SRV_DIR/url" 2>/dev/null || srv_die "no server was started in \"$SRV_DIR\""
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
url) shift; cmd_url "$@" ;;
*) srv_usage ;;
esac
