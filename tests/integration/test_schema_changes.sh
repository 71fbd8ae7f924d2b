#!/usr/bin/env bash
# Schema changes on a PostgreSQL source reach the caches without a row being
# touched: ADD COLUMN ... DEFAULT shows the default on existing rows, DROP
# COLUMN removes the column from the cache, RENAME COLUMN moves its values to
# the new name; each change is logged with the entity and the DDL it amounts
# to, and a changed default alone is logged without a new generation.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

daemon=
stop_daemon() { [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null; }
E2E_STOP=stop_daemon
e2e_init schema-changes
e2e_start_pg
sql() { e2e_sql "$@"; }

sql app "CREATE TABLE members (id int PRIMARY KEY, name text, old text, note text);
         INSERT INTO members VALUES (1, 'ada', 'o1', 'n1'), (2, 'bob', 'o2', 'n2')" >/dev/null
e2e_config "$work/cw.yaml" members public.members "capture: {flush_interval: 20ms}" \
	"apply: {poll_interval: 100ms}"

"$bin" run -c "$work/cw.yaml" >"$work/run.log" 2>&1 &
daemon=$!

db=$work/dbs/members/db.sqlite
cache() { sqlite3 -readonly "$db" "$1" 2>/dev/null; }
columns() { cache "SELECT group_concat(name, ',') FROM pragma_table_info('members')"; }
wait_for() { # WHAT COMMAND WANT
	local deadline=$((SECONDS + 60)) got
	until got=$(eval "$2") && [ "$got" = "$3" ]; do
		if [ $SECONDS -ge $deadline ]; then
			fail "$1: got '$got', want '$3'"
			return 1
		fi
		sleep 0.2
	done
}
wait_log() { # WHAT PATTERN
	local deadline=$((SECONDS + 30))
	until grep -q -- "$2" "$work/run.log"; do
		if [ $SECONDS -ge $deadline ]; then
			fail "$1: no log line matching $2"
			return 1
		fi
		sleep 0.2
	done
}
version() { sql hub "SELECT version FROM cachewarp.entities WHERE name = 'members'"; }

wait_for "snapshot" "cache \"SELECT group_concat(id || ':' || name || ':' || old || ':' || note, ' ') FROM members ORDER BY id\"" \
	"1:ada:o1:n1 2:bob:o2:n2"
v1=$(version)

# A column with a default: existing rows show it in the cache without being touched.
sql app "ALTER TABLE members ADD COLUMN tier text DEFAULT 'gold'" >/dev/null
wait_for "added column on existing rows" "cache \"SELECT group_concat(id || ':' || tier, ' ') FROM members ORDER BY id\"" \
	"1:gold 2:gold"
wait_log "added column logged" "\"ddl\":\"ADD COLUMN \\\\\"tier\\\\\" text DEFAULT 'gold'::text\""
[ "$(version)" -gt "$v1" ] || fail "ADD COLUMN ... DEFAULT did not start a new generation"

# A dropped column leaves the cache: no stale values.
sql app "ALTER TABLE members DROP COLUMN note" >/dev/null
wait_for "dropped column" columns "id,_extra,_version,_oplog_id,name,old,tier"
wait_log "dropped column logged" 'DROP COLUMN \\"note\\"'

# A renamed column: its values under the new name, the old name gone.
sql app "ALTER TABLE members RENAME COLUMN old TO legacy" >/dev/null
wait_for "renamed column" columns "id,_extra,_version,_oplog_id,name,tier,legacy"
wait_for "renamed column's values" "cache \"SELECT group_concat(id || ':' || legacy, ' ') FROM members ORDER BY id\"" \
	"1:o1 2:o2"
wait_log "renamed column logged" 'RENAME COLUMN \\"old\\" TO \\"legacy\\"'

# A changed default alone changes no row: logged, no new generation.
v2=$(version)
sql app "ALTER TABLE members ALTER COLUMN tier SET DEFAULT 'silver'" >/dev/null
wait_log "changed default logged" "column default changed"
[ "$(version)" = "$v2" ] || fail "a changed default started a new generation"

# Streaming goes on with the new shape.
sql app "INSERT INTO members (id, name, legacy) VALUES (3, 'cy', 'o3')" >/dev/null
wait_for "row after the changes" "cache \"SELECT name || ':' || tier || ':' || legacy FROM members WHERE id = '3'\"" \
	"cy:silver:o3"
grep -q '"level":"error"' "$work/run.log" && fail "errors logged: $(grep '"level":"error"' "$work/run.log" | head -3)"

kill -TERM "$daemon"
wait "$daemon"
daemon=
exit $((failures > 0))
