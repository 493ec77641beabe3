"""Where the client's settings come from: explicit arguments first, then the environment variables
huggingface_hub reads (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_CACHE``, ``HF_HOME``), then defaults.

:func:`client_settings` is the ONE place in cairn's client that reads the environment; the CLI and the
checkpoint API's hub references call it, and every other function takes its values as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import UsageError

__all__ = ["DEFAULT_ENDPOINT", "ClientSettings", "client_settings"]

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class ClientSettings:
    endpoint: str
    token: str | None
    cache_dir: Path


def client_settings(
    *,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientSettings:
    """Settings by precedence: argument, environment, default.

    * endpoint: ``endpoint`` → ``HF_ENDPOINT`` → ``http://127.0.0.1:8000`` (a local ``cairn serve``);
    * token: ``token`` → ``HF_TOKEN`` → ``$HF_HOME/token`` (what ``hf auth login`` stores) → none,
      but only when the endpoint was chosen explicitly (argument or ``HF_ENDPOINT``): a token is never
      sent to the built-in default endpoint, where any local user could be listening (a mistyped local
      path shaped like ``a/b`` would otherwise leak the huggingface.co token there);
    * cache: ``cache_dir`` → ``HF_HUB_CACHE`` → ``$HF_HOME/hub`` → ``~/.cache/huggingface/hub``.
    """
    env = os.environ if environ is None else environ
    hf_home = Path(env.get("HF_HOME") or Path(env.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface")
    hf_home = hf_home.expanduser()
    chosen = endpoint or env.get("HF_ENDPOINT") or None
    url = (chosen or DEFAULT_ENDPOINT).rstrip("/")
    if chosen is None:
        if token:
            raise UsageError(
                "a token is only sent to an endpoint chosen explicitly: pass --endpoint or set HF_ENDPOINT"
            )
        tok = None
    else:
        tok = token if token is not None else env.get("HF_TOKEN") or None
    if tok is None and chosen is not None:
        stored = hf_home / "token"
        if stored.is_file():
            tok = stored.read_text(encoding="utf-8", errors="replace").strip() or None
    cache = Path(cache_dir) if cache_dir is not None else Path(env.get("HF_HUB_CACHE") or hf_home / "hub")
    return ClientSettings(url, tok, cache.expanduser())
