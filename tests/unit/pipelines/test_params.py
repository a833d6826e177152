"""params.yaml as the typed PipelineParams: one section per step, every key known and given."""

from pathlib import Path

import pytest

from pipelines.params import DEFAULT_PARAMS_FILE, PipelineParams
from tests.helpers import write_params


def test_params_file_matches_the_typed_config() -> None:
    params = PipelineParams.load()
    assert params.run.metric == "macro_recall"
    changed = params.override("ingest", sources=["elsewhere"], max_rows_per_split=None)  # None: not given
    assert changed.ingest.sources == ["elsewhere"]
    assert changed.ingest.max_rows_per_split == params.ingest.max_rows_per_split


def test_params_file_with_unknown_keys_is_rejected(tmp_path: Path) -> None:
    path = write_params(tmp_path / "params.yaml", train_linear={"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rate'\]"):
        PipelineParams.load(path)
    path.write_text(DEFAULT_PARAMS_FILE.read_text() + "learning_rate: 0.1\n")  # a key outside any section
    with pytest.raises(ValueError, match=r"unknown sections \['learning_rate'\]"):
        PipelineParams.load(path)


def test_an_out_of_domain_set_that_is_also_a_training_source_is_refused() -> None:
    params = PipelineParams.load().override("ingest", sources=["data/tweets", "data/reddit_sentiment"])
    params.override("out_of_domain", sources=["other/youtube.csv"]).check_sources()
    with pytest.raises(
        ValueError, match=r"\['reddit_sentiment'\] both train and are scored as out-of-domain"
    ):
        params.override("out_of_domain", sources=["elsewhere/reddit_sentiment/"]).check_sources()
