"""Repo metadata derived from its files at the head of ``main``: README front matter (parsed with
the model-card loader: safe YAML, no aliases, node count and depth capped), ``config.json``'s ``model_type``, and the file formats; the tags that
``list_models(filter=...)`` matches."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_CARD_BYTES", "MAX_CARD_DATA_BYTES", "CardInfo", "derive_card_info", "parse_front_matter"]

MAX_CARD_BYTES = 1 << 20
MAX_CARD_DATA_BYTES = 256 << 10  # serialized card_data kept per repo; larger is stored as {}


@dataclass(frozen=True)
class CardInfo:
    tags: tuple[str, ...] = ()
    card_data: dict[str, Any] = field(default_factory=dict)
    pipeline_tag: str | None = None
    library_name: str | None = None


def parse_front_matter(text: str) -> dict[str, Any]:
    """The YAML mapping between leading ``---`` lines, or ``{}``.

    Raises :class:`~cairn.governance.errors.CardError` on bad YAML, aliases (no "billion laughs": an
    alias would be expanded when the card is stored as JSON), too many nodes or too deep nesting."""
    from cairn.governance.card import safe_yaml_load

    if not text.startswith("---"):
        return {}
    lines = text.splitlines()
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            data = safe_yaml_load("\n".join(lines[1:i]), what="README front matter")
            return data if isinstance(data, dict) else {}
    return {}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def derive_card_info(paths: Iterable[str], readme: bytes | None, config: bytes | None) -> CardInfo:
    """Tags and card data from a tree's paths and the contents of README.md and config.json."""
    tags: list[str] = []
    card: dict[str, Any] = {}
    if readme is not None and len(readme) <= MAX_CARD_BYTES:
        try:
            card = parse_front_matter(readme.decode("utf-8", "replace"))
        except Exception:  # a broken card must not break a commit; validate-yaml reports it
            card = {}
    model_type = None
    if config is not None and len(config) <= MAX_CARD_BYTES:
        try:
            cfg = json.loads(config)
            if isinstance(cfg, dict) and isinstance(cfg.get("model_type"), str):
                model_type = cfg["model_type"]
        except ValueError:
            pass
    library = card.get("library_name") if isinstance(card.get("library_name"), str) else None
    if library is None and config is not None:
        library = "transformers"
    if library:
        tags.append(library)
    exts = {p.rsplit(".", 1)[-1] for p in paths if "." in p}
    for ext, tag in (("safetensors", "safetensors"), ("gguf", "gguf"), ("onnx", "onnx"), ("bin", "pytorch")):
        if ext in exts:
            tags.append(tag)
    if model_type:
        tags.append(model_type)
    tags += _strings(card.get("tags"))
    tags += [f"dataset:{d}" for d in _strings(card.get("datasets"))]
    tags += _strings(card.get("language"))
    tags += [f"license:{lic}" for lic in _strings(card.get("license"))]
    tags += [f"base_model:{b}" for b in _strings(card.get("base_model"))]
    pipeline = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
    if pipeline:
        tags.append(pipeline)
    unique = tuple(dict.fromkeys(t[:200] for t in tags))
    return CardInfo(tags=unique, card_data=card, pipeline_tag=pipeline, library_name=library)
