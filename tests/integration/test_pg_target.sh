#!/usr/bin/env bash
# The PostgreSQL tables target end to end, on a cluster of its own: a
# PostgreSQL source's column types and keys carried through (numeric stays
# numeric, arrays stay arrays, a composite key stays composite), a column
# added at the source, a MongoDB entity whose fields grow columns that widen
# (bigint -> double precision) while a drastic change is written NULL and
# quarantined, hostile field names, soft delete then re-insert, a row that
# violates a constraint the user added quarantined while its batch goes on,
# entity delete with drop and keep, kill -9 during apply then a row-by-row
# comparison, and the target cluster stopped under load and back.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init pg-target
e2e_start_pg
e2e_start_mongo
e2e_start_target_pg
sql() { e2e_sql "$@"; }
asql() { e2e_sql app "$1"; }
tsql() { "$psql" -X -q -A -t -v ON_ERROR_STOP=1 "$tbase/postgres" -c "$1"; }
pg_bindir=$(dirname "$psql")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

sql app "CREATE TABLE typed_src (id int PRIMARY KEY, amount numeric(12,2), big numeric,
         qty integer, total bigint, ratio double precision, ok boolean, tags text[],
         at timestamptz, day date, doc jsonb, uid uuid, note text)" >/dev/null
row="12.50, 123456789012345678901234567890.5, 7, 9007199254740993, 0.25, true,
     '{red,\"with space\",NULL}', '2024-05-01 10:00:00.123456+00', '2024-05-01',
     '{\"x\": 2.50}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'say \"hi\"'"
sql app "INSERT INTO typed_src VALUES (1, $row)" >/dev/null
sql app "CREATE TABLE pair (a int, b text, v text, PRIMARY KEY (a, b));
         INSERT INTO pair VALUES (1, 'x', 'one'), (2, 'y', 'two')" >/dev/null
sql app "CREATE TABLE guarded (id int PRIMARY KEY, n int); INSERT INTO guarded VALUES (0, 1)" >/dev/null

cat >"$work/cw.yaml" <<YAML
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
  - {name: typed_src, source: app_pg, table: public.typed_src}
  - {name: pair, source: app_pg, table: public.pair}
  - {name: guarded, source: app_pg, table: public.guarded}
  - {name: events, source: shop, collection: events}
targets:
  - name: pg1
    type: postgres
    url: $tbase/postgres
  - name: pg2
    type: postgres
    url: $tbase/postgres
    schema: soft
    meta_schema: soft_meta
    delete_mode: soft
    on_entity_delete: keep
    write_batch_size: 3
    column_budget: 8
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


# ---- types and keys from a PostgreSQL source ----
src_rows() { sql app "SELECT row($1)::text FROM $2 ORDER BY 1"; }
tgt_rows() { tsql "SELECT row($1)::text FROM $2 ORDER BY 1"; }
cols="id, amount, big, qty, total, ratio, ok, tags, at, day, doc, uid, note"
rows_match() { same "$(tgt_rows "$cols" public.typed_src)" "$(src_rows "$cols" typed_src)"; }
wait_for "typed_src rows reach pg1 with every value" rows_match
types() { # CONNECTION-COMMAND TABLE
	"$1" "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
	      FROM pg_attribute WHERE attrelid = '$2'::regclass AND attnum > 0 AND NOT attisdropped"
}
want=$(sql app "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
                FROM pg_attribute WHERE attrelid = 'typed_src'::regclass AND attnum > 0")
got=$(types tsql public.typed_src)
[ "$got" = "$want,_version:bigint,_oplog_id:bigint,_synced_at:timestamp with time zone" ] ||
	fail "typed_src columns $got, want the source's $want and the bookkeeping columns"
pk() { tsql "SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = '$1'::regclass AND i.indisprimary"; }
[ "$(pk public.typed_src)" = id ] || fail "typed_src key $(pk public.typed_src), want id"
pair_match() { same "$(tgt_rows "a, b, v" public.pair)" "$(src_rows "a, b, v" pair)"; }
wait_for "pair rows reach pg1" pair_match
[ "$(pk public.pair)" = a,b ] || fail "pair key $(pk public.pair), want a,b"
sql app "UPDATE pair SET v = 'uno' WHERE a = 1; DELETE FROM pair WHERE a = 2" >/dev/null
wait_for "pair follows an update and a delete by composite key" pair_match

# ---- a column added at the source ----
sql app "ALTER TABLE typed_src ADD COLUMN rate numeric(5,1); INSERT INTO typed_src VALUES (2, $row, 3.5)" >/dev/null
cols2="$cols, rate"
rows_match2() { same "$(tgt_rows "$cols2" public.typed_src)" "$(src_rows "$cols2" typed_src)"; }
wait_for "a column added at the source reaches pg1 with its type and values" rows_match2
rate_type() { same "$(tsql "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.typed_src'::regclass AND attname = 'rate'")" "numeric(5,1)"; }
wait_for "column rate takes the source's type numeric(5,1) in pg1" rate_type
wait_for "typed_src rows equal after the rescan" rows_match2

# ---- a MongoDB entity whose fields grow columns ----
e2e_mongo <<'CMDS' || fail "mongo inserts"
{"insert": "events", "docs": [{"_id": "e1", "n": 1, "name": "a"}]}
CMDS
ev() { tsql "SELECT string_agg(id || '=' || coalesce($1::text, '~'), ',' ORDER BY id) FROM $2"; }
coltype() { tsql "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '$1'::regclass AND attname = '$2' AND NOT attisdropped"; }
first_event() { same "$(tsql "SELECT n FROM public.events WHERE id = 'e1'")" 1; }
wait_for "events row e1 in pg1" first_event
[ "$(coltype public.events n)" = bigint ] || fail "events.n is $(coltype public.events n), want bigint"
e2e_mongo <<'CMDS' || fail "mongo inserts"
{"insert": "events", "docs": [{"_id": "e2", "n": 2.5}]}
{"insert": "events", "docs": [{"_id": "e3", "n": "abc"}]}
{"insert": "events", "docs": [{"_id": "e4", "n": 4, "meta": {"k": [1, 2]}}]}
{"insert": "events", "docs": [{"_id": "e5", "count": 1}]}
{"insert": "events", "docs": [{"_id": "e6", "count": {"a": 1}}]}
{"insert": "events", "docs": [{"_id": "e7", "Total Amount": 5, "UPPER": "u", "\"; drop table x": 1}]}
{"insert": "events", "docs": [{"_id": "e8", "name": "no n"}]}
CMDS
evolved() { same "$(ev n public.events)" "e1=1,e2=2.5,e3=~,e4=4,e5=~,e6=~,e7=~,e8=~"; }
wait_for "n widened to double precision, the string quarantined, a missing field NULL" evolved
[ "$(coltype public.events n)" = "double precision" ] || fail "events.n is $(coltype public.events n), want double precision"
[ "$(coltype public.events meta)" = jsonb ] || fail "events.meta is $(coltype public.events meta), want jsonb"
[ "$(tsql "SELECT meta::text FROM public.events WHERE id = 'e4'")" = '{"k": [1, 2]}' ] || fail "events.meta of row 4"
[ "$(ev count public.events)" = "e1=~,e2=~,e3=~,e4=~,e5=1,e6=~,e7=~,e8=~" ] || fail "events.count $(ev count public.events)"
q=$(tsql "SELECT string_agg(doc_id || ':' || column_name || ':' || value, ',' ORDER BY doc_id)
          FROM cachewarp_meta.quarantine WHERE target = 'pg1' AND entity = 'events'")
[ "$q" = 'e3:n:"abc",e6:count:{"a":1}' ] || fail "pg1 quarantine holds $q"
h=$(tsql "SELECT string_agg(change || ':' || coalesce(column_name, '') || ':' || coalesce(old_type, '') || '>' || coalesce(new_type, ''), ',' ORDER BY id)
          FROM cachewarp_meta.schema_history WHERE target = 'pg1' AND entity = 'events'")
case $h in
*"widen column:n:bigint>double precision"*) ;;
*) fail "schema_history of events: $h" ;;
esac
# hostile names: safe, stable columns, each commented with the field it holds
hostile=$(tsql "SELECT string_agg(attname || '=' || col_description(attrelid, attnum), ',' ORDER BY attname)
                FROM pg_attribute WHERE attrelid = 'public.events'::regclass AND attnum > 0
                AND col_description(attrelid, attnum) IS NOT NULL")
for field in 'Total Amount' UPPER '"; drop table x'; do
	case $hostile in
	*"=cachewarp field: $field"*) ;;
	*) fail "no column holds field [$field]: $hostile" ;;
	esac
done
[ "$(tsql "SELECT count(*) FROM pg_tables WHERE tablename = 'x'")" = 0 ] || fail "a field name ran SQL"

# ---- past the column budget (pg2: 8 with the key) new fields go into _extra ----
e2e_mongo <<'CMDS' || fail "mongo insert"
{"insert": "events", "docs": [{"_id": "e9", "late1": 1, "late2": "x", "n": 9}]}
CMDS
budget() { same "$(tsql "SELECT _extra::text || '|' || n FROM soft.events WHERE id = 'e9'")|$(coltype public.events late1)" '{"late1": 1, "late2": "x"}|9|bigint'; }
wait_for "pg2 puts fields past its budget into _extra, pg1 gives them columns" budget

# ---- a quarantined value is written once its column holds it (here: retyped by hand) ----
tsql "ALTER TABLE public.events ALTER COLUMN n TYPE text" >/dev/null
requeued() { same "$(tsql "SELECT n || ':' || (SELECT count(*) FROM cachewarp_meta.quarantine WHERE target = 'pg1' AND doc_id = 'e3' AND resolved_at IS NOT NULL) FROM public.events WHERE id = 'e3'")" "abc:1"; }
wait_for "the quarantined string reaches its row once n is text" requeued

# ---- soft delete, then the same key again ----
e2e_mongo <<'CMDS' || fail "mongo delete"
{"delete": "events", "filter": {"_id": "e2"}}
CMDS
soft_gone() { same "$(tsql "SELECT (SELECT is_deleted::text FROM soft.events WHERE id = 'e2') || ',' || (SELECT count(*) FROM public.events WHERE id = 'e2')")" "true,0"; }
wait_for "pg2 marks row 2 deleted, pg1 deletes it" soft_gone
e2e_mongo <<'CMDS' || fail "mongo insert"
{"insert": "events", "docs": [{"_id": "e2", "n": 22}]}
CMDS
soft_back() { same "$(tsql "SELECT is_deleted::text || ',' || n FROM soft.events WHERE id = 'e2'")" "false,22"; }
wait_for "a re-inserted key clears is_deleted" soft_back

# ---- a constraint the user added: the row is quarantined, the batch goes on ----
guarded_there() { same "$(tsql "SELECT count(*) FROM public.guarded")" 1; }
wait_for "guarded in pg1" guarded_there
tsql "ALTER TABLE public.guarded ADD CONSTRAINT n_small CHECK (n < 100)" >/dev/null
sql app "BEGIN; INSERT INTO guarded VALUES (1, 5), (2, 500), (3, 7); COMMIT" >/dev/null
guarded() { same "$(tsql "SELECT string_agg(id || '=' || n, ',' ORDER BY id) FROM public.guarded") $(tsql "SELECT count(*) FROM soft.guarded")" "0=1,1=5,3=7 4"; }
wait_for "pg1 keeps the rows its constraint accepts, pg2 all" guarded
reason=$(tsql "SELECT doc_id || ':' || reason FROM cachewarp_meta.quarantine WHERE entity = 'guarded'")
case $reason in
2:*n_small*) ;;
*) fail "quarantine of the refused row: $reason" ;;
esac

# ---- a table dropped by hand comes back with every row the hub holds ----
tsql "DROP TABLE public.guarded" >/dev/null
sql app "INSERT INTO guarded VALUES (4, 9)" >/dev/null
recreated() { same "$(tsql "SELECT string_agg(id || '=' || n, ',' ORDER BY id) FROM public.guarded")" "0=1,1=5,2=500,3=7,4=9"; }
wait_for "a dropped table is created again and replayed from the hub" recreated
[ "$(tsql "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.events'::regclass AND attname = 'total_amount_cbfbd0b8'")" = 1 ] ||
	fail "field \"Total Amount\" is not in column total_amount_cbfbd0b8 (docs/targets-postgres.md)"

# ---- entity delete: drop in pg1, keep in pg2 ----
"$bin" entity delete pair -c "$work/cw.yaml" >/dev/null 2>>"$work/run.log" || fail "entity delete"
dropped() { same "$(tsql "SELECT to_regclass('public.pair') IS NULL, to_regclass('soft.pair') IS NOT NULL")" "t|t"; }
wait_for "pair dropped from pg1 and kept in pg2" dropped

# ---- kill -9 while applying, then compare row by row ----
sql app "INSERT INTO typed_src SELECT g, $row, 1.5 FROM generate_series(100, 20099) g" >/dev/null
sleep 1
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
daemon=
start_daemon
digest() { # CONNECTION-COMMAND TABLE
	"$1" "SELECT count(*) || ':' || md5(string_agg(row($cols2)::text, '|' ORDER BY id)) FROM $2"
}
killed_match() { same "$(digest tsql public.typed_src)" "$(digest asql typed_src)"; }
wait_for "after kill -9 pg1 equals the source row by row" killed_match
[ "$(tsql "SELECT count(*) FROM cachewarp_meta.runs WHERE target = 'pg1' AND state = 'interrupted'")" -ge 1 ] ||
	fail "runs has no interrupted run after kill -9"

# ---- the target cluster down under load, then back ----
as_pg "$pg_bindir/pg_ctl" -D "$work/pgt/data" -m fast stop >/dev/null 2>&1 || fail "could not stop the target"
sql app "UPDATE typed_src SET note = 'while down ' || id WHERE id >= 100" >/dev/null
sleep 3
as_pg "$pg_bindir/pg_ctl" -D "$work/pgt/data" -l "$work/pgt/postgres.log" -w start >/dev/null 2>&1 ||
	fail "could not start the target again"
wait_for "the backlog drains once the target is back" killed_match
up=$(curl -s "http://$(grep -o '"listen":"[^"]*"' "$work/run.log" | tail -1 | cut -d'"' -f4)/metrics" 2>/dev/null |
	grep '^cachewarp_target_up{target="pg1"}' | awk '{print $2}')
[ -z "$up" ] || [ "$up" = 1 ] || fail "cachewarp_target_up is $up after the target came back"

[ "$(tsql "SELECT count(*) FROM cachewarp_meta.quarantine WHERE entity NOT IN ('events', 'guarded')")" = 0 ] ||
	fail "rows quarantined that every column holds: $(tsql "SELECT entity || ':' || doc_id || ':' || reason FROM cachewarp_meta.quarantine WHERE entity NOT IN ('events', 'guarded') LIMIT 3")"

kill -TERM "$daemon"
wait "$daemon"
daemon=
[ "$(tsql "SELECT count(*) FROM cachewarp_meta.runs WHERE target = 'pg1' AND state = 'stopped'")" -ge 1 ] ||
	fail "runs has no stopped run after SIGTERM"
exit $((failures > 0))
