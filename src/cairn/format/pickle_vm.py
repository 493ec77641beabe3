"""A symbolic pickle machine: walk a pickle's opcodes with a real stack and memo, never executing anything.

Pickle files run code when loaded: every ``GLOBAL``/``STACK_GLOBAL``/``INST`` imports a name and every
``REDUCE``/``NEWOBJ``/``OBJ``/``BUILD`` calls it. This module decodes the opcode stream of protocols 0–5 with
its own tolerant decoder (``pickletools.genops`` stops at the first broken byte) and evaluates it the way
``pickle.Unpickler`` would, except that imports become :class:`Global` nodes, calls become :class:`Call`
nodes, ``BUILD`` becomes a :class:`Build` node and persistent ids become :class:`PersistentRef` nodes.
Everything else (containers, numbers, strings, bytes) is built for real, so the symbolic value of a
``torch.save`` pickle is a dict of ``Call(func=Global('torch._utils', '_rebuild_tensor_v2'), ...)`` nodes.

Broken input does not stop the walk where continuing is safe: a stack underflow, a missing memo entry or a
missing mark is recorded in :attr:`PickleResult.errors` and replaced by an :class:`Unknown` node; truncation
and unknown opcodes end the walk at that offset. Every length is checked against the bytes actually present
before anything is sliced, and :func:`walk` enforces ``max_ops`` and ``max_memo``.

Calls whose result is later filled by ``APPEND(S)``/``SETITEM(S)``/``ADDITEMS`` (``OrderedDict()`` in every
PyTorch state dict) keep those items in :attr:`Call.listitems` and :attr:`Call.dictitems`.

joblib files are parsed like ``joblib.load`` reads them: after the ``BUILD`` of a
``joblib.numpy_pickle.NumpyArrayWrapper`` the array follows as raw bytes (skipped) or, for object arrays,
as a nested pickle (walked, its globals and calls merged into the outer result).
"""

from __future__ import annotations

import codecs
import math
import struct
from dataclasses import dataclass, field
from typing import Any, NoReturn

__all__ = [
    "DEFAULT_MAX_MEMO",
    "DEFAULT_MAX_OPS",
    "Build",
    "Call",
    "Global",
    "PersistentRef",
    "PickleResult",
    "Unknown",
    "walk",
    "walk_all",
]

#: opcode budget of one walk; a torch.save of a large model needs a few dozen per tensor
DEFAULT_MAX_OPS = 20_000_000
#: memo entries of one walk (the memo index space is otherwise unbounded)
DEFAULT_MAX_MEMO = 4_000_000
#: most pickles :func:`walk_all` reads from one stream
MAX_PICKLES = 10_000
#: the longest text line an opcode argument may have (decimal numbers, module and attribute names)
MAX_LINE = 1 << 20
#: errors kept per walk; later ones are summarised in one line
MAX_ERRORS = 100
#: deepest nesting of immutable values (tuples, frozensets, symbolic nodes): hashing deeper ones would
#: overflow the C stack
MAX_DEPTH = 200
#: how deep joblib's nested object-array pickles may go
_MAX_NESTING = 4


@dataclass(frozen=True)
class Global:
    """An imported name (``GLOBAL``, ``STACK_GLOBAL``, ``INST`` or ``EXT1/2/4``).

    ``module`` is ``"<unresolved>"`` when ``STACK_GLOBAL`` operands were not plain strings, and ``"<ext>"``
    (``name`` being the code) for extension-registry opcodes, whose target only the loading process knows.
    """

    module: str
    name: str
    pos: int


@dataclass(frozen=True)
class Call:
    """A call the unpickler would make: ``func(*args)`` (``REDUCE``, ``NEWOBJ``, ``OBJ``, ``INST``).

    For ``NEWOBJ_EX`` ``args`` is the pair ``(args, kwargs)``.
    """

    func: object
    args: object
    pos: int
    opcode: str
    listitems: list[object] = field(default_factory=list, compare=False, hash=False, repr=False)
    dictitems: list[tuple[object, object]] = field(
        default_factory=list, compare=False, hash=False, repr=False
    )


@dataclass(frozen=True)
class Build:
    """``obj.__setstate__(state)`` (or a ``__dict__`` update) at ``BUILD``."""

    obj: object
    state: object
    pos: int


@dataclass(frozen=True)
class PersistentRef:
    """A persistent id (``PERSID``/``BINPERSID``), resolved by the loader (PyTorch: a tensor storage)."""

    pid: object
    pos: int


@dataclass(frozen=True)
class Unknown:
    """A value the walk could not know: stack underflow, missing memo entry, out-of-band buffer, ..."""

    reason: str
    pos: int


@dataclass(frozen=True)
class PickleResult:
    """What one pickle in a stream would build and which code it would run."""

    value: object
    globals: tuple[Global, ...]
    calls: tuple[Call, ...]
    start: int
    end: int
    protocol: int | None
    errors: tuple[str, ...]
    #: True when the walk reached ``STOP`` (errors before it may still have been recorded)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """True when the pickle ended at ``STOP`` without any error."""
        return self.stopped and not self.errors


# argument kinds of the opcodes
_NONE, _U1, _U2, _I4, _U4, _U8, _F8 = range(7)
_LINE, _PAIR, _STR1, _STR4, _BYTES1, _BYTES4, _BYTES8, _LONG1, _LONG4 = range(7, 16)

# opcode byte, name, argument kind: the protocol 0-5 instruction set (Lib/pickletools.py documents each)
_TABLE = """
28 MARK - 2e STOP - 30 POP - 31 POP_MARK - 32 DUP - 46 FLOAT line 49 INT line 4a BININT i4 4b BININT1 u1
4c LONG line 4d BININT2 u2 4e NONE - 50 PERSID line 51 BINPERSID - 52 REDUCE - 53 STRING line
54 BINSTRING str4 55 SHORT_BINSTRING str1 56 UNICODE line 58 BINUNICODE bytes4 61 APPEND - 62 BUILD -
63 GLOBAL pair 64 DICT - 7d EMPTY_DICT - 65 APPENDS - 67 GET line 68 BINGET u1 69 INST pair 6a LONG_BINGET u4
6c LIST - 5d EMPTY_LIST - 6f OBJ - 70 PUT line 71 BINPUT u1 72 LONG_BINPUT u4 73 SETITEM - 74 TUPLE -
29 EMPTY_TUPLE - 75 SETITEMS - 47 BINFLOAT f8 80 PROTO u1 81 NEWOBJ - 82 EXT1 u1 83 EXT2 u2 84 EXT4 i4
85 TUPLE1 - 86 TUPLE2 - 87 TUPLE3 - 88 NEWTRUE - 89 NEWFALSE - 8a LONG1 long1 8b LONG4 long4
42 BINBYTES bytes4 43 SHORT_BINBYTES bytes1 8c SHORT_BINUNICODE bytes1 8d BINUNICODE8 bytes8
8e BINBYTES8 bytes8 8f EMPTY_SET - 90 ADDITEMS - 91 FROZENSET - 92 NEWOBJ_EX - 93 STACK_GLOBAL -
94 MEMOIZE - 95 FRAME u8 96 BYTEARRAY8 bytes8 97 NEXT_BUFFER - 98 READONLY_BUFFER -
"""
_KINDS = {"-": _NONE, "u1": _U1, "u2": _U2, "i4": _I4, "u4": _U4, "u8": _U8, "f8": _F8, "line": _LINE}
_KINDS |= {"pair": _PAIR, "str1": _STR1, "str4": _STR4, "bytes1": _BYTES1, "bytes4": _BYTES4}
_KINDS |= {"bytes8": _BYTES8, "long1": _LONG1, "long4": _LONG4}
_WORDS = _TABLE.split()
_OPCODES: dict[int, tuple[str, int]] = {
    int(_WORDS[i], 16): (_WORDS[i + 1], _KINDS[_WORDS[i + 2]]) for i in range(0, len(_WORDS), 3)
}

_FIXED = {_U1: (1, "<B"), _U2: (2, "<H"), _I4: (4, "<i"), _U4: (4, "<I"), _U8: (8, "<Q"), _F8: (8, ">d")}
_LENGTH = {_STR1: (1, "<B"), _BYTES1: (1, "<B"), _LONG1: (1, "<B"), _STR4: (4, "<i"), _LONG4: (4, "<i")}
_LENGTH |= {_BYTES4: (4, "<I"), _BYTES8: (8, "<Q")}
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


class _Machine:
    def __init__(self, data: memoryview, start: int, max_ops: int, max_memo: int, depth: int) -> None:
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
        depth = 1 + max((self.depths.get(id(c), (None, 0))[1] for c in children), default=0)
        if depth > MAX_DEPTH:
            self._error(f"values nested deeper than {MAX_DEPTH}")
            return Unknown("nested too deeply", self.op_pos)
        self.depths[id(value)] = (value, depth)
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
        ops = 0
        try:
            while True:
                if self.pos >= len(self.data):
                    self.op_pos = self.pos
                    self._fail("truncated: stream ends before STOP")
                ops += 1
                if ops > self.max_ops:
                    self._fail(f"more than {self.max_ops} opcodes")
                self.op_pos = self.pos
                code = self.data[self.pos]
                spec = _OPCODES.get(code)
                if spec is None:
                    self._fail(f"unknown opcode 0x{code:02x}")
                self.pos += 1
                name, kind = spec
                if self._step(name, kind):
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
        )

    def _arg(self, name: str, kind: int) -> Any:
        if kind == _NONE:
            return None
        if kind in _FIXED:
            size, fmt = _FIXED[kind]
            return struct.unpack(fmt, self._take(size, name))[0]
        if kind == _LINE:
            return self._line(name)
        if kind == _PAIR:
            return self._line(name), self._line(name)
        size, fmt = _LENGTH[kind]
        n = struct.unpack(fmt, self._take(size, name))[0]
        return self._take(n, name)

    def _step(self, name: str, kind: int) -> bool:
        arg = self._arg(name, kind)
        push = self._push
        if name == "STOP":
            self.value = self._pop()
            return True
        if name == "PROTO":
            if arg > 5:
                self._error(f"unsupported protocol {arg}")
            self.protocol = arg
        elif name == "FRAME":
            if arg > len(self.data) - self.pos:
                self._error(f"FRAME of {arg} bytes runs past the end of the data")
        elif name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self._pop_mark()  # pickle pops a mark when the stack above it is empty
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            push(self._top())
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            push({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name in ("BININT", "BININT1", "BININT2", "BINFLOAT"):
            push(arg)
        elif name in ("INT", "LONG", "FLOAT"):
            push(self._number(name, arg))
        elif name in ("LONG1", "LONG4"):
            push(int.from_bytes(arg, "little", signed=True))
        elif name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8"):
            push(bytes(arg))
        elif name == "BYTEARRAY8":
            push(bytearray(arg))
        elif name in ("BINSTRING", "SHORT_BINSTRING"):
            push(self._py2str(bytes(arg)))
        elif name == "STRING":
            push(self._quoted(arg))
        elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
            push(self._utf8(bytes(arg)))
        elif name == "UNICODE":
            push(arg.decode("raw-unicode-escape", errors="replace"))
        elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_SET"):
            push({"EMPTY_DICT": {}, "EMPTY_LIST": [], "EMPTY_TUPLE": (), "EMPTY_SET": set()}[name])
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self._pop() for _ in range(n)]
            push(self._nested(tuple(reversed(items)), items))
        elif name == "TUPLE":
            items = self._pop_mark()
            push(self._nested(tuple(items), items))
        elif name == "LIST":
            push(list(self._pop_mark()))
        elif name == "FROZENSET":
            fs = frozenset(_freeze(i) for i in self._pop_mark())
            push(self._nested(fs, fs))
        elif name == "DICT":
            items = self._pop_mark()
            d: dict[Any, Any] = {}
            self._setitems(d, list(zip(items[::2], items[1::2], strict=False)))
            if len(items) % 2:
                self._error("DICT with an odd number of items")
            push(d)
        elif name == "APPEND":
            value = self._pop()
            self._extend(self._top(), [value], name)
        elif name in ("APPENDS", "ADDITEMS"):
            items = self._pop_mark()
            self._extend(self._top(), items, name)
        elif name == "SETITEM":
            value = self._pop()
            key = self._pop()
            self._setitems(self._top(), [(key, value)])
        elif name == "SETITEMS":
            items = self._pop_mark()
            if len(items) % 2:
                self._error("SETITEMS with an odd number of items")
            self._setitems(self._top(), list(zip(items[::2], items[1::2], strict=False)))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self._put(self._index(arg) if name == "PUT" else arg)
        elif name == "MEMOIZE":
            self._put(len(self.memo))
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            push(self._get(self._index(arg) if name == "GET" else arg))
        elif name == "GLOBAL":
            module, attr = (self._utf8(part) for part in arg)
            push(self._global(module, attr, name))
        elif name == "STACK_GLOBAL":
            attr = self._pop()
            module = self._pop()
            push(self._global(module, attr, name))
        elif name in ("EXT1", "EXT2", "EXT4"):
            self._error(f"{name} {arg}: extension registry code, resolved only by the loading process")
            push(self._global("<ext>", str(arg), name))
        elif name == "INST":
            module, attr = (self._utf8(part) for part in arg)
            cls = self._global(module, attr, name)
            items = self._pop_mark()
            push(self._call(cls, self._nested(tuple(items), items), name))
        elif name == "OBJ":
            items = self._pop_mark()
            if not items:
                self._error("OBJ without a class")
                items = [Unknown("missing class", self.op_pos)]
            push(self._call(items[0], self._nested(tuple(items[1:]), items[1:]), name))
        elif name in ("REDUCE", "NEWOBJ"):
            args = self._pop()
            push(self._call(self._pop(), args, name))
        elif name == "NEWOBJ_EX":
            kwargs = self._pop()
            args = self._pop()
            push(self._call(self._pop(), self._nested((args, kwargs), (args, kwargs)), name))
        elif name == "BUILD":
            state = self._pop()
            obj = self._pop()
            push(self._nested(Build(obj, state, self.op_pos), (obj, state)))
            self._joblib_array(obj, state)
        elif name == "PERSID":
            push(PersistentRef(self._utf8(arg), self.op_pos))
        elif name == "BINPERSID":
            pid = self._pop()
            push(self._nested(PersistentRef(pid, self.op_pos), (pid,)))
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            if name == "NEXT_BUFFER":
                push(Unknown("out-of-band buffer", self.op_pos))
        else:  # pragma: no cover - every opcode in _OPCODES has a branch
            raise AssertionError(name)
        return False

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
        if not (isinstance(obj, Call) and isinstance(obj.func, Global)):
            return
        if (obj.func.module, obj.func.name) not in _JOBLIB_WRAPPERS or not isinstance(state, dict):
            return
        shape, dtype = state.get("shape"), state.get("dtype")
        itemsize = _dtype_itemsize(dtype)
        if itemsize is None:  # object arrays are written as a complete nested pickle
            if self.depth >= _MAX_NESTING:
                self._fail("joblib object arrays nested too deeply")
            inner = _Machine(self.data, self.pos, self.max_ops, self.max_memo, self.depth + 1).run()
            self.globals.extend(inner.globals)
            self.calls.extend(inner.calls)
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


def walk(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    max_ops: int = DEFAULT_MAX_OPS,
    max_memo: int = DEFAULT_MAX_MEMO,
) -> PickleResult:
    """Walk the one pickle that starts at ``offset`` of ``data``, without executing anything."""
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    if not 0 <= offset <= len(view):
        return PickleResult(
            Unknown("offset out of range", offset), (), (), offset, offset, None, ("bad offset",)
        )
    return _Machine(view, offset, max_ops, max_memo, 0).run()


def _resync(raw: bytes, start: int) -> int:
    """The next offset at or after ``start`` where a protocol 2–5 pickle could begin (``PROTO n``), or -1."""
    pos = start
    while True:
        pos = raw.find(b"\x80", pos)
        if pos < 0 or pos + 1 >= len(raw):
            return -1
        if 2 <= raw[pos + 1] <= 5:
            return pos
        pos += 1


def walk_all(data: bytes | bytearray | memoryview) -> list[PickleResult]:
    """Every pickle in ``data``, back to back.

    After a pickle that did not reach ``STOP`` (or bytes that are no pickle at all) the walk resumes at the
    next ``PROTO`` opcode, so that a payload hidden behind deliberately broken bytes is still seen.
    """
    raw = bytes(data) if not isinstance(data, bytes) else data
    results: list[PickleResult] = []
    offset = 0
    while offset < len(raw) and len(results) < MAX_PICKLES:
        result = walk(raw, offset)
        if result.end > offset or result.stopped:
            results.append(result)
        if result.stopped:
            offset = result.end
            continue
        nxt = _resync(raw, max(result.end, offset + 1))
        if nxt < 0:
            break
        offset = nxt
    return results
