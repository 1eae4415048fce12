"""Smoke run of `python -m bench files-extract` on a few real files: the result file has a
row per format and number of children, every file extracted, each format's own peak RSS,
and the RESULTS.md section is spliced between its markers, replacing an older one."""

from __future__ import annotations

import json
from pathlib import Path

from bench import files_extract as fx


def test_files_extract_measures_each_format_and_splices_its_section(tmp_path: Path) -> None:
    path = fx.measure({"pdf": 3, "html": 3}, tmp_path)
    result = json.loads(path.read_text())
    assert result["meta"]["kind"] == "files-extract" and result["meta"]["git_commit"]
    kinds = {k["kind"]: k for k in result["kinds"]}
    assert set(kinds) == {"pdf", "html"}
    for kind in kinds.values():
        assert [r["parallel"] for r in kind["runs"]] == [1, 2]
        assert all(r["files"] == 3 and r["failed"] == 0 for r in kind["runs"])
        assert kind["runs"][0]["megabytes"] == kind["runs"][1]["megabytes"] > 0
        assert kind["peak_child_rss_mib"] > 10  # a child interpreter, not this process's
        assert kind["isolation"][-1] == "socket guard"

    md = tmp_path / "RESULTS.md"
    md.write_text(f"# Results\n\n{fx.SECTION_START}\nold\n{fx.SECTION_END}\n\n## After\n")
    fx.regenerate_section(md, tmp_path)
    text = md.read_text()
    assert "old" not in text and text.endswith("## After\n")
    section = text[text.index(fx.SECTION_START) : text.index(fx.SECTION_END)]
    rows = [line for line in section.splitlines() if line.startswith(("| PDF", "| HTML"))]
    assert [row.split(" | ")[3] for row in rows] == ["1", "2", "1", "2"]
    assert all(row.split(" | ")[1] == "3" for row in rows)
    assert result["meta"]["date"] in section
