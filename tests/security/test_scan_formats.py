"""Real files written by the formats' own libraries (onnx, gguf, numpy): clean ones pass, hostile ones fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cairn.security import Severity, scan

onnx = pytest.importorskip("onnx")
gguf = pytest.importorskip("gguf")

# chat templates as published with popular models (shortened): none may be flagged
BENIGN_TEMPLATES = [
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]"
    "['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message "
    "in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation"
    " roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message "
    "!= false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}"
    "{% set content = message['content'] %}{% endif %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endfor %}",
    "{{- bos_token }}{%- set ns = namespace(system='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{%- set ns.system = message['content'] | trim %}{%- endif %}{%- endfor %}{{- '<|start_header_id|>system<|end_header_id|>"
    "\\n\\n' + ns.system + '<|eot_id|>' }}{%- if tools is not none %}{{- tools | tojson(indent=4) }}{%- endif %}",
]
HOSTILE_TEMPLATES = [
    "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}",
    "{{ lipsum.__globals__['os'].system('id') }}",
]


def _gguf(path: Path, template: str) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_chat_template(template)
    writer.add_token_list([f"tok{i}" for i in range(1000)])
    writer.add_array("general.tags", ["a", "b"])
    writer.add_tensor("w", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("index", range(len(BENIGN_TEMPLATES)))
def test_real_gguf_with_ordinary_templates_is_clean(tmp_path: Path, index: int) -> None:
    path = _gguf(tmp_path / "m.gguf", BENIGN_TEMPLATES[index])
    report = scan([path])
    assert report.findings == () and report.errors == ()
    assert report.scanned == (str(path),)  # read as GGUF, not skipped


@pytest.mark.parametrize("index", range(len(HOSTILE_TEMPLATES)))
def test_real_gguf_with_injected_template_is_critical(tmp_path: Path, index: int) -> None:
    report = scan([_gguf(tmp_path / "m.gguf", HOSTILE_TEMPLATES[index])])
    assert [f.rule for f in report.findings] == ["gguf-template-injection"]
    assert report.findings[0].severity is Severity.CRITICAL


def test_truncated_gguf_is_reported_malformed(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "m.gguf", BENIGN_TEMPLATES[0])
    path.write_bytes(path.read_bytes()[:200])
    assert [f.rule for f in scan([path]).findings] == ["gguf-malformed"]


def _onnx_model(folder: Path, *, location: str | None, domain: str = "") -> Path:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), name="w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        nodes.append(helper.make_node("Evil", ["y"], ["z"], domain=domain))
        opsets.append(helper.make_opsetid(domain, 1))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z" if domain else "y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=opsets)
    if location is not None:
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        entry = weight.external_data.add()
        entry.key, entry.value = "location", location
        model.graph.initializer[0].CopyFrom(weight)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_real_onnx_models_are_clean(tmp_path: Path) -> None:
    for location in (None, "weights/model.onnx.data"):
        path = _onnx_model(tmp_path, location=location)
        report = scan([path])
        assert report.exit_status() == 0 and report.findings == ()
        assert report.scanned == (str(path),)  # read as ONNX, not skipped


@pytest.mark.parametrize(
    "location", ["../../secrets.bin", "/etc/passwd", "weights/../../x", "C:\\\\Windows\\\\x"]
)
def test_onnx_external_data_escaping_the_folder(tmp_path: Path, location: str) -> None:
    report = scan([_onnx_model(tmp_path, location=location)])
    assert [f.rule for f in report.findings] == ["onnx-external-data-escape"]


def test_onnx_custom_operator_domain(tmp_path: Path) -> None:
    report = scan([_onnx_model(tmp_path, location=None, domain="com.example.native")])
    assert {f.rule for f in report.findings} == {"onnx-custom-domain"}
    assert any("com.example.native::Evil" in f.construct for f in report.findings)


def test_npy_plain_and_structured_arrays_are_clean(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(3, dtype=[("x", "<f4"), ("y", "<i8")]))
    np.save(tmp_path / "b.npy", np.arange(6).reshape(2, 3), allow_pickle=False)
    report = scan([tmp_path])
    assert report.findings == () and report.errors == ()


def test_npy_object_array_of_strings_is_low_only(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array(["a", None, 3], dtype=object), allow_pickle=True)
    report = scan([tmp_path / "o.npy"])
    assert [(f.rule, f.severity) for f in report.findings] == [("npy-object-array", Severity.LOW)]
    assert report.exit_status() == 0


def test_chunked_find_sees_needles_across_chunk_boundaries() -> None:
    from cairn.security.model_formats import find

    data = memoryview(b"x" * 10 + b"needle" + b"y" * 10 + b"needle")
    assert [find(data, b"needle", 0, chunk=c) for c in (1, 4, 12, 100)] == [10] * 4
    assert find(data, b"needle", 11, chunk=4) == 26
    assert find(data, b"absent", 0, chunk=4) == -1


def test_large_tar_members_are_read_without_copying(tmp_path: Path) -> None:
    import io
    import pickle
    import tarfile

    payload = b"\x80\x02cos\nsystem\nX\x01\x00\x00\x00x\x85R."
    with tarfile.open(tmp_path / "m.tar", "w") as tf:
        for name, data in (("weights.bin", b"\x00" * (4 << 20)), ("extra/obj.pkl", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("ok.pkl")
        ok = pickle.dumps({"a": 1}, protocol=4)
        info.size = len(ok)
        tf.addfile(info, io.BytesIO(ok))
    report = scan([tmp_path / "m.tar"])
    assert [(f.member, f.construct) for f in report.findings] == [("extra/obj.pkl", "os.system")]
    assert f"{tmp_path / 'm.tar'}#ok.pkl" in report.scanned


_LAMBDA_CONFIG = {
    "config": {
        "name": "s",
        "layers": [{"config": {"name": "l", "function": ["YQ==", None, None]}, "class_name": "Lambda"}],
    },
    "class_name": "Sequential",
}
_DENSE_CONFIG = {
    "class_name": "Sequential",
    "config": {"layers": [{"class_name": "Dense", "config": {"units": 3}}]},
}


@pytest.mark.parametrize("spelling", ["default", "indented", "compact", "fixed-length"])
def test_real_h5_lambda_layer_in_any_json_spelling(tmp_path: Path, spelling: str) -> None:
    import json

    h5py = pytest.importorskip("h5py")
    text = {
        "default": json.dumps(_LAMBDA_CONFIG),
        "indented": json.dumps(_LAMBDA_CONFIG, indent=2),
        "compact": json.dumps(_LAMBDA_CONFIG, separators=(",", ":")),
        "fixed-length": json.dumps(_LAMBDA_CONFIG),
    }[spelling]
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        if spelling == "fixed-length":
            f.attrs.create("model_config", np.bytes_(text))
        else:
            f.attrs["model_config"] = text
        f.create_group("model_weights").create_dataset("w", data=np.ones((8, 8), dtype="f4"))
    report = scan([path])
    assert [(f.rule, f.severity) for f in report.findings] == [("keras-lambda", Severity.CRITICAL)]


def test_real_h5_with_standard_layers_is_clean(tmp_path: Path) -> None:
    import json

    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_DENSE_CONFIG)
        f.attrs["keras_version"] = "2.15.0"
        f.create_group("model_weights").create_dataset("w", data=np.ones((64, 64), dtype="f4"))
    report = scan([path])
    assert report.findings == () and report.scanned == (str(path),)


def test_symlinks_leaving_the_model_folder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (model / "weights.bin").symlink_to(tmp_path / "secret.txt")
    (model / "inside.txt").write_text("y")
    (model / "alias.txt").symlink_to(model / "inside.txt")
    report = scan([model])
    assert [(Path(f.path).name, f.rule) for f in report.findings] == [("weights.bin", "path-symlink-escape")]
