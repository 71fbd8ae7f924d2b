#!/usr/bin/env bash
# cachewarp verify end to end, PostgreSQL source -> a SQLite target and a
# PostgreSQL target and a MongoDB backup, and a MongoDB collection -> the
# SQLite target and the MongoDB backup: equal
# tables verify equal; a missing row, an extra row, a changed value, a stale
# generation and a changed column of a typed entity planted in the cache are
# found, exactly those; --repair writes them into the hub as synthetic
# changes (origin 'verify') that the running target applies, and a second
# verify is clean; a second run of a pair already running is refused; an
# unknown entity or target exits 2; the REST API starts, shows, refuses (409) and cancels runs,
# a canceled repair writes nothing; metrics and status show the runs; verify
# during continuous churn reports nothing; the scheduled health check
# repairs a planted difference by itself.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
# shellcheck source=../support/verify.sh
. "$support/verify.sh"

holder=
stop_all() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	verify_stop
}
E2E_STOP=stop_all
e2e_init verify
e2e_start_pg
e2e_start_mongo
sql() { e2e_sql "$@"; }
cache() { sqlite3 -cmd ".timeout 5000" "$work/dbs/$1/db.sqlite" "$2"; }

sql app "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), qty int, note text);
         INSERT INTO items SELECT g, 'item ' || g, g * 1.25, g % 7, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' END
         FROM generate_series(1, 3000) g;
         CREATE TABLE priced (code text PRIMARY KEY, amount numeric, qty bigint);
         INSERT INTO priced SELECT 'k' || g, g + 0.5, g FROM generate_series(1, 200) g" >/dev/null
sql postgres "CREATE DATABASE tgt" >/dev/null
e2e_config "$work/cw.yaml" items public.items
cat >>"$work/cw.yaml" <<YAML
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML
# A MongoDB collection kept whole (the document layout), with every kind of number.
sed -i "s|^entities:|  - name: shop\n    type: mongodb\n    url: $mongo_url\n    database: shop\n    watch: collection\nentities:\n  - {name: products, source: shop, collection: products}|" "$work/cw.yaml"
e2e_mongo <<'CMDS' || fail "mongo inserts"
{"insert": "products", "docs": [{"_id": "p1", "n": 1, "price": {"$numberDecimal": "2.50"}, "tags": ["a", "b"], "at": {"$date": "2024-05-01T10:00:00Z"}}, {"_id": "p2", "n": {"$numberLong": "9007199254740993"}, "ratio": 0.25, "nested": {"x": {"y": null}}}, {"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "name": "with \"quotes\""}]}
CMDS
# A PostgreSQL target beside the SQLite one, with soft deletes.
sed -i "s|^api:|  - name: pg1\n    type: postgres\n    url: $base/tgt\n    delete_mode: soft\napi:|" "$work/cw.yaml"
# And a MongoDB backup of the collection.
sed -i "s|^api:|  - name: backup\n    type: mongodb\n    url: $mongo_url\n    database: backup\napi:|" "$work/cw.yaml"
# A typed entity: the columns named, so a difference names its column.
sed -i 's|^targets:|  - name: priced\n    source: app_pg\n    table: public.priced\n    columns:\n      - {name: amount, type: number, path: amount}\n      - {name: qty, type: integer, path: qty}\ntargets:|' "$work/cw.yaml"

# The daemon holds the first verify run it starts at its re-check for 8 s,
# so the API's refusal and cancel can be seen.
CW_FAILPOINTS="verify_settle=sleep8000" "$fp_bin" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
daemon=$!

rows_in() { [ "$(cache "$1" "SELECT count(*) FROM $1")" = "$2" ] && echo ok; }
wait_for "items reach the cache" rows_in items 3000
wait_for "priced reaches the cache" rows_in priced 200
wait_for "products reach the cache" rows_in products 3
wait_for "products reach the backup" backup_count products 3
wait_for "items reach pg1" pg_rows_in items 3000
wait_for "priced reaches pg1" pg_rows_in priced 200
wait_for "products reach pg1" pg_rows_in products 3
wait_for "items reach the backup" backup_count items 3000
wait_for "priced reaches the backup" backup_count priced 200

field() { # JSON ENTITY KEY [TARGET]: a value of one pair's report (target node1 by default)
	python3 -c 'import json,sys; r=[p for p in json.loads(sys.argv[1]) if p["entity"]==sys.argv[2] and p["target"]==sys.argv[4]][0]; print(r[sys.argv[3]])' "$1" "$2" "$3" "${4:-node1}"
}

# ---- equal tables ----
out=$(verify --json); rc=$?
[ $rc -eq 0 ] || fail "verify of equal tables exit $rc, want 0: $out"
[ "$(field "$out" items status)" = equal ] || fail "items not equal: $out"
[ "$(field "$out" items source_rows)" = 3000 ] || fail "items source rows: $out"
[ "$(field "$out" priced status)" = equal ] || fail "priced not equal: $out"
[ "$(field "$out" items status pg1)" = equal ] || fail "items not equal in pg1: $out"
[ "$(field "$out" items target_rows pg1)" = 3000 ] || fail "items rows in pg1: $out"
[ "$(field "$out" priced status pg1)" = equal ] || fail "priced not equal in pg1: $out"
[ "$(field "$out" products status)" = equal ] || fail "products not equal: $out"
[ "$(python3 -c 'import json,sys; print(sorted(p["entity"] + "/" + p["target"] for p in json.loads(sys.argv[1])))' "$out")" = \
  "['items/backup', 'items/node1', 'items/pg1', 'priced/backup', 'priced/node1', 'priced/pg1', 'products/backup', 'products/node1', 'products/pg1']" ] ||
	fail "the pairs compared: $out"

# ---- planted differences ----
cache items "DELETE FROM items WHERE id = '5';
             INSERT INTO items (id, name, _version, _oplog_id) VALUES ('99999', 'ghost', 1, 1);
             UPDATE items SET name = 'tampered' WHERE id = '7';
             UPDATE items SET _version = 0 WHERE id = '9';
             UPDATE items SET note = NULL WHERE id = '11'"
cache priced "UPDATE priced SET amount = 0 WHERE id = 'k3'"
cache products "UPDATE products SET doc = json_set(doc, '$.n', 7) WHERE id = 'p1'"
# In the backup: a document gone, one the source never had, a changed value, an older generation.
backup <<'CMDS' || fail "could not change the backup"
{"delete": "products", "filter": {"_id": "p1"}}
{"insert": "products", "docs": [{"_id": "ghost", "x": 1, "_cachewarp": {"oplog_id": {"$numberLong": "1"}, "version": {"$numberLong": "1"}, "doc_id": "ghost"}}]}
{"update": "products", "filter": {"_id": "p2"}, "change": {"$set": {"ratio": 0.5}}}
{"update": "products", "filter": {"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}}, "change": {"$set": {"_cachewarp.version": {"$numberLong": "0"}}}}
CMDS
# In pg1: a soft-deleted row is missing, a changed value, a stale generation, an extra row.
tsql "UPDATE public.items SET is_deleted = true WHERE id = 5;
      UPDATE public.items SET price = 0.01 WHERE id = 7;
      UPDATE public.items SET _version = 0 WHERE id = 9;
      INSERT INTO public.items (id, name, _version, _oplog_id) VALUES (99999, 'ghost', 1, 1);
      UPDATE public.priced SET qty = 0 WHERE id = 'k3'" >/dev/null
out=$(verify --json); rc=$?
[ $rc -eq 1 ] || fail "verify with differences exit $rc, want 1: $out"
for want in missing:1 extra:1 different:2 stale_version:1; do
	got=$(field "$out" items "${want%%:*}")
	[ "$got" = "${want#*:}" ] || fail "items ${want%%:*} = $got, want ${want#*:}: $out"
done
keys=$(python3 -c 'import json,sys; r=[p for p in json.loads(sys.argv[1]) if p["entity"]=="items"][0]
print(",".join(sorted(s["key"] + ":" + s["kind"] for s in r["sample"])))' "$out")
[ "$keys" = "11:different,5:missing,7:different,99999:extra,9:stale_version" ] ||
	fail "items sample $keys"
cols=$(python3 -c 'import json,sys; r=[p for p in json.loads(sys.argv[1]) if p["entity"]=="priced"][0]
print(r["different"], [s.get("columns") for s in r["sample"]])' "$out")
[ "$cols" = "1 [['amount']]" ] || fail "priced differences $cols, want amount of k3"
for want in missing:1 extra:1 different:1 stale_version:1; do
	got=$(field "$out" items "${want%%:*}" pg1)
	[ "$got" = "${want#*:}" ] || fail "items in pg1 ${want%%:*} = $got, want ${want#*:}: $out"
done
[ "$(field "$out" priced different pg1)" = 1 ] || fail "priced in pg1: $out"
[ "$(field "$out" products different)" = 1 ] || fail "products: $out"
for want in missing:1 extra:1 different:1 stale_version:1; do
	got=$(field "$out" products "${want%%:*}" backup)
	[ "$got" = "${want#*:}" ] || fail "products in the backup ${want%%:*} = $got, want ${want#*:}: $out"
done
stored=$(sql hub "SELECT status || ':' || (report->>'missing') FROM cachewarp.verify_runs
                  WHERE entity = 'items' AND target = 'node1' ORDER BY id DESC LIMIT 1")
[ "$stored" = "different:1" ] || fail "verify_runs row $stored"

# ---- repair through the hub ----
out=$(verify --repair --json); rc=$?
[ $rc -eq 0 ] || fail "verify --repair exit $rc, want 0: $out"
[ "$(field "$out" items repaired)" = 5 ] || fail "items repaired: $out"
[ "$(field "$out" priced repaired)" = 1 ] || fail "priced repaired: $out"
[ "$(field "$out" products repaired)" = 1 ] || fail "products repaired: $out"
# node1's repairs reach pg1 too: its re-check waits for them, so what is left is repaired.
synthetic=$(sql hub "SELECT count(*) FROM cachewarp.oplog WHERE origin = 'verify'")
[ "$synthetic" -ge 8 ] || fail "$synthetic synthetic changes in the oplog, want 8 or more"
repaired() { [ "$(cache items "SELECT name FROM items WHERE id = '7'")" = "item 7" ] &&
             [ "$(cache items "SELECT count(*) FROM items WHERE id IN ('5', '99999')")" = 1 ] &&
             echo ok; }
wait_for "the target applies the repairs" repaired
pg_repaired() { [ "$(tsql "SELECT price FROM public.items WHERE id = 7")" = 8.75 ] &&
                [ "$(tsql "SELECT count(*) FROM public.items WHERE id = 99999 AND is_deleted IS NOT TRUE")" = 0 ] &&
                echo ok; }
wait_for "pg1 applies the repairs" pg_repaired
mongo_repaired() { [ "$(cache products "SELECT json_extract(doc, '$.n') FROM products WHERE id = 'p1'")" = 1 ] && echo ok; }
wait_for "the cache takes the MongoDB document back" mongo_repaired
backup_repaired() { local dump
	dump=$(echo '{"dump": "products", "fields": ["ratio"]}' | backup)
	grep -qx 'p2|0.25' <<<"$dump" && grep -q '^p1|' <<<"$dump" && ! grep -q '^ghost' <<<"$dump" && echo ok; }
wait_for "the backup takes its document back" backup_repaired
out=$(verify --json); rc=$?
[ $rc -eq 0 ] || fail "verify after repair exit $rc, want 0: $out"

# ---- one run per entity and target ----
"$psql" -X -q -A -t "$base/hub" -c "SELECT pg_advisory_lock(1668743170, hashtext('items/node1'));
                                    SELECT pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
held() { [ "$(sql hub "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext('items/node1')::oid")" != 0 ] && echo ok; }
wait_for "another session holds the pair" held
out=$("$bin" verify -c "$work/cw.yaml" --entity items --target node1 2>&1); rc=$?
[ $rc -eq 1 ] || fail "a second run exit $rc, want 1: $out"
echo "$out" | grep -q "already running" || fail "a second run is not refused: $out"
sql hub "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext('items/node1')::oid" >/dev/null
wait "$holder" 2>/dev/null
holder=

# ---- usage errors ----
"$bin" verify -c "$work/cw.yaml" --entity nosuch >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ] || fail "an unknown entity exit $rc, want 2"
"$bin" verify -c "$work/cw.yaml" --target nosuch >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ] || fail "an unknown target exit $rc, want 2"

# ---- the REST API ----
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.log" | grep -o '[0-9]*"$' | tr -d '"')
api() { # METHOD PATH [BODY]: prints the status code, then the body
	local out
	out=$(curl -s -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} \
		-w '\n%{http_code}' "http://127.0.0.1:$port$2")
	echo "${out##*$'\n'} ${out%$'\n'*}"
}
json() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
synthetic_before=$(sql hub "SELECT count(*) FROM cachewarp.oplog WHERE origin = 'verify'")
cache items "UPDATE items SET name = 'api' WHERE id = '21'"
read -r code body <<<"$(api POST /v1/verify '{"entity": "items", "target": "node1", "repair": true}')"
[ "$code" = 202 ] || fail "POST /v1/verify $code $body"
run1=$(json "$body" 'v["id"]')
read -r code body <<<"$(api POST /v1/verify '{"entity": "items", "target": "node1"}')"
[ "$code" = 409 ] || fail "a second POST /v1/verify $code, want 409: $body"
[ "$(json "$body" 'v["running_id"]')" = "$run1" ] || fail "409 names run $body, want $run1"
out=$("$bin" verify -c "$work/cw.yaml" --entity items --target node1 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "already running (run $run1)" ||
	fail "the CLI beside an API run: exit $rc: $out"
read -r code body <<<"$(api GET "/v1/verify/$run1")"
[ "$code" = 200 ] && [ "$(json "$body" 'v["status"]')" = running ] &&
	[ "$(json "$body" 'v["progress"] is not None')" = True ] || fail "GET a running run: $code $body"
read -r code body <<<"$(api DELETE "/v1/verify/$run1")"
[ "$code" = 202 ] || fail "DELETE /v1/verify/$run1 $code $body"
run_status() { api GET "/v1/verify/$1" | { read -r _ b; json "$b" 'v["status"]'; }; }
canceled() { [ "$(run_status "$run1")" = canceled ] && echo ok; }
wait_for "the canceled run ends canceled" canceled
[ "$(sql hub "SELECT count(*) FROM cachewarp.oplog WHERE origin = 'verify'")" = "$synthetic_before" ] ||
	fail "a canceled repair wrote synthetic changes"
read -r code body <<<"$(api GET /v1/verify/abc)"
[ "$code" = 400 ] || fail "GET /v1/verify/abc $code"
read -r code body <<<"$(api POST /v1/verify '{"entity": "items"}')"
[ "$code" = 400 ] || fail "POST without a target $code"
read -r code body <<<"$(api POST /v1/verify '{"entity": "nosuch", "target": "node1"}')"
[ "$code" = 404 ] || fail "POST for an unknown entity $code"
read -r code body <<<"$(api POST /v1/verify '{"entity": "items", "target": "node1", "repair": true}')"
[ "$code" = 202 ] || fail "POST /v1/verify again $code $body"
run2=$(json "$body" 'v["id"]')
finished() { [ "$(run_status "$run2")" != running ] && echo ok; }
wait_for "the API run finishes" finished
read -r code body <<<"$(api GET "/v1/verify/$run2")"
[ "$(json "$body" 'v["status"] + ":" + str(v["report"]["different"]) + ":" + str(v["report"]["repaired"]) + ":" + v["requested_by"]')" = "different:1:1:api" ] ||
	fail "the API run's result: $body"
api_repaired() { [ "$(cache items "SELECT name FROM items WHERE id = '21'")" = "item 21" ] && echo ok; }
wait_for "the API run's repair reaches the cache" api_repaired
read -r code body <<<"$(api GET /v1/verify)"
[ "$(json "$body" 'sorted(r["entity"] + "/" + r["target"] for r in v["runs"])')" = "['items/backup', 'items/node1', 'items/pg1', 'priced/backup', 'priced/node1', 'priced/pg1', 'products/backup', 'products/node1', 'products/pg1']" ] ||
	fail "GET /v1/verify: $body"
metrics=$(curl -s "http://127.0.0.1:$port/metrics")
for m in 'cachewarp_verify_tables_checked_total{entity="items",target="node1"} 1' \
         'cachewarp_verify_synthetic_changes_total{entity="items",target="node1"} 1' \
         'cachewarp_verify_differences_total{entity="items",target="node1",kind="different"} 1' \
         'cachewarp_verify_last_run_equal{entity="items",target="node1"} 0'; do
	echo "$metrics" | grep -qF "$m" || fail "metrics lack $m"
done
read -r code body <<<"$(api GET /v1/status)"
[ "$(json "$body" '[r["id"] for r in v["verify"] if r["entity"] == "items" and r["target"] == "node1"][0]')" = "$run2" ] ||
	fail "/v1/status does not show run $run2: $body"
"$bin" status -c "$work/cw.yaml" | grep -q "^items .*node1 *different" ||
	fail "cachewarp status does not show the verify run: $("$bin" status -c "$work/cw.yaml")"

# ---- no false alarms under churn ----
# items in node1, pg1 and the backup
churn_items() {
	e2e_sql app "UPDATE items SET qty = qty + 1, name = 'churn $1' WHERE id = (random() * 2999)::int + 1;
	             INSERT INTO items VALUES (10000 + $1, 'new', 1, 1, NULL);
	             DELETE FROM items WHERE id = 10000 + $1 - 3"
}
verify_under_churn items 3 churn_items 0.01

# ---- the scheduled health check ----
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
cat >>"$work/cw.yaml" <<'YAML'
verify: {interval: 1s, window: "00:00-00:00", repair: true}
YAML
"$bin" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
daemon=$!
cache priced "UPDATE priced SET qty = -1 WHERE id = 'k5'"
scheduled() { [ "$(cache priced "SELECT qty FROM priced WHERE id = 'k5'")" = 5 ] &&
              [ "$(sql hub "SELECT count(*) FROM cachewarp.verify_runs WHERE requested_by = 'schedule'
                            AND entity = 'priced' AND (report->>'repaired')::int = 1")" -ge 1 ] && echo ok; }
wait_for "the scheduled check repairs a planted difference" scheduled

verify_finish verify
