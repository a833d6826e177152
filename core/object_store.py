"""The S3 object store (MinIO on the cluster, moto in tests): a client from the env and the two transfers
the project needs. Endpoint: AWS_ENDPOINT_URL or MLFLOW_S3_ENDPOINT_URL; keys: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY."""

import io
import os
from pathlib import Path
from urllib.parse import urlparse

from minio import Minio


def endpoint_url() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get(
        "MLFLOW_S3_ENDPOINT_URL", "https://s3.amazonaws.com"
    )


def s3_client() -> Minio:
    endpoint = urlparse(endpoint_url())
    return Minio(
        endpoint.netloc,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        secure=endpoint.scheme == "https",
    )


def bucket_and_key(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def download(uri: str, target: Path) -> Path:
    """Download an object, or every object under a prefix, into folder ``target``; return the file (one
    object) or ``target``. FileNotFoundError when nothing is there."""
    client = s3_client()
    bucket, key = bucket_and_key(uri)
    objects = [o for o in client.list_objects(bucket, prefix=key, recursive=True) if not o.is_dir]
    if not objects:
        raise FileNotFoundError(f"nothing found at {uri} (endpoint {endpoint_url()})")
    if len(objects) == 1 and objects[0].object_name == key:
        destination = target / Path(key).name
        client.fget_object(bucket, key, str(destination))
        return destination
    for obj in objects:
        client.fget_object(bucket, obj.object_name, str(target / Path(obj.object_name).relative_to(key)))
    return target


def upload(uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    """Write ``data`` as the object at ``uri``."""
    bucket, key = bucket_and_key(uri)
    s3_client().put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)


def upload_file(path: Path, uri: str) -> None:
    """Write the local file ``path`` as the object at ``uri``."""
    bucket, key = bucket_and_key(uri)
    s3_client().fput_object(bucket, key, str(path))


def exists(uri: str) -> bool:
    """True when the object at ``uri`` exists."""
    from minio.error import S3Error

    bucket, key = bucket_and_key(uri)
    try:
        s3_client().stat_object(bucket, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
            return False
        raise
    return True
