#!/usr/bin/env bash
# `make install` lays out what a host needs: the binary, the manual page (the
# binary's own --help texts, regenerated here and compared), the example
# configuration and the systemd unit cachewarp@.service, which systemd-analyze
# verifies without a warning and which names the installed binary.
set -uo pipefail
root=${CW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CW_BUILD_DIR:-$root/build}
work=$(mktemp -d /tmp/cw-install-XXXXXX)
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
trap '[ "$failures" -eq 0 ] && rm -rf "$work" || echo "kept $work" >&2' EXIT

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
	{ fail "cmake --install: $(tail -3 "$work/install.log")"; exit 1; }
bin=$prefix/bin/cachewarp
page=$prefix/share/man/man1/cachewarp.1
unit=$prefix/lib/systemd/system/cachewarp@.service
for f in "$bin" "$page" "$unit" "$prefix/share/doc/cachewarp/cachewarp.example.yaml"; do
	[ -f "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
[ -x "$bin" ] && "$bin" --version | grep -q '^cachewarp ' || fail "the installed binary does not run"

# The page is the binary's help: regenerated from the installed binary, it is the same.
bash "$root/scripts/manpage.sh" "$bin" >"$work/fresh.1" || fail "manpage.sh failed"
cmp -s "$page" "$work/fresh.1" || fail "the installed manual page differs from the binary's --help"
for command in $("$bin" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'); do
	grep -q "^\.SS $command\$" "$page" || fail "the manual page has no section for \"$command\""
done
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z "$page" 2>"$work/groff.err"
	[ -s "$work/groff.err" ] && fail "groff warns about the manual page: $(head -3 "$work/groff.err")"
fi

# The unit: the installed binary, and no complaint from systemd.
grep -q "^ExecStart=$prefix/bin/cachewarp run -c /etc/cachewarp/%i.yaml\$" "$unit" ||
	fail "the unit does not start the installed binary: $(grep ^ExecStart= "$unit")"
if command -v systemd-analyze >/dev/null; then
	# Documentation=man:cachewarp(1) is looked up: the page installed above.
	MANPATH=$prefix/share/man: systemd-analyze verify "$(dirname "$unit")/cachewarp@demo.service" >"$work/verify.out" 2>&1 ||
		fail "systemd-analyze verify failed: $(head -5 "$work/verify.out")"
	[ -s "$work/verify.out" ] && fail "systemd-analyze verify warns: $(head -5 "$work/verify.out")"
else
	fail "systemd-analyze is missing (scripts/deps.sh installs systemd)"
fi
exit $((failures > 0))
