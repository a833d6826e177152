"""The Grafana dashboards (monitoring/dashboards.py): the committed JSON is what the code generates, it ships
as ConfigMaps for the Grafana sidecar, and every panel filters on the template variables."""

import subprocess

import yaml

from tests.helpers import REPO


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
