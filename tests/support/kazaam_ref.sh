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

die() {
	echo "kazaam_ref.sh: $1" >&2
	if [ -n "${2:-}" ] && [ -s "$2" ]; then
		echo "--- last lines of $2 ---" >&2
		tail -n 25 "$2" >&2
	fi
	exit 1
}

FIXTURE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures/kazaam-ref" && pwd -P) ||
	die "could not find tests/fixtures/kazaam-ref"
BIN=$FIXTURE/bin/kazaam-ref

go_cmd() {
	command -v go 2>/dev/null && return 0
	local candidate
	for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
		[ -x "$candidate" ] && { echo "$candidate"; return 0; }
	done
	return 1
}

bin_fresh() {
	[ -x "$BIN" ] && [ -z "$(find "$FIXTURE/go.mod" "$FIXTURE/go.sum" "$FIXTURE/main.go" -newer "$BIN" -print -quit)" ]
}

# Builds the binary unless it is newer than its sources; concurrent callers wait on a lock.
cmd_fetch() {
	bin_fresh && return 0
	local go
	go=$(go_cmd) || die "could not find \"go\": the differential test needs it (run make deps)"
	mkdir -p "$FIXTURE/bin" || die "could not create \"$FIXTURE/bin\""
	(
		flock -w 600 9 || die "could not lock \"$FIXTURE/bin/.fetch.lock\""
		bin_fresh && exit 0
		echo "kazaam_ref.sh: building the kazaam reference with go" >&2
		(cd "$FIXTURE" && "$go" build -o "$BIN" .) >"$FIXTURE/bin/build.log" 2>&1 ||
			die "go could not build the kazaam reference" "$FIXTURE/bin/build.log"
		touch "$BIN"
	) 9>"$FIXTURE/bin/.fetch.lock"
}

case ${1:-} in
fetch) cmd_fetch ;;
path) echo "$BIN" ;;
*) echo "usage: kazaam_ref.sh fetch | path" >&2; exit 2 ;;
esac
