"""A minimal JSON client for a running cairn hub, for the CLI's ``org``, ``access`` and ``token``
commands (standard library only: the CLI must not need the hub's or Hugging Face's packages).

The endpoint and token are read once, here, with the precedence flag, environment (``HF_ENDPOINT``,
``HF_TOKEN``), default (``http://127.0.0.1:8000``, no token). Error responses become
:class:`HubRequestError` with the hub's status, code and message.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from cairn.errors import CairnError, UsageError

__all__ = ["DEFAULT_ENDPOINT", "HubClient", "HubRequestError", "add_hub_options", "client_from_args"]

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class HubRequestError(CairnError):
    """The hub answered with an error status."""

    code = "hub_error"

    def __init__(self, status: int, message: str, hub_code: str | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.hub_code = hub_code


def add_hub_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help=f"hub URL (default: $HF_ENDPOINT, else {DEFAULT_ENDPOINT})")
    parser.add_argument("--token", help="access token (default: $HF_TOKEN; needs an explicit endpoint)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def client_from_args(args: argparse.Namespace) -> HubClient:
    chosen = args.endpoint or os.environ.get("HF_ENDPOINT") or None
    endpoint = chosen or DEFAULT_ENDPOINT
    # as cairn.client.client_settings: no token for an endpoint the user did not choose (any local
    # user may listen on the default one)
    if chosen is None and args.token:
        raise UsageError(
            "a token is only sent to an endpoint chosen explicitly: pass --endpoint or set HF_ENDPOINT"
        )
    token = (args.token or os.environ.get("HF_TOKEN") or None) if chosen else None
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"the endpoint must be an http(s) URL, not {endpoint[:100]!r}")
    return HubClient(endpoint.rstrip("/"), token)


def repo_path(repo_type: str, repo_id: str) -> str:
    """``/api/{type}s/{ns}/{name}`` for ``NS/NAME``, each part percent-encoded."""
    ns, slash, name = repo_id.partition("/")
    if not slash or not ns or not name or "/" in name:
        raise UsageError(f"a repo is NAMESPACE/NAME, not {repo_id[:200]!r}")
    return f"/api/{repo_type}s/{quote(ns, safe='')}/{quote(name, safe='')}"


class HubClient:
    def __init__(self, endpoint: str, token: str | None) -> None:
        self.endpoint = endpoint
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the decoded JSON answer (``None`` for an empty body)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, method=method)  # noqa: S310 - http(s) checked above
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:  # unredirected: urllib would otherwise copy it to wherever a redirect points
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as err:
            raw = err.read(65536)
            message, code = err.reason, None
            try:
                decoded = json.loads(raw)
                message, code = decoded.get("error", message), decoded.get("code")
            except (ValueError, AttributeError):
                pass
            raise HubRequestError(err.code, str(message), code) from None
        except (urllib.error.URLError, OSError) as err:
            raise HubRequestError(0, f"cannot reach {self.endpoint}: {err}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise HubRequestError(0, "the hub's answer is too large")
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise HubRequestError(0, "the hub answered with something that is not JSON") from None
