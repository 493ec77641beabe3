"""The hub: an ASGI application that speaks the Hugging Face Hub API (so ``huggingface_hub``,
``transformers`` and the ``hf`` CLI work against it unchanged) and serves a small web UI.

It is thin over :class:`cairn.registry.Registry`: requests are parsed and checked here, domain work runs
in the registry through a thread pool, and domain errors become one JSON error shape plus the
``X-Error-Code`` headers the client maps to its exceptions. See ``docs/hub.md``.
"""

from __future__ import annotations

from cairn.hub.app import create_app
from cairn.hub.config import HubConfig

__all__ = ["HubConfig", "create_app"]
