# This file contains what the batch-mode end-to-end tests share (sourced
# after e2e.sh, never run; docs/batch.md): the daemon on $work/cw.yaml, its
# SQLite cache, and the checks on the "orders" table (id, note, updated_at)
# that every source type's batch test polls into entity "orders". The test
# defines source_rows (the source's orders as "id|note" lines in id order)
# and set_notes NOTE (every order's note set to NOTE, updated_at to now).
#
#   start [BINARY [FAILPOINTS]]  # runs BINARY ($bin) with CW_FAILPOINTS; sets daemon
#   cache DB SQL                 # reads the cache's DB read-only
#   converged                    # "ok" when the cache's orders equal the source's
#   twice                        # how many orders row versions the oplog holds more than once
#   status_has ENTITY TEXT       # "ok" when /v1/status ($port) has ENTITY failed with TEXT in
#                                # its reason, else the status
#   batch_crashes ROWS           # a crash right after a poll's 5th page (of 100 rows), then a
#                                # kill -9 in the middle of the next poll: each restart
#                                # converges, the ROWS orders each written once
start() {
	CW_FAILPOINTS="${2:-}" "${1:-$bin}" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
	daemon=$!
}

cache() { sqlite3 -readonly "$work/dbs/$1/db.sqlite" "$2" 2>/dev/null; }
cache_rows() { cache orders "SELECT id || '|' || note FROM orders ORDER BY CAST(id AS INTEGER)"; }

converged() {
	source_rows >"$work/source.txt"
	cache_rows >"$work/cache.txt"
	cmp -s "$work/source.txt" "$work/cache.txt" && echo ok || echo "$(wc -l <"$work/cache.txt") rows differ"
}

# Upserts the oplog holds more than once for one row version (doc_id, updated_at, note).
twice() {
	e2e_sql hub "SELECT count(*) FROM (SELECT doc_id, data::jsonb->>'updated_at', data::jsonb->>'note'
	             FROM cachewarp.oplog WHERE entity = 'orders' AND op = 'upsert'
	             GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
}

status_has() {
	curl -s "http://127.0.0.1:$port/v1/status" | jq -e --arg e "$1" --arg t "$2" '[.failed_entities[] |
		select(.entity == $e and (.reason | contains($t)))] | length == 1' >/dev/null &&
		echo ok || curl -s "http://127.0.0.1:$port/v1/status"
}

# notes_in_oplog NOTE [WHAT]: count(WHAT) of the oplog's orders rows with that note.
notes_in_oplog() {
	e2e_sql hub "SELECT count(${2:-*}) FROM cachewarp.oplog WHERE entity = 'orders' AND data::jsonb->>'note' = '$1'"
}

batch_gone() { ps -o stat= -p "$daemon" | grep -qv Z && echo running || echo ok; }
batch_mid_poll() { local n; n=$(notes_in_oplog fourth); [ "$n" -gt 0 ] && echo ok || echo "$n"; }

batch_crashes() {
	local rows=$1 pages third
	e2e_stop_daemon
	set_notes third
	start "$fp_bin" "batch_page_committed=abort@5"
	wait_for "the failpoint ends the process after the 5th page" batch_gone
	wait "$daemon" 2>/dev/null
	daemon=
	pages=$(notes_in_oplog third)
	[ "$pages" = 500 ] || fail "the crash after the 5th page left $pages rows of the poll, want 500"
	start
	wait_for "the poll resumes after the crash and converges" converged
	third=$(notes_in_oplog third "DISTINCT doc_id")
	[ "$third" = "$rows" ] || fail "the poll interrupted after 5 pages wrote $third rows in all, want $rows"
	[ "$(twice)" = 0 ] || fail "$(twice) row versions are in the oplog more than once after the crash"
	set_notes fourth
	wait_for "the next poll starts" batch_mid_poll
	kill -9 "$daemon"
	wait "$daemon" 2>/dev/null
	daemon=
	start
	wait_for "every row converges after the crashes" converged
	[ "$(twice)" = 0 ] || fail "$(twice) row versions are in the oplog more than once after kill -9"
}
