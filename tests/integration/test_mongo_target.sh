#!/usr/bin/env bash
# The MongoDB target end to end, with the MongoDB test server as source and
# as target (database "shop" captured, database "backup" written): a
# document holding every BSON type arrives BSON-equal (types, subtypes,
# field order), follows updates and deletes; a PostgreSQL table arrives as
# typed documents (numeric -> Decimal128, timestamptz -> Date, bigint ->
# Int64, jsonb -> an embedded document, a composite key -> an _id document,
# a collection name of its own); the entity selection: entities excluded by
# their source collection (targets[].exclude) or their own setting stay out,
# and a second target with targets[].entities receives only those; an entity
# whose collection name the target cannot take fails alone (its stream is
# retried, then, with on_error: fail_stream, listed failed with its reason in
# /v1/status) while its siblings land, and lands once its collection is set; a document the target refuses is quarantined while the rest lands;
# kill -9 during apply then a document-by-document comparison; the target
# stopped under load and back, its backlog drained and the metrics showing it.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init mongo-target
e2e_start_pg
e2e_start_mongo
# the target reaches the same test server through a proxy that the outage cuts
toxi=$support/toxiproxy.sh
bash "$toxi" start --owner $$ "$work/toxi" >/dev/null || exit 1
mongo_addr=${mongo_url#mongodb://}
mongo_addr=${mongo_addr%%/*}
target_addr=$(bash "$toxi" proxy "$work/toxi" target "$mongo_addr") || exit 1
target_url="mongodb://$target_addr/?directConnection=true&connectTimeoutMS=2000&serverSelectionTimeoutMS=2000"
mexec() { "$root/build/cw-mongo-exec" "$mongo_url" "$1"; }
sql() { e2e_sql app "$1"; }

sql "CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(12,2), big numeric, qty integer,
     total bigint, ratio double precision, ok boolean, at timestamptz, day date, doc jsonb,
     note text, raw bytea)" >/dev/null
sql "INSERT INTO orders VALUES (1, 12.50, 123456789012345678901234567890.5, 7, 9007199254740993,
     0.25, true, '2024-05-01 10:00:00.123+00', '2024-05-01', '{\"x\": 2.50, \"n\": [1, \"a\"]}',
     'say \"hi\"', '\x0102ff')" >/dev/null
# a TOASTed value the update leaves alone arrives absent: the target $sets the rest
sql "CREATE TABLE notes (id int PRIMARY KEY, n int, body text);
     INSERT INTO notes SELECT 1, 1, string_agg(md5(g::text), '') FROM generate_series(1, 400) g" >/dev/null
sql "CREATE TABLE pair (a int, b text, v text, PRIMARY KEY (a, b));
     INSERT INTO pair VALUES (1, 'x', 'one'), (2, 'y', 'two')" >/dev/null

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_pg
    type: postgres
    url: $base/app
  - name: shop
    type: mongodb
    url: "$mongo_url"
    database: shop
    watch: collection
entities:
  - {name: items, source: shop, collection: items}
  - {name: refused, source: shop, collection: refused}
  - {name: load, source: shop, collection: load}
  - {name: private, source: shop, collection: private, targets: {backup: {exclude: true}}}
  - {name: sessions, source: shop, collection: web_sessions}
  - {name: spaced, source: shop, collection: "odd name"}
  - name: orders
    source: app_pg
    table: public.orders
  - {name: notes, source: app_pg, table: public.notes}
  - name: pair
    source: app_pg
    table: public.pair
    targets: {backup: {collection: pairs}}
targets:
  - name: backup
    type: mongodb
    url: "$target_url"
    database: backup
    write_concern: "1"
    exclude: [web_sessions]
    streams:
      - {entity: spaced, on_error: fail_stream, retry_policy: {max_attempts: 2, initial_delay: 100ms}}
  - name: picked
    type: mongodb
    url: "$mongo_url"
    database: picked
    write_concern: "1"
    entities: [items, sessions]
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML

start_daemon() {
	"$bin" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
	daemon=$!
}
start_daemon

wait_for() { # DESCRIPTION COMMAND...: until COMMAND prints "ok"
	local what=$1 deadline=$((SECONDS + 90))
	shift
	until [ "$("$@" 2>/dev/null)" = ok ]; do
		if [ $SECONDS -ge $deadline ]; then
			fail "$what (last: $("$@" 2>&1 | head -c 600))"
			return 1
		fi
		sleep 0.2
	done
}
same() { [ "$1" = "$2" ] && echo ok || echo "got [$1] want [$2]"; }
# canonical extended JSON of a collection, by _id, without the target's bookkeeping
dump() { echo "{\"dump\": \"$2\", \"canonical\": true, \"without\": [\"_cachewarp\"]}" | mexec "$1"; }
collections_equal() { same "$(dump backup "$1")" "$(dump shop "$1")"; }

# ---- every BSON type from a MongoDB source, BSON-equal in the target ----
mexec shop <<'CMDS' || fail "mongo inserts"
{"insert": "private", "docs": [{"_id": "p1", "secret": 1}]}
{"insert": "web_sessions", "docs": [{"_id": "s1", "user": 1}]}
{"insert": "odd name", "docs": [{"_id": "o1", "n": 1}, {"_id": "o2", "n": 2}]}
{"insert": "items", "docs": [{"_id": {"$oid": "5f1d7a0e2b3c4d5e6f708192"}, "i32": {"$numberInt": "7"}, "i64": {"$numberLong": "9007199254740993"}, "small64": {"$numberLong": "5"}, "dbl": {"$numberDouble": "2.5"}, "whole": {"$numberDouble": "3.0"}, "dec": {"$numberDecimal": "12.50"}, "when": {"$date": {"$numberLong": "1714557600123"}}, "old": {"$date": {"$numberLong": "-86400000"}}, "bin": {"$binary": {"base64": "AQL/", "subType": "00"}}, "uuid": {"$binary": {"base64": "oO68mZ4LTvi7bWu5vTgKEQ==", "subType": "04"}}, "user": {"$binary": {"base64": "AAE=", "subType": "80"}}, "ts": {"$timestamp": {"t": 1714557600, "i": 3}}, "re": {"$regularExpression": {"pattern": "^a.c$", "options": "im"}}, "nested": {"z": 1, "a": [{"$numberInt": "1"}, {"$numberLong": "2"}, {"k": "v", "d": {"$numberDecimal": "0.10"}}], "empty": {}}, "str": "say \"hi\" \u00e9", "nul": null, "yes": true, "oid2": {"$oid": "000000000000000000000001"}}]}
{"insert": "items", "docs": [{"_id": 42, "n": {"$numberLong": "1"}}, {"_id": "s-1", "n": 1.5}]}
CMDS
wait_for "items: every BSON type reaches the target BSON-equal" collections_equal items
# (the test server's update events carry no documentKey: a new version is a delete and an insert)
mexec shop <<'CMDS' || fail "mongo new version"
{"delete": "items", "filter": {"_id": 42}}
{"insert": "items", "docs": [{"_id": 42, "n": {"$numberDecimal": "2.000"}, "added": {"$date": {"$numberLong": "0"}}}]}
{"delete": "items", "filter": {"_id": "s-1"}}
CMDS
wait_for "items follow an update and a delete" collections_equal items
meta() { echo '{"dump": "items", "fields": ["_cachewarp"]}' | mexec backup | head -1; }
case $(meta) in
*oplog_id*) ;;
*) fail "documents keep no _cachewarp.oplog_id: $(meta)" ;;
esac

# ---- the entity selection of each target ----
collections_equal_in() { same "$(dump "$1" "$2")" "$(dump shop "$2")"; }
wait_for "picked: targets[].entities receives sessions" collections_equal_in picked web_sessions
wait_for "picked: targets[].entities receives items" collections_equal_in picked items
picked_only() { same "$(echo '{"collections": true}' | mexec picked | grep -v '^_cachewarp' | tr '\n' ' ')" "items web_sessions "; }
wait_for "picked holds only the entities it lists" picked_only

# ---- an entity whose collection name the target cannot take fails alone ----
api_port() { grep '"msg":"listening"' "$work/run.log" | tail -1 | grep -o '"port":"[0-9]*"' | cut -d'"' -f4; }
failed_in_status() {
	curl -s "http://127.0.0.1:$(api_port)/v1/status" 2>/dev/null |
		jq -r '[.failed_streams[] | select(.entity == "spaced" and .target == "backup") | .reason] | .[0] // "none"'
}
spaced_failed() { case $(failed_in_status) in *'"odd name"'*collection*) echo ok ;; *) failed_in_status ;; esac; }
wait_for "spaced is failed in /v1/status with its reason, in target backup" spaced_failed
grep -q '"msg":"stream failed; retrying it alone, the others go on".*"entity":"spaced"' "$work/run.log" ||
	fail "the failure of spaced is not logged as its stream's alone"
mexec shop <<'CMDS' || fail "mongo inserts next to a failed entity"
{"insert": "items", "docs": [{"_id": "after-failure", "n": 3}]}
CMDS
wait_for "items goes on while spaced is failed on the same target" collections_equal items
[ "$(echo '{"dump": "_cachewarp_position", "fields": ["key"]}' | mexec backup | grep -c '^backup:spaced|')" = 0 ] ||
	fail "a failed entity got a position"

# ---- a PostgreSQL table as typed documents ----
want_order='{ "_id" : { "$numberLong" : "1" }, "amount" : { "$numberDecimal" : "12.50" }, "big" : { "$numberDecimal" : "123456789012345678901234567890.5" }, "qty" : { "$numberInt" : "7" }, "total" : { "$numberLong" : "9007199254740993" }, "ratio" : { "$numberDouble" : "0.25" }, "ok" : true, "at" : { "$date" : { "$numberLong" : "1714557600123" } }, "day" : { "$date" : { "$numberLong" : "1714521600000" } }, "doc" : { "n" : [ { "$numberInt" : "1" }, "a" ], "x" : { "$numberDecimal" : "2.50" } }, "note" : "say \"hi\"", "raw" : { "$binary" : { "base64" : "AQL/", "subType" : "00" } } }'
orders_typed() { same "$(dump backup orders)" "$want_order"; }
# (jsonb keeps its keys sorted at the source already: "n" before "x")
wait_for "orders: PostgreSQL types become BSON types, in the table's column order" orders_typed
want_pairs='{ "_id" : { "a" : { "$numberInt" : "1" }, "b" : "x" }, "v" : "one" }
{ "_id" : { "a" : { "$numberInt" : "2" }, "b" : "y" }, "v" : "two" }'
pairs_typed() { same "$(dump backup pairs)" "$want_pairs"; }
wait_for "pair: a composite key becomes an _id document, in collection pairs" pairs_typed
sql "UPDATE pair SET v = 'uno' WHERE a = 1; DELETE FROM pair WHERE a = 2" >/dev/null
want_pairs='{ "_id" : { "a" : { "$numberInt" : "1" }, "b" : "x" }, "v" : "uno" }'
wait_for "pair follows an update and a delete by composite key" pairs_typed

body_len=$(sql "SELECT length(body) FROM notes")
note() { echo '{"dump": "notes", "fields": ["n", "body"]}' | mexec backup | awk -F'|' '{print $1 "|" $2 "|" length($3)}'; }
note_is() { same "$(note)" "$1"; }
wait_for "notes: the row with its long body" note_is "1|1|$body_len"
sql "UPDATE notes SET n = 2" >/dev/null
wait_for "notes: an update leaving the TOASTed body unchanged keeps it in the target" note_is "1|2|$body_len"
[ "$(e2e_sql hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'notes' AND NOT data::jsonb ? 'body'")" = 1 ] ||
	fail "the update of notes did not arrive with body absent: the \$set path was not taken"

# ---- a document the target refuses: quarantined, the rest lands ----
# (a top-level "$" field: the test server stores it, but refuses it in a replacement)
mexec shop <<'CMDS' || fail "mongo inserts of refused"
{"insert": "refused", "unchecked": true, "docs": [{"_id": "g1", "n": 1}, {"_id": "bad", "$weird": 1}, {"_id": "g2", "n": 2}]}
CMDS
good_landed() { same "$(echo '{"dump": "refused", "fields": ["n"]}' | mexec backup)" "g1|1
g2|2"; }
wait_for "the documents around a refused one land" good_landed
quarantined() { same "$(echo '{"count": "_cachewarp_quarantine", "filter": {"entity": "refused", "doc_id": "bad"}}' | mexec backup)" 1; }
wait_for "the refused document is in _cachewarp_quarantine" quarantined
reason=$(echo '{"dump": "_cachewarp_quarantine", "fields": ["reason"]}' | mexec backup)
case $reason in
*illegal*|*\$weird*) ;;
*) fail "the quarantine keeps no server error: $reason" ;;
esac

# ---- kill -9 during apply, restart, compare document by document ----
{
	printf '{"insert": "load", "docs": ['
	for i in $(seq 1 3000); do
		[ "$i" -gt 1 ] && printf ','
		printf '{"_id": %d, "n": {"$numberLong": "%d"}, "v": %d.5, "s": "doc %d"}' "$i" "$i" "$i" "$i"
	done
	printf ']}\n'
} | mexec shop || fail "mongo load inserts"
some_loaded() { [ "$(echo '{"count": "load"}' | mexec backup)" -gt 0 ] && echo ok; }
wait_for "the load starts reaching the target" some_loaded
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
# the restart also gives spaced a collection the target can take
sed -i 's|{name: spaced, source: shop, collection: "odd name"}|{name: spaced, source: shop, collection: "odd name", targets: {backup: {collection: odd_name}}}|' "$work/cw.yaml"
start_daemon
wait_for "after kill -9 and a restart, load is BSON-equal document by document" collections_equal load
spaced_landed() { same "$(dump backup odd_name)" "$(dump shop "odd name")"; }
wait_for "spaced lands once its collection is set" spaced_landed
spaced_recovered() { same "$(failed_in_status)" none; }
wait_for "spaced is no longer failed after the restart" spaced_recovered

# ---- the target unreachable under load, then back ----
metrics() {
	curl -s "http://127.0.0.1:$(grep '"msg":"listening"' "$work/run.log" | tail -1 |
		grep -o '"port":"[0-9]*"' | cut -d'"' -f4)/metrics" 2>/dev/null
}
metric() { metrics | grep "^$1" | awk '{print $2}' | head -1; }
bash "$toxi" down "$work/toxi" target
{
	printf '{"insert": "load", "docs": ['
	for i in $(seq 3001 4000); do
		[ "$i" -gt 3001 ] && printf ','
		printf '{"_id": %d, "n": {"$numberLong": "%d"}}' "$i" "$i"
	done
	printf ']}\n'
} | mexec shop || fail "mongo inserts while the target is down"
echo '{"delete": "load", "filter": {"_id": 7}}' | mexec shop || fail "mongo delete while down"
target_down() { [ "$(metric 'cachewarp_target_up{target="backup"}')" = 0 ] && echo ok; }
wait_for "cachewarp_target_up is 0 while the target is unreachable" target_down
backlog() { lag=$(metric 'cachewarp_consumer_lag_ids{consumer="backup"}'); [ "${lag%.*}" -gt 0 ] 2>/dev/null && echo ok; }
wait_for "the backlog in hub ids shows while the target is down" backlog
bash "$toxi" up "$work/toxi" target
wait_for "the backlog drains once the target is back" collections_equal load
target_up() { [ "$(metric 'cachewarp_target_up{target="backup"}')" = 1 ] && echo ok; }
wait_for "cachewarp_target_up is 1 again" target_up
ok_writes=$(metric 'cachewarp_target_document_writes_total{target="backup",result="ok"}')
[ "${ok_writes%.*}" -ge 1000 ] 2>/dev/null ||
	fail "document writes ok since the restart: ${ok_writes:-none}, want at least the 1000 drained"
# The outage hits a bulk write (counted as failed document writes) or, when it
# starts between two, the position write or the reconnect (the job's failure).
failed_writes=$(metric 'cachewarp_target_document_writes_total{target="backup",result="failed"}')
[ -n "$failed_writes" ] || grep -q '"msg":"job failed","job":"apply:backup"' "$work/run.log" ||
	fail "neither failed writes counted nor the apply job's failure logged during the outage"
grep -q '"position_write":"after the bulk write' "$work/run.log" ||
	fail "the log does not say where the position is written"

# captured long before the load drained: excluded entities stay out of the target
[ "$(echo '{"count": "private"}' | mexec backup)" = 0 ] || fail "an excluded entity reached the target"
[ "$(echo '{"count": "web_sessions"}' | mexec backup)" = 0 ] ||
	fail "sessions, excluded by its source collection, reached the target"

if [ "$failures" -gt 0 ]; then
	echo "test_mongo_target: $failures check(s) failed" >&2
	exit 1
fi
echo "test_mongo_target: ok"
