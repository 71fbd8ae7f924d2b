#!/usr/bin/env bash
# The main job end to end on local data: a throwaway PostgreSQL 15 cluster
# holds the application database (the source) and the oplog hub; cachewarp
# snapshots the source table, streams live changes through the hub and keeps
# a SQLite cache per entity under .demo/dbs. The demo changes rows while
# cachewarp runs and shows the cache catching up, then stops everything.
# Everything lives under .demo/ and is removed at the start of the next run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/cachewarp
support=$root/tests/support
demo=$root/.demo
psql_bin=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || dirname "$(command -v psql)")/psql

say() { printf '\n== %s\n' "$*"; }

[ -x "$bin" ] || { echo "demo: build first (make build)" >&2; exit 1; }
[ -d "$demo/pg" ] && bash "$support/pg.sh" stop "$demo/pg" >/dev/null 2>&1 || true
rm -rf "$demo"
mkdir -p "$demo"
chmod 755 "$demo"
daemon=
cleanup() {
	[ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	bash "$support/pg.sh" stop "$demo/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "starting a throwaway PostgreSQL 15 cluster (source and hub)"
url=$(bash "$support/pg.sh" start --owner $$ "$demo/pg")
base=${url%/*}
sql() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$base/$1" -c "$2"; }
sql postgres "CREATE DATABASE app" >/dev/null
sql postgres "CREATE DATABASE hub" >/dev/null
sql app "CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL,
         email text, balance numeric(12,2), tags jsonb, updated_at timestamptz DEFAULT now())"
sql app "INSERT INTO customers (id, name, email, balance, tags)
         SELECT g, 'customer ' || g, 'c' || g || '@example.com', g * 1.25,
                jsonb_build_array('tier' || (g % 3))
         FROM generate_series(1, 20000) g"
echo "source: app.customers with 20000 rows"

cat >"$demo/cachewarp.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_pg
    type: postgres
    url: $base/app
entities:
  - name: customers
    source: app_pg
    table: public.customers
targets:
  - name: local
    type: sqlite
    dir: $demo/dbs
log: {level: info, format: text}
capture: {flush_interval: 50ms}
apply: {poll_interval: 200ms}
YAML
"$bin" config check -c "$demo/cachewarp.yaml"

say "cachewarp run (log: .demo/cachewarp.log)"
"$bin" run -c "$demo/cachewarp.yaml" >"$demo/cachewarp.log" 2>&1 &
daemon=$!

cache=$demo/dbs/customers/db.sqlite
count_cache() { sqlite3 -readonly "$cache" "SELECT count(*) FROM customers" 2>/dev/null || echo 0; }
# wait_for DESCRIPTION SQLITE-QUERY EXPECTED: polls the cache until the query prints EXPECTED.
wait_for() {
	local started=$SECONDS got=
	while [ $((SECONDS - started)) -lt 120 ]; do
		kill -0 "$daemon" 2>/dev/null || { echo "demo: cachewarp exited; its log:" >&2; tail -20 "$demo/cachewarp.log" >&2; exit 1; }
		got=$(sqlite3 -readonly "$cache" "$2" 2>/dev/null || true)
		[ "$got" = "$3" ] && { echo "$1: ok after $((SECONDS - started))s"; return 0; }
		sleep 0.2
	done
	echo "demo: $1: cache shows '$got', want '$3'; log:" >&2
	tail -20 "$demo/cachewarp.log" >&2
	exit 1
}
wait_for "snapshot of 20000 rows in the SQLite cache" "SELECT count(*) FROM customers" 20000

say "changing the source while cachewarp runs"
sql app "UPDATE customers SET balance = balance + 100, name = 'vip ' || id WHERE id <= 500"
sql app "DELETE FROM customers WHERE id > 19900"
sql app "INSERT INTO customers (id, name, email, balance) VALUES (30001, 'new customer', NULL, 0)"
wait_for "500 updates" "SELECT count(*) FROM customers WHERE name LIKE 'vip %'" 500
wait_for "100 deletes and 1 insert" "SELECT count(*) FROM customers" 19901
echo "row 1 in the cache:"
sqlite3 -readonly -header -column "$cache" "SELECT id, name, email, balance, tags FROM customers WHERE id IN (1, 30001)"

say "status"
"$bin" status -c "$demo/cachewarp.yaml"

say "stopping cachewarp (SIGTERM)"
kill -TERM "$daemon"
wait "$daemon" && echo "cachewarp stopped cleanly"
daemon=
echo
echo "demo finished: the cache is $cache (open it with sqlite3 -readonly)"
