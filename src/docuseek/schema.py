"""Collection schemas and document validation.

Validation is hand-written rather than a pydantic model per collection: schemas are
user data that changes at run time, and a batch of 100k documents must validate in
one pass with errors that name the document's position and the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docuseek.search.query import DEFAULT_SETTINGS, SearchSettings
from docuseek.storable import StorableModel

FieldType = Literal["text", "keyword", "integer", "float", "boolean", "date"]
Weight = Literal["A", "B", "C", "D"]

COLLECTION_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_ID_LENGTH = 512
SORTABLE_TYPES = frozenset({"keyword", "integer", "float", "boolean", "date"})
INT64 = 2**63


class FieldDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: FieldType
    weight: Weight | None = Field(
        None, description="Text fields only: relevance weight, A (highest) to D. Default C."
    )
    facet: bool = Field(False, description="Compute facet counts on this field.")


# On by default: without the pairs, phrase queries on a large collection miss the 100 ms p99
# target (see bench/notes.md, 'Design decisions: phrase word pairs').
INDEX_PHRASES_DEFAULT = True

# PostgreSQL's text search configurations (`simple` and its Snowball stemmers) that
# OpenSearch's Snowball filter also has, so both backends stem a language alike (PostgreSQL's
# arabic, greek, hindi, indonesian, nepali, serbian, tamil and yiddish it has not).
Language = Literal[
    "simple",
    "english",
    "armenian",
    "basque",
    "catalan",
    "danish",
    "dutch",
    "estonian",
    "finnish",
    "french",
    "german",
    "hungarian",
    "irish",
    "italian",
    "lithuanian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
    "turkish",
]
LANGUAGES: tuple[str, ...] = get_args(Language)
DEFAULT_LANGUAGE = "english"


# A keyword value, at most: PostgreSQL's GIN index holds an entry of up to about a third
# of a page (2,712 bytes), and a filter value is a whole keyword.
MAX_KEYWORD_BYTES = 2000
# Fields of a collection, at most: OpenSearch maps a text field as two (the field and its
# unstemmed subfield) and refuses an index of more than 1,000.
MAX_FIELDS = 256


class CollectionSchema(StorableModel):
    model_config = ConfigDict(extra="forbid")

    fields: dict[str, FieldDefinition] = Field(
        min_length=1,
        max_length=MAX_FIELDS,
        description=f"The collection's fields by name, {MAX_FIELDS} at most.",
    )
    index_phrases: bool | None = Field(
        None,
        description=(
            "PostgreSQL backend: also index adjacent word pairs, so that a phrase query"
            " reads its matches instead of checking every document with all of its words"
            " (several times faster on large collections), at about a third fewer documents"
            " indexed per second and a third larger index: set it to false for a"
            " write-heavy collection that rarely sees quoted phrases. Set when the collection"
            " is created (default true; left out of an update, it stays as it is). OpenSearch"
            " indexes positions anyway and ignores it."
        ),
    )

    language: Language | None = Field(
        None,
        description=(
            "Language of the text fields: how words are stemmed and which stop words are"
            " ignored. `simple` lowercases only (no stemming, no stop words), for codes and"
            " names. Default english; left out of an update, it stays as it is. Changing it"
            " rebuilds the index in the background; searches keep using the old index until"
            " the new one is complete."
        ),
    )
    unaccent: bool | None = Field(
        None,
        description=(
            "Fold accents in text fields and queries, so `ecole` finds `école`. Default"
            " false; left out of an update, it stays as it is. Changing it rebuilds the index"
            " as a language change does."
        ),
    )

    @property
    def index_phrases_or_default(self) -> bool:
        """What a collection created from this schema gets."""
        return INDEX_PHRASES_DEFAULT if self.index_phrases is None else self.index_phrases

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, fields: dict[str, FieldDefinition]) -> dict[str, FieldDefinition]:
        for name, definition in fields.items():
            if not FIELD_NAME_RE.match(name) or name == "id":
                raise ValueError(
                    f"field name {name!r} must match {FIELD_NAME_RE.pattern} and not be 'id'"
                )
            if definition.weight is not None and definition.type != "text":
                raise ValueError(f"field {name!r}: weight applies to text fields only")
            if definition.facet and definition.type == "text":
                raise ValueError(f"field {name!r}: text fields cannot be facets; use keyword")
        return fields


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    weight: Weight
    facet: bool


@dataclass(frozen=True)
class TextAnalysis:
    """How a generation's text is analysed: its language and whether accents are folded."""

    language: str = DEFAULT_LANGUAGE
    unaccent: bool = False


@dataclass(frozen=True)
class Collection:
    """A collection as the backends see it: schema plus index generation."""

    id: int
    name: str
    fields: dict[str, FieldSpec]
    generation: int
    building_generation: int | None = None
    index_phrases: bool = False
    analysis: TextAnalysis = TextAnalysis()  # the schema's: what a new generation is built with
    live_analysis: TextAnalysis = TextAnalysis()  # what the live generation was built with
    search_settings: SearchSettings = field(default_factory=lambda: DEFAULT_SETTINGS)

    def analysis_of(self, generation: int) -> TextAnalysis:
        """The text analysis of one of the collection's generations: the live one keeps
        the analysis it was built with until a reindex replaces it."""
        return self.live_analysis if generation == self.generation else self.analysis

    @property
    def text_fields(self) -> list[FieldSpec]:
        return [f for f in self.fields.values() if f.type == "text"]

    @property
    def write_generations(self) -> list[int]:
        """Generations the worker writes to: the live one, plus one being rebuilt."""
        gens = [self.generation]
        if self.building_generation is not None:
            gens.append(self.building_generation)
        return gens

    @staticmethod
    def from_row(
        id: int,
        name: str,
        fields: dict[str, Any],
        generation: int,
        building: int | None,
        index_phrases: bool = False,
        analysis: TextAnalysis = TextAnalysis(),
        live_analysis: TextAnalysis = TextAnalysis(),
        search_settings: dict[str, Any] | None = None,
    ) -> Collection:
        specs = {
            fname: FieldSpec(
                name=fname,
                type=fdef["type"],
                weight=fdef.get("weight") or "C",
                facet=bool(fdef.get("facet", False)),
            )
            for fname, fdef in fields.items()
        }
        settings = (
            SearchSettings.model_validate(search_settings) if search_settings else DEFAULT_SETTINGS
        )
        return Collection(
            id, name, specs, generation, building, index_phrases, analysis, live_analysis, settings
        )


class DocumentError(ValueError):
    """A document that does not fit the collection's schema."""

    def __init__(self, position: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.field = field
        self.message = message

    def as_detail(self) -> dict[str, Any]:
        return {"position": self.position, "field": self.field, "message": self.message}


def normalize_date(value: Any) -> str:
    """ISO 8601 date or datetime → canonical UTC 'YYYY-MM-DDTHH:MM:SS[.ffffff]Z'.

    One canonical spelling makes text order equal time order, so backends can compare
    dates without casts.
    """
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date string")
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date") from None
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the years 0001 to 9999 in UTC") from None
    return format_date(moment)


def format_date(moment: datetime) -> str:
    """The canonical spelling of a UTC moment, its year in four digits (strftime's `%Y`
    writes the year 999 as `999`, which is neither ISO 8601 nor in time order as text)."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def coerce_value(spec: FieldSpec, value: Any) -> Any:
    """Check (and canonicalize) one field value; raises ValueError with a user message."""
    kind = spec.type
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        return value
    if kind == "keyword":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError("expected a string or a list of strings")
        for one in values:
            # Encoded only when it may be too long: a character takes at most 4 bytes.
            if len(one) * 4 > MAX_KEYWORD_BYTES and len(one.encode()) > MAX_KEYWORD_BYTES:
                raise ValueError(
                    f"a keyword value longer than {MAX_KEYWORD_BYTES} bytes in UTF-8"
                    " (use a text field for long text)"
                )
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        if not -INT64 <= value < INT64:
            raise ValueError("integer out of 64-bit range")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("expected a finite number")
        if isinstance(value, int):
            # Indexed as a double: an integer beyond its range would be accepted here and
            # then fail at indexing.
            try:
                float(value)
            except OverflowError:
                raise ValueError("a number beyond a double's range") from None
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {type(value).__name__}")
        return value
    return normalize_date(value)


def validate_document(collection: Collection, position: int, doc: Any) -> dict[str, Any]:
    """Return the canonical document or raise DocumentError naming position and field."""
    if not isinstance(doc, dict):
        raise DocumentError(position, None, "a document must be a JSON object")
    doc_id = doc.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise DocumentError(position, "id", "each document needs a non-empty string 'id'")
    if len(doc_id) > MAX_ID_LENGTH:
        raise DocumentError(position, "id", f"'id' is longer than {MAX_ID_LENGTH} characters")
    out = dict(doc)
    for name, spec in collection.fields.items():
        value = doc.get(name)
        if value is None:
            continue
        try:
            out[name] = coerce_value(spec, value)
        except ValueError as exc:
            raise DocumentError(position, name, f"field {name!r} ({spec.type}): {exc}") from None
    return out
