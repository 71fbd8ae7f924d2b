#!/usr/bin/env bash
# Paused entities (docs/operations.md, "Paused entities"): an entity removed
# from the configuration file is paused on SIGHUP and stays paused across a
# restart; its source stops capturing it while the other entities flow, its
# target keeps its rows, /v1/status, /v1/entities, `cachewarp entity list` and
# cachewarp_entity_paused show it. Putting it back in the file (SIGHUP)
# resumes it with a fresh scan: rows changed or deleted meanwhile converge.
# `cachewarp entity resume` does the same; `cachewarp entity delete` still
# deletes a paused entity and its data; an entity added through the CLI is
# never paused by the file; a changed shape is still refused. A MongoDB entity
# is paused and resumed the same way (its collection is no longer watched).
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

E2E_STOP=e2e_stop_daemon
e2e_init entitypause
e2e_start_pg
e2e_start_mongo
sql() { e2e_sql "$@"; }
e2e_mongo <<'CMDS' || fail "mongo inserts"
{"insert": "products", "docs": [{"_id": 1, "title": "cup"}, {"_id": 2, "title": "jar"}]}
CMDS

sql app "CREATE TABLE members (id int PRIMARY KEY, name text);
         CREATE TABLE items (id int PRIMARY KEY, title text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO members VALUES (1, 'ada'), (2, 'bob');
         INSERT INTO items VALUES (1, 'pen'), (2, 'ink');
         INSERT INTO tags VALUES (1, 'red');
         INSERT INTO notes VALUES (1, 'hi')" >/dev/null

items_entry="  - {name: items, source: app_pg, table: public.items}"
tags_entry="  - {name: tags, source: app_pg, table: public.tags}"
products_entry="  - {name: products, source: shop, collection: products, columns: [{name: title, type: text, path: title}]}"
entities="$items_entry
$tags_entry
$products_entry"
# The configuration file, written as a new file renamed over the old one (as editors do).
write_config() {
	cat >"$work/cw.yaml.new" <<YAML
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
  - {name: members, source: app_pg, table: public.members}
$entities
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML
	mv "$work/cw.yaml.new" "$work/cw.yaml"
}

log=
port=
start_daemon() { # LOG
	log=$1
	"$bin" run -c "$work/cw.yaml" >"$log" 2>&1 &
	daemon=$!
	wait_log "daemon running" '"msg":"running"'
	port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$log" | grep -o '[0-9]*"$' | tr -d '"')
}
wait_log() { e2e_wait_log "$log" "$@"; }   # WHAT PATTERN [N]
cw() { "$bin" "$@" -c "$work/cw.yaml"; }
api() { curl -s "http://127.0.0.1:$port$1" "${@:2}"; }
code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1" "${@:2}"; }
rows() { sqlite3 -readonly "$work/dbs/$1/db.sqlite" "SELECT group_concat(id || ':' || $2, ',') FROM (SELECT * FROM $1 ORDER BY CAST(id AS int))" 2>/dev/null; }
check_rows() { same "$(rows "$1" "$2")" "$3"; }
titles() { sqlite3 -readonly "$work/dbs/products/db.sqlite" "SELECT group_concat(title, ',') FROM (SELECT title FROM products ORDER BY title)" 2>/dev/null; }
check_titles() { same "$(titles)" "$1"; }
entity_status() { api "/v1/entities/$1" | jq -r .status; }
check_status() { same "$(entity_status "$1")" "$2"; }
paused_gauge() { api /metrics | grep -F "cachewarp_entity_paused{entity=\"$1\",source=\"app_pg\"}" | awk '{print $2}'; }
check_gauge() { same "$(paused_gauge "$1")" "$2"; }
# Waits until the PostgreSQL source dropped ENTITY from what it captures (its Nth time).
wait_dropped() { # ENTITY [N]
	wait_log "the source drops $1" "\"msg\":\"entity no longer captured\",\"source\":\"app_pg\",\"entity\":\"$1\"" "${2:-1}"
}

write_config
start_daemon "$work/run1.log"
wait_for "members arrive" check_rows members name "1:ada,2:bob"
wait_for "items arrive" check_rows items title "1:pen,2:ink"
wait_for "tags arrive" check_rows tags label "1:red"
wait_for "products arrive" check_titles "cup,jar"
[ "$(api /v1/entities/items | jq -r .origin)" = file ] || fail "items origin: $(api /v1/entities/items)"
# An entity added through the CLI lives in the hub: the file never pauses it.
cw entity add notes --source app_pg --table public.notes >/dev/null || fail "entity add notes"
wait_for "the CLI's entity arrives" check_rows notes body "1:hi"
[ "$(api /v1/entities/notes | jq -r .origin)" = api ] || fail "notes origin: $(api /v1/entities/notes)"

# 1. items (and products) removed from the file: paused at SIGHUP, with the reason and
# how to undo it.
entities=$tags_entry
write_config
kill -HUP "$daemon"
wait_log "items paused" '"msg":"entity removed from the configuration file is paused: its source no longer captures it and its targets keep their data","entity":"items"'
grep -F '"entity":"items"' "$log" | grep -q 'cachewarp entity resume items' || fail "the pause log line does not say how to resume"
[ "$(entity_status items)" = paused ] || fail "items status: $(api /v1/entities/items)"
[ "$(api /v1/entities/items | jq -r .paused_reason)" = "removed from the configuration file" ] ||
	fail "paused_reason: $(api /v1/entities/items)"
[ "$(api /v1/status | jq -c '[.paused_entities[] | {entity, source, reason}]')" = \
  '[{"entity":"items","source":"app_pg","reason":"removed from the configuration file"},{"entity":"products","source":"shop","reason":"removed from the configuration file"}]' ] ||
	fail "/v1/status paused_entities: $(api /v1/status | jq -c .paused_entities)"
cw entity list | grep -E '^items +app_pg +public.items +paused .*removed from the configuration file' >/dev/null ||
	fail "entity list: $(cw entity list)"
cw entity show items | jq -e '.status == "paused"' >/dev/null || fail "entity show: $(cw entity show items)"
cw status | grep -E '^items +app_pg +removed from the configuration file \(resume: cachewarp entity resume items\)$' >/dev/null ||
	fail "status: $(cw status)"
wait_for "the paused gauge" check_gauge items 1
[ "$(paused_gauge members)" = 0 ] || fail "members gauge: $(paused_gauge members)"
[ "$(entity_status notes)" = live ] || fail "the CLI's entity was paused: $(api /v1/entities/notes)"
[ "$(code /v1/entities/items/refresh -X POST)" = 409 ] || fail "refresh of a paused entity not refused"
[ "$(code /v1/entities/members/resume -X POST)" = 409 ] || fail "resume of a live entity not refused"
wait_dropped items
wait_log "the MongoDB source drops products" '"msg":"entity no longer captured","source":"shop","entity":"products"'
mark=$(sql hub "SELECT coalesce(max(id), 0) FROM cachewarp.oplog")
e2e_mongo <<'CMDS' || fail "mongo writes while paused"
{"update": "products", "filter": {"_id": 1}, "change": {"$set": {"title": "mug"}}}
{"delete": "products", "filter": {"_id": 2}}
{"insert": "products", "docs": [{"_id": 3, "title": "pot"}]}
CMDS
# Changes to the paused table are not captured; the others flow; its target keeps its rows.
sql app "UPDATE items SET title = 'quill' WHERE id = 1; DELETE FROM items WHERE id = 2;
         INSERT INTO items VALUES (3, 'nib')" >/dev/null
sql app "INSERT INTO members VALUES (3, 'cy'); INSERT INTO notes VALUES (2, 'yo')" >/dev/null
wait_for "members flow while items is paused" check_rows members name "1:ada,2:bob,3:cy"
wait_for "the CLI's entity flows" check_rows notes body "1:hi,2:yo"
[ "$(rows items title)" = "1:pen,2:ink" ] || fail "paused items changed in the target: $(rows items title)"
[ "$(sql hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'items' AND data::jsonb->>'title' IN ('quill', 'nib')")" = 0 ] ||
	fail "changes of the paused entity reached the hub"
[ "$(titles)" = "cup,jar" ] || fail "the paused MongoDB entity changed in the target: $(titles)"
[ "$(sql hub "SELECT count(*) FROM cachewarp.oplog WHERE entity IN ('items', 'products') AND id > $mark")" = 0 ] ||
	fail "changes of the paused MongoDB entity reached the hub"

# 2. A restart with items still absent: still paused, still not captured.
e2e_stop_daemon
start_daemon "$work/run2.log"
[ "$(entity_status items)" = paused ] || fail "items after a restart: $(api /v1/entities/items)"
sql app "INSERT INTO items VALUES (4, 'nub'); INSERT INTO members VALUES (4, 'dee')" >/dev/null
wait_for "members flow after the restart" check_rows members name "1:ada,2:bob,3:cy,4:dee"
[ "$(rows items title)" = "1:pen,2:ink" ] || fail "paused items changed after a restart: $(rows items title)"
wait_for "the paused gauge after a restart" check_gauge items 1

# 3. items back with another shape: refused (shapes are immutable); still paused.
entities="  - name: items
    source: app_pg
    table: public.items
    columns: [{name: label, type: text, path: title}]
$tags_entry"
write_config
kill -HUP "$daemon"
wait_log "changed shape refused" '"msg":"configuration reload refused: the running configuration is kept"'
grep -F 'configuration reload refused: the running configuration is kept' "$log" | grep -q 'different shape' ||
	fail "the refusal does not name the shape"
[ "$(entity_status items)" = paused ] || fail "items after a refused reload: $(api /v1/entities/items)"

# 4. items back in the file as it was: resumed with a fresh scan; the target converges
# (row 1 changed, row 2 deleted, rows 3 and 4 added while paused); products too.
entities="$items_entry
$tags_entry
$products_entry"
write_config
kill -HUP "$daemon"
wait_log "items resumed" '"msg":"paused entity resumed: a fresh scan of a new generation","entity":"items","reason":"back in the configuration file"'
wait_for "items converge after the resume" check_rows items title "1:quill,3:nib,4:nub"
wait_for "products converge after the resume" check_titles "mug,pot"
wait_for "items live again" check_status items live
wait_for "the gauge drops" check_gauge items 0
sql app "INSERT INTO items VALUES (5, 'tip')" >/dev/null
wait_for "items stream again" check_rows items title "1:quill,3:nib,4:nub,5:tip"

# 5. Removed again, resumed with the CLI: converges, and the file no longer pauses it.
entities=$tags_entry
write_config
kill -HUP "$daemon"
wait_log "items paused again" '"msg":"entity removed from the configuration file is paused'
wait_dropped items
sql app "DELETE FROM items WHERE id = 3; UPDATE items SET title = 'brush' WHERE id = 5" >/dev/null
out=$(cw entity resume items) || fail "entity resume: $out"
[[ $out == "entity items resumed: generation "*" will be scanned and swept" ]] || fail "resume said: $out"
wait_for "items converge after the CLI resume" check_rows items title "1:quill,4:nub,5:brush"
[ "$(api /v1/entities/items | jq -r .origin)" = api ] || fail "a resumed entity the file lacks: $(api /v1/entities/items)"
kill -HUP "$daemon"
wait_log "reload after the CLI resume" '"msg":"configuration reloaded"' 3
[ "$(entity_status items)" = live ] || fail "the file paused a resumed entity again: $(api /v1/entities/items)"
out=$(cw entity resume items 2>&1) && fail "resume of a live entity succeeded: $out"

# 6. A paused entity is still deleted, with its data, by entity delete; resume over the API.
entities=
write_config
kill -HUP "$daemon"
wait_log "tags paused" '"msg":"entity removed from the configuration file is paused: its source no longer captures it and its targets keep their data","entity":"tags"'
[ "$(code /v1/entities/tags/resume -X POST)" = 202 ] || fail "resume over the API"
wait_for "tags live after the API resume" check_status tags live
kill -HUP "$daemon"   # the file still lacks it, but it was adopted by the resume: kept
wait_log "reload after the API resume" '"msg":"configuration reloaded"' 5
[ "$(entity_status tags)" = live ] || fail "tags paused again after its resume"
sql hub "UPDATE cachewarp.entities SET origin = 'file' WHERE name = 'tags'" >/dev/null
kill -HUP "$daemon"
wait_log "tags paused again" '"msg":"entity removed from the configuration file is paused: its source no longer captures it and its targets keep their data","entity":"tags"' 2
cw entity delete tags >/dev/null || fail "entity delete of a paused entity"
dir_gone() { [ -e "$work/dbs/tags" ] && echo present || echo ok; }
wait_for "the deleted entity's data is dropped" dir_gone

e2e_stop_daemon
grep -q '"level":"error".*"msg":"could not' "$work"/run*.log && fail "errors in the log: $(grep -h '"level":"error"' "$work"/run*.log | head -3)"
exit $((failures > 0))
