"""scripts/stack/verify.py finds the forbidden OpenSearch dev password by its SHA-256 alone."""

from __future__ import annotations

import hashlib
import importlib.util
import secrets
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_verify() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "stack_verify", ROOT / "scripts" / "stack" / "verify.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_password_is_found_wherever_a_file_writes_it() -> None:
    verify = load_verify()
    password = secrets.token_hex(8) + "Aa1!@#"
    places = [
        f'OPENSEARCH_INITIAL_ADMIN_PASSWORD: "{password}"',
        f"OPENSEARCH_INITIAL_ADMIN_PASSWORD={password}",
        f"  - OPENSEARCH_INITIAL_ADMIN_PASSWORD={password}\n",
        f"curl -u 'admin:{password}' https://search:9200",
        f"https://admin:{password}@search:9200/",
    ]
    for text in places:
        assert verify.contains_digest(text, digest(password), len(password)), text
    assert not verify.contains_digest(
        f"OPENSEARCH_PASSWORD={password[:-1]}", digest(password), len(password)
    )
    assert not verify.contains_digest(
        "OPENSEARCH_INITIAL_ADMIN_PASSWORD=${OPENSEARCH_PASSWORD}", digest(password), len(password)
    )


def test_files_holding_a_password_are_named(tmp_path: Path) -> None:
    verify = load_verify()
    password = secrets.token_hex(12)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "compose.yaml").write_text(f"environment:\n  PASSWORD: {password}\n")
    (tmp_path / "README.md").write_text("no secret here\n")
    found = verify.files_with_digest(tmp_path, digest(password), len(password))
    assert found == ["infra/compose.yaml"]


def test_no_file_of_the_repository_holds_the_dev_password() -> None:
    verify = load_verify()
    assert len(verify.DEV_PASSWORD_SHA256) == 64
    holders = verify.files_with_digest(ROOT, verify.DEV_PASSWORD_SHA256, verify.DEV_PASSWORD_LENGTH)
    assert holders == []
