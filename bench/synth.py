"""Deterministic synthetic corpora that follow the real corpus's vocabulary.

Each synthetic document takes the metadata (section, priority, maintainer,
installed size) and the field lengths of a randomly drawn real document, and
builds its text from short spans of the real token streams (one stream for the
one-line descriptions, one for the long ones) taken at random offsets. Every
token of the stream is equally likely to be drawn, so term frequencies match the
real corpus in expectation, and within a span the real word order survives, so
phrase queries keep a realistic selectivity. Generation is chunked with one
seeded generator per fixed-size chunk: the output depends only on (seed, n),
and the first k documents of a larger corpus are the k-document corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.corpus import DATA_DIR, ensure_real_corpus, read_ndjson

CHUNK = 10_000
SPAN_LONG = 8
SPAN_SHORT = 3


@dataclass
class Model:
    vocab: np.ndarray  # object array of token strings
    short_stream: np.ndarray  # int32 token ids
    long_stream: np.ndarray
    short_len: np.ndarray  # per real doc, in tokens
    long_len: np.ndarray
    meta: list[tuple[str, str, str, int, str]]  # section, priority, maintainer, size, package


def _tokens(text: str) -> list[str]:
    return text.split()


def build_model(path: Path | None = None) -> Model:
    path = path or ensure_real_corpus()
    docs = sorted(read_ndjson(path), key=lambda d: d["id"])
    ids: dict[str, int] = {}
    vocab: list[str] = []

    def enc(tokens: list[str]) -> list[int]:
        out = []
        for t in tokens:
            i = ids.get(t)
            if i is None:
                i = ids[t] = len(vocab)
                vocab.append(t)
            out.append(i)
        return out

    short, long_, slen, llen, meta = [], [], [], [], []
    for d in docs:
        s = enc(_tokens(d["description"]))
        lg = enc(_tokens(d["long_description"]))
        short.extend(s)
        long_.extend(lg)
        slen.append(max(len(s), 1))
        llen.append(len(lg))
        meta.append(
            (d["section"], d["priority"], d["maintainer"], int(d["installed_size"]), d["package"])
        )
    return Model(
        vocab=np.array(vocab, dtype=object),
        short_stream=np.array(short, dtype=np.int32),
        long_stream=np.array(long_, dtype=np.int32),
        short_len=np.array(slen, dtype=np.int64),
        long_len=np.array(llen, dtype=np.int64),
        meta=meta,
    )


def _spans(
    rng: np.random.Generator, stream: np.ndarray, lengths: np.ndarray, span: int
) -> list[np.ndarray]:
    """For each requested length, a token-id array made of random spans of the stream."""
    nspans = (lengths + span - 1) // span
    total = int(nspans.sum())
    starts = rng.integers(0, len(stream) - span, size=total)
    mat = stream[starts[:, None] + np.arange(span)[None, :]]  # (total, span)
    out = []
    pos = 0
    for k, ln in zip(nspans.tolist(), lengths.tolist(), strict=True):
        out.append(mat[pos : pos + k].reshape(-1)[:ln])
        pos += k
    return out


def generate(model: Model, n: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    """Yield n synthetic documents, deterministically from (seed, n)."""
    nreal = len(model.meta)
    for chunk in range((n + CHUNK - 1) // CHUNK):
        base = chunk * CHUNK
        m = min(CHUNK, n - base)
        rng = np.random.default_rng([seed, chunk])
        # Always draw a full chunk, so a prefix of a larger corpus is the smaller corpus.
        pick = rng.integers(0, nreal, size=CHUNK)
        shorts = _spans(rng, model.short_stream, model.short_len[pick], SPAN_SHORT)
        longs = _spans(rng, model.long_stream, model.long_len[pick], SPAN_LONG)
        for j in range(m):
            i = base + j
            section, priority, maintainer, size, package = model.meta[pick[j]]
            yield {
                "id": f"s{i}",
                "package": f"{package}-s{i}",
                "description": " ".join(model.vocab[shorts[j]]),
                "long_description": " ".join(model.vocab[longs[j]]),
                "section": section,
                "priority": priority,
                "maintainer": maintainer,
                "installed_size": size,
            }


def synth_path(n: int, seed: int) -> Path:
    return DATA_DIR / f"synth-{n}-seed{seed}.ndjson"


def ensure_synth_corpus(n: int, seed: int = 42, model: Model | None = None) -> Path:
    path = synth_path(n, seed)
    if path.exists():
        return path
    model = model or build_model()
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w") as fh:
        for d in generate(model, n, seed):
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
