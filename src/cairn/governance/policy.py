"""Server license policy: what a hub does with a license-check report on publish (block, warn or audit).

The hub (through the registry) runs :func:`check_model` on every commit that changes the card or the
lineage, shows the report, and applies a :class:`LicensePolicy` declared in its configuration, e.g.
refusing a derived model that drops a parent's passed-on use restrictions. :func:`evaluate_policy` is a
pure function of the report; :func:`enforce` raises :class:`PolicyViolationError` (a
:class:`~cairn.errors.PermissionDeniedError`) carrying the reasons when the decision is to block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cairn.errors import PermissionDeniedError, UsageError
from cairn.governance.check import CheckReport, check_lineage
from cairn.governance.lineage import ModelSource, Resolver, walk

__all__ = [
    "CONFLICT_CODES",
    "LicensePolicy",
    "PolicyDecision",
    "PolicyViolationError",
    "check_model",
    "enforce",
    "evaluate_policy",
]

CONFLICT_CODES = frozenset(
    {
        "noncommercial_parent",
        "share_alike",
        "no_derivatives",
        "use_restrictions_dropped",
        "incompatible_parents",
        "outputs_training",
        "use_not_permitted",
    }
)
_ENFORCEMENT = ("block", "warn", "audit")


@dataclass(frozen=True)
class LicensePolicy:
    enforcement: str = "warn"  # block | warn | audit: what a violation does
    conflicts: frozenset[str] = CONFLICT_CODES  # conflict codes that violate the policy
    require_met: frozenset[str] = frozenset()  # obligation codes that must be "met" (e.g. license_copy)
    allowed_licenses: frozenset[str] | None = None  # None: any license
    blocked_licenses: frozenset[str] = frozenset()
    review_violates: bool = False  # whether "needs review" alone violates the policy

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> LicensePolicy:
        """Build from configuration data; unknown keys and wrong types are a UsageError."""
        known = {
            "enforcement",
            "conflicts",
            "require_met",
            "allowed_licenses",
            "blocked_licenses",
            "review_violates",
        }
        unknown = set(raw) - known
        if unknown:
            raise UsageError(f"unknown license policy keys: {', '.join(sorted(unknown))}")
        enforcement = raw.get("enforcement", "warn")
        if enforcement not in _ENFORCEMENT:
            raise UsageError(f"license policy enforcement must be one of {', '.join(_ENFORCEMENT)}")

        def strings(key: str) -> frozenset[str] | None:
            value = raw.get(key)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"license policy {key} must be a list of strings")
            return frozenset(v.lower() for v in value)

        conflicts = strings("conflicts")
        if conflicts is not None and not conflicts <= CONFLICT_CODES:
            raise UsageError(f"unknown conflict codes: {', '.join(sorted(conflicts - CONFLICT_CODES))}")
        review = raw.get("review_violates", False)
        if not isinstance(review, bool):
            raise UsageError("license policy review_violates must be true or false")
        return cls(
            enforcement=enforcement,
            conflicts=CONFLICT_CODES if conflicts is None else conflicts,
            require_met=strings("require_met") or frozenset(),
            allowed_licenses=strings("allowed_licenses"),
            blocked_licenses=strings("blocked_licenses") or frozenset(),
            review_violates=review,
        )


@dataclass(frozen=True)
class PolicyDecision:
    action: str  # allow | block | warn | audit
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return self.action != "block"


class PolicyViolationError(PermissionDeniedError):
    code = "license_policy"

    def __init__(self, reasons: tuple[str, ...]) -> None:
        super().__init__("refused by the license policy: " + "; ".join(reasons))
        self.reasons = list(reasons)


def evaluate_policy(report: CheckReport, policy: LicensePolicy) -> PolicyDecision:
    reasons = [f"{f.code}: {f.message}" for f in report.conflicts if f.code in policy.conflicts]
    lic = (report.license or "").lower()
    if policy.allowed_licenses is not None and lic not in policy.allowed_licenses:
        reasons.append(f"license {report.license or '(none)'} is not in the allowed list")
    for inherited in report.inherited:
        if inherited.lower() in policy.blocked_licenses:
            reasons.append(f"license {inherited} is blocked on this server")
    for f in report.obligations:
        if f.code in policy.require_met and f.status == "missing":
            reasons.append(f"{f.code}: {f.message}")
    if policy.review_violates:
        reasons += [f"needs review: {f.message}" for f in report.needs_review]
    if not reasons:
        return PolicyDecision("allow", ())
    return PolicyDecision(policy.enforcement, tuple(dict.fromkeys(reasons)))


def enforce(report: CheckReport, policy: LicensePolicy) -> PolicyDecision:
    """The decision; raises PolicyViolationError when it is to block."""
    decision = evaluate_policy(report, policy)
    if decision.action == "block":
        raise PolicyViolationError(decision.reasons)
    return decision


def check_model(
    source: ModelSource, resolver: Resolver, *, use: str | None = None, relation: str | None = None
) -> CheckReport:
    """Walk a model's lineage and check it: the one call the registry makes on publish."""
    return check_lineage(walk(source, resolver, relation=relation), use=use)
