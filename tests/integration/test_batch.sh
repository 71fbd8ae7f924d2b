#!/usr/bin/env bash
# Batch mode end to end (docs/batch.md): a PostgreSQL table that is in no
# publication, polled every 200ms into a SQLite cache — inserts, updates,
# 2500 rows sharing one updated_at across pages of 100 (none skipped, none
# read twice), a crash right after a page's commit and a kill -9 in the
# middle of a poll, then a restart (no row twice in the oplog), deletes
# found by the key comparison (a composite key's too), a timestamp without
# time zone read in its configured zone, and an entity whose change column
# is missing (or dropped while running) failed with its reason while its
# siblings keep going.
set -u
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
# shellcheck source=../support/batch.sh
. "$support/batch.sh"
[ -x "$fp_bin" ] || { echo "FAIL: $fp_bin not built" >&2; exit 1; }

stop_processes() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_processes
e2e_init batch
e2e_start_pg
sql() { e2e_sql "$@"; }
sql app "CREATE TABLE orders (id bigint PRIMARY KEY, note text, updated_at timestamptz NOT NULL);
         CREATE TABLE local_rows (id int PRIMARY KEY, v text, changed timestamp);
         CREATE TABLE nocol (id int PRIMARY KEY, v text);
         CREATE TABLE live (id int PRIMARY KEY, v text);
         CREATE TABLE pairs (a int, b text, v text, updated_at timestamptz NOT NULL DEFAULT now(),
                             PRIMARY KEY (a, b))" >/dev/null
sql app "INSERT INTO orders SELECT g, 'first', '2026-01-01 00:00:00+00' FROM generate_series(1, 2500) g;
         INSERT INTO live VALUES (1, 'a')" >/dev/null

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_pg
    type: postgres
    url: $base/app
entities:
  - name: orders
    source: app_pg
    table: public.orders
    mode: batch
    polling_interval: 200ms
    delete_detection: {interval: 1s}
  - name: local_rows
    source: app_pg
    table: public.local_rows
    mode: batch
    polling_interval: 200ms
    change_detection: {column: changed, timezone: Asia/Tokyo}
  - name: nocol
    source: app_pg
    table: public.nocol
    mode: batch
    polling_interval: 200ms
  - {name: pairs, source: app_pg, table: public.pairs, mode: batch, polling_interval: 200ms,
     delete_detection: {interval: 1s}}
  - {name: live, source: app_pg, table: public.live}
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {batch_size: 100, flush_interval: 20ms}
apply: {poll_interval: 100ms}
retry: {initial: 50ms, max: 300ms}
YAML

source_rows() { sql app "SELECT id || '|' || note FROM orders ORDER BY id"; }
set_notes() { sql app "UPDATE orders SET note = '$1', updated_at = now()" >/dev/null; }

start
wait_for "2500 rows sharing one updated_at reach the cache" converged
[ "$(twice)" = 0 ] || fail "$(twice) row versions are in the oplog more than once after the first poll"
[ "$(sql app "SELECT count(*) FROM pg_publication_tables WHERE tablename = 'orders'")" = 0 ] ||
	fail "a batch table was added to a publication"

# ---- inserts and updates ----
sql app "UPDATE orders SET note = 'second', updated_at = now() WHERE id % 10 = 0;
         INSERT INTO orders VALUES (2501, 'new', now())" >/dev/null
wait_for "updates and an insert reach the cache" converged

# ---- the streamed sibling, and the entity without its column ----
sql app "INSERT INTO live VALUES (2, 'b')" >/dev/null
live_ok() { same "$(cache live "SELECT group_concat(v, ',') FROM (SELECT v FROM live ORDER BY id)")" "a,b"; }
wait_for "the streamed sibling keeps streaming" live_ok
port=$(grep -o '"msg":"listening".*"port":"[0-9]*"' "$work/run.log" | head -1 | grep -o '[0-9]*"$' | tr -d '"')
wait_for "entity nocol failed with the missing column as its reason" status_has nocol 'no column "updated_at"'

# ---- a timestamp without time zone, in Asia/Tokyo ----
sql app "INSERT INTO local_rows VALUES (1, 'x', '2026-01-01 09:00:00')" >/dev/null
local_ok() { same "$(cache local_rows "SELECT v FROM local_rows WHERE id = '1'")" x; }
wait_for "a row of a timestamp-without-zone column reaches the cache" local_ok
created=$(sql hub "SELECT created_at AT TIME ZONE 'UTC' FROM cachewarp.oplog WHERE entity = 'local_rows' AND op = 'upsert'")
[ "$created" = "2026-01-01 00:00:00" ] || fail "09:00 in Tokyo was captured as $created UTC, want 00:00"

# ---- a column dropped while running: that entity fails, the others go on ----
sql app "ALTER TABLE local_rows DROP COLUMN changed" >/dev/null
wait_for "a batch entity whose column was dropped fails with that reason" status_has local_rows 'no column "changed"'
sql app "UPDATE orders SET note = 'after drop', updated_at = now() WHERE id = 1" >/dev/null
wait_for "the other batch entities keep polling" converged
sql app "ALTER TABLE local_rows ADD COLUMN changed timestamp" >/dev/null

# ---- a crash right after a page's commit, then kill -9 in the middle of a poll ----
batch_crashes 2501

# ---- deletes ----
sql app "DELETE FROM orders WHERE id IN (3, 700, 2501)" >/dev/null
wait_for "deletes found by the key comparison reach the cache" converged
deletes=$(sql hub "SELECT string_agg(doc_id, ',' ORDER BY doc_id::int) FROM cachewarp.oplog WHERE entity = 'orders' AND op = 'delete'")
[ "$deletes" = "3,700,2501" ] || fail "deletes in the oplog: $deletes, want 3,700,2501"
# Two more comparisons after the one that found them must find nothing more.
compared() { grep -c '"msg":"keys compared".*"entity":"orders"' "$work/run.log"; }
seen=$(compared)
more_compared() { [ "$(compared)" -ge $((seen + 2)) ] && echo ok || echo "$(compared) comparisons"; }
wait_for "two more key comparisons" more_compared
deletes=$(sql hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'orders' AND op = 'delete'")
[ "$deletes" = 3 ] || fail "later comparisons wrote $deletes deletes in all, want 3"
[ "$(sql hub "SELECT count(*) FROM cachewarp.batch_keys WHERE entity = 'orders'")" = 2498 ] ||
	fail "the hub's key set holds $(sql hub "SELECT count(*) FROM cachewarp.batch_keys WHERE entity = 'orders'") keys, want 2498"

# A composite key: its keys are listed and compared one by one.
sql app "INSERT INTO pairs (a, b, v) VALUES (1, 'x', 'one'), (2, 'y', 'two'), (3, 'z', 'three')" >/dev/null
pairs() { cache pairs "SELECT group_concat(v, ',') FROM (SELECT v FROM pairs ORDER BY v)"; }
pairs_all() { same "$(pairs)" "one,three,two"; }
wait_for "rows of a composite-key table reach the cache" pairs_all
sql app "DELETE FROM pairs WHERE a = 2" >/dev/null
pairs_deleted() { same "$(pairs)" "one,three"; }
wait_for "a row deleted from a composite-key table leaves the cache" pairs_deleted

e2e_stop_daemon
[ "$failures" -eq 0 ] || exit 1
echo "batch: ok"
