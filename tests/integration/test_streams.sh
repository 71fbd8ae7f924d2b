#!/usr/bin/env bash
# Streams (an entity on one target) end to end: a row the target refuses
# (a trigger raising a permanent code) becomes a dead letter while the rest
# of its batch lands; a stream whose every write fails stops alone with
# on_error: fail_stream, visible in /v1/status and /readyz, while the others
# keep flowing; a dead letter replayed after the cause is fixed lands, and
# one a newer change superseded is dropped; a transformation reshapes a
# MongoDB document for one target only, a document it refuses becomes a
# dead letter of that target, and once the spec is corrected by a live
# reload (only that target restarts) the letter replays through it.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init streams
e2e_start_pg
e2e_start_mongo
e2e_start_target_pg
sql() { e2e_sql "$@"; }
tsql() { "$psql" -X -q -A -t -v ON_ERROR_STOP=1 "$tbase/postgres" -c "$1"; }
cache() { sqlite3 "$work/dbs/$1/db.sqlite" "$2"; }

sql app "CREATE TABLE orders (id int PRIMARY KEY, n int);
         CREATE TABLE refused (id int PRIMARY KEY, n int);
         CREATE TABLE stopped (id int PRIMARY KEY, n int);
         CREATE TABLE flaky (id int PRIMARY KEY, n int);
         INSERT INTO orders VALUES (1, 1); INSERT INTO refused VALUES (1, 1);
         INSERT INTO stopped VALUES (1, 1); INSERT INTO flaky VALUES (1, 1)" >/dev/null

cat >"$work/cw.yaml" <<YAML
version: 1
hub:
  url: $base/hub
sources:
  - name: app_pg
    type: postgres
    url: $base/app
  - name: shop
    type: mongodb
    url: $mongo_url
    database: shop
    watch: collection
entities:
  - {name: orders, source: app_pg, table: public.orders}
  - {name: refused, source: app_pg, table: public.refused}
  - {name: stopped, source: app_pg, table: public.stopped}
  - {name: flaky, source: app_pg, table: public.flaky}
  - {name: products, source: shop, collection: products}
transformations:
  - id: slim
    type: kazaam
    spec: |
      [{"operation": "shift", "require": true,
        "spec": {"name": "title", "price": "pricing.amount"}}]
    error_handling: {on_error: dead_letter}
targets:
  - name: pg1
    type: postgres
    url: $tbase/postgres
    streams:
      - entity: refused
        on_error: dead_letter
        retry_policy:
          max_attempts: 3
          initial_delay: 50ms
          max_delay: 200ms
          permanent_error_codes: [CW001]
      - entity: stopped
        on_error: fail_stream
        retry_policy: {max_attempts: 2, initial_delay: 50ms, max_delay: 100ms}
      - entity: flaky           # on_error: retry, the default: nothing is dropped
        retry_policy: {initial_delay: 50ms, max_delay: 200ms}
  - name: cache
    type: sqlite
    dir: $work/dbs
    streams:
      - {entity: products, transformation_id: slim}
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML

"$bin" config check -c "$work/cw.yaml" >/dev/null || fail "config check refuses the streams file"
"$bin" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
daemon=$!

rows() { tsql "SELECT coalesce(string_agg(id || '=' || n, ',' ORDER BY id), '') FROM public.$1"; }
letters() { sql hub "SELECT coalesce(string_agg(entity || '/' || doc_id || ':' || stage || ':' || coalesce(error_code, '-') || ':' || status, ',' ORDER BY id), '') FROM cachewarp.dead_letters WHERE target = '$1'"; }
wait_for "first rows reach pg1" eval 'same "$(rows orders)/$(rows refused)/$(rows stopped)/$(rows flaky)" "1=1/1=1/1=1/1=1"'

# Triggers the user added to the target: one refuses negative numbers, one every row.
tsql "CREATE FUNCTION refuse_negative() RETURNS trigger LANGUAGE plpgsql AS \$\$
      BEGIN IF NEW.n < 0 THEN RAISE EXCEPTION 'negative n' USING ERRCODE = 'CW001'; END IF;
      RETURN NEW; END \$\$;
      CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS \$\$
      BEGIN RAISE EXCEPTION 'closed for writes' USING ERRCODE = 'CW002'; END \$\$;
      CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON public.refused
        FOR EACH ROW EXECUTE FUNCTION refuse_negative();
      CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON public.stopped
        FOR EACH ROW EXECUTE FUNCTION refuse_all();
      CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON public.flaky
        FOR EACH ROW EXECUTE FUNCTION refuse_all()" >/dev/null

# ---- a refused row: a dead letter, the rest of its batch lands ----
sql app "BEGIN; INSERT INTO refused VALUES (10, 1), (11, -1), (12, 2); COMMIT" >/dev/null
wait_for "the refused row's neighbours land in pg1" eval 'same "$(rows refused)" "1=1,10=1,12=2"'
wait_for "the refused row is a dead letter of pg1" eval 'same "$(letters pg1)" "refused/11:write:CW001:failed"'
wait_for "the sqlite cache, without the trigger, has every row" \
	eval 'same "$(cache refused "SELECT group_concat(id, \",\") FROM (SELECT id FROM refused ORDER BY id)")" "1,10,11,12"'

# ---- fail_stream stops one stream; the others go on ----
sql app "INSERT INTO stopped VALUES (2, 2)" >/dev/null
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.log" | grep -o '[0-9]*"$' | tr -d '"')
status_streams() {
	curl -s "http://127.0.0.1:$port/v1/status" |
		python3 -c 'import json,sys; print(",".join(s["target"] + "/" + s["entity"] for s in json.load(sys.stdin)["failed_streams"]))'
}
wait_for "the stopped stream is listed in /v1/status" eval 'same "$(status_streams)" "pg1/stopped"'
code=$(curl -s -o "$work/readyz.json" -w '%{http_code}' "http://127.0.0.1:$port/readyz")
[ "$code" = 503 ] || fail "/readyz answers $code with a failed stream, want 503"
grep -q 'stream stopped of target pg1 failed' "$work/readyz.json" || fail "/readyz does not name the failed stream: $(cat "$work/readyz.json")"
sql app "INSERT INTO orders VALUES (2, 2); INSERT INTO refused VALUES (13, 3)" >/dev/null
wait_for "the other streams of pg1 keep flowing" eval 'same "$(rows orders)/$(rows refused)" "1=1,2=2/1=1,10=1,12=2,13=3"'
[ "$(rows stopped)" = "1=1" ] || fail "the stopped stream wrote $(rows stopped)"
metric() { curl -s "http://127.0.0.1:$port/metrics" | grep -F "$1" | awk '{print $2}' | head -1; }
[ "$(metric 'cachewarp_stream_failed{target="pg1",entity="stopped"}')" = 1 ] || fail "cachewarp_stream_failed is not 1 for pg1/stopped"
[ -n "$(metric 'cachewarp_stream_events_total{target="pg1",entity="refused",state="failed"}')" ] ||
	fail "no failed events counted for pg1/refused"

# ---- on_error: retry: the stream waits alone, visibly, and recovers ----
sql app "INSERT INTO flaky VALUES (2, 2)" >/dev/null
target_error() {
	curl -s "http://127.0.0.1:$port/v1/status" | python3 -c 'import json,sys
c=[c for c in json.load(sys.stdin)["components"] if c["name"]=="pg1"][0]
print((c["last_error"] or "")[:24] + "|" + str(c["healthy"]))'
}
wait_for "a retrying stream shows in the target's last_error" eval 'same "$(target_error)" "stream flaky retrying (a|True"'
sql app "INSERT INTO orders VALUES (3, 3)" >/dev/null
wait_for "the other streams flow while one retries" eval 'same "$(rows orders)" "1=1,2=2,3=3"'
[ "$(rows flaky)" = "1=1" ] || fail "the retrying stream skipped ahead: $(rows flaky)"
tsql "DROP TRIGGER refuse ON public.flaky" >/dev/null
wait_for "the retrying stream lands once the target takes it" eval 'same "$(rows flaky)" "1=1,2=2"'
wait_for "its status line is cleared" eval 'same "$(target_error)" "|True"'
grep -q '"msg":"stream recovered","target":"pg1","entity":"flaky"' "$work/run.log" || fail "no stream recovered log line"
[ "$(letters pg1 | grep -c flaky)" = 0 ] || fail "on_error: retry set a change aside"

# ---- replay: the cause fixed, the dead letter lands ----
tsql "DROP TRIGGER refuse ON public.refused" >/dev/null
"$bin" deadletter replay --target pg1 -c "$work/cw.yaml" >"$work/replay.out" 2>&1 ||
	fail "deadletter replay failed: $(cat "$work/replay.out")"
wait_for "the replayed dead letter lands" eval 'same "$(rows refused)" "1=1,10=1,11=-1,12=2,13=3"'
wait_for "the replayed dead letter is gone" eval 'same "$(letters pg1)" ""'

# ---- replay of a dead letter a newer change superseded ----
tsql "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON public.refused
      FOR EACH ROW EXECUTE FUNCTION refuse_negative()" >/dev/null
sql app "INSERT INTO refused VALUES (14, -4)" >/dev/null
wait_for "a second refused row is a dead letter" eval 'same "$(letters pg1)" "refused/14:write:CW001:failed"'
sql app "UPDATE refused SET n = 4 WHERE id = 14" >/dev/null
wait_for "its newer state lands" eval 'same "$(rows refused)" "1=1,10=1,11=-1,12=2,13=3,14=4"'
sql hub "UPDATE cachewarp.dead_letters SET status = 'replay' WHERE target = 'pg1'" >/dev/null
wait_for "the superseded dead letter is dropped" eval 'same "$(letters pg1)" ""'
[ "$(rows refused)" = "1=1,10=1,11=-1,12=2,13=3,14=4" ] || fail "the superseded letter overwrote row 14: $(rows refused)"

# ---- a transformation for one target only ----
e2e_mongo <<'CMDS' || fail "mongo inserts"
{"insert": "products", "docs": [{"_id": "p1", "title": "Lamp", "pricing": {"amount": {"$numberDecimal": "2.50"}}, "sku": "x"}]}
{"insert": "products", "docs": [{"_id": "p2", "title": "No price"}]}
CMDS
shaped() { same "$(cache products "SELECT doc FROM products WHERE id = 'p1'")" '{"name":"Lamp","price":{"$numberDecimal":"2.50"}}'; }
wait_for "the transformed document reaches the cache, its decimal's digits kept" shaped
wait_for "the document the transformation refuses is a dead letter of the cache" \
	eval 'same "$(letters cache)" "products/p2:transform:-:failed"'
whole() { same "$(tsql "SELECT sku FROM public.products WHERE id = 'p1'")" x; }
wait_for "pg1, without a transformation, keeps the whole document" whole
id=$(sql hub "SELECT id FROM cachewarp.dead_letters WHERE target = 'cache'")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/deadletters/$id/replay")
[ "$code" = 200 ] || [ "$code" = 202 ] || fail "POST /v1/deadletters/$id/replay answered $code"
refused_again() { same "$(sql hub "SELECT status || ':' || attempts FROM cachewarp.dead_letters WHERE target = 'cache'")" failed:2; }
wait_for "a transform dead letter replayed and refused again counts an attempt" refused_again

# ---- the spec fixed by a live reload, the dead letter replayed through it ----
sed -i 's/"operation": "shift", "require": true,/"operation": "shift",/' "$work/cw.yaml"
grep -q '"require"' "$work/cw.yaml" && fail "the test could not edit the spec"
kill -HUP "$daemon"
reload_line() { grep '"msg":"configuration reloaded"' "$work/run.log" | tail -1; }
reloaded() { [ -n "$(reload_line)" ] && echo ok; }
wait_for "the changed transformation is reloaded" reloaded
reload_line | grep -q '"restarted":"target:cache"' || fail "the reload did not restart only the cache: $(reload_line)"
reload_line | grep -q '"unchanged":"source:app_pg source:shop target:pg1"' ||
	fail "the reload touched streams it did not change: $(reload_line)"
"$bin" deadletter replay --target cache -c "$work/cw.yaml" >"$work/replay2.out" 2>&1 ||
	fail "deadletter replay failed: $(cat "$work/replay2.out")"
wait_for "the dead letter lands through the corrected spec" eval 'same "$(letters cache)" ""'
fixed() { same "$(cache products "SELECT doc FROM products WHERE id = 'p2'")" '{"name":"No price","price":null}'; }
wait_for "the replayed document has the corrected spec's shape" fixed

grep -q 'stream failed: stopped' "$work/run.log" || fail "no log line for the stopped stream"
kill -TERM "$daemon"
wait "$daemon"
daemon=
exit $((failures > 0))
