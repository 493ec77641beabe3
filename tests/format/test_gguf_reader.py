"""GGUF headers written by the reference ``gguf`` package, and hostile variants of them."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from cairn.errors import FormatError, LimitExceededError, UnsupportedFormatError
from cairn.format.arrays import to_array
from cairn.format.diff import diff_inspections
from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats

gguf = pytest.importorskip("gguf")


def _write(path: Path, embd: np.ndarray | None = None) -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_embedding_length(8)
    w.add_context_length(128)
    w.add_head_count(2)
    w.add_token_list([f"tok{i}" for i in range(40)])
    w.add_tensor("tok_embd.weight", np.arange(32, dtype=np.float32).reshape(4, 8) if embd is None else embd)
    w.add_tensor("blk.0.attn_q.weight", np.ones((2, 8), dtype=np.float16))
    w.add_tensor("blk.0.ffn.weight", np.zeros((2, 34), np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_metadata_tensors_and_quantization(tmp_path: Path) -> None:
    info = inspect_path(_write(tmp_path / "m.gguf"))
    assert info.format == "gguf"
    t = info.tensor_map()
    assert (t["tok_embd.weight"].dtype, t["tok_embd.weight"].shape) == ("F32", (4, 8))
    assert (t["blk.0.ffn.weight"].dtype, t["blk.0.ffn.weight"].shape, t["blk.0.ffn.weight"].nbytes) == (
        "Q8_0",
        (2, 32),
        68,
    )
    np.testing.assert_array_equal(
        to_array(t["tok_embd.weight"]), np.arange(32, dtype=np.float32).reshape(4, 8)
    )
    assert info.metadata["llama.block_count"] == 2
    assert info.metadata["tokenizer.ggml.tokens"] == {"length": 40, "head": [f"tok{i}" for i in range(16)]}
    assert info.config is not None and (info.config.num_layers, info.config.vocab_size) == (2, 40)
    st = tensor_stats(t["tok_embd.weight"])
    assert st is not None and st.max == 31.0
    assert tensor_stats(t["blk.0.ffn.weight"]) is None  # quantized: no numeric view


def test_diff_of_gguf_files(tmp_path: Path) -> None:
    a = inspect_path(_write(tmp_path / "a.gguf"))
    b = inspect_path(_write(tmp_path / "b.gguf", np.arange(32, dtype=np.float32).reshape(4, 8) * 2))
    result = diff_inspections(a, b)
    kinds = {c.name: c.kind for c in result.changes}
    assert kinds == {
        "tok_embd.weight": "changed",
        "blk.0.attn_q.weight": "identical",
        "blk.0.ffn.weight": "identical",
    }


def _header(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def _s(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (_header(1 << 40, 0), LimitExceededError),
        (_header(0, 1 << 40), LimitExceededError),
        (_header(0, 0, version=1), UnsupportedFormatError),
        (_header(0, 0, version=3 << 24), UnsupportedFormatError),  # big-endian
        (_header(0, 1) + struct.pack("<Q", 1 << 62) + b"key", FormatError),  # string longer than the file
        (_header(0, 1) + _s("k") + struct.pack("<IIQ", 9, 4, 1 << 60), FormatError),  # huge u32 array
        (_header(0, 1) + _s("k") + struct.pack("<IIQ", 9, 8, 1 << 60), FormatError),  # huge string array
        (_header(0, 1) + _s("k") + struct.pack("<I", 77), FormatError),  # unknown value type
        (_header(0, 1) + _s("k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 6 + struct.pack("<IQ", 4, 0),
         LimitExceededError),  # arrays nested too deeply
        (_header(1, 0) + _s("t") + struct.pack("<I", 99), LimitExceededError),  # rank 99
        (_header(1, 0) + _s("t") + struct.pack("<IQIQ", 1, 4, 0, 0), FormatError),  # data past the end
        (_header(1, 0) + _s("t") + struct.pack("<IQIQ", 1, 4, 200, 0), UnsupportedFormatError),  # unknown type
        (_header(1, 0) + _s("t") + struct.pack("<IQIQ", 1, 30, 2, 0) + b"\0" * 64, FormatError),  # partial block
        (_header(2, 0) + _s("a") + struct.pack("<IQIQ", 1, 8, 0, 0) + _s("b") + struct.pack("<IQIQ", 1, 8, 0, 0)
         + b"\0" * 64, FormatError),  # overlapping tensors
        (_header(1, 0) + _s("t") + struct.pack("<IQIQ", 1, 1, 0, 3) + b"\0" * 64, FormatError),  # misaligned
        (_header(0, 1) + _s("k") + struct.pack("<I", 8) + struct.pack("<Q", 2) + b"\xff\xfe", FormatError),
        (b"GGUF\x03\x00", FormatError),  # truncated
    ],
)  # fmt: skip
def test_hostile_gguf(tmp_path: Path, blob: bytes, error: type[Exception]) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(error):
        inspect_path(path)


def test_truncations_of_a_real_file_never_crash(tmp_path: Path) -> None:
    data = _write(tmp_path / "m.gguf").read_bytes()
    end_of_data = max(t.offset + t.nbytes for t in inspect_path(tmp_path / "m.gguf").tensors if t.offset)
    for cut in range(4, end_of_data, 37):
        (tmp_path / "cut.gguf").write_bytes(data[:cut])
        with pytest.raises(FormatError):
            inspect_path(tmp_path / "cut.gguf")
