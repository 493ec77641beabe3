"""Turn a walked pickle's symbolic value into tensor references and a JSON-ready structure.

A torch tensor in a walked pickle is a ``Call`` of ``torch._utils._rebuild_tensor_v2`` (or the older
``_rebuild_tensor``) whose first argument is a ``PersistentRef`` to a storage; a parameter wraps it in
``_rebuild_parameter``. :func:`collect` finds them anywhere in the tree, names each by its path
(``model.layer.weight``), validates every argument's type and range, and renders everything else
(``{"step": 3, "model": {...}}``, ``"call sklearn.tree.DecisionTree"``) for display.
Limits: :data:`MAX_DEPTH` levels, :data:`MAX_NODES` visits (shared references are visited each time they
are reached, so a pickle built to explode is cut off), :data:`MAX_DIMS` dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cairn.errors import FormatError, LimitExceededError
from cairn.format.pickle_vm import Build, Call, Global, PersistentRef, Unknown

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "REBUILD_PARAMETER",
    "REBUILD_TENSOR",
    "STORAGE_DTYPES",
    "TENSOR_ALLOWLIST",
    "TORCH_DTYPES",
    "ObjTree",
    "TensorRef",
    "collect",
    "qualname",
]

MAX_DEPTH = 200
MAX_NODES = 5_000_000
MAX_DIMS = 64
_SHOWN_ITEMS = 64

#: torch storage classes → (dtype name, bytes per element)
STORAGE_DTYPES: dict[str, tuple[str, int]] = {
    "FloatStorage": ("F32", 4),
    "DoubleStorage": ("F64", 8),
    "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2),
    "LongStorage": ("I64", 8),
    "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1),
    "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
    "ComplexFloatStorage": ("C64", 8),
    "ComplexDoubleStorage": ("C128", 16),
}
#: torch dtype names (``torch.float8_e4m3fn`` in ``_rebuild_tensor_v3`` pickles) → (dtype name, itemsize)
TORCH_DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("F32", 4), "float64": ("F64", 8), "float16": ("F16", 2), "bfloat16": ("BF16", 2),
    "int64": ("I64", 8), "int32": ("I32", 4), "int16": ("I16", 2), "int8": ("I8", 1), "uint8": ("U8", 1),
    "uint16": ("U16", 2), "uint32": ("U32", 4), "uint64": ("U64", 8), "bool": ("BOOL", 1),
    "complex64": ("C64", 8), "complex128": ("C128", 16), "float8_e4m3fn": ("F8_E4M3", 1),
    "float8_e5m2": ("F8_E5M2", 1), "float8_e8m0fnu": ("F8_E8M0", 1),
}  # fmt: skip
REBUILD_TENSOR = frozenset(
    {"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v3"}
)
REBUILD_PARAMETER = frozenset({"torch._utils._rebuild_parameter"})
REBUILD_META = "torch._utils._rebuild_meta_tensor_no_storage"
#: every global a plain tensor checkpoint may reference; ``convert`` refuses anything else
TENSOR_ALLOWLIST = frozenset(
    REBUILD_TENSOR
    | REBUILD_PARAMETER
    | {"collections.OrderedDict", "torch.storage.UntypedStorage"}
    | {f"torch.{s}" for s in STORAGE_DTYPES}
    | {f"torch.{d}" for d in TORCH_DTYPES}
)


@dataclass(frozen=True)
class TensorRef:
    name: str
    dtype: str
    itemsize: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_offset: int  # elements
    key: str | None  # storage key; None for a meta tensor, which has no data

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.itemsize

    @property
    def span_bytes(self) -> int:
        """Bytes of the storage the view reaches."""
        if math.prod(self.shape) == 0:
            return 0
        last = sum((d - 1) * s for d, s in zip(self.shape, self.stride, strict=True))
        return (self.storage_offset + last + 1) * self.itemsize


@dataclass
class ObjTree:
    tensors: list[TensorRef] = field(default_factory=list)
    structure: object = None


def _ints(value: object, what: str, path: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(type(v) is int and v >= 0 for v in value):
        raise FormatError(f"tensor {what} {value!r} is not a tuple of non-negative ints", path=path)
    if len(value) > MAX_DIMS:
        raise LimitExceededError(f"tensor has {len(value)} dimensions, over {MAX_DIMS}", path=path)
    return tuple(value)


def _torch_dtype(value: object, name: str, path: str) -> tuple[str, int]:
    if isinstance(value, Global) and value.module == "torch" and value.name in TORCH_DTYPES:
        return TORCH_DTYPES[value.name]
    raise FormatError(f"tensor {name!r}: unknown dtype {value!r}", path=path)


def _geometry(args: tuple[object, ...], name: str, path: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape, stride = _ints(args[0], "shape", path), _ints(args[1], "stride", path)
    if len(shape) != len(stride):
        raise FormatError(f"tensor {name!r}: shape {shape} and stride {stride} differ in length", path=path)
    return shape, stride


def _tensor(node: Call, name: str, path: str) -> TensorRef:
    args = node.args
    func = qualname(node.func) if isinstance(node.func, Global) else ""
    if func == REBUILD_META:  # (dtype, size, stride, requires_grad): a tensor without data
        if not isinstance(args, tuple) or len(args) < 3:
            raise FormatError(f"tensor {name!r}: meta rebuild call has unexpected arguments", path=path)
        dtype, itemsize = _torch_dtype(args[0], name, path)
        shape, stride = _geometry(args[1:3], name, path)
        return TensorRef(name, dtype, itemsize, shape, stride, 0, None)
    v3 = func == "torch._utils._rebuild_tensor_v3"
    if not isinstance(args, tuple) or len(args) < (7 if v3 else 4) or not isinstance(args[0], PersistentRef):
        raise FormatError(f"tensor {name!r}: rebuild call has unexpected arguments", path=path)
    pid = args[0].pid
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise FormatError(f"tensor {name!r}: persistent id {pid!r} is not a storage", path=path)
    stype, key, numel = pid[1], pid[2], pid[4]
    if v3:  # an untyped storage counted in bytes; the dtype is the 7th argument
        if not (isinstance(stype, Global) and qualname(stype) == "torch.storage.UntypedStorage"):
            raise FormatError(f"tensor {name!r}: unknown storage type {stype!r}", path=path)
        dtype, itemsize = _torch_dtype(args[6], name, path)
        capacity = numel
    else:
        if not (isinstance(stype, Global) and stype.module == "torch" and stype.name in STORAGE_DTYPES):
            raise FormatError(f"tensor {name!r}: unknown storage type {stype!r}", path=path)
        dtype, itemsize = STORAGE_DTYPES[stype.name]
        capacity = numel * itemsize if type(numel) is int else -1
    if not isinstance(key, str) or type(numel) is not int or numel < 0:
        raise FormatError(f"tensor {name!r}: storage key {key!r} or size {numel!r} is invalid", path=path)
    offset = args[1]
    if type(offset) is not int or offset < 0:
        raise FormatError(f"tensor {name!r}: storage offset {offset!r} is invalid", path=path)
    shape, stride = _geometry(args[2:4], name, path)
    ref = TensorRef(name, dtype, itemsize, shape, stride, offset, key)
    if ref.span_bytes > capacity:
        raise FormatError(f"tensor {name!r} reaches past the {capacity} bytes of its storage", path=path)
    return ref


def qualname(g: Global) -> str:
    return f"{g.module}.{g.name}"


def _as_tensor(node: object) -> Call | None:
    while isinstance(node, Build):
        node = node.obj
    if isinstance(node, Call) and isinstance(node.func, Global):
        name = qualname(node.func)
        if name in REBUILD_PARAMETER and isinstance(node.args, tuple) and node.args:
            return _as_tensor(node.args[0])
        if name in REBUILD_TENSOR or name == REBUILD_META:
            return node
    return None


class _Collector:
    def __init__(self, path: str, tensors: bool, persistent: Mapping[str, TensorRef] | None) -> None:
        self.path, self.want_tensors = path, tensors
        self.persistent = persistent
        self.out = ObjTree()
        self.visits = 0

    def visit(self, node: object, name: str, depth: int) -> object:
        self.visits += 1
        if self.visits > MAX_NODES:
            raise LimitExceededError(f"object tree has more than {MAX_NODES} nodes", path=self.path)
        if depth > MAX_DEPTH:
            raise LimitExceededError(f"object tree nests deeper than {MAX_DEPTH}", path=self.path)
        tensor = _as_tensor(node) if self.want_tensors else None
        if tensor is not None:
            ref = _tensor(tensor, name, self.path)
            self.out.tensors.append(ref)
            return f"tensor {ref.dtype}{list(ref.shape)}"
        prefix = f"{name}." if name else ""
        if isinstance(node, dict):
            shown: dict[str, object] = {}
            for i, (k, v) in enumerate(node.items()):
                rendered = self.visit(v, f"{prefix}{k}", depth + 1)
                if i < _SHOWN_ITEMS or not isinstance(rendered, str | int | float | bool | None):
                    shown[str(k)] = rendered
            if len(node) > len(shown):
                shown["…"] = f"{len(node) - len(shown)} more"
            return shown
        if isinstance(node, list | tuple):
            items = [self.visit(v, f"{prefix}{i}", depth + 1) for i, v in enumerate(node)]
            return items if len(items) <= _SHOWN_ITEMS else [*items[:_SHOWN_ITEMS], f"… {len(items)} items"]
        if isinstance(node, Build):
            obj = self.visit(node.obj, name, depth + 1)
            state = self.visit(node.state, name, depth + 1)
            if isinstance(obj, dict):  # a filled container with attributes (OrderedDict._metadata)
                return {**obj, "#state": state}
            return {"#object": obj, **state} if isinstance(state, dict) else {"#object": obj, "#state": state}
        if isinstance(node, Call):
            func = qualname(node.func) if isinstance(node.func, Global) else "<computed>"
            if node.dictitems or node.listitems or func == "collections.OrderedDict":
                # a container built by a call and then filled (OrderedDict in every state dict)
                return self.visit_filled(node, func, name, depth)
            args = self.visit(node.args, name, depth + 1)
            return {"#call": func, "#args": args} if args not in ((), [], None) else f"call {func}()"
        if isinstance(node, Global):
            return f"global {qualname(node)}"
        if isinstance(node, Unknown):
            return f"unknown ({node.reason})"
        if isinstance(node, PersistentRef):
            if self.persistent is not None and self.want_tensors and isinstance(node.pid, str | int):
                known = self.persistent.get(str(node.pid))
                if known is not None:  # a pre-1.0 tar checkpoint names its tensors by persistent id
                    self.out.tensors.append(replace(known, name=name))
                    return f"tensor {known.dtype}{list(known.shape)}"
            return "persistent reference"
        if isinstance(node, bytes | bytearray):
            return f"<{len(node)} bytes>"
        if isinstance(node, str):
            return node if len(node) <= 200 else node[:200] + "…"
        if isinstance(node, float) and not math.isfinite(node):
            return str(node)
        return node

    def visit_filled(self, node: Call, func: str, name: str, depth: int) -> object:
        prefix = f"{name}." if name else ""
        if node.listitems and not node.dictitems:
            return self.visit(list(node.listitems), name, depth + 1)
        shown = self.visit(dict(node.dictitems), name, depth + 1)
        assert isinstance(shown, dict)
        if func != "collections.OrderedDict":
            shown = {"#call": func, **shown}
        for i, item in enumerate(node.listitems):
            shown[f"#item{i}"] = self.visit(item, f"{prefix}{i}", depth + 1)
        return shown


def collect(
    value: object, *, path: str, tensors: bool = True, persistent: Mapping[str, TensorRef] | None = None
) -> ObjTree:
    """Tensor references (when ``tensors``) and a display structure for a walked pickle value.
    ``persistent`` maps persistent ids to tensors (the pre-1.0 tar format refers to tensors that way)."""
    c = _Collector(path, tensors, persistent)
    try:
        c.out.structure = c.visit(value, "", 0)
    except RecursionError:
        raise LimitExceededError("object tree nests too deeply", path=path) from None
    return c.out
