"""Read PyTorch checkpoints and other pickles by walking their opcodes, never by unpickling.

Formats:

* **torch zip** (``torch.save`` since 1.6): a zip with ``<prefix>/data.pkl`` (the object tree; tensors are
  ``torch._utils._rebuild_tensor_v2(PersistentRef(('storage', torch.<T>Storage, key, location, numel)),
  storage_offset, size, stride, ...)`` calls) and one member ``<prefix>/data/<key>`` per storage, stored
  uncompressed, so every tensor's bytes are addressable by file offset.
* **torch legacy** (``_use_new_zipfile_serialization=False``): five pickles in a row (magic number,
  protocol, sys info, the object tree, the list of storage keys), then for each key in that order an
  8-byte little-endian element count and the storage's bytes.
* **torch tar** (before 1.0): read by :mod:`cairn.format.torch_tar`; :func:`read_torch` dispatches to it.
* **any other pickle** (joblib, scikit-learn): the imported globals and the structure, nothing else.

Tensors are named by their path in the object tree (``state_dict.layer.weight``, ``optimizer.state.0.exp_avg``).
Limits: :data:`MAX_PICKLE_SIZE` for ``data.pkl``, :data:`MAX_DEPTH` nesting, :data:`MAX_NODES` visited nodes
(a pickle can reference one object many times), and every view must fit inside its storage.
"""

from __future__ import annotations

import mmap
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from cairn.errors import FormatError, LimitExceededError
from cairn.format.inspection import Inspection, TensorRecord
from cairn.format.numpy_files import local_data_start
from cairn.format.objtree import TensorRef, collect, qualname
from cairn.format.pickle_vm import PickleResult, walk

__all__ = [
    "MAX_PICKLE_SIZE",
    "TorchCheckpoint",
    "inspect_pickle",
    "inspect_torch_legacy",
    "inspect_torch_zip",
    "read_torch",
]

MAX_PICKLE_SIZE = 256 << 20
MAX_ZIP_MEMBERS = 1_000_000
MAX_STORAGES = 10_000_000


@dataclass(frozen=True)
class TorchCheckpoint:
    """A walked torch checkpoint: the inspection, the walk of its object tree, and the walks of every
    other pickle the file holds (``headers``: the legacy format's magic number, protocol, sys info and key
    list; the tar format's headers), so that ``convert`` can check them all against its allowlist."""

    inspection: Inspection
    pickle: PickleResult
    headers: tuple[PickleResult, ...] = ()


def _check_walk(result: PickleResult, path: str, what: str) -> None:
    if not result.ok:
        first = result.errors[0] if result.errors else "it ends without STOP"
        raise FormatError(f"{what} is not a well-formed pickle: {first}", path=path)


def _records(
    refs: list[TensorRef], locate: dict[str, tuple[int, int, str | None]], path: str, big_endian: bool
) -> list[TensorRecord]:
    """Turn tensor references into records; ``locate[key] = (offset, storage bytes, member or None)``."""
    out = []
    for ref in refs:
        if ref.key is None:  # a meta tensor: shape and dtype only
            out.append(TensorRecord(ref.name, ref.dtype, ref.shape, ref.nbytes, strides=ref.stride))
            continue
        if ref.key not in locate:
            raise FormatError(
                f"tensor {ref.name!r} refers to storage {ref.key!r}, which is missing", path=path
            )
        offset, size, member = locate[ref.key]
        need = ref.span_bytes
        if need > size:
            raise FormatError(
                f"tensor {ref.name!r} reaches byte {need} of storage {ref.key!r}, which holds {size}",
                path=path,
            )
        rec = TensorRecord(ref.name, ref.dtype, ref.shape, ref.nbytes, path, offset, ref.stride)
        out.append(replace(rec, storage_offset=ref.storage_offset, member=member, big_endian=big_endian))
    return out


def read_torch_zip(path: str | Path) -> TorchCheckpoint:
    p = Path(path)
    sp = str(p)
    try:
        with zipfile.ZipFile(p) as zf, p.open("rb") as raw:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise LimitExceededError(f"archive has {len(infos)} members", path=sp)
            pkls = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
            if len(pkls) != 1:
                raise FormatError(f"expected one data.pkl in the archive, found {len(pkls)}", path=sp)
            pkl = pkls[0]
            if pkl.file_size > MAX_PICKLE_SIZE:
                raise LimitExceededError(
                    f"data.pkl of {pkl.file_size} bytes exceeds {MAX_PICKLE_SIZE}", path=sp
                )
            prefix = pkl.filename[: -len("data.pkl")]
            result = walk(zf.read(pkl))
            _check_walk(result, sp, "data.pkl")
            members = {i.filename: i for i in infos}
            order = members.get(prefix + "byteorder")
            big = order is not None and order.file_size < 16 and zf.read(order).strip() == b"big"
            tree = collect(result.value, path=sp)
            locate: dict[str, tuple[int, int, str | None]] = {}
            for key in {ref.key for ref in tree.tensors if ref.key is not None}:
                info = members.get(f"{prefix}data/{key}")
                if info is None or "/" in key:
                    raise FormatError(f"storage {key!r} has no member {prefix}data/{key}", path=sp)
                if info.compress_type == zipfile.ZIP_STORED:
                    start = local_data_start(raw, info, sp)
                    locate[key] = (start, info.file_size, None)
                else:
                    locate[key] = (0, info.file_size, info.filename)
            size = p.stat().st_size
            for key, (start, nbytes, member) in locate.items():
                if member is None and start + nbytes > size:
                    raise FormatError(f"storage {key!r} runs past the end of the file", path=sp)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"not a readable torch zip archive: {exc}", path=sp) from None
    records = _records(tree.tensors, locate, sp, big)
    globals_ = tuple(dict.fromkeys(qualname(g) for g in result.globals))
    info_ = Inspection(sp, "torch-zip", tuple(records), {}, globals=globals_, structure=tree.structure)
    return TorchCheckpoint(info_, result)


def inspect_torch_zip(path: str | Path) -> Inspection:
    return read_torch_zip(path).inspection


def _walk_at(data: memoryview, offset: int, sp: str, what: str) -> PickleResult:
    result = walk(data, offset)
    _check_walk(result, sp, what)
    return result


def read_torch_legacy(path: str | Path) -> TorchCheckpoint:
    p = Path(path)
    sp = str(p)
    size = p.stat().st_size
    with p.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        data = memoryview(mm)
        try:
            return _legacy(data, size, sp)
        finally:
            data.release()


def _legacy(data: memoryview, size: int, sp: str) -> TorchCheckpoint:
    pos = 0
    heads: list[PickleResult] = []
    for what in ("magic number", "protocol version", "sys info"):
        heads.append(_walk_at(data, pos, sp, what))
        pos = heads[-1].end
    main = _walk_at(data, pos, sp, "object tree")
    keys_walk = _walk_at(data, main.end, sp, "storage key list")
    keys = keys_walk.value
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise FormatError("storage key list is not a list of strings", path=sp)
    if len(keys) > MAX_STORAGES:
        raise LimitExceededError(f"{len(keys)} storages", path=sp)
    tree = collect(main.value, path=sp)
    itemsize = {ref.key: ref.itemsize for ref in tree.tensors if ref.key is not None}
    locate: dict[str, tuple[int, int, str | None]] = {}
    pos = keys_walk.end
    for key in keys:
        if pos + 8 > size:
            raise FormatError(f"file ends before storage {key!r}", path=sp)
        numel = int.from_bytes(data[pos : pos + 8], "little")
        if key not in itemsize and numel:
            raise FormatError(f"storage {key!r} is listed but no tensor gives its dtype", path=sp)
        nbytes = numel * itemsize.get(key, 1)
        if pos + 8 + nbytes > size:
            raise FormatError(f"storage {key!r} of {nbytes} bytes runs past the end of the file", path=sp)
        locate[key] = (pos + 8, nbytes, None)
        pos += 8 + nbytes
    records = _records(tree.tensors, locate, sp, False)
    globals_ = tuple(dict.fromkeys(qualname(g) for g in main.globals))
    info = Inspection(sp, "torch-legacy", tuple(records), {}, globals=globals_, structure=tree.structure)
    return TorchCheckpoint(info, main, (*heads, keys_walk))


def inspect_torch_legacy(path: str | Path) -> Inspection:
    return read_torch_legacy(path).inspection


def read_torch(path: str | Path) -> TorchCheckpoint:
    """Read a torch zip, legacy or pre-1.0 tar checkpoint, whichever the magic bytes say."""
    from cairn.format.detect import detect

    kind = detect(path)
    if kind == "torch-zip":
        return read_torch_zip(path)
    if kind == "torch-legacy":
        return read_torch_legacy(path)
    if kind == "tar":
        from cairn.format.torch_tar import read_torch_tar  # it imports this module

        return read_torch_tar(path)
    raise FormatError(f"not a PyTorch checkpoint (detected {kind})", path=path)


def inspect_pickle(path: str | Path) -> Inspection:
    """Any pickle: its imported globals and its structure, nothing loaded. Walk errors become warnings,
    so the globals found before them are still reported."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_PICKLE_SIZE:
        raise LimitExceededError(f"pickle of {size} bytes exceeds {MAX_PICKLE_SIZE}", path=p)
    result = walk(p.read_bytes())
    warnings = [f"pickle walk: {e}" for e in result.errors]
    if not result.stopped:
        warnings.append("the pickle ends before STOP")
    try:
        structure = collect(result.value, path=str(p), tensors=False).structure
    except FormatError as exc:
        structure = None
        warnings.append(exc.detail)
    return Inspection(
        str(p),
        "pickle",
        (),
        {"protocol": result.protocol},
        globals=tuple(dict.fromkeys(qualname(g) for g in result.globals)),
        structure=structure,
        warnings=tuple(warnings),
    )
