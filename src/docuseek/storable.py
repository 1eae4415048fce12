"""What PostgreSQL can store, checked where input arrives.

PostgreSQL's text and jsonb cannot hold U+0000, its UTF-8 cannot hold a lone surrogate
(JSON's `\\ud800` escape spells one), and a JSON number beyond a double's range parses as
infinity, which has no JSON spelling. Input carrying one of these is refused with a 422
that says where, instead of failing inside the database with a 500.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError

NUL = "\x00"
# Containers nested deeper than this are refused: JSON's own parser stops near 1,000
# levels, and reading a document back (FastAPI's encoder) near 300.
# Elasticsearch's mapping depth limit is 20.
MAX_DEPTH = 64


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store this string, or None."""
    if NUL in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate ({value[exc.start]!r}), which is not valid Unicode"
    return None


Path = tuple[str | int, ...]


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects nest more than `limit` levels (without recursing)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if level + 1 > limit:
            return True
        stack.extend((child, level + 1) for child in item)
    return False


def find_problem(value: Any, path: Path = ()) -> tuple[Path, str] | None:
    """The first part of a parsed JSON value that PostgreSQL cannot store: its path (keys
    and list positions) and why; None if it can all be stored. Recursive: check
    too_deep() first."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) if isinstance(key, str) else None
            if problem:
                return (*path, key), f"(a key) {problem}"
            found = find_problem(item, (*path, key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_problem(item, (*path, i))
            if found:
                return found
    return None


def format_path(path: Path) -> str:
    """('meta', 'tags', 2) -> 'meta.tags[2]'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def describe(path: Path, problem: str) -> str:
    return f"{format_path(path)!r} {problem}" if path else problem


class StorableModel(BaseModel):
    """A request body whose strings all fit in PostgreSQL."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if too_deep(data):
            raise PydanticCustomError(
                "too_deep", "{message}", {"message": f"nested deeper than {MAX_DEPTH} levels"}
            )
        found = find_problem(data)
        if found:
            raise PydanticCustomError("unstorable", "{message}", {"message": describe(*found)})
        return data
