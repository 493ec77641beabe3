"""Checks for the model formats that are not pickles: NumPy, Keras, ONNX, GGUF, safetensors, HDF5.

Each check reads only headers and metadata, with every length bounded before it is used, and reports what
could run code or reach outside the model when the file is loaded:

* NumPy ``.npy``: object arrays are pickles (returned to the caller to walk);
* Keras ``config.json`` (in ``.keras`` zips, or the ``model_config`` JSON inside ``.h5``): ``Lambda`` layers
  and serialised lambdas carry Python bytecode; ``module``/``registered_name`` reach custom code;
* ONNX: external-data paths that leave the model folder, and operators from custom domains;
* GGUF: chat templates (Jinja) that reach Python internals through template syntax;
* safetensors: headers that break the format's rules (the loader refuses them; the file lies).
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import struct
from collections.abc import Callable, Iterator
from typing import Any, cast

from cairn.errors import FormatError
from cairn.format.protobuf import fields
from cairn.format.safetensors import HeaderMemo, parse_header
from cairn.security.report import Severity

__all__ = ["Emit", "check", "check_keras_config", "find", "npy_pickle_offset"]

Emit = Callable[[Severity, str, str, str, int | None], None]

_MAX_JSON = 64 << 20
_MAX_H5_JSON = 8 << 20  # a Keras model_config attribute is far smaller
_MAX_NPY_HEADER = 10_000  # numpy's own default limit
_SAFE_KERAS_MODULES = ("keras", "tensorflow.keras", "tf_keras", "keras_nlp", "keras_hub", "keras_cv")
# Keras 3 serialises function references as {"class_name": "function", "module": ..., "config": NAME};
# these names reach files, the network or unsafe loading even from inside the keras package
_DANGEROUS_KERAS_FUNCTIONS = {
    "get_file",
    "enable_unsafe_deserialization",
    "load_model",
    "load_weights",
    "exec",
    "eval",
}
_ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training", "com.microsoft"}
# Jinja constructs that reach Python objects beyond the template's data: the server-side template
# injection vocabulary (dunder attributes, attribute filters on strings, well-known escape globals)
_SSTI = re.compile(
    r"__(class|mro|base|bases|subclasses|globals|builtins|import|init|dict|getattribute|code|func|self|module)__"
    r"|\|\s*attr\s*\(|\b(lipsum|cycler|joiner|namespace|url_for|get_flashed_messages|config|request)\s*[\.\[]"
    r"|\b(os|subprocess|sys|importlib)\s*\.|\b(popen|eval|exec|__import__|getattr|system)\s*\(",
)


def check(kind: str, data: bytes | memoryview, emit: Emit, headers: HeaderMemo | None = None) -> None:
    """Judge one file of ``kind`` (as named by :func:`cairn.format.detect.sniff`); ``headers``: parse
    a safetensors header through it, so that a caller reading the same header next need not parse it."""
    if kind == "safetensors":
        _safetensors(data, emit, headers)
    elif kind == "gguf":
        _gguf(data, emit)
    elif kind == "hdf5":
        _hdf5(data, emit)
    elif kind == "onnx":
        _onnx(data, emit)


# -- NumPy -----------------------------------------------------------------------------------------------
def npy_pickle_offset(data: bytes | memoryview, emit: Emit) -> int | None:
    """Where the pickle of an object array starts, or None for plain arrays (or a broken header)."""
    if len(data) < 10:
        emit(Severity.MEDIUM, "npy-malformed", "header", "truncated .npy header", 0)
        return None
    major = data[6]
    size_len = 2 if major == 1 else 4
    hlen = int.from_bytes(data[8 : 8 + size_len], "little")
    start = 8 + size_len
    if hlen > _MAX_NPY_HEADER or start + hlen > len(data):
        emit(
            Severity.MEDIUM,
            "npy-malformed",
            "header",
            f"header length {hlen} is invalid or over the limit",
            8,
        )
        return None
    try:
        header = ast.literal_eval(bytes(data[start : start + hlen]).decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        emit(Severity.MEDIUM, "npy-malformed", "header", "header is not a Python literal", start)
        return None
    if not isinstance(header, dict) or "descr" not in header:
        emit(Severity.MEDIUM, "npy-malformed", "header", "header lacks descr", start)
        return None
    if not _has_object(header["descr"]):
        return None
    emit(Severity.LOW, "npy-object-array", "dtype=object", _NPY_OBJECT, start)
    return start + hlen


def _has_object(descr: object) -> bool:
    """True when numpy.load would unpickle the data: the descr is an object dtype by any spelling
    ('|O', 'object', 'O8', a field of one), or one numpy cannot read (counted as object, never as safe)."""
    import warnings

    import numpy

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # descr_to_dtype only builds a dtype from the literal; it imports and runs nothing
            return bool(numpy.lib.format.descr_to_dtype(cast(Any, descr)).hasobject)
    except Exception:  # any descr numpy rejects: judge the data as the worst case
        return True


# -- Keras -----------------------------------------------------------------------------------------------
def check_keras_config(raw: bytes, emit: Emit) -> None:
    """Judge a Keras model config (the JSON of ``config.json`` or ``model_config``)."""
    if len(raw) > _MAX_JSON:
        emit(Severity.MEDIUM, "keras-config-too-large", "config.json", "config over the size limit", None)
        return
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        emit(Severity.MEDIUM, "keras-config-malformed", "config.json", "model config is not valid JSON", None)
        return
    for node in _dicts(doc):
        cls = node.get("class_name")
        if cls in ("Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"):
            name = _layer_name(node)
            sev = Severity.CRITICAL if cls in ("Lambda", "__lambda__") else Severity.MEDIUM
            emit(sev, "keras-lambda", f"{cls} {name}", _LAMBDA, None)
        module = node.get("module")
        if isinstance(module, str) and module and not module.startswith(_SAFE_KERAS_MODULES):
            root = module.split(".", 1)[0]
            dangerous = root in {"os", "subprocess", "builtins", "sys", "importlib", "posix", "nt", "pickle"}
            sev = Severity.CRITICAL if dangerous else Severity.HIGH
            emit(sev, "keras-custom-module", f"{module}.{cls}", _MODULE, None)
        if cls == "function" and node.get("config") in _DANGEROUS_KERAS_FUNCTIONS:
            emit(
                Severity.CRITICAL,
                "keras-dangerous-function",
                f"{module}.{node.get('config')}",
                _FUNCTION,
                None,
            )
        registered = node.get("registered_name")
        own = cls if isinstance(cls, str) and cls else "\0"
        if isinstance(registered, str) and registered and not registered.startswith(("keras", own)):
            emit(Severity.MEDIUM, "keras-custom-object", registered, _CUSTOM, None)


def _dicts(doc: object) -> Iterator[dict[str, object]]:
    todo = [doc]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            yield item
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def _layer_name(node: dict[str, object]) -> str:
    config = node.get("config")
    return str(config.get("name", "")) if isinstance(config, dict) else ""


def _hdf5(data: bytes | memoryview, emit: Emit) -> None:
    """Legacy Keras ``.h5``: the ``model_config`` attribute is a JSON string; find and judge every one.

    Variable-length string attributes (what h5py and Keras write) live in global heap collections
    (``GCOL``), which are walked object by object, so any JSON spelling is seen; JSON objects with a
    ``"class_name"`` key elsewhere in the file (fixed-length attributes) are found by searching.
    """
    view = memoryview(data)
    for blob in _gcol_objects(view):
        text = bytes(blob).lstrip()
        if text.startswith(b"{") and b'"class_name"' in text:
            check_keras_config(text, emit)
    pos = find(view, b'"class_name"', 0)
    while pos >= 0:
        _judge_enclosing_object(view, pos, emit)
        pos = find(view, b'"class_name"', pos + 1)


def _judge_enclosing_object(view: memoryview, pos: int, emit: Emit) -> None:
    """Judge the innermost JSON object (starting up to 4 KiB before ``pos``) that contains ``pos``."""
    decoder = json.JSONDecoder()
    back = bytes(view[max(0, pos - 4096) : pos])
    start = len(back)
    for _ in range(64):
        start = back.rfind(b"{", 0, start)
        if start < 0:
            return
        begin = pos - len(back) + start
        window = bytes(view[begin : begin + _MAX_H5_JSON]).decode("utf-8", errors="replace")
        try:
            doc, end = decoder.raw_decode(window)
        except (json.JSONDecodeError, RecursionError):
            continue
        if begin + len(window[:end].encode("utf-8", errors="replace")) > pos:
            check_keras_config(json.dumps(doc).encode(), emit)
            return


def _gcol_objects(view: memoryview) -> Iterator[memoryview]:
    """The objects of every HDF5 global heap collection in the file (bounded by the collection sizes)."""
    pos = find(view, b"GCOL", 0)
    while pos >= 0:
        if pos + 16 <= len(view) and view[pos + 4] == 1:
            (size,) = struct.unpack("<Q", view[pos + 8 : pos + 16])
            end = min(pos + size, len(view))
            cur = pos + 16
            while cur + 16 <= end:
                index, _, _, length = struct.unpack("<HHIQ", view[cur : cur + 16])
                if index == 0 or length > end - cur - 16:
                    break
                yield view[cur + 16 : cur + 16 + length]
                cur += 16 + (length + 7) // 8 * 8
        pos = find(view, b"GCOL", pos + 4)


def find(view: memoryview, needle: bytes, start: int, chunk: int = 1 << 20) -> int:
    """``bytes.find`` over a memoryview (a memory-mapped file) without copying all of it."""
    pos = start
    while pos < len(view):
        block = bytes(view[pos : pos + chunk + len(needle) - 1])
        hit = block.find(needle)
        if hit >= 0:
            return pos + hit
        pos += chunk
    return -1


# -- safetensors -------------------------------------------------------------------------------------------
def _safetensors(data: bytes | memoryview, emit: Emit, headers: HeaderMemo | None) -> None:
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        emit(
            Severity.MEDIUM,
            "safetensors-invalid-header",
            "header",
            f"header length {n} runs past the end; {_ST}",
            0,
        )
        return
    raw, data_size = bytes(data[8 : 8 + n]), len(data) - 8 - n
    try:
        if headers is None:
            parse_header(raw, data_size=data_size)
        else:
            headers.parse(raw, data_size=data_size)
    except FormatError as exc:
        emit(Severity.MEDIUM, "safetensors-invalid-header", "header", f"{exc.detail}; {_ST}", 8)


# -- GGUF --------------------------------------------------------------------------------------------------
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gguf(data: bytes | memoryview, emit: Emit) -> None:
    view = memoryview(data)
    try:
        version, _, kv_count = struct.unpack("<IQQ", view[4:24])
        if version < 2:
            emit(Severity.LOW, "gguf-old-version", f"version {version}", "GGUF version 1 is not checked", 4)
            return
        pos = 24
        for _ in range(min(kv_count, 1_000_000)):
            key, pos = _gguf_str(view, pos)
            (vtype,) = struct.unpack("<I", view[pos : pos + 4])
            pos += 4
            value, pos = _gguf_value(view, pos, vtype, 0)
            if key.startswith("tokenizer.chat_template") and isinstance(value, str):
                match = _SSTI.search(value)
                if match:
                    emit(
                        Severity.CRITICAL,
                        "gguf-template-injection",
                        f"{key}: {match.group(0)}",
                        _SSTI_MSG,
                        pos,
                    )
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        emit(Severity.MEDIUM, "gguf-malformed", "metadata", f"GGUF metadata is broken: {exc}", None)


def _gguf_str(view: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack("<Q", view[pos : pos + 8])
    if n > len(view) - pos - 8:
        raise ValueError(f"string of {n} bytes runs past the end")
    return bytes(view[pos + 8 : pos + 8 + n]).decode("utf-8"), pos + 8 + n


def _gguf_value(view: memoryview, pos: int, vtype: int, depth: int) -> tuple[object, int]:
    if vtype in _GGUF_SIZES:
        size = _GGUF_SIZES[vtype]
        if pos + size > len(view):
            raise ValueError("value runs past the end")
        return None, pos + size
    if vtype == 8:
        return _gguf_str(view, pos)
    if vtype == 9 and depth < 4:
        etype, count = struct.unpack("<IQ", view[pos : pos + 12])
        pos += 12
        if etype in _GGUF_SIZES:
            total = _GGUF_SIZES[etype] * count
            if total > len(view) - pos:
                raise ValueError("array runs past the end")
            return None, pos + total
        if count > len(view) - pos:
            raise ValueError("array longer than the file")
        for _ in range(count):
            _, pos = _gguf_value(view, pos, etype, depth + 1)
        return None, pos
    raise ValueError(f"unknown value type {vtype}")


# -- ONNX --------------------------------------------------------------------------------------------------
def _onnx(data: bytes | memoryview, emit: Emit) -> None:
    try:
        for number, _, value in fields(data):
            if number == 7 and isinstance(value, memoryview):
                _onnx_graph(value, emit, 0)
            elif number == 8 and isinstance(value, memoryview):  # opset_import
                domain = _string_field(value, 1)
                if domain not in _ONNX_DOMAINS:
                    emit(Severity.MEDIUM, "onnx-custom-domain", f"opset {domain}", _CUSTOM_OP, None)
    except ValueError as exc:
        emit(Severity.MEDIUM, "onnx-malformed", "ModelProto", f"protobuf is broken: {exc}", None)


def _onnx_graph(graph: memoryview, emit: Emit, depth: int) -> None:
    for number, _, value in fields(graph):
        if not isinstance(value, memoryview):
            continue
        if number == 1:  # NodeProto
            domain = _string_field(value, 7)
            if domain not in _ONNX_DOMAINS:
                emit(
                    Severity.MEDIUM,
                    "onnx-custom-domain",
                    f"{domain}::{_string_field(value, 4)}",
                    _CUSTOM_OP,
                    None,
                )
            if depth < 8:
                for n2, _, attr in fields(value):
                    if n2 == 5 and isinstance(
                        attr, memoryview
                    ):  # AttributeProto: subgraphs g (6), graphs (11)
                        for n3, _, sub in fields(attr):
                            if n3 in (6, 11) and isinstance(sub, memoryview):
                                _onnx_graph(sub, emit, depth + 1)
        elif number in (5, 15):  # initializer, sparse_initializer
            _onnx_tensor(value, emit)


def _onnx_tensor(tensor: memoryview, emit: Emit) -> None:
    for number, _, value in fields(tensor):
        # external_data (13): StringStringEntryProto {key: 1, value: 2}
        if number == 13 and isinstance(value, memoryview) and _string_field(value, 1) == "location":
            location = _string_field(value, 2)
            norm = posixpath.normpath(location.replace("\\", "/"))
            if (
                location.startswith(("/", "\\"))
                or norm.startswith("..")
                or (len(norm) > 1 and norm[1] == ":")
            ):
                emit(Severity.HIGH, "onnx-external-data-escape", location, _ESCAPE, None)


def _string_field(message: memoryview, wanted: int) -> str:
    for number, _, value in fields(message):
        if number == wanted and isinstance(value, memoryview):
            return bytes(value).decode("utf-8", errors="replace")
    return ""


_NPY_OBJECT = "object array: numpy.load(allow_pickle=True) unpickles it"
_LAMBDA = "Lambda layer: loading deserialises and runs Python bytecode (safe_mode=False)"
_MODULE = "layer class comes from a module outside Keras: loading imports and runs it"
_FUNCTION = "function reference that downloads files or turns unsafe deserialisation on when the model loads"
_CUSTOM = "custom registered object: loading needs and runs user code"
_ST = "the loader refuses it; a file whose header lies is hostile or corrupt"
_SSTI_MSG = "chat template reaches Python internals through Jinja syntax (template injection)"
_CUSTOM_OP = "operator from a custom domain: the runtime loads native code for it"
_ESCAPE = "external data path leaves the model folder: loading reads arbitrary files"
