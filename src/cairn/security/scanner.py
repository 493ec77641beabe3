"""``scan(paths) -> ScanReport``: find each file's format by content and judge it the way its loader reads it.

Data flow: a path (or each file under a folder) is memory-mapped, :func:`cairn.format.detect.sniff`
names its format, and a handler judges it: pickles through :mod:`cairn.format.pickle_vm` and
:mod:`cairn.security.pickle_rules`; archives member by member through :mod:`cairn.security.archives`,
recursing into members (nested archives included) by their content, never their names; the other model
formats through :mod:`cairn.security.model_formats`. Nothing in a file is ever executed.

Findings, scanner errors and skipped files are kept apart (see :mod:`cairn.security.report`); anything the
scanner cannot open or cannot read fully is an error, so it is never taken for clean.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from cairn.format.detect import TORCH_LEGACY_MAGIC, joblib_zfile_start, sniff, unsupported_archive
from cairn.format.pickle_vm import PickleResult, walk, walk_all
from cairn.format.safetensors import HeaderMemo
from cairn.security import archives, model_formats
from cairn.security.archives import ViewFile, ZipMember, find_eocd, member_bytes, read_zip, unsafe_member_name
from cairn.security.archives import decompress as _decompress
from cairn.security.pickle_rules import judge_pickles
from cairn.security.report import Finding, ScanError, ScanReport, Severity, Skipped

__all__ = ["MAX_DEPTH", "scan", "scan_bytes"]

#: how deep archives may nest inside each other
MAX_DEPTH = 6
_MAX_TAR_MEMBERS = 100_000
#: compressed members larger than this are first judged by their head (see ``_Scan._head_suffices``)
_HEAD_BYTES = 1 << 20


class _Scan:
    """Collects the three kinds of result for one :func:`scan` call."""

    def __init__(self, headers: HeaderMemo | None = None) -> None:
        self.headers = headers
        self.findings: list[Finding] = []
        self.errors: list[ScanError] = []
        self.skipped: list[Skipped] = []
        self.scanned: list[str] = []
        self._seen: set[tuple[str, str, str, str]] = set()
        self.budget = 0  # decompressed bytes left for the file being scanned

    def finding(
        self,
        path: str,
        member: str,
        severity: Severity,
        rule: str,
        construct: str,
        message: str,
        offset: int | None,
    ) -> None:
        key = (path, member, rule, construct)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(Finding(path, member, severity, rule, construct, message, offset))

    def report(self) -> ScanReport:
        order = sorted(self.findings, key=lambda f: (-f.severity, f.path, f.member, f.offset or 0))
        return ScanReport(tuple(order), tuple(self.errors), tuple(self.skipped), tuple(self.scanned))

    def guarded(self, data: bytes | memoryview, path: str) -> None:
        """Scan one file; a bug in a format check becomes a scan error for that file, never "clean"."""
        self.budget = archives.MAX_TOTAL_BYTES
        try:
            self.blob(data, path, "", 0)
        except Exception as exc:  # any failure means the file was not fully scanned
            self.errors.append(
                ScanError(path, "", f"internal error while scanning: {type(exc).__name__}: {exc}")
            )

    # -- dispatch -----------------------------------------------------------------------------------------
    def blob(self, data: bytes | memoryview, path: str, member: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.errors.append(
                ScanError(path, member, f"archives nested deeper than {MAX_DEPTH}; not scanned")
            )
            return
        kind = sniff(data)
        if kind == "empty":
            self.skipped.append(Skipped(path, member, "empty"))
            return
        if kind == "unknown":
            if find_eocd(data) >= 0 and read_zip(data)[0]:  # a zip after a prefix: zipfile still opens it
                self.scanned.append(_label(path, member))
                self.zip(data, path, member, depth)
            else:
                self._unknown(data, path, member)
            return
        self.scanned.append(_label(path, member))
        if kind == "pickle":
            self.pickle(data, path, member)
            if find_eocd(data) >= 0 and read_zip(data)[0]:
                emit = self._emitter(path, member)
                emit(Severity.HIGH, "polyglot-pickle-zip", "pickle + zip", _POLYGLOT, 0)
                self.zip(data, path, member, depth)
        elif kind == "zip":
            self.zip(data, path, member, depth)
        elif kind == "tar":
            self.tar(data, path, member, depth)
        elif kind in ("gzip", "bzip2", "xz", "zlib"):
            self.compressed(data, kind, path, member, depth)
        elif kind == "joblib-zfile":
            self.joblib_zfile(data, path, member)
        elif kind == "unsupported-archive":
            name = unsupported_archive(bytes(data[:16])) or "archive"
            self.errors.append(ScanError(path, member, f"{name} archive: cairn cannot open it; not scanned"))
        elif kind == "npy":
            self.npy(data, path, member)
        else:
            model_formats.check(kind, data, self._emitter(path, member), self.headers)

    def _emitter(self, path: str, member: str) -> model_formats.Emit:
        def emit(severity: Severity, rule: str, construct: str, message: str, offset: int | None) -> None:
            self.finding(path, member, severity, rule, construct, message, offset)

        return emit

    # -- pickles ------------------------------------------------------------------------------------------
    def pickle(self, data: bytes | memoryview, path: str, member: str, *, torchscript: bool = False) -> None:
        first = walk(data)
        if first.stopped and first.value == TORCH_LEGACY_MAGIC:
            results = [first]  # PyTorch's legacy format: magic, protocol, sys_info, object, storage keys
            while len(results) < 5 and results[-1].stopped and results[-1].end < len(data):
                results.append(walk(data, results[-1].end))
            flags = [True] * len(results)
            fragments: list[PickleResult] = []
            legacy = True
        else:
            legacy = False
            results, flags, fragments = _stream(walk_all(data, first=first))
        emit = self._emitter(path, member)

        def nested(raw: bytes, pos: int) -> None:
            self.blob(raw, path, f"{member}@{pos}" if member else f"@{pos}", depth=MAX_DEPTH - 1)

        judge_pickles(
            results, emit, torchscript=torchscript, report_breakage=flags, nested=nested, legacy=legacy
        )
        if fragments:  # broken pieces found by resynchronising: random bytes never name os.system by chance
            judge_pickles(
                fragments,
                self._critical_only(path, member, "in a broken fragment"),
                report_breakage=[False] * len(fragments),
            )
        if any(g.name == "NumpyArrayWrapper" for r in results for g in r.globals):
            self._joblib_as_plain_pickle(data, path, member)

    def _unknown(self, data: bytes | memoryview, path: str, member: str) -> None:
        """No known format: still walk it as pickle.load would (a pickle may start with any opcode and
        hide behind padding), reporting only imports of dangerous names, which text and random bytes never
        spell by chance (they easily decode to computed calls or extension codes)."""
        results = walk_all(data)
        emit = self._emitter(path, member)

        def named(severity: Severity, rule: str, construct: str, message: str, offset: int | None) -> None:
            if rule == "pickle-dangerous-global":
                emit(severity, rule, construct, f"{message} (in a file of no known format)", offset)

        before = len(self.findings)
        judge_pickles(results, named, report_breakage=[False] * len(results))
        if len(self.findings) > before:
            self.scanned.append(_label(path, member))
        elif not member:  # inside archives, non-model members are simply part of what was scanned
            self.skipped.append(Skipped(path, member, "not a model or archive format"))

    def _critical_only(self, path: str, member: str, note: str) -> model_formats.Emit:
        emit = self._emitter(path, member)

        def critical(severity: Severity, rule: str, construct: str, message: str, offset: int | None) -> None:
            if severity is Severity.CRITICAL:
                emit(severity, rule, construct, f"{message} ({note})", offset)

        return critical

    def _joblib_as_plain_pickle(self, data: bytes | memoryview, path: str, member: str) -> None:
        """joblib.load skips the raw array bytes, but pickle.load (or torch.load) would run them as opcodes.

        Array data decodes to garbage opcodes, so only critical findings of that reading are reported;
        like pickle.load, the reading stops at the first broken opcode, so its cost does not grow with
        the array bytes.
        """
        plain = [walk(data, joblib=False)]  # pickle.load stops at the first error: no resynchronising
        while plain[-1].stopped and plain[-1].end < len(data) and len(plain) < 100:
            plain.append(walk(data, plain[-1].end, joblib=False))
        critical = self._critical_only(path, member, "when read by plain pickle.load")
        judge_pickles(plain, critical, report_breakage=[False] * len(plain))

    def npy(self, data: bytes | memoryview, path: str, member: str) -> None:
        emit = self._emitter(path, member)
        start = model_formats.npy_pickle_offset(data, emit)
        if start is not None:
            results, flags, fragments = _stream(walk_all(data[start:]))
            judge_pickles(results, emit, report_breakage=flags)
            critical = self._critical_only(path, member, "in a broken fragment")
            judge_pickles(fragments, critical, report_breakage=[False] * len(fragments))

    # -- archives -----------------------------------------------------------------------------------------
    def zip(self, data: bytes | memoryview, path: str, member: str, depth: int) -> None:
        view = memoryview(data)
        members, anomalies = read_zip(view)
        emit = self._emitter(path, member)
        if not members:
            detail = anomalies[0].detail if anomalies else "no members"
            self.errors.append(ScanError(path, member, f"zip archive could not be read: {detail}"))
            return
        for a in anomalies:
            sev = (
                Severity.HIGH
                if a.kind in ("name-mismatch", "overlap", "ambiguous-directory")
                else Severity.MEDIUM
            )
            emit(sev, f"zip-{a.kind}", a.member or "(directory)", f"{a.detail}; {_DIFFERENTIAL}", None)
        names = [m.name for m in members]
        torchscript = any("/code/" in n or n.endswith("constants.pkl") for n in names)
        is_torch = any(n.endswith("data.pkl") for n in names)
        if torchscript:
            emit(Severity.LOW, "torchscript-code", "code/", _TORCHSCRIPT, None)
        if "config.json" in names and any(n.endswith(".h5") or n == "metadata.json" for n in names):
            keras_member = members[names.index("config.json")]
            raw, _ = member_bytes(view, keras_member)
            model_formats.check_keras_config(bytes(raw), emit)
        for m in members:
            if m.name.endswith("/"):
                continue
            inner = f"{member}/{m.name}" if member else m.name
            memit = self._emitter(path, inner)
            if unsafe_member_name(m.name):
                memit(Severity.HIGH, "archive-path-traversal", m.name, _TRAVERSAL, None)
            if m.encrypted:
                self.errors.append(ScanError(path, inner, "encrypted member; not scanned"))
                continue
            storage = is_torch and _is_storage(m.name)
            plausible = m.size <= archives.MAX_MEMBER_BYTES and m.size <= archives.BOMB_RATIO * max(
                m.compressed_size, 1
            )
            if (
                m.method != 0
                and m.size > _HEAD_BYTES
                and plausible
                and self._head_suffices(view, m, path, inner)
            ):
                continue
            if m.method != 0 and self.budget <= 0:
                self.errors.append(
                    ScanError(path, inner, "decompression budget of the file spent; not scanned")
                )
                continue
            content, problem = member_bytes(view, m, check_crc=not storage)
            if m.method != 0:
                self.budget -= len(content)
            if problem == "bomb":
                memit(Severity.HIGH, "archive-decompression-bomb", m.name, _BOMB, None)
                self.errors.append(
                    ScanError(path, inner, "member expands past the size limit; not fully scanned")
                )
                continue
            if problem == "too-large":
                self.errors.append(ScanError(path, inner, "member larger than the size limit; not scanned"))
                continue
            if problem == "crc-mismatch":
                memit(
                    Severity.MEDIUM,
                    "zip-crc-mismatch",
                    m.name,
                    f"CRC-32 does not match; {_DIFFERENTIAL}",
                    None,
                )
            elif problem:
                self.errors.append(ScanError(path, inner, f"{problem}; not scanned"))
                continue
            if storage:  # tensor bytes: PyTorch never unpickles them; judge only a complete hidden pickle
                if len(content) > 1 and content[0] == 0x80 and 2 <= content[1] <= 5:
                    hidden = walk(content)
                    if hidden.ok:
                        judge_pickles([hidden], memit)
                continue
            if m.name.endswith((".pkl", ".debug_pkl")):
                self.scanned.append(_label(path, inner))
                self.pickle(content, path, inner, torchscript=torchscript)
            else:
                self.blob(content, path, inner, depth + 1)

    def _head_suffices(self, view: memoryview, m: ZipMember, path: str, inner: str) -> bool:
        """Judge a big compressed member by its first MiB when its format needs no more (a plain NumPy
        array, or data that is no model format), so that scan time does not grow with tensor bytes."""
        head, problem = member_bytes(view, m, check_crc=False, limit=_HEAD_BYTES)
        if problem not in ("", "bomb", "too-large"):
            return False
        kind = sniff(head)
        if kind == "npy" and model_formats.npy_pickle_offset(head, self._emitter(path, inner)) is None:
            self.scanned.append(_label(path, inner))
            return True
        return False  # a head that sniffs "unknown" may still be a pickle behind padding: read it all

    def tar(self, data: bytes | memoryview, path: str, member: str, depth: int) -> None:
        try:
            with tarfile.open(fileobj=ViewFile(memoryview(data)), mode="r:") as tf:
                for count, info in enumerate(tf):
                    if count >= _MAX_TAR_MEMBERS:
                        self.errors.append(ScanError(path, member, "too many tar members; rest not scanned"))
                        return
                    inner = f"{member}/{info.name}" if member else info.name
                    memit = self._emitter(path, inner)
                    if unsafe_member_name(info.name):
                        memit(Severity.HIGH, "archive-path-traversal", info.name, _TRAVERSAL, None)
                    if info.issym() or info.islnk():
                        target = info.linkname
                        if unsafe_member_name(target) or os.path.isabs(target):
                            memit(
                                Severity.HIGH, "archive-link-escape", f"{info.name} -> {target}", _LINK, None
                            )
                        continue
                    if info.isdev() or info.isfifo():
                        memit(Severity.MEDIUM, "archive-special-file", info.name, _SPECIAL, None)
                        continue
                    if not info.isfile():
                        continue
                    if info.sparse is None and info.offset_data + info.size <= len(data):
                        content: bytes | memoryview = memoryview(data)[
                            info.offset_data : info.offset_data + info.size
                        ]
                    else:  # GNU sparse members: let tarfile assemble them
                        fh = tf.extractfile(info)
                        content = fh.read() if fh is not None else b""
                    self.blob(content, path, inner, depth + 1)
        except (tarfile.TarError, EOFError, OSError) as exc:
            self.errors.append(ScanError(path, member, f"tar archive could not be read: {exc}"))

    def joblib_zfile(self, data: bytes | memoryview, path: str, member: str) -> None:
        """joblib.load reads an old "ZF" file (joblib <= 0.9) by zlib-decompressing it and unpickling."""
        start = joblib_zfile_start(bytes(data[:64])) or 0
        out, problem = _decompress(
            memoryview(data)[start:], "zlib", min(archives.MAX_MEMBER_BYTES, max(self.budget, 0))
        )
        self.budget -= len(out or b"")
        inner = f"{member}/<zfile>" if member else "<zfile>"
        if out is None:
            self.errors.append(ScanError(path, member, f"joblib ZF file: {problem}; not scanned"))
            return
        if problem == "bomb":
            self._emitter(path, member)(Severity.HIGH, "archive-decompression-bomb", "zfile", _BOMB, None)
        if problem:
            self.errors.append(
                ScanError(path, member, "stream expands past the size limit; not fully scanned")
            )
            return
        self.scanned.append(_label(path, inner))
        self.pickle(out, path, inner)

    def compressed(self, data: bytes | memoryview, kind: str, path: str, member: str, depth: int) -> None:
        out, problem = _decompress(data, kind, min(archives.MAX_MEMBER_BYTES, max(self.budget, 0)))
        self.budget -= len(out or b"")
        inner = f"{member}/<{kind}>" if member else f"<{kind}>"
        if out is None and kind == "zlib":  # two bytes that only looked like a zlib header
            if not member:
                self.skipped.append(Skipped(path, member, "not a model or archive format"))
            return
        if out is None:
            self.errors.append(ScanError(path, member, f"{problem}; not scanned"))
            return
        if problem == "bomb":
            self._emitter(path, member)(Severity.HIGH, "archive-decompression-bomb", kind, _BOMB, None)
            self.errors.append(
                ScanError(path, member, "stream expands past the size limit; not fully scanned")
            )
            return
        self.blob(out, path, inner, depth + 1)


def _stream(results: list[PickleResult]) -> tuple[list[PickleResult], list[bool], list[PickleResult]]:
    """Split a stream's pickles: back-to-back ones (their breakage counts) and resynchronised ones that
    walk cleanly are judged fully; broken resynchronised fragments only for critical findings."""
    kept: list[PickleResult] = []
    flags: list[bool] = []
    fragments: list[PickleResult] = []
    for i, r in enumerate(results):
        back_to_back = i == 0 or (results[i - 1].stopped and results[i - 1].end == r.start)
        if back_to_back or r.ok:
            kept.append(r)
            flags.append(back_to_back)
        else:
            fragments.append(r)
    return kept, flags, fragments


def _is_storage(name: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 2 and parts[-2] == "data" and parts[-1].isdigit()


def _label(path: str, member: str) -> str:
    return f"{path}#{member}" if member else path


def _files(paths: Iterable[str | os.PathLike[str]], scan: _Scan) -> Iterable[Path]:
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            root = p.resolve()
            for q in sorted(p.rglob("*")):
                if q.is_symlink():
                    _check_link(q, root, scan)
                elif q.is_file():
                    yield q
        elif p.is_file():
            yield p
        else:
            scan.errors.append(ScanError(str(p), "", "no such file or folder"))


def _check_link(link: Path, root: Path, scan: _Scan) -> None:
    """Links are not followed; one that leaves the scanned folder is how a model reads other files
    (ONNX external data, a weights file that is really /etc/passwd)."""
    target = link.resolve()
    if target != root and root not in target.parents:
        scan.finding(str(link), "", Severity.HIGH, "path-symlink-escape", f"-> {target}", _SYMLINK, None)


def scan(paths: Iterable[str | os.PathLike[str]], *, headers: HeaderMemo | None = None) -> ScanReport:
    """Scan files and folders (recursively) without executing anything in them. ``headers``: parse
    safetensors headers through this memo (the hub passes one per upload, and reads the same header
    through it for the upload's parameter counts and lineage fingerprint)."""
    s = _Scan(headers)
    for p in _files(paths, s):
        try:
            with open(p, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size == 0:
                    s.skipped.append(Skipped(str(p), "", "empty"))
                    continue
                mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            s.errors.append(ScanError(str(p), "", f"cannot read: {exc.strerror or exc}"))
            continue
        view = memoryview(mm)
        try:
            s.guarded(view, str(p))
        finally:
            view.release()
            with contextlib.suppress(BufferError):  # a slice still referenced: released when collected
                mm.close()
    return s.report()


def scan_bytes(data: bytes, name: str = "<bytes>") -> ScanReport:
    """Scan an in-memory file (an upload) as if it were a file called ``name``."""
    s = _Scan()
    s.guarded(data, name)
    return s.report()


_POLYGLOT = "the file is both a pickle and a zip archive: loaders disagree on what it is"
_DIFFERENTIAL = "PyTorch's reader loads it while strict readers refuse it, a known scanner bypass"
_TORCHSCRIPT = "TorchScript archive: torch.jit.load compiles and runs the code in code/"
_TRAVERSAL = "member path escapes the extraction folder (absolute or '..')"
_LINK = "link points outside the extraction folder"
_SPECIAL = "device or FIFO member: extraction creates special files"
_SYMLINK = (
    "symbolic link inside the model folder points outside it: loading reads files the model does not own"
)
_BOMB = "decompression bomb: expands past the size limit"
