"""The evaluator behind :func:`cairn.format.pickle_vm.walk`: the opcode loop and one method per opcode.

Each opcode byte maps to one small function (:data:`_DISPATCH`); the opcodes that every ``torch.save``
pickle consists of read their own arguments (``hot_*``), the rest go through the generic argument decoder.
The loop stops at ``STOP``, at the first unknown opcode or truncation, or when ``max_ops`` is spent.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from cairn.format.pickle_machine import MachineBase, Stop, freeze
from cairn.format.pickle_opcodes import ARG_LINE, ARG_NONE, ARG_PAIR, FIXED, LENGTH, OPCODES
from cairn.format.pickle_vm import BIG_BYTES, Build, PersistentRef, PickleResult, Unknown

__all__ = ["Machine"]

_U4 = struct.Struct("<I")
_MISSING = object()


class Machine(MachineBase):
    """One walk over one pickle: ``Machine(view, start, max_ops, max_memo, depth).run()``."""

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
        except Stop:
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
            unresolved_arrays=tuple(self.unresolved),
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
        # large payloads (array data) stay zero-copy views of the input, so cost does not grow with them
        self.stack.append(arg if len(arg) > BIG_BYTES else bytes(arg))

    def op_bytearray8(self, arg: Any) -> None:
        self.stack.append(arg if len(arg) > BIG_BYTES else bytearray(arg))

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
        fs = frozenset(freeze(i) for i in self._pop_mark())
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
        pos = self.pos
        if pos >= len(self.data):
            self._fail("truncated: a 1-byte argument is missing")
        self.pos = pos + 1
        index, memo, stack = self.data[pos], self.memo, self.stack
        if stack and (index in memo or len(memo) < self.max_memo):
            memo[index] = stack[-1]  # the common case, without the checks _put repeats
        else:
            self._put(index)

    def hot_binget(self) -> None:
        pos = self.pos
        if pos >= len(self.data):
            self._fail("truncated: a 1-byte argument is missing")
        self.pos = pos + 1
        value = self.memo.get(self.data[pos], _MISSING)
        self.stack.append(self._get(self.data[pos]) if value is _MISSING else value)

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
        index, memo, stack = self._u4(), self.memo, self.stack
        if stack and index < self.max_memo and (index in memo or len(memo) < self.max_memo):
            memo[index] = stack[-1]
        else:
            self._put(index)

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
