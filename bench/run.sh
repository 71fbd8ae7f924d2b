#!/usr/bin/env bash
# Runs the benchmarks and prints one table (bench/table.sh): per workload and
# figure, min / median / max over the runs, the reference measured in the same
# run and the ratio. Benchmarks never assert timings; BENCHMARKS.md records
# the table with the machine it was measured on.
#
#   bench/run.sh [NAME...]    NAME is a bench/bench_NAME.c (default: all)
#
# CW_BENCH_RUNS   runs of every benchmark (default 3); the runs interleave
#                 (all benchmarks once, then again), so a noisy minute of the
#                 machine does not land on one workload only
# CW_BENCH_ROWS, CW_BENCH_SECONDS, CW_BENCH_MONGO_DOCS, CW_BENCH_MONGO_BACKLOG   passed on (each
#                 benchmark documents them)
# Outputs of every run: $BUILD/bench/NAME.RUN.out (stdout) and .err (logs);
# the table: $BUILD/bench/table.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
runs=${CW_BENCH_RUNS:-3}
case $runs in '' | *[!0-9]*) echo "bench: CW_BENCH_RUNS must be a number" >&2; exit 2 ;; esac
export CW_SOURCE_DIR=$root
export CW_SUPPORT_DIR=$root/tests/support
# pg_recvlogical and the server programs live with the server binaries.
PATH=$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV | head -1)
export PATH
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	# The issue's order (reference, capture, snapshot and latency, apply, hub,
	# MongoDB), then any benchmark not named here.
	names=(pgoutput_reference pg_capture pipeline sqlite_apply sqlite_hub hub_append
		mongo_capture mongo_projection mongo_target)
	for src in "$root"/bench/bench_*.c; do
		name=$(basename "$src" .c)
		name=${name#bench_}
		case " ${names[*]} " in *" $name "*) ;; *) names+=("$name") ;; esac
	done
	for i in "${!names[@]}"; do
		[ -f "$root/bench/bench_${names[$i]}.c" ] || unset "names[$i]"
	done
	names=("${names[@]}")
fi
for name in "${names[@]}"; do
	[ -x "$build/bench.$name" ] || { echo "bench: $build/bench.$name not built (make build)" >&2; exit 1; }
done
out=$build/bench
rm -rf "$out"
mkdir -p "$out"
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
pg=$(postgres --version 2>/dev/null | awk '{print $3}' || true)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "machine: $machine; PostgreSQL ${pg:-?}; load average $(cut -d' ' -f1-3 /proc/loadavg); $started"
echo "benchmarks: ${names[*]}; $runs runs each"
for run in $(seq 1 "$runs"); do
	for name in "${names[@]}"; do
		t0=$SECONDS
		printf 'run %d/%d %-20s ' "$run" "$runs" "$name"
		# Each invocation is one run; the reference's own repetitions are this loop's.
		if CW_BENCH_RUNS=1 "$build/bench.$name" >"$out/$name.$run.out" 2>"$out/$name.$run.err"; then
			echo "done in $((SECONDS - t0)) s, load average $(cut -d' ' -f1 /proc/loadavg)"
		else
			echo "FAILED after $((SECONDS - t0)) s: see $out/$name.$run.err"
			tail -n 5 "$out/$name.$run.err" | sed 's/^/  /'
		fi
	done
done
echo
{
	echo "Measured $started to $(date -u '+%H:%M UTC'): $machine; PostgreSQL ${pg:-?}; $runs runs."
	echo
	for name in "${names[@]}"; do cat "$out/$name".*.out; done | bash "$root/bench/table.sh"
} | tee "$out/table.md"
echo
echo "outputs of every run: $out"
