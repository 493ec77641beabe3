"""The state of a symbolic pickle walk and the operations on it: stack, marks, memo, limits, decoding.

:class:`cairn.format.pickle_ops.Machine` runs the opcodes on top of this. Like ``pickle.Unpickler`` it keeps
a stack, a stack of marks and a memo, except that imports, calls and ``BUILD`` produce symbolic nodes
(:mod:`cairn.format.pickle_vm`) instead of running anything. Limits (memo, nesting depth, errors kept) are
enforced here, and every declared length is compared with the bytes present before it is sliced.
"""

from __future__ import annotations

import codecs
import math
from typing import Any, NoReturn

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
        """After a NumpyArrayWrapper's BUILD joblib reads the array itself; skip it as joblib does."""
        if self.depth < 0 or not (isinstance(obj, Call) and isinstance(obj.func, Global)):
            return
        if (obj.func.module, obj.func.name) not in _JOBLIB_WRAPPERS or not isinstance(state, dict):
            return
        shape, dtype = state.get("shape"), state.get("dtype")
        itemsize = _dtype_itemsize(dtype)
        if itemsize is None:  # object arrays are written as a complete nested pickle
            if self.depth >= MAX_NESTING:
                self._fail("joblib object arrays nested too deeply")
            inner = type(self)(self.data, self.pos, self.max_ops, self.max_memo, self.depth + 1).run()
            self.globals.extend(inner.globals)
            self.calls.extend(inner.calls)
            self.builds.extend(inner.builds)
            self.errors.extend(f"nested pickle {e}" for e in inner.errors)
            self.pos = inner.end
            return
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            self._fail("joblib array with an unreadable shape")
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self._take(1, "joblib padding length")[0]
            self._take(pad, "joblib padding")
        self._take(math.prod(shape) * itemsize, "joblib array data")


def _dtype_itemsize(dtype: object) -> int | None:
    """The item size of a pickled ``numpy.dtype(code, ...)`` call, None for object or unknown dtypes."""
    while isinstance(dtype, Build):
        dtype = dtype.obj
    if not (isinstance(dtype, Call) and isinstance(dtype.args, tuple) and dtype.args):
        return None
    code = dtype.args[0]
    if not isinstance(code, str):
        return None
    code = code.lstrip("<>|=")
    if code == "?":
        return 1
    kind, digits = code[:1], code[1:]
    if kind not in set("bBiufcSUVmMa") or not digits.isdigit():
        return None
    return int(digits) * (4 if kind == "U" else 1)
