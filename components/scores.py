"""Classification metrics and plots, shared by train, evaluate and the gate."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from core.labels import LABELS


def classification_metrics(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    """Macro recall (TweetEval's official metric), macro F1, accuracy and per-class P/R/F1."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(LABELS), zero_division=0
    )
    metrics = {
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }
    for i, label in enumerate(LABELS):
        metrics |= {
            f"{label}_precision": float(precision[i]),
            f"{label}_recall": float(recall[i]),
            f"{label}_f1": float(f1[i]),
            f"{label}_support": float(support[i]),
        }
    return metrics


def source_sets(split: str, frame: pd.DataFrame) -> pd.Series:
    """Each row's set: ``split`` (e.g. ``test``) when ``frame`` holds one source, ``<split>_<source>``
    when it holds several (each source's own slice of the split, components/preprocess.py)."""
    if "source" not in frame or frame["source"].nunique() <= 1:
        return pd.Series(split, index=frame.index, dtype="string")
    return (f"{split}_" + frame["source"]).astype("string")


def per_source_metrics(split: str, frame: pd.DataFrame, predicted: list[str]) -> dict[str, float]:
    """:func:`classification_metrics` of each source's rows of ``frame`` (its labels against
    ``predicted``), as ``<split>_<source>_*``; empty when ``frame`` holds one source."""
    sets = source_sets(split, frame)
    if sets.nunique() == 1:
        return {}
    scored = pd.DataFrame(
        {"label": frame["label"].to_numpy(), "set": sets.to_numpy(), "predicted": predicted}
    )
    return {
        f"{name}_{k}": v
        for name, rows in scored.groupby("set", sort=True)
        for k, v in classification_metrics(rows["label"].tolist(), rows["predicted"].tolist()).items()
    }


def label_confusion_matrix(y_true: list[str], y_pred: list[str]) -> list[list[int]]:
    """Rows are true labels, columns predicted labels, both in LABELS order."""
    return confusion_matrix(y_true, y_pred, labels=list(LABELS)).tolist()


def confusion_matrix_figure(matrix: list[list[int]], title: str):
    """A labelled confusion-matrix heat map (matplotlib Figure, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(values, cmap="Blues")
    ax.set(
        xticks=range(len(LABELS)),
        yticks=range(len(LABELS)),
        xticklabels=LABELS,
        yticklabels=LABELS,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    for (row, col), count in np.ndenumerate(values):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > values.max() / 2 else "black",
        )
    fig.tight_layout()
    return fig


def metric_on_samples(
    truth: np.ndarray, predicted: np.ndarray, samples: np.ndarray, metric: str
) -> np.ndarray:
    """``metric`` (macro_recall, macro_f1 or accuracy) of each resample; ``truth``/``predicted`` are label ids
    and ``samples`` an index matrix of shape (resamples, n). Vectorised: one confusion matrix per row."""
    k = len(LABELS)
    cells = truth[samples] * k + predicted[samples]
    confusion = np.stack([np.bincount(row, minlength=k * k) for row in cells]).reshape(-1, k, k)
    hits = np.diagonal(confusion, axis1=1, axis2=2).astype(float)
    if metric == "accuracy":
        return hits.sum(axis=1) / samples.shape[1]
    support, predicted_count = confusion.sum(axis=2), confusion.sum(axis=1)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    if metric == "macro_recall":  # over the classes present in each resample's truth
        return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)
    if metric == "macro_f1":
        precision = np.divide(hits, predicted_count, out=np.zeros_like(hits), where=predicted_count > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
        return f1.mean(axis=1)
    raise ValueError(f"metric must be macro_recall, macro_f1 or accuracy, got {metric!r}")


@dataclass(frozen=True)
class PairedSet:
    """One evaluation set of a paired comparison: its weight in the score, the true labels and both
    models' predicted labels for the same texts."""

    weight: float
    truth: list[str]
    candidate: list[str]
    champion: list[str]


def paired_bootstrap(
    sets: list[PairedSet],
    metric: str,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Paired bootstrap of the weighted sum over ``sets`` of ``metric(candidate) - metric(champion)``.

    Each set is resampled on its own (the same resample for both models); returns (observed difference,
    lower bound, upper bound) of the two-sided ``confidence`` interval.
    """
    ids = {label: i for i, label in enumerate(LABELS)}
    rng = np.random.default_rng(seed)
    observed, differences = 0.0, np.zeros(samples)
    for paired in sets:
        y, a, b = (
            np.array([ids[x] for x in labels]) for labels in (paired.truth, paired.candidate, paired.champion)
        )
        everything = np.arange(len(y))[None, :]
        observed += paired.weight * float(
            metric_on_samples(y, a, everything, metric)[0] - metric_on_samples(y, b, everything, metric)[0]
        )
        index = rng.integers(0, len(y), size=(samples, len(y)))
        differences += paired.weight * (
            metric_on_samples(y, a, index, metric) - metric_on_samples(y, b, index, metric)
        )
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return observed, float(low), float(high)


@dataclass(frozen=True)
class ScoreInterval:
    """A metric on some labelled answers, with its bootstrap percentile interval."""

    value: float
    lower: float
    upper: float
    rows: int


def score_interval(
    truth: list[str],
    predicted: list[str],
    metric: str,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ScoreInterval:
    """``metric`` of ``predicted`` against ``truth`` and its two-sided ``confidence`` bootstrap interval
    (rows resampled with replacement; macro recall averages the classes present in each resample)."""
    ids = {label: i for i, label in enumerate(LABELS)}
    y, p = (np.array([ids[x] for x in labels]) for labels in (truth, predicted))
    value = float(metric_on_samples(y, p, np.arange(len(y))[None, :], metric)[0])
    index = np.random.default_rng(seed).integers(0, len(y), size=(samples, len(y)))
    tail = (1 - confidence) / 2
    low, high = np.quantile(metric_on_samples(y, p, index, metric), [tail, 1 - tail])
    return ScoreInterval(value, float(low), float(high), len(y))
