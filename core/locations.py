"""Files at a location that is a local path or an ``s3://`` URI, through one API (pyarrow's file systems):
what batch scoring reads and writes, wherever the user points it. S3 is the object store of
core/object_store.py (same endpoint and keys)."""

import io
import os
from urllib.parse import urlparse

import pandas as pd
import pyarrow.fs as pafs

from core.object_store import endpoint_url


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system holding ``uri`` and the path of ``uri`` on it."""
    if uri.startswith("s3://"):
        endpoint = urlparse(endpoint_url())
        s3 = pafs.S3FileSystem(
            access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
            endpoint_override=endpoint.netloc,
            scheme=endpoint.scheme,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        return s3, uri.removeprefix("s3://").rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def join(uri: str, *names: str) -> str:
    return "/".join([uri.rstrip("/"), *names])


def _for_writing(uri: str) -> tuple[pafs.FileSystem, str]:
    fs, path = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):  # S3 has no folders to make
        fs.create_dir(os.path.dirname(path), recursive=True)
    return fs, path


def write_bytes(uri: str, data: bytes) -> None:
    fs, path = _for_writing(uri)
    with fs.open_output_stream(path) as stream:
        stream.write(data)


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


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def list_files(uri: str) -> list[str]:
    """The URIs of the files under the folder or prefix ``uri`` (recursively, sorted); [] when none."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    found = sorted(info.path for info in infos if info.type == pafs.FileType.File)
    return [join(uri, name.removeprefix(path).lstrip("/")) for name in found]


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
