# This file contains the helpers pg.sh and mongo.sh share: argument parsing,
# the server directory and its marker, deadlines, and the owner watchdog.
# It is sourced, never run; every function prints its messages on stderr.

# srv_die MESSAGE [LOG]: prints "NAME: MESSAGE" and the tail of LOG, exits 1.
srv_die() {
	echo "$SRV_NAME: $1" >&2
	if [ -n "${2:-}" ] && [ -s "$2" ]; then
		echo "--- last lines of $2 ---" >&2
		tail -n 25 "$2" >&2
	fi
	exit 1
}

srv_usage() {
	echo "usage: $SRV_NAME ${SRV_MORE_USAGE:-}start [--owner PID] DIR | stop DIR | url DIR" >&2
	exit 2
}

# srv_parse_start_args ARGS...: sets SRV_DIR and SRV_OWNER (CW_OWNER_PID by default).
srv_parse_start_args() {
	SRV_OWNER=${CW_OWNER_PID:-}
	SRV_DIR=
	while [ $# -gt 0 ]; do
		case $1 in
		--owner) [ $# -ge 2 ] || srv_usage; SRV_OWNER=$2; shift 2 ;;
		--owner=*) SRV_OWNER=${1#--owner=}; shift ;;
		-*) srv_usage ;;
		*) [ -z "$SRV_DIR" ] || srv_usage; SRV_DIR=$1; shift ;;
		esac
	done
	[ -n "$SRV_DIR" ] || srv_usage
	case $SRV_OWNER in
	'') ;;
	*[!0-9]*) srv_die "owner pid \"$SRV_OWNER\" is not a number" ;;
	*) kill -0 "$SRV_OWNER" 2>/dev/null || srv_die "owner pid \"$SRV_OWNER\" is not running" ;;
	esac
}

# srv_prepare_dir KIND: creates SRV_DIR (made absolute) with a marker naming KIND.
# Refuses a directory that holds anything else, so stop never removes a stranger's files.
srv_prepare_dir() {
	mkdir -p "$SRV_DIR" || srv_die "could not create directory \"$SRV_DIR\""
	SRV_DIR=$(cd "$SRV_DIR" && pwd -P) || srv_die "could not enter directory \"$SRV_DIR\""
	if [ -e "$SRV_DIR/.cw-testsrv" ]; then
		srv_die "directory \"$SRV_DIR\" already holds a test server: stop it first"
	fi
	if [ -n "$(ls -A "$SRV_DIR")" ]; then
		srv_die "directory \"$SRV_DIR\" is not empty"
	fi
	echo "$1" >"$SRV_DIR/.cw-testsrv" || srv_die "could not write to \"$SRV_DIR\""
	chmod 755 "$SRV_DIR"
}

# srv_existing_dir DIR KIND: sets SRV_DIR to DIR made absolute; returns 1 when
# DIR does not exist; dies when it is not a KIND test server directory.
srv_existing_dir() {
	[ -d "$1" ] || return 1
	SRV_DIR=$(cd "$1" && pwd -P) || srv_die "could not enter directory \"$1\""
	[ "$(cat "$SRV_DIR/.cw-testsrv" 2>/dev/null)" = "$2" ] ||
		srv_die "directory \"$SRV_DIR\" is not a $2 test server directory"
}

# srv_port_open PORT: true when something accepts connections on 127.0.0.1:PORT.
srv_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# srv_free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
# The caller still retries when the bind fails, since another process may take it.
srv_free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' && return 0
	fi
	local tries port
	for tries in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		srv_port_open "$port" || { echo "$port"; return 0; }
	done
	return 1
}

# srv_watchdog_start OWNER SCRIPT: runs "SCRIPT stop SRV_DIR" once OWNER exits.
# The watchdog leads its own session, holds no inherited stdio, and records its
# pid in SRV_DIR/watchdog.pid (waited for here) so stop can end it.
srv_watchdog_start() {
	local owner=$1 script=$2 deadline
	setsid bash -c '
		echo $$ >"$3/watchdog.pid"
		tail -s 0.2 --pid="$1" -f /dev/null
		exec bash "$2" stop "$3"' cw-testsrv-watchdog "$owner" "$script" "$SRV_DIR" \
		</dev/null >/dev/null 2>&1 &
	deadline=$((SECONDS + 10))
	until [ -s "$SRV_DIR/watchdog.pid" ]; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}

# srv_watchdog_stop: ends the watchdog of SRV_DIR, unless this process is it.
srv_watchdog_stop() {
	local pid
	pid=$(cat "$SRV_DIR/watchdog.pid" 2>/dev/null) || return 0
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	[ "$pid" != "$$" ] || return 0
	# Only while it is still this directory's watchdog: a pid is reused soon
	# where pid_max is small (32768), and its group may be another test's server.
	srv_pid_mentions "$pid" "$SRV_DIR" || return 0
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
}

# srv_pid_mentions PID TEXT: true when PID runs and its command line holds TEXT.
srv_pid_mentions() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -F -- "$2"
}

# srv_stop_server PID: stops the server PID (SIGTERM, then SIGKILL after 10 s),
# waiting up to 5 more seconds for it to go. The script defines is_server PID,
# true while PID is still its server (not a reused pid).
srv_stop_server() {
	local pid=$1 deadline
	[ -n "$pid" ] && is_server "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	deadline=$((SECONDS + 10))
	while is_server "$pid" && [ $SECONDS -lt $deadline ]; do
		sleep 0.05
	done
	if is_server "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		deadline=$((SECONDS + 5))
		while is_server "$pid" && [ $SECONDS -lt $deadline ]; do
			sleep 0.05
		done
	fi
	return 0
}

# srv_go_cmd: prints the Go toolchain to use (PATH, then /usr/local/go, then Debian's
# golang-go in /usr/lib/go); fails when there is none.
srv_go_cmd() {
	command -v go 2>/dev/null && return 0
	local candidate
	for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
		[ -x "$candidate" ] && { echo "$candidate"; return 0; }
	done
	return 1
}

# srv_go_build DIR BIN WHAT: builds the Go module in DIR (go.mod, go.sum, main.go) into
# BIN unless BIN is newer than those files; concurrent callers wait on a lock. WHAT names
# the program in messages; the build's output is in DIR/bin/build.log.
srv_go_build() {
	local dir=$1 bin=$2 what=$3 go
	srv_go_fresh "$dir" "$bin" && return 0
	go=$(srv_go_cmd) || srv_die "could not find \"go\" to build $what (run make deps)"
	mkdir -p "$dir/bin" || srv_die "could not create \"$dir/bin\""
	(
		flock -w 1800 9 || srv_die "could not lock \"$dir/bin/.fetch.lock\""
		srv_go_fresh "$dir" "$bin" && exit 0
		echo "$SRV_NAME: building $what with go (the first build downloads modules)" >&2
		(cd "$dir" && "$go" build -o "$bin" .) >"$dir/bin/build.log" 2>&1 ||
			srv_die "go could not build $what" "$dir/bin/build.log"
		touch "$bin"
	) 9>"$dir/bin/.fetch.lock"
}

srv_go_fresh() {
	[ -x "$2" ] && [ -z "$(find "$1/go.mod" "$1/go.sum" "$1/main.go" -newer "$2" -print -quit)" ]
}
