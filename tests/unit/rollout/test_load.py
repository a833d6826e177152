"""`make load` as a user types it, against a real predictor (the session's TF-IDF one): every request it
says it sent reached the predictor (its own request counter), never faster than the rate asked for."""

import json
from pathlib import Path

import pandas as pd
import pytest

from rollout.load import BUILT_IN_TEXTS, parse_args, read_texts
from tests.helpers import make, scrape_metrics, sentiment_frame, user_environment


def requests_counted(url: str) -> float:
    samples = scrape_metrics(url)
    return sum(value for (name, _), value in samples.items() if name == "sentiment_requests_total")


def test_make_load_sends_every_request_at_most_at_the_rate(fast_model_server: str, tmp_path: Path) -> None:
    texts = tmp_path / "texts.csv"
    sentiment_frame().to_csv(texts, index=False)
    before = requests_counted(fast_model_server)
    printed = make(
        "load", f"URL={fast_model_server}", "RPS=25", "SECONDS=2", f"TEXTS={texts}",
        env=user_environment(tmp_path / "home"),
    )  # fmt: skip
    summary = json.loads(printed[printed.index("{") :])
    assert summary["requests"] == 50 and summary["statuses"] == {"200": 50}
    assert sum(summary["versions"].values()) == 50 and list(summary["versions"]) == ["1"]
    assert summary["seconds"] >= 49 / 25  # the 50th request is sent 1.96 s after the first, not before
    assert requests_counted(fast_model_server) - before == 50
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]


def test_texts_come_from_a_table_a_text_file_or_the_built_in_mix(tmp_path: Path) -> None:
    pd.DataFrame({"text": ["a", " ", "b"], "label": [0, 1, 2]}).to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.txt").write_text("one\n\ntwo\n")
    assert read_texts(tmp_path / "t.parquet") == ["a", "b"]
    assert read_texts(tmp_path / "t.txt") == ["one", "two"]
    assert read_texts(None) == list(BUILT_IN_TEXTS)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(SystemExit, match="no texts"):
        read_texts(tmp_path / "empty.txt")
    with pytest.raises(SystemExit):
        parse_args(["--url", "http://x", "--rps", "0"])
    assert parse_args(["--url", "http://x"]).model == "sentiment"
