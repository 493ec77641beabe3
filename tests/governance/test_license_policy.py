"""Server license policies over real check reports: block, warn, audit; configuration errors are typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from gov_fixtures import LLAMA31_LICENSE, MakeModel

from cairn.errors import PermissionDeniedError, UsageError
from cairn.governance.check import CheckReport
from cairn.governance.lineage import LocalResolver, LocalSource
from cairn.governance.policy import LicensePolicy, PolicyViolationError, check_model, enforce, evaluate_policy


def report_for(path: Path) -> CheckReport:
    return check_model(LocalSource(path), LocalResolver((path.parent,)))


@pytest.fixture
def dropped_terms(make_model: MakeModel) -> CheckReport:
    make_model("llama", license="llama3.1", files={"LICENSE": LLAMA31_LICENSE})
    return report_for(make_model("relicensed", license="apache-2.0", base_model="llama"))


def test_block_refuses_a_model_that_drops_passed_on_terms(dropped_terms: CheckReport) -> None:
    policy = LicensePolicy.from_mapping({"enforcement": "block"})
    with pytest.raises(PolicyViolationError) as exc:
        enforce(dropped_terms, policy)
    assert isinstance(exc.value, PermissionDeniedError)
    assert any(r.startswith("use_restrictions_dropped") for r in exc.value.reasons)
    assert exc.value.to_dict()["code"] == "license_policy"


def test_warn_and_audit_let_it_through_with_reasons(dropped_terms: CheckReport) -> None:
    for mode in ("warn", "audit"):
        decision = enforce(dropped_terms, LicensePolicy(enforcement=mode))
        assert decision.allowed and decision.action == mode and decision.reasons


def test_a_clean_model_is_allowed(make_model: MakeModel) -> None:
    make_model("base", license="mit")
    report = report_for(make_model("child", license="mit", base_model="base"))
    assert enforce(report, LicensePolicy(enforcement="block")).action == "allow"


def test_allowed_blocked_required_obligations_and_review(make_model: MakeModel) -> None:
    make_model("llama", license="llama3.1")
    child = report_for(make_model("Llama-child", license="llama3.1", base_model="llama"))
    assert evaluate_policy(child, LicensePolicy(enforcement="block")).action == "allow"
    assert (
        evaluate_policy(
            child, LicensePolicy(enforcement="block", blocked_licenses=frozenset({"llama3.1"}))
        ).action
        == "block"
    )
    only_open = LicensePolicy.from_mapping(
        {"enforcement": "block", "allowed_licenses": ["Apache-2.0", "mit"]}
    )
    assert "not in the allowed list" in evaluate_policy(child, only_open).reasons[0]
    needs_copy = LicensePolicy(enforcement="block", require_met=frozenset({"license_copy"}))
    assert evaluate_policy(child, needs_copy).reasons[0].startswith("license_copy")
    orphan = report_for(make_model("orphan", license="mit", base_model="missing/parent"))
    assert evaluate_policy(orphan, LicensePolicy(enforcement="block")).action == "allow"
    assert evaluate_policy(orphan, LicensePolicy(enforcement="block", review_violates=True)).action == "block"


@pytest.mark.parametrize(
    "raw",
    [
        {"enforcement": "nuke"},
        {"conflicts": ["made_up"]},
        {"allowed_licenses": "mit"},
        {"review_violates": "yes"},
        {"typo_key": 1},
    ],
)
def test_bad_policy_configuration_is_a_usage_error(raw: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        LicensePolicy.from_mapping(raw)
