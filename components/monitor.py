"""monitor: judge what the served version saw and how it did, and decide whether to retrain.

From the predictor's logs (serving/prediction_log.py: sampled predictions, and every labelled answer in
the feedback log beside them) and the version's references (logged at training):

- **input drift**: PSI per feature and Kolmogorov-Smirnov p-values for input length and confidence,
  against the drift reference (monitoring/drift.py), with a plot;
- **text drift on embeddings**: the MMD and domain-classifier tests (monitoring/embedding_drift.py) on
  each of the last ``consecutive_windows`` windows of ``window_rows`` logged texts, against the
  embedding reference of training texts;
- **live quality**: macro recall on the version's labelled answers with its 95 % bootstrap interval,
  against the version's offline test score.

The decision is ``retrain`` when the live interval's upper bound is below the offline score minus
``quality_margin``, or when every one of those windows drifted, unless live labels show the quality
holding (the interval's lower bound at or above the offline score minus the margin): drift is the proxy
for a quality drop while labels are missing, and traffic that is a subpopulation of the training data
(only one of its sources, say) is a significant shift that needs no new model. The report goes to
MLflow (experiment ``sentiment-monitoring``) and the version gets a ``drift`` tag (``stable`` /
``drifted``); acting on the decision is components/retrain.py's job.

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
from components.scores import score_interval
from core.artifacts import EMBEDDING_REFERENCE_ARTIFACT, REFERENCE_ARTIFACT, TRAFFIC_MIX_TAG
from core.labels import LABELS
from core.registry import resolve
from core.storage import local_copy
from core.tracking import use_tracking
from monitoring.drift import (
    FEATURES,
    SIGNIFICANT_PSI,
    DriftReference,
    bin_shares,
    class_mix,
    drift_scores,
)
from monitoring.embedding_drift import (
    EmbeddingReference,
    embed,
    embedding_drift,
    traffic_mix,
)
from monitoring.retraining import LiveQualityCheck, WindowDrift, retrain_decision

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
    windows: list[WindowDrift]
    quality: LiveQualityCheck | None
    retrain: bool
    reasons: list[str]
    notes: list[str]
    run_id: str
    # the share of the judged texts (the windows', or every logged one when there is no full window) that
    # resembles each training source (monitoring/embedding_drift.py traffic_mix); the gate's "traffic"
    traffic_mix: dict[str, float] | None = None

    def decision(self) -> dict:
        """What prepare_retraining acts on."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "drifted": self.drifted,
            "retrain": self.retrain,
            "reasons": self.reasons,
        }

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
        if self.windows:
            lines += [
                "",
                "## Text drift on sentence embeddings (oldest window first)",
                "",
                "| texts | MMD² | MMD p-value | classifier AUC | AUC p-value | verdict |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {w.rows} | {w.mmd:.4f} | {w.mmd_pvalue:.3g} | {w.auc:.3f} | {w.auc_pvalue:.3g} | "
                f"{'**drifted**' if w.drifted else 'stable'} |"
                for w in self.windows
            ]
        if self.traffic_mix:
            lines += ["", "## Traffic mix (the judged texts, by the training source they resemble)", ""]
            lines += ["| source | share |", "|---|---|"]
            lines += [f"| {source} | {share:.3f} |" for source, share in self.traffic_mix.items()]
        if self.quality:
            q = self.quality
            lines += [
                "",
                f"## Live quality: macro recall {q.value:.3f} (95 % interval [{q.lower:.3f}, {q.upper:.3f}]) "
                f"on {q.labelled} labelled answers; offline test score {q.offline:.3f}, margin {q.margin}",
            ]
        verdict = f"**retrain**: {'; '.join(self.reasons)}" if self.retrain else "no retraining needed"
        lines += ["", f"## Decision: {verdict}", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"


def _read_parts(source: str, prefix: str) -> pd.DataFrame | None:
    """Every record of the ``<prefix>-*.jsonl`` parts under ``source`` (folder or s3:// prefix); None
    when there are none."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = local_copy(source, Path(tmp))
        parts = sorted(Path(folder).glob(f"{prefix}-*.jsonl"))
        if not parts:
            return None
        return pd.concat(
            [pd.read_json(part, lines=True, precise_float=True, dtype={"id": str}) for part in parts],
            ignore_index=True,
        )


def read_prediction_log(source: str) -> pd.DataFrame:
    """Every logged prediction under ``source`` (a folder or an s3:// prefix of JSON-lines parts)."""
    logged = _read_parts(source, "predictions")
    if logged is None:
        raise MonitorError(f"no prediction log parts (predictions-*.jsonl) under {source}")
    return logged


def read_feedback(source: str) -> pd.DataFrame:
    """Every labelled answer in the feedback log under ``source`` (every replica's parts), the latest label
    per answer id (columns of serving.feedback.LabelledAnswer; empty when there is none). A label that a
    replica joined by id alone, without the text (another replica answered), gets its text from the
    prediction log by id; a text found in neither stays missing (it counts for live quality only)."""
    labelled = _read_parts(source, "feedback")
    if labelled is None:
        return pd.DataFrame(
            columns=["id", "text", "predicted", "model_version", "time", "label", "labelled_at"]
        )
    labelled["model_version"] = labelled["model_version"].astype(str)
    if labelled["text"].isna().any():
        logged = _read_parts(source, "predictions")
        if logged is not None and "id" in logged:
            texts = logged.dropna(subset=["id"]).drop_duplicates("id").set_index("id")["text"]
            labelled["text"] = labelled["text"].fillna(labelled["id"].map(texts))
    return labelled.sort_values("labelled_at").drop_duplicates("id", keep="last").reset_index(drop=True)


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

    since_hours: float | None
    encoder_id: str
    reference_rows: int
    window_rows: int
    consecutive_windows: int
    alpha: float
    permutations: int
    min_auc: float
    quality_margin: float
    quality_min_labels: int
    quality_window: int

    def __post_init__(self) -> None:
        if self.since_hours is not None and self.since_hours <= 0:
            raise ValueError("monitor.since_hours must be above 0, or null for the whole log")


def embedding_windows(
    texts: list[str], reference: EmbeddingReference, config: MonitorConfig, seed: int = 0
) -> tuple[list[WindowDrift], np.ndarray]:
    """The embedding drift tests on each of the last ``consecutive_windows`` windows of ``window_rows``
    texts (oldest first; as many full windows as there are), and the windows' embeddings."""
    count = min(config.consecutive_windows, len(texts) // config.window_rows)
    recent = texts[len(texts) - count * config.window_rows :]
    embedded = embed(recent, reference.encoder_id)
    windows = []
    for i in range(count):
        window = embedded[i * config.window_rows : (i + 1) * config.window_rows]
        drift = embedding_drift(
            reference.embeddings, window, config.alpha, config.permutations, seed + i, config.min_auc
        )
        windows.append(
            WindowDrift(
                drift.rows,
                drift.mmd.statistic,
                drift.mmd.pvalue,
                drift.classifier.statistic,
                drift.classifier.pvalue,
                drift.drifted,
            )
        )
    return windows, embedded


def live_quality(labelled: pd.DataFrame, offline: float, config: MonitorConfig) -> LiveQualityCheck | None:
    """Macro recall of the latest ``quality_window`` labelled answers with its 95 % interval; None with
    too few labels."""
    labelled = labelled.sort_values("labelled_at", kind="stable").tail(config.quality_window)
    if len(labelled) < config.quality_min_labels:
        return None
    score = score_interval(labelled["label"].tolist(), labelled["predicted"].tolist(), "macro_recall")
    return LiveQualityCheck(score.rows, score.value, score.lower, score.upper, offline, config.quality_margin)


def _logged(run_id: str, artifact: str) -> bool:
    """Whether the run logged ``artifact``; an MLflow or S3 outage raises (it is not a missing file)."""
    folder = str(Path(artifact).parent)
    return artifact in {f.path for f in mlflow.MlflowClient().list_artifacts(run_id, folder)}


def _embedding_reference(run_id: str) -> EmbeddingReference | None:
    """The run's embedding reference; None for a model trained before references were logged."""
    if not _logged(run_id, EMBEDDING_REFERENCE_ARTIFACT):
        return None
    path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{EMBEDDING_REFERENCE_ARTIFACT}")
    return EmbeddingReference.from_bytes(Path(path).read_bytes())


def monitor_predictions(
    predictions: str, model_uri: str, tracking_uri: str, threshold: float, config: MonitorConfig
) -> DriftReport:
    """Judge the predictions and labels logged under ``predictions`` for the version ``model_uri`` names
    (the last ``config.since_hours`` only, when set) against its references; decide whether to retrain; log
    the report to MLflow and tag the version."""
    use_tracking(tracking_uri, MONITOR_EXPERIMENT)
    served = resolve(model_uri)
    name, version, run_id = served.name, str(served.version), served.run_id
    since_hours = config.since_hours
    if not _logged(run_id, REFERENCE_ARTIFACT):
        raise MonitorError(f"version {version} of {name} has no drift reference ({REFERENCE_ARTIFACT})")
    reference = DriftReference.from_json(mlflow.artifacts.load_text(f"runs:/{run_id}/{REFERENCE_ARTIFACT}"))
    logged = read_prediction_log(predictions)
    logged = logged[logged["model_version"].astype(str) == version]
    labelled = read_feedback(predictions)
    labelled = labelled[labelled["model_version"] == version]
    if since_hours is not None:
        logged = logged[logged["time"] >= time.time() - since_hours * 3600]
        labelled = labelled[labelled["labelled_at"] >= time.time() - since_hours * 3600]
    if logged.empty:
        raise MonitorError(f"no logged predictions for {name} version {version} under {predictions}")
    logged = logged.sort_values("time", kind="stable")
    notes, windows, mix = [], [], None
    embedding_reference = _embedding_reference(run_id)
    if embedding_reference is None:
        notes.append("the version has no embedding reference (trained before it existed): no text drift test")
    elif len(logged) < config.window_rows:
        notes.append(f"{len(logged)} logged texts: a text drift window needs {config.window_rows}")
        mix = traffic_mix(embedding_reference, embed(logged["text"].tolist(), embedding_reference.encoder_id))
    else:
        windows, embedded = embedding_windows(logged["text"].tolist(), embedding_reference, config)
        mix = traffic_mix(embedding_reference, embedded)
    offline = mlflow.MlflowClient().get_run(run_id).data.metrics.get("test_macro_recall")
    quality = live_quality(labelled, offline, config) if offline is not None else None
    if quality is None:
        notes.append(f"{len(labelled)} labelled answers: live quality needs {config.quality_min_labels}")
    reasons, decision_notes = retrain_decision(
        windows, quality, config.consecutive_windows, config.window_rows, config.alpha
    )
    notes += decision_notes
    lengths = logged["text"].str.len().to_numpy(dtype=float)
    confidences = logged["confidence"].to_numpy(dtype=float)
    labels = logged["label"].tolist()
    psi = drift_scores(reference, lengths, confidences, labels)
    ks = {
        "input_length": float(ks_2samp(lengths, reference.length_sample).pvalue),
        "confidence": float(ks_2samp(confidences, reference.confidence_sample).pvalue),
    }
    drifted = [feature for feature in FEATURES if psi[feature] > threshold]
    any_drift = bool(drifted) or any(w.drifted for w in windows)
    window_metrics = {
        f"window{i}_{key}": getattr(w, key)
        for i, w in enumerate(windows)
        for key in ("mmd", "mmd_pvalue", "auc", "auc_pvalue")
    }
    quality_metrics = (
        {f"live_macro_recall_{k}": getattr(quality, k) for k in ("value", "lower", "upper")}
        | {"live_labelled": float(quality.labelled)}
        if quality
        else {}
    )
    with mlflow.start_run(run_name=f"drift-{name}-v{version}") as run:
        mlflow.set_tags(
            {
                "model_name": name,
                "model_version": version,
                "drift": "drifted" if any_drift else "stable",
                "retrain": str(bool(reasons)).lower(),
                "retrain.reasons": "; ".join(reasons)[:5000],
            }
            | ({TRAFFIC_MIX_TAG: json.dumps(mix, sort_keys=True)} if mix else {})
        )
        mlflow.log_params({"predictions": predictions, "threshold": threshold} | asdict(config))
        mlflow.log_metrics(
            {"rows": float(len(logged))}
            | {f"psi_{k}": v for k, v in psi.items()}
            | {f"ks_pvalue_{k}": v for k, v in ks.items()}
            | window_metrics
            | quality_metrics
            | {f"traffic_share_{source}": share for source, share in (mix or {}).items()}
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
            windows,
            quality,
            bool(reasons),
            reasons,
            notes,
            run.info.run_id,
            mix,
        )
        mlflow.log_dict(asdict(report), "drift/drift_report.json")
        mlflow.log_text(report.markdown(), "drift/drift_report.md")
        mlflow.log_figure(_comparison_figure(reference, lengths, confidences, labels), "drift/shares.png")
    mlflow.MlflowClient().set_model_version_tag(name, version, "drift", "drifted" if any_drift else "stable")
    logger.info(
        "monitor %s v%s: %d predictions, PSI %s (drifted: %s), %d embedding windows (%d drifted), quality %s;"
        " retrain: %s",
        name,
        version,
        len(logged),
        psi,
        drifted,
        len(windows),
        sum(w.drifted for w in windows),
        quality,
        reasons or "no",
    )
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the version and the look-back default to params.yaml's ``run`` and ``monitor``."""
    from core.config import params_section

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--predictions", required=True, help="folder or s3:// prefix of the prediction log")
    parser.add_argument(
        "--model",
        default=f"models:/{params_section('run')['model_name']}@champion",
        help="the version to judge",
    )
    parser.add_argument("--tracking_uri", default=mlflow.get_tracking_uri())
    parser.add_argument("--threshold", type=float, default=SIGNIFICANT_PSI, help="PSI that counts as drift")
    parser.add_argument(
        "--since_hours",
        type=float,
        default=params_section("monitor")["since_hours"],
        help="only the last N hours (default params.yaml monitor.since_hours; unset: all)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """``python -m components.monitor`` with its parsed ``args`` (:func:`parse_args`)."""
    from core.config import from_mapping, params_section

    config = from_mapping(
        MonitorConfig, params_section("monitor") | {"since_hours": args.since_hours}, "monitor"
    )
    report = monitor_predictions(args.predictions, args.model, args.tracking_uri, args.threshold, config)
    print(report.markdown())
    print(json.dumps(report.decision() | {"mlflow_run": report.run_id}))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv))


@component
def monitor(
    predictions: str,
    model_uri: str,
    config: dict,
    tracking_uri: str,
    report: Output[Markdown],
    drift: Output[Metrics],
) -> str:
    """Judge the predictor's logged predictions and labels (folder or s3:// prefix) for the version
    ``model_uri`` names (params.yaml ``monitor``); the report goes to MLflow and to KFP. Returns the
    decision (drifted features, retrain and why) as JSON."""
    import json

    from components.monitor import MonitorConfig, MonitorError, monitor_predictions
    from core.config import from_mapping
    from monitoring.drift import SIGNIFICANT_PSI

    settings = from_mapping(MonitorConfig, config, "monitor")
    try:
        result = monitor_predictions(predictions, model_uri, tracking_uri, SIGNIFICANT_PSI, settings)
    except MonitorError as exc:  # e.g. a version promoted since the last traffic: nothing to judge yet
        with open(report.path, "w") as page:
            page.write(f"# Nothing to judge\n\n{exc}\n")
        return json.dumps({"drifted": [], "retrain": False, "reasons": [], "note": str(exc)})
    for feature, value in result.psi.items():
        drift.log_metric(f"psi_{feature}", value)
    for i, window in enumerate(result.windows):
        drift.log_metric(f"window{i}_mmd_pvalue", window.mmd_pvalue)
        drift.log_metric(f"window{i}_auc", window.auc)
    if result.quality:
        drift.log_metric("live_macro_recall", result.quality.value)
        drift.log_metric("live_macro_recall_upper", result.quality.upper)
    drift.log_metric("rows", result.rows)
    with open(report.path, "w") as page:
        page.write(result.markdown())
    return json.dumps(result.decision())


if __name__ == "__main__":
    main()
