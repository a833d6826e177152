"""Model cards: a markdown summary of one candidate (data, split sizes, metrics per class, confusion
matrix, out-of-domain scores, robustness: validation against every held-out set, training time, model
size, inference latency) rendered from its MLflow run."""

import json
import os
import platform
import statistics
import time

from core.artifacts import LABEL_CHECKS_TAG_PREFIX, MACHINE_LABELLED_TAG
from core.labels import LABELS

MODEL_CARD_ARTIFACT = "model_card.md"
_DESCRIBED_PARAMS = (
    "featurizer",
    "encoder",
    "classifier",
    "trials",
    "C",
    "imbalance",
    "model_id",
    "model_source",
    "max_length",
    "batch_size",
    "learning_rate",
    "epochs",
    "max_steps",
    "max_minutes",
    "label_smoothing",
    "seed_members",
    "device",
    "members",
)


def single_text_latency_ms(model, texts: list[str], repeats: int = 20) -> float:
    """Median wall-clock milliseconds of one single-text ``predict`` call (after one warm-up call)."""
    import pandas as pd

    frames = [pd.DataFrame({"text": [texts[i % len(texts)]]}) for i in range(repeats + 1)]
    model.predict(frames[0])
    timings = []
    for frame in frames[1:]:
        started = time.perf_counter()
        model.predict(frame)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _out_of_domain_lines(metrics: dict, tags: dict) -> list[str]:
    """A table of the out-of-domain scores, when the candidate was scored on any."""
    domains = [d for d in tags.get("ood_domains", "").split(",") if d]
    if not domains:
        return []
    lines = ["", "## Out of domain", "", "Scored on data from other sources than the training data:", ""]
    lines += [_row(["domain", "rows", "macro recall", "macro F1", "accuracy"]), _row(["---"] * 5)]
    for domain in domains:
        values = [metrics[f"ood_{domain}_{m}"] for m in ("macro_recall", "macro_f1", "accuracy")]
        lines.append(_row([domain, f"{metrics[f'ood_{domain}_rows']:.0f}", *(f"{v:.4f}" for v in values)]))
    return lines


def _sources_line(params: dict) -> str:
    """The training sources and, when there are several, the exponent their training rows were mixed by."""
    sources = json.loads(params.get("pipeline.ingest.sources", "[]"))
    if not sources:
        return "- sources: unknown"
    named = ", ".join(f"`{source}`" for source in sources)
    mix = params.get("pipeline.preprocess.mix_exponent")
    if len(sources) == 1 or mix is None:
        return f"- sources: {named}"
    return f"- sources: {named} (training rows mixed with exponent {mix}: components/preprocess.py)"


def _label_check_lines(tags: dict) -> list[str]:
    """Ingest's label checks of each source (components/label_checks.py), the flagged ones named."""
    prefix = LABEL_CHECKS_TAG_PREFIX
    checks = sorted((k.removeprefix(prefix), v) for k, v in tags.items() if k.startswith(prefix))
    if not checks:
        return []
    flagged = tags.get(MACHINE_LABELLED_TAG, "none")
    lines = [f"- probably machine-labelled (a lexicon reproduces their labels): {flagged}", "- label checks:"]
    return lines + [f"  - `{name}`: {summary}" for name, summary in checks]


def _value(metrics: dict, name: str) -> str:
    return f"{metrics[name]:.4f}" if name in metrics else "n/a"


def _robustness_lines(metrics: dict, tags: dict) -> list[str]:
    """Validation (in all, then per source when there are several) against every held-out set (each
    test set and each out-of-domain set): macro recall, its gap to validation, and recall per class;
    then the held-out sets' mean, the gate's default score."""
    if "validation_macro_recall" not in metrics or "test_macro_recall" not in metrics:
        return []
    tests = [name for name in tags.get("test_sets", "test").split(",") if name]
    held_out = [*tests, *(f"ood_{d}" for d in tags.get("ood_domains", "").split(",") if d)]
    validations = ["validation"]
    if tests != ["test"]:
        validations += [f"validation{name.removeprefix('test')}" for name in tests]
    validation = metrics["validation_macro_recall"]
    lines = ["", "## Robustness", "", "Macro recall on validation and on each held-out set, the gap to"]
    lines += ["validation, and recall per class (a recipe tuned on validation shows here):", ""]
    lines += [_row(["set", "macro recall", "gap to validation", *LABELS]), _row(["---"] * (3 + len(LABELS)))]
    for name in [*validations, *held_out]:
        gap = "" if name.startswith("validation") else f"{metrics[f'{name}_macro_recall'] - validation:+.4f}"
        per_class = [_value(metrics, f"{name}_{label}_recall") for label in LABELS]
        lines.append(_row([name, _value(metrics, f"{name}_macro_recall"), gap, *per_class]))
    mean = statistics.fmean(metrics[f"{name}_macro_recall"] for name in held_out)
    lines.append(_row(["held-out mean", f"{mean:.4f}", f"{mean - validation:+.4f}", *([""] * len(LABELS))]))
    return lines


def render_model_card(run, confusion_matrix: list[list[int]]) -> str:
    """Markdown for the candidate logged by ``run`` (an ``mlflow.entities.Run`` after evaluate)."""
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    family = params.get("model_family", "unknown")
    name = f"{family}-{params['featurizer']}" if family == "linear" else family
    lines = [f"# Model card: {name}", "", f"MLflow run `{run.info.run_id}`.", "", "## Model", ""]
    lines += [f"- {key}: `{params[key]}`" for key in _DESCRIBED_PARAMS if key in params]
    steps = (
        f" ({metrics['train_steps']:.0f} steps, stopped by {tags.get('stopped_by')})"
        if "train_steps" in metrics
        else ""
    )
    lines += [
        f"- training time: {metrics.get('train_seconds', float('nan')):.0f} s{steps}",
        f"- model size: {metrics.get('model_mb', float('nan')):.1f} MB",
        "",
        "## Data",
        "",
        _sources_line(params),
        f"- rows: train {params.get('train_rows')}, validation {params.get('validation_rows')}, "
        f"test {tags.get('test_rows')}",
        f"- labels: {', '.join(LABELS)}",
        *_label_check_lines(tags),
        "",
        "## Metrics",
        "",
        _row(["split", "macro recall", "macro F1", "accuracy"]),
        _row(["---"] * 4),
    ]
    for split in ("validation", "test"):
        values = [metrics.get(f"{split}_{m}") for m in ("macro_recall", "macro_f1", "accuracy")]
        lines.append(_row([split] + [f"{v:.4f}" if v is not None else "n/a" for v in values]))
    lines += ["", "Per class, test split:", "", _row(["class", "precision", "recall", "F1", "support"])]
    lines.append(_row(["---"] * 5))
    for label in LABELS:
        values = [metrics[f"test_{label}_{m}"] for m in ("precision", "recall", "f1")]
        lines.append(_row([label, *(f"{v:.4f}" for v in values), f"{metrics[f'test_{label}_support']:.0f}"]))
    lines += ["", "Confusion matrix, test split (rows: true, columns: predicted):", ""]
    lines += [_row(["", *LABELS]), _row(["---"] * (len(LABELS) + 1))]
    lines += [_row([label, *row]) for label, row in zip(LABELS, confusion_matrix, strict=True)]
    lines += _out_of_domain_lines(metrics, tags)
    lines += _robustness_lines(metrics, tags)
    lines += [
        "",
        "## Inference",
        "",
        f"- latency per single text: {metrics.get('latency_ms_per_text', float('nan')):.1f} ms (median, "
        f"served through the MLflow pyfunc model on {platform.machine()} with {os.cpu_count()} cores)",
        "",
    ]
    return "\n".join(lines)
