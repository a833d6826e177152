"""Batch scoring's reading and checking of a corpus: every file type, the quarantine reasons, clear errors;
the typed records its three steps hand on."""

from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest

from components.batch_score import (
    QUARANTINE_REASONS,
    BatchInputError,
    BatchPlan,
    IncompleteOutput,
    PinnedModel,
    ShardResult,
    WorkOrder,
    check_parts,
    quarantine_reasons,
    read_corpus,
    read_scores,
    shard_result,
    work_order,
)

TEXTS = ["good morning", "awful day", "the bus is at 9"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_every_file_type_reads_to_row_ids_and_texts(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"comment_id": ["a", "b", "c"], "comment": TEXTS})
    path = tmp_path / f"corpus{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    by_id, digest = read_corpus(str(path), "", "comment_id")
    assert by_id["row_id"].tolist() == ["a", "b", "c"] and by_id["text"].tolist() == TEXTS
    numbered, again = read_corpus(str(path), "comment", "")
    assert numbered["row_id"].tolist() == ["0", "1", "2"] and again == digest and len(digest) == 64


def test_an_undecodable_text_is_read_and_flagged_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv"
    path.write_bytes(b"text\ngood morning\nbad \xff\xfe bytes\n")
    corpus, _ = read_corpus(str(path), "", "")
    assert quarantine_reasons(corpus, 100, has_ids=False).tolist() == ["", "invalid_utf8"]


def test_each_unscorable_row_gets_its_first_reason() -> None:
    corpus = pd.DataFrame(
        {
            "row_id": ["1", "2", "3", "", "5", "1", "6"],
            "text": ["fine", "  ", "x" * 11, "no id", "ok \ufffd", "id again", "fine too"],
        },
        dtype="string",
    )
    reasons = quarantine_reasons(corpus, max_text_chars=10, has_ids=True)
    assert reasons.tolist() == [
        "",
        "missing_text",
        "too_long",
        "missing_id",
        "invalid_utf8",
        "duplicate_id",
        "",
    ]
    assert set(reasons) - {""} == set(QUARANTINE_REASONS)
    numbered = corpus.assign(row_id=[str(i) for i in range(7)])
    assert quarantine_reasons(numbered, 10, has_ids=False).tolist().count("") == 4  # text reasons only


@pytest.mark.parametrize(
    ("name", "text_column", "id_column", "message"),
    [
        ("corpus.txt", "", "", "unsupported file type"),
        ("absent.csv", "", "", "no such file"),
        ("corpus.csv", "body", "", "no column 'body'"),
        ("corpus.csv", "", "comment_id", "no column 'comment_id'"),
    ],
)
def test_a_corpus_that_cannot_be_read_as_asked_says_why(
    tmp_path: Path, name: str, text_column: str, id_column: str, message: str
) -> None:
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "corpus.csv", index=False)
    (tmp_path / "corpus.txt").write_text("\n".join(TEXTS))
    with pytest.raises(BatchInputError, match=message):
        read_corpus(str(tmp_path / name), text_column, id_column)


def test_parts_that_do_not_add_up_to_the_plan_are_refused(tmp_path: Path) -> None:
    part = tmp_path / "part-00000.parquet"
    pd.DataFrame({"row_id": ["0"]}).to_parquet(part)
    model = PinnedModel("models:/sentiment/1", "sentiment", "1", "fp32", "asked")
    plan = BatchPlan("in.csv", "sha", str(tmp_path), 4, 1, {}, model, shards=2, shard_rows=2, started_at=0.0)
    one = ShardResult(0, 1, str(part), "attempts", "staging", load_seconds=0.1, scoring_seconds=0.1)
    with pytest.raises(IncompleteOutput, match=r"shards 0\.\.1"):
        check_parts(plan, [one])
    with pytest.raises(IncompleteOutput, match="scored 2 rows"):
        check_parts(plan, [one, replace(one, index=1)])
    with pytest.raises(IncompleteOutput, match="parts missing"):
        check_parts(plan, [one, replace(one, index=1, rows=2, part=str(tmp_path / "absent.parquet"))])
    check_parts(plan, [one, replace(one, index=1, rows=2)])


def test_work_orders_and_results_come_back_typed_from_what_kfp_passes(tmp_path: Path) -> None:
    """KFP hands a step's dict on with its numbers as floats; the typed records take them back as ints,
    and refuse a dict with a key missing or one too many."""
    one = ShardResult(3, 10, "p", "a", "s", load_seconds=0.5, scoring_seconds=1.5)
    as_kfp_passes = {**asdict(one), "index": 3.0, "rows": 10.0}
    assert shard_result(as_kfp_passes) == one and isinstance(shard_result(as_kfp_passes).index, int)
    order = WorkOrder(0, 5, "shard", "part", "attempts", "staging", "models:/s/1", "1", "sqlite:///x", "int8")
    assert work_order({**asdict(order), "rows": 5.0}) == order
    with pytest.raises(ValueError, match="missing keys \\['runtime'\\]"):
        work_order({key: value for key, value in asdict(order).items() if key != "runtime"})
    model = PinnedModel("models:/sentiment/1", "sentiment", "1", "fp32", "asked")
    plan = BatchPlan("in.csv", "sha", "out", 4, 1, {"too_long": 1}, model, 2, 2, started_at=1.5)
    plan.write(str(tmp_path))
    assert BatchPlan.read(str(tmp_path)) == plan


def test_an_output_without_its_success_marker_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "scores").mkdir()
    pd.DataFrame({"row_id": ["0"], "label": ["neutral"]}).to_parquet(
        tmp_path / "scores" / "part-00000.parquet"
    )
    with pytest.raises(IncompleteOutput, match="_SUCCESS"):
        read_scores(str(tmp_path))
    (tmp_path / "_SUCCESS").write_text("run")
    assert read_scores(str(tmp_path))["label"].tolist() == ["neutral"]
