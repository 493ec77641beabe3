"""Blob storage: content-addressed bytes behind one small interface.

Data flows in one direction: the registry hands the store a finished, already-verified file together with
its sha256, and reads bytes back by that sha256. Backends: :class:`LocalBlobStore` (a directory, the
embedded default) and :class:`S3BlobStore` (any S3-compatible service). :func:`open_blob_store` picks one
from a URL. Every backend raises :class:`BlobNotFoundError` for a missing blob.
"""

from __future__ import annotations

from cairn.store.base import BlobNotFoundError, BlobStore, check_oid, open_blob_store
from cairn.store.local import LocalBlobStore
from cairn.store.s3 import S3BlobStore

__all__ = ["BlobNotFoundError", "BlobStore", "LocalBlobStore", "S3BlobStore", "check_oid", "open_blob_store"]
