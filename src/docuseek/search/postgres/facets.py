"""Facet counts over a whole result set, with its size, in one statement."""

from __future__ import annotations

from typing import Any

from docuseek.schema import FieldSpec, normalize_date
from docuseek.search.postgres.context import SearchContext
from docuseek.search.postgres.layout import (
    Layout,
    column,
    query_sql,
    quote_literal,
)

PAGE_ROW = "#page"  # _facets: a row of the first tiered page, not a facet value
TSQUERY_ROW = "#tsquery"  # _facets: the row of the query as PostgreSQL parsed it


class Facets(SearchContext):
    """Facet counts, and a first tiered page picked on the way."""

    def _facets(
        self, with_tier_page: bool
    ) -> tuple[int, dict[str, list[tuple[Any, int]]], list[tuple[str, bool]] | None]:
        """Facet counts over the whole result set, with its exact size, in one statement.

        with_tier_page: also return what a first tiered page would hold, the (id, top tier?)
        pairs of its rows, top tier first, each tier in id order. The statement reads
        every match anyway; picking the page there saves the tier statements (bench/notes.md,
        'Design decisions: facet counts'). Used only if the total exceeds exact_limit."""
        names = list(self.query.facets)  # distinct (parse_facets)
        columns = ", ".join(column(name) for name in names)
        # One grouping over every facet column, then each facet (and the total) from its
        # few rows: one hash pass over the matches instead of one per facet plus a count.
        parts = ["(SELECT '' AS facet, NULL::text AS value, coalesce(sum(n), 0)::bigint FROM g)"]
        for i, name in enumerate(names):
            col = column(name)
            order = f"g.{col}"
            if self.collection.fields[name].type == "keyword":
                # Each group's count spread over its array's values: one unnest per
                # distinct array, not one per match. A value twice in one array counts
                # once, as a document holds it once.
                source = f"g, LATERAL (SELECT DISTINCT v FROM unnest(g.{col}) AS v) AS e{i}(v)"
                value = f"e{i}.v"
                # Equal counts in OpenSearch's order: by the values' bytes.
                order = f'{value} COLLATE "C"'
            else:
                source, value = "g", f"g.{col}"
            parts.append(
                f"(SELECT {quote_literal(name)}, {value}::text, sum(g.n)::bigint AS n"
                f" FROM {source} WHERE {value} IS NOT NULL GROUP BY {value}"
                f" ORDER BY n DESC, {order} LIMIT {int(self.query.facet_size)})"
            )
        if self.has_q and self.tsquery is None:
            # The parsed query, which a tiered search needs next, without a round trip.
            parts.append(f"(SELECT '{TSQUERY_ROW}', {query_sql(self.collection)}::text, 0)")
        matches = f"{self.table} WHERE {self.match}"
        if with_tier_page:
            top = "false"
            if Layout(self.collection).top_fields:
                # A sub-select: the query is parsed once, not once per row.
                top = f"coalesce(tsv_top @@ (SELECT {query_sql(self.collection)}), false)"
            # A facet name is an identifier, so "#page" cannot be one.
            parts.append(
                f"(SELECT '{PAGE_ROW}', id, top::int::bigint FROM m"
                f" ORDER BY top DESC, id LIMIT {self.query.limit + 1})"
            )
            prefix = f"WITH m AS MATERIALIZED (SELECT {columns}, id, {top} AS top FROM {matches}), "
            matches = "m"
        else:
            prefix = "WITH "
        sql = (
            f"{prefix}g AS MATERIALIZED (SELECT {columns}, count(*) AS n FROM {matches}"
            f" GROUP BY {columns}) " + " UNION ALL ".join(parts)
        )
        total = 0
        facets: dict[str, list[tuple[Any, int]]] = {name: [] for name in names}
        page: list[tuple[str, bool]] = []
        for facet, value, n in self._rows(sql):
            if facet == "":
                total = int(n)
            elif facet == PAGE_ROW:
                page.append((value, bool(n)))
            elif facet == TSQUERY_ROW:
                self.tsquery = str(value)
            else:
                spec = self.collection.fields[facet]
                facets[facet].append((_facet_value(spec, value), int(n)))
        return total, facets, (page if with_tier_page else None)


def _facet_value(spec: FieldSpec, value: str) -> Any:
    if spec.type == "integer":
        return int(value)
    if spec.type == "float":
        return float(value)
    if spec.type == "boolean":
        return value == "true"
    if spec.type == "date":
        return normalize_date(value.replace(" ", "T"))
    return value
