"""Lineage fingerprints of weight files: per-tensor hashes plus small value sketches, and their comparison.

A fingerprint records, for every tensor, its dtype, shape, the sha256 of its bytes and a *sketch*: the
values of :data:`SKETCH_SIZE` elements at evenly spaced positions, read while the bytes stream through
the hash (one sequential read per file, nothing loaded whole). Comparing two fingerprints gives the
byte-weighted share of identical tensors and the byte-weighted cosine similarity of the sketches of the
changed ones, which tells a copy, a dtype-cast/quantized copy, a fine-tune, a partial update (a merged
LoRA, frozen layers) and an unrelated model of the same architecture apart.

Safetensors files are read through :mod:`cairn.format.safetensors`; torch zip checkpoints (``torch.save``
since 1.6) through :mod:`cairn.format.torch_files`, which walks ``data.pkl`` by its opcodes (never
unpickling) and locates every tensor's bytes in its zip member. A tensor's hash is over its elements in
C order, little-endian, so the same tensor hashes alike in both formats. Legacy (non-zip) torch files
raise :class:`~cairn.errors.UnsupportedFormatError`. :func:`fingerprint_blob` decides by content, for
uploads whose name is not known yet; :func:`arch_key` names a model's architecture (tensor names and
shapes, not dtypes), which the hub indexes to find same-architecture candidates.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from cairn.errors import (
    CairnError,
    FormatError,
    LimitExceededError,
    NotFoundError,
    UnsupportedFormatError,
)
from cairn.format.safetensors import DTYPE_SIZES, MAX_HEADER_SIZE, HeaderMemo, read_header_path

__all__ = [
    "MAX_TENSORS",
    "SKETCH_SIZE",
    "WEIGHT_SUFFIXES",
    "Comparison",
    "Fingerprint",
    "StreamingFingerprint",
    "TensorPrint",
    "arch_key",
    "compare",
    "fingerprint_blob",
    "fingerprint_file",
    "fingerprint_model",
    "model_weight_files",
    "sketch_cosine",
]

SKETCH_SIZE = 64
#: the most tensors a fingerprint made from an upload may hold (as many as a lineage search accepts): a
#: file of many tiny tensors would otherwise make a huge row that every lineage request parses again
MAX_TENSORS = 20_000
#: a torch checkpoint whose tensors name more bytes than this many times its size is not fingerprinted:
#: views that repeat bytes (stride 0, many names for one storage) would make hashing unbounded
_TORCH_BYTES_PER_FILE_BYTE = 2
#: file names of training state saved next to the weights, never part of a model's fingerprint
_TRAINING_STATE = ("optimizer", "scheduler", "rng_state", "training_args", "trainer_state", "scaler")
_CHUNK = 8 << 20
_TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", *_TORCH_SUFFIXES)
_NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1",
}  # fmt: skip


@dataclass(frozen=True)
class TensorPrint:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    sha256: str
    sketch: tuple[float, ...]  # empty when the dtype has no numeric decoding here (F8 types)


@dataclass(frozen=True)
class Fingerprint:
    tensors: dict[str, TensorPrint]

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {
                "dtype": t.dtype,
                "shape": list(t.shape),
                "nbytes": t.nbytes,
                "sha256": t.sha256,
                "sketch": list(t.sketch),
            }
            for name, t in self.tensors.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        """Parse a fingerprint posted by a client or stored by the hub; anything malformed (non-finite or
        negative sizes, names that are not Unicode text, missing fields) is a :class:`FormatError`."""
        try:
            out = {
                str(n): TensorPrint(
                    str(t["dtype"]),
                    tuple(_count(d) for d in t["shape"]),
                    _count(t["nbytes"]),
                    str(t["sha256"]),
                    tuple(_finite(v) for v in t["sketch"]),
                )
                for n, t in data.items()
            }
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise FormatError(f"not a fingerprint: {exc!r}") from None
        check_names(out)
        return cls(out)


def _count(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():  # also inf and nan
        raise ValueError(f"{value!r} is not a whole number")
    n = int(value)
    if n < 0:
        raise ValueError(f"{n} is negative")
    return n


def _finite(value: Any) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{value!r} is not a finite number")
    return v


def check_names(names: Any, path: Path | None = None) -> None:
    """Raise :class:`FormatError` for a tensor name that is not Unicode text (a lone surrogate, which
    JSON may escape), since it cannot be stored, indexed or compared."""
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError(f"tensor name {name!r} is not valid Unicode", path=path) from None


def _positions(numel: int) -> list[int]:
    if numel <= SKETCH_SIZE:
        return list(range(numel))
    return [i * numel // SKETCH_SIZE for i in range(SKETCH_SIZE)]


def _decode(raw: bytes, dtype: str) -> list[float]:
    code = _NUMPY_DTYPES.get(dtype)
    if code is None:
        return []
    arr = np.frombuffer(raw, dtype=np.dtype(code))
    if dtype == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    values = arr.astype(np.float64)
    return [float(v) if math.isfinite(v) else 0.0 for v in values]


def fingerprint_file(path: str | Path) -> Fingerprint:
    """Fingerprint one weight file (safetensors, or a torch zip checkpoint), chosen by its suffix."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _TORCH_SUFFIXES:
        if not zipfile.is_zipfile(p):
            raise UnsupportedFormatError(
                "only torch zip checkpoints (torch.save since 1.6) can be fingerprinted, not legacy ones",
                path=p,
            )
        return _fingerprint_torch_zip(p)
    if suffix != ".safetensors":
        raise UnsupportedFormatError("only .safetensors and torch zip files can be fingerprinted", path=p)
    return _fingerprint_safetensors(p)


def fingerprint_blob(path: str | Path, *, headers: HeaderMemo | None = None) -> Fingerprint | None:
    """Fingerprint a file by its content (an upload whose name is not known): a safetensors file or a
    torch zip checkpoint; ``None`` for anything else (including files that fail to parse as either, and
    files of more than :data:`MAX_TENSORS` tensors). ``headers``: parse a safetensors header through
    this memo (one that already parsed the same header answers without parsing it again)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(9)
        if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < p.stat().st_size:
            return _fingerprint_safetensors(p, MAX_TENSORS, headers)
        if head[:4] == b"PK\x03\x04":
            return _fingerprint_torch_zip(p, MAX_TENSORS)
    except (CairnError, OSError, ValueError):
        return None
    return None


class _Streamer:
    """Hashes one tensor's bytes as they stream past and keeps the sketch elements (an element split
    across two chunks is completed from the next one)."""

    def __init__(self, numel: int, item: int) -> None:
        self.wanted = [pos * item for pos in _positions(numel)]
        self.item = item
        self.digest = hashlib.sha256()
        self.picked = bytearray()
        self.done = 0
        self.w = 0
        self.owed = 0  # bytes of a sketch element still to come from the next chunk

    def update(self, chunk: bytes | memoryview) -> None:
        n = len(chunk)
        self.digest.update(chunk)
        if self.owed:
            take = min(self.owed, n)
            self.picked += chunk[:take]
            self.owed -= take
        wanted, w, done = self.wanted, self.w, self.done
        while w < len(wanted) and wanted[w] < done + n:
            piece = chunk[wanted[w] - done : wanted[w] - done + self.item]
            self.picked += piece
            self.owed = self.item - len(piece)
            w += 1
        self.w, self.done = w, done + n

    def result(self, dtype: str, shape: tuple[int, ...], nbytes: int) -> TensorPrint:
        sketch = tuple(_decode(bytes(self.picked), dtype))
        return TensorPrint(dtype, shape, nbytes, self.digest.hexdigest(), sketch)


class StreamingFingerprint:
    """The fingerprint of a safetensors file computed from its bytes as an upload streams them in, so
    that the hub does not read the file a second time. Feed every byte in order with :meth:`update`;
    :meth:`result` is the fingerprint, or ``None`` when the bytes are not a complete, well-formed
    safetensors file, or names more than :data:`MAX_TENSORS` tensors or a name that is not Unicode text
    (the caller then tries the stored file, e.g. for a torch zip). Memory: the header
    (at most :data:`~cairn.format.safetensors.MAX_HEADER_SIZE`, and never more than the declared size).

    The header is parsed through :attr:`headers` (a :class:`~cairn.format.safetensors.HeaderMemo`,
    new unless one is given), which the caller hands on to whatever reads the same file next (the
    hub's scan and parameter counts), so that the header is parsed once."""

    def __init__(self, size: int, *, headers: HeaderMemo | None = None) -> None:
        self.size = size
        self.headers = HeaderMemo() if headers is None else headers
        self.head = bytearray()
        self.state = "head"  # head | data | done | off
        self.pos = 0
        self.data_start = 0
        self.queue: list[Any] = []  # header tensors by offset, not yet finished
        self.current: _Streamer | None = None
        self.out: dict[str, TensorPrint] = {}

    def update(self, data: bytes | memoryview) -> None:
        if self.state in ("off", "done"):
            return
        mv = memoryview(data)
        if self.state == "head":
            mv = self._header(mv)
        while mv and self.state == "data":
            mv = self._feed(mv)

    def _header(self, mv: memoryview) -> memoryview:
        need = 8 if len(self.head) < 8 else 8 + int.from_bytes(self.head[:8], "little")
        take = min(len(mv), need - len(self.head))
        self.head += mv[:take]
        mv = mv[take:]
        if len(self.head) == 8:
            n = int.from_bytes(self.head, "little")
            if n > MAX_HEADER_SIZE or 8 + n > self.size or n < 2:
                self.state = "off"
                return mv
            return self._header(mv) if mv else mv
        if len(self.head) < need:
            return mv
        if _surely_too_many(self.head[8:]):
            self.state = "off"
            return mv
        try:
            header = self.headers.parse(bytes(self.head[8:]), data_size=self.size - len(self.head))
        except CairnError:
            self.state = "off"
            return mv
        try:
            check_names(header.tensors)
        except FormatError:
            self.state = "off"
            return mv
        if len(header.tensors) > MAX_TENSORS:
            self.state = "off"
            return mv
        self.data_start = self.pos = len(self.head)
        self.head = bytearray()
        self.queue = sorted(header.tensors.values(), key=lambda t: (t.begin, t.end))
        self.state = "data"
        self._advance()
        return mv

    def _advance(self) -> None:
        """Finish tensors that end where the stream is, start the next one, or finish the file."""
        while self.queue:
            info = self.queue[0]
            start, end = self.data_start + info.begin, self.data_start + info.end
            if start < self.pos and self.current is None:  # overlapping tensors: read the file instead
                self.state = "off"
                return
            if self.current is None and self.pos == start:
                self.current = _Streamer(info.numel, DTYPE_SIZES[info.dtype])
            if self.current is not None and self.pos == end:
                self.out[info.name] = self.current.result(info.dtype, info.shape, info.nbytes)
                self.current = None
                self.queue.pop(0)
                continue
            return
        self.state = "done"

    def _feed(self, mv: memoryview) -> memoryview:
        info = self.queue[0]
        start, end = self.data_start + info.begin, self.data_start + info.end
        step = min(len(mv), (start if self.current is None else end) - self.pos)
        if self.current is not None:
            self.current.update(mv[:step])
        self.pos += step
        self._advance()
        return mv[step:]

    def result(self) -> Fingerprint | None:
        if self.state == "done" or (self.state == "data" and not self.queue):
            return Fingerprint(dict(self.out))
        return None


def _too_many(count: int, limit: int | None, p: Path) -> None:
    if limit is not None and count > limit:
        raise LimitExceededError(f"{count} tensors: at most {limit} are fingerprinted", path=p)


def _surely_too_many(header_json: bytes | bytearray, limit: int = MAX_TENSORS) -> bool:
    """Whether a safetensors header names more than ``limit`` tensors, by counting its
    ``"data_offsets"`` keys before parsing it (parsing a million entries takes many seconds). A count
    that is too low (keys written with escapes) only means the exact check after parsing decides."""
    return header_json.count(b'"data_offsets"') > limit


def _fingerprint_safetensors(
    p: Path, max_tensors: int | None = None, headers: HeaderMemo | None = None
) -> Fingerprint:
    if max_tensors is not None:
        with p.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= MAX_HEADER_SIZE and _surely_too_many(f.read(n), max_tensors):
                raise LimitExceededError(f"more than {max_tensors} tensors are not fingerprinted", path=p)
    header = read_header_path(p, memo=headers)
    _too_many(len(header.tensors), max_tensors, p)
    check_names(header.tensors, p)
    out: dict[str, TensorPrint] = {}
    with p.open("rb") as f:
        for info in sorted(header.tensors.values(), key=lambda t: t.begin):
            f.seek(header.data_start + info.begin)
            stream = _Streamer(info.numel, DTYPE_SIZES[info.dtype])
            while stream.done < info.nbytes:
                chunk = f.read(min(_CHUNK, info.nbytes - stream.done))
                if not chunk:
                    raise FormatError(f"file ends inside tensor {info.name!r}", path=p)
                stream.update(chunk)
            out[info.name] = stream.result(info.dtype, info.shape, info.nbytes)
    return Fingerprint(out)


def _fingerprint_torch_zip(p: Path, max_tensors: int | None = None) -> Fingerprint:
    """Tensors of a torch zip checkpoint, named by their path in the saved object (a plain state dict
    gives the same names as its safetensors twin).

    The work is bounded by the file's size: each distinct view of a storage is hashed once (tied weights
    are one storage under two names), a checkpoint whose tensors name more than
    ``_TORCH_BYTES_PER_FILE_BYTE`` times the file's bytes (stride-0 ``expand`` views, many aliases) is
    refused before any hashing, and so are compressed members (``torch.save`` stores them uncompressed;
    a deflated member may inflate to far more than the upload)."""
    from cairn.format.arrays import iter_raw, numeric_dtype
    from cairn.format.torch_files import read_torch_zip

    size = p.stat().st_size
    records = [
        rec
        for rec in read_torch_zip(p).inspection.tensors
        if rec.offset is not None and numeric_dtype(rec) and rec.dtype in DTYPE_SIZES
    ]  # meta tensors and types without a byte layout here carry no weights to compare
    _too_many(len(records), max_tensors, p)
    check_names((rec.name for rec in records), p)
    if any(rec.member is not None for rec in records):
        raise UnsupportedFormatError("compressed torch zip members are not fingerprinted", path=p)
    named = sum(rec.numel * DTYPE_SIZES[rec.dtype] for rec in records)
    if named > _TORCH_BYTES_PER_FILE_BYTE * size:
        raise LimitExceededError(
            f"the checkpoint's tensors name {named} bytes, more than its {size} bytes can hold", path=p
        )
    out: dict[str, TensorPrint] = {}
    seen: dict[tuple[Any, ...], TensorPrint] = {}
    with p.open("rb") as f:
        for rec in records:
            view = (rec.offset, rec.storage_offset, rec.shape, rec.strides, rec.dtype, rec.big_endian)
            known = seen.get(view)
            if known is not None:  # another name for the same bytes
                out[rec.name] = known
                continue
            item = DTYPE_SIZES[rec.dtype]
            stream = _Streamer(rec.numel, item)
            nbytes = rec.numel * item
            start = cast(int, rec.offset) + rec.storage_offset * item
            if rec.contiguous and not rec.big_endian and start + nbytes <= size:
                f.seek(start)  # the common case: plain sequential reads, as for safetensors
                while stream.done < nbytes:
                    chunk = f.read(min(_CHUNK, nbytes - stream.done))
                    if not chunk:
                        raise FormatError(f"file ends inside tensor {rec.name!r}", path=p)
                    stream.update(chunk)
            else:  # views with strides, big-endian files: element by element (bounded above)
                for raw in iter_raw(rec, _CHUNK // item):
                    arr = raw if raw.dtype.byteorder in "=<|" else raw.astype(raw.dtype.newbyteorder("<"))
                    stream.update(np.ascontiguousarray(arr).view(np.uint8).data)
            out[rec.name] = seen[view] = stream.result(rec.dtype, rec.shape, nbytes)
    if not out:
        raise UnsupportedFormatError("the torch checkpoint holds no tensors cairn can read", path=p)
    return Fingerprint(out)


def arch_key(fp: Fingerprint) -> str:
    """A digest of the tensor names and shapes (not dtypes: a cast copy has the same architecture)."""
    text = "".join(f"{n}\0{','.join(map(str, t.shape))}\n" for n, t in sorted(fp.tensors.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def model_weight_files(paths: Iterable[str]) -> list[str]:
    """Which of a model's files (paths relative to its root) hold its weights, in path order: the
    top-level ``*.safetensors`` files, else the top-level torch checkpoints other than training state
    (optimizer, scheduler, RNG state, training arguments). Files in subfolders, such as a Trainer's
    ``checkpoint-100/``, are other models."""
    top = sorted(x for x in paths if "/" not in x)
    st = [x for x in top if x.lower().endswith(".safetensors")]
    if st:  # safetensors win when both are present (the usual twin of pytorch_model.bin)
        return st
    return [
        x for x in top if x.lower().endswith(_TORCH_SUFFIXES) and not x.lower().startswith(_TRAINING_STATE)
    ]


def fingerprint_model(path: str | Path) -> Fingerprint:
    """Fingerprint a weight file, or the weights of a model directory (:func:`model_weight_files`:
    top-level safetensors files, else torch checkpoints; shards merged)."""
    p = Path(path)
    if p.is_file():
        return fingerprint_file(p)
    if not p.is_dir():
        raise NotFoundError(f"{p} does not exist")
    files = [p / n for n in model_weight_files(f.name for f in p.iterdir() if f.is_file())]
    if not files:
        raise NotFoundError(f"{p} holds no safetensors or torch weights")
    tensors: dict[str, TensorPrint] = {}
    for f in files:
        for name, t in fingerprint_file(f).tensors.items():
            if name in tensors:
                raise FormatError(f"tensor {name!r} appears in two shards", path=f)
            tensors[name] = t
    return Fingerprint(tensors)


@dataclass(frozen=True)
class Comparison:
    shared: float  # byte share of the child's tensors that the other model has with the same shape
    identical: float  # byte share of those shared tensors that are bit-identical
    similarity: float  # byte-weighted cosine similarity of the changed shared tensors' sketches (1.0 if none)
    dtype_changed: float  # byte share of shared tensors whose dtype differs
    verdict: str  # copy | quantized | partial-update | finetune | weakly-related | unrelated

    @property
    def supports_lineage(self) -> bool:
        return self.verdict not in {"unrelated", "weakly-related"}


def sketch_cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The cosine similarity of two value sketches (0 when they cannot be compared; two all-zero
    sketches are alike)."""
    if not a or len(a) != len(b):
        return 0.0
    x, y = np.asarray(a), np.asarray(b)
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 or ny == 0.0:
        return 1.0 if nx == ny else 0.0
    return float(np.dot(x, y) / (nx * ny))


def compare(child: Fingerprint, other: Fingerprint) -> Comparison:
    """How ``child``'s weights relate to ``other``'s."""
    total = sum(t.nbytes for t in child.tensors.values()) or 1
    shared_b = identical_b = changed_b = dtype_b = 0
    sim_sum = 0.0
    for name, t in child.tensors.items():
        o = other.tensors.get(name)
        if o is None or o.shape != t.shape:
            continue
        shared_b += t.nbytes
        if o.sha256 == t.sha256 and o.dtype == t.dtype:
            identical_b += t.nbytes
            continue
        changed_b += t.nbytes
        dtype_b += t.nbytes if o.dtype != t.dtype else 0
        sim_sum += t.nbytes * sketch_cosine(t.sketch, o.sketch)
    shared = shared_b / total
    identical = identical_b / shared_b if shared_b else 0.0
    similarity = sim_sum / changed_b if changed_b else 1.0
    dtype_changed = dtype_b / shared_b if shared_b else 0.0
    if shared < 0.5:
        verdict = "unrelated"
    elif identical == 1.0:
        verdict = "copy"
    elif dtype_changed > 0.5 and similarity >= 0.98:
        verdict = "quantized"
    elif similarity >= 0.9:
        verdict = "partial-update" if identical >= 0.2 else "finetune"
    elif similarity >= 0.5:
        verdict = "weakly-related"
    else:
        verdict = "unrelated"
    return Comparison(
        round(shared, 4), round(identical, 4), round(similarity, 4), round(dtype_changed, 4), verdict
    )
