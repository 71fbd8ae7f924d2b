#!/usr/bin/env bash
# One process per entity (seed 001's mode A) on one PostgreSQL target: a
# capture process runs the source, and two apply processes, each run with
# --entity for a different entity, share the target database without
# interfering: each holds its own lease and consumer, keeps its own global
# position, and a restart of one leaves the other applying.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

capture= apply_a= apply_b=
stop_all() {
	for p in $capture $apply_a $apply_b; do kill -9 "$p" 2>/dev/null; done
}
E2E_STOP=stop_all
e2e_init pg-target-split
e2e_start_pg
e2e_sql postgres "CREATE DATABASE tgt" >/dev/null
sql() { e2e_sql "$@"; }
sql app "CREATE TABLE orders (id int PRIMARY KEY, total numeric(10,2));
         CREATE TABLE customers (id int PRIMARY KEY, name text);
         INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g;
         INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g" >/dev/null

common="hub:
  url: $base/hub
entities:
  - {name: orders, source: app_pg, table: public.orders}
  - {name: customers, source: app_pg, table: public.customers}
sources:
  - name: app_pg
    type: postgres
    url: $base/app
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}"
cat >"$work/capture.yaml" <<YAML
$common
api: {listen: "127.0.0.1:0"}
YAML
# The apply processes name the source too (entities refer to it) but never capture:
# the capture process holds its lease first.
cat >"$work/apply.yaml" <<YAML
$common
targets:
  - name: wh
    type: postgres
    url: $base/tgt
api: {listen: "127.0.0.1:0"}
YAML

"$bin" run -c "$work/capture.yaml" >"$work/capture.log" 2>&1 &
capture=$!
# the capture process takes the source's lease before the apply processes start
deadline=$((SECONDS + 60))
until grep -q '"msg":"entity live".*"entity":"customers"' "$work/capture.log"; do
	[ $SECONDS -lt $deadline ] || { fail "capture never went live"; exit 1; }
	sleep 0.2
done
"$bin" run -c "$work/apply.yaml" --entity orders >"$work/a.log" 2>&1 &
apply_a=$!
"$bin" run -c "$work/apply.yaml" --entity customers >"$work/b.log" 2>&1 &
apply_b=$!

tsql() { e2e_sql tgt "$1"; }
digest() { # DB TABLE COLUMNS
	e2e_sql "$1" "SELECT count(*) || ':' || coalesce(md5(string_agg(row($3)::text, '|' ORDER BY id)), '') FROM $2" 2>/dev/null
}
wait_equal() { # TABLE COLUMNS
	local deadline=$((SECONDS + 90))
	until [ "$(digest tgt "public.$1" "$2")" = "$(digest app "$1" "$2")" ]; do
		if [ $SECONDS -ge $deadline ]; then
			fail "$1: target $(digest tgt "public.$1" "$2"), source $(digest app "$1" "$2")"
			return 1
		fi
		sleep 0.2
	done
}
wait_equal orders "id, total"
wait_equal customers "id, name"

# each apply process is a consumer and a position of its own
consumers=$(sql hub "SELECT string_agg(name, ',' ORDER BY name) FROM cachewarp.consumers")
[ "$consumers" = "wh@customers,wh@orders" ] || fail "hub consumers $consumers, want wh@customers,wh@orders"
scopes=$(tsql "SELECT string_agg(entity, ',' ORDER BY entity) FROM cachewarp_meta.positions WHERE target = 'wh'")
[ "$scopes" = "*customers,*orders,customers,orders" ] || fail "positions $scopes"
grep -h '"msg":"standby' "$work/a.log" "$work/b.log" | grep -q '"job":"apply:wh"' &&
	fail "an apply process waited as standby for the other's target"

# one of them restarts while the other keeps applying
kill -9 "$apply_a"
wait "$apply_a" 2>/dev/null
sql app "UPDATE orders SET total = total + 1; UPDATE customers SET name = name || '!'" >/dev/null
wait_equal customers "id, name"
"$bin" run -c "$work/apply.yaml" --entity orders >>"$work/a.log" 2>&1 &
apply_a=$!
wait_equal orders "id, total"
[ "$(tsql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 2 ] ||
	fail "the target holds tables of other entities"

for p in $apply_a $apply_b $capture; do kill -TERM "$p"; wait "$p"; done
capture= apply_a= apply_b=
exit $((failures > 0))
