#!/usr/bin/env bash
# The failpoint matrix: for every named failpoint on the path of a change
# (decode, oplog COPY, hub commit, a commit of part of a source transaction
# split over several batches, LSN acknowledgement, SQLite apply, consumer
# position) and both actions (abort: the process dies as with kill -9;
# error: the call fails and the worker retries), a burst of changes is
# written, cachewarp-fp runs until the failpoint fires, and a normal
# cachewarp then runs until the SQLite cache equals the source table.
# Prints one line per case; fails on any divergence and on any change the
# hub holds twice (exactly once, docs/hub.md).
set -u
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
points="after_decode before_oplog_copy after_oplog_copy before_hub_commit after_hub_commit
        after_txn_part_commit before_lsn_ack after_lsn_ack inside_sqlite_apply
        before_position_store after_position_store"
[ -x "$fp_bin" ] || { echo "FAIL: $fp_bin not built" >&2; exit 1; }

daemon=
stop_processes() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_processes
e2e_init failpoints
e2e_start_pg
sql() { e2e_sql "$@"; }
sql app "CREATE TABLE items (id bigint PRIMARY KEY, val integer NOT NULL, note text)" >/dev/null
sql app "INSERT INTO items SELECT g, 0, 'seed' FROM generate_series(1, 1000) g" >/dev/null
e2e_config "$work/cw.yaml" items public.items \
	"capture: {batch_size: 100, flush_interval: 20ms}" \
	"apply: {batch_size: 100, poll_interval: 100ms}" \
	"retry: {initial: 50ms, max: 300ms, give_up_after: 10m}"

source_rows() { sql app "SELECT id || '|' || val || '|' || coalesce(note, '~') FROM items ORDER BY id"; }
cache_rows() {
	sqlite3 -readonly "$work/dbs/items/db.sqlite" \
		"SELECT id || '|' || val || '|' || coalesce(note, '~') FROM items ORDER BY CAST(id AS INTEGER)" 2>/dev/null
}
converged() { source_rows >"$work/source.txt"; cache_rows >"$work/cache.txt"; cmp -s "$work/source.txt" "$work/cache.txt"; }

# converge: runs the normal binary until the cache equals the source (90 s at most).
converge() {
	"$bin" run -c "$work/cw.yaml" >>"$work/normal.log" 2>&1 &
	daemon=$!
	local deadline=$((SECONDS + 90)) ok=1
	until converged; do
		[ $SECONDS -lt $deadline ] || { ok=0; break; }
		sleep 0.2
	done
	kill -TERM "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=
	return $((1 - ok))
}

converge || fail "the initial snapshot did not converge"
burst=0
for point in $points; do
	for action in abort error; do
		burst=$((burst + 1))
		# A burst: updates, deletes and inserts in several transactions.
		for t in 1 2 3 4 5; do
			sql app "UPDATE items SET val = val + 1, note = 'burst $burst.$t' WHERE id % 5 = $((t - 1));
			         DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 3);
			         INSERT INTO items SELECT g, $burst, 'new' FROM generate_series($((burst * 1000 + t * 100)), $((burst * 1000 + t * 100 + 20))) g
			         ON CONFLICT DO NOTHING" >/dev/null
		done
		CW_FAILPOINTS="$point=$action@2" "$fp_bin" run -c "$work/cw.yaml" >"$work/fp-$point-$action.log" 2>&1 &
		daemon=$!
		fired=no
		for _ in $(seq 1 100); do   # up to 10 s for the failpoint to fire
			if ! kill -0 "$daemon" 2>/dev/null; then fired=died; break; fi
			if grep -qs "failpoint $point" "$work/fp-$point-$action.log"; then fired=yes; break; fi
			sleep 0.1
		done
		sleep 0.5   # let an error be retried
		kill -9 "$daemon" 2>/dev/null
		{ wait "$daemon"; } 2>/dev/null
		daemon=
		grep -qs "failpoint fired: abort" "$work/fp-$point-$action.log" && fired=aborted
		if converge; then result=converged; else result=DIVERGED; fail "$point=$action: the cache did not converge"; fi
		# One source change, one oplog row: the same change twice would share all of these.
		twice=$(sql hub "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM cachewarp.oplog
		                 WHERE op <> 'sweep' GROUP BY entity, doc_id, source_pos, version, op, data
		                 HAVING count(*) > 1) d")
		[ "$twice" = 0 ] || fail "$point=$action: $twice changes are in the hub twice"
		printf 'failpoint %-22s %-6s fired=%-8s %s rows=%s twice=%s\n' "$point" "$action" "$fired" "$result" "$(wc -l <"$work/source.txt")" "$twice"
		case $fired in yes | aborted) ;; *) fail "$point=$action: the failpoint never fired" ;; esac
	done
done
# A TRUNCATE inside a transaction, killed or failed between its generation bump
# and the commit of its sweep: the restart sweeps once, nothing is written twice.
for action in abort error; do
	burst=$((burst + 1))
	sql app "BEGIN; INSERT INTO items SELECT g, $burst, 'before' FROM generate_series(50001, 50150) g;
	         TRUNCATE items; INSERT INTO items SELECT g, $burst, 'reloaded' FROM generate_series(1, 600) g;
	         COMMIT" >/dev/null
	CW_FAILPOINTS="after_generation_bump=$action" "$fp_bin" run -c "$work/cw.yaml" >"$work/fp-truncate-$action.log" 2>&1 &
	daemon=$!
	fired=no
	for _ in $(seq 1 100); do
		if ! kill -0 "$daemon" 2>/dev/null; then fired=died; break; fi
		if grep -qs "failpoint after_generation_bump" "$work/fp-truncate-$action.log"; then fired=yes; break; fi
		sleep 0.1
	done
	sleep 0.5
	kill -9 "$daemon" 2>/dev/null
	{ wait "$daemon"; } 2>/dev/null
	daemon=
	grep -qs "failpoint fired: abort" "$work/fp-truncate-$action.log" && fired=aborted
	if converge; then result=converged; else result=DIVERGED; fail "after_generation_bump=$action: the cache did not converge"; fi
	twice=$(sql hub "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM cachewarp.oplog
	                 WHERE op <> 'sweep' GROUP BY entity, doc_id, source_pos, version, op, data
	                 HAVING count(*) > 1) d")
	[ "$twice" = 0 ] || fail "after_generation_bump=$action: $twice changes are in the hub twice"
	printf 'failpoint %-22s %-6s fired=%-8s %s rows=%s twice=%s\n' "after_generation_bump" "$action" "$fired" "$result" "$(wc -l <"$work/source.txt")" "$twice"
	case $fired in yes | aborted) ;; *) fail "after_generation_bump=$action: the failpoint never fired" ;; esac
done
[ "$failures" -eq 0 ] && echo "failpoints: all $burst cases converged"
exit $((failures > 0))
