"""Mutated and truncated versions of real model files never crash a format check."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from security_corpus import CASES

from cairn.security import scan_bytes

_SEEDS = {c.name: c for c in CASES if not c.name.startswith(("bomb", "joblib"))}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    return {name: case.build(folder) for name, case in _SEEDS.items()}


@given(name=st.sampled_from(sorted(_SEEDS)), data=st.data())
@settings(max_examples=150, deadline=None)
def test_mutations_never_crash_a_check(seeds: dict[str, bytes], name: str, data: st.DataObject) -> None:
    raw = bytearray(seeds[name])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    report = scan_bytes(bytes(raw[:cut]), name)
    assert not any("internal error" in e.message for e in report.errors), report.errors


def test_an_internal_failure_is_an_error_not_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn.security import model_formats

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(model_formats, "check", broken)
    report = scan_bytes(b"GGUF" + b"\x00" * 40, "x.gguf")
    assert report.exit_status() == 2 and "boom" in report.errors[0].message
