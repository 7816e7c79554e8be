"""Documents that must say what the code does."""

import re
from pathlib import Path

from clickback.cli import reasons_markdown

DOCS = Path(__file__).parent.parent / "docs"


def test_reason_codes_document_matches_the_catalogue() -> None:
    assert (DOCS / "reasons.md").read_text() == reasons_markdown(), (
        "regenerate it: clickback reasons > docs/reasons.md"
    )


def test_postback_guide_names_every_accepted_alias() -> None:
    from clickback.core.events import EVENT_ALIASES
    from clickback.core.intake import ALIASES
    from clickback.core.lifecycle import STATUS_WORDS
    from clickback.core.macros import OFFER_MACROS

    guide = (DOCS / "postbacks.md").read_text()
    # Sub IDs are written as ranges there: `sub1`…`sub5`, `{sub1}` … `{sub5}`.
    numbered = re.compile(r"s(ub)?[2-4]")
    for name in [a for names in ALIASES.values() for a in names if not numbered.fullmatch(a)]:
        assert f"`{name}`" in guide, name
    for word in [*EVENT_ALIASES, *STATUS_WORDS]:
        assert f"`{word}`" in guide, word
    for macro in OFFER_MACROS:
        assert numbered.fullmatch(macro) or f"{{{macro}}}" in guide, macro


def test_listen_mode_is_documented_within_the_apis_cap() -> None:
    from clickback.web.schemas import MAX_WAIT_SECONDS

    documented = [
        int(seconds)
        for page in DOCS.rglob("*.md")
        for seconds in re.findall(r"/wait\?timeout=(\d+)", page.read_text())
    ]
    assert documented and all(seconds <= MAX_WAIT_SECONDS for seconds in documented), documented


def test_outbound_guide_names_every_macro_and_shows_the_tested_signature_check() -> None:
    import inspect

    from clickback.core.outbound import MACROS
    from tests.web.test_outbound import documented_verify

    guide = (DOCS / "outbound.md").read_text()
    numbered = re.compile(r"sub[2-4]")
    for macro in MACROS:
        assert numbered.fullmatch(macro) or f"{{{macro}}}" in guide, macro
    snippet = guide.split("## Verifying the signature", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    tested = {line.strip() for line in inspect.getsource(documented_verify).splitlines()}
    for line in snippet.splitlines():
        assert not line.strip() or line.strip() in tested, line


def test_report_guide_names_every_metric_and_dimension() -> None:
    from clickback.core.metrics import METRICS
    from clickback.core.reporting import DIMENSIONS

    guide = (DOCS / "reports.md").read_text()
    missing = [name for name in (*METRICS, *DIMENSIONS) if f"`{name}`" not in guide]
    assert not missing, f"docs/reports.md does not name {missing}"


def test_report_guide_names_the_events_each_vertical_counts_as_activity() -> None:
    from clickback.core.verticals import DEFAULT_ACTIVITY, PRESETS

    guide = (DOCS / "reports.md").read_text().split("## Active players", 1)[1]
    rows = {line.split("|")[1].strip(): line for line in guide.splitlines() if line.startswith("| ")}
    expected = {f"`{v.value}`": p.activity for v, p in PRESETS.items()} | {
        "none (or one with no preset)": DEFAULT_ACTIVITY
    }
    for vertical, events in expected.items():
        named = set(re.findall(r"`([a-z_]+)`", rows[vertical].split("|")[2]))
        assert named == events, vertical


def test_the_query_for_reports_0029_left_mixed_is_the_one_its_tests_run() -> None:
    from clickback.store.mixed_months import LEFT_AS_THEY_WERE

    guide = (DOCS / "commissions.md").read_text()
    found = re.search(r"\n  ```sql\n(.*?)\n  ```\n", guide, re.DOTALL)
    assert found is not None, "docs/commissions.md (Known limits) quotes it"
    quoted = "\n".join(line.removeprefix("  ") for line in found.group(1).splitlines())
    assert quoted == LEFT_AS_THEY_WERE.strip()
