"""Every hostile technique in the corpus is caught, with the right rule, and nothing in it ever runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_corpus import CASES, MARKER, Case, build_corpus

from cairn.security import Severity, archives, scan, scan_bytes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("attacks")
    build_corpus(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack_is_detected(case: Case, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", 1 << 20)
    report = scan([corpus / case.name])
    if case.error:
        assert report.errors, report
        assert report.exit_status() == 2
    if case.rule:
        hits = [f for f in report.findings if f.rule == case.rule and case.construct in f.construct]
        assert hits, [(f.rule, f.construct) for f in report.findings]
        assert all(f.path == str(corpus / case.name) for f in hits)
        assert report.exit_status(Severity.MEDIUM) != 0
    assert not (corpus / MARKER).exists()


def test_whole_corpus_in_one_scan_never_executes_anything(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", 1 << 20)
    report = scan([corpus])
    assert len(report.scanned) >= len(CASES) - 1
    flagged = {Path(f.path).name for f in report.findings} | {Path(e.path).name for e in report.errors}
    assert flagged >= {c.name for c in CASES}
    assert not (corpus / MARKER).exists()
    assert not any(Path(s.path).name in flagged for s in report.skipped)


def test_findings_name_the_member_inside_archives(corpus: Path) -> None:
    report = scan([corpus / "nested.tgz"])
    (hit,) = [f for f in report.findings if f.rule == "pickle-dangerous-global"]
    assert hit.member == "<gzip>/outer.zip/inner/model.ckpt/archive/data.pkl"
    assert hit.severity is Severity.CRITICAL


def test_critical_payload_outranks_threshold(corpus: Path) -> None:
    report = scan([corpus / "proto4.pkl"])
    assert report.max_severity is Severity.CRITICAL
    assert report.exit_status(Severity.CRITICAL) == 1


def test_unsupported_archive_is_an_error_not_clean(corpus: Path) -> None:
    report = scan([corpus / "model.7z"])
    assert report.findings == () and report.skipped == ()
    assert "7z" in report.errors[0].message
    assert report.exit_status() == 2


def test_scan_bytes_matches_scan(corpus: Path) -> None:
    data = (corpus / "torch_payload.pt").read_bytes()
    by_bytes = scan_bytes(data, "upload.pt")
    assert [(f.rule, f.construct, f.member) for f in by_bytes.findings] == [
        (f.rule, f.construct, f.member) for f in scan([corpus / "torch_payload.pt"]).findings
    ]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    report = scan([tmp_path / "nope.pt"])
    assert report.errors and report.exit_status() == 2
