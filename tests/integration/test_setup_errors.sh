#!/usr/bin/env bash
# Set-up errors only a person can fix are reported at once and not retried in
# a loop: the hub refusing the credentials makes `cachewarp run` exit 1 at
# once (retry.give_up_after is 10 minutes here); a PostgreSQL source refusing
# them marks that source failed, logged once; wal_level below logical names
# the exact setting and restart, and no failed attempt bumps an entity's
# version. Passwords never appear in the output.
set -u
bin=${CW_BINARY:?CW_BINARY is set by ctest}
support=${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

work=$(mktemp -d /tmp/cw-setup-sh-XXXXXX)
chmod 755 "$work"
daemon=
cleanup() {
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
	[ -d "$work/pg" ] && bash "$support/pg.sh" stop "$work/pg"
	rm -rf "$work"
}
trap cleanup EXIT

url=$(bash "$support/pg.sh" start --owner $$ "$work/pg") || { echo "FAIL: pg.sh start" >&2; exit 1; }
hostport=${url#*@}
hostport=${hostport%%/*}
sql() { psql -X -Atq -v ON_ERROR_STOP=1 -d "$url" -c "$1"; }

# Role "guarded" must give its password; everyone else is trusted.
secret=PlantedPassw0rd
sql "CREATE ROLE guarded LOGIN REPLICATION SUPERUSER PASSWORD 'the-right-one'" || fail "create role"
hba=$(sql "SHOW hba_file")
sql "COPY (VALUES ('local all all trust'), ('host all guarded 127.0.0.1/32 scram-sha-256'),
       ('host all all 127.0.0.1/32 trust'), ('host replication all 127.0.0.1/32 trust'))
     TO '$hba'" && sql "SELECT pg_reload_conf()" >/dev/null || fail "could not write pg_hba.conf"
sql "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'a')" ||
	fail "create table"

# Waits for the daemon's API port; prints it.
api_port() { # api_port ERRFILE
	local deadline=$((SECONDS + 30)) port=
	while [ -z "$port" ]; do
		port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$1" |
			grep -o '[0-9]*"$' | tr -d '"')
		[ $SECONDS -lt $deadline ] || return 1
		kill -0 "$daemon" 2>/dev/null || return 1
		[ -n "$port" ] || sleep 0.1
	done
	echo "$port"
}

# Waits until the source "app" of /v1/status has a last_error containing TEXT; prints the status.
wait_source_error() { # wait_source_error PORT TEXT
	local deadline=$((SECONDS + 30)) status
	while [ $SECONDS -lt $deadline ]; do
		status=$(curl -s "http://127.0.0.1:$1/v1/status")
		if echo "$status" | jq -e --arg t "$2" \
			'.components[] | select(.name == "app") | .last_error // "" | contains($t)' \
			>/dev/null 2>&1; then
			echo "$status"
			return 0
		fi
		sleep 0.2
	done
	echo "$status"
	return 1
}

stop_daemon() {
	kill -TERM "$daemon" 2>/dev/null
	wait "$daemon"
	daemon=
}

# ---- the hub refuses the credentials: exit 1 at once, one attempt ----------
cat >"$work/hub_auth.yaml" <<YAML
hub:
  url: postgresql://guarded:$secret@$hostport/postgres
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 10m}
YAML
started=$SECONDS
timeout 60 "$bin" run -c "$work/hub_auth.yaml" >"$work/hub_auth.out" 2>"$work/hub_auth.err"
rc=$?
[ "$rc" -eq 1 ] || fail "run with the hub refusing the credentials exited $rc, want 1"
[ $((SECONDS - started)) -lt 10 ] || fail "refused hub credentials took $((SECONDS - started)) s to report"
grep -q '"msg":"giving up: the hub refused the credentials; not retrying"' "$work/hub_auth.err" ||
	fail "no clear line for refused hub credentials: $(head -c 600 "$work/hub_auth.err")"
grep -q 'password authentication failed for user' "$work/hub_auth.err" ||
	fail "the server's reason is missing: $(head -c 600 "$work/hub_auth.err")"
grep -q 'hub unreachable, retrying' "$work/hub_auth.err" && fail "refused hub credentials were retried"

# ---- a source refuses the credentials: that source is failed, once ---------
cat >"$work/source_auth.yaml" <<YAML
hub:
  url: $url
sources:
  - name: app
    type: postgres
    url: postgresql://guarded:$secret@$hostport/postgres
    slot: auth_slot
entities:
  - {name: items, source: app, table: public.items}
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 10m}
YAML
"$bin" run -c "$work/source_auth.yaml" >"$work/source_auth.out" 2>"$work/source_auth.err" &
daemon=$!
if port=$(api_port "$work/source_auth.err"); then
	status=$(wait_source_error "$port" "refused the credentials") ||
		fail "the source's refused credentials are not in /v1/status: $status"
	sleep 3
	status=$(curl -s "http://127.0.0.1:$port/v1/status")
	state=$(echo "$status" | jq -r '.components[] | select(.name == "app") | .state')
	[ "$state" = failed ] || fail "source state is \"$state\", want failed"
	runs=$(echo "$status" | jq -r '.components[] | select(.name == "app") | .job.runs')
	[ "$runs" -le 1 ] || fail "the source was run $runs times with refused credentials"
	echo "$status" | grep -q "$secret" && fail "/v1/status shows the planted password"
else
	fail "no API port: $(tail -3 "$work/source_auth.err")"
fi
stop_daemon
lines=$(grep -c 'password authentication failed' "$work/source_auth.err")
[ "$lines" -eq 1 ] || fail "refused source credentials logged $lines times, want once"

# ---- wal_level = replica: the fix is named, no version moves ---------------
sql "ALTER SYSTEM SET wal_level = replica" || fail "alter system"
pgbin=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || dirname "$(command -v pg_ctl)")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -m fast -w -t 30 restart \
	>/dev/null || fail "could not restart postgresql with wal_level = replica"
[ "$(sql "SHOW wal_level")" = replica ] || fail "wal_level is not replica"
cat >"$work/wal.yaml" <<YAML
hub:
  url: $url
sources:
  - name: app
    type: postgres
    url: $url
    slot: wal_slot
    publication: wal_pub
entities:
  - {name: walitems, source: app, table: public.items}
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 10m}
YAML
"$bin" run -c "$work/wal.yaml" >"$work/wal.out" 2>"$work/wal.err" &
daemon=$!
if port=$(api_port "$work/wal.err"); then
	status=$(wait_source_error "$port" "ALTER SYSTEM SET wal_level = logical;") ||
		fail "the wal_level fix is not in /v1/status: $status"
	echo "$status" | grep -q 'restart' || fail "the wal_level message does not say to restart"
	echo "$status" | grep -q 'wal_level = replica' || fail "the wal_level message does not name the setting"
	sleep 3
else
	fail "no API port: $(tail -3 "$work/wal.err")"
fi
stop_daemon
version=$(sql "SELECT version FROM cachewarp.entities WHERE name = 'walitems'")
[ "$version" = 1 ] || fail "walitems is at version $version after failed set-ups, want 1"
[ "$(sql "SELECT count(*) FROM pg_replication_slots")" = 0 ] || fail "a slot was created"

if grep -l "$secret" "$work"/*.out "$work"/*.err 2>/dev/null; then
	fail "the planted password appears in the output above"
fi

[ "$failures" -eq 0 ] && echo "setup errors: all checks passed"
exit $((failures > 0))
