"""The Makefile's cluster targets run as a user types them (`make secrets`, `make cluster-infra`, `make
images`, `make cluster-up`, `make clean`), in a shell with no project variables, against stand-ins for what
cannot run here: ``kubectl``, ``helm``, ``docker``, ``kind`` and ``minikube`` on PATH are scripts that record
every call and what is piped to ``kubectl apply -f -`` (the API server). Whatever kubectl does offline
(``create ... --dry-run=client``, ``annotate --local``) is the real kubectl, so the Secrets checked below
are the bytes a cluster would store."""

import base64
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, user_environment

# KServe v0.20.0's kserve-deps.env (the versions its own install scripts use): HELM_VERSION,
# GATEWAY_API_VERSION, ENVOY_GATEWAY_VERSION.
KSERVE_DEPS = {"HELM_VERSION": "v3.16.3", "GATEWAY_API_VERSION": "v1.5.1", "ENVOY_GATEWAY_VERSION": "v1.8.1"}
# What `helm show crds oci://docker.io/envoyproxy/gateway-helm` prints: the experimental-channel Gateway API
# CRDs it bundles, then its own.
CHART_CRDS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
  annotations: {gateway.networking.k8s.io/channel: experimental}
spec: {group: gateway.networking.k8s.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: envoyproxies.gateway.envoyproxy.io}
spec: {group: gateway.envoyproxy.io}
"""
STAND_IN = """#!/bin/bash
# Stand-in for {tool}: records the call; {what}
printf '%s\\n' "{tool} $*" >> "$STAND_IN_CALLS"
{body}
"""
BODIES = {
    "kubectl": (
        "offline subcommands go to the real kubectl, `apply -f -` is recorded",
        """case " $* " in
  *" --dry-run=client "*|*" --local "*|" kustomize "*) exec "$REAL_KUBECTL" "$@";;
  *" apply "*"-f - "*) { echo '---'; cat; } >> "$STAND_IN_APPLIED";;
esac""",
    ),
    "helm": (
        "answers `version` and `show crds`",
        """case "$1 $2" in
  "version "*) echo "$HELM_STAND_IN_VERSION";;
  "show crds") cat "$STAND_IN_CRDS";;
esac""",
    ),
    "docker": ("answers `info`", '[ "$1" = info ] && echo "$DOCKER_STAND_IN_INFO"; true'),
    "kind": ("knows no cluster", "true"),
    "minikube": ("has no cluster running", '[ "$1" = status ] && exit 7; true'),
}


@pytest.fixture
def cluster_shell(tmp_path: Path) -> dict[str, str]:
    """A user's shell whose PATH starts with the stand-ins; MLOPS_HOME is given on each make line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, (what, body) in BODIES.items():
        script = bin_dir / tool
        script.write_text(STAND_IN.format(tool=tool, what=what, body=body))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "crds.yaml").write_text(CHART_CRDS)
    env = user_environment(tmp_path / "home")
    return env | {
        "PATH": f"{bin_dir}:{env['PATH']}",
        "REAL_KUBECTL": shutil.which("kubectl"),
        "STAND_IN_CALLS": str(tmp_path / "calls.log"),
        "STAND_IN_APPLIED": str(tmp_path / "applied.yaml"),
        "STAND_IN_CRDS": str(tmp_path / "crds.yaml"),
        "HELM_STAND_IN_VERSION": KSERVE_DEPS["HELM_VERSION"] + "+g1234567",
        "DOCKER_STAND_IN_INFO": f"8 {16 * 1024**3}",
    }


def run_make(shell: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", *arguments], cwd=REPO, env=shell, capture_output=True, text=True, timeout=300
    )


def calls(shell: dict[str, str]) -> list[str]:
    path = Path(shell["STAND_IN_CALLS"])
    return path.read_text().splitlines() if path.exists() else []


def applied(shell: dict[str, str]) -> list[dict]:
    path = Path(shell["STAND_IN_APPLIED"])
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc] if path.exists() else []


def test_make_secrets_stores_values_without_a_newline_and_keeps_them(cluster_shell, tmp_path: Path) -> None:
    home = tmp_path / "mlops"
    (home / "cluster").mkdir(parents=True)
    (home / "cluster" / "minio-password").write_text("0123abcd\n")  # as an older make secrets left it
    done = run_make(cluster_shell, "secrets", f"MLOPS_HOME={home}")
    assert done.returncode == 0, done.stderr
    secrets = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in applied(cluster_shell)
        if d["kind"] == "Secret"
    }
    assert set(secrets) == {
        ("mlops", "minio-credentials"),
        ("kubeflow", "minio-credentials"),
        ("mlops", "sentiment-predictor-token"),
    }
    for (namespace, name), secret in secrets.items():
        for key, encoded in secret["data"].items():
            value = base64.b64decode(encoded).decode()
            assert value and value == value.strip(), f"{namespace}/{name} {key}: {value!r}"
    password = base64.b64decode(secrets[("mlops", "minio-credentials")]["data"]["AWS_SECRET_ACCESS_KEY"])
    assert password == b"0123abcd"  # kept, not rotated under a running MinIO
    token = (home / "cluster" / "predictor-token").read_text()
    assert (
        len(token) == 48
        and base64.b64decode(secrets[("mlops", "sentiment-predictor-token")]["data"]["token"])
        == token.encode()
    )
    assert stat.S_IMODE((home / "cluster" / "predictor-token").stat().st_mode) == 0o600
    # the key every predictor replica signs answer ids with, beside the token
    answer_key = base64.b64decode(secrets[("mlops", "sentiment-predictor-token")]["data"]["answer-key"])
    assert answer_key == (home / "cluster" / "answer-key").read_bytes() and len(answer_key) == 48
    annotations = secrets[("mlops", "minio-credentials")]["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-endpoint"] == "minio.mlops.svc.cluster.local:9000"
    assert run_make(cluster_shell, "secrets", f"MLOPS_HOME={home}").returncode == 0  # again: same values
    assert (home / "cluster" / "predictor-token").read_text() == token


def test_make_cluster_infra_installs_envoy_gateway_as_kserve_v0_20_does(
    cluster_shell, tmp_path: Path
) -> None:
    done = run_make(cluster_shell, "cluster-infra", f"MLOPS_HOME={tmp_path / 'mlops'}")
    assert done.returncode == 0, done.stderr
    made = calls(cluster_shell)
    standard = next(i for i, c in enumerate(made) if "standard-install.yaml" in c)
    assert f"/{KSERVE_DEPS['GATEWAY_API_VERSION']}/standard-install.yaml" in made[standard]
    chart = f"oci://docker.io/envoyproxy/gateway-helm --version {KSERVE_DEPS['ENVOY_GATEWAY_VERSION']}"
    crds = made.index(f"helm show crds {chart}")
    applied_crds = made.index("kubectl apply --server-side --force-conflicts -f -")  # the same pipe
    envoy = next(i for i, c in enumerate(made) if c.startswith("helm upgrade --install eg "))
    assert standard < min(crds, applied_crds) and max(crds, applied_crds) < envoy
    assert "--skip-crds" in made[envoy].split() and KSERVE_DEPS["ENVOY_GATEWAY_VERSION"] in made[envoy]
    # only the chart's own CRDs reach the API server, server-side, never its experimental Gateway API ones
    assert [d["metadata"]["name"] for d in applied(cluster_shell)] == ["envoyproxies.gateway.envoyproxy.io"]
    kserve = next(c for c in made if c.startswith("helm upgrade --install kserve "))
    assert "kserve.controller.gateway.disableIstioVirtualHost=true" in kserve
    kfp = next(i for i, c in enumerate(made) if "env/platform-agnostic" in c)
    assert (
        made[kfp + 1] == "kubectl -n kubeflow wait --for=condition=Available --timeout=900s deployment --all"
    )


def test_make_cluster_infra_refuses_a_helm_without_oci_charts(cluster_shell, tmp_path: Path) -> None:
    done = run_make(
        cluster_shell | {"HELM_STAND_IN_VERSION": "v3.7.2"}, "cluster-infra", f"MLOPS_HOME={tmp_path}"
    )
    assert done.returncode != 0 and "helm v3.7.2 is older than 3.8" in done.stderr
    assert not [c for c in calls(cluster_shell) if c.startswith(("helm upgrade", "kubectl"))]


def test_later_targets_use_the_cluster_and_images_that_were_set_up(cluster_shell, tmp_path: Path) -> None:
    home = tmp_path / "mlops"
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    done = run_make(cluster_shell, "images", f"MLOPS_HOME={home}")
    assert done.returncode == 0, done.stderr
    images = f"sentiment-mlops-train:{head} sentiment-mlops-serve:{head}"
    assert f"kind load docker-image {images} --name sentiment-mlops" in calls(cluster_shell)
    assert (home / "cluster" / "image-tag").read_text().strip() == head
    # a commit after cluster-up: deploy and platform keep the loaded images until make images runs again
    (home / "cluster" / "image-tag").write_text("0ld0ld0ld0ld\n")
    dry = run_make(cluster_shell, "-n", "deploy", "platform", f"MLOPS_HOME={home}").stdout
    assert "--image sentiment-mlops-serve:0ld0ld0ld0ld" in dry and 'newTag: "0ld0ld0ld0ld"' in dry
    # the cluster kind chosen at cluster-up holds for later targets; make clean keeps the cluster's state
    (home / "cluster" / "cluster-kind").write_text("minikube\n")
    (home / "mlflow.db").write_text("")
    assert run_make(cluster_shell, "clean", f"MLOPS_HOME={home}").returncode == 0
    assert not (home / "mlflow.db").exists() and (home / "cluster" / "image-tag").exists()
    assert run_make(cluster_shell, "images", f"MLOPS_HOME={home}").returncode == 0
    assert f"minikube image load sentiment-mlops-train:{head} sentiment-mlops-serve:{head}" in calls(
        cluster_shell
    )


def test_make_cluster_up_names_the_kind_cluster_and_checks_dockers_size(
    cluster_shell, tmp_path: Path
) -> None:
    home = tmp_path / "mlops"
    small = cluster_shell | {"DOCKER_STAND_IN_INFO": f"4 {8 * 1024**3}"}
    done = run_make(small, "cluster-up", f"MLOPS_HOME={home}", "KIND_CLUSTER=demo")
    assert done.returncode != 0 and "Docker gives 4 CPUs and 8 GiB; the stack needs 6 CPUs" in done.stderr
    assert not [c for c in calls(cluster_shell) if c.startswith("kind create")]
    done = run_make(cluster_shell, "-n", "cluster-up", f"MLOPS_HOME={home}", "KIND_CLUSTER=demo")
    assert "kind create cluster --name demo --config cluster/kind-config.yaml" in done.stdout
    assert "name" not in yaml.safe_load((REPO / "cluster/kind-config.yaml").read_text())


def test_make_cluster_demo_runs_the_walk_throughs_commands_in_order(cluster_shell, tmp_path: Path) -> None:
    """cluster/demo.sh runs the commands docs/cluster.md's walk-through shows, in the same order, and
    make accepts each of them (a dry run, as typed, MLOPS_HOME aside)."""
    ran = re.findall(r'^run(?:_in_background \S+)? "(.+)"$', (REPO / "cluster/demo.sh").read_text(), re.M)
    docs = (REPO / "docs/cluster.md").read_text()
    walk_through = docs[docs.index("## Walkthrough") : docs.index("### How the install follows upstream")]
    shown = iter(
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", walk_through, re.S)
        for line in block.splitlines()
    )
    assert len(ran) >= 10 and all(command in shown for command in ran)  # a subsequence: same order
    assert "bash cluster/demo.sh" in run_make(cluster_shell, "-n", "cluster-demo").stdout
    for command in ran:
        dry = subprocess.run(
            f"{command.replace('make ', 'make -n ', 1)} MLOPS_HOME={tmp_path / 'mlops'}",
            shell=True, cwd=REPO, env=cluster_shell, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert dry.returncode == 0, f"{command}: {dry.stderr[-2000:]}"
