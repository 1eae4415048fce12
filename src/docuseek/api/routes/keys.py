"""API keys (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from docuseek import auth
from docuseek import queries as Q
from docuseek.api.deps import AdminKey, EngineDep
from docuseek.errors import NotFound
from docuseek.schema import COLLECTION_NAME_RE
from docuseek.storable import StorableModel


class KeyCreate(StorableModel):
    # A misspelt field (`expire_at`) must not create a key without the limit it asked for.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Literal["search", "write", "admin"]] = Field(min_length=1)
    collections: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description='Collection names the key may use, or "*" for all of them.',
    )
    expires_at: AwareDatetime | None = Field(
        None,
        description="When the key stops working (ISO 8601 with a time zone); null: never."
        " A request with it afterwards gets 401 `key expired`.",
    )

    @field_validator("expires_at")
    @classmethod
    def in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("expires_at is after the year 9999 in UTC") from None
        if value <= datetime.now(UTC):
            raise ValueError("expires_at is in the past")
        return value

    @field_validator("collections")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if name != "*" and not COLLECTION_NAME_RE.match(name):
                raise ValueError(
                    f"{name!r} is not a collection name (pattern {COLLECTION_NAME_RE.pattern})"
                    ' nor "*"'
                )
        return names


class KeyInfo(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    collections: list[str]
    created_at: datetime
    expires_at: datetime | None


class KeyCreated(KeyInfo):
    key: str = Field(description="The secret: shown only in this response")


router = APIRouter(prefix="/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, engine: EngineDep, _: AdminKey) -> KeyCreated:
    with engine.begin() as conn:
        key, row = auth.create_key(
            conn, body.name, list(body.scopes), body.collections, body.expires_at
        )
    return KeyCreated(key=key, **row)


@router.get("")
def list_keys(engine: EngineDep, _: AdminKey) -> list[KeyInfo]:
    with engine.connect() as conn:
        return [KeyInfo(**row) for row in conn.execute(Q.LIST_KEYS).mappings()]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_key(key_id: int, engine: EngineDep, _: AdminKey) -> None:
    with engine.begin() as conn:
        if conn.execute(Q.DELETE_KEY, {"id": key_id}).first() is None:
            raise NotFound(f"key {key_id} does not exist")
