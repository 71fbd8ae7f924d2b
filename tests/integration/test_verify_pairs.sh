#!/usr/bin/env bash
# cachewarp verify for the pairs whose target stores a row in a form of its
# own: a MongoDB collection kept whole in a PostgreSQL target (fields spread
# over typed columns, names no column can take mapped, fields past the
# column budget in _extra, a value the column rules quarantine), a MongoDB
# entity with columns in a PostgreSQL target and in a MongoDB target (typed
# documents), and a PostgreSQL table in a MongoDB target. Equal data
# verifies equal; for each of these pairs a missing row, an extra row, a
# changed value, a stale generation and a row that differs only in a column
# its updates may leave out are found, exactly those; --repair writes them
# into the hub and the targets apply them; a second verify is clean; verify
# of a PostgreSQL table in both while its rows keep changing reports nothing.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"
# shellcheck source=../support/verify.sh
. "$support/verify.sh"

E2E_STOP=verify_stop
e2e_init verify-pairs
e2e_start_pg
e2e_start_mongo
sql() { e2e_sql "$@"; }

sql app "CREATE TABLE orders (id int PRIMARY KEY, name text, amount numeric(10,2), qty bigint,
         at timestamptz, doc jsonb, note text);
         INSERT INTO orders SELECT g, 'order ' || g, g * 1.25, g % 7, '2024-05-01 10:00:00.123+00'::timestamptz + g * interval '1 hour',
         '{\"b\": 1, \"a\": [1, \"x\"]}', CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' END
         FROM generate_series(1, 300) g" >/dev/null
sql postgres "CREATE DATABASE tgt" >/dev/null

# Whole documents: more fields than the PostgreSQL target's column budget,
# names no column can take, every kind of value.
{
	printf '{"insert": "docs", "docs": ['
	for i in $(seq 1 40); do
		[ "$i" -gt 1 ] && printf ','
		printf '{"_id": "d%d", "n": %d, "name": "doc %d", "ratio": 0.25, "price": {"$numberDecimal": "2.50"},' "$i" "$i" "$i"
		printf ' "at": {"$date": "2024-05-01T10:00:00.%03dZ"}, "Total Amount": 12, "tags": ["a", "b"],' "$i"
		printf ' "nested": {"b": 1, "a": {"y": null, "x": 2}}, "flag": true, "big": {"$numberLong": "9007199254740993"},'
		printf ' "late1": "x", "late2": %d}' "$i"
	done
	printf ', {"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "name": "with \\"quotes\\"", "Total Amount": 1.5}'
	printf ', {"_id": "q1", "n": "not a number", "name": "quarantined"}]}\n'
	# Typed: an entity with columns.
	printf '{"insert": "typed", "docs": ['
	for i in $(seq 1 40); do
		[ "$i" -gt 1 ] && printf ','
		printf '{"_id": "t%d", "title": "T%d", "n": %d, "pricing": {"amount": 2.5}, "meta": {"b": 1, "a": [1, 2]}}' "$i" "$i" "$i"
	done
	printf ']}\n'
} | e2e_mongo >/dev/null || fail "mongo inserts"

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
  - {name: orders, source: app_pg, table: public.orders}
  - {name: docs, source: shop, collection: docs}
  - name: typed
    source: shop
    collection: typed
    columns:
      - {name: title, type: text, path: title}
      - {name: n, type: integer, path: n}
      - {name: price, type: number, path: pricing.amount}
      - {name: meta, type: jsonb, path: meta}
targets:
  - name: pgt
    type: postgres
    url: $base/tgt
    column_budget: 8
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

wait_for "orders reach pgt" pg_rows_in orders 300
wait_for "docs reach pgt" pg_rows_in docs 42
wait_for "typed reaches pgt" pg_rows_in typed 40
wait_for "orders reach the backup" backup_count orders 300
wait_for "typed reaches the backup" backup_count typed 40

# The target's own form: mapped names, _extra, a quarantined value.
[ "$(tsql "SELECT count(*) FROM information_schema.columns WHERE table_name = 'docs' AND column_name = '_extra'")" = 1 ] ||
	fail "docs in pgt has no _extra column: $(tsql "SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 'docs'")"
[ "$(tsql "SELECT count(*) FROM cachewarp_meta.schema_history WHERE entity = 'docs' AND field = 'Total Amount' AND column_name <> field")" -ge 1 ] ||
	fail "Total Amount is not mapped to a column of its own"
[ "$(tsql "SELECT count(*) FROM cachewarp_meta.quarantine WHERE entity = 'docs' AND doc_id = 'q1'")" -ge 1 ] ||
	fail "the string in the integer column was not quarantined"

field() { # JSON ENTITY TARGET KEY: a value of one pair's report
	python3 -c 'import json,sys; r=[p for p in json.loads(sys.argv[1]) if p["entity"]==sys.argv[2] and p["target"]==sys.argv[3]][0]; print(r[sys.argv[4]])' "$1" "$2" "$3" "$4"
}

# ---- equal ----
out=$(verify --json); rc=$?
[ $rc -eq 0 ] || fail "verify of equal data exit $rc, want 0: $out"
[ "$(python3 -c 'import json,sys; print(sorted(p["entity"] + "/" + p["target"] + ":" + p["status"] for p in json.loads(sys.argv[1])))' "$out")" = \
  "['docs/backup:equal', 'docs/pgt:equal', 'orders/backup:equal', 'orders/pgt:equal', 'typed/backup:equal', 'typed/pgt:equal']" ] ||
	fail "the pairs compared: $out"
[ "$(field "$out" docs pgt source_rows)" = 42 ] || fail "docs source rows: $out"
[ "$(field "$out" orders backup target_rows)" = 300 ] || fail "orders rows in the backup: $out"

# ---- planted differences ----
# docs in pgt: a row gone, one the source never had, a changed column, a
# changed _extra member, an older generation, a column emptied.
tsql "DELETE FROM public.docs WHERE id = 'd1';
      INSERT INTO public.docs (id, name, _version, _oplog_id) VALUES ('ghost', 'ghost', 1, 1);
      UPDATE public.docs SET ratio = 0.5 WHERE id = 'd2';
      UPDATE public.docs SET _extra = jsonb_set(_extra, '{late2}', '99') WHERE id = 'd3';
      UPDATE public.docs SET _version = 0 WHERE id = 'd4';
      UPDATE public.docs SET name = NULL WHERE id = 'd5'" >/dev/null
# typed in pgt
tsql "DELETE FROM public.typed WHERE id = 't1';
      INSERT INTO public.typed (id, title, _version, _oplog_id) VALUES ('ghost', 'ghost', 1, 1);
      UPDATE public.typed SET meta = '{\"a\": [1, 3], \"b\": 1}' WHERE id = 't2';
      UPDATE public.typed SET _version = 0 WHERE id = 't3';
      UPDATE public.typed SET price = NULL WHERE id = 't4'" >/dev/null
# typed and orders in the backup
backup <<'CMDS' || fail "could not change the backup"
{"delete": "typed", "filter": {"_id": "t1"}}
{"insert": "typed", "docs": [{"_id": "ghost", "title": "ghost", "_cachewarp": {"oplog_id": {"$numberLong": "1"}, "version": {"$numberLong": "1"}, "doc_id": "ghost"}}]}
{"update": "typed", "filter": {"_id": "t2"}, "change": {"$set": {"n": {"$numberLong": "7"}}}}
{"update": "typed", "filter": {"_id": "t3"}, "change": {"$set": {"_cachewarp.version": {"$numberLong": "0"}}}}
{"update": "typed", "filter": {"_id": "t4"}, "change": {"$unset": {"meta": ""}}}
{"delete": "orders", "filter": {"_id": 1}}
{"insert": "orders", "docs": [{"_id": 9999, "name": "ghost", "_cachewarp": {"oplog_id": {"$numberLong": "1"}, "version": {"$numberLong": "1"}, "doc_id": "9999"}}]}
{"update": "orders", "filter": {"_id": 2}, "change": {"$set": {"amount": {"$numberDecimal": "2.51"}}}}
{"update": "orders", "filter": {"_id": 3}, "change": {"$set": {"_cachewarp.version": {"$numberLong": "0"}}}}
{"update": "orders", "filter": {"_id": 4}, "change": {"$unset": {"note": ""}}}
{"update": "orders", "filter": {"_id": 5}, "change": {"$set": {"doc.b": 2}}}
CMDS
out=$(verify --json); rc=$?
[ $rc -eq 1 ] || fail "verify with differences exit $rc, want 1: $out"
got=$(kinds "$out" docs pgt)
[ "$got" = "d1:missing,d2:different,d3:different,d4:stale_version,d5:different,ghost:extra" ] ||
	fail "docs in pgt: $got: $out"
got=$(kinds "$out" typed pgt)
[ "$got" = "ghost:extra,t1:missing,t2:different/meta,t3:stale_version,t4:different/price" ] ||
	fail "typed in pgt: $got: $out"
got=$(kinds "$out" typed backup)
[ "$got" = "ghost:extra,t1:missing,t2:different/n,t3:stale_version,t4:different/meta" ] ||
	fail "typed in the backup: $got: $out"
got=$(kinds "$out" orders backup)
[ "$got" = "1:missing,2:different,3:stale_version,4:different,5:different,9999:extra" ] ||
	fail "orders in the backup: $got: $out"
for pair in "docs backup" "orders pgt"; do
	# shellcheck disable=SC2086
	[ "$(field "$out" $pair status)" = equal ] || fail "$pair changed: $out"
done

# ---- repair through the hub ----
out=$(verify --repair --json); rc=$?
[ $rc -eq 0 ] || fail "verify --repair exit $rc, want 0: $out"
[ "$(field "$out" docs pgt repaired)" = 6 ] || fail "docs repaired in pgt: $out"
[ "$(field "$out" typed pgt repaired)" = 5 ] || fail "typed repaired in pgt: $out"
pg_repaired() { [ "$(tsql "SELECT count(*) FROM public.docs WHERE id IN ('d1', 'ghost')")" = 1 ] &&
                [ "$(tsql "SELECT ratio FROM public.docs WHERE id = 'd2'")" = 0.25 ] &&
                [ "$(tsql "SELECT name FROM public.docs WHERE id = 'd5'")" = "doc 5" ] &&
                [ "$(tsql "SELECT price FROM public.typed WHERE id = 't4'")" = 2.5 ] && echo ok; }
wait_for "pgt applies the repairs" pg_repaired
backup_repaired() { local dump
	dump=$(echo '{"dump": "typed", "fields": ["n"]}' | backup)
	grep -qx 't2|2' <<<"$dump" && grep -q '^t1|' <<<"$dump" && ! grep -q '^ghost' <<<"$dump" &&
	[ "$(echo '{"count": "orders", "filter": {"note": "n", "_id": 4}}' | backup)" = 1 ] && echo ok; }
wait_for "the backup applies the repairs" backup_repaired
out=$(verify --json); rc=$?
[ $rc -eq 0 ] || fail "verify after repair exit $rc, want 0: $out"

# ---- no false alarms while the rows change ----
# (a PostgreSQL source: its re-check waits for capture to pass the source's WAL
# position): orders in pgt and the backup.
churn_orders() {
	e2e_sql app "UPDATE orders SET qty = qty + 1, doc = jsonb_set(doc, '{b}', '$1')
	             WHERE id = $(($1 % 300 + 1));
	             INSERT INTO orders (id, name) VALUES (1000 + $1, 'new');
	             DELETE FROM orders WHERE id = 1000 + $1 - 3"
}
verify_under_churn orders 2 churn_orders

verify_finish "verify pairs"
