"""Each data source's labels checked at ingest: empty texts that carry a label, the same text with
conflicting labels, and how often a lexicon labeller gives the source's label.

A source whose labels a lexicon reproduces almost exactly was probably labelled by one: the Reddit set
in ../shared/data agrees with TextBlob's polarity sign on 100 % of a 3,000-row sample, against 68 % for
the YouTube comments and 50 % for TweetEval (human-labelled). Such labels teach a model the lexicon, and
a held-out slice of them rewards fitting it, so the source is flagged in the data report and the model
card, and the gate does not take it as its default target (components/gate.py).

Two lexicon labellers, both MIT-licensed and needing no download: VADER (vaderSentiment; compound score,
the authors' +-0.05 thresholds) and TextBlob's pattern analyzer (polarity sign, 0 neutral).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
import pandas as pd

LABELLERS = ("vader", "textblob")


@dataclass(frozen=True)
class LabelChecks:
    """What the label checks found in one source."""

    rows: int
    empty_labelled: dict[str, int]  # empty texts per label they carry
    conflicting_texts: int  # distinct texts that appear with more than one label
    checked_rows: int  # the sample the lexicons labelled
    agreement: dict[str, float]  # share of the sample on which each lexicon gives the source's label
    agreement_lower: dict[str, float]  # its 95 % Wilson lower bound
    machine_labelled: bool  # a lexicon's lower bound at or above the threshold

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs and reports."""
        agreement = ", ".join(f"{name} {share:.1%}" for name, share in self.agreement.items())
        flag = "; probably machine-labelled" if self.machine_labelled else ""
        empty = sum(self.empty_labelled.values())
        return (
            f"{empty} empty texts with a label, {self.conflicting_texts} texts with conflicting labels, "
            f"lexicon agreement on {self.checked_rows} texts: {agreement}{flag}"
        )


@cache
def _vader() -> Callable[[str], str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def label(text: str) -> str:
        compound = analyzer.polarity_scores(text)["compound"]
        return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"

    return label


@cache
def _textblob() -> Callable[[str], str]:
    from textblob import TextBlob

    def label(text: str) -> str:
        polarity = TextBlob(text).sentiment.polarity
        return "positive" if polarity > 0 else "negative" if polarity < 0 else "neutral"

    return label


def lexicon_labeller(name: str) -> Callable[[str], str]:
    """The lexicon labeller ``name`` (one of LABELLERS): text -> negative | neutral | positive."""
    return {"vader": _vader, "textblob": _textblob}[name]()


def wilson_lower(successes: int, trials: int, z: float = 1.96) -> float:
    """The lower bound of the Wilson score interval of a proportion (95 % by default)."""
    if trials == 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float((centre - spread) / (1 + z * z / trials))


def check_labels(frame: pd.DataFrame, sample_rows: int, threshold: float, seed: int) -> LabelChecks:
    """Check the labels of one source's ``frame`` (columns text, label): empty texts and conflicting
    duplicates over every row; each lexicon's agreement on a seeded sample of at most ``sample_rows``
    non-empty texts; machine-labelled when a lexicon's agreement is at least ``threshold`` with 95 %
    confidence."""
    texts = frame["text"].fillna("").astype(str)
    empty = texts.str.strip() == ""
    labelled = frame["label"].notna()
    empty_labelled = frame.loc[empty & labelled, "label"].astype(str).value_counts().sort_index()
    filled = frame.loc[~empty & labelled].assign(text=texts[~empty & labelled].str.strip())
    conflicting = int((filled.groupby("text")["label"].nunique() > 1).sum())
    sample = filled.sample(n=min(sample_rows, len(filled)), random_state=seed)
    truth = sample["label"].astype(str).to_numpy()
    agreement, lower = {}, {}
    for name in LABELLERS:
        label = lexicon_labeller(name)
        agree = int((np.array([label(text) for text in sample["text"]]) == truth).sum())
        agreement[name] = agree / len(sample) if len(sample) else 0.0
        lower[name] = wilson_lower(agree, len(sample))
    return LabelChecks(
        rows=len(frame),
        empty_labelled={str(k): int(v) for k, v in empty_labelled.items()},
        conflicting_texts=conflicting,
        checked_rows=len(sample),
        agreement=agreement,
        agreement_lower=lower,
        machine_labelled=any(bound >= threshold for bound in lower.values()),
    )
