# This file contains what the end-to-end shell tests share (sourced, never
# run): a work directory removed at exit unless a check failed, a throwaway
# PostgreSQL 15 with an "app" database (the source) and a "hub" database,
# and a configuration that captures one table into a SQLite cache.
#
#   . "$support/e2e.sh"
#   e2e_init NAME             # sets work, failures, fail(); cleanup at exit
#   e2e_start_pg              # sets base (URL without database); creates app and hub
#   e2e_sql DB SQL            # psql -At against base/DB
#   e2e_start_target_pg       # sets tbase: a second cluster in $work/pgt, for PostgreSQL targets
#   e2e_start_mongo           # sets mongo_url: the MongoDB test server, database "shop"
#   e2e_mongo                 # cw-mongo-exec on mongo_url/shop, commands on stdin
#   e2e_start_mariadb         # sets my_url: a throwaway MariaDB (mariadb.sh), database "app"
#   my SQL                    # runs SQL on that MariaDB's "app" as root, tab-separated, no headers
#   e2e_config FILE ENTITY TABLE [YAML-LINE...]   # source app_pg -> target node1 in $work/dbs
#   wait_for WHAT COMMAND...  # until COMMAND prints "ok" (90 s), else fail WHAT with its output
#   e2e_wait_log FILE WHAT PATTERN [N]  # until FILE has N (1) lines matching PATTERN (60 s)
#   same GOT WANT             # prints "ok", or what differs
#   e2e_stop_daemon           # SIGTERM to $daemon (a test's cachewarp run), waits for it
#   e2e_converge [SECONDS]    # runs cachewarp until the test's `converged` succeeds (90 s), stops it
#   e2e_twice                 # prints how many changes the hub holds twice (docs/hub.md, "Exactly once")
#
# E2E_HUB_URL, E2E_SOURCE_URL and E2E_API_LISTEN override the configuration's
# addresses; E2E_MONGO_ENTITY=NAME adds source "shop" (the test server) and an
# entity NAME on its collection NAME with columns title (text) and n (integer).
#
# Set E2E_STOP to a function name before e2e_init to stop the test's own
# processes first at exit. CW_KEEP=1 keeps the work directory.
root=${CW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bin=${CW_BINARY:-$root/build/cachewarp}
fp_bin=${CW_FAILPOINT_BINARY:-$root/build/cachewarp-fp}
support=${CW_SUPPORT_DIR:-$root/tests/support}
psql=$(ls /usr/lib/postgresql/15/bin/psql 2>/dev/null || command -v psql)
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

wait_for() {
	local what=$1 deadline=$((SECONDS + 90))
	shift
	until [ "$("$@" 2>/dev/null)" = ok ]; do
		if [ $SECONDS -ge $deadline ]; then
			fail "$what (last: $("$@" 2>&1 | head -c 300))"
			return 1
		fi
		sleep 0.2
	done
}
same() { [ "$1" = "$2" ] && echo ok || echo "got [$1] want [$2]"; }

e2e_wait_log() {
	local file=$1 what=$2 pattern=$3 deadline=$((SECONDS + 60))
	until [ "$(grep -c -- "$pattern" "$file")" -ge "${4:-1}" ]; do
		if [ $SECONDS -ge $deadline ]; then
			fail "$what: no log line matching $pattern"
			return 1
		fi
		sleep 0.2
	done
}

daemon=
e2e_stop_daemon() {
	[ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	daemon=
}

e2e_converge() {
	"$bin" run -c "$work/cw.yaml" >>"$work/normal.log" 2>&1 &
	daemon=$!
	local deadline=$((SECONDS + ${1:-90})) ok=1
	until converged; do
		[ $SECONDS -lt $deadline ] || { ok=0; break; }
		sleep 0.2
	done
	e2e_stop_daemon
	return $((1 - ok))
}

# One source change, one oplog row: the same change twice would share all of these.
e2e_twice() {
	e2e_sql hub "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM cachewarp.oplog
	             WHERE op <> 'sweep' GROUP BY entity, doc_id, source_pos, version, op, data
	             HAVING count(*) > 1) d"
}

e2e_cleanup() {
	[ -n "${E2E_STOP:-}" ] && "$E2E_STOP"
	# A failed test keeps its servers' logs: stopping a server removes its directory.
	if [ "$failures" -ne 0 ] || [ -n "${CW_KEEP:-}" ]; then
		local log
		for log in "$work"/my/mariadbd.log "$work"/pg/postgres.log "$work"/pgt/postgres.log \
			"$work"/mongo/mongo.log; do
			[ -f "$log" ] && cp "$log" "$work/server-$(basename "$(dirname "$log")").log"
		done
	fi
	[ -d "$work/toxi" ] && bash "$support/toxiproxy.sh" stop "$work/toxi"
	[ -d "$work/mongo" ] && bash "$support/mongo.sh" stop "$work/mongo"
	[ -d "$work/my" ] && bash "$support/mariadb.sh" stop "$work/my"
	[ -d "$work/pgt" ] && bash "$support/pg.sh" stop "$work/pgt"
	[ -d "$work/pg" ] && bash "$support/pg.sh" stop "$work/pg"
	if [ "$failures" -eq 0 ] && [ -z "${CW_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "logs kept in $work" >&2
	fi
}

e2e_init() {
	work=$(mktemp -d "/tmp/cw-$1-XXXXXX")
	chmod 755 "$work"
	trap e2e_cleanup EXIT
}

e2e_sql() { "$psql" -X -q -A -t -v ON_ERROR_STOP=1 "$base/$1" -c "$2"; }

e2e_start_pg() {
	local url
	url=$(bash "$support/pg.sh" start --owner $$ "$work/pg") || exit 1
	pg_url=$url
	base=${url%/*}
	e2e_sql postgres "CREATE DATABASE app" >/dev/null
	e2e_sql postgres "CREATE DATABASE hub" >/dev/null
}

e2e_start_target_pg() {
	local url
	url=$(bash "$support/pg.sh" start --owner $$ "$work/pgt") || exit 1
	tbase=${url%/*}
}

e2e_start_mongo() {
	mongo_url=$(bash "$support/mongo.sh" start --owner $$ "$work/mongo") || exit 1
}

e2e_mongo() { "$root/build/cw-mongo-exec" "$mongo_url" shop; }

# MARIADB_EXTRA (mariadb.sh) passes server options, e.g. TLS.
e2e_start_mariadb() {
	my_url=$(bash "$support/mariadb.sh" start --owner $$ "$work/my") || exit 1
}

my() { mariadb --no-defaults -uroot --socket="$work/my/sock" -N -B app -e "$1"; }

e2e_config() {
	local file=$1 entity=$2 table=$3 line
	shift 3
	cat >"$file" <<YAML
hub:
  url: ${E2E_HUB_URL:-$base/hub}
sources:
  - name: app_pg
    type: postgres
    url: ${E2E_SOURCE_URL:-$base/app}
$(if [ -n "${E2E_MONGO_ENTITY:-}" ]; then
	printf '  - name: shop\n    type: mongodb\n    url: %s\n    database: shop\n    watch: collection\n' "$mongo_url"
fi)
entities:
  - name: $entity
    source: app_pg
    table: $table
$(if [ -n "${E2E_MONGO_ENTITY:-}" ]; then
	printf '  - name: %s\n    source: shop\n    collection: %s\n    columns:\n' "$E2E_MONGO_ENTITY" "$E2E_MONGO_ENTITY"
	printf '      - {name: title, type: text, path: title}\n      - {name: n, type: integer, path: n}\n'
fi)
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs
api: {listen: "${E2E_API_LISTEN:-127.0.0.1:0}"}
log: {level: info, format: json}
YAML
	for line in "$@"; do
		echo "$line" >>"$file"
	done
}
