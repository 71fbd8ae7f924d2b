#!/usr/bin/env bash
# Set-up errors only a person can fix are reported at once and not retried in
# a loop: the hub refusing the credentials makes `cachewarp run` exit 1 at
# once (retry.give_up_after is 10 minutes here), at start or after its
# password changed while running; a PostgreSQL source refusing
# them marks that source failed, logged once; an entity whose table is missing
# or keyless is refused by POST /v1/entities and `cachewarp entity add` (422,
# exit 2), and one in the configuration file fails alone, shown in
# /v1/status, /metrics and `cachewarp status`; wal_level below logical and
# every replication slot taken name the exact fix, and no failed attempt
# bumps an entity's version. Passwords never appear in the output.
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

# write_config NAME SOURCE_URL LISTEN ENTITY...: $work/NAME.yaml with source "app"
# (slot NAME_slot, publication NAME_pub) and the given entities.
write_config() {
	local name=$1 source_url=$2 listen=$3
	shift 3
	{
		printf 'hub:\n  url: %s\n' "$url"
		printf 'sources:\n  - name: app\n    type: postgres\n    url: %s\n' "$source_url"
		printf '    slot: %s_slot\n    publication: %s_pub\n' "$name" "$name"
		printf 'entities:\n'
		printf '  - %s\n' "$@"
		printf 'api: {listen: "%s"}\nlog: {level: info, format: json}\n' "$listen"
		printf 'retry: {initial: 50ms, max: 200ms, give_up_after: 10m}\n'
	} >"$work/$name.yaml"
}

# start_daemon NAME: cachewarp run -c $work/NAME.yaml in the background, output in NAME.out/.err.
start_daemon() {
	"$bin" run -c "$work/$1.yaml" >"$work/$1.out" 2>"$work/$1.err" &
	daemon=$!
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

# ---- the hub refuses the credentials while running: exit 1 at once ---------
cat >"$work/hub_rotated.yaml" <<YAML
hub:
  url: postgresql://guarded:the-right-one@$hostport/postgres
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
retry: {initial: 50ms, max: 200ms, give_up_after: 10m}
YAML
start_daemon hub_rotated
deadline=$((SECONDS + 30))
until grep -q '"msg":"running"' "$work/hub_rotated.err"; do
	[ $SECONDS -lt $deadline ] || { fail "daemon never logged running: $(tail -3 "$work/hub_rotated.err")"; break; }
	sleep 0.1
done
sql "ALTER ROLE guarded PASSWORD 'rotated'" || fail "alter role"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'guarded'" >/dev/null
started=$SECONDS
wait "$daemon"
rc=$?
daemon=
[ "$rc" -eq 1 ] || fail "run with the hub's password rotated exited $rc, want 1"
[ $((SECONDS - started)) -lt 20 ] || fail "the rotated hub password took $((SECONDS - started)) s to stop the daemon"
grep -q '"msg":"giving up: the hub refused the credentials; not retrying"' "$work/hub_rotated.err" ||
	fail "no clear line for the rotated hub password: $(tail -3 "$work/hub_rotated.err")"
sql "ALTER ROLE guarded PASSWORD 'the-right-one'" || fail "alter role back"

# ---- a source refuses the credentials: that source is failed, once ---------
write_config source_auth "postgresql://guarded:$secret@$hostport/postgres" 127.0.0.1:0 \
	'{name: items, source: app, table: public.items}'
start_daemon source_auth
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

# ---- a bad entity is refused at creation, or fails alone at runtime --------
sql "CREATE TABLE keyless (a int, b text)" || fail "create keyless"
apiport=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
write_config entities "$url" "127.0.0.1:$apiport" \
	'{name: items, source: app, table: public.items}' '{name: ghost, source: app, table: public.ghost}'
start_daemon entities
if port=$(api_port "$work/entities.err"); then
	deadline=$((SECONDS + 30))
	until curl -s "http://127.0.0.1:$port/v1/status" >"$work/ent_status.json" &&
		jq -e '.failed_entities[] | select(.entity == "ghost" and .source == "app")
			| .reason | contains("does not exist")' "$work/ent_status.json" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { fail "ghost not in failed_entities: $(cat "$work/ent_status.json")"; break; }
		sleep 0.2
	done
	[ "$(jq -r '.failed_entities_total' "$work/ent_status.json")" = 1 ] ||
		fail "failed_entities_total: $(jq -c . "$work/ent_status.json")"
	curl -s "http://127.0.0.1:$port/metrics" >"$work/ent_metrics.out"
	grep -q '^cachewarp_entity_failed{entity="ghost",source="app"} 1' "$work/ent_metrics.out" ||
		fail "no cachewarp_entity_failed gauge for ghost"
	deadline=$((SECONDS + 30))
	until [ "$(sql "SELECT status FROM cachewarp.entities WHERE name = 'items'")" = live ]; do
		[ $SECONDS -lt $deadline ] || { fail "items never went live beside the failed ghost"; break; }
		sleep 0.2
	done
	"$bin" status -c "$work/entities.yaml" >"$work/ent_cli_status.out" 2>&1 ||
		fail "cachewarp status: $(cat "$work/ent_cli_status.out")"
	grep -q '^FAILED ENTITY' "$work/ent_cli_status.out" ||
		fail "cachewarp status has no failed entity table: $(cat "$work/ent_cli_status.out")"
	grep -q '^ghost .*app .*does not exist' "$work/ent_cli_status.out" ||
		fail "cachewarp status does not give ghost's reason"
	grep -Eq '^ghost +app +failed ' "$work/ent_cli_status.out" ||
		fail "cachewarp status does not show ghost as failed"

	# POST /v1/entities refuses what cannot be captured, with the reason.
	post() { curl -s -o "$work/post.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data "$1" "http://127.0.0.1:$port/v1/entities"; }
	code=$(post '{"name": "nothere", "source": "app", "table": "public.nothere"}')
	[ "$code" = 422 ] || fail "POST of a missing table answered $code, want 422: $(cat "$work/post.out")"
	grep -q 'nothere.*does not exist' "$work/post.out" || fail "422 without the reason: $(cat "$work/post.out")"
	code=$(post '{"name": "keyless", "source": "app", "table": "public.keyless"}')
	[ "$code" = 422 ] || fail "POST of a keyless table answered $code, want 422"
	grep -q 'has no primary key' "$work/post.out" || fail "422 without the reason: $(cat "$work/post.out")"
	code=$(post '{"name": "items2", "source": "app", "table": "public.items"}')
	[ "$code" = 201 ] || fail "POST of a good table answered $code, want 201: $(cat "$work/post.out")"
	[ "$(sql "SELECT count(*) FROM cachewarp.entities WHERE name IN ('nothere', 'keyless')")" = 0 ] ||
		fail "a refused entity was stored"
else
	fail "no API port: $(tail -3 "$work/entities.err")"
fi
stop_daemon
# cachewarp entity add refuses the same way (exit 2), and stores nothing.
"$bin" entity add nothere2 --source app --table public.nothere -c "$work/entities.yaml" \
	>"$work/add.out" 2>"$work/add.err"
rc=$?
[ "$rc" -eq 2 ] || fail "entity add of a missing table exited $rc, want 2"
grep -q 'does not exist' "$work/add.err" || fail "entity add without the reason: $(cat "$work/add.err")"
[ "$(sql "SELECT count(*) FROM cachewarp.entities WHERE name = 'nothere2'")" = 0 ] ||
	fail "entity add stored a refused entity"

# ---- wal_level = replica: the fix is named, no version moves ---------------
# A server with a logical slot does not start below wal_level logical: drop it first.
sql "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null ||
	fail "drop slots"
sql "ALTER SYSTEM SET wal_level = replica" || fail "alter system"
pgbin=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || dirname "$(command -v pg_ctl)")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -m fast -w -t 30 restart \
	>/dev/null || fail "could not restart postgresql with wal_level = replica"
[ "$(sql "SHOW wal_level")" = replica ] || fail "wal_level is not replica"
write_config wal "$url" 127.0.0.1:0 '{name: walitems, source: app, table: public.items}'
start_daemon wal
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

# ---- every replication slot taken: the fix is named, no version moves ------
sql "ALTER SYSTEM SET wal_level = logical" && sql "ALTER SYSTEM SET max_replication_slots = 1" ||
	fail "alter system"
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -m fast -w -t 30 restart \
	>/dev/null || fail "could not restart postgresql with max_replication_slots = 1"
sql "SELECT pg_create_logical_replication_slot('squatter', 'pgoutput')" >/dev/null ||
	fail "could not create the squatting slot"
write_config slots "$url" 127.0.0.1:0 '{name: slotitems, source: app, table: public.items}'
start_daemon slots
if port=$(api_port "$work/slots.err"); then
	status=$(wait_source_error "$port" "raise max_replication_slots") ||
		fail "the slot limit's fix is not in /v1/status: $status"
	echo "$status" | grep -q 'pg_drop_replication_slot' || fail "the slot message does not say how to free one"
	state=$(echo "$status" | jq -r '.components[] | select(.name == "app") | .state')
	[ "$state" = failed ] || fail "source state is \"$state\" with every slot taken, want failed"
	sleep 2
else
	fail "no API port: $(tail -3 "$work/slots.err")"
fi
stop_daemon
version=$(sql "SELECT version FROM cachewarp.entities WHERE name = 'slotitems'")
[ "$version" = 1 ] || fail "slotitems is at version $version after failed set-ups, want 1"

if grep -l "$secret" "$work"/*.out "$work"/*.err 2>/dev/null; then
	fail "the planted password appears in the output above"
fi

[ "$failures" -eq 0 ] && echo "setup errors: all checks passed"
exit $((failures > 0))
