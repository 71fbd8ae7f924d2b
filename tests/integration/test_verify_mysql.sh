#!/usr/bin/env bash
# cachewarp verify for a MariaDB source (tests/support/mariadb.sh) against
# every target type: a SQLite cache, a PostgreSQL target (its columns made
# from the values) and a MongoDB target. The source is read in key order
# with the MySQL snapshot's own conversion, so equal data verifies equal
# (decimals, doubles, times, JSON, binary, a composite key, a typed entity);
# in each target a missing row, an extra row, a changed value, a stale
# generation and a row that differs only in a column its updates may leave
# out are found, exactly those; --repair writes them into the hub, the
# targets apply them, and a second verify is clean. A verify while the rows
# change reports nothing (its re-check waits for capture to pass the
# source's @@gtid_binlog_pos).
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
# shellcheck source=../support/verify.sh
. "$support/verify.sh"

E2E_STOP=verify_stop
e2e_init verify-mysql
e2e_start_pg
e2e_start_mongo
e2e_start_mariadb
cache() { sqlite3 -cmd ".timeout 5000" "$work/dbs/$1/db.sqlite" "$2"; }
e2e_sql postgres "CREATE DATABASE tgt" >/dev/null

my "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), ratio DOUBLE,
	at DATETIME(3), ts TIMESTAMP(6) NULL, doc JSON, raw VARBINARY(8), note TEXT);
INSERT INTO items SELECT seq, CONCAT('item ', seq), seq * 1.25, seq / 4, '2024-02-29 12:34:56.789',
	'2024-02-29 12:34:56.123456', '{\"b\": 1, \"a\": [1, \"x\"]}', X'00FF', IF(seq % 3 = 0, NULL, 'n')
	FROM seq_1_to_60;
CREATE TABLE olines (tenant VARCHAR(20), line_no BIGINT, sku VARCHAR(20), PRIMARY KEY (tenant, line_no));
INSERT INTO olines SELECT 'acme', seq, CONCAT('SKU-', seq) FROM seq_1_to_20;"

cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - name: app_my
    type: mysql
    url: $my_url
entities:
  - {name: items, source: app_my, table: app.items}
  - {name: olines, source: app_my, table: app.olines}
  - name: priced
    source: app_my
    table: app.items
    columns:
      - {name: name, type: text, path: name}
      - {name: price, type: number, path: price}
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
  - name: pgt
    type: postgres
    url: $base/tgt
  - name: backup
    type: mongodb
    url: "$mongo_url"
    database: backup
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
YAML

"$bin" run -c "$work/cw.yaml" >>"$work/run.log" 2>&1 &
daemon=$!

rows_in() { [ "$(cache "$1" "SELECT count(*) FROM $1")" = "$2" ] && echo ok; }
for e in items:60 olines:20 priced:60; do
	wait_for "${e%%:*} reach the cache" rows_in "${e%%:*}" "${e#*:}"
	wait_for "${e%%:*} reach pgt" pg_rows_in "${e%%:*}" "${e#*:}"
	wait_for "${e%%:*} reach the backup" backup_count "${e%%:*}" "${e#*:}"
done

# ---- equal ----
out=$(verify --json); rc=$?
[ $rc -eq 0 ] || fail "verify of equal data exit $rc, want 0: $out"
[ "$(python3 -c 'import json,sys; print(sorted(p["entity"] + "/" + p["target"] + ":" + p["status"] + ":" + str(p["source_rows"]) for p in json.loads(sys.argv[1])))' "$out")" = \
  "['items/backup:equal:60', 'items/node1:equal:60', 'items/pgt:equal:60', 'olines/backup:equal:20', 'olines/node1:equal:20', 'olines/pgt:equal:20', 'priced/backup:equal:60', 'priced/node1:equal:60', 'priced/pgt:equal:60']" ] ||
	fail "the pairs compared: $out"

# ---- planted differences, in every target ----
cache items "DELETE FROM items WHERE id = '5';
             INSERT INTO items (id, name, _version, _oplog_id) VALUES ('9999', 'ghost', 1, 1);
             UPDATE items SET ratio = 0.5 WHERE id = '7';
             UPDATE items SET _version = 0 WHERE id = '9';
             UPDATE items SET note = NULL WHERE id = '11'"
tsql "DELETE FROM public.items WHERE id = '5';
      INSERT INTO public.items (id, name, _version, _oplog_id) VALUES ('9999', 'ghost', 1, 1);
      UPDATE public.items SET doc = '{\"a\": [1, \"y\"], \"b\": 1}' WHERE id = '7';
      UPDATE public.items SET _version = 0 WHERE id = '9';
      UPDATE public.items SET note = NULL WHERE id = '11';
      UPDATE public.priced SET price = 0 WHERE id = '3'" >/dev/null
backup <<'CMDS' || fail "could not change the backup"
{"delete": "items", "filter": {"_cachewarp.doc_id": "5"}}
{"insert": "items", "docs": [{"_id": 9999, "name": "ghost", "_cachewarp": {"oplog_id": {"$numberLong": "1"}, "version": {"$numberLong": "1"}, "doc_id": "9999"}}]}
{"update": "items", "filter": {"_cachewarp.doc_id": "7"}, "change": {"$set": {"price": {"$numberDecimal": "8.76"}}}}
{"update": "items", "filter": {"_cachewarp.doc_id": "9"}, "change": {"$set": {"_cachewarp.version": {"$numberLong": "0"}}}}
{"update": "items", "filter": {"_cachewarp.doc_id": "11"}, "change": {"$unset": {"note": ""}}}
{"update": "olines", "filter": {"_cachewarp.doc_id": "[\"acme\",2]"}, "change": {"$set": {"sku": "other"}}}
CMDS
out=$(verify --json); rc=$?
[ $rc -eq 1 ] || fail "verify with differences exit $rc, want 1: $out"
for target in node1 pgt backup; do
	got=$(kinds "$out" items $target)
	[ "$got" = "11:different,5:missing,7:different,9999:extra,9:stale_version" ] ||
		fail "items in $target: $got: $out"
done
got=$(kinds "$out" priced pgt)
[ "$got" = "3:different/price" ] || fail "priced in pgt: $got: $out"
got=$(kinds "$out" olines backup)
[ "$got" = '["acme",2]:different' ] || fail "olines in the backup: $got: $out"

# ---- repair through the hub ----
out=$(verify --repair --json); rc=$?
[ $rc -eq 0 ] || fail "verify --repair exit $rc, want 0: $out"
repaired() {
	[ "$(cache items "SELECT count(*) FROM items WHERE id IN ('5', '9999')")" = 1 ] &&
	[ "$(cache items "SELECT note FROM items WHERE id = '11'")" = n ] &&
	[ "$(tsql "SELECT count(*) FROM public.items WHERE id IN ('5', '9999')")" = 1 ] &&
	[ "$(tsql "SELECT price FROM public.priced WHERE id = '3'")" = 3.75 ] &&
	[ "$(echo '{"count": "items", "filter": {"note": "n", "_cachewarp.doc_id": "11"}}' | backup)" = 1 ] &&
	[ "$(echo '{"count": "olines", "filter": {"sku": "SKU-2"}}' | backup)" = 1 ] && echo ok
}
wait_for "every target applies the repairs" repaired
out=$(verify --json); rc=$?
[ $rc -eq 0 ] || fail "verify after repair exit $rc, want 0: $out"

# ---- no false alarms while the rows change ----
# (the re-check waits for capture's stored GTID position to pass the source's):
# items in node1, pgt and the backup.
churn_items() {
	my "UPDATE items SET price = price + 1, name = 'churn $1' WHERE id = $(($1 % 60 + 1));
	    INSERT INTO items (id, name) VALUES (1000 + $1, 'new');
	    DELETE FROM items WHERE id = 1000 + $1 - 3"
}
verify_under_churn items 3 churn_items

verify_finish "verify mysql"
