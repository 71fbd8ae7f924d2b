#!/usr/bin/env bash
# No value changes on its way from PostgreSQL into a SQLite cache: jsonb keeps
# 2.50 and a 30-digit integer next to a string with an escape, a numeric past
# 2^53 stays an integer, numerics a double cannot hold stay text with their
# digits, arrays arrive as JSON arrays — on every path a row takes (the
# snapshot's first row, a streamed insert, an update that adds an escape,
# several updates of one row merged in one batch), with and without explicit
# columns.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init exact-values
e2e_start_pg
sql() { e2e_sql "$@"; }

sql app "CREATE TABLE jt (id int PRIMARY KEY, j jsonb, s text, n numeric, m numeric(12,2),
         big numeric, tags text[], nums numeric[])" >/dev/null
row="'{\"x\": 2.50, \"big\": 123456789012345678901234567890}', 'plain', 9007199254741001,
     2.50, 12345678901234567890123456789012345678901234567890.0000000001,
     '{red,\"with space\",NULL}', '{2.50,123456789012345678901234567890}'"
sql app "INSERT INTO jt VALUES (1, $row)" >/dev/null
# jt_shaped reads the same table through explicit columns (the projection path).
cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_pg
    type: postgres
    url: $base/app
entities:
  - {name: jt, source: app_pg, table: public.jt}
  - name: jt_shaped
    source: app_pg
    table: public.jt
    columns:
      - {name: j, type: jsonb, path: j}
      - {name: x, type: any, path: j.x}
      - {name: n, type: number, path: n}
      - {name: big, type: number, path: big}
      - {name: m, type: text, path: m}
      - {name: s, type: text, path: s}
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML

"$bin" run -c "$work/cw.yaml" >"$work/run.log" 2>&1 &
daemon=$!

cache() {
	sqlite3 -readonly "$work/dbs/jt/db.sqlite" \
		"SELECT j || '|' || s || '|' || typeof(n) || ':' || n || '|' || typeof(m) || ':' || m || '|' ||
		 typeof(big) || ':' || big || '|' || tags || '|' || nums FROM jt WHERE id = '$1'" 2>/dev/null
}
want_row() { # ID S
	echo "{\"x\":2.50,\"big\":123456789012345678901234567890}|$2|integer:9007199254741001|real:2.5|text:12345678901234567890123456789012345678901234567890.0000000001|[\"red\",\"with space\",null]|[2.50,123456789012345678901234567890]"
}
shaped() {
	sqlite3 -readonly "$work/dbs/jt_shaped/db.sqlite" \
		"SELECT j || '|' || typeof(x) || ':' || x || '|' || typeof(n) || ':' || n || '|' ||
		 typeof(big) || ':' || big || '|' || m || '|' || s FROM jt_shaped WHERE id = '$1'" 2>/dev/null
}
want_shaped() { # ID S
	echo "{\"x\":2.50,\"big\":123456789012345678901234567890}|real:2.5|integer:9007199254741001|text:12345678901234567890123456789012345678901234567890.0000000001|2.50|$2"
}
wait_row() { # ID S
	local deadline=$((SECONDS + 60)) want want2
	want=$(want_row "$1" "$2")
	want2=$(want_shaped "$1" "$2")
	until [ "$(cache "$1")" = "$want" ] && [ "$(shaped "$1")" = "$want2" ]; do
		if [ $SECONDS -ge $deadline ]; then
			fail "row $1: got $(cache "$1") and $(shaped "$1"), want $want and $want2"
			return 1
		fi
		sleep 0.2
	done
}

wait_row 1 plain                                        # the snapshot's first row
sql app "UPDATE jt SET s = 'say \"hi\"' WHERE id = 1" >/dev/null
wait_row 1 'say "hi"'                                   # an update that adds an escape
sql app "INSERT INTO jt VALUES (2, $row)" >/dev/null
wait_row 2 plain                                        # a streamed insert
sql app "BEGIN; UPDATE jt SET s = E'tab\\there' WHERE id = 2; UPDATE jt SET s = 'back\\slash' WHERE id = 2;
         INSERT INTO jt VALUES (3, $row); UPDATE jt SET s = 'q\"' WHERE id = 3; COMMIT" >/dev/null
wait_row 2 'back\slash'                                 # updates merged in one batch
wait_row 3 'q"'

# The cache's columns follow the source table's order, not the hub's jsonb key order.
columns=$(sqlite3 -readonly "$work/dbs/jt/db.sqlite" "SELECT group_concat(name, ',') FROM pragma_table_info('jt')")
[ "$columns" = "id,_extra,_version,_oplog_id,j,s,n,m,big,tags,nums" ] ||
	fail "cache columns $columns, want the table's order j,s,n,m,big,tags,nums after id"

kill -TERM "$daemon"
wait "$daemon"
daemon=
exit $((failures > 0))
