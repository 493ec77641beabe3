"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, SeaweedFS) through boto3.

Keys are ``PREFIX/ab/cd/<sha256>``. A blob appears atomically: S3 makes an object visible only when its
(multipart) upload completes. boto3 is imported lazily, when the first store is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cairn.store.base import BlobNotFoundError, check_oid, is_oid

__all__ = ["S3BlobStore"]

_CHUNK = 1 << 20


class S3BlobStore:
    """Blobs as objects in ``bucket`` under ``prefix``; the bucket is created if it does not exist."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )
        self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self.bucket)

    def _key(self, oid: str) -> str:
        check_oid(oid)
        rel = f"{oid[:2]}/{oid[2:4]}/{oid}"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def put_file(self, oid: str, src: Path) -> None:
        if not self.exists(oid):
            self._client.upload_file(str(src), self.bucket, self._key(oid))
        src.unlink(missing_ok=True)

    def exists(self, oid: str) -> bool:
        try:
            self.size(oid)
        except BlobNotFoundError:
            return False
        return True

    def size(self, oid: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(oid))
        except ClientError as err:
            if _status(err) == 404:
                raise BlobNotFoundError(oid) from None
            raise
        return int(head["ContentLength"])

    def iter_range(self, oid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        if end is not None and end <= start:
            return iter(())
        rng = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=self._key(oid), Range=rng)
        except ClientError as err:
            if _status(err) == 404:
                raise BlobNotFoundError(oid) from None
            if _status(err) == 416:
                return iter(())
            raise
        body = obj["Body"]
        return _drain(body)

    def local_path(self, oid: str) -> Path | None:
        return None

    def staging_dir(self) -> Path | None:
        return None

    def delete(self, oid: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(oid))

    def iter_objects(self) -> Iterator[tuple[str, int, float]]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        for page in pages:
            for obj in page.get("Contents", []):
                key: str = obj["Key"]
                oid = key.rpartition("/")[2]
                if is_oid(oid) and key == self._key(oid):
                    yield oid, int(obj["Size"]), obj["LastModified"].timestamp()


def _status(err: Any) -> int:
    meta = err.response.get("ResponseMetadata", {})
    code = str(err.response.get("Error", {}).get("Code", ""))
    if code in {"NoSuchKey", "NotFound", "404"}:
        return 404
    return int(meta.get("HTTPStatusCode", 0))


def _drain(body: Any) -> Iterator[bytes]:
    try:
        while True:
            chunk = body.read(_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
