"""Files at a location that is a local path or an ``s3://`` URI, through one API (pyarrow's file systems):
what the steps, the prediction log and the serving bundles read and write, wherever the user points
them. S3 is the object store of the cluster (MinIO; moto in tests). Endpoint: AWS_ENDPOINT_URL or
MLFLOW_S3_ENDPOINT_URL; keys: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""

import io
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow.fs as pafs

S3_SCHEME = "s3://"


def is_remote(uri: str) -> bool:
    """True for an object-store URI, False for a local path."""
    return uri.startswith(S3_SCHEME)


def endpoint_url() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get(
        "MLFLOW_S3_ENDPOINT_URL", "https://s3.amazonaws.com"
    )


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system holding ``uri`` and the path of ``uri`` on it."""
    if is_remote(uri):
        endpoint = urlparse(endpoint_url())
        s3 = pafs.S3FileSystem(
            access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
            endpoint_override=endpoint.netloc,
            scheme=endpoint.scheme,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        return s3, uri.removeprefix(S3_SCHEME).rstrip("/")
    return pafs.LocalFileSystem(), absolute(uri)


def absolute(uri: str) -> str:
    """``uri`` itself for an object-store URI; a local path made absolute (``~`` expanded)."""
    return uri if is_remote(uri) else os.path.abspath(os.path.expanduser(uri))


def join(uri: str, *names: str) -> str:
    return "/".join([uri.rstrip("/"), *names])


def _for_writing(uri: str) -> tuple[pafs.FileSystem, str]:
    fs, path = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):  # S3 has no folders to make
        fs.create_dir(os.path.dirname(path), recursive=True)
    return fs, path


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` as the file at ``uri``; readers never see half of it (a local file is written
    beside and renamed, an S3 PUT is whole)."""
    fs, path = _for_writing(uri)
    folder, name = os.path.split(path)
    partial = path if is_remote(uri) else os.path.join(folder, f".{name}.partial")
    with fs.open_output_stream(partial) as stream:
        stream.write(data)
    if partial != path:
        fs.move(partial, path)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def write_parquet(frame: pd.DataFrame, uri: str) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(uri, buffer.getvalue())


def read_parquet(uri: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(read_bytes(uri)))


def put_file(path: Path, uri: str) -> None:
    """Copy the local file ``path`` to ``uri`` (streamed: bundles hold files of hundreds of MB)."""
    fs, target = _for_writing(uri)
    with path.open("rb") as source, fs.open_output_stream(target) as stream:
        shutil.copyfileobj(source, stream, length=8 << 20)


def exists(uri: str) -> bool:
    """True when there is a file, or a folder or prefix with anything under it, at ``uri``."""
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def files_under(uri: str) -> list[pafs.FileInfo]:
    """The files under the folder or prefix ``uri`` (recursively, sorted by path), or the file ``uri``
    itself; [] when nothing is there."""
    fs, path = filesystem(uri)
    kind = fs.get_file_info(path)
    if kind.type == pafs.FileType.File:
        return [kind]
    if kind.type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted((info for info in infos if info.type == pafs.FileType.File), key=lambda info: info.path)


def list_files(uri: str) -> list[str]:
    """The URIs of the files under the folder or prefix ``uri`` (recursively, sorted); [] when none."""
    _, path = filesystem(uri)
    return [join(uri, info.path.removeprefix(path).lstrip("/")) for info in files_under(uri)]


def local_copy(uri: str, folder: Path) -> Path:
    """A local path holding what is at ``uri``: a local path as it is; an object downloaded into
    ``folder`` (its file returned), or every object under a prefix (``folder`` returned).
    FileNotFoundError when an object-store URI has nothing there."""
    if not is_remote(uri):
        return Path(absolute(uri))
    fs, path = filesystem(uri)
    found = files_under(uri)
    if not found:
        raise FileNotFoundError(f"nothing found at {uri} (endpoint {endpoint_url()})")
    if len(found) == 1 and found[0].path == path:
        targets = {found[0].path: folder / found[0].base_name}
    else:
        targets = {info.path: folder / info.path.removeprefix(path).lstrip("/") for info in found}
    for source, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(source) as stream, target.open("wb") as out:
            shutil.copyfileobj(stream, out, length=8 << 20)
    return targets.get(path, folder)


def delete(uri: str) -> None:
    """Remove the file, or everything under the folder or prefix, at ``uri``; nothing there is fine."""
    fs, path = filesystem(uri)
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.File:
        fs.delete_file(path)
    elif kind == pafs.FileType.Directory:
        fs.delete_dir(path)


def copy(source: str, target: str) -> None:
    """Copy the file at ``source`` to ``target`` (both on one file system, as the batch output is)."""
    fs, source_path = filesystem(source)
    _, target_path = _for_writing(target)
    fs.copy_file(source_path, target_path)
