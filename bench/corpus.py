"""The real corpus: Debian's package records as NDJSON.

``apt-cache dumpavail`` gives one stanza per package (the candidate version)
with the one-line Description and its Description-md5; the long descriptions
live in the Translation-en files, keyed by Description-md5.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# The record's columns, in the order the raw baselines load them.
COLUMNS = [
    "id",
    "package",
    "section",
    "priority",
    "maintainer",
    "installed_size",
    "description",
    "long_description",
]

FIELDS: dict[str, dict[str, Any]] = {
    "package": {"type": "keyword"},
    "description": {"type": "text", "weight": "A"},
    "long_description": {"type": "text"},
    "section": {"type": "keyword", "facet": True},
    "priority": {"type": "keyword", "facet": True},
    "maintainer": {"type": "keyword"},
    "installed_size": {"type": "integer"},
}

DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", Path(__file__).resolve().parent / "data"))
REAL_CORPUS = DATA_DIR / "debian.ndjson"


def parse_stanzas(text: Iterable[str]) -> Iterator[dict[str, str]]:
    """Parse RFC 822 style stanzas; continuation lines keep their newline."""
    rec: dict[str, str] = {}
    key = None
    for line in text:
        line = line.rstrip("\n")
        if not line:
            if rec:
                yield rec
            rec, key = {}, None
            continue
        if line[0] in " \t" and key is not None:
            rec[key] += "\n" + line[1:]
            continue
        k, _, v = line.partition(":")
        key = k.strip()
        rec[key] = v.strip()
    if rec:
        yield rec


def long_text(body: str) -> str:
    """The extended description: drop the synopsis line, ' .' lines are paragraph breaks."""
    lines = body.split("\n")[1:]
    out = ["" if ln.strip() == "." else ln.strip() for ln in lines]
    return "\n".join(out).strip()


def translations() -> dict[str, str]:
    files = sorted(glob.glob("/var/lib/apt/lists/*_i18n_Translation-en*"))
    by_md5: dict[str, str] = {}
    for f in files:
        if f.endswith(".lz4") or f.endswith(".gz") or f.endswith(".xz"):
            out = subprocess.run(
                ["/usr/lib/apt/apt-helper", "cat-file", f],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        else:
            out = Path(f).read_text()
        for st in parse_stanzas(out.splitlines()):
            md5 = st.get("Description-md5")
            if md5 and "Description-en" in st:
                by_md5.setdefault(md5, long_text(st["Description-en"]))
    return by_md5


def apt_update() -> None:
    subprocess.run(
        ["apt-get", "update", "-o", "Acquire::Languages=en"], check=True, stdout=subprocess.DEVNULL
    )


def load_debian(update: bool = False) -> list[dict[str, Any]]:
    # A plain `apt-get update` on an image configured with Acquire::Languages "none"
    # deletes the Translation-en files, so refresh when they are missing.
    if (
        update
        or not glob.glob("/var/lib/apt/lists/*_Packages*")
        or not glob.glob("/var/lib/apt/lists/*_i18n_Translation-en*")
    ):
        apt_update()
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], check=True, capture_output=True, text=True
    ).stdout
    longs = translations()
    if not longs:
        raise RuntimeError("no Translation-en files under /var/lib/apt/lists after apt-get update")
    docs: dict[str, dict[str, Any]] = {}
    for st in parse_stanzas(dump.splitlines()):
        pkg = st.get("Package")
        if not pkg or pkg in docs:
            continue
        try:
            size = int(st.get("Installed-Size", "0") or 0)
        except ValueError:
            size = 0
        docs[pkg] = {
            "id": pkg,
            "package": pkg,
            "description": st.get("Description", "").split("\n")[0],
            "long_description": longs.get(st.get("Description-md5", ""), ""),
            "section": st.get("Section", "unknown"),
            "priority": st.get("Priority", "optional"),
            "maintainer": st.get("Maintainer", ""),
            "installed_size": size,
        }
    return [docs[k] for k in sorted(docs)]


def write_ndjson(docs: Iterable[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def read_ndjson(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    with path.open() as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                return
            yield json.loads(line)


def ensure_real_corpus(update: bool = False) -> Path:
    if update or not REAL_CORPUS.exists():
        write_ndjson(load_debian(update=update), REAL_CORPUS)
    return REAL_CORPUS
