"""The lineage-aware license check over realistic local lineage chains (spec §4.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gov_fixtures import APACHE, LLAMA31_LICENSE, LLAMA31_NOTICE, MakeModel

from cairn.governance.check import CheckReport, check_lineage
from cairn.governance.lineage import LocalResolver, LocalSource, walk


def check(path: Path, *, use: str | None = None, relation: str | None = None) -> CheckReport:
    graph = walk(LocalSource(path), LocalResolver((path.parent,)), relation=relation)
    return check_lineage(graph, use=use)


def codes(findings: tuple[object, ...]) -> set[str]:
    return {f.code for f in findings}  # type: ignore[attr-defined]


def status_of(report: CheckReport, code: str) -> str:
    return next(f.status for f in report.obligations if f.code == code)


def llama_base(make_model: MakeModel) -> Path:
    return make_model("meta-llama/Llama-3.1-8B", license="llama3.1", files={"LICENSE": LLAMA31_LICENSE})


def test_llama_finetune_missing_prefix_and_notice_lists_the_obligations(make_model: MakeModel) -> None:
    llama_base(make_model)
    child = make_model(
        "acme-chat",
        license="llama3.1",
        base_model="meta-llama/Llama-3.1-8B",
        files={"LICENSE": LLAMA31_LICENSE},
    )
    report = check(child)
    assert report.conflicts == ()
    assert report.exit_code == 0 and report.status == "no_conflict_found"
    assert status_of(report, "name_prefix") == "missing"
    assert status_of(report, "notice_file") == "missing"
    assert status_of(report, "attribution_display") == "missing"
    assert status_of(report, "license_copy") == "met"


def test_llama_finetune_that_fulfils_everything_still_lists_the_obligations_as_met(
    make_model: MakeModel,
) -> None:
    llama_base(make_model)
    child = make_model(
        "Llama-3.1-acme-chat",
        body="# Llama 3.1 acme chat\n\nBuilt with Llama\n",
        license="llama3.1",
        base_model="meta-llama/Llama-3.1-8B",
        files={"LICENSE": LLAMA31_LICENSE, "NOTICE": LLAMA31_NOTICE},
    )
    report = check(child, use="commercial")
    assert report.exit_code == 0
    assert {f.code: f.status for f in report.obligations if f.status in {"met", "missing"}} == {
        "license_copy": "met",
        "notice_file": "met",
        "attribution_display": "met",
        "name_prefix": "met",
    }
    assert "user_cap" in codes(report.obligations)


def test_llama_finetune_relicensed_apache_drops_the_use_restrictions(make_model: MakeModel) -> None:
    llama_base(make_model)
    child = make_model(
        "acme", license="apache-2.0", base_model="meta-llama/Llama-3.1-8B", files={"LICENSE": APACHE}
    )
    report = check(child)
    assert codes(report.conflicts) == {"use_restrictions_dropped"}
    assert report.exit_code == 1


def test_merge_with_a_noncommercial_parent_claiming_apache_is_a_conflict(make_model: MakeModel) -> None:
    make_model("org/open-base", license="apache-2.0")
    make_model("org/nc-model", license="cc-by-nc-4.0")
    merged = make_model(
        "merged", license="apache-2.0", base_model=["org/open-base", "org/nc-model", "org/nc-model"]
    )
    report = check(merged)
    assert codes(report.conflicts) == {"noncommercial_parent"}
    assert report.conflicts[0].source and report.conflicts[0].source.endswith("nc-model")
    assert report.exit_code == 1
    graph = walk(LocalSource(merged), LocalResolver((merged.parent,)))
    assert [e.relation for e in graph.root.parents] == ["merge", "merge"]  # duplicate parent listed once


def test_noncommercial_merge_declared_nc_passes_but_commercial_use_conflicts(make_model: MakeModel) -> None:
    make_model("nc-parent", license="cc-by-nc-4.0")
    child = make_model("child", license="cc-by-nc-4.0", base_model="nc-parent")
    assert check(child).exit_code == 0
    report = check(child, use="commercial")
    assert codes(report.conflicts) == {"use_not_permitted"} and report.exit_code == 1
    assert check(child, use="internal").exit_code == 2
    assert check(child, use="research").exit_code == 0


def test_unknown_license_needs_review_and_exits_2(make_model: MakeModel) -> None:
    make_model("weird-base", license="my-own-license-v7")
    child = make_model("child", license="mit", base_model="weird-base")
    report = check(child)
    assert codes(report.needs_review) == {"unknown_license"} and report.exit_code == 2
    assert check(make_model("other", license="other")).exit_code == 2
    assert codes(check(make_model("none")).needs_review) == {"no_license"}


def test_missing_parent_needs_review_and_exits_2(make_model: MakeModel) -> None:
    child = make_model("orphan", license="apache-2.0", base_model="nobody/not-here")
    report = check(child)
    assert codes(report.needs_review) == {"parent_not_found"}
    assert report.needs_review[0].source == "nobody/not-here" and report.exit_code == 2


def test_adapter_reports_combined_obligations_instead_of_a_conflict(make_model: MakeModel) -> None:
    make_model("Qwen/Qwen2.5-VL-3B", license="qwen-research")
    adapter = make_model(
        "colpali-like",
        license="apache-2.0",
        files={"adapter_config.json": '{"base_model_name_or_path": "Qwen/Qwen2.5-VL-3B"}'},
    )
    report = check(adapter)
    assert report.conflicts == ()
    assert "combined_noncommercial_parent" in codes(report.obligations)
    assert (
        check(adapter, use="commercial").exit_code == 1
    )  # the combination still cannot be used commercially
    # the same files checked as a fine-tune are a conflict
    assert codes(check(adapter, relation="finetune").conflicts) == {"noncommercial_parent"}


def test_quantized_copy_with_a_different_license_is_drift(make_model: MakeModel) -> None:
    make_model("base", license="mit")
    quant = make_model("base-gguf", license="apache-2.0", base_model="base", files={"model.Q4_K_M.gguf": "x"})
    report = check(quant)
    assert status_of(report, "license_drift") == "missing" and report.exit_code == 0
    same = make_model("base-gguf-ok", license="mit", base_model="base", base_model_relation="quantized")
    assert "license_drift" not in codes(check(same).obligations)


def test_quantized_chain_carries_grandparent_noncommercial_terms(make_model: MakeModel) -> None:
    make_model("grand", license="mrl")
    make_model("mid", license="mrl", base_model="grand")
    quant = make_model("quant", license="mit", base_model="mid", base_model_relation="quantized")
    report = check(quant)
    assert {f.source.rsplit("/", 1)[-1] for f in report.conflicts if f.source} == {"mid", "grand"}
    assert "mrl" in report.inherited


def test_distillation_edges_follow_each_license_s_output_terms(make_model: MakeModel) -> None:
    make_model("teacher31", license="llama3.1")
    make_model("teacher3", license="llama3")
    make_model("teacher-mit", license="mit")
    s1 = make_model("student1", license="apache-2.0", trained_on_outputs_of="teacher31")
    assert "use_restrictions_dropped" in codes(check(s1).conflicts)
    assert status_of(check(s1), "name_prefix") == "missing"
    s2 = make_model("student2", license="apache-2.0", trained_on_outputs_of=["teacher3"])
    assert codes(check(s2).conflicts) == {"outputs_training"}
    s3 = make_model("student3", license="apache-2.0", trained_on_outputs_of="teacher-mit")
    assert check(s3).conflicts == () and check(s3).exit_code == 0


def test_share_alike_and_no_derivatives(make_model: MakeModel) -> None:
    make_model("sa", license="cc-by-sa-4.0")
    make_model("nd", license="cc-by-nd-4.0")
    make_model("rail", license="bigscience-openrail-m")
    assert codes(check(make_model("c1", license="mit", base_model="sa")).conflicts) == {"share_alike"}
    assert check(make_model("c2", license="cc-by-sa-4.0", base_model="sa")).exit_code == 0
    assert codes(check(make_model("c3", license="cc-by-nd-4.0", base_model="nd")).conflicts) == {
        "no_derivatives"
    }
    both = make_model("c4", license="cc-by-sa-4.0", base_model=["sa", "rail"])
    assert {"incompatible_parents", "use_restrictions_dropped"} <= codes(check(both).conflicts)


def test_rail_restrictions_can_be_passed_on_under_another_license_text(make_model: MakeModel) -> None:
    make_model("rail", license="bigscience-openrail-m")
    child = make_model(
        "child",
        body="Use of this model is subject to the use restrictions of the BigScience OpenRAIL-M license.\n",
        license="apache-2.0",
        base_model="rail",
    )
    assert check(child).conflicts == ()


def test_card_license_disagreeing_with_license_file_needs_review(make_model: MakeModel) -> None:
    model = make_model("m", license="mit", files={"LICENSE": LLAMA31_LICENSE})
    assert codes(check(model).needs_review) == {"license_file_disagrees"}
    undeclared = make_model("u", files={"LICENSE": APACHE})
    report = check(undeclared)
    assert report.license == "apache-2.0" and status_of(report, "declare_license") == "missing"


def test_malformed_parent_card_needs_review_without_losing_the_rest(
    make_model: MakeModel, tmp_path: Path
) -> None:
    bad = tmp_path / "bad-parent"
    bad.mkdir()
    (bad / "README.md").write_text("---\nlicense: [unclosed\n---\n")
    child = make_model("child", license="mit", base_model="bad-parent")
    report = check(child)
    assert {"bad_card", "no_license"} <= codes(report.needs_review) and report.exit_code == 2


def test_lineage_cycles_terminate(make_model: MakeModel) -> None:
    a = make_model("a", license="mit", base_model="b")
    make_model("b", license="mit", base_model="a")
    assert check(a).exit_code == 0


@pytest.mark.parametrize("ref", ["a\x00b", "x" * 5000, "../" * 50 + "etc", "~/secret", "org/../../escape"])
def test_hostile_parent_references_are_just_not_found(make_model: MakeModel, ref: str) -> None:
    child = make_model("child", license="mit", base_model=ref)
    report = check(child)
    assert codes(report.needs_review) == {"parent_not_found"} and report.exit_code == 2


def test_relative_parent_paths_resolve_inside_the_fence(make_model: MakeModel) -> None:
    make_model("sib", license="cc-by-nc-4.0")
    child = make_model("child", license="mit", base_model="../sib")
    assert codes(check(child).conflicts) == {"noncommercial_parent"}
