"""The PostgreSQL backend's query planner: one search's SQL, built from the query and run
on one connection.

Ordering every match by ts_rank costs a read of every matching row: fine for a few
thousand, seconds for a common word in a million. So a query first counts its matches up
to `exact_limit`:
- up to that many, they are ranked exactly (ts_rank with the schema's weights) and the
  total is exact;
- beyond it, the matches whose words ts_rank rewards most (found through impact tokens
  stored with each row, a few hundred at most) come first, ranked exactly; then the
  other matches in the highest-weighted fields, then the rest, each of these two tiers
  in id order (both walk an index and stop at the page); scores are computed for the
  page only, and the total says `gte` exact_limit.
A cursor keeps the mode it was made in, so paging stays complete and stable either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docuseek.schema import FieldSpec, normalize_date
from docuseek.search.base import (
    InvalidCursor,
    SearchResult,
    SortKey,
    effective_sort,
)
from docuseek.search.postgres.context import Params
from docuseek.search.postgres.facets import Facets
from docuseek.search.postgres.layout import (
    PARAM_TYPES,
    column,
    query_sql,
)
from docuseek.search.postgres.proofs import Proofs
from docuseek.search.postgres.tiers import RANKED_TIER, TIERED, Tiers

RANKED = "r"  # the cursor tag of an exactly ranked page (tiers.TIERED: of a tiered one)


class Search(Tiers, Proofs, Facets):
    """One search: builds its SQL from the query, runs it on one connection."""

    def run(self) -> SearchResult:
        query = self.query
        sort = effective_sort(query)
        relevance_first = self.has_q and sort[0] == SortKey("_score", True)
        total, exact = None, True
        tier_page: list[tuple[str, bool]] | None = None  # a first tiered page, from facets
        if query.facets:
            # A ranked tier is picked by its own statements, not from the facets' rows. The
            # query's parse tells whether it may have one without the statement that
            # computes its impact levels, which a query ranked exactly never needs.
            first_page = (
                relevance_first and query.after is None and not self._may_have_impact_levels()
            )
            total, facets, tier_page = self._facets(first_page)
            self.capped_count = min(total, self.exact_limit + 1)  # no second count
        else:
            facets = {}
        if not relevance_first:
            rows, ranked = self._sorted_page(sort), True
        elif query.after is None and self.capped_count is None:
            first = self._ranked_first_page()  # None: too many matches to rank them all
            rows, ranked = (first, True) if first is not None else (self._tiered_page(), False)
        else:
            ranked = self._relevance_mode() == RANKED
            if ranked:
                rows = self._ranked_page()
            elif tier_page is not None and not self._impact_levels():
                rows = self._picked_page([(i, int(top), None) for i, top in tier_page], -1)
            else:
                rows = self._tiered_page()
        if total is None:
            total, exact = self._capped_total()
        hits = self._hits(rows)
        return SearchResult(
            hits=hits,
            total=total,
            facets=facets,
            has_more=len(rows) > query.limit,
            total_exact=exact,
            exact_order=ranked,
            state=self.state,
        )

    def _relevance_mode(self) -> str:
        after = self.query.after
        if after is not None:
            if not after or (after[0], len(after)) not in ((RANKED, 3), (TIERED, 5)):
                raise InvalidCursor("cursor does not match this query's sort")
            if after[0] == RANKED and not (_fits(after[1], "real") and _fits(after[2], "text")):
                raise InvalidCursor("cursor does not match this query's sort")
            if after[0] == TIERED:
                _, tier, level, score, last_id = after
                if not (
                    tier in (0, 1, RANKED_TIER)
                    and type(level) is int
                    and (score is None or type(score) in (int, float))
                    and (score is not None) == (tier == RANKED_TIER)
                    and isinstance(last_id, str)
                ):
                    raise InvalidCursor("cursor does not match this query's sort")
            return str(after[0])
        return RANKED if self._count_capped() <= self.exact_limit else TIERED

    def _ranked_page(self) -> list[dict[str, Any]]:
        where = "TRUE"
        if self.query.after is not None:
            _, score, last_id = self.query.after
            s, i = self.params.add(score, "real"), self.params.add(last_id, "text")
            where = f"(score < {s} OR (score = {s} AND id > {i}))"
        # OFFSET 0 keeps the subquery from being flattened, so ts_rank runs once per row.
        sql = (
            f"SELECT id, score, '{RANKED}' AS s0, score AS s1, id AS s2 FROM"
            f" (SELECT id, {self._rank()} AS score FROM {self.table} WHERE {self.all_match}"
            " OFFSET 0) m"
            f" WHERE {where} ORDER BY score DESC, id LIMIT {self.query.limit + 1}"
        )
        return self._page(sql, "s1 DESC, s2", page_score=False)

    def _ranked_first_page(self) -> list[dict[str, Any]] | None:
        """Count the matches (up to exact_limit + 1) and, when there are no more than
        exact_limit, rank them and return the first page: one statement, where counting
        first and ranking next took two round trips for every query with few matches.
        The count comes back on a row of its own; None when the matches are too many
        (then nothing was ranked)."""
        limit = self.exact_limit
        if self._many_pair_rows():
            return None
        # The candidates carry their tsvector: ranked from there, not looked up again by id,
        # which costs a key lookup per candidate (bench/notes.md, 'Design decisions: ranked
        # first page').
        candidates = f"SELECT id, tsv FROM {self.table} WHERE {self.all_match} LIMIT {limit + 1}"
        proven = ""
        proof = self._pair_proof() or self._completion_proof() or self._top_field_proof()
        if proof:
            # Some of the matches, found a cheaper way: more than exact_limit of them spare
            # the scan of the rest, which does not start. Fewer, and they are all the
            # matches the proof can find: the rest are the other matches (told apart by
            # id, where the proof's condition would read each row again), and only as many
            # as exact_limit + 1 needs. A proof that falls short by a few leaves a few to
            # find, not every match to count again.
            proven = (
                f"p AS MATERIALIZED (SELECT id, tsv FROM {self.table} WHERE {proof}"
                f" LIMIT {limit + 1}),"
                f" rest AS MATERIALIZED (SELECT id, tsv FROM {self.table}"
                f" WHERE (SELECT count(*) FROM p) <= {limit} AND {self.all_match}"
                f" AND id NOT IN (SELECT id FROM p) LIMIT (SELECT {limit + 1} - count(*) FROM p)), "
            )
            candidates = "SELECT id, tsv FROM p UNION ALL SELECT id, tsv FROM rest"
        ranked = (
            f"SELECT c.id, {self._rank('c.tsv')} AS score FROM c WHERE (SELECT n FROM n) <= {limit}"
            f" ORDER BY score DESC, c.id LIMIT {self.query.limit + 1}"
        )
        # The count's row also brings the parsed query, which a tiered search needs next.
        sql = (
            f"WITH {proven}c AS MATERIALIZED ({candidates}), n AS (SELECT count(*) AS n FROM c)"
            f" SELECT NULL::text AS id, NULL::real AS score, '{RANKED}' AS s0,"
            f" NULL::real AS s1, NULL::text AS s2, n AS capped,"
            f" {query_sql(self.collection)}::text AS tsquery FROM n"
            f" UNION ALL SELECT id, score, '{RANKED}', score, id, NULL, NULL FROM ({ranked}) r"
        )
        rows = self._page(sql, "s1 DESC, s2", page_score=False)
        count = next(r for r in rows if r["capped"] is not None)
        self.capped_count, self.tsquery = int(count["capped"]), str(count["tsquery"])
        if self.capped_count > limit:
            return None
        return [r for r in rows if r["capped"] is None]

    def _sorted_page(self, sort: tuple[SortKey, ...]) -> list[dict[str, Any]]:
        keyset: list[tuple[str, bool, str]] = []  # (expression, descending, parameter type)
        for key in sort:
            if key.field == "_score":  # after other keys: rank every match, or 0 without q
                keyset.append((self._rank() if self.has_q else "0::real", key.descending, "real"))
            elif key.field == "_id":
                keyset.append(("id", key.descending, "text"))
            else:
                spec = self.collection.fields[key.field]
                expr, sql_type = _sort_value(spec, key.descending)
                keyset.append((f"({expr} IS NULL)", False, "boolean"))
                keyset.append((expr, key.descending, sql_type))
        where = self.match
        if self.query.after is not None:
            where += " AND " + _keyset_condition(keyset, self.query.after, self.params)
        order = ", ".join(f"{e} {'DESC' if d else 'ASC'}" for e, d, _ in keyset)
        columns = ", ".join(f"{e} AS s{i}" for i, (e, _, _) in enumerate(keyset))
        sql = (
            f"SELECT id, NULL::real AS score, {columns} FROM {self.table} WHERE {where}"
            f" ORDER BY {order} LIMIT {self.query.limit + 1}"
        )
        outer = ", ".join(f"s{i} {'DESC' if d else 'ASC'}" for i, (_, d, _) in enumerate(keyset))
        return self._page(sql, outer, page_score=self.has_q)


def _sort_value(spec: FieldSpec, descending: bool) -> tuple[str, str]:
    col = column(spec.name)
    if spec.type != "keyword":
        return col, PARAM_TYPES[spec.type]
    # OpenSearch's order: a list by its smallest value ascending, its largest descending,
    # and text by its bytes (the "C" collation), whatever the database's own collation.
    pick = "max" if descending else "min"
    value = (
        f'CASE WHEN cardinality({col}) > 1 THEN (SELECT {pick}(v COLLATE "C")'
        f" FROM unnest({col}) AS v) ELSE {col}[1] END"
    )
    return f'({value}) COLLATE "C"', PARAM_TYPES[spec.type]


def _keyset_condition(
    keyset: list[tuple[str, bool, str]], after: Sequence[Any], params: Params
) -> str:
    """Rows strictly after `after` in the keyset order (NULL-safe equality)."""
    if len(after) != len(keyset) or not all(
        _fits(value, sql_type) for value, (_, _, sql_type) in zip(after, keyset, strict=True)
    ):
        raise InvalidCursor("cursor does not match this query's sort")
    ors: list[str] = []
    for i, (expr, descending, sql_type) in enumerate(keyset):
        ands = [
            f"{keyset[j][0]} IS NOT DISTINCT FROM {params.add(after[j], keyset[j][2])}"
            for j in range(i)
        ]
        ands.append(f"{expr} {'<' if descending else '>'} {params.add(after[i], sql_type)}")
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")"


def _fits(value: Any, sql_type: str) -> bool:
    """Whether a cursor's value has the JSON type this backend put there for a column of
    sql_type: a forged one would otherwise fail in PostgreSQL's casts."""
    if value is None:
        return True
    if sql_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if sql_type == "bigint":
        return isinstance(value, int)
    if sql_type in ("real", "double precision"):
        return isinstance(value, int | float)
    if sql_type == "timestamptz":
        if not isinstance(value, str):
            return False
        try:
            normalize_date(value)
        except ValueError:
            return False
        return True
    return isinstance(value, str)
