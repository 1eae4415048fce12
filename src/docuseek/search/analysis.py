"""Text analysis both backends share: a language's stop words, and joined words in queries.

The stop word lists in `stopwords/` are PostgreSQL's own (its Snowball configurations read
the same files), so OpenSearch ignores exactly the words PostgreSQL ignores. A language
without a list there has no stop words on either backend.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

# Separators that PostgreSQL's parser keeps inside one token (a file path, host name,
# email or version) and OpenSearch's standard tokenizer keeps in some cases (`.` and `_`).
JOINERS = "/._@-"
# A word made of parts joined by one of the separators, outside quotes.
_JOINED = re.compile(r"\w+(?:[/._@-]+\w+)+")


@cache
def stop_words(language: str) -> tuple[str, ...]:
    """The language's stop words, in the order of PostgreSQL's list (empty for `simple`
    and for languages PostgreSQL has no list for)."""
    path = resources.files("docuseek.search").joinpath("stopwords", f"{language}.stop")
    if not path.is_file():
        return ()
    return tuple(word for word in path.read_text(encoding="utf-8").split() if word)


def fold_accents(word: str) -> str:
    """The word without its accents (combining marks), as `unaccent` and `asciifolding`
    write the letters of Western European languages."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def split_joined(q: str) -> str:
    """The query with every joined word outside quotes as a quoted phrase of its parts,
    and the separators inside quoted phrases as spaces: `JSON/UBJSON` becomes
    `"JSON UBJSON"`, which both backends find where the parts are indexed next to each
    other, as they are for a joined word in a document."""
    out: list[str] = []
    quoted = False
    for i, piece in enumerate(q.split('"')):
        if i > 0:
            out.append('"')
            quoted = not quoted
        if quoted:
            out.append(_JOINED.sub(lambda m: _parts(m.group(0)), piece))
        else:
            out.append(_JOINED.sub(lambda m: f'"{_parts(m.group(0))}"', piece))
    return "".join(out)


def _parts(word: str) -> str:
    return " ".join(part for part in re.split(r"[/._@-]+", word) if part)
