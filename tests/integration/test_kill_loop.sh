#!/usr/bin/env bash
# The short kill loop of make test: 20 SIGKILLs of cachewarp under a mixed
# PostgreSQL workload, then convergence of the SQLite cache on the source
# (tests/reliability/kill_loop.sh; make soak runs the long one).
set -u
root=${CW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec bash "$root/tests/reliability/kill_loop.sh" --kills 20
