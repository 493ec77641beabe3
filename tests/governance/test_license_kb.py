"""The license knowledge base: complete entries with sources, lookup, text detection, malformed data."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from cairn.governance.errors import LicenseDataError
from cairn.governance.licenses import REQUIRED_FIELDS, load_knowledge_base, parse_knowledge_base


def _raw() -> dict[str, object]:
    data = resources.files("cairn.governance").joinpath("data/licenses.json").read_bytes()
    doc = json.loads(data)
    assert isinstance(doc, dict)
    return doc


def test_every_entry_has_every_field_and_a_source_link() -> None:
    entries = _raw()["licenses"]
    assert isinstance(entries, list) and len(entries) >= 30
    for entry in entries:
        assert set(REQUIRED_FIELDS) <= set(entry), entry.get("id")
        assert entry["sources"] and all(s.startswith("https://") for s in entry["sources"]), entry["id"]
        assert entry["text_fingerprints"], entry["id"]


def test_the_issue_s_licenses_are_all_there() -> None:
    kb = load_knowledge_base()
    wanted = [
        "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "llama2", "llama3",
        "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma", "mrl", "mnpl", "qwen", "falcon", "deepseek",
        "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    ]  # fmt: skip
    assert [w for w in wanted if kb.lookup(w) is None] == []


def test_lookup_by_spdx_id_and_alias_is_case_insensitive() -> None:
    kb = load_knowledge_base()
    assert kb.get("Apache-2.0").id == "apache-2.0"
    assert kb.get("CC-BY-NC-4.0").noncommercial
    assert kb.get("mistral-research-license").research_only
    assert kb.lookup("no-such-license") is None


def test_attributes_follow_the_spec_table() -> None:
    kb = load_knowledge_base()
    llama = kb.get("llama3.1")
    assert llama.mau_cap == 700_000_000 and llama.passes_on_use_restrictions and llama.outputs_terms_apply
    assert any(o.kind == "name_prefix" and o.text == "Llama" for o in llama.obligations)
    assert not kb.get("llama3").outputs_may_train_other_models
    assert ("EU", "multimodal") in kb.get("llama3.2").geo_restrictions
    assert kb.get("cc-by-sa-4.0").share_alike == ("cc-by-sa-4.0", "gpl-3.0")
    assert not kb.get("cc-by-nd-4.0").derivatives
    assert kb.get("qwen").mau_cap == 100_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Apache License\n   Version 2.0, January 2004", "apache-2.0"),
        ("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT", "llama3.1"),
        ("META LLAMA 3 COMMUNITY LICENSE AGREEMENT", "llama3"),
        ("Attribution-NonCommercial 4.0 International", "cc-by-nc-4.0"),
        ("Attribution-NonCommercial-ShareAlike 4.0 International", "cc-by-nc-sa-4.0"),
        ("Qwen RESEARCH LICENSE AGREEMENT", "qwen-research"),
    ],
)
def test_detect_prefers_the_most_specific_fingerprint(text: str, expected: str) -> None:
    assert load_knowledge_base().detect(text)[0].id == expected


def _doc_with(**changes: object) -> bytes:
    doc = _raw()
    entry = dict(doc["licenses"][0])  # type: ignore[index]
    entry.update(changes)
    doc["licenses"] = [entry]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "change",
    [
        {"sources": []},
        {"sources": ["http://insecure.example"]},
        {"derivatives": "yes"},
        {"commercial": {"allowed": True, "mau_cap": "many"}},
        {"obligations": [{"kind": "dance"}]},
        {"obligations": [{"kind": "name_prefix"}]},
        {"open_for": ["weights"]},
        {"confidence": "vibes"},
        {"osi_approved": 1},
    ],
)
def test_malformed_entries_are_rejected_with_a_typed_error(change: dict[str, object]) -> None:
    with pytest.raises(LicenseDataError) as exc:
        parse_knowledge_base(_doc_with(**change))
    assert exc.value.entry == "apache-2.0"


def test_missing_field_duplicate_key_and_bad_json_are_rejected() -> None:
    doc = _raw()
    entry = dict(doc["licenses"][0])  # type: ignore[index]
    del entry["notes"]
    with pytest.raises(LicenseDataError, match="notes"):
        parse_knowledge_base(json.dumps({**doc, "licenses": [entry]}).encode())
    first = doc["licenses"][0]  # type: ignore[index]
    with pytest.raises(LicenseDataError, match="two entries"):
        parse_knowledge_base(json.dumps({**doc, "licenses": [first, first]}).encode())
    with pytest.raises(LicenseDataError):
        parse_knowledge_base(b"{not json")
    with pytest.raises(LicenseDataError):
        parse_knowledge_base(b"[]")
