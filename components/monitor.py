"""monitor: compare the predictions the predictor logged (serving/prediction_log.py) with the served
version's drift reference (logged by evaluate) and write a drift report to MLflow: PSI per feature,
two-sample Kolmogorov-Smirnov p-values for input length and confidence, the class mix, and a plot. The
registered version gets a ``drift`` tag (``stable`` / ``drifted``).

    python -m components.monitor --predictions s3://predictions/sentiment --model models:/sentiment@champion
"""

import argparse
import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from kfp.dsl import Markdown, Metrics, Output
from scipy.stats import ks_2samp

from components import component
from core.labels import LABELS
from core.object_store import download
from core.registry import resolve
from core.tracking import use_tracking
from monitoring.drift import (
    FEATURES,
    REFERENCE_ARTIFACT,
    SIGNIFICANT_PSI,
    DriftReference,
    bin_shares,
    class_mix,
    drift_scores,
)

logger = logging.getLogger(__name__)

MONITOR_EXPERIMENT = "sentiment-monitoring"


class MonitorError(RuntimeError):
    """Nothing to judge: no logged predictions for the version, or no reference for it."""


@dataclass(frozen=True)
class DriftReport:
    model_name: str
    model_version: str
    rows: int
    psi: dict[str, float]
    ks_pvalues: dict[str, float]
    class_mix: dict[str, float]
    reference_class_mix: dict[str, float]
    threshold: float
    drifted: list[str]
    run_id: str

    def markdown(self) -> str:
        lines = [
            f"# Drift report: {self.model_name} version {self.model_version}",
            "",
            f"{self.rows} logged predictions against the version's reference (its test split). "
            f"PSI above {self.threshold} is a significant shift.",
            "",
            "| feature | PSI | KS p-value | verdict |",
            "|---|---|---|---|",
        ]
        for feature in FEATURES:
            pvalue = f"{self.ks_pvalues[feature]:.3g}" if feature in self.ks_pvalues else "-"
            verdict = "**drifted**" if feature in self.drifted else "stable"
            lines.append(f"| {feature} | {self.psi[feature]:.3f} | {pvalue} | {verdict} |")
        lines += ["", "| class | reference share | logged share |", "|---|---|---|"]
        lines += [
            f"| {name} | {self.reference_class_mix[name]:.3f} | {self.class_mix[name]:.3f} |"
            for name in LABELS
        ]
        return "\n".join(lines) + "\n"


def read_prediction_log(source: str) -> pd.DataFrame:
    """Every logged prediction under ``source`` (a folder or an s3:// prefix of JSON-lines parts)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = download(source, Path(tmp)) if source.startswith("s3://") else Path(source)
        parts = sorted(Path(folder).glob("predictions-*.jsonl"))
        if not parts:
            raise MonitorError(f"no prediction log parts (predictions-*.jsonl) under {source}")
        return pd.concat(
            [pd.read_json(part, lines=True, precise_float=True) for part in parts], ignore_index=True
        )


def _comparison_figure(reference: DriftReference, lengths: np.ndarray, confidences: np.ndarray, labels):
    """Reference vs logged shares per bin, one panel per feature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("input length bin", reference.length_shares, bin_shares(lengths, reference.length_edges)),
        ("confidence bin", reference.confidence_shares, bin_shares(confidences, reference.confidence_edges)),
        ("predicted class", [reference.class_shares[n] for n in LABELS], class_mix(labels)),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, (title, ref, live) in zip(axes, panels, strict=True):
        x = np.arange(len(ref))
        ax.bar(x - 0.2, ref, width=0.4, label="reference")
        ax.bar(x + 0.2, live, width=0.4, label="logged")
        ax.set(title=title, ylabel="share")
        if title == "predicted class":
            ax.set_xticks(x, LABELS)
    axes[0].legend()
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class MonitorConfig:
    """params.yaml ``monitor``: see the comments there (the PSI that counts as drift is
    monitoring.drift.SIGNIFICANT_PSI, the dashboards' red line)."""

    since_hours: float


def monitor_predictions(
    predictions: str, model_uri: str, tracking_uri: str, threshold: float, since_hours: float
) -> DriftReport:
    """Judge the predictions logged under ``predictions`` for the version ``model_uri`` names (the last
    ``since_hours`` only, if > 0) against its reference; log the report to MLflow and tag the version."""
    use_tracking(tracking_uri, MONITOR_EXPERIMENT)
    served = resolve(model_uri)
    name, version, run_id = served.name, str(served.version), served.run_id
    try:
        reference = DriftReference.from_json(
            mlflow.artifacts.load_text(f"runs:/{run_id}/{REFERENCE_ARTIFACT}")
        )
    except Exception as exc:
        raise MonitorError(f"version {version} of {name} has no drift reference ({exc})") from exc
    logged = read_prediction_log(predictions)
    logged = logged[logged["model_version"].astype(str) == version]
    if since_hours > 0:
        logged = logged[logged["time"] >= time.time() - since_hours * 3600]
    if logged.empty:
        raise MonitorError(f"no logged predictions for {name} version {version} under {predictions}")
    lengths = logged["text"].str.len().to_numpy(dtype=float)
    confidences = logged["confidence"].to_numpy(dtype=float)
    labels = logged["label"].tolist()
    psi = drift_scores(reference, lengths, confidences, labels)
    ks = {
        "input_length": float(ks_2samp(lengths, reference.length_sample).pvalue),
        "confidence": float(ks_2samp(confidences, reference.confidence_sample).pvalue),
    }
    drifted = [feature for feature in FEATURES if psi[feature] > threshold]
    with mlflow.start_run(run_name=f"drift-{name}-v{version}") as run:
        mlflow.set_tags(
            {"model_name": name, "model_version": version, "drift": "drifted" if drifted else "stable"}
        )
        mlflow.log_params({"predictions": predictions, "threshold": threshold, "since_hours": since_hours})
        mlflow.log_metrics(
            {"rows": float(len(logged))}
            | {f"psi_{k}": v for k, v in psi.items()}
            | {f"ks_pvalue_{k}": v for k, v in ks.items()}
        )
        report = DriftReport(
            name,
            version,
            len(logged),
            psi,
            ks,
            dict(zip(LABELS, class_mix(labels).tolist(), strict=True)),
            reference.class_shares,
            threshold,
            drifted,
            run.info.run_id,
        )
        mlflow.log_dict(asdict(report), "drift/drift_report.json")
        mlflow.log_text(report.markdown(), "drift/drift_report.md")
        mlflow.log_figure(_comparison_figure(reference, lengths, confidences, labels), "drift/shares.png")
    mlflow.MlflowClient().set_model_version_tag(name, version, "drift", "drifted" if drifted else "stable")
    logger.info(
        "drift of %s v%s over %d predictions: %s (drifted: %s)", name, version, len(logged), psi, drifted
    )
    return report


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--predictions", required=True, help="folder or s3:// prefix of the prediction log")
    parser.add_argument("--model", default="models:/sentiment@champion", help="the version to judge")
    parser.add_argument("--tracking_uri", default=mlflow.get_tracking_uri())
    parser.add_argument("--threshold", type=float, default=SIGNIFICANT_PSI, help="PSI that counts as drift")
    parser.add_argument("--since_hours", type=float, default=0.0, help="only the last N hours (0: all)")
    args = parser.parse_args(argv)
    report = monitor_predictions(
        args.predictions, args.model, args.tracking_uri, args.threshold, args.since_hours
    )
    print(report.markdown())
    print(json.dumps({"drifted": report.drifted, "mlflow_run": report.run_id}))


@component
def monitor(
    predictions: str,
    model_uri: str,
    config: dict,
    tracking_uri: str,
    report: Output[Markdown],
    drift: Output[Metrics],
) -> str:
    """Compare the predictor's logged predictions (folder or s3:// prefix) with the reference of the version
    ``model_uri`` names (params.yaml ``monitor``); the drift report goes to MLflow and to KFP. Returns the
    drifted features as JSON."""
    import json

    from components.monitor import MonitorConfig, monitor_predictions
    from core.config import from_mapping
    from monitoring.drift import SIGNIFICANT_PSI

    since_hours = from_mapping(MonitorConfig, config, "monitor").since_hours
    result = monitor_predictions(predictions, model_uri, tracking_uri, SIGNIFICANT_PSI, since_hours)
    for feature, value in result.psi.items():
        drift.log_metric(f"psi_{feature}", value)
    drift.log_metric("rows", result.rows)
    with open(report.path, "w") as page:
        page.write(result.markdown())
    return json.dumps(result.drifted)


if __name__ == "__main__":
    main()
