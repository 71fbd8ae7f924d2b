#!/usr/bin/env bash
# This file contains the throwaway PostgreSQL 15 cluster for tests.
#
#   pg.sh start [--owner PID] DIR   initdb + start on a free port; prints the URL
#   pg.sh stop DIR                  stops the cluster (immediate) and removes DIR
#   pg.sh url DIR                   prints the URL of the cluster in DIR
#
# The cluster listens on 127.0.0.1 only, trusts every local connection, has
# superuser "postgres", wal_level=logical and fsync=off. As root, initdb and
# the server run as the postgres user (PostgreSQL refuses root). With --owner
# (or CW_OWNER_PID) a detached watchdog stops the cluster and removes DIR when
# PID exits, so a crashed test leaves nothing running.
# CW_PG_BINDIR overrides where the server binaries are looked for.
set -u -o pipefail
umask 022

SRV_NAME=pg.sh
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=srv_common.sh
. "$(dirname "$SELF")/srv_common.sh"

find_bindir() {
	local dir
	for dir in "${CW_PG_BINDIR:-}" /usr/lib/postgresql/15/bin \
		$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) \
		"$(pg_config --bindir 2>/dev/null)" \
		"$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")"; do
		if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
			echo "$dir"
			return 0
		fi
	done
	return 1
}

# as_pg CMD...: runs CMD as the postgres user when we are root, else as ourselves.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Lets the postgres user reach DIR: adds o+x to any parent that lacks it.
make_traversable() {
	local path=$SRV_DIR
	as_pg test -x "$path" && return 0
	while [ "$path" != / ]; do
		case $(stat -c %A "$path") in
		*x) ;;
		*) chmod o+x "$path" || return 1 ;;
		esac
		path=$(dirname "$path")
	done
	as_pg test -x "$SRV_DIR"
}

write_settings() { # write_settings PORT
	cat >"$SRV_DIR/data/cachewarp_test.conf" <<-CONF
	# written by tests/support/pg.sh
	listen_addresses = '127.0.0.1'
	port = $1
	unix_socket_directories = '$SRV_DIR/sock'
	wal_level = logical
	max_wal_senders = 20
	max_replication_slots = 20
	fsync = off
	synchronous_commit = off
	full_page_writes = off
	logging_collector = off
	CONF
}

# start_server: starts on a free port, retrying when another process took it; sets PORT.
start_server() {
	local attempt
	for attempt in 1 2 3 4 5; do
		PORT=$(srv_free_port) || srv_die "could not find a free port"
		write_settings "$PORT" || srv_die "could not write settings to \"$SRV_DIR/data\""
		: >"$LOG"
		if as_pg "$BINDIR/pg_ctl" -D "$SRV_DIR/data" -l "$LOG" -w -t 30 start \
			>"$SRV_DIR/pg_ctl.log" 2>&1; then
			return 0
		fi
		grep -q -e 'could not bind' -e 'already in use' "$LOG" || break
		echo "$SRV_NAME: port $PORT was taken, retrying (attempt $attempt)" >&2
	done
	cat "$SRV_DIR/pg_ctl.log" >>"$LOG"
	srv_die "could not start postgresql in \"$SRV_DIR\"" "$LOG"
}

wait_ready() {
	local deadline=$((SECONDS + 30))
	until "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; do
		if [ $SECONDS -ge $deadline ]; then
			as_pg "$BINDIR/pg_ctl" -D "$SRV_DIR/data" -m immediate stop >/dev/null 2>&1
			srv_die "postgresql on port $PORT was not ready within 30 s" "$LOG"
		fi
		sleep 0.1
	done
}

cmd_start() {
	srv_parse_start_args "$@"
	BINDIR=$(find_bindir) ||
		srv_die "could not find the postgresql server binaries (set CW_PG_BINDIR)"
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		srv_die "running as root needs a \"postgres\" user to run the server"
	fi
	srv_prepare_dir pg
	cd "$SRV_DIR" || srv_die "could not enter \"$SRV_DIR\""
	# watching from the start: whatever fails below, the owner's exit cleans up
	if [ -n "$SRV_OWNER" ]; then
		srv_watchdog_start "$SRV_OWNER" "$SELF" ||
			srv_die "could not start the watchdog for owner pid $SRV_OWNER"
	fi
	make_traversable || srv_die "the postgres user cannot reach \"$SRV_DIR\""
	LOG=$SRV_DIR/postgres.log
	mkdir -m 700 "$SRV_DIR/data" && mkdir -m 755 "$SRV_DIR/sock" && : >"$LOG" ||
		srv_die "could not create the cluster files in \"$SRV_DIR\""
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$SRV_DIR/data" "$SRV_DIR/sock" "$LOG" ||
			srv_die "could not give \"$SRV_DIR/data\" to the postgres user"
	fi
	as_pg "$BINDIR/initdb" -D "$SRV_DIR/data" -U postgres --auth-local=trust \
		--auth-host=trust --encoding=UTF8 --locale=C --no-sync --no-instructions \
		>"$SRV_DIR/initdb.log" 2>&1 ||
		srv_die "initdb failed in \"$SRV_DIR/data\"" "$SRV_DIR/initdb.log"
	echo "include_if_exists = 'cachewarp_test.conf'" >>"$SRV_DIR/data/postgresql.conf"
	start_server
	wait_ready
	URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
	echo "$URL" >"$SRV_DIR/url"
	echo "$URL"
}

cmd_stop() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" pg || return 0
	srv_watchdog_stop
	local pidfile=$SRV_DIR/data/postmaster.pid pid deadline
	pid=$(head -n 1 "$pidfile" 2>/dev/null)
	# A postmaster that is gone leaves its pid file, and its pid may be another
	# process's by now: pg_ctl would signal that one. Only ours is stopped.
	if srv_pid_mentions "$pid" "$SRV_DIR/data"; then
		BINDIR=$(find_bindir) || BINDIR=
		if [ -z "$BINDIR" ] || ! (cd "$SRV_DIR" && as_pg "$BINDIR/pg_ctl" \
			-D "$SRV_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1); then
			if srv_pid_mentions "$pid" "$SRV_DIR/data" && kill -KILL "$pid" 2>/dev/null; then
				deadline=$((SECONDS + 10))
				while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
					sleep 0.05
				done
			fi
		fi
	fi
	rm -rf "$SRV_DIR" || srv_die "could not remove \"$SRV_DIR\""
}

cmd_url() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" pg || srv_die "directory \"$1\" does not exist"
	cat "$SRV_DIR/url" 2>/dev/null || srv_die "no cluster was started in \"$SRV_DIR\""
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
url) shift; cmd_url "$@" ;;
*) srv_usage ;;
esac
