#!/usr/bin/env bash
# The Kubernetes deployment holds: the Helm chart lints, renders (capture with
# a hot standby, one apply Deployment per entity, the SQLite caches DaemonSet,
# ConfigMaps, the Secret, a PodMonitor), and every manifest validates strictly
# against the Kubernetes schemas with kubeconform (schemas from PyPI's
# kubernetes-validate, made standalone by tests/support/k8s_schemas.py; the
# PodMonitor is a CRD and is skipped). The plain manifests in deploy/kubernetes/
# are the chart rendered with the example values, and every configuration the
# chart ships passes `cachewarp config check`.
set -u
root=${CW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CW_BINARY:-$root/build/cachewarp}
PATH=$PATH:/usr/local/go/bin:${HOME:-/root}/go/bin
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
work=$(mktemp -d /tmp/cw-kubernetes-XXXXXX)
trap 'rm -rf "$work"' EXIT
chart=$root/deploy/helm/cachewarp
for tool in helm kubeconform; do
	command -v "$tool" >/dev/null || { fail "$tool not found (make deps installs it with go install)"; exit 1; }
done

helm lint "$chart" >"$work/lint.out" 2>&1 || fail "helm lint: $(cat "$work/lint.out")"
render() { helm template cachewarp "$chart" --set 'applyEntities={orders,customers}' --set sqliteCaches.enabled=true; }
render >"$work/all.yaml" || fail "helm template failed"
python3 "$root/tests/support/k8s_schemas.py" 1.30.0 "$work/schemas" ||
	{ fail "no schemas (make deps installs kubernetes-validate from PyPI)"; exit 1; }
validate() { # FILE
	kubeconform -strict -summary -schema-location "$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
		-skip PodMonitor "$1"
}
validate "$work/all.yaml" >"$work/kc.out" 2>&1 || fail "kubeconform: $(cat "$work/kc.out")"
total=$(grep -c '^kind:' "$work/all.yaml")
grep -q "Valid: $((total - 1)), Invalid: 0, Errors: 0, Skipped: 1" "$work/kc.out" ||
	fail "kubeconform: $(tail -1 "$work/kc.out")"
for kind in 'kind: Deployment' 'kind: DaemonSet' 'kind: PodMonitor' 'kind: Secret' 'kind: ConfigMap'; do
	grep -q "^$kind" "$work/all.yaml" || fail "the chart renders no $kind"
done
grep -q '"--entity","orders"' "$work/all.yaml" || fail "no apply Deployment runs --entity orders"
grep -q 'replicas: 2' "$work/all.yaml" || fail "the capture has no hot standby"

# deploy/kubernetes/cachewarp.yaml is the chart with these values, kept current.
cmp -s "$work/all.yaml" "$root/deploy/kubernetes/cachewarp.yaml" ||
	fail "deploy/kubernetes/cachewarp.yaml differs from the chart: regenerate it (see its README)"
# A manifest with a field Kubernetes does not know fails: the validation bites.
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: true\n        readOnlyRootFilsystem: true/' \
	"$work/all.yaml" >"$work/bad.yaml"
validate "$work/bad.yaml" >/dev/null 2>&1 && fail "kubeconform accepted an unknown field"

# Every configuration the chart ships loads with the variables its pods get.
python3 - "$work/all.yaml" "$work" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
configs = {d["metadata"]["name"]: d["data"]["cachewarp.yaml"] for d in docs if d["kind"] == "ConfigMap"}
for d in docs:
    if d["kind"] not in ("Deployment", "DaemonSet"):
        continue
    pod = d["spec"]["template"]["spec"]
    config = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    env = [e["name"] for e in pod["containers"][0].get("env", []) if e["name"].startswith("CACHEWARP_")]
    name = d["metadata"]["name"]
    open("%s/%s.yaml" % (sys.argv[2], name), "w").write(configs[config])
    open("%s/%s.env" % (sys.argv[2], name), "w").write("\n".join(env) + "\n")
PY
for config in "$work"/cachewarp-*.yaml; do
	[ -f "${config%.yaml}.env" ] || continue
	vars=()
	while read -r name; do [ -n "$name" ] && vars+=("$name=postgresql://u:p@host/db"); done <"${config%.yaml}.env"
	env "${vars[@]}" "$bin" config check -c "$config" >"$work/check.out" 2>&1 ||
		fail "$(basename "$config" .yaml) with ${vars[*]%%=*}: $(cat "$work/check.out")"
done
[ "$failures" -eq 0 ] && echo "kubernetes: chart lints, $(grep -c '^kind:' "$work/all.yaml") manifests, all valid"
exit $((failures > 0))
