"""cairn.save / cairn.load / cairn.verify on real torch and NumPy state."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch
from ckpt_helpers import TinyNet, assert_same_tensors, make_state, train_steps

import cairn
from cairn.errors import ConflictError, StateMismatchError, UsageError

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/spec/checkpoint.schema.json").read_text())


def test_full_training_state_round_trips(tmp_path: Path, trained: dict[str, Any]) -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    manifest = cairn.save(
        tmp_path / "ck",
        **trained,
        extra={"scaler": scaler, "sampler": torch.Generator().manual_seed(5)},
        metadata={"epoch": 1, "metrics": {"loss": 0.25}, "datasets": [{"name": "toy"}]},
    )
    jsonschema.validate(json.loads((tmp_path / "ck/cairn.json").read_text()), SCHEMA)
    assert set(manifest.parts) == {"model", "optimizer", "scheduler", "extra/scaler", "extra/sampler", "rng"}
    assert manifest.metadata["environment"]["libraries"]["torch"] == importlib.metadata.version("torch")
    assert manifest.metadata["code"].keys() == {"git_commit", "git_dirty", "git_branch"}

    fresh = make_state(seed=99)
    scaler2 = torch.amp.GradScaler("cpu", init_scale=1.0)
    gen2 = torch.Generator().manual_seed(0)
    result = cairn.load(tmp_path / "ck", **fresh, extra={"scaler": scaler2, "sampler": gen2})
    assert result.metadata["metrics"] == {"loss": 0.25}
    assert_same_tensors(trained["model"].state_dict(), fresh["model"].state_dict())
    o1, o2 = trained["optimizer"].state_dict(), fresh["optimizer"].state_dict()
    assert o1["param_groups"] == o2["param_groups"]
    for pid in o1["state"]:
        for key in o1["state"][pid]:
            assert torch.equal(o1["state"][pid][key], o2["state"][pid][key])
    assert trained["scheduler"].state_dict() == fresh["scheduler"].state_dict()
    assert scaler2.get_scale() == 1024.0
    assert torch.equal(gen2.get_state(), torch.Generator().manual_seed(5).get_state())


def test_weights_use_state_dict_names_and_load_with_plain_safetensors(
    tmp_path: Path, trained: dict[str, Any]
) -> None:
    from safetensors.torch import load_file

    cairn.save(tmp_path / "ck", model=trained["model"])
    plain = load_file(tmp_path / "ck/model.safetensors")
    assert_same_tensors(dict(sorted(plain.items())), dict(sorted(trained["model"].state_dict().items())))


def test_tied_weights_are_stored_once(tmp_path: Path) -> None:
    model = TinyNet(tie=True)
    manifest = cairn.save(tmp_path / "ck", model=model, rng_state=False)
    assert manifest.parts["model"].aliases == {"head.weight": "embed.weight"}
    fresh = TinyNet(tie=True)
    cairn.load(tmp_path / "ck", model=fresh)
    assert fresh.head.weight is fresh.embed.weight
    assert torch.equal(fresh.embed.weight, model.embed.weight)


def test_sharding_above_max_shard_size(tmp_path: Path, trained: dict[str, Any]) -> None:
    manifest = cairn.save(tmp_path / "ck", model=trained["model"], max_shard_size=600)
    part = manifest.parts["model"]
    assert len(part.files) > 1 and part.index == "model.safetensors.index.json"
    index = json.loads((tmp_path / "ck" / part.index).read_text())
    assert set(index["weight_map"]) == set(trained["model"].state_dict())
    assert set(index["weight_map"].values()) == set(part.files)
    fresh = TinyNet()
    cairn.load(tmp_path / "ck", model=fresh)
    assert_same_tensors(trained["model"].state_dict(), fresh.state_dict())
    cairn.verify(tmp_path / "ck")


def test_numpy_only_state(tmp_path: Path) -> None:
    weights = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3, dtype=np.float64)}
    extra = {"step": 7, "history": [0.5, 0.25], "bits": np.array([True, False])}
    cairn.save(tmp_path / "ck", model=weights, extra={"trainer": extra})
    target = {"w": np.zeros((3, 4), np.float32), "b": np.zeros(3, np.float64)}
    cairn.load(tmp_path / "ck", model=target)
    np.testing.assert_array_equal(target["w"], weights["w"])
    state = cairn.load_state(tmp_path / "ck", "extra/trainer")
    assert state["step"] == 7 and state["history"] == [0.5, 0.25]
    np.testing.assert_array_equal(state["bits"], extra["bits"])


def test_bfloat16_and_float8_round_trip(tmp_path: Path) -> None:
    state = {
        "bf": torch.randn(5, 3).to(torch.bfloat16),
        "f8": torch.randn(4).to(torch.float8_e4m3fn),
        "u8": torch.arange(3, dtype=torch.uint8),
    }
    cairn.save(tmp_path / "ck", model=state, rng_state=False)
    out = cairn.load_state(tmp_path / "ck")
    for key in state:
        assert out[key].dtype == state[key].dtype
        assert torch.equal(out[key].view(torch.uint8), state[key].view(torch.uint8))


def test_mismatch_names_every_problem_and_applies_nothing(tmp_path: Path, trained: dict[str, Any]) -> None:
    cairn.save(tmp_path / "ck", **trained)

    class Other(TinyNet):
        def __init__(self) -> None:
            super().__init__(vocab=20)  # embed and head change shape
            self.extra_layer = torch.nn.Linear(2, 2)  # missing from the checkpoint
            self.hidden = torch.nn.Linear(8, 8).double()  # dtype change

    target = Other()
    opt = torch.optim.AdamW(target.parameters())
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(StateMismatchError) as exc:
        cairn.load(tmp_path / "ck", model=target, optimizer=opt)
    kinds = {(m.key, m.kind) for m in exc.value.mismatches}
    assert ("embed.weight", "shape") in kinds and ("head.weight", "shape") in kinds
    assert ("hidden.weight", "dtype") in kinds
    assert ("extra_layer.weight", "missing") in kinds
    assert any(m.part == "optimizer" for m in exc.value.mismatches)
    assert_same_tensors(before, target.state_dict())  # nothing applied
    assert opt.state_dict()["state"] == {}


def test_non_strict_loads_what_fits_and_reports_the_rest(tmp_path: Path, trained: dict[str, Any]) -> None:
    cairn.save(tmp_path / "ck", model=trained["model"])
    target = TinyNet(vocab=20)
    result = cairn.load(tmp_path / "ck", model=target, strict=False)
    assert {(m.key, m.kind) for m in result.mismatches} == {
        ("embed.weight", "shape"),
        ("head.weight", "shape"),
    }
    assert torch.equal(target.hidden.weight, trained["model"].hidden.weight)


def test_missing_part_is_reported(tmp_path: Path, trained: dict[str, Any]) -> None:
    cairn.save(tmp_path / "ck", model=trained["model"])
    with pytest.raises(cairn.errors.NotFoundError, match="optimizer"):
        cairn.load(tmp_path / "ck", model=TinyNet(), optimizer=trained["optimizer"])


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path, trained: dict[str, Any]) -> None:
    cairn.save(tmp_path / "ck", model=trained["model"])
    with pytest.raises(ConflictError):
        cairn.save(tmp_path / "ck", model=trained["model"])
    train_steps(trained, 1)
    cairn.save(tmp_path / "ck", model=trained["model"], overwrite=True)
    assert_same_tensors(cairn.load_state(tmp_path / "ck"), trained["model"].state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        cairn.save(tmp_path / "a", model=object())
    with pytest.raises(UsageError):
        cairn.save(tmp_path / "b", model={"w": np.zeros(1)}, metadata={"when": object()})
    with pytest.raises(UsageError):
        cairn.save(tmp_path / "c", model={"w": np.zeros(1)}, extra={"../escape": {}})
    assert not any(tmp_path.iterdir())


def test_transformers_model_loads_with_from_pretrained(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    model = BertModel(config).eval()
    cairn.save(tmp_path / "ck", model=model, rng_state=False)
    loaded = BertModel.from_pretrained(tmp_path / "ck").eval()
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(model(ids).last_hidden_state, loaded(ids).last_hidden_state)
    cairn.verify(tmp_path / "ck")


def test_unverified_load_maps_files_and_still_checks_sizes(tmp_path: Path, trained: dict[str, Any]) -> None:
    cairn.save(tmp_path / "ck", **trained)
    fresh = make_state(seed=3)
    cairn.load(tmp_path / "ck", **fresh, verify=False)
    assert_same_tensors(trained["model"].state_dict(), fresh["model"].state_dict())
    fresh["model"].hidden.weight.data.add_(1)  # copy-on-write: the file is never changed through the map
    cairn.verify(tmp_path / "ck")
    path = tmp_path / "ck/model.safetensors"
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(cairn.errors.IntegrityError, match="size"):
        cairn.load(tmp_path / "ck", model=TinyNet(), verify=False)


def test_non_strict_skips_an_optimizer_that_does_not_fit(tmp_path: Path, trained: dict[str, Any]) -> None:
    cairn.save(tmp_path / "ck", **trained)
    model = TinyNet()
    opt = torch.optim.SGD([model.hidden.weight], lr=0.1)  # one group of one parameter instead of six
    result = cairn.load(tmp_path / "ck", model=model, optimizer=opt, strict=False)
    assert [(m.part, m.kind) for m in result.mismatches] == [("optimizer", "structure")]
    assert opt.state_dict()["param_groups"][0]["lr"] == 0.1
    assert torch.equal(model.hidden.weight, trained["model"].hidden.weight)


def test_a_refusing_load_state_dict_is_a_checkpoint_error(tmp_path: Path) -> None:
    class Picky:
        def state_dict(self) -> dict[str, int]:
            return {"n": 1}

        def load_state_dict(self, state: dict[str, int]) -> None:
            raise RuntimeError("I only accept n=1")

    cairn.save(tmp_path / "ck", extra={"picky": {"n": 2}})
    with pytest.raises(cairn.errors.CheckpointError, match="I only accept"):
        cairn.load(tmp_path / "ck", extra={"picky": Picky()})
