#!/usr/bin/env bash
# This file contains the MongoDB test server for tests: mongo-java-server
# (in memory, oplog enabled, no replica set) started from the launcher in
# tests/fixtures/mongo-server.
#
#   mongo.sh fetch                     builds the launcher jar with maven (once)
#   mongo.sh start [--owner PID] DIR   starts on a free port; prints the URL
#   mongo.sh stop DIR                  stops the server and removes DIR
#   mongo.sh url DIR                   prints the URL of the server in DIR
#
# CW_MONGO_HEAP sets the server's heap (java -Xmx, default 512m): it keeps
# every collection in memory, so a benchmark of 200,000 documents needs more.
#
# With --owner (or CW_OWNER_PID) a detached watchdog stops the server and
# removes DIR when PID exits, so a crashed test leaves nothing running.
set -u -o pipefail
umask 022

SRV_NAME=mongo.sh
SRV_MORE_USAGE="fetch | "
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=srv_common.sh
. "$(dirname "$SELF")/srv_common.sh"

FIXTURE=$(cd "$(dirname "$SELF")/../fixtures/mongo-server" && pwd -P) ||
	srv_die "could not find tests/fixtures/mongo-server"
JAR=$FIXTURE/target/cw-mongo-server.jar

jar_fresh() {
	[ -f "$JAR" ] && [ -z "$(find "$FIXTURE/pom.xml" "$FIXTURE/src" -newer "$JAR" -print -quit)" ]
}

# Builds the jar unless it is newer than every source; concurrent callers
# (parallel tests) wait on a lock and then find the jar fresh.
cmd_fetch() {
	[ $# -eq 0 ] || srv_usage
	jar_fresh && return 0
	command -v mvn >/dev/null 2>&1 || srv_die "could not find \"mvn\" (run make deps)"
	command -v java >/dev/null 2>&1 || srv_die "could not find \"java\" (run make deps)"
	mkdir -p "$FIXTURE/target" || srv_die "could not create \"$FIXTURE/target\""
	(
		flock -w 1200 9 || srv_die "could not lock \"$FIXTURE/target/.fetch.lock\""
		jar_fresh && exit 0
		echo "$SRV_NAME: building the mongo test server with maven (the first build downloads from maven central)" >&2
		mvn -q -B -Dstyle.color=never -f "$FIXTURE/pom.xml" package >"$FIXTURE/target/build.log" 2>&1 ||
			srv_die "maven could not build the mongo test server" "$FIXTURE/target/build.log"
		[ -f "$JAR" ] || srv_die "maven did not produce \"$JAR\""
		touch "$JAR"
	) 9>"$FIXTURE/target/.fetch.lock"
}

# wait_listening PID: waits until the server prints its port and accepts connections; sets PORT.
wait_listening() {
	local pid=$1 deadline=$((SECONDS + 60))
	PORT=
	while :; do
		kill -0 "$pid" 2>/dev/null ||
			srv_die "the mongo test server exited during startup" "$LOG"
		[ -n "$PORT" ] || PORT=$(grep -m 1 -E '^[0-9]+$' "$SRV_DIR/port" 2>/dev/null)
		if [ -n "$PORT" ] && srv_port_open "$PORT"; then
			return 0
		fi
		if [ $SECONDS -ge $deadline ]; then
			kill -KILL "$pid" 2>/dev/null
			srv_die "the mongo test server did not listen within 60 s" "$LOG"
		fi
		sleep 0.1
	done
}

cmd_start() {
	srv_parse_start_args "$@"
	cmd_fetch || exit 1
	srv_prepare_dir mongo
	cd "$SRV_DIR" || srv_die "could not enter \"$SRV_DIR\""
	# watching from the start: whatever fails below, the owner's exit cleans up
	if [ -n "$SRV_OWNER" ]; then
		srv_watchdog_start "$SRV_OWNER" "$SELF" ||
			srv_die "could not start the watchdog for owner pid $SRV_OWNER"
	fi
	LOG=$SRV_DIR/mongo.log
	setsid java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k "-Xmx${CW_MONGO_HEAP:-512m}" \
		-jar "$JAR" 0 </dev/null >"$SRV_DIR/port" 2>"$LOG" &
	local pid=$!
	echo "$pid" >"$SRV_DIR/pid"
	wait_listening "$pid"
	URL="mongodb://127.0.0.1:$PORT/?directConnection=true"
	echo "$URL" >"$SRV_DIR/url"
	echo "$URL"
}

# is_server PID: true when PID is still our java process (not a reused pid).
is_server() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -F "$JAR"
}

cmd_stop() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" mongo || return 0
	srv_watchdog_stop
	srv_stop_server "$(cat "$SRV_DIR/pid" 2>/dev/null)"
	rm -rf "$SRV_DIR" || srv_die "could not remove \"$SRV_DIR\""
}

cmd_url() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" mongo || srv_die "directory \"$1\" does not exist"
	cat "$SRV_DIR/url" 2>/dev/null || srv_die "no server was started in \"$SRV_DIR\""
}

case ${1:-} in
fetch) shift; cmd_fetch "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
url) shift; cmd_url "$@" ;;
*) srv_usage ;;
esac
