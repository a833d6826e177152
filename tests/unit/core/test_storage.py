"""core/storage.py on both of its file systems, the same calls: a local folder and a real S3 API
(moto_server), with what the product wrote checked through an independent client (MinIO's) on S3."""

import time
from pathlib import Path

import pandas as pd
import pytest

from core import storage
from core.lineage import source_fingerprint
from tests.registry import s3_client


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    """An empty folder, or an empty bucket on the test's moto_server."""
    if request.param == "local":
        return str(tmp_path / "root")
    request.getfixturevalue("s3_endpoint")
    s3_client().make_bucket("store")
    return "s3://store/root"


def test_files_written_are_read_listed_copied_and_deleted_alike(root: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["positive", "negative"]})
    storage.write_parquet(frame, storage.join(root, "part-0.parquet"))
    storage.write_bytes(storage.join(root, "sub", "note.txt"), b"hello")
    local = tmp_path / "big.bin"
    local.write_bytes(b"x" * (9 << 20))  # more than one streamed chunk
    storage.put_file(local, storage.join(root, "sub", "big.bin"))

    assert storage.read_parquet(storage.join(root, "part-0.parquet")).equals(frame)
    assert storage.read_bytes(storage.join(root, "sub", "note.txt")) == b"hello"
    assert storage.read_bytes(storage.join(root, "sub", "big.bin")) == local.read_bytes()
    assert storage.list_files(root) == [
        storage.join(root, "part-0.parquet"),
        storage.join(root, "sub", "big.bin"),
        storage.join(root, "sub", "note.txt"),
    ]  # no half-written leftovers
    assert storage.exists(storage.join(root, "sub")) and not storage.exists(storage.join(root, "nothing"))
    storage.copy(storage.join(root, "sub", "note.txt"), storage.join(root, "copy", "note.txt"))
    assert storage.read_bytes(storage.join(root, "copy", "note.txt")) == b"hello"
    storage.delete(storage.join(root, "sub"))
    storage.delete(storage.join(root, "nothing"))  # nothing there is fine
    assert storage.list_files(root) == [
        storage.join(root, "copy", "note.txt"),
        storage.join(root, "part-0.parquet"),
    ]
    assert storage.list_files(storage.join(root, "nothing")) == []


def test_a_local_copy_is_the_path_itself_or_the_downloaded_object_or_prefix(
    root: str, tmp_path: Path
) -> None:
    storage.write_bytes(storage.join(root, "data", "a.csv"), b"text,label\nhi,positive\n")
    storage.write_bytes(storage.join(root, "data", "more", "b.csv"), b"text,label\nno,negative\n")
    one = storage.local_copy(storage.join(root, "data", "a.csv"), tmp_path / "one")
    folder = storage.local_copy(storage.join(root, "data"), tmp_path / "all")
    assert one.name == "a.csv" and one.read_bytes() == b"text,label\nhi,positive\n"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "a.csv",
        "more/b.csv",
    ]
    if storage.is_remote(root):
        assert one == tmp_path / "one" / "a.csv" and folder == tmp_path / "all"
        with pytest.raises(FileNotFoundError, match="nothing found at s3://store/root/nothing"):
            storage.local_copy(storage.join(root, "nothing"), tmp_path / "none")
    else:
        assert one == Path(root) / "data" / "a.csv"  # read where it is, not copied


def test_s3_writes_are_seen_by_another_client(s3_endpoint: str) -> None:
    s3_client().make_bucket("store")
    storage.write_bytes("s3://store/logs/part-1.jsonl", b'{"a": 1}\n')
    (written,) = s3_client().list_objects("store", prefix="logs/", recursive=True)
    assert written.object_name == "logs/part-1.jsonl"
    assert s3_client().get_object("store", written.object_name).read() == b'{"a": 1}\n'


def test_an_s3_sources_fingerprint_changes_with_what_it_holds(s3_endpoint: str) -> None:
    s3_client().make_bucket("data")
    storage.write_bytes("s3://data/tweets/a.csv", b"text,label\nhi,positive\n")
    first = source_fingerprint("s3://data/tweets")
    assert source_fingerprint("s3://data/tweets") == first  # nothing changed: the cache may answer
    time.sleep(1.1)  # S3 keeps whole seconds
    storage.write_bytes("s3://data/tweets/a.csv", b"text,label\nhi,negative\n")  # same size, rewritten
    second = source_fingerprint("s3://data/tweets")
    storage.write_bytes("s3://data/tweets/b.csv", b"text,label\nno,negative\n")
    third = source_fingerprint("s3://data/tweets")
    assert len({first, second, third}) == 3
    assert source_fingerprint("s3://data/tweets/a.csv") != third  # the object alone
    assert source_fingerprint("s3://nowhere/x").startswith("unknown (")  # no such bucket: read again


def test_paths_are_made_absolute_and_uris_kept() -> None:
    assert storage.absolute("s3://bucket/key/") == "s3://bucket/key/"
    assert storage.absolute("~/x.csv") == str(Path.home() / "x.csv")
    assert storage.absolute("rel/x.csv") == str(Path.cwd() / "rel" / "x.csv")
    assert storage.is_remote("s3://b/k") and not storage.is_remote("/data/s3:/x")
