"""analyze: automated canary analysis. Reads Prometheus for the stable and the canary version of the
InferenceService separately (every predictor series carries ``model_version``), runs the checks of
rollout/canary_checks.py over a sliding window at an interval, and decides:

- ``promote`` when every check passes, with enough traffic on both versions, for ``required_passes``
  consecutive intervals;
- ``rollback`` as soon as a check fails;
- ``wait`` otherwise; at the timeout the verdict is ``on_timeout`` (rollback, promote or wait).

The verdict and its evidence go to stdout (JSON), the canary version's registry tags, an MLflow run and
the Pushgateway (rollout/canary_report.py); then the CLI and the pipeline step promote or roll back
(rollout/deploy.py).

    python -m rollout.canary_analysis [--prometheus URL] [--once] [--no-apply]
"""

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from core.config import from_mapping
from rollout.canary_checks import (
    FAIL,
    INSUFFICIENT,
    OPTIONAL_CHECKS,
    PASS,
    CheckResult,
    Thresholds,
    VersionEvidence,
    run_checks,
)
from rollout.canary_report import PROMOTE, ROLLBACK, WAIT, CanaryVerdict, record_verdict
from rollout.prometheus import Prometheus, PrometheusError

logger = logging.getLogger(__name__)

# Server-side failures: HTTP 5xx and the gRPC codes of a failing server (client errors are not the
# version's fault).
ERROR_CODES = "5..|INTERNAL|UNKNOWN|UNAVAILABLE|DATA_LOSS"


@dataclass(frozen=True)
class CanaryAnalysisConfig(Thresholds):
    """params.yaml ``canary_analysis`` (see the comments there): the checks' thresholds, and where the
    metrics are and when the analysis looks."""

    prometheus_url: str
    window: str
    interval_seconds: float
    timeout_seconds: float
    required_passes: int
    on_timeout: str


@dataclass(frozen=True)
class AnalysisSettings:
    """Where the metrics are and how the analysis decides; built from params.yaml (``canary_analysis``)."""

    prometheus_url: str
    namespace: str
    model: str
    window: str
    interval_seconds: float
    timeout_seconds: float
    required_passes: int
    on_timeout: str
    thresholds: Thresholds

    @classmethod
    def from_config(cls, values: dict, namespace: str, model: str) -> "AnalysisSettings":
        """From params.yaml's ``canary_analysis`` mapping (every key, typed: CanaryAnalysisConfig)."""
        config = from_mapping(CanaryAnalysisConfig, values, "canary_analysis")
        return cls(
            prometheus_url=config.prometheus_url,
            namespace=namespace,
            model=model,
            window=config.window,
            interval_seconds=config.interval_seconds,
            timeout_seconds=config.timeout_seconds,
            required_passes=config.required_passes,
            on_timeout=config.on_timeout,
            thresholds=Thresholds(**{f.name: getattr(config, f.name) for f in fields(Thresholds)}),
        )

    def __post_init__(self) -> None:
        if self.on_timeout not in (PROMOTE, ROLLBACK, WAIT):
            raise ValueError(f"on_timeout must be promote, rollback or wait, not {self.on_timeout!r}")
        if self.thresholds.min_requests < 1 or self.required_passes < 1 or self.interval_seconds <= 0:
            raise ValueError("min_requests and required_passes must be >= 1, interval_seconds > 0")

    @property
    def looks(self) -> int:
        """The most intervals one analysis judges."""
        return int(self.timeout_seconds // self.interval_seconds) + 1

    def per_look_thresholds(self) -> Thresholds:
        """The thresholds with ``alpha`` split over every look and the three statistical tests (5xx, class
        mix, live quality; Bonferroni), so that ``alpha`` bounds the chance of rolling back an equal canary
        over the whole analysis."""
        return replace(self.thresholds, alpha=self.thresholds.alpha / (3 * self.looks))


def version_evidence(
    prometheus: Prometheus, settings: AnalysisSettings, versions: tuple[str, ...]
) -> dict[str, VersionEvidence]:
    """Requests, 5xx, p99 latency, class counts and mean confidence per version over the window."""
    selector = (
        f'namespace="{settings.namespace}",model="{settings.model}",model_version=~"{"|".join(versions)}"'
    )
    window = settings.window

    def by_version(expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(metric.get(label, "") for label in ("model_version", *labels)): value
            for metric, value in prometheus.query(expr)
            if not math.isnan(value)
        }

    requests = by_version(
        f"sum by (model_version) (increase(sentiment_requests_total{{{selector}}}[{window}]))"
    )
    errors = by_version(
        f'sum by (model_version) (increase(sentiment_requests_total{{{selector},code=~"{ERROR_CODES}"}}'
        f"[{window}]))"
    )
    p99 = by_version(
        "histogram_quantile(0.99, sum by (le, model_version) "
        f"(rate(sentiment_request_duration_seconds_bucket{{{selector}}}[{window}])))"
    )
    classes = by_version(
        f"sum by (model_version, label) (increase(sentiment_predictions_total{{{selector}}}[{window}]))",
        "label",
    )
    labels = by_version(
        "sum by (model_version, label, predicted) ("
        f"last_over_time(sentiment_live_labels_total{{{selector}}}[{window}])"
        f" - sentiment_live_labels_total{{{selector}}} offset {window}"
        f" or last_over_time(sentiment_live_labels_total{{{selector}}}[{window}]))",
        "label",
        "predicted",
    )
    confidence = by_version(
        f"sum by (model_version) (rate(sentiment_prediction_confidence_ratio_sum{{{selector}}}[{window}])) / "
        f"sum by (model_version) (rate(sentiment_prediction_confidence_ratio_count{{{selector}}}[{window}]))"
    )
    return {
        version: VersionEvidence(
            version=version,
            requests=round(requests.get((version,), 0.0)),
            errors=round(errors.get((version,), 0.0)),
            latency_p99_seconds=p99.get((version,)),
            class_counts={label: round(n) for (v, label), n in classes.items() if v == version},
            mean_confidence=confidence.get((version,)),
            labels=_nested({(t, p): round(n) for (v, t, p), n in labels.items() if v == version}),
        )
        for version in versions
    }


def _nested(counts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """{(true, predicted): n} as {true: {predicted: n}} (JSON keys)."""
    nested: dict[str, dict[str, int]] = {}
    for (label, guess), n in counts.items():
        nested.setdefault(label, {})[guess] = n
    return nested


def judge_interval(checks: list[CheckResult]) -> str:
    """``fail`` if any check failed, ``pass`` if every check passed (an optional one may lack evidence),
    else ``insufficient``."""
    outcomes = {check.outcome for check in checks}
    if FAIL in outcomes:
        return FAIL
    required = {check.outcome for check in checks if check.name not in OPTIONAL_CHECKS}
    return PASS if required == {PASS} else INSUFFICIENT


def interval_decision(checks: list[CheckResult], passes: int, required_passes: int) -> tuple[str, str]:
    """(decision, reason) after one interval that ends ``passes`` consecutive passing intervals."""
    failed = [c for c in checks if c.outcome == FAIL]
    if failed:
        return ROLLBACK, "; ".join(f"{c.name} failed: {c.detail}" for c in failed)
    if passes >= required_passes:
        return PROMOTE, f"every check passed for {passes} consecutive intervals"
    waiting = [c for c in checks if c.outcome != PASS]
    return WAIT, "; ".join(f"{c.name}: {c.detail}" for c in waiting) or f"{passes} passing intervals so far"


def analyze_canary(
    prometheus: Prometheus,
    settings: AnalysisSettings,
    stable: str,
    canary: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CanaryVerdict:
    """Judge ``canary`` against ``stable`` every ``interval_seconds`` until a verdict or the timeout."""
    deadline = clock() + settings.timeout_seconds
    limits = settings.per_look_thresholds()
    passes = intervals = 0
    while True:
        try:
            evidence = version_evidence(prometheus, settings, (stable, canary))
            checks = run_checks(evidence[stable], evidence[canary], limits)
        except PrometheusError as exc:  # one failed scrape of the evidence is one interval without it
            logger.warning("%s", exc)
            evidence, checks = {}, [CheckResult("prometheus", INSUFFICIENT, None, None, str(exc))]
        intervals += 1
        passes = passes + 1 if judge_interval(checks) == PASS else 0
        decision, reason = interval_decision(checks, passes, settings.required_passes)
        logger.info(
            "canary %s vs stable %s, interval %d: %s (%s)",
            canary,
            stable,
            intervals,
            decision,
            "; ".join(f"{c.name} {c.outcome}" for c in checks),
        )
        timed_out = decision == WAIT and clock() + settings.interval_seconds > deadline
        if timed_out:
            decision = settings.on_timeout
            reason = f"no verdict within {settings.timeout_seconds:.0f} s ({reason}); on timeout: {decision}"
        if decision != WAIT or timed_out:
            return CanaryVerdict(
                decision, reason, settings.model, stable, canary, intervals, passes, checks, evidence
            )
        sleep(settings.interval_seconds)


def apply_verdict(verdict: CanaryVerdict, cluster, registry, serving) -> None:
    """Promote or roll back the canary (rollout/deploy.py); ``wait`` leaves it as it is."""
    from rollout.deploy import promote, rollback

    act = {PROMOTE: promote, ROLLBACK: rollback}.get(verdict.decision)
    if act:
        reason = f"analysis: {verdict.reason}"
        act(cluster, registry, serving, expected_canary=verdict.canary_version, reason=reason)


def run_analysis(
    settings: AnalysisSettings,
    cluster,
    registry,
    serving,
    tracking_uri: str | None,
    pushgateway: str | None,
    apply: bool = True,
) -> CanaryVerdict:
    """Analyse the InferenceService's canary against its stable version, record the verdict and (with
    ``apply``) act on it. ``cluster``, ``registry`` and ``serving`` are rollout/deploy.py's."""
    from rollout.deploy import DeployError, stable_and_canary

    stable, canary = stable_and_canary(cluster.existing(serving))
    if canary is None:
        raise DeployError(f"{serving.namespace}/{serving.name} has no canary to analyse")
    verdict = analyze_canary(Prometheus(settings.prometheus_url), settings, stable, canary)
    record_verdict(verdict, tracking_uri, pushgateway)
    if apply and verdict.decision != WAIT:
        apply_verdict(verdict, cluster, registry, serving)
        registry.client.set_model_version_tag(verdict.model, verdict.canary_version, "canary.applied", "true")
    return verdict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; defaults from params.yaml (``run``, ``deploy`` and ``canary_analysis``)."""
    from core.config import params_section

    run, deploy = params_section("run"), params_section("deploy")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default=run["model_name"])
    parser.add_argument("--namespace", default=deploy["namespace"])
    parser.add_argument("--prometheus", default=params_section("canary_analysis")["prometheus_url"])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--pushgateway", default=os.environ.get("PUSHGATEWAY", run["pushgateway"]))
    parser.add_argument(
        "--once", action="store_true", help="judge one interval and report (implies --no-apply)"
    )
    parser.add_argument("--no-apply", action="store_true", help="report the verdict, do not act on it")
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("set MLFLOW_TRACKING_URI or --tracking-uri: the verdict goes to the registry")
    return args


def run(args: argparse.Namespace) -> None:
    """``python -m rollout.canary_analysis`` with its parsed ``args`` (:func:`parse_args`)."""
    from core.config import params_section
    from rollout.deploy import Cluster, Registry, load_kube_config
    from rollout.inference_service import ServingSettings

    config = params_section("canary_analysis")
    settings = AnalysisSettings.from_config(
        {**config, "prometheus_url": args.prometheus}, args.namespace, args.name
    )
    if args.once:
        settings = replace(settings, required_passes=1, timeout_seconds=0.0, on_timeout=WAIT)
    load_kube_config()
    serving = ServingSettings(image="", name=args.name, namespace=args.namespace)
    verdict = run_analysis(
        settings,
        Cluster(),
        Registry(args.name, args.tracking_uri),
        serving,
        args.tracking_uri,
        args.pushgateway,
        apply=not (args.no_apply or args.once),
    )
    print(json.dumps(verdict.as_dict(), indent=2))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv))


if __name__ == "__main__":
    main()
