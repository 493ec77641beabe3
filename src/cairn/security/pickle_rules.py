"""Judge what a pickle would import and call: an allowlist of safe globals, and severities for the rest.

The input is the symbolic walk of :mod:`cairn.format.pickle_vm`, so the rules see the real stack and memo:
a ``STACK_GLOBAL`` whose names were assembled through the memo is judged by the names it really resolves
to, and a name the walk could not resolve is unsafe. Rules, most severe first:

* a known-dangerous global (process, file, network, import and eval machinery, ``getattr``-style
  attribute access, nested unpicklers, ...) is **critical**, called or not;
* a global the walk could not resolve, an extension-registry code (``EXT1/2/4``), a call of something that
  is not a plain imported name (a ``getattr`` chain), and ``BUILD`` applied to an imported object are
  **critical**;
* any other global outside the allowlist is an unknown import: **high** when it is called, **medium** when
  it is only referenced (importing a module still runs its top-level code);
* a broken stream (truncation, unknown opcode, stack or memo misuse) is **medium**: the walk scanned what
  was there, but a loader may read it differently.

Bytes handed to a nested unpickler (``pickle.loads``, ``torch.storage._load_from_bytes``, ``io.BytesIO``)
are walked as pickles of their own and judged by the same rules.
"""

from __future__ import annotations

import _compat_pickle
import re
from collections.abc import Callable, Iterable, Sequence

from cairn.format.pickle_vm import Call, Global, PersistentRef, PickleResult, walk_all
from cairn.security.report import Severity

__all__ = ["NESTED_LOADERS", "SAFE_GLOBALS", "TORCHSCRIPT_PREFIXES", "classify_global", "judge_pickles"]


def _words(text: str) -> list[str]:
    return text.split()


_TORCH_DTYPES = _words(
    "float32 float float64 double float16 half bfloat16 complex32 complex64 cfloat complex128 cdouble uint8 "
    "uint16 uint32 uint64 int8 int16 short int32 int int64 long bool qint8 quint8 qint32 quint4x2 quint2x4 "
    "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz float8_e8m0fnu float4_e2m1fn_x2 bits8 bits16 "
    "bits4x2 bits2x4 bits1x8 uint1 uint2 uint3 uint4 uint5 uint6 uint7 int1 int2 int3 int4 int5 int6 int7"
)

#: (module, name) pairs that legitimate checkpoints need; the start is PyTorch's ``weights_only`` allowlist
SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [("collections", n) for n in ("OrderedDict", "Counter", "deque", "defaultdict")]
    + [
        ("torch._utils", n)
        for n in _words(
            "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
            "_rebuild_parameter_with_state _rebuild_sparse_tensor _rebuild_meta_tensor_no_storage "
            "_rebuild_nested_tensor _rebuild_wrapper_subclass _rebuild_qtensor "
            "_rebuild_device_tensor_from_numpy _rebuild_device_tensor_from_cpu_tensor"
        )
    ]
    + [("torch._tensor", "_rebuild_from_type"), ("torch._tensor", "_rebuild_from_type_v2")]
    + [("torch.serialization", "_get_layout"), ("torch", "_utils")]
    + [("torch", n) for n in _TORCH_DTYPES]
    + [
        ("torch", n)
        for n in _words(
            "Size device dtype Tensor strided sparse_coo sparse_csr sparse_csc sparse_bsr sparse_bsc _mkldnn "
            "contiguous_format channels_last channels_last_3d preserve_format per_tensor_affine "
            "per_channel_affine per_tensor_symmetric per_channel_symmetric per_channel_affine_float_qparams"
        )
    ]
    + [
        ("torch.nn.modules.module", "_WrappedHook")
    ]  # hooks of weight/spectral norm; the hook is judged itself
    + [("torch.storage", "UntypedStorage"), ("torch.storage", "TypedStorage"), ("torch", "UntypedStorage")]
    + [
        ("torch.nn.parameter", n)
        for n in ("Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer")
    ]
    + [
        (m, n)
        for m in ("numpy.core.multiarray", "numpy._core.multiarray")
        for n in ("_reconstruct", "scalar")
    ]
    + [(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [
        ("numpy.random._pickle", n)
        for n in ("__randomstate_ctor", "__generator_ctor", "__bit_generator_ctor")
    ]
    + [
        (b, n)
        for b in ("builtins", "__builtin__")
        for n in _words(
            "set frozenset bytearray bytes slice complex range int float bool str tuple list dict object "
            "unicode long"
        )
    ]
    + [(m, n) for m in ("copyreg", "copy_reg") for n in ("_reconstructor", "__newobj__", "__newobj_ex__")]
    + [("_codecs", "encode"), ("codecs", "encode"), ("argparse", "Namespace")]
    + [
        ("pathlib", n)
        for n in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")
    ]
    + [("datetime", n) for n in ("datetime", "date", "time", "timedelta", "timezone")]
    + [("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"), ("random", "Random")]
    + [
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    ]
)

_TENSOR_TYPE_MODULES = frozenset(("torch", "torch.cuda", "torch.sparse", "torch.cuda.sparse"))
#: module prefixes whose classes (CamelCase names) are safe to construct: PyTorch's standard layers
_SAFE_CLASS_MODULES = ("torch.nn.modules.", "torch.nn.utils.", "torch.optim.")
#: module prefixes whose every name is safe: pure tensor functions referenced by standard layers
_SAFE_MODULES = ("torch.nn.functional", "torch._C._nn", "numpy.dtypes")
#: extra prefixes that TorchScript archives use (resolved by TorchScript's own restricted unpickler)
TORCHSCRIPT_PREFIXES = ("__torch__.", "torch.jit._pickle.")

_DANGEROUS_MODULES = frozenset(
    _words(
        "os posix nt posixpath ntpath subprocess _posixsubprocess sys importlib imp pkgutil runpy pty "
        "socket _socket shutil ctypes _ctypes cffi multiprocessing threading _thread signal asyncio "
        "webbrowser http urllib urllib2 urllib3 httplib requests aiohttp ftplib smtplib telnetlib xmlrpc "
        "pickle _pickle cPickle pickletools dill cloudpickle marshal shelve code codeop pdb bdb timeit trace "
        "profile cProfile operator types inspect gc platform tempfile glob zipfile tarfile io _io fileinput "
        "linecache site sysconfig venv ensurepip distutils setuptools pip logging jinja2 mako yaml sqlite3 "
        "dbm mmap resource pwd grp fcntl termios tty readline rlcompleter idlelib tkinter turtle antigravity "
        "doctest unittest functools ssl select selectors sched builtins __builtin__ _operator _functools "
        "_io _sqlite3 nturl2path _winapi msvcrt winreg _winreg commands popen2 dl socketserver SocketServer "
        "pydoc zipimport gzip bz2 lzma smtpd imaplib poplib nntplib xmlrpclib thread asynchat asyncore "
        "BaseHTTPServer SimpleHTTPServer CGIHTTPServer cgi cgitb"
    )
)
_DANGEROUS_NAMES = frozenset(
    [
        ("torch", "load"),
        ("torch", "save"),
        ("torch.serialization", "load"),
        ("torch.serialization", "_legacy_load"),
        ("torch", "_load_global_deps"),
        ("torch.hub", "load"),
        ("torch.hub", "load_state_dict_from_url"),
        ("torch.hub", "download_url_to_file"),
        ("torch.jit", "load"),
        ("torch._C", "_jit_pass_onnx"),
        ("numpy", "load"),
        ("numpy", "loads"),
        ("numpy.lib.npyio", "load"),
        ("numpy", "fromfile"),
        ("numpy", "save"),
        ("numpy.testing._private.utils", "runstring"),
        ("pandas", "read_pickle"),
        ("pandas.io.pickle", "read_pickle"),
        ("joblib", "load"),
        ("joblib.numpy_pickle", "load"),
        ("codecs", "open"),
        ("numpy", "memmap"),
        ("numpy", "loadtxt"),
        ("numpy", "savetxt"),
        ("numpy", "genfromtxt"),
        ("numpy", "tofile"),
        ("torch", "from_file"),
        ("torch.ops", "load_library"),
        ("torch.classes", "load_library"),
    ]
)
#: attribute names that reach loaders, downloads or code execution from any module (dotted-name walks)
_DANGEROUS_ATTRS = frozenset(
    (
        "load",
        "loads",
        "hub",
        "jit",
        "system",
        "popen",
        "eval",
        "exec",
        "compile",
        "open",
        "from_file",
        "load_library",
    )
)
_DANGEROUS_PREFIXES = (
    "torch.utils.cpp_extension",
    "pandas.io",
    "torch.hub",
    "torch.package",
    "torch._dynamo",
    "numpy.f2py",
    "numpy.distutils",
    "keras",
)

#: callables whose bytes argument is itself unpickled
NESTED_LOADERS = frozenset(
    [(m, "loads") for m in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle", "numpy")]
    + [(m, "_loads") for m in ("pickle",)]
    + [("torch.storage", "_load_from_bytes"), ("io", "BytesIO"), ("_io", "BytesIO")]
)
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
_MAX_NESTED_DEPTH = 3


def classify_global(module: str, name: str, *, torchscript: bool = False) -> str:
    """``"safe"``, ``"dangerous"`` or ``"unknown"`` for one imported name.

    Python 2 names are judged as the unpickler's ``fix_imports`` maps them before importing
    (``commands.getoutput`` is ``subprocess.getoutput``, ``__builtin__.xrange`` is ``builtins.range``).
    """
    mapped = _py3_name(module, name)
    if mapped != (module, name):
        return _classify(*mapped, torchscript)
    return _classify(module, name, torchscript)


def _py3_name(module: str, name: str) -> tuple[str, str]:
    if (module, name) in _compat_pickle.NAME_MAPPING:
        mapped: tuple[str, str] = _compat_pickle.NAME_MAPPING[(module, name)]
        return mapped
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _classify(module: str, name: str, torchscript: bool) -> str:
    if "." in name:  # protocol 4 resolves dotted names attribute by attribute: never allowlisted
        parts = name.split(".")
        if any(p.startswith("_") or p in _DANGEROUS_MODULES or p in _DANGEROUS_ATTRS for p in parts):
            return "dangerous"
        return "unknown"
    if (module, name) in SAFE_GLOBALS:
        return "safe"
    if (module, name) == ("torch.storage", "_load_from_bytes"):
        return "safe"  # legitimate in pickled tensors; its payload is walked as a nested pickle
    if module in _TENSOR_TYPE_MODULES and name.endswith(("Storage", "Tensor")) and _CAMEL.match(name):
        return (
            "safe"  # typed storages and legacy tensor types: torch.FloatStorage, torch.cuda.HalfTensor, ...
        )
    if module.startswith("numpy.random.") and (_CAMEL.match(name) or name.startswith("__pyx_unpickle_")):
        return "safe"  # bit generators and seed sequences, rebuilt from their state by Cython helpers
    if module.startswith(_SAFE_CLASS_MODULES) and _CAMEL.match(name):
        return "safe"
    if any(module == m or module.startswith(m + ".") for m in _SAFE_MODULES) and not name.startswith("_"):
        return "safe"
    if torchscript and (module + ".").startswith(TORCHSCRIPT_PREFIXES):
        return "safe"
    if (module, name) in _DANGEROUS_NAMES or (module, name) in NESTED_LOADERS:
        return "dangerous"
    root = module.split(".", 1)[0]
    if root in _DANGEROUS_MODULES or module.startswith(_DANGEROUS_PREFIXES):
        return "dangerous"
    if name.startswith("__") or name in _DANGEROUS_MODULES:
        return "dangerous"
    return "unknown"


def _as_bytes(value: object) -> bytes | None:
    """The bytes a nested loader would receive, including protocol 2's ``_codecs.encode(str, 'latin1')``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and value.func.name == "encode"
        and isinstance(value.args, tuple)
        and value.args
        and isinstance(value.args[0], str)
    ):
        try:
            return value.args[0].encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def judge_pickles(
    results: Sequence[PickleResult],
    emit: Callable[[Severity, str, str, str, int | None], None],
    *,
    torchscript: bool = False,
    report_breakage: Iterable[bool] | None = None,
    nested: Callable[[bytes, int], None] | None = None,
    legacy: bool = False,
) -> None:
    """Judge walked pickles; ``emit(severity, rule, construct, message, offset)`` receives each finding.

    ``report_breakage`` says per result whether a broken stream is a finding (the first pickle of a file)
    or only noise (fragments found by resynchronising). ``nested(data, offset)`` is called with bytes that
    a nested unpickler would load; by default they are walked and judged here. ``legacy`` says the
    pickles are PyTorch's legacy format, whose persistent id ``('module', cls, file, source)`` loads as
    ``cls`` itself.
    """
    flags = list(report_breakage) if report_breakage is not None else [True] * len(results)
    for result, breakage in zip(results, flags, strict=True):
        _judge_one(
            result, emit, torchscript=torchscript, breakage=breakage, nested=nested, depth=0, legacy=legacy
        )


def _callee(func: object, legacy: bool) -> object:
    """What a call really calls: in legacy torch pickles ``PersistentRef(('module', cls, ...))`` is cls."""
    if legacy and isinstance(func, PersistentRef):
        pid = func.pid
        if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == "module" and isinstance(pid[1], Global):
            return pid[1]
    return func


def _judge_one(
    result: PickleResult,
    emit: Callable[[Severity, str, str, str, int | None], None],
    *,
    torchscript: bool,
    breakage: bool,
    nested: Callable[[bytes, int], None] | None,
    depth: int,
    legacy: bool = False,
) -> None:
    called = {id(_callee(c.func, legacy)) for c in result.calls}
    for g in result.globals:
        dotted = f"{g.module}.{g.name}"
        if g.module == "<unresolved>":
            emit(Severity.CRITICAL, "pickle-unresolved-global", g.name, _UNRESOLVED, g.pos)
            continue
        if g.module == "<ext>":
            emit(Severity.CRITICAL, "pickle-extension-code", f"EXT code {g.name}", _EXT, g.pos)
            continue
        verdict = classify_global(g.module, g.name, torchscript=torchscript)
        if verdict == "dangerous":
            emit(Severity.CRITICAL, "pickle-dangerous-global", dotted, _DANGEROUS, g.pos)
        elif verdict == "unknown" and id(g) in called:
            emit(Severity.HIGH, "pickle-unknown-call", dotted, _UNKNOWN_CALL, g.pos)
        elif verdict == "unknown":
            emit(Severity.MEDIUM, "pickle-unknown-global", dotted, _UNKNOWN_REF, g.pos)
    for c in result.calls:
        func = _callee(c.func, legacy)
        if not isinstance(func, Global):
            what = type(func).__name__
            emit(Severity.CRITICAL, "pickle-computed-call", f"{c.opcode} of a {what}", _COMPUTED, c.pos)
        elif (func.module, func.name) in NESTED_LOADERS and depth < _MAX_NESTED_DEPTH:
            args = c.args if isinstance(c.args, tuple) else (c.args,)
            for arg in args:
                raw = _as_bytes(arg)
                if raw is None:
                    continue
                if nested is not None:
                    nested(raw, c.pos)
                    continue
                for inner in walk_all(raw):
                    _judge_one(
                        inner, emit, torchscript=torchscript, breakage=True, nested=None, depth=depth + 1
                    )
    _judge_builds(result, emit)
    for pos in result.unresolved_arrays:
        emit(Severity.HIGH, "pickle-joblib-unresolved-array", "NumpyArrayWrapper", _UNRESOLVED_ARRAY, pos)
    if breakage and result.errors:
        detail = "; ".join(result.errors[:3]) + (
            f" (+{len(result.errors) - 3} more)" if len(result.errors) > 3 else ""
        )
        emit(Severity.MEDIUM, "pickle-malformed", detail, _BROKEN, result.end)


def _judge_builds(result: PickleResult, emit: Callable[[Severity, str, str, str, int | None], None]) -> None:
    """BUILD on an imported object (not an instance) overwrites attributes of a module-level name."""
    for build in result.builds:
        if isinstance(build.obj, Global):
            target = f"{build.obj.module}.{build.obj.name}"
            emit(Severity.CRITICAL, "pickle-build-on-global", target, _BUILD_GLOBAL, build.pos)


_DANGEROUS = "imports a name that can run commands, touch files or the network, import or evaluate code"
_UNKNOWN_CALL = "calls a name outside the allowlist of what model checkpoints need; loading runs it"
_UNKNOWN_REF = "imports a module outside the allowlist; importing runs the module's top-level code"
_UNRESOLVED = (
    "STACK_GLOBAL with operands that are not plain strings: the scanner cannot tell what is imported"
)
_EXT = "extension-registry opcode: the imported name is chosen by the loading process, not the file"
_COMPUTED = "calls the result of another call (getattr-style chain): the callee cannot be known statically"
_UNRESOLVED_ARRAY = (
    "joblib array whose dtype the scanner cannot resolve: it cannot tell which bytes joblib.load reads "
    "as array data and which it unpickles"
)
_BUILD_GLOBAL = "BUILD on an imported object rewrites attributes of a module-level name"
_BROKEN = "the pickle stream is broken; a loader may read it differently from the scanner"
