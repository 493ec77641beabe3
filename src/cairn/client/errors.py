"""Typed errors for hub answers: the hub's JSON error shape and ``X-Error-Code`` mapped onto
:mod:`cairn.errors` (spec §1.7), so callers catch ``NotFoundError`` or ``PermissionDeniedError`` whether
the problem was local or remote.

::

    NotFoundError
    ├── RepoNotFoundError        X-Error-Code: RepoNotFound (also a private repo the caller cannot see)
    ├── RevisionNotFoundError    X-Error-Code: RevisionNotFound
    └── EntryNotFoundError       X-Error-Code: EntryNotFound
    PermissionDeniedError        401 without a code (bad token), 403; GatedRepo
    ConflictError                409, 412 (the branch moved)
    UsageError                   400 and other 4xx
    LimitExceededError           413
    HubResponseError             5xx, and answers that break the protocol (a hostile or broken server)
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cairn.errors import (
    CairnError,
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
)

__all__ = [
    "EntryNotFoundError",
    "HubResponseError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "error_from_response",
]

_MAX_MESSAGE = 500


class RepoNotFoundError(NotFoundError):
    code = "repo_not_found"


class RevisionNotFoundError(NotFoundError):
    code = "revision_not_found"


class EntryNotFoundError(NotFoundError):
    code = "entry_not_found"


class HubResponseError(CairnError):
    """The hub failed (5xx) or answered something the protocol does not allow."""

    code = "hub_response"

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url
        self.status = status


def _message(headers: Mapping[str, str], body: bytes) -> str:
    text = ""
    try:
        data = json.loads(body[:65536]) if body else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        text = data["error"]
    header = headers.get("x-error-message", "")
    if header and header not in text:
        text = f"{text}: {header}" if text else header
    return " ".join(text.split())[:_MAX_MESSAGE]


def error_from_response(status: int, headers: Mapping[str, str], body: bytes, url: str) -> CairnError:
    """The typed error for a non-2xx answer; every returned error carries ``status``, ``url`` and
    ``hub_code`` (the ``X-Error-Code``, or ``None``)."""
    hub_code = headers.get("x-error-code")
    text = _message(headers, body) or f"HTTP {status}"
    err: CairnError
    if hub_code == "RepoNotFound":
        err = RepoNotFoundError(f"repository not found (or private and not visible to you): {text}")
    elif hub_code == "RevisionNotFound":
        err = RevisionNotFoundError(f"revision not found: {text}")
    elif hub_code == "EntryNotFound":
        err = EntryNotFoundError(f"file not found: {text}")
    elif hub_code == "GatedRepo":
        err = PermissionDeniedError(f"gated repository, access not granted: {text}")
    elif status == 401:
        err = PermissionDeniedError(f"authentication failed (missing or invalid token): {text}")
    elif status == 403:
        err = PermissionDeniedError(f"permission denied: {text}")
    elif status == 404:
        err = NotFoundError(f"not found: {text}")
    elif status in (409, 412):
        err = ConflictError(f"conflict: {text}")
    elif status == 413:
        err = LimitExceededError(f"too large for the hub: {text}")
    elif 400 <= status < 500:
        err = UsageError(f"request refused by the hub (HTTP {status}): {text}")
    else:
        return HubResponseError(f"hub error HTTP {status}: {text}", url=url, status=status)
    vars(err).update(status=status, url=url, hub_code=hub_code)  # data for to_dict() and callers
    return err
