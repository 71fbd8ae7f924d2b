#!/usr/bin/env bash
# Runs every benchmark built from bench/bench_*.c (make bench). Benchmarks
# print figures; none asserts a timing. BUILD picks the build directory.
set -euo pipefail
build=${BUILD:-build}
shopt -s nullglob
ran=0
for bench in "$build"/bench.*; do
	[ -x "$bench" ] || continue
	echo "== $(basename "$bench")"
	"$bench"
	ran=1
done
if [ "$ran" = 0 ]; then
	echo "bench/run.sh: no benchmarks in $build (run make build first)" >&2
	exit 1
fi
