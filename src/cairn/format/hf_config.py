"""Summarise a Hugging Face ``config.json``: architecture, layers, hidden size, heads, vocabulary.

Configs name the same thing differently across model families (``num_hidden_layers`` / ``n_layer`` /
``num_layers``, ``hidden_size`` / ``n_embd`` / ``d_model``...); the first alias present wins. Multimodal
configs keep the language model's numbers under ``text_config``, which is used when the top level lacks
them. The config is data only: nothing in it is evaluated or imported (``auto_map`` is reported, never
followed).
"""

from __future__ import annotations

from collections.abc import Mapping

from cairn.errors import FormatError
from cairn.format.inspection import ConfigSummary

__all__ = ["MAX_CONFIG_SIZE", "summarize_config"]

MAX_CONFIG_SIZE = 16 << 20

_ALIASES: dict[str, tuple[str, ...]] = {
    "num_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model", "dim"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "intermediate_size": ("intermediate_size", "n_inner", "ffn_dim", "hidden_dim"),
    "vocab_size": ("vocab_size",),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "n_ctx"),
}


def _int(doc: Mapping[str, object], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = doc.get(key)
        if type(value) is int:
            return value
    return None


def summarize_config(doc: object, *, path: str | None = None) -> ConfigSummary:
    """The architecture summary of a parsed ``config.json`` object."""
    if not isinstance(doc, dict):
        raise FormatError("config is not a JSON object", path=path)
    archs = doc.get("architectures")
    architectures = tuple(a for a in archs if isinstance(a, str)) if isinstance(archs, list) else ()
    text = doc.get("text_config")
    fallback: Mapping[str, object] = text if isinstance(text, dict) else {}
    numbers = {
        field: _int(doc, keys) if _int(doc, keys) is not None else _int(fallback, keys)
        for field, keys in _ALIASES.items()
    }
    model_type = doc.get("model_type")
    dtype = doc.get("torch_dtype", doc.get("dtype"))
    return ConfigSummary(
        architectures=architectures,
        model_type=model_type if isinstance(model_type, str) else None,
        torch_dtype=dtype if isinstance(dtype, str) else None,
        **numbers,
    )
