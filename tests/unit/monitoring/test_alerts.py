"""Alert rules, checked with Prometheus' own promtool: the rules file parses, every alert's unit test
(synthetic series in monitoring/alerts.test.yml) passes, and the PrometheusRule the cluster gets holds the
same rules."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

RULES = REPO / "monitoring" / "alerts.rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (.ci/run installs it)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=120)


def test_rules_parse_and_every_alert_passes_its_unit_test() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 17 rules found" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    tested = promtool("test", "rules", str(REPO / "monitoring" / "alerts.test.yml"))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    tests = yaml.safe_load((REPO / "monitoring" / "alerts.test.yml").read_text())["tests"]
    tested_alerts = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert tested_alerts == {rule["alert"] for rule in rules if "alert" in rule}  # each alert tested


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
