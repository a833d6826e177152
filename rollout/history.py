"""What served when: every change of the traffic route (create, canary, promote, rollback, replace, a
withdrawn canary, a converging re-run) is kept as an MLflow run in experiment ``<model>-rollout-history``
with its time, the versions and their shares and why (the gate's decision, the analysis' verdict, or by
hand); ``python -m rollout.history`` (``make history``) prints the periods between changes, each
version's offline score from the registry and, given Prometheus, its live quality beside it.

    python -m rollout.history [--name sentiment] [--prometheus http://localhost:9090]
"""

import argparse
import logging
import os
import time
from dataclasses import dataclass

import mlflow

from rollout.prometheus import Prometheus, PrometheusError

logger = logging.getLogger(__name__)

ACTION_TAG, STABLE_TAG, CANARY_TAG, PERCENT_TAG, REASON_TAG = (
    "route.action",
    "route.stable_version",
    "route.canary_version",
    "route.canary_percent",
    "route.reason",
)


def history_experiment(model: str) -> str:
    return f"{model}-rollout-history"


@dataclass(frozen=True)
class RouteChange:
    """The route after one change: ``stable`` takes 100 - ``percent``, ``canary`` (if any) ``percent``."""

    time: float
    action: str
    stable: str
    canary: str | None
    percent: int
    reason: str

    @classmethod
    def now(cls, action: str, stable: str, canary: str | None, percent: int, reason: str) -> "RouteChange":
        return cls(time.time(), action, stable, canary, percent if canary else 0, reason)

    def shares(self) -> dict[str, int]:
        """Version -> share of the traffic, in percent."""
        return {self.stable: 100 - self.percent} | ({self.canary: self.percent} if self.canary else {})


def record_route_change(client: mlflow.MlflowClient, model: str, change: RouteChange) -> None:
    """Keep ``change`` as a finished run of the model's rollout-history experiment."""
    name = history_experiment(model)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    tags = {
        ACTION_TAG: change.action,
        STABLE_TAG: change.stable,
        CANARY_TAG: change.canary or "",
        PERCENT_TAG: str(change.percent),
        REASON_TAG: change.reason[:5000],
    }
    run = client.create_run(
        experiment_id, start_time=int(change.time * 1000), tags=tags, run_name=change.action
    )
    client.set_terminated(run.info.run_id, "FINISHED", end_time=int(change.time * 1000))


def route_changes(client: mlflow.MlflowClient, model: str) -> list[RouteChange]:
    """Every recorded change of ``model``'s route, oldest first."""
    experiment = client.get_experiment_by_name(history_experiment(model))
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"], max_results=10000
    )
    return [
        RouteChange(
            run.info.start_time / 1000,
            run.data.tags[ACTION_TAG],
            run.data.tags[STABLE_TAG],
            run.data.tags[CANARY_TAG] or None,
            int(run.data.tags[PERCENT_TAG]),
            run.data.tags.get(REASON_TAG, ""),
        )
        for run in runs
    ]


def offline_scores(client: mlflow.MlflowClient, model: str, versions: set[str]) -> dict[str, str]:
    """Each version's score as the gate registered it (its ``score_<metric>`` tag)."""
    scores = {}
    for version in versions:
        tags = client.get_model_version(model, version).tags
        scores[version] = ", ".join(
            f"{k.removeprefix('score_')} {float(v):.3f}" for k, v in tags.items() if k.startswith("score_")
        )
    return scores


def live_scores(prometheus_url: str | None, model: str) -> dict[str, str]:
    """Each version's live macro recall over the last day with its 95 % interval (the recording rules of
    monitoring/alerts.rules.yml), from Prometheus at ``prometheus_url``; empty without one."""
    if not prometheus_url:
        return {}
    prometheus, selector = Prometheus(prometheus_url), f'{{model="{model}"}}'
    try:
        figures = _live_figures(prometheus, selector)
    except PrometheusError as exc:
        logger.warning("no live quality: %s", exc)
        return {}
    return {
        version: f"{value:.3f} [{figures['lower'][version]:.3f}, {figures['upper'][version]:.3f}], "
        f"{figures['labels'][version]:.0f} labels"
        for version, value in figures["value"].items()
        if all(version in figures[name] for name in ("lower", "upper", "labels"))
    }


def _live_figures(prometheus, selector: str) -> dict[str, dict[str, float]]:
    return {
        name: {
            m["model_version"]: v for m, v in prometheus.query(f"max by (model_version) ({rule}{selector})")
        }
        for name, rule in (
            ("value", "sentiment:live_macro_recall:ratio1d"),
            ("lower", "sentiment:live_macro_recall_lower:ratio1d"),
            ("upper", "sentiment:live_macro_recall_upper:ratio1d"),
            ("labels", "sentiment:live_labelled:1d"),
        )
    }


def render(changes: list[RouteChange], offline: dict[str, str], live: dict[str, str], now: float) -> str:
    """The periods between changes (from, to, each version's share, the change that began it and why),
    then each version that served with its offline and live quality."""
    if not changes:
        return "no route change recorded"
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))  # noqa: E731
    lines = ["| from (UTC) | to (UTC) | serving | change | why |", "|---|---|---|---|---|"]
    for change, following in zip(changes, [*changes[1:], None], strict=True):
        until = stamp(following.time) if following else f"now ({stamp(now)})"
        shares = ", ".join(f"v{v} {p} %" for v, p in change.shares().items())
        lines.append(f"| {stamp(change.time)} | {until} | {shares} | {change.action} | {change.reason} |")
    versions = sorted({v for change in changes for v in change.shares()}, key=int)
    lines += ["", "| version | offline score (gate) | live macro recall, last day |", "|---|---|---|"]
    lines += [f"| v{v} | {offline.get(v) or 'n/a'} | {live.get(v, 'n/a')} |" for v in versions]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the model's name defaults to params.yaml's ``run``."""
    from core.config import params_section

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default=params_section("run")["model_name"])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--prometheus", help="Prometheus' URL, for each version's live quality")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """``python -m rollout.history`` with its parsed ``args`` (:func:`parse_args`)."""
    client = mlflow.MlflowClient(args.tracking_uri)
    changes = route_changes(client, args.name)
    versions = {v for change in changes for v in change.shares()}
    print(
        render(
            changes,
            offline_scores(client, args.name, versions),
            live_scores(args.prometheus, args.name),
            time.time(),
        )
    )


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
