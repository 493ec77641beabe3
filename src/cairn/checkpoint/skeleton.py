"""Split a state structure into tensors and a JSON skeleton, and put it back together. Never pickles.

``encode`` walks a state (dicts, lists, tuples, scalars, strings, bytes, None, tensors, arrays) and returns
the tensors keyed by a readable path (``state.0.exp_avg``) plus a JSON-ready skeleton in which each tensor
is replaced by ``{"__tensor__": key, "kind": ...}``. The tagged objects are listed in
``docs/spec/checkpoint.md``. Values that have no faithful JSON form are refused with
:class:`~cairn.errors.UnsupportedStateError` naming where they are.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.checkpoint.tensors import is_numpy_array, is_tensor, is_torch_tensor, storable, torch_or_none
from cairn.errors import FormatError, UnsupportedStateError

__all__ = ["Encoded", "decode", "encode", "is_flat_tensor_mapping"]

_TAGS = frozenset({"__tensor__", "__tuple__", "__dict__", "__float__", "__bytes__", "__numpy__", "__dtype__"})
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Encoded:
    skeleton: Any
    tensors: dict[str, Any]  # key -> tensor or array, in first-seen order


def is_flat_tensor_mapping(state: object) -> bool:
    """True for the usual model state: a mapping of string names to tensors (or arrays)."""
    return isinstance(state, Mapping) and all(isinstance(k, str) and is_tensor(v) for k, v in state.items())


def encode(state: Any) -> Encoded:
    tensors: dict[str, Any] = {}
    skeleton = _encode(state, (), tensors, 0)
    return Encoded(skeleton, tensors)


def _key_for(path: tuple[str, ...], tensors: dict[str, Any]) -> str:
    base = ".".join(path) or "value"
    key, n = base, 1
    while key in tensors:
        key, n = f"{base}#{n}", n + 1
    return key


def _encode(value: Any, path: tuple[str, ...], tensors: dict[str, Any], depth: int) -> Any:
    where = ".".join(path) or "<root>"
    if depth > _MAX_DEPTH:
        raise UnsupportedStateError(where, f"nesting deeper than {_MAX_DEPTH}")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(float(value))}
    if is_tensor(value):
        if not storable(value):
            raise UnsupportedStateError(where, f"array of dtype {value.dtype}")
        key = _key_for(path, tensors)
        tensors[key] = value
        return {"__tensor__": key, "kind": "numpy" if is_numpy_array(value) else "torch"}
    if isinstance(value, np.generic):
        item = value.item()
        return {"__numpy__": value.dtype.str, "value": _encode(item, path, tensors, depth + 1)}
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, (*path, str(i)), tensors, depth + 1) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, (*path, str(i)), tensors, depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and not _TAGS.intersection(value):
            return {k: _encode(v, (*path, k), tensors, depth + 1) for k, v in value.items()}
        return {
            "__dict__": [
                [
                    _encode(k, (*path, "key"), tensors, depth + 1),
                    _encode(v, (*path, str(k)), tensors, depth + 1),
                ]
                for k, v in value.items()
            ]
        }
    torch = torch_or_none()
    if torch is not None and isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    raise UnsupportedStateError(where, type(value).__qualname__)


def decode(skeleton: Any, tensors: Mapping[str, Any]) -> Any:
    """Rebuild the state from a skeleton (parsed JSON) and the loaded tensors. Rejects malformed skeletons."""
    return _decode(skeleton, tensors, 0)


def _decode(node: Any, tensors: Mapping[str, Any], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise FormatError(f"skeleton nests deeper than {_MAX_DEPTH}")
    if isinstance(node, list):
        return [_decode(v, tensors, depth + 1) for v in node]
    if not isinstance(node, dict):
        if isinstance(node, float) and not math.isfinite(node):
            raise FormatError("skeleton holds a bare non-finite float")
        return node
    tag = _TAGS.intersection(node)
    if not tag:
        return {k: _decode(v, tensors, depth + 1) for k, v in node.items()}
    (name,) = tag if len(tag) == 1 else (None,)
    if name == "__tensor__":
        key = node["__tensor__"]
        if not isinstance(key, str) or key not in tensors:
            raise FormatError(f"skeleton refers to tensor {key!r}, which the part's files do not hold")
        return tensors[key]
    if name == "__tuple__" and isinstance(node["__tuple__"], list):
        return tuple(_decode(v, tensors, depth + 1) for v in node["__tuple__"])
    if name == "__dict__" and isinstance(node["__dict__"], list):
        out: dict[Any, Any] = {}
        for pair in node["__dict__"]:
            if not isinstance(pair, list) or len(pair) != 2:
                raise FormatError("skeleton __dict__ entries must be [key, value] pairs")
            key = _decode(pair[0], tensors, depth + 1)
            try:
                out[key] = _decode(pair[1], tensors, depth + 1)
            except TypeError:
                raise FormatError(f"skeleton __dict__ key {key!r} is not hashable") from None
        return out
    if name == "__float__" and node["__float__"] in {"nan", "inf", "-inf"}:
        return float(node["__float__"])
    if name == "__bytes__" and isinstance(node["__bytes__"], str):
        try:
            return base64.b64decode(node["__bytes__"], validate=True)
        except ValueError:
            raise FormatError("skeleton holds malformed base64 bytes") from None
    if name == "__numpy__" and isinstance(node["__numpy__"], str):
        try:
            np_dtype = np.dtype(node["__numpy__"])
            if np_dtype.kind not in "biufc":
                raise TypeError(np_dtype)
            return np_dtype.type(_decode(node.get("value"), tensors, depth + 1))
        except (TypeError, ValueError):
            raise FormatError(f"skeleton holds an invalid NumPy scalar {node!r:.80}") from None
    if name == "__dtype__" and isinstance(node["__dtype__"], str):
        torch = torch_or_none()
        dtype = getattr(torch, node["__dtype__"], None) if torch is not None else None
        if torch is None or not isinstance(dtype, torch.dtype):
            raise FormatError(f"skeleton holds an unknown torch dtype {node['__dtype__']!r}")
        return dtype
    raise FormatError(f"malformed tagged object in skeleton: {node!r:.80}")


def tensor_kind(value: Any) -> str:
    return "torch" if is_torch_tensor(value) else "numpy"
