"""The allowlist and the severities, judged on single globals and small hand-built pickles."""

from __future__ import annotations

import pytest

from cairn.format.pickle_vm import walk
from cairn.security import Severity, classify_global
from cairn.security.pickle_rules import judge_pickles


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("collections", "OrderedDict"),
        ("torch", "FloatStorage"),
        ("torch", "bfloat16"),
        ("torch.nn.modules.linear", "Linear"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.dtypes", "Float64DType"),
        ("builtins", "set"),
        ("_codecs", "encode"),
        ("__builtin__", "xrange"),  # fix_imports maps it to builtins.range
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("torch.optim.adamw", "AdamW"),
        ("random", "Random"),
    ],
)
def test_safe_globals(module: str, name: str) -> None:
    assert classify_global(module, name) == "safe"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("__builtin__", "__import__"),
        ("pickle", "loads"),
        ("torch", "load"),
        ("numpy", "load"),
        ("operator", "attrgetter"),
        ("torch.nn.modules.linear", "__class__"),
        ("torch", "serialization.os.system"),  # protocol 4 dotted names walk attributes
        ("torch.nn.functional", "torch.load"),  # a wildcard-safe module must not launder a dotted walk
        ("torch.nn.functional", "torch.hub.load"),
        ("collections", "OrderedDict.__init__"),
        ("commands", "getoutput"),  # Python 2 name of subprocess, mapped by fix_imports
        ("SocketServer", "TCPServer"),
        ("pydoc", "pipepager"),
        ("codecs", "open"),
        ("numpy", "memmap"),
        ("torch.ops", "load_library"),
        ("torch", "UntypedStorage.from_file"),
        ("pandas.io.parsers", "read_csv"),
        ("importlib", "import_module"),
        ("socket", "create_connection"),
        ("webbrowser", "open"),
    ],
)
def test_dangerous_globals(module: str, name: str) -> None:
    assert classify_global(module, name) == "dangerous"


def test_unknown_globals_and_torchscript_prefixes() -> None:
    assert classify_global("mypackage.models", "Net") == "unknown"
    assert classify_global("torch.nn.modules.linear", "some_function") == "unknown"
    assert classify_global("collections", "OrderedDict.fromkeys") == "unknown"
    assert classify_global("torch.nn.functional", "_private") == "unknown"
    assert classify_global("__torch__.model", "Net") == "unknown"
    assert classify_global("__torch__.model", "Net", torchscript=True) == "safe"
    assert classify_global("torch.jit._pickle", "build_intlist", torchscript=True) == "safe"
    assert classify_global("torch.jit._pickle", "build_intlist") == "unknown"


def _judge(data: bytes) -> list[tuple[Severity, str, str]]:
    out: list[tuple[Severity, str, str]] = []
    judge_pickles([walk(data)], lambda sev, rule, construct, msg, off: out.append((sev, rule, construct)))
    return out


def test_unknown_referenced_is_medium_and_called_is_high() -> None:
    assert _judge(b"\x80\x02cmy.mod\nThing\n.") == [
        (Severity.MEDIUM, "pickle-unknown-global", "my.mod.Thing")
    ]
    assert _judge(b"\x80\x02cmy.mod\nThing\n)R.") == [(Severity.HIGH, "pickle-unknown-call", "my.mod.Thing")]


def test_safe_pickle_has_no_findings() -> None:
    assert _judge(b"\x80\x02ccollections\nOrderedDict\n)R.") == []


def test_breakage_can_be_ignored_for_resynchronised_fragments() -> None:
    out: list[str] = []
    judge_pickles([walk(b"\x80\x02N")], lambda *a: out.append(a[1]), report_breakage=[False])
    assert out == []
    judge_pickles([walk(b"\x80\x02N")], lambda *a: out.append(a[1]))
    assert out == ["pickle-malformed"]


def test_nested_loader_with_protocol2_bytes() -> None:
    # protocol 2 writes bytes as _codecs.encode(str, 'latin1'): the nested pickle is still found
    inner = b"\x80\x02cos\nsystem\nX\x01\x00\x00\x00x\x85R."
    text = inner.decode("latin-1")
    arg = b"X" + len(text.encode()).to_bytes(4, "little") + text.encode()
    data = b"\x80\x02cpickle\nloads\nc_codecs\nencode\n" + arg + b"X\x06\x00\x00\x00latin1\x86R\x85R."
    rules = {(rule, construct) for _, rule, construct in _judge(data)}
    assert ("pickle-dangerous-global", "os.system") in rules
    assert ("pickle-dangerous-global", "pickle.loads") in rules


def test_everything_torch_weights_only_accepts_is_safe() -> None:
    torch_unpickler = pytest.importorskip("torch._weights_only_unpickler")
    names = [k.rsplit(".", 1) for k in torch_unpickler._get_allowed_globals() if "." in k]
    assert len(names) > 50
    rejected = [f"{m}.{n}" for m, n in names if classify_global(m, n) != "safe"]
    assert not rejected, rejected
