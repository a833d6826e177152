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


def test_a_setting_that_may_be_off_is_null_and_reaches_the_steps_left_out(tmp_path: Path) -> None:
    """Optional settings are null in params.yaml (None in the typed config); a count standing for "off"
    is refused; the dict a step receives through KFP leaves them out and the step reads them back as
    None; a setting that must have a value may not be null."""
    from components.ingest import IngestConfig
    from core.config import from_mapping

    params = PipelineParams.load()
    assert params.ingest.max_rows_per_split is None and params.run.pushgateway is None
    assert params.batch_score.id_column is None and params.cluster.accelerator.type is None
    sections = params.step_sections()
    assert "max_rows_per_split" not in sections["ingest"] and "cluster" not in sections
    assert not [key for values in sections.values() for key, value in values.items() if value is None]
    assert from_mapping(IngestConfig, sections["ingest"], "ingest") == params.ingest
    with pytest.raises(ValueError, match="max_rows_per_split must be at least 1, or null"):
        PipelineParams.load(write_params(tmp_path / "zero.yaml", ingest={"max_rows_per_split": 0}))
    with pytest.raises(ValueError, match=r"missing keys \['seeds'\]"):
        PipelineParams.load(write_params(tmp_path / "null.yaml", train_transformer={"seeds": None}))
