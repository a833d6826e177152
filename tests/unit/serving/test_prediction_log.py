"""Unit tests for serving.prediction_log: sampled JSON-lines parts in a folder or under an s3:// prefix."""

import json
import re
import socket
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from serving.prediction_log import PredictionLog
from tests.helpers import numbered
from tests.registry import s3_client

PART = re.compile(rf"^predictions-\d{{8}}T\d{{6}}Z-{re.escape(socket.gethostname())}-(\d{{6}})\.jsonl$")


def records(outcome):
    return REGISTRY.get_sample_value("sentiment_prediction_log_records_total", {"outcome": outcome}) or 0.0


def parts(folder):
    return sorted(folder.iterdir(), key=lambda p: p.name[-12:])


def rows_of(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_close_writes_every_sampled_row_as_json_lines(tmp_path):
    written = records("written")
    log = PredictionLog(str(tmp_path / "log") + "/", sample_rate=1.0)
    before = time.time()
    log.record(
        ["I love it", "ça va 😀"],
        ["positive", "neutral"],
        [0.912345, 0.5],
        version="7",
        ids=numbered(["I love it", "ça va 😀"]),
    )
    log.close()
    (part,) = parts(tmp_path / "log")
    assert PART.match(part.name).group(1) == "000001"
    rows = rows_of(part)
    assert [(r["text"], r["label"], r["confidence"], r["model_version"]) for r in rows] == [
        ("I love it", "positive", 0.9123, "7"),
        ("ça va 😀", "neutral", 0.5, "7"),
    ]
    assert before <= rows[0]["time"] <= time.time()
    assert "ça va 😀" in part.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes
    assert records("written") - written == 2


def test_a_part_per_flush_rows_and_no_partial_files(tmp_path):
    log = PredictionLog(str(tmp_path), sample_rate=1.0, flush_rows=2)
    log.record(
        [f"t{i}" for i in range(5)],
        ["neutral"] * 5,
        [0.4] * 5,
        version="1",
        ids=numbered([f"t{i}" for i in range(5)]),
    )
    log.close()
    files = parts(tmp_path)
    assert [PART.match(p.name).group(1) for p in files] == ["000001", "000002", "000003"]
    assert [[r["text"] for r in rows_of(p)] for p in files] == [["t0", "t1"], ["t2", "t3"], ["t4"]]


def test_flush_seconds_writes_a_part_without_close(tmp_path):
    log = PredictionLog(str(tmp_path), sample_rate=1.0, flush_seconds=0.2)
    log.record(["soon"], ["positive"], [0.9], version="2", ids=numbered(["soon"]))
    deadline = time.monotonic() + 10
    while not list(tmp_path.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (part,) = parts(tmp_path)
    assert [r["text"] for r in rows_of(part)] == ["soon"]
    log.close()
    assert len(parts(tmp_path)) == 1  # nothing left to write: no empty part


def test_sample_rate_zero_writes_nothing(tmp_path):
    log = PredictionLog(str(tmp_path), sample_rate=0.0)
    log.record(["a"] * 50, ["neutral"] * 50, [0.5] * 50, version="1", ids=numbered(["a"] * 50))
    log.close()
    assert list(tmp_path.iterdir()) == []


def test_partial_sampling_keeps_a_share(tmp_path):
    log = PredictionLog(str(tmp_path), sample_rate=0.5)
    log.record(
        [str(i) for i in range(2000)],
        ["neutral"] * 2000,
        [0.5] * 2000,
        version="1",
        ids=numbered([str(i) for i in range(2000)]),
    )
    log.close()
    assert 800 < sum(len(rows_of(p)) for p in parts(tmp_path)) < 1200


def test_mismatched_lists_are_an_error(tmp_path):
    log = PredictionLog(str(tmp_path), sample_rate=1.0)
    with pytest.raises(ValueError):
        log.record(["a", "b"], ["neutral"], [0.5, 0.5], version="1", ids=numbered(["a", "b"]))
    log.close()


def test_full_queue_drops_and_counts(tmp_path):
    written, dropped = records("written"), records("dropped")
    log = PredictionLog(str(tmp_path), sample_rate=1.0, queue_size=1)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # the writer thread cannot drain between two puts
    try:
        log.record(["x"] * 500, ["neutral"] * 500, [0.5] * 500, version="1", ids=numbered(["x"] * 500))
    finally:
        sys.setswitchinterval(interval)
    log.close()
    kept = sum(len(rows_of(p)) for p in parts(tmp_path))
    assert records("dropped") - dropped >= 1 and kept < 500
    assert (records("written") - written, records("dropped") - dropped) == (kept, 500 - kept)


def test_a_failed_write_counts_the_rows_as_dropped(tmp_path):
    dropped = records("dropped")
    log = PredictionLog(str(tmp_path / "gone"), sample_rate=1.0)
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_text("a file where the folder was: no part can be written")
    log.record(["a", "b", "c"], ["neutral"] * 3, [0.5] * 3, version="1", ids=numbered(["a", "b", "c"]))
    log.close()
    assert records("dropped") - dropped == 3


def test_s3_destination_uploads_parts(s3_endpoint, tmp_path):
    s3_client().make_bucket("logs")
    log = PredictionLog("s3://logs/predictions/", sample_rate=1.0)
    log.record(["über"], ["positive"], [0.75], version="4", ids=numbered(["über"]))
    log.close()
    (written,) = s3_client().list_objects("logs", prefix="predictions/", recursive=True)
    part = tmp_path / Path(written.object_name).name
    s3_client().fget_object("logs", written.object_name, str(part))
    assert PART.match(part.name) and rows_of(part)[0]["text"] == "über"
