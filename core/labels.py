"""The label set shared by training and serving, and the mapping of source label schemes onto it."""

from collections.abc import Iterable

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

# Numeric schemes seen in public sentiment data: TweetEval (0/1/2) and the Reddit/Twitter sets (-1/0/1).
_ZERO_BASED = {"0": "negative", "1": "neutral", "2": "positive"}
_SIGNED = {"-1": "negative", "0": "neutral", "1": "positive"}
_ALIASES = {"neg": "negative", "neu": "neutral", "pos": "positive"}


def _as_key(value: object) -> str:
    """Render a raw label as a comparable string key (1.0 -> '1', ' Positive ' -> 'positive')."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def label_scheme(raw_labels: Iterable[object]) -> dict[str, str]:
    """Pick the numeric scheme a column uses: signed (-1/0/1) when it has a -1, else 0/1/2."""
    keys = {_as_key(v) for v in raw_labels}
    return _SIGNED if "-1" in keys else _ZERO_BASED


def normalize_labels(raw_labels: list[object]) -> list[str]:
    """Map raw labels onto LABELS; unknown values are kept (lower-cased) so validation can quarantine them."""
    scheme = label_scheme(raw_labels)
    normalized = []
    for value in raw_labels:
        key = _as_key(value)
        normalized.append(scheme.get(key) or _ALIASES.get(key, key))
    return normalized


def probability_columns() -> list[str]:
    """Column names of the per-class probabilities in a model's output frame."""
    return [f"prob_{label}" for label in LABELS]
