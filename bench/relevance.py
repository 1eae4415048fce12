"""Relevance harness: `python -m bench relevance`.

Query sets are generated from the Debian corpus, deterministically from a seed:

- known-item: 2-4 content words (document frequency between DF_MIN and DF_MAX, no stop
  words, not the package's name or its parts) from one package's long description, kept
  in their order in the text; only packages whose long description no other package shares,
  so the target is the one document holding it;
- name: the package's name, split into its parts on `-`;
- for each, a variant with one typo (one deletion, insertion, substitution or transposition
  in one word of at least TYPO_MIN_LEN characters, giving a word found nowhere in the
  corpus) and a variant with the last word cut to a prefix of at least PREFIX_MIN_LEN
  letters.

The target is the package the query came from. Each system answers every query with its
first 10 hits; per system and query set: MRR@10, success@1, success@10, and for the typo
and prefix sets the clean metrics of the same source queries beside them.

Systems: Docuseek over HTTP (PostgreSQL or OpenSearch backend, the benchmark's collection
fields), SQLite FTS5 (prefix queries with `*` for the prefix set; it has no typo tolerance)
and Tantivy (fuzzy terms, distance 1, for the typo set; a prefix term for the prefix set).

Broad queries (PostgreSQL backend): for the benchmark's `common` and `two_words` classes,
the overlap of Docuseek's first page with the exact ts_rank top 10 over every match,
computed in SQL on the collection's own index table.

Results: bench/results/relevance-<system>-<scale>.json, and the section of bench/RESULTS.md
between RESULTS_START and RESULTS_END.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import corpus, machine, queries, servers
from bench.docuseek_http import DocuseekClient
from bench.peers import SqliteFts, TantivyIndex, parse_websearch

Doc = dict[str, Any]
Json = dict[str, Any]

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
RESULTS_MD = REPO / "bench" / "RESULTS.md"
# Docuseek's results on the code before typo tolerance, prefixes and broad-query ranking
# (the same queries): the report shows them beside the current ones.
BASELINE_DIR = RESULTS_DIR / "relevance-baseline"
RESULTS_START = "<!-- relevance:start -->"
RESULTS_END = "<!-- relevance:end -->"

DF_MIN = 3  # a word in fewer documents is close to a unique identifier, not a memory
DF_MAX = 300  # a word in more documents says little about which package was meant
WORD_MIN_LEN = 4
TYPO_MIN_LEN = 5  # Meilisearch's minimum word size for one typo
PREFIX_MIN_LEN = 3
EXACT_LIMIT = 1000  # Docuseek's default PG_EXACT_LIMIT: more matches than this are tiered
TOP = 10
BROAD_CLASSES = ("common", "two_words")
SETS = ("known_item", "name")
VARIANTS = ("clean", "typo", "prefix")
WORD = re.compile(r"[a-z][a-z0-9]*")
# Function words a person would not type when recalling a description (a short list, as
# the engines' own stop lists differ).
_STOP_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    etc few for from further had has have having he her here hers him his how i if in into
    is it its itself just let like may me might more most must my no nor not now of off on
    once only or other our ours out over own same she should so some such than that the
    their theirs them then there these they this those through to too under until up upon
    us use used uses using very via was we well were what when where which while who whom
    why will with within without would you your yours one two also many much new based
    provides provide package packages contains includes include version program programs
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass
class Query:
    q: str
    target: str
    set: str  # known_item | name
    variant: str  # clean | typo | prefix
    source: str = ""  # the clean query it was made from (variants only)


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["postgres"])
    queries: int = 500  # per base set (known-item, name)
    seed: int = 42
    docs: int | None = None  # the first N documents of the real corpus (smoke runs)
    peers: bool = True
    work_dir: Path = corpus.DATA_DIR / "relevance"
    out_dir: Path = RESULTS_DIR
    md_path: Path | None = RESULTS_MD  # None: do not touch RESULTS.md


# -- query generation ---------------------------------------------------------------------


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def document_frequency(docs: Sequence[Doc]) -> Counter[str]:
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(words(f"{d.get('description') or ''} {d.get('long_description') or ''}")))
    return df


def name_parts(name: str) -> list[str]:
    return [p for p in name.lower().split("-") if p]


def typo(word: str, rng: random.Random, vocabulary: Counter[str]) -> str | None:
    """One edit of `word` giving a word that no document holds (None if none found)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(50):
        op = rng.choice(("delete", "insert", "substitute", "transpose"))
        i = rng.randrange(len(word))
        if op == "delete":
            out = word[:i] + word[i + 1 :]
        elif op == "insert":
            out = word[:i] + rng.choice(letters) + word[i:]
        elif op == "substitute":
            out = word[:i] + rng.choice(letters.replace(word[i], "")) + word[i + 1 :]
        else:
            i = min(i, len(word) - 2)
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if out != word and out not in vocabulary:
            return out
    return None


def with_typo(q: str, rng: random.Random, vocabulary: Counter[str]) -> str | None:
    toks = q.split()
    eligible = [i for i, t in enumerate(toks) if len(t) >= TYPO_MIN_LEN and t.isalpha()]
    if not eligible:
        return None
    i = rng.choice(eligible)
    new = typo(toks[i], rng, vocabulary)
    if new is None:
        return None
    return " ".join([*toks[:i], new, *toks[i + 1 :]])


def with_prefix(q: str, rng: random.Random) -> str | None:
    toks = q.split()
    last = toks[-1]
    if len(last) <= PREFIX_MIN_LEN or not last.isalnum():
        return None
    cut = rng.randint(PREFIX_MIN_LEN, len(last) - 1)
    return " ".join([*toks[:-1], last[:cut]])


def known_item_query(doc: Doc, rng: random.Random, df: Counter[str]) -> str | None:
    exclude = {doc["id"].lower(), *name_parts(doc["id"])}
    seen: dict[str, None] = {}
    for w in words(doc.get("long_description") or ""):
        if (
            len(w) >= WORD_MIN_LEN
            and w.isalpha()
            and w not in STOP_WORDS
            and w not in exclude
            and DF_MIN <= df[w] <= DF_MAX
        ):
            seen.setdefault(w, None)
    candidates = list(seen)
    if len(candidates) < 2:
        return None
    k = rng.randint(2, min(4, len(candidates)))
    picked = sorted(rng.sample(range(len(candidates)), k))  # in the text's order
    return " ".join(candidates[i] for i in picked)


def build_queries(docs: Sequence[Doc], n: int, seed: int) -> list[Query]:
    """n known-item and n name queries, and their typo and prefix variants."""
    rng = random.Random(seed)
    df = document_frequency(docs)
    long_count = Counter(d.get("long_description") or "" for d in docs)
    order = list(range(len(docs)))
    rng.shuffle(order)
    base: list[Query] = []
    for i in order:
        if sum(q.set == "known_item" for q in base) >= n:
            break
        d = docs[i]
        text = d.get("long_description") or ""
        if not text or long_count[text] > 1:
            continue
        q = known_item_query(d, rng, df)
        if q is not None:
            base.append(Query(q, d["id"], "known_item", "clean"))
    rng.shuffle(order)
    for i in order[:n]:
        name = docs[i]["id"]
        base.append(Query(" ".join(name_parts(name)) or name, name, "name", "clean"))
    out = list(base)
    for b in base:
        t = with_typo(b.q, rng, df)
        if t is not None:
            out.append(Query(t, b.target, b.set, "typo", b.q))
        p = with_prefix(b.q, rng)
        if p is not None:
            out.append(Query(p, b.target, b.set, "prefix", b.q))
    return out


# -- metrics ------------------------------------------------------------------------------


def rank_of(target: str, ids: Sequence[str]) -> int | None:
    for i, x in enumerate(ids[:TOP]):
        if x == target:
            return i + 1
    return None


def metrics(ranks: Sequence[int | None]) -> Json:
    n = len(ranks)
    if not n:
        return {"queries": 0, "mrr10": None, "success1": None, "success10": None}
    return {
        "queries": n,
        "mrr10": sum(1 / r for r in ranks if r) / n,
        "success1": sum(r == 1 for r in ranks) / n,
        "success10": sum(r is not None for r in ranks) / n,
    }


Searcher = Callable[[Query], list[str]]


def evaluate(search: Searcher, qs: Sequence[Query]) -> Json:
    """Per query set (`known_item`, `known_item_typo`, ...): the metrics, and for the
    variants the clean metrics of the same source queries (`clean_same`)."""
    ranks: dict[tuple[str, str], int | None] = {}
    rows: list[Json] = []
    errors: list[str] = []
    for q in qs:
        try:
            ids = search(q)
        except Exception as exc:  # noqa: BLE001 - counted as a miss and reported
            errors.append(f"{q.q!r}: {type(exc).__name__}: {exc}"[:300])
            ids = []
        r = rank_of(q.target, ids)
        ranks[(q.q, q.target)] = r
        rows.append(
            {
                "q": q.q,
                "target": q.target,
                "set": q.set,
                "variant": q.variant,
                "rank": r,
                "hits": len(ids),  # below TOP: the query matched only that many documents
            }
        )
    sets: Json = {}
    for s in SETS:
        for v in VARIANTS:
            sub = [q for q in qs if q.set == s and q.variant == v]
            m = metrics([ranks[(q.q, q.target)] for q in sub])
            if v != "clean":
                m["clean_same"] = metrics([ranks.get((q.source, q.target)) for q in sub])
            sets[s if v == "clean" else f"{s}_{v}"] = m
    return {"sets": sets, "queries": rows, "errors": errors[:20], "error_count": len(errors)}


# -- systems ------------------------------------------------------------------------------


def docuseek_searcher(
    client: DocuseekClient, collection: str, *, exact_semantics: bool = False
) -> Searcher:
    """Docuseek as a user sees it (typo tolerance and prefixes on, its defaults), or with
    `exact_semantics` the plain query that websearch_to_tsquery reads (for the broad-query
    overlap, whose reference is the exact ts_rank of that query)."""
    params = {"limit": str(TOP), "highlight": "false"}
    if exact_semantics:
        params |= {"prefix": "false", "typo": "false"}

    def search(q: Query) -> list[str]:
        r = client.client().get(f"/collections/{collection}/search", params={"q": q.q, **params})
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code} {r.text[:200]}")
        return [str(h["id"]) for h in r.json()["hits"]]

    return search


def sqlite_match(q: Query) -> str:
    """FTS5 MATCH expression: every word required; the last one a prefix for the prefix
    set (FTS5's `*`). FTS5 has no typo tolerance, so typo queries run as written."""
    parts = ['"' + " ".join(t) + '"' for t in parse_websearch(q.q)]
    if q.variant == "prefix" and parts:
        parts[-1] += " *"
    return " AND ".join(parts)


def sqlite_searcher(db: SqliteFts) -> Searcher:
    def search(q: Query) -> list[str]:
        match = sqlite_match(q)
        if not match:
            return []
        rows = (
            db.conn()
            .execute(
                "SELECT d.id FROM fts JOIN docs d ON d.rowid = fts.rowid WHERE fts MATCH ?"
                " ORDER BY bm25(fts, 10.0, 1.0), d.id LIMIT ?",
                (match, TOP),
            )
            .fetchall()
        )
        return [str(r[0]) for r in rows]

    return search


TANTIVY_FIELDS = ["description", "long_description"]
TANTIVY_BOOSTS = {"description": 2.0}  # as the peer's latency queries


def tantivy_searcher(ix: TantivyIndex) -> Searcher:
    """Every word required, as the peer's own queries. Typo set: each word of at least
    TYPO_MIN_LEN characters also matches terms one edit away (tantivy's fuzzy term query,
    transposition costing one); prefix set: the last word also matches as a prefix. The
    exact term stays a should-clause beside the fuzzy one because tantivy scores fuzzy and
    prefix matches with a constant, which would otherwise flatten BM25."""
    t = ix.t
    index = ix.index
    searcher = index.searcher()

    def word_query(tokens: list[str], fuzzy: tuple[bool, int] | None) -> Any:
        text = '"' + " ".join(tokens) + '"'
        exact = index.parse_query(text, TANTIVY_FIELDS, field_boosts=TANTIVY_BOOSTS)
        if fuzzy is None or len(tokens) != 1:
            return exact
        prefix, distance = fuzzy
        loose = index.parse_query(
            tokens[0],
            TANTIVY_FIELDS,
            fuzzy_fields={f: (prefix, distance, True) for f in TANTIVY_FIELDS},
        )
        return t.Query.boolean_query([(t.Occur.Should, exact), (t.Occur.Should, loose)])

    def search(q: Query) -> list[str]:
        conj = parse_websearch(q.q)
        if not conj:
            return []
        parts = []
        for i, toks in enumerate(conj):
            fuzzy: tuple[bool, int] | None = None
            if q.variant == "typo" and len(toks) == 1 and len(toks[0]) >= TYPO_MIN_LEN:
                fuzzy = (False, 1)
            elif q.variant == "prefix" and i == len(conj) - 1:
                fuzzy = (True, 0)
            parts.append((t.Occur.Must, word_query(toks, fuzzy)))
        res = searcher.search(t.Query.boolean_query(parts), TOP)
        return [str(searcher.doc(addr)["id"][0]) for _score, addr in res.hits]

    return search


# -- broad-query overlap (PostgreSQL backend) ---------------------------------------------


def index_table(pg_uri: str, collection: str) -> str:
    import psycopg

    with psycopg.connect(pg_uri) as conn:
        row = conn.execute(
            "SELECT id, generation FROM collections WHERE name = %s", (collection,)
        ).fetchone()
    if row is None:
        raise RuntimeError(f"collection {collection} not found")
    return f"docuseek_index.c{int(row[0])}_g{int(row[1])}"


def exact_top(pg_uri: str, table: str, q: str, k: int = TOP) -> tuple[list[str], int]:
    """The exact ts_rank top k over every match (Docuseek's ranking below PG_EXACT_LIMIT)
    and the number of matches."""
    import psycopg

    with psycopg.connect(pg_uri) as conn:
        conn.execute("SET statement_timeout = 0")
        ids = [
            str(r[0])
            for r in conn.execute(
                f"SELECT id FROM {table}, websearch_to_tsquery('english', %(q)s) AS q"
                " WHERE live AND tsv @@ q ORDER BY ts_rank(tsv, q, 32) DESC, id LIMIT %(k)s",
                {"q": q, "k": k},
            )
        ]
        total = conn.execute(
            f"SELECT count(*) FROM {table}, websearch_to_tsquery('english', %(q)s) AS q"
            " WHERE live AND tsv @@ q",
            {"q": q},
        ).fetchone()
    return ids, int(total[0]) if total else 0


def mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def broad_overlap(client: DocuseekClient, collection: str, pg_uri: str) -> Json:
    table = index_table(pg_uri, collection)
    search = docuseek_searcher(client, collection, exact_semantics=True)
    out: Json = {}
    for cls, lst in queries.by_class(queries.load()).items():
        if cls not in BROAD_CLASSES:
            continue
        rows = []
        for item in lst:
            page = search(Query(item["q"], "", "broad", "clean"))
            exact, total = exact_top(pg_uri, table, item["q"])
            denom = min(TOP, len(exact))
            overlap = len(set(page) & set(exact)) / denom if denom else 1.0
            rows.append(
                {
                    "q": item["q"],
                    "matches": total,
                    "overlap10": overlap,
                    "page": page,
                    "exact": exact,
                }
            )
        out[cls] = {
            "queries": len(rows),
            "mean_overlap10": mean([r["overlap10"] for r in rows]),
            "over_exact_limit": sum(r["matches"] > EXACT_LIMIT for r in rows),
            "mean_overlap10_over_limit": mean(
                [r["overlap10"] for r in rows if r["matches"] > EXACT_LIMIT]
            ),
            "rows": rows,
        }
    return out


# -- runs ---------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[relevance {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def meta(opts: Options, system: str, n_docs: int, qs: Sequence[Query]) -> Json:
    # No "backend" key: bench/report.py reads files with one as benchmark runs.
    return {
        "kind": "relevance",
        "system": system,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "docs": n_docs,
        "scale": scale_name(n_docs),
        "seed": opts.seed,
        "queries_per_set": opts.queries,
        "query_counts": dict(Counter(f"{q.set}/{q.variant}" for q in qs)),
        "git_commit": machine.git_commit(REPO),
    }


def scale_name(n_docs: int) -> str:
    return "64k" if n_docs >= 60_000 else f"{n_docs}docs"


def run_docuseek(opts: Options, backend: str, docs: list[Doc], qs: list[Query]) -> Json:
    work = opts.work_dir / backend
    work.mkdir(parents=True, exist_ok=True)
    pg = servers.Postgres(work / "pg")
    osm: servers.Osmem | None = None
    ds: servers.Docuseek | None = None
    try:
        pg.create_database("docuseek")
        env = {
            "DATABASE_URL": pg.sqlalchemy_url("docuseek"),
            "SEARCH_BACKEND": backend,
            "DOCUSEEK_LOG_LEVEL": "warning",
        }
        if backend == "opensearch":
            osm = servers.Osmem(work / "osmem.log")
            env["OPENSEARCH_URL"] = osm.url
        admin_key = "bench-" + secrets.token_hex(16)
        ds = servers.Docuseek(env, work / "logs", admin_key)
        client = DocuseekClient(ds.url, admin_key)
        client.create_collection("bench", index_phrases=True)
        ing = client.ingest("bench", docs, 1000, 2)
        log(f"docuseek/{backend}: {len(docs)} documents in {ing['seconds']:.1f} s")
        pg.vacuum_analyze(["docuseek"])
        res = evaluate(docuseek_searcher(client, "bench"), qs)
        res["meta"] = meta(opts, f"docuseek-{backend}", len(docs), qs)
        if backend == "postgres":
            res["broad"] = broad_overlap(client, "bench", pg.uri_for("docuseek"))
        ds.check_alive()
        return res
    finally:
        if ds is not None:
            ds.stop()
        if osm is not None:
            osm.stop()
        pg.stop()


def run_peers(opts: Options, docs: list[Doc], qs: list[Query]) -> list[Json]:
    work = opts.work_dir / "peers"
    work.mkdir(parents=True, exist_ok=True)
    out: list[Json] = []
    db = SqliteFts(work / "peers.sqlite")
    try:
        db.ingest(docs, 1000)
        res = evaluate(sqlite_searcher(db), qs)
        res["meta"] = meta(opts, "sqlite_fts5", len(docs), qs)
        res["meta"]["options"] = {"typo": "none (FTS5 has no typo tolerance)", "prefix": "word*"}
        out.append(res)
    finally:
        db.close()
    try:
        import tantivy  # noqa: F401
    except ImportError:
        log("tantivy not installed: peer left out")
        return out
    ix = TantivyIndex(work / "tantivy")
    ix.ingest(docs, 1000)
    res = evaluate(tantivy_searcher(ix), qs)
    res["meta"] = meta(opts, "tantivy", len(docs), qs)
    res["meta"]["options"] = {
        "typo": f"fuzzy term, distance 1, words of {TYPO_MIN_LEN}+ characters",
        "prefix": "prefix term on the last word",
    }
    out.append(res)
    return out


def result_path(res: Json, out_dir: Path) -> Path:
    m = res["meta"]
    return out_dir / f"relevance-{m['system']}-{m['scale']}.json"


def execute(opts: Options) -> list[Path]:
    path = corpus.ensure_real_corpus()
    docs = list(corpus.read_ndjson(path, opts.docs))
    qs = build_queries(docs, opts.queries, opts.seed)
    log(f"{len(docs)} documents; {len(qs)} queries ({dict(Counter(q.set for q in qs))})")
    results: list[Json] = []
    for backend in opts.backends:
        results.append(run_docuseek(opts, backend, docs, qs))
    if opts.peers:
        results.extend(run_peers(opts, docs, qs))
    shutil.rmtree(opts.work_dir, ignore_errors=True)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for res in results:
        p = result_path(res, opts.out_dir)
        p.write_text(json.dumps(res, indent=1) + "\n")
        paths.append(p)
        log(f"wrote {p}")
    if opts.md_path is not None:
        splice(opts.md_path, render(load(opts.out_dir), load(opts.out_dir / BASELINE_DIR.name)))
    return paths


# -- report -------------------------------------------------------------------------------


def load(results_dir: Path) -> list[Json]:
    out = []
    for p in sorted(results_dir.glob("relevance-*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if r.get("meta", {}).get("kind") == "relevance":
            r["_file"] = p.name
            out.append(r)
    return out


SYSTEM_ORDER = ("docuseek-postgres", "docuseek-opensearch", "sqlite_fts5", "tantivy")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _f3(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def render(results: Iterable[Json], baselines: Iterable[Json] = ()) -> str:
    """The RESULTS.md section (without the markers); `baselines`: earlier results of the
    same systems on the same queries, shown beside them."""
    before = {
        (b["meta"]["system"], b["meta"]["scale"], name): m
        for b in baselines
        for name, m in b["sets"].items()
    }
    broad_before = {
        (b["meta"]["system"], b["meta"]["scale"], cls): m
        for b in baselines
        for cls, m in (b.get("broad") or {}).items()
    }
    rs = sorted(
        results,
        key=lambda r: (
            r["meta"]["scale"],
            SYSTEM_ORDER.index(r["meta"]["system"]) if r["meta"]["system"] in SYSTEM_ORDER else 9,
        ),
    )
    lines = ["## Relevance\n"]
    if not rs:
        lines.append("No relevance results yet (`python -m bench relevance`).\n")
        return "\n".join(lines)
    m0 = rs[0]["meta"]
    lines.append(
        f"Method: `python -m bench relevance` (`bench/relevance.py`) on the Debian corpus "
        f"({m0['docs']:,} documents), seed {m0['seed']}: known-item queries (2–4 words of "
        f"document frequency {DF_MIN}–{DF_MAX} from one package's long description, not its "
        "name), name queries (the package name split on `-`), each also with one typo (one "
        f"edit in a word of {TYPO_MIN_LEN}+ letters, giving a word no document holds) and with "
        f"the last word cut to a prefix ({PREFIX_MIN_LEN}+ letters); the target is the source "
        "package; the first 10 hits of each system. `clean` beside a variant: the same "
        "queries without the typo or the cut. Tantivy runs with fuzzy terms (distance 1) for "
        "the typo set and a prefix term for the prefix set; SQLite FTS5 with `word*` for the "
        "prefix set and no typo tolerance (it has none); Docuseek as the API is today. The "
        "benchmark's collection has `package` as a keyword field (and the peers do not index "
        "it), so name queries find their target only through the words of its descriptions.\n"
    )
    if before:
        commits = sorted({str(b["meta"].get("git_commit")) for b in baselines})
        lines.append(
            f"`before`: the same system on the same queries at commit {', '.join(commits)},"
            " before typo tolerance, prefixes and broad-query ranking. `of clean`: a variant's"
            " success@10 as a share of its clean queries' (target: 90% for typo and prefix"
            " sets).\n"
        )
    lines.append(
        "| system | query set | queries | MRR@10 | success@1 % | success@10 % | "
        "clean MRR@10 | clean success@10 % | of clean % | before: MRR@10 | "
        "before: success@10 % |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rs:
        for name, m in r["sets"].items():
            clean = m.get("clean_same") or {}
            share = m["success10"] / clean["success10"] if clean.get("success10") else None
            old = before.get((r["meta"]["system"], r["meta"]["scale"], name)) or {}
            lines.append(
                f"| {r['meta']['system']} | {name} | {m['queries']} | {_f3(m['mrr10'])} | "
                f"{_pct(m['success1'])} | {_pct(m['success10'])} | {_f3(clean.get('mrr10'))} | "
                f"{_pct(clean.get('success10'))} | {_pct(share)} | {_f3(old.get('mrr10'))} | "
                f"{_pct(old.get('success10'))} |"
            )
    lines.append("")
    broad = [r for r in rs if r.get("broad")]
    if broad:
        lines.append(
            "Broad queries (the latency benchmark's `common` and `two_words` classes): overlap "
            "of Docuseek's first page with the exact `ts_rank(tsv, q, 32)` top 10 over every "
            "match, computed in SQL on the collection's index table.\n"
        )
        lines.append(
            f"| system | class | queries | over PG_EXACT_LIMIT ({EXACT_LIMIT}) | mean overlap@10 "
            "| mean overlap@10 of those over the limit | before: mean overlap@10 |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for r in broad:
            for cls, b in r["broad"].items():
                old = broad_before.get((r["meta"]["system"], r["meta"]["scale"], cls)) or {}
                lines.append(
                    f"| {r['meta']['system']} {r['meta']['scale']} | {cls} | {b['queries']} | "
                    f"{b['over_exact_limit']} | {_f3(b['mean_overlap10'])} | "
                    f"{_f3(b.get('mean_overlap10_over_limit'))} | "
                    f"{_f3(old.get('mean_overlap10'))} |"
                )
        lines.append("")
    files = ", ".join(f"`{r['_file']}`" for r in rs if "_file" in r)
    commits = sorted({str(r["meta"].get("git_commit")) for r in rs})
    lines.append(f"Files: {files}; commit {', '.join(commits)}.\n")
    return "\n".join(lines)


def splice(md_path: Path, section: str) -> None:
    """Put `section` between the markers in md_path (appended with them if absent)."""
    block = f"{RESULTS_START}\n{section.rstrip()}\n{RESULTS_END}"
    text = md_path.read_text() if md_path.exists() else ""
    start, end = text.find(RESULTS_START), text.find(RESULTS_END)
    if start != -1 and end > start:
        text = text[:start] + block + text[end + len(RESULTS_END) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    md_path.write_text(text)


def regenerate_section(md_path: Path = RESULTS_MD, results_dir: Path = RESULTS_DIR) -> None:
    """For `python -m bench report`: keep the relevance section in a regenerated file."""
    results = load(results_dir)
    if results:
        splice(md_path, render(results, load(results_dir / BASELINE_DIR.name)))
