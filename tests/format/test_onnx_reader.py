"""ONNX models built with the reference ``onnx`` package, read by cairn's own wire-format reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cairn.errors import FormatError
from cairn.format.arrays import to_array
from cairn.format.reader import inspect_path

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(weights: np.ndarray | None = None) -> object:
    w = numpy_helper.from_array(
        np.arange(12, dtype=np.float32).reshape(3, 4) if weights is None else weights, "W"
    )
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])  # packed float_data
    i = helper.make_tensor("I", TensorProto.INT64, [2], [5, -6])  # varints: decoded on reading
    node = helper.make_node("Gemm", ["X", "W", "B"], ["Y"], transB=1)
    graph = helper.make_graph(
        [node, helper.make_node("Relu", ["Y"], ["Z"])],
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["batch", 3])],
        initializer=[w, b, i],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="cairn-test")
    helper.set_model_props(model, {"author": "tests"})
    return model


def test_graph_initializers_and_opsets(tmp_path: Path) -> None:
    onnx.save(_model(), tmp_path / "m.onnx")
    info = inspect_path(tmp_path / "m.onnx")
    assert info.format == "onnx"
    t = info.tensor_map()
    np.testing.assert_array_equal(to_array(t["W"]), np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(to_array(t["B"]), np.array([1, 2, 3], np.float32))
    assert t["I"].dtype == "I64" and t["I"].encoding == "onnx-typed:7" and not info.warnings
    np.testing.assert_array_equal(to_array(t["I"]), [5, -6])
    m = info.metadata
    assert m["opsets"] == {"ai.onnx": 17} and m["producer_name"] == "cairn-test"
    assert m["inputs"] == [{"name": "X", "dtype": "F32", "shape": ["batch", 4]}]
    assert m["op_types"] == {"Gemm": 1, "Relu": 1} and m["metadata_props"] == {"author": "tests"}


def test_external_data_inside_the_folder(tmp_path: Path) -> None:
    weights = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    onnx.save(
        _model(weights), tmp_path / "m.onnx", save_as_external_data=True, location="w.bin", size_threshold=0
    )
    info = inspect_path(tmp_path / "m.onnx")
    rec = info.tensor_map()["W"]
    assert rec.file == str((tmp_path / "w.bin").resolve())
    np.testing.assert_array_equal(to_array(rec), weights)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin", "link.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 48)
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    model = _model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": "48"}.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, folder / "m.onnx")
    with pytest.raises(FormatError, match="external data"):
        inspect_path(folder / "m.onnx")


def test_raw_data_length_that_lies(tmp_path: Path) -> None:
    model = _model()
    model.graph.initializer[0].dims[0] = 300
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(FormatError, match="needs"):
        inspect_path(tmp_path / "m.onnx")


def test_truncations_and_bit_flips_give_format_errors(tmp_path: Path) -> None:
    onnx.save(_model(), tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    for cut in range(8, len(data) - 1, 23):
        (tmp_path / "cut.onnx").write_bytes(data[:cut])
        with pytest.raises(FormatError):
            inspect_path(tmp_path / "cut.onnx")
    (tmp_path / "long.onnx").write_bytes(b"\x08" + b"\xff" * 11 + b"\x01")
    with pytest.raises(FormatError):
        inspect_path(tmp_path / "long.onnx")
