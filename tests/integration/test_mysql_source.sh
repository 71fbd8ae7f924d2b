#!/usr/bin/env bash
# The MySQL/MariaDB source end to end against a throwaway MariaDB
# (tests/support/mariadb.sh) and a PostgreSQL hub, into a SQLite cache:
#   * every column type arrives value-exact, and a row read by the snapshot
#     equals the same row read from the binlog (INSERT ... SELECT of it);
#   * streamed inserts, updates (a key change too), deletes, a TRUNCATE;
#   * a MINIMAL row image: the columns an update leaves out stay as they were;
#   * MariaDB's compressed binlog events are read;
#   * utf16, utf16le, ucs2 and utf32 text streamed equals the snapshot's; a row the
#     decoder cannot read goes to the quarantine, the stream goes on;
#   * an entity whose table is missing fails alone, and streams once created;
#   * `entity add` refuses a table without a primary key, and an entity added
#     at runtime is scanned, then streamed;
#   * a restart resumes from the hub's position: changes made while stopped
#     arrive once;
#   * kill -9 inside a transaction larger than a batch, at each seam of the
#     hub write (failpoints): after the restart every row is in the oplog
#     exactly once;
#   * the binlog purged past the stored position: on_position_lost: rescan
#     scans again (a new generation) and sweeps the rows deleted meanwhile;
#     on_position_lost: fail stops instead; a RESET MASTER is a lost position too;
#   * the source's user has only the privileges the docs ask for, and its
#     password is in no log line;
#   * a wrong binlog_format and a missing privilege fail with what to run.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() {
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
}
E2E_STOP=stop_daemon
e2e_init mysql-source
e2e_start_pg
e2e_start_mariadb
hub() { e2e_sql hub "$1"; }

my "CREATE TABLE kinds (
	id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, bu BIGINT UNSIGNED, bi BIGINT,
	d DECIMAL(40,10), d2 DECIMAL(10,2), f FLOAT, g DOUBLE, bt BIT(12), y YEAR, dt DATE,
	tm TIME(6), dtm DATETIME(3), ts TIMESTAMP(6) NULL, c CHAR(5), vc VARCHAR(100),
	l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT, bl BLOB, bn BINARY(4), e ENUM('x','y'),
	st SET('a','b','c'), j JSON, gm GEOMETRY);
CREATE TABLE olines (tenant VARCHAR(20), line_no BIGINT, sku VARCHAR(20), PRIMARY KEY (tenant, line_no));
CREATE TABLE big (id INT PRIMARY KEY, v INT);
CREATE USER 'cw'@'127.0.0.1' IDENTIFIED BY 'Secr3t-pw';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cw'@'127.0.0.1';
GRANT SELECT ON app.* TO 'cw'@'127.0.0.1';"
# the source connects as a user with only the privileges docs/sources-mysql.md asks for
cw_url=${my_url/root@/cw:Secr3t-pw@}
row="-128, 255, 18446744073709551615, -9223372036854775808,
	123456789012345678901234567890.0123456789, 2.50, 0.1, 9007199254740993, b'101010101010',
	2155, '2024-02-29', '-12:34:56.000001', '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.123456',
	'ab', CONCAT('tab', CHAR(9), 'x \"q\" \\\\ ü 世界'), 'café', 'text', X'00FF', X'DEAD', 'y', 'a,c',
	'{\"x\": 2.50, \"big\": 123456789012345678901234567890}', ST_GeomFromText('POINT(1 2)', 4326)"
my "INSERT INTO kinds VALUES (1, $row), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO olines VALUES ('acme', 1, 'SKU-1');"

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_my
    type: mysql
    url: $cw_url
entities:
  - {name: kinds, source: app_my, table: kinds}
  - {name: olines, source: app_my, table: app.olines}
  - {name: big, source: app_my, table: big}
  - {name: later, source: app_my, table: later}
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms, batch_size: 100}
apply: {poll_interval: 100ms}
YAML
start() { # [BINARY]
	"${1:-$bin}" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
	daemon=$!
}
stop() {
	kill -TERM "$daemon" 2>/dev/null
	wait "$daemon" 2>/dev/null
	daemon=
}
cache() { sqlite3 -readonly "$work/dbs/$1/db.sqlite" "$2" 2>/dev/null; }
data() { hub "SELECT data::jsonb->>'$2' FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '$1' ORDER BY id DESC LIMIT 1"; }
value_is() { same "$(data "$1" "$2")" "$3"; }
cache_is() { same "$(cache "$1" "$2")" "$3"; }   # DB SQL WANT
hub_is() { same "$(hub "$1")" "$2"; }            # SQL WANT

start
wait_for "the snapshot's rows in the cache" cache_is kinds "SELECT count(*) FROM kinds" 2

# The same row from the binlog: equal to the snapshot's, value for value.
my "INSERT INTO kinds SELECT 101, ti, tu, bu, bi, d, d2, f, g, bt, y, dt, tm, dtm, ts, c, vc, l1, tx,
	bl, bn, e, st, j, gm FROM kinds WHERE id = 1"
wait_for "the streamed copy of row 1" cache_is kinds "SELECT count(*) FROM kinds WHERE id = '101'" 1
same_row=$(hub "SELECT (SELECT data::jsonb - 'id' FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '1')
	= (SELECT data::jsonb - 'id' FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '101')")
[ "$same_row" = t ] || fail "snapshot and binlog differ: $(hub "SELECT doc_id, data FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id IN ('1', '101')")"
for id in 1 101; do
	for check in "bu 18446744073709551615" "bi -9223372036854775808" \
		"d 123456789012345678901234567890.0123456789" "d2 2.50" "f 0.1" "g 9007199254740992" \
		"bt 2730" "y 2155" "dt 2024-02-29" "tm -12:34:56.000001" "dtm 2024-02-29 12:34:56.789" \
		"ts 2024-02-29 12:34:56.123456+00" "c ab" "l1 café" "bl \\x00ff" "bn \\xdead0000" "e y" \
		"st a,c" "gm 0101000020e6100000000000000000f03f0000000000000040"; do
		got=$(value_is "$id" "${check%% *}" "${check#* }")
		[ "$got" = ok ] || fail "row $id column ${check%% *}: $got"
	done
	got=$(value_is "$id" vc "$(printf 'tab\tx "q" \\ ü 世界')")
	[ "$got" = ok ] || fail "row $id column vc: $got"
	got=$(value_is "$id" j '{"x": 2.50, "big": 123456789012345678901234567890}')
	[ "$got" = ok ] || fail "row $id column j: $got"
done
# ... and into the cache: digits kept where a double cannot hold them
got=$(cache kinds "SELECT typeof(bu) || ':' || bu || '|' || d || '|' || vc FROM kinds WHERE id = '101'")
[ "$got" = "text:18446744073709551615|123456789012345678901234567890.0123456789|$(printf 'tab\tx "q" \\ ü 世界')" ] ||
	fail "cache row 101: $got"

# A missing table fails its entity only; once created it is scanned and streams.
in_log() { grep -q -F "$1" "$work/run.log" && echo ok; }
wait_for "the missing table's entity failed" in_log 'table app.later does not exist'
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.log" | tail -1 |
	grep -o '[0-9]*"$' | tr -d '"')
failed_gauge() { curl -s "http://127.0.0.1:$port/metrics" | grep -q "^cachewarp_entity_failed{entity=\"later\",source=\"app_my\"} $1\$" && echo ok; }
wait_for "cachewarp_entity_failed 1 for the missing table" failed_gauge 1
my "CREATE TABLE later (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO later VALUES (1, 'one')"
wait_for "the entity once its table exists" cache_is later "SELECT v FROM later WHERE id = '1'" one
wait_for "cachewarp_entity_failed back to 0" failed_gauge 0
my "INSERT INTO later VALUES (2, 'two')"
wait_for "its streamed rows" cache_is later "SELECT count(*) FROM later" 2

# An entity added at runtime is checked against the server, then scanned and streamed.
my "CREATE TABLE nokey (a INT); CREATE TABLE added (id INT PRIMARY KEY, v INT); INSERT INTO added VALUES (1, 10)"
out=$("$bin" entity add nk --source app_my --table nokey -c "$work/cw.yaml" 2>&1) &&
	fail "an entity on a table without a primary key was added: $out"
case $out in *"table app.nokey has no primary key: add one (ALTER TABLE \`app\`.\`nokey\` ADD PRIMARY KEY"*) ;;
*) fail "entity add without a key said: $out" ;; esac
"$bin" entity add added --source app_my --table added -c "$work/cw.yaml" >/dev/null 2>&1 ||
	fail "entity add of a table with a key was refused"
my "INSERT INTO added VALUES (2, 20)"
wait_for "the entity added at runtime" cache_is added "SELECT group_concat(id || ':' || v, ' ') FROM (SELECT * FROM added ORDER BY id)" "1:10 2:20"

# utf16, utf16le, ucs2 and utf32 values arrive as UTF-8, as the snapshot reads them; a ucs2
# value that is no character (a lone surrogate, which MariaDB stores) goes to the quarantine,
# and the stream goes on.
my "SET NAMES utf8mb4; CREATE TABLE wide (id INT PRIMARY KEY, w VARCHAR(10) CHARACTER SET utf16,
	l VARCHAR(10) CHARACTER SET utf16le, u VARCHAR(10) CHARACTER SET ucs2,
	t VARCHAR(10) CHARACTER SET utf32);
INSERT INTO wide VALUES (1, 'a😀é', 'a😀é', 'aé€', 'a😀é')"
"$bin" entity add wide --source app_my --table wide -c "$work/cw.yaml" >/dev/null 2>&1 ||
	fail "entity add wide was refused"
wait_for "the wide-charset entity live" hub_is "SELECT status FROM cachewarp.entities WHERE name = 'wide'" live
my "INSERT INTO wide SELECT 2, w, l, u, t FROM wide WHERE id = 1; INSERT INTO wide VALUES (3, NULL, NULL, X'D800', NULL);
    INSERT INTO kinds (id, vc) VALUES (160, 'after wide')"
wait_for "the stream after a quarantined row" cache_is kinds "SELECT vc FROM kinds WHERE id = '160'" "after wide"
wait_for "the streamed wide row" cache_is wide "SELECT count(*) FROM wide WHERE id = '2'" 1
wide_row() { hub "SELECT data::jsonb - 'id' FROM cachewarp.oplog WHERE entity = 'wide' AND doc_id = '$1' ORDER BY id DESC LIMIT 1"; }
[ "$(wide_row 1)" = "$(wide_row 2)" ] || fail "wide row scanned $(wide_row 1), streamed $(wide_row 2)"
[ "$(wide_row 2)" = '{"l": "a😀é", "t": "a😀é", "u": "aé€", "w": "a😀é"}' ] ||
	fail "wide row streamed as $(wide_row 2)"
case $(hub "SELECT reason FROM cachewarp.quarantine WHERE entity = 'wide'") in
*'column "u"'*'not valid ucs2'*) ;;
*) fail "no quarantine record names the ucs2 column: $(hub "SELECT reason FROM cachewarp.quarantine")" ;;
esac
my "DELETE FROM kinds WHERE id = 160"
wait_for "row 160 deleted" cache_is kinds "SELECT count(*) FROM kinds WHERE id = '160'" 0

# MariaDB's compressed binlog (log_bin_compress): rows arrive as they would uncompressed.
my "SET GLOBAL log_bin_compress = ON, GLOBAL log_bin_compress_min_len = 10"
my "INSERT INTO kinds (id, vc) VALUES (150, REPEAT('c', 90))"
wait_for "a compressed insert" cache_is kinds "SELECT length(vc) FROM kinds WHERE id = '150'" 90
my "DELETE FROM kinds WHERE id = 150"
wait_for "a compressed delete" cache_is kinds "SELECT count(*) FROM kinds WHERE id = '150'" 0
my "SET GLOBAL log_bin_compress = OFF"

# binlog_row_image=MINIMAL: an update carries the changed column only; the others stay.
my "SET GLOBAL binlog_row_image = 'MINIMAL'"
mariadb --no-defaults -uroot --socket="$work/my/sock" app -e \
	"SET SESSION binlog_row_image = 'MINIMAL'; UPDATE kinds SET ti = 5 WHERE id = 1"
wait_for "a MINIMAL update" cache_is kinds "SELECT ti || '|' || c || '|' || l1 FROM kinds WHERE id = '1'" "5|ab|café"
[ "$(hub "SELECT data::jsonb::text FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '1' ORDER BY id DESC LIMIT 1")" = '{"ti": 5}' ] ||
	fail "the MINIMAL update's change holds more than the changed column"
my "SET GLOBAL binlog_row_image = 'FULL'"

# Updates, a key change, deletes; a TRUNCATE starts a new generation and sweeps.
my "UPDATE kinds SET vc = 'changed', d2 = -0.50 WHERE id = 101; DELETE FROM kinds WHERE id = 2;
	BEGIN; UPDATE olines SET line_no = 2 WHERE tenant = 'acme'; INSERT INTO olines VALUES ('beta', 7, 'S'); COMMIT;"
wait_for "update" cache_is kinds "SELECT vc || d2 FROM kinds WHERE id = '101'" "changed-0.5"
wait_for "delete" cache_is kinds "SELECT count(*) FROM kinds WHERE id = '2'" 0
wait_for "key change" cache_is olines "SELECT group_concat(id, ' ') FROM (SELECT id FROM olines ORDER BY id)" \
	'["acme",2] ["beta",7]'
version=$(hub "SELECT version FROM cachewarp.entities WHERE name = 'olines'")
my "TRUNCATE TABLE olines; INSERT INTO olines VALUES ('gamma', 1, 'T');"
wait_for "truncate sweeps" cache_is olines "SELECT group_concat(id, ' ') FROM olines" '["gamma",1]'
[ "$(hub "SELECT version FROM cachewarp.entities WHERE name = 'olines'")" -gt "$version" ] ||
	fail "TRUNCATE did not start a new generation"

# Lag in seconds and bytes, and the GTID position, on /metrics and /v1/status.
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.log" | tail -1 |
	grep -o '[0-9]*"$' | tr -d '"')
metric_line() { curl -s "http://127.0.0.1:$port/metrics" | grep -q "^$1{source=\"app_my\"} " && echo ok; }
wait_for "the lag in bytes on /metrics" metric_line cachewarp_source_lag_bytes
wait_for "the lag in seconds on /metrics" metric_line cachewarp_source_lag_seconds
status_position() { curl -s "http://127.0.0.1:$port/v1/status" | grep -q '"position":"0-1-[0-9]*"' && echo ok; }
wait_for "the GTID position in /v1/status" status_position

# A restart resumes: changes made while stopped arrive once.
stop
my "INSERT INTO kinds (id, vc) VALUES (200, 'while stopped'); UPDATE kinds SET vc = 'again' WHERE id = 200;"
start
wait_for "changes made while stopped" cache_is kinds "SELECT vc FROM kinds WHERE id = '200'" again
[ "$(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '200'")" = 2 ] ||
	fail "row 200 has $(hub "SELECT count(*) FROM cachewarp.oplog WHERE entity = 'kinds' AND doc_id = '200'") oplog rows, want 2"
stop

# kill -9 at a seam of the hub write (failpoints, the third time reached) while a
# 1,000-row transaction streams in batches of 100: after the restart each row of it
# is in the oplog exactly once.
if [ -x "$fp_bin" ]; then
	k=0
	for point in after_txn_part_commit before_oplog_copy after_oplog_copy before_hub_commit \
		after_hub_commit; do
		lo=$((k * 1000 + 1)) hi=$(((k + 1) * 1000))
		k=$((k + 1))
		in_range="entity = 'big' AND op = 'upsert' AND doc_id::bigint BETWEEN $lo AND $hi"
		CW_FAILPOINTS="$point=abort@3" start "$fp_bin"
		my "INSERT INTO big SELECT seq, seq FROM seq_${lo}_to_${hi}"
		wait "$daemon" 2>/dev/null
		daemon=
		part=$(hub "SELECT count(*) FROM cachewarp.oplog WHERE $in_range")
		[ "$part" -lt 1000 ] || fail "$point: the process was not killed inside the transaction"
		start
		wait_for "$point: the rest of the transaction" hub_is \
			"SELECT count(*) FROM cachewarp.oplog WHERE $in_range" 1000
		[ "$(hub "SELECT count(DISTINCT doc_id) FROM cachewarp.oplog WHERE $in_range")" = 1000 ] ||
			fail "$point: rows of the interrupted transaction are duplicated or missing"
		stop
	done
else
	echo "SKIP kill -9 inside a transaction: no $fp_bin" >&2
fi

# The binlog purged past the stored position: rescan, and the sweep removes what was deleted.
version=$(hub "SELECT version FROM cachewarp.entities WHERE name = 'kinds'")
my "DELETE FROM kinds WHERE id = 200; INSERT INTO kinds (id, vc) VALUES (300, 'after purge');
	FLUSH BINARY LOGS;"
last=$(my "SHOW MASTER STATUS" | cut -f1)
# a binlog is kept until InnoDB's commit is durable (a second here): purge until it goes
purged() { my "PURGE BINARY LOGS TO '$last'"; same "$(my "SHOW BINARY LOGS" | wc -l)" 1; }
wait_for "the purge of the old binlogs" purged
start
wait_for "the rescan" cache_is kinds "SELECT group_concat(id, ' ') FROM (SELECT id FROM kinds ORDER BY id)" \
	"1 101 300"
[ "$(hub "SELECT version FROM cachewarp.entities WHERE name = 'kinds'")" -gt "$version" ] ||
	fail "the rescan did not start a new generation"
grep -q "binlog position lost" "$work/run.log" || fail "no log line says the position was lost"
stop

# on_position_lost: fail stops the source with what to do, and scans nothing.
sed -i 's|^    url: mysql://.*|&\n    on_position_lost: fail|' "$work/cw.yaml"
version=$(hub "SELECT version FROM cachewarp.entities WHERE name = 'kinds'")
my "INSERT INTO kinds (id) VALUES (400); FLUSH BINARY LOGS"
last=$(my "SHOW MASTER STATUS" | cut -f1)
wait_for "the second purge" purged
start
wait_for "on_position_lost: fail" in_log 'lost its binlog position (on_position_lost: fail; delete the metadata key'
[ "$(hub "SELECT version FROM cachewarp.entities WHERE name = 'kinds'")" = "$version" ] ||
	fail "on_position_lost: fail started a new generation"
stop
sed -i '/on_position_lost: fail/d' "$work/cw.yaml"

# A server whose binlog was reset (RESET MASTER): the position is gone too, and rescan.
version=$(hub "SELECT version FROM cachewarp.entities WHERE name = 'kinds'")
my "RESET MASTER; INSERT INTO kinds (id, vc) VALUES (500, 'after reset')"
start
wait_for "the rescan after RESET MASTER" cache_is kinds "SELECT vc FROM kinds WHERE id = '500'" "after reset"
[ "$(hub "SELECT version FROM cachewarp.entities WHERE name = 'kinds'")" -gt "$version" ] ||
	fail "the rescan after RESET MASTER did not start a new generation"
stop
grep -q 'Secr3t-pw' "$work/run.log" && fail "a log line holds the source's password"
stop

# Set-up checks say what to change: the binlog format, then a missing privilege.
my "SET GLOBAL binlog_format = 'MIXED'"
start
wait_for "the binlog_format check" in_log "has binlog_format = MIXED: run SET GLOBAL binlog_format = 'ROW';"
stop
my "SET GLOBAL binlog_format = 'ROW'; REVOKE REPLICATION SLAVE ON *.* FROM 'cw'@'127.0.0.1'"
start
wait_for "the privilege check" in_log "the user lacks REPLICATION SLAVE: run GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cw'@'%';"
stop
grep -q 'Secr3t-pw' "$work/run.log" && fail "a log line holds the source's password"
exit $((failures > 0))
