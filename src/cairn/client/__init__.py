"""cairn's own hub client: push a directory as one commit, pull a revision into the local cache.

Data flows ``cli → client → HTTP → hub``: :func:`push` walks and hashes a directory, asks the hub
(``preupload``) what to send and how, uploads LFS objects in parallel through the LFS batch API and
commits once (NDJSON); :func:`pull` pins a revision to its commit id, lists its files, downloads them in
parallel into a cache laid out like huggingface_hub's (resuming ``.incomplete`` files with HTTP Range)
and verifies every file against its sha256 or git blob SHA-1. :func:`resolve_reference` and
:func:`resolve_checkpoint` turn ``org/name[@rev]`` into a local directory for ``cairn.load``.

The client speaks only HTTP (``httpx``, imported lazily) and imports only ``cairn.format`` and
``cairn.security``; environment variables are read in one function, :func:`client_settings`.
"""

from __future__ import annotations

from cairn.client.errors import (
    EntryNotFoundError,
    HubResponseError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from cairn.client.http import HubConnectionError
from cairn.client.progress import Bar, Progress
from cairn.client.pull import PulledFile, PullResult, pull
from cairn.client.push import PushedFile, PushResult, push
from cairn.client.refs import RepoRef, looks_like_repo_ref, parse_repo_ref
from cairn.client.resolve import resolve_checkpoint, resolve_reference
from cairn.client.settings import ClientSettings, client_settings
from cairn.client.verify import verify_snapshot

__all__ = [
    "Bar",
    "ClientSettings",
    "EntryNotFoundError",
    "HubConnectionError",
    "HubResponseError",
    "Progress",
    "PullResult",
    "PulledFile",
    "PushResult",
    "PushedFile",
    "RepoNotFoundError",
    "RepoRef",
    "RevisionNotFoundError",
    "client_settings",
    "looks_like_repo_ref",
    "parse_repo_ref",
    "pull",
    "push",
    "resolve_checkpoint",
    "resolve_reference",
    "verify_snapshot",
]
