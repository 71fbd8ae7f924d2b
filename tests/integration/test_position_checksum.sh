#!/usr/bin/env bash
# Position integrity: the PostgreSQL source's checkpoint in the hub carries a
# checksum. Edited with psql behind cachewarp's back, it fails the check and
# is treated as lost: with on_position_lost rescan a new generation scans the
# table again and sweeps the row deleted meanwhile; with fail the source stops
# and says why, and nothing is rescanned. A checkpoint stored without a
# checksum (before the column existed) is accepted once and stored again
# with one, without a rescan. The targets' positions (SQLite's metadata.sqlite,
# the PostgreSQL target's positions table, the MongoDB target's
# _cachewarp_position) moved ahead by hand fail theirs and are applied again
# from the start instead of skipping changes. A MySQL source's GTID checkpoint
# edited the same way is rescanned too.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

E2E_STOP=e2e_stop_daemon
stop_daemon() { e2e_stop_daemon; }
e2e_init position-checksum
e2e_start_pg
e2e_start_mongo
asql() { e2e_sql app "$1"; }
hsql() { e2e_sql hub "$1"; }
key=pg_lsn:app_pg

asql "CREATE TABLE items (id int PRIMARY KEY, v text);
      INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')" || fail "create table"
e2e_config "$work/cw.yaml" items public.items
echo 'retry: {initial: 50ms, max: 500ms, give_up_after: 10m}' >>"$work/cw.yaml"
e2e_sql postgres "CREATE DATABASE warehouse" >/dev/null || fail "create database warehouse"
sed -i "s|^    dir: $work/dbs\$|&\n  - name: warehouse\n    type: postgres\n    url: $base/warehouse\n  - name: backup\n    type: mongodb\n    url: \"$mongo_url\"\n    database: backup\n    write_concern: \"1\"|" \
	"$work/cw.yaml"
mexec() { "$root/build/cw-mongo-exec" "$mongo_url" backup; }
in_backup() { same "$(echo "{\"count\": \"items\", \"filter\": {\"v\": \"$1\"}}" | mexec)" 1; }
wsql() { e2e_sql warehouse "$1"; }
in_warehouse() { same "$(wsql "SELECT v FROM public.items WHERE id = '$1'" 2>/dev/null)" "$2"; }

start_daemon() { # start_daemon RUN [VAR=VALUE...]
	local run=$1
	shift
	env "$@" "$bin" run -c "$work/cw.yaml" >"$work/$run.out" 2>"$work/$run.err" &
	daemon=$!
}
cached() { sqlite3 "$work/dbs/items/db.sqlite" "SELECT v FROM items WHERE id = '$1'" 2>/dev/null; }
has_row() { same "$(cached "$1")" "$2"; }
gone() { same "$(cached "$1")" ""; }
version() { hsql "SELECT version FROM cachewarp.entities WHERE name = 'items'"; }
checksum() { hsql "SELECT checksum FROM cachewarp.metadata WHERE key = '$key'"; }
checked() { [ "$(hsql "SELECT checksum ~ '^crc32c:[0-9a-f]{8}$' FROM cachewarp.metadata WHERE key = '$key'")" = t ] && echo ok; }
logged() { grep -q -- "$2" "$work/$1.err" && echo ok; }
corrupt() { # moves the stored LSN back, leaving the checksum as it was
	hsql "UPDATE cachewarp.metadata SET value = jsonb_set(value, '{lsn}', '\"0/1\"')
	      WHERE key = '$key'" || fail "could not edit the checkpoint"
}

# ---- a checkpoint is stored with its checksum --------------------------------
start_daemon first
wait_for "the snapshot in the cache" has_row 3 three
asql "INSERT INTO items VALUES (4, 'four')"
wait_for "a live change in the cache" has_row 4 four
wait_for "the checkpoint stored with a checksum" checked
stop_daemon
v1=$(version)

# ---- edited behind cachewarp's back: lost, rescanned, swept ------------------
asql "DELETE FROM items WHERE id = 2"
corrupt
start_daemon rescan
wait_for "the failed checksum logged" logged rescan \
	'checkpoint \\"pg_lsn:app_pg\\" of source \\"app_pg\\" failed its checksum: the stored position is not used'
new_generation() { same "$(version)" $((v1 + 1)); }
wait_for "a new generation after the failed checksum" new_generation
wait_for "the row deleted meanwhile swept from the cache" gone 2
asql "INSERT INTO items VALUES (5, 'five')"
wait_for "live changes after the rescan" has_row 5 five
wait_for "the new checkpoint stored with a checksum" checked
grep -q '"on_position_lost":"rescan"' "$work/rescan.err" || fail "the rescan's log line lacks the policy"
stop_daemon
v2=$(version)

# ---- stored before checksums existed: accepted once, stored again with one ---
hsql "UPDATE cachewarp.metadata SET checksum = NULL WHERE key = '$key'"
start_daemon legacy
wait_for "the unchecked checkpoint accepted and logged" logged legacy \
	'"msg":"position stored without a checksum: accepted once and stored again with one","key":"pg_lsn:app_pg"'
wait_for "the checkpoint stored again with a checksum" checked
asql "INSERT INTO items VALUES (6, 'six')"
wait_for "live changes from the accepted checkpoint" has_row 6 six
[ "$(version)" = "$v2" ] || fail "an unchecked checkpoint started a new generation ($v2 -> $(version))"
grep -q 'failed its checksum' "$work/legacy.err" && fail "an unchecked checkpoint was treated as lost"
wait_for "the PostgreSQL target caught up" in_warehouse 6 six
wait_for "the MongoDB target caught up" in_backup six
stop_daemon

# ---- the targets' positions moved ahead by hand: applied again, nothing skipped
wsql "UPDATE cachewarp_meta.positions SET position = position + 1000" >/dev/null ||
	fail "could not edit the PostgreSQL target's positions"
sqlite3 "$work/dbs/metadata.sqlite" "UPDATE metadata SET value = value + 1000 WHERE key = 'position'" ||
	fail "could not edit the SQLite target's position"
echo '{"update": "_cachewarp_position", "filter": {}, "change": {"$inc": {"position": 1000}}, "multi": true}' |
	mexec >/dev/null || fail "could not edit the MongoDB target's positions"
asql "INSERT INTO items VALUES (8, 'eight')"
start_daemon targets
wait_for "the SQLite target's failed checksum logged" logged targets \
	'"msg":"stored position failed its checksum: starting from position 0"'
wait_for "the PostgreSQL target's failed checksum logged" logged targets \
	'"msg":"stored position failed its checksum: applying again from the start","target":"warehouse","entity":"items"'
wait_for "the change after the edited position in the SQLite cache" has_row 8 eight
wait_for "the change after the edited position in the PostgreSQL target" in_warehouse 8 eight
wait_for "the MongoDB target's failed checksum logged" logged targets \
	'"msg":"stored position failed its checksum: applying again from the start","target":"backup","position":"backup:items","field":"position"'
wait_for "the change after the edited position in the MongoDB target" in_backup eight
stop_daemon

# ---- on_position_lost: fail: the source stops and says why --------------------
corrupt
before=$(hsql "SELECT value::text FROM cachewarp.metadata WHERE key = '$key'")
start_daemon fail CACHEWARP_SOURCES_0_ON_POSITION_LOST=fail
wait_for "the fail policy's message" logged fail \
	'failed its checksum: the stored position is not used; on_position_lost is fail, so the source stops'
[ "$(version)" = "$v2" ] || fail "on_position_lost fail rescanned ($v2 -> $(version))"
[ "$(hsql "SELECT value::text FROM cachewarp.metadata WHERE key = '$key'")" = "$before" ] ||
	fail "on_position_lost fail changed the stored position"
stop_daemon

# ---- a MySQL source's GTID checkpoint: the same check ---------------------------
e2e_start_mariadb
my "CREATE TABLE things (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO things VALUES (1, 'a'), (2, 'b')" ||
	fail "create the mysql table"
e2e_sql postgres "CREATE DATABASE hub_my" >/dev/null || fail "create database hub_my"
msql() { e2e_sql hub_my "$1"; }
cat >"$work/my.yaml" <<YAML
hub: {url: "$base/hub_my"}
sources:
  - {name: app_my, type: mysql, url: "$my_url"}
entities:
  - {name: things, source: app_my, table: things}
targets:
  - {name: node1, type: sqlite, dir: "$work/dbs_my"}
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
retry: {initial: 50ms, max: 500ms, give_up_after: 10m}
YAML
thing_gone() { same "$(thing 1)" ""; }
start_my() { "$bin" run -c "$work/my.yaml" >"$work/$1.out" 2>"$work/$1.err" & daemon=$!; }
thing() { sqlite3 "$work/dbs_my/things/db.sqlite" "SELECT v FROM things WHERE id = '$1'" 2>/dev/null; }
has_thing() { same "$(thing "$1")" "$2"; }
my_checked() { [ "$(msql "SELECT checksum ~ '^crc32c:' FROM cachewarp.metadata WHERE key = 'mysql_gtid:app_my'")" = t ] && echo ok; }
my_version() { same "$(msql "SELECT version FROM cachewarp.entities WHERE name = 'things'")" "$1"; }
start_my my_first
wait_for "the mysql snapshot in the cache" has_thing 2 b
my "INSERT INTO things VALUES (3, 'c')"
wait_for "a streamed mysql row" has_thing 3 c
wait_for "the mysql checkpoint stored with a checksum" my_checked
stop_daemon
my "DELETE FROM things WHERE id = 1"
msql "UPDATE cachewarp.metadata SET value = jsonb_set(value, '{gtid}', '\"0-1-1\"')
      WHERE key = 'mysql_gtid:app_my'" >/dev/null || fail "could not edit the mysql checkpoint"
start_my my_rescan
wait_for "the mysql checkpoint's failed checksum logged" logged my_rescan \
	'checkpoint \\"mysql_gtid:app_my\\" of source \\"app_my\\" failed its checksum: the stored position is not used'
wait_for "a new generation of the mysql entity" my_version 2
wait_for "the mysql row deleted meanwhile swept" thing_gone
stop_daemon

[ "$failures" -eq 0 ] && echo "position checksum: all checks passed"
exit $((failures > 0))
