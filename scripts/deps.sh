#!/usr/bin/env bash
# Installs the system packages cachewarp's build, tests, demo and benchmarks
# need. Idempotent and silent when everything is present; as non-root it
# prints the exact command to run instead.
set -euo pipefail

packages=(
	build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
	libpq-dev libmongoc-dev libbson-dev libsqlite3-dev sqlite3 libyaml-dev
	libjansson-dev libmicrohttpd-dev libcmocka-dev
	postgresql-15 postgresql-client-15
	openjdk-17-jdk-headless maven curl procps
)

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "cachewarp needs these packages: ${missing[*]}" >&2
	echo "run: sudo apt-get update && sudo $cmd" >&2
	exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
$cmd -qq >/dev/null
