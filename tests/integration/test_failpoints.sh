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
# First the snapshot: killed or failed after its second page committed
# (after_scan_page_commit), the first snapshot and a rescan after a lost
# slot each resume after their last committed key: every row of the table
# is in the hub exactly once, in one generation.
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
sql app "INSERT INTO items SELECT g, 0, 'seed' FROM generate_series(1, 5000) g" >/dev/null
e2e_config "$work/cw.yaml" items public.items \
	"capture: {batch_size: 100, snapshot_batch_size: 100, flush_interval: 20ms}" \
	"apply: {batch_size: 100, poll_interval: 100ms}" \
	"retry: {initial: 50ms, max: 300ms, give_up_after: 10m}"

source_rows() { sql app "SELECT id || '|' || val || '|' || coalesce(note, '~') FROM items ORDER BY id"; }
cache_rows() {
	sqlite3 -readonly "$work/dbs/items/db.sqlite" \
		"SELECT id || '|' || val || '|' || coalesce(note, '~') FROM items ORDER BY CAST(id AS INTEGER)" 2>/dev/null
}
converged() { source_rows >"$work/source.txt"; cache_rows >"$work/cache.txt"; cmp -s "$work/source.txt" "$work/cache.txt"; }

# converge: runs the normal binary until the cache equals the source (90 s at most).
converge() { e2e_converge 90; }
twice() { e2e_twice; }
upserts() { sql hub "SELECT count(*) FROM cachewarp.oplog WHERE op = 'upsert'" 2>/dev/null || echo 0; }

# run_fp NAME FAILPOINTS: runs cachewarp-fp until the failpoint fires (10 s at
# most), lets an error be retried, then kills it; sets fired.
run_fp() {
	local log="$work/fp-$1.log" point=${2%%=*}
	CW_FAILPOINTS="$2" "$fp_bin" run -c "$work/cw.yaml" >"$log" 2>&1 &
	daemon=$!
	fired=no
	for _ in $(seq 1 100); do
		if ! kill -0 "$daemon" 2>/dev/null; then fired=died; break; fi
		if grep -qs "failpoint $point" "$log"; then fired=yes; break; fi
		sleep 0.1
	done
	sleep 0.5
	kill -9 "$daemon" 2>/dev/null
	{ wait "$daemon"; } 2>/dev/null
	daemon=
	grep -qs "failpoint fired: abort" "$log" && fired=aborted
}

# The snapshot (5 pages of 1000 rows), interrupted after its second page: the
# first one (abort), then a rescan after the slot was dropped (error).
for action in abort error; do
	before=$(upserts)
	[ "$action" = abort ] || sql app "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
	run_fp "snapshot-$action" "after_scan_page_commit=$action@2"
	if converge; then result=converged; else result=DIVERGED; fail "after_scan_page_commit=$action: the cache did not converge"; fi
	written=$(($(upserts) - before))
	[ "$written" = 5000 ] || fail "after_scan_page_commit=$action: $written rows written for a table of 5000"
	generations=$(sql hub "SELECT count(DISTINCT version) FROM cachewarp.oplog WHERE op = 'upsert'")
	[ "$generations" = 1 ] || [ "$action" = error ] || fail "after_scan_page_commit=$action: rows in $generations generations"
	resumed=$(grep -c "resuming the snapshot" "$work/fp-snapshot-$action.log" "$work/normal.log" | awk -F: '{n += $2} END {print n}')
	[ "$resumed" -ge 1 ] || fail "after_scan_page_commit=$action: the snapshot was not resumed"
	n_twice=$(twice)
	[ "$n_twice" = 0 ] || fail "after_scan_page_commit=$action: $n_twice changes are in the hub twice"
	printf 'failpoint %-22s %-6s fired=%-8s %s rows=%s written=%s twice=%s\n' "after_scan_page_commit" "$action" "$fired" "$result" "$(wc -l <"$work/source.txt")" "$written" "$n_twice"
	case $fired in yes | aborted) ;; *) fail "after_scan_page_commit=$action: the failpoint never fired" ;; esac
done
# Streaming after the resumed snapshot: the matrix below runs on 1000 rows.
sql app "DELETE FROM items WHERE id > 1000" >/dev/null
converge || fail "the deletes after the snapshot did not converge"
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
		run_fp "$point-$action" "$point=$action@2"
		if converge; then result=converged; else result=DIVERGED; fail "$point=$action: the cache did not converge"; fi
		twice=$(twice)
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
	run_fp "truncate-$action" "after_generation_bump=$action"
	if converge; then result=converged; else result=DIVERGED; fail "after_generation_bump=$action: the cache did not converge"; fi
	twice=$(twice)
	[ "$twice" = 0 ] || fail "after_generation_bump=$action: $twice changes are in the hub twice"
	printf 'failpoint %-22s %-6s fired=%-8s %s rows=%s twice=%s\n' "after_generation_bump" "$action" "$fired" "$result" "$(wc -l <"$work/source.txt")" "$twice"
	case $fired in yes | aborted) ;; *) fail "after_generation_bump=$action: the failpoint never fired" ;; esac
done
[ "$failures" -eq 0 ] && echo "failpoints: all $burst cases converged"
exit $((failures > 0))
