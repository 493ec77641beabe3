"""What a scan found: findings, scanner errors and skipped files, kept apart, and how they are rendered.

A :class:`Finding` is something in a file that is dangerous or suspicious. A :class:`ScanError` means a file
or member could not be scanned (unreadable, unsupported archive, over a limit): such a file is never clean.
A :class:`Skipped` entry is a file that is not a model format at all (a README, an image): nothing to scan.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from cairn import __version__

__all__ = ["Finding", "ScanError", "ScanReport", "Severity", "Skipped"]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that thresholds compare with ``>=``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            from cairn.errors import UsageError

            names = ", ".join(s.name.lower() for s in cls)
            raise UsageError(f"unknown severity {text!r}; use one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One dangerous or suspicious construct in a file (or in a member of an archive)."""

    path: str
    member: str  # "" for the file itself; "a.zip/inner.tar/x.pkl"-style path inside archives
    severity: Severity
    rule: str  # stable identifier: "pickle-dangerous-global", "keras-lambda", ...
    construct: str  # the global, layer, key or path that triggered it
    message: str  # why it matters
    offset: int | None = None  # byte offset inside the file or member, when known

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "member": self.member,
            "severity": str(self.severity),
            "rule": self.rule,
            "construct": self.construct,
            "message": self.message,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class ScanError:
    """A file or member the scanner could not analyse: never reported as clean."""

    path: str
    member: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "member": self.member, "message": self.message}


@dataclass(frozen=True)
class Skipped:
    """A file that is no model format: nothing in it can run code when a model is loaded."""

    path: str
    member: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "member": self.member, "reason": self.reason}


@dataclass(frozen=True)
class ScanReport:
    """The result of :func:`cairn.security.scan`."""

    findings: tuple[Finding, ...] = ()
    errors: tuple[ScanError, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    scanned: tuple[str, ...] = field(default=())  # every file and member that was analysed

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def failing(self, threshold: Severity) -> tuple[Finding, ...]:
        """The findings at or above ``threshold``."""
        return tuple(f for f in self.findings if f.severity >= threshold)

    def exit_status(self, threshold: Severity = Severity.MEDIUM) -> int:
        """0 clean, 1 findings at or above ``threshold``, 2 something could not be scanned."""
        if self.errors:
            return 2
        return 1 if self.failing(threshold) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "errors": [e.to_dict() for e in self.errors],
            "skipped": [s.to_dict() for s in self.skipped],
            "scanned": list(self.scanned),
        }

    def to_sarif(self) -> dict[str, Any]:
        """The findings and errors as a SARIF 2.1.0 log, for code-scanning dashboards."""
        levels = {
            Severity.INFO: "note",
            Severity.LOW: "note",
            Severity.MEDIUM: "warning",
            Severity.HIGH: "error",
            Severity.CRITICAL: "error",
        }
        rules = sorted({f.rule for f in self.findings})
        results: list[dict[str, Any]] = []
        for f in self.findings:
            uri = f.path if not f.member else f"{f.path}#{f.member}"
            results.append(
                {
                    "ruleId": f.rule,
                    "level": levels[f.severity],
                    "message": {"text": f"{f.construct}: {f.message}"},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
                    "properties": {"severity": str(f.severity), "offset": f.offset},
                }
            )
        notifications = [
            {
                "level": "error",
                "message": {"text": f"{e.path}{'#' + e.member if e.member else ''}: {e.message}"},
            }
            for e in self.errors
        ]
        return {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "cairn-scan",
                            "version": __version__,
                            "rules": [{"id": r} for r in rules],
                        }
                    },
                    "results": results,
                    "invocations": [
                        {"executionSuccessful": not self.errors, "toolExecutionNotifications": notifications}
                    ],
                }
            ],
        }
