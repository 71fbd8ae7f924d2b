#!/usr/bin/env bash
# This file contains the FerretDB test server for tests: FerretDB v1 with its
# SQLite backend (no replica set, no change streams: a target only), built
# from the Go module in tests/fixtures/ferretdb.
#
#   ferretdb.sh fetch                     builds the server with go (once)
#   ferretdb.sh start [--owner PID] DIR   starts on a free port; prints the URL
#   ferretdb.sh stop DIR                  stops the server and removes DIR
#   ferretdb.sh url DIR                   prints the URL of the server in DIR
#
# With --owner (or CW_OWNER_PID) a detached watchdog stops the server and
# removes DIR when PID exits, so a crashed test leaves nothing running.
set -u -o pipefail
umask 022

SRV_NAME=ferretdb.sh
SRV_MORE_USAGE="fetch | "
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=srv_common.sh
. "$(dirname "$SELF")/srv_common.sh"

FIXTURE=$(cd "$(dirname "$SELF")/../fixtures/ferretdb" && pwd -P) ||
	srv_die "could not find tests/fixtures/ferretdb"
BIN=$FIXTURE/bin/cw-ferretdb

# Builds the binary unless it is newer than its sources.
cmd_fetch() {
	[ $# -eq 0 ] || srv_usage
	srv_go_build "$FIXTURE" "$BIN" "FerretDB"
}

# wait_listening PID: waits until the server prints its port and accepts connections; sets PORT.
wait_listening() {
	local pid=$1 deadline=$((SECONDS + 60))
	PORT=
	while :; do
		kill -0 "$pid" 2>/dev/null ||
			srv_die "FerretDB exited during startup" "$LOG"
		[ -n "$PORT" ] || PORT=$(grep -m 1 -E '^[0-9]+$' "$SRV_DIR/port" 2>/dev/null)
		if [ -n "$PORT" ] && srv_port_open "$PORT"; then
			return 0
		fi
		if [ $SECONDS -ge $deadline ]; then
			kill -KILL "$pid" 2>/dev/null
			srv_die "FerretDB did not listen within 60 s" "$LOG"
		fi
		sleep 0.1
	done
}

cmd_start() {
	srv_parse_start_args "$@"
	cmd_fetch || exit 1
	srv_prepare_dir ferretdb
	cd "$SRV_DIR" || srv_die "could not enter \"$SRV_DIR\""
	if [ -n "$SRV_OWNER" ]; then
		srv_watchdog_start "$SRV_OWNER" "$SELF" ||
			srv_die "could not start the watchdog for owner pid $SRV_OWNER"
	fi
	LOG=$SRV_DIR/ferretdb.log
	mkdir -p "$SRV_DIR/data" || srv_die "could not create \"$SRV_DIR/data\""
	setsid "$BIN" 0 "$SRV_DIR/data" </dev/null >"$SRV_DIR/port" 2>"$LOG" &
	local pid=$!
	echo "$pid" >"$SRV_DIR/pid"
	wait_listening "$pid"
	URL="mongodb://127.0.0.1:$PORT/?directConnection=true"
	echo "$URL" >"$SRV_DIR/url"
	echo "$URL"
}

# is_server PID: true when PID is still our FerretDB (not a reused pid).
is_server() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -F "$BIN"
}

cmd_stop() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" ferretdb || return 0
	srv_watchdog_stop
	srv_stop_server "$(cat "$SRV_DIR/pid" 2>/dev/null)"
	rm -rf "$SRV_DIR" || srv_die "could not remove \"$SRV_DIR\""
}

cmd_url() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" ferretdb || srv_die "directory \"$1\" does not exist"
	cat "$SRV_DIR/url" 2>/dev/null || srv_die "no server was started in \"$SRV_DIR\""
}

case ${1:-} in
fetch) shift; cmd_fetch "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
url) shift; cmd_url "$@" ;;
*) srv_usage ;;
esac
