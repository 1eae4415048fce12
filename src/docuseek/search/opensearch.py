"""OpenSearch backend (opensearch-py and its bulk helpers).

Layout per collection: one physical index per generation, `<prefix>-<collection>-<n>`,
with a write alias `<prefix>-<collection>-<n>.write` and, on the live generation only, the
read alias `<prefix>-<collection>`. Writes go through the write alias with
`require_alias`, so a write to a dropped generation fails (GenerationMissing) instead of
auto-creating an empty index. Searches read the read alias, which a reindex swaps
atomically. Document versions are OpenSearch external versions: an upsert applies when
the stored version is <= its own, a delete when it is <, exactly as in PostgreSQL.

Queries: the web-search syntax is parsed here (not by simple_query_string, whose operator
precedence differs from websearch_to_tsquery) into OR-groups of AND-ed clauses: a single
word is a `match` (one term), only a multi-word clause a `match_phrase`. Text
is analysed like PostgreSQL's `english` configuration: its stop words and the Snowball
English stemmer, so result membership matches the PostgreSQL backend.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    NotFoundError,
    RequestError,
    TransportError,
)
from opensearchpy.exceptions import (
    ConnectionError as OSConnectionError,
)

from docuseek.schema import Collection, FieldSpec
from docuseek.search.base import (
    BackendUnavailable,
    BatchResult,
    FieldFilter,
    GenerationMissing,
    Hit,
    IndexOp,
    InvalidCursor,
    SchemaConflict,
    SearchQuery,
    SearchResult,
    effective_sort,
)
from docuseek.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("docuseek.search.opensearch")

# PostgreSQL's `english` stop words (snowball english.stop), so both backends ignore the
# same query words.
STOP_WORDS = (  # noqa: SIM905 - one word list, as PostgreSQL ships it
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his"
    " himself she her hers herself it its itself they them their theirs themselves what"
    " which who whom this that these those am is are was were be been being have has had"
    " having do does did doing a an the and but if or because as until while of at by for"
    " with about against between into through during before after above below to from up"
    " down in out on off over under again further then once here there when where why how"
    " all any both each few more most other some such no nor not only own same so than too"
    " very s t can will just don should now"
).split()
STOP_SET = frozenset(STOP_WORDS)
WEIGHT_BOOST = {"A": 10.0, "B": 4.0, "C": 2.0, "D": 1.0}  # ts_rank's 1.0/0.4/0.2/0.1
ID_FIELD = "id"  # the document's own id (a keyword): the keyset tiebreaker
# A document's fields outside the schema travel in this one unmapped object, which
# OpenSearch stores but neither parses nor indexes (dynamic: false). At the top level such
# a field could meet the mapping of a field the schema once had: a mapping keeps a removed
# field's type until a reindex, and a value of another type failed the whole document
# (mapper_parsing_exception, found by fuzzing). Hits put the document back together.
EXTRA_FIELD = "@docuseek_extra"
GC_DELETES = "10m"  # keep delete tombstones well past any in-flight stale write
# The periodic refresh that bulk's refresh=wait_for waits for; set explicitly, which also
# keeps OpenSearch from pausing it on search-idle shards.
REFRESH_INTERVAL = "1s"
UNAVAILABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
ANALYSIS: dict[str, Any] = {
    "filter": {
        "docuseek_stop": {"type": "stop", "stopwords": STOP_WORDS},
        "docuseek_stem": {"type": "snowball", "language": "English"},
    },
    "analyzer": {
        "docuseek_english": {
            "type": "custom",
            "tokenizer": "standard",
            # Snowball English (Porter2, as PostgreSQL's english_stem) also strips "'s".
            "filter": ["lowercase", "docuseek_stop", "docuseek_stem"],
        },
        "docuseek_exact": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]},
    },
}
_WORD_RE = re.compile(r"\w+")
MAX_TOKEN_LENGTH = 255  # the standard tokenizer splits longer runs into several tokens


def field_mapping(spec: FieldSpec) -> dict[str, Any]:
    if spec.type == "text":
        return {
            "type": "text",
            "analyzer": "docuseek_english",
            "fields": {"exact": {"type": "text", "analyzer": "docuseek_exact"}},
        }
    return {"type": {"integer": "long", "float": "double"}.get(spec.type, spec.type)}


def index_body(collection: Collection) -> dict[str, Any]:
    properties = {name: field_mapping(spec) for name, spec in collection.fields.items()}
    properties[ID_FIELD] = {"type": "keyword"}
    return {
        "settings": {
            "index": {"gc_deletes": GC_DELETES, "refresh_interval": REFRESH_INTERVAL},
            "analysis": ANALYSIS,
        },
        # dynamic false: fields outside the schema stay in _source but are not indexed.
        "mappings": {"dynamic": False, "properties": properties},
    }


def indexed_source(collection: Collection, doc_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """The `_source` indexed for a document: its schema fields at the top level."""
    source: dict[str, Any] = {ID_FIELD: doc_id}
    extra: dict[str, Any] = {}
    for key, value in document.items():
        if key in collection.fields:
            source[key] = value
        elif key != ID_FIELD:
            extra[key] = value
    if extra:
        source[EXTRA_FIELD] = extra
    return source


def stored_document(source: dict[str, Any]) -> dict[str, Any]:
    """The document an indexed `_source` was made from (also one indexed flat, before
    EXTRA_FIELD)."""
    extra = source.get(EXTRA_FIELD)
    if extra is None:
        return source
    document = {key: value for key, value in source.items() if key != EXTRA_FIELD}
    document.update(extra)
    return document


# -- the web-search query language -----------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    text: str  # one word or a quoted phrase; several tokens match as a phrase (`<->` in PG)
    negated: bool

    @property
    def word(self) -> str | None:
        """The clause's only token, when the standard tokenizer surely sees exactly one.

        Then a `match` (a term query) has the phrase's membership at a fraction of its cost.
        Non-ASCII text stays a phrase: the tokenizer may split it (CJK per character) or join
        what `\\w` does not (combining marks); ASCII punctuation only ever ends a token.
        """
        words: list[str] = _WORD_RE.findall(self.text)
        if len(words) == 1 and self.text.isascii() and len(words[0]) <= MAX_TOKEN_LENGTH:
            return words[0]
        return None


def parse_websearch(q: str) -> list[list[Clause]]:
    """websearch_to_tsquery's grammar: OR-groups of AND-ed clauses, stop words removed.

    Words and "quoted phrases" are AND-ed, `-` negates, the word `or` separates groups.
    A clause made only of stop words is dropped, as PostgreSQL drops it.
    """
    groups: list[list[Clause]] = [[]]
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
            continue
        negated = ch == "-"
        if negated:
            i += 1
            if i >= n or q[i].isspace():
                continue
        if q[i] == '"':
            end = q.find('"', i + 1)
            end = n if end < 0 else end
            text, i = q[i + 1 : end], end + 1
        else:
            start = i
            while i < n and not q[i].isspace() and q[i] != '"':
                i += 1
            text = q[start:i]
            if not negated and text.lower() == "or":
                if groups[-1]:
                    groups.append([])
                continue
        words = [w.lower() for w in _WORD_RE.findall(text)]
        if any(w not in STOP_SET for w in words):
            groups[-1].append(Clause(text, negated))
    return [g for g in groups if g]


def _matches(field: str, clause: Clause) -> dict[str, Any]:
    word = clause.word
    return {"match": {field: word}} if word else {"match_phrase": {field: clause.text}}


def _weighted(collection: Collection, clause: Clause, suffix: str, scale: float) -> dict[str, Any]:
    """A clause in any text field, scored by the best field's weight only.

    Constant scores keep relevance a function of the document and the query alone: BM25's
    corpus statistics would reorder results while documents are written (and differ
    between shards), which would break relevance-ordered cursor paging.
    """
    return {
        "dis_max": {
            "queries": [
                {
                    "constant_score": {
                        "filter": _matches(f"{f.name}{suffix}", clause),
                        "boost": WEIGHT_BOOST[f.weight] * scale,
                    }
                }
                for f in collection.text_fields
            ]
        }
    }


def text_query(collection: Collection, q: str) -> dict[str, Any]:
    groups = parse_websearch(q)
    if not groups or not collection.text_fields:
        return {"match_none": {}}
    alternatives = [
        {
            "bool": {
                "must": [_weighted(collection, c, "", 1.0) for c in g if not c.negated],
                "must_not": [_weighted(collection, c, "", 1.0) for c in g if c.negated],
            }
        }
        for g in groups
    ]
    membership = (
        alternatives[0]
        if len(alternatives) == 1
        else {"bool": {"should": alternatives, "minimum_should_match": 1}}
    )
    # Unstemmed matches rank higher; a `should` beside `must` changes the score only.
    exact = [_weighted(collection, c, ".exact", 0.5) for g in groups for c in g if not c.negated]
    return {"bool": {"must": [membership], "should": exact}}


def highlight_query(collection: Collection, q: str) -> dict[str, Any]:
    clauses = [c for g in parse_websearch(q) for c in g if not c.negated]
    return {
        "bool": {"should": [_matches(f.name, c) for c in clauses for f in collection.text_fields]}
    }


def filter_query(collection: Collection, flt: FieldFilter) -> list[dict[str, Any]]:
    spec = collection.fields[flt.field]
    out: list[dict[str, Any]] = []
    if flt.values:
        out.append({"terms": {spec.name: list(flt.values)}})
    pairs = (("gte", flt.gte), ("gt", flt.gt), ("lte", flt.lte), ("lt", flt.lt))
    bounds = {op: bound for op, bound in pairs if bound is not None}
    if bounds:
        out.append({"range": {spec.name: bounds}})
    return out


def _facet_value(spec: FieldSpec, bucket: dict[str, Any]) -> Any:
    """A terms bucket's key as PostgreSQL returns the stored JSON value."""
    key = bucket["key"]
    if spec.type == "boolean":
        return bucket.get("key_as_string", str(bool(key)).lower()) == "true"
    if spec.type == "date":
        moment = datetime.fromtimestamp(int(key) / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return key


def _fits_sort(collection: Collection, key: dict[str, Any], value: Any) -> bool:
    """Whether a cursor's value has the JSON type OpenSearch gave for this sort key: a
    forged one would fail in the engine, some as a 500 (which reads as unavailable)."""
    (name,) = key
    # A document without the field sorts last: as infinity, which JSON spells as text.
    number = (isinstance(value, int | float) and not isinstance(value, bool)) or value in (
        "Infinity",
        "-Infinity",
    )
    if name == "_score":
        return number
    if name == ID_FIELD:  # every document has an id
        return isinstance(value, str)
    if value is None:
        return True
    spec = collection.fields.get(name)
    if spec is None or spec.type == "keyword":
        return isinstance(value, str)
    if spec.type == "boolean":
        return number or isinstance(value, bool)
    if spec.type == "date":
        return number or isinstance(value, str)
    return number


# -- the backend -----------------------------------------------------------------------------


@contextmanager
def _translate_errors() -> Iterator[None]:
    """Engine down, overloaded or refusing our credentials: BackendUnavailable (503, retry)."""
    try:
        yield
    except OSConnectionError as exc:  # includes timeouts and TLS failures
        raise BackendUnavailable(f"OpenSearch is unreachable: {exc.info or exc}") from exc
    except (AuthenticationException, AuthorizationException) as exc:
        raise BackendUnavailable(f"OpenSearch refused the credentials: {exc.error}") from exc
    except TransportError as exc:
        if exc.status_code == "N/A" or exc.status_code in UNAVAILABLE_STATUSES:
            raise BackendUnavailable(f"OpenSearch answered {exc.status_code}: {exc.error}") from exc
        raise


class OpenSearchBackend:
    name = "opensearch"
    reads_stored_documents = False  # the cluster cannot read PostgreSQL: bodies come in ops

    def __init__(self, client: OpenSearch, prefix: str = "docuseek") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenSearchBackend:
        url = settings.opensearch_url
        auth = None
        if settings.opensearch_user:
            password = settings.opensearch_password
            auth = (settings.opensearch_user, password.get_secret_value() if password else "")
        if url.startswith("https") and not settings.opensearch_verify_certs:
            log.warning(
                "OPENSEARCH_VERIFY_CERTS is off: the TLS certificate of %s is NOT verified; "
                "anyone on the network path can impersonate the cluster and read the password. "
                "Set OPENSEARCH_CA_FILE to the cluster's CA instead.",
                url,
            )
        client = OpenSearch(
            hosts=[url],
            http_auth=auth,
            verify_certs=settings.opensearch_verify_certs,
            ca_certs=str(settings.opensearch_ca_file) if settings.opensearch_ca_file else None,
            ssl_show_warn=False,  # the warning above says it once, clearly
            timeout=30,
            max_retries=1,
            retry_on_timeout=False,
        )
        return cls(client, settings.opensearch_index_prefix)

    # -- names -----------------------------------------------------------------------------

    def alias(self, collection: Collection) -> str:
        return f"{self.prefix}-{collection.name}"

    def index_name(self, collection: Collection, generation: int) -> str:
        return f"{self.alias(collection)}-{int(generation)}"

    def write_alias(self, collection: Collection, generation: int) -> str:
        # '.' cannot occur in collection names, so this never names another collection's index.
        return f"{self.index_name(collection, generation)}.write"

    # -- lifecycle -------------------------------------------------------------------------

    def check(self) -> None:
        with _translate_errors():
            if not self.client.ping():
                raise BackendUnavailable(f"OpenSearch did not answer a ping ({self.prefix})")

    def ensure_collection(self, collection: Collection, generation: int) -> None:
        index = self.index_name(collection, generation)
        body = index_body(collection)
        with _translate_errors():
            if not self.client.indices.exists(index=index):
                body["aliases"] = {self.write_alias(collection, generation): {}}
                if generation == collection.generation:
                    body["aliases"][self.alias(collection)] = {}
                try:
                    self.client.indices.create(index=index, body=body)
                    return
                except RequestError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise
            try:
                self.client.indices.put_mapping(index=index, body=body["mappings"])
            except RequestError as exc:
                # A field changed type: an index mapping cannot change in place.
                log.error(
                    "mapping of %s cannot be updated (%s); run `docuseek reindex --collection %s`",
                    index,
                    exc.info,
                    collection.name,
                )

    def check_schema(self, collection: Collection) -> None:
        conflicts: dict[str, str] = {}
        with _translate_errors():
            for generation in collection.write_generations:
                index = self.index_name(collection, generation)
                try:
                    mappings = self.client.indices.get_mapping(index=index)[index]["mappings"]
                except NotFoundError:
                    continue  # ensure_collection creates it
                indexed = mappings.get("properties", {})
                for name, spec in collection.fields.items():
                    have = indexed.get(name, {}).get("type")
                    want = field_mapping(spec)["type"]
                    if have is not None and have != want and name not in conflicts:
                        conflicts[name] = (
                            f"field {name!r} is indexed as {have} in {index}; as {spec.type} it"
                            f" needs {want}, and OpenSearch cannot change a mapping type in place"
                        )
        if conflicts:
            raise SchemaConflict(conflicts)

    def drop_generation(self, collection: Collection, generation: int) -> None:
        with _translate_errors():
            self.client.indices.delete(
                index=self.index_name(collection, generation), ignore_unavailable=True
            )

    def drop_collection(self, collection: Collection, conn: Connection | None = None) -> None:
        # Match `<alias>-<digits>` exactly: collection "a-1" has indices "…-a-1-<n>" too.
        pattern = re.compile(re.escape(self.alias(collection)) + r"-\d+")
        with _translate_errors():
            found = self.client.indices.get(
                index=f"{self.alias(collection)}-*", allow_no_indices=True, ignore_unavailable=True
            )
            for index in found:
                if pattern.fullmatch(index):
                    self.client.indices.delete(index=index, ignore_unavailable=True)

    def activate_generation(self, collection: Collection, generation: int) -> None:
        alias = self.alias(collection)
        target = self.index_name(collection, generation)
        with _translate_errors():
            try:
                holders = list(self.client.indices.get_alias(name=alias))
            except NotFoundError:
                holders = []
            actions: list[dict[str, Any]] = [{"add": {"index": target, "alias": alias}}]
            actions += [
                {"remove": {"index": index, "alias": alias}} for index in holders if index != target
            ]
            # One _aliases call: searches see the old generation or the new, never neither.
            self.client.indices.update_aliases(body={"actions": actions})

    def close(self) -> None:
        self.client.close()

    # -- writes ----------------------------------------------------------------------------

    def index_batch(
        self, collection: Collection, generation: int, ops: Sequence[IndexOp]
    ) -> BatchResult:
        if not ops:
            return BatchResult()
        target = self.write_alias(collection, generation)
        actions: list[dict[str, Any]] = []
        for op in ops:
            if op.stored:
                raise ValueError("OpenSearchBackend needs each upsert's document in its op")
            if op.document is None:
                actions.append(
                    {
                        "_op_type": "delete",
                        "_index": target,
                        "_id": op.doc_id,
                        "version": op.version,
                        "version_type": "external",
                    }
                )
            else:
                source = indexed_source(collection, op.doc_id, op.document)
                actions.append(
                    {
                        "_op_type": "index",
                        "_index": target,
                        "_id": op.doc_id,
                        "version": op.version,
                        "version_type": "external_gte",
                        "_source": source,
                    }
                )
        with _translate_errors():
            # A task is `succeeded` only once its documents are searchable. wait_for returns
            # after the next periodic refresh instead of forcing one per batch: concurrent
            # batches share a refresh, and none pays for a refresh of the whole index.
            _, errors = helpers.bulk(
                self.client,
                actions,
                chunk_size=len(actions),
                max_retries=0,
                raise_on_error=False,
                raise_on_exception=True,
                refresh="wait_for",
                require_alias=True,
            )
        return self._batch_result(target, errors)

    @staticmethod
    def _batch_result(target: str, errors: list[Any]) -> BatchResult:
        result = BatchResult()
        for item in errors:
            (info,) = item.values()
            error = info.get("error")
            if error is None:  # e.g. a delete of an id the index never had
                continue
            kind = error.get("type", "") if isinstance(error, dict) else str(error)
            status = int(info.get("status", 0))
            if kind == "version_conflict_engine_exception":
                continue  # a newer version is already there: nothing to do
            if kind == "index_not_found_exception":
                raise GenerationMissing(target)
            if status in UNAVAILABLE_STATUSES:
                raise BackendUnavailable(f"OpenSearch rejected a bulk item ({status}: {kind})")
            reason = error.get("reason", kind) if isinstance(error, dict) else str(error)
            cause = error.get("caused_by", {}).get("reason") if isinstance(error, dict) else None
            result.failed[str(info.get("_id"))] = f"{kind}: {reason}" + (
                f" ({cause})" if cause else ""
            )
        return result

    # -- reads -----------------------------------------------------------------------------

    def count(self, collection: Collection) -> int:
        with _translate_errors(), self._missing_is_unavailable(collection):
            return int(self.client.count(index=self.alias(collection))["count"])

    def iter_versions(self, collection: Collection) -> Iterator[tuple[str, int]]:
        """Versions in the physical index of `collection.generation` (reconcile, reindex)."""
        index = self.index_name(collection, collection.generation)
        query = {"query": {"match_all": {}}, "version": True, "_source": False}
        with _translate_errors():
            try:
                for hit in helpers.scan(self.client, index=index, query=query, size=5000):
                    yield hit["_id"], int(hit["_version"])
            except NotFoundError as exc:
                raise GenerationMissing(index) from exc

    @contextmanager
    def _missing_is_unavailable(self, collection: Collection) -> Iterator[None]:
        # The alias only goes missing when the cluster lost the index: not a client error.
        try:
            yield
        except NotFoundError as exc:
            raise BackendUnavailable(
                f"index {self.alias(collection)} is missing in OpenSearch; rebuild it with"
                f" `docuseek reindex --collection {collection.name}`"
            ) from exc

    def _sort(self, collection: Collection, query: SearchQuery) -> list[dict[str, Any]]:
        sort: list[dict[str, Any]] = []
        for key in effective_sort(query):
            order = "desc" if key.descending else "asc"
            if key.field == "_score":
                sort.append({"_score": {"order": order}})
            else:
                name = ID_FIELD if key.field == "_id" else key.field
                sort.append({name: {"order": order, "missing": "_last"}})
        return sort

    def search(self, collection: Collection, query: SearchQuery) -> SearchResult:
        has_q = bool(query.q.strip())
        filters = [c for f in query.filters for c in filter_query(collection, f)]
        must = [text_query(collection, query.q)] if has_q else []
        sort = self._sort(collection, query)
        body: dict[str, Any] = {
            "query": {"bool": {"must": must, "filter": filters}},
            "sort": sort,
            "size": query.limit + 1,  # one more than asked: has_more without a count
            "track_total_hits": True,
            "track_scores": has_q,
        }
        if query.after is not None:
            if len(query.after) != len(sort) or not all(
                _fits_sort(collection, key, value)
                for key, value in zip(sort, query.after, strict=True)
            ):
                raise InvalidCursor("cursor does not match this query's sort")
            body["search_after"] = list(query.after)
        if has_q and query.highlight and collection.text_fields:
            body["highlight"] = {
                "encoder": "html",
                "pre_tags": ["<mark>"],
                "post_tags": ["</mark>"],
                "number_of_fragments": 2,
                "fragment_size": 160,
                "fields": {f.name: {} for f in collection.text_fields},
                "highlight_query": highlight_query(collection, query.q),
            }
        if query.facets:
            body["aggs"] = {
                name: {
                    "terms": {
                        "field": name,
                        "size": query.facet_size,
                        "shard_size": max(100, query.facet_size * 5),
                        "order": [{"_count": "desc"}, {"_key": "asc"}],
                    }
                }
                for name in query.facets
            }
        with _translate_errors():
            try:
                response = self.client.search(index=self.alias(collection), body=body)
            except NotFoundError as exc:
                # The read alias is gone: the collection is being deleted (its indexes go
                # before its row commits), or the cluster lost them. The caller reloads.
                raise GenerationMissing(f"index {self.alias(collection)} is missing") from exc
            except RequestError as exc:
                if query.after is not None:
                    raise InvalidCursor("cursor values do not fit this query") from exc
                raise
        return self._result(collection, query, response, has_q)

    @staticmethod
    def _result(
        collection: Collection, query: SearchQuery, response: dict[str, Any], has_q: bool
    ) -> SearchResult:
        raw_hits = response["hits"]["hits"]
        hits = [
            Hit(
                id=h["_id"],
                score=float(h["_score"]) if has_q and h.get("_score") is not None else None,
                document=stored_document(h["_source"]),
                highlights={k: list(v) for k, v in h.get("highlight", {}).items()},
                sort_values=list(h["sort"]),
            )
            for h in raw_hits[: query.limit]
        ]
        facets = {
            name: [
                (_facet_value(collection.fields[name], b), int(b["doc_count"]))
                for b in response.get("aggregations", {}).get(name, {}).get("buckets", [])
            ]
            for name in query.facets
        }
        total = response["hits"]["total"]
        return SearchResult(
            hits=hits,
            total=int(total["value"] if isinstance(total, dict) else total),
            facets=facets,
            has_more=len(raw_hits) > query.limit,
        )
