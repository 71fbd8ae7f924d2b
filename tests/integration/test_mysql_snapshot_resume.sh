#!/usr/bin/env bash
# The MySQL source's first snapshot resumes per key (docs/sources-mysql.md):
# the process is killed (failpoint after_hub_commit) in the middle of a
# table's scan, with a composite key of a string and a number; after the
# restart the scan goes on after the last key committed, in the same
# generation, and every row of the table is in the oplog exactly once.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
[ -x "$fp_bin" ] || { echo "FAIL: $fp_bin not built" >&2; exit 1; }

daemon=
stop_daemon() {
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
}
E2E_STOP=stop_daemon
e2e_init mysql-resume
e2e_start_pg
e2e_start_mariadb
hub() { e2e_sql hub "$1"; }

# Keys sort as strings first ('b' < 'b''s'), then as numbers (9 < 10): a literal of the
# wrong kind would skip or repeat rows.
my "CREATE TABLE olines (tenant VARCHAR(20), n BIGINT, v INT, PRIMARY KEY (tenant, n));
INSERT INTO olines SELECT 'b', seq, seq FROM seq_1_to_600;
INSERT INTO olines SELECT 'b''s', seq, seq FROM seq_1_to_600;"

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - {name: app_my, type: mysql, url: "$my_url"}
entities:
  - {name: lines, source: app_my, table: olines}
targets:
  - {name: node1, type: sqlite, dir: $work/dbs}
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms, batch_size: 100}
apply: {poll_interval: 100ms}
YAML
start() { # [BINARY]
	"${1:-$bin}" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
	daemon=$!
}
upserts="FROM cachewarp.oplog WHERE entity = 'lines' AND op = 'upsert'"

# The position is the first commit, then pages of 100: killed after the 5th commit.
CW_FAILPOINTS="after_hub_commit=abort@5" start "$fp_bin"
gone() { ps -o stat= -p "$daemon" | grep -qv Z && echo running || echo ok; }
wait_for "the failpoint ends the process inside the scan" gone || kill -9 "$daemon"
wait "$daemon" 2>/dev/null
daemon=
part=$(hub "SELECT count(*) $upserts")
[ "$part" -gt 0 ] && [ "$part" -lt 1200 ] ||
	fail "the process was not killed inside the scan ($part rows in the oplog)"
version=$(hub "SELECT version FROM cachewarp.entities WHERE name = 'lines'")
[ "$(hub "SELECT status FROM cachewarp.entities WHERE name = 'lines'")" = scanning ] ||
	fail "the entity is not scanning after the kill"

start
live() { [ "$(hub "SELECT status FROM cachewarp.entities WHERE name = 'lines'")" = live ] && echo ok || echo not live; }
wait_for "the scan finishes after the restart" live
[ "$(hub "SELECT count(*) $upserts")" = 1200 ] ||
	fail "the oplog holds $(hub "SELECT count(*) $upserts") upserts of 1200 rows"
[ "$(hub "SELECT count(DISTINCT doc_id) $upserts")" = 1200 ] ||
	fail "rows are missing: $(hub "SELECT count(DISTINCT doc_id) $upserts") distinct of 1200"
[ "$(hub "SELECT version FROM cachewarp.entities WHERE name = 'lines'")" = "$version" ] ||
	fail "the restart started a new generation instead of resuming"
[ "$(hub "SELECT count(DISTINCT version) $upserts")" = 1 ] || fail "upserts of several generations"
grep -q '"msg":"snapshot of table resumes after the last key committed"' "$work/run.log" ||
	fail "the restart did not resume the scan"
cached() { n=$(sqlite3 -readonly "$work/dbs/lines/db.sqlite" "SELECT count(*) FROM lines" 2>/dev/null); [ "$n" = 1200 ] && echo ok || echo "$n rows"; }
wait_for "every row in the cache" cached

e2e_stop_daemon
[ "$failures" -eq 0 ] || exit 1
echo "mysql_snapshot_resume: ok"
