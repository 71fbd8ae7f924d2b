#!/usr/bin/env bash
# cachewarp deadletter against a throwaway hub holding dead letters planted
# with psql: list as a table and as JSON lines, filters and paging, the
# counts per stream in `cachewarp status`, every usage error (exit 2) with
# one error line, replay and drop by id, by target and entity and of all,
# the --yes rule for a drop of several letters with no terminal and the
# question on one, a missing id (exit 1), and an unreachable hub (exit 1);
# then a running daemon's cachewarp_dead_letters gauge follows the hub's
# letters by target, entity and status, down to 0 once they are dropped.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init deadletters
e2e_start_pg
e2e_config "$work/cw.yaml" items public.items
"$bin" migrate -c "$work/cw.yaml" >/dev/null 2>&1 || fail "migrate"
hub() { e2e_sql hub "$1"; }

out=$work/out
err=$work/err
dl() { "$bin" deadletter -c "$work/cw.yaml" "$@" >"$out" 2>"$err"; }
expect() { # expect CODE ARGS...: run `deadletter ARGS`, compare the exit code
	local want=$1
	shift
	dl "$@"
	local got=$?
	[ "$got" -eq "$want" ] || fail "deadletter $* exited $got, want $want: $(head -c 400 "$err")"
}
# usage_error ARGS... MESSAGE: exit 2, one error line holding MESSAGE, the usage, nothing on stdout
usage_error() {
	local message=${*: -1}
	expect 2 "${@:1:$#-1}"
	[ "$(grep -c '^cachewarp: ' "$err")" -eq 1 ] || fail "deadletter ${*:1:$#-1}: want one error line: $(cat "$err")"
	grep -qF -- "$message" "$err" || fail "deadletter ${*:1:$#-1}: no \"$message\" in: $(head -c 400 "$err")"
	[ -s "$out" ] && fail "deadletter ${*:1:$#-1} wrote to stdout: $(head -c 200 "$out")"
}

# Letters of three streams: node1/items (3), node1/orders (1), pg1/items (2, one replaying).
# Letter 2's error is long and spans lines; letter 3 is a delete.
hub "INSERT INTO cachewarp.dead_letters (target, entity, doc_id, oplog_id, version, op, data, stage, error, error_code, attempts, status) VALUES
  ('node1', 'items', '1', 10, 1, 'upsert', '{\"price\": 2.50, \"n\": 9007199254740993}', 'write', 'value too long for type character varying(3)', '22001', 3, 'failed'),
  ('node1', 'items', '[\"a\",2]', 11, 1, 'upsert', '{\"x\": 1}', 'transform', 'the transformation refused the change:' || E'\n' || repeat('very long reason ', 20), NULL, 1, 'failed'),
  ('node1', 'items', '3', 12, 1, 'delete', NULL, 'write', 'connection reset', NULL, 5, 'failed'),
  ('node1', 'orders', 'o-1', 20, 1, 'upsert', '{}', 'write', 'duplicate key', '23505', 2, 'failed'),
  ('pg1', 'items', '1', 10, 1, 'upsert', '{\"price\": 2.50}', 'write', 'permission denied', '42501', 1, 'replay'),
  ('pg1', 'items', '4', 13, 1, 'upsert', '{\"price\": 1}', 'write', 'permission denied', '42501', 1, 'failed')" >/dev/null ||
	fail "could not plant dead letters"
ids=$(hub "SELECT string_agg(id::text, ' ' ORDER BY id) FROM cachewarp.dead_letters")
read -r id1 id2 id3 id4 id5 id6 <<<"$ids"

# ---- list: the table ----
expect 0 list
[ "$(head -1 "$out" | tr -s ' ')" = "ID TARGET ENTITY DOC_ID OPLOG_ID STAGE STATUS ATTEMPTS LAST_FAILURE ERROR" ] ||
	fail "table header: $(head -1 "$out")"
[ "$(wc -l <"$out")" -eq 7 ] || fail "list: want a header and 6 rows: $(cat "$out")"
row1=$(grep "^$id1 " "$out" | tr -s ' ')
case $row1 in
"$id1 node1 items 1 10 write failed 3 "*" value too long for type character varying(3)") ;;
*) fail "row of letter $id1: $row1" ;;
esac
grep -q "^$id1 .* 20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:.]*Z " "$out" || fail "no RFC 3339 last failure: $row1"
row2=$(grep "^$id2 " "$out")
case $row2 in
*"the transformation refused the change: very long reason"*...) ;;
*) fail "letter $id2's error not shortened onto one line: $row2" ;;
esac
[ "${#row2}" -lt 220 ] || fail "letter $id2's row is ${#row2} characters long"
grep -q "^$id5 .* replay " "$out" || fail "letter $id5 not shown replaying: $(grep "^$id5 " "$out")"
# (libmongoc may warn at load about a counters segment a killed process left; not ours)
grep -v 'mongoc: Falling back to malloc for counters' "$err" | grep -q . && fail "list wrote to stderr: $(cat "$err")"

# ---- list: filters, paging, JSON lines ----
count_rows() { echo $(($(wc -l <"$out") - 1)); }
expect 0 list --target node1
[ "$(count_rows)" -eq 4 ] || fail "--target node1: $(cat "$out")"
expect 0 list --target node1 --entity items
[ "$(count_rows)" -eq 3 ] || fail "--target node1 --entity items: $(cat "$out")"
expect 0 list --entity items
[ "$(count_rows)" -eq 5 ] || fail "--entity items: $(cat "$out")"
expect 0 list --status replay
[ "$(count_rows)" -eq 1 ] && grep -q "^$id5 " "$out" || fail "--status replay: $(cat "$out")"
expect 0 list --target nobody
[ "$(count_rows)" -eq 0 ] || fail "--target nobody: $(cat "$out")"
expect 0 list --limit 2
[ "$(count_rows)" -eq 2 ] || fail "--limit 2: $(cat "$out")"
grep -q -- "--after $id2" "$err" || fail "a full page does not say how to get the next: $(cat "$err")"
expect 0 list --limit 2 --after "$id2"
[ "$(count_rows)" -eq 2 ] && grep -q "^$id3 " "$out" && grep -q "^$id4 " "$out" ||
	fail "--after $id2: $(cat "$out")"
expect 0 list --json --target pg1
[ "$(wc -l <"$out")" -eq 2 ] || fail "--json: want 2 lines: $(cat "$out")"
python3 - "$out" "$id5" <<'PY' || fail "--json lines: $(cat "$out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
first = lines[0]
assert first["id"] == int(sys.argv[2]), first
assert first["target"] == "pg1" and first["entity"] == "items" and first["doc_id"] == "1", first
assert first["status"] == "replay" and first["stage"] == "write" and first["op"] == "upsert", first
assert first["error_code"] == "42501" and first["attempts"] == 1, first
assert first["data"] == {"price": 2.50}, first
assert first["first_failed_at"].endswith("Z") and first["last_failed_at"].endswith("Z"), first
PY
# Exact values: the data as stored, digits kept.
expect 0 list --json --target node1 --entity items
grep -q '"n": *9007199254740993' "$out" || fail "--json lost digits: $(head -1 "$out")"
grep -q '"price": *2.50' "$out" || fail "--json lost 2.50: $(head -1 "$out")"
grep -q '"op":"delete","data":null' "$out" || fail "--json: a delete without data: $(cat "$out")"

# ---- cachewarp status counts them per stream ----
"$bin" status -c "$work/cw.yaml" >"$out" 2>"$err" || fail "status: $(cat "$err")"
grep -q '^DEAD LETTERS TARGET' "$out" || fail "status shows no dead letters: $(cat "$out")"
[ "$(grep -E '^node1 +items ' "$out" | tr -s ' ')" = "node1 items 3 0" ] || fail "status node1/items: $(cat "$out")"
[ "$(grep -E '^pg1 +items ' "$out" | tr -s ' ')" = "pg1 items 1 1" ] || fail "status pg1/items: $(cat "$out")"
"$bin" status --json -c "$work/cw.yaml" >"$out" 2>"$err" || fail "status --json: $(cat "$err")"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["dead_letters"]; assert {"target": "node1", "entity": "orders", "failed": 1, "replay": 0} in d and len(d) == 3, d' "$out" ||
	fail "status --json dead_letters: $(cat "$out")"

# ---- usage errors: exit 2 before the hub is touched ----
usage_error list --limit 0 '--limit: 0 is out of range (1..10000)'
usage_error list --limit 10001 '--limit: 10001 is out of range'
usage_error list --limit ten '--limit: expected an integer'
usage_error list --after -1 '--after: -1 is out of range'
usage_error list --status done '--status: expected failed or replay, got "done"'
usage_error list --target 'x;drop table t' '--target: target name'
usage_error list --entity Items '--entity: entity name "Items" is invalid'
usage_error list "$id1" 'deadletter list takes no ids'
usage_error list --all '--all applies to replay and drop, not list'
usage_error frobnicate 'unknown deadletter subcommand "frobnicate"'
usage_error replay 'needs exactly one of: ids, --target T, --all'
usage_error replay "$id1" --all 'needs exactly one of'
usage_error drop --target node1 --all 'needs exactly one of'
usage_error replay --entity items '--entity needs --target'
usage_error replay --all --json '--json applies to list only'
usage_error drop --all --limit 3 '--limit applies to list only'
usage_error replay --all --yes '--yes applies to drop only'
usage_error replay abc 'dead letter id: expected an integer, got "abc"'
usage_error drop 0 'dead letter id: 0 is out of range'
usage_error replay --target 'Node1' '--target: target name "Node1" is invalid'
expect 2
expect 2 list --bogus
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters")" = 6 ] || fail "a usage error changed the hub"

# ---- replay ----
expect 0 replay "$id1"
grep -qx "1 dead letters marked for replay" "$out" || fail "replay $id1: $(cat "$out")"
[ "$(hub "SELECT status FROM cachewarp.dead_letters WHERE id = $id1")" = replay ] || fail "letter $id1 not replaying"
expect 0 replay --target node1 --entity orders
grep -qx "1 dead letters marked for replay" "$out" || fail "replay node1/orders: $(cat "$out")"
[ "$(hub "SELECT status FROM cachewarp.dead_letters WHERE id = $id4")" = replay ] || fail "letter $id4 not replaying"
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters WHERE status = 'replay'")" = 3 ] ||
	fail "replay touched other letters: $(hub "SELECT id, status FROM cachewarp.dead_letters")"
expect 1 replay "$id2" 999999
grep -qx "cachewarp: no dead letter 999999" "$err" || fail "missing id not named: $(cat "$err")"
grep -qx "1 dead letters marked for replay" "$out" || fail "the existing id was not replayed: $(cat "$out")"
expect 0 replay --all
grep -qx "6 dead letters marked for replay" "$out" || fail "replay --all: $(cat "$out")"
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters WHERE status <> 'replay'")" = 0 ] || fail "replay --all left some"

# ---- drop ----
expect 0 drop "$id1" "$id2"
grep -qx "2 dead letters dropped" "$out" || fail "drop by ids: $(cat "$out")"
# Several letters without ids and no terminal: refused, nothing dropped.
expect 2 drop --target pg1 </dev/null
grep -q 'drop would delete 2 dead letters; add --yes to confirm' "$err" || fail "no --yes hint: $(cat "$err")"
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters")" = 4 ] || fail "a refused drop dropped"
# On a terminal (script(1) gives the command one) it asks; anything but y keeps them.
on_terminal() { # on_terminal ANSWER ARGS...: deadletter ARGS on a pseudo-terminal, ANSWER typed
	local answer=$1
	shift
	printf '%s\n' "$answer" | script -qec "$(printf '%q ' "$bin" deadletter -c "$work/cw.yaml" "$@")" /dev/null >"$out" 2>&1
}
on_terminal n drop --target pg1 || fail "drop answered n exited $?: $(cat "$out")"
grep -q 'drop 2 dead letters? \[y/N\]' "$out" || fail "no question on a terminal: $(cat "$out")"
grep -q 'nothing dropped' "$out" || fail "answer n: $(cat "$out")"
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters")" = 4 ] || fail "answer n dropped"
hub "INSERT INTO cachewarp.dead_letters (target, entity, doc_id, oplog_id, version, op, data, stage, error)
     VALUES ('pg2', 'items', '9', 30, 1, 'delete', NULL, 'write', 'e'), ('pg2', 'items', '10', 31, 1, 'delete', NULL, 'write', 'e')" >/dev/null
on_terminal y drop --target pg2 || fail "drop answered y exited $?: $(cat "$out")"
grep -q '2 dead letters dropped' "$out" || fail "answer y: $(cat "$out")"
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters WHERE target = 'pg2'")" = 0 ] || fail "answer y kept them"
expect 0 drop --target pg1 --yes
grep -qx "2 dead letters dropped" "$out" || fail "drop --target pg1 --yes: $(cat "$out")"
# One letter needs no confirmation.
expect 0 drop --target node1 --entity orders </dev/null
grep -qx "1 dead letters dropped" "$out" || fail "drop of one letter: $(cat "$out")"
expect 1 drop 999999
grep -qx "cachewarp: no dead letter 999999" "$err" || fail "drop of a missing id: $(cat "$err")"
expect 1 replay 999998 999999
grep -qx "cachewarp: no dead letters 999998, 999999" "$err" || fail "missing ids not named: $(cat "$err")"
expect 0 drop --all -y
grep -qx "1 dead letters dropped" "$out" || fail "drop --all: $(cat "$out")"
[ "$(hub "SELECT count(*) FROM cachewarp.dead_letters")" = 0 ] || fail "drop --all left letters"
expect 0 list
[ "$(wc -l <"$out")" -eq 1 ] || fail "empty list: $(cat "$out")"

# ---- runtime failures: exit 1; a bad configuration: exit 2 ----
E2E_HUB_URL=postgresql://postgres@127.0.0.1:1/hub e2e_config "$work/down.yaml" items public.items
"$bin" deadletter list -c "$work/down.yaml" >"$out" 2>"$err"
[ $? -eq 1 ] || fail "unreachable hub: want exit 1: $(cat "$err")"
"$bin" deadletter list -c "$work/nonexistent.yaml" >"$out" 2>"$err"
[ $? -eq 2 ] || fail "missing configuration: want exit 2: $(cat "$err")"

# ---- the daemon's gauge ----
# Streams of targets this daemon does not run, so no apply loop replays them meanwhile.
e2e_sql app "CREATE TABLE items (id int PRIMARY KEY, note text)" >/dev/null
hub "INSERT INTO cachewarp.dead_letters (target, entity, doc_id, oplog_id, version, op, data, stage, error, status) VALUES
  ('edge1', 'items', '1', 10, 1, 'upsert', '{}', 'write', 'e', 'failed'),
  ('edge1', 'items', '2', 11, 1, 'upsert', '{}', 'write', 'e', 'failed'),
  ('edge1', 'items', '3', 12, 1, 'upsert', '{}', 'write', 'e', 'replay'),
  ('pg1', 'orders', '1', 13, 1, 'delete', NULL, 'write', 'e', 'failed')" >/dev/null
"$bin" run -c "$work/cw.yaml" >"$work/run.out" 2>"$work/run.err" &
daemon=$!
port_of_daemon() {
	grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.err" |
		grep -o '[0-9]*"$' | tr -d '"'
}
listening() { [ -n "$(port_of_daemon)" ] && echo ok; }
wait_for "the daemon listens" listening
port=$(port_of_daemon)
gauge() { # gauge TARGET ENTITY STATUS: the value on /metrics
	curl -s "http://127.0.0.1:$port/metrics" |
		grep -F "cachewarp_dead_letters{target=\"$1\",entity=\"$2\",status=\"$3\"} " | cut -d' ' -f2
}
gauges_are() { # gauges_are WANT...: edge1/items failed, replay; pg1/orders failed, replay
	same "$(gauge edge1 items failed) $(gauge edge1 items replay) $(gauge pg1 orders failed) $(gauge pg1 orders replay)" "$*"
}
wait_for "the gauge counts the letters" gauges_are 2 1 1 0
curl -s "http://127.0.0.1:$port/metrics" | grep -q '^# TYPE cachewarp_dead_letters gauge$' ||
	fail "no gauge family on /metrics"
expect 0 drop --target pg1
wait_for "a stream without letters reads 0" gauges_are 2 1 0 0
expect 0 replay --target edge1
wait_for "replayed letters move to status replay" gauges_are 0 3 0 0

[ "$failures" -eq 0 ] && echo "deadletters: all checks passed"
exit $((failures > 0))
