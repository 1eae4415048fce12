"""OpenSearch backend (opensearch-py and its bulk helpers).

Layout per collection: one physical index per generation, `<prefix>-<collection>-<n>`,
with a write alias `<prefix>-<collection>-<n>.write` and, on the live generation only, the
read alias `<prefix>-<collection>`. Writes go through the write alias with
`require_alias`, so a write to a dropped generation fails (GenerationMissing) instead of
auto-creating an empty index. Searches read the read alias, which a reindex swaps
atomically. Document versions are OpenSearch external versions: an upsert applies when
the stored version is <= its own, a delete when it is <, exactly as in PostgreSQL.

Queries are built in `opensearch_query.py`. Text is analysed like the PostgreSQL
configuration of the collection's language: its stop words and Snowball stemmer (and
accents folded with `unaccent`), so result membership matches the PostgreSQL backend.
Joined words (`System.DirectoryServices`, `foo_bar`) are indexed as their parts, as in
PostgreSQL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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

from docuseek.schema import Collection, FieldSpec, TextAnalysis
from docuseek.search.analysis import stop_words
from docuseek.search.base import (
    BackendUnavailable,
    BatchResult,
    GenerationMissing,
    Hit,
    IndexOp,
    InvalidCursor,
    OpKind,
    SchemaConflict,
    SearchQuery,
    SearchResult,
)
from docuseek.search.opensearch_query import (
    ID_FIELD,
    facet_value,
    search_body,
)
from docuseek.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("docuseek.search.opensearch")

# A document's fields outside the schema travel in this one unmapped object, which
# OpenSearch stores but neither parses nor indexes (dynamic: false). At the top level such
# a field could meet the mapping of a field the schema once had: a mapping keeps a removed
# field's type until a reindex, and a value of another type failed the whole document
# (mapper_parsing_exception). Hits put the document back together.
EXTRA_FIELD = "@docuseek_extra"
GC_DELETES = "10m"  # keep delete tombstones well past any in-flight stale write
# The periodic refresh that bulk's refresh=wait_for waits for; set explicitly, which also
# keeps OpenSearch from pausing it on search-idle shards.
REFRESH_INTERVAL = "1s"
UNAVAILABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Joined words (`System.DirectoryServices`, `foo_bar`, `l'école`) as their parts, as
# PostgreSQL's `split_joined` and parser make them: these characters separate words.
JOINED_PARTS: dict[str, Any] = {
    "type": "pattern_replace",
    "pattern": "[/._@'\u2019]",
    "replacement": " ",
}
CHAR_FILTERS = ["docuseek_joined"]


def analyzer_name(analysis: TextAnalysis) -> str:
    # `docuseek_english` is also the name indices made before languages existed use.
    return f"docuseek_{analysis.language}" + ("_unaccent" if analysis.unaccent else "")


def analysis_settings(analysis: TextAnalysis) -> dict[str, Any]:
    """The index's analyzers: the text analyzer of its language, and `docuseek_exact`
    (no stemming, no stop words) for the subfield that ranks unstemmed matches higher."""
    filters: dict[str, Any] = {}
    folding = ["asciifolding"] if analysis.unaccent else []
    chain = ["lowercase", *folding]
    words = stop_words(analysis.language)
    if words:
        filters["docuseek_stop"] = {"type": "stop", "stopwords": list(words)}
        chain.append("docuseek_stop")
    if analysis.language != "simple":
        # Snowball, as PostgreSQL's `<language>_stem` dictionaries (English: Porter2).
        filters["docuseek_stem"] = {"type": "snowball", "language": analysis.language.title()}
        chain.append("docuseek_stem")
    return {
        "char_filter": {"docuseek_joined": JOINED_PARTS},
        "filter": filters,
        "analyzer": {
            analyzer_name(analysis): {
                "type": "custom",
                "char_filter": CHAR_FILTERS,
                "tokenizer": "standard",
                "filter": chain,
            },
            "docuseek_exact": {
                "type": "custom",
                "char_filter": CHAR_FILTERS,
                "tokenizer": "standard",
                "filter": ["lowercase", *folding],
            },
        },
    }


def field_mapping(spec: FieldSpec, analysis: TextAnalysis | None = None) -> dict[str, Any]:
    if spec.type == "text":
        return {
            "type": "text",
            "analyzer": analyzer_name(analysis or TextAnalysis()),
            "fields": {"exact": {"type": "text", "analyzer": "docuseek_exact"}},
        }
    return {"type": {"integer": "long", "float": "double"}.get(spec.type, spec.type)}


def index_body(collection: Collection, generation: int | None = None) -> dict[str, Any]:
    """The index of a generation (the live one by default), analysed as that generation."""
    analysis = collection.analysis_of(collection.generation if generation is None else generation)
    properties = {name: field_mapping(spec, analysis) for name, spec in collection.fields.items()}
    properties[ID_FIELD] = {"type": "keyword"}
    return {
        "settings": {
            "index": {"gc_deletes": GC_DELETES, "refresh_interval": REFRESH_INTERVAL},
            "analysis": analysis_settings(analysis),
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
        body = index_body(collection, generation)
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

    def drop_collection(self, collection: Collection, conn: Connection) -> None:
        # At once (the caller has not committed): indexes cannot join its transaction.
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
            if op.kind is OpKind.UPSERT_STORED:
                raise ValueError("OpenSearchBackend needs each upsert's document in its op")
            if op.kind is OpKind.DELETE:
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
                assert op.document is not None  # an UPSERT carries its document
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

    def search(self, collection: Collection, query: SearchQuery) -> SearchResult:
        has_q = bool(query.q.strip())
        body = search_body(collection, query)
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
                (facet_value(collection.fields[name], b), int(b["doc_count"]))
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
