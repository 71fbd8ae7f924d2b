#!/usr/bin/env bash
# Kill loop: a mixed workload runs against PostgreSQL and the MongoDB test
# server while cachewarp is killed with SIGKILL at random moments and
# restarted; at the end cachewarp runs once more until the SQLite caches
# have converged on the source table and collection.
# Prints the counts and exits 1 when any row is lost, divergent or
# resurrected, or when the hub holds any source change twice (the same
# entity, doc_id, source position, generation, op and data: exactly once,
# docs/hub.md).
#
#   kill_loop.sh [--kills N] [--seed S]
#
# Environment: CW_BINARY (default build/cachewarp), CW_SUPPORT_DIR, CW_KEEP.
set -u -o pipefail
kills=20
seed=${RANDOM}
while [ $# -gt 0 ]; do
	case $1 in
	--kills) kills=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	*) echo "usage: kill_loop.sh [--kills N] [--seed S]" >&2; exit 2 ;;
	esac
done
RANDOM=$seed
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon= workload=
stop_processes() {
	[ -n "$workload" ] && kill "$workload" 2>/dev/null
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
}
E2E_STOP=stop_processes
e2e_init kill-loop
e2e_start_pg
sql() { e2e_sql "$@"; }
sql app "CREATE TABLE items (id bigint PRIMARY KEY, val integer NOT NULL, note text,
         payload jsonb, big text)" >/dev/null
sql app "INSERT INTO items SELECT g, 0, 'seed ' || g, jsonb_build_object('g', g), NULL
         FROM generate_series(1, 5000) g" >/dev/null
# The MongoDB test server's collection: inserts and deletes (it reports
# updates wrongly, docs/testing.md), so a re-insert stands for an update.
e2e_start_mongo
seq 1 500 | awk 'BEGIN { printf "{\"insert\": \"products\", \"docs\": [" }
	{ printf "%s{\"_id\": \"m%d\", \"title\": \"seed %d\", \"n\": 0}", (NR > 1 ? "," : ""), $1, $1 }
	END { print "]}" }' | e2e_mongo
E2E_MONGO_ENTITY=products e2e_config "$work/cw.yaml" items public.items \
	"capture: {batch_size: 500, snapshot_batch_size: 500, flush_interval: 20ms}" \
	"apply: {batch_size: 500, poll_interval: 100ms}" \
	"retry: {initial: 50ms, max: 500ms, give_up_after: 10m}"

# The workload: inserts, updates (hot keys too), deletes, a large transaction
# now and then, TOASTed values, and one TRUNCATE with a reload in the middle.
run_workload() {
	local i=0 next=100000
	while [ ! -e "$work/stop-workload" ]; do
		i=$((i + 1))
		case $((i % 10)) in
		0) sql app "BEGIN; INSERT INTO items SELECT g, 1, 'bulk', NULL, NULL FROM generate_series($next, $((next + 1999))) g; COMMIT" ;;
		1 | 2) sql app "UPDATE items SET val = val + 1 WHERE id IN (1, 2, 3)" ;;
		3) sql app "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 20)" ;;
		4) sql app "UPDATE items SET big = repeat(md5(random()::text), 400) WHERE id = (SELECT id FROM items ORDER BY random() LIMIT 1)" ;;
		5) sql app "UPDATE items SET note = 'upd ' || now() WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 50)" ;;
		*) sql app "INSERT INTO items VALUES ($((next + 5000 + i)), 2, 'single', '{\"x\": [1, 2]}', NULL) ON CONFLICT DO NOTHING" ;;
		esac >/dev/null 2>&1
		[ $((i % 10)) -eq 0 ] && next=$((next + 2000))
		m=$((RANDOM % 600 + 1))
		printf '%s\n' "{\"delete\": \"products\", \"filter\": {\"_id\": \"m$m\"}}" \
			"{\"insert\": \"products\", \"docs\": [{\"_id\": \"m$m\", \"title\": \"round $i\", \"n\": $i}]}" \
			"{\"delete\": \"products\", \"filter\": {\"_id\": \"m$((RANDOM % 600 + 1))\"}}" |
			e2e_mongo >/dev/null 2>&1
		[ "$i" -eq 150 ] && sql app "BEGIN; TRUNCATE items; INSERT INTO items SELECT g, 3, 'reloaded', NULL, NULL FROM generate_series(1, 3000) g; COMMIT" >/dev/null 2>&1
		sleep 0.0$((RANDOM % 5))
	done
}
run_workload &
workload=$!

for k in $(seq 1 "$kills"); do
	"$bin" run -c "$work/cw.yaml" >>"$work/cachewarp.log" 2>&1 &
	daemon=$!
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	kill -9 "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=
	printf '.' >&2
done
echo >&2
touch "$work/stop-workload"      # the loop finishes its statement and exits
wait "$workload" 2>/dev/null
workload=

# Converge: run until the cache equals the source, or give up after 3 minutes.
"$bin" run -c "$work/cw.yaml" >>"$work/cachewarp.log" 2>&1 &
daemon=$!
# Rows as "entity:id|values", sorted the same way on both sides.
source_rows() {
	{
		sql app "SELECT 'items:' || id || '|' || val || '|' || coalesce(note, '<null>') || '|' ||
		         coalesce(md5(big), '<null>') FROM items"
		echo '{"dump": "products", "fields": ["title", "n"]}' | e2e_mongo | sed 's/^/products:/'
	} | LC_ALL=C sort
}
cache_rows() {
	{
		sqlite3 -readonly "$work/dbs/items/db.sqlite" \
			"SELECT id || '|' || val || '|' || coalesce(note, '<null>') || '|' || coalesce(big, '<null>') FROM items" 2>/dev/null |
			while IFS='|' read -r id val note big; do
				[ "$big" = '<null>' ] || big=$(printf '%s' "$big" | md5sum | cut -d' ' -f1)
				echo "items:$id|$val|$note|$big"
			done
		sqlite3 -readonly "$work/dbs/products/db.sqlite" \
			"SELECT 'products:' || id || '|' || coalesce(title, '~') || '|' || coalesce(n, '~') FROM products" 2>/dev/null
	} | LC_ALL=C sort
}
source_rows >"$work/source.txt"   # the workload has stopped: the source no longer changes
deadline=$((SECONDS + 180))
converged=0
while [ $SECONDS -lt $deadline ]; do
	cache_rows >"$work/cache.txt"
	if cmp -s "$work/source.txt" "$work/cache.txt"; then converged=1; break; fi
	sleep 1
done
kill -TERM "$daemon" 2>/dev/null
wait "$daemon" 2>/dev/null
daemon=

cut -d'|' -f1 "$work/source.txt" | sort >"$work/source.ids"
cut -d'|' -f1 "$work/cache.txt" | sort >"$work/cache.ids"
lost=$(comm -23 "$work/source.ids" "$work/cache.ids" | wc -l)
resurrected=$(comm -13 "$work/source.ids" "$work/cache.ids" | wc -l)
divergent=$(comm -12 "$work/source.ids" "$work/cache.ids" | wc -l)
divergent=$((divergent - $(comm -12 <(sort "$work/source.txt") <(sort "$work/cache.txt") | wc -l)))
changes=$(sql hub "SELECT count(*) FROM cachewarp.oplog")
duplicates=$(sql hub "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM cachewarp.oplog
                      WHERE op <> 'sweep' GROUP BY entity, doc_id, source_pos, version, op, data
                      HAVING count(*) > 1) d")
echo "kills=$kills changes=$changes rows=$(wc -l <"$work/source.txt") (postgres+mongodb) lost=$lost divergent=$divergent resurrected=$resurrected duplicates_seen=$duplicates seed=$seed"
if [ "$converged" != 1 ]; then
	fail "the cache did not converge"
	echo "kill loop: the cache did not converge; diff (source < > cache):" >&2
	diff "$work/source.txt" "$work/cache.txt" | head -20 >&2
	exit 1
fi
if [ "$duplicates" != 0 ]; then
	fail "$duplicates changes are in the hub twice"
	echo "kill loop: the first changes the hub holds twice:" >&2
	sql hub "SELECT entity || ' ' || doc_id || ' ' || source_pos || ' x' || count(*) FROM cachewarp.oplog
	         WHERE op <> 'sweep' GROUP BY entity, doc_id, source_pos, version, op, data
	         HAVING count(*) > 1 LIMIT 5" >&2
	exit 1
fi
