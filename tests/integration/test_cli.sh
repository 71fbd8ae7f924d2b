#!/usr/bin/env bash
# The command line contract: --version, --help everywhere, exit codes 0/1/2,
# and one error line plus usage on stderr for anything unknown.
set -u
bin=${CW_BINARY:?CW_BINARY is set by ctest}
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

expect() { # expect CODE ARGS... : run, compare the exit code
	local want=$1; shift
	"$bin" "$@" >/tmp/cw-cli-out.$$ 2>/tmp/cw-cli-err.$$
	local got=$?
	[ "$got" -eq "$want" ] || fail "cachewarp $* exited $got, want $want: $(cat /tmp/cw-cli-err.$$)"
}

expect 0 --version
grep -Eq '^cachewarp [0-9]+\.[0-9]+\.[0-9]+$' /tmp/cw-cli-out.$$ || fail "--version printed: $(cat /tmp/cw-cli-out.$$)"

expect 0 --help
for cmd in run migrate entity status config verify deadletter; do
	grep -q "^  $cmd " /tmp/cw-cli-out.$$ || fail "--help does not list $cmd"
done
for cmd in run migrate entity status config verify deadletter; do
	expect 0 "$cmd" --help
	grep -q "^usage: cachewarp $cmd" /tmp/cw-cli-out.$$ || fail "$cmd --help has no usage line"
	# libmongoc warns at load when a SIGKILLed process (the kill loop's) left
	# its counters segment in /dev/shm under a pid now reused; that is not ours.
	grep -v 'mongoc: Falling back to malloc for counters' /tmp/cw-cli-err.$$ |
		grep -q . && fail "$cmd --help wrote to stderr: $(head -c 300 /tmp/cw-cli-err.$$)"
done

expect 2
expect 2 frobnicate
[ "$(grep -c '^cachewarp: ' /tmp/cw-cli-err.$$)" -eq 1 ] || fail "unknown command: want one error line"
grep -q 'unknown command "frobnicate"' /tmp/cw-cli-err.$$ || fail "unknown command not named"
grep -q '^usage: cachewarp' /tmp/cw-cli-err.$$ || fail "unknown command: no usage on stderr"
[ -s /tmp/cw-cli-out.$$ ] && fail "unknown command wrote to stdout"

expect 2 --frobnicate
grep -q 'unknown option "--frobnicate"' /tmp/cw-cli-err.$$ || fail "unknown top-level option not named"

for cmd in run migrate status config deadletter; do
	expect 2 "$cmd" --bogus-flag
	[ "$(grep -c '^cachewarp: ' /tmp/cw-cli-err.$$)" -eq 1 ] || fail "$cmd --bogus-flag: want one error line"
	grep -q "^usage: cachewarp $cmd" /tmp/cw-cli-err.$$ || fail "$cmd --bogus-flag: no usage on stderr"
done

expect 2 entity frobnicate
expect 2 config frobnicate
expect 2 deadletter frobnicate
expect 2 run -c /nonexistent/cachewarp.yaml

rm -f /tmp/cw-cli-out.$$ /tmp/cw-cli-err.$$
[ "$failures" -eq 0 ] && echo "cli: all checks passed"
exit $((failures > 0))
