#!/usr/bin/env bash
# Exactly once across the MongoDB scan and its handoff to the change stream
# (docs/hub.md, "Exactly once"), with the failpoints of cachewarp-fp:
# 1. the scan held after its second page (after_scan_page_commit=sleep)
#    while documents are inserted and deleted, so the change stream stages
#    them with a resume token; then killed after its last page and sweep,
#    before the promotion and the first streamed batch (after_scan_done);
# 2. killed, then failed, right after the second hub commit of the stream
#    (after_hub_commit) while documents keep arriving;
# 3. a collection dropped right after 50 inserts, read in one batch: killed
#    once the inserts are committed with their own checkpoint, before the
#    drop's new generation (before_end_of_collection).
# After each, a normal cachewarp runs until the SQLite cache equals the
# collection, and the hub must hold every scanned document once, every
# change event once, and one generation.
set -u
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
[ -x "$fp_bin" ] || { echo "FAIL: $fp_bin not built" >&2; exit 1; }

daemon=
stop_processes() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_processes
e2e_init mongofp
e2e_start_pg
e2e_start_mongo
sql() { e2e_sql "$@"; }
mongo() { e2e_mongo; }
sql app "CREATE TABLE events (id bigint PRIMARY KEY, n integer NOT NULL)" >/dev/null
N=3000
for chunk in 0 1 2 3 4 5; do
	docs=$(seq $((chunk * 500 + 1)) $((chunk * 500 + 500)) |
		awk '{printf "%s{\"_id\": \"p%05d\", \"title\": \"seed\", \"n\": %d}", (NR > 1 ? "," : ""), $1, $1}')
	echo "{\"insert\": \"products\", \"docs\": [$docs]}" | mongo >/dev/null || exit 1
done
E2E_MONGO_ENTITY=products e2e_config "$work/cw.yaml" events public.events \
	"capture: {batch_size: 100, flush_interval: 20ms}" \
	"apply: {batch_size: 100, poll_interval: 100ms}" \
	"retry: {initial: 50ms, max: 300ms, give_up_after: 10m}"

source_rows() { echo '{"dump": "products", "fields": ["title", "n"]}' | mongo | LC_ALL=C sort; }
cache_rows() {
	sqlite3 -readonly "$work/dbs/products/db.sqlite" \
		"SELECT id || '|' || title || '|' || n FROM products" 2>/dev/null | LC_ALL=C sort
}
converged() { source_rows >"$work/source.txt"; cache_rows >"$work/cache.txt"; cmp -s "$work/source.txt" "$work/cache.txt"; }
converge() { e2e_converge 120; }
hub() { sql hub "$1"; }
twice() { e2e_twice; }
# Scanned rows carry no source position; streamed ones their event's resume token.
scanned() { hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND op = 'upsert' AND coalesce(source_pos, '') = ''"; }
scanned_twice() { hub "SELECT count(*) - count(DISTINCT doc_id) FROM cachewarp.oplog WHERE entity = 'products' AND op = 'upsert' AND coalesce(source_pos, '') = ''"; }
streamed() { hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND op = 'upsert' AND coalesce(source_pos, '') <> ''"; }
generations() { hub "SELECT count(DISTINCT version) FROM cachewarp.oplog WHERE entity = 'products'"; }
progress_docs() { hub "SELECT coalesce((SELECT (value->>'docs')::bigint FROM cachewarp.metadata WHERE key = 'mongo_scan:shop:products'), 0)" 2>/dev/null || echo 0; }

# 1. The scan, held after its second page, then killed at its end (the second
#    after_scan_done: the first is the empty table's, of the PostgreSQL source).
CW_FAILPOINTS="after_scan_page_commit=sleep3000@2,after_scan_done=abort@2" \
	"$fp_bin" run -c "$work/cw.yaml" >"$work/fp-scan.log" 2>&1 &
daemon=$!
deadline=$((SECONDS + 60))
until [ "$(progress_docs)" -ge 200 ]; do
	[ $SECONDS -lt $deadline ] || { fail "the scan never committed its second page"; break; }
	sleep 0.05
done
# During the scan: 5 new documents (after every scanned _id) and 5 deletes of scanned ones
# (the test server's update events lack documentKey).
echo '{"insert": "products", "docs": [{"_id": "z1", "title": "late", "n": 1}, {"_id": "z2", "title": "late", "n": 2}, {"_id": "z3", "title": "late", "n": 3}, {"_id": "z4", "title": "late", "n": 4}, {"_id": "z5", "title": "late", "n": 5}]}' | mongo >/dev/null
for i in 1 2 3 4 5; do
	echo "{\"delete\": \"products\", \"filter\": {\"_id\": \"p0000$i\"}}" | mongo >/dev/null
done
wait_exit() {
	local deadline=$((SECONDS + 90))
	while kill -0 "$daemon" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || { fail "$1 never fired"; kill -9 "$daemon" 2>/dev/null; break; }
		sleep 0.1
	done
	wait "$daemon" 2>/dev/null
	daemon=
}
wait_exit after_scan_done
grep -qs "failpoint fired: abort" "$work/fp-scan.log" || fail "after_scan_done: the process did not abort"
[ "$(hub "SELECT status FROM cachewarp.entities WHERE name = 'products'")" = scanning ] ||
	fail "after_scan_done: the entity is not left scanning"
if converge; then result=converged; else result=DIVERGED; fail "after_scan_done: the cache did not converge"; fi
[ "$(scanned_twice)" = 0 ] || fail "after_scan_done: $(scanned_twice) documents scanned twice"
[ "$(streamed)" = 5 ] || fail "after_scan_done: $(streamed) streamed upserts for 5 inserts"
deletes=$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND op = 'delete'")
[ "$deletes" = 5 ] || fail "after_scan_done: $deletes deletes for 5 delete events"
[ "$(generations)" = 1 ] || fail "after_scan_done: rows of $(generations) generations"
[ "$(twice)" = 0 ] || fail "after_scan_done: $(twice) changes are in the hub twice"
printf 'failpoint %-22s %-6s %s scanned=%s streamed=%s twice=%s\n' after_scan_done abort "$result" "$(scanned)" "$(streamed)" "$(twice)"

# 2. Inside the first streamed batches: documents arrive in 3 bursts of 100.
n=0
for action in abort error; do
	before=$(streamed)
	CW_FAILPOINTS="after_hub_commit=$action@2" "$fp_bin" run -c "$work/cw.yaml" >"$work/fp-stream-$action.log" 2>&1 &
	daemon=$!
	for burst in 1 2 3; do
		docs=$(seq 1 100 | awk -v b="$action$burst" '{printf "%s{\"_id\": \"s-%s-%03d\", \"title\": \"s\", \"n\": %d}", (NR > 1 ? "," : ""), b, $1, $1}')
		echo "{\"insert\": \"products\", \"docs\": [$docs]}" | mongo >/dev/null
		sleep 0.3
	done
	sleep 0.5
	kill -9 "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=
	fired=no
	grep -qs "failpoint after_hub_commit\|failpoint fired: abort" "$work/fp-stream-$action.log" && fired=yes
	if converge; then result=converged; else result=DIVERGED; fail "after_hub_commit=$action: the cache did not converge"; fi
	got=$(($(streamed) - before))
	[ "$got" = 300 ] || fail "after_hub_commit=$action: $got streamed upserts for 300 inserts"
	[ "$(twice)" = 0 ] || fail "after_hub_commit=$action: $(twice) changes are in the hub twice"
	[ "$fired" = yes ] || fail "after_hub_commit=$action: the failpoint never fired"
	printf 'failpoint %-22s %-6s fired=%s %s streamed=%s twice=%s\n' after_hub_commit "$action" "$fired" "$result" "$got" "$(twice)"
	n=$((n + 1))
done
[ "$(generations)" = 1 ] || fail "rows of $(generations) generations after the stream cases"

# 3. Written while cachewarp is stopped, so that one batch holds the inserts and the drop.
docs=$(seq 1 50 | awk '{printf "%s{\"_id\": \"d-%03d\", \"title\": \"d\", \"n\": %d}", (NR > 1 ? "," : ""), $1, $1}')
echo "{\"insert\": \"products\", \"docs\": [$docs]}" | mongo >/dev/null
echo '{"drop": "products"}' | mongo >/dev/null
CW_FAILPOINTS="before_end_of_collection=abort" "$fp_bin" run -c "$work/cw.yaml" >"$work/fp-drop.log" 2>&1 &
daemon=$!
wait_exit before_end_of_collection
grep -qs "failpoint fired: abort" "$work/fp-drop.log" || fail "before_end_of_collection: the process did not abort"
if converge; then result=converged; else result=DIVERGED; fail "before_end_of_collection: the cache did not converge"; fi
dropped=$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND op = 'upsert' AND doc_id LIKE 'd-%'")
[ "$dropped" = 50 ] || fail "before_end_of_collection: $dropped upserts for 50 inserts"
[ "$(twice)" = 0 ] || fail "before_end_of_collection: $(twice) changes are in the hub twice"
# The generation may have been bumped before the kill (then the restart bumps it again):
# either way one sweep for the drop.
sweeps=$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'products' AND op = 'sweep' AND version > 1")
[ "$sweeps" = 1 ] || fail "before_end_of_collection: $sweeps sweeps for one drop"
printf 'failpoint %-22s %-6s %s upserts=%s sweeps=%s twice=%s\n' before_end_of_collection abort "$result" "$dropped" "$sweeps" "$(twice)"
n=$((n + 1))
[ "$failures" -eq 0 ] && echo "mongo failpoints: all $((n + 1)) cases converged"
exit $((failures > 0))
