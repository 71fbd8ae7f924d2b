#!/usr/bin/env bash
# Runs every benchmark and prints its figures (BENCHMARKS.md records them
# with the machine they were measured on). Benchmarks never assert timings.
#   bench/run.sh [NAME...]    NAME is a bench/bench_NAME.c (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
export CW_SOURCE_DIR=$root
export CW_SUPPORT_DIR=$root/tests/support
# pg_recvlogical (the capture benchmark's baseline) lives with the server binaries.
PATH=$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV | head -1)
export PATH
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for src in "$root"/bench/bench_*.c; do
		name=$(basename "$src" .c)
		names+=("${name#bench_}")
	done
fi
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
for name in "${names[@]}"; do
	exe=$build/bench.$name
	[ -x "$exe" ] || { echo "bench: $exe not built (make build)" >&2; exit 1; }
	echo
	echo "== $name"
	"$exe"
done
