"""Framework adapters: torch tensors and NumPy arrays as (dtype name, shape, bytes), and back.

This is the only module of the checkpoint library that knows framework types. torch is imported lazily:
NumPy-only users never import it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.errors import FormatError

__all__ = [
    "TensorView",
    "describe",
    "from_bytes",
    "is_numpy_array",
    "is_tensor",
    "is_torch_tensor",
    "storable",
    "torch_dtype_name",
    "torch_or_none",
    "view_of",
]

_NP_TO_ST = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "U8",
    np.dtype(np.int8): "I8",
    np.dtype(np.int16): "I16",
    np.dtype(np.uint16): "U16",
    np.dtype(np.float16): "F16",
    np.dtype(np.int32): "I32",
    np.dtype(np.uint32): "U32",
    np.dtype(np.float32): "F32",
    np.dtype(np.complex64): "C64",
    np.dtype(np.float64): "F64",
    np.dtype(np.int64): "I64",
    np.dtype(np.uint64): "U64",
}
_ST_TO_NP = {v: k for k, v in _NP_TO_ST.items()}

_TORCH_NAMES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "complex64": "C64",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e8m0fnu": "F8_E8M0",
}


def torch_or_none() -> Any:
    """The torch module if the process already imported it (a torch object cannot exist otherwise)."""
    return sys.modules.get("torch")


def is_torch_tensor(obj: object) -> bool:
    torch = torch_or_none()
    return torch is not None and isinstance(obj, torch.Tensor)


def is_numpy_array(obj: object) -> bool:
    return isinstance(obj, np.ndarray)


def is_tensor(obj: object) -> bool:
    return is_numpy_array(obj) or is_torch_tensor(obj)


@dataclass(frozen=True)
class TensorView:
    """A tensor ready to be written: its safetensors dtype, shape and a C-contiguous byte view."""

    dtype: str
    shape: tuple[int, ...]
    data: memoryview
    kind: str  # "torch" | "numpy"
    keepalive: object = None  # the contiguous copy the view points into, if one was needed

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def storable(obj: Any) -> bool:
    """Whether a tensor or array has a dtype safetensors can hold."""
    if is_numpy_array(obj):
        return obj.dtype in _NP_TO_ST
    return str(obj.dtype).removeprefix("torch.") in _TORCH_NAMES


def torch_dtype_name(dtype: Any) -> str:
    name = str(dtype).removeprefix("torch.")
    if name not in _TORCH_NAMES:
        raise FormatError(f"torch dtype {name} has no safetensors equivalent")
    return _TORCH_NAMES[name]


def view_of(obj: Any) -> TensorView:
    """Bytes of a tensor or array without copying when it is already contiguous and on the CPU."""
    if is_numpy_array(obj):
        arr = np.ascontiguousarray(obj)
        if arr.dtype not in _NP_TO_ST:
            raise FormatError(f"NumPy dtype {arr.dtype} cannot be stored in safetensors")
        return TensorView(
            _NP_TO_ST[arr.dtype], tuple(arr.shape), arr.reshape(-1).view(np.uint8).data, "numpy", arr
        )
    t = obj.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    if not t.is_contiguous():
        t = t.contiguous()
    dtype = torch_dtype_name(t.dtype)
    flat = t.reshape(-1).view(torch_or_none().uint8)
    return TensorView(dtype, tuple(t.shape), flat.numpy().data, "torch", flat)


def from_bytes(buffer: Any, begin: int, end: int, dtype: str, shape: tuple[int, ...], kind: str) -> Any:
    """A tensor of ``kind`` over ``buffer[begin:end]`` (a uint8 torch tensor or NumPy array).

    The result shares memory with the buffer when the offset is aligned for the dtype, else it is a copy.
    """
    if kind == "torch":
        torch = _import_torch()
        target = getattr(torch, _torch_name(dtype))
        chunk = buffer[begin:end]
        itemsize = torch.empty((), dtype=target).element_size()
        if begin % itemsize:
            chunk = chunk.clone()
        return chunk.view(target).reshape(shape)
    if dtype not in _ST_TO_NP:
        raise FormatError(f"safetensors dtype {dtype} cannot be represented in NumPy; load it with torch")
    np_dtype = _ST_TO_NP[dtype]
    chunk_np = np.asarray(buffer[begin:end])
    if begin % np_dtype.itemsize:
        chunk_np = chunk_np.copy()
    return chunk_np.view(np_dtype).reshape(shape)


def _torch_name(st_dtype: str) -> str:
    for name, st in _TORCH_NAMES.items():
        if st == st_dtype:
            return name
    raise FormatError(f"unknown safetensors dtype {st_dtype}")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the installation
        raise FormatError("this checkpoint holds torch tensors; install cairn[torch] to load it") from None
    return torch


def describe(obj: Any) -> tuple[str, tuple[int, ...]]:
    """(safetensors dtype, shape) of a tensor or array, for mismatch reports."""
    if is_numpy_array(obj):
        return _NP_TO_ST.get(obj.dtype, str(obj.dtype)), tuple(obj.shape)
    return torch_dtype_name(obj.dtype), tuple(obj.shape)
