#!/usr/bin/env bash
# End to end with a standby: a 50,000-row table is snapshotted through the
# hub into a SQLite cache by process A while a second `cachewarp run` with
# the same configuration (B) waits as a standby and writes nothing. Mixed
# changes follow; A is killed with SIGKILL; B takes over the source and the
# target from their stored positions; more changes follow. At the end every
# cache row equals its source row.
set -u
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

a= b=
stop_processes() {
	[ -n "$a" ] && kill -9 "$a" 2>/dev/null
	[ -n "$b" ] && kill -9 "$b" 2>/dev/null
}
E2E_STOP=stop_processes
e2e_init standby
e2e_start_pg
sql() { e2e_sql "$@"; }
sql app "CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(14,2),
         tags jsonb, note text)" >/dev/null
sql app "INSERT INTO accounts SELECT g, 'owner ' || g, g * 0.01, jsonb_build_array(g % 7), NULL
         FROM generate_series(1, 50000) g" >/dev/null
e2e_config "$work/cw.yaml" accounts public.accounts \
	"capture: {flush_interval: 20ms}" "apply: {poll_interval: 100ms}"

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
