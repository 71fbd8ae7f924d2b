#!/usr/bin/env bash
# End to end with a standby: a 50,000-row table is snapshotted through the
# hub into a SQLite cache by process A while a second `cachewarp run` with
# the same configuration (B) waits as a standby and writes nothing. Mixed
# changes follow; A is killed with SIGKILL; B takes over the source and the
# target from their stored positions; more changes follow. At the end every
# cache row equals its source row.
set -u
root=${CW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CW_BINARY:-$root/build/cachewarp}
support=${CW_SUPPORT_DIR:-$root/tests/support}
psql=$(ls /usr/lib/postgresql/15/bin/psql 2>/dev/null || command -v psql)
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

work=$(mktemp -d /tmp/cw-standby-XXXXXX)
chmod 755 "$work"
a= b=
cleanup() {
	[ -n "$a" ] && kill -9 "$a" 2>/dev/null
	[ -n "$b" ] && kill -9 "$b" 2>/dev/null
	[ -d "$work/pg" ] && bash "$support/pg.sh" stop "$work/pg"
	if [ "$failures" -eq 0 ] && [ -z "${CW_KEEP:-}" ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
}
trap cleanup EXIT

url=$(bash "$support/pg.sh" start --owner $$ "$work/pg") || exit 1
base=${url%/*}
sql() { "$psql" -X -q -A -t -v ON_ERROR_STOP=1 "$base/$1" -c "$2"; }
sql postgres "CREATE DATABASE app" >/dev/null
sql postgres "CREATE DATABASE hub" >/dev/null
sql app "CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(14,2),
         tags jsonb, note text)" >/dev/null
sql app "INSERT INTO accounts SELECT g, 'owner ' || g, g * 0.01, jsonb_build_array(g % 7), NULL
         FROM generate_series(1, 50000) g" >/dev/null

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_pg
    type: postgres
    url: $base/app
entities:
  - name: accounts
    source: app_pg
    table: public.accounts
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML

cache_rows() {
	sqlite3 -readonly "$work/dbs/accounts/db.sqlite" \
		"SELECT id || '|' || owner || '|' || coalesce(CAST(round(balance * 100) AS INTEGER), '~') || '|' || coalesce(note, '~')
		 FROM accounts ORDER BY CAST(id AS INTEGER)" 2>/dev/null
}
source_rows() {
	sql app "SELECT id || '|' || owner || '|' || coalesce(round(balance * 100)::bigint::text, '~') || '|' || coalesce(note, '~')
	         FROM accounts ORDER BY id"
}
wait_for() { # DESCRIPTION SECONDS COMMAND...
	local what=$1 deadline=$((SECONDS + $2))
	shift 2
	until "$@"; do
		[ $SECONDS -lt $deadline ] || { fail "$what"; return 1; }
		sleep 0.2
	done
}
logged() { grep -qs "$2" "$work/$1.log"; }
converged() { source_rows >"$work/source.txt"; cache_rows >"$work/cache.txt"; cmp -s "$work/source.txt" "$work/cache.txt"; }

"$bin" run -c "$work/cw.yaml" >"$work/a.log" 2>&1 &
a=$!
wait_for "A never started streaming" 60 logged a '"msg":"streaming"'
"$bin" run -c "$work/cw.yaml" >"$work/b.log" 2>&1 &
b=$!
wait_for "B never became a standby for the source" 30 logged b '"msg":"standby: another cachewarp process runs this","job":"capture:app_pg"'
wait_for "B never became a standby for the target" 30 logged b '"msg":"standby: another cachewarp process runs this","job":"apply:node1"'
wait_for "the 50,000-row snapshot did not converge" 120 converged

sql app "UPDATE accounts SET balance = balance + 1, note = 'first wave' WHERE id % 10 = 0;
         DELETE FROM accounts WHERE id % 97 = 0;
         INSERT INTO accounts SELECT g, 'new ' || g, 0, NULL, 'inserted' FROM generate_series(60001, 61000) g" >/dev/null
wait_for "the first wave of changes did not converge" 60 converged
grep -q '"msg":"streaming"\|"msg":"snapshot of table done"' "$work/b.log" && fail "the standby captured while A held the lease"

kill -9 "$a"
wait "$a" 2>/dev/null
a=
sql app "UPDATE accounts SET owner = 'after failover ' || id WHERE id % 13 = 0;
         DELETE FROM accounts WHERE id BETWEEN 100 AND 199" >/dev/null
wait_for "B never took over the source" 60 logged b '"msg":"lease taken over","job":"capture:app_pg"'
wait_for "B never took over the target" 60 logged b '"msg":"lease taken over","job":"apply:node1"'
wait_for "the changes after the failover did not converge: $(diff "$work/source.txt" "$work/cache.txt" 2>/dev/null | head -3)" 120 converged

kill -TERM "$b"
wait "$b"
rc=$?
b=
[ "$rc" -eq 0 ] || fail "B exited $rc after SIGTERM"
echo "standby: rows=$(wc -l <"$work/source.txt")"
[ "$failures" -eq 0 ] && echo "standby: all checks passed"
exit $((failures > 0))
