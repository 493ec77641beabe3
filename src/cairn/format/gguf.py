"""Read GGUF headers (llama.cpp's format): metadata key/values and tensor infos, quantization types.

Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), little-endian, versions 2 and 3::

    4 bytes "GGUF" | u32 version | u64 tensor_count | u64 kv_count
    kv_count × (string key, u32 value_type, value)      string = u64 length + UTF-8 bytes
    tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset)
    padding to ``general.alignment`` (default 32), then the tensor data; offsets are relative to it

Every count and length is checked against :data:`MAX_TENSORS`, :data:`MAX_KV`, :data:`MAX_DIMS` and
against the bytes that remain in the file before anything is read. Tensor data must lie inside the file,
aligned, without overlaps. Shapes are reported in numpy order (GGUF lists ``ne[0]``, the fastest
dimension, first). Unquantized tensors are readable by ``stats``/``diff``; quantized ones (``Q4_K``...)
are listed with their byte size and compared by bytes only.
"""

from __future__ import annotations

import itertools
import math
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cairn.errors import FormatError, LimitExceededError, UnsupportedFormatError
from cairn.format.inspection import ConfigSummary, Inspection, TensorRecord

__all__ = ["GGML_TYPES", "MAX_DIMS", "MAX_KV", "MAX_TENSORS", "inspect_gguf"]

MAX_TENSORS = 1_000_000
MAX_KV = 1_000_000
MAX_DIMS = 8
MAX_SHOWN_ARRAY = 16
MAX_NESTING = 4

#: ggml type id → (name, elements per block, bytes per block); names of plain types match safetensors'
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}  # fmt: skip

# value type id → struct format (scalars); 8 = string, 9 = array
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_NP = {
    0: "<u1",
    1: "<i1",
    2: "<u2",
    3: "<i2",
    4: "<u4",
    5: "<i4",
    6: "<f4",
    7: "<u1",
    10: "<u8",
    11: "<i8",
    12: "<f8",
}


class _Cursor:
    """Reads from a file object, checking every length against the bytes left before reading."""

    def __init__(self, f: BinaryIO, size: int, path: str) -> None:
        self.f, self.size, self.pos, self.path = f, size, 0, path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise FormatError(
                f"{what} of {n} bytes at offset {self.pos} runs past the end of the file", path=self.path
            )
        out = self.f.read(n)
        if len(out) != n:
            raise FormatError(f"file ends inside {what} at offset {self.pos}", path=self.path)
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> object:
        value: object = struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]
        return value

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little")

    def u64(self, what: str) -> int:
        return int.from_bytes(self.take(8, what), "little")

    def string(self, what: str) -> str:
        raw = self.take(self.u64(f"{what} length"), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(
                f"{what} at offset {self.pos - len(raw)} is not UTF-8", path=self.path
            ) from None

    def value(self, vtype: int, key: str, depth: int = 0) -> object:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype], f"value of {key!r}")
        if vtype == 8:
            return self.string(f"value of {key!r}")
        if vtype != 9:
            raise FormatError(f"metadata {key!r} has unknown value type {vtype}", path=self.path)
        if depth >= MAX_NESTING:
            raise LimitExceededError(
                f"metadata {key!r} nests arrays deeper than {MAX_NESTING}", path=self.path
            )
        itype, count = self.u32(f"array type of {key!r}"), self.u64(f"array length of {key!r}")
        left = self.size - self.pos
        if itype in _NP:
            size = struct.calcsize(_SCALARS[itype])
            if count * size > left:
                raise FormatError(
                    f"array {key!r} of {count} items runs past the end of the file", path=self.path
                )
            arr = np.frombuffer(self.take(count * size, key), dtype=_NP[itype])
            head = arr[:MAX_SHOWN_ARRAY].tolist()
            return head if count <= MAX_SHOWN_ARRAY else {"length": count, "head": head}
        if count * 8 > left:  # every string or nested array takes at least 8 bytes
            raise FormatError(f"array {key!r} of {count} items runs past the end of the file", path=self.path)
        items = [self.value(itype, key, depth + 1) for _ in range(count)]
        return items if count <= MAX_SHOWN_ARRAY else {"length": count, "head": items[:MAX_SHOWN_ARRAY]}


def _summary(meta: dict[str, object]) -> ConfigSummary | None:
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        return None

    def num(key: str) -> int | None:
        v = meta.get(f"{arch}.{key}")
        return v if type(v) is int else None

    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = (
        tokens["length"] if isinstance(tokens, dict) else len(tokens) if isinstance(tokens, list) else None
    )
    return ConfigSummary(
        architectures=(arch,),
        model_type=arch,
        num_layers=num("block_count"),
        hidden_size=num("embedding_length"),
        num_attention_heads=num("attention.head_count"),
        intermediate_size=num("feed_forward_length"),
        vocab_size=num("vocab_size") or vocab,
        max_position_embeddings=num("context_length"),
    )


def _tensor(c: _Cursor, i: int) -> tuple[str, tuple[int, ...], int, int]:
    name = c.string(f"name of tensor {i}")
    n_dims = c.u32(f"rank of {name!r}")
    if n_dims > MAX_DIMS:
        raise LimitExceededError(f"tensor {name!r} has {n_dims} dimensions, over {MAX_DIMS}", path=c.path)
    ne = tuple(c.u64(f"shape of {name!r}") for _ in range(n_dims))
    gtype = c.u32(f"type of {name!r}")
    return name, ne, gtype, c.u64(f"offset of {name!r}")


def inspect_gguf(path: str | Path) -> Inspection:
    p = Path(path)
    with p.open("rb") as f:
        return _read(f, p.stat().st_size, str(p))


def _read(f: BinaryIO, size: int, sp: str) -> Inspection:
    c = _Cursor(f, size, sp)
    if bytes(c.take(4, "magic")) != b"GGUF":
        raise FormatError("not a GGUF file (bad magic)", path=sp)
    version = c.u32("version")
    if int.from_bytes(version.to_bytes(4, "little"), "big") in (2, 3):
        raise UnsupportedFormatError("big-endian GGUF files are not supported", path=sp)
    if version not in (2, 3):
        raise UnsupportedFormatError(f"GGUF version {version} is not supported (2 and 3 are)", path=sp)
    n_tensors, n_kv = c.u64("tensor count"), c.u64("metadata count")
    if n_tensors > MAX_TENSORS:
        raise LimitExceededError(f"{n_tensors} tensors declared, over the limit of {MAX_TENSORS}", path=sp)
    if n_kv > MAX_KV:
        raise LimitExceededError(f"{n_kv} metadata entries declared, over the limit of {MAX_KV}", path=sp)
    meta: dict[str, object] = {}
    for i in range(n_kv):
        key = c.string(f"metadata key {i}")
        meta[key] = c.value(c.u32(f"value type of {key!r}"), key)
    infos = [_tensor(c, i) for i in range(n_tensors)]
    align = meta.get("general.alignment", 32)
    if type(align) is not int or align <= 0 or align & (align - 1):
        raise FormatError(f"general.alignment {align!r} is not a power of two", path=sp)
    data_start = -(-c.pos // align) * align
    data_size = size - data_start
    records, spans = [], []
    for name, ne, gtype, offset in infos:
        if gtype not in GGML_TYPES:
            raise UnsupportedFormatError(f"tensor {name!r} has unknown ggml type {gtype}", path=sp)
        tname, block, block_bytes = GGML_TYPES[gtype]
        numel = math.prod(ne)
        if ne and ne[0] % block:
            raise FormatError(
                f"tensor {name!r}: row of {ne[0]} is not a multiple of the {tname} block", path=sp
            )
        nbytes = numel // block * block_bytes
        if offset % align or offset + nbytes > data_size:
            raise FormatError(f"tensor {name!r} at data offset {offset} (+{nbytes}) is misplaced", path=sp)
        spans.append((offset, offset + nbytes, name))
        records.append(TensorRecord(name, tname, tuple(reversed(ne)), nbytes, sp, data_start + offset))
    spans.sort()
    for (_, end, prev), (begin, _, name) in itertools.pairwise(spans):
        if begin < end:
            raise FormatError(f"tensor {name!r} overlaps {prev!r}", path=sp)
    return Inspection(sp, "gguf", tuple(records), {"gguf_version": version, **meta}, config=_summary(meta))
