#!/usr/bin/env bash
# Smoke test of tests/support/pg.sh and mongo.sh as shell scripts use them:
# start prints one URL line, the servers answer, stop (or the death of the
# owner) leaves no process, no listening port and no directory behind.
set -u
support=${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}
pg_sh=$support/pg.sh
mongo_sh=$support/mongo.sh
psql=${CW_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql
[ -x "$psql" ] || psql=psql
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

work=$(mktemp -d /tmp/cw-harness-sh-XXXXXX)
chmod 755 "$work"
cleanup() {
	local dir
	for dir in "$work"/pg* ; do [ -d "$dir" ] && bash "$pg_sh" stop "$dir"; done
	for dir in "$work"/mongo* ; do [ -d "$dir" ] && bash "$mongo_sh" stop "$dir"; done
	rm -rf "$work"
}
trap cleanup EXIT

port_of() { local url=${1##*127.0.0.1:}; echo "${url%%[!0-9]*}"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# processes whose command line mentions DIR (servers, watchdogs)
procs_in() {
	local cmdline args pids=
	for cmdline in /proc/[0-9]*/cmdline; do
		args=$(tr '\0' ' ' <"$cmdline" 2>/dev/null) || continue
		[[ $args == *"$1"* ]] && pids="$pids ${cmdline//[!0-9]/}"
	done
	echo "$pids"
}
# gone DIR PORT: waits up to 20 s for DIR, its processes and PORT to disappear
gone() {
	local deadline=$((SECONDS + 20))
	while [ -e "$1" ] || [ -n "$(procs_in "$1")" ] || listening "$2"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# PostgreSQL: one URL line, answers psql, url repeats it, a second start refuses
pg_url=$(bash "$pg_sh" start --owner $$ "$work/pg")
rc=$?
[ $rc -eq 0 ] || fail "pg.sh start exited $rc"
[[ $pg_url =~ ^postgresql://postgres@127\.0\.0\.1:[0-9]+/postgres$ ]] ||
	fail "pg.sh start printed \"$pg_url\""
pg_port=$(port_of "$pg_url")
[ "$(bash "$pg_sh" url "$work/pg")" = "$pg_url" ] || fail "pg.sh url differs from start"
[ "$($psql -X -Atq -d "$pg_url" -c 'SHOW wal_level')" = logical ] || fail "wal_level is not logical"
[ "$($psql -X -Atq -d "$pg_url" -c 'SELECT 6 * 7')" = 42 ] || fail "psql query failed"
bash "$pg_sh" start "$work/pg" >/dev/null 2>&1 && fail "a second start in the same directory succeeded"

# MongoDB test server: one URL line, accepts connections
mongo_url=$(bash "$mongo_sh" start --owner $$ "$work/mongo")
rc=$?
[ $rc -eq 0 ] || fail "mongo.sh start exited $rc"
[[ $mongo_url =~ ^mongodb://127\.0\.0\.1:[0-9]+/\?directConnection=true$ ]] ||
	fail "mongo.sh start printed \"$mongo_url\""
mongo_port=$(port_of "$mongo_url")
listening "$mongo_port" || fail "nothing listens on the mongo port $mongo_port"
[ "$(bash "$mongo_sh" url "$work/mongo")" = "$mongo_url" ] || fail "mongo.sh url differs from start"

# stop leaves nothing, and stopping again is harmless
bash "$pg_sh" stop "$work/pg" || fail "pg.sh stop failed"
bash "$mongo_sh" stop "$work/mongo" || fail "mongo.sh stop failed"
gone "$work/pg" "$pg_port" || fail "postgresql left: $(procs_in "$work/pg") port $pg_port"
gone "$work/mongo" "$mongo_port" || fail "mongo left: $(procs_in "$work/mongo") port $mongo_port"
bash "$pg_sh" stop "$work/pg" || fail "pg.sh stop of a stopped cluster failed"
bash "$mongo_sh" stop "$work/mongo" || fail "mongo.sh stop of a stopped server failed"

# stop never removes a directory it did not create
mkdir "$work/pg-stranger" && echo keep >"$work/pg-stranger/file"
bash "$pg_sh" stop "$work/pg-stranger" 2>/dev/null && fail "pg.sh stop accepted a foreign directory"
[ -f "$work/pg-stranger/file" ] || fail "pg.sh stop removed a foreign directory"
rm -rf "$work/pg-stranger"
bash "$pg_sh" >/dev/null 2>&1
[ $? -eq 2 ] || fail "pg.sh without a command did not exit 2"

# the watchdog: when the owner dies, the servers stop and their directories go
sleep 600 &
owner=$!
pg_url=$(bash "$pg_sh" start --owner "$owner" "$work/pg-owned") || fail "owned pg start failed"
mongo_url=$(bash "$mongo_sh" start --owner "$owner" "$work/mongo-owned") || fail "owned mongo start failed"
listening "$(port_of "$pg_url")" || fail "owned cluster is not listening"
[ -d "$work/pg-owned" ] || fail "owned cluster has no directory"
kill "$owner"
wait "$owner" 2>/dev/null
gone "$work/pg-owned" "$(port_of "$pg_url")" ||
	fail "owner died but postgresql stayed: $(procs_in "$work/pg-owned")"
gone "$work/mongo-owned" "$(port_of "$mongo_url")" ||
	fail "owner died but mongo stayed: $(procs_in "$work/mongo-owned")"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "harness: all checks passed"
