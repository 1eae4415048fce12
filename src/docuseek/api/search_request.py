"""Turn a search request (query string or JSON body) into a validated SearchQuery.

Filter syntax in the query string, one `filter` parameter per condition (all must hold):
  field:value            equality          section:utils
  field:v1,v2            any of            section:utils,admin
  field>=v field>v field<=v field<v        year>=2000
  field:lo..hi           inclusive range   year:2000..2010
In a JSON body: {"filter": {"section": ["utils", "admin"], "year": {"gte": 2000}}}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import replace
from typing import Any

from pydantic import ConfigDict, Field

from docuseek.errors import InvalidInput
from docuseek.schema import INT64, SORTABLE_TYPES, Collection, FieldSpec, coerce_value
from docuseek.search.base import FieldFilter, SearchQuery, SortKey, effective_sort
from docuseek.storable import StorableModel, text_problem

MAX_LIMIT = 1000
RANGE_OPS = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}
FILTER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<|:)\s*(.*?)\s*$", re.S)


PREFIX_HELP = (
    "The last word also matches the words it begins (search-as-you-type), unless the query"
    " ends with a space or punctuation (a `*` after the word asks for it) or the word has"
    " fewer than 2 characters"
)
TYPO_HELP = "Words may match with typos, by the collection's typo_tolerance settings"


class SearchBody(StorableModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field("", max_length=2000, description='Web-search syntax: words, "phrases", -not, OR')
    filter: dict[str, Any] = Field(default_factory=dict)
    facets: list[str] = Field(default_factory=list)
    sort: list[str] = Field(default_factory=list, description="field[:asc|:desc], _score, _id")
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
    highlight: bool = True
    prefix: bool = Field(True, description=PREFIX_HELP)
    typo: bool = Field(True, description=TYPO_HELP)


def _bad(param: str, message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"loc": ["query", param], "msg": message}])


def _filter_field(collection: Collection, name: str) -> FieldSpec:
    spec = collection.fields.get(name)
    if spec is None:
        known = ", ".join(sorted(f for f, s in collection.fields.items() if s.type != "text"))
        raise _bad("filter", f"unknown filter field {name!r}; filterable fields: {known or 'none'}")
    if spec.type == "text":
        raise _bad(
            "filter",
            f"field {name!r} is full text; filter on keyword, number, date or boolean fields",
        )
    return spec


def _typed(spec: FieldSpec, value: Any, from_text: bool) -> Any:
    if from_text:
        value = _parse_text_value(spec, value)
    try:
        if spec.type == "keyword":
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
        return coerce_value(spec, value)
    except ValueError as exc:
        raise _bad("filter", f"filter on {spec.name!r} ({spec.type}): {exc}") from None


def _parse_text_value(spec: FieldSpec, raw: str) -> Any:
    if spec.type in ("integer", "float"):
        try:
            return int(raw) if spec.type == "integer" else float(raw)
        except ValueError:
            kind = "an integer" if spec.type == "integer" else "a number"
            raise _bad("filter", f"filter on {spec.name!r}: {raw!r} is not {kind}") from None
    if spec.type == "boolean":
        if raw.lower() not in ("true", "false"):
            raise _bad("filter", f"filter on {spec.name!r}: expected true or false")
        return raw.lower() == "true"
    return raw


def parse_filter_strings(collection: Collection, raw_filters: list[str]) -> tuple[FieldFilter, ...]:
    out: list[FieldFilter] = []
    for raw in raw_filters:
        match = FILTER_RE.match(raw)
        if not match or not match.group(3):
            raise _bad(
                "filter",
                f"cannot parse filter {raw!r}; use field:value, field>=value or field:lo..hi",
            )
        name, op, value = match.groups()
        spec = _filter_field(collection, name)
        if op in RANGE_OPS:
            out.append(FieldFilter(name, **{RANGE_OPS[op]: _typed(spec, value, True)}))
        elif ".." in value and spec.type != "keyword":
            lo, hi = value.split("..", 1)
            out.append(
                FieldFilter(
                    name,
                    gte=_typed(spec, lo, True) if lo else None,
                    lte=_typed(spec, hi, True) if hi else None,
                )
            )
        else:
            # Any of several values, for every filterable type, as a POST body's list.
            parts = value.split(",")
            out.append(FieldFilter(name, values=tuple(_typed(spec, v, True) for v in parts)))
    return tuple(out)


def parse_filter_object(collection: Collection, raw: dict[str, Any]) -> tuple[FieldFilter, ...]:
    out: list[FieldFilter] = []
    for name, cond in raw.items():
        spec = _filter_field(collection, name)
        if isinstance(cond, dict):
            unknown = set(cond) - set(RANGE_OPS.values())
            if unknown or not cond:
                raise _bad(
                    "filter", f"filter on {name!r}: use gte, gt, lte, lt (got {sorted(unknown)})"
                )
            out.append(FieldFilter(name, **{k: _typed(spec, v, False) for k, v in cond.items()}))
        elif isinstance(cond, list):
            if not cond:
                raise _bad("filter", f"filter on {name!r}: empty list of values")
            out.append(FieldFilter(name, values=tuple(_typed(spec, v, False) for v in cond)))
        else:
            out.append(FieldFilter(name, values=(_typed(spec, cond, False),)))
    return tuple(out)


def parse_sort(collection: Collection, raw: list[str]) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for item in raw:
        name, _, direction = item.strip().partition(":")
        direction = direction.lower() or ("desc" if name == "_score" else "asc")
        if direction not in ("asc", "desc"):
            raise _bad("sort", f"sort direction must be asc or desc, got {direction!r}")
        if name not in ("_score", "_id"):
            spec = collection.fields.get(name)
            if spec is None or spec.type not in SORTABLE_TYPES:
                raise _bad(
                    "sort",
                    f"cannot sort on {name!r}: sort on _score, _id or a keyword, number,"
                    " date or boolean field",
                )
        keys.append(SortKey(name, direction == "desc"))
    return tuple(keys)


def parse_facets(collection: Collection, raw: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for name in raw:
        spec = collection.fields.get(name)
        if spec is None or not spec.facet:
            facetable = sorted(f for f, s in collection.fields.items() if s.facet)
            raise _bad(
                "facets",
                f"{name!r} is not a facet field; facet fields: {', '.join(facetable) or 'none'}",
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _fingerprint(collection: Collection, query: SearchQuery) -> str:
    shape = [
        collection.name,
        query.q,
        [repr(f) for f in query.filters],
        [repr(s) for s in effective_sort(query)],
    ]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def encode_cursor(collection: Collection, query: SearchQuery, sort_values: list[Any]) -> str:
    payload = json.dumps(
        {"f": _fingerprint(collection, query), "v": sort_values}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


# A cursor holds a fingerprint and a few sort values: a longer one was not made here,
# and the bound keeps decoding it (and JSON's recursion) cheap.
MAX_CURSOR_CHARS = 16_384


def _cursor_value_problem(value: Any) -> str | None:
    """Why one decoded sort value cannot be a value this service put in a cursor."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -INT64 <= value < INT64 else "an integer out of 64-bit range"
    if isinstance(value, float):
        return None if math.isfinite(value) else "a number that is not finite"
    if isinstance(value, str):
        problem = text_problem(value)
        return f"a string that {problem}" if problem else None
    return f"a {type(value).__name__} where a sort value belongs"


def decode_cursor(collection: Collection, query: SearchQuery, cursor: str) -> tuple[Any, ...]:
    invalid = _bad("cursor", "invalid cursor: pass next_cursor from a previous response unchanged")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        values = payload["v"]
        fingerprint = payload["f"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise invalid from None
    if fingerprint != _fingerprint(collection, query) or not isinstance(values, list):
        raise _bad(
            "cursor", "cursor belongs to a different query (q, filter and sort must stay the same)"
        )
    for value in values:
        problem = _cursor_value_problem(value)
        if problem:
            raise _bad("cursor", f"invalid cursor: it holds {problem}")
    return tuple(values)


def build_query(
    collection: Collection,
    *,
    q: str,
    filters: tuple[FieldFilter, ...],
    facets: list[str],
    sort: list[str],
    limit: int,
    cursor: str | None,
    highlight: bool,
    prefix: bool = True,
    typo: bool = True,
) -> SearchQuery:
    query = SearchQuery(
        q=q,
        filters=filters,
        facets=parse_facets(collection, facets),
        sort=parse_sort(collection, sort),
        limit=limit,
        highlight=highlight,
        prefix=prefix,
        typo=typo,
    )
    if cursor:
        query = replace(query, after=decode_cursor(collection, query, cursor))
    return query


def query_from_body(collection: Collection, body: SearchBody) -> SearchQuery:
    """The query a JSON search body asks for (POST search, and each of a multi-search)."""
    return build_query(
        collection,
        q=body.q,
        filters=parse_filter_object(collection, body.filter),
        facets=body.facets,
        sort=body.sort,
        limit=body.limit,
        cursor=body.cursor,
        highlight=body.highlight,
        prefix=body.prefix,
        typo=body.typo,
    )
