"""ONNX initializers whose values sit in TensorProto's typed fields: listed, decoded for stats and diff,
and hostile encodings refused with typed errors."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from cairn.errors import FormatError
from cairn.format import onnx_typed
from cairn.format.arrays import iter_raw, to_array
from cairn.format.diff import diff_inspections
from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

CASES = [
    (TensorProto.FLOAT, "F32", np.float32, [1.5, -2.0, 0.0, 3.25]),
    (TensorProto.DOUBLE, "F64", np.float64, [1e300, -2.5, 0.0, 7.0]),
    (TensorProto.INT64, "I64", np.int64, [2**62, -(2**63), 0, -1]),
    (TensorProto.INT32, "I32", np.int32, [2**31 - 1, -(2**31), 0, -7]),
    (TensorProto.INT16, "I16", np.int16, [-32768, 32767, 0, 5]),
    (TensorProto.INT8, "I8", np.int8, [-128, 127, 0, -1]),
    (TensorProto.UINT8, "U8", np.uint8, [255, 0, 1, 2]),
    (TensorProto.UINT16, "U16", np.uint16, [65535, 0, 1, 2]),
    (TensorProto.UINT32, "U32", np.uint32, [2**32 - 1, 0, 1, 2]),
    (TensorProto.UINT64, "U64", np.uint64, [2**64 - 1, 0, 1, 2]),
    (TensorProto.BOOL, "BOOL", np.bool_, [True, False, True, True]),
    (TensorProto.FLOAT16, "F16", np.float16, [1.5, -65504.0, 0.0, 6e-8]),
]


def _save(tmp_path: Path, tensors: list[object], name: str = "m.onnx") -> Path:
    graph = helper.make_graph([], "g", [], [], initializer=tensors)
    path = tmp_path / name
    onnx.save(helper.make_model(graph), path)
    return path


@pytest.mark.parametrize(("proto", "dtype", "np_type", "values"), CASES, ids=[c[1] for c in CASES])
def test_typed_fields_are_listed_and_decoded(
    tmp_path: Path, proto: int, dtype: str, np_type: type, values: list[object]
) -> None:
    expected = np.array(values, dtype=np_type).reshape(2, 2)
    path = _save(tmp_path, [helper.make_tensor("t", proto, [2, 2], expected.reshape(-1).tolist())])
    info = inspect_path(path)
    (rec,) = info.tensors
    assert (rec.dtype, rec.shape, info.warnings) == (dtype, (2, 2), ())
    np.testing.assert_array_equal(to_array(rec), expected)
    st = tensor_stats(rec)
    assert st is not None and st.count == 4
    assert (st.min, st.max) == (float(expected.min()), float(expected.max()))


def test_bfloat16_bits_in_int32_data(tmp_path: Path) -> None:
    bits = [0x3FC0, 0xC000, 0x0000, 0x7F80]  # 1.5, -2.0, 0.0, +inf
    tensor = helper.make_tensor("b", TensorProto.BFLOAT16, [4], bits, raw=False)
    del tensor.int32_data[:]
    tensor.int32_data.extend(bits)
    (rec,) = inspect_path(_save(tmp_path, [tensor])).tensors
    st = tensor_stats(rec)
    assert st is not None and (st.min, st.max, st.inf, st.zeros) == (-2.0, 1.5, 1, 0.25)


def test_diff_between_typed_fields_and_raw_data(tmp_path: Path) -> None:
    values = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
    typed = _save(tmp_path, [helper.make_tensor("w", TensorProto.INT64, [3, 4], values.reshape(-1).tolist())])
    raw = _save(
        tmp_path,
        [helper.make_tensor("w", TensorProto.INT64, [3, 4], values.tobytes(), raw=True)],
        name="raw.onnx",
    )
    assert inspect_path(raw).tensors[0].encoding is None
    assert diff_inspections(inspect_path(typed), inspect_path(raw)).identical


# -- hand-built TensorProto messages: unpacked and split fields, and hostile ones ---------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def _model_bytes(tensor: bytes) -> bytes:
    graph = _bytes_field(5, tensor)  # GraphProto.initializer
    return _key(1, 0) + _varint(8) + _bytes_field(7, graph)  # ir_version, graph


def _tensor(dims: list[int], dtype: int, body: bytes) -> bytes:
    return (
        b"".join(_key(1, 0) + _varint(d) for d in dims)
        + _key(2, 0)
        + _varint(dtype)
        + _bytes_field(8, b"t")
        + body
    )


def _write(tmp_path: Path, tensor: bytes) -> Path:
    path = tmp_path / "hand.onnx"
    path.write_bytes(_model_bytes(tensor))
    return path


def test_unpacked_and_split_fields_decode_in_order(tmp_path: Path) -> None:
    floats = b"".join(_key(4, 5) + struct.pack("<f", v) for v in (1.0, 2.0))
    floats += _bytes_field(4, struct.pack("<2f", 3.0, 4.0))  # a packed run after unpacked values
    (rec,) = inspect_path(_write(tmp_path, _tensor([4], 1, floats))).tensors
    assert rec.encoding == "onnx-typed:4"
    np.testing.assert_array_equal(to_array(rec), [1, 2, 3, 4])
    ints = b"".join(_key(7, 0) + _varint(v) for v in (-1, 2)) + _bytes_field(7, _varint(3) + _varint(-4))
    (rec,) = inspect_path(_write(tmp_path, _tensor([2, 2], 7, ints))).tensors
    np.testing.assert_array_equal(to_array(rec), [[-1, 2], [3, -4]])
    doubles = b"".join(_key(10, 1) + struct.pack("<d", v) for v in (0.5, -0.5))
    (rec,) = inspect_path(_write(tmp_path, _tensor([2], 11, doubles))).tensors
    np.testing.assert_array_equal(to_array(rec), [0.5, -0.5])


def test_many_packed_varints_across_decoding_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_typed, "_WINDOW", 7)  # varints straddle every window
    values = np.random.default_rng(0).integers(-(2**62), 2**62, 500)
    body = _bytes_field(7, b"".join(_varint(int(v)) for v in values))
    (rec,) = inspect_path(_write(tmp_path, _tensor([500], 7, body))).tensors
    np.testing.assert_array_equal(to_array(rec), values)


@pytest.mark.parametrize(
    ("dims", "dtype", "body", "message"),
    [
        ([3], 7, _bytes_field(7, _varint(1) + _varint(2)), "holds 2 values but its shape needs 3"),
        ([1], 7, _bytes_field(7, _varint(1) + _varint(2)), "more than the 1 values"),
        ([1], 7, _bytes_field(7, b"\x80\x80"), "end inside a value"),
        ([1], 7, _bytes_field(7, b"\xff" * 10 + b"\x01"), "longer than 10 bytes"),
        ([1], 2, _bytes_field(5, _varint(256)), "out of range for U8"),
        ([1], 3, _bytes_field(5, _varint(-129)), "out of range for I8"),
        ([1], 12, _bytes_field(11, _varint(2**32)), "out of range for U32"),
        ([1], 9, _bytes_field(5, _varint(2)), "out of range for BOOL"),
        ([2], 1, _bytes_field(4, b"\0" * 3) + _key(4, 5) + b"\0" * 4, "not a whole number"),
        ([1], 7, _key(7, 5) + b"\0" * 4, "wire type 5"),
        ([10**12], 7, _bytes_field(7, _varint(1)), "holds 1 values but its shape needs 1000000000000"),
    ],
)
def test_hostile_typed_fields_give_format_errors(
    tmp_path: Path, dims: list[int], dtype: int, body: bytes, message: str
) -> None:
    (rec,) = inspect_path(_write(tmp_path, _tensor(dims, dtype, body))).tensors
    with pytest.raises(FormatError, match=message):
        for _ in iter_raw(rec):
            pass
    with pytest.raises(FormatError):
        tensor_stats(rec)


def test_a_message_that_now_ends_past_the_file_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _tensor([2], 7, _bytes_field(7, _varint(1) + _varint(2))))
    (rec,) = inspect_path(path).tensors
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(FormatError):
        to_array(rec)
