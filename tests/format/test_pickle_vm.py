"""The symbolic pickle machine: real pickles of every protocol, evasions, and hostile streams."""

from __future__ import annotations

import io
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.format.pickle_vm import (
    Build,
    Call,
    Global,
    PersistentRef,
    Unknown,
    walk,
    walk_all,
)

PROTOCOLS = range(6)


class _System:
    """Pickles as a call of os.system; the test never loads it."""

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, ("echo never-run",))


class _KwOnly:
    def __init__(self, *, a: int) -> None:
        self.a = a

    def __getnewargs_ex__(self) -> tuple[tuple[object, ...], dict[str, object]]:
        return (), {"a": self.a}


PLAIN = {
    "ints": [0, 1, -1, 255, 65535, 2**31 - 1, -(2**31), 2**64, -(2**100)],
    "floats": [0.0, -1.5, 1e300],
    "text": ["", "ascii", "ünïcødé ✓", "line\nbreak 'quote' \"dq\" \\"],
    "nested": {"t": (1, (2, (3,))), "l": [[], [[]]], "none": None, "bools": [True, False]},
    "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plain_data_is_rebuilt_exactly(protocol: int) -> None:
    result = walk(pickle.dumps(PLAIN, protocol=protocol))
    assert result.ok, result.errors
    assert result.value == PLAIN
    assert result.globals == ()
    assert result.protocol == (protocol if protocol >= 2 else None)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_bytes_sets_and_shared_references(protocol: int) -> None:
    shared = [1, 2]
    data = {
        "b": b"\x00\xff" * 10,
        "big": b"x" * 70000,
        "s": {1, 2},
        "fs": frozenset({3}),
        "a": shared,
        "c": shared,
    }
    result = walk(pickle.dumps(data, protocol=protocol))
    assert result.ok, result.errors
    value = result.value
    assert isinstance(value, dict)
    assert value["b"] == data["b"] and value["big"] == data["big"]
    assert value["a"] is value["c"]  # the memo is modelled, not copied
    if protocol >= 4:
        assert value["s"] == {1, 2} and value["fs"] == frozenset({3})


def test_recursive_list_terminates() -> None:
    loop: list[object] = []
    loop.append(loop)
    result = walk(pickle.dumps(loop, protocol=2))
    assert result.ok
    assert isinstance(result.value, list) and result.value[0] is result.value


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=5), inner, max_size=4)
            | st.tuples(inner, inner)
        ),
        max_leaves=20,
    ),
    st.sampled_from([4, 5]),
)
@settings(max_examples=60, deadline=None)
def test_any_plain_value_round_trips(value: object, protocol: int) -> None:
    result = walk(pickle.dumps(value, protocol=protocol))
    assert result.ok and result.value == value


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_reduce_payload_is_a_call_of_a_global(protocol: int) -> None:
    result = walk(pickle.dumps({"x": [_System()]}, protocol=protocol))
    assert result.ok, result.errors
    (g,) = [g for g in result.globals if g.name == "system"]
    assert g.module in {"os", "posix", "nt"}
    value = result.value
    assert isinstance(value, dict)
    call = value["x"][0]
    assert isinstance(call, Call) and call.func == g and call.opcode == "REDUCE"
    assert call.args == ("echo never-run",)
    assert call in result.calls


def test_stack_global_with_names_built_through_the_memo() -> None:
    # 'os' and 'system' are stored in the memo, popped, and fetched back for STACK_GLOBAL
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x30\x30h\x00h\x01\x93\x8c\x02id\x85R."
    result = walk(data)
    assert result.ok, result.errors
    assert [(g.module, g.name) for g in result.globals] == [("os", "system")]
    assert isinstance(result.value, Call) and result.value.args == ("id",)


def test_stack_global_with_unresolvable_operands_is_flagged() -> None:
    data = b"\x80\x04K\x01K\x02\x93)R."
    result = walk(data)
    assert result.globals[0].module == "<unresolved>"
    assert any("not strings" in e for e in result.errors)


def test_inst_and_obj_are_calls() -> None:
    inst = walk(b"(S'echo a'\nios\nsystem\n.")
    assert inst.ok, inst.errors
    assert isinstance(inst.value, Call) and inst.value.opcode == "INST"
    assert inst.value.func == Global("os", "system", 11) and inst.value.args == ("echo a",)
    obj = walk(b"(cos\nsystem\nS'echo b'\no.")
    assert obj.ok, obj.errors
    assert isinstance(obj.value, Call) and obj.value.opcode == "OBJ"
    assert obj.value.func == Global("os", "system", 1) and obj.value.args == ("echo b",)


def test_newobj_ex_keeps_args_and_kwargs() -> None:
    result = walk(pickle.dumps(_KwOnly(a=3), protocol=4))
    assert result.ok, result.errors
    build = result.value
    assert isinstance(build, Build)
    call = build.obj
    assert isinstance(call, Call) and call.opcode == "NEWOBJ_EX"
    assert call.args == ((), {"a": 3})
    assert build.state == {"a": 3}


@pytest.mark.parametrize(
    ("op", "arg", "code"),
    [(b"\x82", b"\x07", 7), (b"\x83", b"\x00\x01", 256), (b"\x84", struct.pack("<i", -5), -5)],
)
def test_extension_registry_opcodes_become_globals(op: bytes, arg: bytes, code: int) -> None:
    result = walk(b"\x80\x02" + op + arg + b")R.")
    assert result.globals == (Global("<ext>", str(code), 2),)
    assert isinstance(result.value, Call)
    assert any("extension registry" in e for e in result.errors)


def test_discarded_globals_are_still_listed() -> None:
    result = walk(b"\x80\x02cos\nsystem\n0cbuiltins\nprint\n0N.")
    assert result.ok
    assert result.value is None
    assert [g.name for g in result.globals] == ["system", "print"]


def test_persistent_ids() -> None:
    result = walk(b"\x80\x02(X\x07\x00\x00\x00storageK\x01tQ.")
    assert result.ok
    assert result.value == PersistentRef(("storage", 1), 18)
    assert walk(b"Pkey\n.").value == PersistentRef("key", 0)


def test_torch_state_dict_symbolic_value() -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf)
    with zipfile.ZipFile(buf) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        result = walk(zf.read(name))
    assert result.ok, result.errors
    assert isinstance(result.value, Build)
    od = result.value.obj
    assert isinstance(od, Call) and od.func == Global("collections", "OrderedDict", 2)
    items = dict(od.dictitems)
    assert set(items) == {"weight", "bias"}
    weight = items["weight"]
    assert isinstance(weight, Call) and isinstance(weight.func, Global)
    assert weight.func.name == "_rebuild_tensor_v2"
    assert isinstance(weight.args, tuple) and isinstance(weight.args[0], PersistentRef)
    assert weight.args[2] == (2, 3)


# -- hostile and broken streams --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04B\xff\xff\xff\x7f.",  # BINBYTES of 2 GiB in a 10-byte stream
        b"\x80\x04\x8e" + struct.pack("<Q", 2**63) + b".",  # BINBYTES8 of 8 EiB
        b"\x80\x04\x96" + struct.pack("<Q", 2**62) + b".",  # BYTEARRAY8
        b"\x80\x04\x8b" + struct.pack("<i", 2**31 - 1) + b".",  # LONG4
        b"\x80\x02T" + struct.pack("<i", -1) + b".",  # negative BINSTRING length
        b"\x80\x04\x95" + struct.pack("<Q", 2**60) + b"N.",  # FRAME longer than the data
    ],
)
def test_declared_lengths_are_checked_before_allocating(data: bytes) -> None:
    tracemalloc.start()
    try:
        result = walk(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.errors
    assert peak < 1_000_000


def test_every_truncation_of_a_real_pickle_is_reported() -> None:
    data = pickle.dumps({"p": _System(), "l": list(range(5)), "s": "text"}, protocol=4)
    for cut in range(len(data)):
        result = walk(data[:cut])
        assert not result.ok and result.errors, cut
        assert result.end <= cut
    assert walk(data).ok


def test_unknown_opcode_stops_the_walk_at_its_offset() -> None:
    result = walk(b"\x80\x04cos\nsystem\n\xff.")
    assert result.end == 13
    assert any("unknown opcode 0xff" in e for e in result.errors)
    assert [g.name for g in result.globals] == ["system"]


def test_stack_underflow_and_missing_memo_continue() -> None:
    result = walk(b"\x80\x02Rh\x09cos\nsystem\n.")
    assert result.stopped
    assert any("underflow" in e for e in result.errors)
    assert any("memo entry 9" in e for e in result.errors)
    assert result.value == Global("os", "system", 5)


def test_missing_mark_is_an_error_not_a_crash() -> None:
    result = walk(b"\x80\x02K\x01K\x02t.")
    assert result.value == (1, 2)
    assert any("no MARK" in e for e in result.errors)


def test_memo_limit_is_enforced() -> None:
    result = walk(b"\x80\x02Nr\xff\xff\xff\xff.", max_memo=1000)
    assert any("memo index" in e for e in result.errors)
    many = b"\x80\x04" + b"N\x94" * 20 + b"."
    assert not walk(many, max_memo=10).ok


def test_op_limit_is_enforced() -> None:
    result = walk(b"\x80\x04" + b"N0" * 100 + b"N.", max_ops=50)
    assert any("more than 50 opcodes" in e for e in result.errors)


def test_deep_nesting_does_not_overflow_the_stack() -> None:
    deep_tuple = b"\x80\x04}K\x01" + b"\x85" * 100_000 + b"K\x02s."
    result = walk(deep_tuple)
    assert result.stopped and any("nested deeper" in e for e in result.errors)
    deep_list = b"\x80\x04}" + b"(" * 20_000 + b"l" * 20_000 + b"K\x02s."
    assert walk(deep_list).stopped


def test_error_list_is_bounded() -> None:
    result = walk(b"\x80\x02" + b"0" * 10_000 + b"N.")
    assert result.stopped and len(result.errors) <= 101


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = walk(data)
    assert 0 <= result.end <= len(data)
    assert result.ok or result.errors
    walk_all(data)


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_real_pickles_never_raise(data: st.DataObject) -> None:
    raw = bytearray(
        pickle.dumps(
            {"p": _System(), "x": [1.5, "a", b"b", (1, 2)]}, protocol=data.draw(st.sampled_from(PROTOCOLS))
        )
    )
    for _ in range(data.draw(st.integers(1, 5))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    result = walk(bytes(raw))
    assert result.end <= len(raw)


# -- several pickles in one stream -----------------------------------------------------------------


def test_walk_all_reads_pickles_back_to_back() -> None:
    parts = [
        pickle.dumps(1, protocol=2),
        pickle.dumps({"a": _System()}, protocol=4),
        pickle.dumps([2], protocol=0),
    ]
    results = walk_all(b"".join(parts))
    assert [r.start for r in results] == [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    assert all(r.ok for r in results)
    assert any(g.name == "system" for g in results[1].globals)
    second = walk(b"".join(parts), results[1].start)
    assert second == results[1]


def test_walk_all_resynchronises_after_broken_bytes() -> None:
    payload = pickle.dumps(_System(), protocol=4)
    data = b"\x80\x02(K\x01\xfe\xfd garbage " + payload + b"trailing bytes"
    results = walk_all(data)
    assert not results[0].ok
    hit = [r for r in results if any(g.name == "system" for g in r.globals)]
    assert hit and hit[0].start == data.index(payload) and hit[0].ok


def test_offset_out_of_range() -> None:
    assert walk(b"N.", 5).errors
    assert walk(b"N.", 0).value is None


def test_unknown_node_for_out_of_band_buffer() -> None:
    result = walk(b"\x80\x05\x97\x98.")
    assert isinstance(result.value, Unknown)


def test_joblib_raw_array_bytes_are_skipped_like_joblib_does(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = f"{tmp_path}/arrays.joblib"
    # float bytes that happen to spell opcodes would derail a walker that does not know joblib
    joblib.dump({"a": np.frombuffer(b"cos\nsystem\n(R." * 8, dtype=np.uint8), "u": np.array(["ab"])}, path)
    with open(path, "rb") as fh:
        data = fh.read()
    result = walk(data)
    assert result.ok, result.errors
    assert result.end == len(data)
    assert not any(g.name == "system" for g in result.globals)


def test_joblib_object_array_nested_pickle_is_walked(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = f"{tmp_path}/objects.joblib"
    joblib.dump({"o": np.array([_System(), 1], dtype=object), "after": np.ones(3)}, path)
    with open(path, "rb") as fh:
        data = fh.read()
    result = walk(data)
    assert result.ok, result.errors
    assert result.end == len(data)
    assert any(g.name == "system" for g in result.globals)
