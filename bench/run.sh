#!/usr/bin/env bash
# Runs every benchmark built from bench/*.c and prints its figures.
# BUILD (default build) is the build directory; arguments go to each bench.
set -euo pipefail
build=${BUILD:-build}
for bench in "$build"/bench.*; do
	[ -x "$bench" ] || continue
	echo "== $(basename "$bench")"
	"$bench" "$@"
done
