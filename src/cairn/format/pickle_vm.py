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
PyTorch state dict) keep those items in :attr:`Call.listitems` and :attr:`Call.dictitems`. Byte strings
over :data:`BIG_BYTES` (array data pickled inline) are ``memoryview`` slices of the input, not copies.

joblib files are parsed like ``joblib.load`` reads them: after the ``BUILD`` of a
``joblib.numpy_pickle.NumpyArrayWrapper`` the array follows as raw bytes (skipped) or, for object arrays,
as a nested pickle (walked, its globals and calls merged into the outer result).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BIG_BYTES",
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
#: byte strings longer than this stay read-only ``memoryview`` slices of the input instead of copies
BIG_BYTES = 1 << 20
#: errors kept per walk; later ones are summarised in one line
MAX_ERRORS = 100
#: deepest nesting of immutable values (tuples, frozensets, symbolic nodes): hashing deeper ones would
#: overflow the C stack
MAX_DEPTH = 200


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
    #: every BUILD, in order, including ones later discarded
    builds: tuple[Build, ...] = ()
    #: offsets of joblib arrays whose dtype the walk could not resolve (so neither their size)
    unresolved_arrays: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the pickle ended at ``STOP`` without any error."""
        return self.stopped and not self.errors


def walk(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    max_ops: int = DEFAULT_MAX_OPS,
    max_memo: int = DEFAULT_MAX_MEMO,
    joblib: bool = True,
) -> PickleResult:
    """Walk the one pickle that starts at ``offset`` of ``data``, without executing anything.

    With ``joblib=False`` the raw array bytes that ``joblib.load`` reads after a ``NumpyArrayWrapper`` are
    walked as opcodes, the way plain ``pickle.load`` would read the same file.
    """
    view = (memoryview(data) if not isinstance(data, memoryview) else data).cast("B").toreadonly()
    if not 0 <= offset <= len(view):
        return PickleResult(
            Unknown("offset out of range", offset), (), (), offset, offset, None, ("bad offset",)
        )
    from cairn.format.pickle_ops import Machine  # the machine imports this module's node types

    return Machine(view, offset, max_ops, max_memo, 0 if joblib else -1).run()


def _resync(view: memoryview, start: int) -> int:
    """The next offset at or after ``start`` where a protocol 2–5 pickle could begin (``PROTO n``), or -1."""
    chunk = 1 << 20
    pos = start
    while pos < len(view) - 1:
        block = bytes(view[pos : pos + chunk + 1])
        hit = block.find(b"\x80")
        while 0 <= hit < len(block) - 1:
            if 2 <= block[hit + 1] <= 5:
                return pos + hit
            hit = block.find(b"\x80", hit + 1)
        pos += chunk
    return -1


def walk_all(
    data: bytes | bytearray | memoryview, *, first: PickleResult | None = None, joblib: bool = True
) -> list[PickleResult]:
    """Every pickle in ``data``, back to back.

    After a pickle that did not reach ``STOP`` (or bytes that are no pickle at all) the walk resumes at the
    next ``PROTO`` opcode, so that a payload hidden behind deliberately broken bytes is still seen.
    ``first`` is the already computed ``walk(data)``, to save walking it twice.
    """
    view = (memoryview(data) if not isinstance(data, memoryview) else data).cast("B").toreadonly()
    results: list[PickleResult] = []
    offset = 0
    while offset < len(view) and len(results) < MAX_PICKLES:
        result = first if first is not None and offset == first.start else walk(view, offset, joblib=joblib)
        if result.end > offset or result.stopped:
            results.append(result)
        if result.stopped:
            offset = result.end
            continue
        nxt = _resync(view, max(result.end, offset + 1))
        if nxt < 0:
            break
        offset = nxt
    return results
