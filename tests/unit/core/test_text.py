import pandas as pd
import pytest

from core.text import normalize_text
from tests.conftest import shared_dataset


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("he\\u2019s got it", "he\u2019s got it"),
        ("fish &amp; chips &amp;amp; more", "fish & chips & more"),
        ("see https://t.co/abc123 now", "see http now"),
        ("visit www.example.com", "visit http"),
        ("@john and @Mary_99 said hi", "@user and @user said hi"),
        ("mail me at a@b.com", "mail me at a@b.com"),
        ("  lots   of\n\tspace  ", "lots of space"),
        ("broken \\ud83d escape", "broken \\ud83d escape"),
        ("", ""),
    ],
)
def test_normalize_text_table(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_is_idempotent_on_tweeteval() -> None:
    """Preprocess normalises and the served model normalises again: twice must equal once."""
    texts = pd.read_parquet(shared_dataset("tweeteval_sentiment/hf_parquet/train.parquet"))["text"]
    once = [normalize_text(t) for t in texts]
    assert [normalize_text(t) for t in once] == once
    assert sum(a != b for a, b in zip(texts, once, strict=True)) > 1000  # it does change real tweets
