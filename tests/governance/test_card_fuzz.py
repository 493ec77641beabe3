"""Property tests: no README text makes card parsing, validation or lineage reading fail untyped."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.governance.card import CardError, parse_card, validate_card
from cairn.governance.check import check_lineage
from cairn.governance.lineage import LocalResolver, LocalSource, walk

yaml_ish = st.lists(
    st.sampled_from(
        ["license: ", "base_model: ", "model-index:", "- ", "  ", "&a ", "*a", "[", "]", "{", "}", ": ", "\n", "mit",
         "other", "!!python/object:os.system", "'", '"', "---\n", "tags:", "datasets:", "1.5", "null", "~", "\t"]
    ),
    max_size=60,
).map("".join)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(front=yaml_ish)
def test_any_front_matter_parses_or_raises_card_error(front: str) -> None:
    try:
        card = parse_card(f"---\n{front}\n---\nbody\n")
    except CardError as err:
        assert err.line is None or err.line >= 1
        return
    for issue in validate_card(card):
        assert issue.field and issue.message


@settings(max_examples=40, deadline=None)
@given(front=yaml_ish)
def test_any_card_gives_a_report_never_a_crash(front: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "m"
        model.mkdir()
        (model / "README.md").write_text(f"---\n{front}\n---\n", encoding="utf-8")
        report = check_lineage(walk(LocalSource(model), LocalResolver((Path(tmp),))))
        assert report.exit_code in {0, 1, 2}
