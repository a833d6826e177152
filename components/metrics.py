"""Classification metrics and plots, shared by train, evaluate and the gate."""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from components.labels import LABELS


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
