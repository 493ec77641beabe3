"""Keras 3 archives: config summary, imported classes, Lambda bytecode flagged, hostile members."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from cairn.errors import FormatError, LimitExceededError
from cairn.format import keras as keras_reader
from cairn.format.reader import inspect_path

CONFIG = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {"name": "input", "batch_shape": [None, 4]},
            },
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {"name": "dense", "units": 3, "activation": "relu"},
                "build_config": {"input_shape": [None, 4]},
            },
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "config": {
                    "name": "lambda",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": "4wEAAAAAAAAA", "defaults": None},
                    },
                },
            },
            {
                "module": None,
                "class_name": "MyLayer",
                "registered_name": "custom>MyLayer",
                "config": {"name": "mine"},
            },
        ],
    },
}


def _keras(path: Path, config: object = CONFIG, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-11-24"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_config_layers_imports_and_lambda_flag(tmp_path: Path) -> None:
    info = inspect_path(_keras(tmp_path / "model.keras"))
    assert info.format == "keras"
    assert info.metadata["model_class"] == "Sequential" and info.metadata["keras_version"] == "3.6.0"
    layers = info.metadata["layers"]
    assert isinstance(layers, list) and layers[1] == {
        "class_name": "Dense",
        "name": "dense",
        "units": 3,
        "activation": "relu",
        "input_shape": [None, 4],
    }
    assert "keras.layers.Dense" in info.globals and "custom>MyLayer" in info.globals
    assert any("bytecode" in w for w in info.warnings)
    assert any("model.weights.h5 not listed" in w for w in info.warnings)  # the stub is no real HDF5


def test_hostile_keras_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FormatError, match="not a serialized Keras model"):
        inspect_path(_keras(tmp_path / "a.keras", config=[1, 2]))
    path = tmp_path / "b.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", b"{not json")
        zf.writestr("model.weights.h5", b"")
    with pytest.raises(FormatError, match="not valid"):
        inspect_path(path)
    deep: object = {"class_name": "X"}
    for _ in range(300):
        deep = {"class_name": "Nest", "config": deep}
    with pytest.raises(LimitExceededError):
        inspect_path(_keras(tmp_path / "c.keras", config=deep))
    monkeypatch.setattr(keras_reader, "MAX_JSON_SIZE", 100)
    with pytest.raises(LimitExceededError):
        inspect_path(_keras(tmp_path / "d.keras"))
