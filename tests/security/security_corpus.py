"""Build the hostile corpus at test time: one file per technique and format, each with its expected verdict.

Payloads are harmless when run (they would only create a marker file in the corpus folder), and nothing here
is ever loaded: the tests check that the scanner flags them and that no marker ever appears. Run this file
directly to write the corpus to a folder for manual inspection: ``python tests/security/security_corpus.py DIR``.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CASES",
    "MARKER",
    "Case",
    "build_benign",
    "build_corpus",
    "marker_command",
    "padded_member",
]

MARKER = "cairn-scan-executed"


def marker_command(folder: Path) -> str:
    return f"touch {folder / MARKER}"


@dataclass(frozen=True)
class Case:
    name: str  # file name (extensions deliberately lie in some cases)
    build: Callable[[Path], bytes]
    rule: str  # a rule that must be reported
    construct: str = ""  # substring of that finding's construct, when it matters
    error: bool = False  # the file must (also) be reported as not scanned


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _system(folder: Path, proto: int = 2) -> bytes:
    """``os.system("touch MARKER")`` via GLOBAL + REDUCE."""
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    arg = marker_command(folder).encode()
    return head + _g("os", "system") + b"(X" + struct.pack("<I", len(arg)) + arg + b"tR."


def _proto0(folder: Path) -> bytes:
    return b"cos\nsystem\n(S'" + marker_command(folder).encode() + b"'\ntR."


def _inst(folder: Path) -> bytes:
    return b"(S'" + marker_command(folder).encode() + b"'\nios\nsystem\n."


def _obj(folder: Path) -> bytes:
    return b"(cos\nsystem\nS'" + marker_command(folder).encode() + b"'\no."


def _newobj_ex(folder: Path) -> bytes:
    cmd = marker_command(folder)
    return (
        b"\x80\x04"
        + _unicode("subprocess")
        + _unicode("Popen")
        + b"\x93"
        + b"("
        + _unicode(cmd)
        + b"t}"
        + _unicode("shell")
        + b"\x88s\x92."
    )


def _stack_global_memo(folder: Path) -> bytes:
    # names go through the memo and are popped before STACK_GLOBAL fetches them back
    arg = marker_command(folder)
    return (
        b"\x80\x04"
        + _unicode("os")
        + b"\x940"
        + _unicode("system")
        + b"\x940h\x00h\x01\x93"
        + _unicode(arg)
        + b"\x85R."
    )


def _stack_global_computed(folder: Path) -> bytes:
    # the module name is the result of a call: only a real stack model notices it cannot be resolved
    return b"\x80\x04" + _g("builtins", "str") + _unicode("os") + b"\x85R" + _unicode("system") + b"\x93)R."


def _dotted_name(folder: Path) -> bytes:
    # protocol 4 resolves "torch.load" inside an innocent module attribute by attribute
    return (
        b"\x80\x04"
        + _unicode("torch.nn.functional")
        + _unicode("torch.load")
        + b"\x93"
        + _unicode("x.pt")
        + b"\x85R."
    )


def _ext(folder: Path) -> bytes:
    return b"\x80\x02\x82\x01(" + _unicode(marker_command(folder)) + b"tR."


def _second_pickle(folder: Path) -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0]}, protocol=2) + _system(folder, 4)


def _truncated(folder: Path) -> bytes:
    return _system(folder, 4)[:-3]


def _garbage_then_payload(folder: Path) -> bytes:
    return b"\x80\x02(K\x01\xfe\xff" + _system(folder, 4)


def _garbage_then_truncated_payload(folder: Path) -> bytes:
    return b"\x80\x02(K\x01\xfe\xff" + _system(folder, 4)[:-4]


def _nested_containers(folder: Path) -> bytes:
    inner = _system(folder, 2)[2:-1]  # GLOBAL ... REDUCE without PROTO/STOP
    return b"\x80\x02}(X\x01\x00\x00\x00a](K\x01K\x02" + inner + b"\x85eu."


def _getattr_chain(folder: Path) -> bytes:
    # getattr(__import__("os"), "system")(cmd)
    return (
        b"\x80\x02"
        + _g("builtins", "getattr")
        + b"("
        + _g("builtins", "__import__")
        + b"(X\x02\x00\x00\x00ostR"
        + b"X\x06\x00\x00\x00systemtR("
        + b"X"
        + struct.pack("<I", len(marker_command(folder)))
        + marker_command(folder).encode()
        + b"tR."
    )


def _nested_loads(folder: Path) -> bytes:
    inner = _newobj_ex(folder)
    return b"\x80\x02" + _g("pickle", "loads") + b"(C" + bytes([len(inner)]) + inner + b"tR."


def _build_on_global(folder: Path) -> bytes:
    return b"\x80\x02" + _g("collections", "OrderedDict") + b"}(X\x03\x00\x00\x00keyK\x01ub."


def _unknown_call(folder: Path) -> bytes:
    return b"\x80\x02" + _g("mytraining.utils", "Config") + b")R."


def _torch_zip(members: dict[str, bytes], *, prefix: str = "archive") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(f"{prefix}/{name}", data)
    return buf.getvalue()


def _torch_payload(folder: Path) -> bytes:
    return _torch_zip({"data.pkl": _system(folder, 2), "version": b"3\n", "byteorder": b"little"})


def _torch_member_not_pkl(folder: Path) -> bytes:
    benign = pickle.dumps({}, protocol=2)
    return _torch_zip({"data.pkl": benign, "extra/blob": _system(folder, 4), "version": b"3\n"})


def _patch_local_name(data: bytes, old: bytes, new: bytes) -> bytes:
    """Rename a member in its local header only (same length), so the two headers disagree."""
    idx = data.index(old)  # local headers come before the central directory
    return data[:idx] + new + data[idx + len(old) :]


def _zip_name_mismatch(folder: Path) -> bytes:
    data = _torch_zip({"data.pkl": _system(folder, 2), "version": b"3\n"})
    return _patch_local_name(data, b"archive/data.pkl", b"archive/data.txt")


def _zip_bad_crc(folder: Path) -> bytes:
    data = bytearray(_torch_zip({"data.pkl": _system(folder, 2), "version": b"3\n"}))
    central = data.index(b"PK\x01\x02")
    data[central + 16 : central + 20] = b"\x00\x00\x00\x00"  # CRC-32 in the central directory
    local = data.index(b"PK\x03\x04")
    data[local + 14 : local + 18] = b"\x00\x00\x00\x00"
    return bytes(data)


def _torchscript(folder: Path) -> bytes:
    return _torch_zip(
        {
            "data.pkl": pickle.dumps({}, protocol=2),
            "constants.pkl": _system(folder, 2),
            "code/__torch__/m.py": b"x",
        }
    )


def _legacy_first(folder: Path) -> bytes:
    # torch.load unpickles the first pickle before it checks that it is the magic number
    return _system(folder, 2) + pickle.dumps(1001, protocol=2)


def _legacy_main(folder: Path) -> bytes:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    return magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2) + _system(folder, 2)


def _npy_object(folder: Path) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + _system(folder, 2)


def _npz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", _npy_object(folder))
    return buf.getvalue()


def _tar(members: dict[str, bytes], *, links: dict[str, str] | None = None, mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def _tar_gz(folder: Path) -> bytes:
    return _tar({"model/weights.bin": _system(folder, 2)}, mode="w:gz")


def _gzip_second_member(folder: Path) -> bytes:
    """gunzip reads every member of a gzip file; the payload hides in the second one."""
    import gzip

    return gzip.compress(pickle.dumps({"w": [1.0]}, protocol=2)) + gzip.compress(_system(folder, 4))


def _tar_traversal(folder: Path) -> bytes:
    return _tar({"../../outside.txt": b"hello"})


def _tar_symlink(folder: Path) -> bytes:
    return _tar({"ok.txt": b"hi"}, links={"model.bin": "/etc/passwd"})


def _nested_archives(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner/model.ckpt", _torch_payload(folder))
    return _tar({"outer.zip": buf.getvalue()}, mode="w:gz")


def _zip_traversal(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil.txt", b"x")
    return buf.getvalue()


def _bomb(folder: Path) -> bytes:
    """A deflated member of 8 MiB of zeros (8 KiB on disk); the tests lower the size limit to 1 MiB."""
    zeros = b"\x00" * (8 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = comp.compress(zeros) + comp.flush()
    name, crc = b"zeros.bin", zlib.crc32(zeros)
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), len(zeros), len(name), 0
    )
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(body),
        len(zeros),
        len(name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    cd_offset = len(local) + len(name) + len(body)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    return local + name + body + central + name + eocd


def _seven_zip(folder: Path) -> bytes:
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24


def _keras(config: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return buf.getvalue()


def _keras_lambda(folder: Path) -> bytes:
    layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {"code": "YQ=="}}},
    }
    return _keras({"module": "keras", "class_name": "Sequential", "config": {"layers": [layer]}})


def _keras_module(folder: Path) -> bytes:
    layer = {"module": "os", "class_name": "system", "config": {"name": "x"}, "registered_name": "system"}
    return _keras({"module": "keras", "class_name": "Functional", "config": {"layers": [layer]}})


def _keras_get_file(folder: Path) -> bytes:
    # keras' own get_file as an activation: module is keras, yet loading downloads an arbitrary URL
    fn = {
        "module": "keras.utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": "function",
    }
    layer = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "d", "units": 1, "activation": fn},
    }
    return _keras({"module": "keras", "class_name": "Sequential", "config": {"layers": [layer]}})


def _h5_lambda(folder: Path) -> bytes:
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [{"class_name": "Lambda", "config": {"name": "l", "function": ["YQ==", None, None]}}]
        },
    }
    return b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 + json.dumps(config).encode() + b"\x00" * 100


def _pb_varint(value: int) -> bytes:
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _pb(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _pb_varint(number << 3) + _pb_varint(payload)
    return _pb_varint(number << 3 | 2) + _pb_varint(len(payload)) + payload


def _onnx(initializer: bytes = b"", node_domain: str = "") -> bytes:
    node = (
        _pb(1, b"x") + _pb(2, b"y") + _pb(4, b"Relu") + (_pb(7, node_domain.encode()) if node_domain else b"")
    )
    graph = _pb(1, node) + _pb(2, b"g") + (_pb(5, initializer) if initializer else b"")
    return _pb(1, 8) + _pb(2, b"pytorch") + _pb(7, graph) + _pb(8, _pb(2, 17))


def _onnx_escape(folder: Path) -> bytes:
    entry = _pb(1, b"location") + _pb(2, b"../../../../etc/passwd")
    tensor = _pb(1, 4) + _pb(2, 1) + _pb(8, b"w") + _pb(13, entry) + _pb(14, 1)
    return _onnx(initializer=tensor)


def _onnx_custom(folder: Path) -> bytes:
    return _onnx(node_domain="com.evil.ops")


def _gguf(template: str) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kv += s("tokenizer.chat_template") + struct.pack("<I", 8) + s(template)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + kv


def _gguf_ssti(folder: Path) -> bytes:
    return _gguf(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m.content }}{% endfor %}"
    )


def _safetensors_overlap(folder: Path) -> bytes:
    header = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        }
    ).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 12


def _safetensors_length(folder: Path) -> bytes:
    header = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    return struct.pack("<Q", len(header) + 1000) + header + b"\x00" * 4


def _polyglot(folder: Path) -> bytes:
    return _system(folder, 2) + _torch_zip({"data.pkl": pickle.dumps({}, protocol=2)})


def _load_from_bytes(folder: Path) -> bytes:
    inner = _torch_payload(folder)
    return (
        b"\x80\x02"
        + _g("torch.storage", "_load_from_bytes")
        + b"(B"
        + struct.pack("<I", len(inner))
        + inner
        + b"tR."
    )


def _joblib_object(folder: Path) -> bytes:
    joblib = __import__("joblib")
    numpy = __import__("numpy")

    class _Marker:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (marker_command(folder),))

    buf = io.BytesIO()
    joblib.dump({"w": numpy.ones(4), "o": numpy.array([_Marker()], dtype=object)}, buf)
    return buf.getvalue()


def _joblib_hidden_in_array(folder: Path) -> bytes:
    """A joblib-format pickle whose "array bytes" are opcodes: joblib.load skips them, pickle.load runs them."""
    payload = _system(folder, 2)[2:-1] + b"0"  # GLOBAL ... REDUCE, POP: the outer pickle goes on after it
    dtype = _g("numpy", "dtype") + b"(X\x02\x00\x00\x00u1\x89\x88tR"
    state = (
        b"}(X\x05\x00\x00\x00shapeJ" + struct.pack("<i", len(payload)) + b"\x85X\x05\x00\x00\x00dtype" + dtype
    )
    state += b"X\x05\x00\x00\x00orderX\x01\x00\x00\x00Cu"
    return (
        b"\x80\x02"
        + _g("joblib.numpy_pickle", "NumpyArrayWrapper")
        + b")\x81"
        + state
        + b"b"
        + payload
        + b"."
    )


def _zip_parts(data: bytes) -> tuple[bytes, bytes, int]:
    """Local part, central directory and entry count of a zip written by zipfile."""
    end = data.rfind(b"PK\x05\x06")
    _, _, _, count, size, offset, _ = struct.unpack("<HHHHIIH", data[end + 4 : end + 22])
    return data[:offset], data[offset : offset + size], count


def _shift_directory(directory: bytes, delta: int) -> bytes:
    out = bytearray(directory)
    pos = 0
    while pos < len(out):
        nlen, elen, clen = struct.unpack("<HHH", out[pos + 28 : pos + 34])
        (offset,) = struct.unpack("<I", out[pos + 42 : pos + 46])
        out[pos + 42 : pos + 46] = struct.pack("<I", offset + delta)
        pos += 46 + nlen + elen + clen
    return bytes(out)


def _zip_decoy_directory(folder: Path) -> bytes:
    """PyTorch reads the directory at the declared offset (the payload); zipfile reads a decoy placed right
    before the end record, taking the gap for prepended data."""
    evil = _system(folder, 2)
    benign = (b"\x80\x02}q\x00.").ljust(len(evil), b"\x00")
    real_local, real_dir, count = _zip_parts(_torch_zip({"data.pkl": evil, "version": b"3\n"}))
    decoy_local, decoy_dir, _ = _zip_parts(_torch_zip({"data.pkl": benign, "version": b"3\n"}))
    data = real_local + b"\x00" * len(decoy_dir) + decoy_local
    offset = len(data)
    data += real_dir + _shift_directory(decoy_dir, len(real_local))
    return data + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(real_dir), offset, 0)


def _prefixed(prefix: bytes) -> Callable[[Path], bytes]:
    """A protocol 0 payload behind a harmless first opcode: pickle.load accepts any opcode first."""
    return lambda folder: prefix + _proto0(folder)


def _frame_no_proto(folder: Path) -> bytes:
    body = _proto0(folder)
    return b"\x95" + struct.pack("<Q", len(body)) + body


def _padded(folder: Path) -> bytes:
    """NONE + POP 60,000 times: past the sniffer's opcode limit before the payload."""
    return b"N0" * 60_000 + _proto0(folder)


def padded_member(folder: Path) -> bytes:
    """A deflated data.pkl whose first MiB (all the head sniff reads) is NONE + POP padding."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"N0" * 600_000 + _proto0(folder))
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def _su(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _sg(module: str, name: str) -> bytes:
    return _su(module) + _su(name) + b"\x93"


def _wrapper_state(dtype_ops: bytes, count: int) -> bytes:
    return (
        b"}("
        + _su("subclass")
        + _sg("numpy", "ndarray")
        + _su("shape")
        + b"K"
        + bytes([count])
        + b"\x85"
        + _su("order")
        + _su("C")
        + _su("dtype")
        + dtype_ops
        + _su("allow_mmap")
        + b"\x89u"
    )


def _joblib_tail(folder: Path) -> bytes:
    """POP the array, then os.system(marker): what joblib.load runs right after the array bytes."""
    return b"0" + _sg("os", "system") + _su(marker_command(folder)) + b"\x85R"


def _joblib_newobj_wrapper(folder: Path) -> bytes:
    """The wrapper built by copyreg.__newobj__: joblib still reads 16 raw array bytes after its BUILD,
    which here start with a BINBYTES that would swallow the payload if walked as opcodes."""
    tail = _joblib_tail(folder)
    array = b"B" + struct.pack("<I", 11 + len(tail)) + b"\x00" * 11
    return (
        b"\x80\x04"
        + _sg("copyreg", "__newobj__")
        + _sg("joblib.numpy_pickle", "NumpyArrayWrapper")
        + b"\x85R"
        + _wrapper_state(_sg("numpy", "dtype") + _su("u1") + b"\x85R", 16)
        + b"b"
        + array
        + tail
        + b"."
    )


def _joblib_dtype_float(folder: Path) -> bytes:
    """dtype(builtins.float): 2 float64 = 16 raw bytes, which walked as a nested pickle swallow the payload."""
    tail = _joblib_tail(folder)
    array = b"\x80\x04B" + struct.pack("<I", 9 + len(tail)) + b"\x00" * 9
    return (
        b"\x80\x04"
        + _sg("joblib.numpy_pickle", "NumpyArrayWrapper")
        + b")\x81"
        + _wrapper_state(_sg("numpy", "dtype") + _sg("builtins", "float") + b"\x85R", 2)
        + b"b"
        + array
        + tail
        + b".."
    )


def _tar_v7(folder: Path) -> bytes:
    """A legacy torch tar checkpoint in V7 format: no ustar magic, which tarfile accepts by checksum."""
    raw = bytearray(_tar({n: _system(folder, 2) for n in ("storages", "tensors", "pickle")}))
    for off in range(0, len(raw) - 511, 512):
        if raw[off + 257 : off + 262] == b"ustar":
            raw[off + 257 : off + 265] = b"\x00" * 8
            raw[off + 148 : off + 156] = b" " * 8
            raw[off + 148 : off + 156] = b"%06o\x00 " % sum(raw[off : off + 512])
    return bytes(raw)


def _joblib_zf(folder: Path) -> bytes:
    """joblib <= 0.9.3 "ZF" files: b"ZF", the length as hex padded to 19 bytes, then zlib data."""
    body = _system(folder, 2)
    return b"ZF" + (b"0x%x" % len(body)).ljust(19) + zlib.compress(body)


def _npy_descr(descr: object) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        header = repr({"descr": descr, "fortran_order": False, "shape": (1,)})
        header += " " * (63 - (10 + len(header)) % 64) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + _system(folder, 2)

    return build


CASES: tuple[Case, ...] = (
    *(
        Case(
            f"proto{p}.pkl",
            lambda f, p=p: _system(f, p) if p >= 2 else _proto0(f),
            "pickle-dangerous-global",
            "system",
        )
        for p in range(6)
    ),
    Case("inst.pkl", _inst, "pickle-dangerous-global", "os.system"),
    Case("obj.pkl", _obj, "pickle-dangerous-global", "os.system"),
    Case("newobj_ex.pkl", _newobj_ex, "pickle-dangerous-global", "subprocess.Popen"),
    Case("stack_global_memo.pkl", _stack_global_memo, "pickle-dangerous-global", "os.system"),
    Case("stack_global_computed.pkl", _stack_global_computed, "pickle-unresolved-global"),
    Case("dotted_name.pkl", _dotted_name, "pickle-dangerous-global", "torch.load"),
    Case("ext1.pkl", _ext, "pickle-extension-code"),
    Case("second_pickle.pkl", _second_pickle, "pickle-dangerous-global", "os.system"),
    Case("truncated.pkl", _truncated, "pickle-dangerous-global", "os.system"),
    Case("truncated_breakage.pkl", _truncated, "pickle-malformed"),
    Case("garbage_then_payload.pkl", _garbage_then_payload, "pickle-dangerous-global", "os.system"),
    Case(
        "garbage_then_truncated.pkl", _garbage_then_truncated_payload, "pickle-dangerous-global", "os.system"
    ),
    Case("nested_containers.pkl", _nested_containers, "pickle-dangerous-global", "os.system"),
    Case("getattr_chain.pkl", _getattr_chain, "pickle-computed-call"),
    Case("getattr_global.pkl", _getattr_chain, "pickle-dangerous-global", "builtins.getattr"),
    Case("nested_loads.pkl", _nested_loads, "pickle-dangerous-global", "subprocess.Popen"),
    Case("build_on_global.pkl", _build_on_global, "pickle-build-on-global", "collections.OrderedDict"),
    Case("unknown_call.pkl", _unknown_call, "pickle-unknown-call", "mytraining.utils.Config"),
    Case(
        "model.safetensors", lambda f: _system(f, 4), "pickle-dangerous-global", "os.system"
    ),  # lying extension
    Case("torch_payload.pt", _torch_payload, "pickle-dangerous-global", "os.system"),
    Case("torch_member_not_pkl.pt", _torch_member_not_pkl, "pickle-dangerous-global", "os.system"),
    Case("zip_name_mismatch.pt", _zip_name_mismatch, "zip-name-mismatch"),
    Case("zip_name_mismatch_payload.pt", _zip_name_mismatch, "pickle-dangerous-global", "os.system"),
    Case("zip_bad_crc.pt", _zip_bad_crc, "pickle-dangerous-global", "os.system"),
    Case("zip_bad_crc_flag.pt", _zip_bad_crc, "zip-crc-mismatch"),
    Case("torchscript.pt", _torchscript, "pickle-dangerous-global", "os.system"),
    Case("legacy_first.pt", _legacy_first, "pickle-dangerous-global", "os.system"),
    Case("legacy_main.pt", _legacy_main, "pickle-dangerous-global", "os.system"),
    Case("object.npy", _npy_object, "pickle-dangerous-global", "os.system"),
    Case("object.npz", _npz, "pickle-dangerous-global", "os.system"),
    Case("model.tar.gz", _tar_gz, "pickle-dangerous-global", "os.system"),
    Case("second_member.pkl.gz", _gzip_second_member, "pickle-dangerous-global", "os.system"),
    Case("traversal.tar", _tar_traversal, "archive-path-traversal"),
    Case("symlink.tar", _tar_symlink, "archive-link-escape"),
    Case("nested.tgz", _nested_archives, "pickle-dangerous-global", "os.system"),
    Case("traversal.zip", _zip_traversal, "archive-path-traversal"),
    Case("bomb.zip", _bomb, "archive-decompression-bomb", error=True),
    Case("model.7z", _seven_zip, "", error=True),
    Case("lambda.keras", _keras_lambda, "keras-lambda"),
    Case("module.keras", _keras_module, "keras-custom-module", "os.system"),
    Case("get_file.keras", _keras_get_file, "keras-dangerous-function", "get_file"),
    Case("lambda.h5", _h5_lambda, "keras-lambda"),
    Case("escape.onnx", _onnx_escape, "onnx-external-data-escape", "../"),
    Case("custom.onnx", _onnx_custom, "onnx-custom-domain", "com.evil.ops"),
    Case("ssti.gguf", _gguf_ssti, "gguf-template-injection"),
    Case("overlap.safetensors", _safetensors_overlap, "safetensors-invalid-header"),
    Case("length.safetensors", _safetensors_length, "safetensors-invalid-header"),
    Case("polyglot.pt", _polyglot, "polyglot-pickle-zip"),
    Case("polyglot_payload.pt", _polyglot, "pickle-dangerous-global", "os.system"),
    Case("load_from_bytes.pkl", _load_from_bytes, "pickle-dangerous-global", "os.system"),
    Case("joblib_object.joblib", _joblib_object, "pickle-dangerous-global", "system"),
    Case("joblib_hidden_in_array.joblib", _joblib_hidden_in_array, "pickle-dangerous-global", "os.system"),
    Case("zip_decoy_directory.pt", _zip_decoy_directory, "zip-ambiguous-directory"),
    Case("zip_decoy_directory_payload.pt", _zip_decoy_directory, "pickle-dangerous-global", "os.system"),
    Case("newtrue_pop.pt", _prefixed(b"\x880"), "pickle-dangerous-global", "os.system"),
    Case("short_binbytes_pop.pt", _prefixed(b"C\x01x0"), "pickle-dangerous-global", "os.system"),
    Case("empty_set_pop.pkl", _prefixed(b"\x8f0"), "pickle-dangerous-global", "os.system"),
    Case("frame_no_proto.pkl", _frame_no_proto, "pickle-dangerous-global", "os.system"),
    Case("padded_p0.pkl", _padded, "pickle-dangerous-global", "os.system"),
    Case("joblib_newobj_wrapper.joblib", _joblib_newobj_wrapper, "pickle-dangerous-global", "os.system"),
    Case("joblib_dtype_float.joblib", _joblib_dtype_float, "pickle-dangerous-global", "os.system"),
    Case("legacy_v7.tar.pt", _tar_v7, "pickle-dangerous-global", "os.system"),
    Case("old_joblib_zf.pkl", _joblib_zf, "pickle-dangerous-global", "os.system"),
    Case("descr_object.npy", _npy_descr("object"), "pickle-dangerous-global", "os.system"),
    Case("descr_object_upper.npy", _npy_descr("|O8"), "pickle-dangerous-global", "os.system"),
    Case(
        "descr_object_struct.npy",
        _npy_descr([("a", "<f8"), ("b", "|O")]),
        "pickle-dangerous-global",
        "os.system",
    ),
)


def _normed(torch: Any) -> object:
    """Weight and spectral norm (the hook-based API still found in many published checkpoints)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.nn.Sequential(
            torch.nn.utils.weight_norm(torch.nn.Linear(4, 4)),
            torch.nn.utils.spectral_norm(torch.nn.Linear(4, 2)),
        )


def _models() -> dict[str, object]:
    import torch

    torch.manual_seed(0)
    return {
        "mlp": torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2)
        ),
        "cnn": torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
        ),
        "rnn": torch.nn.LSTM(4, 8, num_layers=2, batch_first=True),
        "transformer": torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2
        ),
        "embedding": torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.LayerNorm(4)),
        "normed": _normed(torch),
        "misc": torch.nn.Sequential(torch.nn.GRU(2, 2), torch.nn.MultiheadAttention(4, 2), torch.nn.PReLU()),
    }


def build_benign(folder: Path) -> None:
    """Write ordinary checkpoints that must scan clean: torch, NumPy, safetensors, joblib, archives."""
    import joblib
    import numpy as np
    import torch
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for name, model in _models().items():
        assert isinstance(model, torch.nn.Module)
        torch.save(model.state_dict(), folder / f"{name}_state.pt")
        torch.save(model, folder / f"{name}_whole.pt")
        torch.save(model.state_dict(), folder / f"{name}_legacy.bin", _use_new_zipfile_serialization=False)
        with warnings.catch_warnings():  # whole modules in the pre-1.6 format, as old checkpoints are
            warnings.simplefilter("ignore")
            torch.save(model, folder / f"{name}_legacy_whole.pt", _use_new_zipfile_serialization=False)
    model = _models()["mlp"]
    assert isinstance(model, torch.nn.Module)
    for opt_name, opt in {
        "adam": torch.optim.AdamW(model.parameters(), lr=1e-3),
        "sgd": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
    }.items():
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
        sched = torch.optim.lr_scheduler.StepLR(opt, 10)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": 3,
                "rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(),
                "generator": np.random.default_rng(0).bit_generator.state,
                "meta": {
                    "loss": 0.25,
                    "tags": ("a", "b"),
                    "dtype": torch.float16,
                    "device": torch.device("cpu"),
                },
            },
            folder / f"train_{opt_name}.ckpt",
        )
    with warnings.catch_warnings():  # torch.jit.script is deprecated, but its archives are still published
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()))
    scripted.save(str(folder / "scripted.pt"))
    # whole RNG and optimizer objects, as some training scripts save them, under protocols 2 and 4
    import random

    model = _models()["mlp"]
    assert isinstance(model, torch.nn.Module)
    objects = {
        "numpy_generator": np.random.default_rng(0),
        "numpy_randomstate": np.random.RandomState(0),
        "python_random": random.Random(0),
        "optimizer": torch.optim.AdamW(model.parameters()),
        "steps": range(10),
    }
    torch.save(objects, folder / "objects_p2.pt", pickle_protocol=2)
    torch.save(objects, folder / "objects_p4.pt", pickle_protocol=4)
    # a transformers-style checkpoint: pytorch_model.bin with the usual dotted parameter names
    sd = {f"encoder.layer.{i}.attention.self.query.weight": torch.randn(4, 4) for i in range(3)}
    sd["embeddings.position_ids"] = torch.arange(8).unsqueeze(0)
    sd["half"] = torch.randn(2).to(torch.bfloat16)
    torch.save(sd, folder / "pytorch_model.bin")
    np.save(folder / "array.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez_compressed(folder / "arrays.npz", a=np.ones(3), b=np.zeros((2, 2), dtype=np.int8))
    with open(folder / "plain.pkl", "wb") as fh:
        pickle.dump(
            {"weights": np.ones(3), "names": ["a", "b"], "set": {1, 2}, "bytes": b"\x00\x01"}, fh, protocol=4
        )
    save_file(
        {"w": np.ones((2, 3), dtype=np.float32)}, str(folder / "model.safetensors"), metadata={"format": "pt"}
    )
    joblib.dump({"coef": np.arange(100.0), "names": np.array(["x", "y"]), "n": 3}, folder / "model.joblib")
    joblib.dump({"coef": np.arange(100.0)}, folder / "model_compressed.joblib", compress=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(folder / "mlp_state.pt", "checkpoints/mlp_state.pt")
    (folder / "bundle.zip").write_bytes(buf.getvalue())
    with tarfile.open(folder / "bundle.tar.gz", "w:gz") as tf:
        tf.add(folder / "cnn_whole.pt", "cnn_whole.pt")
        tf.add(folder / "array.npy", "nested/array.npy")
    (folder / "README.md").write_text("# a model\n")


def build_corpus(folder: Path) -> dict[str, Case]:
    """Write every case into ``folder``; returns them by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Case] = {}
    for case in CASES:
        (folder / case.name).write_bytes(case.build(folder))
        out[case.name] = case
    return out


if __name__ == "__main__":  # pragma: no cover
    build_corpus(Path(sys.argv[1]))
