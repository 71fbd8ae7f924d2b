#!/usr/bin/env bash
# Builds and runs bench/pg_capture.c against the build directory (make build
# first): capture rows/s of the PostgreSQL source next to pg_recvlogical.
#   bash bench/pg_capture.sh [ROWS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
out=$build/bench-pg-capture
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/src" \
	-I"$root/tests/support" "$root/bench/pg_capture.c" \
	"$build/libcwtestsupport.a" "$build/libcwlib.a" \
	$(pkg-config --cflags --libs libpq libmongoc-1.0 libbson-1.0 sqlite3 yaml-0.1 jansson \
	  libmicrohttpd cmocka) -lpthread -lm -o "$out"
export CW_SUPPORT_DIR=$root/tests/support
export PATH=$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV | head -1)
"$out" "${1:-1000000}"
