#!/usr/bin/env bash
# Live reload of the configuration (docs/operations.md): with a PostgreSQL
# source and a SQLite target running, SIGHUP applies an added entity (its
# rows arrive), an added target (it fills) and its removal (its job stops,
# /v1/status no longer lists it), a changed target setting (only that target
# restarts); an invalid file is refused with each error at its file:line and
# replication goes on; a changed hub.url is refused naming the key; with
# config.watch an edit (a new file renamed over the old one) is picked up
# without a signal. Metrics and /v1/status show each outcome.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init reload
e2e_start_pg
sql() { e2e_sql "$@"; }

sql app "CREATE TABLE members (id int PRIMARY KEY, name text);
         CREATE TABLE items (id int PRIMARY KEY, title text);
         CREATE TABLE tags (id int PRIMARY KEY, label text);
         INSERT INTO members VALUES (1, 'ada'), (2, 'bob');
         INSERT INTO items VALUES (1, 'pen');
         INSERT INTO tags VALUES (1, 'red')" >/dev/null

# The configuration file, written as a new file renamed over the old one (as editors do).
hub_url=$base/hub
entities=
targets=
node1_extra=
tail_lines=
write_config() {
	cat >"$work/cw.yaml.new" <<YAML
hub:
  url: $hub_url
sources:
  - name: app_pg
    type: postgres
    url: $base/app
entities:
  - name: members
    source: app_pg
    table: public.members
$entities
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
$node1_extra
$targets
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
$tail_lines
YAML
	mv "$work/cw.yaml.new" "$work/cw.yaml"
}
write_config

"$bin" run -c "$work/cw.yaml" >"$work/run.log" 2>&1 &
daemon=$!

cache() { sqlite3 -readonly "$1/$2/db.sqlite" "$3" 2>/dev/null; }
rows() { cache "$1" "$2" "SELECT group_concat(id, ',') FROM (SELECT id FROM $2 ORDER BY CAST(id AS int))"; }
check_rows() { same "$(rows "$1" "$2")" "$3"; }
log_count() { grep -c -- "$1" "$work/run.log"; }
# Waits for the Nth log line matching PATTERN.
wait_log() { e2e_wait_log "$work/run.log" "$@"; }   # WHAT PATTERN [N]
reloaded() { log_count '"msg":"configuration reloaded"'; }
refused() { log_count '"msg":"configuration reload refused'; }
# The last "configuration reloaded" line.
last_reload() { grep '"msg":"configuration reloaded"' "$work/run.log" | tail -1; }
field() { jq -r ".$1" <<<"$2"; }
hup() { kill -HUP "$daemon"; }

wait_log "daemon running" '"msg":"running"'
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.log" | grep -o '[0-9]*"$' | tr -d '"')
status() { curl -s "http://127.0.0.1:$port/v1/status"; }
job_runs() { status | jq -r ".jobs[] | select(.name == \"$1\") | .runs"; }
listed() { status | jq -r "[.components[] | select(.name == \"$1\")] | length"; }
metric() { curl -s "http://127.0.0.1:$port/metrics" | grep -v '^#' | grep -F "$1" | awk '{print $2}'; }

wait_for "the first entity's snapshot" check_rows "$work/dbs" members "1,2"
[ "$(metric 'cachewarp_config_reloads_total{result="applied"}')" = 0 ] || fail "applied counter not 0 at start"
[ "$(status | jq -r .config.sha256)" = "$(sha256sum "$work/cw.yaml" | cut -d' ' -f1)" ] ||
	fail "/v1/status config.sha256 is not the file's: $(status | jq -c .config)"
[ "$(status | jq -r .config.last_reload)" = null ] || fail "a reload before any"

# 1. An added entity: registered in the hub, scanned, its rows arrive; nothing restarts.
capture_runs=$(job_runs capture:app_pg)
entities="  - {name: items, source: app_pg, table: public.items}"
write_config
hup
wait_log "reload with an added entity" '"msg":"configuration reloaded"' 1
line=$(last_reload)
[ "$(field added "$line")" = "entity:items" ] || fail "added entity: $line"
[ "$(field restarted "$line")" = "" ] || fail "an added entity restarted something: $line"
[ "$(field reason "$line")" = SIGHUP ] || fail "reason: $line"
wait_for "the added entity's rows" check_rows "$work/dbs" items "1"
sql app "INSERT INTO items VALUES (2, 'ink')" >/dev/null
wait_for "the added entity streams" check_rows "$work/dbs" items "1,2"

# 2. An added target fills with every entity; 3. removed, its job stops.
targets="  - {name: node2, type: sqlite, dir: $work/dbs2}"
write_config
hup
wait_log "reload with an added target" '"msg":"configuration reloaded"' 2
[ "$(field added "$(last_reload)")" = "target:node2" ] || fail "added target: $(last_reload)"
wait_for "the added target fills (members)" check_rows "$work/dbs2" members "1,2"
wait_for "the added target fills (items)" check_rows "$work/dbs2" items "1,2"
node2_listed() { same "$(listed node2)" 1; }
wait_for "status lists the added target" node2_listed
# Verify knows the added target: its run ends equal.
run=$(curl -s -X POST "http://127.0.0.1:$port/v1/verify" -d '{"entity": "members", "target": "node2"}')
run_id=$(jq -r .id <<<"$run")
[ "$run_id" != null ] || fail "verify of the added target: $run"
verify_equal() { same "$(curl -s "http://127.0.0.1:$port/v1/verify/$run_id" | jq -r .status)" equal; }
wait_for "verify of the added target ends equal" verify_equal
targets=
write_config
hup
wait_log "reload with a removed target" '"msg":"configuration reloaded"' 3
[ "$(field removed "$(last_reload)")" = "target:node2" ] || fail "removed target: $(last_reload)"
[ "$(listed node2)" = 0 ] || fail "/v1/status still lists the removed target"
[ "$(status | jq -r '[.jobs[] | select(.name == "apply:node2")] | length')" = 0 ] ||
	fail "the removed target's job is still listed"
sql app "INSERT INTO members VALUES (3, 'cy')" >/dev/null
wait_for "the remaining target goes on" check_rows "$work/dbs" members "1,2,3"
# Its job was joined before the reload was logged: nothing applies there any more.
[ "$(rows "$work/dbs2" members)" = "1,2" ] || fail "the removed target still applies: $(rows "$work/dbs2" members)"
[ "$(job_runs capture:app_pg)" = "$capture_runs" ] || fail "the source was restarted by target changes"

# 4. A changed target setting restarts that target only.
node1_extra="    idle_timeout: 7s"
write_config
hup
wait_log "reload with a changed target" '"msg":"configuration reloaded"' 4
line=$(last_reload)
[ "$(field restarted "$line")" = "target:node1" ] || fail "restarted: $line"
[ "$(field unchanged "$line")" = "source:app_pg" ] || fail "unchanged: $line"
[ "$(job_runs capture:app_pg)" = "$capture_runs" ] || fail "the source restarted with the target"
sql app "INSERT INTO members VALUES (4, 'dee')" >/dev/null
wait_for "the restarted target applies" check_rows "$work/dbs" members "1,2,3,4"

# 5. An invalid file: every error logged with file:line, nothing applied, replication goes on.
before=$(reloaded)
tail_lines="retry: {initial: 5x}
frobnicate: 1"
write_config
hup
wait_log "invalid file refused" '"msg":"configuration reload refused: 2 errors; the running configuration is kept"'
grep -q "\"error\":\"$work/cw.yaml:[0-9]*:[0-9]*: key \\\\\"retry.initial\\\\\": " "$work/run.log" ||
	fail "no retry.initial error with file:line"
grep -q "\"error\":\"$work/cw.yaml:[0-9]*:[0-9]*: key \\\\\"frobnicate\\\\\": unknown key" "$work/run.log" ||
	fail "no unknown key error with file:line"
[ "$(reloaded)" = "$before" ] || fail "an invalid file was applied"
sql app "INSERT INTO members VALUES (5, 'eve')" >/dev/null
wait_for "replication after an invalid file" check_rows "$work/dbs" members "1,2,3,4,5"
[ "$(metric 'cachewarp_config_reloads_total{result="invalid"}')" = 1 ] || fail "invalid not counted"
[ "$(status | jq -r .config.last_reload)" = invalid ] || fail "status last_reload: $(status | jq -c .config)"

# 6. A changed hub.url is refused, naming the key; nothing of the file applied.
tail_lines=
hub_url="$base/otherhub"
entities="  - {name: items, source: app_pg, table: public.items}
  - {name: tags, source: app_pg, table: public.tags}"
write_config
hup
wait_log "hub.url refused" '"msg":"hub.url changed: restart cachewarp to apply it"'
wait_log "refusal summary" '"msg":"configuration reload refused: 1 change needs a restart; the running configuration is kept"'
[ "$(reloaded)" = "$before" ] || fail "a refused file was applied"
[ "$(sql hub "SELECT count(*) FROM cachewarp.entities WHERE name = 'tags'")" = 0 ] ||
	fail "the refused file's entity was registered"
[ "$(metric 'cachewarp_config_reloads_total{result="refused"}')" = 1 ] || fail "refused not counted"

# 7. config.watch: turned on by a reload, then an edit is picked up without a signal.
hub_url=$base/hub
entities="  - {name: items, source: app_pg, table: public.items}"
tail_lines="config: {watch: true, watch_interval: 200ms}"
write_config
hup
wait_log "watch turned on" '"msg":"configuration reloaded"' 5
[ "$(field live_keys "$(last_reload)")" = "config.watch config.watch_interval" ] ||
	fail "live keys: $(last_reload)"
entities="  - {name: items, source: app_pg, table: public.items}
  - {name: tags, source: app_pg, table: public.tags}"
write_config
wait_log "edit picked up" '"reason":"file changed"'
wait_for "the watched file's entity arrives" check_rows "$work/dbs" tags "1"
[ "$(metric 'cachewarp_config_reloads_total{result="applied"}')" = 6 ] ||
	fail "applied count: $(metric 'cachewarp_config_reloads_total{result="applied"}')"
status_hash() { same "$(status | jq -r .config.sha256)" "$(sha256sum "$work/cw.yaml" | cut -d' ' -f1)"; }
wait_for "status shows the new file's hash" status_hash
success=$(metric cachewarp_config_last_reload_success_timestamp_seconds)
awk -v t="$success" -v now="$(date +%s)" 'BEGIN { exit !(t > now - 600 && t <= now + 1) }' ||
	fail "last reload success timestamp: $success"

# Removing an entity from the file pauses it, keeping it in the hub (docs/operations.md;
# tests/integration/test_entity_pause.sh covers the paused state).
entities="  - {name: items, source: app_pg, table: public.items}"
write_config
wait_log "entity removed" '"msg":"entity removed from the configuration file is paused'
[ "$(sql hub "SELECT status FROM cachewarp.entities WHERE name = 'tags'")" != deleted ] ||
	fail "an entity removed from the file was deleted in the hub"
[ "$(sql hub "SELECT paused_reason FROM cachewarp.entities WHERE name = 'tags'")" = "removed from the configuration file" ] ||
	fail "an entity removed from the file is not paused"

kill -TERM "$daemon"
wait "$daemon"
rc=$?
daemon=
[ "$rc" -eq 0 ] || fail "daemon exited $rc after SIGTERM"
grep -q '"level":"error".*"msg":"could not' "$work/run.log" && fail "errors in the log: $(grep '"level":"error"' "$work/run.log" | head -3)"
exit $((failures > 0))
