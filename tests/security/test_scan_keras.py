"""Real Keras 3 models (torch backend) saved as .keras and .h5: standard layers pass, code-carrying ones fail."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from cairn.security import Severity, scan

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keras")

    @keras.saving.register_keras_serializable(package="mypkg")
    class Scale(keras.layers.Layer):  # type: ignore[misc]
        def call(self, x: object) -> object:
            return x

    standard = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, activation="relu"),
            keras.layers.LayerNormalization(),
            keras.layers.Dense(1),
        ]
    )
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    custom = keras.Sequential([keras.Input((4,)), Scale()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in (("standard", standard), ("lambda", lam), ("custom", custom)):
            model.save(folder / f"{name}.keras")
            if name != "custom":
                model.save(folder / f"{name}.h5")
    return folder


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_standard_layers_are_clean(models: Path, suffix: str) -> None:
    report = scan([models / f"standard{suffix}"])
    assert report.findings == () and report.errors == ()
    assert len(report.scanned) >= 1


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layer_is_critical(models: Path, suffix: str) -> None:
    report = scan([models / f"lambda{suffix}"])
    assert {f.rule for f in report.findings} == {"keras-lambda"}
    assert report.max_severity is Severity.CRITICAL


def test_custom_registered_layer_is_reported(models: Path) -> None:
    report = scan([models / "custom.keras"])
    found = {(f.rule, f.construct, f.severity) for f in report.findings}
    assert ("keras-custom-object", "mypkg>Scale", Severity.MEDIUM) in found
    # the layer's class lives in this test module, which loading would import
    assert ("keras-custom-module", f"{__name__}.Scale", Severity.HIGH) in found
