#!/usr/bin/env bash
# Runs the pgoutput reference (build/bench.pgoutput_reference), cachewarp's
# capture (build/bench.pg_capture) and Debezium's embedded engine
# (bench/peers/debezium) against the same workloads on one throwaway
# PostgreSQL cluster, and prints one table (bench/table.sh): Debezium's
# figures are compared with cachewarp's capture, cachewarp's with the
# reference. `make bench-peers` runs it, never
# `make test` (the first build downloads Debezium from Maven Central).
#
#   bench/peers/run.sh
#
# CW_BENCH_ROWS (rows per workload, default 1000000) and CW_BENCH_RUNS (runs,
# default 3) apply to both sides; BUILD names the build directory. Each side
# gets its slot before the loader (bench/sql/rows_*.sql) writes the rows and
# streams them afterwards. Prints figures, asserts nothing; the outputs and
# Debezium's logs of the last run stay in $BUILD/bench-peers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
rows=${CW_BENCH_ROWS:-1000000}
runs=${CW_BENCH_RUNS:-3}
peer=$root/bench/peers/debezium
jar=$peer/target/cw-debezium-bench.jar
ref=$build/bench.pgoutput_reference
capture=$build/bench.pg_capture
pg_sh=$root/tests/support/pg.sh

SRV_NAME=bench-peers
# shellcheck source=../../tests/support/srv_common.sh
. "$root/tests/support/srv_common.sh"

case $rows$runs in *[!0-9]*) srv_die "CW_BENCH_ROWS and CW_BENCH_RUNS must be numbers" ;; esac
[ "$rows" -ge 1 ] && [ "$runs" -ge 1 ] || srv_die "CW_BENCH_ROWS and CW_BENCH_RUNS must be at least 1"
[ -x "$ref" ] || srv_die "$ref is not built (make build)"
[ -x "$capture" ] || srv_die "$capture is not built (make build)"
command -v mvn >/dev/null || srv_die "mvn is not installed (make deps)"
command -v java >/dev/null || srv_die "java is not installed (make deps)"

work=$build/bench-peers
rm -rf "$work"
mkdir -p "$work" || srv_die "could not create \"$work\""
cleanup() { bash "$pg_sh" stop "$work/pg" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "building the Debezium peer (mvn -q package; the first build downloads it from Maven Central)"
(cd "$peer" && mvn -B -q package) >"$work/mvn.log" 2>&1 || srv_die "mvn package failed" "$work/mvn.log"
[ -f "$jar" ] || srv_die "mvn package did not produce $jar" "$work/mvn.log"

url=$(bash "$pg_sh" start --owner $$ "$work/pg") || srv_die "could not start postgresql"
port=${url##*:}
port=${port%%/*}
dbname=${url##*/}
psql_run() { psql -X -q -v ON_ERROR_STOP=1 -d "$url" "$@"; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
	"$(uname -sr); PostgreSQL $(psql_run -Atc 'SHOW server_version');" \
	"$(java -version 2>&1 | head -n 1); Debezium 3.6.1.Final embedded; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "workloads: $rows inserted rows, then the same $rows rows updated (~200 bytes, 10000 per" \
	"transaction), written before streaming starts; $runs runs per side"

echo
echo "== pgoutput reference ($ref)"
CW_BENCH_PG_URL=$url CW_BENCH_ROWS=$rows CW_BENCH_RUNS=$runs "$ref" >"$work/reference.out" ||
	srv_die "the pgoutput reference failed"
grep -v '^figure' "$work/reference.out"

echo
echo "== cachewarp capture ($capture)"
for run in $(seq 1 "$runs"); do
	CW_BENCH_PG_URL=$url CW_BENCH_ROWS=$rows "$capture" >"$work/capture_$run.out" \
		2>"$work/capture_$run.err" || srv_die "cachewarp's capture run $run failed" "$work/capture_$run.err"
	grep -v '^figure' "$work/capture_$run.out"
done

# wait_slot_idle SLOT: waits up to 30 s until no walsender holds SLOT.
wait_slot_idle() {
	local deadline=$((SECONDS + 30))
	while [ "$(psql_run -Atc "SELECT count(*) FROM pg_replication_slots
		WHERE slot_name = '$1' AND active")" != 0 ]; do
		[ $SECONDS -lt $deadline ] || srv_die "replication slot \"$1\" still in use after 30 s"
		sleep 0.2
	done
}

echo
echo "== Debezium embedded ($jar)"
timeout_s=$((600 + rows / 1000))
for run in $(seq 1 "$runs"); do
	psql_run -f "$root/bench/sql/rows_schema.sql"
	for workload in insert update; do
		slot=cw_bench_dbz_${run}_$workload
		psql_run -Atc "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
		psql_run -c "SET cw_bench.rows = '$rows'" -f "$root/bench/sql/rows_$workload.sql"
		log=$work/debezium_${run}_$workload.log
		java -jar "$jar" 127.0.0.1 "$port" "$dbname" "$slot" "$rows" "$timeout_s" \
			>"$work/line" 2>"$log" || { cat "$work/line"; srv_die "Debezium run $run $workload failed" "$log"; }
		echo "run $run $workload: $(cat "$work/line")"
		cat "$work/line" >>"$work/debezium_$workload.out"
		wait_slot_idle "$slot"
		psql_run -Atc "SELECT pg_drop_replication_slot('$slot')" >/dev/null
	done
done

# figures WORKLOAD: Debezium's KEY=VALUE lines for WORKLOAD as figure lines
# (bench/benchlib.h), each compared with cachewarp's capture of the same rows.
figures() {
	awk -v w="$1" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "figure\tdebezium %s\trows/s\trows/s\t%s\tcapture %s/rows/s\n", w, v["events_per_s"], w
		printf "figure\tdebezium %s\tpeak RSS\tMiB\t%s\tcapture %s/peak RSS\n", w, v["peak_rss_kib"] / 1024, w
		printf "figure\tdebezium %s\tengine start to first event\ts\t%s\t-\n", w, v["startup_s"]
	}' "$work/debezium_$1.out"
}

echo
echo "cachewarp's capture, Debezium embedded and the pgoutput reference (same cluster, same rows;"
echo "min / median / max over $runs runs; ratio = median / the reference's median; two shared"
echo "cores, so treat every figure as noisy)"
echo
{
	cat "$work/reference.out" "$work"/capture_*.out
	for workload in insert update; do figures "$workload"; done
} | grep '^figure' | bash "$root/bench/table.sh" | tee "$work/table.md"
echo
echo "outputs and Debezium's logs: $work"
