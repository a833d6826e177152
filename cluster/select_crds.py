"""Keep the CustomResourceDefinitions of one API group from a multi-document YAML stream (stdin to stdout).

``make cluster-infra`` installs Envoy Gateway as KServe v0.20.0 does (hack/setup/infra/
manage.envoy-gateway-helm.sh, there with ``yq 'select(.spec.group == "gateway.envoyproxy.io")'``): only the
chart's own CRDs, never its bundled experimental-channel Gateway API ones.

    helm show crds oci://docker.io/envoyproxy/gateway-helm --version v1.8.1 \\
        | python cluster/select_crds.py gateway.envoyproxy.io | kubectl apply --server-side -f -
"""

import sys

import yaml


def select_crds(stream: str, group: str) -> list[dict]:
    """The CRDs in ``stream`` whose ``spec.group`` is ``group``."""
    return [
        doc
        for doc in yaml.safe_load_all(stream)
        if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["group"] == group
    ]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} <api group>  (reads YAML on stdin)")
    selected = select_crds(sys.stdin.read(), sys.argv[1])
    if not selected:
        sys.exit(f"select_crds: no CustomResourceDefinition of group {sys.argv[1]} on stdin")
    yaml.safe_dump_all(selected, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
