#!/usr/bin/env bash
# Network faults between cachewarp and its databases, through Toxiproxy:
# during the snapshot, the PostgreSQL source link throttled and then reset;
# while streaming, the hub link cut for longer than a keepalive interval, the
# source link reset, timed out and slowed, the hub link timed out, the
# MongoDB link cut and reset. cachewarp must keep running, report the outage
# on /readyz and /metrics while it lasts, keep its memory bounded, and
# converge once the links are back: each SQLite cache equals its source
# table or collection.
set -u
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
toxi=$support/toxiproxy.sh

daemon= writer=
stop_processes() {
	[ -n "$writer" ] && kill "$writer" 2>/dev/null
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
}
E2E_STOP=stop_processes
e2e_init netfault
e2e_start_pg
bash "$toxi" start --owner $$ "$work/toxi" >/dev/null || exit 1
pg_addr=${pg_url#postgresql://*@}
pg_addr=${pg_addr%%/*}
hub_addr=$(bash "$toxi" proxy "$work/toxi" hub "$pg_addr") || exit 1
source_addr=$(bash "$toxi" proxy "$work/toxi" source "$pg_addr") || exit 1
e2e_start_mongo
mongo_direct=$mongo_url
mongo_addr=${mongo_url#mongodb://}
mongo_addr=${mongo_addr%%/*}
mongo_proxy=$(bash "$toxi" proxy "$work/toxi" mongo "$mongo_addr") || exit 1
mongo_url="mongodb://$mongo_proxy/?directConnection=true&connectTimeoutMS=2000&serverSelectionTimeoutMS=3000"
mongo() { "$root/build/cw-mongo-exec" "$mongo_direct" shop; }
echo '{"insert": "products", "docs": [{"_id": "seed", "title": "seed", "n": 0}]}' | mongo
sql() { e2e_sql "$@"; }
sql app "CREATE TABLE events (id bigint PRIMARY KEY, n integer NOT NULL, body text)" >/dev/null
sql app "INSERT INTO events SELECT g, 0, 'seed ' || repeat(md5(g::text), 3)
	FROM generate_series(1, 2000) g" >/dev/null

api_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
keepalive="keepalives_idle=2&keepalives_interval=1&keepalives_count=2"
E2E_HUB_URL="postgresql://postgres@$hub_addr/hub?$keepalive" \
E2E_SOURCE_URL="postgresql://postgres@$source_addr/app?$keepalive" \
E2E_API_LISTEN="127.0.0.1:$api_port" E2E_MONGO_ENTITY=products \
	e2e_config "$work/cw.yaml" events public.events \
	"capture: {flush_interval: 20ms}" "apply: {poll_interval: 100ms}" \
	"retry: {initial: 100ms, max: 1s, give_up_after: 10m}"

# 1. The snapshot's reads throttled to 20 KB/s (about 10 s for the table),
#    so that the reset below lands while the table is being scanned.
bash "$toxi" toxic "$work/toxi" source bandwidth rate=20
"$bin" run -c "$work/cw.yaml" >"$work/cachewarp.log" 2>&1 &
daemon=$!

# A steady writer straight to PostgreSQL (not through the proxies).
(
	i=2001
	while [ ! -e "$work/stop" ]; do
		sql app "INSERT INTO events VALUES ($i, 1, 'w'); UPDATE events SET n = n + 1 WHERE id = $((i % 2000 + 1))" >/dev/null 2>&1
		[ $((i % 5)) -eq 0 ] && echo "{\"insert\": \"products\", \"docs\": [{\"_id\": \"e$i\", \"title\": \"w\", \"n\": $i}]}" | mongo >/dev/null 2>&1
		i=$((i + 1))
		sleep 0.02
	done
) &
writer=$!

readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$api_port/readyz"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$daemon/status" 2>/dev/null || echo 0; }
cache_count() { sqlite3 -readonly "$work/dbs/events/db.sqlite" "SELECT count(*) FROM events" 2>/dev/null || echo 0; }
wait_until() { # DESCRIPTION SECONDS COMMAND...
	local what=$1 limit=$2 deadline
	shift 2
	deadline=$((SECONDS + limit))
	until "$@"; do
		[ $SECONDS -lt $deadline ] || { fail "$what"; return 1; }
		kill -0 "$daemon" 2>/dev/null || { fail "cachewarp died: $(tail -3 "$work/cachewarp.log")"; return 1; }
		sleep 0.2
	done
}
ready() { [ "$(readyz)" = 200 ]; }
not_ready() { [ "$(readyz)" = 503 ]; }
snapshot_done() { [ "$(cache_count)" -ge 2000 ]; }

snapshot_started() { [ "$(cache_count)" -gt 0 ]; }
metric() { curl -s --max-time 5 "http://127.0.0.1:$api_port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
hub_down_metric() { [ "$(metric cachewarp_hub_up)" = 0 ]; }
wait_until "the snapshot never started" 60 snapshot_started
snapshot_rows_at_reset=$(cache_count)
bash "$toxi" toxic "$work/toxi" source reset_peer timeout=100
sleep 2
bash "$toxi" clear "$work/toxi" source
wait_until "never ready" 60 ready
wait_until "the snapshot never reached the cache" 90 snapshot_done
rss_before=$(rss_kb)

# 2. The hub link cut for 8 s (longer than the keepalive interval) while streaming.
bash "$toxi" down "$work/toxi" hub
wait_until "/readyz did not report the hub outage" 30 not_ready
wait_until "/metrics did not report the hub outage" 30 hub_down_metric
sleep 8
bash "$toxi" up "$work/toxi" hub
wait_until "not ready again after the hub came back" 60 ready
[ "$(metric cachewarp_hub_up)" = 1 ] || fail "/metrics still reports the hub down"

# 3. The source link reset; then it stops carrying data and closes after 2 s
#    (Toxiproxy's timeout toxic), and the same for the hub; then slowed.
bash "$toxi" toxic "$work/toxi" source reset_peer timeout=100
sleep 3
bash "$toxi" clear "$work/toxi" source
bash "$toxi" toxic "$work/toxi" source timeout timeout=2000
sleep 4
bash "$toxi" clear "$work/toxi" source
bash "$toxi" toxic "$work/toxi" hub timeout timeout=2000
sleep 4
bash "$toxi" clear "$work/toxi" hub
wait_until "not ready again after the timeouts" 60 ready
bash "$toxi" toxic "$work/toxi" source latency latency=300
bash "$toxi" toxic "$work/toxi" hub latency latency=100
sleep 5
bash "$toxi" clear "$work/toxi" source
bash "$toxi" clear "$work/toxi" hub

# 4. The MongoDB link cut for 6 s, then reset once.
bash "$toxi" down "$work/toxi" mongo
sleep 6
bash "$toxi" up "$work/toxi" mongo
bash "$toxi" toxic "$work/toxi" mongo reset_peer timeout=200
sleep 2
bash "$toxi" clear "$work/toxi" mongo

touch "$work/stop"
wait "$writer" 2>/dev/null
writer=
rss_after=$(rss_kb)

# Converged: each cache equals its table or collection.
source_rows() {
	sql app "SELECT id || '|' || n || '|' || body FROM events ORDER BY id"
	echo '{"dump": "products", "fields": ["title", "n"]}' | mongo | LC_ALL=C sort
}
cache_rows() {
	sqlite3 -readonly "$work/dbs/events/db.sqlite" \
		"SELECT id || '|' || n || '|' || body FROM events ORDER BY CAST(id AS INTEGER)" 2>/dev/null
	sqlite3 -readonly "$work/dbs/products/db.sqlite" \
		"SELECT id || '|' || title || '|' || n FROM products" 2>/dev/null | LC_ALL=C sort
}
source_rows >"$work/source.txt"
converged() { cache_rows >"$work/cache.txt"; cmp -s "$work/source.txt" "$work/cache.txt"; }
wait_until "the cache did not converge: $(diff "$work/source.txt" "$work/cache.txt" 2>/dev/null | head -3)" 120 converged

kill -0 "$daemon" 2>/dev/null || fail "cachewarp is not running after the faults"
[ "$rss_after" -lt 262144 ] || fail "RSS grew to ${rss_after} kB (from ${rss_before} kB)"
grep -q '"level":"warn"' "$work/cachewarp.log" || fail "the outage left no warning in the log"
kill -TERM "$daemon"
wait "$daemon"
rc=$?
daemon=
[ "$rc" -eq 0 ] || fail "cachewarp exited $rc after SIGTERM"
echo "network faults: rows=$(wc -l <"$work/source.txt") snapshot_rows_at_reset=$snapshot_rows_at_reset" \
	"rss_before=${rss_before}kB rss_after=${rss_after}kB"
[ "$failures" -eq 0 ] && echo "network faults: all checks passed"
exit $((failures > 0))
