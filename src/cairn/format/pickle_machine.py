"""The evaluator behind :func:`cairn.format.pickle_vm.walk`: a stack, a memo and one branch per opcode.

It does what ``pickle.Unpickler`` does, except that imports, calls and ``BUILD`` produce symbolic nodes
(:mod:`cairn.format.pickle_vm`) instead of running anything. Limits (ops, memo, nesting depth, errors kept)
are enforced here, and every declared length is compared with the bytes present before it is sliced.
"""

from __future__ import annotations

import codecs
import math
import struct
from collections.abc import Callable
from typing import Any, NoReturn

from cairn.format.pickle_opcodes import (
    ARG_LINE,
    ARG_NONE,
    ARG_PAIR,
    FIXED,
    LENGTH,
    OPCODES,
)
from cairn.format.pickle_vm import (
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_LINE,
    Build,
    Call,
    Global,
    PersistentRef,
    PickleResult,
    Unknown,
)

__all__ = ["Machine"]

_U4 = struct.Struct("<I")
#: how deep joblib's nested object-array pickles may go
_MAX_NESTING = 4

_JOBLIB_WRAPPERS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
}


class _Stop(Exception):
    """Ends a walk: truncation, an unknown opcode or a spent budget (the reason is already recorded)."""


def _freeze(value: object, depth: int = 0) -> object:
    """A hashable stand-in for a dict key or set member that the symbolic machine could not hash."""
    if depth > MAX_DEPTH:
        return Unknown("nested too deeply", -1)
    try:
        hash(value)
        return value
    except (TypeError, RecursionError):
        pass
    if isinstance(value, list | tuple):
        return tuple(_freeze(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return tuple((_freeze(k, depth + 1), _freeze(v, depth + 1)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(v, depth + 1) for v in value)
    return Unknown(f"unhashable {type(value).__name__}", -1)


class Machine:
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
        raise _Stop

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
                target[_freeze(k)] = v
        elif isinstance(target, Call):
            target.dictitems.extend(pairs)
        else:
            self._error(f"SETITEM(S) on {type(target).__name__}")

    def _extend(self, target: Any, items: list[Any], opcode: str) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, set) and opcode == "ADDITEMS":
            target.update(_freeze(i) for i in items)
        elif isinstance(target, Call):
            target.listitems.extend(items)
        else:
            self._error(f"{opcode} on {type(target).__name__}")

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> PickleResult:
        data, ops, limit = self.data, 0, self.max_ops
        size = len(data)
        dispatch = _DISPATCH
        try:
            while True:
                pos = self.pos
                self.op_pos = pos
                if pos >= size:
                    self._fail("truncated: stream ends before STOP")
                ops += 1
                if ops > limit:
                    self._fail(f"more than {limit} opcodes")
                entry = dispatch.get(data[pos])
                if entry is None:
                    self._fail(f"unknown opcode 0x{data[pos]:02x}")
                self.pos = pos + 1
                if entry(self):
                    self.stopped = True
                    break
        except _Stop:
            pass
        return PickleResult(
            value=self.value,
            globals=tuple(self.globals),
            calls=tuple(self.calls),
            start=self.start,
            end=self.pos,
            protocol=self.protocol,
            errors=tuple(self.errors),
            stopped=self.stopped,
            builds=tuple(self.builds),
        )

    def _arg(self, name: str, kind: int) -> Any:
        fixed = FIXED.get(kind)
        if fixed is not None:
            size, fmt = fixed
            if size > len(self.data) - self.pos:
                self._fail(f"truncated: {name} needs {size} bytes, {len(self.data) - self.pos} left")
            value = struct.unpack_from(fmt, self.data, self.pos)[0]
            self.pos += size
            return value
        if kind == ARG_LINE:
            return self._line(name)
        if kind == ARG_PAIR:
            return self._line(name), self._line(name)
        size, fmt = LENGTH[kind]
        n = struct.unpack(fmt, self._take(size, name))[0]
        return self._take(n, name)

    # -- one method per opcode (a true result ends the walk) ----------------------------------------------
    def op_stop(self, arg: Any) -> bool:
        self.value = self._pop()
        return True

    def op_proto(self, arg: Any) -> None:
        if arg > 5:
            self._error(f"unsupported protocol {arg}")
        self.protocol = arg

    def op_frame(self, arg: Any) -> None:
        if arg > len(self.data) - self.pos:
            self._error(f"FRAME of {arg} bytes runs past the end of the data")

    def op_mark(self, arg: Any) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self, arg: Any) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()  # pickle pops a mark when the stack above it is empty

    def op_pop_mark(self, arg: Any) -> None:
        self._pop_mark()

    def op_dup(self, arg: Any) -> None:
        self.stack.append(self._top())

    def op_none(self, arg: Any) -> None:
        self.stack.append(None)

    def op_newtrue(self, arg: Any) -> None:
        self.stack.append(True)

    def op_newfalse(self, arg: Any) -> None:
        self.stack.append(False)

    def op_value(self, arg: Any) -> None:  # BININT, BININT1, BININT2, BINFLOAT
        self.stack.append(arg)

    def op_number(self, arg: Any) -> None:  # INT, LONG, FLOAT
        name = OPCODES[self.data[self.op_pos]][0]
        self.stack.append(self._number(name, arg))

    def op_long_bin(self, arg: Any) -> None:
        self.stack.append(int.from_bytes(arg, "little", signed=True))

    def op_bytes(self, arg: Any) -> None:
        self.stack.append(bytes(arg))

    def op_bytearray8(self, arg: Any) -> None:
        self.stack.append(bytearray(arg))

    def op_binstring(self, arg: Any) -> None:
        self.stack.append(self._py2str(bytes(arg)))

    def op_string(self, arg: Any) -> None:
        self.stack.append(self._quoted(arg))

    def op_binunicode(self, arg: Any) -> None:
        self.stack.append(self._utf8(bytes(arg)))

    def op_unicode(self, arg: Any) -> None:
        self.stack.append(arg.decode("raw-unicode-escape", errors="replace"))

    def op_empty_dict(self, arg: Any) -> None:
        self.stack.append({})

    def op_empty_list(self, arg: Any) -> None:
        self.stack.append([])

    def op_empty_tuple(self, arg: Any) -> None:
        self.stack.append(())

    def op_empty_set(self, arg: Any) -> None:
        self.stack.append(set())

    def op_tuple_n(self, arg: Any) -> None:  # TUPLE1, TUPLE2, TUPLE3
        n = self.data[self.op_pos] - 0x84
        items = [self._pop() for _ in range(n)]
        items.reverse()
        self.stack.append(self._nested(tuple(items), items))

    def op_tuple(self, arg: Any) -> None:
        items = self._pop_mark()
        self.stack.append(self._nested(tuple(items), items))

    def op_list(self, arg: Any) -> None:
        items = self._pop_mark()  # before self.stack is read: popping the mark replaces it
        self.stack.append(list(items))

    def op_frozenset(self, arg: Any) -> None:
        fs = frozenset(_freeze(i) for i in self._pop_mark())
        self.stack.append(self._nested(fs, fs))

    def op_dict(self, arg: Any) -> None:
        items = self._pop_mark()
        d: dict[Any, Any] = {}
        self._setitems(d, list(zip(items[::2], items[1::2], strict=False)))
        if len(items) % 2:
            self._error("DICT with an odd number of items")
        self.stack.append(d)

    def op_append(self, arg: Any) -> None:
        value = self._pop()
        self._extend(self._top(), [value], "APPEND")

    def op_appends(self, arg: Any) -> None:
        items = self._pop_mark()
        self._extend(self._top(), items, "APPENDS")

    def op_additems(self, arg: Any) -> None:
        items = self._pop_mark()
        self._extend(self._top(), items, "ADDITEMS")

    def op_setitem(self, arg: Any) -> None:
        value = self._pop()
        key = self._pop()
        self._setitems(self._top(), [(key, value)])

    def op_setitems(self, arg: Any) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            self._error("SETITEMS with an odd number of items")
        self._setitems(self._top(), list(zip(items[::2], items[1::2], strict=False)))

    def op_put(self, arg: Any) -> None:
        self._put(self._index(arg))

    def op_binput(self, arg: Any) -> None:
        self._put(arg)

    def op_memoize(self, arg: Any) -> None:
        self._put(len(self.memo))

    def op_get(self, arg: Any) -> None:
        self.stack.append(self._get(self._index(arg)))

    def op_binget(self, arg: Any) -> None:
        self.stack.append(self._get(arg))

    def op_global(self, arg: Any) -> None:
        module, attr = (self._utf8(part) for part in arg)
        self.stack.append(self._global(module, attr, "GLOBAL"))

    def op_stack_global(self, arg: Any) -> None:
        attr = self._pop()
        module = self._pop()
        self.stack.append(self._global(module, attr, "STACK_GLOBAL"))

    def op_ext(self, arg: Any) -> None:
        name = OPCODES[self.data[self.op_pos]][0]
        self._error(f"{name} {arg}: extension registry code, resolved only by the loading process")
        self.stack.append(self._global("<ext>", str(arg), name))

    def op_inst(self, arg: Any) -> None:
        module, attr = (self._utf8(part) for part in arg)
        cls = self._global(module, attr, "INST")
        items = self._pop_mark()
        self.stack.append(self._call(cls, self._nested(tuple(items), items), "INST"))

    def op_obj(self, arg: Any) -> None:
        items = self._pop_mark()
        if not items:
            self._error("OBJ without a class")
            items = [Unknown("missing class", self.op_pos)]
        self.stack.append(self._call(items[0], self._nested(tuple(items[1:]), items[1:]), "OBJ"))

    def op_reduce(self, arg: Any) -> None:
        args = self._pop()
        self.stack.append(self._call(self._pop(), args, "REDUCE"))

    def op_newobj(self, arg: Any) -> None:
        args = self._pop()
        self.stack.append(self._call(self._pop(), args, "NEWOBJ"))

    def op_newobj_ex(self, arg: Any) -> None:
        kwargs = self._pop()
        args = self._pop()
        pair = (args, kwargs)
        self.stack.append(self._call(self._pop(), self._nested(pair, pair), "NEWOBJ_EX"))

    def op_build(self, arg: Any) -> None:
        state = self._pop()
        obj = self._pop()
        build = Build(obj, state, self.op_pos)
        self.builds.append(build)
        self.stack.append(self._nested(build, (obj, state)))
        self._joblib_array(obj, state)

    def op_persid(self, arg: Any) -> None:
        self.stack.append(PersistentRef(self._utf8(arg), self.op_pos))

    def op_binpersid(self, arg: Any) -> None:
        pid = self._pop()
        self.stack.append(self._nested(PersistentRef(pid, self.op_pos), (pid,)))

    def op_next_buffer(self, arg: Any) -> None:
        self.stack.append(Unknown("out-of-band buffer", self.op_pos))

    def op_readonly_buffer(self, arg: Any) -> None:
        pass  # marks the buffer on top of the stack read-only

    # -- hot paths: the opcodes of every torch.save pickle, reading their own small arguments ---------------
    def _byte(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            self._fail("truncated: a 1-byte argument is missing")
        self.pos = pos + 1
        return self.data[pos]

    def hot_binput(self) -> None:
        self._put(self._byte())

    def hot_binget(self) -> None:
        self.stack.append(self._get(self._byte()))

    def hot_binint1(self) -> None:
        self.stack.append(self._byte())

    def hot_short_binunicode(self) -> None:
        n = self._byte()
        pos = self.pos
        if n > len(self.data) - pos:
            self._fail(f"truncated: SHORT_BINUNICODE needs {n} bytes, {len(self.data) - pos} left")
        self.pos = pos + n
        self.stack.append(self._utf8(bytes(self.data[pos : pos + n])))

    def _u4(self) -> int:
        pos = self.pos
        if pos + 4 > len(self.data):
            self._fail("truncated: a 4-byte argument is missing")
        self.pos = pos + 4
        value: int = _U4.unpack_from(self.data, pos)[0]
        return value

    def hot_long_binput(self) -> None:
        self._put(self._u4())

    def hot_long_binget(self) -> None:
        self.stack.append(self._get(self._u4()))

    def hot_binunicode(self) -> None:
        n = self._u4()
        pos = self.pos
        if n > len(self.data) - pos:
            self._fail(f"truncated: BINUNICODE needs {n} bytes, {len(self.data) - pos} left")
        self.pos = pos + n
        self.stack.append(self._utf8(bytes(self.data[pos : pos + n])))

    def hot_mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def hot_reduce(self) -> None:
        stack = self.stack
        if len(stack) >= 2:
            args = stack.pop()
            func = stack.pop()
        else:
            args = self._pop()
            func = self._pop()
        stack.append(self._call(func, args, "REDUCE"))

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
            if self.depth >= _MAX_NESTING:
                self._fail("joblib object arrays nested too deeply")
            inner = Machine(self.data, self.pos, self.max_ops, self.max_memo, self.depth + 1).run()
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


_SHARED = {
    "BININT": "value",
    "BININT1": "value",
    "BININT2": "value",
    "BINFLOAT": "value",
    "INT": "number",
    "LONG": "number",
    "FLOAT": "number",
    "LONG1": "long_bin",
    "LONG4": "long_bin",
    "BINBYTES": "bytes",
    "SHORT_BINBYTES": "bytes",
    "BINBYTES8": "bytes",
    "SHORT_BINSTRING": "binstring",
    "BINSTRING": "binstring",
    "SHORT_BINUNICODE": "binunicode",
    "BINUNICODE": "binunicode",
    "BINUNICODE8": "binunicode",
    "TUPLE1": "tuple_n",
    "TUPLE2": "tuple_n",
    "TUPLE3": "tuple_n",
    "LONG_BINPUT": "binput",
    "LONG_BINGET": "binget",
    "EXT1": "ext",
    "EXT2": "ext",
    "EXT4": "ext",
}


def _handler(name: str, kind: int) -> Callable[[Machine], bool | None]:
    """The function that runs opcode ``name``: a hot path, or the generic argument reader + handler."""
    hot = getattr(Machine, "hot_" + name.lower(), None)
    if hot is not None:
        return hot  # type: ignore[no-any-return]
    op: Callable[[Machine, Any], bool | None] = getattr(Machine, "op_" + _SHARED.get(name, name.lower()))
    if kind == ARG_NONE:
        return lambda m: op(m, None)
    return lambda m: op(m, m._arg(name, kind))


#: opcode byte -> the function that runs it
_DISPATCH: dict[int, Callable[[Machine], bool | None]] = {
    code: _handler(name, kind) for code, (name, kind) in OPCODES.items()
}
