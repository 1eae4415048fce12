"""API keys: generated once, stored as SHA-256 hashes, checked per request.

A fast hash is right here (unlike passwords): keys are 256-bit random tokens, so there is
nothing to brute-force, and every request verifies one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection

from docuseek import queries as Q
from docuseek.errors import Unauthorized

Scope = Literal["search", "write", "admin"]
KEY_PREFIX = "dsk_"


@dataclass(frozen=True)
class Principal:
    key_id: int | None  # None: the DOCUSEEK_ADMIN_KEY from the environment
    name: str
    scopes: frozenset[str]
    collections: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def allows_scope(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    def allows_collection(self, name: str) -> bool:
        return self.is_admin or "*" in self.collections or name in self.collections

    def visible_collections(self) -> list[str] | None:
        """None: every collection."""
        if self.is_admin or "*" in self.collections:
            return None
        return sorted(self.collections)


ENV_ADMIN = Principal(None, "admin (DOCUSEEK_ADMIN_KEY)", frozenset({"admin"}), frozenset({"*"}))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(
    conn: Connection,
    name: str,
    scopes: list[str],
    collection_names: list[str],
    expires_at: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    key = new_key()
    row = (
        conn.execute(
            Q.INSERT_KEY,
            {
                "name": name,
                "prefix": key[: len(KEY_PREFIX) + 6],
                "key_hash": hash_key(key),
                "scopes": sorted(set(scopes)),
                "collections": sorted(set(collection_names)),
                "expires_at": expires_at,
            },
        )
        .mappings()
        .one()
    )
    return key, dict(row)


def is_env_admin(presented: str, env_admin_key: str | None) -> bool:
    return bool(env_admin_key) and hmac.compare_digest(
        presented.encode(), (env_admin_key or "").encode()
    )


def authenticate(conn: Connection, presented: str) -> Principal | None:
    """The key's principal; None for an unknown key; Unauthorized for an expired one."""
    row = conn.execute(Q.SELECT_KEY_BY_HASH, {"h": hash_key(presented)}).first()
    if row is None:
        return None
    if row.expired:
        raise Unauthorized(f"key expired at {row.expires_at.isoformat()}")
    return Principal(row.id, row.name, frozenset(row.scopes), frozenset(row.collections))
