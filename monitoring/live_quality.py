"""Live quality from a live confusion matrix: the labelled answers of a model version counted by true and
predicted label (the predictor's ``sentiment_live_labels_total``, summed across replicas). The recording
rules in monitoring/alerts.rules.yml compute the same figures in Prometheus; this is the one definition
in Python, for readers of a pod's /metrics and for the tests that hold the two equal.

Macro recall is the mean of the classes' recalls over the classes that have labels; its 95 % interval is
the normal approximation ``macro +- 1.96 * sqrt(sum_k r_k (1 - r_k) / n_k) / K`` (the classes' recalls as
independent binomial proportions), which PromQL can compute from the summed counts.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z95 = 1.96


@dataclass(frozen=True)
class CountedQuality:
    """Live quality of one version from its summed confusion counts."""

    labelled: int
    macro_recall: float
    stderr: float  # of macro recall: sqrt(sum_k r_k (1 - r_k) / n_k) / K
    lower: float
    upper: float
    accuracy: float


def quality_from_counts(counts: Mapping[tuple[str, str], float]) -> CountedQuality | None:
    """Macro recall with its 95 % interval and accuracy from ``counts`` ((true label, predicted label) ->
    labelled answers); None without labels."""
    totals: dict[str, float] = {}
    for (label, _), count in counts.items():
        totals[label] = totals.get(label, 0) + count
    classes = [label for label, total in totals.items() if total > 0]
    if not classes:
        return None
    recalls = {label: counts.get((label, label), 0) / totals[label] for label in classes}
    macro = sum(recalls.values()) / len(classes)
    variance = sum(r * (1 - r) / totals[label] for label, r in recalls.items())
    stderr = math.sqrt(variance) / len(classes)
    labelled = sum(totals.values())
    correct = sum(counts.get((label, label), 0) for label in classes)
    return CountedQuality(
        int(labelled), macro, stderr, macro - Z95 * stderr, macro + Z95 * stderr, correct / labelled
    )


def version_counts(metrics_text: str, version: str) -> dict[tuple[str, str], float]:
    """The live confusion counts of ``version`` in one predictor's /metrics text ((true label, predicted
    label) -> labelled answers)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.labels["label"], sample.labels["predicted"]): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "sentiment_live_labels_total" and sample.labels["model_version"] == version
    }
