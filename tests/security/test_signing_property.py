"""Property: one flipped bit anywhere in any signed file fails verification and names exactly that file."""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.security.signing import InvalidSignatureError, SignatureFormatError, sign, verify, write_keypair

_KEYDIR = tempfile.TemporaryDirectory(prefix="cairn-prop-keys-")
PRIVATE, PUBLIC = write_keypair(Path(_KEYDIR.name) / "k")

names = st.sampled_from(["a.bin", "b.safetensors", "sub/c.json", "sub/deep/d.npy", "e"])
contents = st.binary(min_size=1, max_size=300)
models = st.dictionaries(names, contents, min_size=1, max_size=4)


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=models,
    pick=st.integers(min_value=0),
    offset=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
    method=st.sampled_from(["files", "shards"]),
    shard_size=st.integers(min_value=1, max_value=64),
)
def test_flipped_bit_in_any_file_fails_verification(
    files: dict[str, bytes], pick: int, offset: int, bit: int, method: str, shard_size: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="cairn-prop-") as tmp:
        model = Path(tmp) / "model"
        model.mkdir()
        _write(model, files)
        sign(model, key=PRIVATE, method=method, shard_size=shard_size, workers=2)  # type: ignore[arg-type]
        assert verify(model, key=PUBLIC).ok
        name = sorted(files)[pick % len(files)]
        data = bytearray(files[name])
        data[offset % len(data)] ^= 1 << bit
        (model / name).write_bytes(bytes(data))
        result = verify(model, key=PUBLIC)
        assert not result.ok
        assert result.changed == (name,)
        assert result.added == () and result.removed == ()


@pytest.fixture(scope="module")
def signature(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    model = tmp_path_factory.mktemp("sigprop") / "model"
    model.mkdir()
    _write(model, {"w.bin": b"weights" * 50, "c.json": b"{}"})
    sign(model, key=PRIVATE)
    return model, (model / "model.sig").read_bytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from(["payload", "sig"]), index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_flipped_bit_in_signed_payload_or_signature_fails(
    signature: tuple[Path, bytes], part: str, index: int, bit: int
) -> None:
    model, sig = signature
    doc = json.loads(sig)
    field = doc["dsseEnvelope"] if part == "payload" else doc["dsseEnvelope"]["signatures"][0]
    raw = bytearray(base64.b64decode(field[part]))
    raw[index % len(raw)] ^= 1 << bit
    field[part] = base64.b64encode(bytes(raw)).decode()
    with tempfile.NamedTemporaryFile(suffix=".sig") as f:
        f.write(json.dumps(doc).encode())
        f.flush()
        with pytest.raises((InvalidSignatureError, SignatureFormatError)):
            verify(model, key=PUBLIC, signature=f.name)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=10,
)


def _mutate(doc: object, data: st.DataObject) -> object:
    """Replace one randomly chosen node of a JSON document (or delete a key) with a random value."""
    if not isinstance(doc, dict | list) or not doc or data.draw(st.booleans(), label="stop here"):
        return data.draw(json_values, label="replacement")
    if isinstance(doc, dict):
        key = data.draw(st.sampled_from(sorted(doc)), label="key")
        if data.draw(st.integers(0, 9), label="delete?") == 0:
            return {k: v for k, v in doc.items() if k != key}
        return {**doc, key: _mutate(doc[key], data)}
    i = data.draw(st.integers(0, len(doc) - 1), label="index")
    return [*doc[:i], _mutate(doc[i], data), *doc[i + 1 :]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bundles_and_statements_parse_or_raise_format_error(
    signature: tuple[Path, bytes], data: st.DataObject
) -> None:
    """Hostile edits anywhere in a real signature: a parsed result or SignatureFormatError, nothing else."""
    from cairn.security.signing.envelope import parse_bundle, parse_statement

    bundle = json.loads(signature[1])
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    with contextlib.suppress(SignatureFormatError):
        parse_bundle(json.dumps(_mutate(bundle, data)).encode())
    with contextlib.suppress(SignatureFormatError):
        parse_statement(json.dumps(_mutate(statement, data)).encode())
