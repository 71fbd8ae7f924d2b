#!/usr/bin/env bash
# The monitoring kit holds: the alerting rules pass promtool's checks and their
# unit tests (deploy/prometheus/alerts.test.yaml), the Grafana dashboard is
# valid JSON, every metric the rules and the dashboard name is one a running
# daemon exposes on /metrics (a PostgreSQL and a MongoDB source, a SQLite and a
# PostgreSQL target), and every runbook_url points to a runbook section of
# docs/operations.md.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init monitoring
rules=$root/deploy/prometheus/alerts.yaml
dashboard=$root/deploy/grafana/cachewarp.json
command -v promtool >/dev/null || { fail "promtool not found (make deps installs Debian's prometheus)"; exit 1; }

promtool check rules "$rules" >"$work/check.out" 2>&1 || fail "promtool check rules: $(cat "$work/check.out")"
(cd "$(dirname "$rules")" && promtool test rules alerts.test.yaml) >"$work/test.out" 2>&1 ||
	fail "promtool test rules: $(cat "$work/test.out")"
jq -e '.panels | length > 0' "$dashboard" >/dev/null || fail "the dashboard is not valid JSON with panels"

# Every runbook link names a section of docs/operations.md (GitHub's anchor of its heading).
anchors=$(grep '^### ' "$root/docs/operations.md" | sed 's/^### //' | tr 'A-Z' 'a-z' |
	sed 's/[^a-z0-9 -]//g; s/ /-/g')
for url in $(grep -o 'runbook_url: "[^"]*"' "$rules" | cut -d'"' -f2); do
	anchor=${url#*#}
	grep -qx -- "$anchor" <<<"$anchors" || fail "runbook $url: no such section in docs/operations.md"
done
for alert in $(grep -o 'alert: [A-Za-z]*' "$rules" | cut -d' ' -f2); do
	grep -q "runbook_url: \"docs/operations.md#$(tr 'A-Z' 'a-z' <<<"$alert")\"" "$rules" ||
		fail "alert $alert links no runbook of its own"
done

# The metrics they name, from a running daemon's /metrics.
e2e_start_pg
e2e_start_mongo
e2e_sql app "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, 'a')" >/dev/null
e2e_sql postgres "CREATE DATABASE tgt" >/dev/null
cat >"$work/cw.yaml" <<YAML
hub:
  url: $base/hub
sources:
  - {name: app_pg, type: postgres, url: "$base/app"}
  - {name: shop, type: mongodb, url: "$mongo_url", database: shop}
entities:
  - {name: items, source: app_pg, table: public.items}
  - {name: products, source: shop, collection: products}
targets:
  - {name: node1, type: sqlite, dir: "$work/dbs"}
  - {name: warehouse, type: postgres, url: "$base/tgt"}
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
YAML
"$bin" config check -c "$work/cw.yaml" >"$work/check.log" 2>&1 || { fail "config: $(cat "$work/check.log")"; exit 1; }
"$bin" run -c "$work/cw.yaml" >"$work/run.out" 2>"$work/run.err" &
daemon=$!
deadline=$((SECONDS + 60))
until grep -q '"msg":"running"' "$work/run.err" && [ -s "$work/dbs/items/db.sqlite" ]; do
	[ $SECONDS -lt $deadline ] || { fail "daemon never ran: $(tail -5 "$work/run.err")"; break; }
	sleep 0.2
done
sleep 2   # a few heartbeats and housekeeping passes
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.err" | grep -o '[0-9]*"$' | tr -d '"')
curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics.txt" || fail "no /metrics"
exposed=$(grep -o '^# TYPE [a-z_]*' "$work/metrics.txt" | cut -d' ' -f3 | sort -u)
named=$( {
	grep -o 'cachewarp_[a-z_]*' "$rules"
	jq -r '.panels[].targets[].expr' "$dashboard" | grep -o 'cachewarp_[a-z_]*'
} | sed -E 's/_(bucket|sum|count)$//' | sort -u)
for metric in $named; do
	grep -qx "$metric" <<<"$exposed" || fail "$metric is named by the rules or the dashboard, but /metrics has no such family"
done
echo "monitoring: $(wc -w <<<"$named") metrics named, all exposed; $(grep -c 'alert:' "$rules") alerts tested"

kill -TERM "$daemon"
wait "$daemon"
daemon=
exit $((failures > 0))
