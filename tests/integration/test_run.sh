#!/usr/bin/env bash
# cachewarp run, migrate, entity and status against a real hub: the hub is
# migrated and the file's entities stored; an unreachable hub is retried with
# the password masked in every line, then given up with exit 1; SIGTERM stops
# the daemon cleanly (exit 0); entity commands act on the hub.
set -u
bin=${CW_BINARY:?CW_BINARY is set by ctest}
support=${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

work=$(mktemp -d /tmp/cw-run-sh-XXXXXX)
chmod 755 "$work"
daemon=
notifier=
cleanup() {
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
	[ -n "$notifier" ] && kill -9 "$notifier" 2>/dev/null
	[ -d "$work/pg" ] && bash "$support/pg.sh" stop "$work/pg"
	rm -rf "$work"
}
trap cleanup EXIT

secret=PlantedPassw0rd
url=$(bash "$support/pg.sh" start --owner $$ "$work/pg") || { echo "FAIL: pg.sh start" >&2; exit 1; }
# The cluster trusts local connections, so the planted password is accepted and ignored.
hub_url=$(echo "$url" | sed -E "s#postgresql://([^@/]*)@#postgresql://\\1:$secret@#")
case $hub_url in *"$secret"*) ;; *) hub_url=${url/postgresql:\/\//postgresql://postgres:$secret@} ;; esac

cat >"$work/cw.yaml" <<YAML
hub:
  url: $hub_url
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 1s}
YAML
cat >"$work/down.yaml" <<YAML
hub:
  url: postgresql://cachewarp:$secret@127.0.0.1:1/app
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 1s}
YAML

# Unreachable hub: each attempt logged with the masked URL, then exit 1.
"$bin" run -c "$work/down.yaml" >"$work/down.out" 2>"$work/down.err"
rc=$?
[ "$rc" -eq 1 ] || fail "run with the hub down exited $rc, want 1"
grep -q '"msg":"hub unreachable, retrying".*"attempt":"2"' "$work/down.err" ||
	fail "no retry lines: $(head -c 400 "$work/down.err")"
grep -q '"msg":"giving up: hub unreachable"' "$work/down.err" || fail "no give-up line"
grep -q 'postgresql://cachewarp:\*\*\*\*@127.0.0.1:1/app' "$work/down.err" || fail "URL not shown masked"

# Every source failing past retry.give_up_after: the daemon gives up with exit 1.
cat >"$work/dead_source.yaml" <<YAML
hub:
  url: $hub_url
sources:
  - name: gone
    type: postgres
    url: postgresql://replicator:$secret@127.0.0.1:1/app
entities:
  - name: lost_items
    source: gone
    table: public.items
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 2s}
YAML
timeout 60 "$bin" run -c "$work/dead_source.yaml" >"$work/dead.out" 2>"$work/dead.err"
rc=$?
[ "$rc" -eq 1 ] || fail "run with every source failing exited $rc, want 1"
grep -q '"msg":"giving up: every source and target has been failing' "$work/dead.err" ||
	fail "no give-up line: $(tail -2 "$work/dead.err")"
grep -q '"job":"capture:gone"' "$work/dead.err" || fail "the failing source's job was not logged"

# migrate twice: the second applies nothing.
"$bin" migrate -c "$work/cw.yaml" >"$work/m1.out" 2>&1 || fail "migrate: $(cat "$work/m1.out")"
"$bin" migrate -c "$work/cw.yaml" >"$work/m2.out" 2>&1 || fail "second migrate failed"
grep -q '(0 migrations applied)' "$work/m2.out" || fail "second migrate: $(cat "$work/m2.out")"

# run until SIGTERM, under a stand-in service manager that records what it is told.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a")
while True:
    out.write(s.recv(4096).decode() + "\n---\n")
    out.flush()
' "$work/notify.sock" "$work/notify.out" >/dev/null 2>&1 &
notifier=$!
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$work/notify.sock "$bin" run -c "$work/cw.yaml" >"$work/run.out" 2>"$work/run.err" &
daemon=$!
deadline=$((SECONDS + 30))
until grep -q '"msg":"running"' "$work/run.err"; do
	[ $SECONDS -lt $deadline ] || { fail "daemon never logged running: $(cat "$work/run.err")"; break; }
	kill -0 "$daemon" 2>/dev/null || { fail "daemon died: $(cat "$work/run.err")"; break; }
	sleep 0.1
done
# The API answers while the daemon runs: health, readiness, status, metrics.
port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/run.err" | grep -o '[0-9]*"$' | tr -d '"')
if [ -n "$port" ]; then
	code=$(curl -s -o "$work/healthz.out" -w '%{http_code}' "http://127.0.0.1:$port/healthz")
	[ "$code" = 200 ] || fail "/healthz answered $code"
	code=$(curl -s -o "$work/readyz.out" -w '%{http_code}' "http://127.0.0.1:$port/readyz")
	[ "$code" = 200 ] || fail "/readyz answered $code: $(cat "$work/readyz.out")"
	curl -s "http://127.0.0.1:$port/v1/status" >"$work/v1status.out"
	grep -q '"jobs"' "$work/v1status.out" || fail "/v1/status: $(head -c 300 "$work/v1status.out")"
	grep -q '"name":"entity_refresh"' "$work/v1status.out" || fail "/v1/status lists no control job"
	curl -s "http://127.0.0.1:$port/metrics" >"$work/metrics.out"
	grep -q '^cachewarp_process_resident_memory_bytes ' "$work/metrics.out" || fail "/metrics has no RSS"
else
	fail "no API port in the log"
fi
kill -TERM "$daemon" 2>/dev/null
wait "$daemon"
rc=$?
daemon=
[ "$rc" -eq 0 ] || fail "run exited $rc after SIGTERM, want 0: $(tail -3 "$work/run.err")"
grep -q '"msg":"shutting down","signal":"SIGTERM"' "$work/run.err" || fail "no shutdown line"
grep -q '"msg":"stopped"' "$work/run.err" || fail "no stopped line"
listening_lines=$(grep -c '"msg":"[^"]*listening"' "$work/run.err")
[ "$listening_lines" -eq 1 ] || fail "$listening_lines \"listening\" lines at start-up, want 1"
# systemd's Type=notify: READY=1 once running, STOPPING=1 at shutdown.
kill "$notifier" 2>/dev/null
wait "$notifier" 2>/dev/null
notifier=
grep -q '^READY=1$' "$work/notify.out" || fail "no READY=1 sent to NOTIFY_SOCKET: $(cat "$work/notify.out")"
grep -q '^STOPPING=1$' "$work/notify.out" || fail "no STOPPING=1 sent to NOTIFY_SOCKET"

# --entity naming an entity nobody configured is a usage error.
"$bin" run -c "$work/cw.yaml" --entity nosuch >/dev/null 2>"$work/filter.err"
rc=$?
[ "$rc" -eq 2 ] || fail "run --entity nosuch exited $rc, want 2"
grep -q 'no such entity' "$work/filter.err" || fail "unknown --entity not explained: $(cat "$work/filter.err")"

# status works against the migrated hub and masks the password.
"$bin" status -c "$work/cw.yaml" --json >"$work/status.json" 2>&1 || fail "status: $(cat "$work/status.json")"
grep -q '"schema_version":' "$work/status.json" || fail "status --json: $(cat "$work/status.json")"

# entity show of a missing entity fails with exit 1 and says so.
"$bin" entity show nosuch -c "$work/cw.yaml" >/dev/null 2>"$work/show.err"
rc=$?
[ "$rc" -eq 1 ] || fail "entity show nosuch exited $rc, want 1"

# Hostile names never reach the hub.
"$bin" entity delete '../x' -c "$work/cw.yaml" >/dev/null 2>"$work/hostile.err"
rc=$?
[ "$rc" -ne 0 ] || fail "entity delete ../x succeeded"

# No line of any output carries the planted password.
if grep -l "$secret" "$work"/*.out "$work"/*.err "$work"/*.json 2>/dev/null; then
	fail "the planted password appears in the output above"
fi

[ "$failures" -eq 0 ] && echo "run: all checks passed"
exit $((failures > 0))
