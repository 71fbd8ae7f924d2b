#!/usr/bin/env bash
# This file contains Toxiproxy for network-fault tests: a TCP proxy between
# cachewarp and a database whose link a test can slow, cut or reset.
#
#   toxiproxy.sh fetch                       builds toxiproxy-server v2.12.0 with go (once)
#   toxiproxy.sh start [--owner PID] DIR     starts the server; prints its API URL
#   toxiproxy.sh stop DIR                    stops it and removes DIR
#   toxiproxy.sh url DIR                     prints the API URL
#   toxiproxy.sh proxy DIR NAME HOST:PORT    a proxy to HOST:PORT; prints 127.0.0.1:PORT to connect to
#   toxiproxy.sh toxic DIR NAME TYPE [K=V]...  adds a toxic (latency latency=500, reset_peer timeout=0,
#                                            timeout timeout=0, bandwidth rate=1, ...) on the downstream
#   toxiproxy.sh clear DIR NAME              removes every toxic of the proxy
#   toxiproxy.sh down DIR NAME | up DIR NAME cuts the link entirely (refuses connections) / restores it
#
# The binary is built from the Go module proxy into tests/fixtures/toxiproxy/bin.
set -u -o pipefail
SRV_NAME=toxiproxy.sh
SRV_MORE_USAGE="fetch | proxy DIR NAME HOST:PORT | toxic DIR NAME TYPE [K=V]... | clear DIR NAME | down DIR NAME | up DIR NAME | "
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=srv_common.sh
. "$(dirname "$SELF")/srv_common.sh"
FIXTURE=$(cd "$(dirname "$SELF")/../fixtures" && pwd -P)/toxiproxy
BIN=$FIXTURE/bin/server
VERSION=v2.12.0

cmd_fetch() {
	[ -x "$BIN" ] && return 0
	local go
	go=$(srv_go_cmd) || srv_die "could not find \"go\" (Toxiproxy is built from the Go module proxy)"
	mkdir -p "$FIXTURE/bin" || srv_die "could not create \"$FIXTURE/bin\""
	(
		flock -w 600 9 || srv_die "could not lock \"$FIXTURE/.fetch.lock\""
		[ -x "$BIN" ] && exit 0
		echo "$SRV_NAME: building toxiproxy-server $VERSION with go (first time only)" >&2
		GOBIN=$FIXTURE/bin GOFLAGS=-mod=mod "$go" install \
			"github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION" >"$FIXTURE/build.log" 2>&1 ||
			srv_die "go install failed" "$FIXTURE/build.log"
	) 9>"$FIXTURE/.fetch.lock"
	[ -x "$BIN" ] || srv_die "go install did not produce \"$BIN\""
}

cmd_start() {
	srv_parse_start_args "$@"
	cmd_fetch || exit 1
	srv_prepare_dir toxiproxy
	if [ -n "$SRV_OWNER" ]; then
		srv_watchdog_start "$SRV_OWNER" "$SELF" ||
			srv_die "could not start the watchdog for owner pid $SRV_OWNER"
	fi
	local port pid deadline
	port=$(srv_free_port) || srv_die "could not find a free port"
	setsid "$BIN" -host 127.0.0.1 -port "$port" </dev/null >"$SRV_DIR/toxiproxy.log" 2>&1 &
	pid=$!
	echo "$pid" >"$SRV_DIR/pid"
	deadline=$((SECONDS + 30))
	until srv_port_open "$port"; do
		kill -0 "$pid" 2>/dev/null || srv_die "toxiproxy exited during startup" "$SRV_DIR/toxiproxy.log"
		[ $SECONDS -lt $deadline ] || srv_die "toxiproxy did not listen within 30 s" "$SRV_DIR/toxiproxy.log"
		sleep 0.05
	done
	echo "http://127.0.0.1:$port" >"$SRV_DIR/url"
	cat "$SRV_DIR/url"
}

cmd_stop() {
	[ $# -eq 1 ] || srv_usage
	srv_existing_dir "$1" toxiproxy || return 0
	srv_watchdog_stop
	local pid
	pid=$(cat "$SRV_DIR/pid" 2>/dev/null)
	if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -F "$BIN"; then
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -rf "$SRV_DIR" || srv_die "could not remove \"$SRV_DIR\""
}

api_url() {
	srv_existing_dir "$1" toxiproxy || srv_die "directory \"$1\" does not exist"
	cat "$SRV_DIR/url" 2>/dev/null || srv_die "no toxiproxy was started in \"$SRV_DIR\""
}

# api METHOD PATH [JSON]: one API call; dies with the server's answer on failure.
api() {
	local out
	out=$(curl -sS -f -X "$2" -H 'Content-Type: application/json' ${4:+--data "$4"} "$API$3" 2>&1) ||
		srv_die "toxiproxy $2 $3 failed: $out"
	printf '%s' "$out"
}

check_name() {
	case $1 in '' | *[!a-z0-9_]*) srv_die "proxy name \"$1\" must be [a-z0-9_]+" ;; esac
}

cmd_proxy() {
	[ $# -eq 3 ] || srv_usage
	API=$(api_url "$1"); check_name "$2"
	local port
	port=$(srv_free_port) || srv_die "could not find a free port"
	api "$1" POST /proxies "{\"name\":\"$2\",\"listen\":\"127.0.0.1:$port\",\"upstream\":\"$3\",\"enabled\":true}" >/dev/null
	echo "127.0.0.1:$port"
}

cmd_toxic() {
	[ $# -ge 3 ] || srv_usage
	API=$(api_url "$1"); check_name "$2"
	local dir=$1 name=$2 type=$3 attrs='' kv
	shift 3
	for kv in "$@"; do
		case $kv in *=*) ;; *) srv_die "toxic attribute \"$kv\" is not K=V" ;; esac
		attrs="$attrs${attrs:+,}\"${kv%%=*}\":${kv#*=}"
	done
	api "$dir" POST "/proxies/$name/toxics" \
		"{\"type\":\"$type\",\"stream\":\"downstream\",\"toxicity\":1.0,\"attributes\":{$attrs}}" >/dev/null
}

cmd_clear() {
	[ $# -eq 2 ] || srv_usage
	API=$(api_url "$1"); check_name "$2"
	local toxics name
	toxics=$(api "$1" GET "/proxies/$2/toxics")
	for name in $(printf '%s' "$toxics" | grep -o '"name":"[^"]*"' | cut -d'"' -f4); do
		api "$1" DELETE "/proxies/$2/toxics/$name" >/dev/null
	done
}

cmd_enable() {
	[ $# -eq 3 ] || srv_usage
	API=$(api_url "$1"); check_name "$2"
	api "$1" POST "/proxies/$2" "{\"enabled\":$3}" >/dev/null
}

case ${1:-} in
fetch) shift; cmd_fetch "$@" ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
url) shift; [ $# -eq 1 ] || srv_usage; api_url "$1" ;;
proxy) shift; cmd_proxy "$@" ;;
toxic) shift; cmd_toxic "$@" ;;
clear) shift; cmd_clear "$@" ;;
down) shift; [ $# -eq 2 ] || srv_usage; cmd_enable "$1" "$2" false ;;
up) shift; [ $# -eq 2 ] || srv_usage; cmd_enable "$1" "$2" true ;;
*) srv_usage ;;
esac
