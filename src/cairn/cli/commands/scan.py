"""``cairn scan PATH... [--fail-on SEVERITY] [--json | --sarif]``: scan model files without loading them.

Exit status: 0 clean, 1 findings at or above ``--fail-on`` (default: medium), 2 something could not be
scanned (an unsupported archive, an unreadable file): such a file is never reported as clean.
"""

from __future__ import annotations

import argparse
import json
import sys

from cairn.cli.output import emit, table

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "scan",
        help="scan model files and archives for code that would run when they are loaded",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (scanned recursively)")
    p.add_argument(
        "--fail-on",
        default="medium",
        metavar="SEVERITY",
        help="lowest severity that makes the exit status 1: info, low, medium, high, critical (default: medium)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--sarif", action="store_true", help="print the report as SARIF 2.1.0")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cairn.security import Severity, scan

    threshold = Severity.parse(args.fail_on)
    report = scan(args.paths)
    status = report.exit_status(threshold)
    if args.sarif:
        sys.stdout.write(json.dumps(report.to_sarif(), indent=2) + "\n")
        return status
    data = report.to_dict() | {"fail_on": str(threshold), "status": status}
    emit(data, as_json=args.json, human=lambda _: _human(report, threshold))
    return status


def _human(report: object, threshold: object) -> str:
    from cairn.security import ScanReport, Severity

    assert isinstance(report, ScanReport) and isinstance(threshold, Severity)
    lines: list[str] = []
    if report.findings:
        rows = [
            (str(f.severity), f.path + (f"#{f.member}" if f.member else ""), f.rule, f.construct[:80])
            for f in report.findings
        ]
        lines.append(table(["SEVERITY", "FILE", "RULE", "CONSTRUCT"], rows))
    for e in report.errors:
        lines.append(f"not scanned: {e.path}{'#' + e.member if e.member else ''}: {e.message}")
    failing = len(report.failing(threshold))
    lines.append(
        f"{len(report.scanned)} scanned, {len(report.findings)} findings ({failing} at or above {threshold}), "
        f"{len(report.errors)} not scanned, {len(report.skipped)} skipped"
    )
    return "\n".join(lines)
