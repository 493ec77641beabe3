"""The state of a symbolic pickle walk and the operations on it: stack, marks, memo, limits, decoding.

:class:`cairn.format.pickle_ops.Machine` runs the opcodes on top of this. Like ``pickle.Unpickler`` it keeps
a stack, a stack of marks and a memo, except that imports, calls and ``BUILD`` produce symbolic nodes
(:mod:`cairn.format.pickle_vm`) instead of running anything. Limits (memo, nesting depth, errors kept) are
enforced here, and every declared length is compared with the bytes present before it is sliced.
"""

from __future__ import annotations

import codecs
import math
from typing import Any, NoReturn, cast

from cairn.format.pickle_vm import (
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_LINE,
    Build,
    Call,
    Global,
    PickleResult,
    Unknown,
)

__all__ = ["MAX_NESTING", "MachineBase", "Stop", "freeze"]

#: how deep joblib's nested object-array pickles may go
MAX_NESTING = 4

_JOBLIB_WRAPPERS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
}

_COPYREG_MAKERS = {("copyreg", "__newobj__"), ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor")}
_DTYPE_MAKERS = {("numpy", "dtype"), ("numpy.core.multiarray", "dtype"), ("numpy._core.multiarray", "dtype")}


class Stop(Exception):
    """Ends a walk: truncation, an unknown opcode or a spent budget (the reason is already recorded)."""


def freeze(value: object, depth: int = 0) -> object:
    """A hashable stand-in for a dict key or set member that the symbolic machine could not hash."""
    if depth > MAX_DEPTH:
        return Unknown("nested too deeply", -1)
    try:
        hash(value)
        return value
    except (TypeError, RecursionError):
        pass
    if isinstance(value, list | tuple):
        return tuple(freeze(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return tuple((freeze(k, depth + 1), freeze(v, depth + 1)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v, depth + 1) for v in value)
    return Unknown(f"unhashable {type(value).__name__}", -1)


class MachineBase:
    def __init__(self, data: memoryview, start: int, max_ops: int, max_memo: int, depth: int) -> None:
        """``depth`` counts joblib's nested object-array pickles; -1 reads joblib files as plain pickles."""
        self.data = data
        self.pos = start
        self.start = start
        self.max_ops = max_ops
        self.max_memo = max_memo
        self.depth = depth
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.globals: list[Global] = []
        self.calls: list[Call] = []
        self.builds: list[Build] = []
        self.errors: list[str] = []
        self.unresolved: list[int] = []  # offsets of joblib arrays whose size the walk could not know
        self.protocol: int | None = None
        self.value: object = Unknown("no STOP reached", start)
        self.op_pos = start
        self.stopped = False
        # nesting depth of every immutable value this walk built, by id (the value is kept alive with it)
        self.depths: dict[int, tuple[object, int]] = {}

    # -- reading arguments ---------------------------------------------------------------------------------
    def _take(self, n: int, what: str) -> memoryview:
        if n < 0:
            self._fail(f"negative length {n} for {what}")
        if n > len(self.data) - self.pos:
            self._fail(f"truncated: {what} needs {n} bytes, {len(self.data) - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def _line(self, what: str) -> bytes:
        end = -1
        for window in (256, MAX_LINE + 1):
            end = bytes(self.data[self.pos : self.pos + window]).find(b"\n")
            if end >= 0 or self.pos + window >= len(self.data):
                break
        if end < 0:
            self._fail(f"truncated or overlong line for {what}")
        out = bytes(self.data[self.pos : self.pos + end])
        self.pos += end + 1
        return out

    def _fail(self, message: str) -> NoReturn:
        self.errors.append(f"at {self.op_pos}: {message}")
        raise Stop

    def _error(self, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"at {self.op_pos}: {message}")
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append("further errors omitted")

    # -- stack helpers -------------------------------------------------------------------------------------
    def _pop(self) -> Any:
        if not self.stack:
            self._error("stack underflow")
            return Unknown("stack underflow", self.op_pos)
        return self.stack.pop()

    def _pop_mark(self) -> list[Any]:
        items = self.stack
        if not self.metastack:
            self._error("no MARK on the stack")
            self.stack = []
            return items
        self.stack = self.metastack.pop()
        return items

    def _push(self, value: Any) -> None:
        self.stack.append(value)

    def _nested(self, value: Any, children: tuple[Any, ...] | list[Any] | frozenset[Any]) -> Any:
        """``value`` built from ``children``, or an Unknown when it nests deeper than MAX_DEPTH."""
        depths = self.depths
        depth = 0
        for child in children:
            known = depths.get(id(child))
            if known is not None and known[1] > depth:
                depth = known[1]
        if depth >= MAX_DEPTH:
            self._error(f"values nested deeper than {MAX_DEPTH}")
            return Unknown("nested too deeply", self.op_pos)
        depths[id(value)] = (value, depth + 1)
        return value

    def _top(self) -> Any:
        if not self.stack:
            self._error("stack underflow")
            self.stack.append(Unknown("stack underflow", self.op_pos))
        return self.stack[-1]

    def _put(self, index: int) -> None:
        if (
            index < 0
            or index >= self.max_memo
            or (index not in self.memo and len(self.memo) >= self.max_memo)
        ):
            self._fail(f"memo index {index} over the limit of {self.max_memo}")
        self.memo[index] = self._top()

    def _get(self, index: int) -> Any:
        if index in self.memo:
            return self.memo[index]
        self._error(f"memo entry {index} was never stored")
        return Unknown(f"memo entry {index} missing", self.op_pos)

    def _global(self, module: object, name: object, opcode: str) -> Global:
        if isinstance(module, str) and isinstance(name, str):
            g = Global(module, name, self.op_pos)
        else:
            self._error(f"{opcode} with operands that are not strings: {module!r}, {name!r}")
            g = Global("<unresolved>", f"{module!r}.{name!r}", self.op_pos)
        self.globals.append(g)
        return g

    def _call(self, func: object, args: object, opcode: str) -> Any:
        c = Call(func, args, self.op_pos, opcode)
        self.calls.append(c)
        return self._nested(c, (func, args))

    def _setitems(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        if isinstance(target, dict):
            for k, v in pairs:
                target[freeze(k)] = v
        elif isinstance(target, Call):
            target.dictitems.extend(pairs)
        else:
            self._error(f"SETITEM(S) on {type(target).__name__}")

    def _extend(self, target: Any, items: list[Any], opcode: str) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, set) and opcode == "ADDITEMS":
            target.update(freeze(i) for i in items)
        elif isinstance(target, Call):
            target.listitems.extend(items)
        else:
            self._error(f"{opcode} on {type(target).__name__}")

    def run(self) -> PickleResult:
        """Walk to STOP (implemented by :class:`cairn.format.pickle_ops.Machine`)."""
        raise NotImplementedError

    # -- value decoding ------------------------------------------------------------------------------------
    def _number(self, name: str, raw: bytes) -> object:
        text = raw.strip()
        try:
            if name == "FLOAT":
                return float(text)
            if name == "INT" and text in (b"00", b"01"):
                return text == b"01"
            return int(text[:-1] if name == "LONG" and text.endswith(b"L") else text)
        except ValueError:
            self._error(f"{name} argument {raw[:40]!r} is not a number")
            return Unknown(f"bad {name}", self.op_pos)

    def _index(self, raw: bytes) -> int:
        try:
            return int(raw)
        except ValueError:
            self._error(f"memo index {raw[:40]!r} is not a number")
            return -1

    def _utf8(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._error("string is not valid UTF-8")
            return raw.decode("utf-8", errors="surrogateescape")

    def _py2str(self, raw: bytes) -> object:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            return raw

    def _quoted(self, raw: bytes) -> object:
        text = raw.rstrip()
        if len(text) >= 2 and text[0] == text[-1] and text[:1] in (b"'", b'"'):
            return self._py2str(codecs.escape_decode(text[1:-1])[0])
        self._error("STRING argument is not quoted")
        return Unknown("bad STRING", self.op_pos)

    # -- joblib ------------------------------------------------------------------------------------------
    def _joblib_array(self, obj: object, state: object) -> None:
        """After a NumpyArrayWrapper's BUILD joblib reads the array itself; skip it as joblib does.

        joblib checks the built object's type, not how it was made, so a wrapper made by
        ``copyreg.__newobj__`` or ``copyreg._reconstructor`` counts too."""
        if self.depth < 0 or not _is_joblib_wrapper(obj) or not isinstance(state, dict):
            return
        shape, dtype = state.get("shape"), state.get("dtype")
        itemsize = _dtype_itemsize(dtype)
        if itemsize is None:
            # neither a literal dtype nor one numpy can build from literals: the walk cannot know how
            # many bytes joblib reads here, so it says so instead of guessing
            self.unresolved.append(self.op_pos)
            self._error("joblib array with a dtype the walk cannot resolve")
        if itemsize is None or itemsize == 0:  # object arrays are written as a complete nested pickle
            if self.depth >= MAX_NESTING:
                self._fail("joblib object arrays nested too deeply")
            inner = type(self)(self.data, self.pos, self.max_ops, self.max_memo, self.depth + 1).run()
            self.globals.extend(inner.globals)
            self.calls.extend(inner.calls)
            self.builds.extend(inner.builds)
            self.unresolved.extend(inner.unresolved_arrays)
            self.errors.extend(f"nested pickle {e}" for e in inner.errors)
            self.pos = inner.end
            return
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            self._fail("joblib array with an unreadable shape")
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self._take(1, "joblib padding length")[0]
            self._take(pad, "joblib padding")
        self._take(math.prod(shape) * itemsize, "joblib array data")


def _is_joblib_wrapper(obj: object) -> bool:
    if not (isinstance(obj, Call) and isinstance(obj.func, Global)):
        return False
    target = (obj.func.module, obj.func.name)
    if target in _COPYREG_MAKERS and isinstance(obj.args, tuple) and obj.args:
        cls = obj.args[0]
        return isinstance(cls, Global) and (cls.module, cls.name) in _JOBLIB_WRAPPERS
    return target in _JOBLIB_WRAPPERS


def _dtype_itemsize(dtype: object) -> int | None:
    """The item size of a pickled ``numpy.dtype(...)`` call: 0 for dtypes holding Python objects, None when
    the arguments are not literals numpy can build a dtype from."""
    states: list[object] = []
    while isinstance(dtype, Build):
        states.append(dtype.state)
        dtype = dtype.obj
    size = _base_itemsize(dtype)
    for state in states:  # a structured dtype's fields (and its flags) come with BUILD
        if not isinstance(state, tuple) or len(state) < 5:
            return None
        if len(state) >= 8 and isinstance(state[7], int) and state[7] & 1:  # NPY_ITEM_REFCOUNT: objects
            return 0
        fields = state[4]
        if fields is not None:
            if not isinstance(fields, dict):
                return None
            for spec in fields.values():
                inner = _dtype_itemsize(spec[0]) if isinstance(spec, tuple) and spec else None
                if inner is None or inner == 0:
                    return inner
    return size


def _base_itemsize(dtype: object) -> int | None:
    if not (isinstance(dtype, Call) and isinstance(dtype.func, Global) and isinstance(dtype.args, tuple)):
        return None
    if (dtype.func.module, dtype.func.name) not in _DTYPE_MAKERS or not dtype.args:
        return None
    spec = _literal(dtype.args[0], 0)
    if spec is None:
        return None
    import numpy

    try:
        # numpy only parses the literal into a dtype here; nothing user-defined can be reached
        resolved = numpy.dtype(cast(Any, spec))
    except (TypeError, ValueError, SyntaxError, OverflowError, RecursionError):
        return None
    return 0 if resolved.hasobject else int(resolved.itemsize)


#: scalar types a pickled dtype may name; anything else stays unresolved
_SCALARS = {
    ("builtins", name): name for name in ("float", "int", "bool", "complex", "object", "str", "bytes")
} | {("__builtin__", name): name for name in ("float", "int", "bool", "complex", "object", "str")}
_NUMPY_SCALARS = frozenset(
    [
        "bool_",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "longdouble",
        "complex64",
        "complex128",
        "clongdouble",
        "object_",
        "bytes_",
        "str_",
        "void",
        "datetime64",
        "timedelta64",
        "intc",
        "uintc",
        "longlong",
        "ulonglong",
        "half",
        "single",
        "double",
    ]
)


def _literal(value: object, depth: int) -> object:
    """``value`` as something numpy.dtype accepts (strings, numbers, tuples/lists/dicts of them and a few
    scalar types), or None."""
    if depth > 8:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    if isinstance(value, Global):
        if (value.module, value.name) in _SCALARS:
            import builtins

            return getattr(builtins, _SCALARS[(value.module, value.name)])
        if value.module in ("numpy", "numpy.core.numerictypes") and value.name in _NUMPY_SCALARS:
            import numpy

            return getattr(numpy, value.name, None)
        return None
    if isinstance(value, (tuple, list)):
        items = [_literal(v, depth + 1) for v in value]
        if any(i is None for i in items):
            return None
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = {k: _literal(v, depth + 1) for k, v in value.items() if isinstance(k, str)}
        if len(pairs) != len(value) or any(v is None for v in pairs.values()):
            return None
        return pairs
    return None
