"""Fuzz targets for every reader: random and mutated files give an Inspection or a typed CairnError.

Seeds are real files written by the reference libraries; hypothesis truncates them and overwrites bytes.
Reading the tensors each inspection lists must not crash either. Each target runs briefly in CI.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from cairn.errors import CairnError
from cairn.format.arrays import iter_raw
from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats


def _safetensors(p: Path) -> None:
    save_file({"a": np.arange(6, dtype=np.float32), "b": np.ones((2, 2), np.int64)}, p)


def _npy(p: Path) -> None:
    with p.open("wb") as f:
        np.save(f, np.arange(10, dtype=np.float64))


def _npz(p: Path) -> None:
    with p.open("wb") as f:
        np.savez(f, a=np.arange(4), b=np.ones(3, np.float16))


def _torch(p: Path, zip_format: bool = True) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2, 3), "n": 3}, p, _use_new_zipfile_serialization=zip_format)


def _gguf(p: Path) -> None:
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_block_count(1)
    w.add_tensor("t", np.arange(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _onnx(p: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])],
        initializer=[numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")],
    )
    onnx.save(helper.make_model(graph), p)


def _onnx_typed(p: Path) -> None:
    """Initializers in typed fields: varints (int64_data, int32_data) and packed doubles."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    tensors = [
        helper.make_tensor("i", TensorProto.INT64, [2, 3], [1, -2, 3, 2**40, -(2**40), 0]),
        helper.make_tensor("h", TensorProto.FLOAT16, [3], [1.5, -2.0, 0.0]),
        helper.make_tensor("u", TensorProto.UINT8, [4], [0, 1, 255, 7]),
        helper.make_tensor("d", TensorProto.DOUBLE, [2], [0.5, -0.25]),
    ]
    onnx.save(helper.make_model(helper.make_graph([], "g", [], [], initializer=tensors)), p)


def _torch_tar(p: Path) -> None:
    """PyTorch's pre-1.0 tar layout, hand-built (see test_torch_tar.py)."""
    from test_torch_tar import _simple  # type: ignore[import-not-found]

    _simple(p)


def _keras(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        zf.writestr("model.weights.h5", b"\x89HDF")


def _hdf5(p: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with h5py.File(p, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.arange(6, dtype=np.float32))
        f.create_dataset("c", data=np.ones((4, 4)), chunks=(2, 2))


def _hdf5_dense(p: Path) -> None:
    """A group of 40 links in dense storage: a v2 B-tree with inner nodes over a fractal heap."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(p, "w", libver="latest") as f:
        g = f.create_group("g")
        for i in range(40):
            g.create_dataset(f"d{i:02d}", data=np.array([i], np.int16))


def _keras_h5(p: Path) -> None:
    _hdf5(p.with_suffix(".h5"))
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        zf.writestr("model.weights.h5", p.with_suffix(".h5").read_bytes())


def _index(p: Path) -> None:
    _safetensors(p.parent / "shard.safetensors")
    p.write_text(json.dumps({"weight_map": {"a": "shard.safetensors", "b": "shard.safetensors"}}))


MAKERS: dict[str, Callable[[Path], None]] = {
    "safetensors": _safetensors,
    "npy": _npy,
    "npz": _npz,
    "torch-zip": _torch,
    "torch-legacy": lambda p: _torch(p, zip_format=False),
    "torch-tar": _torch_tar,
    "gguf": _gguf,
    "onnx": _onnx,
    "onnx-typed": _onnx_typed,
    "keras": _keras,
    "keras-weights": _keras_h5,
    "hdf5": _hdf5,
    "hdf5-dense": _hdf5_dense,
    "index": _index,
}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    """The seed file of a kind, written once per module run."""
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    cache: dict[str, bytes] = {}

    def seed(kind: str) -> bytes:
        if kind not in cache:
            path = folder / kind
            MAKERS[kind](path)
            cache[kind] = path.read_bytes()
        return cache[kind]

    return seed


def _exercise(path: Path) -> None:
    try:
        info = inspect_path(path)
        for rec in info.tensors[:4]:
            for _ in iter_raw(rec):
                pass
            tensor_stats(rec)
    except CairnError:
        pass


mutation = st.tuples(
    st.integers(min_value=0, max_value=1 << 16),  # truncate at (mod length)
    st.lists(st.tuples(st.integers(min_value=0, max_value=1 << 16), st.integers(0, 255)), max_size=6),
)


@pytest.mark.parametrize("kind", sorted(MAKERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=mutation)
def test_mutated_files(
    kind: str, change: tuple[int, list[tuple[int, int]]], tmp_path: Path, seeds: Callable[[str], bytes]
) -> None:
    data = bytearray(seeds(kind))
    cut, flips = change
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))]
    path = tmp_path / "fuzzed"
    if kind == "index":
        (tmp_path / "shard.safetensors").write_bytes(seeds("safetensors"))
    path.write_bytes(bytes(data))
    _exercise(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(
        [
            b"",
            b"GGUF\x03\x00\x00\x00",
            b"\x93NUMPY\x01\x00",
            b"PK\x03\x04",
            b"\x80\x02",
            b"\x08\x07",
            b"\x89HDF\r\n\x1a\n\x00",
        ]
    ),
    body=st.binary(max_size=300),
)
def test_random_bytes_behind_every_magic(prefix: bytes, body: bytes, tmp_path: Path) -> None:
    path = tmp_path / "random"
    path.write_bytes(prefix + body)
    _exercise(path)
