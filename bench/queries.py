"""The fixed query set, drawn from the real corpus.

Built once, deterministically from a seed, and committed as ``queries.json`` so
every run (and every engine) uses the same queries. Classes:

- ``rare``: single terms found in 2-10 real documents;
- ``common``: the most frequent non-stopword terms (matching 2-15% of documents);
- ``two_words`` / ``three_words``: words that co-occur in one real description;
- ``phrase``: frequent adjacent word pairs, as a quoted phrase;
- ``filter_facets``: a common-ish term, a section filter, facets on section and priority;
- ``typo``: a rare or common query with one edit (deletion, insertion, substitution or
  swap of neighbours) in a word of at least 5 letters;
- ``prefix``: a two- or three-word query with its last word cut to 3-5 letters.

``typo`` and ``prefix`` draw from their own generator, so adding them left the other
classes as they were. Their queries turn their feature on (``"typo": true``,
``"prefix": true``; the other classes search with both off, as the raw engines do), and
keep the query each was made from (``intended``): the raw engines, which have neither
typo tolerance nor prefixes, run that one, so their latency is the search the user meant.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from bench.corpus import ensure_real_corpus, read_ndjson

QUERIES_FILE = Path(__file__).resolve().parent / "queries.json"
CLASSES = [
    "rare",
    "common",
    "two_words",
    "three_words",
    "phrase",
    "filter_facets",
    "typo",
    "prefix",
]
PER_CLASS = 20

STOPWORDS = set(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "use",
        "used",
        "using",
        "via",
        "may",
        "provides",
        "package",
        "contains",
        "includes",
        "based",
        "etc",
        "one",
        "two",
        "new",
        "well",
        "see",
        "many",
        "like",
        "need",
        "http",
        "https",
        "www",
        "org",
        "com",
    ]
)

WORD = re.compile(r"[a-z][a-z]{3,}")


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def build(seed: int = 5, path: Path | None = None) -> list[dict[str, Any]]:
    docs = sorted(read_ndjson(path or ensure_real_corpus()), key=lambda d: d["id"])
    rng = random.Random(seed)
    n = len(docs)
    df: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for d in docs:
        text = d["description"] + "\n" + d["long_description"]
        df.update(set(words(text)))
        toks = re.findall(r"[a-z]+", d["description"].lower())
        for a, b in zip(toks, toks[1:], strict=False):
            if a not in STOPWORDS and b not in STOPWORDS and len(a) > 3 and len(b) > 3:
                bigrams[(a, b)] += 1
    out: list[dict[str, Any]] = []

    rare = sorted(w for w, c in df.items() if 2 <= c <= 10 and len(w) >= 6)
    for w in rng.sample(rare, PER_CLASS):
        out.append({"class": "rare", "q": w})

    common = [w for w, c in df.most_common() if 0.02 * n <= c <= 0.15 * n]
    for w in common[:PER_CLASS]:
        out.append({"class": "common", "q": w})

    mid = {w for w, c in df.items() if 30 <= c <= 0.15 * n}
    for k, cls in ((2, "two_words"), (3, "three_words")):
        got: set[str] = set()
        while len(got) < PER_CLASS:
            d = docs[rng.randrange(n)]
            cand = sorted({w for w in words(d["description"]) if w in mid})
            if len(cand) >= k:
                q = " ".join(rng.sample(cand, k))
                if q not in got:
                    got.add(q)
                    out.append({"class": cls, "q": q})

    for (a, b), _ in bigrams.most_common(PER_CLASS):
        out.append({"class": "phrase", "q": f'"{a} {b}"'})

    sections = Counter(d["section"] for d in docs)
    big_sections = [s for s, c in sections.most_common(12)]
    mid_common = [w for w, c in df.most_common() if 0.005 * n <= c <= 0.15 * n]
    for _ in range(PER_CLASS):
        w = rng.choice(mid_common[:200])
        s = rng.choice(big_sections)
        out.append(
            {
                "class": "filter_facets",
                "q": w,
                "filter": {"section": s},
                "facets": ["section", "priority"],
            }
        )
    out += typo_and_prefix(out, random.Random(seed + 1))
    return out


def one_edit(word: str, rng: random.Random) -> str:
    """`word` with one edit, never at its first letter (as people mistype)."""
    i = rng.randrange(1, len(word))
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz".replace(word[i], ""))
    kind = rng.choice(["delete", "insert", "substitute", "swap"])
    if kind == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "insert":
        return word[:i] + letter + word[i:]
    return word[:i] + letter + word[i + 1 :]


def typo_and_prefix(existing: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The typo and prefix classes, from the other classes' queries (so they can be
    added to a query file without rebuilding it from the corpus)."""
    out: list[dict[str, Any]] = []
    words = [q["q"] for q in existing if q["class"] in ("rare", "common") and len(q["q"]) >= 5]
    for word in rng.sample(words, PER_CLASS):
        out.append({"class": "typo", "q": one_edit(word, rng), "intended": word, "typo": True})
    phrases = [
        q["q"]
        for q in existing
        if q["class"] in ("two_words", "three_words") and len(q["q"].split()[-1]) >= 4
    ]
    for q in rng.sample(phrases, PER_CLASS):
        *head, last = q.split()
        cut = last[: rng.randint(3, min(5, len(last) - 1))]
        out.append({"class": "prefix", "q": " ".join([*head, cut]), "intended": q, "prefix": True})
    return out


def load() -> list[dict[str, Any]]:
    if not QUERIES_FILE.exists():
        save(build())
    qs: list[dict[str, Any]] = json.loads(QUERIES_FILE.read_text())
    return qs


def save(queries: list[dict[str, Any]]) -> None:
    QUERIES_FILE.write_text(json.dumps(queries, indent=1) + "\n")


def by_class(queries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in CLASSES}
    for q in queries:
        out[q["class"]].append(q)
    return out
