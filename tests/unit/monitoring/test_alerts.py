"""Alert rules, checked with Prometheus' own promtool: the rules file parses, every alert's unit test
(synthetic series in monitoring/alerts.test.yml) passes, and the PrometheusRule the cluster gets holds the
same rules."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "monitoring" / "alerts.rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (.ci/run installs it)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=120)


def test_rules_parse_and_every_alert_passes_its_unit_test() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 6 rules found" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    tested = promtool("test", "rules", str(REPO / "monitoring" / "alerts.test.yml"))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    tests = yaml.safe_load((REPO / "monitoring" / "alerts.test.yml").read_text())["tests"]
    tested_alerts = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert tested_alerts == {rule["alert"] for rule in rules}  # no alert without a unit test


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules.yml"
    broken.write_text("groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: sum(rate(x[5m])\n")
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_the_prometheus_rule_carries_the_same_rules() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "manifests" / "base")], capture_output=True, text=True, check=True
    )
    (rule,) = [doc for doc in yaml.safe_load_all(built.stdout) if doc and doc["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_committed_dashboards_are_what_the_code_generates() -> None:
    from monitoring.dashboards import DASHBOARDS, OUTPUT, render

    assert sorted(p.name for p in OUTPUT.glob("*.json")) == sorted(DASHBOARDS)
    for name in DASHBOARDS:
        assert (OUTPUT / name).read_text() == render(name), f"{name} is stale: run `make dashboards`"


def test_dashboards_ship_as_configmaps_for_the_grafana_sidecar() -> None:
    from monitoring.dashboards import DASHBOARDS, render

    built = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "manifests" / "base")], capture_output=True, text=True, check=True
    )
    maps = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all(built.stdout)
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("grafana-dashboard-")
    }
    assert len(maps) == len(DASHBOARDS)
    for name in DASHBOARDS:
        config_map = maps[f"grafana-dashboard-{name.removesuffix('.json')}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["data"][name] == render(name)


def test_every_dashboard_uses_the_template_variables() -> None:
    """Predictor panels filter on namespace and model (the PodMonitor adds both labels), pipeline panels on
    model; none hard-codes a data source."""
    from monitoring.dashboards import DASHBOARDS

    for name, build in DASHBOARDS.items():
        board = build()
        assert {v["name"] for v in board["templating"]["list"]} >= {"datasource", "model"}
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert "$model" in target["expr"], (name, panel["title"])
                if name != "sentiment-pipeline.json":
                    assert 'namespace=~"$namespace"' in target["expr"], (name, panel["title"])
                assert target["datasource"]["uid"] == "${datasource}"
