"""The :class:`BlobStore` protocol, the one not-found error, and backend selection by URL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from cairn.errors import NotFoundError, UsageError

__all__ = ["BlobNotFoundError", "BlobStore", "check_oid", "is_oid", "open_blob_store"]

_OID = re.compile(r"[0-9a-f]{64}")


class BlobNotFoundError(NotFoundError):
    """No blob with this sha256 exists in the store (raised by every backend alike)."""

    code = "blob_not_found"

    def __init__(self, oid: str) -> None:
        super().__init__(f"blob {oid} not found")
        self.oid = oid


def is_oid(text: str) -> bool:
    """Whether ``text`` is a lower-case sha256 hex digest, the only names the stores use for blobs."""
    return _OID.fullmatch(text) is not None


def check_oid(oid: str) -> str:
    """Return ``oid`` if it is a lower-case 64-hex sha256, else raise :class:`UsageError`."""
    if not _OID.fullmatch(oid):
        raise UsageError(f"not a sha256 object id: {oid[:80]!r}")
    return oid


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed blobs keyed by their sha256 hex digest.

    Call order for a write: the caller streams bytes to a temporary file, verifies sha256 and size
    itself, then calls :meth:`put_file`; the blob becomes visible atomically (rename on a filesystem,
    a single completed PUT on S3). Blobs are never modified; :meth:`delete` exists for garbage collection.
    """

    def put_file(self, oid: str, src: Path) -> None:
        """Store the file ``src`` (whose sha256 is ``oid``) and consume it. Idempotent."""
        ...

    def exists(self, oid: str) -> bool: ...

    def size(self, oid: str) -> int:
        """Byte size of the blob; :class:`BlobNotFoundError` if absent."""
        ...

    def iter_range(self, oid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the blob in chunks (``end=None``: to the end)."""
        ...

    def local_path(self, oid: str) -> Path | None:
        """A filesystem path to serve the blob from directly, or ``None`` for remote backends."""
        ...

    def delete(self, oid: str) -> None: ...

    def iter_objects(self) -> Iterator[tuple[str, int, float]]:
        """Every stored blob as ``(oid, size, modification time as Unix seconds)``, in no order; names
        that are not sha256 object ids (temporary files, foreign keys under the prefix) are skipped."""
        ...

    def staging_dir(self) -> Path | None:
        """A directory for temporary files from which :meth:`put_file` is a cheap rename, or ``None``."""
        ...


def open_blob_store(url: str) -> BlobStore:
    """A store from a URL: a path or ``file://PATH`` for a local directory, or
    ``s3://BUCKET/PREFIX?endpoint=http://host:port&region=R`` for S3 (credentials come from the
    arguments' ``key``/``secret`` query values or boto3's own configuration chain)."""
    parts = urlsplit(url)
    if parts.scheme in {"", "file"}:
        from cairn.store.local import LocalBlobStore

        return LocalBlobStore(Path(parts.path if parts.scheme == "file" else url))
    if parts.scheme == "s3":
        from cairn.store.s3 import S3BlobStore

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.netloc:
            raise UsageError(f"S3 blob URL needs a bucket: {url!r}")
        return S3BlobStore(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=query.get("endpoint"),
            region=query.get("region"),
            access_key=query.get("key"),
            secret_key=query.get("secret"),
        )
    raise UsageError(f"unsupported blob store URL scheme {parts.scheme!r} (use a path or s3://)")
