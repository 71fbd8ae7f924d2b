#!/usr/bin/env bash
# This file contains the kazaam reference for the differential test of the
# transformation engine: the kazaam library (Go, v3.4.8) behind a small
# program in tests/fixtures/kazaam-ref that reads cases and prints kazaam's
# output (see its main.go).
#
#   kazaam_ref.sh fetch    builds the program with go (once; again when its sources change)
#   kazaam_ref.sh path     prints the program's path (after fetch)
set -u -o pipefail
umask 022

SRV_NAME=kazaam_ref.sh
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
# shellcheck source=srv_common.sh
. "$(dirname "$SELF")/srv_common.sh"

FIXTURE=$(cd "$(dirname "$SELF")/../fixtures/kazaam-ref" && pwd -P) ||
	srv_die "could not find tests/fixtures/kazaam-ref"
BIN=$FIXTURE/bin/kazaam-ref

case ${1:-} in
fetch) srv_go_build "$FIXTURE" "$BIN" "the kazaam reference" ;;
path) echo "$BIN" ;;
*) echo "usage: kazaam_ref.sh fetch | path" >&2; exit 2 ;;
esac
