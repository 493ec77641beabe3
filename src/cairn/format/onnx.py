"""Read ONNX models with a minimal protobuf wire-format reader: no ``onnx`` package, no copies of weights.

Only the messages needed are decoded (field numbers from ``onnx/onnx.proto``)::

    ModelProto   1 ir_version  2 producer_name  3 producer_version  5 model_version  7 graph
                 8 opset_import (1 domain, 2 version)  14 metadata_props (1 key, 2 value)
    GraphProto   1 node (4 op_type)  2 name  5 initializer  11 input  12 output
    TensorProto  1 dims  2 data_type  8 name  9 raw_data  4 float_data  5 int32_data  7 int64_data
                 10 double_data  11 uint64_data  13 external_data (1 key, 2 value)  14 data_location
    ValueInfoProto 1 name  2 type → 1 tensor_type → 1 elem_type, 2 shape → 1 dim → 1 dim_value | 2 dim_param

The file is memory-mapped and walked by offsets: a 2 GB model costs no 2 GB read. Every length is checked
against its enclosing message, varints longer than 10 bytes and group wire types are errors. Initializers
stored as ``raw_data`` (what every exporter writes) or one packed run of ``float_data``/``double_data``
are addressable in place for ``stats``/``diff``; values in the other typed fields (varints, unpacked or
split runs) are decoded on demand by :mod:`cairn.format.onnx_typed`. External data is resolved only to regular files inside the model's
own folder: absolute paths, ``..`` and links leading out are refused.
"""

from __future__ import annotations

import math
import mmap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from cairn.errors import FormatError, LimitExceededError
from cairn.format.inspection import Inspection, TensorRecord
from cairn.format.onnx_typed import ENCODING, TYPED_FIELD

__all__ = ["MAX_DIMS", "ONNX_DTYPES", "inspect_onnx"]

MAX_DIMS = 64
MAX_IO = 100_000

#: TensorProto.DataType → (name, bits per element)
ONNX_DTYPES: dict[int, tuple[str, int]] = {
    1: ("F32", 32), 2: ("U8", 8), 3: ("I8", 8), 4: ("U16", 16), 5: ("I16", 16), 6: ("I32", 32),
    7: ("I64", 64), 8: ("STRING", 0), 9: ("BOOL", 8), 10: ("F16", 16), 11: ("F64", 64), 12: ("U32", 32),
    13: ("U64", 64), 14: ("C64", 64), 15: ("C128", 128), 16: ("BF16", 16), 17: ("F8_E4M3", 8),
    18: ("F8_E4M3FNUZ", 8), 19: ("F8_E5M2", 8), 20: ("F8_E5M2FNUZ", 8), 21: ("U4", 4), 22: ("I4", 4),
    23: ("F4_E2M1", 4),
}  # fmt: skip

Field = tuple[int, int, int, int]  # field number, wire type, value (varint) or payload start, payload end


class _Reader:
    def __init__(self, mm: mmap.mmap, path: str) -> None:
        self.mm, self.path = mm, path

    def fail(self, message: str) -> FormatError:
        return FormatError(message, path=self.path)

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        value = shift = 0
        for i in range(10):
            if pos + i >= end:
                raise self.fail(f"varint at offset {pos} runs past its message")
            byte = self.mm[pos + i]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos + i + 1
            shift += 7
        raise self.fail(f"varint at offset {pos} is longer than 10 bytes")

    def fields(self, start: int, end: int) -> Iterator[Field]:
        pos = start
        while pos < end:
            tag, pos = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise self.fail(f"field number 0 at offset {pos}")
            if wire == 0:
                value, pos = self.varint(pos, end)
                yield number, 0, value, value
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                if pos + size > end:
                    raise self.fail(f"fixed field at offset {pos} runs past its message")
                yield number, wire, pos, pos + size
                pos += size
            elif wire == 2:
                length, pos = self.varint(pos, end)
                if pos + length > end:
                    raise self.fail(f"field {number} of {length} bytes at offset {pos} runs past its message")
                yield number, 2, pos, pos + length
                pos += length
            else:
                raise self.fail(f"wire type {wire} at offset {pos} is not supported")

    def text(self, f: Field) -> str:
        if f[1] != 2:
            raise self.fail(f"field {f[0]} at offset {f[2]} should be a string")
        try:
            return self.mm[f[2] : f[3]].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"string at offset {f[2]} is not UTF-8") from None

    def ints(self, f: Field) -> list[int]:
        """A repeated int64 field, packed (wire 2) or not (wire 0)."""
        if f[1] == 0:
            return [f[2]]
        out, pos = [], f[2]
        while pos < f[3]:
            value, pos = self.varint(pos, f[3])
            out.append(value - (1 << 64) if value >= 1 << 63 else value)
        return out

    def pairs(self, f: Field) -> tuple[str, str]:
        key = value = ""
        for g in self.fields(f[2], f[3]):
            if g[0] == 1:
                key = self.text(g)
            elif g[0] == 2:
                value = self.text(g)
        return key, value


def _value_info(r: _Reader, f: Field) -> dict[str, object]:
    out: dict[str, object] = {"name": ""}
    for g in r.fields(f[2], f[3]):
        if g[0] == 1:
            out["name"] = r.text(g)
        elif g[0] == 2 and g[1] == 2:
            for tt in r.fields(g[2], g[3]):
                if tt[0] != 1 or tt[1] != 2:
                    continue
                for h in r.fields(tt[2], tt[3]):
                    if h[0] == 1 and h[1] == 0:
                        out["dtype"] = ONNX_DTYPES.get(h[2], (f"type{h[2]}", 0))[0]
                    elif h[0] == 2 and h[1] == 2:
                        dims: list[object] = []
                        for d in r.fields(h[2], h[3]):
                            if d[0] == 1 and d[1] == 2:
                                dims.append(_dim(r, d))
                        out["shape"] = dims
    return out


def _dim(r: _Reader, f: Field) -> object:
    for g in r.fields(f[2], f[3]):
        if g[0] == 1 and g[1] == 0:
            return g[2]
        if g[0] == 2:
            return r.text(g)
    return None


class _Initializers:
    def __init__(self, r: _Reader, folder: Path) -> None:
        self.r, self.folder = r, folder
        self.records: list[TensorRecord] = []
        self.unaddressable = 0

    def add(self, f: Field) -> None:
        r = self.r
        dims: list[int] = []
        dtype_id, name = 0, ""
        raw: Field | None = None
        typed: dict[int, list[Field]] = {}  # typed field → its first two occurrences
        external: dict[str, str] = {}
        for g in r.fields(f[2], f[3]):
            if g[0] == 1:
                dims += r.ints(g)
            elif g[0] == 2 and g[1] == 0:
                dtype_id = g[2]
            elif g[0] == 8:
                name = r.text(g)
            elif g[0] == 9 and g[1] == 2:
                raw = g
            elif g[0] in (4, 5, 7, 10, 11):
                seen = typed.setdefault(g[0], [])
                if len(seen) < 2:
                    seen.append(g)
            elif g[0] == 13 and g[1] == 2:
                key, value = r.pairs(g)
                external[key] = value
        if len(dims) > MAX_DIMS or any(d < 0 for d in dims):
            raise r.fail(f"initializer {name!r} has invalid dims {dims[:8]}")
        dtype, bits = ONNX_DTYPES.get(dtype_id, (f"type{dtype_id}", 0))
        shape = tuple(dims)
        nbytes = (math.prod(shape) * bits + 7) // 8
        if external:
            self.records.append(self._external(name, dtype, shape, nbytes, external))
            return
        field = TYPED_FIELD.get(dtype)
        if raw is None and field in typed:
            occurrences = typed[field]
            if field in (4, 10) and len(occurrences) == 1 and occurrences[0][1] == 2:
                raw = occurrences[0]  # one packed run of little-endian floats: mapped in place
            else:
                encoding = f"{ENCODING}:{field}"
                self.records.append(
                    TensorRecord(
                        name,
                        dtype,
                        shape,
                        nbytes,
                        r.path,
                        f[2],
                        encoding=encoding,
                        encoded_length=f[3] - f[2],
                    )
                )
                return
        if raw is None or not bits:
            self.unaddressable += 1
            self.records.append(TensorRecord(name, dtype, shape, nbytes))
            return
        if raw[3] - raw[2] != nbytes:
            raise r.fail(
                f"initializer {name!r} holds {raw[3] - raw[2]} bytes but {dtype}{list(shape)} needs {nbytes}"
            )
        self.records.append(TensorRecord(name, dtype, shape, nbytes, r.path, raw[2]))

    def _external(
        self, name: str, dtype: str, shape: tuple[int, ...], nbytes: int, ext: dict[str, str]
    ) -> TensorRecord:
        location = ext.get("location", "")
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts or "\0" in location:
            raise self.r.fail(
                f"initializer {name!r}: external data location {location!r} is outside the model folder"
            )
        target = (self.folder / rel).resolve()
        if not target.is_relative_to(self.folder.resolve()) or not target.is_file():
            raise self.r.fail(
                f"initializer {name!r}: external data {location!r} is not a file in the model folder"
            )
        try:
            offset = int(ext.get("offset", "0"))
            length = int(ext.get("length", str(nbytes)))
        except ValueError:
            raise self.r.fail(f"initializer {name!r}: external offset/length are not integers") from None
        if offset < 0 or length != nbytes or offset + length > target.stat().st_size:
            raise self.r.fail(
                f"initializer {name!r}: external range {offset}+{length} does not fit {location!r}"
            )
        return TensorRecord(name, dtype, shape, nbytes, str(target), offset)


def inspect_onnx(path: str | Path) -> Inspection:
    p = Path(path)
    with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return _read(_Reader(mm, str(p)), len(mm), p.parent)


def _read(r: _Reader, size: int, folder: Path) -> Inspection:
    meta: dict[str, object] = {}
    opsets: dict[str, int] = {}
    props: dict[str, str] = {}
    graph: Field | None = None
    for f in r.fields(0, size):
        if f[0] == 1 and f[1] == 0:
            meta["ir_version"] = f[2]
        elif f[0] in (2, 3) and f[1] == 2:
            meta["producer_name" if f[0] == 2 else "producer_version"] = r.text(f)
        elif f[0] == 5 and f[1] == 0:
            meta["model_version"] = f[2]
        elif f[0] == 7 and f[1] == 2:
            graph = f
        elif f[0] == 8 and f[1] == 2:
            domain, version = "", 0
            for g in r.fields(f[2], f[3]):
                if g[0] == 1:
                    domain = r.text(g)
                elif g[0] == 2 and g[1] == 0:
                    version = g[2]
            opsets[domain or "ai.onnx"] = version
        elif f[0] == 14 and f[1] == 2:
            key, value = r.pairs(f)
            props[key] = value
    if "ir_version" not in meta or graph is None:
        raise r.fail("not an ONNX model: no ir_version or no graph")
    inits = _Initializers(r, folder)
    ops: Counter[str] = Counter()
    inputs: list[dict[str, object]] = []
    outputs: list[dict[str, object]] = []
    for f in r.fields(graph[2], graph[3]):
        if f[0] == 1 and f[1] == 2:
            ops.update(r.text(g) for g in r.fields(f[2], f[3]) if g[0] == 4)
        elif f[0] == 2 and f[1] == 2:
            meta["graph"] = r.text(f)
        elif f[0] == 5 and f[1] == 2:
            inits.add(f)
        elif f[0] in (11, 12) and f[1] == 2:
            (inputs if f[0] == 11 else outputs).append(_value_info(r, f))
            if len(inputs) + len(outputs) > MAX_IO:
                raise LimitExceededError(f"graph has more than {MAX_IO} inputs and outputs", path=r.path)
    init_names = {t.name for t in inits.records}
    meta |= {
        "opsets": opsets,
        "inputs": [i for i in inputs if i["name"] not in init_names],
        "outputs": outputs,
        "nodes": sum(ops.values()),
        "op_types": dict(ops.most_common()),
    }
    if props:
        meta["metadata_props"] = props
    warnings: tuple[str, ...] = ()
    if inits.unaddressable:
        warnings = (
            f"{inits.unaddressable} initializers have no readable values (strings, complex, 4/8-bit "
            "types in typed fields, or none); stats/diff skip them",
        )
    return Inspection(r.path, "onnx", tuple(inits.records), meta, warnings=warnings)
