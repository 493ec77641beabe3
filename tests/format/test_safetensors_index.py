"""Single and sharded safetensors inspection, range reads, and hostile headers and indexes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from cairn.errors import FormatError, LimitExceededError
from cairn.format.arrays import to_array
from cairn.format.reader import inspect_path
from cairn.format.safetensors_index import inspect_safetensors_ranges, read_header_ranges


def _sharded(tmp_path: Path) -> Path:
    save_file({"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}, tmp_path / "m-1.safetensors")
    save_file(
        {"b.weight": np.ones(4, dtype=np.float16), "b.bias": np.zeros(2, np.int64)},
        tmp_path / "m-2.safetensors",
    )
    index = {
        "metadata": {"total_size": 24 + 8 + 16},
        "weight_map": {
            "a.weight": "m-1.safetensors",
            "b.weight": "m-2.safetensors",
            "b.bias": "m-2.safetensors",
        },
    }
    path = tmp_path / "model.safetensors.index.json"
    path.write_text(json.dumps(index))
    return path


def test_single_file_lists_tensors_with_readable_offsets(tmp_path: Path) -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_file({"w": w, "b": np.ones(3, np.float64)}, tmp_path / "x.bin", metadata={"format": "pt"})
    info = inspect_path(tmp_path / "x.bin")  # the name does not matter: detection is by magic bytes
    assert info.format == "safetensors"
    assert info.metadata == {"format": "pt"}
    t = info.tensor_map()
    assert (t["w"].dtype, t["w"].shape, t["w"].numel) == ("F32", (3, 4), 12)
    assert info.parameters == 15
    np.testing.assert_array_equal(to_array(t["w"]), w)


def test_sharded_index_merges_shards(tmp_path: Path) -> None:
    info = inspect_path(_sharded(tmp_path))
    assert info.format == "safetensors-sharded"
    assert sorted(info.tensor_map()) == ["a.weight", "b.bias", "b.weight"]
    assert len(info.files) == 2
    np.testing.assert_array_equal(to_array(info.tensor_map()["b.weight"]), np.ones(4, np.float16))


def test_directory_prefers_the_index_over_its_shards(tmp_path: Path) -> None:
    _sharded(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "num_hidden_layers": 2,
                "hidden_size": 8,
                "vocab_size": 100,
            }
        )
    )
    info = inspect_path(tmp_path)
    assert info.format == "directory"
    assert len(info.tensors) == 3
    assert info.config is not None
    assert info.config.architectures == ("LlamaForCausalLM",)
    assert (info.config.num_layers, info.config.hidden_size, info.config.vocab_size) == (2, 8, 100)


@pytest.mark.parametrize(
    "shard",
    ["../outside.safetensors", "/etc/passwd", "sub/m.safetensors", ".."],
)
def test_index_refuses_shards_outside_its_folder(tmp_path: Path, shard: str) -> None:
    path = tmp_path / "i.json"
    path.write_text(json.dumps({"weight_map": {"a": shard}}))
    with pytest.raises(FormatError, match="unsafe shard path"):
        inspect_path(path)


def test_index_with_missing_or_misplaced_tensors_is_an_error(tmp_path: Path) -> None:
    path = _sharded(tmp_path)
    doc = json.loads(path.read_text())
    doc["weight_map"]["ghost"] = "m-1.safetensors"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="no shard holds"):
        inspect_path(path)
    doc["weight_map"].pop("ghost")
    doc["weight_map"]["a.weight"], doc["weight_map"]["b.bias"] = "m-2.safetensors", "m-1.safetensors"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="weight_map puts"):
        inspect_path(path)


def test_index_naming_a_missing_shard_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "i.json"
    path.write_text(json.dumps({"weight_map": {"a": "nope.safetensors"}}))
    with pytest.raises(FormatError, match="does not exist"):
        inspect_path(path)


def test_range_reads_need_only_the_header(tmp_path: Path) -> None:
    save_file({"w": np.zeros((64, 64), np.float32)}, tmp_path / "x.safetensors")
    data = (tmp_path / "x.safetensors").read_bytes()
    calls: list[tuple[int, int]] = []

    def read(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start:end]

    header = read_header_ranges(read, file_size=len(data))
    assert header.tensors["w"].shape == (64, 64)
    assert len(calls) == 2 and calls[1][1] < 200
    info = inspect_safetensors_ranges(read, name="https://hub/x.safetensors", file_size=len(data))
    (rec,) = info.tensors
    assert rec.file is None and rec.offset is not None
    assert data[rec.offset : rec.offset + rec.nbytes] == np.zeros((64, 64), np.float32).tobytes()
    with pytest.raises(FormatError):
        inspect_safetensors_ranges(lambda a, b: data[a:b][:3], name="short", file_size=len(data))


def _raw(header: object, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (struct.pack("<Q", 1 << 40) + b"{}", LimitExceededError),  # huge declared header
        (struct.pack("<Q", 500) + b"{" + b" " * 20, FormatError),  # header runs past the end
        (_raw({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8), FormatError),  # lies
        (
            _raw({"w": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}}, b"\0" * 4),
            FormatError,
        ),
        (
            _raw({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
            FormatError,
        ),  # short
        (
            _raw(
                {
                    "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                },
                b"\0" * 4,
            ),
            FormatError,
        ),  # overlap
        (_raw({"w": {"dtype": "XX", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), FormatError),
        (_raw([1, 2, 3]), FormatError),
    ],
)
def test_hostile_safetensors_give_typed_errors(tmp_path: Path, blob: bytes, error: type[Exception]) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(error):
        info = inspect_path(path)
        for t in info.tensors:
            to_array(t)


def test_directory_skips_other_json_and_symlinks(tmp_path: Path) -> None:
    save_file({"w": np.ones(2, np.float32)}, tmp_path / "model.safetensors")
    (tmp_path / "tokenizer.json").write_text("{broken")
    (tmp_path / "generation_config.json").write_text(json.dumps({"max_length": 20}))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.safetensors"
    save_file({"secret": np.ones(1, np.float32)}, outside)
    (tmp_path / "link.safetensors").symlink_to(outside)
    info = inspect_path(tmp_path)
    assert [t.name for t in info.tensors] == ["w"]
    assert any("tokenizer.json skipped" in w for w in info.warnings)


def test_tar_archives_without_torch_members_are_unsupported(tmp_path: Path) -> None:
    import tarfile

    from cairn.errors import UnsupportedFormatError

    (tmp_path / "pickle").write_bytes(b"\x80\x02}q\x00.")
    with tarfile.open(tmp_path / "old.pt", "w") as tf:
        tf.add(tmp_path / "pickle", arcname="pickle")
    with pytest.raises(UnsupportedFormatError, match=r"not a PyTorch checkpoint \(no storages, tensors"):
        inspect_path(tmp_path / "old.pt")


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_header_length_with_a_pickle_like_first_byte_is_still_safetensors(tmp_path: Path, proto: int) -> None:
    """A header of 0x0380 bytes starts the file with 0x80 0x03: the pickle magic of protocol 3."""
    from cairn.format.detect import detect

    n = 0x80 + (proto << 8)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (n - len(header))
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", n) + header + np.array([1.5, 2.5], np.float32).tobytes())
    assert path.read_bytes()[:2] == bytes([0x80, proto])
    assert detect(path) == "safetensors"
    (rec,) = inspect_path(path).tensors
    np.testing.assert_array_equal(to_array(rec), [1.5, 2.5])
