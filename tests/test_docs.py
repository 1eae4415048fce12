"""Documentation generated from the code must match the code."""

from __future__ import annotations

from pathlib import Path

from docuseek.cli import settings_markdown
from docuseek.search.postgres.tiers import PHRASE_RANKED_ROWS

ROOT = Path(__file__).resolve().parents[1]


def test_readme_settings_table_matches_the_settings_class() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert section == settings_markdown(), "run: make readme"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_states_the_bound_of_a_phrases_ranked_tier() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"up to {PHRASE_RANKED_ROWS} for a query with a phrase" in readme
