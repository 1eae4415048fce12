"""Regenerate the README's settings table from the code (`make readme`)."""

from __future__ import annotations

from pathlib import Path

from docuseek.cli import settings_markdown

START, END = "<!-- settings:start -->\n", "<!-- settings:end -->"
readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
head, rest = text.split(START, 1)
_, tail = rest.split(END, 1)
readme.write_text(head + START + settings_markdown() + END + tail)
